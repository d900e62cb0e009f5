/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for `p11gate audit verify` and `audit find` on arbitrary
 * file contents, through the functions the CLI uses, and for the writer
 * continuing such a file.  Properties: no crash or sanitizer report; the
 * strict and the --allow-truncated-tail verdicts agree; and a log that
 * verifies, continued by the writer with one record, still verifies.
 */
#include "audit_chain.h"
#include "audit_find.h"
#include "audit_tail.h"
#include "audit_verify.h"
#include "p11gate/audit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libFuzzer gives the target no context pointer: the scratch directory
 * for the writer's file is made once per process and kept here. */
static char scratch_dir[PATH_MAX];

#define FAIL(...)                                                  \
	do {                                                       \
		fprintf(stderr, "fuzz_audit_verify: " __VA_ARGS__); \
		fputc('\n', stderr);                               \
		abort();                                           \
	} while (0)

static void
remove_scratch(void)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof path, "%s/log", scratch_dir);
	unlink(path);
	rmdir(scratch_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	/* tmpfs when there is one: the writer's file is rewritten per input. */
	if (tmp == NULL || tmp[0] == '\0')
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(scratch_dir, sizeof scratch_dir, "%s/fuzz_audit_verify.XXXXXX", tmp);
	if (mkdtemp(scratch_dir) == NULL)
		FAIL("cannot make a scratch directory in %s: %s", tmp, strerror(errno));
	atexit(remove_scratch);
	return 0;
}

/* A FILE over the input bytes (fmemopen refuses a zero-length buffer). */
static FILE *
open_bytes(const uint8_t *data, size_t size)
{
	static char empty[1];

	return size == 0 ? fmemopen(empty, 1, "r") : fmemopen((void *)data, size, "r");
}

static void
verify_bytes(const uint8_t *data, size_t size, bool allow_truncated_tail, struct pg_chain *chain)
{
	FILE *f = open_bytes(data, size);
	char summary[640];
	int rc;

	if (f == NULL)
		FAIL("fmemopen: %s", strerror(errno));
	pg_chain_init(chain);
	chain->allow_truncated_tail = allow_truncated_tail;
	/* An empty fmemopen buffer reads as zero bytes only if it is empty
	 * text: skip the one NUL byte it holds. */
	if (size == 0)
		fseek(f, 1, SEEK_SET);
	rc = pg_audit_verify_stream(f, chain);
	fclose(f);
	if (rc != 0)
		FAIL("verify could not read memory: %s", strerror(rc));
	if (chain->problem == PG_CHAIN_OK)
		pg_chain_summary(chain, "fuzz.jsonl", summary, sizeof summary);
	else if (chain->message[0] == '\0' || chain->problem_line == 0)
		FAIL("a problem without a message or a line: kind %d", (int)chain->problem);
}

/* find prints the records (escaped) and warns on a broken chain; its
 * output is not checked, only that it survives the input. */
static void
find_bytes(const uint8_t *data, size_t size)
{
	/* Every record printed readably; and the filters, printing JSON. */
	static const struct pg_audit_find_query queries[] = {
		{ .json = false },
		{ .json = true, .decision = "deny", .key = "release-ec", .has_since = true,
		  .since = { 1, 0 } },
	};
	FILE *out;

	if (size == 0)
		return;
	out = fopen("/dev/null", "w");
	if (out == NULL)
		FAIL("cannot open /dev/null: %s", strerror(errno));
	for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
		FILE *f = open_bytes(data, size);
		size_t printed;

		if (f == NULL)
			FAIL("fmemopen: %s", strerror(errno));
		pg_audit_find_stream(f, "fuzz.jsonl", &queries[i], out, out, &printed);
		fclose(f);
	}
	fclose(out);
}

/* Whether the writer takes the last line of the input (no newline) for a
 * record (pg_audit_record_frame, which every record verify accepts also
 * passes): a crash that cut a record just before its newline.  The writer
 * continues from such a line without knowing whether it chains, so the
 * property below does not hold for it. */
static bool
tail_is_record(const uint8_t *data, size_t size)
{
	unsigned char prev[PG_SHA256_LEN];
	size_t start = size;
	uint64_t seq;

	while (start > 0 && data[start - 1] != '\n')
		start--;
	return pg_audit_record_frame((const char *)data + start, size - start, &seq, prev);
}

/* Whether the writer's tail reader finds the file closed by a rotation. */
static bool
writer_sees_seal(const char *path)
{
	struct pg_audit_tail tail;
	char err[128];
	struct stat st;
	bool sealed = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && fstat(fd, &st) == 0 && pg_audit_tail_read(fd, st.st_size, &tail, err,
	                                                         sizeof err) == 0)
		sealed = tail.sealed;
	if (fd >= 0)
		close(fd);
	return sealed;
}

