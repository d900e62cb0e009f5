/* SPDX-License-Identifier: Apache-2.0
 *
 * Pipeline identity at login (issue 13) against the real SoftHSM2 token:
 * a caller logs in with an identity token minted by tests/fixture/jwsmint
 * (or a credential's secret), p11gate logs into the token with the PIN of
 * token_pin_file, and its decisions and records carry the identity.  Bad
 * tokens, the token's own PIN, CKU_SO, logout, an identity that expires
 * between C_SignInit and C_Sign, and ulMaxPinLen.
 */
#include "world.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RSA_ID 0x01
/* openssl rand -hex 16, as an operator makes a credential's secret */
#define SECRET "7d3c1f0a9b8e4d2c6a5f0e1d2c3b4a59"

static const char rules[] =
	"  - name: release-from-tags\n"
	"    effect: allow\n"
	"    keys: [release-rsa]\n"
	"    operations: [sign]\n"
	"    callers:\n"
	"      identity:\n"
	"        issuer: github\n"
	"        claims:\n"
	"          repository: acme/app\n"
	"          ref: \"refs/tags/v*\"\n"
	"          job_workflow_ref: \"acme/app/.github/workflows/release.yml@refs/tags/*\"\n"
	"          environment: production\n"
	"  - name: jenkins-nightly\n"
	"    effect: allow\n"
	"    keys: [release-ec]\n"
	"    operations: [sign]\n"
	"    callers: { identity: { credential: legacy-jenkins } }\n";

struct t {
	struct world w;
	CK_FUNCTION_LIST_PTR f;
	CK_SESSION_HANDLE s;
	char secret_sha256[65];
};

static void
sh(const struct t *t, const char *cmd)
{
	char full[3 * PATH_MAX];

	snprintf(full, sizeof full, "cd '%s' && M='%s' && %s", t->w.dir, getenv("P11GATE_JWSMINT"), cmd);
	ck_assert_msg(system(full) == 0, "failed: %s", cmd);
}

/* A token minted now with these jwsmint sign arguments. */
static char *
mint(const struct t *t, const char *args)
{
	char cmd[3 * PATH_MAX], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *p;

	snprintf(cmd, sizeof cmd, "cd '%s' && '%s' sign %s claims-github.json", t->w.dir,
	         getenv("P11GATE_JWSMINT"), args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = getline(&line, &cap, p);
	ck_assert_int_eq(pclose(p), 0);
	ck_assert_int_gt(n, 100);
	line[n - 1] = '\0';
	return line;
}

static void
write_policy(struct t *t, bool accept_token_pin)
{
	char *base = world_policy_render(&t->w, rules), *keys = strstr(base, "keys:\n"), *full = NULL;

	ck_assert_ptr_nonnull(keys);
	ck_assert_int_gt(asprintf(&full,
	                          "%.*slogin:\n"
	                          "  token_pin_file: %s/token.pin\n"
	                          "  accept_token_pin: %s\n"
	                          "  issuers:\n"
	                          "    github:\n"
	                          "      issuer: https://token.actions.githubusercontent.com\n"
	                          "      audience: p11gate\n"
	                          "      jwks_file: %s/github.jwks.json\n"
	                          "      max_age: 1h\n"
	                          "  credentials:\n"
	                          "    legacy-jenkins: { secret_sha256: \"%s\" }\n"
	                          "%s",
	                          (int)(keys - base), base, t->w.dir, accept_token_pin ? "true" : "false",
	                          t->w.dir, t->secret_sha256, keys), 0);
	world_policy_text(&t->w, full);
	free(full);
	free(base);
}

static void
t_start(struct t *t, const char *name, bool accept_token_pin)
{
	FILE *f;
	char path[PATH_MAX + 32];

	printf("login: %s\n", name);
	fflush(stdout);
	world_new(&t->w, "login", name);
	sh(t, "$M keygen rsa2048 gh.pem && $M keygen rsa2048 other.pem && "
	      "$M jwks gh-1=gh.pem > github.jwks.json && openssl pkey -in gh.pem -pubout -out gh.pub && "
	      "cp \"$P11GATE_FIXTURE_DIR/claims-github.json\" . && "
	      "printf '1234\\n' > token.pin && chmod 600 token.pin && "
	      "printf %s " SECRET " | sha256sum | cut -c1-64 > secret.sha256");
	snprintf(path, sizeof path, "%s/secret.sha256", t->w.dir);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%64s", t->secret_sha256), 1);
	fclose(f);
	write_policy(t, accept_token_pin);
	world_open(&t->w);
	t->f = t->w.f;
	ck_assert_rv(t->f->C_OpenSession(t->w.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &t->s),
	             CKR_OK);
}

static void
t_end(struct t *t)
{
	world_audit_verify(&t->w);
	world_close(&t->w);
}

static CK_RV
login(struct t *t, const char *pin)
{
	return t->f->C_Login(t->s, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin));
}

