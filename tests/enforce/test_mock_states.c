/* SPDX-License-Identifier: Apache-2.0
 *
 * Every state a judged sign or decrypt operation goes through in
 * p11gate.so (init, parts, the call with output, a length query, a
 * too-small buffer and its retry, the token's errors at init, part and
 * final, CKR_OPERATION_ACTIVE, the session closed mid-operation), over the
 * mock 3.0 token (tests/mock), which can fail any call on demand and
 * yields plaintext from C_DecryptUpdate, unlike SoftHSM2.  Each test names
 * what the gate must guarantee there: no output without an allow record
 * written before the token acted, the token's codes unchanged, no call on
 * an operation the gate does not hold.  Through the PKCS#11 API and the
 * audit log only.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "world.h"
#include "../mock/mock.h"

static const char RULES[] =
	"  - name: tests-use-the-keys\n"
	"    effect: allow\n"
	"    keys: [signer, secret]\n"
	"    operations: [sign, decrypt]\n";

static const char NOTHING[] =
	"  - name: tests-verify-only\n"
	"    effect: allow\n"
	"    keys: [secret]\n"
	"    operations: [verify]\n";

static CK_MECHANISM sign_mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
static CK_MECHANISM pkcs_mech = { CKM_RSA_PKCS, NULL, 0 };
static CK_MECHANISM aes_mech = { CKM_AES_ECB, NULL, 0 };

#define ALLOW "\"decision\":\"allow\""
#define DENY "\"decision\":\"deny\""
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
	printf("mock-states: %s\n", name);
	fflush(stdout);
	t->s = world_mock_start(&t->w, "mock-states", name, RULES);
	t->f = t->w.f;
	t->m = world_mock(&t->w);
}

static void
t_end(struct t *t)
{
	world_audit_verify(&t->w);
	world_close(&t->w);
}

static size_t
count(const struct t *t, size_t mark, const char *what)
{
	return world_audit_count_since(&t->w, mark, what, NULL);
}

/* A hook that counts, at the token's entry, the allow records written
 * since mark: the gate must have written its record before it lets the
 * token produce output. */
struct at_entry {
	const struct world *w;
	size_t mark;
	int calls;
	size_t allows_first;          /* at the first call */
};

static void
note_allows(const char *function, CK_SESSION_HANDLE session, void *arg)
{
	struct at_entry *e = arg;

	if (e->calls++ == 0)
		e->allows_first = world_audit_count_since(e->w, e->mark, ALLOW, NULL);
}

static void
sign_all(struct t *t, const char *data, CK_BYTE sig[32])
{
	CK_BYTE want[32];
	CK_ULONG len = 32;

	ck_assert_rv(t->f->C_SignInit(t->s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t->f->C_Sign(t->s, (CK_BYTE_PTR)data, strlen(data), sig, &len), CKR_OK);
	world_mock_signature("mock-sign", data, strlen(data), want);
	ck_assert_uint_eq(len, 32);
	ck_assert_mem_eq(sig, want, 32);
}

/* ---- signing ------------------------------------------------------------------ */

START_TEST(sign_allow_written_before_the_token_signs)
{
	struct t t;
	CK_BYTE sig[32];
	struct at_entry e = { &t.w, 0, 0, 0 };

	t_start(&t, "sign_allow_written_before_the_token_signs");
	e.mark = world_audit_lines(&t.w);
	t.m->hook("C_Sign", note_allows, &e);
	sign_all(&t, "single part", sig);
	ck_assert_int_eq(e.calls, 1);
	ck_assert_uint_eq(e.allows_first, 1);
	world_expect_allow_data(&t.w, e.mark, "C_Sign", "sign", "single part", 11);
	ck_assert(!t.m->active(t.s, CKF_SIGN));
	t_end(&t);
}
END_TEST

START_TEST(sign_in_parts)
{
	struct t t;
	CK_BYTE sig[64], want[32];
	CK_ULONG len = sizeof sig;
	struct at_entry e = { &t.w, 0, 0, 0 };

	t_start(&t, "sign_in_parts");
	e.mark = world_audit_lines(&t.w);
	t.m->hook("C_SignFinal", note_allows, &e);
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_SignUpdate(t.s, (CK_BYTE_PTR)"part one, ", 10), CKR_OK);
	ck_assert_rv(t.f->C_SignUpdate(t.s, (CK_BYTE_PTR)"part two", 8), CKR_OK);
	ck_assert_uint_eq(world_audit_lines(&t.w), e.mark);
	ck_assert_rv(t.f->C_SignFinal(t.s, sig, &len), CKR_OK);
	world_mock_signature("mock-sign", "part one, part two", 18, want);
	ck_assert_uint_eq(len, 32);
	ck_assert_mem_eq(sig, want, 32);
	ck_assert_uint_eq(e.allows_first, 1);
	world_expect_allow_data(&t.w, e.mark, "C_SignFinal", "sign", "part one, part two", 18);
	t_end(&t);
}
END_TEST

/* A length query writes nothing and keeps the operation; a too-small
 * buffer keeps it and its allow record, and the retry adds only the
 * result. */
