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
#include "p11gate/policy.h"
/* diag.c: a problem as FILE:LINE:COL: error|warning: message on stderr;
 * as a pg_diag_fn, every problem or only the errors (a policy's warnings
 * are check's business). */
void pg_cli_diag_print(enum pg_severity severity, const char *file, unsigned long line,
                       unsigned long column, const char *message);
void pg_cli_print_diag(void *ctx, enum pg_severity severity, const char *file, unsigned long line,
                       unsigned long column, const char *message);
void pg_cli_print_errors(void *ctx, enum pg_severity severity, const char *file,
                         unsigned long line, unsigned long column, const char *message);
/* audit find --break-glass --config: after a break-glass use, whether it
 * was reviewed (ctx: the policy). */
void pg_grant_review_annotate(void *ctx, const char *line, size_t len, FILE *out);

#include <stdbool.h>
/* explain --replay (cmd_replay.c): the exit status. */
int pg_explain_replay(const pg_policy *policy, const char *config, const char *log,
                      const char *since, bool json);

#endif
