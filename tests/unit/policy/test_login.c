/* SPDX-License-Identifier: Apache-2.0
 *
 * The login: block and callers.identity (issue 13): what `check` refuses
 * and where, the defaults, and decisions over verified identities --
 * claim globs, non-string claims, credentials, no login, the wrong issuer,
 * and a token past its exp refusing every use with a reason naming it.
 */
#include "helpers.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOGIN_HEAD                                                                        \
	PG_TEST_HEAD                                                                      \
	"login:\n"                                                                        \
	"  token_pin_file: /nonexistent/token.pin\n"                                      \
	"  issuers:\n"                                                                    \
	"    github:\n"                                                                   \
	"      issuer: https://token.actions.githubusercontent.com\n"                     \
	"      audience: p11gate\n"                                                       \
	"      jwks_file: /nonexistent/github.jwks.json\n"                                \
	"      max_age: 1h\n"                                                             \
	"    gitlab: {issuer: https://gitlab.example.com, audience: p11gate, jwks_file: /nonexistent/gl.json}\n" \
	"  credentials:\n"                                                                \
	"    legacy-jenkins: { secret_sha256: \"" SECRET_HEX "\" }\n"
#define SECRET_HEX "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"

static const char good_rules[] =
	"keys:\n"
	"  release: {uri: \"pkcs11:object=release\", owner: t}\n"
	"  nightly: {uri: \"pkcs11:object=nightly\", owner: t}\n"
	"  gl: {uri: \"pkcs11:object=gl\", owner: t}\n"
	"rules:\n"
	"  - name: release-from-tags\n"
	"    effect: allow\n"
	"    keys: [release]\n"
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
	"    keys: [nightly]\n"
	"    callers: { identity: { credential: legacy-jenkins } }\n"
	"  - name: gitlab-runner\n"
	"    effect: allow\n"
	"    keys: [gl]\n"
	"    callers: { identity: { issuer: gitlab, claims: { runner_id: 27, ref_protected: \"true\" } } }\n";

static pg_policy *policy;

static void
setup(void)
{
	struct pg_test_capture cap;
	char yaml[8192];

	snprintf(yaml, sizeof yaml, "%s%s", LOGIN_HEAD, good_rules);
	policy = pg_test_load(yaml, &cap);
	if (policy == NULL)
		pg_test_dump(&cap);
	ck_assert_ptr_nonnull(policy);
}

static void
teardown(void)
{
	pg_policy_unref(policy);
}

static struct pg_login_claim gh_claims[] = {
	{ "repository", "acme/app", true },
	{ "ref", "refs/tags/v1.2.0", true },
	{ "job_workflow_ref", "acme/app/.github/workflows/release.yml@refs/tags/v1.2.0", true },
	{ "environment", "production", true },
	{ "runner_id", "27", false },
};

static struct pg_login_id gh = {
	.issuer = "github", .iss = "https://token.actions.githubusercontent.com",
	.sub = "repo:acme/app:environment:production", .jti = "j1",
	.iat = 1780000000, .exp = 1780000300, .claims = gh_claims, .n_claims = 5,
};

static bool
decide(const char *key, const struct pg_login_id *login, time_t now, struct pg_decision *d)
{
	struct pg_caller caller = { .uid_trust = PG_ID_ASSERTED, .uid = 1001 };
	struct pg_key_match m = { .n = 1, .pin_mismatch = -1 };
	struct pg_request req = { .op = PG_OP_SIGN, .mechanism = CKM_ECDSA, .key = &m,
	                          .caller = &caller, .login = login, .now = now };

	ck_assert_int_ge(pg_policy_key_find(policy, key), 0);
	m.idx[0] = (unsigned)pg_policy_key_find(policy, key);
	pg_policy_decide(policy, &req, d);
	return d->allow;
}

START_TEST(test_config)
{
	const struct pg_login_config *cfg = pg_policy_login(policy);

	ck_assert(cfg->configured);
	ck_assert(!cfg->accept_token_pin);   /* issuers exist: default false */
	ck_assert_int_eq(cfg->n_issuers, 2);
	ck_assert_str_eq(cfg->issuers[0].name, "github");
	ck_assert_int_eq(cfg->issuers[0].max_age, 3600);
	ck_assert_int_eq(cfg->issuers[1].max_age, 0);
	ck_assert_int_eq(cfg->n_credentials, 1);
	ck_assert_int_eq(cfg->credentials[0].secret_sha256[0], 0x2b);
	ck_assert_str_eq(cfg->token_pin_file, "/nonexistent/token.pin");
	/* the claims rules name, once each, in order */
	ck_assert_int_eq(cfg->n_recorded_claims, 6);
	ck_assert_str_eq(cfg->recorded_claims[0], "repository");
	ck_assert_str_eq(cfg->recorded_claims[5], "ref_protected");
}
END_TEST

