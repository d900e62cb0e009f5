/* SPDX-License-Identifier: Apache-2.0
 *
 * Compact JWS identity tokens (RFC 7515, 7518, 8037), verified offline
 * against an issuer's RFC 7517 key set.  The order is the defence: strict
 * base64url, the header parsed and its alg bound to the key kid names
 * (the token never chooses how its signature is checked), the signature
 * verified, and only then the claims parsed and checked.  JSON is read by
 * jansson with duplicate members refused, under fixed size bounds; this and
 * the JWKS reader are the only JSON parsing in p11gate.so.
 */
#include "p11gate/login.h"
#include "p11gate/common.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEADER_MAX 2048
#define CLAIMS_MAX 16384
#define CLAIMS_COUNT_MAX 128
#define SIG_MAX 1024

#define WHY(...) snprintf(why, why_len, __VA_ARGS__)

/* ---- base64url -------------------------------------------------------- */

static int
b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Strict: the URL alphabet only, no padding, no length that leaves a lone
 * character, and the unused trailing bits zero, so each value has one
 * encoding.  Returns the decoded length, or -1. */
static long
b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;

	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)   /* non-zero trailing bits: a second spelling of the same bytes */
		return -1;
	return (long)o;
}

bool
pg_jws_looks_like(const char *pin, size_t len)
{
	size_t dots = 0;

	if (len == 0 || len > PG_JWS_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (pin[i] == '.')
			dots++;
		else if (b64url_value((unsigned char)pin[i]) < 0 && pin[i] != '=')
			return false;
	}
	/* Starts like a JSON object's base64url ("{" is 'ey'). */
	return dots == 2 && len > 2 && pin[0] == 'e' && pin[1] == 'y';
}

/* ---- JSON under bounds ------------------------------------------------ */

static json_t *
json_object_of(const unsigned char *text, size_t len, const char *what, char *why, size_t why_len)
{
	json_error_t err;
	json_t *j = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &err);

	if (j == NULL) {
		WHY("the %s is not JSON (%s)", what, err.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		WHY("the %s is not a JSON object", what);
		json_decref(j);
		return NULL;
	}
	return j;
}

static const char *
member_string(const json_t *obj, const char *name)
{
	return json_string_value(json_object_get(obj, name));
}

/* ---- keys from the JWKS ----------------------------------------------- */

enum key_kind { KEY_RSA, KEY_P256, KEY_P384, KEY_ED25519 };

static const char *
kind_alg(enum key_kind kind)
{
	static const char *const algs[] = { "RS256", "ES256", "ES384", "EdDSA" };
	return algs[kind];
}

static const char *
kind_name(enum key_kind kind)
{
	static const char *const names[] = { "RSA", "EC P-256", "EC P-384", "OKP Ed25519" };
	return names[kind];
}

/* A base64url member of a JWK, decoded; exact is its required length (0: any
 * up to cap). */
static long
jwk_bytes(const json_t *jwk, const char *name, unsigned char *out, size_t cap, size_t exact)
{
	const char *text = member_string(jwk, name);
	long n;

	if (text == NULL)
		return -1;
	n = b64url_decode(text, strlen(text), out, cap);
	if (n < 0 || (exact != 0 && (size_t)n != exact))
		return -1;
	return n;
}

/* The key is made from a DER SubjectPublicKeyInfo (d2i_PUBKEY), not with
 * EVP_PKEY_fromdata: p11gate.so runs inside clients that make an ENGINE
 * the default for RSA and EC (openssl -engine pkcs11 does, through
 * libp11), and then EVP_PKEY_fromdata_init goes to that engine's legacy
 * method and fails ("operation not supported for this keytype"), whatever
 * the library context or property query.  d2i_PUBKEY and the
 * verification do not.  Sizes are bounded by the JWK members' buffers. */

/* Writes TAG, the DER length of n and the n content bytes to out (room
 * for n + 4); returns the bytes written. */
static size_t
der_tlv(unsigned char *out, unsigned char tag, const unsigned char *content, size_t n)
{
	size_t h = 0;

	out[h++] = tag;
	if (n >= 256) {
		out[h++] = 0x82;
		out[h++] = (unsigned char)(n >> 8);
	} else if (n >= 128) {
		out[h++] = 0x81;
	}
	out[h++] = (unsigned char)n;
	memmove(out + h, content, n);
	return h + n;
}

