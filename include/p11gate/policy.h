/* SPDX-License-Identifier: Apache-2.0
 *
 * The configuration file and the signing policy in it: loading (with
 * FILE:LINE:COLUMN diagnostics), the compiled immutable form, key
 * resolution and the decision.  The decision is a pure function of the
 * policy and a request; the clock is the request's `now`.
 */
#ifndef P11GATE_POLICY_H
#define P11GATE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "p11gate/pkcs11.h"
#include "p11gate/identity.h"
#include "p11gate/login.h"

typedef struct pg_policy pg_policy;

/* ---- loading ---------------------------------------------------------- */

enum pg_severity { PG_DIAG_ERROR, PG_DIAG_WARNING };

/* One diagnostic.  line and column are 1-based; 0 when the problem has no
 * position (an unreadable file). message says what is wrong and how to fix
 * it, without the position or severity prefix. */
typedef void (*pg_diag_fn)(void *ctx, enum pg_severity severity,
                           const char *file, unsigned long line,
                           unsigned long column, const char *message);

/* Reads, parses and compiles the configuration file.  Returns NULL if there
 * is any error; every error and warning goes to diag (which may be NULL).
 * The result is immutable and reference counted (refs start at 1). */
pg_policy *pg_policy_load(const char *path, pg_diag_fn diag, void *diag_ctx);
/* Same, from bytes already read (path is used in diagnostics only).  The
 * module reads the file once and hashes those same bytes. */
pg_policy *pg_policy_load_buffer(const char *path, const char *data, size_t len,
                                 pg_diag_fn diag, void *diag_ctx);
pg_policy *pg_policy_ref(pg_policy *policy);
void pg_policy_unref(pg_policy *policy);

/* ---- settings: the non-rule part of the file -------------------------- */

enum pg_identity_mode {
	PG_IDENTITY_PROCESS,    /* identity: process (default) */
	PG_IDENTITY_PEER,       /* identity: peer (p11-kit server only) */
};

struct pg_settings {
	const char *path;                  /* the file it was loaded from */
	unsigned char sha256[32];          /* SHA-256 of the file's bytes */
	const char *module;                /* module: the real PKCS#11 module */
	unsigned long module_line, module_column;   /* where `module`'s value is */
	const char *audit_file;            /* audit.file, NULL if not given */
	bool audit_sync;                   /* audit.sync, default true */
	bool audit_syslog;                 /* audit.syslog, default false */
	uint64_t audit_max_size;           /* audit.max_size in bytes, 0 if not given */
	const char *audit_checkpoint_key;  /* audit.checkpoint_key, NULL if not given */
	uint64_t audit_checkpoint_every;   /* audit.checkpoint_every, 0 if not given */
	bool caller_messages;              /* caller_messages, default true: one stderr line per refusal */
	enum pg_identity_mode identity;    /* identity, default process */
	const char *server_socket;         /* server_socket: the p11-kit server's socket (peer mode) */
	unsigned long key_names_max_age_ms; /* key_names_max_age_ms: how long a key's label and
	                                     * id read from the token are trusted */
	const char *grants_dir;            /* grants.dir: grant files and their approvals, NULL if
	                                    * not given (docs/approvals.md) */
};

#define PG_KEY_NAMES_MAX_AGE_DEFAULT_MS 1000u
#define PG_AUDIT_MAX_SIZE_MIN 65536u
#define PG_KEY_NAMES_MAX_AGE_LIMIT_MS 60000u

const struct pg_settings *pg_policy_settings(const pg_policy *policy);

/* alerts: (docs/policy.md, "Reference: alerts"); 0 / none when not given. */
#define PG_ALERTS_BY_CALLER  (1u << 0)   /* refusals.by: caller (its uid) */
#define PG_ALERTS_BY_KEY     (1u << 1)   /* refusals.by: key */
#define PG_ALERTS_BY_USER    (1u << 0)   /* new_caller.by: user (its uid) */
#define PG_ALERTS_BY_PROGRAM (1u << 1)   /* new_caller.by: program (its path) */
#define PG_ALERTS_REMEMBER_DEFAULT (90u * 86400u)

