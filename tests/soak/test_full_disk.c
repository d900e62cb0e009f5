/* SPDX-License-Identifier: Apache-2.0
 *
 * A full disk and a file size limit, seen by one loaded module that lives on
 * (tests/enforce/audit-failures.sh covers fresh pkcs11-tool runs): the
 * signature is refused with CKR_FUNCTION_FAILED, the log is left
 * byte-identical (a short write is cut back off) or, when the disk fills
 * between the allow record and the result record, holds exactly that one
 * whole allow record and the signature is withheld; the chain verifies;
 * and once there is room again the same session signs and the next
 * records chain on.  Both limits are hit at the two points that matter:
 * before the allow record and between it and the result record.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "world.h"

static const char ALLOW_RSA[] =
	"  - name: everyone-signs\n"
	"    effect: allow\n"
	"    keys: [release-rsa]\n";

static const CK_BYTE RSA_ID = 0x01;

/* tmpfs gives out whole pages: a write that needs one more fails. */
#define PAGE 4096

enum point { BEFORE_ALLOW, BETWEEN_ALLOW_AND_RESULT };

struct t {
	struct world w;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE rsa;
	char fs[PATH_MAX];           /* the small file system, when mounted */
	unsigned n;                  /* signatures so far, for unique data */
	size_t allow_len, result_len; /* the last allow and result lines, newline included */
};

struct bytes {
	char *data;
	size_t len;
};

static struct bytes
read_file(const char *path)
{
	struct bytes b = { NULL, 0 };
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	ck_assert_msg(fd >= 0 && fstat(fd, &st) == 0, "cannot read %s: %s", path, strerror(errno));
	b.len = (size_t)st.st_size;
	b.data = malloc(b.len + 1);
	ck_assert_ptr_nonnull(b.data);
	ck_assert_msg(read(fd, b.data, b.len) == (ssize_t)b.len, "short read of %s", path);
	b.data[b.len] = '\0';
	close(fd);
	return b;
}

static off_t
file_size(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	return st.st_size;
}

/* The lengths of the last allow and result lines: the next ones are the
 * same length give or take a digit of seq. */
static void
measure_records(struct t *t)
{
	struct bytes log = read_file(t->w.audit);
	char *save = NULL;

	for (char *line = strtok_r(log.data, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, "\"decision\":\"allow\"") != NULL)
			t->allow_len = strlen(line) + 1;
		else if (strstr(line, "\"event\":\"result\"") != NULL)
			t->result_len = strlen(line) + 1;
	}
	free(log.data);
	ck_assert_msg(t->allow_len > 0 && t->result_len > 0, "no allow and result records to measure");
}

/* One C_SignInit + C_Sign on the test's session; returns C_Sign's value.
 * The signature buffer is returned in sig (pre-filled with 0xa5). */
static CK_RV
sign(struct t *t, CK_BYTE sig[512], CK_ULONG *sig_len, char *data, size_t data_size)
{
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };

	snprintf(data, data_size, "full-disk signature %u", t->n++);
	memset(sig, 0xa5, 512);
	*sig_len = 512;
	ck_assert_rv(t->w.f->C_SignInit(t->s, &mech, t->rsa), CKR_OK);
	return t->w.f->C_Sign(t->s, (CK_BYTE_PTR)data, strlen(data), sig, sig_len);
}

static void
sign_ok(struct t *t)
{
	CK_BYTE sig[512];
	CK_ULONG sig_len;
	char data[64];
	size_t mark = world_audit_lines(&t->w);

	ck_assert_rv(sign(t, sig, &sig_len, data, sizeof data), CKR_OK);
	ck_assert_msg(world_verify(&t->w, "rsa", data, strlen(data), sig, sig_len), "the signature does not verify");
	world_expect_one_allow(&t->w, mark, "C_Sign");
}

static void
t_start(struct t *t, const char *name, bool small_fs)
{
	printf("full-disk: %s\n", name);
	fflush(stdout);
	memset(t, 0, sizeof *t);
	world_new(&t->w, "full-disk", name);
	if (small_fs) {
		/* A private mount namespace: the mount goes away with this
		 * test's process, even when an assertion ends it early. */
		ck_assert_msg(unshare(CLONE_NEWNS) == 0 &&
		              mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0,
		              "cannot make a private mount namespace (%s): the full-disk tests need root",
		              strerror(errno));
		ck_assert_int_lt(snprintf(t->fs, sizeof t->fs, "%.*s/fs", PATH_MAX - 4, t->w.dir),
		                 (int)sizeof t->fs);
		ck_assert_msg(mkdir(t->fs, 0755) == 0, "mkdir %s: %s", t->fs, strerror(errno));
		ck_assert_msg(mount("p11gate-soak", t->fs, "tmpfs", 0, "size=128k,mode=0755") == 0,
		              "cannot mount a 128 KiB tmpfs on %s (%s): the full-disk tests need root "
		              "and a system that lets it mount", t->fs, strerror(errno));
		ck_assert_int_lt(snprintf(t->w.audit, sizeof t->w.audit, "%s/audit.jsonl", t->fs),
		                 (int)sizeof t->w.audit);
	}
	world_policy(&t->w, ALLOW_RSA);
	world_open(&t->w);
	t->s = world_session(&t->w);
	t->rsa = world_find(&t->w, t->s, CKO_PRIVATE_KEY, RSA_ID);
	/* A p11gate that wrote past RLIMIT_FSIZE would be killed by this. */
	signal(SIGXFSZ, SIG_DFL);
	sign_ok(t);
	sign_ok(t);
	measure_records(t);
}

