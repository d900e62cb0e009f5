/* SPDX-License-Identifier: Apache-2.0
 *
 * The tamper-evident audit log: JSON Lines, one record per line, each
 * carrying the SHA-256 of the line before it.  Appends are serialised
 * across threads and processes with a file lock; durability (fdatasync) is
 * separate from appending so the token can sign while the disk syncs, and
 * concurrent callers share one sync.
 */
#ifndef P11GATE_AUDIT_H
#define P11GATE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "p11gate/pkcs11.h"
#include "p11gate/identity.h"
#include "p11gate/alert.h"
#include "p11gate/login.h"

typedef struct pg_audit pg_audit;

enum pg_audit_event {
	PG_AUDIT_DECISION,     /* "event":"decision", with "decision":"allow"|"deny" */
	PG_AUDIT_RESULT,       /* "event":"result": what the token answered; no decision field */
	PG_AUDIT_POLICY,       /* "event":"policy": loaded, reloaded, or a reload refused */
	PG_AUDIT_START,        /* "event":"start": a process opened the log (pg_audit_start) */
	PG_AUDIT_TAMPER,       /* "event":"tamper": written by the log itself, never by callers */
	/* Written by the log itself at rotation (docs/audit.md, "Rotation"):
	 * "rotate" is the last record of a file, "continue" the first of the
	 * next one; "checkpoint" is signed with the checkpoint key. */
	PG_AUDIT_ROTATE,
	PG_AUDIT_CONTINUE,
	PG_AUDIT_CHECKPOINT,
	PG_AUDIT_ALERT,        /* "event":"alert": an alert (p11gate/alert.h), after what set it off */
};

/* The longest data a record keeps whole ("data", in hex): a digest, which
 * is what CKM_RSA_PKCS and CKM_ECDSA sign.  Longer data is only named by
 * its hash ("data_sha256").  The record writer applies it (audit_record.c). */
#define PG_AUDIT_DATA_INLINE_MAX 64

/* A certificate a decision record names (the key's, checked at signing). */
struct pg_audit_cert {
	const unsigned char *sha256;             /* 32 bytes: SHA-256 of its DER */
	const unsigned char *serial;             /* big-endian */
	size_t serial_len;
};

/* A record as the writer takes it; the constructors below fill one per
 * event type.  Every pointer may be NULL (the field is then left out). */
struct pg_audit_record {
	enum pg_audit_event event;
	bool allow;                              /* decision records */
	/* A refusal no policy decides (out of order, a use no operation
	 * covers, an unreadable caller): "fixed":true, so a replay under
	 * another policy leaves it be. */
	bool fixed;
	const char *rule;
	const char *reason;
	const char *function;                    /* the PKCS#11 call, e.g. "C_SignFinal" */
	const char *operation;                   /* pg_op_name: "sign", "decrypt", ... */
	const char *key_name;
	const char *key_uri;
	const char *const *keys_matched;         /* every policy key the object matched */
	size_t n_keys_matched;
	const unsigned char *public_key_sha256;  /* 32 bytes */
	const char *key_size;                    /* "RSA-2048", "EC-256": what key_minimum judges */
	const char *token_label;
	const char *token_serial;
	const struct pg_audit_cert *certs;       /* the key's certificates, as checked */
	size_t n_certs;
	const char *warning;                     /* an allowed use's lifecycle warning */
	bool has_mechanism;
	CK_MECHANISM_TYPE mechanism;
	const unsigned char *data_sha256;        /* 32 bytes: SHA-256 of the data signed */
	const unsigned char *data;               /* written in hex when data_len <= PG_AUDIT_DATA_INLINE_MAX */
	size_t data_len;
	/* An allow by an approval rule: the grant, SHA-256 of its file's bytes,
	 * and the approvers whose signatures counted (docs/approvals.md). */
	const char *grant_id;
	const unsigned char *grant_sha256;       /* 32 bytes */
	const char *const *approvers;
	size_t n_approvers;
	struct pg_caller *caller;                /* rendered per record; the log's own once (pg_audit_set_caller) */
	/* An allow by a break_glass: rule: the justification the caller stated
	 * and where it was found ("break_glass" object). */
	const char *justification;
	const char *justification_source;
	const char *identity_json;               /* "identity":{...}, as pg_audit_identity_json_new made it */
	const unsigned char *policy_sha256;      /* 32 bytes */
	uint64_t ref;                            /* results: seq of their decision record */
	bool has_rv;
	CK_RV rv;
	const unsigned char *signature_sha256;   /* 32 bytes */
	uint64_t pid;                            /* start, tamper: the writing process (0: none) */
	const char *module;                      /* start: the wrapped module's path */
	/* tamper: the last record this writer had seen at the end of the file
	 * (seq, SHA-256 of its line, the file's size then), and the size found */
	uint64_t seen_seq, seen_size, found_size;
	const unsigned char *seen_sha256;        /* 32 bytes */
	/* continue: the file this one continues (its name when it was rotated
	 * out, SHA-256 of all its bytes, and its size) */
	const char *previous_file;
	const unsigned char *previous_sha256;    /* 32 bytes */
	uint64_t previous_size;
	/* checkpoint: SHA-256 of the signing key's public key (DER
	 * SubjectPublicKeyInfo), and the interval promised (0: none) */
	const unsigned char *key_sha256;         /* 32 bytes */
	uint64_t every;
	/* alert: its name and message id (pg_alert_name, pg_alert_id), what
	 * a count is per, the count, the threshold and the window (seconds);
	 * the numbers are left out when 0.  ref names the record that set it off. */
	const char *alert;
	const char *alert_id;
	const char *by;
	uint64_t count, threshold, window;
};

