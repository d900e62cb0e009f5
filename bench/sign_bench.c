/* SPDX-License-Identifier: Apache-2.0
 *
 * The signing benchmark: the same C_SignInit + C_Sign loop against several
 * PKCS#11 modules (SoftHSM2 directly, p11gate over it), run in interleaved
 * rounds, plus the disk's append+fdatasync rate that bounds synced signing.
 *
 * Each module lives in its own child process.  Two modules in one process
 * would share one SoftHSM2 instance (the second C_Initialize answers
 * CKR_CRYPTOKI_ALREADY_INITIALIZED), and each p11gate needs its own
 * P11GATE_CONFIG.  The children stay initialised and logged in between
 * rounds and wait on a pipe while another module runs, so rounds alternate
 * without paying setup again and machine noise falls on every module alike.
 */
#include "p11gate/common.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG_BENCH_MAX_MODULES 8
#define PG_BENCH_MAX_THREADS 64
#define PG_BENCH_MAX_PROCESSES 16
#define PG_BENCH_MAX_ROUNDS 100
/* What one signature appends to the audit log: an allow record and a result
 * record (bytes, as the benchmark's policy writes them). */
#define PG_BENCH_FSYNC_DECISION 1030
#define PG_BENCH_FSYNC_RESULT 360
/* How long a child may take beyond its round before it counts as hung: a
 * deadlock in a module must end the run with a message, not stall it. */
#define PG_BENCH_GRACE_SECONDS 60.0
#define PG_BENCH_SETUP_SECONDS 120.0

enum pg_bench_key { PG_BENCH_KEY_NONE, PG_BENCH_KEY_RSA, PG_BENCH_KEY_EC };

struct pg_bench_module_spec {
	const char *path;
	const char *name;      /* shown in the report; defaults to the path */
	const char *config;    /* P11GATE_CONFIG for this module's process, or NULL */
	const char *env;       /* NAME=VALUE for this module's process (a p11-kit client's
	                          P11_KIT_SERVER_ADDRESS), or NULL */
	unsigned processes;    /* client processes signing at once, each with its own
	                          instance of the module (default 1) */
	const char *pin_file;  /* the PIN read from this file (an identity token), or NULL */
	unsigned login_every;  /* C_Logout + C_Login before every Nth signature; 0: once */
	bool logins_only;      /* log out and in, no signing: the count is of logins */
	size_t first_proc;     /* its first process among all modules' */
};

struct pg_bench_options {
	struct pg_bench_module_spec modules[PG_BENCH_MAX_MODULES];
	size_t n_modules;
	enum pg_bench_key key;
	unsigned threads;
	double seconds;        /* per module, over all its rounds */
	unsigned rounds;
	const char *pin;
	const char *token;
	const char *fsync_dir;
	bool machine;
};

/* ---- parent <-> child wire format (same binary on both ends) ---------- */

enum pg_bench_op { PG_BENCH_OP_ROUND = 1, PG_BENCH_OP_QUIT = 2 };

struct pg_bench_cmd {
	int op;
	double seconds;
};

struct pg_bench_reply {
	int ok;
	uint64_t count;
	double elapsed;
	char info[192];        /* ready reply: what the module says it is */
};

/* ---- time ------------------------------------------------------------- */

static double
pg_bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- child: one module ------------------------------------------------ */

struct pg_bench_child;

struct pg_bench_worker {
	struct pg_bench_child *child;
	unsigned index;
	CK_SESSION_HANDLE session;
	uint64_t count;
	double end;
	CK_RV rv;
	const char *failed_call;   /* NULL while every call succeeded */
};

struct pg_bench_child {
	const struct pg_bench_options *opt;
	const struct pg_bench_module_spec *spec;
	void *dl;
	CK_FUNCTION_LIST_PTR fl;
	bool initialized;
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE key;
	CK_OBJECT_HANDLE pub;      /* CK_INVALID_HANDLE if the token has none */
	CK_MECHANISM mechanism;
	char key_desc[64];
	struct pg_bench_worker workers[PG_BENCH_MAX_THREADS];
	unsigned n_sessions;
	char *pin;                 /* the PIN C_Login is given: --pin or --pin-file's */
	/* The start gate: workers wait for go, then run until deadline.  A
	 * condition variable rather than a barrier so that a failed
	 * pthread_create can release the threads already waiting (abort). */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool go;
	bool abort;
	double deadline;
};

static void
pg_bench_child_error(const struct pg_bench_child *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
pg_bench_child_error(const struct pg_bench_child *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sign_bench: module %s: ", c->spec->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static const char *
pg_bench_rv(CK_RV rv)
{
	const char *name = pg_rv_name(rv);

	return name ? name : "an unknown CKR_ value";
}

/* The data each mechanism signs: CKM_RSA_PKCS takes a DER DigestInfo
 * (SHA-256: 19-byte prefix + 32-byte digest = 51 bytes), CKM_ECDSA the bare
 * 32-byte digest.  The digest varies per signature so that no layer can
 * serve a repeat from a cache. */
static size_t
pg_bench_fill_data(enum pg_bench_key key, uint64_t counter, unsigned char *out)
{
	static const unsigned char sha256_prefix[19] = {
		0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
	};
	unsigned char *digest = out;
	size_t len = 32;

	if (key == PG_BENCH_KEY_RSA) {
		memcpy(out, sha256_prefix, sizeof(sha256_prefix));
		digest = out + sizeof(sha256_prefix);
		len += sizeof(sha256_prefix);
	}
	memset(digest, 0xa5, 32);
	memcpy(digest, &counter, sizeof(counter));
	return len;
}

/* Finds exactly one object of a class with the key's CKA_ID.  Object order
 * varies between tokens, so "the first one found" would be a guess. */
static CK_RV
pg_bench_find_one(const struct pg_bench_child *c, CK_SESSION_HANDLE session,
                  CK_OBJECT_CLASS klass, const unsigned char *id, size_t id_len,
                  CK_OBJECT_HANDLE *out, CK_ULONG *found)
{
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &klass, sizeof(klass) },
		{ CKA_ID, (void *)id, id_len },
	};
	CK_OBJECT_HANDLE handles[2];
	CK_RV rv, rv2;

	*found = 0;
	rv = c->fl->C_FindObjectsInit(session, tmpl, 2);
	if (rv != CKR_OK)
		goto out;
	rv = c->fl->C_FindObjects(session, handles, 2, found);
	rv2 = c->fl->C_FindObjectsFinal(session);
	if (rv == CKR_OK)
		rv = rv2;
	if (rv == CKR_OK && *found >= 1)
		*out = handles[0];
out:
	return rv;
}

