/* SPDX-License-Identifier: Apache-2.0
 *
 * The system calls one signature through p11gate makes, and nothing else:
 * the floor under p11gate's cost that no tuning of its own code lowers
 * while each record is written before the call it records goes on.  Per
 * signature (an init and a one-part sign, audit unsynced):
 *   - two locked appends, the allow record (1,030 bytes) and the result
 *     record (360): flock, lseek, getrlimit, write, flock each;
 *   - two policy checks (one per judged call): a read of the inotify
 *     descriptor that finds nothing, geteuid, getegid;
 *   - getpid, three times (after-fork checks of the audit handle).
 * Prints the median microseconds per signature of the locked appends alone
 * and of all of it, in a log in $TMPDIR (or /tmp).  Compare with SoftHSM2's
 * own time per signature (bench/README.md, "Why the targets are missed").
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "median.h"

#define BATCH 500       /* signatures per timed batch */
#define BATCHES 101     /* the median of these is reported */

static int
locked_append(int fd, const char *line, size_t len, bool as_p11gate)
{
	struct rlimit rl;
	int rc = 0;

	if (as_p11gate)
		(void)getpid();
	if (flock(fd, LOCK_EX) != 0 || lseek(fd, 0, SEEK_END) < 0 ||
	    (as_p11gate && getrlimit(RLIMIT_FSIZE, &rl) != 0) ||
	    write(fd, line, len) != (ssize_t)len)
		rc = -1;
	flock(fd, LOCK_UN);
	return rc;
}

static void
policy_check(int watch)
{
	char events[4096];

	(void)!read(watch, events, sizeof events);
	(void)geteuid();
	(void)getegid();
}

/* One signature's system calls; all of them, or the appends only. */
static int
signature(int fd, int watch, bool all)
{
	static char allow[1030], result[360];

	if (allow[0] == '\0') {
		memset(allow, 'a', sizeof allow - 1);
		allow[sizeof allow - 1] = '\n';
		memset(result, 'r', sizeof result - 1);
		result[sizeof result - 1] = '\n';
	}
	if (all)
		policy_check(watch);
	if (locked_append(fd, allow, sizeof allow, all) != 0)
		return -1;
	if (all) {
		policy_check(watch);
		(void)getpid();
	}
	return locked_append(fd, result, sizeof result, all);
}

static double
median_us(int fd, int watch, bool all)
{
	static double us[BATCHES];

	for (int b = 0; b < BATCHES; b++) {
		double t0 = bench_now_us();

		for (int i = 0; i < BATCH; i++) {
			if (signature(fd, watch, all) != 0)
				return -1;
		}
		us[b] = (bench_now_us() - t0) / BATCH;
		if (ftruncate(fd, 0) != 0)      /* keep the file small */
			return -1;
	}
	return bench_median(us, BATCHES);
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	char path[4096];
	double appends, all;
	int fd, watch = -1, status = 1;

	snprintf(path, sizeof path, "%s/syscall_floor-XXXXXX", tmp);
	fd = mkstemp(path);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	if (fcntl(fd, F_SETFL, O_APPEND) != 0 || (watch = inotify_init1(IN_NONBLOCK)) < 0 ||
	    inotify_add_watch(watch, tmp, IN_CREATE | IN_MOVED_TO | IN_DELETE) < 0) {
		perror("syscall_floor");
		goto out;
	}
	appends = median_us(fd, watch, false);
	all = median_us(fd, watch, true);
	if (appends < 0 || all < 0) {
		perror(path);
		goto out;
	}
	printf("system calls per signature through p11gate (audit unsynced, %s): "
	       "two locked appends %.2f us, everything %.2f us (median of %d batches of %d)\n",
	       tmp, appends, all, BATCHES, BATCH);
	status = 0;
out:
	if (watch >= 0)
		close(watch);
	close(fd);
	unlink(path);
	return status;
}
