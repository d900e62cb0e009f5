/* SPDX-License-Identifier: Apache-2.0
 *
 * pg_escape: what a caller-controlled string looks like in a readable line.
 * Every class of character that could forge a line or a field is tried.
 */
#include "p11gate/common.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
esc(const char *s, enum pg_escape_mode mode)
{
	static char buf[512];

	return pg_esc(s, mode, buf, sizeof buf);
}

START_TEST(controls_and_newlines)
{
	ck_assert_str_eq(esc("a\nb", PG_ESC_TEXT), "a\\x0ab");
	ck_assert_str_eq(esc("\n p11gate: policy reloaded", PG_ESC_TEXT),
	                 "\\x0a p11gate: policy reloaded");
	ck_assert_str_eq(esc("x\ry\x1b[2J\x7f", PG_ESC_TEXT), "x\\x0dy\\x1b[2J\\x7f");
	ck_assert_str_eq(esc("\xc2\x85\xc2\x9b", PG_ESC_TEXT), "\\u0085\\u009b");  /* NEL, CSI */
	ck_assert_str_eq(esc("a\xe2\x80\xa8" "b\xe2\x80\xa9", PG_ESC_TEXT), "a\\u2028b\\u2029");
}
END_TEST

START_TEST(bidi_and_invisible)
{
	/* U+202E RIGHT-TO-LEFT OVERRIDE, the isolates, LRM/RLM, ALM. */
	ck_assert_str_eq(esc("/tmp/\xe2\x80\xae" "KO_RKC=vr", PG_ESC_TEXT), "/tmp/\\u202eKO_RKC=vr");
	ck_assert_str_eq(esc("\xe2\x81\xa6\xe2\x81\xa9\xe2\x80\x8f\xd8\x9c", PG_ESC_TEXT),
	                 "\\u2066\\u2069\\u200f\\u061c");
	/* Zero-width space, joiner, word joiner, BOM, soft hyphen, a tag. */
	ck_assert_str_eq(esc("a\xe2\x80\x8b" "b\xe2\x80\x8d" "c\xe2\x81\xa0" "d\xef\xbb\xbf"
	                     "e\xc2\xad" "f\xf3\xa0\x80\x81", PG_ESC_TEXT),
	                 "a\\u200bb\\u200dc\\u2060d\\ufeffe\\u00adf\\U000e0001");
	/* Private use, a noncharacter. */
	ck_assert_str_eq(esc("\xee\x80\x80\xef\xbf\xbf", PG_ESC_TEXT), "\\ue000\\uffff");
}
END_TEST

START_TEST(blanks_other_than_space)
{
	ck_assert_str_eq(esc("x\xc2\xa0rv=CKR_OK", PG_ESC_TEXT), "x\\u00a0rv=CKR_OK");
	ck_assert_str_eq(esc("\xe2\x80\x83\xe2\x80\xaf\xe3\x80\x80\xe1\x9a\x80\t", PG_ESC_TEXT),
	                 "\\u2003\\u202f\\u3000\\u1680\\x09");
	/* Look-alikes of '=' and '"'. */
	ck_assert_str_eq(esc("rv\xef\xbc\x9d" "ok\xef\xbc\x82\xe2\x80\x9d", PG_ESC_TEXT),
	                 "rv\\uff1dok\\uff02\\u201d");
}
END_TEST

START_TEST(invalid_utf8)
{
	/* Stray continuation, overlong '/', a surrogate, past U+10FFFF, cut. */
	ck_assert_str_eq(esc("\x80", PG_ESC_TEXT), "\\x80");
	ck_assert_str_eq(esc("\xc0\xaf", PG_ESC_TEXT), "\\xc0\\xaf");
	ck_assert_str_eq(esc("\xed\xa0\x80", PG_ESC_TEXT), "\\xed\\xa0\\x80");
	ck_assert_str_eq(esc("\xf4\x90\x80\x80", PG_ESC_TEXT), "\\xf4\\x90\\x80\\x80");
	ck_assert_str_eq(esc("ab\xe2\x80", PG_ESC_TEXT), "ab\\xe2\\x80");
	/* An overlong NEL (c1 85) must not pass as a character. */
	ck_assert_str_eq(esc("\xc1\x85", PG_ESC_TEXT), "\\xc1\\x85");
	/* Valid text stays as it is. */
	ck_assert_str_eq(esc("Jos\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x91", PG_ESC_TEXT),
	                 "Jos\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x91");
}
END_TEST

