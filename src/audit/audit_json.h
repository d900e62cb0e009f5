/* SPDX-License-Identifier: Apache-2.0
 *
 * Reading audit lines with jansson: what `audit verify` and `audit find`
 * use to read records (the CLI and tests only: p11gate.so links no JSON
 * parser; its writer recognises its own lines in audit_tail.c).  The input
 * is untrusted (anyone who can write the log can put anything in it), so a
 * line with a duplicate key (two readers must never disagree on what a
 * record says), invalid UTF-8, a NUL in a key, an integer outside int64 or
 * anything after the value is refused, and nesting and object size are
 * bounded.
 */
#ifndef P11GATE_AUDIT_JSON_H
#define P11GATE_AUDIT_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "p11gate/common.h"

#define PG_JSON_MAX_DEPTH 32
#define PG_JSON_MAX_MEMBERS 1024

/* Parses exactly one JSON object or array spanning text[0..len) (surrounding
 * white space allowed).  NULL on error, with "column N: what is wrong" in
 * err (printable ASCII only: the message quotes input).  Free the value with
 * json_decref. */
json_t *pg_json_parse(const char *text, size_t len, char *err, size_t err_len);

/* The string's text, or NULL if value is not a string or holds a NUL byte
 * (so callers can treat it as a C string). */
const char *pg_json_string(const json_t *value);
/* A non-negative integer (no fraction or exponent in the text). */
bool pg_json_u64(const json_t *value, uint64_t *out);
/* Shortcut: the string member key of object, or NULL. */
const char *pg_json_get_string(const json_t *object, const char *key);

/* Whether line[0..len) is an audit record as far as the chain is
 * concerned: a JSON object with an integer "seq" and a 64-hex "prev".
 * Returns the parsed object (to free with json_decref) or NULL with a
 * reason in err. */
json_t *pg_audit_chain_record(const char *line, size_t len, uint64_t *seq,
                              unsigned char prev[PG_SHA256_LEN], char *err, size_t err_len);

#endif /* P11GATE_AUDIT_JSON_H */
