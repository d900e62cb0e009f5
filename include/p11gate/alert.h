/* SPDX-License-Identifier: Apache-2.0
 *
 * Alerts: what p11gate says loudly when something an operator must look at
 * happens (docs/audit.md, "Alerts").  One kind per cause, each with a name
 * and a message id that never change; the syslog line (LOG_AUTHPRIV |
 * LOG_ALERT) and the log's `alert` record are made here.  The module raises
 * them through pg_alert_raise (src/module/alert.h).
 */
#ifndef P11GATE_ALERT_H
#define P11GATE_ALERT_H

#include <stddef.h>
#include <stdint.h>
#include "p11gate/identity.h"

enum pg_alert_kind {
	PG_ALERT_REFUSAL_BURST,   /* refusal-burst: too many refusals for a caller or key */
	PG_ALERT_NEW_CALLER,      /* new-caller: a key used by a caller never seen with it */
	PG_ALERT_UNUSUAL_HOURS,   /* unusual-hours: allowed outside the rule's usual: window */
	PG_ALERT_LIMIT_REACHED,   /* limit-reached: a rule's rate limit refused a use */
	PG_ALERT_BREAK_GLASS,     /* break-glass: a break-glass rule was used */
	PG_ALERT_RELOAD_FAILED,   /* reload-failed: a changed policy does not load */
	PG_ALERT_AUDIT_FAILED,    /* audit-failed: the log cannot be opened or written (syslog only) */
	PG_ALERT_TAMPER,          /* tamper: the log was cut behind a writer */
	PG_ALERT_KEY_EXPIRING,    /* key-expiring: a signature allowed within warn_days of a key's
	                           * certificate expiry or retirement date */
	PG_ALERT_KIND_COUNT
};

/* One alert.  Every pointer may be NULL (then left out); numbers are left
 * out when 0. */
struct pg_alert {
	enum pg_alert_kind kind;
	const char *reason;       /* one line: what happened, in words */
	const char *rule;         /* the rule concerned */
	const char *key_name;     /* the policy's key concerned */
	const char *by;           /* what a count is per: "caller", "key", "rule" */
	uint64_t ref;             /* seq of the record that set it off */
	uint64_t count;           /* how many (refusals, uses) in the window */
	uint64_t threshold;       /* the policy's threshold or limit */
	uint64_t window;          /* the window, in seconds */
};

/* "refusal-burst", ...; NULL for an unknown kind. */
const char *pg_alert_name(enum pg_alert_kind kind);
/* The kind's message id: 32 lower-case hex digits, fixed forever (the
 * form of a journald MESSAGE_ID), for SIEM rules to match on. */
const char *pg_alert_id(enum pg_alert_kind kind);

/* The syslog line of an alert (without syslog's own prefix):
 *   p11gate: ALERT NAME MESSAGE_ID=ID log=PATH rule=R key=K user=U uid=N exe=E
 *            ref=N count=N threshold=N window=N reason="..."
 * fields without a value left out, values escaped (PG_ESC_VALUE) so none
 * can pass for another field.  log_path and caller may be NULL. */
void pg_alert_format(const struct pg_alert *alert, const char *log_path,
                     const struct pg_caller *caller, char *out, size_t out_len);
/* Sends it: syslog(LOG_AUTHPRIV | LOG_ALERT, "%s", line).  No openlog: the
 * application's identity and facility stay as they are. */
void pg_alert_syslog(const struct pg_alert *alert, const char *log_path,
                     const struct pg_caller *caller);

#endif /* P11GATE_ALERT_H */
