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

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

/* Large enough for any signature or RSA block a token returns. */
#define SCRATCH_LEN 16384

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
	op->retry_pending = false;
	op->fed = false;
	op->data_len = 0;
	if (op->md != NULL)
		EVP_DigestInit_ex(op->md, pg_sha256_md(), NULL);
}

bool
pg_gate_active(CK_SESSION_HANDLE handle, enum pg_op_kind kind)
{
	struct pg_session *session = pg_ctx_session(handle, false);
	bool active = session != NULL && session->ops[kind].active && !session->ops[kind].passthrough;

	pg_ctx_session_put(session);
	return active;
}

bool
pg_gate_passthrough(CK_SESSION_HANDLE handle, enum pg_op_kind kind)
{
	struct pg_session *session = pg_ctx_session(handle, false);
	bool passthrough = session != NULL && session->ops[kind].active && session->ops[kind].passthrough;

	pg_ctx_session_put(session);
	return passthrough;
}

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

/* len bytes of the caller's at src, copied to stack (if they fit) or the
 * heap (*heap, to be freed): the copy is what is hashed, recorded and
 * given to the token, so another thread of the caller cannot make the
 * token sign other bytes than the log names.  NULL: out of memory. */
static const CK_BYTE *
copy_in(const CK_BYTE *src, CK_ULONG len, CK_BYTE *stack, size_t stack_len, void **heap)
{
	CK_BYTE *dst = stack;

	*heap = NULL;
	if (len > stack_len && (dst = *heap = malloc(len)) == NULL)
		return NULL;
	if (len > 0)
		memcpy(dst, src, len);
	return dst;
}

/* No operation p11gate started here: the token's answer for a bad session
 * handle, else CKR_OPERATION_NOT_INITIALIZED.  Never forwarded: an
 * operation p11gate refused or lost track of may still be open in the
 * token, and only a secret key's decryption is forwarded unjudged. */
static CK_RV
no_operation(const pg_function_list_3_0 *lower, CK_SESSION_HANDLE handle)
{
	CK_SESSION_INFO info;
	CK_RV rv = lower->C_GetSessionInfo(handle, &info);

	return rv != CKR_OK ? rv : CKR_OPERATION_NOT_INITIALIZED;
}

void
pg_gate_begin_data(CK_SESSION_HANDLE handle, enum pg_op_kind kind)
{
	struct pg_session *session = pg_ctx_session(handle, false);

	if (session != NULL && session->ops[kind].active)
		begin_data(&session->ops[kind]);
	pg_ctx_session_put(session);
}

