/* SPDX-License-Identifier: Apache-2.0
 *
 * C_InitToken, and the sessions it must know about.  Initialising a token
 * destroys every key on it, the policy's too: it is the `manage` operation
 * on the token itself, refused unless a rule allows it.  Where the token
 * would refuse the call anyway (a bad slot, sessions open, a wrong SO PIN),
 * the caller gets the token's own answer first, learnt without letting it
 * initialise anything.
 */
#include "gate.h"

#include <string.h>

CK_RV
pg_gate_C_OpenSession(const pg_args_C_OpenSession *a)
{
	CK_RV rv = pg_call_C_OpenSession(pg_ctx_lower(), a);

	if (rv == CKR_OK)
		pg_ctx_session_opened(*a->session, a->slot);
	return rv;
}

static bool
is_count(CK_ULONG n)
{
	return n != CK_UNAVAILABLE_INFORMATION && n != CK_EFFECTIVELY_INFINITE;
}

/* The SO PIN, tried the way C_InitToken would try it: a login as SO on a
 * session of p11gate's own, logged out and closed at once.  (A caller can
 * make the same test with C_Login through p11gate: nothing new is told.)
 * CKR_OK when it is right or cannot be tried. */
static CK_RV
check_so_pin(const pg_function_list_3_0 *lower, CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
	CK_SESSION_HANDLE s;
	CK_RV rv;

	if (lower->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK)
		return CKR_OK;
	rv = lower->C_Login(s, CKU_SO, pin, pin_len);
	if (rv == CKR_OK)
		lower->C_Logout(s);
	lower->C_CloseSession(s);
	return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_LOCKED ? rv : CKR_OK;
}

/* What the token would answer before initialising, in SoftHSM2's order:
 * the slot, open sessions, the SO PIN and label pointers, the SO PIN. */
static CK_RV
token_objections(const pg_function_list_3_0 *lower, const struct pg_keyinfo *token, CK_SLOT_ID slot,
                 CK_UTF8CHAR_PTR pin, CK_ULONG pin_len, CK_UTF8CHAR_PTR label)
{
	const CK_TOKEN_INFO *info = &token->token_info;

	/* The token's count where it keeps one (SoftHSM2 does not), else the
	 * sessions opened through p11gate: the ones this process has. */
	if ((is_count(info->ulSessionCount) && info->ulSessionCount > 0) || pg_ctx_sessions_on(slot) > 0)
		return CKR_SESSION_EXISTS;
	if (pin == NULL || label == NULL)
		return CKR_ARGUMENTS_BAD;
	if (info->flags & CKF_TOKEN_INITIALIZED)
		return check_so_pin(lower, slot, pin, pin_len);
	return CKR_OK;
}

CK_RV
pg_gate_C_InitToken(const pg_args_C_InitToken *a)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct pg_regime *regime = NULL;
	struct pg_keyinfo token;
	struct pg_judge_call call;
	struct pg_verdict verdict = { .login = NULL };
	uint64_t seq;
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	/* A slot that does not exist, or has no token: the token's answer. */
	rv = pg_keyinfo_read_token(pg_lower_2_40(lower), a->slot, &token);
	if (rv != CKR_OK)
		return rv;
	regime = pg_ctx_regime();
	if (regime == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	call = (struct pg_judge_call){
		.function = a->function, .op = PG_OP_MANAGE, .key = &token, .record_allow = true,
	};
	pg_judge_decide(regime, &call, &verdict);
	if (!verdict.decision.allow) {
		rv = token_objections(lower, &token, a->slot, a->pin, a->pin_len, a->label);
		if (rv == CKR_OK)
			rv = pg_judge_record(regime, &call, &verdict, NULL);
		goto out;
	}
	rv = pg_judge_record(regime, &call, &verdict, &seq);
	if (rv != CKR_OK)
		goto out;
	rv = pg_call_C_InitToken(lower, a);
	rv = pg_judge_result(regime, &call, seq, rv, NULL, 0);
	if (rv == CKR_OK)
		pg_ctx_objects_changed();
out:
	pg_verdict_release(&verdict);
	pg_regime_unref(regime);
	return rv;
}
