/* SPDX-License-Identifier: Apache-2.0
 *
 * Every use of a key the policy names is judged, whatever the key's class
 * and whatever the call (issue 11, items 2 and 3), through p11gate.so over
 * a real SoftHSM2 token.  A named AES key that only another user may sign
 * (CMAC) with must not compute the same MAC, or anything else, through
 * encryption, decryption, verification, derivation, wrapping, unwrapping
 * or a digest of the key; a raw RSA decryption is a signature, judged and
 * recorded as one.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "world.h"

static CK_BBOOL yes = CK_TRUE;
static CK_BBOOL no = CK_FALSE;

/* The fixture's keys, plus mac-aes: an AES key made in the test (a session
 * object labelled mac-aes). */
static const char MAC_KEY[] =
	"  mac-aes:\n"
	"    uri: \"pkcs11:token=release;object=mac-aes\"\n"
	"    owner: release-engineering\n";

/* Lets the test make mac-aes; replaced before the key is used. */
static const char SETUP_RULES[] =
	"  - name: setup-makes-the-mac-key\n"
	"    effect: allow\n"
	"    keys: [mac-aes]\n"
	"    operations: [manage]\n";

/* Only uid 4242 (not the test's user) may MAC with mac-aes; everyone may
 * sign with release-rsa. */
static const char RULES[] =
	"  - name: only-4242-macs\n"
	"    effect: allow\n"
	"    keys: [mac-aes]\n"
	"    operations: [sign]\n"
	"    callers:\n"
	"      users: [4242]\n"
	"  - name: everyone-signs-with-rsa\n"
	"    effect: allow\n"
	"    keys: [release-rsa]\n"
	"    operations: [sign]\n";

struct t {
	struct world w;
	CK_FUNCTION_LIST_PTR f;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE mac;        /* named: mac-aes */
	CK_OBJECT_HANDLE plain;      /* an AES key no policy key names */
};

static void
write_policy(const struct t *t, const char *rules)
{
	char *text = world_policy_render(&t->w, rules);
	char *at = strstr(text, "rules:\n"), *full;

	ck_assert_ptr_nonnull(at);
	ck_assert_int_gt(asprintf(&full, "%.*s%s%s", (int)(at - text), text, MAC_KEY, at), 0);
	world_policy_text(&t->w, full);
	free(full);
	free(text);
}

static CK_OBJECT_HANDLE
make_aes(struct t *t, const char *label)
{
	CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ULONG len = 16;
	CK_ATTRIBUTE templ[] = {
		{ CKA_VALUE_LEN, &len, sizeof len },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ENCRYPT, &yes, sizeof yes },
		{ CKA_DECRYPT, &yes, sizeof yes },
		{ CKA_SIGN, &yes, sizeof yes },
		{ CKA_VERIFY, &yes, sizeof yes },
		{ CKA_WRAP, &yes, sizeof yes },
		{ CKA_UNWRAP, &yes, sizeof yes },
		{ CKA_DERIVE, &yes, sizeof yes },
		{ CKA_EXTRACTABLE, &yes, sizeof yes },
		{ CKA_SENSITIVE, &no, sizeof no },
	};
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;

	ck_assert_rv(t->f->C_GenerateKey(t->s, &gen, templ, sizeof templ / sizeof templ[0], &key), CKR_OK);
	return key;
}

/* A world whose policy is rules, with mac-aes and an unnamed AES key made
 * under the setup policy first. */
static void
t_start(struct t *t, const char *name, const char *rules)
{
	printf("key_uses: %s\n", name);
	fflush(stdout);
	world_new(&t->w, "key_uses", name);
	write_policy(t, SETUP_RULES);
	world_open(&t->w);
	t->f = t->w.f;
	t->s = world_session(&t->w);
	t->mac = make_aes(t, "mac-aes");
	t->plain = make_aes(t, "scratch-aes");
	write_policy(t, rules);
}

static void
t_end(struct t *t)
{
	world_audit_verify(&t->w);
	world_close(&t->w);
}

/* The deny record names mac-aes. */
static void
expect_deny(struct t *t, size_t mark, const char *function, const char *operation)
{
	world_expect_one_deny(&t->w, mark, function, operation);
	ck_assert_uint_eq(world_audit_count_since(&t->w, mark, "\"key\":\"mac-aes\"", NULL), 1);
}

/* ---- item 2: the MAC key's other uses ------------------------------------------ */

