/* SPDX-License-Identifier: Apache-2.0
 *
 * Which key a use is about, through p11gate.so over a real SoftHSM2 token:
 * the record and the refusal name the key the deciding rule names when two
 * policy keys match one object, and `p11gate audit find --key` finds a use
 * by any key the object matched (issue 11, item 4); objects that carry a
 * named key's CKA_ID or label are part of it: making, changing or
 * destroying one is `manage` on the key, and one planted beside an EC key
 * does not make its pin fail (item 5).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "world.h"

static const CK_BYTE RSA_ID = 0x01;
static const CK_BYTE EC_ID = 0x02;
static CK_BBOOL yes = CK_TRUE;
static CK_BBOOL no = CK_FALSE;
/* DER OID of prime256v1. */
static CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };

/* The pair: a token-wide key first in the file, the pinned RSA
 * key second; only the pinned key may sign, and only one mechanism. */
static void
two_names_policy(const struct world *w)
{
	char *text = NULL;

	ck_assert_int_gt(asprintf(&text,
	                          "version: 1\n"
	                          "module: %s\n"
	                          "audit:\n"
	                          "  file: %s\n"
	                          "keys:\n"
	                          "  release:\n"
	                          "    uri: \"pkcs11:token=release\"\n"
	                          "    owner: release-engineering\n"
	                          "  release-rsa:\n"
	                          "    uri: \"pkcs11:token=release;object=codesign-rsa\"\n"
	                          "    public_key_sha256: \"%s\"\n"
	                          "    owner: release-engineering\n"
	                          "rules:\n"
	                          "  - name: ci-signs\n"
	                          "    effect: allow\n"
	                          "    keys: [release-rsa]\n"
	                          "    operations: [sign]\n"
	                          "    mechanisms: [CKM_SHA256_RSA_PKCS]\n"
	                          "  - name: no-decrypt-on-the-token\n"
	                          "    effect: deny\n"
	                          "    keys: [release]\n"
	                          "    operations: [decrypt]\n",
	                          getenv("SOFTHSM_MODULE"), w->audit, w->rsa_pin), 0);
	world_policy_text(w, text);
	free(text);
}

/* `p11gate audit find --key KEY` on the world's log: exit status, and the
 * output in out. */
static int
audit_find_key(const struct world *w, const char *key, char *out, size_t out_len)
{
	char cmd[3 * PATH_MAX];
	size_t n;
	FILE *p;
	int status;

	snprintf(cmd, sizeof cmd, "'%s' audit find --key '%s' '%s' 2>&1", getenv("P11GATE_CLI"), key,
	         w->audit);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, out_len - 1, p);
	out[n] = '\0';
	status = pclose(p);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(record_names_the_deciding_rules_key)
{
	struct world w;
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE data[] = "a release artefact", sig[512];
	CK_ULONG sig_len = sizeof sig;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE rsa;
	char line[8192], out[8192];
	size_t mark;

	world_new(&w, "keys", "record_names_the_deciding_rules_key");
	two_names_policy(&w);
	world_open(&w);
	s = world_session(&w);
	rsa = world_find(&w, s, CKO_PRIVATE_KEY, RSA_ID);
	mark = world_audit_lines(&w);
	ck_assert_rv(w.f->C_SignInit(s, &mech, rsa), CKR_OK);
	ck_assert_rv(w.f->C_Sign(s, data, sizeof data, sig, &sig_len), CKR_OK);
	ck_assert(world_verify(&w, "rsa", data, sizeof data, sig, sig_len));
	world_expect_one_allow(&w, mark, "C_Sign");
	ck_assert(world_audit_find_since(&w, mark, line, sizeof line, "\"decision\":\"allow\"", NULL));
	ck_assert_msg(strstr(line, "\"rule\":\"ci-signs\"") != NULL &&
	              strstr(line, "\"key\":\"release-rsa\",\"key_uri\":\"pkcs11:token=release;"
	                     "object=codesign-rsa\",\"keys_matched\":[\"release\",\"release-rsa\"],") != NULL,
	              "the allow record does not name release-rsa and both matched keys: %s", line);

	/* The auditor's question, by either name. */
	ck_assert_int_eq(audit_find_key(&w, "release-rsa", out, sizeof out), 0);
	ck_assert_msg(strstr(out, " allow operation=sign key=release-rsa ") != NULL &&
	              strstr(out, " result ") != NULL, "find --key release-rsa: %s", out);
	ck_assert_int_eq(audit_find_key(&w, "release", out, sizeof out), 0);
	ck_assert_msg(strstr(out, " allow operation=sign key=release-rsa ") != NULL,
	              "find --key release: %s", out);
	ck_assert_rv(w.f->C_CloseSession(s), CKR_OK);
	world_audit_verify(&w);
	world_close(&w);
}
END_TEST

