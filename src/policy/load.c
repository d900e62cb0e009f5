/* SPDX-License-Identifier: Apache-2.0
 *
 * Loading a policy: reads the file, hashes the exact bytes, parses the
 * YAML and compiles the top level (version, module, audit, identity,
 * server_socket, caller_messages) before handing keys:, approvers:, grants:
 * and rules: to their compilers.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A policy is a few kilobytes; this only stops a wrong path from eating memory. */
#define PG_POLICY_MAX_BYTES (16u << 20)

static const char *const top_fields[] = {
	"version", "module", "audit", "caller_messages", "identity", "server_socket",
	"key_names_max_age_ms", "alerts", "login", "key_minimum", "keys", "approvers", "grants", "rules", NULL
};
static const char *const audit_fields[] = {
	"file", "sync", "syslog", "max_size", "checkpoint_key", "checkpoint_every", NULL
};

/* key_names_max_age_ms: a whole number of milliseconds, at most a minute
 * (a longer staleness would be a policy hole, not a tuning). */
static void
compile_max_age(struct pg_diag *diag, const struct pg_ynode *node, unsigned long *out)
{
	unsigned long value = 0;
	char *end = NULL;

	if (node->kind == PG_Y_SCALAR && node->plain && node->value[0] >= '0' && node->value[0] <= '9') {
		errno = 0;
		value = strtoul(node->value, &end, 10);
		if (*end == '\0' && errno == 0 && value <= PG_KEY_NAMES_MAX_AGE_LIMIT_MS) {
			*out = value;
			return;
		}
	}
	pg_diag_error_at(diag, node, "key_names_max_age_ms must be a whole number of milliseconds "
	                 "from 0 to %u (0: read a key's names at every use), not %s%s%s",
	                 PG_KEY_NAMES_MAX_AGE_LIMIT_MS, node->kind == PG_Y_SCALAR ? "'" : "",
	                 node->kind == PG_Y_SCALAR ? node->value : pg_ynode_describe(node),
	                 node->kind == PG_Y_SCALAR ? "'" : "");
}

/* A whole number, optionally with a binary suffix (K, M, G: 1024, 1024^2,
 * 1024^3), from min to max; false if it is not one. */
static bool
scaled_number(const struct pg_ynode *node, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long value;
	uint64_t scale = 1;
	char *end = NULL;

	if (node->kind != PG_Y_SCALAR || !node->plain || node->value[0] < '0' || node->value[0] > '9')
		return false;
	errno = 0;
	value = strtoull(node->value, &end, 10);
	if (errno != 0)
		return false;
	if (*end == 'K' || *end == 'M' || *end == 'G') {
		scale = *end == 'K' ? 1024 : *end == 'M' ? 1024 * 1024 : 1024 * 1024 * 1024;
		end++;
	}
	if (*end != '\0' || value > max / scale || value * scale < min)
		return false;
	*out = value * scale;
	return true;
}

/* max_size, checkpoint_key, checkpoint_every (docs/policy.md). */
static bool
compile_rotation(struct pg_load *load, const struct pg_ynode *audit)
{
	struct pg_settings *settings = &load->policy->settings;
	struct pg_diag *diag = load->diag;
	const struct pg_ynode *node, *every;
	const char *text;

	if ((node = pg_ymap_get(audit, "max_size")) != NULL &&
	    !scaled_number(node, PG_AUDIT_MAX_SIZE_MIN, UINT64_MAX / 2, &settings->audit_max_size))
		pg_diag_error_at(diag, node, "audit.max_size must be a size in bytes of at least %u "
		                 "(64K), with an optional K, M or G (e.g. 100M), not %s",
		                 PG_AUDIT_MAX_SIZE_MIN, node->kind == PG_Y_SCALAR ? node->value :
		                 pg_ynode_describe(node));
	node = pg_ymap_get(audit, "checkpoint_key");
	if (node != NULL && (text = pg_yget_string(diag, node, "audit.checkpoint_key")) != NULL) {
		if (text[0] != '/')
			pg_diag_error_at(diag, node, "audit.checkpoint_key must be an absolute path "
			                 "(e.g. /etc/p11gate/checkpoint.key), not '%s'", text);
		else if ((settings->audit_checkpoint_key = pg_arena_strdup(&load->policy->arena,
		                                                           text)) == NULL)
			return false;
	}
	every = pg_ymap_get(audit, "checkpoint_every");
	if (every == NULL)
		return true;
	if (!scaled_number(every, 1, 1000000000, &settings->audit_checkpoint_every))
		pg_diag_error_at(diag, every, "audit.checkpoint_every must be a number of records "
		                 "from 1 to 1000000000, not %s", every->kind == PG_Y_SCALAR ?
		                 every->value : pg_ynode_describe(every));
	else if (node == NULL)
		pg_diag_error_at(diag, every, "audit.checkpoint_every needs audit.checkpoint_key: the "
		                 "key file checkpoints are signed with");
	else if (settings->identity != PG_IDENTITY_PEER)
		pg_diag_warning_at(diag, every, "audit.checkpoint_every is only used with identity: "
		                   "peer: in-process, the signer could read the key and forge "
		                   "checkpoints, so only 'p11gate audit rotate' and 'p11gate audit "
		                   "checkpoint', run by the key's owner, sign them");
	return true;
}

