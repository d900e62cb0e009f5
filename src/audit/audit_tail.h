/* SPDX-License-Identifier: Apache-2.0
 *
 * Finding where the chain ends: the sequence number and line hash a new
 * record must continue from, read backwards from the end of the log, and
 * whether the last write was cut short (a writer killed mid-write).
 */
#ifndef P11GATE_AUDIT_TAIL_H
#define P11GATE_AUDIT_TAIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "p11gate/common.h"

/* "YYYY-MM-DDTHH:MM:SS.uuuuuuZ", as the writer puts it in every record. */
#define PG_AUDIT_TIME_LEN 27

struct pg_audit_tail {
	uint64_t seq;                         /* seq of the last record, 0 if none */
	unsigned char hash[PG_SHA256_LEN];    /* SHA-256 of the last line's bytes; zeros if empty */
	size_t len;                           /* the last line's length, without its newline */
	bool recovered;                       /* the last line is not a complete record */
	bool needs_newline;                   /* the file does not end in '\n' */
	/* The last line is a whole "rotate" record: the file was closed by a
	 * rotation (docs/audit.md, "Rotation"); seal_time is its "time". */
	bool sealed;
	char seal_time[PG_AUDIT_TIME_LEN + 1];
};

/* How far back from the end the last record is looked for.  A record is a
 * few hundred bytes; this bounds the work a corrupted file can cause. */
#define PG_AUDIT_TAIL_MAX (1024 * 1024)

/* Reads len bytes at start (all of them: EIO if the file is shorter).  0
 * or an errno value. */
int pg_audit_read_window(int fd, off_t start, size_t len, char *buf);

/* Finds the tail in buf[0..len) (len > 0), the file's bytes from
 * window_start to its end.  0, ENOMEM, or EAGAIN when the window starts
 * after the line the tail needs (read more of the file). */
int pg_audit_tail_scan(const char *buf, size_t len, off_t window_start, struct pg_audit_tail *out);

/* Reads the end of the file fd (size bytes long) with pread.  0, or an
 * errno value: EBADMSG if no record is found within PG_AUDIT_TAIL_MAX bytes
 * of the end (reason in err). */
int pg_audit_tail_read(int fd, off_t size, struct pg_audit_tail *out, char *err, size_t err_len);

/* Whether line[0..len) has the shape of a whole record as compose() in
 * audit.c writes one: {"seq":N, ... ,"prev":"<64 lower-case hex>"}, N from
 * 1 to INT64_MAX without leading zeros, every brace and bracket opened
 * outside a string closed exactly at the last byte, no raw control byte,
 * no space outside strings.
 * Its seq and prev in *seq and prev.  Any prefix of a record (a line a
 * crash cut short) fails this.  It is not a JSON parser: the writer uses
 * it to find the record its next one continues; `audit verify` requires it
 * of every record besides parsing the line (audit_json.c), so every line
 * verify takes for a record the writer does too. */
bool pg_audit_record_frame(const char *line, size_t len, uint64_t *seq,
                           unsigned char prev[PG_SHA256_LEN]);

#endif /* P11GATE_AUDIT_TAIL_H */
