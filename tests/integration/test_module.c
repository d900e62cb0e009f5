/* SPDX-License-Identifier: Apache-2.0
 *
 * p11gate.so as an application sees it: dlopen'ed over a real SoftHSM2
 * token (tests/fixture/mktoken).  The PKCS#11 life cycle (before
 * C_Initialize, twice, finalise and again, fork), argument checks, locking
 * arguments, configuration discovery and errors, the 3.0 interface over a
 * 2.40 module, threads signing at once (every signature verified with
 * OpenSSL), and transparency: slots, tokens, mechanisms and objects are
 * SoftHSM2's own.
 */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "p11gate/pkcs11.h"
#include "p11gate-build.h"

/* The PKCS#11 3.0 function table (CK_FUNCTION_LIST_3_0), written here from
 * the specification rather than taken from the module's sources, so the
 * module's table is checked against the standard and not against itself. */
struct test_function_list_3_0 {
	CK_FUNCTION_LIST v2;            /* version + the 68 functions of 2.40 */
	CK_RV (*C_GetInterfaceList)(CK_INTERFACE_PTR, CK_ULONG_PTR);
	CK_RV (*C_GetInterface)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS);
	CK_RV (*C_LoginUser)(CK_SESSION_HANDLE, CK_USER_TYPE, CK_UTF8CHAR_PTR, CK_ULONG, CK_UTF8CHAR_PTR, CK_ULONG);
	CK_RV (*C_SessionCancel)(CK_SESSION_HANDLE, CK_FLAGS);
	CK_RV (*C_MessageEncryptInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_RV (*C_EncryptMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
	CK_RV (*C_EncryptMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*C_EncryptMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR, CK_FLAGS);
	CK_RV (*C_MessageEncryptFinal)(CK_SESSION_HANDLE);
	CK_RV (*C_MessageDecryptInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_RV (*C_DecryptMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
	CK_RV (*C_DecryptMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*C_DecryptMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR, CK_FLAGS);
	CK_RV (*C_MessageDecryptFinal)(CK_SESSION_HANDLE);
	CK_RV (*C_MessageSignInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_RV (*C_SignMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
	CK_RV (*C_SignMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG);
	CK_RV (*C_SignMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
	CK_RV (*C_MessageSignFinal)(CK_SESSION_HANDLE);
	CK_RV (*C_MessageVerifyInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_RV (*C_VerifyMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*C_VerifyMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG);
	CK_RV (*C_VerifyMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*C_MessageVerifyFinal)(CK_SESSION_HANDLE);
};

#define N_FUNCTIONS_2_40 68
#define N_FUNCTIONS_3_0 (N_FUNCTIONS_2_40 + 24)

typedef CK_RV (*get_interface_list_fn)(CK_INTERFACE_PTR, CK_ULONG_PTR);
typedef CK_RV (*get_interface_fn)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS);

static const char USER_PIN[] = "1234";
static const CK_BYTE RSA_ID[] = { 0x01 };
static const CK_BYTE EC_ID[] = { 0x02 };

/* Where the fixture is.  Written once by main() before any test runs and
 * only read afterwards (each test runs in its own forked process). */
static struct {
	char p11gate[PATH_MAX];         /* P11GATE_MODULE */
	char softhsm[PATH_MAX];         /* SOFTHSM_MODULE */
	char dir[PATH_MAX];             /* the fixture made by mktoken */
	char config[PATH_MAX];          /* dir/p11gate.yaml */
	char work[PATH_MAX];            /* scratch files of this test program */
} fx;

/* ---- small helpers ------------------------------------------------------ */

static void
path_join(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);

	ck_assert_msg(n > 0 && n < PATH_MAX, "path too long: %s/%s", dir, name);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

static const char *
rv_text(CK_RV rv)
{
	static __thread char buf[32];

	switch (rv) {
	case CKR_OK: return "CKR_OK";
	case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
	case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
	case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
	case CKR_FUNCTION_NOT_SUPPORTED: return "CKR_FUNCTION_NOT_SUPPORTED";
	case CKR_CRYPTOKI_NOT_INITIALIZED: return "CKR_CRYPTOKI_NOT_INITIALIZED";
	case CKR_CRYPTOKI_ALREADY_INITIALIZED: return "CKR_CRYPTOKI_ALREADY_INITIALIZED";
	case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
	case CKR_OPERATION_NOT_INITIALIZED: return "CKR_OPERATION_NOT_INITIALIZED";
	case CKR_USER_ALREADY_LOGGED_IN: return "CKR_USER_ALREADY_LOGGED_IN";
	case CKR_ATTRIBUTE_SENSITIVE: return "CKR_ATTRIBUTE_SENSITIVE";
	case CKR_ATTRIBUTE_TYPE_INVALID: return "CKR_ATTRIBUTE_TYPE_INVALID";
	case CKR_FUNCTION_REJECTED: return "CKR_FUNCTION_REJECTED";
	default:
		snprintf(buf, sizeof buf, "0x%lx", (unsigned long)rv);
		return buf;
	}
}

#define ck_assert_rv(call, expected)                                          \
	do {                                                                  \
		CK_RV rv_ = (call);                                           \
		ck_assert_msg(rv_ == (CK_RV)(expected), "%s returned %s, expected %s", \
		              #call, rv_text(rv_), rv_text(expected));        \
	} while (0)

/* ---- loading modules ------------------------------------------------------ */

struct module {
	void *dl;
	CK_FUNCTION_LIST_PTR f;
};

static struct module
module_open(const char *path)
{
	struct module m = { NULL, NULL };
	CK_C_GetFunctionList get_list;

	m.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	ck_assert_msg(m.dl != NULL, "dlopen %s: %s", path, dlerror());
	get_list = (CK_C_GetFunctionList)dlsym(m.dl, "C_GetFunctionList");
	ck_assert_msg(get_list != NULL, "%s has no C_GetFunctionList", path);
	ck_assert_rv(get_list(&m.f), CKR_OK);
	ck_assert_ptr_nonnull(m.f);
	return m;
}

static struct module
p11gate_open(void)
{
	return module_open(fx.p11gate);
}

/* True when SoftHSM2 is mapped into this process. */
static bool
softhsm_loaded(void)
{
	void *dl = dlopen(fx.softhsm, RTLD_NOW | RTLD_NOLOAD);

	if (dl == NULL)
		return false;
	dlclose(dl);
	return true;
}

/* ---- tokens, keys, signatures --------------------------------------------- */

static CK_SLOT_ID
release_slot(const CK_FUNCTION_LIST *f)
{
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	char label[33];

	ck_assert_rv(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO info;

		ck_assert_rv(f->C_GetTokenInfo(slots[i], &info), CKR_OK);
		memcpy(label, info.label, 32);
		label[32] = '\0';
		if (strcmp(label, "release                         ") == 0)
			return slots[i];
	}
	ck_abort_msg("no token labelled release among %lu slots", (unsigned long)n);
	return 0;
}

static CK_SESSION_HANDLE
open_session(const CK_FUNCTION_LIST *f, CK_SLOT_ID slot)
{
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;

	ck_assert_rv(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
	return s;
}

static void
login(const CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s)
{
	CK_RV rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN));

	ck_assert_msg(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN, "C_Login: %s", rv_text(rv));
}

/* The one object of a class with a CKA_ID; CK_INVALID_HANDLE unless there
 * is exactly one (SoftHSM2's object order varies, so never "the first"). */
static CK_OBJECT_HANDLE
find_object(const CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const CK_BYTE *id, size_t id_len)
{
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_ID, (CK_VOID_PTR)id, id_len },
	};
	CK_OBJECT_HANDLE found[4];
	CK_ULONG n = 0;

	if (f->C_FindObjectsInit(s, tmpl, 2) != CKR_OK)
		return CK_INVALID_HANDLE;
	if (f->C_FindObjects(s, found, 4, &n) != CKR_OK)
		n = 0;
	f->C_FindObjectsFinal(s);
	return n == 1 ? found[0] : CK_INVALID_HANDLE;
}

static EVP_PKEY *
load_public(const char *name)
{
	char path[PATH_MAX];
	EVP_PKEY *key;
	FILE *f;

	path_join(path, fx.dir, name);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert_msg(key != NULL, "%s is not a PEM public key", path);
	return key;
}

static bool
verify_der(EVP_PKEY *pub, const unsigned char *msg, size_t len, const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = false;

	if (md == NULL)
		goto out;
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) != 1)
		goto out;
	ok = EVP_DigestVerify(md, sig, sig_len, msg, len) == 1;
out:
	EVP_MD_CTX_free(md);
	return ok;
}

/* RSA PKCS#1 v1.5 with SHA-256, as CKM_SHA256_RSA_PKCS makes it. */
static bool
verify_rsa(EVP_PKEY *pub, const unsigned char *msg, size_t len, const unsigned char *sig, size_t sig_len)
{
	return verify_der(pub, msg, len, sig, sig_len);
}

/* CKM_ECDSA gives r||s; OpenSSL wants the DER ECDSA-Sig-Value. */
static bool
verify_ec(EVP_PKEY *pub, const unsigned char *msg, size_t len, const unsigned char *sig, size_t sig_len)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	int der_len;
	bool ok = false;

	if (sig_len != 64)
		goto out;
	es = ECDSA_SIG_new();
	r = BN_bin2bn(sig, 32, NULL);
	s = BN_bin2bn(sig + 32, 32, NULL);
	if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1)
		goto out;
	r = s = NULL;
	der_len = i2d_ECDSA_SIG(es, &der);
	if (der_len <= 0)
		goto out;
	ok = verify_der(pub, msg, len, der, (size_t)der_len);
out:
	OPENSSL_free(der);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return ok;
}

/* CKM_SHA256_RSA_PKCS, asking for the length first (as GnuTLS does) and,
 * when multi_part, through C_SignUpdate/C_SignFinal. */
static CK_RV
sign_rsa(const CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, bool multi_part,
         const unsigned char *msg, size_t len, unsigned char *sig, CK_ULONG *sig_len)
{
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_ULONG need = 0;
	CK_RV rv;

	rv = f->C_SignInit(s, &mech, key);
	if (rv != CKR_OK)
		return rv;
	if (multi_part) {
		size_t half = len / 2;

		rv = f->C_SignUpdate(s, (CK_BYTE_PTR)msg, half);
		if (rv == CKR_OK)
			rv = f->C_SignUpdate(s, (CK_BYTE_PTR)msg + half, len - half);
		if (rv == CKR_OK)
			rv = f->C_SignFinal(s, NULL, &need);
		if (rv == CKR_OK && need > *sig_len)
			rv = CKR_BUFFER_TOO_SMALL;
		if (rv == CKR_OK)
			rv = f->C_SignFinal(s, sig, sig_len);
		return rv;
	}
	rv = f->C_Sign(s, (CK_BYTE_PTR)msg, len, NULL, &need);
	if (rv == CKR_OK && need > *sig_len)
		rv = CKR_BUFFER_TOO_SMALL;
	if (rv == CKR_OK)
		rv = f->C_Sign(s, (CK_BYTE_PTR)msg, len, sig, sig_len);
	return rv;
}

/* CKM_ECDSA over the SHA-256 of msg. */
static CK_RV
sign_ec(const CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
        const unsigned char *msg, size_t len, unsigned char *sig, CK_ULONG *sig_len)
{
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	unsigned char digest[32];
	CK_RV rv;

	if (EVP_Digest(msg, len, digest, NULL, EVP_sha256(), NULL) != 1)
		return CKR_HOST_MEMORY;
	rv = f->C_SignInit(s, &mech, key);
	if (rv != CKR_OK)
		return rv;
	return f->C_Sign(s, digest, sizeof digest, sig, sig_len);
}

/* Logs in on a new session and makes one verified RSA and one verified EC
 * signature; returns NULL or what went wrong (usable in a forked child,
 * where Check's assertions must not be used). */
