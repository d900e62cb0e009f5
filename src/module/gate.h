/* SPDX-License-Identifier: Apache-2.0
 *
 * The machinery the judged entry points share: starting a judged
 * operation, feeding it data, and the call that produces its output.
 */
#ifndef P11GATE_GATE_H
#define P11GATE_GATE_H

#include "judge.h"
#include "calls.h"
#include "session.h"

#ifndef CKF_MESSAGE_DECRYPT
#define CKF_MESSAGE_DECRYPT 0x4UL
#define CKF_MESSAGE_SIGN    0x8UL
#endif

/* The caller's mechanism, copied before it is judged: another thread of
 * the caller must not change what the token is asked for after p11gate
 * judged it.  The parameter's bytes are copied too (pointers inside them
 * are not).  The copy must not move: m.pParameter may point into it. */
struct pg_mechanism_copy {
	CK_MECHANISM m;
	unsigned char inline_param[256];
	void *heap;
};

CK_RV pg_mechanism_copy_init(struct pg_mechanism_copy *copy, const CK_MECHANISM *mechanism);
void pg_mechanism_copy_release(struct pg_mechanism_copy *copy);

/* The operation a decryption or unwrapping with this key is judged as: a
 * private key's transformation that checks no padding (CKM_RSA_X_509, a
 * vendor mechanism) returns what the caller chose raised to the private
 * exponent, a signature: judged as sign.  Else op, unchanged. */
enum pg_op pg_gate_private_op(enum pg_op op, const struct pg_keyinfo *key, CK_MECHANISM_TYPE mechanism);

/* A use p11gate does not follow call by call (any use of a secret or
 * public key but signing, verification, encryption with any key):
 * judged at its init when the key is private or the policy names it, the
 * allow record written before the init is forwarded (with mechanism, the
 * caller's copied) and the init's result after.  A key neither private
 * nor named is forwarded unjudged.  call names the function, operation,
 * mechanism and key; record_allow is set here. */
CK_RV pg_gate_use_at_init(struct pg_judge_call *call, const struct pg_init_call *init,
                          CK_MECHANISM_PTR mechanism);

/* Judges the key's use, then lets the token start the operation and
 * remembers it.  private_only: the operation is followed call by call
 * only with a private key; with another key it is judged at the init
 * (pg_gate_use_at_init) and then forwarded. */
CK_RV pg_gate_init(enum pg_op_kind kind, enum pg_op what, bool private_only,
                   const struct pg_init_call *init);

/* Where a call that returns output stands in its operation. */
enum pg_output_end {
	PG_OUT_PART,        /* output before the end (a decryption's part) */
	PG_OUT_FINAL,       /* ends it: the data came in parts before (and in this call) */
	PG_OUT_WHOLE,       /* ends it, and its data is the whole input (C_Sign) */
};

/* The call that returns output: judged again, recorded before the token
 * acts, the result recorded before the output is returned. */
CK_RV pg_gate_output(enum pg_op_kind kind, enum pg_output_end end, struct pg_io io);

/* An update that only feeds data in: copied, hashed, and the copy
 * forwarded (io's output, if any, is the caller's). */
CK_RV pg_gate_feed(enum pg_op_kind kind, struct pg_io io);

/* The token started an operation p11gate judged at its init: remembered
 * as STARTED.  CKR_HOST_MEMORY if it cannot be followed (then it is
 * cancelled in the token where the token can, and forgotten). */
CK_RV pg_gate_op_start(struct pg_session *session, enum pg_op_kind kind, enum pg_op what,
                       CK_MECHANISM_TYPE mechanism, const struct pg_keyinfo *key);
/* A decryption with a key that is not private: forwarded unjudged since. */
void pg_gate_op_passthrough(struct pg_session_op *op);

/* Whether p11gate judged and started this kind of operation on the session. */
bool pg_gate_active(CK_SESSION_HANDLE handle, enum pg_op_kind kind);

/* Whether the session runs a decryption of this kind with a key that is
 * not private (judged at its init, if named; forwarded since). */
bool pg_gate_passthrough(CK_SESSION_HANDLE handle, enum pg_op_kind kind);

/* Starts a new message (3.0) or a new output on a running operation. */
void pg_gate_begin_data(CK_SESSION_HANDLE handle, enum pg_op_kind kind);

/* Forgets operations after a successful cancel (flags as C_SessionCancel's). */
void pg_gate_forget(CK_SESSION_HANDLE handle, CK_FLAGS flags);
void pg_gate_forget_kind(CK_SESSION_HANDLE handle, enum pg_op_kind kind);

/* ---- lacking.c: functions the wrapped module lists but lacks ---------- */

/* Whether the module lacks this function (absent from its table, or
 * answering CKR_FUNCTION_NOT_SUPPORTED when asked once on a session of
 * p11gate's own); false while that cannot be known. */
bool pg_lower_lacks(const pg_function_list_3_0 *lower, enum pg_probe which, CK_SESSION_HANDLE session);
/* Such a module's answer: its code for a bad session handle, else
 * CKR_FUNCTION_NOT_SUPPORTED. */
CK_RV pg_lower_unsupported(const pg_function_list_3_0 *lower, CK_SESSION_HANDLE session);
/* CKR_OK if the wrapped module has the function (or it cannot be known
 * yet), else its answer (pg_lower_unsupported). */
CK_RV pg_lower_check(enum pg_probe which, CK_SESSION_HANDLE session);

#endif /* P11GATE_GATE_H */
