/* SPDX-License-Identifier: Apache-2.0
 *
 * The policy file's YAML as a plain tree of scalars, sequences and
 * mappings with 1-based positions.  Only the subset a policy needs is
 * accepted: one document, no anchors, aliases or tags, no duplicate keys.
 */
#ifndef P11GATE_POLICY_YAML_TREE_H
#define P11GATE_POLICY_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>

struct pg_diag;

enum pg_ykind { PG_Y_SCALAR, PG_Y_SEQ, PG_Y_MAP };

struct pg_ynode {
	enum pg_ykind kind;
	unsigned long line, column;  /* 1-based, where the node starts */
	bool plain;                  /* scalar written without quotes */
	char *value;                 /* scalar: NUL-terminated text */
	size_t len;
	struct pg_ynode **kids;      /* seq: n items; map: kids[2i] key, kids[2i+1] value */
	size_t n;                    /* items, or pairs */
};

/* Parses data; NULL after reporting every problem found to diag. */
struct pg_ynode *pg_ytree_parse(const char *data, size_t len, struct pg_diag *diag);
void pg_ytree_free(struct pg_ynode *node);

/* "a mapping", "a sequence", "a string" — or "empty" for a null scalar. */
const char *pg_ynode_describe(const struct pg_ynode *node);
/* A plain "", "~", "null" or "Null"/"NULL": YAML's null. */
bool pg_ynode_is_null(const struct pg_ynode *node);

#endif /* P11GATE_POLICY_YAML_TREE_H */
