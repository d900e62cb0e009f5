/* SPDX-License-Identifier: Apache-2.0
 *
 * The identity of the peer of a connected unix socket (a p11-kit server
 * client): credentials from the kernel, the rest from /proc/<pid>/, read so
 * that a pid reused meanwhile cannot lend another process's details.  The
 * socket binds only uid, gid, groups and pid (attested); program and unit
 * describe the process that connected, not the connection (reported).
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif
/* Linux 6.5; not in Debian 12's headers. */
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* What /proc/<pid>/ says; only copied into the caller once the reads are
 * known to have been about the peer itself. */
struct proc_fields {
	bool have_groups;
	gid_t *groups;
	size_t n_groups;
	uid_t euid;
	bool have_euid;
	char *exe;
	char *unit;
	char *unit_path;
};

static void
read_fields(pid_t pid, struct proc_fields *f)
{
	char path[64], *text;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	text = pg_proc_read(path);
	if (text != NULL) {
		f->have_groups = pg_proc_status_groups(text, &f->groups, &f->n_groups);
		f->have_euid = pg_proc_status_euid(text, &f->euid);
		free(text);
	}
	/* EACCES for another user's process unless we may ptrace it: then
	 * the exe stays unavailable. */
	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	f->exe = pg_proc_readlink(path);
	/* Seen through another mount namespace, the path may be a bind
	 * mount of the peer's choosing: unavailable, unless it is the same
	 * file here. */
	if (f->exe != NULL && !pg_proc_exe_is_ours(pid, f->exe)) {
		free(f->exe);
		f->exe = NULL;
	}
	snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
	text = pg_proc_read(path);
	if (text != NULL) {
		f->unit = pg_cgroup_unit_at(text, &f->unit_path);
		free(text);
	}
}

static void
clear_fields(struct proc_fields *f)
{
	free(f->groups);
	free(f->exe);
	free(f->unit);
	free(f->unit_path);
	memset(f, 0, sizeof *f);
}

/* Fills groups, exe and unit of caller from /proc/<caller->pid>/. */
static void
read_proc(struct pg_caller *caller, int sock, bool use_pidfd)
{
	struct proc_fields f = { 0 };
	unsigned long long start_before = 0, start_after = 0;
	socklen_t len = sizeof(int);
	int pidfd = -1;
	bool same;

	/* With a pidfd the process cannot be reaped unnoticed: while it
	 * still answers, its pid cannot have been reused. */
	if (use_pidfd && getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0) {
		pidfd = -1;
		/* Any answer but "unknown option" means the kernel has
		 * pidfds and the peer is gone. */
		if (errno != ENOPROTOOPT)
			goto out;
	}
	/* Without one, a changed start time betrays a reused pid during the
	 * reads.  (A pid reused before the first read would go unnoticed; the
	 * effective uid check below narrows that to processes of the same
	 * user.) */
	if (pidfd < 0 && !pg_proc_starttime(caller->pid, &start_before))
		goto out;

	read_fields(caller->pid, &f);

	if (pidfd >= 0)
		same = pg_pidfd_names(pidfd, caller->pid);
	else
		same = pg_proc_starttime(caller->pid, &start_after) &&
		       start_after == start_before && f.have_euid && f.euid == caller->uid;
	if (!same)
		goto out;

	/* Only where the kernel keeps no groups with the socket: then those
	 * of the process that connected, as they are now. */
	if (caller->groups_trust == PG_ID_UNAVAILABLE && f.have_groups &&
	    pg_groups_with_primary(&f.groups, &f.n_groups, caller->gid)) {
		caller->groups = f.groups;
		caller->n_groups = f.n_groups;
		caller->groups_trust = PG_ID_ATTESTED;
		f.groups = NULL;
	}
	/* Program and unit are those of the process that connected, which
	 * the socket does not bind: it may have forked and exec'd since, or
	 * run the program with LD_PRELOAD.  Only reported, never attested. */
	if (f.exe != NULL) {
		caller->exe = f.exe;
		caller->exe_trust = PG_ID_REPORTED;
		f.exe = NULL;
	}
	if (f.unit != NULL && pg_cgroup_unit_trusted(f.unit_path, caller)) {
		caller->unit = f.unit;
		caller->unit_trust = PG_ID_REPORTED;
		f.unit = NULL;
	}
out:
	clear_fields(&f);
	if (pidfd >= 0)
		close(pidfd);
}

/* The supplementary groups the peer had at connect(), kept by the kernel
 * with the socket (SO_PEERGROUPS, Linux 4.13): bound to the connection, as
 * uid and gid are, whatever the process does afterwards. */
static bool
peer_groups(int fd, gid_t **groups, size_t *n_groups)
{
	socklen_t len = 64 * sizeof(gid_t);
	gid_t *list = NULL;

	/* ERANGE: the list grew; len now says how much it needs. */
	for (int attempt = 0; attempt < 4; attempt++) {
		gid_t *bigger = realloc(list, len > 0 ? len : sizeof *list);

		if (bigger == NULL)
			break;
		list = bigger;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, list, &len) == 0) {
			*groups = list;
			*n_groups = len / sizeof *list;
			return true;
		}
		if (errno != ERANGE)
			break;
	}
	free(list);
	return false;
}

struct pg_caller *
pg_caller_peer_new_with(int fd, bool use_pidfd)
{
	struct sockaddr_storage addr;
	socklen_t addr_len = sizeof addr;
	struct ucred cred;
	socklen_t cred_len = sizeof cred;
	struct pg_caller *caller;

	/* getpeername: ENOTSOCK, ENOTCONN and EBADF come with it. */
	memset(&addr, 0, sizeof addr);
	if (getpeername(fd, (struct sockaddr *)&addr, &addr_len) != 0)
		return NULL;
	if (addr.ss_family != AF_UNIX) {
		errno = EAFNOSUPPORT;
		return NULL;
	}
	/* The credentials of the peer when it connected (for a socketpair:
	 * when it was created), kept by the kernel. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) != 0)
		return NULL;
	if (cred_len != sizeof cred) {
		errno = EPROTO;
		return NULL;
	}
	caller = pg_caller_alloc(PG_ID_PEER);
	if (caller == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	caller->uid = cred.uid;
	caller->uid_trust = PG_ID_ATTESTED;
	caller->user = pg_user_name(cred.uid);
	caller->gid = cred.gid;
	caller->gid_trust = PG_ID_ATTESTED;
	if (peer_groups(fd, &caller->groups, &caller->n_groups) &&
	    pg_groups_with_primary(&caller->groups, &caller->n_groups, cred.gid))
		caller->groups_trust = PG_ID_ATTESTED;
	/* pid 0: the peer is in a pid namespace we cannot see into. */
	if (cred.pid > 0) {
		caller->pid = cred.pid;
		caller->pid_trust = PG_ID_ATTESTED;
		read_proc(caller, fd, use_pidfd);
	}
	/* The peer's environment is in its own memory, out of reach: env
	 * rules cannot match across the boundary. */
	caller->env = NULL;
	caller->env_trust = PG_ID_UNAVAILABLE;
	return caller;
}

struct pg_caller *
pg_caller_peer_new(int fd)
{
	return pg_caller_peer_new_with(fd, true);
}