/* Signs with the RSA key: C_SignInit's answer, then (if CKR_OK) C_Sign's. */
static CK_RV
sign(struct t *t, CK_OBJECT_HANDLE key)
{
	static const unsigned char digest_info[51] = {
		0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
		0x05, 0x00, 0x04, 0x20, 1, 2, 3,
	};
	CK_MECHANISM mech = { CKM_RSA_PKCS, NULL, 0 };
	unsigned char sig[512];
	CK_ULONG sig_len = sizeof sig;
	CK_RV rv = t->f->C_SignInit(t->s, &mech, key);

	if (rv != CKR_OK)
		return rv;
	return t->f->C_Sign(t->s, (CK_BYTE_PTR)digest_info, sizeof digest_info, sig, &sig_len);
}

/* The login record since mark (allow or deny) with these needles. */
static void
expect_login_record(const struct t *t, size_t mark, const char *decision, const char *needle)
{
	char line[8192];

	ck_assert_msg(world_audit_find_since(&t->w, mark, line, sizeof line, "\"operation\":\"login\"",
	                                     decision, needle, NULL),
	              "no login record %s with %s", decision, needle);
}

START_TEST(good_token_signs_and_records_the_identity)
{
	struct t t;
	char *token, line[8192], hex[65];
	CK_OBJECT_HANDLE rsa;
	size_t mark;

	t_start(&t, "good_token_signs_and_records_the_identity", false);
	token = mint(&t, "--key gh.pem --kid gh-1 --ttl 300 --set jti=run-7");
	ck_assert_int_gt(strlen(token), 1000);   /* about 1.6 KB, far over SoftHSM2's 255 */
	mark = world_audit_lines(&t.w);
	ck_assert_rv(login(&t, token), CKR_OK);
	expect_login_record(&t, mark, "\"decision\":\"allow\"", "\"sub\":\"repo:acme/app:environment:production\"");
	rsa = world_find(&t.w, t.s, CKO_PRIVATE_KEY, RSA_ID);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(sign(&t, rsa), CKR_OK);
	world_expect_one_allow(&t.w, mark, "C_Sign");
	ck_assert_msg(world_audit_find_since(&t.w, mark, line, sizeof line, "\"decision\":\"allow\"",
	                                     "\"rule\":\"release-from-tags\"", NULL), "no allow record");
	/* issuer, sub, the claims the policy names, jti, the token's hash */
	ck_assert_msg(strstr(line, "\"identity\":{\"issuer\":\"github\",\"iss\":\"https://token.actions."
	                     "githubusercontent.com\",\"sub\":\"repo:acme/app:environment:production\","
	                     "\"claims\":{\"repository\":\"acme/app\",\"ref\":\"refs/tags/v1.2.0\"") != NULL,
	              "%s", line);
	ck_assert_msg(strstr(line, "\"jti\":\"run-7\"") != NULL, "%s", line);
	ck_assert_msg(strstr(line, "\"actor\"") == NULL, "a claim no rule names was recorded: %s", line);
	{
		/* the token's SHA-256, never the token */
		char cmd[4096];
		FILE *p;

		snprintf(cmd, sizeof cmd, "printf %%s '%s' | sha256sum | cut -c1-64", token);
		p = popen(cmd, "r");
		ck_assert_int_eq(fscanf(p, "%64s", hex), 1);
		pclose(p);
		ck_assert_msg(strstr(line, hex) != NULL, "no token_sha256 %s in %s", hex, line);
	}
	ck_assert_uint_eq(world_audit_count_since(&t.w, 0, strchr(token, '.') + 1, NULL), 0);
	ck_assert(!world_stderr_has(&t.w, strchr(token, '.') + 1));
	free(token);
	t_end(&t);
}
END_TEST

