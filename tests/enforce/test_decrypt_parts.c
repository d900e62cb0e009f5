/* SPDX-License-Identifier: Apache-2.0
 *
 * A private-key decryption in parts, through p11gate.so over the mock 3.0
 * token (tests/mock: SoftHSM2 2.6.1 cannot decrypt RSA in parts, so these
 * paths are tested nowhere else).
 *
 * Durability (docs/design.md, step 3): the first C_DecryptUpdate, and a
 * C_DecryptMessageNext without end-of-message, return plaintext before the
 * operation ends; that plaintext must not reach the caller before the allow
 * record is on disk.  This program exports its own fdatasync, which
 * p11gate.so's audit writer calls in its place (the program is linked with
 * --export-dynamic): for the log's descriptor it waits SLOW_SYNC_MS before
 * the real fdatasync, then notes how many bytes of the log that sync
 * covered.  Right after the call returns, those bytes must cover the allow
 * record.  A p11gate that lets the output go while the sync runs (in its
 * background syncer) returns long before the slowed sync is done.
 *
 * Sequence (docs/design.md, step 4): after CKR_BUFFER_TOO_SMALL the allow
 * record names the data given so far, so a decryption part may not follow
 * a too-small C_Decrypt or C_DecryptFinal: it would decrypt data no record
 * names.
 */
#include <check.h>
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "world.h"
#include "../mock/mock.h"

#define SLOW_SYNC_MS 700

static const char RULES[] =
	"  - name: tests-decrypt\n"
	"    effect: allow\n"
	"    keys: [signer]\n"
	"    operations: [decrypt]\n";

/* Padded: judged as decrypt (a raw decryption would be a signature). */
static CK_MECHANISM pkcs_mech = { CKM_RSA_PKCS, NULL, 0 };

/* ---- the log's fdatasync, slowed and watched --------------------------------- */

static atomic_bool watching;
static dev_t log_dev;
static ino_t log_ino;
static atomic_llong log_synced = -1;    /* bytes of the log a finished fdatasync covered */

/* Exported (the project builds with -fvisibility=hidden). */
__attribute__((visibility("default"))) int fdatasync(int fd);

__attribute__((visibility("default"))) int
fdatasync(int fd)
{
	static int (*real)(int);
	struct stat st;
	bool log;
	int rc;

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	log = atomic_load(&watching) && fstat(fd, &st) == 0 && st.st_dev == log_dev && st.st_ino == log_ino;
	if (log)
		usleep(SLOW_SYNC_MS * 1000);
	rc = real(fd);
	/* Every byte written before the fstat is on disk now. */
	if (log && rc == 0) {
		long long prev = atomic_load(&log_synced);

		while (prev < (long long)st.st_size && !atomic_compare_exchange_weak(&log_synced, &prev, st.st_size))
			;
	}
	return rc;
}

static void
watch_log(const struct world *w)
{
	struct stat st;

	ck_assert_int_eq(stat(w->audit, &st), 0);
	log_dev = st.st_dev;
	log_ino = st.st_ino;
	atomic_store(&log_synced, -1);
	atomic_store(&watching, true);
}

/* Where the log's first allow record for function ends (its newline
 * included): the bytes that must be on disk. */
static long long
allow_record_end(const struct world *w, const char *function)
{
	char needle[128], *line = NULL;
	size_t cap = 0;
	long long at = 0, end = -1;
	ssize_t n;
	FILE *f = fopen(w->audit, "r");

	ck_assert_ptr_nonnull(f);
	snprintf(needle, sizeof needle, "\"function\":\"%s\"", function);
	while (end < 0 && (n = getline(&line, &cap, f)) > 0) {
		at += n;
		if (strstr(line, needle) != NULL && strstr(line, "\"decision\":\"allow\"") != NULL)
			end = at;
	}
	free(line);
	fclose(f);
	ck_assert_msg(end > 0, "no allow record for %s in %s", function, w->audit);
	return end;
}

