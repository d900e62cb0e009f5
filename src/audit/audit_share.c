/* SPDX-License-Identifier: Apache-2.0
 *
 * Group commit across processes.  Behind p11-kit server every connection
 * is a process of its own, each appending to the same log; with
 * audit.sync each would pay an fdatasync per signature although one
 * fdatasync writes every byte anyone appended before it.  So they share:
 * LOG.sync, beside the log, says how many bytes of the log are known to be
 * on disk.  One process at a time syncs (an exclusive flock on LOG.sync)
 * and publishes the size it synced; the others wait for it and usually find
 * their records below that size.
 *
 * Why a record below the published size is durable:
 *  - The size is read under a shared flock of the log, so no append is
 *    half done (a short write is cut back off before its lock is let go):
 *    every byte below it was written before the fdatasync began, which
 *    writes all of the file's dirty pages, whoever wrote them, and flushes
 *    the disk's cache.  The size is published only after that succeeded.
 *  - A LOG.sync is bound to one file (device, inode, birth time) when it is
 *    made and never rebound: a rotated or recreated log gets a fresh one,
 *    made aside and renamed into place, and a process keeps the one it
 *    opened along with its log descriptor.
 *  - A process that relies on another's fdatasync still asks the kernel for
 *    write-back errors on its own descriptor (sync_file_range reports them
 *    as fdatasync would, once per open file), so a page lost to an I/O
 *    error is never acknowledged.
 *  - Only on local file systems (on a network file system another host's
 *    fdatasync does not write this host's pages), only when LOG.sync
 *    belongs to the log's owner or to this process's user and nobody may
 *    write it who may not write the log.  Anything else, or any error
 *    here: the process syncs for itself, as without sharing.
 * Truncating the log in place (unsupported, docs/audit.md) leaves a size
 * that no longer means anything: then rotate instead.
 */
#include "audit_share.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef F2FS_SUPER_MAGIC
#define F2FS_SUPER_MAGIC 0xF2F52010
#endif

#define SHARE_MAGIC "p11gsyn1"

/* LOG.sync's bytes, in this host's byte order (local file systems only). */
struct share_file {
	char magic[8];
	uint64_t dev;
	uint64_t ino;
	int64_t birth_sec;
	int64_t birth_nsec;
	struct {
		uint64_t bytes;         /* of the log, on disk */
		uint64_t check;         /* ~bytes: a torn or stray value is not believed */
	} synced;
};

struct pg_audit_share {
	int fd;                 /* LOG.sync, flocked while a process syncs */
	int log_fd;             /* the log again, read-only: its own open file
	                           description, so its shared flock excludes this
	                           process's appends as well as the others' */
};

/* Whose fdatasync covers whose pages is only known for local file systems. */
static bool
local_fs(int fd)
{
	struct statfs fs;

	if (fstatfs(fd, &fs) != 0)
		return false;
	switch ((unsigned long)fs.f_type) {
	case EXT4_SUPER_MAGIC:          /* also ext2 and ext3 */
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case TMPFS_MAGIC:
	case F2FS_SUPER_MAGIC:
		return true;
	default:
		return false;
	}
}

/* The log's identity as LOG.sync records it; false without a birth time. */
static bool
log_identity(int fd, struct share_file *id, struct statx *stx)
{
	memset(id, 0, sizeof *id);
	if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID |
	          STATX_INO | STATX_BTIME, stx) != 0 || !(stx->stx_mask & STATX_BTIME))
		return false;
	memcpy(id->magic, SHARE_MAGIC, sizeof id->magic);
	id->dev = makedev(stx->stx_dev_major, stx->stx_dev_minor);
	id->ino = stx->stx_ino;
	id->birth_sec = stx->stx_btime.tv_sec;
	id->birth_nsec = stx->stx_btime.tv_nsec;
	id->synced.check = ~(uint64_t)0;
	return true;
}

static bool
read_share(int fd, struct share_file *rec)
{
	return pread(fd, rec, sizeof *rec, 0) == (ssize_t)sizeof *rec &&
	       memcmp(rec->magic, SHARE_MAGIC, sizeof rec->magic) == 0 &&
	       rec->synced.check == ~rec->synced.bytes;
}

/* Nobody may write LOG.sync who may not write the log: whoever can lie in
 * it can make writers skip their fdatasync. */
static bool
trusted(int fd, const struct statx *log)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	if (st.st_uid != log->stx_uid && st.st_uid != geteuid())
		return false;
	if ((st.st_mode & S_IWGRP) && (!(log->stx_mode & S_IWGRP) || st.st_gid != log->stx_gid))
		return false;
	return !(st.st_mode & S_IWOTH) || (log->stx_mode & S_IWOTH);
}

static bool
bound_to(int fd, const struct share_file *id)
{
	struct share_file rec;

	return read_share(fd, &rec) && rec.dev == id->dev && rec.ino == id->ino &&
	       rec.birth_sec == id->birth_sec && rec.birth_nsec == id->birth_nsec;
}

/* A fresh LOG.sync for this log, put in place whole: linked where there is
 * none (so of processes starting together one wins and the others take
 * its file), renamed over one that is not to be used.  True if the caller
 * should look again. */
