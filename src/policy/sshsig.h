/* SPDX-License-Identifier: Apache-2.0
 *
 * OpenSSH public keys and SSHSIG signatures (`ssh-keygen -Y sign`), verified
 * with OpenSSL inside p11gate: no program is run.  The formats are OpenSSH's
 * PROTOCOL.sshsig, PROTOCOL.key and PROTOCOL.u2f.
 */
#ifndef P11GATE_SSHSIG_H
#define P11GATE_SSHSIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pg_sshkey_type {
	PG_SSHKEY_ED25519,
	PG_SSHKEY_ECDSA_P256,
	PG_SSHKEY_ECDSA_P384,
	PG_SSHKEY_ECDSA_P521,
	PG_SSHKEY_RSA,
	PG_SSHKEY_SK_ED25519,          /* sk-ssh-ed25519@openssh.com */
	PG_SSHKEY_SK_ECDSA_P256,       /* sk-ecdsa-sha2-nistp256@openssh.com */
};

/* The FIDO authenticator's flags in an sk- signature (PROTOCOL.u2f). */
#define PG_SSHSIG_SK_USER_PRESENT  0x01
#define PG_SSHSIG_SK_USER_VERIFIED 0x04

/* RSA keys below this are refused (OpenSSH accepts 1024). */
#define PG_SSHKEY_RSA_MIN_BITS 2048

typedef struct pg_sshkey pg_sshkey;
typedef struct pg_sshsig pg_sshsig;

/* A public key as written in authorized_keys: "TYPE BASE64 [comment]".
 * NULL with err filled ("unsupported key type 'ssh-dss'") on failure. */
pg_sshkey *pg_sshkey_new(const char *line, char *err, size_t err_len);
void pg_sshkey_free(pg_sshkey *key);
enum pg_sshkey_type pg_sshkey_type(const pg_sshkey *key);
const char *pg_sshkey_type_name(const pg_sshkey *key);
/* "SHA256:…" as ssh-keygen -l prints it (out: at least 52 bytes). */
void pg_sshkey_fingerprint(const pg_sshkey *key, char *out, size_t out_len);
/* The key's wire-format blob, which identifies it. */
bool pg_sshkey_equal_blob(const pg_sshkey *key, const unsigned char *blob, size_t len);

/* An armored signature ("-----BEGIN SSH SIGNATURE-----"), parsed and
 * checked for shape (magic, version 1, hash sha256 or sha512); not yet
 * verified.  NULL with err filled on failure. */
pg_sshsig *pg_sshsig_new(const char *armored, size_t len, char *err, size_t err_len);
void pg_sshsig_free(pg_sshsig *sig);
/* The signer's public key blob the signature names. */
const unsigned char *pg_sshsig_key_blob(const pg_sshsig *sig, size_t *len);
/* SHA256 fingerprint of that key, as pg_sshkey_fingerprint. */
void pg_sshsig_fingerprint(const pg_sshsig *sig, char *out, size_t out_len);

/* What an sk- signature says about its authenticator. */
struct pg_sshsig_sk {
	bool is_sk;
	uint8_t flags;
	uint32_t counter;
};

/* Verifies sig over msg in namespace ns with key (which must be the key
 * the signature names).  An sk- signature must carry the user-presence
 * flag; user verification is reported in *sk, not required.  false with
 * err filled ("wrong namespace 'file', expected 'p11gate-grant'") on failure. */
bool pg_sshsig_verify(const pg_sshsig *sig, const pg_sshkey *key, const char *ns,
                      const unsigned char *msg, size_t msg_len, struct pg_sshsig_sk *sk,
                      char *err, size_t err_len);

#endif /* P11GATE_SSHSIG_H */
