/* SPDX-License-Identifier: Apache-2.0
 *
 * Counting for the refusal-burst and new-caller alerts (alert_count.h,
 * docs/policy.md "Reference: alerts").  Counter names are fixed text with
 * the window, so a policy that changes its window starts new counters.
 */
#include "alert_count.h"
#include "alert.h"
#include "p11gate/common.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void
add(struct pg_alert_takes *t, bool burst, const char *by, uint64_t per, const char *who)
{
	size_t i = t->n++;

	t->burst[i] = burst;
	t->by[i] = by;
	snprintf(t->who[i], sizeof t->who[i], "%s", who);
	t->takes[i] = (struct pg_audit_take){
		.counter = t->names[i], .per = per, .max = PG_AUDIT_UNLIMITED,
	};
}

static void
user_text(const struct pg_caller *caller, char *out, size_t len)
{
	char user[160];

	snprintf(out, len, "user %s (uid %lu)", caller->user != NULL ?
	         pg_esc(caller->user, PG_ESC_VALUE, user, sizeof user) : "?", (unsigned long)caller->uid);
}

size_t
pg_alert_takes_init(struct pg_alert_takes *t, const struct pg_regime *regime, bool allow,
                    const char *key_name)
{
	const struct pg_alerts *a = pg_policy_alerts(regime->policy);
	const struct pg_caller *caller = regime->caller;
	bool uid_known = caller != NULL && caller->uid_trust != PG_ID_UNAVAILABLE;
	char who[400], esc[320];

	t->n = 0;
	if (!allow && a->refusals_max > 0) {
		if ((a->refusals_by & PG_ALERTS_BY_CALLER) && uid_known) {
			user_text(caller, who, sizeof who);
			add(t, true, "caller", a->refusals_per, who);
			snprintf(t->names[t->n - 1], sizeof t->names[0], "alert refusal-burst per=%" PRIu64
			         " uid=%lu", a->refusals_per, (unsigned long)caller->uid);
		}
		if ((a->refusals_by & PG_ALERTS_BY_KEY) && key_name != NULL) {
			snprintf(who, sizeof who, "key %s", pg_esc(key_name, PG_ESC_VALUE, esc, sizeof esc));
			add(t, true, "key", a->refusals_per, who);
			snprintf(t->names[t->n - 1], sizeof t->names[0], "alert refusal-burst per=%" PRIu64
			         " key=%s", a->refusals_per, key_name);
		}
	}
	if (allow && a->new_caller_by != 0 && key_name != NULL) {
		if ((a->new_caller_by & PG_ALERTS_BY_USER) && uid_known) {
			user_text(caller, who, sizeof who);
			add(t, false, "user", a->new_caller_remember, who);
			snprintf(t->names[t->n - 1], sizeof t->names[0], "alert new-caller per=%" PRIu64
			         " key=%s uid=%lu", a->new_caller_remember, key_name,
			         (unsigned long)caller->uid);
		}
		if ((a->new_caller_by & PG_ALERTS_BY_PROGRAM) && caller != NULL && caller->exe != NULL &&
		    caller->exe_trust != PG_ID_UNAVAILABLE) {
			snprintf(who, sizeof who, "program %s", pg_esc(caller->exe, PG_ESC_VALUE, esc, sizeof esc));
			add(t, false, "program", a->new_caller_remember, who);
			snprintf(t->names[t->n - 1], sizeof t->names[0], "alert new-caller per=%" PRIu64
			         " key=%s exe=%s", a->new_caller_remember, key_name, caller->exe);
		}
	}
	return t->n;
}

/* "10m", "2h", "90d": the window as the policy would write it. */
static void
span_text(uint64_t s, char *out, size_t len)
{
	if (s % 86400 == 0)
		snprintf(out, len, "%" PRIu64 "d", s / 86400);
	else if (s % 3600 == 0)
		snprintf(out, len, "%" PRIu64 "h", s / 3600);
	else if (s % 60 == 0)
		snprintf(out, len, "%" PRIu64 "m", s / 60);
	else
		snprintf(out, len, "%" PRIu64 "s", s);
}

void
pg_alert_takes_raise(struct pg_regime *regime, const struct pg_alert_takes *t,
                     const struct pg_decision *decision, const char *key_name, uint64_t seq)
{
	const struct pg_alerts *a = pg_policy_alerts(regime->policy);

	for (size_t i = 0; i < t->n; i++) {
		const struct pg_audit_take *take = &t->takes[i];
		struct pg_alert alert = {
			.rule = decision->rule, .key_name = key_name, .by = t->by[i], .ref = seq,
			.count = take->used, .window = take->per,
		};
		char reason[1024], window[32];

		span_text(take->per, window, sizeof window);
		if (t->burst[i]) {
			/* Once per window and counter: at the refusal that reaches it. */
			if (take->used != a->refusals_max)
				continue;
			alert.kind = PG_ALERT_REFUSAL_BURST;
			alert.threshold = a->refusals_max;
			snprintf(reason, sizeof reason, "%" PRIu64 " refusals for %s within the %s window "
			         "(alerts.refusals.max %" PRIu64 "); the last: %s", take->used, t->who[i],
			         window, a->refusals_max, decision->reason);
		} else {
			if (take->used != 1)
				continue;
			alert.kind = PG_ALERT_NEW_CALLER;
			snprintf(reason, sizeof reason, "key %s used by %s, not seen with it in this %s "
			         "window", key_name, t->who[i], window);
		}
		alert.reason = reason;
		pg_alert_raise(regime, &alert);
	}
}