START_TEST(cmac_itself_is_refused)
{
	struct t t;
	CK_MECHANISM cmac = { CKM_AES_CMAC, NULL, 0 };
	size_t mark;

	t_start(&t, "cmac_itself_is_refused", RULES);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &cmac, t.mac), CKR_FUNCTION_REJECTED);
	expect_deny(&t, mark, "C_SignInit", "sign");
	t_end(&t);
}
END_TEST

/* AES-ECB of chosen blocks computes the CMAC the rule keeps from us. */
START_TEST(encrypt_with_named_secret_key)
{
	struct t t;
	CK_MECHANISM ecb = { CKM_AES_ECB, NULL, 0 };
	CK_BYTE block[16] = { 0 }, out[16];
	CK_ULONG out_len = sizeof out;
	size_t mark;

	t_start(&t, "encrypt_with_named_secret_key", RULES);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_EncryptInit(t.s, &ecb, t.mac), CKR_FUNCTION_REJECTED);
	expect_deny(&t, mark, "C_EncryptInit", "encrypt");
	ck_assert_msg(world_stderr_has(&t.w, "p11gate: denied encrypt with key mac-aes (CKM_AES_ECB)"),
	              "no refusal line on stderr");
	ck_assert_rv(t.f->C_Encrypt(t.s, block, sizeof block, out, &out_len), CKR_OPERATION_NOT_INITIALIZED);
	/* A key the policy does not name is not p11gate's: forwarded, unrecorded. */
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_EncryptInit(t.s, &ecb, t.plain), CKR_OK);
	ck_assert_rv(t.f->C_Encrypt(t.s, block, sizeof block, out, &out_len), CKR_OK);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);
	t_end(&t);
}
END_TEST

START_TEST(decrypt_with_named_secret_key)
{
	struct t t;
	CK_MECHANISM ecb = { CKM_AES_ECB, NULL, 0 };
	size_t mark;

	t_start(&t, "decrypt_with_named_secret_key", RULES);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptInit(t.s, &ecb, t.mac), CKR_FUNCTION_REJECTED);
	expect_deny(&t, mark, "C_DecryptInit", "decrypt");
	t_end(&t);
}
END_TEST

/* A verification oracle: with a MAC length the caller chooses, a MAC can be
 * found byte by byte. */
START_TEST(verify_with_named_secret_key)
{
	struct t t;
	CK_MECHANISM cmac = { CKM_AES_CMAC, NULL, 0 };
	size_t mark;

	t_start(&t, "verify_with_named_secret_key", RULES);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_VerifyInit(t.s, &cmac, t.mac), CKR_FUNCTION_REJECTED);
	expect_deny(&t, mark, "C_VerifyInit", "verify");
	t_end(&t);
}
END_TEST

/* AES-ECB-ENCRYPT-DATA: the new key's value is the caller's data encrypted. */
START_TEST(derive_from_named_secret_key)
{
	struct t t;
	CK_BYTE data[16] = { 0 };
	CK_KEY_DERIVATION_STRING_DATA param = { data, sizeof data };
	CK_MECHANISM mech = { CKM_AES_ECB_ENCRYPT_DATA, &param, sizeof param };
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_GENERIC_SECRET;
	CK_ULONG len = 16;
	CK_ATTRIBUTE templ[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_VALUE_LEN, &len, sizeof len },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_EXTRACTABLE, &yes, sizeof yes },
		{ CKA_SENSITIVE, &no, sizeof no },
	};
	CK_OBJECT_HANDLE derived = CK_INVALID_HANDLE;
	size_t mark;

	t_start(&t, "derive_from_named_secret_key", RULES);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DeriveKey(t.s, &mech, t.mac, templ, 6, &derived), CKR_FUNCTION_REJECTED);
	expect_deny(&t, mark, "C_DeriveKey", "derive");
	ck_assert_uint_eq(world_count_class(&t.w, t.s, CKO_SECRET_KEY), 2);
	/* The same derivation from the unnamed key works: the mechanism is real. */
	ck_assert_rv(t.f->C_DeriveKey(t.s, &mech, t.plain, templ, 6, &derived), CKR_OK);
	t_end(&t);
}
END_TEST

/* A second key in the mechanism's parameter is used as well (SoftHSM2
 * does not know the mechanism: p11gate refuses before the token). */
START_TEST(derive_concatenating_named_secret_key)
{
	struct t t;
	CK_OBJECT_HANDLE other;
	CK_MECHANISM mech = { CKM_CONCATENATE_BASE_AND_KEY, &other, sizeof other };
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_GENERIC_SECRET;
	CK_ATTRIBUTE templ[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_TOKEN, &no, sizeof no },
	};
	CK_OBJECT_HANDLE derived = CK_INVALID_HANDLE;
	size_t mark;

	t_start(&t, "derive_concatenating_named_secret_key", RULES);
	other = t.mac;
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DeriveKey(t.s, &mech, t.plain, templ, 3, &derived), CKR_FUNCTION_REJECTED);
	expect_deny(&t, mark, "C_DeriveKey", "derive");
	t_end(&t);
}
END_TEST

