/* SPDX-License-Identifier: Apache-2.0
 *
 * The p11gate command-line tool: dispatches to the subcommands that let
 * operators check and question a policy and auditors verify the log.
 */
#include "p11gate-build.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "check",   pg_cmd_check,   "validate a policy file" },
	{ "explain", pg_cmd_explain, "say whether a call would be allowed, and why" },
	{ "inventory", pg_cmd_inventory, "list every key on the tokens, its certificates, owner and status" },
	{ "audit",   pg_cmd_audit,   "verify, search, rotate, checkpoint, watch or summarise the audit log" },
	{ "grant",   pg_cmd_grant,   "write, approve, show and list grants (approvals)" },
};

static void
usage(FILE *out)
{
	fprintf(out, "Usage: p11gate COMMAND [OPTION]...\n"
	             "Policy gate for PKCS#11 private keys.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nOptions:\n"
	             "  -h, --help     display this help and exit\n"
	             "      --version  display the version and exit\n"
	             "\nRun 'p11gate COMMAND --help' for a command's options; man p11gate for all.\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("p11gate %s\n", P11GATE_VERSION);
		return 0;
	}
	/* `keys` is inventory's old name, kept for scripts (not listed). */
	if (strcmp(argv[1], "keys") == 0)
		return pg_cmd_inventory(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "p11gate: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
