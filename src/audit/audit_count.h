/* SPDX-License-Identifier: Apache-2.0
 *
 * The counters kept with the log (LOG.counters): the cache of how many uses
 * each counter has taken in its window, caught up from the log, whose
 * records are the truth ("counted" fields; a rotation's "continue" record
 * carries a snapshot in "counters").  Every function here is called with
 * the log locked (flock, and the handle's append_lock): audit.c owns the
 * locking, this file the counting.  docs/audit.md, "Counters".
 */
#ifndef P11GATE_AUDIT_COUNT_H
#define P11GATE_AUDIT_COUNT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "p11gate/audit.h"
#include "audit_buf.h"
#include "audit_tail.h"

struct pg_counters;

/* LOG.counters, opened (created when create; NULL when it is missing and
 * !create, or on error with *err set to an errno value).  log_fd is the
 * log: the file's owner and mode are checked against it. */
struct pg_counters *pg_counters_open(const char *log_path, int log_fd, bool create, int *err);
/* A store in memory only (rotation without LOG.counters: the snapshot is
 * still made from the log). */
struct pg_counters *pg_counters_new_memory(void);
void pg_counters_close(struct pg_counters *c);

/* Brings the store up to the log's end: the locked log fd is size bytes
 * long and ends in tail.  Applies the counted uses of the records written
 * since the store's anchor, or rebuilds from the whole file when the anchor
 * is not in it (rotated, cut, LOG.counters lost or torn).  0 or an errno
 * value. */
int pg_counters_catch_up(struct pg_counters *c, int log_fd, off_t size,
                         const struct pg_audit_tail *tail);

/* Plans one use of each take at now (Unix seconds): fills used, window
 * and resets.  Returns the index of the first take at its max (used is
 * then its count), or -1 if every take fits.  ENOSPC-like: -2 if the store
 * is full (no room for a new counter). */
int pg_counters_plan(struct pg_counters *c, struct pg_audit_take *takes, size_t n, uint64_t now);

/* Reads the takes' counts at now without taking (used: the count). */
void pg_counters_peek(struct pg_counters *c, struct pg_audit_take *takes, size_t n, uint64_t now);

/* The "counted" field for planned takes, appended to a record's body. */
void pg_counters_counted_json(const struct pg_audit_take *takes, size_t n, struct pg_buf *out);
/* The "counters" field: every live counter at now, for a continue record
 * (nothing when there is none). */
void pg_counters_snapshot_json(struct pg_counters *c, uint64_t now, struct pg_buf *out);

/* The planned takes were written in the record(s) ending at end; the last
 * line written is line_len bytes with hash, seq.  Applies them and writes
 * the store.  0 or an errno value (the log is the truth either way: a
 * store not written is caught up by the next writer). */
int pg_counters_commit(struct pg_counters *c, const struct pg_audit_take *takes, size_t n,
                       uint64_t now, off_t end, size_t line_len, uint64_t seq,
                       const unsigned char hash[PG_SHA256_LEN]);

/* Records that count nothing were appended from from to end (the last
 * line_len bytes long, with seq and hash) right after the store's anchor
 * (the file ended there in at):
 * the anchor moves past them in memory, so the next counted append of this
 * process reads nothing when nobody else wrote meanwhile. */
void pg_counters_follow(struct pg_counters *c, off_t from, const struct pg_audit_tail *at,
                        off_t end, size_t line_len, uint64_t seq,
                        const unsigned char hash[PG_SHA256_LEN]);

#endif /* P11GATE_AUDIT_COUNT_H */
