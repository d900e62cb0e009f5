/* SPDX-License-Identifier: Apache-2.0
 *
 * The uses an allow takes with its record: a rule's limit:, its
 * break_glass: cap and its grant's max_signatures as counters of the log (pg_audit_append_counted, which
 * checks and takes them under the log's locks and writes a deny instead
 * when one is at its max); the words of such a refusal; the alerts and the
 * break-glass line once a use is taken; and where a caller states a
 * break-glass justification.  No state of its own.
 */
#include "counted.h"
#include "alert.h"
#include "p11gate/common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BREAK_GLASS_ENV "P11GATE_BREAK_GLASS"

/* The counter a limit counts in: "limit rule=R caller=uid:1001". */
static void
counter_name(char *out, size_t len, const char *what, const char *rule, enum pg_limit_by by,
             const struct pg_caller *caller, const char *key_name)
{
	switch (by) {
	case PG_LIMIT_BY_CALLER:
		snprintf(out, len, "%s rule=%s caller=uid:%lu", what, rule, (unsigned long)caller->uid);
		break;
	case PG_LIMIT_BY_KEY:
		snprintf(out, len, "%s rule=%s key=%s", what, rule, key_name != NULL ? key_name : "?");
		break;
	case PG_LIMIT_BY_RULE:
		snprintf(out, len, "%s rule=%s", what, rule);
		break;
	}
}

static void
add(struct pg_counted *counted, const struct pg_limit *limit, const char *what)
{
	size_t i = counted->n++;

	counter_name(counted->names[i], sizeof counted->names[i], what, counted->decision->rule,
	             limit->by, counted->caller, counted->key_name);
	counted->limits[i] = limit;
	counted->takes[i] = (struct pg_audit_take){
		.counter = counted->names[i], .per = limit->per, .max = limit->max,
	};
}

void
pg_counted_grant_take(const struct pg_grant_use *grant, struct pg_audit_take *take, char *name,
                      size_t name_len)
{
	char hex[PG_SHA256_HEX_LEN + 1];

	pg_hex_encode(grant->sha256, PG_SHA256_LEN, hex);
	snprintf(name, name_len, "grant id=%s sha256=%s", grant->id, hex);
	*take = (struct pg_audit_take){
		.counter = name,
		.per = 0,
		.max = grant->max_signatures,
		.expires = grant->not_after > 0 ? (uint64_t)grant->not_after : 0,
	};
}

size_t
pg_counted_init(struct pg_counted *counted, const struct pg_regime *regime,
                const struct pg_decision *decision, const char *key_name)
{
	counted->n = 0;
	counted->decision = decision;
	counted->caller = regime->caller;
	counted->key_name = key_name;
	if (!decision->allow || decision->rule == NULL || regime->caller == NULL)
		return 0;
	if (decision->limit != NULL)
		add(counted, decision->limit, "limit");
	if (decision->break_glass != NULL)
		add(counted, decision->break_glass, "break-glass");
	if (decision->grant.used && decision->grant.max_signatures > 0) {
		size_t i = counted->n++;

		counted->limits[i] = NULL;
		pg_counted_grant_take(&decision->grant, &counted->takes[i], counted->names[i],
		                      sizeof counted->names[i]);
	}
	return counted->n;
}

