/* SPDX-License-Identifier: Apache-2.0
 *
 * IANA time zones read straight from TZif files (RFC 8536), so the policy
 * can judge hours, days and dates in a rule's zone without touching TZ or
 * the process-wide localtime state.
 */
#ifndef P11GATE_POLICY_TZ_H
#define P11GATE_POLICY_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Read-only once made: pg_tz_localtime may run in any number of threads. */
typedef struct pg_tz pg_tz;

/* Loads the zone "name" (e.g. "Europe/Berlin") from $TZDIR, else
 * /usr/share/zoneinfo.  NULL and a one-line message in err if the name is
 * unsafe, unknown or the file is not a valid TZif file. */
pg_tz *pg_tz_new(const char *name, char *err, size_t err_len);
void pg_tz_free(pg_tz *tz);

/* The name the zone was loaded under. */
const char *pg_tz_name(const pg_tz *tz);

/* Broken-down local time of t in tz: tm_year..tm_sec, tm_wday, tm_yday,
 * tm_isdst, tm_gmtoff and tm_zone (the abbreviation, e.g. "CEST", owned by
 * tz) are set.  false, with *out zeroed, if the year does not fit an int. */
bool pg_tz_localtime(const pg_tz *tz, time_t t, struct tm *out);

#endif /* P11GATE_POLICY_TZ_H */
