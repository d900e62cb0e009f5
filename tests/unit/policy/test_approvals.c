/* SPDX-License-Identifier: Apache-2.0
 *
 * Approvals in the policy language: the approvers:, grants: and approval:
 * errors with their positions, grant files' errors, and decisions against
 * grant files on disk approved by the real ssh-keygen, including a grant
 * edited in place after approval (same size, same second: the cache must
 * not hide it) and restored.
 */
#include "helpers.h"
#include "grant.h"
#include "p11gate/grants.h"
#include "p11gate/common.h"
#include "p11gate/login.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/pg-approvals-XXXXXX";
static char alice_pub[1024], bob_pub[1024];

static void
run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static void
read_line(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(out, (int)len, f));
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void
setup(void)
{
	char path[256];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	run("mkdir %s/grants && ssh-keygen -q -N '' -t ed25519 -f %s/alice && "
	    "ssh-keygen -q -N '' -t ecdsa -b 256 -f %s/bob", dir, dir, dir);
	snprintf(path, sizeof path, "%s/alice.pub", dir);
	read_line(path, alice_pub, sizeof alice_pub);
	snprintf(path, sizeof path, "%s/bob.pub", dir);
	read_line(path, bob_pub, sizeof bob_pub);
}

static void
teardown(void)
{
	run("rm -rf %s", dir);
	strcpy(dir, "/tmp/pg-approvals-XXXXXX");
}

static pg_policy *
load(const char *rules, const char *extra, struct pg_test_capture *cap)
{
	char yaml[8192];

	snprintf(yaml, sizeof yaml, PG_TEST_HEAD
	         "keys:\n"
	         "  release-rsa: { uri: \"pkcs11:token=release;object=codesign-rsa\", owner: t }\n"
	         "approvers:\n"
	         "  alice: { ssh_key: \"%s\", user: alice }\n"
	         "  bob: { ssh_key: \"%s\" }\n"
	         "%s"
	         "rules:\n%s", alice_pub, bob_pub, extra, rules);
	return pg_test_load(yaml, cap);
}

#define RULE "  - name: rel\n" \
             "    effect: allow\n" \
             "    keys: [release-rsa]\n" \
             "    callers: { users: [1001] }\n"

START_TEST(policy_errors)
{
	struct pg_test_capture cap;
	char grants[512];

	snprintf(grants, sizeof grants, "grants: { dir: %s/grants, max_lifetime: 91d }\n", dir);
	ck_assert_ptr_null(load(RULE "    approval: { from: [alice, bob, zed], count: 3 }\n"
	                        "  - name: d\n    effect: deny\n    keys: [release-rsa]\n"
	                        "    approval: { from: [alice], count: 1 }\n", grants, &cap));
	ck_assert_msg(pg_test_find(&cap, PG_DIAG_ERROR, 8, 63, "grants.max_lifetime must be") != NULL,
	              "no max_lifetime error");
	ck_assert_msg(pg_test_find(&cap, PG_DIAG_ERROR, 14, 36, "names approver 'zed', which is "
	                           "not defined") != NULL, "no unknown-approver error");
	ck_assert_msg(pg_test_find(&cap, PG_DIAG_ERROR, 14, 49, "approval.count is 3 but from "
	                           "names 2 approvers") != NULL, "no count error");
	ck_assert_msg(pg_test_find(&cap, PG_DIAG_ERROR, 18, 15, "'d' is a deny rule; approval: "
	                           "belongs in allow rules") != NULL, "no deny-rule error");

	/* No grants: dir. */
	ck_assert_ptr_null(load(RULE "    approval: { from: [alice], count: 1 }\n", "", &cap));
	ck_assert_msg(pg_test_find(&cap, PG_DIAG_ERROR, 13, 15, "the policy has no grants: dir:") != NULL,
	              "no missing-dir error");
}
END_TEST

