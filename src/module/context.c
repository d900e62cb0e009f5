/* SPDX-License-Identifier: Apache-2.0
 *
 * The module context: the only mutable state in p11gate.so, guarded by one
 * lock.  It owns the wrapped module, the regime in force (policy, audit
 * log, caller identity; swapped whole when the policy file changes), the
 * sessions' judged operations, and the life cycle: initialise, finalise,
 * and forget everything in a child after fork() until it initialises again.
 * The lock is never held while calling into the wrapped module, except
 * around its C_Initialize/C_Finalize.
 */
#include "module.h"
#include "session.h"
#include "watch.h"
#include "p11gate/keyinfo.h"
#include "p11gate/audit.h"
#include "p11gate/common.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define SESSION_BUCKETS 256
#define KEY_MEMO 64

static struct {
	pthread_mutex_t lock;           /* guards every field below but `active` */
	/* &lower while initialised in this process, else NULL.  Read without
	 * the lock on every call, so it is atomic. */
	_Atomic(const pg_function_list_3_0 *) active;
	bool initialized;
	bool forked;                    /* a child inherited an initialised module */
	void *dl;
	pg_function_list_3_0 lower;
	CK_INFO lower_info;
	char *config_path;              /* the file the regime came from */
	struct pg_regime *regime;
	bool reloading;                 /* one thread at a time reloads */
	struct pg_file_version rejected; /* a file version that failed to load */
	struct pg_session *sessions[SESSION_BUCKETS];
	/* Key identities per (slot, object handle); any object change
	 * through p11gate starts a new generation (see pg_ctx_keyinfo). */
	struct {
		bool used;
		CK_SLOT_ID slot;
		CK_OBJECT_HANDLE handle;
		uint64_t generation;
		int64_t names_read;     /* CLOCK_MONOTONIC ns of the last names read */
		struct pg_keyinfo info;
	} memo[KEY_MEMO];
	unsigned memo_next;
	uint64_t objects_generation;
	/* Whether the module really has the functions lacking.c asks about. */
	enum pg_support probe[PG_PROBE_COUNT];
	/* The caller's executable as last hashed: kept across regimes
	 * (re-initialise, reload, changed ids), so a process hashes each
	 * version of its program once (see caller_exe_hash). */
	struct {
		bool known;
		struct pg_file_version file;
		unsigned char sha256[32];
	} exe_memo;
} ctx = { .lock = PTHREAD_MUTEX_INITIALIZER };

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* ---- fork ---------------------------------------------------------------- */

/* Holding the lock across fork() keeps the child's copy consistent. */
static void
atfork_prepare(void)
{
	pthread_mutex_lock(&ctx.lock);
}

static void
atfork_parent(void)
{
	pthread_mutex_unlock(&ctx.lock);
}

/* PKCS#11: a child must call C_Initialize before using the module. */
static void
atfork_child(void)
{
	atomic_store(&ctx.active, NULL);
	ctx.reloading = false;      /* a parent's thread that was reloading is not here */
	if (ctx.initialized) {
		ctx.initialized = false;
		ctx.forked = true;
	}
	pthread_mutex_unlock(&ctx.lock);
}

/* The handlers stay registered for the life of the process; the module is
 * linked with -z nodelete so they never point into unmapped code. */