static const char *
sign_and_verify_both(const CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, const char *text)
{
	const unsigned char *msg = (const unsigned char *)text;
	EVP_PKEY *rsa_pub = NULL, *ec_pub = NULL;
	CK_OBJECT_HANDLE rsa, ec;
	unsigned char sig[512];
	CK_ULONG sig_len;
	const char *err = NULL;
	char path[PATH_MAX + 32];
	FILE *pem;

	snprintf(path, sizeof path, "%s/rsa-pub.pem", fx.dir);
	if ((pem = fopen(path, "r")) != NULL) {
		rsa_pub = PEM_read_PUBKEY(pem, NULL, NULL, NULL);
		fclose(pem);
	}
	snprintf(path, sizeof path, "%s/ec-pub.pem", fx.dir);
	if ((pem = fopen(path, "r")) != NULL) {
		ec_pub = PEM_read_PUBKEY(pem, NULL, NULL, NULL);
		fclose(pem);
	}
	if (rsa_pub == NULL || ec_pub == NULL) {
		err = "cannot read rsa-pub.pem / ec-pub.pem";
		goto out;
	}
	rsa = find_object(f, s, CKO_PRIVATE_KEY, RSA_ID, sizeof RSA_ID);
	ec = find_object(f, s, CKO_PRIVATE_KEY, EC_ID, sizeof EC_ID);
	if (rsa == CK_INVALID_HANDLE || ec == CK_INVALID_HANDLE) {
		err = "the private keys (CKA_ID 01 and 02) are not found once each";
		goto out;
	}
	sig_len = sizeof sig;
	if (sign_rsa(f, s, rsa, false, msg, strlen(text), sig, &sig_len) != CKR_OK) {
		err = "RSA signing failed";
		goto out;
	}
	if (!verify_rsa(rsa_pub, msg, strlen(text), sig, sig_len)) {
		err = "the RSA signature does not verify with rsa-pub.pem";
		goto out;
	}
	sig_len = sizeof sig;
	if (sign_ec(f, s, ec, msg, strlen(text), sig, &sig_len) != CKR_OK) {
		err = "ECDSA signing failed";
		goto out;
	}
	if (!verify_ec(ec_pub, msg, strlen(text), sig, sig_len)) {
		err = "the ECDSA signature does not verify with ec-pub.pem";
		goto out;
	}
out:
	EVP_PKEY_free(rsa_pub);
	EVP_PKEY_free(ec_pub);
	return err;
}

/* Opens a session on the release token, logs in, signs with both keys and
 * verifies, closes the session. */
static void
assert_signs(const CK_FUNCTION_LIST *f, const char *text)
{
	CK_SESSION_HANDLE s = open_session(f, release_slot(f));
	const char *err;

	login(f, s);
	err = sign_and_verify_both(f, s, text);
	ck_assert_msg(err == NULL, "%s", err);
	ck_assert_rv(f->C_CloseSession(s), CKR_OK);
}

/* ---- stderr capture --------------------------------------------------------- */

/* Calls C_Initialize with fd 2 sent to a file; gives back what was written. */
static CK_RV
initialize_capturing(const CK_FUNCTION_LIST *f, CK_VOID_PTR args, char *err, size_t err_len)
{
	char path[PATH_MAX];
	int fd, saved;
	ssize_t n;
	CK_RV rv;

	path_join(path, fx.work, "stderr-XXXXXX");
	fd = mkstemp(path);
	ck_assert_msg(fd >= 0, "mkstemp: %s", strerror(errno));
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	rv = f->C_Initialize(args);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, err, err_len - 1, 0);
	err[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	return rv;
}

/* The stderr text is exactly one line, starting with prefix and containing
 * each of the NULL-terminated needles. */
static void
assert_one_line(const char *err, const char *prefix, ...)
{
	const char *needle;
	va_list ap;

	ck_assert_msg(strlen(err) > 0 && strchr(err, '\n') == err + strlen(err) - 1,
	              "expected exactly one line on stderr, got: '%s'", err);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
	              "stderr line '%s' does not start with '%s'", err, prefix);
	va_start(ap, prefix);
	while ((needle = va_arg(ap, const char *)) != NULL)
		ck_assert_msg(strstr(err, needle) != NULL, "stderr line '%s' does not say '%s'", err, needle);
	va_end(ap);
}

/* C_Initialize with configuration `config` must fail with CKR_GENERAL_ERROR,
 * leave the module uninitialised, and say why in one stderr line. */
