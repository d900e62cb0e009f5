/* SPDX-License-Identifier: Apache-2.0
 *
 * C_SessionCancel (PKCS#11 3.0) and the 3.0 cancel by a NULL mechanism,
 * through p11gate.so over the mock 3.0 token (tests/mock); SoftHSM2 2.6.1
 * has neither.  A cancelled operation must leave no state in the gate:
 * the next call on it is answered without reaching the token, the next
 * init is judged afresh, and nothing it held (parts, an allow record
 * awaiting a retry) yields output.  A cancel the token refuses must leave
 * the operation as the token keeps it.  And a refusal at the output call
 * must end the token's operation, by C_SessionCancel where it works.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
static CK_MECHANISM pkcs_mech = { CKM_RSA_PKCS, NULL, 0 };

#define ALLOW "\"decision\":\"allow\""
#define RESULT "\"event\":\"result\""

struct t {
	struct world w;
	struct mock_function_list_3_0 *f;   /* p11gate's 3.0 table */
	const CK_FUNCTION_LIST *f2;         /* ... its 2.40 part */
	const struct mock_p11_control *m;
	CK_SESSION_HANDLE s;
};

static void
t_start(struct t *t, const char *name)
{
	printf("mock-cancel: %s\n", name);
	fflush(stdout);
	t->s = world_mock_start(&t->w, "mock-cancel", name, RULES);
	t->m = world_mock(&t->w);
	t->f = world_interface_3_0(&t->w);
	t->f2 = &t->f->base;
}

static void
t_end(struct t *t)
{
	world_audit_verify(&t->w);
	world_close(&t->w);
}

/* A whole signature of data after the cancel: judged afresh, over data
 * alone, and recorded. */
static void
sign_afresh(struct t *t, const char *data)
{
	CK_BYTE sig[64], want[32];
	CK_ULONG len = sizeof sig;
	size_t mark = world_audit_lines(&t->w);

	ck_assert_rv(t->f2->C_SignInit(t->s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t->f2->C_Sign(t->s, (CK_BYTE_PTR)data, strlen(data), sig, &len), CKR_OK);
	world_mock_signature("mock-sign", data, strlen(data), want);
	ck_assert_mem_eq(sig, want, 32);
	world_expect_allow_data(&t->w, mark, "C_Sign", "sign", data, strlen(data));
}

START_TEST(cancel_mid_parts)
{
	struct t t;
	CK_BYTE sig[64];
	CK_ULONG len = sizeof sig;
	size_t mark;

	t_start(&t, "cancel_mid_parts");
	ck_assert_rv(t.f2->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f2->C_SignUpdate(t.s, (CK_BYTE_PTR)"before ", 7), CKR_OK);
	ck_assert_rv(t.f->C_SessionCancel(t.s, CKF_SIGN), CKR_OK);
	ck_assert(!t.m->active(t.s, CKF_SIGN));
	ck_assert_rv(t.f2->C_SignFinal(t.s, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_rv(t.f2->C_SignUpdate(t.s, (CK_BYTE_PTR)"more", 4), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_SignFinal"), 0);
	ck_assert_uint_eq(t.m->calls("C_SignUpdate"), 1);

	/* The next init is judged afresh, not taken for the cancelled one. */
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f2->C_SignInit(t.s, &sign_mech, MOCK_KEY_OTHER), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_SignInit", "sign");
	sign_afresh(&t, "after");
	t_end(&t);
}
END_TEST

/* An allow record awaiting its retry dies with the operation: the retry
 * after the cancel gets nothing, and a new signature is a new record. */
START_TEST(cancel_after_small_buffer)
{
	struct t t;
	CK_BYTE sig[64];
	CK_ULONG len = 8;
	size_t mark;

	t_start(&t, "cancel_after_small_buffer");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f2->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f2->C_Sign(t.s, (CK_BYTE_PTR)"data", 4, sig, &len), CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, ALLOW, NULL), 1);
	ck_assert_rv(t.f->C_SessionCancel(t.s, CKF_SIGN), CKR_OK);
	len = sizeof sig;
	memset(sig, 0xee, sizeof sig);
	ck_assert_rv(t.f2->C_Sign(t.s, (CK_BYTE_PTR)"data", 4, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(sig[0], 0xee);
	ck_assert_uint_eq(t.m->calls("C_Sign"), 1);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, RESULT, NULL), 0);
	sign_afresh(&t, "data");
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, ALLOW, NULL), 2);
	t_end(&t);
}
END_TEST