static void
install_atfork(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

const pg_function_list_3_0 *
pg_ctx_lower(void)
{
	return atomic_load_explicit(&ctx.active, memory_order_acquire);
}

/* ---- regimes --------------------------------------------------------------- */

/* A file rewritten in place must be quiet this long before it is read:
 * a prefix of a policy is often a valid, and more permissive, policy. */
#define IN_PLACE_QUIET_NS (200 * 1000000LL)

static bool
file_version(const char *path, struct pg_file_version *out)
{
	struct statx stx;

	memset(out, 0, sizeof *out);
	if (statx(AT_FDCWD, path, 0, STATX_BASIC_STATS | STATX_BTIME, &stx) != 0)
		return false;
	out->known = true;
	out->dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	out->ino = stx.stx_ino;
	out->size = (off_t)stx.stx_size;
	if (stx.stx_mask & STATX_BTIME)
		out->birth = (struct timespec){ stx.stx_btime.tv_sec, stx.stx_btime.tv_nsec };
	out->mtime = (struct timespec){ stx.stx_mtime.tv_sec, stx.stx_mtime.tv_nsec };
	out->ctime = (struct timespec){ stx.stx_ctime.tv_sec, stx.stx_ctime.tv_nsec };
	return true;
}

static bool
same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static bool
same_file(const struct pg_file_version *a, const struct pg_file_version *b)
{
	return a->known == b->known && a->dev == b->dev && a->ino == b->ino &&
	       same_time(&a->birth, &b->birth);
}

static bool
same_file_version(const struct pg_file_version *a, const struct pg_file_version *b)
{
	return same_file(a, b) && a->size == b->size && same_time(&a->mtime, &b->mtime) &&
	       same_time(&a->ctime, &b->ctime);
}

/* A new file (renamed into place) is complete: read it now.  The same file
 * changed in place may still be being written: wait until it is quiet. */
static bool
ready_to_read(const struct pg_file_version *now, const struct pg_file_version *current)
{
	struct timespec clock;
	long long age;

	if (!same_file(now, current))
		return true;
	clock_gettime(CLOCK_REALTIME, &clock);
	age = (clock.tv_sec - now->mtime.tv_sec) * 1000000000LL + (clock.tv_nsec - now->mtime.tv_nsec);
	return age >= IN_PLACE_QUIET_NS;
}

void
pg_regime_unref(struct pg_regime *regime)
{
	if (regime == NULL || atomic_fetch_sub(&regime->refs, 1) != 1)
		return;
	pg_audit_close(regime->audit);
	pthread_mutex_destroy(&regime->prepare_lock);
	pg_watch_free(regime->watch);
	pg_caller_free(regime->caller);
	pg_policy_unref(regime->policy);
	free(regime);
}

static struct pg_regime *
regime_ref(struct pg_regime *regime)
{
	atomic_fetch_add(&regime->refs, 1);
	return regime;
}

/* Who is asking, per the policy's identity mode.  In-process identity is
 * read once and rebuilt when the process changes its ids.  Its program is
 * hashed later, at the first decision (pg_regime_prepare). */
static struct pg_caller *
caller_new(const struct pg_settings *settings, char *why, size_t why_len)
{
	struct pg_caller *caller;

	if (settings->identity == PG_IDENTITY_PEER) {
		caller = pg_peer_caller_new(settings->server_socket, why, why_len);
	} else {
		caller = pg_caller_process_new();
		if (caller == NULL)
			snprintf(why, why_len, "the caller's identity cannot be read: out of memory");
	}
	return caller;
}

/* A regime for a loaded policy: opens its audit log (keeping what the
 * previous regime's handle saw of it) and reads the caller;
 * takes watch (made before the file was read; NULL: look at every call).
 * A log that cannot be opened leaves audit NULL with the reason kept:
 * every judged call is then refused (fail closed), the rest still works. */
static struct pg_regime *
regime_new(pg_policy *policy, const struct pg_file_version *st, bool threads_ok,
           struct pg_watch *watch, const struct pg_regime *previous)
{
	const struct pg_settings *settings = pg_policy_settings(policy);
	struct pg_regime *regime = calloc(1, sizeof *regime);

	if (regime == NULL) {
		pg_watch_free(watch);
		return NULL;
	}
	atomic_init(&regime->refs, 1);
	atomic_init(&regime->prepared, false);
	pthread_mutex_init(&regime->prepare_lock, NULL);
	regime->watch = watch;
	regime->policy = pg_policy_ref(policy);
	regime->file = *st;
	regime->uid = geteuid();
	regime->gid = getegid();
	regime->threads_ok = threads_ok;
	regime->caller = caller_new(settings, regime->caller_error, sizeof regime->caller_error);
	if (settings->audit_file == NULL)
		snprintf(regime->audit_error, sizeof regime->audit_error,
		         "%s: no audit log is configured (audit: file:)", settings->path);
	else
		regime->audit = pg_audit_open(settings->audit_file, settings->audit_sync,
		                              settings->audit_syslog, regime->audit_error,
		                              sizeof regime->audit_error);
	if (regime->audit != NULL) {
		struct pg_audit_record start;

		pg_audit_set_policy(regime->audit, settings->sha256);
		/* Who opened the log, under which policy, over which module. */
		start = pg_audit_record_start(regime->audit, settings->module);
		pg_audit_allow_threads(regime->audit, threads_ok);
		/* What the process saw of the log stays its baseline. */
		if (previous != NULL)
			pg_audit_inherit(regime->audit, previous->audit);
		(void)pg_audit_start(regime->audit, &start);   /* else written before the next record */
	}
	return regime;
}

/* The caller's program hashed, from the memo when the file the caller
 * runs is the version hashed before.  Hashing reads the whole program:
 * 90 ms for a 100 MB one, at every C_Initialize before this memo. */
static void
caller_exe_hash(struct pg_caller *caller)
{
	struct pg_file_version before, after;
	char link[64];
	bool hit;

	if (caller->exe_hashed || caller->exe_trust == PG_ID_UNAVAILABLE || caller->exe == NULL)
		return;
	pg_caller_exe_link(caller, link, sizeof link);
	/* Only the file the link names is memoised, and only while the link
	 * still names the caller's program (the checks hashing makes). */
	if (!file_version(link, &before) || !pg_caller_exe_is(caller, link)) {
		(void)pg_caller_exe_sha256(caller);
		return;
	}
	pthread_mutex_lock(&ctx.lock);
	hit = ctx.exe_memo.known && same_file_version(&before, &ctx.exe_memo.file);
	if (hit)
		memcpy(caller->exe_sha256, ctx.exe_memo.sha256, sizeof caller->exe_sha256);
	pthread_mutex_unlock(&ctx.lock);
	if (hit) {
		caller->exe_hashed = caller->exe_hash_ok = true;
		return;
	}
	/* A file that changed while it was hashed is not memoised. */
	if (pg_caller_exe_sha256(caller) == NULL || !file_version(link, &after) ||
	    !same_file_version(&before, &after))
		return;
	pthread_mutex_lock(&ctx.lock);
	ctx.exe_memo.known = true;
	ctx.exe_memo.file = before;
	memcpy(ctx.exe_memo.sha256, caller->exe_sha256, sizeof ctx.exe_memo.sha256);
	pthread_mutex_unlock(&ctx.lock);
}

void
pg_regime_prepare(const struct pg_regime *shared)
{
	/* Its one writer, serialised by prepare_lock; every reader waits for
	 * `prepared` and then only reads. */
	struct pg_regime *regime = (struct pg_regime *)shared;

	if (atomic_load_explicit(&regime->prepared, memory_order_acquire))
		return;
	pthread_mutex_lock(&regime->prepare_lock);
	if (!atomic_load_explicit(&regime->prepared, memory_order_relaxed)) {
		if (regime->caller != NULL) {
			caller_exe_hash(regime->caller);
			/* Rendered once, by the log that writes it. */
			pg_audit_set_caller(regime->audit, regime->caller);
		}
		atomic_store_explicit(&regime->prepared, true, memory_order_release);
	}
	pthread_mutex_unlock(&regime->prepare_lock);
}

/* A record of a policy change, in the log of the regime it concerns. */
static void
audit_policy_event(struct pg_regime *regime, const char *reason)
{
	struct pg_audit_record record;
	uint64_t seq;

	if (regime->audit == NULL)
		return;
	pg_regime_prepare(regime);
	record = pg_audit_record_policy(regime->audit, reason);
	if (pg_audit_append(regime->audit, &record, &seq) == 0)
		pg_audit_sync(regime->audit, seq);
}

/* Loads the changed file outside the lock; installs it, or keeps the last
 * good policy and says so loudly (stderr and the log).  The caller holds
 * a reference to current. */
static void
reload(struct pg_regime *current, const struct pg_file_version *st)
{
	char why[1024], sha[65];
	struct pg_watch *watch = pg_watch_new(ctx.config_path);
	struct pg_regime *fresh = NULL;
	struct pg_file_version after;
	bool installed = false;
	pg_policy *policy;

	policy = pg_config_load(ctx.config_path);
	/* Changed while it was read: not a version to judge by.  The next
	 * call tries again. */
	if (!file_version(ctx.config_path, &after) || !same_file_version(&after, st)) {
		pg_watch_free(watch);
		pg_policy_unref(policy);
		pthread_mutex_lock(&ctx.lock);
		ctx.reloading = false;
		pthread_mutex_unlock(&ctx.lock);
		return;
	}
	if (policy != NULL)
		fresh = regime_new(policy, st, current->threads_ok, watch, current);
	else
		pg_watch_free(watch);
	pg_policy_unref(policy);

	pthread_mutex_lock(&ctx.lock);
	ctx.reloading = false;
	if (fresh == NULL) {
		ctx.rejected = *st;
	} else if (ctx.regime == current) {
		ctx.regime = regime_ref(fresh);   /* the context's reference */
		installed = true;
	}
	pthread_mutex_unlock(&ctx.lock);

	if (fresh == NULL) {
		pg_hex_encode(pg_policy_settings(current->policy)->sha256, 32, sha);
		snprintf(why, sizeof why, "policy file %s changed but does not load; "
		         "keeping the last good policy (sha256 %s)", ctx.config_path, sha);
		pg_log("%s", why);
		audit_policy_event(current, why);
		return;
	}
	if (installed) {
		pg_hex_encode(pg_policy_settings(fresh->policy)->sha256, 32, sha);
		snprintf(why, sizeof why, "policy reloaded from %s (sha256 %s)", ctx.config_path, sha);
		audit_policy_event(fresh, why);
		pg_regime_unref(current);     /* the context's reference to the old one */
	}
	pg_regime_unref(fresh);               /* regime_new's */
}

struct pg_regime *
pg_ctx_regime(void)
{
	struct pg_regime *regime = NULL;
	bool do_reload = false;
	struct pg_file_version st;
	uint64_t ticket;

	/* A forked child still holds its parent's regime until it
	 * initialises again: it is not the child's. */
	pthread_mutex_lock(&ctx.lock);
	if (ctx.initialized && ctx.regime != NULL)
		regime = regime_ref(ctx.regime);
	pthread_mutex_unlock(&ctx.lock);
	if (regime == NULL)
		return NULL;

	/* A changed file is reloaded before the decision it may change.  Until
	 * the file in force is the one the path names, look at every call. */
	if (!pg_watch_may_have_changed(regime->watch, &ticket) ||
	    !file_version(ctx.config_path, &st))
		goto identity;
	if (same_file_version(&st, &regime->file)) {
		pg_watch_unchanged(regime->watch, ticket);
		goto identity;
	}
	if (!ready_to_read(&st, &regime->file))
		goto identity;
	pthread_mutex_lock(&ctx.lock);
	if (!ctx.reloading && !same_file_version(&st, &ctx.rejected)) {
		ctx.reloading = true;
		do_reload = true;
	}
	pthread_mutex_unlock(&ctx.lock);
	if (do_reload) {
		reload(regime, &st);
		pg_regime_unref(regime);
		return pg_ctx_regime();
	}

identity:
	if (pg_policy_settings(regime->policy)->identity == PG_IDENTITY_PROCESS &&
	    (geteuid() != regime->uid || getegid() != regime->gid)) {
		/* The process changed ids: the same policy, a fresh caller. */
		struct pg_regime *fresh = regime_new(regime->policy, &regime->file, regime->threads_ok,
		                                     NULL, regime);

		pthread_mutex_lock(&ctx.lock);
		if (fresh != NULL && ctx.regime == regime) {
			ctx.regime = regime_ref(fresh);
			pg_regime_unref(regime);
		}
		pthread_mutex_unlock(&ctx.lock);
		pg_regime_unref(regime);
		return fresh;
	}
	return regime;
}

/* ---- sessions -------------------------------------------------------------- */

void
pg_session_op_reset(struct pg_session_op *op)
{
	EVP_MD_CTX_free(op->md);
	OPENSSL_cleanse(op->data, sizeof op->data);
	memset(op, 0, sizeof *op);
}

static void
session_free(struct pg_session *session)
{
	for (int k = 0; k < PG_KIND_COUNT; k++)
		pg_session_op_reset(&session->ops[k]);
	pthread_mutex_destroy(&session->lock);
	free(session);
}

/* Unlinks session (context lock held); true if the caller must free it
 * now, false if a call holds it and will (pg_ctx_session_put). */
static bool
session_unlinked(struct pg_session *session)
{
	session->dropped = true;
	return session->refs == 0;
}

struct pg_session *
pg_ctx_session(CK_SESSION_HANDLE handle, bool create)
{
	struct pg_session **bucket, *session;

	pthread_mutex_lock(&ctx.lock);
	bucket = &ctx.sessions[handle % SESSION_BUCKETS];
	for (session = *bucket; session != NULL; session = session->next) {
		if (session->handle == handle)
			break;
	}
	if (session == NULL && create && ctx.initialized &&
	    (session = calloc(1, sizeof *session)) != NULL) {
		session->handle = handle;
		pthread_mutex_init(&session->lock, NULL);
		session->next = *bucket;
		*bucket = session;
	}
	if (session != NULL)
		session->refs++;
	pthread_mutex_unlock(&ctx.lock);
	if (session != NULL)
		pthread_mutex_lock(&session->lock);
	return session;
}

void
pg_ctx_session_put(struct pg_session *session)
{
	bool gone;

	if (session == NULL)
		return;
	pthread_mutex_unlock(&session->lock);
	pthread_mutex_lock(&ctx.lock);
	gone = --session->refs == 0 && session->dropped;
	pthread_mutex_unlock(&ctx.lock);
	if (gone)
		session_free(session);
}

void
pg_ctx_session_drop(CK_SESSION_HANDLE handle)
{
	struct pg_session **link, *session = NULL;
	bool free_now = false;

	pthread_mutex_lock(&ctx.lock);
	for (link = &ctx.sessions[handle % SESSION_BUCKETS]; *link != NULL; link = &(*link)->next) {
		if ((*link)->handle == handle) {
			session = *link;
			*link = session->next;
			free_now = session_unlinked(session);
			break;
		}
	}
	pthread_mutex_unlock(&ctx.lock);
	if (free_now)
		session_free(session);
}

void
pg_ctx_session_opened(CK_SESSION_HANDLE handle, CK_SLOT_ID slot)
{
	struct pg_session *session = pg_ctx_session(handle, true);

	if (session == NULL)
		return;          /* out of memory: C_InitToken asks the token alone */
	session->opened = true;
	session->slot = slot;
	pg_ctx_session_put(session);
}

unsigned
pg_ctx_sessions_on(CK_SLOT_ID slot)
{
	unsigned n = 0;

	pthread_mutex_lock(&ctx.lock);
	for (size_t b = 0; b < SESSION_BUCKETS; b++) {
		for (struct pg_session *s = ctx.sessions[b]; s != NULL; s = s->next)
			n += s->opened && !s->dropped && s->slot == slot;
	}
	pthread_mutex_unlock(&ctx.lock);
	return n;
}

/* After C_CloseAllSessions: drops the sessions the module no longer knows. */
void
pg_ctx_sessions_prune(void)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	CK_SESSION_HANDLE stale[64];
	size_t n;

	if (lower == NULL)
		return;
	do {
		n = 0;
		pthread_mutex_lock(&ctx.lock);
		for (size_t b = 0; b < SESSION_BUCKETS && n < 64; b++) {
			for (struct pg_session *s = ctx.sessions[b]; s != NULL && n < 64; s = s->next)
				stale[n++] = s->handle;
		}
		pthread_mutex_unlock(&ctx.lock);
		size_t dropped = 0;
		for (size_t i = 0; i < n; i++) {
			CK_SESSION_INFO info;
			if (lower->C_GetSessionInfo(stale[i], &info) == CKR_SESSION_HANDLE_INVALID) {
				pg_ctx_session_drop(stale[i]);
				dropped++;
			}
		}
		if (dropped == 0)
			break;
	} while (n == 64);
}

