/* SPDX-License-Identifier: Apache-2.0
 *
 * Grant files: the strict parse of one grant's YAML (fields, types, the id
 * that must be the file's name, the validity window within the policy's
 * maximum lifetime), and the UTC timestamps grants are written in.
 */
#include "grant.h"
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const grant_fields[] = {
	"grant", "id", "key", "requester", "not_before", "not_after", "max_signatures",
	"data_sha256", "reason", NULL
};

bool
pg_grant_time_parse(const char *text, time_t *out)
{
	struct tm tm, given;
	const char *end;
	time_t t;

	memset(&tm, 0, sizeof tm);
	if (strlen(text) != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' ||
	    text[13] != ':' || text[16] != ':' || text[19] != 'Z')
		return false;
	for (size_t i = 0; i < 19; i++) {
		if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && (text[i] < '0' || text[i] > '9'))
			return false;
	}
	end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0')
		return false;
	/* strptime takes 2026-02-30 and timegm normalises it (in place) to
	 * March: refuse a date that moved. */
	given = tm;
	t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != given.tm_mday || tm.tm_mon != given.tm_mon)
		return false;
	*out = t;
	return true;
}

void
pg_grant_time_format(time_t t, char *out, size_t out_len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, out_len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, out_len, "%lld", (long long)t);
}

bool
pg_grant_id_of(const char *path, char *out, size_t out_len)
{
	const char *base = strrchr(path, '/');
	size_t len;

	base = base != NULL ? base + 1 : path;
	len = strlen(base);
	if (len <= 5 || strcmp(base + len - 5, ".yaml") != 0 || len - 5 > PG_GRANT_ID_MAX ||
	    len - 5 >= out_len)
		return false;
	memcpy(out, base, len - 5);
	out[len - 5] = '\0';
	return pg_name_ok(out);
}

void
pg_grant_free(struct pg_grant *grant)
{
	if (grant == NULL)
		return;
	free(grant->id);
	free(grant->key);
	free(grant->requester);
	free(grant->issuer);
	for (size_t i = 0; i < grant->n_claims; i++) {
		free(grant->claim_names[i]);
		free(grant->claim_values[i]);
	}
	free(grant->claim_names);
	free(grant->claim_values);
	free(grant->requester_text);
	free(grant->reason);
	free(grant->data_sha256);
	free(grant);
}

static char *
dup_string(struct pg_diag *diag, const struct pg_ynode *map, const char *field)
{
	const struct pg_ynode *node = pg_ymap_get(map, field);
	const char *text;
	char *copy;

	if (node == NULL) {
		pg_diag_error_at(diag, map, "the grant has no %s", field);
		return NULL;
	}
	if ((text = pg_yget_string(diag, node, field)) == NULL)
		return NULL;
	if ((copy = strdup(text)) == NULL)
		pg_diag_error_at(diag, node, "out of memory");
	return copy;
}

static const char *const requester_fields[] = { "issuer", "claims", NULL };

/* requester: a user name, or { issuer: NAME, claims: { NAME: VALUE, ... } }
 * (a pipeline identity proven at C_Login: docs/policy.md, login:). */
