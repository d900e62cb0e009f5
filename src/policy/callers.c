/* SPDX-License-Identifier: Apache-2.0
 *
 * A rule's callers: conditions (users, groups, programs, program_sha256,
 * units, env; identity is login.c's): compiled once, with user and group names resolved to ids at
 * load time, and evaluated against a pg_caller with its trust levels.
 */
#include "internal.h"

#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const caller_fields[] = {
	"users", "groups", "programs", "program_sha256", "units", "env", "identity", NULL
};

/* Bound on the getpwnam_r/getgrnam_r buffer (groups with many members). */
#define PG_NSS_BUF_MAX (1u << 20)

/* A decimal id: every character a digit, within range, not (id_t)-1. */
static bool
parse_id(const char *text, unsigned long *out)
{
	char *end = NULL;
	unsigned long value;

	if (text[0] < '0' || text[0] > '9')
		return false;
	errno = 0;
	value = strtoul(text, &end, 10);
	if (*end != '\0' || errno != 0 || value >= 0xffffffffUL)
		return false;
	*out = value;
	return true;
}

/* 0 found, ENOENT unknown, other errno on lookup failure. */
static int
lookup_name(const char *name, bool group, unsigned long *out)
{
	size_t size = 4096;
	char *buf = NULL;
	int err;

	for (;;) {
		char *bigger = realloc(buf, size);
		if (bigger == NULL) {
			err = ENOMEM;
			break;
		}
		buf = bigger;
		if (group) {
			struct group gr, *result = NULL;
			err = getgrnam_r(name, &gr, buf, size, &result);
			if (err == 0 && result != NULL)
				*out = result->gr_gid;
			else if (err == 0)
				err = ENOENT;
		} else {
			struct passwd pw, *result = NULL;
			err = getpwnam_r(name, &pw, buf, size, &result);
			if (err == 0 && result != NULL)
				*out = result->pw_uid;
			else if (err == 0)
				err = ENOENT;
		}
		if (err != ERANGE || size >= PG_NSS_BUF_MAX)
			break;
		size *= 2;
	}
	free(buf);
	return err;
}

/* users: and groups: share their shape; ids go to the rule's uid or gid list. */
static bool
compile_ids(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *seq, bool group)
{
	struct pg_diag *diag = load->diag;
	struct pg_arena *arena = &load->policy->arena;
	const char *field = group ? "groups" : "users";
	const char *kind = group ? "group" : "user";
	unsigned long *ids;
	size_t n = 0;

	if (!pg_yexpect(diag, seq, PG_Y_SEQ, field))
		return true;
	rule->conds |= 1u << (group ? PG_COND_GROUPS : PG_COND_USERS);
	ids = pg_arena_calloc(arena, seq->n, sizeof *ids);
	if (ids == NULL)
		return false;
	for (size_t i = 0; i < seq->n; i++) {
		const struct pg_ynode *item = seq->kids[i];
		const char *text = pg_yget_string(diag, item, group ? "a group" : "a user");
		int err;

		if (text == NULL)
			continue;
		if (parse_id(text, &ids[n])) {
			n++;
			continue;
		}
		if (text[0] >= '0' && text[0] <= '9') {
			pg_diag_error_at(diag, item, "%s id '%s' is not a valid number", kind, text);
			continue;
		}
		err = lookup_name(text, group, &ids[n]);
		if (err == 0)
			n++;
		else if (err == ENOENT)
			pg_diag_warning_at(diag, item, "%s '%s' does not exist on this machine, so rule '%s' "
			                   "can never match it (names are resolved when the policy is "
			                   "loaded; create the %s and reload, or give the numeric id)",
			                   kind, text, rule->name, kind);
		else
			pg_diag_warning_at(diag, item, "cannot look %s '%s' up (%s), so rule '%s' can never "
			                   "match it", kind, text, strerror(err), rule->name);
	}
	if (n == 0 && seq->n == 0)
		pg_diag_warning_at(diag, seq, "rule '%s' can never match: its %s list is empty",
		                   rule->name, field);
	else if (n == 0 && seq->n > 1)   /* with one entry, its own warning says it all */
		pg_diag_warning_at(diag, seq, "rule '%s' can never match: none of its %s exist here",
		                   rule->name, field);
	if (group) {
		rule->gids = pg_arena_calloc(arena, n, sizeof *rule->gids);
		rule->groups_text = pg_yseq_text(arena, seq);
		if (rule->gids == NULL || rule->groups_text == NULL)
			return false;
		for (size_t i = 0; i < n; i++)
			rule->gids[i] = (gid_t)ids[i];
		rule->n_gids = n;
	} else {
		rule->uids = pg_arena_calloc(arena, n, sizeof *rule->uids);
		rule->users_text = pg_yseq_text(arena, seq);
		if (rule->uids == NULL || rule->users_text == NULL)
			return false;
		for (size_t i = 0; i < n; i++)
			rule->uids[i] = (uid_t)ids[i];
		rule->n_uids = n;
	}
	return true;
}

