/* SPDX-License-Identifier: Apache-2.0
 *
 * The audit log's JSON: escaping of hostile strings (control characters,
 * quotes, invalid UTF-8 from a token label) always yields valid JSON that
 * reads back to the intended text; the reader (jansson with p11gate's
 * options and bounds) refuses what a lenient one might read differently
 * (duplicate keys, lone surrogates, invalid UTF-8, NUL in a key, integers
 * past int64, deep nesting, trailing garbage); and the writer's own record
 * shape (pg_audit_record_frame, all p11gate.so has) accepts every line the
 * reader takes for a record and no prefix of one.
 */
#include "audit_buf.h"
#include "audit_json.h"
#include "audit_tail.h"
#include "audit_test_util.h"
#include "p11gate/audit.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *
escaped(const char *s, size_t len)
{
	struct pg_buf b;

	pg_buf_init(&b);
	pg_buf_json_string_n(&b, s, len);
	ck_assert(!b.failed);
	return b.data;
}

START_TEST(escape_plain_and_specials)
{
	char *e;

	e = escaped("release-rsa", 11);
	ck_assert_str_eq(e, "\"release-rsa\"");
	free(e);
	e = escaped("a\"b\\c/d", 7);
	ck_assert_str_eq(e, "\"a\\\"b\\\\c/d\"");
	free(e);
	e = escaped("\n\t\x01\x1f\x7f", 5);
	ck_assert_str_eq(e, "\"\\u000a\\u0009\\u0001\\u001f\\u007f\"");
	free(e);
	e = escaped("", 0);
	ck_assert_str_eq(e, "\"\"");
	free(e);
}
END_TEST

START_TEST(escape_utf8)
{
	/* Valid UTF-8 is kept: 2, 3 and 4 byte forms. */
	const char ok[] = "Z\xc3\xbcrich \xe2\x82\xac \xf0\x9f\x94\x91";
	/* Invalid: lone continuation, overlong '/', surrogate D800, F5 lead,
	 * a 3-byte form cut short at the end. */
	const char bad[] = "\x80|\xc0\xaf|\xed\xa0\x80|\xf5\x80\x80\x80|\xe2\x82";
	char *e;

	e = escaped(ok, sizeof ok - 1);
	ck_assert_str_eq(e, "\"Z\xc3\xbcrich \xe2\x82\xac \xf0\x9f\x94\x91\"");
	free(e);
	e = escaped(bad, sizeof bad - 1);
	ck_assert_str_eq(e, "\"\\u0080|\\u00c0\\u00af|\\u00ed\\u00a0\\u0080|"
	                    "\\u00f5\\u0080\\u0080\\u0080|\\u00e2\\u0082\"");
	free(e);
}
END_TEST

/* The string e as the value of a one-member object, parsed. */
static json_t *
parse_member(const char *e)
{
	char text[2048], err[200];
	json_t *v;

	snprintf(text, sizeof text, "{\"s\":%s}", e);
	v = pg_json_parse(text, strlen(text), err, sizeof err);
	ck_assert_msg(v != NULL, "%s", err);
	return v;
}

/* Whatever the bytes, the escaped string parses, and valid text reads back
 * unchanged.  A NUL byte (written as \u0000) is read, but the string is no
 * C string to the record checks. */
START_TEST(escape_roundtrip_all_bytes)
{
	const json_t *s;
	char raw[256], *e;
	json_t *v;

	for (int i = 0; i < 256; i++)
		raw[i] = (char)i;
	e = escaped(raw, sizeof raw);
	v = parse_member(e);
	s = json_object_get(v, "s");
	ck_assert(json_is_string(s));
	ck_assert_uint_eq(json_string_length(s), 128 + 2 * 128);    /* U+0080..U+00FF */
	/* ASCII, NUL included, survives exactly. */
	ck_assert(memcmp(json_string_value(s), raw, 128) == 0);
	ck_assert_ptr_null(pg_json_string(s));
	ck_assert_ptr_null(pg_json_get_string(v, "s"));
	json_decref(v);
	free(e);

	e = escaped("a\"\\\n\x01 \xc3\xa9", 8);
	v = parse_member(e);
	ck_assert_str_eq(pg_json_get_string(v, "s"), "a\"\\\n\x01 \xc3\xa9");
	json_decref(v);
	free(e);
}
END_TEST

