/* SPDX-License-Identifier: Apache-2.0
 *
 * Decisions: the example policy (allow, freeze deny, outside hours),
 * unnamed keys, pin mismatches, deny precedence in file order, several
 * matching keys, the "nearest" rule, explain, and the (key, op) index over
 * a thousand rules.
 */
#include "helpers.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The example of policy/example.yaml with numeric ids, so that it means the
 * same on every machine. */
static const char example_yaml[] =
	PG_TEST_HEAD
	"keys:\n"
	"  release-rsa:\n"
	"    uri: \"pkcs11:token=release;object=codesign-rsa\"\n"
	"    owner: release-engineering\n"
	"  release-ec:\n"
	"    uri: \"pkcs11:token=release;object=codesign-ec\"\n"
	"    owner: release-engineering\n"
	"rules:\n"
	"  - name: ci-signs-in-office-hours\n"
	"    effect: allow\n"
	"    keys: [release-rsa, release-ec]\n"
	"    operations: [sign]\n"
	"    callers:\n"
	"      users: [1001]\n"
	"      groups: [4242]\n"
	"      programs: [/usr/bin/osslsigncode, \"/usr/lib/jvm/*/bin/java\"]\n"
	"    mechanisms: [CKM_SHA256_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_ECDSA]\n"
	"    when:\n"
	"      days: [mon-fri]\n"
	"      hours: \"09:00-17:00\"\n"
	"      timezone: Europe/Berlin\n"
	"  - name: year-end-freeze\n"
	"    effect: deny\n"
	"    keys: [release-rsa, release-ec]\n"
	"    when:\n"
	"      dates: [\"2026-12-20..2027-01-04\"]\n";

static pg_policy *policy;
static struct pg_caller caller;
static gid_t groups[] = { 100, 4242 };

static pg_policy *
load_ok(const char *yaml)
{
	struct pg_test_capture cap;
	pg_policy *p = pg_test_load(yaml, &cap);

	if (p == NULL)
		pg_test_dump(&cap);
	ck_assert_ptr_nonnull(p);
	return p;
}

static void
setup(void)
{
	policy = load_ok(example_yaml);
	memset(&caller, 0, sizeof caller);
	caller.uid_trust = caller.gid_trust = caller.groups_trust = PG_ID_ATTESTED;
	caller.exe_trust = caller.unit_trust = PG_ID_ATTESTED;
	caller.uid = 1001;
	caller.user = "ci";
	caller.gid = 100;
	caller.groups = groups;
	caller.n_groups = 2;
	caller.exe = "/usr/bin/osslsigncode";
}

static void
teardown(void)
{
	pg_policy_unref(policy);
}

static void
decide_key(const pg_policy *p, const char *key, enum pg_op op, CK_MECHANISM_TYPE mech,
           const char *when, struct pg_decision *d)
{
	struct pg_key_match m = { .n = 1, .pin_mismatch = -1 };
	struct pg_request req = { .op = op, .mechanism = mech, .key = &m, .caller = &caller,
	                          .now = pg_test_time(when) };

	ck_assert_int_ge(pg_policy_key_find(p, key), 0);
	m.idx[0] = (unsigned)pg_policy_key_find(p, key);
	pg_policy_decide(p, &req, d);
}

START_TEST(test_example_allows_in_office_hours)
{
	struct pg_decision d;

	/* Tuesday 2 June 2026, 10:00 in Berlin (CEST). */
	decide_key(policy, "release-rsa", PG_OP_SIGN, CKM_SHA256_RSA_PKCS, "2026-06-02T08:00:00Z", &d);
	ck_assert(d.allow);
	ck_assert_str_eq(d.rule, "ci-signs-in-office-hours");
	ck_assert_str_eq(d.key_name, "release-rsa");
	ck_assert_str_eq(d.reason, "rule ci-signs-in-office-hours allows it");

	caller.exe = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java";
	decide_key(policy, "release-ec", PG_OP_SIGN, CKM_ECDSA, "2026-06-02T08:00:00Z", &d);
	ck_assert(d.allow);
	ck_assert_str_eq(d.key_name, "release-ec");
}
END_TEST

