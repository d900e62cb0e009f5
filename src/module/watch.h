/* SPDX-License-Identifier: Apache-2.0
 *
 * A cheap hint that the policy file may have changed (watch.c).
 */
#ifndef P11GATE_WATCH_H
#define P11GATE_WATCH_H

#include <stdbool.h>
#include <stdint.h>

struct pg_watch;

/* Watches path (absolute, as the configuration names it).  Create it
 * before reading the file, so no change after the read goes unseen.
 * NULL when the path cannot be watched (a symbolic link on the way, a
 * network filesystem, no inotify): a NULL watch always answers "may have
 * changed". */
struct pg_watch *pg_watch_new(const char *path);
void pg_watch_free(struct pg_watch *w);

/* Whether the file may have changed since a look last found it unchanged
 * (an event since, a watch that broke, or LOOK_ANYWAY_MS gone by).  The
 * caller looks, and if it finds the file unchanged says so with the
 * ticket; otherwise the answer stays "may have changed", for every thread,
 * until the new file is in force (a new regime, a new watch). */
bool pg_watch_may_have_changed(struct pg_watch *w, uint64_t *ticket);
void pg_watch_unchanged(struct pg_watch *w, uint64_t ticket);

#endif /* P11GATE_WATCH_H */