void
pg_glob_init(struct pg_glob *glob, const char *pattern)
{
	glob->pattern = pattern;
	glob->literal = strpbrk(pattern, "*?[\\") == NULL;
}

/* No FNM_PATHNAME: a star crosses '/', so the pattern /usr/lib/jvm/STAR/bin/java
 * (STAR being '*') matches /usr/lib/jvm/java-17/bin/java; no FNM_PERIOD. */
bool
pg_glob_match(const struct pg_glob *glob, const char *text)
{
	if (glob->literal)
		return strcmp(glob->pattern, text) == 0;
	return fnmatch(glob->pattern, text, 0) == 0;
}

/* programs: and units: are lists of globs; programs must be absolute. */
static bool
compile_globs(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *seq,
              enum pg_cond cond)
{
	struct pg_diag *diag = load->diag;
	struct pg_arena *arena = &load->policy->arena;
	const char *field = cond == PG_COND_PROGRAMS ? "programs" : "units";
	struct pg_glob *globs;
	const char *text;
	size_t n = 0;

	if (!pg_yexpect(diag, seq, PG_Y_SEQ, field))
		return true;
	rule->conds |= 1u << cond;
	globs = pg_arena_calloc(arena, seq->n, sizeof *globs);
	text = pg_yseq_text(arena, seq);
	if (globs == NULL || text == NULL)
		return false;
	if (seq->n == 0)
		pg_diag_warning_at(diag, seq, "rule '%s' can never match: its %s list is empty",
		                   rule->name, field);
	for (size_t i = 0; i < seq->n; i++) {
		const char *glob = pg_yget_string(diag, seq->kids[i],
		                                  cond == PG_COND_PROGRAMS ? "a program" : "a unit");
		if (glob == NULL)
			continue;
		if (cond == PG_COND_PROGRAMS && glob[0] != '/') {
			pg_diag_error_at(diag, seq->kids[i], "program '%s' must be an absolute path "
			                 "(the resolved executable, e.g. /usr/bin/osslsigncode)", glob);
			continue;
		}
		if ((glob = pg_arena_strdup(arena, glob)) == NULL)
			return false;
		pg_glob_init(&globs[n++], glob);
	}
	if (cond == PG_COND_PROGRAMS) {
		rule->programs = globs;
		rule->n_programs = n;
		rule->programs_text = text;
	} else {
		rule->units = globs;
		rule->n_units = n;
		rule->units_text = text;
	}
	return true;
}

static bool
compile_sha256(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *seq)
{
	struct pg_diag *diag = load->diag;

	if (!pg_yexpect(diag, seq, PG_Y_SEQ, "program_sha256"))
		return true;
	rule->conds |= 1u << PG_COND_PROGRAM_SHA256;
	rule->program_sha256 = pg_arena_calloc(&load->policy->arena, seq->n,
	                                       sizeof *rule->program_sha256);
	if (rule->program_sha256 == NULL)
		return false;
	if (seq->n == 0)
		pg_diag_warning_at(diag, seq, "rule '%s' can never match: its program_sha256 list is "
		                   "empty", rule->name);
	for (size_t i = 0; i < seq->n; i++) {
		const char *text = pg_yget_string(diag, seq->kids[i], "a program_sha256 entry");
		if (text == NULL)
			continue;
		if (!pg_hex_decode(text, rule->program_sha256[rule->n_program_sha256], PG_SHA256_LEN)) {
			pg_diag_error_at(diag, seq->kids[i], "program_sha256 entry must be 64 hex digits "
			                 "(sha256sum /path/to/program), not '%s'", text);
			continue;
		}
		rule->n_program_sha256++;
	}
	return true;
}

