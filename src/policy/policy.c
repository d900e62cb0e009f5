/* SPDX-License-Identifier: Apache-2.0
 *
 * The compiled policy object: its reference count, its release, the
 * settings accessor, and the names of the operations rules speak of.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const op_names[PG_N_OPS] = {
	"sign", "decrypt", "derive", "unwrap", "manage", "encrypt", "wrap", "verify",
};

pg_policy *
pg_policy_ref(pg_policy *policy)
{
	if (policy != NULL)
		atomic_fetch_add_explicit(&policy->refs, 1, memory_order_relaxed);
	return policy;
}

void
pg_policy_unref(pg_policy *policy)
{
	if (policy == NULL)
		return;
	/* acq_rel: the last owner must see every other owner's reads done. */
	if (atomic_fetch_sub_explicit(&policy->refs, 1, memory_order_acq_rel) != 1)
		return;
	pg_keys_release(policy);
	pg_zones_release(policy);
	pg_approvers_release(policy);
	pg_grant_cache_free(policy->grant_cache);
	pg_arena_release(&policy->arena);
	free(policy);
}

const struct pg_settings *
pg_policy_settings(const pg_policy *policy)
{
	return &policy->settings;
}

const char *
pg_op_name(enum pg_op op)
{
	for (unsigned i = 0; i < PG_N_OPS; i++) {
		if ((unsigned)op == 1u << i)
			return op_names[i];
	}
	return "unknown";
}

bool
pg_op_from_name(const char *name, enum pg_op *out)
{
	for (unsigned i = 0; i < PG_N_OPS; i++) {
		if (strcmp(name, op_names[i]) == 0) {
			*out = (enum pg_op)(1u << i);
			return true;
		}
	}
	return false;
}
