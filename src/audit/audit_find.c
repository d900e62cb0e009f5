/* SPDX-License-Identifier: Apache-2.0
 *
 * Searching the audit log.  Two passes: the first checks the chain and
 * collects the seqs to show (matches, plus the decision or result each one
 * pairs with through "ref"); the second prints them in file order.  Strings
 * come from the log, which is input: they are printed escaped (pg_escape)
 * so a record cannot drive the auditor's terminal or fake a field.
 */
#include "audit_find.h"
#include "audit_chain.h"
#include "audit_json.h"
#include "audit_verify.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool
digits(const char **s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*s)[i] < '0' || (*s)[i] > '9')
			return false;
		v = v * 10 + ((*s)[i] - '0');
	}
	*s += n;
	*out = v;
	return true;
}

bool
pg_audit_parse_time(const char *text, struct pg_instant *out)
{
	int year, mon, day, hour = 0, min = 0, sec = 0;
	const char *s = text;
	struct tm tm = { 0 }, check;
	long usec = 0, scale = 100000;
	time_t t;

	if (!digits(&s, 4, &year) || *s++ != '-' || !digits(&s, 2, &mon) || *s++ != '-' ||
	    !digits(&s, 2, &day))
		return false;
	if (*s == 'T' || *s == ' ') {
		s++;
		if (!digits(&s, 2, &hour) || *s++ != ':' || !digits(&s, 2, &min))
			return false;
		if (*s == ':') {
			s++;
			if (!digits(&s, 2, &sec))
				return false;
			if (*s == '.') {
				s++;
				if (*s < '0' || *s > '9')
					return false;
				for (; *s >= '0' && *s <= '9'; s++) {
					usec += (*s - '0') * scale;
					scale /= 10;
				}
			}
		}
	}
	if (*s == 'Z')
		s++;
	if (*s != '\0' || mon < 1 || mon > 12 || day < 1 || hour > 23 || min > 59 || sec > 59)
		return false;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* timegm normalises 2026-02-30 into March: refuse dates that do not
	 * exist rather than search the wrong day. */
	if (gmtime_r(&t, &check) == NULL || check.tm_mday != day || check.tm_mon != mon - 1)
		return false;
	out->sec = (int64_t)t;
	out->usec = usec;
	return true;
}

static int
instant_cmp(const struct pg_instant *a, const struct pg_instant *b)
{
	if (a->sec != b->sec)
		return a->sec < b->sec ? -1 : 1;
	return a->usec < b->usec ? -1 : a->usec > b->usec;
}

static bool
string_is(const json_t *rec, const char *key, const char *want)
{
	const char *v = pg_json_get_string(rec, key);

	return v != NULL && strcmp(v, want) == 0;
}

/* --key NAME: the key the record names, its URI, or any key the object
 * matched (a record names one key; the object may carry several names). */
static bool
key_is(const json_t *rec, const char *want)
{
	const json_t *list = json_object_get(rec, "keys_matched");
	const json_t *item;
	size_t i;

	if (string_is(rec, "key", want) || string_is(rec, "key_uri", want))
		return true;
	json_array_foreach(list, i, item) {
		const char *v = pg_json_string(item);

		if (v != NULL && strcmp(v, want) == 0)
			return true;
	}
	return false;
}

/* --claim NAME=GLOB: the record's identity has a claim NAME (or, for the
 * identity's own fields, issuer, credential, sub, jti...) matching GLOB;
 * a claim that is not a string is compared as its compact JSON text. */
static bool
claim_is(const json_t *rec, const char *spec)
{
	const json_t *identity = json_object_get(rec, "identity");
	const char *eq = strchr(spec, '=');
	const json_t *v;
	char name[256], *text = NULL;
	bool ok = false;

	if (!json_is_object(identity) || eq == NULL || (size_t)(eq - spec) >= sizeof name)
		return false;
	memcpy(name, spec, (size_t)(eq - spec));
	name[eq - spec] = '\0';
	v = json_object_get(json_object_get(identity, "claims"), name);
	if (v == NULL)
		v = json_object_get(identity, name);
	if (json_is_string(v))
		return fnmatch(eq + 1, json_string_value(v), 0) == 0;
	if (v == NULL || json_is_object(v))
		return false;
	text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	ok = text != NULL && strcmp(text, eq + 1) == 0;
	free(text);
	return ok;
}

