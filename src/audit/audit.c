/* SPDX-License-Identifier: Apache-2.0
 *
 * The audit log writer: appends one chained record per call, whole or not at
 * all, serialised across threads (a mutex) and processes (flock), and shares
 * fdatasync between concurrent callers, and with other processes
 * (audit_share.c).  Record formatting is in audit_record.c, finding the
 * chain's end in audit_tail.c.
 */
#include "p11gate/audit.h"
#include "p11gate/common.h"
#include "audit_buf.h"
#include "audit_count.h"
#include "audit_internal.h"
#include "audit_record.h"
#include "audit_share.h"
#include "audit_tail.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

struct pg_audit {
	char *path;
	bool sync;
	bool to_syslog;
	char host[HOST_NAME_MAX + 1];
	/* What the records name (pg_audit_set_policy, pg_audit_set_caller):
	 * the caller is rendered once and published whole, so records built
	 * on other threads see it complete or not at all. */
	bool has_policy;
	unsigned char policy_sha256[PG_SHA256_LEN];
	atomic_int caller_state;        /* CALLER_NONE, CALLER_SETTING, CALLER_SET */
	struct pg_caller *caller;       /* read only once CALLER_SET (acquire) */
	char *caller_json;              /* NULL (out of memory): rendered per record */

	/* Serialises the appends of this process's threads (flock alone does
	 * not: threads share the open file description, and with it the
	 * lock).  Guards pid and the tail cache. */
	pthread_mutex_t append_lock;
	pid_t pid;                      /* the process fd was opened in */
	/* A page the kernel zeroes in a child (MADV_WIPEONFORK), so that
	 * "still the process that opened fd?" costs no getpid() per record:
	 * HERE_FD is set while fd is this process's, HERE_SYNCER while the
	 * syncer thread is.  NULL where the kernel cannot: getpid() then. */
	volatile unsigned char *here;
	int64_t next_path_check;        /* CLOCK_MONOTONIC_COARSE ms: when to look for rotation */
	bool cache_valid;               /* the file still ends with our last record */
	/* The anchor: the last whole record this handle saw at the end of the
	 * file under the lock (its own or another writer's), where the file
	 * ended then, its line's length and hash.  A file found shorter, or
	 * without those bytes there, or ending in a lower seq, was cut. */
	bool anchored;
	off_t cache_size;
	size_t cache_len;
	uint64_t cache_seq;
	unsigned char cache_hash[PG_SHA256_LEN];
	/* Records still to be written before the next one: a tamper record
	 * whose write failed, the start record (pg_audit_start). */
	struct pg_buf pending_tamper, pending_start;
	bool cut_found;                 /* LOG.sync's size is to be dropped (unlocked) */
	/* Rotation and checkpoints (pg_audit_set_max_size, _set_checkpoint). */
	uint64_t max_size;              /* rotate before passing it; 0: never */
	bool rotate_warned;             /* a rotation at max_size failed: said once */
	/* RLIMIT_FSIZE as last read (fits_size_limit); guarded like the tail cache. */
	bool limit_fixed, limit_read;
	rlim_t limit;
	pg_audit_key *checkpoint_key;   /* signs checkpoints; NULL: none */
	uint64_t checkpoint_every;
	/* LOG.counters (audit_count.c), opened at the first counted append;
	 * guarded like the tail cache. */
	struct pg_counters *counters;
	bool counters_warned;           /* it cannot be opened: said once */

	/* Guards the sync state.  fd is replaced only with both locks held,
	 * so holding either is enough to read it.  Lock order: append_lock,
	 * then sync_lock. */
	pthread_mutex_t sync_lock;
	pthread_cond_t sync_done;
	int fd;
	struct pg_audit_share *share;   /* syncs shared with other processes, or NULL;
	                                   replaced like fd */
	uint64_t written;               /* highest seq this handle appended */
	off_t written_end;              /* where that record ends in the file */
	uint64_t synced;                /* every record up to this seq is on disk */
	uint64_t epoch;                 /* bumped when seq restarts (a new file) */
	bool syncing;                   /* a thread is in fdatasync */
	int sync_error;                 /* sticky: a failed fsync may have lost data */
	unsigned long datasync_calls;
	int (*datasync)(int fd, void *ctx);
	void *datasync_ctx;

	/* The background syncer (pg_audit_sync_start), so the disk syncs
	 * while the token signs.  Started on first use in the process that
	 * owns it; guarded by sync_lock. */
	bool may_start_thread;
	bool syncer_running;
	bool syncer_stop;
	pid_t syncer_pid;
	pthread_t syncer;
	pthread_cond_t sync_wanted;
	uint64_t requested;             /* highest seq asked for in the background */
};

enum { CALLER_NONE, CALLER_SETTING, CALLER_SET };

enum { HERE_FD, HERE_SYNCER };

static volatile unsigned char *
here_new(void)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (madvise(p, (size_t)page, MADV_WIPEONFORK) != 0) {
		munmap(p, (size_t)page);
		return NULL;
	}
	return p;
}

static void
here_free(volatile unsigned char *here)
{
	if (here != NULL)
		munmap((void *)here, (size_t)sysconf(_SC_PAGESIZE));
}

/* fd (HERE_FD) or the syncer (HERE_SYNCER) belongs to this process, not
 * to the one it was inherited from across fork(). */
static bool
is_here(const pg_audit *audit, int what)
{
	if (audit->here != NULL)
		return audit->here[what] != 0;
	return (what == HERE_FD ? audit->pid : audit->syncer_pid) == getpid();
}

static void
set_here(pg_audit *audit, int what)
{
	if (what == HERE_FD)
		audit->pid = getpid();
	else
		audit->syncer_pid = getpid();
	if (audit->here != NULL)
		audit->here[what] = 1;
}

static int
default_datasync(int fd, void *ctx)
{
	(void)ctx;
	return fdatasync(fd) == 0 ? 0 : errno;
}

/* Opens path for reading the tail and appending; the caller turns errno
 * into a message. */
static int
open_log(const char *path, int *fd_out)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0)
		return errno;
	/* A FIFO, a device or /dev/null would take records and keep none. */
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return EINVAL;
	}
	*fd_out = fd;
	return 0;
}

static void
describe_open_error(const char *path, int rc, char *err, size_t err_len)
{
	char dir[PATH_MAX];
	const char *slash;

	switch (rc) {
	case ENOENT:
		slash = strrchr(path, '/');
		if (slash == NULL)
			snprintf(dir, sizeof dir, ".");
		else
			snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
		snprintf(err, err_len, "cannot open audit log '%s': the directory '%s' does not exist "
		         "(create it, or change audit.file)", path, dir);
		break;
	case EACCES:
	case EPERM:
		snprintf(err, err_len, "cannot open audit log '%s': permission denied (the user running "
		         "the signing program must be able to read and append to the file, or create it "
		         "in its directory: check their owner and mode)", path);
		break;
	case EINVAL:
		snprintf(err, err_len, "audit log '%s' is not a regular file (audit.file must name a file)",
		         path);
		break;
	default:
		snprintf(err, err_len, "cannot open audit log '%s': %s", path, strerror(rc));
		break;
	}
}

/* Reads the tail once at open so a log that cannot be continued is
 * refused when the configuration loads, not at the first signature. */
static int
check_tail(int fd, const char *path, char *err, size_t err_len)
{
	struct pg_audit_tail tail;
	char why[128] = "";
	struct stat st;
	int rc;

	while (flock(fd, LOCK_SH) != 0) {
		if (errno != EINTR) {
			rc = errno;
			snprintf(err, err_len, "cannot lock audit log '%s': %s", path, strerror(rc));
			return rc;
		}
	}
	if (fstat(fd, &st) != 0)
		rc = errno;
	else
		rc = pg_audit_tail_read(fd, st.st_size, &tail, why, sizeof why);
	flock(fd, LOCK_UN);
	if (rc != 0)
		snprintf(err, err_len, "cannot continue audit log '%s': %s (move it aside to start a "
		         "new log)", path, why[0] != '\0' ? why : strerror(rc));
	return rc;
}

