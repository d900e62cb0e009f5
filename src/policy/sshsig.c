/* SPDX-License-Identifier: Apache-2.0
 *
 * OpenSSH public keys and SSHSIG signatures, verified with OpenSSL.  Owns the
 * SSH wire format reader, the key types (ssh-ed25519, ecdsa-sha2-nistp256/
 * 384/521, ssh-rsa with rsa-sha2-256/512 signatures, and the FIDO sk-ssh-
 * ed25519@openssh.com and sk-ecdsa-sha2-nistp256@openssh.com), the armor and
 * the signed data of PROTOCOL.sshsig.  Nothing here reads files or runs
 * programs; every length read is checked against what is left.
 */
#include "sshsig.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "p11gate/common.h"

/* Armored signatures are a few hundred bytes (RSA-8192: about 1.5 KiB). */
#define PG_SSHSIG_MAX_BYTES 16384
#define PG_SSHSIG_MAGIC "SSHSIG"
#define PG_SSHSIG_BEGIN "-----BEGIN SSH SIGNATURE-----"
#define PG_SSHSIG_END "-----END SSH SIGNATURE-----"

struct pg_sshkey {
	enum pg_sshkey_type type;
	unsigned char *blob;           /* the wire-format public key */
	size_t blob_len;
	EVP_PKEY *pkey;
	unsigned char *application;    /* sk- keys: the FIDO application ("ssh:") */
	size_t application_len;
};

struct pg_sshsig {
	unsigned char *raw;            /* the decoded blob; the fields point into it */
	size_t raw_len;
	const unsigned char *key_blob;
	size_t key_blob_len;
	const unsigned char *ns;
	size_t ns_len;
	const unsigned char *reserved;
	size_t reserved_len;
	const char *hash_alg;          /* "sha256" or "sha512" */
	const unsigned char *signature;
	size_t signature_len;
};

static const struct {
	const char *name;
	enum pg_sshkey_type type;
	const char *curve;             /* the SSH curve name, ECDSA only */
	const char *group;             /* OpenSSL's */
} key_types[] = {
	{ "ssh-ed25519", PG_SSHKEY_ED25519, NULL, NULL },
	{ "ecdsa-sha2-nistp256", PG_SSHKEY_ECDSA_P256, "nistp256", "P-256" },
	{ "ecdsa-sha2-nistp384", PG_SSHKEY_ECDSA_P384, "nistp384", "P-384" },
	{ "ecdsa-sha2-nistp521", PG_SSHKEY_ECDSA_P521, "nistp521", "P-521" },
	{ "ssh-rsa", PG_SSHKEY_RSA, NULL, NULL },
	{ "sk-ssh-ed25519@openssh.com", PG_SSHKEY_SK_ED25519, NULL, NULL },
	{ "sk-ecdsa-sha2-nistp256@openssh.com", PG_SSHKEY_SK_ECDSA_P256, "nistp256", "P-256" },
};
#define N_KEY_TYPES (sizeof key_types / sizeof key_types[0])

/* ---- the wire format: uint32 lengths, big-endian ---------------------- */

struct reader {
	const unsigned char *p;
	size_t left;
};

static bool
read_u32(struct reader *r, uint32_t *out)
{
	if (r->left < 4)
		return false;
	*out = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	r->left -= 4;
	return true;
}

static bool
read_string(struct reader *r, const unsigned char **out, size_t *len)
{
	uint32_t n;

	if (!read_u32(r, &n) || n > r->left)
		return false;
	*out = r->p;
	*len = n;
	r->p += n;
	r->left -= n;
	return true;
}

static bool
read_byte(struct reader *r, uint8_t *out)
{
	if (r->left < 1)
		return false;
	*out = r->p[0];
	r->p++;
	r->left--;
	return true;
}

static bool
string_is(const unsigned char *s, size_t len, const char *text)
{
	return len == strlen(text) && memcmp(s, text, len) == 0;
}

/* An mpint as a positive integer: no sign bit, no superfluous zero. */
static BIGNUM *
read_mpint(struct reader *r)
{
	const unsigned char *s;
	size_t len;

	if (!read_string(r, &s, &len) || len == 0 || (s[0] & 0x80) != 0 ||
	    (len > 1 && s[0] == 0 && (s[1] & 0x80) == 0))
		return NULL;
	return BN_bin2bn(s, (int)len, NULL);
}

/* ---- keys ------------------------------------------------------------- */

