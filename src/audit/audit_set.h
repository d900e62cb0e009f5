/* SPDX-License-Identifier: Apache-2.0
 *
 * Verifying several files as one log: the files a rotation made continue
 * each other, so `audit verify` can check them in order and name a file
 * that is missing or out of order.  Each file's own chain is checked by
 * audit_chain.c; this checks the links between files.
 */
#ifndef P11GATE_AUDIT_SET_H
#define P11GATE_AUDIT_SET_H

#include <stdbool.h>
#include <stddef.h>
#include "audit_chain.h"

struct pg_audit_file {
	const char *name;                    /* as given or found */
	int read_error;                      /* errno if it could not be read, else 0 */
	struct pg_chain chain;               /* fed every line and finished */
	unsigned char sha256[PG_SHA256_LEN]; /* of all its bytes */
};

enum pg_audit_link {
	PG_LINK_OK,             /* continues the file before it, or nothing to say */
	PG_LINK_NOTE,           /* fine, but worth saying (the message says what) */
	PG_LINK_BROKEN,         /* a file is missing or out of order (the message says which) */
};

/* How file i of the set (0: the first) follows file i - 1. */
enum pg_audit_link pg_audit_set_link(const struct pg_audit_file *files, size_t n, size_t i,
                                     char *msg, size_t msg_len);

/* The last file of a set ends with a rotate record: the file after it is
 * not there.  False if it does not. */
bool pg_audit_set_open_end(const struct pg_audit_file *last, char *msg, size_t msg_len);

/* The log files in dir, oldest first (by their first record's time, then
 * name): its regular files except hidden ones (.NAME.rotate-XXXXXX is a
 * rotation's unpublished new file) and LOG.sync.  0 or an errno value;
 * free with pg_audit_dir_files_free. */
int pg_audit_dir_files(const char *dir, char ***paths, size_t *n);
void pg_audit_dir_files_free(char **paths, size_t n);

#endif /* P11GATE_AUDIT_SET_H */