pg_audit *
pg_audit_open(const char *path, bool sync, bool to_syslog, char *err, size_t err_len)
{
	pg_audit *audit = NULL;
	int fd = -1, rc;

	if (path == NULL || path[0] == '\0') {
		snprintf(err, err_len, "no audit log file given (set audit.file)");
		goto error;
	}
	rc = open_log(path, &fd);
	if (rc != 0) {
		describe_open_error(path, rc, err, err_len);
		goto error;
	}
	if (check_tail(fd, path, err, err_len) != 0)
		goto error;
	audit = calloc(1, sizeof *audit);
	if (audit == NULL || (audit->path = strdup(path)) == NULL) {
		snprintf(err, err_len, "out of memory opening audit log '%s'", path);
		goto error;
	}
	if (gethostname(audit->host, sizeof audit->host) != 0)
		audit->host[0] = '\0';
	audit->host[sizeof audit->host - 1] = '\0';
	audit->sync = sync;
	audit->to_syslog = to_syslog;
	audit->fd = fd;
	if (sync)
		audit->share = pg_audit_share_open(path, fd);
	audit->here = here_new();
	set_here(audit, HERE_FD);
	audit->datasync = default_datasync;
	pg_buf_init(&audit->pending_tamper);
	pg_buf_init(&audit->pending_start);
	pthread_mutex_init(&audit->append_lock, NULL);
	pthread_mutex_init(&audit->sync_lock, NULL);
	pthread_cond_init(&audit->sync_done, NULL);
	pthread_cond_init(&audit->sync_wanted, NULL);
	return audit;
error:
	if (audit != NULL)
		free(audit->path);
	free(audit);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* The descriptors and the memory of a handle no thread uses any more. */
static void
release(pg_audit *audit)
{
	close(audit->fd);
	pg_audit_share_close(audit->share);
	here_free(audit->here);
	pg_buf_release(&audit->pending_tamper);
	pg_buf_release(&audit->pending_start);
	free(audit->caller_json);
	pg_audit_key_free(audit->checkpoint_key);
	pg_counters_close(audit->counters);
	free(audit->path);
	free(audit);
}

void
pg_audit_close(pg_audit *audit)
{
	bool join;

	if (audit == NULL)
		return;
	if (!is_here(audit, HERE_FD) || (audit->syncer_running && !is_here(audit, HERE_SYNCER))) {
		/* Inherited across fork(): its locks and condition variables may
		 * record threads of the parent that do not exist here (glibc's
		 * pthread_cond_destroy would wait for them forever).  Only the
		 * descriptor and the memory are this process's to release. */
		release(audit);
		return;
	}
	/* Stop the background syncer. */
	pthread_mutex_lock(&audit->sync_lock);
	audit->syncer_stop = true;
	pthread_cond_signal(&audit->sync_wanted);
	join = audit->syncer_running;
	pthread_mutex_unlock(&audit->sync_lock);
	if (join)
		pthread_join(audit->syncer, NULL);
	pthread_cond_destroy(&audit->sync_wanted);
	pthread_cond_destroy(&audit->sync_done);
	pthread_mutex_destroy(&audit->sync_lock);
	pthread_mutex_destroy(&audit->append_lock);
	release(audit);
}

const char *
pg_audit_path(const pg_audit *audit)
{
	return audit != NULL ? audit->path : NULL;
}

void
pg_audit_set_policy(pg_audit *audit, const unsigned char sha256[PG_SHA256_LEN])
{
	if (audit == NULL)
		return;
	memcpy(audit->policy_sha256, sha256, PG_SHA256_LEN);
	audit->has_policy = true;
}

const unsigned char *
pg_audit_policy_sha256(const pg_audit *audit)
{
	return audit != NULL && audit->has_policy ? audit->policy_sha256 : NULL;
}

void
pg_audit_set_caller(pg_audit *audit, struct pg_caller *caller)
{
	int none = CALLER_NONE;

	/* One thread sets it; the others see it whole once CALLER_SET. */
	if (audit == NULL || caller == NULL ||
	    !atomic_compare_exchange_strong(&audit->caller_state, &none, CALLER_SETTING))
		return;
	audit->caller = caller;
	audit->caller_json = pg_audit_caller_json_new(caller);
	atomic_store_explicit(&audit->caller_state, CALLER_SET, memory_order_release);
}

struct pg_caller *
pg_audit_caller(const pg_audit *audit)
{
	if (audit == NULL ||
	    atomic_load_explicit(&((pg_audit *)audit)->caller_state, memory_order_acquire) != CALLER_SET)
		return NULL;
	return audit->caller;
}

/* The record's caller as rendered once, if it is the log's. */
static const char *
cached_caller_json(const pg_audit *audit, const struct pg_audit_record *record)
{
	struct pg_caller *caller = pg_audit_caller(audit);

	return caller != NULL && record->caller == caller ? audit->caller_json : NULL;
}

/* Replaces fd with a new open file description of path: after a fork (the
 * child shares the parent's, and with it the flock, so they would not
 * exclude each other) or after the log was rotated (renamed) away.
 * Called with append_lock held.  Like any pthread object, a handle is only
 * usable in a child if no other thread of the parent was inside it at the
 * fork; the module itself reinitialises after fork. */
static int
reopen(pg_audit *audit)
{
	bool forked = !is_here(audit, HERE_FD);
	struct pg_audit_share *share, *old_share;
	struct stat was, now;
	int fd = -1, old, rc;   /* set by open_log; -O3 cannot tell (maybe-uninitialized) */

	rc = open_log(audit->path, &fd);
	if (rc != 0)
		return rc;
	/* The anchor holds for the same file only (a rotated log's new file
	 * is rightly shorter). */
	if (fstat(audit->fd, &was) != 0 || fstat(fd, &now) != 0 || was.st_dev != now.st_dev ||
	    was.st_ino != now.st_ino)
		audit->anchored = false;
	if (forked) {
		/* The parent's pending records are the parent's to write. */
		pg_buf_release(&audit->pending_tamper);
		pg_buf_release(&audit->pending_start);
	}
	/* A child's copy of the parent's LOG.sync descriptor shares its flock
	 * (and a rotated log's is bound to the old file): open it again too. */
	share = audit->sync ? pg_audit_share_open(audit->path, fd) : NULL;
	pthread_mutex_lock(&audit->sync_lock);
	if (forked) {
		/* The parent's sync state is not the child's. */
		audit->syncing = false;
		audit->written = 0;
		audit->written_end = 0;
		audit->synced = 0;
		audit->epoch++;
	}
	while (audit->syncing)
		pthread_cond_wait(&audit->sync_done, &audit->sync_lock);
	old = audit->fd;
	audit->fd = fd;
	old_share = audit->share;
	audit->share = share;
	pthread_mutex_unlock(&audit->sync_lock);
	pg_audit_share_close(old_share);
	/* Records appended to the rotated file must reach its disk too: the
	 * sync state only follows the new file from here on. */
	if (!forked && audit->sync) {
		rc = audit->datasync(old, audit->datasync_ctx);
		pthread_mutex_lock(&audit->sync_lock);
		audit->datasync_calls++;
		if (rc != 0 && audit->sync_error == 0)
			audit->sync_error = rc;
		pthread_mutex_unlock(&audit->sync_lock);
	}
	close(old);
	set_here(audit, HERE_FD);
	audit->cache_valid = false;
	return 0;
}

/* Whether it is time to check that path still names the open file.  A
 * stat per append would cost more than the write itself; a rotated log is
 * noticed within PATH_CHECK_MS instead (the coarse clock is read without a
 * system call). */
static bool
path_check_due(pg_audit *audit)
{
	enum { PATH_CHECK_MS = 1000 };
	struct timespec ts;
	int64_t now;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (now < audit->next_path_check)
		return false;
	audit->next_path_check = now + PATH_CHECK_MS;
	return true;
}

/* Takes the file lock on the file that path names now, reopening if it was
 * rotated.  On success *size is the locked file's size, from lseek rather
 * than fstat: on kernels with multigrain timestamps (Linux 6.13 and later),
 * reading a file's times makes the next write store fine-grained ones: an
 * inode update (a journal entry, where there is a journal) per record. */
static int
lock_file(pg_audit *audit, off_t *size)
{
	bool check_path = path_check_due(audit);
	struct stat st, named;
	int rc;

	if (!is_here(audit, HERE_FD) && (rc = reopen(audit)) != 0)
		return rc;
	for (int attempt = 0; ; attempt++) {
		while (flock(audit->fd, LOCK_EX) != 0) {
			if (errno != EINTR)
				return errno;
		}
		*size = lseek(audit->fd, 0, SEEK_END);
		if (*size < 0 || (check_path && fstat(audit->fd, &st) != 0)) {
			rc = errno;
			flock(audit->fd, LOCK_UN);
			return rc;
		}
		/* If stat fails for another reason than ENOENT (a directory
		 * we may not search), the open file is still a good log. */
		if (!check_path || (stat(audit->path, &named) != 0 ? errno != ENOENT :
		                    named.st_dev == st.st_dev && named.st_ino == st.st_ino))
			return 0;
		flock(audit->fd, LOCK_UN);
		if (attempt == 3)
			return EAGAIN;  /* rotated under us again and again */
		rc = reopen(audit);
		if (rc != 0)
			return rc;
	}
}

/* Writes value as exactly width decimal digits. */
static char *
put_digits(char *p, unsigned value, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + value % 10);
		value /= 10;
	}
	return p + width;
}

