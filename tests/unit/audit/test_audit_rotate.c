/* SPDX-License-Identifier: Apache-2.0
 *
 * Rotation and signed checkpoints against real files: a rotated log is one
 * chain across its files (the next file's first record names the closed
 * one), writers on other handles follow a rotation without losing or
 * repeating a record, max_size rotates by itself, a rotation interrupted at
 * each step is finished by the next writer, and the set verifier names a
 * missing, reordered or changed file.  Checkpoints: signed every N records
 * and at rotation, checked with the public key; an edit before the last
 * checkpoint, a file cut back behind one, and a checkpoint signed with
 * another key are all found.
 */
#include "p11gate/audit.h"
#include "p11gate/common.h"
#include "audit_chain.h"
#include "audit_internal.h"
#include "audit_set.h"
#include "audit_test_util.h"
#include "audit_verify.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

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
open_log(void)
{
	char err[512];
	pg_audit *a = pg_audit_open(log_path, true, false, err, sizeof err);

	ck_assert_msg(a != NULL, "%s", err);
	return a;
}

static uint64_t
append_one(pg_audit *a)
{
	struct pg_audit_record r;
	uint64_t seq = 0;
	int rc;

	t_record(&r, "rotate-test");
	rc = pg_audit_append(a, &r, &seq);
	ck_assert_msg(rc == 0, "append: %s", strerror(rc));
	return seq;
}

static void
rotate(pg_audit *a, char kept[PATH_MAX])
{
	char err[PATH_MAX + 512];
	int rc = pg_audit_rotate(a, "test", kept, err, sizeof err);

	ck_assert_msg(rc == 0, "%s", err);
}

/* The set in dir, verified as `audit verify DIR` does. */
struct set {
	char **paths;
	size_t n;
	struct pg_audit_file *files;
	size_t broken, notes;
	char message[2048];     /* the first broken link or problem */
};

static void
set_free(struct set *s)
{
	free(s->files);
	pg_audit_dir_files_free(s->paths, s->n);
	memset(s, 0, sizeof *s);
}

static void
verify_paths(struct set *s, const pg_audit_key *key)
{
	char msg[1024];

	s->files = calloc(s->n, sizeof *s->files);
	ck_assert_ptr_nonnull(s->files);
	for (size_t i = 0; i < s->n; i++) {
		FILE *f = fopen(s->paths[i], "r");

		ck_assert_ptr_nonnull(f);
		s->files[i].name = s->paths[i];
		pg_chain_init(&s->files[i].chain);
		s->files[i].chain.checkpoint_key = key;
		ck_assert_int_eq(pg_audit_verify_stream_hash(f, &s->files[i].chain, s->files[i].sha256), 0);
		fclose(f);
		if (s->files[i].chain.problem != PG_CHAIN_OK && s->broken++ == 0)
			snprintf(s->message, sizeof s->message, "%s: %s", s->paths[i],
			         s->files[i].chain.message);
	}
	for (size_t i = 0; i < s->n; i++) {
		switch (pg_audit_set_link(s->files, s->n, i, msg, sizeof msg)) {
		case PG_LINK_BROKEN:
			if (s->broken++ == 0)
				snprintf(s->message, sizeof s->message, "%s: %s", s->paths[i], msg);
			break;
		case PG_LINK_NOTE:
			s->notes++;
			break;
		default:
			break;
		}
	}
	if (s->n > 0 && pg_audit_set_open_end(&s->files[s->n - 1], msg, sizeof msg) &&
	    s->broken++ == 0)
		snprintf(s->message, sizeof s->message, "%s", msg);
}

static void
verify_dir(struct set *s, const pg_audit_key *key)
{
	memset(s, 0, sizeof *s);
	ck_assert_int_eq(pg_audit_dir_files(dir, &s->paths, &s->n), 0);
	verify_paths(s, key);
}

/* Every record of the set, in order: seq 1..N with no gap or repeat. */
static uint64_t
total_records(const struct set *s)
{
	uint64_t total = 0, next = 1;

	for (size_t i = 0; i < s->n; i++) {
		ck_assert_uint_eq(s->files[i].chain.first_seq, next);
		next = s->files[i].chain.last_seq + 1;
		total += s->files[i].chain.records;
	}
	return total;
}

