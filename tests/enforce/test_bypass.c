/* SPDX-License-Identifier: Apache-2.0
 *
 * Every route around the policy, tried through p11gate.so over a real
 * SoftHSM2 token.  The policy allows only `sign` with release-rsa, for
 * everyone, and names release-ec with no allow rule.  Each route must be
 * refused with CKR_FUNCTION_REJECTED, leave one deny record, and leave the
 * token as it was; the allowed path (including a length query and a
 * too-small buffer) must sign and be recorded exactly once.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "world.h"

static const char RULES[] =
	"  - name: everyone-signs-with-rsa\n"
	"    effect: allow\n"
	"    keys: [release-rsa]\n"
	"    operations: [sign]\n";

static const CK_BYTE RSA_ID = 0x01;
static const CK_BYTE EC_ID = 0x02;
static CK_BBOOL yes = CK_TRUE;
static CK_BBOOL no = CK_FALSE;

/* Each test: a world under RULES, the module open, a logged-in session. */
struct t {
	struct world w;
	CK_FUNCTION_LIST_PTR f;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE rsa, ec;
	CK_ULONG n_private;
};

/* The world and its policy, before the module is loaded. */
static void
t_prepare(struct t *t, const char *name)
{
	printf("bypass: %s\n", name);
	fflush(stdout);
	world_new(&t->w, "bypass", name);
	world_policy(&t->w, RULES);
}

/* The module loaded, a logged-in session, the fixture's keys found. */
static void
t_open(struct t *t)
{
	world_open(&t->w);
	t->f = t->w.f;
	t->s = world_session(&t->w);
	t->rsa = world_find(&t->w, t->s, CKO_PRIVATE_KEY, RSA_ID);
	t->ec = world_find(&t->w, t->s, CKO_PRIVATE_KEY, EC_ID);
	t->n_private = world_count_class(&t->w, t->s, CKO_PRIVATE_KEY);
	ck_assert_uint_eq(t->n_private, 2);
}

static void
t_start(struct t *t, const char *name)
{
	t_prepare(t, name);
	t_open(t);
}

/* The token holds what it held: no new private key, no second key
 * labelled codesign-rsa, and the EC key still codesign-ec with id 02. */
static void
t_token_unchanged(struct t *t)
{
	CK_BYTE label[64], id[16];
	CK_ATTRIBUTE attrs[] = {
		{ CKA_LABEL, label, sizeof label },
		{ CKA_ID, id, sizeof id },
	};

	ck_assert_uint_eq(world_count_class(&t->w, t->s, CKO_PRIVATE_KEY), t->n_private);
	ck_assert_uint_eq(world_count_label(&t->w, t->s, CKO_PRIVATE_KEY, "codesign-rsa"), 1);
	ck_assert_rv(t->f->C_GetAttributeValue(t->s, t->ec, attrs, 2), CKR_OK);
	ck_assert_msg(attrs[0].ulValueLen == strlen("codesign-ec") && memcmp(label, "codesign-ec", 11) == 0,
	              "the EC key's label changed to '%.*s'", (int)attrs[0].ulValueLen, label);
	ck_assert_msg(attrs[1].ulValueLen == 1 && id[0] == EC_ID, "the EC key's CKA_ID changed");
}

static void
t_end(struct t *t)
{
	world_audit_verify(&t->w);
	world_close(&t->w);
}

/* ---- the allowed path ------------------------------------------------------ */

START_TEST(allowed_sign)
{
	struct t t;
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE data[] = "a release artefact";
	CK_BYTE sig[512];
	CK_ULONG sig_len = sizeof sig;
	size_t mark;

	t_start(&t, "allowed_sign");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &mech, t.rsa), CKR_OK);
	ck_assert_rv(t.f->C_Sign(t.s, data, sizeof data, sig, &sig_len), CKR_OK);
	ck_assert_msg(world_verify(&t.w, "rsa", data, sizeof data, sig, sig_len), "the signature does not verify");
	ck_assert_msg(!world_verify(&t.w, "rsa", "other", 5, sig, sig_len), "the signature verifies over other data");
	world_expect_one_allow(&t.w, mark, "C_Sign");
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"key\":\"release-rsa\"",
	                                          "\"rule\":\"everyone-signs-with-rsa\"",
	                                          "\"mechanism\":\"CKM_SHA256_RSA_PKCS\"", NULL), 1);
	t_end(&t);
}
END_TEST

