/* SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests of caller identity against the real kernel: this process, and
 * peers on real unix sockets that are forked children running as another
 * user (the tests run as root to make them).
 */
#include "internal.h"
#include "p11gate/common.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY 65534
#define OTHER_UID 65533
static const gid_t child_groups[] = { 4242, 4243 };

/* ---- helpers ---- */

static char *
self_exe(void)
{
	char *exe = pg_proc_readlink("/proc/self/exe");

	ck_assert_ptr_nonnull(exe);
	return exe;
}

static void
require_root(void)
{
	ck_assert_msg(geteuid() == 0, "the peer tests need root to run children as another user");
}

/* In a child: become NOBODY with child_groups, or die. */
static void
drop_to_nobody(void)
{
	if (setgroups(2, child_groups) != 0 || setresgid(NOBODY, NOBODY, NOBODY) != 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) != 0)
		_exit(90);
}

/* In a child: wait until the parent writes a byte or closes. */
static void
wait_for_release(int fd)
{
	char c;

	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
}

static void
release_and_reap(int fd, pid_t child)
{
	int status = 0;

	ck_assert_int_eq(write(fd, "x", 1), 1);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

static char sockdir[64];
static char sockpath[128];

/* A listening unix socket anyone may connect to, like p11-kit server's. */
static int
listen_socket(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	strcpy(sockdir, "/tmp/pg-id-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(sockdir));
	ck_assert_int_eq(chmod(sockdir, 0755), 0);
	snprintf(sockpath, sizeof sockpath, "%s/sock", sockdir);
	strcpy(sun.sun_path, sockpath);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_eq(chmod(sockpath, 0777), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	return fd;
}

static void
remove_socket(int fd)
{
	close(fd);
	unlink(sockpath);
	rmdir(sockdir);
}

/* In a child: connect to sockpath; returns the socket or dies. */
static int
connect_socket(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sun.sun_path, sockpath);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0)
		_exit(91);
	return fd;
}

/* A child that becomes NOBODY, connects, and waits to be released. */
static pid_t
spawn_nobody_client(int listen_fd)
{
	pid_t child = fork();

	ck_assert_int_ge(child, 0);
	if (child == 0) {
		int fd;

		close(listen_fd);
		drop_to_nobody();
		fd = connect_socket();
		wait_for_release(fd);
		_exit(0);
	}
	return child;
}

static void
assert_nobody_peer(const struct pg_caller *caller, pid_t child)
{
	struct passwd *pw = getpwuid(NOBODY);
	char *exe = self_exe();

	ck_assert_ptr_nonnull(caller);
	ck_assert_int_eq(caller->source, PG_ID_PEER);
	ck_assert_int_eq(caller->uid_trust, PG_ID_ATTESTED);
	ck_assert_uint_eq(caller->uid, NOBODY);
	if (pw != NULL)
		ck_assert_str_eq(caller->user, pw->pw_name);
	ck_assert_int_eq(caller->gid_trust, PG_ID_ATTESTED);
	ck_assert_uint_eq(caller->gid, NOBODY);
	ck_assert_int_eq(caller->pid_trust, PG_ID_ATTESTED);
	ck_assert_int_eq(caller->pid, child);
	/* Groups: the child's supplementary ones plus its primary. */
	ck_assert_int_eq(caller->groups_trust, PG_ID_ATTESTED);
	ck_assert_uint_eq(caller->n_groups, 3);
	ck_assert(pg_caller_in_group(caller, 4242));
	ck_assert(pg_caller_in_group(caller, 4243));
	ck_assert(pg_caller_in_group(caller, NOBODY));
	ck_assert(!pg_caller_in_group(caller, 0));
	/* Forked without exec: the same program as this test, but only
	 * reported: the socket does not bind the program to the connection. */
	ck_assert_int_eq(caller->exe_trust, PG_ID_REPORTED);
	ck_assert_str_eq(caller->exe, exe);
	ck_assert_int_eq(caller->env_trust, PG_ID_UNAVAILABLE);
	ck_assert_ptr_null(caller->env);
	ck_assert_ptr_null(pg_caller_getenv(caller, "PATH"));
	free(exe);
}

/* ---- this process ---- */

START_TEST(test_process_identity)
{
	struct pg_caller *caller;
	gid_t groups[65536];
	int n = getgroups(65536, groups);
	char *exe = self_exe();
	struct passwd *pw = getpwuid(geteuid());

	ck_assert_int_ge(n, 0);
	ck_assert_int_eq(setenv("PG_ID_TEST", "before", 1), 0);
	caller = pg_caller_process_new();
	ck_assert_ptr_nonnull(caller);
	ck_assert_int_eq(caller->source, PG_ID_PROCESS);

	/* The tests run without set-id bits, so real == effective here. */
	ck_assert_int_eq(caller->uid_trust, PG_ID_ASSERTED);
	ck_assert_uint_eq(caller->uid, getuid());
	ck_assert_uint_eq(caller->uid, geteuid());
	ck_assert_ptr_nonnull(pw);
	ck_assert_str_eq(caller->user, pw->pw_name);
	ck_assert_int_eq(caller->gid_trust, PG_ID_ASSERTED);
	ck_assert_uint_eq(caller->gid, getgid());

	ck_assert_int_eq(caller->groups_trust, PG_ID_ASSERTED);
	for (int i = 0; i < n; i++)
		ck_assert(pg_caller_in_group(caller, groups[i]));
	ck_assert(pg_caller_in_group(caller, getgid()));
	for (size_t i = 0; i < caller->n_groups; i++) {
		bool known = caller->groups[i] == getgid();

		for (int j = 0; j < n && !known; j++)
			known = groups[j] == caller->groups[i];
		ck_assert_msg(known, "unexpected group %u", (unsigned)caller->groups[i]);
	}

	ck_assert_int_eq(caller->pid_trust, PG_ID_ASSERTED);
	ck_assert_int_eq(caller->pid, getpid());
	ck_assert_int_eq(caller->exe_trust, PG_ID_ASSERTED);
	ck_assert_str_eq(caller->exe, exe);

	/* A copy: later changes to the environment do not show. */
	ck_assert_int_eq(caller->env_trust, PG_ID_ASSERTED);
	ck_assert_int_eq(setenv("PG_ID_TEST", "after", 1), 0);
	ck_assert_str_eq(pg_caller_getenv(caller, "PG_ID_TEST"), "before");
	ck_assert_str_eq(pg_caller_getenv(caller, "PATH"), getenv("PATH"));
	ck_assert_ptr_null(pg_caller_getenv(caller, "PG_ID_TEST_NOT_SET"));
	pg_caller_free(caller);
	free(exe);
}
END_TEST

START_TEST(test_process_unit)
{
	char *text = pg_proc_read("/proc/self/cgroup");
	char *want;
	struct pg_caller *caller = pg_caller_process_new();

	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(caller);
	/* Whatever this machine runs the tests in ("0::/" in a container:
	 * unavailable), the caller says the same as the parser. */
	want = pg_cgroup_unit(text);
	if (want == NULL) {
		ck_assert_int_eq(caller->unit_trust, PG_ID_UNAVAILABLE);
		ck_assert_ptr_null(caller->unit);
	} else {
		ck_assert_int_eq(caller->unit_trust, PG_ID_ASSERTED);
		ck_assert_str_eq(caller->unit, want);
	}
	free(want);
	free(text);
	pg_caller_free(caller);
}
END_TEST

START_TEST(test_process_exe_sha256)
{
	struct pg_caller *caller = pg_caller_process_new();
	unsigned char want[PG_SHA256_LEN], sh[PG_SHA256_LEN];
	const unsigned char *got;

	ck_assert_ptr_nonnull(caller);
	ck_assert(pg_sha256_file("/proc/self/exe", want));
	got = pg_caller_exe_sha256(caller);
	ck_assert_ptr_nonnull(got);
	ck_assert_mem_eq(got, want, PG_SHA256_LEN);
	ck_assert(caller->exe_hashed && caller->exe_hash_ok);
	/* Cached: the same bytes, without hashing again. */
	ck_assert_ptr_eq(pg_caller_exe_sha256(caller), got);

	/* A program set by hand (as `p11gate explain --program` does) is
	 * hashed at its path. */
	ck_assert(pg_sha256_file("/bin/sh", sh));
	free(caller->exe);
	caller->exe = strdup("/bin/sh");
	caller->exe_hashed = false;
	got = pg_caller_exe_sha256(caller);
	ck_assert_ptr_nonnull(got);
	ck_assert_mem_eq(got, sh, PG_SHA256_LEN);

	/* Unavailable stays unavailable, and is cached as such. */
	caller->exe_trust = PG_ID_UNAVAILABLE;
	caller->exe_hashed = false;
	ck_assert_ptr_null(pg_caller_exe_sha256(caller));
	ck_assert(caller->exe_hashed && !caller->exe_hash_ok);
	caller->exe_trust = PG_ID_ASSERTED;
	ck_assert_ptr_null(pg_caller_exe_sha256(caller));
	/* A path that cannot be read. */
	free(caller->exe);
	caller->exe = strdup("/nonexistent/program");
	caller->exe_hashed = false;
	ck_assert_ptr_null(pg_caller_exe_sha256(caller));
	pg_caller_free(caller);
	ck_assert_ptr_null(pg_caller_exe_sha256(NULL));
}
END_TEST

/* ---- the questions, on a caller built by hand ---- */

START_TEST(test_in_group_trust)
{
	struct pg_caller *caller = pg_caller_alloc(PG_ID_PEER);
	gid_t *groups = malloc(2 * sizeof *groups);

	ck_assert_ptr_nonnull(caller);
	ck_assert_ptr_nonnull(groups);
	groups[0] = 10;
	groups[1] = 20;
	caller->gid = 5;
	caller->groups = groups;
	caller->n_groups = 2;
	/* Nothing counts while unavailable (fail closed). */
	ck_assert(!pg_caller_in_group(caller, 5));
	ck_assert(!pg_caller_in_group(caller, 10));
	caller->gid_trust = PG_ID_ATTESTED;
	ck_assert(pg_caller_in_group(caller, 5));
	ck_assert(!pg_caller_in_group(caller, 10));
	caller->groups_trust = PG_ID_ASSERTED;
	ck_assert(pg_caller_in_group(caller, 10));
	ck_assert(pg_caller_in_group(caller, 20));
	ck_assert(!pg_caller_in_group(caller, 30));
	ck_assert(!pg_caller_in_group(NULL, 5));
	pg_caller_free(caller);
	pg_caller_free(NULL);
}
END_TEST

START_TEST(test_getenv)
{
	struct pg_caller *caller = pg_caller_alloc(PG_ID_PROCESS);
	char **env = calloc(5, sizeof *env);

	ck_assert_ptr_nonnull(caller);
	ck_assert_ptr_nonnull(env);
	env[0] = strdup("AB=2");
	env[1] = strdup("A=1");
	env[2] = strdup("A=shadowed");
	env[3] = strdup("EMPTY=");
	caller->env = env;
	ck_assert_ptr_null(pg_caller_getenv(caller, "A"));      /* unavailable */
	caller->env_trust = PG_ID_ASSERTED;
	ck_assert_str_eq(pg_caller_getenv(caller, "A"), "1");
	ck_assert_str_eq(pg_caller_getenv(caller, "AB"), "2");
	ck_assert_str_eq(pg_caller_getenv(caller, "EMPTY"), "");
	ck_assert_ptr_null(pg_caller_getenv(caller, "ABC"));
	ck_assert_ptr_null(pg_caller_getenv(caller, "A=1"));
	ck_assert_ptr_null(pg_caller_getenv(caller, ""));
	ck_assert_ptr_null(pg_caller_getenv(caller, NULL));
	ck_assert_ptr_null(pg_caller_getenv(NULL, "A"));
	pg_caller_free(caller);
}
END_TEST

/* ---- peers ---- */

static void
check_accepted_peer(bool use_pidfd)
{
	int lfd = listen_socket(), fd;
	pid_t child = spawn_nobody_client(lfd);
	struct pg_caller *caller;
	unsigned char want[PG_SHA256_LEN];
	const unsigned char *got;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	caller = pg_caller_peer_new_with(fd, use_pidfd);
	assert_nobody_peer(caller, child);
	/* The cgroup is this test's own (a fork inherits it). */
	{
		struct pg_caller *self = pg_caller_process_new();

		ck_assert_ptr_nonnull(self);
		ck_assert_int_eq(caller->unit_trust,
				 self->unit_trust == PG_ID_UNAVAILABLE ? PG_ID_UNAVAILABLE
								       : PG_ID_ATTESTED);
		if (self->unit != NULL)
			ck_assert_str_eq(caller->unit, self->unit);
		pg_caller_free(self);
	}
	/* The hash of the file the peer runs: this same program. */
	ck_assert(pg_sha256_file("/proc/self/exe", want));
	got = pg_caller_exe_sha256(caller);
	ck_assert_ptr_nonnull(got);
	ck_assert_mem_eq(got, want, PG_SHA256_LEN);
	release_and_reap(fd, child);
	pg_caller_free(caller);
	close(fd);
	remove_socket(lfd);
}

/* Groups are those the peer had at connect(), which the kernel keeps with
 * the socket, not those its process has when p11gate asks. */
START_TEST(test_peer_groups_bound_at_connect)
{
	static const gid_t later[] = { 4244 };
	struct pg_caller *caller;
	pid_t child;
	int lfd, fd;

	require_root();
	lfd = listen_socket();
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		close(lfd);
		/* Root, so that it may change its groups after connect(). */
		if (setgroups(2, child_groups) != 0)
			_exit(90);
		fd = connect_socket();
		if (setgroups(1, later) != 0)
			_exit(92);
		wait_for_release(fd);
		_exit(0);
	}
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	/* The child changes its groups right after connect(): wait for it. */
	for (int i = 0; i < 200; i++) {
		char path[64], *status;
		bool changed;

		snprintf(path, sizeof path, "/proc/%d/status", (int)child);
		status = pg_proc_read(path);
		changed = status != NULL && strstr(status, "Groups:\t4244 \n") != NULL;
		free(status);
		if (changed)
			break;
		usleep(10000);
	}
	caller = pg_caller_peer_new(fd);
	ck_assert_ptr_nonnull(caller);
	ck_assert_int_eq(caller->groups_trust, PG_ID_ATTESTED);
	ck_assert(pg_caller_in_group(caller, 4242));
	ck_assert(pg_caller_in_group(caller, 4243));
	ck_assert(!pg_caller_in_group(caller, 4244));
	release_and_reap(fd, child);
	pg_caller_free(caller);
	close(fd);
	remove_socket(lfd);
}
END_TEST