static void
assert_config_error(const char *config, char *err, size_t err_len)
{
	struct module m = p11gate_open();
	CK_INFO info;
	CK_RV rv;

	ck_assert_int_eq(setenv("P11GATE_CONFIG", config, 1), 0);
	rv = initialize_capturing(m.f, NULL, err, err_len);
	ck_assert_msg(rv == CKR_GENERAL_ERROR, "C_Initialize with %s returned %s, expected CKR_GENERAL_ERROR (stderr: %s)",
	              config, rv_text(rv), err);
	ck_assert_rv(m.f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	/* A failed C_Initialize leaves nothing behind: a good one works next. */
	ck_assert_int_eq(setenv("P11GATE_CONFIG", fx.config, 1), 0);
	ck_assert_rv(m.f->C_Initialize(NULL), CKR_OK);
	assert_signs(m.f, "after a configuration error");
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
}

/* ==== before C_Initialize ================================================== */

/* Calls every function of the 2.40 table (and of the 3.0 one if given) with
 * arguments that would be valid, and lists those that did not answer
 * CKR_CRYPTOKI_NOT_INITIALIZED.  Returns how many were called. */
static int
call_all_uninitialized(const CK_FUNCTION_LIST *f, const struct test_function_list_3_0 *f3,
                       CK_SESSION_HANDLE s, char *bad, size_t bad_len)
{
	CK_BYTE buf[64] = { 0 }, out[64];
	CK_ULONG out_len = sizeof out, count = 1;
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE attr = { CKA_CLASS, &cls, sizeof cls };
	CK_OBJECT_HANDLE h = 1, h2 = 2;
	CK_SLOT_ID slot = 0;
	CK_INFO info;
	CK_SLOT_INFO slot_info;
	CK_TOKEN_INFO token_info;
	CK_MECHANISM_INFO mech_info;
	CK_SESSION_INFO session_info;
	CK_SLOT_ID slots[8];
	CK_MECHANISM_TYPE mechs[8];
	CK_UTF8CHAR pin[] = "1234";
	CK_UTF8CHAR label[32];
	int called = 0;

	memset(label, ' ', sizeof label);
	bad[0] = '\0';
#define NI(table, name, args)                                                  \
	do {                                                                   \
		CK_RV rv_;                                                     \
		out_len = sizeof out;                                          \
		count = 1;                                                     \
		rv_ = (table)->name args;                                      \
		called++;                                                      \
		if (rv_ != CKR_CRYPTOKI_NOT_INITIALIZED) {                     \
			size_t used_ = strlen(bad);                            \
			snprintf(bad + used_, bad_len - used_, " %s=%s", #name, rv_text(rv_)); \
		}                                                              \
	} while (0)
	NI(f, C_Finalize, (NULL));
	NI(f, C_GetInfo, (&info));
	count = 8;
	NI(f, C_GetSlotList, (CK_TRUE, slots, &count));
	NI(f, C_GetSlotInfo, (slot, &slot_info));
	NI(f, C_GetTokenInfo, (slot, &token_info));
	NI(f, C_GetMechanismList, (slot, mechs, &count));
	NI(f, C_GetMechanismInfo, (slot, CKM_RSA_PKCS, &mech_info));
	NI(f, C_InitToken, (slot, pin, 4, label));
	NI(f, C_InitPIN, (s, pin, 4));
	NI(f, C_SetPIN, (s, pin, 4, pin, 4));
	NI(f, C_OpenSession, (slot, CKF_SERIAL_SESSION, NULL, NULL, &h));
	NI(f, C_CloseSession, (s));
	NI(f, C_CloseAllSessions, (slot));
	NI(f, C_GetSessionInfo, (s, &session_info));
	NI(f, C_GetOperationState, (s, out, &out_len));
	NI(f, C_SetOperationState, (s, buf, sizeof buf, 0, 0));
	NI(f, C_Login, (s, CKU_USER, pin, 4));
	NI(f, C_Logout, (s));
	NI(f, C_CreateObject, (s, &attr, 1, &h));
	NI(f, C_CopyObject, (s, h, &attr, 1, &h2));
	NI(f, C_DestroyObject, (s, h));
	NI(f, C_GetObjectSize, (s, h, &count));
	NI(f, C_GetAttributeValue, (s, h, &attr, 1));
	NI(f, C_SetAttributeValue, (s, h, &attr, 1));
	NI(f, C_FindObjectsInit, (s, &attr, 1));
	NI(f, C_FindObjects, (s, &h, 1, &count));
	NI(f, C_FindObjectsFinal, (s));
	NI(f, C_EncryptInit, (s, &mech, h));
	NI(f, C_Encrypt, (s, buf, 16, out, &out_len));
	NI(f, C_EncryptUpdate, (s, buf, 16, out, &out_len));
	NI(f, C_EncryptFinal, (s, out, &out_len));
	NI(f, C_DecryptInit, (s, &mech, h));
	NI(f, C_Decrypt, (s, buf, 16, out, &out_len));
	NI(f, C_DecryptUpdate, (s, buf, 16, out, &out_len));
	NI(f, C_DecryptFinal, (s, out, &out_len));
	NI(f, C_DigestInit, (s, &mech));
	NI(f, C_Digest, (s, buf, 16, out, &out_len));
	NI(f, C_DigestUpdate, (s, buf, 16));
	NI(f, C_DigestKey, (s, h));
	NI(f, C_DigestFinal, (s, out, &out_len));
	NI(f, C_SignInit, (s, &mech, h));
	NI(f, C_Sign, (s, buf, 16, out, &out_len));
	NI(f, C_SignUpdate, (s, buf, 16));
	NI(f, C_SignFinal, (s, out, &out_len));
	NI(f, C_SignRecoverInit, (s, &mech, h));
	NI(f, C_SignRecover, (s, buf, 16, out, &out_len));
	NI(f, C_VerifyInit, (s, &mech, h));
	NI(f, C_Verify, (s, buf, 16, buf, 16));
	NI(f, C_VerifyUpdate, (s, buf, 16));
	NI(f, C_VerifyFinal, (s, buf, 16));
	NI(f, C_VerifyRecoverInit, (s, &mech, h));
	NI(f, C_VerifyRecover, (s, buf, 16, out, &out_len));
	NI(f, C_DigestEncryptUpdate, (s, buf, 16, out, &out_len));
	NI(f, C_DecryptDigestUpdate, (s, buf, 16, out, &out_len));
	NI(f, C_SignEncryptUpdate, (s, buf, 16, out, &out_len));
	NI(f, C_DecryptVerifyUpdate, (s, buf, 16, out, &out_len));
	NI(f, C_GenerateKey, (s, &mech, &attr, 1, &h));
	NI(f, C_GenerateKeyPair, (s, &mech, &attr, 1, &attr, 1, &h, &h2));
	NI(f, C_WrapKey, (s, &mech, h, h2, out, &out_len));
	NI(f, C_UnwrapKey, (s, &mech, h, buf, 16, &attr, 1, &h2));
	NI(f, C_DeriveKey, (s, &mech, h, &attr, 1, &h2));
	NI(f, C_SeedRandom, (s, buf, 16));
	NI(f, C_GenerateRandom, (s, out, 16));
	NI(f, C_GetFunctionStatus, (s));
	NI(f, C_CancelFunction, (s));
	NI(f, C_WaitForSlotEvent, (CKF_DONT_BLOCK, &slot, NULL));
	if (f3 != NULL) {
		NI(f3, C_LoginUser, (s, CKU_USER, pin, 4, pin, 4));
		NI(f3, C_SessionCancel, (s, 0));
		NI(f3, C_MessageEncryptInit, (s, &mech, h));
		NI(f3, C_EncryptMessage, (s, buf, 16, buf, 16, buf, 16, out, &out_len));
		NI(f3, C_EncryptMessageBegin, (s, buf, 16, buf, 16));
		NI(f3, C_EncryptMessageNext, (s, buf, 16, buf, 16, out, &out_len, 0));
		NI(f3, C_MessageEncryptFinal, (s));
		NI(f3, C_MessageDecryptInit, (s, &mech, h));
		NI(f3, C_DecryptMessage, (s, buf, 16, buf, 16, buf, 16, out, &out_len));
		NI(f3, C_DecryptMessageBegin, (s, buf, 16, buf, 16));
		NI(f3, C_DecryptMessageNext, (s, buf, 16, buf, 16, out, &out_len, 0));
		NI(f3, C_MessageDecryptFinal, (s));
		NI(f3, C_MessageSignInit, (s, &mech, h));
		NI(f3, C_SignMessage, (s, buf, 16, buf, 16, out, &out_len));
		NI(f3, C_SignMessageBegin, (s, buf, 16));
		NI(f3, C_SignMessageNext, (s, buf, 16, buf, 16, out, &out_len));
		NI(f3, C_MessageSignFinal, (s));
		NI(f3, C_MessageVerifyInit, (s, &mech, h));
		NI(f3, C_VerifyMessage, (s, buf, 16, buf, 16, buf, 16));
		NI(f3, C_VerifyMessageBegin, (s, buf, 16));
		NI(f3, C_VerifyMessageNext, (s, buf, 16, buf, 16, buf, 16));
		NI(f3, C_MessageVerifyFinal, (s));
	}
#undef NI
	return called;
}

static const struct test_function_list_3_0 *
interface_3_0(void *dl)
{
	get_interface_fn get_iface = (get_interface_fn)dlsym(dl, "C_GetInterface");
	CK_VERSION v30 = { 3, 0 };
	CK_INTERFACE_PTR iface = NULL;

	ck_assert_msg(get_iface != NULL, "p11gate.so exports no C_GetInterface");
	ck_assert_rv(get_iface((CK_UTF8CHAR_PTR)"PKCS 11", &v30, &iface, 0), CKR_OK);
	ck_assert_ptr_nonnull(iface);
	ck_assert_ptr_nonnull(iface->pFunctionList);
	return iface->pFunctionList;
}

START_TEST(test_calls_before_initialize)
{
	struct module m = p11gate_open();
	const struct test_function_list_3_0 *f3 = interface_3_0(m.dl);
	char bad[4096];
	int called;

	called = call_all_uninitialized(m.f, NULL, 1, bad, sizeof bad);
	ck_assert_int_eq(called, N_FUNCTIONS_2_40 - 2);   /* all but C_Initialize, C_GetFunctionList */
	ck_assert_msg(bad[0] == '\0', "before C_Initialize these did not answer CKR_CRYPTOKI_NOT_INITIALIZED:%s", bad);
	called = call_all_uninitialized(&f3->v2, f3, 1, bad, sizeof bad);
	ck_assert_int_eq(called, N_FUNCTIONS_3_0 - 4);    /* and C_GetInterfaceList, C_GetInterface */
	ck_assert_msg(bad[0] == '\0', "before C_Initialize (3.0 table) these did not answer CKR_CRYPTOKI_NOT_INITIALIZED:%s", bad);
	/* The wrapped module was not even loaded, so it cannot have been touched. */
	ck_assert_msg(!softhsm_loaded(), "SoftHSM2 was loaded before C_Initialize");
}
END_TEST

/* C_GetFunctionList, C_GetInterfaceList and C_GetInterface work before
 * C_Initialize (the application needs them to call it). */
START_TEST(test_entry_points_before_initialize)
{
	struct module m = p11gate_open();
	get_interface_list_fn get_list = (get_interface_list_fn)dlsym(m.dl, "C_GetInterfaceList");
	CK_INTERFACE list[8];
	CK_ULONG n = 0;
	bool has_3_0 = false;

	ck_assert_ptr_nonnull(get_list);
	ck_assert_rv(get_list(NULL, &n), CKR_OK);
	ck_assert_int_ge(n, 1);
	ck_assert_int_le(n, 8);
	if (n > 1) {
		CK_ULONG small = 1;

		ck_assert_rv(get_list(list, &small), CKR_BUFFER_TOO_SMALL);
		ck_assert_int_eq(small, n);
	}
	ck_assert_rv(get_list(list, &n), CKR_OK);
	for (CK_ULONG i = 0; i < n; i++) {
		const CK_FUNCTION_LIST *t = list[i].pFunctionList;

		ck_assert_str_eq((const char *)list[i].pInterfaceName, "PKCS 11");
		ck_assert_ptr_nonnull(t);
		if (t->version.major == 3 && t->version.minor == 0)
			has_3_0 = true;
	}
	ck_assert_msg(has_3_0, "no PKCS 11 3.0 interface among %lu", (unsigned long)n);
	ck_assert_int_eq(m.f->version.major, 2);
	ck_assert_int_eq(m.f->version.minor, 40);
	ck_assert_msg(!softhsm_loaded(), "SoftHSM2 was loaded by an entry point before C_Initialize");
}
END_TEST

/* ==== C_Initialize and C_Finalize ========================================= */

START_TEST(test_double_initialize)
{
	struct module m = p11gate_open();

	ck_assert_rv(m.f->C_Initialize(NULL), CKR_OK);
	ck_assert_rv(m.f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	assert_signs(m.f, "after a second C_Initialize");
	ck_assert_rv(m.f->C_Finalize((CK_VOID_PTR)1), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}
END_TEST

START_TEST(test_finalize_and_initialize_again)
{
	struct module m = p11gate_open();
	char bad[4096];

	for (int round = 0; round < 3; round++) {
		CK_SESSION_HANDLE s;
		const char *err;

		ck_assert_rv(m.f->C_Initialize(NULL), CKR_OK);
		s = open_session(m.f, release_slot(m.f));
		login(m.f, s);
		err = sign_and_verify_both(m.f, s, "finalize and again");
		ck_assert_msg(err == NULL, "round %d: %s", round, err);
		ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
		/* Everything, including the session left open, is gone. */
		call_all_uninitialized(m.f, NULL, s, bad, sizeof bad);
		ck_assert_msg(bad[0] == '\0', "round %d, after C_Finalize, these did not answer "
		              "CKR_CRYPTOKI_NOT_INITIALIZED:%s", round, bad);
	}
}
END_TEST

/* ---- CK_C_INITIALIZE_ARGS: locking ----------------------------------------- */

/* Mutex callbacks that count their calls, to show they reach the token. */
struct counted_mutex {
	pthread_mutex_t m;
};
static _Atomic unsigned long n_create, n_lock;

static CK_RV
cb_create(CK_VOID_PTR_PTR out)
{
	struct counted_mutex *cm;

	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	cm = calloc(1, sizeof *cm);
	if (cm == NULL)
		return CKR_HOST_MEMORY;
	pthread_mutex_init(&cm->m, NULL);
	n_create++;
	*out = cm;
	return CKR_OK;
}

static CK_RV
cb_destroy(CK_VOID_PTR p)
{
	struct counted_mutex *cm = p;

	if (cm == NULL)
		return CKR_MUTEX_BAD;
	pthread_mutex_destroy(&cm->m);
	free(cm);
	return CKR_OK;
}

static CK_RV
cb_lock(CK_VOID_PTR p)
{
	struct counted_mutex *cm = p;

	if (cm == NULL)
		return CKR_MUTEX_BAD;
	n_lock++;
	return pthread_mutex_lock(&cm->m) == 0 ? CKR_OK : CKR_MUTEX_BAD;
}

static CK_RV
cb_unlock(CK_VOID_PTR p)
{
	struct counted_mutex *cm = p;

	if (cm == NULL)
		return CKR_MUTEX_BAD;
	return pthread_mutex_unlock(&cm->m) == 0 ? CKR_OK : CKR_MUTEX_NOT_LOCKED;
}

static CK_C_INITIALIZE_ARGS
init_args(unsigned callbacks, CK_FLAGS flags, CK_VOID_PTR reserved)
{
	CK_C_INITIALIZE_ARGS a;

	memset(&a, 0, sizeof a);
	a.CreateMutex = (callbacks & 1) ? cb_create : NULL;
	a.DestroyMutex = (callbacks & 2) ? cb_destroy : NULL;
	a.LockMutex = (callbacks & 4) ? cb_lock : NULL;
	a.UnlockMutex = (callbacks & 8) ? cb_unlock : NULL;
	a.flags = flags;
	a.pReserved = reserved;
	return a;
}

START_TEST(test_partial_mutex_callbacks)
{
	struct module m = p11gate_open();

	/* Every mix of some but not all four callbacks, with and without OS locking. */
	for (unsigned mask = 1; mask < 15; mask++) {
		for (int os = 0; os < 2; os++) {
			CK_C_INITIALIZE_ARGS a = init_args(mask, os ? CKF_OS_LOCKING_OK : 0, NULL);
			CK_RV rv = m.f->C_Initialize(&a);
			CK_INFO info;

			ck_assert_msg(rv == CKR_ARGUMENTS_BAD, "callbacks 0x%x%s: %s, expected CKR_ARGUMENTS_BAD",
			              mask, os ? " + CKF_OS_LOCKING_OK" : "", rv_text(rv));
			ck_assert_rv(m.f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
		}
	}
	ck_assert_msg(!softhsm_loaded(), "SoftHSM2 was loaded although the arguments were bad");
}
END_TEST

START_TEST(test_all_mutex_callbacks)
{
	struct module m = p11gate_open();
	CK_C_INITIALIZE_ARGS a = init_args(15, 0, NULL);

	n_create = n_lock = 0;
	ck_assert_rv(m.f->C_Initialize(&a), CKR_OK);
	assert_signs(m.f, "with the application's mutex callbacks");
	/* They go on to SoftHSM2 unchanged, which then locks with them. */
	ck_assert_msg(n_create > 0 && n_lock > 0,
	              "the application's mutex callbacks were never used (create %lu, lock %lu)",
	              (unsigned long)n_create, (unsigned long)n_lock);
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
}
END_TEST

START_TEST(test_os_locking)
{
	struct module m = p11gate_open();
	CK_C_INITIALIZE_ARGS os = init_args(0, CKF_OS_LOCKING_OK, NULL);
	CK_C_INITIALIZE_ARGS both = init_args(15, CKF_OS_LOCKING_OK, NULL);

	ck_assert_rv(m.f->C_Initialize(&os), CKR_OK);
	assert_signs(m.f, "with CKF_OS_LOCKING_OK");
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
	ck_assert_rv(m.f->C_Initialize(&both), CKR_OK);
	assert_signs(m.f, "with callbacks and CKF_OS_LOCKING_OK");
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
}
END_TEST

/* ---- CK_C_INITIALIZE_ARGS: pReserved and configuration discovery ------------ */

/* What SoftHSM2 itself answers to these arguments (it never reads
 * pReserved: anything there is CKR_ARGUMENTS_BAD). */
static CK_RV
softhsm_answer(CK_C_INITIALIZE_ARGS *a)
{
	struct module direct = module_open(fx.softhsm);
	CK_RV rv = direct.f->C_Initialize(a);

	if (rv == CKR_OK)
		direct.f->C_Finalize(NULL);
	return rv;
}

/* A pReserved that is not p11gate's goes to the token, whose answer the
 * caller gets; p11gate stays uninitialised. */
static void
assert_reserved_answered_by_token(const struct module *m, void *reserved, const char *what)
{
	CK_C_INITIALIZE_ARGS a = init_args(0, CKF_OS_LOCKING_OK, reserved);
	CK_RV direct = softhsm_answer(&a), rv;
	CK_INFO info;

	ck_assert_msg(direct == CKR_ARGUMENTS_BAD, "SoftHSM2 answers %s to %s", rv_text(direct), what);
	rv = m->f->C_Initialize(&a);
	ck_assert_msg(rv == direct, "pReserved = %s: p11gate answers %s, SoftHSM2 %s", what,
	              rv_text(rv), rv_text(direct));
	ck_assert_rv(m->f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
}

START_TEST(test_reserved_not_ours)
{
	struct module m = p11gate_open();
	char text[] = "some-other-module-option=1";
	char prefix_only[] = "p11gate-config";

	assert_reserved_answered_by_token(&m, text, "another module's option");
	assert_reserved_answered_by_token(&m, prefix_only, "a string shorter than p11gate's prefix");
}
END_TEST

/* pkcs11test's Init.InitArgsBadReserved passes (void *)1 and expects
 * CKR_ARGUMENTS_BAD; p11gate once read through it and died.  Nothing
 * p11gate cannot prove readable is read: an unmapped page, an unreadable
 * one, and strings that run into the end of a mapping without a NUL (ours
 * by their prefix, or not) are the token's to answer. */
START_TEST(test_reserved_bogus_pointers)
{
	struct module m = p11gate_open();
	long page = sysconf(_SC_PAGESIZE);
	static const char ours[] = "p11gate-config=";
	unsigned char *map, *unmapped, *unreadable, *last;

	assert_reserved_answered_by_token(&m, (void *)1, "(void *)1");
	assert_reserved_answered_by_token(&m, (void *)-1L, "(void *)-1");

	map = mmap(NULL, (size_t)page * 3, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	unmapped = map + page;
	unreadable = map + 2 * page;
	ck_assert_int_eq(munmap(unmapped, (size_t)page), 0);
	ck_assert_int_eq(mprotect(unreadable, (size_t)page, PROT_NONE), 0);
	assert_reserved_answered_by_token(&m, unmapped, "an unmapped page");
	assert_reserved_answered_by_token(&m, unreadable, "a PROT_NONE page");
	assert_reserved_answered_by_token(&m, unmapped + 100, "inside an unmapped page");

	/* The last bytes of the first page, no NUL before the unmapped one. */
	memset(map, 'a', (size_t)page);
	last = map + page - 40;
	memcpy(last, ours, strlen(ours));
	assert_reserved_answered_by_token(&m, last, "p11gate's prefix running into an unmapped page");
	memcpy(map + page - 8, "xyz", 3);
	assert_reserved_answered_by_token(&m, map + page - 8, "another string running into an unmapped page");
	assert_reserved_answered_by_token(&m, map + page - 3, "a prefix cut by an unmapped page");

	/* Ours, ending exactly at the end of the mapping: read, and used. */
	{
		size_t len = strlen(ours) + strlen(fx.config) + 1;
		CK_C_INITIALIZE_ARGS a;
		char *at = (char *)map + page - len;

		ck_assert_int_eq(unsetenv("P11GATE_CONFIG"), 0);
		snprintf(at, len, "%s%s", ours, fx.config);
		a = init_args(0, CKF_OS_LOCKING_OK, at);
		ck_assert_rv(m.f->C_Initialize(&a), CKR_OK);
		assert_signs(m.f, "configured by a pReserved ending at the end of its mapping");
		ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
	}
}
END_TEST

/* The argument structure itself is read through the kernel as well:
 * SoftHSM2 would crash on these, p11gate answers. */
START_TEST(test_init_args_unreadable)
{
	struct module m = p11gate_open();
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *map;
	CK_INFO info;

	ck_assert_rv(m.f->C_Initialize((void *)1), CKR_ARGUMENTS_BAD);
	map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	ck_assert_int_eq(munmap(map + page, (size_t)page), 0);
	/* Half of it on the page that is gone. */
	ck_assert_rv(m.f->C_Initialize(map + page - sizeof(CK_C_INITIALIZE_ARGS) / 2), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	ck_assert_rv(m.f->C_Initialize(NULL), CKR_OK);
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
}
END_TEST

START_TEST(test_reserved_names_config)
{
	struct module m = p11gate_open();
	char reserved[PATH_MAX + 32];
	CK_C_INITIALIZE_ARGS a;

	ck_assert_int_eq(unsetenv("P11GATE_CONFIG"), 0);
	snprintf(reserved, sizeof reserved, "p11gate-config=%s", fx.config);
	a = init_args(0, CKF_OS_LOCKING_OK, reserved);
	ck_assert_rv(m.f->C_Initialize(&a), CKR_OK);
	assert_signs(m.f, "configured through pReserved");
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
}
END_TEST

/* The path in pReserved is really the one read: a missing one is named. */
START_TEST(test_reserved_missing_config)
{
	struct module m = p11gate_open();
	char reserved[PATH_MAX + 32], missing[PATH_MAX], prefix[PATH_MAX + 16], err[2048];
	CK_C_INITIALIZE_ARGS a;

	ck_assert_int_eq(unsetenv("P11GATE_CONFIG"), 0);
	path_join(missing, fx.work, "reserved-missing.yaml");
	snprintf(reserved, sizeof reserved, "p11gate-config=%s", missing);
	snprintf(prefix, sizeof prefix, "p11gate: %s", missing);
	a = init_args(0, CKF_OS_LOCKING_OK, reserved);
	ck_assert_rv(initialize_capturing(m.f, &a, err, sizeof err), CKR_GENERAL_ERROR);
	assert_one_line(err, prefix, strerror(ENOENT), NULL);
}
END_TEST

/* P11GATE_CONFIG comes before pReserved. */
START_TEST(test_environment_wins_over_reserved)
{
	struct module m = p11gate_open();
	char reserved[PATH_MAX + 32], missing[PATH_MAX];
	CK_C_INITIALIZE_ARGS a;

	path_join(missing, fx.work, "reserved-missing.yaml");
	snprintf(reserved, sizeof reserved, "p11gate-config=%s", missing);
	ck_assert_int_eq(setenv("P11GATE_CONFIG", fx.config, 1), 0);
	a = init_args(0, CKF_OS_LOCKING_OK, reserved);
	ck_assert_rv(m.f->C_Initialize(&a), CKR_OK);
	assert_signs(m.f, "P11GATE_CONFIG over pReserved");
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
}
END_TEST

/* With neither, the built-in path; this machine is not expected to have
 * one, and a test must never read the system's configuration. */
START_TEST(test_default_config)
{
	struct module m = p11gate_open();
	char prefix[PATH_MAX + 16], err[2048];

	if (access(P11GATE_DEFAULT_CONFIG, F_OK) == 0) {
		fprintf(stderr, "skipped: %s exists on this machine\n", P11GATE_DEFAULT_CONFIG);
		return;
	}
	ck_assert_int_eq(unsetenv("P11GATE_CONFIG"), 0);
	snprintf(prefix, sizeof prefix, "p11gate: %s", P11GATE_DEFAULT_CONFIG);
	ck_assert_rv(initialize_capturing(m.f, NULL, err, sizeof err), CKR_GENERAL_ERROR);
	assert_one_line(err, prefix, strerror(ENOENT), NULL);
}
END_TEST

/* ---- configuration errors ----------------------------------------------- */

START_TEST(test_config_missing)
{
	char path[PATH_MAX], prefix[PATH_MAX + 16], err[2048];

	path_join(path, fx.work, "no-such-config.yaml");
	snprintf(prefix, sizeof prefix, "p11gate: %s", path);
	assert_config_error(path, err, sizeof err);
	assert_one_line(err, prefix, strerror(ENOENT), NULL);
}
END_TEST

/* Tests run as root, who reads any file: a directory is the unreadable
 * file root meets. */
START_TEST(test_config_directory)
{
	char prefix[PATH_MAX + 16], err[2048];

	snprintf(prefix, sizeof prefix, "p11gate: %s", fx.work);
	assert_config_error(fx.work, err, sizeof err);
	assert_one_line(err, prefix, NULL);
	ck_assert_msg(strstr(err, strerror(EISDIR)) != NULL || strstr(err, "directory") != NULL ||
	              strstr(err, "regular file") != NULL, "'%s' does not say it is a directory", err);
}
END_TEST

/* A file without read permission, for a user without privileges: a child
 * loads p11gate.so, drops to nobody and initialises.  Loaded before the drop:
 * the build tree may be in a checkout nobody cannot search (what is tested
 * is reading the policy, which happens in C_Initialize). */
START_TEST(test_config_unreadable)
{
	char dir[] = "/tmp/p11gate-unreadable-XXXXXX";
	char path[PATH_MAX], prefix[PATH_MAX + 16], err[2048] = "";
	int pipefd[2], status;
	ssize_t n;
	pid_t pid;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
	path_join(path, dir, "p11gate.yaml");
	write_file(path, "version: 1\nmodule: /usr/lib/softhsm/libsofthsm2.so\n");
	ck_assert_int_eq(chmod(path, 0), 0);
	snprintf(prefix, sizeof prefix, "p11gate: %s", path);
	ck_assert_int_eq(pipe(pipefd), 0);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct module m;
		CK_RV rv;

		close(pipefd[0]);
		dup2(pipefd[1], STDERR_FILENO);
		m = p11gate_open();
		/* Root drops to nobody; any other account (a package build's,
		 * dh_auto_test) is already one without privileges. */
		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(3);
		if (access(path, R_OK) == 0)
			_exit(4);       /* still privileged: the test would prove nothing */
		setenv("P11GATE_CONFIG", path, 1);
		rv = m.f->C_Initialize(NULL);
		_exit(rv == CKR_GENERAL_ERROR ? 0 : 5);
	}
	close(pipefd[1]);
	n = read(pipefd[0], err, sizeof err - 1);
	err[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	unlink(path);
	rmdir(dir);
	ck_assert_msg(WIFEXITED(status), "the unprivileged child died (status 0x%x)", status);
	ck_assert_msg(WEXITSTATUS(status) != 3, "cannot drop privileges to uid 65534");
	ck_assert_msg(WEXITSTATUS(status) != 4, "uid 65534 can read a mode-000 file");
	ck_assert_msg(WEXITSTATUS(status) == 0, "C_Initialize did not fail with CKR_GENERAL_ERROR (child exit %d, stderr '%s')",
	              WEXITSTATUS(status), err);
	assert_one_line(err, prefix, strerror(EACCES), NULL);
}
END_TEST

START_TEST(test_config_yaml_syntax)
{
	char path[PATH_MAX], prefix[PATH_MAX + 16], err[2048];

	path_join(path, fx.work, "syntax.yaml");
	/* libyaml: "mapping values are not allowed in this context" at 2:11. */
	write_file(path, "version: 1\nmodule: /x: y\n");
	snprintf(prefix, sizeof prefix, "p11gate: %s:2:11: ", path);
	assert_config_error(path, err, sizeof err);
	assert_one_line(err, prefix, "mapping values are not allowed", NULL);
}
END_TEST

START_TEST(test_config_module_missing)
{
	char path[PATH_MAX], module[PATH_MAX], text[PATH_MAX + 64], prefix[PATH_MAX + 16], err[2048];

	path_join(path, fx.work, "module-missing.yaml");
	path_join(module, fx.work, "no-such-module.so");
	snprintf(text, sizeof text, "version: 1\nmodule: %s\n", module);
	write_file(path, text);
	snprintf(prefix, sizeof prefix, "p11gate: %s:2:9: ", path);
	assert_config_error(path, err, sizeof err);
	assert_one_line(err, prefix, module, "cannot be loaded", strerror(ENOENT), NULL);
	ck_assert_msg(!softhsm_loaded(), "SoftHSM2 loaded although the module named is another");
}
END_TEST

/* ==== NULL arguments ======================================================= */

/* The same calls on SoftHSM2 directly and on p11gate: the expectations are
 * SoftHSM2's own behaviour, and p11gate (which judges some of these calls
 * itself) must neither crash nor answer otherwise. */
static void
null_arguments_on(const char *path, bool is_p11gate)
{
	struct module m = module_open(path);
	CK_MECHANISM sign_mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_OBJECT_HANDLE key, h = CK_INVALID_HANDLE, h2 = CK_INVALID_HANDLE;
	CK_BYTE data[32] = { 1 };
	CK_ULONG len = 0;
	CK_SESSION_HANDLE s;
	CK_SLOT_ID slot;

	if (is_p11gate)
		ck_assert_int_eq(setenv("P11GATE_CONFIG", fx.config, 1), 0);
	ck_assert_rv(m.f->C_GetFunctionList(NULL), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_Initialize(NULL), CKR_OK);
	ck_assert_rv(m.f->C_GetFunctionList(NULL), CKR_ARGUMENTS_BAD);
	slot = release_slot(m.f);
	ck_assert_rv(m.f->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_GetSlotList(CK_TRUE, NULL, NULL), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_GetSlotInfo(slot, NULL), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_GetTokenInfo(slot, NULL), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_GetMechanismList(slot, NULL, NULL), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_GetMechanismInfo(slot, CKM_RSA_PKCS, NULL), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, NULL), CKR_ARGUMENTS_BAD);
	s = open_session(m.f, slot);
	ck_assert_rv(m.f->C_GetSessionInfo(s, NULL), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_Login(s, CKU_USER, NULL, 4), CKR_ARGUMENTS_BAD);
	login(m.f, s);
	key = find_object(m.f, s, CKO_PRIVATE_KEY, RSA_ID, sizeof RSA_ID);
	ck_assert_msg(key != CK_INVALID_HANDLE, "no RSA private key");
	ck_assert_rv(m.f->C_FindObjectsInit(s, NULL, 1), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_GetAttributeValue(s, key, NULL, 1), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_SetAttributeValue(s, key, NULL, 1), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_CreateObject(s, NULL, 1, &h), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_CopyObject(s, key, NULL, 1, &h), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_SignInit(s, NULL, key), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_DecryptInit(s, NULL, key), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_DigestInit(s, NULL), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_GenerateKey(s, NULL, NULL, 0, &h), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_GenerateKeyPair(s, NULL, NULL, 0, NULL, 0, &h, &h2), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_DeriveKey(s, NULL, key, NULL, 0, &h), CKR_ARGUMENTS_BAD);
	ck_assert_rv(m.f->C_UnwrapKey(s, NULL, key, data, sizeof data, NULL, 0, &h), CKR_ARGUMENTS_BAD);
	/* NULL inside an operation: the signing hooks must not crash.  Whether
	 * the operation survives such an error is the token's business, so each
	 * case has a session of its own. */
	for (int step = 0; step < 3; step++) {
		CK_SESSION_HANDLE op = open_session(m.f, slot);

		ck_assert_rv(m.f->C_SignInit(op, &sign_mech, key), CKR_OK);
		if (step == 0) {
			ck_assert_rv(m.f->C_Sign(op, data, sizeof data, NULL, NULL), CKR_ARGUMENTS_BAD);
		} else if (step == 1) {
			ck_assert_rv(m.f->C_SignUpdate(op, NULL, 5), CKR_ARGUMENTS_BAD);
		} else {
			ck_assert_rv(m.f->C_SignUpdate(op, data, sizeof data), CKR_OK);
			ck_assert_rv(m.f->C_SignFinal(op, NULL, NULL), CKR_ARGUMENTS_BAD);
		}
		ck_assert_rv(m.f->C_CloseSession(op), CKR_OK);
	}
	ck_assert_rv(m.f->C_Sign(s, data, sizeof data, NULL, &len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_rv(m.f->C_CloseSession(s), CKR_OK);
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
	dlclose(m.dl);
}

START_TEST(test_null_arguments_softhsm)
{
	null_arguments_on(fx.softhsm, false);
}
END_TEST

START_TEST(test_null_arguments)
{
	struct module m = p11gate_open();
	get_interface_list_fn get_list = (get_interface_list_fn)dlsym(m.dl, "C_GetInterfaceList");
	get_interface_fn get_iface = (get_interface_fn)dlsym(m.dl, "C_GetInterface");
	CK_ULONG n = 0;

	ck_assert_msg(get_list != NULL && get_iface != NULL, "p11gate.so lacks C_GetInterfaceList or C_GetInterface");
	ck_assert_rv(get_list(NULL, NULL), CKR_ARGUMENTS_BAD);
	ck_assert_rv(get_iface((CK_UTF8CHAR_PTR)"PKCS 11", NULL, NULL, 0), CKR_ARGUMENTS_BAD);
	ck_assert_rv(get_list(NULL, &n), CKR_OK);
	null_arguments_on(fx.p11gate, true);
}
END_TEST

/* ==== what the application sees ============================================ */

/* Clients branch on the library's manufacturer and description (graphene's
 * suite chooses its tests by them): they are SoftHSM2's own.  The library
 * version is p11gate's, where its presence stays visible. */
START_TEST(test_get_info)
{
	struct module direct = module_open(fx.softhsm);
	struct module m = p11gate_open();
	CK_INFO info, expected;

	ck_assert_rv(direct.f->C_Initialize(NULL), CKR_OK);
	ck_assert_rv(direct.f->C_GetInfo(&expected), CKR_OK);
	ck_assert_rv(direct.f->C_Finalize(NULL), CKR_OK);

	ck_assert_rv(m.f->C_Initialize(NULL), CKR_OK);
	memset(&info, 0xa5, sizeof info);
	ck_assert_rv(m.f->C_GetInfo(&info), CKR_OK);
	ck_assert_msg(memcmp(info.manufacturerID, expected.manufacturerID, 32) == 0,
	              "manufacturerID '%.32s', SoftHSM2 says '%.32s'", info.manufacturerID,
	              expected.manufacturerID);
	ck_assert_msg(memcmp(info.libraryDescription, expected.libraryDescription, 32) == 0,
	              "libraryDescription '%.32s', SoftHSM2 says '%.32s'", info.libraryDescription,
	              expected.libraryDescription);
	ck_assert_int_eq(info.flags, expected.flags);
	ck_assert_int_eq(info.libraryVersion.major, P11GATE_VERSION_MAJOR);
	ck_assert_int_eq(info.libraryVersion.minor, P11GATE_VERSION_MINOR);
	ck_assert_int_eq(info.cryptokiVersion.major, 2);      /* SoftHSM2 2.6.1 is 2.40 */
	ck_assert_int_eq(info.cryptokiVersion.minor, 40);
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
	dlclose(direct.dl);
}
END_TEST

/* OpenSC's pkcs11-spy writes its own function list into the CK_INTERFACE
 * the module below returns: it must be writable, and one caller's write
 * must not change what the next caller gets. */
START_TEST(test_interface_writable)
{
	struct module m = p11gate_open();
	get_interface_fn get_iface = (get_interface_fn)dlsym(m.dl, "C_GetInterface");
	static CK_FUNCTION_LIST layer_above = { .version = { 3, 0 } };
	CK_INTERFACE_PTR first = NULL, second = NULL;
	const struct test_function_list_3_0 *f3;

	ck_assert_ptr_nonnull(get_iface);
	ck_assert_rv(get_iface((CK_UTF8CHAR_PTR)"PKCS 11", NULL, &first, 0), CKR_OK);
	f3 = first->pFunctionList;
	first->pFunctionList = &layer_above;      /* what pkcs11-spy does */
	ck_assert_rv(get_iface((CK_UTF8CHAR_PTR)"PKCS 11", NULL, &second, 0), CKR_OK);
	ck_assert_ptr_eq(second->pFunctionList, f3);
	ck_assert_ptr_eq(first->pFunctionList, &layer_above);
	ck_assert_rv(f3->v2.C_Initialize(NULL), CKR_OK);
	assert_signs(&f3->v2, "after a caller wrote into its CK_INTERFACE");
	ck_assert_rv(f3->v2.C_Finalize(NULL), CKR_OK);
}
END_TEST

/* One attribute of an object as a line: its rv and value (or length). */
static void
describe_attribute(FILE *out, const CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                   CK_ATTRIBUTE_TYPE type)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	CK_RV rv = f->C_GetAttributeValue(s, obj, &a, 1);

	fprintf(out, " 0x%lx:%s", (unsigned long)type, rv_text(rv));
	if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
		fprintf(out, "/%lx", (unsigned long)a.ulValueLen);
		return;
	}
	a.pValue = malloc(a.ulValueLen + 1);
	ck_assert_ptr_nonnull(a.pValue);
	rv = f->C_GetAttributeValue(s, obj, &a, 1);
	fprintf(out, "=");
	for (CK_ULONG i = 0; rv == CKR_OK && i < a.ulValueLen; i++)
		fprintf(out, "%02x", ((unsigned char *)a.pValue)[i]);
	if (rv != CKR_OK)
		fprintf(out, "%s", rv_text(rv));
	free(a.pValue);
}

static int
compare_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Everything an application can learn about the slots, tokens, mechanisms
 * and objects, as text.  Objects are sorted (their order varies). */
static char *
snapshot(const CK_FUNCTION_LIST *f)
{
	static const CK_ATTRIBUTE_TYPE attrs[] = {
		CKA_CLASS, CKA_TOKEN, CKA_PRIVATE, CKA_LABEL, CKA_ID, CKA_KEY_TYPE, CKA_SIGN, CKA_DECRYPT,
		CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_EC_PARAMS,
		CKA_EC_POINT, CKA_CERTIFICATE_TYPE, CKA_ALLOWED_MECHANISMS, CKA_SUBJECT, CKA_ISSUER,
	};
	CK_SLOT_ID slots[16];
	CK_ULONG n_slots = 16, n_present = 16;
	CK_SLOT_ID present[16];
	char *text = NULL, *objects[64];
	size_t text_len = 0, n_objects = 0;
	FILE *out = open_memstream(&text, &text_len);

	ck_assert_ptr_nonnull(out);
	ck_assert_rv(f->C_GetSlotList(CK_FALSE, slots, &n_slots), CKR_OK);
	ck_assert_rv(f->C_GetSlotList(CK_TRUE, present, &n_present), CKR_OK);
	fprintf(out, "slots %lu, with token %lu\n", (unsigned long)n_slots, (unsigned long)n_present);
	for (CK_ULONG i = 0; i < n_slots; i++) {
		CK_SLOT_INFO si;

		ck_assert_rv(f->C_GetSlotInfo(slots[i], &si), CKR_OK);
		fprintf(out, "slot 0x%lx '%.64s' '%.32s' flags 0x%lx hw %u.%u fw %u.%u\n", (unsigned long)slots[i],
		        si.slotDescription, si.manufacturerID, (unsigned long)si.flags, si.hardwareVersion.major,
		        si.hardwareVersion.minor, si.firmwareVersion.major, si.firmwareVersion.minor);
	}
	for (CK_ULONG i = 0; i < n_present; i++) {
		CK_MECHANISM_TYPE mechs[256];
		CK_ULONG n_mechs = 256;
		CK_TOKEN_INFO ti;
		CK_SESSION_HANDLE s;

		ck_assert_rv(f->C_GetTokenInfo(present[i], &ti), CKR_OK);
		fprintf(out, "token 0x%lx '%.32s' '%.32s' '%.16s' '%.16s' flags 0x%lx sessions %lu/%lu rw %lu/%lu "
		        "pin %lu-%lu mem %lx/%lx %lx/%lx hw %u.%u fw %u.%u\n",
		        (unsigned long)present[i], ti.label, ti.manufacturerID, ti.model, ti.serialNumber,
		        (unsigned long)ti.flags, (unsigned long)ti.ulSessionCount, (unsigned long)ti.ulMaxSessionCount,
		        (unsigned long)ti.ulRwSessionCount, (unsigned long)ti.ulMaxRwSessionCount,
		        (unsigned long)ti.ulMinPinLen, (unsigned long)ti.ulMaxPinLen,
		        (unsigned long)ti.ulTotalPublicMemory, (unsigned long)ti.ulFreePublicMemory,
		        (unsigned long)ti.ulTotalPrivateMemory, (unsigned long)ti.ulFreePrivateMemory,
		        ti.hardwareVersion.major, ti.hardwareVersion.minor, ti.firmwareVersion.major,
		        ti.firmwareVersion.minor);
		ck_assert_rv(f->C_GetMechanismList(present[i], mechs, &n_mechs), CKR_OK);
		fprintf(out, "mechanisms %lu\n", (unsigned long)n_mechs);
		for (CK_ULONG k = 0; k < n_mechs; k++) {
			CK_MECHANISM_INFO mi;

			ck_assert_rv(f->C_GetMechanismInfo(present[i], mechs[k], &mi), CKR_OK);
			fprintf(out, "mechanism 0x%lx %lu-%lu flags 0x%lx\n", (unsigned long)mechs[k],
			        (unsigned long)mi.ulMinKeySize, (unsigned long)mi.ulMaxKeySize, (unsigned long)mi.flags);
		}
		if (memcmp(ti.label, "release ", 8) != 0)
			continue;
		s = open_session(f, present[i]);
		login(f, s);
		{
			CK_OBJECT_HANDLE found[64];
			CK_ULONG n_found = 0;

			ck_assert_rv(f->C_FindObjectsInit(s, NULL, 0), CKR_OK);
			ck_assert_rv(f->C_FindObjects(s, found, 64, &n_found), CKR_OK);
			ck_assert_rv(f->C_FindObjectsFinal(s), CKR_OK);
			for (CK_ULONG k = 0; k < n_found; k++) {
				size_t len = 0;
				FILE *line = open_memstream(&objects[n_objects], &len);

				ck_assert_ptr_nonnull(line);
				CK_OBJECT_CLASS cls = CKO_DATA;
				CK_ATTRIBUTE ca = { CKA_CLASS, &cls, sizeof cls };

				ck_assert_rv(f->C_GetAttributeValue(s, found[k], &ca, 1), CKR_OK);
				fprintf(line, "object");
				for (size_t a = 0; a < sizeof attrs / sizeof attrs[0]; a++)
					describe_attribute(line, f, s, found[k], attrs[a]);
				/* A key's secret parts have a test of their own
				 * (test_secret_attributes); a certificate's value is public. */
				if (cls != CKO_PRIVATE_KEY && cls != CKO_SECRET_KEY) {
					describe_attribute(line, f, s, found[k], CKA_VALUE);
					describe_attribute(line, f, s, found[k], CKA_PRIVATE_EXPONENT);
				}
				fclose(line);
				n_objects++;
			}
		}
		ck_assert_rv(f->C_CloseSession(s), CKR_OK);
	}
	qsort(objects, n_objects, sizeof objects[0], compare_lines);
	fprintf(out, "objects %zu\n", n_objects);
	for (size_t k = 0; k < n_objects; k++) {
		fprintf(out, "%s\n", objects[k]);
		free(objects[k]);
	}
	fclose(out);
	return text;
}

START_TEST(test_same_as_softhsm)
{
	struct module direct = module_open(fx.softhsm);
	struct module gate;
	char *expected, *seen;

	ck_assert_rv(direct.f->C_Initialize(NULL), CKR_OK);
	expected = snapshot(direct.f);
	ck_assert_rv(direct.f->C_Finalize(NULL), CKR_OK);
	/* A snapshot that saw nothing would make the comparison empty. */
	ck_assert_msg(strstr(expected, "objects 6\n") != NULL, "SoftHSM2 itself does not show the 6 objects:\n%s", expected);

	gate = p11gate_open();
	ck_assert_rv(gate.f->C_Initialize(NULL), CKR_OK);
	seen = snapshot(gate.f);
	ck_assert_rv(gate.f->C_Finalize(NULL), CKR_OK);
	if (strcmp(expected, seen) != 0) {
		char a[PATH_MAX], b[PATH_MAX];
		size_t line = 1, at = 0;

		path_join(a, fx.work, "snapshot-softhsm.txt");
		path_join(b, fx.work, "snapshot-p11gate.txt");
		write_file(a, expected);
		write_file(b, seen);
		while (expected[at] == seen[at])
			line += expected[at++] == '\n';
		ck_abort_msg("slots, tokens, mechanisms or objects differ through p11gate from line %zu "
		             "(diff %s %s)", line, a, b);
	}
	free(expected);
	free(seen);
	dlclose(direct.dl);
}
END_TEST

/* What asking for each secret part of the two private keys answers. */
static char *
secret_answers(const CK_FUNCTION_LIST *f)
{
	static const CK_ATTRIBUTE_TYPE secret[] = {
		CKA_VALUE, CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1,
		CKA_EXPONENT_2, CKA_COEFFICIENT,
	};
	const CK_BYTE *ids[] = { RSA_ID, EC_ID };
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	CK_SESSION_HANDLE s;

	ck_assert_ptr_nonnull(out);
	s = open_session(f, release_slot(f));
	login(f, s);
	for (size_t k = 0; k < 2; k++) {
		CK_OBJECT_HANDLE key = find_object(f, s, CKO_PRIVATE_KEY, ids[k], 1);

		ck_assert_msg(key != CK_INVALID_HANDLE, "private key %zu not found", k);
		fprintf(out, "key %02x:", ids[k][0]);
		for (size_t a = 0; a < sizeof secret / sizeof secret[0]; a++)
			describe_attribute(out, f, s, key, secret[a]);
		fprintf(out, "\n");
	}
	ck_assert_rv(f->C_CloseSession(s), CKR_OK);
	fclose(out);
	return text;
}

/* The fixture's keys are sensitive: SoftHSM2 answers CKR_ATTRIBUTE_SENSITIVE
 * for their secret parts, or CKR_ATTRIBUTE_TYPE_INVALID for parts the key
 * type lacks, and clients rely on exactly these answers (FIELD-NOTES).
 * Nothing can be taken, so p11gate must answer the same. */
START_TEST(test_secret_attributes)
{
	struct module direct = module_open(fx.softhsm);
	struct module gate;
	char *expected, *seen;

	ck_assert_rv(direct.f->C_Initialize(NULL), CKR_OK);
	expected = secret_answers(direct.f);
	ck_assert_rv(direct.f->C_Finalize(NULL), CKR_OK);
	ck_assert_msg(strstr(expected, "CKR_OK") == NULL, "SoftHSM2 reveals a secret part: %s", expected);
	ck_assert_msg(strstr(expected, "CKR_ATTRIBUTE_SENSITIVE/") != NULL &&
	              strstr(expected, "CKR_ATTRIBUTE_TYPE_INVALID/") != NULL,
	              "SoftHSM2 does not answer both CKR_ATTRIBUTE_SENSITIVE and CKR_ATTRIBUTE_TYPE_INVALID: %s",
	              expected);

	gate = p11gate_open();
	ck_assert_rv(gate.f->C_Initialize(NULL), CKR_OK);
	seen = secret_answers(gate.f);
	ck_assert_rv(gate.f->C_Finalize(NULL), CKR_OK);
	ck_assert_msg(strcmp(expected, seen) == 0, "secret parts of sensitive keys: SoftHSM2 answers\n%s"
	              "p11gate answers\n%s", expected, seen);
	free(expected);
	free(seen);
	dlclose(direct.dl);
}
END_TEST

/* ==== what loading p11gate costs =========================================== */

/* Counts the opens of this test program's own file: hashing it for
 * program_sha256 and the audit record opens it (through /proc/self/exe),
 * and nothing else does. */
struct exe_watch {
	int fd;
	char exe[PATH_MAX];
};

static void
exe_watch_start(struct exe_watch *w)
{
	ssize_t n = readlink("/proc/self/exe", w->exe, sizeof w->exe - 1);

	ck_assert_int_gt(n, 0);
	w->exe[n] = '\0';
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	ck_assert_int_ge(w->fd, 0);
	ck_assert_int_ge(inotify_add_watch(w->fd, w->exe, IN_OPEN), 0);
}

static int
exe_opens(struct exe_watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int opens = 0;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof buf)) > 0) {
		for (char *at = buf; at < buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)at;

			opens += (e->mask & IN_OPEN) != 0;
			at += sizeof *e + e->len;
		}
	}
	return opens;
}

/* The audit log's last record names this program's SHA-256. */
static void
assert_last_record_hashes_exe(const char *exe)
{
	char path[PATH_MAX], hex[65], *text = NULL, *last = NULL;
	unsigned char digest[32];
	size_t len = 0;
	FILE *f;

	path_join(path, fx.dir, "audit.jsonl");
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_int_gt(getdelim(&text, &len, '\0', f), 0);
	fclose(f);
	{
		FILE *bin = fopen(exe, "rb");
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		unsigned char chunk[65536];
		size_t got;

		ck_assert_ptr_nonnull(bin);
		ck_assert_int_eq(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
		while ((got = fread(chunk, 1, sizeof chunk, bin)) > 0)
			EVP_DigestUpdate(md, chunk, got);
		ck_assert_int_eq(EVP_DigestFinal_ex(md, digest, NULL), 1);
		EVP_MD_CTX_free(md);
		fclose(bin);
	}
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	for (char *at = text; (at = strstr(at, "\"exe_sha256\":\"")) != NULL; at++)
		last = at + strlen("\"exe_sha256\":\"");
	ck_assert_msg(last != NULL, "no record in %s names exe_sha256", path);
	ck_assert_msg(strncmp(last, hex, 64) == 0, "the last record's exe_sha256 is %.64s, the program's %s",
	              last, hex);
	free(text);
}

/* Loading p11gate costs nothing a caller can notice: the program is not
 * hashed at C_Initialize (node's 99 MB took 89 ms there, at every
 * initialise), not for a session that only lists, once for the first
 * decision, and never again in the process, however often it initialises. */
START_TEST(test_program_hashed_once_when_needed)
{
	struct module m = p11gate_open();
	struct exe_watch w;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE found[16];
	CK_ULONG n = 0;

	exe_watch_start(&w);
	ck_assert_rv(m.f->C_Initialize(NULL), CKR_OK);
	s = open_session(m.f, release_slot(m.f));
	login(m.f, s);
	ck_assert_rv(m.f->C_FindObjectsInit(s, NULL, 0), CKR_OK);
	ck_assert_rv(m.f->C_FindObjects(s, found, 16, &n), CKR_OK);
	ck_assert_rv(m.f->C_FindObjectsFinal(s), CKR_OK);
	ck_assert_int_gt(n, 0);
	ck_assert_rv(m.f->C_CloseSession(s), CKR_OK);
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
	ck_assert_msg(exe_opens(&w) == 0, "a session that only lists hashed the program");

	ck_assert_rv(m.f->C_Initialize(NULL), CKR_OK);
	ck_assert_msg(exe_opens(&w) == 0, "C_Initialize hashed the program");
	assert_signs(m.f, "the first decision hashes the program");
	ck_assert_int_eq(exe_opens(&w), 1);
	assert_last_record_hashes_exe(w.exe);
	(void)exe_opens(&w);        /* the test's own reading of the program */
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);

	for (int round = 0; round < 2; round++) {
		ck_assert_rv(m.f->C_Initialize(NULL), CKR_OK);
		assert_signs(m.f, "after initialising again");
		ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
	}
	ck_assert_msg(exe_opens(&w) == 0, "the program was hashed again after C_Initialize");
	assert_last_record_hashes_exe(w.exe);
	close(w.fd);
}
END_TEST

/* What a module answers where p11gate has no reason of its own to differ:
 * the dual-function updates on a session with no operation, on a bad
 * handle, and on a running operation (which must survive the refusal, as
 * in the token); and an *Init with a key handle that names nothing. */
static char *
token_answers(const CK_FUNCTION_LIST *f)
{
	CK_MECHANISM sign_mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_MECHANISM rsa_mech = { CKM_RSA_PKCS, NULL, 0 };
	CK_OBJECT_HANDLE key, nothing = 0x7fff1234;
	CK_BYTE in[16] = { 0 }, out[512];
	CK_ULONG out_len;
	CK_SESSION_HANDLE s;
	char *text = NULL;
	size_t len = 0;
	FILE *w = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(w);
	s = open_session(f, release_slot(f));
	login(f, s);
	key = find_object(f, s, CKO_PRIVATE_KEY, RSA_ID, sizeof RSA_ID);
	ck_assert_msg(key != CK_INVALID_HANDLE, "no RSA private key");
#define ANSWER(what, call)                                                       \
	do {                                                                     \
		out_len = sizeof out;                                            \
		fprintf(w, "%s: %s\n", what, rv_text(call));                     \
	} while (0)
	ANSWER("no operation: C_DecryptDigestUpdate", f->C_DecryptDigestUpdate(s, in, 16, out, &out_len));
	ANSWER("no operation: C_DecryptVerifyUpdate", f->C_DecryptVerifyUpdate(s, in, 16, out, &out_len));
	ANSWER("no operation: C_SignEncryptUpdate", f->C_SignEncryptUpdate(s, in, 16, out, &out_len));
	ANSWER("bad handle: C_DecryptDigestUpdate", f->C_DecryptDigestUpdate(s + 1000, in, 16, out, &out_len));
	ANSWER("bad handle: C_SignEncryptUpdate", f->C_SignEncryptUpdate(s + 1000, in, 16, out, &out_len));
	ANSWER("no operation: C_SignRecover", f->C_SignRecover(s, in, 16, out, &out_len));
	ANSWER("key: C_SignRecoverInit", f->C_SignRecoverInit(s, &rsa_mech, key));
	ANSWER("signing: C_SignInit", f->C_SignInit(s, &sign_mech, key));
	ANSWER("signing: C_SignEncryptUpdate", f->C_SignEncryptUpdate(s, in, 16, out, &out_len));
	ANSWER("signing: C_SignUpdate", f->C_SignUpdate(s, in, 16));
	ANSWER("signing: C_SignFinal", f->C_SignFinal(s, out, &out_len));
	ANSWER("decrypting: C_DecryptInit", f->C_DecryptInit(s, &rsa_mech, key));
	ANSWER("decrypting: C_DecryptDigestUpdate", f->C_DecryptDigestUpdate(s, in, 16, out, &out_len));
	ANSWER("decrypting: C_DecryptVerifyUpdate", f->C_DecryptVerifyUpdate(s, in, 16, out, &out_len));
	ck_assert_rv(f->C_CloseSession(s), CKR_OK);
	s = open_session(f, release_slot(f));
	ANSWER("no object: C_SignInit", f->C_SignInit(s, &sign_mech, nothing));
	ANSWER("no object: C_SignRecoverInit", f->C_SignRecoverInit(s, &rsa_mech, nothing));
	ANSWER("no object: C_DecryptInit", f->C_DecryptInit(s, &rsa_mech, nothing));
	ANSWER("no object: C_EncryptInit", f->C_EncryptInit(s, &rsa_mech, nothing));
#undef ANSWER
	ck_assert_rv(f->C_CloseSession(s), CKR_OK);
	fclose(w);
	return text;
}

START_TEST(test_token_answers)
{
	struct module direct = module_open(fx.softhsm);
	struct module gate;
	char *expected, *seen;

	ck_assert_rv(direct.f->C_Initialize(NULL), CKR_OK);
	expected = token_answers(direct.f);
	ck_assert_rv(direct.f->C_Finalize(NULL), CKR_OK);
	/* SoftHSM2 2.6.1 has none of the dual-function updates. */
	ck_assert_msg(strstr(expected, "no operation: C_SignEncryptUpdate: CKR_FUNCTION_NOT_SUPPORTED") != NULL &&
	              strstr(expected, "signing: C_SignFinal: CKR_OK") != NULL &&
	              strstr(expected, "no object: C_DecryptInit: 0x82") != NULL,
	              "SoftHSM2 answers otherwise than this test expects:\n%s", expected);

	gate = p11gate_open();
	ck_assert_rv(gate.f->C_Initialize(NULL), CKR_OK);
	seen = token_answers(gate.f);
	ck_assert_rv(gate.f->C_Finalize(NULL), CKR_OK);
	ck_assert_msg(strcmp(expected, seen) == 0, "SoftHSM2 answers\n%s\np11gate answers\n%s", expected, seen);
	free(expected);
	free(seen);
	dlclose(direct.dl);
}
END_TEST

/* ==== C_InitToken ============================================================ */

static void run_or_die(char *const argv[]);

static const char SO_PIN[] = "12345678";

/* A token world of this test's own (initialising destroys the token):
 * SOFTHSM2_CONF and P11GATE_CONFIG point at it; *dir gets its path. */
static void
own_token(char *dir, size_t len)
{
	char mktoken[PATH_MAX], conf[PATH_MAX + 32];
	char *mk[] = { mktoken, dir, NULL };
	const char *value = getenv("P11GATE_MKTOKEN");

	ck_assert_ptr_nonnull(value);
	snprintf(mktoken, sizeof mktoken, "%s", value);
	ck_assert_int_lt(snprintf(dir, len, "%s/own-token-%d", fx.work, (int)getpid()), (int)len);
	run_or_die(mk);
	ck_assert_int_lt(snprintf(conf, sizeof conf, "%s/softhsm2.conf", dir), (int)sizeof conf);
	ck_assert_int_eq(setenv("SOFTHSM2_CONF", conf, 1), 0);
	ck_assert_int_lt(snprintf(conf, sizeof conf, "%s/p11gate.yaml", dir), (int)sizeof conf);
	ck_assert_int_eq(setenv("P11GATE_CONFIG", conf, 1), 0);
}

/* What C_InitToken answers where the token itself objects.  None of these
 * initialises anything, so SoftHSM2 can be asked directly too. */
static char *
init_token_objections(const CK_FUNCTION_LIST *f)
{
	CK_UTF8CHAR label[32];
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s;
	char *text = NULL;
	size_t len = 0;
	FILE *w = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(w);
	memset(label, ' ', sizeof label);
	memcpy(label, "fresh", 5);
	slot = release_slot(f);
	fprintf(w, "invalid slot: %s\n",
	        rv_text(f->C_InitToken(0x7fff1234, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN), label)));
	s = open_session(f, slot);
	fprintf(w, "session open: %s\n",
	        rv_text(f->C_InitToken(slot, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN), label)));
	ck_assert_rv(f->C_CloseSession(s), CKR_OK);
	fprintf(w, "wrong SO PIN: %s\n",
	        rv_text(f->C_InitToken(slot, (CK_UTF8CHAR_PTR)"87654321", 8, label)));
	fprintf(w, "no SO PIN: %s\n", rv_text(f->C_InitToken(slot, NULL, 0, label)));
	fprintf(w, "no label: %s\n",
	        rv_text(f->C_InitToken(slot, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN), NULL)));
	fclose(w);
	return text;
}