static bool
compile_audit(struct pg_load *load, const struct pg_ynode *audit)
{
	struct pg_settings *settings = &load->policy->settings;
	struct pg_diag *diag = load->diag;
	const struct pg_ynode *node;
	const char *text;

	if (!pg_yexpect(diag, audit, PG_Y_MAP, "audit"))
		return true;
	pg_ymap_check_keys(diag, audit, audit_fields, "audit");
	node = pg_ymap_get(audit, "file");
	if (node != NULL && (text = pg_yget_string(diag, node, "audit.file")) != NULL) {
		if (text[0] != '/')
			pg_diag_error_at(diag, node, "audit.file must be an absolute path "
			                 "(e.g. /var/log/p11gate/audit.jsonl), not '%s'", text);
		else if ((settings->audit_file = pg_arena_strdup(&load->policy->arena, text)) == NULL)
			return false;
	}
	if ((node = pg_ymap_get(audit, "sync")) != NULL)
		pg_yget_bool(diag, node, "audit.sync", &settings->audit_sync);
	if ((node = pg_ymap_get(audit, "syslog")) != NULL)
		pg_yget_bool(diag, node, "audit.syslog", &settings->audit_syslog);
	return compile_rotation(load, audit);
}

/* identity: peer trusts a connection only when it comes through this
 * socket, so peer mode without it could never judge anything. */
