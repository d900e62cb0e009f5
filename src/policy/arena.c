/* SPDX-License-Identifier: Apache-2.0
 *
 * A bump allocator: a compiled policy is built once, never changed and
 * freed as a whole, so its strings and arrays live in blocks freed together.
 */
#include "internal.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_ARENA_BLOCK 16384

struct pg_arena_block {
	struct pg_arena_block *next;
	size_t used, size;
	alignas(max_align_t) unsigned char data[];
};

void *
pg_arena_alloc(struct pg_arena *arena, size_t size)
{
	const size_t align = alignof(max_align_t);
	struct pg_arena_block *block = arena->head;
	size_t need = (size + align - 1) & ~(align - 1);
	void *p;

	if (need < size)
		return NULL;
	if (block == NULL || block->size - block->used < need) {
		size_t cap = need > PG_ARENA_BLOCK ? need : PG_ARENA_BLOCK;
		if (cap > SIZE_MAX - sizeof *block)
			return NULL;
		block = malloc(sizeof *block + cap);
		if (block == NULL)
			return NULL;
		block->size = cap;
		block->used = 0;
		block->next = arena->head;
		arena->head = block;
	}
	p = block->data + block->used;
	block->used += need;
	memset(p, 0, size);
	return p;
}

void *
pg_arena_calloc(struct pg_arena *arena, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	/* A zero-length array still gets a valid pointer: callers test for NULL. */
	return pg_arena_alloc(arena, n * size == 0 ? 1 : n * size);
}

char *
pg_arena_strdup(struct pg_arena *arena, const char *s)
{
	size_t len = strlen(s);
	char *copy = pg_arena_alloc(arena, len + 1);

	if (copy != NULL)
		memcpy(copy, s, len + 1);
	return copy;
}

char *
pg_arena_printf(struct pg_arena *arena, const char *fmt, ...)
{
	va_list ap;
	char *out = NULL;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		return NULL;
	out = pg_arena_alloc(arena, (size_t)len + 1);
	if (out == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(out, (size_t)len + 1, fmt, ap);
	va_end(ap);
	return out;
}

void
pg_arena_release(struct pg_arena *arena)
{
	struct pg_arena_block *block = arena->head, *next;

	for (; block != NULL; block = next) {
		next = block->next;
		free(block);
	}
	arena->head = NULL;
}
