/* SPDX-License-Identifier: Apache-2.0
 *
 * The rules: section: each rule's name, effect, keys, operations and
 * mechanisms; callers: and when: are compiled by callers.c and when.c.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const rule_fields[] = {
	"name", "effect", "keys", "operations", "callers", "mechanisms", "when", "usual", "approval",
	"limit", "break_glass", NULL
};
static const char *const op_list[] = {
	"sign", "decrypt", "derive", "unwrap", "manage", "encrypt", "wrap", "verify", NULL,
};

static bool
compile_rule_keys(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *seq)
{
	struct pg_policy *policy = load->policy;
	struct pg_diag *diag = load->diag;
	const char **names;

	if (!pg_yexpect(diag, seq, PG_Y_SEQ, "keys"))
		return true;
	if (seq->n == 0) {
		pg_diag_error_at(diag, seq, "rule '%s' has an empty keys list; name at least one key "
		                 "defined under keys:", rule->name);
		return true;
	}
	rule->keys = pg_arena_calloc(&policy->arena, seq->n, sizeof *rule->keys);
	/* Key names as candidates for "did you mean". */
	names = pg_arena_calloc(&policy->arena, policy->n_keys + 1, sizeof *names);
	if (rule->keys == NULL || names == NULL)
		return false;
	for (size_t i = 0; i < policy->n_keys; i++)
		names[i] = policy->keys[i].name;
	for (size_t i = 0; i < seq->n; i++) {
		const struct pg_ynode *item = seq->kids[i];
		const char *name = pg_yget_string(diag, item, "a key name");
		const char *hint;
		bool seen = false;
		int idx;

		if (name == NULL)
			continue;
		idx = pg_policy_key_find(policy, name);
		if (idx < 0) {
			hint = pg_suggest(name, names);
			if (hint != NULL)
				pg_diag_error_at(diag, item, "rule '%s' names key '%s', which is not defined "
				                 "under keys:; did you mean '%s'?", rule->name, name, hint);
			else
				pg_diag_error_at(diag, item, "rule '%s' names key '%s', which is not defined "
				                 "under keys:", rule->name, name);
			continue;
		}
		for (size_t k = 0; k < rule->n_keys; k++)
			seen = seen || rule->keys[k] == (unsigned)idx;
		if (!seen)
			rule->keys[rule->n_keys++] = (unsigned)idx;
		policy->keys[idx].mentioned = true;
	}
	return true;
}

static void
compile_operations(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *seq)
{
	struct pg_diag *diag = load->diag;

	if (!pg_yexpect(diag, seq, PG_Y_SEQ, "operations"))
		return;
	if (seq->n == 0) {
		pg_diag_error_at(diag, seq, "operations is empty; leave it out to mean [sign]");
		return;
	}
	rule->ops = 0;
	for (size_t i = 0; i < seq->n; i++) {
		const char *name = pg_yget_string(diag, seq->kids[i], "an operation");
		const char *hint;
		enum pg_op op;

		if (name == NULL)
			continue;
		if (pg_op_from_name(name, &op)) {
			rule->ops |= op;
			continue;
		}
		hint = pg_suggest(name, op_list);
		pg_diag_error_at(diag, seq->kids[i], "unknown operation '%s'%s%s%s (allowed: "
		                 PG_OP_NAMES_TEXT ")", name,
		                 hint != NULL ? "; did you mean '" : "", hint != NULL ? hint : "",
		                 hint != NULL ? "'?" : "");
	}
}

/* A private key's decryption that checks no padding is a signature, and
 * p11gate judges it as sign (docs/policy.md); a PKCS#1 v1.5 decryption is
 * a padding oracle from which signatures can be computed over many calls.
 * Both said where a decrypt rule lists them. */
