/* SPDX-License-Identifier: Apache-2.0
 *
 * The audit record's fields and their order (docs/audit.md is the reference).
 * Pure formatting: no I/O, no locks; the record struct has no field for a PIN
 * or any secret, and the caller's environment is deliberately not written.
 */
#include "audit_record.h"
#include "p11gate/common.h"

#include <stdio.h>

static void
field(struct pg_buf *out, const char *name)
{
	pg_buf_puts(out, "\"");
	pg_buf_puts(out, name);
	pg_buf_puts(out, "\":");
}

static void
string_field(struct pg_buf *out, const char *name, const char *value)
{
	if (value == NULL)
		return;
	field(out, name);
	pg_buf_json_string(out, value);
	pg_buf_puts(out, ",");
}

static void
string_list_field(struct pg_buf *out, const char *name, const char *const *values, size_t n)
{
	if (values == NULL || n == 0)
		return;
	field(out, name);
	pg_buf_puts(out, "[");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			pg_buf_puts(out, ",");
		pg_buf_json_string(out, values[i]);
	}
	pg_buf_puts(out, "],");
}

static void
u64_field(struct pg_buf *out, const char *name, uint64_t value)
{
	field(out, name);
	pg_buf_u64(out, value);
	pg_buf_puts(out, ",");
}

static void
hex_field(struct pg_buf *out, const char *name, const unsigned char *value, size_t len)
{
	if (value == NULL)
		return;
	field(out, name);
	pg_buf_json_hex(out, value, len);
	pg_buf_puts(out, ",");
}

static void
token_object(struct pg_buf *out, const struct pg_audit_record *record)
{
	if (record->token_label == NULL && record->token_serial == NULL)
		return;
	field(out, "token");
	pg_buf_puts(out, "{");
	if (record->token_label != NULL) {
		pg_buf_puts(out, "\"label\":");
		pg_buf_json_string(out, record->token_label);
	}
	if (record->token_serial != NULL) {
		if (record->token_label != NULL)
			pg_buf_puts(out, ",");
		pg_buf_puts(out, "\"serial\":");
		pg_buf_json_string(out, record->token_serial);
	}
	pg_buf_puts(out, "},");
}

/* "certificates":[{"sha256":HEX,"serial":HEX},...]: the certificates the
 * key's lifecycle was checked against, so the log proves which went with
 * which signature. */
static void
certs_field(struct pg_buf *out, const struct pg_audit_record *record)
{
	if (record->certs == NULL || record->n_certs == 0)
		return;
	field(out, "certificates");
	pg_buf_puts(out, "[");
	for (size_t i = 0; i < record->n_certs; i++) {
		pg_buf_puts(out, i > 0 ? ",{\"sha256\":" : "{\"sha256\":");
		pg_buf_json_hex(out, record->certs[i].sha256, PG_SHA256_LEN);
		pg_buf_puts(out, ",\"serial\":");
		pg_buf_json_hex(out, record->certs[i].serial, record->certs[i].serial_len);
		pg_buf_puts(out, "}");
	}
	pg_buf_puts(out, "],");
}

/* A value with no name in pkcs11.h (vendor-defined) is written in hex so it
 * can still be looked up. */
static void
constant_field(struct pg_buf *out, const char *name, const char *known, unsigned long value)
{
	char tmp[32];

	if (known == NULL) {
		snprintf(tmp, sizeof tmp, "0x%lx", value);
		known = tmp;
	}
	string_field(out, name, known);
}

enum { CALLER_FIELDS = 7 };

/* The trust of each identity field, in the order the field lists are
 * written.  A field without a value counts as unavailable whatever its trust
 * says, so the lists always describe what the record shows. */
static void
caller_trusts(const struct pg_caller *c, enum pg_id_trust trust[CALLER_FIELDS])
{
	trust[0] = c->uid_trust;
	trust[1] = c->user != NULL ? c->uid_trust : PG_ID_UNAVAILABLE;
	trust[2] = c->gid_trust;
	trust[3] = c->groups != NULL || c->n_groups == 0 ? c->groups_trust : PG_ID_UNAVAILABLE;
	trust[4] = c->pid_trust;
	trust[5] = c->exe != NULL ? c->exe_trust : PG_ID_UNAVAILABLE;
	trust[6] = c->unit != NULL ? c->unit_trust : PG_ID_UNAVAILABLE;
}

static void
trust_list(struct pg_buf *out, const char *list_name, enum pg_id_trust want,
           const enum pg_id_trust trust[CALLER_FIELDS])
{
	static const char *const names[CALLER_FIELDS] = {
		"uid", "user", "gid", "groups", "pid", "exe", "unit",
	};
	bool first = true;

	for (size_t i = 0; i < CALLER_FIELDS; i++) {
		if (trust[i] != want)
			continue;
		if (first) {
			pg_buf_puts(out, ",");
			field(out, list_name);
			pg_buf_puts(out, "[");
		} else {
			pg_buf_puts(out, ",");
		}
		pg_buf_json_string(out, names[i]);
		first = false;
	}
	if (!first)
		pg_buf_puts(out, "]");
}

