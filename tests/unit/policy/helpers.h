/* SPDX-License-Identifier: Apache-2.0
 *
 * Test helpers for the policy tests: load YAML from a string while keeping
 * every diagnostic, look diagnostics up by position, build requests.
 */
#ifndef P11GATE_TEST_POLICY_HELPERS_H
#define P11GATE_TEST_POLICY_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include "p11gate/policy.h"

/* A module line every test policy can start with. */
#define PG_TEST_HEAD "version: 1\nmodule: /usr/lib/softhsm/libsofthsm2.so\n"

struct pg_test_diag {
	enum pg_severity severity;
	unsigned long line, column;
	char message[1024];
};

struct pg_test_capture {
	struct pg_test_diag diags[128];
	size_t n;
	unsigned errors, warnings;
};

void pg_test_capture_fn(void *ctx, enum pg_severity severity, const char *file,
                        unsigned long line, unsigned long column, const char *message);
/* Loads yaml (path "test.yaml"); cap gets every diagnostic. */
pg_policy *pg_test_load(const char *yaml, struct pg_test_capture *cap);
/* The diagnostic of that severity at line:column whose message contains
 * text, or NULL. */
const struct pg_test_diag *pg_test_find(const struct pg_test_capture *cap, enum pg_severity severity,
                                        unsigned long line, unsigned long column, const char *text);
/* Prints every diagnostic (for failing tests). */
void pg_test_dump(const struct pg_test_capture *cap);
/* UTC "YYYY-MM-DDTHH:MM:SSZ" to time_t. */
time_t pg_test_time(const char *rfc3339_utc);

#endif
