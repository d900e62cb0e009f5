/* SPDX-License-Identifier: Apache-2.0
 *
 * What a PKCS#11 application sees: the three exported entry points, the
 * 2.40 and 3.0 function tables filled from functions.h, and the
 * module-level calls (initialise, finalise, information about p11gate).
 */
#include "module.h"
#include "p11gate-build.h"

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#define PG_EXPORT __attribute__((visibility("default")))

#define PG_MODULE(name, ...) .name = pg_mod_##name,
#define PG_FN(name, ...) .name = pg_fwd_##name,
#define PG_HOOK(name, ...) .name = pg_hook_##name,
#define PG_ONLY_2_40
static const CK_FUNCTION_LIST table_2_40 = {
	.version = { 2, 40 },
#include "functions.h"
};
#undef PG_ONLY_2_40

#define PG_MODULE(name, ...) .name = pg_mod_##name,
#define PG_FN(name, ...) .name = pg_fwd_##name,
#define PG_HOOK(name, ...) .name = pg_hook_##name,
static const pg_function_list_3_0 table_3_0 = {
	.version = { 3, 0 },
#include "functions.h"
};

/* The 3.0 table must start with exactly the 2.40 table. */
_Static_assert(offsetof(pg_function_list_3_0, C_WaitForSlotEvent) ==
               offsetof(CK_FUNCTION_LIST, C_WaitForSlotEvent), "2.40 prefix");
_Static_assert(offsetof(pg_function_list_3_0, C_GetInterfaceList) ==
               sizeof(CK_FUNCTION_LIST), "3.0 entries follow the 2.40 table");

/* The default (first) interface is 3.0; its 3.0-only functions answer
 * CKR_FUNCTION_NOT_SUPPORTED when the wrapped module is 2.40. */
static const CK_INTERFACE interfaces[] = {
	{ (CK_CHAR *)"PKCS 11", (void *)&table_3_0, 0 },
	{ (CK_CHAR *)"PKCS 11", (void *)&table_2_40, 0 },
};
#define N_INTERFACES (sizeof interfaces / sizeof interfaces[0])

/* What C_GetInterface hands out: writable copies, because a layer above
 * may write into the CK_INTERFACE it gets (OpenSC's pkcs11-spy puts its
 * own function list there).  Each call takes the next copy of a ring,
 * filled afresh, so one caller's change never reaches the next caller
 * (unless it keeps the pointer for a ring's worth of calls; then it sees
 * p11gate's own table again, which is still valid). */
#define HANDED_OUT 32
static CK_INTERFACE handed_out[HANDED_OUT];
static atomic_uint handed_out_next;

static const CK_VERSION *
interface_version(const CK_INTERFACE *iface)
{
	return &((const CK_FUNCTION_LIST *)iface->pFunctionList)->version;
}

/* pReserved must be NULL by the spec.  p11gate takes one string there,
 * "p11gate-config=PATH", which p11-kit passes from `x-init-reserved`.  It
 * reads it only through the kernel (pg_safe_copy_string): a pointer it
 * cannot read, a string without that prefix, or one without an end within
 * PATH_MAX is not p11gate's, and goes on to the wrapped module unchanged
 * for it to answer (SoftHSM2: CKR_ARGUMENTS_BAD). */
#define RESERVED_PREFIX "p11gate-config="

/* p11gate locks with pthreads whatever the application passes: every
 * thread it can be called from is a pthread.  The callbacks and flags go
 * on to the wrapped module unchanged; pReserved, when it is ours, does not.
 * The arguments are read through the kernel too: an unreadable pointer is
 * answered CKR_ARGUMENTS_BAD, never a crash. */
