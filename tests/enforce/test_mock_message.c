/* SPDX-License-Identifier: Apache-2.0
 *
 * The PKCS#11 3.0 message-based calls through p11gate.so, over the mock
 * 3.0 token (tests/mock): SoftHSM2 2.6.1 has none of them, so these paths
 * are tested nowhere else.  Each message signed or decrypted with a private
 * key must be judged and recorded on its own (allow before the token acts,
 * result after), refused ones must leave a deny record and no output, and
 * the token's own answers must come back unchanged.  The mock proves only
 * the gate's paths; the SoftHSM2 suites remain the proof against a token.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "world.h"
#include "../mock/mock.h"

static const char RULES[] =
	"  - name: tests-use-the-keys\n"
	"    effect: allow\n"
	"    keys: [signer, secret]\n"
	"    operations: [sign, decrypt, encrypt, verify]\n";

/* signer may only decrypt (no sign): a raw decryption is a signature. */
static const char DECRYPT_ONLY[] =
	"  - name: tests-only-decrypt\n"
	"    effect: allow\n"
	"    keys: [signer]\n"
	"    operations: [decrypt]\n";

/* Nothing is allowed: every judged use is refused. */
static const char NOTHING[] =
	"  - name: tests-verify-only\n"
	"    effect: allow\n"
	"    keys: [secret]\n"
	"    operations: [verify]\n";

static CK_MECHANISM sign_mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
static CK_MECHANISM pkcs_mech = { CKM_RSA_PKCS, NULL, 0 };
static CK_MECHANISM raw_mech = { CKM_RSA_X_509, NULL, 0 };
static CK_MECHANISM gcm_mech = { CKM_AES_GCM, NULL, 0 };

struct t {
	struct world w;
	struct mock_function_list_3_0 *f;   /* p11gate's 3.0 table */
	const struct mock_p11_control *m;
	CK_SESSION_HANDLE s;
};

static void
t_start(struct t *t, const char *name, const char *rules)
{
	printf("mock-message: %s\n", name);
	fflush(stdout);
	t->s = world_mock_start(&t->w, "mock-message", name, rules);
	t->m = world_mock(&t->w);
	t->f = world_interface_3_0(&t->w);
}

static void
t_end(struct t *t)
{
	world_audit_verify(&t->w);
	world_close(&t->w);
}

#define expect_allowed(t, mark, function, operation, data, len) \
	world_expect_allow_data(&(t)->w, (mark), (function), (operation), (data), (len))

START_TEST(sign_message_each_message_recorded)
{
	struct t t;
	CK_BYTE sig[64], want[32];
	CK_ULONG len = sizeof sig;
	size_t mark;

	t_start(&t, "sign_message_each_message_recorded", RULES);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_MessageSignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);          /* nothing produced yet */
	ck_assert_rv(t.f->C_SignMessage(t.s, NULL, 0, (CK_BYTE_PTR)"one", 3, sig, &len), CKR_OK);
	world_mock_signature("mock-sign", "one", 3, want);
	ck_assert_uint_eq(len, 32);
	ck_assert_mem_eq(sig, want, 32);
	expect_allowed(&t, mark, "C_SignMessage", "sign", "one", 3);

	/* The second message is judged and recorded on its own. */
	mark = world_audit_lines(&t.w);
	len = sizeof sig;
	ck_assert_rv(t.f->C_SignMessage(t.s, NULL, 0, (CK_BYTE_PTR)"two", 3, sig, &len), CKR_OK);
	world_mock_signature("mock-sign", "two", 3, want);
	ck_assert_mem_eq(sig, want, 32);
	expect_allowed(&t, mark, "C_SignMessage", "sign", "two", 3);
	ck_assert_uint_eq(t.m->calls("C_SignMessage"), 2);

	ck_assert_rv(t.f->C_MessageSignFinal(t.s), CKR_OK);
	ck_assert(!t.m->active(t.s, CKF_MESSAGE_SIGN));
	/* Ended: p11gate answers for an operation it no longer runs. */
	len = sizeof sig;
	ck_assert_rv(t.f->C_SignMessage(t.s, NULL, 0, (CK_BYTE_PTR)"three", 5, sig, &len),
	             CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_SignMessage"), 2);
	t_end(&t);
}
END_TEST

