/* SPDX-License-Identifier: Apache-2.0
 *
 * The PKCS#11 fuzzer's properties (see fuzz_oracle.h): signatures checked
 * with OpenSSL against release-rsa's public key, per mechanism, and the
 * audit log read back with the chain checker `audit verify` uses.
 */
#include "fuzz_oracle.h"

#include "audit_chain.h"
#include "audit_verify.h"
#include "p11gate/common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

static void log_free(struct fuzz_log *log);

/* The fuzzer's own failure, not a finding about p11gate. */
static void
out_of_memory(void)
{
	fprintf(stderr, "fuzz_pkcs11: out of memory\n");
	abort();
}

void
fuzz_violation(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\nfuzz_pkcs11: VIOLATION: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

/* ---- what an operation was fed ------------------------------------------------ */

void
fuzz_op_view_start(struct fuzz_op_view *op, CK_MECHANISM_TYPE mechanism,
                   const CK_RSA_PKCS_PSS_PARAMS *pss, const struct fuzz_key_view *key)
{
	op->set = true;
	op->mechanism = mechanism;
	op->has_pss = pss != NULL;
	if (pss != NULL)
		op->pss = *pss;
	op->key = *key;
	op->data_len = 0;
}

void
fuzz_op_view_feed(struct fuzz_op_view *op, const uint8_t *data, size_t len)
{
	if (len == 0)
		return;
	if (op->data_len + len > op->data_cap) {
		size_t cap = (op->data_len + len) * 2;
		uint8_t *p = realloc(op->data, cap);

		if (p == NULL)
			out_of_memory();
		op->data = p;
		op->data_cap = cap;
	}
	memcpy(op->data + op->data_len, data, len);
	op->data_len += len;
}

void
fuzz_op_view_clear(struct fuzz_op_view *op)
{
	free(op->data);
	memset(op, 0, sizeof *op);
}

/* ---- release-rsa ------------------------------------------------------------- */

void
fuzz_oracle_init(struct fuzz_oracle *o, const char *rsa_pub_pem)
{
	FILE *f = fopen(rsa_pub_pem, "r");
	BIGNUM *n = NULL;
	int len = 0;

	memset(o, 0, sizeof *o);
	if (f == NULL) {
		fprintf(stderr, "fuzz_pkcs11: cannot read %s: %s\n", rsa_pub_pem, strerror(errno));
		abort();
	}
	o->release_rsa = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (o->release_rsa == NULL ||
	    EVP_PKEY_get_bn_param(o->release_rsa, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
	    (len = BN_num_bytes(n)) <= 0 || (size_t)len > sizeof o->modulus) {
		fprintf(stderr, "fuzz_pkcs11: %s is not an RSA public key\n", rsa_pub_pem);
		abort();
	}
	o->modulus_len = (size_t)BN_bn2bin(n, o->modulus);
	BN_free(n);
}

void
fuzz_oracle_free(struct fuzz_oracle *o)
{
	log_free(o->log);
	EVP_PKEY_free(o->release_rsa);
	free(o->signatures);
	memset(o, 0, sizeof *o);
}

bool
fuzz_oracle_is_release_modulus(const struct fuzz_oracle *o, const CK_BYTE *modulus, CK_ULONG len)
{
	while (len > 0 && modulus[0] == 0) {
		modulus++;
		len--;
	}
	return len == o->modulus_len && memcmp(modulus, o->modulus, len) == 0;
}

/* ---- signatures ---------------------------------------------------------------- */

static const EVP_MD *
hash_md(CK_MECHANISM_TYPE hash)
{
	switch (hash) {
	case CKM_SHA_1: return EVP_sha1();
	case CKM_SHA224: return EVP_sha224();
	case CKM_SHA256: return EVP_sha256();
	case CKM_SHA384: return EVP_sha384();
	case CKM_SHA512: return EVP_sha512();
	default: return NULL;
	}
}

static const EVP_MD *
mgf_md(CK_RSA_PKCS_MGF_TYPE mgf)
{
	switch (mgf) {
	case CKG_MGF1_SHA1: return EVP_sha1();
	case CKG_MGF1_SHA224: return EVP_sha224();
	case CKG_MGF1_SHA256: return EVP_sha256();
	case CKG_MGF1_SHA384: return EVP_sha384();
	case CKG_MGF1_SHA512: return EVP_sha512();
	default: return NULL;
	}
}

/* The hash of a hash-and-sign mechanism, and whether it pads with PSS. */
static const EVP_MD *
mechanism_md(CK_MECHANISM_TYPE mechanism, bool *pss)
{
	*pss = false;
	switch (mechanism) {
	case CKM_SHA1_RSA_PKCS: return EVP_sha1();
	case CKM_SHA224_RSA_PKCS: return EVP_sha224();
	case CKM_SHA256_RSA_PKCS: return EVP_sha256();
	case CKM_SHA384_RSA_PKCS: return EVP_sha384();
	case CKM_SHA512_RSA_PKCS: return EVP_sha512();
	}
	*pss = true;
	switch (mechanism) {
	case CKM_SHA1_RSA_PKCS_PSS: return EVP_sha1();
	case CKM_SHA224_RSA_PKCS_PSS: return EVP_sha224();
	case CKM_SHA256_RSA_PKCS_PSS: return EVP_sha256();
	case CKM_SHA384_RSA_PKCS_PSS: return EVP_sha384();
	case CKM_SHA512_RSA_PKCS_PSS: return EVP_sha512();
	default: return NULL;
	}
}

static bool
set_pss(EVP_PKEY_CTX *ctx, const struct fuzz_op_view *op)
{
	const EVP_MD *mgf = op->has_pss ? mgf_md(op->pss.mgf) : NULL;

	return mgf != NULL && op->pss.sLen <= INT32_MAX &&
	       EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
	       EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf) == 1 &&
	       EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int)op->pss.sLen) == 1;
}

