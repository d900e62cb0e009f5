/* SPDX-License-Identifier: Apache-2.0
 *
 * verify and find against real log files: a log written by the writer,
 * then tampered with in each way an auditor must catch (edited byte,
 * deleted, swapped, truncated, cut or prepended lines), each reported at
 * the right line with the right kind; hand-made chained logs for the
 * per-event rules; and find's selection and pairing.
 */
#include "p11gate/audit.h"
#include "p11gate/common.h"
#include "audit_chain.h"
#include "audit_find.h"
#include "audit_test_util.h"
#include "audit_verify.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

static char *dir;
static char *log_path;
static char *work_path;
static char *base;              /* the intact log's bytes */
static size_t base_len;

enum { PAIRS = 5 };             /* 5 allow + 5 results + 1 deny = 11 records */

static void
hash_of(unsigned char tag, int i, unsigned char out[32])
{
	memset(out, tag, 32);
	out[31] = (unsigned char)i;
}

static void
setup(void)
{
	unsigned char data[PAIRS][32], sig[PAIRS][32];
	struct pg_audit_record r;
	char err[256], key[PAIRS][16];
	uint64_t seq;
	pg_audit *a;

	dir = t_tempdir();
	log_path = t_path(dir, "audit.jsonl");
	work_path = t_path(dir, "work.jsonl");
	a = pg_audit_open(log_path, false, false, err, sizeof err);
	ck_assert_msg(a != NULL, "%s", err);
	for (int i = 0; i < PAIRS; i++) {
		t_record(&r, "rule-x");
		snprintf(key[i], sizeof key[i], "key-%d", i % 2);
		r.key_name = key[i];
		hash_of(0xda, i, data[i]);
		r.data_sha256 = data[i];
		ck_assert_int_eq(pg_audit_append(a, &r, &seq), 0);
		memset(&r, 0, sizeof r);
		r.event = PG_AUDIT_RESULT;
		r.ref = seq;
		r.has_rv = true;
		r.rv = CKR_OK;
		hash_of(0x5a, i, sig[i]);
		r.signature_sha256 = sig[i];
		ck_assert_int_eq(pg_audit_append(a, &r, &seq), 0);
	}
	t_record(&r, "no-rule");
	r.allow = false;
	r.reason = "no rule allows \x1b[2Jit";
	ck_assert_int_eq(pg_audit_append(a, &r, &seq), 0);
	pg_audit_close(a);
	base = t_read(log_path, &base_len);
}

static void
teardown(void)
{
	free(base);
	free(work_path);
	free(log_path);
	t_rmdir(dir);
}

/* Byte offset where line n (1-based) starts in base. */
static size_t
line_start(size_t n)
{
	size_t off = 0;

	for (size_t i = 1; i < n; i++)
		off = (size_t)((char *)memchr(base + off, '\n', base_len - off) - base) + 1;
	return off;
}

static size_t
line_len_with_newline(size_t n)
{
	return line_start(n + 1) - line_start(n);
}

static struct pg_chain
verify_work(bool allow_truncated_tail)
{
	struct pg_chain chain;

	pg_chain_init(&chain);
	chain.allow_truncated_tail = allow_truncated_tail;
	ck_assert_int_eq(pg_audit_verify_path(work_path, &chain), 0);
	return chain;
}

static void
expect(const struct pg_chain *c, enum pg_chain_problem kind, size_t line, const char *message)
{
	ck_assert_msg(c->problem == kind && c->problem_line == line,
	              "got kind %d line %zu (%s), wanted kind %d line %zu", c->problem,
	              c->problem_line, c->message, kind, line);
	if (message != NULL)
		ck_assert_str_eq(c->message, message);
}

