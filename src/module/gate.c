/* SPDX-License-Identifier: Apache-2.0
 *
 * The judged entry points: every call that uses a private key (sign,
 * decrypt, derive, unwrap, and their 3.0 message forms) or changes what a
 * policy-named object is (manage).  A use is judged at its *Init and again
 * at the call that produces output, where the allow record is written
 * before the token acts.  Everything else is forwarded by forward.c.
 */
#include "gate.h"
#include "p11gate/common.h"

#include <string.h>
#include <openssl/crypto.h>

/* Large enough for any signature or RSA block a token returns. */
#define SCRATCH_LEN 16384

static const char *const kind_init_name[PG_KIND_COUNT] = {
	[PG_KIND_SIGN] = "C_SignInit",
	[PG_KIND_SIGN_RECOVER] = "C_SignRecoverInit",
	[PG_KIND_DECRYPT] = "C_DecryptInit",
	[PG_KIND_MESSAGE_SIGN] = "C_MessageSignInit",
	[PG_KIND_MESSAGE_DECRYPT] = "C_MessageDecryptInit",
};

static const CK_FLAGS kind_cancel_flag[PG_KIND_COUNT] = {
	[PG_KIND_SIGN] = CKF_SIGN,
	[PG_KIND_SIGN_RECOVER] = CKF_SIGN_RECOVER,
	[PG_KIND_DECRYPT] = CKF_DECRYPT,
	[PG_KIND_MESSAGE_SIGN] = CKF_MESSAGE_SIGN,
	[PG_KIND_MESSAGE_DECRYPT] = CKF_MESSAGE_DECRYPT,
};

static struct pg_judge_call
op_call(const struct pg_session_op *op, const char *function, bool record_allow)
{
	return (struct pg_judge_call){
		.function = function,
		.op = op->op,
		.has_mechanism = true,
		.mechanism = op->mechanism,
		.key = &op->key,
		.record_allow = record_allow,
		.data_sha256 = op->data_sha256,
		.data = op->data_len > 0 ? op->data : NULL,
		.data_len = op->data_len,
	};
}

static void
begin_data(struct pg_session_op *op)
{
	op->logged = false;
	op->data_len = 0;
	if (op->md != NULL)
		EVP_DigestInit_ex(op->md, pg_sha256_md(), NULL);
}

bool
pg_gate_active(CK_SESSION_HANDLE handle, enum pg_op_kind kind)
{
	struct pg_session *session = pg_ctx_session(handle, false);

	return session != NULL && session->ops[kind].active;
}

void
pg_gate_begin_data(CK_SESSION_HANDLE handle, enum pg_op_kind kind)
{
	struct pg_session *session = pg_ctx_session(handle, false);

	if (session != NULL && session->ops[kind].active)
		begin_data(&session->ops[kind]);
}

void
pg_gate_forget(CK_SESSION_HANDLE handle, CK_FLAGS flags)
{
	struct pg_session *session = pg_ctx_session(handle, false);

	for (int k = 0; session != NULL && k < PG_KIND_COUNT; k++) {
		if (kind_cancel_flag[k] & flags)
			pg_session_op_reset(&session->ops[k]);
	}
}

/* ---- *Init ---------------------------------------------------------------- */

