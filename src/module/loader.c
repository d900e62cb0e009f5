/* SPDX-License-Identifier: Apache-2.0
 *
 * Loads the real PKCS#11 module and takes its function table.  A module's
 * version field is not trusted for the table's size (SoftHSM 2.7.0 labels a
 * 2.40-sized table 3.2): 3.0 entries come only from C_GetInterface.
 */
#include "module.h"
#include "p11gate/common.h"

#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef CK_RV (*get_interface_fn)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS);

/* Modules that would call back into p11gate or into a server that serves
 * p11gate: wrapping them loops until memory runs out. */
static bool
is_loop(const char *real_path, void *dl)
{
	char copy[PATH_MAX];
	const char *base;

	snprintf(copy, sizeof copy, "%s", real_path);
	base = basename(copy);
	if (strncmp(base, "p11-kit-client", strlen("p11-kit-client")) == 0)
		return true;
	return dlsym(dl, "C_GetFunctionList") == (void *)C_GetFunctionList;
}

void *
pg_loader_open(const char *path, pg_function_list_3_0 *table, char *err, size_t err_len)
{
	static const CK_VERSION v3_0 = { 3, 0 };
	CK_VERSION version = v3_0;
	CK_FUNCTION_LIST_PTR list = NULL;
	CK_INTERFACE_PTR iface = NULL;
	CK_C_GetFunctionList get_list;
	get_interface_fn get_iface;
	char real_path[PATH_MAX];
	void *dl = NULL;
	CK_RV rv;

	memset(table, 0, sizeof *table);
	if (realpath(path, real_path) == NULL) {
		snprintf(err, err_len, "module %s cannot be loaded: %s", path, strerror(errno));
		goto fail;
	}
	dl = dlopen(real_path, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		snprintf(err, err_len, "module %s cannot be loaded: %s", path, dlerror());
		goto fail;
	}
	if (is_loop(real_path, dl)) {
		snprintf(err, err_len, "module %s would loop back into p11gate; "
		         "name the token's own module (p11gate refuses itself and p11-kit-client.so)", path);
		goto fail;
	}

	get_iface = (get_interface_fn)dlsym(dl, "C_GetInterface");
	if (get_iface != NULL &&
	    get_iface((CK_UTF8CHAR_PTR)"PKCS 11", &version, &iface, 0) == CKR_OK &&
	    iface != NULL && iface->pFunctionList != NULL) {
		memcpy(table, iface->pFunctionList, sizeof *table);
		return dl;
	}

	get_list = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	if (get_list == NULL) {
		snprintf(err, err_len, "module %s is not a PKCS#11 module: no C_GetFunctionList", path);
		goto fail;
	}
	rv = get_list(&list);
	if (rv != CKR_OK || list == NULL) {
		snprintf(err, err_len, "module %s: C_GetFunctionList failed: %s", path,
		         rv != CKR_OK && pg_rv_name(rv) ? pg_rv_name(rv) : "no table");
		goto fail;
	}
	memcpy(table, list, sizeof(CK_FUNCTION_LIST));
	table->version = list->version;
	if (table->version.major > 2) {
		/* A 2.40-sized table labelled 3.x: we took only its 2.40 part. */
		table->version.major = 2;
		table->version.minor = 40;
	}
	return dl;

fail:
	if (dl != NULL)
		dlclose(dl);
	memset(table, 0, sizeof *table);
	return NULL;
}

void
pg_loader_close(void *dl)
{
	if (dl != NULL)
		dlclose(dl);
}
