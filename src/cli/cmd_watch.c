/* SPDX-License-Identifier: Apache-2.0
 *
 * `p11gate audit watch LOG` (follows the log across rotations and prints
 * each alert as it is written) and `p11gate audit report LOG` (signatures
 * per key, caller and rule, refusals and alerts over a period, as a table
 * or JSON).  They read what records say; `audit verify` proves the chain.
 * Strings from the log are printed escaped: a record cannot drive the
 * terminal or fake a field.
 */
#include "commands.h"
#include "audit_json.h"
#include "audit_walk.h"
#include "p11gate/common.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How often watch looks for new lines and a rotation. */
#define WATCH_POLL_NS (200 * 1000000L)
/* A line longer than this is no record (the writer's lines are a few KiB). */
#define WATCH_LINE_MAX (1u << 20)

static bool
is_alert(const json_t *rec)
{
	const char *event = pg_json_get_string(rec, "event");

	return event != NULL && (strcmp(event, "alert") == 0 || strcmp(event, "tamper") == 0);
}

/* One alert as a line: TIME ALERT NAME field=value ...: reason */
static void
print_alert(const json_t *rec)
{
	static const char *const fields[] = { "rule", "key", "by", NULL };
	static const char *const numbers[] = { "ref", "count", "threshold", "window", "pid", NULL };
	const char *name = pg_json_get_string(rec, "alert"), *reason = pg_json_get_string(rec, "reason");
	const json_t *c = json_object_get(rec, "caller");
	char buf[1024];
	uint64_t v;

	printf("%s ALERT %s", pg_esc(pg_json_get_string(rec, "time"), PG_ESC_VALUE, buf, sizeof buf),
	       pg_esc(name != NULL ? name : "tamper", PG_ESC_VALUE, buf + 512, 512));
	for (size_t i = 0; fields[i] != NULL; i++) {
		const char *s = pg_json_get_string(rec, fields[i]);
		if (s != NULL)
			printf(" %s=%s", fields[i], pg_esc(s, PG_ESC_VALUE, buf, sizeof buf));
	}
	if (pg_json_get_string(c, "user") != NULL)
		printf(" user=%s", pg_esc(pg_json_get_string(c, "user"), PG_ESC_VALUE, buf, sizeof buf));
	if (pg_json_u64(json_object_get(c, "uid"), &v))
		printf(" uid=%" PRIu64, v);
	if (pg_json_get_string(c, "exe") != NULL)
		printf(" exe=%s", pg_esc(pg_json_get_string(c, "exe"), PG_ESC_VALUE, buf, sizeof buf));
	for (size_t i = 0; numbers[i] != NULL; i++) {
		if (pg_json_u64(json_object_get(rec, numbers[i]), &v))
			printf(" %s=%" PRIu64, numbers[i], v);
	}
	printf(": %s\n", pg_esc(reason != NULL ? reason : "", PG_ESC_TEXT, buf, sizeof buf));
}

/* ---- watch ---------------------------------------------------------------- */

struct follow {
	const char *path;
	FILE *f;
	dev_t dev;
	ino_t ino;
	off_t offset;        /* bytes of whole lines consumed */
	char *partial;       /* a line not yet ended */
	size_t partial_len, partial_cap;
};

static volatile sig_atomic_t stop_watching;

static void
on_signal(int sig)
{
	(void)sig;
	stop_watching = 1;
}

static int
follow_open(struct follow *fo, bool at_end)
{
	struct stat st;
	bool not_regular;
	int fd = pg_open_regular(fo->path, &not_regular);

	if (fd < 0)
		return not_regular ? EINVAL : errno;
	if (fstat(fd, &st) != 0 || (fo->f = fdopen(fd, "r")) == NULL) {
		int err = errno;
		close(fd);
		return err;
	}
	fo->dev = st.st_dev;
	fo->ino = st.st_ino;
	fo->offset = at_end ? st.st_size : 0;
	fo->partial_len = 0;
	if (at_end && fseeko(fo->f, st.st_size, SEEK_SET) != 0)
		return errno;
	return 0;
}

struct watch_opts {
	bool json;
	bool has_since;
	struct pg_instant since;
	uint64_t count;      /* stop after this many alerts (0: never) */
	uint64_t printed;
};

