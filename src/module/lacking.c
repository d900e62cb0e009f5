/* SPDX-License-Identifier: Apache-2.0
 *
 * Functions a wrapped module lists but does not have.  SoftHSM2 2.6.1 lists
 * the dual-function updates (C_DecryptDigestUpdate, C_SignEncryptUpdate,
 * C_DecryptVerifyUpdate), C_SignRecoverInit/C_SignRecover and
 * C_VerifyRecoverInit/C_VerifyRecover, and answers
 * CKR_FUNCTION_NOT_SUPPORTED on every open session.  p11gate answers the
 * same, where it would otherwise answer for itself (an operation it did not
 * start, a key handle it could not read).
 */
#include "gate.h"

static CK_RV
call_probe(const pg_function_list_3_0 *lower, enum pg_probe which, CK_SESSION_HANDLE session)
{
	CK_BYTE in[16] = { 0 }, out[64];
	CK_ULONG out_len = sizeof out;
	CK_MECHANISM mechanism = { CKM_RSA_PKCS, NULL, 0 };

	switch (which) {
	case PG_PROBE_DECRYPT_DIGEST:
		return lower->C_DecryptDigestUpdate(session, in, sizeof in, out, &out_len);
	case PG_PROBE_SIGN_ENCRYPT:
		return lower->C_SignEncryptUpdate(session, in, sizeof in, out, &out_len);
	case PG_PROBE_DECRYPT_VERIFY:
		return lower->C_DecryptVerifyUpdate(session, in, sizeof in, out, &out_len);
	case PG_PROBE_VERIFY_RECOVER:
		return lower->C_VerifyRecoverInit(session, &mechanism, CK_INVALID_HANDLE);
	case PG_PROBE_SIGN_RECOVER:
	default:
		/* CK_INVALID_HANDLE: a module that has the function answers
		 * for the key; nothing can start. */
		return lower->C_SignRecoverInit(session, &mechanism, CK_INVALID_HANDLE);
	}
}

static bool
listed(const pg_function_list_3_0 *lower, enum pg_probe which)
{
	switch (which) {
	case PG_PROBE_DECRYPT_DIGEST:
		return lower->C_DecryptDigestUpdate != NULL;
	case PG_PROBE_SIGN_ENCRYPT:
		return lower->C_SignEncryptUpdate != NULL;
	case PG_PROBE_DECRYPT_VERIFY:
		return lower->C_DecryptVerifyUpdate != NULL;
	case PG_PROBE_VERIFY_RECOVER:
		return lower->C_VerifyRecoverInit != NULL && lower->C_VerifyRecover != NULL;
	case PG_PROBE_SIGN_RECOVER:
	default:
		return lower->C_SignRecoverInit != NULL && lower->C_SignRecover != NULL;
	}
}

/* The module is asked once, on a session p11gate opens for the question
 * on the caller's slot and closes at once.  That session holds no
 * operation and the question names no key, so it can neither continue an
 * operation (a decryption p11gate refused may still be open in the
 * caller's session, and nothing is ever forwarded on it) nor start one.
 * A module that has the function answers for the missing operation or
 * key; CKR_FUNCTION_NOT_SUPPORTED there means it has not.  A "lacks" that
 * is wrong only makes p11gate answer CKR_FUNCTION_NOT_SUPPORTED itself:
 * it never forwards a call on the strength of it. */
bool
pg_lower_lacks(const pg_function_list_3_0 *lower, enum pg_probe which, CK_SESSION_HANDLE session)
{
	enum pg_support known = pg_ctx_probe_support(which);
	CK_SESSION_HANDLE probe;
	CK_SESSION_INFO info;
	CK_RV rv;

	if (known != PG_SUPPORT_UNKNOWN)
		return known == PG_SUPPORT_LACKS;
	if (!listed(lower, which)) {
		pg_ctx_set_probe_support(which, PG_SUPPORT_LACKS);
		return true;
	}
	/* No open session to ask on: not known yet, the usual rules apply. */
	if (lower->C_GetSessionInfo(session, &info) != CKR_OK ||
	    lower->C_OpenSession(info.slotID, CKF_SERIAL_SESSION, NULL, NULL, &probe) != CKR_OK)
		return false;
	rv = call_probe(lower, which, probe);
	lower->C_CloseSession(probe);
	known = rv == CKR_FUNCTION_NOT_SUPPORTED ? PG_SUPPORT_LACKS : PG_SUPPORT_HAS;
	pg_ctx_set_probe_support(which, known);
	return known == PG_SUPPORT_LACKS;
}

CK_RV
pg_lower_unsupported(const pg_function_list_3_0 *lower, CK_SESSION_HANDLE session)
{
	CK_SESSION_INFO info;
	CK_RV rv = lower->C_GetSessionInfo(session, &info);

	return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
pg_lower_check(enum pg_probe which, CK_SESSION_HANDLE session)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();

	if (lower == NULL || !pg_lower_lacks(lower, which, session))
		return CKR_OK;
	return pg_lower_unsupported(lower, session);
}
