/* SPDX-License-Identifier: Apache-2.0
 *
 * Re-judgement and hot reload in a long-lived process.  The policy file is
 * replaced atomically (temporary file + rename) between calls: the call
 * that produces the signature is judged again under the new policy and
 * refused, the token's operation is really ended (a new C_SignInit on the
 * same session works once the key is allowed again), and a replacement
 * that does not load leaves the last good policy in force, said on stderr
 * and in the log.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "world.h"

static const char ALLOW_RSA[] =
	"  - name: rsa-allowed\n"
	"    effect: allow\n"
	"    keys: [release-rsa]\n";

static const char ALLOW_RSA_DECRYPT[] =
	"  - name: rsa-signs-and-decrypts\n"
	"    effect: allow\n"
	"    keys: [release-rsa]\n"
	"    operations: [sign, decrypt]\n";

/* release-rsa revoked: only release-ec is allowed now. */
static const char REVOKED_RSA[] =
	"  - name: ec-only\n"
	"    effect: allow\n"
	"    keys: [release-ec]\n";

static const CK_BYTE RSA_ID = 0x01;

struct t {
	struct world w;
	CK_FUNCTION_LIST_PTR f;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE rsa;
};

static void
t_start(struct t *t, const char *name)
{
	printf("reload: %s\n", name);
	fflush(stdout);
	world_new(&t->w, "reload", name);
	world_policy(&t->w, ALLOW_RSA);
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
}

/* C_SignInit + C_Sign with release-rsa must work and be recorded once. */
static void
sign_ok(struct t *t, const char *data)
{
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE sig[512];
	CK_ULONG sig_len = sizeof sig;
	size_t mark = world_audit_lines(&t->w);

	ck_assert_rv(t->f->C_SignInit(t->s, &mech, t->rsa), CKR_OK);
	ck_assert_rv(t->f->C_Sign(t->s, (CK_BYTE_PTR)data, strlen(data), sig, &sig_len), CKR_OK);
	ck_assert_msg(world_verify(&t->w, "rsa", data, strlen(data), sig, sig_len), "the signature does not verify");
	world_expect_one_allow(&t->w, mark, "C_Sign");
}

/* C_SignInit with release-rsa must be refused and recorded once. */
static void
refused_at_init(struct t *t)
{
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	size_t mark = world_audit_lines(&t->w);

	ck_assert_rv(t->f->C_SignInit(t->s, &mech, t->rsa), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t->w, mark, "C_SignInit", "sign");
}

/* The SHA-256 of the policy file as it is now, in hex. */
static void
policy_sha256(const struct t *t, char out[65])
{
	unsigned char md[32];
	char buf[65536];
	FILE *f = fopen(t->w.policy, "r");
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	ck_assert_int_eq(EVP_Digest(buf, n, md, NULL, EVP_sha256(), NULL), 1);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

START_TEST(revoked_between_init_and_sign)
{
	struct t t;
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE data[] = "signed after the key was revoked", sig[512];
	CK_ULONG sig_len = sizeof sig;
	size_t mark;

	t_start(&t, "revoked_between_init_and_sign");
	ck_assert_rv(t.f->C_SignInit(t.s, &mech, t.rsa), CKR_OK);
	world_policy(&t.w, REVOKED_RSA);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_Sign(t.s, data, sizeof data, sig, &sig_len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_Sign", "sign");
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"event\":\"policy\"", "reloaded", NULL), 1);
	ck_assert_msg(world_stderr_has(&t.w, "p11gate: denied sign with key release-rsa (CKM_SHA256_RSA_PKCS)"),
	              "no refusal line on stderr");
	/* Still revoked at the next init. */
	refused_at_init(&t);
	/* Allowed again: the session has no operation left in the token
	 * (else CKR_OPERATION_ACTIVE), and signing works. */
	world_policy(&t.w, ALLOW_RSA);
	sign_ok(&t, "signed after the key was allowed again");
	t_end(&t);
}
END_TEST

/* The key's policy match is memoised per operation and regime (judge.c):
 * a policy that stops naming the key between the init and the signature,
 * with the same rules, is matched afresh. */
