/* SPDX-License-Identifier: Apache-2.0
 *
 * The enforcement C tests' world (see world.h): fixture copies, policies,
 * the module loaded over them, and reading back what p11gate wrote to the
 * audit log and to stderr.  Written from the PKCS#11 specification and the
 * documented record format, not from p11gate's sources.
 */
#include "world.h"
#include "../mock/mock.h"

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

static const char USER_PIN[] = "1234";

const char *
world_rv_name(CK_RV rv)
{
	static __thread char buf[32];

	switch (rv) {
	case CKR_OK: return "CKR_OK";
	case CKR_HOST_MEMORY: return "CKR_HOST_MEMORY";
	case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
	case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
	case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
	case CKR_ATTRIBUTE_SENSITIVE: return "CKR_ATTRIBUTE_SENSITIVE";
	case CKR_ATTRIBUTE_TYPE_INVALID: return "CKR_ATTRIBUTE_TYPE_INVALID";
	case CKR_ATTRIBUTE_VALUE_INVALID: return "CKR_ATTRIBUTE_VALUE_INVALID";
	case CKR_DATA_LEN_RANGE: return "CKR_DATA_LEN_RANGE";
	case CKR_ENCRYPTED_DATA_INVALID: return "CKR_ENCRYPTED_DATA_INVALID";
	case CKR_FUNCTION_NOT_SUPPORTED: return "CKR_FUNCTION_NOT_SUPPORTED";
	case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
	case CKR_KEY_TYPE_INCONSISTENT: return "CKR_KEY_TYPE_INCONSISTENT";
	case CKR_KEY_FUNCTION_NOT_PERMITTED: return "CKR_KEY_FUNCTION_NOT_PERMITTED";
	case CKR_KEY_UNEXTRACTABLE: return "CKR_KEY_UNEXTRACTABLE";
	case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
	case CKR_MECHANISM_PARAM_INVALID: return "CKR_MECHANISM_PARAM_INVALID";
	case CKR_OBJECT_HANDLE_INVALID: return "CKR_OBJECT_HANDLE_INVALID";
	case CKR_OPERATION_ACTIVE: return "CKR_OPERATION_ACTIVE";
	case CKR_OPERATION_NOT_INITIALIZED: return "CKR_OPERATION_NOT_INITIALIZED";
	case CKR_SAVED_STATE_INVALID: return "CKR_SAVED_STATE_INVALID";
	case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
	case CKR_STATE_UNSAVEABLE: return "CKR_STATE_UNSAVEABLE";
	case CKR_TEMPLATE_INCONSISTENT: return "CKR_TEMPLATE_INCONSISTENT";
	case CKR_USER_ALREADY_LOGGED_IN: return "CKR_USER_ALREADY_LOGGED_IN";
	case CKR_BUFFER_TOO_SMALL: return "CKR_BUFFER_TOO_SMALL";
	case CKR_CRYPTOKI_NOT_INITIALIZED: return "CKR_CRYPTOKI_NOT_INITIALIZED";
	case CKR_FUNCTION_REJECTED: return "CKR_FUNCTION_REJECTED";
	default:
		snprintf(buf, sizeof buf, "0x%lx", (unsigned long)rv);
		return buf;
	}
}

/* ---- files ---------------------------------------------------------------- */

static void
path_join(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);

	ck_assert_msg(n > 0 && n < PATH_MAX, "path too long: %s/%s", dir, name);
}

