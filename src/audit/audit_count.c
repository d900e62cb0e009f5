/* SPDX-License-Identifier: Apache-2.0
 *
 * The counters kept with the log.  The log is the truth: every use taken is
 * written in the record that takes it ("counted": the counter's id, window
 * and the use's number in it), and a rotation's "continue" record carries
 * every live counter ("counters"), so each file holds what it needs.
 * LOG.counters is a cache of the result: a header naming the last record it
 * covers (where it ends, its line's length and SHA-256: the anchor) and a
 * table of 64-byte entries, each with its own check.
 *
 * Applying a record sets a counter to max(count, n) within its window, so a
 * record applied twice counts once: a writer that dies after its record and
 * before the cache is caught up by the next one (the records after the
 * anchor), and a cache that is missing, torn, from another file or anchored
 * on a line no longer there is rebuilt from the whole file.  Nothing here
 * locks: audit.c calls in with the log's flock and append_lock held.
 */
#include "audit_count.h"
#include "p11gate/common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define COUNT_MAGIC "p11gcnt1"
/* Live counters at most: a full store refuses new counters (ENOSPC). */
#define MAX_ENTRIES 4096
/* The table follows the header, so that a small store is written with
 * one pwrite (a torn one fails the checks, and is rebuilt from the log). */
#define ENTRIES_AT 128
/* Up to this many bytes the header and the table up to the last entry
 * changed go in one write; beyond, the entries and then the header. */
#define ONE_WRITE_MAX (64u << 10)
/* The longest line the scan takes for a record (a snapshot of
 * MAX_ENTRIES counters is about 0.5 MB). */
#define LINE_MAX_BYTES (16u << 20)
#define SCAN_CHUNK (1u << 20)
/* The scan's buffer to start with, kept between scans: what a catch-up
 * usually reads is the few records since the last counted one. */
#define SCAN_FIRST (64u << 10)

/* On disk and in memory, in this host's byte order (like LOG.sync). */
struct entry {
	unsigned char id[PG_AUDIT_COUNTER_ID_LEN];
	uint64_t per, window, count, expires;
	uint64_t check;
};
_Static_assert(sizeof(struct entry) == 64, "an entry is 64 bytes: never across a page");

struct header {
	char magic[8];
	uint64_t generation;    /* bumped by every write: another writer's table is re-read */
	uint64_t end;           /* the anchor: the log's bytes this covers, */
	uint64_t line_len;      /* the last covered line's length (no newline), */
	uint64_t seq;           /* its seq */
	unsigned char hash[PG_SHA256_LEN];   /* and its SHA-256 */
	uint64_t n;             /* entries in the table */
	uint64_t check;
};
_Static_assert(sizeof(struct header) <= ENTRIES_AT, "the header fits before the table");

struct pg_counters {
	int fd;                 /* LOG.counters; -1: in memory only */
	bool loaded;            /* e[] is the table of head.generation */
	struct header head;
	struct entry *e;        /* MAX_ENTRIES */
	size_t n;
	bool *dirty;
	bool all_dirty;         /* rewritten whole (rebuilt or compacted) */
	char *buf;              /* the scan's, kept (SCAN_FIRST up to SCAN_CHUNK) */
	size_t buf_cap;
};

/* A check no zeroed or torn block passes: FNV-1a, offset. */
static uint64_t
check_of(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3u;
	return h ^ 0x9e3779b97f4a7c15u;
}

static void
seal_entry(struct entry *e)
{
	e->check = check_of(e, offsetof(struct entry, check));
}

static void
seal_header(struct header *h)
{
	h->check = check_of(h, offsetof(struct header, check));
}

static struct pg_counters *
store_new(int fd)
{
	struct pg_counters *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	c->e = calloc(MAX_ENTRIES, sizeof *c->e);
	c->dirty = calloc(MAX_ENTRIES, sizeof *c->dirty);
	if (c->e == NULL || c->dirty == NULL) {
		free(c->e);
		free(c->dirty);
		free(c);
		return NULL;
	}
	c->fd = fd;
	return c;
}

struct pg_counters *
pg_counters_new_memory(void)
{
	return store_new(-1);
}

/* Nobody may write LOG.counters who may not write the log: whoever can
 * lie in it can give back uses (as audit_share.c's LOG.sync). */