/* Refused: the deny record and the stderr line name the key of the rule
 * that refused (or of the nearest rule), not the first key in the file. */
START_TEST(refusals_name_the_rules_key)
{
	struct world w;
	CK_MECHANISM pkcs = { CKM_RSA_PKCS, NULL, 0 };
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE rsa;
	char line[8192];
	size_t mark;

	world_new(&w, "keys", "refusals_name_the_rules_key");
	two_names_policy(&w);
	world_open(&w);
	s = world_session(&w);
	rsa = world_find(&w, s, CKO_PRIVATE_KEY, RSA_ID);

	/* Not the allowed mechanism: no rule decides, ci-signs is nearest. */
	mark = world_audit_lines(&w);
	ck_assert_rv(w.f->C_SignInit(s, &pkcs, rsa), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&w, mark, "C_SignInit", "sign");
	ck_assert(world_audit_find_since(&w, mark, line, sizeof line, "\"decision\":\"deny\"", NULL));
	ck_assert_msg(strstr(line, "\"key\":\"release-rsa\",") != NULL &&
	              strstr(line, "\"keys_matched\":[\"release\",\"release-rsa\"]") != NULL,
	              "the deny record does not name release-rsa: %s", line);
	ck_assert_msg(world_stderr_has(&w, "denied sign with key release-rsa (CKM_RSA_PKCS)"),
	              "the stderr line does not name release-rsa");

	/* The token-wide deny rule decides: it names its own key. */
	mark = world_audit_lines(&w);
	ck_assert_rv(w.f->C_DecryptInit(s, &pkcs, rsa), CKR_FUNCTION_REJECTED);
	ck_assert(world_audit_find_since(&w, mark, line, sizeof line, "\"decision\":\"deny\"", NULL));
	ck_assert_msg(strstr(line, "\"rule\":\"no-decrypt-on-the-token\"") != NULL &&
	              strstr(line, "\"key\":\"release\",") != NULL, "%s", line);
	ck_assert(world_stderr_has(&w, "denied decrypt with key release (CKM_RSA_PKCS)"));
	ck_assert_rv(w.f->C_CloseSession(s), CKR_OK);
	world_audit_verify(&w);
	world_close(&w);
}
END_TEST

/* ---- objects beside a named key ------------------------------------------------ */

/* Both fixture keys, pinned, named as private keys only (type=private), so
 * that no public object matches a key's URI by itself: what makes such an
 * object part of a key is its CKA_ID or label.  Both may sign; `manage`
 * only if manage_ec (on release-ec). */
static void
beside_policy(const struct world *w, bool manage_ec)
{
	char *text = NULL;

	ck_assert_int_gt(asprintf(&text,
	                          "version: 1\n"
	                          "module: %s\n"
	                          "audit:\n"
	                          "  file: %s\n"
	                          "keys:\n"
	                          "  release-rsa:\n"
	                          "    uri: \"pkcs11:token=release;object=codesign-rsa;type=private\"\n"
	                          "    public_key_sha256: \"%s\"\n"
	                          "    owner: release-engineering\n"
	                          "  release-ec:\n"
	                          "    uri: \"pkcs11:token=release;object=codesign-ec;type=private\"\n"
	                          "    public_key_sha256: \"%s\"\n"
	                          "    owner: release-engineering\n"
	                          "rules:\n"
	                          "  - name: everyone-signs\n"
	                          "    effect: allow\n"
	                          "    keys: [release-rsa, release-ec]\n"
	                          "    operations: [sign]\n"
	                          "%s",
	                          getenv("SOFTHSM_MODULE"), w->audit, w->rsa_pin, w->ec_pin,
	                          manage_ec ? "  - name: admins-manage-ec\n"
	                                      "    effect: allow\n"
	                                      "    keys: [release-ec]\n"
	                                      "    operations: [manage]\n" : ""), 0);
	world_policy_text(w, text);
	free(text);
}