START_TEST(test_peer_accepted)
{
	require_root();
	check_accepted_peer(true);
}
END_TEST

START_TEST(test_peer_accepted_without_pidfd)
{
	require_root();
	check_accepted_peer(false);
}
END_TEST

/* The kernel records a socketpair's credentials when it is created: a
 * child that drops its privileges, then makes the pair and hands one end
 * over (SCM_RIGHTS), is seen as NOBODY. */
START_TEST(test_peer_socketpair)
{
	int ctl[2], fd = -1;
	pid_t child;
	struct pg_caller *caller;
	char data;
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = &data, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = control.buf, .msg_controllen = sizeof control.buf };

	require_root();
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		int pair[2];
		struct cmsghdr *cmsg;

		close(ctl[0]);
		drop_to_nobody();
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
			_exit(92);
		memset(&control, 0, sizeof control);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &pair[1], sizeof(int));
		data = 'p';
		if (sendmsg(ctl[1], &msg, 0) != 1)
			_exit(93);
		close(pair[1]);
		wait_for_release(pair[0]);
		_exit(0);
	}
	close(ctl[1]);
	ck_assert_int_eq(recvmsg(ctl[0], &msg, 0), 1);
	ck_assert_ptr_nonnull(CMSG_FIRSTHDR(&msg));
	ck_assert_int_eq(CMSG_FIRSTHDR(&msg)->cmsg_type, SCM_RIGHTS);
	memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(int));
	ck_assert_int_ge(fd, 0);

	caller = pg_caller_peer_new(fd);
	assert_nobody_peer(caller, child);
	release_and_reap(fd, child);
	pg_caller_free(caller);
	close(fd);
	close(ctl[0]);
}
END_TEST

