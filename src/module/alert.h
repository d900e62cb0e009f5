/* SPDX-License-Identifier: Apache-2.0
 *
 * Raising alerts from the module (p11gate/alert.h has the kinds, names,
 * ids and the syslog line): to syslog and, when the log can take it, as
 * an `alert` record in the regime's log.  Helpers that detect something
 * (rate limits, break-glass, grants, the decision point) call these.
 */
#ifndef P11GATE_MODULE_ALERT_H
#define P11GATE_MODULE_ALERT_H

#include "module.h"
#include "p11gate/alert.h"

/* syslog (LOG_AUTHPRIV | LOG_ALERT) and an `alert` record naming the
 * regime's caller and policy, appended after the record that set it off
 * (alert->ref) and not waited for: an alert never refuses or delays the
 * call it is about.  When the regime has no log, or the record cannot be
 * appended, the alert goes to syslog alone and its reason says so.
 * Does not hold the context lock; thread-safe. */
void pg_alert_raise(struct pg_regime *regime, const struct pg_alert *alert);

/* The log cannot be opened or written: an audit-failed alert, to syslog
 * only (the log is what failed), at most once a minute per regime so a
 * refused loop does not flood syslog.  why says what failed. */
void pg_alert_audit_failed(struct pg_regime *regime, const char *why);

#endif /* P11GATE_MODULE_ALERT_H */
