/* SPDX-License-Identifier: Apache-2.0
 *
 * Time windows: hours across the Europe/Berlin daylight-saving changes of
 * 2026, midnight wraps, weekday ranges (wrapping too) and inclusive date
 * ends in the rule's zone, all through pg_policy_decide with an injected
 * clock.
 */
#include "helpers.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One key per window, so each decision meets exactly one rule. */
static const char policy_yaml[] =
	PG_TEST_HEAD
	"keys:\n"
	"  office: {uri: \"pkcs11:object=office\", owner: t}\n"
	"  dst: {uri: \"pkcs11:object=dst\", owner: t}\n"
	"  night: {uri: \"pkcs11:object=night\", owner: t}\n"
	"  weekend: {uri: \"pkcs11:object=weekend\", owner: t}\n"
	"  wednesday: {uri: \"pkcs11:object=wednesday\", owner: t}\n"
	"  freeze: {uri: \"pkcs11:object=freeze\", owner: t}\n"
	"  leap: {uri: \"pkcs11:object=leap\", owner: t}\n"
	"  usual: {uri: \"pkcs11:object=usual\", owner: t}\n"
	"rules:\n"
	"  - name: usually-office\n"
	"    effect: allow\n"
	"    keys: [usual]\n"
	"    callers: {users: [0]}\n"
	"    usual: {days: [mon-fri], hours: \"08:00-19:00\", timezone: Europe/Berlin}\n"
	"  - name: office-hours\n"
	"    effect: allow\n"
	"    keys: [office]\n"
	"    callers: {users: [0]}\n"
	"    when: {days: [mon-fri], hours: \"09:00-17:00\", timezone: Europe/Berlin}\n"
	"  - name: around-the-change\n"
	"    effect: allow\n"
	"    keys: [dst]\n"
	"    callers: {users: [0]}\n"
	"    when: {hours: \"01:30-03:30\", timezone: Europe/Berlin}\n"
	"  - name: night-shift\n"
	"    effect: allow\n"
	"    keys: [night]\n"
	"    callers: {users: [0]}\n"
	"    when: {hours: \"22:00-06:00\"}\n"
	"  - name: long-weekend\n"
	"    effect: allow\n"
	"    keys: [weekend]\n"
	"    callers: {users: [0]}\n"
	"    when: {days: [fri-mon]}\n"
	"  - name: wednesdays\n"
	"    effect: allow\n"
	"    keys: [wednesday]\n"
	"    callers: {users: [0]}\n"
	"    when: {days: [wed], timezone: America/New_York}\n"
	"  - name: freeze-allow\n"
	"    effect: allow\n"
	"    keys: [freeze, leap]\n"
	"    callers: {users: [0]}\n"
	"  - name: year-end-freeze\n"
	"    effect: deny\n"
	"    keys: [freeze]\n"
	"    when: {dates: [\"2026-12-20..2027-01-04\"], timezone: Europe/Berlin}\n"
	"  - name: leap-day\n"
	"    effect: deny\n"
	"    keys: [leap]\n"
	"    when: {dates: [2028-02-29]}\n";

static pg_policy *policy;
static struct pg_caller caller;

static void
setup(void)
{
	struct pg_test_capture cap;

	policy = pg_test_load(policy_yaml, &cap);
	if (policy == NULL)
		pg_test_dump(&cap);
	ck_assert_ptr_nonnull(policy);
	memset(&caller, 0, sizeof caller);
	caller.uid_trust = PG_ID_ASSERTED;
	caller.uid = 0;
}

static void
teardown(void)
{
	pg_policy_unref(policy);
}

static bool
allowed_at(const char *key, const char *when, struct pg_decision *d)
{
	struct pg_key_match m = { .n = 1, .pin_mismatch = -1 };
	struct pg_request req = { .op = PG_OP_SIGN, .mechanism = CKM_ECDSA, .key = &m,
	                          .caller = &caller };
	struct pg_decision local;

	if (d == NULL)
		d = &local;
	ck_assert_int_ge(pg_policy_key_find(policy, key), 0);
	m.idx[0] = (unsigned)pg_policy_key_find(policy, key);
	req.now = pg_test_time(when);
	ck_assert(req.now != (time_t)-1);
	pg_policy_decide(policy, &req, d);
	return d->allow;
}