/* ... and a pair made before fork() names its creator, whoever holds the
 * other end: documented kernel behaviour, shown here so nobody relies on
 * the opposite. */
START_TEST(test_peer_socketpair_names_creator)
{
	int pair[2];
	pid_t child;
	struct pg_caller *caller;

	require_root();
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		close(pair[0]);
		drop_to_nobody();
		wait_for_release(pair[1]);
		_exit(0);
	}
	close(pair[1]);
	caller = pg_caller_peer_new(pair[0]);
	ck_assert_ptr_nonnull(caller);
	ck_assert_uint_eq(caller->uid, geteuid());
	ck_assert_int_eq(caller->pid, getpid());
	release_and_reap(pair[0], child);
	pg_caller_free(caller);
	close(pair[0]);
}
END_TEST

/* A peer that exited (and was reaped) before we looked: the kernel still
 * vouches for its credentials, but /proc/<pid>/ no longer describes it. */
static void
check_gone_peer(bool use_pidfd)
{
	int lfd = listen_socket(), fd, status;
	pid_t child = fork();
	struct pg_caller *caller;

	ck_assert_int_ge(child, 0);
	if (child == 0) {
		close(lfd);
		drop_to_nobody();
		connect_socket();
		_exit(0);
	}
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	caller = pg_caller_peer_new_with(fd, use_pidfd);
	ck_assert_ptr_nonnull(caller);
	ck_assert_int_eq(caller->uid_trust, PG_ID_ATTESTED);
	ck_assert_uint_eq(caller->uid, NOBODY);
	ck_assert_int_eq(caller->gid_trust, PG_ID_ATTESTED);
	ck_assert_int_eq(caller->pid, child);
	ck_assert_int_eq(caller->exe_trust, PG_ID_UNAVAILABLE);
	ck_assert_ptr_null(caller->exe);
	ck_assert_int_eq(caller->unit_trust, PG_ID_UNAVAILABLE);
	ck_assert_ptr_null(pg_caller_exe_sha256(caller));
	/* The groups are still known: the kernel keeps them with the socket. */
	ck_assert_int_eq(caller->groups_trust, PG_ID_ATTESTED);
	ck_assert(pg_caller_in_group(caller, NOBODY));
	ck_assert(pg_caller_in_group(caller, 4242));
	pg_caller_free(caller);
	close(fd);
	remove_socket(lfd);
}