/* Cancelling one kind leaves the others running, judged as before. */
START_TEST(cancel_one_kind_keeps_the_others)
{
	struct t t;
	CK_BYTE out[64];
	CK_ULONG len = sizeof out;
	size_t mark;

	t_start(&t, "cancel_one_kind_keeps_the_others");
	ck_assert_rv(t.f2->C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f2->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_SessionCancel(t.s, 0), CKR_OK);        /* no kind: nothing ends */
	ck_assert(t.m->active(t.s, CKF_SIGN));
	ck_assert_rv(t.f->C_SessionCancel(t.s, CKF_SIGN), CKR_OK);
	ck_assert(t.m->active(t.s, CKF_DECRYPT));
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f2->C_Decrypt(t.s, (CK_BYTE_PTR)"\x3b", 1, out, &len), CKR_OK);
	ck_assert_uint_eq(out[0], 'a');
	world_expect_allow_data(&t.w, mark, "C_Decrypt", "decrypt", "\x3b", 1);
	len = sizeof out;
	ck_assert_rv(t.f2->C_Sign(t.s, (CK_BYTE_PTR)"x", 1, out, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_Sign"), 0);
	t_end(&t);
}
END_TEST

/* A cancel the token refuses: its code unchanged, and the operation it
 * keeps is still the gate's, judged and recorded at its output. */
START_TEST(cancel_refused_by_token)
{
	struct t t;
	CK_BYTE sig[64], want[32];
	CK_ULONG len = sizeof sig;
	size_t mark;

	t_start(&t, "cancel_refused_by_token");
	ck_assert_rv(t.f2->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f2->C_SignUpdate(t.s, (CK_BYTE_PTR)"kept", 4), CKR_OK);
	t.m->script("C_SessionCancel", CKR_OPERATION_CANCEL_FAILED, 0, 1, 0);
	ck_assert_rv(t.f->C_SessionCancel(t.s, CKF_SIGN), CKR_OPERATION_CANCEL_FAILED);
	ck_assert(t.m->active(t.s, CKF_SIGN));
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f2->C_SignFinal(t.s, sig, &len), CKR_OK);
	world_mock_signature("mock-sign", "kept", 4, want);
	ck_assert_mem_eq(sig, want, 32);
	world_expect_allow_data(&t.w, mark, "C_SignFinal", "sign", "kept", 4);
	t_end(&t);
}
END_TEST