START_TEST(sign_length_query_and_small_buffer)
{
	struct t t;
	CK_BYTE sig[64], want[32];
	CK_ULONG len = 0;
	char line[8192], ref[64];
	size_t mark;

	t_start(&t, "sign_length_query_and_small_buffer");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_Sign(t.s, (CK_BYTE_PTR)"data", 4, NULL, &len), CKR_OK);
	ck_assert_uint_eq(len, 32);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);
	ck_assert(t.m->active(t.s, CKF_SIGN));

	len = 8;
	memset(sig, 0xee, sizeof sig);
	ck_assert_rv(t.f->C_Sign(t.s, (CK_BYTE_PTR)"data", 4, sig, &len), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(len, 32);
	ck_assert_uint_eq(sig[0], 0xee);
	ck_assert_uint_eq(count(&t, mark, ALLOW), 1);
	ck_assert_uint_eq(count(&t, mark, RESULT), 0);
	ck_assert(t.m->active(t.s, CKF_SIGN));

	len = sizeof sig;
	ck_assert_rv(t.f->C_Sign(t.s, (CK_BYTE_PTR)"data", 4, sig, &len), CKR_OK);
	world_mock_signature("mock-sign", "data", 4, want);
	ck_assert_mem_eq(sig, want, 32);
	world_expect_allow_data(&t.w, mark, "C_Sign", "sign", "data", 4);
	ck_assert(world_audit_find_since(&t.w, mark, line, sizeof line, ALLOW, NULL));
	snprintf(ref, sizeof ref, "\"ref\":%llu,", (unsigned long long)world_json_u64(line, "seq"));
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, RESULT, ref, NULL), 1);
	t_end(&t);
}
END_TEST

/* After CKR_BUFFER_TOO_SMALL the allow record names the data: the other
 * final form and another part are refused and never reach the token, and
 * the retry signs exactly what the record names. */
START_TEST(sign_after_small_buffer_nothing_else)
{
	struct t t;
	CK_BYTE sig[64], want[32];
	CK_ULONG len = 8;
	size_t mark;

	t_start(&t, "sign_after_small_buffer_nothing_else");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_SignUpdate(t.s, (CK_BYTE_PTR)"named", 5), CKR_OK);
	ck_assert_rv(t.f->C_SignFinal(t.s, sig, &len), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(t.m->calls("C_SignFinal"), 1);

	ck_assert_rv(t.f->C_SignUpdate(t.s, (CK_BYTE_PTR)" and more", 9), CKR_FUNCTION_REJECTED);
	ck_assert_uint_eq(t.m->calls("C_SignUpdate"), 1);
	len = sizeof sig;
	ck_assert_rv(t.f->C_Sign(t.s, (CK_BYTE_PTR)"other", 5, sig, &len), CKR_FUNCTION_REJECTED);
	ck_assert_uint_eq(t.m->calls("C_Sign"), 0);
	ck_assert_uint_eq(count(&t, mark, DENY), 2);

	len = sizeof sig;
	ck_assert_rv(t.f->C_SignFinal(t.s, sig, &len), CKR_OK);
	world_mock_signature("mock-sign", "named", 5, want);
	ck_assert_mem_eq(sig, want, 32);
	ck_assert_uint_eq(count(&t, mark, ALLOW), 1);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, ALLOW, "\"function\":\"C_SignFinal\"", NULL), 1);
	ck_assert_uint_eq(count(&t, mark, RESULT), 1);
	t_end(&t);
}
END_TEST

/* A C_Sign retry with other data is another signature: judged and
 * recorded afresh, and its result refers to the new allow record. */
START_TEST(sign_retry_with_other_data_judged_afresh)
{
	struct t t;
	CK_BYTE sig[64], want[32];
	CK_ULONG len = 8;
	char line[8192], ref[64];
	size_t mark;

	t_start(&t, "sign_retry_with_other_data_judged_afresh");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_Sign(t.s, (CK_BYTE_PTR)"first", 5, sig, &len), CKR_BUFFER_TOO_SMALL);
	len = sizeof sig;
	ck_assert_rv(t.f->C_Sign(t.s, (CK_BYTE_PTR)"second", 6, sig, &len), CKR_OK);
	world_mock_signature("mock-sign", "second", 6, want);
	ck_assert_mem_eq(sig, want, 32);
	ck_assert_uint_eq(count(&t, mark, ALLOW), 2);
	ck_assert(world_audit_find_data_since(&t.w, mark, "second", 6, ALLOW, line, sizeof line));
	snprintf(ref, sizeof ref, "\"ref\":%llu,", (unsigned long long)world_json_u64(line, "seq"));
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, RESULT, ref, "\"rv\":\"CKR_OK\"", NULL), 1);
	ck_assert_uint_eq(count(&t, mark, RESULT), 1);
	t_end(&t);
}
END_TEST

START_TEST(sign_single_part_after_parts_refused)
{
	struct t t;
	CK_BYTE sig[64];
	CK_ULONG len = sizeof sig;
	size_t mark;

	t_start(&t, "sign_single_part_after_parts_refused");
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_SignUpdate(t.s, (CK_BYTE_PTR)"part", 4), CKR_OK);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_Sign(t.s, (CK_BYTE_PTR)"whole", 5, sig, &len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_Sign", "sign");
	ck_assert_uint_eq(t.m->calls("C_Sign"), 0);
	t_end(&t);
}
END_TEST