static void
expect_durable(const struct world *w, const char *function)
{
	long long end = allow_record_end(w, function), synced = atomic_load(&log_synced);

	ck_assert_msg(synced >= end, "%s returned plaintext while its allow record (bytes up to %lld of "
	              "the log) was not on disk: fdatasync had covered %lld bytes", function, end, synced);
}

/* ---- the tests ---------------------------------------------------------------- */

struct t {
	struct world w;
	struct mock_function_list_3_0 *f;   /* p11gate's 3.0 table */
	const struct mock_p11_control *m;
	CK_SESSION_HANDLE s;
};

static void
t_start(struct t *t, const char *name)
{
	CK_INTERFACE_PTR iface = NULL;
	CK_RV (*get_interface)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS);

	printf("decrypt-parts: %s\n", name);
	fflush(stdout);
	t->s = world_mock_start(&t->w, "decrypt-parts", name, RULES);
	t->m = world_mock(&t->w);
	/* The 3.0 table, as a 3.0 application finds it. */
	get_interface = (CK_RV (*)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS))
		dlsym(t->w.dl, "C_GetInterface");
	ck_assert_ptr_nonnull(get_interface);
	ck_assert_rv(get_interface((CK_UTF8CHAR_PTR)"PKCS 11", NULL, &iface, 0), CKR_OK);
	t->f = iface->pFunctionList;
}

static void
t_end(struct t *t)
{
	atomic_store(&watching, false);
	world_audit_verify(&t->w);
	world_close(&t->w);
}

