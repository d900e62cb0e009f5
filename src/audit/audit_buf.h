/* SPDX-License-Identifier: Apache-2.0
 *
 * A growable byte buffer and the JSON writing primitives the audit record is
 * built from: escaped strings, integers, hex.  Allocation failure is sticky
 * (the buffer remembers it), so a record is built without checking every
 * call and tested once at the end.
 */
#ifndef P11GATE_AUDIT_BUF_H
#define P11GATE_AUDIT_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pg_buf {
	char *data;
	size_t len;
	size_t cap;
	bool failed;    /* an allocation failed: contents are incomplete */
	bool borrowed;  /* data is the caller's storage (pg_buf_init_on), not the heap's */
};

void pg_buf_init(struct pg_buf *buf);
/* Starts in the caller's storage (e.g. on the stack: a record then costs no
 * allocation); moves to the heap only if it outgrows it. */
void pg_buf_init_on(struct pg_buf *buf, char *storage, size_t cap);
void pg_buf_release(struct pg_buf *buf);          /* frees data; buf can be reused after init */
bool pg_buf_reserve(struct pg_buf *buf, size_t extra);
void pg_buf_append(struct pg_buf *buf, const void *data, size_t len);
void pg_buf_puts(struct pg_buf *buf, const char *s);
void pg_buf_u64(struct pg_buf *buf, uint64_t value);

/* value in decimal, not terminated; returns the length.  (snprintf is a
 * measurable part of an audit append.) */
#define PG_U64_DECIMAL_MAX 20
size_t pg_u64_decimal(uint64_t value, char out[PG_U64_DECIMAL_MAX]);

/* A JSON string literal (quotes included).  Control characters and DEL are
 * written as \u00XX; valid UTF-8 is copied as is; a byte that is not part of
 * a valid UTF-8 sequence (overlong, surrogate, out of range, cut short) is
 * written as \u00XX of the byte, so the line is always valid JSON. */
void pg_buf_json_string(struct pg_buf *buf, const char *s);
void pg_buf_json_string_n(struct pg_buf *buf, const char *s, size_t len);
/* "hex" of len bytes, quoted. */
void pg_buf_json_hex(struct pg_buf *buf, const unsigned char *data, size_t len);

/* Length of the valid UTF-8 sequence at s (at most avail bytes), or 0 if
 * the bytes there are not one. */
size_t pg_utf8_sequence_len(const unsigned char *s, size_t avail);

#endif /* P11GATE_AUDIT_BUF_H */
