/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the policy loader and the decision: any bytes must
 * give a policy or errors, never a crash, a leak or a read out of bounds.
 * Every policy that loads is asked about each key and operation, and the
 * indexed decision must agree with `explain`'s rule-by-rule walk.
 */
#include "p11gate/policy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Keys and requests asked per policy: bounds the work of one input. */
#define MAX_KEYS 8

/* What explain saw: the first deny rule that matched, whether any allow
 * rule matched, and the first one that did. */
struct walk {
	const char *first_deny;
	const char *first_allow;
	size_t rules;
};

static void
on_rule(void *ctx, const char *rule, bool is_allow, bool matched, const char *why_not)
{
	struct walk *w = ctx;

	w->rules++;
	if (!matched) {
		/* Every rule that did not match says why. */
		if (why_not == NULL || why_not[0] == '\0') {
			fprintf(stderr, "fuzz_policy: explain gave no reason for rule %s\n", rule);
			abort();
		}
		return;
	}
	if (is_allow && w->first_allow == NULL)
		w->first_allow = rule;
	if (!is_allow && w->first_deny == NULL)
		w->first_deny = rule;
}

/* The decision from the index (decide) against the linear walk (explain):
 * a deny that matches wins, the first in file order; otherwise any
 * matching allow rule allows. */
static void
check_request(const pg_policy *policy, const struct pg_request *request)
{
	struct pg_decision decided, explained;
	struct walk w = { 0 };

	pg_policy_decide(policy, request, &decided);
	pg_policy_explain(policy, request, on_rule, &w, &explained);
	if (decided.allow != explained.allow) {
		fprintf(stderr, "fuzz_policy: decide and explain disagree\n");
		abort();
	}
	if (w.first_deny != NULL) {
		if (decided.allow || decided.rule == NULL || strcmp(decided.rule, w.first_deny) != 0) {
			fprintf(stderr, "fuzz_policy: deny rule %s matched but the decision is %s by %s\n",
			        w.first_deny, decided.allow ? "allow" : "deny",
			        decided.rule ? decided.rule : "(none)");
			abort();
		}
	} else if ((w.first_allow != NULL) != decided.allow) {
		fprintf(stderr, "fuzz_policy: explain %s an allow rule but decide says %s (%s)\n",
		        w.first_allow ? "matched" : "matched no", decided.allow ? "allow" : "deny",
		        decided.reason);
		abort();
	}
	if (decided.reason[0] == '\0') {
		fprintf(stderr, "fuzz_policy: a decision without a reason\n");
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum pg_op ops[] = {
		PG_OP_SIGN, PG_OP_DECRYPT, PG_OP_DERIVE, PG_OP_UNWRAP, PG_OP_MANAGE,
		PG_OP_ENCRYPT, PG_OP_WRAP, PG_OP_VERIFY,
	};
	static const CK_MECHANISM_TYPE mechanisms[] = {
		CKM_ECDSA, CKM_SHA256_RSA_PKCS, CK_UNAVAILABLE_INFORMATION,
	};
	/* Monday 2026-06-01 09:00 UTC, and a Sunday night in December. */
	static const time_t times[] = { 1780304400, 1797634800 };
	gid_t groups[] = { 1001, 27 };
	char *env[] = { "CI=true", "P11GATE_JOB=release", NULL };
	struct pg_caller ci = {
		.source = PG_ID_PROCESS,
		.uid_trust = PG_ID_ASSERTED, .uid = 1001, .user = "ci",
		.gid_trust = PG_ID_ASSERTED, .gid = 1001,
		.groups_trust = PG_ID_ASSERTED, .groups = groups, .n_groups = 2,
		.pid_trust = PG_ID_ASSERTED, .pid = 4242,
		.exe_trust = PG_ID_ASSERTED, .exe = "/usr/bin/osslsigncode",
		.unit_trust = PG_ID_ASSERTED, .unit = "ci-runner.service",
		/* Hashed already: the decision must not read a file here. */
		.exe_hashed = true, .exe_hash_ok = true,
		.env_trust = PG_ID_ASSERTED, .env = env,
	};
	struct pg_caller unknown = { .source = PG_ID_PEER };
	struct pg_caller *callers[] = { &ci, &unknown };
	pg_policy *policy = pg_policy_load_buffer("fuzz.yaml", (const char *)data, size, NULL, NULL);
	size_t n_keys;

	if (policy == NULL)
		return 0;
	n_keys = pg_policy_key_count(policy);
	if (n_keys > MAX_KEYS)
		n_keys = MAX_KEYS;
	for (size_t i = 0; i <= n_keys; i++) {
		/* One key, two keys (an object two policy keys name), and, at
		 * i == n_keys, an object the policy does not name. */
		struct pg_key_match match = { .n = i < n_keys ? 1 : 0, .idx = { (unsigned)i }, .pin_mismatch = -1 };

		if (i + 1 < n_keys) {
			match.n = 2;
			match.idx[1] = (unsigned)(i + 1);
		}
		for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
			struct pg_request request = {
				.op = ops[o], .key = &match,
				.caller = callers[(i + o) % 2],
				.mechanism = mechanisms[(i + o) % 3],
				.now = times[o % 2],
			};
			check_request(policy, &request);
		}
	}
	pg_policy_unref(policy);
	return 0;
}
