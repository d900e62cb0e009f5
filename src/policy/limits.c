/* SPDX-License-Identifier: Apache-2.0
 *
 * A rule's limit: (how many uses per window, counted by caller, key or
 * rule) and break_glass: (a rule that matches only with a stated
 * justification, within a cap), and the break-glass condition.  The uses
 * themselves are counted by the module with the allow record
 * (pg_audit_append_counted); here they are compiled and explained.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const limit_fields[] = { "max", "per", "by", NULL };
static const char *const break_glass_fields[] = { "max_signatures", "per", NULL };
static const char *const by_names[] = { "caller", "key", "rule", NULL };

/* The longest window: a year (a longer one is a cap, not a rate). */
#define PER_MAX (366ull * 86400)
#define MAX_MAX 1000000000ull

const char *
pg_limit_by_name(enum pg_limit_by by)
{
	return by_names[by];
}

/* A whole number from 1 to MAX_MAX; false (reported) otherwise. */
static bool
count_value(struct pg_diag *diag, const struct pg_ynode *node, const char *field, uint64_t *out)
{
	unsigned long long value = 0;
	char *end = NULL;

	if (node->kind == PG_Y_SCALAR && node->plain && node->value[0] >= '1' &&
	    node->value[0] <= '9') {
		errno = 0;
		value = strtoull(node->value, &end, 10);
		if (*end == '\0' && errno == 0 && value <= MAX_MAX) {
			*out = value;
			return true;
		}
	}
	pg_diag_error_at(diag, node, "%s must be a whole number from 1 to %llu, not %s", field,
	                 MAX_MAX, node->kind == PG_Y_SCALAR ? node->value : pg_ynode_describe(node));
	return false;
}

/* "90s", "15m", "1h", "24h", "7d": seconds from 1 to a year. */
static bool
duration_value(struct pg_diag *diag, const struct pg_ynode *node, const char *field, uint64_t *out)
{
	unsigned long long value = 0, unit = 0;
	char *end = NULL;

	if (node->kind == PG_Y_SCALAR && node->plain && node->value[0] >= '1' &&
	    node->value[0] <= '9') {
		errno = 0;
		value = strtoull(node->value, &end, 10);
		if (errno == 0 && end[0] != '\0' && end[1] == '\0')
			unit = end[0] == 's' ? 1 : end[0] == 'm' ? 60 : end[0] == 'h' ? 3600 :
			       end[0] == 'd' ? 86400 : 0;
		if (unit != 0 && value <= PER_MAX / unit) {
			*out = value * unit;
			return true;
		}
	}
	pg_diag_error_at(diag, node, "%s must be a duration from 1s to 366d, a whole number with a "
	                 "unit: s, m, h or d (e.g. 1h, 24h, 7d), not %s", field,
	                 node->kind == PG_Y_SCALAR ? node->value : pg_ynode_describe(node));
	return false;
}

/* A window that does not divide a day, or is not a whole number of days,
 * ends at times nobody expects: windows are aligned to the Unix epoch. */
static void
warn_alignment(struct pg_diag *diag, const struct pg_ynode *node, uint64_t per)
{
	if ((per <= 86400 && 86400 % per != 0) || (per > 86400 && per % 86400 != 0))
		pg_diag_warning_at(diag, node, "windows are fixed and aligned to the Unix epoch (a 1h "
		                   "window resets on the hour, 24h at 00:00 UTC); %s does not divide a "
		                   "day evenly, so its windows start at odd times of day", node->value);
}

/* The map's fields, or an error saying what the block is. */
static bool
block_map(struct pg_load *load, const struct pg_rule *rule, const struct pg_ynode *node,
          const char *what, const char *const *fields, const char *example)
{
	if (!rule->allow) {
		pg_diag_error_at(load->diag, node, "deny rule '%s' has %s:, which only an allow rule can "
		                 "have (a deny rule refuses whatever the count)", rule->name, what);
		return false;
	}
	if (node->kind != PG_Y_MAP) {
		pg_diag_error_at(load->diag, node, "%s must be a mapping, e.g. %s: %s", what, what,
		                 example);
		return false;
	}
	pg_ymap_check_keys(load->diag, node, fields, what);
	return true;
}

static const struct pg_ynode *
required(struct pg_load *load, const struct pg_rule *rule, const struct pg_ynode *map,
         const char *what, const char *field, const char *example)
{
	const struct pg_ynode *node = pg_ymap_get(map, field);

	if (node == NULL)
		pg_diag_error_at(load->diag, map, "rule '%s': %s has no %s; e.g. %s: %s", rule->name,
		                 what, field, what, example);
	return node;
}

