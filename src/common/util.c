/* SPDX-License-Identifier: Apache-2.0
 *
 * Hex, SHA-256 and PKCS#11 constant names: the few helpers every part of
 * p11gate needs, kept in one place.
 */
#include "p11gate/common.h"
#include "names.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

void
pg_hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
pg_hex_decode(const char *in, unsigned char *out, size_t len)
{
	if (strlen(in) != 2 * len)
		return false;
	for (size_t i = 0; i < len; i++) {
		int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

/* EVP_sha256() makes every digest look its implementation up again (a
 * provider query per call); the fetched one is kept for the process.  It is
 * never freed: it is shared by every thread until exit. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *
pg_sha256_md(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_md != NULL ? sha256_md : EVP_sha256();
}

bool
pg_sha256(const void *data, size_t len, unsigned char out[PG_SHA256_LEN])
{
	unsigned int out_len = 0;

	return EVP_Digest(data, len, out, &out_len, pg_sha256_md(), NULL) == 1 &&
	       out_len == PG_SHA256_LEN;
}

int
pg_open_regular(const char *path, bool *not_regular)
{
	struct stat st;
	int fd, flags, saved;

	*not_regular = false;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		*not_regular = true;
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		goto fail;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

bool
pg_sha256_file(const char *path, unsigned char out[PG_SHA256_LEN])
{
	unsigned char buf[65536];
	unsigned int out_len = 0;
	EVP_MD_CTX *md = NULL;
	bool ok = false;
	bool not_regular;
	ssize_t n;
	int fd;

	fd = pg_open_regular(path, &not_regular);
	if (fd < 0)
		return false;
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, pg_sha256_md(), NULL) != 1)
		goto out;
	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || EVP_DigestUpdate(md, buf, (size_t)n) != 1)
			goto out;
	}
	ok = EVP_DigestFinal_ex(md, out, &out_len) == 1 && out_len == PG_SHA256_LEN;
out:
	EVP_MD_CTX_free(md);
	close(fd);
	return ok;
}

/* The tables are sorted by value; aliases keep the header's order, so the
 * first of a run is the name the header defines first. */
static const char *
name_of(const struct pg_name *table, size_t count, unsigned long value)
{
	size_t lo = 0, hi = count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (table[mid].value < value)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < count && table[lo].value == value ? table[lo].name : NULL;
}

const char *
pg_mechanism_name(CK_MECHANISM_TYPE mechanism)
{
	return name_of(pg_mechanism_names, pg_mechanism_names_count, mechanism);
}

bool
pg_mechanism_from_name(const char *name, CK_MECHANISM_TYPE *out)
{
	for (size_t i = 0; i < pg_mechanism_names_count; i++) {
		if (strcmp(pg_mechanism_names[i].name, name) == 0) {
			*out = pg_mechanism_names[i].value;
			return true;
		}
	}
	return false;
}

const char *
pg_rv_name(CK_RV rv)
{
	return name_of(pg_rv_names, pg_rv_names_count, rv);
}

void
pg_fixed_to_cstr(const CK_UTF8CHAR *field, size_t field_len, char *out, size_t out_len)
{
	size_t n = field_len;

	while (n > 0 && (field[n - 1] == ' ' || field[n - 1] == '\0'))
		n--;
	if (n >= out_len)
		n = out_len - 1;
	memcpy(out, field, n);
	out[n] = '\0';
}
