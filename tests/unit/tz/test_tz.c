/* SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests of the time zone reader: answers compared with glibc's
 * localtime_r on the real tzdata files, explicit DST edges, hand-built TZif
 * files for the rule forms, and bad names and damaged files refused.
 */
#include "tz.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYSTEM_TZDIR "/usr/share/zoneinfo"

/* ---- helpers ---- */

static time_t
utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi, .tm_sec = s };

	return timegm(&tm);
}

/* glibc is the reference; only the test touches TZ (the code under test
 * never does).  localtime_r does not re-read TZ by itself: tzset() does. */
static void
glibc_zone(const char *name)
{
	char tzval[256];

	snprintf(tzval, sizeof tzval, ":%s", name);
	ck_assert_int_eq(setenv("TZ", tzval, 1), 0);
	tzset();
}

static bool
same_tm(const struct tm *a, const struct tm *b)
{
	return a->tm_year == b->tm_year && a->tm_mon == b->tm_mon && a->tm_mday == b->tm_mday &&
	       a->tm_hour == b->tm_hour && a->tm_min == b->tm_min && a->tm_sec == b->tm_sec &&
	       a->tm_wday == b->tm_wday && a->tm_yday == b->tm_yday &&
	       a->tm_isdst == b->tm_isdst && a->tm_gmtoff == b->tm_gmtoff &&
	       a->tm_zone != NULL && b->tm_zone != NULL && strcmp(a->tm_zone, b->tm_zone) == 0;
}

static void
describe(char *buf, size_t len, const struct tm *tm)
{
	snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d wday %d yday %d dst %d off %ld %s",
		 tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday, tm->tm_hour, tm->tm_min,
		 tm->tm_sec, tm->tm_wday, tm->tm_yday, tm->tm_isdst, tm->tm_gmtoff,
		 tm->tm_zone != NULL ? tm->tm_zone : "(null)");
}

/* Compares one instant; on mismatch fills msg and returns false.  No Check
 * assertion per instant: in fork mode each one costs a pipe write. */
static bool
compare_at(const pg_tz *tz, time_t t, char *msg, size_t msg_len)
{
	struct tm ours, ref;
	char a[128], b[128];

	if (localtime_r(&t, &ref) == NULL) {
		snprintf(msg, msg_len, "glibc failed at %lld", (long long)t);
		return false;
	}
	if (!pg_tz_localtime(tz, t, &ours)) {
		snprintf(msg, msg_len, "%s: pg_tz_localtime failed at %lld", pg_tz_name(tz),
			 (long long)t);
		return false;
	}
	if (same_tm(&ours, &ref))
		return true;
	describe(a, sizeof a, &ours);
	describe(b, sizeof b, &ref);
	snprintf(msg, msg_len, "%s at %lld: ours %s, glibc %s", pg_tz_name(tz), (long long)t, a, b);
	return false;
}

/* Walks [from, to) in steps; around every offset change glibc reports,
 * finds the exact second and compares one second either side too. */
static bool
sweep(const char *name, time_t from, time_t to, time_t step, char *msg, size_t msg_len)
{
	char err[256] = "";
	pg_tz *tz = pg_tz_new(name, err, sizeof err);
	struct tm prev, cur;
	bool ok = false;

	if (tz == NULL) {
		snprintf(msg, msg_len, "pg_tz_new(%s): %s", name, err);
		return false;
	}
	glibc_zone(name);
	localtime_r(&from, &prev);
	for (time_t t = from; t < to; t += step) {
		if (!compare_at(tz, t, msg, msg_len))
			goto out;
		localtime_r(&t, &cur);
		if (cur.tm_gmtoff != prev.tm_gmtoff || cur.tm_isdst != prev.tm_isdst) {
			/* Binary search the change in (t - step, t]. */
			time_t lo = t - step, hi = t;
			struct tm mid_tm;

			while (hi - lo > 1) {
				time_t mid = lo + (hi - lo) / 2;

				localtime_r(&mid, &mid_tm);
				if (mid_tm.tm_gmtoff == cur.tm_gmtoff && mid_tm.tm_isdst == cur.tm_isdst)
					hi = mid;
				else
					lo = mid;
			}
			if (!compare_at(tz, hi - 1, msg, msg_len) || !compare_at(tz, hi, msg, msg_len) ||
			    !compare_at(tz, hi + 1, msg, msg_len))
				goto out;
		}
		prev = cur;
	}
	ok = true;
out:
	pg_tz_free(tz);
	return ok;
}

static char tmpdir[64];