static void
watch_line(struct watch_opts *o, const char *line, size_t len)
{
	unsigned char prev[PG_SHA256_LEN];
	char why[160];
	uint64_t seq;
	json_t *rec = pg_audit_chain_record(line, len, &seq, prev, why, sizeof why);

	if (rec == NULL)
		return;
	if (is_alert(rec) && (!o->has_since || pg_audit_record_since(rec, &o->since))) {
		if (o->json) {
			/* The record's own bytes: a SIEM can check its hash. */
			fwrite(line, 1, len, stdout);
			fputc('\n', stdout);
		} else {
			print_alert(rec);
		}
		fflush(stdout);
		o->printed++;
	}
	json_decref(rec);
}

/* Reads what was appended since the last call; whole lines only. */
static int
watch_drain(struct follow *fo, struct watch_opts *o)
{
	char buf[65536];
	size_t n;

	clearerr(fo->f);
	while ((n = fread(buf, 1, sizeof buf, fo->f)) > 0) {
		for (size_t i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				watch_line(o, fo->partial, fo->partial_len);
				fo->offset += (off_t)fo->partial_len + 1;
				fo->partial_len = 0;
				if (o->count != 0 && o->printed >= o->count)
					return 0;
				continue;
			}
			if (fo->partial_len == fo->partial_cap) {
				size_t cap = fo->partial_cap ? 2 * fo->partial_cap : 4096;
				char *more;

				if (cap > WATCH_LINE_MAX) {
					/* Not a record: drop it up to its newline. */
					fo->offset += (off_t)fo->partial_len;
					fo->partial_len = 0;
					continue;
				}
				if ((more = realloc(fo->partial, cap)) == NULL)
					return ENOMEM;
				fo->partial = more;
				fo->partial_cap = cap;
			}
			fo->partial[fo->partial_len++] = buf[i];
		}
	}
	return ferror(fo->f) ? EIO : 0;
}

/* Whether the path now names another file (a rotation renamed ours away
 * and published a new one), or ours was cut shorter than we read. */
static bool
moved_or_cut(const struct follow *fo, bool *cut)
{
	struct stat now, ours;

	*cut = fstat(fileno(fo->f), &ours) == 0 && ours.st_size < fo->offset + (off_t)fo->partial_len;
	if (stat(fo->path, &now) != 0)
		return false;   /* between rename and publish: look again later */
	return now.st_dev != fo->dev || now.st_ino != fo->ino;
}

static void
watch_usage(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate audit watch [OPTION]... LOG\n"
	        "Follow the audit log LOG and print each alert as it is written (alert and\n"
	        "tamper records), one line each: time, ALERT, its name, rule, key, caller,\n"
	        "the record it is about (ref) and the reason.  It follows the log across\n"
	        "rotations ('p11gate audit rotate', audit.max_size): the rest of the closed\n"
	        "file is read, then the new file from its start.\n\n"
	        "  --json             print each alert record as it is in the log (JSON)\n"
	        "  --since T          first print the alerts already in LOG at or after T (a UTC\n"
	        "                     time, or a span back from now: 24h, 7d); default: only\n"
	        "                     alerts written from now on\n"
	        "  --count N          exit after N alerts\n"
	        "  -h, --help         show this help\n\n"
	        "Exit status: 0 when stopped (SIGINT, SIGTERM) or after --count alerts, 2 on a\n"
	        "usage error or a log that cannot be read.\n");
}

