/* SPDX-License-Identifier: Apache-2.0
 *
 * The audit log's reader: jansson (a maintained, fuzzed parser) with the
 * options and checks that make it strict enough for records, and the chain
 * fields every record has.  The writer (audit_buf.c) stays p11gate's own:
 * its bytes are the chain format.
 */
#include "audit_json.h"
#include "audit_tail.h"

#include <stdio.h>
#include <string.h>

/* jansson quotes the input near an error: keep only printable ASCII so the
 * message cannot carry terminal escapes. */
static void
printable(const char *in, char *out, size_t out_len)
{
	size_t j = 0;

	for (size_t i = 0; in[i] != '\0' && j + 1 < out_len; i++)
		out[j++] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
	out[j] = '\0';
}

/* jansson bounds nesting at 2048 and takes any number of members; a record
 * is a few levels deep with a few dozen members, and the old reader's
 * bounds are kept so the same lines are refused. */
static bool
within_bounds(const json_t *v, int depth, char *err, size_t err_len)
{
	const char *key;
	json_t *item;
	size_t i;

	if (!json_is_object(v) && !json_is_array(v))
		return true;
	if (depth > PG_JSON_MAX_DEPTH) {
		snprintf(err, err_len, "nested more than %d deep", PG_JSON_MAX_DEPTH);
		return false;
	}
	if (json_is_object(v) && json_object_size(v) > PG_JSON_MAX_MEMBERS) {
		snprintf(err, err_len, "more than %d members in an object", PG_JSON_MAX_MEMBERS);
		return false;
	}
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, item) {
			if (!within_bounds(item, depth + 1, err, err_len))
				return false;
		}
	} else {
		json_array_foreach(v, i, item) {
			if (!within_bounds(item, depth + 1, err, err_len))
				return false;
		}
	}
	return true;
}

json_t *
pg_json_parse(const char *text, size_t len, char *err, size_t err_len)
{
	/* Duplicate keys are where two JSON readers disagree (first wins or
	 * last wins): a line with one is refused.  The writer escapes a NUL
	 * byte in a label as \u0000, so NUL is allowed in values (not in
	 * keys: jansson refuses those whatever the flags); pg_json_string
	 * keeps such a string from being read as a shorter C string. */
	const size_t flags = JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL;
	char shown[JSON_ERROR_TEXT_LENGTH];
	json_error_t error;
	json_t *v;

	if (err_len > 0)
		err[0] = '\0';
	v = json_loadb(text, len, flags, &error);
	if (v == NULL) {
		printable(error.text, shown, sizeof shown);
		snprintf(err, err_len, "column %d: %s", error.column > 0 ? error.column : 1, shown);
		return NULL;
	}
	if (!within_bounds(v, 1, err, err_len)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

const char *
pg_json_string(const json_t *value)
{
	const char *s = json_string_value(value);

	if (s == NULL || strlen(s) != json_string_length(value))
		return NULL;
	return s;
}

const char *
pg_json_get_string(const json_t *object, const char *key)
{
	return pg_json_string(json_object_get(object, key));
}

bool
pg_json_u64(const json_t *value, uint64_t *out)
{
	/* jansson reads a number with a fraction or exponent as a real, and
	 * refuses an integer outside int64 as a whole (the writer writes
	 * none: seqs, pids, sizes, uids). */
	if (!json_is_integer(value) || json_integer_value(value) < 0)
		return false;
	*out = (uint64_t)json_integer_value(value);
	return true;
}

json_t *
pg_audit_chain_record(const char *line, size_t len, uint64_t *seq,
                      unsigned char prev[PG_SHA256_LEN], char *err, size_t err_len)
{
	unsigned char frame_prev[PG_SHA256_LEN];
	uint64_t frame_seq;
	const json_t *v;
	json_t *rec;
	const char *hex;

	rec = pg_json_parse(line, len, err, err_len);
	if (rec == NULL)
		return NULL;
	if (!json_is_object(rec)) {
		snprintf(err, err_len, "not a JSON object");
		goto error;
	}
	v = json_object_get(rec, "seq");
	if (v == NULL || !pg_json_u64(v, seq) || *seq == 0) {
		snprintf(err, err_len, v == NULL ? "no \"seq\"" : "\"seq\" is not a positive integer");
		goto error;
	}
	hex = pg_json_get_string(rec, "prev");
	if (hex == NULL) {
		snprintf(err, err_len, "no \"prev\" string");
		goto error;
	}
	for (const char *c = hex; *c != '\0'; c++) {
		/* Lower case only: one line, one spelling of its hash. */
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))) {
			snprintf(err, err_len, "\"prev\" is not 64 lower-case hex digits");
			goto error;
		}
	}
	if (!pg_hex_decode(hex, prev, PG_SHA256_LEN)) {
		snprintf(err, err_len, "\"prev\" is not 64 lower-case hex digits");
		goto error;
	}
	/* One record, one spelling: the writer's, which is also how the
	 * writer (parsing no JSON) tells a record from a torn line, so the
	 * two never disagree on a line verify accepts.  In a valid line
	 * without duplicate keys the frame's seq and prev are the members
	 * read above: the first member and the last before the final '}'. */
	if (!pg_audit_record_frame(line, len, &frame_seq, frame_prev)) {
		snprintf(err, err_len, "not in the writer's form ({\"seq\":N,...,\"prev\":\"...\"} "
		         "with no white space outside strings)");
		goto error;
	}
	return rec;
error:
	json_decref(rec);
	return NULL;
}
