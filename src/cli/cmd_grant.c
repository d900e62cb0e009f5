/* SPDX-License-Identifier: Apache-2.0
 *
 * `p11gate grant new|approve|show|list|review`: writing a grant, approving
 * it with an OpenSSH key (this command runs ssh-keygen -Y sign; the module
 * never runs a program), showing whether a grant is valid under a policy,
 * who approved it and whose signature failed and why (docs/approvals.md),
 * and signed reviews of break-glass uses, which `audit find` shows.
 */
#include "commands.h"
#include "p11gate/common.h"
#include "p11gate/grants.h"
#include "p11gate/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GRANT_MAX_BYTES 65536

static pg_policy *
load_policy(const char *config)
{
	pg_policy *policy = pg_policy_load(config, pg_cli_print_errors, NULL);

	if (policy == NULL)
		fprintf(stderr, "p11gate grant: the policy %s does not load\n", config);
	return policy;
}

static int
usage_error(const char *sub, const char *message)
{
	fprintf(stderr, "p11gate grant %s: %s\nTry 'p11gate grant %s --help' for more information.\n",
	        sub, message, sub);
	return 2;
}

/* --at TIME or now. */
static bool
parse_at(const char *text, time_t *out)
{
	struct tm tm;
	char *end;

	memset(&tm, 0, sizeof tm);
	if (text == NULL) {
		*out = time(NULL);
		return true;
	}
	end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0')
		return false;
	*out = timegm(&tm);
	return *out != (time_t)-1;
}

static void
format_time(time_t t, char *out, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "2h", "30m", "1d": seconds; 0 if malformed. */
static long
parse_duration(const char *text)
{
	char *end = NULL;
	long value;

	errno = 0;
	value = strtol(text, &end, 10);
	if (errno != 0 || value <= 0 || value > 100000 || end == text || end[0] == '\0' || end[1] != '\0')
		return 0;
	switch (end[0]) {
	case 'm':
		return value * 60;
	case 'h':
		return value * 3600;
	case 'd':
		return value * 86400;
	default:
		return 0;
	}
}

/* A YAML double-quoted scalar of text (no control characters allowed). */
static bool
quoted(const char *text, char *out, size_t len)
{
	size_t j = 0;

	if (len < 3)
		return false;
	out[j++] = '"';
	for (const char *p = text; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f || j + 4 >= len)
			return false;
		if (*p == '"' || *p == '\\')
			out[j++] = '\\';
		out[j++] = *p;
	}
	out[j++] = '"';
	out[j] = '\0';
	return true;
}

/* ---- grant new ------------------------------------------------------------ */

static void
usage_new(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate grant new --config FILE --id ID --key KEY --requester USER\n"
	        "                         (--for DURATION | --not-after TIME) --reason TEXT [OPTION]...\n"
	        "Write the grant ID.yaml into the policy's grants.dir (or --dir), to be approved\n"
	        "with 'p11gate grant approve'.\n"
	        "\n"
	        "  -c, --config FILE      the policy (grants.dir, keys, grants.max_lifetime)\n"
	        "  -d, --dir DIR          write into DIR instead of the policy's grants.dir\n"
	        "      --id ID            letters, digits, '.', '_', '-'\n"
	        "  -k, --key KEY          the policy's key name\n"
	        "  -r, --requester USER   the user name of the account that will sign\n"
	        "      --not-before TIME  start, RFC 3339 UTC (default: now)\n"
	        "      --not-after TIME   end, RFC 3339 UTC\n"
	        "      --for DURATION     end this long after the start: 30m, 2h, 1d\n"
	        "      --max-signatures N at most N signatures under the grant\n"
	        "      --data-sha256 HEX  only data with this SHA-256 (or this digest) may be\n"
	        "                         signed; repeat for several\n"
	        "      --reason TEXT      why (a ticket, a release)\n"
	        "  -h, --help             display this help and exit\n"
	        "\n"
	        "Exit status: 0 written, 1 the grant would not be valid or cannot be written,\n"
	        "2 usage error.\n");
}

