/* SPDX-License-Identifier: Apache-2.0
 *
 * Loader tests: every error and warning the policy language promises, each
 * at its exact line and column; the settings and their defaults; the
 * shipped examples; and garbage input that must be refused, not crash.
 */
#include "helpers.h"
#include "p11gate/common.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYS "keys:\n  k: {uri: \"pkcs11:object=k\", owner: t}\n"          /* lines 3-4 */
#define RULE "rules:\n  - name: r\n    effect: allow\n    keys: [k]\n"   /* lines 5-8 */

struct diag_case {
	const char *what;
	const char *yaml;
	enum pg_severity severity;
	unsigned long line, column;
	const char *text;
	bool loads;                  /* a warning case: the policy still loads */
};

static const struct diag_case cases[] = {
	{ "unknown rule field",
	  PG_TEST_HEAD KEYS "rules:\n  - name: r\n    efect: allow\n    keys: [k]\n",
	  PG_DIAG_ERROR, 7, 5, "unknown field 'efect' in rule; did you mean 'effect'? (allowed: name, "
	  "effect, keys, operations, callers, mechanisms, when, usual, approval, limit, break_glass)", false },
	{ "alerts.refusals without per",
	  PG_TEST_HEAD KEYS RULE "    callers: {users: [0]}\nalerts:\n  refusals: {max: 5}\n",
	  PG_DIAG_ERROR, 11, 13, "alerts.refusals needs per: the window", false },
	{ "alerts.refusals with a bad span",
	  PG_TEST_HEAD KEYS RULE "    callers: {users: [0]}\nalerts:\n  refusals: {max: 5, per: 10 minutes}\n",
	  PG_DIAG_ERROR, 11, 27, "alerts.refusals.per must be a span from 1s to 1w", false },
	{ "alerts.new_caller by a misspelt word",
	  PG_TEST_HEAD KEYS RULE "    callers: {users: [0]}\nalerts:\n  new_caller: {by: [user, programs]}\n",
	  PG_DIAG_ERROR, 11, 27, "alerts.new_caller.by must be user or program (or a list of them), not programs", false },
	{ "limit with a per that is not a duration",
	  PG_TEST_HEAD KEYS RULE "    callers: {users: [0]}\n    limit: {max: 5, per: 60}\n",
	  PG_DIAG_ERROR, 10, 26, "limit.per must be a duration from 1s to 366d", false },
	{ "break_glass behind the server without grants.dir",
	  PG_TEST_HEAD "identity: peer\nserver_socket: /run/p11gate/pkcs11.sock\n" KEYS RULE
	  "    callers: {users: [0]}\n    break_glass: {max_signatures: 1, per: 1d}\n",
	  PG_DIAG_WARNING, 12, 18, "break-glass rule 'r' can never match: behind p11-kit server", true },
	{ "break_glass without its cap",
	  PG_TEST_HEAD KEYS RULE "    callers: {users: [0]}\n    break_glass: {per: 1d}\n",
	  PG_DIAG_ERROR, 10, 18, "rule 'r': break_glass has no max_signatures", false },
	{ "usual on a deny rule",
	  PG_TEST_HEAD KEYS "rules:\n  - name: r\n    effect: deny\n    keys: [k]\n    usual: {days: [mon]}\n",
	  PG_DIAG_ERROR, 9, 12, "usual: is only for allow rules", false },
	{ "usual with no window",
	  PG_TEST_HEAD KEYS RULE "    callers: {users: [0]}\n    usual: {}\n",
	  PG_DIAG_ERROR, 10, 12, "usual: of rule 'r' states no window; give days:, hours: or dates:", false },
	{ "usual with a misspelt field",
	  PG_TEST_HEAD KEYS RULE "    callers: {users: [0]}\n    usual: {hour: \"08:00-19:00\"}\n",
	  PG_DIAG_ERROR, 10, 13, "unknown field 'hour' in usual; did you mean 'hours'?", false },
	{ "usual with impossible hours",
	  PG_TEST_HEAD KEYS RULE "    callers: {users: [0]}\n    usual: {hours: \"08:00-25:00\"}\n",
	  PG_DIAG_ERROR, 10, 20, "hours", false },
	{ "missing effect",
	  PG_TEST_HEAD KEYS "rules:\n  - name: r\n    efect: allow\n    keys: [k]\n",
	  PG_DIAG_ERROR, 6, 5, "rule 'r' has no effect", false },
	{ "bad effect",
	  PG_TEST_HEAD KEYS "rules:\n  - name: r\n    effect: alow\n    keys: [k]\n",
	  PG_DIAG_ERROR, 7, 13, "effect must be allow or deny, not 'alow'", false },
	{ "undefined key",
	  PG_TEST_HEAD KEYS "rules:\n  - name: r\n    effect: deny\n    keys: [k, foo]\n",
	  PG_DIAG_ERROR, 8, 15, "rule 'r' names key 'foo', which is not defined under keys:", false },
	{ "empty keys list",
	  PG_TEST_HEAD KEYS "rules:\n  - name: r\n    effect: deny\n    keys: []\n",
	  PG_DIAG_ERROR, 8, 11, "empty keys list", false },
	{ "malformed uri",
	  PG_TEST_HEAD "keys:\n  k: {uri: \"pkcs11:object=%zz\", owner: t}\n" RULE,
	  PG_DIAG_ERROR, 4, 12, "is not a valid PKCS#11 URI: ", false },
	{ "uri with a bad scheme",
	  PG_TEST_HEAD "keys:\n  k: {uri: \"pkcs12:object=k\", owner: t}\n" RULE,
	  PG_DIAG_ERROR, 4, 12, "URI scheme must be 'pkcs11:'", false },
	{ "uri with an unknown attribute",
	  PG_TEST_HEAD "keys:\n  k: {uri: \"pkcs11:objekt=k\", owner: t}\n" RULE,
	  PG_DIAG_ERROR, 4, 12, "p11-kit does not know", false },
	{ "uri with a pin",
	  PG_TEST_HEAD "keys:\n  k: {uri: \"pkcs11:object=k?pin-value=1234\", owner: t}\n" RULE,
	  PG_DIAG_ERROR, 4, 12, "holds a PIN", false },
	{ "uri with a slot-id",
	  PG_TEST_HEAD "keys:\n  k: {uri: \"pkcs11:slot-id=2;object=k\", owner: t}\n" RULE,
	  PG_DIAG_ERROR, 4, 12, "slot-id", false },
	{ "key without uri",
	  PG_TEST_HEAD "keys:\n  k: {owner: t}\n" RULE,
	  PG_DIAG_ERROR, 4, 3, "key 'k' has no uri", false },
	{ "bad pin",
	  PG_TEST_HEAD "keys:\n  k:\n    uri: \"pkcs11:object=k\"\n    public_key_sha256: abcd\n" RULE,
	  PG_DIAG_ERROR, 6, 24, "public_key_sha256 must be 64 hex digits", false },
	{ "unknown mechanism",
	  PG_TEST_HEAD KEYS RULE "    mechanisms: [CKM_FOO]\n",
	  PG_DIAG_ERROR, 9, 18, "unknown mechanism 'CKM_FOO'", false },
	{ "mechanism without prefix",
	  PG_TEST_HEAD KEYS RULE "    mechanisms: [CKM_ECDSA, RSA_PKCS]\n",
	  PG_DIAG_ERROR, 9, 29, "did you mean 'CKM_RSA_PKCS'?", false },
	{ "bad vendor mechanism",
	  PG_TEST_HEAD KEYS RULE "    mechanisms: [0x8000000G]\n",
	  PG_DIAG_ERROR, 9, 18, "not a hexadecimal number", false },
	{ "unknown operation",
	  PG_TEST_HEAD KEYS RULE "    operations: [sign, decrpyt]\n",
	  PG_DIAG_ERROR, 9, 24, "unknown operation 'decrpyt'; did you mean 'decrypt'?", false },
	{ "unknown operation near a new one",
	  PG_TEST_HEAD KEYS RULE "    operations: [sign, wrpa]\n",
	  PG_DIAG_ERROR, 9, 24, "unknown operation 'wrpa'; did you mean 'wrap'? (allowed: sign, decrypt, "
	  "derive, unwrap, manage, encrypt, wrap, verify)", false },
	{ "unknown time zone",
	  PG_TEST_HEAD KEYS RULE "    when:\n      timezone: Europe/Berln\n",
	  PG_DIAG_ERROR, 10, 17, "unknown time zone 'Europe/Berln'", false },
	{ "hour out of range",
	  PG_TEST_HEAD KEYS RULE "    when:\n      hours: \"25:00-17:00\"\n",
	  PG_DIAG_ERROR, 10, 14, "hours '25:00-17:00': hour must be 00-23", false },
	{ "minute out of range",
	  PG_TEST_HEAD KEYS RULE "    when:\n      hours: 09:00-17:60\n",
	  PG_DIAG_ERROR, 10, 14, "hours '09:00-17:60': minute must be 00-59", false },
	{ "malformed hours",
	  PG_TEST_HEAD KEYS RULE "    when:\n      hours: 9-17\n",
	  PG_DIAG_ERROR, 10, 14, "must look like \"09:00-17:00\"", false },
	{ "empty hours window",
	  PG_TEST_HEAD KEYS RULE "    when:\n      hours: \"09:00-09:00\"\n",
	  PG_DIAG_ERROR, 10, 14, "starts and ends at the same time", false },
	{ "impossible date",
	  PG_TEST_HEAD KEYS RULE "    when:\n      dates: [\"2026-02-30\"]\n",
	  PG_DIAG_ERROR, 10, 15, "date '2026-02-30' does not exist", false },
	{ "not a leap year",
	  PG_TEST_HEAD KEYS RULE "    when:\n      dates: [2028-02-29, 2100-02-29]\n",
	  PG_DIAG_ERROR, 10, 27, "date '2100-02-29' does not exist", false },
	{ "month out of range",
	  PG_TEST_HEAD KEYS RULE "    when:\n      dates: [2026-13-01]\n",
	  PG_DIAG_ERROR, 10, 15, "month must be 01-12", false },
	{ "date range backwards",
	  PG_TEST_HEAD KEYS RULE "    when:\n      dates: [2026-02-01, \"2026-12-20..2026-01-01\"]\n",
	  PG_DIAG_ERROR, 10, 27, "date range ends (2026-01-01) before it starts (2026-12-20)", false },
	{ "unknown day",
	  PG_TEST_HEAD KEYS RULE "    when:\n      days: [mon-fro]\n",
	  PG_DIAG_ERROR, 10, 14, "day 'mon-fro' must be mon, tue", false },
	{ "unknown when field",
	  PG_TEST_HEAD KEYS RULE "    when:\n      hour: 09:00-10:00\n",
	  PG_DIAG_ERROR, 10, 7, "unknown field 'hour' in when; did you mean 'hours'?", false },
	{ "duplicate rule name",
	  PG_TEST_HEAD KEYS RULE "  - name: r\n    effect: deny\n    keys: [k]\n",
	  PG_DIAG_ERROR, 9, 11, "duplicate rule name 'r' (first used at line 6)", false },
	{ "rule without name",
	  PG_TEST_HEAD KEYS "rules:\n  - effect: deny\n    keys: [k]\n",
	  PG_DIAG_ERROR, 6, 5, "rule 1 has no name", false },
	{ "duplicate key in a mapping",
	  PG_TEST_HEAD KEYS RULE "    effect: deny\n",
	  PG_DIAG_ERROR, 9, 5, "duplicate key 'effect' (first given at line 7)", false },
	{ "duplicate top-level section",
	  PG_TEST_HEAD KEYS "keys: {}\n",
	  PG_DIAG_ERROR, 5, 1, "duplicate key 'keys'", false },
	{ "yaml anchor",
	  PG_TEST_HEAD "keys:\n  k: &base {uri: \"pkcs11:object=k\", owner: t}\n  j: *base\n",
	  PG_DIAG_ERROR, 4, 6, "YAML anchors (&base) are not allowed", false },
	{ "yaml alias",
	  PG_TEST_HEAD "keys:\n  k: &base {uri: \"pkcs11:object=k\", owner: t}\n  j: *base\n",
	  PG_DIAG_ERROR, 5, 6, "YAML aliases (*base) are not allowed", false },
	{ "yaml tag",
	  "version: !!int 1\nmodule: /x\n",
	  PG_DIAG_ERROR, 1, 10, "YAML tags", false },
	{ "second document",
	  PG_TEST_HEAD "---\nversion: 1\n",
	  PG_DIAG_ERROR, 3, 1, "a second YAML document", false },
	{ "syntax error at end",
	  "version: 1\nmodule: [a\n",
	  PG_DIAG_ERROR, 3, 1, "YAML syntax error", false },
	{ "tab indentation",
	  "version: 1\n\tmodule: /x\n",
	  PG_DIAG_ERROR, 2, 1, "YAML syntax error", false },
	{ "empty file",
	  "# nothing but a comment\n",
	  PG_DIAG_ERROR, 1, 1, "holds no YAML document", false },
	{ "not a mapping",
	  "- version: 1\n",
	  PG_DIAG_ERROR, 1, 1, "the policy must be a mapping", false },
	{ "version 2",
	  "version: 2\nmodule: /usr/lib/softhsm/libsofthsm2.so\n",
	  PG_DIAG_ERROR, 1, 10, "version must be 1", false },
	{ "no version",
	  "module: /usr/lib/softhsm/libsofthsm2.so\n",
	  PG_DIAG_ERROR, 1, 1, "no version", false },
	{ "no module",
	  "version: 1\n",
	  PG_DIAG_ERROR, 1, 1, "no module", false },
	{ "relative module",
	  "version: 1\nmodule: libsofthsm2.so\n",
	  PG_DIAG_ERROR, 2, 9, "module must be an absolute path", false },
	{ "unknown top-level field",
	  PG_TEST_HEAD "rulez: []\n",
	  PG_DIAG_ERROR, 3, 1, "unknown field 'rulez' in the policy; did you mean 'rules'?", false },
	{ "keys as a list",
	  PG_TEST_HEAD "keys: [k]\n",
	  PG_DIAG_ERROR, 3, 7, "keys must be a mapping", false },
	{ "rule as a string",
	  PG_TEST_HEAD KEYS "rules:\n  - r\n",
	  PG_DIAG_ERROR, 6, 5, "rule 1 must be a mapping", false },
	{ "key that is empty",
	  PG_TEST_HEAD "keys:\n  k:\n" RULE,
	  PG_DIAG_ERROR, 4, 3, "key 'k' is empty; it must be a mapping", false },
	{ "bool that is not",
	  PG_TEST_HEAD "caller_messages: yes\n",
	  PG_DIAG_ERROR, 3, 18, "caller_messages must be true or false", false },
	{ "max age too long",
	  PG_TEST_HEAD "key_names_max_age_ms: 60001\n",
	  PG_DIAG_ERROR, 3, 23, "key_names_max_age_ms must be a whole number of milliseconds from 0 to 60000", false },
	{ "max age negative",
	  PG_TEST_HEAD "key_names_max_age_ms: -1\n",
	  PG_DIAG_ERROR, 3, 23, "not '-1'", false },
	{ "max age with a unit",
	  PG_TEST_HEAD "key_names_max_age_ms: 1s\n",
	  PG_DIAG_ERROR, 3, 23, "not '1s'", false },
	{ "max age quoted",
	  PG_TEST_HEAD "key_names_max_age_ms: \"100\"\n",
	  PG_DIAG_ERROR, 3, 23, "key_names_max_age_ms must be a whole number", false },
	{ "quoted bool",
	  PG_TEST_HEAD "audit:\n  sync: \"true\"\n",
	  PG_DIAG_ERROR, 4, 9, "audit.sync must be true or false", false },
	{ "unknown audit field",
	  PG_TEST_HEAD "audit: {file: /var/log/a.jsonl, sink: true}\n",
	  PG_DIAG_ERROR, 3, 33, "unknown field 'sink' in audit; did you mean 'sync'?", false },
	{ "relative audit file",
	  PG_TEST_HEAD "audit: {file: audit.jsonl}\n",
	  PG_DIAG_ERROR, 3, 15, "audit.file must be an absolute path", false },
	{ "bad identity",
	  PG_TEST_HEAD "identity: peers\n",
	  PG_DIAG_ERROR, 3, 11, "identity must be process", false },
	{ "peer without a socket",
	  PG_TEST_HEAD "identity: peer\n",
	  PG_DIAG_ERROR, 3, 11, "identity: peer needs server_socket", false },
	{ "relative socket",
	  PG_TEST_HEAD "identity: peer\nserver_socket: p11-kit.sock\n",
	  PG_DIAG_ERROR, 4, 16, "server_socket must be an absolute path", false },
	{ "socket path too long",
	  PG_TEST_HEAD "identity: peer\nserver_socket: /run/p11gate/"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  PG_DIAG_ERROR, 4, 16, "is longer than a unix socket path can be (107 bytes)", false },
	{ "socket without peer",
	  PG_TEST_HEAD "server_socket: /run/p11gate.sock\n" KEYS RULE "    callers: {users: [0]}\n",
	  PG_DIAG_WARNING, 3, 16, "server_socket is only used with identity: peer", true },
	{ "relative program",
	  PG_TEST_HEAD KEYS RULE "    callers: {programs: [bin/sh]}\n",
	  PG_DIAG_ERROR, 9, 26, "program 'bin/sh' must be an absolute path", false },
	{ "bad program hash",
	  PG_TEST_HEAD KEYS RULE "    callers:\n      program_sha256: [abc]\n",
	  PG_DIAG_ERROR, 10, 24, "program_sha256 entry must be 64 hex digits", false },
	{ "bad env name",
	  PG_TEST_HEAD KEYS RULE "    callers:\n      env: {CI-JOB: \"*\"}\n",
	  PG_DIAG_ERROR, 10, 13, "'CI-JOB' is not an environment variable name", false },
	{ "unknown caller field",
	  PG_TEST_HEAD KEYS RULE "    callers:\n      user: [root]\n",
	  PG_DIAG_ERROR, 10, 7, "unknown field 'user' in callers; did you mean 'users'?", false },
	{ "users as a string",
	  PG_TEST_HEAD KEYS RULE "    callers:\n      users: root\n",
	  PG_DIAG_ERROR, 10, 14, "users must be a sequence", false },
	{ "NUL in a value",
	  PG_TEST_HEAD "audit: {file: \"/var/log/a\\0b\"}\n",
	  PG_DIAG_ERROR, 3, 15, "NUL character", false },

	/* Warnings: the policy loads. */
	{ "key without owner",
	  PG_TEST_HEAD "keys:\n  k: {uri: \"pkcs11:object=k\"}\n" RULE "    callers: {users: [0]}\n",
	  PG_DIAG_WARNING, 4, 3, "key 'k' has no owner", true },
	{ "key no rule names",
	  PG_TEST_HEAD KEYS "  j: {uri: \"pkcs11:object=j\", owner: t}\n" RULE "    callers: {users: [0]}\n",
	  PG_DIAG_WARNING, 5, 3, "key 'j' is not named by any rule", true },
	{ "allow rule without callers",
	  PG_TEST_HEAD KEYS RULE,
	  PG_DIAG_WARNING, 6, 5, "allow rule 'r' has no callers", true },
	{ "user that does not exist",
	  PG_TEST_HEAD KEYS RULE "    callers: {users: [0, no-such-user-here]}\n",
	  PG_DIAG_WARNING, 9, 26, "user 'no-such-user-here' does not exist on this machine", true },
	{ "no user exists",
	  PG_TEST_HEAD KEYS RULE "    callers: {users: [no-such-user-here, nor-this-one]}\n",
	  PG_DIAG_WARNING, 9, 22, "rule 'r' can never match: none of its users exist here", true },
	{ "empty days",
	  PG_TEST_HEAD KEYS RULE "    callers: {users: [0]}\n    when: {days: []}\n",
	  PG_DIAG_WARNING, 10, 18, "rule 'r' can never match: its days list is empty", true },
	{ "uri that matches everything",
	  PG_TEST_HEAD "keys:\n  k: {uri: \"pkcs11:\", owner: t}\n" RULE "    callers: {users: [0]}\n",
	  PG_DIAG_WARNING, 4, 12, "matches every key on every token", true },
	{ "decrypt with any mechanism",
	  PG_TEST_HEAD KEYS RULE "    callers: {users: [0]}\n    operations: [decrypt]\n",
	  PG_DIAG_WARNING, 10, 17, "allow rule 'r' covers decrypt with any mechanism, CKM_RSA_PKCS too, "
	  "whose padding errors let a caller compute signatures with the key over many calls "
	  "(Bleichenbacher); list the mechanisms it needs, e.g. mechanisms: [CKM_RSA_PKCS_OAEP]", true },
	{ "raw RSA listed for decrypt",
	  PG_TEST_HEAD KEYS RULE "    callers: {users: [0]}\n    operations: [decrypt]\n"
	  "    mechanisms: [CKM_RSA_X_509]\n",
	  PG_DIAG_WARNING, 11, 18, "rule 'r' lists CKM_RSA_X_509 for decrypt, but a raw RSA decryption is "
	  "a signature and is judged as sign, which this rule does not cover; allow it in a sign rule if "
	  "it is meant", true },
	{ "PKCS#1 v1.5 listed for decrypt",
	  PG_TEST_HEAD KEYS RULE "    callers: {users: [0]}\n    operations: [decrypt, encrypt]\n"
	  "    mechanisms: [CKM_RSA_PKCS_OAEP, CKM_RSA_PKCS]\n",
	  PG_DIAG_WARNING, 11, 37, "rule 'r' allows decrypt with CKM_RSA_PKCS: its padding errors let a "
	  "caller compute signatures with the key over many calls (Bleichenbacher)", true },
	{ "no rules",
	  PG_TEST_HEAD KEYS,
	  PG_DIAG_WARNING, 1, 1, "no rules: every use of every key is denied", true },
};