/* A P-256 point no key on the token has: DER OCTET STRING of the
 * uncompressed point, as CKA_EC_POINT holds it. */
static CK_ULONG
foreign_point(CK_BYTE out[67])
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	size_t len = 0;

	ck_assert_ptr_nonnull(pkey);
	ck_assert_int_eq(EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, out + 2, 65,
	                                                 &len), 1);
	ck_assert_uint_eq(len, 65);
	EVP_PKEY_free(pkey);
	out[0] = 0x04;
	out[1] = 0x41;
	return 67;
}

/* A public-key object with the EC key's CKA_ID and a foreign point. */
struct planted {
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE type;
	CK_BYTE point[67];
	CK_ATTRIBUTE templ[8];
};

static void
planted_init(struct planted *p, CK_BBOOL *token)
{
	p->cls = CKO_PUBLIC_KEY;
	p->type = CKK_EC;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &p->cls, sizeof p->cls },
		{ CKA_KEY_TYPE, &p->type, sizeof p->type },
		{ CKA_TOKEN, token, sizeof *token },
		{ CKA_PRIVATE, &no, sizeof no },
		{ CKA_EC_PARAMS, p256, sizeof p256 },
		{ CKA_EC_POINT, p->point, foreign_point(p->point) },
		{ CKA_ID, (void *)&EC_ID, 1 },
		{ CKA_LABEL, "planted", 7 },
	};
	memcpy(p->templ, t, sizeof t);
}

/* Signs with the EC key through p11gate: the legitimate signer. */
static void
ec_signs(const struct world *w, CK_SESSION_HANDLE s)
{
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_BYTE data[] = "an artefact", sig[128], digest[32];
	CK_ULONG sig_len = sizeof sig;
	CK_OBJECT_HANDLE ec = world_find(w, s, CKO_PRIVATE_KEY, EC_ID);
	char line[8192];
	size_t mark = world_audit_lines(w);

	ck_assert_int_eq(EVP_Digest(data, sizeof data, digest, NULL, EVP_sha256(), NULL), 1);
	ck_assert_rv(w->f->C_SignInit(s, &mech, ec), CKR_OK);
	ck_assert_rv(w->f->C_Sign(s, digest, sizeof digest, sig, &sig_len), CKR_OK);
	ck_assert(world_verify(w, "ec", data, sizeof data, sig, sig_len));
	world_expect_one_allow(w, mark, "C_Sign");
	ck_assert(world_audit_find_since(w, mark, line, sizeof line, "\"decision\":\"allow\"", NULL));
	ck_assert_msg(strstr(line, "\"key\":\"release-ec\"") != NULL && strstr(line, w->ec_pin) != NULL,
	              "the allow record does not name release-ec with its pinned public key: %s", line);
}

/* Another process puts the object on the token without p11gate (as a
 * token tool would): a child process talks to SoftHSM2 directly. */
static void
plant_directly(void)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		CK_BBOOL token = CK_TRUE;
		CK_C_GetFunctionList get;
		CK_FUNCTION_LIST_PTR f;
		CK_SLOT_ID slots[8];
		CK_ULONG n = 8;
		CK_SESSION_HANDLE s;
		CK_OBJECT_HANDLE o;
		struct planted p;
		void *dl = dlopen(getenv("SOFTHSM_MODULE"), RTLD_NOW);

		planted_init(&p, &token);
		if (dl == NULL || (get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList")) == NULL ||
		    get(&f) != CKR_OK || f->C_Initialize(NULL) != CKR_OK ||
		    f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK || n == 0 ||
		    f->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK ||
		    f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)"1234", 4) != CKR_OK ||
		    f->C_CreateObject(s, p.templ, 8, &o) != CKR_OK)
			_exit(1);
		f->C_Finalize(NULL);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "planting the object directly failed");
}