/* "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (27 bytes), UTC, now; returns the end. */
static char *
put_time(char *p)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	p = put_digits(p, (unsigned)(tm.tm_year + 1900), 4);
	*p++ = '-';
	p = put_digits(p, (unsigned)(tm.tm_mon + 1), 2);
	*p++ = '-';
	p = put_digits(p, (unsigned)tm.tm_mday, 2);
	*p++ = 'T';
	p = put_digits(p, (unsigned)tm.tm_hour, 2);
	*p++ = ':';
	p = put_digits(p, (unsigned)tm.tm_min, 2);
	*p++ = ':';
	p = put_digits(p, (unsigned)tm.tm_sec, 2);
	*p++ = '.';
	p = put_digits(p, (unsigned)(ts.tv_nsec / 1000), 6);
	*p++ = 'Z';
	return p;
}

static char *
put_str(char *p, const char *s)
{
	size_t len = strlen(s);

	memcpy(p, s, len);
	return p + len;
}

/* Exceeding RLIMIT_FSIZE raises SIGXFSZ, which kills by default: check
 * first and refuse instead.  Read per record where the caller's own code
 * runs in this process: it may lower its limit at any time
 * (tests/soak/test_full_disk.c does, between two signatures), and there is
 * no cheaper way to learn it.  Read once where it does not
 * (pg_audit_set_limit_fixed). */