struct pg_alerts {
	uint64_t refusals_max;       /* refusals in one window that raise refusal-burst; 0: off */
	uint64_t refusals_per;       /* the window, seconds */
	unsigned refusals_by;        /* PG_ALERTS_BY_CALLER | PG_ALERTS_BY_KEY */
	unsigned new_caller_by;      /* PG_ALERTS_BY_USER | PG_ALERTS_BY_PROGRAM; 0: off */
	uint64_t new_caller_remember;   /* seconds a (key, caller) pair is remembered */
};

const struct pg_alerts *pg_policy_alerts(const pg_policy *policy);

/* ---- login: identity tokens and credentials (issue 13, docs/policy.md) -- */

struct pg_login_credential {
	const char *name;
	unsigned char secret_sha256[32];   /* SHA-256 of the secret presented as PIN */
};

struct pg_login_config {
	bool configured;                   /* the file has a login: block */
	const char *token_pin_file;        /* the real token's user PIN; NULL if not given */
	bool accept_token_pin;             /* default: false once an issuer or credential exists */
	const struct pg_login_issuer *issuers;
	size_t n_issuers;
	const struct pg_login_credential *credentials;
	size_t n_credentials;
	/* The claim names any rule's identity: condition names, for records. */
	const char *const *recorded_claims;
	size_t n_recorded_claims;
};

/* Never NULL; configured is false when the file has no login: block (C_Login
 * is then the token's own business). */
const struct pg_login_config *pg_policy_login(const pg_policy *policy);

/* ---- keys ------------------------------------------------------------- */

/* A certificate on the token whose public key is the key's (matched by
 * public key, not by CKA_ID), as lifecycle checks need it. */
#define PG_CERT_MAX 8
#define PG_CERT_SERIAL_MAX 32
#define PG_CERT_EKU_MAX 8
struct pg_cert_facts {
	unsigned char sha256[32];          /* SHA-256 of its DER: the fingerprint */
	unsigned char issuer_sha256[32];   /* SHA-256 of the issuer name's DER */
	unsigned char serial[PG_CERT_SERIAL_MAX];   /* big-endian, as encoded */
	size_t serial_len;
	time_t not_before, not_after;
	bool has_eku;                      /* an extendedKeyUsage extension */
	int eku[PG_CERT_EKU_MAX];          /* its purposes (OpenSSL NIDs; NID_undef: unknown) */
	size_t n_eku;
};

/* Every certificate of a key.  complete is false when they could not all
 * be read (more than PG_CERT_MAX, a read failed): checks then fail closed. */
struct pg_key_certs {
	bool complete;
	size_t n;
	struct pg_cert_facts cert[PG_CERT_MAX];
};

/* The algorithms key_minimum: judges (others, such as secret keys, it
 * does not). */
enum pg_key_family { PG_KEY_OTHER, PG_KEY_RSA, PG_KEY_EC };

/* What the token says about a key object at the time of use. */
struct pg_key_facts {
	const CK_INFO *module_info;        /* may be NULL */
	const CK_SLOT_INFO *slot_info;     /* may be NULL */
	const CK_TOKEN_INFO *token_info;   /* may be NULL */
	CK_ATTRIBUTE *attrs;               /* CKA_CLASS, CKA_LABEL, CKA_ID, CKA_KEY_TYPE, ... as read */
	CK_ULONG n_attrs;
	const unsigned char *public_key_sha256;  /* SHA-256 of the DER SPKI; NULL if unknown */
	/* Other public keys the object may have (an EC private key's public
	 * objects disagree): a pin matches if it is any of them. */
	const unsigned char (*public_key_candidates)[32];
	size_t n_public_key_candidates;
	long end_date;                     /* CKA_END_DATE as YYYYMMDD; 0: none */
	/* The key's size, as the minimum judges it: RSA modulus bits, EC
	 * curve order bits (0: the token would not say). */
	enum pg_key_family family;
	unsigned long bits;
	const struct pg_key_certs *certs;  /* NULL: not read (lifecycle checks needing them refuse) */
};

