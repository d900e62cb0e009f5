/* SPDX-License-Identifier: Apache-2.0
 *
 * The plumbing of the hooks, generated from functions.h.  For each hooked
 * row: pg_args_<name>, the bundle of its arguments (and its name, for the
 * records); pg_gate_<name>, the hand-written judgement of it; and
 * pg_call_<name>, the wrapped module's function called with a bundle
 * (CKR_CRYPTOKI_NOT_INITIALIZED when lower is NULL,
 * CKR_FUNCTION_NOT_SUPPORTED when it lacks the function).  A
 * judged init's bundle is the one struct pg_init_call.  The calls whose
 * data and output p11gate copies (roles PG_OUTPUT, PG_FINAL, PG_PART) also
 * get pg_io_<name>, the view of those (struct pg_io), and
 * pg_forward_io_<name>, the call with p11gate's copies in their place.
 */
#ifndef P11GATE_CALLS_H
#define P11GATE_CALLS_H

#include "module.h"

typedef CK_RV (*pg_init_fn)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);

/* Every judged init takes a session, a mechanism and a key. */
struct pg_init_call {
	const char *function;
	pg_init_fn lower_init;        /* the wrapped module's; NULL if it lacks it */
	CK_SESSION_HANDLE session;
	CK_MECHANISM_PTR mechanism;
	CK_OBJECT_HANDLE key;
};

/* The data and the output of one call, as the caller passed them (or, when
 * forwarded, p11gate's copies of them). */
struct pg_io {
	const char *function;
	CK_SESSION_HANDLE session;
	const CK_BYTE *data;          /* NULL for a call that takes none */
	CK_ULONG data_len;
	CK_BYTE_PTR out;              /* NULL: a length query, or no output */
	CK_ULONG_PTR out_len;         /* NULL: a call that returns no output */
	const void *args;             /* the call's pg_args_<name> */
	/* The wrapped module's function, with args but data and output
	 * replaced by io's. */
	CK_RV (*forward)(const pg_function_list_3_0 *lower, const void *args, const struct pg_io *io);
};

#define PG_FN(name, ...)
#define PG_HOOK(name, ...)                                                         \
	typedef struct {                                                           \
		const char *function;                                              \
		PG_FIELDS(__VA_ARGS__)                                             \
	} pg_args_##name;                                                          \
	CK_RV pg_gate_##name(const pg_args_##name *a);                             \
	CK_RV pg_call_##name(const pg_function_list_3_0 *lower, const void *args);
#define PG_INIT(name, ...)                                 \
	typedef struct pg_init_call pg_args_##name;        \
	CK_RV pg_gate_##name(const pg_args_##name *a);
#define PG_IO(name, data_, data_len_, out_, out_len_)                                              \
	CK_RV pg_forward_io_##name(const pg_function_list_3_0 *lower, const void *args,            \
	                           const struct pg_io *io);                                        \
	static inline struct pg_io pg_io_##name(const pg_args_##name *a)                           \
	{                                                                                          \
		return (struct pg_io){ a->function, a->session, data_, data_len_, out_, out_len_,  \
		                       a, pg_forward_io_##name };                                  \
	}
#define PG_OUTPUT(name, d_, o_, ...) \
	PG_HOOK(name, __VA_ARGS__) PG_IO(name, a->d_, a->d_##_len, a->o_, a->o_##_len)
#define PG_FINAL(name, o_, ...) PG_HOOK(name, __VA_ARGS__) PG_IO(name, NULL, 0, a->o_, a->o_##_len)
#define PG_PART(name, d_, ...) PG_HOOK(name, __VA_ARGS__) PG_IO(name, a->d_, a->d_##_len, NULL, NULL)
#include "functions.h"
#undef PG_IO

#endif /* P11GATE_CALLS_H */
