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
#include <stdlib.h>
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

/* A start record names the process that opened the log; a tamper record is
 * a writer's finding that the log was cut behind it: the chain may be
 * intact, the log is not. */
static void
check_writer_record(struct pg_chain *c, const json_t *rec, const char *event)
{
	const char *reason = pg_json_get_string(rec, "reason");
	uint64_t pid = 0, seen = 0;

	if (!pg_json_u64(json_object_get(rec, "pid"), &pid) || pid == 0) {
		problem(c, PG_CHAIN_INVALID, c->lines, "%s record without a \"pid\"", event);
		return;
	}
	if (strcmp(event, "start") == 0) {
		c->starts++;
		return;
	}
	if (reason == NULL || !pg_json_u64(json_object_get(rec, "seen_seq"), &seen)) {
		problem(c, PG_CHAIN_INVALID, c->lines, "tamper record without \"reason\" and "
		        "\"seen_seq\"");
		return;
	}
	c->tampers++;
	if (c->tamper_line == 0) {
		c->tamper_line = c->lines;
		snprintf(c->tamper_message, sizeof c->tamper_message, "line %zu: tamper record: "
		         "process %" PRIu64 " found the log cut behind it (it had seen seq %" PRIu64
		         "): %s", c->lines, pid, seen, reason);
	}
}

/* A checkpoint: signed with the key given (if one was given) over its line
 * without the signature field, which is the one before prev, the last. */
static void
check_checkpoint(struct pg_chain *c, const json_t *rec, const char *line, size_t len,
                 uint64_t seq)
{
	static const char field[] = "\"signature\":\"";
	const size_t prev_len = sizeof "\"prev\":\"" - 1 + PG_SHA256_HEX_LEN + 2;   /* "prev":"…"} */
	const char *key_hex = pg_json_get_string(rec, "key_sha256");
	const char *sig_hex = pg_json_get_string(rec, "signature");
	unsigned char key[PG_SHA256_LEN], sig[PG_AUDIT_SIG_MAX];
	size_t hex_len = sig_hex != NULL ? strlen(sig_hex) : 0, at, insert;
	char *message;
	bool ok;

	if (!is_hex64(key_hex) || hex_len == 0 || hex_len % 2 != 0 ||
	    hex_len > 2 * PG_AUDIT_SIG_MAX || !pg_hex_decode(sig_hex, sig, hex_len / 2)) {
		problem(c, PG_CHAIN_INVALID, c->lines, "checkpoint record without \"key_sha256\" and a "
		        "hex \"signature\"");
		return;
	}
	c->checkpoints++;
	if (c->checkpoint_key == NULL)
		return;
	pg_hex_decode(key_hex, key, PG_SHA256_LEN);
	if (memcmp(key, pg_audit_key_sha256(c->checkpoint_key), PG_SHA256_LEN) != 0) {
		problem(c, PG_CHAIN_CHECKPOINT, c->lines, "checkpoint signed with another key "
		        "(key_sha256 %s), not the one given: forged, or the wrong key was given", key_hex);
		return;
	}
	/* The signature field exactly as the writer puts it, just before
	 * prev: what was signed is the line without it. */
	insert = sizeof field - 1 + hex_len + 2;
	at = len - prev_len - insert;
	if (len < prev_len + insert + 1 || memcmp(line + at, field, sizeof field - 1) != 0 ||
	    memcmp(line + at + sizeof field - 1, sig_hex, hex_len) != 0 ||
	    memcmp(line + at + insert - 2, "\",", 2) != 0) {
		problem(c, PG_CHAIN_INVALID, c->lines, "checkpoint record whose \"signature\" is not "
		        "the field before \"prev\"");
		return;
	}
	message = malloc(len - insert);
	if (message == NULL) {
		problem(c, PG_CHAIN_INVALID, c->lines, "out of memory checking a checkpoint");
		return;
	}
	memcpy(message, line, at);
	memcpy(message + at, line + at + insert, prev_len);
	ok = pg_audit_key_verify(c->checkpoint_key, message, len - insert, sig, hex_len / 2);
	free(message);
	if (!ok) {
		problem(c, PG_CHAIN_CHECKPOINT, c->lines, "checkpoint signature does not verify: the "
		        "checkpoint, or the records before it, were changed after it was signed (or it "
		        "was forged)");
		return;
	}
	c->checkpoints_ok++;
	c->checkpoint_seq = seq;
	c->checkpoint_line = c->lines;
	c->after_checkpoint = 0;
}