static int
cmd_watch(int argc, char **argv)
{
	enum { OPT_JSON = 256, OPT_SINCE, OPT_COUNT };
	static const struct option options[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct watch_opts o = { 0 };
	struct follow fo = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	char *end;
	int c, rc = 0, status = 2;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			o.json = true;
			break;
		case OPT_SINCE:
			if (!pg_audit_parse_since(optarg, time(NULL), &o.since)) {
				fprintf(stderr, "p11gate audit watch: --since wants a time "
				        "(2026-12-01T00:00:00Z) or a span (24h, 7d), not '%s'\n", optarg);
				return 2;
			}
			o.has_since = true;
			break;
		case OPT_COUNT:
			errno = 0;
			o.count = strtoull(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || o.count == 0 || optarg[0] == '-') {
				fprintf(stderr, "p11gate audit watch: --count wants a number from 1, not "
				        "'%s'\n", optarg);
				return 2;
			}
			break;
		case 'h':
			watch_usage(stdout);
			return 0;
		default:
			watch_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		watch_usage(stderr);
		return 2;
	}
	fo.path = argv[optind];
	if ((rc = follow_open(&fo, !o.has_since)) != 0) {
		fprintf(stderr, "p11gate audit watch: %s: cannot read: %s\n", fo.path,
		        rc == EINVAL ? "not a regular file" : strerror(rc));
		goto out;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!stop_watching && (o.count == 0 || o.printed < o.count)) {
		const struct timespec poll = { 0, WATCH_POLL_NS };
		bool cut;

		if ((rc = watch_drain(&fo, &o)) != 0)
			break;
		if (o.count != 0 && o.printed >= o.count)
			break;
		if (moved_or_cut(&fo, &cut)) {
			/* The closed file is complete (its rotate record is its
			 * last): read what is left, then the new file whole. */
			if ((rc = watch_drain(&fo, &o)) != 0)
				break;
			fclose(fo.f);
			fo.f = NULL;
			if ((rc = follow_open(&fo, false)) != 0)
				break;
			continue;
		}
		if (cut) {
			fprintf(stderr, "p11gate audit watch: %s is shorter than what was read: records "
			        "were cut off (run 'p11gate audit verify'); reading it again from the "
			        "start\n", fo.path);
			fflush(stderr);
			fclose(fo.f);
			fo.f = NULL;
			if ((rc = follow_open(&fo, false)) != 0)
				break;
			continue;
		}
		nanosleep(&poll, NULL);
	}
	if (rc != 0)
		fprintf(stderr, "p11gate audit watch: %s: %s\n", fo.path, strerror(rc));
	else
		status = 0;
out:
	if (fo.f != NULL)
		fclose(fo.f);
	free(fo.partial);
	return status;
}

/* ---- report --------------------------------------------------------------- */

/* A tally: name -> count, in first-seen order. */
struct tally {
	struct tally_row { char *name; uint64_t n; char *example; } *rows;
	size_t n, cap;
};

static bool
tally_add(struct tally *t, const char *name, const char *example)
{
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->rows[i].name, name) == 0) {
			t->rows[i].n++;
			return true;
		}
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		struct tally_row *more = realloc(t->rows, cap * sizeof *more);
		if (more == NULL)
			return false;
		t->rows = more;
		t->cap = cap;
	}
	t->rows[t->n] = (struct tally_row){ strdup(name), 1, example ? strdup(example) : NULL };
	if (t->rows[t->n].name == NULL)
		return false;
	t->n++;
	return true;
}

static int
tally_cmp(const void *a, const void *b)
{
	const struct tally_row *x = a, *y = b;

	return x->n != y->n ? (x->n < y->n ? 1 : -1) : strcmp(x->name, y->name);
}

static void
tally_free(struct tally *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->rows[i].name);
		free(t->rows[i].example);
	}
	free(t->rows);
}

enum { T_KEY, T_CALLER, T_RULE, T_DENY_KEY, T_DENY_CALLER, T_DENY_REASON, T_ALERT, T_COUNT };

struct report {
	bool has_since;
	struct pg_instant since;
	uint64_t records, signatures, other_uses, refusals, alerts;
	char first[40], last[40];
	struct tally t[T_COUNT];
	bool failed;
};

/* "-" for no rule (a refusal no rule decided) or no named key. */
static const char *
or_none(const char *s)
{
	return s != NULL ? s : "-";
}