static bool
pg_bench_find_slot(struct pg_bench_child *c)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	bool ok = false;
	unsigned matches = 0;
	CK_RV rv;

	rv = c->fl->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK) {
		pg_bench_child_error(c, "C_GetSlotList: %s", pg_bench_rv(rv));
		goto out;
	}
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		char label[sizeof(ti.label) + 1];

		if (c->fl->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		pg_fixed_to_cstr(ti.label, sizeof(ti.label), label, sizeof(label));
		if (strcmp(label, c->opt->token) == 0) {
			c->slot = slots[i];
			matches++;
		}
	}
	if (matches == 0) {
		pg_bench_child_error(c, "no token labelled \"%s\" among %lu slot(s) with a token; "
		                     "check SOFTHSM2_CONF points at the benchmark's token "
		                     "(tests/fixture/mktoken DIR makes one) or pass --token LABEL",
		                     c->opt->token, (unsigned long)n);
		goto out;
	}
	if (matches > 1) {
		pg_bench_child_error(c, "%u tokens are labelled \"%s\"; the benchmark needs exactly "
		                     "one: give the token its own SOFTHSM2_CONF", matches, c->opt->token);
		goto out;
	}
	ok = true;
out:
	return ok;
}

/* Finds the private key (and its public half, to check a signature once)
 * and describes it, e.g. "RSA-2048 (CKA_ID 01)". */
static bool
pg_bench_find_key(struct pg_bench_child *c)
{
	const unsigned char id = c->opt->key == PG_BENCH_KEY_RSA ? 0x01 : 0x02;
	const CK_KEY_TYPE want = c->opt->key == PG_BENCH_KEY_RSA ? CKK_RSA : CKK_EC;
	CK_SESSION_HANDLE s = c->workers[0].session;
	CK_KEY_TYPE type = (CK_KEY_TYPE)-1;
	CK_ATTRIBUTE attrs[] = {
		{ CKA_KEY_TYPE, &type, sizeof(type) },
		{ CKA_MODULUS, NULL, 0 },
	};
	CK_ULONG found = 0;
	bool ok = false;
	CK_RV rv;

	rv = pg_bench_find_one(c, s, CKO_PRIVATE_KEY, &id, 1, &c->key, &found);
	if (rv != CKR_OK) {
		pg_bench_child_error(c, "finding the private key: %s", pg_bench_rv(rv));
		goto out;
	}
	if (found != 1) {
		pg_bench_child_error(c, "%s private key with CKA_ID %02x on token \"%s\"; the benchmark "
		                     "expects exactly one (RSA-2048 as 01, EC P-256 as 02, as "
		                     "tests/fixture/mktoken makes them)",
		                     found == 0 ? "no" : "more than one", id, c->opt->token);
		goto out;
	}
	rv = c->fl->C_GetAttributeValue(s, c->key, attrs, want == CKK_RSA ? 2 : 1);
	if (rv != CKR_OK) {
		pg_bench_child_error(c, "reading the key's CKA_KEY_TYPE: %s", pg_bench_rv(rv));
		goto out;
	}
	if (type != want) {
		pg_bench_child_error(c, "the private key with CKA_ID %02x is not an %s key "
		                     "(CKA_KEY_TYPE 0x%lx); use --key %s for it or remake the token",
		                     id, want == CKK_RSA ? "RSA" : "EC", (unsigned long)type,
		                     type == CKK_RSA ? "rsa" : "ec");
		goto out;
	}
	if (want == CKK_RSA)
		snprintf(c->key_desc, sizeof(c->key_desc), "RSA-%lu CKM_RSA_PKCS (CKA_ID 01)",
		         (unsigned long)attrs[1].ulValueLen * 8);
	else
		snprintf(c->key_desc, sizeof(c->key_desc), "EC CKM_ECDSA (CKA_ID 02)");

	c->pub = CK_INVALID_HANDLE;
	rv = pg_bench_find_one(c, s, CKO_PUBLIC_KEY, &id, 1, &c->pub, &found);
	if (rv != CKR_OK || found != 1)
		c->pub = CK_INVALID_HANDLE;
	ok = true;
out:
	return ok;
}

/* One signature, as clients make them: C_SignInit, then C_Sign with a
 * buffer that is large enough (no length query). */
static CK_RV
pg_bench_sign_once(const struct pg_bench_child *c, CK_SESSION_HANDLE s,
                   unsigned char *data, size_t data_len,
                   unsigned char *sig, CK_ULONG *sig_len, const char **failed_call)
{
	CK_RV rv;

	rv = c->fl->C_SignInit(s, (CK_MECHANISM_PTR)&c->mechanism, c->key);
	if (rv != CKR_OK) {
		*failed_call = "C_SignInit";
		goto out;
	}
	rv = c->fl->C_Sign(s, data, data_len, sig, sig_len);
	if (rv != CKR_OK)
		*failed_call = "C_Sign";
out:
	return rv;
}

static const char *
pg_bench_hint(CK_RV rv)
{
	switch (rv) {
	case CKR_FUNCTION_REJECTED:
		return "; p11gate refused it: its policy (P11GATE_CONFIG) must allow sign with "
		       "this key for this user";
	case CKR_FUNCTION_FAILED:
		return "; if this is p11gate, it could not write its audit record: check the "
		       "audit file's directory and free space";
	case CKR_USER_NOT_LOGGED_IN:
		return "; the session is not logged in: check --pin";
	default:
		return "";
	}
}

static void
pg_bench_report_call(const struct pg_bench_child *c, unsigned thread,
                     const char *call, CK_RV rv)
{
	pg_bench_child_error(c, "thread %u: %s: %s%s", thread, call, pg_bench_rv(rv),
	                     pg_bench_hint(rv));
}

/* Signs once on every session before any timing, and verifies one of the
 * signatures with the public key: a benchmark of failing or garbage
 * signatures would be worse than none. */
