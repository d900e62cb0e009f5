/* SPDX-License-Identifier: Apache-2.0
 *
 * The rules of an intact audit log (docs/audit.md, "What verify checks"):
 * every line is a record, seq goes up by one, each prev is the SHA-256 of
 * the line before (zeros on the first), and each event carries its fields.
 * A run of broken lines closed by a record marked "recovered" and chained to
 * them is a crash the writer recovered from, not tampering.
 */
#include "audit_chain.h"
#include "audit_tail.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void
pg_chain_init(struct pg_chain *chain)
{
	memset(chain, 0, sizeof *chain);
}

static void problem(struct pg_chain *c, enum pg_chain_problem kind, size_t line,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
problem(struct pg_chain *c, enum pg_chain_problem kind, size_t line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->problem != PG_CHAIN_OK)
		return;
	c->problem = kind;
	c->problem_line = line;
	n = snprintf(c->message, sizeof c->message, "line %zu: ", line);
	va_start(ap, fmt);
	vsnprintf(c->message + n, sizeof c->message - (size_t)n, fmt, ap);
	va_end(ap);
}

static void note(struct pg_chain *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
note(struct pg_chain *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (c->note == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->note(c->note_ctx, msg);
}

static bool
is_hex64(const char *s)
{
	if (s == NULL || strlen(s) != PG_SHA256_HEX_LEN)
		return false;
	for (; *s != '\0'; s++) {
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	}
	return true;
}

/* The per-event rules; the chain fields (seq, prev) were checked already. */
static void
check_fields(struct pg_chain *c, const struct pg_json *rec, uint64_t seq)
{
	static const char *const hashes[] = {
		"public_key_sha256", "data_sha256", "policy_sha256", "signature_sha256",
	};
	const char *event, *decision, *recovered;
	const struct pg_json *ref_v;
	uint64_t ref;
	size_t line = c->lines;

	if (pg_json_get_string(rec, "time") == NULL) {
		problem(c, PG_CHAIN_INVALID, line, "not a valid record: no \"time\"");
		return;
	}
	if (pg_json_get_string(rec, "host") == NULL) {
		problem(c, PG_CHAIN_INVALID, line, "not a valid record: no \"host\"");
		return;
	}
	recovered = pg_json_get_string(rec, "recovered");
	if (pg_json_get(rec, "recovered") != NULL &&
	    (recovered == NULL || strcmp(recovered, "truncated") != 0)) {
		problem(c, PG_CHAIN_INVALID, line, "not a valid record: \"recovered\" is not \"truncated\"");
		return;
	}
	for (size_t i = 0; i < sizeof hashes / sizeof hashes[0]; i++) {
		if (pg_json_get(rec, hashes[i]) != NULL && !is_hex64(pg_json_get_string(rec, hashes[i]))) {
			problem(c, PG_CHAIN_INVALID, line, "not a valid record: \"%s\" is not 64 "
			        "lower-case hex digits", hashes[i]);
			return;
		}
	}
	event = pg_json_get_string(rec, "event");
	decision = pg_json_get_string(rec, "decision");
	if (event == NULL) {
		problem(c, PG_CHAIN_INVALID, line, "not a valid record: no \"event\"");
		return;
	}
	if (strcmp(event, "decision") != 0 && strcmp(event, "result") != 0 &&
	    strcmp(event, "policy") != 0) {
		problem(c, PG_CHAIN_INVALID, line, "unknown event (not decision, result or policy)");
		return;
	}
	if (strcmp(event, "decision") == 0) {
		if (decision == NULL || (strcmp(decision, "allow") != 0 && strcmp(decision, "deny") != 0)) {
			problem(c, PG_CHAIN_INVALID, line, "decision record without \"decision\": "
			        "\"allow\" or \"deny\"");
			return;
		}
		if (strcmp(decision, "allow") == 0)
			c->allow++;
		else
			c->deny++;
		return;
	}
	if (pg_json_get(rec, "decision") != NULL) {
		problem(c, PG_CHAIN_INVALID, line, "%s record with a \"decision\" (only decision "
		        "records have one)", event);
		return;
	}
	if (strcmp(event, "policy") == 0) {
		c->policies++;
		return;
	}
	/* ref is normally smaller than seq, but after a rotation it names a
	 * decision in the previous file, whose seqs may be larger. */
	ref_v = pg_json_get(rec, "ref");
	if (ref_v == NULL || !pg_json_u64(ref_v, &ref) || ref == 0 || ref == seq) {
		problem(c, PG_CHAIN_INVALID, line, "result record without a \"ref\" to its decision");
		return;
	}
	if (pg_json_get_string(rec, "rv") == NULL) {
		problem(c, PG_CHAIN_INVALID, line, "result record without \"rv\"");
		return;
	}
	c->results++;
}

static void
accept_line(struct pg_chain *c, const char *line, size_t len)
{
	pg_sha256(line, len, c->prev_hash);
}

struct pg_json *
pg_chain_feed(struct pg_chain *c, const char *line, size_t len, bool has_newline)
{
	static const unsigned char zeros[PG_SHA256_LEN];
	unsigned char prev[PG_SHA256_LEN];
	const char *recovered, *time;
	struct pg_json *rec;
	char why[160];
	uint64_t seq;
	size_t k;

	k = ++c->lines;
	if (!has_newline) {
		/* The writer always ends a record with a newline: a last line
		 * without one was cut short.  Broken lines just before it are
		 * the same crash, one level deeper: a writer closed a torn line
		 * and was killed writing its recovery record.  Truncation, not
		 * tampering, either way. */
		if (c->broken_count > 0)
			note(c, "line %zu: torn by a writer killed mid-write; the recovery that was "
			     "closing it was itself cut short (line %zu)", c->broken_first, k);
		c->broken_count = 0;
		if (c->allow_truncated_tail && c->problem == PG_CHAIN_OK)
			note(c, "line %zu: last line is truncated (no newline; a writer was killed "
			     "mid-write); accepted (--allow-truncated-tail)", k);
		else
			problem(c, PG_CHAIN_TRUNCATED, k, "last line is truncated (no newline; a writer "
			        "was killed mid-write)");
		return NULL;
	}
	rec = pg_audit_chain_record(line, len, &seq, prev, why, sizeof why);
	if (rec == NULL) {
		if (c->broken_count++ == 0) {
			c->broken_first = k;
			snprintf(c->broken_why, sizeof c->broken_why, "%s%s",
			         strncmp(why, "column", 6) == 0 ? "not valid JSON: " : "", why);
		}
		accept_line(c, line, len);
		return NULL;
	}
	if (c->problem != PG_CHAIN_OK)
		goto out;       /* past the first problem: only parse, for find */

	recovered = pg_json_get_string(rec, "recovered");
	if (c->broken_count > 0) {
		if (recovered == NULL) {
			problem(c, PG_CHAIN_EDITED, c->broken_first, "record was edited (%s)",
			        c->broken_why);
			goto out;
		}
		if (memcmp(prev, c->prev_hash, PG_SHA256_LEN) != 0) {
			problem(c, PG_CHAIN_EDITED, k - 1, "record was edited (prev of line %zu does "
			        "not match)", k);
			goto out;
		}
		if (c->broken_count == 1)
			note(c, "line %zu: incomplete record (a writer was killed mid-write); line %zu "
			     "closed it and continues the chain", c->broken_first, k);
		else
			note(c, "lines %zu-%zu: incomplete records (writers killed mid-write); line %zu "
			     "closed them and continues the chain", c->broken_first, k - 1, k);
	} else if (c->records == 0) {
		if (memcmp(prev, zeros, PG_SHA256_LEN) != 0) {
			problem(c, PG_CHAIN_START, k, "chain does not start at zero (file truncated at "
			        "the front or records deleted)");
			goto out;
		}
	}
	if (seq != c->last_seq + 1) {
		if (c->records == 0)
			problem(c, PG_CHAIN_START, c->broken_count > 0 ? c->broken_first : k,
			        "chain does not start at zero (seq %" PRIu64 " where 1 was due: file "
			        "truncated at the front or records deleted)", seq);
		else
			problem(c, PG_CHAIN_SEQ, k, "seq %" PRIu64 " follows %" PRIu64 ": records "
			        "missing or reordered", seq, c->last_seq);
		goto out;
	}
	if (c->broken_count == 0 && c->records > 0 && memcmp(prev, c->prev_hash, PG_SHA256_LEN) != 0) {
		problem(c, PG_CHAIN_EDITED, k - 1, "record was edited (prev of line %zu does not match)",
		        k);
		goto out;
	}
	if (c->broken_count == 0 && recovered != NULL && c->records > 0)
		note(c, "line %zu: recovered after an interrupted write (line %zu had lost its "
		     "newline)", k, k - 1);
	check_fields(c, rec, seq);
	if (c->problem != PG_CHAIN_OK)
		goto out;
	if (c->records++ == 0)
		c->first_seq = seq;
	c->last_seq = seq;
	time = pg_json_get_string(rec, "time");
	snprintf(c->last_time, sizeof c->last_time, "%s", time);
out:
	c->broken_count = 0;
	accept_line(c, line, len);
	return rec;
}

void
pg_chain_finish(struct pg_chain *c)
{
	if (c->broken_count == 0)
		return;
	/* Broken lines that no record closed: a crash leaves them only at the
	 * very end, without a newline (reported as truncation). */
	problem(c, PG_CHAIN_EDITED, c->broken_first, "record was edited (%s)", c->broken_why);
	c->broken_count = 0;
}

void
pg_chain_summary(const struct pg_chain *c, const char *name, char *out, size_t out_len)
{
	char policies[48] = "", time[sizeof c->last_time * 4];

	if (c->records == 0) {
		snprintf(out, out_len, "%s: intact, 0 records", name);
		return;
	}
	if (c->policies > 0)
		snprintf(policies, sizeof policies, ", %" PRIu64 " policy", c->policies);
	snprintf(out, out_len, "%s: intact, %" PRIu64 " records (%" PRIu64 " allow, %" PRIu64
	         " deny, %" PRIu64 " result%s%s), seq %" PRIu64 "..%" PRIu64 ", last record %s",
	         name, c->records, c->allow, c->deny, c->results, c->results == 1 ? "" : "s",
	         policies, c->first_seq, c->last_seq,
	         pg_esc(c->last_time, PG_ESC_VALUE, time, sizeof time));   /* the log's text */
}