static void
rejects(const char *text, size_t len, const char *want_error)
{
	char err[200];
	json_t *v = pg_json_parse(text, len, err, sizeof err);

	ck_assert_msg(v == NULL, "accepted: %s", text);
	ck_assert_msg(strstr(err, want_error) != NULL, "'%s': error '%s', wanted '%s'", text, err,
	              want_error);
	/* The message quotes input: only printable ASCII. */
	for (const char *c = err; *c != '\0'; c++)
		ck_assert_msg(*c >= 0x20 && *c < 0x7f, "'%s': unprintable byte in '%s'", text, err);
}

#define REJECTS(literal, want) rejects(literal, sizeof literal - 1, want)

/* What the old hand-written reader refused, refused again (the messages
 * are jansson's). */
START_TEST(parser_rejects)
{
	REJECTS("{\"a\":1,\"a\":2}", "column 10: duplicate object key");
	REJECTS("{\"s\":{\"b\":[],\"b\":{}}}", "duplicate object key");
	REJECTS("{\"a\":1", "column 6: '}' expected near end of file");
	REJECTS("{\"a\":1}x", "column 8: end of file expected near 'x'");
	REJECTS("{\"a\":1}\0", "end of file expected");
	REJECTS("{\"a\":1}{}", "end of file expected");
	REJECTS("{\"a\":01}", "invalid token");
	REJECTS("{\"a\":1.}", "invalid token");
	REJECTS("{\"a\":-}", "invalid token");
	REJECTS("{\"a\":.5}", "invalid token");
	REJECTS("{\"a\":+1}", "invalid token");
	REJECTS("{\"a\":NaN}", "invalid token");
	REJECTS("{\"a\":\"\\ud800\"}", "invalid Unicode '\\uD800'");
	REJECTS("{\"a\":\"\\udc00\"}", "invalid Unicode '\\uDC00'");
	REJECTS("{\"a\":\"\\ud800\\u0041\"}", "invalid Unicode");
	REJECTS("{\"a\":\"\\x41\"}", "invalid escape");
	REJECTS("{\"a\":\"\\u12\"}", "invalid escape");
	REJECTS("{\"a\":\"x\ny\"}", "unexpected newline");
	REJECTS("{\"a\":\"x\x01y\"}", "control character 0x1");
	REJECTS("{\"a\":\"x\x1b[31my\"}", "control character 0x1b");
	/* Invalid UTF-8: a stray byte, an overlong form, an encoded
	 * surrogate, a code point past U+10FFFF, a sequence cut short. */
	REJECTS("{\"a\":\"\xff\"}", "unable to decode byte 0xff");
	REJECTS("{\"a\":\"\xc0\xaf\"}", "unable to decode byte 0xc0");
	REJECTS("{\"a\":\"\xe0\x80\xaf\"}", "unable to decode byte 0xe0");
	REJECTS("{\"a\":\"\xed\xa0\x80\"}", "unable to decode byte 0xed");
	REJECTS("{\"a\":\"\xf4\x90\x80\x80\"}", "unable to decode byte 0xf4");
	REJECTS("{\"a\":\"\xe2\x82\"}", "unable to decode byte 0xe2");
	REJECTS("{\"\xff\":1}", "unable to decode byte 0xff");
	REJECTS("\xef\xbb\xbf{\"a\":1}", "'[' or '{' expected");      /* a byte order mark */
	REJECTS("{\"a\":tru}", "invalid token");
	REJECTS("{a:1}", "string or '}' expected");
	REJECTS("{'a':1}", "string or '}' expected");
	REJECTS("{\"a\" 1}", "':' expected");
	REJECTS("{\"a\":1,}", "string or '}' expected");
	REJECTS("[1,]", "unexpected token");
	REJECTS("", "column 1: '[' or '{' expected near end of file");
	REJECTS("   ", "'[' or '{' expected");
	REJECTS("\"x\"", "'[' or '{' expected");
	REJECTS("42", "'[' or '{' expected");
	REJECTS("{\"a\\u0000b\":1}", "NUL byte in object key");
	REJECTS("{\"a\":\"unterminated", "premature end of input");
	/* Integers past int64 (the old reader took up to 2^64-1 as a seq)
	 * and reals past a double are refused as a whole: the writer writes
	 * no such number. */
	REJECTS("{\"seq\":9223372036854775808}", "too big integer");
	REJECTS("{\"seq\":18446744073709551615}", "too big integer");
	REJECTS("{\"a\":-9223372036854775809}", "too big negative integer");
	REJECTS("{\"a\":1e400}", "real number overflow");
}
END_TEST