START_TEST(test_example_freeze)
{
	struct pg_decision d;

	/* Thursday 24 December 2026, 10:00Z: inside office hours, inside the freeze. */
	decide_key(policy, "release-rsa", PG_OP_SIGN, CKM_SHA256_RSA_PKCS, "2026-12-24T10:00:00Z", &d);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.rule, "year-end-freeze");
	ck_assert_str_eq(d.key_name, "release-rsa");
	ck_assert_str_eq(d.reason, "rule year-end-freeze: date 2026-12-24 is in "
	                 "2026-12-20..2027-01-04 (UTC)");
}
END_TEST

START_TEST(test_example_outside_hours)
{
	struct pg_decision d;

	decide_key(policy, "release-rsa", PG_OP_SIGN, CKM_SHA256_RSA_PKCS, "2026-06-02T16:30:00Z", &d);
	ck_assert(!d.allow);
	ck_assert_ptr_null(d.rule);
	ck_assert_str_eq(d.reason, "no rule allows it; nearest: rule ci-signs-in-office-hours: "
	                 "outside 09:00-17:00 Europe/Berlin (local time 18:30)");

	/* Not in the group: nothing to do with the time. */
	caller.n_groups = 1;
	decide_key(policy, "release-rsa", PG_OP_SIGN, CKM_SHA256_RSA_PKCS, "2026-06-02T08:00:00Z", &d);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.reason, "no rule allows it; nearest: rule ci-signs-in-office-hours: "
	                 "the caller (uid 1001) is in none of groups [4242]");
}
END_TEST

START_TEST(test_unnamed_key_and_pin_mismatch)
{
	struct pg_key_match m = { .n = 0, .pin_mismatch = -1 };
	struct pg_request req = { .op = PG_OP_SIGN, .mechanism = CKM_ECDSA, .key = &m,
	                          .caller = &caller, .now = pg_test_time("2026-06-02T08:00:00Z") };
	struct pg_decision d;

	pg_policy_decide(policy, &req, &d);
	ck_assert(!d.allow);
	ck_assert_ptr_null(d.rule);
	ck_assert_ptr_null(d.key_name);
	ck_assert_str_eq(d.reason, "key is not named by the policy");

	m.pin_mismatch = pg_policy_key_find(policy, "release-ec");
	pg_policy_decide(policy, &req, &d);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.reason, "key matches the URI of release-ec but not its "
	                 "public_key_sha256 pin");

	req.key = NULL;
	pg_policy_decide(policy, &req, &d);
	ck_assert(!d.allow);
}
END_TEST

START_TEST(test_bad_operation)
{
	struct pg_decision d;

	decide_key(policy, "release-rsa", (enum pg_op)(PG_OP_SIGN | PG_OP_DECRYPT),
	           CKM_SHA256_RSA_PKCS, "2026-06-02T08:00:00Z", &d);
	ck_assert(!d.allow);
	decide_key(policy, "release-rsa", (enum pg_op)0, CKM_SHA256_RSA_PKCS,
	           "2026-06-02T08:00:00Z", &d);
	ck_assert(!d.allow);
}
END_TEST

static const char precedence_yaml[] =
	PG_TEST_HEAD
	"keys:\n"
	"  a: {uri: \"pkcs11:object=a\", owner: t}\n"
	"  b: {uri: \"pkcs11:object=b\", owner: t}\n"
	"rules:\n"
	"  - {name: allow-a, effect: allow, keys: [a], callers: {users: [1001]}}\n"
	"  - {name: early-fail, effect: allow, keys: [a, b], callers: {users: [7]}}\n"
	"  - {name: late-fail, effect: allow, keys: [b], callers: {users: [1001]},\n"
	"     mechanisms: [CKM_ECDSA], when: {hours: \"01:00-02:00\"}}\n"
	"  - {name: deny-b-first, effect: deny, keys: [b], operations: [decrypt]}\n"
	"  - {name: deny-b-second, effect: deny, keys: [b], operations: [decrypt],\n"
	"     callers: {users: [1001]}}\n"
	"  - {name: deny-a-decrypt, effect: deny, keys: [a], operations: [decrypt]}\n";

