/* SPDX-License-Identifier: Apache-2.0
 *
 * `p11gate audit verify|find|rotate|checkpoint` (watch and report are in
 * cmd_watch.c): the auditor's and the
 * operator's commands.  Option parsing and output only; the checking is in
 * src/audit/audit_chain.c and audit_set.c, the searching in audit_find.c,
 * rotation and checkpoints in audit.c, where the tests call them directly.
 */
#include "commands.h"
#include "p11gate/common.h"
#include "p11gate/audit.h"
#include "p11gate/policy.h"
#include "audit_chain.h"
#include "audit_find.h"
#include "audit_set.h"
#include "audit_verify.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void
audit_usage(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate audit verify [OPTION]... FILE...|DIR\n"
	        "       p11gate audit find [OPTION]... FILE...\n"
	        "       p11gate audit rotate [--config FILE] [--quiet]\n"
	        "       p11gate audit checkpoint [--config FILE] [--quiet]\n"
	        "       p11gate audit watch [--json] [--since T] [--count N] LOG\n"
	        "       p11gate audit report [--since T] [--json] LOG\n"
	        "Check the hash chain of p11gate audit logs, find records in them, start a new\n"
	        "log file that continues the chain, sign the log's head, follow its alerts, or\n"
	        "summarise it.\n"
	        "Run 'p11gate audit COMMAND --help' for details.\n");
}

static void
verify_usage(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate audit verify [OPTION]... FILE...\n"
	        "       p11gate audit verify [OPTION]... DIR\n"
	        "Check that each audit log is intact: every line a record, seq going up by one,\n"
	        "each record carrying the SHA-256 of the line before it (zeros on the first).\n"
	        "Several files are checked in the order given, and a file that a rotation\n"
	        "made must continue the file before it (its first record names that file's\n"
	        "last line and SHA-256): a missing or reordered file is named.  DIR checks\n"
	        "every log file in it (not hidden files or LOG.sync), oldest first.\n"
	        "FILE - reads standard input.  Only regular files are read.\n\n"
	        "  --allow-truncated-tail  accept a last line cut short by a crash\n"
	        "  --checkpoint-key PUB    check every checkpoint's signature with this public key\n"
	        "                          (PEM) and report the records after the last one as\n"
	        "                          not protected by a checkpoint\n"
	        "  --since-seq N           check the chain from the record with seq N on (the\n"
	        "                          lines before it are not checked; one FILE only)\n"
	        "  --expect-last-seq N     fail unless the log reaches seq N (a seq seen earlier,\n"
	        "                          e.g. in syslog): proves nothing was cut off its end\n"
	        "                          (one FILE only)\n"
	        "  --expect-head SEQ:SHA256  fail unless the record with seq SEQ is there and its\n"
	        "                          line has this SHA-256 (a head kept earlier: the\n"
	        "                          'head' of a previous verify, or a line from syslog;\n"
	        "                          one FILE only)\n"
	        "  -q, --quiet             print only problems\n"
	        "  -h, --help              show this help\n\n"
	        "A tamper record (a writer found the log cut behind it) makes a log not intact.\n"
	        "Exit status: 0 if every file is intact and linked, 1 if one is not (the first\n"
	        "bad line and what is wrong are printed) or cannot be read, 2 on a usage error.\n");
}

