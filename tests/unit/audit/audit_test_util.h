/* SPDX-License-Identifier: Apache-2.0
 *
 * Helpers shared by the audit tests: temporary directories, whole-file
 * reads and writes, a sample record, and an independent check of the hash
 * chain that uses OpenSSL and plain string handling, not p11gate's reader.
 */
#ifndef P11GATE_AUDIT_TEST_UTIL_H
#define P11GATE_AUDIT_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "p11gate/audit.h"

/* A new empty directory under TMPDIR (or /tmp); aborts on failure. */
char *t_tempdir(void);
/* rm -r of a directory made by t_tempdir. */
void t_rmdir(char *dir);
/* dir/name, malloc'd. */
char *t_path(const char *dir, const char *name);

/* The whole file; *len set.  NULL if it cannot be read. */
char *t_read(const char *path, size_t *len);
void t_write(const char *path, const char *data, size_t len);
void t_append(const char *path, const char *data, size_t len);

/* A decision record with every pointer field set (no caller). */
void t_record(struct pg_audit_record *r, const char *rule);

/* Recomputes the chain of path with OpenSSL directly: every line ends with
 * '\n', line i's "seq" is i and its "prev" is the SHA-256 of line i-1's
 * bytes (64 zeros for line 1).  Returns the number of lines, or -(the first
 * bad line). */
long t_independent_chain(const char *path);

/* Lines (count of '\n') in path. */
size_t t_count_lines(const char *path);

#endif
