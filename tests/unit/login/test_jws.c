/* SPDX-License-Identifier: Apache-2.0
 *
 * The identity-token verifier (src/login/jws.c) against tokens minted by
 * tests/fixture/jwsmint (an independent implementation): every good alg,
 * and every refusal of issue 13 item 6 -- claim and issuer mismatches,
 * times with the clock injected, alg none, HMAC with the public key, a
 * lying alg, another key's signature, unknown kid and issuer, cut, padded
 * and non-canonical tokens -- each with the reason it must give.
 */
#include "p11gate/login.h"

#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW 1800000000LL

static char dir[] = "/tmp/pg-jws-XXXXXX";
static char gh_jwks[300], gl_jwks[300], claims_gh[300], claims_gl[300];
static struct pg_login_issuer issuers[2];

static void
run(const char *cmd)
{
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

/* jwsmint sign ARGS, in dir; the token (malloc'd). */
static char *
mint(const char *args)
{
	char cmd[2048], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *p;

	snprintf(cmd, sizeof cmd, "cd %s && \"%s\" sign --now %lld %s", dir,
	         getenv("P11GATE_JWSMINT"), NOW, args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = getline(&line, &cap, p);
	ck_assert_int_eq(pclose(p), 0);
	ck_assert_int_gt(n, 1);
	line[n - 1] = '\0';
	return line;
}

/* A key cache as the module keeps one (src/module/login.c): every test
 * verifies through it, so each refusal also holds with the keys of
 * earlier verifications cached. */
static struct {
	unsigned char hash[8][32];
	EVP_PKEY *key[8];
	int n, gets, hits, puts;
} cache;

static EVP_PKEY *
cache_get(void *ctx, const unsigned char hash[32])
{
	(void)ctx;
	cache.gets++;
	for (int i = 0; i < cache.n; i++) {
		if (memcmp(cache.hash[i], hash, 32) == 0 && EVP_PKEY_up_ref(cache.key[i])) {
			cache.hits++;
			return cache.key[i];
		}
	}
	return NULL;
}

static void
cache_put(void *ctx, const unsigned char hash[32], EVP_PKEY *key)
{
	(void)ctx;
	cache.puts++;
	if (cache.n < 8 && EVP_PKEY_up_ref(key)) {
		memcpy(cache.hash[cache.n], hash, 32);
		cache.key[cache.n++] = key;
	}
}

static const struct pg_jws_key_cache keys = { NULL, cache_get, cache_put };

static struct pg_login_id *
verify_at(const char *token, long long now, char *why, size_t len)
{
	why[0] = '\0';
	return pg_jws_verify(token, strlen(token), issuers, 2, (time_t)now, &keys, why, len);
}

/* The token is refused with a reason containing want. */
static void
refused(const char *args, long long now, const char *want)
{
	char *token = mint(args), why[512];
	struct pg_login_id *id = verify_at(token, now, why, sizeof why);

	ck_assert_msg(id == NULL, "accepted: %s", args);
	ck_assert_msg(strstr(why, want) != NULL, "%s: reason '%s' lacks '%s'", args, why, want);
	ck_assert_msg(strstr(why, token) == NULL, "the reason quotes the token");
	free(token);
}

static struct pg_login_id *
accepted(const char *args)
{
	char *token = mint(args), why[512];
	struct pg_login_id *id = verify_at(token, NOW, why, sizeof why);

	ck_assert_msg(id != NULL, "%s refused: %s", args, why);
	free(token);
	return id;
}

static void
setup(void)
{
	const char *m = getenv("P11GATE_JWSMINT");
	char cmd[4096];

	ck_assert_ptr_nonnull(m);
	strcpy(dir, "/tmp/pg-jws-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cmd, sizeof cmd,
	         "cd %s && M=\"%s\" && $M keygen rsa2048 rsa.pem && $M keygen p256 ec.pem && "
	         "$M keygen p384 ec384.pem && $M keygen ed25519 ed.pem && $M keygen rsa2048 other.pem && "
	         "$M keygen p256 gl.pem && "
	         "$M jwks gh-rsa=rsa.pem gh-ec=ec.pem gh-384=ec384.pem gh-ed=ed.pem > gh.jwks && "
	         "$M jwks gl-ec=gl.pem > gl.jwks && "
	         "openssl pkey -in rsa.pem -pubout -out rsa.pub && "
	         "cp %s/claims-github.json %s/claims-gitlab.json .",
	         dir, m, getenv("P11GATE_FIXTURE_DIR"), getenv("P11GATE_FIXTURE_DIR"));
	run(cmd);
	snprintf(gh_jwks, sizeof gh_jwks, "%s/gh.jwks", dir);
	snprintf(gl_jwks, sizeof gl_jwks, "%s/gl.jwks", dir);
	snprintf(claims_gh, sizeof claims_gh, "%s/claims-github.json", dir);
	snprintf(claims_gl, sizeof claims_gl, "%s/claims-gitlab.json", dir);
	issuers[0] = (struct pg_login_issuer){ "github", "https://token.actions.githubusercontent.com",
	                                       "p11gate", gh_jwks, 3600 };
	issuers[1] = (struct pg_login_issuer){ "gitlab", "https://gitlab.example.com", "p11gate",
	                                       gl_jwks, 0 };
}

static void
teardown(void)
{
	char cmd[400];

	for (int i = 0; i < cache.n; i++)
		EVP_PKEY_free(cache.key[i]);
	memset(&cache, 0, sizeof cache);

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	run(cmd);
}

#define GH " --ttl 300 claims-github.json"
#define GL " --ttl 300 claims-gitlab.json"

START_TEST(test_good_algs)
{
	static const char *const args[] = {
		"--key rsa.pem --kid gh-rsa" GH, "--key ec.pem --kid gh-ec" GH,
		"--key ec384.pem --kid gh-384" GH, "--key ed.pem --kid gh-ed" GH,
	};

	for (size_t i = 0; i < 4; i++) {
		struct pg_login_id *id = accepted(args[i]);

		ck_assert_str_eq(id->issuer, "github");
		ck_assert_str_eq(id->sub, "repo:acme/app:environment:production");
		ck_assert_int_eq(id->exp, NOW + 300);
		ck_assert_int_eq(id->iat, NOW);
		pg_login_id_free(id);
	}
}
END_TEST

START_TEST(test_claims_kept)
{
	struct pg_login_id *id = accepted("--key gl.pem --kid gl-ec --set jti=j-1" GL);
	const struct pg_login_claim *c;

	ck_assert_str_eq(id->issuer, "gitlab");
	ck_assert_str_eq(id->jti, "j-1");
	c = pg_login_id_claim(id, "project_path");
	ck_assert_ptr_nonnull(c);
	ck_assert(c->is_string);
	ck_assert_str_eq(c->value, "acme/app");
	c = pg_login_id_claim(id, "runner_id");   /* a number stays a number */
	ck_assert_ptr_nonnull(c);
	ck_assert(!c->is_string);
	ck_assert_str_eq(c->value, "27");
	ck_assert_ptr_null(pg_login_id_claim(id, "repository"));
	pg_login_id_free(id);
	/* aud as an array containing the audience */
	id = accepted("--key rsa.pem --kid gh-rsa --set aud='[\"x\",\"p11gate\"]'" GH);
	pg_login_id_free(id);
}
END_TEST

START_TEST(test_times)
{
	refused("--key rsa.pem --kid gh-rsa" GH " --set exp=now-61", NOW, "expired");
	refused("--key rsa.pem --kid gh-rsa" GH, NOW + 361, "expired");
	refused("--key rsa.pem --kid gh-rsa" GH " --set nbf=now+120", NOW, "not yet valid");
	refused("--key rsa.pem --kid gh-rsa" GH " --set iat=now+120", NOW, "not yet valid");
	/* max_age 1h: issued 2h ago, still unexpired */
	refused("--key rsa.pem --kid gh-rsa --ttl 300 --set iat=now-7200 claims-github.json", NOW, "too old");
	refused("--key rsa.pem --kid gh-rsa --ttl 7200 claims-github.json", NOW, "lives too long");
	refused("--key rsa.pem --kid gh-rsa --unset exp claims-github.json", NOW, "no exp");
	refused("--key rsa.pem --kid gh-rsa" GH " --set exp='\"soon\"'", NOW, "not a number");
}
END_TEST

START_TEST(test_within_skew)
{
	struct pg_login_id *id = accepted("--key rsa.pem --kid gh-rsa" GH " --set exp=now-59");

	pg_login_id_free(id);
	id = accepted("--key rsa.pem --kid gh-rsa" GH " --set nbf=now+59");
	pg_login_id_free(id);
}
END_TEST

START_TEST(test_issuer_and_audience)
{
	refused("--key rsa.pem --kid gh-rsa" GH " --set aud=other", NOW, "wrong audience");
	refused("--key rsa.pem --kid gh-rsa" GH " --unset aud", NOW, "wrong audience");
	/* signed by github's key, claiming to be gitlab's */
	refused("--key rsa.pem --kid gh-rsa" GH " --set iss=https://gitlab.example.com", NOW,
	        "signed by a key of issuer github, but its iss is not");
	/* an issuer the policy does not know, with its own key */
	refused("--key other.pem --kid theirs" GH " --set iss=https://evil.example", NOW, "unknown issuer");
	refused("--key rsa.pem --kid nope" GH, NOW, "unknown kid nope: not in issuer github");
}
END_TEST

START_TEST(test_forged)
{
	refused("--key other.pem --kid gh-rsa" GH, NOW, "bad signature");
	refused("--alg none --kid gh-rsa" GH, NOW, "alg none");
	refused("--alg HS256 --hmac-key rsa.pub --kid gh-rsa" GH, NOW, "HMAC is never accepted");
	refused("--alg HS256 --hmac-key gh.jwks --kid gh-rsa" GH, NOW, "HMAC is never accepted");
	/* the header claims RS256 for the EC key */
	refused("--key ec.pem --alg RS256 --sign-as ES256 --kid gh-ec" GH, NOW, "does not fit key gh-ec");
	refused("--key rsa.pem --alg ES256 --sign-as RS256 --kid gh-ec" GH, NOW, "bad signature");
	refused("--key ec.pem --kid gh-rsa" GH, NOW, "alg ES256 does not fit key gh-rsa");
	refused("--key rsa.pem --kid gh-rsa --header '{\"crit\":[\"exp\"]}'" GH, NOW, "crit");
	refused("--key rsa.pem --raw-header '{\"alg\":\"RS256\"}'" GH, NOW, "no kid");
	refused("--key rsa.pem --raw-header '{\"alg\":\"RS256\",\"kid\":\"gh-rsa\",\"kid\":\"x\"}'" GH,
	        NOW, "header is not JSON");
	refused("--key rsa.pem --raw-header '[1]'" GH, NOW, "not a JSON object");
}
END_TEST

START_TEST(test_mangled)
{
	/* RS256's 256 bytes are 342 characters: one less leaves a lone one */
	refused("--key rsa.pem --kid gh-rsa --cut 1" GH, NOW, "base64url");
	refused("--key rsa.pem --kid gh-rsa --cut 2" GH, NOW, "bad signature");
	refused("--key rsa.pem --kid gh-rsa --pad =" GH, NOW, "base64url");
	refused("--key rsa.pem --kid gh-rsa --pad ." GH, NOW, "three base64url parts");
	refused("--key ec.pem --kid gh-ec --pad AA" GH, NOW, "bad signature");
	/* the signature of a token with other claims */
	{
		char *other = mint("--key rsa.pem --kid gh-rsa --set repository=evil/app" GH), args[4096];

		snprintf(args, sizeof args, "--key rsa.pem --kid gh-rsa --sig-from %s" GH, other);
		refused(args, NOW, "bad signature");
		free(other);
	}
}
END_TEST

START_TEST(test_noncanonical_and_bounds)
{
	char *token = mint("--key ed.pem --kid gh-ed" GH), why[512], *big;
	size_t len = strlen(token);
	struct pg_login_id *id;

	/* EdDSA's 64-byte signature is 86 characters; its last carries 2
	 * unused bits: setting one gives a second spelling, refused. */
	ck_assert(pg_jws_looks_like(token, len));
	token[len - 1] = token[len - 1] == 'A' ? 'B' : (char)(token[len - 1] + 1);
	id = verify_at(token, NOW, why, sizeof why);
	ck_assert_ptr_null(id);
	ck_assert_msg(strstr(why, "base64url") != NULL || strstr(why, "bad signature") != NULL, "%s", why);
	free(token);

	big = malloc(PG_JWS_MAX + 2);
	memset(big, 'e', PG_JWS_MAX + 1);
	big[0] = 'e';
	big[1] = 'y';
	big[100] = '.';
	big[200] = '.';
	big[PG_JWS_MAX + 1] = '\0';
	ck_assert(!pg_jws_looks_like(big, PG_JWS_MAX + 1));
	id = pg_jws_verify(big, PG_JWS_MAX + 1, issuers, 2, NOW, NULL, why, sizeof why);
	ck_assert_ptr_null(id);
	ck_assert_msg(strstr(why, "longer than") != NULL, "%s", why);
	free(big);
	ck_assert(!pg_jws_looks_like("1234", 4));
	ck_assert(!pg_jws_looks_like("eyJ.abc", 7));
}
END_TEST

START_TEST(test_jwks_problems)
{
	char why[512], path[400];
	char *token = mint("--key rsa.pem --kid gh-rsa" GH);
	struct pg_login_id *id;
	FILE *f;

	snprintf(path, sizeof path, "%s/bad.jwks", dir);
	f = fopen(path, "w");
	fputs("{\"keys\": 1}", f);
	fclose(f);
	issuers[0].jwks_file = path;
	id = verify_at(token, NOW, why, sizeof why);
	ck_assert_ptr_null(id);
	ck_assert_msg(strstr(why, "no \"keys\" array") != NULL, "%s", why);
	issuers[0].jwks_file = "/nonexistent/gh.jwks";
	id = verify_at(token, NOW, why, sizeof why);
	ck_assert_ptr_null(id);
	ck_assert_msg(strstr(why, "cannot be read") != NULL, "%s", why);
	issuers[0].jwks_file = gh_jwks;
	free(token);
}
END_TEST

/* A key made once serves later logins; a key set that gives the kid
 * another key is another key (the cache is keyed by the key's bytes):
 * tokens of the old key are refused, the new key's accepted. */
START_TEST(test_key_cache)
{
	char cmd[1024];
	struct pg_login_id *id;

	pg_login_id_free(accepted("--key rsa.pem --kid gh-rsa" GH));
	ck_assert_int_eq(cache.puts, 1);
	ck_assert_int_eq(cache.hits, 0);
	pg_login_id_free(accepted("--key rsa.pem --kid gh-rsa" GH));
	ck_assert_int_eq(cache.puts, 1);
	ck_assert_int_eq(cache.hits, 1);
	refused("--key other.pem --kid gh-rsa" GH, NOW, "bad signature");

	snprintf(cmd, sizeof cmd, "cd %s && \"%s\" jwks gh-rsa=other.pem > gh.jwks", dir,
	         getenv("P11GATE_JWSMINT"));
	run(cmd);
	refused("--key rsa.pem --kid gh-rsa" GH, NOW, "bad signature");
	id = accepted("--key other.pem --kid gh-rsa" GH);
	ck_assert_str_eq(id->issuer, "github");
	pg_login_id_free(id);
	ck_assert_int_eq(cache.puts, 2);
}
END_TEST

int
main(void)
{
	Suite *suite = suite_create("jws");
	TCase *tc = tcase_create("jws");
	SRunner *runner;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_good_algs);
	tcase_add_test(tc, test_claims_kept);
	tcase_add_test(tc, test_times);
	tcase_add_test(tc, test_within_skew);
	tcase_add_test(tc, test_issuer_and_audience);
	tcase_add_test(tc, test_forged);
	tcase_add_test(tc, test_mangled);
	tcase_add_test(tc, test_noncanonical_and_bounds);
	tcase_add_test(tc, test_jwks_problems);
	tcase_add_test(tc, test_key_cache);
	suite_add_tcase(suite, tc);
	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