START_TEST(values_are_quoted_when_they_could_pass_for_fields)
{
	ck_assert_str_eq(esc("/usr/bin/pkcs11-tool", PG_ESC_VALUE), "/usr/bin/pkcs11-tool");
	ck_assert_str_eq(esc("ci-signer.service", PG_ESC_VALUE), "ci-signer.service");
	ck_assert_str_eq(esc("user@1000.service", PG_ESC_VALUE), "user@1000.service");
	ck_assert_str_eq(esc("", PG_ESC_VALUE), "\"\"");
	ck_assert_str_eq(esc("/tmp/x rv=CKR_OK", PG_ESC_VALUE), "\"/tmp/x rv=CKR_OK\"");
	ck_assert_str_eq(esc("a=b", PG_ESC_VALUE), "\"a=b\"");
	ck_assert_str_eq(esc("a\"b\\c", PG_ESC_VALUE), "\"a\\\"b\\\\c\"");
	ck_assert_str_eq(esc("prog, program x: y", PG_ESC_VALUE), "\"prog, program x: y\"");
	ck_assert_str_eq(esc("Jos\xc3\xa9", PG_ESC_VALUE), "\"Jos\xc3\xa9\"");
	ck_assert_str_eq(esc("x\xc2\xa0rv", PG_ESC_VALUE), "\"x\\u00a0rv\"");
	ck_assert_str_eq(esc("plain", PG_ESC_QUOTED), "\"plain\"");
	/* Text mode leaves quotes and backslashes to the message. */
	ck_assert_str_eq(esc("say \"a\\b\"", PG_ESC_TEXT), "say \"a\\b\"");
}
END_TEST

START_TEST(combining_marks_never_sit_on_our_punctuation)
{
	/* U+0338 COMBINING LONG SOLIDUS OVERLAY first: it would turn our
	 * '=' or '"' into something else. */
	ck_assert_str_eq(esc("\xcc\xb8x", PG_ESC_VALUE), "\"\\u0338x\"");
	ck_assert_str_eq(esc("\xcc\xb8x", PG_ESC_TEXT), "\\u0338x");
	/* After a character of the value it stays (an accent). */
	ck_assert_str_eq(esc("e\xcc\x81", PG_ESC_TEXT), "e\xcc\x81");
	/* After an escape it is escaped too. */
	ck_assert_str_eq(esc("\n\xcc\x81", PG_ESC_TEXT), "\\x0a\\u0301");
}
END_TEST

START_TEST(embedded_nul_and_length)
{
	char buf[64];

	ck_assert_str_eq(pg_escape("ab\0cd", 5, PG_ESC_VALUE, buf, sizeof buf), "\"ab\\x00cd\"");
	ck_assert_str_eq(pg_esc(NULL, PG_ESC_VALUE, buf, sizeof buf), "\"\"");
}
END_TEST

START_TEST(truncation_keeps_escapes_whole)
{
	char buf[16], big[4096];
	size_t len;

	/* 15 characters of room: never half of "\u202e", always "...". */
	ck_assert_str_eq(pg_esc("abcdefgh\xe2\x80\xae" "ijkl", PG_ESC_TEXT, buf, sizeof buf),
	                 "abcdefgh...");
	ck_assert_str_eq(pg_esc("abcdefghijklmnopqrstuvwxyz", PG_ESC_QUOTED, buf, sizeof buf),
	                 "\"abcdefghij...\"");
	ck_assert_str_eq(pg_esc("abcdefghijklmn", PG_ESC_TEXT, buf, sizeof buf), "abcdefghijklmn");
	/* Valid text is never cut inside a character. */
	memset(big, 0, sizeof big);
	for (size_t i = 0; i + 2 < 100; i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	pg_esc(big, PG_ESC_TEXT, buf, sizeof buf);
	len = strlen(buf);
	ck_assert_uint_le(len, 15);
	ck_assert_str_eq(buf + len - 3, "...");
	ck_assert_int_eq((unsigned char)buf[len - 4], 0xa9);
}
END_TEST

START_TEST(fputs_matches_the_buffer_form)
{
	const char *s = "/tmp/\xe2\x80\xae x\n\"q\"\\\xff";
	char buf[256], *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	ck_assert_ptr_nonnull(f);
	pg_escape_fputs(f, s, strlen(s), PG_ESC_VALUE);
	fclose(f);
	ck_assert_str_eq(text, pg_esc(s, PG_ESC_VALUE, buf, sizeof buf));
	ck_assert_str_eq(text, "\"/tmp/\\u202e x\\x0a\\\"q\\\"\\\\\\xff\"");
	free(text);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("escape");
	TCase *tc = tcase_create("escape");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, controls_and_newlines);
	tcase_add_test(tc, bidi_and_invisible);
	tcase_add_test(tc, blanks_other_than_space);
	tcase_add_test(tc, invalid_utf8);
	tcase_add_test(tc, values_are_quoted_when_they_could_pass_for_fields);
	tcase_add_test(tc, combining_marks_never_sit_on_our_punctuation);
	tcase_add_test(tc, embedded_nul_and_length);
	tcase_add_test(tc, truncation_keeps_escapes_whole);
	tcase_add_test(tc, fputs_matches_the_buffer_form);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
