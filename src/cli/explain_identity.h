/* SPDX-License-Identifier: Apache-2.0
 *
 * The pipeline identity of `p11gate explain --identity-token | --claims`
 * (explain_identity.c).
 */
#ifndef P11GATE_CLI_EXPLAIN_IDENTITY_H
#define P11GATE_CLI_EXPLAIN_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include "p11gate/login.h"
#include "p11gate/policy.h"

/* The identity of a token file (verified against the policy's issuers at
 * now, as C_Login would) or of a JSON object of claims (claims != NULL;
 * its iss names the issuer).  0 with *out set, or with *out NULL and the
 * verifier's reason in refused when the token would be refused at login;
 * 2 on a usage error (printed). */
int pg_explain_login_new(const pg_policy *policy, const char *token_file, const char *claims,
                         time_t now, struct pg_login_id **out, char *refused, size_t refused_len);

/* One `identity:` line. */
void pg_explain_login_print(const struct pg_login_id *id, bool from_claims);

#endif
