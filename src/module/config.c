/* SPDX-License-Identifier: Apache-2.0
 *
 * Which configuration file the module uses, and how its problems reach the
 * operator: one line on stderr naming FILE:LINE:COLUMN.  A module that
 * cannot load its policy never initialises (no pass-through without policy).
 */
#include "module.h"
#include "p11gate-build.h"
#include "p11gate/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
pg_log(const char *fmt, ...)
{
	char line[1024], safe[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* Whatever a caller, a token or a file put into the message, it stays
	 * one line of ours: no newline, control or bidi character gets out. */
	pg_esc(line, PG_ESC_TEXT, safe, sizeof safe - 1);
	n = (int)strlen(safe);
	safe[n++] = '\n';
	/* One write, so lines from several threads never interleave. */
	if (dprintf(STDERR_FILENO, "p11gate: %.*s", n, safe) < 0)
		return;
}

struct diag_state {
	char first[768];
	unsigned errors;
};

static void
collect_error(void *ctx, enum pg_severity severity, const char *file,
              unsigned long line, unsigned long column, const char *message)
{
	struct diag_state *state = ctx;

	if (severity != PG_DIAG_ERROR)
		return;          /* warnings are for `p11gate check` */
	if (state->errors++ > 0)
		return;
	if (line > 0)
		snprintf(state->first, sizeof state->first, "%s:%lu:%lu: %s", file, line, column, message);
	else
		snprintf(state->first, sizeof state->first, "%s: %s", file, message);
}

const char *
pg_config_path(const char *reserved_path)
{
	/* secure_getenv: a setuid program must not take its policy from
	 * whoever started it. */
	const char *path = secure_getenv("P11GATE_CONFIG");

	if (path == NULL || path[0] == '\0')
		path = reserved_path;
	if (path == NULL || path[0] == '\0')
		path = P11GATE_DEFAULT_CONFIG;
	return path;
}

pg_policy *
pg_config_load(const char *path)
{
	struct diag_state state = { .errors = 0 };
	pg_policy *policy;

	policy = pg_policy_load(path, collect_error, &state);
	if (policy != NULL)
		return policy;
	if (state.errors == 0)
		pg_log("%s: cannot load the configuration", path);
	else if (state.errors == 1)
		pg_log("%s", state.first);
	else
		pg_log("%s (and %u more errors: run 'p11gate check %s')", state.first,
		       state.errors - 1, path);
	return NULL;
}
