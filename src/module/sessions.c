/* SPDX-License-Identifier: Apache-2.0
 *
 * The session table: what p11gate remembers per session (session.h), in
 * hash buckets in the module context (context.h).  The table and each
 * entry's refs, dropped and opened fields are guarded by the context lock,
 * held only to find, link or unlink an entry; an entry's operations are
 * guarded by the entry's own lock, which a call holds from pg_ctx_session to
 * pg_ctx_session_put (a finer lock, so that one session's calls take turns
 * without holding up the others).  The context lock is never held while
 * waiting for an entry's lock.
 */
#include "context.h"
#include "session.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

void
pg_session_op_reset(struct pg_session_op *op)
{
	EVP_MD_CTX_free(op->md);
	OPENSSL_cleanse(op->data, sizeof op->data);
	memset(op, 0, sizeof *op);
}

static void
session_free(struct pg_session *session)
{
	for (int k = 0; k < PG_KIND_COUNT; k++)
		pg_session_op_reset(&session->ops[k]);
	pthread_mutex_destroy(&session->lock);
	free(session);
}

/* Unlinks session (context lock held); true if the caller must free it
 * now, false if a call holds it and will (pg_ctx_session_put). */
static bool
session_unlinked(struct pg_session *session)
{
	session->dropped = true;
	return session->refs == 0;
}

struct pg_session *
pg_ctx_session(CK_SESSION_HANDLE handle, bool create)
{
	struct pg_session **bucket, *session;

	pthread_mutex_lock(&pg_ctx.lock);
	bucket = &pg_ctx.sessions[handle % PG_SESSION_BUCKETS];
	for (session = *bucket; session != NULL; session = session->next) {
		if (session->handle == handle)
			break;
	}
	if (session == NULL && create && pg_ctx.initialized &&
	    (session = calloc(1, sizeof *session)) != NULL) {
		session->handle = handle;
		pthread_mutex_init(&session->lock, NULL);
		session->next = *bucket;
		*bucket = session;
	}
	if (session != NULL)
		session->refs++;
	pthread_mutex_unlock(&pg_ctx.lock);
	if (session != NULL)
		pthread_mutex_lock(&session->lock);
	return session;
}

void
pg_ctx_session_put(struct pg_session *session)
{
	bool gone;

	if (session == NULL)
		return;
	pthread_mutex_unlock(&session->lock);
	pthread_mutex_lock(&pg_ctx.lock);
	gone = --session->refs == 0 && session->dropped;
	pthread_mutex_unlock(&pg_ctx.lock);
	if (gone)
		session_free(session);
}

void
pg_ctx_session_drop(CK_SESSION_HANDLE handle)
{
	struct pg_session **link, *session = NULL;
	bool free_now = false;

	pthread_mutex_lock(&pg_ctx.lock);
	for (link = &pg_ctx.sessions[handle % PG_SESSION_BUCKETS]; *link != NULL; link = &(*link)->next) {
		if ((*link)->handle == handle) {
			session = *link;
			*link = session->next;
			free_now = session_unlinked(session);
			break;
		}
	}
	pthread_mutex_unlock(&pg_ctx.lock);
	if (free_now)
		session_free(session);
}

void
pg_ctx_session_opened(CK_SESSION_HANDLE handle, CK_SLOT_ID slot)
{
	struct pg_session *session = pg_ctx_session(handle, true);

	if (session == NULL)
		return;          /* out of memory: C_InitToken asks the token alone */
	session->opened = true;
	session->slot = slot;
	pg_ctx_session_put(session);
}

bool
pg_ctx_session_slot(CK_SESSION_HANDLE handle, CK_SLOT_ID *slot)
{
	bool known = false;

	pthread_mutex_lock(&pg_ctx.lock);
	for (const struct pg_session *s = pg_ctx.sessions[handle % PG_SESSION_BUCKETS]; s != NULL;
	     s = s->next) {
		if (s->handle == handle && s->opened && !s->dropped) {
			*slot = s->slot;
			known = true;
			break;
		}
	}
	pthread_mutex_unlock(&pg_ctx.lock);
	return known;
}

unsigned
pg_ctx_sessions_on(CK_SLOT_ID slot)
{
	unsigned n = 0;

	pthread_mutex_lock(&pg_ctx.lock);
	for (size_t b = 0; b < PG_SESSION_BUCKETS; b++) {
		for (struct pg_session *s = pg_ctx.sessions[b]; s != NULL; s = s->next)
			n += s->opened && !s->dropped && s->slot == slot;
	}
	pthread_mutex_unlock(&pg_ctx.lock);
	return n;
}

/* After C_CloseAllSessions(slot): drops the entries the module no longer
 * knows.  Every entry that may have been on that slot is asked about (one
 * opened elsewhere is not), however many the table holds, because
 * pg_ctx_session_slot trusts an opened entry's slot.  Without memory for
 * the list, those entries are only marked as not opened here, so their
 * slot is asked of the token again at each use. */
void
pg_ctx_sessions_prune(CK_SLOT_ID slot)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	CK_SESSION_HANDLE *ask = NULL;
	size_t n = 0, count = 0;

	if (lower == NULL)
		return;
	pthread_mutex_lock(&pg_ctx.lock);
	for (size_t b = 0; b < PG_SESSION_BUCKETS; b++) {
		for (const struct pg_session *s = pg_ctx.sessions[b]; s != NULL; s = s->next)
			count += !s->opened || s->slot == slot;
	}
	if (count > 0 && (ask = malloc(count * sizeof *ask)) == NULL) {
		for (size_t b = 0; b < PG_SESSION_BUCKETS; b++) {
			for (struct pg_session *s = pg_ctx.sessions[b]; s != NULL; s = s->next)
				s->opened = s->opened && s->slot != slot;
		}
	}
	for (size_t b = 0; ask != NULL && b < PG_SESSION_BUCKETS; b++) {
		for (const struct pg_session *s = pg_ctx.sessions[b]; s != NULL; s = s->next) {
			if (!s->opened || s->slot == slot)
				ask[n++] = s->handle;
		}
	}
	pthread_mutex_unlock(&pg_ctx.lock);
	for (size_t i = 0; i < n; i++) {
		CK_SESSION_INFO info;

		if (lower->C_GetSessionInfo(ask[i], &info) == CKR_SESSION_HANDLE_INVALID)
			pg_ctx_session_drop(ask[i]);
	}
	free(ask);
}

/* Context lock held.  (In a forked child, an entry a parent's thread held
 * is left unfreed: its lock is that thread's.) */
void
pg_sessions_release(void)
{
	for (size_t b = 0; b < PG_SESSION_BUCKETS; b++) {
		while (pg_ctx.sessions[b] != NULL) {
			struct pg_session *s = pg_ctx.sessions[b];
			pg_ctx.sessions[b] = s->next;
			if (session_unlinked(s))
				session_free(s);
		}
	}
}