struct new_args {
	const char *config, *dir, *id, *key, *requester, *not_before, *not_after, *duration, *reason;
	const char *max_signatures;
	const char *data[32];
	size_t n_data;
};

static bool
grant_text(const struct new_args *a, time_t nb, time_t na, char *out, size_t len)
{
	char reason[1024], from[32], to[32];
	size_t used;

	if (!quoted(a->reason, reason, sizeof reason))
		return false;
	format_time(nb, from, sizeof from);
	format_time(na, to, sizeof to);
	used = (size_t)snprintf(out, len, "grant: 1\nid: %s\nkey: %s\nrequester: %s\n"
	                        "not_before: %s\nnot_after: %s\n", a->id, a->key, a->requester, from, to);
	if (a->max_signatures != NULL && used < len)
		used += (size_t)snprintf(out + used, len - used, "max_signatures: %s\n", a->max_signatures);
	if (a->n_data > 0 && used < len) {
		used += (size_t)snprintf(out + used, len - used, "data_sha256:\n");
		for (size_t i = 0; i < a->n_data && used < len; i++)
			used += (size_t)snprintf(out + used, len - used, "  - %s\n", a->data[i]);
	}
	if (used < len)
		used += (size_t)snprintf(out + used, len - used, "reason: %s\n", reason);
	return used < len;
}

static int
write_new(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	size_t len = strlen(text);

	if (fd < 0) {
		fprintf(stderr, "p11gate grant new: cannot create %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
		fprintf(stderr, "p11gate grant new: cannot write %s: %s\n", path, strerror(errno));
		close(fd);
		unlink(path);
		return 1;
	}
	close(fd);
	return 0;
}

static int
grant_new(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' }, { "dir", required_argument, NULL, 'd' },
		{ "id", required_argument, NULL, 'i' }, { "key", required_argument, NULL, 'k' },
		{ "requester", required_argument, NULL, 'r' }, { "not-before", required_argument, NULL, 'B' },
		{ "not-after", required_argument, NULL, 'A' }, { "for", required_argument, NULL, 'F' },
		{ "data-sha256", required_argument, NULL, 'D' }, { "reason", required_argument, NULL, 'R' },
		{ "max-signatures", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	struct new_args a = { .config = NULL };
	char text[GRANT_MAX_BYTES / 4], path[4096];
	pg_policy *policy = NULL;
	time_t nb, na;
	int c, status = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:d:k:r:h", options, NULL)) != -1) {
		switch (c) {
		case 'c': a.config = optarg; break;
		case 'd': a.dir = optarg; break;
		case 'i': a.id = optarg; break;
		case 'k': a.key = optarg; break;
		case 'r': a.requester = optarg; break;
		case 'B': a.not_before = optarg; break;
		case 'A': a.not_after = optarg; break;
		case 'F': a.duration = optarg; break;
		case 'R': a.reason = optarg; break;
		case 'M':
			if (strspn(optarg, "0123456789") != strlen(optarg) || optarg[0] == '\0')
				return usage_error("new", "--max-signatures wants a whole number");
			a.max_signatures = optarg;
			break;
		case 'D':
			if (a.n_data == sizeof a.data / sizeof a.data[0])
				return usage_error("new", "too many --data-sha256");
			a.data[a.n_data++] = optarg;
			break;
		case 'h': usage_new(stdout); return 0;
		default: return usage_error("new", "unknown option");
		}
	}
	if (a.config == NULL || a.id == NULL || a.key == NULL || a.requester == NULL || a.reason == NULL)
		return usage_error("new", "--config, --id, --key, --requester and --reason are required");
	if ((a.not_after == NULL) == (a.duration == NULL))
		return usage_error("new", "give one of --not-after and --for");
	if (!parse_at(a.not_before, &nb))
		return usage_error("new", "--not-before wants a UTC time like 2026-12-03T10:00:00Z");
	if (a.duration != NULL) {
		long seconds = parse_duration(a.duration);
		if (seconds == 0)
			return usage_error("new", "--for wants a duration like 30m, 2h or 1d");
		na = nb + seconds;
	} else if (!parse_at(a.not_after, &na)) {
		return usage_error("new", "--not-after wants a UTC time like 2026-12-03T12:00:00Z");
	}
	if ((policy = load_policy(a.config)) == NULL)
		return 1;
	if (a.dir == NULL)
		a.dir = pg_policy_settings(policy)->grants_dir;
	if (a.dir == NULL) {
		fprintf(stderr, "p11gate grant new: %s has no grants: dir:; give --dir\n", a.config);
		goto out;
	}
	if (pg_policy_key_find(policy, a.key) < 0) {
		fprintf(stderr, "p11gate grant new: %s names no key '%s'\n", a.config, a.key);
		goto out;
	}
	if (!grant_text(&a, nb, na, text, sizeof text)) {
		fprintf(stderr, "p11gate grant new: the reason holds a control character or is too long\n");
		goto out;
	}
	snprintf(path, sizeof path, "%s/%s.yaml", a.dir, a.id);
	/* The file must be what the module will accept: parse it first. */
	if (!pg_grant_check_text(policy, path, text, strlen(text), pg_cli_print_diag, NULL))
		goto out;
	if ((status = write_new(path, text)) == 0)
		printf("%s\napprove it with: p11gate grant approve %s -f ~/.ssh/id_ed25519\n", path, path);
out:
	pg_policy_unref(policy);
	return status;
}

/* ---- grant approve -------------------------------------------------------- */

static void
usage_approve(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate grant approve FILE -f KEY [--label NAME] [--config FILE]\n"
	        "Approve the grant FILE: sign its exact bytes with the OpenSSH key KEY\n"
	        "(ssh-keygen -Y sign -n p11gate-grant; a security key asks for a touch) and\n"
	        "store the signature beside it as FILE.NAME.sig.\n"
	        "\n"
	        "  -f, --key-file KEY   the private key (or its .pub with an agent holding it)\n"
	        "  -l, --label NAME     the signature file's label (default: your user name);\n"
	        "                       only a label: the approver is the key that signed\n"
	        "  -c, --config FILE    afterwards, show the grant under this policy\n"
	        "  -h, --help           display this help and exit\n"
	        "\n"
	        "Exit status: 0 signed, 1 not signed, 2 usage error.\n");
}