static EVP_PKEY *
pkey_from_params(const char *alg, OSSL_PARAM_BLD *bld)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY *pkey = NULL;

	if (ctx == NULL || params == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	OSSL_PARAM_free(params);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

static EVP_PKEY *
ec_pkey(const char *group, const unsigned char *point, size_t len, char *err, size_t err_len)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY_CTX *check = NULL;
	EVP_PKEY *pkey = NULL;

	if (bld == NULL || len == 0 || point[0] != 0x04 ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, len) != 1 ||
	    (pkey = pkey_from_params("EC", bld)) == NULL) {
		snprintf(err, err_len, "the %s public point is not a valid uncompressed point", group);
		goto out;
	}
	/* fromdata decodes the point; the public check also puts it on the curve. */
	check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (check == NULL || EVP_PKEY_public_check(check) != 1) {
		snprintf(err, err_len, "the %s public point is not on the curve", group);
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
out:
	EVP_PKEY_CTX_free(check);
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

static EVP_PKEY *
rsa_pkey(BIGNUM *e, BIGNUM *n, char *err, size_t err_len)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *pkey = NULL;

	if (BN_num_bits(n) < PG_SSHKEY_RSA_MIN_BITS) {
		snprintf(err, err_len, "the RSA key has %d bits; approvers need at least %d",
		         BN_num_bits(n), PG_SSHKEY_RSA_MIN_BITS);
		goto out;
	}
	if (bld == NULL || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
	    (pkey = pkey_from_params("RSA", bld)) == NULL)
		snprintf(err, err_len, "the RSA public key is not valid");
out:
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

/* The key's fields after its type name (PROTOCOL.key, PROTOCOL.u2f). */
static bool
key_decode(pg_sshkey *key, size_t t, struct reader *r, char *err, size_t err_len)
{
	const unsigned char *s, *point, *app;
	size_t len, point_len, app_len;
	BIGNUM *e = NULL, *n = NULL;
	bool ok = false;

	switch (key->type) {
	case PG_SSHKEY_ED25519:
	case PG_SSHKEY_SK_ED25519:
		if (!read_string(r, &point, &point_len) || point_len != 32) {
			snprintf(err, err_len, "the ed25519 public key is not 32 bytes");
			goto out;
		}
		key->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, point, point_len);
		break;
	case PG_SSHKEY_RSA:
		if ((e = read_mpint(r)) == NULL || (n = read_mpint(r)) == NULL) {
			snprintf(err, err_len, "the RSA key's exponent or modulus is malformed");
			goto out;
		}
		if ((key->pkey = rsa_pkey(e, n, err, err_len)) == NULL)
			goto out;
		break;
	default:
		if (!read_string(r, &s, &len) || !string_is(s, len, key_types[t].curve)) {
			snprintf(err, err_len, "key type %s names another curve", key_types[t].name);
			goto out;
		}
		if (!read_string(r, &point, &point_len)) {
			snprintf(err, err_len, "the EC public point is missing");
			goto out;
		}
		if ((key->pkey = ec_pkey(key_types[t].group, point, point_len, err, err_len)) == NULL)
			goto out;
		break;
	}
	if (key->pkey == NULL) {
		snprintf(err, err_len, "the public key is not valid");
		goto out;
	}
	if (key->type == PG_SSHKEY_SK_ED25519 || key->type == PG_SSHKEY_SK_ECDSA_P256) {
		if (!read_string(r, &app, &app_len) || app_len == 0) {
			snprintf(err, err_len, "the security key's application is missing");
			goto out;
		}
		if ((key->application = malloc(app_len)) == NULL) {
			snprintf(err, err_len, "out of memory");
			goto out;
		}
		memcpy(key->application, app, app_len);
		key->application_len = app_len;
	}
	if (r->left != 0) {
		snprintf(err, err_len, "%zu bytes follow the public key", r->left);
		goto out;
	}
	ok = true;
out:
	BN_free(e);
	BN_free(n);
	return ok;
}