static bool
trusted(int fd, const struct stat *log)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	if (st.st_uid != log->st_uid && st.st_uid != geteuid())
		return false;
	if ((st.st_mode & S_IWGRP) && (!(log->st_mode & S_IWGRP) || st.st_gid != log->st_gid))
		return false;
	return !(st.st_mode & S_IWOTH) || (log->st_mode & S_IWOTH);
}

struct pg_counters *
pg_counters_open(const char *log_path, int log_fd, bool create, int *err)
{
	struct pg_counters *c = NULL;
	char path[PATH_MAX];
	struct stat log;
	int fd = -1;

	*err = 0;
	if (fstat(log_fd, &log) != 0) {
		*err = errno;
		goto out;
	}
	if ((size_t)snprintf(path, sizeof path, "%s.counters", log_path) >= sizeof path) {
		*err = ENAMETOOLONG;
		goto out;
	}
	/* Made with the log's mode (no more than it): whoever may write the
	 * log may write its counters, nobody else. */
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | (create ? O_CREAT : 0),
	          log.st_mode & 0666);
	if (fd < 0) {
		*err = errno == ENOENT && !create ? 0 : errno;
		goto out;
	}
	if (!trusted(fd, &log)) {
		*err = EPERM;
		goto out;
	}
	c = store_new(fd);
	if (c == NULL)
		*err = ENOMEM;
	else
		fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return c;
}

void
pg_counters_close(struct pg_counters *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->e);
	free(c->dirty);
	free(c->buf);
	free(c);
}

/* Reads the cache: false when there is none or it does not check (then it
 * is rebuilt from the log).  The table is read again only when another
 * writer wrote it since. */
static bool
load(struct pg_counters *c)
{
	struct header h;
	ssize_t got;

	if (c->fd < 0)
		return c->loaded;
	got = pread(c->fd, &h, sizeof h, 0);
	if (got != (ssize_t)sizeof h || memcmp(h.magic, COUNT_MAGIC, sizeof h.magic) != 0 ||
	    h.check != check_of(&h, offsetof(struct header, check)) || h.n > MAX_ENTRIES)
		return false;
	if (c->loaded && h.generation == c->head.generation)
		return true;
	c->loaded = false;
	if (h.n > 0) {
		size_t bytes = (size_t)h.n * sizeof *c->e;

		if (pread(c->fd, c->e, bytes, ENTRIES_AT) != (ssize_t)bytes)
			return false;
		for (size_t i = 0; i < h.n; i++) {
			if (c->e[i].check != check_of(&c->e[i], offsetof(struct entry, check)))
				return false;
		}
	}
	c->head = h;
	c->n = (size_t)h.n;
	memset(c->dirty, 0, MAX_ENTRIES * sizeof *c->dirty);
	c->all_dirty = false;
	c->loaded = true;
	return true;
}

/* The scan's buffer, at least want bytes (kept for the next scan). */
static char *
buffer(struct pg_counters *c, size_t want)
{
	char *bigger;

	if (want <= c->buf_cap)
		return c->buf;
	bigger = realloc(c->buf, want);
	if (bigger == NULL)
		return NULL;
	c->buf = bigger;
	c->buf_cap = want;
	return bigger;
}

/* Whether the anchor's line is still where it was in the log. */
static bool
anchor_holds(struct pg_counters *c, int log_fd, off_t size)
{
	const struct header *h = &c->head;
	unsigned char hash[PG_SHA256_LEN];
	size_t len = (size_t)h->line_len + 1;
	char *buf;

	if (h->end == 0 || h->end > (uint64_t)size || h->line_len >= h->end ||
	    h->line_len > LINE_MAX_BYTES)
		return false;
	buf = buffer(c, len > SCAN_FIRST ? len : SCAN_FIRST);
	return buf != NULL && pread(log_fd, buf, len, (off_t)(h->end - len)) == (ssize_t)len &&
	       buf[len - 1] == '\n' && pg_sha256(buf, len - 1, hash) &&
	       memcmp(hash, h->hash, PG_SHA256_LEN) == 0;
}

static struct entry *
find(struct pg_counters *c, const unsigned char *id, uint64_t per)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->e[i].per == per && memcmp(c->e[i].id, id, PG_AUDIT_COUNTER_ID_LEN) == 0)
			return &c->e[i];
	}
	return NULL;
}

