/* SPDX-License-Identifier: Apache-2.0
 *
 * A key's lifecycle fields (pins:, not_after, certificate:) and the top
 * level's key_minimum:: their errors at FILE:LINE:COLUMN, and
 * pg_policy_lifecycle's verdict at chosen instants for chosen certificate
 * and key-size facts (the certificates themselves, the CRL and the
 * token are tested end to end in tests/enforce/certificates.sh).
 */
#include "helpers.h"
#include "p11gate/common.h"

#include <check.h>
#include <openssl/obj_mac.h>
#include <stdio.h>
#include <string.h>

#define OLD "1111111111111111111111111111111111111111111111111111111111111111"
#define NEW "2222222222222222222222222222222222222222222222222222222222222222"

static const char policy_yaml[] =
	PG_TEST_HEAD
	"keys:\n"
	"  rotating:\n"
	"    uri: \"pkcs11:token=release;object=codesign-ec\"\n"
	"    owner: t\n"
	"    pins:\n"
	"      - { public_key_sha256: \"" OLD "\", not_after: 2026-09-30 }\n"
	"      - { public_key_sha256: \"" NEW "\" }\n"
	"  certified:\n"
	"    uri: \"pkcs11:token=release;object=codesign-rsa\"\n"
	"    owner: t\n"
	"    public_key_sha256: \"3333333333333333333333333333333333333333333333333333333333333333\"\n"
	"    not_after: 2027-06-30\n"
	"    certificate: { required: true, eku: codeSigning, warn_days: 10 }\n"
	"rules:\n"
	"  - {name: r, effect: deny, keys: [rotating, certified]}\n";

static pg_policy *policy;

static void
setup(void)
{
	struct pg_test_capture cap;

	policy = pg_test_load(policy_yaml, &cap);
	if (policy == NULL || cap.n > 0)
		pg_test_dump(&cap);
	ck_assert_ptr_nonnull(policy);
	ck_assert_uint_eq(cap.n, 0);
}

static void
teardown(void)
{
	pg_policy_unref(policy);
}

static void
judge(const char *key, const struct pg_key_facts *facts, const char *at, struct pg_life_verdict *out)
{
	int idx = pg_policy_key_find(policy, key);

	ck_assert_int_ge(idx, 0);
	pg_policy_lifecycle(policy, idx, facts, pg_test_time(at), -1, out);
}

static struct pg_cert_facts
cert(const char *from, const char *to, int eku)
{
	struct pg_cert_facts c;

	memset(&c, 0, sizeof c);
	c.not_before = pg_test_time(from);
	c.not_after = pg_test_time(to);
	c.serial[0] = 0x10;
	c.serial_len = 1;
	if (eku != 0) {
		c.has_eku = true;
		c.eku[0] = eku;
		c.n_eku = 1;
	}
	return c;
}

START_TEST(pins_retire_the_old_key_and_keep_the_new)
{
	unsigned char old_pin[32], new_pin[32];
	struct pg_key_facts facts = { 0 };
	struct pg_key_match match;
	struct pg_life_verdict v;

	ck_assert(pg_hex_decode(OLD, old_pin, 32));
	ck_assert(pg_hex_decode(NEW, new_pin, 32));
	facts.public_key_sha256 = old_pin;
	judge("rotating", &facts, "2026-09-30T23:59:59Z", &v);
	ck_assert(!v.refuse);
	ck_assert_int_eq(v.status, PG_LIFE_EXPIRING);
	judge("rotating", &facts, "2026-10-01T00:00:00Z", &v);
	ck_assert(v.refuse);
	ck_assert_int_eq(v.status, PG_LIFE_RETIRED);
	ck_assert_str_eq(v.message, "the key is past its pin's not_after 2026-09-30");
	facts.public_key_sha256 = new_pin;
	judge("rotating", &facts, "2030-01-01T00:00:00Z", &v);
	ck_assert(!v.refuse);
	ck_assert_int_eq(v.status, PG_LIFE_OK);
	/* Both pins match the object (an EC key's public objects disagree,
	 * one planted with the new point): the old pin's date holds. */
	facts.public_key_sha256 = NULL;
	facts.public_key_candidates = (const unsigned char (*)[32])(unsigned char[2][32]){ { 0 } };
	memcpy((unsigned char *)facts.public_key_candidates[0], new_pin, 32);
	memcpy((unsigned char *)facts.public_key_candidates[1], old_pin, 32);
	facts.n_public_key_candidates = 2;
	pg_policy_match_key(policy, &facts, &match);
	ck_assert_uint_eq(match.n, 0);   /* no URI facts: match by pin only below */
	judge("rotating", &facts, "2026-10-01T00:00:00Z", &v);
	ck_assert(v.refuse);
	ck_assert_mem_eq(pg_policy_key_pin_matched(policy, (unsigned)pg_policy_key_find(policy, "rotating"),
	                                           &facts), old_pin, 32);
}
END_TEST

