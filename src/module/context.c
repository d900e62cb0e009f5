/* SPDX-License-Identifier: Apache-2.0
 *
 * The module context: the only mutable state in p11gate.so, one structure
 * (context.h) guarded by one lock.  This file owns the context itself and
 * its life cycle: the wrapped module, initialise, finalise, forgetting
 * everything in a child after fork() until it initialises again, and what
 * was learnt about the module's functions.  Its other parts are owned by
 * regime.c (the regime and reload), sessions.c (the session table) and
 * keymemo.c (key identities), each under the same lock.  The lock is never
 * held while calling into the wrapped module, except around its
 * C_Initialize/C_Finalize.
 */
#include "context.h"
#include "watch.h"
#include "p11gate/common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct pg_ctx pg_ctx = { .lock = PTHREAD_MUTEX_INITIALIZER };

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* ---- fork ---------------------------------------------------------------- */

/* Holding the lock across fork() keeps the child's copy consistent. */
static void
atfork_prepare(void)
{
	pthread_mutex_lock(&pg_ctx.lock);
}

static void
atfork_parent(void)
{
	pthread_mutex_unlock(&pg_ctx.lock);
}

/* PKCS#11: a child must call C_Initialize before using the module. */
static void
atfork_child(void)
{
	atomic_store(&pg_ctx.active, NULL);
	pg_ctx.regimes.reloading = false;      /* a parent's thread that was reloading is not here */
	if (pg_ctx.initialized) {
		pg_ctx.initialized = false;
		pg_ctx.forked = true;
	}
	pthread_mutex_unlock(&pg_ctx.lock);
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
	return atomic_load_explicit(&pg_ctx.active, memory_order_acquire);
}

/* ---- life cycle ------------------------------------------------------------ */

/* Drops the regime and sessions; with close_module, the module too.  A
 * forked child keeps the module handle (it is mapped in the child). */
static void
release_state(bool close_module)
{
	pg_regimes_release();
	pg_sessions_release();
	pg_keymemo_release();
	pg_logins_release();
	if (close_module) {
		pg_loader_close(pg_ctx.dl);
		pg_ctx.dl = NULL;
		memset(&pg_ctx.lower, 0, sizeof pg_ctx.lower);
		memset(pg_ctx.probe, 0, sizeof pg_ctx.probe);
	}
}

/* The policy's module loaded (once per process: a forked child keeps it)
 * and initialised with the application's arguments.  Context lock held. */
static CK_RV
lower_initialize(const struct pg_settings *settings, const CK_C_INITIALIZE_ARGS *lower_args)
{
	char err[768];
	CK_RV rv;

	if (pg_ctx.dl == NULL) {
		pg_ctx.dl = pg_loader_open(settings->module, &pg_ctx.lower, err, sizeof err);
		if (pg_ctx.dl == NULL) {
			pg_log("%s:%lu:%lu: %s", settings->path, settings->module_line,
			       settings->module_column, err);
			return CKR_GENERAL_ERROR;
		}
	}
	rv = pg_ctx.lower.C_Initialize((CK_VOID_PTR)lower_args);
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED && pg_ctx.forked) {
		/* The child's copy of the module still thinks it is initialised. */
		pg_ctx.lower.C_Finalize(NULL);
		rv = pg_ctx.lower.C_Initialize((CK_VOID_PTR)lower_args);
	}
	if (rv != CKR_OK)
		pg_log("module %s: C_Initialize failed: %s", settings->module,
		       pg_rv_name(rv) ? pg_rv_name(rv) : "unknown error");
	return rv;
}

/* The module initialised, its CK_INFO and the first regime (which takes
 * watch).  Context lock held; on failure the module is finalised again. */