/* Refused, unless a rule allows `manage` on the token: but the token's own
 * objections come first, and an allowed initialisation really happens. */
START_TEST(test_init_token)
{
	struct module direct, gate;
	char dir[PATH_MAX], path[PATH_MAX + 32], *expected, *seen, text[3 * PATH_MAX];
	CK_UTF8CHAR label[32];
	CK_TOKEN_INFO info;
	CK_SLOT_ID slot;

	own_token(dir, sizeof dir);
	direct = module_open(fx.softhsm);
	ck_assert_rv(direct.f->C_Initialize(NULL), CKR_OK);
	expected = init_token_objections(direct.f);
	ck_assert_rv(direct.f->C_Finalize(NULL), CKR_OK);
	ck_assert_msg(strstr(expected, "session open: 0xb6") != NULL &&
	              strstr(expected, "wrong SO PIN: 0xa0") != NULL,
	              "SoftHSM2 objects otherwise than this test expects:\n%s", expected);

	/* The fixture's policy names no token: refused, after the objections. */
	gate = p11gate_open();
	ck_assert_rv(gate.f->C_Initialize(NULL), CKR_OK);
	seen = init_token_objections(gate.f);
	ck_assert_msg(strcmp(expected, seen) == 0, "SoftHSM2 answers\n%s\np11gate answers\n%s", expected, seen);
	memset(label, ' ', sizeof label);
	memcpy(label, "fresh", 5);
	slot = release_slot(gate.f);
	ck_assert_rv(gate.f->C_InitToken(slot, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN), label),
	             CKR_FUNCTION_REJECTED);
	assert_signs(gate.f, "after a refused C_InitToken: the token and its keys are intact");
	ck_assert_rv(gate.f->C_Finalize(NULL), CKR_OK);

	/* A rule that allows managing the token lets an operator initialise it. */
	snprintf(path, sizeof path, "%s/allow-init.yaml", dir);
	snprintf(text, sizeof text,
	         "version: 1\nmodule: %s\naudit:\n  file: %s/audit.jsonl\n"
	         "keys:\n  release-token:\n    uri: \"pkcs11:token=release\"\n"
	         "rules:\n  - name: operators-initialise-release\n    effect: allow\n"
	         "    keys: [release-token]\n    operations: [manage]\n", fx.softhsm, dir);
	write_file(path, text);
	ck_assert_int_eq(setenv("P11GATE_CONFIG", path, 1), 0);
	ck_assert_rv(gate.f->C_Initialize(NULL), CKR_OK);
	ck_assert_rv(gate.f->C_InitToken(slot, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN), label), CKR_OK);
	ck_assert_rv(gate.f->C_GetTokenInfo(slot, &info), CKR_OK);
	ck_assert_msg(memcmp(info.label, label, sizeof label) == 0, "the token is labelled '%.32s'", info.label);
	ck_assert_rv(gate.f->C_Finalize(NULL), CKR_OK);
	free(expected);
	free(seen);
}
END_TEST