START_TEST(key_unnamed_between_init_and_sign)
{
	struct t t;
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE data[] = "signed after the policy stopped naming the key", sig[512];
	CK_ULONG sig_len = sizeof sig;
	char *text, *object;
	size_t mark;

	t_start(&t, "key_unnamed_between_init_and_sign");
	ck_assert_rv(t.f->C_SignInit(t.s, &mech, t.rsa), CKR_OK);
	/* The same rules; release-rsa now names an object that is not there. */
	text = world_policy_render(&t.w, ALLOW_RSA);
	object = strstr(text, "object=codesign-rsa");
	ck_assert_ptr_nonnull(object);
	memcpy(object, "object=codesign-xyz", strlen("object=codesign-xyz"));
	world_policy_text(&t.w, text);
	free(text);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_Sign(t.s, data, sizeof data, sig, &sig_len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_Sign", "sign");
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"keys_matched\"", NULL), 0);
	world_policy(&t.w, ALLOW_RSA);
	sign_ok(&t, "signed after the policy named the key again");
	t_end(&t);
}
END_TEST

/* Found by fuzz_pkcs11: a retry after CKR_BUFFER_TOO_SMALL was not judged
 * again, so a policy changed in between did not apply to it. */
START_TEST(revoked_between_too_small_and_retry)
{
	struct t t;
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE data[] = "retried after the key was revoked", sig[512];
	CK_ULONG sig_len = 16;
	size_t mark;

	t_start(&t, "revoked_between_too_small_and_retry");
	ck_assert_rv(t.f->C_SignInit(t.s, &mech, t.rsa), CKR_OK);
	ck_assert_rv(t.f->C_Sign(t.s, data, sizeof data, sig, &sig_len), CKR_BUFFER_TOO_SMALL);
	world_policy(&t.w, REVOKED_RSA);
	mark = world_audit_lines(&t.w);
	sig_len = sizeof sig;
	ck_assert_rv(t.f->C_Sign(t.s, data, sizeof data, sig, &sig_len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_Sign", "sign");
	world_policy(&t.w, ALLOW_RSA);
	sign_ok(&t, "signed after the key was allowed again");
	t_end(&t);
}
END_TEST

/* Found by fuzz_pkcs11: a retry with other data kept the first data's
 * allow record, so the log named data that was never signed. */
START_TEST(retry_with_other_data_is_recorded)
{
	struct t t;
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE first[] = "the data of the too-small call", second[] = "other data in the retry";
	CK_BYTE sig[512], hash[32];
	char needle[100];
	CK_ULONG sig_len = 16;
	unsigned int n;
	size_t mark;

	t_start(&t, "retry_with_other_data_is_recorded");
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignInit(t.s, &mech, t.rsa), CKR_OK);
	ck_assert_rv(t.f->C_Sign(t.s, first, sizeof first, sig, &sig_len), CKR_BUFFER_TOO_SMALL);
	sig_len = sizeof sig;
	ck_assert_rv(t.f->C_Sign(t.s, second, sizeof second, sig, &sig_len), CKR_OK);
	ck_assert_msg(world_verify(&t.w, "rsa", second, sizeof second, sig, sig_len),
	              "the signature is not over the retry's data");
	ck_assert(EVP_Digest(second, sizeof second, hash, &n, EVP_sha256(), NULL) == 1);
	strcpy(needle, "\"data_sha256\":\"");
	for (unsigned i = 0; i < 32; i++)
		sprintf(needle + strlen(needle), "%02x", hash[i]);
	ck_assert_msg(world_audit_count_since(&t.w, mark, "\"decision\":\"allow\"", needle, NULL) == 1,
	              "no allow record names the data actually signed");
	t_end(&t);
}
END_TEST

/* Found by review: after CKR_BUFFER_TOO_SMALL the allow record names the
 * data given so far, so nothing may change it before the retry: no more
 * parts, no call of the other form.  Each out-of-order call is refused and
 * recorded; the retry then signs exactly what the allow record names. */
START_TEST(too_small_then_more_data)
{
	struct t t;
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE first[] = "the data the allow record names", more[] = "data slipped in after it";
	CK_BYTE sig[512];
	CK_ULONG sig_len = 16;
	size_t mark;

	t_start(&t, "too_small_then_more_data");
	/* Single-part: C_Sign too small, then an update, then C_SignFinal. */
	ck_assert_rv(t.f->C_SignInit(t.s, &mech, t.rsa), CKR_OK);
	ck_assert_rv(t.f->C_Sign(t.s, first, sizeof first, sig, &sig_len), CKR_BUFFER_TOO_SMALL);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignUpdate(t.s, more, sizeof more), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_SignUpdate", "sign");
	mark = world_audit_lines(&t.w);
	sig_len = sizeof sig;
	ck_assert_rv(t.f->C_SignFinal(t.s, sig, &sig_len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_SignFinal", "sign");
	mark = world_audit_lines(&t.w);
	sig_len = sizeof sig;
	ck_assert_rv(t.f->C_Sign(t.s, first, sizeof first, sig, &sig_len), CKR_OK);
	ck_assert_msg(world_verify(&t.w, "rsa", first, sizeof first, sig, sig_len),
	              "the retry did not sign the data of the first call");
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"event\":\"result\"", NULL), 1);

	/* Multi-part: an update, C_SignFinal too small, another update. */
	ck_assert_rv(t.f->C_SignInit(t.s, &mech, t.rsa), CKR_OK);
	ck_assert_rv(t.f->C_SignUpdate(t.s, first, sizeof first), CKR_OK);
	sig_len = 16;
	ck_assert_rv(t.f->C_SignFinal(t.s, sig, &sig_len), CKR_BUFFER_TOO_SMALL);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignUpdate(t.s, more, sizeof more), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_SignUpdate", "sign");
	sig_len = sizeof sig;
	ck_assert_rv(t.f->C_SignFinal(t.s, sig, &sig_len), CKR_OK);
	ck_assert_msg(world_verify(&t.w, "rsa", first, sizeof first, sig, sig_len),
	              "the final did not sign exactly the parts the allow record names");

	/* C_Sign cannot end a multi-part operation. */
	ck_assert_rv(t.f->C_SignInit(t.s, &mech, t.rsa), CKR_OK);
	ck_assert_rv(t.f->C_SignUpdate(t.s, first, sizeof first), CKR_OK);
	mark = world_audit_lines(&t.w);
	sig_len = sizeof sig;
	ck_assert_rv(t.f->C_Sign(t.s, more, sizeof more, sig, &sig_len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_Sign", "sign");
	t_end(&t);
}
END_TEST

/* Found by review: a private-key decryption refused at its first output
 * was forgotten by p11gate but still open in SoftHSM2 (a 2.40 token has no
 * cancel), and the next C_Decrypt was forwarded as if a secret key's: a
 * raw RSA private operation, unrecorded, after the policy refused it. */
START_TEST(decryption_refused_mid_operation_stays_refused)
{
	struct t t;
	/* Padded: a raw CKM_RSA_X_509 decryption is judged as sign, which
	 * both policies allow. */
	CK_MECHANISM mech = { CKM_RSA_PKCS, NULL, 0 };
	CK_BYTE block[256], out[256];
	CK_ULONG out_len = sizeof out;
	size_t mark;

	t_start(&t, "decryption_refused_mid_operation_stays_refused");
	world_policy(&t.w, ALLOW_RSA_DECRYPT);
	memset(block, 0x5a, sizeof block);
	block[0] = 0;
	ck_assert_rv(t.f->C_DecryptInit(t.s, &mech, t.rsa), CKR_OK);
	world_policy(&t.w, ALLOW_RSA);          /* decrypt no longer allowed */
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptUpdate(t.s, block, sizeof block, out, &out_len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_DecryptUpdate", "decrypt");
	mark = world_audit_lines(&t.w);
	out_len = sizeof out;
	ck_assert_rv(t.f->C_Decrypt(t.s, block, sizeof block, out, &out_len), CKR_OPERATION_NOT_INITIALIZED);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);

	/* A secret key's decryption is forwarded as it was, unrecorded. */
	CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 }, ecb = { CKM_AES_ECB, NULL, 0 };
	CK_ULONG len = 16;
	CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
	CK_ATTRIBUTE templ[] = {
		{ CKA_VALUE_LEN, &len, sizeof len },
		{ CKA_TOKEN, &no, sizeof no },
		{ CKA_DECRYPT, &yes, sizeof yes },
	};
	CK_OBJECT_HANDLE aes;

	ck_assert_rv(t.f->C_GenerateKey(t.s, &gen, templ, 3, &aes), CKR_OK);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_DecryptInit(t.s, &ecb, aes), CKR_OK);
	out_len = sizeof out;
	ck_assert_rv(t.f->C_Decrypt(t.s, block, 16, out, &out_len), CKR_OK);
	ck_assert_uint_eq(out_len, 16);
	ck_assert_uint_eq(world_audit_lines(&t.w), mark);
	t_end(&t);
}
END_TEST

START_TEST(revoked_between_update_and_final)
{
	struct t t;
	CK_MECHANISM mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
	CK_BYTE part[2048], sig[512];
	CK_ULONG sig_len = sizeof sig;
	size_t mark;

	t_start(&t, "revoked_between_update_and_final");
	memset(part, 'j', sizeof part);
	ck_assert_rv(t.f->C_SignInit(t.s, &mech, t.rsa), CKR_OK);
	ck_assert_rv(t.f->C_SignUpdate(t.s, part, sizeof part), CKR_OK);
	world_policy(&t.w, REVOKED_RSA);
	ck_assert_rv(t.f->C_SignUpdate(t.s, part, sizeof part), CKR_OK);
	mark = world_audit_lines(&t.w);
	ck_assert_rv(t.f->C_SignFinal(t.s, sig, &sig_len), CKR_FUNCTION_REJECTED);
	world_expect_one_deny(&t.w, mark, "C_SignFinal", "sign");
	sig_len = sizeof sig;
	ck_assert_rv(t.f->C_SignFinal(t.s, sig, &sig_len), CKR_OPERATION_NOT_INITIALIZED);
	world_policy(&t.w, ALLOW_RSA);
	sign_ok(&t, "multi-part was cancelled; single-part works again");
	t_end(&t);
}
END_TEST

/* Nothing in flight: a revoked key is refused at the next C_SignInit, and
 * allowed again at the one after the policy is restored, without restart. */
START_TEST(revoke_and_restore_between_signatures)
{
	struct t t;

	t_start(&t, "revoke_and_restore_between_signatures");
	sign_ok(&t, "first");
	world_policy(&t.w, REVOKED_RSA);
	refused_at_init(&t);
	world_policy(&t.w, ALLOW_RSA);
	sign_ok(&t, "third");
	t_end(&t);
}
END_TEST

/* Renames the RSA private key in another process, straight through
 * SoftHSM2 (p11tool), as an administrator on another host of the token
 * would. */
static void
rename_rsa_key_elsewhere(const char *label)
{
	char set_label[128];
	int status;
	pid_t pid;

	snprintf(set_label, sizeof set_label, "--set-label=%s", label);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setenv("GNUTLS_PIN", "1234", 1);
		execlp("p11tool", "p11tool", "--provider", getenv("SOFTHSM_MODULE"), "--login",
		       set_label, "pkcs11:token=release;object=codesign-rsa;type=private", (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "p11tool --set-label failed (%d)", status);
}

/* A key named by label only (no pin), renamed by another process: with
 * key_names_max_age_ms: 0 the next use reads the new name and is refused
 * (the memo of names would otherwise trust the old one for that long). */
START_TEST(renamed_by_another_process)
{
	struct t t;
	char text[4096 + PATH_MAX];
	size_t mark;

	t_start(&t, "renamed_by_another_process");
	snprintf(text, sizeof text,
	         "version: 1\n"
	         "module: %s\n"
	         "audit: {file: %s}\n"
	         "key_names_max_age_ms: 0\n"
	         "keys:\n"
	         "  by-label: {uri: \"pkcs11:token=release;object=codesign-rsa\", owner: release}\n"
	         "rules:\n"
	         "  - {name: by-label-signs, effect: allow, keys: [by-label]}\n",
	         getenv("SOFTHSM_MODULE"), t.w.audit);
	world_policy_text(&t.w, text);
	sign_ok(&t, "while it is codesign-rsa");
	rename_rsa_key_elsewhere("not-codesign-rsa");
	mark = world_audit_lines(&t.w);
	refused_at_init(&t);
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "not named by the policy", NULL), 1);
	t_end(&t);
}
END_TEST

