/* SPDX-License-Identifier: Apache-2.0
 *
 * `p11gate explain`: asks the policy about one hypothetical call (a key, an
 * operation, a caller, an instant) and prints the decision, the deciding
 * rule and, for every rule, whether it matched or what stopped it.
 */
#include "commands.h"
#include "explain_identity.h"
#include "p11gate-build.h"
#include "p11gate/common.h"
#include "p11gate/identity.h"
#include "p11gate/policy.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_GROUPS 256
#define MAX_ENV 64

/* What the options change in the caller; the storage is ours, and the
 * caller's own fields are put back before pg_caller_free. */
struct overrides {
	const char *user_arg;
	const char *group_args[MAX_GROUPS];
	size_t n_group_args;
	const char *program;
	const char *unit;
	const char *env_args[MAX_ENV];
	size_t n_env_args;

	char user_name[256];
	gid_t groups[MAX_GROUPS];
	char *env[MAX_ENV + 1];
	char **env_all;              /* caller's env with ours replacing or added */
};

/* The caller's fields as pg_caller_process_new made them. */
struct saved_caller {
	char *user;
	gid_t *groups;
	size_t n_groups;
	char *exe;
	char *unit;
	char **env;
};

static void
usage(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate explain --key NAME [OPTION]...\n"
	        "  or:  p11gate explain --identity-token FILE | --claims JSON [OPTION]...\n"
	        "  or:  p11gate explain --replay LOG [--config FILE] [--since T] [--json]\n"
	        "Say whether the policy would allow one use of a key, which rule decides\n"
	        "it, and for every rule whether it matched or the first condition that\n"
	        "failed.  Unless overridden, the caller is the person running this command,\n"
	        "now; an overridden field counts as asserted.  With a pipeline's identity\n"
	        "and no --key: the operation's decision for every key (what it may do).\n"
	        "\n"
	        "  -c, --config FILE      the policy (default: $P11GATE_CONFIG, else %s)\n"
	        "  -k, --key NAME         the policy's name for the key (required without an\n"
	        "                         identity)\n"
	        "  -o, --op OP            sign (default), decrypt, derive, unwrap, manage,\n"
	        "                         encrypt, wrap or verify\n"
	        "  -u, --user USER        caller's user name or uid; its groups come along\n"
	        "  -g, --group GROUP      caller's group name or gid (repeat for several; the\n"
	        "                         first is the primary group)\n"
	        "  -p, --program PATH     caller's executable, hashed for program_sha256\n"
	        "                         (default: this p11gate program itself)\n"
	        "      --unit UNIT        caller's systemd unit, e.g. ci-runner.service\n"
	        "      --env NAME=VALUE   caller's environment variable (repeatable)\n"
	        "  -m, --mechanism MECH   CKM_ name or 0x number; without it, rules that list\n"
	        "                         mechanisms do not match\n"
	        "      --at TIME          the instant, RFC 3339: 2026-12-24T10:00:00Z or\n"
	        "                         2026-12-24T11:00:00+01:00 (default: now)\n"
	        "      --break-glass TEXT the justification the caller states (break_glass: rules)\n"
	        "      --identity-token FILE  the caller logged in with this identity token,\n"
	        "                         verified against the policy's login: issuers at TIME\n"
	        "                         as p11gate.so verifies it (a refused one may do nothing)\n"
	        "      --claims JSON      the caller logged in with a token carrying these claims\n"
	        "                         (a JSON object; its iss names the issuer; not verified)\n"
	        "      --replay LOG       judge every decision in LOG (a file, or a directory of\n"
	        "                         rotated files) again under the policy and print what\n"
	        "                         would change, grouped by rule, key and caller\n"
	        "      --since T          with --replay: decisions at or after T (2026-12-01,\n"
	        "                         2026-12-01T08:00:00Z) or within a span back (24h, 7d)\n"
	        "      --json             with --replay: one JSON object instead of text\n"
	        "  -h, --help             display this help and exit\n"
	        "\n"
	        "Exit status: 0 if the call would be allowed (with an identity and no --key:\n"
	        "any key), 1 if denied, 2 on a usage error or a policy that does not load.\n"
	        "With --replay: 0 if nothing allowed would be refused, 1 if something would,\n"
	        "2 on an error.\n", P11GATE_DEFAULT_CONFIG);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "p11gate explain: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'p11gate explain --help' for more information.\n");
	return 2;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * algorithm), so --at never goes through TZ or mktime. */