/* The closed files a finished rotation left in the scratch directory. */
static void
remove_kept(void)
{
	struct dirent *e;
	char path[PATH_MAX + 300];
	DIR *d = opendir(scratch_dir);

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "log-", 4) == 0) {
			snprintf(path, sizeof path, "%s/%s", scratch_dir, e->d_name);
			unlink(path);
		}
	}
	closedir(d);
}

/* Writes the input as a log file, lets the writer append one record, and
 * verifies the result strictly: the writer must continue any log that
 * verifies (recovering a truncated tail), never make it fail. */
static void
continue_log(const uint8_t *data, size_t size, const struct pg_chain *before)
{
	static const unsigned char digest[32] = { 1, 2, 3 };
	const struct pg_audit_record record = {
		.event = PG_AUDIT_DECISION, .allow = false, .rule = "fuzz", .reason = "fuzzing",
		.function = "C_Sign", .operation = "sign", .key_name = "release-rsa",
		.has_mechanism = true, .mechanism = CKM_RSA_PKCS, .data_sha256 = digest,
		.data = digest, .data_len = sizeof digest, .policy_sha256 = digest,
	};
	char path[PATH_MAX + 16], err[512];
	struct pg_chain after;
	pg_audit *audit;
	uint64_t seq = 0;
	bool closed;
	int fd, rc;

	snprintf(path, sizeof path, "%s/log", scratch_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t)size) || close(fd) != 0)
		FAIL("cannot write %s: %s", path, strerror(errno));
	/* A file a rotation closed (it ends with a rotate record as the
	 * writer writes them) is not written to: the writer finishes the
	 * rotation and appends to the new file, after its continue record.  A
	 * rotate record in another form is not one the writer recognises: it
	 * writes after it, and verify rightly objects. */
	closed = before->closed_line != 0 && writer_sees_seal(path);
	if (before->closed_line != 0 && !closed)
		return;
	audit = pg_audit_open(path, false, false, err, sizeof err);
	if (audit == NULL)
		FAIL("the writer refuses a log that verifies: %s", err);
	rc = pg_audit_append(audit, &record, &seq);
	pg_audit_close(audit);
	if (rc != 0)
		FAIL("the writer cannot append to a log that verifies: %s", strerror(rc));
	if (seq != before->last_seq + (closed ? 2 : 1))
		FAIL("the writer appended seq %" PRIu64 " after a chain ending at %" PRIu64 "%s", seq,
		     before->last_seq, closed ? " (closed by a rotation)" : "");

	pg_chain_init(&after);
	rc = pg_audit_verify_path(path, &after);
	if (rc != 0)
		FAIL("cannot read back %s: %s", path, strerror(rc));
	if (after.problem != PG_CHAIN_OK)
		FAIL("a log that verified no longer does after one append: %s", after.message);
	if (closed) {
		if (!after.continues || after.records != 2 || after.continue_seq != before->last_seq + 1)
			FAIL("the file a rotation closed was not continued in a new file");
		remove_kept();
		return;
	}
	if (after.records != before->records + 1 || after.last_seq != seq)
		FAIL("after one append: %" PRIu64 " records ending at %" PRIu64 ", expected %" PRIu64
		     " ending at %" PRIu64, after.records, after.last_seq, before->records + 1, seq);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pg_chain strict, lenient;
	bool truncated_tail = size > 0 && data[size - 1] != '\n';

	verify_bytes(data, size, false, &strict);
	verify_bytes(data, size, true, &lenient);

	/* The two modes differ only in how a cut-off last line is judged. */
	if (strict.problem == PG_CHAIN_OK && lenient.problem != PG_CHAIN_OK)
		FAIL("intact strictly but not with --allow-truncated-tail: %s", lenient.message);
	if (strict.problem == PG_CHAIN_OK && truncated_tail)
		FAIL("a last line without a newline verified strictly");
	if (lenient.problem == PG_CHAIN_TRUNCATED)
		FAIL("--allow-truncated-tail reported truncation: %s", lenient.message);
	if (strict.problem != PG_CHAIN_OK && strict.problem != PG_CHAIN_TRUNCATED &&
	    (lenient.problem != strict.problem || lenient.problem_line != strict.problem_line))
		FAIL("the modes disagree on a problem before the tail: strict '%s', lenient '%s'",
		     strict.message, lenient.message);
	if (strict.problem == PG_CHAIN_OK &&
	    (lenient.records != strict.records || lenient.last_seq != strict.last_seq))
		FAIL("the modes count different records");

	find_bytes(data, size);

	if (lenient.problem == PG_CHAIN_OK && !(truncated_tail && tail_is_record(data, size)))
		continue_log(data, size, &lenient);
	return 0;
}
