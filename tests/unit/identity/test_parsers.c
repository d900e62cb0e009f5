/* SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests of the identity parsers on sample text: the systemd unit from
 * /proc/<pid>/cgroup, and the status, stat and fdinfo fields.
 */
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct unit_case {
	const char *text;
	const char *unit;       /* NULL: none */
};

static const struct unit_case unit_cases[] = {
	{ "0::/system.slice/ci-runner.service\n", "ci-runner.service" },
	{ "0::/system.slice/ci-runner.service", "ci-runner.service" },      /* no newline */
	/* Hybrid: v1 controllers first, the unified line last. */
	{ "12:pids:/system.slice/other.service\n1:name=systemd:/system.slice/v1.service\n"
	  "0::/system.slice/ci-runner.service\n", "ci-runner.service" },
	/* Below a user manager everything is the user's to create and name:
	 * never a unit, however it is named. */
	{ "0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
	  "app-gnome-firefox-4242.scope\n", NULL },
	{ "0::/user.slice/user-1000.slice/user@1000.service/app.slice/ci-signer.service\n", NULL },
	{ "0::/user.slice/user-1000.slice/user@1000.service/ci-signer.service\n", NULL },
	{ "0::/user.slice/user-1000.slice/user@1000.service/init.scope\n", NULL },
	{ "0::/user.slice/user-1000.slice/user@1000.service\n", NULL },
	{ "0::/user.slice/user-1000.slice/session-3.scope\n", "session-3.scope" },
	/* A service's own sub-cgroups below it are the service's: the first
	 * unit wins, whatever a delegated service names its children. */
	{ "0::/system.slice/docker-0123abcd.scope/init\n", "docker-0123abcd.scope" },
	{ "0::/system.slice/gitlab-runner.service/payload/job-1\n", "gitlab-runner.service" },
	{ "0::/system.slice/gitlab-runner.service/ci-signer.service\n", "gitlab-runner.service" },
	{ "0::/system.slice/gitlab-runner.service/x.slice/ci-signer.service\n",
	  "gitlab-runner.service" },
	/* Nested slices, and a unit in a slice of the admin's own. */
	{ "0::/system.slice/system-getty.slice/getty@tty1.service\n", "getty@tty1.service" },
	{ "0::/signing.slice/ci-signer.service\n", "ci-signer.service" },
	/* Not below slices only: a cgroup someone else made, not systemd's. */
	{ "0::/process_api/5cd5e92f/ci-signer.service\n", NULL },
	{ "0::/system.slice/foo/ci-signer.service\n", NULL },
	{ "0::system.slice/ci-signer.service\n", NULL },        /* not absolute */
	{ "0::/system.slice/sshd.socket\n", "sshd.socket" },
	{ "0::/system.slice/home.mount\n", "home.mount" },
	{ "0::/system.slice/dev-sda2.swap\n", "dev-sda2.swap" },
	{ "0::/system.slice/systemd-fsck@dev-disk-by\\x2duuid-1234.service\n",
	  "systemd-fsck@dev-disk-by\\x2duuid-1234.service" },
	{ "0::/init.scope\n", "init.scope" },
	/* No unit. */
	{ "0::/\n", NULL },
	{ "0::/system.slice\n", NULL },
	{ "0::/user.slice/user-1000.slice\n", NULL },
	{ "0::/process_api/5cd5e92f\n", NULL },
	{ "0::/system.slice/.service\n", NULL },                /* no name */
	{ "0::/system.slice/foo.service.d/x\n", NULL },         /* not a suffix */
	{ "0::/system.slice/foo.services\n", NULL },
	{ "0::/system.slice/foo.target\n", NULL },
	/* cgroup v1 only: no unified line, the named hierarchy is not read. */
	{ "1:name=systemd:/system.slice/v1.service\n2:cpu:/x.service\n", NULL },
	{ "10::/system.slice/not-unified.service\n", NULL },
	{ "", NULL },
	{ "\n\n", NULL },
	{ "garbage", NULL },
};

START_TEST(test_cgroup_unit)
{
	const struct unit_case *c = &unit_cases[_i];
	char *unit;

	errno = 0;
	unit = pg_cgroup_unit(c->text);
	if (c->unit == NULL) {
		ck_assert_msg(unit == NULL, "'%s' gave '%s'", c->text, unit);
		ck_assert_int_eq(errno, ENOENT);
	} else {
		ck_assert_msg(unit != NULL, "'%s' gave no unit", c->text);
		ck_assert_str_eq(unit, c->unit);
	}
	free(unit);
}
END_TEST

START_TEST(test_cgroup_unit_path)
{
	char *path = (char *)"unset", *unit;

	unit = pg_cgroup_unit_at("1:name=systemd:/x\n0::/system.slice/ci-signer.service/payload\n",
	                         &path);
	ck_assert_str_eq(unit, "ci-signer.service");
	ck_assert_str_eq(path, "/system.slice/ci-signer.service");
	free(unit);
	free(path);
	path = (char *)"unset";
	unit = pg_cgroup_unit_at("0::/user.slice/user-1000.slice/user@1000.service/a.service\n", &path);
	ck_assert_ptr_null(unit);
	ck_assert_ptr_null(path);
}
END_TEST

