/* SPDX-License-Identifier: Apache-2.0
 *
 * soak_signer: the signing process of the soak tests (the scripts in tests/soak).
 * Loads p11gate.so ($P11GATE_MODULE, policy from $P11GATE_CONFIG) over the
 * fixture token, logs in once, and signs on THREADS threads (one session
 * each) until told to stop, writing one line per outcome to an events file
 * that the scripts compare with the audit log.  It is the thing that gets
 * SIGKILLed, raced against policy rewrites and run many times at once.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "p11gate/pkcs11.h"

#define MAX_THREADS 64

static const char USER_PIN[] = "1234";
static const CK_BYTE RSA_ID = 0x01, EC_ID = 0x02, FORBIDDEN_ID = 0x03;

/* What the command line asked for; read-only once the threads run. */
struct options {
	int threads;
	double seconds;          /* 0: until count operations per thread */
	long count;              /* 0: until seconds have passed */
	int deny_every;          /* every Nth operation uses the forbidden key */
	bool accept_denial;      /* allowed keys may be refused (the policy changes) */
	bool accept_failure;     /* ... or fail (a policy without an audit log) */
	bool sync_events;        /* fdatasync each event line before going on */
	const char *events;
	const char *ready;
	const char *go;
	const char *token_dir;
};

/* Shared read-only by the threads, except the events descriptor, which
 * they append to with one write() per line (O_APPEND keeps lines whole). */
struct run {
	const struct options *opt;
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE rsa, ec, forbidden;
	EVP_PKEY *rsa_pub, *ec_pub;
	int events_fd;
	uint64_t nonce;          /* makes this process's data unlike any other's */
	struct timespec deadline;
	atomic_bool stop;        /* a thread failed: the others end too */
};

struct worker {
	struct run *run;
	int index;
	pthread_t thread;
	unsigned long signed_ok, denied, failed, forbidden_denied;
	char error[256];
};

static void
hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static EVP_PKEY *
read_pub(const char *dir, const char *name)
{
	char path[4096];
	EVP_PKEY *pkey;
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	return pkey;
}

/* RSA: RSASSA-PKCS1-v1_5 with SHA-256 over data.  EC: the token's raw r||s
 * over the digest it was given (data is that digest), as DER for OpenSSL. */
static bool
verify(EVP_PKEY *pub, bool ec, const unsigned char *data, size_t len, const unsigned char *sig,
       size_t sig_len)
{
	unsigned char *der = NULL;
	ECDSA_SIG *ecdsa = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *md = NULL;
	BIGNUM *r = NULL, *s = NULL;
	bool ok = false;
	int n;

	if (!ec) {
		md = EVP_MD_CTX_new();
		ok = md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) == 1 &&
		     EVP_DigestVerify(md, sig, sig_len, data, len) == 1;
		goto out;
	}
	r = BN_bin2bn(sig, (int)sig_len / 2, NULL);
	s = BN_bin2bn(sig + sig_len / 2, (int)sig_len / 2, NULL);
	ecdsa = ECDSA_SIG_new();
	if (ecdsa == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(ecdsa, r, s) != 1)
		goto out;
	r = s = NULL;            /* owned by ecdsa now */
	n = i2d_ECDSA_SIG(ecdsa, &der);
	pctx = EVP_PKEY_CTX_new(pub, NULL);
	ok = n > 0 && pctx != NULL && EVP_PKEY_verify_init(pctx) == 1 &&
	     EVP_PKEY_verify(pctx, der, (size_t)n, data, len) == 1;
out:
	BN_free(r);
	BN_free(s);
	EVP_PKEY_CTX_free(pctx);
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ECDSA_SIG_free(ecdsa);
	return ok;
}

/* One line, one write(), then (crash test) made durable before the
 * signer goes on: a line in the file is a promise the log must keep. */
static bool
event(struct worker *w, const char *line)
{
	const struct run *run = w->run;
	size_t len = strlen(line);

	if (run->events_fd < 0)
		return true;
	if (write(run->events_fd, line, len) != (ssize_t)len ||
	    (run->opt->sync_events && fdatasync(run->events_fd) != 0)) {
		snprintf(w->error, sizeof w->error, "cannot write the events file: %s", strerror(errno));
		return false;
	}
	return true;
}

static bool
fail(struct worker *w, const char *what, CK_RV rv)
{
	snprintf(w->error, sizeof w->error, "%s returned 0x%lx", what, (unsigned long)rv);
	return false;
}

