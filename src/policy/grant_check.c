/* SPDX-License-Identifier: Apache-2.0
 *
 * The approval: condition: finds the caller's grant for the key in
 * grants.dir, checks its window, revocation, data and approval signatures,
 * and says what is missing.  Owns the grant cache, the one mutable part of
 * a compiled policy (under its own lock): what each grant file parsed to
 * and what each signature beside it verified to, keyed on the files'
 * identity (device, inode, size, modification and change times) and the
 * grant's SHA-256.  Also `p11gate grant show`'s view of one grant.
 *
 * What is looked at per decision: the directory's identity, and the
 * identity of the grants that can apply and of their signatures.  A memo
 * is trusted without reading the file only once the file is settled: its
 * change time at least PG_GRANT_SETTLE_S older than the clock when the memo
 * was taken, so any later write (which sets the change time to the clock)
 * changes its identity.  A file changed more recently is read and hashed
 * again at every decision; an edit after approval is seen at once either
 * way.  Grants that do not apply to the request, and settled signatures,
 * are looked at again when the directory changes and at least every
 * PG_GRANT_RECHECK_S: an in-place edit that makes a grant apply (it then
 * needs new signatures) or overwrites a signature file in place may wait
 * that long; an edit of the grant that applies, and a grant or signature
 * file removed, are seen at once.  A provisional judgement (a signature's
 * init: the call that makes it is judged again) answers from the memos
 * without looking at any file, once the directory has been read.
 */
#include "grant.h"
#include "internal.h"
#include "p11gate/grants.h"
#include "p11gate/login.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A file or directory changed this recently may change again within the
 * same timestamp tick: it is read again rather than trusted. */
#define PG_GRANT_SETTLE_S 2
/* How often grants that did not apply are looked at again. */
#define PG_GRANT_RECHECK_S 1

struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct sig_memo {
	char *file;                    /* base name, "rel-4.2.0.yaml.alice.sig" */
	bool known;
	struct file_id id;
	time_t taken;                  /* when id was read */
	unsigned char over[32];        /* SHA-256 of the grant bytes it was checked over */
	int approver;                  /* index, -1: the key is no approver's */
	bool verified;
	char fingerprint[64];
	char why[240];
	struct pg_sshsig_sk sk;
};

struct grant_memo {
	char *file;                    /* base name, "rel-4.2.0.yaml" */
	bool known;
	struct file_id id;
	time_t taken;                  /* when id was read */
	char *bytes;                   /* the file's bytes, which the signatures are checked over */
	size_t len;
	struct pg_grant *grant;        /* NULL: it did not parse */
	struct sig_memo *sigs;
	size_t n_sigs;
};

struct pg_grant_cache {
	pthread_mutex_t lock;
	bool listed;
	struct file_id dir_id;
	time_t dir_taken;
	time_t rechecked;              /* when every grant was last looked at */
	struct grant_memo *grants;
	size_t n_grants;
};

/* ---- files -------------------------------------------------------------- */

static void
file_id_of(const struct stat *st, struct file_id *id)
{
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
	id->ctime = st->st_ctim;
}

/* Changed long enough before taken that a later write would show. */
static bool
settled(const struct file_id *id, time_t taken)
{
	return taken - id->ctime.tv_sec > PG_GRANT_SETTLE_S && taken - id->mtime.tv_sec > PG_GRANT_SETTLE_S;
}