static void
rotate_usage(FILE *out, const char *cmd)
{
	if (strcmp(cmd, "rotate") == 0)
		fprintf(out,
		        "Usage: p11gate audit rotate [--config FILE] [--quiet]\n"
		        "Close the audit log named by the configuration's audit.file with a rotate\n"
		        "record, keep it as FILE-YYYYMMDDTHHMMSS.uuuuuuZ beside it, and start a new\n"
		        "file whose first record continues the chain (it names the closed file, its\n"
		        "last line's hash and its SHA-256), followed by a checkpoint signed with\n"
		        "audit.checkpoint_key if one is configured.  Writers in other processes\n"
		        "move to the new file without losing a record.  Never copy or truncate the\n"
		        "log instead (logrotate's copytruncate).\n\n");
	else
		fprintf(out,
		        "Usage: p11gate audit checkpoint [--config FILE] [--quiet]\n"
		        "Append a checkpoint to the audit log: a record signed with audit.checkpoint_key\n"
		        "over the log's head, so the records before it cannot be changed or cut off\n"
		        "unnoticed by anyone who verifies with the public key.  Run it as the key's\n"
		        "owner (e.g. from cron), never as a signer.\n\n");
	fprintf(out,
	        "  -c, --config FILE  the p11gate configuration (default: $P11GATE_CONFIG, then\n"
	        "                     /etc/p11gate/p11gate.yaml)\n"
	        "  -q, --quiet        print only problems\n"
	        "  -h, --help         show this help\n\n"
	        "Exit status: 0 on success, 1 on failure, 2 on a usage error.\n");
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
	        "  --break-glass           uses a break-glass rule allowed (with the justification)\n"
	        "  --config FILE           with the policy FILE: after each break-glass use,\n"
	        "                          whether approvers reviewed it (p11gate grant review)\n"
	        "  --claim NAME=GLOB       records of a pipeline whose identity token's claim\n"
	        "                          NAME (or issuer, sub, jti) matches GLOB, e.g.\n"
	        "                          repository=acme/app (repeatable: all must match)\n"
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

/* Verifies one file of a set into file (whose chain has the settings),
 * printing its verdict; 0 if intact. */
static int
verify_file(struct pg_audit_file *file, bool quiet)
{
	char summary[720], shown[1024];
	FILE *f;
	int rc;

	if (!quiet) {
		file->chain.note = print_note;
		file->chain.note_ctx = (void *)file->name;
	}
	f = open_log("verify", file->name, true);
	if (f == NULL) {
		file->read_error = EIO;
		return 1;
	}
	rc = pg_audit_verify_stream_hash(f, &file->chain, file->sha256);
	close_log(f);
	if (rc != 0) {
		fprintf(stderr, "p11gate audit verify: %s: cannot read: %s\n", file->name, strerror(rc));
		file->read_error = rc;
		return 1;
	}
	if (file->chain.problem != PG_CHAIN_OK) {
		printf("%s: NOT intact: %s\n", file->name, pg_esc(file->chain.message, PG_ESC_TEXT, shown,
		                                                     sizeof shown));
		return 1;
	}
	if (!quiet) {
		pg_chain_summary(&file->chain, file->name, summary, sizeof summary);
		printf("%s\n", summary);
	}
	return 0;
}

/* The files' links to each other; 0 if nothing is missing or out of order. */
static int
verify_links(const struct pg_audit_file *files, size_t n, bool whole_dir, bool quiet)
{
	char msg[1024], shown[2048];
	int status = 0;

	for (size_t i = 0; i < n; i++) {
		switch (pg_audit_set_link(files, n, i, msg, sizeof msg)) {
		case PG_LINK_BROKEN:
			printf("%s: NOT intact: %s\n", files[i].name, pg_esc(msg, PG_ESC_TEXT, shown,
			                                                    sizeof shown));
			status = 1;
			break;
		case PG_LINK_NOTE:
			if (!quiet)
				printf("%s: note: %s\n", files[i].name, pg_esc(msg, PG_ESC_TEXT, shown,
				                                              sizeof shown));
			break;
		case PG_LINK_OK:
			break;
		}
	}
	/* A directory holds the live log: a closed newest file means it is
	 * gone.  Files given one by one may just not include it. */
	if (n > 0 && pg_audit_set_open_end(&files[n - 1], msg, sizeof msg)) {
		if (whole_dir) {
			printf("%s: NOT intact: %s\n", files[n - 1].name, msg);
			status = 1;
		} else if (!quiet) {
			printf("%s: note: %s\n", files[n - 1].name, msg);
		}
	}
	return status;
}

/* What the checkpoints protect, over the whole set in order. */
static void
report_checkpoints(const struct pg_audit_file *files, size_t n, const char *key_path)
{
	uint64_t verified = 0, unprotected = 0, total = 0;
	const struct pg_audit_file *last = NULL;
	char shown[PATH_MAX * 2];

	for (size_t i = 0; i < n; i++) {
		verified += files[i].chain.checkpoints_ok;
		total += files[i].chain.records;
		if (files[i].chain.checkpoints_ok > 0) {
			last = &files[i];
			unprotected = 0;
		}
		unprotected += files[i].chain.after_checkpoint;
	}
	pg_esc(key_path, PG_ESC_VALUE, shown, sizeof shown);
	if (last == NULL) {
		printf("checkpoints: none verified with %s: all %" PRIu64 " records are unprotected (a "
		       "checkpoint is what proves them unchanged)\n", shown, total);
		return;
	}
	printf("checkpoints: %" PRIu64 " verified with %s; the last is seq %" PRIu64 " (%s line %zu): "
	       "everything up to it is protected; %" PRIu64 " record%s after it %s unprotected\n",
	       verified, shown, last->chain.checkpoint_seq, last->name, last->chain.checkpoint_line,
	       unprotected, unprotected == 1 ? "" : "s", unprotected == 1 ? "is" : "are");
}

static int
cmd_verify(int argc, char **argv)
{
	static const struct option options[] = {
		{ "allow-truncated-tail", no_argument, NULL, 't' },
		{ "since-seq", required_argument, NULL, 'S' },
		{ "expect-last-seq", required_argument, NULL, 'L' },
		{ "expect-head", required_argument, NULL, 'H' },
		{ "checkpoint-key", required_argument, NULL, 'K' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct pg_audit_file *files = NULL;
	const char *key_path = NULL;
	pg_audit_key *key = NULL;
	struct pg_chain settings;
	char **paths = NULL, err[PATH_MAX + 256];
	size_t n = 0;
	bool quiet = false, whole_dir = false;
	struct stat st;
	int c, rc, status = 0;

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
		case 'K':
			key_path = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			verify_usage(stdout);
			return 0;
		default:
			if (optopt == 'S' || optopt == 'L' || optopt == 'H' || optopt == 'K')
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
	whole_dir = argc - optind == 1 && stat(argv[optind], &st) == 0 && S_ISDIR(st.st_mode);
	/* A seq or head belongs to one file. */
	if ((argc - optind > 1 || whole_dir) &&
	    (settings.since_seq > 0 || settings.expect_last_seq > 0 || settings.head_seq > 0)) {
		fprintf(stderr, "p11gate audit verify: --since-seq, --expect-last-seq and "
		        "--expect-head take one FILE\n");
		return 2;
	}
	if (key_path != NULL && (key = pg_audit_key_load(key_path, false, err, sizeof err)) == NULL) {
		fprintf(stderr, "p11gate audit verify: %s\n", err);
		return 2;
	}
	if (whole_dir) {
		rc = pg_audit_dir_files(argv[optind], &paths, &n);
		if (rc != 0 || n == 0) {
			fprintf(stderr, "p11gate audit verify: %s: %s\n", argv[optind],
			        rc != 0 ? strerror(rc) : "no log file in the directory");
			status = 1;
			goto out;
		}
	} else {
		n = (size_t)(argc - optind);
	}
	files = calloc(n, sizeof *files);
	if (files == NULL) {
		fprintf(stderr, "p11gate audit verify: out of memory\n");
		status = 1;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		files[i].name = whole_dir ? paths[i] : argv[optind + (int)i];
		files[i].chain = settings;
		files[i].chain.checkpoint_key = key;
		if (verify_file(&files[i], quiet) != 0)
			status = 1;
	}
	if (verify_links(files, n, whole_dir, quiet) != 0)
		status = 1;
	if (key != NULL && !quiet)
		report_checkpoints(files, n, key_path);
out:
	free(files);
	pg_audit_dir_files_free(paths, n);
	pg_audit_key_free(key);
	return status;
}

/* `audit rotate` and `audit checkpoint`: the configured log, written
 * through the same code and locks as the module's writers. */
static int
cmd_rotate(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = getenv("P11GATE_CONFIG"), *cmd = argv[0];
	bool rotate = strcmp(cmd, "rotate") == 0, quiet = false;
	char err[PATH_MAX + 512], kept[PATH_MAX], shown[PATH_MAX * 2];
	const struct pg_settings *settings;
	pg_policy *policy = NULL;
	pg_audit *audit = NULL;
	pg_audit_key *key = NULL;
	uint64_t seq = 0;
	struct stat st;
	int c, rc, status = 1;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:qh", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			rotate_usage(stdout, cmd);
			return 0;
		default:
			fprintf(stderr, "p11gate audit %s: %s '%s'\n", cmd, optopt == 'c' ?
			        "option needs a value:" : "unknown option", argv[optind - 1]);
			rotate_usage(stderr, cmd);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "p11gate audit %s: unexpected argument '%s'\n", cmd, argv[optind]);
		rotate_usage(stderr, cmd);
		return 2;
	}
	if (config == NULL || config[0] == '\0')
		config = "/etc/p11gate/p11gate.yaml";
	policy = pg_policy_load(config, pg_cli_print_errors, NULL);
	if (policy == NULL)
		goto out;
	settings = pg_policy_settings(policy);
	if (settings->audit_file == NULL) {
		fprintf(stderr, "p11gate audit %s: %s: no audit log is configured (audit: file:)\n",
		        cmd, config);
		goto out;
	}
	pg_esc(settings->audit_file, PG_ESC_VALUE, shown, sizeof shown);
	if (rotate && stat(settings->audit_file, &st) != 0 && errno == ENOENT) {
		if (!quiet)
			printf("%s: no log to rotate\n", shown);
		status = 0;
		goto out;
	}
	/* The key first: a rotation without the checkpoint the
	 * configuration promises is refused, not half done. */
	if (settings->audit_checkpoint_key != NULL &&
	    (key = pg_audit_key_load(settings->audit_checkpoint_key, true, err, sizeof err)) == NULL) {
		fprintf(stderr, "p11gate audit %s: %s (run it as the key's owner)\n", cmd, err);
		goto out;
	}
	if (!rotate && key == NULL) {
		fprintf(stderr, "p11gate audit checkpoint: %s: no audit.checkpoint_key is configured\n",
		        config);
		goto out;
	}
	/* Not synced through LOG.sync: this process may be another user
	 * than the writers; it syncs what it writes itself. */
	audit = pg_audit_open(settings->audit_file, false, false, err, sizeof err);
	if (audit == NULL) {
		fprintf(stderr, "p11gate audit %s: %s\n", cmd, err);
		goto out;
	}
	pg_audit_set_checkpoint(audit, key, 0);
	key = NULL;
	if (rotate) {
		rc = pg_audit_rotate(audit, "p11gate audit rotate", kept, err, sizeof err);
		if (rc != 0) {
			fprintf(stderr, "p11gate audit rotate: %s\n", err);
			goto out;
		}
		if (!quiet)
			printf("%s: rotated; the closed file is kept as %s\n", shown,
			       pg_esc(kept, PG_ESC_VALUE, err, sizeof err));
	} else {
		rc = pg_audit_checkpoint(audit, &seq);
		if (rc == 0)
			rc = pg_audit_sync(audit, seq);
		if (rc != 0) {
			fprintf(stderr, "p11gate audit checkpoint: %s: %s\n", shown, strerror(rc));
			goto out;
		}
		if (!quiet)
			printf("%s: checkpoint at seq %" PRIu64 "\n", shown, seq);
	}
	status = 0;
out:
	pg_audit_close(audit);
	pg_audit_key_free(key);
	pg_policy_unref(policy);
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
	enum { DATA = 256, SIGNATURE, KEY, SINCE, UNTIL, DECISION, JSON, BREAK_GLASS, CONFIG, CLAIM };
	static const struct option options[] = {
		{ "data-sha256", required_argument, NULL, DATA },
		{ "signature-sha256", required_argument, NULL, SIGNATURE },
		{ "key", required_argument, NULL, KEY },
		{ "since", required_argument, NULL, SINCE },
		{ "until", required_argument, NULL, UNTIL },
		{ "decision", required_argument, NULL, DECISION },
		{ "json", no_argument, NULL, JSON },
		{ "break-glass", no_argument, NULL, BREAK_GLASS },
		{ "config", required_argument, NULL, CONFIG },
		{ "claim", required_argument, NULL, CLAIM },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct pg_audit_find_query query = { 0 };
	const char *config = NULL;
	pg_policy *policy = NULL;
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
		case BREAK_GLASS:
			query.break_glass = true;
			break;
		case CONFIG:
			config = optarg;
			break;
		case CLAIM:
			if (strchr(optarg, '=') == NULL || optarg[0] == '=') {
				fprintf(stderr, "p11gate audit find: --claim wants NAME=GLOB, e.g. "
				        "repository=acme/app, not '%s'\n", optarg);
				return 2;
			}
			if (query.n_claims == PG_AUDIT_FIND_MAX_CLAIMS) {
				fprintf(stderr, "p11gate audit find: at most %d --claim options\n",
				        PG_AUDIT_FIND_MAX_CLAIMS);
				return 2;
			}
			query.claims[query.n_claims++] = optarg;
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
	/* The reviews are signed by the policy's approvers, kept in its grants.dir. */
	if (config != NULL) {
		if ((policy = pg_policy_load(config, pg_cli_print_errors, NULL)) == NULL)
			return 2;
		query.annotate = pg_grant_review_annotate;
		query.annotate_ctx = policy;
	}
	for (int i = optind; i < argc; i++) {
		if (find_one(argv[i], &query, &total) != 0)
			status = 2;
	}
	pg_policy_unref(policy);
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
	if (strcmp(argv[1], "rotate") == 0 || strcmp(argv[1], "checkpoint") == 0)
		return cmd_rotate(argc - 1, argv + 1);
	if (strcmp(argv[1], "watch") == 0 || strcmp(argv[1], "report") == 0)
		return pg_cmd_audit_watch(argc - 1, argv + 1);
	fprintf(stderr, "p11gate audit: unknown command '%s' (verify, find, rotate, checkpoint, "
	        "watch or report)\n", argv[1]);
	audit_usage(stderr);
	return 2;
}
