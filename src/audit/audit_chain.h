/* SPDX-License-Identifier: Apache-2.0
 *
 * Checking the hash chain line by line: the one place that decides whether
 * a log is intact, shared by `audit verify` (which reports) and `audit find`
 * (which warns).  Lines are fed in order; the first problem is kept with its
 * line number and kind, later lines are still parsed for find.
 */
#ifndef P11GATE_AUDIT_CHAIN_H
#define P11GATE_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "p11gate/common.h"
#include "p11gate/audit.h"
#include "audit_json.h"

enum pg_chain_problem {
	PG_CHAIN_OK = 0,
	PG_CHAIN_EDITED,        /* a line's bytes changed: the next prev does not match, or it is no record */
	PG_CHAIN_SEQ,           /* seq does not follow: records missing or reordered */
	PG_CHAIN_START,         /* the first record does not start the chain at zero */
	PG_CHAIN_TRUNCATED,     /* the last line has no newline */
	PG_CHAIN_INVALID,       /* a record lacks a field its event needs, or has a wrong value */
	PG_CHAIN_TAMPER,        /* a writer found the log cut behind it (a tamper record) */
	PG_CHAIN_CUT,           /* the log does not reach the head the operator kept */
	PG_CHAIN_HEAD,          /* the record at the operator's head is not the one kept */
	PG_CHAIN_CHECKPOINT,    /* a checkpoint's signature does not verify with the key given */
	PG_CHAIN_LINK,          /* files of a set do not continue each other (audit_set) */
};

struct pg_chain {
	/* Settings. */
	bool allow_truncated_tail;
	void (*note)(void *ctx, const char *message);   /* recovered truncations etc.; may be NULL */
	void *note_ctx;
	uint64_t since_seq;             /* check from the record with this seq (0: from line 1) */
	uint64_t expect_last_seq;       /* the log must reach this seq (0: no such check) */
	uint64_t head_seq;              /* the record with this seq must hash to head_hash (0: none) */
	unsigned char head_hash[PG_SHA256_LEN];
	const pg_audit_key *checkpoint_key;     /* checks checkpoints' signatures (NULL: not) */

	/* The first problem found. */
	enum pg_chain_problem problem;
	size_t problem_line;
	char message[512];

	/* What was read. */
	size_t lines;
	uint64_t records, allow, deny, results, policies, starts, tampers, checkpoints, alerts;
	uint64_t first_seq, last_seq;
	char last_time[40];
	unsigned char last_hash[PG_SHA256_LEN];  /* of the last record's line */
	bool head_found;

	/* Rotation: the file's first record continues another file (its
	 * prev, seq and fields), and whether it was closed by a rotate
	 * record (the last record must be that one then). */
	bool continues;
	uint64_t continue_seq;
	unsigned char continue_prev[PG_SHA256_LEN];
	unsigned char previous_sha256[PG_SHA256_LEN];
	uint64_t previous_size;
	char previous_file[256];
	size_t closed_line;                     /* the rotate record's line, 0: none */
	char first_time[40];

	/* Checkpoints verified with checkpoint_key, and how many records
	 * followed the last one. */
	uint64_t checkpoints_ok, checkpoint_seq, after_checkpoint;
	size_t checkpoint_line;

	/* The first tamper record: reported when nothing else is wrong before it. */
	size_t tamper_line;
	char tamper_message[400];

	/* State. */
	unsigned char prev_hash[PG_SHA256_LEN];   /* of the previous line */
	size_t broken_first, broken_count;        /* a run of lines that are no records */
	char broken_why[200];
	bool started;                             /* since_seq was reached */
};

void pg_chain_init(struct pg_chain *chain);

/* Feeds the next line, without its newline (has_newline false for a last
 * line that had none).  Returns the record parsed from the line (to free
 * with json_decref), whether or not the chain is intact, or NULL if the
 * line is not a record. */
json_t *pg_chain_feed(struct pg_chain *chain, const char *line, size_t len,
                      bool has_newline);

/* Call after the last line: reports lines left unexplained at the end. */
void pg_chain_finish(struct pg_chain *chain);

/* "FILE: intact, N records (...), seq A..B, last record T, head B:HASH"
 * (no newline). */
void pg_chain_summary(const struct pg_chain *chain, const char *name, char *out, size_t out_len);

#endif /* P11GATE_AUDIT_CHAIN_H */