/* The forbidden key must be refused at C_SignInit, every time. */
static bool
try_forbidden(struct worker *w, CK_SESSION_HANDLE s)
{
	const struct run *run = w->run;
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	unsigned char digest[32] = { 0 }, sig[128];
	CK_ULONG sig_len = sizeof sig;
	CK_RV rv = run->f->C_SignInit(s, &mech, run->forbidden);

	if (rv == CKR_FUNCTION_REJECTED) {
		char line[64];

		snprintf(line, sizeof line, "forbidden %ld C_SignInit\n", (long)getpid());
		w->forbidden_denied++;
		return event(w, line);
	}
	if (rv == CKR_OK) {
		/* Finish it so the session is usable; it is a failure either way. */
		run->f->C_Sign(s, digest, sizeof digest, sig, &sig_len);
		snprintf(w->error, sizeof w->error, "the forbidden key was allowed at C_SignInit");
		return false;
	}
	return fail(w, "C_SignInit (forbidden key)", rv);
}

/* One signature with an allowed key: RSA (CKM_SHA256_RSA_PKCS over 48
 * bytes) or ECDSA (CKM_ECDSA over a SHA-256), sometimes with a length query
 * first, verified with OpenSSL.  A refusal is an event only when the policy
 * is being changed under us (--accept-denial). */
static bool
sign_one(struct worker *w, CK_SESSION_HANDLE s, long i)
{
	const struct run *run = w->run;
	bool ec = (w->index + i) % 2 == 1;
	CK_MECHANISM mech = { ec ? CKM_ECDSA : CKM_SHA256_RSA_PKCS, NULL, 0 };
	unsigned char message[96], digest[32], sig[512], sig_sha[32], data_sha[32];
	unsigned char *in = message;
	CK_ULONG in_len = sizeof message, sig_len = sizeof sig;
	char line[256], sig_hex[65], data_hex[65];
	const char *function = "C_SignInit";
	CK_RV rv;

	memset(message, 0, sizeof message);
	snprintf((char *)message, sizeof message, "%016llx %ld %d %ld", (unsigned long long)run->nonce,
	         (long)getpid(), w->index, i);
	if (ec) {
		EVP_Digest(message, sizeof message, digest, NULL, EVP_sha256(), NULL);
		in = digest;
		in_len = sizeof digest;
	}
	EVP_Digest(in, in_len, data_sha, NULL, EVP_sha256(), NULL);
	hex(data_sha, sizeof data_sha, data_hex);

	rv = run->f->C_SignInit(s, &mech, ec ? run->ec : run->rsa);
	if (rv != CKR_OK)
		goto refused;
	function = "C_Sign";
	if (i % 3 == 0) {
		/* GnuTLS's way: the length first. */
		rv = run->f->C_Sign(s, in, in_len, NULL, &sig_len);
		if (rv != CKR_OK || sig_len > sizeof sig)
			return fail(w, "C_Sign (length query)", rv);
	}
	rv = run->f->C_Sign(s, in, in_len, sig, &sig_len);
	if (rv != CKR_OK)
		goto refused;
	if (!verify(ec ? run->ec_pub : run->rsa_pub, ec, ec ? digest : message,
	            ec ? sizeof digest : sizeof message, sig, sig_len)) {
		snprintf(w->error, sizeof w->error, "signature %ld (%s) does not verify", i, ec ? "ec" : "rsa");
		return false;
	}
	EVP_Digest(sig, sig_len, sig_sha, NULL, EVP_sha256(), NULL);
	hex(sig_sha, sizeof sig_sha, sig_hex);
	snprintf(line, sizeof line, "sign %ld %s %s %s\n", (long)getpid(), sig_hex, data_hex, ec ? "ec" : "rsa");
	w->signed_ok++;
	return event(w, line);
refused:
	if (rv == CKR_FUNCTION_FAILED && run->opt->accept_failure) {
		snprintf(line, sizeof line, "failed %ld %s %s %s\n", (long)getpid(), function, data_hex,
		         ec ? "ec" : "rsa");
		w->failed++;
		return event(w, line);
	}
	if (rv != CKR_FUNCTION_REJECTED || !run->opt->accept_denial)
		return fail(w, function, rv);
	snprintf(line, sizeof line, "deny %ld %s %s %s\n", (long)getpid(), function, data_hex, ec ? "ec" : "rsa");
	w->denied++;
	return event(w, line);
}

static bool
time_is_up(const struct run *run)
{
	struct timespec now;

	if (run->opt->seconds <= 0)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > run->deadline.tv_sec ||
	       (now.tv_sec == run->deadline.tv_sec && now.tv_nsec >= run->deadline.tv_nsec);
}

