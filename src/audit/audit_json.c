/* SPDX-License-Identifier: Apache-2.0
 *
 * The strict JSON reader behind `audit verify` and `audit find`.  Recursive
 * descent with a depth bound; every error names the byte column.  It reads
 * what audit_buf.c writes, and refuses anything a lenient reader might
 * interpret differently.
 */
#include "audit_json.h"
#include "audit_buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	const unsigned char *s;
	size_t len;
	size_t pos;
	int depth;
	char *err;
	size_t err_len;
	bool failed;
};

static void fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fail(struct parser *p, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	if (p->failed)
		return;
	p->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (p->err_len > 0)
		snprintf(p->err, p->err_len, "column %zu: %s", p->pos + 1, msg);
}

/* A key quoted in an error message is input: keep only printable ASCII so
 * the message cannot carry terminal escapes. */
static void
printable(const char *in, char *out, size_t out_len)
{
	size_t j = 0;

	for (size_t i = 0; in[i] != '\0' && j + 1 < out_len; i++)
		out[j++] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
	out[j] = '\0';
}

static void
skip_space(struct parser *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
	                           p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static void
describe(const struct parser *p, char *out, size_t out_len)
{
	unsigned char c;

	if (p->pos >= p->len) {
		snprintf(out, out_len, "end of line");
		return;
	}
	c = p->s[p->pos];
	if (c >= 0x20 && c < 0x7f)
		snprintf(out, out_len, "'%c'", c);
	else
		snprintf(out, out_len, "byte 0x%02x", c);
}

static void
unexpected(struct parser *p, const char *wanted)
{
	char what[32];

	describe(p, what, sizeof what);
	fail(p, "expected %s, found %s", wanted, what);
}

static int
hex4(const unsigned char *s)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		int d;

		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			d = s[i] - 'a' + 10;
		else if (s[i] >= 'A' && s[i] <= 'F')
			d = s[i] - 'A' + 10;
		else
			return -1;
		v = v << 4 | d;
	}
	return v;
}

static void
put_utf8(struct pg_buf *out, unsigned long cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18);
		b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	pg_buf_append(out, b, n);
}

/* \uXXXX at p->pos (just after the backslash-u); surrogate pairs combined,
 * lone surrogates refused (they are not characters). */
static bool
parse_escape_u(struct parser *p, struct pg_buf *out)
{
	int hi, lo;

	if (p->len - p->pos < 4 || (hi = hex4(p->s + p->pos)) < 0) {
		fail(p, "\\u needs four hex digits");
		return false;
	}
	p->pos += 4;
	if (hi >= 0xdc00 && hi <= 0xdfff) {
		fail(p, "lone low surrogate \\u%04x", (unsigned)hi);
		return false;
	}
	if (hi < 0xd800 || hi > 0xdbff) {
		put_utf8(out, (unsigned long)hi);
		return true;
	}
	if (p->len - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
	    (lo = hex4(p->s + p->pos + 2)) < 0 || lo < 0xdc00 || lo > 0xdfff) {
		fail(p, "high surrogate \\u%04x without its low half", (unsigned)hi);
		return false;
	}
	p->pos += 6;
	put_utf8(out, 0x10000 + (((unsigned long)hi - 0xd800) << 10) + ((unsigned long)lo - 0xdc00));
	return true;
}

/* A string literal at p->pos (on the opening quote); its decoded bytes are
 * returned in a malloc'd NUL-terminated buffer. */
