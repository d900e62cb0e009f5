/* SPDX-License-Identifier: Apache-2.0
 *
 * Typed reads from the YAML tree for the section compilers: each check
 * reports a positioned error that says what was expected, so the section
 * code only states the shape it wants.
 */
#include "internal.h"

#include <string.h>

/* Edit distance, capped: words longer than this are never "close". */
#define PG_SUGGEST_MAX 40

static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[PG_SUGGEST_MAX + 1];

	if (la > PG_SUGGEST_MAX || lb > PG_SUGGEST_MAX)
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

bool
pg_name_ok(const char *name)
{
	if (name[0] == '\0')
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return false;
	}
	return true;
}

const char *
pg_suggest(const char *word, const char *const *candidates)
{
	const char *best = NULL;
	size_t best_distance = 3;   /* at most two edits away */

	for (size_t i = 0; candidates[i] != NULL; i++) {
		size_t d = edit_distance(word, candidates[i]);
		if (d < best_distance && d < strlen(candidates[i])) {
			best = candidates[i];
			best_distance = d;
		}
	}
	return best;
}

bool
pg_ymap_check_keys(struct pg_diag *diag, const struct pg_ynode *map,
                   const char *const *allowed, const char *what)
{
	bool ok = true;

	for (size_t i = 0; i < map->n; i++) {
		const struct pg_ynode *key = map->kids[2 * i];
		char list[256] = "";
		const char *hint;
		bool known = false;

		for (size_t k = 0; allowed[k] != NULL; k++) {
			if (strcmp(key->value, allowed[k]) == 0)
				known = true;
		}
		if (known)
			continue;
		ok = false;
		for (size_t k = 0; allowed[k] != NULL; k++) {
			if (k > 0)
				strncat(list, ", ", sizeof list - strlen(list) - 1);
			strncat(list, allowed[k], sizeof list - strlen(list) - 1);
		}
		hint = pg_suggest(key->value, allowed);
		if (hint != NULL)
			pg_diag_error_at(diag, key, "unknown field '%s' in %s; did you mean '%s'? (allowed: %s)",
			                 key->value, what, hint, list);
		else
			pg_diag_error_at(diag, key, "unknown field '%s' in %s (allowed: %s)",
			                 key->value, what, list);
	}
	return ok;
}

const struct pg_ynode *
pg_ymap_get(const struct pg_ynode *map, const char *key)
{
	for (size_t i = 0; i < map->n; i++) {
		if (strcmp(map->kids[2 * i]->value, key) == 0)
			return map->kids[2 * i + 1];
	}
	return NULL;
}

bool
pg_yexpect(struct pg_diag *diag, const struct pg_ynode *node, enum pg_ykind kind,
           const char *field)
{
	static const char *const kinds[] = {
		[PG_Y_SCALAR] = "a single value", [PG_Y_SEQ] = "a sequence (a list: [a, b] or '- a' lines)",
		[PG_Y_MAP] = "a mapping (name: value lines)",
	};

	if (node->kind == kind && !(kind == PG_Y_SCALAR && pg_ynode_is_null(node)))
		return true;
	if (pg_ynode_is_null(node))
		pg_diag_error_at(diag, node, "%s is empty; it must be %s", field, kinds[kind]);
	else
		pg_diag_error_at(diag, node, "%s must be %s, not %s", field, kinds[kind],
		                 pg_ynode_describe(node));
	return false;
}

const char *
pg_yget_string(struct pg_diag *diag, const struct pg_ynode *node, const char *field)
{
	if (!pg_yexpect(diag, node, PG_Y_SCALAR, field))
		return NULL;
	if (node->value[0] == '\0') {
		pg_diag_error_at(diag, node, "%s must not be empty", field);
		return NULL;
	}
	return node->value;
}

bool
pg_yget_bool(struct pg_diag *diag, const struct pg_ynode *node, const char *field, bool *out)
{
	static const char *const truths[] = { "true", "True", "TRUE" };
	static const char *const lies[] = { "false", "False", "FALSE" };

	if (node->kind == PG_Y_SCALAR && node->plain) {
		for (size_t i = 0; i < 3; i++) {
			if (strcmp(node->value, truths[i]) == 0) {
				*out = true;
				return true;
			}
			if (strcmp(node->value, lies[i]) == 0) {
				*out = false;
				return true;
			}
		}
	}
	if (node->kind == PG_Y_SCALAR)
		pg_diag_error_at(diag, node, "%s must be true or false (unquoted), not '%s'",
		                 field, node->value);
	else
		pg_diag_error_at(diag, node, "%s must be true or false, not %s", field,
		                 pg_ynode_describe(node));
	return false;
}

char *
pg_yseq_text(struct pg_arena *arena, const struct pg_ynode *seq)
{
	size_t len = 1;
	char *out, *p;

	for (size_t i = 0; i < seq->n; i++)
		len += (seq->kids[i]->kind == PG_Y_SCALAR ? seq->kids[i]->len : 1) + 2;
	out = pg_arena_alloc(arena, len);
	if (out == NULL)
		return NULL;
	p = out;
	for (size_t i = 0; i < seq->n; i++) {
		const struct pg_ynode *item = seq->kids[i];
		const char *text = item->kind == PG_Y_SCALAR ? item->value : "?";
		size_t n = strlen(text);

		if (i > 0) {
			memcpy(p, ", ", 2);
			p += 2;
		}
		memcpy(p, text, n);
		p += n;
	}
	*p = '\0';
	return out;
}
