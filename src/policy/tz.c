/* SPDX-License-Identifier: Apache-2.0
 *
 * The time zone reader: loads an IANA zone from its TZif file (RFC 8536),
 * including the POSIX TZ rule in the footer, and converts instants to local
 * time in that zone without TZ, tzset() or any process-wide state.
 */
#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG_TZ_DEFAULT_DIR "/usr/share/zoneinfo"
/* Real zone files are a few KiB; anything much larger is not one, and
 * capping the size bounds what a hostile file can make us allocate. */
#define PG_TZ_MAX_FILE (1024 * 1024)
#define PG_TZ_HEADER_LEN 44
#define PG_TZ_ABBR_MAX 32
#define PG_TZ_FOOTER_MAX 256
/* RFC 8536 section 3.2: utoff SHOULD be in [-89999, 93599]; refusing
 * anything else also keeps the local-time arithmetic far from overflow. */
#define PG_TZ_UTOFF_MIN (-89999)
#define PG_TZ_UTOFF_MAX 93599
#define PG_SECS_PER_DAY INT64_C(86400)

struct pg_tz_type {
	int32_t utoff;          /* seconds east of UTC */
	bool isdst;
	const char *abbr;       /* points into pg_tz.abbrs */
};

enum pg_tz_date_kind {
	PG_TZ_DATE_JULIAN1,     /* Jn: 1..365, February 29 never counted */
	PG_TZ_DATE_JULIAN0,     /* n: 0..365, February 29 counted */
	PG_TZ_DATE_MONTH,       /* Mm.w.d */
};

struct pg_tz_date {
	enum pg_tz_date_kind kind;
	int day;                /* Jn / n: the day; Mm.w.d: d (0 = Sunday) */
	int week;               /* Mm.w.d: 1..5, 5 = last */
	int month;              /* Mm.w.d: 1..12 */
	int32_t time;           /* local time of the change, -167h..167h */
};

/* The footer's POSIX TZ string, e.g. "CET-1CEST,M3.5.0,M10.5.0/3". */
struct pg_tz_rule {
	char std_abbr[PG_TZ_ABBR_MAX];
	int32_t std_utoff;
	bool has_dst;
	char dst_abbr[PG_TZ_ABBR_MAX];
	int32_t dst_utoff;
	struct pg_tz_date start, end;
};

struct pg_tz {
	char *name;
	size_t n_trans;
	int64_t *trans;         /* ascending transition instants */
	unsigned char *trans_type;
	size_t n_types;
	struct pg_tz_type *types;
	char *abbrs;            /* NUL-terminated designations */
	bool has_rule;          /* rule applies after the last transition */
	struct pg_tz_rule rule;
};

/* A bounds-checked cursor over the file's bytes: every read of the file
 * goes through it, so a short or lying file cannot make us read past it. */
struct pg_tz_reader {
	const unsigned char *data;
	size_t len;
	size_t pos;
};

