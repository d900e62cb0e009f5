/* SPDX-License-Identifier: Apache-2.0
 *
 * Alerts' names, message ids and syslog line (include/p11gate/alert.h), and
 * the `alert` record's constructor.  The names and ids are a published
 * interface (docs/audit.md, "Alerts"): SIEM rules match on them, so they
 * never change; a new kind gets a new id.
 */
#include "p11gate/alert.h"
#include "p11gate/common.h"
#include "audit_record.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

static const struct {
	const char *name;
	const char *id;
} kinds[PG_ALERT_KIND_COUNT] = {
	[PG_ALERT_REFUSAL_BURST] = { "refusal-burst", "133b40c8c77f1da6eebf6a02e4048f92" },
	[PG_ALERT_NEW_CALLER]    = { "new-caller",    "8f0a4e55650f37fa9c981c5190fac404" },
	[PG_ALERT_UNUSUAL_HOURS] = { "unusual-hours", "cd7e95f69e4b2e51f43aec7d53278ccb" },
	[PG_ALERT_LIMIT_REACHED] = { "limit-reached", "f1dd07d2ae34455fb1c6bff395780db1" },
	[PG_ALERT_BREAK_GLASS]   = { "break-glass",   "fd6f5e69e2f8b68fba1eed30c7530384" },
	[PG_ALERT_RELOAD_FAILED] = { "reload-failed", "ce280eef613a0a08f460a42b19fe51b9" },
	[PG_ALERT_AUDIT_FAILED]  = { "audit-failed",  "03a69e7e3f8459e01c07024be78d48bc" },
	[PG_ALERT_TAMPER]        = { "tamper",        "bebae5c99b4211ed8c1a36f7b3504fc5" },
	[PG_ALERT_KEY_EXPIRING]  = { "key-expiring",  "84c50f3facccc0ec80d7ba26659b8624" },
};

const char *
pg_alert_name(enum pg_alert_kind kind)
{
	return (unsigned)kind < PG_ALERT_KIND_COUNT ? kinds[kind].name : NULL;
}

const char *
pg_alert_id(enum pg_alert_kind kind)
{
	return (unsigned)kind < PG_ALERT_KIND_COUNT ? kinds[kind].id : NULL;
}

/* Appends " name=value" (value escaped) to out at *at, when value is set. */
static void
put(char *out, size_t out_len, size_t *at, const char *name, const char *value)
{
	char esc[640];
	int n;

	if (value == NULL || *at >= out_len)
		return;
	n = snprintf(out + *at, out_len - *at, " %s=%s", name,
	             pg_esc(value, PG_ESC_VALUE, esc, sizeof esc));
	if (n > 0)
		*at += (size_t)n;
}

static void
put_u64(char *out, size_t out_len, size_t *at, const char *name, uint64_t value)
{
	char text[24];

	if (value == 0)
		return;
	snprintf(text, sizeof text, "%" PRIu64, value);
	put(out, out_len, at, name, text);
}

void
pg_alert_format(const struct pg_alert *alert, const char *log_path,
                const struct pg_caller *caller, char *out, size_t out_len)
{
	const char *name = pg_alert_name(alert->kind);
	size_t at = 0;
	int n;

	if (out_len == 0)
		return;
	n = snprintf(out, out_len, "p11gate: ALERT %s MESSAGE_ID=%s", name != NULL ? name : "unknown",
	             name != NULL ? pg_alert_id(alert->kind) : "0");
	at = n > 0 ? (size_t)n : 0;
	put(out, out_len, &at, "log", log_path);
	put(out, out_len, &at, "rule", alert->rule);
	put(out, out_len, &at, "key", alert->key_name);
	if (caller != NULL) {
		put(out, out_len, &at, "user", caller->user);
		if (caller->uid_trust != PG_ID_UNAVAILABLE) {
			char uid[24];

			snprintf(uid, sizeof uid, "%lu", (unsigned long)caller->uid);   /* root's 0 too */
			put(out, out_len, &at, "uid", uid);
		}
		put(out, out_len, &at, "exe", caller->exe);
		put(out, out_len, &at, "unit", caller->unit);
	}
	put(out, out_len, &at, "by", alert->by);
	put_u64(out, out_len, &at, "ref", alert->ref);
	put_u64(out, out_len, &at, "count", alert->count);
	put_u64(out, out_len, &at, "threshold", alert->threshold);
	put_u64(out, out_len, &at, "window", alert->window);
	if (alert->reason != NULL && at < out_len) {
		char esc[1024];

		/* Always quoted: a sentence, the last field. */
		snprintf(out + at, out_len - at, " reason=%s",
		         pg_esc(alert->reason, PG_ESC_QUOTED, esc, sizeof esc));
	}
}

void
pg_alert_syslog(const struct pg_alert *alert, const char *log_path, const struct pg_caller *caller)
{
	char line[2048];

	pg_alert_format(alert, log_path, caller, line, sizeof line);
	syslog(LOG_AUTHPRIV | LOG_ALERT, "%s", line);
}

struct pg_audit_record
pg_audit_record_alert(const pg_audit *audit, const struct pg_alert *alert)
{
	return (struct pg_audit_record){
		.event = PG_AUDIT_ALERT,
		.alert = pg_alert_name(alert->kind),
		.alert_id = pg_alert_id(alert->kind),
		.rule = alert->rule,
		.reason = alert->reason,
		.key_name = alert->key_name,
		.caller = pg_audit_caller(audit),
		.policy_sha256 = pg_audit_policy_sha256(audit),
		.ref = alert->ref,
		.by = alert->by,
		.count = alert->count,
		.threshold = alert->threshold,
		.window = alert->window,
	};
}
