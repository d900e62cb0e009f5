/* SPDX-License-Identifier: Apache-2.0
 *
 * One test's world for the enforcement C tests: a fresh copy of the fixture
 * token (tests/fixture/mktoken), the test's own policy and audit log,
 * p11gate.so dlopen'ed over it, stderr captured, and the assertions on the
 * audit records and signatures the tests share.
 */
#ifndef P11GATE_TEST_WORLD_H
#define P11GATE_TEST_WORLD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p11gate/pkcs11.h"

struct Suite;
struct mock_p11_control;
struct mock_function_list_3_0;

struct world {
	char dir[PATH_MAX];          /* P11GATE_TEST_WORK/<program>/<test> */
	char token[PATH_MAX];        /* the fixture, dir/token */
	char policy[PATH_MAX];       /* dir/policy.yaml (P11GATE_CONFIG) */
	char audit[PATH_MAX];        /* dir/audit.jsonl */
	char err[PATH_MAX];          /* dir/stderr: this process's stderr */
	char rsa_pin[65], ec_pin[65];
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	bool mock;                   /* over the mock token (world_new_mock), not SoftHSM2 */
};

/* Names of return values, for messages. */
const char *world_rv_name(CK_RV rv);

#define ck_assert_rv(call, expected)                                              \
	do {                                                                      \
		CK_RV rv_ = (call);                                               \
		ck_assert_msg(rv_ == (CK_RV)(expected), "%s returned %s, expected %s", \
		              #call, world_rv_name(rv_), world_rv_name(expected)); \
	} while (0)

/* Makes the world (named after the program and test) and points SoftHSM2
 * and p11gate at it; from here on stderr goes to w->err.  Call first in a
 * test: Check runs each test in its own process. */
void world_new(struct world *w, const char *program, const char *test);

/* The same world over the mock PKCS#11 3.0 token (tests/mock/mock.h)
 * instead of a SoftHSM2 fixture: no token directory, no public-key pins.
 * world_policy then names the mock's keys: `signer` (the private key
 * mock-sign, MOCK_KEY_SIGN) and `secret` (the AES key mock-secret); the
 * private key mock-other is named by no policy key.  world_open finds the
 * token labelled `mock`. */
void world_new_mock(struct world *w, const char *program, const char *test);
/* The mock's control table (scripts, hooks, call counts), once world_open
 * has loaded p11gate over it. */
const struct mock_p11_control *world_mock(const struct world *w);

/* world_new_mock, world_policy(rules), world_open, the mock's scripts and
 * counts reset (a test's counts start here), and a logged-in session. */
CK_SESSION_HANDLE world_mock_start(struct world *w, const char *program, const char *test, const char *rules);
/* Whether a record after mark has this data_sha256 (of data) and all the
 * needles; the record is copied into out. */
bool world_audit_find_data_since(const struct world *w, size_t mark, const void *data, size_t len,
                                 const char *needle, char *out, size_t out_len);

/* p11gate's 3.0 function table, from its C_GetInterface (the layout is
 * the standard's; mock.h declares it). */
struct mock_function_list_3_0 *world_interface_3_0(const struct world *w);
/* world_expect_one_allow, and the allow record is for operation and names
 * data's SHA-256. */
void world_expect_allow_data(const struct world *w, size_t mark, const char *function, const char *operation,
                             const void *data, size_t len);

/* What the mock signs for data with the key labelled label (mock.h). */
void world_mock_signature(const char *label, const void *data, size_t len, unsigned char out[32]);

/* Writes the policy: both fixture keys (release-rsa, release-ec, with their
 * public-key pins) and the rules given (a YAML sequence, indented by two).
 * Atomically (temporary file + rename), as an operator deploys. */
void world_policy(const struct world *w, const char *rules);
/* The text world_policy writes (malloc'd). */
char *world_policy_render(const struct world *w, const char *rules);
/* Replaces the policy file with exactly this text, atomically. */
void world_policy_text(const struct world *w, const char *text);

/* dlopen p11gate.so, C_Initialize (OS locking), find the `release` slot. */
void world_open(struct world *w);
/* C_Finalize and dlclose. */
void world_close(struct world *w);
/* A read-write session, logged in as the user. */
CK_SESSION_HANDLE world_session(const struct world *w);
/* The one object of this class with this CKA_ID. */
CK_OBJECT_HANDLE world_find(const struct world *w, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, CK_BYTE id);
/* How many objects of this class carry this label. */
CK_ULONG world_count_label(const struct world *w, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label);
/* How many objects of this class the token holds. */
CK_ULONG world_count_class(const struct world *w, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls);

/* ---- the audit log -------------------------------------------------------- */

/* Lines in the log now (0 if it does not exist): a mark for *_since. */
size_t world_audit_lines(const struct world *w);
/* Records after mark containing every one of the NULL-terminated needles
 * (exact substrings of the JSON line, e.g. "\"decision\":\"deny\""). */
size_t world_audit_count_since(const struct world *w, size_t mark, ...) __attribute__((sentinel));
/* Copies the first such record into out (a line); false if none. */
bool world_audit_find_since(const struct world *w, size_t mark, char *out, size_t out_len, ...)
	__attribute__((sentinel));
/* A number field of a record ("seq", "ref"); 0 if absent. */
uint64_t world_json_u64(const char *line, const char *field);
/* `p11gate audit verify` accepts the log. */
void world_audit_verify(const struct world *w);

/* Asserts the calls since mark left exactly one deny decision record for
 * function with this operation and no allow or result record. */
void world_expect_one_deny(const struct world *w, size_t mark, const char *function, const char *operation);
/* Asserts exactly one allow record for function since mark, and exactly
 * one result record whose ref is its seq, with CKR_OK. */
void world_expect_one_allow(const struct world *w, size_t mark, const char *function);

/* Whether this process's captured stderr contains text. */
bool world_stderr_has(const struct world *w, const char *text);

/* ---- signatures ------------------------------------------------------------- */

/* Verifies sig over data with the fixture's public key (kind "rsa":
 * RSASSA-PKCS1-v1_5 SHA-256; "ec": ECDSA over SHA-256 with the raw r||s
 * the token returns). */
bool world_verify(const struct world *w, const char *kind, const void *data, size_t data_len,
                  const unsigned char *sig, size_t sig_len);

/* Runs SUITE with each test in its own process (every one loads the
 * module afresh); the exit status for main. */
int world_run_suite(struct Suite *suite);

#endif /* P11GATE_TEST_WORLD_H */
