/* SPDX-License-Identifier: Apache-2.0
 *
 * The checkpoint key: loading it (the private key from a file only its
 * owner may read, the public key for verify), signing a checkpoint line and
 * checking one.  What is signed is a fixed prefix and the checkpoint's line
 * without its "signature" field (docs/audit.md, "Signed checkpoints").
 */
#include "p11gate/audit.h"
#include "p11gate/common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

struct pg_audit_key {
	EVP_PKEY *pkey;
	unsigned char sha256[PG_SHA256_LEN];   /* of the public key's DER SPKI */
};

static const char DOMAIN[] = "p11gate checkpoint v1\n";

static pg_audit_key *
key_new(EVP_PKEY *pkey, const char *path, char *err, size_t err_len)
{
	unsigned char *der = NULL;
	pg_audit_key *key = NULL;
	int len;

	len = i2d_PUBKEY(pkey, &der);
	if (len <= 0 || (key = calloc(1, sizeof *key)) == NULL ||
	    !pg_sha256(der, (size_t)len, key->sha256)) {
		snprintf(err, err_len, "checkpoint key '%s': cannot encode its public key", path);
		free(key);
		key = NULL;
		EVP_PKEY_free(pkey);
		goto out;
	}
	key->pkey = pkey;
out:
	OPENSSL_free(der);
	return key;
}

pg_audit_key *
pg_audit_key_load(const char *path, bool private_key, char *err, size_t err_len)
{
	bool not_regular;
	EVP_PKEY *pkey;
	struct stat st;
	FILE *f;
	int fd;

	fd = pg_open_regular(path, &not_regular);
	if (fd < 0) {
		snprintf(err, err_len, "cannot read checkpoint key '%s': %s", path,
		         not_regular ? "not a regular file" : strerror(errno));
		return NULL;
	}
	/* Whoever can read it can sign checkpoints: like ssh, refuse a key
	 * others may read, whatever else would let them. */
	if (private_key && (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0)) {
		snprintf(err, err_len, "checkpoint key '%s' may be read by others than its owner "
		         "(mode %04o): only the account that writes checkpoints may read it "
		         "(chmod 600)", path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return NULL;
	}
	f = fdopen(fd, "r");
	if (f == NULL) {
		snprintf(err, err_len, "cannot read checkpoint key '%s': %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	pkey = private_key ? PEM_read_PrivateKey(f, NULL, NULL, NULL) :
	                     PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (pkey == NULL) {
		snprintf(err, err_len, "checkpoint key '%s' is not a PEM %s key (make one with: "
		         "openssl genpkey -algorithm ed25519 -out KEY; openssl pkey -in KEY -pubout "
		         "-out KEY.pub)", path, private_key ? "private" : "public");
		return NULL;
	}
	return key_new(pkey, path, err, err_len);
}

void
pg_audit_key_free(pg_audit_key *key)
{
	if (key == NULL)
		return;
	EVP_PKEY_free(key->pkey);
	free(key);
}

const unsigned char *
pg_audit_key_sha256(const pg_audit_key *key)
{
	return key->sha256;
}

/* Ed25519 and Ed448 sign the message itself; other keys its SHA-256. */
static EVP_MD_CTX *
key_ctx(const pg_audit_key *key, bool sign)
{
	const EVP_MD *md = EVP_PKEY_is_a(key->pkey, "ED25519") || EVP_PKEY_is_a(key->pkey, "ED448") ?
	                   NULL : pg_sha256_md();
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx != NULL && (sign ? EVP_DigestSignInit(ctx, NULL, md, NULL, key->pkey) :
	                          EVP_DigestVerifyInit(ctx, NULL, md, NULL, key->pkey)) != 1) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

/* DOMAIN followed by the line's bytes, in one buffer (Ed25519 signs in one
 * pass). */
static char *
message_new(const char *line, size_t len)
{
	char *msg = malloc(sizeof DOMAIN - 1 + len);

	if (msg != NULL) {
		memcpy(msg, DOMAIN, sizeof DOMAIN - 1);
		memcpy(msg + sizeof DOMAIN - 1, line, len);
	}
	return msg;
}

size_t
pg_audit_key_sign(const pg_audit_key *key, const char *line, size_t len,
                  unsigned char sig[PG_AUDIT_SIG_MAX])
{
	EVP_MD_CTX *ctx = key_ctx(key, true);
	char *msg = message_new(line, len);
	size_t sig_len = 0;

	if (ctx == NULL || msg == NULL ||
	    EVP_DigestSign(ctx, NULL, &sig_len, (const unsigned char *)msg,
	                   sizeof DOMAIN - 1 + len) != 1 || sig_len > PG_AUDIT_SIG_MAX ||
	    EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)msg,
	                   sizeof DOMAIN - 1 + len) != 1)
		sig_len = 0;
	free(msg);
	EVP_MD_CTX_free(ctx);
	return sig_len;
}

bool
pg_audit_key_verify(const pg_audit_key *key, const char *line, size_t len,
                    const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx = key_ctx(key, false);
	char *msg = message_new(line, len);
	bool ok;

	ok = ctx != NULL && msg != NULL &&
	     EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)msg,
	                      sizeof DOMAIN - 1 + len) == 1;
	free(msg);
	EVP_MD_CTX_free(ctx);
	return ok;
}