/* Context lock held.  (In a forked child, an entry a parent's thread held
 * is left unfreed: its lock is that thread's.) */
static void
sessions_free_all(void)
{
	for (size_t b = 0; b < SESSION_BUCKETS; b++) {
		while (ctx.sessions[b] != NULL) {
			struct pg_session *s = ctx.sessions[b];
			ctx.sessions[b] = s->next;
			if (session_unlinked(s))
				session_free(s);
		}
	}
}

/* ---- key identities ---------------------------------------------------------- */

static int64_t
monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The memo entry for (slot, object) in this generation, or -1.  Called
 * with the lock held. */
static int
memo_find(CK_SLOT_ID slot, CK_OBJECT_HANDLE object)
{
	for (int i = 0; i < KEY_MEMO; i++) {
		if (ctx.memo[i].used && ctx.memo[i].slot == slot && ctx.memo[i].handle == object &&
		    ctx.memo[i].generation == ctx.objects_generation)
			return i;
	}
	return -1;
}

/* An object's identity, memoised per (slot, handle).  The key material
 * behind a handle never changes (PKCS#11 makes it read-only).  Its names
 * (label, id) change only by C_SetAttributeValue: through this p11gate the
 * change ends the memo at once (pg_ctx_objects_changed); through another
 * process's p11gate it was judged and logged there as `manage`, and is
 * seen here once the names are older than the policy's
 * key_names_max_age_ms.  Reading them at every use would cost a file read
 * per signature on SoftHSM2, which re-reads the object's file on every
 * attribute access: a third of an ECDSA signature.  The token information
 * and public-key hash (costly: certificates, other objects) are derived
 * again only when the names differ. */