/* A replacement that does not load: keep the last good policy, say so. */
static void
bad_replacement(const char *name, const char *bad_text, const char *error_at)
{
	struct t t;
	char good_sha[65], line[8192], where[PATH_MAX + 32];
	size_t mark;

	t_start(&t, name);
	sign_ok(&t, "under the good policy");
	policy_sha256(&t, good_sha);

	world_policy_text(&t.w, bad_text);
	mark = world_audit_lines(&t.w);
	sign_ok(&t, "the bad file is not in force");
	/* The allow record names the good policy, not the bad file. */
	ck_assert_msg(world_audit_find_since(&t.w, mark, line, sizeof line, "\"decision\":\"allow\"", NULL), "no allow record");
	ck_assert_msg(strstr(line, good_sha) != NULL, "the allow record does not carry the last good policy's SHA-256");
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"event\":\"policy\"", "does not load", good_sha, NULL), 1);
	/* And an alert follows it (docs/audit.md, "Alerts"). */
	ck_assert_uint_eq(world_audit_count_since(&t.w, mark, "\"event\":\"alert\",\"alert\":\"reload-failed\","
	                                          "\"alert_id\":\"ce280eef613a0a08f460a42b19fe51b9\"",
	                                          "does not load", good_sha, NULL), 1);
	ck_assert_msg(world_stderr_has(&t.w, "does not load; keeping the last good policy"),
	              "stderr does not say the last good policy is kept");
	snprintf(where, sizeof where, "p11gate: %s:%s", t.w.policy, error_at);
	ck_assert_msg(world_stderr_has(&t.w, where), "stderr does not name the error at %s", where);

	/* A good file after the bad one is loaded. */
	world_policy(&t.w, REVOKED_RSA);
	refused_at_init(&t);
	t_end(&t);
}