static void *
work(void *arg)
{
	struct worker *w = arg;
	struct run *run = w->run;
	CK_SESSION_HANDLE s;
	CK_RV rv;
	bool ok = true;

	rv = run->f->C_OpenSession(run->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK) {
		fail(w, "C_OpenSession", rv);
		atomic_store(&run->stop, true);
		return NULL;
	}
	for (long i = 0; ok && !atomic_load(&run->stop); i++) {
		if (run->opt->count > 0 && i >= run->opt->count)
			break;
		if (time_is_up(run))
			break;
		if (run->opt->deny_every > 0 && i % run->opt->deny_every == run->opt->deny_every - 1)
			ok = try_forbidden(w, s);
		else
			ok = sign_one(w, s, i);
	}
	if (!ok)
		atomic_store(&run->stop, true);
	run->f->C_CloseSession(s);
	return NULL;
}

static CK_OBJECT_HANDLE
find_key(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_BYTE id)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE templ[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_ID, &id, 1 },
	};
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0;

	if (f->C_FindObjectsInit(s, templ, 2) != CKR_OK)
		return CK_INVALID_HANDLE;
	if (f->C_FindObjects(s, found, 2, &n) != CKR_OK)
		n = 0;
	f->C_FindObjectsFinal(s);
	return n == 1 ? found[0] : CK_INVALID_HANDLE;
}

/* Loads the module, logs in (one login serves every session), finds the
 * keys and their public halves. */
static bool
setup(struct run *run, void **dl, CK_SESSION_HANDLE *login)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	const char *module = getenv("P11GATE_MODULE");
	CK_C_GetFunctionList get_list;
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	CK_RV rv;

	if (module == NULL || (*dl = dlopen(module, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "soak_signer: cannot load P11GATE_MODULE: %s\n", module ? dlerror() : "not set");
		return false;
	}
	get_list = (CK_C_GetFunctionList)dlsym(*dl, "C_GetFunctionList");
	if (get_list == NULL || get_list(&run->f) != CKR_OK) {
		fprintf(stderr, "soak_signer: %s has no usable C_GetFunctionList\n", module);
		return false;
	}
	if ((rv = run->f->C_Initialize(&args)) != CKR_OK) {
		run->f = NULL;
		fprintf(stderr, "soak_signer: C_Initialize returned 0x%lx\n", (unsigned long)rv);
		return false;
	}
	if (run->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		n = 0;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO info;

		if (run->f->C_GetTokenInfo(slots[i], &info) == CKR_OK && memcmp(info.label, "release ", 8) == 0)
			run->slot = slots[i];
	}
	if ((rv = run->f->C_OpenSession(run->slot, CKF_SERIAL_SESSION, NULL, NULL, login)) != CKR_OK ||
	    (rv = run->f->C_Login(*login, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, sizeof USER_PIN - 1)) != CKR_OK) {
		fprintf(stderr, "soak_signer: cannot log in to the token 'release': 0x%lx\n", (unsigned long)rv);
		return false;
	}
	run->rsa = find_key(run->f, *login, RSA_ID);
	run->ec = find_key(run->f, *login, EC_ID);
	run->rsa_pub = read_pub(run->opt->token_dir, "rsa-pub.pem");
	run->ec_pub = read_pub(run->opt->token_dir, "ec-pub.pem");
	if (run->rsa == CK_INVALID_HANDLE || run->ec == CK_INVALID_HANDLE || run->rsa_pub == NULL ||
	    run->ec_pub == NULL) {
		fprintf(stderr, "soak_signer: the fixture's keys are not all there\n");
		return false;
	}
	if (run->opt->deny_every > 0 && (run->forbidden = find_key(run->f, *login, FORBIDDEN_ID)) == CK_INVALID_HANDLE) {
		fprintf(stderr, "soak_signer: --deny-every needs a private key with CKA_ID 03 on the token\n");
		return false;
	}
	return true;
}

