/* SPDX-License-Identifier: Apache-2.0
 *
 * Internal interface of the p11gate module: the 3.0 function table type,
 * the declarations generated from functions.h, the module context, and the
 * loader of the real module.
 */
#ifndef P11GATE_MODULE_H
#define P11GATE_MODULE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include "p11gate/audit.h"
#include "p11gate/identity.h"
#include "p11gate/login.h"
#include "p11gate/pkcs11.h"
#include "p11gate/policy.h"
#include "rows.h"

struct pg_session;

/* Which version of the policy file a regime came from. */
struct pg_file_version {
	bool known;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec birth, mtime, ctime;
};

/* The PKCS#11 3.0 table: CK_VERSION, then one typed pointer per row of
 * functions.h, in order (the first 68 are CK_FUNCTION_LIST's). */
struct pg_function_list_3_0 {
	CK_VERSION version;
#define PG_MODULE(name, ...) CK_RV (*name) PG_PARAMS(__VA_ARGS__);
#define PG_FN PG_MODULE
#define PG_HOOK PG_MODULE
#include "functions.h"
};

/* The 2.40 view of a 3.0 table: the first 68 entries are laid out as in
 * CK_FUNCTION_LIST (checked in entry.c). */
static inline const CK_FUNCTION_LIST *
pg_lower_2_40(const pg_function_list_3_0 *table)
{
	return (const CK_FUNCTION_LIST *)(const void *)table;
}

/* Every entry point: pg_mod_* (entry.c), pg_fwd_* (forward.c), pg_hook_*
 * (calls.c).  A row without its function is a link error. */
#define PG_MODULE(name, ...) CK_RV pg_mod_##name PG_PARAMS(__VA_ARGS__);
#define PG_FN(name, ...) CK_RV pg_fwd_##name PG_PARAMS(__VA_ARGS__);
#define PG_HOOK(name, ...) CK_RV pg_hook_##name PG_PARAMS(__VA_ARGS__);
#include "functions.h"

/* ---- the module context (context.h): its one piece of mutable state ---- */
/* context.c: the wrapped module and its life cycle; regime.c: the regime
 * and reload; sessions.c: the session table; keymemo.c: key identities. */

/* The wrapped module's table while p11gate is initialised in this process,
 * NULL otherwise (before C_Initialize, after C_Finalize, in a forked child
 * until it initialises again).  Lock-free: read on every call. */
const pg_function_list_3_0 *pg_ctx_lower(void);

/* What decisions are made under: one loaded policy, its audit log and the
 * caller, replaced whole when the policy file changes (hot reload) and
 * shared read-only by the calls that hold a reference. */
struct pg_regime {
	atomic_int refs;
	uint64_t id;                /* never 0, never reused in the process */
	pg_policy *policy;
	pg_audit *audit;            /* NULL if it cannot be opened: key use refused */
	char audit_error[512];
	struct pg_caller *caller;   /* NULL if it cannot be read: key use refused */
	char caller_error[512];     /* why, when caller is NULL */
	/* Set by pg_regime_prepare at the first decision, not before: a
	 * session that only lists never pays for hashing the program (and the
	 * log renders the caller once then, pg_audit_set_caller). */
	pthread_mutex_t prepare_lock;
	atomic_bool prepared;
	struct pg_watch *watch;     /* says when the policy file may have changed; NULL: always */
	struct pg_file_version file; /* the policy file's version when loaded */
	uid_t uid;                  /* effective ids the caller was read under */
	gid_t gid;
	bool threads_ok;            /* the application lets libraries create threads */
	atomic_llong audit_alerted; /* when the last audit-failed alert was sent (alert.c) */
};

/* The regime in force (reloaded first if the policy file changed), with a
 * reference the caller drops; NULL when not initialised. */
struct pg_regime *pg_ctx_regime(void);
void pg_regime_unref(struct pg_regime *regime);
/* Hashes the caller's program (once per process and program version) and
 * renders the caller for the log, once per regime; every decision and
 * record calls it first.  Thread-safe; the regime is read-only afterwards. */
void pg_regime_prepare(const struct pg_regime *regime);

/* The session's judged operations, created on demand, locked for the
 * caller until pg_ctx_session_put.  NULL if absent (or out of memory when
 * create).  Take no session while holding another. */
struct pg_session *pg_ctx_session(CK_SESSION_HANDLE handle, bool create);
void pg_ctx_session_put(struct pg_session *session);
void pg_ctx_session_drop(CK_SESSION_HANDLE handle);
/* A session opened through p11gate on slot; the slot of one (false: not
 * opened through p11gate, or closed); how many are open on slot.  The
 * table takes no lock of a session's, so a call holding one may ask. */
