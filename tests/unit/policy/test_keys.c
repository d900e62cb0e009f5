/* SPDX-License-Identifier: Apache-2.0
 *
 * Key matching: policy URIs against real CK_INFO / CK_TOKEN_INFO structs
 * and attribute templates, the public-key pin, and the key accessors.
 */
#include "helpers.h"
#include "p11gate/common.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIN_HEX "b300d6efc3756a908b9ed0039ba7d112a85085b74629781dc16e3e1c03a67ce8"

static const char policy_yaml[] =
	PG_TEST_HEAD
	"keys:\n"
	"  rsa:\n"
	"    uri: \"pkcs11:token=release;object=codesign-rsa\"\n"
	"    public_key_sha256: \"" PIN_HEX "\"\n"
	"    owner: release-engineering\n"
	"    purpose: Windows installers\n"
	"  ec: {uri: \"pkcs11:token=release;object=codesign-ec\", owner: t}\n"
	"  by-id: {uri: \"pkcs11:id=%01%02;type=private\", owner: t}\n"
	"  by-model: {uri: \"pkcs11:model=SoftHSM%20v2;object=m\", owner: t}\n"
	"  by-lib: {uri: \"pkcs11:library-manufacturer=SoftHSM;object=l\", owner: t}\n"
	"  by-slot: {uri: \"pkcs11:slot-description=Slot%200;object=s\", owner: t}\n"
	"rules:\n"
	"  - name: all\n"
	"    effect: deny\n"
	"    keys: [rsa, ec, by-id, by-model, by-lib, by-slot]\n";

static pg_policy *policy;

static void
setup(void)
{
	struct pg_test_capture cap;

	policy = pg_test_load(policy_yaml, &cap);
	if (policy == NULL)
		pg_test_dump(&cap);
	ck_assert_ptr_nonnull(policy);
	/* by-id states only an id, so it can name the same object as each of
	 * the others: those five overlaps are the only warnings. */
	ck_assert_uint_eq(cap.warnings, 5);
	for (size_t i = 0; i < cap.n; i++)
		ck_assert_msg(strstr(cap.diags[i].message, "can name the same object") != NULL,
		              "unexpected diagnostic: %s", cap.diags[i].message);
}

static void
teardown(void)
{
	pg_policy_unref(policy);
}

/* Blank-padded, as PKCS#11 fixed-width text fields are. */
static void
pad(CK_UTF8CHAR *field, size_t len, const char *text)
{
	memset(field, ' ', len);
	memcpy(field, text, strlen(text));
}

struct object {
	CK_OBJECT_CLASS klass;
	char label[64];
	unsigned char id[8];
	CK_ATTRIBUTE attrs[3];
};

static void
object_init(struct object *o, CK_OBJECT_CLASS klass, const char *label,
            const unsigned char *id, size_t id_len)
{
	memset(o, 0, sizeof *o);
	o->klass = klass;
	snprintf(o->label, sizeof o->label, "%s", label);
	memcpy(o->id, id, id_len);
	o->attrs[0] = (CK_ATTRIBUTE){ CKA_CLASS, &o->klass, sizeof o->klass };
	o->attrs[1] = (CK_ATTRIBUTE){ CKA_LABEL, o->label, (CK_ULONG)strlen(o->label) };
	o->attrs[2] = (CK_ATTRIBUTE){ CKA_ID, o->id, (CK_ULONG)id_len };
}

static const unsigned char no_id[] = { 0x09 };

static void
token_init(CK_TOKEN_INFO *token, const char *label, const char *model)
{
	memset(token, 0, sizeof *token);
	pad(token->label, sizeof token->label, label);
	pad(token->manufacturerID, sizeof token->manufacturerID, "SoftHSM project");
	pad(token->model, sizeof token->model, model);
	pad(token->serialNumber, sizeof token->serialNumber, "1234abcd");
}