/* ssh-keygen -Y sign with the grant on its standard input; the signature
 * comes back on its standard output.  0, or 1 after saying why. */
static int
ssh_sign(const char *key, const char *ns, const char *grant, const char *out_path)
{
	int in = open(grant, O_RDONLY | O_CLOEXEC);
	int out = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	int status = 1, wstatus = 0;
	pid_t pid;

	if (in < 0 || out < 0) {
		fprintf(stderr, "p11gate grant: %s: %s\n", in < 0 ? grant : out_path, strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid == 0) {
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0)
			_exit(127);
		execlp("ssh-keygen", "ssh-keygen", "-q", "-Y", "sign", "-n", ns, "-f", key, (char *)NULL);
		fprintf(stderr, "p11gate grant: cannot run ssh-keygen: %s\n", strerror(errno));
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &wstatus, 0) != pid || !WIFEXITED(wstatus) ||
	    WEXITSTATUS(wstatus) != 0) {
		fprintf(stderr, "p11gate grant: ssh-keygen -Y sign failed\n");
		unlink(out_path);
		goto out;
	}
	status = fsync(out) == 0 ? 0 : 1;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return status;
}

static int grant_show_one(const pg_policy *policy, const char *path, time_t now);

static int
grant_approve(int argc, char **argv)
{
	static const struct option options[] = {
		{ "key-file", required_argument, NULL, 'f' }, { "label", required_argument, NULL, 'l' },
		{ "config", required_argument, NULL, 'c' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *key = NULL, *label = NULL, *config = NULL, *grant;
	char sig_path[4096];
	const struct passwd *pw;
	struct stat st;
	int c, status;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:l:c:h", options, NULL)) != -1) {
		switch (c) {
		case 'f': key = optarg; break;
		case 'l': label = optarg; break;
		case 'c': config = optarg; break;
		case 'h': usage_approve(stdout); return 0;
		default: return usage_error("approve", "unknown option");
		}
	}
	if (optind + 1 != argc || key == NULL)
		return usage_error("approve", "give one grant FILE and -f KEY");
	grant = argv[optind];
	if (label == NULL && (pw = getpwuid(getuid())) != NULL)
		label = pw->pw_name;
	if (label == NULL || label[0] == '\0' || strchr(label, '/') != NULL || label[0] == '.')
		return usage_error("approve", "give a --label without '/'");
	if (stat(grant, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "p11gate grant approve: %s is not a grant file\n", grant);
		return 1;
	}
	snprintf(sig_path, sizeof sig_path, "%s.%s.sig", grant, label);
	/* What the approver signs, shown first: the whole file is short. */
	{
		FILE *f = fopen(grant, "r");
		char line[512];

		printf("Approving %s:\n", grant);
		while (f != NULL && fgets(line, sizeof line, f) != NULL) {
			printf("  | ");
			pg_escape_fputs(stdout, line, strcspn(line, "\n"), PG_ESC_TEXT);
			putchar('\n');
		}
		if (f != NULL)
			fclose(f);
		fflush(stdout);
	}
	if ((status = ssh_sign(key, PG_GRANT_SIG_NAMESPACE, grant, sig_path)) != 0)
		return status;
	printf("signed: %s\n", sig_path);
	if (config != NULL) {
		pg_policy *policy = load_policy(config);
		if (policy == NULL)
			return 1;
		grant_show_one(policy, grant, time(NULL));
		pg_policy_unref(policy);
	}
	return 0;
}

/* ---- grant show / list ---------------------------------------------------- */

struct show {
	const char *audit_file;        /* the policy's log, where uses are counted */
	time_t now;
	bool valid_now;                /* in its window, not revoked, key known */
	bool met;                      /* some approval rule's count is met */
	bool brief;                    /* list: one line */
	char line[1024];               /* list: the line being built */
};

/* The allow records that used this grant (id and bytes) in the current log
 * file: each took one use.  A record is written by p11gate, one per line,
 * so the fields are matched as written; a string a caller controls cannot
 * hold an unescaped quote.  -1 if the log cannot be read. */
static long
count_uses(const char *log, const char *id, const char *sha256_hex)
{
	char grant[PG_GRANT_ID_MAX + 16], sha[PG_SHA256_HEX_LEN + 24], *line = NULL;
	size_t cap = 0;
	long used = 0;
	FILE *f;

	if (log == NULL || (f = fopen(log, "r")) == NULL)
		return -1;
	snprintf(grant, sizeof grant, "\"grant\":\"%s\"", id);
	snprintf(sha, sizeof sha, "\"grant_sha256\":\"%s\"", sha256_hex);
	while (getline(&line, &cap, f) > 0) {
		if (strstr(line, "\"decision\":\"allow\"") != NULL && strstr(line, grant) != NULL &&
		    strstr(line, sha) != NULL)
			used++;
	}
	free(line);
	fclose(f);
	return used;
}

static void
show_grant(void *ctx, const struct pg_grant_info *g)
{
	struct show *s = ctx;
	char from[32], to[32], hex[65];

	s->valid_now = g->key_known && !g->revoked && s->now >= g->not_before && s->now < g->not_after;
	format_time(g->not_before, from, sizeof from);
	format_time(g->not_after, to, sizeof to);
	if (s->brief) {
		snprintf(s->line, sizeof s->line, "%s  key %s  requester %s  %s..%s  %s", g->id, g->key,
		         g->requester, from, to, g->state);
		return;
	}
	pg_hex_encode(g->sha256, 32, hex);
	printf("grant %s\n  key:        %s%s\n  requester:  %s\n  window:     %s .. %s (%s)\n"
	       "  reason:     ", g->id, g->key, g->key_known ? "" : " (the policy names no such key)",
	       g->requester, from, to, g->state);
	pg_escape_fputs(stdout, g->reason, strlen(g->reason), PG_ESC_TEXT);
	printf("\n  sha256:     %s\n", hex);
	if (g->max_signatures == 0) {
		printf("  uses:       not limited (no max_signatures)\n");
	} else {
		long used = count_uses(s->audit_file, g->id, hex);

		if (used < 0)
			printf("  uses:       at most %" PRIu64 " (the audit log cannot be read)\n",
			       g->max_signatures);
		else
			printf("  uses:       %ld of %" PRIu64 " used (allow records in %s)\n", used,
			       g->max_signatures, s->audit_file);
	}
	printf("signatures:\n");
}

static void
show_sig(void *ctx, const struct pg_grant_sig_info *sig)
{
	struct show *s = ctx;

	if (s->brief)
		return;
	printf("  %s: ", sig->file);
	if (sig->verified)
		printf("ok, %s (%s)", sig->approver, sig->fingerprint);
	else
		printf("does not count: %s", sig->why);
	if (sig->sk)
		printf(" [security key: user presence %s, user verification %s, counter %lu]",
		       sig->sk_flags & 0x01 ? "yes" : "no", sig->sk_flags & 0x04 ? "yes" : "no",
		       sig->sk_counter);
	putchar('\n');
}

static void
show_rule(void *ctx, const struct pg_grant_rule_info *r)
{
	struct show *s = ctx;
	size_t used = strlen(s->line);

	if (r->counted >= r->needed)
		s->met = true;
	if (s->brief) {
		snprintf(s->line + used, sizeof s->line - used, "  %s: %u of %u", r->rule, r->counted,
		         r->needed);
		return;
	}
	printf("rule %s: %u of %u approvals%s%s%s%s%s\n", r->rule, r->counted, r->needed,
	       r->counted > 0 ? " (" : "", r->approvers, r->counted > 0 ? ")" : "",
	       r->counted >= r->needed ? ": met" : "; missing: ", r->counted >= r->needed ? "" : r->missing);
}

static const struct pg_grant_inspect_fns show_fns = { show_grant, show_sig, show_rule };

static int
grant_show_one(const pg_policy *policy, const char *path, time_t now)
{
	struct show s = { .now = now, .audit_file = pg_policy_settings(policy)->audit_file };

	if (!pg_grant_inspect(policy, path, now, pg_cli_print_diag, NULL, &show_fns, &s))
		return 1;
	printf("%s\n", s.valid_now && s.met ? "usable now: yes" : "usable now: no");
	return s.valid_now && s.met ? 0 : 1;
}

static void
usage_show(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate grant show --config FILE [--at TIME] GRANT...\n"
	        "Show each grant under the policy: its key, requester, window and reason,\n"
	        "each signature beside it (whose, or why it does not count), and for each\n"
	        "approval rule naming its key how many approvals count and what is missing.\n"
	        "\n"
	        "  -c, --config FILE  the policy\n"
	        "      --at TIME      judge the window at this instant (RFC 3339 UTC)\n"
	        "  -h, --help         display this help and exit\n"
	        "\n"
	        "Exit status: 0 every grant is usable now, 1 otherwise, 2 usage error.\n");
}