static void
utc_time(uint64_t t, char out[32])
{
	time_t when = (time_t)t;
	struct tm tm;

	if (gmtime_r(&when, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "%" PRIu64, t);
}

/* "limit of 100 per 1h by caller" or "break-glass cap of 5 signatures per 24h". */
static void
describe(const struct pg_counted *counted, size_t i, char *out, size_t len)
{
	const struct pg_limit *limit = counted->limits[i];

	if (limit == counted->decision->break_glass)
		snprintf(out, len, "break-glass cap of %" PRIu64 " signatures per %s", limit->max,
		         limit->per_text);
	else
		snprintf(out, len, "limit of %" PRIu64 " per %s by %s", limit->max, limit->per_text,
		         pg_limit_by_name(limit->by));
}

/* " for uid 1001", " for key K" or nothing. */
static void
counted_for(const struct pg_counted *counted, size_t i, char *out, size_t len)
{
	char name[160];

	switch (counted->limits[i]->by) {
	case PG_LIMIT_BY_CALLER:
		snprintf(out, len, " for uid %lu", (unsigned long)counted->caller->uid);
		break;
	case PG_LIMIT_BY_KEY:
		snprintf(out, len, " for key %s", pg_esc(counted->key_name != NULL ? counted->key_name :
		         "?", PG_ESC_VALUE, name, sizeof name));
		break;
	default:
		out[0] = '\0';
		break;
	}
}

void
pg_counted_refusal(void *ctx, const struct pg_audit_take *take, char *reason, size_t len)
{
	const struct pg_counted *counted = ctx;
	char what[128], whom[200], resets[32];
	size_t i = 0;

	/* The take may be a copy (judge.c appends other counters with these):
	 * found by its name. */
	while (i < counted->n && counted->takes[i].counter != take->counter)
		i++;
	if (i == counted->n) {
		snprintf(reason, len, "counter %s reached its max", take->counter);
		return;
	}

	if (counted->limits[i] == NULL) {
		snprintf(reason, len, "rule %s: grant %s has no signatures left (%" PRIu64 " of %"
		         PRIu64 " used)", counted->decision->rule, counted->decision->grant.id,
		         take->used, take->max);
		return;
	}
	describe(counted, i, what, sizeof what);
	counted_for(counted, i, whom, sizeof whom);
	utc_time(take->resets, resets);
	snprintf(reason, len, "rule %s: %s reached%s (%" PRIu64 " of %" PRIu64 " used; resets at %s)",
	         counted->decision->rule, what, whom, take->used, take->max, resets);
}

void
pg_counted_taken(struct pg_regime *regime, const struct pg_counted *counted,
                 const char *operation, uint64_t seq)
{
	const struct pg_decision *decision = counted->decision;

	for (size_t i = 0; i < counted->n; i++) {
		const struct pg_audit_take *take = &counted->takes[i];
		const struct pg_limit *limit = counted->limits[i];
		char what[128], whom[200], resets[32], reason[2048];
		bool glass = limit != NULL && limit == decision->break_glass;

		if (limit == NULL || (take->used != take->max && !glass))
			continue;                  /* a grant's uses raise no alert */
		describe(counted, i, what, sizeof what);
		counted_for(counted, i, whom, sizeof whom);
		utc_time(take->resets, resets);
		if (glass) {
			char text[PG_JUSTIFICATION_MAX * 4 + 8], key[160], user[160], uid[24];

			snprintf(uid, sizeof uid, "%lu", (unsigned long)counted->caller->uid);
			pg_esc(decision->justification, PG_ESC_QUOTED, text, sizeof text);
			/* Loud whatever caller_messages says: that is the point. */
			pg_log("BREAK-GLASS: rule %s allowed %s with key %s for user %s (use %" PRIu64
			       " of %" PRIu64 " per %s): justification %s (%s); recorded in the audit log "
			       "and alerted", decision->rule, operation,
			       pg_esc(counted->key_name != NULL ? counted->key_name : "?", PG_ESC_VALUE,
			              key, sizeof key),
			       counted->caller->user != NULL ?
			       pg_esc(counted->caller->user, PG_ESC_VALUE, user, sizeof user) : uid,
			       take->used, take->max, limit->per_text, text,
			       decision->justification_source);
			snprintf(reason, sizeof reason, "rule %s: break-glass %s with key %s, use %" PRIu64
			         " of %" PRIu64 " per %s; justification (%s): %s", decision->rule,
			         operation, key, take->used, take->max, limit->per_text,
			         decision->justification_source, text);
		} else {
			snprintf(reason, sizeof reason, "rule %s: %s reached%s (%" PRIu64 " of %" PRIu64
			         " used; further uses refused until %s)", decision->rule, what, whom,
			         take->used, take->max, resets);
		}
		pg_alert_raise(regime, &(struct pg_alert){
			.kind = glass ? PG_ALERT_BREAK_GLASS : PG_ALERT_LIMIT_REACHED,
			.reason = reason,
			.rule = decision->rule,
			.key_name = counted->key_name,
			.by = glass ? NULL : pg_limit_by_name(limit->by),
			.ref = seq,
			.count = take->used,
			.threshold = take->max,
			.window = take->per,
		});
	}
}

/* The text of a justification, its ends trimmed; false if empty. */
static bool
justification_text(const char *in, size_t len, char *text, size_t text_len)
{
	while (len > 0 && (in[0] == ' ' || in[0] == '\t' || in[0] == '\n' || in[0] == '\r'))
		in++, len--;
	while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\t' || in[len - 1] == '\n' ||
	                   in[len - 1] == '\r'))
		len--;
	if (len == 0)
		return false;
	if (len > text_len - 1)
		len = text_len - 1;     /* bounded: the record keeps PG_JUSTIFICATION_MAX bytes */
	memcpy(text, in, len);
	text[len] = '\0';
	return true;
}

