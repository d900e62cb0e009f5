/* SPDX-License-Identifier: Apache-2.0
 *
 * Pipeline identity in the policy (issue 13): the login: block (the real
 * token's PIN file, identity-token issuers, credentials, accept_token_pin),
 * a rule's callers.identity condition matched against what the caller
 * proved at C_Login, and the refusal of every use once its token expired.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const login_fields[] = {
	"token_pin_file", "accept_token_pin", "issuers", "credentials", NULL
};
static const char *const issuer_fields[] = {
	"issuer", "audience", "jwks_file", "max_age", NULL
};
static const char *const credential_fields[] = { "secret_sha256", NULL };
static const char *const identity_fields[] = { "issuer", "claims", "credential", NULL };

const struct pg_login_config *
pg_policy_login(const pg_policy *policy)
{
	return &policy->login;
}

/* max_age: seconds, or a number with s, m, h or d. */
static bool
parse_duration(const char *text, int64_t *out)
{
	char *end = NULL;
	long long v;

	if (text[0] < '0' || text[0] > '9')
		return false;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno != 0 || v <= 0 || v > 366LL * 86400)
		return false;
	if (*end == 'm')
		v *= 60, end++;
	else if (*end == 'h')
		v *= 3600, end++;
	else if (*end == 'd')
		v *= 86400, end++;
	else if (*end == 's')
		end++;
	if (*end != '\0' || v > 366LL * 86400)
		return false;
	*out = v;
	return true;
}

/* An absolute path from a scalar, copied; NULL (reported) otherwise. */
static const char *
abs_path(struct pg_load *load, const struct pg_ynode *node, const char *field)
{
	const char *text = pg_yget_string(load->diag, node, field);

	if (text == NULL)
		return NULL;
	if (text[0] != '/') {
		pg_diag_error_at(load->diag, node, "%s must be an absolute path, not '%s'", field, text);
		return NULL;
	}
	return pg_arena_strdup(&load->policy->arena, text);
}

static bool
compile_issuer(struct pg_load *load, struct pg_login_issuer *is, const struct pg_ynode *name,
               const struct pg_ynode *map)
{
	struct pg_diag *diag = load->diag;
	struct pg_arena *arena = &load->policy->arena;
	const struct pg_ynode *node;
	const char *text;

	is->name = pg_arena_strdup(arena, name->value);
	if (is->name == NULL)
		return false;
	if (!pg_name_ok(name->value))
		pg_diag_error_at(diag, name, "issuer name '%s' may use letters, digits, '.', '_' and '-' only",
		                 name->value);
	if (!pg_yexpect(diag, map, PG_Y_MAP, "an issuer"))
		return true;
	pg_ymap_check_keys(diag, map, issuer_fields, "issuer");
	if ((node = pg_ymap_get(map, "issuer")) == NULL)
		pg_diag_error_at(diag, map, "issuer '%s' needs issuer: the iss its tokens carry, exactly "
		                 "(e.g. https://token.actions.githubusercontent.com)", is->name);
	else if ((text = pg_yget_string(diag, node, "issuer")) != NULL &&
	         (is->iss = pg_arena_strdup(arena, text)) == NULL)
		return false;
	if ((node = pg_ymap_get(map, "audience")) == NULL)
		pg_diag_error_at(diag, map, "issuer '%s' needs audience: the aud its tokens must contain "
		                 "(the audience the CI job asks for, e.g. p11gate)", is->name);
	else if ((text = pg_yget_string(diag, node, "audience")) != NULL &&
	         (is->audience = pg_arena_strdup(arena, text)) == NULL)
		return false;
	if ((node = pg_ymap_get(map, "jwks_file")) == NULL) {
		pg_diag_error_at(diag, map, "issuer '%s' needs jwks_file: its RFC 7517 key set, e.g. "
		                 "/etc/p11gate/github.jwks.json", is->name);
	} else if ((is->jwks_file = abs_path(load, node, "jwks_file")) != NULL &&
	           access(is->jwks_file, R_OK) != 0) {
		pg_diag_warning_at(diag, node, "jwks_file %s cannot be read here (%s): every login "
		                   "with issuer '%s' will be refused until it can", is->jwks_file,
		                   strerror(errno), is->name);
	}
	if ((node = pg_ymap_get(map, "max_age")) != NULL &&
	    ((text = pg_yget_string(diag, node, "max_age")) == NULL || !parse_duration(text, &is->max_age)))
		pg_diag_error_at(diag, node, "max_age must be a duration such as 3600, 90s, 15m, 1h or 1d "
		                 "(at most 366d)");
	return true;
}

