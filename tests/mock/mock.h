/* SPDX-License-Identifier: Apache-2.0
 *
 * The mock PKCS#11 3.0 token's control interface (tests/mock/mock_module.c):
 * what a test may script (return codes, delays, a hook at entry) and ask
 * (how often a function reached the token, whether an operation is open in
 * it).  The mock exports one symbol, MOCK_P11_CONTROL, a const table of
 * these; a test finds it with dlopen(path, RTLD_NOLOAD) + dlsym once the
 * module above has loaded the mock (world_mock() in tests/enforce/world.c).
 * Never link the mock into a test program: its C_GetFunctionList would
 * then interpose on the one in p11gate.so.
 *
 * The token (all fixed, so tests can name it):
 *   slot MOCK_SLOT, token label "mock", serial "0001", any PIN logs in;
 *   objects (CKA_ID, CKA_LABEL):
 *     MOCK_KEY_SIGN    private key, RSA, id 01, "mock-sign"
 *     MOCK_KEY_OTHER   private key, RSA, id 02, "mock-other"
 *     MOCK_KEY_SECRET  secret key,  AES, id 03, "mock-secret"
 *     MOCK_KEY_PUBLIC  public key,  RSA, id 01, "mock-sign"
 *     MOCK_KEY_FREE    secret key,  AES, id 05, "mock-free"
 *   "crypto", any mechanism:
 *     signature  = SHA-256(label || 0x00 || all data of the operation or message)
 *     decryption = every byte XOR 0x5a, one output byte per input byte, in
 *                  every part; C_DecryptFinal then yields 4 bytes: the
 *                  number of bytes decrypted, big-endian (so a final has
 *                  output, and a buffer it can be too small for)
 *     encryption = the same XOR; C_EncryptFinal yields nothing
 *     verify     = CKR_OK when the signature is the one above, else
 *                  CKR_SIGNATURE_INVALID
 *     digest     = SHA-256 of the data; C_SignRecover signs as C_Sign does
 *     dual-function updates (C_SignEncryptUpdate, C_DecryptDigestUpdate,
 *                  C_DecryptVerifyUpdate) = the XOR, and the plaintext fed
 *                  to the other operation; both must be running
 *   Output lengths follow PKCS#11 5.2: NULL buffer = length, too small =
 *   CKR_BUFFER_TOO_SMALL and the operation goes on; any other error of an
 *   operation's call ends that operation, as the standard says.
 */
#ifndef P11GATE_TEST_MOCK_H
#define P11GATE_TEST_MOCK_H

#include <stdbool.h>
#include "p11gate/pkcs11.h"

#define MOCK_SLOT        ((CK_SLOT_ID)7)
#define MOCK_KEY_SIGN    ((CK_OBJECT_HANDLE)0x101)
#define MOCK_KEY_OTHER   ((CK_OBJECT_HANDLE)0x102)
#define MOCK_KEY_SECRET  ((CK_OBJECT_HANDLE)0x103)
#define MOCK_KEY_PUBLIC  ((CK_OBJECT_HANDLE)0x104)
#define MOCK_KEY_FREE    ((CK_OBJECT_HANDLE)0x105)
#define MOCK_SIG_LEN     32
#define MOCK_XOR         0x5a

#ifndef CKF_MESSAGE_ENCRYPT
#define CKF_MESSAGE_ENCRYPT 0x2UL
#define CKF_MESSAGE_DECRYPT 0x4UL
#define CKF_MESSAGE_SIGN    0x8UL
#define CKF_MESSAGE_VERIFY  0x10UL
#endif

/* The standard's CK_FUNCTION_LIST_3_0, which p11-kit 0.24's header lacks:
 * CK_FUNCTION_LIST's 68 entries, then the 24 of 3.0 in the standard's order.
 * The mock's table, and how a test calls the 3.0 table p11gate returns. */
struct mock_function_list_3_0 {
	CK_FUNCTION_LIST base;
	CK_RV (*C_GetInterfaceList)(CK_INTERFACE_PTR, CK_ULONG_PTR);
	CK_RV (*C_GetInterface)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS);
	CK_RV (*C_LoginUser)(CK_SESSION_HANDLE, CK_USER_TYPE, CK_UTF8CHAR_PTR, CK_ULONG, CK_UTF8CHAR_PTR, CK_ULONG);
	CK_RV (*C_SessionCancel)(CK_SESSION_HANDLE, CK_FLAGS);
	CK_RV (*C_MessageEncryptInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_RV (*C_EncryptMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
	                          CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
	CK_RV (*C_EncryptMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*C_EncryptMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
	                              CK_ULONG_PTR, CK_FLAGS);
	CK_RV (*C_MessageEncryptFinal)(CK_SESSION_HANDLE);
	CK_RV (*C_MessageDecryptInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_RV (*C_DecryptMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
	                          CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
	CK_RV (*C_DecryptMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*C_DecryptMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
	                              CK_ULONG_PTR, CK_FLAGS);
	CK_RV (*C_MessageDecryptFinal)(CK_SESSION_HANDLE);
	CK_RV (*C_MessageSignInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_RV (*C_SignMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
	                       CK_ULONG_PTR);
	CK_RV (*C_SignMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG);
	CK_RV (*C_SignMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
	                           CK_ULONG_PTR);
	CK_RV (*C_MessageSignFinal)(CK_SESSION_HANDLE);
	CK_RV (*C_MessageVerifyInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_RV (*C_VerifyMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
	                         CK_ULONG);
	CK_RV (*C_VerifyMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG);
	CK_RV (*C_VerifyMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
	                             CK_ULONG);
	CK_RV (*C_MessageVerifyFinal)(CK_SESSION_HANDLE);
};

/* Called at the entry of a hooked function, before its delay and scripted
 * code, with the mock's lock not held. */
typedef void (*mock_p11_hook_fn)(const char *function, CK_SESSION_HANDLE session, void *arg);

struct mock_p11_control {
	/* Forgets every script, hook and count (not the token's state). */
	void (*reset)(void);
	/* From the (skip+1)-th call of function on, for `times` calls (0: for
	 * ever): sleep delay_ms, then return rv without acting (rv CKR_OK:
	 * only the delay, then the call acts).  A scripted error of an
	 * operation's call ends that operation, as a token's own would.
	 * One script per function; a new one replaces it. */
	void (*script)(const char *function, CK_RV rv, unsigned skip, unsigned times, unsigned delay_ms);
	/* Runs hook at every entry of function (NULL: none). */
	void (*hook)(const char *function, mock_p11_hook_fn hook, void *arg);
	/* How many calls of function reached the mock since the last reset. */
	unsigned long (*calls)(const char *function);
	/* Whether the session has an operation of this kind open in the token:
	 * one of CKF_SIGN, CKF_VERIFY, CKF_ENCRYPT, CKF_DECRYPT, CKF_DIGEST,
	 * CKF_SIGN_RECOVER and the four CKF_MESSAGE_* (the C_SessionCancel
	 * flags). */
	bool (*active)(CK_SESSION_HANDLE session, CK_FLAGS kind);
	/* Open sessions. */
	unsigned long (*sessions)(void);
	/* With on, every C_Logout swaps the handles of mock-sign and
	 * mock-other, as a token that numbers its objects anew at each login
	 * may (PKCS#11 does not make a handle outlive the login state): the
	 * handle a caller kept then names the other key. */
	void (*renumber_at_logout)(bool on);
};

/* The symbol the mock exports. */
#define MOCK_P11_CONTROL_SYMBOL "mock_p11_control"

#endif /* P11GATE_TEST_MOCK_H */
