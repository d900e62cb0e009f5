/* SPDX-License-Identifier: Apache-2.0
 *
 * A key's certificates change on the token while a process signs with it
 * (docs/policy.md, "Key lifecycle"): p11gate reads them once per key and
 * policy regime.  A certificate another process adds is seen at the next
 * policy reload; one added or removed through this process's p11gate is
 * seen at the next signature.  The certificate added here is expired and
 * carries release-rsa's public key: every certificate of a key must pass,
 * so once seen it refuses the key (it could never make it usable); and
 * through p11gate, making it is `manage` on release-rsa whatever its names.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "world.h"

static const CK_BYTE RSA_ID = 0x01;

struct t {
	struct world w;
	CK_FUNCTION_LIST_PTR f;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE rsa;
	char *policy;
	char expired[PATH_MAX];
};

/* release-rsa needs a codeSigning certificate; the fixture's own (valid
 * 2000-2099) passes. */
static void
write_policy(struct t *t)
{
	world_policy_text(&t->w, t->policy);
}

/* An expired certificate (2020-01-01, 30 days) for release-rsa's public
 * key, made by OpenSSL: dir/expired.der. */
static void
make_expired_certificate(struct t *t)
{
	char cmd[4 * PATH_MAX];
	int n;

	n = snprintf(t->expired, sizeof t->expired, "%s/expired.der", t->w.dir);
	ck_assert(n > 0 && (size_t)n < sizeof t->expired);
	n = snprintf(cmd, sizeof cmd,
	             "cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "
	             "-subj /CN=ca -days 36500 2>/dev/null && "
	             "openssl req -new -newkey rsa:2048 -nodes -keyout req.key -out req.csr -subj /CN=x "
	             "2>/dev/null && TZ=UTC faketime -f '2020-01-01 00:00:00' openssl x509 -req -in req.csr "
	             "-CA ca.pem -CAkey ca.key -force_pubkey '%s/rsa-pub.pem' -days 30 -set_serial 0x66 "
	             "-outform DER -out expired.der 2>/dev/null",
	             t->w.dir, t->w.token);
	ck_assert(n > 0 && (size_t)n < sizeof cmd);
	ck_assert_int_eq(system(cmd), 0);
}

static void
t_start(struct t *t, const char *name)
{
	char *text;
	const char *at;
	int n;

	printf("certs-live: %s\n", name);
	fflush(stdout);
	world_new(&t->w, "certs-live", name);
	text = world_policy_render(&t->w, "  - name: rsa-allowed\n    effect: allow\n    keys: [release-rsa]\n");
	at = strstr(text, "  release-ec:");
	ck_assert_ptr_nonnull(at);
	n = asprintf(&t->policy, "%.*s    certificate: { required: true, eku: codeSigning }\n%s",
	             (int)(at - text), text, at);
	ck_assert_int_gt(n, 0);
	free(text);
	write_policy(t);
	make_expired_certificate(t);
	world_open(&t->w);
	t->f = t->w.f;
	t->s = world_session(&t->w);
	t->rsa = world_find(&t->w, t->s, CKO_PRIVATE_KEY, RSA_ID);
}

static void
t_end(struct t *t)
{
	world_audit_verify(&t->w);
	world_close(&t->w);
	free(t->policy);
}

static void
sign_ok(struct t *t)
{
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE data[] = "release", sig[512];
	CK_ULONG sig_len = sizeof sig;
	size_t mark = world_audit_lines(&t->w);

	ck_assert_rv(t->f->C_SignInit(t->s, &mech, t->rsa), CKR_OK);
	ck_assert_rv(t->f->C_Sign(t->s, data, sizeof data, sig, &sig_len), CKR_OK);
	world_expect_one_allow(&t->w, mark, "C_Sign");
}

static void
refused_expired(struct t *t)
{
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	size_t mark = world_audit_lines(&t->w);

	ck_assert_rv(t->f->C_SignInit(t->s, &mech, t->rsa), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t->w, mark, "C_SignInit", "sign");
	ck_assert_uint_eq(world_audit_count_since(&t->w, mark, "(serial 66) expired at 2020-01-31", NULL), 1);
}

START_TEST(added_by_another_process_seen_at_reload)
{
	struct t t;
	char cmd[2 * PATH_MAX];

	t_start(&t, "added_by_another_process_seen_at_reload");
	sign_ok(&t);
	/* Another process writes it straight on the token. */
	ck_assert_int_lt(snprintf(cmd, sizeof cmd, "pkcs11-tool --module '%s' --token-label release --login "
	                          "--pin 1234 --write-object '%s' --type cert --id 66 --label planted "
	                          ">/dev/null 2>&1", getenv("SOFTHSM_MODULE"), t.expired), (int)sizeof cmd);
	ck_assert_int_eq(system(cmd), 0);
	/* Not read again under the same regime: still allowed. */
	sign_ok(&t);
	/* A reload (the same policy, deployed again) reads them again. */
	write_policy(&t);
	refused_expired(&t);
	t_end(&t);
}
END_TEST