/* 3.0: an init with a NULL mechanism cancels the running operation. */
START_TEST(cancel_by_null_mechanism)
{
	struct t t;
	CK_BYTE sig[64];
	CK_ULONG len = sizeof sig;

	CK_BYTE want[32];
	size_t mark;

	t_start(&t, "cancel_by_null_mechanism");
	ck_assert_rv(t.f2->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f2->C_SignUpdate(t.s, (CK_BYTE_PTR)"before", 6), CKR_OK);
	/* Refused by the token: the operation stays, in both. */
	t.m->script("C_SignInit", CKR_FUNCTION_FAILED, 0, 1, 0);
	ck_assert_rv(t.f2->C_SignInit(t.s, NULL, CK_INVALID_HANDLE), CKR_FUNCTION_FAILED);
	ck_assert(t.m->active(t.s, CKF_SIGN));
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f2->C_SignFinal(t.s, sig, &len), CKR_OK);
	world_mock_signature("mock-sign", "before", 6, want);
	ck_assert_mem_eq(sig, want, 32);
	world_expect_allow_data(&t.w, mark, "C_SignFinal", "sign", "before", 6);

	ck_assert_rv(t.f2->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f2->C_SignUpdate(t.s, (CK_BYTE_PTR)"before", 6), CKR_OK);
	ck_assert_rv(t.f2->C_SignInit(t.s, NULL, CK_INVALID_HANDLE), CKR_OK);
	ck_assert(!t.m->active(t.s, CKF_SIGN));
	len = sizeof sig;
	ck_assert_rv(t.f2->C_SignFinal(t.s, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_SignFinal"), 1);
	sign_afresh(&t, "after");
	t_end(&t);
}
END_TEST

START_TEST(cancel_mid_message)
{
	struct t t;
	CK_BYTE sig[64];
	CK_ULONG len = sizeof sig;
	size_t mark;

	t_start(&t, "cancel_mid_message");
	ck_assert_rv(t.f->C_MessageSignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_SignMessageBegin(t.s, NULL, 0), CKR_OK);
	ck_assert_rv(t.f->C_SignMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"part", 4, NULL, NULL), CKR_OK);
	ck_assert_rv(t.f->C_SessionCancel(t.s, CKF_MESSAGE_SIGN), CKR_OK);
	ck_assert(!t.m->active(t.s, CKF_MESSAGE_SIGN));
	ck_assert_rv(t.f->C_SignMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"end", 3, sig, &len),
	             CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_rv(t.f->C_SignMessage(t.s, NULL, 0, (CK_BYTE_PTR)"x", 1, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_rv(t.f->C_SignMessageBegin(t.s, NULL, 0), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_SignMessageNext"), 1);
	ck_assert_uint_eq(t.m->calls("C_SignMessage"), 0);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_MessageSignInit(t.s, &sign_mech, MOCK_KEY_OTHER), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_MessageSignInit", "sign");
	ck_assert_rv(t.f->C_MessageSignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_MessageSignFinal(t.s), CKR_OK);
	t_end(&t);
}
END_TEST

/* A message decryption cancelled after its first part gave plaintext
 * (with its allow record): no further plaintext from it. */
START_TEST(cancel_message_decryption_after_first_part)
{
	struct t t;
	CK_BYTE plain[64];
	CK_ULONG len = sizeof plain;
	size_t mark;

	t_start(&t, "cancel_message_decryption_after_first_part");
	ck_assert_rv(t.f->C_MessageDecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptMessageBegin(t.s, NULL, 0, NULL, 0), CKR_OK);
	ck_assert_rv(t.f->C_DecryptMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"\x3b", 1, plain, &len, 0), CKR_OK);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, ALLOW, NULL), 1);
	ck_assert_rv(t.f->C_SessionCancel(t.s, CKF_MESSAGE_DECRYPT), CKR_OK);
	len = sizeof plain;
	memset(plain, 0xee, sizeof plain);
	ck_assert_rv(t.f->C_DecryptMessageNext(t.s, NULL, 0, (CK_BYTE_PTR)"\x3c", 1, plain, &len, CKF_END_OF_MESSAGE),
	             CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(plain[0], 0xee);
	len = sizeof plain;
	ck_assert_rv(t.f->C_DecryptMessage(t.s, NULL, 0, NULL, 0, (CK_BYTE_PTR)"\x3c", 1, plain, &len),
	             CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_DecryptMessageNext"), 1);
	ck_assert_uint_eq(t.m->calls("C_DecryptMessage"), 0);
	t_end(&t);
}
END_TEST

/* Refused at the output call: the gate ends the token's operation with
 * C_SessionCancel, so the token never computes the refused signature. */
START_TEST(refusal_cancels_in_the_token)
{
	struct t t;
	CK_BYTE sig[64];
	CK_ULONG len = sizeof sig;
	size_t mark;

	t_start(&t, "refusal_cancels_in_the_token");
	ck_assert_rv(t.f2->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	world_policy(&t.w, NOTHING);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f2->C_Sign(t.s, (CK_BYTE_PTR)"data", 4, sig, &len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_Sign", "sign");
	ck_assert_uint_eq(t.m->calls("C_SessionCancel"), 1);
	ck_assert_uint_eq(t.m->calls("C_Sign"), 0);
	ck_assert(!t.m->active(t.s, CKF_SIGN));
	t_end(&t);
}
END_TEST

/* ... and where the token cannot cancel, by completing it into a buffer
 * the caller never sees. */
START_TEST(refusal_when_the_token_cannot_cancel)
{
	struct t t;
	CK_BYTE sig[64];
	CK_ULONG len = sizeof sig;
	size_t mark;

	t_start(&t, "refusal_when_the_token_cannot_cancel");
	ck_assert_rv(t.f2->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	world_policy(&t.w, NOTHING);
	t.m->script("C_SessionCancel", CKR_OPERATION_CANCEL_FAILED, 0, 0, 0);
	mark = world_audit_lines(&t.w);
	memset(sig, 0xee, sizeof sig);
	ck_assert_rv(t.f2->C_Sign(t.s, (CK_BYTE_PTR)"data", 4, sig, &len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_Sign", "sign");
	for (size_t i = 0; i < sizeof sig; i++)
		ck_assert_uint_eq(sig[i], 0xee);
	ck_assert_uint_eq(t.m->calls("C_Sign"), 1);
	ck_assert(!t.m->active(t.s, CKF_SIGN));
	len = sizeof sig;
	ck_assert_rv(t.f2->C_Sign(t.s, (CK_BYTE_PTR)"data", 4, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_Sign"), 1);
	t_end(&t);
}
END_TEST

/* ---- a cancel while the output call is inside the token --------------------- */

struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool entered, released;
};

static void
hold_in_token(const char *function, CK_SESSION_HANDLE session, void *arg)
{
	struct gate *g = arg;

	pthread_mutex_lock(&g->lock);
	g->entered = true;
	pthread_cond_broadcast(&g->cond);
	while (!g->released)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

struct call {
	struct t *t;
	CK_RV rv;
	CK_BYTE sig[64];
};

static void *
sign_call(void *arg)
{
	struct call *c = arg;
	CK_ULONG len = sizeof c->sig;

	c->rv = c->t->f2->C_Sign(c->t->s, (CK_BYTE_PTR)"data", 4, c->sig, &len);
	return NULL;
}

static void *
cancel_call(void *arg)
{
	struct call *c = arg;

	c->rv = c->t->f->C_SessionCancel(c->t->s, CKF_SIGN);
	return NULL;
}

/* Another thread cancels while C_Sign is inside the token (past its allow
 * record): the token's answer to the cancelled call is what the caller
 * and the result record get, no signature leaves, and the operation is
 * gone in the gate and the token alike. */
START_TEST(cancel_during_the_token_call)
{
	struct t t;
	struct gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false };
	struct call signer, canceller;
	pthread_t sign_thread, cancel_thread;
	CK_BYTE sig[64];
	CK_ULONG len = sizeof sig;
	size_t mark;

	t_start(&t, "cancel_during_the_token_call");
	ck_assert_rv(t.f2->C_SignInit(t.s, &sign_mech, MOCK_KEY_SIGN), CKR_OK);
	mark = world_audit_lines(&t.w);
	t.m->hook("C_Sign", hold_in_token, &g);
	signer = (struct call){ .t = &t };
	memset(signer.sig, 0xee, sizeof signer.sig);
	ck_assert_int_eq(pthread_create(&sign_thread, NULL, sign_call, &signer), 0);
	pthread_mutex_lock(&g.lock);
	while (!g.entered)
		pthread_cond_wait(&g.cond, &g.lock);
	pthread_mutex_unlock(&g.lock);

	canceller = (struct call){ .t = &t };
	ck_assert_int_eq(pthread_create(&cancel_thread, NULL, cancel_call, &canceller), 0);
	for (int i = 0; i < 5000 && t.m->calls("C_SessionCancel") == 0; i++)
		usleep(1000);
	ck_assert_uint_eq(t.m->calls("C_SessionCancel"), 1);
	ck_assert(!t.m->active(t.s, CKF_SIGN));

	pthread_mutex_lock(&g.lock);
	g.released = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	ck_assert_int_eq(pthread_join(sign_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(cancel_thread, NULL), 0);
	t.m->hook("C_Sign", NULL, NULL);

	ck_assert_rv(canceller.rv, CKR_OK);
	ck_assert_rv(signer.rv, CKR_OPERATION_NOT_INITIALIZED);
	for (size_t i = 0; i < sizeof signer.sig; i++)
		ck_assert_uint_eq(signer.sig[i], 0xee);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, ALLOW, NULL), 1);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, RESULT, "\"rv\":\"CKR_OPERATION_NOT_INITIALIZED\"", NULL), 1);
	ck_assert_rv(t.f2->C_Sign(t.s, (CK_BYTE_PTR)"data", 4, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(t.m->calls("C_Sign"), 1);
	sign_afresh(&t, "after");
	t_end(&t);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("mock-cancel");
	TCase *tc = tcase_create("cancel");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, cancel_mid_parts);
	tcase_add_test(tc, cancel_after_small_buffer);
	tcase_add_test(tc, cancel_one_kind_keeps_the_others);
	tcase_add_test(tc, cancel_refused_by_token);
	tcase_add_test(tc, cancel_by_null_mechanism);
	tcase_add_test(tc, cancel_mid_message);
	tcase_add_test(tc, cancel_message_decryption_after_first_part);
	tcase_add_test(tc, refusal_cancels_in_the_token);
	tcase_add_test(tc, refusal_when_the_token_cannot_cancel);
	tcase_add_test(tc, cancel_during_the_token_call);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return world_run_suite(suite());
}