static bool
fits_size_limit(pg_audit *audit, off_t size, size_t len)
{
	struct rlimit rl;

	if (audit->limit_fixed && audit->limit_read) {
		rl.rlim_cur = audit->limit;
	} else {
		if (getrlimit(RLIMIT_FSIZE, &rl) != 0)
			rl.rlim_cur = RLIM_INFINITY;
		audit->limit = rl.rlim_cur;
		audit->limit_read = true;
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		return true;
	return (uint64_t)size <= rl.rlim_cur && len <= rl.rlim_cur - (uint64_t)size;
}

void
pg_audit_set_limit_fixed(pg_audit *audit, bool fixed)
{
	audit->limit_fixed = fixed;
}

/* Writes line[0..len) with one write(); a partial write is cut back off so
 * no half record stays behind.  0 or an errno value. */
static int
write_whole(int fd, const char *line, size_t len, off_t old_size)
{
	ssize_t n;
	int rc;

	do {
		n = write(fd, line, len);
	} while (n < 0 && errno == EINTR);
	if (n >= 0 && (size_t)n == len)
		return 0;
	/* A short write to a regular file means the disk filled up (the
	 * size limit was checked before). */
	rc = n < 0 ? errno : ENOSPC;
	if (n > 0 && ftruncate(fd, old_size) != 0) {
		/* The next writer closes the broken line and chains to it
		 * (crash recovery); the record is refused either way. */
	}
	return rc;
}

/* Room for what compose adds to a body: the newline of a recovery, seq
 * (20 digits), time (27), "recovered", prev (64) and the punctuation; and
 * a checkpoint's signature in hex. */
#define LINE_EXTRA 256
/* The lines and the body of a record are built on the stack up to these
 * sizes (an allow record is about 1 KB), on the heap beyond. */
#define LINE_ON_STACK 4096
#define BODY_ON_STACK 2048
#define SIGNATURE_EXTRA (2 * PG_AUDIT_SIG_MAX + 32)

/* What one write() appends: a tamper record and the start record when they
 * are due, then the caller's record (if any), then a checkpoint when one
 * is due. */
enum { MAX_BODIES = 4 };

struct line {
	char *data;
	size_t len, cap;
	size_t start;           /* the first record starts after a recovery newline */
	size_t last;            /* where the last record starts */
	bool borrowed;          /* data is the caller's (on its stack), not the heap's */
	char last_time[PG_AUDIT_TIME_LEN + 1];   /* the last record's time */
};

/* Makes room in line for the bodies and what compose adds to them. */
static int
line_reserve(struct line *line, const struct pg_buf *const *bodies, size_t n, bool sign)
{
	size_t need = sign ? SIGNATURE_EXTRA : 0;
	char *data;

	for (size_t i = 0; i < n; i++)
		need += bodies[i]->len + LINE_EXTRA;
	if (need <= line->cap)
		return 0;
	data = line->borrowed ? malloc(need) : realloc(line->data, need);
	if (data == NULL)
		return ENOMEM;
	line->data = data;
	line->cap = need;
	line->borrowed = false;
	return 0;
}

/* Signs a checkpoint's line, record[0..end) (it ends with its prev), and
 * puts the signature in as the field before prev, at prev_at: the signed
 * bytes are the line without its signature field (docs/audit.md), and prev
 * stays the last field, as in every record.  Returns the new end. */
static char *
put_signature(char *record, char *end, char *prev_at, const pg_audit_key *key)
{
	static const char field[] = "\"signature\":\"";
	unsigned char sig[PG_AUDIT_SIG_MAX];
	size_t len = pg_audit_key_sign(key, record, (size_t)(end - record), sig);
	size_t insert = sizeof field - 1 + 2 * len + 2;

	if (len == 0)
		return NULL;
	memmove(prev_at + insert, prev_at, (size_t)(end - prev_at));
	memcpy(prev_at, field, sizeof field - 1);
	pg_hex_encode(sig, len, prev_at + sizeof field - 1);
	memcpy(prev_at + insert - 2, "\",", 2);
	return end + insert;
}

/* The lines: seq, time, the body, "recovered" after a torn tail (first line
 * only), prev, and before prev the signature when sign_last (the last body
 * is a checkpoint).  line->data has room (line_reserve).  Returns the seq of
 * the last line, or 0 if out of memory or the signature failed. */
static uint64_t
compose(struct line *line, const struct pg_buf *const *bodies, size_t n,
        const struct pg_audit_tail *tail, const pg_audit_key *sign_last)
{
	unsigned char hash[PG_SHA256_LEN];
	char prev[PG_SHA256_HEX_LEN + 1];
	uint64_t seq = tail->seq;
	char *p = line->data, *time, *prev_at;

	memcpy(hash, tail->hash, PG_SHA256_LEN);
	if (tail->needs_newline)
		*p++ = '\n';
	line->start = (size_t)(p - line->data);
	for (size_t i = 0; i < n; i++) {
		char *begin = p;

		/* A line's prev is the hash of the line before it. */
		if (i > 0 && !pg_sha256(line->data + line->last, (size_t)(p - 1 - line->data) -
		                        line->last, hash))
			return 0;
		line->last = (size_t)(begin - line->data);
		pg_hex_encode(hash, PG_SHA256_LEN, prev);
		p = put_str(p, "{\"seq\":");
		p += pg_u64_decimal(++seq, p);
		p = put_str(p, ",\"time\":\"");
		time = p;
		p = put_time(p);
		memcpy(line->last_time, time, PG_AUDIT_TIME_LEN);
		line->last_time[PG_AUDIT_TIME_LEN] = '\0';
		p = put_str(p, "\",");
		memcpy(p, bodies[i]->data, bodies[i]->len);
		p += bodies[i]->len;
		if (i == 0 && tail->recovered)
			p = put_str(p, "\"recovered\":\"truncated\",");
		prev_at = p;
		p = put_str(p, "\"prev\":\"");
		p = put_str(p, prev);
		p = put_str(p, "\"}");
		if (i == n - 1 && sign_last != NULL &&
		    (p = put_signature(begin, p, prev_at, sign_last)) == NULL)
			return 0;
		*p++ = '\n';
	}
	line->len = (size_t)(p - line->data);
	return seq;
}

/* Says loudly, on stderr and to syslog (whatever audit.syslog says), that
 * the log was cut behind this writer. */
static void
alarm_tamper(const pg_audit *audit, const char *why)
{
	char path[PATH_MAX + 64];

	const struct pg_alert alert = { .kind = PG_ALERT_TAMPER, .reason = why };

	pg_esc(audit->path, PG_ESC_VALUE, path, sizeof path);
	dprintf(STDERR_FILENO, "p11gate: TAMPERING: audit log %s: %s\n", path, why);
	/* The tamper record, written next, is this alert's record. */
	pg_alert_syslog(&alert, audit->path, NULL);
}

/* Whether line (cache_len + 1 bytes found where the anchor was; NULL if
 * they could not be read) is the anchor and its newline; if not, why. */
static bool
anchor_matches(const pg_audit *audit, const char *line, char *why, size_t why_len)
{
	unsigned char hash[PG_SHA256_LEN];
	bool same = line != NULL && line[audit->cache_len] == '\n' &&
	            pg_sha256(line, audit->cache_len, hash) &&
	            memcmp(hash, audit->cache_hash, PG_SHA256_LEN) == 0;

	if (!same)
		snprintf(why, why_len, "the record this process saw last (seq %" PRIu64 ", ending at "
		         "byte %lld) is no longer there: the log was cut and written again",
		         audit->cache_seq, (long long)audit->cache_size);
	return same;
}

/* Whether the file, size bytes long now, still holds the anchor (the last
 * record this handle saw at its end) where it was.  Appends by others only
 * make a file longer, and a writer cut short by a crash or a full disk
 * leaves or cuts back only bytes after the end it found: none of that moves
 * the anchor.  Called with the file locked; false with the reason in why. */
static bool
anchor_holds(pg_audit *audit, off_t size, char *why, size_t why_len)
{
	size_t len = audit->cache_len + 1;
	bool same;
	char *buf;

	if (size < audit->cache_size) {
		snprintf(why, why_len, "the file is %lld bytes long, shorter than the %lld this process "
		         "saw it end at (after seq %" PRIu64 "): records were cut off its end",
		         (long long)size, (long long)audit->cache_size, audit->cache_seq);
		return false;
	}
	buf = malloc(len);
	if (buf == NULL)
		return true;    /* cannot look: no alarm without a finding */
	same = anchor_matches(audit, pg_audit_read_window(audit->fd, audit->cache_size - (off_t)len,
	                                                  len, buf) == 0 ? buf : NULL, why, why_len);
	free(buf);
	return same;
}

/* The tamper record: what this writer had seen, what it found, and why. */
static void
tamper_body(pg_audit *audit, off_t size, const char *why)
{
	const struct pg_audit_record record = pg_audit_record_tamper(why, audit->cache_seq,
	                                                             (uint64_t)audit->cache_size,
	                                                             audit->cache_hash, (uint64_t)size);

	pg_buf_release(&audit->pending_tamper);
	pg_audit_record_body(&record, audit->host, NULL, &audit->pending_tamper);
	if (audit->pending_tamper.failed)
		pg_buf_release(&audit->pending_tamper);
}

/* Where the chain ends and whether the anchor holds, with one read from
 * the anchor's line to the end: the usual case when other writers
 * appended a few records since this handle's last.  0, or EAGAIN when the
 * two must be read apart (the anchor is far from the end, or the tail's
 * last record is not after it). */
static int
tail_past_anchor(pg_audit *audit, off_t size, struct pg_audit_tail *tail, bool *cut, char *why,
                 size_t why_len)
{
	enum { NEAR = 16384 };
	const off_t from = audit->cache_size - (off_t)(audit->cache_len + 1);
	size_t len;
	char *buf;
	int rc = EAGAIN;

	if (!audit->anchored || size <= audit->cache_size || size - from > NEAR)
		return EAGAIN;
	len = (size_t)(size - from);
	buf = malloc(len);
	if (buf == NULL || pg_audit_read_window(audit->fd, from, len, buf) != 0)
		goto out;
	rc = pg_audit_tail_scan(buf, len, from, tail);
	if (rc == 0)
		*cut = !anchor_matches(audit, buf, why, why_len);
out:
	free(buf);
	return rc;
}

/* Where the chain ends, from the cache when the file still ends with the
 * anchor, else read from the file, checking the anchor first.  Called with
 * the file locked. */
static int
find_tail(pg_audit *audit, off_t size, struct pg_audit_tail *tail)
{
	char why[320] = "", err[128];
	bool cut = false;
	int rc;

	/* Our last record is still the file's last: nothing to read.  (reopen
	 * drops the cache, so it always describes this descriptor's file.) */
	if (audit->cache_valid && size == audit->cache_size) {
		memset(tail, 0, sizeof *tail);
		tail->seq = audit->cache_seq;
		memcpy(tail->hash, audit->cache_hash, PG_SHA256_LEN);
		return 0;
	}
	audit->cache_valid = false;
	rc = tail_past_anchor(audit, size, tail, &cut, why, sizeof why);
	if (rc == EAGAIN) {
		cut = audit->anchored && !anchor_holds(audit, size, why, sizeof why);
		rc = pg_audit_tail_read(audit->fd, size, tail, err, sizeof err);
	}
	if (rc == 0 && !cut && audit->anchored && tail->seq < audit->cache_seq) {
		cut = true;
		snprintf(why, sizeof why, "the last record is seq %" PRIu64 ", lower than seq %" PRIu64
		         " which this process saw: records were cut off and others appended",
		         tail->seq, audit->cache_seq);
	}
	if (cut) {
		alarm_tamper(audit, why);
		tamper_body(audit, size, why);
		audit->cut_found = true;
	}
	/* The new anchor: the last whole record found (a torn line after it
	 * keeps the old one, which is still in place). */
	if (rc == 0 && !tail->recovered && !tail->needs_newline && tail->seq > 0) {
		audit->anchored = true;
		audit->cache_size = size;
		audit->cache_len = tail->len;
		audit->cache_seq = tail->seq;
		memcpy(audit->cache_hash, tail->hash, PG_SHA256_LEN);
	} else if (cut) {
		audit->anchored = false;    /* reported: do not report it again */
	}
	return rc;
}

/* The line just written at size is the file's end now, and the anchor. */
static void
note_written(pg_audit *audit, const struct line *line, off_t size, uint64_t seq)
{
	/* The chain hashes the line without its newline. */
	if (!pg_sha256(line->data + line->last, line->len - line->last - 1, audit->cache_hash)) {
		audit->cache_valid = false;
		audit->anchored = false;
		return;
	}
	audit->cache_valid = true;
	audit->anchored = true;
	audit->cache_size = size + (off_t)line->len;
	audit->cache_len = line->len - line->last - 1;
	audit->cache_seq = seq;
}

/* Writes bodies as the next lines of the locked file, size bytes long and
 * ending in tail (the last one signed with sign_last, if given). */
static int
write_lines(pg_audit *audit, const struct pg_buf *const *bodies, size_t n,
            const struct pg_audit_tail *tail, off_t size, const pg_audit_key *sign_last,
            struct line *line, uint64_t *seq)
{
	int rc = line_reserve(line, bodies, n, sign_last != NULL);

	if (rc != 0)
		return rc;
	*seq = compose(line, bodies, n, tail, sign_last);
	if (*seq == 0)
		return ENOMEM;
	if (!fits_size_limit(audit, size, line->len))
		return EFBIG;
	rc = write_whole(audit->fd, line->data, line->len, size);
	if (rc != 0) {
		audit->cache_valid = false;
		return rc;
	}
	note_written(audit, line, size, *seq);
	return 0;
}

/* The records waiting to go before the next one, in order. */
static size_t
pending_bodies(pg_audit *audit, const struct pg_buf **bodies)
{
	size_t n = 0;

	if (audit->pending_tamper.len > 0)
		bodies[n++] = &audit->pending_tamper;
	if (audit->pending_start.len > 0)
		bodies[n++] = &audit->pending_start;
	return n;
}

static void
pending_written(pg_audit *audit)
{
	pg_buf_release(&audit->pending_tamper);
	pg_buf_release(&audit->pending_start);
}

/* A record the log writes itself (rotate, continue, checkpoint). */
static int
own_body(const pg_audit *audit, const struct pg_audit_record *record, struct pg_buf *out)
{
	pg_buf_release(out);
	pg_audit_record_body(record, audit->host, NULL, out);
	return out->failed ? ENOMEM : 0;
}

static int
checkpoint_body(const pg_audit *audit, struct pg_buf *out)
{
	const struct pg_audit_record record =
		pg_audit_record_checkpoint(pg_audit_key_sha256(audit->checkpoint_key),
		                           audit->checkpoint_every);

	return own_body(audit, &record, out);
}

/* Whether the records from seq first to last reach a multiple of the
 * checkpoint interval: a checkpoint follows them. */
static bool
checkpoint_due(const pg_audit *audit, uint64_t first, uint64_t last)
{
	return audit->checkpoint_every != 0 &&
	       (first - 1) / audit->checkpoint_every != last / audit->checkpoint_every;
}

/* Whether path still names the file fd is open on. */
static bool
names_fd(const pg_audit *audit)
{
	struct stat st, named;

	return fstat(audit->fd, &st) == 0 && stat(audit->path, &named) == 0 &&
	       st.st_dev == named.st_dev && st.st_ino == named.st_ino;
}

/* SHA-256 of the file's first size bytes. */
static int
hash_file(int fd, off_t size, unsigned char out[PG_SHA256_LEN])
{
	enum { CHUNK = 1 << 20 };
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *buf = malloc(CHUNK);
	unsigned int out_len = 0;
	off_t at = 0;
	ssize_t n;
	int rc = ENOMEM;

	if (md == NULL || buf == NULL || EVP_DigestInit_ex(md, pg_sha256_md(), NULL) != 1)
		goto out;
	while (at < size) {
		n = pread(fd, buf, (size_t)(size - at) < CHUNK ? (size_t)(size - at) : CHUNK, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? errno : EIO;
			goto out;
		}
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1)
			goto out;
		at += n;
	}
	if (EVP_DigestFinal_ex(md, out, &out_len) == 1 && out_len == PG_SHA256_LEN)
		rc = 0;
out:
	free(buf);
	EVP_MD_CTX_free(md);
	return rc;
}