static void
usage_list(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate grant list --config FILE [--at TIME]\n"
	        "List the grants in the policy's grants.dir, one line each: id, key,\n"
	        "requester, window, state and approvals per approval rule.\n"
	        "\n"
	        "  -c, --config FILE  the policy\n"
	        "      --at TIME      judge the windows at this instant (RFC 3339 UTC)\n"
	        "  -h, --help         display this help and exit\n"
	        "\n"
	        "Exit status: 0 listed, 1 the policy or directory cannot be read, 2 usage error.\n");
}

struct list_ctx {
	const pg_policy *policy;
	time_t now;
	int status;
};

static void
list_one(void *ctx, const char *path)
{
	struct list_ctx *l = ctx;
	struct show s = { .now = l->now, .brief = true };

	if (!pg_grant_inspect(l->policy, path, l->now, pg_cli_print_diag, NULL, &show_fns, &s)) {
		printf("%s  does not parse (p11gate grant show %s)\n", path, path);
		return;
	}
	printf("%s%s\n", s.line, s.valid_now && s.met ? "  usable" : "");
}

static int
grant_show_or_list(int argc, char **argv, bool list)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' }, { "at", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *at = NULL, *sub = list ? "list" : "show";
	pg_policy *policy;
	time_t now;
	int c, status = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'a': at = optarg; break;
		case 'h': list ? usage_list(stdout) : usage_show(stdout); return 0;
		default: return usage_error(sub, "unknown option");
		}
	}
	if (config == NULL)
		return usage_error(sub, "--config FILE is required");
	if (list ? optind != argc : optind >= argc)
		return usage_error(sub, list ? "list takes no arguments" : "give a grant file");
	if (!parse_at(at, &now))
		return usage_error(sub, "--at wants a UTC time like 2026-12-03T10:00:00Z");
	if ((policy = load_policy(config)) == NULL)
		return 1;
	if (list) {
		struct list_ctx l = { .policy = policy, .now = now };
		const char *dir = pg_policy_settings(policy)->grants_dir;
		int err = dir != NULL ? pg_grant_list(dir, list_one, &l) : ENOENT;

		if (err != 0) {
			fprintf(stderr, "p11gate grant list: %s: %s\n", dir != NULL ? dir : config,
			        dir != NULL ? strerror(err) : "the policy has no grants: dir:");
			status = 1;
		}
	} else {
		for (int i = optind; i < argc; i++) {
			if (grant_show_one(policy, argv[i], now) != 0)
				status = 1;
		}
	}
	pg_policy_unref(policy);
	return status;
}