static pg_sshkey *
key_from_blob(const unsigned char *blob, size_t blob_len, char *err, size_t err_len)
{
	struct reader r = { blob, blob_len };
	const unsigned char *name;
	size_t name_len, t;
	pg_sshkey *key = calloc(1, sizeof *key);

	if (key == NULL) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	if (!read_string(&r, &name, &name_len)) {
		snprintf(err, err_len, "the key blob has no type");
		goto fail;
	}
	for (t = 0; t < N_KEY_TYPES && !string_is(name, name_len, key_types[t].name); t++)
		;
	if (t == N_KEY_TYPES) {
		snprintf(err, err_len, "unsupported key type '%.*s' (supported: ssh-ed25519, "
		         "ecdsa-sha2-nistp256/384/521, ssh-rsa, sk-ssh-ed25519@openssh.com, "
		         "sk-ecdsa-sha2-nistp256@openssh.com)", (int)(name_len > 64 ? 64 : name_len),
		         (const char *)name);
		goto fail;
	}
	key->type = key_types[t].type;
	if (!key_decode(key, t, &r, err, err_len))
		goto fail;
	if ((key->blob = malloc(blob_len)) == NULL) {
		snprintf(err, err_len, "out of memory");
		goto fail;
	}
	memcpy(key->blob, blob, blob_len);
	key->blob_len = blob_len;
	return key;
fail:
	pg_sshkey_free(key);
	return NULL;
}

/* Base64 without whitespace inside; *out is malloc'd. */
static bool
base64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len)
{
	unsigned char *buf;
	int n;
	size_t pad = 0;

	if (len == 0 || len % 4 != 0 || len > PG_SSHSIG_MAX_BYTES * 2)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		          c == '+' || c == '/' || (c == '=' && i >= len - 2);
		if (!ok || (pad > 0 && c != '='))
			return false;
		pad += c == '=';
	}
	if ((buf = malloc(len / 4 * 3 + 1)) == NULL)
		return false;
	n = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len);
	if (n < 0 || (size_t)n < pad) {
		free(buf);
		return false;
	}
	*out = buf;
	*out_len = (size_t)n - pad;
	return true;
}

pg_sshkey *
pg_sshkey_new(const char *line, char *err, size_t err_len)
{
	const char *type = line, *type_end, *b64, *b64_end;
	unsigned char *blob = NULL;
	size_t blob_len = 0;
	pg_sshkey *key = NULL;
	struct reader r;
	const unsigned char *name;
	size_t name_len;

	while (*type == ' ' || *type == '\t')
		type++;
	type_end = type + strcspn(type, " \t");
	b64 = type_end + strspn(type_end, " \t");
	b64_end = b64 + strcspn(b64, " \t\r\n");
	if (type_end == type || b64_end == b64) {
		snprintf(err, err_len, "not an OpenSSH public key; write it as in authorized_keys: "
		         "'ssh-ed25519 AAAA... comment'");
		goto out;
	}
	if (!base64_decode(b64, (size_t)(b64_end - b64), &blob, &blob_len)) {
		snprintf(err, err_len, "the key's base64 text is malformed");
		goto out;
	}
	r = (struct reader){ blob, blob_len };
	if (!read_string(&r, &name, &name_len) || name_len != (size_t)(type_end - type) ||
	    memcmp(name, type, name_len) != 0) {
		snprintf(err, err_len, "the key says it is '%.*s' but its data is another type",
		         (int)(type_end - type > 64 ? 64 : type_end - type), type);
		goto out;
	}
	key = key_from_blob(blob, blob_len, err, err_len);
out:
	free(blob);
	return key;
}

void
pg_sshkey_free(pg_sshkey *key)
{
	if (key == NULL)
		return;
	EVP_PKEY_free(key->pkey);
	free(key->blob);
	free(key->application);
	free(key);
}

enum pg_sshkey_type
pg_sshkey_type(const pg_sshkey *key)
{
	return key->type;
}

const char *
pg_sshkey_type_name(const pg_sshkey *key)
{
	for (size_t t = 0; t < N_KEY_TYPES; t++) {
		if (key_types[t].type == key->type)
			return key_types[t].name;
	}
	return "?";
}

static void
fingerprint(const unsigned char *blob, size_t len, char *out, size_t out_len)
{
	unsigned char digest[PG_SHA256_LEN], b64[48];
	int n;

	if (!pg_sha256(blob, len, digest)) {
		snprintf(out, out_len, "SHA256:?");
		return;
	}
	n = EVP_EncodeBlock(b64, digest, sizeof digest);
	while (n > 0 && b64[n - 1] == '=')   /* ssh-keygen prints it unpadded */
		n--;
	snprintf(out, out_len, "SHA256:%.*s", n, (const char *)b64);
}

void
pg_sshkey_fingerprint(const pg_sshkey *key, char *out, size_t out_len)
{
	fingerprint(key->blob, key->blob_len, out, out_len);
}