static bool
live(const struct entry *e, uint64_t now)
{
	return e->expires == 0 || e->expires > now;
}

/* Drops the counters whose windows (or grants) are over. */
static void
compact(struct pg_counters *c, uint64_t now)
{
	size_t kept = 0;

	for (size_t i = 0; i < c->n; i++) {
		if (live(&c->e[i], now))
			c->e[kept++] = c->e[i];
	}
	if (kept != c->n)
		c->all_dirty = true;
	c->n = kept;
}

static struct entry *
add(struct pg_counters *c, const unsigned char *id, uint64_t per, uint64_t now)
{
	struct entry *e;

	if (c->n == MAX_ENTRIES)
		compact(c, now);
	if (c->n == MAX_ENTRIES)
		return NULL;
	e = &c->e[c->n++];
	memset(e, 0, sizeof *e);
	memcpy(e->id, id, PG_AUDIT_COUNTER_ID_LEN);
	e->per = per;
	return e;
}

/* One use (or a snapshot's count) read from the log: idempotent. */
static bool
merge(struct pg_counters *c, const unsigned char *id, uint64_t per, uint64_t window, uint64_t n,
      uint64_t expires, uint64_t now)
{
	struct entry *e = find(c, id, per);

	if (e == NULL) {
		if (expires != 0 && expires <= now)
			return true;        /* over already: nothing to keep */
		e = add(c, id, per, now);
		if (e == NULL)
			return false;
		e->window = window;
		e->expires = expires;
	}
	if (window < e->window)
		return true;
	if (window > e->window) {
		e->window = window;
		e->count = 0;
		e->expires = expires;
	} else if (e->expires != 0 && (expires == 0 || expires > e->expires)) {
		e->expires = expires;
	}
	if (n > e->count)
		e->count = n;
	c->dirty[e - c->e] = true;
	return true;
}

/* Reads an unsigned decimal at *p; false if there is none. */
static bool
number(const char **p, const char *end, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (s >= end || *s < '0' || *s > '9')
		return false;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*out = v;
	return true;
}

static bool
literal(const char **p, const char *end, const char *want)
{
	size_t len = strlen(want);

	if ((size_t)(end - *p) < len || memcmp(*p, want, len) != 0)
		return false;
	*p += len;
	return true;
}

/* Past the rest of an object whose fields were read: to just after its
 * closing brace, stepping over strings (their escapes included). */
static bool
close_object(const char **p, const char *end)
{
	bool in_string = false;

	for (const char *s = *p; s < end; s++) {
		if (in_string) {
			if (*s == '\\')
				s++;
			else if (*s == '"')
				in_string = false;
		} else if (*s == '"') {
			in_string = true;
		} else if (*s == '}') {
			*p = s + 1;
			return true;
		}
	}
	return false;
}

/* The entries of a "counted" or "counters" array, as pg_counters_counted_json
 * and pg_counters_snapshot_json write them; p is just after the '['. */
static bool
apply_array(struct pg_counters *c, const char *p, const char *end, uint64_t now)
{
	enum { HEX = 2 * PG_AUDIT_COUNTER_ID_LEN };
	char hex[HEX + 1];

	if (p < end && *p == ']')
		return true;
	for (;;) {
		unsigned char id[PG_AUDIT_COUNTER_ID_LEN];
		uint64_t per, window, n, expires;

		if (!literal(&p, end, "{\"id\":\"") || end - p < HEX)
			return true;    /* not ours: nothing to apply */
		memcpy(hex, p, HEX);
		hex[HEX] = '\0';
		p += HEX;
		if (!pg_hex_decode(hex, id, sizeof id) ||
		    !literal(&p, end, "\",\"per\":") || !number(&p, end, &per) ||
		    !literal(&p, end, ",\"window\":") || !number(&p, end, &window) ||
		    !literal(&p, end, ",\"n\":") || !number(&p, end, &n) ||
		    !literal(&p, end, ",\"expires\":") || !number(&p, end, &expires) ||
		    !close_object(&p, end))
			return true;
		if (!merge(c, id, per, window, n, expires, now))
			return false;
		if (p < end && *p == ',')
			p++;
		else
			return true;
	}
}