START_TEST(parser_depth_and_width_bounded)
{
	char deep[200], err[200];
	json_t *v;
	size_t n = 0;

	for (int i = 0; i < PG_JSON_MAX_DEPTH + 1; i++)
		deep[n++] = '[';
	for (int i = 0; i < PG_JSON_MAX_DEPTH + 1; i++)
		deep[n++] = ']';
	v = pg_json_parse(deep, n, err, sizeof err);
	ck_assert(v == NULL);
	ck_assert_str_eq(err, "nested more than 32 deep");
	/* One level less is fine. */
	v = pg_json_parse(deep + 1, n - 2, err, sizeof err);
	ck_assert_msg(v != NULL, "%s", err);
	json_decref(v);
	/* Objects count as levels too. */
	v = pg_json_parse("{\"a\":{\"b\":[{}]}}", 16, err, sizeof err);
	ck_assert_msg(v != NULL, "%s", err);
	json_decref(v);

	/* An object with more members than the bound. */
	char *wide = malloc(PG_JSON_MAX_MEMBERS * 16 + 16);
	size_t w = 0;
	wide[w++] = '{';
	for (int i = 0; i <= PG_JSON_MAX_MEMBERS; i++)
		w += (size_t)sprintf(wide + w, "%s\"k%d\":0", i ? "," : "", i);
	wide[w++] = '}';
	v = pg_json_parse(wide, w, err, sizeof err);
	ck_assert(v == NULL);
	ck_assert_str_eq(err, "more than 1024 members in an object");
	/* Nested one level down: the same. */
	memmove(wide + 5, wide, w);
	memcpy(wide, "{\"o\":", 5);
	wide[5 + w] = '}';
	v = pg_json_parse(wide, w + 6, err, sizeof err);
	ck_assert(v == NULL);
	ck_assert_str_eq(err, "more than 1024 members in an object");
	free(wide);

	/* Far deeper than jansson's own bound (2048): refused, no crash. */
	char *abyss = malloc(200000);
	memset(abyss, '[', 100000);
	memset(abyss + 100000, ']', 100000);
	v = pg_json_parse(abyss, 200000, err, sizeof err);
	ck_assert(v == NULL);
	ck_assert_msg(strstr(err, "maximum parsing depth") != NULL, "%s", err);
	free(abyss);
}
END_TEST

START_TEST(parser_accepts_and_reads)
{
	const char *text = " {\"seq\":9223372036854775807,\"s\":\"\\u00e9\\ud83d\\udd11\\/\","
	                   "\"n\":-1.5e+3,\"e\":1E2,\"z\":-0,\"m\":-1,\"a\":[true,false,null,{}],"
	                   "\"o\":{\"x\":[]}}\r\n\t ";
	char err[200];
	json_t *v = pg_json_parse(text, strlen(text), err, sizeof err);
	uint64_t u;

	ck_assert_msg(v != NULL, "%s", err);
	ck_assert(pg_json_u64(json_object_get(v, "seq"), &u));
	ck_assert(u == INT64_MAX);
	ck_assert_str_eq(pg_json_get_string(v, "s"), "\xc3\xa9\xf0\x9f\x94\x91/");
	/* A fraction or exponent is no integer; nor is a negative number. */
	ck_assert(!pg_json_u64(json_object_get(v, "n"), &u));
	ck_assert(!pg_json_u64(json_object_get(v, "e"), &u));
	ck_assert(!pg_json_u64(json_object_get(v, "m"), &u));
	/* -0 is the integer 0 to jansson (the old reader refused it as a
	 * u64): no seq, ref or pid may be 0, and the bytes are hashed. */
	ck_assert(pg_json_u64(json_object_get(v, "z"), &u) && u == 0);
	ck_assert(!pg_json_u64(json_object_get(v, "s"), &u));
	ck_assert(!pg_json_u64(NULL, &u));
	ck_assert_uint_eq(json_array_size(json_object_get(v, "a")), 4);
	ck_assert(json_is_null(json_array_get(json_object_get(v, "a"), 2)));
	ck_assert(json_is_array(json_object_get(json_object_get(v, "o"), "x")));
	ck_assert_ptr_null(json_object_get(v, "missing"));
	ck_assert_ptr_null(pg_json_get_string(v, "seq"));
	ck_assert_ptr_null(pg_json_get_string(NULL, "seq"));
	json_decref(v);
}
END_TEST