static bool
env_name_ok(const char *name)
{
	if (!((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	}
	return true;
}

static bool
compile_env(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *map)
{
	struct pg_diag *diag = load->diag;
	struct pg_arena *arena = &load->policy->arena;

	if (!pg_yexpect(diag, map, PG_Y_MAP, "env"))
		return true;
	rule->conds |= 1u << PG_COND_ENV;
	rule->env = pg_arena_calloc(arena, map->n, sizeof *rule->env);
	if (rule->env == NULL)
		return false;
	for (size_t i = 0; i < map->n; i++) {
		const struct pg_ynode *name = map->kids[2 * i];
		const char *glob;

		if (!env_name_ok(name->value)) {
			pg_diag_error_at(diag, name, "'%s' is not an environment variable name (letters, "
			                 "digits and '_', not starting with a digit)", name->value);
			continue;
		}
		glob = pg_yget_string(diag, map->kids[2 * i + 1], "an env value (a glob)");
		if (glob == NULL)
			continue;
		rule->env[rule->n_env].name = pg_arena_strdup(arena, name->value);
		glob = pg_arena_strdup(arena, glob);
		if (rule->env[rule->n_env].name == NULL || glob == NULL)
			return false;
		pg_glob_init(&rule->env[rule->n_env].glob, glob);
		rule->n_env++;
	}
	return true;
}

/* identity: peer proves who connected (uid, gid, groups), not what uses
 * the connection: a rule that lets programs, program_sha256 or units
 * decide rests on facts the caller can choose. */
static void
warn_reported(struct pg_load *load, const struct pg_rule *rule, const struct pg_ynode *callers)
{
	static const char *const fields[] = { "programs", "program_sha256", "units" };

	if (load->policy->settings.identity != PG_IDENTITY_PEER)
		return;
	for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
		const struct pg_ynode *node = pg_ymap_get(callers, fields[i]);
		bool program = i < 2;

		if (node == NULL)
			continue;
		pg_diag_warning_at(load->diag, node,
		                   "%s rule '%s' relies on %s, which identity: peer only reports: the "
		                   "socket binds the uid, gid and groups of the process that connected, "
		                   "not the %s using it (it may have forked and exec'd %s, or handed the "
		                   "socket on)%s; say who may %s with users: or groups: (docs/deployment.md)",
		                   rule->allow ? "allow" : "deny", rule->name, fields[i],
		                   program ? "program" : "unit",
		                   program ? "an allowed program, or run it with LD_PRELOAD"
		                           : "something else",
		                   program ? "; and the server reads another user's /proc/PID/exe only "
		                             "with CAP_SYS_PTRACE, without which this never matches" : "",
		                   rule->allow ? "sign" : "not sign");
	}
}

bool
pg_callers_compile(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *callers)
{
	const struct pg_ynode *node;

	if (!pg_yexpect(load->diag, callers, PG_Y_MAP, "callers"))
		return true;
	pg_ymap_check_keys(load->diag, callers, caller_fields, "callers");
	rule->has_callers = callers->n > 0;
	if ((node = pg_ymap_get(callers, "users")) != NULL && !compile_ids(load, rule, node, false))
		return false;
	if ((node = pg_ymap_get(callers, "groups")) != NULL && !compile_ids(load, rule, node, true))
		return false;
	if ((node = pg_ymap_get(callers, "programs")) != NULL &&
	    !compile_globs(load, rule, node, PG_COND_PROGRAMS))
		return false;
	if ((node = pg_ymap_get(callers, "program_sha256")) != NULL && !compile_sha256(load, rule, node))
		return false;
	if ((node = pg_ymap_get(callers, "units")) != NULL &&
	    !compile_globs(load, rule, node, PG_COND_UNITS))
		return false;
	if ((node = pg_ymap_get(callers, "env")) != NULL && !compile_env(load, rule, node))
		return false;
	if ((node = pg_ymap_get(callers, "identity")) != NULL && !pg_identity_compile(load, rule, node))
		return false;
	warn_reported(load, rule, callers);
	return true;
}

/* ---- evaluation ------------------------------------------------------- */

#define SAY(...) do { if (msg != NULL) snprintf(msg, msg_len, __VA_ARGS__); } while (0)
/* A caller's string in a message: escaped, and quoted unless plain (only
 * evaluated inside SAY, so only when a message is wanted). */
#define SHOWN(s) pg_esc((s) != NULL ? (s) : "?", PG_ESC_VALUE, (char[320]){ 0 }, 320)

/* What a match on a fact the caller could have chosen is worth. */
static const char *
reported(enum pg_id_trust trust)
{
	return trust == PG_ID_REPORTED ? " (reported by the process that connected, not proven)" : "";
}

static enum pg_tri
eval_users(const struct pg_rule *rule, const struct pg_caller *caller, char *msg, size_t msg_len)
{
	char who[160];   /* not "= {0}": zeroing it costs more than the check */
	char shown[100];

	if (caller == NULL || caller->uid_trust == PG_ID_UNAVAILABLE) {
		SAY("the caller's uid is unavailable, so users [%s] cannot be checked", rule->users_text);
		return PG_UNKNOWN;
	}
	who[0] = '\0';
	if (msg != NULL) {
		if (caller->user != NULL)
			snprintf(who, sizeof who, "user %s (uid %lu)",
			         pg_esc(caller->user, PG_ESC_VALUE, shown, sizeof shown),
			         (unsigned long)caller->uid);
		else
			snprintf(who, sizeof who, "uid %lu", (unsigned long)caller->uid);
	}
	for (size_t i = 0; i < rule->n_uids; i++) {
		if (rule->uids[i] == caller->uid) {
			SAY("%s is in users [%s]", who, rule->users_text);
			return PG_YES;
		}
	}
	SAY("%s is not in users [%s]", who, rule->users_text);
	return PG_NO;
}

/* Trust-aware membership: an unavailable primary gid or group list is
 * never read, whatever value it holds. */
static enum pg_tri
eval_groups(const struct pg_rule *rule, const struct pg_caller *caller, char *msg, size_t msg_len)
{
	bool gid_known = caller != NULL && caller->gid_trust != PG_ID_UNAVAILABLE;
	bool list_known = caller != NULL && caller->groups_trust != PG_ID_UNAVAILABLE;

	if (!gid_known && !list_known) {
		SAY("the caller's groups are unavailable, so groups [%s] cannot be checked",
		    rule->groups_text);
		return PG_UNKNOWN;
	}
	for (size_t i = 0; i < rule->n_gids; i++) {
		gid_t gid = rule->gids[i];
		bool in = gid_known && caller->gid == gid;

		for (size_t k = 0; !in && list_known && k < caller->n_groups; k++)
			in = caller->groups[k] == gid;
		if (in) {
			SAY("the caller is in group %lu, one of groups [%s]", (unsigned long)gid,
			    rule->groups_text);
			return PG_YES;
		}
	}
	if (!list_known) {
		SAY("the caller's supplementary groups are unavailable, so groups [%s] cannot be "
		    "checked", rule->groups_text);
		return PG_UNKNOWN;
	}
	SAY("the caller (uid %lu) is in none of groups [%s]", (unsigned long)caller->uid,
	    rule->groups_text);
	return PG_NO;
}

static enum pg_tri
eval_programs(const struct pg_rule *rule, const struct pg_caller *caller, char *msg, size_t msg_len)
{
	if (caller == NULL || caller->exe_trust == PG_ID_UNAVAILABLE || caller->exe == NULL) {
		SAY("the caller's program is unavailable, so programs [%s] cannot be checked",
		    rule->programs_text);
		return PG_UNKNOWN;
	}
	for (size_t i = 0; i < rule->n_programs; i++) {
		if (pg_glob_match(&rule->programs[i], caller->exe)) {
			SAY("program %s matches %s%s", SHOWN(caller->exe), rule->programs[i].pattern,
			    reported(caller->exe_trust));
			return PG_YES;
		}
	}
	SAY("program %s is not in programs [%s]", SHOWN(caller->exe), rule->programs_text);
	return PG_NO;
}

static enum pg_tri
eval_sha256(const struct pg_rule *rule, struct pg_caller *caller, char *msg, size_t msg_len)
{
	const unsigned char *hash = NULL;
	char hex[PG_SHA256_HEX_LEN + 1];

	if (caller != NULL && caller->exe_trust != PG_ID_UNAVAILABLE)
		hash = pg_caller_exe_sha256(caller);
	if (hash == NULL) {
		SAY("the caller's program could not be hashed, so program_sha256 cannot be checked");
		return PG_UNKNOWN;
	}
	for (size_t i = 0; i < rule->n_program_sha256; i++) {
		if (memcmp(rule->program_sha256[i], hash, PG_SHA256_LEN) == 0) {
			SAY("program %s has a pinned SHA-256%s", SHOWN(caller->exe),
			    reported(caller->exe_trust));
			return PG_YES;
		}
	}
	if (msg != NULL) {
		pg_hex_encode(hash, PG_SHA256_LEN, hex);
		SAY("program %s has SHA-256 %s, which is not in program_sha256",
		    SHOWN(caller->exe), hex);
	}
	return PG_NO;
}

static enum pg_tri
eval_units(const struct pg_rule *rule, const struct pg_caller *caller, char *msg, size_t msg_len)
{
	if (caller == NULL || caller->unit_trust == PG_ID_UNAVAILABLE) {
		SAY("the caller's systemd unit is unavailable, so units [%s] cannot be checked",
		    rule->units_text);
		return PG_UNKNOWN;
	}
	if (caller->unit == NULL) {
		SAY("the caller runs in no systemd unit, so it is not in units [%s]", rule->units_text);
		return PG_NO;
	}
	for (size_t i = 0; i < rule->n_units; i++) {
		if (pg_glob_match(&rule->units[i], caller->unit)) {
			SAY("unit %s matches %s%s", SHOWN(caller->unit), rule->units[i].pattern,
			    reported(caller->unit_trust));
			return PG_YES;
		}
	}
	SAY("unit %s is not in units [%s]", SHOWN(caller->unit), rule->units_text);
	return PG_NO;
}

/* Values are never quoted back: an environment can hold secrets. */
static enum pg_tri
eval_env(const struct pg_rule *rule, const struct pg_caller *caller, char *msg, size_t msg_len)
{
	if (caller == NULL || caller->env_trust == PG_ID_UNAVAILABLE) {
		SAY("the caller's environment is unavailable, so env cannot be checked");
		return PG_UNKNOWN;
	}
	for (size_t i = 0; i < rule->n_env; i++) {
		const char *value = pg_caller_getenv(caller, rule->env[i].name);
		if (value == NULL) {
			SAY("env %s is not set", rule->env[i].name);
			return PG_NO;
		}
		if (!pg_glob_match(&rule->env[i].glob, value)) {
			SAY("env %s does not match '%s'", rule->env[i].name, rule->env[i].glob.pattern);
			return PG_NO;
		}
	}
	if (rule->n_env == 1)
		SAY("env %s matches '%s' (as the caller asserts)", rule->env[0].name,
		    rule->env[0].glob.pattern);
	else
		SAY("env matches (as the caller asserts)");
	return PG_YES;
}

enum pg_tri
pg_callers_eval(const struct pg_rule *rule, enum pg_cond cond, struct pg_eval *ev,
                char *msg, size_t msg_len)
{
	struct pg_caller *caller = ev->req->caller;

	switch (cond) {
	case PG_COND_USERS:
		return eval_users(rule, caller, msg, msg_len);
	case PG_COND_GROUPS:
		return eval_groups(rule, caller, msg, msg_len);
	case PG_COND_PROGRAMS:
		return eval_programs(rule, caller, msg, msg_len);
	case PG_COND_PROGRAM_SHA256:
		return eval_sha256(rule, caller, msg, msg_len);
	case PG_COND_UNITS:
		return eval_units(rule, caller, msg, msg_len);
	case PG_COND_ENV:
		return eval_env(rule, caller, msg, msg_len);
	case PG_COND_IDENTITY:
		return pg_identity_eval(rule, ev, msg, msg_len);
	default:
		break;
	}
	SAY("internal error: condition %d is not a caller condition", (int)cond);
	return PG_NO;
}
