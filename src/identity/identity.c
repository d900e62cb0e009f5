/* SPDX-License-Identifier: Apache-2.0
 *
 * The caller object itself: allocation, freeing, and the questions rules
 * ask of it (group membership, environment, executable hash, trust names).
 */
#include "internal.h"
#include "p11gate/common.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pg_caller *
pg_caller_alloc(enum pg_id_source source)
{
	/* calloc: every trust starts as PG_ID_UNAVAILABLE (0). */
	struct pg_caller *caller = calloc(1, sizeof *caller);

	if (caller != NULL)
		caller->source = source;
	return caller;
}

void
pg_caller_free(struct pg_caller *caller)
{
	if (caller == NULL)
		return;
	free(caller->user);
	free(caller->groups);
	free(caller->exe);
	free(caller->unit);
	if (caller->env != NULL) {
		for (char **e = caller->env; *e != NULL; e++)
			free(*e);
		free(caller->env);
	}
	free(caller);
}

char *
pg_user_name(uid_t uid)
{
	struct passwd pw, *found = NULL;
	size_t len = 1024;
	char *buf = NULL, *name = NULL;
	int rc;

	/* getpwuid_r reports a too small buffer with ERANGE; names served by
	 * NSS (LDAP, sssd) can need more than the sysconf hint. */
	for (;;) {
		char *bigger = realloc(buf, len);

		if (bigger == NULL)
			goto out;
		buf = bigger;
		rc = getpwuid_r(uid, &pw, buf, len, &found);
		if (rc != ERANGE || len >= 1024 * 1024)
			break;
		len *= 2;
	}
	if (rc == 0 && found != NULL && found->pw_name != NULL)
		name = strdup(found->pw_name);
out:
	free(buf);
	return name;
}

bool
pg_groups_with_primary(gid_t **groups, size_t *n_groups, gid_t primary)
{
	gid_t *bigger;

	for (size_t i = 0; i < *n_groups; i++)
		if ((*groups)[i] == primary)
			return true;
	bigger = reallocarray(*groups, *n_groups + 1, sizeof **groups);
	if (bigger == NULL) {
		free(*groups);
		*groups = NULL;
		*n_groups = 0;
		return false;
	}
	bigger[(*n_groups)++] = primary;
	*groups = bigger;
	return true;
}

bool
pg_caller_in_group(const struct pg_caller *caller, gid_t gid)
{
	/* A field that could not be read answers no (fail closed). */
	if (caller == NULL)
		return false;
	if (caller->gid_trust != PG_ID_UNAVAILABLE && caller->gid == gid)
		return true;
	if (caller->groups_trust == PG_ID_UNAVAILABLE || caller->groups == NULL)
		return false;
	for (size_t i = 0; i < caller->n_groups; i++)
		if (caller->groups[i] == gid)
			return true;
	return false;
}

const char *
pg_caller_getenv(const struct pg_caller *caller, const char *name)
{
	size_t len;

	if (caller == NULL || name == NULL || caller->env_trust == PG_ID_UNAVAILABLE ||
	    caller->env == NULL)
		return NULL;
	len = strlen(name);
	if (len == 0 || strchr(name, '=') != NULL)
		return NULL;
	/* The first match, as getenv(3) answers. */
	for (char **e = caller->env; *e != NULL; e++)
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			return *e + len + 1;
	return NULL;
}

/* Hashes path, but only if link still resolves to exe afterwards: a peer
 * that exited (and had its pid reused) or exec'd something else since its
 * identity was read must not lend its name to another binary's hash. */
static bool
hash_checked(const char *path, const char *link, const char *exe, unsigned char *out)
{
	char *before = NULL, *after = NULL;
	bool ok = false;

	before = pg_proc_readlink(link);
	if (before == NULL || strcmp(before, exe) != 0)
		goto out;
	if (!pg_sha256_file(path, out))
		goto out;
	after = pg_proc_readlink(link);
	ok = after != NULL && strcmp(after, exe) == 0;
out:
	free(before);
	free(after);
	return ok;
}

void
pg_caller_exe_link(const struct pg_caller *caller, char *link, size_t len)
{
	if (caller->source == PG_ID_PEER && caller->pid_trust != PG_ID_UNAVAILABLE)
		snprintf(link, len, "/proc/%d/exe", (int)caller->pid);
	else
		snprintf(link, len, "/proc/self/exe");
}

bool
pg_caller_exe_is(const struct pg_caller *caller, const char *link)
{
	char *target = pg_proc_readlink(link);
	bool same = target != NULL && caller->exe != NULL && strcmp(target, caller->exe) == 0;

	free(target);
	return same;
}

const unsigned char *
pg_caller_exe_sha256(struct pg_caller *caller)
{
	char link[64];

	if (caller == NULL)
		return NULL;
	if (caller->exe_hashed)
		return caller->exe_hash_ok ? caller->exe_sha256 : NULL;
	caller->exe_hashed = true;
	caller->exe_hash_ok = false;
	if (caller->exe_trust == PG_ID_UNAVAILABLE || caller->exe == NULL)
		return NULL;

	/* Hash /proc/<pid>/exe, the file the process really runs, even if
	 * its path has since been replaced or deleted.  caller->exe is kept
	 * as the path that was read; it only selects this route while it
	 * still is what the link says (the CLI may set exe to another
	 * program: then that path is hashed). */
	pg_caller_exe_link(caller, link, sizeof link);
	if (hash_checked(link, link, caller->exe, caller->exe_sha256))
		caller->exe_hash_ok = true;
	else if (caller->source == PG_ID_PROCESS && caller->exe[0] == '/')
		caller->exe_hash_ok = pg_sha256_file(caller->exe, caller->exe_sha256);
	return caller->exe_hash_ok ? caller->exe_sha256 : NULL;
}

const char *
pg_id_trust_name(enum pg_id_trust trust)
{
	switch (trust) {
	case PG_ID_ATTESTED:
		return "attested";
	case PG_ID_ASSERTED:
		return "asserted";
	case PG_ID_REPORTED:
		return "reported";
	case PG_ID_UNAVAILABLE:
	default:
		return "unavailable";
	}
}
