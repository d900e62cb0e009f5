/* SPDX-License-Identifier: Apache-2.0
 *
 * sign_threads THREADS COUNT TOKEN-DIR [GO-FILE]: one process of the
 * concurrency test (tests/enforce/concurrency.sh).  Loads p11gate.so
 * ($P11GATE_MODULE, policy from $P11GATE_CONFIG), and signs COUNT times on
 * each of THREADS threads, each on its own session, alternating RSA
 * (CKM_SHA256_RSA_PKCS) and ECDSA (CKM_ECDSA), some with a length query
 * first.  Every signature is verified with OpenSSL against
 * TOKEN-DIR/{rsa,ec}-pub.pem and its SHA-256 printed, one per line, for the
 * script to find in the audit log (those made before a thread's first
 * failure too: tests/enforce/limits.sh refuses some).  With GO-FILE, it logs in, creates
 * GO-FILE.ready.PID and waits for GO-FILE before signing: SoftHSM2 2.6.1
 * rewrites its token file at each C_Login, and a login racing another
 * process's token access fails there with CKR_GENERAL_ERROR (measured), so
 * the test keeps logins apart from the signing it is about.
 * Exit status 0 only if every signature was made and verified.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "p11gate/pkcs11.h"

#define MAX_THREADS 64
#define MAX_COUNT 10000

static const char USER_PIN[] = "1234";

/* Shared read-only by the threads once main() has set it up. */
struct run {
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE rsa, ec;
	EVP_PKEY *rsa_pub, *ec_pub;
	int count;
};

struct worker {
	const struct run *run;
	int index;
	pthread_t thread;
	unsigned char (*hashes)[32];   /* count SHA-256s of the signatures */
	int made;                      /* signatures made and verified before any error */
	char error[256];
};

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

static bool
verify(EVP_PKEY *pub, bool ec, const unsigned char *data, size_t len, const unsigned char *sig, size_t sig_len)
{
	unsigned char *der = NULL;
	const unsigned char *check = sig;
	size_t check_len = sig_len;
	ECDSA_SIG *ecdsa = NULL;
	EVP_MD_CTX *md = NULL;
	bool ok = false;

	if (ec) {
		/* The token's r||s, as DER for OpenSSL. */
		BIGNUM *r = BN_bin2bn(sig, (int)sig_len / 2, NULL);
		BIGNUM *s = BN_bin2bn(sig + sig_len / 2, (int)sig_len / 2, NULL);
		int n;

		ecdsa = ECDSA_SIG_new();
		if (ecdsa == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(ecdsa, r, s) != 1) {
			BN_free(r);
			BN_free(s);
			goto out;
		}
		n = i2d_ECDSA_SIG(ecdsa, &der);
		if (n <= 0)
			goto out;
		check = der;
		check_len = (size_t)n;
	}
	md = EVP_MD_CTX_new();
	ok = md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) == 1 &&
	     EVP_DigestVerify(md, check, check_len, data, len) == 1;
out:
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ECDSA_SIG_free(ecdsa);
	return ok;
}

/* One signature; false with w->error set on any failure. */
static bool
sign_one(struct worker *w, CK_SESSION_HANDLE s, int i)
{
	const struct run *run = w->run;
	bool ec = (w->index + i) % 2 == 1;
	CK_MECHANISM mech = { ec ? CKM_ECDSA : CKM_SHA256_RSA_PKCS, NULL, 0 };
	unsigned char data[64], digest[32], sig[512];
	unsigned char *in = data;
	CK_ULONG in_len = sizeof data, sig_len = sizeof sig;
	CK_RV rv;

	snprintf((char *)data, sizeof data, "process %ld thread %d signature %d", (long)getpid(), w->index, i);
	if (ec) {
		/* CKM_ECDSA signs a digest. */
		if (EVP_Digest(data, sizeof data, digest, NULL, EVP_sha256(), NULL) != 1)
			return false;
		in = digest;
		in_len = sizeof digest;
	}
	rv = run->f->C_SignInit(s, &mech, ec ? run->ec : run->rsa);
	if (rv != CKR_OK) {
		snprintf(w->error, sizeof w->error, "C_SignInit: 0x%lx", (unsigned long)rv);
		return false;
	}
	if (i % 3 == 0) {
		/* GnuTLS's way: the length first. */
		rv = run->f->C_Sign(s, in, in_len, NULL, &sig_len);
		if (rv != CKR_OK || sig_len > sizeof sig) {
			snprintf(w->error, sizeof w->error, "C_Sign length query: 0x%lx", (unsigned long)rv);
			return false;
		}
	}
	rv = run->f->C_Sign(s, in, in_len, sig, &sig_len);
	if (rv != CKR_OK) {
		snprintf(w->error, sizeof w->error, "C_Sign: 0x%lx", (unsigned long)rv);
		return false;
	}
	if (!verify(ec ? run->ec_pub : run->rsa_pub, ec, data, sizeof data, sig, sig_len)) {
		snprintf(w->error, sizeof w->error, "signature %d does not verify", i);
		return false;
	}
	return EVP_Digest(sig, sig_len, w->hashes[i], NULL, EVP_sha256(), NULL) == 1;
}

static void *
work(void *arg)
{
	struct worker *w = arg;
	CK_SESSION_HANDLE s;
	CK_RV rv;

	rv = w->run->f->C_OpenSession(w->run->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK) {
		snprintf(w->error, sizeof w->error, "C_OpenSession: 0x%lx", (unsigned long)rv);
		return NULL;
	}
	for (int i = 0; i < w->run->count; i++) {
		if (!sign_one(w, s, i))
			break;
		w->made++;
	}
	w->run->f->C_CloseSession(s);
	return NULL;
}

