/* SPDX-License-Identifier: Apache-2.0
 *
 * The subcommands of the p11gate tool.  Each takes the arguments after its
 * name (argv[0] is the subcommand) and returns the process exit status.
 */
#ifndef P11GATE_CLI_COMMANDS_H
#define P11GATE_CLI_COMMANDS_H

int pg_cmd_check(int argc, char **argv);     /* cmd_check.c */
int pg_cmd_explain(int argc, char **argv);   /* cmd_explain.c */
int pg_cmd_inventory(int argc, char **argv); /* cmd_inventory.c: also `keys` */
int pg_cmd_audit(int argc, char **argv);     /* cmd_audit.c: verify, find */
int pg_cmd_audit_watch(int argc, char **argv);   /* cmd_watch.c: audit watch, audit report */
int pg_cmd_grant(int argc, char **argv);     /* cmd_grant.c: new, approve, show, list, review */
#include <stddef.h>
#include <stdio.h>
/* audit find --break-glass --config: after a break-glass use, whether it
 * was reviewed (ctx: the policy). */
void pg_grant_review_annotate(void *ctx, const char *line, size_t len, FILE *out);

#include <stdbool.h>
#include "p11gate/policy.h"
/* explain --replay (cmd_replay.c): the exit status. */
int pg_explain_replay(const pg_policy *policy, const char *config, const char *log,
                      const char *since, bool json);

#endif
