/* SPDX-License-Identifier: Apache-2.0
 *
 * What the identity files share with each other and with their unit tests:
 * /proc readers and parsers, the cgroup unit parser, and caller building.
 * Not part of the contract in include/p11gate/identity.h.
 */
#ifndef P11GATE_IDENTITY_INTERNAL_H
#define P11GATE_IDENTITY_INTERNAL_H

#include "p11gate/identity.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* ---- cgroup.c ---- */

/* The systemd unit in the text of /proc/<pid>/cgroup: in the unified
 * ("0::") hierarchy's path, the first component after the slices (".slice")
 * below the root, if it ends in .service, .scope, .socket, .mount or .swap
 * and is not a user manager (user@UID.service).  Newly allocated, or NULL
 * if there is none (errno ENOENT) or on out-of-memory (ENOMEM).  With
 * cgroup_path, also the path up to the unit ("/system.slice/x.service"). */
char *pg_cgroup_unit_at(const char *cgroup_text, char **cgroup_path);
char *pg_cgroup_unit(const char *cgroup_text);
/* Whether the unit at cgroup_path (from pg_cgroup_unit_at) exists and no
 * directory above it in the mounted unified hierarchy is owned by or
 * writable for the caller (uid, groups): false when that cannot be told. */
bool pg_cgroup_unit_trusted(const char *cgroup_path, const struct pg_caller *caller);

/* ---- procfs.c ---- */

/* The whole of a small file (procfs reports size 0: read to EOF), NUL
 * terminated; NULL with errno set on failure or beyond 1 MiB (EFBIG). */
char *pg_proc_read(const char *path);
/* readlink() into a new string; NULL with errno set. */
char *pg_proc_readlink(const char *path);
/* The numbers of the "Groups:" line of /proc/<pid>/status text. */
bool pg_proc_status_groups(const char *status, gid_t **groups, size_t *n_groups);
/* The effective uid (second field) of the "Uid:" line. */
bool pg_proc_status_euid(const char *status, uid_t *euid);
/* Field 22 (starttime) of /proc/<pid>/stat text; the command name in
 * parentheses may itself contain spaces and parentheses. */
bool pg_proc_stat_starttime(const char *stat, unsigned long long *starttime);
/* starttime of a live process, read from /proc/<pid>/stat. */
bool pg_proc_starttime(pid_t pid, unsigned long long *starttime);
/* Whether exe, as /proc/<pid>/exe reads, names in this process's mount
 * namespace the file the process runs: true if both share a mount
 * namespace, or if the path leads here to the same device and inode. */
bool pg_proc_exe_is_ours(pid_t pid, const char *exe);
/* Whether pidfd still refers to a process that has not been reaped and
 * whose pid is pid: only then can /proc/<pid>/ have described it. */
bool pg_pidfd_names(int pidfd, pid_t pid);

/* ---- identity.c ---- */

/* A zeroed caller of the given source, every field PG_ID_UNAVAILABLE. */
struct pg_caller *pg_caller_alloc(enum pg_id_source source);
/* The login name of uid (getpwuid_r), or NULL. */
char *pg_user_name(uid_t uid);
/* Takes groups (malloc'd, n entries) and appends primary unless present;
 * false on out-of-memory (groups is freed either way). */
bool pg_groups_with_primary(gid_t **groups, size_t *n_groups, gid_t primary);

/* ---- peer.c ---- */

/* pg_caller_peer_new, with the SO_PEERPIDFD path switchable so tests can
 * exercise the starttime fallback that older kernels take. */
struct pg_caller *pg_caller_peer_new_with(int fd, bool use_pidfd);

#endif /* P11GATE_IDENTITY_INTERNAL_H */