static long long
days_from_civil(long long y, unsigned m, unsigned d)
{
	long long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static bool
digits(const char *s, int n, int *out)
{
	*out = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*out = *out * 10 + (s[i] - '0');
	}
	return true;
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM). */
static bool
parse_rfc3339(const char *s, time_t *out)
{
	static const int month_days[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int year, month, day, hour, minute, second, off_h = 0, off_m = 0, sign = 0;
	const char *p;
	long long t;

	if (strlen(s) < 20 || !digits(s, 4, &year) || s[4] != '-' || !digits(s + 5, 2, &month) ||
	    s[7] != '-' || !digits(s + 8, 2, &day) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s + 11, 2, &hour) ||
	    s[13] != ':' || !digits(s + 14, 2, &minute) || s[16] != ':' || !digits(s + 17, 2, &second))
		return false;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		sign = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && digits(p + 1, 2, &off_h) &&
	           p[3] == ':' && digits(p + 4, 2, &off_m)) {
		sign = *p == '+' ? 1 : -1;
	} else {
		return false;
	}
	if (month < 1 || month > 12 || day < 1 || day > month_days[month - 1] ||
	    (month == 2 && day == 29 && !((year % 4 == 0 && year % 100 != 0) || year % 400 == 0)) ||
	    hour > 23 || minute > 59 || second > 60 || off_h > 23 || off_m > 59)
		return false;
	if (second == 60)
		second = 59;   /* a leap second: time_t has none */
	t = days_from_civil(year, (unsigned)month, (unsigned)day) * 86400LL + hour * 3600LL +
	    minute * 60LL + second - sign * (off_h * 3600LL + off_m * 60LL);
	*out = (time_t)t;
	return true;
}

static bool
lookup_group(const char *text, gid_t *out)
{
	char buf[65536];
	struct group gr, *result = NULL;
	char *end = NULL;
	unsigned long value;

	errno = 0;
	value = strtoul(text, &end, 10);
	if (text[0] >= '0' && text[0] <= '9' && *end == '\0' && errno == 0 && value < 0xffffffffUL) {
		*out = (gid_t)value;
		return true;
	}
	if (getgrnam_r(text, &gr, buf, sizeof buf, &result) != 0 || result == NULL)
		return false;
	*out = result->gr_gid;
	return true;
}

/* --user: the uid, and the user's own groups unless --group says otherwise. */
static int
apply_user(struct overrides *o, struct pg_caller *caller)
{
	char buf[65536];
	struct passwd pw, *result = NULL;
	char *end = NULL;
	unsigned long value;
	int n = MAX_GROUPS;

	errno = 0;
	value = strtoul(o->user_arg, &end, 10);
	if (o->user_arg[0] >= '0' && o->user_arg[0] <= '9' && *end == '\0' && errno == 0 &&
	    value < 0xffffffffUL)
		getpwuid_r((uid_t)value, &pw, buf, sizeof buf, &result);
	else if (getpwnam_r(o->user_arg, &pw, buf, sizeof buf, &result) != 0 || result == NULL)
		return usage_error("no such user '%s'", o->user_arg);
	caller->uid = result != NULL ? result->pw_uid : (uid_t)value;
	caller->uid_trust = PG_ID_ASSERTED;
	caller->user = NULL;
	if (result != NULL) {
		snprintf(o->user_name, sizeof o->user_name, "%s", result->pw_name);
		caller->user = o->user_name;
	}
	if (o->n_group_args > 0)
		return 0;
	if (result == NULL) {
		/* A uid without a passwd entry has no known groups. */
		caller->gid_trust = PG_ID_UNAVAILABLE;
		caller->groups_trust = PG_ID_UNAVAILABLE;
		caller->groups = NULL;
		caller->n_groups = 0;
		return 0;
	}
	caller->gid = result->pw_gid;
	caller->gid_trust = PG_ID_ASSERTED;
	if (getgrouplist(result->pw_name, result->pw_gid, o->groups, &n) < 0)
		n = MAX_GROUPS;
	caller->groups = o->groups;
	caller->n_groups = (size_t)n;
	caller->groups_trust = PG_ID_ASSERTED;
	return 0;
}