static void
warn_decrypt_mechanism(struct pg_load *load, const struct pg_rule *rule, const struct pg_ynode *item,
                       CK_MECHANISM_TYPE mech)
{
	if (!rule->allow || !(rule->ops & PG_OP_DECRYPT))
		return;
	if (mech == CKM_RSA_X_509 && !(rule->ops & PG_OP_SIGN))
		pg_diag_warning_at(load->diag, item, "rule '%s' lists CKM_RSA_X_509 for decrypt, but a "
		                   "raw RSA decryption is a signature and is judged as sign, which this "
		                   "rule does not cover; allow it in a sign rule if it is meant",
		                   rule->name);
	else if (mech == CKM_RSA_PKCS)
		pg_diag_warning_at(load->diag, item, "rule '%s' allows decrypt with CKM_RSA_PKCS: its "
		                   "padding errors let a caller compute signatures with the key over many "
		                   "calls (Bleichenbacher); prefer CKM_RSA_PKCS_OAEP, or decrypt with a "
		                   "key that does not sign", rule->name);
}

static bool
compile_mechanisms(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *seq)
{
	struct pg_diag *diag = load->diag;
	struct pg_arena *arena = &load->policy->arena;

	if (!pg_yexpect(diag, seq, PG_Y_SEQ, "mechanisms"))
		return true;
	rule->conds |= 1u << PG_COND_MECHANISMS;
	rule->mechanisms = pg_arena_calloc(arena, seq->n, sizeof *rule->mechanisms);
	rule->mechanisms_text = pg_yseq_text(arena, seq);
	if (rule->mechanisms == NULL || rule->mechanisms_text == NULL)
		return false;
	if (seq->n == 0)
		pg_diag_warning_at(diag, seq, "rule '%s' can never match: its mechanisms list is empty",
		                   rule->name);
	for (size_t i = 0; i < seq->n; i++) {
		const struct pg_ynode *item = seq->kids[i];
		const char *name = pg_yget_string(diag, item, "a mechanism");
		CK_MECHANISM_TYPE mech, guess;
		char prefixed[128];

		if (name == NULL)
			continue;
		if (strncmp(name, "0x", 2) == 0 || strncmp(name, "0X", 2) == 0) {
			char *end = NULL;
			unsigned long value;

			errno = 0;
			value = strtoul(name + 2, &end, 16);
			if (name[2] == '\0' || *end != '\0' || errno != 0) {
				pg_diag_error_at(diag, item, "mechanism '%s' is not a hexadecimal number "
				                 "(write vendor mechanisms as 0x80000001)", name);
				continue;
			}
			rule->mechanisms[rule->n_mechanisms++] = value;
			continue;
		}
		if (pg_mechanism_from_name(name, &mech)) {
			rule->mechanisms[rule->n_mechanisms++] = mech;
			warn_decrypt_mechanism(load, rule, item, mech);
			continue;
		}
		snprintf(prefixed, sizeof prefixed, "CKM_%s", name);
		if (strncmp(name, "CKM_", 4) != 0 && pg_mechanism_from_name(prefixed, &guess))
			pg_diag_error_at(diag, item, "unknown mechanism '%s'; did you mean '%s'?",
			                 name, prefixed);
		else
			pg_diag_error_at(diag, item, "unknown mechanism '%s' (use the CKM_ names of the "
			                 "PKCS#11 headers, e.g. CKM_SHA256_RSA_PKCS, or 0x... for vendor "
			                 "mechanisms)", name);
	}
	return true;
}

