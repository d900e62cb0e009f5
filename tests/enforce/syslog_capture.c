/* SPDX-License-Identifier: Apache-2.0
 *
 * Preloaded into a signer by tests/enforce/tail-anchor.sh: what the process
 * sends to syslog (priority, then the message, one line each) is appended
 * to $P11GATE_SYSLOG_CAPTURE instead, so the test can check the tamper
 * alarm without a syslog daemon.  Both entry points: a fortified build
 * calls __syslog_chk.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* The build hides symbols by default; these two must interpose libc's. */
#define EXPORTED __attribute__((visibility("default")))

void __syslog_chk(int priority, int flag, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

static void capture(int priority, const char *format, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void
capture(int priority, const char *format, va_list ap)
{
	const char *path = getenv("P11GATE_SYSLOG_CAPTURE");
	char line[8192];
	int n, m, fd;

	if (path == NULL)
		return;
	n = snprintf(line, sizeof line, "%d ", priority);
	m = vsnprintf(line + n, sizeof line - (size_t)n - 1, format, ap);
	if (m < 0)
		return;
	n = n + m < (int)sizeof line - 1 ? n + m : (int)sizeof line - 2;
	line[n++] = '\n';
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)n) < 0) {
		/* the test finds the line missing */
	}
	close(fd);
}

EXPORTED void
syslog(int priority, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	capture(priority, format, ap);
	va_end(ap);
}

EXPORTED void
__syslog_chk(int priority, int flag, const char *format, ...)
{
	va_list ap;

	(void)flag;
	va_start(ap, format);
	capture(priority, format, ap);
	va_end(ap);
}
