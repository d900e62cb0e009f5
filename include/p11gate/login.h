/* SPDX-License-Identifier: Apache-2.0
 *
 * Pipeline identity at login (issue 13): what a caller proved at C_Login --
 * a CI system's identity token (a compact JWS, verified offline against the
 * issuer's key set) or a named credential -- and the verifier that proves
 * it (src/login/).  The policy matches rules against a pg_login_id, the
 * audit log records it, the module keeps one per token per application.
 */
#ifndef P11GATE_LOGIN_H
#define P11GATE_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>
#include <time.h>

/* Clock skew tolerated on exp, nbf, iat and max_age, in seconds. */
#define PG_LOGIN_SKEW 60
/* The longest PIN taken as an identity token (GitHub's are ~1 KB). */
#define PG_JWS_MAX 8192
/* The largest JWKS file read. */
#define PG_JWKS_MAX 65536

/* One top-level claim of a verified token. */
struct pg_login_claim {
	char *name;
	char *value;        /* a string's value; any other JSON value as compact JSON */
	bool is_string;
};

/* A verified identity; immutable once made. */
struct pg_login_id {
	char *issuer;        /* the policy's issuer name; NULL for a credential */
	char *credential;    /* the policy's credential name; NULL for a token */
	char *iss, *sub, *jti;   /* the token's claims (NULL if absent, and for a credential) */
	char *kid;           /* the key that verified it */
	int64_t iat, exp;    /* 0 when absent (a credential never expires) */
	unsigned char token_sha256[32];   /* of the token (or the secret) presented */
	struct pg_login_claim *claims;
	size_t n_claims;
};

void pg_login_id_free(struct pg_login_id *id);
/* The value of a claim, NULL if the token has none. */
const struct pg_login_claim *pg_login_id_claim(const struct pg_login_id *id, const char *name);

/* An issuer as the policy's login: block configures it. */
struct pg_login_issuer {
	const char *name;        /* the policy's name for it (github) */
	const char *iss;         /* the token's iss, exact */
	const char *audience;    /* aud must contain it */
	const char *jwks_file;   /* RFC 7517 key set */
	int64_t max_age;         /* seconds; 0: no limit beyond exp */
};

/* Keys already made from their SubjectPublicKeyInfo, by its SHA-256: OpenSSL's
 * d2i_PUBKEY costs more than checking the signature, and a pipeline logs in
 * again and again with the same issuer key.  The caller owns the entries and
 * their lock; get returns a reference of the caller's own (or NULL), put takes
 * one of its own.  Keyed by the key's bytes, an entry cannot go stale: a
 * key set that changes names other bytes. */
struct pg_jws_key_cache {
	void *ctx;
	EVP_PKEY *(*get)(void *ctx, const unsigned char spki_sha256[32]);
	void (*put)(void *ctx, const unsigned char spki_sha256[32], EVP_PKEY *key);
};

/* Whether pin has the shape of a compact JWS (three base64url parts). */
bool pg_jws_looks_like(const char *pin, size_t len);

/* Verifies a compact JWS against the issuers: the header is parsed first,
 * the key chosen by kid from an issuer's jwks_file, the alg bound to that
 * key's type (RS256, ES256, ES384, EdDSA; never none, never HMAC), the
 * signature checked, and only then are the claims parsed: iss names that
 * issuer exactly, aud contains its audience, exp/nbf/iat within
 * PG_LOGIN_SKEW of now, max_age.  Returns the identity, or NULL with a
 * one-line reason in why (never the token itself).  keys may be NULL. */
struct pg_login_id *pg_jws_verify(const char *token, size_t len,
                                  const struct pg_login_issuer *issuers, size_t n_issuers,
                                  time_t now, const struct pg_jws_key_cache *keys, char *why,
                                  size_t why_len);

#endif /* P11GATE_LOGIN_H */