START_TEST(length_query_then_too_small_then_sign)
{
	struct t t;
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE data[] = "asked for the length first";
	CK_BYTE sig[512];
	CK_ULONG sig_len = 0;
	size_t mark;

	t_start(&t, "length_query_then_too_small_then_sign");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &mech, t.rsa), CKR_OK);
	ck_assert_rv(t.f->C_Sign(t.s, data, sizeof data, NULL, &sig_len), CKR_OK);
	ck_assert_uint_eq(sig_len, 256);
	ck_assert_msg(world_audit_count_since(&t.w, mark, "\"decision\"", NULL) == 0,
	              "a length query was recorded as a decision");
	sig_len = 16;
	ck_assert_rv(t.f->C_Sign(t.s, data, sizeof data, sig, &sig_len), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(sig_len, 256);
	sig_len = sizeof sig;
	ck_assert_rv(t.f->C_Sign(t.s, data, sizeof data, sig, &sig_len), CKR_OK);
	ck_assert_uint_eq(sig_len, 256);
	ck_assert_msg(world_verify(&t.w, "rsa", data, sizeof data, sig, sig_len), "the signature does not verify");
	world_expect_one_allow(&t.w, mark, "C_Sign");
	/* The operation is over: no second signature from the same init. */
	sig_len = sizeof sig;
	ck_assert_rv(t.f->C_Sign(t.s, data, sizeof data, sig, &sig_len), CKR_OPERATION_NOT_INITIALIZED);
	t_end(&t);
}
END_TEST

START_TEST(sign_without_init)
{
	struct t t;
	CK_BYTE data[32] = { 0 }, sig[512];
	CK_ULONG sig_len = sizeof sig;
	size_t mark;

	t_start(&t, "sign_without_init");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_Sign(t.s, data, sizeof data, sig, &sig_len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_rv(t.f->C_SignUpdate(t.s, data, sizeof data), CKR_OPERATION_NOT_INITIALIZED);
	sig_len = sizeof sig;
	ck_assert_rv(t.f->C_SignFinal(t.s, sig, &sig_len), CKR_OPERATION_NOT_INITIALIZED);
	sig_len = sizeof sig;
	/* SoftHSM2 2.6.1 lacks C_SignRecover: its own answer. */
	ck_assert_rv(t.f->C_SignRecover(t.s, data, sizeof data, sig, &sig_len), CKR_FUNCTION_NOT_SUPPORTED);
	/* A session handle that is no session: the token's answer. */
	ck_assert_rv(t.f->C_Sign(0xdead, data, sizeof data, sig, &sig_len), CKR_SESSION_HANDLE_INVALID);
	ck_assert_rv(t.f->C_SignUpdate(0xdead, data, sizeof data), CKR_SESSION_HANDLE_INVALID);
	ck_assert_rv(t.f->C_Decrypt(0xdead, data, sizeof data, sig, &sig_len), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);
	t_end(&t);
}
END_TEST

/* A closed session is the token's to answer, also for a key p11gate would
 * refuse and has judged before: p11gate takes a session's slot from its
 * own table only while the session is open through it. */
START_TEST(closed_session_answered_by_the_token)
{
	struct t t;
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_SESSION_HANDLE s2;
	size_t mark;

	t_start(&t, "closed_session_answered_by_the_token");
	for (int all = 0; all < 2; all++) {
		s2 = world_session(&t.w);
		ck_assert_rv(t.f->C_SignInit(s2, &mech, t.ec), CKR_FUNCTION_REJECTED);
		if (all)
			ck_assert_rv(t.f->C_CloseAllSessions(t.w.slot), CKR_OK);
		else
			ck_assert_rv(t.f->C_CloseSession(s2), CKR_OK);
		mark = world_audit_lines(&t.w);
		ck_assert_rv(t.f->C_SignInit(s2, &mech, t.ec), CKR_SESSION_HANDLE_INVALID);
		ck_assert_uint_eq(world_audit_lines(&t.w), mark);
	}
	t_end(&t);
}
END_TEST

/* C_CloseAllSessions on one slot, with more sessions open on another than
 * p11gate's table hands out in one look (64): the closed session must still
 * be forgotten, however far along the table it sits. */
START_TEST(close_all_behind_many_sessions_on_another_slot)
{
	struct t t;
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_SLOT_ID slots[8], other = (CK_SLOT_ID)-1;
	CK_ULONG n = 8;
	CK_SESSION_HANDLE s2, kept[100];
	size_t mark;
	char cmd[PATH_MAX + 128];

	t_prepare(&t, "close_all_behind_many_sessions_on_another_slot");
	/* A second token, in SoftHSM2's free slot, before the module starts. */
	snprintf(cmd, sizeof cmd, "softhsm2-util --init-token --free --label other --so-pin 12345678 "
	         "--pin 1234 >'%s/softhsm2-util.out' 2>&1", t.w.dir);
	ck_assert_int_eq(system(cmd), 0);
	t_open(&t);
	ck_assert_rv(t.f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO info;

		ck_assert_rv(t.f->C_GetTokenInfo(slots[i], &info), CKR_OK);
		if (memcmp(info.label, "other ", 6) == 0)
			other = slots[i];
	}
	ck_assert_msg(other != (CK_SLOT_ID)-1, "no token labelled other");
	for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
		ck_assert_rv(t.f->C_OpenSession(other, CKF_SERIAL_SESSION, NULL, NULL, &kept[i]), CKR_OK);
	s2 = world_session(&t.w);
	ck_assert_rv(t.f->C_SignInit(s2, &mech, t.ec), CKR_FUNCTION_REJECTED);
	ck_assert_rv(t.f->C_CloseAllSessions(t.w.slot), CKR_OK);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(s2, &mech, t.ec), CKR_SESSION_HANDLE_INVALID);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);
	/* The other slot's sessions are open still, in the token and in p11gate. */
	for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
		CK_SESSION_INFO info;

		ck_assert_rv(t.f->C_GetSessionInfo(kept[i], &info), CKR_OK);
		ck_assert_uint_eq(info.slotID, other);
	}
	t_end(&t);
}
END_TEST

