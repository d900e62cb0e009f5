/* SPDX-License-Identifier: Apache-2.0
 *
 * `p11gate explain --replay LOG --config NEW.yaml`: every decision of a
 * log judged again under a candidate policy, with the facts its record
 * holds (operation, mechanism, the policy keys the object matched and its
 * public key, the caller, the time), and what would change, grouped by
 * rule, key and caller.  What a record cannot tell (the caller's
 * environment, a key the old policy did not name) is counted apart, never
 * guessed: docs/policy.md, "Replaying a log".
 */
#include "commands.h"
#include "audit_json.h"
#include "audit_walk.h"
#include "p11gate/common.h"
#include "p11gate/identity.h"
#include "p11gate/login.h"
#include "p11gate/policy.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum change { SAME, TO_REFUSED, TO_ALLOWED, UNREPLAYABLE, N_CHANGES };

/* One group of changed decisions: same direction, rule, key and caller. */
struct group {
	enum change change;
	char *rule;          /* the old deciding rule (to refused), the new one (to allowed), or why */
	char *key;
	char *caller;
	size_t count;
	json_t *example;     /* seq, time, old and new reasons of the first one */
};

struct replay {
	const pg_policy *policy;
	bool has_since;
	struct pg_instant since;
	size_t decisions, fixed, logins, counts[N_CHANGES];
	struct group *groups;
	size_t n_groups, cap_groups;
	/* The new policy's limit: and break_glass: counters, taken by the
	 * decisions it allows, in the log's order (as the module counts). */
	struct use_count { char *name; uint64_t n; } *uses;
	size_t n_uses, cap_uses;
	bool failed;         /* out of memory */
};

static bool
hex32(const char *text, unsigned char out[32])
{
	if (text == NULL || strlen(text) != 64)
		return false;
	for (size_t i = 0; i < 32; i++) {
		unsigned v;

		if (sscanf(text + 2 * i, "%2x", &v) != 1)
			return false;
		out[i] = (unsigned char)v;
	}
	return true;
}

static bool
in_list(const json_t *caller, const char *list, const char *field)
{
	const json_t *a = json_object_get(caller, list), *v;
	size_t i;

	json_array_foreach(a, i, v) {
		const char *s = pg_json_string(v);
		if (s != NULL && strcmp(s, field) == 0)
			return true;
	}
	return false;
}

static enum pg_id_trust
trust_of(const json_t *caller, const char *field)
{
	if (in_list(caller, "attested", field))
		return PG_ID_ATTESTED;
	if (in_list(caller, "reported", field))
		return PG_ID_REPORTED;
	if (in_list(caller, "asserted", field))
		return PG_ID_ASSERTED;
	return PG_ID_UNAVAILABLE;
}

static char *
dup_string(const json_t *o, const char *name)
{
	const char *s = pg_json_get_string(o, name);

	return s != NULL ? strdup(s) : NULL;
}

/* The caller as its record shows it (docs/audit.md, "The caller"): each
 * field with its trust; the environment is never recorded, so it is
 * unavailable.  The program's hash is the recorded one: nothing is read
 * from this machine.  NULL if the record names no caller. */