START_TEST(intact_log_summary)
{
	struct pg_chain c;
	char summary[720], want[720], head[PG_SHA256_HEX_LEN + 1];
	unsigned char hash[PG_SHA256_LEN];
	const char *last = base + base_len - 1;

	/* The head is the SHA-256 of the last line, the prev a next record
	 * would carry. */
	while (last > base && last[-1] != '\n')
		last--;
	ck_assert(pg_sha256(last, (size_t)(base + base_len - 1 - last), hash));
	pg_hex_encode(hash, PG_SHA256_LEN, head);
	t_write(work_path, base, base_len);
	c = verify_work(false);
	expect(&c, PG_CHAIN_OK, 0, NULL);
	pg_chain_summary(&c, "audit.jsonl", summary, sizeof summary);
	snprintf(want, sizeof want, "audit.jsonl: intact, 11 records (5 allow, 1 deny, 5 results), "
	         "seq 1..11, last record %s, head 11:%s", c.last_time, head);
	ck_assert_str_eq(summary, want);
	ck_assert_uint_eq(strlen(c.last_time), 27);

	t_write(work_path, "", 0);
	c = verify_work(false);
	expect(&c, PG_CHAIN_OK, 0, NULL);
	pg_chain_summary(&c, "empty", summary, sizeof summary);
	ck_assert_str_eq(summary, "empty: intact, 0 records");
}
END_TEST

START_TEST(edited_byte)
{
	char *copy = malloc(base_len);
	char *p;
	struct pg_chain c;

	memcpy(copy, base, base_len);
	p = strstr(copy + line_start(5), "rule-x");     /* line 5 is a decision */
	ck_assert_ptr_nonnull(p);
	ck_assert(p < copy + line_start(6));
	p[5] = 'y';
	t_write(work_path, copy, base_len);
	c = verify_work(false);
	expect(&c, PG_CHAIN_EDITED, 5, "line 5: record was edited (prev of line 6 does not match)");

	/* An edit that breaks the JSON itself. */
	memcpy(copy, base, base_len);
	copy[line_start(7) + 3] = 'x';                  /* {"sxq": */
	t_write(work_path, copy, base_len);
	c = verify_work(false);
	expect(&c, PG_CHAIN_EDITED, 7, NULL);
	ck_assert_msg(strstr(c.message, "line 7: record was edited (not a JSON object") != NULL ||
	              strstr(c.message, "line 7: record was edited (no \"seq\")") != NULL, "%s",
	              c.message);
	memcpy(copy, base, base_len);
	copy[line_start(7) + 1] = 'x';                  /* {x"seq": */
	t_write(work_path, copy, base_len);
	c = verify_work(false);
	expect(&c, PG_CHAIN_EDITED, 7, "line 7: record was edited (not valid JSON: column 5: "
	       "string or '}' expected near 'xseq')");
	free(copy);
}
END_TEST

START_TEST(deleted_line)
{
	struct pg_chain c;
	FILE *f = fopen(work_path, "w");

	fwrite(base, 1, line_start(5), f);
	fwrite(base + line_start(6), 1, base_len - line_start(6), f);
	fclose(f);
	c = verify_work(false);
	expect(&c, PG_CHAIN_SEQ, 5, "line 5: seq 6 follows 4: records missing or reordered");
}
END_TEST

START_TEST(swapped_lines)
{
	struct pg_chain c;
	FILE *f = fopen(work_path, "w");

	fwrite(base, 1, line_start(5), f);
	fwrite(base + line_start(6), 1, line_len_with_newline(6), f);
	fwrite(base + line_start(5), 1, line_len_with_newline(5), f);
	fwrite(base + line_start(7), 1, base_len - line_start(7), f);
	fclose(f);
	c = verify_work(false);
	expect(&c, PG_CHAIN_SEQ, 5, "line 5: seq 6 follows 4: records missing or reordered");
}
END_TEST