/* ---- key uses the policy does not allow -------------------------------------- */

START_TEST(sign_init_with_unallowed_key)
{
	struct t t;
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_BYTE digest[32] = { 1 }, sig[128];
	CK_ULONG sig_len = sizeof sig;
	size_t mark;

	t_start(&t, "sign_init_with_unallowed_key");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &mech, t.ec), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_SignInit", "sign");
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"key\":\"release-ec\"", NULL), 1);
	ck_assert_msg(world_stderr_has(&t.w, "p11gate: denied sign with key release-ec (CKM_ECDSA)"),
	              "no refusal line on stderr");
	/* Nothing was started in the token. */
	ck_assert_rv(t.f->C_Sign(t.s, digest, sizeof digest, sig, &sig_len), CKR_OPERATION_NOT_INITIALIZED);
	t_end(&t);
}
END_TEST

START_TEST(sign_recover_init_with_unallowed_key)
{
	struct t t;
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	size_t mark;

	t_start(&t, "sign_recover_init_with_unallowed_key");
	mark = world_audit_lines(&t.w);
	/* SoftHSM2 2.6.1 lacks C_SignRecoverInit (docs/design.md, "Functions
	 * the token lists but lacks"): its own answer, and nothing can start,
	 * so nothing is recorded.  Over a token that has it, the init is
	 * judged like C_SignInit. */
	ck_assert_rv(t.f->C_SignRecoverInit(t.s, &mech, t.ec), CKR_FUNCTION_NOT_SUPPORTED);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);
	t_end(&t);
}
END_TEST

START_TEST(hmac_with_an_unnamed_secret_key)
{
	struct t t;
	CK_MECHANISM gen = { CKM_GENERIC_SECRET_KEY_GEN, NULL, 0 };
	CK_MECHANISM hmac = { CKM_SHA256_HMAC, NULL, 0 };
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_GENERIC_SECRET;
	CK_ULONG len = 32;
	CK_ATTRIBUTE templ[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_VALUE_LEN, &len, sizeof len },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_SIGN, &yes, sizeof yes },
	};
	CK_OBJECT_HANDLE key;
	size_t mark;

	t_start(&t, "hmac_with_an_unnamed_secret_key");
	ck_assert_rv(t.f->C_GenerateKey(t.s, &gen, templ, 5, &key), CKR_OK);
	mark = world_audit_lines(&t.w);
	/* Any key class signs; one the policy does not name is refused. */
	ck_assert_rv(t.f->C_SignInit(t.s, &hmac, key), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_SignInit", "sign");
	t_end(&t);
}
END_TEST

