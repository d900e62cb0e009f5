/* SPDX-License-Identifier: Apache-2.0
 *
 * Test hooks into the audit writer: the number of fdatasync calls made and a
 * replacement for fdatasync, so tests can prove that concurrent callers share
 * one sync and that a failed sync sticks.  Per handle: no global state.
 */
#ifndef P11GATE_AUDIT_INTERNAL_H
#define P11GATE_AUDIT_INTERNAL_H

#include "p11gate/audit.h"

/* How many times this handle called fdatasync (or the replacement). */
unsigned long pg_audit_datasync_count(pg_audit *audit);

/* Replaces fdatasync for this handle: fn returns 0 or an errno value.
 * NULL restores fdatasync.  Call before the handle is shared. */
void pg_audit_set_datasync(pg_audit *audit, int (*fn)(int fd, void *ctx), void *ctx);

#endif /* P11GATE_AUDIT_INTERNAL_H */
