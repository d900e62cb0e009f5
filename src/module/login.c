/* SPDX-License-Identifier: Apache-2.0
 *
 * Logging in with a pipeline identity (issue 13, docs/policy.md "Pipeline
 * identity").  With a login: block in the policy, the PIN a caller gives
 * C_Login is its proof: an identity token (verified by src/login/jws.c) or
 * a credential's secret.  p11gate records the login, then logs into the
 * real token with the PIN from token_pin_file, and keeps the identity per
 * token for every later decision and record (context.h's login part, owned
 * here).  Without a login: block every call here is forwarded unchanged.
 */
#include "context.h"
#include "calls.h"
#include "p11gate/common.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The real token's PIN: SoftHSM2 takes at most 255 bytes. */
#define PIN_FILE_MAX 256

/* ---- the context's part: identities per slot -------------------------- */

void
pg_login_unref(struct pg_login *login)
{
	if (login == NULL || atomic_fetch_sub_explicit(&login->refs, 1, memory_order_acq_rel) != 1)
		return;
	pg_login_id_free(login->id);
	free(login->record);
	free(login);
}

struct pg_login *
pg_ctx_login(CK_SLOT_ID slot)
{
	struct pg_login *login = NULL;

	pthread_mutex_lock(&pg_ctx.lock);
	for (size_t i = 0; i < PG_LOGIN_SLOTS; i++) {
		if (pg_ctx.login.slots[i].used && pg_ctx.login.slots[i].slot == slot) {
			login = pg_ctx.login.slots[i].login;
			if (login != NULL)
				atomic_fetch_add_explicit(&login->refs, 1, memory_order_relaxed);
			break;
		}
	}
	pthread_mutex_unlock(&pg_ctx.lock);
	return login;
}

/* Makes login (taken; NULL: none) slot's; false when every entry is in use
 * by another token (the login is then refused). */
static bool
login_set(CK_SLOT_ID slot, struct pg_login *login)
{
	struct pg_login *old = NULL;
	size_t free_idx = PG_LOGIN_SLOTS;
	bool done = false;

	pthread_mutex_lock(&pg_ctx.lock);
	for (size_t i = 0; i < PG_LOGIN_SLOTS && !done; i++) {
		if (pg_ctx.login.slots[i].used && pg_ctx.login.slots[i].slot == slot) {
			old = pg_ctx.login.slots[i].login;
			pg_ctx.login.slots[i].login = login;
			pg_ctx.login.slots[i].used = login != NULL;
			done = true;
		} else if (!pg_ctx.login.slots[i].used && free_idx == PG_LOGIN_SLOTS) {
			free_idx = i;
		}
	}
	if (!done && login == NULL)
		done = true;
	if (!done && free_idx < PG_LOGIN_SLOTS) {
		pg_ctx.login.slots[free_idx].used = true;
		pg_ctx.login.slots[free_idx].slot = slot;
		pg_ctx.login.slots[free_idx].login = login;
		done = true;
	}
	pthread_mutex_unlock(&pg_ctx.lock);
	pg_login_unref(old);
	if (!done)
		pg_login_unref(login);
	return done;
}

void
pg_ctx_login_forget(CK_SLOT_ID slot)
{
	login_set(slot, NULL);
}

bool
pg_ctx_logins_held(void)
{
	bool any = false;

	pthread_mutex_lock(&pg_ctx.lock);
	for (size_t i = 0; i < PG_LOGIN_SLOTS && !any; i++)
		any = pg_ctx.login.slots[i].used;
	pthread_mutex_unlock(&pg_ctx.lock);
	return any;
}

void
pg_logins_release(void)
{
	for (size_t i = 0; i < PG_LOGIN_SLOTS; i++) {
		pg_login_unref(pg_ctx.login.slots[i].login);
		pg_ctx.login.slots[i].login = NULL;
		pg_ctx.login.slots[i].used = false;
	}
	for (size_t i = 0; i < PG_LOGIN_KEYS; i++) {
		EVP_PKEY_free(pg_ctx.login.keys[i].key);
		pg_ctx.login.keys[i].key = NULL;
	}
}

