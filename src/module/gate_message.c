/* SPDX-License-Identifier: Apache-2.0
 *
 * The PKCS#11 3.0 message-based calls that use a private key.  One
 * judged init may sign many messages: each message is judged and recorded
 * on its own, like a single-part signature.  A 2.40 module (SoftHSM2 2.6)
 * has none of these; they then answer CKR_FUNCTION_NOT_SUPPORTED.
 */
#include "gate.h"

struct message_args {
	CK_VOID_PTR param;
	CK_ULONG param_len;
	CK_FLAGS flags;
};

CK_RV
pg_hook_C_MessageSignInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();

	return pg_gate_init(PG_KIND_MESSAGE_SIGN, PG_OP_SIGN, false,
	                   lower ? lower->C_MessageSignInit : NULL, session, mechanism, key);
}

CK_RV
pg_hook_C_MessageDecryptInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();

	return pg_gate_init(PG_KIND_MESSAGE_DECRYPT, PG_OP_DECRYPT, true,
	                   lower ? lower->C_MessageDecryptInit : NULL, session, mechanism, key);
}

static CK_RV
fwd_sign_message(const pg_function_list_3_0 *lower, const struct output_call *c, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	const struct message_args *m = c->args;

	return lower->C_SignMessage(c->session, m->param, m->param_len, (CK_BYTE_PTR)c->data,
	                            c->data_len, out, out_len);
}

CK_RV
pg_hook_C_SignMessage(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                      CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR signature,
                      CK_ULONG_PTR signature_len)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	const struct message_args m = { param, param_len, 0 };
	const struct output_call c = {
		.function = "C_SignMessage", .kind = PG_KIND_MESSAGE_SIGN, .session = session,
		.data = data, .data_len = data_len, .single_part = true, .final = true,
		.out = signature, .out_len = signature_len, .forward = fwd_sign_message, .args = &m,
	};

	if (lower != NULL && lower->C_SignMessage == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	return pg_gate_output(&c);
}

