/* SPDX-License-Identifier: Apache-2.0
 *
 * Who is asking: the caller identity that policy rules match against and
 * that the audit log records.  Two sources: the process p11gate is loaded
 * in (every field only asserted: the caller owns the address space), or the
 * peer of a p11-kit server connection (uid, gid, groups and pid bound to the
 * connection by the kernel: attested; program and unit only reported).
 */
#ifndef P11GATE_IDENTITY_H
#define P11GATE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum pg_id_source {
	PG_ID_PROCESS,          /* p11gate runs inside the caller */
	PG_ID_PEER,             /* the caller is a p11-kit server client */
};

/* How far a field can be trusted. */
enum pg_id_trust {
	PG_ID_UNAVAILABLE = 0,  /* could not be read: rules needing it do not match */
	PG_ID_ASSERTED,         /* told by the caller's own process */
	PG_ID_ATTESTED,         /* read from the kernel by a process the caller does not control */
	/* Read from the kernel by the server, but about the process that
	 * connected, which the socket does not bind to its user: it may have
	 * exec'd, been run with LD_PRELOAD, or handed the socket on. */
	PG_ID_REPORTED,
};

struct pg_caller {
	enum pg_id_source source;

	enum pg_id_trust uid_trust;
	uid_t uid;
	char *user;             /* NULL if uid has no passwd entry */

	enum pg_id_trust gid_trust;
	gid_t gid;              /* primary */

	enum pg_id_trust groups_trust;
	gid_t *groups;          /* supplementary, primary included */
	size_t n_groups;

	enum pg_id_trust pid_trust;
	pid_t pid;

	enum pg_id_trust exe_trust;
	char *exe;              /* resolved executable path */

	enum pg_id_trust unit_trust;
	char *unit;             /* systemd unit from the cgroup, e.g. "ci-runner.service" */

	/* SHA-256 of the executable, computed on first use (rules with
	 * program_sha256 and the audit record); see pg_caller_exe_sha256.
	 * The module may fill it from its per-process memo instead. */
	bool exe_hashed;
	bool exe_hash_ok;
	unsigned char exe_sha256[32];

	enum pg_id_trust env_trust;
	char **env;             /* NAME=value, NULL-terminated; NULL if unavailable */
};

/* The identity of the current process. Never NULL except on out-of-memory;
 * fields that cannot be read are PG_ID_UNAVAILABLE. */
struct pg_caller *pg_caller_process_new(void);

/* The identity of the peer on the connected unix socket fd (SO_PEERCRED,
 * SO_PEERPIDFD where the kernel has it, /proc/<pid>/ for the rest).  NULL
 * with errno set if fd is not a connected unix socket. */
struct pg_caller *pg_caller_peer_new(int fd);

void pg_caller_free(struct pg_caller *caller);

/* The value of an environment variable as the caller sees it, or NULL. */
const char *pg_caller_getenv(const struct pg_caller *caller, const char *name);

/* SHA-256 of the caller's executable (hashed once, then cached in caller).
 * NULL if unavailable. */
const unsigned char *pg_caller_exe_sha256(struct pg_caller *caller);

/* The /proc link to the file the caller runs ("/proc/self/exe" or
 * "/proc/PID/exe"): what pg_caller_exe_sha256 hashes. */
void pg_caller_exe_link(const struct pg_caller *caller, char *link, size_t len);
/* Whether link still resolves to caller->exe (a peer's pid may have been
 * reused, or the peer have exec'd another program). */
bool pg_caller_exe_is(const struct pg_caller *caller, const char *link);

/* Whether gid is the primary or a supplementary group of the caller. */
bool pg_caller_in_group(const struct pg_caller *caller, gid_t gid);

/* "attested", "reported", "asserted", "unavailable" */
const char *pg_id_trust_name(enum pg_id_trust trust);

#endif /* P11GATE_IDENTITY_H */
