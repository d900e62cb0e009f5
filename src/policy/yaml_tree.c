/* SPDX-License-Identifier: Apache-2.0
 *
 * Builds the YAML tree of a policy from libyaml's events.  Events rather
 * than libyaml's document API because only events show anchors, aliases and
 * explicit tags, which a policy refuses (they hide what a rule really says).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Deeper than any policy needs; bounds the recursion of pg_ytree_free. */
#define PG_YAML_MAX_DEPTH 32

struct builder {
	struct pg_diag *diag;
	struct pg_ynode *root;
	struct pg_ynode *stack[PG_YAML_MAX_DEPTH];
	bool key_pending[PG_YAML_MAX_DEPTH];   /* an open mapping holds a key without value */
	size_t depth;
	bool failed;                 /* a problem was reported; keep going to find more */
};

static struct pg_ynode *
node_new(enum pg_ykind kind, const yaml_mark_t *mark)
{
	struct pg_ynode *node = calloc(1, sizeof *node);

	if (node == NULL)
		return NULL;
	node->kind = kind;
	node->line = mark->line + 1;
	node->column = mark->column + 1;
	return node;
}

void
pg_ytree_free(struct pg_ynode *node)
{
	if (node == NULL)
		return;
	for (size_t i = 0; i < (node->kind == PG_Y_MAP ? 2 * node->n : node->n); i++)
		pg_ytree_free(node->kids[i]);
	free(node->kids);
	free(node->value);
	free(node);
}

bool
pg_ynode_is_null(const struct pg_ynode *node)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (node->kind != PG_Y_SCALAR || !node->plain)
		return false;
	for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++) {
		if (strcmp(node->value, nulls[i]) == 0)
			return true;
	}
	return false;
}

const char *
pg_ynode_describe(const struct pg_ynode *node)
{
	switch (node->kind) {
	case PG_Y_MAP:
		return "a mapping";
	case PG_Y_SEQ:
		return "a sequence";
	case PG_Y_SCALAR:
		break;
	}
	return pg_ynode_is_null(node) ? "empty" : "a single value";
}

/* Appends child to the open collection; for a mapping, keys must be
 * scalars and unique. */
static bool
attach(struct builder *b, struct pg_ynode *child)
{
	struct pg_ynode *parent, **kids;
	size_t level;

	if (b->depth == 0) {
		b->root = child;
		return true;
	}
	level = b->depth - 1;
	parent = b->stack[level];
	if (parent->kind == PG_Y_SEQ) {
		kids = realloc(parent->kids, (parent->n + 1) * sizeof *kids);
		if (kids == NULL) {
			pg_ytree_free(child);
			return false;
		}
		parent->kids = kids;
		parent->kids[parent->n++] = child;
		return true;
	}
	if (b->key_pending[level]) {
		/* The value: the slot was made with its key.  libyaml places a
		 * missing value ("key:" and nothing) at the next token, often on
		 * the next line; the key is where the reader should look. */
		if (child->kind == PG_Y_SCALAR && child->plain && child->len == 0) {
			child->line = parent->kids[2 * parent->n]->line;
			child->column = parent->kids[2 * parent->n]->column;
		}
		parent->kids[2 * parent->n + 1] = child;
		parent->n++;
		b->key_pending[level] = false;
		return true;
	}
	if (child->kind != PG_Y_SCALAR) {
		pg_diag_error_at(b->diag, child, "a mapping key must be a plain name, not %s",
		                 pg_ynode_describe(child));
		b->failed = true;
	} else {
		for (size_t i = 0; i < parent->n; i++) {
			const struct pg_ynode *key = parent->kids[2 * i];
			if (key->kind == PG_Y_SCALAR && strcmp(key->value, child->value) == 0) {
				pg_diag_error_at(b->diag, child,
				                 "duplicate key '%s' (first given at line %lu); "
				                 "give each key once", child->value, key->line);
				b->failed = true;
				break;
			}
		}
	}
	kids = realloc(parent->kids, (2 * parent->n + 2) * sizeof *kids);
	if (kids == NULL) {
		pg_ytree_free(child);
		return false;
	}
	parent->kids = kids;
	parent->kids[2 * parent->n] = child;
	parent->kids[2 * parent->n + 1] = NULL;
	b->key_pending[level] = true;
	return true;
}

/* Anchors and tags are refused: a policy is read by people, and both change
 * meaning at a distance. */
static void
refuse_decorations(struct builder *b, const yaml_mark_t *mark,
                   const yaml_char_t *anchor, const yaml_char_t *tag)
{
	if (anchor != NULL) {
		pg_diag_error(b->diag, mark->line + 1, mark->column + 1,
		              "YAML anchors (&%s) are not allowed in a policy; write the value out in full",
		              (const char *)anchor);
		b->failed = true;
	}
	if (tag != NULL) {
		pg_diag_error(b->diag, mark->line + 1, mark->column + 1,
		              "YAML tags (%s) are not allowed in a policy; remove the tag",
		              (const char *)tag);
		b->failed = true;
	}
}

static void
report_parser_error(struct builder *b, const yaml_parser_t *parser, const char *data, size_t len)
{
	unsigned long line = parser->problem_mark.line + 1;
	unsigned long column = parser->problem_mark.column + 1;
	const char *problem = parser->problem != NULL ? parser->problem : "unknown problem";

	b->failed = true;
	switch (parser->error) {
	case YAML_MEMORY_ERROR:
		pg_diag_error(b->diag, 0, 0, "out of memory while parsing YAML");
		return;
	case YAML_READER_ERROR:
		/* The reader sets an offset, not a mark: count lines ourselves. */
		line = 1;
		column = 1;
		for (size_t i = 0; i < parser->problem_offset && i < len; i++) {
			if (data[i] == '\n') {
				line++;
				column = 1;
			} else {
				column++;
			}
		}
		pg_diag_error(b->diag, line, column, "the file is not valid UTF-8 text (%s); "
		              "save it as UTF-8", problem);
		return;
	default:
		break;
	}
	if (parser->context != NULL)
		pg_diag_error(b->diag, line, column,
		              "YAML syntax error: %s %s (started at line %lu); check the indentation "
		              "and quote values that contain ': ' or start with a special character",
		              problem, parser->context, (unsigned long)parser->context_mark.line + 1);
	else
		pg_diag_error(b->diag, line, column,
		              "YAML syntax error: %s; check the indentation and quoting", problem);
}

