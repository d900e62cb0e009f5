/* SPDX-License-Identifier: Apache-2.0
 * The generated name tables (names.c, from pkcs11.h), sorted by value. */
#ifndef P11GATE_NAMES_H
#define P11GATE_NAMES_H
#include <stddef.h>

struct pg_name {
	const char *name;
	unsigned long value;
};

extern const struct pg_name pg_mechanism_names[];
extern const size_t pg_mechanism_names_count;
extern const struct pg_name pg_rv_names[];
extern const size_t pg_rv_names_count;
#endif