START_TEST(truncated_last_line)
{
	struct pg_chain c;

	t_write(work_path, base, base_len - 40);
	c = verify_work(false);
	expect(&c, PG_CHAIN_TRUNCATED, 11, "line 11: last line is truncated (no newline; a writer "
	       "was killed mid-write)");
	c = verify_work(true);
	expect(&c, PG_CHAIN_OK, 0, NULL);
	ck_assert_uint_eq(c.records, 10);

	/* Only the newline missing: still a truncated write. */
	t_write(work_path, base, base_len - 1);
	c = verify_work(false);
	expect(&c, PG_CHAIN_TRUNCATED, 11, NULL);
}
END_TEST

START_TEST(cut_first_line)
{
	struct pg_chain c;

	t_write(work_path, base + line_start(2), base_len - line_start(2));
	c = verify_work(false);
	expect(&c, PG_CHAIN_START, 1, "line 1: chain does not start at zero (file truncated at the "
	       "front or records deleted)");
}
END_TEST

START_TEST(prepended_line)
{
	struct pg_chain c;
	FILE *f = fopen(work_path, "w");

	/* A copy of the first record in front: seq 1 twice. */
	fwrite(base, 1, line_len_with_newline(1), f);
	fwrite(base, 1, base_len, f);
	fclose(f);
	c = verify_work(false);
	expect(&c, PG_CHAIN_SEQ, 2, "line 2: seq 1 follows 1: records missing or reordered");

	f = fopen(work_path, "w");
	fputs("hello\n", f);
	fwrite(base, 1, base_len, f);
	fclose(f);
	c = verify_work(false);
	expect(&c, PG_CHAIN_EDITED, 1, NULL);
}
END_TEST

static void
sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n;

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	pg_hex_encode(md, 32, out);
}

/* Writes a correctly chained log whose records have the given middles
 * (the fields between seq and prev). */
static void
write_chained(const char *const *middles, size_t n)
{
	char prev[65], line[2048];
	FILE *f = fopen(work_path, "w");

	memset(prev, '0', 64);
	prev[64] = '\0';
	for (size_t i = 0; i < n; i++) {
		int len = snprintf(line, sizeof line, "{\"seq\":%zu,%s\"prev\":\"%s\"}", i + 1,
		                   middles[i], prev);
		fprintf(f, "%s\n", line);
		sha256_hex(line, (size_t)len, prev);
	}
	fclose(f);
}

/* Writes a record, a second line, and a record marked recovered chained to
 * that line (what the writer writes after a crash left the second). */
static void
write_recovered_after(const char *second)
{
	static const char body[] = "\"time\":\"2026-11-23T17:00:00.000000Z\",\"host\":\"h\","
	                           "\"event\":\"policy\",";
	char prev[65], line[1024];
	FILE *f = fopen(work_path, "w");

	memset(prev, '0', 64);
	prev[64] = '\0';
	snprintf(line, sizeof line, "{\"seq\":1,%s\"prev\":\"%s\"}", body, prev);
	fprintf(f, "%s\n%s\n", line, second);
	sha256_hex(second, strlen(second), prev);
	fprintf(f, "{\"seq\":2,%s\"recovered\":\"truncated\",\"prev\":\"%s\"}\n", body, prev);
	fclose(f);
}

/* A crash leaves a prefix of a record, which a recovered record closes.  A
 * line with the whole shape of a record that is no record (here a
 * duplicate key) is no crash's: it is an edit, not forgiven as one (the
 * old reader took it for crash debris, and the writer, which knows records
 * by that shape, would have continued from it). */
START_TEST(shaped_line_is_no_crash_debris)
{
	struct pg_chain c;

	write_recovered_after("{\"seq\":2,\"time\":\"2026-11-23T17:00:0");
	c = verify_work(false);
	ck_assert_msg(c.problem == PG_CHAIN_OK, "%s", c.message);
	ck_assert_uint_eq(c.records, 2);

	write_recovered_after("{\"seq\":2,\"host\":\"a\",\"host\":\"b\",\"prev\":"
	                      "\"0000000000000000000000000000000000000000000000000000000000000000\"}");
	c = verify_work(false);
	expect(&c, PG_CHAIN_EDITED, 2, "line 2: record was edited (not valid JSON: column 26: "
	       "duplicate object key near '\"host\"')");
}
END_TEST