START_TEST(not_after_and_end_date)
{
	struct pg_key_certs certs = { .complete = true, .n = 1 };
	struct pg_key_facts facts = { .certs = &certs };
	struct pg_life_verdict v;

	certs.cert[0] = cert("2026-01-01T00:00:00Z", "2030-01-01T00:00:00Z", NID_code_sign);
	judge("certified", &facts, "2027-06-30T23:59:59Z", &v);
	ck_assert(!v.refuse);
	ck_assert_str_eq(v.message, "the key's not_after is 2027-06-30, in 0 days");
	judge("certified", &facts, "2027-07-01T00:00:00Z", &v);
	ck_assert_str_eq(v.message, "the key is past its not_after 2027-06-30");
	/* The token's CKA_END_DATE, earlier than the policy's date. */
	facts.end_date = 20270101;
	judge("certified", &facts, "2027-01-02T00:00:00Z", &v);
	ck_assert(v.refuse);
	ck_assert_str_eq(v.message, "the key is past its CKA_END_DATE on the token 2027-01-01");
	/* One that does not parse counts as past. */
	facts.end_date = 1;
	judge("certified", &facts, "2026-06-01T00:00:00Z", &v);
	ck_assert(v.refuse);
	/* An unnamed key: only CKA_END_DATE and its certificates' dates. */
	facts.end_date = 20270101;
	pg_policy_lifecycle(policy, -1, &facts, pg_test_time("2027-01-02T00:00:00Z"), 30, &v);
	ck_assert_int_eq(v.status, PG_LIFE_RETIRED);
}
END_TEST