START_TEST(decrypt_update_plaintext_after_durable_allow)
{
	struct t t;
	CK_BYTE cipher[4] = { 0x3b, 0x3c, 0x3d, 0x3e }, plain[16];
	CK_ULONG len = sizeof plain;

	t_start(&t, "decrypt_update_plaintext_after_durable_allow");
	ck_assert_rv(t.f->base.C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	watch_log(&t.w);
	ck_assert_rv(t.f->base.C_DecryptUpdate(t.s, cipher, sizeof cipher, plain, &len), CKR_OK);
	expect_durable(&t.w, "C_DecryptUpdate");
	ck_assert_uint_eq(len, sizeof cipher);
	ck_assert_mem_eq(plain, "\x61\x66\x67\x64", 4);     /* every byte XOR 0x5a */

	/* The operation goes on and ends with one result record. */
	len = sizeof plain;
	ck_assert_rv(t.f->base.C_DecryptUpdate(t.s, cipher, 2, plain, &len), CKR_OK);
	ck_assert_uint_eq(len, 2);
	len = sizeof plain;
	ck_assert_rv(t.f->base.C_DecryptFinal(t.s, plain, &len), CKR_OK);
	ck_assert_uint_eq(len, 4);
	ck_assert_uint_eq(world_audit_count_since(&t.w, 0, "\"event\":\"result\"", NULL), 1);
	t_end(&t);
}
END_TEST

/* The first part's length query is judged like the part; the part that
 * then returns plaintext must find the allow record on disk too. */
START_TEST(decrypt_update_after_length_query_durable)
{
	struct t t;
	CK_BYTE cipher[4] = { 0x3b, 0x3c, 0x3d, 0x3e }, plain[16];
	CK_ULONG len = 0;

	t_start(&t, "decrypt_update_after_length_query_durable");
	ck_assert_rv(t.f->base.C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	watch_log(&t.w);
	ck_assert_rv(t.f->base.C_DecryptUpdate(t.s, cipher, sizeof cipher, NULL, &len), CKR_OK);
	ck_assert_uint_eq(len, sizeof cipher);
	len = sizeof plain;
	ck_assert_rv(t.f->base.C_DecryptUpdate(t.s, cipher, sizeof cipher, plain, &len), CKR_OK);
	expect_durable(&t.w, "C_DecryptUpdate");
	ck_assert_mem_eq(plain, "\x61\x66\x67\x64", 4);
	t_end(&t);
}
END_TEST

START_TEST(decrypt_message_next_plaintext_after_durable_allow)
{
	struct t t;
	CK_BYTE cipher[3] = { 0x3b, 0x3c, 0x3d }, plain[16];
	CK_ULONG len = sizeof plain;

	t_start(&t, "decrypt_message_next_plaintext_after_durable_allow");
	ck_assert_rv(t.f->C_MessageDecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->C_DecryptMessageBegin(t.s, NULL, 0, NULL, 0), CKR_OK);
	watch_log(&t.w);
	ck_assert_rv(t.f->C_DecryptMessageNext(t.s, NULL, 0, cipher, sizeof cipher, plain, &len, 0), CKR_OK);
	expect_durable(&t.w, "C_DecryptMessageNext");
	ck_assert_uint_eq(len, sizeof cipher);
	ck_assert_mem_eq(plain, "\x61\x66\x67", 3);
	len = sizeof plain;
	ck_assert_rv(t.f->C_DecryptMessageNext(t.s, NULL, 0, cipher, 1, plain, &len, CKF_END_OF_MESSAGE),
	             CKR_OK);
	ck_assert_rv(t.f->C_MessageDecryptFinal(t.s), CKR_OK);
	t_end(&t);
}
END_TEST

/* A too-small C_Decrypt's allow record names its data: a part of other
 * data may not follow, and never reaches the token. */
START_TEST(decrypt_part_after_too_small_decrypt_refused)
{
	struct t t;
	CK_BYTE cipher[4] = { 0x3b, 0x3c, 0x3d, 0x3e }, other[2] = { 0x11, 0x22 }, plain[16];
	CK_ULONG len = 1;
	size_t mark;

	t_start(&t, "decrypt_part_after_too_small_decrypt_refused");
	ck_assert_rv(t.f->base.C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->base.C_Decrypt(t.s, cipher, sizeof cipher, plain, &len), CKR_BUFFER_TOO_SMALL);
	mark = world_audit_lines(&t.w);
	len = sizeof plain;
	ck_assert_rv(t.f->base.C_DecryptUpdate(t.s, other, sizeof other, plain, &len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_DecryptUpdate", "decrypt");
	ck_assert_uint_eq(t.m->calls("C_DecryptUpdate"), 0);
	/* The retry the allow record names still decrypts. */
	len = sizeof plain;
	ck_assert_rv(t.f->base.C_Decrypt(t.s, cipher, sizeof cipher, plain, &len), CKR_OK);
	ck_assert_mem_eq(plain, "\x61\x66\x67\x64", 4);
	t_end(&t);
}
END_TEST

/* The same after a too-small C_DecryptFinal. */
START_TEST(decrypt_part_after_too_small_final_refused)
{
	struct t t;
	CK_BYTE other[2] = { 0x11, 0x22 }, plain[16];
	CK_ULONG len = 1;
	size_t mark;

	t_start(&t, "decrypt_part_after_too_small_final_refused");
	ck_assert_rv(t.f->base.C_DecryptInit(t.s, &pkcs_mech, MOCK_KEY_SIGN), CKR_OK);
	ck_assert_rv(t.f->base.C_DecryptFinal(t.s, plain, &len), CKR_BUFFER_TOO_SMALL);
	mark = world_audit_lines(&t.w);
	len = sizeof plain;
	ck_assert_rv(t.f->base.C_DecryptUpdate(t.s, other, sizeof other, plain, &len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_DecryptUpdate", "decrypt");
	ck_assert_uint_eq(t.m->calls("C_DecryptUpdate"), 0);
	t_end(&t);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("decrypt-parts");
	TCase *tc = tcase_create("parts");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, decrypt_update_plaintext_after_durable_allow);
	tcase_add_test(tc, decrypt_update_after_length_query_durable);
	tcase_add_test(tc, decrypt_message_next_plaintext_after_durable_allow);
	tcase_add_test(tc, decrypt_part_after_too_small_decrypt_refused);
	tcase_add_test(tc, decrypt_part_after_too_small_final_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return world_run_suite(suite());
}