/* "DIR/.BASE.rotate-XXXXXX", made with mode 0600; *dir_len is where DIR ends. */
static int
make_temp(const char *path, char tmp[PATH_MAX], size_t *dir_len, int *fd)
{
	const char *slash = strrchr(path, '/');
	size_t dl = slash != NULL ? (size_t)(slash - path) : 0;
	int n;

	if (slash == NULL)
		n = snprintf(tmp, PATH_MAX, "./.%s.rotate-XXXXXX", path);
	else
		n = snprintf(tmp, PATH_MAX, "%.*s/.%s.rotate-XXXXXX", (int)dl, path, slash + 1);
	if (n < 0 || n >= PATH_MAX)
		return ENAMETOOLONG;
	*dir_len = slash != NULL ? (dl > 0 ? dl : 1) : 1;
	*fd = mkostemp(tmp, O_CLOEXEC);
	return *fd < 0 ? errno : 0;
}

/* PATH-YYYYMMDDTHHMMSS.uuuuuuZ from the rotate record's time: the name is
 * the same whoever finishes the rotation. */
static int
kept_name(const char *path, const char *time, char out[PATH_MAX])
{
	char stamp[PG_AUDIT_TIME_LEN + 1];
	size_t k = 0;

	for (const char *t = time; *t != '\0'; t++) {
		if (*t != '-' && *t != ':')
			stamp[k++] = *t;
	}
	stamp[k] = '\0';
	k = (size_t)snprintf(out, PATH_MAX, "%s-%s", path, stamp);
	return k < PATH_MAX ? 0 : ENAMETOOLONG;
}

static int
sync_dir(const char *tmp, size_t dir_len)
{
	char dir[PATH_MAX];
	int fd, rc = 0;

	snprintf(dir, sizeof dir, "%.*s", (int)dir_len, tmp[0] == '/' && dir_len == 1 ? "/" : tmp);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		rc = errno;
	if (fd >= 0)
		close(fd);
	return rc;
}

static uint64_t
unix_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec > 0 ? (uint64_t)ts.tv_sec : 0;
}

/* LOG.counters, open.  Called with append_lock held. */
static int
counters_ready(pg_audit *audit, bool create, struct pg_counters **out)
{
	int rc = 0;

	if (audit->counters == NULL) {
		audit->counters = pg_counters_open(audit->path, audit->fd, create, &rc);
		if (rc != 0 && !audit->counters_warned) {
			char path[PATH_MAX + 64];

			pg_esc(audit->path, PG_ESC_VALUE, path, sizeof path);
			dprintf(STDERR_FILENO, "p11gate: cannot use the counters of audit log %s (%s.counters: "
			        "%s%s): refusing every counted use\n", path, path, strerror(rc),
			        rc == EPERM ? "; it must belong to the log's owner and be writable by "
			        "nobody who may not write the log" : "");
			audit->counters_warned = true;
		}
	}
	*out = audit->counters;
	return rc;
}

/* Every live counter, for the continue record that begins a new file: so
 * each file holds what its counters need.  Caught up from the closed file
 * (end bytes); without LOG.counters, counted from it. */
static int
counters_snapshot(pg_audit *audit, off_t end, struct pg_buf *body)
{
	const struct pg_audit_tail none = { 0 };
	struct pg_counters *c = NULL, *own = NULL;
	int rc;

	if (counters_ready(audit, false, &c) != 0 || c == NULL)
		c = own = pg_counters_new_memory();
	if (c == NULL)
		return ENOMEM;
	rc = pg_counters_catch_up(c, audit->fd, end, &none);
	if (rc == 0)
		pg_counters_snapshot_json(c, unix_now(), body);
	pg_counters_close(own);
	return rc == 0 && body->failed ? ENOMEM : rc;
}

/* Rotates the locked file (size bytes, ending in tail), or finishes a
 * rotation a crash interrupted (tail->sealed).  The order keeps a set that
 * verifies at every step (docs/audit.md, "Rotation"): the new file is made
 * aside first (so a directory writers may not write stops nothing), then
 * the rotate record closes this file and is synced, the new file gets its
 * continue record (naming this file's SHA-256) and is synced, this file
 * gets its kept name, the new file is renamed over the live name, and the
 * directory is synced before any record in the new file can be
 * acknowledged.  *started: this file is closed (any later failure leaves a
 * rotation for the next writer to finish). */
static int
rotate_locked(pg_audit *audit, off_t size, const struct pg_audit_tail *tail, const char *reason,
              struct line *line, char kept[PATH_MAX], bool *started, char *err, size_t err_len)
{
	const struct pg_buf *bodies[MAX_BODIES];
	unsigned char file_hash[PG_SHA256_LEN];
	char tmp[PATH_MAX] = "", stamp[PG_AUDIT_TIME_LEN + 1];
	struct pg_audit_tail seal = *tail;
	struct pg_buf body, checkpoint;
	const char *step, *base;
	struct stat st, was;
	size_t n, dir_len = 1;
	off_t end = size;
	int tmp_fd = -1, rc, attr = 0;
	uint64_t seq;