bool
pg_sshkey_equal_blob(const pg_sshkey *key, const unsigned char *blob, size_t len)
{
	return len == key->blob_len && memcmp(blob, key->blob, len) == 0;
}

/* ---- signatures ------------------------------------------------------- */

/* The base64 lines between the armor lines, joined. */
static bool
dearmor(const char *text, size_t len, unsigned char **out, size_t *out_len)
{
	size_t begin = strlen(PG_SSHSIG_BEGIN), end = strlen(PG_SSHSIG_END);
	char *joined;
	size_t n = 0, i;
	bool ok;

	if (len < begin + 1 + end || memcmp(text, PG_SSHSIG_BEGIN, begin) != 0 || text[begin] != '\n')
		return false;
	while (len > 0 && text[len - 1] == '\n')
		len--;
	if (len < begin + 1 + end || memcmp(text + len - end, PG_SSHSIG_END, end) != 0)
		return false;
	if ((joined = malloc(len)) == NULL)
		return false;
	for (i = begin + 1; i < len - end; i++) {
		if (text[i] != '\n')
			joined[n++] = text[i];
	}
	ok = base64_decode(joined, n, out, out_len);
	free(joined);
	return ok;
}

pg_sshsig *
pg_sshsig_new(const char *armored, size_t len, char *err, size_t err_len)
{
	pg_sshsig *sig = calloc(1, sizeof *sig);
	const unsigned char *hash;
	size_t hash_len;
	struct reader r;
	uint32_t version = 0;

	if (sig == NULL) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	if (len > PG_SSHSIG_MAX_BYTES || !dearmor(armored, len, &sig->raw, &sig->raw_len)) {
		snprintf(err, err_len, "not an SSH signature (ssh-keygen -Y sign writes "
		         "'" PG_SSHSIG_BEGIN "', base64 lines and '" PG_SSHSIG_END "')");
		goto fail;
	}
	r = (struct reader){ sig->raw, sig->raw_len };
	if (r.left < 6 || memcmp(r.p, PG_SSHSIG_MAGIC, 6) != 0) {
		snprintf(err, err_len, "the signature does not start with SSHSIG");
		goto fail;
	}
	r.p += 6;
	r.left -= 6;
	if (!read_u32(&r, &version) || version != 1) {
		snprintf(err, err_len, "signature version %u; only version 1 is known", version);
		goto fail;
	}
	if (!read_string(&r, &sig->key_blob, &sig->key_blob_len) ||
	    !read_string(&r, &sig->ns, &sig->ns_len) ||
	    !read_string(&r, &sig->reserved, &sig->reserved_len) ||
	    !read_string(&r, &hash, &hash_len) ||
	    !read_string(&r, &sig->signature, &sig->signature_len) || r.left != 0) {
		snprintf(err, err_len, "the signature's fields are malformed");
		goto fail;
	}
	if (string_is(hash, hash_len, "sha256"))
		sig->hash_alg = "sha256";
	else if (string_is(hash, hash_len, "sha512"))
		sig->hash_alg = "sha512";
	else {
		snprintf(err, err_len, "unsupported hash '%.*s' (sha256 or sha512)",
		         (int)(hash_len > 16 ? 16 : hash_len), (const char *)hash);
		goto fail;
	}
	return sig;
fail:
	pg_sshsig_free(sig);
	return NULL;
}

void
pg_sshsig_free(pg_sshsig *sig)
{
	if (sig == NULL)
		return;
	free(sig->raw);
	free(sig);
}

const unsigned char *
pg_sshsig_key_blob(const pg_sshsig *sig, size_t *len)
{
	*len = sig->key_blob_len;
	return sig->key_blob;
}

void
pg_sshsig_fingerprint(const pg_sshsig *sig, char *out, size_t out_len)
{
	fingerprint(sig->key_blob, sig->key_blob_len, out, out_len);
}

static void
put_string(unsigned char **p, const void *s, size_t len)
{
	(*p)[0] = (unsigned char)(len >> 24);
	(*p)[1] = (unsigned char)(len >> 16);
	(*p)[2] = (unsigned char)(len >> 8);
	(*p)[3] = (unsigned char)len;
	memcpy(*p + 4, s, len);
	*p += 4 + len;
}

/* What the signer signed (PROTOCOL.sshsig): MAGIC, namespace, reserved,
 * hash algorithm, H(message).  *out is malloc'd. */
