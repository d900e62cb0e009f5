/* SPDX-License-Identifier: Apache-2.0
 *
 * `p11gate audit find` without the command line: selects records by data
 * hash, signature hash, key, time, decision or identity claim, and prints each with its
 * partner (a decision with its result, a result with its decision), so an
 * auditor sees which key signed what, for whom, under which rule.
 */
#ifndef P11GATE_AUDIT_FIND_H
#define P11GATE_AUDIT_FIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A UTC instant with microseconds. */
struct pg_instant {
	int64_t sec;
	long usec;
};

/* Parses YYYY-MM-DD[(T| )HH:MM[:SS[.fraction]]][Z], always UTC: the form of
 * the records' "time" and of --since/--until.  false if malformed or not a
 * real date. */
bool pg_audit_parse_time(const char *text, struct pg_instant *out);

#define PG_AUDIT_FIND_MAX_CLAIMS 16

struct pg_audit_find_query {
	const char *data_sha256;        /* 64 lower-case hex digits, or NULL */
	const char *signature_sha256;   /* idem */
	const char *key;                /* the key name or its PKCS#11 URI */
	bool has_since;
	struct pg_instant since;        /* inclusive */
	bool has_until;
	struct pg_instant until;        /* exclusive */
	const char *decision;           /* "allow", "deny" or NULL */
	bool break_glass;               /* only the uses a break-glass rule allowed */
	/* NAME=GLOB each: records whose identity (the pipeline's verified
	 * token) has the claim NAME (or the field: issuer, sub, jti, ...)
	 * matching GLOB; every one must match. */
	const char *claims[PG_AUDIT_FIND_MAX_CLAIMS];
	size_t n_claims;
	bool json;                      /* raw JSON lines instead of one readable line each */
	/* After each record printed readably: lines of its own about the record
	 * (its line's bytes, without the newline); NULL: none.  The CLI says
	 * there whether a break-glass use was reviewed. */
	void (*annotate)(void *ctx, const char *line, size_t len, FILE *out);
	void *annotate_ctx;
};

/* Prints the matching records of f (read twice: f must be a file) to out in
 * file order.  Checks the chain while reading and warns on warn, naming
 * name, if it is broken.  0 with *printed set, or an errno value. */
int pg_audit_find_stream(FILE *f, const char *name, const struct pg_audit_find_query *query,
                         FILE *out, FILE *warn, size_t *printed);

#endif /* P11GATE_AUDIT_FIND_H */