/* ECMQV's parameter names a second private key (hPrivateData), used as
 * much as the base key: a named one is judged (SoftHSM2 does not know
 * the mechanism: p11gate refuses before the token).  The layout is the
 * standard's CK_ECMQV_DERIVE_PARAMS, which p11-kit's header lacks. */
START_TEST(derive_with_named_private_key_in_parameter)
{
	struct t t;
	struct {
		CK_ULONG kdf, shared_len;
		CK_BYTE_PTR shared;
		CK_ULONG public_len;
		CK_BYTE_PTR public_data;
		CK_ULONG private_len;
		CK_OBJECT_HANDLE private_key;
		CK_ULONG public_len2;
		CK_BYTE_PTR public_data2;
		CK_OBJECT_HANDLE public_key;
	} params = { .kdf = CKD_NULL };
	CK_MECHANISM mech = { CKM_ECMQV_DERIVE, &params, sizeof params };
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_GENERIC_SECRET;
	CK_ATTRIBUTE templ[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_TOKEN, &no, sizeof no },
	};
	CK_OBJECT_HANDLE derived = CK_INVALID_HANDLE;
	size_t mark;

	t_start(&t, "derive_with_named_private_key_in_parameter", RULES);
	params.private_key = world_find(&t.w, t.s, CKO_PRIVATE_KEY, 0x02);
	params.public_key = t.plain;
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DeriveKey(t.s, &mech, t.plain, templ, 3, &derived), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_DeriveKey", "derive");
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"key\":\"release-ec\"", NULL), 1);
	t_end(&t);
}
END_TEST

/* Wrapping a key whose value the caller chose encrypts that value. */
START_TEST(wrap_with_named_secret_key)
{
	struct t t;
	CK_MECHANISM wrap = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_BYTE out[64], untouched[64];
	CK_ULONG out_len = sizeof out;
	size_t mark;

	t_start(&t, "wrap_with_named_secret_key", RULES);
	memset(out, 0x5a, sizeof out);
	memcpy(untouched, out, sizeof out);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_WrapKey(t.s, &wrap, t.mac, t.plain, out, &out_len), CKR_FUNCTION_REJECTED);
	expect_deny(&t, mark, "C_WrapKey", "wrap");
	ck_assert_msg(memcmp(out, untouched, sizeof out) == 0, "C_WrapKey wrote into the output buffer");
	/* Wrapping with the unnamed key is forwarded (it works: 24 bytes). */
	out_len = sizeof out;
	ck_assert_rv(t.f->C_WrapKey(t.s, &wrap, t.plain, t.plain, out, &out_len), CKR_OK);
	ck_assert_uint_eq(out_len, 24);
	t_end(&t);
}
END_TEST

START_TEST(unwrap_with_named_secret_key)
{
	struct t t;
	CK_MECHANISM wrap = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_GENERIC_SECRET;
	CK_ATTRIBUTE templ[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_EXTRACTABLE, &yes, sizeof yes },
		{ CKA_SENSITIVE, &no, sizeof no },
	};
	CK_BYTE wrapped[24];
	CK_ULONG wrapped_len = sizeof wrapped;
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	size_t mark;

	t_start(&t, "unwrap_with_named_secret_key", RULES);
	ck_assert_rv(t.f->C_WrapKey(t.s, &wrap, t.plain, t.plain, wrapped, &wrapped_len), CKR_OK);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_UnwrapKey(t.s, &wrap, t.mac, wrapped, wrapped_len, templ, 5, &key),
	             CKR_FUNCTION_REJECTED);
	expect_deny(&t, mark, "C_UnwrapKey", "unwrap");
	ck_assert_uint_eq(world_count_class(&t.w, t.s, CKO_SECRET_KEY), 2);
	t_end(&t);
}
END_TEST

/* SHA-256 over the key's value: a function of the secret. */
START_TEST(digest_named_secret_key)
{
	struct t t;
	CK_MECHANISM sha = { CKM_SHA256, NULL, 0 };
	CK_BYTE digest[32];
	CK_ULONG digest_len = sizeof digest;
	size_t mark;

	t_start(&t, "digest_named_secret_key", RULES);
	ck_assert_rv(t.f->C_DigestInit(t.s, &sha), CKR_OK);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DigestKey(t.s, t.mac), CKR_FUNCTION_REJECTED);
	expect_deny(&t, mark, "C_DigestKey", "manage");
	ck_assert_rv(t.f->C_DigestKey(t.s, t.plain), CKR_OK);
	ck_assert_rv(t.f->C_DigestFinal(t.s, digest, &digest_len), CKR_OK);
	t_end(&t);
}
END_TEST