/* The counted uses of one line, if it is a whole record.  Inside a JSON
 * string every quote is escaped, so an unescaped field name is the
 * record's own. */
static bool
apply_line(struct pg_counters *c, const char *line, size_t len, uint64_t now)
{
	static const char *const fields[] = { ",\"counted\":[", ",\"counters\":[" };
	unsigned char prev[PG_SHA256_LEN];
	uint64_t seq;

	if (memmem(line, len, "\"counte", 7) == NULL ||
	    !pg_audit_record_frame(line, len, &seq, prev))
		return true;
	for (size_t f = 0; f < 2; f++) {
		const char *at = memmem(line, len, fields[f], strlen(fields[f]));

		if (at != NULL && !apply_array(c, at + strlen(fields[f]), line + len, now))
			return false;
	}
	return true;
}

/* Applies every whole line of the log's bytes [from, to). */
static int
scan(struct pg_counters *c, int log_fd, off_t from, off_t to, uint64_t now)
{
	size_t cap = (size_t)(to - from) < SCAN_FIRST ? SCAN_FIRST : SCAN_CHUNK, have = 0;
	char *buf = buffer(c, cap);
	off_t at = from;
	bool skipping = false;  /* inside a line too long to be a record */
	int rc = 0;

	if (buf == NULL)
		return ENOMEM;
	cap = c->buf_cap;
	while (at < to) {
		size_t want = cap - have, start = 0;
		ssize_t got;

		if ((off_t)want > to - at)
			want = (size_t)(to - at);
		got = pread(log_fd, buf + have, want, at);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = got < 0 ? errno : EIO;
			goto out;
		}
		at += got;
		have += (size_t)got;
		for (char *nl; (nl = memchr(buf + start, '\n', have - start)) != NULL;
		     start = (size_t)(nl - buf) + 1) {
			if (!skipping && !apply_line(c, buf + start, (size_t)(nl - buf) - start, now)) {
				rc = ENOSPC;
				goto out;
			}
			skipping = false;
		}
		/* Keep the line begun; a line that outgrows the limit is no
		 * record, and is skipped to its end. */
		memmove(buf, buf + start, have - start);
		have -= start;
		if (have == cap) {
			char *bigger;

			if (cap >= LINE_MAX_BYTES) {
				skipping = true;
				have = 0;
				continue;
			}
			bigger = buffer(c, cap * 2);
			if (bigger == NULL) {
				rc = ENOMEM;
				goto out;
			}
			buf = bigger;
			cap *= 2;
		}
	}
out:
	return rc;
}

static uint64_t
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec > 0 ? (uint64_t)ts.tv_sec : 0;
}

int
pg_counters_catch_up(struct pg_counters *c, int log_fd, off_t size,
                     const struct pg_audit_tail *tail)
{
	bool cached;
	off_t from = 0;
	int rc;

	/* The log ends where this store last left it: nobody appended since,
	 * so nobody counted (the file is not even read). */
	if (c->loaded && c->head.end == (uint64_t)size && c->head.seq == tail->seq &&
	    memcmp(c->head.hash, tail->hash, PG_SHA256_LEN) == 0)
		return 0;
	cached = load(c);
	if (cached && c->head.end == (uint64_t)size && c->head.seq == tail->seq &&
	    memcmp(c->head.hash, tail->hash, PG_SHA256_LEN) == 0)
		return 0;
	if (cached && anchor_holds(c, log_fd, size)) {
		from = (off_t)c->head.end;
	} else {
		/* From the file's first line: a rotated file begins with a
		 * snapshot of every live counter. */
		struct timespec ts;

		c->n = 0;
		c->all_dirty = true;
		memset(&c->head, 0, sizeof c->head);
		memcpy(c->head.magic, COUNT_MAGIC, sizeof c->head.magic);
		/* A generation no process can hold for an older table (the
		 * torn header's is not known). */
		clock_gettime(CLOCK_REALTIME, &ts);
		c->head.generation = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	}
	rc = scan(c, log_fd, from, size, now_seconds());
	if (rc != 0) {
		c->loaded = false;
		return rc;
	}
	c->loaded = true;
	return 0;
}