START_TEST(sign_message_unnamed_key_refused_at_init)
{
	struct t t;

	t_start(&t, "sign_message_unnamed_key_refused_at_init", RULES);
	size_t mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_MessageSignInit(t.s, &sign_mech, MOCK_KEY_OTHER), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_MessageSignInit", "sign");
	ck_assert_uint_eq(t.m->calls("C_MessageSignInit"), 0);
	ck_assert(!t.m->active(t.s, CKF_MESSAGE_SIGN));
	ck_assert(world_stderr_has(&t.w, "denied sign with key \"mock-other\""));
	t_end(&t);
}
END_TEST

/* Allowed at the init, refused at the message: a deny record, no
 * signature for the caller, and the next message is judged afresh. */
START_TEST(sign_message_refused_at_output)
{
	struct t t;
	CK_BYTE sig[64], want[32];
	CK_ULONG len = sizeof sig;
	size_t mark;

	t_start(&t, "sign_message_refused_at_output", RULES);
	ck_assert_rv(t.f->C_MessageSignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	world_policy(&t.w, NOTHING);
	mark = world_audit_lines(&t.w);
	memset(sig, 0xee, sizeof sig);
	ck_assert_rv(t.f->C_SignMessage(t.s, NULL, 0, (CK_BYTE_PTR)"one", 3, sig, &len), CKR_FUNCTION_REJECTED);
	world_mock_signature("mock-sign", "one", 3, want);
	ck_assert_msg(memcmp(sig, want, 32) != 0, "a refused message's signature reached the caller");
	for (size_t i = 0; i < sizeof sig; i++)
		ck_assert_uint_eq(sig[i], 0xee);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"decision\":\"deny\"", "\"function\":\"C_SignMessage\"", NULL), 1);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"decision\":\"allow\"", NULL), 0);

	/* Allowed again: the next message is judged on its own. */
	world_policy(&t.w, RULES);
	mark = world_audit_lines(&t.w);
	len = sizeof sig;
	ck_assert_rv(t.f->C_SignMessage(t.s, NULL, 0, (CK_BYTE_PTR)"two", 3, sig, &len), CKR_OK);
	world_mock_signature("mock-sign", "two", 3, want);
	ck_assert_mem_eq(sig, want, 32);
	expect_allowed(&t, mark, "C_SignMessage", "sign", "two", 3);
	ck_assert_rv(t.f->C_MessageSignFinal(t.s), CKR_OK);
	t_end(&t);
}
END_TEST

/* Begin, parts without a signature pointer, the last part: one allow
 * record naming all the parts, written once. */
START_TEST(sign_message_in_parts)
{
	struct t t;
	CK_BYTE sig[64], want[32];
	CK_ULONG len = 0;
	size_t mark;

	t_start(&t, "sign_message_in_parts", RULES);
	ck_assert_rv(t.f->C_MessageSignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignMessageBegin(t.s, NULL, 0), CKR_OK);
	ck_assert_rv(t.f->C_SignMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"part-one,", 9, NULL, NULL), CKR_OK);
	ck_assert_rv(t.f->C_SignMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"part-two,", 9, NULL, NULL), CKR_OK);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);
	/* A length query of the last part: no record, the message goes on. */
	ck_assert_rv(t.f->C_SignMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"end", 3, NULL, &len), CKR_OK);
	ck_assert_uint_eq(len, 32);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);
	len = sizeof sig;
	ck_assert_rv(t.f->C_SignMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"end", 3, sig, &len), CKR_OK);
	world_mock_signature("mock-sign", "part-one,part-two,end", 21, want);
	ck_assert_uint_eq(len, 32);
	ck_assert_mem_eq(sig, want, 32);
	expect_allowed(&t, mark, "C_SignMessageNext", "sign", "part-one,part-two,end", 21);
	ck_assert_rv(t.f->C_MessageSignFinal(t.s), CKR_OK);
	t_end(&t);
}
END_TEST

/* After CKR_BUFFER_TOO_SMALL on the last part, the allow record names
 * the message with that part: a retry with another last part must not be
 * signed unless it too is judged and recorded. */