static bool
report_one(void *ctx, json_t *rec, const char *file)
{
	struct report *r = ctx;
	const char *event = pg_json_get_string(rec, "event"), *decision = pg_json_get_string(rec, "decision");
	const char *time_text = pg_json_get_string(rec, "time");
	char who[600];
	bool ok = true;

	(void)file;
	if (event == NULL || (r->has_since && !pg_audit_record_since(rec, &r->since)))
		return true;
	r->records++;
	if (time_text != NULL) {
		if (r->first[0] == '\0')
			snprintf(r->first, sizeof r->first, "%s", time_text);
		snprintf(r->last, sizeof r->last, "%s", time_text);
	}
	if (is_alert(rec)) {
		const char *name = pg_json_get_string(rec, "alert");
		r->alerts++;
		ok = tally_add(&r->t[T_ALERT], name != NULL ? name : "tamper",
		               pg_json_get_string(rec, "reason"));
	} else if (strcmp(event, "decision") == 0 && decision != NULL) {
		const char *key = or_none(pg_json_get_string(rec, "key"));
		const char *op = pg_json_get_string(rec, "operation");

		pg_audit_caller_text(json_object_get(rec, "caller"), who, sizeof who);
		if (strcmp(decision, "allow") == 0 && op != NULL && strcmp(op, "sign") == 0) {
			r->signatures++;
			ok = tally_add(&r->t[T_KEY], key, NULL) && tally_add(&r->t[T_CALLER], who, NULL) &&
			     tally_add(&r->t[T_RULE], or_none(pg_json_get_string(rec, "rule")), NULL);
		} else if (strcmp(decision, "allow") == 0) {
			r->other_uses++;
		} else {
			r->refusals++;
			ok = tally_add(&r->t[T_DENY_KEY], key, NULL) && tally_add(&r->t[T_DENY_CALLER], who, NULL) &&
			     tally_add(&r->t[T_DENY_REASON], or_none(pg_json_get_string(rec, "rule")),
			               pg_json_get_string(rec, "reason"));
		}
	}
	if (!ok)
		r->failed = true;
	return ok;
}

static const struct {
	const char *title, *json, *column;
} sections[T_COUNT] = {
	[T_KEY] = { "signatures per key", "signatures_per_key", "key" },
	[T_CALLER] = { "signatures per caller", "signatures_per_caller", "caller" },
	[T_RULE] = { "signatures per rule", "signatures_per_rule", "rule" },
	[T_DENY_KEY] = { "refusals per key", "refusals_per_key", "key" },
	[T_DENY_CALLER] = { "refusals per caller", "refusals_per_caller", "caller" },
	[T_DENY_REASON] = { "refusals per deciding rule", "refusals_per_rule", "rule" },
	[T_ALERT] = { "alerts", "alerts", "alert" },
};

static void
report_text(const struct report *r, const char *log)
{
	char buf[1024];

	printf("report of %s", pg_esc(log, PG_ESC_VALUE, buf, sizeof buf));
	if (r->has_since) {
		time_t t = (time_t)r->since.sec;
		struct tm tm;
		char when[32];

		gmtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf(" since %s", when);
	}
	printf(": %" PRIu64 " records", r->records);
	if (r->records > 0)
		printf(" from %s to %s", r->first, r->last);
	printf("\n  signatures %" PRIu64 ", other allowed uses %" PRIu64 ", refusals %" PRIu64
	       ", alerts %" PRIu64 "\n", r->signatures, r->other_uses, r->refusals, r->alerts);
	for (int s = 0; s < T_COUNT; s++) {
		const struct tally *t = &r->t[s];

		if (t->n == 0)
			continue;
		printf("\n%s:\n  %8s  %s\n", sections[s].title, "count", sections[s].column);
		for (size_t i = 0; i < t->n; i++) {
			printf("  %8" PRIu64 "  %s", t->rows[i].n,
			       s == T_CALLER || s == T_DENY_CALLER ? t->rows[i].name :
			       pg_esc(t->rows[i].name, PG_ESC_VALUE, buf, sizeof buf));
			if (t->rows[i].example != NULL)
				printf("  e.g. %s", pg_esc(t->rows[i].example, PG_ESC_TEXT, buf, sizeof buf));
			printf("\n");
		}
	}
}

