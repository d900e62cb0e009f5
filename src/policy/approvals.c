/* SPDX-License-Identifier: Apache-2.0
 *
 * The approvers: and grants: sections and a rule's approval: condition
 * (docs/approvals.md): who may approve, by which OpenSSH key, where grants
 * are kept, which are revoked, how long one may last, and how many
 * distinct approvers a rule needs.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_GRANT_LIFETIME_DEFAULT (7L * 86400)
#define PG_GRANT_LIFETIME_LIMIT (90L * 86400)

static const char *const approver_fields[] = { "ssh_key", "user", NULL };
static const char *const grants_fields[] = { "dir", "revoked", "max_lifetime", NULL };
static const char *const approval_fields[] = { "from", "count", NULL };

static bool
compile_approver(struct pg_load *load, struct pg_approver *approver, const struct pg_ynode *name,
                 const struct pg_ynode *map)
{
	struct pg_policy *policy = load->policy;
	struct pg_diag *diag = load->diag;
	const struct pg_ynode *node;
	const char *text;
	char err[256];

	approver->line = name->line;
	approver->column = name->column;
	if (!pg_name_ok(name->value))
		pg_diag_error_at(diag, name, "approver name '%s' may only use letters, digits, '.', "
		                 "'_' and '-'", name->value);
	if ((approver->name = pg_arena_strdup(&policy->arena, name->value)) == NULL)
		return false;
	if (!pg_yexpect(diag, map, PG_Y_MAP, "an approver"))
		return true;
	pg_ymap_check_keys(diag, map, approver_fields, "approver");
	node = pg_ymap_get(map, "ssh_key");
	if (node == NULL) {
		pg_diag_error_at(diag, map, "approver '%s' has no ssh_key; add the public key they "
		                 "sign with, as in authorized_keys: ssh_key: \"ssh-ed25519 AAAA... "
		                 "%s@example\"", approver->name, approver->name);
	} else if ((text = pg_yget_string(diag, node, "ssh_key")) != NULL) {
		approver->key = pg_sshkey_new(text, err, sizeof err);
		if (approver->key == NULL)
			pg_diag_error_at(diag, node, "approver '%s': ssh_key: %s", approver->name, err);
	}
	node = pg_ymap_get(map, "user");
	if (node != NULL && (text = pg_yget_string(diag, node, "user")) != NULL &&
	    (approver->user = pg_arena_strdup(&policy->arena, text)) == NULL)
		return false;
	return true;
}

static bool
compile_approvers(struct pg_load *load, const struct pg_ynode *map)
{
	struct pg_policy *policy = load->policy;

	if (!pg_yexpect(load->diag, map, PG_Y_MAP, "approvers"))
		return true;
	policy->approvers = pg_arena_calloc(&policy->arena, map->n, sizeof *policy->approvers);
	if (policy->approvers == NULL && map->n > 0)
		return false;
	for (size_t i = 0; i < map->n; i++) {
		struct pg_approver *approver = &policy->approvers[i];

		policy->n_approvers = i + 1;
		if (!compile_approver(load, approver, map->kids[2 * i], map->kids[2 * i + 1]))
			return false;
		/* One person, one key: the same key under two names would let one
		 * person's signature count twice. */
		for (size_t j = 0; approver->key != NULL && j < i; j++) {
			const struct pg_approver *other = &policy->approvers[j];
			char fp[64], fp_other[64];

			if (other->key == NULL)
				continue;
			pg_sshkey_fingerprint(approver->key, fp, sizeof fp);
			pg_sshkey_fingerprint(other->key, fp_other, sizeof fp_other);
			if (strcmp(fp, fp_other) == 0)
				pg_diag_error(load->diag, approver->line, approver->column,
				              "approver '%s' has the same ssh_key as '%s' (%s); each approver "
				              "needs a key of their own", approver->name, other->name, fp);
		}
	}
	return true;
}

