/* SPDX-License-Identifier: Apache-2.0
 *
 * policy_rewriter MODE TARGET FILE-A FILE-B SECONDS: replaces TARGET with
 * the contents of FILE-A, FILE-B, FILE-A, ... for SECONDS (ending on A), as
 * an operator's deploy would, while a signer uses the policy
 * (tests/soak/policy-swap.sh).  MODE:
 *   rename  a temporary file in the same directory, renamed over TARGET
 *           (atomic: a reader sees the old file or the new one);
 *   lines   TARGET truncated in place and written one line per write(), as
 *           a shell script's `{ echo ...; echo ...; } >TARGET` does (not
 *           atomic: a reader can see any whole-line prefix);
 *   bytes   truncated in place and written in pieces cut at random bytes
 *           (a reader can see any prefix at all).
 * Pauses a random 0-2 ms between versions (250-450 ms after every 7th),
 * and yields between the pieces of an in-place write so that readers
 * really run in the middle of it.
 * Prints how many versions it wrote.
 *
 * policy_rewriter prefixes FILE: the SHA-256 of every prefix of FILE, one
 * "HEX LENGTH" line each, to name a half-read file by the hash p11gate
 * recorded for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

struct text {
	char *data;
	size_t len;
};

static int
slurp(const char *path, struct text *out)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;

	if (fd < 0 || fstat(fd, &st) != 0)
		goto out;
	out->len = (size_t)st.st_size;
	out->data = malloc(out->len + 1);
	if (out->data == NULL || read(fd, out->data, out->len) != (ssize_t)out->len)
		goto out;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		fprintf(stderr, "policy_rewriter: cannot read %s: %s\n", path, strerror(errno));
	return rc;
}

static int
write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
replace_by_rename(const char *target, const struct text *t)
{
	char tmp[4096];
	int fd, rc = -1;

	snprintf(tmp, sizeof tmp, "%s.rewriter.%ld", target, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (write_all(fd, t->data, t->len) == 0 && close(fd) == 0)
		rc = rename(tmp, target);
	else
		close(fd);
	return rc;
}

/* Truncates and writes in pieces: at every newline (lines) or at random
 * offsets (bytes). */
static int
rewrite_in_place(const char *target, const struct text *t, bool by_lines)
{
	int fd = open(target, O_WRONLY | O_TRUNC | O_CLOEXEC);
	size_t at = 0;

	if (fd < 0)
		return -1;
	while (at < t->len) {
		size_t piece;

		if (by_lines) {
			const char *nl = memchr(t->data + at, '\n', t->len - at);
			piece = nl != NULL ? (size_t)(nl - (t->data + at)) + 1 : t->len - at;
		} else {
			piece = 1 + (size_t)rand() % 96;
			if (piece > t->len - at)
				piece = t->len - at;
		}
		if (write_all(fd, t->data + at, piece) != 0) {
			close(fd);
			return -1;
		}
		at += piece;
		sched_yield();
	}
	return close(fd);
}

static int
print_prefixes(const char *path)
{
	struct text t = { 0 };
	unsigned char md[32];
	char hex[65];

	if (slurp(path, &t) != 0)
		return EXIT_FAILURE;
	for (size_t n = 0; n <= t.len; n++) {
		if (EVP_Digest(t.data, n, md, NULL, EVP_sha256(), NULL) != 1) {
			free(t.data);
			return EXIT_FAILURE;
		}
		for (int i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		printf("%s %zu\n", hex, n);
	}
	free(t.data);
	return EXIT_SUCCESS;
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct text text[2] = { { 0 }, { 0 } };
	const char *mode = argc == 6 ? argv[1] : "", *target;
	double seconds, end;
	unsigned long versions = 0;
	int status = EXIT_FAILURE;

	if (argc == 3 && strcmp(argv[1], "prefixes") == 0)
		return print_prefixes(argv[2]);
	if (argc != 6 || (strcmp(mode, "rename") != 0 && strcmp(mode, "lines") != 0 &&
	                  strcmp(mode, "bytes") != 0) || (seconds = atof(argv[5])) <= 0) {
		fprintf(stderr, "usage: policy_rewriter rename|lines|bytes TARGET FILE-A FILE-B SECONDS\n"
		                "       policy_rewriter prefixes FILE\n");
		return 2;
	}
	target = argv[2];
	if (slurp(argv[3], &text[0]) != 0 || slurp(argv[4], &text[1]) != 0)
		goto out;
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	end = now_seconds() + seconds;
	/* B first, so the signer sees a change at once; an even count ends on A. */
	for (;;) {
		const struct text *t = &text[(versions + 1) % 2];
		/* Mostly a quick succession; every 7th version (A and B in turn)
		 * stays long enough for a reader that waits for a file to
		 * settle before it trusts a change made in place. */
		const struct timespec pause = { 0, versions % 7 == 6 ? (250 + rand() % 200) * 1000000L
		                                                     : (long)(rand() % 2000) * 1000 };
		int rc;

		if (versions % 2 == 0 && now_seconds() >= end)
			break;
		if (strcmp(mode, "rename") == 0)
			rc = replace_by_rename(target, t);
		else
			rc = rewrite_in_place(target, t, strcmp(mode, "lines") == 0);
		if (rc != 0) {
			fprintf(stderr, "policy_rewriter: cannot write %s: %s\n", target, strerror(errno));
			goto out;
		}
		versions++;
		nanosleep(&pause, NULL);
	}
	printf("%lu\n", versions);
	status = EXIT_SUCCESS;
out:
	free(text[0].data);
	free(text[1].data);
	return status;
}