static bool
compile_credential(struct pg_load *load, struct pg_login_credential *cred,
                   const struct pg_ynode *name, const struct pg_ynode *map)
{
	struct pg_diag *diag = load->diag;
	const struct pg_ynode *node;
	const char *text;

	cred->name = pg_arena_strdup(&load->policy->arena, name->value);
	if (cred->name == NULL)
		return false;
	if (!pg_name_ok(name->value))
		pg_diag_error_at(diag, name, "credential name '%s' may use letters, digits, '.', '_' "
		                 "and '-' only", name->value);
	if (!pg_yexpect(diag, map, PG_Y_MAP, "a credential"))
		return true;
	pg_ymap_check_keys(diag, map, credential_fields, "credential");
	node = pg_ymap_get(map, "secret_sha256");
	if (node == NULL)
		pg_diag_error_at(diag, map, "credential '%s' needs secret_sha256: the SHA-256 of a random "
		                 "secret (openssl rand -hex 32 | tee secret | tr -d '\\n' | sha256sum)",
		                 cred->name);
	else if ((text = pg_yget_string(diag, node, "secret_sha256")) != NULL &&
	         !pg_hex_decode(text, cred->secret_sha256, PG_SHA256_LEN))
		pg_diag_error_at(diag, node, "secret_sha256 must be 64 hex digits, not '%s'", text);
	return true;
}