/* "12h", "7d": a whole number of hours or days. */
static bool
duration(const struct pg_ynode *node, long *out)
{
	unsigned long value;
	char *end = NULL;

	if (node->kind != PG_Y_SCALAR || node->value[0] < '0' || node->value[0] > '9')
		return false;
	errno = 0;
	value = strtoul(node->value, &end, 10);
	if (errno != 0 || value == 0 || value > 10000 || (end[0] != 'h' && end[0] != 'd') ||
	    end[1] != '\0')
		return false;
	*out = (long)value * (end[0] == 'h' ? 3600 : 86400);
	return true;
}

static bool
compile_grants(struct pg_load *load, const struct pg_ynode *map)
{
	struct pg_policy *policy = load->policy;
	struct pg_diag *diag = load->diag;
	const struct pg_ynode *node;
	const char *text;

	if (!pg_yexpect(diag, map, PG_Y_MAP, "grants"))
		return true;
	pg_ymap_check_keys(diag, map, grants_fields, "grants");
	node = pg_ymap_get(map, "dir");
	if (node == NULL) {
		pg_diag_error_at(diag, map, "grants has no dir; add 'dir: /var/lib/p11gate/grants' "
		                 "(where grant files and their approvals are kept)");
	} else if ((text = pg_yget_string(diag, node, "grants.dir")) != NULL) {
		if (text[0] != '/')
			pg_diag_error_at(diag, node, "grants.dir must be an absolute path "
			                 "(e.g. /var/lib/p11gate/grants), not '%s'", text);
		else if ((policy->settings.grants_dir = pg_arena_strdup(&policy->arena, text)) == NULL)
			return false;
	}
	if ((node = pg_ymap_get(map, "max_lifetime")) != NULL &&
	    (!duration(node, &policy->grants_max_lifetime) ||
	     policy->grants_max_lifetime > PG_GRANT_LIFETIME_LIMIT))
		pg_diag_error_at(diag, node, "grants.max_lifetime must be a whole number of hours or "
		                 "days up to 90d (e.g. 24h or 7d), not %s", node->kind == PG_Y_SCALAR ?
		                 node->value : pg_ynode_describe(node));
	node = pg_ymap_get(map, "revoked");
	if (node == NULL || !pg_yexpect(diag, node, PG_Y_SEQ, "grants.revoked"))
		return true;
	policy->grants_revoked = pg_arena_calloc(&policy->arena, node->n + 1,
	                                         sizeof *policy->grants_revoked);
	if (policy->grants_revoked == NULL)
		return false;
	for (size_t i = 0; i < node->n; i++) {
		text = pg_yget_string(diag, node->kids[i], "a grant id");
		if (text == NULL)
			continue;
		if (!pg_name_ok(text) || strlen(text) > PG_GRANT_ID_MAX) {
			pg_diag_error_at(diag, node->kids[i], "'%s' is not a grant id (letters, digits, "
			                 "'.', '_' and '-', at most %d)", text, PG_GRANT_ID_MAX);
			continue;
		}
		policy->grants_revoked[policy->n_grants_revoked] = pg_arena_strdup(&policy->arena, text);
		if (policy->grants_revoked[policy->n_grants_revoked++] == NULL)
			return false;
	}
	return true;
}

bool
pg_approvers_compile(struct pg_load *load, const struct pg_ynode *root)
{
	const struct pg_ynode *approvers = pg_ymap_get(root, "approvers");
	const struct pg_ynode *grants = pg_ymap_get(root, "grants");

	load->policy->grants_max_lifetime = PG_GRANT_LIFETIME_DEFAULT;
	if (approvers != NULL && !compile_approvers(load, approvers))
		return false;
	if (grants != NULL && !compile_grants(load, grants))
		return false;
	return true;
}

void
pg_approvers_release(struct pg_policy *policy)
{
	for (size_t i = 0; i < policy->n_approvers; i++)
		pg_sshkey_free(policy->approvers[i].key);
}