static struct pg_caller *
caller_from_record(const json_t *c)
{
	struct pg_caller *caller;
	uint64_t v;
	const json_t *groups, *g;
	size_t i;

	if (!json_is_object(c) || (caller = calloc(1, sizeof *caller)) == NULL)
		return NULL;
	caller->source = strcmp(pg_json_get_string(c, "source") ? pg_json_get_string(c, "source") : "",
	                        "peer") == 0 ? PG_ID_PEER : PG_ID_PROCESS;
	if (pg_json_u64(json_object_get(c, "uid"), &v)) {
		caller->uid = (uid_t)v;
		caller->uid_trust = trust_of(c, "uid");
	}
	caller->user = dup_string(c, "user");
	if (pg_json_u64(json_object_get(c, "gid"), &v)) {
		caller->gid = (gid_t)v;
		caller->gid_trust = trust_of(c, "gid");
	}
	groups = json_object_get(c, "groups");
	if (json_is_array(groups)) {
		caller->groups = calloc(json_array_size(groups) + 1, sizeof *caller->groups);
		json_array_foreach(groups, i, g) {
			if (caller->groups != NULL && pg_json_u64(g, &v))
				caller->groups[caller->n_groups++] = (gid_t)v;
		}
		caller->groups_trust = caller->groups != NULL ? trust_of(c, "groups") : PG_ID_UNAVAILABLE;
	}
	if (pg_json_u64(json_object_get(c, "pid"), &v)) {
		caller->pid = (pid_t)v;
		caller->pid_trust = trust_of(c, "pid");
	}
	caller->exe = dup_string(c, "exe");
	caller->exe_trust = caller->exe != NULL ? trust_of(c, "exe") : PG_ID_UNAVAILABLE;
	caller->exe_hashed = true;
	caller->exe_hash_ok = hex32(pg_json_get_string(c, "exe_sha256"), caller->exe_sha256);
	caller->unit = dup_string(c, "unit");
	caller->unit_trust = caller->unit != NULL ? trust_of(c, "unit") : PG_ID_UNAVAILABLE;
	caller->env_trust = PG_ID_UNAVAILABLE;
	return caller;
}

/* The identity the caller proved at C_Login, as its record shows it (the
 * "identity" field: issuer or credential, iss, sub, jti, exp and the claims
 * the old policy's rules named); NULL if the record has none. */
static struct pg_login_id *
login_from_record(const json_t *identity)
{
	const json_t *claims = json_object_get(identity, "claims"), *value;
	struct pg_login_id *id;
	const char *name;
	size_t i = 0;
	uint64_t exp = 0;

	if (!json_is_object(identity) || (id = calloc(1, sizeof *id)) == NULL)
		return NULL;
	id->issuer = dup_string(identity, "issuer");
	id->credential = dup_string(identity, "credential");
	id->iss = dup_string(identity, "iss");
	id->sub = dup_string(identity, "sub");
	id->jti = dup_string(identity, "jti");
	if (pg_json_u64(json_object_get(identity, "exp"), &exp))
		id->exp = (int64_t)exp;
	/* iss and sub are claims too, as a verified token has them. */
	id->claims = calloc(json_object_size(claims) + 2, sizeof *id->claims);
	if (id->claims == NULL)
		goto fail;
	json_object_foreach((json_t *)claims, name, value) {
		if (pg_json_string(value) == NULL)
			continue;
		id->claims[i] = (struct pg_login_claim){ strdup(name), strdup(pg_json_string(value)), true };
		id->n_claims = ++i;     /* freed with id even when half made */
		if (id->claims[i - 1].name == NULL || id->claims[i - 1].value == NULL)
			goto fail;
	}
	for (int k = 0; k < 2; k++) {
		const char *claim = k == 0 ? "iss" : "sub", *v = k == 0 ? id->iss : id->sub;

		if (v == NULL || json_object_get(claims, claim) != NULL)
			continue;
		id->claims[i] = (struct pg_login_claim){ strdup(claim), strdup(v), true };
		id->n_claims = ++i;
		if (id->claims[i - 1].name == NULL || id->claims[i - 1].value == NULL)
			goto fail;
	}
	return id;
fail:
	pg_login_id_free(id);
	return NULL;
}

/* A claim the new policy's identity: conditions name that the record does
 * not hold (the old policy named no rule on it, so it was not written);
 * NULL if none. */
static const char *
claim_not_recorded(const pg_policy *policy, const json_t *identity)
{
	const struct pg_login_config *login = pg_policy_login(policy);
	const json_t *claims = json_object_get(identity, "claims");

	if (!json_is_object(identity))
		return NULL;
	for (size_t i = 0; i < login->n_recorded_claims; i++) {
		const char *name = login->recorded_claims[i];

		if (strcmp(name, "iss") != 0 && strcmp(name, "sub") != 0 &&
		    json_object_get(claims, name) == NULL)
			return name;
	}
	return NULL;
}

