/* SPDX-License-Identifier: Apache-2.0
 *
 * The judged sign and decrypt calls (their 3.0 message forms are in
 * gate_message.c; derive, unwrap and `manage` in manage.c).  A use is
 * judged at its *Init (here) and again at the call that produces output,
 * where the allow record is written before the token acts (gate_op.c, the
 * operation's state machine).  Everything else is forwarded by forward.c.
 */
#include "gate.h"
#include "p11gate/common.h"

#include <stdlib.h>
#include <string.h>

/* ---- the caller's memory ------------------------------------------------------ */

CK_RV
pg_mechanism_copy_init(struct pg_mechanism_copy *copy, const CK_MECHANISM *mechanism)
{
	void *param;

	copy->heap = NULL;
	copy->m = *mechanism;
	if (copy->m.pParameter == NULL || copy->m.ulParameterLen == 0)
		return CKR_OK;
	if (copy->m.ulParameterLen <= sizeof copy->inline_param) {
		param = copy->inline_param;
	} else if ((param = copy->heap = malloc(copy->m.ulParameterLen)) == NULL) {
		return CKR_HOST_MEMORY;
	}
	memcpy(param, copy->m.pParameter, copy->m.ulParameterLen);
	copy->m.pParameter = param;
	return CKR_OK;
}

void
pg_mechanism_copy_release(struct pg_mechanism_copy *copy)
{
	free(copy->heap);
	copy->heap = NULL;
}

/* ---- *Init ---------------------------------------------------------------- */

/* Private-key mechanisms that check a padding (their output is not a
 * signature block of the caller's choosing): decryption and unwrapping
 * with them is judged as what it is called. */
static bool
pads(CK_MECHANISM_TYPE mechanism)
{
	return mechanism == CKM_RSA_PKCS || mechanism == CKM_RSA_PKCS_OAEP ||
	       mechanism == CKM_RSA_PKCS_TPM_1_1 || mechanism == CKM_RSA_PKCS_OAEP_TPM_1_1;
}

enum pg_op
pg_gate_private_op(enum pg_op op, const struct pg_keyinfo *key, CK_MECHANISM_TYPE mechanism)
{
	if ((op == PG_OP_DECRYPT || op == PG_OP_UNWRAP) && key->cls == CKO_PRIVATE_KEY && !pads(mechanism))
		return PG_OP_SIGN;
	return op;
}

