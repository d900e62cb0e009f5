/* SPDX-License-Identifier: Apache-2.0
 *
 * The policy's alerts: block (docs/policy.md, "Reference: alerts"): when a
 * burst of refusals, and a key used by a caller it has not been seen with,
 * raise an alert.  Compiled here; counted by the module against the log's
 * counter store (src/module/alert_count.c).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const alerts_fields[] = { "refusals", "new_caller", NULL };
static const char *const refusals_fields[] = { "max", "per", "by", NULL };
static const char *const new_caller_fields[] = { "by", "remember", NULL };

/* A span: N followed by s, m, h, d or w, from 1 s to max seconds. */
static bool
span(const struct pg_ynode *node, uint64_t max, uint64_t *out)
{
	static const struct { char unit; uint64_t seconds; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 },
	};
	unsigned long long n;
	char *end;

	if (node->kind != PG_Y_SCALAR || node->value[0] < '0' || node->value[0] > '9')
		return false;
	errno = 0;
	n = strtoull(node->value, &end, 10);
	if (errno != 0 || n == 0 || end[0] == '\0' || end[1] != '\0')
		return false;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (end[0] == units[i].unit && n <= max / units[i].seconds) {
			*out = n * units[i].seconds;
			return true;
		}
	}
	return false;
}

/* by: one word of names, or a list of them: bits of the ones given. */
static unsigned
compile_by(struct pg_diag *diag, const struct pg_ynode *by, const char *what,
           const char *const *names)
{
	unsigned bits = 0;
	size_t n = by->kind == PG_Y_SEQ ? by->n : 1;

	if (by->kind != PG_Y_SEQ && by->kind != PG_Y_SCALAR) {
		pg_diag_error_at(diag, by, "%s.by must be %s or %s, or a list of them", what, names[0],
		                 names[1]);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const struct pg_ynode *item = by->kind == PG_Y_SEQ ? by->kids[i] : by;
		size_t j;

		for (j = 0; names[j] != NULL; j++) {
			if (item->kind == PG_Y_SCALAR && strcmp(item->value, names[j]) == 0)
				break;
		}
		if (names[j] == NULL) {
			pg_diag_error_at(diag, item, "%s.by must be %s or %s (or a list of them), not %s",
			                 what, names[0], names[1], item->kind == PG_Y_SCALAR ? item->value :
			                 pg_ynode_describe(item));
			continue;
		}
		bits |= 1u << j;
	}
	if (by->kind == PG_Y_SEQ && by->n == 0)
		pg_diag_error_at(diag, by, "%s.by is empty; give %s, %s or both", what, names[0], names[1]);
	return bits;
}

static void
compile_refusals(struct pg_load *load, const struct pg_ynode *map)
{
	static const char *const by_names[] = { "caller", "key", NULL };
	struct pg_alerts *alerts = &load->policy->alerts;
	struct pg_diag *diag = load->diag;
	const struct pg_ynode *node;
	char *end;

	if (!pg_yexpect(diag, map, PG_Y_MAP, "alerts.refusals"))
		return;
	pg_ymap_check_keys(diag, map, refusals_fields, "alerts.refusals");
	node = pg_ymap_get(map, "max");
	errno = 0;
	if (node == NULL)
		pg_diag_error_at(diag, map, "alerts.refusals needs max: the number of refusals in "
		                 "the window that raises the alert (e.g. max: 5)");
	else if (node->kind != PG_Y_SCALAR || node->value[0] < '1' || node->value[0] > '9' ||
	         (alerts->refusals_max = strtoull(node->value, &end, 10)) == 0 || *end != '\0' ||
	         errno != 0 || alerts->refusals_max > 1000000)
		pg_diag_error_at(diag, node, "alerts.refusals.max must be a whole number from 1 to "
		                 "1000000, not %s", node->kind == PG_Y_SCALAR ? node->value :
		                 pg_ynode_describe(node));
	node = pg_ymap_get(map, "per");
	if (node == NULL)
		pg_diag_error_at(diag, map, "alerts.refusals needs per: the window, e.g. per: 10m "
		                 "(s, m, h, d or w)");
	else if (!span(node, 7 * 86400, &alerts->refusals_per))
		pg_diag_error_at(diag, node, "alerts.refusals.per must be a span from 1s to 1w like "
		                 "30s, 10m, 1h or 1d, not %s", node->kind == PG_Y_SCALAR ? node->value :
		                 pg_ynode_describe(node));
	node = pg_ymap_get(map, "by");
	alerts->refusals_by = node != NULL ? compile_by(diag, node, "alerts.refusals", by_names) :
	                      PG_ALERTS_BY_CALLER;
}

static void
compile_new_caller(struct pg_load *load, const struct pg_ynode *map)
{
	static const char *const by_names[] = { "user", "program", NULL };
	struct pg_alerts *alerts = &load->policy->alerts;
	struct pg_diag *diag = load->diag;
	const struct pg_ynode *node;

	if (!pg_yexpect(diag, map, PG_Y_MAP, "alerts.new_caller"))
		return;
	pg_ymap_check_keys(diag, map, new_caller_fields, "alerts.new_caller");
	node = pg_ymap_get(map, "by");
	alerts->new_caller_by = node != NULL ? compile_by(diag, node, "alerts.new_caller", by_names) :
	                        PG_ALERTS_BY_USER | PG_ALERTS_BY_PROGRAM;
	node = pg_ymap_get(map, "remember");
	alerts->new_caller_remember = PG_ALERTS_REMEMBER_DEFAULT;
	if (node != NULL && !span(node, 366 * 86400, &alerts->new_caller_remember))
		pg_diag_error_at(diag, node, "alerts.new_caller.remember must be a span from 1s to "
		                 "366d like 30d or 52w, not %s", node->kind == PG_Y_SCALAR ?
		                 node->value : pg_ynode_describe(node));
}

bool
pg_alerts_compile(struct pg_load *load, const struct pg_ynode *root)
{
	const struct pg_ynode *alerts = pg_ymap_get(root, "alerts"), *node;

	if (alerts == NULL || !pg_yexpect(load->diag, alerts, PG_Y_MAP, "alerts"))
		return true;
	pg_ymap_check_keys(load->diag, alerts, alerts_fields, "alerts");
	if ((node = pg_ymap_get(alerts, "refusals")) != NULL)
		compile_refusals(load, node);
	if ((node = pg_ymap_get(alerts, "new_caller")) != NULL)
		compile_new_caller(load, node);
	return true;
}

const struct pg_alerts *
pg_policy_alerts(const pg_policy *policy)
{
	return &policy->alerts;
}