CK_RV
pg_gate_init(enum pg_op_kind kind, enum pg_op what, bool private_only, pg_init_fn lower_init,
            CK_SESSION_HANDLE handle, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct pg_regime *regime = NULL;
	struct pg_session *session;
	struct pg_session_op *op;
	struct pg_keyinfo info;
	struct pg_judge_call call;
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (lower_init == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (mechanism == NULL) {
		/* 3.0: a NULL mechanism cancels the active operation. */
		rv = lower_init(handle, NULL, key);
		if (rv == CKR_OK && (session = pg_ctx_session(handle, false)) != NULL)
			pg_session_op_reset(&session->ops[kind]);
		return rv;
	}
	rv = pg_ctx_keyinfo(handle, key, &info);
	if (rv != CKR_OK)
		return rv == CKR_OBJECT_HANDLE_INVALID ? CKR_KEY_HANDLE_INVALID : rv;
	if (private_only && info.cls != CKO_PRIVATE_KEY)
		return lower_init(handle, mechanism, key);

	regime = pg_ctx_regime();
	if (regime == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	call = (struct pg_judge_call){
		.function = kind_init_name[kind], .op = what,
		.has_mechanism = true, .mechanism = mechanism->mechanism, .key = &info,
	};
	rv = pg_judge(regime, &call, NULL);
	if (rv != CKR_OK)
		goto out;
	session = pg_ctx_session(handle, true);
	if (session == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	op = &session->ops[kind];
	rv = lower_init(handle, mechanism, key);
	if (rv != CKR_OK)
		goto out;          /* e.g. CKR_OPERATION_ACTIVE: the running one stays */
	pg_session_op_reset(op);
	op->md = EVP_MD_CTX_new();
	if (op->md == NULL || EVP_DigestInit_ex(op->md, pg_sha256_md(), NULL) != 1) {
		/* Cannot hash what is signed: do not let it run unrecorded. */
		pg_session_op_reset(op);
		if (lower->C_SessionCancel != NULL)
			lower->C_SessionCancel(handle, kind_cancel_flag[kind]);
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	op->active = true;
	op->op = what;
	op->mechanism = mechanism->mechanism;
	pg_keyinfo_copy(&op->key, &info);
out:
	pg_regime_unref(regime);
	return rv;
}

CK_RV
pg_hook_C_SignInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();

	/* Any key class: an HMAC key signs too. */
	return pg_gate_init(PG_KIND_SIGN, PG_OP_SIGN, false, lower ? lower->C_SignInit : NULL,
	                   session, mechanism, key);
}

CK_RV
pg_hook_C_SignRecoverInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();

	return pg_gate_init(PG_KIND_SIGN_RECOVER, PG_OP_SIGN, false,
	                   lower ? lower->C_SignRecoverInit : NULL, session, mechanism, key);
}

/* A raw RSA decryption of a padded block is a signature: decryption with
 * a private key is judged; with a secret key it is not p11gate's. */
CK_RV
pg_hook_C_DecryptInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();

	return pg_gate_init(PG_KIND_DECRYPT, PG_OP_DECRYPT, true, lower ? lower->C_DecryptInit : NULL,
	                   session, mechanism, key);
}

/* ---- the calls that produce output ------------------------------------------ */

static bool
is_message_kind(enum pg_op_kind kind)
{
	return kind == PG_KIND_MESSAGE_SIGN || kind == PG_KIND_MESSAGE_DECRYPT;
}

/* A refused operation must not stay usable in the token.  3.0 modules
 * cancel it; 2.40 has no cancel, so it is run to its end into a scratch
 * buffer that is wiped and never returned (every call that ends an
 * operation terminates it, per the spec). */
static void
cancel(const pg_function_list_3_0 *lower, const struct output_call *c)
{
	CK_BYTE scratch[SCRATCH_LEN];
	CK_ULONG len = sizeof scratch;

	if (!is_message_kind(c->kind) && lower->C_SessionCancel != NULL &&
	    lower->C_SessionCancel(c->session, kind_cancel_flag[c->kind]) == CKR_OK)
		return;
	if (c->final || !is_message_kind(c->kind))
		c->forward(lower, c, scratch, &len);
	OPENSSL_cleanse(scratch, sizeof scratch);
}

static void
finish(struct pg_session_op *op, const struct output_call *c)
{
	if (is_message_kind(c->kind))
		begin_data(op);    /* the next message is judged afresh */
	else
		pg_session_op_reset(op);
}

CK_RV
pg_gate_output(const struct output_call *c)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct pg_regime *regime = NULL;
	struct pg_session *session;
	struct pg_session_op *op;
	struct pg_judge_call call;
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	session = pg_ctx_session(c->session, false);
	op = session != NULL ? &session->ops[c->kind] : NULL;
	if (op == NULL || !op->active) {
		/* A decryption p11gate did not start used a secret key: not
		 * p11gate's.  A signature it did not start was never judged. */
		if (c->kind == PG_KIND_DECRYPT || c->kind == PG_KIND_MESSAGE_DECRYPT)
			return c->forward(lower, c, c->out, c->out_len);
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	if (c->final && c->out_len == NULL)
		return CKR_ARGUMENTS_BAD;
	if (c->data == NULL && c->data_len > 0)
		return CKR_ARGUMENTS_BAD;

	if (c->final && c->out == NULL) {
		/* A length query: no output, the operation goes on. */
		rv = c->forward(lower, c, NULL, c->out_len);
		if (rv != CKR_OK)
			pg_session_op_reset(op);
		return rv;
	}
	if (op->logged && c->final) {
		/* A retry after CKR_BUFFER_TOO_SMALL.  Other data, or the other
		 * form (C_Sign then C_SignFinal), is another signature: judged
		 * and recorded afresh.  The same data is judged
		 * again, since the policy may have changed; only a refusal is
		 * recorded. */
		unsigned char again[32];

		if (c->single_part != op->logged_single_part ||
		    (c->single_part && (!pg_sha256(c->data_len > 0 ? c->data : again, c->data_len, again) ||
		                        memcmp(again, op->data_sha256, sizeof again) != 0))) {
			begin_data(op);
		} else {
			struct pg_verdict verdict;

			regime = pg_ctx_regime();
			if (regime == NULL)
				return CKR_CRYPTOKI_NOT_INITIALIZED;
			call = op_call(op, c->function, true);
			pg_judge_decide(regime, &call, &verdict);
			if (!verdict.decision.allow) {
				rv = pg_judge_record(regime, &call, &verdict, NULL);
				cancel(lower, c);
				finish(op, c);
				goto out;
			}
		}
	}
	if (!op->logged) {
		if (c->data_len > 0)
			EVP_DigestUpdate(op->md, c->data, c->data_len);
		if (c->single_part && c->data_len <= sizeof op->data) {
			memcpy(op->data, c->data, c->data_len);
			op->data_len = c->data_len;
		}
		if (!c->final) {
			/* Output before the end (a decryption's parts): judged on the
			 * hash of what has passed so far. */
			EVP_MD_CTX *copy = EVP_MD_CTX_new();
			unsigned int n;
			if (copy == NULL || EVP_MD_CTX_copy_ex(copy, op->md) != 1 ||
			    EVP_DigestFinal_ex(copy, op->data_sha256, &n) != 1) {
				EVP_MD_CTX_free(copy);
				return CKR_HOST_MEMORY;
			}
			EVP_MD_CTX_free(copy);
		} else {
			unsigned int n;
			if (EVP_DigestFinal_ex(op->md, op->data_sha256, &n) != 1)
				return CKR_HOST_MEMORY;
		}
		if (regime == NULL && (regime = pg_ctx_regime()) == NULL)
			return CKR_CRYPTOKI_NOT_INITIALIZED;
		call = op_call(op, c->function, true);
		rv = pg_judge(regime, &call, &op->decision_seq);
		if (rv != CKR_OK) {
			cancel(lower, c);
			finish(op, c);
			goto out;
		}
		op->logged = true;
		op->logged_single_part = c->single_part;
	} else if (!c->single_part && c->data_len > 0 && !c->final) {
		EVP_DigestUpdate(op->md, c->data, c->data_len);
	}

	rv = c->forward(lower, c, c->out, c->out_len);
	if (rv == CKR_BUFFER_TOO_SMALL)
		goto out;          /* the caller retries; the allow is already recorded */
	if (!c->final) {
		if (rv != CKR_OK)
			pg_session_op_reset(op);
		goto out;
	}
	if (regime == NULL && (regime = pg_ctx_regime()) == NULL) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
		goto out;
	}
	call = op_call(op, c->function, true);
	rv = pg_judge_result(regime, &call, op->decision_seq, rv,
	                     c->out, rv == CKR_OK && c->out != NULL ? *c->out_len : 0);
	if (rv == CKR_FUNCTION_FAILED && c->out != NULL)
		OPENSSL_cleanse(c->out, *c->out_len);
	finish(op, c);
out:
	pg_regime_unref(regime);
	return rv;
}

