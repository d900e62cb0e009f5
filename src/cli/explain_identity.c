/* SPDX-License-Identifier: Apache-2.0
 *
 * `p11gate explain --identity-token FILE | --claims JSON`: the pipeline
 * identity a hypothetical caller proved at C_Login (issue 13 item 5).  A
 * token is verified exactly as p11gate.so verifies it at login (the same
 * pg_jws_verify, the policy's issuers, the request's instant); claims given
 * as JSON are taken as if a token of the issuer naming that iss carried
 * them, and said to be unverified.
 */
#include "explain_identity.h"
#include "p11gate/common.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The token file's text, without the line end an editor or `jq -r` adds;
 * NULL with the reason printed. */
static char *
read_token(const char *path, size_t *len)
{
	bool not_regular = false;
	char *buf = NULL;
	ssize_t n;
	size_t got = 0;
	int fd;

	fd = pg_open_regular(path, &not_regular);
	if (fd < 0) {
		fprintf(stderr, "p11gate explain: --identity-token %s: %s\n", path,
		        not_regular ? "not a regular file" : strerror(errno));
		return NULL;
	}
	buf = malloc(PG_JWS_MAX + 2);
	if (buf == NULL) {
		fprintf(stderr, "p11gate explain: %s\n", strerror(ENOMEM));
		goto out;
	}
	while (got <= PG_JWS_MAX && (n = read(fd, buf + got, PG_JWS_MAX + 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "p11gate explain: --identity-token %s: %s\n", path,
			        strerror(errno));
			goto fail;
		}
		got += (size_t)n;
	}
	if (got > PG_JWS_MAX) {
		fprintf(stderr, "p11gate explain: --identity-token %s: longer than %d bytes, which "
		        "p11gate never takes as an identity token\n", path, PG_JWS_MAX);
		goto fail;
	}
	while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r' || buf[got - 1] == ' '))
		got--;
	buf[got] = '\0';
	*len = got;
	goto out;
fail:
	free(buf);
	buf = NULL;
out:
	close(fd);
	return buf;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* A pg_login_id from a JSON object of claims; NULL with the reason printed. */
static struct pg_login_id *
claims_to_id(const struct pg_login_config *login, const char *text)
{
	struct pg_login_id *id = NULL;
	json_error_t error;
	json_t *claims, *value;
	const char *name, *iss;
	size_t i = 0;

	claims = json_loads(text, JSON_REJECT_DUPLICATES, &error);
	if (!json_is_object(claims)) {
		fprintf(stderr, "p11gate explain: --claims wants a JSON object of claims, e.g. "
		        "'{\"iss\":\"https://token.actions.githubusercontent.com\","
		        "\"repository\":\"acme/app\"}'%s%s\n", claims == NULL ? ": " : "",
		        claims == NULL ? error.text : "");
		goto fail;
	}
	iss = json_string_value(json_object_get(claims, "iss"));
	for (size_t k = 0; iss != NULL && k < login->n_issuers; k++) {
		if (strcmp(login->issuers[k].iss, iss) == 0) {
			if ((id = calloc(1, sizeof *id)) == NULL ||
			    (id->issuer = strdup(login->issuers[k].name)) == NULL)
				goto oom;
			break;
		}
	}
	if (id == NULL) {
		fprintf(stderr, "p11gate explain: --claims: its iss must be one of the policy's "
		        "issuers:");
		for (size_t k = 0; k < login->n_issuers; k++)
			fprintf(stderr, " %s (%s)", login->issuers[k].iss, login->issuers[k].name);
		fprintf(stderr, "%s\n", login->n_issuers == 0 ? " (it has none: no login: issuers)" : "");
		goto fail;
	}
	id->claims = calloc(json_object_size(claims), sizeof *id->claims);
	if (id->claims == NULL && json_object_size(claims) > 0)
		goto oom;
	json_object_foreach(claims, name, value) {
		struct pg_login_claim *c = &id->claims[i++];

		id->n_claims = i;
		c->is_string = json_is_string(value);
		c->name = strdup(name);
		c->value = c->is_string ? strdup(json_string_value(value))
		                        : json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
		if (c->name == NULL || c->value == NULL)
			goto oom;
	}
	id->iss = dup_or_null(iss);
	id->sub = dup_or_null(json_string_value(json_object_get(claims, "sub")));
	id->jti = dup_or_null(json_string_value(json_object_get(claims, "jti")));
	if (json_is_integer(json_object_get(claims, "exp")))
		id->exp = json_integer_value(json_object_get(claims, "exp"));
	if (json_is_integer(json_object_get(claims, "iat")))
		id->iat = json_integer_value(json_object_get(claims, "iat"));
	json_decref(claims);
	return id;
oom:
	fprintf(stderr, "p11gate explain: %s\n", strerror(ENOMEM));
fail:
	pg_login_id_free(id);
	json_decref(claims);
	return NULL;
}

int
pg_explain_login_new(const pg_policy *policy, const char *token_file, const char *claims,
                     time_t now, struct pg_login_id **out, char *refused, size_t refused_len)
{
	const struct pg_login_config *login = pg_policy_login(policy);
	char *token = NULL;
	size_t len = 0;
	int status = 2;

	*out = NULL;
	refused[0] = '\0';
	if (login->n_issuers == 0) {
		fprintf(stderr, "p11gate explain: the policy has no login: issuers, so no identity "
		        "token or claims can be judged by it\n");
		goto out;
	}
	if (claims != NULL) {
		*out = claims_to_id(login, claims);
		status = *out != NULL ? 0 : 2;
		goto out;
	}
	token = read_token(token_file, &len);
	if (token == NULL)
		goto out;
	*out = pg_jws_verify(token, len, login->issuers, login->n_issuers, now, NULL, refused,
	                     refused_len);
	status = 0;
out:
	if (token != NULL) {
		/* A bearer credential: not left in freed memory. */
		memset(token, 0, len);
		free(token);
	}
	return status;
}

void
pg_explain_login_print(const struct pg_login_id *id, bool from_claims)
{
	char shown[512], when[32];
	struct tm tm;
	time_t exp = (time_t)id->exp;

	printf("identity: token of issuer %s", pg_esc(id->issuer, PG_ESC_TEXT, shown, sizeof shown));
	printf(", sub %s", id->sub ? pg_esc(id->sub, PG_ESC_VALUE, shown, sizeof shown) : "(none)");
	if (id->jti != NULL)
		printf(", jti %s", pg_esc(id->jti, PG_ESC_VALUE, shown, sizeof shown));
	if (id->exp != 0 && gmtime_r(&exp, &tm) != NULL) {
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf(", expires %s", when);
	}
	if (from_claims) {
		printf(" (claims as given, not verified)\n");
	} else {
		printf(" (verified: signature by key %s of its key set, iss, aud and times)\n",
		       id->kid ? pg_esc(id->kid, PG_ESC_VALUE, shown, sizeof shown) : "?");
	}
}