void pg_ctx_session_opened(CK_SESSION_HANDLE handle, CK_SLOT_ID slot);
bool pg_ctx_session_slot(CK_SESSION_HANDLE handle, CK_SLOT_ID *slot);
unsigned pg_ctx_sessions_on(CK_SLOT_ID slot);
/* Forgets the sessions the wrapped module closed at C_CloseAllSessions(slot). */
void pg_ctx_sessions_prune(CK_SLOT_ID slot);

/* An object's identity, memoised per handle (keymemo.c). */
struct pg_keyinfo;
CK_RV pg_ctx_keyinfo(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, struct pg_keyinfo *out);
/* The certificates on key's token that carry public key spki, read from
 * the token once per key and regime (keymemo.c). */
CK_RV pg_ctx_key_certs(const struct pg_keyinfo *key, const unsigned char spki[32], uint64_t regime,
                       struct pg_key_certs *out);
/* Called after any call that may have changed objects on a token. */
void pg_ctx_objects_changed(void);

/* What an application proved at C_Login on a token (login.c): immutable,
 * shared by reference.  id is the verified identity, record its audit
 * field ("identity":{...},). */
struct pg_login {
	atomic_int refs;
	struct pg_login_id *id;
	char *record;
};
/* The login in force on slot's token, with a reference (NULL if none). */
struct pg_login *pg_ctx_login(CK_SLOT_ID slot);
void pg_login_unref(struct pg_login *login);
/* The token in slot was logged out (its last session closed). */
void pg_ctx_login_forget(CK_SLOT_ID slot);
/* Whether any token has a login p11gate keeps (cheap; no lock order issue). */
bool pg_ctx_logins_held(void);

/* Initialise / finalise, serialised under the context lock.  reserved_path
 * is the p11gate-config= path from pReserved, or NULL. */
CK_RV pg_ctx_initialize(const CK_C_INITIALIZE_ARGS *lower_args, const char *reserved_path);
CK_RV pg_ctx_finalize(void);

/* What p11gate learnt about functions the wrapped module may list but not
 * have (lacking.c); forgotten when the module is unloaded. */
enum pg_probe {
	PG_PROBE_DECRYPT_DIGEST,        /* C_DecryptDigestUpdate */
	PG_PROBE_SIGN_ENCRYPT,          /* C_SignEncryptUpdate */
	PG_PROBE_DECRYPT_VERIFY,        /* C_DecryptVerifyUpdate */
	PG_PROBE_SIGN_RECOVER,          /* C_SignRecoverInit (and so C_SignRecover) */
	PG_PROBE_VERIFY_RECOVER,        /* C_VerifyRecoverInit (and so C_VerifyRecover) */
	PG_PROBE_COUNT
};
enum pg_support { PG_SUPPORT_UNKNOWN, PG_SUPPORT_HAS, PG_SUPPORT_LACKS };
enum pg_support pg_ctx_probe_support(enum pg_probe which);
void pg_ctx_set_probe_support(enum pg_probe which, enum pg_support support);

/* The wrapped module's CK_INFO, captured at C_Initialize. */
CK_RV pg_ctx_lower_info(CK_INFO *out);

/* ---- loader.c: the real module ---------------------------------------- */

/* dlopens path and fills *table (zeroed beyond what the module offers: its
 * 3.0 interface if it has one, else exactly sizeof(CK_FUNCTION_LIST)).
 * Refuses modules that would loop back (p11gate itself, p11-kit-client).
 * On failure, a one-line reason in err and NULL. */
void *pg_loader_open(const char *path, pg_function_list_3_0 *table,
                     char *err, size_t err_len);
void pg_loader_close(void *dl);

/* ---- safe_read.c: memory the caller points at, read through the kernel -- */

/* Copies len bytes from src, or answers EFAULT (nothing is dereferenced
 * that the kernel does not find readable). */
int pg_safe_copy(void *dst, const void *src, size_t len);
/* Copies the NUL-terminated string at src into dst (cap bytes at most,
 * NUL included) if it starts with prefix: 0; EINVAL if it does not (read
 * no further than needed to tell), EFAULT if unreadable before its end,
 * ENAMETOOLONG if no NUL within cap. */
int pg_safe_copy_string(char *dst, size_t cap, const char *src, const char *prefix);

/* ---- config.c: which configuration, and its errors on stderr ----------- */

/* Which configuration: P11GATE_CONFIG, then reserved_path (from
 * x-init-reserved), then the built-in default. */
const char *pg_config_path(const char *reserved_path);
/* Loads it; NULL after printing why on stderr. */
pg_policy *pg_config_load(const char *path);

/* ---- peer.c: the caller across a p11-kit server connection ------------- */

/* The peer on standard input when this process really serves a
 * connection of the p11-kit server listening on server_socket; NULL with
 * the reason in why otherwise (key use is then refused). */
struct pg_caller *pg_peer_caller_new(const char *server_socket, char *why, size_t why_len);

/* Prints "p11gate: " and the message on stderr, as one write. */
void pg_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* P11GATE_MODULE_H */