/* A DER INTEGER of an unsigned big-endian number: leading zeros dropped,
 * one 0x00 put back when the high bit is set. */
static size_t
der_uint(unsigned char *out, const unsigned char *v, size_t n)
{
	unsigned char tmp[1100];

	while (n > 1 && v[0] == 0)
		v++, n--;
	tmp[0] = 0;
	memcpy(tmp + 1, v, n);
	return (v[0] & 0x80) ? der_tlv(out, 0x02, tmp, n + 1) : der_tlv(out, 0x02, tmp + 1, n);
}

static EVP_PKEY *
pkey_from_spki(const unsigned char *der, size_t len, const struct pg_jws_key_cache *keys)
{
	const unsigned char *p = der;
	unsigned char hash[PG_SHA256_LEN];
	bool hashed = keys != NULL && pg_sha256(der, len, hash);
	EVP_PKEY *pk = hashed ? keys->get(keys->ctx, hash) : NULL;

	if (pk != NULL)
		return pk;
	pk = d2i_PUBKEY(NULL, &p, (long)len);
	if (pk != NULL && p != der + len) {   /* trailing bytes: not ours */
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	if (pk != NULL && hashed)
		keys->put(keys->ctx, hash, pk);
	return pk;
}

/* SubjectPublicKeyInfo of an RSA key: rsaEncryption, NULL parameters,
 * RSAPublicKey { n, e } in the BIT STRING. */
static EVP_PKEY *
rsa_key(const unsigned char *n, size_t n_len, const unsigned char *e, size_t e_len,
        const struct pg_jws_key_cache *keys)
{
	static const unsigned char alg[] = {
		0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
	};
	unsigned char ints[1200], seq[1210], bits[1220], spki[1260];
	size_t k, m;

	k = der_uint(ints, n, n_len);
	k += der_uint(ints + k, e, e_len);
	m = der_tlv(seq + 1, 0x30, ints, k);
	seq[0] = 0;                         /* the BIT STRING's unused bits */
	k = der_tlv(bits + sizeof alg, 0x03, seq, m + 1);
	memcpy(bits, alg, sizeof alg);
	return pkey_from_spki(spki, der_tlv(spki, 0x30, bits, sizeof alg + k), keys);
}

/* SubjectPublicKeyInfo from its fixed DER prefix and the raw key bytes
 * (EC: 04 || x || y; Ed25519: x). */
static EVP_PKEY *
prefixed_key(const unsigned char *prefix, size_t prefix_len, const unsigned char *raw, size_t n,
             const struct pg_jws_key_cache *keys)
{
	unsigned char spki[160];

	memcpy(spki, prefix, prefix_len);
	memcpy(spki + prefix_len, raw, n);
	return pkey_from_spki(spki, prefix_len + n, keys);
}

/* The public key of a JWK (RSA n/e of 2048 bits or more; EC P-256/P-384
 * x/y; OKP Ed25519 x); NULL with why. */
static EVP_PKEY *
jwk_key(const json_t *jwk, const struct pg_jws_key_cache *keys, enum key_kind *kind, char *why,
        size_t why_len)
{
	static const unsigned char p256[] = {
		0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
		0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
	};
	static const unsigned char p384[] = {
		0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
		0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
	};
	static const unsigned char ed25519[] = {
		0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
	};
	const char *kty = member_string(jwk, "kty");
	const char *crv = member_string(jwk, "crv");
	unsigned char a[1024], b[1024];
	EVP_PKEY *pk = NULL;
	long na, nb;

	if (kty != NULL && strcmp(kty, "RSA") == 0) {
		*kind = KEY_RSA;
		na = jwk_bytes(jwk, "n", a, sizeof a, 0);
		nb = jwk_bytes(jwk, "e", b, sizeof b, 0);
		if (na < 256 || nb < 1 || nb > 8) {
			WHY("its RSA key is malformed or shorter than 2048 bits");
			goto out;
		}
		pk = rsa_key(a, (size_t)na, b, (size_t)nb, keys);
		if (pk != NULL && EVP_PKEY_get_bits(pk) < 2048) {
			EVP_PKEY_free(pk);
			pk = NULL;
			WHY("its RSA key is malformed or shorter than 2048 bits");
			goto out;
		}
	} else if (kty != NULL && strcmp(kty, "EC") == 0 && crv != NULL &&
	           (strcmp(crv, "P-256") == 0 || strcmp(crv, "P-384") == 0)) {
		bool is384 = strcmp(crv, "P-384") == 0;
		size_t half = is384 ? 48 : 32;

		*kind = is384 ? KEY_P384 : KEY_P256;
		a[0] = 4;   /* an uncompressed point: 04 || x || y */
		if (jwk_bytes(jwk, "x", a + 1, half, half) < 0 ||
		    jwk_bytes(jwk, "y", a + 1 + half, half, half) < 0) {
			WHY("its EC key's x or y is malformed");
			goto out;
		}
		pk = is384 ? prefixed_key(p384, sizeof p384, a, 1 + 2 * half, keys)
		           : prefixed_key(p256, sizeof p256, a, 1 + 2 * half, keys);
	} else if (kty != NULL && strcmp(kty, "OKP") == 0 && crv != NULL &&
	           strcmp(crv, "Ed25519") == 0) {
		*kind = KEY_ED25519;
		if (jwk_bytes(jwk, "x", a, 32, 32) < 0) {
			WHY("its Ed25519 key's x is malformed");
			goto out;
		}
		pk = prefixed_key(ed25519, sizeof ed25519, a, 32, keys);
	} else {
		WHY("its key type is not RSA, EC P-256/P-384 or OKP Ed25519");
		goto out;
	}
	if (pk == NULL)
		WHY("its key is not a valid public key");
out:
	return pk;
}

/* Reads a key set; NULL with why. */
static json_t *
jwks_read(const char *path, char *why, size_t why_len)
{
	bool not_regular = false;
	int fd = pg_open_regular(path, &not_regular);
	char *buf = NULL;
	size_t len = 0;
	json_t *set = NULL, *keys;

	if (fd < 0) {
		WHY("jwks_file %s cannot be read (%s)", path,
		    not_regular ? "not a regular file" : strerror(errno));
		return NULL;
	}
	buf = malloc(PG_JWKS_MAX + 1);
	if (buf == NULL) {
		WHY("out of memory");
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf + len, PG_JWKS_MAX + 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			WHY("jwks_file %s cannot be read (%s)", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > PG_JWKS_MAX) {
			WHY("jwks_file %s is larger than %u bytes", path, PG_JWKS_MAX);
			goto out;
		}
	}
	set = json_object_of((const unsigned char *)buf, len, "jwks_file", why, why_len);
	keys = set != NULL ? json_object_get(set, "keys") : NULL;
	if (set != NULL && !json_is_array(keys)) {
		WHY("jwks_file %s has no \"keys\" array (RFC 7517)", path);
		json_decref(set);
		set = NULL;
	}
out:
	free(buf);
	close(fd);
	return set;
}

/* The JWK with this kid in the set: NULL if none; *dup when two share it. */
static const json_t *
jwks_find(const json_t *set, const char *kid, bool *dup)
{
	const json_t *found = NULL, *jwk;
	size_t i;

	*dup = false;
	json_array_foreach(json_object_get(set, "keys"), i, jwk) {
		const char *k = member_string(jwk, "kid");

		if (k == NULL || strcmp(k, kid) != 0)
			continue;
		if (found != NULL)
			*dup = true;
		found = jwk;
	}
	return found;
}

/* ---- the signature ---------------------------------------------------- */

static bool
sig_verify(EVP_PKEY *pk, enum key_kind kind, const char *input, size_t input_len,
           const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const EVP_MD *digest = kind == KEY_ED25519 ? NULL : kind == KEY_P384 ? EVP_sha384() : EVP_sha256();
	unsigned char *der = NULL;
	const unsigned char *check = sig;
	size_t check_len = sig_len;
	ECDSA_SIG *es = NULL;
	bool ok = false;

	if (md == NULL)
		goto out;
	if (kind == KEY_P256 || kind == KEY_P384) {
		/* JWS carries r || s, each the curve's size (RFC 7518 3.4). */
		size_t half = kind == KEY_P384 ? 48 : 32;
		BIGNUM *r, *s;
		int n;

		if (sig_len != 2 * half)
			goto out;
		es = ECDSA_SIG_new();
		r = BN_bin2bn(sig, (int)half, NULL);
		s = BN_bin2bn(sig + half, (int)half, NULL);
		if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
			BN_free(r);
			BN_free(s);
			goto out;
		}
		n = i2d_ECDSA_SIG(es, &der);
		if (n <= 0)
			goto out;
		check = der;
		check_len = (size_t)n;
	} else if (kind == KEY_ED25519 && sig_len != 64) {
		goto out;
	}
	if (kind == KEY_RSA) {
		EVP_PKEY_CTX *pctx = NULL;

		if (EVP_DigestVerifyInit(md, &pctx, digest, NULL, pk) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
			goto out;
	} else if (EVP_DigestVerifyInit(md, NULL, digest, NULL, pk) != 1) {
		goto out;
	}
	ok = EVP_DigestVerify(md, check, check_len, (const unsigned char *)input, input_len) == 1;
out:
	ECDSA_SIG_free(es);
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	return ok;
}

/* ---- the claims ------------------------------------------------------- */

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* A NumericDate claim: absent (true, *out 0), a number (true), else false. */
static bool
numeric_date(const json_t *claims, const char *name, int64_t *out)
{
	const json_t *v = json_object_get(claims, name);
	double d;

	*out = 0;
	if (v == NULL)
		return true;
	if (!json_is_number(v))
		return false;
	d = json_number_value(v);
	if (!isfinite(d) || d < 1 || d > 1e12)
		return false;
	*out = (int64_t)d;
	return true;
}

static bool
aud_contains(const json_t *aud, const char *audience)
{
	const json_t *item;
	size_t i;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), audience) == 0;
	json_array_foreach(aud, i, item) {
		if (json_is_string(item) && strcmp(json_string_value(item), audience) == 0)
			return true;
	}
	return false;
}