START_TEST(ecdh_derive)
{
	struct t t;
	CK_BYTE point[65];
	CK_ECDH1_DERIVE_PARAMS params = { CKD_NULL, 0, NULL, sizeof point, point };
	CK_MECHANISM mech = { CKM_ECDH1_DERIVE, &params, sizeof params };
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_GENERIC_SECRET;
	CK_ULONG len = 32;
	CK_ATTRIBUTE templ[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_VALUE_LEN, &len, sizeof len },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_EXTRACTABLE, &yes, sizeof yes },
		{ CKA_SENSITIVE, &no, sizeof no },
	};
	CK_OBJECT_HANDLE derived = CK_INVALID_HANDLE;
	char path[PATH_MAX + 16];
	EVP_PKEY *peer;
	size_t point_len = 0, mark;
	FILE *f;

	t_start(&t, "ecdh_derive");
	/* A valid peer point: the fixture's own EC public key. */
	snprintf(path, sizeof path, "%s/ec-pub.pem", t.w.token);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	peer = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert_ptr_nonnull(peer);
	ck_assert_int_eq(EVP_PKEY_get_octet_string_param(peer, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point,
	                                                 &point_len), 1);
	ck_assert_uint_eq(point_len, 65);
	EVP_PKEY_free(peer);

	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DeriveKey(t.s, &mech, t.ec, templ, 6, &derived), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_DeriveKey", "derive");
	ck_assert_uint_eq(world_count_class(&t.w, t.s, CKO_SECRET_KEY), 0);
	t_end(&t);
}
END_TEST

START_TEST(unwrap_with_rsa_key)
{
	struct t t;
	CK_MECHANISM mech = { CKM_RSA_PKCS, NULL, 0 };
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_AES;
	CK_ATTRIBUTE templ[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_TOKEN, &no, sizeof no },
	};
	CK_BYTE wrapped[256];
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	size_t mark;

	t_start(&t, "unwrap_with_rsa_key");
	ck_assert_int_eq(RAND_bytes(wrapped, sizeof wrapped), 1);
	wrapped[0] = 0;
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_UnwrapKey(t.s, &mech, t.rsa, wrapped, sizeof wrapped, templ, 3, &key),
	             CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_UnwrapKey", "unwrap");
	ck_assert_uint_eq(world_count_class(&t.w, t.s, CKO_SECRET_KEY), 0);
	t_end(&t);
}
END_TEST

START_TEST(wrap_the_rsa_key)
{
	struct t t;
	CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_MECHANISM wrap = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
	CK_ULONG len = 32;
	CK_ATTRIBUTE templ[] = {
		{ CKA_VALUE_LEN, &len, sizeof len },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_WRAP, &yes, sizeof yes },
		{ CKA_UNWRAP, &yes, sizeof yes },
	};
	CK_OBJECT_HANDLE aes;
	CK_BYTE out[4096], untouched[4096];
	CK_ULONG out_len = sizeof out;
	size_t mark;

	t_start(&t, "wrap_the_rsa_key");
	ck_assert_rv(t.f->C_GenerateKey(t.s, &gen, templ, 4, &aes), CKR_OK);
	memset(out, 0xa5, sizeof out);
	memcpy(untouched, out, sizeof out);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_WrapKey(t.s, &wrap, aes, t.rsa, out, &out_len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_WrapKey", "manage");
	ck_assert_msg(memcmp(out, untouched, sizeof out) == 0, "C_WrapKey wrote into the output buffer");
	t_end(&t);
}
END_TEST

/* Private-key uses no policy operation covers: refused even for
 * release-rsa, which everyone may sign with.  SoftHSM2 would answer these
 * with its own error codes; CKR_FUNCTION_REJECTED and the deny record
 * show that p11gate stopped them before the token. */
