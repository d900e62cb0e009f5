/* SPDX-License-Identifier: Apache-2.0
 *
 * A p11-kit client for tests/server/peer-login.sh: loads MODULE (the
 * p11-kit client module), logs into the first token with the identity
 * token in TOKENFILE as its PIN, prints "logged-in", waits until GOFILE
 * exists (so several connections hold their logins at once), then signs a
 * digest with each key id given (01: RSA CKM_RSA_PKCS, 02: EC CKM_ECDSA)
 * and prints "sign ID RV" for each.
 * Usage: login_client MODULE TOKENFILE GOFILE ID...
 */
#include "p11gate/pkcs11.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static CK_RV
sign_with(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_BYTE id)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE templ[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_ID, &id, 1 } };
	CK_OBJECT_HANDLE key;
	CK_ULONG n = 0;
	CK_MECHANISM mech = { id == 1 ? CKM_RSA_PKCS : CKM_ECDSA, NULL, 0 };
	unsigned char data[32] = { 7 }, sig[512];
	CK_ULONG sig_len = sizeof sig;
	CK_RV rv;

	if ((rv = f->C_FindObjectsInit(s, templ, 2)) != CKR_OK ||
	    (rv = f->C_FindObjects(s, &key, 1, &n)) != CKR_OK || (rv = f->C_FindObjectsFinal(s)) != CKR_OK)
		return rv;
	if (n != 1)
		return CKR_KEY_HANDLE_INVALID;
	if ((rv = f->C_SignInit(s, &mech, key)) != CKR_OK)
		return rv;
	return f->C_Sign(s, data, sizeof data, sig, &sig_len);
}

int
main(int argc, char **argv)
{
	void *dl;
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	CK_ULONG n = 1;
	CK_SESSION_HANDLE s;
	char token[16384];
	size_t len;
	FILE *in;
	CK_RV rv;

	if (argc < 5) {
		fprintf(stderr, "usage: login_client MODULE TOKENFILE GOFILE ID...\n");
		return 2;
	}
	dl = dlopen(argv[1], RTLD_NOW);
	get = dl != NULL ? (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList") : NULL;
	if (get == NULL || get(&f) != CKR_OK) {
		fprintf(stderr, "cannot load %s\n", argv[1]);
		return 1;
	}
	in = fopen(argv[2], "r");
	if (in == NULL) {
		perror(argv[2]);
		return 1;
	}
	len = fread(token, 1, sizeof token - 1, in);
	fclose(in);
	while (len > 0 && token[len - 1] == '\n')
		len--;
	if ((rv = f->C_Initialize(NULL)) != CKR_OK || (rv = f->C_GetSlotList(CK_TRUE, &slot, &n)) != CKR_OK ||
	    (rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK) {
		fprintf(stderr, "setup failed: 0x%lx\n", rv);
		return 1;
	}
	rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)token, (CK_ULONG)len);
	printf("%s 0x%lx\n", rv == CKR_OK ? "logged-in" : "login-failed", rv);
	fflush(stdout);
	while (access(argv[3], F_OK) != 0)
		usleep(20000);
	for (int i = 4; i < argc; i++)
		printf("sign %s 0x%lx\n", argv[i], sign_with(f, s, (CK_BYTE)strtoul(argv[i], NULL, 16)));
	fflush(stdout);
	f->C_CloseSession(s);
	f->C_Finalize(NULL);
	return 0;
}
