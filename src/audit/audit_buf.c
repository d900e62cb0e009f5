/* SPDX-License-Identifier: Apache-2.0
 *
 * The growable buffer and JSON string escaping used to build audit records.
 * Escaping is where a hostile token label could break the log's format, so
 * every byte that is not printable ASCII or valid UTF-8 is escaped.
 */
#include "audit_buf.h"
#include "p11gate/common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
pg_buf_init(struct pg_buf *buf)
{
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
	buf->failed = false;
	buf->borrowed = false;
}

void
pg_buf_init_on(struct pg_buf *buf, char *storage, size_t cap)
{
	pg_buf_init(buf);
	buf->data = storage;
	buf->cap = cap;
	buf->borrowed = true;
	if (cap > 0)
		storage[0] = '\0';
}

void
pg_buf_release(struct pg_buf *buf)
{
	if (!buf->borrowed)
		free(buf->data);
	pg_buf_init(buf);
}

bool
pg_buf_reserve(struct pg_buf *buf, size_t extra)
{
	size_t want, cap;
	char *data;

	if (buf->failed)
		return false;
	if (extra > SIZE_MAX - buf->len - 1)
		goto fail;
	want = buf->len + extra + 1;    /* room for a terminating NUL */
	if (want <= buf->cap)
		return true;
	cap = buf->cap ? buf->cap : 1024;     /* a record is a few hundred bytes */
	while (cap < want) {
		if (cap > SIZE_MAX / 2)
			goto fail;
		cap *= 2;
	}
	data = buf->borrowed ? malloc(cap) : realloc(buf->data, cap);
	if (data == NULL)
		goto fail;
	if (buf->borrowed && buf->len > 0)
		memcpy(data, buf->data, buf->len + 1);
	buf->data = data;
	buf->cap = cap;
	buf->borrowed = false;
	return true;
fail:
	buf->failed = true;
	return false;
}

void
pg_buf_append(struct pg_buf *buf, const void *data, size_t len)
{
	if (!pg_buf_reserve(buf, len))
		return;
	memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

void
pg_buf_puts(struct pg_buf *buf, const char *s)
{
	pg_buf_append(buf, s, strlen(s));
}

size_t
pg_u64_decimal(uint64_t value, char out[PG_U64_DECIMAL_MAX])
{
	char tmp[PG_U64_DECIMAL_MAX];
	size_t n = 0, len;

	do {
		tmp[n++] = (char)('0' + value % 10);
		value /= 10;
	} while (value != 0);
	for (len = 0; len < n; len++)
		out[len] = tmp[n - 1 - len];
	return len;
}

void
pg_buf_u64(struct pg_buf *buf, uint64_t value)
{
	char tmp[PG_U64_DECIMAL_MAX];

	pg_buf_append(buf, tmp, pg_u64_decimal(value, tmp));
}

size_t
pg_utf8_sequence_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;       /* continuation byte, C0/C1 (overlong), or F5..FF */
	}
	if (avail < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates and values past U+10FFFF are not
	 * valid UTF-8 (RFC 3629), and strict JSON readers reject them. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

void
pg_buf_json_string_n(struct pg_buf *buf, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run;

	/* Worst case: every byte becomes \u00XX. */
	if (len > (SIZE_MAX - 2) / 6 || !pg_buf_reserve(buf, len * 6 + 2))
		return;
	buf->data[buf->len++] = '"';
	while (i < len) {
		unsigned char c = p[i];

		/* Most text is printable ASCII: copy it in runs. */
		for (run = 0; i + run < len && p[i + run] >= 0x20 && p[i + run] < 0x7f &&
		              p[i + run] != '"' && p[i + run] != '\\'; run++)
			;
		if (run > 0) {
			memcpy(buf->data + buf->len, p + i, run);
			buf->len += run;
			i += run;
			continue;
		}
		if (c == '"' || c == '\\') {
			buf->data[buf->len++] = '\\';
			buf->data[buf->len++] = (char)c;
			i++;
			continue;
		}
		run = (c >= 0x20 && c != 0x7f) ? pg_utf8_sequence_len(p + i, len - i) : 0;
		if (run == 0) {
			buf->data[buf->len++] = '\\';
			buf->data[buf->len++] = 'u';
			buf->data[buf->len++] = '0';
			buf->data[buf->len++] = '0';
			pg_hex_encode(&c, 1, buf->data + buf->len);
			buf->len += 2;
			i++;
			continue;
		}
		memcpy(buf->data + buf->len, p + i, run);
		buf->len += run;
		i += run;
	}
	buf->data[buf->len++] = '"';
	buf->data[buf->len] = '\0';
}

void
pg_buf_json_string(struct pg_buf *buf, const char *s)
{
	pg_buf_json_string_n(buf, s, strlen(s));
}

void
pg_buf_json_hex(struct pg_buf *buf, const unsigned char *data, size_t len)
{
	if (len > (SIZE_MAX - 2) / 2 || !pg_buf_reserve(buf, 2 * len + 2))
		return;
	buf->data[buf->len++] = '"';
	pg_hex_encode(data, len, buf->data + buf->len);
	buf->len += 2 * len;
	buf->data[buf->len++] = '"';
	buf->data[buf->len] = '\0';
}
