/* SPDX-License-Identifier: Apache-2.0
 *
 * The compiled policy as the files of src/policy share it: keys, rules,
 * their conditions and the (key, operation) index, plus the small helpers
 * (arena, diagnostics) the loader uses.  Nothing outside src/policy sees it.
 */
#ifndef P11GATE_POLICY_INTERNAL_H
#define P11GATE_POLICY_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <p11-kit/uri.h>

#include "p11gate/policy.h"
#include "p11gate/common.h"
#include "tz.h"
#include "yaml_tree.h"
#include "sshsig.h"

/* ---- arena: everything a compiled policy owns, freed at once ---------- */

struct pg_arena_block;
struct pg_arena {
	struct pg_arena_block *head;
};

/* Zeroed, aligned for any type; NULL on out-of-memory. */
void *pg_arena_alloc(struct pg_arena *arena, size_t size);
void *pg_arena_calloc(struct pg_arena *arena, size_t n, size_t size);
char *pg_arena_strdup(struct pg_arena *arena, const char *s);
char *pg_arena_printf(struct pg_arena *arena, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void pg_arena_release(struct pg_arena *arena);

/* ---- diagnostics ------------------------------------------------------ */

struct pg_diag {
	const char *file;
	pg_diag_fn fn;
	void *ctx;
	unsigned errors;
	unsigned warnings;
};

void pg_diag_report(struct pg_diag *diag, enum pg_severity severity,
                    unsigned long line, unsigned long column, const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));