static char *
parse_string(struct parser *p, size_t *len_out)
{
	struct pg_buf out;

	pg_buf_init(&out);
	p->pos++;
	for (;;) {
		unsigned char c;
		size_t run;

		if (p->pos >= p->len) {
			fail(p, "string not closed");
			goto error;
		}
		c = p->s[p->pos];
		if (c == '"') {
			p->pos++;
			break;
		}
		if (c < 0x20) {
			fail(p, "control character 0x%02x in a string (must be escaped)", c);
			goto error;
		}
		if (c == '\\') {
			if (p->pos + 1 >= p->len) {
				p->pos++;
				fail(p, "string not closed");
				goto error;
			}
			c = p->s[p->pos + 1];
			p->pos += 2;
			switch (c) {
			case '"': pg_buf_append(&out, "\"", 1); break;
			case '\\': pg_buf_append(&out, "\\", 1); break;
			case '/': pg_buf_append(&out, "/", 1); break;
			case 'b': pg_buf_append(&out, "\b", 1); break;
			case 'f': pg_buf_append(&out, "\f", 1); break;
			case 'n': pg_buf_append(&out, "\n", 1); break;
			case 'r': pg_buf_append(&out, "\r", 1); break;
			case 't': pg_buf_append(&out, "\t", 1); break;
			case 'u':
				if (!parse_escape_u(p, &out))
					goto error;
				break;
			default:
				p->pos--;
				fail(p, "unknown escape '\\%c'", c >= 0x20 && c < 0x7f ? c : '?');
				goto error;
			}
			continue;
		}
		run = pg_utf8_sequence_len(p->s + p->pos, p->len - p->pos);
		if (run == 0) {
			fail(p, "invalid UTF-8 byte 0x%02x in a string", c);
			goto error;
		}
		pg_buf_append(&out, p->s + p->pos, run);
		p->pos += run;
	}
	pg_buf_append(&out, "", 0);     /* a string may be empty: make data non-NULL */
	if (out.failed) {
		fail(p, "out of memory");
		goto error;
	}
	*len_out = out.len;
	return out.data;
error:
	pg_buf_release(&out);
	return NULL;
}

static bool
is_digit(const struct parser *p)
{
	return p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9';
}

static bool
parse_number(struct parser *p, struct pg_json *v)
{
	size_t start = p->pos;

	if (p->s[p->pos] == '-')
		p->pos++;
	if (!is_digit(p)) {
		unexpected(p, "a digit");
		return false;
	}
	if (p->s[p->pos] == '0') {
		p->pos++;
		if (is_digit(p)) {
			fail(p, "a number cannot have leading zeros");
			return false;
		}
	} else {
		while (is_digit(p))
			p->pos++;
	}
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		if (!is_digit(p)) {
			unexpected(p, "a digit after '.'");
			return false;
		}
		while (is_digit(p))
			p->pos++;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (!is_digit(p)) {
			unexpected(p, "a digit in the exponent");
			return false;
		}
		while (is_digit(p))
			p->pos++;
	}
	v->type = PG_JSON_NUMBER;
	v->len = p->pos - start;
	v->text = strndup((const char *)p->s + start, v->len);
	if (v->text == NULL) {
		fail(p, "out of memory");
		return false;
	}
	return true;
}

static bool
parse_literal(struct parser *p, const char *word, enum pg_json_type type, struct pg_json *v)
{
	size_t n = strlen(word);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) {
		unexpected(p, "a value");
		return false;
	}
	p->pos += n;
	v->type = type;
	return true;
}

static void value_release(struct pg_json *v);
static bool parse_value(struct parser *p, struct pg_json *v);

/* Makes room for one more item (and key) in an array or object. */
static bool
grow(struct parser *p, struct pg_json *v, size_t *cap, bool with_keys)
{
	struct pg_json *items;
	char **keys;
	size_t ncap;

	if (v->n < *cap)
		return true;
	ncap = *cap ? *cap * 2 : 8;
	items = realloc(v->items, ncap * sizeof *items);
	if (items == NULL)
		goto oom;
	v->items = items;
	if (with_keys) {
		keys = realloc(v->keys, ncap * sizeof *keys);
		if (keys == NULL)
			goto oom;
		v->keys = keys;
	}
	*cap = ncap;
	return true;
oom:
	fail(p, "out of memory");
	return false;
}

static bool
parse_array(struct parser *p, struct pg_json *v)
{
	size_t cap = 0;

	v->type = PG_JSON_ARRAY;
	p->pos++;
	skip_space(p);
	if (p->pos < p->len && p->s[p->pos] == ']') {
		p->pos++;
		return true;
	}
	for (;;) {
		if (!grow(p, v, &cap, false))
			return false;
		memset(&v->items[v->n], 0, sizeof v->items[v->n]);
		v->n++;
		if (!parse_value(p, &v->items[v->n - 1]))
			return false;
		skip_space(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == ']') {
			p->pos++;
			return true;
		}
		unexpected(p, "',' or ']'");
		return false;
	}
}