void
pg_gate_forget(CK_SESSION_HANDLE handle, CK_FLAGS flags)
{
	struct pg_session *session = pg_ctx_session(handle, false);

	for (int k = 0; session != NULL && k < PG_KIND_COUNT; k++) {
		if (kind_cancel_flag[k] & flags)
			pg_session_op_reset(&session->ops[k]);
	}
	pg_ctx_session_put(session);
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

CK_RV
pg_gate_init(enum pg_op_kind kind, enum pg_op what, bool private_only, const struct pg_init_call *init)
{
	const pg_init_fn lower_init = init->lower_init;
	const CK_SESSION_HANDLE handle = init->session;
	const CK_OBJECT_HANDLE key = init->key;
	const CK_MECHANISM_PTR mechanism = init->mechanism;
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct pg_regime *regime = NULL;
	struct pg_mechanism_copy mech;
	struct pg_session *session = NULL;
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
		pg_ctx_session_put(session);
		return rv;
	}
	rv = pg_mechanism_copy_init(&mech, mechanism);
	if (rv != CKR_OK)
		return rv;
	/* A handle that names no object: the token's own answer when asked
	 * about it (SoftHSM2's *Init answers the same). */
	rv = pg_ctx_keyinfo(handle, key, &info);
	if (rv != CKR_OK)
		goto out;
	session = pg_ctx_session(handle, true);
	if (session == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	op = &session->ops[kind];
	what = pg_gate_private_op(what, &info, mech.m.mechanism);
	call = (struct pg_judge_call){
		.function = init->function, .op = what,
		.has_mechanism = true, .mechanism = mech.m.mechanism, .key = &info,
	};
	if (private_only && info.cls != CKO_PRIVATE_KEY) {
		/* A secret or public key's decryption is judged at its init
		 * (if named) and remembered, so that it alone is forwarded
		 * unjudged since. */
		rv = pg_gate_use_at_init(&call, init, &mech.m);
		if (rv == CKR_OK) {
			pg_session_op_reset(op);
			op->active = op->passthrough = true;
		}
		goto out;
	}

	regime = pg_ctx_regime();
	if (regime == NULL) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
		goto out;
	}
	rv = pg_judge(regime, &call, NULL);
	if (rv != CKR_OK)
		goto out;
	rv = lower_init(handle, &mech.m, key);
	if (rv != CKR_OK)
		goto out;          /* e.g. CKR_OPERATION_ACTIVE: the running one stays */
	pg_session_op_reset(op);
	op->md = EVP_MD_CTX_new();
	if (op->md == NULL || EVP_DigestInit_ex(op->md, pg_sha256_md(), NULL) != 1) {
		/* Cannot hash what is signed: do not let it run unrecorded.  (If
		 * the token cannot cancel, the operation it keeps is refused:
		 * p11gate forwards no call on an operation it does not track.) */
		pg_session_op_reset(op);
		if (lower->C_SessionCancel != NULL)
			lower->C_SessionCancel(handle, kind_cancel_flag[kind]);
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	op->active = true;
	op->op = what;
	op->mechanism = mech.m.mechanism;
	pg_keyinfo_copy(&op->key, &info);
out:
	pg_ctx_session_put(session);
	pg_mechanism_copy_release(&mech);
	pg_regime_unref(regime);
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

/* ---- the calls that produce output ------------------------------------------ */

static bool
is_message_kind(enum pg_op_kind kind)
{
	return kind == PG_KIND_MESSAGE_SIGN || kind == PG_KIND_MESSAGE_DECRYPT;
}

/* A refused operation must not stay usable in the token.  3.0 modules
 * cancel it; 2.40 has no cancel, so it is run to its end into a scratch
 * buffer that is wiped and never returned (every call that ends an
 * operation terminates it, per the spec).  A decryption refused at a part
 * is ended by both final forms: SoftHSM2 keeps an RSA decryption open
 * after a C_DecryptUpdate.  (Should all fail, the operation stays open in
 * the token but p11gate forwards no call on it.) */
/* One output-producing call, described so one path can judge them all. */
struct output_call {
	const char *function;
	enum pg_op_kind kind;
	CK_SESSION_HANDLE session;
	const CK_BYTE *data;          /* this call's data, hashed here */
	CK_ULONG data_len;
	bool single_part;             /* data is the whole input (else parts were hashed as they passed) */
	bool final;                   /* ends the operation (or, for messages, the message) */
	CK_BYTE_PTR out;              /* NULL: a length query */
	CK_ULONG_PTR out_len;
	struct pg_io io;              /* as the caller passed it */
};

/* Calls the token with c's data into out/out_len. */
static CK_RV
forward(const pg_function_list_3_0 *lower, const struct output_call *c, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	struct pg_io io = c->io;

	io.data = c->data;
	io.out = out;
	io.out_len = out_len;
	return io.forward(lower, io.args, &io);
}

static void
cancel(const pg_function_list_3_0 *lower, const struct output_call *c)
{
	CK_BYTE scratch[SCRATCH_LEN];
	CK_ULONG len = sizeof scratch;

	if (!is_message_kind(c->kind) && lower->C_SessionCancel != NULL &&
	    lower->C_SessionCancel(c->session, kind_cancel_flag[c->kind]) == CKR_OK)
		return;
	if (c->final || !is_message_kind(c->kind))
		forward(lower, c, scratch, &len);
	if (c->kind == PG_KIND_DECRYPT && !c->final) {
		len = sizeof scratch;
		lower->C_DecryptFinal(c->session, scratch, &len);
		len = sizeof scratch;
		lower->C_Decrypt(c->session, (CK_BYTE_PTR)c->data, c->data_len, scratch, &len);
	}
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

/* A call out of order on a judged operation: refused and recorded.
 * Nothing is forwarded, so the operation stays in the token as it was,
 * and its allow record (if any) still names what it will sign. */
static CK_RV
refuse_out_of_order(const struct pg_session_op *op, const char *function, const char *reason)
{
	struct pg_regime *regime = pg_ctx_regime();
	struct pg_judge_call call;
	CK_RV rv;

	if (regime == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	call = op_call(op, function, false);
	call.data_sha256 = NULL;
	call.data = NULL;
	call.data_len = 0;
	rv = pg_judge_forbid(regime, &call, reason);
	pg_regime_unref(regime);
	return rv;
}

/* Whether the call carries the data whose SHA-256 is sha256. */
static bool
same_data(const struct output_call *c, const unsigned char sha256[32])
{
	unsigned char again[32];

	return pg_sha256(c->data_len > 0 ? c->data : again, c->data_len, again) &&
	       memcmp(again, sha256, sizeof again) == 0;
}

/* Outputs up to this size are taken from the token on the stack; larger
 * ones (never a signature) on the heap, up to OUT_MAX. */
#define OUT_ON_STACK 4096
#define OUT_MAX (1024 * 1024)
#define DATA_ON_STACK 1024

static CK_RV
output(const struct output_call *caller)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct pg_regime *regime = NULL;
	struct pg_session *session = NULL;
	struct pg_session_op *op;
	struct pg_judge_call call;
	/* The call as the token sees it: data and output in p11gate's memory. */
	struct output_call own = *caller;
	const struct output_call *c = &own;
	CK_BYTE data_stack[DATA_ON_STACK], out_stack[OUT_ON_STACK], *out = out_stack;
	void *data_heap = NULL, *out_heap = NULL;
	CK_ULONG out_len = 0, out_cap = 0;
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	session = pg_ctx_session(c->session, false);
	op = session != NULL ? &session->ops[c->kind] : NULL;
	if (op == NULL || !op->active) {
		rv = no_operation(lower, c->session);
		goto out;
	}
	if (op->passthrough) {
		rv = forward(lower, c, c->out, c->out_len);
		goto out;
	}
	if (c->out_len == NULL || (c->data == NULL && c->data_len > 0)) {
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	if (c->single_part && op->fed) {
		rv = refuse_out_of_order(op, c->function, "a single-part call cannot end a multi-part "
		                         "operation: end it with its final call");
		goto out;
	}
	if (op->logged && c->final && c->single_part != op->logged_single_part) {
		rv = refuse_out_of_order(op, c->function, "after CKR_BUFFER_TOO_SMALL only the same "
		                         "call may follow: repeat it with a larger buffer");
		goto out;
	}
	if (c->final && c->out == NULL) {
		/* A length query: no output, the operation goes on. */
		rv = forward(lower, c, NULL, c->out_len);
		if (rv != CKR_OK)
			pg_session_op_reset(op);
		goto out;
	}
	own.data = copy_in(caller->data, c->data_len, data_stack, sizeof data_stack, &data_heap);
	out_cap = *caller->out_len < OUT_MAX ? *caller->out_len : OUT_MAX;
	if (caller->out == NULL)
		out = NULL;         /* a decryption part's length query, judged like the part */
	else if (out_cap > sizeof out_stack)
		out = out_heap = malloc(out_cap);
	if (own.data == NULL || (caller->out != NULL && out == NULL)) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	own.out = out;
	own.out_len = &out_len;
	out_len = out_cap;

	if (op->retry_pending && !c->single_part && !same_data(c, op->retry_sha256)) {
		/* The allow record names the data of the call being retried
		 * (a message's last part, a decryption's first): other data
		 * would be signed or decrypted under it. */
		rv = refuse_out_of_order(op, c->function, "after CKR_BUFFER_TOO_SMALL only the same "
		                         "data may follow: repeat the call with a larger buffer");
		goto out;
	}
	if (op->logged && c->final) {
		/* A retry after CKR_BUFFER_TOO_SMALL.  Other data is another
		 * signature: judged and recorded afresh.  The same data is
		 * judged again, since the policy may have changed; only a
		 * refusal is recorded. */
		unsigned char again[32];

		if (c->single_part && (!pg_sha256(c->data_len > 0 ? c->data : again, c->data_len, again) ||
		                       memcmp(again, op->data_sha256, sizeof again) != 0)) {
			begin_data(op);
		} else {
			struct pg_verdict verdict;

			regime = pg_ctx_regime();
			if (regime == NULL) {
				rv = CKR_CRYPTOKI_NOT_INITIALIZED;
				goto out;
			}
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
				rv = CKR_HOST_MEMORY;
				goto out;
			}
			EVP_MD_CTX_free(copy);
		} else {
			unsigned int n;
			if (EVP_DigestFinal_ex(op->md, op->data_sha256, &n) != 1) {
				rv = CKR_HOST_MEMORY;
				goto out;
			}
		}
		if (regime == NULL && (regime = pg_ctx_regime()) == NULL) {
			rv = CKR_CRYPTOKI_NOT_INITIALIZED;
			goto out;
		}
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

	rv = forward(lower, c, out, &out_len);
	op->retry_pending = rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && out == NULL);
	if (op->retry_pending && !pg_sha256(c->data_len > 0 ? c->data : op->retry_sha256, c->data_len,
	                                    op->retry_sha256))
		memset(op->retry_sha256, 0, sizeof op->retry_sha256);   /* matches no data: refused */
	if (rv == CKR_BUFFER_TOO_SMALL) {
		*caller->out_len = out_len;   /* the caller retries; the allow is already recorded */
		goto out;
	}
	if (!c->final && rv == CKR_OK) {
		if (out == NULL)
			*caller->out_len = out_len;
		goto release;
	}
	/* The call that ends the operation (or message), or a part the token
	 * failed, which ends it too: the token's answer closes the allow
	 * record (a padding oracle's answers are in the log part by part). */
	if (regime == NULL && (regime = pg_ctx_regime()) == NULL) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
		goto out;
	}
	call = op_call(op, c->function, true);
	rv = pg_judge_result(regime, &call, op->decision_seq, rv, out, rv == CKR_OK ? out_len : 0);
	finish(op, c);
release:
	/* The output leaves p11gate only once its result is recorded. */
	if (rv == CKR_OK && out != NULL) {
		memcpy(caller->out, out, out_len);
		*caller->out_len = out_len;
	}
out:
	if (out != NULL)
		OPENSSL_cleanse(out, out_cap);
	free(out_heap);
	free(data_heap);
	pg_ctx_session_put(session);
	pg_regime_unref(regime);
	return rv;
}

CK_RV
pg_gate_output(enum pg_op_kind kind, enum pg_output_end end, struct pg_io io)
{
	const struct output_call c = {
		.function = io.function, .kind = kind, .session = io.session,
		.data = io.data, .data_len = io.data_len,
		.single_part = end == PG_OUT_WHOLE, .final = end != PG_OUT_PART,
		.out = io.out, .out_len = io.out_len, .io = io,
	};

	return output(&c);
}

CK_RV
pg_gate_feed(enum pg_op_kind kind, struct pg_io io)
{
	const char *function = io.function;
	const CK_SESSION_HANDLE handle = io.session;
	const CK_BYTE *part = io.data;
	const CK_ULONG part_len = io.data_len;
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct pg_session *session;
	struct pg_session_op *op;
	CK_BYTE stack[DATA_ON_STACK];
	const CK_BYTE *copy;
	void *heap = NULL;
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (part == NULL && part_len > 0)
		return CKR_ARGUMENTS_BAD;
	session = pg_ctx_session(handle, false);
	op = session != NULL ? &session->ops[kind] : NULL;
	if (op == NULL || !op->active || op->passthrough) {
		rv = no_operation(lower, handle);
		goto out;
	}
	if (op->logged) {
		rv = refuse_out_of_order(op, function, "after CKR_BUFFER_TOO_SMALL a signature takes "
		                         "no more data: repeat the final call with a larger buffer");
		goto out;
	}
	copy = copy_in(part, part_len, stack, sizeof stack, &heap);
	if (copy == NULL || (part_len > 0 && EVP_DigestUpdate(op->md, copy, part_len) != 1)) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	io.data = copy;
	io.out = NULL;          /* a part of a message's signature returns none */
	io.out_len = NULL;
	rv = io.forward(lower, io.args, &io);
	if (rv == CKR_OK)
		op->fed = true;
	else
		pg_session_op_reset(op);   /* an error ends the operation */
out:
	free(heap);
	pg_ctx_session_put(session);
	return rv;
}

/* ---- signing ------------------------------------------------------------------ */

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
	return pg_gate_output(PG_KIND_SIGN, PG_OUT_LAST, pg_io_C_SignFinal(a));
}

CK_RV
pg_gate_C_SignRecover(const pg_args_C_SignRecover *a)
{
	CK_RV rv = pg_lower_check(PG_PROBE_SIGN_RECOVER, a->session);

	return rv != CKR_OK ? rv :
	       pg_gate_output(PG_KIND_SIGN_RECOVER, PG_OUT_WHOLE, pg_io_C_SignRecover(a));
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
	return pg_gate_output(PG_KIND_DECRYPT, PG_OUT_LAST, pg_io_C_DecryptFinal(a));
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
	CK_RV rv = pg_lower_check(PG_PROBE_DECRYPT_DIGEST, a->session);

	return rv != CKR_OK ? rv :
	       pg_gate_output(PG_KIND_DECRYPT, PG_OUT_PART, pg_io_C_DecryptDigestUpdate(a));
}

CK_RV
pg_gate_C_DecryptVerifyUpdate(const pg_args_C_DecryptVerifyUpdate *a)
{
	CK_RV rv = pg_lower_check(PG_PROBE_DECRYPT_VERIFY, a->session);

	return rv != CKR_OK ? rv :
	       pg_gate_output(PG_KIND_DECRYPT, PG_OUT_PART, pg_io_C_DecryptVerifyUpdate(a));
}
