/* SPDX-License-Identifier: Apache-2.0
 *
 * What turns a row of functions.h into C: its parameters are written once,
 * as (type, name) pairs, and these macros make of them the parameter list
 * of a prototype, the argument list of a call, the fields of an argument
 * struct, and the call of the wrapped module from such a struct.  Rows
 * have 1 to 10 parameters.
 */
#ifndef P11GATE_ROWS_H
#define P11GATE_ROWS_H

#define PG_NARGS(...) PG_NARGS_(__VA_ARGS__, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define PG_NARGS_(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, n, ...) n
#define PG_CAT(a, b) PG_CAT_(a, b)
#define PG_CAT_(a, b) a##b

/* f applied to each (type, name) pair, separated by sep() (a macro, so
 * that a comma can be one). */
#define PG_JOIN(f, sep, ...) PG_CAT(PG_JOIN_, PG_NARGS(__VA_ARGS__))(f, sep, __VA_ARGS__)
#define PG_JOIN_1(f, sep, p) f p
#define PG_JOIN_2(f, sep, p, ...) f p sep() PG_JOIN_1(f, sep, __VA_ARGS__)
#define PG_JOIN_3(f, sep, p, ...) f p sep() PG_JOIN_2(f, sep, __VA_ARGS__)
#define PG_JOIN_4(f, sep, p, ...) f p sep() PG_JOIN_3(f, sep, __VA_ARGS__)
#define PG_JOIN_5(f, sep, p, ...) f p sep() PG_JOIN_4(f, sep, __VA_ARGS__)
#define PG_JOIN_6(f, sep, p, ...) f p sep() PG_JOIN_5(f, sep, __VA_ARGS__)
#define PG_JOIN_7(f, sep, p, ...) f p sep() PG_JOIN_6(f, sep, __VA_ARGS__)
#define PG_JOIN_8(f, sep, p, ...) f p sep() PG_JOIN_7(f, sep, __VA_ARGS__)
#define PG_JOIN_9(f, sep, p, ...) f p sep() PG_JOIN_8(f, sep, __VA_ARGS__)
#define PG_JOIN_10(f, sep, p, ...) f p sep() PG_JOIN_9(f, sep, __VA_ARGS__)
#define PG_COMMA_() ,
#define PG_SEMICOLON_() ;

#define PG_PARAM_(type, name) type name
#define PG_ARG_(type, name) name
#define PG_FROM_(type, name) a->name

/* (CK_SESSION_HANDLE session, CK_BYTE_PTR data, ...) */
#define PG_PARAMS(...) (PG_JOIN(PG_PARAM_, PG_COMMA_, __VA_ARGS__))
/* (session, data, ...) */
#define PG_ARGS(...) (PG_JOIN(PG_ARG_, PG_COMMA_, __VA_ARGS__))
/* session, data, ...: the initialiser of an argument struct */
#define PG_INITS(...) PG_JOIN(PG_ARG_, PG_COMMA_, __VA_ARGS__)
/* (a->session, a->data, ...) */
#define PG_FROM(...) (PG_JOIN(PG_FROM_, PG_COMMA_, __VA_ARGS__))
/* CK_SESSION_HANDLE session; CK_BYTE_PTR data; ...: an argument struct's fields */
#define PG_FIELDS(...) PG_JOIN(PG_PARAM_, PG_SEMICOLON_, __VA_ARGS__);

#endif /* P11GATE_ROWS_H */