static size_t
count_event(const char *path, const char *event)
{
	char pattern[64], *data, *p;
	size_t len, n = 0;

	snprintf(pattern, sizeof pattern, "\"event\":\"%s\"", event);
	data = t_read(path, &len);
	ck_assert_ptr_nonnull(data);
	for (p = data; (p = strstr(p, pattern)) != NULL; p++)
		n++;
	free(data);
	return n;
}

START_TEST(rotation_continues_the_chain)
{
	char kept[PATH_MAX], prev_hex[65];
	pg_audit *a = open_log(), *other = open_log();
	unsigned char hash[PG_SHA256_LEN];
	size_t len;
	char *data;
	struct set s;

	for (int i = 0; i < 5; i++)
		append_one(i % 2 ? a : other);
	rotate(a, kept);
	ck_assert_ptr_nonnull(strstr(kept, "audit.jsonl-20"));
	/* other still holds the closed file: it must follow to the new one. */
	ck_assert_uint_eq(append_one(other), 8);
	ck_assert_uint_eq(append_one(a), 9);
	/* The closed file ends with the rotate record, nothing after it. */
	ck_assert_uint_eq(t_count_lines(kept), 6);
	ck_assert_uint_eq(count_event(kept, "rotate"), 1);
	/* The new file starts with continue, whose prev is the kept file's
	 * last line and which names its SHA-256. */
	data = t_read(kept, &len);
	ck_assert_ptr_nonnull(data);
	ck_assert(pg_sha256(data, len, hash));
	pg_hex_encode(hash, PG_SHA256_LEN, prev_hex);
	free(data);
	data = t_read(log_path, &len);
	ck_assert_ptr_nonnull(strstr(data, "\"event\":\"continue\""));
	ck_assert_ptr_nonnull(strstr(data, prev_hex));
	ck_assert(strncmp(data, "{\"seq\":7,", 9) == 0);
	free(data);

	verify_dir(&s, NULL);
	ck_assert_msg(s.broken == 0, "%s", s.message);
	ck_assert_uint_eq(s.n, 2);
	ck_assert_uint_eq(total_records(&s), 9);
	set_free(&s);
	pg_audit_close(a);
	pg_audit_close(other);
}
END_TEST

START_TEST(max_size_rotates_by_itself)
{
	pg_audit *a = open_log(), *b = open_log();
	struct set s;
	struct stat st;

	pg_audit_set_max_size(a, 65536);
	pg_audit_set_max_size(b, 65536);
	for (int i = 0; i < 600; i++)
		append_one(i % 3 ? a : b);
	verify_dir(&s, NULL);
	ck_assert_msg(s.broken == 0, "%s", s.message);
	ck_assert_uint_ge(s.n, 4);
	/* 600 appended, plus a rotate and a continue record per rotation. */
	ck_assert_uint_eq(total_records(&s), 600 + 2 * (s.n - 1));
	for (size_t i = 0; i < s.n; i++) {
		ck_assert_int_eq(stat(s.paths[i], &st), 0);
		ck_assert_msg(st.st_size <= 65536, "%s is %lld bytes", s.paths[i], (long long)st.st_size);
	}
	set_free(&s);
	pg_audit_close(a);
	pg_audit_close(b);
}
END_TEST

static int
failing_sync(int fd, void *ctx)
{
	(void)fd;
	(void)ctx;
	return EIO;
}

/* The rotation stops after closing the file (the sync after the rotate
 * record fails, as if the rotator died there); the next writer, on another
 * handle, finishes it. */
