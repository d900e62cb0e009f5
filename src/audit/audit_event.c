/* SPDX-License-Identifier: Apache-2.0
 *
 * The record constructors: which fields each event's record carries, chosen
 * here once per event type (docs/audit.md, "Record types").  The writer
 * turns a record into its line (audit_record.c); the caller and the policy
 * a record names are the log's own (pg_audit_set_caller, pg_audit_set_policy).
 * Pure: no I/O, no locks.
 */
#include "audit_record.h"

#include <unistd.h>

static struct pg_audit_record
decision(const pg_audit *audit, const struct pg_audit_use *use, bool allow, const char *rule,
         const char *reason)
{
	return (struct pg_audit_record){
		.event = PG_AUDIT_DECISION,
		.allow = allow,
		.fixed = !allow && use->fixed,
		.rule = rule,
		.reason = reason,
		.function = use->function,
		.operation = use->operation,
		.key_name = use->key_name,
		.key_uri = use->key_uri,
		.keys_matched = use->keys_matched,
		.n_keys_matched = use->n_keys_matched,
		.public_key_sha256 = use->public_key_sha256,
		.key_size = use->key_size,
		.token_label = use->token_label,
		.token_serial = use->token_serial,
		.certs = use->certs,
		.n_certs = use->n_certs,
		.warning = use->warning,
		.has_mechanism = use->has_mechanism,
		.mechanism = use->mechanism,
		.data_sha256 = use->data_sha256,
		.data = use->data,
		.data_len = use->data_len,
		.caller = pg_audit_caller(audit),
		.identity_json = use->identity_json,
		.policy_sha256 = pg_audit_policy_sha256(audit),
	};
}

struct pg_audit_record
pg_audit_record_allow(const pg_audit *audit, const struct pg_audit_use *use, const char *rule,
                      const char *reason)
{
	return decision(audit, use, true, rule, reason);
}

struct pg_audit_record
pg_audit_record_deny(const pg_audit *audit, const struct pg_audit_use *use, const char *rule,
                     const char *reason)
{
	return decision(audit, use, false, rule, reason);
}

struct pg_audit_record
pg_audit_record_refusal(const pg_audit *audit, const char *function, const char *reason)
{
	return (struct pg_audit_record){
		.event = PG_AUDIT_DECISION,
		.allow = false,
		.fixed = true,
		.reason = reason,
		.function = function,
		.operation = "manage",
		.caller = pg_audit_caller(audit),
		.policy_sha256 = pg_audit_policy_sha256(audit),
	};
}

struct pg_audit_record
pg_audit_record_result(const struct pg_audit_use *use, uint64_t ref, CK_RV rv,
                       const unsigned char *output_sha256)
{
	return (struct pg_audit_record){
		.event = PG_AUDIT_RESULT,
		.function = use->function,
		.operation = use->operation,
		.token_label = use->token_label,
		.token_serial = use->token_serial,
		.ref = ref,
		.has_rv = true,
		.rv = rv,
		.signature_sha256 = output_sha256,
	};
}

struct pg_audit_record
pg_audit_record_login(const pg_audit *audit, const char *function, bool allow,
                      const char *identity_json, const char *reason)
{
	return (struct pg_audit_record){
		.event = PG_AUDIT_DECISION,
		.allow = allow,
		.reason = reason,
		.function = function,
		.operation = "login",
		.caller = pg_audit_caller(audit),
		.identity_json = identity_json,
		.policy_sha256 = pg_audit_policy_sha256(audit),
	};
}

struct pg_audit_record
pg_audit_record_policy(const pg_audit *audit, const char *reason)
{
	return (struct pg_audit_record){
		.event = PG_AUDIT_POLICY,
		.reason = reason,
		.caller = pg_audit_caller(audit),
		.policy_sha256 = pg_audit_policy_sha256(audit),
	};
}

struct pg_audit_record
pg_audit_record_start(const pg_audit *audit, const char *module)
{
	return (struct pg_audit_record){
		.event = PG_AUDIT_START,
		.pid = (uint64_t)getpid(),
		.module = module,
		.policy_sha256 = pg_audit_policy_sha256(audit),
	};
}

struct pg_audit_record
pg_audit_record_tamper(const char *reason, uint64_t seen_seq, uint64_t seen_size,
                       const unsigned char *seen_sha256, uint64_t found_size)
{
	return (struct pg_audit_record){
		.event = PG_AUDIT_TAMPER,
		.reason = reason,
		.pid = (uint64_t)getpid(),
		.seen_seq = seen_seq,
		.seen_size = seen_size,
		.seen_sha256 = seen_sha256,
		.found_size = found_size,
	};
}

struct pg_audit_record
pg_audit_record_rotate(const char *reason)
{
	return (struct pg_audit_record){
		.event = PG_AUDIT_ROTATE,
		.reason = reason,
		.pid = (uint64_t)getpid(),
	};
}

struct pg_audit_record
pg_audit_record_continue(const char *reason, const char *previous_file,
                         const unsigned char *previous_sha256, uint64_t previous_size)
{
	return (struct pg_audit_record){
		.event = PG_AUDIT_CONTINUE,
		.reason = reason,
		.pid = (uint64_t)getpid(),
		.previous_file = previous_file,
		.previous_sha256 = previous_sha256,
		.previous_size = previous_size,
	};
}

struct pg_audit_record
pg_audit_record_checkpoint(const unsigned char *key_sha256, uint64_t every)
{
	return (struct pg_audit_record){
		.event = PG_AUDIT_CHECKPOINT,
		.pid = (uint64_t)getpid(),
		.key_sha256 = key_sha256,
		.every = every,
	};
}