START_TEST(every_certificate_must_pass)
{
	struct pg_key_certs certs = { .complete = true };
	struct pg_key_facts facts = { .certs = &certs };
	struct pg_life_verdict v;

	judge("certified", &facts, "2026-06-01T00:00:00Z", &v);
	ck_assert_int_eq(v.status, PG_LIFE_NO_CERTIFICATE);
	ck_assert(v.refuse);
	certs.n = 1;
	certs.cert[0] = cert("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", NID_code_sign);
	judge("certified", &facts, "2026-06-01T00:00:00Z", &v);
	ck_assert_int_eq(v.status, PG_LIFE_OK);
	judge("certified", &facts, "2026-12-22T00:00:00Z", &v);   /* warn_days: 10 */
	ck_assert_int_eq(v.status, PG_LIFE_OK);
	judge("certified", &facts, "2026-12-23T00:00:00Z", &v);
	ck_assert_int_eq(v.status, PG_LIFE_EXPIRING);
	ck_assert_int_eq(v.days_left, 9);
	ck_assert(!v.refuse);
	judge("certified", &facts, "2027-01-01T00:00:01Z", &v);
	ck_assert_int_eq(v.status, PG_LIFE_EXPIRED);
	judge("certified", &facts, "2025-12-31T23:59:59Z", &v);
	ck_assert_int_eq(v.status, PG_LIFE_NOT_YET_VALID);
	/* A valid certificate beside an expired one: still refused. */
	certs.n = 2;
	certs.cert[1] = cert("2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z", NID_code_sign);
	judge("certified", &facts, "2027-02-01T00:00:00Z", &v);
	ck_assert_int_eq(v.status, PG_LIFE_EXPIRED);
	ck_assert(v.refuse);
	/* A certificate without the EKU, or without any EKU extension. */
	certs.cert[0] = cert("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", NID_server_auth);
	judge("certified", &facts, "2026-06-01T00:00:00Z", &v);
	ck_assert_int_eq(v.status, PG_LIFE_WRONG_EKU);
	certs.cert[0] = cert("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 0);
	judge("certified", &facts, "2026-06-01T00:00:00Z", &v);
	ck_assert_int_eq(v.status, PG_LIFE_WRONG_EKU);
	/* Certificates that could not all be read, or were never read. */
	certs.cert[0] = cert("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", NID_code_sign);
	certs.complete = false;
	judge("certified", &facts, "2026-06-01T00:00:00Z", &v);
	ck_assert_int_eq(v.status, PG_LIFE_UNREADABLE);
	facts.certs = NULL;
	judge("certified", &facts, "2026-06-01T00:00:00Z", &v);
	ck_assert(v.refuse);
}
END_TEST

START_TEST(certificate_without_pin_is_a_warning)
{
	struct pg_test_capture cap;
	pg_policy *p = pg_test_load(PG_TEST_HEAD "keys:\n  k:\n    uri: \"pkcs11:object=k\"\n    owner: t\n"
	                            "    certificate: { required: true }\n"
	                            "rules:\n  - {name: r, effect: deny, keys: [k]}\n", &cap);

	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(pg_test_find(&cap, PG_DIAG_WARNING, 7, 18, "has no public_key_sha256 or pins"));
	pg_policy_unref(p);
}
END_TEST

/* key_minimum: the built-in floor without it; the policy's, enforced by
 * default, with it; a size the token would not give is weak. */
static pg_policy *
load_minimum(const char *block)
{
	struct pg_test_capture cap;
	char yaml[1024];
	pg_policy *p;

	snprintf(yaml, sizeof yaml, PG_TEST_HEAD "%skeys:\n  k:\n    uri: \"pkcs11:object=k\"\n    owner: t\n"
	         "rules:\n  - {name: r, effect: deny, keys: [k]}\n", block);
	p = pg_test_load(yaml, &cap);
	if (p == NULL)
		pg_test_dump(&cap);
	ck_assert_ptr_nonnull(p);
	return p;
}

START_TEST(key_minimum_weak_and_enforced)
{
	pg_policy *builtin = load_minimum("");
	pg_policy *strict = load_minimum("key_minimum: { rsa_bits: 3072, ec_bits: 384 }\n");
	pg_policy *report = load_minimum("key_minimum:\n  rsa_bits: 3072\n  enforce: false\n");
	struct pg_key_facts facts = { .family = PG_KEY_RSA, .bits = 2048 };
	struct pg_life_verdict v;
	char why[160];

	/* The built-in floor: RSA-2048 and P-256 are not weak, RSA-1024 is;
	 * nothing is refused at signing without key_minimum. */
	ck_assert(!pg_policy_key_minimum(builtin)->configured);
	ck_assert(!pg_policy_key_weak(builtin, PG_KEY_RSA, 2048, why, sizeof why));
	ck_assert(!pg_policy_key_weak(builtin, PG_KEY_EC, 256, why, sizeof why));
	ck_assert(pg_policy_key_weak(builtin, PG_KEY_RSA, 1024, why, sizeof why));
	ck_assert_str_eq(why, "RSA-1024 is weak: below the built-in floor of 2048 bits");
	ck_assert(!pg_policy_key_weak(builtin, PG_KEY_OTHER, 128, why, sizeof why));
	facts.bits = 1024;
	pg_policy_lifecycle(builtin, 0, &facts, pg_test_time("2026-06-01T00:00:00Z"), -1, &v);
	ck_assert(!v.refuse);
	/* 3072/384, enforced: RSA-2048 and P-256 weak and refused, RSA-3072
	 * and P-384 not; the reason names the minimum. */
	ck_assert(pg_policy_key_minimum(strict)->enforce);
	ck_assert(pg_policy_key_weak(strict, PG_KEY_RSA, 2048, why, sizeof why));
	ck_assert_str_eq(why, "RSA-2048 is weak: below key_minimum.rsa_bits 3072");
	ck_assert(pg_policy_key_weak(strict, PG_KEY_EC, 256, why, sizeof why));
	ck_assert_str_eq(why, "EC-256 is weak: below key_minimum.ec_bits 384");
	ck_assert(!pg_policy_key_weak(strict, PG_KEY_RSA, 3072, why, sizeof why));
	ck_assert(!pg_policy_key_weak(strict, PG_KEY_EC, 384, why, sizeof why));
	facts.bits = 2048;
	pg_policy_lifecycle(strict, 0, &facts, pg_test_time("2026-06-01T00:00:00Z"), -1, &v);
	ck_assert(v.refuse);
	ck_assert_int_eq(v.status, PG_LIFE_WEAK);
	ck_assert_str_eq(v.message, "RSA-2048 is weak: below key_minimum.rsa_bits 3072 (key_minimum.enforce)");
	facts = (struct pg_key_facts){ .family = PG_KEY_EC, .bits = 384 };
	pg_policy_lifecycle(strict, 0, &facts, pg_test_time("2026-06-01T00:00:00Z"), -1, &v);
	ck_assert(!v.refuse);
	/* An unnamed key too; and a size the token would not give. */
	facts.bits = 0;
	pg_policy_lifecycle(strict, -1, &facts, pg_test_time("2026-06-01T00:00:00Z"), -1, &v);
	ck_assert(v.refuse);
	ck_assert(strstr(v.message, "size could not be read") != NULL);
	/* A dated refusal is the one said, the size after it. */
	facts = (struct pg_key_facts){ .family = PG_KEY_RSA, .bits = 2048, .end_date = 20260101 };
	pg_policy_lifecycle(strict, 0, &facts, pg_test_time("2026-06-01T00:00:00Z"), -1, &v);
	ck_assert_int_eq(v.status, PG_LIFE_RETIRED);
	/* enforce: false: weak (inventory says so), never refused at signing. */
	ck_assert(pg_policy_key_weak(report, PG_KEY_RSA, 2048, why, sizeof why));
	ck_assert(!pg_policy_key_weak(report, PG_KEY_EC, 256, why, sizeof why));
	facts.end_date = 0;
	pg_policy_lifecycle(report, 0, &facts, pg_test_time("2026-06-01T00:00:00Z"), -1, &v);
	ck_assert(!v.refuse);
	pg_policy_unref(builtin);
	pg_policy_unref(strict);
	pg_policy_unref(report);
}
END_TEST

struct bad_case {
	const char *key_body;        /* lines under "  k:\n", indented by four */
	unsigned long line, column;
	const char *text;
};

static const struct bad_case bad_cases[] = {
	{ "    not_after: 2027-02-30\n", 7, 16, "does not exist" },
	{ "    not_after: tomorrow\n", 7, 16, "must look like 2026-12-24" },
	{ "    public_key_sha256: \"" OLD "\"\n    pins: [{public_key_sha256: \"" NEW "\"}]\n", 7, 24,
	  "both public_key_sha256 and pins" },
	{ "    pins: []\n", 7, 11, "pins is empty" },
	{ "    pins: [{not_after: 2027-01-01}]\n", 7, 12, "has no public_key_sha256" },
	{ "    pins: [{public_key_sha256: \"" OLD "\"}, {public_key_sha256: \"" OLD "\"}]\n", 7, 0,
	  "twice under pins" },
	{ "    pins: [{public_key_sha256: \"" OLD "\", until: 2027-01-01}]\n", 7, 0, "until" },
	{ "    certificate: { eku: codeSinging }\n", 7, 25, "not an extended key usage" },
	{ "    certificate: { warn_days: -1 }\n", 7, 31, "warn_days must be a whole number" },
	{ "    certificate: { warn_days: 4000 }\n", 7, 31, "0-3650" },
	{ "    certificate: { required: yes }\n", 7, 0, "required" },
	{ "    certificate: { crl_file: relative.crl }\n", 7, 30, "must be an absolute path" },
	{ "    certificate: { crl_file: /nonexistent/ca.crl, ca_file: /ca.pem }\n", 7, 30, "cannot be read as a CRL" },
	{ "    certificate: { crl_file: /dev/zero, ca_file: /ca.pem }\n", 7, 30,
	  "cannot be read as a CRL (not a regular file)" },
	{ "    certificate: { crl_file: " PG_SOURCE_ROOT "/LICENSE, ca_file: /ca.pem }\n", 7, 30,
	  "does not read as a CRL" },
	/* A CRL's signature is checked: without ca_file it cannot be. */
	{ "    certificate: { crl_file: /etc/p11gate/ca.crl }\n", 7, 30, "crl_file needs ca_file" },
	{ "    certificate: { ca_file: /etc/p11gate/ca.pem }\n", 7, 29, "there is no crl_file" },
	{ "    certificate: { crl_file: /etc/p11gate/ca.crl, ca_file: ca.pem }\n", 7, 60,
	  "ca_file 'ca.pem' must be an absolute path" },
	{ "    certificate: { revoked: true }\n", 7, 0, "revoked" },
	/* key_minimum: is top level; these lines go after the key. */
	{ "key_minimum: { rsa_bits: 1024 }\n", 7, 26, "from 2048 (the built-in floor) to 16384" },
	{ "key_minimum: { rsa_bits: 3k }\n", 7, 26, "whole number of bits" },
	{ "key_minimum: { ec_bits: 128 }\n", 7, 25, "P-256 is 256" },
	{ "key_minimum: { ec_bits: 1000 }\n", 7, 25, "to 571" },
	{ "key_minimum: { enforce: yes }\n", 7, 25, "key_minimum.enforce must be true or false" },
	{ "key_minimum: { rsa: 3072 }\n", 7, 0, "rsa" },
	{ "key_minimum: 3072\n", 7, 14, "key_minimum" },
};

START_TEST(bad_fields_are_errors_at_their_place)
{
	const struct bad_case *c = &bad_cases[_i];
	char yaml[2048];
	struct pg_test_capture cap;
	pg_policy *p;
	bool found = false;

	snprintf(yaml, sizeof yaml, PG_TEST_HEAD "keys:\n  k:\n    uri: \"pkcs11:object=k\"\n    owner: t\n%s"
	         "rules:\n  - {name: r, effect: deny, keys: [k]}\n", c->key_body);
	p = pg_test_load(yaml, &cap);
	for (size_t i = 0; i < cap.n; i++) {
		found = found || (cap.diags[i].severity == PG_DIAG_ERROR && cap.diags[i].line == c->line &&
		                  (c->column == 0 || cap.diags[i].column == c->column) &&
		                  strstr(cap.diags[i].message, c->text) != NULL);
	}
	if (!found)
		pg_test_dump(&cap);
	ck_assert_msg(found, "no error at %lu:%lu saying '%s'", c->line, c->column, c->text);
	ck_assert_ptr_null(p);
}
END_TEST

static Suite *
lifecycle_suite(void)
{
	Suite *s = suite_create("lifecycle");
	TCase *tc = tcase_create("verdict");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, pins_retire_the_old_key_and_keep_the_new);
	tcase_add_test(tc, not_after_and_end_date);
	tcase_add_test(tc, every_certificate_must_pass);
	tcase_add_test(tc, key_minimum_weak_and_enforced);
	suite_add_tcase(s, tc);
	tc = tcase_create("errors");
	tcase_add_test(tc, certificate_without_pin_is_a_warning);
	tcase_add_loop_test(tc, bad_fields_are_errors_at_their_place, 0,
	                    (int)(sizeof bad_cases / sizeof bad_cases[0]));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(lifecycle_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
