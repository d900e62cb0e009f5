/* SPDX-License-Identifier: Apache-2.0
 *
 * The audit writer against real files: the chain (recomputed independently
 * with OpenSSL), the record format, crash recovery, the file size limit,
 * open errors, rotation, a handle inherited across fork, and the shared
 * fdatasync (between threads, and between processes through LOG.sync).
 */
#include "p11gate/audit.h"
#include "p11gate/common.h"
#include "audit_chain.h"
#include "audit_internal.h"
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/evp.h>

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

static pg_audit *
open_log(bool sync)
{
	char err[512];
	pg_audit *a = pg_audit_open(log_path, sync, false, err, sizeof err);

	ck_assert_msg(a != NULL, "%s", err);
	return a;
}

static uint64_t
append_one(pg_audit *a, const char *rule)
{
	struct pg_audit_record r;
	uint64_t seq = 0;
	int rc;

	t_record(&r, rule);
	rc = pg_audit_append(a, &r, &seq);
	ck_assert_msg(rc == 0, "append: %s", strerror(rc));
	return seq;
}

/* verify's verdict on log_path, with notes counted. */
struct verdict {
	struct pg_chain chain;
	int notes;
	char last_note[512];
};

static void
count_note(void *ctx, const char *msg)
{
	struct verdict *v = ctx;

	v->notes++;
	snprintf(v->last_note, sizeof v->last_note, "%s", msg);
}

static void
verify(struct verdict *v, const char *path)
{
	memset(v, 0, sizeof *v);
	pg_chain_init(&v->chain);
	v->chain.note = count_note;
	v->chain.note_ctx = v;
	ck_assert_int_eq(pg_audit_verify_path(path, &v->chain), 0);
}

/* Line n (1-based) of path as a parsed record. */
static json_t *
line_record(const char *path, size_t n, char **raw)
{
	size_t len;
	char *data = t_read(path, &len), *line = data, *nl, err[200];
	json_t *rec;

	ck_assert_ptr_nonnull(data);
	for (size_t i = 1; i < n; i++) {
		line = strchr(line, '\n');
		ck_assert_ptr_nonnull(line);
		line++;
	}
	nl = strchr(line, '\n');
	ck_assert_ptr_nonnull(nl);
	rec = pg_json_parse(line, (size_t)(nl - line), err, sizeof err);
	ck_assert_msg(rec != NULL, "line %zu: %s", n, err);
	if (raw != NULL)
		*raw = strndup(line, (size_t)(nl - line));
	free(data);
	return rec;
}

static void
sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int md_len;

	EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL);
	pg_hex_encode(md, 32, out);
}

START_TEST(append_chains_records)
{
	pg_audit *a = open_log(false);
	struct pg_audit_record r;
	struct verdict v;
	uint64_t seq;

	for (uint64_t i = 1; i <= 40; i++)
		ck_assert_uint_eq(append_one(a, "rule-a"), i);
	t_record(&r, NULL);
	r.allow = false;
	ck_assert_int_eq(pg_audit_append(a, &r, &seq), 0);
	ck_assert_uint_eq(seq, 41);
	memset(&r, 0, sizeof r);
	r.event = PG_AUDIT_RESULT;
	r.ref = 40;
	r.has_rv = true;
	r.rv = CKR_OK;
	ck_assert_int_eq(pg_audit_append(a, &r, &seq), 0);
	ck_assert_uint_eq(seq, 42);
	pg_audit_close(a);

	ck_assert_int_eq(t_independent_chain(log_path), 42);
	verify(&v, log_path);
	ck_assert_msg(v.chain.problem == PG_CHAIN_OK, "%s", v.chain.message);
	ck_assert_uint_eq(v.chain.records, 42);
	ck_assert_uint_eq(v.chain.allow, 40);
	ck_assert_uint_eq(v.chain.deny, 1);
	ck_assert_uint_eq(v.chain.results, 1);
	ck_assert_int_eq(v.notes, 0);

	/* A second handle (another process, in effect) continues the chain
	 * from the file, not from a cache. */
	a = open_log(false);
	ck_assert_uint_eq(append_one(a, "rule-b"), 43);
	pg_audit_close(a);
	ck_assert_int_eq(t_independent_chain(log_path), 43);
}
END_TEST

static void
assert_key_order(const char *line, const char *const *keys)
{
	const char *at = line, *p;
	char quoted[64];

	for (size_t i = 0; keys[i] != NULL; i++) {
		snprintf(quoted, sizeof quoted, "\"%s\":", keys[i]);
		p = strstr(at, quoted);
		ck_assert_msg(p != NULL, "key %s missing or out of order in %s", keys[i], line);
		at = p + strlen(quoted);
	}
}