START_TEST(encrypt_with_private_key)
{
	struct t t;
	CK_MECHANISM mech = { CKM_RSA_X_509, NULL, 0 };
	CK_OBJECT_HANDLE pub;
	CK_BYTE block[256], out[256];
	CK_ULONG out_len = sizeof out;
	size_t mark;

	t_start(&t, "encrypt_with_private_key");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_EncryptInit(t.s, &mech, t.rsa), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_EncryptInit", "sign");
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"key\":\"release-rsa\"",
	                                          "\"mechanism\":\"CKM_RSA_X_509\"", NULL), 1);
	/* With the public key it is encryption: the policy names that key too
	 * (label and pin), so it is judged as encrypt, which no rule allows
	 * (test_key_uses.c has the rest of encrypt, and raw decryption). */
	pub = world_find(&t.w, t.s, CKO_PUBLIC_KEY, RSA_ID);
	memset(block, 0x11, sizeof block);
	block[0] = 0;
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_EncryptInit(t.s, &mech, pub), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_EncryptInit", "encrypt");
	ck_assert_rv(t.f->C_Encrypt(t.s, block, sizeof block, out, &out_len), CKR_OPERATION_NOT_INITIALIZED);
	/* A handle that names nothing: SoftHSM2's own code, as it gives it directly. */
	ck_assert_rv(t.f->C_EncryptInit(t.s, &mech, 0x7fff0000), CKR_OBJECT_HANDLE_INVALID);
	t_end(&t);
}
END_TEST

START_TEST(wrap_with_private_key)
{
	struct t t;
	CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_MECHANISM wrap = { CKM_RSA_X_509, NULL, 0 };
	CK_ULONG len = 32;
	CK_ATTRIBUTE templ[] = {
		{ CKA_VALUE_LEN, &len, sizeof len },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_EXTRACTABLE, &yes, sizeof yes },
	};
	CK_OBJECT_HANDLE aes;
	CK_BYTE out[512];
	CK_ULONG out_len = sizeof out;
	size_t mark;

	t_start(&t, "wrap_with_private_key");
	ck_assert_rv(t.f->C_GenerateKey(t.s, &gen, templ, 3, &aes), CKR_OK);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_WrapKey(t.s, &wrap, t.rsa, aes, out, &out_len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_WrapKey", "sign");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_WrapKey(t.s, &wrap, t.rsa, aes, NULL, &out_len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_WrapKey", "sign");
	t_end(&t);
}
END_TEST

START_TEST(digest_private_key)
{
	struct t t;
	CK_MECHANISM mech = { CKM_SHA256, NULL, 0 };
	size_t mark;

	t_start(&t, "digest_private_key");
	ck_assert_rv(t.f->C_DigestInit(t.s, &mech), CKR_OK);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DigestKey(t.s, t.ec), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_DigestKey", "manage");
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"key\":\"release-ec\"", NULL), 1);
	t_end(&t);
}
END_TEST

/* Found by review: p11gate judged and recorded the caller's mechanism and
 * data, then handed the token the caller's own pointers, which another
 * thread of the caller could change in between: raw RSA signing past a
 * mechanism rule, and a log naming other data than was signed.  Here a
 * second thread flips the mechanism and the data while this one signs;
 * every signature must be over the data its allow record names, with the
 * mechanism the rule allows. */
static const char SHA256_RSA_ONLY[] =
	"  - name: sha256-rsa-only\n"
	"    effect: allow\n"
	"    keys: [release-rsa]\n"
	"    operations: [sign]\n"
	"    mechanisms: [CKM_SHA256_RSA_PKCS]\n";

struct flipper {
	CK_MECHANISM *mech;
	CK_BYTE *data;
	size_t len;
	int stop;
};

static void *
flip(void *arg)
{
	struct flipper *f = arg;

	for (unsigned i = 0; !__atomic_load_n(&f->stop, __ATOMIC_RELAXED); i++) {
		__atomic_store_n(&f->mech->mechanism, (i & 1) ? CKM_RSA_X_509 : CKM_SHA256_RSA_PKCS,
		                 __ATOMIC_RELAXED);
		for (size_t k = 0; k < f->len; k++)
			__atomic_store_n(&f->data[k], (CK_BYTE)((i & 1) ? 'B' : 'A'), __ATOMIC_RELAXED);
	}
	return NULL;
}

static size_t
hex_decode(const char *hex, CK_BYTE *out, size_t max)
{
	size_t n = 0;
	unsigned v;

	while (n < max && sscanf(hex + 2 * n, "%2x", &v) == 1 && hex[2 * n] != '"')
		out[n++] = (CK_BYTE)v;
	return n;
}