/* The policy with a manage rule for release-rsa too. */
static void
allow_manage(struct t *t)
{
	char *text;
	const char *at = strstr(t->policy, "rules:\n");

	ck_assert_ptr_nonnull(at);
	ck_assert_int_gt(asprintf(&text, "%s  - name: rsa-managed\n    effect: allow\n    keys: [release-rsa]\n"
	                          "    operations: [manage]\n", t->policy), 0);
	world_policy_text(&t->w, text);
	free(text);
}

START_TEST(added_and_removed_through_p11gate_seen_at_once)
{
	struct t t;
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE type = CKC_X_509;
	CK_BBOOL yes = CK_TRUE;
	CK_BYTE id = 0x66, der[4096];
	CK_OBJECT_HANDLE cert;
	const unsigned char *p = der;
	unsigned char *subject = NULL;
	X509 *x509;
	FILE *f;
	size_t len, mark;
	int subject_len;

	t_start(&t, "added_and_removed_through_p11gate_seen_at_once");
	f = fopen(t.expired, "rb");
	ck_assert_ptr_nonnull(f);
	len = fread(der, 1, sizeof der, f);
	fclose(f);
	ck_assert_uint_gt(len, 0);
	/* SoftHSM2 wants the subject of an X.509 certificate object. */
	x509 = d2i_X509(NULL, &p, (long)len);
	ck_assert_ptr_nonnull(x509);
	subject_len = i2d_X509_NAME(X509_get_subject_name(x509), &subject);
	ck_assert_int_gt(subject_len, 0);
	X509_free(x509);
	sign_ok(&t);
	{
		CK_ATTRIBUTE templ[] = {
			{ CKA_CLASS, &cls, sizeof cls }, { CKA_CERTIFICATE_TYPE, &type, sizeof type },
			{ CKA_TOKEN, &yes, sizeof yes }, { CKA_ID, &id, 1 },
			{ CKA_LABEL, "planted", 7 }, { CKA_VALUE, der, len },
			{ CKA_SUBJECT, subject, (CK_ULONG)subject_len },
		};

		/* Its id and label are no key's, but it carries release-rsa's
		 * public key: it is release-rsa's certificate, `manage` on it,
		 * and no rule allows that. */
		mark = world_audit_lines(&t.w);
		ck_assert_rv(t.f->C_CreateObject(t.s, templ, 7, &cert), CKR_FUNCTION_REJECTED);
		world_expect_one_deny(&t.w, mark, "C_CreateObject", "manage");
		ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"key\":\"release-rsa\"", NULL), 1);
		sign_ok(&t);
		/* Allowed to manage it (a reload: the certificates are read
		 * again at the next signature), made: refused at the next
		 * signature, with no reload between. */
		allow_manage(&t);
		sign_ok(&t);
		ck_assert_rv(t.f->C_CreateObject(t.s, templ, 7, &cert), CKR_OK);
	}
	OPENSSL_free(subject);
	refused_expired(&t);
	ck_assert_rv(t.f->C_DestroyObject(t.s, cert), CKR_OK);
	sign_ok(&t);
	t_end(&t);
}
END_TEST

/* An object that claims to be a certificate but whose value is no X.509
 * certificate carries no public key: it refuses no key (it would refuse
 * every key on the token if it counted). */
START_TEST(garbage_certificate_is_no_keys)
{
	struct t t;
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE type = CKC_X_509;
	CK_BBOOL yes = CK_TRUE;
	CK_BYTE id = 0x67, junk[] = "not a certificate", subject[] = { 0x30, 0x00 };
	CK_ATTRIBUTE templ[] = {
		{ CKA_CLASS, &cls, sizeof cls }, { CKA_CERTIFICATE_TYPE, &type, sizeof type },
		{ CKA_TOKEN, &yes, sizeof yes }, { CKA_ID, &id, 1 }, { CKA_LABEL, "junk", 4 },
		{ CKA_VALUE, junk, sizeof junk }, { CKA_SUBJECT, subject, sizeof subject },
	};
	CK_OBJECT_HANDLE cert;

	t_start(&t, "garbage_certificate_is_no_keys");
	ck_assert_rv(t.f->C_CreateObject(t.s, templ, 7, &cert), CKR_OK);
	sign_ok(&t);
	t_end(&t);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("certs-live");
	TCase *tc = tcase_create("certs-live");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, added_by_another_process_seen_at_reload);
	tcase_add_test(tc, added_and_removed_through_p11gate_seen_at_once);
	tcase_add_test(tc, garbage_certificate_is_no_keys);
	suite_add_tcase(s, tc);
	return world_run_suite(s);
}