static void
window_of(const struct pg_audit_take *t, uint64_t now, uint64_t *window, uint64_t *resets)
{
	*window = t->per != 0 ? now - now % t->per : 0;
	*resets = t->per != 0 ? *window + t->per : 0;
}

/* The count the take's counter has in its window now. */
static uint64_t
count_now(struct pg_counters *c, struct pg_audit_take *t, uint64_t now)
{
	unsigned char hash[PG_SHA256_LEN];
	const struct entry *e;

	pg_sha256(t->counter, strlen(t->counter), hash);
	memcpy(t->id, hash, PG_AUDIT_COUNTER_ID_LEN);
	window_of(t, now, &t->window, &t->resets);
	e = find(c, t->id, t->per);
	if (e == NULL || e->window < t->window)
		return 0;
	/* A window after now's (the clock stepped back) still holds. */
	if (e->window > t->window) {
		t->window = e->window;
		t->resets = t->per != 0 ? e->window + t->per : 0;
	}
	return e->count;
}

void
pg_counters_peek(struct pg_counters *c, struct pg_audit_take *takes, size_t n, uint64_t now)
{
	for (size_t i = 0; i < n; i++)
		takes[i].used = count_now(c, &takes[i], now);
}

int
pg_counters_plan(struct pg_counters *c, struct pg_audit_take *takes, size_t n, uint64_t now)
{
	size_t missing = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t count = count_now(c, &takes[i], now);

		if (takes[i].max != PG_AUDIT_UNLIMITED && count >= takes[i].max) {
			takes[i].used = count;
			return (int)i;
		}
		takes[i].used = count + 1;
		missing += find(c, takes[i].id, takes[i].per) == NULL;
	}
	if (c->n + missing <= MAX_ENTRIES)
		return -1;
	/* Room once the counters that are over are dropped (at the commit)? */
	for (size_t i = 0; i < c->n; i++)
		missing += live(&c->e[i], now);
	return missing > MAX_ENTRIES ? -2 : -1;
}

static void
entry_json(struct pg_buf *out, const unsigned char *id, uint64_t per, uint64_t window, uint64_t n,
           uint64_t expires)
{
	char hex[2 * PG_AUDIT_COUNTER_ID_LEN + 1];

	pg_hex_encode(id, PG_AUDIT_COUNTER_ID_LEN, hex);
	pg_buf_puts(out, "{\"id\":\"");
	pg_buf_append(out, hex, 2 * PG_AUDIT_COUNTER_ID_LEN);
	pg_buf_puts(out, "\",\"per\":");
	pg_buf_u64(out, per);
	pg_buf_puts(out, ",\"window\":");
	pg_buf_u64(out, window);
	pg_buf_puts(out, ",\"n\":");
	pg_buf_u64(out, n);
	pg_buf_puts(out, ",\"expires\":");
	pg_buf_u64(out, expires);
}

static uint64_t
take_expires(const struct pg_audit_take *t)
{
	return t->per != 0 ? t->resets : t->expires;
}

void
pg_counters_counted_json(const struct pg_audit_take *takes, size_t n, struct pg_buf *out)
{
	if (n == 0)
		return;
	pg_buf_puts(out, "\"counted\":[");
	for (size_t i = 0; i < n; i++) {
		const struct pg_audit_take *t = &takes[i];

		if (i > 0)
			pg_buf_puts(out, ",");
		entry_json(out, t->id, t->per, t->window, t->used, take_expires(t));
		if (t->max != PG_AUDIT_UNLIMITED) {
			pg_buf_puts(out, ",\"max\":");
			pg_buf_u64(out, t->max);
		}
		pg_buf_puts(out, ",\"counter\":");
		pg_buf_json_string(out, t->counter);
		pg_buf_puts(out, "}");
	}
	pg_buf_puts(out, "],");
}

void
pg_counters_snapshot_json(struct pg_counters *c, uint64_t now, struct pg_buf *out)
{
	bool first = true;

	for (size_t i = 0; i < c->n; i++) {
		const struct entry *e = &c->e[i];

		if (!live(e, now) || e->count == 0)
			continue;
		pg_buf_puts(out, first ? "\"counters\":[" : ",");
		entry_json(out, e->id, e->per, e->window, e->count, e->expires);
		pg_buf_puts(out, "}");
		first = false;
	}
	if (!first)
		pg_buf_puts(out, "],");
}

