/* SPDX-License-Identifier: Apache-2.0
 *
 * What a PKCS#11 application sees: the three exported entry points, the
 * 2.40 and 3.0 function tables filled from functions.h, and the
 * module-level calls (initialise, finalise, information about p11gate).
 */
#include "module.h"
#include "p11gate-build.h"

#include <stddef.h>
#include <string.h>

#define PG_EXPORT __attribute__((visibility("default")))

#define PG_MODULE(name, params, args) .name = pg_mod_##name,
#define PG_FN(name, params, args) .name = pg_fwd_##name,
#define PG_HOOK(name, params, args) .name = pg_hook_##name,
#define PG_ONLY_2_40
static const CK_FUNCTION_LIST table_2_40 = {
	.version = { 2, 40 },
#include "functions.h"
};
#undef PG_ONLY_2_40

#define PG_MODULE(name, params, args) .name = pg_mod_##name,
#define PG_FN(name, params, args) .name = pg_fwd_##name,
#define PG_HOOK(name, params, args) .name = pg_hook_##name,
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

static const CK_VERSION *
interface_version(const CK_INTERFACE *iface)
{
	return &((const CK_FUNCTION_LIST *)iface->pFunctionList)->version;
}

/* pReserved must be NULL by the spec; p11gate also accepts the string
 * "p11gate-config=PATH", which p11-kit passes from `x-init-reserved`. */
static CK_RV
check_init_args(const CK_C_INITIALIZE_ARGS *args, const char **reserved_path)
{
	static const char prefix[] = "p11gate-config=";
	int callbacks = (args->CreateMutex != NULL) + (args->DestroyMutex != NULL) +
	                (args->LockMutex != NULL) + (args->UnlockMutex != NULL);

	*reserved_path = NULL;
	if (callbacks != 0 && callbacks != 4)
		return CKR_ARGUMENTS_BAD;
	if (args->pReserved != NULL) {
		if (strncmp(args->pReserved, prefix, sizeof prefix - 1) != 0)
			return CKR_ARGUMENTS_BAD;
		*reserved_path = (const char *)args->pReserved + sizeof prefix - 1;
	}
	return CKR_OK;
}

/* p11gate locks with pthreads whatever the application passes: every
 * thread it can be called from is a pthread.  The callbacks and flags go
 * on to the wrapped module unchanged; pReserved, which is ours, does not. */
CK_RV
pg_mod_C_Initialize(CK_VOID_PTR init_args)
{
	const CK_C_INITIALIZE_ARGS *args = init_args;
	CK_C_INITIALIZE_ARGS lower_args;
	const char *reserved_path = NULL;
	CK_RV rv;

	if (args == NULL)
		return pg_ctx_initialize(NULL, NULL);
	rv = check_init_args(args, &reserved_path);
	if (rv != CKR_OK)
		return rv;
	lower_args = *args;
	lower_args.pReserved = NULL;
	return pg_ctx_initialize(&lower_args, reserved_path);
}

CK_RV
pg_mod_C_Finalize(CK_VOID_PTR reserved)
{
	if (reserved != NULL)
		return CKR_ARGUMENTS_BAD;
	return pg_ctx_finalize();
}

static void
pad(CK_UTF8CHAR *field, size_t len, const char *text)
{
	size_t n = strlen(text);

	memset(field, ' ', len);
	memcpy(field, text, n < len ? n : len);
}

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
	memset(info, 0, sizeof *info);
	/* The interface p11gate really provides is the wrapped module's. */
	info->cryptokiVersion = lower.cryptokiVersion;
	if (info->cryptokiVersion.major > 3) {
		info->cryptokiVersion.major = 3;
		info->cryptokiVersion.minor = 0;
	}
	pad(info->manufacturerID, sizeof info->manufacturerID, "p11gate");
	pad(info->libraryDescription, sizeof info->libraryDescription, "p11gate PKCS#11 policy gate");
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
		*iface = (CK_INTERFACE_PTR)&interfaces[i];
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