CK_RV
pg_gate_feed(enum pg_op_kind kind, CK_SESSION_HANDLE handle, const CK_BYTE *part, CK_ULONG part_len,
     CK_RV (*forward)(const pg_function_list_3_0 *lower, const void *args), const void *args)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct pg_session *session;
	struct pg_session_op *op;
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (part == NULL && part_len > 0)
		return CKR_ARGUMENTS_BAD;
	session = pg_ctx_session(handle, false);
	op = session != NULL ? &session->ops[kind] : NULL;
	if (op == NULL || !op->active)
		return CKR_OPERATION_NOT_INITIALIZED;
	if (part_len > 0 && EVP_DigestUpdate(op->md, part, part_len) != 1)
		return CKR_HOST_MEMORY;
	rv = forward(lower, args);
	if (rv != CKR_OK)
		pg_session_op_reset(op);   /* an error ends the operation */
	return rv;
}

/* ---- signing ------------------------------------------------------------------ */

struct data_args {
	CK_BYTE_PTR data;
	CK_ULONG len;
};

static CK_RV
fwd_sign(const pg_function_list_3_0 *lower, const struct output_call *c, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return lower->C_Sign(c->session, (CK_BYTE_PTR)c->data, c->data_len, out, out_len);
}

CK_RV
pg_hook_C_Sign(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
               CK_BYTE_PTR signature, CK_ULONG_PTR signature_len)
{
	const struct output_call c = {
		.function = "C_Sign", .kind = PG_KIND_SIGN, .session = session,
		.data = data, .data_len = data_len, .single_part = true, .final = true,
		.out = signature, .out_len = signature_len, .forward = fwd_sign,
	};
	return pg_gate_output(&c);
}