START_TEST(test_diagnostic)
{
	const struct diag_case *c = &cases[_i];
	struct pg_test_capture cap;
	pg_policy *policy = pg_test_load(c->yaml, &cap);
	const struct pg_test_diag *d = pg_test_find(&cap, c->severity, c->line, c->column, c->text);

	if (d == NULL) {
		fprintf(stderr, "case '%s': expected %s at %lu:%lu containing \"%s\"; got:\n", c->what,
		        c->severity == PG_DIAG_ERROR ? "error" : "warning", c->line, c->column, c->text);
		pg_test_dump(&cap);
	}
	ck_assert_msg(d != NULL, "case '%s'", c->what);
	if (c->loads) {
		ck_assert_msg(policy != NULL && cap.errors == 0, "case '%s' should load", c->what);
	} else {
		ck_assert_msg(policy == NULL, "case '%s' should not load", c->what);
		ck_assert_uint_gt(cap.errors, 0);
	}
	pg_policy_unref(policy);
}
END_TEST

/* A decrypt rule that names padded mechanisms only, a deny rule, and a
 * rule that covers sign too draw no decrypt warning. */
START_TEST(test_decrypt_rules_without_warning)
{
	struct pg_test_capture cap;
	pg_policy *policy = pg_test_load(PG_TEST_HEAD KEYS
	                                 "rules:\n"
	                                 "  - {name: a, effect: allow, keys: [k], callers: {users: [0]},\n"
	                                 "     operations: [decrypt], mechanisms: [CKM_RSA_PKCS_OAEP]}\n"
	                                 "  - {name: b, effect: deny, keys: [k], operations: [decrypt]}\n"
	                                 "  - {name: c, effect: allow, keys: [k], callers: {users: [0]},\n"
	                                 "     operations: [sign, decrypt], mechanisms: [CKM_RSA_X_509]}\n",
	                                 &cap);

	if (cap.warnings != 0)
		pg_test_dump(&cap);
	ck_assert_ptr_nonnull(policy);
	ck_assert_uint_eq(cap.warnings, 0);
	pg_policy_unref(policy);
}
END_TEST

