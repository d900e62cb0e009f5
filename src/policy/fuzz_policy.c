/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the policy loader (meson -Dfuzzing=true, clang):
 * any bytes must give a policy or errors, never a crash, a leak or a read
 * out of bounds.  A decision is made with every policy that loads.
 */
#include "p11gate/policy.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pg_policy *policy = pg_policy_load_buffer("fuzz.yaml", (const char *)data, size, NULL, NULL);
	struct pg_caller caller;
	struct pg_key_match match = { .n = 1, .pin_mismatch = -1 };
	struct pg_request request = { .op = PG_OP_SIGN, .mechanism = CKM_ECDSA, .key = &match,
	                              .caller = &caller, .now = 1780390800 };
	struct pg_decision decision;

	if (policy == NULL)
		return 0;
	memset(&caller, 0, sizeof caller);
	caller.uid_trust = PG_ID_ASSERTED;
	for (size_t i = 0; i < pg_policy_key_count(policy); i++) {
		match.idx[0] = (unsigned)i;
		pg_policy_decide(policy, &request, &decision);
	}
	pg_policy_unref(policy);
	return 0;
}