static const char status_text[] =
	"Name:\tbash\n"
	"Umask:\t0022\n"
	"State:\tS (sleeping)\n"
	"Tgid:\t4242\n"
	"Uid:\t1000\t1001\t1002\t1003\n"
	"Gid:\t100\t100\t100\t100\n"
	"FDSize:\t256\n"
	"Groups:\t27 100 4294967294 \n"
	"NStgid:\t4242\n";

START_TEST(test_status_groups)
{
	gid_t *groups = NULL;
	size_t n = 0;

	ck_assert(pg_proc_status_groups(status_text, &groups, &n));
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(groups[0], 27);
	ck_assert_uint_eq(groups[1], 100);
	ck_assert_uint_eq(groups[2], 4294967294u);
	/* The primary is appended once, not twice. */
	ck_assert(pg_groups_with_primary(&groups, &n, 100));
	ck_assert_uint_eq(n, 3);
	ck_assert(pg_groups_with_primary(&groups, &n, 5));
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(groups[3], 5);
	free(groups);

	/* No supplementary groups at all: an empty, successful list. */
	groups = NULL;
	ck_assert(pg_proc_status_groups("Uid:\t0\t0\t0\t0\nGroups:\t\nNStgid:\t1\n", &groups, &n));
	ck_assert_uint_eq(n, 0);
	free(groups);
	ck_assert(pg_proc_status_groups("Groups:", &groups, &n));
	ck_assert_uint_eq(n, 0);
	free(groups);

	/* Missing, or not numbers, or too large for a gid_t. */
	ck_assert(!pg_proc_status_groups("Name:\tx\nUid:\t0\n", &groups, &n));
	ck_assert(!pg_proc_status_groups("Groups:\t12 abc\n", &groups, &n));
	ck_assert(!pg_proc_status_groups("Groups:\t-1\n", &groups, &n));
	ck_assert(!pg_proc_status_groups("Groups:\t4294967296\n", &groups, &n));
	ck_assert(!pg_proc_status_groups("Groups:\t99999999999999999999999\n", &groups, &n));
	/* "XGroups:" is another field. */
	ck_assert(!pg_proc_status_groups("XGroups:\t1\n", &groups, &n));
}
END_TEST

START_TEST(test_status_euid)
{
	uid_t euid = 0;

	ck_assert(pg_proc_status_euid(status_text, &euid));
	ck_assert_uint_eq(euid, 1001);
	ck_assert(!pg_proc_status_euid("Uid:\t1000\n", &euid));
	ck_assert(!pg_proc_status_euid("Gid:\t1 2 3 4\n", &euid));
}
END_TEST

START_TEST(test_stat_starttime)
{
	unsigned long long st = 0;

	ck_assert(pg_proc_stat_starttime("4242 (bash) S 1 4242 4242 34816 4242 4194560 1234 0 0 0 "
					 "1 2 0 0 20 0 1 0 987654 8392704 1200 18446744073709551615\n",
					 &st));
	ck_assert_uint_eq(st, 987654);
	/* A command name with spaces and a ')' of its own. */
	ck_assert(pg_proc_stat_starttime("77 (a) b (c)) R 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 "
					 "1 0 31337 0 0\n", &st));
	ck_assert_uint_eq(st, 31337);
	ck_assert(!pg_proc_stat_starttime("77 (x) R 1 2 3\n", &st));          /* too short */
	ck_assert(!pg_proc_stat_starttime("77 x R 1 2 3\n", &st));            /* no comm */
	ck_assert(!pg_proc_stat_starttime("77 (x) R 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 "
					  "12x 0\n", &st));
}
END_TEST

START_TEST(test_trust_names)
{
	ck_assert_str_eq(pg_id_trust_name(PG_ID_ATTESTED), "attested");
	ck_assert_str_eq(pg_id_trust_name(PG_ID_ASSERTED), "asserted");
	ck_assert_str_eq(pg_id_trust_name(PG_ID_REPORTED), "reported");
	ck_assert_str_eq(pg_id_trust_name(PG_ID_UNAVAILABLE), "unavailable");
	ck_assert_str_eq(pg_id_trust_name((enum pg_id_trust)42), "unavailable");
}
END_TEST

static Suite *
parsers_suite(void)
{
	Suite *s = suite_create("identity-parsers");
	TCase *tc = tcase_create("parsers");

	tcase_add_loop_test(tc, test_cgroup_unit, 0, sizeof unit_cases / sizeof *unit_cases);
	tcase_add_test(tc, test_cgroup_unit_path);
	tcase_add_test(tc, test_status_groups);
	tcase_add_test(tc, test_status_euid);
	tcase_add_test(tc, test_stat_starttime);
	tcase_add_test(tc, test_trust_names);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(parsers_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