/* Writes what changed: entries first, then the header that covers them
 * (a header is never ahead of its table). */
static int
store(struct pg_counters *c)
{
	struct header h;
	size_t last = 0;
	ssize_t bytes;

	if (c->fd < 0)
		return 0;
	for (size_t i = 0; i < c->n; i++) {
		if (c->all_dirty || c->dirty[i])
			last = i + 1;
	}
	if (ENTRIES_AT + last * sizeof *c->e <= ONE_WRITE_MAX) {
		/* The usual case: header and table in one write, from memory
		 * laid out as the file is. */
		char *one = buffer(c, ONE_WRITE_MAX);

		if (one == NULL)
			return ENOMEM;
		for (size_t i = 0; i < last; i++)
			seal_entry(&c->e[i]);
		memset(c->dirty, 0, c->n * sizeof *c->dirty);
		c->all_dirty = false;
		c->head.generation++;
		c->head.n = c->n;
		seal_header(&c->head);
		memset(one, 0, ENTRIES_AT);
		memcpy(one, &c->head, sizeof c->head);
		memcpy(one + ENTRIES_AT, c->e, last * sizeof *c->e);
		bytes = (ssize_t)(ENTRIES_AT + last * sizeof *c->e);
		return pwrite(c->fd, one, (size_t)bytes, 0) == bytes ? 0 : errno != 0 ? errno : EIO;
	}
	if (c->all_dirty) {
		bytes = (ssize_t)(c->n * sizeof *c->e);
		for (size_t i = 0; i < c->n; i++)
			seal_entry(&c->e[i]);
		if (bytes > 0 && pwrite(c->fd, c->e, (size_t)bytes, ENTRIES_AT) != bytes)
			return errno != 0 ? errno : EIO;
	} else {
		for (size_t i = 0; i < c->n; i++) {
			if (!c->dirty[i])
				continue;
			seal_entry(&c->e[i]);
			if (pwrite(c->fd, &c->e[i], sizeof c->e[i],
			           ENTRIES_AT + (off_t)(i * sizeof c->e[i])) != (ssize_t)sizeof c->e[i])
				return errno != 0 ? errno : EIO;
		}
	}
	memset(c->dirty, 0, c->n * sizeof *c->dirty);
	c->all_dirty = false;
	c->head.generation++;
	c->head.n = c->n;
	seal_header(&c->head);
	/* Written from a copy: GCC 12's -O2 -D_FORTIFY_SOURCE=2 takes
	 * &c->head for its first member and reports an overread. */
	h = c->head;
	if (pwrite(c->fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
		return errno != 0 ? errno : EIO;
	return 0;
}

void
pg_counters_follow(struct pg_counters *c, off_t from, const struct pg_audit_tail *at, off_t end,
                   size_t line_len, uint64_t seq, const unsigned char hash[PG_SHA256_LEN])
{
	/* The same file only: the anchor's line is the one they follow. */
	if (c == NULL || !c->loaded || c->head.end != (uint64_t)from || c->head.seq != at->seq ||
	    memcmp(c->head.hash, at->hash, PG_SHA256_LEN) != 0)
		return;
	c->head.end = (uint64_t)end;
	c->head.line_len = line_len;
	c->head.seq = seq;
	memcpy(c->head.hash, hash, PG_SHA256_LEN);
}

int
pg_counters_commit(struct pg_counters *c, const struct pg_audit_take *takes, size_t n,
                   uint64_t now, off_t end, size_t line_len, uint64_t seq,
                   const unsigned char hash[PG_SHA256_LEN])
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		const struct pg_audit_take *t = &takes[i];

		if (!merge(c, t->id, t->per, t->window, t->used, take_expires(t), now))
			return ENOSPC;  /* planned with room: not reached */
	}
	memcpy(c->head.magic, COUNT_MAGIC, sizeof c->head.magic);
	c->head.end = (uint64_t)end;
	c->head.line_len = line_len;
	c->head.seq = seq;
	memcpy(c->head.hash, hash, PG_SHA256_LEN);
	rc = store(c);
	if (rc != 0)
		c->loaded = false;      /* read it again (or rebuild) next time */
	return rc;
}