START_TEST(test_deny_precedence_and_several_keys)
{
	pg_policy *p = load_ok(precedence_yaml);
	struct pg_key_match m = { .n = 2, .idx = { 1, 0 }, .pin_mismatch = -1 };
	struct pg_request req = { .op = PG_OP_DECRYPT, .mechanism = CKM_RSA_PKCS, .key = &m,
	                          .caller = &caller, .now = pg_test_time("2026-06-02T12:00:00Z") };
	struct pg_decision d;

	/* Both b's deny rules and a's match: the first in file order decides. */
	pg_policy_decide(p, &req, &d);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.rule, "deny-b-first");
	ck_assert_str_eq(d.key_name, "b");
	ck_assert_str_eq(d.reason, "rule deny-b-first: denies every decrypt with key b");

	/* Sign: allow-a allows through key a even though b is also matched. */
	req.op = PG_OP_SIGN;
	pg_policy_decide(p, &req, &d);
	ck_assert(d.allow);
	ck_assert_str_eq(d.rule, "allow-a");
	ck_assert_str_eq(d.key_name, "a");
	pg_policy_unref(p);
}
END_TEST

/* The pair: a token-wide key first in the file, a pinned key on
 * that token second.  The record must name the key the deciding rule
 * names, whatever the order of the keys: section. */
static const char two_names_yaml[] =
	PG_TEST_HEAD
	"keys:\n"
	"  release: {uri: \"pkcs11:token=release\", owner: t}\n"
	"  codesign-rsa: {uri: \"pkcs11:token=release;object=codesign-rsa\", owner: t}\n"
	"rules:\n"
	"  - {name: token-deny-decrypt, effect: deny, keys: [release], operations: [decrypt]}\n"
	"  - {name: ci-signs, effect: allow, keys: [codesign-rsa], operations: [sign],\n"
	"     callers: {users: [1001]}}\n"
	"  - {name: ops-derive, effect: allow, keys: [codesign-rsa, release], operations: [derive],\n"
	"     callers: {users: [7]}}\n";

START_TEST(test_deciding_rule_names_the_key)
{
	pg_policy *p = load_ok(two_names_yaml);
	struct pg_key_match m = { .n = 2, .idx = { 0, 1 }, .pin_mismatch = -1 };
	struct pg_request req = { .op = PG_OP_SIGN, .mechanism = CKM_RSA_PKCS, .key = &m,
	                          .caller = &caller, .now = pg_test_time("2026-06-02T12:00:00Z") };
	struct pg_decision d;

	pg_policy_decide(p, &req, &d);
	ck_assert(d.allow);
	ck_assert_str_eq(d.rule, "ci-signs");
	ck_assert_str_eq(d.key_name, "codesign-rsa");
	ck_assert_int_eq(d.key, 1);

	/* A deny rule on the token-wide key names that key. */
	req.op = PG_OP_DECRYPT;
	pg_policy_decide(p, &req, &d);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.rule, "token-deny-decrypt");
	ck_assert_str_eq(d.key_name, "release");

	/* Refused with no deciding rule: the nearest rule's first listed key. */
	req.op = PG_OP_DERIVE;
	pg_policy_decide(p, &req, &d);
	ck_assert(!d.allow);
	ck_assert_ptr_null(d.rule);
	ck_assert_str_eq(d.key_name, "codesign-rsa");
	ck_assert_str_eq(d.reason, "no rule allows it; nearest: rule ops-derive: user ci (uid 1001) "
	                 "is not in users [7]");

	/* Nothing covers the operation: the first matched key, as before. */
	req.op = PG_OP_UNWRAP;
	pg_policy_decide(p, &req, &d);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.key_name, "release");
	ck_assert_int_eq(d.key, 0);
	pg_policy_unref(p);
}
END_TEST

START_TEST(test_nearest_rule)
{
	pg_policy *p = load_ok(precedence_yaml);
	struct pg_decision d;

	/* For b: early-fail stops at users, late-fail at hours: late-fail is nearer. */
	decide_key(p, "b", PG_OP_SIGN, CKM_ECDSA, "2026-06-02T12:00:00Z", &d);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.reason, "no rule allows it; nearest: rule late-fail: outside "
	                 "01:00-02:00 UTC (local time 12:00)");
	/* With another mechanism late-fail stops earlier, at mechanisms -- still
	 * after users, so still nearest. */
	decide_key(p, "b", PG_OP_SIGN, CKM_RSA_PKCS, "2026-06-02T12:00:00Z", &d);
	ck_assert_str_eq(d.reason, "no rule allows it; nearest: rule late-fail: mechanism "
	                 "CKM_RSA_PKCS is not in mechanisms [CKM_ECDSA]");
	/* Another user: both stop at users; the earlier rule is named. */
	caller.uid = 5;
	decide_key(p, "b", PG_OP_SIGN, CKM_ECDSA, "2026-06-02T12:00:00Z", &d);
	ck_assert_str_eq(d.reason, "no rule allows it; nearest: rule early-fail: user ci "
	                 "(uid 5) is not in users [7]");
	pg_policy_unref(p);
}
END_TEST