static void
utc_text(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, len, "%lld", (long long)t);
}

/* Checks the verified claims against the issuer and the clock. */
static bool
claims_check(const json_t *claims, const struct pg_login_issuer *is, time_t now,
             int64_t *iat, int64_t *exp, char *why, size_t why_len)
{
	const char *iss = member_string(claims, "iss");
	int64_t nbf;
	char when[40];

	if (iss == NULL || strcmp(iss, is->iss) != 0) {
		WHY("the token was signed by a key of issuer %s, but its iss is not %s", is->name, is->iss);
		return false;
	}
	if (!aud_contains(json_object_get(claims, "aud"), is->audience)) {
		WHY("wrong audience: aud does not contain %s (issuer %s)", is->audience, is->name);
		return false;
	}
	if (!numeric_date(claims, "exp", exp) || !numeric_date(claims, "nbf", &nbf) ||
	    !numeric_date(claims, "iat", iat)) {
		WHY("exp, nbf or iat is not a number of seconds");
		return false;
	}
	if (*exp == 0) {
		WHY("the token has no exp");
		return false;
	}
	if ((int64_t)now > *exp + PG_LOGIN_SKEW) {
		utc_text(*exp, when, sizeof when);
		WHY("expired: the token's exp is %s", when);
		return false;
	}
	if (nbf != 0 && nbf > (int64_t)now + PG_LOGIN_SKEW) {
		utc_text(nbf, when, sizeof when);
		WHY("not yet valid: the token's nbf is %s", when);
		return false;
	}
	if (*iat != 0 && *iat > (int64_t)now + PG_LOGIN_SKEW) {
		utc_text(*iat, when, sizeof when);
		WHY("not yet valid: the token's iat is %s, in the future", when);
		return false;
	}
	if (is->max_age > 0) {
		if (*iat == 0) {
			WHY("the token has no iat, and issuer %s has a max_age", is->name);
			return false;
		}
		if ((int64_t)now - *iat > is->max_age + PG_LOGIN_SKEW) {
			utc_text(*iat, when, sizeof when);
			WHY("too old: issued at %s, more than max_age %llds ago", when,
			    (long long)is->max_age);
			return false;
		}
		if (*exp - *iat > is->max_age) {
			WHY("lives too long: exp is %llds after iat, more than max_age %llds",
			    (long long)(*exp - *iat), (long long)is->max_age);
			return false;
		}
	}
	return true;
}