START_TEST(approver_errors)
{
	struct pg_test_capture cap;
	char yaml[8192];
	pg_policy *p;

	snprintf(yaml, sizeof yaml, PG_TEST_HEAD
	         "keys:\n"
	         "  k: { uri: \"pkcs11:object=k\", owner: t }\n"
	         "approvers:\n"
	         "  alice: { ssh_key: \"%s\" }\n"
	         "  alias: { ssh_key: \"%s\" }\n"
	         "  dss: { ssh_key: \"ssh-dss AAAAB3NzaC1kc3MAAAA=\" }\n"
	         "  nokey: { usr: x }\n"
	         "rules: []\n", alice_pub, alice_pub);
	p = pg_test_load(yaml, &cap);
	ck_assert_ptr_null(p);
	ck_assert_msg(pg_test_find(&cap, PG_DIAG_ERROR, 7, 3, "approver 'alias' has the same ssh_key "
	                           "as 'alice'") != NULL, "no duplicate-key error");
	ck_assert_msg(pg_test_find(&cap, PG_DIAG_ERROR, 8, 19, "unsupported key type 'ssh-dss'") != NULL,
	              "no key-type error");
	ck_assert_msg(pg_test_find(&cap, PG_DIAG_ERROR, 9, 12, "unknown field 'usr' in approver; "
	                           "did you mean 'user'?") != NULL, "no unknown-field error");
	ck_assert_msg(pg_test_find(&cap, PG_DIAG_ERROR, 9, 10, "approver 'nokey' has no ssh_key") != NULL,
	              "no missing-key error");
}
END_TEST

static void
grant_diag(void *ctx, enum pg_severity severity, const char *file, unsigned long line,
           unsigned long column, const char *message)
{
	char *out = ctx;
	size_t used = strlen(out);

	(void)severity;
	snprintf(out + used, 4096 - used, "%s:%lu:%lu: %s\n", file, line, column, message);
}

static const char grant_ok[] =
	"grant: 1\n"
	"id: rel-1\n"
	"key: release-rsa\n"
	"requester: ci\n"
	"not_before: 2026-12-03T10:00:00Z\n"
	"not_after: 2026-12-03T12:00:00Z\n"
	"reason: \"Release 1\"\n";

START_TEST(grant_errors)
{
	static const char bad[] =
		"grant: 1\n"
		"id: rel-2\n"
		"key: release-rsa\n"
		"requestor: ci\n"
		"not_before: 2026-12-03 10:00\n"
		"not_after: 2026-12-13T12:00:00Z\n"
		"max_signatures: 0\n";
	char out[4096] = "";
	struct pg_grant *grant;

	grant = pg_grant_parse("/g/rel-1.yaml", grant_ok, strlen(grant_ok), 7 * 86400, grant_diag, out);
	ck_assert_msg(grant != NULL, "%s", out);
	ck_assert_str_eq(grant->requester, "ci");
	ck_assert_int_eq(grant->not_after - grant->not_before, 7200);
	pg_grant_free(grant);

	ck_assert_ptr_null(pg_grant_parse("/g/rel-1.yaml", bad, strlen(bad), 7 * 86400, grant_diag, out));
	ck_assert_msg(strstr(out, "/g/rel-1.yaml:4:1: unknown field 'requestor' in the grant; did you "
	                     "mean 'requester'?") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "/g/rel-1.yaml:5:13: not_before must be a UTC time like") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "/g/rel-1.yaml:7:17: max_signatures must be a whole number from 1") != NULL,
	              "%s", out);
	ck_assert_msg(strstr(out, "/g/rel-1.yaml:2:5: the grant id 'rel-2' is not the file's name") != NULL,
	              "%s", out);
	ck_assert_msg(strstr(out, "/g/rel-1.yaml:1:1: the grant has no reason") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "/g/rel-1.yaml:1:1: the grant has no requester") != NULL, "%s", out);

	out[0] = '\0';
	ck_assert_ptr_null(pg_grant_parse("/g/rel-1.yaml", grant_ok, strlen(grant_ok), 3600, grant_diag, out));
	ck_assert_msg(strstr(out, "/g/rel-1.yaml:6:12: the grant lasts 2 hours; the policy allows at "
	                     "most 1") != NULL, "%s", out);
	ck_assert(!pg_grant_time_parse("2026-02-30T10:00:00Z", &(time_t){ 0 }));
	ck_assert(!pg_grant_time_parse("2026-12-03T10:00:00+01:00", &(time_t){ 0 }));
}
END_TEST

