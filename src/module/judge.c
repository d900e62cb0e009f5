/* SPDX-License-Identifier: Apache-2.0
 *
 * The decision point.  Order matters: decide, record, then (in the caller)
 * let the token act; a refusal is recorded and explained; a record that
 * cannot be written refuses the call.  A signature's key lifecycle
 * (certificates, not_after, CKA_END_DATE) is judged after the rules allow
 * it.  Nothing here holds the context lock.
 */
#include "judge.h"
#include "alert.h"
#include "alert_count.h"
#include "counted.h"
#include "p11gate/common.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The policy keys the object matches, memoised in the key per regime: an
 * operation's key is matched at its init and reused at its output.  The
 * memo is written into the caller's copy of the key (call->key points at a
 * gate's or an operation's own struct, never a const object). */
static void
match_key(const struct pg_regime *regime, const struct pg_keyinfo *key, struct pg_key_match *out)
{
	struct pg_keyinfo *memo = (struct pg_keyinfo *)key;
	struct pg_key_facts facts;

	if (key->match_regime == regime->id) {
		*out = key->match;
		return;
	}
	pg_keyinfo_facts(key, &facts);
	pg_policy_match_key(regime->policy, &facts, out);
	memo->match = *out;
	memo->match_regime = regime->id;
}

bool
pg_judge_governed(const struct pg_regime *regime, const struct pg_keyinfo *key)
{
	struct pg_key_match match;

	match_key(regime, key, &match);
	return match.n > 0 || match.pin_mismatch >= 0;
}

/* The key a record and a refusal name: the decision's key (the one its
 * rule names), or the first matched key when nothing was decided. */
static int
verdict_key(const struct pg_verdict *verdict)
{
	if (verdict->match.n == 0)
		return -1;
	return verdict->decision.key >= 0 ? verdict->decision.key : (int)verdict->match.idx[0];
}

static const char *
key_display(const struct pg_regime *regime, const struct pg_verdict *verdict,
            const struct pg_keyinfo *key, char *buf, size_t len)
{
	char label[160], token[160];

	if (verdict_key(verdict) >= 0)
		return pg_policy_key_name(regime->policy, (unsigned)verdict_key(verdict));
	/* The token's strings: the label may hold a newline or a bidi
	 * override, and is always quoted so it reads as one value. */
	pg_escape((const char *)key->label, key->attrs[3].ulValueLen > sizeof key->label ? 0 :
	          key->attrs[3].ulValueLen, PG_ESC_QUOTED, label, sizeof label);
	snprintf(buf, len, "%s on token %s (not named by the policy)", label,
	         pg_esc(key->token_label, PG_ESC_VALUE, token, sizeof token));
	return buf;
}

static void
say_refusal(const struct pg_regime *regime, const struct pg_judge_call *call,
            const struct pg_login *login, const char *key_name, const char *reason)
{
	const struct pg_caller *caller = regime->caller;
	const char *mech = call->has_mechanism ? pg_mechanism_name(call->mechanism) : NULL;
	char mech_buf[32], who[512] = "unknown caller", user[160], exe[320];

	if (!pg_policy_settings(regime->policy)->caller_messages)
		return;
	if (call->has_mechanism && mech == NULL) {
		snprintf(mech_buf, sizeof mech_buf, "0x%lx", call->mechanism);
		mech = mech_buf;
	}
	if (caller != NULL) {
		char uid[32];

		snprintf(uid, sizeof uid, "%lu", (unsigned long)caller->uid);
		snprintf(who, sizeof who, "user %s, program %s",
		         caller->user ? pg_esc(caller->user, PG_ESC_VALUE, user, sizeof user) : uid,
		         caller->exe ? pg_esc(caller->exe, PG_ESC_VALUE, exe, sizeof exe) : "(unknown)");
	}
	if (login != NULL) {
		size_t used = strlen(who);
		char sub[200];

		if (login->id->credential != NULL)
			snprintf(who + used, sizeof who - used, ", credential %s", login->id->credential);
		else
			snprintf(who + used, sizeof who - used, ", identity %s sub %s", login->id->issuer,
			         pg_esc(login->id->sub ? login->id->sub : "?", PG_ESC_VALUE, sub, sizeof sub));
	}
	pg_log("denied %s with key %s%s%s%s for %s: %s", pg_op_name(call->op), key_name,
	       mech ? " (" : "", mech ? mech : "", mech ? ")" : "", who, reason);
}

/* The log failed: said on stderr, and to syslog as an audit-failed alert
 * (the log itself cannot carry it).  what: "refusing C_Sign", ... */