static bool
parse_mech(const char *text, CK_MECHANISM_TYPE *out)
{
	char *end;

	if (text == NULL) {
		*out = CK_UNAVAILABLE_INFORMATION;
		return true;
	}
	if (strncmp(text, "0x", 2) == 0) {
		errno = 0;
		*out = strtoul(text + 2, &end, 16);
		return errno == 0 && end != text + 2 && *end == '\0';
	}
	return pg_mechanism_from_name(text, out);
}

/* The new policy's keys for the names the old one matched, each checked
 * against the recorded public key where the new one pins it (a key with
 * a pin and no recorded public key does not match: fail closed, as the
 * module does). */
static void
match_by_name(const pg_policy *policy, const json_t *rec, struct pg_key_match *m)
{
	const json_t *names = json_object_get(rec, "keys_matched"), *v;
	unsigned char spki[32];
	bool have_spki = hex32(pg_json_get_string(rec, "public_key_sha256"), spki);
	json_t *single = NULL;
	size_t i;

	m->n = 0;
	m->pin_mismatch = -1;
	if (!json_is_array(names)) {
		/* Records from before keys_matched: the deciding key. */
		single = json_array();
		if (single != NULL && pg_json_get_string(rec, "key") != NULL)
			json_array_append_new(single, json_string(pg_json_get_string(rec, "key")));
		names = single;
	}
	json_array_foreach(names, i, v) {
		const char *name = pg_json_string(v);
		const unsigned char *pin;
		int idx;

		if (name == NULL || (idx = pg_policy_key_find(policy, name)) < 0)
			continue;
		pin = pg_policy_key_pin(policy, (unsigned)idx);
		if (pin != NULL && (!have_spki || memcmp(pin, spki, 32) != 0)) {
			if (m->pin_mismatch < 0)
				m->pin_mismatch = idx;
			continue;
		}
		if (m->n < PG_MAX_KEY_MATCHES)
			m->idx[m->n++] = (unsigned)idx;
	}
	json_decref(single);
}

/* The key's size as the record holds it ("RSA-2048", "EC-256", "other"
 * for a key key_minimum does not judge); false when it holds none
 * (records from before key_size was recorded). */
static bool
recorded_size(const json_t *rec, struct pg_key_facts *facts)
{
	const char *text = pg_json_get_string(rec, "key_size");
	char family[4];
	unsigned long bits;
	int used = 0;

	if (text != NULL && strcmp(text, "other") == 0) {
		facts->family = PG_KEY_OTHER;
		return true;
	}
	if (text == NULL || sscanf(text, "%3[A-Z]-%lu%n", family, &bits, &used) != 2 ||
	    text[used] != '\0')
		return false;
	if (strcmp(family, "RSA") == 0)
		facts->family = PG_KEY_RSA;
	else if (strcmp(family, "EC") == 0)
		facts->family = PG_KEY_EC;
	else
		return false;
	facts->bits = bits;
	return true;
}

/* A signature the new rules allow, judged on the new key's lifecycle
 * where records hold what it needs (not_after, a pin's not_after: the
 * time and the public key; an enforced key_minimum: the key's size).  A
 * key with a certificate: block needs the certificates' state, which
 * records do not hold: why says so, as it says a size the record lacks. */
static void
replay_lifecycle(const pg_policy *policy, const json_t *rec, const struct pg_request *req,
                 struct pg_decision *d, char *why, size_t why_len)
{
	unsigned char spki[32];
	struct pg_key_facts facts = { 0 };
	struct pg_life_verdict life;
	const struct pg_key_minimum *min = pg_policy_key_minimum(policy);

	why[0] = '\0';
	if (!d->allow || req->op != PG_OP_SIGN || d->key < 0)
		return;
	if (pg_policy_key_needs_certs(policy, (unsigned)d->key)) {
		snprintf(why, why_len, "key %s has a certificate: block, and records do not hold its "
		         "certificates' state", d->key_name);
		return;
	}
	if (!recorded_size(rec, &facts) && min->configured && min->enforce) {
		snprintf(why, why_len, "key_minimum is enforced, and the record does not hold the key's "
		         "size (key_size)");
		return;
	}
	if (hex32(pg_json_get_string(rec, "public_key_sha256"), spki))
		facts.public_key_sha256 = spki;
	pg_policy_lifecycle(policy, d->key, &facts, req->now, -1, &life);
	if (!life.refuse)
		return;
	d->allow = false;
	d->rule = NULL;
	snprintf(d->reason, sizeof d->reason, "key %s: %s", d->key_name, life.message);
}