CK_RV
pg_gate_use_at_init(struct pg_judge_call *call, const struct pg_init_call *init, CK_MECHANISM_PTR mechanism)
{
	struct pg_regime *regime = pg_ctx_regime();
	uint64_t seq;
	CK_RV rv;

	if (regime == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (call->key->cls != CKO_PRIVATE_KEY && !pg_judge_governed(regime, call->key)) {
		rv = init->lower_init(init->session, mechanism, init->key);
		goto out;
	}
	call->record_allow = true;
	rv = pg_judge(regime, call, &seq);
	if (rv == CKR_OK)
		rv = pg_judge_result(regime, call, seq, init->lower_init(init->session, mechanism, init->key),
		                     NULL, 0);
out:
	pg_regime_unref(regime);
	return rv;
}

/* 3.0: a NULL mechanism cancels the active operation. */
static CK_RV
init_cancel(enum pg_op_kind kind, const struct pg_init_call *init)
{
	CK_RV rv = init->lower_init(init->session, NULL, init->key);

	if (rv == CKR_OK)
		pg_gate_forget_kind(init->session, kind);
	return rv;
}

/* The key's use judged at the init (nothing recorded unless refused),
 * then the token asked to start the operation, and p11gate remembers it. */
static CK_RV
init_judged(struct pg_session *session, enum pg_op_kind kind, const struct pg_judge_call *call,
            const struct pg_init_call *init, CK_MECHANISM_PTR mechanism)
{
	struct pg_regime *regime = pg_ctx_regime();
	CK_RV rv;

	if (regime == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	rv = pg_judge(regime, call, NULL);
	if (rv == CKR_OK)
		rv = init->lower_init(init->session, mechanism, init->key);
	/* Not started (e.g. CKR_OPERATION_ACTIVE): the running one stays. */
	if (rv == CKR_OK)
		rv = pg_gate_op_start(session, kind, call->op, call->mechanism, call->key);
	pg_regime_unref(regime);
	return rv;
}

CK_RV
pg_gate_init(enum pg_op_kind kind, enum pg_op what, bool private_only, const struct pg_init_call *init)
{
	struct pg_mechanism_copy mech;
	struct pg_session *session = NULL;
	struct pg_keyinfo info;
	struct pg_judge_call call;
	CK_RV rv;

	if (init->lower_init == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (init->mechanism == NULL)
		return init_cancel(kind, init);
	rv = pg_mechanism_copy_init(&mech, init->mechanism);
	if (rv != CKR_OK)
		return rv;
	/* A handle that names no object: the token's own answer when asked
	 * about it (SoftHSM2's *Init answers the same). */
	rv = pg_ctx_keyinfo(init->session, init->key, &info);
	if (rv != CKR_OK)
		goto out;
	session = pg_ctx_session(init->session, true);
	if (session == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	call = (struct pg_judge_call){
		.function = init->function, .op = pg_gate_private_op(what, &info, mech.m.mechanism),
		.has_mechanism = true, .mechanism = mech.m.mechanism, .key = &info,
	};
	if (!private_only || info.cls == CKO_PRIVATE_KEY) {
		rv = init_judged(session, kind, &call, init, &mech.m);
		goto out;
	}
	/* A secret or public key's decryption is judged at its init (if
	 * named) and remembered, so that it alone is forwarded unjudged since. */
	rv = pg_gate_use_at_init(&call, init, &mech.m);
	if (rv == CKR_OK)
		pg_gate_op_passthrough(&session->ops[kind]);
out:
	pg_ctx_session_put(session);
	pg_mechanism_copy_release(&mech);
	return rv;
}

/* Any key class: an HMAC key signs too. */
CK_RV
pg_gate_C_SignInit(const pg_args_C_SignInit *a)
{
	return pg_gate_init(PG_KIND_SIGN, PG_OP_SIGN, false, a);
}

CK_RV
pg_gate_C_SignRecoverInit(const pg_args_C_SignRecoverInit *a)
{
	CK_RV rv = pg_lower_check(PG_PROBE_SIGN_RECOVER, a->session);

	return rv != CKR_OK ? rv : pg_gate_init(PG_KIND_SIGN_RECOVER, PG_OP_SIGN, false, a);
}

/* Decryption with a private key is followed call by call, and a raw one
 * (CKM_RSA_X_509: of a padded block, a signature) is judged as sign; with
 * another key it is judged at the init when the policy names the key. */
CK_RV
pg_gate_C_DecryptInit(const pg_args_C_DecryptInit *a)
{
	return pg_gate_init(PG_KIND_DECRYPT, PG_OP_DECRYPT, true, a);
}

/* ---- signing ------------------------------------------------------------------ */

/* A call of a function the token may list but lack (lacking.c): the
 * token's own answer then, before anything else. */
static CK_RV
output_unless_lacking(enum pg_probe probe, enum pg_op_kind kind, enum pg_output_end end, struct pg_io io)
{
	CK_RV rv = pg_lower_check(probe, io.session);

	return rv != CKR_OK ? rv : pg_gate_output(kind, end, io);
}

CK_RV
pg_gate_C_Sign(const pg_args_C_Sign *a)
{
	return pg_gate_output(PG_KIND_SIGN, PG_OUT_WHOLE, pg_io_C_Sign(a));
}

CK_RV
pg_gate_C_SignUpdate(const pg_args_C_SignUpdate *a)
{
	return pg_gate_feed(PG_KIND_SIGN, pg_io_C_SignUpdate(a));
}

CK_RV
pg_gate_C_SignFinal(const pg_args_C_SignFinal *a)
{
	return pg_gate_output(PG_KIND_SIGN, PG_OUT_FINAL, pg_io_C_SignFinal(a));
}

CK_RV
pg_gate_C_SignRecover(const pg_args_C_SignRecover *a)
{
	return output_unless_lacking(PG_PROBE_SIGN_RECOVER, PG_KIND_SIGN_RECOVER, PG_OUT_WHOLE,
	                             pg_io_C_SignRecover(a));
}

/* ---- decryption with a private key (secret-key decryption passes through) ------- */

CK_RV
pg_gate_C_Decrypt(const pg_args_C_Decrypt *a)
{
	return pg_gate_output(PG_KIND_DECRYPT, PG_OUT_WHOLE, pg_io_C_Decrypt(a));
}

CK_RV
pg_gate_C_DecryptUpdate(const pg_args_C_DecryptUpdate *a)
{
	return pg_gate_output(PG_KIND_DECRYPT, PG_OUT_PART, pg_io_C_DecryptUpdate(a));
}

CK_RV
pg_gate_C_DecryptFinal(const pg_args_C_DecryptFinal *a)
{
	return pg_gate_output(PG_KIND_DECRYPT, PG_OUT_FINAL, pg_io_C_DecryptFinal(a));
}

/* ---- dual-function updates: the private-key half is judged like its own -------- */

CK_RV
pg_gate_C_SignEncryptUpdate(const pg_args_C_SignEncryptUpdate *a)
{
	CK_RV rv = pg_lower_check(PG_PROBE_SIGN_ENCRYPT, a->session);

	return rv != CKR_OK ? rv : pg_gate_feed(PG_KIND_SIGN, pg_io_C_SignEncryptUpdate(a));
}

CK_RV
pg_gate_C_DecryptDigestUpdate(const pg_args_C_DecryptDigestUpdate *a)
{
	return output_unless_lacking(PG_PROBE_DECRYPT_DIGEST, PG_KIND_DECRYPT, PG_OUT_PART,
	                             pg_io_C_DecryptDigestUpdate(a));
}

CK_RV
pg_gate_C_DecryptVerifyUpdate(const pg_args_C_DecryptVerifyUpdate *a)
{
	return output_unless_lacking(PG_PROBE_DECRYPT_VERIFY, PG_KIND_DECRYPT, PG_OUT_PART,
	                             pg_io_C_DecryptVerifyUpdate(a));
}