static void
decide_as(pg_policy *p, time_t now, bool provisional, struct pg_decision *out)
{
	struct pg_caller caller = { .uid = 1001, .user = "ci", .uid_trust = PG_ID_ATTESTED };
	struct pg_key_match match = { .n = 1, .idx = { 0 }, .pin_mismatch = -1 };
	struct pg_request req = {
		.op = PG_OP_SIGN, .mechanism = CKM_SHA256_RSA_PKCS, .key = &match,
		.caller = &caller, .now = now, .provisional = provisional,
	};

	pg_policy_decide(p, &req, out);
}

static void
decide(pg_policy *p, time_t now, struct pg_decision *out)
{
	decide_as(p, now, false, out);
}

START_TEST(decisions_on_disk)
{
	struct pg_test_capture cap;
	struct pg_decision d;
	char grants[512], path[512];
	unsigned char digest[32];
	time_t now = pg_test_time("2026-12-03T11:00:00Z");
	pg_policy *p;

	snprintf(grants, sizeof grants, "grants: { dir: %s/grants }\n", dir);
	p = load(RULE "    approval: { from: [alice, bob], count: 2 }\n", grants, &cap);
	if (p == NULL)
		pg_test_dump(&cap);
	ck_assert_ptr_nonnull(p);

	snprintf(path, sizeof path, "%s/grants/rel-1.yaml", dir);
	write_file(path, grant_ok);
	decide(p, now, &d);
	ck_assert(!d.allow);
	ck_assert_msg(strstr(d.reason, "grant rel-1: 0 of 2 approvals; no other signature beside it"),
	              "%s", d.reason);

	run("cd %s/grants && ssh-keygen -q -Y sign -n p11gate-grant -f %s/alice rel-1.yaml && "
	    "mv rel-1.yaml.sig rel-1.yaml.alice.sig && "
	    "ssh-keygen -q -Y sign -n p11gate-grant -f %s/bob rel-1.yaml && "
	    "mv rel-1.yaml.sig rel-1.yaml.bob.sig", dir, dir, dir);
	decide(p, now, &d);
	ck_assert_msg(d.allow, "%s", d.reason);
	ck_assert(d.grant.used);
	ck_assert_str_eq(d.grant.id, "rel-1");
	ck_assert_str_eq(d.grant.approvers, "alice, bob");
	pg_sha256(grant_ok, strlen(grant_ok), digest);
	ck_assert_mem_eq(d.grant.sha256, digest, 32);

	/* Outside the window. */
	decide(p, pg_test_time("2026-12-03T12:00:00Z"), &d);
	ck_assert(!d.allow);
	ck_assert_msg(strstr(d.reason, "grant rel-1 expired at 2026-12-03T12:00:00Z"), "%s", d.reason);

	/* Edited in place, same size, within the same second: refused at once. */
	run("sed -i 's/Release 1/Release 9/' %s", path);
	decide(p, now, &d);
	ck_assert(!d.allow);
	ck_assert_msg(strstr(d.reason, "0 of 2 approvals; alice's signature: the signature does not "
	                     "verify; bob's signature: the signature does not verify"), "%s", d.reason);
	/* Restored: allowed again. */
	write_file(path, grant_ok);
	decide(p, now, &d);
	ck_assert_msg(d.allow, "%s", d.reason);

	/* Deleted: refused by the exact judgement; a provisional one (an init)
	 * answers from its memo, and the call that signs is refused. */
	run("mv %s %s.away", path, path);
	decide_as(p, now, true, &d);
	ck_assert_msg(d.allow, "%s", d.reason);
	decide(p, now, &d);
	ck_assert(!d.allow);
	ck_assert_msg(strstr(d.reason, "no grant in"), "%s", d.reason);
	/* Back again: a provisional judgement whose memo says no looks at the
	 * files before refusing. */
	run("mv %s.away %s", path, path);
	decide_as(p, now, true, &d);
	ck_assert_msg(d.allow, "%s", d.reason);
	pg_policy_unref(p);
}
END_TEST