#define HEAD "\"time\":\"2026-11-23T17:45:58.123456Z\",\"host\":\"h\","

START_TEST(per_event_rules)
{
	const char *ok[] = {
		HEAD "\"event\":\"policy\",\"reason\":\"loaded\",",
		HEAD "\"event\":\"decision\",\"decision\":\"allow\",",
		HEAD "\"event\":\"result\",\"ref\":2,\"rv\":\"CKR_OK\",",
		HEAD "\"event\":\"decision\",\"decision\":\"deny\",",
	};
	const char *cases[][2] = {
		{ HEAD "\"event\":\"result\",\"decision\":\"allow\",\"ref\":2,\"rv\":\"CKR_OK\",",
		  "line 5: result record with a \"decision\" (only decision records have one)" },
		{ HEAD "\"event\":\"decision\",\"decision\":\"maybe\",",
		  "line 5: decision record without \"decision\": \"allow\" or \"deny\"" },
		{ HEAD "\"event\":\"decision\",",
		  "line 5: decision record without \"decision\": \"allow\" or \"deny\"" },
		{ HEAD "\"event\":\"result\",\"rv\":\"CKR_OK\",",
		  "line 5: result record without a \"ref\" to its decision" },
		{ HEAD "\"event\":\"result\",\"ref\":5,\"rv\":\"CKR_OK\",",
		  "line 5: result record without a \"ref\" to its decision" },
		{ HEAD "\"event\":\"result\",\"ref\":2,",
		  "line 5: result record without \"rv\"" },
		{ HEAD "\"event\":\"sign\",",
		  "line 5: unknown event (not decision, result, policy, start, tamper, checkpoint, "
		  "rotate, continue or alert)" },
		{ HEAD "\"event\":\"alert\",\"alert\":\"tamper\",",
		  "line 5: alert record without \"alert\" or \"reason\"" },
		{ "\"host\":\"h\",\"event\":\"policy\",", "line 5: not a valid record: no \"time\"" },
		{ HEAD "\"event\":\"policy\",\"data_sha256\":\"ABC\",",
		  "line 5: not a valid record: \"data_sha256\" is not 64 lower-case hex digits" },
		{ HEAD "\"event\":\"policy\",\"recovered\":\"yes\",",
		  "line 5: not a valid record: \"recovered\" is not \"truncated\"" },
	};
	const char *middles[5];
	struct pg_chain c;

	memcpy(middles, ok, sizeof ok);
	write_chained(middles, 4);
	c = verify_work(false);
	expect(&c, PG_CHAIN_OK, 0, NULL);
	ck_assert_uint_eq(c.policies, 1);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		middles[4] = cases[i][0];
		write_chained(middles, 5);
		c = verify_work(false);
		expect(&c, PG_CHAIN_INVALID, 5, cases[i][1]);
	}
}
END_TEST

/* The start, tamper and checkpoint records: a start or a checkpoint keeps
 * a log intact (a checkpoint's signature is only checked with a key:
 * test_audit_rotate.c); a tamper record, chained correctly, does not, and
 * is reported even when it is not the last line. */
