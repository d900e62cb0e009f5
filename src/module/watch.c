/* SPDX-License-Identifier: Apache-2.0
 *
 * Whether the policy file may have changed, answered without a system call
 * that walks its path.  A statx of the path at every judged call cost two
 * per signature (a few per cent of an ECDSA signature on SoftHSM2); an
 * inotify watch on the file and on its directory's entries answers with
 * one read() that finds nothing.  Events are only a hint to look: the
 * caller still compares the file's version (regime.c), so a spurious
 * event costs one statx.  What no watch on the file and its directory sees
 * (an ancestor directory swapped, a mount over the path) is caught by a
 * look at least every LOOK_ANYWAY_MS; a path through a symbolic link, or
 * on a network or FUSE filesystem (other clients' changes make no event
 * here), is not watched at all: the caller then looks at every call.
 */
#include "watch.h"

#include <errno.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define LOOK_ANYWAY_MS 100

struct pg_watch {
	pthread_mutex_t lock;   /* the descriptor's queue and the counters */
	int fd;
	uint64_t seen;          /* batches of events drained so far */
	uint64_t settled;       /* seen, as of the last look that found no change */
	int64_t look_by;        /* CLOCK_MONOTONIC_COARSE ms: look anyway from then */
	bool broken;            /* a watch ended or events were lost: always look */
};

/* Changes to the file's contents or metadata, and its own removal. */
#define FILE_EVENTS (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVE_SELF | IN_DELETE_SELF | \
                     IN_DONT_FOLLOW)
/* Entries of the directory: a file renamed into place, created, removed.
 * Not IN_MODIFY: an audit log beside the policy must not wake it. */
#define DIR_EVENTS (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MOVE_SELF | \
                    IN_DELETE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)

static int64_t
coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Filesystems where another machine's change makes no event here. */
static bool
remote_filesystem(const char *path)
{
	struct statfs fs;

	if (statfs(path, &fs) != 0)
		return true;
	switch ((unsigned long)fs.f_type) {
	case NFS_SUPER_MAGIC:
	case SMB_SUPER_MAGIC:
	case 0xff534d42ul:      /* CIFS */
	case 0xfe534d42ul:      /* SMB2 */
	case 0x65735546ul:      /* FUSE */
	case CEPH_SUPER_MAGIC:
	case V9FS_MAGIC:
	case AFS_SUPER_MAGIC:
	case CODA_SUPER_MAGIC:
		return true;
	default:
		return false;
	}
}

/* No symbolic link anywhere on path (its target could change unseen). */
static bool
no_links(const char *path)
{
	char *real = realpath(path, NULL);
	bool same = real != NULL && strcmp(real, path) == 0;

	free(real);
	return same;
}

struct pg_watch *
pg_watch_new(const char *path)
{
	struct pg_watch *w = NULL;
	char *dir = NULL, *slash;
	int fd = -1;

	if (!no_links(path) || remote_filesystem(path))
		goto fail;
	dir = strdup(path);
	if (dir == NULL || (slash = strrchr(dir, '/')) == NULL)
		goto fail;
	slash[slash == dir ? 1 : 0] = '\0';     /* "/p.yaml" lives in "/" */
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0 || inotify_add_watch(fd, path, FILE_EVENTS) < 0 ||
	    inotify_add_watch(fd, dir, DIR_EVENTS) < 0)
		goto fail;
	/* A link swapped in before the watches were added: not the file. */
	if (!no_links(path))
		goto fail;
	w = calloc(1, sizeof *w);
	if (w == NULL)
		goto fail;
	pthread_mutex_init(&w->lock, NULL);
	w->fd = fd;
	w->look_by = coarse_ms() + LOOK_ANYWAY_MS;
	free(dir);
	return w;
fail:
	if (fd >= 0)
		close(fd);
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

	for (;;) {
		n = read(w->fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		w->seen++;
		for (ssize_t off = 0; off < n;) {
			const struct inotify_event *ev = (const struct inotify_event *)(buf + off);

			/* The file or directory watched is no longer the one
			 * the path names, or events were lost. */
			if (ev->mask & (IN_MOVE_SELF | IN_DELETE_SELF | IN_IGNORED | IN_Q_OVERFLOW))
				w->broken = true;
			off += (ssize_t)(sizeof *ev + ev->len);
		}
	}
	if (n < 0 && errno != EAGAIN)
		w->broken = true;
}

bool
pg_watch_may_have_changed(struct pg_watch *w, uint64_t *ticket)
{
	bool changed;
	int64_t now = coarse_ms();

	*ticket = 0;
	if (w == NULL)
		return true;
	pthread_mutex_lock(&w->lock);
	drain(w);
	*ticket = w->seen;
	changed = w->broken || w->seen != w->settled || now >= w->look_by;
	pthread_mutex_unlock(&w->lock);
	return changed;
}

void
pg_watch_unchanged(struct pg_watch *w, uint64_t ticket)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	/* Events drained after the ticket was taken stay unanswered. */
	if (ticket > w->settled)
		w->settled = ticket;
	w->look_by = coarse_ms() + LOOK_ANYWAY_MS;
	pthread_mutex_unlock(&w->lock);
}