START_TEST(test_peer_gone)
{
	require_root();
	check_gone_peer(true);
}
END_TEST

START_TEST(test_peer_gone_without_pidfd)
{
	require_root();
	check_gone_peer(false);
}
END_TEST

/* Hashing later, after the peer went away: no hash rather than another
 * process's. */
START_TEST(test_peer_exe_hash_after_exit)
{
	int lfd, fd;
	pid_t child;
	struct pg_caller *caller;

	require_root();
	lfd = listen_socket();
	child = spawn_nobody_client(lfd);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	caller = pg_caller_peer_new(fd);
	ck_assert_ptr_nonnull(caller);
	ck_assert_int_eq(caller->exe_trust, PG_ID_REPORTED);
	release_and_reap(fd, child);
	ck_assert_ptr_null(pg_caller_exe_sha256(caller));
	pg_caller_free(caller);
	close(fd);
	remove_socket(lfd);
}
END_TEST

/* The reader is not root (p11-kit server usually is not): another user's
 * exe link is refused (EACCES), the rest is still read. */
START_TEST(test_peer_unprivileged_reader)
{
	int lfd, status;
	pid_t reader, client;

	require_root();
	lfd = listen_socket();
	reader = fork();
	ck_assert_int_ge(reader, 0);
	if (reader == 0) {
		struct pg_caller *caller;
		int fd, code = 0;

		if (setgroups(0, NULL) != 0 || setresgid(OTHER_UID, OTHER_UID, OTHER_UID) != 0 ||
		    setresuid(OTHER_UID, OTHER_UID, OTHER_UID) != 0)
			_exit(90);
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		caller = fd >= 0 ? pg_caller_peer_new(fd) : NULL;
		if (caller == NULL)
			code = 10;
		else if (caller->uid != NOBODY || caller->uid_trust != PG_ID_ATTESTED)
			code = 11;
		else if (caller->groups_trust != PG_ID_ATTESTED || !pg_caller_in_group(caller, 4242))
			code = 12;
		else if (caller->exe_trust != PG_ID_UNAVAILABLE || caller->exe != NULL)
			code = 13;
		else if (pg_caller_exe_sha256(caller) != NULL)
			code = 14;
		else if (caller->pid_trust != PG_ID_ATTESTED || caller->pid <= 0)
			code = 15;
		pg_caller_free(caller);
		if (fd >= 0 && write(fd, "x", 1) != 1)
			code = 16;
		_exit(code);
	}
	client = spawn_nobody_client(lfd);
	ck_assert_int_eq(waitpid(reader, &status, 0), reader);
	/* Closing the listener resets a connection the reader never took,
	 * so the client cannot hang even if the reader failed early. */
	remove_socket(lfd);
	ck_assert_int_eq(waitpid(client, NULL, 0), client);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader exit %d",
		      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
END_TEST

START_TEST(test_peer_not_unix)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), pipefd[2];
	int unconnected = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	/* A connected socket of another family. */
	ck_assert_int_ge(udp, 0);
	ck_assert_int_eq(connect(udp, (struct sockaddr *)&sin, sizeof sin), 0);
	errno = 0;
	ck_assert_ptr_null(pg_caller_peer_new(udp));
	ck_assert_int_eq(errno, EAFNOSUPPORT);
	close(udp);
	/* Unix, but connected to nothing. */
	ck_assert_int_ge(unconnected, 0);
	errno = 0;
	ck_assert_ptr_null(pg_caller_peer_new(unconnected));
	ck_assert_int_eq(errno, ENOTCONN);
	close(unconnected);
	/* Not a socket; not a descriptor. */
	ck_assert_int_eq(pipe(pipefd), 0);
	errno = 0;
	ck_assert_ptr_null(pg_caller_peer_new(pipefd[0]));
	ck_assert_int_eq(errno, ENOTSOCK);
	close(pipefd[0]);
	close(pipefd[1]);
	errno = 0;
	ck_assert_ptr_null(pg_caller_peer_new(-1));
	ck_assert_int_eq(errno, EBADF);
}
END_TEST

