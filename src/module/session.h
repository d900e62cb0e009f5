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

struct pg_session_op {
	bool active;
	bool passthrough;         /* a decryption with a secret key: forwarded unjudged */
	enum pg_op op;
	CK_MECHANISM_TYPE mechanism;
	struct pg_keyinfo key;
	EVP_MD_CTX *md;           /* SHA-256 of the data, as the parts pass */
	bool fed;                 /* parts passed through an update (multi-part) */
	bool logged;              /* allow record written; awaiting the result */
	bool logged_single_part;  /* ... by a single-part call (C_Sign), not a final */
	bool retry_pending;       /* the last call with output got CKR_BUFFER_TOO_SMALL or was a
	                           * part's length query: its retry must carry the same data */
	unsigned char retry_sha256[32];   /* ... the SHA-256 of that data */
	uint64_t decision_seq;
	unsigned char data_sha256[32];
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
