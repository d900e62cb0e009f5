/* SPDX-License-Identifier: Apache-2.0
 *
 * `p11gate check`'s warning about pipelines (issue 13 item 5): once the
 * login: block names issuers, the point is that only named pipelines sign;
 * an allow rule for signing with no identity condition lets every caller
 * its other conditions admit sign without proving which pipeline it is
 * (with accept_token_pin, or with a credential, or as whoever else logs in).
 */
#include "internal.h"

void
pg_login_lint(struct pg_load *load)
{
	const struct pg_policy *policy = load->policy;

	if (policy->login.n_issuers == 0)
		return;
	for (size_t i = 0; i < policy->n_rules; i++) {
		const struct pg_rule *rule = &policy->rules[i];

		if (!rule->allow || !(rule->ops & PG_OP_SIGN) ||
		    (rule->conds & (1u << PG_COND_IDENTITY)))
			continue;
		pg_diag_warning(load->diag, rule->line, rule->column,
		                "allow rule '%s' lets callers sign with no identity condition, though "
		                "login: names issuers; say which pipelines may sign with callers: "
		                "{ identity: { issuer: NAME, claims: { ... } } }", rule->name);
	}
}