START_TEST(record_format)
{
	static const char *const order[] = {
		"seq", "time", "host", "event", "decision", "rule", "reason", "function", "operation",
		"key", "key_uri", "public_key_sha256", "token", "mechanism", "data_sha256", "data",
		"caller", "policy_sha256", "prev", NULL,
	};
	static const char *const result_order[] = {
		"seq", "time", "host", "event", "ref", "rv", "signature_sha256", "prev", NULL,
	};
	gid_t groups[] = { 1001, 27 };
	char *env[] = { "PKCS11_PIN=secret-pin-1234", NULL };
	struct pg_caller caller = {
		.source = PG_ID_PROCESS,
		.uid_trust = PG_ID_ASSERTED, .uid = 1001, .user = "ci",
		.gid_trust = PG_ID_ATTESTED, .gid = 1001,
		.groups_trust = PG_ID_ASSERTED, .groups = groups, .n_groups = 2,
		.pid_trust = PG_ID_ASSERTED, .pid = 4242,
		.exe_trust = PG_ID_ASSERTED, .exe = "/usr/bin/pkcs11-tool",
		.unit_trust = PG_ID_UNAVAILABLE,
		.exe_hashed = true, .exe_hash_ok = true, .exe_sha256 = { 0xab, 0xcd },
		.env_trust = PG_ID_ASSERTED, .env = env,
	};
	unsigned char sig[32] = { 0x51 }, long_data[65];
	const json_t *c, *list;
	char *raw, host[256], want_time[8];
	pg_audit *a = open_log(false);
	struct pg_audit_record r;
	json_t *rec;
	uint64_t seq;

	t_record(&r, "ci-signs-in-office-hours");
	r.caller = &caller;
	ck_assert_int_eq(pg_audit_append(a, &r, &seq), 0);
	/* Unknown mechanism and return value: written in hex. */
	memset(&r, 0, sizeof r);
	r.event = PG_AUDIT_RESULT;
	r.ref = 1;
	r.has_rv = true;
	r.rv = 0x80000123UL;
	r.signature_sha256 = sig;
	ck_assert_int_eq(pg_audit_append(a, &r, &seq), 0);
	t_record(&r, "x");
	r.mechanism = 0x80001234UL;
	memset(long_data, 7, sizeof long_data);
	r.data = long_data;
	r.data_len = 65;        /* over 64 bytes: only the hash is written */
	r.token_label = "bad\xff\x01label";
	r.token_serial = NULL;
	ck_assert_int_eq(pg_audit_append(a, &r, &seq), 0);
	memset(&r, 0, sizeof r);
	r.event = PG_AUDIT_POLICY;
	r.reason = "policy loaded";
	ck_assert_int_eq(pg_audit_append(a, &r, &seq), 0);
	pg_audit_close(a);

	rec = line_record(log_path, 1, &raw);
	assert_key_order(raw, order);
	ck_assert_ptr_null(strstr(raw, "secret-pin"));         /* env is never logged */
	ck_assert_ptr_null(strstr(raw, "recovered"));
	ck_assert_str_eq(pg_json_get_string(rec, "event"), "decision");
	ck_assert_str_eq(pg_json_get_string(rec, "decision"), "allow");
	ck_assert_str_eq(pg_json_get_string(rec, "mechanism"), "CKM_RSA_PKCS");
	ck_assert_str_eq(pg_json_get_string(rec, "data"), "0102030405060708"
	                 "000000000000000000000000000000000000000000000000");
	ck_assert_str_eq(pg_json_get_string(rec, "prev"),
	                 "0000000000000000000000000000000000000000000000000000000000000000");
	gethostname(host, sizeof host);
	ck_assert_str_eq(pg_json_get_string(rec, "host"), host);
	/* 2026-11-23T17:45:58.123456Z */
	ck_assert_uint_eq(strlen(pg_json_get_string(rec, "time")), 27);
	snprintf(want_time, sizeof want_time, "%.1s", pg_json_get_string(rec, "time") + 26);
	ck_assert_str_eq(want_time, "Z");
	ck_assert_str_eq(pg_json_get_string(json_object_get(rec, "token"), "label"), "release");
	ck_assert_str_eq(pg_json_get_string(json_object_get(rec, "token"), "serial"), "4f1a");
	c = json_object_get(rec, "caller");
	ck_assert_str_eq(pg_json_get_string(c, "source"), "process");
	ck_assert_int_eq(json_integer_value(json_object_get(c, "uid")), 1001);
	ck_assert_str_eq(pg_json_get_string(c, "user"), "ci");
	ck_assert_uint_eq(json_array_size(json_object_get(c, "groups")), 2);
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(c, "groups"), 1)), 27);
	ck_assert_int_eq(json_integer_value(json_object_get(c, "pid")), 4242);
	ck_assert_str_eq(pg_json_get_string(c, "exe"), "/usr/bin/pkcs11-tool");
	ck_assert_str_eq(pg_json_get_string(c, "exe_sha256"),
	                 "abcd000000000000000000000000000000000000000000000000000000000000");
	ck_assert_ptr_null(json_object_get(c, "unit"));
	ck_assert_ptr_null(json_object_get(c, "env"));
	list = json_object_get(c, "attested");
	ck_assert_uint_eq(json_array_size(list), 1);
	ck_assert_str_eq(json_string_value(json_array_get(list, 0)), "gid");
	list = json_object_get(c, "asserted");
	ck_assert_uint_eq(json_array_size(list), 5);
	ck_assert_str_eq(json_string_value(json_array_get(list, 0)), "uid");
	ck_assert_str_eq(json_string_value(json_array_get(list, 1)), "user");
	list = json_object_get(c, "unavailable");
	ck_assert_uint_eq(json_array_size(list), 1);
	ck_assert_str_eq(json_string_value(json_array_get(list, 0)), "unit");
	json_decref(rec);
	free(raw);

	rec = line_record(log_path, 2, &raw);
	assert_key_order(raw, result_order);
	ck_assert_ptr_null(json_object_get(rec, "decision"));
	ck_assert_int_eq(json_integer_value(json_object_get(rec, "ref")), 1);
	ck_assert_str_eq(pg_json_get_string(rec, "rv"), "0x80000123");
	json_decref(rec);
	free(raw);

	rec = line_record(log_path, 3, &raw);
	ck_assert_str_eq(pg_json_get_string(rec, "mechanism"), "0x80001234");
	ck_assert_ptr_null(json_object_get(rec, "data"));
	ck_assert_ptr_nonnull(json_object_get(rec, "data_sha256"));
	ck_assert_ptr_null(json_object_get(json_object_get(rec, "token"), "serial"));
	/* The raw line escapes the bad bytes; read back they are U+00FF, U+0001. */
	ck_assert_ptr_nonnull(strstr(raw, "\"label\":\"bad\\u00ff\\u0001label\""));
	ck_assert_str_eq(pg_json_get_string(json_object_get(rec, "token"), "label"),
	                 "bad\xc3\xbf\x01label");
	json_decref(rec);
	free(raw);

	rec = line_record(log_path, 4, NULL);
	ck_assert_str_eq(pg_json_get_string(rec, "event"), "policy");
	ck_assert_ptr_null(json_object_get(rec, "decision"));
	ck_assert_ptr_null(json_object_get(rec, "mechanism"));
	json_decref(rec);
	ck_assert_int_eq(t_independent_chain(log_path), 4);
}
END_TEST

