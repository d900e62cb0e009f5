/* SPDX-License-Identifier: Apache-2.0
 *
 * The regime: what decisions are made under (one loaded policy, its audit
 * log, the caller), and its hot reload.  It owns the regime in force, the
 * policy file's path and the version that failed to load, and the memo of
 * the caller's program hash.  Those live in the module context (context.h)
 * under its one lock, held only to look at or swap them: a regime is built,
 * reloaded and prepared outside the lock, and a regime itself is shared
 * read-only by reference count (its prepare_lock serialises the one write,
 * pg_regime_prepare, at its first decision).
 */
#include "context.h"
#include "alert.h"
#include "watch.h"
#include "p11gate/common.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/* A file rewritten in place must be quiet this long before it is read:
 * a prefix of a policy is often a valid, and more permissive, policy. */
#define IN_PLACE_QUIET_NS (200 * 1000000LL)

bool
pg_file_version_read(const char *path, struct pg_file_version *out)
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

/* Rotation at audit.max_size; behind p11-kit server (identity: peer) only,
 * the file size limit read once (no caller's code runs in this process to
 * lower it) and checkpoints signed by this process, which is the service
 * account's there and no signer can read the key: in-process the signer
 * could read whatever p11gate reads (docs/audit.md).  A key that cannot be
 * loaded closes the log: fail closed. */
static void
audit_options(struct pg_regime *regime, const struct pg_settings *settings)
{
	pg_audit_key *key;

	pg_audit_set_max_size(regime->audit, settings->audit_max_size);
	pg_audit_set_limit_fixed(regime->audit, settings->identity == PG_IDENTITY_PEER);
	if (settings->audit_checkpoint_key == NULL || settings->identity != PG_IDENTITY_PEER)
		return;
	key = pg_audit_key_load(settings->audit_checkpoint_key, true, regime->audit_error,
	                        sizeof regime->audit_error);
	if (key == NULL) {
		pg_audit_close(regime->audit);
		regime->audit = NULL;
		return;
	}
	pg_audit_set_checkpoint(regime->audit, key, settings->audit_checkpoint_every);
}

/* A regime for a loaded policy: opens its audit log (keeping what the
 * previous regime's handle saw of it) and reads the caller;
 * takes watch (made before the file was read; NULL: look at every call).
 * A log that cannot be opened leaves audit NULL with the reason kept:
 * every judged call is then refused (fail closed), the rest still works. */
struct pg_regime *
pg_regime_new(pg_policy *policy, const struct pg_file_version *st, bool threads_ok,
           struct pg_watch *watch, const struct pg_regime *previous)
{
	const struct pg_settings *settings = pg_policy_settings(policy);
	struct pg_regime *regime = calloc(1, sizeof *regime);

