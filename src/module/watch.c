/* SPDX-License-Identifier: Apache-2.0
 *
 * Whether the policy file may have changed, answered without a system call
 * that walks its path.  A statx of the path at every judged call cost two
 * per signature (a few per cent of an ECDSA signature on SoftHSM2); an
 * inotify watch on the file and on its directory's entries answers with
 * one read() that finds nothing.  Events are only a hint to look: the
 * caller still compares the file's version (context.c), so a spurious
 * event costs one statx and a missed one cannot happen for what is
 * watched.  A path through a symbolic link is not watched at all (its
 * target can change where no watch sees it): the caller then looks at
 * every call, as it does when inotify is unavailable.
 */
#include "watch.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

struct pg_watch {
	pthread_mutex_t lock;   /* read() and the flags: one consumer at a time */
	int fd;
	bool pending;           /* an event not yet answered by a look */
	bool broken;            /* a watch ended or the queue failed: always look */
};

/* Changes to the file's contents or metadata, and its own removal. */
#define FILE_EVENTS (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVE_SELF | IN_DELETE_SELF)
/* Entries of the directory: a file renamed into place, created, removed.
 * Not IN_MODIFY: an audit log beside the policy must not wake it. */
#define DIR_EVENTS (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MOVE_SELF | \
                    IN_DELETE_SELF | IN_ONLYDIR)

struct pg_watch *
pg_watch_new(const char *path)
{
	struct pg_watch *w = NULL;
	char *real = NULL, *dir = NULL, *slash;
	int fd = -1;

	real = realpath(path, NULL);
	if (real == NULL || strcmp(real, path) != 0)
		goto fail;      /* a symbolic link on the way, or no such file */
	dir = strdup(path);
	if (dir == NULL || (slash = strrchr(dir, '/')) == NULL)
		goto fail;
	slash[slash == dir ? 1 : 0] = '\0';     /* "/p.yaml" lives in "/" */
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0 || inotify_add_watch(fd, path, FILE_EVENTS) < 0 ||
	    inotify_add_watch(fd, dir, DIR_EVENTS) < 0)
		goto fail;
	w = calloc(1, sizeof *w);
	if (w == NULL)
		goto fail;
	pthread_mutex_init(&w->lock, NULL);
	w->fd = fd;
	free(real);
	free(dir);
	return w;
fail:
	if (fd >= 0)
		close(fd);
	free(real);
	free(dir);
	return NULL;
}

void
pg_watch_free(struct pg_watch *w)
{
	if (w == NULL)
		return;
	close(w->fd);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* Drains the queue; called with the lock held. */
static void
drain(struct pg_watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof buf)) > 0) {
		w->pending = true;
		for (ssize_t off = 0; off < n;) {
			const struct inotify_event *ev = (const struct inotify_event *)(buf + off);

			/* The watch is gone (file or directory removed,
			 * unmounted) or events were lost. */
			if (ev->mask & (IN_IGNORED | IN_Q_OVERFLOW))
				w->broken = true;
			off += (ssize_t)(sizeof *ev + ev->len);
		}
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		w->broken = true;
}

bool
pg_watch_may_have_changed(struct pg_watch *w)
{
	bool changed;

	if (w == NULL)
		return true;
	pthread_mutex_lock(&w->lock);
	drain(w);
	changed = w->pending || w->broken;
	w->pending = false;
	pthread_mutex_unlock(&w->lock);
	return changed;
}

void
pg_watch_again(struct pg_watch *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->pending = true;
	pthread_mutex_unlock(&w->lock);
}
