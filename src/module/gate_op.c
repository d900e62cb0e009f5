/* SPDX-License-Identifier: Apache-2.0
 *
 * A judged sign or decrypt operation after its init: the state machine of
 * struct pg_session_op (session.h; the diagram is in docs/design.md, "The
 * life of a judged operation").  Updates feed it data (pg_gate_feed); the
 * call that returns output is one transaction (struct output_txn) taken
 * through named steps by pg_gate_output: find the operation, check the
 * call's place in the sequence, copy the caller's data in, classify the
 * call (new output, retry, next part), judge it (or judge the retry
 * again), refuse and cancel, forward, record the result, release the
 * output.  Nothing leaves before the allow record is durable.
 */
#include "gate.h"
#include "p11gate/common.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

/* Large enough for any signature or RSA block a token returns. */
#define SCRATCH_LEN 16384
/* Outputs up to this size are taken from the token on the stack; larger
 * ones (never a signature) on the heap, up to OUT_MAX. */
#define OUT_ON_STACK 4096
#define OUT_MAX (1024 * 1024)
#define DATA_ON_STACK 1024

static const CK_FLAGS kind_cancel_flag[PG_KIND_COUNT] = {
	[PG_KIND_SIGN] = CKF_SIGN,
	[PG_KIND_SIGN_RECOVER] = CKF_SIGN_RECOVER,
	[PG_KIND_DECRYPT] = CKF_DECRYPT,
	[PG_KIND_MESSAGE_SIGN] = CKF_MESSAGE_SIGN,
	[PG_KIND_MESSAGE_DECRYPT] = CKF_MESSAGE_DECRYPT,
};

/* The state a call of this end leaves when it is to be retried. */
static const enum pg_op_state retry_state[] = {
	[PG_OUT_PART] = PG_OP_RETRY_PART,
	[PG_OUT_FINAL] = PG_OP_RETRY_FINAL,
	[PG_OUT_WHOLE] = PG_OP_RETRY_WHOLE,
};

static bool
is_message_kind(enum pg_op_kind kind)
{
	return kind == PG_KIND_MESSAGE_SIGN || kind == PG_KIND_MESSAGE_DECRYPT;
}

/* Whether an allow record names the operation's data: no more may come. */
static bool
is_allowed(enum pg_op_state state)
{
	return state == PG_OP_DECRYPTING || state == PG_OP_RETRY_PART || state == PG_OP_RETRY_FINAL ||
	       state == PG_OP_RETRY_WHOLE;
}

/* The operation's record fields: its key, mechanism and data so far. */
static struct pg_judge_call
op_call(const struct pg_session_op *op, const char *function)
{
	return (struct pg_judge_call){
		.function = function,
		.op = op->op,
		.has_mechanism = true,
		.mechanism = op->mechanism,
		.key = &op->key,
		.record_allow = true,
		.data_sha256 = op->data_sha256,
		.data = op->data_len > 0 ? op->data : NULL,
		.data_len = op->data_len,
	};
}

/* STARTED: a new message (or, after a retry with other data, a new
 * signature) is hashed afresh.  false: the hash cannot start, and the
 * operation is forgotten (nothing is forwarded on it since). */
static bool
begin_data(struct pg_session_op *op)
{
	op->state = PG_OP_STARTED;
	op->data_len = 0;
	if (EVP_DigestInit_ex(op->md, pg_sha256_md(), NULL) == 1)
		return true;
	pg_session_op_reset(op);
	return false;
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
	call = op_call(op, function);
	call.record_allow = false;
	call.data_sha256 = NULL;
	call.data = NULL;
	call.data_len = 0;
	rv = pg_judge_forbid(regime, &call, reason);
	pg_regime_unref(regime);
	return rv;
}

/* ---- starting, asking, forgetting -------------------------------------------- */

void
pg_gate_op_passthrough(struct pg_session_op *op)
{
	pg_session_op_reset(op);
	op->state = PG_OP_PASSTHROUGH;
}

CK_RV
pg_gate_op_start(struct pg_session *session, enum pg_op_kind kind, enum pg_op what,
                 CK_MECHANISM_TYPE mechanism, const struct pg_keyinfo *key)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct pg_session_op *op = &session->ops[kind];

	pg_session_op_reset(op);
	op->md = EVP_MD_CTX_new();
	if (op->md == NULL || !begin_data(op)) {
		/* Cannot hash what is signed: do not let it run unrecorded.  (If
		 * the token cannot cancel, the operation it keeps is refused:
		 * p11gate forwards no call on an operation it does not track.) */
		pg_session_op_reset(op);
		if (lower != NULL && lower->C_SessionCancel != NULL)
			lower->C_SessionCancel(session->handle, kind_cancel_flag[kind]);
		return CKR_HOST_MEMORY;
	}
	op->op = what;
	op->mechanism = mechanism;
	pg_keyinfo_copy(&op->key, key);
	return CKR_OK;
}