/* The pin's source: a public key object with the EC key's id and a foreign
 * point, put on the token by a route p11gate does not see, must not turn
 * the legitimate signer away (before: "two different public keys claim
 * this id", the key failed its pin until someone deleted the object). */
START_TEST(planted_point_does_not_refuse_the_signer)
{
	struct world w;
	CK_SESSION_HANDLE s;
	CK_ATTRIBUTE label = { CKA_LABEL, "planted", 7 };
	CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
	CK_ATTRIBUTE find[] = { { CKA_CLASS, &cls, sizeof cls }, label };
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0;

	world_new(&w, "keys", "planted_point_does_not_refuse_the_signer");
	beside_policy(&w, false);
	plant_directly();
	world_open(&w);
	s = world_session(&w);
	ck_assert_rv(w.f->C_FindObjectsInit(s, find, 2), CKR_OK);
	ck_assert_rv(w.f->C_FindObjects(s, found, 2, &n), CKR_OK);
	ck_assert_rv(w.f->C_FindObjectsFinal(s), CKR_OK);
	ck_assert_uint_eq(n, 1);           /* it is there */
	ec_signs(&w, s);
	ck_assert_rv(w.f->C_CloseSession(s), CKR_OK);
	world_audit_verify(&w);
	world_close(&w);
}
END_TEST

/* A caller whom no rule allows `manage` cannot plant, change or remove
 * the objects beside a named key: each attempt is `manage` on that key,
 * refused and recorded, and the token is left as it was. */
START_TEST(objects_beside_a_key_are_manage)
{
	struct world w;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE o = CK_INVALID_HANDLE, ec_pub, rsa_cert;
	CK_OBJECT_CLASS data_cls = CKO_DATA;
	CK_ATTRIBUTE data[] = {
		{ CKA_CLASS, &data_cls, sizeof data_cls },
		{ CKA_TOKEN, &yes, sizeof yes },
		{ CKA_PRIVATE, &no, sizeof no },
		{ CKA_LABEL, "codesign-ec", 11 },
		{ CKA_VALUE, "x", 1 },
	};
	CK_ATTRIBUTE relabel[] = { { CKA_LABEL, "renamed", 7 } };
	struct planted p;
	char line[8192];
	size_t mark;
	CK_ULONG n_public, n_cert, n_data;

	world_new(&w, "keys", "objects_beside_a_key_are_manage");
	beside_policy(&w, false);
	world_open(&w);
	s = world_session(&w);
	n_public = world_count_class(&w, s, CKO_PUBLIC_KEY);
	n_cert = world_count_class(&w, s, CKO_CERTIFICATE);
	n_data = world_count_class(&w, s, CKO_DATA);

	/* A public key with the EC key's id and a foreign point (a token
	 * object, and a session object: the same within this process). */
	for (int token = 1; token >= 0; token--) {
		planted_init(&p, token ? &yes : &no);
		mark = world_audit_lines(&w);
		ck_assert_rv(w.f->C_CreateObject(s, p.templ, 8, &o), CKR_FUNCTION_REJECTED);
		world_expect_one_deny(&w, mark, "C_CreateObject", "manage");
		ck_assert(world_audit_find_since(&w, mark, line, sizeof line, "\"decision\":\"deny\"", NULL));
		ck_assert_msg(strstr(line, "\"key\":\"release-ec\"") != NULL, "%s", line);
	}
	ck_assert(world_stderr_has(&w, "denied manage with key release-ec"));

	/* A data object with the EC key's label. */
	mark = world_audit_lines(&w);
	ck_assert_rv(w.f->C_CreateObject(s, data, 5, &o), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&w, mark, "C_CreateObject", "manage");

	/* Removing the EC key's public key (the source of its pin). */
	ec_pub = world_find(&w, s, CKO_PUBLIC_KEY, EC_ID);
	mark = world_audit_lines(&w);
	ck_assert_rv(w.f->C_DestroyObject(s, ec_pub), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&w, mark, "C_DestroyObject", "manage");

	/* Relabelling the RSA key's certificate. */
	rsa_cert = world_find(&w, s, CKO_CERTIFICATE, RSA_ID);
	mark = world_audit_lines(&w);
	ck_assert_rv(w.f->C_SetAttributeValue(s, rsa_cert, relabel, 1), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&w, mark, "C_SetAttributeValue", "manage");
	ck_assert(world_audit_find_since(&w, mark, line, sizeof line, "\"decision\":\"deny\"", NULL));
	ck_assert_msg(strstr(line, "\"key\":\"release-rsa\"") != NULL, "%s", line);

	ck_assert_uint_eq(world_count_class(&w, s, CKO_PUBLIC_KEY), n_public);
	ck_assert_uint_eq(world_count_class(&w, s, CKO_CERTIFICATE), n_cert);
	ck_assert_uint_eq(world_count_class(&w, s, CKO_DATA), n_data);
	ck_assert_uint_eq(world_count_label(&w, s, CKO_CERTIFICATE, "codesign-rsa"), 1);
	ec_signs(&w, s);

	/* An object beside no named key is nobody's business. */
	p.templ[6].pValue = "\x77";
	mark = world_audit_lines(&w);
	ck_assert_rv(w.f->C_CreateObject(s, p.templ, 8, &o), CKR_OK);
	ck_assert_uint_eq(world_audit_lines(&w), mark);
	ck_assert_rv(w.f->C_DestroyObject(s, o), CKR_OK);
	ck_assert_uint_eq(world_audit_lines(&w), mark);
	ck_assert_rv(w.f->C_CloseSession(s), CKR_OK);
	world_audit_verify(&w);
	world_close(&w);
}
END_TEST

