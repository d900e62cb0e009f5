/* SPDX-License-Identifier: Apache-2.0
 *
 * `p11gate audit verify|find`: the auditor's commands.  Option parsing and
 * output only; the checking is in src/audit/audit_chain.c and the searching
 * in src/audit/audit_find.c, where the tests call them directly.
 */
#include "commands.h"
#include "p11gate/common.h"
#include "audit_chain.h"
#include "audit_find.h"
#include "audit_verify.h"
#include "p11gate/common.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void
audit_usage(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate audit verify [--allow-truncated-tail] [--quiet] FILE...\n"
	        "       p11gate audit verify [--since-seq N] [--expect-last-seq N]\n"
	        "                            [--expect-head SEQ:SHA256] FILE\n"
	        "       p11gate audit find [OPTION]... FILE...\n"
	        "Check the hash chain of p11gate audit logs, or find records in them.\n"
	        "Run 'p11gate audit verify --help' or 'p11gate audit find --help' for details.\n");
}

static void
verify_usage(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate audit verify [OPTION]... FILE...\n"
	        "Check that each audit log is intact: every line a record, seq going up by one,\n"
	        "each record carrying the SHA-256 of the line before it (zeros on the first).\n"
	        "Each file is verified on its own (a rotated log starts again at zero);\n"
	        "FILE - reads standard input.  Only regular files are read.\n\n"
	        "  --allow-truncated-tail  accept a last line cut short by a crash\n"
	        "  --since-seq N           check the chain from the record with seq N on (the\n"
	        "                          lines before it are not checked)\n"
	        "  --expect-last-seq N     fail unless the log reaches seq N (a seq seen earlier,\n"
	        "                          e.g. in syslog): proves nothing was cut off its end\n"
	        "  --expect-head SEQ:SHA256  fail unless the record with seq SEQ is there and its\n"
	        "                          line has this SHA-256 (a head kept earlier: the\n"
	        "                          'head' of a previous verify, or a line from syslog)\n"
	        "  -q, --quiet             print only problems\n"
	        "  -h, --help              show this help\n\n"
	        "A tamper record (a writer found the log cut behind it) makes a log not intact.\n"
	        "Exit status: 0 if every file is intact, 1 if one is not (the first bad line\n"
	        "and what is wrong are printed) or cannot be read, 2 on a usage error.\n");
}

static void
find_usage(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate audit find [OPTION]... FILE...\n"
	        "Print the records that match every option given, each with its partner: a\n"
	        "decision with the result that followed it, a result with its decision.\n\n"
	        "  --data-sha256 HEX       records of the data with this SHA-256\n"
	        "  --signature-sha256 HEX  records of the signature with this SHA-256\n"
	        "  --key NAME              records of this key (policy name or PKCS#11 URI)\n"
	        "  --since TIME            records at or after TIME\n"
	        "  --until TIME            records before TIME\n"
	        "  --decision allow|deny   decisions of this kind\n"
	        "  --json                  print the records' JSON lines as they are\n"
	        "  -h, --help              show this help\n\n"
	        "TIME is UTC: 2026-11-23, 2026-11-23T17:45, 2026-11-23T17:45:58.5Z.\n"
	        "The chain is checked while reading; a broken one is reported on stderr.\n"
	        "Exit status: 0 if records were printed, 1 if none matched, 2 on an error.\n");
}

/* A log to read, or NULL with the reason printed.  Only a regular file (or
 * "-", standard input, where the command reads once): a FIFO or device
 * could block the command forever. */
static FILE *
open_log(const char *cmd, const char *path, bool stdin_ok)
{
	bool not_regular;
	FILE *f;
	int fd;

	if (stdin_ok && strcmp(path, "-") == 0)
		return stdin;
	fd = pg_open_regular(path, &not_regular);
	if (fd < 0) {
		fprintf(stderr, "p11gate audit %s: %s: cannot read: %s\n", cmd, path,
		        not_regular ? "not a regular file (give the log file itself)" : strerror(errno));
		return NULL;
	}
	f = fdopen(fd, "r");
	if (f == NULL) {
		fprintf(stderr, "p11gate audit %s: %s: cannot read: %s\n", cmd, path, strerror(errno));
		close(fd);
	}
	return f;
}

static void
close_log(FILE *f)
{
	if (f != stdin)
		fclose(f);
}

