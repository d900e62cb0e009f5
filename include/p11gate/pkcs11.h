/* SPDX-License-Identifier: Apache-2.0
 *
 * The PKCS#11 definitions p11gate builds on: p11-kit's pkcs11.h (2.40), plus
 * the PKCS#11 3.0 interface types that p11-kit 0.24 (Debian 12) does not
 * define yet.  Guarded so that a newer p11-kit that has them wins.
 */
#ifndef P11GATE_PKCS11_H
#define P11GATE_PKCS11_H

#include <p11-kit/pkcs11.h>

#ifndef CKR_OPERATION_CANCEL_FAILED
#define P11GATE_DEFINE_PKCS11_3_0 1
#endif

#ifdef P11GATE_DEFINE_PKCS11_3_0

#define CKF_END_OF_MESSAGE          (0x1UL)
#define CKF_INTERFACE_FORK_SAFE     (0x1UL)
#define CKR_OPERATION_CANCEL_FAILED (0x202UL)

typedef struct CK_INTERFACE {
	CK_CHAR *pInterfaceName;
	void *pFunctionList;
	CK_FLAGS flags;
} CK_INTERFACE;
typedef CK_INTERFACE *CK_INTERFACE_PTR;
typedef CK_INTERFACE **CK_INTERFACE_PTR_PTR;

CK_RV C_GetInterfaceList(CK_INTERFACE_PTR list, CK_ULONG_PTR count);
CK_RV C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version,
                     CK_INTERFACE_PTR_PTR iface, CK_FLAGS flags);

#endif /* P11GATE_DEFINE_PKCS11_3_0 */

/* The 3.0 function table, declared from the same list that generates the
 * forwarders (see functions.h), so a row and its field cannot disagree. */
typedef struct pg_function_list_3_0 pg_function_list_3_0;

#endif /* P11GATE_PKCS11_H */
