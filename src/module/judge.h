/* SPDX-License-Identifier: Apache-2.0
 *
 * The decision point: every judged call asks here.  It matches the key,
 * asks the policy, writes the decision record before the token is called,
 * and tells a refused caller why on stderr.
 */
#ifndef P11GATE_JUDGE_H
#define P11GATE_JUDGE_H

#include "module.h"
#include "p11gate/keyinfo.h"

struct pg_judge_call {
	const char *function;                /* "C_SignInit" */
	enum pg_op op;
	bool has_mechanism;
	CK_MECHANISM_TYPE mechanism;
	const struct pg_keyinfo *key;
	/* The call that produces output: an allow is recorded (with the data's
	 * hash) and must be followed by pg_judge_result.  At an *Init only a
	 * refusal is recorded. */
	bool record_allow;
	const unsigned char *data_sha256;    /* 32 bytes, or NULL */
	const unsigned char *data;           /* kept whole up to PG_AUDIT_DATA_INLINE_MAX */
	size_t data_len;
};

/* A decision not yet recorded, and the login it was made for (a
 * reference: pg_verdict_release drops it). */
struct pg_verdict {
	struct pg_decision decision;
	struct pg_key_match match;
	bool fixed;                          /* refused whatever the policy says */
	/* A signature's key lifecycle (certificates, not_after, CKA_END_DATE):
	 * a refusal turns the decision into one; a warning is recorded. */
	struct pg_life_verdict life;
	struct pg_key_certs certs;     /* certs.n = 0 when not read */
	struct pg_login *login;
};

/* Drops what a verdict holds (after its record, or when it is not recorded). */
void pg_verdict_release(struct pg_verdict *verdict);

/* Asks the policy; records nothing. */
void pg_judge_decide(const struct pg_regime *regime, const struct pg_judge_call *call,
                     struct pg_verdict *verdict);

/* Records a verdict (a refusal always, an allow when call->record_allow)
 * and says a refusal on stderr.
 * CKR_OK: go ahead (*seq is the allow record when record_allow).
 * CKR_FUNCTION_REJECTED: the policy refuses; recorded and said.
 * CKR_FUNCTION_FAILED: the decision could not be recorded; refused. */
CK_RV pg_judge_record(struct pg_regime *regime, const struct pg_judge_call *call,
                      const struct pg_verdict *verdict, uint64_t *seq);

/* pg_judge_decide, then pg_judge_record. */
CK_RV pg_judge(struct pg_regime *regime, const struct pg_judge_call *call, uint64_t *seq);

/* Refuses a use of call->key that no policy can allow: a deny record
 * naming the key, with reason, and a stderr line.  Returns as
 * pg_judge_record does for a refusal. */
CK_RV pg_judge_forbid(struct pg_regime *regime, const struct pg_judge_call *call, const char *reason);

/* Refuses a call that no policy can allow (no key involved): a deny
 * record (operation manage) and a stderr line.  Returns CKR_FUNCTION_REJECTED, or
 * CKR_FUNCTION_FAILED if the record cannot be written. */
CK_RV pg_judge_refuse(struct pg_regime *regime, const char *function, const char *reason);

/* After the token answered an allowed call: makes the allow record
 * durable (audit.sync) and appends the result record.  Returns the token's
 * rv, or CKR_FUNCTION_FAILED if either step failed (the caller then
 * withholds the output: nothing leaves unlogged). */
CK_RV pg_judge_result(struct pg_regime *regime, const struct pg_judge_call *call, uint64_t seq,
                      CK_RV rv, const unsigned char *output, size_t output_len);

/* Before output leaves that ends no operation (a decryption's part):
 * makes the allow record seq durable.  CKR_OK, or CKR_FUNCTION_FAILED if
 * it cannot be (the caller then withholds the output). */
CK_RV pg_judge_durable(struct pg_regime *regime, const struct pg_judge_call *call, uint64_t seq);

/* Whether the policy names this object (by URI; a pinned key counts even
 * when its pin does not match): changing it is a `manage` operation. */
bool pg_judge_governed(const struct pg_regime *regime, const struct pg_keyinfo *key);

#endif /* P11GATE_JUDGE_H */