static struct pg_login_id *
id_new(const json_t *claims, const struct pg_login_issuer *is, const char *kid,
       const char *token, size_t len, int64_t iat, int64_t exp)
{
	struct pg_login_id *id = calloc(1, sizeof *id);
	const char *name;
	const json_t *value;
	size_t n = json_object_size(claims);

	if (id == NULL)
		return NULL;
	id->issuer = strdup(is->name);
	id->iss = strdup(is->iss);
	id->sub = dup_or_null(member_string(claims, "sub"));
	id->jti = dup_or_null(member_string(claims, "jti"));
	id->kid = strdup(kid);
	id->iat = iat;
	id->exp = exp;
	id->claims = calloc(n > 0 ? n : 1, sizeof *id->claims);
	if (id->issuer == NULL || id->iss == NULL || id->kid == NULL || id->claims == NULL ||
	    !pg_sha256(token, len, id->token_sha256))
		goto fail;
	json_object_foreach((json_t *)claims, name, value) {
		struct pg_login_claim *c = &id->claims[id->n_claims];

		c->name = strdup(name);
		c->is_string = json_is_string(value);
		c->value = c->is_string ? strdup(json_string_value(value))
		                        : json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
		id->n_claims++;
		if (c->name == NULL || c->value == NULL)
			goto fail;
	}
	return id;
fail:
	pg_login_id_free(id);
	return NULL;
}