/* ---- record constructors: one per event type --------------------------- */

/* One use of a key, as a decision record and its result record name it. */
struct pg_audit_use {
	const char *function;                    /* the PKCS#11 call, e.g. "C_SignFinal" */
	const char *operation;                   /* pg_op_name: "sign", "decrypt", ... */
	bool has_mechanism;
	CK_MECHANISM_TYPE mechanism;
	const unsigned char *data_sha256;        /* 32 bytes: SHA-256 of the data */
	const unsigned char *data;               /* the data itself (kept if short) */
	size_t data_len;
	const char *key_name;                    /* the policy's key the decision names */
	const char *key_uri;
	const char *const *keys_matched;         /* every policy key the object matched */
	size_t n_keys_matched;
	const unsigned char *public_key_sha256;  /* 32 bytes */
	const char *key_size;                    /* "RSA-2048", "EC-256" (key_minimum); NULL: other */
	const char *token_label;
	const char *token_serial;
	bool fixed;                              /* a refusal no policy decides (record's "fixed") */
	const struct pg_audit_cert *certs;       /* the key's certificates, as checked */
	size_t n_certs;
	const char *warning;                     /* an allowed use's lifecycle warning */
	const char *identity_json;               /* what the caller proved at login (pg_audit_identity_json_new) */
};

/* The records of a log's events.  Records that name the caller and the
 * policy take them from the log (pg_audit_set_policy, pg_audit_set_caller);
 * audit may be NULL (nothing then names them).  Pointers are borrowed. */
struct pg_audit_record pg_audit_record_allow(const pg_audit *audit, const struct pg_audit_use *use,
                                             const char *rule, const char *reason);
struct pg_audit_record pg_audit_record_deny(const pg_audit *audit, const struct pg_audit_use *use,
                                            const char *rule, const char *reason);
/* A call no policy can allow and no key is part of: a deny record of the
 * manage operation. */
struct pg_audit_record pg_audit_record_refusal(const pg_audit *audit, const char *function,
                                               const char *reason);
/* What the token answered to the allowed use whose decision record is ref;
 * output_sha256 (32 bytes) names what it returned, or NULL. */
struct pg_audit_record pg_audit_record_result(const struct pg_audit_use *use, uint64_t ref, CK_RV rv,
                                              const unsigned char *output_sha256);
/* A C_Login (or C_LoginUser, C_Logout) p11gate judged: operation "login",
 * allowed with the identity proved (identity_json, may be NULL) or denied
 * with the reason. */
struct pg_audit_record pg_audit_record_login(const pg_audit *audit, const char *function, bool allow,
                                             const char *identity_json, const char *reason);
/* The "identity" field of the records after a login: the issuer (or
 * credential), iss, sub, the claims named in claims[] that the token has,
 * jti, exp and the token's SHA-256 -- never the token, a bearer credential.
 * Malloc'd; NULL on out-of-memory. */
char *pg_audit_identity_json_new(const struct pg_login_id *id, const char *const *claims, size_t n_claims);
/* A policy loaded, reloaded, or a reload refused (reason says which). */
struct pg_audit_record pg_audit_record_policy(const pg_audit *audit, const char *reason);
/* This process opened the log, over the wrapped module at module. */
struct pg_audit_record pg_audit_record_start(const pg_audit *audit, const char *module);
/* The log was cut behind this writer (audit.c writes it itself): what it had
 * seen (seq, its line's SHA-256, the size then) and the size it found. */
struct pg_audit_record pg_audit_record_tamper(const char *reason, uint64_t seen_seq, uint64_t seen_size,
                                              const unsigned char *seen_sha256, uint64_t found_size);
