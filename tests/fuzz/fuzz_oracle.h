/* SPDX-License-Identifier: Apache-2.0
 *
 * The properties the PKCS#11 fuzzer checks after every call, written from
 * the fuzzer's policy (only `sign` with release-rsa is allowed, for
 * everyone) and not from p11gate's code: which outputs a forbidden key use
 * could produce, whether a signature really is release-rsa's, and whether
 * the audit log holds every signature that left the module.
 */
#ifndef P11GATE_FUZZ_ORACLE_H
#define P11GATE_FUZZ_ORACLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "p11gate/pkcs11.h"

/* A key as the fuzzer read it (through the module's pass-through
 * C_GetAttributeValue) just before the call that used it. */
struct fuzz_key_view {
	bool known;                /* CKA_CLASS could be read */
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE type;
	bool release_rsa;          /* an RSA key with release-rsa's modulus */
	bool named;                /* labelled as a policy key (codesign-rsa, codesign-ec) */
};

/* A private-key operation the module accepted the *Init of, as the fuzzer
 * saw it: what a signature that comes out of it must verify as. */
struct fuzz_op_view {
	bool set;
	CK_MECHANISM_TYPE mechanism;
	bool has_pss;
	CK_RSA_PKCS_PSS_PARAMS pss;
	struct fuzz_key_view key;
	uint8_t *data;             /* what was fed to it since the *Init */
	size_t data_len, data_cap;
};

void fuzz_op_view_start(struct fuzz_op_view *op, CK_MECHANISM_TYPE mechanism,
                        const CK_RSA_PKCS_PSS_PARAMS *pss, const struct fuzz_key_view *key);
void fuzz_op_view_feed(struct fuzz_op_view *op, const uint8_t *data, size_t len);
void fuzz_op_view_clear(struct fuzz_op_view *op);

struct fuzz_log;

struct fuzz_oracle {
	EVP_PKEY *release_rsa;             /* the fixture's rsa-pub.pem */
	uint8_t modulus[1024];
	size_t modulus_len;                /* without leading zero bytes */
	/* Every signature released since the log was last checked: SHA-256 of
	 * the signature and of the data it signs. */
	struct fuzz_released {
		uint8_t signature[32];
		uint8_t data[32];
	} *signatures;
	size_t n_signatures, cap_signatures;
	uint64_t checked_signatures;       /* over the whole run */
	struct fuzz_log *log;              /* what was read of the audit log */
};

/* Loads release-rsa's public key from the fixture; aborts on failure. */
void fuzz_oracle_init(struct fuzz_oracle *o, const char *rsa_pub_pem);
void fuzz_oracle_free(struct fuzz_oracle *o);

/* Whether a CKA_MODULUS value is release-rsa's. */
bool fuzz_oracle_is_release_modulus(const struct fuzz_oracle *o, const CK_BYTE *modulus, CK_ULONG len);

/* Reports a broken property and aborts, so libFuzzer saves the input. */
void fuzz_violation(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A signing call returned CKR_OK with a signature: it must come from an
 * operation started on release-rsa and verify with its public key over
 * the data given.  Aborts otherwise; remembers the signature for the log. */
void fuzz_oracle_signature(struct fuzz_oracle *o, const char *function, const struct fuzz_op_view *op,
                           const uint8_t *signature, size_t len);

/* Reads what the module appended to its audit log since the last call:
 * the chain is intact, and every signature remembered has a CKR_OK result
 * record with its SHA-256 whose ref is an allow decision with the SHA-256
 * of the data it signs.  Aborts otherwise; forgets the signatures.  last:
 * the log is complete (and is about to be removed, or the run ends). */
void fuzz_oracle_check_log(struct fuzz_oracle *o, const char *audit_path, bool last);

#endif /* P11GATE_FUZZ_ORACLE_H */