/* A whole record as the writer writes it, and one line of a file. */
static char *
writer_line(const char *label, size_t *len)
{
	char *dir = t_tempdir(), *path = t_path(dir, "log"), *data, *line, err[200];
	struct pg_audit_record r;
	pg_audit *a;
	uint64_t seq;

	a = pg_audit_open(path, false, false, err, sizeof err);
	ck_assert_msg(a != NULL, "%s", err);
	t_record(&r, "rule");
	r.token_label = label;
	ck_assert_int_eq(pg_audit_append(a, &r, &seq), 0);
	pg_audit_close(a);
	data = t_read(path, len);
	/* Take the last line (a start record may come first). */
	ck_assert(*len > 0 && data[*len - 1] == '\n');
	data[--*len] = '\0';
	line = strrchr(data, '\n');
	line = strdup(line != NULL ? line + 1 : data);
	*len = strlen(line);
	free(data);
	unlink(path);
	free(path);
	t_rmdir(dir);
	return line;
}

/* The writer recognises its records without parsing JSON; verify parses
 * them and requires the same shape.  A line verify takes for a record the
 * writer does too, and no line cut short by a crash passes either. */
START_TEST(writer_frame_agrees_with_reader)
{
	/* Strings that look like structure: braces, brackets, quotes,
	 * backslashes, a fake end of record. */
	static const char *const labels[] = {
		"release", "}{][", "\\\"}", ",\"prev\":\"0000\"}", "\\", "x\"}\"]",
	};
	unsigned char prev[PG_SHA256_LEN], prev2[PG_SHA256_LEN];
	uint64_t seq, seq2;
	char err[200];

	for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
		size_t len;
		char *line = writer_line(labels[i], &len);
		json_t *rec;

		rec = pg_audit_chain_record(line, len, &seq, prev, err, sizeof err);
		ck_assert_msg(rec != NULL, "%s: %s", line, err);
		ck_assert_str_eq(pg_json_get_string(json_object_get(rec, "token"), "label"), labels[i]);
		json_decref(rec);
		ck_assert(pg_audit_record_frame(line, len, &seq2, prev2));
		ck_assert_uint_eq(seq, seq2);
		ck_assert(memcmp(prev, prev2, sizeof prev) == 0);
		for (size_t cut = 0; cut < len; cut++) {
			ck_assert_msg(!pg_audit_record_frame(line, cut, &seq2, prev2),
			              "the writer takes a prefix of %zu bytes for a record: %.*s", cut,
			              (int)cut, line);
			rec = pg_audit_chain_record(line, cut, &seq2, prev2, err, sizeof err);
			ck_assert_ptr_null(rec);
		}
		free(line);
	}
}
END_TEST

/* form with its one "%s" replaced by with (forms are test data, not
 * format strings). */
static void
fill(char *out, size_t out_len, const char *form, const char *with)
{
	const char *at = strstr(form, "%s");

	ck_assert_ptr_nonnull(at);
	ck_assert_int_lt(snprintf(out, out_len, "%.*s%s%s", (int)(at - form), form, with, at + 2),
	                 (int)out_len);
}

/* Valid JSON records spelled otherwise than the writer spells them are not
 * records (one line, one spelling), and the writer does not take them for
 * records either.  The old reader accepted all of these. */