static int
apply_env(struct overrides *o, struct pg_caller *caller)
{
	size_t n_own = 0, n = 0;

	for (size_t i = 0; i < o->n_env_args; i++) {
		if (strchr(o->env_args[i], '=') == NULL || o->env_args[i][0] == '=')
			return usage_error("--env wants NAME=VALUE, not '%s'", o->env_args[i]);
	}
	for (char **e = caller->env; e != NULL && *e != NULL; e++)
		n_own++;
	o->env_all = calloc(n_own + o->n_env_args + 1, sizeof *o->env_all);
	if (o->env_all == NULL)
		return usage_error("%s", strerror(ENOMEM));
	/* Ours first: pg_caller_getenv returns the first match. */
	for (size_t i = 0; i < o->n_env_args; i++)
		o->env_all[n++] = (char *)o->env_args[i];
	for (size_t i = 0; i < n_own; i++)
		o->env_all[n++] = caller->env[i];
	caller->env = o->env_all;
	caller->env_trust = PG_ID_ASSERTED;
	return 0;
}

static int
apply_overrides(struct overrides *o, struct pg_caller *caller)
{
	int rc;

	if (o->user_arg != NULL && (rc = apply_user(o, caller)) != 0)
		return rc;
	if (o->n_group_args > 0) {
		for (size_t i = 0; i < o->n_group_args; i++) {
			if (!lookup_group(o->group_args[i], &o->groups[i]))
				return usage_error("no such group '%s'", o->group_args[i]);
		}
		caller->gid = o->groups[0];
		caller->gid_trust = PG_ID_ASSERTED;
		caller->groups = o->groups;
		caller->n_groups = o->n_group_args;
		caller->groups_trust = PG_ID_ASSERTED;
	}
	if (o->program != NULL) {
		if (o->program[0] != '/')
			return usage_error("--program wants an absolute path, not '%s'", o->program);
		caller->exe = (char *)o->program;
		caller->exe_trust = PG_ID_ASSERTED;
		/* Hash the named file ourselves: the identity code would hash
		 * the running executable, which is p11gate. */
		caller->exe_hashed = true;
		caller->exe_hash_ok = pg_sha256_file(o->program, caller->exe_sha256);
	}
	if (o->unit != NULL) {
		caller->unit = (char *)o->unit;
		caller->unit_trust = PG_ID_ASSERTED;
	}
	if (o->n_env_args > 0 && (rc = apply_env(o, caller)) != 0)
		return rc;
	return 0;
}

static void
print_rule(void *ctx, const char *rule, bool is_allow, bool matched, const char *why_not)
{
	char name[256], why[1024];

	pg_esc(rule, PG_ESC_TEXT, name, sizeof name);
	if (matched)
		printf("  %-5s %s: matches\n", is_allow ? "allow" : "deny", name);
	else
		printf("  %-5s %s: does not match: %s\n", is_allow ? "allow" : "deny", name,
		       pg_esc(why_not, PG_ESC_TEXT, why, sizeof why));
}

