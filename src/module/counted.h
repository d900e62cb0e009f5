/* SPDX-License-Identifier: Apache-2.0
 *
 * The uses an allow takes with its record (docs/policy.md, "Limits" and
 * "Break-glass"): its rule's limit: and its break_glass: cap, and its
 * grant's max_signatures (docs/approvals.md), as counters
 * of the log's counter store (pg_audit_append_counted); the words of a
 * refusal by one of them; what is said once a use is taken (the
 * limit-reached and break-glass alerts, the break-glass line on stderr);
 * and where a caller states a break-glass justification.
 */
#ifndef P11GATE_COUNTED_H
#define P11GATE_COUNTED_H

#include "module.h"
#include "p11gate/audit.h"

#define PG_COUNTED_MAX 4

struct pg_counted {
	size_t n;
	struct pg_audit_take takes[PG_COUNTED_MAX];
	char names[PG_COUNTED_MAX][PG_AUDIT_COUNTER_NAME_MAX + 1];
	const struct pg_limit *limits[PG_COUNTED_MAX];   /* what each take counts; NULL: the grant's uses */
	const struct pg_decision *decision;
	const struct pg_caller *caller;
	const char *key_name;
};

/* The takes of an allowed decision about key_name (the policy's key):
 * how many (0: it counts nothing). */
size_t pg_counted_init(struct pg_counted *counted, const struct pg_regime *regime,
                       const struct pg_decision *decision, const char *key_name);

/* The counter of a grant's uses: "grant id=ID sha256=HEX" (the bytes
 * approved, so an edited grant approved again counts afresh), one window
 * for ever, max max_signatures, forgotten after not_after. */
void pg_counted_grant_take(const struct pg_grant_use *grant, struct pg_audit_take *take,
                           char *name, size_t name_len);

/* pg_audit_refusal_fn: ctx is the struct pg_counted (take may be a copy
 * of one of its takes).  "rule R: limit of
 * 100 per 1h by caller reached for uid 1001 (100 of 100 used; resets at
 * 2026-12-04T15:00:00Z)". */
void pg_counted_refusal(void *ctx, const struct pg_audit_take *take, char *reason, size_t len);

/* After the allow record seq took its uses: a limit-reached alert at the
 * use that reaches a limit (once per window and counter, whichever process
 * takes it), and for break-glass the stderr line and the break-glass alert. */
void pg_counted_taken(struct pg_regime *regime, const struct pg_counted *counted,
                      const char *operation, uint64_t seq);

/* pg_justify_fn of the module: ctx is the regime.  In-process the
 * environment variable P11GATE_BREAK_GLASS (a statement of the calling
 * process, which could say anything); in both modes a file
 * GRANTS_DIR/break-glass/UID-*.txt that the caller's uid owns, changed
 * within the cap's window (the newest). */
bool pg_break_glass_justify(void *ctx, uint64_t fresh, char *text, size_t text_len, char *source,
                            size_t source_len);

#endif /* P11GATE_COUNTED_H */