/* token_pin_file: only p11gate's account should read it. */
static void
check_pin_file(struct pg_load *load, const struct pg_ynode *node, const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		pg_diag_warning_at(load->diag, node, "token_pin_file %s cannot be read here (%s): every "
		                   "login will be refused until it can", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		pg_diag_error_at(load->diag, node, "token_pin_file %s is not a regular file", path);
	else if (st.st_mode & (S_IRWXG | S_IRWXO))
		pg_diag_warning_at(load->diag, node, "token_pin_file %s may be read by others than its "
		                   "owner (mode %03o): chmod 600 it, owned by p11gate's account",
		                   path, (unsigned)(st.st_mode & 0777));
}

bool
pg_login_compile(struct pg_load *load, const struct pg_ynode *login)
{
	struct pg_diag *diag = load->diag;
	struct pg_arena *arena = &load->policy->arena;
	struct pg_login_config *cfg = &load->policy->login;
	const struct pg_ynode *node, *issuers, *creds;
	struct pg_login_issuer *is = NULL;
	struct pg_login_credential *cr = NULL;
	bool accept_given = false;

	if (!pg_yexpect(diag, login, PG_Y_MAP, "login"))
		return true;
	cfg->configured = true;
	pg_ymap_check_keys(diag, login, login_fields, "login");
	if ((node = pg_ymap_get(login, "token_pin_file")) != NULL &&
	    (cfg->token_pin_file = abs_path(load, node, "token_pin_file")) != NULL)
		check_pin_file(load, node, cfg->token_pin_file);
	if ((node = pg_ymap_get(login, "accept_token_pin")) != NULL)
		accept_given = pg_yget_bool(diag, node, "accept_token_pin", &cfg->accept_token_pin);

	issuers = pg_ymap_get(login, "issuers");
	if (issuers != NULL && pg_yexpect(diag, issuers, PG_Y_MAP, "issuers")) {
		is = pg_arena_calloc(arena, issuers->n, sizeof *is);
		if (is == NULL && issuers->n > 0)
			return false;
		for (size_t i = 0; i < issuers->n; i++) {
			if (!compile_issuer(load, &is[i], issuers->kids[2 * i], issuers->kids[2 * i + 1]))
				return false;
			for (size_t j = 0; j < i && is[i].iss != NULL; j++) {
				if (is[j].iss != NULL && strcmp(is[j].iss, is[i].iss) == 0)
					pg_diag_error_at(diag, issuers->kids[2 * i], "issuers '%s' and '%s' have "
					                 "the same issuer %s: one issuer: entry per iss",
					                 is[j].name, is[i].name, is[i].iss);
			}
		}
		cfg->issuers = is;
		cfg->n_issuers = issuers->n;
	}
	creds = pg_ymap_get(login, "credentials");
	if (creds != NULL && pg_yexpect(diag, creds, PG_Y_MAP, "credentials")) {
		cr = pg_arena_calloc(arena, creds->n, sizeof *cr);
		if (cr == NULL && creds->n > 0)
			return false;
		for (size_t i = 0; i < creds->n; i++) {
			if (!compile_credential(load, &cr[i], creds->kids[2 * i], creds->kids[2 * i + 1]))
				return false;
		}
		cfg->credentials = cr;
		cfg->n_credentials = creds->n;
	}
	if (!accept_given)
		cfg->accept_token_pin = cfg->n_issuers == 0 && cfg->n_credentials == 0;
	if ((cfg->n_issuers > 0 || cfg->n_credentials > 0) && cfg->token_pin_file == NULL)
		pg_diag_error_at(diag, login, "login: needs token_pin_file: the file with the real "
		                 "token's user PIN, which p11gate logs in with once a caller proved its "
		                 "identity (e.g. /etc/p11gate/token.pin, mode 0600)");
	if (cfg->n_issuers == 0 && cfg->n_credentials == 0)
		pg_diag_warning_at(diag, login, "login: has no issuers and no credentials: callers log in "
		                   "with the token's own PIN as before");
	return true;
}

static bool
compile_claims(struct pg_load *load, struct pg_identity_cond *id, const struct pg_ynode *map)
{
	struct pg_diag *diag = load->diag;
	struct pg_arena *arena = &load->policy->arena;

	if (!pg_yexpect(diag, map, PG_Y_MAP, "claims"))
		return true;
	if (map->n == 0)
		pg_diag_warning_at(diag, map, "claims: is empty: any token of the issuer matches");
	id->claims = pg_arena_calloc(arena, map->n > 0 ? map->n : 1, sizeof *id->claims);
	if (id->claims == NULL)
		return false;
	for (size_t i = 0; i < map->n; i++) {
		const struct pg_ynode *value = map->kids[2 * i + 1];
		struct pg_identity_claim *c = &id->claims[id->n_claims];
		const char *text;

		if (value->kind != PG_Y_SCALAR) {
			pg_diag_error_at(diag, value, "claim %s must be a string (a glob) or a number, not %s",
			                 map->kids[2 * i]->value, pg_ynode_describe(value));
			continue;
		}
		text = pg_arena_strdup(arena, value->value);
		c->name = pg_arena_strdup(arena, map->kids[2 * i]->value);
		if (text == NULL || c->name == NULL)
			return false;
		pg_glob_init(&c->glob, text);
		id->n_claims++;
	}
	return true;
}

/* A name of the login: block (issuer or credential), with a suggestion. */
static const char *
login_name(struct pg_load *load, const struct pg_ynode *node, bool issuer)
{
	const struct pg_login_config *cfg = &load->policy->login;
	size_t n = issuer ? cfg->n_issuers : cfg->n_credentials;
	const char *text = pg_yget_string(load->diag, node, issuer ? "issuer" : "credential");
	const char *names[65] = { NULL };
	const char *hint;

	if (text == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *name = issuer ? cfg->issuers[i].name : cfg->credentials[i].name;

		if (name != NULL && strcmp(name, text) == 0)
			return name;
		if (i < 64)
			names[i] = name;
	}
	hint = pg_suggest(text, names);
	pg_diag_error_at(load->diag, node, "%s '%s' is not in login.%s%s%s%s", issuer ? "issuer" : "credential",
	                 text, issuer ? "issuers" : "credentials", hint ? " (did you mean '" : "",
	                 hint ? hint : "", hint ? "'?)" : "");
	return NULL;
}

bool
pg_identity_compile(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *map)
{
	struct pg_diag *diag = load->diag;
	struct pg_identity_cond *id = &rule->identity;
	const struct pg_ynode *issuer, *claims, *credential;

	if (!pg_yexpect(diag, map, PG_Y_MAP, "identity"))
		return true;
	pg_ymap_check_keys(diag, map, identity_fields, "identity");
	rule->conds |= 1u << PG_COND_IDENTITY;
	if (!load->policy->login.configured) {
		pg_diag_error_at(diag, map, "rule '%s' names an identity, but the policy has no login: "
		                 "block to verify one (docs/policy.md, \"Pipeline identity\")", rule->name);
		return true;
	}
	issuer = pg_ymap_get(map, "issuer");
	claims = pg_ymap_get(map, "claims");
	credential = pg_ymap_get(map, "credential");
	if ((issuer != NULL) == (credential != NULL)) {
		pg_diag_error_at(diag, map, "identity needs either issuer: (with claims:) or credential:, "
		                 "not %s", issuer != NULL ? "both" : "neither");
		return true;
	}
	if (credential != NULL) {
		if (claims != NULL)
			pg_diag_error_at(diag, claims, "a credential has no claims: give issuer: to match "
			                 "claims");
		id->credential = login_name(load, credential, false);
		return true;
	}
	id->issuer = login_name(load, issuer, true);
	if (claims != NULL)
		return compile_claims(load, id, claims);
	pg_diag_warning_at(diag, map, "rule '%s' matches every token of issuer %s: name the claims "
	                   "that say which pipeline (repository, ref, ...)", rule->name,
	                   id->issuer != NULL ? id->issuer : "?");
	return true;
}

/* The claim names rules match, once each, for the records. */
bool
pg_login_finish(struct pg_load *load)
{
	struct pg_policy *policy = load->policy;
	const char **names;
	size_t n = 0, cap = 0;

	for (size_t r = 0; r < policy->n_rules; r++)
		cap += policy->rules[r].identity.n_claims;
	names = pg_arena_calloc(&policy->arena, cap > 0 ? cap : 1, sizeof *names);
	if (names == NULL)
		return false;
	for (size_t r = 0; r < policy->n_rules; r++) {
		const struct pg_identity_cond *id = &policy->rules[r].identity;

		for (size_t c = 0; c < id->n_claims; c++) {
			bool seen = false;

			for (size_t k = 0; k < n && !seen; k++)
				seen = strcmp(names[k], id->claims[c].name) == 0;
			if (!seen)
				names[n++] = id->claims[c].name;
		}
	}
	policy->login.recorded_claims = names;
	policy->login.n_recorded_claims = n;
	return true;
}

/* ---- evaluation ------------------------------------------------------- */

#define SAY(...) do { if (msg != NULL) snprintf(msg, msg_len, __VA_ARGS__); } while (0)
#define SHOWN(s) pg_esc((s) != NULL ? (s) : "?", PG_ESC_VALUE, (char[200]){ 0 }, 200)

enum pg_tri
pg_identity_eval(const struct pg_rule *rule, struct pg_eval *ev, char *msg, size_t msg_len)
{
	const struct pg_identity_cond *want = &rule->identity;
	const struct pg_login_id *id = ev->req->login;

	if (want->issuer == NULL && want->credential == NULL) {
		SAY("its identity names no issuer or credential of login:");
		return PG_NO;
	}
	if (id == NULL) {
		SAY("the caller did not log in with %s %s", want->issuer ? "an identity token of issuer"
		    : "credential", want->issuer ? want->issuer : want->credential);
		return PG_NO;
	}
	if (want->credential != NULL) {
		if (id->credential != NULL && strcmp(id->credential, want->credential) == 0) {
			SAY("the caller logged in with credential %s", want->credential);
			return PG_YES;
		}
		SAY("the caller logged in as %s %s, not with credential %s",
		    id->credential ? "credential" : "issuer", id->credential ? id->credential : id->issuer,
		    want->credential);
		return PG_NO;
	}
	if (id->issuer == NULL || strcmp(id->issuer, want->issuer) != 0) {
		SAY("the caller logged in as %s %s, not with a token of issuer %s",
		    id->credential ? "credential" : "issuer", id->credential ? id->credential : id->issuer,
		    want->issuer);
		return PG_NO;
	}
	for (size_t i = 0; i < want->n_claims; i++) {
		const struct pg_identity_claim *c = &want->claims[i];
		const struct pg_login_claim *have = pg_login_id_claim(id, c->name);
		bool ok;

		if (have == NULL) {
			SAY("the token of %s (sub %s) has no claim %s", want->issuer, SHOWN(id->sub), c->name);
			return PG_NO;
		}
		ok = have->is_string ? pg_glob_match(&c->glob, have->value)
		                     : strcmp(have->value, c->glob.pattern) == 0;
		if (!ok) {
			SAY("claim %s %s does not match '%s' (token of %s, sub %s)", c->name,
			    SHOWN(have->value), c->glob.pattern, want->issuer, SHOWN(id->sub));
			return PG_NO;
		}
	}
	SAY("the caller's token of %s (sub %s) matches its claims", want->issuer, SHOWN(id->sub));
	return PG_YES;
}

bool
pg_login_expired(const struct pg_request *req, char *out, size_t out_len)
{
	const struct pg_login_id *id = req->login;
	char when[40], sub[200];
	time_t exp;
	struct tm tm;

	if (id == NULL || id->exp == 0 || (int64_t)req->now <= id->exp + PG_LOGIN_SKEW)
		return false;
	exp = (time_t)id->exp;
	if (gmtime_r(&exp, &tm) == NULL || strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof when, "%lld", (long long)id->exp);
	snprintf(out, out_len, "the identity token of %s (sub %s) expired at %s: log in again",
	         id->issuer ? id->issuer : "?", pg_esc(id->sub ? id->sub : "?", PG_ESC_VALUE, sub,
	         sizeof sub), when);
	return true;
}