/* The token's errors at init, part and final: passed back unchanged, and
 * the gate holds no operation the token ended: the next call on it is
 * answered without reaching the token. */
START_TEST(sign_token_error_at_init)
{
	struct t t;
	CK_BYTE sig[64];
	CK_ULONG len = sizeof sig;
	size_t mark;

	t_start(&t, "sign_token_error_at_init");
	mark = world_audit_lines(&t.w);
	t.m->script("C_SignInit", CKR_DEVICE_ERROR, 0, 1, 0);
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_DEVICE_ERROR);
	ck_assert_rv(t.f->C_Sign(t.s, (CK_BYTE_PTR)"data", 4, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_Sign"), 0);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);
	sign_all(&t, "data", sig);
	t_end(&t);
}
END_TEST

START_TEST(sign_token_error_at_part)
{
	struct t t;
	CK_BYTE sig[64];
	CK_ULONG len = sizeof sig;
	size_t mark;

	t_start(&t, "sign_token_error_at_part");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	t.m->script("C_SignUpdate", CKR_DEVICE_MEMORY, 1, 1, 0);
	ck_assert_rv(t.f->C_SignUpdate(t.s, (CK_BYTE_PTR)"one", 3), CKR_OK);
	ck_assert_rv(t.f->C_SignUpdate(t.s, (CK_BYTE_PTR)"two", 3), CKR_DEVICE_MEMORY);
	ck_assert(!t.m->active(t.s, CKF_SIGN));
	ck_assert_rv(t.f->C_SignFinal(t.s, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_rv(t.f->C_SignUpdate(t.s, (CK_BYTE_PTR)"three", 5), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_SignFinal"), 0);
	ck_assert_uint_eq(t.m->calls("C_SignUpdate"), 2);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);
	sign_all(&t, "afresh", sig);
	t_end(&t);
}
END_TEST

START_TEST(sign_token_error_at_final)
{
	struct t t;
	CK_BYTE sig[64];
	CK_ULONG len = sizeof sig;
	const CK_RV vendor = CKR_VENDOR_DEFINED | 0x77;
	size_t mark;

	t_start(&t, "sign_token_error_at_final");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_SignUpdate(t.s, (CK_BYTE_PTR)"one", 3), CKR_OK);
	t.m->script("C_SignFinal", vendor, 0, 1, 0);
	ck_assert_rv(t.f->C_SignFinal(t.s, sig, &len), vendor);
	ck_assert_uint_eq(count(&t, mark, ALLOW), 1);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, RESULT, "\"rv\":\"0x80000077\"", NULL), 1);
	ck_assert_msg(world_audit_count_since(&t.w, mark, RESULT, "signature_sha256", NULL) == 0,
	              "a failed call's result names a signature");
	len = sizeof sig;
	ck_assert_rv(t.f->C_SignFinal(t.s, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_SignFinal"), 1);
	sign_all(&t, "afresh", sig);
	t_end(&t);
}
END_TEST

/* Codes no real token gives on these calls come back as they are. */
START_TEST(sign_unusual_codes_unchanged)
{
	static const CK_RV codes[] = {
		CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_FUNCTION_CANCELED, CKR_PIN_EXPIRED,
		CKR_CRYPTOKI_NOT_INITIALIZED, CKR_VENDOR_DEFINED | 0x1234,
	};
	struct t t;
	CK_BYTE sig[64];
	CK_ULONG len;

	t_start(&t, "sign_unusual_codes_unchanged");
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		t.m->script("C_SignInit", codes[i], 0, 1, 0);
		ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), codes[i]);
		ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
		t.m->script("C_Sign", codes[i], 0, 1, 0);
		len = sizeof sig;
		ck_assert_rv(t.f->C_Sign(t.s, (CK_BYTE_PTR)"x", 1, sig, &len), codes[i]);
		len = sizeof sig;
		ck_assert_rv(t.f->C_Sign(t.s, (CK_BYTE_PTR)"x", 1, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	}
	t_end(&t);
}
END_TEST

/* A second init while one runs: the token's CKR_OPERATION_ACTIVE, and
 * the running operation (and its key) is the one that signs; an init with
 * a key the policy refuses is refused without ending it. */
START_TEST(sign_operation_active)
{
	struct t t;
	CK_BYTE sig[64], want[32];
	CK_ULONG len = sizeof sig;
	size_t mark;

	t_start(&t, "sign_operation_active");
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OPERATION_ACTIVE);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_OTHER), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_SignInit", "sign");
	ck_assert(t.m->active(t.s, CKF_SIGN));
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_Sign(t.s, (CK_BYTE_PTR)"data", 4, sig, &len), CKR_OK);
	world_mock_signature("mock-sign", "data", 4, want);
	ck_assert_mem_eq(sig, want, 32);
	world_expect_allow_data(&t.w, mark, "C_Sign", "sign", "data", 4);
	ck_assert_msg(world_audit_count_since(&t.w, mark, "\"key\":\"signer\"", NULL) == 1,
	              "the allow record does not name the running operation's key");
	t_end(&t);
}
END_TEST