/* s^e mod n, unpadded (X.509) or with its PKCS#1 v1.5 padding removed. */
static bool
verify_recover(EVP_PKEY *key, int padding, const uint8_t *sig, size_t sig_len,
               const uint8_t *want, size_t want_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	uint8_t out[1024];
	size_t out_len = sizeof out;
	bool ok;

	ok = ctx != NULL && EVP_PKEY_verify_recover_init(ctx) == 1 &&
	     EVP_PKEY_CTX_set_rsa_padding(ctx, padding) == 1 &&
	     EVP_PKEY_verify_recover(ctx, out, &out_len, sig, sig_len) == 1;
	EVP_PKEY_CTX_free(ctx);
	if (!ok)
		return false;
	if (padding == RSA_NO_PADDING) {
		/* A raw block shorter than the modulus is zero-padded in front. */
		if (want_len > out_len)
			return false;
		for (size_t i = 0; i < out_len - want_len; i++) {
			if (out[i] != 0)
				return false;
		}
		return memcmp(out + out_len - want_len, want, want_len) == 0;
	}
	return out_len == want_len && memcmp(out, want, want_len) == 0;
}

static bool
verify_digest(EVP_PKEY *key, const EVP_MD *md, const struct fuzz_op_view *op, bool pss,
              const uint8_t *sig, size_t sig_len)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	bool ok;

	ok = mctx != NULL && EVP_DigestVerifyInit(mctx, &pctx, md, NULL, key) == 1 &&
	     (!pss || set_pss(pctx, op)) &&
	     EVP_DigestVerify(mctx, sig, sig_len, op->data, op->data_len) == 1;
	EVP_MD_CTX_free(mctx);
	return ok;
}