#define PG_MAX_KEY_MATCHES 8

/* The policy's names for one token object. */
struct pg_key_match {
	size_t n;                          /* how many policy keys matched */
	unsigned idx[PG_MAX_KEY_MATCHES];  /* their indexes */
	/* A key whose URI matched but whose public_key_sha256 pin did not (-1 if
	 * none): the decision reason names it, as a possible substituted key. */
	int pin_mismatch;
};

void pg_policy_match_key(const pg_policy *policy, const struct pg_key_facts *facts,
                         struct pg_key_match *out);

size_t pg_policy_key_count(const pg_policy *policy);
/* Index of a key by name, -1 if none. */
int pg_policy_key_find(const pg_policy *policy, const char *name);
const char *pg_policy_key_name(const pg_policy *policy, unsigned idx);
const char *pg_policy_key_uri(const pg_policy *policy, unsigned idx);
const char *pg_policy_key_owner(const pg_policy *policy, unsigned idx);      /* NULL if none */
const char *pg_policy_key_purpose(const pg_policy *policy, unsigned idx);    /* NULL if none */
/* The pinned SPKI hash, NULL if the key has no pin (the first of several). */
const unsigned char *pg_policy_key_pin(const pg_policy *policy, unsigned idx);
/* The pin of key idx that facts match (an EC key's candidates may match
 * several: the one with the earliest not_after), NULL if none. */
const unsigned char *pg_policy_key_pin_matched(const pg_policy *policy, unsigned idx,
                                               const struct pg_key_facts *facts);

/* ---- lifecycle: certificates, not_after, CKA_END_DATE, per-pin dates ---- */

#define PG_WARN_DAYS_DEFAULT 30u

enum pg_life_status {
	PG_LIFE_OK,
	PG_LIFE_EXPIRING,          /* allowed, with a warning: within warn_days of a date */
	PG_LIFE_NO_CERTIFICATE,    /* refused only when certificate.required */
	/* refusals */
	PG_LIFE_EXPIRED,
	PG_LIFE_NOT_YET_VALID,
	PG_LIFE_WRONG_EKU,
	PG_LIFE_REVOKED,
	PG_LIFE_RETIRED,           /* past not_after, a pin's not_after, or CKA_END_DATE */
	PG_LIFE_UNREADABLE,        /* certificates could not all be read, or the CRL is out of date */
	PG_LIFE_WEAK,              /* below key_minimum (refused when key_minimum.enforce) */
};

/* What a key's lifecycle says now. */
struct pg_life_verdict {
	enum pg_life_status status;
	bool refuse;
	/* The refusal's reason, or the warning ("certificate ... expires
	 * 2026-12-14, in 10 days"); empty when ok. */
	char message[320];
	long days_left;            /* EXPIRING: whole days to the nearest date */
};

/* Whether signing with key idx needs its certificates read (a
 * certificate: block). */
bool pg_policy_key_needs_certs(const pg_policy *policy, unsigned idx);
/* The first key with a certificate: block pinned to this public key
 * (SHA-256 of its DER SPKI), -1 if none: a certificate carrying it is
 * one of that key's certificates (src/module/manage.c). */
int pg_policy_cert_key(const pg_policy *policy, const unsigned char spki[32]);
/* Whether the key states any lifecycle field (inventory, docs). */
bool pg_policy_key_has_life(const pg_policy *policy, unsigned idx);
/* Judges the lifecycle of the object facts describes, as key idx, at now.
 * warn_days < 0: the key's own.  Pure; idx may be -1 (an unnamed key:
 * only the certificates' dates and CKA_END_DATE). */
void pg_policy_lifecycle(const pg_policy *policy, int idx, const struct pg_key_facts *facts,
                         time_t now, long warn_days, struct pg_life_verdict *out);