START_TEST(sign_message_last_part_retry_with_other_data)
{
	struct t t;
	CK_BYTE sig[64];
	CK_ULONG len = 8;
	CK_RV rv;
	size_t mark;

	t_start(&t, "sign_message_last_part_retry_with_other_data", RULES);
	ck_assert_rv(t.f->C_MessageSignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignMessageBegin(t.s, NULL, 0), CKR_OK);
	ck_assert_rv(t.f->C_SignMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"pay ", 4, NULL, NULL), CKR_OK);
	ck_assert_rv(t.f->C_SignMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"10", 2, sig, &len), CKR_BUFFER_TOO_SMALL);
	ck_assert(world_audit_find_data_since(&t.w, mark, "pay 10", 6, "\"decision\":\"allow\"", NULL, 0));
	len = sizeof sig;
	rv = t.f->C_SignMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"10000", 5, sig, &len);
	if (rv == CKR_OK)
		ck_assert_msg(world_audit_find_data_since(&t.w, mark, "pay 10000", 9, "\"decision\":\"allow\"", NULL, 0),
		              "the token signed 'pay 10000'; the log's allow record names 'pay 10'");
	else
		ck_assert_rv(rv, CKR_FUNCTION_REJECTED);
	t_end(&t);
}
END_TEST

/* The honest retry: the same last part with a larger buffer signs what
 * the one allow record names. */
START_TEST(sign_message_last_part_retry)
{
	struct t t;
	CK_BYTE sig[64], want[32];
	CK_ULONG len = 8;
	size_t mark;

	t_start(&t, "sign_message_last_part_retry", RULES);
	ck_assert_rv(t.f->C_MessageSignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignMessageBegin(t.s, NULL, 0), CKR_OK);
	ck_assert_rv(t.f->C_SignMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"pay ", 4, NULL, NULL), CKR_OK);
	ck_assert_rv(t.f->C_SignMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"10", 2, sig, &len), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(len, 32);
	/* No more parts once the allow record names the message. */
	ck_assert_rv(t.f->C_SignMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"0", 1, NULL, NULL), CKR_FUNCTION_REJECTED);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"decision\":\"deny\"", NULL), 1);
	len = sizeof sig;
	ck_assert_rv(t.f->C_SignMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"10", 2, sig, &len), CKR_OK);
	world_mock_signature("mock-sign", "pay 10", 6, want);
	ck_assert_mem_eq(sig, want, 32);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"decision\":\"allow\"", NULL), 1);
	ck_assert(world_audit_find_data_since(&t.w, mark, "pay 10", 6, "\"decision\":\"allow\"", NULL, 0));
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"event\":\"result\"", "\"rv\":\"CKR_OK\"", NULL), 1);
	t_end(&t);
}
END_TEST

/* The same for the first part of a message decrypted in parts. */
START_TEST(decrypt_message_part_retry_with_other_data)
{
	struct t t;
	CK_BYTE plain[64];
	CK_ULONG len = 1;
	CK_RV rv;
	size_t mark;

	t_start(&t, "decrypt_message_part_retry_with_other_data", RULES);
	ck_assert_rv(t.f->C_MessageDecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptMessageBegin(t.s, NULL, 0, NULL, 0), CKR_OK);
	ck_assert_rv(t.f->C_DecryptMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"\x3b\x3c", 2, plain, &len, 0),
	             CKR_BUFFER_TOO_SMALL);
	len = sizeof plain;
	rv = t.f->C_DecryptMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"\x01\x02", 2, plain, &len, 0);
	if (rv == CKR_OK)
		ck_assert_msg(world_audit_find_data_since(&t.w, mark, "\x01\x02", 2, "\"decision\":\"allow\"", NULL, 0),
		              "ciphertext was decrypted that no allow record names");
	else
		ck_assert_rv(rv, CKR_FUNCTION_REJECTED);
	t_end(&t);
}
END_TEST