START_TEST(interrupted_rotation_is_finished)
{
	char kept[PATH_MAX], err[PATH_MAX + 512];
	pg_audit *rotator = open_log(), *writer = open_log();
	struct set s;
	int rc;

	for (int i = 0; i < 4; i++)
		append_one(writer);
	pg_audit_set_datasync(rotator, failing_sync, NULL);
	rc = pg_audit_rotate(rotator, "test", kept, err, sizeof err);
	ck_assert_int_eq(rc, EIO);
	ck_assert_ptr_nonnull(strstr(err, "cannot sync the closed file"));
	ck_assert_uint_eq(count_event(log_path, "rotate"), 1);
	pg_audit_close(rotator);
	/* A crash between the link and the rename leaves the kept name too. */
	if (_i == 1) {
		char *data, *time, name[PATH_MAX], stamp[32];
		size_t len, k = 0;

		data = t_read(log_path, &len);
		time = strstr(strstr(data, "\"event\":\"rotate\"") - 60, "\"time\":\"") + 8;
		for (const char *t = time; *t != '"'; t++)
			if (*t != '-' && *t != ':')
				stamp[k++] = *t;
		stamp[k] = '\0';
		snprintf(name, sizeof name, "%s-%s", log_path, stamp);
		ck_assert_int_eq(link(log_path, name), 0);
		free(data);
	}
	/* What a crash before the rename leaves: a hidden unpublished file. */
	{
		char *junk = t_path(dir, ".audit.jsonl.rotate-AbCdEf");

		t_write(junk, "{\"seq\":5}\n", 10);
		free(junk);
	}
	ck_assert_uint_eq(append_one(writer), 7);
	verify_dir(&s, NULL);
	ck_assert_msg(s.broken == 0, "%s", s.message);
	ck_assert_uint_eq(s.n, 2);
	ck_assert_uint_eq(total_records(&s), 7);
	set_free(&s);
	pg_audit_close(writer);
}
END_TEST

/* Three rotations, then the set is damaged in the ways verify must name. */
static void
three_files(char kept[2][PATH_MAX])
{
	pg_audit *a = open_log();

	for (int f = 0; f < 2; f++) {
		for (int i = 0; i < 3; i++)
			append_one(a);
		rotate(a, kept[f]);
		usleep(2000);   /* distinct times, whatever the clock's grain */
	}
	append_one(a);
	pg_audit_close(a);
}

START_TEST(set_names_missing_and_reordered_files)
{
	char kept[2][PATH_MAX], moved[PATH_MAX + 8];
	struct set s;

	three_files(kept);
	verify_dir(&s, NULL);
	ck_assert_msg(s.broken == 0, "%s", s.message);
	ck_assert_uint_eq(s.n, 3);
	set_free(&s);

	/* The middle file missing. */
	snprintf(moved, sizeof moved, "%s.gone", kept[1]);
	ck_assert_int_eq(rename(kept[1], moved), 0);
	memset(&s, 0, sizeof s);
	s.n = 2;
	s.paths = calloc(3, sizeof *s.paths);
	s.paths[0] = strdup(kept[0]);
	s.paths[1] = strdup(log_path);
	verify_paths(&s, NULL);
	ck_assert_uint_eq(s.broken, 1);
	ck_assert_msg(strstr(s.message, "does not continue") != NULL &&
	              strstr(s.message, "is missing") != NULL &&
	              strstr(s.message, strrchr(kept[1], '/') + 1) != NULL, "%s", s.message);
	set_free(&s);
	ck_assert_int_eq(rename(moved, kept[1]), 0);

	/* Given out of order. */
	memset(&s, 0, sizeof s);
	s.n = 3;
	s.paths = calloc(4, sizeof *s.paths);
	s.paths[0] = strdup(kept[1]);
	s.paths[1] = strdup(kept[0]);
	s.paths[2] = strdup(log_path);
	verify_paths(&s, NULL);
	ck_assert_uint_ge(s.broken, 1);
	ck_assert_msg(strstr(s.message, "out of order") != NULL, "%s", s.message);
	set_free(&s);

	/* The newest file (the live log) deleted. */
	ck_assert_int_eq(unlink(log_path), 0);
	verify_dir(&s, NULL);
	ck_assert_uint_eq(s.broken, 1);
	ck_assert_msg(strstr(s.message, "no file given continues it") != NULL, "%s", s.message);
	set_free(&s);
}
END_TEST

/* A file cut back and chained again by hand is intact on its own, but the
 * next file's link names its old bytes. */