struct pg_tz_header {
	char version;           /* '\0' for version 1, else '2', '3', ... */
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

__attribute__((format(printf, 3, 4)))
static void
set_err(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

/* ---- calendar arithmetic (proleptic Gregorian, 64-bit days) ---- */

/* Days since 1970-01-01 of y-m-d; H. Hinnant's days_from_civil, which is
 * exact for every year we can reach from a 64-bit time_t. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static bool
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int64_t y, int m)
{
	static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int
weekday(int64_t days)
{
	return (int)(((days + 4) % 7 + 7) % 7);
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- the POSIX TZ rule (footer) ---- */

/* Days since the epoch of the day a rule date names in year y. */
static int64_t
rule_day(int64_t y, const struct pg_tz_date *date)
{
	int64_t jan1 = days_from_civil(y, 1, 1), first;
	int day;

	switch (date->kind) {
	case PG_TZ_DATE_JULIAN1:
		/* Jn never counts February 29: day 60 is always March 1. */
		return jan1 + date->day - 1 + (is_leap(y) && date->day >= 60);
	case PG_TZ_DATE_JULIAN0:
		return jan1 + date->day;
	case PG_TZ_DATE_MONTH:
	default:
		first = days_from_civil(y, date->month, 1);
		day = (date->day - weekday(first) + 7) % 7 + (date->week - 1) * 7;
		while (day >= days_in_month(y, date->month))
			day -= 7;
		return first + day;
	}
}

/* Standard or daylight time at t under the rule.  Changes are computed for
 * the years around t and the latest one at or before t wins; that handles
 * southern-hemisphere rules and RFC 8536's times beyond 24h (DST all year:
 * an end that coincides with the next start leaves DST in force). */
static bool
rule_is_dst(const struct pg_tz_rule *rule, int64_t t, int64_t utc_year)
{
	int64_t best = INT64_MIN;
	bool dst = false, found = false;

	if (!rule->has_dst)
		return false;
	for (int64_t y = utc_year - 1; y <= utc_year + 1; y++) {
		/* A change happens at a local wall-clock time in the offset in
		 * force just before it. */
		int64_t start = rule_day(y, &rule->start) * PG_SECS_PER_DAY +
				rule->start.time - rule->std_utoff;
		int64_t end = rule_day(y, &rule->end) * PG_SECS_PER_DAY +
			      rule->end.time - rule->dst_utoff;

		if (end <= t && (!found || end > best)) {
			best = end;
			dst = false;
			found = true;
		}
		if (start <= t && (!found || start >= best)) {
			best = start;
			dst = true;
			found = true;
		}
	}
	return dst;
}

static bool
parse_num(const char **s, int max_digits, int max, int *out)
{
	const char *p = *s;
	int v = 0, n = 0;

	while (*p >= '0' && *p <= '9' && n < max_digits) {
		v = v * 10 + (*p - '0');
		p++;
		n++;
	}
	if (n == 0 || (*p >= '0' && *p <= '9') || v > max)
		return false;
	*s = p;
	*out = v;
	return true;
}

/* [+|-]hh[:mm[:ss]], hours up to max_hours. */
static bool
parse_hms(const char **s, int max_hours, int32_t *out)
{
	const char *p = *s;
	int sign = 1, h, m = 0, sec = 0;

	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	if (!parse_num(&p, 3, max_hours, &h))
		return false;
	if (*p == ':') {
		p++;
		if (!parse_num(&p, 2, 59, &m))
			return false;
		if (*p == ':') {
			p++;
			if (!parse_num(&p, 2, 59, &sec))
				return false;
		}
	}
	*s = p;
	*out = sign * (h * 3600 + m * 60 + sec);
	return true;
}

/* A zone abbreviation: three or more letters, or <...> with letters, digits,
 * '+' and '-' (e.g. "<+0530>"). */
static bool
parse_abbr(const char **s, char *out)
{
	const char *p = *s, *begin, *end;
	size_t len;

	if (*p == '<') {
		begin = ++p;
		while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		       (*p >= '0' && *p <= '9') || *p == '+' || *p == '-')
			p++;
		if (*p != '>')
			return false;
		end = p++;
	} else {
		begin = p;
		while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
			p++;
		end = p;
	}
	len = (size_t)(end - begin);
	if (len < 3 || len >= PG_TZ_ABBR_MAX)
		return false;
	memcpy(out, begin, len);
	out[len] = '\0';
	*s = p;
	return true;
}

static bool
parse_date(const char **s, struct pg_tz_date *date)
{
	const char *p = *s;

	if (*p == 'J') {
		p++;
		date->kind = PG_TZ_DATE_JULIAN1;
		if (!parse_num(&p, 3, 365, &date->day) || date->day < 1)
			return false;
	} else if (*p == 'M') {
		p++;
		date->kind = PG_TZ_DATE_MONTH;
		if (!parse_num(&p, 2, 12, &date->month) || date->month < 1 || *p++ != '.' ||
		    !parse_num(&p, 1, 5, &date->week) || date->week < 1 || *p++ != '.' ||
		    !parse_num(&p, 1, 6, &date->day))
			return false;
	} else {
		date->kind = PG_TZ_DATE_JULIAN0;
		if (!parse_num(&p, 3, 365, &date->day))
			return false;
	}
	date->time = 2 * 3600;  /* POSIX default: 02:00:00 */
	if (*p == '/') {
		p++;
		/* RFC 8536 section 3.3.1: -167..167 hours. */
		if (!parse_hms(&p, 167, &date->time))
			return false;
	}
	*s = p;
	return true;
}

/* std offset [dst [offset] ,start[/time],end[/time]].  POSIX leaves DST
 * without a rule implementation-defined; a TZif footer always has one, so
 * its absence is refused rather than guessed. */
static bool
parse_rule(const char *s, struct pg_tz_rule *rule)
{
	int32_t off;

	memset(rule, 0, sizeof *rule);
	if (!parse_abbr(&s, rule->std_abbr) || !parse_hms(&s, 24, &off))
		return false;
	rule->std_utoff = -off;  /* POSIX offsets are west of UTC */
	if (*s == '\0')
		return true;
	if (!parse_abbr(&s, rule->dst_abbr))
		return false;
	rule->has_dst = true;
	rule->dst_utoff = rule->std_utoff + 3600;
	if (*s != ',' && *s != '\0') {
		if (!parse_hms(&s, 24, &off))
			return false;
		rule->dst_utoff = -off;
	}
	if (*s++ != ',' || !parse_date(&s, &rule->start) || *s++ != ',' ||
	    !parse_date(&s, &rule->end) || *s != '\0')
		return false;
	return true;
}

/* ---- TZif parsing ---- */

static const unsigned char *
rd_bytes(struct pg_tz_reader *r, size_t n)
{
	const unsigned char *p;

	if (n > r->len - r->pos)
		return NULL;
	p = r->data + r->pos;
	r->pos += n;
	return p;
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* NULL on success, else why the header is bad. */
static const char *
parse_header(struct pg_tz_reader *r, struct pg_tz_header *h)
{
	const unsigned char *p = rd_bytes(r, PG_TZ_HEADER_LEN);

	if (p == NULL)
		return "truncated header";
	if (memcmp(p, "TZif", 4) != 0)
		return "bad magic";
	h->version = (char)p[4];
	h->isutcnt = be32(p + 20);
	h->isstdcnt = be32(p + 24);
	h->leapcnt = be32(p + 28);
	h->timecnt = be32(p + 32);
	h->typecnt = be32(p + 36);
	h->charcnt = be32(p + 40);
	return NULL;
}

/* Bytes of the data block that follows a header; 64-bit sums of 32-bit
 * counts cannot overflow. */
static uint64_t
block_len(const struct pg_tz_header *h, unsigned time_size)
{
	return (uint64_t)h->timecnt * time_size + h->timecnt + (uint64_t)h->typecnt * 6 +
	       h->charcnt + (uint64_t)h->leapcnt * (time_size + 4) + h->isstdcnt + h->isutcnt;
}

/* Reads one data block into tz; NULL on success, else why it is bad. */
static const char *
parse_block(struct pg_tz_reader *r, const struct pg_tz_header *h, unsigned time_size,
	    pg_tz *tz)
{
	const unsigned char *times, *idx, *types, *chars;

	if (h->typecnt == 0 || h->charcnt == 0)
		return "no local time types";
	if (h->isutcnt != 0 && h->isutcnt != h->typecnt)
		return "bad UT indicator count";
	if (h->isstdcnt != 0 && h->isstdcnt != h->typecnt)
		return "bad standard/wall indicator count";
	if (block_len(h, time_size) > r->len - r->pos)
		return "truncated data block";
	times = rd_bytes(r, (size_t)h->timecnt * time_size);
	idx = rd_bytes(r, h->timecnt);
	types = rd_bytes(r, (size_t)h->typecnt * 6);
	chars = rd_bytes(r, h->charcnt);
	/* Leap second records and the UT/standard indicators are not needed:
	 * the former are refused by the caller, the latter only matter for
	 * POSIX-rule defaults that TZif footers make unnecessary. */
	rd_bytes(r, (size_t)h->leapcnt * (time_size + 4) + h->isstdcnt + h->isutcnt);

	tz->n_trans = h->timecnt;
	tz->n_types = h->typecnt;
	tz->trans = calloc(h->timecnt ? h->timecnt : 1, sizeof *tz->trans);
	tz->trans_type = calloc(h->timecnt ? h->timecnt : 1, 1);
	tz->types = calloc(h->typecnt, sizeof *tz->types);
	tz->abbrs = malloc(h->charcnt);
	if (tz->trans == NULL || tz->trans_type == NULL || tz->types == NULL || tz->abbrs == NULL)
		return "out of memory";

	memcpy(tz->abbrs, chars, h->charcnt);
	if (tz->abbrs[h->charcnt - 1] != '\0')
		return "unterminated time zone abbreviation";
	for (size_t i = 0; i < h->typecnt; i++) {
		const unsigned char *t = types + 6 * i;
		int32_t utoff = (int32_t)be32(t);

		if (utoff < PG_TZ_UTOFF_MIN || utoff > PG_TZ_UTOFF_MAX)
			return "UT offset out of range";
		if (t[4] > 1)
			return "bad DST flag";
		if (t[5] >= h->charcnt)
			return "abbreviation index out of range";
		tz->types[i].utoff = utoff;
		tz->types[i].isdst = t[4] == 1;
		tz->types[i].abbr = tz->abbrs + t[5];
	}
	for (size_t i = 0; i < h->timecnt; i++) {
		tz->trans[i] = time_size == 8 ? (int64_t)be64(times + 8 * i)
					      : (int32_t)be32(times + 4 * i);
		if (i > 0 && tz->trans[i] <= tz->trans[i - 1])
			return "transition times not ascending";
		if (idx[i] >= h->typecnt)
			return "transition type index out of range";
		tz->trans_type[i] = idx[i];
	}
	return NULL;
}

/* The footer of a version 2+ file: "\n" TZ-string "\n". */
static const char *
parse_footer(struct pg_tz_reader *r, pg_tz *tz)
{
	char text[PG_TZ_FOOTER_MAX];
	const unsigned char *p = rd_bytes(r, 1);
	size_t len = 0;

	if (p == NULL || *p != '\n')
		return "missing footer";
	for (;;) {
		p = rd_bytes(r, 1);
		if (p == NULL)
			return "unterminated footer";
		if (*p == '\n')
			break;
		if (*p < 0x20 || *p > 0x7e || len + 1 >= sizeof text)
			return "bad footer";
		text[len++] = (char)*p;
	}
	text[len] = '\0';
	if (len == 0)
		return NULL;    /* no rule: the last transition's type stays */
	if (!parse_rule(text, &tz->rule))
		return "bad POSIX TZ string in footer";
	tz->has_rule = true;
	return NULL;
}

static const char *
parse_tzif(const unsigned char *data, size_t len, pg_tz *tz)
{
	struct pg_tz_reader r = { .data = data, .len = len, .pos = 0 };
	struct pg_tz_header h;
	const char *why;

	why = parse_header(&r, &h);
	if (why != NULL)
		return why;
	if (h.version != '\0') {
		/* Version 2+: skip the 32-bit block, use the 64-bit one. */
		if (block_len(&h, 4) > r.len - r.pos)
			return "truncated version 1 data block";
		r.pos += (size_t)block_len(&h, 4);
		why = parse_header(&r, &h);
		if (why != NULL)
			return why;
	}
	if (h.leapcnt != 0)
		return "leap seconds";
	why = parse_block(&r, &h, h.version != '\0' ? 8 : 4, tz);
	if (why == NULL && h.version != '\0')
		why = parse_footer(&r, tz);
	return why;
}

/* ---- loading ---- */

/* IANA names: components of [A-Za-z0-9_+-] separated by single '/', so no
 * absolute path, no "..", nothing that leaves the zone directory. */
static bool
name_is_safe(const char *name)
{
	size_t component = 0;

	if (name == NULL || *name == '\0' || *name == '/')
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		if (*p == '/') {
			if (component == 0)
				return false;
			component = 0;
			continue;
		}
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '+' || *p == '-'))
			return false;
		component++;
	}
	return component != 0;
}