START_TEST(test_token_and_label)
{
	CK_TOKEN_INFO token;
	struct object obj;
	struct pg_key_facts facts = { 0 };
	struct pg_key_match m;

	token_init(&token, "release", "SoftHSM v2");
	object_init(&obj, CKO_PRIVATE_KEY, "codesign-ec", no_id, sizeof no_id);
	facts.token_info = &token;
	facts.attrs = obj.attrs;
	facts.n_attrs = 3;
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 1);
	ck_assert_str_eq(pg_policy_key_name(policy, m.idx[0]), "ec");
	ck_assert_int_eq(m.pin_mismatch, -1);

	/* Same label on another token. */
	token_init(&token, "staging", "SoftHSM v2");
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 0);
	ck_assert_int_eq(m.pin_mismatch, -1);

	/* The token is unknown: a URI that names it cannot be confirmed. */
	facts.token_info = NULL;
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 0);
}
END_TEST

START_TEST(test_label_missing_from_attributes)
{
	CK_TOKEN_INFO token;
	struct object obj;
	struct pg_key_facts facts = { 0 };
	struct pg_key_match m;

	token_init(&token, "release", "SoftHSM v2");
	object_init(&obj, CKO_PRIVATE_KEY, "codesign-ec", no_id, sizeof no_id);
	facts.token_info = &token;
	facts.attrs = obj.attrs;
	facts.n_attrs = 1;   /* only CKA_CLASS was read */
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 0);
}
END_TEST

START_TEST(test_id_and_class)
{
	static const unsigned char id[] = { 0x01, 0x02 };
	struct object obj;
	struct pg_key_facts facts = { 0 };
	struct pg_key_match m;

	/* No token fields in the URI: matches without token info. */
	object_init(&obj, CKO_PRIVATE_KEY, "whatever", id, sizeof id);
	facts.attrs = obj.attrs;
	facts.n_attrs = 3;
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 1);
	ck_assert_str_eq(pg_policy_key_name(policy, m.idx[0]), "by-id");

	/* type=private does not match a secret key with the same id. */
	object_init(&obj, CKO_SECRET_KEY, "whatever", id, sizeof id);
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 0);

	/* Another id. */
	object_init(&obj, CKO_PRIVATE_KEY, "whatever", id, 1);
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 0);
}
END_TEST

START_TEST(test_model_module_and_slot)
{
	CK_TOKEN_INFO token;
	CK_INFO module;
	CK_SLOT_INFO slot;
	struct object obj;
	struct pg_key_facts facts = { 0 };
	struct pg_key_match m;

	token_init(&token, "any", "SoftHSM v2");
	object_init(&obj, CKO_PRIVATE_KEY, "m", no_id, sizeof no_id);
	facts.token_info = &token;
	facts.attrs = obj.attrs;
	facts.n_attrs = 3;
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 1);
	ck_assert_str_eq(pg_policy_key_name(policy, m.idx[0]), "by-model");
	token_init(&token, "any", "SoftHSM v3");
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 0);

	memset(&module, 0, sizeof module);
	pad(module.manufacturerID, sizeof module.manufacturerID, "SoftHSM");
	pad(module.libraryDescription, sizeof module.libraryDescription, "Implementation of PKCS11");
	module.libraryVersion.major = 2;
	module.libraryVersion.minor = 6;
	object_init(&obj, CKO_PRIVATE_KEY, "l", no_id, sizeof no_id);
	facts.module_info = NULL;
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 0);
	facts.module_info = &module;
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 1);
	ck_assert_str_eq(pg_policy_key_name(policy, m.idx[0]), "by-lib");

	memset(&slot, 0, sizeof slot);
	pad(slot.slotDescription, sizeof slot.slotDescription, "Slot 0");
	pad(slot.manufacturerID, sizeof slot.manufacturerID, "SoftHSM project");
	object_init(&obj, CKO_PRIVATE_KEY, "s", no_id, sizeof no_id);
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 0);
	facts.slot_info = &slot;
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 1);
	ck_assert_str_eq(pg_policy_key_name(policy, m.idx[0]), "by-slot");
}
END_TEST