/* A token may number its objects anew at each login (PKCS#11 keeps no
 * handle across a change of login state): the handle a caller kept from
 * before its logout then names another key.  What p11gate remembers of a
 * handle must not outlive the login state: the kept handle is judged as
 * the key it names now, within the memo's key_names_max_age_ms too. */
START_TEST(handle_renumbered_at_login_judged_afresh)
{
	struct t t;
	CK_BYTE sig[64], want[32];
	CK_ULONG len = sizeof sig;
	size_t mark;

	t_start(&t, "handle_renumbered_at_login_judged_afresh");
	t.m->renumber_at_logout(true);
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_Sign(t.s, (CK_BYTE_PTR)"data", 4, sig, &len), CKR_OK);
	world_mock_signature("mock-sign", "data", 4, want);
	ck_assert_mem_eq(sig, want, 32);
	ck_assert_rv(t.f->C_Logout(t.s), CKR_OK);
	ck_assert_rv(t.f->C_Login(t.s, CKU_USER, (CK_UTF8CHAR_PTR)"1234", 4), CKR_OK);
	/* the kept handle now names mock-other, which no rule allows */
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_SignInit", "sign");
	ck_assert(!t.m->active(t.s, CKF_SIGN));
	/* and mock-sign, under its new handle, is still the allowed key */
	len = sizeof sig;
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_OTHER), CKR_OK);
	ck_assert_rv(t.f->C_Sign(t.s, (CK_BYTE_PTR)"data", 4, sig, &len), CKR_OK);
	ck_assert_mem_eq(sig, want, 32);
	t_end(&t);
}
END_TEST

/* A session closed mid-operation takes its operation with it: a new
 * session (the mock hands out the same handle again) starts with none. */
START_TEST(session_closed_mid_operation)
{
	struct t t;
	CK_BYTE out[64];
	CK_ULONG len = sizeof out;
	CK_SESSION_HANDLE again;
	size_t mark;

	t_start(&t, "session_closed_mid_operation");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_SignUpdate(t.s, (CK_BYTE_PTR)"part", 4), CKR_OK);
	ck_assert_rv(t.f->C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_CloseSession(t.s), CKR_OK);
	ck_assert_rv(t.f->C_SignFinal(t.s, out, &len), CKR_SESSION_HANDLE_INVALID);
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"c", 1, out, &len), CKR_SESSION_HANDLE_INVALID);

	ck_assert_rv(t.f->C_OpenSession(t.w.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &again), CKR_OK);
	ck_assert_msg(again == t.s, "the mock reuses handles; this test needs it to");
	len = sizeof out;
	ck_assert_rv(t.f->C_SignFinal(again, out, &len), CKR_OPERATION_NOT_INITIALIZED);
	len = sizeof out;
	ck_assert_rv(t.f->C_DecryptUpdate(again, (CK_BYTE_PTR)"c", 1, out, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_SignFinal"), 0);
	ck_assert_uint_eq(t.m->calls("C_DecryptUpdate"), 0);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);

	/* The same through C_CloseAllSessions. */
	ck_assert_rv(t.f->C_DecryptInit(again, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_CloseAllSessions(t.w.slot), CKR_OK);
	ck_assert_rv(t.f->C_OpenSession(t.w.slot, CKF_SERIAL_SESSION, NULL, NULL, &again), CKR_OK);
	ck_assert_uint_eq(again, t.s);
	len = sizeof out;
	ck_assert_rv(t.f->C_DecryptUpdate(again, (CK_BYTE_PTR)"c", 1, out, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_DecryptUpdate"), 0);
	t.s = again;
	sign_all(&t, "afresh", out);
	t_end(&t);
}
END_TEST

/* ---- decryption with a private key ----------------------------------------------- */

/* The first C_DecryptUpdate returns plaintext: its allow record is
 * written before the token decrypts; later parts add none; the final's
 * result closes it. */
START_TEST(decrypt_parts_allow_before_plaintext)
{
	struct t t;
	CK_BYTE out[64];
	CK_ULONG len = sizeof out;
	struct at_entry e = { &t.w, 0, 0, 0 };
	char line[8192], ref[64];

	t_start(&t, "decrypt_parts_allow_before_plaintext");
	e.mark = world_audit_lines(&t.w);
	t.m->hook("C_DecryptUpdate", note_allows, &e);
	ck_assert_rv(t.f->C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_uint_eq(world_audit_lines(&t.w), e.mark);
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"\x3b\x3c", 2, out, &len), CKR_OK);
	ck_assert_uint_eq(e.allows_first, 1);
	ck_assert_uint_eq(len, 2);
	ck_assert_mem_eq(out, "af", 2);
	len = sizeof out;
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"\x3b", 1, out, &len), CKR_OK);
	ck_assert_uint_eq(out[0], 'a');
	ck_assert_uint_eq(count(&t, e.mark, ALLOW), 1);
	len = sizeof out;
	ck_assert_rv(t.f->C_DecryptFinal(t.s, out, &len), CKR_OK);
	ck_assert_uint_eq(len, 4);
	ck_assert_mem_eq(out, "\0\0\0\3", 4);       /* the token decrypted all three bytes */
	ck_assert(world_audit_find_data_since(&t.w, e.mark, "\x3b\x3c", 2, ALLOW, line, sizeof line));
	ck_assert_ptr_nonnull(strstr(line, "\"operation\":\"decrypt\""));
	ck_assert_ptr_nonnull(strstr(line, "\"function\":\"C_DecryptUpdate\""));
	snprintf(ref, sizeof ref, "\"ref\":%llu,", (unsigned long long)world_json_u64(line, "seq"));
	ck_assert_uint_eq(world_audit_count_since(&t.w, e.mark, RESULT, ref, "\"rv\":\"CKR_OK\"", NULL), 1);
	ck_assert_uint_eq(count(&t, e.mark, RESULT), 1);
	t_end(&t);
}
END_TEST