static bool
pg_bench_warm_up(struct pg_bench_child *c)
{
	unsigned char data[64], sig[512];
	CK_ULONG sig_len = 0;
	size_t data_len = 0;
	const char *failed = NULL;
	bool ok = false;
	CK_RV rv;

	for (unsigned i = 0; i < c->n_sessions; i++) {
		data_len = pg_bench_fill_data(c->opt->key, i, data);
		sig_len = sizeof(sig);
		rv = pg_bench_sign_once(c, c->workers[i].session, data, data_len, sig, &sig_len,
		                        &failed);
		if (rv != CKR_OK) {
			pg_bench_report_call(c, i, failed, rv);
			goto out;
		}
	}
	if (c->pub == CK_INVALID_HANDLE) {
		fprintf(stderr, "sign_bench: module %s: no public key with the same CKA_ID; "
		        "signatures are not verified\n", c->spec->name);
	} else {
		CK_SESSION_HANDLE s = c->workers[0].session;

		rv = c->fl->C_VerifyInit(s, &c->mechanism, c->pub);
		if (rv == CKR_OK)
			rv = c->fl->C_Verify(s, data, data_len, sig, sig_len);
		if (rv != CKR_OK) {
			pg_bench_child_error(c, "the warm-up signature does not verify with the "
			                     "public key (%s): the module returns bad signatures",
			                     pg_bench_rv(rv));
			goto out;
		}
	}
	ok = true;
out:
	return ok;
}

/* The PIN: --pin-file's first line (an identity token of about 1 KB), or
 * --pin. */
static bool
pg_bench_read_pin(struct pg_bench_child *c)
{
	FILE *f = NULL;
	size_t cap = 0;
	ssize_t n;
	bool ok = false;

	if (c->spec->pin_file == NULL) {
		c->pin = strdup(c->opt->pin);
		ok = c->pin != NULL;
		goto out;
	}
	f = fopen(c->spec->pin_file, "r");
	if (f == NULL || (n = getline(&c->pin, &cap, f)) <= 0) {
		pg_bench_child_error(c, "cannot read --pin-file %s: %s", c->spec->pin_file,
		                     f == NULL ? strerror(errno) : "empty");
		goto out;
	}
	while (n > 0 && (c->pin[n - 1] == '\n' || c->pin[n - 1] == '\r'))
		c->pin[--n] = '\0';
	ok = true;
out:
	if (f != NULL)
		fclose(f);
	return ok;
}

/* Log out and in again, as a pipeline with a fresh identity token does:
 * through p11gate with a login: block, the token is verified each time. */
static CK_RV
pg_bench_relogin(struct pg_bench_worker *w)
{
	struct pg_bench_child *c = w->child;
	CK_RV rv;

	rv = c->fl->C_Logout(w->session);
	if (rv != CKR_OK) {
		w->failed_call = "C_Logout";
		return rv;
	}
	rv = c->fl->C_Login(w->session, CKU_USER, (CK_UTF8CHAR_PTR)c->pin, strlen(c->pin));
	if (rv != CKR_OK) {
		w->failed_call = "C_Login";
		return rv;
	}
	/* A private key's handle does not outlive the logout (SoftHSM2 forgets
	 * it): find it again, as a client that logs in does. */
	if (!c->spec->logins_only && !pg_bench_find_key(c)) {
		w->failed_call = "finding the key after C_Login";
		return CKR_GENERAL_ERROR;
	}
	return CKR_OK;
}

static bool
pg_bench_child_setup(struct pg_bench_child *c, char *info, size_t info_len)
{
	CK_C_INITIALIZE_ARGS init = { .flags = CKF_OS_LOCKING_OK };
	CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR) = NULL;
	const unsigned threads = c->opt->threads;
	CK_INFO mi;
	char manufacturer[sizeof(mi.manufacturerID) + 1];
	char description[sizeof(mi.libraryDescription) + 1];
	bool ok = false;
	CK_RV rv;

	if (c->spec->config && setenv("P11GATE_CONFIG", c->spec->config, 1) != 0) {
		pg_bench_child_error(c, "setenv P11GATE_CONFIG: %s", strerror(errno));
		goto out;
	}
	if (c->spec->env && putenv((char *)c->spec->env) != 0) {
		pg_bench_child_error(c, "putenv %s: %s", c->spec->env, strerror(errno));
		goto out;
	}
	c->dl = dlopen(c->spec->path, RTLD_NOW | RTLD_LOCAL);
	if (!c->dl) {
		pg_bench_child_error(c, "cannot load %s: %s; build it first or fix --module",
		                     c->spec->path, dlerror());
		goto out;
	}
	*(void **)&get_list = dlsym(c->dl, "C_GetFunctionList");
	if (!get_list) {
		pg_bench_child_error(c, "%s has no C_GetFunctionList: not a PKCS#11 module",
		                     c->spec->path);
		goto out;
	}
	rv = get_list(&c->fl);
	if (rv != CKR_OK || !c->fl) {
		pg_bench_child_error(c, "C_GetFunctionList: %s", pg_bench_rv(rv));
		goto out;
	}
	rv = c->fl->C_Initialize(&init);
	if (rv != CKR_OK) {
		pg_bench_child_error(c, "C_Initialize: %s%s", pg_bench_rv(rv),
		                     c->spec->config ? " (the module's own message, if any, "
		                     "is above)" : "");
		goto out;
	}
	c->initialized = true;
	rv = c->fl->C_GetInfo(&mi);
	if (rv != CKR_OK) {
		pg_bench_child_error(c, "C_GetInfo: %s", pg_bench_rv(rv));
		goto out;
	}
	pg_fixed_to_cstr(mi.manufacturerID, sizeof(mi.manufacturerID),
	                 manufacturer, sizeof(manufacturer));
	pg_fixed_to_cstr(mi.libraryDescription, sizeof(mi.libraryDescription),
	                 description, sizeof(description));
	if (!pg_bench_find_slot(c))
		goto out;

	for (unsigned i = 0; i < threads; i++) {
		c->workers[i].child = c;
		c->workers[i].index = i;
		rv = c->fl->C_OpenSession(c->slot, CKF_SERIAL_SESSION, NULL, NULL,
		                          &c->workers[i].session);
		if (rv != CKR_OK) {
			pg_bench_child_error(c, "C_OpenSession (session %u of %u): %s", i + 1,
			                     threads, pg_bench_rv(rv));
			goto out;
		}
		c->n_sessions++;
	}
	if (!pg_bench_read_pin(c))
		goto out;
	/* Login is per application, not per session: once covers every thread. */
	rv = c->fl->C_Login(c->workers[0].session, CKU_USER, (CK_UTF8CHAR_PTR)c->pin,
	                    strlen(c->pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		pg_bench_child_error(c, "C_Login: %s; pass the token's user PIN with --pin "
		                     "(or --pin-file)", pg_bench_rv(rv));
		goto out;
	}
	if (!pg_bench_find_key(c))
		goto out;
	if (!pg_bench_warm_up(c))
		goto out;
	snprintf(info, info_len, "%s / %s %u.%u, %s", manufacturer, description,
	         mi.libraryVersion.major, mi.libraryVersion.minor, c->key_desc);
	ok = true;
out:
	return ok;
}

