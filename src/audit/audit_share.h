/* SPDX-License-Identifier: Apache-2.0
 *
 * Group commit across processes: the processes appending to one audit log
 * share fdatasync through LOG.sync, a small file beside it that says how
 * many bytes of the log are known to be on disk (see audit_share.c).
 */
#ifndef P11GATE_AUDIT_SHARE_H
#define P11GATE_AUDIT_SHARE_H

#include <stdbool.h>
#include <sys/types.h>

struct pg_audit_share;

/* The sync file of the log open as log_fd at log_path, made if missing or
 * bound to another file; NULL when it cannot be shared (not a local file
 * system, a sync file that is not to be trusted or cannot be made): the
 * caller then syncs for itself. */
struct pg_audit_share *pg_audit_share_open(const char *log_path, int log_fd);

void pg_audit_share_close(struct pg_audit_share *share);

/* Makes the first `end` bytes of the log open as fd durable: nothing more
 * than a check for write-back errors on fd if another process's fdatasync
 * already covered them, else datasync(fd, ctx) by this process, published
 * for the others once it succeeded.  *called says whether datasync ran.
 * 0 or an errno value. */
int pg_audit_share_sync(struct pg_audit_share *share, int fd, off_t end,
                        int (*datasync)(int fd, void *ctx), void *ctx, bool *called);

/* The log was found cut (a tamper record): the size published may lie
 * beyond what is on disk now, so it is dropped and the next fdatasync
 * publishes a true one.  Call without holding the log's flock (the lock
 * order is LOG.sync, then the log). */
void pg_audit_share_forget(struct pg_audit_share *share);

#endif /* P11GATE_AUDIT_SHARE_H */
