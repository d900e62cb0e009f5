/* SPDX-License-Identifier: Apache-2.0
 *
 * The judged calls SoftHSM2 2.6.1 lists but lacks, through p11gate.so over
 * the mock 3.0 token (tests/mock), which has them: C_SignRecoverInit /
 * C_SignRecover, and the dual-function updates that carry a private key's
 * operation — C_SignEncryptUpdate feeds the judged signature,
 * C_DecryptDigestUpdate and C_DecryptVerifyUpdate return plaintext like
 * C_DecryptUpdate.  Over SoftHSM2 they are only ever answered
 * CKR_FUNCTION_NOT_SUPPORTED; here p11gate must judge and record them.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "world.h"
#include "../mock/mock.h"

static const char RULES[] =
	"  - name: tests-use-the-keys\n"
	"    effect: allow\n"
	"    keys: [signer]\n"
	"    operations: [sign, decrypt]\n";

static const char NOTHING[] =
	"  - name: tests-verify-only\n"
	"    effect: allow\n"
	"    keys: [secret]\n"
	"    operations: [verify]\n";

static CK_MECHANISM sign_mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
static CK_MECHANISM recover_mech = { CKM_RSA_PKCS, NULL, 0 };
static CK_MECHANISM pkcs_mech = { CKM_RSA_PKCS, NULL, 0 };
static CK_MECHANISM aes_mech = { CKM_AES_ECB, NULL, 0 };
static CK_MECHANISM sha_mech = { CKM_SHA256, NULL, 0 };

#define ALLOW "\"decision\":\"allow\""
#define RESULT "\"event\":\"result\""

struct t {
	struct world w;
	CK_FUNCTION_LIST_PTR f;
	const struct mock_p11_control *m;
	CK_SESSION_HANDLE s;
};

static void
t_start(struct t *t, const char *name)
{
	printf("mock-dual: %s\n", name);
	fflush(stdout);
	t->s = world_mock_start(&t->w, "mock-dual", name, RULES);
	t->f = t->w.f;
	t->m = world_mock(&t->w);
}

static void
t_end(struct t *t)
{
	world_audit_verify(&t->w);
	world_close(&t->w);
}

/* Counts, at the token's entry on session, the allow records since mark.
 * (p11gate asks the token once, on a session of its own, whether it has
 * a dual-function call: that call is not counted.) */
struct at_entry {
	const struct world *w;
	CK_SESSION_HANDLE session;
	size_t mark;
	int calls;
	size_t allows_first;
};

static void
note_allows(const char *function, CK_SESSION_HANDLE session, void *arg)
{
	struct at_entry *e = arg;

	if (session == e->session && e->calls++ == 0)
		e->allows_first = world_audit_count_since(e->w, e->mark, ALLOW, NULL);
}

START_TEST(sign_recover_judged_and_recorded)
{
	struct t t;
	CK_BYTE sig[64], want[32];
	CK_ULONG len = 8;
	size_t mark;

	t_start(&t, "sign_recover_judged_and_recorded");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignRecoverInit(t.s, &recover_mech, MOCK_KEY_OTHER), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_SignRecoverInit", "sign");
	ck_assert(!t.m->active(t.s, CKF_SIGN_RECOVER));

	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignRecoverInit(t.s, &recover_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_SignRecover(t.s, (CK_BYTE_PTR)"digest", 6, sig, &len), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(len, 32);
	len = sizeof sig;
	ck_assert_rv(t.f->C_SignRecover(t.s, (CK_BYTE_PTR)"digest", 6, sig, &len), CKR_OK);
	world_mock_signature("mock-sign", "digest", 6, want);
	ck_assert_mem_eq(sig, want, 32);
	world_expect_allow_data(&t.w, mark, "C_SignRecover", "sign", "digest", 6);
	len = sizeof sig;
	ck_assert_rv(t.f->C_SignRecover(t.s, (CK_BYTE_PTR)"digest", 6, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	t_end(&t);
}
END_TEST

/* The parts C_SignEncryptUpdate passes are part of the signature: hashed
 * into the allow record, and refused once a too-small final buffer has
 * fixed what the record names. */
START_TEST(sign_encrypt_update_feeds_the_signature)
{
	struct t t;
	CK_BYTE out[64], want[32];
	CK_ULONG len = sizeof out;
	size_t mark;

	t_start(&t, "sign_encrypt_update_feeds_the_signature");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_EncryptInit(t.s, &aes_mech, MOCK_KEY_FREE), CKR_OK);
	ck_assert_rv(t.f->C_SignEncryptUpdate(t.s, (CK_BYTE_PTR)"ab", 2, out, &len), CKR_OK);
	ck_assert_uint_eq(len, 2);
	ck_assert_uint_eq(out[0], 'a' ^ MOCK_XOR);
	ck_assert_rv(t.f->C_SignUpdate(t.s, (CK_BYTE_PTR)"cd", 2), CKR_OK);
	len = 8;
	ck_assert_rv(t.f->C_SignFinal(t.s, out, &len), CKR_BUFFER_TOO_SMALL);
	len = sizeof out;
	ck_assert_rv(t.f->C_SignEncryptUpdate(t.s, (CK_BYTE_PTR)"ef", 2, out, &len), CKR_FUNCTION_REJECTED);
	len = sizeof out;
	ck_assert_rv(t.f->C_SignFinal(t.s, out, &len), CKR_OK);
	world_mock_signature("mock-sign", "abcd", 4, want);
	ck_assert_mem_eq(out, want, 32);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, ALLOW, NULL), 1);
	ck_assert(world_audit_find_data_since(&t.w, mark, "abcd", 4, ALLOW, NULL, 0));
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"decision\":\"deny\"",
	                                          "\"function\":\"C_SignEncryptUpdate\"", NULL), 1);
	len = sizeof out;
	ck_assert_rv(t.f->C_EncryptFinal(t.s, out, &len), CKR_OK);
	t_end(&t);
}
END_TEST