/* A named public key is judged too: encrypt and verify with release-rsa's
 * public key object (named by its label and pin). */
START_TEST(named_public_key_uses)
{
	struct t t;
	CK_MECHANISM rsa = { CKM_RSA_PKCS, NULL, 0 };
	CK_MECHANISM sha_rsa = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_OBJECT_HANDLE pub;
	size_t mark;

	t_start(&t, "named_public_key_uses", RULES);
	pub = world_find(&t.w, t.s, CKO_PUBLIC_KEY, 0x01);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_EncryptInit(t.s, &rsa, pub), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_EncryptInit", "encrypt");
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"key\":\"release-rsa\"", NULL), 1);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_VerifyInit(t.s, &sha_rsa, pub), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_VerifyInit", "verify");
	/* SoftHSM2 2.6.1 lacks C_VerifyRecover*: its own answer, nothing judged. */
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_VerifyRecoverInit(t.s, &rsa, pub), CKR_FUNCTION_NOT_SUPPORTED);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);
	t_end(&t);
}
END_TEST

/* With the operations allowed, each use is recorded: an allow record
 * before the token starts it, and the token's answer. */
static const char ALLOW_OTHER_USES[] =
	"  - name: everyone-encrypts-verifies-wraps\n"
	"    effect: allow\n"
	"    keys: [mac-aes]\n"
	"    operations: [encrypt, decrypt, verify, wrap]\n";

START_TEST(allowed_uses_are_recorded)
{
	struct t t;
	CK_MECHANISM ecb = { CKM_AES_ECB, NULL, 0 }, cmac = { CKM_AES_CMAC, NULL, 0 };
	CK_MECHANISM wrap = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_BYTE block[16] = { 1 }, out[32], back[16];
	CK_ULONG out_len = sizeof out, back_len = sizeof back;
	size_t mark;

	t_start(&t, "allowed_uses_are_recorded", ALLOW_OTHER_USES);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_EncryptInit(t.s, &ecb, t.mac), CKR_OK);
	world_expect_one_allow(&t.w, mark, "C_EncryptInit");
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"decision\":\"allow\"", "\"operation\":\"encrypt\"",
	                                          "\"key\":\"mac-aes\"", "\"rule\":\"everyone-encrypts-verifies-wraps\"",
	                                          "\"mechanism\":\"CKM_AES_ECB\"", NULL), 1);
	ck_assert_rv(t.f->C_Encrypt(t.s, block, sizeof block, out, &out_len), CKR_OK);
	ck_assert_uint_eq(out_len, 16);

	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptInit(t.s, &ecb, t.mac), CKR_OK);
	world_expect_one_allow(&t.w, mark, "C_DecryptInit");
	ck_assert_rv(t.f->C_Decrypt(t.s, out, out_len, back, &back_len), CKR_OK);
	ck_assert_uint_eq(back_len, sizeof block);
	ck_assert_msg(memcmp(back, block, sizeof block) == 0, "the decryption is not the block encrypted");
	/* Judged at its init only: the decryption itself wrote nothing more. */
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"function\":\"C_Decrypt\"", NULL), 0);

	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_VerifyInit(t.s, &cmac, t.mac), CKR_OK);
	world_expect_one_allow(&t.w, mark, "C_VerifyInit");
	ck_assert_rv(t.f->C_Verify(t.s, block, sizeof block, out, 16), CKR_SIGNATURE_INVALID);

	mark = world_audit_lines(&t.w);
	out_len = sizeof out;
	ck_assert_rv(t.f->C_WrapKey(t.s, &wrap, t.mac, t.plain, out, &out_len), CKR_OK);
	world_expect_one_allow(&t.w, mark, "C_WrapKey");
	ck_assert_uint_eq(out_len, 24);
	t_end(&t);
}
END_TEST

/* ---- item 3: a raw private-key transformation is a signature --------------------- */

static const char DECRYPT_ONLY[] =
	"  - name: everyone-decrypts-with-rsa\n"
	"    effect: allow\n"
	"    keys: [release-rsa]\n"
	"    operations: [decrypt]\n";

/* A PKCS#1 v1.5 block over SHA-256(data): what C_Sign(CKM_SHA256_RSA_PKCS)
 * raises to the private exponent. */
