/* SPDX-License-Identifier: Apache-2.0
 *
 * Turns a struct pg_audit_record into the middle of its JSON line: every
 * field from "host" to just before "prev", in the documented order.  The
 * writer adds seq and time in front and the chain fields at the end while it
 * holds the file lock.
 */
#ifndef P11GATE_AUDIT_RECORD_H
#define P11GATE_AUDIT_RECORD_H

#include "p11gate/audit.h"
#include "audit_buf.h"

/* Appends `"host":…,"event":…,…,` (ending with a comma) to out.  host may be
 * NULL (then "").  caller_json is the record's caller already rendered
 * (pg_audit_caller_json_new), or NULL to render record->caller here. */
void pg_audit_record_body(const struct pg_audit_record *record, const char *host,
                          const char *caller_json, struct pg_buf *out);

/* The caller's "caller" field as pg_audit_record_body writes it, in a
 * string to free.  NULL when out of memory. */
char *pg_audit_caller_json_new(struct pg_caller *caller);

/* What the log's records name (audit.c): its policy's SHA-256 and its
 * caller, or NULL when not set (or audit is NULL). */
const unsigned char *pg_audit_policy_sha256(const pg_audit *audit);
struct pg_caller *pg_audit_caller(const pg_audit *audit);

#endif /* P11GATE_AUDIT_RECORD_H */
