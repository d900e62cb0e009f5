/* SPDX-License-Identifier: Apache-2.0
 *
 * Making strings that a caller, a token or a log file controls safe to show
 * in a human-readable line (stderr, `audit find`, `explain`, `keys`,
 * `check`): everything that could end the line, move the cursor, reorder
 * or hide text, or pass for a blank or for our own punctuation is written
 * as an escape.  docs/audit.md ("Readable output") lists the classes.
 */
#include "p11gate/common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Code points that are invisible, reorder text, look like a blank, or look
 * like the '"' and '=' of our output.  Inclusive ranges, sorted. */
static const uint32_t hidden[][2] = {
	{ 0x0080, 0x00a0 },     /* C1 controls, no-break space */
	{ 0x00ad, 0x00ad },     /* soft hyphen */
	{ 0x02ba, 0x02ba }, { 0x02dd, 0x02dd }, { 0x02ee, 0x02ee },   /* look like '"' */
	{ 0x034f, 0x034f },     /* combining grapheme joiner */
	{ 0x05f4, 0x05f4 },     /* looks like '"' */
	{ 0x0600, 0x0605 }, { 0x061c, 0x061c }, { 0x06dd, 0x06dd }, { 0x070f, 0x070f },
	{ 0x0890, 0x0891 }, { 0x08e2, 0x08e2 },   /* Arabic and Syriac format characters */
	{ 0x115f, 0x1160 },     /* Hangul fillers */
	{ 0x1400, 0x1400 },     /* looks like '=' */
	{ 0x1680, 0x1680 },     /* ogham space */
	{ 0x17b4, 0x17b5 }, { 0x180b, 0x180f },
	{ 0x2000, 0x200f },     /* spaces, zero-width characters, LRM, RLM */
	{ 0x201c, 0x201f },     /* look like '"' */
	{ 0x2028, 0x202f },     /* line/paragraph separators, bidi embeddings and overrides */
	{ 0x2033, 0x2033 }, { 0x2036, 0x2036 },
	{ 0x205f, 0x206f },     /* medium space, word joiner, invisible operators, bidi isolates */
	{ 0x207c, 0x207c }, { 0x208c, 0x208c }, { 0x2e40, 0x2e40 },   /* look like '=' */
	{ 0x3000, 0x3000 },     /* ideographic space */
	{ 0x3003, 0x3003 }, { 0x30a0, 0x30a0 },
	{ 0x3164, 0x3164 },     /* Hangul filler */
	{ 0xa4ff, 0xa4ff },
	{ 0xe000, 0xf8ff },     /* private use: any glyph a font likes */
	{ 0xfdd0, 0xfdef },     /* noncharacters */
	{ 0xfe00, 0xfe0f },     /* variation selectors */
	{ 0xfe66, 0xfe66 },
	{ 0xfeff, 0xfeff },     /* zero-width no-break space */
	{ 0xff02, 0xff02 }, { 0xff1d, 0xff1d },   /* fullwidth '"' and '=' */
	{ 0xffa0, 0xffa0 },
	{ 0xfff0, 0xfffb },     /* specials, interlinear annotation */
	{ 0x110bd, 0x110bd }, { 0x110cd, 0x110cd }, { 0x13430, 0x1343f }, { 0x1bca0, 0x1bca3 },
	{ 0x1d173, 0x1d17a },   /* musical format characters */
	{ 0xe0000, 0xe0fff },   /* tags, variation selectors supplement */
	{ 0xf0000, 0x10ffff },  /* private use planes */
};

/* Combining marks (the main blocks): shown as they are after a character
 * of the value, escaped where they would sit on our own punctuation. */
static const uint32_t combining[][2] = {
	{ 0x0300, 0x036f }, { 0x0483, 0x0489 }, { 0x1ab0, 0x1aff }, { 0x1dc0, 0x1dff },
	{ 0x20d0, 0x20ff }, { 0xfe20, 0xfe2f },
};

static bool
in_ranges(uint32_t cp, const uint32_t (*ranges)[2], size_t n)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ranges[mid][1] < cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && ranges[lo][0] <= cp;
}

static bool
is_hidden(uint32_t cp)
{
	if (cp < 0x20 || cp == 0x7f)
		return true;
	if ((cp & 0xfffe) == 0xfffe)
		return true;    /* noncharacters U+xFFFE, U+xFFFF */
	return cp >= 0x80 && in_ranges(cp, hidden, sizeof hidden / sizeof hidden[0]);
}

/* Strict UTF-8 (no overlong forms, surrogates or values past U+10FFFF):
 * the length of the character at s, or 0 if s[0] does not start one. */
static size_t
utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		*cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		*cp = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		*cp = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if (i > 1 && (s[i] < 0x80 || s[i] > 0xbf))
			return 0;
		*cp = *cp << 6 | (s[i] & 0x3f);
	}
	return n;
}

