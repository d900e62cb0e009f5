/* SPDX-License-Identifier: Apache-2.0
 *
 * Small helpers shared by every part of p11gate: hex, SHA-256, and the
 * names of PKCS#11 constants (generated from pkcs11.h at build time).
 */
#ifndef P11GATE_COMMON_H
#define P11GATE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "p11gate/pkcs11.h"
#include <openssl/types.h>

#define PG_SHA256_LEN 32
#define PG_SHA256_HEX_LEN 64

/* Lower-case hex of len bytes into out, which holds 2*len+1 bytes. */
void pg_hex_encode(const unsigned char *in, size_t len, char *out);
/* Parses exactly 2*len hex digits (either case); false on anything else. */
bool pg_hex_decode(const char *in, unsigned char *out, size_t len);

/* SHA-256 of a buffer; false only if OpenSSL fails. */
bool pg_sha256(const void *data, size_t len, unsigned char out[PG_SHA256_LEN]);
/* SHA-256 for EVP_DigestInit_ex, fetched once per process. */
const EVP_MD *pg_sha256_md(void);
/* Opens path read-only if it is a regular file, without blocking: with
 * O_NONBLOCK (a FIFO with no writer would block open itself), checked with
 * fstat on the descriptor (no race with a rename), then blocking again.
 * -1 with errno set on failure; *not_regular is then true if the path is a
 * FIFO, device, socket or directory, which could block or never end. */
int pg_open_regular(const char *path, bool *not_regular);
/* SHA-256 of a whole regular file's bytes; false with errno set on failure. */
bool pg_sha256_file(const char *path, unsigned char out[PG_SHA256_LEN]);

/* "CKM_RSA_PKCS", or NULL if the value has no name in pkcs11.h. */
const char *pg_mechanism_name(CK_MECHANISM_TYPE mechanism);
/* Looks a CKM_ name up; false if unknown. */
bool pg_mechanism_from_name(const char *name, CK_MECHANISM_TYPE *out);
/* "CKR_FUNCTION_REJECTED", or NULL if unknown. */
const char *pg_rv_name(CK_RV rv);

/* Showing a string that a caller, a token, a policy or a log controls in a
 * human-readable line (never in JSON, which stays exact).  Control
 * characters, invalid UTF-8 bytes, bidi controls, blanks other than the
 * ASCII space, invisible and format characters, private-use characters,
 * look-alikes of '"' and '=', and a combining mark with no character of the
 * value to sit on become \xHH (bytes and ASCII), \uHHHH or \UHHHHHHHH.
 *   PG_ESC_TEXT:   escapes only (a message; backslashes and quotes as they are)
 *   PG_ESC_VALUE:  also put in "…" (with \" and \\) unless the value is
 *                  non-empty and only [A-Za-z0-9._/+@~%^:-], so it cannot pass
 *                  for several words or fields
 *   PG_ESC_QUOTED: always in "…" */
enum pg_escape_mode { PG_ESC_TEXT, PG_ESC_VALUE, PG_ESC_QUOTED };

/* Into out (out_len bytes, always terminated); a result that does not fit
 * is cut on a character or escape boundary and ends in "...".  Returns out. */
const char *pg_escape(const char *s, size_t len, enum pg_escape_mode mode,
                      char *out, size_t out_len);
/* The same for a C string (NULL is shown as empty). */
const char *pg_esc(const char *s, enum pg_escape_mode mode, char *out, size_t out_len);
/* The same, written to f whole. */
void pg_escape_fputs(FILE *f, const char *s, size_t len, enum pg_escape_mode mode);
/* Whether PG_ESC_VALUE would quote s[0..len). */
bool pg_escape_needs_quotes(const char *s, size_t len);

/* Trims the trailing blanks of a fixed-width PKCS#11 text field into out
 * (size out_len, always terminated). */
void pg_fixed_to_cstr(const CK_UTF8CHAR *field, size_t field_len, char *out, size_t out_len);

#endif /* P11GATE_COMMON_H */