static bool
compile_rule(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *map,
             size_t index)
{
	struct pg_diag *diag = load->diag;
	struct pg_policy *policy = load->policy;
	const struct pg_ynode *node, *ops;
	const char *text;

	rule->line = map->line;
	rule->column = map->column;
	rule->ops = PG_OP_SIGN;
	pg_ymap_check_keys(diag, map, rule_fields, "rule");

	node = pg_ymap_get(map, "name");
	if (node == NULL) {
		pg_diag_error_at(diag, map, "rule %zu has no name; add 'name: SOMETHING-UNIQUE' "
		                 "(decisions and the audit log cite it)", index + 1);
	} else if ((text = pg_yget_string(diag, node, "name")) != NULL) {
		if (!pg_name_ok(text))
			pg_diag_error_at(diag, node, "rule name '%s' may only use letters, digits, '.', "
			                 "'_' and '-'", text);
		for (size_t i = 0; i < index; i++) {
			if (policy->rules[i].name != NULL && strcmp(policy->rules[i].name, text) == 0) {
				pg_diag_error_at(diag, node, "duplicate rule name '%s' (first used at line "
				                 "%lu); give each rule its own name", text,
				                 policy->rules[i].line);
				break;
			}
		}
		if ((rule->name = pg_arena_strdup(&policy->arena, text)) == NULL)
			return false;
	}
	if (rule->name == NULL && (rule->name = pg_arena_printf(&policy->arena, "#%zu", index + 1)) == NULL)
		return false;

	node = pg_ymap_get(map, "effect");
	if (node == NULL) {
		pg_diag_error_at(diag, map, "rule '%s' has no effect; add 'effect: allow' or "
		                 "'effect: deny'", rule->name);
	} else if ((text = pg_yget_string(diag, node, "effect")) != NULL) {
		if (strcmp(text, "allow") == 0)
			rule->allow = true;
		else if (strcmp(text, "deny") != 0)
			pg_diag_error_at(diag, node, "effect must be allow or deny, not '%s'", text);
	}

	node = pg_ymap_get(map, "keys");
	if (node == NULL)
		pg_diag_error_at(diag, map, "rule '%s' has no keys; add 'keys: [NAME, ...]' with "
		                 "names defined under keys:", rule->name);
	else if (!compile_rule_keys(load, rule, node))
		return false;

	if ((ops = pg_ymap_get(map, "operations")) != NULL)
		compile_operations(load, rule, ops);
	if ((node = pg_ymap_get(map, "mechanisms")) != NULL && !compile_mechanisms(load, rule, node))
		return false;
	if (rule->allow && (rule->ops & PG_OP_DECRYPT) && !(rule->conds & (1u << PG_COND_MECHANISMS)))
		pg_diag_warning_at(diag, ops, "allow rule '%s' covers decrypt with any mechanism, "
		                   "CKM_RSA_PKCS too, whose padding errors let a caller compute "
		                   "signatures with the key over many calls (Bleichenbacher); list the "
		                   "mechanisms it needs, e.g. mechanisms: [CKM_RSA_PKCS_OAEP]", rule->name);
	if ((node = pg_ymap_get(map, "callers")) != NULL && !pg_callers_compile(load, rule, node))
		return false;
	if ((node = pg_ymap_get(map, "when")) != NULL && !pg_when_compile(load, rule, node))
		return false;
	if ((node = pg_ymap_get(map, "usual")) != NULL && !pg_usual_compile(load, rule, node))
		return false;
	if ((node = pg_ymap_get(map, "approval")) != NULL && !pg_approval_compile(load, rule, node))
		return false;
	if ((node = pg_ymap_get(map, "limit")) != NULL && !pg_limit_compile(load, rule, node))
		return false;
	if ((node = pg_ymap_get(map, "break_glass")) != NULL &&
	    !pg_break_glass_compile(load, rule, node))
		return false;

	if ((rule->ops & PG_OP_MANAGE) && (rule->conds & (1u << PG_COND_MECHANISMS)))
		pg_diag_warning_at(diag, map, "rule '%s' covers manage, which uses no mechanism, so "
		                   "its mechanisms condition never holds for manage; put manage in a "
		                   "rule of its own", rule->name);
	if (rule->allow && !rule->has_callers)
		pg_diag_warning_at(diag, map, "allow rule '%s' has no callers, so any program that can "
		                   "open the token may use these keys; add callers: to say who",
		                   rule->name);
	return true;
}

bool
pg_rules_compile(struct pg_load *load, const struct pg_ynode *rules)
{
	struct pg_policy *policy = load->policy;

	policy->rules = pg_arena_calloc(&policy->arena, rules->n, sizeof *policy->rules);
	if (policy->rules == NULL)
		return false;
	policy->n_rules = rules->n;
	for (size_t i = 0; i < rules->n; i++) {
		char field[32];

		snprintf(field, sizeof field, "rule %zu", i + 1);
		if (!pg_yexpect(load->diag, rules->kids[i], PG_Y_MAP, field)) {
			policy->rules[i].name = "?";
			continue;
		}
		if (!compile_rule(load, &policy->rules[i], rules->kids[i], i))
			return false;
	}
	return true;
}
