/* SPDX-License-Identifier: Apache-2.0
 *
 * One grant file (docs/approvals.md): parsed strictly from its exact bytes,
 * with FILE:LINE:COLUMN errors, by the same YAML machinery as the policy.
 */
#ifndef P11GATE_GRANT_H
#define P11GATE_GRANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "p11gate/policy.h"

/* A grant file is a few hundred bytes; this only stops a wrong file. */
#define PG_GRANT_MAX_BYTES 65536
#define PG_GRANT_NAMESPACE "p11gate-grant"

struct pg_grant {
	char *id;                      /* equals the file's name without .yaml */
	char *key;                     /* a key name of the policy */
	char *requester;               /* a user name; NULL when the requester is an identity */
	/* An identity requester (requester: { issuer: NAME, claims: {...} }):
	 * the login: issuer's name and claims the caller's verified identity
	 * token must carry, each exactly. */
	char *issuer;
	char **claim_names, **claim_values;
	size_t n_claims;
	char *requester_text;          /* "ci" or "identity github repository=org/app ..." */
	time_t not_before, not_after;
	uint64_t max_signatures;       /* 0: not stated */
	unsigned char (*data_sha256)[32];
	size_t n_data_sha256;
	char *reason;
	unsigned char sha256[32];      /* of the file's bytes */
};

/* Parses a grant from the bytes of the file at path (whose base name must
 * be ID.yaml).  max_lifetime: the longest not_after - not_before allowed,
 * in seconds.  NULL after reporting every error to fn. */
struct pg_grant *pg_grant_parse(const char *path, const char *data, size_t len,
                                long max_lifetime, pg_diag_fn fn, void *ctx);
void pg_grant_free(struct pg_grant *grant);

/* "2026-12-03T10:00:00Z" (UTC, seconds, the Z required); false otherwise. */
bool pg_grant_time_parse(const char *text, time_t *out);
/* The same format back, into out (21 bytes). */
void pg_grant_time_format(time_t t, char *out, size_t out_len);
/* The id a grant file's base name carries ("rel-4.2.0" of ".../rel-4.2.0.yaml"),
 * into out; false if the name is not ID.yaml with a valid id. */
bool pg_grant_id_of(const char *path, char *out, size_t out_len);

#endif /* P11GATE_GRANT_H */
