/* SPDX-License-Identifier: Apache-2.0
 *
 * Reading /proc: whole small files, symlinks, and the few fields identity
 * needs from status, stat and a pidfd's fdinfo.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Not in Debian 12's glibc wrappers; the number is the same on every
 * architecture (the syscall table was unified at 424). */
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* /proc/<pid>/status with 65536 groups is under 800 KiB. */
#define PG_PROC_MAX (1024 * 1024)

char *
pg_proc_read(const char *path)
{
	size_t cap = 4096, len = 0;
	char *buf = NULL, *ret = NULL;
	int fd, saved = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	if (buf == NULL) {
		saved = ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			char *bigger;

			if (cap >= PG_PROC_MAX) {
				saved = EFBIG;
				goto out;
			}
			bigger = realloc(buf, cap * 2);
			if (bigger == NULL) {
				saved = ENOMEM;
				goto out;
			}
			buf = bigger;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			saved = errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	ret = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	if (ret == NULL)
		errno = saved;
	return ret;
}

char *
pg_proc_readlink(const char *path)
{
	size_t cap = PATH_MAX;
	char *buf = NULL, *ret = NULL;
	int saved = 0;

	/* readlink truncates silently: grow until the answer fits. */
	for (;;) {
		char *bigger = realloc(buf, cap);
		ssize_t n;

		if (bigger == NULL) {
			saved = ENOMEM;
			goto out;
		}
		buf = bigger;
		n = readlink(path, buf, cap);
		if (n < 0) {
			saved = errno;
			goto out;
		}
		if ((size_t)n < cap) {
			buf[n] = '\0';
			ret = buf;
			buf = NULL;
			goto out;
		}
		if (cap >= 16 * PATH_MAX) {
			saved = ENAMETOOLONG;
			goto out;
		}
		cap *= 2;
	}
out:
	free(buf);
	if (ret == NULL)
		errno = saved;
	return ret;
}

/* The text after "key" at the start of a line, or NULL. */
static const char *
find_field(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *line = text; line != NULL; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (strncmp(line, key, klen) == 0)
			return line + klen;
	}
	return NULL;
}

/* One unsigned decimal number no larger than max; skips leading blanks. */
static bool
parse_ulong(const char **p, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;
	const char *s = *p;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9') {
		unsigned d = (unsigned)(*s - '0');

		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
		s++;
	}
	*p = s;
	*out = v;
	return true;
}

bool
pg_proc_status_groups(const char *status, gid_t **groups, size_t *n_groups)
{
	const char *p = find_field(status, "Groups:");
	gid_t *list = NULL;
	size_t n = 0, cap = 0;

	if (p == NULL)
		return false;
	for (;;) {
		unsigned long long v;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\n' || *p == '\0')
			break;
		if (!parse_ulong(&p, (gid_t)-1, &v))
			goto fail;
		if (n == cap) {
			gid_t *bigger = reallocarray(list, cap ? cap * 2 : 16, sizeof *list);

			if (bigger == NULL)
				goto fail;
			list = bigger;
			cap = cap ? cap * 2 : 16;
		}
		list[n++] = (gid_t)v;
	}
	*groups = list;
	*n_groups = n;
	return true;
fail:
	free(list);
	return false;
}

bool
pg_proc_status_euid(const char *status, uid_t *euid)
{
	const char *p = find_field(status, "Uid:");
	unsigned long long real, eff;

	if (p == NULL || !parse_ulong(&p, (uid_t)-1, &real) || !parse_ulong(&p, (uid_t)-1, &eff))
		return false;
	*euid = (uid_t)eff;
	return true;
}

bool
pg_proc_stat_starttime(const char *stat, unsigned long long *starttime)
{
	/* "pid (comm) state ppid ..." where comm is anything: the fields
	 * start after the last ')'. */
	const char *p = strrchr(stat, ')');

	if (p == NULL)
		return false;
	p++;
	/* Skip fields 3 (state) to 21; field 22 is starttime. */
	for (int field = 3; field < 22; field++) {
		while (*p == ' ')
			p++;
		if (*p == '\0' || *p == '\n')
			return false;
		while (*p != ' ' && *p != '\0' && *p != '\n')
			p++;
	}
	return parse_ulong(&p, ~0ULL, starttime) && (*p == ' ' || *p == '\n' || *p == '\0');
}

bool
pg_proc_starttime(pid_t pid, unsigned long long *starttime)
{
	char path[64], *text;
	bool ok;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	text = pg_proc_read(path);
	if (text == NULL)
		return false;
	ok = pg_proc_stat_starttime(text, starttime);
	free(text);
	return ok;
}

bool
pg_pidfd_names(int pidfd, pid_t pid)
{
	char path[64], *text;
	const char *p;
	unsigned long long v;
	bool ok = false;

	/* Signal 0 only checks: ESRCH once the process has been reaped (its
	 * pid free for reuse); EPERM means it exists but is not ours. */
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) != 0 && errno != EPERM)
		return false;
	/* The pidfd must be for the pid we read under /proc (the kernel shows
	 * -1 here for a process that has exited). */
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
	text = pg_proc_read(path);
	if (text == NULL)
		return false;
	p = find_field(text, "Pid:");
	if (p != NULL && parse_ulong(&p, INT_MAX, &v) && (*p == '\n' || *p == '\0'))
		ok = v == (unsigned long long)pid;
	free(text);
	return ok;
}

bool
pg_proc_exe_is_ours(pid_t pid, const char *exe)
{
	char path[64];
	struct stat theirs, ours;

	/* The link's text is the path in the process's own mount namespace:
	 * there, anything may be mounted over it.  In ours it names the file
	 * only if it leads to the same one. */
	snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)pid);
	if (stat(path, &theirs) == 0 && stat("/proc/self/ns/mnt", &ours) == 0 &&
	    theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino)
		return true;
	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	return exe[0] == '/' && stat(path, &theirs) == 0 && stat(exe, &ours) == 0 &&
	       S_ISREG(ours.st_mode) && theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino;
}