/* A requester that is a pipeline identity: the login's issuer and claims. */
START_TEST(identity_requester)
{
	static const char grant_id[] =
		"grant: 1\n"
		"id: rel-id\n"
		"key: release-rsa\n"
		"requester:\n"
		"  issuer: github\n"
		"  claims: { repository: org/app, ref: refs/tags/v4.2.0 }\n"
		"not_before: 2026-12-03T10:00:00Z\n"
		"not_after: 2026-12-03T12:00:00Z\n"
		"reason: \"Release 4.2.0 from CI\"\n";
	struct pg_login_claim claims[] = {
		{ .name = (char *)"repository", .value = (char *)"org/app", .is_string = true },
		{ .name = (char *)"ref", .value = (char *)"refs/tags/v4.2.0", .is_string = true },
	};
	struct pg_login_id login = { .issuer = (char *)"github", .claims = claims, .n_claims = 2 };
	struct pg_caller caller = { .uid = 1001, .user = "runner", .uid_trust = PG_ID_ATTESTED };
	struct pg_key_match match = { .n = 1, .idx = { 0 }, .pin_mismatch = -1 };
	struct pg_request req = {
		.op = PG_OP_SIGN, .mechanism = CKM_SHA256_RSA_PKCS, .key = &match, .caller = &caller,
		.login = &login, .now = pg_test_time("2026-12-03T11:00:00Z"),
	};
	struct pg_test_capture cap;
	struct pg_decision d;
	char grants[512], path[512];
	pg_policy *p;

	snprintf(grants, sizeof grants, "grants: { dir: %s/grants }\n", dir);
	p = load("  - name: rel\n    effect: allow\n    keys: [release-rsa]\n"
	         "    callers: { users: [1001] }\n"
	         "    approval: { from: [alice, bob], count: 2 }\n", grants, &cap);
	if (p == NULL)
		pg_test_dump(&cap);
	ck_assert_ptr_nonnull(p);
	snprintf(path, sizeof path, "%s/grants/rel-id.yaml", dir);
	write_file(path, grant_id);
	run("cd %s/grants && ssh-keygen -q -Y sign -n p11gate-grant -f %s/alice rel-id.yaml && "
	    "mv rel-id.yaml.sig rel-id.yaml.alice.sig && "
	    "ssh-keygen -q -Y sign -n p11gate-grant -f %s/bob rel-id.yaml && "
	    "mv rel-id.yaml.sig rel-id.yaml.bob.sig", dir, dir, dir);
	pg_policy_decide(p, &req, &d);
	ck_assert_msg(d.allow, "%s", d.reason);
	ck_assert_str_eq(d.grant.id, "rel-id");
	/* Another ref: no grant. */
	claims[1].value = (char *)"refs/heads/main";
	pg_policy_decide(p, &req, &d);
	ck_assert(!d.allow);
	ck_assert_msg(strstr(d.reason, "no grant in") && strstr(d.reason, "requested by runner or its "
	              "github identity"), "%s", d.reason);
	/* No identity proven: no grant either. */
	claims[1].value = (char *)"refs/tags/v4.2.0";
	req.login = NULL;
	pg_policy_decide(p, &req, &d);
	ck_assert(!d.allow);
	pg_policy_unref(p);
}
END_TEST

static Suite *
approvals_suite(void)
{
	Suite *s = suite_create("approvals");
	TCase *tc = tcase_create("approvals");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, policy_errors);
	tcase_add_test(tc, approver_errors);
	tcase_add_test(tc, grant_errors);
	tcase_add_test(tc, decisions_on_disk);
	tcase_add_test(tc, identity_requester);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(approvals_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