struct explained {
	char lines[16][300];
	size_t n;
};

static void
collect(void *ctx, const char *rule, bool is_allow, bool matched, const char *why_not)
{
	struct explained *e = ctx;

	ck_assert_uint_lt(e->n, 16);
	snprintf(e->lines[e->n++], sizeof e->lines[0], "%s %s %s%s", is_allow ? "allow" : "deny",
	         rule, matched ? "matched" : "no: ", matched ? "" : why_not);
}

START_TEST(test_explain)
{
	pg_policy *p = load_ok(precedence_yaml);
	struct pg_key_match m = { .n = 1, .idx = { 1 }, .pin_mismatch = -1 };
	struct pg_request req = { .op = PG_OP_SIGN, .mechanism = CKM_ECDSA, .key = &m,
	                          .caller = &caller, .now = pg_test_time("2026-06-02T01:30:00Z") };
	struct explained e = { .n = 0 };
	struct pg_decision d;

	pg_policy_explain(p, &req, collect, &e, &d);
	ck_assert_uint_eq(e.n, 6);
	ck_assert_str_eq(e.lines[0], "allow allow-a no: does not name key b");
	ck_assert_str_eq(e.lines[1], "allow early-fail no: user ci (uid 1001) is not in users [7]");
	ck_assert_str_eq(e.lines[2], "allow late-fail matched");
	ck_assert_str_eq(e.lines[3], "deny deny-b-first no: does not cover operation sign");
	ck_assert_str_eq(e.lines[4], "deny deny-b-second no: does not cover operation sign");
	ck_assert_str_eq(e.lines[5], "deny deny-a-decrypt no: does not name key b");
	ck_assert(d.allow);
	ck_assert_str_eq(d.rule, "late-fail");
	pg_policy_unref(p);
}
END_TEST

/* A thousand rules over a hundred keys: each decision meets only its own. */
START_TEST(test_index_at_scale)
{
	size_t cap = 200000, len = 0;
	char *yaml = malloc(cap);
	pg_policy *p;
	struct pg_decision d;

	ck_assert_ptr_nonnull(yaml);
	len += (size_t)snprintf(yaml + len, cap - len, PG_TEST_HEAD "keys:\n");
	for (int k = 0; k < 100; k++)
		len += (size_t)snprintf(yaml + len, cap - len,
		                        "  key-%d: {uri: \"pkcs11:object=key-%d\", owner: t}\n", k, k);
	len += (size_t)snprintf(yaml + len, cap - len, "rules:\n");
	for (int r = 0; r < 1000; r++) {
		int k = r % 100;
		len += (size_t)snprintf(yaml + len, cap - len,
		                        "  - {name: rule-%d, effect: %s, keys: [key-%d], "
		                        "callers: {users: [%d]}}\n",
		                        r, r == 457 ? "deny" : "allow", k, 2000 + r);
	}
	ck_assert_uint_lt(len, cap - 1);
	p = load_ok(yaml);
	free(yaml);

	caller.uid = 2000 + 357;   /* rule-357 allows key-57 */
	decide_key(p, "key-57", PG_OP_SIGN, CKM_ECDSA, "2026-06-02T12:00:00Z", &d);
	ck_assert(d.allow);
	ck_assert_str_eq(d.rule, "rule-357");
	decide_key(p, "key-58", PG_OP_SIGN, CKM_ECDSA, "2026-06-02T12:00:00Z", &d);
	ck_assert(!d.allow);
	caller.uid = 2000 + 457;   /* rule-457 denies key-57 */
	decide_key(p, "key-57", PG_OP_SIGN, CKM_ECDSA, "2026-06-02T12:00:00Z", &d);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.rule, "rule-457");
	/* Nearest names only rules of key-57: rule-57 is the first. */
	caller.uid = 1;
	decide_key(p, "key-57", PG_OP_SIGN, CKM_ECDSA, "2026-06-02T12:00:00Z", &d);
	ck_assert_msg(strncmp(d.reason, "no rule allows it; nearest: rule rule-57: ", 42) == 0,
	              "%s", d.reason);
	pg_policy_unref(p);
}
END_TEST

