/* SPDX-License-Identifier: Apache-2.0
 *
 * What p11gate remembers about each session: the private-key operations it
 * judged and let start, so the call that produces output is judged again,
 * hashed and recorded.  A session's entry is found under the context lock
 * and used under its own lock, so that calls on one session from several
 * threads (an application's mistake) take turns instead of freeing an
 * operation another is using; it is freed when closed and no call holds it.
 */
#ifndef P11GATE_SESSION_H
#define P11GATE_SESSION_H

#include <pthread.h>
#include <openssl/evp.h>
#include "module.h"
#include "p11gate/keyinfo.h"

enum pg_op_kind {
	PG_KIND_SIGN,             /* C_SignInit */
	PG_KIND_SIGN_RECOVER,     /* C_SignRecoverInit */
	PG_KIND_DECRYPT,          /* C_DecryptInit with a private key */
	PG_KIND_MESSAGE_SIGN,     /* C_MessageSignInit */
	PG_KIND_MESSAGE_DECRYPT,  /* C_MessageDecryptInit with a private key */
	PG_KIND_COUNT
};

/* Where a judged operation stands.  The diagram and what moves it from one
 * state to another are in docs/design.md ("The life of a judged
 * operation"); gate_op.c moves it. */
enum pg_op_state {
	PG_OP_IDLE,               /* none p11gate started (a reset operation is all zero) */
	PG_OP_PASSTHROUGH,        /* a decryption with a key that is not private: forwarded unjudged */
	PG_OP_STARTED,            /* judged at its init (or a new message begun); no data yet */
	PG_OP_FEEDING,            /* parts passed through updates, hashed as they passed */
	PG_OP_DECRYPTING,         /* allowed at a decryption's first part: parts and the final follow */
	/* The allow record is written, and the call that returns output got
	 * CKR_BUFFER_TOO_SMALL (or was a part's length query): only that call
	 * may follow, with the data it had (retry_sha256) ... */
	PG_OP_RETRY_PART,         /* ... a decryption's part */
	PG_OP_RETRY_FINAL,        /* ... a final call */
	PG_OP_RETRY_WHOLE,        /* ... a single-part call (C_Sign; other data: another signature) */
};

struct pg_session_op {
	enum pg_op_state state;
	enum pg_op op;
	CK_MECHANISM_TYPE mechanism;
	struct pg_keyinfo key;
	EVP_MD_CTX *md;           /* SHA-256 of the data, as the parts pass */
	uint64_t decision_seq;    /* the allow record (DECRYPTING, RETRY_*) */
	unsigned char data_sha256[32];    /* of all the data the allow record names */
	unsigned char retry_sha256[32];   /* RETRY_*: of the data of the call to retry */
	unsigned char data[PG_AUDIT_DATA_INLINE_MAX];   /* single-part data a record keeps whole */
	size_t data_len;
};

struct pg_session {
	CK_SESSION_HANDLE handle;
	pthread_mutex_t lock;     /* held by the one call using ops (pg_ctx_session) */
	unsigned refs;            /* calls holding or waiting for it; under the context lock */
	bool dropped;             /* closed: freed by the last pg_ctx_session_put */
	bool opened;              /* opened through p11gate, on slot (C_InitToken asks) */
	CK_SLOT_ID slot;
	struct pg_session_op ops[PG_KIND_COUNT];
	struct pg_session *next;
};

void pg_session_op_reset(struct pg_session_op *op);

#endif /* P11GATE_SESSION_H */