/* A part's length query and a too-small buffer: judged like the part,
 * once; the plaintext comes with the retry. */
START_TEST(decrypt_part_small_buffer)
{
	struct t t;
	CK_BYTE out[64];
	CK_ULONG len = 0;
	size_t mark;

	t_start(&t, "decrypt_part_small_buffer");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"\x3b\x3c", 2, NULL, &len), CKR_OK);
	ck_assert_uint_eq(len, 2);
	len = 1;
	memset(out, 0xee, sizeof out);
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"\x3b\x3c", 2, out, &len), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(len, 2);
	ck_assert_uint_eq(out[0], 0xee);
	len = sizeof out;
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"\x3b\x3c", 2, out, &len), CKR_OK);
	ck_assert_mem_eq(out, "af", 2);
	ck_assert_uint_eq(count(&t, mark, ALLOW), 1);
	ck_assert_uint_eq(count(&t, mark, DENY), 0);
	len = 2;
	ck_assert_rv(t.f->C_DecryptFinal(t.s, out, &len), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(len, 4);
	ck_assert_rv(t.f->C_DecryptFinal(t.s, out, &len), CKR_OK);
	ck_assert_mem_eq(out, "\0\0\0\2", 4);
	ck_assert_uint_eq(count(&t, mark, ALLOW), 1);
	ck_assert_uint_eq(count(&t, mark, RESULT), 1);
	t_end(&t);
}
END_TEST

/* Allowed at init, refused at the first part: a deny record, no
 * plaintext, the token's operation cancelled, and no call on it after. */
START_TEST(decrypt_refused_at_part)
{
	struct t t;
	CK_BYTE out[64];
	CK_ULONG len = sizeof out;
	size_t mark;

	t_start(&t, "decrypt_refused_at_part");
	ck_assert_rv(t.f->C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	world_policy(&t.w, NOTHING);
	mark = world_audit_lines(&t.w);
	memset(out, 0xee, sizeof out);
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"\x3b\x3c", 2, out, &len), CKR_FUNCTION_REJECTED);
	ck_assert_uint_eq(out[0], 0xee);
	ck_assert_uint_eq(out[1], 0xee);
	world_expect_one_deny(&t.w, mark, "C_DecryptUpdate", "decrypt");
	ck_assert(!t.m->active(t.s, CKF_DECRYPT));
	len = sizeof out;
	ck_assert_rv(t.f->C_DecryptFinal(t.s, out, &len), CKR_OPERATION_NOT_INITIALIZED);
	len = sizeof out;
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"\x3b", 1, out, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_DecryptFinal"), 0);
	t_end(&t);
}
END_TEST

START_TEST(decrypt_token_error_at_part)
{
	struct t t;
	CK_BYTE out[64];
	CK_ULONG len = sizeof out;

	char line[8192], ref[64];
	size_t mark;

	t_start(&t, "decrypt_token_error_at_part");
	ck_assert_rv(t.f->C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	t.m->script("C_DecryptUpdate", CKR_ENCRYPTED_DATA_INVALID, 0, 1, 0);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"\x3b", 1, out, &len), CKR_ENCRYPTED_DATA_INVALID);
	ck_assert(!t.m->active(t.s, CKF_DECRYPT));
	/* The token's verdict on the ciphertext closes its allow record: a
	 * padding oracle's answers are in the log. */
	ck_assert(world_audit_find_data_since(&t.w, mark, "\x3b", 1, ALLOW, line, sizeof line));
	snprintf(ref, sizeof ref, "\"ref\":%llu,", (unsigned long long)world_json_u64(line, "seq"));
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, RESULT, ref, "\"rv\":\"CKR_ENCRYPTED_DATA_INVALID\"", NULL), 1);
	len = sizeof out;
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"\x3b", 1, out, &len), CKR_OPERATION_NOT_INITIALIZED);
	len = sizeof out;
	ck_assert_rv(t.f->C_DecryptFinal(t.s, out, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_DecryptUpdate"), 1);
	ck_assert_uint_eq(t.m->calls("C_DecryptFinal"), 0);
	t_end(&t);
}
END_TEST

/* A decryption with a secret key no policy key names is forwarded
 * unrecorded; a private-key decryption after it on the same session is
 * judged again, not forwarded as the secret key's was. */
START_TEST(decrypt_secret_key_then_private_key)
{
	struct t t;
	CK_BYTE out[64];
	CK_ULONG len = sizeof out;
	size_t mark;

	t_start(&t, "decrypt_secret_key_then_private_key");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptInit(t.s, &aes_mech, MOCK_KEY_FREE), CKR_OK);
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"\x3b", 1, out, &len), CKR_OK);
	len = sizeof out;
	ck_assert_rv(t.f->C_DecryptFinal(t.s, out, &len), CKR_OK);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);

	world_policy(&t.w, NOTHING);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_DecryptInit", "decrypt");
	len = sizeof out;
	memset(out, 0xee, sizeof out);
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"\x3b", 1, out, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(out[0], 0xee);
	ck_assert(!t.m->active(t.s, CKF_DECRYPT));
	t_end(&t);
}
END_TEST