START_TEST(syntax_error_keeps_last_good_policy)
{
	bad_replacement("syntax_error_keeps_last_good_policy",
	                "version: 1\n"
	                "rules: [\n"
	                "  - name: unterminated\n",
	                "3:3:");
}
END_TEST

START_TEST(invalid_policy_keeps_last_good_policy)
{
	char text[4096];

	/* Valid YAML, invalid policy: a typo in a field name (line 4). */
	snprintf(text, sizeof text,
	         "version: 1\n"
	         "module: %s\n"
	         "keys: {}\n"
	         "rulez: []\n",
	         getenv("SOFTHSM_MODULE"));
	bad_replacement("invalid_policy_keeps_last_good_policy", text, "4:1:");
}
END_TEST

/* Rewrites the policy file in place (same inode), then dates it a second
 * back: p11gate reads a file changed in place only once it has been quiet
 * for 200 ms, and the test should not wait for that. */
static void
policy_rewrite_in_place(const struct t *t, const char *rules)
{
	char *text = world_policy_render(&t->w, rules);
	struct timespec times[2];
	FILE *out;

	out = fopen(t->w.policy, "r+");
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(ftruncate(fileno(out), 0), 0);
	ck_assert_int_ge(fputs(text, out), 0);
	ck_assert_int_eq(fflush(out), 0);
	ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &times[0]), 0);
	times[0].tv_sec -= 1;
	times[1] = times[0];
	ck_assert_int_eq(futimens(fileno(out), times), 0);
	fclose(out);
	free(text);
}