/* With a manage rule the object is made, and recorded as manage on the
 * key; its foreign point still does not make the key fail its pin. */
START_TEST(allowed_manage_beside_a_key_is_recorded)
{
	struct world w;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
	struct planted p;
	char line[8192];
	size_t mark;

	world_new(&w, "keys", "allowed_manage_beside_a_key_is_recorded");
	beside_policy(&w, true);
	world_open(&w);
	s = world_session(&w);
	planted_init(&p, &yes);
	mark = world_audit_lines(&w);
	ck_assert_rv(w.f->C_CreateObject(s, p.templ, 8, &o), CKR_OK);
	world_expect_one_allow(&w, mark, "C_CreateObject");
	ck_assert(world_audit_find_since(&w, mark, line, sizeof line, "\"decision\":\"allow\"", NULL));
	ck_assert_msg(strstr(line, "\"rule\":\"admins-manage-ec\"") != NULL &&
	              strstr(line, "\"operation\":\"manage\"") != NULL &&
	              strstr(line, "\"key\":\"release-ec\"") != NULL, "%s", line);
	ec_signs(&w, s);
	ck_assert_rv(w.f->C_CloseSession(s), CKR_OK);
	world_audit_verify(&w);
	world_close(&w);
}
END_TEST

/* An EC key named by URI alone, with no pin: its public key is what the
 * public key object and the certificate with its CKA_ID agree on, so the
 * allow record names it only if the certificate's public key is read
 * right.  After C_Logout + C_Login the key has a new handle, and its
 * identity is derived again (with the token's names taken from the memo
 * once one read of the token agrees): the record still names it. */
