/* SPDX-License-Identifier: Apache-2.0
 *
 * Verifying a whole log file: line splitting and reading, with the rules
 * themselves in audit_chain.c.
 */
#include "audit_verify.h"

#include <errno.h>
#include <stdlib.h>

#include <openssl/evp.h>

int
pg_audit_read_line(FILE *f, char **buf, size_t *cap, size_t *len, bool *has_newline)
{
	ssize_t n;

	errno = 0;
	n = getline(buf, cap, f);
	if (n < 0)
		return ferror(f) ? -(errno != 0 ? errno : EIO) : 0;
	*has_newline = n > 0 && (*buf)[n - 1] == '\n';
	*len = (size_t)n - (*has_newline ? 1 : 0);
	return 1;
}

int
pg_audit_verify_stream_hash(FILE *f, struct pg_chain *chain, unsigned char *sha256)
{
	EVP_MD_CTX *md = NULL;
	bool has_newline = false;
	char *line = NULL;
	size_t cap = 0, len = 0;
	int rc;

	if (sha256 != NULL && ((md = EVP_MD_CTX_new()) == NULL ||
	                       EVP_DigestInit_ex(md, pg_sha256_md(), NULL) != 1)) {
		rc = -ENOMEM;
		goto out;
	}
	while ((rc = pg_audit_read_line(f, &line, &cap, &len, &has_newline)) > 0) {
		/* The file's bytes as they are, newline and all. */
		if (md != NULL && EVP_DigestUpdate(md, line, len + (has_newline ? 1 : 0)) != 1) {
			rc = -ENOMEM;
			break;
		}
		json_decref(pg_chain_feed(chain, line, len, has_newline));
	}
	if (rc == 0 && md != NULL && EVP_DigestFinal_ex(md, sha256, NULL) != 1)
		rc = -ENOMEM;
out:
	EVP_MD_CTX_free(md);
	free(line);
	if (rc < 0)
		return -rc;
	pg_chain_finish(chain);
	return 0;
}

int
pg_audit_verify_stream(FILE *f, struct pg_chain *chain)
{
	return pg_audit_verify_stream_hash(f, chain, NULL);
}

int
pg_audit_verify_path(const char *path, struct pg_chain *chain)
{
	FILE *f;
	int rc;

	f = fopen(path, "re");
	if (f == NULL)
		return errno;
	rc = pg_audit_verify_stream(f, chain);
	fclose(f);
	return rc;
}
