/* SPDX-License-Identifier: Apache-2.0
 *
 * The module context: the only mutable state in p11gate.so, one structure
 * under one lock (pg_ctx.lock), split by job between the four files that
 * own its parts:
 *   context.c   the context, the wrapped module, initialise, finalise, fork
 *   regime.c    the regime in force and hot reload; the program-hash memo
 *   sessions.c  the session table (each entry also has a lock of its own)
 *   keymemo.c   the key-identity memo
 *   login.c     the identity each token was logged into with (issue 13)
 * Every field is read and written with pg_ctx.lock held, except the atomics
 * `active` (read on every call) and `regimes.last_id`.  The lock is held only to look at or change
 * these fields, never while calling into the wrapped module (except its
 * C_Initialize/C_Finalize, which context.c serialises under it).  Included
 * by those four files only; everything else uses module.h.
 */
#ifndef P11GATE_CONTEXT_H
#define P11GATE_CONTEXT_H

#include "module.h"
#include "p11gate/keyinfo.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define PG_SESSION_BUCKETS 256
#define PG_KEY_MEMO 64

/* regime.c's part. */
struct pg_ctx_regimes {
	char *config_path;              /* the file the regime came from */
	struct pg_regime *current;      /* the context's reference */
	bool reloading;                 /* one thread at a time reloads */
	atomic_uint_fast64_t last_id;   /* the last regime's id: atomic, taken without the lock */
	struct pg_file_version rejected; /* a file version that failed to load */
	/* The caller's executable as last hashed: kept across regimes
	 * (re-initialise, reload, changed ids), so a process hashes each
	 * version of its program once (see caller_exe_hash). */
	struct {
		bool known;
		struct pg_file_version file;
		unsigned char sha256[32];
	} exe_memo;
};

/* keymemo.c's part: key identities per (slot, object handle); any object
 * change through p11gate starts a new generation (see pg_ctx_keyinfo). */
struct pg_ctx_keys {
	struct {
		bool used;
		CK_SLOT_ID slot;
		CK_OBJECT_HANDLE handle;
		uint64_t generation;
		int64_t names_read;     /* CLOCK_MONOTONIC ns of the last names read */
		struct pg_keyinfo info;
		/* Its certificates, read for regime certs_regime (0: not read)
		 * as the certificates of public key certs_spki. */
		uint64_t certs_regime;
		unsigned char certs_spki[32];
		struct pg_key_certs certs;
	} memo[PG_KEY_MEMO];
	unsigned next;
	uint64_t generation;
};

/* login.c's part: per slot, what the application proved at C_Login
 * (PKCS#11 login state is per application and token, shared by its
 * sessions; in peer mode an application is one connection). */
#define PG_LOGIN_SLOTS 16
#define PG_LOGIN_KEYS 8
struct pg_ctx_login {
	struct {
		bool used;
		CK_SLOT_ID slot;
		struct pg_login *login;     /* the context's reference */
	} slots[PG_LOGIN_SLOTS];
	/* Issuer keys made from their SubjectPublicKeyInfo, by its SHA-256
	 * (struct pg_jws_key_cache); replaced round-robin. */
	struct {
		unsigned char spki_sha256[32];
		EVP_PKEY *key;              /* the context's reference; NULL: unused */
	} keys[PG_LOGIN_KEYS];
	unsigned next_key;
};

struct pg_ctx {
	pthread_mutex_t lock;           /* guards every field below but `active` */
	/* &lower while initialised in this process, else NULL.  Read without
	 * the lock on every call, so it is atomic. */
	_Atomic(const pg_function_list_3_0 *) active;
	bool initialized;
	bool forked;                    /* a child inherited an initialised module */
	void *dl;
	pg_function_list_3_0 lower;
	CK_INFO lower_info;
	/* Whether the module really has the functions lacking.c asks about. */
	enum pg_support probe[PG_PROBE_COUNT];
	struct pg_ctx_regimes regimes;
	struct pg_session *sessions[PG_SESSION_BUCKETS];
	struct pg_ctx_keys keys;
	struct pg_ctx_login login;
};

extern struct pg_ctx pg_ctx;

/* regime.c.  The version of the file at path now; false if it cannot be
 * read (out is then zeroed). */
bool pg_file_version_read(const char *path, struct pg_file_version *out);
/* A regime for a loaded policy (see regime.c); takes watch. */
struct pg_regime *pg_regime_new(pg_policy *policy, const struct pg_file_version *st, bool threads_ok,
                                struct pg_watch *watch, const struct pg_regime *previous);

/* Each part forgets what it holds (context lock held): at finalise, and in
 * a forked child before it initialises again. */
void pg_regimes_release(void);
void pg_sessions_release(void);
void pg_keymemo_release(void);
void pg_logins_release(void);

#endif /* P11GATE_CONTEXT_H */