/* CKM_RSA_PKCS_PSS: the data is the hash already. */
static bool
verify_pss_hash(EVP_PKEY *key, const struct fuzz_op_view *op, const uint8_t *sig, size_t sig_len)
{
	const EVP_MD *md = op->has_pss ? hash_md(op->pss.hashAlg) : NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	bool ok;

	ok = ctx != NULL && md != NULL && EVP_PKEY_verify_init(ctx) == 1 && set_pss(ctx, op) &&
	     EVP_PKEY_CTX_set_signature_md(ctx, md) == 1 &&
	     EVP_PKEY_verify(ctx, sig, sig_len, op->data, op->data_len) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static void
remember(struct fuzz_oracle *o, const struct fuzz_op_view *op, const uint8_t *signature, size_t len)
{
	struct fuzz_released *r;

	if (o->n_signatures == o->cap_signatures) {
		size_t cap = o->cap_signatures * 2 + 64;
		struct fuzz_released *p = realloc(o->signatures, cap * sizeof *p);

		if (p == NULL)
			out_of_memory();
		o->signatures = p;
		o->cap_signatures = cap;
	}
	r = &o->signatures[o->n_signatures++];
	SHA256(signature, len, r->signature);
	SHA256(op->data_len > 0 ? op->data : (const uint8_t *)"", op->data_len, r->data);
}

void
fuzz_oracle_signature(struct fuzz_oracle *o, const char *function, const struct fuzz_op_view *op,
                      const uint8_t *signature, size_t len)
{
	const EVP_MD *md;
	bool pss, ok;

	if (!op->set)
		fuzz_violation("%s returned a signature on a session where no signing *Init the "
		               "module accepted was seen", function);
	if (!op->key.release_rsa)
		fuzz_violation("%s returned a signature made with a key that is not release-rsa's "
		               "(class %lu, type %lu, mechanism 0x%lx): the policy allows no other key",
		               function, (unsigned long)op->key.cls, (unsigned long)op->key.type,
		               (unsigned long)op->mechanism);
	switch (op->mechanism) {
	case CKM_RSA_PKCS:
		ok = verify_recover(o->release_rsa, RSA_PKCS1_PADDING, signature, len, op->data, op->data_len);
		break;
	case CKM_RSA_X_509:
		ok = verify_recover(o->release_rsa, RSA_NO_PADDING, signature, len, op->data, op->data_len);
		break;
	case CKM_RSA_PKCS_PSS:
		ok = verify_pss_hash(o->release_rsa, op, signature, len);
		break;
	default:
		md = mechanism_md(op->mechanism, &pss);
		if (md == NULL)
			fuzz_violation("%s returned a signature with mechanism 0x%lx, which release-rsa "
			               "cannot have made", function, (unsigned long)op->mechanism);
		ok = verify_digest(o->release_rsa, md, op, pss, signature, len);
		break;
	}
	if (!ok)
		fuzz_violation("%s returned CKR_OK with a %zu-byte signature (mechanism 0x%lx, %zu bytes "
		               "of data) that does not verify with release-rsa's public key",
		               function, len, (unsigned long)op->mechanism, op->data_len);
	remember(o, op, signature, len);
	o->checked_signatures++;
}

/* ---- the audit log ------------------------------------------------------------- */

struct result_record {
	uint64_t ref;
	uint8_t signature[32];
};

struct allow_record {
	uint64_t seq;
	bool has_data;
	uint8_t data[32];                /* data_sha256 */
};

/* What was read of the log so far: the chain checker's state and the
 * records the signatures are looked up in. */
struct fuzz_log {
	off_t offset;                    /* after the last complete line read */
	struct pg_chain chain;
	struct allow_record *allow;
	size_t n_allow, cap_allow;
	struct result_record *results;   /* CKR_OK results carrying a signature hash */
	size_t n_results, cap_results;
};

static void
log_free(struct fuzz_log *log)
{
	if (log == NULL)
		return;
	free(log->allow);
	free(log->results);
	free(log);
}

static void *
grow(void *v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return v;
	*cap = *cap * 2 + 256;
	v = realloc(v, *cap * size);
	if (v == NULL)
		out_of_memory();
	return v;
}

static void
take_record(struct fuzz_log *log, const json_t *rec)
{
	const char *event = pg_json_get_string(rec, "event");
	const char *decision = pg_json_get_string(rec, "decision");
	const char *rv = pg_json_get_string(rec, "rv");
	const char *sig = pg_json_get_string(rec, "signature_sha256");
	uint64_t seq, ref;

	if (event == NULL || !pg_json_u64(json_object_get(rec, "seq"), &seq))
		return;
	if (strcmp(event, "decision") == 0 && decision != NULL && strcmp(decision, "allow") == 0) {
		const char *data = pg_json_get_string(rec, "data_sha256");
		struct allow_record *a;

		log->allow = grow(log->allow, &log->cap_allow, log->n_allow, sizeof *log->allow);
		a = &log->allow[log->n_allow++];
		a->seq = seq;
		a->has_data = data != NULL && pg_hex_decode(data, a->data, sizeof a->data);
	} else if (strcmp(event, "result") == 0 && rv != NULL && strcmp(rv, "CKR_OK") == 0 &&
	           sig != NULL && pg_json_u64(json_object_get(rec, "ref"), &ref)) {
		struct result_record *r;

		log->results = grow(log->results, &log->cap_results, log->n_results, sizeof *log->results);
		r = &log->results[log->n_results];
		if (pg_hex_decode(sig, r->signature, sizeof r->signature)) {
			r->ref = ref;
			log->n_results++;
		}
	}
}

static const struct allow_record *
find_allow(const struct fuzz_log *log, uint64_t seq)
{
	for (size_t i = log->n_allow; i > 0; i--) {
		if (log->allow[i - 1].seq == seq)
			return &log->allow[i - 1];
	}
	return NULL;
}

/* Feeds the lines appended since the last call to the chain checker. */
static void
read_new_lines(struct fuzz_log *log, const char *audit_path)
{
	bool has_newline;
	char *line = NULL;
	size_t cap = 0, len;
	FILE *f;
	int rc;

	f = fopen(audit_path, "re");
	if (f == NULL) {
		if (errno == ENOENT && log->offset == 0)
			return;          /* nothing judged yet */
		fuzz_violation("cannot read the audit log %s: %s", audit_path, strerror(errno));
	}
	if (fseeko(f, log->offset, SEEK_SET) != 0)
		fuzz_violation("cannot read the audit log %s: %s", audit_path, strerror(errno));
	while ((rc = pg_audit_read_line(f, &line, &cap, &len, &has_newline)) > 0 && has_newline) {
		json_t *rec = pg_chain_feed(&log->chain, line, len, true);

		if (rec != NULL)
			take_record(log, rec);
		json_decref(rec);
		log->offset += (off_t)len + 1;
	}
	free(line);
	fclose(f);
	if (rc < 0)
		fuzz_violation("reading the audit log %s failed: %s", audit_path, strerror(-rc));
}

void
fuzz_oracle_check_log(struct fuzz_oracle *o, const char *audit_path, bool last)
{
	struct fuzz_log *log = o->log;

	if (log == NULL) {
		log = o->log = calloc(1, sizeof *log);
		if (log == NULL)
			out_of_memory();
		pg_chain_init(&log->chain);
	}
	read_new_lines(log, audit_path);
	if (last)
		pg_chain_finish(&log->chain);
	if (log->chain.problem != PG_CHAIN_OK)
		fuzz_violation("the audit log the module wrote does not verify: %s (%s)",
		               log->chain.message, audit_path);

	for (size_t i = 0; i < o->n_signatures; i++) {
		const struct fuzz_released *r = &o->signatures[i];
		const struct allow_record *allow = NULL;
		char sig_hex[65], data_hex[65];

		for (size_t j = log->n_results; j > 0 && allow == NULL; j--) {
			if (memcmp(log->results[j - 1].signature, r->signature, 32) == 0)
				allow = find_allow(log, log->results[j - 1].ref);
		}
		pg_hex_encode(r->signature, 32, sig_hex);
		pg_hex_encode(r->data, 32, data_hex);
		if (allow == NULL)
			fuzz_violation("a signature left the module without an allow record and a CKR_OK "
			               "result record with its signature_sha256 %s in %s", sig_hex, audit_path);
		if (!allow->has_data || memcmp(allow->data, r->data, 32) != 0)
			fuzz_violation("the allow record (seq %" PRIu64 ") of the signature with "
			               "signature_sha256 %s does not carry the SHA-256 of the data signed "
			               "(%s) in %s: the log says something else was signed", allow->seq,
			               sig_hex, data_hex, audit_path);
	}
	o->n_signatures = 0;
	if (last) {
		log_free(log);
		o->log = NULL;
	}
}