static void
audit_failed(struct pg_regime *regime, int err, const char *what)
{
	char why[PATH_MAX + 256];

	if (regime->audit == NULL)
		snprintf(why, sizeof why, "%s: %s", regime->audit_error, what);
	else
		snprintf(why, sizeof why, "audit log %s cannot be written (%s): %s",
		         pg_audit_path(regime->audit), strerror(err), what);
	pg_log("%s", why);
	pg_alert_audit_failed(regime, why);
}

static CK_RV
append(struct pg_regime *regime, const struct pg_audit_record *record, uint64_t *seq)
{
	int err = pg_audit_append(regime->audit, record, seq);
	char what[96];

	if (err == 0)
		return CKR_OK;
	snprintf(what, sizeof what, "refusing %s", record->function ? record->function : "the call");
	audit_failed(regime, err, what);
	return CKR_FUNCTION_FAILED;
}

/* For the decision: a grant's uses now, taking nothing.  A log that cannot
 * be read says "left": the counted append at the allow record decides, and
 * fails closed. */
static bool
grant_uses_left(void *ctx, const struct pg_grant_use *grant, uint64_t *used)
{
	const struct pg_regime *regime = ctx;
	char name[PG_AUDIT_COUNTER_NAME_MAX + 1];
	struct pg_audit_take take;

	pg_counted_grant_take(grant, &take, name, sizeof name);
	if (regime->audit == NULL || pg_audit_counters_read(regime->audit, &take, 1) != 0)
		return true;
	*used = take.used;
	return take.used < take.max;
}

/* An allowed use outside its rule's usual: window, once per use: at the
 * allow record (the output call), not at the init. */
static void
alert_unusual(struct pg_regime *regime, const struct pg_decision *decision, const char *key_name,
              uint64_t seq)
{
	struct pg_alert alert;

	if (!decision->unusual)
		return;
	alert = (struct pg_alert){
		.kind = PG_ALERT_UNUSUAL_HOURS,
		.reason = decision->unusual_reason,
		.rule = decision->rule,
		.key_name = key_name,
		.ref = seq,
	};
	pg_alert_raise(regime, &alert);
}

/* A record that takes uses: its rule's limit and break-glass cap
 * (counted, which may refuse: the log then writes a deny in its place and
 * *refusal says why), and the alerts: counters (never refusing), all in
 * one append.  A full counter store refuses a counted use; without one, the
 * record is appended without the alerts' counters (said on stderr). */
static CK_RV
append_taking(struct pg_regime *regime, const struct pg_audit_record *record,
              struct pg_counted *counted, struct pg_alert_takes *alerts, uint64_t *seq,
              char *refusal, size_t refusal_len)
{
	struct pg_audit_take takes[PG_COUNTED_MAX + PG_ALERT_TAKES_MAX];
	size_t n = 0;
	int refused = -1, err;
	char what[96];

	/* The limits first: one at its max refuses before any alert counts. */
	for (size_t i = 0; i < counted->n; i++)
		takes[n++] = counted->takes[i];
	for (size_t i = 0; i < alerts->n; i++)
		takes[n++] = alerts->takes[i];
	err = pg_audit_append_counted(regime->audit, record, takes, n, pg_counted_refusal, counted,
	                              &refused, refusal, refusal_len, seq);
	for (size_t i = 0; i < counted->n; i++)
		counted->takes[i] = takes[i];
	for (size_t i = 0; i < alerts->n; i++)
		alerts->takes[i] = takes[counted->n + i];
	if (err == 0) {
		if (refused < 0)
			refusal[0] = '\0';
		return CKR_OK;
	}
	if (err == ENOSPC && counted->n == 0) {
		pg_log("audit log %s: its counter store is full: refusal-burst and new-caller alerts "
		       "are not counted for this record", pg_audit_path(regime->audit));
		alerts->n = 0;
		refusal[0] = '\0';
		return append(regime, record, seq);
	}
	snprintf(what, sizeof what, "refusing %s", record->function ? record->function : "the call");
	audit_failed(regime, err, what);
	return CKR_FUNCTION_FAILED;
}

/* A verdict with the key matched and nothing decided: a refusal.  With a
 * login: block, the identity the key's token was logged into with. */
static void
verdict_start(const struct pg_regime *regime, const struct pg_judge_call *call,
              struct pg_verdict *verdict)
{
	memset(&verdict->decision, 0, sizeof verdict->decision);
	memset(&verdict->life, 0, sizeof verdict->life);
	verdict->certs.n = 0;
	verdict->decision.key = -1;
	verdict->fixed = false;
	verdict->login = pg_policy_login(regime->policy)->configured ? pg_ctx_login(call->key->slot) : NULL;
	match_key(regime, call->key, &verdict->match);
}