static void
t_end(struct t *t)
{
	world_close(&t->w);
	if (t->fs[0] != '\0')
		ck_assert_msg(umount(t->fs) == 0, "umount %s: %s", t->fs, strerror(errno));
}

/* Signs until the room left in the log's last page fits the point: less
 * than an allow record, or an allow record but not the result after it. */
static void
sign_until_slack_fits(struct t *t, enum point point)
{
	enum { MARGIN = 24 };      /* seq and time may grow a digit or two */

	for (int i = 0; i < 40; i++) {
		off_t size = file_size(t->w.audit);
		size_t slack = (size_t)((size + PAGE - 1) / PAGE * PAGE - size);

		measure_records(t);
		if ((point == BEFORE_ALLOW && slack + MARGIN < t->allow_len) ||
		    (point == BETWEEN_ALLOW_AND_RESULT && slack >= t->allow_len + MARGIN &&
		     slack + MARGIN < t->allow_len + t->result_len)) {
			printf("  the log ends %zu bytes before a page boundary; allow records are %zu bytes, "
			       "results %zu\n", slack, t->allow_len, t->result_len);
			fflush(stdout);
			return;
		}
		sign_ok(t);
	}
	ck_abort_msg("the log never ended where the full disk would hit the right record");
}

/* Takes every free block of the small file system. */
static void
fill_fs(const struct t *t)
{
	char path[PATH_MAX + 16], block[PAGE];
	struct statvfs vfs;
	int fd;

	snprintf(path, sizeof path, "%s/filler", t->fs);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	memset(block, 'f', sizeof block);
	while (write(fd, block, sizeof block) == (ssize_t)sizeof block)
		;
	close(fd);
	ck_assert_int_eq(statvfs(t->fs, &vfs), 0);
	ck_assert_msg(vfs.f_bavail == 0, "the file system still has %lu free blocks", (unsigned long)vfs.f_bavail);
}

static void
free_fs(const struct t *t)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof path, "%s/filler", t->fs);
	ck_assert_msg(unlink(path) == 0, "unlink %s: %s", path, strerror(errno));
}

/* The limit's soft value only, so it can be raised again. */
static void
set_fsize(rlim_t limit)
{
	struct rlimit rl;

	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
	rl.rlim_cur = limit;
	ck_assert_msg(setrlimit(RLIMIT_FSIZE, &rl) == 0, "setrlimit: %s", strerror(errno));
}

/* The refused signature, then the checks, then room again and the chain
 * going on in the same session. */
