/* SPDX-License-Identifier: Apache-2.0
 *
 * Reads the end of the audit log to find what the next record chains to.
 * The writer calls this under the file lock whenever another process (or a
 * crash) changed the file since its own last append.
 */
#include "audit_tail.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pg_json *
pg_audit_chain_record(const char *line, size_t len, uint64_t *seq,
                      unsigned char prev[PG_SHA256_LEN], char *err, size_t err_len)
{
	const struct pg_json *v;
	struct pg_json *rec;
	const char *hex;

	rec = pg_json_parse(line, len, err, err_len);
	if (rec == NULL)
		return NULL;
	if (rec->type != PG_JSON_OBJECT) {
		snprintf(err, err_len, "not a JSON object");
		goto error;
	}
	v = pg_json_get(rec, "seq");
	if (v == NULL || !pg_json_u64(v, seq) || *seq == 0) {
		snprintf(err, err_len, v == NULL ? "no \"seq\"" : "\"seq\" is not a positive integer");
		goto error;
	}
	hex = pg_json_get_string(rec, "prev");
	if (hex == NULL) {
		snprintf(err, err_len, "no \"prev\" string");
		goto error;
	}
	for (const char *c = hex; *c != '\0'; c++) {
		/* Lower case only: one line, one spelling of its hash. */
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))) {
			snprintf(err, err_len, "\"prev\" is not 64 lower-case hex digits");
			goto error;
		}
	}
	if (!pg_hex_decode(hex, prev, PG_SHA256_LEN)) {
		snprintf(err, err_len, "\"prev\" is not 64 lower-case hex digits");
		goto error;
	}
	return rec;
error:
	pg_json_free(rec);
	return NULL;
}

static int
read_window(int fd, off_t start, size_t len, char *buf)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, buf + done, len - done, start + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return EIO;     /* the file shrank under the lock: not ours */
		done += (size_t)n;
	}
	return 0;
}

/* Whether buf[from..to) is a record; its seq in *seq. */
static bool
is_record(const char *buf, size_t from, size_t to, uint64_t *seq)
{
	unsigned char prev[PG_SHA256_LEN];
	struct pg_json *rec;
	char err[8];

	rec = pg_audit_chain_record(buf + from, to - from, seq, prev, err, sizeof err);
	pg_json_free(rec);
	return rec != NULL;
}

/* Scans the window buf (the file's bytes from window_start to the end) for
 * the tail.  Returns 0 when done, EAGAIN when the window must grow. */
static int
scan(const char *buf, size_t len, off_t window_start, struct pg_audit_tail *out)
{
	size_t end, start;
	uint64_t seq;

	out->needs_newline = buf[len - 1] != '\n';
	end = out->needs_newline ? len : len - 1;
	start = end;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	if (start == 0 && window_start > 0)
		return EAGAIN;
	/* The new record chains to the last line whatever it holds: a line
	 * cut short by a crash is kept and covered by the chain. */
	if (!pg_sha256(buf + start, end - start, out->hash))
		return ENOMEM;
	out->len = end - start;
	if (!out->needs_newline && is_record(buf, start, end, &out->seq)) {
		out->recovered = false;
		return 0;
	}
	out->recovered = true;
	if (out->needs_newline && is_record(buf, start, end, &out->seq))
		return 0;       /* cut just before its newline */
	/* Walk back over the broken lines to the last record, whose seq the
	 * new record continues. */
	while (start > 0) {
		end = start - 1;
		start = end;
		while (start > 0 && buf[start - 1] != '\n')
			start--;
		if (start == 0 && window_start > 0)
			return EAGAIN;
		if (is_record(buf, start, end, &seq)) {
			out->seq = seq;
			return 0;
		}
	}
	out->seq = 0;           /* no record before the broken line(s) */
	return 0;
}

int
pg_audit_tail_read(int fd, off_t size, struct pg_audit_tail *out, char *err, size_t err_len)
{
	size_t window = 16384, len;
	char *buf = NULL, *nbuf;
	int rc;

	memset(out, 0, sizeof *out);
	if (size == 0)
		return 0;
	for (;;) {
		len = (off_t)window < size ? window : (size_t)size;
		nbuf = realloc(buf, len);
		if (nbuf == NULL) {
			rc = ENOMEM;
			goto out;
		}
		buf = nbuf;
		rc = read_window(fd, size - (off_t)len, len, buf);
		if (rc != 0)
			goto out;
		rc = scan(buf, len, size - (off_t)len, out);
		if (rc != EAGAIN)
			goto out;
		if (window >= PG_AUDIT_TAIL_MAX) {
			snprintf(err, err_len, "no audit record in the last %d bytes of the file",
			         PG_AUDIT_TAIL_MAX);
			rc = EBADMSG;
			goto out;
		}
		window *= 2;
	}
out:
	free(buf);
	return rc;
}
