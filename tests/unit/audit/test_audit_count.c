/* SPDX-License-Identifier: Apache-2.0
 *
 * The counters kept with the log (audit_count.c): a use is taken with its
 * record or not at all; processes and threads racing for the last uses take
 * exactly max between them; the log is the truth, so a stale, torn or lost
 * LOG.counters, a writer killed anywhere, and a rotation lose and double
 * nothing.
 */
#include "p11gate/audit.h"
#include "audit_chain.h"
#include "audit_json.h"
#include "audit_test_util.h"
#include "audit_verify.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Windows that no test run crosses: a century, aligned to the epoch. */
#define CENTURY (100ull * 365 * 86400)

static char *dir;
static char *log_path;
static char *counters_path;

static void
setup(void)
{
	dir = t_tempdir();
	log_path = t_path(dir, "audit.jsonl");
	counters_path = t_path(dir, "audit.jsonl.counters");
}

static void
teardown(void)
{
	free(log_path);
	free(counters_path);
	t_rmdir(dir);
}

static pg_audit *
open_log(void)
{
	char err[256];
	pg_audit *a = pg_audit_open(log_path, false, false, err, sizeof err);

	ck_assert_msg(a != NULL, "%s", err);
	return a;
}

static struct pg_audit_take
take_of(const char *counter, uint64_t per, uint64_t max)
{
	return (struct pg_audit_take){ .counter = counter, .per = per, .max = max };
}

/* One counted append: 1 taken, 0 refused, -1 failed. */
static int
take_one(pg_audit *a, const char *counter, uint64_t per, uint64_t max, uint64_t *used)
{
	struct pg_audit_take t = take_of(counter, per, max);
	struct pg_audit_record r;
	char reason[256];
	int refused;

	t_record(&r, "counted");
	if (pg_audit_append_counted(a, &r, &t, 1, NULL, NULL, &refused, reason, sizeof reason,
	                            NULL) != 0)
		return -1;
	if (used != NULL)
		*used = t.used;
	return refused < 0 ? 1 : 0;
}

static uint64_t
read_count(pg_audit *a, const char *counter, uint64_t per)
{
	struct pg_audit_take t = take_of(counter, per, 1);

	ck_assert_int_eq(pg_audit_counters_read(a, &t, 1), 0);
	return t.used;
}

/* Decision records in the log: allows that carry "counted", and denies.
 * A line a killed writer left torn is no record, even once the next
 * writer ended it with a newline: the record after it says
 * "recovered":"truncated". */
static void
count_records(size_t *allowed, size_t *denied)
{
	size_t len;
	char *data = t_read(log_path, &len), *line, *nl, *next_nl;

	*allowed = *denied = 0;
	ck_assert_ptr_nonnull(data);
	for (line = data; line < data + len; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(data + len - line));
		if (nl == NULL)
			break;
		*nl = '\0';
		next_nl = nl + 1 < data + len ? memchr(nl + 1, '\n', (size_t)(data + len - nl - 1)) : NULL;
		if (next_nl != NULL && memmem(nl + 1, (size_t)(next_nl - nl - 1), "\"recovered\":\"truncated\"",
		                              strlen("\"recovered\":\"truncated\"")) != NULL)
			continue;
		if (strstr(line, "\"decision\":\"allow\"") != NULL && strstr(line, ",\"counted\":[") != NULL)
			(*allowed)++;
		else if (strstr(line, "\"decision\":\"deny\"") != NULL)
			(*denied)++;
	}
	free(data);
}

static void
assert_intact(void)
{
	struct pg_chain chain;

	pg_chain_init(&chain);
	ck_assert_int_eq(pg_audit_verify_path(log_path, &chain), 0);
	ck_assert_msg(chain.problem == PG_CHAIN_OK, "%s", chain.message);
}

