/* SPDX-License-Identifier: Apache-2.0
 *
 * Which key a use is about, through p11gate.so over a real SoftHSM2 token:
 * the record and the refusal name the key the deciding rule names when two
 * policy keys match one object, and `p11gate audit find --key` finds a use
 * by any key the object matched (issue 11, item 4).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "world.h"

static const CK_BYTE RSA_ID = 0x01;

/* The pair: a token-wide key first in the file, the pinned RSA
 * key second; only the pinned key may sign, and only one mechanism. */
static void
two_names_policy(const struct world *w)
{
	char *text = NULL;

	ck_assert_int_gt(asprintf(&text,
	                          "version: 1\n"
	                          "module: %s\n"
	                          "audit:\n"
	                          "  file: %s\n"
	                          "keys:\n"
	                          "  release:\n"
	                          "    uri: \"pkcs11:token=release\"\n"
	                          "    owner: release-engineering\n"
	                          "  release-rsa:\n"
	                          "    uri: \"pkcs11:token=release;object=codesign-rsa\"\n"
	                          "    public_key_sha256: \"%s\"\n"
	                          "    owner: release-engineering\n"
	                          "rules:\n"
	                          "  - name: ci-signs\n"
	                          "    effect: allow\n"
	                          "    keys: [release-rsa]\n"
	                          "    operations: [sign]\n"
	                          "    mechanisms: [CKM_SHA256_RSA_PKCS]\n"
	                          "  - name: no-decrypt-on-the-token\n"
	                          "    effect: deny\n"
	                          "    keys: [release]\n"
	                          "    operations: [decrypt]\n",
	                          getenv("SOFTHSM_MODULE"), w->audit, w->rsa_pin), 0);
	world_policy_text(w, text);
	free(text);
}

/* `p11gate audit find --key KEY` on the world's log: exit status, and the
 * output in out. */
static int
audit_find_key(const struct world *w, const char *key, char *out, size_t out_len)
{
	char cmd[3 * PATH_MAX];
	size_t n;
	FILE *p;
	int status;

	snprintf(cmd, sizeof cmd, "'%s' audit find --key '%s' '%s' 2>&1", getenv("P11GATE_CLI"), key,
	         w->audit);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, out_len - 1, p);
	out[n] = '\0';
	status = pclose(p);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(record_names_the_deciding_rules_key)
{
	struct world w;
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE data[] = "a release artefact", sig[512];
	CK_ULONG sig_len = sizeof sig;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE rsa;
	char line[8192], out[8192];
	size_t mark;

	world_new(&w, "keys", "record_names_the_deciding_rules_key");
	two_names_policy(&w);
	world_open(&w);
	s = world_session(&w);
	rsa = world_find(&w, s, CKO_PRIVATE_KEY, RSA_ID);
	mark = world_audit_lines(&w);
	ck_assert_rv(w.f->C_SignInit(s, &mech, rsa), CKR_OK);
	ck_assert_rv(w.f->C_Sign(s, data, sizeof data, sig, &sig_len), CKR_OK);
	ck_assert(world_verify(&w, "rsa", data, sizeof data, sig, sig_len));
	world_expect_one_allow(&w, mark, "C_Sign");
	ck_assert(world_audit_find_since(&w, mark, line, sizeof line, "\"decision\":\"allow\"", NULL));
	ck_assert_msg(strstr(line, "\"rule\":\"ci-signs\"") != NULL &&
	              strstr(line, "\"key\":\"release-rsa\",\"key_uri\":\"pkcs11:token=release;"
	                     "object=codesign-rsa\",\"keys_matched\":[\"release\",\"release-rsa\"],") != NULL,
	              "the allow record does not name release-rsa and both matched keys: %s", line);

	/* The auditor's question, by either name. */
	ck_assert_int_eq(audit_find_key(&w, "release-rsa", out, sizeof out), 0);
	ck_assert_msg(strstr(out, " allow operation=sign key=release-rsa ") != NULL &&
	              strstr(out, " result ") != NULL, "find --key release-rsa: %s", out);
	ck_assert_int_eq(audit_find_key(&w, "release", out, sizeof out), 0);
	ck_assert_msg(strstr(out, " allow operation=sign key=release-rsa ") != NULL,
	              "find --key release: %s", out);
	ck_assert_rv(w.f->C_CloseSession(s), CKR_OK);
	world_audit_verify(&w);
	world_close(&w);
}
END_TEST

/* Refused: the deny record and the stderr line name the key of the rule
 * that refused (or of the nearest rule), not the first key in the file. */
START_TEST(refusals_name_the_rules_key)
{
	struct world w;
	CK_MECHANISM pkcs = { CKM_RSA_PKCS, NULL, 0 };
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE rsa;
	char line[8192];
	size_t mark;

	world_new(&w, "keys", "refusals_name_the_rules_key");
	two_names_policy(&w);
	world_open(&w);
	s = world_session(&w);
	rsa = world_find(&w, s, CKO_PRIVATE_KEY, RSA_ID);

	/* Not the allowed mechanism: no rule decides, ci-signs is nearest. */
	mark = world_audit_lines(&w);
	ck_assert_rv(w.f->C_SignInit(s, &pkcs, rsa), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&w, mark, "C_SignInit", "sign");
	ck_assert(world_audit_find_since(&w, mark, line, sizeof line, "\"decision\":\"deny\"", NULL));
	ck_assert_msg(strstr(line, "\"key\":\"release-rsa\",") != NULL &&
	              strstr(line, "\"keys_matched\":[\"release\",\"release-rsa\"]") != NULL,
	              "the deny record does not name release-rsa: %s", line);
	ck_assert_msg(world_stderr_has(&w, "denied sign with key release-rsa (CKM_RSA_PKCS)"),
	              "the stderr line does not name release-rsa");

	/* The token-wide deny rule decides: it names its own key. */
	mark = world_audit_lines(&w);
	ck_assert_rv(w.f->C_DecryptInit(s, &pkcs, rsa), CKR_FUNCTION_REJECTED);
	ck_assert(world_audit_find_since(&w, mark, line, sizeof line, "\"decision\":\"deny\"", NULL));
	ck_assert_msg(strstr(line, "\"rule\":\"no-decrypt-on-the-token\"") != NULL &&
	              strstr(line, "\"key\":\"release\",") != NULL, "%s", line);
	ck_assert(world_stderr_has(&w, "denied decrypt with key release (CKM_RSA_PKCS)"));
	ck_assert_rv(w.f->C_CloseSession(s), CKR_OK);
	world_audit_verify(&w);
	world_close(&w);
}
END_TEST

static Suite *
keys_suite(void)
{
	Suite *s = suite_create("keys");
	TCase *names = tcase_create("names");

	tcase_add_test(names, record_names_the_deciding_rules_key);
	tcase_add_test(names, refusals_name_the_rules_key);
	tcase_set_timeout(names, 60);
	suite_add_tcase(s, names);
	return s;
}

int
main(void)
{
	SRunner *runner = srunner_create(keys_suite());
	int failed;

	srunner_set_fork_status(runner, CK_FORK);
	srunner_run_all(runner, CK_VERBOSE);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
