/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the identity-token verifier (src/login/jws.c): what
 * any caller of C_Login can pass as its PIN once a policy has a login:
 * block.  The first byte chooses how the rest is used:
 *   0: the token itself, checked as given against a key set the fuzzer
 *      holds no private key of (what an attacker can send);
 *   1: HEADER NUL CLAIMS: the harness encodes both in base64url and signs
 *      them with the key set's ES256 key, so that the header and the claims
 *      are parsed and checked after a good signature too (what an issuer
 *      could send).
 * Properties: no crash, leak or sanitizer report; a refusal always says
 * why and never quotes the token; an accepted token (mode 1 only: in
 * mode 0 no signature can be made) names the issuer, and its times are
 * within the issuer's bounds.
 */
#include "p11gate/login.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1800000000LL
#define MAX_AGE 3600

#define FAIL(...)                                           \
	do {                                                \
		fprintf(stderr, "fuzz_jws: " __VA_ARGS__);  \
		fputc('\n', stderr);                        \
		abort();                                    \
	} while (0)

/* libFuzzer gives the target no context: the issuer's key and key set are
 * made once per process and kept here. */
static EVP_PKEY *issuer_key;
static char jwks_path[64];
static struct pg_login_issuer issuer;

/* One made key, as the module keeps them (src/module/login.c), so that
 * both of pkey_from_spki's paths run. */
static struct {
	unsigned char hash[32];
	EVP_PKEY *key;
} cached;

static EVP_PKEY *
cache_get(void *ctx, const unsigned char hash[32])
{
	(void)ctx;
	if (cached.key != NULL && memcmp(cached.hash, hash, 32) == 0 && EVP_PKEY_up_ref(cached.key))
		return cached.key;
	return NULL;
}

static void
cache_put(void *ctx, const unsigned char hash[32], EVP_PKEY *key)
{
	(void)ctx;
	if (!EVP_PKEY_up_ref(key))
		return;
	EVP_PKEY_free(cached.key);
	memcpy(cached.hash, hash, 32);
	cached.key = key;
}

static const struct pg_jws_key_cache keys = { NULL, cache_get, cache_put };

/* base64url without padding of n bytes into out (4n/3 + 2 bytes). */
static size_t
b64url(const unsigned char *in, size_t n, char *out)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
		             (i + 2 < n ? in[i + 2] : 0);

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = abc[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = abc[v & 63];
	}
	out[o] = '\0';
	return o;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char point[65];
	char x[48], y[48];
	size_t len = 0;
	FILE *f;
	int fd;

	(void)argc;
	(void)argv;
	issuer_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (issuer_key == NULL ||
	    !EVP_PKEY_get_octet_string_param(issuer_key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point,
	                                     &len) || len != 65)
		FAIL("cannot make the issuer's key");
	b64url(point + 1, 32, x);
	b64url(point + 33, 32, y);
	strcpy(jwks_path, "/tmp/fuzz-jws-XXXXXX");
	fd = mkstemp(jwks_path);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL)
		FAIL("cannot write the key set");
	fprintf(f, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k1\",\"use\":\"sig\","
	        "\"x\":\"%s\",\"y\":\"%s\"}]}\n", x, y);
	if (fclose(f) != 0)
		FAIL("cannot write the key set");
	issuer = (struct pg_login_issuer){ "fuzz", "https://issuer.example", "p11gate", jwks_path, MAX_AGE };
	return 0;
}

/* HEADER.CLAIMS.SIGNATURE with the issuer's ES256 signature (r || s); a
 * malloc'd string, or NULL if the input cannot be split. */
static char *
signed_token(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t header_len, claims_len, at;
	unsigned char der[80], raw[64];
	const unsigned char *p = der;
	size_t der_len = sizeof der;
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *sig = NULL;
	char *token = NULL;

	if (nul == NULL)
		return NULL;
	header_len = (size_t)(nul - data);
	claims_len = size - header_len - 1;
	token = malloc(2 * (header_len + claims_len) + 100);
	md = EVP_MD_CTX_new();
	if (token == NULL || md == NULL)
		FAIL("out of memory");
	at = b64url(data, header_len, token);
	token[at++] = '.';
	at += b64url(nul + 1, claims_len, token + at);
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, issuer_key) != 1 ||
	    EVP_DigestSign(md, der, &der_len, (const unsigned char *)token, at) != 1 ||
	    (sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len)) == NULL ||
	    BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) != 32 ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) != 32)
		FAIL("cannot sign");
	token[at++] = '.';
	b64url(raw, sizeof raw, token + at);
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
	return token;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[512] = "", *token = NULL;
	struct pg_login_id *id;
	size_t len;

	if (size < 1 || size > 2 * PG_JWS_MAX)
		return -1;
	if (data[0] == 1) {
		token = signed_token(data + 1, size - 1);
		if (token == NULL)
			return -1;
	} else {
		token = malloc(size);
		if (token == NULL)
			FAIL("out of memory");
		memcpy(token, data + 1, size - 1);
		token[size - 1] = '\0';
	}
	len = data[0] == 1 ? strlen(token) : size - 1;
	(void)pg_jws_looks_like(token, len);
	id = pg_jws_verify(token, len, &issuer, 1, (time_t)NOW, &keys, why, sizeof why);
	if (id == NULL) {
		if (why[0] == '\0')
			FAIL("a refusal without a reason");
		if (len >= 16 && memmem(why, strlen(why), token, len) != NULL)
			FAIL("the reason quotes the token: %s", why);
	} else {
		if (data[0] != 1)
			FAIL("a token accepted that the fuzzer could not have signed");
		if (id->issuer == NULL || strcmp(id->issuer, "fuzz") != 0)
			FAIL("an identity of another issuer");
		if (id->iat == 0 || id->exp < NOW - PG_LOGIN_SKEW || id->iat > NOW + PG_LOGIN_SKEW ||
		    NOW - id->iat > MAX_AGE + PG_LOGIN_SKEW || id->exp - id->iat > MAX_AGE)
			FAIL("an identity outside its times: iat %lld exp %lld", (long long)id->iat,
			     (long long)id->exp);
	}
	pg_login_id_free(id);
	free(token);
	return 0;
}
