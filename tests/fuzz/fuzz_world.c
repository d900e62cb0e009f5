/* SPDX-License-Identifier: Apache-2.0
 *
 * The PKCS#11 fuzzer's world (see fuzz_world.h): the fixture, the policy,
 * the module, and restoring the token between runs of inputs.
 */
#include "fuzz_world.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Set by meson (tests/fuzz/meson.build) to this build's files; the
 * environment variables of the same names as the tests use win. */
#ifndef FUZZ_P11GATE_MODULE
#define FUZZ_P11GATE_MODULE "p11gate.so"
#endif
#ifndef FUZZ_SOFTHSM_MODULE
#define FUZZ_SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif
#ifndef FUZZ_MKTOKEN
#define FUZZ_MKTOKEN "tests/fixture/mktoken"
#endif
#ifndef FUZZ_FIXTURE_CACHE
#define FUZZ_FIXTURE_CACHE ""
#endif

static const char TOKEN_LABEL[] = "release";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_pkcs11: setup: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

static const char *
env_or(const char *name, const char *fallback)
{
	const char *value = getenv(name);

	return value != NULL && value[0] != '\0' ? value : fallback;
}

static void
join(char *out, size_t out_len, const char *dir, const char *name)
{
	int n = snprintf(out, out_len, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= out_len)
		die("path too long: %s/%s", dir, name);
}

/* ---- files ---------------------------------------------------------------------- */

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static void
remove_tree(const char *path)
{
	if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
		die("cannot remove %s: %s", path, strerror(errno));
}

static void
copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (in < 0 || out < 0)
		die("cannot copy %s to %s: %s", from, to, strerror(errno));
	while ((n = read(in, buf, sizeof buf)) > 0) {
		if (write(out, buf, (size_t)n) != n)
			die("cannot write %s: %s", to, strerror(errno));
	}
	if (n < 0)
		die("cannot read %s: %s", from, strerror(errno));
	close(in);
	if (close(out) != 0)
		die("cannot write %s: %s", to, strerror(errno));
}

/* SoftHSM2's token directory: directories and regular files only. */
static void
copy_tree(const char *from, const char *to)
{
	DIR *d = opendir(from);
	struct dirent *e;

	if (d == NULL)
		die("cannot read %s: %s", from, strerror(errno));
	if (mkdir(to, 0700) != 0 && errno != EEXIST)
		die("cannot make %s: %s", to, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		char src[PATH_MAX], dst[PATH_MAX];
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		join(src, sizeof src, from, e->d_name);
		join(dst, sizeof dst, to, e->d_name);
		if (lstat(src, &st) != 0)
			die("cannot stat %s: %s", src, strerror(errno));
		if (S_ISDIR(st.st_mode))
			copy_tree(src, dst);
		else if (S_ISREG(st.st_mode))
			copy_file(src, dst);
	}
	closedir(d);
}