static bool
parse_requester(struct pg_diag *diag, const struct pg_ynode *map, struct pg_grant *grant)
{
	const struct pg_ynode *node = pg_ymap_get(map, "requester"), *claims;
	size_t used;
	const char *text;

	if (node == NULL) {
		pg_diag_error_at(diag, map, "the grant has no requester");
		return true;
	}
	if (node->kind == PG_Y_SCALAR) {
		if ((text = pg_yget_string(diag, node, "requester")) == NULL)
			return true;
		grant->requester = strdup(text);
		grant->requester_text = strdup(text);
		return grant->requester != NULL && grant->requester_text != NULL;
	}
	if (!pg_yexpect(diag, node, PG_Y_MAP, "requester"))
		return true;
	pg_ymap_check_keys(diag, node, requester_fields, "requester");
	if (pg_ymap_get(node, "issuer") == NULL ||
	    (text = pg_yget_string(diag, pg_ymap_get(node, "issuer"), "requester.issuer")) == NULL) {
		pg_diag_error_at(diag, node, "an identity requester needs issuer: (the login: issuer's "
		                 "name) and claims:");
		return true;
	}
	if ((grant->issuer = strdup(text)) == NULL)
		return false;
	claims = pg_ymap_get(node, "claims");
	if (claims == NULL || !pg_yexpect(diag, claims, PG_Y_MAP, "requester.claims") || claims->n == 0) {
		pg_diag_error_at(diag, claims != NULL ? claims : node, "an identity requester needs at "
		                 "least one claim (e.g. claims: { repository: org/app, ref: refs/tags/v1 })");
		return true;
	}
	grant->claim_names = calloc(claims->n, sizeof *grant->claim_names);
	grant->claim_values = calloc(claims->n, sizeof *grant->claim_values);
	grant->requester_text = malloc(4096);
	if (grant->claim_names == NULL || grant->claim_values == NULL || grant->requester_text == NULL)
		return false;
	used = (size_t)snprintf(grant->requester_text, 4096, "identity %s", grant->issuer);
	for (size_t i = 0; i < claims->n; i++) {
		const char *value = pg_yget_string(diag, claims->kids[2 * i + 1], "a claim value");

		if (value == NULL)
			continue;
		grant->claim_names[grant->n_claims] = strdup(claims->kids[2 * i]->value);
		grant->claim_values[grant->n_claims] = strdup(value);
		if (grant->claim_names[grant->n_claims] == NULL || grant->claim_values[grant->n_claims] == NULL)
			return false;
		if (used < 4096)
			used += (size_t)snprintf(grant->requester_text + used, 4096 - used, " %s=%s",
			                         claims->kids[2 * i]->value, value);
		grant->n_claims++;
	}
	return true;
}

static void
parse_time(struct pg_diag *diag, const struct pg_ynode *map, const char *field, time_t *out)
{
	const struct pg_ynode *node = pg_ymap_get(map, field);
	const char *text;

	if (node == NULL) {
		pg_diag_error_at(diag, map, "the grant has no %s; write it as 2026-12-03T10:00:00Z", field);
		return;
	}
	if ((text = pg_yget_string(diag, node, field)) != NULL && !pg_grant_time_parse(text, out))
		pg_diag_error_at(diag, node, "%s must be a UTC time like 2026-12-03T10:00:00Z, not '%s'",
		                 field, text);
}

static void
parse_max_signatures(struct pg_diag *diag, const struct pg_ynode *node, uint64_t *out)
{
	unsigned long long value = 0;
	char *end = NULL;

	if (node->kind == PG_Y_SCALAR && node->plain && node->value[0] >= '1' && node->value[0] <= '9') {
		errno = 0;
		value = strtoull(node->value, &end, 10);
		if (*end != '\0' || errno != 0 || value > 1000000000)
			value = 0;
	}
	if (value == 0)
		pg_diag_error_at(diag, node, "max_signatures must be a whole number from 1 to "
		                 "1000000000, not %s", node->kind == PG_Y_SCALAR ? node->value :
		                 pg_ynode_describe(node));
	*out = value;
}

static bool
parse_data(struct pg_diag *diag, const struct pg_ynode *seq, struct pg_grant *grant)
{
	if (!pg_yexpect(diag, seq, PG_Y_SEQ, "data_sha256"))
		return true;
	if (seq->n == 0)
		return true;
	if ((grant->data_sha256 = calloc(seq->n, sizeof *grant->data_sha256)) == NULL)
		return false;
	for (size_t i = 0; i < seq->n; i++) {
		const char *text = pg_yget_string(diag, seq->kids[i], "a SHA-256");

		if (text != NULL && !pg_hex_decode(text, grant->data_sha256[grant->n_data_sha256], 32)) {
			pg_diag_error_at(diag, seq->kids[i], "data_sha256 entries are 64 hex digits "
			                 "(sha256sum FILE), not '%s'", text);
			continue;
		}
		if (text != NULL)
			grant->n_data_sha256++;
	}
	return true;
}