START_TEST(test_pin)
{
	CK_TOKEN_INFO token;
	struct object obj;
	struct pg_key_facts facts = { 0 };
	struct pg_key_match m;
	unsigned char hash[PG_SHA256_LEN];

	ck_assert(pg_hex_decode(PIN_HEX, hash, sizeof hash));
	token_init(&token, "release", "SoftHSM v2");
	object_init(&obj, CKO_PRIVATE_KEY, "codesign-rsa", no_id, sizeof no_id);
	facts.token_info = &token;
	facts.attrs = obj.attrs;
	facts.n_attrs = 3;
	facts.public_key_sha256 = hash;
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 1);
	ck_assert_str_eq(pg_policy_key_name(policy, m.idx[0]), "rsa");
	ck_assert_int_eq(m.pin_mismatch, -1);

	/* A substituted key: same token and label, another public key. */
	hash[0] ^= 1;
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 0);
	ck_assert_int_eq(m.pin_mismatch, pg_policy_key_find(policy, "rsa"));

	/* The hash is unknown: a pinned key never matches. */
	facts.public_key_sha256 = NULL;
	pg_policy_match_key(policy, &facts, &m);
	ck_assert_uint_eq(m.n, 0);
	ck_assert_int_eq(m.pin_mismatch, pg_policy_key_find(policy, "rsa"));

	/* An EC key whose public objects disagree (one planted beside it):
	 * the pin matches if any of them is the pinned key, and only then. */
	{
		unsigned char candidates[2][PG_SHA256_LEN];

		memset(candidates[0], 0x77, PG_SHA256_LEN);
		memcpy(candidates[1], hash, PG_SHA256_LEN);
		facts.public_key_candidates = (const unsigned char (*)[PG_SHA256_LEN])candidates;
		facts.n_public_key_candidates = 2;
		pg_policy_match_key(policy, &facts, &m);
		ck_assert_uint_eq(m.n, 0);                      /* hash[0] was flipped above */
		candidates[1][0] ^= 1;
		pg_policy_match_key(policy, &facts, &m);
		ck_assert_uint_eq(m.n, 1);
		ck_assert_str_eq(pg_policy_key_name(policy, m.idx[0]), "rsa");
		facts.n_public_key_candidates = 1;              /* only the foreign one */
		pg_policy_match_key(policy, &facts, &m);
		ck_assert_uint_eq(m.n, 0);
	}
}
END_TEST

START_TEST(test_accessors)
{
	unsigned char hash[PG_SHA256_LEN];
	int rsa = pg_policy_key_find(policy, "rsa");
	int ec = pg_policy_key_find(policy, "ec");

	ck_assert_uint_eq(pg_policy_key_count(policy), 6);
	ck_assert_int_eq(rsa, 0);
	ck_assert_int_eq(ec, 1);
	ck_assert_int_eq(pg_policy_key_find(policy, "nope"), -1);
	ck_assert_str_eq(pg_policy_key_uri(policy, (unsigned)rsa),
	                 "pkcs11:token=release;object=codesign-rsa");
	ck_assert_str_eq(pg_policy_key_owner(policy, (unsigned)rsa), "release-engineering");
	ck_assert_str_eq(pg_policy_key_purpose(policy, (unsigned)rsa), "Windows installers");
	ck_assert_ptr_null(pg_policy_key_purpose(policy, (unsigned)ec));
	ck_assert(pg_hex_decode(PIN_HEX, hash, sizeof hash));
	ck_assert_mem_eq(pg_policy_key_pin(policy, (unsigned)rsa), hash, sizeof hash);
	ck_assert_ptr_null(pg_policy_key_pin(policy, (unsigned)ec));
	ck_assert_ptr_null(pg_policy_key_name(policy, 99));
}
END_TEST

/* Two keys whose URIs (and pins) let one object match both: `check` warns
 * at the later key, naming the earlier; keys that differ in a part both
 * state, or in their pins, cannot name one object and are not reported. */
static const char overlap_yaml[] =
	PG_TEST_HEAD
	"keys:\n"
	"  release: {uri: \"pkcs11:token=release\", owner: t}\n"                        /* 4 */
	"  codesign-rsa:\n"                                                                 /* 5 */
	"    uri: \"pkcs11:token=release;object=codesign-rsa\"\n"
	"    public_key_sha256: \"" PIN_HEX "\"\n"
	"    owner: t\n"
	"  other-token: {uri: \"pkcs11:token=staging;object=codesign-rsa\", owner: t}\n"   /* 9 */
	"  other-label: {uri: \"pkcs11:token=release;object=codesign-ec\", owner: t}\n"    /* 10 */
	"  by-id: {uri: \"pkcs11:object=codesign-ec;id=%02\", owner: t}\n"               /* 11 */
	"  secret: {uri: \"pkcs11:object=codesign-ec;type=secret-key\", owner: t}\n"     /* 12 */
	"  private: {uri: \"pkcs11:object=codesign-ec;type=private\", owner: t}\n"       /* 13 */
	"  pinned-a: {uri: \"pkcs11:serial=42\", owner: t,\n"                            /* 14 */
	"             public_key_sha256: \"" PIN_HEX "\"}\n"
	"  pinned-b: {uri: \"pkcs11:serial=42\", owner: t,\n"                            /* 16 */
	"             public_key_sha256: \"0000000000000000000000000000000000000000000000000000000000000000\"}\n"
	"rules: []\n";