/* The newest DIR/break-glass/UID-*.txt the uid owns, changed within fresh
 * seconds: the kernel says who owns a file, also across a socket. */
static bool
justify_file(const char *dir, uid_t uid, uint64_t fresh, char *text, size_t text_len,
             char *source, size_t source_len)
{
	char path[PATH_MAX], prefix[32], best[NAME_MAX + 1] = "", buf[PG_JUSTIFICATION_MAX + 1];
	struct timespec newest = { 0 };
	time_t now = time(NULL);
	struct dirent *d;
	bool found = false;
	int dfd, fd;
	DIR *listing;
	ssize_t got;

	snprintf(path, sizeof path, "%s/break-glass", dir);
	snprintf(prefix, sizeof prefix, "%lu-", (unsigned long)uid);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	listing = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (listing == NULL) {
		if (dfd >= 0)
			close(dfd);
		return false;
	}
	while ((d = readdir(listing)) != NULL) {
		size_t len = strlen(d->d_name);
		struct stat st;

		if (strncmp(d->d_name, prefix, strlen(prefix)) != 0 || len < 4 ||
		    strcmp(d->d_name + len - 4, ".txt") != 0)
			continue;
		if (fstatat(dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
		    st.st_uid != uid || (uint64_t)(now - st.st_mtim.tv_sec) > fresh)
			continue;
		if (st.st_mtim.tv_sec > newest.tv_sec ||
		    (st.st_mtim.tv_sec == newest.tv_sec && st.st_mtim.tv_nsec > newest.tv_nsec) ||
		    (st.st_mtim.tv_sec == newest.tv_sec && st.st_mtim.tv_nsec == newest.tv_nsec &&
		     strcmp(d->d_name, best) > 0)) {
			newest = st.st_mtim;
			snprintf(best, sizeof best, "%s", d->d_name);
		}
	}
	if (best[0] != '\0') {
		struct stat st;

		/* Opened without following a link and checked again: the file
		 * read is the file judged. */
		fd = openat(dfd, best, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == uid &&
		    (got = read(fd, buf, sizeof buf - 1)) > 0 &&
		    justification_text(buf, (size_t)got, text, text_len)) {
			snprintf(source, source_len, "%s/%s", path, best);
			found = true;
		}
		if (fd >= 0)
			close(fd);
	}
	closedir(listing);
	return found;
}

/* Where break-glass justification files are: grants.dir/break-glass. */
static const char *
grants_dir(const struct pg_regime *regime)
{
	return pg_policy_settings(regime->policy)->grants_dir;
}

bool
pg_break_glass_justify(void *ctx, uint64_t fresh, char *text, size_t text_len, char *source,
                       size_t source_len)
{
	const struct pg_regime *regime = ctx;
	const struct pg_caller *caller = regime->caller;
	const char *dir = grants_dir(regime), *env;

	if (caller == NULL)
		return false;
	/* In-process only: across a socket the server's environment is not
	 * the caller's. */
	env = caller->source == PG_ID_PROCESS ? pg_caller_getenv(caller, BREAK_GLASS_ENV) : NULL;
	if (env != NULL && justification_text(env, strlen(env), text, text_len)) {
		snprintf(source, source_len, "environment %s", BREAK_GLASS_ENV);
		return true;
	}
	if (dir != NULL && justify_file(dir, caller->uid, fresh, text, text_len, source, source_len))
		return true;
	if (dir != NULL)
		snprintf(source, source_len, "%s%s/break-glass/%lu-*.txt (owned by uid %lu, changed in "
		         "the last %" PRIu64 " s)", caller->source == PG_ID_PROCESS ?
		         BREAK_GLASS_ENV " or " : "", dir, (unsigned long)caller->uid,
		         (unsigned long)caller->uid, fresh);
	else
		snprintf(source, source_len, "%s (the policy has no grants.dir for justification "
		         "files)", caller->source == PG_ID_PROCESS ? BREAK_GLASS_ENV : "any place");
	return false;
}