static bool
parse_object(struct parser *p, struct pg_json *v)
{
	size_t cap = 0, key_len, key_pos;
	char *key;

	v->type = PG_JSON_OBJECT;
	p->pos++;
	skip_space(p);
	if (p->pos < p->len && p->s[p->pos] == '}') {
		p->pos++;
		return true;
	}
	for (;;) {
		skip_space(p);
		if (p->pos >= p->len || p->s[p->pos] != '"') {
			unexpected(p, "a key in double quotes");
			return false;
		}
		key_pos = p->pos;
		key = parse_string(p, &key_len);
		if (key == NULL)
			return false;
		if (strlen(key) != key_len) {
			p->pos = key_pos;
			fail(p, "a key holds a NUL character");
			free(key);
			return false;
		}
		/* Duplicate keys are where two JSON readers disagree (first
		 * wins or last wins): a record with one is not accepted. */
		for (size_t i = 0; i < v->n; i++) {
			if (strcmp(v->keys[i], key) == 0) {
				char shown[40];

				p->pos = key_pos;
				printable(key, shown, sizeof shown);
				fail(p, "duplicate key \"%s\"", shown);
				free(key);
				return false;
			}
		}
		if (v->n >= PG_JSON_MAX_MEMBERS) {
			p->pos = key_pos;
			fail(p, "more than %d members in an object", PG_JSON_MAX_MEMBERS);
			free(key);
			return false;
		}
		if (!grow(p, v, &cap, true)) {
			free(key);
			return false;
		}
		v->keys[v->n] = key;
		memset(&v->items[v->n], 0, sizeof v->items[v->n]);
		v->n++;
		skip_space(p);
		if (p->pos >= p->len || p->s[p->pos] != ':') {
			unexpected(p, "':'");
			return false;
		}
		p->pos++;
		if (!parse_value(p, &v->items[v->n - 1]))
			return false;
		skip_space(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == '}') {
			p->pos++;
			return true;
		}
		unexpected(p, "',' or '}'");
		return false;
	}
}

static bool
parse_value(struct parser *p, struct pg_json *v)
{
	bool ok;

	skip_space(p);
	if (p->pos >= p->len) {
		unexpected(p, "a value");
		return false;
	}
	switch (p->s[p->pos]) {
	case '{':
	case '[':
		if (p->depth >= PG_JSON_MAX_DEPTH) {
			fail(p, "nested more than %d deep", PG_JSON_MAX_DEPTH);
			return false;
		}
		p->depth++;
		ok = p->s[p->pos] == '{' ? parse_object(p, v) : parse_array(p, v);
		p->depth--;
		return ok;
	case '"':
		v->type = PG_JSON_STRING;
		v->text = parse_string(p, &v->len);
		return v->text != NULL;
	case 't':
		return parse_literal(p, "true", PG_JSON_TRUE, v);
	case 'f':
		return parse_literal(p, "false", PG_JSON_FALSE, v);
	case 'n':
		return parse_literal(p, "null", PG_JSON_NULL, v);
	default:
		if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
			return parse_number(p, v);
		unexpected(p, "a value");
		return false;
	}
}

static void
value_release(struct pg_json *v)
{
	for (size_t i = 0; i < v->n; i++) {
		value_release(&v->items[i]);
		if (v->keys != NULL)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->text);
}

struct pg_json *
pg_json_parse(const char *text, size_t len, char *err, size_t err_len)
{
	struct parser p = {
		.s = (const unsigned char *)text, .len = len, .err = err, .err_len = err_len,
	};
	struct pg_json *v;

	if (err_len > 0)
		err[0] = '\0';
	v = calloc(1, sizeof *v);
	if (v == NULL) {
		fail(&p, "out of memory");
		return NULL;
	}
	if (!parse_value(&p, v))
		goto error;
	skip_space(&p);
	if (p.pos != p.len) {
		unexpected(&p, "end of line after the value");
		goto error;
	}
	return v;
error:
	pg_json_free(v);
	return NULL;
}

void
pg_json_free(struct pg_json *value)
{
	if (value == NULL)
		return;
	value_release(value);
	free(value);
}

const struct pg_json *
pg_json_get(const struct pg_json *object, const char *key)
{
	if (object == NULL || object->type != PG_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < object->n; i++) {
		if (strcmp(object->keys[i], key) == 0)
			return &object->items[i];
	}
	return NULL;
}

const char *
pg_json_string(const struct pg_json *value)
{
	if (value == NULL || value->type != PG_JSON_STRING || strlen(value->text) != value->len)
		return NULL;
	return value->text;
}

const char *
pg_json_get_string(const struct pg_json *object, const char *key)
{
	return pg_json_string(pg_json_get(object, key));
}

bool
pg_json_u64(const struct pg_json *value, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (value == NULL || value->type != PG_JSON_NUMBER || value->text[0] == '-' ||
	    strpbrk(value->text, ".eE") != NULL)
		return false;
	errno = 0;
	v = strtoull(value->text, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}