static int
approver_find(const struct pg_policy *policy, const char *name)
{
	for (size_t i = 0; i < policy->n_approvers; i++) {
		if (strcmp(policy->approvers[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

static bool
compile_from(struct pg_load *load, struct pg_rule *rule, struct pg_approval *approval,
             const struct pg_ynode *seq)
{
	struct pg_policy *policy = load->policy;
	struct pg_diag *diag = load->diag;

	if (!pg_yexpect(diag, seq, PG_Y_SEQ, "approval.from"))
		return true;
	approval->from = pg_arena_calloc(&policy->arena, seq->n + 1, sizeof *approval->from);
	approval->from_text = pg_yseq_text(&policy->arena, seq);
	if (approval->from == NULL || approval->from_text == NULL)
		return false;
	for (size_t i = 0; i < seq->n; i++) {
		const char *name = pg_yget_string(diag, seq->kids[i], "an approver name");
		bool seen = false;
		int idx;

		if (name == NULL)
			continue;
		if ((idx = approver_find(policy, name)) < 0) {
			pg_diag_error_at(diag, seq->kids[i], "rule '%s' names approver '%s', which is not "
			                 "defined under approvers:", rule->name, name);
			continue;
		}
		for (size_t j = 0; j < approval->n_from; j++)
			seen = seen || approval->from[j] == (unsigned)idx;
		if (!seen)
			approval->from[approval->n_from++] = (unsigned)idx;
	}
	return true;
}

bool
pg_approval_compile(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *map)
{
	struct pg_policy *policy = load->policy;
	struct pg_diag *diag = load->diag;
	struct pg_approval *approval;
	const struct pg_ynode *node;
	unsigned long count = 0;
	char *end = NULL;

	if (!pg_yexpect(diag, map, PG_Y_MAP, "approval"))
		return true;
	pg_ymap_check_keys(diag, map, approval_fields, "approval");
	if ((approval = pg_arena_calloc(&policy->arena, 1, sizeof *approval)) == NULL)
		return false;
	rule->approval = approval;
	rule->conds |= 1u << PG_COND_APPROVAL;
	if (!rule->allow)
		pg_diag_error_at(diag, map, "rule '%s' is a deny rule; approval: belongs in allow "
		                 "rules (it says what must be approved before a key signs)", rule->name);
	if (rule->ops != PG_OP_SIGN)
		pg_diag_error_at(diag, map, "rule '%s' has approval: but covers operations other than "
		                 "sign; grants approve signatures: leave operations out or write "
		                 "operations: [sign]", rule->name);
	if (policy->settings.grants_dir == NULL)
		pg_diag_error_at(diag, map, "rule '%s' has approval: but the policy has no grants: "
		                 "dir:; add 'grants: { dir: /var/lib/p11gate/grants }'", rule->name);
	node = pg_ymap_get(map, "from");
	if (node == NULL)
		pg_diag_error_at(diag, map, "approval has no from; list who may approve: "
		                 "from: [alice, bob]");
	else if (!compile_from(load, rule, approval, node))
		return false;
	node = pg_ymap_get(map, "count");
	if (node == NULL) {
		pg_diag_error_at(diag, map, "approval has no count; say how many distinct approvers "
		                 "must sign: count: 2");
		return true;
	}
	if (node->kind == PG_Y_SCALAR && node->plain && node->value[0] >= '1' && node->value[0] <= '9') {
		errno = 0;
		count = strtoul(node->value, &end, 10);
		if (*end != '\0' || errno != 0)
			count = 0;
	}
	if (count == 0 || count > 100) {
		pg_diag_error_at(diag, node, "approval.count must be a whole number from 1, not %s",
		                 node->kind == PG_Y_SCALAR ? node->value : pg_ynode_describe(node));
		return true;
	}
	approval->count = (unsigned)count;
	if (approval->from != NULL && count > approval->n_from)
		pg_diag_error_at(diag, node, "approval.count is %lu but from names %zu approver%s; it "
		                 "could never be met", count, approval->n_from,
		                 approval->n_from == 1 ? "" : "s");
	return true;
}