CK_RV
pg_mod_C_Initialize(CK_VOID_PTR init_args)
{
	CK_C_INITIALIZE_ARGS args;
	char reserved[sizeof RESERVED_PREFIX + PATH_MAX];
	const char *reserved_path = NULL;
	int callbacks;

	if (init_args == NULL)
		return pg_ctx_initialize(NULL, NULL);
	if (pg_safe_copy(&args, init_args, sizeof args) != 0)
		return CKR_ARGUMENTS_BAD;
	callbacks = (args.CreateMutex != NULL) + (args.DestroyMutex != NULL) +
	            (args.LockMutex != NULL) + (args.UnlockMutex != NULL);
	if (callbacks != 0 && callbacks != 4)
		return CKR_ARGUMENTS_BAD;
	if (args.pReserved != NULL &&
	    pg_safe_copy_string(reserved, sizeof reserved, args.pReserved, RESERVED_PREFIX) == 0) {
		reserved_path = reserved + sizeof RESERVED_PREFIX - 1;
		args.pReserved = NULL;
	}
	return pg_ctx_initialize(&args, reserved_path);
}

CK_RV
pg_mod_C_Finalize(CK_VOID_PTR reserved)
{
	if (reserved != NULL)
		return CKR_ARGUMENTS_BAD;
	return pg_ctx_finalize();
}

/* The wrapped module's answer (clients branch on its manufacturer and
 * description), but for two fields: the interface p11gate really provides
 * is at most 3.0, and the library version is p11gate's own, where its
 * presence stays visible. */
CK_RV
pg_mod_C_GetInfo(CK_INFO_PTR info)
{
	CK_INFO lower;
	CK_RV rv;

	rv = pg_ctx_lower_info(&lower);
	if (rv != CKR_OK)
		return rv;
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	*info = lower;
	if (info->cryptokiVersion.major > 3) {
		info->cryptokiVersion.major = 3;
		info->cryptokiVersion.minor = 0;
	}
	info->libraryVersion.major = P11GATE_VERSION_MAJOR;
	info->libraryVersion.minor = P11GATE_VERSION_MINOR;
	return CKR_OK;
}

CK_RV
pg_mod_C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	*list = (CK_FUNCTION_LIST_PTR)&table_2_40;
	return CKR_OK;
}

CK_RV
pg_mod_C_GetInterfaceList(CK_INTERFACE_PTR list, CK_ULONG_PTR count)
{
	CK_RV rv = CKR_OK;

	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	if (list == NULL)
		goto out;
	if (*count < N_INTERFACES) {
		rv = CKR_BUFFER_TOO_SMALL;
		goto out;
	}
	memcpy(list, interfaces, sizeof interfaces);
out:
	*count = N_INTERFACES;
	return rv;
}

CK_RV
pg_mod_C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version,
                      CK_INTERFACE_PTR_PTR iface, CK_FLAGS flags)
{
	CK_INTERFACE *copy;

	if (iface == NULL)
		return CKR_ARGUMENTS_BAD;
	for (size_t i = 0; i < N_INTERFACES; i++) {
		const CK_VERSION *v = interface_version(&interfaces[i]);

		if (name != NULL && strcmp((const char *)name, (const char *)interfaces[i].pInterfaceName) != 0)
			continue;
		if (version != NULL && (version->major != v->major || version->minor != v->minor))
			continue;
		if ((interfaces[i].flags & flags) != flags)
			continue;
		copy = &handed_out[atomic_fetch_add(&handed_out_next, 1) % HANDED_OUT];
		*copy = interfaces[i];
		*iface = copy;
		return CKR_OK;
	}
	return CKR_ARGUMENTS_BAD;
}

PG_EXPORT CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	return pg_mod_C_GetFunctionList(list);
}

PG_EXPORT CK_RV
C_GetInterfaceList(CK_INTERFACE_PTR list, CK_ULONG_PTR count)
{
	return pg_mod_C_GetInterfaceList(list, count);
}

PG_EXPORT CK_RV
C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version, CK_INTERFACE_PTR_PTR iface, CK_FLAGS flags)
{
	return pg_mod_C_GetInterface(name, version, iface, flags);
}
