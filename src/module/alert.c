/* SPDX-License-Identifier: Apache-2.0
 *
 * Alerts raised by the module: the syslog line and the `alert` record
 * (docs/audit.md, "Alerts").  An alert follows what set it off and never
 * changes its outcome: a record that cannot be written leaves the alert in
 * syslog alone, it does not refuse anything.
 */
#include "alert.h"
#include "p11gate/common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* audit-failed alerts of one regime are this many seconds apart at least. */
#define AUDIT_FAILED_EVERY_S 60

void
pg_alert_raise(struct pg_regime *regime, const struct pg_alert *alert)
{
	const char *path = regime->audit != NULL ? pg_audit_path(regime->audit) : NULL;
	struct pg_alert said = *alert;
	char reason[1024];
	int err = ENOENT;

	pg_regime_prepare(regime);
	if (regime->audit != NULL) {
		const struct pg_audit_record record = pg_audit_record_alert(regime->audit, alert);
		uint64_t seq;

		err = pg_audit_append(regime->audit, &record, &seq);
		if (err == 0)
			pg_audit_sync_start(regime->audit, seq);
	}
	if (err != 0) {
		snprintf(reason, sizeof reason, "%s (not in the audit log: %s)",
		         alert->reason != NULL ? alert->reason : "", regime->audit == NULL ?
		         regime->audit_error : strerror(err));
		said.reason = reason;
	}
	pg_alert_syslog(&said, path, regime->caller);
}

void
pg_alert_audit_failed(struct pg_regime *regime, const char *why)
{
	const struct pg_alert alert = { .kind = PG_ALERT_AUDIT_FAILED, .reason = why };
	long long now = (long long)time(NULL);
	long long last = atomic_load(&regime->audit_alerted);

	if (last != 0 && now - last < AUDIT_FAILED_EVERY_S)
		return;
	if (!atomic_compare_exchange_strong(&regime->audit_alerted, &last, now))
		return;    /* another thread said it just now */
	pg_alert_syslog(&alert, regime->audit != NULL ? pg_audit_path(regime->audit) :
	                pg_policy_settings(regime->policy)->audit_file, regime->caller);
}