/* ---- issuer keys, made once (struct pg_jws_key_cache) ------------------ */

static EVP_PKEY *
key_get(void *unused, const unsigned char spki_sha256[32])
{
	EVP_PKEY *key = NULL;

	(void)unused;
	pthread_mutex_lock(&pg_ctx.lock);
	for (size_t i = 0; i < PG_LOGIN_KEYS && key == NULL; i++) {
		if (pg_ctx.login.keys[i].key != NULL &&
		    memcmp(pg_ctx.login.keys[i].spki_sha256, spki_sha256, 32) == 0 &&
		    EVP_PKEY_up_ref(pg_ctx.login.keys[i].key))
			key = pg_ctx.login.keys[i].key;
	}
	pthread_mutex_unlock(&pg_ctx.lock);
	return key;
}

static void
key_put(void *unused, const unsigned char spki_sha256[32], EVP_PKEY *key)
{
	EVP_PKEY *old = NULL;
	size_t i;

	(void)unused;
	if (!EVP_PKEY_up_ref(key))
		return;
	pthread_mutex_lock(&pg_ctx.lock);
	i = pg_ctx.login.next_key++ % PG_LOGIN_KEYS;
	old = pg_ctx.login.keys[i].key;
	memcpy(pg_ctx.login.keys[i].spki_sha256, spki_sha256, 32);
	pg_ctx.login.keys[i].key = key;
	pthread_mutex_unlock(&pg_ctx.lock);
	EVP_PKEY_free(old);
}

static const struct pg_jws_key_cache issuer_keys = { NULL, key_get, key_put };

/* ---- records ---------------------------------------------------------- */

/* Appends a login record (durable before the answer); CKR_OK, or
 * CKR_FUNCTION_FAILED if the log cannot take it. */
static CK_RV
record(struct pg_regime *regime, const char *function, bool allow, const char *identity,
       const char *reason)
{
	struct pg_audit_record rec;
	uint64_t seq;
	int err;

	pg_regime_prepare(regime);
	if (regime->audit == NULL) {
		pg_log("%s: refusing %s", regime->audit_error, function);
		return CKR_FUNCTION_FAILED;
	}
	rec = pg_audit_record_login(regime->audit, function, allow, identity, reason);
	err = pg_audit_append(regime->audit, &rec, &seq);
	if (err == 0)
		err = pg_audit_sync(regime->audit, seq);
	if (err == 0)
		return CKR_OK;
	pg_log("audit log %s cannot be written (%s): refusing %s", pg_audit_path(regime->audit),
	       strerror(err), function);
	return CKR_FUNCTION_FAILED;
}

/* A refused login: recorded, said on stderr, CKR_PIN_INCORRECT (the
 * caller's proof did not hold, whatever the token would have said). */
static CK_RV
refuse(struct pg_regime *regime, const char *function, const char *reason)
{
	CK_RV rv = record(regime, function, false, NULL, reason);

	if (pg_policy_settings(regime->policy)->caller_messages)
		pg_log("refused %s: %s", function, reason);
	return rv == CKR_OK ? CKR_PIN_INCORRECT : rv;
}

/* ---- proofs ----------------------------------------------------------- */

/* The real token's PIN from token_pin_file (trailing newline dropped);
 * its length, or -1 with why. */
static long
pin_file_read(const char *path, unsigned char pin[PIN_FILE_MAX], char *why, size_t why_len)
{
	bool not_regular = false;
	int fd = path != NULL ? pg_open_regular(path, &not_regular) : -1;
	ssize_t n;

	if (fd < 0) {
		snprintf(why, why_len, "token_pin_file %s cannot be read (%s)", path ? path : "(none)",
		         not_regular ? "not a regular file" : strerror(errno));
		return -1;
	}
	do
		n = read(fd, pin, PIN_FILE_MAX);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0 || n == PIN_FILE_MAX) {
		snprintf(why, why_len, "token_pin_file %s cannot be read (%s)", path,
		         n < 0 ? strerror(errno) : "longer than 255 bytes");
		return -1;
	}
	while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
		n--;
	return (long)n;
}