static CK_OBJECT_HANDLE
find_key(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_BYTE id)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE templ[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_ID, &id, 1 } };
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0;

	if (f->C_FindObjectsInit(s, templ, 2) != CKR_OK)
		return CK_INVALID_HANDLE;
	if (f->C_FindObjects(s, found, 2, &n) != CKR_OK)
		n = 0;
	f->C_FindObjectsFinal(s);
	return n == 1 ? found[0] : CK_INVALID_HANDLE;
}

/* Loads the module, logs in, finds the keys. */
static bool
setup(struct run *run, void **dl, const char *token_dir, CK_SESSION_HANDLE *login)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	const char *module = getenv("P11GATE_MODULE");
	CK_C_GetFunctionList get_list;
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;

	if (module == NULL || (*dl = dlopen(module, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "sign_threads: cannot load P11GATE_MODULE: %s\n", module ? dlerror() : "not set");
		return false;
	}
	get_list = (CK_C_GetFunctionList)dlsym(*dl, "C_GetFunctionList");
	if (get_list == NULL || get_list(&run->f) != CKR_OK || run->f->C_Initialize(&args) != CKR_OK ||
	    run->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) {
		fprintf(stderr, "sign_threads: the module does not initialise\n");
		return false;
	}
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO info;

		if (run->f->C_GetTokenInfo(slots[i], &info) == CKR_OK && memcmp(info.label, "release ", 8) == 0)
			run->slot = slots[i];
	}
	/* One login serves every session of the application. */
	if (run->f->C_OpenSession(run->slot, CKF_SERIAL_SESSION, NULL, NULL, login) != CKR_OK ||
	    run->f->C_Login(*login, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, sizeof USER_PIN - 1) != CKR_OK) {
		fprintf(stderr, "sign_threads: cannot log in to the token 'release'\n");
		return false;
	}
	run->rsa = find_key(run->f, *login, 0x01);
	run->ec = find_key(run->f, *login, 0x02);
	run->rsa_pub = read_pub(token_dir, "rsa-pub.pem");
	run->ec_pub = read_pub(token_dir, "ec-pub.pem");
	if (run->rsa == CK_INVALID_HANDLE || run->ec == CK_INVALID_HANDLE || run->rsa_pub == NULL ||
	    run->ec_pub == NULL) {
		fprintf(stderr, "sign_threads: the fixture's keys are not all there\n");
		return false;
	}
	return true;
}

/* Says this process is logged in, then waits (up to 2 minutes) for go. */
static bool
wait_for_go(const char *go)
{
	const struct timespec tick = { 0, 10 * 1000 * 1000 };
	char ready[4096];
	int fd;

	snprintf(ready, sizeof ready, "%s.ready.%ld", go, (long)getpid());
	fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return false;
	close(fd);
	for (int i = 0; i < 12000; i++) {
		if (access(go, F_OK) == 0)
			return true;
		nanosleep(&tick, NULL);
	}
	fprintf(stderr, "sign_threads: %s never appeared\n", go);
	return false;
}

int
main(int argc, char **argv)
{
	static struct worker workers[MAX_THREADS];
	struct run run = { 0 };
	CK_SESSION_HANDLE login = CK_INVALID_HANDLE;
	void *dl = NULL;
	int threads, status = EXIT_FAILURE, started = 0;

	if ((argc != 4 && argc != 5) || (threads = atoi(argv[1])) < 1 || threads > MAX_THREADS ||
	    (run.count = atoi(argv[2])) < 1 || run.count > MAX_COUNT) {
		fprintf(stderr, "usage: sign_threads THREADS(1-%d) COUNT(1-%d) TOKEN-DIR [GO-FILE]\n",
		        MAX_THREADS, MAX_COUNT);
		return 2;
	}
	if (!setup(&run, &dl, argv[3], &login))
		goto out;
	if (argc == 5 && !wait_for_go(argv[4]))
		goto out;
	for (int t = 0; t < threads; t++) {
		workers[t].run = &run;
		workers[t].index = t;
		workers[t].hashes = calloc((size_t)run.count, 32);
		if (workers[t].hashes == NULL ||
		    pthread_create(&workers[t].thread, NULL, work, &workers[t]) != 0)
			goto join;
		started++;
	}
join:
	for (int t = 0; t < started; t++)
		pthread_join(workers[t].thread, NULL);
	if (started < threads) {
		fprintf(stderr, "sign_threads: could not start %d threads\n", threads);
		goto out;
	}
	status = EXIT_SUCCESS;
	for (int t = 0; t < threads; t++) {
		if (workers[t].error[0] != '\0') {
			fprintf(stderr, "sign_threads: thread %d: %s\n", t, workers[t].error);
			status = EXIT_FAILURE;
		}
		/* The ones made before an error too (a refusal by a limit). */
		for (int i = 0; i < workers[t].made; i++) {
			for (int b = 0; b < 32; b++)
				printf("%02x", workers[t].hashes[i][b]);
			printf("\n");
		}
	}
out:
	for (int t = 0; t < threads && t < MAX_THREADS; t++)
		free(workers[t].hashes);
	EVP_PKEY_free(run.rsa_pub);
	EVP_PKEY_free(run.ec_pub);
	if (run.f != NULL) {
		/* SoftHSM2 and OpenSSL can crash at exit without C_Finalize. */
		run.f->C_Finalize(NULL);
	}
	if (dl != NULL)
		dlclose(dl);
	return status;
}
