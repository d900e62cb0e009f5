/* SPDX-License-Identifier: Apache-2.0
 *
 * The key-identity memo: what the token said about an object (its names,
 * token and public key), per (slot, object handle), so that a signature
 * does not read the object from the token again.  The entries and the
 * objects' generation live in the module context (context.h) under its one
 * lock, held only to look up or store an entry: the token is read without it.
 * An entry also keeps the key's certificates, read once per policy regime.
 */
#include "context.h"
#include "p11gate/keyinfo.h"

#include <string.h>
#include <time.h>

static int64_t
monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The memo entry for (slot, object) in this generation, or -1.  Called
 * with the lock held. */
static int
memo_find(CK_SLOT_ID slot, CK_OBJECT_HANDLE object)
{
	struct pg_ctx_keys *keys = &pg_ctx.keys;

	for (int i = 0; i < PG_KEY_MEMO; i++) {
		if (keys->memo[i].used && keys->memo[i].slot == slot && keys->memo[i].handle == object &&
		    keys->memo[i].generation == keys->generation)
			return i;
	}
	return -1;
}

/* What a lookup found: nothing, the names to compare, or names young enough
 * to trust (the whole identity copied into *out). */
enum memo_hit { MEMO_NONE, MEMO_NAMES_OLD, MEMO_FRESH };

/* Looks (slot, object) up at now; *generation is the generation a later
 * store must still find.  Takes the lock. */
static enum memo_hit
memo_lookup(CK_SLOT_ID slot, CK_OBJECT_HANDLE object, int64_t now, uint64_t *generation,
            struct pg_keyinfo *out)
{
	const struct pg_regime *regime;
	enum memo_hit hit = MEMO_NONE;
	int64_t max_age;
	int i;

	pthread_mutex_lock(&pg_ctx.lock);
	regime = pg_ctx.regimes.current;
	max_age = regime != NULL ?
	          (int64_t)pg_policy_settings(regime->policy)->key_names_max_age_ms * 1000000 : 0;
	/* Taken before the token is read: what is read is stored only if no
	 * object changed through p11gate meanwhile. */
	*generation = pg_ctx.keys.generation;
	i = memo_find(slot, object);
	if (i >= 0 && now - pg_ctx.keys.memo[i].names_read < max_age) {
		pg_keyinfo_copy(out, &pg_ctx.keys.memo[i].info);
		hit = MEMO_FRESH;
	} else if (i >= 0) {
		hit = MEMO_NAMES_OLD;
	}
	pthread_mutex_unlock(&pg_ctx.lock);
	return hit;
}

/* The names just read into *out are the memo's: the rest is copied from it
 * and the names count as read at now.  Takes the lock. */
static bool
memo_same_names(CK_OBJECT_HANDLE object, int64_t now, uint64_t generation, struct pg_keyinfo *out)
{
	bool same;
	int i;

	pthread_mutex_lock(&pg_ctx.lock);
	i = generation == pg_ctx.keys.generation ? memo_find(out->slot, object) : -1;
	same = i >= 0 && pg_keyinfo_same_names(&pg_ctx.keys.memo[i].info, out);
	if (same) {
		pg_keyinfo_copy_rest(out, &pg_ctx.keys.memo[i].info);
		pg_ctx.keys.memo[i].names_read = now;
	}
	pthread_mutex_unlock(&pg_ctx.lock);
	return same;
}

/* A memoised identity on slot, for its token facts (any generation: they
 * are checked against the token before use); false if none.  Takes the
 * lock. */
static bool
memo_token(CK_SLOT_ID slot, struct pg_keyinfo *out)
{
	bool found = false;

	pthread_mutex_lock(&pg_ctx.lock);
	for (int i = 0; i < PG_KEY_MEMO && !found; i++) {
		if (pg_ctx.keys.memo[i].used && pg_ctx.keys.memo[i].slot == slot &&
		    pg_ctx.keys.memo[i].info.have_token) {
			pg_keyinfo_copy(out, &pg_ctx.keys.memo[i].info);
			found = true;
		}
	}
	pthread_mutex_unlock(&pg_ctx.lock);
	return found;
}

/* Stores info, read whole at now, unless an object changed meanwhile.
 * Takes the lock. */
static void
memo_store(CK_OBJECT_HANDLE object, int64_t now, uint64_t generation, const struct pg_keyinfo *info)
{
	struct pg_ctx_keys *keys = &pg_ctx.keys;
	int i;

	pthread_mutex_lock(&pg_ctx.lock);
	if (generation == keys->generation) {
		i = memo_find(info->slot, object);
		if (i < 0)
			i = (int)(keys->next++ % PG_KEY_MEMO);
		keys->memo[i].used = true;
		keys->memo[i].slot = info->slot;
		keys->memo[i].handle = object;
		keys->memo[i].generation = generation;
		keys->memo[i].names_read = now;
		keys->memo[i].certs_regime = 0;
		pg_keyinfo_copy(&keys->memo[i].info, info);
	}
	pthread_mutex_unlock(&pg_ctx.lock);
}