/* ---- grant review: signed reviews of break-glass uses --------------------- */

/* The review of a record: GRANTS_DIR/reviews/SEQ-HASH.yaml, HASH the first
 * 16 hex digits of the SHA-256 of the record's line. */
static bool
review_path(const pg_policy *policy, uint64_t seq, const char *line_hex, char *out, size_t len)
{
	const char *dir = pg_policy_settings(policy)->grants_dir;

	return dir != NULL &&
	       (size_t)snprintf(out, len, "%s/reviews/%" PRIu64 "-%.16s.yaml", dir, seq, line_hex) < len;
}

static bool
line_seq(const char *line, uint64_t *seq)
{
	char *end = NULL;

	if (strncmp(line, "{\"seq\":", 7) != 0)
		return false;
	errno = 0;
	*seq = strtoull(line + 7, &end, 10);
	return errno == 0 && end != line + 7 && *end == ',';
}

/* A break-glass use: an allow record carrying break_glass (written by
 * p11gate, so the fields are as it writes them). */
static bool
is_break_glass(const char *line)
{
	return strstr(line, "\"decision\":\"allow\"") != NULL &&
	       strstr(line, "\"break_glass\":{") != NULL;
}

struct review_sigs {
	char names[256];
	char problems[512];
};

static void
review_sig(void *ctx, const struct pg_grant_sig_info *sig)
{
	struct review_sigs *r = ctx;
	size_t used;

	if (sig->verified) {
		used = strlen(r->names);
		snprintf(r->names + used, sizeof r->names - used, "%s%s", used > 0 ? ", " : "",
		         sig->approver);
		return;
	}
	used = strlen(r->problems);
	snprintf(r->problems + used, sizeof r->problems - used, "%s%s: %s", used > 0 ? "; " : "",
	         sig->file, sig->why);
}

