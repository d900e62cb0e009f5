/* SPDX-License-Identifier: Apache-2.0
 *
 * Reads the end of the audit log to find what the next record chains to.
 * The writer calls this under the file lock whenever another process (or a
 * crash) changed the file since its own last append.  It parses no JSON
 * (p11gate.so parses no audit record; its only JSON is identity tokens,
 * src/login/): a record is recognised by the shape
 * the writer gives every line, which `audit verify` requires too.
 */
#include "audit_tail.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
pg_audit_read_window(int fd, off_t start, size_t len, char *buf)
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

/* The digits of a seq: 1 to INT64_MAX without leading zeros (the largest
 * integer the CLI's reader takes), then the comma.  Returns the bytes read
 * (0 if none fit). */
static size_t
frame_seq(const char *s, size_t len, uint64_t *seq)
{
	uint64_t v = 0;
	size_t i = 0;

	if (len == 0 || s[0] < '1' || s[0] > '9')
		return 0;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > ((uint64_t)INT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return 0;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == len || s[i] != ',')
		return 0;
	*seq = v;
	return i + 1;
}

/* Whether s[0..len) closes every brace and bracket it opens, outside
 * strings, exactly at its last byte, and holds no raw control byte (the
 * writer escapes them all) and no space outside strings.  Any shorter prefix of a line the writer wrote
 * fails this: it stops inside the outer object. */
static bool
frame_closes(const char *s, size_t len)
{
	bool in_string = false, escaped = false;
	size_t depth = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20)
			return false;
		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
		} else if (c == ' ') {
			return false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0 || (--depth == 0 && i + 1 != len))
				return false;
		}
	}
	return depth == 0 && !in_string;
}

bool
pg_audit_record_frame(const char *line, size_t len, uint64_t *seq,
                      unsigned char prev[PG_SHA256_LEN])
{
	static const char head[] = "{\"seq\":", tail[] = ",\"prev\":\"";
	const size_t head_len = sizeof head - 1, tail_len = sizeof tail - 1;
	const size_t end_len = tail_len + PG_SHA256_HEX_LEN + 2;       /* ..."} */
	char hex[PG_SHA256_HEX_LEN + 1];
	size_t n;

	if (len < head_len + end_len || memcmp(line, head, head_len) != 0)
		return false;
	n = frame_seq(line + head_len, len - head_len, seq);
	if (n == 0 || head_len + n > len - end_len + 1)
		return false;
	if (memcmp(line + len - end_len, tail, tail_len) != 0 ||
	    memcmp(line + len - 2, "\"}", 2) != 0)
		return false;
	memcpy(hex, line + len - end_len + tail_len, PG_SHA256_HEX_LEN);
	hex[PG_SHA256_HEX_LEN] = '\0';
	for (size_t i = 0; i < PG_SHA256_HEX_LEN; i++) {
		/* Lower case only: one line, one spelling of its hash. */
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return false;
	}
	return pg_hex_decode(hex, prev, PG_SHA256_LEN) && frame_closes(line, len);
}

/* Whether buf[from..to) is a record; its seq in *seq. */
static bool
is_record(const char *buf, size_t from, size_t to, uint64_t *seq)
{
	unsigned char prev[PG_SHA256_LEN];

	return pg_audit_record_frame(buf + from, to - from, seq, prev);
}

/* Whether line[0..len), a whole record, is one this writer's kind wrote to
 * close a file at rotation, and its time.  Read from the bytes the writer
 * itself puts there ({"seq":N,"time":"…","host":"…","event":"rotate",…):
 * inside a JSON string every quote is escaped, so the unescaped pattern
 * can only be the record's own event field. */
static bool
is_seal(const char *line, size_t len, char time[PG_AUDIT_TIME_LEN + 1])
{
	static const char event[] = ",\"event\":\"rotate\",", head[] = "{\"seq\":",
	                  at[] = ",\"time\":\"", format[] = "DDDD-DD-DDTDD:DD:DD.DDDDDDZ";
	size_t i = sizeof head - 1;

	if (len < sizeof head - 1 || memcmp(line, head, sizeof head - 1) != 0)
		return false;
	while (i < len && line[i] >= '0' && line[i] <= '9')
		i++;
	if (len - i < sizeof at - 1 + PG_AUDIT_TIME_LEN ||
	    memcmp(line + i, at, sizeof at - 1) != 0)
		return false;
	i += sizeof at - 1;
	/* The closed file's kept name is made of it: only the writer's own
	 * format, never a '/' or anything else someone who can write the log
	 * put there. */
	for (size_t k = 0; k < PG_AUDIT_TIME_LEN; k++) {
		char want = format[k], c = line[i + k];

		if (want == 'D' ? c < '0' || c > '9' : c != want)
			return false;
	}
	memcpy(time, line + i, PG_AUDIT_TIME_LEN);
	time[PG_AUDIT_TIME_LEN] = '\0';
	return memmem(line + i, len - i, event, sizeof event - 1) != NULL;
}

int
pg_audit_tail_scan(const char *buf, size_t len, off_t window_start, struct pg_audit_tail *out)
{
	size_t end, start;
	uint64_t seq;

	memset(out, 0, sizeof *out);
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
		out->sealed = is_seal(buf + start, end - start, out->seal_time);
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
		rc = pg_audit_read_window(fd, size - (off_t)len, len, buf);
		if (rc != 0)
			goto out;
		rc = pg_audit_tail_scan(buf, len, size - (off_t)len, out);
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