static CK_RV
start(pg_policy *policy, const struct pg_file_version *st, struct pg_watch *watch,
      const CK_C_INITIALIZE_ARGS *lower_args)
{
	bool threads_ok = lower_args == NULL || !(lower_args->flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS);
	CK_RV rv = lower_initialize(pg_policy_settings(policy), lower_args);

	if (rv != CKR_OK) {
		pg_watch_free(watch);
		return rv;
	}
	rv = pg_ctx.lower.C_GetInfo(&pg_ctx.lower_info);
	if (rv == CKR_OK) {
		pg_ctx.regimes.current = pg_regime_new(policy, st, threads_ok, watch, NULL);
		if (pg_ctx.regimes.current == NULL)
			rv = CKR_HOST_MEMORY;
	} else {
		pg_watch_free(watch);
	}
	if (rv != CKR_OK) {
		pg_ctx.lower.C_Finalize(NULL);
		return rv;
	}
	/* Said now; every key use is refused until they are mended. */
	if (pg_ctx.regimes.current->audit == NULL)
		pg_log("%s", pg_ctx.regimes.current->audit_error);
	if (pg_ctx.regimes.current->caller == NULL)
		pg_log("%s", pg_ctx.regimes.current->caller_error);
	return CKR_OK;
}

/* Initialisation is serialised under the lock, including the wrapped
 * module's C_Initialize: no other call takes the lock for long, so nothing
 * waits on it but another C_Initialize/C_Finalize or a fork(). */
CK_RV
pg_ctx_initialize(const CK_C_INITIALIZE_ARGS *lower_args, const char *reserved_path)
{
	pg_policy *policy = NULL;
	struct pg_file_version st;
	struct pg_watch *watch;
	const char *path;
	CK_RV rv;

	pthread_once(&atfork_once, install_atfork);
	pthread_mutex_lock(&pg_ctx.lock);
	if (pg_ctx.initialized) {
		rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
		goto out;
	}
	if (pg_ctx.forked)
		release_state(false);

	path = pg_config_path(reserved_path);
	watch = pg_watch_new(path);     /* made before the file is read */
	pg_file_version_read(path, &st);
	policy = pg_config_load(path);
	if (policy == NULL) {
		pg_watch_free(watch);
		rv = CKR_GENERAL_ERROR;
		goto fail;
	}
	pg_ctx.regimes.config_path = strdup(pg_policy_settings(policy)->path);
	if (pg_ctx.regimes.config_path == NULL) {
		pg_watch_free(watch);
		rv = CKR_HOST_MEMORY;
		goto fail;
	}
	rv = start(policy, &st, watch, lower_args);
	if (rv != CKR_OK)
		goto fail;
	pg_ctx.forked = false;
	pg_ctx.initialized = true;
	atomic_store_explicit(&pg_ctx.active, &pg_ctx.lower, memory_order_release);
	goto out;

fail:
	release_state(true);
	pg_ctx.forked = false;
out:
	pthread_mutex_unlock(&pg_ctx.lock);
	pg_policy_unref(policy);
	return rv;
}

CK_RV
pg_ctx_finalize(void)
{
	CK_RV rv;

	pthread_mutex_lock(&pg_ctx.lock);
	if (!pg_ctx.initialized) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
		goto out;
	}
	atomic_store_explicit(&pg_ctx.active, NULL, memory_order_release);
	rv = pg_ctx.lower.C_Finalize(NULL);
	release_state(true);
	pg_ctx.initialized = false;
out:
	pthread_mutex_unlock(&pg_ctx.lock);
	return rv;
}

CK_RV
pg_ctx_lower_info(CK_INFO *out)
{
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&pg_ctx.lock);
	if (!pg_ctx.initialized)
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
	else
		*out = pg_ctx.lower_info;
	pthread_mutex_unlock(&pg_ctx.lock);
	return rv;
}

enum pg_support
pg_ctx_probe_support(enum pg_probe which)
{
	enum pg_support support;

	pthread_mutex_lock(&pg_ctx.lock);
	support = pg_ctx.probe[which];
	pthread_mutex_unlock(&pg_ctx.lock);
	return support;
}

void
pg_ctx_set_probe_support(enum pg_probe which, enum pg_support support)
{
	pthread_mutex_lock(&pg_ctx.lock);
	pg_ctx.probe[which] = support;
	pthread_mutex_unlock(&pg_ctx.lock);
}