static CK_RV
fwd_sign_update(const pg_function_list_3_0 *lower, const void *args)
{
	const CK_SESSION_HANDLE *s = ((const void *const *)args)[0];
	const struct data_args *d = ((const void *const *)args)[1];

	return lower->C_SignUpdate(*s, d->data, d->len);
}

CK_RV
pg_hook_C_SignUpdate(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)
{
	const struct data_args d = { part, part_len };
	const void *args[2] = { &session, &d };

	return pg_gate_feed(PG_KIND_SIGN, session, part, part_len, fwd_sign_update, args);
}

static CK_RV
fwd_sign_final(const pg_function_list_3_0 *lower, const struct output_call *c, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return lower->C_SignFinal(c->session, out, out_len);
}

CK_RV
pg_hook_C_SignFinal(CK_SESSION_HANDLE session, CK_BYTE_PTR signature, CK_ULONG_PTR signature_len)
{
	const struct output_call c = {
		.function = "C_SignFinal", .kind = PG_KIND_SIGN, .session = session,
		.final = true, .out = signature, .out_len = signature_len, .forward = fwd_sign_final,
	};
	return pg_gate_output(&c);
}

static CK_RV
fwd_sign_recover(const pg_function_list_3_0 *lower, const struct output_call *c, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return lower->C_SignRecover(c->session, (CK_BYTE_PTR)c->data, c->data_len, out, out_len);
}

CK_RV
pg_hook_C_SignRecover(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                      CK_BYTE_PTR signature, CK_ULONG_PTR signature_len)
{
	const struct output_call c = {
		.function = "C_SignRecover", .kind = PG_KIND_SIGN_RECOVER, .session = session,
		.data = data, .data_len = data_len, .single_part = true, .final = true,
		.out = signature, .out_len = signature_len, .forward = fwd_sign_recover,
	};
	return pg_gate_output(&c);
}