CK_RV
pg_ctx_keyinfo(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, struct pg_keyinfo *out)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	CK_SESSION_INFO session_info;
	uint64_t generation;
	int64_t now, max_age;
	CK_RV rv;
	int i;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	/* Also proves the session is open: a memo is never a way around
	 * the token's own checks. */
	rv = lower->C_GetSessionInfo(session, &session_info);
	if (rv != CKR_OK)
		return rv;
	now = monotonic_ns();
	pthread_mutex_lock(&ctx.lock);
	max_age = ctx.regime != NULL ?
	          (int64_t)pg_policy_settings(ctx.regime->policy)->key_names_max_age_ms * 1000000 : 0;
	/* Taken before the token is read: what is read is stored only if no
	 * object changed through p11gate meanwhile. */
	generation = ctx.objects_generation;
	i = memo_find(session_info.slotID, object);
	if (i >= 0 && now - ctx.memo[i].names_read < max_age) {
		pg_keyinfo_copy(out, &ctx.memo[i].info);
		pthread_mutex_unlock(&ctx.lock);
		return CKR_OK;
	}
	pthread_mutex_unlock(&ctx.lock);

	rv = pg_keyinfo_read_names(pg_lower_2_40(lower), session, object, out);
	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&ctx.lock);
	i = generation == ctx.objects_generation ? memo_find(out->slot, object) : -1;
	if (i >= 0 && pg_keyinfo_same_names(&ctx.memo[i].info, out)) {
		pg_keyinfo_copy_rest(out, &ctx.memo[i].info);
		ctx.memo[i].names_read = now;
		pthread_mutex_unlock(&ctx.lock);
		return CKR_OK;
	}
	pthread_mutex_unlock(&ctx.lock);

	rv = pg_keyinfo_read_rest(pg_lower_2_40(lower), session, object, out);
	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&ctx.lock);
	if (generation == ctx.objects_generation) {
		i = memo_find(out->slot, object);
		if (i < 0)
			i = (int)(ctx.memo_next++ % KEY_MEMO);
		ctx.memo[i].used = true;
		ctx.memo[i].slot = out->slot;
		ctx.memo[i].handle = object;
		ctx.memo[i].generation = generation;
		ctx.memo[i].names_read = now;
		pg_keyinfo_copy(&ctx.memo[i].info, out);
	}
	pthread_mutex_unlock(&ctx.lock);
	return CKR_OK;
}