START_TEST(test_decisions)
{
	struct pg_decision d;
	time_t now = 1780000100;

	ck_assert_msg(decide("release", &gh, now, &d), "%s", d.reason);
	ck_assert_str_eq(d.rule, "release-from-tags");
	/* a branch, not a tag */
	gh_claims[1].value = "refs/heads/main";
	ck_assert(!decide("release", &gh, now, &d));
	ck_assert_str_eq(d.reason, "no rule allows it; nearest: rule release-from-tags: claim ref "
	                 "refs/heads/main does not match 'refs/tags/v*' (token of github, sub "
	                 "repo:acme/app:environment:production)");
	gh_claims[1].value = "refs/tags/v1.2.0";
	/* each claim mismatching in turn */
	for (size_t i = 0; i < 4; i++) {
		char *keep = gh_claims[i].value;

		gh_claims[i].value = "other";
		ck_assert(!decide("release", &gh, now, &d));
		ck_assert_msg(strstr(d.reason, gh_claims[i].name) != NULL, "%s", d.reason);
		gh_claims[i].value = keep;
	}
	/* a claim absent */
	gh.n_claims = 3;
	ck_assert(!decide("release", &gh, now, &d));
	ck_assert_msg(strstr(d.reason, "has no claim environment") != NULL, "%s", d.reason);
	gh.n_claims = 5;
	/* no login at all */
	ck_assert(!decide("release", NULL, now, &d));
	ck_assert_msg(strstr(d.reason, "did not log in with an identity token of issuer github") != NULL,
	              "%s", d.reason);
	/* github's token is no credential, and no gitlab token */
	ck_assert(!decide("nightly", &gh, now, &d));
	ck_assert_msg(strstr(d.reason, "not with credential legacy-jenkins") != NULL, "%s", d.reason);
	ck_assert(!decide("gl", &gh, now, &d));
	ck_assert_msg(strstr(d.reason, "not with a token of issuer gitlab") != NULL, "%s", d.reason);
}
END_TEST

START_TEST(test_nonstring_and_credential)
{
	struct pg_login_claim gl_claims[] = {
		{ "runner_id", "27", false }, { "ref_protected", "true", true },
	};
	struct pg_login_id gl = { .issuer = "gitlab", .exp = 1780000300, .claims = gl_claims, .n_claims = 2 };
	struct pg_login_id jenkins = { .credential = "legacy-jenkins" };
	struct pg_decision d;

	ck_assert_msg(decide("gl", &gl, 1780000100, &d), "%s", d.reason);
	/* a number is compared exactly, as text: "27" the string is not 27 */
	gl_claims[0].is_string = true;
	gl_claims[0].value = "2*";
	ck_assert(!decide("gl", &gl, 1780000100, &d));
	gl_claims[0].is_string = false;
	gl_claims[0].value = "270";
	ck_assert(!decide("gl", &gl, 1780000100, &d));
	ck_assert_msg(decide("nightly", &jenkins, 1780000100, &d), "%s", d.reason);
	/* a credential has no exp: never expires */
	ck_assert(decide("nightly", &jenkins, 2000000000, &d));
}
END_TEST

START_TEST(test_expiry)
{
	struct pg_decision d;

	/* within the 60 s skew after exp */
	ck_assert(decide("release", &gh, 1780000300 + 60, &d));
	ck_assert(!decide("release", &gh, 1780000300 + 61, &d));
	ck_assert_ptr_null(d.rule);
	ck_assert_str_eq(d.reason, "the identity token of github (sub repo:acme/app:environment:"
	                 "production) expired at 2026-05-28T20:31:40Z: log in again");
}
END_TEST

struct bad_case {
	const char *yaml;
	unsigned long line, column;
	const char *text;
};

