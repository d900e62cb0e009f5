/* SPDX-License-Identifier: Apache-2.0
 *
 * A cheap hint that the policy file may have changed (watch.c).
 */
#ifndef P11GATE_WATCH_H
#define P11GATE_WATCH_H

#include <stdbool.h>

struct pg_watch;

/* Watches path (absolute, as the configuration names it).  Create it
 * before reading the file, so no change after the read goes unseen.
 * NULL when the path cannot be watched (a symbolic link on the way, no
 * inotify): a NULL watch always answers "may have changed". */
struct pg_watch *pg_watch_new(const char *path);
void pg_watch_free(struct pg_watch *w);

/* Whether anything happened to the file or its directory's entries since
 * the last call; answering true consumes it. */
bool pg_watch_may_have_changed(struct pg_watch *w);
/* A change seen is not dealt with yet (the new file is not in force):
 * answer true again next time. */
void pg_watch_again(struct pg_watch *w);

#endif /* P11GATE_WATCH_H */