static bool
compile_server_socket(struct pg_load *load, const struct pg_ynode *root)
{
	struct pg_settings *settings = &load->policy->settings;
	const struct pg_ynode *node = pg_ymap_get(root, "server_socket");
	const struct pg_ynode *identity = pg_ymap_get(root, "identity");
	const char *text;

	if (node == NULL) {
		if (settings->identity == PG_IDENTITY_PEER && identity != NULL)
			pg_diag_error_at(load->diag, identity, "identity: peer needs server_socket: the "
			                 "path of the p11-kit server's socket (as given to p11-kit server "
			                 "-n), e.g. server_socket: /run/p11gate/p11-kit.sock");
		return true;
	}
	if ((text = pg_yget_string(load->diag, node, "server_socket")) == NULL)
		return true;
	if (text[0] != '/') {
		pg_diag_error_at(load->diag, node, "server_socket must be an absolute path "
		                 "(e.g. /run/p11gate/p11-kit.sock), not '%s'", text);
		return true;
	}
	if (strlen(text) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
		pg_diag_error_at(load->diag, node, "server_socket '%s' is longer than a unix socket "
		                 "path can be (%zu bytes); use a shorter path", text,
		                 sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
		return true;
	}
	if (settings->identity != PG_IDENTITY_PEER)
		pg_diag_warning_at(load->diag, node, "server_socket is only used with identity: peer");
	settings->server_socket = pg_arena_strdup(&load->policy->arena, text);
	return settings->server_socket != NULL;
}

static bool
compile_settings(struct pg_load *load, const struct pg_ynode *root)
{
	struct pg_settings *settings = &load->policy->settings;
	struct pg_diag *diag = load->diag;
	const struct pg_ynode *node;
	const char *text;

	node = pg_ymap_get(root, "version");
	if (node == NULL)
		pg_diag_error_at(diag, root, "no version; start the policy with 'version: 1'");
	else if (node->kind != PG_Y_SCALAR || strcmp(node->value, "1") != 0)
		pg_diag_error_at(diag, node, "version must be 1 (the only policy version this p11gate "
		                 "reads), not %s%s%s", node->kind == PG_Y_SCALAR ? "'" : "",
		                 node->kind == PG_Y_SCALAR ? node->value : pg_ynode_describe(node),
		                 node->kind == PG_Y_SCALAR ? "'" : "");

	node = pg_ymap_get(root, "module");
	if (node == NULL) {
		pg_diag_error_at(diag, root, "no module; add 'module: /path/to/real-module.so' "
		                 "(e.g. /usr/lib/softhsm/libsofthsm2.so)");
	} else if ((text = pg_yget_string(diag, node, "module")) != NULL) {
		settings->module_line = node->line;
		settings->module_column = node->column;
		if (text[0] != '/') {
			pg_diag_error_at(diag, node, "module must be an absolute path "
			                 "(e.g. /usr/lib/softhsm/libsofthsm2.so), not '%s'", text);
		} else {
			settings->module = pg_arena_strdup(&load->policy->arena, text);
			if (settings->module == NULL)
				return false;
			/* Checked here only as a warning: a policy may be checked on
			 * a machine other than the one that runs it. */
			if (access(text, F_OK) != 0)
				pg_diag_warning_at(diag, node, "module '%s' does not exist on this machine (%s)",
				                   text, strerror(errno));
		}
	}

	if ((node = pg_ymap_get(root, "caller_messages")) != NULL)
		pg_yget_bool(diag, node, "caller_messages", &settings->caller_messages);
	if ((node = pg_ymap_get(root, "key_names_max_age_ms")) != NULL)
		compile_max_age(diag, node, &settings->key_names_max_age_ms);
	node = pg_ymap_get(root, "identity");
	if (node != NULL && (text = pg_yget_string(diag, node, "identity")) != NULL) {
		if (strcmp(text, "process") == 0)
			settings->identity = PG_IDENTITY_PROCESS;
		else if (strcmp(text, "peer") == 0)
			settings->identity = PG_IDENTITY_PEER;
		else
			pg_diag_error_at(diag, node, "identity must be process (p11gate loaded into the "
			                 "signing program) or peer (behind p11-kit server), not '%s'", text);
	}
	/* After identity: what the audit keys mean depends on it. */
	if ((node = pg_ymap_get(root, "audit")) != NULL && !compile_audit(load, node))
		return false;
	return compile_server_socket(load, root);
}

/* keys: and rules: may be left out or left empty: the policy then denies
 * everything, which is legal but almost never meant. */
static bool
compile_sections(struct pg_load *load, const struct pg_ynode *root)
{
	const struct pg_ynode *keys = pg_ymap_get(root, "keys");
	const struct pg_ynode *rules = pg_ymap_get(root, "rules");
	const struct pg_ynode *login = pg_ymap_get(root, "login");
	bool keys_ok = true;

	/* Before rules: their identity conditions name its issuers. */
	if (login != NULL && !pg_login_compile(load, login))
		return false;

	if (keys == NULL || pg_ynode_is_null(keys)) {
		pg_diag_warning_at(load->diag, keys != NULL ? keys : root,
		                   "no keys: the policy names no key, so every use of every key is denied");
	} else if (pg_yexpect(load->diag, keys, PG_Y_MAP, "keys")) {
		if (!pg_keys_compile(load, keys))
			return false;
	} else {
		keys_ok = false;
	}
	if (!pg_approvers_compile(load, root))
		return false;
	if (!pg_alerts_compile(load, root))
		return false;
	pg_key_minimum_compile(load, root);
	if (rules == NULL || pg_ynode_is_null(rules)) {
		pg_diag_warning_at(load->diag, rules != NULL ? rules : root,
		                   "no rules: every use of every key is denied");
	} else if (pg_yexpect(load->diag, rules, PG_Y_SEQ, "rules")) {
		if (!pg_rules_compile(load, rules))
			return false;
	}
	if (!pg_login_finish(load))
		return false;
	pg_login_lint(load);
	/* Only meaningful when keys compiled; otherwise rules name keys that failed. */
	for (size_t i = 0; keys_ok && i < load->policy->n_keys; i++) {
		const struct pg_key *key = &load->policy->keys[i];
		if (!key->mentioned)
			pg_diag_warning(load->diag, key->line, key->column,
			                "key '%s' is not named by any rule, so every use of it is denied",
			                key->name);
	}
	return true;
}

static pg_policy *
policy_new(const char *path)
{
	pg_policy *policy = calloc(1, sizeof *policy);

	if (policy == NULL)
		return NULL;
	atomic_init(&policy->refs, 1);
	policy->settings.audit_sync = true;
	policy->settings.audit_syslog = false;
	policy->settings.caller_messages = true;
	policy->settings.key_names_max_age_ms = PG_KEY_NAMES_MAX_AGE_DEFAULT_MS;
	policy->settings.identity = PG_IDENTITY_PROCESS;
	policy->settings.path = pg_arena_strdup(&policy->arena, path);
	if (policy->settings.path == NULL) {
		free(policy);
		return NULL;
	}
	return policy;
}

pg_policy *
pg_policy_load_buffer(const char *path, const char *data, size_t len,
                      pg_diag_fn fn, void *ctx)
{
	struct pg_diag diag = { .file = path, .fn = fn, .ctx = ctx };
	struct pg_ynode *root = NULL;
	pg_policy *policy = NULL;
	struct pg_load load;
	bool ok = false;

	policy = policy_new(path);
	if (policy == NULL || !pg_sha256(data, len, policy->settings.sha256)) {
		pg_diag_error(&diag, 0, 0, "out of memory loading %s", path);
		goto out;
	}
	load.policy = policy;
	load.diag = &diag;
	root = pg_ytree_parse(data, len, &diag);
	if (root == NULL)
		goto out;
	if (!pg_yexpect(&diag, root, PG_Y_MAP, "the policy"))
		goto out;
	pg_ymap_check_keys(&diag, root, top_fields, "the policy");
	if (!compile_settings(&load, root) || !compile_sections(&load, root) ||
	    (diag.errors == 0 && !pg_index_build(policy))) {
		pg_diag_error(&diag, 0, 0, "out of memory loading %s", path);
		goto out;
	}
	ok = diag.errors == 0;
	if (ok && policy->settings.grants_dir != NULL &&
	    (policy->grant_cache = pg_grant_cache_new()) == NULL) {
		pg_diag_error(&diag, 0, 0, "out of memory loading %s", path);
		ok = false;
	}
out:
	pg_ytree_free(root);
	if (!ok) {
		pg_policy_unref(policy);
		policy = NULL;
	}
	return policy;
}

/* Reads to end of file rather than trusting st_size: the file may change
 * while it is read.  0, or an errno value (EFBIG when over the limit). */
static int
read_all(int fd, size_t hint, char **out, size_t *out_len)
{
	size_t cap = hint + 4096 < PG_POLICY_MAX_BYTES ? hint + 4096 : PG_POLICY_MAX_BYTES;
	char *data = malloc(cap);
	size_t len = 0;
	int err = 0;

	if (data == NULL)
		return ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *bigger;
			if (cap >= PG_POLICY_MAX_BYTES) {
				err = EFBIG;
				goto out;
			}
			cap = cap * 2 < PG_POLICY_MAX_BYTES ? cap * 2 : PG_POLICY_MAX_BYTES;
			bigger = realloc(data, cap);
			if (bigger == NULL) {
				err = ENOMEM;
				goto out;
			}
			data = bigger;
		}
		n = read(fd, data + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
out:
	if (err != 0) {
		free(data);
		return err;
	}
	*out = data;
	*out_len = len;
	return 0;
}

pg_policy *
pg_policy_load(const char *path, pg_diag_fn fn, void *ctx)
{
	struct pg_diag diag = { .file = path, .fn = fn, .ctx = ctx };
	pg_policy *policy = NULL;
	char *data = NULL;
	size_t len = 0;
	bool not_regular;
	struct stat st;
	int fd, err;

	fd = pg_open_regular(path, &not_regular);
	if (fd < 0 && not_regular) {
		pg_diag_error(&diag, 0, 0, "cannot read %s: not a regular file", path);
		goto out;
	}
	if (fd < 0 || fstat(fd, &st) != 0) {
		pg_diag_error(&diag, 0, 0, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	err = read_all(fd, st.st_size > 0 ? (size_t)st.st_size : 0, &data, &len);
	if (err == EFBIG) {
		pg_diag_error(&diag, 0, 0, "cannot read %s: larger than %u bytes; is it the policy?",
		              path, PG_POLICY_MAX_BYTES);
		goto out;
	}
	if (err != 0) {
		pg_diag_error(&diag, 0, 0, "cannot read %s: %s", path, strerror(err));
		goto out;
	}
	policy = pg_policy_load_buffer(path, data, len, fn, ctx);
out:
	if (fd >= 0)
		close(fd);
	free(data);
	return policy;
}
