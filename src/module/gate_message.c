/* SPDX-License-Identifier: Apache-2.0
 *
 * The PKCS#11 3.0 message-based calls that use a private key.  One
 * judged init may sign many messages: each message is judged and recorded
 * on its own, like a single-part signature.  A 2.40 module (SoftHSM2 2.6)
 * has none of these; they then answer CKR_FUNCTION_NOT_SUPPORTED.
 */
#include "gate.h"

CK_RV
pg_gate_C_MessageSignInit(const pg_args_C_MessageSignInit *a)
{
	return pg_gate_init(PG_KIND_MESSAGE_SIGN, PG_OP_SIGN, false, a);
}

CK_RV
pg_gate_C_MessageDecryptInit(const pg_args_C_MessageDecryptInit *a)
{
	return pg_gate_init(PG_KIND_MESSAGE_DECRYPT, PG_OP_DECRYPT, true, a);
}

/* The wrapped module's function, if it has it (a 2.40 module has none). */
#define HAS(name) (pg_ctx_lower() != NULL && pg_ctx_lower()->name != NULL)

CK_RV
pg_gate_C_SignMessage(const pg_args_C_SignMessage *a)
{
	if (!HAS(C_SignMessage))
		return CKR_FUNCTION_NOT_SUPPORTED;
	return pg_gate_output(PG_KIND_MESSAGE_SIGN, PG_OUT_WHOLE, pg_io_C_SignMessage(a));
}

/* The token's answer to a new message: if it began, the message is
 * judged afresh. */
static CK_RV
message_begun(CK_RV rv, CK_SESSION_HANDLE session, enum pg_op_kind kind)
{
	if (rv == CKR_OK)
		pg_gate_begin_data(session, kind);
	return rv;
}

CK_RV
pg_gate_C_SignMessageBegin(const pg_args_C_SignMessageBegin *a)
{
	if (!HAS(C_SignMessageBegin))
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (!pg_gate_active(a->session, PG_KIND_MESSAGE_SIGN))
		return CKR_OPERATION_NOT_INITIALIZED;
	return message_begun(pg_call_C_SignMessageBegin(pg_ctx_lower(), a), a->session, PG_KIND_MESSAGE_SIGN);
}

/* A part with no signature length pointer is not the last one. */
CK_RV
pg_gate_C_SignMessageNext(const pg_args_C_SignMessageNext *a)
{
	if (!HAS(C_SignMessageNext))
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (a->signature_len == NULL)
		return pg_gate_feed(PG_KIND_MESSAGE_SIGN, pg_io_C_SignMessageNext(a));
	return pg_gate_output(PG_KIND_MESSAGE_SIGN, PG_OUT_FINAL, pg_io_C_SignMessageNext(a));
}

/* The token's answer to the end of a message operation itself: p11gate
 * forgets it, whatever the answer. */
static CK_RV
message_op_ended(CK_RV rv, CK_SESSION_HANDLE session, enum pg_op_kind kind)
{
	pg_gate_forget_kind(session, kind);
	return rv;
}

CK_RV
pg_gate_C_MessageSignFinal(const pg_args_C_MessageSignFinal *a)
{
	if (!HAS(C_MessageSignFinal))
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (!pg_gate_active(a->session, PG_KIND_MESSAGE_SIGN))
		return CKR_OPERATION_NOT_INITIALIZED;
	return message_op_ended(pg_call_C_MessageSignFinal(pg_ctx_lower(), a), a->session,
	                        PG_KIND_MESSAGE_SIGN);
}

CK_RV
pg_gate_C_DecryptMessage(const pg_args_C_DecryptMessage *a)
{
	/* Private-key message decryption carries no associated data: the
	 * token is given none. */
	pg_args_C_DecryptMessage own = *a;

	if (!HAS(C_DecryptMessage))
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (pg_gate_passthrough(a->session, PG_KIND_MESSAGE_DECRYPT))
		return pg_call_C_DecryptMessage(pg_ctx_lower(), a);
	if (a->aad_len > 0)
		return CKR_ARGUMENTS_BAD;
	own.aad = NULL;
	return pg_gate_output(PG_KIND_MESSAGE_DECRYPT, PG_OUT_WHOLE, pg_io_C_DecryptMessage(&own));
}

CK_RV
pg_gate_C_DecryptMessageBegin(const pg_args_C_DecryptMessageBegin *a)
{
	if (!HAS(C_DecryptMessageBegin))
		return CKR_FUNCTION_NOT_SUPPORTED;
	return message_begun(pg_call_C_DecryptMessageBegin(pg_ctx_lower(), a), a->session,
	                     PG_KIND_MESSAGE_DECRYPT);
}

/* Every part yields plaintext: the first is judged, the last recorded. */
CK_RV
pg_gate_C_DecryptMessageNext(const pg_args_C_DecryptMessageNext *a)
{
	if (!HAS(C_DecryptMessageNext))
		return CKR_FUNCTION_NOT_SUPPORTED;
	return pg_gate_output(PG_KIND_MESSAGE_DECRYPT,
	                      (a->flags & CKF_END_OF_MESSAGE) ? PG_OUT_FINAL : PG_OUT_PART,
	                      pg_io_C_DecryptMessageNext(a));
}

CK_RV
pg_gate_C_MessageDecryptFinal(const pg_args_C_MessageDecryptFinal *a)
{
	if (!HAS(C_MessageDecryptFinal))
		return CKR_FUNCTION_NOT_SUPPORTED;
	return message_op_ended(pg_call_C_MessageDecryptFinal(pg_ctx_lower(), a), a->session,
	                        PG_KIND_MESSAGE_DECRYPT);
}

CK_RV
pg_gate_C_SessionCancel(const pg_args_C_SessionCancel *a)
{
	CK_RV rv;

	if (!HAS(C_SessionCancel))
		return CKR_FUNCTION_NOT_SUPPORTED;
	rv = pg_call_C_SessionCancel(pg_ctx_lower(), a);
	if (rv == CKR_OK)
		pg_gate_forget(a->session, a->flags);
	return rv;
}