/* A writer killed mid-write leaves a line without a newline: the next
 * writer closes it, chains to its bytes and marks its record. */
START_TEST(recovers_partial_line)
{
	static const char partial[] = "{\"seq\":4,\"time\":\"2026-11-23T17:4";
	char prev_hex[65], *raw;
	json_t *rec;
	struct verdict v;
	pg_audit *a = open_log(false);

	for (int i = 0; i < 3; i++)
		append_one(a, "r");
	t_append(log_path, partial, sizeof partial - 1);
	ck_assert_uint_eq(append_one(a, "after-crash"), 4);
	pg_audit_close(a);

	rec = line_record(log_path, 5, &raw);
	ck_assert_str_eq(pg_json_get_string(rec, "recovered"), "truncated");
	ck_assert_int_eq(json_integer_value(json_object_get(rec, "seq")), 4);
	sha256_hex(partial, sizeof partial - 1, prev_hex);
	ck_assert_str_eq(pg_json_get_string(rec, "prev"), prev_hex);
	ck_assert_ptr_nonnull(strstr(raw, ",\"recovered\":\"truncated\",\"prev\":"));
	json_decref(rec);
	free(raw);

	verify(&v, log_path);
	ck_assert_msg(v.chain.problem == PG_CHAIN_OK, "%s", v.chain.message);
	ck_assert_uint_eq(v.chain.records, 4);
	ck_assert_int_eq(v.notes, 1);
	ck_assert_str_eq(v.last_note, "line 4: incomplete record (a writer was killed mid-write); "
	                 "line 5 closed it and continues the chain");
	/* The chain goes on normally afterwards. */
	a = open_log(false);
	ck_assert_uint_eq(append_one(a, "r"), 5);
	pg_audit_close(a);
	verify(&v, log_path);
	ck_assert_msg(v.chain.problem == PG_CHAIN_OK, "%s", v.chain.message);
}
END_TEST

START_TEST(recovers_line_cut_before_newline)
{
	struct verdict v;
	json_t *rec;
	size_t len;
	char *data;
	pg_audit *a = open_log(false);

	for (int i = 0; i < 3; i++)
		append_one(a, "r");
	pg_audit_close(a);
	data = t_read(log_path, &len);
	t_write(log_path, data, len - 1);       /* only the newline is lost */
	free(data);
	a = open_log(false);
	ck_assert_uint_eq(append_one(a, "r"), 4);
	pg_audit_close(a);
	rec = line_record(log_path, 4, NULL);
	ck_assert_str_eq(pg_json_get_string(rec, "recovered"), "truncated");
	json_decref(rec);
	/* Here the chain is exactly what an uninterrupted writer makes. */
	ck_assert_int_eq(t_independent_chain(log_path), 4);
	verify(&v, log_path);
	ck_assert_msg(v.chain.problem == PG_CHAIN_OK, "%s", v.chain.message);
	ck_assert_int_eq(v.notes, 1);
	ck_assert_str_eq(v.last_note, "line 4: recovered after an interrupted write (line 3 had lost "
	                 "its newline)");
}
END_TEST

START_TEST(recovers_at_file_start_and_after_garbage)
{
	struct verdict v;
	pg_audit *a;

	t_write(log_path, "{\"se", 4);
	a = open_log(false);
	ck_assert_uint_eq(append_one(a, "r"), 1);
	ck_assert_uint_eq(append_one(a, "r"), 2);
	pg_audit_close(a);
	verify(&v, log_path);
	ck_assert_msg(v.chain.problem == PG_CHAIN_OK, "%s", v.chain.message);
	ck_assert_uint_eq(v.chain.records, 2);
	ck_assert_int_eq(v.notes, 1);

	/* Two broken lines (a crash during a recovery): still continued. */
	t_append(log_path, "{\"seq\":3,\"ti\n{\"seq\":3,", 22);
	a = open_log(false);
	ck_assert_uint_eq(append_one(a, "r"), 3);
	pg_audit_close(a);
	verify(&v, log_path);
	ck_assert_msg(v.chain.problem == PG_CHAIN_OK, "%s", v.chain.message);
	ck_assert_int_eq(v.notes, 2);
	ck_assert_str_eq(v.last_note, "lines 4-5: incomplete records (writers killed mid-write); "
	                 "line 6 closed them and continues the chain");
}
END_TEST

START_TEST(refuses_log_without_records)
{
	char err[512], *junk;
	pg_audit *a;

	/* 2 MiB of lines that are no records: nothing to continue from. */
	junk = malloc(2 * 1024 * 1024);
	for (size_t i = 0; i < 2 * 1024 * 1024; i++)
		junk[i] = i % 100 == 99 ? '\n' : 'x';
	t_write(log_path, junk, 2 * 1024 * 1024);
	free(junk);
	a = pg_audit_open(log_path, false, false, err, sizeof err);
	ck_assert_ptr_null(a);
	ck_assert_msg(strstr(err, "no audit record in the last 1048576 bytes") != NULL &&
	              strstr(err, "move it aside") != NULL, "%s", err);
}
END_TEST

START_TEST(file_size_limit_refuses_without_signal)
{
	size_t before_len, after_len;
	char *before, *after;
	int status;
	pid_t pid;

	pg_audit *a = open_log(false);
	for (int i = 0; i < 3; i++)
		append_one(a, "r");
	pg_audit_close(a);
	before = t_read(log_path, &before_len);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit rl = { .rlim_cur = before_len + 100, .rlim_max = RLIM_INFINITY };
		struct pg_audit_record r;
		char err[256];
		uint64_t seq;
		int rc;

		a = pg_audit_open(log_path, false, false, err, sizeof err);
		if (a == NULL)
			_exit(11);
		/* Read per record, or once (behind p11-kit server): at the
		 * first record, after the log was opened. */
		pg_audit_set_limit_fixed(a, _i == 1);
		getrlimit(RLIMIT_FSIZE, &rl);
		rl.rlim_cur = before_len + 100;         /* a record is longer than 100 bytes */
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
			_exit(10);
		t_record(&r, "too-big");
		rc = pg_audit_append(a, &r, &seq);
		_exit(rc == EFBIG ? 0 : 12);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child killed by signal %d", WTERMSIG(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	after = t_read(log_path, &after_len);
	ck_assert_uint_eq(after_len, before_len);
	ck_assert(memcmp(before, after, before_len) == 0);
	free(before);
	free(after);
}
END_TEST