/* ==== the 3.0 interface over a 2.40 module ================================== */

START_TEST(test_interface_3_0)
{
	struct module m = p11gate_open();
	const struct test_function_list_3_0 *f3 = interface_3_0(m.dl);
	get_interface_fn get_iface = (get_interface_fn)dlsym(m.dl, "C_GetInterface");
	CK_INTERFACE_PTR iface = (CK_INTERFACE_PTR)0x1;
	CK_VERSION v99 = { 9, 9 }, v240 = { 2, 40 };
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE buf[64] = { 0 }, out[512];
	CK_ULONG out_len;
	CK_UTF8CHAR pin[] = "1234";
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	const CK_FUNCTION_LIST *f = &f3->v2;
	char bad[2048];
	void (*entry)(void);

	ck_assert_int_eq(f3->v2.version.major, 3);
	ck_assert_int_eq(f3->v2.version.minor, 0);
	/* Every entry of the 3.0 table is a function. */
	for (size_t i = 0; i < N_FUNCTIONS_3_0; i++) {
		const char *slot = (const char *)f3 + offsetof(CK_FUNCTION_LIST, C_Initialize) + i * sizeof entry;

		memcpy(&entry, slot, sizeof entry);
		ck_assert_msg(entry != NULL, "entry %zu of the 3.0 table is NULL", i);
	}
	ck_assert_int_eq(sizeof(struct test_function_list_3_0),
	                 offsetof(CK_FUNCTION_LIST, C_Initialize) + N_FUNCTIONS_3_0 * sizeof entry);

	/* The default interface is a PKCS 11 one; unknown names and versions fail cleanly. */
	ck_assert_rv(get_iface(NULL, NULL, &iface, 0), CKR_OK);
	ck_assert_str_eq((const char *)iface->pInterfaceName, "PKCS 11");
	iface = (CK_INTERFACE_PTR)0x1;
	ck_assert_msg(get_iface((CK_UTF8CHAR_PTR)"Vendor NoSuch", NULL, &iface, 0) != CKR_OK,
	              "C_GetInterface accepted an unknown interface name");
	ck_assert_msg(iface == (CK_INTERFACE_PTR)0x1, "a failed C_GetInterface wrote its result");
	ck_assert_msg(get_iface((CK_UTF8CHAR_PTR)"PKCS 11", &v99, &iface, 0) != CKR_OK,
	              "C_GetInterface accepted version 9.9");
	ck_assert_msg(get_iface((CK_UTF8CHAR_PTR)"PKCS 11", NULL, &iface, 0xff00) != CKR_OK,
	              "C_GetInterface accepted flags it does not offer");
	if (get_iface((CK_UTF8CHAR_PTR)"PKCS 11", &v240, &iface, 0) == CKR_OK) {
		const CK_FUNCTION_LIST *t = iface->pFunctionList;

		ck_assert_int_eq(t->version.major, 2);
		ck_assert_int_eq(t->version.minor, 40);
	}

	ck_assert_rv(f->C_Initialize(NULL), CKR_OK);
	s = open_session(f, release_slot(f));
	login(f, s);
	key = find_object(f, s, CKO_PRIVATE_KEY, RSA_ID, sizeof RSA_ID);
	ck_assert_msg(key != CK_INVALID_HANDLE, "no RSA private key through the 3.0 table");

	/* SoftHSM2 2.6.1 has none of the 3.0 functions: each answers
	 * CKR_FUNCTION_NOT_SUPPORTED, even with arguments that would be valid. */
	bad[0] = '\0';
#define NS(name, args)                                                               \
	do {                                                                         \
		CK_RV rv_;                                                           \
		out_len = sizeof out;                                                \
		rv_ = f3->name args;                                                 \
		if (rv_ != CKR_FUNCTION_NOT_SUPPORTED) {                             \
			size_t used_ = strlen(bad);                                  \
			snprintf(bad + used_, sizeof bad - used_, " %s=%s", #name, rv_text(rv_)); \
		}                                                                    \
	} while (0)
	NS(C_LoginUser, (s, CKU_USER, pin, 4, pin, 4));
	NS(C_SessionCancel, (s, CKF_SIGN));
	NS(C_MessageEncryptInit, (s, &mech, key));
	NS(C_EncryptMessage, (s, buf, 16, buf, 16, buf, 16, out, &out_len));
	NS(C_EncryptMessageBegin, (s, buf, 16, buf, 16));
	NS(C_EncryptMessageNext, (s, buf, 16, buf, 16, out, &out_len, 0));
	NS(C_MessageEncryptFinal, (s));
	NS(C_MessageDecryptInit, (s, &mech, key));
	NS(C_DecryptMessage, (s, buf, 16, buf, 16, buf, 16, out, &out_len));
	NS(C_DecryptMessageBegin, (s, buf, 16, buf, 16));
	NS(C_DecryptMessageNext, (s, buf, 16, buf, 16, out, &out_len, 0));
	NS(C_MessageDecryptFinal, (s));
	NS(C_MessageSignInit, (s, &mech, key));
	NS(C_SignMessage, (s, buf, 16, buf, 16, out, &out_len));
	NS(C_SignMessageBegin, (s, buf, 16));
	NS(C_SignMessageNext, (s, buf, 16, buf, 16, out, &out_len));
	NS(C_MessageSignFinal, (s));
	NS(C_MessageVerifyInit, (s, &mech, key));
	NS(C_VerifyMessage, (s, buf, 16, buf, 16, buf, 16));
	NS(C_VerifyMessageBegin, (s, buf, 16));
	NS(C_VerifyMessageNext, (s, buf, 16, buf, 16, buf, 16));
	NS(C_MessageVerifyFinal, (s));
	ck_assert_msg(bad[0] == '\0', "over SoftHSM2 2.6.1 (no 3.0 functions) these did not answer "
	              "CKR_FUNCTION_NOT_SUPPORTED:%s", bad);
#undef NS
	/* The 2.40 part of the 3.0 table works as usual. */
	{
		const char *err = sign_and_verify_both(f, s, "through the 3.0 table");

		ck_assert_msg(err == NULL, "%s", err);
	}
	ck_assert_rv(f->C_CloseSession(s), CKR_OK);
	ck_assert_rv(f->C_Finalize(NULL), CKR_OK);
}
END_TEST

/* ==== fork ================================================================== */

/* Reads what a child writes until it closes the pipe; false if that takes
 * longer than `seconds` (the child hangs). */
static bool
read_child(int fd, char *buf, size_t len, int seconds)
{
	time_t deadline = time(NULL) + seconds;
	size_t used = 0;

	buf[0] = '\0';
	while (used + 1 < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long left = (long)(deadline - time(NULL));
		ssize_t n;
		int ready;

		if (left <= 0)
			return false;
		ready = poll(&pfd, 1, (int)left * 1000);
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0)
			return false;
		n = read(fd, buf + used, len - 1 - used);
		if (n <= 0)
			return true;
		used += (size_t)n;
		buf[used] = '\0';
	}
	return true;
}

