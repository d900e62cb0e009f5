/* SPDX-License-Identifier: Apache-2.0
 *
 * The PKCS#11 fuzzer's key material (see fuzz_material.h), made with
 * OpenSSL when the process starts.
 */
#include "fuzz_material.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rsa.h>

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_pkcs11: setup: %s\n", what);
	abort();
}

static void
blob_set(struct fuzz_blob *b, const void *data, size_t len)
{
	b->data = malloc(len > 0 ? len : 1);
	if (b->data == NULL)
		fail("out of memory");
	memcpy(b->data, data, len);
	b->len = len;
}

static void
blob_bn(struct fuzz_blob *b, const EVP_PKEY *key, const char *param)
{
	BIGNUM *bn = NULL;
	int len = 0;

	if (EVP_PKEY_get_bn_param(key, param, &bn) != 1 || (len = BN_num_bytes(bn)) <= 0)
		fail("cannot read a key parameter");
	b->data = malloc((size_t)len);
	if (b->data == NULL)
		fail("out of memory");
	b->len = (size_t)BN_bn2bin(bn, b->data);
	BN_clear_free(bn);
}

static void
blob_file(struct fuzz_blob *b, const char *dir, const char *name)
{
	char path[PATH_MAX];
	uint8_t buf[8192];
	size_t n;
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "fuzz_pkcs11: setup: cannot read %s: %s\n", path, strerror(errno));
		abort();
	}
	n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	blob_set(b, buf, n);
}

static void
encrypt_to(struct fuzz_blob *out, EVP_PKEY *key, const uint8_t *data, size_t len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	uint8_t buf[1024];
	size_t n = sizeof buf;

	if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_encrypt(ctx, buf, &n, data, len) != 1)
		fail("cannot encrypt to an RSA key");
	EVP_PKEY_CTX_free(ctx);
	blob_set(out, buf, n);
}

void
fuzz_material_init(struct fuzz_material *m, const char *token_dir, EVP_PKEY *release_rsa)
{
	/* DER of the P-256 OID, 1.2.840.10045.3.1.7. */
	static const uint8_t p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	uint8_t point[128];
	size_t point_len = 0;

	memset(m, 0, sizeof *m);
	if (rsa == NULL || ec == NULL)
		fail("cannot generate the fuzzer's own keys");
	blob_bn(&m->rsa_n, rsa, OSSL_PKEY_PARAM_RSA_N);
	blob_bn(&m->rsa_e, rsa, OSSL_PKEY_PARAM_RSA_E);
	blob_bn(&m->rsa_d, rsa, OSSL_PKEY_PARAM_RSA_D);
	blob_bn(&m->rsa_p, rsa, OSSL_PKEY_PARAM_RSA_FACTOR1);
	blob_bn(&m->rsa_q, rsa, OSSL_PKEY_PARAM_RSA_FACTOR2);
	blob_bn(&m->rsa_dp, rsa, OSSL_PKEY_PARAM_RSA_EXPONENT1);
	blob_bn(&m->rsa_dq, rsa, OSSL_PKEY_PARAM_RSA_EXPONENT2);
	blob_bn(&m->rsa_qinv, rsa, OSSL_PKEY_PARAM_RSA_COEFFICIENT1);
	blob_bn(&m->release_n, release_rsa, OSSL_PKEY_PARAM_RSA_N);
	blob_bn(&m->release_e, release_rsa, OSSL_PKEY_PARAM_RSA_E);

	blob_set(&m->ec_params, p256, sizeof p256);
	blob_bn(&m->ec_d, ec, OSSL_PKEY_PARAM_PRIV_KEY);
	if (EVP_PKEY_get_octet_string_param(ec, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point,
	                                    &point_len) != 1 || point_len != 65)
		fail("cannot read the fuzzer's EC point");
	blob_set(&m->ec_point, point, point_len);
	m->ec_point_der.data = malloc(point_len + 2);
	if (m->ec_point_der.data == NULL)
		fail("out of memory");
	m->ec_point_der.data[0] = 0x04;     /* OCTET STRING */
	m->ec_point_der.data[1] = (uint8_t)point_len;
	memcpy(m->ec_point_der.data + 2, point, point_len);
	m->ec_point_der.len = point_len + 2;

	for (size_t i = 0; i < sizeof m->aes_key; i++)
		m->aes_key[i] = (uint8_t)i;
	encrypt_to(&m->aes_to_release, release_rsa, m->aes_key, sizeof m->aes_key);
	encrypt_to(&m->aes_to_own, rsa, m->aes_key, sizeof m->aes_key);

	blob_file(&m->rsa_cert, token_dir, "rsa-cert.der");
	blob_file(&m->ec_cert, token_dir, "ec-cert.der");
	memset(m->long_label, 'x', sizeof m->long_label);
	memcpy(m->long_label, "codesign-rsa", 12);

	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
}

void
fuzz_material_free(struct fuzz_material *m)
{
	struct fuzz_blob *blobs[] = {
		&m->rsa_n, &m->rsa_e, &m->rsa_d, &m->rsa_p, &m->rsa_q, &m->rsa_dp, &m->rsa_dq,
		&m->rsa_qinv, &m->release_n, &m->release_e, &m->ec_params, &m->ec_d, &m->ec_point,
		&m->ec_point_der, &m->aes_to_release, &m->aes_to_own, &m->rsa_cert, &m->ec_cert,
	};

	for (size_t i = 0; i < sizeof blobs / sizeof blobs[0]; i++) {
		if (blobs[i]->data != NULL)
			OPENSSL_cleanse(blobs[i]->data, blobs[i]->len);
		free(blobs[i]->data);
	}
	memset(m, 0, sizeof *m);
}