START_TEST(writer_records)
{
	const char *middles[] = {
		HEAD "\"event\":\"start\",\"pid\":42,\"module\":\"/usr/lib/softhsm/libsofthsm2.so\",",
		HEAD "\"event\":\"decision\",\"decision\":\"allow\",",
		HEAD "\"event\":\"checkpoint\",\"pid\":42,\"key_sha256\":"
		"\"0000000000000000000000000000000000000000000000000000000000000000\","
		"\"signature\":\"00\",",
		HEAD "\"event\":\"tamper\",\"reason\":\"the file is 10 bytes long\",\"pid\":42,"
		"\"seen_seq\":9,\"seen_size\":900,\"found_size\":10,",
		HEAD "\"event\":\"decision\",\"decision\":\"deny\",",
	};
	struct pg_chain c;

	write_chained(middles, 3);
	c = verify_work(false);
	expect(&c, PG_CHAIN_OK, 0, NULL);
	ck_assert_uint_eq(c.starts, 1);
	ck_assert_uint_eq(c.checkpoints, 1);
	write_chained(middles, 5);
	c = verify_work(false);
	expect(&c, PG_CHAIN_TAMPER, 4, "line 4: tamper record: process 42 found the log cut behind "
	       "it (it had seen seq 9): the file is 10 bytes long");
	ck_assert_uint_eq(c.records, 5);        /* the chain was still checked to the end */
	middles[0] = HEAD "\"event\":\"start\",";
	write_chained(middles, 1);
	c = verify_work(false);
	expect(&c, PG_CHAIN_INVALID, 1, "line 1: start record without a \"pid\"");
	middles[0] = HEAD "\"event\":\"tamper\",\"pid\":1,";
	write_chained(middles, 1);
	c = verify_work(false);
	expect(&c, PG_CHAIN_INVALID, 1, "line 1: tamper record without \"reason\" and \"seen_seq\"");
}
END_TEST

static struct pg_chain
verify_with(uint64_t since, uint64_t last, uint64_t head_seq, const char *head_line, size_t head_len)
{
	struct pg_chain chain;

	pg_chain_init(&chain);
	chain.since_seq = since;
	chain.expect_last_seq = last;
	chain.head_seq = head_seq;
	if (head_line != NULL)
		ck_assert(pg_sha256(head_line, head_len, chain.head_hash));
	ck_assert_int_eq(pg_audit_verify_path(work_path, &chain), 0);
	return chain;
}

/* The tail cut off: intact as a chain, but not the log the operator knew. */
START_TEST(expect_last_seq_and_head)
{
	const char *line9 = base + line_start(9);
	size_t len9 = line_len_with_newline(9) - 1;
	struct pg_chain c;
	char *forged;

	t_write(work_path, base, base_len);
	c = verify_with(0, 11, 9, line9, len9);
	expect(&c, PG_CHAIN_OK, 0, NULL);
	c = verify_with(0, 12, 0, NULL, 0);
	expect(&c, PG_CHAIN_CUT, 11, "line 11: the log ends at seq 11, before seq 12 "
	       "(--expect-last-seq): records were cut off its end");

	/* Lines 10 and 11 cut off: plain verify cannot tell. */
	t_write(work_path, base, line_start(10));
	c = verify_with(0, 0, 0, NULL, 0);
	expect(&c, PG_CHAIN_OK, 0, NULL);
	c = verify_with(0, 11, 0, NULL, 0);
	expect(&c, PG_CHAIN_CUT, 9, "line 9: the log ends at seq 9, before seq 11 "
	       "(--expect-last-seq): records were cut off its end");
	c = verify_with(0, 0, 9, line9, len9);
	expect(&c, PG_CHAIN_OK, 0, NULL);
	c = verify_with(0, 0, 10, line9, len9);
	expect(&c, PG_CHAIN_CUT, 9, "line 9: the log ends at seq 9, before seq 10 "
	       "(--expect-head): records were cut off its end");

	/* Line 9 rewritten (and everything after it chained again): the seq
	 * is there, the bytes are not the ones kept. */
	forged = malloc(base_len);
	memcpy(forged, base, line_start(9));
	t_write(work_path, forged, line_start(9));
	free(forged);
	{
		char line[600], prev[65];
		const char *l8 = base + line_start(8);
		FILE *f = fopen(work_path, "a");

		sha256_hex(l8, line_len_with_newline(8) - 1, prev);
		snprintf(line, sizeof line, "{\"seq\":9,%s\"event\":\"decision\",\"decision\":"
		         "\"allow\",\"prev\":\"%s\"}", HEAD, prev);
		fprintf(f, "%s\n", line);
		fclose(f);
	}
	c = verify_with(0, 9, 0, NULL, 0);
	expect(&c, PG_CHAIN_OK, 0, NULL);
	c = verify_with(0, 0, 9, line9, len9);
	ck_assert_int_eq(c.problem, PG_CHAIN_HEAD);
	ck_assert_uint_eq(c.problem_line, 9);
	ck_assert_ptr_nonnull(strstr(c.message, "seq 9 is not the record that was kept"));
}
END_TEST