START_TEST(caller_changes_mechanism_and_data_meanwhile)
{
	struct t t;
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE data[64], sig[512], recorded[64];
	char line[8192];
	struct flipper f = { &mech, data, sizeof data, 0 };
	unsigned signed_ok = 0;
	pthread_t thread;

	t_start(&t, "caller_changes_mechanism_and_data_meanwhile");
	world_policy(&t.w, SHA256_RSA_ONLY);
	memset(data, 'A', sizeof data);
	ck_assert_int_eq(pthread_create(&thread, NULL, flip, &f), 0);
	for (int i = 0; i < 150; i++) {
		CK_ULONG sig_len = sizeof sig;
		size_t mark = world_audit_lines(&t.w);
		const char *hex;

		if (t.f->C_SignInit(t.s, &mech, t.rsa) != CKR_OK)
			continue;       /* read as CKM_RSA_X_509: refused */
		if (t.f->C_Sign(t.s, data, sizeof data, sig, &sig_len) != CKR_OK)
			continue;
		signed_ok++;
		ck_assert_msg(world_audit_find_since(&t.w, mark, line, sizeof line, "\"decision\":\"allow\"",
		                                     "\"function\":\"C_Sign\"", NULL), "no allow record");
		ck_assert_msg(strstr(line, "\"mechanism\":\"CKM_SHA256_RSA_PKCS\"") != NULL,
		              "allowed with another mechanism: %s", line);
		hex = strstr(line, "\"data\":\"");
		ck_assert_ptr_nonnull(hex);
		ck_assert_uint_eq(hex_decode(hex + 8, recorded, sizeof recorded), sizeof recorded);
		ck_assert_msg(world_verify(&t.w, "rsa", recorded, sizeof recorded, sig, sig_len),
		              "signature %d is not CKM_SHA256_RSA_PKCS over the data its allow record names",
		              i);
	}
	__atomic_store_n(&f.stop, 1, __ATOMIC_RELAXED);
	pthread_join(thread, NULL);
	ck_assert_msg(signed_ok >= 10, "only %u of 150 signatures were made", signed_ok);
	t_end(&t);
}
END_TEST

/* ---- making another key pass as release-rsa ------------------------------------ */

START_TEST(relabel_ec_key_as_rsa)
{
	struct t t;
	CK_ATTRIBUTE templ[] = { { CKA_LABEL, "codesign-rsa", 12 } };
	size_t mark;

	t_start(&t, "relabel_ec_key_as_rsa");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SetAttributeValue(t.s, t.ec, templ, 1), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_SetAttributeValue", "manage");
	t_token_unchanged(&t);
	t_end(&t);
}
END_TEST

START_TEST(change_ec_key_id)
{
	struct t t;
	CK_ATTRIBUTE templ[] = { { CKA_ID, (void *)&RSA_ID, 1 } };
	size_t mark;

	t_start(&t, "change_ec_key_id");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SetAttributeValue(t.s, t.ec, templ, 1), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_SetAttributeValue", "manage");
	t_token_unchanged(&t);
	t_end(&t);
}
END_TEST

START_TEST(copy_ec_key_as_rsa)
{
	struct t t;
	CK_ATTRIBUTE templ[] = {
		{ CKA_LABEL, "codesign-rsa", 12 },
		{ CKA_TOKEN, &no, sizeof no },
	};
	CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
	size_t mark;

	t_start(&t, "copy_ec_key_as_rsa");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_CopyObject(t.s, t.ec, templ, 2, &copy), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_CopyObject", "manage");
	t_token_unchanged(&t);
	t_end(&t);
}
END_TEST

/* An administrator's policy may allow `manage` on both keys: relabelling
 * the EC key as codesign-rsa must still fail, because release-rsa is bound
 * to its key material (public_key_sha256), and the refused call must leave
 * one decision record, not an allow record for an operation that never
 * happened. */
START_TEST(relabel_refused_by_the_pin_when_manage_is_allowed)
{
	struct t t;
	CK_ATTRIBUTE templ[] = { { CKA_LABEL, "codesign-rsa", 12 } };
	size_t mark;

	t_start(&t, "relabel_refused_by_the_pin_when_manage_is_allowed");
	world_policy(&t.w,
	             "  - name: admins-manage\n"
	             "    effect: allow\n"
	             "    keys: [release-rsa, release-ec]\n"
	             "    operations: [sign, manage]\n");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SetAttributeValue(t.s, t.ec, templ, 1), CKR_FUNCTION_REJECTED);
	t_token_unchanged(&t);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"decision\":\"deny\"",
	                                          "public_key_sha256 pin", NULL), 1);
	world_expect_one_deny(&t.w, mark, "C_SetAttributeValue", "manage");
	t_end(&t);
}
END_TEST