/* pg_justify_fn: a break-glass justification is what the record says was
 * stated (its "break_glass" field); a record without one stated none. */
static bool
recorded_justification(void *ctx, uint64_t fresh, char *text, size_t text_len, char *source,
                       size_t source_len)
{
	const json_t *bg = json_object_get(ctx, "break_glass");
	const char *stated = pg_json_get_string(bg, "justification");

	(void)fresh;
	if (stated == NULL) {
		snprintf(source, source_len, "the record, which holds no justification");
		return false;
	}
	snprintf(text, text_len, "%s", stated);
	snprintf(source, source_len, "%s", pg_json_get_string(bg, "source") ?
	         pg_json_get_string(bg, "source") : "the record");
	return true;
}

/* A counter of limit (the deciding rule's) for this decision, by what
 * it counts and its fixed window, as the module names it in spirit. */
static struct use_count *
use_counter(struct replay *r, const char *kind, const struct pg_decision *d,
            const struct pg_limit *limit, const struct pg_request *req)
{
	char name[768];
	size_t i;

	snprintf(name, sizeof name, "%s %s %s %lu %" PRIu64, kind, d->rule,
	         limit->by == PG_LIMIT_BY_KEY ? d->key_name : limit->by == PG_LIMIT_BY_RULE ? "-" : "",
	         limit->by == PG_LIMIT_BY_CALLER ? (unsigned long)req->caller->uid : 0UL,
	         (uint64_t)req->now / limit->per);
	for (i = 0; i < r->n_uses; i++) {
		if (strcmp(r->uses[i].name, name) == 0)
			return &r->uses[i];
	}
	if (r->n_uses == r->cap_uses) {
		size_t cap = r->cap_uses ? 2 * r->cap_uses : 16;
		struct use_count *more = realloc(r->uses, cap * sizeof *more);
		if (more == NULL)
			return NULL;
		r->uses = more;
		r->cap_uses = cap;
	}
	r->uses[r->n_uses] = (struct use_count){ strdup(name), 0 };
	return r->uses[r->n_uses].name != NULL ? &r->uses[r->n_uses++] : NULL;
}

/* An allow under a rule with a limit: or a break-glass cap takes a use of
 * each, all or none; one at its max refuses it, as the module would have
 * at this point of the log. */
static void
replay_counted(struct replay *r, const struct pg_request *req, struct pg_decision *d)
{
	const struct pg_limit *limits[2] = { d->limit, d->break_glass };
	static const char *const kinds[2] = { "limit", "break-glass cap" };
	struct use_count *c[2] = { NULL, NULL };

	if (!d->allow)
		return;
	for (int i = 0; i < 2; i++) {
		if (limits[i] == NULL || limits[i]->per == 0)
			continue;
		if ((c[i] = use_counter(r, kinds[i], d, limits[i], req)) == NULL) {
			r->failed = true;
			return;
		}
		if (c[i]->n >= limits[i]->max) {
			d->allow = false;
			snprintf(d->reason, sizeof d->reason, "rule %s: %s of %" PRIu64 " per %s by %s "
			         "reached (%" PRIu64 " of %" PRIu64 " used, counting the log's uses under "
			         "this policy)", d->rule, kinds[i], limits[i]->max,
			         limits[i]->per_text != NULL ? limits[i]->per_text : "?",
			         pg_limit_by_name(limits[i]->by), c[i]->n, limits[i]->max);
			return;
		}
	}
	for (int i = 0; i < 2; i++) {
		if (c[i] != NULL)
			c[i]->n++;
	}
}