/* The last "step: ..." line of a child's report. */
static const char *
last_step(const char *report, char *out, size_t len)
{
	const char *at = report, *found = NULL;

	while ((at = strstr(at, "step: ")) != NULL) {
		found = at + strlen("step: ");
		at = found;
	}
	snprintf(out, len, "%.*s", found ? (int)strcspn(found, "\n") : 0, found ? found : "");
	return out;
}

START_TEST(test_fork)
{
	struct module m = p11gate_open();
	CK_SESSION_HANDLE s;
	char report[8192], step[256];
	int pipefd[2], status;
	const char *err;
	bool finished;
	pid_t pid;

	ck_assert_rv(m.f->C_Initialize(NULL), CKR_OK);
	s = open_session(m.f, release_slot(m.f));
	login(m.f, s);
	err = sign_and_verify_both(m.f, s, "parent before fork");
	ck_assert_msg(err == NULL, "%s", err);
	ck_assert_int_eq(pipe(pipefd), 0);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* No Check assertions here: the child reports each step through
		 * the pipe (so a hang can be placed) and its verdict by exit status. */
		char bad[4096];
		CK_SESSION_HANDLE cs;
		CK_RV rv;
		int out = pipefd[1];

		close(pipefd[0]);
		dprintf(out, "step: calls with the parent's handles before C_Initialize\n");
		call_all_uninitialized(m.f, NULL, s, bad, sizeof bad);
		if (bad[0] != '\0') {
			dprintf(out, "in the child before C_Initialize, not CKR_CRYPTOKI_NOT_INITIALIZED:%s", bad);
			_exit(1);
		}
		dprintf(out, "step: C_Initialize\n");
		rv = m.f->C_Initialize(NULL);
		if (rv != CKR_OK) {
			dprintf(out, "C_Initialize in the child: %s", rv_text(rv));
			_exit(1);
		}
		dprintf(out, "step: C_OpenSession and C_Login\n");
		rv = m.f->C_OpenSession(release_slot(m.f), CKF_SERIAL_SESSION, NULL, NULL, &cs);
		if (rv == CKR_OK)
			rv = m.f->C_Login(cs, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN));
		if (rv != CKR_OK) {
			dprintf(out, "session and login in the child: %s", rv_text(rv));
			_exit(1);
		}
		dprintf(out, "step: signing\n");
		err = sign_and_verify_both(m.f, cs, "child after fork");
		if (err != NULL) {
			dprintf(out, "in the child: %s", err);
			_exit(1);
		}
		dprintf(out, "step: C_Finalize\n");
		rv = m.f->C_Finalize(NULL);
		if (rv != CKR_OK) {
			dprintf(out, "C_Finalize in the child: %s", rv_text(rv));
			_exit(1);
		}
		_exit(0);
	}
	close(pipefd[1]);
	finished = read_child(pipefd[0], report, sizeof report, 30);
	close(pipefd[0]);
	if (!finished)
		kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(finished, "the child hung for 30 s in: %s", last_step(report, step, sizeof step));
	ck_assert_msg(WIFEXITED(status), "the child died (status 0x%x) in: %s", status,
	              last_step(report, step, sizeof step));
	ck_assert_msg(WEXITSTATUS(status) == 0, "%s", report);
	/* The parent is unaffected by its child. */
	err = sign_and_verify_both(m.f, s, "parent after fork");
	ck_assert_msg(err == NULL, "%s", err);
	ck_assert_rv(m.f->C_CloseSession(s), CKR_OK);
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
}
END_TEST

