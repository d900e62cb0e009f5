/* SPDX-License-Identifier: Apache-2.0
 *
 * SSHSIG verification (src/policy/sshsig.c) against signatures made by the
 * real `ssh-keygen -Y sign` with keys it generated: every key type it can
 * make here, both hashes, and each way a signature can be wrong.  The FIDO
 * sk- types need an authenticator this machine does not have: those
 * signatures are built by the test itself in PROTOCOL.u2f's layout with
 * OpenSSL (sk-ssh-ed25519 and sk-ecdsa-sha2-nistp256), which checks our
 * reading of the layout, not a device.
 */
#include "sshsig.h"
#include "p11gate/common.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

static char dir[] = "/tmp/pg-sshsig-XXXXXX";
static const char message[] = "grant: 1\nid: rel-4.2.0\n";

static void
run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(65536);
	size_t n;

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, 65535, f);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void
setup(void)
{
	FILE *f;
	char path[256];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/msg", dir);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	fputs(message, f);
	fclose(f);
}

static void
teardown(void)
{
	run("rm -rf %s", dir);
	strcpy(dir, "/tmp/pg-sshsig-XXXXXX");
}

/* Generates a key of type (ssh-keygen -t/-b), signs msg with options. */
static void
make_sig(const char *name, const char *keygen_args, const char *sign_args, const char *ns)
{
	char key[256];

	snprintf(key, sizeof key, "%s/%s", dir, name);
	if (access(key, F_OK) != 0)
		run("ssh-keygen -q -N '' -C %s %s -f %s", name, keygen_args, key);
	run("cp %s/msg %s/%s.msg && ssh-keygen -q -Y sign -n %s %s -f %s %s/%s.msg",
	    dir, dir, name, ns, sign_args, key, dir, name);
}

/* Verifies NAME.msg.sig with NAME.pub over message; returns the error or "". */
static const char *
verify(const char *name, const char *msg, size_t msg_len, char *err, size_t err_len)
{
	char path[256];
	char *pub_text, *sig_text;
	size_t len;
	pg_sshkey *key;
	pg_sshsig *sig;
	struct pg_sshsig_sk sk;

	snprintf(path, sizeof path, "%s/%s.pub", dir, name);
	pub_text = slurp(path, &len);
	key = pg_sshkey_new(pub_text, err, err_len);
	ck_assert_msg(key != NULL, "%s: %s", name, err);
	snprintf(path, sizeof path, "%s/%s.msg.sig", dir, name);
	sig_text = slurp(path, &len);
	sig = pg_sshsig_new(sig_text, len, err, err_len);
	ck_assert_msg(sig != NULL, "%s: %s", name, err);
	err[0] = '\0';
	if (!pg_sshsig_verify(sig, key, "p11gate-grant", (const unsigned char *)msg, msg_len, &sk,
	                      err, err_len))
		ck_assert_str_ne(err, "");
	else
		ck_assert(!sk.is_sk);
	pg_sshsig_free(sig);
	pg_sshkey_free(key);
	free(pub_text);
	free(sig_text);
	return err;
}

static const struct {
	const char *name, *keygen, *sign;
} kinds[] = {
	{ "ed25519", "-t ed25519", "" },
	{ "p256", "-t ecdsa -b 256", "" },
	{ "p384", "-t ecdsa -b 384", "" },
	{ "p521", "-t ecdsa -b 521", "" },
	{ "rsa", "-t rsa -b 2048", "" },                     /* rsa-sha2-512 */
	{ "ed25519-sha256", "-t ed25519", "-O hashalg=sha256" },
	{ "rsa3072-sha256", "-t rsa -b 3072", "-O hashalg=sha256" },
};

START_TEST(real_signatures_verify)
{
	char err[512];

	make_sig(kinds[_i].name, kinds[_i].keygen, kinds[_i].sign, "p11gate-grant");
	ck_assert_str_eq(verify(kinds[_i].name, message, strlen(message), err, sizeof err), "");
	/* One byte of the message changed. */
	ck_assert_str_eq(verify(kinds[_i].name, message, strlen(message) - 1, err, sizeof err),
	                 "the signature does not verify");
}
END_TEST

START_TEST(wrong_namespace)
{
	char err[512];

	make_sig("ed25519", "-t ed25519", "", "file");
	ck_assert_ptr_nonnull(strstr(verify("ed25519", message, strlen(message), err, sizeof err),
	                             "wrong namespace 'file', expected 'p11gate-grant'"));
}
END_TEST