static size_t
count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0, suffix_len = strlen(suffix);

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char path[PATH_MAX];
		size_t len = strlen(e->d_name);

		if (e->d_name[0] == '.')
			continue;
		join(path, sizeof path, dir, e->d_name);
		if (e->d_type == DT_DIR)
			n += count_files(path, suffix);
		else if (len > suffix_len && strcmp(e->d_name + len - suffix_len, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static void
read_line(const char *path, char *out, size_t out_len)
{
	FILE *f = fopen(path, "r");

	if (f == NULL || fgets(out, (int)out_len, f) == NULL)
		die("cannot read %s: %s", path, strerror(errno));
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
}

/* ---- the fixture and the policy ------------------------------------------------------ */

static void
make_fixture(struct fuzz_world *w)
{
	const char *mktoken = env_or("P11GATE_MKTOKEN", FUZZ_MKTOKEN);
	char *argv[] = { (char *)mktoken, w->token, NULL };
	char log[PATH_MAX];
	posix_spawn_file_actions_t actions;
	pid_t pid;
	int status, rc;

	/* The template token is slow to make: share meson's cache. */
	if (getenv("P11GATE_FIXTURE_CACHE") == NULL && FUZZ_FIXTURE_CACHE[0] != '\0')
		setenv("P11GATE_FIXTURE_CACHE", FUZZ_FIXTURE_CACHE, 1);
	setenv("SOFTHSM_MODULE", env_or("SOFTHSM_MODULE", FUZZ_SOFTHSM_MODULE), 1);
	join(log, sizeof log, w->dir, "mktoken.log");
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
	rc = posix_spawn(&pid, mktoken, &actions, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	if (rc != 0)
		die("cannot run %s: %s (set P11GATE_MKTOKEN)", mktoken, strerror(rc));
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("%s %s failed: see %s", mktoken, w->token, log);
}

/* Only `sign` with release-rsa, for everyone; release-ec is named with
 * no rule.  Unpinned by default, so that only p11gate's `manage` checks
 * stand between a relabelled key and a signature; FUZZ_PKCS11_PINS=1
 * pins both keys to their public keys as well.  The other version (allow
 * false) denies that same use instead and is exactly as long, so that only
 * a reload that really reads the file tells them apart.  Written as an
 * operator deploys: a new file renamed over the old one. */
void
fuzz_world_write_policy(struct fuzz_world *w, bool allow)
{
	bool pins = strcmp(env_or("FUZZ_PKCS11_PINS", "0"), "1") == 0;
	char path[PATH_MAX], rsa_pin[128], ec_pin[128], rsa_line[160] = "", ec_line[160] = "";
	char tmp[PATH_MAX + 8];
	FILE *f;

	if (pins) {
		join(path, sizeof path, w->token, "rsa-pub.sha256");
		read_line(path, rsa_pin, sizeof rsa_pin);
		join(path, sizeof path, w->token, "ec-pub.sha256");
		read_line(path, ec_pin, sizeof ec_pin);
		snprintf(rsa_line, sizeof rsa_line, "    public_key_sha256: \"%s\"\n", rsa_pin);
		snprintf(ec_line, sizeof ec_line, "    public_key_sha256: \"%s\"\n", ec_pin);
	}
	snprintf(tmp, sizeof tmp, "%s.new", w->policy);
	f = fopen(tmp, "w");
	if (f == NULL)
		die("cannot write %s: %s", tmp, strerror(errno));
	fprintf(f,
	        "# The PKCS#11 fuzzer's policy (tests/fuzz/fuzz_world.c).\n"
	        "version: 1\n"
	        "module: %s\n"
	        "caller_messages: false\n"
	        "audit:\n"
	        "  file: %s\n"
	        "  sync: false\n"
	        "keys:\n"
	        "  release-rsa:\n"
	        "    uri: \"pkcs11:token=%s;object=codesign-rsa\"\n"
	        "%s"
	        "  release-ec:\n"
	        "    uri: \"pkcs11:token=%s;object=codesign-ec\"\n"
	        "%s"
	        "rules:\n"
	        "  - name: release-rsa-signs\n"
	        "    effect: %s\n"
	        "    keys: [release-rsa]\n"
	        "    operations: [sign]\n",
	        env_or("SOFTHSM_MODULE", FUZZ_SOFTHSM_MODULE), w->audit, TOKEN_LABEL, rsa_line,
	        TOKEN_LABEL, ec_line, allow ? "allow" : "deny ");
	if (fclose(f) != 0 || rename(tmp, w->policy) != 0)
		die("cannot write %s: %s", w->policy, strerror(errno));
	w->policy_allows = allow;
}

void
fuzz_world_setup(struct fuzz_world *w)
{
	const char *tmp = env_or("TMPDIR", "/tmp");
	const char *module = env_or("P11GATE_MODULE", FUZZ_P11GATE_MODULE);
	const char *work = getenv("FUZZ_PKCS11_WORK");
	char path[PATH_MAX];
	CK_C_GetFunctionList get_list;

	memset(w, 0, sizeof *w);
	w->keep = getenv("FUZZ_PKCS11_KEEP") != NULL;
	if (work != NULL && work[0] != '\0') {
		snprintf(w->dir, sizeof w->dir, "%s", work);
		remove_tree(w->dir);
		if (mkdir(w->dir, 0700) != 0)
			die("cannot make %s: %s", w->dir, strerror(errno));
	} else {
		snprintf(w->dir, sizeof w->dir, "%s/fuzz_pkcs11.XXXXXX", tmp);
		if (mkdtemp(w->dir) == NULL)
			die("cannot make a work directory in %s: %s", tmp, strerror(errno));
	}
	join(w->token, sizeof w->token, w->dir, "token");
	join(w->pristine, sizeof w->pristine, w->dir, "pristine");
	join(w->policy, sizeof w->policy, w->dir, "policy.yaml");
	join(w->audit, sizeof w->audit, w->dir, "audit.jsonl");
	join(w->rsa_pub, sizeof w->rsa_pub, w->token, "rsa-pub.pem");
	snprintf(w->reserved, sizeof w->reserved, "p11gate-config=%s", w->policy);

	make_fixture(w);
	/* A log to continue instead of a new one (make-seeds uses it to have
	 * the writer recover a truncated log). */
	if (getenv("FUZZ_PKCS11_AUDIT_START") != NULL)
		copy_file(getenv("FUZZ_PKCS11_AUDIT_START"), w->audit);
	join(path, sizeof path, w->token, "tokens");
	copy_tree(path, w->pristine);
	fuzz_world_write_policy(w, true);
	join(path, sizeof path, w->token, "softhsm2.conf");
	setenv("SOFTHSM2_CONF", path, 1);
	setenv("P11GATE_CONFIG", w->policy, 1);

	/* SoftHSM2 stays loaded for the life of the process, as in a program
	 * that keeps its PKCS#11 library: p11gate unloads it at every
	 * C_Finalize, which would run its C++ constructors again on every
	 * C_Initialize, register its exit cleanup after ours, and leave what it
	 * leaks without a module name for LeakSanitizer's suppressions. */
	if (dlopen(env_or("SOFTHSM_MODULE", FUZZ_SOFTHSM_MODULE), RTLD_NOW | RTLD_LOCAL) == NULL)
		die("cannot load %s: %s (set SOFTHSM_MODULE)", env_or("SOFTHSM_MODULE", FUZZ_SOFTHSM_MODULE),
		    dlerror());
	w->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	if (w->dl == NULL)
		die("cannot load %s: %s (set P11GATE_MODULE)", module, dlerror());
	get_list = (CK_C_GetFunctionList)dlsym(w->dl, "C_GetFunctionList");
	if (get_list == NULL || get_list(&w->f) != CKR_OK || w->f == NULL)
		die("%s has no usable C_GetFunctionList", module);
}

/* ---- the module ------------------------------------------------------------------------- */

static void
find_slots(struct fuzz_world *w)
{
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	bool found = false;

	if (w->f->C_GetSlotList(CK_FALSE, slots, &n) != CKR_OK)
		die("C_GetSlotList failed");
	w->empty_slot = (CK_SLOT_ID)-1;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO info;

		if (w->f->C_GetTokenInfo(slots[i], &info) != CKR_OK)
			continue;
		if (!(info.flags & CKF_TOKEN_INITIALIZED))
			w->empty_slot = slots[i];
		else if (memcmp(info.label, TOKEN_LABEL, sizeof TOKEN_LABEL - 1) == 0 &&
		         info.label[sizeof TOKEN_LABEL - 1] == ' ') {
			w->slot = slots[i];
			found = true;
		}
	}
	if (!found)
		die("no token labelled %s in %s", TOKEN_LABEL, w->token);
}

/* Whether p11gate is initialised, asked of p11gate itself: a failed
 * C_Finalize may still have finalised it (it drops its state whatever the
 * wrapped module answers). */
static bool
module_initialized(const struct fuzz_world *w)
{
	CK_INFO info;

	return w->f->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED;
}

CK_RV
fuzz_world_initialize(struct fuzz_world *w, CK_C_INITIALIZE_ARGS_PTR args)
{
	CK_RV rv = w->f->C_Initialize(args);

	w->initialized = module_initialized(w);
	if (rv == CKR_OK)
		find_slots(w);
	return rv;
}

CK_RV
fuzz_world_finalize(struct fuzz_world *w)
{
	CK_RV rv = w->f->C_Finalize(NULL);

	w->initialized = module_initialized(w);
	return rv;
}

void
fuzz_world_ensure(struct fuzz_world *w)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_RV rv;

	if (w->initialized)
		return;
	rv = fuzz_world_initialize(w, &args);
	if (rv != CKR_OK)
		die("C_Initialize failed: 0x%lx (policy %s)", (unsigned long)rv, w->policy);
}

size_t
fuzz_world_token_objects(const struct fuzz_world *w)
{
	char path[PATH_MAX];

	join(path, sizeof path, w->token, "tokens");
	return count_files(path, ".object");
}

void
fuzz_world_restore(struct fuzz_world *w)
{
	char path[PATH_MAX];

	if (w->initialized && fuzz_world_finalize(w) != CKR_OK)
		die("C_Finalize failed before restoring the token");
	join(path, sizeof path, w->token, "tokens");
	remove_tree(path);
	copy_tree(w->pristine, path);
	if (unlink(w->audit) != 0 && errno != ENOENT)
		die("cannot remove %s: %s", w->audit, strerror(errno));
	if (!w->policy_allows)
		fuzz_world_write_policy(w, true);
	fuzz_world_ensure(w);
}

void
fuzz_world_teardown(struct fuzz_world *w)
{
	/* SoftHSM2 and OpenSSL can crash at exit without C_Finalize. */
	if (w->initialized)
		fuzz_world_finalize(w);
	if (w->dl != NULL)
		dlclose(w->dl);
	w->dl = NULL;
	w->f = NULL;
	if (!w->keep && w->dir[0] != '\0')
		remove_tree(w->dir);
}