/* A kid in no issuer's key set: say whose token it is, from its unverified
 * iss (only for this message; nothing else of it is used). */
static void
unknown_kid(const char *kid, const char *payload, size_t payload_len,
            const struct pg_login_issuer *issuers, size_t n_issuers, char *why, size_t why_len)
{
	unsigned char *buf = malloc(CLAIMS_MAX);
	long n = buf != NULL ? b64url_decode(payload, payload_len, buf, CLAIMS_MAX) : -1;
	json_t *claims = NULL;
	const char *iss = NULL;
	char quiet[256];     /* the reason is not used; room for it all (-Wformat-truncation at -O3) */

	if (n > 0)
		claims = json_object_of(buf, (size_t)n, "claims", quiet, sizeof quiet);
	iss = claims != NULL ? member_string(claims, "iss") : NULL;
	for (size_t i = 0; iss != NULL && i < n_issuers; i++) {
		if (strcmp(iss, issuers[i].iss) == 0) {
			WHY("unknown kid %s: not in issuer %s's jwks_file", kid, issuers[i].name);
			goto out;
		}
	}
	if (iss != NULL) {
		char shown[200];

		WHY("unknown issuer: its (unverified) iss %s is no issuer of the policy",
		    pg_esc(iss, PG_ESC_VALUE, shown, sizeof shown));
	} else {
		WHY("unknown kid %s: in no issuer's jwks_file", kid);
	}
out:
	json_decref(claims);
	free(buf);
}