#define ALLOW(key, when) ck_assert_msg(allowed_at(key, when, NULL), "%s at %s should be allowed", key, when)
#define DENY(key, when) ck_assert_msg(!allowed_at(key, when, NULL), "%s at %s should be denied", key, when)

START_TEST(test_office_hours_winter_and_summer)
{
	struct pg_decision d;

	/* Friday 27 March 2026, CET (UTC+1). */
	DENY("office", "2026-03-27T07:59:59Z");   /* 08:59:59 */
	ALLOW("office", "2026-03-27T08:00:00Z");  /* 09:00:00, start inclusive */
	ALLOW("office", "2026-03-27T15:59:59Z");  /* 16:59:59 */
	DENY("office", "2026-03-27T16:00:00Z");   /* 17:00:00, end exclusive */
	/* Monday 30 March 2026, CEST (UTC+2) since Sunday. */
	DENY("office", "2026-03-30T06:59:59Z");
	ALLOW("office", "2026-03-30T07:00:00Z");
	ALLOW("office", "2026-03-30T14:59:59Z");
	DENY("office", "2026-03-30T15:00:00Z");
	/* Monday 26 October 2026: back to CET. */
	DENY("office", "2026-10-26T07:59:59Z");
	ALLOW("office", "2026-10-26T08:00:00Z");
	/* Saturday in office hours. */
	ck_assert(!allowed_at("office", "2026-03-28T10:00:00Z", &d));
	ck_assert_str_eq(d.reason, "no rule allows it; nearest: rule office-hours: "
	                 "Saturday is not in days [mon-fri] (Europe/Berlin)");
	ck_assert(!allowed_at("office", "2026-03-27T17:30:00Z", &d));
	ck_assert_str_eq(d.reason, "no rule allows it; nearest: rule office-hours: "
	                 "outside 09:00-17:00 Europe/Berlin (local time 18:30)");
}
END_TEST

START_TEST(test_spring_forward)
{
	/* 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00Z. */
	DENY("dst", "2026-03-29T00:29:59Z");      /* 01:29:59 CET */
	ALLOW("dst", "2026-03-29T00:30:00Z");     /* 01:30:00 CET */
	ALLOW("dst", "2026-03-29T00:59:59Z");     /* 01:59:59 CET */
	ALLOW("dst", "2026-03-29T01:00:00Z");     /* 03:00:00 CEST */
	ALLOW("dst", "2026-03-29T01:29:59Z");     /* 03:29:59 CEST */
	DENY("dst", "2026-03-29T01:30:00Z");      /* 03:30:00 CEST */
}
END_TEST

START_TEST(test_fall_back)
{
	/* 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00Z; 02:xx happens twice. */
	DENY("dst", "2026-10-24T23:29:59Z");      /* 01:29:59 CEST */
	ALLOW("dst", "2026-10-24T23:30:00Z");     /* 01:30:00 CEST */
	ALLOW("dst", "2026-10-25T00:30:00Z");     /* 02:30:00 CEST */
	ALLOW("dst", "2026-10-25T01:30:00Z");     /* 02:30:00 CET, the second time */
	ALLOW("dst", "2026-10-25T02:29:59Z");     /* 03:29:59 CET */
	DENY("dst", "2026-10-25T02:30:00Z");      /* 03:30:00 CET */
}
END_TEST

START_TEST(test_midnight_wrap)
{
	DENY("night", "2026-06-01T21:59:59Z");
	ALLOW("night", "2026-06-01T22:00:00Z");
	ALLOW("night", "2026-06-01T23:59:59Z");
	ALLOW("night", "2026-06-02T00:00:00Z");
	ALLOW("night", "2026-06-02T05:59:59Z");
	DENY("night", "2026-06-02T06:00:00Z");
	DENY("night", "2026-06-02T12:00:00Z");
}
END_TEST