START_TEST(decrypt_message_recorded)
{
	struct t t;
	CK_BYTE plain[64];
	CK_ULONG len = sizeof plain;
	size_t mark;

	t_start(&t, "decrypt_message_recorded", RULES);
	ck_assert_rv(t.f->C_MessageDecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptMessage(t.s, NULL, 0, NULL, 0, (CK_BYTE_PTR)"\x3b\x3c", 2, plain, &len), CKR_OK);
	ck_assert_uint_eq(len, 2);
	ck_assert_mem_eq(plain, "af", 2);                  /* 0x3b ^ 0x5a, 0x3c ^ 0x5a */
	expect_allowed(&t, mark, "C_DecryptMessage", "decrypt", "\x3b\x3c", 2);
	/* Private-key message decryption carries no associated data: refused
	 * by p11gate before the token. */
	len = sizeof plain;
	ck_assert_rv(t.f->C_DecryptMessage(t.s, NULL, 0, (CK_BYTE_PTR)"aad", 3, (CK_BYTE_PTR)"x", 1, plain, &len),
	             CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(t.m->calls("C_DecryptMessage"), 1);
	ck_assert_rv(t.f->C_MessageDecryptFinal(t.s), CKR_OK);
	ck_assert(!t.m->active(t.s, CKF_MESSAGE_DECRYPT));
	t_end(&t);
}
END_TEST

/* A message decrypted in parts yields plaintext at its first part: it is
 * judged and its allow record written there, once per message. */
START_TEST(decrypt_message_in_parts)
{
	struct t t;
	CK_BYTE plain[64];
	CK_ULONG len = sizeof plain;
	size_t mark;

	t_start(&t, "decrypt_message_in_parts", RULES);
	ck_assert_rv(t.f->C_MessageDecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	for (int message = 0; message < 2; message++) {
		mark = world_audit_lines(&t.w);
		ck_assert_rv(t.f->C_DecryptMessageBegin(t.s, NULL, 0, NULL, 0), CKR_OK);
		len = sizeof plain;
		ck_assert_rv(t.f->C_DecryptMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"\x3b", 1, plain, &len, 0), CKR_OK);
		ck_assert_uint_eq(len, 1);
		ck_assert_uint_eq(plain[0], 'a');
		/* The plaintext left: its allow record is in the log. */
		ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"decision\":\"allow\"",
		                                          "\"function\":\"C_DecryptMessageNext\"", NULL), 1);
		len = sizeof plain;
		ck_assert_rv(t.f->C_DecryptMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"\x3c", 1, plain, &len,
		                                       CKF_END_OF_MESSAGE), CKR_OK);
		ck_assert_uint_eq(plain[0], 'f');
		world_expect_one_allow(&t.w, mark, "C_DecryptMessageNext");
	}
	ck_assert_rv(t.f->C_MessageDecryptFinal(t.s), CKR_OK);
	t_end(&t);
}
END_TEST

/* A raw private-key decryption is a signature: a decrypt-only rule does
 * not allow it, and the refusal is recorded as sign. */
START_TEST(decrypt_message_raw_is_sign)
{
	struct t t;

	t_start(&t, "decrypt_message_raw_is_sign", DECRYPT_ONLY);
	size_t mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_MessageDecryptInit(t.s, &raw_mech, MOCK_KEY_SIGN), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_MessageDecryptInit", "sign");
	ck_assert_uint_eq(t.m->calls("C_MessageDecryptInit"), 0);
	/* With a padding mechanism the same rule allows it. */
	ck_assert_rv(t.f->C_MessageDecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_MessageDecryptFinal(t.s), CKR_OK);
	t_end(&t);
}
END_TEST

/* A named secret key's message encryption is judged once, at its init;
 * an unnamed one's passes unrecorded. */