CK_RV
pg_hook_C_SignMessageBegin(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (lower->C_SignMessageBegin == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (!pg_gate_active(session, PG_KIND_MESSAGE_SIGN))
		return CKR_OPERATION_NOT_INITIALIZED;
	rv = lower->C_SignMessageBegin(session, param, param_len);
	if (rv == CKR_OK)
		pg_gate_begin_data(session, PG_KIND_MESSAGE_SIGN);
	return rv;
}

static CK_RV
fwd_sign_message_part(const pg_function_list_3_0 *lower, const void *args, const CK_BYTE *part)
{
	const struct output_call *c = args;
	const struct message_args *m = c->args;

	return lower->C_SignMessageNext(c->session, m->param, m->param_len, (CK_BYTE_PTR)part,
	                                c->data_len, NULL, NULL);
}

static CK_RV
fwd_sign_message_last(const pg_function_list_3_0 *lower, const struct output_call *c, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	const struct message_args *m = c->args;

	return lower->C_SignMessageNext(c->session, m->param, m->param_len, (CK_BYTE_PTR)c->data,
	                                c->data_len, out, out_len);
}

/* A part with no signature length pointer is not the last one. */
CK_RV
pg_hook_C_SignMessageNext(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                          CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR signature,
                          CK_ULONG_PTR signature_len)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	const struct message_args m = { param, param_len, 0 };
	const struct output_call c = {
		.function = "C_SignMessageNext", .kind = PG_KIND_MESSAGE_SIGN, .session = session,
		.data = data, .data_len = data_len, .final = true,
		.out = signature, .out_len = signature_len, .forward = fwd_sign_message_last, .args = &m,
	};

	if (lower != NULL && lower->C_SignMessageNext == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (signature_len == NULL)
		return pg_gate_feed("C_SignMessageNext", PG_KIND_MESSAGE_SIGN, session, data, data_len,
		                    fwd_sign_message_part, &c);
	return pg_gate_output(&c);
}

/* Ends the message-signing operation itself. */
static CK_RV
end_message_op(CK_SESSION_HANDLE session, enum pg_op_kind kind, CK_FLAGS flag,
               CK_RV (*lower_final)(CK_SESSION_HANDLE))
{
	CK_RV rv;

	if (pg_ctx_lower() == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (lower_final == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (kind == PG_KIND_MESSAGE_SIGN && !pg_gate_active(session, kind))
		return CKR_OPERATION_NOT_INITIALIZED;
	rv = lower_final(session);
	pg_gate_forget(session, flag);
	return rv;
}

CK_RV
pg_hook_C_MessageSignFinal(CK_SESSION_HANDLE session)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();

	return end_message_op(session, PG_KIND_MESSAGE_SIGN, CKF_MESSAGE_SIGN,
	                      lower ? lower->C_MessageSignFinal : NULL);
}

static CK_RV
fwd_decrypt_message(const pg_function_list_3_0 *lower, const struct output_call *c, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	const struct message_args *m = c->args;

	return lower->C_DecryptMessage(c->session, m->param, m->param_len, NULL, 0,
	                               (CK_BYTE_PTR)c->data, c->data_len, out, out_len);
}

CK_RV
pg_hook_C_DecryptMessage(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                         CK_BYTE_PTR aad, CK_ULONG aad_len, CK_BYTE_PTR cipher, CK_ULONG cipher_len,
                         CK_BYTE_PTR plain, CK_ULONG_PTR plain_len)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	const struct message_args m = { param, param_len, 0 };
	const struct output_call c = {
		.function = "C_DecryptMessage", .kind = PG_KIND_MESSAGE_DECRYPT, .session = session,
		.data = cipher, .data_len = cipher_len, .single_part = true, .final = true,
		.out = plain, .out_len = plain_len, .forward = fwd_decrypt_message, .args = &m,
	};

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (lower->C_DecryptMessage == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (pg_gate_passthrough(session, PG_KIND_MESSAGE_DECRYPT))
		return lower->C_DecryptMessage(session, param, param_len, aad, aad_len, cipher,
		                               cipher_len, plain, plain_len);
	/* Private-key message decryption carries no associated data. */
	if (aad_len > 0)
		return CKR_ARGUMENTS_BAD;
	return pg_gate_output(&c);
}

CK_RV
pg_hook_C_DecryptMessageBegin(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                              CK_BYTE_PTR aad, CK_ULONG aad_len)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (lower->C_DecryptMessageBegin == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	rv = lower->C_DecryptMessageBegin(session, param, param_len, aad, aad_len);
	if (rv == CKR_OK)
		pg_gate_begin_data(session, PG_KIND_MESSAGE_DECRYPT);
	return rv;
}

static CK_RV
fwd_decrypt_message_next(const pg_function_list_3_0 *lower, const struct output_call *c, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	const struct message_args *m = c->args;

	return lower->C_DecryptMessageNext(c->session, m->param, m->param_len, (CK_BYTE_PTR)c->data,
	                                   c->data_len, out, out_len, m->flags);
}

/* Every part yields plaintext: the first is judged, the last recorded. */
CK_RV
pg_hook_C_DecryptMessageNext(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                             CK_BYTE_PTR cipher, CK_ULONG cipher_len, CK_BYTE_PTR plain,
                             CK_ULONG_PTR plain_len, CK_FLAGS flags)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	const struct message_args m = { param, param_len, flags };
	const struct output_call c = {
		.function = "C_DecryptMessageNext", .kind = PG_KIND_MESSAGE_DECRYPT, .session = session,
		.data = cipher, .data_len = cipher_len, .final = (flags & CKF_END_OF_MESSAGE) != 0,
		.out = plain, .out_len = plain_len, .forward = fwd_decrypt_message_next, .args = &m,
	};

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (lower->C_DecryptMessageNext == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	return pg_gate_output(&c);
}

CK_RV
pg_hook_C_MessageDecryptFinal(CK_SESSION_HANDLE session)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();

	return end_message_op(session, PG_KIND_MESSAGE_DECRYPT, CKF_MESSAGE_DECRYPT,
	                      lower ? lower->C_MessageDecryptFinal : NULL);
}

CK_RV
pg_hook_C_SessionCancel(CK_SESSION_HANDLE session, CK_FLAGS flags)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (lower->C_SessionCancel == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	rv = lower->C_SessionCancel(session, flags);
	if (rv == CKR_OK)
		pg_gate_forget(session, flags);
	return rv;
}