/* The first record of a file made by a rotation: it names the file it
 * continues, which verifying a set of files checks (audit_set.c). */
static void
check_continue(struct pg_chain *c, const json_t *rec, uint64_t seq)
{
	const char *sha = pg_json_get_string(rec, "previous_sha256");
	const char *name = pg_json_get_string(rec, "previous_file");

	if (c->records > 0 || !c->continues || c->continue_seq != seq) {
		problem(c, PG_CHAIN_INVALID, c->lines, "continue record after the first line (only a "
		        "file's first record continues another file)");
		return;
	}
	if (!is_hex64(sha) || name == NULL ||
	    !pg_json_u64(json_object_get(rec, "previous_size"), &c->previous_size)) {
		problem(c, PG_CHAIN_INVALID, c->lines, "continue record without \"previous_file\", "
		        "\"previous_sha256\" and \"previous_size\"");
		return;
	}
	pg_hex_decode(sha, c->previous_sha256, PG_SHA256_LEN);
	snprintf(c->previous_file, sizeof c->previous_file, "%s", name);
}

/* The per-event rules; the chain fields (seq, prev) were checked already. */
static void
check_fields(struct pg_chain *c, const json_t *rec, const char *text, size_t len,
             uint64_t seq)
{
	static const char *const hashes[] = {
		"public_key_sha256", "data_sha256", "policy_sha256", "signature_sha256", "grant_sha256",
	};
	const char *event, *decision, *recovered;
	const json_t *ref_v;
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
	if (json_object_get(rec, "recovered") != NULL &&
	    (recovered == NULL || strcmp(recovered, "truncated") != 0)) {
		problem(c, PG_CHAIN_INVALID, line, "not a valid record: \"recovered\" is not \"truncated\"");
		return;
	}
	for (size_t i = 0; i < sizeof hashes / sizeof hashes[0]; i++) {
		if (json_object_get(rec, hashes[i]) != NULL && !is_hex64(pg_json_get_string(rec, hashes[i]))) {
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
	    strcmp(event, "policy") != 0 && strcmp(event, "start") != 0 &&
	    strcmp(event, "tamper") != 0 && strcmp(event, "checkpoint") != 0 &&
	    strcmp(event, "rotate") != 0 && strcmp(event, "continue") != 0 &&
	    strcmp(event, "alert") != 0) {
		problem(c, PG_CHAIN_INVALID, line, "unknown event (not decision, result, policy, "
		        "start, tamper, checkpoint, rotate, continue or alert)");
		return;
	}
	if (c->closed_line != 0) {
		problem(c, PG_CHAIN_INVALID, line, "record after the rotate record on line %zu, which "
		        "closed the file (records written after a rotation belong in the next file)",
		        c->closed_line);
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
	if (json_object_get(rec, "decision") != NULL) {
		problem(c, PG_CHAIN_INVALID, line, "%s record with a \"decision\" (only decision "
		        "records have one)", event);
		return;
	}
	if (strcmp(event, "policy") == 0) {
		c->policies++;
		return;
	}
	if (strcmp(event, "alert") == 0) {
		if (pg_json_get_string(rec, "alert") == NULL || pg_json_get_string(rec, "reason") == NULL)
			problem(c, PG_CHAIN_INVALID, line, "alert record without \"alert\" or \"reason\"");
		else
			c->alerts++;
		return;
	}
	if (strcmp(event, "start") == 0 || strcmp(event, "tamper") == 0) {
		check_writer_record(c, rec, event);
		return;
	}
	if (strcmp(event, "checkpoint") == 0 || strcmp(event, "rotate") == 0 ||
	    strcmp(event, "continue") == 0) {
		uint64_t pid = 0;

		if (!pg_json_u64(json_object_get(rec, "pid"), &pid) || pid == 0) {
			problem(c, PG_CHAIN_INVALID, line, "%s record without a \"pid\"", event);
			return;
		}
		if (event[0] == 'c' && event[1] == 'h')
			check_checkpoint(c, rec, text, len, seq);
		else if (event[0] == 'r')
			c->closed_line = line;
		else
			check_continue(c, rec, seq);
		return;
	}
	/* ref is normally smaller than seq, but after a rotation it names a
	 * decision in the previous file, whose seqs may be larger. */
	ref_v = json_object_get(rec, "ref");
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

/* What comes before pg_audit_chain_record's reason in a message. */
static const char *
json_hint(const char *why)
{
	return strncmp(why, "column", 6) == 0 ? "not valid JSON: " : "";
}

static void
accept_line(struct pg_chain *c, const char *line, size_t len)
{
	pg_sha256(line, len, c->prev_hash);
}

/* The line just accepted is the record seq: is it the head the operator
 * kept?  (Its hash is prev_hash now.) */
static void
check_head(struct pg_chain *c, uint64_t seq)
{
	char hex[PG_SHA256_HEX_LEN + 1];

	if (c->head_seq == 0 || seq != c->head_seq || c->head_found)
		return;
	c->head_found = true;
	if (memcmp(c->prev_hash, c->head_hash, PG_SHA256_LEN) == 0)
		return;
	pg_hex_encode(c->prev_hash, PG_SHA256_LEN, hex);
	problem(c, PG_CHAIN_HEAD, c->lines, "seq %" PRIu64 " is not the record that was kept (its "
	        "SHA-256 is %s): the log was rewritten from there", seq, hex);
}

static bool
is_continue(const json_t *rec)
{
	const char *event = pg_json_get_string(rec, "event");

	return event != NULL && strcmp(event, "continue") == 0;
}

json_t *
pg_chain_feed(struct pg_chain *c, const char *line, size_t len, bool has_newline)
{
	static const unsigned char zeros[PG_SHA256_LEN];
	unsigned char prev[PG_SHA256_LEN];
	const char *recovered, *time;
	bool counted = false;
	json_t *rec;
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
	if (c->since_seq > 0 && !c->started) {
		/* Before the record the check starts from: only hashed, for
		 * --expect-head. */
		if (rec == NULL || seq != c->since_seq) {
			accept_line(c, line, len);
			if (rec != NULL)
				check_head(c, seq);
			return rec;
		}
		c->started = true;
		c->broken_count = 0;
		c->last_seq = seq - 1;
	}
	if (rec == NULL) {
		/* A crash leaves prefixes of records, and no prefix has the
		 * shape of a whole one: a line with that shape which is no
		 * record was written by someone else, never crash debris,
		 * and the writer would continue from it. */
		if (pg_audit_record_frame(line, len, &seq, prev))
			problem(c, PG_CHAIN_EDITED, k, "record was edited (%s%s)", json_hint(why), why);
		if (c->broken_count++ == 0) {
			c->broken_first = k;
			snprintf(c->broken_why, sizeof c->broken_why, "%s%s", json_hint(why), why);
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
	} else if (c->records == 0 && c->since_seq == 0 && c->broken_count == 0 &&
	           is_continue(rec)) {
		/* A file a rotation made: it starts where the file it
		 * continues ended (checked across files by audit_set.c). */
		c->continues = true;
		c->continue_seq = seq;
		memcpy(c->continue_prev, prev, PG_SHA256_LEN);
		c->last_seq = seq - 1;
	} else if (c->records == 0 && c->since_seq == 0) {
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
	check_fields(c, rec, line, len, seq);
	if (c->problem != PG_CHAIN_OK)
		goto out;
	if (c->records++ == 0) {
		c->first_seq = seq;
		snprintf(c->first_time, sizeof c->first_time, "%s", pg_json_get_string(rec, "time"));
	}
	if (c->checkpoint_line != c->lines)
		c->after_checkpoint++;
	c->last_seq = seq;
	time = pg_json_get_string(rec, "time");
	snprintf(c->last_time, sizeof c->last_time, "%s", time);
	counted = true;
out:
	c->broken_count = 0;
	accept_line(c, line, len);
	if (counted)
		memcpy(c->last_hash, c->prev_hash, PG_SHA256_LEN);
	check_head(c, seq);
	return rec;
}

void
pg_chain_finish(struct pg_chain *c)
{
	if (c->broken_count > 0) {
		/* Broken lines that no record closed: a crash leaves them only
		 * at the very end, without a newline (reported as truncation). */
		problem(c, PG_CHAIN_EDITED, c->broken_first, "record was edited (%s)", c->broken_why);
		c->broken_count = 0;
	}
	if (c->since_seq > 0 && !c->started)
		problem(c, PG_CHAIN_CUT, c->lines, "no record with seq %" PRIu64 " (--since-seq) in "
		        "the log", c->since_seq);
	if (c->head_seq > 0 && !c->head_found)
		problem(c, PG_CHAIN_CUT, c->lines, "the log ends at seq %" PRIu64 ", before seq %"
		        PRIu64 " (--expect-head): records were cut off its end", c->last_seq,
		        c->head_seq);
	if (c->expect_last_seq > c->last_seq)
		problem(c, PG_CHAIN_CUT, c->lines, "the log ends at seq %" PRIu64 ", before seq %"
		        PRIu64 " (--expect-last-seq): records were cut off its end", c->last_seq,
		        c->expect_last_seq);
	/* A tamper record is the news, unless the log was broken before it. */
	if (c->tamper_line > 0 && (c->problem == PG_CHAIN_OK || c->tamper_line < c->problem_line)) {
		if (c->problem != PG_CHAIN_OK)
			note(c, "also %s", c->message);
		c->problem = PG_CHAIN_TAMPER;
		c->problem_line = c->tamper_line;
		snprintf(c->message, sizeof c->message, "%s", c->tamper_message);
	}
}

void
pg_chain_summary(const struct pg_chain *c, const char *name, char *out, size_t out_len)
{
	char others[128] = "", time[sizeof c->last_time * 4], head[PG_SHA256_HEX_LEN + 1];
	size_t n = 0;

	if (c->records == 0) {
		snprintf(out, out_len, "%s: intact, 0 records", name);
		return;
	}
	if (c->policies > 0)
		n += (size_t)snprintf(others + n, sizeof others - n, ", %" PRIu64 " policy", c->policies);
	if (c->starts > 0)
		n += (size_t)snprintf(others + n, sizeof others - n, ", %" PRIu64 " start", c->starts);
	if (c->checkpoints > 0)
		n += (size_t)snprintf(others + n, sizeof others - n, ", %" PRIu64 " checkpoint",
		                      c->checkpoints);
	if (c->alerts > 0)
		snprintf(others + n, sizeof others - n, ", %" PRIu64 " alert", c->alerts);
	pg_hex_encode(c->last_hash, PG_SHA256_LEN, head);
	snprintf(out, out_len, "%s: intact, %" PRIu64 " records (%" PRIu64 " allow, %" PRIu64
	         " deny, %" PRIu64 " result%s%s), seq %" PRIu64 "..%" PRIu64 ", last record %s, "
	         "head %" PRIu64 ":%s",
	         name, c->records, c->allow, c->deny, c->results, c->results == 1 ? "" : "s",
	         others, c->first_seq, c->last_seq,
	         pg_esc(c->last_time, PG_ESC_VALUE, time, sizeof time),   /* the log's text */
	         c->last_seq, head);
}
