/* SPDX-License-Identifier: Apache-2.0
 *
 * Test helpers for the audit tests (see audit_test_util.h).  The chain
 * check here deliberately shares no code with src/audit: a bug in the
 * writer's hashing must not be hidden by the same bug in the checker.
 */
#include "audit_test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

static void
die(const char *what)
{
	perror(what);
	abort();
}

char *
t_tempdir(void)
{
	const char *base = getenv("TMPDIR");
	char *dir;

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	if (asprintf(&dir, "%s/pg-audit-test-XXXXXX", base) < 0)
		die("asprintf");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp");
	return dir;
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
t_rmdir(char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

char *
t_path(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		die("asprintf");
	return p;
}

char *
t_read(const char *path, size_t *len)
{
	char *data = NULL;
	size_t cap = 0;
	FILE *f = fopen(path, "rb");

	*len = 0;
	if (f == NULL)
		return NULL;
	for (;;) {
		if (*len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			data = realloc(data, cap);
			if (data == NULL)
				die("realloc");
		}
		size_t n = fread(data + *len, 1, cap - *len - 1, f);
		*len += n;
		if (n == 0)
			break;
	}
	data[*len] = '\0';
	fclose(f);
	return data;
}

static void
write_mode(const char *path, const char *data, size_t len, int flags)
{
	int fd = open(path, O_WRONLY | O_CREAT | flags, 0640);

	if (fd < 0)
		die(path);
	if (write(fd, data, len) != (ssize_t)len)
		die("write");
	close(fd);
}

void
t_write(const char *path, const char *data, size_t len)
{
	write_mode(path, data, len, O_TRUNC);
}

void
t_append(const char *path, const char *data, size_t len)
{
	write_mode(path, data, len, O_APPEND);
}

void
t_record(struct pg_audit_record *r, const char *rule)
{
	static const unsigned char hash[32] = { 0xde, 0xad, 0xbe, 0xef };
	static const unsigned char digest[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	memset(r, 0, sizeof *r);
	r->event = PG_AUDIT_DECISION;
	r->allow = true;
	r->rule = rule;
	r->reason = "rule allows it";
	r->function = "C_Sign";
	r->operation = "sign";
	r->key_name = "release-rsa";
	r->key_uri = "pkcs11:token=release;object=codesign-rsa";
	r->public_key_sha256 = hash;
	r->token_label = "release";
	r->token_serial = "4f1a";
	r->has_mechanism = true;
	r->mechanism = CKM_RSA_PKCS;
	r->data_sha256 = hash;
	r->data = digest;
	r->data_len = sizeof digest;
	r->policy_sha256 = hash;
}

static void
sha256_hex(const char *data, size_t len, char out[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;

	if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
		abort();
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[64] = '\0';
}

long
t_independent_chain(const char *path)
{
	char prev[65], *data, *line, *nl, want_seq[40];
	const char *p;
	size_t len;
	long n = 0;

	data = t_read(path, &len);
	if (data == NULL)
		return -1;
	memset(prev, '0', 64);
	prev[64] = '\0';
	for (line = data; line < data + len; line = nl + 1) {
		n++;
		nl = memchr(line, '\n', (size_t)(data + len - line));
		if (nl == NULL)
			goto bad;
		*nl = '\0';
		snprintf(want_seq, sizeof want_seq, "{\"seq\":%ld,", n);
		if (strncmp(line, want_seq, strlen(want_seq)) != 0)
			goto bad;
		p = strstr(line, ",\"prev\":\"");
		if (p == NULL || strncmp(p + 9, prev, 64) != 0 || strcmp(p + 9 + 64, "\"}") != 0)
			goto bad;
		sha256_hex(line, (size_t)(nl - line), prev);
	}
	free(data);
	return n;
bad:
	free(data);
	return -n;
}

size_t
t_count_lines(const char *path)
{
	size_t len, n = 0;
	char *data = t_read(path, &len);

	for (size_t i = 0; i < len; i++)
		n += data[i] == '\n';
	free(data);
	return n;
}