/* Reads the whole regular file at path.  Returns 0 or an errno value:
 * EINVAL when it is not a regular file, EFBIG when it is too large. */
static int
read_file(const char *path, unsigned char **out, size_t *out_len)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int fd, ret = 0;

	/* O_NONBLOCK: a FIFO planted under the name must not hang us; the
	 * fstat below refuses it anyway. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errno;
	if (fstat(fd, &st) != 0) {
		ret = errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = EINVAL;
		goto out;
	}
	buf = malloc(PG_TZ_MAX_FILE + 1);
	if (buf == NULL) {
		ret = ENOMEM;
		goto out;
	}
	while (len <= PG_TZ_MAX_FILE) {
		ssize_t n = read(fd, buf + len, PG_TZ_MAX_FILE + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > PG_TZ_MAX_FILE) {
		ret = EFBIG;
		goto out;
	}
	*out = buf;
	*out_len = len;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return ret;
}

/* UTC needs no file: the policy's default zone must work even where tzdata
 * is not installed (slim container images). */
static bool
make_utc(pg_tz *tz)
{
	tz->n_types = 1;
	tz->types = calloc(1, sizeof *tz->types);
	tz->abbrs = strdup("UTC");
	if (tz->types == NULL || tz->abbrs == NULL)
		return false;
	tz->types[0].utoff = 0;
	tz->types[0].isdst = false;
	tz->types[0].abbr = tz->abbrs;
	return true;
}

