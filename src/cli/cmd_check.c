/* SPDX-License-Identifier: Apache-2.0
 *
 * `p11gate check FILE...`: loads each policy as the module would and prints
 * every error and warning as FILE:LINE:COL, so a policy can be checked in
 * review or CI before it is deployed.
 */
#include "commands.h"
#include "p11gate/common.h"
#include "p11gate/policy.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

struct check_counts {
	unsigned errors;
	unsigned warnings;
	bool quiet;
};

static void
print_diag(void *ctx, enum pg_severity severity, const char *file, unsigned long line,
           unsigned long column, const char *message)
{
	struct check_counts *counts = ctx;

	if (severity == PG_DIAG_ERROR)
		counts->errors++;
	else
		counts->warnings++;
	if (severity == PG_DIAG_WARNING && counts->quiet)
		return;
	pg_cli_diag_print(severity, file, line, column, message);
}

static void
count_rule(void *ctx, const char *rule, bool is_allow, bool matched, const char *why_not)
{
	size_t *n = ctx;

	(*n)++;
}

/* The header has no rule count; explaining a request for no key visits
 * every rule once, which is the count. */
static size_t
rule_count(const pg_policy *policy)
{
	struct pg_key_match none = { .n = 0, .pin_mismatch = -1 };
	struct pg_request request = { .op = PG_OP_SIGN, .mechanism = CK_UNAVAILABLE_INFORMATION,
	                              .key = &none };
	struct pg_decision decision;
	size_t n = 0;

	pg_policy_explain(policy, &request, count_rule, &n, &decision);
	return n;
}

static void
usage(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate check [OPTION]... FILE...\n"
	        "Check p11gate policy files: report every error and warning as\n"
	        "FILE:LINE:COLUMN: error|warning: message on standard error.\n"
	        "\n"
	        "  -q, --quiet   do not print warnings or the summary line\n"
	        "  -h, --help    display this help and exit\n"
	        "\n"
	        "For each valid file a summary 'FILE: ok (N keys, M rules, K warnings)' is\n"
	        "printed on standard output.\n"
	        "\n"
	        "Exit status: 0 if every file is valid (warnings allowed), 1 if any file has\n"
	        "an error or cannot be read, 2 on a usage error.\n");
}

int
pg_cmd_check(int argc, char **argv)
{
	static const struct option options[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool quiet = false;
	int status = 0, c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", options, NULL)) != -1) {
		switch (c) {
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'p11gate check --help' for more information.\n");
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "p11gate check: no policy file given\n"
		                "Try 'p11gate check --help' for more information.\n");
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		struct check_counts counts = { .quiet = quiet };
		pg_policy *policy = pg_policy_load(argv[i], print_diag, &counts);

		if (policy == NULL) {
			status = 1;
			continue;
		}
		if (!quiet)
			printf("%s: ok (%zu keys, %zu rules, %u warnings)\n", argv[i],
			       pg_policy_key_count(policy), rule_count(policy), counts.warnings);
		pg_policy_unref(policy);
	}
	return status;
}