static int
report_json(const struct report *r, const char *log)
{
	json_t *out = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "log", log,
	                        "records", (json_int_t)r->records, "signatures", (json_int_t)r->signatures,
	                        "other_uses", (json_int_t)r->other_uses, "refusals", (json_int_t)r->refusals,
	                        "alerts_total", (json_int_t)r->alerts);
	int rc = 0;

	if (out == NULL)
		return ENOMEM;
	if (r->records > 0 && (json_object_set_new(out, "first", json_string(r->first)) != 0 ||
	                       json_object_set_new(out, "last", json_string(r->last)) != 0))
		rc = ENOMEM;
	if (r->has_since)
		json_object_set_new(out, "since", json_integer((json_int_t)r->since.sec));
	for (int s = 0; rc == 0 && s < T_COUNT; s++) {
		json_t *list = json_array();

		for (size_t i = 0; list != NULL && i < r->t[s].n; i++) {
			json_t *row = json_pack("{s:s,s:I}", sections[s].column, r->t[s].rows[i].name,
			                        "count", (json_int_t)r->t[s].rows[i].n);
			if (row != NULL && r->t[s].rows[i].example != NULL)
				json_object_set_new(row, "example", json_string(r->t[s].rows[i].example));
			json_array_append_new(list, row);
		}
		if (list == NULL || json_object_set_new(out, sections[s].json, list) != 0)
			rc = ENOMEM;
	}
	if (rc != 0) {
		json_decref(out);
		return rc;
	}
	return pg_audit_json_print(out);
}

static void
report_usage(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate audit report [OPTION]... LOG\n"
	        "Summarise the audit log LOG (a file, or a directory of rotated files): the\n"
	        "signatures allowed per key, per caller and per rule, the refusals per key,\n"
	        "caller and deciding rule, and the alerts by name, most frequent first.  It\n"
	        "reads what the records say: 'p11gate audit verify' proves they are intact.\n\n"
	        "  --since T          only records at or after T: a UTC time (2026-12-01,\n"
	        "                     2026-12-01T08:00:00Z) or a span back from now (24h, 7d)\n"
	        "  --json             one JSON object instead of tables\n"
	        "  -h, --help         show this help\n\n"
	        "Exit status: 0 on success, 1 if the log cannot be read, 2 on a usage error.\n");
}

static int
cmd_report(int argc, char **argv)
{
	enum { OPT_JSON = 256, OPT_SINCE };
	static const struct option options[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct report *r = calloc(1, sizeof *r);
	struct pg_audit_walk_stats stats;
	char err[PATH_MAX + 128];
	bool json = false;
	int c, status = 2;

	if (r == NULL)
		return 2;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			json = true;
			break;
		case OPT_SINCE:
			if (!pg_audit_parse_since(optarg, time(NULL), &r->since)) {
				fprintf(stderr, "p11gate audit report: --since wants a time "
				        "(2026-12-01T00:00:00Z) or a span (24h, 7d), not '%s'\n", optarg);
				goto out;
			}
			r->has_since = true;
			break;
		case 'h':
			report_usage(stdout);
			status = 0;
			goto out;
		default:
			report_usage(stderr);
			goto out;
		}
	}
	if (argc - optind != 1) {
		report_usage(stderr);
		goto out;
	}
	status = 1;
	if (pg_audit_walk(argv[optind], report_one, r, &stats, err, sizeof err) != 0 || r->failed) {
		fprintf(stderr, "p11gate audit report: %s\n", r->failed ? strerror(ENOMEM) : err);
		goto out;
	}
	if (stats.bad_lines > 0)
		fprintf(stderr, "p11gate audit report: %zu line(s) are not records and were skipped; "
		        "run 'p11gate audit verify'\n", stats.bad_lines);
	for (int s = 0; s < T_COUNT; s++) {
		if (r->t[s].n > 1)
			qsort(r->t[s].rows, r->t[s].n, sizeof r->t[s].rows[0], tally_cmp);
	}
	if (json) {
		if (report_json(r, argv[optind]) != 0)
			goto out;
	} else {
		report_text(r, argv[optind]);
	}
	status = 0;
out:
	for (int s = 0; s < T_COUNT; s++)
		tally_free(&r->t[s]);
	free(r);
	return status;
}

int
pg_cmd_audit_watch(int argc, char **argv)
{
	return strcmp(argv[0], "watch") == 0 ? cmd_watch(argc, argv) : cmd_report(argc, argv);
}