	*started = false;
	pg_buf_init(&body);
	pg_buf_init(&checkpoint);
	step = "the log's path no longer names the open file";
	rc = ESTALE;
	if (!names_fd(audit) || fstat(audit->fd, &st) != 0)
		goto out;
	/* chattr +a forbids the link of step 4: refuse before closing. */
	step = "the file is append-only (chattr +a): run chattr -a on it first (and chattr +a on "
	       "the new file after)";
	rc = EPERM;
	if (ioctl(audit->fd, FS_IOC_GETFLAGS, &attr) == 0 && (attr & FS_APPEND_FL))
		goto out;
	step = "cannot make the new file in the log's directory";
	rc = make_temp(audit->path, tmp, &dir_len, &tmp_fd);
	if (rc != 0) {
		tmp[0] = '\0';
		goto out;
	}
	if (!tail->sealed) {
		const struct pg_audit_record record = pg_audit_record_rotate(reason);

		step = "cannot write the rotate record";
		if ((rc = own_body(audit, &record, &body)) != 0)
			goto out;
		n = pending_bodies(audit, bodies);
		bodies[n++] = &body;
		rc = write_lines(audit, bodies, n, tail, size, NULL, line, &seq);
		if (rc != 0)
			goto out;
		pending_written(audit);
		end = size + (off_t)line->len;
		memset(&seal, 0, sizeof seal);
		seal.seq = seq;
		memcpy(seal.hash, audit->cache_hash, PG_SHA256_LEN);
		memcpy(stamp, line->last_time, sizeof stamp);
	} else {
		memcpy(stamp, tail->seal_time, sizeof stamp);
	}
	*started = true;
	step = "cannot sync the closed file";
	rc = audit->datasync(audit->fd, audit->datasync_ctx);
	if (rc != 0)
		goto out;
	step = "cannot read the closed file";
	if ((rc = hash_file(audit->fd, end, file_hash)) != 0)
		goto out;
	step = "the kept name is too long";
	if ((rc = kept_name(audit->path, stamp, kept)) != 0)
		goto out;
	base = strrchr(kept, '/');
	{
		const struct pg_audit_record record =
			pg_audit_record_continue(reason, base != NULL ? base + 1 : kept, file_hash,
			                         (uint64_t)end);

		step = "cannot write the new file";
		if ((rc = own_body(audit, &record, &body)) != 0)
			goto out;
		step = "cannot count the closed file's counted uses";
		if ((rc = counters_snapshot(audit, end, &body)) != 0)
			goto out;
	}
	n = 0;
	bodies[n++] = &body;
	if (audit->checkpoint_key != NULL) {
		if ((rc = checkpoint_body(audit, &checkpoint)) != 0)
			goto out;
		bodies[n++] = &checkpoint;
	}
	if ((rc = line_reserve(line, bodies, n, audit->checkpoint_key != NULL)) != 0)
		goto out;
	rc = ENOMEM;
	if (compose(line, bodies, n, &seal, audit->checkpoint_key) == 0)
		goto out;
	/* The new file belongs to whoever owned the old one (a root rotator
	 * must not take it from the writers). */
	(void)!fchown(tmp_fd, st.st_uid, st.st_gid);
	if (fchmod(tmp_fd, st.st_mode & 07777) != 0 ||
	    (rc = write_whole(tmp_fd, line->data, line->len, 0)) != 0 || fsync(tmp_fd) != 0) {
		rc = rc != 0 && rc != ENOMEM ? rc : errno;
		goto out;
	}
	step = "cannot keep the closed file under its new name";
	if (link(audit->path, kept) != 0) {
		rc = errno;
		/* Already done by a rotation that was interrupted. */
		if (rc != EEXIST || stat(kept, &was) != 0 || was.st_dev != st.st_dev ||
		    was.st_ino != st.st_ino)
			goto out;
	}
	step = "cannot put the new file in place";
	if (rename(tmp, audit->path) != 0) {
		rc = errno;
		goto out;
	}
	tmp[0] = '\0';
	step = "cannot sync the log's directory";
	rc = sync_dir(audit->path, dir_len);
out:
	if (rc != 0)
		snprintf(err, err_len, "cannot rotate audit log '%s': %s: %s", audit->path, step,
		         strerror(rc));
	if (tmp_fd >= 0)
		close(tmp_fd);
	if (tmp[0] != '\0')
		unlink(tmp);
	pg_buf_release(&body);
	pg_buf_release(&checkpoint);
	return rc;
}

/* Takes the file lock and finds where the chain ends, first moving on when
 * the file was closed by a rotation (following it to the new file, or
 * finishing it when a crash left it half done) or when the next record
 * (need bytes, 0: not known) would pass max_size.  Called with append_lock
 * held; on success the file is locked. */
static int
lock_current(pg_audit *audit, size_t need, off_t *size, struct pg_audit_tail *tail,
             struct line *line)
{
	char kept[PATH_MAX], err[PATH_MAX + 256];
	bool started;
	int rc;

	for (int attempt = 0; ; attempt++) {
		rc = lock_file(audit, size);
		if (rc != 0)
			return rc;
		rc = find_tail(audit, *size, tail);
		/* One comparison when no rotation is due. */
		if (rc == 0 && !tail->sealed &&
		    (audit->max_size == 0 || need == 0 || *size == 0 ||
		     (uint64_t)*size + need <= audit->max_size))
			return 0;
		if (rc == 0 && attempt == 3)
			rc = EAGAIN;    /* rotated again and again under us */
		if (rc == 0 && (!tail->sealed || names_fd(audit))) {
			rc = rotate_locked(audit, *size, tail, tail->sealed ? "finishing an interrupted "
			                   "rotation" : "max_size reached", line, kept, &started, err,
			                   sizeof err);
			if (rc != 0 && !started) {
				/* Nothing changed: better a long file than no log. */
				if (!audit->rotate_warned)
					dprintf(STDERR_FILENO, "p11gate: %s (writing on in the current file)\n",
					        err);
				audit->rotate_warned = true;
				if (!tail->sealed)
					return 0;
			}
		}
		flock(audit->fd, LOCK_UN);
		if (rc != 0)
			return rc;
		rc = reopen(audit);
		if (rc != 0)
			return rc;
	}
}

/* A counted append (pg_audit_append_counted) or a read of counters
 * (pg_audit_counters_read, with no record). */
struct counting {
	const struct pg_audit_record *record;
	struct pg_audit_take *takes;
	size_t n;
	pg_audit_refusal_fn refusal;
	void *ctx;
	int refused;                    /* the take at its max, or -1 */
	char *reason;                   /* the refusal's words (reason_len bytes) */
	size_t reason_len;
	uint64_t now;
	struct pg_buf body;             /* the record with its "counted", or the deny */
};

/* The default words of a refusal by a counter at its max. */
static void
default_refusal(const struct pg_audit_take *take, char *reason, size_t len)
{
	char counter[PG_AUDIT_COUNTER_NAME_MAX + 64];

	/* The name is cut to leave room for the counts in the reason. */
	pg_esc(take->counter, PG_ESC_VALUE, counter, sizeof counter);
	snprintf(reason, len, "counter %.400s: %" PRIu64 " of %" PRIu64 " used", counter, take->used,
	         take->max);
}

/* Under the file lock (size bytes, ending in tail): catches the counters up
 * from the log and plans the takes; count->body becomes the record with
 * its uses, or the deny that replaces it. */
static int
count_locked(pg_audit *audit, struct counting *count, off_t size, const struct pg_audit_tail *tail)
{
	struct pg_counters *c;
	int rc, at;

	rc = counters_ready(audit, true, &c);
	if (rc != 0)
		return rc;
	rc = pg_counters_catch_up(c, audit->fd, size, tail);
	if (rc != 0)
		return rc;
	count->now = unix_now();
	at = pg_counters_plan(c, count->takes, count->n, count->now);
	if (at == -2)
		return ENOSPC;
	if (at >= 0) {
		struct pg_audit_record deny = *count->record;
		char words[512];

		if (count->refusal != NULL)
			count->refusal(count->ctx, &count->takes[at], words, sizeof words);
		else
			default_refusal(&count->takes[at], words, sizeof words);
		deny.allow = false;
		deny.reason = words;
		count->refused = at;
		if (count->reason != NULL)
			snprintf(count->reason, count->reason_len, "%s", words);
		pg_buf_release(&count->body);
		pg_audit_record_body(&deny, audit->host, cached_caller_json(audit, &deny), &count->body);
		return count->body.failed ? ENOMEM : 0;
	}
	pg_counters_counted_json(count->takes, count->n, &count->body);
	return count->body.failed ? ENOMEM : 0;
}