/* Rotation (audit.c writes them itself): the last record of the file it
 * closes, the first of the new file (naming the closed one), and a
 * checkpoint signed with the key whose public key hashes to key_sha256. */
struct pg_audit_record pg_audit_record_rotate(const char *reason);
struct pg_audit_record pg_audit_record_continue(const char *reason, const char *previous_file,
                                                const unsigned char *previous_sha256,
                                                uint64_t previous_size);
struct pg_audit_record pg_audit_record_checkpoint(const unsigned char *key_sha256, uint64_t every);
/* An alert (audit_alert.c), naming the log's caller and policy. */
struct pg_audit_record pg_audit_record_alert(const pg_audit *audit, const struct pg_alert *alert);

/* The policy (SHA-256 of its file) the records of this log are made
 * under.  Call before the handle is shared. */
void pg_audit_set_policy(pg_audit *audit, const unsigned char sha256[32]);
/* The caller whose records this log writes, no longer changing (its
 * program hashed): rendered here once, and reused by every record whose
 * caller it is.  Thread-safe; the first caller set stays. */
void pg_audit_set_caller(pg_audit *audit, struct pg_caller *caller);

/* Opens (creating with mode 0640) the log for appending.  NULL on failure
 * with a one-line reason in err. */
pg_audit *pg_audit_open(const char *path, bool sync, bool to_syslog,
                        char *err, size_t err_len);
void pg_audit_close(pg_audit *audit);
const char *pg_audit_path(const pg_audit *audit);

/* Appends one record as one line, chained to the current last line.  The
 * line is written whole or not at all (a failed or short write is cut back
 * off the file).  Returns 0 and the record's sequence number, or an errno
 * value (ENOSPC, EFBIG, EACCES, ...).  Does not wait for the disk. */
int pg_audit_append(pg_audit *audit, const struct pg_audit_record *record,
                    uint64_t *seq_out);

/* ---- counters kept with the log (docs/audit.md, "Counters") ------------
 * Exact across threads and processes: a use is taken under the same locks
 * as the append of the record that names it, and the record is the truth
 * (its "counted" field); LOG.counters beside the log is a cache that the
 * next writer catches up from the log, so a crash between the record and
 * the cache can neither lose nor double a use. */

/* A take's max that never refuses: the counter only counts. */
#define PG_AUDIT_UNLIMITED UINT64_MAX
/* The longest counter name; longer names are refused (EINVAL). */
#define PG_AUDIT_COUNTER_NAME_MAX 512
#define PG_AUDIT_COUNTER_ID_LEN 24

/* One use of one counter.  Windows are fixed and aligned to the Unix
 * epoch: [k*per, (k+1)*per) (per 86400: a UTC day). */
struct pg_audit_take {
	const char *counter;    /* its name (any bytes up to PG_AUDIT_COUNTER_NAME_MAX;
	                           written escaped in the record); distinct per call */
	uint64_t per;           /* the window in seconds; 0: one window for ever */
	uint64_t max;           /* uses a window allows; PG_AUDIT_UNLIMITED: never refuses */
	uint64_t expires;       /* per 0: Unix time after which the counter may be
	                           forgotten (a grant's not_after); 0: kept */
	/* Filled in by the store: */
	uint64_t used;          /* taken: this use's number in its window (1 = first);
	                           refused or read: the count so far */
	uint64_t window;        /* the window's start (Unix time; 0 when per is 0) */
	uint64_t resets;        /* when the window ends (Unix time; 0: never) */
	unsigned char id[PG_AUDIT_COUNTER_ID_LEN];   /* SHA-256 of the name, cut */
};

/* Words for a refusal: reason gets why take (at its max) refuses the use. */
typedef void (*pg_audit_refusal_fn)(void *ctx, const struct pg_audit_take *take,
                                    char *reason, size_t reason_len);

/* Appends record (a decision) with one use taken from each of takes[0..n),
 * all or none, under the log's locks: the record carries the uses in its
 * "counted" field.  If a take is at its max, nothing is taken and a deny
 * record is written instead (the record with allow false and the reason
 * refusal gives, or a default naming the counter): *refused is then that
 * take's index and reason (reason_len bytes, may be NULL) says why;
 * otherwise *refused is -1.  seq_out: the record written.  0 or an errno
 * value (nothing written: the caller refuses, as for any failed append;
 * ENOSPC also when the store has no room for another live counter). */
int pg_audit_append_counted(pg_audit *audit, const struct pg_audit_record *record,
                            struct pg_audit_take *takes, size_t n,
                            pg_audit_refusal_fn refusal, void *ctx,
                            int *refused, char *reason, size_t reason_len, uint64_t *seq_out);