/* The name for a message: kept on one line whatever it holds (control
 * characters as \xNN) and cut short if long. */
static void
quote_name(const char *name, char *out, size_t out_len)
{
	size_t len = 0;

	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
		if (len + 8 >= out_len || p - (const unsigned char *)name >= 64) {
			snprintf(out + len, out_len - len, "...");
			return;
		}
		if (*p >= 0x20 && *p < 0x7f)
			out[len++] = (char)*p;
		else
			len += (size_t)snprintf(out + len, out_len - len, "\\x%02x", *p);
	}
	out[len] = '\0';
}

pg_tz *
pg_tz_new(const char *name, char *err, size_t err_len)
{
	unsigned char *data = NULL;
	char path[PATH_MAX];
	const char *dir, *why;
	size_t len = 0;
	pg_tz *tz = NULL, *ret = NULL;
	int rc;

	if (!name_is_safe(name)) {
		char quoted[96];

		quote_name(name != NULL ? name : "", quoted, sizeof quoted);
		/* No hint here: the policy loader adds its own. */
		set_err(err, err_len, "'%s' is not a time zone name", quoted);
		goto out;
	}
	tz = calloc(1, sizeof *tz);
	if (tz == NULL || (tz->name = strdup(name)) == NULL) {
		set_err(err, err_len, "out of memory loading time zone '%s'", name);
		goto out;
	}
	if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
		if (!make_utc(tz)) {
			set_err(err, err_len, "out of memory loading time zone '%s'", name);
			goto out;
		}
		ret = tz;
		tz = NULL;
		goto out;
	}

	/* secure_getenv: in a set-id program the caller must not be able to
	 * point the policy at a zone file of its own making. */
	dir = secure_getenv("TZDIR");
	if (dir == NULL || *dir == '\0')
		dir = PG_TZ_DEFAULT_DIR;
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
		set_err(err, err_len, "time zone '%s': path %s/%s is too long", name, dir, name);
		goto out;
	}
	rc = read_file(path, &data, &len);
	if (rc == ENOENT || rc == ENOTDIR) {
		set_err(err, err_len, "unknown time zone '%s' (no file %s)", name, path);
		goto out;
	}
	if (rc == EINVAL || rc == EISDIR) {
		set_err(err, err_len, "'%s' is not a time zone (%s is not a regular file)", name, path);
		goto out;
	}
	if (rc == EFBIG) {
		set_err(err, err_len, "'%s' is not a time zone (%s is too large for a TZif file)",
			name, path);
		goto out;
	}
	if (rc != 0) {
		char buf[128];

		set_err(err, err_len, "cannot read time zone file %s: %s", path,
			strerror_r(rc, buf, sizeof buf));
		goto out;
	}
	if (len < 4 || memcmp(data, "TZif", 4) != 0) {
		set_err(err, err_len, "'%s' is not a time zone (%s is not a TZif file)", name, path);
		goto out;
	}
	why = parse_tzif(data, len, tz);
	if (why != NULL && strcmp(why, "leap seconds") == 0) {
		set_err(err, err_len, "time zone '%s' counts leap seconds, which p11gate does not "
			"support (use the zone without the right/ prefix)", name);
		goto out;
	}
	if (why != NULL) {
		set_err(err, err_len, "time zone file %s is damaged (%s); reinstall tzdata", path, why);
		goto out;
	}
	ret = tz;
	tz = NULL;