/* The uses are in the file: the counters say so too (if writing them
 * fails, the next writer catches up from the log). */
static void
counted(pg_audit *audit, const struct counting *count)
{
	size_t n = count->refused < 0 ? count->n : 0;

	if (audit->counters == NULL || !audit->cache_valid)
		return;
	pg_counters_commit(audit->counters, count->takes, n, count->now, audit->cache_size,
	                   audit->cache_len, audit->cache_seq, audit->cache_hash);
}

/* Called with append_lock held.  body may be NULL (only what is pending);
 * sign: body is a checkpoint; count: body is a decision taking uses (then
 * count->body is written in its place).  *end: where the last record
 * written ends in the file. */
static int
append_locked(pg_audit *audit, const struct pg_buf *body, bool sign, struct counting *count,
              struct line *line, uint64_t *seq, off_t *end)
{
	const struct pg_buf *bodies[MAX_BODIES];
	struct pg_buf checkpoint;
	struct pg_audit_tail tail;
	off_t size = 0;
	size_t n;
	int rc;

	rc = lock_current(audit, body != NULL ? body->len + LINE_EXTRA : 0, &size, &tail, line);
	if (rc != 0)
		return rc;
	pg_buf_init(&checkpoint);
	if (count != NULL && (rc = count_locked(audit, count, size, &tail)) != 0)
		goto out;
	n = pending_bodies(audit, bodies);
	if (body != NULL)
		bodies[n++] = count != NULL ? &count->body : body;
	if (n == 0)
		goto out;
	if (!sign && checkpoint_due(audit, tail.seq + 1, tail.seq + n)) {
		if ((rc = checkpoint_body(audit, &checkpoint)) != 0)
			goto out;
		bodies[n++] = &checkpoint;
		sign = true;
	}
	rc = write_lines(audit, bodies, n, &tail, size, sign ? audit->checkpoint_key : NULL, line,
	                 seq);
	if (rc != 0)
		goto out;
	*end = size + (off_t)line->len;
	pending_written(audit);
	if (count != NULL)
		counted(audit, count);
	else if (audit->counters != NULL && audit->cache_valid)
		pg_counters_follow(audit->counters, size, &tail, *end, audit->cache_len,
		                   audit->cache_seq, audit->cache_hash);
out:
	flock(audit->fd, LOCK_UN);
	pg_buf_release(&checkpoint);
	return rc;
}

/* Appends body (NULL: only the records pending), then copies the lines
 * written to syslog when asked to. */
static int
append(pg_audit *audit, const struct pg_buf *body, bool sign, struct counting *count,
       uint64_t *seq_out)
{
	/* A signature's records fit here: no allocation per record. */
	char stack[LINE_ON_STACK];
	struct line line = { .data = stack, .cap = sizeof stack, .borrowed = true };
	uint64_t seq = 0;
	off_t end = 0;
	int rc;

	pthread_mutex_lock(&audit->append_lock);
	rc = append_locked(audit, body, sign, count, &line, &seq, &end);
	if (audit->cut_found) {
		/* Another process's published sync may cover bytes that are
		 * gone: nobody skips a sync on its word now. */
		audit->cut_found = false;
		pg_audit_share_forget(audit->share);
	}
	if (rc == 0 && seq != 0) {
		pthread_mutex_lock(&audit->sync_lock);
		/* seq only grows within one file: a smaller one means a new
		 * file (rotation, or the log was emptied), whose records are
		 * not on disk yet whatever the old file's were. */
		if (seq <= audit->written) {
			audit->epoch++;
			audit->synced = 0;
		}
		audit->written = seq;
		audit->written_end = end;
		pthread_mutex_unlock(&audit->sync_lock);
	}
	pthread_mutex_unlock(&audit->append_lock);
	if (rc != 0 || seq == 0)
		goto out;
	if (audit->to_syslog) {
		/* No openlog: a library must not change the process's syslog
		 * identity or facility.  One message per record. */
		for (char *p = line.data + line.start, *nl; p < line.data + line.len; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(line.data + line.len - p));
			*nl = '\0';
			syslog(LOG_AUTHPRIV | LOG_INFO, "p11gate: %s", p);
		}
	}
	if (seq_out != NULL)
		*seq_out = seq;
out:
	if (!line.borrowed)
		free(line.data);
	return rc;
}

int
pg_audit_append(pg_audit *audit, const struct pg_audit_record *record, uint64_t *seq_out)
{
	char stack[BODY_ON_STACK];
	struct pg_buf body;
	int rc;

	pg_buf_init_on(&body, stack, sizeof stack);
	if (audit == NULL || record == NULL) {
		rc = EINVAL;
		goto out;
	}
	/* Everything that does not depend on the file is done before taking
	 * the locks: they are held only to read the tail and write. */
	pg_audit_record_body(record, audit->host, cached_caller_json(audit, record), &body);
	if (body.failed) {
		rc = ENOMEM;
		goto out;
	}
	rc = append(audit, &body, false, NULL, seq_out);
out:
	pg_buf_release(&body);
	return rc;
}

int
pg_audit_append_counted(pg_audit *audit, const struct pg_audit_record *record,
                        struct pg_audit_take *takes, size_t n,
                        pg_audit_refusal_fn refusal, void *ctx,
                        int *refused, char *reason, size_t reason_len, uint64_t *seq_out)
{
	char stack[BODY_ON_STACK], counted_stack[BODY_ON_STACK];
	struct counting count = {
		.record = record, .takes = takes, .n = n, .refusal = refusal, .ctx = ctx,
		.refused = -1, .reason = reason, .reason_len = reason_len,
	};
	struct pg_buf body;
	int rc;

	pg_buf_init_on(&body, stack, sizeof stack);
	pg_buf_init_on(&count.body, counted_stack, sizeof counted_stack);
	*refused = -1;
	if (reason != NULL && reason_len > 0)
		reason[0] = '\0';
	if (audit == NULL || record == NULL || (n > 0 && takes == NULL)) {
		rc = EINVAL;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (takes[i].counter == NULL ||
		    strlen(takes[i].counter) > PG_AUDIT_COUNTER_NAME_MAX || takes[i].max == 0) {
			rc = EINVAL;
			goto out;
		}
	}
	/* Built before the locks: under them only the uses are added. */
	pg_audit_record_body(record, audit->host, cached_caller_json(audit, record), &body);
	pg_buf_append(&count.body, body.data, body.len);
	if (body.failed || count.body.failed) {
		rc = ENOMEM;
		goto out;
	}
	rc = append(audit, &body, false, &count, seq_out);
	if (rc == 0)
		*refused = count.refused;
out:
	pg_buf_release(&body);
	pg_buf_release(&count.body);
	return rc;
}

int
pg_audit_counters_read(pg_audit *audit, struct pg_audit_take *takes, size_t n)
{
	struct pg_counters *c = NULL, *own = NULL;
	struct pg_audit_tail tail;
	struct line line = { 0 };
	off_t size = 0;
	int rc;

	if (audit == NULL || (n > 0 && takes == NULL))
		return EINVAL;
	pthread_mutex_lock(&audit->append_lock);
	rc = lock_current(audit, 0, &size, &tail, &line);
	if (rc != 0)
		goto out;
	/* Reading makes no LOG.counters: without one, the log is counted. */
	rc = counters_ready(audit, false, &c);
	if (rc == 0 && c == NULL && (c = own = pg_counters_new_memory()) == NULL)
		rc = ENOMEM;
	if (rc == 0)
		rc = pg_counters_catch_up(c, audit->fd, size, &tail);
	if (rc == 0) {
		uint64_t now = unix_now();

		pg_counters_peek(c, takes, n, now);
		if (own == NULL && !tail.recovered && !tail.needs_newline && tail.seq > 0)
			pg_counters_commit(c, NULL, 0, now, size, tail.len, tail.seq, tail.hash);
	}
	flock(audit->fd, LOCK_UN);
out:
	pthread_mutex_unlock(&audit->append_lock);
	pg_counters_close(own);
	free(line.data);
	return rc;
}