void pg_diag_error(struct pg_diag *diag, unsigned long line, unsigned long column,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void pg_diag_warning(struct pg_diag *diag, unsigned long line, unsigned long column,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* At a node's position. */
void pg_diag_error_at(struct pg_diag *diag, const struct pg_ynode *node,
                      const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void pg_diag_warning_at(struct pg_diag *diag, const struct pg_ynode *node,
                        const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- typed access to the YAML tree (reporting errors) ----------------- */

/* Reports every key of map not in allowed (NULL-terminated), with a
 * "did you mean" and the allowed list; what names the mapping ("rule"). */
bool pg_ymap_check_keys(struct pg_diag *diag, const struct pg_ynode *map,
                        const char *const *allowed, const char *what);
/* Value node of key in map, NULL if absent. */
const struct pg_ynode *pg_ymap_get(const struct pg_ynode *map, const char *key);
/* Reports unless node has the kind; field names it in the message. */
bool pg_yexpect(struct pg_diag *diag, const struct pg_ynode *node,
                enum pg_ykind kind, const char *field);
/* A non-empty scalar; NULL (reported) otherwise. */
const char *pg_yget_string(struct pg_diag *diag, const struct pg_ynode *node, const char *field);
/* true/false, unquoted. */
bool pg_yget_bool(struct pg_diag *diag, const struct pg_ynode *node, const char *field, bool *out);
/* "a, b, c" of a sequence of scalars, for messages ("[a, b]"). */
char *pg_yseq_text(struct pg_arena *arena, const struct pg_ynode *seq);
/* Letters, digits, '.', '_', '-': the names of keys and rules. */
bool pg_name_ok(const char *name);
/* Closest of candidates to word within edit distance 2, or NULL. */
const char *pg_suggest(const char *word, const char *const *candidates);

/* ---- compiled policy -------------------------------------------------- */

#define PG_N_OPS 8   /* the bits of enum pg_op: PG_OP_NAMES_TEXT */

/* One pinned public key of a key (`public_key_sha256`, or an entry of
 * `pins:`), with the date after which it may no longer sign (rotation). */
struct pg_pin {
	unsigned char sha256[PG_SHA256_LEN];
	long not_after;              /* YYYYMMDD (UTC, inclusive); 0: none */
};

/* A revoked certificate as a CRL lists it: the SHA-256 of the issuer's
 * name (DER) and the serial number. */
struct pg_revoked {
	unsigned char issuer_sha256[PG_SHA256_LEN];
	unsigned char serial[PG_CERT_SERIAL_MAX];
	size_t serial_len;
};

/* A key's lifecycle fields (lifecycle.c): enforced at signing. */
struct pg_key_life {
	bool certificate;            /* a certificate: block is given */
	bool cert_required;          /* certificate.required */
	int eku_nid;                 /* certificate.eku; NID_undef (0): none */
	const char *eku_text;
	const char *crl_file;        /* certificate.crl_file, read at load */
	struct pg_revoked *revoked;  /* sorted (issuer_sha256, serial) */
	size_t n_revoked;
	time_t crl_next_update;      /* 0: the CRL gives none */
	unsigned warn_days;          /* certificate.warn_days, default PG_WARN_DAYS_DEFAULT */
	long not_after;              /* not_after: YYYYMMDD (UTC, inclusive); 0: none */
};

struct pg_key {
	const char *name;
	const char *uri_text;
	const char *owner;
	const char *purpose;
	P11KitUri *uri;              /* freed with the policy */
	bool names_module;           /* the URI states library-* fields */
	bool names_slot;             /* ... slot-* fields */
	bool names_token;            /* ... token fields */
	/* Attributes the URI states (CKA_CLASS, CKA_LABEL, CKA_ID): each must
	 * be among the facts, because p11-kit skips the ones that are not. */
	CK_ATTRIBUTE_TYPE uri_attrs[4];
	size_t n_uri_attrs;
	bool has_pin;                /* n_pins > 0 */
	struct pg_pin *pins;         /* public_key_sha256 (one) or pins: (several) */
	size_t n_pins;
	struct pg_key_life life;
	unsigned long line, column;
	bool mentioned;              /* some rule names it */
};

/* The conditions a rule can state, in evaluation order.  The order is also
 * what "nearest rule" means: the allow rule whose first failing condition
 * comes latest in this order is the nearest. */
enum pg_cond {
	PG_COND_USERS,
	PG_COND_GROUPS,
	PG_COND_PROGRAMS,
	PG_COND_PROGRAM_SHA256,
	PG_COND_UNITS,
	PG_COND_ENV,
	PG_COND_IDENTITY,
	PG_COND_MECHANISMS,
	PG_COND_DATES,
	PG_COND_DAYS,
	PG_COND_HOURS,
	PG_COND_APPROVAL,            /* late: it reads the grants directory */
	PG_COND_BREAK_GLASS,         /* last: it reads the caller's environment or files */
	PG_COND_COUNT
};

/* Three-valued result: a condition on a field the caller's identity could
 * not supply is UNKNOWN.  An allow rule needs YES; a deny rule applies on
 * YES or UNKNOWN (fail closed both ways). */
enum pg_tri { PG_NO, PG_YES, PG_UNKNOWN };

/* A glob, with a fast path: most programs are written out in full. */
struct pg_glob {
	const char *pattern;
	bool literal;                /* no *, ?, [ or \: plain string compare */
};

/* identity: what a caller must have proved at login (login.c). */
struct pg_identity_claim {
	const char *name;
	struct pg_glob glob;         /* a string claim matches the glob; any other is compared as text */
};
struct pg_identity_cond {
	const char *issuer;          /* the login: issuer's name, or NULL */
	const char *credential;      /* the login: credential's name, or NULL */
	struct pg_identity_claim *claims;
	size_t n_claims;
};

struct pg_env_cond {
	const char *name;
	struct pg_glob glob;
};

/* A rule's approval: (docs/approvals.md). */
struct pg_approval {
	unsigned *from;              /* approver indexes, no duplicates */
	size_t n_from;
	const char *from_text;       /* "alice, bob" as written */
	unsigned count;              /* distinct approvers needed, 1..n_from */
};

/* One person who may approve grants, by the OpenSSH key they sign with. */
struct pg_approver {
	const char *name;
	pg_sshkey *key;              /* freed with the policy */
	const char *user;            /* their local account, NULL if none */
	unsigned long line, column;
};

struct pg_date_range {
	long start, end;             /* YYYYMMDD, inclusive */
};

struct pg_rule {
	const char *name;
	bool allow;
	unsigned long line, column;
	unsigned *keys;              /* key indexes, no duplicates */
	size_t n_keys;
	unsigned ops;                /* enum pg_op bits */
	bool has_callers;
	unsigned conds;              /* bit (1 << enum pg_cond) for each stated condition */

	uid_t *uids;
	size_t n_uids;
	const char *users_text;      /* "ci, 1001" as written */
	gid_t *gids;
	size_t n_gids;
	const char *groups_text;
	struct pg_glob *programs;
	size_t n_programs;
	const char *programs_text;
	unsigned char (*program_sha256)[PG_SHA256_LEN];
	size_t n_program_sha256;
	struct pg_glob *units;
	size_t n_units;
	const char *units_text;
	struct pg_env_cond *env;
	size_t n_env;
	struct pg_identity_cond identity;
	CK_MECHANISM_TYPE *mechanisms;
	size_t n_mechanisms;
	const char *mechanisms_text;

	unsigned days;               /* bit tm_wday (0 = Sunday) */
	const char *days_text;
	unsigned hours_start, hours_end;   /* minutes since local midnight */
	const char *hours_text;
	struct pg_date_range *dates;
	size_t n_dates;
	const char *dates_text;
	const char *tz_name;         /* "UTC" when not given */
	const pg_tz *tz;             /* NULL: UTC (gmtime_r) */

	/* usual: (allow rules only): a when:-window compiled into a rule of
	 * its own (only its time fields are set); an allowed use outside it
	 * is allowed and raises an unusual-hours alert.  NULL if not given. */
	struct pg_rule *usual;
	struct pg_approval *approval; /* NULL: none */
	/* limit: and break_glass: (allow rules only; limits.c).  NULL if not given. */
	struct pg_limit *limit;
	struct pg_limit *break_glass;
};

struct pg_bucket {
	unsigned *allow;             /* rule indexes in file order */
	size_t n_allow;
	unsigned *deny;
	size_t n_deny;
};

struct pg_policy {
	atomic_uint refs;
	struct pg_arena arena;
	struct pg_settings settings;
	struct pg_key *keys;
	size_t n_keys;
	struct pg_rule *rules;
	size_t n_rules;
	pg_tz **zones;               /* loaded once per distinct name */
	size_t n_zones;
	struct pg_bucket *index;     /* n_keys * PG_N_OPS, [key * PG_N_OPS + op bit] */
	struct pg_approver *approvers;
	size_t n_approvers;
	const char **grants_revoked; /* grants.revoked: grant ids */
	size_t n_grants_revoked;
	long grants_max_lifetime;    /* seconds */
	/* The one mutable part of a compiled policy: what verifying its
	 * grants' signatures found, a memo that never changes a decision
	 * (grant_check.c; its own lock). */
	struct pg_grant_cache *grant_cache;
	struct pg_alerts alerts;     /* alerts: (alerts.c) */
	struct pg_login_config login;
	struct pg_key_minimum key_minimum;  /* key_minimum: (lifecycle.c) */
};

/* The state a loader pass shares: the policy being built and the diags. */
struct pg_load {
	struct pg_policy *policy;
	struct pg_diag *diag;
};

/* Each compiles its section into load->policy, reporting errors; false
 * only on out-of-memory (errors are counted in diag). */
bool pg_keys_compile(struct pg_load *load, const struct pg_ynode *keys);
/* alerts: of the top level (alerts.c). */
bool pg_alerts_compile(struct pg_load *load, const struct pg_ynode *root);
bool pg_rules_compile(struct pg_load *load, const struct pg_ynode *rules);
/* Parts of a rule (rules.c calls them). */
bool pg_callers_compile(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *callers);
bool pg_when_compile(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *when);
/* usual: of an allow rule (when.c). */
bool pg_usual_compile(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *usual);
/* approvers: and grants: (approvals.c), before the rules; a rule's approval:. */
bool pg_approvers_compile(struct pg_load *load, const struct pg_ynode *root);
bool pg_approval_compile(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *approval);
void pg_approvers_release(struct pg_policy *policy);
struct pg_grant_cache *pg_grant_cache_new(void);
void pg_grant_cache_free(struct pg_grant_cache *cache);
/* A key's pins:, not_after and certificate: (lifecycle.c); false only on
 * out-of-memory. */
bool pg_life_compile(struct pg_load *load, struct pg_key *key, const struct pg_ynode *body);
/* key_minimum: of the top level (lifecycle.c); the built-in floor without it. */
void pg_key_minimum_compile(struct pg_load *load, const struct pg_ynode *root);
/* The not_after of the pin facts match (keys.c); 0: none or no pin. */
long pg_key_pin_not_after(const struct pg_key *key, const struct pg_key_facts *facts);
/* "YYYY-MM-DD" as YYYYMMDD, or -1 with why (when.c). */
long pg_parse_date(const char *text, size_t len, char *why, size_t why_len);
/* login.c: the login: block (before rules: they name its issuers), a rule's
 * callers.identity, and the claim names records carry (after rules). */
bool pg_login_compile(struct pg_load *load, const struct pg_ynode *login);
bool pg_identity_compile(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *identity);
bool pg_login_finish(struct pg_load *load);
/* login_lint.c: check's warning about allow rules for signing with no
 * identity condition once login: names issuers (after rules). */
void pg_login_lint(struct pg_load *load);
/* Globs of callers: conditions (callers.c): no FNM_PATHNAME, no FNM_PERIOD. */
void pg_glob_init(struct pg_glob *glob, const char *pattern);
bool pg_glob_match(const struct pg_glob *glob, const char *text);
/* Builds policy->index; false on out-of-memory. */
bool pg_index_build(struct pg_policy *policy);
void pg_keys_release(struct pg_policy *policy);
void pg_zones_release(struct pg_policy *policy);

/* ---- evaluation ------------------------------------------------------- */

/* One request being judged: the local time is computed once per zone. */
struct pg_eval {
	const struct pg_request *req;
	const struct pg_policy *policy;
	struct pg_grant_use grant;   /* the grant the last approval condition that held used */
	/* The break-glass justification, asked once (-1: not yet), into the
	 * decision's buffers. */
	int justified;
	char *justification;
	char *justification_source;
	const pg_tz *tm_zone;        /* zone tm was computed for */
	bool tm_valid;
	bool tm_zone_set;
	struct tm tm;
};

/* limit: and break_glass: of a rule (limits.c), and the condition a
 * break_glass: rule states: a justification. */
bool pg_limit_compile(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *limit);
bool pg_break_glass_compile(struct pg_load *load, struct pg_rule *rule,
                            const struct pg_ynode *break_glass);
enum pg_tri pg_break_glass_eval(const struct pg_rule *rule, struct pg_eval *ev, char *msg,
                                size_t msg_len);

/* Evaluates one stated condition; msg (may be NULL) gets what held or what
 * failed, e.g. "user ci (uid 1001) is not in users [release]". */
enum pg_tri pg_callers_eval(const struct pg_rule *rule, enum pg_cond cond,
                            struct pg_eval *ev, char *msg, size_t msg_len);
enum pg_tri pg_identity_eval(const struct pg_rule *rule, struct pg_eval *ev, char *msg,
                            size_t msg_len);
/* A token past its exp (with PG_LOGIN_SKEW) refuses every use: true and
 * the reason in out then. */
bool pg_login_expired(const struct pg_request *req, char *out, size_t out_len);
enum pg_tri pg_when_eval(const struct pg_rule *rule, enum pg_cond cond,
                         struct pg_eval *ev, char *msg, size_t msg_len);
/* Whether the request is outside the rule's usual: window; if so, msg
 * says which part it is outside ("outside 08:00-19:00 Europe/Berlin ..."). */
bool pg_usual_outside(const struct pg_rule *rule, struct pg_eval *ev, char *msg, size_t msg_len);
/* approval: a valid grant with enough approvals (grant_check.c). */
enum pg_tri pg_approval_eval(const struct pg_rule *rule, struct pg_eval *ev, char *msg, size_t msg_len);

#endif /* P11GATE_POLICY_INTERNAL_H */