out:
	free(data);
	pg_tz_free(tz);
	return ret;
}

void
pg_tz_free(pg_tz *tz)
{
	if (tz == NULL)
		return;
	free(tz->name);
	free(tz->trans);
	free(tz->trans_type);
	free(tz->types);
	free(tz->abbrs);
	free(tz);
}

const char *
pg_tz_name(const pg_tz *tz)
{
	return tz != NULL ? tz->name : NULL;
}

/* ---- conversion ---- */

/* The transition-table answer for t, or the footer rule's after the last
 * transition (or always, if the file has no transitions: RFC 8536 3.3). */
static void
lookup(const pg_tz *tz, int64_t t, int64_t utc_year, int32_t *utoff, bool *isdst,
       const char **abbr)
{
	const struct pg_tz_type *type = &tz->types[0];
	size_t lo, hi;

	if (tz->has_rule && (tz->n_trans == 0 || t >= tz->trans[tz->n_trans - 1])) {
		*isdst = rule_is_dst(&tz->rule, t, utc_year);
		*utoff = *isdst ? tz->rule.dst_utoff : tz->rule.std_utoff;
		*abbr = *isdst ? tz->rule.dst_abbr : tz->rule.std_abbr;
		return;
	}
	/* Before the first transition, type 0 applies (RFC 8536 3.2). */
	if (tz->n_trans > 0 && t >= tz->trans[0]) {
		/* Largest i with trans[i] <= t. */
		lo = 0;
		hi = tz->n_trans;
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;

			if (tz->trans[mid] <= t)
				lo = mid;
			else
				hi = mid;
		}
		type = &tz->types[tz->trans_type[lo]];
	}
	*utoff = type->utoff;
	*isdst = type->isdst;
	*abbr = type->abbr;
}