static void
print_request(const struct pg_request *request, const char *key, const struct pg_caller *caller)
{
	const char *mech = pg_mechanism_name(request->mechanism);
	char when[64] = "?", shown[512];
	struct tm tm;

	if (gmtime_r(&request->now, &tm) != NULL)
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("request: %s with key %s", pg_op_name(request->op),
	       pg_esc(key, PG_ESC_TEXT, shown, sizeof shown));
	if (request->mechanism == CK_UNAVAILABLE_INFORMATION)
		printf(", no mechanism");
	else if (mech != NULL)
		printf(", mechanism %s", mech);
	else
		printf(", mechanism 0x%lx", (unsigned long)request->mechanism);
	printf(", at %s\n", when);
	printf("caller: user ");
	if (caller->uid_trust == PG_ID_UNAVAILABLE)
		printf("unavailable");
	else
		printf("%s (uid %lu, %s)", caller->user != NULL ?
		       pg_esc(caller->user, PG_ESC_VALUE, shown, sizeof shown) : "without a name",
		       (unsigned long)caller->uid, pg_id_trust_name(caller->uid_trust));
	printf(", groups ");
	if (caller->groups_trust == PG_ID_UNAVAILABLE && caller->gid_trust == PG_ID_UNAVAILABLE)
		printf("unavailable");
	else if (caller->groups_trust == PG_ID_UNAVAILABLE)
		printf("%lu", (unsigned long)caller->gid);
	for (size_t i = 0; caller->groups_trust != PG_ID_UNAVAILABLE && i < caller->n_groups; i++)
		printf("%s%lu", i > 0 ? "," : "", (unsigned long)caller->groups[i]);
	printf(", program %s", caller->exe_trust != PG_ID_UNAVAILABLE && caller->exe != NULL
	                           ? pg_esc(caller->exe, PG_ESC_VALUE, shown, sizeof shown)
	                           : "unavailable");
	if (caller->exe_trust == PG_ID_REPORTED)
		printf(" (reported)");
	printf(", unit %s", caller->unit_trust == PG_ID_UNAVAILABLE ? "unavailable"
	                    : caller->unit != NULL
	                    ? pg_esc(caller->unit, PG_ESC_VALUE, shown, sizeof shown) : "none");
	printf("%s\n", caller->unit_trust == PG_ID_REPORTED ? " (reported)" : "");
}

/* identity: peer proves only who connected.  Program and unit are
 * reported, so explain treats them so and says when an allow rests on
 * them: the same request without them would be denied. */
static void
explain_reported(const pg_policy *policy, struct pg_request *request, struct pg_caller *caller,
                 const struct pg_decision *decision)
{
	enum pg_id_trust exe_trust = caller->exe_trust, unit_trust = caller->unit_trust;
	struct pg_decision without;
	char rule[256];

	if (!decision->allow || (exe_trust != PG_ID_REPORTED && unit_trust != PG_ID_REPORTED))
		return;
	caller->exe_trust = PG_ID_UNAVAILABLE;
	caller->unit_trust = PG_ID_UNAVAILABLE;
	pg_policy_decide(policy, request, &without);
	caller->exe_trust = exe_trust;
	caller->unit_trust = unit_trust;
	if (without.allow)
		return;
	printf("note: rule %s allows it only by the caller's program or unit, which identity: peer "
	       "only reports (the socket binds the uid, gid and groups of the process that "
	       "connected, not the program or unit using it; the server needs CAP_SYS_PTRACE to "
	       "read another user's program at all); see docs/deployment.md\n",
	       pg_esc(decision->rule != NULL ? decision->rule : "?", PG_ESC_TEXT, rule, sizeof rule));
}

static void
save_caller(const struct pg_caller *caller, struct saved_caller *saved)
{
	saved->user = caller->user;
	saved->groups = caller->groups;
	saved->n_groups = caller->n_groups;
	saved->exe = caller->exe;
	saved->unit = caller->unit;
	saved->env = caller->env;
}

static void
restore_caller(struct pg_caller *caller, const struct saved_caller *saved)
{
	caller->user = saved->user;
	caller->groups = saved->groups;
	caller->n_groups = saved->n_groups;
	caller->exe = saved->exe;
	caller->unit = saved->unit;
	caller->env = saved->env;
}

enum { OPT_UNIT = 256, OPT_ENV, OPT_AT, OPT_REPLAY, OPT_SINCE, OPT_JSON, OPT_BREAK_GLASS,
       OPT_IDENTITY_TOKEN, OPT_CLAIMS };

/* Everything the command line says. */
struct explain_args {
	const char *config;
	const char *key;
	enum pg_op op;
	CK_MECHANISM_TYPE mechanism;
	bool have_at;
	time_t at;
	const char *identity_token;
	const char *claims;
	struct overrides o;
	const char *replay;          /* --replay LOG: judge the log again (cmd_replay.c) */
	const char *since;
	bool json;
	bool asked;                  /* a hypothetical call's option was given */
	const char *break_glass;     /* --break-glass TEXT: the justification stated */
};