/* A dual-function decryption part returns plaintext: judged like the
 * first C_DecryptUpdate, its allow record written before the token acts,
 * and refused (no plaintext, the token's decryption cancelled) when the
 * policy no longer allows it. */
static void
decrypt_dual(const char *name, const char *function, CK_MECHANISM *other_mech, CK_OBJECT_HANDLE other_key,
             CK_RV (*other_init)(CK_FUNCTION_LIST_PTR, CK_SESSION_HANDLE, CK_MECHANISM *, CK_OBJECT_HANDLE),
             CK_RV (*dual)(CK_FUNCTION_LIST_PTR, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR))
{
	struct t t;
	CK_BYTE out[64];
	CK_ULONG len = sizeof out;
	struct at_entry e = { &t.w, 0, 0, 0, 0 };

	t_start(&t, name);
	e.session = t.s;
	e.mark = world_audit_lines(&t.w);
	t.m->hook(function, note_allows, &e);
	ck_assert_rv(other_init(t.f, t.s, other_mech, other_key), CKR_OK);
	ck_assert_rv(t.f->C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(dual(t.f, t.s, (CK_BYTE_PTR)"\x3b\x3c", 2, out, &len), CKR_OK);
	ck_assert_int_eq(e.calls, 1);
	ck_assert_uint_eq(e.allows_first, 1);
	ck_assert_mem_eq(out, "af", 2);
	len = sizeof out;
	ck_assert_rv(t.f->C_DecryptFinal(t.s, out, &len), CKR_OK);
	ck_assert_mem_eq(out, "\0\0\0\2", 4);
	world_expect_allow_data(&t.w, e.mark, function, "decrypt", "\x3b\x3c", 2);

	ck_assert_rv(t.f->C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	world_policy(&t.w, NOTHING);
	e.mark = world_audit_lines(&t.w);
	len = sizeof out;
	memset(out, 0xee, sizeof out);
	ck_assert_rv(dual(t.f, t.s, (CK_BYTE_PTR)"\x3b", 1, out, &len), CKR_FUNCTION_REJECTED);
	ck_assert_uint_eq(out[0], 0xee);
	world_expect_one_deny(&t.w, e.mark, function, "decrypt");
	ck_assert(!t.m->active(t.s, CKF_DECRYPT));
	ck_assert_int_eq(e.calls, 1);
	t.m->hook(function, NULL, NULL);
	t_end(&t);
}

static CK_RV
digest_init(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
	return f->C_DigestInit(s, m);
}

static CK_RV
verify_init(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
	return f->C_VerifyInit(s, m, key);
}

static CK_RV
decrypt_digest(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG len, CK_BYTE_PTR out,
               CK_ULONG_PTR out_len)
{
	return f->C_DecryptDigestUpdate(s, in, len, out, out_len);
}

static CK_RV
decrypt_verify(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG len, CK_BYTE_PTR out,
               CK_ULONG_PTR out_len)
{
	return f->C_DecryptVerifyUpdate(s, in, len, out, out_len);
}

START_TEST(decrypt_digest_update_judged_like_a_part)
{
	decrypt_dual("decrypt_digest_update_judged_like_a_part", "C_DecryptDigestUpdate", &sha_mech,
	             CK_INVALID_HANDLE, digest_init, decrypt_digest);
}
END_TEST

START_TEST(decrypt_verify_update_judged_like_a_part)
{
	/* The public key verifies: not named, not private, forwarded. */
	decrypt_dual("decrypt_verify_update_judged_like_a_part", "C_DecryptVerifyUpdate", &sign_mech,
	             MOCK_KEY_PUBLIC, verify_init, decrypt_verify);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("mock-dual");
	TCase *tc = tcase_create("dual");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, sign_recover_judged_and_recorded);
	tcase_add_test(tc, sign_encrypt_update_feeds_the_signature);
	tcase_add_test(tc, decrypt_digest_update_judged_like_a_part);
	tcase_add_test(tc, decrypt_verify_update_judged_like_a_part);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return world_run_suite(suite());
}