START_TEST(takes_until_max_then_refuses)
{
	struct pg_audit_take t;
	struct pg_audit_record r;
	pg_audit *a = open_log();
	char reason[256], err[128], *data;
	size_t allowed, denied, len;
	uint64_t used = 0, seq;
	json_t *rec;
	int refused;

	for (uint64_t i = 1; i <= 3; i++) {
		ck_assert_int_eq(take_one(a, "limit/x", 0, 3, &used), 1);
		ck_assert_uint_eq(used, i);
	}
	t = take_of("limit/x", 0, 3);
	t_record(&r, "counted");
	ck_assert_int_eq(pg_audit_append_counted(a, &r, &t, 1, NULL, NULL, &refused, reason,
	                                         sizeof reason, &seq), 0);
	ck_assert_int_eq(refused, 0);
	ck_assert_uint_eq(t.used, 3);
	ck_assert_uint_eq(t.resets, 0);
	ck_assert_msg(strstr(reason, "3 of 3 used") != NULL, "%s", reason);
	/* Another counter is not this one's. */
	ck_assert_int_eq(take_one(a, "limit/y", 0, 3, &used), 1);
	ck_assert_uint_eq(used, 1);
	ck_assert_uint_eq(read_count(a, "limit/x", 0), 3);
	pg_audit_close(a);

	count_records(&allowed, &denied);
	ck_assert_uint_eq(allowed, 4);
	ck_assert_uint_eq(denied, 1);
	assert_intact();
	/* The refusal is the record, with the reason and without the uses. */
	data = t_read(log_path, &len);
	{
		char *line = data;

		for (uint64_t i = 1; i < seq; i++)
			line = strchr(line, '\n') + 1;
		*strchr(line, '\n') = '\0';
		rec = pg_json_parse(line, strlen(line), err, sizeof err);
		ck_assert_msg(rec != NULL, "%s", err);
		ck_assert_str_eq(pg_json_get_string(rec, "decision"), "deny");
		ck_assert_str_eq(pg_json_get_string(rec, "reason"), reason);
		ck_assert_ptr_null(json_object_get(rec, "counted"));
		json_decref(rec);
	}
	free(data);
}
END_TEST

static void
words(void *ctx, const struct pg_audit_take *take, char *reason, size_t len)
{
	snprintf(reason, len, "%s: all %llu used, resets at %llu", (const char *)ctx,
	         (unsigned long long)take->max, (unsigned long long)take->resets);
}

START_TEST(windows_and_refusal_words)
{
	struct pg_audit_take t[2] = { take_of("a", CENTURY, 5), take_of("b", 3600, 1) };
	struct pg_audit_record r;
	pg_audit *a = open_log();
	char reason[256];
	uint64_t now = (uint64_t)time(NULL);
	int refused;

	t_record(&r, "two");
	ck_assert_int_eq(pg_audit_append_counted(a, &r, t, 2, words, "limit b", &refused, reason,
	                                         sizeof reason, NULL), 0);
	ck_assert_int_eq(refused, -1);
	ck_assert_uint_eq(t[0].window, now - now % CENTURY);
	ck_assert_uint_eq(t[0].resets, t[0].window + CENTURY);
	ck_assert_uint_eq(t[1].window % 3600, 0);
	/* b is at its max (unless its hour just turned): nothing is taken, a
	 * is not either. */
	ck_assert_int_eq(pg_audit_append_counted(a, &r, t, 2, words, "limit b", &refused, reason,
	                                         sizeof reason, NULL), 0);
	if (refused == 1) {
		char want[128];

		snprintf(want, sizeof want, "limit b: all 1 used, resets at %llu",
		         (unsigned long long)t[1].resets);
		ck_assert_str_eq(reason, want);
		ck_assert_uint_eq(read_count(a, "a", CENTURY), 1);
	}
	/* Unlimited counters count and never refuse. */
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(take_one(a, "seen", 0, PG_AUDIT_UNLIMITED, NULL), 1);
	ck_assert_uint_eq(read_count(a, "seen", 0), 10);
	pg_audit_close(a);
}
END_TEST

enum { PROCS = 4, THREADS = 3, TRIES = 60, MAX = 100 };

struct racer {
	pg_audit *audit;
	int taken, refused, failed;
};

static void *
race(void *arg)
{
	struct racer *r = arg;

	for (int i = 0; i < TRIES; i++) {
		switch (take_one(r->audit, "grant/last-ones", 0, MAX, NULL)) {
		case 1: r->taken++; break;
		case 0: r->refused++; break;
		default: r->failed++; break;
		}
	}
	return NULL;
}