static bool
parse_mechanism(const char *text, CK_MECHANISM_TYPE *out)
{
	char *end = NULL;

	if (strncmp(text, "0x", 2) != 0 && strncmp(text, "0X", 2) != 0)
		return pg_mechanism_from_name(text, out);
	errno = 0;
	*out = strtoul(text + 2, &end, 16);
	return text[2] != '\0' && *end == '\0' && errno == 0;
}

/* pg_justify_fn of the question: --break-glass TEXT, if given. */
static bool
stated_justification(void *ctx, uint64_t fresh, char *text, size_t text_len, char *source,
                     size_t source_len)
{
	const char *stated = ctx;

	(void)fresh;
	snprintf(source, source_len, "--break-glass");
	if (stated == NULL || stated[0] == '\0')
		return false;
	snprintf(text, text_len, "%s", stated);
	return true;
}

/* The deciding rule's limit and break-glass cap: counted by the module when
 * it writes the allow record, never by this question. */
static void
print_counted(const struct pg_decision *d)
{
	char shown[PG_JUSTIFICATION_MAX * 4 + 8];

	if (d->limit != NULL)
		printf("limit: %llu per %s by %s (uses are counted with the allow record; a use past it "
		       "is refused, whatever this says)\n", (unsigned long long)d->limit->max,
		       d->limit->per_text, pg_limit_by_name(d->limit->by));
	if (d->break_glass != NULL)
		printf("break-glass: cap of %llu signatures per %s; justification %s; the use would "
		       "be flagged, said on stderr and alerted\n",
		       (unsigned long long)d->break_glass->max, d->break_glass->per_text,
		       pg_esc(d->justification, PG_ESC_QUOTED, shown, sizeof shown));
}

/* An allowed signature whose key has lifecycle fields (or under an enforced
 * key_minimum) can still be refused at signing by what only the token
 * holds: its certificates, the pin it matched, its size.  explain reads no
 * token, so it says what it did not judge. */
static void
print_lifecycle_note(const pg_policy *policy, unsigned key, const struct pg_request *req,
                     const struct pg_decision *d)
{
	const bool life = pg_policy_key_has_life(policy, key);
	const struct pg_key_minimum *min = pg_policy_key_minimum(policy);
	const bool size = min->configured && min->enforce;

	if (!d->allow || req->op != PG_OP_SIGN || (!life && !size))
		return;
	printf("lifecycle: not judged here (explain reads no token): the key's %s%s; signing checks "
	       "them and may refuse (p11gate inventory shows them as signing would judge them now)\n",
	       life ? "certificates, dates and CKA_END_DATE" : "CKA_END_DATE",
	       size ? ", and its size under key_minimum" : "");
}