void
pg_ctx_objects_changed(void)
{
	pthread_mutex_lock(&ctx.lock);
	ctx.objects_generation++;
	pthread_mutex_unlock(&ctx.lock);
}

/* ---- life cycle ------------------------------------------------------------ */

/* Drops the regime and sessions; with close_module, the module too.  A
 * forked child keeps the module handle (it is mapped in the child). */
static void
release_state(bool close_module)
{
	pg_regime_unref(ctx.regime);
	ctx.regime = NULL;
	sessions_free_all();
	memset(ctx.memo, 0, sizeof ctx.memo);
	ctx.objects_generation++;
	free(ctx.config_path);
	ctx.config_path = NULL;
	memset(&ctx.rejected, 0, sizeof ctx.rejected);
	if (close_module) {
		pg_loader_close(ctx.dl);
		ctx.dl = NULL;
		memset(&ctx.lower, 0, sizeof ctx.lower);
		memset(ctx.probe, 0, sizeof ctx.probe);
	}
}

/* Initialisation is serialised under the lock, including the wrapped
 * module's C_Initialize: no other call takes the lock for long, so nothing
 * waits on it but another C_Initialize/C_Finalize or a fork(). */
CK_RV
pg_ctx_initialize(const CK_C_INITIALIZE_ARGS *lower_args, const char *reserved_path)
{
	const struct pg_settings *settings;
	pg_policy *policy = NULL;
	const char *path;
	char err[768];
	struct pg_file_version st;
	struct pg_watch *watch = NULL;
	CK_RV rv;

	pthread_once(&atfork_once, install_atfork);
	pthread_mutex_lock(&ctx.lock);
	if (ctx.initialized) {
		rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
		goto out;
	}
	if (ctx.forked)
		release_state(false);

	rv = CKR_GENERAL_ERROR;
	path = pg_config_path(reserved_path);
	watch = pg_watch_new(path);
	file_version(path, &st);
	policy = pg_config_load(path);
	if (policy == NULL)
		goto fail;
	settings = pg_policy_settings(policy);
	ctx.config_path = strdup(settings->path);
	if (ctx.config_path == NULL) {
		rv = CKR_HOST_MEMORY;
		goto fail;
	}
	if (ctx.dl == NULL) {
		ctx.dl = pg_loader_open(settings->module, &ctx.lower, err, sizeof err);
		if (ctx.dl == NULL) {
			pg_log("%s:%lu:%lu: %s", settings->path, settings->module_line,
			       settings->module_column, err);
			goto fail;
		}
	}

	rv = ctx.lower.C_Initialize((CK_VOID_PTR)lower_args);
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED && ctx.forked) {
		/* The child's copy of the module still thinks it is initialised. */
		ctx.lower.C_Finalize(NULL);
		rv = ctx.lower.C_Initialize((CK_VOID_PTR)lower_args);
	}
	if (rv != CKR_OK) {
		pg_log("module %s: C_Initialize failed: %s", settings->module,
		       pg_rv_name(rv) ? pg_rv_name(rv) : "unknown error");
		goto fail;
	}
	rv = ctx.lower.C_GetInfo(&ctx.lower_info);
	if (rv == CKR_OK) {
		ctx.regime = regime_new(policy, &st, lower_args == NULL ||
		                        !(lower_args->flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS), watch,
		                        NULL);
		watch = NULL;
		if (ctx.regime == NULL)
			rv = CKR_HOST_MEMORY;
	}
	if (rv != CKR_OK) {
		ctx.lower.C_Finalize(NULL);
		goto fail;
	}
	/* Said now; every key use is refused until they are mended. */
	if (ctx.regime->audit == NULL)
		pg_log("%s", ctx.regime->audit_error);
	if (ctx.regime->caller == NULL)
		pg_log("%s", ctx.regime->caller_error);

	ctx.forked = false;
	ctx.initialized = true;
	atomic_store_explicit(&ctx.active, &ctx.lower, memory_order_release);
	goto out;