/* One RSA parameter as a PKCS#11 big-endian integer. */
static CK_ULONG
rsa_param(const EVP_PKEY *pkey, const char *name, CK_BYTE *out, size_t room)
{
	BIGNUM *bn = NULL;
	int n;

	ck_assert_int_eq(EVP_PKEY_get_bn_param(pkey, name, &bn), 1);
	ck_assert_int_le(BN_num_bytes(bn), (int)room);
	n = BN_bn2bin(bn, out);
	BN_free(bn);
	return (CK_ULONG)n;
}

START_TEST(import_rsa_key_as_release_rsa)
{
	struct t t;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_KEY_TYPE type = CKK_RSA;
	CK_BYTE v[8][256];
	CK_ATTRIBUTE templ[16] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_PRIVATE, &yes, sizeof yes },
		{ CKA_SIGN, &yes, sizeof yes },
		{ CKA_LABEL, "codesign-rsa", 12 },
		{ CKA_ID, (void *)&RSA_ID, 1 },
	};
	static const char *const params[8] = {
		OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E, OSSL_PKEY_PARAM_RSA_D,
		OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2, OSSL_PKEY_PARAM_RSA_EXPONENT1,
		OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
	};
	static const CK_ATTRIBUTE_TYPE types[8] = {
		CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2,
		CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT,
	};
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	EVP_PKEY *pkey;
	size_t mark;

	t_start(&t, "import_rsa_key_as_release_rsa");
	pkey = EVP_RSA_gen(2048);
	ck_assert_ptr_nonnull(pkey);
	for (int i = 0; i < 8; i++) {
		templ[7 + i].type = types[i];
		templ[7 + i].pValue = v[i];
		templ[7 + i].ulValueLen = rsa_param(pkey, params[i], v[i], sizeof v[i]);
	}
	EVP_PKEY_free(pkey);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_CreateObject(t.s, templ, 15, &key), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_CreateObject", "manage");
	t_token_unchanged(&t);
	t_end(&t);
}
END_TEST

START_TEST(generate_key_pair_as_release_rsa)
{
	struct t t;
	/* DER OID of prime256v1. */
	static CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pub[] = {
		{ CKA_EC_PARAMS, p256, sizeof p256 },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_VERIFY, &yes, sizeof yes },
		{ CKA_LABEL, "codesign-rsa", 12 },
		{ CKA_ID, (void *)&RSA_ID, 1 },
	};
	CK_ATTRIBUTE priv[] = {
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_PRIVATE, &yes, sizeof yes },
		{ CKA_SIGN, &yes, sizeof yes },
		{ CKA_LABEL, "codesign-rsa", 12 },
		{ CKA_ID, (void *)&RSA_ID, 1 },
	};
	CK_OBJECT_HANDLE pk = CK_INVALID_HANDLE, sk = CK_INVALID_HANDLE;
	size_t mark;

	t_start(&t, "generate_key_pair_as_release_rsa");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_GenerateKeyPair(t.s, &mech, pub, 5, priv, 5, &pk, &sk), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_GenerateKeyPair", "manage");
	t_token_unchanged(&t);
	ck_assert_uint_eq(world_count_label(&t.w, t.s, CKO_PUBLIC_KEY, "codesign-rsa"), 1);
	t_end(&t);
}
END_TEST

/* ---- state and secrets ------------------------------------------------------------ */

START_TEST(set_operation_state)
{
	struct t t;
	CK_BYTE state[512];
	size_t mark;

	t_start(&t, "set_operation_state");
	/* A saved state could carry a signing operation on release-ec started
	 * where p11gate never judged it. */
	memset(state, 0x5a, sizeof state);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SetOperationState(t.s, state, sizeof state, t.ec, CK_INVALID_HANDLE),
	             CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_SetOperationState", "manage");
	t_end(&t);
}
END_TEST

/* Found by fuzz_pkcs11: C_InitToken passed through and wiped the policy's
 * keys (a `manage` of every key on the token). */