/* The check that makes /proc reads safe against pid reuse. */
START_TEST(test_pidfd_names)
{
	pid_t child = fork();
	int pidfd, status;

	ck_assert_int_ge(child, 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	pidfd = (int)syscall(SYS_pidfd_open, child, 0);
	ck_assert_int_ge(pidfd, 0);
	ck_assert(pg_pidfd_names(pidfd, child));
	ck_assert(!pg_pidfd_names(pidfd, getpid()));
	ck_assert_int_eq(kill(child, SIGKILL), 0);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	/* Reaped: its pid may now name anything. */
	ck_assert(!pg_pidfd_names(pidfd, child));
	close(pidfd);
	ck_assert(!pg_pidfd_names(-1, child));
}
END_TEST

START_TEST(test_starttime_of_live_process)
{
	unsigned long long a = 0, b = 0;

	ck_assert(pg_proc_starttime(getpid(), &a));
	ck_assert(pg_proc_starttime(getpid(), &b));
	ck_assert_uint_eq(a, b);
	ck_assert(pg_proc_starttime(1, &b));
	ck_assert(!pg_proc_starttime(-5, &b));
}
END_TEST

static Suite *
identity_suite(void)
{
	Suite *s = suite_create("identity");
	TCase *tc = tcase_create("process");

	tcase_add_test(tc, test_process_identity);
	tcase_add_test(tc, test_process_unit);
	tcase_add_test(tc, test_process_exe_sha256);
	tcase_add_test(tc, test_in_group_trust);
	tcase_add_test(tc, test_getenv);
	suite_add_tcase(s, tc);

	tc = tcase_create("peer");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_peer_groups_bound_at_connect);
	tcase_add_test(tc, test_peer_accepted);
	tcase_add_test(tc, test_peer_accepted_without_pidfd);
	tcase_add_test(tc, test_peer_socketpair);
	tcase_add_test(tc, test_peer_socketpair_names_creator);
	tcase_add_test(tc, test_peer_gone);
	tcase_add_test(tc, test_peer_gone_without_pidfd);
	tcase_add_test(tc, test_peer_exe_hash_after_exit);
	tcase_add_test(tc, test_peer_unprivileged_reader);
	tcase_add_test(tc, test_peer_not_unix);
	tcase_add_test(tc, test_pidfd_names);
	tcase_add_test(tc, test_starttime_of_live_process);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(identity_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