/* ---- decryption with a private key (secret-key decryption passes through) ------- */

static CK_RV
fwd_decrypt(const pg_function_list_3_0 *lower, const struct output_call *c, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return lower->C_Decrypt(c->session, (CK_BYTE_PTR)c->data, c->data_len, out, out_len);
}

CK_RV
pg_hook_C_Decrypt(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                  CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	const struct output_call c = {
		.function = "C_Decrypt", .kind = PG_KIND_DECRYPT, .session = session,
		.data = data, .data_len = data_len, .single_part = true, .final = true,
		.out = out, .out_len = out_len, .forward = fwd_decrypt,
	};

	return pg_gate_output(&c);
}

static CK_RV
fwd_decrypt_update(const pg_function_list_3_0 *lower, const struct output_call *c, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return lower->C_DecryptUpdate(c->session, (CK_BYTE_PTR)c->data, c->data_len, out, out_len);
}

CK_RV
pg_hook_C_DecryptUpdate(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len,
                        CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	const struct output_call c = {
		.function = "C_DecryptUpdate", .kind = PG_KIND_DECRYPT, .session = session,
		.data = part, .data_len = part_len, .out = out, .out_len = out_len,
		.forward = fwd_decrypt_update,
	};

	return pg_gate_output(&c);
}

static CK_RV
fwd_decrypt_final(const pg_function_list_3_0 *lower, const struct output_call *c, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return lower->C_DecryptFinal(c->session, out, out_len);
}

CK_RV
pg_hook_C_DecryptFinal(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	const struct output_call c = {
		.function = "C_DecryptFinal", .kind = PG_KIND_DECRYPT, .session = session,
		.final = true, .out = out, .out_len = out_len, .forward = fwd_decrypt_final,
	};

	return pg_gate_output(&c);
}

/* ---- dual-function updates: the private-key half is judged like its own -------- */

static CK_RV
fwd_sign_encrypt(const pg_function_list_3_0 *lower, const void *args)
{
	const struct output_call *c = args;

	return lower->C_SignEncryptUpdate(c->session, (CK_BYTE_PTR)c->data, c->data_len, c->out, c->out_len);
}

CK_RV
pg_hook_C_SignEncryptUpdate(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len,
                            CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	const struct output_call c = {
		.session = session, .data = part, .data_len = part_len, .out = out, .out_len = out_len,
	};

	return pg_gate_feed(PG_KIND_SIGN, session, part, part_len, fwd_sign_encrypt, &c);
}

static CK_RV
fwd_decrypt_digest(const pg_function_list_3_0 *lower, const struct output_call *c, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return lower->C_DecryptDigestUpdate(c->session, (CK_BYTE_PTR)c->data, c->data_len, out, out_len);
}

CK_RV
pg_hook_C_DecryptDigestUpdate(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len,
                              CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	const struct output_call c = {
		.function = "C_DecryptDigestUpdate", .kind = PG_KIND_DECRYPT, .session = session,
		.data = part, .data_len = part_len, .out = out, .out_len = out_len,
		.forward = fwd_decrypt_digest,
	};

	return pg_gate_output(&c);
}

static CK_RV
fwd_decrypt_verify(const pg_function_list_3_0 *lower, const struct output_call *c, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return lower->C_DecryptVerifyUpdate(c->session, (CK_BYTE_PTR)c->data, c->data_len, out, out_len);
}

CK_RV
pg_hook_C_DecryptVerifyUpdate(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len,
                              CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	const struct output_call c = {
		.function = "C_DecryptVerifyUpdate", .kind = PG_KIND_DECRYPT, .session = session,
		.data = part, .data_len = part_len, .out = out, .out_len = out_len,
		.forward = fwd_decrypt_verify,
	};

	return pg_gate_output(&c);
}