static void
signature_block(const void *data, size_t len, CK_BYTE block[256])
{
	static const CK_BYTE prefix[] = {
		0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
	};
	unsigned int n = 0;
	size_t t_len = sizeof prefix + 32;

	memset(block, 0xff, 256);
	block[0] = 0x00;
	block[1] = 0x01;
	block[256 - t_len - 1] = 0x00;
	memcpy(block + 256 - t_len, prefix, sizeof prefix);
	ck_assert_int_eq(EVP_Digest(data, len, block + 256 - 32, &n, EVP_sha256(), NULL), 1);
}

START_TEST(raw_decryption_under_a_decrypt_rule)
{
	struct t t;
	CK_MECHANISM raw = { CKM_RSA_X_509, NULL, 0 }, pkcs = { CKM_RSA_PKCS, NULL, 0 };
	CK_OBJECT_HANDLE rsa;
	CK_BYTE block[256], out[256];
	CK_ULONG out_len = sizeof out;
	size_t mark;

	t_start(&t, "raw_decryption_under_a_decrypt_rule", DECRYPT_ONLY);
	rsa = world_find(&t.w, t.s, CKO_PRIVATE_KEY, 0x01);
	signature_block("forged", 6, block);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptInit(t.s, &raw, rsa), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_DecryptInit", "sign");
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"key\":\"release-rsa\"",
	                                          "\"mechanism\":\"CKM_RSA_X_509\"", NULL), 1);
	ck_assert_rv(t.f->C_Decrypt(t.s, block, sizeof block, out, &out_len), CKR_OPERATION_NOT_INITIALIZED);
	/* A padded decryption is what the rule allows. */
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptInit(t.s, &pkcs, rsa), CKR_OK);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"decision\":\"deny\"", NULL), 0);
	t_end(&t);
}
END_TEST

START_TEST(raw_decryption_is_recorded_as_a_signature)
{
	struct t t;
	CK_MECHANISM raw = { CKM_RSA_X_509, NULL, 0 };
	CK_OBJECT_HANDLE rsa;
	CK_BYTE block[256], out[256];
	CK_ULONG out_len = sizeof out;
	size_t mark;

	t_start(&t, "raw_decryption_is_recorded_as_a_signature", RULES);
	rsa = world_find(&t.w, t.s, CKO_PRIVATE_KEY, 0x01);
	signature_block("a release artefact", 18, block);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptInit(t.s, &raw, rsa), CKR_OK);
	ck_assert_rv(t.f->C_Decrypt(t.s, block, sizeof block, out, &out_len), CKR_OK);
	ck_assert_uint_eq(out_len, 256);
	ck_assert_msg(world_verify(&t.w, "rsa", "a release artefact", 18, out, out_len),
	              "the raw decryption is not a signature (the test's premise)");
	world_expect_one_allow(&t.w, mark, "C_Decrypt");
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"decision\":\"allow\"", "\"operation\":\"sign\"",
	                                          "\"rule\":\"everyone-signs-with-rsa\"",
	                                          "\"mechanism\":\"CKM_RSA_X_509\"", NULL), 1);
	t_end(&t);
}
END_TEST

static Suite *
key_uses_suite(void)
{
	Suite *s = suite_create("key_uses");
	TCase *secret = tcase_create("named_secret_key");
	TCase *other = tcase_create("other");

	tcase_set_timeout(secret, 60);
	tcase_set_timeout(other, 60);
	tcase_add_test(secret, cmac_itself_is_refused);
	tcase_add_test(secret, encrypt_with_named_secret_key);
	tcase_add_test(secret, decrypt_with_named_secret_key);
	tcase_add_test(secret, verify_with_named_secret_key);
	tcase_add_test(secret, derive_from_named_secret_key);
	tcase_add_test(secret, derive_concatenating_named_secret_key);
	tcase_add_test(other, derive_with_named_private_key_in_parameter);
	tcase_add_test(secret, wrap_with_named_secret_key);
	tcase_add_test(secret, unwrap_with_named_secret_key);
	tcase_add_test(secret, digest_named_secret_key);
	tcase_add_test(secret, allowed_uses_are_recorded);
	tcase_add_test(other, named_public_key_uses);
	tcase_add_test(other, raw_decryption_under_a_decrypt_rule);
	tcase_add_test(other, raw_decryption_is_recorded_as_a_signature);
	suite_add_tcase(s, secret);
	suite_add_tcase(s, other);
	return s;
}

int
main(void)
{
	return world_run_suite(key_uses_suite());
}