static bool
on_scalar(struct builder *b, const yaml_event_t *event)
{
	struct pg_ynode *node = node_new(PG_Y_SCALAR, &event->start_mark);
	size_t len = event->data.scalar.length;

	if (node == NULL)
		return false;
	node->value = malloc(len + 1);
	if (node->value == NULL) {
		free(node);
		return false;
	}
	memcpy(node->value, event->data.scalar.value, len);
	node->value[len] = '\0';
	node->len = len;
	node->plain = event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	if (strlen(node->value) != len) {
		pg_diag_error_at(b->diag, node, "value contains a NUL character; remove the \\0");
		b->failed = true;
	}
	refuse_decorations(b, &event->start_mark, event->data.scalar.anchor,
	                   event->data.scalar.tag);
	return attach(b, node);
}

static bool
on_collection_start(struct builder *b, const yaml_event_t *event, enum pg_ykind kind)
{
	struct pg_ynode *node;
	const yaml_char_t *anchor, *tag;

	if (kind == PG_Y_MAP) {
		anchor = event->data.mapping_start.anchor;
		tag = event->data.mapping_start.tag;
	} else {
		anchor = event->data.sequence_start.anchor;
		tag = event->data.sequence_start.tag;
	}
	refuse_decorations(b, &event->start_mark, anchor, tag);
	if (b->depth == PG_YAML_MAX_DEPTH) {
		pg_diag_error(b->diag, event->start_mark.line + 1, event->start_mark.column + 1,
		              "nested more than %d levels deep; a policy needs far fewer",
		              PG_YAML_MAX_DEPTH);
		b->failed = true;
		return true;   /* the caller stops on failed depth */
	}
	node = node_new(kind, &event->start_mark);
	if (node == NULL || !attach(b, node))
		return false;
	b->stack[b->depth++] = node;
	return true;
}

struct pg_ynode *
pg_ytree_parse(const char *data, size_t len, struct pg_diag *diag)
{
	struct builder b = { .diag = diag };
	yaml_parser_t parser;
	yaml_event_t event;
	bool done = false, oom = false;
	unsigned documents = 0;

	if (!yaml_parser_initialize(&parser)) {
		pg_diag_error(diag, 0, 0, "out of memory while parsing YAML");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	while (!done) {
		bool ok = true;

		if (!yaml_parser_parse(&parser, &event)) {
			report_parser_error(&b, &parser, data, len);
			break;
		}
		switch (event.type) {
		case YAML_DOCUMENT_START_EVENT:
			if (documents > 0) {
				pg_diag_error(diag, event.start_mark.line + 1, event.start_mark.column + 1,
				              "a second YAML document; a policy is one document "
				              "(remove the '---' and what follows, or merge it)");
				b.failed = true;
				done = true;
			}
			break;
		case YAML_DOCUMENT_END_EVENT:
			documents++;
			break;
		case YAML_SCALAR_EVENT:
			ok = on_scalar(&b, &event);
			break;
		case YAML_SEQUENCE_START_EVENT:
			ok = on_collection_start(&b, &event, PG_Y_SEQ);
			break;
		case YAML_MAPPING_START_EVENT:
			ok = on_collection_start(&b, &event, PG_Y_MAP);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (b.depth > 0)
				b.depth--;
			break;
		case YAML_ALIAS_EVENT:
			pg_diag_error(diag, event.start_mark.line + 1, event.start_mark.column + 1,
			              "YAML aliases (*%s) are not allowed in a policy; write the value out in full",
			              (const char *)event.data.alias.anchor);
			b.failed = true;
			{
				/* A stand-in keeps the mapping's key/value pairing intact. */
				struct pg_ynode *node = node_new(PG_Y_SCALAR, &event.start_mark);
				if (node != NULL && (node->value = strdup("")) == NULL) {
					free(node);
					node = NULL;
				}
				ok = node != NULL && attach(&b, node);
			}
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		default:
			break;
		}
		yaml_event_delete(&event);
		if (!ok) {
			oom = true;
			break;
		}
		/* Too deep: the structure below is unknown, stop here. */
		if (b.failed && b.depth == PG_YAML_MAX_DEPTH)
			break;
	}
	yaml_parser_delete(&parser);
	if (oom) {
		pg_diag_error(diag, 0, 0, "out of memory while parsing YAML");
		b.failed = true;
	}
	if (!b.failed && b.root == NULL) {
		pg_diag_error(diag, 1, 1, "the file holds no YAML document; a policy starts with "
		              "'version: 1' and 'module: /path/to/the/real/module.so'");
		b.failed = true;
	}
	if (b.failed) {
		/* pg_ytree_free sees complete pairs only: free keys left waiting,
		 * deepest first, since a (refused) collection key can itself be an
		 * open level of the stack. */
		for (size_t i = b.depth; i-- > 0;) {
			if (b.key_pending[i])
				pg_ytree_free(b.stack[i]->kids[2 * b.stack[i]->n]);
		}
		pg_ytree_free(b.root);
		return NULL;
	}
	return b.root;
}
