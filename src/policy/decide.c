/* SPDX-License-Identifier: Apache-2.0
 *
 * Decisions: the (key, operation) index built at load time, and the
 * judgement of one request against the few rules that index names, with
 * the one-line reason and the per-rule explanation for `p11gate explain`.
 */
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define PG_MSG_LEN 440   /* an approval's refusal names the grant and each signature */

static int
op_bit(enum pg_op op)
{
	for (int i = 0; i < PG_N_OPS; i++) {
		if ((unsigned)op == 1u << i)
			return i;
	}
	return -1;
}

bool
pg_index_build(struct pg_policy *policy)
{
	struct pg_arena *arena = &policy->arena;
	size_t n = policy->n_keys * PG_N_OPS;

	policy->index = pg_arena_calloc(arena, n, sizeof *policy->index);
	if (policy->index == NULL)
		return false;
	/* Two passes: count, then fill in file order (deny precedence and
	 * "first rule in the file" both rely on that order). */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t b = 0; pass == 1 && b < n; b++) {
			struct pg_bucket *bucket = &policy->index[b];
			bucket->allow = pg_arena_calloc(arena, bucket->n_allow, sizeof *bucket->allow);
			bucket->deny = pg_arena_calloc(arena, bucket->n_deny, sizeof *bucket->deny);
			if (bucket->allow == NULL || bucket->deny == NULL)
				return false;
			bucket->n_allow = bucket->n_deny = 0;
		}
		for (size_t r = 0; r < policy->n_rules; r++) {
			const struct pg_rule *rule = &policy->rules[r];
			for (size_t k = 0; k < rule->n_keys; k++) {
				for (int op = 0; op < PG_N_OPS; op++) {
					struct pg_bucket *bucket;
					if (!(rule->ops & (1u << op)))
						continue;
					bucket = &policy->index[rule->keys[k] * PG_N_OPS + (size_t)op];
					if (rule->allow) {
						if (pass == 1)
							bucket->allow[bucket->n_allow] = (unsigned)r;
						bucket->n_allow++;
					} else {
						if (pass == 1)
							bucket->deny[bucket->n_deny] = (unsigned)r;
						bucket->n_deny++;
					}
				}
			}
		}
	}
	return true;
}

static enum pg_tri
eval_mechanism(const struct pg_rule *rule, struct pg_eval *ev, char *msg, size_t msg_len)
{
	CK_MECHANISM_TYPE mech = ev->req->mechanism;
	enum pg_tri result = PG_NO;
	const char *name;
	char hex[32];

	if (mech == CK_UNAVAILABLE_INFORMATION) {
		if (msg != NULL)
			snprintf(msg, msg_len, "the operation uses no mechanism, so it is not in "
			         "mechanisms [%s]", rule->mechanisms_text);
		return PG_NO;
	}
	for (size_t i = 0; i < rule->n_mechanisms; i++) {
		if (rule->mechanisms[i] == mech)
			result = PG_YES;
	}
	if (msg == NULL)
		return result;
	name = pg_mechanism_name(mech);
	if (name == NULL) {
		snprintf(hex, sizeof hex, "0x%lx", (unsigned long)mech);
		name = hex;
	}
	snprintf(msg, msg_len, "mechanism %s is %sin mechanisms [%s]", name,
	         result == PG_YES ? "" : "not ", rule->mechanisms_text);
	return result;
}

static enum pg_tri
eval_cond(const struct pg_rule *rule, enum pg_cond cond, struct pg_eval *ev,
          char *msg, size_t msg_len)
{
	switch (cond) {
	case PG_COND_MECHANISMS:
		return eval_mechanism(rule, ev, msg, msg_len);
	case PG_COND_DATES:
	case PG_COND_DAYS:
	case PG_COND_HOURS:
		return pg_when_eval(rule, cond, ev, msg, msg_len);
	case PG_COND_APPROVAL:
		return pg_approval_eval(rule, ev, msg, msg_len);
	case PG_COND_BREAK_GLASS:
		return pg_break_glass_eval(rule, ev, msg, msg_len);
	default:
		return pg_callers_eval(rule, cond, ev, msg, msg_len);
	}
}

/* Every stated condition, in order.  An allow rule stops at the first that
 * is not YES; a deny rule stops only at a NO (UNKNOWN cannot clear it).
 * *stop is the condition it stopped at (PG_COND_COUNT if none); msg gets
 * that condition's message. */
static enum pg_tri
rule_eval(const struct pg_rule *rule, struct pg_eval *ev, enum pg_cond *stop,
          char *msg, size_t msg_len)
{
	enum pg_tri result = PG_YES;

	*stop = PG_COND_COUNT;
	for (int c = 0; c < PG_COND_COUNT; c++) {
		enum pg_tri t;

		if (!(rule->conds & (1u << c)))
			continue;
		t = eval_cond(rule, (enum pg_cond)c, ev, msg, msg_len);
		if (t == PG_NO || (t == PG_UNKNOWN && rule->allow)) {
			*stop = (enum pg_cond)c;
			return t;
		}
		if (t == PG_UNKNOWN)
			result = PG_UNKNOWN;
	}
	return result;
}

