/* SPDX-License-Identifier: Apache-2.0
 *
 * login_loop MODULE STOP-FILE: another job on the same host, logging in to
 * the token again and again (C_Login, C_Logout) until STOP-FILE appears, as
 * fast as it can; for tests/enforce/beside-logins.sh.  SoftHSM2 2.6.1
 * rewrites its token file at every successful C_Login.  Prints how many
 * logins succeeded; failed ones (SoftHSM2's own race between processes)
 * are counted, not fatal.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "p11gate/pkcs11.h"

static const char USER_PIN[] = "1234";

int
main(int argc, char **argv)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_C_GetFunctionList get_list;
	CK_FUNCTION_LIST_PTR f = NULL;
	CK_SESSION_HANDLE s;
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	unsigned long ok = 0, failed = 0;
	void *dl;

	if (argc != 3) {
		fprintf(stderr, "usage: login_loop MODULE STOP-FILE\n");
		return 2;
	}
	dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	get_list = dl != NULL ? (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList") : NULL;
	if (get_list == NULL || get_list(&f) != CKR_OK || f->C_Initialize(&args) != CKR_OK ||
	    f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK || n == 0 ||
	    f->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) {
		fprintf(stderr, "login_loop: cannot open a session on %s\n", argv[1]);
		return 1;
	}
	while (access(argv[2], F_OK) != 0) {
		if (f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, sizeof USER_PIN - 1) == CKR_OK) {
			ok++;
			f->C_Logout(s);
		} else {
			failed++;
		}
	}
	printf("%lu logins, %lu failed\n", ok, failed);
	f->C_Finalize(NULL);
	dlclose(dl);
	return 0;
}
