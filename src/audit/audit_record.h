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
 * NULL (then ""). */
void pg_audit_record_body(const struct pg_audit_record *record, const char *host,
                          struct pg_buf *out);

#endif /* P11GATE_AUDIT_RECORD_H */
