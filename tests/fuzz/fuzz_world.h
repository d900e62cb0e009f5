/* SPDX-License-Identifier: Apache-2.0
 *
 * The PKCS#11 fuzzer's world: a copy of the fixture token
 * (tests/fixture/mktoken) made once per process, the fuzzer's fixed
 * policy, the real p11gate.so loaded over it, and putting the token back
 * as it was every so often so its state does not grow without bound.
 *
 * Environment: P11GATE_MODULE, SOFTHSM_MODULE, P11GATE_MKTOKEN and
 * P11GATE_FIXTURE_CACHE as for the tests (meson compiles in this build's);
 * FUZZ_PKCS11_WORK (work directory, else a new one in TMPDIR),
 * FUZZ_PKCS11_KEEP (keep it at exit), FUZZ_PKCS11_PINS=1 (pin the keys),
 * FUZZ_PKCS11_AUDIT_START (a log file the module continues).
 */
#ifndef P11GATE_FUZZ_WORLD_H
#define P11GATE_FUZZ_WORLD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "p11gate/pkcs11.h"

struct fuzz_world {
	char dir[PATH_MAX];          /* the process's work directory */
	char token[PATH_MAX];        /* dir/token: the fixture (softhsm2.conf, tokens/, keys) */
	char pristine[PATH_MAX];     /* dir/pristine: tokens/ as mktoken made it */
	char policy[PATH_MAX];       /* dir/policy.yaml */
	char audit[PATH_MAX];        /* dir/audit.jsonl */
	char rsa_pub[PATH_MAX];      /* token/rsa-pub.pem */
	char reserved[PATH_MAX + 32];   /* "p11gate-config=<policy>", for pReserved */
	bool keep;                   /* FUZZ_PKCS11_KEEP: leave dir behind */
	bool policy_allows;          /* the policy file now allows release-rsa to sign */

	void *dl;                    /* p11gate.so */
	CK_FUNCTION_LIST_PTR f;
	bool initialized;            /* the module answered C_Initialize and no C_Finalize since */
	CK_SLOT_ID slot;             /* the `release` token's slot */
	CK_SLOT_ID empty_slot;       /* SoftHSM2's free slot (no token initialised) */
};

/* Makes the world and loads the module (not initialised).  Aborts with a
 * message on any failure: nothing can be fuzzed without it. */
void fuzz_world_setup(struct fuzz_world *w);

/* Replaces the policy file (atomically) with the fuzzer's policy, which
 * lets release-rsa sign (allow) or refuses it that too. */
void fuzz_world_write_policy(struct fuzz_world *w, bool allow);

/* C_Initialize with args; on CKR_OK finds the slots. */
CK_RV fuzz_world_initialize(struct fuzz_world *w, CK_C_INITIALIZE_ARGS_PTR args);
CK_RV fuzz_world_finalize(struct fuzz_world *w);
/* Initialised with OS locking, or abort. */
void fuzz_world_ensure(struct fuzz_world *w);

/* Token objects on disk now (SoftHSM2 keeps one file per object). */
size_t fuzz_world_token_objects(const struct fuzz_world *w);

/* Finalises, puts the token files and an empty audit log back, and
 * initialises again. */
void fuzz_world_restore(struct fuzz_world *w);

/* Finalises, unloads the module, removes dir unless keep. */
void fuzz_world_teardown(struct fuzz_world *w);

#endif /* P11GATE_FUZZ_WORLD_H */