static void
pg_bench_child_teardown(struct pg_bench_child *c)
{
	/* Finalize explicitly: SoftHSM2 and OpenSSL can crash at exit when their
	 * cleanups run without it (see FIELD-NOTES). */
	if (c->initialized) {
		if (c->n_sessions > 0)
			c->fl->C_CloseAllSessions(c->slot);
		c->fl->C_Finalize(NULL);
	}
	if (c->dl)
		dlclose(c->dl);
	free(c->pin);
}

static void *
pg_bench_worker_run(void *arg)
{
	struct pg_bench_worker *w = arg;
	struct pg_bench_child *c = w->child;
	unsigned char data[64], sig[512];
	bool abort_now;
	double deadline;
	uint64_t counter = (uint64_t)w->index << 48;

	pthread_mutex_lock(&c->lock);
	while (!c->go)
		pthread_cond_wait(&c->cond, &c->lock);
	abort_now = c->abort;
	deadline = c->deadline;
	pthread_mutex_unlock(&c->lock);

	while (!abort_now && pg_bench_now() < deadline) {
		size_t data_len;
		CK_ULONG sig_len = sizeof(sig);

		if (c->spec->logins_only ||
		    (c->spec->login_every > 0 && w->count % c->spec->login_every == 0)) {
			w->rv = pg_bench_relogin(w);
			if (w->rv != CKR_OK)
				break;
			if (c->spec->logins_only) {
				w->count++;
				continue;
			}
		}
		data_len = pg_bench_fill_data(c->opt->key, counter++, data);
		w->rv = pg_bench_sign_once(c, w->session, data, data_len, sig, &sig_len,
		                           &w->failed_call);
		if (w->rv != CKR_OK)
			break;
		w->count++;
	}
	w->end = pg_bench_now();
	return NULL;
}

/* Runs every worker for `seconds`; the count and the time from the start
 * until the last thread's last signature ended. */
static bool
pg_bench_child_round(struct pg_bench_child *c, double seconds, struct pg_bench_reply *reply)
{
	pthread_t tids[PG_BENCH_MAX_THREADS];
	unsigned started = 0;
	double start, last_end;
	bool ok = false;
	int err = 0;

	c->go = false;
	c->abort = false;
	for (unsigned i = 0; i < c->n_sessions; i++) {
		struct pg_bench_worker *w = &c->workers[i];

		w->count = 0;
		w->rv = CKR_OK;
		w->failed_call = NULL;
		err = pthread_create(&tids[i], NULL, pg_bench_worker_run, w);
		if (err != 0)
			break;
		started++;
	}
	pthread_mutex_lock(&c->lock);
	start = pg_bench_now();
	c->deadline = start + seconds;
	c->abort = err != 0;
	c->go = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);

	last_end = start;
	reply->count = 0;
	for (unsigned i = 0; i < started; i++) {
		pthread_join(tids[i], NULL);
		reply->count += c->workers[i].count;
		if (c->workers[i].end > last_end)
			last_end = c->workers[i].end;
	}
	if (err != 0) {
		pg_bench_child_error(c, "pthread_create: %s", strerror(err));
		goto out;
	}
	for (unsigned i = 0; i < started; i++) {
		if (c->workers[i].failed_call) {
			pg_bench_report_call(c, i, c->workers[i].failed_call, c->workers[i].rv);
			goto out;
		}
	}
	reply->elapsed = last_end - start;
	ok = true;
out:
	return ok;
}