static bool
matches(const json_t *rec, const struct pg_audit_find_query *q)
{
	struct pg_instant when;
	const char *time;

	if (q->data_sha256 != NULL && !string_is(rec, "data_sha256", q->data_sha256))
		return false;
	if (q->signature_sha256 != NULL && !string_is(rec, "signature_sha256", q->signature_sha256))
		return false;
	if (q->key != NULL && !key_is(rec, q->key))
		return false;
	for (size_t i = 0; i < q->n_claims; i++) {
		if (!claim_is(rec, q->claims[i]))
			return false;
	}
	if (q->decision != NULL &&
	    (!string_is(rec, "event", "decision") || !string_is(rec, "decision", q->decision)))
		return false;
	if (q->break_glass && !json_is_object(json_object_get(rec, "break_glass")))
		return false;
	if (q->has_since || q->has_until) {
		time = pg_json_get_string(rec, "time");
		if (time == NULL || !pg_audit_parse_time(time, &when))
			return false;
		if (q->has_since && instant_cmp(&when, &q->since) < 0)
			return false;
		if (q->has_until && instant_cmp(&when, &q->until) >= 0)
			return false;
	}
	return true;
}

struct seq_set {
	uint64_t *v;
	size_t n, cap;
	bool sorted;
};

static bool
set_add(struct seq_set *s, uint64_t seq)
{
	uint64_t *v;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		v = realloc(s->v, s->cap * sizeof *v);
		if (v == NULL)
			return false;
		s->v = v;
	}
	if (s->n > 0 && s->v[s->n - 1] >= seq)
		s->sorted = false;
	s->v[s->n++] = seq;
	return true;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool
set_has(const struct seq_set *s, uint64_t seq)
{
	if (s->n == 0)
		return false;      /* bsearch's array must not be NULL, even when empty */
	if (s->sorted)
		return bsearch(&seq, s->v, s->n, sizeof *s->v, cmp_u64) != NULL;
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i] == seq)
			return true;
	}
	return false;
}

/* Prints a string from the log, which is input: escaped so a record can
 * neither drive the auditor's terminal nor show a field it does not have
 * (pg_escape: controls, bidi overrides, blanks other than the space). */
static void
print_value(FILE *out, const char *v, bool quote)
{
	pg_escape_fputs(out, v, strlen(v), quote ? PG_ESC_QUOTED : PG_ESC_VALUE);
}

static void
print_field(FILE *out, const json_t *obj, const char *key, const char *label, bool quote)
{
	const json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return;
	fprintf(out, " %s=", label);
	if (json_is_string(v))      /* with its length: it may hold \u0000 */
		pg_escape_fputs(out, json_string_value(v), json_string_length(v),
		                quote ? PG_ESC_QUOTED : PG_ESC_VALUE);
	else if (json_is_integer(v))
		fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		fprintf(out, "%.17g", json_real_value(v));
	else
		fputs("?", out);
}

/* A list of names, shown only when it says more than "key" does. */
static void
print_list(FILE *out, const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);
	const json_t *item;
	size_t i;

	if (json_array_size(v) < 2)
		return;
	fprintf(out, " %s=", key);
	json_array_foreach(v, i, item) {
		if (i > 0)
			fputc(',', out);
		print_value(out, pg_json_string(item) ? pg_json_string(item) : "?", false);
	}
}

static void
print_readable(FILE *out, const json_t *rec)
{
	const json_t *caller = json_object_get(rec, "caller");
	const char *event = pg_json_get_string(rec, "event");
	const char *what = event != NULL ? event : "?";

	if (event != NULL && strcmp(event, "decision") == 0 && pg_json_get_string(rec, "decision"))
		what = pg_json_get_string(rec, "decision");
	print_value(out, pg_json_get_string(rec, "time") ? pg_json_get_string(rec, "time") : "?",
	            false);
	fprintf(out, " seq ");
	fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(rec, "seq")));
	fputc(' ', out);
	print_value(out, what, false);
	print_field(out, rec, "alert", "alert", false);
	print_field(out, rec, "ref", "ref", false);
	print_field(out, rec, "operation", "operation", false);
	print_field(out, rec, "key", "key", false);
	print_list(out, rec, "keys_matched");
	print_field(out, rec, "rule", "rule", false);
	if (json_object_get(caller, "user") != NULL)
		print_field(out, caller, "user", "user", false);
	else
		print_field(out, caller, "uid", "uid", false);
	print_field(out, caller, "exe", "exe", false);
	/* The pipeline the caller proved it is at login, if any. */
	print_field(out, json_object_get(rec, "identity"), "issuer", "issuer", false);
	print_field(out, json_object_get(rec, "identity"), "credential", "credential", false);
	print_field(out, json_object_get(rec, "identity"), "sub", "sub", false);
	print_field(out, rec, "mechanism", "mechanism", false);
	print_field(out, rec, "data_sha256", "data_sha256", false);
	print_field(out, rec, "grant", "grant", false);
	print_list(out, rec, "approvers");
	print_field(out, rec, "rv", "rv", false);
	print_field(out, rec, "signature_sha256", "signature_sha256", false);
	if (event != NULL && strcmp(what, "allow") != 0)
		print_field(out, rec, "reason", "reason", true);
	/* The caller's own words: quoted, escaped. */
	print_field(out, json_object_get(rec, "break_glass"), "justification", "break_glass", true);
	print_field(out, rec, "policy_sha256", "policy_sha256", false);
	fputc('\n', out);
}