static char *
read_text(const char *path, size_t *len_out)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0, cap = 0;

	if (f == NULL) {
		ck_assert_msg(errno == ENOENT, "cannot read %s: %s", path, strerror(errno));
		text = calloc(1, 1);
		ck_assert_ptr_nonnull(text);
		*len_out = 0;
		return text;
	}
	for (;;) {
		if (cap - len < 4096) {
			cap = cap * 2 + 8192;
			text = realloc(text, cap);
			ck_assert_ptr_nonnull(text);
		}
		size_t n = fread(text + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	ck_assert_msg(!ferror(f), "reading %s failed", path);
	fclose(f);
	text[len] = '\0';
	*len_out = len;
	return text;
}

static void
read_pin(const char *dir, const char *name, char out[65])
{
	char path[PATH_MAX];
	size_t len;
	char *text;

	path_join(path, dir, name);
	text = read_text(path, &len);
	ck_assert_msg(len >= 64, "%s does not hold a SHA-256", path);
	memcpy(out, text, 64);
	out[64] = '\0';
	free(text);
}

/* Runs argv with stdout and stderr to log; asserts exit status 0. */
static void
run(const char *log, char *const argv[])
{
	pid_t pid = fork();
	int status;

	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s failed: see %s", argv[0], log);
}

static void
mkdirs(const char *path)
{
	char tmp[PATH_MAX];

	ck_assert_msg(strlen(path) < sizeof tmp, "path too long");
	strcpy(tmp, path);
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		ck_assert_msg(mkdir(tmp, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	ck_assert_msg(mkdir(tmp, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", tmp, strerror(errno));
}

static const char *
env_or_fail(const char *name)
{
	const char *value = getenv(name);

	ck_assert_msg(value != NULL && value[0] != '\0', "%s is not set: run with 'meson test --suite enforce'", name);
	return value;
}

void
world_new(struct world *w, const char *program, const char *test)
{
	char log[PATH_MAX], conf[PATH_MAX], cmd[PATH_MAX];
	char *rm[] = { "/bin/rm", "-rf", w->dir, NULL };
	char *argv[3];
	int fd;

	memset(w, 0, sizeof *w);
	snprintf(cmd, sizeof cmd, "%s/%s", env_or_fail("P11GATE_TEST_WORK"), program);
	path_join(w->dir, cmd, test);
	run("/dev/null", rm);
	mkdirs(w->dir);
	path_join(w->token, w->dir, "token");
	path_join(w->policy, w->dir, "policy.yaml");
	path_join(w->audit, w->dir, "audit.jsonl");
	path_join(w->err, w->dir, "stderr");
	path_join(log, w->dir, "mktoken.log");

	snprintf(cmd, sizeof cmd, "%s", env_or_fail("P11GATE_MKTOKEN"));
	argv[0] = cmd;
	argv[1] = w->token;
	argv[2] = NULL;
	run(log, argv);
	read_pin(w->token, "rsa-pub.sha256", w->rsa_pin);
	read_pin(w->token, "ec-pub.sha256", w->ec_pin);

	path_join(conf, w->token, "softhsm2.conf");
	ck_assert_int_eq(setenv("SOFTHSM2_CONF", conf, 1), 0);
	ck_assert_int_eq(setenv("P11GATE_CONFIG", w->policy, 1), 0);

	/* p11gate's refusals go to stderr: keep them to read back. */
	fd = open(w->err, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	ck_assert_msg(fd >= 0, "open %s: %s", w->err, strerror(errno));
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

void
world_new_mock(struct world *w, const char *program, const char *test)
{
	char cmd[PATH_MAX];
	char *rm[] = { "/bin/rm", "-rf", w->dir, NULL };
	int fd;

	memset(w, 0, sizeof *w);
	w->mock = true;
	snprintf(cmd, sizeof cmd, "%s/%s", env_or_fail("P11GATE_TEST_WORK"), program);
	path_join(w->dir, cmd, test);
	run("/dev/null", rm);
	mkdirs(w->dir);
	path_join(w->policy, w->dir, "policy.yaml");
	path_join(w->audit, w->dir, "audit.jsonl");
	path_join(w->err, w->dir, "stderr");
	ck_assert_int_eq(setenv("P11GATE_CONFIG", w->policy, 1), 0);

	fd = open(w->err, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	ck_assert_msg(fd >= 0, "open %s: %s", w->err, strerror(errno));
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

const struct mock_p11_control *
world_mock(const struct world *w)
{
	const char *path = env_or_fail("P11GATE_MOCK_MODULE");
	const struct mock_p11_control *control;
	void *dl;

	ck_assert_msg(w->mock && w->dl != NULL, "world_mock: open a world_new_mock world first");
	/* The instance p11gate loaded: RTLD_NOLOAD never loads a second one. */
	dl = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	ck_assert_msg(dl != NULL, "the mock %s is not loaded: %s", path, dlerror());
	control = dlsym(dl, MOCK_P11_CONTROL_SYMBOL);
	ck_assert_ptr_nonnull(control);
	dlclose(dl);          /* p11gate's reference keeps it loaded */
	return control;
}

CK_SESSION_HANDLE
world_mock_start(struct world *w, const char *program, const char *test, const char *rules)
{
	world_new_mock(w, program, test);
	world_policy(w, rules);
	world_open(w);
	world_mock(w)->reset();
	return world_session(w);
}

bool
world_audit_find_data_since(const struct world *w, size_t mark, const void *data, size_t len,
                            const char *needle, char *out, size_t out_len)
{
	unsigned char md[32];
	char field[96];
	unsigned int n = 0;
	int at;

	ck_assert(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) == 1 && n == 32);
	at = snprintf(field, sizeof field, "\"data_sha256\":\"");
	for (size_t i = 0; i < 32; i++)
		at += snprintf(field + at, sizeof field - (size_t)at, "%02x", md[i]);
	snprintf(field + at, sizeof field - (size_t)at, "\"");
	return world_audit_find_since(w, mark, out, out_len, field, needle, NULL);
}

struct mock_function_list_3_0 *
world_interface_3_0(const struct world *w)
{
	CK_RV (*get_interface)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS);
	CK_INTERFACE_PTR iface = NULL;

	get_interface = (CK_RV (*)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS))
		dlsym(w->dl, "C_GetInterface");
	ck_assert_ptr_nonnull(get_interface);
	ck_assert_rv(get_interface((CK_UTF8CHAR_PTR)"PKCS 11", NULL, &iface, 0), CKR_OK);
	ck_assert_ptr_nonnull(iface);
	return iface->pFunctionList;
}

void
world_expect_allow_data(const struct world *w, size_t mark, const char *function, const char *operation,
                        const void *data, size_t len)
{
	char line[8192], op[64];

	snprintf(op, sizeof op, "\"operation\":\"%s\"", operation);
	world_expect_one_allow(w, mark, function);
	ck_assert_msg(world_audit_find_data_since(w, mark, data, len, "\"decision\":\"allow\"", line, sizeof line),
	              "the allow record for %s does not name the data's SHA-256", function);
	ck_assert_msg(strstr(line, op) != NULL, "the allow record is not for %s: %s", operation, line);
}

void
world_mock_signature(const char *label, const void *data, size_t len, unsigned char out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = 0;

	ck_assert_ptr_nonnull(md);
	ck_assert(EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1);
	ck_assert(EVP_DigestUpdate(md, label, strlen(label) + 1) == 1);   /* with its NUL */
	ck_assert(len == 0 || EVP_DigestUpdate(md, data, len) == 1);
	ck_assert(EVP_DigestFinal_ex(md, out, &n) == 1 && n == 32);
	EVP_MD_CTX_free(md);
}

void
world_policy_text(const struct world *w, const char *text)
{
	char tmp[PATH_MAX + 16];
	FILE *f;

	snprintf(tmp, sizeof tmp, "%s.new", w->policy);
	f = fopen(tmp, "w");
	ck_assert_msg(f != NULL, "cannot write %s: %s", tmp, strerror(errno));
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fflush(f), 0);
	ck_assert_int_eq(fsync(fileno(f)), 0);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_msg(rename(tmp, w->policy) == 0, "rename %s: %s", tmp, strerror(errno));
}

char *
world_policy_render(const struct world *w, const char *rules)
{
	char *text = NULL;
	int n;

	if (w->mock) {
		n = asprintf(&text,
		             "version: 1\n"
		             "module: %s\n"
		             "audit:\n"
		             "  file: %s\n"
		             "keys:\n"
		             "  signer:\n"
		             "    uri: \"pkcs11:token=mock;object=mock-sign;type=private\"\n"
		             "    owner: tests\n"
		             "  secret:\n"
		             "    uri: \"pkcs11:token=mock;object=mock-secret\"\n"
		             "    owner: tests\n"
		             "rules:\n%s",
		             env_or_fail("P11GATE_MOCK_MODULE"), w->audit, rules);
		ck_assert_int_gt(n, 0);
		return text;
	}
	n = asprintf(&text,
	             "version: 1\n"
	             "module: %s\n"
	             "audit:\n"
	             "  file: %s\n"
	             "keys:\n"
	             "  release-rsa:\n"
	             "    uri: \"pkcs11:token=release;object=codesign-rsa\"\n"
	             "    public_key_sha256: \"%s\"\n"
	             "    owner: release-engineering\n"
	             "  release-ec:\n"
	             "    uri: \"pkcs11:token=release;object=codesign-ec\"\n"
	             "    public_key_sha256: \"%s\"\n"
	             "    owner: release-engineering\n"
	             "rules:\n%s",
	             env_or_fail("SOFTHSM_MODULE"), w->audit, w->rsa_pin, w->ec_pin, rules);
	ck_assert_int_gt(n, 0);
	return text;
}

void
world_policy(const struct world *w, const char *rules)
{
	char *text = world_policy_render(w, rules);

	world_policy_text(w, text);
	free(text);
}

/* ---- the module ------------------------------------------------------------ */

void
world_open(struct world *w)
{
	CK_C_GetFunctionList get_list;
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	const char *path = env_or_fail("P11GATE_MODULE");

	w->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	ck_assert_msg(w->dl != NULL, "dlopen %s: %s", path, dlerror());
	get_list = (CK_C_GetFunctionList)dlsym(w->dl, "C_GetFunctionList");
	ck_assert_ptr_nonnull(get_list);
	ck_assert_rv(get_list(&w->f), CKR_OK);
	ck_assert_rv(w->f->C_Initialize(&args), CKR_OK);
	ck_assert_rv(w->f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO info;

		ck_assert_rv(w->f->C_GetTokenInfo(slots[i], &info), CKR_OK);
		if (memcmp(info.label, w->mock ? "mock " : "release ", w->mock ? 5 : 8) == 0) {
			w->slot = slots[i];
			return;
		}
	}
	ck_abort_msg("no token labelled %s", w->mock ? "mock" : "release");
}

void
world_close(struct world *w)
{
	/* SoftHSM2 and OpenSSL can crash at exit without C_Finalize. */
	ck_assert_rv(w->f->C_Finalize(NULL), CKR_OK);
	dlclose(w->dl);
	w->dl = NULL;
	w->f = NULL;
}

CK_SESSION_HANDLE
world_session(const struct world *w)
{
	CK_SESSION_HANDLE s;
	CK_RV rv;

	ck_assert_rv(w->f->C_OpenSession(w->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
	rv = w->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, sizeof USER_PIN - 1);
	ck_assert_msg(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN, "C_Login: %s", world_rv_name(rv));
	return s;
}

static CK_ULONG
find_all(const struct world *w, CK_SESSION_HANDLE s, CK_ATTRIBUTE *templ, CK_ULONG count,
         CK_OBJECT_HANDLE *out, CK_ULONG max)
{
	CK_ULONG n = 0;

	ck_assert_rv(w->f->C_FindObjectsInit(s, templ, count), CKR_OK);
	ck_assert_rv(w->f->C_FindObjects(s, out, max, &n), CKR_OK);
	ck_assert_rv(w->f->C_FindObjectsFinal(s), CKR_OK);
	return n;
}

CK_OBJECT_HANDLE
world_find(const struct world *w, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, CK_BYTE id)
{
	CK_ATTRIBUTE templ[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_ID, &id, 1 },
	};
	CK_OBJECT_HANDLE found[4];
	CK_ULONG n = find_all(w, s, templ, 2, found, 4);

	ck_assert_msg(n == 1, "%lu objects of class %lu with id %02x (expected 1)", (unsigned long)n,
	              (unsigned long)cls, id);
	return found[0];
}

CK_ULONG
world_count_label(const struct world *w, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label)
{
	CK_ATTRIBUTE templ[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_LABEL, (void *)label, strlen(label) },
	};
	CK_OBJECT_HANDLE found[16];

	return find_all(w, s, templ, 2, found, 16);
}

CK_ULONG
world_count_class(const struct world *w, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls)
{
	CK_ATTRIBUTE templ[] = { { CKA_CLASS, &cls, sizeof cls } };
	CK_OBJECT_HANDLE found[64];

	return find_all(w, s, templ, 1, found, 64);
}

/* ---- the audit log ----------------------------------------------------------- */

size_t
world_audit_lines(const struct world *w)
{
	size_t len, n = 0;
	char *text = read_text(w->audit, &len);

	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	free(text);
	return n;
}

static bool
has_all(const char *line, va_list ap)
{
	const char *needle;
	va_list aq;
	bool all = true;

	va_copy(aq, ap);
	while ((needle = va_arg(aq, const char *)) != NULL) {
		if (strstr(line, needle) == NULL)
			all = false;
	}
	va_end(aq);
	return all;
}

/* Walks the records after mark; stops at the first match when out is set. */
static size_t
scan_since(const struct world *w, size_t mark, char *out, size_t out_len, va_list ap)
{
	size_t len, n = 0, line_no = 0;
	char *text = read_text(w->audit, &len);
	char *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (++line_no <= mark || !has_all(line, ap))
			continue;
		n++;
		if (out != NULL) {
			snprintf(out, out_len, "%s", line);
			break;
		}
	}
	free(text);
	return n;
}

size_t
world_audit_count_since(const struct world *w, size_t mark, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, mark);
	n = scan_since(w, mark, NULL, 0, ap);
	va_end(ap);
	return n;
}

bool
world_audit_find_since(const struct world *w, size_t mark, char *out, size_t out_len, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, out_len);
	n = scan_since(w, mark, out, out_len, ap);
	va_end(ap);
	return n > 0;
}

uint64_t
world_json_u64(const char *line, const char *field)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof key, "\"%s\":", field);
	p = strstr(line, key);
	return p == NULL ? 0 : strtoull(p + strlen(key), NULL, 10);
}