/* Each certificate's own finding under key idx (-1: none) at now: the
 * status of certs->cert[i] alone (inventory). */
enum pg_life_status pg_policy_cert_status(const pg_policy *policy, int idx,
                                          const struct pg_cert_facts *cert, time_t now,
                                          long warn_days);
const char *pg_life_status_name(enum pg_life_status status);

/* ---- key_minimum: the size below which a key is weak -------------------- */

/* The built-in floor, whatever the policy says. */
#define PG_WEAK_RSA_BITS 2048u
#define PG_WEAK_EC_BITS 224u

struct pg_key_minimum {
	bool configured;           /* the file has a key_minimum: block */
	unsigned long rsa_bits;    /* the floor in force: the policy's, else the built-in one */
	unsigned long ec_bits;
	bool enforce;              /* key_minimum.enforce (default true once configured) */
};

/* Never NULL; configured is false without a key_minimum: block. */
const struct pg_key_minimum *pg_policy_key_minimum(const pg_policy *policy);
/* Whether a key of this family and size is weak under the policy's
 * minimum (the built-in floor without one); why gets the finding
 * ("RSA-2048 is below key_minimum.rsa_bits 3072").  An RSA or EC key
 * whose size is unknown (0) is weak: it cannot be shown to be strong. */
bool pg_policy_key_weak(const pg_policy *policy, enum pg_key_family family, unsigned long bits,
                        char *why, size_t why_len);

/* ---- decisions -------------------------------------------------------- */

enum pg_op {
	PG_OP_SIGN    = 1 << 0,
	PG_OP_DECRYPT = 1 << 1,
	PG_OP_DERIVE  = 1 << 2,
	PG_OP_UNWRAP  = 1 << 3,
	PG_OP_MANAGE  = 1 << 4,
	PG_OP_ENCRYPT = 1 << 5,
	PG_OP_WRAP    = 1 << 6,
	PG_OP_VERIFY  = 1 << 7,
};
/* Every operation name, in bit order, for messages. */
#define PG_OP_NAMES_TEXT "sign, decrypt, derive, unwrap, manage, encrypt, wrap, verify"

const char *pg_op_name(enum pg_op op);            /* "sign", ... */
bool pg_op_from_name(const char *name, enum pg_op *out);

/* A rule's limit: or break_glass: cap (docs/policy.md): uses counted with
 * the allow record, in fixed windows aligned to the Unix epoch. */
enum pg_limit_by { PG_LIMIT_BY_CALLER, PG_LIMIT_BY_KEY, PG_LIMIT_BY_RULE };

struct pg_limit {
	uint64_t max;                      /* uses a window allows */
	uint64_t per;                      /* the window, seconds */
	enum pg_limit_by by;               /* a break-glass cap: PG_LIMIT_BY_RULE */
	const char *per_text;              /* "1h", as written */
};

const char *pg_limit_by_name(enum pg_limit_by by);   /* "caller", "key", "rule" */

/* The longest justification a break-glass record keeps (bytes). */
#define PG_JUSTIFICATION_MAX 256
#define PG_JUSTIFICATION_SOURCE_MAX 512

/* Where a break_glass: rule looks for the caller's stated justification:
 * asked only when such a rule is evaluated, at most once per decision.
 * fresh: a file must have changed within that many seconds (the cap's
 * window).  Returns true with the text and where it was found; false with
 * source saying what was looked for. */
typedef bool (*pg_justify_fn)(void *ctx, uint64_t fresh, char *text, size_t text_len,
                              char *source, size_t source_len);

#define PG_GRANT_ID_MAX 100

/* The grant an approval rule allowed with, for the allow record. */
struct pg_grant_use {
	bool used;
	char id[PG_GRANT_ID_MAX + 1];
	unsigned char sha256[32];          /* of the grant file's bytes the approvals signed */
	char approvers[256];               /* whose signatures counted, "alice, bob" */
	uint64_t max_signatures;           /* 0: no limit stated */
	time_t not_after;                  /* its end: its use counter may be forgotten after */
};