/* Pass 1: the chain check and the seqs to print. */
static int
collect(FILE *f, const char *name, const struct pg_audit_find_query *q, FILE *warn,
        struct seq_set *wanted)
{
	struct seq_set matched = { .sorted = true };
	char shown[sizeof ((struct pg_chain *)0)->message * 2];
	struct pg_chain chain;
	json_t *rec;
	char *line = NULL;
	size_t cap = 0, len;
	uint64_t seq, ref;
	bool has_newline;
	int rc;

	pg_chain_init(&chain);
	while ((rc = pg_audit_read_line(f, &line, &cap, &len, &has_newline)) > 0) {
		/* Records past a chain problem are returned too: a broken
		 * log is still searched, with a warning. */
		rec = pg_chain_feed(&chain, line, len, has_newline);
		if (rec == NULL || !pg_json_u64(json_object_get(rec, "seq"), &seq)) {
			json_decref(rec);
			continue;
		}
		if (matches(rec, q)) {
			if (!set_add(&matched, seq) || !set_add(wanted, seq))
				rc = -ENOMEM;
			if (string_is(rec, "event", "result") &&
			    pg_json_u64(json_object_get(rec, "ref"), &ref) && !set_add(wanted, ref))
				rc = -ENOMEM;
		} else if (string_is(rec, "event", "result") &&
		           pg_json_u64(json_object_get(rec, "ref"), &ref) && set_has(&matched, ref)) {
			if (!set_add(wanted, seq))
				rc = -ENOMEM;
		}
		json_decref(rec);
		if (rc < 0)
			break;
	}
	free(line);
	free(matched.v);
	if (rc < 0)
		return -rc;
	pg_chain_finish(&chain);
	if (chain.problem != PG_CHAIN_OK)
		fprintf(warn, "p11gate audit find: warning: %s: %s (the log is not intact: run "
		        "'p11gate audit verify')\n", name,
		        pg_esc(chain.message, PG_ESC_TEXT, shown, sizeof shown));
	return 0;
}

int
pg_audit_find_stream(FILE *f, const char *name, const struct pg_audit_find_query *q,
                     FILE *out, FILE *warn, size_t *printed)
{
	struct seq_set wanted = { .sorted = true };
	unsigned char prev[PG_SHA256_LEN];
	json_t *rec;
	char *line = NULL, why[8];
	size_t cap = 0, len;
	bool has_newline;
	uint64_t seq;
	int rc;

	*printed = 0;
	if (fseek(f, 0, SEEK_SET) != 0)
		return errno;
	rc = collect(f, name, q, warn, &wanted);
	if (rc != 0)
		goto out;
	if (!wanted.sorted)
		qsort(wanted.v, wanted.n, sizeof *wanted.v, cmp_u64);
	wanted.sorted = true;
	if (fseek(f, 0, SEEK_SET) != 0) {
		rc = errno;
		goto out;
	}
	while ((rc = pg_audit_read_line(f, &line, &cap, &len, &has_newline)) > 0) {
		if (!has_newline)
			continue;
		rec = pg_audit_chain_record(line, len, &seq, prev, why, sizeof why);
		if (rec == NULL)
			continue;
		if (set_has(&wanted, seq)) {
			if (q->json) {
				fwrite(line, 1, len, out);
				fputc('\n', out);
			} else {
				print_readable(out, rec);
				if (q->annotate != NULL)
					q->annotate(q->annotate_ctx, line, len, out);
			}
			(*printed)++;
		}
		json_decref(rec);
	}
	rc = rc < 0 ? -rc : 0;
out:
	free(line);
	free(wanted.v);
	return rc;
}