void
world_audit_verify(const struct world *w)
{
	char log[PATH_MAX], cli[PATH_MAX], audit[PATH_MAX];
	char *argv[] = { cli, "audit", "verify", audit, NULL };

	snprintf(cli, sizeof cli, "%s", env_or_fail("P11GATE_CLI"));
	snprintf(audit, sizeof audit, "%s", w->audit);
	path_join(log, w->dir, "verify.log");
	run(log, argv);
}

void
world_expect_one_deny(const struct world *w, size_t mark, const char *function, const char *operation)
{
	char fn[128], op[64];
	size_t n;

	snprintf(fn, sizeof fn, "\"function\":\"%s\"", function);
	snprintf(op, sizeof op, "\"operation\":\"%s\"", operation);
	n = world_audit_count_since(w, mark, "\"decision\":\"deny\"", NULL);
	ck_assert_msg(n == 1, "%zu deny records after %s (expected 1)", n, function);
	n = world_audit_count_since(w, mark, "\"decision\":\"deny\"", fn, op, NULL);
	ck_assert_msg(n == 1, "the deny record is not for %s, operation %s", function, operation);
	n = world_audit_count_since(w, mark, "\"decision\":\"allow\"", NULL);
	ck_assert_msg(n == 0, "%zu allow records after a refused %s", n, function);
	n = world_audit_count_since(w, mark, "\"event\":\"result\"", NULL);
	ck_assert_msg(n == 0, "%zu result records after a refused %s", n, function);
}