START_TEST(encrypt_message_judged_at_init)
{
	struct t t;
	CK_BYTE out[16];
	CK_ULONG len = sizeof out;
	size_t mark;

	t_start(&t, "encrypt_message_judged_at_init", RULES);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_MessageEncryptInit(t.s, &gcm_mech, MOCK_KEY_SECRET), CKR_OK);
	world_expect_one_allow(&t.w, mark, "C_MessageEncryptInit");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_EncryptMessage(t.s, NULL, 0, NULL, 0, (CK_BYTE_PTR)"a", 1, out, &len), CKR_OK);
	ck_assert_uint_eq(out[0], 'a' ^ MOCK_XOR);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);
	ck_assert_rv(t.f->C_MessageEncryptFinal(t.s), CKR_OK);

	ck_assert_rv(t.f->C_MessageEncryptInit(t.s, &gcm_mech, MOCK_KEY_FREE), CKR_OK);
	len = sizeof out;
	ck_assert_rv(t.f->C_EncryptMessage(t.s, NULL, 0, NULL, 0, (CK_BYTE_PTR)"b", 1, out, &len), CKR_OK);
	ck_assert_rv(t.f->C_MessageEncryptFinal(t.s), CKR_OK);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);

	/* Refused for the named key under a policy that does not allow it. */
	world_policy(&t.w, NOTHING);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_MessageEncryptInit(t.s, &gcm_mech, MOCK_KEY_SECRET), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_MessageEncryptInit", "encrypt");
	ck_assert_uint_eq(t.m->calls("C_MessageEncryptInit"), 2);
	t_end(&t);
}
END_TEST

/* A message decryption refused at a message (the policy changed since
 * the init): a deny record, no plaintext; the next message is judged
 * afresh. */
START_TEST(decrypt_message_refused_at_message)
{
	struct t t;
	CK_BYTE plain[64];
	CK_ULONG len = sizeof plain;
	size_t mark;

	t_start(&t, "decrypt_message_refused_at_message", RULES);
	ck_assert_rv(t.f->C_MessageDecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	world_policy(&t.w, NOTHING);
	mark = world_audit_lines(&t.w);
	memset(plain, 0xee, sizeof plain);
	ck_assert_rv(t.f->C_DecryptMessage(t.s, NULL, 0, NULL, 0, (CK_BYTE_PTR)"\x3b", 1, plain, &len),
	             CKR_FUNCTION_REJECTED);
	ck_assert_uint_eq(plain[0], 0xee);
	world_expect_one_deny(&t.w, mark, "C_DecryptMessage", "decrypt");
	ck_assert_rv(t.f->C_DecryptMessageBegin(t.s, NULL, 0, NULL, 0), CKR_OK);
	mark = world_audit_lines(&t.w);
	len = sizeof plain;
	ck_assert_rv(t.f->C_DecryptMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"\x3b", 1, plain, &len, 0),
	             CKR_FUNCTION_REJECTED);
	ck_assert_uint_eq(plain[0], 0xee);
	world_expect_one_deny(&t.w, mark, "C_DecryptMessageNext", "decrypt");

	world_policy(&t.w, RULES);
	mark = world_audit_lines(&t.w);
	len = sizeof plain;
	ck_assert_rv(t.f->C_DecryptMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"\x3b", 1, plain, &len, CKF_END_OF_MESSAGE),
	             CKR_OK);
	ck_assert_uint_eq(plain[0], 'a');
	world_expect_one_allow(&t.w, mark, "C_DecryptMessageNext");
	t_end(&t);
}
END_TEST

/* The token fails a message's first part: its code unchanged, the
 * result record closes the part's allow record, and the operation goes on
 * in the gate as in the token: the next message is judged afresh. */
START_TEST(decrypt_message_token_error_at_part)
{
	struct t t;
	CK_BYTE plain[64];
	CK_ULONG len = sizeof plain;
	size_t mark;

	t_start(&t, "decrypt_message_token_error_at_part", RULES);
	ck_assert_rv(t.f->C_MessageDecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_DecryptMessageBegin(t.s, NULL, 0, NULL, 0), CKR_OK);
	t.m->script("C_DecryptMessageNext", CKR_ENCRYPTED_DATA_INVALID, 0, 1, 0);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"\x3b", 1, plain, &len, 0),
	             CKR_ENCRYPTED_DATA_INVALID);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"decision\":\"allow\"", NULL), 1);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"event\":\"result\"",
	                                          "\"rv\":\"CKR_ENCRYPTED_DATA_INVALID\"", NULL), 1);
	ck_assert(t.m->active(t.s, CKF_MESSAGE_DECRYPT));
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptMessageBegin(t.s, NULL, 0, NULL, 0), CKR_OK);
	len = sizeof plain;
	ck_assert_rv(t.f->C_DecryptMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"\x3c", 1, plain, &len, CKF_END_OF_MESSAGE),
	             CKR_OK);
	ck_assert_uint_eq(plain[0], 'f');
	world_expect_one_allow(&t.w, mark, "C_DecryptMessageNext");
	ck_assert_rv(t.f->C_MessageDecryptFinal(t.s), CKR_OK);
	t_end(&t);
}
END_TEST