START_TEST(another_key)
{
	char err[512], path[256];
	char *pub_text, *sig_text;
	size_t len;
	pg_sshkey *other;
	pg_sshsig *sig;
	struct pg_sshsig_sk sk;
	char fp_sig[64], fp_key[64];

	make_sig("ed25519", "-t ed25519", "", "p11gate-grant");
	run("ssh-keygen -q -N '' -t ed25519 -f %s/other", dir);
	snprintf(path, sizeof path, "%s/other.pub", dir);
	pub_text = slurp(path, &len);
	other = pg_sshkey_new(pub_text, err, sizeof err);
	ck_assert_ptr_nonnull(other);
	snprintf(path, sizeof path, "%s/ed25519.msg.sig", dir);
	sig_text = slurp(path, &len);
	sig = pg_sshsig_new(sig_text, len, err, sizeof err);
	ck_assert_ptr_nonnull(sig);
	ck_assert(!pg_sshsig_verify(sig, other, "p11gate-grant", (const unsigned char *)message,
	                            strlen(message), &sk, err, sizeof err));
	ck_assert_str_eq(err, "the signature is by another key");
	/* The fingerprint is ssh-keygen's. */
	pg_sshsig_fingerprint(sig, fp_sig, sizeof fp_sig);
	pg_sshkey_fingerprint(other, fp_key, sizeof fp_key);
	ck_assert_str_ne(fp_sig, fp_key);
	run("ssh-keygen -l -f %s/ed25519.pub | grep -qF '%s'", dir, fp_sig);
	pg_sshsig_free(sig);
	pg_sshkey_free(other);
	free(pub_text);
	free(sig_text);
}
END_TEST

START_TEST(malformed_armor_and_keys)
{
	char err[512], path[256];
	char *sig_text;
	size_t len;
	pg_sshsig *sig;

	make_sig("ed25519", "-t ed25519", "", "p11gate-grant");
	snprintf(path, sizeof path, "%s/ed25519.msg.sig", dir);
	sig_text = slurp(path, &len);
	/* Cut in the middle of the base64: every prefix is refused, never read past. */
	for (size_t cut = 0; cut + 1 < len; cut += 7) {
		sig = pg_sshsig_new(sig_text, cut, err, sizeof err);
		ck_assert_msg(sig == NULL, "a signature cut at %zu parsed", cut);
	}
	sig_text[40] = sig_text[40] == 'A' ? 'B' : 'A';   /* the magic or version */
	sig = pg_sshsig_new(sig_text, len, err, sizeof err);
	ck_assert_ptr_null(sig);
	free(sig_text);

	ck_assert_ptr_null(pg_sshkey_new("ssh-dss AAAAB3NzaC1kc3MAAACBAP", err, sizeof err));
	ck_assert_ptr_null(pg_sshkey_new("ssh-ed25519", err, sizeof err));
	ck_assert_ptr_nonnull(strstr(err, "not an OpenSSH public key"));
	/* The type word and the blob's type disagree. */
	run("ssh-keygen -q -N '' -t ed25519 -f %s/k && sed 's/^ssh-ed25519/ssh-rsa/' %s/k.pub > %s/bad.pub",
	    dir, dir, dir);
	snprintf(path, sizeof path, "%s/bad.pub", dir);
	sig_text = slurp(path, &len);
	ck_assert_ptr_null(pg_sshkey_new(sig_text, err, sizeof err));
	ck_assert_ptr_nonnull(strstr(err, "its data is another type"));
	free(sig_text);
	/* RSA below 2048 bits. */
	run("ssh-keygen -q -N '' -t rsa -b 1024 -f %s/small", dir);
	snprintf(path, sizeof path, "%s/small.pub", dir);
	sig_text = slurp(path, &len);
	ck_assert_ptr_null(pg_sshkey_new(sig_text, err, sizeof err));
	ck_assert_ptr_nonnull(strstr(err, "at least 2048"));
	free(sig_text);
}
END_TEST

/* ---- sk- signatures built in PROTOCOL.u2f's layout --------------------- */

static void
put_u32(unsigned char **p, uint32_t v)
{
	(*p)[0] = (unsigned char)(v >> 24);
	(*p)[1] = (unsigned char)(v >> 16);
	(*p)[2] = (unsigned char)(v >> 8);
	(*p)[3] = (unsigned char)v;
	*p += 4;
}