static void
check_id(struct pg_diag *diag, const struct pg_ynode *map, const struct pg_grant *grant,
         const char *path)
{
	char file_id[PG_GRANT_ID_MAX + 1];

	if (grant->id == NULL)
		return;
	if (!pg_name_ok(grant->id) || strlen(grant->id) > PG_GRANT_ID_MAX)
		pg_diag_error_at(diag, pg_ymap_get(map, "id"), "the grant id '%s' may only use letters, "
		                 "digits, '.', '_' and '-' (at most %d)", grant->id, PG_GRANT_ID_MAX);
	else if (!pg_grant_id_of(path, file_id, sizeof file_id) || strcmp(file_id, grant->id) != 0)
		pg_diag_error_at(diag, pg_ymap_get(map, "id"), "the grant id '%s' is not the file's "
		                 "name: the file must be %s.yaml", grant->id, grant->id);
}

static void
check_window(struct pg_diag *diag, const struct pg_ynode *map, const struct pg_grant *grant,
             long max_lifetime)
{
	const struct pg_ynode *node = pg_ymap_get(map, "not_after");

	if (grant->not_before == 0 || grant->not_after == 0)
		return;
	if (grant->not_after <= grant->not_before)
		pg_diag_error_at(diag, node, "not_after must be later than not_before");
	else if (grant->not_after - grant->not_before > max_lifetime)
		pg_diag_error_at(diag, node, "the grant lasts %ld hours; the policy allows at most %ld "
		                 "(grants.max_lifetime)", (long)(grant->not_after - grant->not_before + 3599) / 3600,
		                 max_lifetime / 3600);
}

struct pg_grant *
pg_grant_parse(const char *path, const char *data, size_t len, long max_lifetime,
               pg_diag_fn fn, void *ctx)
{
	struct pg_diag diag = { .file = path, .fn = fn, .ctx = ctx };
	struct pg_grant *grant = calloc(1, sizeof *grant);
	struct pg_ynode *root = NULL;
	const struct pg_ynode *node;
	bool ok = false;

	if (grant == NULL || !pg_sha256(data, len, grant->sha256)) {
		pg_diag_error(&diag, 0, 0, "out of memory reading %s", path);
		goto out;
	}
	if (len > PG_GRANT_MAX_BYTES) {
		pg_diag_error(&diag, 0, 0, "%s is larger than %u bytes; is it a grant?", path,
		              PG_GRANT_MAX_BYTES);
		goto out;
	}
	if ((root = pg_ytree_parse(data, len, &diag)) == NULL ||
	    !pg_yexpect(&diag, root, PG_Y_MAP, "the grant"))
		goto out;
	pg_ymap_check_keys(&diag, root, grant_fields, "the grant");
	node = pg_ymap_get(root, "grant");
	if (node == NULL)
		pg_diag_error_at(&diag, root, "no grant version; start the file with 'grant: 1'");
	else if (node->kind != PG_Y_SCALAR || strcmp(node->value, "1") != 0)
		pg_diag_error_at(&diag, node, "grant must be 1 (the only grant version this p11gate "
		                 "reads)");
	grant->id = dup_string(&diag, root, "id");
	grant->key = dup_string(&diag, root, "key");
	if (!parse_requester(&diag, root, grant)) {
		pg_diag_error_at(&diag, root, "out of memory");
		goto out;
	}
	grant->reason = dup_string(&diag, root, "reason");
	parse_time(&diag, root, "not_before", &grant->not_before);
	parse_time(&diag, root, "not_after", &grant->not_after);
	if ((node = pg_ymap_get(root, "max_signatures")) != NULL)
		parse_max_signatures(&diag, node, &grant->max_signatures);
	if ((node = pg_ymap_get(root, "data_sha256")) != NULL && !parse_data(&diag, node, grant)) {
		pg_diag_error_at(&diag, node, "out of memory");
		goto out;
	}
	check_id(&diag, root, grant, path);
	check_window(&diag, root, grant, max_lifetime);
	ok = diag.errors == 0;
out:
	pg_ytree_free(root);
	if (!ok) {
		pg_grant_free(grant);
		grant = NULL;
	}
	return grant;
}