/* A file that did not load is mended in place: the mended file is read
 * (p11gate keeps looking while the file in force is not the one the path
 * names, whatever changes it). */
START_TEST(bad_replacement_mended_in_place)
{
	struct t t;

	t_start(&t, "bad_replacement_mended_in_place");
	sign_ok(&t, "under the good policy");
	world_policy_text(&t.w, "version: 1\nrules: [\n");
	sign_ok(&t, "the bad file is not in force");
	policy_rewrite_in_place(&t, REVOKED_RSA);
	refused_at_init(&t);
	/* And an in-place change of the file in force is seen too. */
	policy_rewrite_in_place(&t, ALLOW_RSA);
	sign_ok(&t, "allowed again");
	t_end(&t);
}
END_TEST

/* root/p11gate/policy.yaml with the world's keys and these rules. */
static void
policy_tree(const struct t *t, const char *root, const char *rules)
{
	char dir[PATH_MAX + 16], path[PATH_MAX + 32], *text = world_policy_render(&t->w, rules);
	FILE *f;

	snprintf(dir, sizeof dir, "%s/p11gate", root);
	snprintf(path, sizeof path, "%s/policy.yaml", dir);
	ck_assert_int_eq(mkdir(root, 0755), 0);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	free(text);
}

/* The policy is etc/p11gate/policy.yaml, and etc is swapped for another
 * directory whose policy revokes the key.  No watch sees that (the file and
 * its directory are untouched): p11gate's look at the file at least every
 * 100 ms (src/module/watch.c) must, so the test waits that long. */