static void
put_str(unsigned char **p, const void *s, size_t len)
{
	put_u32(p, (uint32_t)len);
	memcpy(*p, s, len);
	*p += len;
}

static char *
b64(const unsigned char *in, size_t len)
{
	char *out = malloc(len * 2 + 8);

	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

/* An SSH mpint of a big-endian positive integer. */
static void
put_mpint(unsigned char **p, const unsigned char *v, size_t len)
{
	while (len > 1 && v[0] == 0) {
		v++;
		len--;
	}
	if (v[0] & 0x80) {
		put_u32(p, (uint32_t)len + 1);
		*(*p)++ = 0;
		memcpy(*p, v, len);
		*p += len;
	} else {
		put_str(p, v, len);
	}
}

/* The key's public blob (sk-ssh-ed25519 or sk-ecdsa-sha2-nistp256, application "ssh:"). */
static size_t
sk_blob(EVP_PKEY *pkey, bool ecdsa, const char *type, unsigned char *blob)
{
	unsigned char *p = blob, raw[133];
	size_t raw_len = sizeof raw;

	put_str(&p, type, strlen(type));
	if (ecdsa) {
		ck_assert(EVP_PKEY_get_octet_string_param(pkey, "encoded-pub-key", raw, sizeof raw,
		                                          &raw_len) == 1);
		put_str(&p, "nistp256", 8);
	} else {
		ck_assert(EVP_PKEY_get_raw_public_key(pkey, raw, &raw_len) == 1);
	}
	put_str(&p, raw, raw_len);
	put_str(&p, "ssh:", 4);
	return (size_t)(p - blob);
}

/* What the authenticator signs: the signature, in SSH's inner form. */
static size_t
sk_raw_sig(EVP_PKEY *pkey, bool ecdsa, const unsigned char *authdata, size_t len, unsigned char *out)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	unsigned char sig[160], *p = out;
	size_t sig_len = sizeof sig;

	ck_assert(EVP_DigestSignInit(mctx, NULL, ecdsa ? EVP_sha256() : NULL, NULL, pkey) == 1);
	ck_assert(EVP_DigestSign(mctx, sig, &sig_len, authdata, len) == 1);
	EVP_MD_CTX_free(mctx);
	if (!ecdsa) {
		put_str(&p, sig, sig_len);
	} else {
		/* DER (r, s) to SSH: string(mpint r, mpint s). */
		const unsigned char *der = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &der, (long)sig_len);
		unsigned char r[32], sv[32], inner[80], *q = inner;

		ck_assert_ptr_nonnull(es);
		BN_bn2binpad(ECDSA_SIG_get0_r(es), r, 32);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), sv, 32);
		ECDSA_SIG_free(es);
		put_mpint(&q, r, 32);
		put_mpint(&q, sv, 32);
		put_str(&p, inner, (size_t)(q - inner));
	}
	return (size_t)(p - out);
}

/* An sk- key (ed25519 or ECDSA P-256) and an SSHSIG by it over message
 * with flags; tamper_flags changes the flag byte after signing. */