static void
refused_then_recovered(struct t *t, enum point point, const char *errno_text,
                       void (*make_room)(const struct t *t))
{
	struct bytes before, after;
	CK_BYTE sig[512];
	CK_ULONG sig_len;
	char data[64], expect[PATH_MAX + 128];
	size_t mark;
	CK_RV rv;

	before = read_file(t->w.audit);
	mark = world_audit_lines(&t->w);
	rv = sign(t, sig, &sig_len, data, sizeof data);
	ck_assert_msg(rv == CKR_FUNCTION_FAILED, "C_Sign with no room for the %s record returned %s, "
	              "expected CKR_FUNCTION_FAILED", point == BEFORE_ALLOW ? "allow" : "result",
	              world_rv_name(rv));
	/* Nothing of a signature reached the caller: the buffer is either
	 * untouched (the token was never asked) or wiped.  One assertion, not
	 * one per byte: see pad_log. */
	for (size_t i = 0; i < sizeof sig; i++) {
		if (sig[i] != 0xa5 && sig[i] != 0)
			ck_abort_msg("byte %zu of the refused call's buffer was left as 0x%02x: a signature "
			             "leaked", i, sig[i]);
	}
	snprintf(expect, sizeof expect, "p11gate: audit log %s cannot be written (%s)", t->w.audit, errno_text);
	ck_assert_msg(world_stderr_has(&t->w, expect), "stderr lacks '%s'", expect);

	after = read_file(t->w.audit);
	if (point == BEFORE_ALLOW) {
		ck_assert_msg(after.len == before.len && memcmp(after.data, before.data, before.len) == 0,
		              "the log changed (%zu bytes before, %zu after)", before.len, after.len);
	} else {
		/* The allow record was written (the token signed); the result
		 * was not, so the signature was withheld.  The allow record is
		 * whole, and nothing of the result remains. */
		ck_assert_msg(after.len > before.len && memcmp(after.data, before.data, before.len) == 0,
		              "the log was not simply appended to");
		ck_assert_msg(memchr(after.data + before.len, '\n', after.len - before.len) ==
		              after.data + after.len - 1, "more than one line was added, or a partial one");
		ck_assert_uint_eq(world_audit_count_since(&t->w, mark, "\"decision\":\"allow\"",
		                                          "\"function\":\"C_Sign\"", NULL), 1);
		ck_assert_uint_eq(world_audit_count_since(&t->w, mark, "\"event\":\"result\"", NULL), 0);
	}
	world_audit_verify(&t->w);
	free(before.data);
	free(after.data);

	/* Still no room: refused again, nothing torn. */
	if (point == BEFORE_ALLOW) {
		before = read_file(t->w.audit);
		ck_assert_rv(sign(t, sig, &sig_len, data, sizeof data), CKR_FUNCTION_FAILED);
		after = read_file(t->w.audit);
		ck_assert_msg(after.len == before.len && memcmp(after.data, before.data, before.len) == 0,
		              "the second refusal changed the log");
		free(before.data);
		free(after.data);
	}

	make_room(t);
	sign_ok(t);
	sign_ok(t);
	world_audit_verify(&t->w);
}

/* RLIMIT_FSIZE limits every file this process writes, and Check's
 * forked tests write a message per passing assertion to a temporary
 * file: with the limit near the log's size Check itself would die of
 * SIGXFSZ.  So the log is made much larger than Check's file first, by
 * signing without assertions in the loop. */
static void
pad_log(struct t *t, off_t size)
{
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE data[] = "padding", sig[512];
	CK_ULONG sig_len;
	CK_RV rv = CKR_OK;

	while (rv == CKR_OK && file_size(t->w.audit) < size) {
		sig_len = sizeof sig;
		rv = t->w.f->C_SignInit(t->s, &mech, t->rsa);
		if (rv == CKR_OK)
			rv = t->w.f->C_Sign(t->s, data, sizeof data, sig, &sig_len);
	}
	ck_assert_msg(rv == CKR_OK, "signing to pad the log returned %s", world_rv_name(rv));
	world_audit_verify(&t->w);
}

static void
lift_fsize(const struct t *t)
{
	(void)t;
	set_fsize(RLIM_INFINITY);
}

START_TEST(file_size_limit_before_allow)
{
	struct t t;

	t_start(&t, "file_size_limit_before_allow", false);
	pad_log(&t, 512 * 1024);
	/* Exactly the current size: any record would pass the limit. */
	set_fsize((rlim_t)file_size(t.w.audit));
	refused_then_recovered(&t, BEFORE_ALLOW, "File too large", lift_fsize);
	t_end(&t);
}
END_TEST

START_TEST(file_size_limit_before_result)
{
	struct t t;

	t_start(&t, "file_size_limit_before_result", false);
	pad_log(&t, 512 * 1024);
	measure_records(&t);
	/* Room for the allow record, not for the result after it. */
	set_fsize((rlim_t)file_size(t.w.audit) + t.allow_len + t.result_len / 2);
	refused_then_recovered(&t, BETWEEN_ALLOW_AND_RESULT, "File too large", lift_fsize);
	t_end(&t);
}
END_TEST

START_TEST(full_disk_before_allow)
{
	struct t t;

	t_start(&t, "full_disk_before_allow", true);
	sign_until_slack_fits(&t, BEFORE_ALLOW);
	fill_fs(&t);
	refused_then_recovered(&t, BEFORE_ALLOW, "No space left on device", free_fs);
	t_end(&t);
}
END_TEST

START_TEST(full_disk_before_result)
{
	struct t t;

	t_start(&t, "full_disk_before_result", true);
	sign_until_slack_fits(&t, BETWEEN_ALLOW_AND_RESULT);
	fill_fs(&t);
	refused_then_recovered(&t, BETWEEN_ALLOW_AND_RESULT, "No space left on device", free_fs);
	t_end(&t);
}
END_TEST

static Suite *
full_disk_suite(void)
{
	Suite *s = suite_create("full-disk");
	TCase *tc = tcase_create("full-disk");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, file_size_limit_before_allow);
	tcase_add_test(tc, file_size_limit_before_result);
	tcase_add_test(tc, full_disk_before_allow);
	tcase_add_test(tc, full_disk_before_result);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(full_disk_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