/* Exit status: how many this process took (< 256). */
static int
race_process(void)
{
	struct racer r[THREADS];
	pthread_t t[THREADS];
	pg_audit *a = open_log();
	int taken = 0;

	for (int i = 0; i < THREADS; i++) {
		r[i] = (struct racer){ .audit = a };
		pthread_create(&t[i], NULL, race, &r[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		if (r[i].failed != 0)
			return 255;
		taken += r[i].taken;
	}
	pg_audit_close(a);
	return taken;
}

START_TEST(racing_processes_take_exactly_max)
{
	pid_t pids[PROCS];
	size_t allowed, denied;
	int status, taken = 0;
	pg_audit *a;

	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		ck_assert_int_ge(pids[p], 0);
		if (pids[p] == 0)
			_exit(race_process());
	}
	for (int p = 0; p < PROCS; p++) {
		ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) != 255);
		taken += WEXITSTATUS(status);
	}
	ck_assert_int_eq(taken, MAX);
	count_records(&allowed, &denied);
	ck_assert_uint_eq(allowed, MAX);
	ck_assert_uint_eq(denied, PROCS * THREADS * TRIES - MAX);
	a = open_log();
	ck_assert_uint_eq(read_count(a, "grant/last-ones", 0), MAX);
	pg_audit_close(a);
	assert_intact();
}
END_TEST

static void
copy_file(const char *from, const char *to)
{
	size_t len;
	char *data = t_read(from, &len);

	ck_assert_ptr_nonnull(data);
	t_write(to, data, len);
	free(data);
}

START_TEST(the_log_is_the_truth)
{
	static const char torn[] = "{\"seq\":99,\"time\":\"2026-12-04T06:00:00.000000Z\",\"counted\":[{\"id\":\"";
	char *old = t_path(dir, "counters.old");
	pg_audit *a = open_log();
	uint64_t used = 0;
	size_t len;
	char *data;

	ck_assert_int_eq(take_one(a, "c", 0, 100, NULL), 1);
	ck_assert_int_eq(take_one(a, "c", 0, 100, NULL), 1);
	copy_file(counters_path, old);
	ck_assert_int_eq(take_one(a, "c", 0, 100, NULL), 1);
	pg_audit_close(a);

	/* A writer died after its record, before the cache: the cache is
	 * behind, and caught up from the log. */
	copy_file(old, counters_path);
	a = open_log();
	ck_assert_int_eq(take_one(a, "c", 0, 100, &used), 1);
	ck_assert_uint_eq(used, 4);
	pg_audit_close(a);

	/* A torn or garbage cache is rebuilt from the log. */
	data = t_read(counters_path, &len);
	memset(data + 4096, 0x5a, 20);
	t_write(counters_path, data, len);
	free(data);
	a = open_log();
	ck_assert_int_eq(take_one(a, "c", 0, 100, &used), 1);
	ck_assert_uint_eq(used, 5);
	pg_audit_close(a);
	t_write(counters_path, "junk", 4);
	a = open_log();
	ck_assert_uint_eq(read_count(a, "c", 0), 5);
	ck_assert_int_eq(take_one(a, "c", 0, 100, &used), 1);
	ck_assert_uint_eq(used, 6);
	pg_audit_close(a);

	/* Lost: rebuilt. */
	ck_assert_int_eq(unlink(counters_path), 0);
	a = open_log();
	ck_assert_int_eq(take_one(a, "c", 0, 100, &used), 1);
	ck_assert_uint_eq(used, 7);
	pg_audit_close(a);

	/* A record cut short by a crash took nothing (its use never left:
	 * the record was not whole), even though it names a use. */
	t_append(log_path, torn, strlen(torn));
	ck_assert_int_eq(unlink(counters_path), 0);
	a = open_log();
	ck_assert_int_eq(take_one(a, "c", 0, 100, &used), 1);
	ck_assert_uint_eq(used, 8);
	pg_audit_close(a);
	assert_intact();
	free(old);
}
END_TEST