static char *
xstrdup(const char *s)
{
	return strdup(s != NULL ? s : "(none)");
}

static void
add(struct replay *r, enum change change, const char *rule, const char *key, const char *caller,
    const json_t *rec, const char *new_rule, const char *new_reason)
{
	struct group *g = NULL;

	r->counts[change]++;
	if (change == SAME)
		return;
	for (size_t i = 0; i < r->n_groups && g == NULL; i++) {
		struct group *h = &r->groups[i];
		if (h->change == change && strcmp(h->rule, rule ? rule : "(none)") == 0 &&
		    strcmp(h->key, key ? key : "(none)") == 0 && strcmp(h->caller, caller) == 0)
			g = h;
	}
	if (g == NULL) {
		if (r->n_groups == r->cap_groups) {
			size_t cap = r->cap_groups ? 2 * r->cap_groups : 16;
			struct group *more = realloc(r->groups, cap * sizeof *more);
			if (more == NULL) {
				r->failed = true;
				return;
			}
			r->groups = more;
			r->cap_groups = cap;
		}
		g = &r->groups[r->n_groups++];
		*g = (struct group){ .change = change, .rule = xstrdup(rule), .key = xstrdup(key),
		                     .caller = xstrdup(caller) };
		g->example = json_pack("{s:O?,s:O?,s:O?,s:s?,s:s?}",
		                       "seq", json_object_get(rec, "seq"),
		                       "time", json_object_get(rec, "time"),
		                       "reason", json_object_get(rec, "reason"),
		                       "new_rule", new_rule, "new_reason", new_reason);
		if (g->rule == NULL || g->key == NULL || g->caller == NULL || g->example == NULL)
			r->failed = true;
	}
	g->count++;
}