/* What made a deny rule apply: each condition's message, joined. */
static void
describe_match(const struct pg_rule *rule, struct pg_eval *ev, const char *key, enum pg_op op,
               char *out, size_t out_len)
{
	size_t used = 0;

	out[0] = '\0';
	for (int c = 0; c < PG_COND_COUNT && used + 1 < out_len; c++) {
		char msg[PG_MSG_LEN];
		int n;

		if (!(rule->conds & (1u << c)))
			continue;
		eval_cond(rule, (enum pg_cond)c, ev, msg, sizeof msg);
		n = snprintf(out + used, out_len - used, "%s%s", used > 0 ? "; " : "", msg);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (used == 0)
		snprintf(out, out_len, "denies every %s with key %s", pg_op_name(op), key);
}

/* "rule NAME allows it" without printf: this is the hot path. */
static void
allow_reason(char *out, size_t out_len, const char *rule)
{
	static const char head[] = "rule ", tail[] = " allows it";
	size_t len = strlen(rule);

	if (sizeof head - 1 + len + sizeof tail > out_len)
		len = out_len - sizeof head - sizeof tail + 1;
	memcpy(out, head, sizeof head - 1);
	memcpy(out + sizeof head - 1, rule, len);
	memcpy(out + sizeof head - 1 + len, tail, sizeof tail);
}

static void
eval_init(struct pg_eval *ev, const pg_policy *policy, const struct pg_request *req,
          struct pg_decision *out)
{
	memset(ev, 0, sizeof *ev);
	ev->req = req;
	ev->policy = policy;
	ev->justified = -1;
	ev->justification = out->justification;
	ev->justification_source = out->justification_source;
}

/* The key a rule is about, among those the object matched: the first of
 * the rule's own keys (in the order the rule lists them) that matched.
 * That is the key the record names, whatever order the keys: section
 * gives them. */
static unsigned
rule_key(const struct pg_rule *rule, const struct pg_key_match *key)
{
	for (size_t j = 0; j < rule->n_keys; j++) {
		for (size_t k = 0; k < key->n; k++) {
			if (rule->keys[j] == key->idx[k])
				return key->idx[k];
		}
	}
	return key->idx[0];         /* not reached: the rule came from a matched key's bucket */
}

static void
decided_key(const pg_policy *policy, unsigned idx, struct pg_decision *out)
{
	out->key = (int)idx;
	out->key_name = policy->keys[idx].name;
}

void
pg_policy_decide(const pg_policy *policy, const struct pg_request *req, struct pg_decision *out)
{
	const struct pg_key_match *key = req->key;
	unsigned deny_rule = UINT_MAX, allow_rule = UINT_MAX, nearest = UINT_MAX;
	int nearest_stop = -1, bit = op_bit(req->op);
	struct pg_eval ev;
	char msg[PG_MSG_LEN];
	enum pg_cond stop;

	out->allow = false;
	out->rule = NULL;
	out->key = -1;
	out->key_name = NULL;
	out->reason[0] = '\0';
	out->limit = NULL;
	out->break_glass = NULL;
	out->justification[0] = '\0';
	out->justification_source[0] = '\0';
	out->unusual = false;
	out->unusual_reason[0] = '\0';
	out->grant.used = false;
	if (key == NULL || key->n == 0) {
		if (key != NULL && key->pin_mismatch >= 0 && (size_t)key->pin_mismatch < policy->n_keys)
			snprintf(out->reason, sizeof out->reason, "key matches the URI of %s but not its "
			         "public_key_sha256 pin", policy->keys[key->pin_mismatch].name);
		else
			snprintf(out->reason, sizeof out->reason, "key is not named by the policy");
		return;
	}
	/* Until a rule decides: the first matched key in file order. */
	decided_key(policy, key->idx[0], out);
	if (bit < 0) {
		snprintf(out->reason, sizeof out->reason, "unknown operation %d", (int)req->op);
		return;
	}
	/* The caller's proof ran out: nothing it allowed stands. */
	if (pg_login_expired(req, out->reason, sizeof out->reason))
		return;
	eval_init(&ev, policy, req, out);

	/* A matching deny wins; the first in file order decides. */
	for (size_t k = 0; k < key->n; k++) {
		const struct pg_bucket *bucket = &policy->index[key->idx[k] * PG_N_OPS + (size_t)bit];
		for (size_t i = 0; i < bucket->n_deny && bucket->deny[i] < deny_rule; i++) {
			if (rule_eval(&policy->rules[bucket->deny[i]], &ev, &stop, NULL, 0) != PG_NO) {
				deny_rule = bucket->deny[i];
				break;
			}
		}
	}
	if (deny_rule != UINT_MAX) {
		const struct pg_rule *rule = &policy->rules[deny_rule];
		char what[sizeof out->reason - 128];   /* room for "rule NAME: " */

		decided_key(policy, rule_key(rule, key), out);
		describe_match(rule, &ev, out->key_name, req->op, what, sizeof what);
		out->rule = rule->name;
		snprintf(out->reason, sizeof out->reason, "rule %s: %s", rule->name, what);
		return;
	}

	/* The first allowing rule in file order across every matched key, so
	 * that the rule (and the key it names) do not depend on the order of
	 * the keys: section.  Each bucket is in file order: a key's scan stops
	 * at its first allowing rule, or at a rule after one already found. */
	for (size_t k = 0; k < key->n; k++) {
		const struct pg_bucket *bucket = &policy->index[key->idx[k] * PG_N_OPS + (size_t)bit];
		for (size_t i = 0; i < bucket->n_allow && bucket->allow[i] < allow_rule; i++) {
			unsigned r = bucket->allow[i];
			if (rule_eval(&policy->rules[r], &ev, &stop, NULL, 0) == PG_YES) {
				allow_rule = r;
				break;
			}
			/* Nearest: the latest first failure; ties go to the earlier rule. */
			if ((int)stop > nearest_stop || ((int)stop == nearest_stop && r < nearest)) {
				nearest_stop = (int)stop;
				nearest = r;
			}
		}
	}
	if (allow_rule != UINT_MAX) {
		out->allow = true;
		out->rule = policy->rules[allow_rule].name;
		/* The allowing rule was the last evaluated: its grant, if any. */
		if (policy->rules[allow_rule].approval != NULL)
			out->grant = ev.grant;
		out->limit = policy->rules[allow_rule].limit;
		out->break_glass = policy->rules[allow_rule].break_glass;
		if (out->break_glass == NULL) {
			/* Asked by a break-glass rule that did not decide. */
			out->justification[0] = '\0';
			out->justification_source[0] = '\0';
		}
		decided_key(policy, rule_key(&policy->rules[allow_rule], key), out);
		allow_reason(out->reason, sizeof out->reason, out->rule);
		if (pg_usual_outside(&policy->rules[allow_rule], &ev, msg, sizeof msg)) {
			out->unusual = true;
			/* msg is sized for an approval's refusal; a window's fits in 200. */
			snprintf(out->unusual_reason, sizeof out->unusual_reason, "rule %s allows it, "
			         "but not at its usual time: %.200s", out->rule, msg);
		}
		return;
	}
	if (nearest == UINT_MAX) {
		snprintf(out->reason, sizeof out->reason, "no rule allows %s with key %s",
		         pg_op_name(req->op), out->key_name);
		return;
	}
	/* Refused with no deciding rule: the nearest rule's key. */
	decided_key(policy, rule_key(&policy->rules[nearest], key), out);
	rule_eval(&policy->rules[nearest], &ev, &stop, msg, sizeof msg);
	snprintf(out->reason, sizeof out->reason, "no rule allows it; nearest: rule %s: %s",
	         policy->rules[nearest].name, msg);
}

void
pg_policy_explain(const pg_policy *policy, const struct pg_request *req,
                  pg_explain_fn each_rule, void *ctx, struct pg_decision *out)
{
	const struct pg_key_match *key = req->key;
	struct pg_eval ev;

	eval_init(&ev, policy, req, out);
	for (size_t r = 0; r < policy->n_rules; r++) {
		const struct pg_rule *rule = &policy->rules[r];
		char msg[PG_MSG_LEN] = "";
		bool names_key = false;
		enum pg_cond stop;
		enum pg_tri t;

		for (size_t k = 0; key != NULL && k < key->n; k++) {
			for (size_t j = 0; j < rule->n_keys; j++)
				names_key = names_key || rule->keys[j] == key->idx[k];
		}
		if (!names_key) {
			if (key != NULL && key->n > 0)
				snprintf(msg, sizeof msg, "does not name key %s", policy->keys[key->idx[0]].name);
			else
				snprintf(msg, sizeof msg, "the key is not named by the policy");
			each_rule(ctx, rule->name, rule->allow, false, msg);
			continue;
		}
		if (op_bit(req->op) < 0 || !(rule->ops & (unsigned)req->op)) {
			snprintf(msg, sizeof msg, "does not cover operation %s", pg_op_name(req->op));
			each_rule(ctx, rule->name, rule->allow, false, msg);
			continue;
		}
		t = rule_eval(rule, &ev, &stop, msg, sizeof msg);
		if (t == PG_YES || (t == PG_UNKNOWN && !rule->allow))
			each_rule(ctx, rule->name, rule->allow, true, NULL);
		else
			each_rule(ctx, rule->name, rule->allow, false, msg);
	}
	pg_policy_decide(policy, req, out);
}

const char *
pg_policy_unreplayable_rule(const pg_policy *policy, const struct pg_key_match *key, enum pg_op op,
                            const char **what)
{
	for (size_t r = 0; key != NULL && r < policy->n_rules; r++) {
		const struct pg_rule *rule = &policy->rules[r];

		if (!(rule->ops & (unsigned)op))
			continue;
		if (rule->conds & (1u << PG_COND_ENV))
			*what = "the caller's environment";
		else if (rule->approval != NULL)
			*what = "approvals (grant files as they are now)";
		else
			continue;
		for (size_t k = 0; k < key->n; k++) {
			for (size_t j = 0; j < rule->n_keys; j++) {
				if (rule->keys[j] == key->idx[k])
					return rule->name;
			}
		}
	}
	return NULL;
}
