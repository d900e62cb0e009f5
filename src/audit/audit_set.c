/* SPDX-License-Identifier: Apache-2.0
 *
 * The links between the files of a rotated log (docs/audit.md, "Rotation"):
 * a file a rotation made starts with a continue record whose prev is the
 * hash of the previous file's last line and which names that file's
 * SHA-256, so the previous file is identified by its bytes, whatever it is
 * called now.  And a directory's log files, in order.
 */
#include "audit_set.h"
#include "audit_json.h"
#include "audit_verify.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether b's first record continues a, byte for byte. */
static bool
continues(const struct pg_audit_file *b, const struct pg_audit_file *a)
{
	return a->read_error == 0 && b->chain.continues &&
	       memcmp(a->sha256, b->chain.previous_sha256, PG_SHA256_LEN) == 0 &&
	       memcmp(a->chain.prev_hash, b->chain.continue_prev, PG_SHA256_LEN) == 0 &&
	       (a->chain.problem != PG_CHAIN_OK || a->chain.last_seq + 1 == b->chain.continue_seq);
}

enum pg_audit_link
pg_audit_set_link(const struct pg_audit_file *files, size_t n, size_t i, char *msg,
                  size_t msg_len)
{
	const struct pg_audit_file *b = &files[i], *a = i > 0 ? &files[i - 1] : NULL;
	char sha[PG_SHA256_HEX_LEN + 1];

	msg[0] = '\0';
	if (b->read_error != 0 || (a != NULL && a->read_error != 0))
		return PG_LINK_OK;      /* reported already */
	if (a != NULL && a->chain.records == 0)
		a = NULL;               /* no log (reported already): nothing to link to */
	if (!b->chain.continues) {
		if (a != NULL && a->chain.closed_line != 0) {
			snprintf(msg, msg_len, "does not continue %s, which a rotation closed (it starts "
			         "a new chain): the file that continues %s is missing", a->name, a->name);
			return PG_LINK_BROKEN;
		}
		if (a != NULL && b->chain.records > 0) {
			snprintf(msg, msg_len, "starts a new chain: nothing links it to %s (a rotation "
			         "not made by p11gate, or another log)", a->name);
			return PG_LINK_NOTE;
		}
		return PG_LINK_OK;
	}
	if (a != NULL && continues(b, a))
		return PG_LINK_OK;
	for (size_t j = 0; j < n; j++) {
		if (j != i && (a == NULL || j != i - 1) && continues(b, &files[j])) {
			snprintf(msg, msg_len, "continues %s, not %s: the files are out of order",
			         files[j].name, a != NULL ? a->name : "nothing (it is first)");
			return PG_LINK_BROKEN;
		}
	}
	pg_hex_encode(b->chain.previous_sha256, PG_SHA256_LEN, sha);
	if (a != NULL) {
		snprintf(msg, msg_len, "does not continue %s: the file before it (%s when it was "
		         "rotated, %" PRIu64 " bytes, SHA-256 %s, ending at seq %" PRIu64 ") is missing "
		         "or was changed", a->name, b->chain.previous_file, b->chain.previous_size, sha,
		         b->chain.continue_seq - 1);
		return PG_LINK_BROKEN;
	}
	snprintf(msg, msg_len, "continues %s (ending at seq %" PRIu64 "), which is not given: "
	         "checked from its first record", b->chain.previous_file, b->chain.continue_seq - 1);
	return PG_LINK_NOTE;
}

bool
pg_audit_set_open_end(const struct pg_audit_file *last, char *msg, size_t msg_len)
{
	if (last->read_error != 0 || last->chain.closed_line == 0)
		return false;
	snprintf(msg, msg_len, "a rotation closed it (line %zu), but no file given continues it: "
	         "the file after it (the live log, or a newer one) is missing", last->chain.closed_line);
	return true;
}

struct found {
	char *path;
	char time[40];          /* the first record's, "" if none */
};

/* The first record's time, to order the files by. */
static void
first_time(struct found *f)
{
	char *line = NULL, err[8];
	size_t cap = 0, len = 0;
	bool has_newline;
	json_t *rec = NULL;
	unsigned char prev[PG_SHA256_LEN];
	const char *time;
	uint64_t seq;
	FILE *in;
	bool not_regular;
	int fd = pg_open_regular(f->path, &not_regular);

	f->time[0] = '\0';
	if (fd < 0 || (in = fdopen(fd, "r")) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (pg_audit_read_line(in, &line, &cap, &len, &has_newline) > 0 &&
	    (rec = pg_audit_chain_record(line, len, &seq, prev, err, sizeof err)) != NULL &&
	    (time = pg_json_get_string(rec, "time")) != NULL)
		snprintf(f->time, sizeof f->time, "%s", time);
	json_decref(rec);
	free(line);
	fclose(in);
}

static int
by_time(const void *x, const void *y)
{
	const struct found *a = x, *b = y;
	int c = strcmp(a->time, b->time);

	return c != 0 ? c : strcmp(a->path, b->path);
}

static bool
is_log_name(const char *name)
{
	size_t len = strlen(name);

	return name[0] != '.' && !(len >= 5 && strcmp(name + len - 5, ".sync") == 0);
}

int
pg_audit_dir_files(const char *dir, char ***paths, size_t *n)
{
	struct found *found = NULL, *more;
	size_t count = 0, cap = 0;
	struct dirent *e;
	struct stat st;
	DIR *d;
	int rc = 0;

	*paths = NULL;
	*n = 0;
	d = opendir(dir);
	if (d == NULL)
		return errno;
	while ((e = readdir(d)) != NULL) {
		if (!is_log_name(e->d_name) || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (count == cap) {
			cap = cap != 0 ? 2 * cap : 16;
			more = realloc(found, cap * sizeof *found);
			if (more == NULL) {
				rc = ENOMEM;
				goto out;
			}
			found = more;
		}
		if (asprintf(&found[count].path, "%s/%s", dir, e->d_name) < 0) {
			rc = ENOMEM;
			goto out;
		}
		first_time(&found[count++]);
	}
	if (count > 1) /* qsort's base must not be NULL, even for no entries */
		qsort(found, count, sizeof *found, by_time);
	*paths = calloc(count + 1, sizeof **paths);
	if (*paths == NULL) {
		rc = ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		(*paths)[i] = found[i].path;
		found[i].path = NULL;
	}
	*n = count;
out:
	for (size_t i = 0; i < count; i++)
		free(found[i].path);
	free(found);
	closedir(d);
	return rc;
}

void
pg_audit_dir_files_free(char **paths, size_t n)
{
	for (size_t i = 0; paths != NULL && i < n; i++)
		free(paths[i]);
	free(paths);
}