/* --since-seq: the chain from a record on, e.g. a log whose front was
 * archived; a seq that is not there fails. */
START_TEST(since_seq)
{
	struct pg_chain c;

	t_write(work_path, base + line_start(5), base_len - line_start(5));
	c = verify_with(0, 0, 0, NULL, 0);
	expect(&c, PG_CHAIN_START, 1, NULL);
	c = verify_with(5, 11, 0, NULL, 0);
	expect(&c, PG_CHAIN_OK, 0, NULL);
	ck_assert_uint_eq(c.records, 7);
	ck_assert_uint_eq(c.first_seq, 5);
	t_write(work_path, base, base_len);
	c = verify_with(7, 0, 0, NULL, 0);
	expect(&c, PG_CHAIN_OK, 0, NULL);
	ck_assert_uint_eq(c.records, 5);
	c = verify_with(12, 0, 0, NULL, 0);
	expect(&c, PG_CHAIN_CUT, 11, "line 11: no record with seq 12 (--since-seq) in the log");
	/* After the start, edits are still found. */
	t_write(work_path, base, base_len);
	{
		FILE *f = fopen(work_path, "r+");

		fseek(f, (long)line_start(9) + 3, SEEK_SET);
		fputc('7', f);
		fclose(f);
	}
	c = verify_with(5, 0, 0, NULL, 0);
	ck_assert_int_ne(c.problem, PG_CHAIN_OK);
}
END_TEST

START_TEST(parse_time)
{
	struct pg_instant t;

	ck_assert(pg_audit_parse_time("2026-11-23T17:45:58.123456Z", &t));
	ck_assert_int_eq(t.sec, 1795455958);
	ck_assert_int_eq(t.usec, 123456);
	ck_assert(pg_audit_parse_time("2026-11-23", &t));
	ck_assert_int_eq(t.sec, 1795392000);
	ck_assert(pg_audit_parse_time("2026-11-23 17:45", &t));
	ck_assert_int_eq(t.sec, 1795455900);
	ck_assert(pg_audit_parse_time("2026-11-23T17:45:58.5", &t));
	ck_assert_int_eq(t.usec, 500000);
	ck_assert(!pg_audit_parse_time("2026-02-30", &t));
	ck_assert(!pg_audit_parse_time("2026-13-01", &t));
	ck_assert(!pg_audit_parse_time("2026-1-01", &t));
	ck_assert(!pg_audit_parse_time("2026-11-23T25:00", &t));
	ck_assert(!pg_audit_parse_time("2026-11-23T17:45:58+01:00", &t));
	ck_assert(!pg_audit_parse_time("yesterday", &t));
}
END_TEST

static char *
find(const struct pg_audit_find_query *q, size_t *printed, char **warnings)
{
	char *out = NULL, *warn = NULL;
	size_t out_len, warn_len;
	FILE *fo = open_memstream(&out, &out_len), *fw = open_memstream(&warn, &warn_len);
	FILE *f = fopen(work_path, "r");

	ck_assert_int_eq(pg_audit_find_stream(f, "work.jsonl", q, fo, fw, printed), 0);
	fclose(f);
	fclose(fo);
	fclose(fw);
	if (warnings != NULL)
		*warnings = warn;
	else
		free(warn);
	return out;
}