void
world_expect_one_allow(const struct world *w, size_t mark, const char *function)
{
	char fn[128], line[8192], ref[64];
	size_t n;

	snprintf(fn, sizeof fn, "\"function\":\"%s\"", function);
	n = world_audit_count_since(w, mark, "\"decision\":\"allow\"", NULL);
	ck_assert_msg(n == 1, "%zu allow records for one %s (expected 1)", n, function);
	ck_assert_msg(world_audit_find_since(w, mark, line, sizeof line, "\"decision\":\"allow\"", fn, NULL),
	              "the allow record is not %s's", function);
	ck_assert_msg(world_audit_count_since(w, mark, "\"decision\":\"deny\"", NULL) == 0, "a deny record");
	snprintf(ref, sizeof ref, "\"ref\":%llu,", (unsigned long long)world_json_u64(line, "seq"));
	n = world_audit_count_since(w, mark, "\"event\":\"result\"", NULL);
	ck_assert_msg(n == 1, "%zu result records (expected 1)", n);
	n = world_audit_count_since(w, mark, "\"event\":\"result\"", ref, "\"rv\":\"CKR_OK\"", NULL);
	ck_assert_msg(n == 1, "no CKR_OK result record with %s", ref);
}

bool
world_stderr_has(const struct world *w, const char *text)
{
	size_t len;
	char *all = read_text(w->err, &len);
	bool found = strstr(all, text) != NULL;

	free(all);
	return found;
}

