/* SPDX-License-Identifier: Apache-2.0
 *
 * Key material the PKCS#11 fuzzer puts into its calls, made once per
 * process: a software RSA and EC key of its own (to import keys that are
 * not release-rsa's), blobs encrypted to release-rsa (so a decryption or
 * an unwrap the module wrongly let through would succeed, not fail on
 * padding), and the fixture's certificates.
 */
#ifndef P11GATE_FUZZ_MATERIAL_H
#define P11GATE_FUZZ_MATERIAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

struct fuzz_blob {
	uint8_t *data;
	size_t len;
};

struct fuzz_material {
	/* The fuzzer's own RSA-2048 key, as PKCS#11 attributes. */
	struct fuzz_blob rsa_n, rsa_e, rsa_d, rsa_p, rsa_q, rsa_dp, rsa_dq, rsa_qinv;
	/* release-rsa's public key (from the fixture). */
	struct fuzz_blob release_n, release_e;
	/* The fuzzer's own P-256 key: CKA_EC_PARAMS, CKA_VALUE, the point raw
	 * and as CKA_EC_POINT (a DER OCTET STRING). */
	struct fuzz_blob ec_params, ec_d, ec_point, ec_point_der;
	/* An AES-128 key, and it encrypted (PKCS#1 v1.5) to release-rsa and
	 * to the fuzzer's own RSA key. */
	uint8_t aes_key[16];
	struct fuzz_blob aes_to_release, aes_to_own;
	/* The fixture's certificates (DER). */
	struct fuzz_blob rsa_cert, ec_cert;
	/* A label longer than p11gate keeps, starting with "codesign-rsa". */
	uint8_t long_label[300];
};

/* Aborts with a message on failure. */
void fuzz_material_init(struct fuzz_material *m, const char *token_dir, EVP_PKEY *release_rsa);
void fuzz_material_free(struct fuzz_material *m);

#endif /* P11GATE_FUZZ_MATERIAL_H */
