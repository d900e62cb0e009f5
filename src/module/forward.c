/* SPDX-License-Identifier: Apache-2.0
 *
 * The pass-through entry points, generated from functions.h: each checks
 * that p11gate is initialised in this process and that the wrapped module
 * has the function (a 2.40 module has no 3.0 functions), then calls it
 * with the arguments unchanged.
 */
#include "module.h"

#define PG_FN(name, ...)                                            \
	CK_RV pg_fwd_##name PG_PARAMS(__VA_ARGS__)                  \
	{                                                           \
		const pg_function_list_3_0 *lower = pg_ctx_lower(); \
		if (lower == NULL)                                  \
			return CKR_CRYPTOKI_NOT_INITIALIZED;        \
		if (lower->name == NULL)                            \
			return CKR_FUNCTION_NOT_SUPPORTED;          \
		return lower->name PG_ARGS(__VA_ARGS__);            \
	}
#define PG_HOOK(name, ...)
#include "functions.h"