START_TEST(reader_requires_writer_form)
{
	static const char prev[] = "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"";
	static const char *const forms[] = {
		"{\"seq\":1, \"event\":\"policy\",%s}",          /* a space between members */
		"{\"seq\":1,\"event\":\"policy\",%s }",          /* a space before the end */
		" {\"seq\":1,\"event\":\"policy\",%s}",          /* a space before the start */
		"{\"seq\":1,\"event\":\"policy\",%s}\r",         /* a CRLF line end */
		"{\"seq\":1,\t\"event\":\"policy\",%s}",         /* a tab */
		"{\"event\":\"policy\",\"seq\":1,%s}",           /* another order */
		"{\"seq\":1,%s,\"event\":\"policy\"}",
		"{\"seq\" :1,\"event\":\"policy\",%s}",
	};
	unsigned char hash[PG_SHA256_LEN];
	char line[300], err[200];
	uint64_t seq;

	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		json_t *rec;

		fill(line, sizeof line, forms[i], prev);
		rec = pg_json_parse(line, strlen(line), err, sizeof err);
		ck_assert_msg(rec != NULL, "%s: %s", line, err);
		json_decref(rec);
		rec = pg_audit_chain_record(line, strlen(line), &seq, hash, err, sizeof err);
		ck_assert_msg(rec == NULL, "taken for a record: %s", line);
		ck_assert_msg(strstr(err, "not in the writer's form") != NULL, "%s: %s", line, err);
		ck_assert(!pg_audit_record_frame(line, strlen(line), &seq, hash));
	}
	/* The writer's spelling of the same record is one. */
	snprintf(line, sizeof line, "{\"seq\":1,\"event\":\"policy\",%s}", prev);
	json_decref(pg_audit_chain_record(line, strlen(line), &seq, hash, err, sizeof err));
	ck_assert_msg(err[0] == '\0', "%s", err);
	ck_assert(pg_audit_record_frame(line, strlen(line), &seq, hash) && seq == 1);
}
END_TEST

/* The writer's frame alone: what it refuses that is neither a prefix nor
 * another spelling. */
START_TEST(frame_refuses)
{
	static const char hex[] = "0000000000000000000000000000000000000000000000000000000000000000";
	static const char *const lines[] = {
		"{\"seq\":0,\"prev\":\"%s\"}",                       /* seq 0 */
		"{\"seq\":01,\"prev\":\"%s\"}",                      /* a leading zero */
		"{\"seq\":9223372036854775808,\"prev\":\"%s\"}",     /* past int64 */
		"{\"seq\":-1,\"prev\":\"%s\"}",
		"{\"seq\":1,\"prev\":\"%sA\"}",                      /* 65 digits */
		"{\"seq\":1,\"a\":\"}\",\"prev\":\"%s\"}",           /* fine: control */
		"{\"seq\":1,\"a\":{\"prev\":\"%s\"}",                /* prev inside an inner object */
		"{\"seq\":1,\"a\":\"x}\"},\"prev\":\"%s\"}",         /* closes before the end */
		"{\"seq\":1,\"a\":\"\x01\",\"prev\":\"%s\"}",        /* a raw control byte */
		"{\"seq\":1,\"a\":\"\\\",\"prev\":\"%s\"}",          /* prev inside a string */
	};
	unsigned char prev[PG_SHA256_LEN];
	char line[300];
	uint64_t seq;

	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		fill(line, sizeof line, lines[i], hex);
		ck_assert_msg(pg_audit_record_frame(line, strlen(line), &seq, prev) == (i == 5),
		              "%s", line);
	}
	snprintf(line, sizeof line, "{\"seq\":9223372036854775807,\"prev\":\"%s\"}", hex);
	ck_assert(pg_audit_record_frame(line, strlen(line), &seq, prev) && seq == INT64_MAX);
	snprintf(line, sizeof line, "{\"seq\":1,\"prev\":\"%s\"}", hex);
	line[20] = 'F';                                              /* upper case */
	ck_assert(!pg_audit_record_frame(line, strlen(line), &seq, prev));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("audit-json");
	TCase *tc = tcase_create("json");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, escape_plain_and_specials);
	tcase_add_test(tc, escape_utf8);
	tcase_add_test(tc, escape_roundtrip_all_bytes);
	tcase_add_test(tc, parser_rejects);
	tcase_add_test(tc, parser_depth_and_width_bounded);
	tcase_add_test(tc, parser_accepts_and_reads);
	tcase_add_test(tc, writer_frame_agrees_with_reader);
	tcase_add_test(tc, reader_requires_writer_form);
	tcase_add_test(tc, frame_refuses);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
