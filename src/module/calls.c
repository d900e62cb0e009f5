/* SPDX-License-Identifier: Apache-2.0
 *
 * The hooks' entry points and calls of the wrapped module, generated from
 * functions.h (calls.h says what each is).  An entry point bundles its
 * arguments with the function's name, answers CKR_CRYPTOKI_NOT_INITIALIZED
 * before C_Initialize, and hands the bundle to the hand-written judgement.
 * pg_call_<name> answers for a wrapped module that is gone (a C_Finalize
 * racing the call) or lacks the function, as the forwarders do.
 */
#include "gate.h"

#define PG_FN(name, ...)
#define PG_HOOK(name, ...)                                                        \
	CK_RV pg_hook_##name PG_PARAMS(__VA_ARGS__)                               \
	{                                                                         \
		const pg_args_##name a = { #name, PG_INITS(__VA_ARGS__) };        \
                                                                                  \
		if (pg_ctx_lower() == NULL)                                       \
			return CKR_CRYPTOKI_NOT_INITIALIZED;                      \
		return pg_gate_##name(&a);                                        \
	}                                                                         \
	CK_RV pg_call_##name(const pg_function_list_3_0 *lower, const void *args) \
	{                                                                         \
		const pg_args_##name *a = args;                                   \
                                                                                  \
		if (lower == NULL)                                                \
			return CKR_CRYPTOKI_NOT_INITIALIZED;                      \
		if (lower->name == NULL)                                          \
			return CKR_FUNCTION_NOT_SUPPORTED;                        \
		return lower->name PG_FROM(__VA_ARGS__);                          \
	}
#define PG_INIT(name, ...)                                                                 \
	CK_RV pg_hook_##name PG_PARAMS(__VA_ARGS__)                                        \
	{                                                                                  \
		const pg_function_list_3_0 *lower = pg_ctx_lower();                        \
		const struct pg_init_call a = { #name, lower != NULL ? lower->name : NULL, \
		                                PG_INITS(__VA_ARGS__) };                   \
                                                                                           \
		if (lower == NULL)                                                         \
			return CKR_CRYPTOKI_NOT_INITIALIZED;                               \
		return pg_gate_##name(&a);                                                 \
	}
/* set: what of the bundle the copies replace. */
#define PG_FORWARD_IO(name, set)                                                         \
	CK_RV pg_forward_io_##name(const pg_function_list_3_0 *lower, const void *args,  \
	                           const struct pg_io *io)                               \
	{                                                                                \
		pg_args_##name a = *(const pg_args_##name *)args;                        \
                                                                                         \
		set;                                                                     \
		return pg_call_##name(lower, &a);                                        \
	}
#define PG_OUTPUT(name, d_, o_, ...)                                                          \
	PG_HOOK(name, __VA_ARGS__)                                                            \
	PG_FORWARD_IO(name, a.d_ = (CK_BYTE_PTR)io->data; a.o_ = io->out; a.o_##_len = io->out_len)
#define PG_FINAL(name, o_, ...) \
	PG_HOOK(name, __VA_ARGS__) PG_FORWARD_IO(name, a.o_ = io->out; a.o_##_len = io->out_len)
#define PG_PART(name, d_, ...) \
	PG_HOOK(name, __VA_ARGS__) PG_FORWARD_IO(name, a.d_ = (CK_BYTE_PTR)io->data)
#include "functions.h"