bool
pg_limit_compile(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *map)
{
	static const char example[] = "{ max: 100, per: 1h, by: caller }";
	struct pg_limit *limit;
	const struct pg_ynode *node;
	bool ok = true;

	if (!block_map(load, rule, map, "limit", limit_fields, example))
		return true;
	limit = pg_arena_calloc(&load->policy->arena, 1, sizeof *limit);
	if (limit == NULL)
		return false;
	limit->by = PG_LIMIT_BY_CALLER;
	if ((node = required(load, rule, map, "limit", "max", example)) == NULL ||
	    !count_value(load->diag, node, "limit.max", &limit->max))
		ok = false;
	if ((node = required(load, rule, map, "limit", "per", example)) == NULL ||
	    !duration_value(load->diag, node, "limit.per", &limit->per))
		ok = false;
	else if ((limit->per_text = pg_arena_strdup(&load->policy->arena, node->value)) == NULL)
		return false;
	else
		warn_alignment(load->diag, node, limit->per);
	if ((node = pg_ymap_get(map, "by")) != NULL) {
		const char *by = pg_yget_string(load->diag, node, "limit.by");
		size_t i;

		for (i = 0; by != NULL && by_names[i] != NULL && strcmp(by, by_names[i]) != 0; i++)
			;
		if (by == NULL || by_names[i] == NULL) {
			if (by != NULL)
				pg_diag_error_at(load->diag, node, "limit.by must be caller (each caller's "
				                 "uid counts on its own), key (each key) or rule (the rule "
				                 "as a whole), not '%s'", by);
			ok = false;
		} else {
			limit->by = (enum pg_limit_by)i;
		}
	}
	if (ok && limit->by == PG_LIMIT_BY_CALLER &&
	    load->policy->settings.identity == PG_IDENTITY_PROCESS)
		pg_diag_warning_at(load->diag, map, "rule '%s' limits by caller in process mode, where "
		                   "the caller's uid is what its own process says (asserted): a "
		                   "program that can change its uid, or p11gate's memory, counts as "
		                   "someone else; identity: peer makes it attested", rule->name);
	if (ok)
		rule->limit = limit;
	return true;
}

bool
pg_break_glass_compile(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *map)
{
	static const char example[] = "{ max_signatures: 5, per: 24h }";
	struct pg_limit *cap;
	const struct pg_ynode *node;
	bool ok = true;

	if (!block_map(load, rule, map, "break_glass", break_glass_fields, example))
		return true;
	cap = pg_arena_calloc(&load->policy->arena, 1, sizeof *cap);
	if (cap == NULL)
		return false;
	cap->by = PG_LIMIT_BY_RULE;
	if ((node = required(load, rule, map, "break_glass", "max_signatures", example)) == NULL ||
	    !count_value(load->diag, node, "break_glass.max_signatures", &cap->max))
		ok = false;
	if ((node = required(load, rule, map, "break_glass", "per", example)) == NULL ||
	    !duration_value(load->diag, node, "break_glass.per", &cap->per))
		ok = false;
	else if ((cap->per_text = pg_arena_strdup(&load->policy->arena, node->value)) == NULL)
		return false;
	else
		warn_alignment(load->diag, node, cap->per);
	if (ok && load->policy->settings.identity == PG_IDENTITY_PEER &&
	    load->policy->settings.grants_dir == NULL)
		pg_diag_warning_at(load->diag, map, "break-glass rule '%s' can never match: behind "
		                   "p11-kit server a justification is only a file in grants.dir/"
		                   "break-glass, and there is no grants.dir", rule->name);
	if (ok) {
		rule->break_glass = cap;
		rule->conds |= 1u << PG_COND_BREAK_GLASS;
	}
	return true;
}

enum pg_tri
pg_break_glass_eval(const struct pg_rule *rule, struct pg_eval *ev, char *msg, size_t msg_len)
{
	char *t = ev->justification, *s = ev->justification_source;

	if (ev->justified < 0) {
		s[0] = '\0';
		t[0] = '\0';
		ev->justified = ev->req->justify != NULL &&
		                ev->req->justify(ev->req->justify_ctx, rule->break_glass->per, t,
		                                 PG_JUSTIFICATION_MAX + 1, s, PG_JUSTIFICATION_SOURCE_MAX);
		if (ev->req->justify == NULL)
			snprintf(s, PG_JUSTIFICATION_SOURCE_MAX, "what this question was given");
	}
	if (msg != NULL)
		snprintf(msg, msg_len, ev->justified ? "a break-glass justification is stated (%s)" :
		         "break-glass needs a stated justification: none in %s", s);
	return ev->justified ? PG_YES : PG_NO;
}
