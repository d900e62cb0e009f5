/* SPDX-License-Identifier: Apache-2.0
 *
 * The systemd unit a process runs in, from the text of /proc/<pid>/cgroup:
 * pure parsing, kept apart so it can be tested on sample lines.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Unit types that hold processes.  Slices only group other units, so a
 * ".slice" component is never the answer. */
static const char *const unit_suffixes[] = {
	".service", ".scope", ".socket", ".mount", ".swap",
};

static bool
is_unit(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof unit_suffixes / sizeof *unit_suffixes; i++) {
		size_t slen = strlen(unit_suffixes[i]);

		if (len > slen && memcmp(name + len - slen, unit_suffixes[i], slen) == 0)
			return true;
	}
	return false;
}

char *
pg_cgroup_unit(const char *cgroup_text)
{
	const char *line = cgroup_text, *best = NULL;
	size_t best_len = 0;
	char *unit;

	/* Only the unified hierarchy ("0::/path") is systemd's view on a
	 * cgroup v2 or hybrid system; v1 controller paths are ignored. */
	while (line != NULL && *line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);

		if (len >= 3 && memcmp(line, "0::", 3) == 0) {
			const char *p = line + 3, *stop = line + len;

			/* The last unit component wins: a service may create
			 * sub-cgroups of its own below it (".../x.service/payload"),
			 * and a user manager's units sit below user@UID.service. */
			while (p < stop) {
				const char *slash = memchr(p, '/', (size_t)(stop - p));
				const char *comp_end = slash != NULL ? slash : stop;

				if (is_unit(p, (size_t)(comp_end - p))) {
					best = p;
					best_len = (size_t)(comp_end - p);
				}
				p = comp_end + 1;
			}
			break;
		}
		line = end != NULL ? end + 1 : NULL;
	}
	if (best == NULL) {
		errno = ENOENT;
		return NULL;
	}
	unit = strndup(best, best_len);
	if (unit == NULL)
		errno = ENOMEM;
	return unit;
}