START_TEST(set_finds_a_cut_and_rewritten_file)
{
	char kept[2][PATH_MAX];
	struct set s;
	char *data, *nl;
	size_t len;

	three_files(kept);
	data = t_read(kept[0], &len);
	nl = strchr(data, '\n');
	t_write(kept[0], data, (size_t)(nl - data + 1));   /* only its first record */
	free(data);
	verify_dir(&s, NULL);
	ck_assert_uint_eq(s.broken, 1);
	ck_assert_msg(strstr(s.message, "does not continue") != NULL &&
	              strstr(s.message, "missing or was changed") != NULL, "%s", s.message);
	set_free(&s);
}
END_TEST

/* ---- checkpoints ------------------------------------------------------ */

static char *
write_key(const char *name, EVP_PKEY **out, bool public_too)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	char *path = t_path(dir, name), pub[PATH_MAX];
	FILE *f;

	ck_assert_ptr_nonnull(pkey);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fchmod(fileno(f), 0600), 0);
	ck_assert_int_eq(PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	if (public_too) {
		snprintf(pub, sizeof pub, "%s.pub", path);
		f = fopen(pub, "w");
		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(PEM_write_PUBKEY(f, pkey), 1);
		fclose(f);
	}
	*out = pkey;
	return path;
}

static pg_audit_key *
load(const char *path, bool private_key)
{
	char err[PATH_MAX + 256];
	pg_audit_key *key = pg_audit_key_load(path, private_key, err, sizeof err);

	ck_assert_msg(key != NULL, "%s", err);
	return key;
}

/* A log with checkpoints every 5 records and at rotation, in a directory
 * of its own (the keys live in dir). */
static pg_audit_key *
checkpointed_log(void)
{
	char pub[PATH_MAX], kept[PATH_MAX];
	EVP_PKEY *pkey;
	char *key_path = write_key("checkpoint.key", &pkey, true);
	char *logs = t_path(dir, "logs");
	pg_audit *a;

	ck_assert_int_eq(mkdir(logs, 0700), 0);
	free(log_path);
	log_path = t_path(logs, "audit.jsonl");
	a = open_log();
	pg_audit_set_checkpoint(a, load(key_path, true), 5);
	for (int i = 0; i < 12; i++)
		append_one(a);
	rotate(a, kept);
	for (int i = 0; i < 7; i++)
		append_one(a);
	pg_audit_close(a);
	snprintf(pub, sizeof pub, "%s.pub", key_path);
	free(key_path);
	free(logs);
	EVP_PKEY_free(pkey);
	return load(pub, false);
}

static void
verify_logs(struct set *s, const pg_audit_key *key)
{
	char *logs = t_path(dir, "logs");

	memset(s, 0, sizeof *s);
	ck_assert_int_eq(pg_audit_dir_files(logs, &s->paths, &s->n), 0);
	verify_paths(s, key);
	free(logs);
}

START_TEST(checkpoints_verify)
{
	pg_audit_key *pub = checkpointed_log();
	uint64_t ok = 0;
	struct set s;

	verify_logs(&s, pub);
	ck_assert_msg(s.broken == 0, "%s", s.message);
	ck_assert_uint_eq(s.n, 2);
	for (size_t i = 0; i < s.n; i++)
		ok += s.files[i].chain.checkpoints_ok;
	/* Periodic ones at seq 5 and 10 (each after the record reaching the
	 * multiple), one after the continue record, one more later on. */
	ck_assert_uint_ge(ok, 4);
	ck_assert_uint_eq(ok, s.files[0].chain.checkpoints + s.files[1].chain.checkpoints);
	/* The records after the last checkpoint are counted as unprotected. */
	ck_assert_uint_lt(s.files[1].chain.after_checkpoint, 6);
	set_free(&s);
	pg_audit_key_free(pub);
}
END_TEST

/* Rewrites path with line n (1-based) changed by edit, and every prev
 * after it recomputed: what someone who can write the log but has no key
 * can do.  Checkpoints keep their old signatures. */