static void
hex_of(unsigned char tag, int i, char out[65])
{
	unsigned char h[32];

	hash_of(tag, i, h);
	pg_hex_encode(h, 32, out);
}

START_TEST(find_pairs_decisions_and_results)
{
	struct pg_audit_find_query q = { 0 };
	char data_hex[65], sig_hex[65], *out, *warn, *lines;
	size_t printed;

	t_write(work_path, base, base_len);
	/* By data hash: the allow record of pair 2 (seq 5) and its result (6). */
	hex_of(0xda, 2, data_hex);
	q.data_sha256 = data_hex;
	q.json = true;
	out = find(&q, &printed, NULL);
	ck_assert_uint_eq(printed, 2);
	lines = strndup(base + line_start(5), line_start(7) - line_start(5));
	ck_assert_str_eq(out, lines);
	free(lines);
	free(out);

	/* Readable form of the same. */
	q.json = false;
	out = find(&q, &printed, NULL);
	ck_assert_msg(strstr(out, " seq 5 allow operation=sign key=key-0 rule=rule-x mechanism="
	                     "CKM_RSA_PKCS data_sha256=") != NULL, "%s", out);
	ck_assert_msg(strstr(out, " seq 6 result ref=5 rv=CKR_OK signature_sha256=") != NULL, "%s",
	              out);
	free(out);

	/* By signature hash: the result (seq 8) and its decision (seq 7). */
	memset(&q, 0, sizeof q);
	hex_of(0x5a, 3, sig_hex);
	q.signature_sha256 = sig_hex;
	out = find(&q, &printed, NULL);
	ck_assert_uint_eq(printed, 2);
	ck_assert(strstr(out, " seq 7 allow ") != NULL && strstr(out, " seq 8 result ") != NULL);
	free(out);

	/* By key: pairs 1 and 3 with their results. */
	memset(&q, 0, sizeof q);
	q.key = "key-1";
	out = find(&q, &printed, NULL);
	ck_assert_uint_eq(printed, 4);
	free(out);
	q.key = "pkcs11:token=release;object=codesign-rsa";
	out = find(&q, &printed, NULL);
	ck_assert_uint_eq(printed, 11);
	free(out);

	/* Denials: the reason is shown, its escape sequence defused. */
	memset(&q, 0, sizeof q);
	q.decision = "deny";
	out = find(&q, &printed, NULL);
	ck_assert_uint_eq(printed, 1);
	ck_assert_msg(strstr(out, " seq 11 deny ") != NULL &&
	              strstr(out, "reason=\"no rule allows \\x1b[2Jit\"") != NULL, "%s", out);
	ck_assert_ptr_null(strchr(out, 0x1b));
	free(out);

	/* Time ranges: since inclusive, until exclusive. */
	memset(&q, 0, sizeof q);
	q.has_since = true;
	ck_assert(pg_audit_parse_time("2000-01-01", &q.since));
	q.has_until = true;
	ck_assert(pg_audit_parse_time("2999-01-01", &q.until));
	out = find(&q, &printed, &warn);
	ck_assert_uint_eq(printed, 11);
	ck_assert_str_eq(warn, "");
	free(out);
	free(warn);
	ck_assert(pg_audit_parse_time("2001-01-01", &q.until));
	out = find(&q, &printed, NULL);
	ck_assert_uint_eq(printed, 0);
	ck_assert_str_eq(out, "");
	free(out);
}
END_TEST