static void
caller_object(struct pg_buf *out, struct pg_caller *c)
{
	enum pg_id_trust trust[CALLER_FIELDS];
	const unsigned char *exe_sha256;

	caller_trusts(c, trust);
	field(out, "caller");
	pg_buf_puts(out, "{\"source\":");
	pg_buf_puts(out, c->source == PG_ID_PEER ? "\"peer\"" : "\"process\"");
	if (trust[0] != PG_ID_UNAVAILABLE) {
		pg_buf_puts(out, ",\"uid\":");
		pg_buf_u64(out, (uint64_t)c->uid);
	}
	if (trust[1] != PG_ID_UNAVAILABLE) {
		pg_buf_puts(out, ",\"user\":");
		pg_buf_json_string(out, c->user);
	}
	if (trust[2] != PG_ID_UNAVAILABLE) {
		pg_buf_puts(out, ",\"gid\":");
		pg_buf_u64(out, (uint64_t)c->gid);
	}
	if (trust[3] != PG_ID_UNAVAILABLE) {
		pg_buf_puts(out, ",\"groups\":[");
		for (size_t i = 0; i < c->n_groups; i++) {
			if (i > 0)
				pg_buf_puts(out, ",");
			pg_buf_u64(out, (uint64_t)c->groups[i]);
		}
		pg_buf_puts(out, "]");
	}
	if (trust[4] != PG_ID_UNAVAILABLE) {
		pg_buf_puts(out, ",\"pid\":");
		pg_buf_u64(out, (uint64_t)c->pid);
	}
	if (trust[5] != PG_ID_UNAVAILABLE) {
		pg_buf_puts(out, ",\"exe\":");
		pg_buf_json_string(out, c->exe);
		/* Hashed once per caller and cached there: cheap after the
		 * first record. */
		exe_sha256 = pg_caller_exe_sha256(c);
		if (exe_sha256 != NULL) {
			pg_buf_puts(out, ",\"exe_sha256\":");
			pg_buf_json_hex(out, exe_sha256, PG_SHA256_LEN);
		}
	}
	if (trust[6] != PG_ID_UNAVAILABLE) {
		pg_buf_puts(out, ",\"unit\":");
		pg_buf_json_string(out, c->unit);
	}
	trust_list(out, "attested", PG_ID_ATTESTED, trust);
	trust_list(out, "reported", PG_ID_REPORTED, trust);
	trust_list(out, "asserted", PG_ID_ASSERTED, trust);
	trust_list(out, "unavailable", PG_ID_UNAVAILABLE, trust);
	pg_buf_puts(out, "},");
}

char *
pg_audit_caller_json_new(struct pg_caller *caller)
{
	struct pg_buf out;

	pg_buf_init(&out);
	caller_object(&out, caller);
	if (out.failed || out.data == NULL) {
		pg_buf_release(&out);
		return NULL;
	}
	return out.data;
}

char *
pg_audit_identity_json_new(const struct pg_login_id *id, const char *const *claims, size_t n_claims)
{
	struct pg_buf out;
	bool any = false;

	pg_buf_init(&out);
	field(&out, "identity");
	pg_buf_puts(&out, "{");
	if (id->credential != NULL) {
		pg_buf_puts(&out, "\"credential\":");
		pg_buf_json_string(&out, id->credential);
	} else {
		pg_buf_puts(&out, "\"issuer\":");
		pg_buf_json_string(&out, id->issuer != NULL ? id->issuer : "");
		if (id->iss != NULL) {
			pg_buf_puts(&out, ",\"iss\":");
			pg_buf_json_string(&out, id->iss);
		}
		if (id->sub != NULL) {
			pg_buf_puts(&out, ",\"sub\":");
			pg_buf_json_string(&out, id->sub);
		}
	}
	for (size_t i = 0; i < n_claims; i++) {
		const struct pg_login_claim *c = pg_login_id_claim(id, claims[i]);

		if (c == NULL)
			continue;
		pg_buf_puts(&out, any ? "," : ",\"claims\":{");
		pg_buf_json_string(&out, c->name);
		pg_buf_puts(&out, ":");
		/* Another value is written as text too: the record says what the
		 * rule compared, and stays free of the token's own JSON. */
		pg_buf_json_string(&out, c->value);
		any = true;
	}
	if (any)
		pg_buf_puts(&out, "}");
	if (id->jti != NULL) {
		pg_buf_puts(&out, ",\"jti\":");
		pg_buf_json_string(&out, id->jti);
	}
	if (id->exp != 0) {
		pg_buf_puts(&out, ",\"exp\":");
		pg_buf_u64(&out, (uint64_t)id->exp);
	}
	pg_buf_puts(&out, id->credential != NULL ? ",\"secret_sha256\":" : ",\"token_sha256\":");
	pg_buf_json_hex(&out, id->token_sha256, PG_SHA256_LEN);
	pg_buf_puts(&out, "},");
	if (out.failed || out.data == NULL) {
		pg_buf_release(&out);
		return NULL;
	}
	return out.data;
}