/* ==== threads =============================================================== */

#define N_THREADS 4
#define N_SIGNATURES 40

struct worker {
	const CK_FUNCTION_LIST *f;
	CK_SLOT_ID slot;
	EVP_PKEY *rsa_pub, *ec_pub;
	pthread_barrier_t *start;
	int id;
	int verified;
	char err[256];
};

/* Each thread: its own session; RSA (single- and multi-part) and ECDSA
 * signatures in turn, each over its own message, each verified. */
static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE rsa, ec;
	unsigned char sig[512];
	char msg[128];
	CK_RV rv;

	pthread_barrier_wait(w->start);
	rv = w->f->C_OpenSession(w->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK) {
		snprintf(w->err, sizeof w->err, "C_OpenSession: %s", rv_text(rv));
		return NULL;
	}
	rsa = find_object(w->f, s, CKO_PRIVATE_KEY, RSA_ID, sizeof RSA_ID);
	ec = find_object(w->f, s, CKO_PRIVATE_KEY, EC_ID, sizeof EC_ID);
	if (rsa == CK_INVALID_HANDLE || ec == CK_INVALID_HANDLE) {
		snprintf(w->err, sizeof w->err, "keys not found");
		goto out;
	}
	for (int i = 0; i < N_SIGNATURES; i++) {
		CK_ULONG sig_len = sizeof sig;
		bool use_ec = (i + w->id) % 2 == 0;
		bool ok;

		snprintf(msg, sizeof msg, "thread %d signature %d with %s", w->id, i, use_ec ? "EC" : "RSA");
		if (use_ec)
			rv = sign_ec(w->f, s, ec, (unsigned char *)msg, strlen(msg), sig, &sig_len);
		else
			rv = sign_rsa(w->f, s, rsa, i % 4 == 1, (unsigned char *)msg, strlen(msg), sig, &sig_len);
		if (rv != CKR_OK) {
			snprintf(w->err, sizeof w->err, "'%s': %s", msg, rv_text(rv));
			goto out;
		}
		ok = use_ec ? verify_ec(w->ec_pub, (unsigned char *)msg, strlen(msg), sig, sig_len)
		            : verify_rsa(w->rsa_pub, (unsigned char *)msg, strlen(msg), sig, sig_len);
		if (!ok) {
			snprintf(w->err, sizeof w->err, "'%s': the signature does not verify", msg);
			goto out;
		}
		w->verified++;
	}