static bool
pg_bench_read_full(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool
pg_bench_write_full(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Commands go out whole, padding zeroed. */
static bool
pg_bench_send(int fd, enum pg_bench_op op, double seconds)
{
	struct pg_bench_cmd cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.op = op;
	cmd.seconds = seconds;
	return pg_bench_write_full(fd, &cmd, sizeof(cmd));
}

/* The child's whole life: set up, answer rounds until told to quit (or the
 * parent goes away), tear down.  Returns the exit status. */
static int
pg_bench_child_main(const struct pg_bench_options *opt, const struct pg_bench_module_spec *spec,
                    int cmd_fd, int reply_fd)
{
	struct pg_bench_child *c = calloc(1, sizeof(*c));
	struct pg_bench_reply reply;
	struct pg_bench_cmd cmd;
	int status = 1;

	if (!c) {
		fprintf(stderr, "sign_bench: module %s: out of memory\n", spec->name);
		return 1;
	}
	memset(&reply, 0, sizeof(reply));
	c->opt = opt;
	c->spec = spec;
	c->mechanism.mechanism = opt->key == PG_BENCH_KEY_RSA ? CKM_RSA_PKCS : CKM_ECDSA;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);

	reply.ok = pg_bench_child_setup(c, reply.info, sizeof(reply.info));
	if (!pg_bench_write_full(reply_fd, &reply, sizeof(reply)) || !reply.ok)
		goto out;
	while (pg_bench_read_full(cmd_fd, &cmd, sizeof(cmd)) && cmd.op == PG_BENCH_OP_ROUND) {
		memset(&reply, 0, sizeof(reply));
		reply.ok = pg_bench_child_round(c, cmd.seconds, &reply);
		if (!pg_bench_write_full(reply_fd, &reply, sizeof(reply)) || !reply.ok)
			goto out;
	}
	status = 0;
out:
	pg_bench_child_teardown(c);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return status;
}

/* ---- the disk's bound ------------------------------------------------- */

/* A scratch file opened the way an audit log is (append-only) in the
 * directory whose disk is measured. */
struct pg_bench_fsync {
	char path[4096];
	int fd;
};

static bool
pg_bench_fsync_open(struct pg_bench_fsync *f, const char *dir)
{
	int tmp = -1;
	bool ok = false;

	f->fd = -1;
	f->path[0] = '\0';
	if ((size_t)snprintf(f->path, sizeof(f->path), "%s/sign_bench-fsync-XXXXXX", dir) >=
	    sizeof(f->path)) {
		fprintf(stderr, "sign_bench: --fsync-rate %s: path too long\n", dir);
		f->path[0] = '\0';
		goto out;
	}
	tmp = mkstemp(f->path);
	if (tmp < 0) {
		fprintf(stderr, "sign_bench: --fsync-rate %s: cannot create a file there (%s); "
		        "give a writable directory on the disk to measure\n", dir, strerror(errno));
		f->path[0] = '\0';
		goto out;
	}
	f->fd = open(f->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (f->fd < 0) {
		fprintf(stderr, "sign_bench: %s: %s\n", f->path, strerror(errno));
		goto out;
	}
	ok = true;
out:
	if (tmp >= 0)
		close(tmp);
	return ok;
}

static void
pg_bench_fsync_close(struct pg_bench_fsync *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (f->path[0])
		unlink(f->path);
	f->path[0] = '\0';
}

/* How many times per second the disk makes one signature's audit bytes
 * durable (an allow and a result record appended, then fdatasync), over
 * `seconds`: with one fsync per signature, synced signing on one thread
 * can go no faster. */
static bool
pg_bench_fsync_run(const struct pg_bench_fsync *f, double seconds, double *rate)
{
	char decision[PG_BENCH_FSYNC_DECISION], result[PG_BENCH_FSYNC_RESULT];
	uint64_t count = 0;
	double start, end, deadline;

	memset(decision, 'x', sizeof(decision) - 1);
	decision[sizeof(decision) - 1] = '\n';
	memset(result, 'y', sizeof(result) - 1);
	result[sizeof(result) - 1] = '\n';
	start = pg_bench_now();
	deadline = start + seconds;
	do {
		if (!pg_bench_write_full(f->fd, decision, sizeof(decision)) ||
		    !pg_bench_write_full(f->fd, result, sizeof(result)) || fdatasync(f->fd) != 0) {
			fprintf(stderr, "sign_bench: writing %s: %s\n", f->path, strerror(errno));
			return false;
		}
		count++;
		end = pg_bench_now();
	} while (end < deadline);
	*rate = (double)count / (end - start);
	return true;
}

static void
pg_bench_fsync_print(const struct pg_bench_options *opt, double rate, double lo, double hi)
{
	if (opt->machine)
		printf("fsync\t%.1f\t%.1f\n", rate, 1e6 / rate);
	else
		printf("  %-24s %10.1f %10.1f %10.1f  (%.0f us each, in %s)\n", "fsync (a signature's records)",
		       rate, lo, hi, 1e6 / rate, opt->fsync_dir);
}

/* --fsync-rate alone: one measurement over --seconds. */
static int
pg_bench_fsync_only(const struct pg_bench_options *opt)
{
	struct pg_bench_fsync f;
	double rate = 0;
	int result = 1;

	if (!pg_bench_fsync_open(&f, opt->fsync_dir))
		goto out;
	if (!pg_bench_fsync_run(&f, opt->seconds, &rate))
		goto out;
	if (opt->machine)
		pg_bench_fsync_print(opt, rate, rate, rate);
	else
		printf("fsync: %.0f (2 appends + fdatasync)/s in %s (%.0f us each)\n", rate,
		       opt->fsync_dir, 1e6 / rate);
	result = 0;
out:
	pg_bench_fsync_close(&f);
	return result;
}

/* ---- parent ----------------------------------------------------------- */

struct pg_bench_proc {
	pid_t pid;
	int cmd_fd;            /* parent writes commands */
	int reply_fd;          /* parent reads replies */
	char info[192];
};

/* One module's figures over all its processes. */
struct pg_bench_result {
	double rates[PG_BENCH_MAX_ROUNDS];
	uint64_t signatures;   /* every C_Sign that returned CKR_OK, warm-up included */
};

/* Process idx (of all modules' processes) runs module `module`. */
static bool
pg_bench_spawn(const struct pg_bench_options *opt, struct pg_bench_proc *procs, size_t idx,
               size_t module)
{
	int to_child[2] = { -1, -1 }, to_parent[2] = { -1, -1 };
	bool ok = false;
	pid_t pid;

	if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(to_parent, O_CLOEXEC) != 0) {
		fprintf(stderr, "sign_bench: pipe: %s\n", strerror(errno));
		goto out;
	}
	/* Nothing buffered may be written twice by a child. */
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "sign_bench: fork: %s\n", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		/* The child keeps only its own two ends; the earlier children's
		 * pipes must close in it, or a dead sibling would never read EOF. */
		for (size_t i = 0; i < idx; i++) {
			close(procs[i].cmd_fd);
			close(procs[i].reply_fd);
		}
		close(to_child[1]);
		close(to_parent[0]);
		_exit(pg_bench_child_main(opt, &opt->modules[module], to_child[0], to_parent[1]));
	}
	procs[idx].pid = pid;
	procs[idx].cmd_fd = to_child[1];
	procs[idx].reply_fd = to_parent[0];
	close(to_child[0]);
	close(to_parent[1]);
	to_child[1] = to_parent[0] = to_child[0] = to_parent[1] = -1;
	ok = true;
out:
	if (!ok) {
		for (int i = 0; i < 2; i++) {
			if (to_child[i] >= 0)
				close(to_child[i]);
			if (to_parent[i] >= 0)
				close(to_parent[i]);
		}
	}
	return ok;
}

/* Waits for one reply, at most `timeout` seconds. */
static bool
pg_bench_await(const struct pg_bench_options *opt, size_t idx, struct pg_bench_proc *p,
               double timeout, struct pg_bench_reply *reply)
{
	struct pollfd pfd = { .fd = p->reply_fd, .events = POLLIN };
	int n;

	do
		n = poll(&pfd, 1, (int)(timeout * 1000));
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		fprintf(stderr, "sign_bench: module %s did not answer within %.0f s: it hangs "
		        "(deadlock?); stopping it\n", opt->modules[idx].name, timeout);
		kill(p->pid, SIGKILL);
		return false;
	}
	if (n < 0 || !pg_bench_read_full(p->reply_fd, reply, sizeof(*reply))) {
		fprintf(stderr, "sign_bench: module %s stopped (see its message above)\n",
		        opt->modules[idx].name);
		return false;
	}
	return reply->ok != 0;
}