static bool
replay_one(void *ctx, json_t *rec, const char *file)
{
	struct replay *r = ctx;
	const char *event = pg_json_get_string(rec, "event"), *decision;
	const char *old_rule = pg_json_get_string(rec, "rule"), *key = pg_json_get_string(rec, "key");
	const json_t *caller_json = json_object_get(rec, "caller");
	struct pg_key_match match;
	struct pg_request req = { .key = &match };
	struct pg_decision d;
	struct pg_instant at;
	char who[600];
	const char *env_rule, *fact = NULL, *time_text = pg_json_get_string(rec, "time");
	unsigned char data_sha256[32], data[64];
	const char *data_hex = pg_json_get_string(rec, "data");
	bool was_allowed;
	char life_unknown[256];
	struct pg_login_id *login = NULL;
	const char *claim;

	(void)file;
	if (event == NULL || strcmp(event, "decision") != 0 ||
	    (decision = pg_json_get_string(rec, "decision")) == NULL)
		return true;
	if (r->has_since && !pg_audit_record_since(rec, &r->since))
		return true;
	/* A login is judged by the login: block on the token presented, which
	 * records never hold: its identity is replayed in the decisions after. */
	if (strcmp(pg_json_get_string(rec, "operation") ? pg_json_get_string(rec, "operation") : "",
	           "login") == 0) {
		r->logins++;
		return true;
	}
	r->decisions++;
	if (json_is_true(json_object_get(rec, "fixed"))) {
		r->fixed++;
		return true;
	}
	was_allowed = strcmp(decision, "allow") == 0;
	pg_audit_caller_text(caller_json, who, sizeof who);
	req.caller = caller_from_record(caller_json);
	if (req.caller == NULL || time_text == NULL || !pg_audit_parse_time(time_text, &at) ||
	    !pg_op_from_name(pg_json_get_string(rec, "operation") ? pg_json_get_string(rec, "operation") : "",
	                     &req.op) ||
	    !parse_mech(pg_json_get_string(rec, "mechanism"), &req.mechanism)) {
		add(r, UNREPLAYABLE, "the record lacks the caller, time, operation or a known mechanism",
		    key, who, rec, NULL, NULL);
		goto out;
	}
	if (key == NULL && !json_is_array(json_object_get(rec, "keys_matched"))) {
		/* Unnamed then: matching its object under new URIs would need
		 * the token's and the object's names, which records do not hold. */
		add(r, UNREPLAYABLE, "the old policy named no key for this object", NULL, who, rec,
		    NULL, NULL);
		goto out;
	}
	req.now = (time_t)at.sec;
	/* The data signed, for rules that name it (a grant's data_sha256). */
	if (hex32(pg_json_get_string(rec, "data_sha256"), data_sha256))
		req.data_sha256 = data_sha256;
	if (data_hex != NULL && strlen(data_hex) <= 2 * sizeof data && strlen(data_hex) % 2 == 0 &&
	    pg_hex_decode(data_hex, data, strlen(data_hex) / 2)) {
		req.data = data;
		req.data_len = strlen(data_hex) / 2;
	}
	match_by_name(r->policy, rec, &match);
	req.justify = recorded_justification;
	req.justify_ctx = rec;
	login = login_from_record(json_object_get(rec, "identity"));
	req.login = login;
	pg_policy_decide(r->policy, &req, &d);
	replay_lifecycle(r->policy, rec, &req, &d, life_unknown, sizeof life_unknown);
	replay_counted(r, &req, &d);
	/* Allowed by the new rules, but its certificates (or a size the record
	 * lacks) decide: even an allow that stays an allow is not known to. */
	if (life_unknown[0] != '\0') {
		add(r, UNREPLAYABLE, life_unknown, key, who, rec, d.rule, d.reason);
		goto out;
	}
	if (d.allow == was_allowed) {
		add(r, SAME, NULL, NULL, NULL, rec, NULL, NULL);
		goto out;
	}
	if ((claim = claim_not_recorded(r->policy, json_object_get(rec, "identity"))) != NULL) {
		char why[256];

		snprintf(why, sizeof why, "the policy's identity: conditions name claim %s, which the "
		         "record does not hold (the old policy named no rule on it)", claim);
		add(r, UNREPLAYABLE, why, key, who, rec, d.rule, d.reason);
		goto out;
	}
	env_rule = pg_policy_unreplayable_rule(r->policy, &match, req.op, &fact);
	if (env_rule != NULL) {
		char why[256];

		snprintf(why, sizeof why, "rule %s tests %s, which records do not hold", env_rule, fact);
		add(r, UNREPLAYABLE, why, key, who, rec, d.rule, d.reason);
		goto out;
	}
	if (was_allowed)
		add(r, TO_REFUSED, old_rule, key, who, rec, d.rule, d.reason);
	else
		add(r, TO_ALLOWED, d.rule, d.key_name != NULL ? d.key_name : key, who, rec, d.rule,
		    d.reason);
out:
	pg_caller_free(req.caller);
	pg_login_id_free(login);
	return !r->failed;
}

static const char *const change_title[N_CHANGES] = {
	[TO_REFUSED] = "allowed -> refused",
	[TO_ALLOWED] = "refused -> allowed",
	[UNREPLAYABLE] = "not replayable",
};
static const char *const change_json[N_CHANGES] = {
	[TO_REFUSED] = "allowed_to_refused",
	[TO_ALLOWED] = "refused_to_allowed",
	[UNREPLAYABLE] = "not_replayable",
};