START_TEST(test_overlapping_uris)
{
	struct pg_test_capture cap;
	pg_policy *p = pg_test_load(overlap_yaml, &cap);
	size_t overlaps = 0;

	if (p == NULL)
		pg_test_dump(&cap);
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < cap.n; i++)
		overlaps += strstr(cap.diags[i].message, "can name the same object") != NULL;
	/* The pair: a token-wide key and a pinned key on that token. */
	ck_assert_ptr_nonnull(pg_test_find(&cap, PG_DIAG_WARNING, 5, 3,
	                                   "key 'codesign-rsa' (uri 'pkcs11:token=release;"
	                                   "object=codesign-rsa') and key 'release' (line 4, uri "
	                                   "'pkcs11:token=release') can name the same object"));
	/* other-token: another token label; other-label: another object label,
	 * but within `release`. */
	ck_assert_ptr_null(pg_test_find(&cap, PG_DIAG_WARNING, 9, 3, "key 'release'"));
	ck_assert_ptr_nonnull(pg_test_find(&cap, PG_DIAG_WARNING, 10, 3, "key 'release'"));
	ck_assert_ptr_null(pg_test_find(&cap, PG_DIAG_WARNING, 10, 3, "key 'codesign-rsa'"));
	/* by-id states no token: it overlaps every key labelled codesign-ec
	 * and the token-wide one. */
	ck_assert_ptr_nonnull(pg_test_find(&cap, PG_DIAG_WARNING, 11, 3, "key 'release'"));
	ck_assert_ptr_nonnull(pg_test_find(&cap, PG_DIAG_WARNING, 11, 3, "key 'other-label'"));
	ck_assert_ptr_null(pg_test_find(&cap, PG_DIAG_WARNING, 11, 3, "key 'codesign-rsa'"));
	/* A secret key and a private key are never one object. */
	ck_assert_ptr_nonnull(pg_test_find(&cap, PG_DIAG_WARNING, 13, 3, "key 'by-id'"));
	ck_assert_ptr_null(pg_test_find(&cap, PG_DIAG_WARNING, 13, 3, "key 'secret'"));
	/* Different pins: one public key cannot hash to both; one pinned and
	 * one not can still meet. */
	ck_assert_ptr_null(pg_test_find(&cap, PG_DIAG_WARNING, 16, 3, "key 'pinned-a'"));
	ck_assert_ptr_nonnull(pg_test_find(&cap, PG_DIAG_WARNING, 14, 3, "key 'release'"));
	ck_assert_ptr_nonnull(pg_test_find(&cap, PG_DIAG_WARNING, 16, 3, "key 'release'"));
	/* Every pair, counted by hand: at line 5 one, 9 none, 10 one, 11 two,
	 * 12 three, 13 three, 14 seven (a serial and a token label are
	 * independent), 16 six (all of 14's less the two pinned elsewhere). */
	ck_assert_uint_eq(overlaps, 23);
	pg_policy_unref(p);
}
END_TEST

int
main(void)
{
	Suite *suite = suite_create("policy-keys");
	TCase *tc = tcase_create("keys");
	SRunner *runner;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_token_and_label);
	tcase_add_test(tc, test_label_missing_from_attributes);
	tcase_add_test(tc, test_id_and_class);
	tcase_add_test(tc, test_model_module_and_slot);
	tcase_add_test(tc, test_pin);
	tcase_add_test(tc, test_accessors);
	tcase_add_test(tc, test_overlapping_uris);
	suite_add_tcase(suite, tc);
	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