	if (regime == NULL) {
		pg_watch_free(watch);
		return NULL;
	}
	atomic_init(&regime->refs, 1);
	regime->id = atomic_fetch_add(&pg_ctx.regimes.last_id, 1) + 1;
	atomic_init(&regime->prepared, false);
	atomic_init(&regime->audit_alerted, 0);
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
	if (regime->audit != NULL)
		audit_options(regime, settings);
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
	if (!pg_file_version_read(link, &before) || !pg_caller_exe_is(caller, link)) {
		(void)pg_caller_exe_sha256(caller);
		return;
	}
	pthread_mutex_lock(&pg_ctx.lock);
	hit = pg_ctx.regimes.exe_memo.known && same_file_version(&before, &pg_ctx.regimes.exe_memo.file);
	if (hit)
		memcpy(caller->exe_sha256, pg_ctx.regimes.exe_memo.sha256, sizeof caller->exe_sha256);
	pthread_mutex_unlock(&pg_ctx.lock);
	if (hit) {
		caller->exe_hashed = caller->exe_hash_ok = true;
		return;
	}
	/* A file that changed while it was hashed is not memoised. */
	if (pg_caller_exe_sha256(caller) == NULL || !pg_file_version_read(link, &after) ||
	    !same_file_version(&before, &after))
		return;
	pthread_mutex_lock(&pg_ctx.lock);
	pg_ctx.regimes.exe_memo.known = true;
	pg_ctx.regimes.exe_memo.file = before;
	memcpy(pg_ctx.regimes.exe_memo.sha256, caller->exe_sha256, sizeof pg_ctx.regimes.exe_memo.sha256);
	pthread_mutex_unlock(&pg_ctx.lock);
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

/* A record of a policy change, in the log of the regime it concerns; its
 * seq, 0 if it was not written. */
static uint64_t
audit_policy_event(struct pg_regime *regime, const char *reason)
{
	struct pg_audit_record record;
	uint64_t seq = 0;

	if (regime->audit == NULL)
		return 0;
	pg_regime_prepare(regime);
	record = pg_audit_record_policy(regime->audit, reason);
	if (pg_audit_append(regime->audit, &record, &seq) != 0)
		return 0;
	pg_audit_sync(regime->audit, seq);
	return seq;
}

/* Loads the changed file outside the lock; installs it, or keeps the last
 * good policy and says so loudly (stderr and the log).  The caller holds
 * a reference to current. */
static void
reload(struct pg_regime *current, const struct pg_file_version *st)
{
	char why[1024], sha[65];
	struct pg_watch *watch = pg_watch_new(pg_ctx.regimes.config_path);
	struct pg_regime *fresh = NULL;
	struct pg_file_version after;
	bool installed = false;
	struct pg_alert alert;
	pg_policy *policy;

	policy = pg_config_load(pg_ctx.regimes.config_path);
	/* Changed while it was read: not a version to judge by.  The next
	 * call tries again. */
	if (!pg_file_version_read(pg_ctx.regimes.config_path, &after) || !same_file_version(&after, st)) {
		pg_watch_free(watch);
		pg_policy_unref(policy);
		pthread_mutex_lock(&pg_ctx.lock);
		pg_ctx.regimes.reloading = false;
		pthread_mutex_unlock(&pg_ctx.lock);
		return;
	}
	if (policy != NULL)
		fresh = pg_regime_new(policy, st, current->threads_ok, watch, current);
	else
		pg_watch_free(watch);
	pg_policy_unref(policy);

	pthread_mutex_lock(&pg_ctx.lock);
	pg_ctx.regimes.reloading = false;
	if (fresh == NULL) {
		pg_ctx.regimes.rejected = *st;
	} else if (pg_ctx.regimes.current == current) {
		pg_ctx.regimes.current = regime_ref(fresh);   /* the context's reference */
		installed = true;
	}
	pthread_mutex_unlock(&pg_ctx.lock);

	if (fresh == NULL) {
		pg_hex_encode(pg_policy_settings(current->policy)->sha256, 32, sha);
		snprintf(why, sizeof why, "policy file %s changed but does not load; "
		         "keeping the last good policy (sha256 %s)", pg_ctx.regimes.config_path, sha);
		pg_log("%s", why);
		alert = (struct pg_alert){ .kind = PG_ALERT_RELOAD_FAILED, .reason = why,
		                           .ref = audit_policy_event(current, why) };
		pg_alert_raise(current, &alert);
		return;
	}
	if (installed) {
		pg_hex_encode(pg_policy_settings(fresh->policy)->sha256, 32, sha);
		snprintf(why, sizeof why, "policy reloaded from %s (sha256 %s)", pg_ctx.regimes.config_path, sha);
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
	pthread_mutex_lock(&pg_ctx.lock);
	if (pg_ctx.initialized && pg_ctx.regimes.current != NULL)
		regime = regime_ref(pg_ctx.regimes.current);
	pthread_mutex_unlock(&pg_ctx.lock);
	if (regime == NULL)
		return NULL;

	/* A changed file is reloaded before the decision it may change.  Until
	 * the file in force is the one the path names, look at every call. */
	if (!pg_watch_may_have_changed(regime->watch, &ticket) ||
	    !pg_file_version_read(pg_ctx.regimes.config_path, &st))
		goto identity;
	if (same_file_version(&st, &regime->file)) {
		pg_watch_unchanged(regime->watch, ticket);
		goto identity;
	}
	if (!ready_to_read(&st, &regime->file))
		goto identity;
	pthread_mutex_lock(&pg_ctx.lock);
	if (!pg_ctx.regimes.reloading && !same_file_version(&st, &pg_ctx.regimes.rejected)) {
		pg_ctx.regimes.reloading = true;
		do_reload = true;
	}
	pthread_mutex_unlock(&pg_ctx.lock);
	if (do_reload) {
		reload(regime, &st);
		pg_regime_unref(regime);
		return pg_ctx_regime();
	}

identity:
	if (pg_policy_settings(regime->policy)->identity == PG_IDENTITY_PROCESS &&
	    (geteuid() != regime->uid || getegid() != regime->gid)) {
		/* The process changed ids: the same policy, a fresh caller. */
		struct pg_regime *fresh = pg_regime_new(regime->policy, &regime->file, regime->threads_ok,
		                                     NULL, regime);

		pthread_mutex_lock(&pg_ctx.lock);
		if (fresh != NULL && pg_ctx.regimes.current == regime) {
			pg_ctx.regimes.current = regime_ref(fresh);
			pg_regime_unref(regime);
		}
		pthread_mutex_unlock(&pg_ctx.lock);
		pg_regime_unref(regime);
		return fresh;
	}
	return regime;
}

/* Context lock held. */
void
pg_regimes_release(void)
{
	pg_regime_unref(pg_ctx.regimes.current);
	pg_ctx.regimes.current = NULL;
	free(pg_ctx.regimes.config_path);
	pg_ctx.regimes.config_path = NULL;
	memset(&pg_ctx.regimes.rejected, 0, sizeof pg_ctx.regimes.rejected);
}