/* A named key used at its init only (message encryption): the token's
 * error at the init is the caller's answer and the result record's. */
START_TEST(encrypt_message_token_error_at_init)
{
	struct t t;
	const CK_RV vendor = CKR_VENDOR_DEFINED | 0x42;
	size_t mark;

	t_start(&t, "encrypt_message_token_error_at_init", RULES);
	t.m->script("C_MessageEncryptInit", vendor, 0, 1, 0);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_MessageEncryptInit(t.s, &gcm_mech, MOCK_KEY_SECRET), vendor);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"decision\":\"allow\"",
	                                          "\"function\":\"C_MessageEncryptInit\"", NULL), 1);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"event\":\"result\"", "\"rv\":\"0x80000042\"", NULL), 1);
	ck_assert(!t.m->active(t.s, CKF_MESSAGE_ENCRYPT));
	ck_assert_rv(t.f->C_MessageEncryptInit(t.s, &gcm_mech, MOCK_KEY_SECRET), CKR_OK);
	ck_assert_rv(t.f->C_MessageEncryptFinal(t.s), CKR_OK);
	t_end(&t);
}
END_TEST

/* Encrypting with a private key (raw RSA: a signature of the caller's
 * block) is refused whatever the policy says, and recorded as sign. */
START_TEST(encrypt_message_with_private_key_refused)
{
	struct t t;
	size_t mark;

	t_start(&t, "encrypt_message_with_private_key_refused", RULES);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_MessageEncryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_MessageEncryptInit", "sign");
	ck_assert_uint_eq(t.m->calls("C_MessageEncryptInit"), 0);
	ck_assert(!t.m->active(t.s, CKF_MESSAGE_ENCRYPT));
	t_end(&t);
}
END_TEST

/* A named secret key's message decryption is judged once at its init and
 * then forwarded as it is, associated data and parts included; an
 * unnamed public key's message verification passes unrecorded. */
START_TEST(decrypt_message_named_secret_key)
{
	struct t t;
	CK_BYTE plain[16], sig[32];
	CK_ULONG len = sizeof plain;
	size_t mark;

	t_start(&t, "decrypt_message_named_secret_key", RULES);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_MessageDecryptInit(t.s, &gcm_mech, MOCK_KEY_SECRET), CKR_OK);
	world_expect_one_allow(&t.w, mark, "C_MessageDecryptInit");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptMessage(t.s, NULL, 0, (CK_BYTE_PTR)"aad", 3, (CK_BYTE_PTR)"\x3b", 1, plain, &len),
	             CKR_OK);
	ck_assert_uint_eq(plain[0], 'a');
	ck_assert_rv(t.f->C_DecryptMessageBegin(t.s, NULL, 0, (CK_BYTE_PTR)"aad", 3), CKR_OK);
	len = sizeof plain;
	ck_assert_rv(t.f->C_DecryptMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"\x3c", 1, plain, &len, CKF_END_OF_MESSAGE),
	             CKR_OK);
	ck_assert_uint_eq(plain[0], 'f');
	ck_assert_rv(t.f->C_MessageDecryptFinal(t.s), CKR_OK);

	ck_assert_rv(t.f->C_MessageVerifyInit(t.s, &sign_mech, MOCK_KEY_PUBLIC), CKR_OK);
	world_mock_signature("mock-sign", "x", 1, sig);
	ck_assert_rv(t.f->C_VerifyMessage(t.s, NULL, 0, (CK_BYTE_PTR)"x", 1, sig, sizeof sig), CKR_OK);
	ck_assert_rv(t.f->C_MessageVerifyFinal(t.s), CKR_OK);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);

	/* After the final the private key's message decryption is judged
	 * again, not forwarded as the secret key's was. */
	ck_assert_rv(t.f->C_MessageDecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	len = sizeof plain;
	ck_assert_rv(t.f->C_DecryptMessage(t.s, NULL, 0, NULL, 0, (CK_BYTE_PTR)"\x3b", 1, plain, &len), CKR_OK);
	world_expect_allow_data(&t.w, mark, "C_DecryptMessage", "decrypt", "\x3b", 1);
	t_end(&t);
}
END_TEST