START_TEST(open_errors_name_the_fix)
{
	char err[512], *path;
	pg_audit *a;

	path = t_path(dir, "missing/audit.jsonl");
	a = pg_audit_open(path, true, false, err, sizeof err);
	ck_assert_ptr_null(a);
	ck_assert_msg(strstr(err, "the directory '") != NULL && strstr(err, "/missing' does not exist")
	              != NULL && strstr(err, "change audit.file") != NULL, "%s", err);
	free(path);

	a = pg_audit_open("/dev/null", true, false, err, sizeof err);
	ck_assert_ptr_null(a);
	ck_assert_msg(strstr(err, "is not a regular file") != NULL, "%s", err);

	path = t_path(dir, "fifo");
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	a = pg_audit_open(path, true, false, err, sizeof err);
	ck_assert_ptr_null(a);
	ck_assert_msg(strstr(err, "is not a regular file") != NULL, "%s", err);
	free(path);

	a = pg_audit_open("", true, false, err, sizeof err);
	ck_assert_ptr_null(a);
	ck_assert_msg(strstr(err, "audit.file") != NULL, "%s", err);
}
END_TEST

/* Root is not refused by file modes: drop to nobody in a child. */
START_TEST(open_permission_denied)
{
	int status;
	pid_t pid;

	t_write(log_path, "", 0);
	ck_assert_int_eq(chmod(log_path, 0600), 0);
	ck_assert_int_eq(chmod(dir, 0755), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char err[512];
		pg_audit *a;

		if (getuid() == 0) {
			if (setgid(65534) != 0 || setuid(65534) != 0)
				_exit(10);
		} else if (chmod(log_path, 0) != 0) {
			_exit(11);
		}
		a = pg_audit_open(log_path, true, false, err, sizeof err);
		if (a != NULL)
			_exit(12);
		_exit(strstr(err, "permission denied") != NULL && strstr(err, "owner and mode") != NULL
		      ? 0 : 13);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* Rotation by renaming: the writer notices (within a second) that the path
 * names a new file and starts it (from zero); records already written stay
 * in the old one. */
START_TEST(follows_rotation)
{
	char *old = t_path(dir, "audit.jsonl.1"), *fresh = t_path(dir, "audit.jsonl.new");
	struct verdict v;
	pg_audit *a = open_log(true);
	uint64_t seq;

	for (int i = 0; i < 5; i++)
		seq = append_one(a, "before");
	ck_assert_int_eq(pg_audit_sync(a, seq), 0);
	ck_assert_int_eq(rename(log_path, old), 0);
	usleep(1100 * 1000);
	for (uint64_t i = 1; i <= 3; i++)
		ck_assert_uint_eq(append_one(a, "after"), i);
	/* seq restarted: the new file's records need their own sync. */
	unsigned long before = pg_audit_datasync_count(a);
	ck_assert_int_eq(pg_audit_sync(a, 3), 0);
	ck_assert_uint_gt(pg_audit_datasync_count(a), before);
	ck_assert_int_eq(t_independent_chain(old), 5);
	ck_assert_int_eq(t_independent_chain(log_path), 3);

	/* The atomic way: link the old name, rename a fresh file over it. */
	ck_assert_int_eq(unlink(old), 0);
	ck_assert_int_eq(link(log_path, old), 0);
	t_write(fresh, "", 0);
	ck_assert_int_eq(rename(fresh, log_path), 0);
	usleep(1100 * 1000);
	ck_assert_uint_eq(append_one(a, "third"), 1);
	pg_audit_close(a);
	ck_assert_int_eq(t_independent_chain(old), 3);
	ck_assert_int_eq(t_independent_chain(log_path), 1);
	verify(&v, old);
	ck_assert(v.chain.problem == PG_CHAIN_OK);
	free(old);
	free(fresh);
}
END_TEST

/* This process's stderr goes to a file from here on (each test runs in its
 * own process); returns the file's path. */
static char *
capture_stderr(void)
{
	char *path = t_path(dir, "stderr");
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ne(dup2(fileno(f), STDERR_FILENO), -1);
	fclose(f);
	return path;
}

static off_t
file_size(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

static size_t
count_in(const char *path, const char *needle)
{
	size_t len, n = 0;
	char *data = t_read(path, &len);

	for (const char *p = data; p != NULL && (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(data);
	return n;
}

/* Another writer's records, its torn line (a crash) and its write cut back
 * after a full disk only ever leave the file longer than this writer saw
 * it: none of that is tampering. */
START_TEST(other_writers_are_not_tampering)
{
	static const char partial[] = "{\"seq\":6,\"time\":\"2026-11-23T17:4";
	char *err = capture_stderr();
	pg_audit *a = open_log(false), *b = open_log(false);
	struct verdict v;
	off_t size;

	append_one(a, "a");
	append_one(b, "b");
	append_one(b, "b");
	append_one(a, "a");
	append_one(b, "b");
	t_append(log_path, partial, sizeof partial - 1);       /* b killed mid-write */
	ck_assert_uint_eq(append_one(a, "a"), 6);
	size = file_size(log_path);
	t_append(log_path, "{\"seq\":7,\"ti", 12);              /* b's short write... */
	ck_assert_int_eq(truncate(log_path, size), 0);          /* ...cut back */
	append_one(b, "b");
	append_one(a, "a");
	pg_audit_close(a);
	pg_audit_close(b);
	ck_assert_uint_eq(count_in(log_path, "\"event\":\"tamper\""), 0);
	ck_assert_uint_eq(count_in(err, "TAMPERING"), 0);
	verify(&v, log_path);
	ck_assert_msg(v.chain.problem == PG_CHAIN_OK, "%s", v.chain.message);
	ck_assert_uint_eq(v.chain.records, 8);
	free(err);
}
END_TEST

/* The attack: the last records cut off; the next append of a
 * writer that saw them must not continue the chain seamlessly. */
START_TEST(cut_tail_is_tamper)
{
	char *err = capture_stderr(), *raw, seen_hex[65], want[600];
	pg_audit *a = open_log(false), *b;
	json_t *rec;
	struct verdict v;
	uint64_t n;
	off_t size3, size5;

	for (int i = 0; i < 3; i++)
		append_one(a, "r");
	size3 = file_size(log_path);
	append_one(a, "r");
	append_one(a, "cut");
	size5 = file_size(log_path);
	rec = line_record(log_path, 5, &raw);
	sha256_hex(raw, strlen(raw), seen_hex);
	json_decref(rec);
	free(raw);
	ck_assert_int_eq(truncate(log_path, size3), 0);

	/* A writer that never saw records 4 and 5 cannot tell... */
	b = open_log(false);
	ck_assert_uint_eq(append_one(b, "b"), 4);
	/* ...the one that wrote them can: a tamper record, then its record. */
	ck_assert_uint_eq(append_one(a, "after"), 6);
	rec = line_record(log_path, 5, NULL);
	ck_assert_str_eq(pg_json_get_string(rec, "event"), "tamper");
	ck_assert(pg_json_u64(json_object_get(rec, "seen_seq"), &n) && n == 5);
	ck_assert(pg_json_u64(json_object_get(rec, "seen_size"), &n) && n == (uint64_t)size5);
	ck_assert_str_eq(pg_json_get_string(rec, "seen_sha256"), seen_hex);
	ck_assert(pg_json_u64(json_object_get(rec, "pid"), &n) && n == (uint64_t)getpid());
	ck_assert_ptr_nonnull(strstr(pg_json_get_string(rec, "reason"), "shorter than"));
	json_decref(rec);
	ck_assert_uint_eq(count_in(err, "p11gate: TAMPERING: audit log "), 1);
	/* Said once, not at every later append. */
	append_one(a, "later");
	append_one(b, "b");
	ck_assert_uint_eq(count_in(log_path, "\"event\":\"tamper\""), 1);
	pg_audit_close(a);
	pg_audit_close(b);
	verify(&v, log_path);
	ck_assert_int_eq(v.chain.problem, PG_CHAIN_TAMPER);
	snprintf(want, sizeof want, "line 5: tamper record: process %d found the log cut behind it "
	         "(it had seen seq 5): the file is", (int)getpid());
	ck_assert_msg(strncmp(v.chain.message, want, strlen(want)) == 0, "%s", v.chain.message);
	free(err);
}
END_TEST

/* Cut and filled up again past where it ended, or ending in a lower seq:
 * the file is not shorter, but the record this writer saw last is gone. */
START_TEST(cut_and_refilled_tail_is_tamper)
{
	char *err = capture_stderr(), long_rule[600];
	pg_audit *a = open_log(false), *b;
	off_t size2;

	append_one(a, "r");
	append_one(a, "r");
	size2 = file_size(log_path);
	append_one(a, "cut");
	ck_assert_int_eq(truncate(log_path, size2), 0);
	b = open_log(false);
	memset(long_rule, 'x', sizeof long_rule - 1);
	long_rule[sizeof long_rule - 1] = '\0';
	append_one(b, long_rule);               /* seq 3 again, longer */
	append_one(a, "after");
	ck_assert_uint_eq(count_in(log_path, "\"event\":\"tamper\""), 1);
	ck_assert_uint_eq(count_in(log_path, "is no longer there"), 1);
	ck_assert_uint_eq(count_in(err, "TAMPERING"), 1);

	/* A line with a lower seq appended after the records a writer saw. */
	append_one(a, "seen");
	{
		static const char low[] = "{\"seq\":2,\"prev\":\"0000000000000000000000000000000000"
		                          "000000000000000000000000000000\"}\n";

		t_append(log_path, low, sizeof low - 1);
	}
	append_one(a, "after");
	ck_assert_uint_eq(count_in(log_path, "\"event\":\"tamper\""), 2);
	ck_assert_uint_eq(count_in(log_path, "lower than seq"), 1);
	pg_audit_close(a);
	pg_audit_close(b);
	free(err);
}
END_TEST

/* The anchor check and the tail are read at once when the anchor is near
 * the end, apart when others wrote more than that read takes (16 KiB):
 * both ways the chain goes on, and a cut is found. */
START_TEST(anchor_near_or_far_from_the_end)
{
	char *err = capture_stderr(), long_rule[600];
	pg_audit *a = open_log(false), *b = open_log(false);
	struct verdict v;
	off_t size2;

	memset(long_rule, 'x', sizeof long_rule - 1);
	long_rule[sizeof long_rule - 1] = '\0';
	append_one(a, "a");
	for (int i = 0; i < 40; i++)                    /* about 30 KiB by another writer */
		append_one(b, long_rule);
	ck_assert_uint_eq(append_one(a, "a"), 42);
	append_one(b, "b");
	ck_assert_uint_eq(append_one(a, "a"), 44);      /* near: one read */
	ck_assert_uint_eq(count_in(log_path, "\"event\":\"tamper\""), 0);
	verify(&v, log_path);
	ck_assert_msg(v.chain.problem == PG_CHAIN_OK, "%s", v.chain.message);

	/* Cut behind a and filled up again with short records, past where
	 * it ended (so the read from the anchor's place holds whole lines),
	 * then far past it. */
	for (int far = 0; far < 2; far++) {
		append_one(a, "r");
		size2 = file_size(log_path);
		append_one(a, "cut");
		ck_assert_int_eq(truncate(log_path, size2), 0);
		for (int i = 0; i < (far ? 40 : 4); i++)
			append_one(b, far ? long_rule : "b");
		append_one(a, "after");
		ck_assert_uint_eq(count_in(log_path, "is no longer there"), far + 1);
		ck_assert_uint_eq(count_in(err, "TAMPERING"), far + 1);
	}
	pg_audit_close(a);
	pg_audit_close(b);
	free(err);
}
END_TEST

/* A new handle of the same process (a policy reload makes one) keeps what
 * the old one saw: a cut made before its first append is still found. */
START_TEST(new_handle_inherits_what_was_seen)
{
	char *err = capture_stderr(), *old = t_path(dir, "audit.jsonl.1");
	pg_audit *a = open_log(false), *b;
	off_t size2;

	append_one(a, "r");
	append_one(a, "r");
	size2 = file_size(log_path);
	append_one(a, "cut");
	ck_assert_int_eq(truncate(log_path, size2), 0);
	b = open_log(false);
	pg_audit_inherit(b, a);
	pg_audit_close(a);
	ck_assert_uint_eq(append_one(b, "after"), 4);
	ck_assert_uint_eq(count_in(log_path, "\"event\":\"tamper\""), 1);
	ck_assert_uint_eq(count_in(err, "TAMPERING"), 1);
	pg_audit_close(b);

	/* Another file (rotated away): nothing to inherit. */
	a = open_log(false);
	append_one(a, "r");
	ck_assert_int_eq(rename(log_path, old), 0);
	b = open_log(false);
	pg_audit_inherit(b, a);
	ck_assert_uint_eq(append_one(b, "fresh"), 1);
	pg_audit_close(a);
	pg_audit_close(b);
	ck_assert_uint_eq(count_in(log_path, "\"event\":\"tamper\""), 0);
	free(old);
	free(err);
}
END_TEST

/* Group commit: after a cut, the size another process published as
 * synced may cover bytes that are gone; the writer that finds the cut
 * drops it, so the next record is really synced. */
START_TEST(cut_drops_the_shared_sync_size)
{
	char *err = capture_stderr();
	pg_audit *a = open_log(true), *b = open_log(true);
	unsigned long before;
	uint64_t seq;
	off_t size1;

	append_one(a, "r");
	size1 = file_size(log_path);
	for (int i = 0; i < 4; i++)
		seq = append_one(a, "r");
	ck_assert_int_eq(pg_audit_sync(a, seq), 0);     /* publishes the whole size */
	ck_assert_int_eq(truncate(log_path, size1), 0);
	ck_assert_uint_eq(append_one(a, "after"), 3);   /* tamper record 2, record 3 */
	ck_assert_uint_eq(count_in(log_path, "\"event\":\"tamper\""), 1);
	seq = append_one(b, "short");                   /* ends far below the old size */
	before = pg_audit_datasync_count(b);
	ck_assert_int_eq(pg_audit_sync(b, seq), 0);
	ck_assert_uint_gt(pg_audit_datasync_count(b), before);
	pg_audit_close(a);
	pg_audit_close(b);
	free(err);
}
END_TEST

/* The start record: written at once, or before the next record when it
 * cannot be (here the file size limit). */
START_TEST(start_record)
{
	static const unsigned char policy[32] = { 0xab };
	struct pg_audit_record start = {
		.event = PG_AUDIT_START, .pid = 4242, .module = "/lib/softhsm2.so",
		.policy_sha256 = policy,
	};
	struct rlimit old, rl;
	pg_audit *a = open_log(false);
	json_t *rec;
	struct verdict v;
	uint64_t n;

	ck_assert_int_eq(pg_audit_start(a, &start), 0);
	rec = line_record(log_path, 1, NULL);
	ck_assert_str_eq(pg_json_get_string(rec, "event"), "start");
	ck_assert(pg_json_u64(json_object_get(rec, "pid"), &n) && n == 4242);
	ck_assert_str_eq(pg_json_get_string(rec, "module"), "/lib/softhsm2.so");
	ck_assert_ptr_nonnull(pg_json_get_string(rec, "policy_sha256"));
	json_decref(rec);

	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	rl = old;
	rl.rlim_cur = (rlim_t)file_size(log_path);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	ck_assert_int_eq(pg_audit_start(a, &start), EFBIG);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	ck_assert_uint_eq(append_one(a, "r"), 3);
	rec = line_record(log_path, 2, NULL);
	ck_assert_str_eq(pg_json_get_string(rec, "event"), "start");
	json_decref(rec);
	append_one(a, "r");
	pg_audit_close(a);
	ck_assert_uint_eq(count_in(log_path, "\"event\":\"start\""), 2);
	verify(&v, log_path);
	ck_assert_msg(v.chain.problem == PG_CHAIN_OK, "%s", v.chain.message);
	ck_assert_uint_eq(v.chain.starts, 2);
}
END_TEST

/* A handle used on both sides of a fork: without a fresh open file
 * description in the child, parent and child would share the flock and
 * break the chain. */
START_TEST(handle_survives_fork)
{
	pg_audit *a = open_log(false);
	pid_t pids[2];
	int status;

	append_one(a, "parent");
	for (int i = 0; i < 2; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			struct pg_audit_record r;
			uint64_t seq;

			t_record(&r, "child");
			for (int j = 0; j < 150; j++) {
				if (pg_audit_append(a, &r, &seq) != 0)
					_exit(1);
			}
			_exit(0);
		}
	}
	for (int j = 0; j < 150; j++)
		append_one(a, "parent");
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	pg_audit_close(a);
	ck_assert_int_eq(t_independent_chain(log_path), 451);
}
END_TEST

struct slow_sync {
	pthread_mutex_t lock;
	int calls;
	int fail_with;
};

static int
slow_datasync(int fd, void *ctx)
{
	struct slow_sync *s = ctx;

	pthread_mutex_lock(&s->lock);
	s->calls++;
	pthread_mutex_unlock(&s->lock);
	usleep(20000);          /* a slow disk: callers pile up meanwhile */
	if (s->fail_with != 0)
		return s->fail_with;
	return fdatasync(fd) == 0 ? 0 : errno;
}

START_TEST(sync_off_returns_at_once)
{
	pg_audit *a = open_log(false);
	uint64_t seq = append_one(a, "r");

	ck_assert_int_eq(pg_audit_sync(a, seq), 0);
	ck_assert_uint_eq(pg_audit_datasync_count(a), 0);
	pg_audit_close(a);
}
END_TEST

START_TEST(sync_once_per_record)
{
	pg_audit *a = open_log(true);
	uint64_t seq = append_one(a, "r");

	ck_assert_int_eq(pg_audit_sync(a, seq), 0);
	ck_assert_uint_eq(pg_audit_datasync_count(a), 1);
	ck_assert_int_eq(pg_audit_sync(a, seq), 0);     /* already on disk */
	ck_assert_uint_eq(pg_audit_datasync_count(a), 1);
	seq = append_one(a, "r");
	ck_assert_int_eq(pg_audit_sync(a, seq), 0);
	ck_assert_uint_eq(pg_audit_datasync_count(a), 2);
	/* A seq this handle never wrote is not waited for forever. */
	ck_assert_int_eq(pg_audit_sync(a, seq + 100), 0);
	pg_audit_close(a);
}
END_TEST

enum { SYNC_THREADS = 16 };

struct sync_worker {
	pg_audit *audit;
	int rc;
};

static void *
sync_worker(void *arg)
{
	struct sync_worker *w = arg;
	struct pg_audit_record r;
	uint64_t seq;

	t_record(&r, "threaded");
	w->rc = pg_audit_append(w->audit, &r, &seq);
	if (w->rc == 0)
		w->rc = pg_audit_sync(w->audit, seq);
	return NULL;
}

START_TEST(sync_shared_by_concurrent_callers)
{
	struct slow_sync s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct sync_worker w[SYNC_THREADS];
	pthread_t t[SYNC_THREADS];
	pg_audit *a = open_log(true);

	pg_audit_set_datasync(a, slow_datasync, &s);
	for (int i = 0; i < SYNC_THREADS; i++) {
		w[i].audit = a;
		ck_assert_int_eq(pthread_create(&t[i], NULL, sync_worker, &w[i]), 0);
	}
	for (int i = 0; i < SYNC_THREADS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(w[i].rc, 0);
	}
	/* Every caller returned, with fewer syncs than callers. */
	ck_assert_int_ge(s.calls, 1);
	ck_assert_int_lt(s.calls, SYNC_THREADS);
	ck_assert_uint_eq(pg_audit_datasync_count(a), (unsigned long)s.calls);
	pg_audit_close(a);
	ck_assert_int_eq(t_independent_chain(log_path), SYNC_THREADS);
}
END_TEST

START_TEST(sync_error_sticks)
{
	struct slow_sync s = { .lock = PTHREAD_MUTEX_INITIALIZER, .fail_with = EIO };
	pg_audit *a = open_log(true);
	uint64_t seq;

	pg_audit_set_datasync(a, slow_datasync, &s);
	seq = append_one(a, "r");
	ck_assert_int_eq(pg_audit_sync(a, seq), EIO);
	/* The disk seems fine again, but data may have been lost: the error
	 * stays until the log is reopened. */
	s.fail_with = 0;
	seq = append_one(a, "r");
	ck_assert_int_eq(pg_audit_sync(a, seq), EIO);
	ck_assert_int_eq(pg_audit_sync(a, 1), EIO);
	pg_audit_close(a);
}
END_TEST

/* Two handles of one log stand for two processes (each opens its own
 * file descriptions, and so takes its own flocks): a record below what one
 * handle's fdatasync covered needs none of the other's. */
START_TEST(sync_shared_across_processes)
{
	struct slow_sync sa = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct slow_sync sb = { .lock = PTHREAD_MUTEX_INITIALIZER };
	pg_audit *a = open_log(true), *b = open_log(true);
	uint64_t seq_a, seq_b;

	pg_audit_set_datasync(a, slow_datasync, &sa);
	pg_audit_set_datasync(b, slow_datasync, &sb);
	seq_a = append_one(a, "a");
	seq_b = append_one(b, "b");
	ck_assert_int_eq(pg_audit_sync(a, seq_a), 0);
	ck_assert_int_eq(sa.calls, 1);
	ck_assert_int_eq(pg_audit_sync(b, seq_b), 0);
	ck_assert_msg(sb.calls == 0, "b synced for itself a record that a's fdatasync had covered");
	/* Appended after a's sync: b's own. */
	seq_b = append_one(b, "b");
	ck_assert_int_eq(pg_audit_sync(b, seq_b), 0);
	ck_assert_int_eq(sb.calls, 1);
	pg_audit_close(a);
	pg_audit_close(b);
	ck_assert_int_eq(t_independent_chain(log_path), 3);
}
END_TEST

/* A failed fdatasync publishes nothing: the other process syncs itself. */
START_TEST(sync_failed_elsewhere_covers_nothing)
{
	struct slow_sync sa = { .lock = PTHREAD_MUTEX_INITIALIZER, .fail_with = EIO };
	struct slow_sync sb = { .lock = PTHREAD_MUTEX_INITIALIZER };
	pg_audit *a = open_log(true), *b = open_log(true);
	uint64_t seq_a, seq_b;

	pg_audit_set_datasync(a, slow_datasync, &sa);
	pg_audit_set_datasync(b, slow_datasync, &sb);
	seq_a = append_one(a, "a");
	seq_b = append_one(b, "b");
	ck_assert_int_eq(pg_audit_sync(a, seq_a), EIO);
	ck_assert_int_eq(pg_audit_sync(b, seq_b), 0);
	ck_assert_int_eq(sb.calls, 1);
	pg_audit_close(a);
	pg_audit_close(b);
}
END_TEST

/* What a log's LOG.sync says is about that file only: a rotated log's new
 * file is synced for itself although the old one was synced further. */
START_TEST(sync_file_belongs_to_one_log)
{
	struct slow_sync sb = { .lock = PTHREAD_MUTEX_INITIALIZER };
	char *rotated = t_path(dir, "audit.jsonl.1");
	pg_audit *a = open_log(true), *b;
	uint64_t seq;

	for (int i = 0; i < 20; i++)
		seq = append_one(a, "old file, a long rule name to make the file long");
	ck_assert_int_eq(pg_audit_sync(a, seq), 0);
	pg_audit_close(a);
	ck_assert_int_eq(rename(log_path, rotated), 0);
	b = open_log(true);
	pg_audit_set_datasync(b, slow_datasync, &sb);
	seq = append_one(b, "new");
	ck_assert_int_eq(pg_audit_sync(b, seq), 0);
	ck_assert_int_eq(sb.calls, 1);
	pg_audit_close(b);
	free(rotated);
}
END_TEST

/* A LOG.sync that someone who may not write the log could write is not
 * believed: b makes its own, and a's fdatasync does not count for b. */
START_TEST(sync_file_writable_by_others_not_believed)
{
	struct slow_sync sa = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct slow_sync sb = { .lock = PTHREAD_MUTEX_INITIALIZER };
	char *share = t_path(dir, "audit.jsonl.sync");
	pg_audit *a = open_log(true), *b;
	uint64_t seq_a, seq_b;
	struct stat st, log_st;

	pg_audit_set_datasync(a, slow_datasync, &sa);
	seq_a = append_one(a, "a");
	ck_assert_int_eq(stat(share, &st), 0);
	ck_assert_int_eq(chmod(share, 0666), 0);
	b = open_log(true);
	pg_audit_set_datasync(b, slow_datasync, &sb);
	seq_b = append_one(b, "b");
	ck_assert_int_eq(pg_audit_sync(a, seq_a), 0);   /* through the world-writable one */
	ck_assert_int_eq(pg_audit_sync(b, seq_b), 0);
	ck_assert_int_eq(sb.calls, 1);
	ck_assert_int_eq(stat(log_path, &log_st), 0);
	ck_assert_int_eq(stat(share, &st), 0);
	/* Replaced, with the log's mode (less anyone's write but the owner's). */
	ck_assert_uint_eq(st.st_mode & 0777, log_st.st_mode & 0644);
	pg_audit_close(a);
	pg_audit_close(b);
	free(share);
}
END_TEST

enum { SYNC_PROCESSES = 4 };

/* Real processes: all append, then all sync at once; the first to sync
 * covers everyone's record, so one fdatasync serves all of them. */
START_TEST(one_sync_serves_concurrent_processes)
{
	int ready[2], go[2], status, calls = 0;
	pid_t pids[SYNC_PROCESSES];
	char byte;

	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);
	for (int i = 0; i < SYNC_PROCESSES; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			struct slow_sync s = { .lock = PTHREAD_MUTEX_INITIALIZER };
			char err[256];
			struct pg_audit_record r;
			uint64_t seq;
			pg_audit *c;

			close(go[1]);
			c = pg_audit_open(log_path, true, false, err, sizeof err);
			if (c == NULL)
				_exit(100);
			pg_audit_set_datasync(c, slow_datasync, &s);
			t_record(&r, "child");
			if (pg_audit_append(c, &r, &seq) != 0)
				_exit(101);
			if (write(ready[1], "r", 1) != 1 || read(go[0], &byte, 1) != 0)
				_exit(102);
			if (pg_audit_sync(c, seq) != 0)
				_exit(103);
			pg_audit_close(c);
			_exit(s.calls);
		}
	}
	close(ready[1]);
	close(go[0]);
	for (int i = 0; i < SYNC_PROCESSES; i++)
		ck_assert_int_eq(read(ready[0], &byte, 1), 1);
	close(go[1]);           /* every child reads EOF: sync now */
	for (int i = 0; i < SYNC_PROCESSES; i++) {
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) < 100, "child failed (%d)",
		              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		calls += WEXITSTATUS(status);
	}
	close(ready[0]);
	ck_assert_msg(calls == 1, "%d fdatasync calls for %d processes' records appended before "
	              "any of them synced; one covers all", calls, SYNC_PROCESSES);
	ck_assert_int_eq(t_independent_chain(log_path), SYNC_PROCESSES);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("audit-writer");
	TCase *tc = tcase_create("writer");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, append_chains_records);
	tcase_add_test(tc, record_format);
	tcase_add_test(tc, recovers_partial_line);
	tcase_add_test(tc, recovers_line_cut_before_newline);
	tcase_add_test(tc, recovers_at_file_start_and_after_garbage);
	tcase_add_test(tc, refuses_log_without_records);
	tcase_add_loop_test(tc, file_size_limit_refuses_without_signal, 0, 2);
	tcase_add_test(tc, open_errors_name_the_fix);
	tcase_add_test(tc, open_permission_denied);
	tcase_add_test(tc, follows_rotation);
	tcase_add_test(tc, handle_survives_fork);
	tcase_add_test(tc, other_writers_are_not_tampering);
	tcase_add_test(tc, cut_tail_is_tamper);
	tcase_add_test(tc, cut_and_refilled_tail_is_tamper);
	tcase_add_test(tc, anchor_near_or_far_from_the_end);
	tcase_add_test(tc, new_handle_inherits_what_was_seen);
	tcase_add_test(tc, cut_drops_the_shared_sync_size);
	tcase_add_test(tc, start_record);
	tcase_add_test(tc, sync_off_returns_at_once);
	tcase_add_test(tc, sync_once_per_record);
	tcase_add_test(tc, sync_shared_by_concurrent_callers);
	tcase_add_test(tc, sync_error_sticks);
	tcase_add_test(tc, sync_shared_across_processes);
	tcase_add_test(tc, sync_failed_elsewhere_covers_nothing);
	tcase_add_test(tc, sync_file_belongs_to_one_log);
	tcase_add_test(tc, sync_file_writable_by_others_not_believed);
	tcase_add_test(tc, one_sync_serves_concurrent_processes);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