static enum pg_op_state
state_of(CK_SESSION_HANDLE handle, enum pg_op_kind kind)
{
	struct pg_session *session = pg_ctx_session(handle, false);
	enum pg_op_state state = session != NULL ? session->ops[kind].state : PG_OP_IDLE;

	pg_ctx_session_put(session);
	return state;
}

bool
pg_gate_active(CK_SESSION_HANDLE handle, enum pg_op_kind kind)
{
	enum pg_op_state state = state_of(handle, kind);

	return state != PG_OP_IDLE && state != PG_OP_PASSTHROUGH;
}

bool
pg_gate_passthrough(CK_SESSION_HANDLE handle, enum pg_op_kind kind)
{
	return state_of(handle, kind) == PG_OP_PASSTHROUGH;
}

void
pg_gate_begin_data(CK_SESSION_HANDLE handle, enum pg_op_kind kind)
{
	struct pg_session *session = pg_ctx_session(handle, false);

	if (session != NULL && session->ops[kind].state != PG_OP_IDLE &&
	    session->ops[kind].state != PG_OP_PASSTHROUGH)
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

void
pg_gate_forget_kind(CK_SESSION_HANDLE handle, enum pg_op_kind kind)
{
	pg_gate_forget(handle, kind_cancel_flag[kind]);
}

/* ---- updates ------------------------------------------------------------------ */

CK_RV
pg_gate_feed(enum pg_op_kind kind, struct pg_io io)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct pg_session *session;
	struct pg_session_op *op;
	CK_BYTE stack[DATA_ON_STACK];
	const CK_BYTE *copy;
	void *heap = NULL;
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (io.data == NULL && io.data_len > 0)
		return CKR_ARGUMENTS_BAD;
	session = pg_ctx_session(io.session, false);
	op = session != NULL ? &session->ops[kind] : NULL;
	if (op == NULL || op->state == PG_OP_IDLE || op->state == PG_OP_PASSTHROUGH) {
		rv = no_operation(lower, io.session);
		goto out;
	}
	if (is_allowed(op->state)) {
		rv = refuse_out_of_order(op, io.function, "after CKR_BUFFER_TOO_SMALL a signature takes "
		                         "no more data: repeat the final call with a larger buffer");
		goto out;
	}
	copy = copy_in(io.data, io.data_len, stack, sizeof stack, &heap);
	if (copy == NULL || (io.data_len > 0 && EVP_DigestUpdate(op->md, copy, io.data_len) != 1)) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	io.data = copy;
	io.out = NULL;          /* a part of a message's signature returns none */
	io.out_len = NULL;
	rv = io.forward(lower, io.args, &io);
	if (rv == CKR_OK)
		op->state = PG_OP_FEEDING;
	else
		pg_session_op_reset(op);   /* an error ends the operation */
out:
	free(heap);
	pg_ctx_session_put(session);
	return rv;
}

/* ---- the call that returns output: one transaction ------------------------------ */

/* One call that returns output, from the caller's arguments to the bytes
 * it gets back.  It holds the session (locked), the regime once needed,
 * and the copies; output_release releases them all. */
struct output_txn {
	enum pg_op_kind kind;
	enum pg_output_end end;
	struct pg_io given;             /* as the application passed it */
	struct pg_io own;               /* p11gate's copies: hashed, judged, forwarded */
	const pg_function_list_3_0 *lower;
	struct pg_session *session;
	struct pg_session_op *op;
	struct pg_regime *regime;       /* NULL until a step needs it */
	CK_ULONG out_len, out_cap;
	void *data_heap, *out_heap;
	CK_BYTE data_stack[DATA_ON_STACK];
	CK_BYTE out_stack[OUT_ON_STACK];
};

/* What the call is, once its place in the sequence is checked. */
enum output_class {
	OUTPUT_NEW,             /* the operation's (or message's) first output: judged */
	OUTPUT_RETRY,           /* the same call again after CKR_BUFFER_TOO_SMALL (or a
	                           decryption's final): judged again, recorded if refused */
	OUTPUT_NEXT_PART,       /* a decryption's next part (or a part's retry): allowed
	                           with the first */
};

