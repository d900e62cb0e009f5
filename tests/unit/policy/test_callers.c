/* SPDX-License-Identifier: Apache-2.0
 *
 * Caller conditions: users by name and uid, primary and supplementary
 * groups, program globs, program_sha256 against a real file, units, env,
 * mechanisms; and fields that are unavailable failing closed for allow
 * and deny rules alike.
 */
#include "helpers.h"
#include "p11gate/common.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pg_policy *policy;
static struct pg_caller caller;
static char *env[] = { "CI=true", "BRANCH=release/1.2", "HOME=/root", NULL };
static gid_t groups[] = { 100, 4242 };
static char exe_path[] = "/tmp/pg-policy-exe-XXXXXX";

static void
write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(content, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void
setup(void)
{
	unsigned char hash[PG_SHA256_LEN];
	char hex[PG_SHA256_HEX_LEN + 1], yaml[4096];
	struct pg_test_capture cap;
	int fd;

	/* The pinned "program": a real file whose hash goes into the policy. */
	strcpy(exe_path, "/tmp/pg-policy-exe-XXXXXX");
	fd = mkstemp(exe_path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	write_file(exe_path, "#!/bin/sh\necho the real signer\n");
	ck_assert(pg_sha256_file(exe_path, hash));
	pg_hex_encode(hash, sizeof hash, hex);

	snprintf(yaml, sizeof yaml,
	         PG_TEST_HEAD
	         "keys:\n"
	         "  k-users: {uri: \"pkcs11:object=users\", owner: t}\n"
	         "  k-groups: {uri: \"pkcs11:object=groups\", owner: t}\n"
	         "  k-programs: {uri: \"pkcs11:object=programs\", owner: t}\n"
	         "  k-sha: {uri: \"pkcs11:object=sha\", owner: t}\n"
	         "  k-units: {uri: \"pkcs11:object=units\", owner: t}\n"
	         "  k-env: {uri: \"pkcs11:object=env\", owner: t}\n"
	         "  k-mech: {uri: \"pkcs11:object=mech\", owner: t}\n"
	         "  k-deny: {uri: \"pkcs11:object=deny\", owner: t}\n"
	         "rules:\n"
	         "  - {name: users, effect: allow, keys: [k-users], callers: {users: [root, 1001]}}\n"
	         "  - {name: groups, effect: allow, keys: [k-groups], callers: {groups: [nogroup, 4242]}}\n"
	         "  - name: programs\n"
	         "    effect: allow\n"
	         "    keys: [k-programs]\n"
	         "    callers: {programs: [\"/usr/lib/jvm/*/bin/java\", /usr/bin/osslsigncode]}\n"
	         "  - {name: sha, effect: allow, keys: [k-sha], callers: {program_sha256: [\"%s\"]}}\n"
	         "  - {name: units, effect: allow, keys: [k-units], callers: {units: [\"ci-*.service\"]}}\n"
	         "  - name: env\n"
	         "    effect: allow\n"
	         "    keys: [k-env]\n"
	         "    callers: {env: {CI: \"true\", BRANCH: \"release/*\"}}\n"
	         "  - name: mech\n"
	         "    effect: allow\n"
	         "    keys: [k-mech]\n"
	         "    operations: [sign, decrypt]\n"
	         "    callers: {users: [1001]}\n"
	         "    mechanisms: [CKM_ECDSA, 0x80000001]\n"
	         "  - {name: open, effect: allow, keys: [k-deny], callers: {units: [\"*\"]}}\n"
	         "  - {name: not-1001, effect: deny, keys: [k-deny], callers: {users: [1001]}}\n",
	         hex);
	policy = pg_test_load(yaml, &cap);
	if (policy == NULL)
		pg_test_dump(&cap);
	ck_assert_ptr_nonnull(policy);

	/* A caller whose every field is known. */
	memset(&caller, 0, sizeof caller);
	caller.source = PG_ID_PROCESS;
	caller.uid_trust = caller.gid_trust = caller.groups_trust = PG_ID_ASSERTED;
	caller.exe_trust = caller.unit_trust = caller.env_trust = PG_ID_ASSERTED;
	caller.pid_trust = PG_ID_ASSERTED;
	caller.pid = getpid();
	caller.uid = 1001;
	caller.user = "ci";
	caller.gid = 100;
	caller.groups = groups;
	caller.n_groups = 2;
	caller.exe = "/usr/bin/osslsigncode";
	caller.unit = "ci-runner.service";
	caller.env = env;
}

static void
teardown(void)
{
	unlink(exe_path);
	pg_policy_unref(policy);
}

static bool
decide(const char *key, enum pg_op op, CK_MECHANISM_TYPE mech, struct pg_decision *d)
{
	struct pg_key_match m = { .n = 1, .pin_mismatch = -1 };
	struct pg_request req = { .op = op, .mechanism = mech, .key = &m, .caller = &caller,
	                          .now = pg_test_time("2026-06-01T12:00:00Z") };
	struct pg_decision local;

	if (d == NULL)
		d = &local;
	ck_assert_int_ge(pg_policy_key_find(policy, key), 0);
	m.idx[0] = (unsigned)pg_policy_key_find(policy, key);
	pg_policy_decide(policy, &req, d);
	return d->allow;
}

static bool
allowed(const char *key)
{
	return decide(key, PG_OP_SIGN, CKM_ECDSA, NULL);
}

START_TEST(test_users)
{
	struct pg_decision d;

	ck_assert(allowed("k-users"));          /* uid 1001 */
	caller.uid = 0;                          /* root, given by name */
	ck_assert(allowed("k-users"));
	caller.uid = 1002;
	caller.user = "someone";
	ck_assert(!decide("k-users", PG_OP_SIGN, CKM_ECDSA, &d));
	ck_assert_ptr_null(d.rule);
	ck_assert_str_eq(d.reason, "no rule allows it; nearest: rule users: user someone "
	                 "(uid 1002) is not in users [root, 1001]");
	/* A uid without a passwd entry is judged by number. */
	caller.uid = 1003;
	caller.user = NULL;
	ck_assert(!decide("k-users", PG_OP_SIGN, CKM_ECDSA, &d));
	ck_assert_str_eq(d.reason, "no rule allows it; nearest: rule users: uid 1003 is not in "
	                 "users [root, 1001]");
	caller.uid = 1001;
	ck_assert(allowed("k-users"));
}
END_TEST

START_TEST(test_groups)
{
	/* 4242 is supplementary. */
	ck_assert(allowed("k-groups"));
	/* Primary only. */
	caller.gid = 4242;
	caller.n_groups = 1;
	groups[0] = 100;
	ck_assert(allowed("k-groups"));
	/* nogroup (65534), resolved by name. */
	caller.gid = 65534;
	ck_assert(allowed("k-groups"));
	/* Neither. */
	caller.gid = 100;
	caller.n_groups = 1;
	ck_assert(!allowed("k-groups"));
	caller.n_groups = 2;
}
END_TEST

START_TEST(test_programs)
{
	ck_assert(allowed("k-programs"));
	caller.exe = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java";
	ck_assert(allowed("k-programs"));
	/* '*' crosses '/' (no FNM_PATHNAME). */
	caller.exe = "/usr/lib/jvm/a/b/c/bin/java";
	ck_assert(allowed("k-programs"));
	caller.exe = "/usr/lib/jvm/java-17/bin/javac";
	ck_assert(!allowed("k-programs"));
	caller.exe = "/usr/bin/osslsigncode2";
	ck_assert(!allowed("k-programs"));
}
END_TEST

START_TEST(test_program_sha256)
{
	struct pg_decision d;

	caller.exe = exe_path;
	ck_assert(allowed("k-sha"));

	/* Same path, other bytes: a fresh caller hashes again. */
	caller.exe_hashed = false;
	write_file(exe_path, "#!/bin/sh\necho an impostor\n");
	ck_assert(!decide("k-sha", PG_OP_SIGN, CKM_ECDSA, &d));
	ck_assert_msg(strstr(d.reason, "which is not in program_sha256") != NULL, "%s", d.reason);

	/* A file that cannot be read cannot be checked. */
	caller.exe_hashed = false;
	caller.exe = "/nonexistent/signer";
	ck_assert(!decide("k-sha", PG_OP_SIGN, CKM_ECDSA, &d));
	ck_assert_msg(strstr(d.reason, "could not be hashed") != NULL, "%s", d.reason);
}
END_TEST

START_TEST(test_units)
{
	struct pg_decision d;

	ck_assert(allowed("k-units"));
	caller.unit = "web.service";
	ck_assert(!allowed("k-units"));
	caller.unit = NULL;   /* known: in no unit */
	ck_assert(!decide("k-units", PG_OP_SIGN, CKM_ECDSA, &d));
	ck_assert_msg(strstr(d.reason, "runs in no systemd unit") != NULL, "%s", d.reason);
}
END_TEST

START_TEST(test_env)
{
	static char *other_branch[] = { "CI=true", "BRANCH=main", NULL };
	static char *no_ci[] = { "BRANCH=release/1", NULL };
	struct pg_decision d;

	ck_assert(allowed("k-env"));
	caller.env = other_branch;
	ck_assert(!decide("k-env", PG_OP_SIGN, CKM_ECDSA, &d));
	ck_assert_str_eq(d.reason, "no rule allows it; nearest: rule env: env BRANCH does not "
	                 "match 'release/*'");
	/* The value is never quoted back: environments hold secrets. */
	ck_assert_ptr_null(strstr(d.reason, "main"));
	caller.env = no_ci;
	ck_assert(!decide("k-env", PG_OP_SIGN, CKM_ECDSA, &d));
	ck_assert_str_eq(d.reason, "no rule allows it; nearest: rule env: env CI is not set");
}
END_TEST

START_TEST(test_mechanisms_and_operations)
{
	struct pg_decision d;

	ck_assert(decide("k-mech", PG_OP_SIGN, CKM_ECDSA, NULL));
	ck_assert(decide("k-mech", PG_OP_DECRYPT, 0x80000001UL, NULL));
	ck_assert(!decide("k-mech", PG_OP_SIGN, CKM_RSA_PKCS, &d));
	ck_assert_str_eq(d.reason, "no rule allows it; nearest: rule mech: mechanism CKM_RSA_PKCS "
	                 "is not in mechanisms [CKM_ECDSA, 0x80000001]");
	ck_assert(!decide("k-mech", PG_OP_SIGN, CK_UNAVAILABLE_INFORMATION, NULL));
	ck_assert(!decide("k-mech", PG_OP_DERIVE, CKM_ECDSA, &d));
	ck_assert_str_eq(d.reason, "no rule allows derive with key k-mech");
	/* Operations default to [sign]. */
	ck_assert(!decide("k-users", PG_OP_DECRYPT, CKM_ECDSA, NULL));
}
END_TEST

START_TEST(test_unavailable_fails_closed)
{
	struct pg_decision d;

	caller.uid_trust = PG_ID_UNAVAILABLE;
	ck_assert(!decide("k-users", PG_OP_SIGN, CKM_ECDSA, &d));
	ck_assert_msg(strstr(d.reason, "uid is unavailable") != NULL, "%s", d.reason);
	/* A deny rule on an unavailable field applies: it cannot be ruled out. */
	ck_assert(!decide("k-deny", PG_OP_SIGN, CKM_ECDSA, &d));
	ck_assert_str_eq(d.rule, "not-1001");
	caller.uid_trust = PG_ID_ATTESTED;
	caller.uid = 1002;
	ck_assert(allowed("k-deny"));
	caller.uid = 1001;
	ck_assert(!decide("k-deny", PG_OP_SIGN, CKM_ECDSA, &d));
	ck_assert_str_eq(d.reason, "rule not-1001: user ci (uid 1001) is in users [1001]");

	caller.uid = 1002;
	caller.groups_trust = PG_ID_UNAVAILABLE;
	caller.gid_trust = PG_ID_UNAVAILABLE;
	ck_assert(!allowed("k-groups"));
	/* Primary gid known and matching: enough. */
	caller.gid_trust = PG_ID_ASSERTED;
	caller.gid = 4242;
	ck_assert(allowed("k-groups"));
	/* Primary gid known but not matching, list unknown: cannot tell. */
	caller.gid = 100;
	ck_assert(!allowed("k-groups"));

	caller.exe_trust = PG_ID_UNAVAILABLE;
	ck_assert(!allowed("k-programs"));
	caller.exe = exe_path;
	ck_assert(!allowed("k-sha"));
	caller.unit_trust = PG_ID_UNAVAILABLE;
	ck_assert(!allowed("k-units"));
	/* ...and the allow rule "open" (units: ["*"]) no longer matches either. */
	ck_assert(!allowed("k-deny"));
	caller.env_trust = PG_ID_UNAVAILABLE;
	ck_assert(!allowed("k-env"));
}
END_TEST

START_TEST(test_no_caller)
{
	struct pg_key_match m = { .n = 1, .pin_mismatch = -1 };
	struct pg_request req = { .op = PG_OP_SIGN, .mechanism = CKM_ECDSA, .key = &m,
	                          .caller = NULL, .now = 0 };
	struct pg_decision d;

	m.idx[0] = (unsigned)pg_policy_key_find(policy, "k-users");
	pg_policy_decide(policy, &req, &d);
	ck_assert(!d.allow);
}
END_TEST

int
main(void)
{
	Suite *suite = suite_create("policy-callers");
	TCase *tc = tcase_create("callers");
	SRunner *runner;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_users);
	tcase_add_test(tc, test_groups);
	tcase_add_test(tc, test_programs);
	tcase_add_test(tc, test_program_sha256);
	tcase_add_test(tc, test_units);
	tcase_add_test(tc, test_env);
	tcase_add_test(tc, test_mechanisms_and_operations);
	tcase_add_test(tc, test_unavailable_fails_closed);
	tcase_add_test(tc, test_no_caller);
	suite_add_tcase(suite, tc);
	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
