/* SPDX-License-Identifier: Apache-2.0
 *
 * A strict JSON (RFC 8259) reader for one audit line at a time: what
 * `audit verify` and `audit find` use to read records.  The input is
 * untrusted (anyone who can write the log can put anything in it), so the
 * reader bounds nesting and object size, rejects duplicate keys (two readers
 * must never disagree on what a record says) and invalid UTF-8.
 */
#ifndef P11GATE_AUDIT_JSON_H
#define P11GATE_AUDIT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pg_json_type {
	PG_JSON_NULL,
	PG_JSON_FALSE,
	PG_JSON_TRUE,
	PG_JSON_NUMBER,
	PG_JSON_STRING,
	PG_JSON_ARRAY,
	PG_JSON_OBJECT,
};

struct pg_json {
	enum pg_json_type type;
	char *text;                 /* STRING: decoded UTF-8; NUMBER: the literal */
	size_t len;                 /* bytes in text (a string may hold \u0000) */
	size_t n;                   /* ARRAY, OBJECT: number of items */
	struct pg_json *items;      /* ARRAY, OBJECT: the values */
	char **keys;                /* OBJECT: the keys, decoded */
};

#define PG_JSON_MAX_DEPTH 32
#define PG_JSON_MAX_MEMBERS 1024

/* Parses exactly one JSON value spanning text[0..len) (surrounding white
 * space allowed).  NULL on error, with "column N: what is wrong" in err. */
struct pg_json *pg_json_parse(const char *text, size_t len, char *err, size_t err_len);
void pg_json_free(struct pg_json *value);

/* The member called key of an object, or NULL (also if value is no object). */
const struct pg_json *pg_json_get(const struct pg_json *object, const char *key);
/* The string's text, or NULL if value is not a string or holds a NUL byte
 * (so callers can treat it as a C string). */
const char *pg_json_string(const struct pg_json *value);
/* A non-negative integer literal without fraction or exponent that fits in
 * 64 bits. */
bool pg_json_u64(const struct pg_json *value, uint64_t *out);
/* Shortcut: the string member key of object, or NULL. */
const char *pg_json_get_string(const struct pg_json *object, const char *key);

#endif /* P11GATE_AUDIT_JSON_H */