static bool
signed_data(const pg_sshsig *sig, const unsigned char *msg, size_t msg_len,
            unsigned char **out, size_t *out_len)
{
	unsigned char digest[EVP_MAX_MD_SIZE], *p;
	unsigned int digest_len = 0;
	const EVP_MD *md = strcmp(sig->hash_alg, "sha256") == 0 ? EVP_sha256() : EVP_sha512();
	size_t hash_len = strlen(sig->hash_alg);

	if (EVP_Digest(msg, msg_len, digest, &digest_len, md, NULL) != 1)
		return false;
	*out_len = 6 + 4 + sig->ns_len + 4 + sig->reserved_len + 4 + hash_len + 4 + digest_len;
	if ((*out = p = malloc(*out_len)) == NULL)
		return false;
	memcpy(p, PG_SSHSIG_MAGIC, 6);
	p += 6;
	put_string(&p, sig->ns, sig->ns_len);
	put_string(&p, sig->reserved, sig->reserved_len);
	put_string(&p, sig->hash_alg, hash_len);
	put_string(&p, digest, digest_len);
	return true;
}

/* An SSH ECDSA signature (mpint r, mpint s) as DER for OpenSSL. */
static bool
ecdsa_der(const unsigned char *s, size_t len, unsigned char **der, size_t *der_len)
{
	struct reader r = { s, len };
	BIGNUM *br = read_mpint(&r), *bs = br != NULL ? read_mpint(&r) : NULL;
	ECDSA_SIG *esig = ECDSA_SIG_new();
	unsigned char *p = NULL;
	int n;
	bool ok = false;

	if (br == NULL || bs == NULL || r.left != 0 || esig == NULL || ECDSA_SIG_set0(esig, br, bs) != 1)
		goto out;
	br = bs = NULL;                /* owned by esig now */
	if ((n = i2d_ECDSA_SIG(esig, &p)) <= 0)
		goto out;
	*der = p;
	*der_len = (size_t)n;
	ok = true;
out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(esig);
	return ok;
}