/* Reads the counts of takes[0..n) now, taking nothing: used, window and
 * resets filled in.  Under the log's locks (it catches up from the log
 * first).  0 or an errno value. */
int pg_audit_counters_read(pg_audit *audit, struct pg_audit_take *takes, size_t n);

/* Makes audit, just opened, start from what from (an older handle of this
 * process, e.g. before a policy reload) last saw at the end of the same
 * file, so records cut off before the new handle's first append are still
 * noticed.  Does nothing for another file or a NULL from. */
void pg_audit_inherit(pg_audit *audit, pg_audit *from);

/* Writes the start record (event PG_AUDIT_START) a process writes when it
 * opens the log; if it cannot be written now, it is written before the
 * next record.  0 or an errno value (the record then stays pending). */
int pg_audit_start(pg_audit *audit, const struct pg_audit_record *start);

/* Returns once every record this process appended up to seq is on disk
 * (when the log was opened with sync; otherwise at once).  Concurrent
 * callers share one fdatasync.  0 or an errno value. */
int pg_audit_sync(pg_audit *audit, uint64_t seq);

/* Starts making records up to seq durable in the background, so the disk
 * syncs while the token signs; pg_audit_sync then waits for that sync (or
 * does it itself).  Uses a thread of the pg_audit, started on first use
 * and only if pg_audit_allow_threads permitted it. */
void pg_audit_sync_start(pg_audit *audit, uint64_t seq);

/* Whether the log may start its background syncer thread (PKCS#11
 * applications may forbid library threads: CKF_LIBRARY_CANT_CREATE_OS_THREADS). */
void pg_audit_allow_threads(pg_audit *audit, bool allow);

/* ---- rotation and signed checkpoints (docs/audit.md) ------------------- */

/* Closes the log's current file with a "rotate" record, keeps it as
 * PATH-YYYYMMDDTHHMMSS.uuuuuuZ and makes a new file the log's path whose
 * first record ("continue") names it, its last line's hash (its prev) and
 * the SHA-256 of all its bytes, followed by a checkpoint when the handle
 * has a checkpoint key.  Under the same locks as an append, so writers in
 * other processes move to the new file with no record lost.  0 or an errno
 * value, with a reason in err; *kept (may be NULL) gets the kept name
 * (PATH_MAX bytes). */
int pg_audit_rotate(pg_audit *audit, const char *reason, char *kept, char *err, size_t err_len);

/* Rotate before a record would make the file longer than max_size bytes
 * (0: never).  The check is one comparison per append. */
void pg_audit_set_max_size(pg_audit *audit, uint64_t max_size);

/* Whether the process's file size limit (RLIMIT_FSIZE, which the writer
 * keeps below rather than be killed by SIGXFSZ) is read once instead of
 * per record: only where no caller's code runs in the process, so nothing
 * but a process that could as well kill it changes the limit (p11gate
 * behind p11-kit server). */
void pg_audit_set_limit_fixed(pg_audit *audit, bool fixed);

typedef struct pg_audit_key pg_audit_key;

/* The most bytes a checkpoint signature can have (RSA-4096 is 512). */
#define PG_AUDIT_SIG_MAX 1024

/* Loads a PEM key: the private key to sign with (refused if anyone but
 * its owner may read the file), or the public key to verify with.  NULL
 * with a reason in err. */
pg_audit_key *pg_audit_key_load(const char *path, bool private_key, char *err, size_t err_len);
void pg_audit_key_free(pg_audit_key *key);
/* SHA-256 of the public key (DER SubjectPublicKeyInfo): "key_sha256". */
const unsigned char *pg_audit_key_sha256(const pg_audit_key *key);
/* Signs a checkpoint line's bytes without its signature field; the
 * signature's length, 0 on failure. */
size_t pg_audit_key_sign(const pg_audit_key *key, const char *line, size_t len,
                         unsigned char sig[PG_AUDIT_SIG_MAX]);
bool pg_audit_key_verify(const pg_audit_key *key, const char *line, size_t len,
                         const unsigned char *sig, size_t sig_len);

/* Signs checkpoints with key (taken; NULL: none): one at every rotation,
 * and, if every > 0, one after each record whose seq reaches a multiple of
 * every. */
void pg_audit_set_checkpoint(pg_audit *audit, pg_audit_key *key, uint64_t every);

/* Appends a checkpoint now (the handle must have a key).  0 or an errno
 * value. */
int pg_audit_checkpoint(pg_audit *audit, uint64_t *seq_out);

#endif /* P11GATE_AUDIT_H */