/* ---- signatures ------------------------------------------------------------------ */

bool
world_verify(const struct world *w, const char *kind, const void *data, size_t data_len,
             const unsigned char *sig, size_t sig_len)
{
	char path[PATH_MAX], name[32];
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *ecdsa = NULL;
	unsigned char *der = NULL;
	const unsigned char *check = sig;
	size_t check_len = sig_len;
	bool ok = false;
	FILE *f;

	snprintf(name, sizeof name, "%s-pub.pem", kind);
	path_join(path, w->token, name);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (pkey == NULL)
		goto out;
	if (strcmp(kind, "ec") == 0) {
		/* The token returns r||s; OpenSSL verifies DER. */
		BIGNUM *r, *s;
		int n;

		if (sig_len != 64)
			goto out;
		r = BN_bin2bn(sig, 32, NULL);
		s = BN_bin2bn(sig + 32, 32, NULL);
		ecdsa = ECDSA_SIG_new();
		if (ecdsa == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(ecdsa, r, s) != 1) {
			BN_free(r);
			BN_free(s);
			goto out;
		}
		n = i2d_ECDSA_SIG(ecdsa, &der);
		if (n <= 0)
			goto out;
		check = der;
		check_len = (size_t)n;
	}
	md = EVP_MD_CTX_new();
	ok = md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
	     EVP_DigestVerify(md, check, check_len, data, data_len) == 1;
out:
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ECDSA_SIG_free(ecdsa);
	EVP_PKEY_free(pkey);
	return ok;
}

int
world_run_suite(Suite *suite)
{
	SRunner *runner = srunner_create(suite);
	int failed;

	srunner_set_fork_status(runner, CK_FORK);
	srunner_run_all(runner, CK_VERBOSE);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