bool
pg_tz_localtime(const pg_tz *tz, time_t t, struct tm *out)
{
	int64_t days, secs, year, local;
	int32_t utoff;
	const char *abbr;
	bool isdst;
	int month, mday;

	memset(out, 0, sizeof *out);
	if (tz == NULL)
		return false;
	civil_from_days(floor_div((int64_t)t, PG_SECS_PER_DAY), &year, &month, &mday);
	/* Keeps the rule's year arithmetic (and tm_year) far from overflow. */
	if (year < (int64_t)INT_MIN + 1900 + 2 || year > (int64_t)INT_MAX + 1900 - 2)
		return false;
	lookup(tz, (int64_t)t, year, &utoff, &isdst, &abbr);
	if (__builtin_add_overflow((int64_t)t, (int64_t)utoff, &local))
		return false;
	days = floor_div(local, PG_SECS_PER_DAY);
	secs = local - days * PG_SECS_PER_DAY;
	civil_from_days(days, &year, &month, &mday);
	if (year - 1900 < INT_MIN || year - 1900 > INT_MAX)
		return false;
	out->tm_year = (int)(year - 1900);
	out->tm_mon = month - 1;
	out->tm_mday = mday;
	out->tm_hour = (int)(secs / 3600);
	out->tm_min = (int)(secs / 60 % 60);
	out->tm_sec = (int)(secs % 60);
	out->tm_wday = weekday(days);
	out->tm_yday = (int)(days - days_from_civil(year, 1, 1));
	out->tm_isdst = isdst;
	out->tm_gmtoff = utoff;
	out->tm_zone = abbr;
	return true;
}
