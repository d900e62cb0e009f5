/* SPDX-License-Identifier: Apache-2.0
 *
 * Loader diagnostics: formats a message, makes it safe to print (policy
 * text can hold control characters) and hands it to the caller's printer,
 * counting errors and warnings.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

void
pg_diag_report(struct pg_diag *diag, enum pg_severity severity,
               unsigned long line, unsigned long column, const char *fmt, va_list ap)
{
	char raw[1024], safe[1024];
	size_t j = 0;

	if (severity == PG_DIAG_ERROR)
		diag->errors++;
	else
		diag->warnings++;
	if (diag->fn == NULL)
		return;
	vsnprintf(raw, sizeof raw, fmt, ap);
	/* Escape control characters so a crafted value cannot rewrite the
	 * terminal or forge a second diagnostic line. */
	for (size_t i = 0; raw[i] != '\0' && j + 5 < sizeof safe; i++) {
		unsigned char c = (unsigned char)raw[i];
		if (c < 0x20 || c == 0x7f)
			j += (size_t)snprintf(safe + j, sizeof safe - j, "\\x%02x", c);
		else
			safe[j++] = (char)c;
	}
	safe[j] = '\0';
	diag->fn(diag->ctx, severity, diag->file, line, column, safe);
}

void
pg_diag_error(struct pg_diag *diag, unsigned long line, unsigned long column,
              const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pg_diag_report(diag, PG_DIAG_ERROR, line, column, fmt, ap);
	va_end(ap);
}

void
pg_diag_warning(struct pg_diag *diag, unsigned long line, unsigned long column,
                const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pg_diag_report(diag, PG_DIAG_WARNING, line, column, fmt, ap);
	va_end(ap);
}

void
pg_diag_error_at(struct pg_diag *diag, const struct pg_ynode *node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pg_diag_report(diag, PG_DIAG_ERROR, node->line, node->column, fmt, ap);
	va_end(ap);
}

void
pg_diag_warning_at(struct pg_diag *diag, const struct pg_ynode *node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pg_diag_report(diag, PG_DIAG_WARNING, node->line, node->column, fmt, ap);
	va_end(ap);
}