static const char *
event_name(enum pg_audit_event event)
{
	switch (event) {
	case PG_AUDIT_DECISION:
		return "decision";
	case PG_AUDIT_RESULT:
		return "result";
	case PG_AUDIT_POLICY:
		return "policy";
	case PG_AUDIT_START:
		return "start";
	case PG_AUDIT_TAMPER:
		return "tamper";
	case PG_AUDIT_ROTATE:
		return "rotate";
	case PG_AUDIT_CONTINUE:
		return "continue";
	case PG_AUDIT_CHECKPOINT:
		return "checkpoint";
	case PG_AUDIT_ALERT:
		return "alert";
	}
	return "unknown";
}

void
pg_audit_record_body(const struct pg_audit_record *r, const char *host, const char *caller_json,
                     struct pg_buf *out)
{
	string_field(out, "host", host != NULL ? host : "");
	string_field(out, "event", event_name(r->event));
	if (r->event == PG_AUDIT_DECISION)
		string_field(out, "decision", r->allow ? "allow" : "deny");
	if (r->event == PG_AUDIT_DECISION && r->fixed)
		pg_buf_puts(out, "\"fixed\":true,");
	string_field(out, "alert", r->alert);
	string_field(out, "alert_id", r->alert_id);
	string_field(out, "rule", r->rule);
	string_field(out, "reason", r->reason);
	string_field(out, "function", r->function);
	string_field(out, "operation", r->operation);
	string_field(out, "key", r->key_name);
	string_field(out, "key_uri", r->key_uri);
	string_list_field(out, "keys_matched", r->keys_matched, r->n_keys_matched);
	hex_field(out, "public_key_sha256", r->public_key_sha256, PG_SHA256_LEN);
	string_field(out, "key_size", r->key_size);
	token_object(out, r);
	certs_field(out, r);
	string_field(out, "warning", r->warning);
	if (r->has_mechanism)
		constant_field(out, "mechanism", pg_mechanism_name(r->mechanism), r->mechanism);
	hex_field(out, "data_sha256", r->data_sha256, PG_SHA256_LEN);
	/* Short data is a digest, worth keeping whole (the one place that
	 * says so: PG_AUDIT_DATA_INLINE_MAX). */
	if (r->data != NULL && r->data_len <= PG_AUDIT_DATA_INLINE_MAX)
		hex_field(out, "data", r->data, r->data_len);
	string_field(out, "grant", r->grant_id);
	hex_field(out, "grant_sha256", r->grant_sha256, PG_SHA256_LEN);
	if (r->n_approvers > 0)
		string_list_field(out, "approvers", r->approvers, r->n_approvers);
	if (caller_json != NULL)
		pg_buf_puts(out, caller_json);
	else if (r->caller != NULL)
		caller_object(out, r->caller);
	if (r->justification != NULL) {
		/* The caller's statement, as stated (escaped, bounded by the
		 * module: PG_JUSTIFICATION_MAX). */
		field(out, "break_glass");
		pg_buf_puts(out, "{\"justification\":");
		pg_buf_json_string(out, r->justification);
		if (r->justification_source != NULL) {
			pg_buf_puts(out, ",\"source\":");
			pg_buf_json_string(out, r->justification_source);
		}
		pg_buf_puts(out, "},");
	}
	if (r->identity_json != NULL)
		pg_buf_puts(out, r->identity_json);
	if (r->pid != 0)
		u64_field(out, "pid", r->pid);
	string_field(out, "module", r->module);
	hex_field(out, "policy_sha256", r->policy_sha256, PG_SHA256_LEN);
	if (r->ref != 0)
		u64_field(out, "ref", r->ref);
	if (r->has_rv)
		constant_field(out, "rv", pg_rv_name(r->rv), r->rv);
	hex_field(out, "signature_sha256", r->signature_sha256, PG_SHA256_LEN);
	if (r->event == PG_AUDIT_ALERT) {
		string_field(out, "by", r->by);
		if (r->count != 0)
			u64_field(out, "count", r->count);
		if (r->threshold != 0)
			u64_field(out, "threshold", r->threshold);
		if (r->window != 0)
			u64_field(out, "window", r->window);
	}
	if (r->event == PG_AUDIT_TAMPER) {
		u64_field(out, "seen_seq", r->seen_seq);
		u64_field(out, "seen_size", r->seen_size);
		hex_field(out, "seen_sha256", r->seen_sha256, PG_SHA256_LEN);
		u64_field(out, "found_size", r->found_size);
	}
	if (r->event == PG_AUDIT_CONTINUE) {
		string_field(out, "previous_file", r->previous_file);
		hex_field(out, "previous_sha256", r->previous_sha256, PG_SHA256_LEN);
		u64_field(out, "previous_size", r->previous_size);
	}
	hex_field(out, "key_sha256", r->key_sha256, PG_SHA256_LEN);
	if (r->every != 0)
		u64_field(out, "every", r->every);
}