/* Bytes a value may hold and still be shown without quotes. */
static bool
plain_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("._/+@~%^:-", c) != NULL);
}

struct sink {
	char *out;              /* NULL: only count */
	size_t cap, len;
	bool full;
};

static void
put(struct sink *k, const char *s, size_t n)
{
	if (k->full)
		return;
	if (k->out != NULL) {
		if (n > k->cap - k->len) {
			k->full = true;
			return;
		}
		memcpy(k->out + k->len, s, n);
	}
	k->len += n;
}

static void
put_escape(struct sink *k, uint32_t cp, bool byte)
{
	const unsigned char be[4] = { cp >> 24, cp >> 16, cp >> 8, cp };
	char buf[12];
	size_t bytes, n = 0;

	buf[n++] = '\\';
	if (byte || cp < 0x80) {
		buf[n++] = 'x';
		bytes = 1;
	} else if (cp <= 0xffff) {
		buf[n++] = 'u';
		bytes = 2;
	} else {
		buf[n++] = 'U';
		bytes = 4;
	}
	pg_hex_encode(be + 4 - bytes, bytes, buf + n);
	put(k, buf, n + 2 * bytes);
}

bool
pg_escape_needs_quotes(const char *s, size_t len)
{
	if (len == 0)
		return true;
	for (size_t i = 0; i < len; i++) {
		if (!plain_byte((unsigned char)s[i]))
			return true;
	}
	return false;
}

static bool
quoted(const char *s, size_t len, enum pg_escape_mode mode)
{
	return mode == PG_ESC_QUOTED || (mode == PG_ESC_VALUE && pg_escape_needs_quotes(s, len));
}

/* Writes the escaped form of s[0..len), without the quotes, to k; when it
 * does not fit, k holds a prefix that ends on a whole character or escape. */
static void
escape_into(struct sink *k, const unsigned char *p, size_t len, bool quote)
{
	bool after_own = true;  /* a combining mark here would sit on our output */
	size_t i = 0, n, keep;
	uint32_t cp;

	while (i < len && !k->full) {
		keep = k->len;
		n = utf8_decode(p + i, len - i, &cp);
		if (n == 0) {
			put_escape(k, p[i], true);
			n = 1;
			after_own = true;
		} else if (is_hidden(cp) ||
		           (after_own && in_ranges(cp, combining, sizeof combining / sizeof combining[0]))) {
			put_escape(k, cp, false);
			after_own = true;
		} else if (quote && (cp == '"' || cp == '\\')) {
			put(k, "\\", 1);
			put(k, (const char *)p + i, 1);
			after_own = true;
		} else {
			put(k, (const char *)p + i, n);
			after_own = false;
		}
		if (k->full)
			k->len = keep;  /* never half an escape or character */
		i += n;
	}
}

const char *
pg_escape(const char *s, size_t len, enum pg_escape_mode mode, char *out, size_t out_len)
{
	static const char more[] = "...";
	struct sink k = { 0 };
	bool quote;
	size_t room;

	if (out_len == 0)
		return out;
	if (s == NULL) {
		s = "";
		len = 0;
	}
	quote = quoted(s, len, mode);
	/* Room for the characters, the quotes and the terminator. */
	room = out_len - 1 - (quote ? 2 : 0);
	if (out_len < 1 + (quote ? 2 : 0) + sizeof more) {
		out[0] = '\0';
		return out;
	}
	escape_into(&k, (const unsigned char *)s, len, quote);
	k = (struct sink){ .out = out + (quote ? 1 : 0),
	                   .cap = k.len <= room ? room : room - (sizeof more - 1) };
	escape_into(&k, (const unsigned char *)s, len, quote);
	if (k.full) {
		/* Cut short, and said so: cap left room for the marker. */
		memcpy(k.out + k.len, more, sizeof more - 1);
		k.len += sizeof more - 1;
	}
	if (quote) {
		out[0] = '"';
		out[1 + k.len] = '"';
		k.len += 2;
	}
	out[k.len] = '\0';
	return out;
}

const char *
pg_esc(const char *s, enum pg_escape_mode mode, char *out, size_t out_len)
{
	return pg_escape(s, s != NULL ? strlen(s) : 0, mode, out, out_len);
}

void
pg_escape_fputs(FILE *f, const char *s, size_t len, enum pg_escape_mode mode)
{
	struct sink k = { 0 };
	bool quote;

	if (s == NULL) {
		s = "";
		len = 0;
	}
	quote = quoted(s, len, mode);
	escape_into(&k, (const unsigned char *)s, len, quote);
	k = (struct sink){ .out = malloc(k.len + 1), .cap = k.len + 1 };
	if (k.out == NULL) {
		fputs("(out of memory)", f);
		return;
	}
	escape_into(&k, (const unsigned char *)s, len, quote);
	if (quote)
		fputc('"', f);
	fwrite(k.out, 1, k.len, f);
	if (quote)
		fputc('"', f);
	free(k.out);
}