void
pg_audit_inherit(pg_audit *audit, pg_audit *from)
{
	struct stat mine, theirs;

	if (audit == NULL || from == NULL || audit == from)
		return;
	/* audit is new and not shared yet: nothing holds its lock while
	 * waiting for from's, so taking both cannot deadlock. */
	pthread_mutex_lock(&from->append_lock);
	if (from->anchored && is_here(from, HERE_FD) && fstat(from->fd, &theirs) == 0) {
		pthread_mutex_lock(&audit->append_lock);
		if (!audit->anchored && fstat(audit->fd, &mine) == 0 &&
		    mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino) {
			audit->anchored = true;
			audit->cache_valid = false;     /* read the tail: the file may have changed */
			audit->cache_size = from->cache_size;
			audit->cache_len = from->cache_len;
			audit->cache_seq = from->cache_seq;
			memcpy(audit->cache_hash, from->cache_hash, PG_SHA256_LEN);
		}
		pthread_mutex_unlock(&audit->append_lock);
	}
	pthread_mutex_unlock(&from->append_lock);
}

int
pg_audit_start(pg_audit *audit, const struct pg_audit_record *start)
{
	int rc = 0;

	if (audit == NULL || start == NULL || start->event != PG_AUDIT_START)
		return EINVAL;
	pthread_mutex_lock(&audit->append_lock);
	pg_buf_release(&audit->pending_start);
	pg_audit_record_body(start, audit->host, NULL, &audit->pending_start);
	if (audit->pending_start.failed) {
		pg_buf_release(&audit->pending_start);
		rc = ENOMEM;
	}
	pthread_mutex_unlock(&audit->append_lock);
	/* Written now; if it cannot be, it stays pending for the next record. */
	return rc != 0 ? rc : append(audit, NULL, false, NULL, NULL);
}

/* One fdatasync for everything written so far, by the calling thread;
 * called and returns with sync_lock held.  Callers arriving meanwhile
 * wait and are covered by this sync or the next one. */
static void
sync_once_locked(pg_audit *audit)
{
	uint64_t target = audit->written, epoch = audit->epoch;
	struct pg_audit_share *share = audit->share;
	off_t end = audit->written_end;
	int fd = audit->fd, rc;
	bool called = true;

	audit->syncing = true;
	pthread_mutex_unlock(&audit->sync_lock);
	if (share != NULL)
		rc = pg_audit_share_sync(share, fd, end, audit->datasync, audit->datasync_ctx, &called);
	else
		rc = audit->datasync(fd, audit->datasync_ctx);
	pthread_mutex_lock(&audit->sync_lock);
	if (called)
		audit->datasync_calls++;
	audit->syncing = false;
	if (rc != 0)
		audit->sync_error = rc;
	else if (epoch == audit->epoch && target > audit->synced)
		audit->synced = target;
	pthread_cond_broadcast(&audit->sync_done);
}

int
pg_audit_sync(pg_audit *audit, uint64_t seq)
{
	int rc = 0;

	if (audit == NULL)
		return EINVAL;
	if (!audit->sync)
		return 0;
	pthread_mutex_lock(&audit->sync_lock);
	for (;;) {
		if (audit->sync_error != 0) {
			rc = audit->sync_error;
			break;
		}
		/* A seq this handle never wrote (or one from a file since
		 * rotated away, synced when it was) needs no more than ours. */
		if (seq > audit->written)
			seq = audit->written;
		if (audit->synced >= seq)
			break;
		if (audit->syncing)
			pthread_cond_wait(&audit->sync_done, &audit->sync_lock);
		else
			sync_once_locked(audit);
	}
	pthread_mutex_unlock(&audit->sync_lock);
	return rc;
}

static void *
syncer_main(void *arg)
{
	pg_audit *audit = arg;

	pthread_mutex_lock(&audit->sync_lock);
	while (!audit->syncer_stop) {
		if (audit->sync_error == 0 && !audit->syncing && audit->requested > audit->synced &&
		    audit->written > audit->synced)
			sync_once_locked(audit);
		else
			pthread_cond_wait(&audit->sync_wanted, &audit->sync_lock);
	}
	pthread_mutex_unlock(&audit->sync_lock);
	return NULL;
}

void
pg_audit_allow_threads(pg_audit *audit, bool allow)
{
	pthread_mutex_lock(&audit->sync_lock);
	audit->may_start_thread = allow;
	pthread_mutex_unlock(&audit->sync_lock);
}

void
pg_audit_sync_start(pg_audit *audit, uint64_t seq)
{
	if (audit == NULL || !audit->sync)
		return;
	pthread_mutex_lock(&audit->sync_lock);
	if (audit->syncer_running && !is_here(audit, HERE_SYNCER))
		audit->syncer_running = false;   /* a forked child has no thread */
	if (!audit->syncer_running && audit->may_start_thread) {
		audit->syncer_stop = false;
		if (pthread_create(&audit->syncer, NULL, syncer_main, audit) == 0) {
			audit->syncer_running = true;
			set_here(audit, HERE_SYNCER);
		}
	}
	if (seq > audit->requested)
		audit->requested = seq;
	pthread_cond_signal(&audit->sync_wanted);
	pthread_mutex_unlock(&audit->sync_lock);
}

unsigned long
pg_audit_datasync_count(pg_audit *audit)
{
	unsigned long n;

	pthread_mutex_lock(&audit->sync_lock);
	n = audit->datasync_calls;
	pthread_mutex_unlock(&audit->sync_lock);
	return n;
}

void
pg_audit_set_datasync(pg_audit *audit, int (*fn)(int fd, void *ctx), void *ctx)
{
	pthread_mutex_lock(&audit->sync_lock);
	audit->datasync = fn != NULL ? fn : default_datasync;
	audit->datasync_ctx = ctx;
	pthread_mutex_unlock(&audit->sync_lock);
}

void
pg_audit_set_max_size(pg_audit *audit, uint64_t max_size)
{
	pthread_mutex_lock(&audit->append_lock);
	audit->max_size = max_size;
	pthread_mutex_unlock(&audit->append_lock);
}

void
pg_audit_set_checkpoint(pg_audit *audit, pg_audit_key *key, uint64_t every)
{
	pthread_mutex_lock(&audit->append_lock);
	pg_audit_key_free(audit->checkpoint_key);
	audit->checkpoint_key = key;
	audit->checkpoint_every = key != NULL ? every : 0;
	pthread_mutex_unlock(&audit->append_lock);
}

int
pg_audit_checkpoint(pg_audit *audit, uint64_t *seq_out)
{
	struct pg_buf body;
	int rc;

	if (audit == NULL || audit->checkpoint_key == NULL)
		return EINVAL;
	pg_buf_init(&body);
	rc = checkpoint_body(audit, &body);
	if (rc == 0)
		rc = append(audit, &body, true, NULL, seq_out);
	pg_buf_release(&body);
	return rc;
}

int
pg_audit_rotate(pg_audit *audit, const char *reason, char *kept, char *err, size_t err_len)
{
	struct pg_audit_tail tail;
	char name[PATH_MAX];
	struct line line = { 0 };
	bool started = false;
	off_t size = 0;
	int rc = 0;

	err[0] = '\0';
	pthread_mutex_lock(&audit->append_lock);
	for (int attempt = 0; ; attempt++) {
		/* The file the path names now, whatever the last check saw. */
		audit->next_path_check = 0;
		rc = lock_file(audit, &size);
		if (rc != 0)
			break;
		rc = find_tail(audit, size, &tail);
		if (rc == 0 && tail.sealed && !names_fd(audit) && attempt < 3) {
			/* Rotated by someone else since we opened it. */
			flock(audit->fd, LOCK_UN);
			if ((rc = reopen(audit)) != 0)
				break;
			continue;
		}
		if (rc == 0)
			rc = rotate_locked(audit, size, &tail, reason, &line, name, &started, err,
			                   err_len);
		flock(audit->fd, LOCK_UN);
		break;
	}
	if (rc == 0) {
		if (kept != NULL)
			snprintf(kept, PATH_MAX, "%s", name);
		rc = reopen(audit);
	}
	if (rc != 0 && err[0] == '\0')
		snprintf(err, err_len, "cannot rotate audit log '%s': %s", audit->path, strerror(rc));
	pthread_mutex_unlock(&audit->append_lock);
	free(line.data);
	return rc;
}