static void
print_text(const struct replay *r, const char *log, const char *config)
{
	char a[400], b[400];

	printf("replay of %s under %s: %zu decisions", pg_esc(log, PG_ESC_VALUE, a, sizeof a),
	       pg_esc(config, PG_ESC_VALUE, b, sizeof b), r->decisions);
	printf(": %zu unchanged, %zu allowed -> refused, %zu refused -> allowed, %zu not replayable, "
	       "%zu refused whatever the policy (fixed)\n", r->counts[SAME], r->counts[TO_REFUSED],
	       r->counts[TO_ALLOWED], r->counts[UNREPLAYABLE], r->fixed);
	if (r->logins > 0)
		printf("  (and %zu logins, judged on the token presented, which records do not hold: "
		       "not replayed)\n", r->logins);
	for (int c = TO_REFUSED; c < N_CHANGES; c++) {
		if (r->counts[c] == 0)
			continue;
		printf("\n%s (%zu):\n", change_title[c], r->counts[c]);
		for (size_t i = 0; i < r->n_groups; i++) {
			const struct group *g = &r->groups[i];
			const char *new_reason = pg_json_get_string(g->example, "new_reason");
			uint64_t seq = 0;

			if (g->change != (enum change)c)
				continue;
			pg_json_u64(json_object_get(g->example, "seq"), &seq);
			/* To refused: the rule that allowed it then; to allowed:
			 * the rule that would allow it now. */
			printf("  %zu x %s%s, key %s, %s\n", g->count,
			       c == TO_REFUSED ? "allowed then by rule " : c == TO_ALLOWED ?
			       "allowed now by rule " : "", pg_esc(g->rule, PG_ESC_TEXT, a, sizeof a),
			       pg_esc(g->key, PG_ESC_VALUE, b, sizeof b), g->caller);
			printf("      e.g. seq %" PRIu64 " at %s", seq,
			       pg_json_get_string(g->example, "time") ? pg_json_get_string(g->example, "time") : "?");
			if (new_reason != NULL)
				printf(": now %s", pg_esc(new_reason, PG_ESC_TEXT, a, sizeof a));
			printf("\n");
		}
	}
}

static int
print_json(const struct replay *r, const char *log, const char *config)
{
	json_t *out = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "log", log, "config", config,
	                        "decisions", (json_int_t)r->decisions, "unchanged",
	                        (json_int_t)r->counts[SAME], "fixed", (json_int_t)r->fixed,
	                        "logins", (json_int_t)r->logins);
	int rc = 0;

	if (out == NULL)
		return ENOMEM;
	for (int c = TO_REFUSED; c < N_CHANGES; c++) {
		json_t *list = json_array();

		for (size_t i = 0; list != NULL && i < r->n_groups; i++) {
			const struct group *g = &r->groups[i];
			if (g->change == (enum change)c)
				json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:I,s:O}",
				                                      c == UNREPLAYABLE ? "why" : "rule", g->rule,
				                                      "key", g->key, "caller", g->caller,
				                                      "count", (json_int_t)g->count,
				                                      "example", g->example));
		}
		if (list == NULL || json_object_set_new(out, change_json[c], list) != 0)
			rc = ENOMEM;
	}
	if (rc != 0) {
		json_decref(out);
		return rc;
	}
	return pg_audit_json_print(out);
}

int
pg_explain_replay(const pg_policy *policy, const char *config, const char *log, const char *since,
                  bool json)
{
	struct replay r = { .policy = policy };
	struct pg_audit_walk_stats stats;
	char err[PATH_MAX + 128];
	int status = 2, rc;

	if (since != NULL) {
		if (!pg_audit_parse_since(since, time(NULL), &r.since)) {
			fprintf(stderr, "p11gate explain: --since wants a time (2026-12-01T00:00:00Z) or a "
			        "span back from now (24h, 7d), not '%s'\n", since);
			return 2;
		}
		r.has_since = true;
	}
	rc = pg_audit_walk(log, replay_one, &r, &stats, err, sizeof err);
	if (rc != 0 || r.failed) {
		fprintf(stderr, "p11gate explain: %s\n", rc != 0 ? err : strerror(ENOMEM));
		goto out;
	}
	if (stats.bad_lines > 0)
		fprintf(stderr, "p11gate explain: %zu line(s) of %s are not records and were skipped; "
		        "run 'p11gate audit verify'\n", stats.bad_lines, log);
	if (json ? print_json(&r, log, config) != 0 : (print_text(&r, log, config), false))
		goto out;
	status = r.counts[TO_REFUSED] > 0 ? 1 : 0;
out:
	for (size_t i = 0; i < r.n_uses; i++)
		free(r.uses[i].name);
	free(r.uses);
	for (size_t i = 0; i < r.n_groups; i++) {
		free(r.groups[i].rule);
		free(r.groups[i].key);
		free(r.groups[i].caller);
		json_decref(r.groups[i].example);
	}
	free(r.groups);
	return status;
}
