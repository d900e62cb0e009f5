/* SPDX-License-Identifier: Apache-2.0
 *
 * `p11gate audit verify` without the command line: reads a log file through
 * the chain checker, so tests and the CLI share one implementation.
 */
#ifndef P11GATE_AUDIT_VERIFY_H
#define P11GATE_AUDIT_VERIFY_H

#include <stdbool.h>
#include <stdio.h>
#include "audit_chain.h"

/* Reads the next line of f into *buf (without its newline).  1 with *len and
 * *has_newline set, 0 at the end, or -errno on a read error. */
int pg_audit_read_line(FILE *f, char **buf, size_t *cap, size_t *len, bool *has_newline);

/* Feeds every line of f to chain (initialised by the caller, with its
 * settings) and finishes it.  0, or an errno value if f could not be read;
 * the verdict is in chain->problem. */
int pg_audit_verify_stream(FILE *f, struct pg_chain *chain);

/* The same, and the SHA-256 of all the bytes read into sha256 (NULL: not
 * hashed): what a rotated file's successor names. */
int pg_audit_verify_stream_hash(FILE *f, struct pg_chain *chain, unsigned char *sha256);

/* The same for a file; 0 or an errno value (the file could not be read). */
int pg_audit_verify_path(const char *path, struct pg_chain *chain);

#endif /* P11GATE_AUDIT_VERIFY_H */
