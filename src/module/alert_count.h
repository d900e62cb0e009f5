/* SPDX-License-Identifier: Apache-2.0
 *
 * The alerts that need counting across processes (the policy's alerts:
 * block): a burst of refusals for one caller or key, and a key used by a
 * user or program it has not been seen with.  Each is a counter of the
 * log's counter store (pg_audit_append_counted), taken with the decision
 * record it counts and never refusing; the alert is raised by the process
 * whose record reaches the threshold (or is the first), so exactly once.
 */
#ifndef P11GATE_ALERT_COUNT_H
#define P11GATE_ALERT_COUNT_H

#include "module.h"
#include "p11gate/audit.h"

#define PG_ALERT_TAKES_MAX 2

struct pg_alert_takes {
	size_t n;
	struct pg_audit_take takes[PG_ALERT_TAKES_MAX];
	char names[PG_ALERT_TAKES_MAX][PG_AUDIT_COUNTER_NAME_MAX + 1];
	char who[PG_ALERT_TAKES_MAX][400];    /* "user ci (uid 1001)", "key release-rsa", ... */
	const char *by[PG_ALERT_TAKES_MAX];   /* "caller", "key", "user", "program" */
	bool burst[PG_ALERT_TAKES_MAX];       /* a refusal-burst counter, else new-caller */
};

/* The counters a decision record takes under the regime's alerts: (a
 * refusal: its bursts; an allow record: the pairs seen).  key_name: the
 * key the record names (NULL: none).  How many (0: plain append). */
size_t pg_alert_takes_init(struct pg_alert_takes *t, const struct pg_regime *regime, bool allow,
                           const char *key_name);

/* After the record seq took them: the alerts whose count reached the
 * threshold (bursts) or is the first (new callers). */
void pg_alert_takes_raise(struct pg_regime *regime, const struct pg_alert_takes *t,
                          const struct pg_decision *decision, const char *key_name, uint64_t seq);

#endif /* P11GATE_ALERT_COUNT_H */