/* Ends every child still running: closing the command pipe makes an idle
 * child finalize its module and exit. */
static int
pg_bench_reap(struct pg_bench_proc *procs, size_t n)
{
	int result = 0;

	for (size_t i = 0; i < n; i++) {
		if (procs[i].cmd_fd >= 0) {
			(void)pg_bench_send(procs[i].cmd_fd, PG_BENCH_OP_QUIT, 0);
			close(procs[i].cmd_fd);
			procs[i].cmd_fd = -1;
		}
	}
	for (size_t i = 0; i < n; i++) {
		int status = 0;

		if (procs[i].reply_fd >= 0)
			close(procs[i].reply_fd);
		procs[i].reply_fd = -1;
		if (procs[i].pid > 0 && waitpid(procs[i].pid, &status, 0) == procs[i].pid &&
		    !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
			if (WIFSIGNALED(status))
				fprintf(stderr, "sign_bench: a module process died of signal %d (%s)\n",
				        WTERMSIG(status), strsignal(WTERMSIG(status)));
			result = 1;
		}
		procs[i].pid = -1;
	}
	return result;
}

static int
pg_bench_cmp_double(const void *a, const void *b)
{
	const double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of n values; min and max may be NULL. */
static double
pg_bench_median(const double *values, unsigned n, double *min, double *max)
{
	double sorted[PG_BENCH_MAX_ROUNDS];

	memcpy(sorted, values, n * sizeof(*values));
	qsort(sorted, n, sizeof(*sorted), pg_bench_cmp_double);
	if (min)
		*min = sorted[0];
	if (max)
		*max = sorted[n - 1];
	return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/* One round of module m: all its processes sign at once.  The rate is the
 * signatures of all of them over the longest one's time. */
static bool
pg_bench_module_round(const struct pg_bench_options *opt, struct pg_bench_proc *procs, size_t m,
                      double seconds, struct pg_bench_result *result, unsigned round)
{
	const unsigned n = opt->modules[m].processes;
	struct pg_bench_proc *p = &procs[opt->modules[m].first_proc];
	double elapsed = 0;
	uint64_t count = 0;

	for (unsigned k = 0; k < n; k++) {
		if (!pg_bench_send(p[k].cmd_fd, PG_BENCH_OP_ROUND, seconds)) {
			fprintf(stderr, "sign_bench: module %s stopped (see its message above)\n",
			        opt->modules[m].name);
			return false;
		}
	}
	for (unsigned k = 0; k < n; k++) {
		struct pg_bench_reply reply;

		if (!pg_bench_await(opt, m, &p[k], seconds + PG_BENCH_GRACE_SECONDS, &reply))
			return false;
		count += reply.count;
		if (reply.elapsed > elapsed)
			elapsed = reply.elapsed;
	}
	result->rates[round] = elapsed > 0 ? (double)count / elapsed : 0;
	result->signatures += count;
	return true;
}

/* The signing run.  With --fsync-rate too, the disk is measured as one
 * more contestant in every round, so it sees the same noise as the modules. */
static int
pg_bench_sign(const struct pg_bench_options *opt)
{
	struct pg_bench_proc procs[PG_BENCH_MAX_MODULES * PG_BENCH_MAX_PROCESSES];
	struct pg_bench_result results[PG_BENCH_MAX_MODULES];
	struct pg_bench_fsync disk = { .fd = -1 };
	double disk_rates[PG_BENCH_MAX_ROUNDS];
	const double round_seconds = opt->seconds / opt->rounds;
	const size_t slots = opt->n_modules + (opt->fsync_dir ? 1 : 0);
	size_t n_procs = 0, spawned = 0, m = 0;
	int result = 1;

	memset(results, 0, sizeof(results));
	for (size_t i = 0; i < opt->n_modules; i++)
		n_procs += opt->modules[i].processes;
	/* One process's setup at a time.  SoftHSM2 2.6.1 rewrites token.object
	 * in place on C_Login; another process initialising at that moment reads
	 * it half-written and sees no token labelled "release" (reproduced: 16 of
	 * 30 runs with four processes set up at once). */
	for (size_t i = 0; i < n_procs; i++) {
		struct pg_bench_reply reply;

		if (i == opt->modules[m].first_proc + opt->modules[m].processes)
			m++;
		procs[i] = (struct pg_bench_proc){ .pid = -1, .cmd_fd = -1, .reply_fd = -1 };
		if (!pg_bench_spawn(opt, procs, i, m))
			goto out;
		spawned++;
		if (!pg_bench_await(opt, m, &procs[i], PG_BENCH_SETUP_SECONDS, &reply))
			goto out;
		results[m].signatures += opt->threads;    /* the warm-up: one per session */
		memcpy(procs[i].info, reply.info, sizeof(procs[i].info));
		procs[i].info[sizeof(procs[i].info) - 1] = '\0';
	}
	if (opt->fsync_dir && !pg_bench_fsync_open(&disk, opt->fsync_dir))
		goto out;
	if (!opt->machine)
		printf("sign_bench: %u thread(s) per process, %u rounds of %.2f s per module, "
		       "interleaved\n", opt->threads, opt->rounds, round_seconds);
	for (size_t i = 0; i < opt->n_modules; i++) {
		const struct pg_bench_module_spec *spec = &opt->modules[i];

		if (opt->machine)
			printf("info\t%s\t%s\n", spec->name, procs[spec->first_proc].info);
		else
			printf("  module %zu: %s (%u process%s): %s\n", i + 1, spec->name,
			       spec->processes, spec->processes == 1 ? "" : "es",
			       procs[spec->first_proc].info);
	}
	fflush(stdout);
	/* Alternate the order every round (ABC CBA ABC ...) so that neither
	 * module always runs straight after the idle parent or the other. */
	for (unsigned r = 0; r < opt->rounds; r++) {
		for (size_t k = 0; k < slots; k++) {
			const size_t i = r % 2 ? slots - 1 - k : k;

			if (i == opt->n_modules) {
				if (!pg_bench_fsync_run(&disk, round_seconds, &disk_rates[r]))
					goto out;
			} else if (!pg_bench_module_round(opt, procs, i, round_seconds, &results[i], r)) {
				goto out;
			}
		}
	}
	if (!opt->machine)
		printf("  %-24s %10s %10s %10s %9s\n", "module", "median/s", "min/s", "max/s",
		       "vs first");
	/* The ratio is the median of the per-round ratios, not the ratio of the
	 * medians: a module is compared with the first one with as many
	 * processes, in the same round, run moments apart, so slow drifts in the
	 * machine's load cancel. */
	for (size_t i = 0; i < opt->n_modules; i++) {
		double lo, hi, median = pg_bench_median(results[i].rates, opt->rounds, &lo, &hi);
		double ratios[PG_BENCH_MAX_ROUNDS], ratio;
		size_t ref = 0;

		while (opt->modules[ref].processes != opt->modules[i].processes)
			ref++;
		for (unsigned r = 0; r < opt->rounds; r++)
			ratios[r] = results[ref].rates[r] > 0 ? results[i].rates[r] / results[ref].rates[r] : 0;
		ratio = pg_bench_median(ratios, opt->rounds, NULL, NULL);
		if (opt->machine) {
			printf("module\t%s\t%.1f\t%.1f\t%.1f\t%.4f\t%" PRIu64 "\n",
			       opt->modules[i].name, median, lo, hi, ratio, results[i].signatures);
			printf("rounds\t%s", opt->modules[i].name);
			for (unsigned r = 0; r < opt->rounds; r++)
				printf("\t%.1f", results[i].rates[r]);
			printf("\n");
		} else
			printf("  %-24s %10.1f %10.1f %10.1f %8.1f%%\n", opt->modules[i].name,
			       median, lo, hi, 100 * ratio);
	}
	if (opt->fsync_dir) {
		double lo, hi, median = pg_bench_median(disk_rates, opt->rounds, &lo, &hi);

		pg_bench_fsync_print(opt, median, lo, hi);
	}
	result = 0;
out:
	pg_bench_fsync_close(&disk);
	if (pg_bench_reap(procs, spawned) != 0)
		result = 1;
	return result;
}

/* ---- options ---------------------------------------------------------- */

static void
pg_bench_usage(FILE *to)
{
	fprintf(to,
	        "Usage: sign_bench --module PATH [--name NAME] [--config FILE] [--env NAME=VALUE]\n"
	        "                  [--processes P] [--pin-file FILE] [--login-every N]\n"
	        "                  [--logins-only] [--module PATH ...] --key rsa|ec\n"
	        "                  [--threads N] [--seconds S] [--rounds R] [--pin PIN]\n"
	        "                  [--token LABEL] [--machine]\n"
	        "       sign_bench --fsync-rate DIR [--seconds S] [--machine]\n"
	        "\n"
	        "Signs in a loop (C_SignInit + C_Sign; CKM_RSA_PKCS over a SHA-256 DigestInfo\n"
	        "with the key CKA_ID 01, or CKM_ECDSA over a 32-byte digest with CKA_ID 02)\n"
	        "through each module in turn, in R interleaved rounds of S/R seconds, and\n"
	        "prints each module's median round in signatures/s and its ratio to the first\n"
	        "(with as many processes).\n"
	        "\n"
	        "  --module PATH    a PKCS#11 module (up to %d); each runs in its own process(es)\n"
	        "  --name NAME      label for the module given just before (default: its path)\n"
	        "  --config FILE    P11GATE_CONFIG for the module given just before\n"
	        "  --env NAME=VALUE an environment variable for the module given just before\n"
	        "  --key rsa|ec     which fixture key to sign with\n"
	        "  --threads N      signing threads per process, one session each (default 1)\n"
	        "  --pin-file FILE  the PIN for the module given just before, from FILE's first\n"
	        "                   line (an identity token through a login: block)\n"
	        "  --login-every N  for the module given just before: C_Logout + C_Login\n"
	        "                   before every Nth signature (default: log in once; needs\n"
	        "                   --threads 1, as login state is the application's)\n"
	        "  --logins-only    for the module given just before: log out and in, never\n"
	        "                   sign; its figures are logins/s\n"
	        "  --processes P    processes for the module given just before, signing at\n"
	        "                   once, each with its own instance of it (a p11-kit client:\n"
	        "                   its own connection); a round's rate is all of theirs\n"
	        "                   (default 1); ratios compare modules with as many\n"""
	        "                   processes\n"
	        "  --seconds S      seconds per module over all rounds (default 6)\n"
	        "  --rounds R       rounds (default 6)\n"
	        "  --pin PIN        the token's user PIN (default 1234, the fixture's)\n"
	        "  --token LABEL    the token's label (default release)\n"
	        "  --fsync-rate DIR measure how many signatures' audit bytes (an allow and a\n"
	        "                   result record, O_APPEND, then fdatasync) DIR makes\n"
	        "                   durable per second; with modules, as one more\n"
	        "                   contestant in every round\n"
	        "  --machine        tab-separated lines: info NAME DESCRIPTION,\n"
	        "                   module NAME MEDIAN MIN MAX RATIO SIGNATURES (all made,\n"
	        "                   warm-up included), rounds NAME RATE..., fsync RATE\n"
	        "                   MICROSECONDS\n",
	        PG_BENCH_MAX_MODULES);
}

static bool
pg_bench_parse_unsigned(const char *opt, const char *arg, unsigned lo, unsigned hi,
                        unsigned *out)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < lo || v > hi) {
		fprintf(stderr, "sign_bench: %s %s: give a whole number from %u to %u\n",
		        opt, arg, lo, hi);
		return false;
	}
	*out = (unsigned)v;
	return true;
}

