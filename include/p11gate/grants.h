/* SPDX-License-Identifier: Apache-2.0
 *
 * Grants as `p11gate grant show` and `grant list` see them: one grant file
 * judged against a loaded policy, each approval signature beside it
 * verified (docs/approvals.md).  The decision itself is the approval:
 * condition of pg_policy_decide.
 */
#ifndef P11GATE_GRANTS_H
#define P11GATE_GRANTS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "p11gate/policy.h"

/* One ID.yaml.NAME.sig beside a grant. */
struct pg_grant_sig_info {
	const char *file;              /* its base name */
	const char *approver;          /* the approver whose key signed it, NULL if none */
	const char *fingerprint;       /* "SHA256:…" of the signing key, NULL if unreadable */
	bool verified;                 /* a valid p11gate-grant signature over the grant's bytes */
	const char *why;               /* why not, when !verified */
	bool sk;                       /* a FIDO (sk-) key: */
	unsigned sk_flags;             /*   its authenticator flags */
	unsigned long sk_counter;      /*   and counter */
};

/* One approval rule naming the grant's key, and what it needs. */
struct pg_grant_rule_info {
	const char *rule;
	unsigned needed;
	unsigned counted;              /* distinct approvers in from, not the requester */
	const char *approvers;         /* "alice, bob": who counted */
	const char *missing;           /* what is missing, "" when met */
};

struct pg_grant_info {
	const char *id, *key, *requester, *reason;
	time_t not_before, not_after;
	uint64_t max_signatures;       /* 0: not stated */
	unsigned char sha256[32];      /* of the file's bytes */
	bool key_known;                /* the policy names the key */
	bool revoked;                  /* listed in grants.revoked */
	const char *state;             /* "valid", "expired at …", "not valid before …", "revoked" */
};

/* What pg_grant_inspect reports, in this order: the grant, each signature,
 * each approval rule for its key.  The pointers live until the call returns. */
struct pg_grant_inspect_fns {
	void (*grant)(void *ctx, const struct pg_grant_info *grant);
	void (*sig)(void *ctx, const struct pg_grant_sig_info *sig);
	void (*rule)(void *ctx, const struct pg_grant_rule_info *rule);
};

/* Reads the grant file at path (errors to diag, as FILE:LINE:COL), verifies
 * every signature beside it against the policy's approvers, and reports
 * them at time now.  false if the file could not be read or did not parse. */
bool pg_grant_inspect(const pg_policy *policy, const char *path, time_t now,
                      pg_diag_fn diag, void *diag_ctx, const struct pg_grant_inspect_fns *fns,
                      void *ctx);

/* Whether text would parse as the grant file path under the policy
 * (errors to diag): `p11gate grant new` checks what it writes. */
bool pg_grant_check_text(const pg_policy *policy, const char *path, const char *text, size_t len,
                         pg_diag_fn diag, void *diag_ctx);

/* The grant files (ID.yaml) in dir, sorted; each is passed to fn.  0, or
 * an errno value. */
int pg_grant_list(const char *dir, void (*fn)(void *ctx, const char *path), void *ctx);

/* The namespace approvals are signed in: ssh-keygen -Y sign -n p11gate-grant. */
#define PG_GRANT_SIG_NAMESPACE "p11gate-grant"
/* The namespace reviews of break-glass uses are signed in. */
#define PG_REVIEW_SIG_NAMESPACE "p11gate-review"

/* Verifies each signature beside the file at path (PATH.NAME.sig) over its
 * exact bytes in namespace ns against the policy's approvers; each_sig per
 * signature.  0 or an errno value (the file or its directory unreadable). */
int pg_approvals_of_file(const pg_policy *policy, const char *path, const char *ns,
                         void (*each_sig)(void *ctx, const struct pg_grant_sig_info *sig),
                         void *ctx);

#endif /* P11GATE_GRANTS_H */