START_TEST(grandparent_directory_swapped)
{
	struct t t;
	char etc[PATH_MAX + 8], etc_new[PATH_MAX + 16], etc_old[PATH_MAX + 16];
	const struct timespec past_look = { 0, 150 * 1000000 };

	printf("reload: grandparent_directory_swapped\n");
	fflush(stdout);
	world_new(&t.w, "reload", "grandparent_directory_swapped");
	snprintf(etc, sizeof etc, "%s/etc", t.w.dir);
	snprintf(etc_new, sizeof etc_new, "%s.new", etc);
	snprintf(etc_old, sizeof etc_old, "%s.old", etc);
	policy_tree(&t, etc, ALLOW_RSA);
	policy_tree(&t, etc_new, REVOKED_RSA);
	ck_assert_int_lt(snprintf(t.w.policy, sizeof t.w.policy, "%s/p11gate/policy.yaml", etc),
	                 (int)sizeof t.w.policy);
	ck_assert_int_eq(setenv("P11GATE_CONFIG", t.w.policy, 1), 0);
	world_open(&t.w);
	t.f = t.w.f;
	t.s = world_session(&t.w);
	t.rsa = world_find(&t.w, t.s, CKO_PRIVATE_KEY, RSA_ID);
	sign_ok(&t, "under the first etc");
	ck_assert_int_eq(rename(etc, etc_old), 0);
	ck_assert_int_eq(rename(etc_new, etc), 0);
	nanosleep(&past_look, NULL);
	refused_at_init(&t);
	t_end(&t);
}
END_TEST

static Suite *
reload_suite(void)
{
	Suite *s = suite_create("reload");
	TCase *tc = tcase_create("reload");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, revoked_between_init_and_sign);
	tcase_add_test(tc, key_unnamed_between_init_and_sign);
	tcase_add_test(tc, revoked_between_update_and_final);
	tcase_add_test(tc, revoked_between_too_small_and_retry);
	tcase_add_test(tc, retry_with_other_data_is_recorded);
	tcase_add_test(tc, too_small_then_more_data);
	tcase_add_test(tc, decryption_refused_mid_operation_stays_refused);
	tcase_add_test(tc, revoke_and_restore_between_signatures);
	tcase_add_test(tc, renamed_by_another_process);
	tcase_add_test(tc, syntax_error_keeps_last_good_policy);
	tcase_add_test(tc, invalid_policy_keeps_last_good_policy);
	tcase_add_test(tc, bad_replacement_mended_in_place);
	tcase_add_test(tc, grandparent_directory_swapped);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return world_run_suite(reload_suite());
}