/* What a decryption's state does not admit: a single-part call once parts
 * gave plaintext, a part after a too-small final buffer; and a C_Decrypt
 * retried with other ciphertext is another decryption, judged afresh. */
START_TEST(decrypt_sequence_refusals)
{
	struct t t;
	CK_BYTE out[64];
	CK_ULONG len = sizeof out;
	char line[8192], ref[64];
	size_t mark;

	t_start(&t, "decrypt_sequence_refusals");
	ck_assert_rv(t.f->C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"\x3b", 1, out, &len), CKR_OK);
	mark = world_audit_lines(&t.w);
	len = sizeof out;
	ck_assert_rv(t.f->C_Decrypt(t.s, (CK_BYTE_PTR)"\x3c", 1, out, &len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_Decrypt", "decrypt");
	ck_assert_uint_eq(t.m->calls("C_Decrypt"), 0);
	len = 1;
	ck_assert_rv(t.f->C_DecryptFinal(t.s, out, &len), CKR_BUFFER_TOO_SMALL);
	mark = world_audit_lines(&t.w);
	len = sizeof out;
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"\x3c", 1, out, &len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_DecryptUpdate", "decrypt");
	ck_assert_uint_eq(t.m->calls("C_DecryptUpdate"), 1);
	len = sizeof out;
	ck_assert_rv(t.f->C_DecryptFinal(t.s, out, &len), CKR_OK);
	ck_assert_mem_eq(out, "\0\0\0\1", 4);

	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	len = 0;
	out[0] = 0xee;
	ck_assert_rv(t.f->C_Decrypt(t.s, (CK_BYTE_PTR)"\x3b", 1, out, &len), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(out[0], 0xee);
	len = sizeof out;
	ck_assert_rv(t.f->C_Decrypt(t.s, (CK_BYTE_PTR)"\x3c", 1, out, &len), CKR_OK);
	ck_assert_uint_eq(out[0], 'f');
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, ALLOW, NULL), 2);
	ck_assert(world_audit_find_data_since(&t.w, mark, "\x3c", 1, ALLOW, line, sizeof line));
	snprintf(ref, sizeof ref, "\"ref\":%llu,", (unsigned long long)world_json_u64(line, "seq"));
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, RESULT, ref, "\"rv\":\"CKR_OK\"", NULL), 1);
	t_end(&t);
}
END_TEST

/* After CKR_BUFFER_TOO_SMALL on the first part, the retry must not
 * decrypt other ciphertext than the allow record names unless that too is
 * judged and recorded. */
START_TEST(decrypt_part_retry_with_other_data)
{
	struct t t;
	CK_BYTE out[64];
	CK_ULONG len = 1;
	CK_RV rv;
	size_t mark;

	t_start(&t, "decrypt_part_retry_with_other_data");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"\x3b\x3c", 2, out, &len), CKR_BUFFER_TOO_SMALL);
	len = sizeof out;
	rv = t.f->C_DecryptUpdate(t.s, (CK_BYTE_PTR)"\x01\x02", 2, out, &len);
	if (rv == CKR_OK)
		ck_assert_msg(world_audit_find_data_since(&t.w, mark, "\x01\x02", 2, ALLOW, NULL, 0),
		              "ciphertext was decrypted that no allow record names");
	else
		ck_assert_rv(rv, CKR_FUNCTION_REJECTED);
	t_end(&t);
}
END_TEST

/* ---- a slow token ------------------------------------------------------------------ */

struct blocker {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	CK_SESSION_HANDLE session;   /* the session whose C_Sign waits */
	bool entered, released;
};

static void
block_in_token(const char *function, CK_SESSION_HANDLE session, void *arg)
{
	struct blocker *b = arg;

	if (session != b->session)
		return;
	pthread_mutex_lock(&b->lock);
	b->entered = true;
	pthread_cond_broadcast(&b->cond);
	while (!b->released)
		pthread_cond_wait(&b->cond, &b->lock);
	pthread_mutex_unlock(&b->lock);
}

struct slow_signer {
	struct t *t;
	CK_SESSION_HANDLE s;
	CK_RV rv;
	CK_BYTE sig[32];
};

static void *
slow_sign(void *arg)
{
	struct slow_signer *a = arg;
	CK_ULONG len = sizeof a->sig;

	a->rv = a->t->f->C_Sign(a->s, (CK_BYTE_PTR)"slow", 4, a->sig, &len);
	return NULL;
}

/* While one session's signature is inside the token, p11gate holds no
 * lock that stops other sessions: another session signs, decrypts and is
 * recorded meanwhile.  Then the slow one completes, its result refers to
 * its own allow record, and the log verifies. */