/* Every error is reported, not only the first. */
START_TEST(test_all_errors_reported)
{
	struct pg_test_capture cap;
	pg_policy *policy = pg_test_load(PG_TEST_HEAD KEYS
	                                 "rules:\n  - name: r\n    effect: alow\n    keys: [k, nope]\n"
	                                 "    when: {hours: \"24:00-01:00\", dates: [2026-02-29]}\n",
	                                 &cap);

	ck_assert_ptr_null(policy);
	ck_assert_ptr_nonnull(pg_test_find(&cap, PG_DIAG_ERROR, 7, 13, "not 'alow'"));
	ck_assert_ptr_nonnull(pg_test_find(&cap, PG_DIAG_ERROR, 8, 15, "'nope'"));
	ck_assert_ptr_nonnull(pg_test_find(&cap, PG_DIAG_ERROR, 9, 19, "hour must be 00-23"));
	ck_assert_ptr_nonnull(pg_test_find(&cap, PG_DIAG_ERROR, 9, 42, "2026-02-29"));
	ck_assert_uint_eq(cap.errors, 4);
}
END_TEST

START_TEST(test_unreadable_file)
{
	struct pg_test_capture cap = { 0 };
	pg_policy *policy = pg_policy_load("/nonexistent/p11gate.yaml", pg_test_capture_fn, &cap);

	ck_assert_ptr_null(policy);
	ck_assert_uint_eq(cap.n, 1);
	ck_assert_uint_eq(cap.diags[0].line, 0);
	ck_assert_str_eq(cap.diags[0].message,
	                 "cannot read /nonexistent/p11gate.yaml: No such file or directory");

	memset(&cap, 0, sizeof cap);
	ck_assert_ptr_null(pg_policy_load("/", pg_test_capture_fn, &cap));
	ck_assert_uint_eq(cap.diags[0].line, 0);
	ck_assert_str_eq(cap.diags[0].message, "cannot read /: not a regular file");
}
END_TEST

