/* SPDX-License-Identifier: Apache-2.0
 *
 * The audit cases that need a private mount namespace (root, or
 * CAP_SYS_ADMIN; skipped with exit 77 otherwise): a real full disk (a
 * 64 KiB tmpfs), where an append that does not fit returns ENOSPC and
 * leaves the file exactly as it was and the chain goes on once space is
 * freed; and syslog, received on a /dev/log socket of our own.
 */
#include "p11gate/audit.h"
#include "audit_chain.h"
#include "audit_test_util.h"
#include "audit_verify.h"

#include <check.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

static char *dir;

START_TEST(disk_full_leaves_no_partial_record)
{
	static char reason[3000];
	char *log_path = t_path(dir, "audit.jsonl"), *filler = t_path(dir, "filler");
	struct pg_audit_record r;
	size_t before_len, after_len;
	char err[256], *before, *after;
	struct pg_chain chain;
	uint64_t seq, last = 0;
	pg_audit *a;
	int rc = 0;

	/* Most of the space goes to another file, so the log hits the end
	 * in the middle of a multi-page record. */
	char *block = calloc(1, 40 * 1024);
	t_write(filler, block, 40 * 1024);
	free(block);
	memset(reason, 'x', sizeof reason - 1);
	a = pg_audit_open(log_path, true, false, err, sizeof err);
	ck_assert_msg(a != NULL, "%s", err);
	t_record(&r, "fill");
	r.reason = reason;
	for (int i = 0; i < 100; i++) {
		before = t_read(log_path, &before_len);
		rc = pg_audit_append(a, &r, &seq);
		if (rc != 0)
			break;
		last = seq;
		free(before);
	}
	ck_assert_int_eq(rc, ENOSPC);
	ck_assert_uint_gt(last, 0);
	after = t_read(log_path, &after_len);
	ck_assert_uint_eq(after_len, before_len);
	ck_assert(memcmp(before, after, before_len) == 0);
	free(before);
	free(after);
	ck_assert_int_eq(t_independent_chain(log_path), (long)last);

	/* Space again: the chain continues where it stopped. */
	ck_assert_int_eq(unlink(filler), 0);
	ck_assert_int_eq(pg_audit_append(a, &r, &seq), 0);
	ck_assert_uint_eq(seq, last + 1);
	ck_assert_int_eq(pg_audit_sync(a, seq), 0);
	pg_audit_close(a);
	pg_chain_init(&chain);
	ck_assert_int_eq(pg_audit_verify_path(log_path, &chain), 0);
	ck_assert_msg(chain.problem == PG_CHAIN_OK, "%s", chain.message);
	ck_assert_uint_eq(chain.records, last + 1);
	free(filler);
	free(log_path);
}
END_TEST

/* In a child with its own mount namespace, /dev is replaced by a tmpfs
 * holding only our log socket: the records must arrive there, as
 * authpriv.info, prefixed "p11gate: ". */
START_TEST(copies_records_to_syslog)
{
	char *log_path = t_path(dir, "audit-syslog.jsonl");
	int status;
	pid_t pid;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sockaddr_un addr = { .sun_family = AF_UNIX, .sun_path = "/dev/log" };
		struct pg_audit_record r;
		char err[256], msg[8192], want[64], *line;
		size_t len;
		uint64_t seq;
		pg_audit *a;
		ssize_t n;
		int sock;

		if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
		    mount("pg-audit-dev", "/dev", "tmpfs", 0, "size=64k,mode=0755") != 0)
			_exit(10);
		sock = socket(AF_UNIX, SOCK_DGRAM, 0);
		if (sock < 0 || bind(sock, (struct sockaddr *)&addr, sizeof addr) != 0)
			_exit(11);
		a = pg_audit_open(log_path, false, true, err, sizeof err);
		if (a == NULL)
			_exit(12);
		t_record(&r, "to-syslog");
		if (pg_audit_append(a, &r, &seq) != 0)
			_exit(13);
		pg_audit_close(a);
		n = recv(sock, msg, sizeof msg - 1, MSG_DONTWAIT);
		if (n <= 0)
			_exit(14);
		msg[n] = '\0';
		/* <86> is LOG_AUTHPRIV | LOG_INFO; no openlog, so no ident
		 * set by us; the message is the whole line. */
		snprintf(want, sizeof want, "<%d>", LOG_AUTHPRIV | LOG_INFO);
		if (strncmp(msg, want, strlen(want)) != 0)
			_exit(15);
		line = t_read(log_path, &len);
		line[len - 1] = '\0';
		if (strstr(msg, "p11gate: ") == NULL || strcmp(strstr(msg, "p11gate: ") + 9, line) != 0)
			_exit(16);
		free(line);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_msg(WEXITSTATUS(status) == 0, "syslog child failed at step %d", WEXITSTATUS(status));
	free(log_path);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("audit-root");
	TCase *tc = tcase_create("root");
	SRunner *sr;
	int failed;

	dir = t_tempdir();
	/* A private mount namespace: the tmpfs disappears with this process
	 * and nobody else sees it. */
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("pg-audit-test", dir, "tmpfs", 0, "size=64k,mode=0700") != 0) {
		fprintf(stderr, "SKIP: cannot make a private mount namespace here (%s): the full-disk "
		        "case is covered by RLIMIT_FSIZE in audit-writer only, syslog not at all\n",
		        strerror(errno));
		t_rmdir(dir);
		return 77;
	}
	tcase_add_test(tc, disk_full_leaves_no_partial_record);
	tcase_add_test(tc, copies_records_to_syslog);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	umount2(dir, MNT_DETACH);
	t_rmdir(dir);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