/* Message verification with a private key is judged at its init; the
 * token's verdicts come back unchanged. */
START_TEST(verify_message_token_verdicts)
{
	struct t t;
	CK_BYTE sig[32];
	size_t mark;

	t_start(&t, "verify_message_token_verdicts", RULES);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_MessageVerifyInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	world_expect_one_allow(&t.w, mark, "C_MessageVerifyInit");
	world_mock_signature("mock-sign", "data", 4, sig);
	ck_assert_rv(t.f->C_VerifyMessage(t.s, NULL, 0, (CK_BYTE_PTR)"data", 4, sig, sizeof sig), CKR_OK);
	sig[0] ^= 1;
	ck_assert_rv(t.f->C_VerifyMessage(t.s, NULL, 0, (CK_BYTE_PTR)"data", 4, sig, sizeof sig), CKR_SIGNATURE_INVALID);
	sig[0] ^= 1;
	ck_assert_rv(t.f->C_VerifyMessageBegin(t.s, NULL, 0), CKR_OK);
	ck_assert_rv(t.f->C_VerifyMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"da", 2, NULL, 0), CKR_OK);
	ck_assert_rv(t.f->C_VerifyMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"ta", 2, sig, sizeof sig), CKR_OK);
	ck_assert_rv(t.f->C_MessageVerifyFinal(t.s), CKR_OK);
	t_end(&t);
}
END_TEST

/* A code no real token gives (a vendor code) passes back unchanged and is
 * what the result record says; the next message is judged afresh. */
START_TEST(sign_message_vendor_code_unchanged)
{
	struct t t;
	CK_BYTE sig[64];
	CK_ULONG len = sizeof sig;
	size_t mark;
	const CK_RV vendor = CKR_VENDOR_DEFINED | 0x123;

	t_start(&t, "sign_message_vendor_code_unchanged", RULES);
	ck_assert_rv(t.f->C_MessageSignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	t.m->script("C_SignMessage", vendor, 0, 1, 0);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignMessage(t.s, NULL, 0, (CK_BYTE_PTR)"one", 3, sig, &len), vendor);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"decision\":\"allow\"", NULL), 1);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"event\":\"result\"", "\"rv\":\"0x80000123\"", NULL), 1);
	mark = world_audit_lines(&t.w);
	len = sizeof sig;
	ck_assert_rv(t.f->C_SignMessage(t.s, NULL, 0, (CK_BYTE_PTR)"two", 3, sig, &len), CKR_OK);
	expect_allowed(&t, mark, "C_SignMessage", "sign", "two", 3);
	t_end(&t);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("mock-message");
	TCase *tc = tcase_create("message");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, sign_message_each_message_recorded);
	tcase_add_test(tc, sign_message_unnamed_key_refused_at_init);
	tcase_add_test(tc, sign_message_refused_at_output);
	tcase_add_test(tc, sign_message_in_parts);
	tcase_add_test(tc, sign_message_last_part_retry);
	tcase_add_test(tc, sign_message_last_part_retry_with_other_data);
	tcase_add_test(tc, decrypt_message_part_retry_with_other_data);
	tcase_add_test(tc, decrypt_message_recorded);
	tcase_add_test(tc, decrypt_message_in_parts);
	tcase_add_test(tc, decrypt_message_raw_is_sign);
	tcase_add_test(tc, encrypt_message_judged_at_init);
	tcase_add_test(tc, decrypt_message_refused_at_message);
	tcase_add_test(tc, decrypt_message_token_error_at_part);
	tcase_add_test(tc, encrypt_message_token_error_at_init);
	tcase_add_test(tc, encrypt_message_with_private_key_refused);
	tcase_add_test(tc, decrypt_message_named_secret_key);
	tcase_add_test(tc, verify_message_token_verdicts);
	tcase_add_test(tc, sign_message_vendor_code_unchanged);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return world_run_suite(suite());
}