START_TEST(find_warns_on_broken_chain)
{
	struct pg_audit_find_query q = { .decision = "allow" };
	char *copy = malloc(base_len), *out, *warn;
	size_t printed;

	memcpy(copy, base, base_len);
	*strstr(copy + line_start(3), "rule-x") = 'R';
	t_write(work_path, copy, base_len);
	free(copy);
	out = find(&q, &printed, &warn);
	ck_assert_uint_eq(printed, 10);         /* 5 allow records and their results */
	ck_assert_str_eq(warn, "p11gate audit find: warning: work.jsonl: line 3: record was edited "
	                 "(prev of line 4 does not match) (the log is not intact: run 'p11gate "
	                 "audit verify')\n");
	free(out);
	free(warn);
}
END_TEST

/* A record names the key its rule named and lists every key the object
 * matched: `find --key` of any of them finds the use (with its result),
 * and a log mixing such records with older ones (no keys_matched) is
 * intact. */
START_TEST(find_by_every_matched_key)
{
	static const char *const both[] = { "release", "codesign-rsa" };
	struct pg_audit_find_query q = { .key = "release" };
	struct pg_audit_record r;
	struct pg_chain chain;
	char err[256], *out, *text;
	size_t printed, len;
	uint64_t seq;
	pg_audit *a;

	t_write(work_path, base, base_len);        /* 11 records without keys_matched */
	a = pg_audit_open(work_path, false, false, err, sizeof err);
	ck_assert_msg(a != NULL, "%s", err);
	t_record(&r, "ci-signs");
	r.key_name = "codesign-rsa";
	r.keys_matched = both;
	r.n_keys_matched = 2;
	ck_assert_int_eq(pg_audit_append(a, &r, &seq), 0);
	ck_assert_uint_eq(seq, 12);
	memset(&r, 0, sizeof r);
	r.event = PG_AUDIT_RESULT;
	r.ref = seq;
	r.has_rv = true;
	r.rv = CKR_OK;
	ck_assert_int_eq(pg_audit_append(a, &r, &seq), 0);
	pg_audit_close(a);

	text = t_read(work_path, &len);
	ck_assert_msg(strstr(text, "\"key\":\"codesign-rsa\",\"key_uri\":") != NULL &&
	              strstr(text, "\"keys_matched\":[\"release\",\"codesign-rsa\"],") != NULL,
	              "%s", text);
	free(text);
	chain = verify_work(false);
	ck_assert_int_eq(chain.problem, PG_CHAIN_OK);

	/* The key the object also matched finds the use and its result. */
	out = find(&q, &printed, NULL);
	ck_assert_uint_eq(printed, 2);
	ck_assert_msg(strstr(out, " seq 12 allow operation=sign key=codesign-rsa "
	                     "keys_matched=release,codesign-rsa rule=ci-signs ") != NULL, "%s", out);
	ck_assert_msg(strstr(out, " seq 13 result ref=12 ") != NULL, "%s", out);
	free(out);
	q.key = "codesign-rsa";
	out = find(&q, &printed, NULL);
	ck_assert_uint_eq(printed, 2);
	free(out);
	/* Older records still match by key. */
	q.key = "key-1";
	out = find(&q, &printed, NULL);
	ck_assert_uint_eq(printed, 4);
	free(out);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("audit-verify");
	TCase *tc = tcase_create("verify");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, intact_log_summary);
	tcase_add_test(tc, edited_byte);
	tcase_add_test(tc, shaped_line_is_no_crash_debris);
	tcase_add_test(tc, deleted_line);
	tcase_add_test(tc, swapped_lines);
	tcase_add_test(tc, truncated_last_line);
	tcase_add_test(tc, cut_first_line);
	tcase_add_test(tc, prepended_line);
	tcase_add_test(tc, per_event_rules);
	tcase_add_test(tc, writer_records);
	tcase_add_test(tc, expect_last_seq_and_head);
	tcase_add_test(tc, since_seq);
	tcase_add_test(tc, parse_time);
	tcase_add_test(tc, find_pairs_decisions_and_results);
	tcase_add_test(tc, find_warns_on_broken_chain);
	tcase_add_test(tc, find_by_every_matched_key);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