static void
sk_make(bool ecdsa, uint8_t flags, bool tamper_flags, char **pub_line, char **armored)
{
	const char *type = ecdsa ? "sk-ecdsa-sha2-nistp256@openssh.com" : "sk-ssh-ed25519@openssh.com";
	EVP_PKEY *pkey = ecdsa ? EVP_EC_gen("P-256") : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	unsigned char blob[256], sigblob[1024], inner[256], signed_data[512];
	unsigned char authdata[32 + 1 + 4 + 32], h[64];
	unsigned char *p;
	size_t blob_len, inner_len, sd_len, sig_len;
	unsigned int h_len;
	char *text;

	ck_assert_ptr_nonnull(pkey);
	blob_len = sk_blob(pkey, ecdsa, type, blob);
	text = b64(blob, blob_len);
	*pub_line = malloc(strlen(text) + 64);
	sprintf(*pub_line, "%s %s test@sk", type, text);
	free(text);

	/* The SSHSIG signed data, then what the authenticator signs over it. */
	EVP_Digest(message, strlen(message), h, &h_len, EVP_sha512(), NULL);
	p = signed_data;
	memcpy(p, "SSHSIG", 6);
	p += 6;
	put_str(&p, "p11gate-grant", 13);
	put_str(&p, "", 0);
	put_str(&p, "sha512", 6);
	put_str(&p, h, h_len);
	sd_len = (size_t)(p - signed_data);
	pg_sha256("ssh:", 4, authdata);
	authdata[32] = flags;
	memcpy(authdata + 33, "\0\0\0\x07", 4);
	pg_sha256(signed_data, sd_len, authdata + 37);

	p = inner;
	put_str(&p, type, strlen(type));
	p += sk_raw_sig(pkey, ecdsa, authdata, sizeof authdata, p);
	*p++ = tamper_flags ? (uint8_t)(flags ^ PG_SSHSIG_SK_USER_VERIFIED) : flags;
	put_u32(&p, 7);
	inner_len = (size_t)(p - inner);
	p = sigblob;
	memcpy(p, "SSHSIG", 6);
	p += 6;
	put_u32(&p, 1);
	put_str(&p, blob, blob_len);
	put_str(&p, "p11gate-grant", 13);
	put_str(&p, "", 0);
	put_str(&p, "sha512", 6);
	put_str(&p, inner, inner_len);
	sig_len = (size_t)(p - sigblob);
	text = b64(sigblob, sig_len);
	*armored = malloc(strlen(text) + 128);
	sprintf(*armored, "-----BEGIN SSH SIGNATURE-----\n%s\n-----END SSH SIGNATURE-----\n", text);
	free(text);
	EVP_PKEY_free(pkey);
}

static bool
sk_verify(bool ecdsa, uint8_t flags, bool tamper, struct pg_sshsig_sk *sk, char *err, size_t err_len)
{
	char *pub, *armored;
	pg_sshkey *key;
	pg_sshsig *sig;
	bool ok;

	sk_make(ecdsa, flags, tamper, &pub, &armored);
	key = pg_sshkey_new(pub, err, err_len);
	ck_assert_msg(key != NULL, "%s", err);
	ck_assert_int_eq(pg_sshkey_type(key), ecdsa ? PG_SSHKEY_SK_ECDSA_P256 : PG_SSHKEY_SK_ED25519);
	sig = pg_sshsig_new(armored, strlen(armored), err, err_len);
	ck_assert_msg(sig != NULL, "%s", err);
	ok = pg_sshsig_verify(sig, key, "p11gate-grant", (const unsigned char *)message,
	                      strlen(message), sk, err, err_len);
	pg_sshsig_free(sig);
	pg_sshkey_free(key);
	free(pub);
	free(armored);
	return ok;
}

/* _i: 0 sk-ssh-ed25519, 1 sk-ecdsa-sha2-nistp256. */
START_TEST(sk_layout)
{
	struct pg_sshsig_sk sk;
	char err[512];
	bool ecdsa = _i == 1;

	ck_assert_msg(sk_verify(ecdsa, PG_SSHSIG_SK_USER_PRESENT, false, &sk, err, sizeof err), "%s", err);
	ck_assert(sk.is_sk);
	ck_assert_uint_eq(sk.counter, 7);
	ck_assert_uint_eq(sk.flags, PG_SSHSIG_SK_USER_PRESENT);
	ck_assert(sk_verify(ecdsa, PG_SSHSIG_SK_USER_PRESENT | PG_SSHSIG_SK_USER_VERIFIED, false, &sk,
	                    err, sizeof err));
	/* No touch: refused. */
	ck_assert(!sk_verify(ecdsa, 0, false, &sk, err, sizeof err));
	ck_assert_ptr_nonnull(strstr(err, "did not confirm user presence"));
	/* The flags are signed: changing them breaks the signature. */
	ck_assert(!sk_verify(ecdsa, PG_SSHSIG_SK_USER_PRESENT, true, &sk, err, sizeof err));
	ck_assert_str_eq(err, "the signature does not verify");
}
END_TEST

static Suite *
sshsig_suite(void)
{
	Suite *s = suite_create("sshsig");
	TCase *tc = tcase_create("ssh-keygen");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, real_signatures_verify, 0, sizeof kinds / sizeof kinds[0]);
	tcase_add_test(tc, wrong_namespace);
	tcase_add_test(tc, another_key);
	tcase_add_test(tc, malformed_armor_and_keys);
	tcase_add_loop_test(tc, sk_layout, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sshsig_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
