/* SPDX-License-Identifier: Apache-2.0
 *
 * Reading every record of a log, for the commands that summarise or judge
 * them again (`audit report`, `explain --replay`): a file, or a directory
 * of the files a rotation made, oldest first.  It reads what the records
 * say; whether the chain is intact is `audit verify`'s job.
 */
#ifndef P11GATE_AUDIT_WALK_H
#define P11GATE_AUDIT_WALK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "audit_find.h"

/* Called once per record in file order; file names its file.  Return
 * false to stop. */
typedef bool (*pg_audit_walk_fn)(void *ctx, json_t *record, const char *file);

struct pg_audit_walk_stats {
	size_t files;        /* files read */
	size_t records;      /* records passed to the callback */
	size_t bad_lines;    /* lines that are not records (skipped) */
};

/* Walks the log at path (a regular file, or a directory of rotated files).
 * 0, or an errno value with a one-line reason in err. */
int pg_audit_walk(const char *path, pg_audit_walk_fn each, void *ctx,
                  struct pg_audit_walk_stats *stats, char *err, size_t err_len);

/* --since: an instant (as `audit find --since` takes it, UTC) or a span
 * back from now: N followed by s, m, h, d or w ("24h", "7d").  false if
 * it is neither. */
bool pg_audit_parse_since(const char *text, time_t now, struct pg_instant *out);

/* A record's "caller" object in words, escaped: "user ci (uid 1001),
 * program /usr/bin/osslsigncode"; "(no caller)" without a uid. */
void pg_audit_caller_text(const json_t *caller, char *out, size_t len);

/* Prints out as one compact JSON line on stdout and frees it.  0 or an
 * errno value (ENOMEM when out is NULL). */
int pg_audit_json_print(json_t *out);

/* Whether the record's "time" is at or after since. */
bool pg_audit_record_since(const json_t *record, const struct pg_instant *since);

#endif /* P11GATE_AUDIT_WALK_H */