/* Whether the record's review exists, holds this record's hash and is
 * signed by approvers; says so in out. */
static void
review_status(const pg_policy *policy, const char *line, size_t len, char *out, size_t out_len)
{
	unsigned char sha256[32];
	char hex[65], path[4096], want[100], *text = NULL;
	struct review_sigs sigs = { "", "" };
	uint64_t seq;
	size_t text_len = 0;
	FILE *f;

	if (!line_seq(line, &seq) || !pg_sha256(line, len, sha256)) {
		snprintf(out, out_len, "not reviewed (the record has no seq)");
		return;
	}
	pg_hex_encode(sha256, 32, hex);
	if (!review_path(policy, seq, hex, path, sizeof path) || (f = fopen(path, "r")) == NULL) {
		snprintf(out, out_len, "not reviewed");
		return;
	}
	text = malloc(4097);
	if (text != NULL)
		text_len = fread(text, 1, 4096, f);
	fclose(f);
	snprintf(want, sizeof want, "\nrecord_sha256: %s\n", hex);
	if (text == NULL || (text[text_len] = '\0', strstr(text, want) == NULL)) {
		snprintf(out, out_len, "not reviewed (%.900s is about another record)", path);
		free(text);
		return;
	}
	free(text);
	pg_approvals_of_file(policy, path, PG_REVIEW_SIG_NAMESPACE, review_sig, &sigs);
	if (sigs.names[0] != '\0')
		snprintf(out, out_len, "reviewed by %s%s%s", sigs.names, sigs.problems[0] ? "; " : "",
		         sigs.problems);
	else
		snprintf(out, out_len, "not reviewed (%s)", sigs.problems[0] ? sigs.problems :
		         "no signature beside the review");
}