START_TEST(unpinned_ec_key_named_by_its_public_key_across_logins)
{
	static const char pin[] = "1234";
	struct world w;
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_BYTE digest[32] = { 1 }, sig[128];
	CK_SESSION_HANDLE s;
	char line[8192], *text = NULL;

	world_new(&w, "keys", "unpinned_ec_key_named_by_its_public_key_across_logins");
	ck_assert_int_gt(asprintf(&text,
	                          "version: 1\n"
	                          "module: %s\n"
	                          "audit:\n"
	                          "  file: %s\n"
	                          "keys:\n"
	                          "  release-ec:\n"
	                          "    uri: \"pkcs11:token=release;object=codesign-ec\"\n"
	                          "rules:\n"
	                          "  - name: ec-signs\n"
	                          "    effect: allow\n"
	                          "    keys: [release-ec]\n"
	                          "    operations: [sign]\n",
	                          getenv("SOFTHSM_MODULE"), w.audit), 0);
	world_policy_text(&w, text);
	free(text);
	world_open(&w);
	s = world_session(&w);
	for (int login = 0; login < 3; login++) {
		CK_OBJECT_HANDLE ec = world_find(&w, s, CKO_PRIVATE_KEY, EC_ID);
		CK_ULONG sig_len = sizeof sig;
		size_t mark = world_audit_lines(&w);

		ck_assert_rv(w.f->C_SignInit(s, &mech, ec), CKR_OK);
		ck_assert_rv(w.f->C_Sign(s, digest, sizeof digest, sig, &sig_len), CKR_OK);
		ck_assert(world_audit_find_since(&w, mark, line, sizeof line, "\"decision\":\"allow\"", NULL));
		ck_assert_msg(strstr(line, w.ec_pin) != NULL,
		              "login %d: the allow record does not name the key's public key %s: %s", login,
		              w.ec_pin, line);
		ck_assert_rv(w.f->C_Logout(s), CKR_OK);
		ck_assert_rv(w.f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, sizeof pin - 1), CKR_OK);
	}
	ck_assert_rv(w.f->C_CloseSession(s), CKR_OK);
	world_audit_verify(&w);
	world_close(&w);
}
END_TEST

/* Without a login the private keys are invisible, so p11gate cannot tell
 * whose id a public key or certificate carries: changing or destroying a
 * token public key with an id is refused (fail closed), with a reason.
 * (What such a session makes beside a key cannot be judged; it cannot
 * make the key fail its pin either: the signer still signs.) */
START_TEST(not_logged_in_cannot_tell_so_refused)
{
	struct world w;
	CK_SESSION_HANDLE s, user;
	CK_OBJECT_HANDLE ec_pub, o = CK_INVALID_HANDLE;
	CK_ATTRIBUTE relabel[] = { { CKA_LABEL, "renamed", 7 } };
	struct planted p;
	size_t mark;

	world_new(&w, "keys", "not_logged_in_cannot_tell_so_refused");
	beside_policy(&w, false);
	world_open(&w);
	ck_assert_rv(w.f->C_OpenSession(w.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
	ec_pub = world_find(&w, s, CKO_PUBLIC_KEY, EC_ID);
	mark = world_audit_lines(&w);
	ck_assert_rv(w.f->C_DestroyObject(s, ec_pub), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&w, mark, "C_DestroyObject", "manage");
	ck_assert_uint_eq(world_audit_count_since(&w, mark, "the session is not logged in", NULL), 1);
	mark = world_audit_lines(&w);
	ck_assert_rv(w.f->C_SetAttributeValue(s, ec_pub, relabel, 1), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&w, mark, "C_SetAttributeValue", "manage");

	planted_init(&p, &no);
	ck_assert_rv(w.f->C_CreateObject(s, p.templ, 8, &o), CKR_OK);
	user = world_session(&w);
	ck_assert_uint_eq(world_count_class(&w, user, CKO_PUBLIC_KEY), 3);
	ck_assert_uint_eq(world_count_label(&w, user, CKO_PUBLIC_KEY, "codesign-ec"), 1);
	ec_signs(&w, user);
	ck_assert_rv(w.f->C_CloseSession(s), CKR_OK);
	world_audit_verify(&w);
	world_close(&w);
}
END_TEST

static Suite *
keys_suite(void)
{
	Suite *s = suite_create("keys");
	TCase *names = tcase_create("names");
	TCase *beside = tcase_create("objects beside a key");

	tcase_add_test(names, record_names_the_deciding_rules_key);
	tcase_add_test(names, refusals_name_the_rules_key);
	tcase_add_test(beside, planted_point_does_not_refuse_the_signer);
	tcase_add_test(beside, unpinned_ec_key_named_by_its_public_key_across_logins);
	tcase_add_test(beside, objects_beside_a_key_are_manage);
	tcase_add_test(beside, allowed_manage_beside_a_key_is_recorded);
	tcase_add_test(beside, not_logged_in_cannot_tell_so_refused);
	tcase_set_timeout(names, 60);
	tcase_set_timeout(beside, 60);
	suite_add_tcase(s, names);
	suite_add_tcase(s, beside);
	return s;
}

int
main(void)
{
	return world_run_suite(keys_suite());
}