/* A signature the rules allow, judged on its key's lifecycle
 * (src/policy/lifecycle.c): its certificates come from the key memo, read
 * from the token once per key and regime, never per signature; the
 * dates are compared with now at every signature. */
static void
judge_lifecycle(const struct pg_regime *regime, const struct pg_judge_call *call, time_t now,
                struct pg_verdict *verdict)
{
	struct pg_decision *decision = &verdict->decision;
	const unsigned key = (unsigned)decision->key;
	struct pg_key_facts facts;

	if (!decision->allow || call->op != PG_OP_SIGN || decision->key < 0)
		return;
	pg_keyinfo_facts(call->key, &facts);
	if (pg_policy_key_needs_certs(regime->policy, key)) {
		/* The public key the policy bound the key to (the pin that
		 * matched), else the one read from the key: certificates are
		 * matched by it.  Neither: none can be read (refused). */
		const unsigned char *spki = pg_policy_key_pin_matched(regime->policy, key, &facts);

		if (spki == NULL && call->key->have_spki)
			spki = call->key->spki_sha256;
		if (spki != NULL && pg_ctx_key_certs(call->key, spki, regime->id, &verdict->certs) == CKR_OK)
			facts.certs = &verdict->certs;
	}
	pg_policy_lifecycle(regime->policy, decision->key, &facts, now, -1, &verdict->life);
	if (!verdict->life.refuse)
		return;
	decision->allow = false;
	decision->rule = NULL;
	snprintf(decision->reason, sizeof decision->reason, "key %s: %s", decision->key_name,
	         verdict->life.message);
}

void
pg_verdict_release(struct pg_verdict *verdict)
{
	pg_login_unref(verdict->login);
	verdict->login = NULL;
}

void
pg_judge_decide(const struct pg_regime *regime, const struct pg_judge_call *call,
                struct pg_verdict *verdict)
{
	struct pg_request request;

	pg_regime_prepare(regime);
	verdict_start(regime, call, verdict);
	if (regime->caller == NULL) {
		snprintf(verdict->decision.reason, sizeof verdict->decision.reason, "%s",
		         regime->caller_error);
		verdict->fixed = true;
		return;
	}
	request = (struct pg_request){
		.op = call->op,
		.mechanism = call->has_mechanism ? call->mechanism : CK_UNAVAILABLE_INFORMATION,
		.key = &verdict->match,
		.caller = regime->caller,
		.login = verdict->login != NULL ? verdict->login->id : NULL,
		.now = time(NULL),
		.data_sha256 = call->data_sha256,
		.data = call->data,
		.data_len = call->data_len,
		.justify = pg_break_glass_justify,
		.justify_ctx = (void *)regime,
		.grant_uses_left = grant_uses_left,
		.grant_ctx = (void *)regime,
		.provisional = !call->record_allow,
	};
	pg_policy_decide(regime->policy, &request, &verdict->decision);
	judge_lifecycle(regime, call, request.now, verdict);
}

/* An allowed signature within warn_days of a date: said on the caller's
 * stderr, and raised as an alert (syslog and an alert record naming the
 * allow record); the allow record carries it too. */
static void
say_warning(struct pg_regime *regime, const char *key_name, const struct pg_life_verdict *life,
            uint64_t seq)
{
	const struct pg_alert alert = {
		.kind = PG_ALERT_KEY_EXPIRING,
		.reason = life->message,
		.key_name = key_name,
		.ref = seq,
	};

	if (pg_policy_settings(regime->policy)->caller_messages)
		pg_log("warning: signing with key %s: %s", key_name, life->message);
	pg_alert_raise(regime, &alert);
}

/* The use a record names: the call and its key's token (the policy's key
 * is added from the verdict). */
static struct pg_audit_use
use_of(const struct pg_judge_call *call)
{
	return (struct pg_audit_use){
		.function = call->function,
		.operation = pg_op_name(call->op),
		.has_mechanism = call->has_mechanism,
		.mechanism = call->mechanism,
		.data_sha256 = call->data_sha256,
		.data = call->data,
		.data_len = call->data_len,
		.token_label = call->key->token_label,
		.token_serial = call->key->token_serial,
	};
}

/* The approvers of a grant use ("alice, bob"), split into names in buf. */
static size_t
approver_names(const struct pg_grant_use *grant, char *buf, size_t buf_len, const char **names,
               size_t max)
{
	size_t n = 0;

	snprintf(buf, buf_len, "%s", grant->approvers);
	for (char *save = NULL, *name = strtok_r(buf, ", ", &save); name != NULL && n < max;
	     name = strtok_r(NULL, ", ", &save))
		names[n++] = name;
	return n;
}