/* A FIFO with no writer blocks a plain open() forever: refused at once. */
START_TEST(test_fifo_refused)
{
	struct pg_test_capture cap = { 0 };
	char dir[] = "/tmp/p11gate-fifo-XXXXXX", path[64];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/policy.yaml", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_ptr_null(pg_policy_load(path, pg_test_capture_fn, &cap));
	ck_assert_uint_eq(cap.n, 1);
	ck_assert(strstr(cap.diags[0].message, "not a regular file") != NULL);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(test_settings)
{
	static const char yaml[] =
		"version: 1\n"
		"module:   /usr/lib/softhsm/libsofthsm2.so\n"
		"audit:\n"
		"  file: /var/log/p11gate/audit.jsonl\n"
		"  sync: false\n"
		"  syslog: true\n"
		"caller_messages: false\n"
		"identity: peer\n"
		"server_socket: /run/p11gate/p11-kit.sock\n"
		"key_names_max_age_ms: 0\n";
	unsigned char expected[PG_SHA256_LEN];
	struct pg_test_capture cap;
	const struct pg_settings *s;
	pg_policy *policy = pg_test_load(yaml, &cap);

	ck_assert_ptr_nonnull(policy);
	s = pg_policy_settings(policy);
	ck_assert_str_eq(s->path, "test.yaml");
	ck_assert_str_eq(s->module, "/usr/lib/softhsm/libsofthsm2.so");
	ck_assert_uint_eq(s->module_line, 2);
	ck_assert_uint_eq(s->module_column, 11);
	ck_assert_str_eq(s->audit_file, "/var/log/p11gate/audit.jsonl");
	ck_assert(!s->audit_sync);
	ck_assert(s->audit_syslog);
	ck_assert(!s->caller_messages);
	ck_assert_int_eq(s->identity, PG_IDENTITY_PEER);
	ck_assert_str_eq(s->server_socket, "/run/p11gate/p11-kit.sock");
	ck_assert_uint_eq(s->key_names_max_age_ms, 0);
	ck_assert(pg_sha256(yaml, strlen(yaml), expected));
	ck_assert_mem_eq(s->sha256, expected, PG_SHA256_LEN);
	ck_assert_uint_eq(pg_policy_key_count(policy), 0);
	pg_policy_unref(policy);
}
END_TEST

START_TEST(test_settings_defaults)
{
	struct pg_test_capture cap;
	pg_policy *policy = pg_test_load(PG_TEST_HEAD, &cap);
	const struct pg_settings *s;

	ck_assert_ptr_nonnull(policy);
	s = pg_policy_settings(policy);
	ck_assert_ptr_null(s->audit_file);
	ck_assert(s->audit_sync);
	ck_assert(!s->audit_syslog);
	ck_assert(s->caller_messages);
	ck_assert_int_eq(s->identity, PG_IDENTITY_PROCESS);
	ck_assert_ptr_null(s->server_socket);
	ck_assert_uint_eq(s->key_names_max_age_ms, 1000);
	/* Refcounting: a second owner keeps it alive. */
	ck_assert_ptr_eq(pg_policy_ref(policy), policy);
	pg_policy_unref(policy);
	ck_assert_str_eq(pg_policy_settings(policy)->module, "/usr/lib/softhsm/libsofthsm2.so");
	pg_policy_unref(policy);
}
END_TEST

START_TEST(test_load_from_file_hashes_bytes)
{
	char path[] = "/tmp/pg-policy-test-XXXXXX";
	static const char yaml[] = PG_TEST_HEAD "# a comment changes the hash\n";
	unsigned char expected[PG_SHA256_LEN];
	struct pg_test_capture cap = { 0 };
	pg_policy *policy;
	int fd = mkstemp(path);
	FILE *f;

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs(yaml, f);
	fclose(f);
	policy = pg_policy_load(path, pg_test_capture_fn, &cap);
	unlink(path);
	ck_assert_ptr_nonnull(policy);
	ck_assert(pg_sha256(yaml, strlen(yaml), expected));
	ck_assert_mem_eq(pg_policy_settings(policy)->sha256, expected, PG_SHA256_LEN);
	ck_assert_str_eq(pg_policy_settings(policy)->path, path);
	pg_policy_unref(policy);
}
END_TEST

/* Every file shipped under policy/ loads without an error. */
START_TEST(test_shipped_examples)
{
	const char *dir_path = PG_SOURCE_ROOT "/policy";
	DIR *dir = opendir(dir_path);
	struct dirent *entry;
	unsigned loaded = 0;

	ck_assert_ptr_nonnull(dir);
	while ((entry = readdir(dir)) != NULL) {
		size_t len = strlen(entry->d_name);
		struct pg_test_capture cap = { 0 };
		char path[4096];
		pg_policy *policy;

		if (len < 6 || strcmp(entry->d_name + len - 5, ".yaml") != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir_path, entry->d_name);
		policy = pg_policy_load(path, pg_test_capture_fn, &cap);
		if (policy == NULL)
			pg_test_dump(&cap);
		ck_assert_msg(policy != NULL, "%s does not load", path);
		ck_assert_uint_gt(pg_policy_key_count(policy), 0);
		pg_policy_unref(policy);
		loaded++;
	}
	closedir(dir);
	ck_assert_uint_ge(loaded, 5);
}
END_TEST

/* Mangled versions of a real policy: refused or loaded, never a crash
 * (run under ASan this also catches bad reads). */
START_TEST(test_mangled_input)
{
	static const char base[] =
		PG_TEST_HEAD KEYS
		"rules:\n  - name: r\n    effect: allow\n    keys: [k]\n"
		"    mechanisms: [CKM_ECDSA, 0x80000001]\n"
		"    callers: {users: [0, root], groups: [0], programs: [\"/usr/*\"], env: {A: \"b*\"}}\n"
		"    when: {days: [fri-mon], hours: \"22:00-06:00\", timezone: Europe/Berlin,\n"
		"           dates: [\"2026-12-20..2027-01-04\", 2026-02-28]}\n";
	char buf[sizeof base];
	unsigned seed = 12345;

	for (int round = 0; round < 3000; round++) {
		struct pg_test_capture cap;
		size_t len = sizeof base - 1;
		pg_policy *policy;

		memcpy(buf, base, sizeof base);
		for (int k = 0; k < 1 + round % 4 && len > 0; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t at = (seed >> 8) % len;
			seed = seed * 1103515245u + 12345u;
			switch ((seed >> 16) % 4) {
			case 0: buf[at] = (char)(seed >> 3); break;          /* any byte */
			case 1: buf[at] = "[]{}:,-&*!'\"\n #"[(seed >> 5) % 16]; break;
			case 2: len = at; break;                              /* truncate */
			default: buf[at] = ' '; break;
			}
		}
		memset(&cap, 0, sizeof cap);
		policy = pg_policy_load_buffer("mangled.yaml", buf, len, pg_test_capture_fn, &cap);
		ck_assert(policy == NULL ? cap.errors > 0 : cap.errors == 0);
		pg_policy_unref(policy);
	}
}
END_TEST

int
main(void)
{
	Suite *suite = suite_create("policy-load");
	TCase *tc = tcase_create("load");
	SRunner *runner;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_diagnostic, 0, (int)(sizeof cases / sizeof cases[0]));
	tcase_add_test(tc, test_all_errors_reported);
	tcase_add_test(tc, test_decrypt_rules_without_warning);
	tcase_add_test(tc, test_unreadable_file);
	tcase_add_test(tc, test_fifo_refused);
	tcase_add_test(tc, test_settings);
	tcase_add_test(tc, test_settings_defaults);
	tcase_add_test(tc, test_load_from_file_hashes_bytes);
	tcase_add_test(tc, test_shipped_examples);
	tcase_add_test(tc, test_mangled_input);
	suite_add_tcase(suite, tc);
	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