static bool
single_part(const struct output_txn *t)
{
	return t->end == PG_OUT_WHOLE;
}

static bool
ends(const struct output_txn *t)
{
	return t->end != PG_OUT_PART;
}

static CK_RV
need_regime(struct output_txn *t)
{
	if (t->regime == NULL)
		t->regime = pg_ctx_regime();
	return t->regime != NULL ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED;
}

/* Step 1: the session's operation of this kind, held for the call. */
static CK_RV
output_find(struct output_txn *t, enum pg_op_kind kind, enum pg_output_end end, const struct pg_io *io)
{
	memset(t, 0, offsetof(struct output_txn, data_stack));
	t->kind = kind;
	t->end = end;
	t->given = *io;
	t->own = *io;
	t->lower = pg_ctx_lower();
	if (t->lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	t->session = pg_ctx_session(io->session, false);
	t->op = t->session != NULL ? &t->session->ops[kind] : NULL;
	if (t->op == NULL || t->op->state == PG_OP_IDLE)
		return no_operation(t->lower, io->session);
	return CKR_OK;
}

/* Step 2: whether the call may come now.  An allow record names the data
 * given so far, so until its retry nothing may change it (docs/design.md,
 * step 4). */
static CK_RV
output_check_sequence(const struct output_txn *t)
{
	static const char multi_part[] = "a single-part call cannot end a multi-part operation: "
	                                 "end it with its final call";
	static const char same_call[] = "after CKR_BUFFER_TOO_SMALL only the same call may follow: "
	                                "repeat it with a larger buffer";

	if (t->given.out_len == NULL || (t->given.data == NULL && t->given.data_len > 0))
		return CKR_ARGUMENTS_BAD;
	switch (t->op->state) {
	case PG_OP_FEEDING:
	case PG_OP_DECRYPTING:
		return single_part(t) ? refuse_out_of_order(t->op, t->given.function, multi_part) : CKR_OK;
	case PG_OP_RETRY_PART:
	case PG_OP_RETRY_FINAL:
	case PG_OP_RETRY_WHOLE:
		if (retry_state[t->end] != t->op->state)
			return refuse_out_of_order(t->op, t->given.function, same_call);
		return CKR_OK;
	default:
		return CKR_OK;
	}
}

/* Step 3: the caller's data into p11gate's memory, and room for the
 * token's output there (none for a decryption part's length query). */
static CK_RV
output_copy_in(struct output_txn *t)
{
	t->own.data = copy_in(t->given.data, t->given.data_len, t->data_stack, sizeof t->data_stack,
	                      &t->data_heap);
	t->out_cap = *t->given.out_len < OUT_MAX ? *t->given.out_len : OUT_MAX;
	if (t->given.out == NULL)
		t->own.out = NULL;
	else if (t->out_cap > sizeof t->out_stack)
		t->own.out = t->out_heap = malloc(t->out_cap);
	else
		t->own.out = t->out_stack;
	if (t->own.data == NULL || (t->given.out != NULL && t->own.out == NULL))
		return CKR_HOST_MEMORY;
	t->out_len = t->out_cap;
	t->own.out_len = &t->out_len;
	return CKR_OK;
}

/* Whether the call (p11gate's copy) carries the data of the call it
 * retries. */
static bool
same_data(const struct output_txn *t)
{
	unsigned char sha256[32];

	return pg_sha256(t->own.data_len > 0 ? t->own.data : sha256, t->own.data_len, sha256) &&
	       memcmp(sha256, t->op->retry_sha256, sizeof sha256) == 0;
}

/* Step 4: what the call is.  A retry carries the data of the call it
 * retries, since the allow record names that: other data is refused, or,
 * for a single-part call, is another signature and starts afresh. */
static CK_RV
output_classify(struct output_txn *t, enum output_class *class)
{
	*class = OUTPUT_NEW;
	switch (t->op->state) {
	case PG_OP_DECRYPTING:
		*class = ends(t) ? OUTPUT_RETRY : OUTPUT_NEXT_PART;
		return CKR_OK;
	case PG_OP_RETRY_PART:
	case PG_OP_RETRY_FINAL:
		if (!same_data(t))
			return refuse_out_of_order(t->op, t->given.function, "after CKR_BUFFER_TOO_SMALL only "
			                           "the same data may follow: repeat the call with a larger buffer");
		*class = t->op->state == PG_OP_RETRY_PART ? OUTPUT_NEXT_PART : OUTPUT_RETRY;
		return CKR_OK;
	case PG_OP_RETRY_WHOLE:
		if (same_data(t))
			*class = OUTPUT_RETRY;
		else if (!begin_data(t->op))
			return CKR_HOST_MEMORY;
		return CKR_OK;
	default:
		return CKR_OK;
	}
}

/* A refused output: the token's operation must not stay usable.  3.0
 * modules cancel it; 2.40 has no cancel, so it is run to its end into a
 * scratch buffer that is wiped and never returned (every call that ends an
 * operation terminates it, per the spec).  A decryption refused at a part
 * is ended by both final forms: SoftHSM2 keeps an RSA decryption open
 * after a C_DecryptUpdate.  (Should all fail, the operation stays open in
 * the token but p11gate forwards no call on it.) */
static void
cancel(const struct output_txn *t)
{
	const pg_function_list_3_0 *lower = t->lower;
	CK_BYTE scratch[SCRATCH_LEN];
	CK_ULONG len = sizeof scratch;
	struct pg_io io = t->own;

	if (!is_message_kind(t->kind) && lower->C_SessionCancel != NULL &&
	    lower->C_SessionCancel(t->given.session, kind_cancel_flag[t->kind]) == CKR_OK)
		return;
	io.out = scratch;
	io.out_len = &len;
	if (ends(t) || !is_message_kind(t->kind))
		io.forward(lower, io.args, &io);
	if (t->kind == PG_KIND_DECRYPT && !ends(t)) {
		len = sizeof scratch;
		lower->C_DecryptFinal(t->given.session, scratch, &len);
		len = sizeof scratch;
		lower->C_Decrypt(t->given.session, (CK_BYTE_PTR)t->own.data, t->own.data_len, scratch, &len);
	}
	OPENSSL_cleanse(scratch, sizeof scratch);
}

/* After the output (or a refusal): a message ends, and the next is judged
 * afresh; any other operation ends. */
static void
finish(struct output_txn *t)
{
	if (!is_message_kind(t->kind) || !begin_data(t->op))
		pg_session_op_reset(t->op);
}

/* Step 5b: refused (the judging step recorded it): the token's
 * operation cancelled, p11gate's forgotten (or the message ended). */
static CK_RV
output_refuse_and_cancel(struct output_txn *t, CK_RV rv)
{
	cancel(t);
	finish(t);
	return rv;
}

/* Step 5: a new output is judged on the SHA-256 of all the data the
 * operation took (the parts hashed as they passed, and this call's), and
 * the allow record written before the token acts.  A single-part call's
 * data of 64 bytes or fewer (a digest) is kept for the record. */
static CK_RV
output_judge_new(struct output_txn *t)
{
	struct pg_session_op *op = t->op;
	struct pg_judge_call call;
	unsigned int n;
	CK_RV rv;

	if (t->own.data_len > 0 && EVP_DigestUpdate(op->md, t->own.data, t->own.data_len) != 1)
		return CKR_HOST_MEMORY;
	if (EVP_DigestFinal_ex(op->md, op->data_sha256, &n) != 1)
		return CKR_HOST_MEMORY;
	if (single_part(t) && t->own.data_len <= sizeof op->data) {
		memcpy(op->data, t->own.data, t->own.data_len);
		op->data_len = t->own.data_len;
	}
	rv = need_regime(t);
	if (rv != CKR_OK)
		return rv;
	call = op_call(op, t->given.function);
	rv = pg_judge(t->regime, &call, &op->decision_seq);
	return rv == CKR_OK ? CKR_OK : output_refuse_and_cancel(t, rv);
}

/* Step 5, for a retry: judged again with the data its allow record names,
 * since the policy may have changed; only a refusal is recorded. */
static CK_RV
output_rejudge_retry(struct output_txn *t)
{
	struct pg_judge_call call;
	struct pg_verdict verdict;
	CK_RV rv = need_regime(t);

	if (rv != CKR_OK)
		return rv;
	call = op_call(t->op, t->given.function);
	pg_judge_decide(t->regime, &call, &verdict);
	if (verdict.decision.allow) {
		pg_verdict_release(&verdict);
		return CKR_OK;
	}
	rv = pg_judge_record(t->regime, &call, &verdict, NULL);
	pg_verdict_release(&verdict);
	return output_refuse_and_cancel(t, rv);
}

/* Step 6: the token, on p11gate's copies.  CKR_BUFFER_TOO_SMALL (or a
 * part's length query) keeps the operation and its allow record: the
 * caller retries the call, with the same data.  A part that returned
 * plaintext leaves the decryption going. */
static CK_RV
output_forward(struct output_txn *t)
{
	CK_RV rv = t->own.forward(t->lower, t->own.args, &t->own);
	struct pg_session_op *op = t->op;

	if (rv == CKR_BUFFER_TOO_SMALL)
		*t->given.out_len = t->out_len;
	if (rv == CKR_BUFFER_TOO_SMALL || (!ends(t) && rv == CKR_OK && t->own.out == NULL)) {
		op->state = retry_state[t->end];
		if (!pg_sha256(t->own.data_len > 0 ? t->own.data : op->retry_sha256, t->own.data_len,
		               op->retry_sha256))
			memset(op->retry_sha256, 0, sizeof op->retry_sha256);   /* matches no data */
	} else if (!ends(t) && rv == CKR_OK) {
		op->state = PG_OP_DECRYPTING;
	}
	return rv;
}

/* Step 7: the token's answer recorded.  The call that ends the operation
 * (or message), or a part the token failed, which ends it too: the allow
 * record made durable and the result record appended (pg_judge_result;
 * so a padding oracle's answers are in the log part by part), and the
 * operation (or message) ended.  A part that returned plaintext: the
 * allow record made durable, so that no plaintext leaves before it is on
 * disk (docs/design.md, step 3). */
static CK_RV
output_record_result(struct output_txn *t, CK_RV rv)
{
	struct pg_judge_call call;
	CK_RV regime_rv = need_regime(t);

	if (regime_rv != CKR_OK)
		return regime_rv;
	call = op_call(t->op, t->given.function);
	if (!ends(t) && rv == CKR_OK) {
		rv = pg_judge_durable(t->regime, &call, t->op->decision_seq);
		if (rv != CKR_OK)
			finish(t);
		return rv;
	}
	rv = pg_judge_result(t->regime, &call, t->op->decision_seq, rv, t->own.out,
	                     rv == CKR_OK ? t->out_len : 0);
	finish(t);
	return rv;
}

/* Step 8: the output leaves p11gate only once its records are written. */
static void
output_release_output(const struct output_txn *t, CK_RV rv)
{
	if (rv != CKR_OK)
		return;
	if (t->own.out != NULL)
		memcpy(t->given.out, t->own.out, t->out_len);
	*t->given.out_len = t->out_len;
}

/* What the transaction holds: the output wiped, copies freed, the session
 * and the regime let go. */
static void
output_release(struct output_txn *t)
{
	if (t->own.out != NULL && t->own.out != t->given.out)
		OPENSSL_cleanse(t->own.out, t->out_cap);
	free(t->out_heap);
	free(t->data_heap);
	pg_ctx_session_put(t->session);
	pg_regime_unref(t->regime);
}

/* The forms that need no judgement: an operation that is not p11gate's to
 * follow (a secret key's decryption) goes to the token as given; a length
 * query of the final output returns no output and the operation goes on.
 * false: the call is not one of them. */
static bool
output_unjudged(struct output_txn *t, CK_RV *rv)
{
	if (t->op->state == PG_OP_PASSTHROUGH) {
		*rv = t->given.forward(t->lower, t->given.args, &t->given);
		return true;
	}
	if (!ends(t) || t->given.out != NULL)
		return false;
	*rv = t->given.forward(t->lower, t->given.args, &t->given);
	if (*rv != CKR_OK)
		pg_session_op_reset(t->op);
	return true;
}

CK_RV
pg_gate_output(enum pg_op_kind kind, enum pg_output_end end, struct pg_io io)
{
	struct output_txn t;
	enum output_class class;
	CK_RV rv;

	rv = output_find(&t, kind, end, &io);
	if (rv != CKR_OK)
		goto out;
	if (t.op->state != PG_OP_PASSTHROUGH && (rv = output_check_sequence(&t)) != CKR_OK)
		goto out;
	if (output_unjudged(&t, &rv))
		goto out;
	rv = output_copy_in(&t);
	if (rv == CKR_OK)
		rv = output_classify(&t, &class);
	if (rv != CKR_OK)
		goto out;
	if (class == OUTPUT_NEW)
		rv = output_judge_new(&t);
	else if (class == OUTPUT_RETRY)
		rv = output_rejudge_retry(&t);
	if (rv != CKR_OK)
		goto out;
	rv = output_forward(&t);
	if (rv == CKR_BUFFER_TOO_SMALL)
		goto out;
	rv = output_record_result(&t, rv);
	output_release_output(&t, rv);
out:
	output_release(&t);
	return rv;
}
