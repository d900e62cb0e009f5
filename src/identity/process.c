/* SPDX-License-Identifier: Apache-2.0
 *
 * The identity of the process p11gate is loaded in.  Every field is only
 * PG_ID_ASSERTED: the caller owns this address space and could have
 * patched any answer before we read it.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* getgroups() plus the primary group.  Retries if the list grew between
 * the two calls (another thread in setgroups). */
static bool
read_groups(gid_t primary, gid_t **groups, size_t *n_groups)
{
	for (int attempt = 0; attempt < 4; attempt++) {
		int n = getgroups(0, NULL), got;
		gid_t *list;

		if (n < 0)
			return false;
		list = calloc((size_t)n + 1, sizeof *list);
		if (list == NULL)
			return false;
		got = getgroups(n, list);
		if (got < 0) {
			free(list);
			if (errno == EINVAL)
				continue;
			return false;
		}
		*groups = list;
		*n_groups = (size_t)got;
		return pg_groups_with_primary(groups, n_groups, primary);
	}
	return false;
}

static char **
copy_environ(void)
{
	size_t n = 0;
	char **copy;

	for (char **e = environ; e != NULL && *e != NULL; e++)
		n++;
	copy = calloc(n + 1, sizeof *copy);
	if (copy == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		copy[i] = strdup(environ[i]);
		if (copy[i] == NULL) {
			for (size_t j = 0; j < i; j++)
				free(copy[j]);
			free(copy);
			return NULL;
		}
	}
	return copy;
}

struct pg_caller *
pg_caller_process_new(void)
{
	struct pg_caller *caller = pg_caller_alloc(PG_ID_PROCESS);
	char *cgroup;

	if (caller == NULL)
		return NULL;

	/* The effective ids: the ones the kernel checks access with, and the
	 * ones SO_PEERCRED reports for a peer, so both sources agree. */
	caller->uid = geteuid();
	caller->uid_trust = PG_ID_ASSERTED;
	caller->user = pg_user_name(caller->uid);
	caller->gid = getegid();
	caller->gid_trust = PG_ID_ASSERTED;
	if (read_groups(caller->gid, &caller->groups, &caller->n_groups))
		caller->groups_trust = PG_ID_ASSERTED;
	caller->pid = getpid();
	caller->pid_trust = PG_ID_ASSERTED;

	/* Kept as the kernel gives it, " (deleted)" suffix included: a rule
	 * naming the path must not match a binary that has been replaced. */
	caller->exe = pg_proc_readlink("/proc/self/exe");
	if (caller->exe != NULL)
		caller->exe_trust = PG_ID_ASSERTED;

	cgroup = pg_proc_read("/proc/self/cgroup");
	if (cgroup != NULL) {
		caller->unit = pg_cgroup_unit(cgroup);
		if (caller->unit != NULL)
			caller->unit_trust = PG_ID_ASSERTED;
		free(cgroup);
	}

	caller->env = copy_environ();
	if (caller->env != NULL)
		caller->env_trust = PG_ID_ASSERTED;
	return caller;
}