static void
edit_and_rechain(const char *path, size_t n, const char *from, const char *to)
{
	size_t len, out_len = 0, k = 0;
	char *data = t_read(path, &len), *out = malloc(len + 256), *line = data, *nl;
	unsigned char hash[PG_SHA256_LEN];
	char hex[65];
	bool have = false;

	ck_assert_ptr_nonnull(out);
	while ((nl = strchr(line, '\n')) != NULL) {
		char buf[8192], *p;
		size_t l = (size_t)(nl - line);

		memcpy(buf, line, l);
		buf[l] = '\0';
		if (++k == n && (p = strstr(buf, from)) != NULL) {
			char rest[8192];

			snprintf(rest, sizeof rest, "%s", p + strlen(from));
			snprintf(p, sizeof buf - (size_t)(p - buf), "%s%s", to, rest);
		}
		if (k > n && have && (p = strstr(buf, "\"prev\":\"")) != NULL)
			memcpy(p + 8, hex, 64);
		l = strlen(buf);
		memcpy(out + out_len, buf, l);
		out[out_len + l] = '\n';
		out_len += l + 1;
		ck_assert(pg_sha256(buf, l, hash));
		pg_hex_encode(hash, PG_SHA256_LEN, hex);
		have = true;
		line = nl + 1;
	}
	t_write(path, out, out_len);
	free(out);
	free(data);
}

START_TEST(edit_before_checkpoint_is_found)
{
	pg_audit_key *pub = checkpointed_log();
	struct set s;

	/* Without the key the rewritten chain passes: the reason for keys. */
	edit_and_rechain(log_path, 3, "\"rule\":\"rotate-test\"", "\"rule\":\"rotate-tesT\"");
	verify_logs(&s, NULL);
	ck_assert_msg(s.broken == 0, "%s", s.message);
	set_free(&s);
	verify_logs(&s, pub);
	ck_assert_uint_eq(s.broken, 1);
	ck_assert_msg(strstr(s.message, "checkpoint signature does not verify") != NULL, "%s",
	              s.message);
	set_free(&s);
	pg_audit_key_free(pub);
}
END_TEST

/* Rewrites the file a rotation made so that it continues a file whose
 * last line hashes to prev_hex and whose bytes hash to sha_hex, ending at
 * seq last: every seq moved, the link replaced, the chain computed again.
 * The strongest forgery without the key. */
static void
relink(const char *path, const char *prev_hex, const char *sha_hex, uint64_t last)
{
	size_t len, out_len = 0;
	char *data = t_read(path, &len), *out = malloc(len + 4096), *line = data, *nl;
	unsigned char hash[PG_SHA256_LEN];
	char hex[65];
	uint64_t seq = last;

	ck_assert_ptr_nonnull(out);
	snprintf(hex, sizeof hex, "%s", prev_hex);
	while ((nl = strchr(line, '\n')) != NULL) {
		char buf[8192], *p, *rest;
		int n;

		rest = strchr(line, ',');       /* after {"seq":N */
		n = snprintf(buf, sizeof buf, "{\"seq\":%llu%.*s", (unsigned long long)++seq,
		             (int)(nl - rest), rest);
		ck_assert_int_lt(n, (int)sizeof buf);
		if ((p = strstr(buf, "\"previous_sha256\":\"")) != NULL)
			memcpy(p + 19, sha_hex, 64);
		p = strstr(buf, "\"prev\":\"");
		ck_assert_ptr_nonnull(p);
		memcpy(p + 8, hex, 64);
		memcpy(out + out_len, buf, (size_t)n);
		out[out_len + (size_t)n] = '\n';
		out_len += (size_t)n + 1;
		ck_assert(pg_sha256(buf, (size_t)n, hash));
		pg_hex_encode(hash, PG_SHA256_LEN, hex);
		line = nl + 1;
	}
	t_write(path, out, out_len);
	free(out);
	free(data);
}

/* The closed file cut back behind its last checkpoint (to seq 7; the
 * checkpoint after seq 10 and the rest cut off), and the next file
 * rewritten to continue the cut file: intact without the key, found with
 * it. */