/* An object's identity, memoised per (slot, handle).  The key material
 * behind a handle never changes (PKCS#11 makes it read-only).  Its names
 * (label, id) change only by C_SetAttributeValue: through this p11gate the
 * change ends the memo at once (pg_ctx_objects_changed); through another
 * process's p11gate it was judged and logged there as `manage`, and is
 * seen here once the names are older than the policy's
 * key_names_max_age_ms.  Reading them at every use would cost a file read
 * per signature on SoftHSM2, which re-reads the object's file on every
 * attribute access: a third of an ECDSA signature.  The token information
 * and public-key hash (costly: certificates, other objects) are derived
 * again only when the names differ.  A new handle (a client that logs in
 * again gets new ones) takes the token's facts from another key on the
 * same token when one read of the token shows the same names: the settled
 * read's pauses (a millisecond or more) are paid once per token. */
CK_RV
pg_ctx_keyinfo(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, struct pg_keyinfo *out)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct pg_keyinfo neighbour;
	CK_SESSION_INFO session_info;
	CK_SLOT_ID slot;
	uint64_t generation;
	int64_t now;
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	/* The session's slot, from the table for a session opened through
	 * p11gate (the token's own checks follow in the call this one
	 * judges), else from the token, which proves the session open: a
	 * memo is never a way around the token's own checks. */
	if (!pg_ctx_session_slot(session, &slot)) {
		rv = lower->C_GetSessionInfo(session, &session_info);
		if (rv != CKR_OK)
			return rv;
		slot = session_info.slotID;
	}
	now = monotonic_ns();
	if (memo_lookup(slot, object, now, &generation, out) == MEMO_FRESH)
		return CKR_OK;
	rv = pg_keyinfo_read_names(pg_lower_2_40(lower), session, object, out);
	if (rv != CKR_OK || memo_same_names(object, now, generation, out))
		return rv;
	if (memo_token(out->slot, &neighbour) && pg_keyinfo_same_token(pg_lower_2_40(lower), &neighbour))
		rv = pg_keyinfo_read_rest_beside(pg_lower_2_40(lower), session, object, &neighbour, out);
	else
		rv = pg_keyinfo_read_rest(pg_lower_2_40(lower), session, object, out);
	if (rv == CKR_OK)
		memo_store(object, now, generation, out);
	return rv;
}

/* The certificates are facts about other objects than the key, which
 * another process can add or remove without p11gate here seeing it: they
 * are read again under each new regime (a policy reload), and at once
 * after an object changed through this p11gate (a new generation).  What
 * a stale view can miss is a certificate added since, and every
 * certificate of a key must pass (src/policy/lifecycle.c), so a planted
 * certificate can refuse a key but never make it usable. */
CK_RV
pg_ctx_key_certs(const struct pg_keyinfo *key, const unsigned char spki[32], uint64_t regime,
                 struct pg_key_certs *out)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	uint64_t generation;
	bool found = false;
	CK_RV rv;
	int i;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	pthread_mutex_lock(&pg_ctx.lock);
	generation = pg_ctx.keys.generation;
	i = memo_find(key->slot, key->handle);
	if (i >= 0 && pg_ctx.keys.memo[i].certs_regime == regime &&
	    memcmp(pg_ctx.keys.memo[i].certs_spki, spki, 32) == 0) {
		memcpy(out, &pg_ctx.keys.memo[i].certs, sizeof *out);
		found = true;
	}
	pthread_mutex_unlock(&pg_ctx.lock);
	if (found)
		return CKR_OK;
	rv = pg_keyinfo_read_certs(pg_lower_2_40(lower), key->slot, spki, out);
	if (rv != CKR_OK)
		return rv;
	pthread_mutex_lock(&pg_ctx.lock);
	i = generation == pg_ctx.keys.generation ? memo_find(key->slot, key->handle) : -1;
	if (i >= 0) {
		memcpy(&pg_ctx.keys.memo[i].certs, out, sizeof *out);
		memcpy(pg_ctx.keys.memo[i].certs_spki, spki, 32);
		pg_ctx.keys.memo[i].certs_regime = regime;
	}
	pthread_mutex_unlock(&pg_ctx.lock);
	return CKR_OK;
}

void
pg_ctx_objects_changed(void)
{
	pthread_mutex_lock(&pg_ctx.lock);
	pg_ctx.keys.generation++;
	pthread_mutex_unlock(&pg_ctx.lock);
}

/* Context lock held. */
void
pg_keymemo_release(void)
{
	memset(pg_ctx.keys.memo, 0, sizeof pg_ctx.keys.memo);
	pg_ctx.keys.generation++;
}