START_TEST(claim_mismatch_is_refused_at_signing)
{
	struct t t;
	char *token, line[8192];
	CK_OBJECT_HANDLE rsa;
	size_t mark;

	t_start(&t, "claim_mismatch_is_refused_at_signing", false);
	token = mint(&t, "--key gh.pem --kid gh-1 --ttl 300 --set ref=refs/heads/main "
	                 "--set job_workflow_ref=acme/app/.github/workflows/release.yml@refs/heads/main");
	ck_assert_rv(login(&t, token), CKR_OK);
	rsa = world_find(&t.w, t.s, CKO_PRIVATE_KEY, RSA_ID);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(sign(&t, rsa), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_SignInit", "sign");
	ck_assert(world_audit_find_since(&t.w, mark, line, sizeof line, "\"decision\":\"deny\"", NULL));
	ck_assert_msg(strstr(line, "claim ref refs/heads/main does not match 'refs/tags/v*'") != NULL, "%s", line);
	ck_assert_msg(strstr(line, "\"ref\":\"refs/heads/main\"") != NULL, "no identity: %s", line);
	ck_assert(world_stderr_has(&t.w, "identity github sub repo:acme/app:environment:production"));
	free(token);
	t_end(&t);
}
END_TEST

START_TEST(bad_tokens_are_refused)
{
	static const struct {
		const char *args, *reason;
	} cases[] = {
		{ "--key gh.pem --kid gh-1 --ttl 300 --set exp=now-120", "expired" },
		{ "--key gh.pem --kid gh-1 --ttl 300 --set nbf=now+300", "not yet valid" },
		{ "--key gh.pem --kid gh-1 --ttl 300 --set iat=now-7200", "too old" },
		{ "--key gh.pem --kid gh-1 --ttl 300 --set aud=someone-else", "wrong audience" },
		{ "--key other.pem --kid theirs --ttl 300 --set iss=https://evil.example", "unknown issuer" },
		{ "--key gh.pem --kid gh-2 --ttl 300", "unknown kid gh-2" },
		{ "--key other.pem --kid gh-1 --ttl 300", "bad signature" },
		{ "--alg none --kid gh-1 --ttl 300", "alg none" },
		{ "--alg HS256 --hmac-key gh.pub --kid gh-1 --ttl 300", "HMAC is never accepted" },
		{ "--key gh.pem --kid gh-1 --ttl 300 --cut 1", "base64url" },
		{ "--key gh.pem --kid gh-1 --ttl 300 --pad AAAA", "bad signature" },
	};
	struct t t;
	CK_SESSION_INFO info;

	t_start(&t, "bad_tokens_are_refused", false);
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *token = mint(&t, cases[i].args), line[4096];
		size_t mark = world_audit_lines(&t.w);

		ck_assert_rv(login(&t, token), CKR_PIN_INCORRECT);
		expect_login_record(&t, mark, "\"decision\":\"deny\"", cases[i].reason);
		ck_assert(world_audit_find_since(&t.w, mark, line, sizeof line, "\"decision\":\"deny\"", NULL));
		ck_assert_msg(strstr(line, "\"identity\"") == NULL, "a refused token's identity: %s", line);
		snprintf(line, sizeof line, "p11gate: refused C_Login: identity token refused: ");
		ck_assert_msg(world_stderr_has(&t.w, line), "no stderr line");
		ck_assert_rv(t.f->C_GetSessionInfo(t.s, &info), CKR_OK);
		ck_assert_uint_eq(info.state, CKS_RW_PUBLIC_SESSION);   /* not logged in */
		free(token);
	}
	t_end(&t);
}
END_TEST

START_TEST(token_pin_refused_unless_accepted)
{
	struct t t;
	CK_SESSION_INFO info;
	size_t mark;

	t_start(&t, "token_pin_refused_unless_accepted", false);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(login(&t, "1234"), CKR_PIN_INCORRECT);
	expect_login_record(&t, mark, "\"decision\":\"deny\"", "the token's own PIN was given");
	ck_assert(world_stderr_has(&t.w, "refused C_Login: the token's own PIN was given"));
	ck_assert_rv(login(&t, "4321"), CKR_PIN_INCORRECT);
	expect_login_record(&t, mark, "\"decision\":\"deny\"", "neither an identity token nor");
	ck_assert_rv(t.f->C_Login(t.s, CKU_SO, (CK_UTF8CHAR_PTR)"12345678", 8), CKR_PIN_INCORRECT);
	expect_login_record(&t, mark, "\"decision\":\"deny\"", "CKU_SO");
	ck_assert_rv(t.f->C_GetSessionInfo(t.s, &info), CKR_OK);
	ck_assert_uint_eq(info.state, CKS_RW_PUBLIC_SESSION);
	t_end(&t);
}
END_TEST