/* -1 to go on, else the exit status (help printed, or a usage error). */
static int
parse_args(int argc, char **argv, struct explain_args *a)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "op", required_argument, NULL, 'o' },
		{ "user", required_argument, NULL, 'u' },
		{ "group", required_argument, NULL, 'g' },
		{ "program", required_argument, NULL, 'p' },
		{ "unit", required_argument, NULL, OPT_UNIT },
		{ "env", required_argument, NULL, OPT_ENV },
		{ "mechanism", required_argument, NULL, 'm' },
		{ "at", required_argument, NULL, OPT_AT },
		{ "replay", required_argument, NULL, OPT_REPLAY },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "break-glass", required_argument, NULL, OPT_BREAK_GLASS },
		{ "identity-token", required_argument, NULL, OPT_IDENTITY_TOKEN },
		{ "claims", required_argument, NULL, OPT_CLAIMS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct overrides *o = &a->o;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:k:o:u:g:p:m:h", options, NULL)) != -1) {
		a->asked = a->asked || (c != 'c' && c != OPT_REPLAY && c != OPT_SINCE && c != OPT_JSON &&
		                        c != 'h');
		switch (c) {
		case OPT_REPLAY:
			a->replay = optarg;
			break;
		case OPT_SINCE:
			a->since = optarg;
			break;
		case OPT_JSON:
			a->json = true;
			break;
		case 'c':
			a->config = optarg;
			break;
		case OPT_BREAK_GLASS:
			a->break_glass = optarg;
			break;
		case 'k':
			a->key = optarg;
			break;
		case 'o':
			if (!pg_op_from_name(optarg, &a->op))
				return usage_error("unknown operation '%s' (" PG_OP_NAMES_TEXT ")",
				                   optarg);
			break;
		case 'u':
			o->user_arg = optarg;
			break;
		case 'g':
			if (o->n_group_args == MAX_GROUPS)
				return usage_error("too many --group options");
			o->group_args[o->n_group_args++] = optarg;
			break;
		case 'p':
			o->program = optarg;
			break;
		case OPT_UNIT:
			o->unit = optarg;
			break;
		case OPT_ENV:
			if (o->n_env_args == MAX_ENV)
				return usage_error("too many --env options");
			o->env_args[o->n_env_args++] = optarg;
			break;
		case 'm':
			if (!parse_mechanism(optarg, &a->mechanism))
				return usage_error("unknown mechanism '%s' (a CKM_ name, or 0x... for a "
				                   "vendor mechanism)", optarg);
			break;
		case OPT_AT:
			if (!parse_rfc3339(optarg, &a->at))
				return usage_error("--at wants an RFC 3339 time like 2026-12-24T10:00:00Z "
				                   "or 2026-12-24T11:00:00+01:00, not '%s'", optarg);
			a->have_at = true;
			break;
		case OPT_IDENTITY_TOKEN:
			a->identity_token = optarg;
			break;
		case OPT_CLAIMS:
			a->claims = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'p11gate explain --help' for more information.\n");
			return 2;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (a->replay != NULL && a->asked)
		return usage_error("--replay judges the log's own calls: it takes only --config, "
		                   "--since and --json");
	if (a->replay == NULL && (a->since != NULL || a->json))
		return usage_error("--since and --json go with --replay LOG");
	if (a->replay != NULL)
		return -1;
	if (a->identity_token != NULL && a->claims != NULL)
		return usage_error("give --identity-token or --claims, not both");
	if (a->key == NULL && a->identity_token == NULL && a->claims == NULL)
		return usage_error("--key NAME is required (or --identity-token FILE or --claims "
		                   "JSON: what that pipeline may do with every key)");
	return -1;
}

/* Without --key: the decision for every key, one line each (what a
 * pipeline with this identity may do). */
static int
explain_every_key(const pg_policy *policy, struct pg_request *request, struct pg_key_match *match)
{
	struct pg_decision decision;
	char name[256], shown[1024];
	int status = 1;

	printf("keys:\n");
	for (size_t i = 0; i < pg_policy_key_count(policy); i++) {
		match->idx[0] = (unsigned)i;
		pg_policy_decide(policy, request, &decision);
		pg_esc(pg_policy_key_name(policy, (unsigned)i), PG_ESC_TEXT, name, sizeof name);
		if (decision.allow) {
			printf("  %s: allow (rule %s)\n", name,
			       pg_esc(decision.rule != NULL ? decision.rule : "?", PG_ESC_TEXT, shown,
			              sizeof shown));
			status = 0;
		} else {
			printf("  %s: deny (%s)\n", name,
			       pg_esc(decision.reason, PG_ESC_TEXT, shown, sizeof shown));
		}
	}
	return status;
}

int
pg_cmd_explain(int argc, char **argv)
{
	struct explain_args *a = calloc(1, sizeof *a);   /* several KiB: not on the stack */
	struct pg_key_match match = { .n = 1, .pin_mismatch = -1 };
	struct pg_request request = { .key = &match };
	struct pg_caller *caller = NULL;
	struct pg_login_id *login = NULL;
	struct saved_caller saved;
	struct pg_decision decision;
	pg_policy *policy = NULL;
	bool saved_set = false;
	char shown[1024], refused[512];
	int status = 2, idx;

	if (a == NULL) {
		fprintf(stderr, "p11gate explain: %s\n", strerror(ENOMEM));
		goto out;
	}
	a->config = getenv("P11GATE_CONFIG");
	if (a->config == NULL || a->config[0] == '\0')
		a->config = P11GATE_DEFAULT_CONFIG;
	a->op = PG_OP_SIGN;
	a->mechanism = CK_UNAVAILABLE_INFORMATION;
	if ((status = parse_args(argc, argv, a)) >= 0)
		goto out;
	status = 2;
	request.op = a->op;
	request.mechanism = a->mechanism;
	request.now = a->have_at ? a->at : time(NULL);
	request.justify = stated_justification;
	request.justify_ctx = (void *)a->break_glass;

	policy = pg_policy_load(a->config, pg_cli_print_errors, NULL);
	if (policy == NULL) {
		fprintf(stderr, "p11gate explain: %s does not load; run 'p11gate check %s'\n",
		        a->config, a->config);
		goto out;
	}
	if (a->replay != NULL) {
		status = pg_explain_replay(policy, a->config, a->replay, a->since, a->json);
		goto out;
	}
	idx = a->key != NULL ? pg_policy_key_find(policy, a->key) : 0;
	if (idx < 0) {
		fprintf(stderr, "p11gate explain: %s defines no key '%s'; it defines:", a->config, a->key);
		for (size_t i = 0; i < pg_policy_key_count(policy); i++)
			fprintf(stderr, " %s", pg_policy_key_name(policy, (unsigned)i));
		fprintf(stderr, "\n");
		goto out;
	}
	match.idx[0] = (unsigned)idx;

	caller = pg_caller_process_new();
	if (caller == NULL) {
		fprintf(stderr, "p11gate explain: cannot read this process's identity: %s\n",
		        strerror(errno != 0 ? errno : ENOMEM));
		goto out;
	}
	save_caller(caller, &saved);
	saved_set = true;
	if ((status = apply_overrides(&a->o, caller)) != 0)
		goto out;
	if (pg_policy_settings(policy)->identity == PG_IDENTITY_PEER) {
		if (caller->exe_trust != PG_ID_UNAVAILABLE)
			caller->exe_trust = PG_ID_REPORTED;
		if (caller->unit_trust != PG_ID_UNAVAILABLE)
			caller->unit_trust = PG_ID_REPORTED;
	}
	request.caller = caller;

	if (a->identity_token != NULL || a->claims != NULL) {
		status = pg_explain_login_new(policy, a->identity_token, a->claims, request.now, &login,
		                              refused, sizeof refused);
		if (status != 0)
			goto out;
		status = 1;
		if (login == NULL) {
			printf("identity: the token is refused at login: %s\n",
			       pg_esc(refused, PG_ESC_TEXT, shown, sizeof shown));
			printf("decision: deny\n");
			printf("reason: C_Login with this token returns CKR_PIN_INCORRECT: a pipeline "
			       "presenting it may use no key\n");
			goto out;
		}
		request.login = login;
	}
	print_request(&request, a->key != NULL ? a->key : "(each below)", caller);
	if (login != NULL)
		pg_explain_login_print(login, a->claims != NULL);
	if (a->key == NULL) {
		status = explain_every_key(policy, &request, &match);
		goto out;
	}
	printf("rules (in file order):\n");
	pg_policy_explain(policy, &request, print_rule, NULL, &decision);
	printf("decision: %s\n", decision.allow ? "allow" : "deny");
	printf("rule: %s\n", decision.rule != NULL ?
	       pg_esc(decision.rule, PG_ESC_TEXT, shown, sizeof shown) : "(none)");
	printf("reason: %s\n", pg_esc(decision.reason, PG_ESC_TEXT, shown, sizeof shown));
	if (decision.unusual)
		printf("alert: unusual-hours: %s\n",
		       pg_esc(decision.unusual_reason, PG_ESC_TEXT, shown, sizeof shown));
	if (decision.allow)
		print_counted(&decision);
	print_lifecycle_note(policy, (unsigned)idx, &request, &decision);
	explain_reported(policy, &request, caller, &decision);
	status = decision.allow ? 0 : 1;
out:
	if (caller != NULL) {
		if (saved_set)
			restore_caller(caller, &saved);
		pg_caller_free(caller);
	}
	if (a != NULL)
		free(a->o.env_all);
	free(a);
	pg_login_id_free(login);
	pg_policy_unref(policy);
	return status;
}