START_TEST(init_token)
{
	struct t t;
	CK_UTF8CHAR label[32];
	size_t mark;

	t_start(&t, "init_token");
	memset(label, ' ', sizeof label);
	memcpy(label, "release", 7);
	mark = world_audit_lines(&t.w);
	/* With a session open the token objects first: its answer, no record. */
	ck_assert_rv(t.f->C_InitToken(t.w.slot, (CK_UTF8CHAR_PTR)"12345678", 8, label),
	             CKR_SESSION_EXISTS);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);
	ck_assert_rv(t.f->C_CloseSession(t.s), CKR_OK);
	ck_assert_rv(t.f->C_InitToken(t.w.slot, (CK_UTF8CHAR_PTR)"12345678", 8, label),
	             CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_InitToken", "manage");
	t.s = world_session(&t.w);
	t.ec = world_find(&t.w, t.s, CKO_PRIVATE_KEY, EC_ID);   /* handles of a new login */
	t_token_unchanged(&t);   /* the keys are still there */
	t_end(&t);
}
END_TEST

/* Reading a named private key's value: refused or sensitive, never bytes. */
static void
no_key_bytes(struct t *t, CK_OBJECT_HANDLE key, CK_ATTRIBUTE_TYPE type, const char *what)
{
	CK_BYTE value[1024], untouched[1024];
	CK_ATTRIBUTE a = { type, value, sizeof value };
	size_t mark = world_audit_lines(&t->w);
	CK_RV rv;

	memset(value, 0x3c, sizeof value);
	memcpy(untouched, value, sizeof value);
	rv = t->f->C_GetAttributeValue(t->s, key, &a, 1);
	ck_assert_msg(rv == CKR_FUNCTION_REJECTED || rv == CKR_ATTRIBUTE_SENSITIVE,
	              "C_GetAttributeValue(%s) returned %s", what, world_rv_name(rv));
	ck_assert_msg(memcmp(value, untouched, sizeof value) == 0, "%s: key bytes were returned", what);
	ck_assert_msg(a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == sizeof value,
	              "%s: a value length of %lu was returned", what, (unsigned long)a.ulValueLen);
	if (rv == CKR_FUNCTION_REJECTED)
		world_expect_one_deny(&t->w, mark, "C_GetAttributeValue", "manage");
}

START_TEST(read_private_key_values)
{
	struct t t;

	t_start(&t, "read_private_key_values");
	no_key_bytes(&t, t.ec, CKA_VALUE, "the EC key's CKA_VALUE");
	no_key_bytes(&t, t.rsa, CKA_PRIVATE_EXPONENT, "the RSA key's CKA_PRIVATE_EXPONENT");
	no_key_bytes(&t, t.rsa, CKA_PRIME_1, "the RSA key's CKA_PRIME_1");
	t_end(&t);
}
END_TEST

static Suite *
bypass_suite(void)
{
	Suite *s = suite_create("bypass");
	TCase *allowed = tcase_create("allowed");
	TCase *uses = tcase_create("key uses");
	TCase *names = tcase_create("names");
	TCase *state = tcase_create("state and secrets");

	tcase_add_test(allowed, allowed_sign);
	tcase_add_test(allowed, length_query_then_too_small_then_sign);
	tcase_add_test(allowed, sign_without_init);
	tcase_add_test(allowed, closed_session_answered_by_the_token);
	tcase_add_test(allowed, close_all_behind_many_sessions_on_another_slot);
	tcase_add_test(uses, sign_init_with_unallowed_key);
	tcase_add_test(uses, sign_recover_init_with_unallowed_key);
	tcase_add_test(uses, hmac_with_an_unnamed_secret_key);
	tcase_add_test(uses, ecdh_derive);
	tcase_add_test(uses, unwrap_with_rsa_key);
	tcase_add_test(uses, wrap_the_rsa_key);
	tcase_add_test(uses, encrypt_with_private_key);
	tcase_add_test(uses, wrap_with_private_key);
	tcase_add_test(uses, digest_private_key);
	tcase_add_test(uses, caller_changes_mechanism_and_data_meanwhile);
	tcase_add_test(names, relabel_ec_key_as_rsa);
	tcase_add_test(names, change_ec_key_id);
	tcase_add_test(names, copy_ec_key_as_rsa);
	tcase_add_test(names, relabel_refused_by_the_pin_when_manage_is_allowed);
	tcase_add_test(names, import_rsa_key_as_release_rsa);
	tcase_add_test(names, generate_key_pair_as_release_rsa);
	tcase_add_test(state, set_operation_state);
	tcase_add_test(state, init_token);
	tcase_add_test(state, read_private_key_values);
	TCase *all[] = { allowed, uses, names, state };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		tcase_set_timeout(all[i], 60);
		suite_add_tcase(s, all[i]);
	}
	return s;
}

int
main(void)
{
	return world_run_suite(bypass_suite());
}