static bool
create(const char *path, const struct share_file *id, mode_t log_mode, bool replace)
{
	char tmp[PATH_MAX];
	bool ok = false;
	int fd;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= sizeof tmp)
		return false;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fchmod(fd, log_mode & 0644) == 0 && pwrite(fd, id, sizeof *id, 0) == (ssize_t)sizeof *id)
		ok = replace ? rename(tmp, path) == 0 : link(tmp, path) == 0 || errno == EEXIST;
	if (!ok || !replace)
		unlink(tmp);
	close(fd);
	return ok;
}

static int
lock(int fd, int how)
{
	while (flock(fd, how) != 0) {
		if (errno != EINTR)
			return errno;
	}
	return 0;
}

struct pg_audit_share *
pg_audit_share_open(const char *log_path, int log_fd)
{
	struct pg_audit_share *share = NULL;
	struct share_file id, again;
	struct statx log, log_again;
	char path[PATH_MAX];
	int fd = -1, log2 = -1;

	if (!local_fs(log_fd) || !log_identity(log_fd, &id, &log) ||
	    (size_t)snprintf(path, sizeof path, "%s.sync", log_path) >= sizeof path)
		goto out;
	for (int attempt = 0; attempt < 3 && fd < 0; attempt++) {
		bool missing;

		fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
		if (fd < 0 && errno != ENOENT)
			goto out;
		missing = fd < 0;
		if (fd >= 0 && !(trusted(fd, &log) && bound_to(fd, &id))) {
			close(fd);
			fd = -1;
		}
		/* Missing, or for another file: make one for this file.
		 * Processes that replace one at the same moment may end up
		 * with different files: each is still right, they just do not
		 * share. */
		if (fd < 0 && !create(path, &id, log.stx_mode, !missing))
			goto out;
	}
	if (fd < 0)
		goto out;
	/* By path, so it must be checked to be the same file. */
	log2 = open(log_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (log2 < 0 || !log_identity(log2, &again, &log_again) || again.dev != id.dev ||
	    again.ino != id.ino || again.birth_sec != id.birth_sec ||
	    again.birth_nsec != id.birth_nsec)
		goto out;
	share = malloc(sizeof *share);
	if (share == NULL)
		goto out;
	share->fd = fd;
	share->log_fd = log2;
	fd = log2 = -1;
out:
	if (fd >= 0)
		close(fd);
	if (log2 >= 0)
		close(log2);
	return share;
}

void
pg_audit_share_close(struct pg_audit_share *share)
{
	if (share == NULL)
		return;
	close(share->fd);
	close(share->log_fd);
	free(share);
}

void
pg_audit_share_forget(struct pg_audit_share *share)
{
	struct share_file rec;

	if (share == NULL || lock(share->fd, LOCK_EX) != 0)
		return;
	if (read_share(share->fd, &rec) && rec.synced.bytes != 0) {
		rec.synced.bytes = 0;
		rec.synced.check = ~rec.synced.bytes;
		(void)!pwrite(share->fd, &rec.synced, sizeof rec.synced,
		              offsetof(struct share_file, synced));
	}
	flock(share->fd, LOCK_UN);
}

int
pg_audit_share_sync(struct pg_audit_share *share, int fd, off_t end,
                    int (*datasync)(int fd, void *ctx), void *ctx, bool *called)
{
	struct share_file rec;
	off_t size;
	int rc;

	*called = false;
	/* Looked at first without the lock, which a process holds for the
	 * whole of its fdatasync: a record an earlier sync covered must not
	 * wait for the next one too.  A value that passes its check was
	 * written by a process whose fdatasync had succeeded, and it only
	 * grows, so an old one is merely cautious. */
	if (read_share(share->fd, &rec) && end >= 0 && rec.synced.bytes >= (uint64_t)end)
		goto covered;
	if (lock(share->fd, LOCK_EX) != 0)
		goto alone;
	if (!read_share(share->fd, &rec)) {
		flock(share->fd, LOCK_UN);
		goto alone;
	}
	if (end >= 0 && rec.synced.bytes >= (uint64_t)end) {
		flock(share->fd, LOCK_UN);
		goto covered;
	}
	if (lock(share->log_fd, LOCK_SH) != 0) {
		flock(share->fd, LOCK_UN);
		goto alone;
	}
	size = lseek(share->log_fd, 0, SEEK_END);
	flock(share->log_fd, LOCK_UN);
	*called = true;
	rc = datasync(fd, ctx);
	if (rc == 0 && size > 0 && (uint64_t)size > rec.synced.bytes) {
		rec.synced.bytes = (uint64_t)size;
		rec.synced.check = ~rec.synced.bytes;
		/* If this fails the others sync for themselves. */
		(void)!pwrite(share->fd, &rec.synced, sizeof rec.synced,
		              offsetof(struct share_file, synced));
	}
	flock(share->fd, LOCK_UN);
	return rc;
covered:
	/* Written by another process's fdatasync; a write-back error since
	 * fd was opened is still reported here, and only here. */
	return sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE) == 0 ? 0 : errno;
alone:
	*called = true;
	return datasync(fd, ctx);
}