struct pg_request {
	enum pg_op op;
	CK_MECHANISM_TYPE mechanism;       /* CK_UNAVAILABLE_INFORMATION for manage */
	const struct pg_key_match *key;
	struct pg_caller *caller;          /* not const: the exe hash is computed lazily */
	/* What the caller proved at C_Login (an identity token or a
	 * credential), NULL if nothing: identity: conditions match it, and a
	 * token past its exp refuses every use. */
	const struct pg_login_id *login;
	time_t now;                        /* the injected clock */
	/* The data to be signed, at the call that signs it (NULL at an init):
	 * a grant's data_sha256 list is checked against them. */
	const unsigned char *data_sha256;  /* 32 bytes */
	const unsigned char *data;         /* whole, when short and single-part; else NULL */
	size_t data_len;
	pg_justify_fn justify;             /* NULL: no justification can be stated */
	void *justify_ctx;
	/* Asked about a grant that would allow and states max_signatures:
	 * whether it has uses left (*used gets the count).  The module reads
	 * the log's counter store; NULL: not asked (the use is counted, and
	 * may still be refused, when its allow record is written). */
	bool (*grant_uses_left)(void *ctx, const struct pg_grant_use *grant, uint64_t *used);
	void *grant_ctx;
	/* Another judgement follows before anything is produced (an init):
	 * approval: may answer from its memo of the grants, reading no file. */
	bool provisional;
};


struct pg_decision {
	bool allow;
	const char *rule;                  /* the deciding rule's name; NULL when no rule allowed */
	/* The policy key the decision is about (-1 and NULL if unnamed): the
	 * key the deciding rule names (the first of its keys the object
	 * matched); with no deciding rule, the nearest rule's; else the first
	 * matched key in file order. */
	int key;
	const char *key_name;
	/* Why, one line, e.g. "rule ci-signs-in-office-hours: outside
	 * 09:00-17:00 Europe/Berlin" or "no rule allows it (nearest: ...)". */
	char reason[512];
	/* Allowed outside the deciding rule's usual: window (an
	 * unusual-hours alert), and which part of it, e.g. "rule ci: outside
	 * its usual hours: outside 08:00-19:00 Europe/Berlin (local time 03:12)". */
	bool unusual;
	char unusual_reason[320];
	struct pg_grant_use grant;         /* used only when an approval rule allowed it */
	/* The deciding rule's limit: and break_glass: cap (NULL: none), in
	 * the policy: the allow takes a use of each with its record. */
	const struct pg_limit *limit;
	const struct pg_limit *break_glass;
	/* Allowed by a break_glass: rule: the justification the caller stated
	 * and where ("environment P11GATE_BREAK_GLASS" or the file's path). */
	char justification[PG_JUSTIFICATION_MAX + 1];
	char justification_source[PG_JUSTIFICATION_SOURCE_MAX];
};

void pg_policy_decide(const pg_policy *policy, const struct pg_request *request,
                      struct pg_decision *out);

/* For `p11gate explain`: each rule in file order, whether it matched, and
 * if not the first condition that failed (e.g. "user ci is not in users
 * [release]").  Called once per rule. */
/* For `p11gate explain --replay`: the first rule (in file order) about one
 * of the matched keys and op that tests a fact audit records do not hold
 * as it was: the caller's environment (never recorded), or approval:
 * (grant files as they are now, not as they were); NULL if none.  *what
 * gets "the caller's environment" or "approvals (grant files)". */
const char *pg_policy_unreplayable_rule(const pg_policy *policy, const struct pg_key_match *key,
                                        enum pg_op op, const char **what);

typedef void (*pg_explain_fn)(void *ctx, const char *rule, bool is_allow,
                              bool matched, const char *why_not);
void pg_policy_explain(const pg_policy *policy, const struct pg_request *request,
                       pg_explain_fn each_rule, void *ctx, struct pg_decision *out);

#endif /* P11GATE_POLICY_H */