START_TEST(credential_and_logout)
{
	struct t t;
	CK_OBJECT_HANDLE ec;
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	unsigned char digest[32] = { 1 }, sig[128];
	CK_ULONG sig_len = sizeof sig;
	size_t mark;

	t_start(&t, "credential_and_logout", true);
	ck_assert_rv(login(&t, SECRET), CKR_OK);
	ec = world_find(&t.w, t.s, CKO_PRIVATE_KEY, 0x02);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &mech, ec), CKR_OK);
	ck_assert_rv(t.f->C_Sign(t.s, digest, sizeof digest, sig, &sig_len), CKR_OK);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"rule\":\"jenkins-nightly\"",
	                                          "\"identity\":{\"credential\":\"legacy-jenkins\"", NULL), 1);
	/* C_Logout forgets it: a token-PIN login (accept_token_pin: true) has none */
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_Logout(t.s), CKR_OK);
	expect_login_record(&t, mark, "\"decision\":\"allow\"", "logged out");
	ck_assert_rv(login(&t, "1234"), CKR_OK);
	ec = world_find(&t.w, t.s, CKO_PRIVATE_KEY, 0x02);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &mech, ec), CKR_FUNCTION_REJECTED);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "did not log in with credential legacy-jenkins",
	                                          NULL), 1);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"identity\"", NULL), 0);
	t_end(&t);
}
END_TEST

/* Closing the last session logs the token out: the identity goes too. */
START_TEST(last_session_closed_forgets)
{
	struct t t;
	char *token;
	CK_OBJECT_HANDLE rsa;
	size_t mark;

	t_start(&t, "last_session_closed_forgets", true);
	token = mint(&t, "--key gh.pem --kid gh-1 --ttl 300");
	ck_assert_rv(login(&t, token), CKR_OK);
	ck_assert_rv(t.f->C_CloseSession(t.s), CKR_OK);
	ck_assert_rv(t.f->C_OpenSession(t.w.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &t.s),
	             CKR_OK);
	ck_assert_rv(login(&t, "1234"), CKR_OK);
	rsa = world_find(&t.w, t.s, CKO_PRIVATE_KEY, RSA_ID);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(sign(&t, rsa), CKR_FUNCTION_REJECTED);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "did not log in with an identity token", NULL), 1);
	free(token);
	t_end(&t);
}
END_TEST

/* Moves the clock of this process and its children: the test runs under
 * libfaketime (meson test 'login-expiry'), which reads this file at every
 * call (FAKETIME_NO_CACHE). */
static void
clock_move(const char *offset)
{
	const char *path = getenv("FAKETIME_TIMESTAMP_FILE");
	FILE *f;

	ck_assert_msg(path != NULL && getenv("LD_PRELOAD") != NULL,
	              "run under libfaketime: meson test login-expiry");
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_gt(fprintf(f, "%s\n", offset), 0);
	ck_assert_int_eq(fclose(f), 0);
}

/* An identity token that expires between C_SignInit and C_Sign: the
 * signature is refused, naming the expiry.  The clock moves past exp and
 * the 60 s skew between the two calls. */
