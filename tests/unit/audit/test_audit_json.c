/* SPDX-License-Identifier: Apache-2.0
 *
 * The audit log's JSON: escaping of hostile strings (control characters,
 * quotes, invalid UTF-8 from a token label) always yields valid JSON that
 * reads back to the intended text, and the strict reader refuses what a
 * lenient one might read differently (duplicate keys, lone surrogates,
 * invalid UTF-8, deep nesting, trailing garbage).
 */
#include "audit_buf.h"
#include "audit_json.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Whatever the bytes, the escaped string parses, and valid text reads back
 * unchanged. */
START_TEST(escape_roundtrip_all_bytes)
{
	char raw[256], err[128], *e;
	struct pg_json *v;

	for (int i = 0; i < 256; i++)
		raw[i] = (char)(i == 0 ? 'x' : i);
	e = escaped(raw, sizeof raw);
	v = pg_json_parse(e, strlen(e), err, sizeof err);
	ck_assert_msg(v != NULL, "%s", err);
	ck_assert_int_eq(v->type, PG_JSON_STRING);
	/* ASCII survives exactly. */
	ck_assert(memcmp(v->text, raw, 128) == 0);
	pg_json_free(v);
	free(e);

	e = escaped("a\"\\\n\x01 \xc3\xa9", 8);
	v = pg_json_parse(e, strlen(e), err, sizeof err);
	ck_assert_msg(v != NULL, "%s", err);
	ck_assert_str_eq(v->text, "a\"\\\n\x01 \xc3\xa9");
	pg_json_free(v);
	free(e);
}
END_TEST

static void
rejects(const char *text, const char *want_error)
{
	char err[200];
	struct pg_json *v = pg_json_parse(text, strlen(text), err, sizeof err);

	ck_assert_msg(v == NULL, "accepted: %s", text);
	ck_assert_msg(strstr(err, want_error) != NULL, "'%s': error '%s', wanted '%s'", text, err,
	              want_error);
}

START_TEST(parser_rejects)
{
	rejects("{\"a\":1,\"a\":2}", "column 8: duplicate key \"a\"");
	rejects("{\"a\":1", "column 7: expected ',' or '}', found end of line");
	rejects("{\"a\":1}x", "column 8: expected end of line");
	rejects("{\"a\":01}", "leading zeros");
	rejects("{\"a\":1.}", "digit after '.'");
	rejects("{\"a\":-}", "expected a digit");
	rejects("{\"a\":\"\\ud800\"}", "without its low half");
	rejects("{\"a\":\"\\udc00\"}", "lone low surrogate");
	rejects("{\"a\":\"\\x41\"}", "unknown escape");
	rejects("{\"a\":\"\\u12\"}", "four hex digits");
	rejects("{\"a\":\"x\ny\"}", "control character 0x0a");
	rejects("{\"a\":\"\xff\"}", "invalid UTF-8 byte 0xff");
	rejects("{\"a\":\"\xc0\xaf\"}", "invalid UTF-8");
	rejects("{\"a\":tru}", "expected a value");
	rejects("{a:1}", "expected a key in double quotes");
	rejects("{\"a\" 1}", "expected ':'");
	rejects("[1,]", "expected a value");
	rejects("", "column 1: expected a value");
	rejects("{\"a\\u0000b\":1}", "NUL");
	rejects("{\"a\":\"unterminated", "string not closed");
}
END_TEST

START_TEST(parser_depth_and_width_bounded)
{
	char deep[200], err[200];
	struct pg_json *v;
	size_t n = 0;

	for (int i = 0; i < PG_JSON_MAX_DEPTH + 1; i++)
		deep[n++] = '[';
	for (int i = 0; i < PG_JSON_MAX_DEPTH + 1; i++)
		deep[n++] = ']';
	v = pg_json_parse(deep, n, err, sizeof err);
	ck_assert(v == NULL);
	ck_assert(strstr(err, "nested more than") != NULL);
	/* One level less is fine. */
	v = pg_json_parse(deep + 1, n - 2, err, sizeof err);
	ck_assert_msg(v != NULL, "%s", err);
	pg_json_free(v);

	/* An object with more members than the bound. */
	char *wide = malloc(PG_JSON_MAX_MEMBERS * 16 + 16);
	size_t w = 0;
	wide[w++] = '{';
	for (int i = 0; i <= PG_JSON_MAX_MEMBERS; i++)
		w += (size_t)sprintf(wide + w, "%s\"k%d\":0", i ? "," : "", i);
	wide[w++] = '}';
	v = pg_json_parse(wide, w, err, sizeof err);
	ck_assert(v == NULL);
	ck_assert(strstr(err, "more than") != NULL);
	free(wide);
}
END_TEST

START_TEST(parser_accepts_and_reads)
{
	const char *text = " {\"seq\":18446744073709551615,\"s\":\"\\u00e9\\ud83d\\udd11\\/\","
	                   "\"n\":-1.5e+3,\"a\":[true,false,null,{}],\"o\":{\"x\":[]}} ";
	char err[200];
	struct pg_json *v = pg_json_parse(text, strlen(text), err, sizeof err);
	uint64_t u;

	ck_assert_msg(v != NULL, "%s", err);
	ck_assert(pg_json_u64(pg_json_get(v, "seq"), &u));
	ck_assert(u == UINT64_MAX);
	ck_assert_str_eq(pg_json_get_string(v, "s"), "\xc3\xa9\xf0\x9f\x94\x91/");
	ck_assert(!pg_json_u64(pg_json_get(v, "n"), &u));
	ck_assert_str_eq(pg_json_get(v, "n")->text, "-1.5e+3");
	ck_assert_int_eq(pg_json_get(v, "a")->n, 4);
	ck_assert_int_eq(pg_json_get(v, "a")->items[2].type, PG_JSON_NULL);
	ck_assert_int_eq(pg_json_get(pg_json_get(v, "o"), "x")->type, PG_JSON_ARRAY);
	ck_assert_ptr_null(pg_json_get(v, "missing"));
	ck_assert_ptr_null(pg_json_get_string(v, "seq"));
	pg_json_free(v);

	/* 2^64 does not fit. */
	v = pg_json_parse("{\"seq\":18446744073709551616}", 28, err, sizeof err);
	ck_assert(v != NULL);
	ck_assert(!pg_json_u64(pg_json_get(v, "seq"), &u));
	pg_json_free(v);
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
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