/* The credential whose secret this is, or NULL. */
static struct pg_login_id *
credential_match(const struct pg_login_config *cfg, const unsigned char *pin, size_t len)
{
	unsigned char hash[PG_SHA256_LEN];
	struct pg_login_id *id = NULL;
	int found = -1;

	if (!pg_sha256(pin, len, hash))
		return NULL;
	/* Every entry compared, in constant time each. */
	for (size_t i = 0; i < cfg->n_credentials; i++) {
		if (CRYPTO_memcmp(hash, cfg->credentials[i].secret_sha256, PG_SHA256_LEN) == 0)
			found = (int)i;
	}
	if (found < 0)
		return NULL;
	id = calloc(1, sizeof *id);
	if (id == NULL || (id->credential = strdup(cfg->credentials[found].name)) == NULL) {
		pg_login_id_free(id);
		return NULL;
	}
	memcpy(id->token_sha256, hash, PG_SHA256_LEN);
	return id;
}

enum proof { PROVED, TOKEN_PIN, REFUSED };

/* What the PIN proves: an identity (PROVED, *out), the token's own PIN to
 * pass on (TOKEN_PIN, when accept_token_pin), or nothing (REFUSED, why). */
static enum proof
prove(const struct pg_login_config *cfg, const unsigned char *pin, size_t len,
      struct pg_login_id **out, char *why, size_t why_len)
{
	unsigned char real[PIN_FILE_MAX];
	char ignored[256];
	long real_len;
	bool is_real;

	*out = NULL;
	if (pg_jws_looks_like((const char *)pin, len)) {
		char reason[400];

		*out = pg_jws_verify((const char *)pin, len, cfg->issuers, cfg->n_issuers,
		                     time(NULL), &issuer_keys, reason, sizeof reason);
		if (*out != NULL)
			return PROVED;
		snprintf(why, why_len, "identity token refused: %s", reason);
		return REFUSED;
	}
	if ((*out = credential_match(cfg, pin, len)) != NULL)
		return PROVED;
	if (cfg->accept_token_pin)
		return TOKEN_PIN;
	real_len = pin_file_read(cfg->token_pin_file, real, ignored, sizeof ignored);
	is_real = real_len >= 0 && (size_t)real_len == len && CRYPTO_memcmp(real, pin, len) == 0;
	OPENSSL_cleanse(real, sizeof real);
	snprintf(why, why_len, is_real ? "the token's own PIN was given, and accept_token_pin is "
	         "false: log in with an identity token or a credential" :
	         "the PIN is neither an identity token nor a credential's secret (and "
	         "accept_token_pin is false)");
	return REFUSED;
}

/* The identity as the records will carry it. */
static struct pg_login *
login_new(struct pg_login_id *id, const struct pg_login_config *cfg)
{
	struct pg_login *login = calloc(1, sizeof *login);

	if (login == NULL) {
		pg_login_id_free(id);
		return NULL;
	}
	atomic_init(&login->refs, 1);
	login->id = id;
	login->record = pg_audit_identity_json_new(id, cfg->recorded_claims, cfg->n_recorded_claims);
	if (login->record == NULL) {
		pg_login_unref(login);
		return NULL;
	}
	return login;
}

/* "github sub repo:acme/app:ref:refs/tags/v1" or "credential legacy-jenkins". */
static void
who(const struct pg_login_id *id, char *out, size_t len)
{
	char sub[200];

	if (id->credential != NULL)
		snprintf(out, len, "credential %s", id->credential);
	else
		snprintf(out, len, "issuer %s, sub %s", id->issuer,
		         pg_esc(id->sub ? id->sub : "?", PG_ESC_VALUE, sub, sizeof sub));
}

/* ---- the calls -------------------------------------------------------- */

struct login_call {
	const char *function;
	CK_SESSION_HANDLE session;
	CK_USER_TYPE user_type;
	CK_UTF8CHAR_PTR pin;
	CK_ULONG pin_len;
	const void *args;            /* to forward unchanged */
	CK_RV (*forward)(const pg_function_list_3_0 *, const void *);
};

