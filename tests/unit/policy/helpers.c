/* SPDX-License-Identifier: Apache-2.0
 *
 * Test helpers for the policy tests (see helpers.h).
 */
#include "helpers.h"

#include <stdio.h>
#include <string.h>

void
pg_test_capture_fn(void *ctx, enum pg_severity severity, const char *file,
                   unsigned long line, unsigned long column, const char *message)
{
	struct pg_test_capture *cap = ctx;

	if (severity == PG_DIAG_ERROR)
		cap->errors++;
	else
		cap->warnings++;
	if (cap->n == sizeof cap->diags / sizeof cap->diags[0])
		return;
	cap->diags[cap->n].severity = severity;
	cap->diags[cap->n].line = line;
	cap->diags[cap->n].column = column;
	snprintf(cap->diags[cap->n].message, sizeof cap->diags[cap->n].message, "%s", message);
	cap->n++;
}

pg_policy *
pg_test_load(const char *yaml, struct pg_test_capture *cap)
{
	memset(cap, 0, sizeof *cap);
	return pg_policy_load_buffer("test.yaml", yaml, strlen(yaml), pg_test_capture_fn, cap);
}

const struct pg_test_diag *
pg_test_find(const struct pg_test_capture *cap, enum pg_severity severity,
             unsigned long line, unsigned long column, const char *text)
{
	for (size_t i = 0; i < cap->n; i++) {
		const struct pg_test_diag *d = &cap->diags[i];
		if (d->severity == severity && d->line == line && d->column == column &&
		    strstr(d->message, text) != NULL)
			return d;
	}
	return NULL;
}

void
pg_test_dump(const struct pg_test_capture *cap)
{
	for (size_t i = 0; i < cap->n; i++)
		fprintf(stderr, "  test.yaml:%lu:%lu: %s: %s\n", cap->diags[i].line,
		        cap->diags[i].column,
		        cap->diags[i].severity == PG_DIAG_ERROR ? "error" : "warning",
		        cap->diags[i].message);
}

/* Days since the epoch (H. Hinnant's days_from_civil): no TZ involved. */
time_t
pg_test_time(const char *s)
{
	int y, m, d, hh, mm, ss;
	long long era, yoe, doy, doe;

	if (sscanf(s, "%d-%d-%dT%d:%d:%dZ", &y, &m, &d, &hh, &mm, &ss) != 6)
		return (time_t)-1;
	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (time_t)((era * 146097 + doe - 719468) * 86400LL + hh * 3600 + mm * 60 + ss);
}
