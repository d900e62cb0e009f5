/* SPDX-License-Identifier: Apache-2.0
 *
 * The verified login identity (p11gate/login.h) as data: freeing it and
 * looking a claim up.  Apart from the verifier (src/login/), which parses
 * JSON, so that the policy can match identities without linking jansson.
 */
#include "p11gate/login.h"

#include <stdlib.h>
#include <string.h>

void
pg_login_id_free(struct pg_login_id *id)
{
	if (id == NULL)
		return;
	for (size_t i = 0; i < id->n_claims; i++) {
		free(id->claims[i].name);
		free(id->claims[i].value);
	}
	free(id->claims);
	free(id->issuer);
	free(id->credential);
	free(id->iss);
	free(id->sub);
	free(id->jti);
	free(id->kid);
	free(id);
}

const struct pg_login_claim *
pg_login_id_claim(const struct pg_login_id *id, const char *name)
{
	for (size_t i = 0; id != NULL && i < id->n_claims; i++) {
		if (strcmp(id->claims[i].name, name) == 0)
			return &id->claims[i];
	}
	return NULL;
}
