/* SPDX-License-Identifier: Apache-2.0
 *
 * How every command prints a policy's or a grant's problems: one line,
 * FILE:LINE:COL: error|warning: message, the message escaped (it may quote
 * the file's own bytes), and without a position when there is none (the
 * file could not be read).
 */
#include "commands.h"
#include "p11gate/common.h"

#include <stdio.h>

void
pg_cli_diag_print(enum pg_severity severity, const char *file, unsigned long line,
                  unsigned long column, const char *message)
{
	const char *label = severity == PG_DIAG_ERROR ? "error" : "warning";
	char shown[2048];

	pg_esc(message, PG_ESC_TEXT, shown, sizeof shown);
	if (line == 0)
		fprintf(stderr, "%s: %s: %s\n", file, label, shown);
	else
		fprintf(stderr, "%s:%lu:%lu: %s: %s\n", file, line, column, label, shown);
}

void
pg_cli_print_diag(void *ctx, enum pg_severity severity, const char *file, unsigned long line,
                  unsigned long column, const char *message)
{
	(void)ctx;
	pg_cli_diag_print(severity, file, line, column, message);
}

void
pg_cli_print_errors(void *ctx, enum pg_severity severity, const char *file, unsigned long line,
                    unsigned long column, const char *message)
{
	(void)ctx;
	if (severity == PG_DIAG_ERROR)
		pg_cli_diag_print(severity, file, line, column, message);
}