/* 0 to run, 1 after --help, -1 on a usage error (already reported). */
static int
pg_bench_parse(int argc, char **argv, struct pg_bench_options *opt)
{
	enum { OPT_NAME = 256, OPT_CONFIG, OPT_ENV, OPT_PROCESSES, OPT_ROUNDS, OPT_PIN, OPT_TOKEN, OPT_FSYNC, OPT_MACHINE,
	       OPT_PIN_FILE, OPT_LOGIN_EVERY, OPT_LOGINS_ONLY };
	static const struct option longopts[] = {
		{ "module", required_argument, NULL, 'm' },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "env", required_argument, NULL, OPT_ENV },
		{ "key", required_argument, NULL, 'k' },
		{ "threads", required_argument, NULL, 't' },
		{ "processes", required_argument, NULL, OPT_PROCESSES },
		{ "pin-file", required_argument, NULL, OPT_PIN_FILE },
		{ "login-every", required_argument, NULL, OPT_LOGIN_EVERY },
		{ "logins-only", no_argument, NULL, OPT_LOGINS_ONLY },
		{ "seconds", required_argument, NULL, 's' },
		{ "rounds", required_argument, NULL, OPT_ROUNDS },
		{ "pin", required_argument, NULL, OPT_PIN },
		{ "token", required_argument, NULL, OPT_TOKEN },
		{ "fsync-rate", required_argument, NULL, OPT_FSYNC },
		{ "machine", no_argument, NULL, OPT_MACHINE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct pg_bench_module_spec *last = NULL;
	char *end = NULL;
	int ch;

	*opt = (struct pg_bench_options){
		.threads = 1, .seconds = 6, .rounds = 6, .pin = "1234", .token = "release",
	};
	while ((ch = getopt_long(argc, argv, "m:k:t:s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			if (opt->n_modules == PG_BENCH_MAX_MODULES) {
				fprintf(stderr, "sign_bench: at most %d --module options\n",
				        PG_BENCH_MAX_MODULES);
				return -1;
			}
			last = &opt->modules[opt->n_modules++];
			last->path = optarg;
			last->name = optarg;
			last->processes = 1;
			break;
		case OPT_NAME:
		case OPT_CONFIG:
		case OPT_ENV:
		case OPT_PROCESSES:
		case OPT_PIN_FILE:
		case OPT_LOGIN_EVERY:
		case OPT_LOGINS_ONLY:
			if (!last) {
				fprintf(stderr, "sign_bench: --%s applies to the --module before it; "
				        "put it after one\n", argv[optind - 1] + 2);
				return -1;
			}
			if (ch == OPT_PIN_FILE || ch == OPT_LOGINS_ONLY) {
				last->pin_file = ch == OPT_PIN_FILE ? optarg : last->pin_file;
				last->logins_only = last->logins_only || ch == OPT_LOGINS_ONLY;
				break;
			}
			if (ch == OPT_LOGIN_EVERY) {
				if (!pg_bench_parse_unsigned("--login-every", optarg, 1, 1000000,
				                             &last->login_every))
					return -1;
				break;
			}
			if (ch == OPT_ENV && strchr(optarg, '=') == NULL) {
				fprintf(stderr, "sign_bench: --env takes NAME=VALUE\n");
				return -1;
			}
			if (ch == OPT_PROCESSES) {
				if (!pg_bench_parse_unsigned("--processes", optarg, 1,
				                             PG_BENCH_MAX_PROCESSES, &last->processes))
					return -1;
			} else if (ch == OPT_NAME)
				last->name = optarg;
			else if (ch == OPT_CONFIG)
				last->config = optarg;
			else
				last->env = optarg;
			break;
		case 'k':
			if (strcmp(optarg, "rsa") == 0) {
				opt->key = PG_BENCH_KEY_RSA;
			} else if (strcmp(optarg, "ec") == 0) {
				opt->key = PG_BENCH_KEY_EC;
			} else {
				fprintf(stderr, "sign_bench: --key %s: give rsa or ec\n", optarg);
				return -1;
			}
			break;
		case 't':
			if (!pg_bench_parse_unsigned("--threads", optarg, 1, PG_BENCH_MAX_THREADS,
			                             &opt->threads))
				return -1;
			break;
		case 's':
			errno = 0;
			opt->seconds = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(opt->seconds) ||
			    opt->seconds <= 0 || opt->seconds > 86400) {
				fprintf(stderr, "sign_bench: --seconds %s: give a number of seconds "
				        "above 0 (e.g. 6 or 0.5)\n", optarg);
				return -1;
			}
			break;
		case OPT_ROUNDS:
			if (!pg_bench_parse_unsigned("--rounds", optarg, 1, PG_BENCH_MAX_ROUNDS,
			                             &opt->rounds))
				return -1;
			break;
		case OPT_PIN:
			opt->pin = optarg;
			break;
		case OPT_TOKEN:
			opt->token = optarg;
			break;
		case OPT_FSYNC:
			opt->fsync_dir = optarg;
			break;
		case OPT_MACHINE:
			opt->machine = true;
			break;
		case 'h':
			pg_bench_usage(stdout);
			return 1;
		default:
			fprintf(stderr, "Try 'sign_bench --help'.\n");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sign_bench: unexpected argument '%s'; try 'sign_bench --help'\n",
		        argv[optind]);
		return -1;
	}
	if (opt->n_modules == 0 && !opt->fsync_dir) {
		fprintf(stderr, "sign_bench: nothing to measure: give --module PATH (and --key) "
		        "or --fsync-rate DIR; try 'sign_bench --help'\n");
		return -1;
	}
	for (size_t i = 0, first = 0; i < opt->n_modules; i++) {
		opt->modules[i].first_proc = first;
		first += opt->modules[i].processes;
	}
	for (size_t i = 0; i < opt->n_modules; i++) {
		if ((opt->modules[i].login_every > 0 || opt->modules[i].logins_only) &&
		    opt->threads != 1) {
			fprintf(stderr, "sign_bench: --login-every and --logins-only need --threads 1: "
			        "logging out logs out every session of the application\n");
			return -1;
		}
	}
	if (opt->n_modules > 0 && opt->key == PG_BENCH_KEY_NONE) {
		fprintf(stderr, "sign_bench: give --key rsa or --key ec\n");
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct pg_bench_options opt;
	int result = 2, parsed;

	parsed = pg_bench_parse(argc, argv, &opt);
	if (parsed != 0) {
		result = parsed > 0 ? 0 : 2;
		goto out;
	}
	/* A child that dies mid-run must not take the parent with it. */
	signal(SIGPIPE, SIG_IGN);
	result = opt.n_modules > 0 ? pg_bench_sign(&opt) : pg_bench_fsync_only(&opt);
out:
	return result;
}