START_TEST(slow_token_other_sessions_proceed)
{
	struct t t;
	struct blocker b = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, false };
	struct slow_signer slow;
	CK_SESSION_HANDLE other;
	CK_BYTE out[64], want[32];
	CK_ULONG len = sizeof out;
	char line[8192], ref[64];
	pthread_t thread;
	size_t mark;

	t_start(&t, "slow_token_other_sessions_proceed");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_OpenSession(t.w.slot, CKF_SERIAL_SESSION, NULL, NULL, &other), CKR_OK);
	b.session = t.s;
	t.m->hook("C_Sign", block_in_token, &b);
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	slow = (struct slow_signer){ .t = &t, .s = t.s };
	ck_assert_int_eq(pthread_create(&thread, NULL, slow_sign, &slow), 0);
	pthread_mutex_lock(&b.lock);
	while (!b.entered)
		pthread_cond_wait(&b.cond, &b.lock);
	pthread_mutex_unlock(&b.lock);

	/* The slow call is in the token now. */
	ck_assert_rv(t.f->C_SignInit(other, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_Sign(other, (CK_BYTE_PTR)"fast", 4, out, &len), CKR_OK);
	world_mock_signature("mock-sign", "fast", 4, want);
	ck_assert_mem_eq(out, want, 32);
	ck_assert_rv(t.f->C_DecryptInit(other, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	len = sizeof out;
	ck_assert_rv(t.f->C_Decrypt(other, (CK_BYTE_PTR)"\x3b", 1, out, &len), CKR_OK);
	ck_assert_uint_eq(out[0], 'a');
	ck_assert(world_audit_find_data_since(&t.w, mark, "fast", 4, ALLOW, NULL, 0));
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, RESULT, NULL), 2);

	pthread_mutex_lock(&b.lock);
	b.released = true;
	pthread_cond_broadcast(&b.cond);
	pthread_mutex_unlock(&b.lock);
	ck_assert_int_eq(pthread_join(thread, NULL), 0);
	ck_assert_rv(slow.rv, CKR_OK);
	world_mock_signature("mock-sign", "slow", 4, want);
	ck_assert_mem_eq(slow.sig, want, 32);
	ck_assert(world_audit_find_data_since(&t.w, mark, "slow", 4, ALLOW, line, sizeof line));
	snprintf(ref, sizeof ref, "\"ref\":%llu,", (unsigned long long)world_json_u64(line, "seq"));
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, RESULT, ref, "\"rv\":\"CKR_OK\"", NULL), 1);
	ck_assert_uint_eq(count(&t, mark, ALLOW), 3);
	t.m->hook("C_Sign", NULL, NULL);
	t_end(&t);
}
END_TEST

struct feeder {
	struct t *t;
	CK_RV rv;
	bool done;
};