static bool
touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0) {
		fprintf(stderr, "soak_signer: cannot create %s: %s\n", path, strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

/* Waits (up to 2 minutes) for the go file: logins are kept apart from the
 * signing, since SoftHSM2 2.6.1 rewrites its token file at each C_Login
 * and a login racing another process fails with CKR_GENERAL_ERROR. */
static bool
wait_for(const char *path)
{
	const struct timespec tick = { 0, 5 * 1000 * 1000 };

	for (int i = 0; i < 24000; i++) {
		if (access(path, F_OK) == 0)
			return true;
		nanosleep(&tick, NULL);
	}
	fprintf(stderr, "soak_signer: %s never appeared\n", path);
	return false;
}

static void
usage(void)
{
	fprintf(stderr,
	        "usage: soak_signer [--threads N] [--seconds S | --count N] [--deny-every K]\n"
	        "                   [--accept-denial [--accept-failure]] [--events FILE [--sync-events]]\n"
	        "                   [--ready FILE] [--go FILE] TOKEN-DIR\n");
}

static bool
parse(int argc, char **argv, struct options *opt)
{
	*opt = (struct options){ .threads = 1 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--accept-denial") == 0) {
			opt->accept_denial = true;
			continue;
		}
		if (strcmp(a, "--accept-failure") == 0) {
			opt->accept_failure = true;
			continue;
		}
		if (strcmp(a, "--sync-events") == 0) {
			opt->sync_events = true;
			continue;
		}
		if (a[0] != '-') {
			if (opt->token_dir != NULL)
				return false;
			opt->token_dir = a;
			continue;
		}
		if (v == NULL)
			return false;
		i++;
		if (strcmp(a, "--threads") == 0)
			opt->threads = atoi(v);
		else if (strcmp(a, "--seconds") == 0)
			opt->seconds = atof(v);
		else if (strcmp(a, "--count") == 0)
			opt->count = atol(v);
		else if (strcmp(a, "--deny-every") == 0)
			opt->deny_every = atoi(v);
		else if (strcmp(a, "--events") == 0)
			opt->events = v;
		else if (strcmp(a, "--ready") == 0)
			opt->ready = v;
		else if (strcmp(a, "--go") == 0)
			opt->go = v;
		else
			return false;
	}
	return opt->token_dir != NULL && opt->threads >= 1 && opt->threads <= MAX_THREADS &&
	       opt->deny_every >= 0 && opt->deny_every != 1 && opt->count >= 0 && opt->seconds >= 0;
}

int
main(int argc, char **argv)
{
	static struct worker workers[MAX_THREADS];
	struct options opt;
	struct run run = { .events_fd = -1 };
	CK_SESSION_HANDLE login = CK_INVALID_HANDLE;
	unsigned long signed_ok = 0, denied = 0, failed = 0, forbidden = 0;
	void *dl = NULL;
	int status = EXIT_FAILURE, started = 0;

	if (!parse(argc, argv, &opt)) {
		usage();
		return 2;
	}
	run.opt = &opt;
	if (getrandom(&run.nonce, sizeof run.nonce, 0) != sizeof run.nonce)
		run.nonce = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	if (opt.events != NULL) {
		run.events_fd = open(opt.events, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (run.events_fd < 0) {
			fprintf(stderr, "soak_signer: cannot open %s: %s\n", opt.events, strerror(errno));
			goto out;
		}
	}
	if (!setup(&run, &dl, &login))
		goto out;
	if (opt.ready != NULL && !touch(opt.ready))
		goto out;
	if (opt.go != NULL && !wait_for(opt.go))
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &run.deadline);
	run.deadline.tv_sec += (time_t)opt.seconds;
	run.deadline.tv_nsec += (long)((opt.seconds - (double)(time_t)opt.seconds) * 1e9);
	if (run.deadline.tv_nsec >= 1000000000L) {
		run.deadline.tv_sec++;
		run.deadline.tv_nsec -= 1000000000L;
	}
	for (int t = 0; t < opt.threads; t++) {
		workers[t].run = &run;
		workers[t].index = t;
		if (pthread_create(&workers[t].thread, NULL, work, &workers[t]) != 0)
			break;
		started++;
	}
	for (int t = 0; t < started; t++)
		pthread_join(workers[t].thread, NULL);
	if (started < opt.threads) {
		fprintf(stderr, "soak_signer: could only start %d of %d threads\n", started, opt.threads);
		goto out;
	}
	status = EXIT_SUCCESS;
	for (int t = 0; t < opt.threads; t++) {
		signed_ok += workers[t].signed_ok;
		denied += workers[t].denied;
		failed += workers[t].failed;
		forbidden += workers[t].forbidden_denied;
		if (workers[t].error[0] != '\0') {
			fprintf(stderr, "soak_signer: thread %d: %s\n", t, workers[t].error);
			status = EXIT_FAILURE;
		}
	}
	printf("pid %ld signed %lu denied %lu failed %lu forbidden %lu\n", (long)getpid(), signed_ok, denied,
	       failed, forbidden);
out:
	EVP_PKEY_free(run.rsa_pub);
	EVP_PKEY_free(run.ec_pub);
	if (run.f != NULL) {
		/* SoftHSM2 and OpenSSL can crash at exit without C_Finalize. */
		if (login != CK_INVALID_HANDLE)
			run.f->C_CloseSession(login);
		run.f->C_Finalize(NULL);
	}
	if (dl != NULL)
		dlclose(dl);
	if (run.events_fd >= 0)
		close(run.events_fd);
	return status;
}