struct pg_login_id *
pg_jws_verify(const char *token, size_t len, const struct pg_login_issuer *issuers,
              size_t n_issuers, time_t now, const struct pg_jws_key_cache *keys, char *why,
              size_t why_len)
{
	const char *dot1, *dot2;
	unsigned char *buf = NULL, sig[SIG_MAX];
	long n, sig_len;
	json_t *header = NULL, *claims = NULL;
	const char *alg, *kid;
	struct pg_login_id *id = NULL;
	bool kid_seen = false;
	char shown[120];

	if (len > PG_JWS_MAX) {
		WHY("the token is longer than %u bytes", PG_JWS_MAX);
		return NULL;
	}
	dot1 = memchr(token, '.', len);
	dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL) {
		WHY("not a compact JWS (three base64url parts)");
		return NULL;
	}
	buf = malloc(CLAIMS_MAX);
	if (buf == NULL) {
		WHY("out of memory");
		return NULL;
	}

	/* 1. The header, alone. */
	n = b64url_decode(token, (size_t)(dot1 - token), buf, HEADER_MAX);
	if (n < 0) {
		WHY("the header is not strict base64url (or longer than %u bytes)", HEADER_MAX);
		goto out;
	}
	header = json_object_of(buf, (size_t)n, "header", why, why_len);
	if (header == NULL)
		goto out;
	alg = member_string(header, "alg");
	kid = member_string(header, "kid");
	if (alg == NULL) {
		WHY("the header has no alg");
		goto out;
	}
	if (strcmp(alg, "none") == 0) {
		WHY("alg none: an unsigned token is never accepted");
		goto out;
	}
	if (strncmp(alg, "HS", 2) == 0) {
		WHY("alg %s: HMAC is never accepted (a public key is no secret)",
		    pg_esc(alg, PG_ESC_VALUE, shown, sizeof shown));
		goto out;
	}
	if (json_object_get(header, "crit") != NULL) {
		WHY("the header has crit extensions p11gate does not know");
		goto out;
	}
	if (kid == NULL) {
		WHY("the header has no kid (keys are chosen by kid)");
		goto out;
	}
	sig_len = b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), sig, sizeof sig);
	if (sig_len <= 0) {
		WHY("the signature is empty or not strict base64url");
		goto out;
	}

	/* 2. The key kid names, in each issuer's set; alg bound to its type. */
	for (size_t i = 0; i < n_issuers && id == NULL; i++) {
		const struct pg_login_issuer *is = &issuers[i];
		char kwhy[200];
		json_t *set = jwks_read(is->jwks_file, kwhy, sizeof kwhy);
		const json_t *jwk;
		const char *jwk_alg, *use;
		enum key_kind kind = KEY_RSA;
		EVP_PKEY *pk;
		bool dup, verified = false;
		int64_t iat = 0, exp = 0;

		if (set == NULL) {
			WHY("issuer %s: %s", is->name, kwhy);
			goto out;
		}
		jwk = jwks_find(set, kid, &dup);
		if (jwk == NULL) {
			json_decref(set);
			continue;
		}
		kid_seen = true;
		if (dup) {
			WHY("kid %s appears twice in issuer %s's jwks_file", kid, is->name);
			json_decref(set);
			goto out;
		}
		pk = jwk_key(jwk, keys, &kind, kwhy, sizeof kwhy);
		jwk_alg = member_string(jwk, "alg");
		use = member_string(jwk, "use");
		if (pk == NULL) {
			WHY("key %s of issuer %s: %s", kid, is->name, kwhy);
		} else if (strcmp(alg, kind_alg(kind)) != 0 ||
		           (jwk_alg != NULL && strcmp(jwk_alg, alg) != 0)) {
			WHY("alg %s does not fit key %s of issuer %s (%s: %s only)",
			    pg_esc(alg, PG_ESC_VALUE, shown, sizeof shown), kid, is->name,
			    kind_name(kind), kind_alg(kind));
		} else if (use != NULL && strcmp(use, "sig") != 0) {
			WHY("key %s of issuer %s is not for signatures (use %s)", kid, is->name, use);
		} else {
			verified = sig_verify(pk, kind, token, (size_t)(dot2 - token), sig, (size_t)sig_len);
			if (!verified) {
				WHY("bad signature: it does not verify with key %s of issuer %s", kid, is->name);
			} else {
				/* 3. Only now the claims. */
				n = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), buf, CLAIMS_MAX);
				if (n < 0)
					WHY("the claims are not strict base64url (or longer than %u bytes)",
					    CLAIMS_MAX);
				else if ((claims = json_object_of(buf, (size_t)n, "claims", why, why_len)) == NULL)
					;
				else if (json_object_size(claims) > CLAIMS_COUNT_MAX)
					WHY("the token has more than %u claims", CLAIMS_COUNT_MAX);
				else if (claims_check(claims, is, now, &iat, &exp, why, why_len) &&
				         (id = id_new(claims, is, kid, token, len, iat, exp)) == NULL)
					WHY("out of memory");
			}
		}
		EVP_PKEY_free(pk);
		json_decref(set);
		/* The issuer whose key verified the signature decides; another
		 * issuer may use the same kid (why keeps the last failure). */
		if (verified)
			goto out;
	}
	if (!kid_seen)
		unknown_kid(kid, dot1 + 1, (size_t)(dot2 - dot1 - 1), issuers, n_issuers, why, why_len);
out:
	json_decref(header);
	json_decref(claims);
	free(buf);
	OPENSSL_cleanse(sig, sizeof sig);
	return id;
}