START_TEST(cut_behind_checkpoint_is_found)
{
	pg_audit_key *pub = checkpointed_log();
	char *data, sha_hex[65], last_hex[65], *p, *last;
	unsigned char hash[PG_SHA256_LEN];
	size_t len, lines = 0;
	struct set s;
	char kept[PATH_MAX];

	verify_logs(&s, NULL);
	ck_assert_uint_eq(s.n, 2);
	snprintf(kept, sizeof kept, "%s", s.paths[0]);
	set_free(&s);
	data = t_read(kept, &len);
	for (p = data; lines < 7; p = strchr(p, '\n') + 1)
		lines++;
	len = (size_t)(p - data);
	t_write(kept, data, len);
	ck_assert(pg_sha256(data, len, hash));
	pg_hex_encode(hash, PG_SHA256_LEN, sha_hex);
	data[len - 1] = '\0';
	last = strrchr(data, '\n');
	last = last != NULL ? last + 1 : data;
	ck_assert(strncmp(last, "{\"seq\":7,", 9) == 0);
	ck_assert(pg_sha256(last, strlen(last), hash));
	pg_hex_encode(hash, PG_SHA256_LEN, last_hex);
	free(data);
	relink(log_path, last_hex, sha_hex, 7);

	verify_logs(&s, NULL);
	ck_assert_msg(s.broken == 0, "the forgery should pass without the key: %s", s.message);
	set_free(&s);
	verify_logs(&s, pub);
	ck_assert_uint_eq(s.broken, 1);
	ck_assert_msg(strstr(s.message, "checkpoint signature does not verify") != NULL, "%s",
	              s.message);
	set_free(&s);
	pg_audit_key_free(pub);
}
END_TEST

START_TEST(checkpoint_with_another_key_is_found)
{
	pg_audit_key *pub = checkpointed_log();
	EVP_PKEY *other_pkey;
	char *other = write_key("other.key", &other_pkey, false);
	char err[PATH_MAX + 512];
	struct set s;
	pg_audit *a;

	/* A signer with its own key appends a "checkpoint". */
	a = pg_audit_open(log_path, true, false, err, sizeof err);
	ck_assert_ptr_nonnull(a);
	pg_audit_set_checkpoint(a, load(other, true), 0);
	ck_assert_int_eq(pg_audit_checkpoint(a, NULL), 0);
	pg_audit_close(a);
	verify_logs(&s, pub);
	ck_assert_uint_eq(s.broken, 1);
	ck_assert_msg(strstr(s.message, "checkpoint signed with another key") != NULL, "%s",
	              s.message);
	set_free(&s);

	/* ... or claims the real key's hash: the signature fails. */
	{
		size_t len;
		char *data = t_read(log_path, &len), *last, *p, real[65];

		pg_hex_encode(pg_audit_key_sha256(pub), PG_SHA256_LEN, real);
		data[len - 1] = '\0';
		last = strrchr(data, '\n') + 1;
		p = strstr(last, "\"key_sha256\":\"") + 14;
		memcpy(p, real, 64);
		data[len - 1] = '\n';
		t_write(log_path, data, len);
		free(data);
	}
	verify_logs(&s, pub);
	ck_assert_uint_eq(s.broken, 1);
	ck_assert_msg(strstr(s.message, "checkpoint signature does not verify") != NULL, "%s",
	              s.message);
	set_free(&s);
	free(other);
	EVP_PKEY_free(other_pkey);
	pg_audit_key_free(pub);
}
END_TEST

START_TEST(key_readable_by_others_is_refused)
{
	EVP_PKEY *pkey;
	char *path = write_key("loose.key", &pkey, false), err[PATH_MAX + 256];

	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_ptr_null(pg_audit_key_load(path, true, err, sizeof err));
	ck_assert_msg(strstr(err, "may be read by others than its owner") != NULL, "%s", err);
	free(path);
	EVP_PKEY_free(pkey);
}
END_TEST

static Suite *
rotate_suite(void)
{
	Suite *s = suite_create("audit-rotate");
	TCase *tc = tcase_create("rotate");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, rotation_continues_the_chain);
	tcase_add_test(tc, max_size_rotates_by_itself);
	tcase_add_loop_test(tc, interrupted_rotation_is_finished, 0, 2);
	tcase_add_test(tc, set_names_missing_and_reordered_files);
	tcase_add_test(tc, set_finds_a_cut_and_rewritten_file);
	tcase_add_test(tc, checkpoints_verify);
	tcase_add_test(tc, edit_before_checkpoint_is_found);
	tcase_add_test(tc, cut_behind_checkpoint_is_found);
	tcase_add_test(tc, checkpoint_with_another_key_is_found);
	tcase_add_test(tc, key_readable_by_others_is_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(rotate_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