START_TEST(identity_expires_between_init_and_sign)
{
	static const unsigned char digest_info[51] = { 0x30, 0x31 };
	struct t t;
	CK_MECHANISM mech = { CKM_RSA_PKCS, NULL, 0 };
	unsigned char sig[512];
	CK_ULONG sig_len = sizeof sig;
	CK_OBJECT_HANDLE rsa;
	char *token, line[8192];
	time_t start;
	size_t mark;

	clock_move("+0");
	start = time(NULL);
	t_start(&t, "identity_expires_between_init_and_sign", false);
	token = mint(&t, "--key gh.pem --kid gh-1 --ttl 300");
	ck_assert_rv(login(&t, token), CKR_OK);
	rsa = world_find(&t.w, t.s, CKO_PRIVATE_KEY, RSA_ID);
	ck_assert_rv(t.f->C_SignInit(t.s, &mech, rsa), CKR_OK);
	clock_move("+400");
	ck_assert_msg(time(NULL) >= start + 400, "the clock did not move: is libfaketime loaded?");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_Sign(t.s, (CK_BYTE_PTR)digest_info, sizeof digest_info, sig, &sig_len),
	             CKR_FUNCTION_REJECTED);
	ck_assert(world_audit_find_since(&t.w, mark, line, sizeof line, "\"decision\":\"deny\"", NULL));
	ck_assert_msg(strstr(line, "the identity token of github (sub repo:acme/app:environment:production) "
	                     "expired at ") != NULL && strstr(line, "log in again") != NULL, "%s", line);
	ck_assert(world_stderr_has(&t.w, "expired at"));
	free(token);
	t_end(&t);
	clock_move("+0");
}
END_TEST

/* CKU_CONTEXT_SPECIFIC takes the same proof, naming the identity logged in;
 * another pipeline's token is refused before the token sees anything. */
START_TEST(context_specific_needs_the_same_identity)
{
	struct t t;
	char *mine, *theirs;
	size_t mark;
	CK_RV rv;

	t_start(&t, "context_specific_needs_the_same_identity", false);
	mine = mint(&t, "--key gh.pem --kid gh-1 --ttl 300");
	theirs = mint(&t, "--key gh.pem --kid gh-1 --ttl 300 --set sub=repo:evil/app:ref:refs/heads/x");
	ck_assert_rv(login(&t, mine), CKR_OK);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_Login(t.s, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)theirs, (CK_ULONG)strlen(theirs)),
	             CKR_PIN_INCORRECT);
	expect_login_record(&t, mark, "\"decision\":\"deny\"", "is not the identity logged in");
	ck_assert_rv(t.f->C_Login(t.s, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)"1234", 4), CKR_PIN_INCORRECT);
	/* the same identity reaches the token, with the PIN file's PIN: no
	 * operation waits for it here, and the token's answer comes back */
	rv = t.f->C_Login(t.s, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)mine, (CK_ULONG)strlen(mine));
	ck_assert_msg(rv != CKR_PIN_INCORRECT, "the same identity was refused: %s", world_rv_name(rv));
	free(mine);
	free(theirs);
	t_end(&t);
}
END_TEST

START_TEST(max_pin_len_takes_a_token)
{
	struct t t;
	CK_TOKEN_INFO info;

	t_start(&t, "max_pin_len_takes_a_token", false);
	ck_assert_rv(t.f->C_GetTokenInfo(t.w.slot, &info), CKR_OK);
	ck_assert_uint_ge(info.ulMaxPinLen, 8192);
	t_end(&t);
	/* without a login: block, the token's own answer */
	world_new(&t.w, "login", "max_pin_len_without_login");
	world_policy(&t.w, "  - {name: r, effect: allow, keys: [release-rsa], callers: {users: [root]}}\n");
	world_open(&t.w);
	ck_assert_rv(t.w.f->C_GetTokenInfo(t.w.slot, &info), CKR_OK);
	ck_assert_uint_lt(info.ulMaxPinLen, 8192);
	world_close(&t.w);
}
END_TEST

int
main(void)
{
	Suite *suite = suite_create("login");
	TCase *tc = tcase_create("login");
	TCase *expiry = tcase_create("expiry");

	tcase_set_timeout(tc, 120);
	tcase_set_tags(expiry, "faketime");
	tcase_add_test(tc, good_token_signs_and_records_the_identity);
	tcase_add_test(tc, claim_mismatch_is_refused_at_signing);
	tcase_add_test(tc, bad_tokens_are_refused);
	tcase_add_test(tc, token_pin_refused_unless_accepted);
	tcase_add_test(tc, credential_and_logout);
	tcase_add_test(tc, last_session_closed_forgets);
	tcase_add_test(tc, context_specific_needs_the_same_identity);
	tcase_add_test(tc, max_pin_len_takes_a_token);
	suite_add_tcase(suite, tc);
	/* run by meson test 'login-expiry', under libfaketime */
	tcase_add_test(expiry, identity_expires_between_init_and_sign);
	suite_add_tcase(suite, expiry);
	return world_run_suite(suite);
}
