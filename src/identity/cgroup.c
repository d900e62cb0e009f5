/* SPDX-License-Identifier: Apache-2.0
 *
 * The systemd unit a process runs in: parsing the text of /proc/<pid>/cgroup
 * (pure, so it can be tested on sample lines), and checking that the unit's
 * place in the cgroup tree is one its caller could not have made itself.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* Unit types that hold processes.  Slices only group other units, so a
 * ".slice" component is never the answer. */
static const char *const unit_suffixes[] = {
	".service", ".scope", ".socket", ".mount", ".swap",
};

static bool
has_suffix(const char *name, size_t len, const char *suffix)
{
	size_t slen = strlen(suffix);

	return len > slen && memcmp(name + len - slen, suffix, slen) == 0;
}

static bool
is_unit(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof unit_suffixes / sizeof *unit_suffixes; i++) {
		if (has_suffix(name, len, unit_suffixes[i]))
			return true;
	}
	return false;
}

char *
pg_cgroup_unit_at(const char *cgroup_text, char **cgroup_path)
{
	const char *line = cgroup_text, *path = NULL, *best = NULL;
	size_t best_len = 0;
	char *unit = NULL;

	if (cgroup_path != NULL)
		*cgroup_path = NULL;
	/* Only the unified hierarchy ("0::/path") is systemd's view on a
	 * cgroup v2 or hybrid system; v1 controller paths are ignored. */
	while (line != NULL && *line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);

		if (len >= 4 && memcmp(line, "0::/", 4) == 0) {
			const char *p = line + 4, *stop = line + len;

			path = line + 3;
			/* The system manager's units: below the root only slices,
			 * then the unit.  Whatever is below the unit is the unit's
			 * own (a delegated service or a user manager creates
			 * cgroups there, named as it likes), so the first unit
			 * wins, never one further down. */
			while (p < stop) {
				const char *slash = memchr(p, '/', (size_t)(stop - p));
				const char *comp_end = slash != NULL ? slash : stop;
				size_t comp_len = (size_t)(comp_end - p);

				if (has_suffix(p, comp_len, ".slice")) {
					p = comp_end + 1;
					continue;
				}
				if (is_unit(p, comp_len)) {
					best = p;
					best_len = comp_len;
				}
				break;
			}
			break;
		}
		line = end != NULL ? end + 1 : NULL;
	}
	/* user@UID.service is the user's own service manager: everything in
	 * it is the user's to create and name. */
	if (best != NULL && best_len > 5 && memcmp(best, "user@", 5) == 0)
		best = NULL;
	if (best == NULL) {
		errno = ENOENT;
		return NULL;
	}
	unit = strndup(best, best_len);
	if (unit != NULL && cgroup_path != NULL) {
		*cgroup_path = strndup(path, (size_t)(best + best_len - path));
		if (*cgroup_path == NULL) {
			free(unit);
			unit = NULL;
		}
	}
	if (unit == NULL)
		errno = ENOMEM;
	return unit;
}

char *
pg_cgroup_unit(const char *cgroup_text)
{
	return pg_cgroup_unit_at(cgroup_text, NULL);
}

/* Where the unified hierarchy is mounted: /sys/fs/cgroup on a cgroup v2
 * system, /sys/fs/cgroup/unified on a hybrid one. */
static const char *
cgroup2_root(void)
{
	static const char *const roots[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	struct statfs fs;

	for (size_t i = 0; i < sizeof roots / sizeof *roots; i++) {
		if (statfs(roots[i], &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC)
			return roots[i];
	}
	return NULL;
}

/* Whether the caller could create or rename an entry in this directory. */
static bool
writable_by(const struct stat *st, const struct pg_caller *caller)
{
	if (st->st_uid == caller->uid || (st->st_mode & S_IWOTH) != 0)
		return true;
	return (st->st_mode & S_IWGRP) != 0 && pg_caller_in_group(caller, st->st_gid);
}

bool
pg_cgroup_unit_trusted(const char *cgroup_path, const struct pg_caller *caller)
{
	const char *root = cgroup2_root();
	char *dir = NULL;
	size_t root_len;
	bool ok = false;
	struct stat st;

	if (root == NULL || cgroup_path == NULL || cgroup_path[0] != '/' ||
	    caller->uid_trust == PG_ID_UNAVAILABLE)
		goto out;
	root_len = strlen(root);
	if (asprintf(&dir, "%s%s", root, cgroup_path) < 0) {
		dir = NULL;
		goto out;
	}
	/* The unit's directory must exist; then every directory above it, up
	 * to the hierarchy's root, must be one the caller cannot write: there
	 * it could make (or rename to) a cgroup of any name.  (The unit's own
	 * directory may be the caller's: a delegated service's is.) */
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		goto out;
	for (;;) {
		char *slash = strrchr(dir, '/');

		if (slash == NULL || (size_t)(slash - dir) < root_len)
			break;
		*slash = '\0';
		if (stat(dir, &st) != 0 || writable_by(&st, caller))
			goto out;
	}
	ok = true;
out:
	free(dir);
	return ok;
}