static void
make_tmpdir(void)
{
	/* tmpfs when there is one: the damaged-file tests rewrite a file
	 * thousands of times, and truncating on ext4 costs milliseconds. */
	strcpy(tmpdir, access("/dev/shm", W_OK) == 0 ? "/dev/shm/pg-tz-test.XXXXXX"
						      : "/tmp/pg-tz-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_int_eq(setenv("TZDIR", tmpdir, 1), 0);
}

static void
remove_tmpdir(void)
{
	char cmd[128];

	unsetenv("TZDIR");
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static void
write_bytes(const char *name, const void *data, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static unsigned char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = malloc(1 << 20);

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(buf);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

/* A growable byte buffer to build TZif files with. */
struct buf {
	unsigned char data[8192];
	size_t len;
};

static void
put(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	ck_assert_uint_le(b->len + n, sizeof b->data);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
put32(struct buf *b, uint32_t v)
{
	unsigned char p[4] = { v >> 24, v >> 16, v >> 8, v };

	put(b, p, 4);
}

static void
put64(struct buf *b, uint64_t v)
{
	put32(b, (uint32_t)(v >> 32));
	put32(b, (uint32_t)v);
}

struct ttype {
	int32_t utoff;
	int isdst;
	const char *abbr;
};

struct tzif_spec {
	char version;                   /* '\0', '2', '3', '4' */
	const int64_t *trans;
	const unsigned char *idx;
	uint32_t n_trans;
	const struct ttype *types;
	uint32_t n_types;
	uint32_t leapcnt;               /* written as zero-valued records */
	const char *footer;             /* v2+: the TZ string (without newlines) */
};

static void
put_block(struct buf *b, const struct tzif_spec *s, int time_size)
{
	char chars[256];
	unsigned char abbr_idx[16];
	uint32_t charcnt = 0;

	for (uint32_t i = 0; i < s->n_types; i++) {
		abbr_idx[i] = (unsigned char)charcnt;
		strcpy(chars + charcnt, s->types[i].abbr);
		charcnt += (uint32_t)strlen(s->types[i].abbr) + 1;
	}
	put(b, "TZif", 4);
	put(b, &s->version, 1);
	put(b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 15);
	put32(b, 0);                    /* isutcnt */
	put32(b, 0);                    /* isstdcnt */
	put32(b, s->leapcnt);
	put32(b, s->n_trans);
	put32(b, s->n_types);
	put32(b, charcnt);
	for (uint32_t i = 0; i < s->n_trans; i++) {
		if (time_size == 8)
			put64(b, (uint64_t)s->trans[i]);
		else
			put32(b, (uint32_t)(int32_t)s->trans[i]);
	}
	put(b, s->idx, s->n_trans);
	for (uint32_t i = 0; i < s->n_types; i++) {
		unsigned char flags[2] = { (unsigned char)s->types[i].isdst, abbr_idx[i] };

		put32(b, (uint32_t)s->types[i].utoff);
		put(b, flags, 2);
	}
	put(b, chars, charcnt);
	for (uint32_t i = 0; i < s->leapcnt; i++) {
		if (time_size == 8)
			put64(b, 0);
		else
			put32(b, 0);
		put32(b, 0);
	}
}

static void
build_tzif(struct buf *b, const struct tzif_spec *s)
{
	b->len = 0;
	put_block(b, s, 4);
	if (s->version != '\0') {
		put_block(b, s, 8);
		put(b, "\n", 1);
		put(b, s->footer, strlen(s->footer));
		put(b, "\n", 1);
	}
}

static pg_tz *
load_spec(const char *name, const struct tzif_spec *s, char *err, size_t err_len)
{
	struct buf b;

	build_tzif(&b, s);
	write_bytes(name, b.data, b.len);
	return pg_tz_new(name, err, err_len);
}

static void
expect_local(const pg_tz *tz, time_t t, const char *want_text, int want_dst, long want_off,
	     const char *want_abbr)
{
	struct tm tm;
	char text[80];

	ck_assert_msg(pg_tz_localtime(tz, t, &tm), "pg_tz_localtime(%lld) failed", (long long)t);
	snprintf(text, sizeof text, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	ck_assert_str_eq(text, want_text);
	ck_assert_int_eq(tm.tm_isdst, want_dst);
	ck_assert_int_eq(tm.tm_gmtoff, want_off);
	ck_assert_str_eq(tm.tm_zone, want_abbr);
}

/* ---- comparison with glibc on the real files ---- */

static const char *const sweep_zones[] = {
	"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
	"Pacific/Chatham", "UTC", "Etc/UTC",
	/* Footers with RFC 8536 times: negative, 24h, >24h, southern rules. */
	"America/Nuuk", "Asia/Jerusalem", "Asia/Gaza", "Africa/Cairo", "America/Santiago",
	"Pacific/Easter", "America/St_Johns", "Europe/Dublin", "Africa/Casablanca",
};

START_TEST(test_sweep_1970_2100)
{
	char msg[512] = "";
	const char *zone = sweep_zones[_i];

	/* Twelve hours and 7 s: the hours and seconds drift through every value
	 * over the years; the binary search pins each change to the second. */
	ck_assert_msg(sweep(zone, utc(1970, 1, 1, 0, 0, 0), utc(2100, 12, 31, 0, 0, 0), 43207,
			    msg, sizeof msg), "%s", msg);
}
END_TEST

START_TEST(test_sweep_before_1970)
{
	char msg[512] = "";
	const char *zone = sweep_zones[_i];

	/* The pre-1970 history and LMT before the first transition. */
	ck_assert_msg(sweep(zone, utc(1800, 1, 1, 0, 0, 0), utc(1970, 1, 1, 0, 0, 0),
			    86400 * 3 + 3607, msg, sizeof msg), "%s", msg);
}
END_TEST

/* Every zone in the system's tzdata, at a coarser step: proves the parser
 * takes every real file and agrees with glibc on it. */
static bool
sweep_dir(const char *base, const char *rel, int *n_zones, char *msg, size_t msg_len)
{
	char path[1024], child[512];
	struct dirent *de;
	bool ok = true;
	DIR *d;

	snprintf(path, sizeof path, "%s/%s", base, rel);
	d = opendir(path);
	if (d == NULL)
		return true;
	while (ok && (de = readdir(d)) != NULL) {
		struct stat st;
		char magic[4];
		FILE *f;

		if (de->d_name[0] == '.' || strcmp(de->d_name, "right") == 0 ||
		    strcmp(de->d_name, "posix") == 0 || strchr(de->d_name, '.') != NULL)
			continue;
		snprintf(child, sizeof child, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
		snprintf(path, sizeof path, "%s/%s", base, child);
		if (stat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			ok = sweep_dir(base, child, n_zones, msg, msg_len);
			continue;
		}
		f = fopen(path, "rb");
		if (f == NULL)
			continue;
		if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "TZif", 4) != 0) {
			fclose(f);
			continue;
		}
		fclose(f);
		(*n_zones)++;
		ok = sweep(child, utc(1900, 1, 1, 0, 0, 0), utc(2100, 1, 1, 0, 0, 0),
			   86400 * 61 + 3607, msg, msg_len);
	}
	closedir(d);
	return ok;
}

START_TEST(test_every_system_zone)
{
	char msg[512] = "";
	int n_zones = 0;

	ck_assert_msg(sweep_dir(SYSTEM_TZDIR, "", &n_zones, msg, sizeof msg), "%s", msg);
	ck_assert_int_gt(n_zones, 300);
}
END_TEST

/* ---- explicit expectations ---- */

START_TEST(test_berlin_dst_edges)
{
	char err[256] = "";
	pg_tz *tz = pg_tz_new("Europe/Berlin", err, sizeof err);
	time_t spring = utc(2026, 3, 29, 1, 0, 0), autumn = utc(2026, 10, 25, 1, 0, 0);

	ck_assert_msg(tz != NULL, "%s", err);
	ck_assert_str_eq(pg_tz_name(tz), "Europe/Berlin");
	expect_local(tz, spring - 1, "2026-03-29 01:59:59", 0, 3600, "CET");
	expect_local(tz, spring, "2026-03-29 03:00:00", 1, 7200, "CEST");
	expect_local(tz, spring + 1, "2026-03-29 03:00:01", 1, 7200, "CEST");
	expect_local(tz, autumn - 1, "2026-10-25 02:59:59", 1, 7200, "CEST");
	expect_local(tz, autumn, "2026-10-25 02:00:00", 0, 3600, "CET");
	expect_local(tz, autumn + 1, "2026-10-25 02:00:01", 0, 3600, "CET");
	pg_tz_free(tz);
}
END_TEST

START_TEST(test_far_future_uses_footer)
{
	char err[256] = "";
	pg_tz *tz = pg_tz_new("Europe/Berlin", err, sizeof err);
	struct tm tm;

	ck_assert_msg(tz != NULL, "%s", err);
	/* Far past any transition a slim or fat file lists. */
	expect_local(tz, utc(2090, 7, 1, 12, 0, 0), "2090-07-01 14:00:00", 1, 7200, "CEST");
	expect_local(tz, utc(2090, 12, 24, 8, 0, 0), "2090-12-24 09:00:00", 0, 3600, "CET");
	expect_local(tz, utc(2500, 3, 28, 0, 59, 59), "2500-03-28 01:59:59", 0, 3600, "CET");
	expect_local(tz, utc(2500, 3, 28, 1, 0, 0), "2500-03-28 03:00:00", 1, 7200, "CEST");
	ck_assert(pg_tz_localtime(tz, utc(2090, 7, 1, 12, 0, 0), &tm));
	ck_assert_int_eq(tm.tm_wday, 6);        /* a Saturday */
	ck_assert_int_eq(tm.tm_yday, 181);
	pg_tz_free(tz);
}
END_TEST

START_TEST(test_half_hour_zones)
{
	char err[256] = "";
	pg_tz *howe = pg_tz_new("Australia/Lord_Howe", err, sizeof err);
	pg_tz *kolkata = pg_tz_new("Asia/Kolkata", err, sizeof err);
	pg_tz *chatham = pg_tz_new("Pacific/Chatham", err, sizeof err);

	ck_assert_ptr_nonnull(howe);
	ck_assert_ptr_nonnull(kolkata);
	ck_assert_ptr_nonnull(chatham);
	/* Lord Howe moves by 30 minutes: +10:30 in winter, +11 in summer. */
	expect_local(howe, utc(2026, 7, 1, 0, 0, 0), "2026-07-01 10:30:00", 0, 37800, "+1030");
	expect_local(howe, utc(2026, 1, 1, 0, 0, 0), "2026-01-01 11:00:00", 1, 39600, "+11");
	expect_local(kolkata, utc(2026, 1, 1, 0, 0, 0), "2026-01-01 05:30:00", 0, 19800, "IST");
	expect_local(chatham, utc(2026, 1, 1, 0, 0, 0), "2026-01-01 13:45:00", 1, 49500, "+1345");
	expect_local(chatham, utc(2095, 7, 1, 0, 0, 0), "2095-07-01 12:45:00", 0, 45900, "+1245");
	pg_tz_free(howe);
	pg_tz_free(kolkata);
	pg_tz_free(chatham);
}
END_TEST

START_TEST(test_utc)
{
	char err[256] = "";
	const char *names[] = { "UTC", "Etc/UTC" };

	/* UTC works even where no zone file exists at all. */
	make_tmpdir();
	for (size_t i = 0; i < 2; i++) {
		pg_tz *tz = pg_tz_new(names[i], err, sizeof err);

		ck_assert_msg(tz != NULL, "%s", err);
		ck_assert_str_eq(pg_tz_name(tz), names[i]);
		expect_local(tz, 0, "1970-01-01 00:00:00", 0, 0, "UTC");
		expect_local(tz, utc(2100, 2, 28, 23, 59, 59), "2100-02-28 23:59:59", 0, 0, "UTC");
		expect_local(tz, -1, "1969-12-31 23:59:59", 0, 0, "UTC");
		pg_tz_free(tz);
	}
	remove_tmpdir();
}
END_TEST

START_TEST(test_extreme_instants)
{
	char err[256] = "";
	pg_tz *tz = pg_tz_new("Europe/Berlin", err, sizeof err);
	struct tm tm;

	ck_assert_ptr_nonnull(tz);
	ck_assert(!pg_tz_localtime(tz, INT64_MAX, &tm));
	ck_assert_int_eq(tm.tm_year, 0);        /* zeroed on failure */
	ck_assert(!pg_tz_localtime(tz, INT64_MIN, &tm));
	ck_assert(!pg_tz_localtime(NULL, 0, &tm));
	/* The largest year that fits tm_year is still answered. */
	ck_assert(pg_tz_localtime(tz, (time_t)INT32_MAX * 365 * 86400, &tm));
	pg_tz_free(tz);
}
END_TEST

/* ---- names ---- */

START_TEST(test_bad_names)
{
	static const char *const bad[] = {
		"", "/etc/passwd", "../etc/passwd", "Europe/../../etc/passwd", "..", ".",
		"Europe/./Berlin", "Europe//Berlin", "Europe/Berlin/", "/Europe/Berlin",
		"Europe/Berlin ", "a;b", "Europe\\Berlin", "zone.tab", "~root",
	};
	char err[256], want[256], long_name[300];

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		err[0] = '\0';
		ck_assert_ptr_null(pg_tz_new(bad[i], err, sizeof err));
		snprintf(want, sizeof want, "'%s' is not a time zone name", bad[i]);
		ck_assert_str_eq(err, want);
	}
	/* The message stays on one line, and short. */
	ck_assert_ptr_null(pg_tz_new("Europe/Berlin\n\x7f", err, sizeof err));
	ck_assert_str_eq(err, "'Europe/Berlin\\x0a\\x7f' is not a time zone name");
	memset(long_name, 'A', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	long_name[5] = '.';
	ck_assert_ptr_null(pg_tz_new(long_name, err, sizeof err));
	snprintf(want, sizeof want, "'%.64s...' is not a time zone name", long_name);
	ck_assert_str_eq(err, want);
	ck_assert_ptr_null(pg_tz_new(NULL, err, sizeof err));
	ck_assert_ptr_null(pg_tz_new("../etc/passwd", NULL, 0));   /* no buffer: no crash */
	ck_assert_ptr_null(pg_tz_new("../etc/passwd", err, 8));    /* truncated, terminated */
	ck_assert_str_eq(err, "'../etc");
}
END_TEST

START_TEST(test_unknown_zone)
{
	char err[256] = "";

	unsetenv("TZDIR");
	ck_assert_ptr_null(pg_tz_new("Europe/Berln", err, sizeof err));
	ck_assert_str_eq(err, "unknown time zone 'Europe/Berln' (no file "
			 "/usr/share/zoneinfo/Europe/Berln)");
	ck_assert_ptr_null(pg_tz_new("Europe", err, sizeof err));
	ck_assert_str_eq(err, "'Europe' is not a time zone (/usr/share/zoneinfo/Europe is not a "
			 "regular file)");
	ck_assert_ptr_null(pg_tz_new("Europe/Berlin/x", err, sizeof err));
	ck_assert_str_eq(err, "unknown time zone 'Europe/Berlin/x' (no file "
			 "/usr/share/zoneinfo/Europe/Berlin/x)");
}
END_TEST

START_TEST(test_tzdir)
{
	char err[256] = "", want[256];
	size_t len;
	unsigned char *berlin = slurp(SYSTEM_TZDIR "/Europe/Berlin", &len);
	pg_tz *tz;

	make_tmpdir();
	/* The file is read from $TZDIR, under any safe name. */
	write_bytes("My_Zone", berlin, len);
	tz = pg_tz_new("My_Zone", err, sizeof err);
	ck_assert_msg(tz != NULL, "%s", err);
	expect_local(tz, utc(2026, 7, 1, 0, 0, 0), "2026-07-01 02:00:00", 1, 7200, "CEST");
	pg_tz_free(tz);
	ck_assert_ptr_null(pg_tz_new("Europe/Berlin", err, sizeof err));
	snprintf(want, sizeof want, "unknown time zone 'Europe/Berlin' (no file %s/Europe/Berlin)",
		 tmpdir);
	ck_assert_str_eq(err, want);

	write_bytes("Text", "Europe/Berlin\n", 14);
	ck_assert_ptr_null(pg_tz_new("Text", err, sizeof err));
	ck_assert_msg(strstr(err, "'Text' is not a time zone (") == err &&
		      strstr(err, "/Text is not a TZif file)") != NULL, "%s", err);

	/* A FIFO must be refused, not waited on. */
	{
		char path[256];

		snprintf(path, sizeof path, "%s/Fifo", tmpdir);
		ck_assert_int_eq(mkfifo(path, 0600), 0);
		ck_assert_ptr_null(pg_tz_new("Fifo", err, sizeof err));
		ck_assert_msg(strstr(err, "is not a regular file") != NULL, "%s", err);
	}
	remove_tmpdir();
	free(berlin);
}
END_TEST

/* ---- damaged and hostile files ---- */

START_TEST(test_truncated_files)
{
	char err[256] = "", want[256];
	size_t len;
	unsigned char *berlin = slurp(SYSTEM_TZDIR "/Europe/Berlin", &len);
	pg_tz *tz;

	make_tmpdir();
	ck_assert_uint_gt(len, 100);
	/* Every proper prefix of a version 2+ file lacks at least the footer's
	 * closing newline: all must be refused. */
	for (size_t cut = 0; cut < len; cut++) {
		/* One name, rewritten: new files cost far more than parsing. */
		write_bytes("Cut", berlin, cut);
		err[0] = '\0';
		tz = pg_tz_new("Cut", err, sizeof err);
		ck_assert_msg(tz == NULL, "prefix of %zu bytes accepted", cut);
		ck_assert_msg(err[0] != '\0', "no message for %zu bytes", cut);
	}
	write_bytes("Cut", berlin, len - 10);
	ck_assert_ptr_null(pg_tz_new("Cut", err, sizeof err));
	snprintf(want, sizeof want, "time zone file %s/Cut is damaged (unterminated footer); "
		 "reinstall tzdata", tmpdir);
	ck_assert_str_eq(err, want);
	write_bytes("Cut", berlin, 100);
	ck_assert_ptr_null(pg_tz_new("Cut", err, sizeof err));
	ck_assert_msg(strstr(err, "(truncated version 1 data block)") != NULL, "%s", err);
	remove_tmpdir();
	free(berlin);
}
END_TEST

/* Flipped bytes anywhere must give an error or a zone that answers, never a
 * crash or an out-of-bounds read (run under ASan/valgrind to see those). */
START_TEST(test_corrupted_files)
{
	char err[256];
	size_t len;
	unsigned char *berlin = slurp(SYSTEM_TZDIR "/Europe/Berlin", &len);
	unsigned char *copy = malloc(len);
	unsigned seed = 12345;
	int refused = 0, insane = 0;

	make_tmpdir();
	for (int round = 0; round < 2000; round++) {
		pg_tz *tz;

		memcpy(copy, berlin, len);
		for (int k = 0; k < 1 + round % 4; k++) {
			seed = seed * 1103515245 + 12345;
			/* Mostly in the headers and counts, where damage bites. */
			size_t pos = (round % 2 ? (seed >> 8) % 120 : (seed >> 8) % len);

			copy[pos] ^= (unsigned char)(1 + (seed >> 20) % 255);
		}
		write_bytes("Bad", copy, len);
		tz = pg_tz_new("Bad", err, sizeof err);
		if (tz == NULL) {
			refused++;
			continue;
		}
		for (time_t t = utc(1890, 1, 1, 0, 0, 0); t < utc(2200, 1, 1, 0, 0, 0);
		     t += 86400 * 397) {
			struct tm tm;

			if (!pg_tz_localtime(tz, t, &tm) || tm.tm_gmtoff < -89999 ||
			    tm.tm_gmtoff > 93599 || tm.tm_zone == NULL)
				insane++;
		}
		pg_tz_free(tz);
	}
	ck_assert_int_eq(insane, 0);
	ck_assert_int_gt(refused, 100);
	remove_tmpdir();
	free(copy);
	free(berlin);
}
END_TEST

static const struct ttype std_dst[] = {
	{ 3600, 0, "CET" },
	{ 7200, 1, "CEST" },
};

START_TEST(test_hostile_headers)
{
	static const int64_t trans[] = { 100, 200, 300 };
	static const unsigned char idx[] = { 1, 0, 1 };
	struct tzif_spec good = { '2', trans, idx, 3, std_dst, 2, 0, "CET-1CEST,M3.5.0,M10.5.0/3" };
	struct tzif_spec s;
	char err[256] = "";
	struct buf b;
	pg_tz *tz;

	make_tmpdir();
	tz = load_spec("Good", &good, err, sizeof err);
	ck_assert_msg(tz != NULL, "%s", err);
	pg_tz_free(tz);

	/* timecnt of 2^32-1 in the 64-bit header only: sizes are checked
	 * before anything is read or allocated. */
	build_tzif(&b, &good);
	{
		size_t v2 = b.len - (44 + 3 * 8 + 3 + 2 * 6 + 9) - 28;

		ck_assert_mem_eq(b.data + v2, "TZif2", 5);
		memset(b.data + v2 + 32, 0xff, 4);
		write_bytes("Huge", b.data, b.len);
		ck_assert_ptr_null(pg_tz_new("Huge", err, sizeof err));
		ck_assert_msg(strstr(err, "(truncated data block)") != NULL, "%s", err);
		/* And in the version 1 header. */
		build_tzif(&b, &good);
		memset(b.data + 32, 0xff, 4);
		write_bytes("Huge1", b.data, b.len);
		ck_assert_ptr_null(pg_tz_new("Huge1", err, sizeof err));
		ck_assert_msg(strstr(err, "(truncated version 1 data block)") != NULL, "%s", err);
	}

	s = good;
	s.n_types = 0;
	s.n_trans = 0;
	ck_assert_ptr_null(load_spec("NoTypes", &s, err, sizeof err));
	ck_assert_msg(strstr(err, "(no local time types)") != NULL, "%s", err);

	{
		static const unsigned char bad_idx[] = { 1, 2, 1 };

		s = good;
		s.idx = bad_idx;
		ck_assert_ptr_null(load_spec("BadIdx", &s, err, sizeof err));
		ck_assert_msg(strstr(err, "(transition type index out of range)") != NULL, "%s", err);
	}
	{
		static const int64_t unsorted[] = { 100, 300, 200 };

		s = good;
		s.trans = unsorted;
		ck_assert_ptr_null(load_spec("Unsorted", &s, err, sizeof err));
		ck_assert_msg(strstr(err, "(transition times not ascending)") != NULL, "%s", err);
	}
	{
		static const struct ttype wild[] = { { 3600, 0, "CET" }, { 200000, 1, "X" } };

		s = good;
		s.types = wild;
		ck_assert_ptr_null(load_spec("Wild", &s, err, sizeof err));
		ck_assert_msg(strstr(err, "(UT offset out of range)") != NULL, "%s", err);
	}
	{
		static const struct ttype dst2[] = { { 3600, 0, "CET" }, { 7200, 2, "CEST" } };

		s = good;
		s.types = dst2;
		ck_assert_ptr_null(load_spec("Dst2", &s, err, sizeof err));
		ck_assert_msg(strstr(err, "(bad DST flag)") != NULL, "%s", err);
	}
	/* Abbreviation index past the table, and a table without its NUL:
	 * patch the built bytes of the 64-bit block. */
	build_tzif(&b, &good);
	b.data[b.len - 28 - 9 - 1] = 9;         /* CEST's index -> 9 == charcnt */
	write_bytes("AbbrIdx", b.data, b.len);
	ck_assert_ptr_null(pg_tz_new("AbbrIdx", err, sizeof err));
	ck_assert_msg(strstr(err, "(abbreviation index out of range)") != NULL, "%s", err);
	build_tzif(&b, &good);
	b.data[b.len - 28 - 1] = 'X';           /* last byte of "CET\0CEST\0" */
	write_bytes("NoNul", b.data, b.len);
	ck_assert_ptr_null(pg_tz_new("NoNul", err, sizeof err));
	ck_assert_msg(strstr(err, "(unterminated time zone abbreviation)") != NULL, "%s", err);

	s = good;
	s.leapcnt = 2;
	ck_assert_ptr_null(load_spec("Leap", &s, err, sizeof err));
	ck_assert_str_eq(err, "time zone 'Leap' counts leap seconds, which p11gate does not "
			 "support (use the zone without the right/ prefix)");

	/* Version 2 without its footer. */
	build_tzif(&b, &good);
	write_bytes("NoFooter", b.data, b.len - 28);
	ck_assert_ptr_null(pg_tz_new("NoFooter", err, sizeof err));
	ck_assert_msg(strstr(err, "(missing footer)") != NULL, "%s", err);
	remove_tmpdir();
}
END_TEST

START_TEST(test_bad_footers)
{
	static const int64_t trans[] = { 100 };
	static const unsigned char idx[] = { 0 };
	static const char *const bad[] = {
		"CET-1CEST",                        /* DST without a rule */
		"CET",                              /* no offset */
		"CE-1",                             /* name too short */
		"CET-1CEST,M13.5.0,M10.5.0/3",      /* month 13 */
		"CET-1CEST,M3.6.0,M10.5.0/3",       /* week 6 */
		"CET-1CEST,M3.5.7,M10.5.0/3",       /* day 7 */
		"CET-1CEST,M3.5.0,M10.5.0/168",     /* beyond 167h */
		"CET-1CEST,J0,J365",                /* J counts from 1 */
		"CET-1CEST,366,J365",               /* n up to 365 */
		"CET-25",                           /* offset beyond 24h */
		"CET-1:60",                         /* minutes 60 */
		"<+05>-5<",                         /* unterminated quote */
		"CET-1CEST,M3.5.0,M10.5.0/3,",      /* trailing junk */
		"CET-1CEST,M3.5.0",                 /* no end */
		"CET-1 ",                           /* trailing blank */
		"CET-99999999999999999999",         /* overflow */
	};
	struct tzif_spec s = { '3', trans, idx, 1, std_dst, 2, 0, NULL };
	char err[256] = "";

	make_tmpdir();
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		s.footer = bad[i];
		err[0] = '\0';
		ck_assert_msg(load_spec("Footer", &s, err, sizeof err) == NULL, "accepted '%s'", bad[i]);
		ck_assert_msg(strstr(err, "(bad POSIX TZ string in footer)") != NULL, "%s: %s",
			      bad[i], err);
	}
	s.footer = "CET-1\tCEST";
	ck_assert_ptr_null(load_spec("Footer", &s, err, sizeof err));
	ck_assert_msg(strstr(err, "(bad footer)") != NULL, "%s", err);
	remove_tmpdir();
}
END_TEST

/* ---- the rule forms, on hand-built files ---- */

START_TEST(test_version1_file)
{
	static const int64_t trans[] = { 1000, 2000 };
	static const unsigned char idx[] = { 1, 0 };
	struct tzif_spec s = { '\0', trans, idx, 2, std_dst, 2, 0, NULL };
	char err[256] = "";
	pg_tz *tz;

	make_tmpdir();
	tz = load_spec("V1", &s, err, sizeof err);
	ck_assert_msg(tz != NULL, "%s", err);
	/* Before the first transition: type 0.  After the last: its type. */
	expect_local(tz, 999, "1970-01-01 01:16:39", 0, 3600, "CET");
	expect_local(tz, 1000, "1970-01-01 02:16:40", 1, 7200, "CEST");
	expect_local(tz, 1999, "1970-01-01 02:33:19", 1, 7200, "CEST");
	expect_local(tz, 2000, "1970-01-01 01:33:20", 0, 3600, "CET");
	expect_local(tz, utc(2090, 7, 1, 0, 0, 0), "2090-07-01 01:00:00", 0, 3600, "CET");
	pg_tz_free(tz);
	remove_tmpdir();
}
END_TEST

START_TEST(test_no_transitions_footer_only)
{
	static const struct ttype ny[] = { { -18000, 0, "EST" } };
	struct tzif_spec s = { '2', NULL, NULL, 0, ny, 1, 0, "EST5EDT,M3.2.0,M11.1.0" };
	char err[256] = "";
	pg_tz *tz;

	make_tmpdir();
	/* No transitions: the footer rule governs every instant (RFC 8536 3.3). */
	tz = load_spec("Footer_Only", &s, err, sizeof err);
	ck_assert_msg(tz != NULL, "%s", err);
	expect_local(tz, utc(2026, 3, 8, 6, 59, 59), "2026-03-08 01:59:59", 0, -18000, "EST");
	expect_local(tz, utc(2026, 3, 8, 7, 0, 0), "2026-03-08 03:00:00", 1, -14400, "EDT");
	expect_local(tz, utc(2026, 11, 1, 5, 59, 59), "2026-11-01 01:59:59", 1, -14400, "EDT");
	expect_local(tz, utc(2026, 11, 1, 6, 0, 0), "2026-11-01 01:00:00", 0, -18000, "EST");
	expect_local(tz, utc(1950, 7, 1, 12, 0, 0), "1950-07-01 08:00:00", 1, -14400, "EDT");
	pg_tz_free(tz);
	/* An empty footer: no rule, the last type stays. */
	s.footer = "";
	tz = load_spec("Empty_Footer", &s, err, sizeof err);
	ck_assert_msg(tz != NULL, "%s", err);
	expect_local(tz, utc(2026, 7, 1, 12, 0, 0), "2026-07-01 07:00:00", 0, -18000, "EST");
	pg_tz_free(tz);
	remove_tmpdir();
}
END_TEST

START_TEST(test_julian_forms)
{
	static const struct ttype zero[] = { { 0, 0, "AAA" } };
	struct tzif_spec s = { '2', NULL, NULL, 0, zero, 1, 0, "AAA0BBB,J60/0,J300/0" };
	char err[256] = "";
	pg_tz *tz;

	make_tmpdir();
	/* Jn: day 60 is March 1 in every year, leap or not. */
	tz = load_spec("Julian1", &s, err, sizeof err);
	ck_assert_msg(tz != NULL, "%s", err);
	expect_local(tz, utc(2024, 2, 29, 23, 59, 59), "2024-02-29 23:59:59", 0, 0, "AAA");
	expect_local(tz, utc(2024, 3, 1, 0, 0, 0), "2024-03-01 01:00:00", 1, 3600, "BBB");
	expect_local(tz, utc(2023, 2, 28, 23, 59, 59), "2023-02-28 23:59:59", 0, 0, "AAA");
	expect_local(tz, utc(2023, 3, 1, 0, 0, 0), "2023-03-01 01:00:00", 1, 3600, "BBB");
	/* J300 = October 27 even in a leap year, at 00:00 daylight time. */
	expect_local(tz, utc(2024, 10, 26, 22, 59, 59), "2024-10-26 23:59:59", 1, 3600, "BBB");
	expect_local(tz, utc(2024, 10, 26, 23, 0, 0), "2024-10-26 23:00:00", 0, 0, "AAA");
	pg_tz_free(tz);

	/* n: zero-based and counting February 29 — day 59 is Feb 29 in 2024,
	 * March 1 in 2023. */
	s.footer = "AAA0BBB,59/0,300/0";
	tz = load_spec("Julian0", &s, err, sizeof err);
	ck_assert_msg(tz != NULL, "%s", err);
	expect_local(tz, utc(2024, 2, 28, 23, 59, 59), "2024-02-28 23:59:59", 0, 0, "AAA");
	expect_local(tz, utc(2024, 2, 29, 0, 0, 0), "2024-02-29 01:00:00", 1, 3600, "BBB");
	expect_local(tz, utc(2023, 2, 28, 23, 59, 59), "2023-02-28 23:59:59", 0, 0, "AAA");
	expect_local(tz, utc(2023, 3, 1, 0, 0, 0), "2023-03-01 01:00:00", 1, 3600, "BBB");
	pg_tz_free(tz);
	remove_tmpdir();
}
END_TEST

START_TEST(test_rfc8536_times)
{
	static const struct ttype est[] = { { -18000, 0, "EST" } };
	struct tzif_spec s = { '3', NULL, NULL, 0, est, 1, 0, "EST5EDT4,0/0,J365/25" };
	char err[256] = "";
	pg_tz *tz;

	make_tmpdir();
	/* RFC 8536 3.3.1's example: DST all year round, also across the
	 * instant where one year's end meets the next year's start. */
	tz = load_spec("All_Year", &s, err, sizeof err);
	ck_assert_msg(tz != NULL, "%s", err);
	expect_local(tz, utc(2026, 1, 1, 4, 59, 59), "2026-01-01 00:59:59", 1, -14400, "EDT");
	expect_local(tz, utc(2026, 1, 1, 5, 0, 0), "2026-01-01 01:00:00", 1, -14400, "EDT");
	expect_local(tz, utc(2026, 1, 1, 0, 0, 0), "2025-12-31 20:00:00", 1, -14400, "EDT");
	expect_local(tz, utc(2026, 7, 1, 0, 0, 0), "2026-06-30 20:00:00", 1, -14400, "EDT");
	expect_local(tz, utc(2024, 12, 31, 23, 0, 0), "2024-12-31 19:00:00", 1, -14400, "EDT");
	pg_tz_free(tz);

	/* Negative times (America/Nuuk's form): DST starts on the last
	 * Sunday of March at -1:00, i.e. Saturday 23:00 standard time. */
	{
		static const struct ttype nuuk[] = { { -7200, 0, "-02" } };

		s.types = nuuk;
		s.footer = "<-02>2<-01>,M3.5.0/-1,M10.5.0/0";
		tz = load_spec("Negative", &s, err, sizeof err);
		ck_assert_msg(tz != NULL, "%s", err);
		expect_local(tz, utc(2026, 3, 29, 0, 59, 59), "2026-03-28 22:59:59", 0, -7200, "-02");
		expect_local(tz, utc(2026, 3, 29, 1, 0, 0), "2026-03-29 00:00:00", 1, -3600, "-01");
		expect_local(tz, utc(2026, 10, 25, 0, 59, 59), "2026-10-24 23:59:59", 1, -3600, "-01");
		expect_local(tz, utc(2026, 10, 25, 1, 0, 0), "2026-10-24 23:00:00", 0, -7200, "-02");
		pg_tz_free(tz);
	}
	/* Hours past 24 (Asia/Gaza's form): Thursday + 50h = Saturday 02:00. */
	{
		static const struct ttype gaza[] = { { 7200, 0, "EET" } };

		s.types = gaza;
		s.footer = "EET-2EEST,M3.4.4/50,M10.4.4/50";
		tz = load_spec("Beyond_24", &s, err, sizeof err);
		ck_assert_msg(tz != NULL, "%s", err);
		/* 4th Thursday of March 2026 is the 26th: change Sat 28th 02:00. */
		expect_local(tz, utc(2026, 3, 27, 23, 59, 59), "2026-03-28 01:59:59", 0, 7200, "EET");
		expect_local(tz, utc(2026, 3, 28, 0, 0, 0), "2026-03-28 03:00:00", 1, 10800, "EEST");
		pg_tz_free(tz);
	}
	remove_tmpdir();
}
END_TEST

START_TEST(test_southern_rule_far_future)
{
	char err[256] = "";
	pg_tz *tz = pg_tz_new("Australia/Lord_Howe", err, sizeof err);

	ck_assert_msg(tz != NULL, "%s", err);
	/* New Year falls inside DST in the south: the rule must carry over. */
	expect_local(tz, utc(2099, 12, 31, 12, 59, 59), "2099-12-31 23:59:59", 1, 39600, "+11");
	expect_local(tz, utc(2099, 12, 31, 13, 0, 0), "2100-01-01 00:00:00", 1, 39600, "+11");
	pg_tz_free(tz);
}
END_TEST

static Suite *
tz_suite(void)
{
	Suite *s = suite_create("tz");
	TCase *tc = tcase_create("glibc");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_sweep_1970_2100, 0, sizeof sweep_zones / sizeof *sweep_zones);
	tcase_add_loop_test(tc, test_sweep_before_1970, 0, sizeof sweep_zones / sizeof *sweep_zones);
	tcase_add_test(tc, test_every_system_zone);
	suite_add_tcase(s, tc);

	tc = tcase_create("zones");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_berlin_dst_edges);
	tcase_add_test(tc, test_far_future_uses_footer);
	tcase_add_test(tc, test_half_hour_zones);
	tcase_add_test(tc, test_utc);
	tcase_add_test(tc, test_extreme_instants);
	tcase_add_test(tc, test_southern_rule_far_future);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_test(tc, test_bad_names);
	tcase_add_test(tc, test_unknown_zone);
	tcase_add_test(tc, test_tzdir);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_truncated_files);
	tcase_add_test(tc, test_corrupted_files);
	tcase_add_test(tc, test_hostile_headers);
	tcase_add_test(tc, test_bad_footers);
	tcase_add_test(tc, test_version1_file);
	tcase_add_test(tc, test_no_transitions_footer_only);
	tcase_add_test(tc, test_julian_forms);
	tcase_add_test(tc, test_rfc8536_times);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(tz_suite());
	int failed;

	unsetenv("TZDIR");
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