fail:
	release_state(true);
	ctx.forked = false;
out:
	pthread_mutex_unlock(&ctx.lock);
	pg_watch_free(watch);
	pg_policy_unref(policy);
	return rv;
}

CK_RV
pg_ctx_finalize(void)
{
	CK_RV rv;

	pthread_mutex_lock(&ctx.lock);
	if (!ctx.initialized) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
		goto out;
	}
	atomic_store_explicit(&ctx.active, NULL, memory_order_release);
	rv = ctx.lower.C_Finalize(NULL);
	release_state(true);
	ctx.initialized = false;
out:
	pthread_mutex_unlock(&ctx.lock);
	return rv;
}

CK_RV
pg_ctx_lower_info(CK_INFO *out)
{
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&ctx.lock);
	if (!ctx.initialized)
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
	else
		*out = ctx.lower_info;
	pthread_mutex_unlock(&ctx.lock);
	return rv;
}

enum pg_support
pg_ctx_probe_support(enum pg_probe which)
{
	enum pg_support support;

	pthread_mutex_lock(&ctx.lock);
	support = ctx.probe[which];
	pthread_mutex_unlock(&ctx.lock);
	return support;
}

void
pg_ctx_set_probe_support(enum pg_probe which, enum pg_support support)
{
	pthread_mutex_lock(&ctx.lock);
	ctx.probe[which] = support;
	pthread_mutex_unlock(&ctx.lock);
}