START_TEST(rotation_carries_the_counters)
{
	char kept[4096], err[256], *data;
	pg_audit *a = open_log();
	uint64_t used = 0;
	size_t len;

	ck_assert_int_eq(take_one(a, "r", 0, 3, NULL), 1);
	ck_assert_int_eq(take_one(a, "r", 0, 3, NULL), 1);
	ck_assert_int_eq(take_one(a, "w", CENTURY, 9, NULL), 1);
	ck_assert_int_eq(pg_audit_rotate(a, "test", kept, err, sizeof err), 0);
	pg_audit_close(a);
	data = t_read(log_path, &len);
	ck_assert_ptr_nonnull(strstr(data, "\"event\":\"continue\""));
	ck_assert_ptr_nonnull(strstr(data, ",\"counters\":[{\"id\":\""));
	free(data);
	/* The new file alone knows them, even with LOG.counters gone. */
	unlink(counters_path);
	a = open_log();
	ck_assert_int_eq(take_one(a, "r", 0, 3, &used), 1);
	ck_assert_uint_eq(used, 3);
	ck_assert_int_eq(take_one(a, "r", 0, 3, &used), 0);
	ck_assert_int_eq(take_one(a, "w", CENTURY, 9, &used), 1);
	ck_assert_uint_eq(used, 2);
	/* A rotation without LOG.counters counts from the closed file. */
	unlink(counters_path);
	ck_assert_int_eq(pg_audit_rotate(a, "test", kept, err, sizeof err), 0);
	ck_assert_uint_eq(read_count(a, "w", CENTURY), 2);
	ck_assert_uint_eq(read_count(a, "r", 0), 3);
	pg_audit_close(a);
}
END_TEST

/* Whoever may write LOG.counters but not the log could give uses back: such
 * a file is not used, and counted uses are refused; an empty one made
 * beforehand (as an operator makes it beside a shared log) is filled from
 * the log. */
START_TEST(counters_file_must_be_trusted)
{
	pg_audit *a = open_log();
	uint64_t used = 0;

	ck_assert_int_eq(take_one(a, "t", 0, 10, NULL), 1);
	pg_audit_close(a);
	ck_assert_int_eq(chmod(counters_path, 0666), 0);
	a = open_log();
	ck_assert_int_eq(take_one(a, "t", 0, 10, NULL), -1);
	pg_audit_close(a);
	ck_assert_int_eq(unlink(counters_path), 0);
	t_write(counters_path, "", 0);
	ck_assert_int_eq(chmod(counters_path, 0640), 0);
	a = open_log();
	ck_assert_int_eq(take_one(a, "t", 0, 10, &used), 1);
	ck_assert_uint_eq(used, 2);
	pg_audit_close(a);
}
END_TEST

static void
taker_loop(void)
{
	pg_audit *a = open_log();

	for (;;) {
		if (take_one(a, "k", 0, PG_AUDIT_UNLIMITED, NULL) != 1)
			_exit(2);
	}
}

/* Killed anywhere (in the record's write, between the record and the
 * cache, in the cache's write): the count is the number of whole records
 * that took a use, no more, no less. */
START_TEST(killed_takers)
{
	size_t allowed, denied;
	struct stat st;
	pg_audit *a;
	int status;

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (int round = 0; round < 12; round++) {
		pid_t pid = fork();

		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			taker_loop();
		do {
			usleep(1000);
		} while (stat(log_path, &st) != 0 || st.st_size == 0);
		usleep((useconds_t)(rand() % 20000));
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert(WIFSIGNALED(status));
		a = open_log();
		count_records(&allowed, &denied);
		ck_assert_uint_eq(read_count(a, "k", 0), allowed);
		pg_audit_close(a);
	}
	/* The last taker may have died mid-record, leaving a torn line that
	 * only the next writer recovers (as each round's taker recovered the
	 * one before): one more whole take, then the chain verifies. */
	a = open_log();
	ck_assert_int_eq(take_one(a, "k", 0, PG_AUDIT_UNLIMITED, NULL), 1);
	count_records(&allowed, &denied);
	ck_assert_uint_eq(read_count(a, "k", 0), allowed);
	pg_audit_close(a);
	assert_intact();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("audit-count");
	TCase *tc = tcase_create("count");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, takes_until_max_then_refuses);
	tcase_add_test(tc, windows_and_refusal_words);
	tcase_add_test(tc, racing_processes_take_exactly_max);
	tcase_add_test(tc, the_log_is_the_truth);
	tcase_add_test(tc, rotation_carries_the_counters);
	tcase_add_test(tc, killed_takers);
	tcase_add_test(tc, counters_file_must_be_trusted);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