/* Every key the object matched, in file order, for the record. */
static size_t
matched_names(const struct pg_regime *regime, const struct pg_verdict *verdict,
              const char *names[PG_MAX_KEY_MATCHES])
{
	for (size_t i = 0; i < verdict->match.n; i++)
		names[i] = pg_policy_key_name(regime->policy, verdict->match.idx[i]);
	return verdict->match.n;
}

static const unsigned char *
matched_pin(const struct pg_regime *regime, unsigned key, const struct pg_keyinfo *info)
{
	struct pg_key_facts facts;

	pg_keyinfo_facts(info, &facts);
	return pg_policy_key_pin_matched(regime->policy, key, &facts);
}

CK_RV
pg_judge_record(struct pg_regime *regime, const struct pg_judge_call *call,
                const struct pg_verdict *verdict, uint64_t *seq)
{
	const struct pg_decision *decision = &verdict->decision;
	int key = verdict_key(verdict);
	const char *matched[PG_MAX_KEY_MATCHES];
	size_t n_matched = matched_names(regime, verdict, matched);
	char key_buf[400];
	const char *key_name = key_display(regime, verdict, call->key, key_buf, sizeof key_buf);
	/* A pinned key that matched has the pinned public key (an EC key's
	 * public objects may disagree: the pin is the one that matched). */
	const unsigned char *pin = key >= 0 ? matched_pin(regime, (unsigned)key, call->key) : NULL;
	struct pg_audit_cert certs[PG_CERT_MAX];
	bool warn = decision->allow && verdict->life.status == PG_LIFE_EXPIRING;
	struct pg_counted counted = { 0 };
	char refusal[512] = "";
	uint64_t record_seq = 0;
	struct pg_alert_takes alerts = { 0 };
	CK_RV rv;

	pg_regime_prepare(regime);
	if (regime->audit == NULL) {
		char what[96];

		snprintf(what, sizeof what, "refusing %s", call->function);
		audit_failed(regime, 0, what);
		return CKR_FUNCTION_FAILED;
	}
	if (!decision->allow || call->record_allow) {
		struct pg_audit_use use = use_of(call);
		struct pg_audit_record record;
		char approvers_buf[sizeof decision->grant.approvers];
		const char *approvers[32];
		char key_size[32];

		for (size_t i = 0; i < verdict->certs.n; i++)
			certs[i] = (struct pg_audit_cert){ verdict->certs.cert[i].sha256,
			                                   verdict->certs.cert[i].serial,
			                                   verdict->certs.cert[i].serial_len };
		use.certs = certs;
		use.n_certs = verdict->certs.n;
		use.warning = warn ? verdict->life.message : NULL;
		use.key_name = key >= 0 ? key_name : NULL;
		use.key_uri = key >= 0 ? pg_policy_key_uri(regime->policy, (unsigned)key) : NULL;
		use.keys_matched = matched;
		use.n_keys_matched = n_matched;
		use.public_key_sha256 = pin != NULL ? pin : call->key->have_spki ? call->key->spki_sha256 : NULL;
		/* "other" for a key key_minimum does not judge, so that a replay
		 * tells it from a record written before key_size existed. */
		if (call->key->family != PG_KEY_OTHER) {
			snprintf(key_size, sizeof key_size, "%s-%lu", call->key->family == PG_KEY_RSA ? "RSA" : "EC",
			         call->key->bits);
			use.key_size = key_size;
		} else if (call->key->cls == CKO_PRIVATE_KEY || call->key->cls == CKO_SECRET_KEY) {
			use.key_size = "other";
		}
		use.fixed = verdict->fixed;
		use.identity_json = verdict->login != NULL ? verdict->login->record : NULL;

		record = decision->allow ?
		         pg_audit_record_allow(regime->audit, &use, decision->rule, decision->reason) :
		         pg_audit_record_deny(regime->audit, &use, decision->rule, decision->reason);
		if (decision->allow && decision->grant.used) {
			record.grant_id = decision->grant.id;
			record.grant_sha256 = decision->grant.sha256;
			record.approvers = approvers;
			record.n_approvers = approver_names(&decision->grant, approvers_buf,
			                                    sizeof approvers_buf, approvers, 32);
		}
		if (decision->allow && decision->break_glass != NULL) {
			record.justification = decision->justification;
			record.justification_source = decision->justification_source;
		}
		/* Uses are taken at the record that allows them (the output
		 * call), never at an init. */
		if (pg_counted_init(&counted, regime, decision, use.key_name) +
		    pg_alert_takes_init(&alerts, regime, decision->allow, key_name) > 0)
			rv = append_taking(regime, &record, &counted, &alerts, &record_seq, refusal,
			                   sizeof refusal);
		else
			rv = append(regime, &record, &record_seq);
		if (rv != CKR_OK)
			return rv;
	}
	if (!decision->allow || refusal[0] != '\0') {
		/* A refusal is rare: make it durable before answering. */
		pg_audit_sync(regime->audit, record_seq);
		/* A limit's refusal took none of the alerts' counters (they were
		 * an allow's: new callers), so it raises none of theirs. */
		if (refusal[0] == '\0')
			pg_alert_takes_raise(regime, &alerts, decision, key_name, record_seq);
		say_refusal(regime, call, verdict->login, key_name, refusal[0] != '\0' ? refusal : decision->reason);
		return CKR_FUNCTION_REJECTED;
	}
	/* The disk syncs the allow record while the token works. */
	if (call->record_allow) {
		pg_audit_sync_start(regime->audit, record_seq);
		alert_unusual(regime, decision, key >= 0 ? key_name : NULL, record_seq);
		pg_alert_takes_raise(regime, &alerts, decision, key_name, record_seq);
		pg_counted_taken(regime, &counted, pg_op_name(call->op), record_seq);
	}
	if (call->record_allow && warn)
		say_warning(regime, key_name, &verdict->life, record_seq);
	if (seq != NULL)
		*seq = record_seq;
	return CKR_OK;
}