START_TEST(test_errors)
{
	static const struct bad_case cases[] = {
		{ "login: 3\n", 3, 8, "login must be" },
		{ "login: {tokn_pin_file: /x}\n", 3, 9, "token_pin_file" },
		{ "login:\n  issuers:\n    gh: {issuer: a, audience: b, jwks_file: /x}\n", 4, 3,
		  "needs token_pin_file" },
		{ "login:\n  token_pin_file: rel.pin\n", 4, 19, "absolute path" },
		{ "login:\n  token_pin_file: /p\n  issuers:\n    gh: {audience: b, jwks_file: /x}\n", 6, 9,
		  "needs issuer:" },
		{ "login:\n  token_pin_file: /p\n  issuers:\n    gh: {issuer: a, jwks_file: /x}\n", 6, 9,
		  "needs audience:" },
		{ "login:\n  token_pin_file: /p\n  issuers:\n    gh: {issuer: a, audience: b}\n", 6, 9,
		  "needs jwks_file:" },
		{ "login:\n  token_pin_file: /p\n  issuers:\n    gh: {issuer: a, audience: b, jwks_file: /x, max_age: soon}\n",
		  6, 58, "max_age must be a duration" },
		{ "login:\n  token_pin_file: /p\n  issuers:\n    a: {issuer: i, audience: b, jwks_file: /x}\n"
		  "    b: {issuer: i, audience: b, jwks_file: /x}\n", 7, 5, "the same issuer" },
		{ "login:\n  token_pin_file: /p\n  credentials:\n    c: {secret_sha256: abc}\n", 6, 24,
		  "64 hex digits" },
		{ "login:\n  token_pin_file: /p\n  accept_token_pin: maybe\n", 5, 21, "true or false" },
	};
	static const struct bad_case rule_cases[] = {
		{ "callers: {identity: {issuer: githb, claims: {a: b}}}", 0, 0, "did you mean 'github'" },
		{ "callers: {identity: {credential: nope}}", 0, 0, "credential 'nope' is not in login.credentials" },
		{ "callers: {identity: {issuer: github, credential: legacy-jenkins}}", 0, 0, "not both" },
		{ "callers: {identity: {claims: {a: b}}}", 0, 0, "not neither" },
		{ "callers: {identity: {issuer: github, claims: {a: [b]}}}", 0, 0, "must be a string" },
		{ "callers: {identity: {credential: legacy-jenkins, claims: {a: b}}}", 0, 0, "has no claims" },
		{ "callers: {identity: {issuer: github, clams: {a: b}}}", 0, 0, "claims" },
	};
	struct pg_test_capture cap;
	char yaml[8192];

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		snprintf(yaml, sizeof yaml, PG_TEST_HEAD "%s", cases[i].yaml);
		ck_assert_ptr_null(pg_test_load(yaml, &cap));
		if (pg_test_find(&cap, PG_DIAG_ERROR, cases[i].line, cases[i].column, cases[i].text) == NULL) {
			pg_test_dump(&cap);
			ck_abort_msg("case %zu: no error at %lu:%lu with '%s'", i, cases[i].line,
			             cases[i].column, cases[i].text);
		}
	}
	for (size_t i = 0; i < sizeof rule_cases / sizeof *rule_cases; i++) {
		bool found = false;

		snprintf(yaml, sizeof yaml, LOGIN_HEAD "keys:\n  k: {uri: \"pkcs11:object=k\", owner: t}\n"
		         "rules:\n  - {name: r, effect: allow, keys: [k], %s}\n", rule_cases[i].yaml);
		ck_assert_ptr_null(pg_test_load(yaml, &cap));
		for (size_t k = 0; k < cap.n; k++)
			found = found || (cap.diags[k].severity == PG_DIAG_ERROR && cap.diags[k].line == 17 &&
			                  strstr(cap.diags[k].message, rule_cases[i].text) != NULL);
		if (!found) {
			pg_test_dump(&cap);
			ck_abort_msg("rule case %zu: no error on line 17 with '%s'", i, rule_cases[i].text);
		}
	}
	/* identity without a login: block */
	ck_assert_ptr_null(pg_test_load(PG_TEST_HEAD "keys:\n  k: {uri: \"pkcs11:object=k\", owner: t}\n"
	                                "rules:\n  - {name: r, effect: allow, keys: [k], callers: "
	                                "{identity: {credential: x}}}\n", &cap));
	ck_assert_ptr_nonnull(pg_test_find(&cap, PG_DIAG_ERROR, 6, 61, "no login: block"));
}
END_TEST

START_TEST(test_defaults)
{
	struct pg_test_capture cap;
	pg_policy *p = pg_test_load(PG_TEST_HEAD "login: {token_pin_file: /p}\n", &cap);

	ck_assert_ptr_nonnull(p);
	ck_assert(pg_policy_login(p)->configured);
	ck_assert(pg_policy_login(p)->accept_token_pin);   /* nothing else to log in with */
	ck_assert_ptr_nonnull(pg_test_find(&cap, PG_DIAG_WARNING, 3, 8, "no issuers and no credentials"));
	pg_policy_unref(p);
	p = pg_test_load(PG_TEST_HEAD "keys: {}\n", &cap);
	ck_assert_ptr_nonnull(p);
	ck_assert(!pg_policy_login(p)->configured);
	pg_policy_unref(p);
}
END_TEST

int
main(void)
{
	Suite *suite = suite_create("login");
	TCase *tc = tcase_create("login");
	SRunner *runner;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_config);
	tcase_add_test(tc, test_decisions);
	tcase_add_test(tc, test_nonstring_and_credential);
	tcase_add_test(tc, test_expiry);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_defaults);
	suite_add_tcase(suite, tc);
	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