void
pg_grant_review_annotate(void *ctx, const char *line, size_t len, FILE *out)
{
	char status[1024];

	if (!is_break_glass(line))
		return;
	review_status(ctx, line, len, status, sizeof status);
	fprintf(out, "    break-glass review: ");
	pg_escape_fputs(out, status, strlen(status), PG_ESC_TEXT);
	fputc('\n', out);
}

/* The line of record seq in log, into *line (malloc'd); 0, or ENOENT. */
static int
find_record(const char *log, uint64_t seq, char **line, size_t *len)
{
	FILE *f = fopen(log, "r");
	size_t cap = 0;
	ssize_t n;
	uint64_t s;

	*line = NULL;
	if (f == NULL)
		return errno;
	while ((n = getline(line, &cap, f)) > 0) {
		if ((*line)[n - 1] == '\n')
			(*line)[--n] = '\0';
		if (line_seq(*line, &s) && s == seq) {
			*len = (size_t)n;
			fclose(f);
			return 0;
		}
	}
	free(*line);
	*line = NULL;
	fclose(f);
	return ENOENT;
}

/* Writes the review document, or checks the one there is about this record. */
static int
write_review(const char *path, uint64_t seq, const char *hex, const char *log)
{
	char text[1024], want[100];
	FILE *f;

	snprintf(want, sizeof want, "\nrecord_sha256: %s\n", hex);
	if ((f = fopen(path, "r")) != NULL) {
		size_t n = fread(text, 1, sizeof text - 1, f);

		fclose(f);
		text[n] = '\0';
		if (strstr(text, want) == NULL) {
			fprintf(stderr, "p11gate grant review: %s is about another record\n", path);
			return 1;
		}
		return 0;
	}
	snprintf(text, sizeof text, "review: 1\nrecord_sha256: %s\nseq: %" PRIu64 "\nlog: %s\n"
	         "what: a break-glass use, reviewed\n", hex, seq, log);
	return write_new(path, text);
}

static void
usage_review(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate grant review --config FILE --seq N -f KEY [--label NAME] [--log LOG]\n"
	        "Sign a review of the break-glass use recorded as N in the audit log: a\n"
	        "review file GRANTS_DIR/reviews/N-HASH.yaml naming the record's SHA-256,\n"
	        "signed with ssh-keygen -Y sign -n p11gate-review.  'p11gate audit find\n"
	        "--break-glass --config FILE' shows each use as reviewed or not.\n"
	        "\n"
	        "  -c, --config FILE    the policy (grants.dir, approvers, audit.file)\n"
	        "      --seq N          the record's seq\n"
	        "      --log LOG        the log that holds it (default: audit.file)\n"
	        "  -f, --key-file KEY   the approver's OpenSSH private key\n"
	        "  -l, --label NAME     the signature file's label (default: your user name)\n"
	        "  -h, --help           display this help and exit\n"
	        "\n"
	        "Exit status: 0 signed, 1 not signed, 2 usage error.\n");
}