static void *
feed_evil(void *arg)
{
	struct feeder *a = arg;

	a->rv = a->t->f->C_SignUpdate(a->t->s, (CK_BYTE_PTR)" and pay 10000", 14);
	__atomic_store_n(&a->done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

struct finisher {
	struct t *t;
	CK_RV rv;
	CK_BYTE sig[32];
};

static void *
sign_final(void *arg)
{
	struct finisher *a = arg;
	CK_ULONG len = sizeof a->sig;

	a->rv = a->t->f->C_SignFinal(a->t->s, a->sig, &len);
	return NULL;
}

/* Another thread of the caller feeds the same session while its
 * C_SignFinal is inside the token, past the allow record: the part must
 * not reach the token before the signature is made (it would be signed
 * without being named), and the signature is over what the record names. */
START_TEST(no_part_slips_in_while_the_token_signs)
{
	struct t t;
	struct blocker b = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, false };
	struct feeder feeder;
	struct finisher finisher;
	pthread_t sign_thread, feed_thread;
	CK_BYTE want[32];
	struct timespec pause = { 0, 200 * 1000 * 1000 };
	size_t mark;

	t_start(&t, "no_part_slips_in_while_the_token_signs");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_SignUpdate(t.s, (CK_BYTE_PTR)"pay 10", 6), CKR_OK);
	b.session = t.s;
	t.m->hook("C_SignFinal", block_in_token, &b);
	finisher = (struct finisher){ .t = &t };
	ck_assert_int_eq(pthread_create(&sign_thread, NULL, sign_final, &finisher), 0);
	pthread_mutex_lock(&b.lock);
	while (!b.entered)
		pthread_cond_wait(&b.cond, &b.lock);
	pthread_mutex_unlock(&b.lock);

	feeder = (struct feeder){ .t = &t };
	ck_assert_int_eq(pthread_create(&feed_thread, NULL, feed_evil, &feeder), 0);
	nanosleep(&pause, NULL);
	ck_assert_uint_eq(t.m->calls("C_SignUpdate"), 1);
	ck_assert_msg(!__atomic_load_n(&feeder.done, __ATOMIC_SEQ_CST), "a part passed while the token signed");

	pthread_mutex_lock(&b.lock);
	b.released = true;
	pthread_cond_broadcast(&b.cond);
	pthread_mutex_unlock(&b.lock);
	ck_assert_int_eq(pthread_join(sign_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(feed_thread, NULL), 0);
	t.m->hook("C_SignFinal", NULL, NULL);
	ck_assert_rv(finisher.rv, CKR_OK);
	world_mock_signature("mock-sign", "pay 10", 6, want);
	ck_assert_mem_eq(finisher.sig, want, 32);
	ck_assert(world_audit_find_data_since(&t.w, mark, "pay 10", 6, ALLOW, NULL, 0));
	/* The late part found the operation over. */
	ck_assert_rv(feeder.rv, CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_SignUpdate"), 1);
	t_end(&t);
}
END_TEST

/* A scripted delay in the token: sixteen threads on their own sessions
 * sign through p11gate at once, every signature is right and recorded
 * once, and the log's chain holds. */
struct signer_thread {
	struct t *t;
	int index;
	CK_RV rv;
	bool right;
};

static void *
sign_thread(void *arg)
{
	struct signer_thread *a = arg;
	CK_SESSION_HANDLE s;
	CK_BYTE sig[32], want[32];
	CK_ULONG len = sizeof sig;
	char data[32];

	snprintf(data, sizeof data, "thread %d", a->index);
	a->rv = a->t->f->C_OpenSession(a->t->w.slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (a->rv == CKR_OK)
		a->rv = a->t->f->C_SignInit(s, &sign_mech, MOCK_KEY_SIGN);
	if (a->rv == CKR_OK)
		a->rv = a->t->f->C_Sign(s, (CK_BYTE_PTR)data, strlen(data), sig, &len);
	world_mock_signature("mock-sign", data, strlen(data), want);
	a->right = a->rv == CKR_OK && len == 32 && memcmp(sig, want, 32) == 0;
	return NULL;
}

START_TEST(slow_token_concurrent_sessions)
{
	enum { N = 16 };
	struct t t;
	struct signer_thread args[N];
	pthread_t threads[N];
	size_t mark;

	t_start(&t, "slow_token_concurrent_sessions");
	mark = world_audit_lines(&t.w);
	t.m->script("C_Sign", CKR_OK, 0, 0, 50);
	for (int i = 0; i < N; i++) {
		args[i] = (struct signer_thread){ .t = &t, .index = i };
		ck_assert_int_eq(pthread_create(&threads[i], NULL, sign_thread, &args[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
		ck_assert_msg(args[i].right, "thread %d: %s", i, world_rv_name(args[i].rv));
	}
	for (int i = 0; i < N; i++) {
		char data[32], line[8192], ref[64];

		snprintf(data, sizeof data, "thread %d", i);
		ck_assert(world_audit_find_data_since(&t.w, mark, data, strlen(data), ALLOW, line, sizeof line));
		snprintf(ref, sizeof ref, "\"ref\":%llu,", (unsigned long long)world_json_u64(line, "seq"));
		ck_assert_uint_eq(world_audit_count_since(&t.w, mark, RESULT, ref, "\"rv\":\"CKR_OK\"", NULL), 1);
	}
	ck_assert_uint_eq(count(&t, mark, ALLOW), N);
	ck_assert_uint_eq(count(&t, mark, RESULT), N);
	t_end(&t);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("mock-states");
	TCase *sign = tcase_create("sign");
	TCase *decrypt = tcase_create("decrypt");
	TCase *slow = tcase_create("slow");

	tcase_set_timeout(sign, 60);
	tcase_add_test(sign, sign_allow_written_before_the_token_signs);
	tcase_add_test(sign, sign_in_parts);
	tcase_add_test(sign, sign_length_query_and_small_buffer);
	tcase_add_test(sign, sign_after_small_buffer_nothing_else);
	tcase_add_test(sign, sign_retry_with_other_data_judged_afresh);
	tcase_add_test(sign, sign_single_part_after_parts_refused);
	tcase_add_test(sign, sign_token_error_at_init);
	tcase_add_test(sign, sign_token_error_at_part);
	tcase_add_test(sign, sign_token_error_at_final);
	tcase_add_test(sign, sign_unusual_codes_unchanged);
	tcase_add_test(sign, sign_operation_active);
	tcase_add_test(sign, handle_renumbered_at_login_judged_afresh);
	tcase_add_test(sign, session_closed_mid_operation);
	suite_add_tcase(s, sign);

	tcase_set_timeout(decrypt, 60);
	tcase_add_test(decrypt, decrypt_parts_allow_before_plaintext);
	tcase_add_test(decrypt, decrypt_part_small_buffer);
	tcase_add_test(decrypt, decrypt_refused_at_part);
	tcase_add_test(decrypt, decrypt_token_error_at_part);
	tcase_add_test(decrypt, decrypt_secret_key_then_private_key);
	tcase_add_test(decrypt, decrypt_part_retry_with_other_data);
	tcase_add_test(decrypt, decrypt_sequence_refusals);
	suite_add_tcase(s, decrypt);

	tcase_set_timeout(slow, 120);
	tcase_add_test(slow, slow_token_other_sessions_proceed);
	tcase_add_test(slow, slow_token_concurrent_sessions);
	tcase_add_test(slow, no_part_slips_in_while_the_token_signs);
	suite_add_tcase(s, slow);
	return s;
}

int
main(void)
{
	return world_run_suite(suite());
}