out:
	w->f->C_CloseSession(s);
	return NULL;
}

START_TEST(test_threads)
{
	struct module m = p11gate_open();
	CK_C_INITIALIZE_ARGS a = init_args(0, CKF_OS_LOCKING_OK, NULL);
	struct worker workers[N_THREADS];
	pthread_t threads[N_THREADS];
	pthread_barrier_t start;
	EVP_PKEY *rsa_pub = load_public("rsa-pub.pem"), *ec_pub = load_public("ec-pub.pem");
	CK_SESSION_HANDLE login_session;
	CK_SLOT_ID slot;

	ck_assert_rv(m.f->C_Initialize(&a), CKR_OK);
	slot = release_slot(m.f);
	/* Logging in is per application: one session logs in for all. */
	login_session = open_session(m.f, slot);
	login(m.f, login_session);
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, N_THREADS), 0);
	for (int i = 0; i < N_THREADS; i++) {
		workers[i] = (struct worker){ .f = m.f, .slot = slot, .rsa_pub = rsa_pub, .ec_pub = ec_pub,
		                              .start = &start, .id = i };
		ck_assert_int_eq(pthread_create(&threads[i], NULL, worker_run, &workers[i]), 0);
	}
	for (int i = 0; i < N_THREADS; i++)
		ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < N_THREADS; i++) {
		ck_assert_msg(workers[i].err[0] == '\0', "thread %d: %s", i, workers[i].err);
		ck_assert_int_eq(workers[i].verified, N_SIGNATURES);
	}
	ck_assert_rv(m.f->C_CloseSession(login_session), CKR_OK);
	ck_assert_rv(m.f->C_Finalize(NULL), CKR_OK);
	EVP_PKEY_free(rsa_pub);
	EVP_PKEY_free(ec_pub);
}
END_TEST

/* ==== main ================================================================== */

static void
run_or_die(char *const argv[])
{
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "%s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "test_module: '%s %s' failed\n", argv[0], argv[1]);
		exit(1);
	}
}

static void
copy_env(char *out, const char *name)
{
	const char *value = getenv(name);

	if (value == NULL || value[0] == '\0' || strlen(value) >= PATH_MAX) {
		fprintf(stderr, "test_module: %s is not set: run it with 'meson test'\n", name);
		exit(1);
	}
	strcpy(out, value);
}

static Suite *
module_suite(void)
{
	Suite *suite = suite_create("p11gate module");
	struct {
		const char *name;
		const TTest *tests[12];
	} cases[] = {
		{ "before C_Initialize", { test_calls_before_initialize, test_entry_points_before_initialize } },
		{ "life cycle", { test_double_initialize, test_finalize_and_initialize_again, test_fork } },
		{ "locking", { test_partial_mutex_callbacks, test_all_mutex_callbacks, test_os_locking } },
		{ "configuration discovery", { test_reserved_not_ours, test_reserved_bogus_pointers,
		                               test_init_args_unreadable, test_reserved_names_config,
		                               test_reserved_missing_config, test_environment_wins_over_reserved,
		                               test_default_config } },
		{ "configuration errors", { test_config_missing, test_config_directory, test_config_unreadable,
		                            test_config_yaml_syntax, test_config_module_missing } },
		{ "arguments", { test_null_arguments_softhsm, test_null_arguments } },
		{ "transparency", { test_get_info, test_interface_writable, test_token_answers, test_same_as_softhsm, test_secret_attributes, test_interface_3_0 } },
		{ "threads", { test_threads } },
		{ "cost", { test_program_hashed_once_when_needed } },
		{ "C_InitToken", { test_init_token } },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);

		tcase_set_timeout(tc, 120);
		for (size_t k = 0; k < 12 && cases[i].tests[k] != NULL; k++)
			tcase_add_test(tc, cases[i].tests[k]);
		suite_add_tcase(suite, tc);
	}
	return suite;
}

int
main(void)
{
	char test_work[PATH_MAX];
	SRunner *runner;
	int failed;

	copy_env(fx.p11gate, "P11GATE_MODULE");
	copy_env(fx.softhsm, "SOFTHSM_MODULE");
	copy_env(test_work, "P11GATE_TEST_WORK");
	{
		char mktoken[PATH_MAX];
		char *rm[] = { "rm", "-rf", NULL, NULL };
		char *mk[] = { mktoken, NULL, NULL };
		char base[PATH_MAX];

		copy_env(mktoken, "P11GATE_MKTOKEN");
		if (snprintf(base, sizeof base, "%s/module", test_work) >= PATH_MAX ||
		    snprintf(fx.dir, sizeof fx.dir, "%s/token", base) >= PATH_MAX ||
		    snprintf(fx.work, sizeof fx.work, "%s/scratch", base) >= PATH_MAX ||
		    snprintf(fx.config, sizeof fx.config, "%s/p11gate.yaml", fx.dir) >= PATH_MAX) {
			fprintf(stderr, "test_module: P11GATE_TEST_WORK is too long\n");
			return 1;
		}
		rm[2] = base;
		run_or_die(rm);
		mk[1] = fx.dir;
		run_or_die(mk);
		if (mkdir(fx.work, 0755) != 0) {
			perror(fx.work);
			return 1;
		}
	}
	{
		char conf[PATH_MAX + 32];

		snprintf(conf, sizeof conf, "%s/softhsm2.conf", fx.dir);
		setenv("SOFTHSM2_CONF", conf, 1);
		setenv("P11GATE_CONFIG", fx.config, 1);
	}

	runner = srunner_create(module_suite());
	/* Each test needs a process of its own: the module's state is per process. */
	srunner_set_fork_status(runner, CK_FORK);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