static int
grant_review(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' }, { "seq", required_argument, NULL, 'S' },
		{ "log", required_argument, NULL, 'L' }, { "key-file", required_argument, NULL, 'f' },
		{ "label", required_argument, NULL, 'l' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *log = NULL, *key = NULL, *label = NULL, *seq_text = NULL;
	char path[4096], sig_path[4200], hex[65], dir[4096], status[1024], *line = NULL;
	const struct passwd *pw;
	unsigned char sha256[32];
	pg_policy *policy = NULL;
	uint64_t seq;
	size_t len = 0;
	char *end = NULL;
	int c, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:f:l:h", options, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'S': seq_text = optarg; break;
		case 'L': log = optarg; break;
		case 'f': key = optarg; break;
		case 'l': label = optarg; break;
		case 'h': usage_review(stdout); return 0;
		default: return usage_error("review", "unknown option");
		}
	}
	if (config == NULL || seq_text == NULL || key == NULL || optind != argc)
		return usage_error("review", "--config, --seq and -f are required");
	errno = 0;
	seq = strtoull(seq_text, &end, 10);
	if (errno != 0 || *end != '\0' || end == seq_text)
		return usage_error("review", "--seq wants a record's seq (a number)");
	if (label == NULL && (pw = getpwuid(getuid())) != NULL)
		label = pw->pw_name;
	if (label == NULL || label[0] == '\0' || strchr(label, '/') != NULL || label[0] == '.')
		return usage_error("review", "give a --label without '/'");
	if ((policy = load_policy(config)) == NULL)
		return 1;
	if (log == NULL)
		log = pg_policy_settings(policy)->audit_file;
	if (log == NULL || pg_policy_settings(policy)->grants_dir == NULL) {
		fprintf(stderr, "p11gate grant review: %s needs audit.file (or --log) and grants.dir\n", config);
		goto out;
	}
	if ((c = find_record(log, seq, &line, &len)) != 0) {
		fprintf(stderr, "p11gate grant review: no record %" PRIu64 " in %s (%s)\n", seq, log,
		        strerror(c));
		goto out;
	}
	if (!is_break_glass(line)) {
		fprintf(stderr, "p11gate grant review: record %" PRIu64 " is not a break-glass use\n", seq);
		goto out;
	}
	pg_sha256(line, len, sha256);
	pg_hex_encode(sha256, 32, hex);
	review_path(policy, seq, hex, path, sizeof path);
	snprintf(dir, sizeof dir, "%s/reviews", pg_policy_settings(policy)->grants_dir);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "p11gate grant review: cannot create %s: %s\n", dir, strerror(errno));
		goto out;
	}
	if (write_review(path, seq, hex, log) != 0)
		goto out;
	printf("Reviewing break-glass use %" PRIu64 ":\n  | ", seq);
	pg_escape_fputs(stdout, line, len, PG_ESC_TEXT);
	printf("\n");
	fflush(stdout);
	snprintf(sig_path, sizeof sig_path, "%s.%s.sig", path, label);
	if (ssh_sign(key, PG_REVIEW_SIG_NAMESPACE, path, sig_path) != 0)
		goto out;
	review_status(policy, line, len, status, sizeof status);
	printf("signed: %s\n%s\n", sig_path, status);
	rc = 0;
out:
	free(line);
	pg_policy_unref(policy);
	return rc;
}

static void
usage(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate grant new --config FILE --id ID --key KEY --requester USER ...\n"
	        "       p11gate grant approve FILE -f KEY [--label NAME] [--config FILE]\n"
	        "       p11gate grant show --config FILE [--at TIME] GRANT...\n"
	        "       p11gate grant list --config FILE [--at TIME]\n"
	        "       p11gate grant review --config FILE --seq N -f KEY [--label NAME]\n"
	        "Write, approve and inspect grants: the approvals a rule with approval: needs\n"
	        "before a key signs (docs/approvals.md).\n"
	        "\n"
	        "  -h, --help  display this help and exit\n");
}

int
pg_cmd_grant(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "new") == 0)
		return grant_new(argc - 1, argv + 1);
	if (strcmp(argv[1], "approve") == 0)
		return grant_approve(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return grant_show_or_list(argc - 1, argv + 1, false);
	if (strcmp(argv[1], "list") == 0)
		return grant_show_or_list(argc - 1, argv + 1, true);
	if (strcmp(argv[1], "review") == 0)
		return grant_review(argc - 1, argv + 1);
	fprintf(stderr, "p11gate grant: unknown subcommand '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
