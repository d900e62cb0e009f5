/* SPDX-License-Identifier: Apache-2.0
 *
 * The audit log under load and under crashes: 4 processes x 4 threads x
 * 200 appends to one file give exactly 3200 whole records in one intact
 * chain; writers killed with SIGKILL mid-stream leave a log that the next
 * writer continues and verify accepts.
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

enum { PROCS = 4, THREADS = 4, PER_THREAD = 200 };

static char *dir;
static char *log_path;

static void
setup(void)
{
	dir = t_tempdir();
	log_path = t_path(dir, "audit.jsonl");
}

static void
teardown(void)
{
	free(log_path);
	t_rmdir(dir);
}

struct worker {
	pg_audit *audit;
	int proc, thread;
	int failures;
};

static void *
work(void *arg)
{
	struct worker *w = arg;
	struct pg_audit_record r;
	char rule[64];
	uint64_t seq;

	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(rule, sizeof rule, "p%d-t%d-i%d", w->proc, w->thread, i);
		t_record(&r, rule);
		if (pg_audit_append(w->audit, &r, &seq) != 0)
			w->failures++;
	}
	return NULL;
}

static int
run_process(int proc)
{
	struct worker w[THREADS];
	pthread_t t[THREADS];
	char err[256];
	int failures = 0;
	pg_audit *a;

	/* Each process has its own handle (its own open file description,
	 * so flock excludes the others); its threads share it. */
	a = pg_audit_open(log_path, false, false, err, sizeof err);
	if (a == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .audit = a, .proc = proc, .thread = i };
		if (pthread_create(&t[i], NULL, work, &w[i]) != 0)
			return 1;
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		failures += w[i].failures;
	}
	pg_audit_close(a);
	return failures == 0 ? 0 : 1;
}

START_TEST(processes_and_threads)
{
	enum { TOTAL = PROCS * THREADS * PER_THREAD };
	static bool seen[PROCS][THREADS][PER_THREAD];
	struct pg_chain chain;
	char *data, *line, *nl, err[128];
	pid_t pids[PROCS];
	size_t len, n = 0;
	int status;

	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		ck_assert_int_ge(pids[p], 0);
		if (pids[p] == 0)
			_exit(run_process(p));
	}
	for (int p = 0; p < PROCS; p++) {
		ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}

	ck_assert_int_eq(t_independent_chain(log_path), TOTAL);
	pg_chain_init(&chain);
	ck_assert_int_eq(pg_audit_verify_path(log_path, &chain), 0);
	ck_assert_msg(chain.problem == PG_CHAIN_OK, "%s", chain.message);
	ck_assert_uint_eq(chain.records, TOTAL);
	ck_assert_uint_eq(chain.first_seq, 1);
	ck_assert_uint_eq(chain.last_seq, TOTAL);

	/* Every append is there exactly once, whole. */
	data = t_read(log_path, &len);
	for (line = data; line < data + len; line = nl + 1) {
		json_t *rec;
		int p, t, i;

		nl = memchr(line, '\n', (size_t)(data + len - line));
		ck_assert_ptr_nonnull(nl);
		rec = pg_json_parse(line, (size_t)(nl - line), err, sizeof err);
		ck_assert_msg(rec != NULL, "%s", err);
		ck_assert_int_eq(sscanf(pg_json_get_string(rec, "rule"), "p%d-t%d-i%d", &p, &t, &i), 3);
		ck_assert(!seen[p][t][i]);
		seen[p][t][i] = true;
		json_decref(rec);
		n++;
	}
	ck_assert_uint_eq(n, TOTAL);
	free(data);
}
END_TEST

/* Big records make a write span several pages, so a kill can land inside
 * one. */
static void
writer_loop(void)
{
	static char reason[20000];
	struct pg_audit_record r;
	char err[256];
	uint64_t seq;
	pg_audit *a;

	memset(reason, 'r', sizeof reason - 1);
	a = pg_audit_open(log_path, false, false, err, sizeof err);
	if (a == NULL)
		_exit(1);
	t_record(&r, "looping");
	r.reason = reason;
	for (;;) {
		if (pg_audit_append(a, &r, &seq) != 0)
			_exit(2);
	}
}

static int notes;

static void
count_note(void *ctx, const char *msg)
{
	(void)ctx;
	(void)msg;
	notes++;
}

START_TEST(killed_writers)
{
	static const char partial[] = "{\"seq\":99,\"time\":\"2026-11-";
	struct pg_audit_record r;
	struct pg_chain chain;
	char err[256];
	struct stat st;
	uint64_t seq;
	pg_audit *a;
	int status;

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (int round = 0; round < 15; round++) {
		pid_t pid = fork();

		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			writer_loop();
		/* Let it write a while, then kill it at a random moment. */
		do {
			usleep(1000);
		} while (stat(log_path, &st) != 0 || st.st_size == 0);
		usleep((useconds_t)(rand() % 20000));
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

		/* A new writer continues the chain, whatever was left. */
		a = pg_audit_open(log_path, false, false, err, sizeof err);
		ck_assert_msg(a != NULL, "%s", err);
		t_record(&r, "after-kill");
		ck_assert_int_eq(pg_audit_append(a, &r, &seq), 0);
		pg_audit_close(a);
	}
	/* And one truncation for certain. */
	t_append(log_path, partial, sizeof partial - 1);
	a = pg_audit_open(log_path, false, false, err, sizeof err);
	ck_assert_msg(a != NULL, "%s", err);
	t_record(&r, "after-partial");
	ck_assert_int_eq(pg_audit_append(a, &r, &seq), 0);
	pg_audit_close(a);

	pg_chain_init(&chain);
	chain.note = count_note;
	ck_assert_int_eq(pg_audit_verify_path(log_path, &chain), 0);
	ck_assert_msg(chain.problem == PG_CHAIN_OK, "%s", chain.message);
	ck_assert_int_ge(notes, 1);
	ck_assert_uint_eq(chain.last_seq, seq);
	ck_assert_uint_eq(chain.records, seq);
	fprintf(stderr, "killed_writers: %llu records, %d recovered truncation(s)\n",
	        (unsigned long long)seq, notes);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("audit-stress");
	TCase *tc = tcase_create("stress");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, processes_and_threads);
	tcase_add_test(tc, killed_writers);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