START_TEST(test_op_names)
{
	enum pg_op op;

	ck_assert_str_eq(pg_op_name(PG_OP_SIGN), "sign");
	ck_assert_str_eq(pg_op_name(PG_OP_MANAGE), "manage");
	ck_assert(pg_op_from_name("unwrap", &op));
	ck_assert_int_eq(op, PG_OP_UNWRAP);
	ck_assert(!pg_op_from_name("Sign", &op));
	ck_assert_str_eq(pg_op_name(PG_OP_ENCRYPT), "encrypt");
	ck_assert_str_eq(pg_op_name(PG_OP_WRAP), "wrap");
	ck_assert_str_eq(pg_op_name(PG_OP_VERIFY), "verify");
	ck_assert(pg_op_from_name("verify", &op));
	ck_assert_int_eq(op, PG_OP_VERIFY);
}
END_TEST

/* The new operations are indexed like the others: a rule covers exactly
 * the operations it lists. */
START_TEST(test_new_operations)
{
	struct pg_test_capture cap;
	pg_policy *p = pg_test_load(PG_TEST_HEAD
	                            "keys:\n  mac: {uri: \"pkcs11:object=mac\", owner: t}\n"
	                            "rules:\n"
	                            "  - {name: uses, effect: allow, keys: [mac], callers: {users: [0]},\n"
	                            "     operations: [encrypt, wrap, verify]}\n"
	                            "  - {name: no-wrap-at-night, effect: deny, keys: [mac], operations: [wrap],\n"
	                            "     when: {hours: \"22:00-06:00\"}}\n",
	                            &cap);
	struct pg_decision d;

	ck_assert_ptr_nonnull(p);
	caller.uid = 0;
	decide_key(p, "mac", PG_OP_ENCRYPT, CKM_AES_ECB, "2026-06-02T12:00:00Z", &d);
	ck_assert_msg(d.allow, "%s", d.reason);
	decide_key(p, "mac", PG_OP_VERIFY, CKM_AES_CMAC, "2026-06-02T12:00:00Z", &d);
	ck_assert_msg(d.allow, "%s", d.reason);
	decide_key(p, "mac", PG_OP_WRAP, CKM_AES_KEY_WRAP, "2026-06-02T12:00:00Z", &d);
	ck_assert_msg(d.allow, "%s", d.reason);
	decide_key(p, "mac", PG_OP_WRAP, CKM_AES_KEY_WRAP, "2026-06-02T23:00:00Z", &d);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.rule, "no-wrap-at-night");
	decide_key(p, "mac", PG_OP_SIGN, CKM_AES_CMAC, "2026-06-02T12:00:00Z", &d);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.reason, "no rule allows sign with key mac");
	decide_key(p, "mac", PG_OP_DECRYPT, CKM_AES_ECB, "2026-06-02T12:00:00Z", &d);
	ck_assert(!d.allow);
	ck_assert_str_eq(d.reason, "no rule allows decrypt with key mac");
	pg_policy_unref(p);
}
END_TEST

int
main(void)
{
	Suite *suite = suite_create("policy-decide");
	TCase *tc = tcase_create("decide");
	SRunner *runner;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_example_allows_in_office_hours);
	tcase_add_test(tc, test_example_freeze);
	tcase_add_test(tc, test_example_outside_hours);
	tcase_add_test(tc, test_unnamed_key_and_pin_mismatch);
	tcase_add_test(tc, test_bad_operation);
	tcase_add_test(tc, test_deny_precedence_and_several_keys);
	tcase_add_test(tc, test_deciding_rule_names_the_key);
	tcase_add_test(tc, test_nearest_rule);
	tcase_add_test(tc, test_explain);
	tcase_add_test(tc, test_index_at_scale);
	tcase_add_test(tc, test_op_names);
	tcase_add_test(tc, test_new_operations);
	suite_add_tcase(suite, tc);
	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