static bool
evp_verify(EVP_PKEY *pkey, const EVP_MD *md, int rsa_padding, const unsigned char *sig,
           size_t sig_len, const unsigned char *data, size_t data_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	bool ok;

	ok = ctx != NULL && EVP_DigestVerifyInit(ctx, &pctx, md, NULL, pkey) == 1 &&
	     (rsa_padding == 0 || EVP_PKEY_CTX_set_rsa_padding(pctx, rsa_padding) == 1) &&
	     EVP_DigestVerify(ctx, sig, sig_len, data, data_len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

static const EVP_MD *
ecdsa_md(enum pg_sshkey_type type)
{
	return type == PG_SSHKEY_ECDSA_P384 ? EVP_sha384() :
	       type == PG_SSHKEY_ECDSA_P521 ? EVP_sha512() : EVP_sha256();
}

/* The raw signature over data, by key type: data is the SSHSIG signed
 * data, or for sk- keys what the authenticator signed. */
static bool
verify_raw(const pg_sshkey *key, const char *sig_type, const unsigned char *s, size_t len,
           const unsigned char *data, size_t data_len)
{
	unsigned char *der = NULL, *padded = NULL;
	size_t der_len = 0;
	bool ok = false;

	switch (key->type) {
	case PG_SSHKEY_ED25519:
	case PG_SSHKEY_SK_ED25519:
		ok = len == 64 && evp_verify(key->pkey, NULL, 0, s, len, data, data_len);
		break;
	case PG_SSHKEY_RSA: {
		/* OpenSSH accepts a signature shorter than the modulus (its
		 * leading zero bytes dropped) and pads it. */
		size_t mod = (size_t)EVP_PKEY_get_size(key->pkey);
		const EVP_MD *md = strcmp(sig_type, "rsa-sha2-256") == 0 ? EVP_sha256() : EVP_sha512();

		if (len == 0 || len > mod || (padded = calloc(1, mod)) == NULL)
			break;
		memcpy(padded + (mod - len), s, len);
		ok = evp_verify(key->pkey, md, RSA_PKCS1_PADDING, padded, mod, data, data_len);
		break;
	}
	default:
		ok = ecdsa_der(s, len, &der, &der_len) &&
		     evp_verify(key->pkey, ecdsa_md(key->type), 0, der, der_len, data, data_len);
		break;
	}
	free(padded);
	OPENSSL_free(der);
	return ok;
}

/* The signature types each key type may sign with.  ssh-rsa (SHA-1) is
 * refused, as OpenSSH refuses it for SSHSIG. */
static bool
sig_type_ok(const pg_sshkey *key, const unsigned char *t, size_t len)
{
	if (key->type == PG_SSHKEY_RSA)
		return string_is(t, len, "rsa-sha2-256") || string_is(t, len, "rsa-sha2-512");
	return string_is(t, len, pg_sshkey_type_name(key));
}

/* PROTOCOL.u2f: the authenticator signs SHA256(application) || flags ||
 * counter || SHA256(message). */
static bool
verify_sk(const pg_sshkey *key, const char *sig_type, struct reader *r, const unsigned char *s,
          size_t len, const unsigned char *data, size_t data_len, struct pg_sshsig_sk *sk,
          char *err, size_t err_len)
{
	unsigned char signed_by_key[32 + 1 + 4 + 32];

	if (!read_byte(r, &sk->flags) || !read_u32(r, &sk->counter) || r->left != 0) {
		snprintf(err, err_len, "the security key signature's flags or counter are malformed");
		return false;
	}
	sk->is_sk = true;
	if (!pg_sha256(key->application, key->application_len, signed_by_key) ||
	    !pg_sha256(data, data_len, signed_by_key + 37))
		return false;
	signed_by_key[32] = sk->flags;
	signed_by_key[33] = (unsigned char)(sk->counter >> 24);
	signed_by_key[34] = (unsigned char)(sk->counter >> 16);
	signed_by_key[35] = (unsigned char)(sk->counter >> 8);
	signed_by_key[36] = (unsigned char)sk->counter;
	if (!verify_raw(key, sig_type, s, len, signed_by_key, sizeof signed_by_key)) {
		snprintf(err, err_len, "the signature does not verify");
		return false;
	}
	/* Checked after the signature, so a forged flag byte says "does not verify". */
	if (!(sk->flags & PG_SSHSIG_SK_USER_PRESENT)) {
		snprintf(err, err_len, "the security key did not confirm user presence (flags 0x%02x)",
		         sk->flags);
		return false;
	}
	return true;
}

bool
pg_sshsig_verify(const pg_sshsig *sig, const pg_sshkey *key, const char *ns,
                 const unsigned char *msg, size_t msg_len, struct pg_sshsig_sk *sk,
                 char *err, size_t err_len)
{
	struct reader r = { sig->signature, sig->signature_len };
	const unsigned char *t, *s;
	size_t t_len, len, data_len = 0;
	unsigned char *data = NULL;
	char sig_type[64];
	bool ok = false;

	memset(sk, 0, sizeof *sk);
	if (!pg_sshkey_equal_blob(key, sig->key_blob, sig->key_blob_len)) {
		snprintf(err, err_len, "the signature is by another key");
		goto out;
	}
	if (!string_is(sig->ns, sig->ns_len, ns)) {
		snprintf(err, err_len, "wrong namespace '%.*s', expected '%s' (sign with ssh-keygen "
		         "-Y sign -n %s)", (int)(sig->ns_len > 64 ? 64 : sig->ns_len),
		         (const char *)sig->ns, ns, ns);
		goto out;
	}
	if (!read_string(&r, &t, &t_len) || !read_string(&r, &s, &len) || t_len >= sizeof sig_type) {
		snprintf(err, err_len, "the signature's inner fields are malformed");
		goto out;
	}
	memcpy(sig_type, t, t_len);
	sig_type[t_len] = '\0';
	if (!sig_type_ok(key, t, t_len)) {
		snprintf(err, err_len, "signature type '%s' does not fit a %s key%s", sig_type,
		         pg_sshkey_type_name(key), key->type == PG_SSHKEY_RSA ?
		         " (ssh-rsa signs with SHA-1: use rsa-sha2-256 or rsa-sha2-512)" : "");
		goto out;
	}
	if (!signed_data(sig, msg, msg_len, &data, &data_len)) {
		snprintf(err, err_len, "out of memory");
		goto out;
	}
	if (key->type == PG_SSHKEY_SK_ED25519 || key->type == PG_SSHKEY_SK_ECDSA_P256) {
		ok = verify_sk(key, sig_type, &r, s, len, data, data_len, sk, err, err_len);
		goto out;
	}
	if (r.left != 0) {
		snprintf(err, err_len, "%zu bytes follow the signature", r.left);
		goto out;
	}
	ok = verify_raw(key, sig_type, s, len, data, data_len);
	if (!ok)
		snprintf(err, err_len, "the signature does not verify");
out:
	free(data);
	return ok;
}