START_TEST(test_weekday_ranges)
{
	/* fri-mon wraps over the weekend (UTC). 2026-06-04 is a Thursday. */
	DENY("weekend", "2026-06-04T23:59:59Z");
	ALLOW("weekend", "2026-06-05T00:00:00Z");  /* Friday */
	ALLOW("weekend", "2026-06-06T12:00:00Z");  /* Saturday */
	ALLOW("weekend", "2026-06-07T12:00:00Z");  /* Sunday */
	ALLOW("weekend", "2026-06-08T23:59:59Z");  /* Monday */
	DENY("weekend", "2026-06-09T00:00:00Z");   /* Tuesday */
	DENY("weekend", "2026-06-10T12:00:00Z");   /* Wednesday */

	/* A single day in another zone: Wednesday in New York (UTC-4 in June). */
	DENY("wednesday", "2026-06-10T03:59:59Z"); /* Tue 23:59:59 EDT */
	ALLOW("wednesday", "2026-06-10T04:00:00Z");
	ALLOW("wednesday", "2026-06-11T03:59:59Z"); /* Wed 23:59:59 EDT */
	DENY("wednesday", "2026-06-11T04:00:00Z");
}
END_TEST

START_TEST(test_inclusive_dates_in_zone)
{
	struct pg_decision d;

	/* 2026-12-20..2027-01-04 in Berlin (UTC+1 in winter). */
	ALLOW("freeze", "2026-12-19T22:59:59Z");   /* 19 Dec 23:59:59 */
	DENY("freeze", "2026-12-19T23:00:00Z");    /* 20 Dec 00:00:00: first day included */
	DENY("freeze", "2027-01-04T22:59:59Z");    /* 4 Jan 23:59:59: last day included */
	ALLOW("freeze", "2027-01-04T23:00:00Z");   /* 5 Jan 00:00:00 */

	ck_assert(!allowed_at("freeze", "2026-12-24T10:00:00Z", &d));
	ck_assert_str_eq(d.rule, "year-end-freeze");
	ck_assert_str_eq(d.reason, "rule year-end-freeze: date 2026-12-24 is in "
	                 "2026-12-20..2027-01-04 (Europe/Berlin)");

	DENY("leap", "2028-02-29T00:00:00Z");
	DENY("leap", "2028-02-29T23:59:59Z");
	ALLOW("leap", "2028-02-28T23:59:59Z");
	ALLOW("leap", "2028-03-01T00:00:00Z");
}
END_TEST

/* usual: changes no decision; outside it the decision says which part. */
START_TEST(test_usual_hours)
{
	struct pg_decision d;

	/* Friday 27 March 2026 12:00 in Berlin (CET). */
	ck_assert(allowed_at("usual", "2026-03-27T11:00:00Z", &d));
	ck_assert(!d.unusual);
	ck_assert_str_eq(d.unusual_reason, "");
	/* 03:12 in Berlin: allowed, unusual. */
	ck_assert(allowed_at("usual", "2026-03-27T02:12:00Z", &d));
	ck_assert(d.unusual);
	ck_assert_str_eq(d.unusual_reason, "rule usually-office allows it, but not at its usual "
	                 "time: outside 08:00-19:00 Europe/Berlin (local time 03:12)");
	/* Saturday noon: the days part. */
	ck_assert(allowed_at("usual", "2026-03-28T11:00:00Z", &d));
	ck_assert(d.unusual);
	ck_assert_str_eq(d.unusual_reason, "rule usually-office allows it, but not at its usual "
	                 "time: Saturday is not in days [mon-fri] (Europe/Berlin)");
	/* Monday 30 March, CEST: 07:30 UTC is 09:30 local, usual. */
	ck_assert(allowed_at("usual", "2026-03-30T07:30:00Z", &d));
	ck_assert(!d.unusual);
	/* A refusal is never unusual: the other keys have no usual:. */
	ck_assert(!allowed_at("office", "2026-03-28T10:00:00Z", &d));
	ck_assert(!d.unusual);
}
END_TEST

int
main(void)
{
	Suite *suite = suite_create("policy-time");
	TCase *tc = tcase_create("time");
	SRunner *runner;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_office_hours_winter_and_summer);
	tcase_add_test(tc, test_spring_forward);
	tcase_add_test(tc, test_fall_back);
	tcase_add_test(tc, test_midnight_wrap);
	tcase_add_test(tc, test_weekday_ranges);
	tcase_add_test(tc, test_inclusive_dates_in_zone);
	tcase_add_test(tc, test_usual_hours);
	suite_add_tcase(suite, tc);
	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