/* Logs into the real token with token_pin_file's PIN. */
static CK_RV
token_login(const pg_function_list_3_0 *lower, const struct login_call *c,
            const struct pg_login_config *cfg, char *why, size_t why_len)
{
	unsigned char pin[PIN_FILE_MAX];
	long len = pin_file_read(cfg->token_pin_file, pin, why, why_len);
	CK_RV rv;

	if (len < 0)
		return CKR_FUNCTION_FAILED;
	rv = lower->C_Login(c->session, c->user_type, pin, (CK_ULONG)len);
	OPENSSL_cleanse(pin, sizeof pin);
	/* Logged in already (by an earlier identity of this application):
	 * the new identity replaces the old one. */
	if (rv == CKR_USER_ALREADY_LOGGED_IN && c->user_type == CKU_USER)
		rv = CKR_OK;
	if (rv != CKR_OK)
		snprintf(why, why_len, "the token answered %s to p11gate's login with the PIN of "
		         "token_pin_file %s", pg_rv_name(rv) ? pg_rv_name(rv) : "an error",
		         cfg->token_pin_file);
	return rv;
}

static CK_RV
login_judged(const pg_function_list_3_0 *lower, struct pg_regime *regime, const struct login_call *c)
{
	const struct pg_login_config *cfg = pg_policy_login(regime->policy);
	unsigned char *pin = NULL;
	struct pg_login_id *id = NULL;
	struct pg_login *login = NULL, *current = NULL;
	CK_SESSION_INFO info;
	char why[600], name[300];
	CK_RV rv;

	if (c->user_type == CKU_SO) {
		/* The SO PIN is the token's own: with identities required, the
		 * token is administered directly, not through the gate. */
		if (cfg->accept_token_pin)
			return c->forward(lower, c->args);
		return refuse(regime, c->function, "CKU_SO: the security officer logs in with the token's "
		              "own PIN, and accept_token_pin is false");
	}
	if (c->user_type != CKU_USER && c->user_type != CKU_CONTEXT_SPECIFIC)
		return c->forward(lower, c->args);   /* the token's answer to a type it does not know */
	if (c->pin == NULL || c->pin_len == 0) {
		/* A protected authentication path: no PIN, nothing proved. */
		if (cfg->accept_token_pin)
			return c->forward(lower, c->args);
		return refuse(regime, c->function, "no PIN given (protected authentication path), so no "
		              "identity was proved");
	}
	if (c->pin_len > PG_JWS_MAX)
		return refuse(regime, c->function, "the PIN is longer than any identity token p11gate takes");
	rv = lower->C_GetSessionInfo(c->session, &info);
	if (rv != CKR_OK)
		return rv;
	pin = malloc(c->pin_len);
	if (pin == NULL)
		return CKR_HOST_MEMORY;
	if (pg_safe_copy(pin, c->pin, c->pin_len) != 0) {
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	switch (prove(cfg, pin, c->pin_len, &id, why, sizeof why)) {
	case TOKEN_PIN:
		rv = c->forward(lower, c->args);
		if (rv == CKR_OK && c->user_type == CKU_USER) {
			pg_ctx_login_forget(info.slotID);
			rv = record(regime, c->function, true, NULL, "logged in with the token's own PIN "
			            "(accept_token_pin: true): no identity");
		}
		goto out;
	case REFUSED:
		rv = refuse(regime, c->function, why);
		goto out;
	case PROVED:
		break;
	}
	who(id, name, sizeof name);
	if (c->user_type == CKU_CONTEXT_SPECIFIC) {
		/* Re-authentication for one key use: the same proof as the
		 * login in force. */
		current = pg_ctx_login(info.slotID);
		if (current == NULL || (current->id->credential != NULL) != (id->credential != NULL) ||
		    strcmp(current->id->credential ? current->id->credential : current->id->issuer,
		           id->credential ? id->credential : id->issuer) != 0 ||
		    (id->sub != NULL && (current->id->sub == NULL || strcmp(current->id->sub, id->sub) != 0))) {
			snprintf(why, sizeof why, "CKU_CONTEXT_SPECIFIC: %s is not the identity logged in", name);
			rv = refuse(regime, c->function, why);
			goto out;
		}
	}
	login = login_new(id, cfg);
	id = NULL;
	if (login == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	/* Recorded before the token acts. */
	snprintf(why, sizeof why, "logged in as %s", name);
	rv = record(regime, c->function, true, login->record, why);
	if (rv != CKR_OK)
		goto out;
	rv = token_login(lower, c, cfg, why, sizeof why);
	if (rv != CKR_OK) {
		record(regime, c->function, false, login->record, why);
		pg_log("%s failed: %s", c->function, why);
		goto out;
	}
	if (c->user_type == CKU_USER) {
		atomic_fetch_add_explicit(&login->refs, 1, memory_order_relaxed);
		if (!login_set(info.slotID, login)) {
			lower->C_Logout(c->session);
			record(regime, c->function, false, login->record, "too many tokens logged in at once");
			rv = CKR_FUNCTION_FAILED;
		}
	}
out:
	pg_login_unref(current);
	pg_login_unref(login);
	pg_login_id_free(id);
	if (pin != NULL)
		OPENSSL_cleanse(pin, c->pin_len);
	free(pin);
	return rv;
}

static CK_RV
login_call(const struct login_call *c)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct pg_regime *regime;
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	regime = pg_ctx_regime();
	if (regime == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (!pg_policy_login(regime->policy)->configured)
		rv = c->forward(lower, c->args);
	else
		rv = login_judged(lower, regime, c);
	/* A token may number its objects anew at a change of login state:
	 * what a handle named before is forgotten (keymemo.c). */
	if (rv == CKR_OK && c->user_type != CKU_CONTEXT_SPECIFIC)
		pg_ctx_objects_changed();
	pg_regime_unref(regime);
	return rv;
}

CK_RV
pg_gate_C_Login(const pg_args_C_Login *a)
{
	const struct login_call c = {
		a->function, a->session, a->user_type, a->pin, a->pin_len, a, pg_call_C_Login,
	};
	return login_call(&c);
}

/* A user name means nothing to an identity token: it is proved the same
 * way, and p11gate logs into the token with C_Login. */
CK_RV
pg_gate_C_LoginUser(const pg_args_C_LoginUser *a)
{
	const struct login_call c = {
		a->function, a->session, a->user_type, a->pin, a->pin_len, a, pg_call_C_LoginUser,
	};
	return login_call(&c);
}

CK_RV
pg_gate_C_Logout(const pg_args_C_Logout *a)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct pg_login *login;
	CK_SESSION_INFO info;
	bool have_slot;
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	have_slot = lower->C_GetSessionInfo(a->session, &info) == CKR_OK;
	rv = pg_call_C_Logout(lower, a);
	if (rv == CKR_OK)
		pg_ctx_objects_changed();     /* as at C_Login */
	if (!have_slot || (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN))
		return rv;
	login = pg_ctx_login(info.slotID);
	if (login != NULL) {
		struct pg_regime *regime = pg_ctx_regime();

		pg_ctx_login_forget(info.slotID);
		if (regime != NULL)
			record(regime, a->function, true, login->record, "logged out: the identity is forgotten");
		pg_regime_unref(regime);
		pg_login_unref(login);
	}
	return rv;
}

/* An identity token is about 1 KB, longer than a token's own PINs
 * (SoftHSM2: 255): with a login: block that takes them, ulMaxPinLen says
 * so, for clients that check a PIN's length before they pass it. */
CK_RV
pg_gate_C_GetTokenInfo(const pg_args_C_GetTokenInfo *a)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct pg_regime *regime;
	CK_RV rv;

	rv = pg_call_C_GetTokenInfo(lower, a);
	if (rv != CKR_OK || a->info == NULL)
		return rv;
	regime = pg_ctx_regime();
	if (regime != NULL) {
		const struct pg_login_config *cfg = pg_policy_login(regime->policy);

		if (cfg->configured && (cfg->n_issuers > 0 || cfg->n_credentials > 0) &&
		    a->info->ulMaxPinLen < PG_JWS_MAX)
			a->info->ulMaxPinLen = PG_JWS_MAX;
		pg_regime_unref(regime);
	}
	return rv;
}