CK_RV
pg_judge(struct pg_regime *regime, const struct pg_judge_call *call, uint64_t *seq)
{
	struct pg_verdict verdict;

	CK_RV rv;

	pg_judge_decide(regime, call, &verdict);
	rv = pg_judge_record(regime, call, &verdict, seq);
	pg_verdict_release(&verdict);
	return rv;
}

CK_RV
pg_judge_forbid(struct pg_regime *regime, const struct pg_judge_call *call, const char *reason)
{
	struct pg_verdict verdict;

	CK_RV rv;

	verdict_start(regime, call, &verdict);
	verdict.fixed = true;
	snprintf(verdict.decision.reason, sizeof verdict.decision.reason, "%s", reason);
	rv = pg_judge_record(regime, call, &verdict, NULL);
	pg_verdict_release(&verdict);
	return rv;
}

CK_RV
pg_judge_refuse(struct pg_regime *regime, const char *function, const char *reason)
{
	struct pg_audit_record record;
	uint64_t seq;

	if (regime->audit == NULL) {
		char what[96];

		snprintf(what, sizeof what, "refusing %s", function);
		audit_failed(regime, 0, what);
		return CKR_FUNCTION_FAILED;
	}
	pg_regime_prepare(regime);
	record = pg_audit_record_refusal(regime->audit, function, reason);
	if (append(regime, &record, &seq) != CKR_OK)
		return CKR_FUNCTION_FAILED;
	pg_audit_sync(regime->audit, seq);
	if (pg_policy_settings(regime->policy)->caller_messages)
		pg_log("refused %s: %s", function, reason);
	return CKR_FUNCTION_REJECTED;
}

CK_RV
pg_judge_result(struct pg_regime *regime, const struct pg_judge_call *call, uint64_t seq,
                CK_RV rv, const unsigned char *output, size_t output_len)
{
	unsigned char output_sha256[32];
	bool hashed = rv == CKR_OK && output != NULL && pg_sha256(output, output_len, output_sha256);
	const struct pg_audit_use use = use_of(call);
	const struct pg_audit_record record = pg_audit_record_result(&use, seq, rv,
	                                                             hashed ? output_sha256 : NULL);
	uint64_t result_seq;
	int err;

	/* The allow record must be on disk before the output is released. */
	err = pg_audit_sync(regime->audit, seq);
	if (err == 0)
		err = pg_audit_append(regime->audit, &record, &result_seq);
	if (err != 0) {
		char what[96];

		snprintf(what, sizeof what, "withholding the result of %s", call->function);
		audit_failed(regime, err, what);
		return CKR_FUNCTION_FAILED;
	}
	return rv;
}

CK_RV
pg_judge_durable(struct pg_regime *regime, const struct pg_judge_call *call, uint64_t seq)
{
	int err = pg_audit_sync(regime->audit, seq);

	char what[96];

	if (err == 0)
		return CKR_OK;
	snprintf(what, sizeof what, "withholding the output of %s", call->function);
	audit_failed(regime, err, what);
	return CKR_FUNCTION_FAILED;
}