static bool
file_id_eq(const struct file_id *a, const struct file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* A file's bytes (at most max), *out malloc'd and NUL-terminated; its
 * identity from the descriptor read.  0 or an errno value. */
static int
read_file(const char *dir, const char *file, size_t max, char **out, size_t *len,
          struct file_id *id)
{
	char path[4096];
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	int fd, err = 0;

	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
		return ENAMETOOLONG;
	/* O_NONBLOCK: a FIFO planted under the name must not block the signer. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) < 0)
		return errno;
	if (fstat(fd, &st) != 0) {
		err = errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = EINVAL;
		goto out;
	}
	if ((buf = malloc(max + 2)) == NULL) {
		err = ENOMEM;
		goto out;
	}
	while (n <= max) {
		ssize_t got = read(fd, buf + n, max + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			err = errno;
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		/* A regular file's read is short only at its end. */
		if (n >= (size_t)st.st_size)
			break;
	}
	if (n > max) {
		err = EFBIG;
		goto out;
	}
	buf[n] = '\0';
	file_id_of(&st, id);
	*out = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

/* ---- the cache ---------------------------------------------------------- */

struct pg_grant_cache *
pg_grant_cache_new(void)
{
	struct pg_grant_cache *cache = calloc(1, sizeof *cache);

	if (cache != NULL && pthread_mutex_init(&cache->lock, NULL) != 0) {
		free(cache);
		cache = NULL;
	}
	return cache;
}

static void
grant_memo_clear(struct grant_memo *memo)
{
	for (size_t i = 0; i < memo->n_sigs; i++)
		free(memo->sigs[i].file);
	free(memo->sigs);
	pg_grant_free(memo->grant);
	free(memo->bytes);
	free(memo->file);
	memset(memo, 0, sizeof *memo);
}

void
pg_grant_cache_free(struct pg_grant_cache *cache)
{
	if (cache == NULL)
		return;
	for (size_t i = 0; i < cache->n_grants; i++)
		grant_memo_clear(&cache->grants[i]);
	free(cache->grants);
	pthread_mutex_destroy(&cache->lock);
	free(cache);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The directory's entries, sorted; *names and each name malloc'd. */
static int
read_names(const char *dir, char ***names, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *entry;
	size_t cap = 0;
	int err = 0;

	*names = NULL;
	*n = 0;
	if (d == NULL)
		return errno;
	while ((errno = 0, entry = readdir(d)) != NULL) {
		if (entry->d_name[0] == '.')
			continue;
		if (*n == cap) {
			char **bigger = realloc(*names, (cap = cap * 2 + 16) * sizeof **names);
			if (bigger == NULL) {
				err = ENOMEM;
				break;
			}
			*names = bigger;
		}
		if (((*names)[*n] = strdup(entry->d_name)) == NULL) {
			err = ENOMEM;
			break;
		}
		(*n)++;
	}
	if (err == 0 && errno != 0)
		err = errno;
	closedir(d);
	if (*n > 1)
		qsort(*names, *n, sizeof **names, name_cmp);
	return err;
}

static bool
is_grant_name(const char *name)
{
	char id[PG_GRANT_ID_MAX + 1];

	return pg_grant_id_of(name, id, sizeof id);
}

/* name is grant's "GRANT.LABEL.sig" (LABEL non-empty). */
static bool
is_sig_of(const char *name, const char *grant)
{
	size_t g = strlen(grant), n = strlen(name);

	return n > g + 5 && strncmp(name, grant, g) == 0 && name[g] == '.' &&
	       strcmp(name + n - 4, ".sig") == 0;
}

/* Moves the memo for name out of old (or makes a new one). */
static bool
take_grant(struct grant_memo *old, size_t n_old, const char *name, struct grant_memo *out)
{
	for (size_t i = 0; i < n_old; i++) {
		if (old[i].file != NULL && strcmp(old[i].file, name) == 0) {
			*out = old[i];
			memset(&old[i], 0, sizeof old[i]);
			return true;
		}
	}
	memset(out, 0, sizeof *out);
	return (out->file = strdup(name)) != NULL;
}

static bool
attach_sigs(struct grant_memo *memo, char **names, size_t n)
{
	struct sig_memo *sigs;
	size_t count = 0;

	for (size_t i = 0; i < n; i++)
		count += is_sig_of(names[i], memo->file);
	if (count == 0) {
		for (size_t i = 0; i < memo->n_sigs; i++)
			free(memo->sigs[i].file);
		free(memo->sigs);
		memo->sigs = NULL;
		memo->n_sigs = 0;
		return true;
	}
	if ((sigs = calloc(count, sizeof *sigs)) == NULL)
		return false;
	count = 0;
	for (size_t i = 0; i < n; i++) {
		struct sig_memo *sig = &sigs[count];

		if (!is_sig_of(names[i], memo->file))
			continue;
		for (size_t j = 0; j < memo->n_sigs; j++) {
			if (memo->sigs[j].file != NULL && strcmp(memo->sigs[j].file, names[i]) == 0) {
				*sig = memo->sigs[j];
				memo->sigs[j].file = NULL;
			}
		}
		if (sig->file == NULL && (sig->file = strdup(names[i])) == NULL)
			sig->known = false;
		count += sig->file != NULL;
	}
	for (size_t j = 0; j < memo->n_sigs; j++)
		free(memo->sigs[j].file);
	free(memo->sigs);
	memo->sigs = sigs;
	memo->n_sigs = count;
	return true;
}

/* Reads the directory again when it changed (or changed just now). */
static int
refresh_listing(struct pg_grant_cache *cache, const char *dir, time_t now)
{
	struct grant_memo *grants = NULL;
	size_t n_names = 0, n_grants = 0;
	char **names = NULL;
	struct file_id id;
	struct stat st;
	int err;

	if (stat(dir, &st) != 0)
		return errno;
	if (!S_ISDIR(st.st_mode))
		return ENOTDIR;
	file_id_of(&st, &id);
	if (cache->listed && file_id_eq(&id, &cache->dir_id) && settled(&id, cache->dir_taken))
		return 0;
	if ((err = read_names(dir, &names, &n_names)) != 0)
		goto out;
	if ((grants = calloc(n_names + 1, sizeof *grants)) == NULL) {
		err = ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_names; i++) {
		if (!is_grant_name(names[i]))
			continue;
		if (!take_grant(cache->grants, cache->n_grants, names[i], &grants[n_grants]) ||
		    !attach_sigs(&grants[n_grants], names, n_names)) {
			grant_memo_clear(&grants[n_grants]);
			err = ENOMEM;
			goto out;
		}
		n_grants++;
	}
	for (size_t i = 0; i < cache->n_grants; i++)
		grant_memo_clear(&cache->grants[i]);
	free(cache->grants);
	cache->grants = grants;
	cache->n_grants = n_grants;
	grants = NULL;
	cache->dir_id = id;
	cache->dir_taken = now;
	cache->listed = true;
	cache->rechecked = 0;          /* a new listing: look at every grant */
out:
	for (size_t i = 0; grants != NULL && i < n_grants; i++)
		grant_memo_clear(&grants[i]);
	free(grants);
	for (size_t i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	return err;
}

/* ---- one grant and its signatures -------------------------------------- */

static void
ignore_diag(void *ctx, enum pg_severity severity, const char *file, unsigned long line,
            unsigned long column, const char *message)
{
	(void)ctx;
	(void)severity;
	(void)file;
	(void)line;
	(void)column;
	(void)message;
}

/* Takes the file's bytes into the memo, parsing them unless they are the
 * bytes already parsed (NULL grant if they do not parse). */
static void
grant_take(const pg_policy *policy, const char *dir, struct grant_memo *memo, char *bytes,
           size_t len, const struct file_id *id, time_t real)
{
	unsigned char sha256[32];
	char path[4096];

	memo->id = *id;
	memo->taken = real;
	memo->known = true;
	if (memo->bytes != NULL && memo->grant != NULL && pg_sha256(bytes, len, sha256) &&
	    memcmp(sha256, memo->grant->sha256, 32) == 0) {
		free(bytes);
		return;
	}
	free(memo->bytes);
	memo->bytes = bytes;
	memo->len = len;
	snprintf(path, sizeof path, "%s/%s", dir, memo->file);
	pg_grant_free(memo->grant);
	memo->grant = pg_grant_parse(path, bytes, len, policy->grants_max_lifetime, ignore_diag, NULL);
}

/* Brings the memo up to date: trusted while the file's identity is the
 * same and it was settled when taken, else read again.  false if the file
 * is gone or unreadable. */
static bool
grant_refresh(const pg_policy *policy, const char *dir, struct grant_memo *memo, time_t real)
{
	char path[4096], *bytes = NULL;
	struct file_id id;
	struct stat st;
	size_t len = 0;

	snprintf(path, sizeof path, "%s/%s", dir, memo->file);
	if (stat(path, &st) != 0)
		return false;
	file_id_of(&st, &id);
	if (memo->known && file_id_eq(&id, &memo->id) && settled(&memo->id, memo->taken))
		return true;
	if (read_file(dir, memo->file, PG_GRANT_MAX_BYTES, &bytes, &len, &id) != 0)
		return false;
	grant_take(policy, dir, memo, bytes, len, &id, real);
	return true;
}

static int
approver_of_blob(const pg_policy *policy, const pg_sshsig *sig)
{
	size_t len;
	const unsigned char *blob = pg_sshsig_key_blob(sig, &len);

	for (size_t i = 0; i < policy->n_approvers; i++) {
		if (policy->approvers[i].key != NULL &&
		    pg_sshkey_equal_blob(policy->approvers[i].key, blob, len))
			return (int)i;
	}
	return -1;
}

/* Verifies one signature file over the grant's bytes, unless the memo
 * already holds the answer for this file and these bytes. */
static void
sig_refresh_ns(const pg_policy *policy, const char *dir, struct sig_memo *memo, const char *ns,
               const char *grant_bytes, size_t grant_len, const unsigned char grant_sha256[32],
               time_t real)
{
	char path[4096], *text = NULL;
	pg_sshsig *sig = NULL;
	struct file_id id;
	struct stat st;
	size_t len = 0;
	int err;

	snprintf(path, sizeof path, "%s/%s", dir, memo->file);
	if (stat(path, &st) == 0) {
		file_id_of(&st, &id);
		if (memo->known && file_id_eq(&id, &memo->id) && settled(&memo->id, memo->taken) &&
		    memcmp(memo->over, grant_sha256, 32) == 0)
			return;
	}
	memo->known = false;
	memo->verified = false;
	memo->approver = -1;
	memo->fingerprint[0] = '\0';
	memset(&memo->sk, 0, sizeof memo->sk);
	if ((err = read_file(dir, memo->file, 16384, &text, &len, &id)) != 0) {
		snprintf(memo->why, sizeof memo->why, "cannot be read (%s)", strerror(err));
		goto out;
	}
	memo->id = id;
	memo->taken = real;
	memo->known = true;
	memcpy(memo->over, grant_sha256, 32);
	if ((sig = pg_sshsig_new(text, len, memo->why, sizeof memo->why)) == NULL)
		goto out;
	pg_sshsig_fingerprint(sig, memo->fingerprint, sizeof memo->fingerprint);
	if ((memo->approver = approver_of_blob(policy, sig)) < 0) {
		snprintf(memo->why, sizeof memo->why, "signed with key %s, which is no approver's",
		         memo->fingerprint);
		goto out;
	}
	memo->verified = pg_sshsig_verify(sig, policy->approvers[memo->approver].key,
	                                  ns, (const unsigned char *)grant_bytes,
	                                  grant_len, &memo->sk, memo->why, sizeof memo->why);
out:
	pg_sshsig_free(sig);
	free(text);
}

static void
sig_refresh(const pg_policy *policy, const char *dir, struct sig_memo *memo,
            const char *grant_bytes, size_t grant_len, const unsigned char grant_sha256[32],
            time_t real)
{
	sig_refresh_ns(policy, dir, memo, PG_GRANT_SIG_NAMESPACE, grant_bytes, grant_len,
	               grant_sha256, real);
}

static bool
in_from(const struct pg_approval *approval, int approver)
{
	for (size_t i = 0; i < approval->n_from; i++) {
		if (approval->from[i] == (unsigned)approver)
			return true;
	}
	return false;
}

static void
append(char *out, size_t out_len, const char *sep, const char *text)
{
	size_t used = strlen(out);

	if (used + 1 < out_len)
		snprintf(out + used, out_len - used, "%s%s", used > 0 ? sep : "", text);
}

/* Counts distinct approvers in from whose signature verified and who are
 * not the requester; names them in counted and each signature that did
 * not count, and why, in problems. */
static unsigned
count_approvals(const pg_policy *policy, const struct pg_approval *approval,
                const struct grant_memo *memo, const char *requester,
                char *counted, size_t counted_len, char *problems, size_t problems_len)
{
	bool seen[256] = { false };
	unsigned n = 0;

	counted[0] = problems[0] = '\0';
	for (size_t i = 0; i < memo->n_sigs; i++) {
		const struct sig_memo *sig = &memo->sigs[i];
		const struct pg_approver *who = sig->approver >= 0 ? &policy->approvers[sig->approver] : NULL;
		char line[400];

		if (who == NULL || !sig->verified) {
			snprintf(line, sizeof line, "%s%s%s", who != NULL ? who->name : sig->file,
			         who != NULL ? "'s signature: " : ": ", sig->why);
		} else if (!in_from(approval, sig->approver)) {
			snprintf(line, sizeof line, "%s's signature does not count: %s is not in "
			         "approval.from [%s]", who->name, who->name, approval->from_text);
		} else if (who->user != NULL && requester != NULL && strcmp(who->user, requester) == 0) {
			snprintf(line, sizeof line, "%s's signature does not count: %s is the requester "
			         "(user %s)", who->name, who->name, requester);
		} else if ((size_t)sig->approver < sizeof seen && seen[sig->approver]) {
			snprintf(line, sizeof line, "%s signed twice (%s): one approver counts once",
			         who->name, sig->file);
		} else {
			if ((size_t)sig->approver < sizeof seen)
				seen[sig->approver] = true;
			append(counted, counted_len, ", ", who->name);
			n++;
			continue;
		}
		append(problems, problems_len, "; ", line);
	}
	return n;
}

/* ---- the condition ------------------------------------------------------ */

/* How far a grant got, for choosing which refusal to tell. */
enum stage { ST_REVOKED, ST_EARLY, ST_EXPIRED, ST_DATA, ST_APPROVALS, ST_USED_UP, ST_OK };

static bool
revoked(const pg_policy *policy, const char *id)
{
	for (size_t i = 0; i < policy->n_grants_revoked; i++) {
		if (strcmp(policy->grants_revoked[i], id) == 0)
			return true;
	}
	return false;
}

/* The grant may sign these data: their SHA-256 is listed, or they are a
 * listed digest itself (CKM_ECDSA, a raw RSA block) or a SHA-256
 * DigestInfo holding one (CKM_RSA_PKCS). */
static bool
data_listed(const struct pg_grant *grant, const struct pg_request *req)
{
	static const unsigned char digest_info[19] = {
		0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
		0x01, 0x05, 0x00, 0x04, 0x20,
	};

	for (size_t i = 0; i < grant->n_data_sha256; i++) {
		const unsigned char *want = grant->data_sha256[i];

		if (memcmp(req->data_sha256, want, 32) == 0)
			return true;
		if (req->data != NULL && req->data_len == 32 && memcmp(req->data, want, 32) == 0)
			return true;
		if (req->data != NULL && req->data_len == 51 && memcmp(req->data, digest_info, 19) == 0 &&
		    memcmp(req->data + 19, want, 32) == 0)
			return true;
	}
	return false;
}

static enum stage
judge_grant(const pg_policy *policy, const struct pg_rule *rule, const struct grant_memo *memo,
            const struct pg_request *req, const char *user, struct pg_grant_use *use,
            char *msg, size_t msg_len)
{
	const struct pg_grant *grant = memo->grant;
	char when[32], counted[256], problems[1024], hex[65];
	unsigned n;

	if (revoked(policy, grant->id)) {
		snprintf(msg, msg_len, "grant %s is revoked (grants.revoked)", grant->id);
		return ST_REVOKED;
	}
	if (req->now < grant->not_before) {
		pg_grant_time_format(grant->not_before, when, sizeof when);
		snprintf(msg, msg_len, "grant %s is not valid before %s", grant->id, when);
		return ST_EARLY;
	}
	if (req->now >= grant->not_after) {
		pg_grant_time_format(grant->not_after, when, sizeof when);
		snprintf(msg, msg_len, "grant %s expired at %s", grant->id, when);
		return ST_EXPIRED;
	}
	/* At an init the data are not known yet: the call that signs decides. */
	if (grant->n_data_sha256 > 0 && req->data_sha256 != NULL && !data_listed(grant, req)) {
		pg_hex_encode(req->data_sha256, 32, hex);
		snprintf(msg, msg_len, "grant %s does not list these data (SHA-256 %s) in data_sha256",
		         grant->id, hex);
		return ST_DATA;
	}
	n = count_approvals(policy, rule->approval, memo, user, counted, sizeof counted,
	                    problems, sizeof problems);
	if (n < rule->approval->count) {
		/* At most 100 + 255 + 500 bytes of parts: it fits the caller's 1024. */
		snprintf(msg, msg_len, "grant %s: %u of %u approvals%s%s%s; %.500s", grant->id, n,
		         rule->approval->count, n > 0 ? " (" : "", counted, n > 0 ? ")" : "",
		         problems[0] != '\0' ? problems : "no other signature beside it");
		return ST_APPROVALS;
	}
	use->used = true;
	snprintf(use->id, sizeof use->id, "%s", grant->id);
	memcpy(use->sha256, grant->sha256, 32);
	snprintf(use->approvers, sizeof use->approvers, "%s", counted);
	use->max_signatures = grant->max_signatures;
	use->not_after = grant->not_after;
	if (grant->max_signatures > 0 && req->grant_uses_left != NULL) {
		uint64_t used = 0;

		if (!req->grant_uses_left(req->grant_ctx, use, &used)) {
			use->used = false;
			snprintf(msg, msg_len, "grant %s has no signatures left (%" PRIu64 " of %" PRIu64
			         " used)", grant->id, used, grant->max_signatures);
			return ST_USED_UP;
		}
	}
	return ST_OK;
}

/* The grant names a key that this rule names and the object matched. */
static bool
key_fits(const pg_policy *policy, const struct pg_rule *rule, const struct pg_key_match *match,
         const char *key)
{
	int idx = pg_policy_key_find(policy, key);
	bool named = false, matched = false;

	if (idx < 0)
		return false;
	for (size_t i = 0; i < rule->n_keys; i++)
		named = named || rule->keys[i] == (unsigned)idx;
	for (size_t i = 0; match != NULL && i < match->n; i++)
		matched = matched || match->idx[i] == (unsigned)idx;
	return named && matched;
}

/* The grant is the caller's and names a key of the rule the object matched. */
static bool
applies(const pg_policy *policy, const struct pg_rule *rule, const struct pg_request *req,
        const struct pg_grant *grant, const char *user)
{
	if (!key_fits(policy, rule, req->key, grant->key))
		return false;
	if (grant->requester != NULL)
		return user != NULL && strcmp(grant->requester, user) == 0;
	/* An identity requester: the identity verified at C_Login, from that
	 * issuer, carrying each claim as a string of exactly that value. */
	if (req->login == NULL || req->login->issuer == NULL || strcmp(req->login->issuer, grant->issuer) != 0)
		return false;
	for (size_t i = 0; i < grant->n_claims; i++) {
		const struct pg_login_claim *claim = pg_login_id_claim(req->login, grant->claim_names[i]);

		if (claim == NULL || !claim->is_string || strcmp(claim->value, grant->claim_values[i]) != 0)
			return false;
	}
	return true;
}

#define SAY(...) do { if (msg != NULL) snprintf(msg, msg_len, __VA_ARGS__); } while (0)

enum pg_tri
pg_approval_eval(const struct pg_rule *rule, struct pg_eval *ev, char *msg, size_t msg_len)
{
	const pg_policy *policy = ev->policy;
	struct pg_grant_cache *cache = policy->grant_cache;
	const char *dir = policy->settings.grants_dir;
	const struct pg_caller *caller = ev->req->caller;
	const char *user = caller != NULL ? caller->user : NULL;
	enum stage best = ST_REVOKED;
	char best_msg[1024] = "", one[1024];
	unsigned unparsed = 0;
	bool any = false, full, quick;
	time_t real;
	int err;

	if (dir == NULL || cache == NULL) {
		SAY("approval needs grants: dir:");
		return PG_NO;
	}
	if (user == NULL && ev->req->login == NULL) {
		SAY("the caller's user name is unknown and it proved no identity, so no grant can name "
		    "it as requester");
		return PG_UNKNOWN;
	}
	pthread_mutex_lock(&cache->lock);
	/* Settledness is judged by the real clock, never the request's
	 * (explain --at may ask about any instant). */
	real = time(NULL);
	/* A provisional judgement (an init, judged again where the signature
	 * is made) answers from the memos as they are, looking at no file. */
	quick = ev->req->provisional && cache->listed;
again:
	if (!quick && (err = refresh_listing(cache, dir, real)) != 0) {
		pthread_mutex_unlock(&cache->lock);
		SAY("grants.dir %s cannot be read (%s)", dir, strerror(err));
		return PG_NO;
	}
	full = !quick && real - cache->rechecked >= PG_GRANT_RECHECK_S;
	for (size_t i = 0; i < cache->n_grants; i++) {
		struct grant_memo *memo = &cache->grants[i];
		struct pg_grant_use use = { .used = false };
		enum stage stage;

		/* A settled grant that does not apply is looked at again only
		 * in a full pass. */
		if (!full && memo->known && (quick || settled(&memo->id, memo->taken)) &&
		    (memo->grant == NULL || !applies(policy, rule, ev->req, memo->grant, user))) {
			unparsed += memo->grant == NULL;
			continue;
		}
		if (!(quick && memo->known) && !grant_refresh(policy, dir, memo, real))
			continue;
		if (memo->grant == NULL) {
			unparsed++;
			continue;
		}
		if (!applies(policy, rule, ev->req, memo->grant, user))
			continue;
		for (size_t j = 0; j < memo->n_sigs; j++) {
			const struct sig_memo *sig = &memo->sigs[j];

			/* A settled signature's verdict over these bytes stands
			 * until a full pass: removing one changes the directory. */
			if (!full && sig->known && (quick || settled(&sig->id, sig->taken)) &&
			    memcmp(sig->over, memo->grant->sha256, 32) == 0)
				continue;
			sig_refresh(policy, dir, &memo->sigs[j], memo->bytes, memo->len, memo->grant->sha256, real);
		}
		stage = judge_grant(policy, rule, memo, ev->req, user, &use, one, sizeof one);
		if (stage == ST_OK) {
			ev->grant = use;
			if (full)
				cache->rechecked = real;
			pthread_mutex_unlock(&cache->lock);
			SAY("grant %s approved by %s", use.id, use.approvers);
			return PG_YES;
		}
		if (!any || stage > best) {
			best = stage;
			snprintf(best_msg, sizeof best_msg, "%s", one);
		}
		any = true;
	}
	if (full)
		cache->rechecked = real;
	/* The memos said no: they may be behind (a grant approved since), so
	 * the files are looked at before refusing. */
	if (quick) {
		quick = false;
		any = false;
		unparsed = 0;
		goto again;
	}
	pthread_mutex_unlock(&cache->lock);
	if (any) {
		SAY("%s", best_msg);
		return PG_NO;
	}
	SAY("no grant in %s for key %s requested by %s%s%s%s", dir,
		    ev->req->key != NULL && ev->req->key->n > 0 ?
	    policy->keys[ev->req->key->idx[0]].name : "?", user != NULL ? user : "(no user)",
	    ev->req->login != NULL && ev->req->login->issuer != NULL ? " or its " : "",
	    ev->req->login != NULL && ev->req->login->issuer != NULL ? ev->req->login->issuer : "",
	    ev->req->login != NULL && ev->req->login->issuer != NULL ? " identity" : "");
	if (unparsed > 0 && msg != NULL) {
		size_t used = strlen(msg);

		snprintf(msg + used, msg_len - used, " (some grant files there do not parse: "
		         "p11gate grant list)");
	}
	return PG_NO;
}

/* ---- p11gate grant show / list ------------------------------------------ */

int
pg_grant_list(const char *dir, void (*fn)(void *ctx, const char *path), void *ctx)
{
	char **names = NULL, path[4096];
	size_t n = 0;
	int err = read_names(dir, &names, &n);

	for (size_t i = 0; i < n; i++) {
		if (err == 0 && is_grant_name(names[i])) {
			snprintf(path, sizeof path, "%s/%s", dir, names[i]);
			fn(ctx, path);
		}
		free(names[i]);
	}
	free(names);
	return err;
}

static void
report_rules(const pg_policy *policy, const struct grant_memo *memo,
             void (*each_rule)(void *ctx, const struct pg_grant_rule_info *rule), void *ctx)
{
	int key = pg_policy_key_find(policy, memo->grant->key);

	for (size_t r = 0; key >= 0 && r < policy->n_rules; r++) {
		const struct pg_rule *rule = &policy->rules[r];
		char counted[256], problems[1024];
		struct pg_grant_rule_info info;
		bool names_key = false;

		for (size_t k = 0; k < rule->n_keys; k++)
			names_key = names_key || rule->keys[k] == (unsigned)key;
		if (rule->approval == NULL || !names_key)
			continue;
		info.rule = rule->name;
		info.needed = rule->approval->count;
		info.counted = count_approvals(policy, rule->approval, memo, memo->grant->requester,
		                               counted, sizeof counted, problems, sizeof problems);
		info.approvers = counted;
		info.missing = info.counted >= info.needed ? "" : problems[0] != '\0' ? problems :
		               "no other signature beside it";
		each_rule(ctx, &info);
	}
}

bool
pg_grant_check_text(const pg_policy *policy, const char *path, const char *text, size_t len,
                    pg_diag_fn diag, void *diag_ctx)
{
	struct pg_grant *grant = pg_grant_parse(path, text, len, policy->grants_max_lifetime, diag,
	                                        diag_ctx);

	pg_grant_free(grant);
	return grant != NULL;
}

/* The grant's state at now, into out. */
static void
grant_state(const pg_policy *policy, const struct pg_grant *grant, time_t now, char *out,
            size_t out_len)
{
	char when[32];

	if (revoked(policy, grant->id)) {
		snprintf(out, out_len, "revoked (grants.revoked)");
	} else if (now < grant->not_before) {
		pg_grant_time_format(grant->not_before, when, sizeof when);
		snprintf(out, out_len, "not valid before %s", when);
	} else if (now >= grant->not_after) {
		pg_grant_time_format(grant->not_after, when, sizeof when);
		snprintf(out, out_len, "expired at %s", when);
	} else {
		snprintf(out, out_len, "within its validity window");
	}
}

static void
report_sigs(const pg_policy *policy, const char *dir, struct grant_memo *memo, const char *ns,
            const char *bytes, size_t len, const unsigned char sha256[32],
            void (*each_sig)(void *ctx, const struct pg_grant_sig_info *sig), void *ctx)
{
	for (size_t i = 0; i < memo->n_sigs; i++) {
		struct sig_memo *sig = &memo->sigs[i];
		struct pg_grant_sig_info s;

		sig_refresh_ns(policy, dir, sig, ns, bytes, len, sha256, time(NULL));
		s = (struct pg_grant_sig_info){
			.file = sig->file,
			.approver = sig->approver >= 0 ? policy->approvers[sig->approver].name : NULL,
			.fingerprint = sig->fingerprint[0] != '\0' ? sig->fingerprint : NULL,
			.verified = sig->verified,
			.why = sig->why,
			.sk = sig->sk.is_sk,
			.sk_flags = sig->sk.flags,
			.sk_counter = sig->sk.counter,
		};
		each_sig(ctx, &s);
	}
}

/* path's directory ("." when it names none) and file name, both malloc'd;
 * false when memory runs out (what was made is the caller's to free). */
static bool
split_path(const char *path, char **dir, char **file)
{
	const char *slash = strrchr(path, '/');

	*dir = slash != NULL ? strndup(path, (size_t)(slash - path)) : strdup(".");
	*file = strdup(slash != NULL ? slash + 1 : path);
	return *dir != NULL && *file != NULL;
}

bool
pg_grant_inspect(const pg_policy *policy, const char *path, time_t now,
                 pg_diag_fn diag, void *diag_ctx, const struct pg_grant_inspect_fns *fns, void *ctx)
{
	struct grant_memo memo = { .file = NULL };
	char *dir = NULL, *bytes = NULL, **names = NULL, state[96];
	size_t len = 0, n_names = 0;
	struct pg_grant_info info;
	struct file_id id;
	bool ok = false;
	int err;

	if (!split_path(path, &dir, &memo.file))
		goto out;
	if ((err = read_file(dir, memo.file, PG_GRANT_MAX_BYTES, &bytes, &len, &id)) != 0) {
		diag(diag_ctx, PG_DIAG_ERROR, path, 0, 0, strerror(err));
		goto out;
	}
	memo.grant = pg_grant_parse(path, bytes, len, policy->grants_max_lifetime, diag, diag_ctx);
	if (memo.grant == NULL || read_names(dir, &names, &n_names) != 0 ||
	    !attach_sigs(&memo, names, n_names))
		goto out;
	grant_state(policy, memo.grant, now, state, sizeof state);
	info = (struct pg_grant_info){
		.id = memo.grant->id, .key = memo.grant->key, .requester = memo.grant->requester_text,
		.reason = memo.grant->reason, .not_before = memo.grant->not_before,
		.not_after = memo.grant->not_after, .max_signatures = memo.grant->max_signatures,
		.key_known = pg_policy_key_find(policy, memo.grant->key) >= 0,
		.revoked = revoked(policy, memo.grant->id), .state = state,
	};
	memcpy(info.sha256, memo.grant->sha256, 32);
	fns->grant(ctx, &info);
	report_sigs(policy, dir, &memo, PG_GRANT_SIG_NAMESPACE, bytes, len, memo.grant->sha256,
	            fns->sig, ctx);
	report_rules(policy, &memo, fns->rule, ctx);
	ok = true;
out:
	for (size_t i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	free(bytes);
	grant_memo_clear(&memo);
	free(dir);
	return ok;
}

int
pg_approvals_of_file(const pg_policy *policy, const char *path, const char *ns,
                     void (*each_sig)(void *ctx, const struct pg_grant_sig_info *sig), void *ctx)
{
	struct grant_memo memo = { .file = NULL };
	char *dir = NULL, *bytes = NULL, **names = NULL;
	unsigned char sha256[32];
	size_t len = 0, n_names = 0;
	struct file_id id;
	int err = ENOMEM;

	if (!split_path(path, &dir, &memo.file))
		goto out;
	if ((err = read_file(dir, memo.file, PG_GRANT_MAX_BYTES, &bytes, &len, &id)) != 0 ||
	    (err = read_names(dir, &names, &n_names)) != 0)
		goto out;
	err = ENOMEM;
	if (!pg_sha256(bytes, len, sha256) || !attach_sigs(&memo, names, n_names))
		goto out;
	report_sigs(policy, dir, &memo, ns, bytes, len, sha256, each_sig, ctx);
	err = 0;
out:
	for (size_t i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	free(bytes);
	grant_memo_clear(&memo);
	free(dir);
	return err;
}
