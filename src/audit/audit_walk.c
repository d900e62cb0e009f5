/* SPDX-License-Identifier: Apache-2.0
 *
 * Every record of a log in file order, from a file or a rotated set (see
 * audit_walk.h).  Lines are parsed as strictly as verify parses them
 * (audit_json.c); a line that is no record is counted and skipped.
 */
#include "audit_walk.h"
#include "audit_json.h"
#include "audit_set.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
walk_file(const char *path, pg_audit_walk_fn each, void *ctx, struct pg_audit_walk_stats *stats,
          bool *stopped, char *err, size_t err_len)
{
	bool not_regular;
	char *line = NULL, why[160];
	size_t cap = 0;
	ssize_t len;
	FILE *f = NULL;
	int fd, rc = 0;

	fd = pg_open_regular(path, &not_regular);
	if (fd < 0 || (f = fdopen(fd, "r")) == NULL) {
		rc = errno != 0 ? errno : EIO;
		snprintf(err, err_len, "%s: cannot read: %s", path,
		         not_regular ? "not a regular file" : strerror(rc));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	stats->files++;
	while (!*stopped && (len = getline(&line, &cap, f)) > 0) {
		uint64_t seq;
		unsigned char prev[PG_SHA256_LEN];
		json_t *rec;

		if (line[len - 1] == '\n')
			len--;
		rec = pg_audit_chain_record(line, (size_t)len, &seq, prev, why, sizeof why);
		if (rec == NULL) {
			stats->bad_lines++;
			continue;
		}
		stats->records++;
		*stopped = !each(ctx, rec, path);
		json_decref(rec);
	}
	if (ferror(f)) {
		rc = EIO;
		snprintf(err, err_len, "%s: read error", path);
	}
out:
	free(line);
	if (f != NULL)
		fclose(f);
	return rc;
}

int
pg_audit_walk(const char *path, pg_audit_walk_fn each, void *ctx, struct pg_audit_walk_stats *stats,
              char *err, size_t err_len)
{
	char **paths = NULL;
	bool stopped = false;
	struct stat st;
	size_t n = 0;
	int rc;

	memset(stats, 0, sizeof *stats);
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return walk_file(path, each, ctx, stats, &stopped, err, err_len);
	rc = pg_audit_dir_files(path, &paths, &n);
	if (rc != 0) {
		snprintf(err, err_len, "%s: cannot list: %s", path, strerror(rc));
		return rc;
	}
	for (size_t i = 0; rc == 0 && !stopped && i < n; i++)
		rc = walk_file(paths[i], each, ctx, stats, &stopped, err, err_len);
	pg_audit_dir_files_free(paths, n);
	return rc;
}

bool
pg_audit_parse_since(const char *text, time_t now, struct pg_instant *out)
{
	static const struct { char unit; long seconds; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 },
	};
	unsigned long long n;
	char *end;

	if (pg_audit_parse_time(text, out))
		return true;
	if (text[0] < '0' || text[0] > '9')
		return false;
	errno = 0;
	n = strtoull(text, &end, 10);
	if (errno != 0 || end[0] == '\0' || end[1] != '\0')
		return false;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (end[0] == units[i].unit && n <= (unsigned long long)now / (unsigned long long)units[i].seconds) {
			out->sec = (int64_t)now - (int64_t)n * units[i].seconds;
			out->usec = 0;
			return true;
		}
	}
	return false;
}

bool
pg_audit_record_since(const json_t *record, const struct pg_instant *since)
{
	const char *text = pg_json_get_string(record, "time");
	struct pg_instant t;

	if (text == NULL || !pg_audit_parse_time(text, &t))
		return false;
	return t.sec > since->sec || (t.sec == since->sec && t.usec >= since->usec);
}

void
pg_audit_caller_text(const json_t *caller, char *out, size_t len)
{
	const char *user = pg_json_get_string(caller, "user"), *exe = pg_json_get_string(caller, "exe");
	char u[160], e[320];
	uint64_t uid;

	if (!pg_json_u64(json_object_get(caller, "uid"), &uid)) {
		snprintf(out, len, "(no caller)");
		return;
	}
	snprintf(out, len, "user %s (uid %" PRIu64 "), program %s",
	         user != NULL ? pg_esc(user, PG_ESC_VALUE, u, sizeof u) : "?", uid,
	         exe != NULL ? pg_esc(exe, PG_ESC_VALUE, e, sizeof e) : "(unknown)");
}

int
pg_audit_json_print(json_t *out)
{
	int rc = 0;

	if (out == NULL)
		return ENOMEM;
	if (json_dumpf(out, stdout, JSON_COMPACT) != 0)
		rc = EIO;
	printf("\n");
	json_decref(out);
	return rc;
}