static void
print_note(void *ctx, const char *message)
{
	const char *name = ctx;
	char shown[1024];

	printf("%s: note: %s\n", name, pg_esc(message, PG_ESC_TEXT, shown, sizeof shown));
}

/* A positive decimal integer that fits in 64 bits. */
static bool
seq_arg(const char *arg, uint64_t *out)
{
	uint64_t v = 0;

	if (*arg == '\0')
		return false;
	for (const char *p = arg; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return v > 0;
}

/* SEQ:SHA256, the hash in either case. */
static bool
head_arg(char *arg, struct pg_chain *settings)
{
	char *colon = strchr(arg, ':');
	bool ok;

	if (colon == NULL)
		return false;
	*colon = '\0';
	ok = seq_arg(arg, &settings->head_seq) && strlen(colon + 1) == PG_SHA256_HEX_LEN &&
	     pg_hex_decode(colon + 1, settings->head_hash, PG_SHA256_LEN);
	*colon = ':';
	return ok;
}

static int
verify_one(const char *path, const struct pg_chain *settings, bool quiet)
{
	char summary[720], shown[1024];
	struct pg_chain chain;
	FILE *f;
	int rc;

	pg_chain_init(&chain);
	chain.allow_truncated_tail = settings->allow_truncated_tail;
	chain.since_seq = settings->since_seq;
	chain.expect_last_seq = settings->expect_last_seq;
	chain.head_seq = settings->head_seq;
	memcpy(chain.head_hash, settings->head_hash, sizeof chain.head_hash);
	if (!quiet) {
		chain.note = print_note;
		chain.note_ctx = (void *)path;
	}
	f = open_log("verify", path, true);
	if (f == NULL)
		return 1;
	rc = pg_audit_verify_stream(f, &chain);
	close_log(f);
	if (rc != 0) {
		fprintf(stderr, "p11gate audit verify: %s: cannot read: %s\n", path, strerror(rc));
		return 1;
	}
	if (chain.problem != PG_CHAIN_OK) {
		printf("%s: NOT intact: %s\n", path, pg_esc(chain.message, PG_ESC_TEXT, shown,
		                                               sizeof shown));
		return 1;
	}
	if (!quiet) {
		pg_chain_summary(&chain, path, summary, sizeof summary);
		printf("%s\n", summary);
	}
	return 0;
}

static int
cmd_verify(int argc, char **argv)
{
	static const struct option options[] = {
		{ "allow-truncated-tail", no_argument, NULL, 't' },
		{ "since-seq", required_argument, NULL, 'S' },
		{ "expect-last-seq", required_argument, NULL, 'L' },
		{ "expect-head", required_argument, NULL, 'H' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct pg_chain settings;
	bool quiet = false;
	int c, status = 0;

	pg_chain_init(&settings);

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "qh", options, NULL)) != -1) {
		switch (c) {
		case 't':
			settings.allow_truncated_tail = true;
			break;
		case 'S':
		case 'L':
			if (!seq_arg(optarg, c == 'S' ? &settings.since_seq : &settings.expect_last_seq)) {
				fprintf(stderr, "p11gate audit verify: %s needs a seq (a positive "
				        "integer), not '%s'\n", c == 'S' ? "--since-seq" : "--expect-last-seq",
				        optarg);
				return 2;
			}
			break;
		case 'H':
			if (!head_arg(optarg, &settings)) {
				fprintf(stderr, "p11gate audit verify: --expect-head needs SEQ:SHA256 (a "
				        "positive integer, a colon, 64 hex digits), not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			verify_usage(stdout);
			return 0;
		default:
			if (optopt == 'S' || optopt == 'L' || optopt == 'H')
				fprintf(stderr, "p11gate audit verify: option '%s' needs a value\n",
				        argv[optind - 1]);
			else
				fprintf(stderr, "p11gate audit verify: unknown option '%s'\n",
				        argv[optind - 1]);
			verify_usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "p11gate audit verify: no FILE given\n");
		verify_usage(stderr);
		return 2;
	}
	/* A seq or head belongs to one file: each rotated file starts again. */
	if (argc - optind > 1 && (settings.since_seq > 0 || settings.expect_last_seq > 0 ||
	                          settings.head_seq > 0)) {
		fprintf(stderr, "p11gate audit verify: --since-seq, --expect-last-seq and "
		        "--expect-head take one FILE (each file has its own seqs)\n");
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		if (verify_one(argv[i], &settings, quiet) != 0)
			status = 1;
	}
	return status;
}

/* A SHA-256 argument: 64 hex digits in either case, kept in lower case as
 * the log writes them. */
static bool
hash_arg(char *arg)
{
	if (strlen(arg) != 64)
		return false;
	for (char *p = arg; *p != '\0'; p++) {
		if (!isxdigit((unsigned char)*p))
			return false;
		*p = (char)tolower((unsigned char)*p);
	}
	return true;
}

static int
find_one(const char *path, const struct pg_audit_find_query *query, size_t *total)
{
	size_t printed = 0;
	FILE *f;
	int rc;

	f = open_log("find", path, false);
	if (f == NULL)
		return 2;
	rc = pg_audit_find_stream(f, path, query, stdout, stderr, &printed);
	fclose(f);
	*total += printed;
	if (rc != 0) {
		fprintf(stderr, "p11gate audit find: %s: cannot read: %s%s\n", path, strerror(rc),
		        rc == ESPIPE ? " (find reads the file twice: give a file, not a pipe)" : "");
		return 2;
	}
	return 0;
}

static int
cmd_find(int argc, char **argv)
{
	enum { DATA = 256, SIGNATURE, KEY, SINCE, UNTIL, DECISION, JSON };
	static const struct option options[] = {
		{ "data-sha256", required_argument, NULL, DATA },
		{ "signature-sha256", required_argument, NULL, SIGNATURE },
		{ "key", required_argument, NULL, KEY },
		{ "since", required_argument, NULL, SINCE },
		{ "until", required_argument, NULL, UNTIL },
		{ "decision", required_argument, NULL, DECISION },
		{ "json", no_argument, NULL, JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct pg_audit_find_query query = { 0 };
	size_t total = 0;
	int c, status = 0;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case DATA:
		case SIGNATURE:
			if (!hash_arg(optarg)) {
				fprintf(stderr, "p11gate audit find: %s needs a SHA-256 in hex (64 digits), "
				        "not '%s'\n", c == DATA ? "--data-sha256" : "--signature-sha256",
				        optarg);
				return 2;
			}
			if (c == DATA)
				query.data_sha256 = optarg;
			else
				query.signature_sha256 = optarg;
			break;
		case KEY:
			query.key = optarg;
			break;
		case SINCE:
		case UNTIL:
			if (!pg_audit_parse_time(optarg, c == SINCE ? &query.since : &query.until)) {
				fprintf(stderr, "p11gate audit find: %s '%s' is not a time (use UTC: "
				        "2026-11-23, 2026-11-23T17:45 or 2026-11-23T17:45:58Z)\n",
				        c == SINCE ? "--since" : "--until", optarg);
				return 2;
			}
			if (c == SINCE)
				query.has_since = true;
			else
				query.has_until = true;
			break;
		case DECISION:
			if (strcmp(optarg, "allow") != 0 && strcmp(optarg, "deny") != 0) {
				fprintf(stderr, "p11gate audit find: --decision is allow or deny, not '%s'\n",
				        optarg);
				return 2;
			}
			query.decision = optarg;
			break;
		case JSON:
			query.json = true;
			break;
		case 'h':
			find_usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "p11gate audit find: option '%s' needs a value\n", argv[optind - 1]);
			return 2;
		default:
			if (optopt >= DATA)
				fprintf(stderr, "p11gate audit find: option '%s' needs a value\n",
				        argv[optind - 1]);
			else
				fprintf(stderr, "p11gate audit find: unknown option '%s'\n", argv[optind - 1]);
			find_usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "p11gate audit find: no FILE given\n");
		find_usage(stderr);
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		if (find_one(argv[i], &query, &total) != 0)
			status = 2;
	}
	if (status == 0 && total == 0)
		status = 1;
	return status;
}

int
pg_cmd_audit(int argc, char **argv)
{
	if (argc < 2) {
		audit_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		audit_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	if (strcmp(argv[1], "find") == 0)
		return cmd_find(argc - 1, argv + 1);
	fprintf(stderr, "p11gate audit: unknown command '%s' (verify or find)\n", argv[1]);
	audit_usage(stderr);
	return 2;
}
