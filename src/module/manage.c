/* SPDX-License-Identifier: Apache-2.0
 *
 * One-shot calls p11gate judges: those that use a named or private key in
 * a single call (derive, unwrap, wrap, and the inits of encryption and
 * verification), and those that change, create, copy, destroy or export
 * an object the policy names (`manage`), so that no call sequence can
 * make a key the policy refuses pass as one it allows.  Also the session
 * bookkeeping and the calls refused outright: those no policy operation
 * covers.
 */
#include "gate.h"
#include "p11gate/common.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The call's own objects (at most 3) and the named keys beside them. */
#define MAX_SUBJECTS 12

/* One judgement inside a one-shot call. */
struct subject {
	struct pg_keyinfo key;
	enum pg_op op;
	bool has_mechanism;
	CK_MECHANISM_TYPE mechanism;
	bool always;                    /* a key use: judged even if the policy does not name the key */
	unsigned char data_sha256[32];
	bool has_data;
	CK_OBJECT_HANDLE handle;        /* the object; CK_INVALID_HANDLE for one not made yet */
};

struct one_shot {
	const char *function;
	bool changes_objects;           /* forget memoised identities afterwards */
	struct subject subjects[MAX_SUBJECTS];
	size_t n;
};

static struct pg_judge_call
subject_call(const struct one_shot *shot, const struct subject *s)
{
	return (struct pg_judge_call){
		.function = shot->function,
		.op = s->op,
		.has_mechanism = s->has_mechanism,
		.mechanism = s->mechanism,
		.key = &s->key,
		.record_allow = true,
		.data_sha256 = s->has_data ? s->data_sha256 : NULL,
	};
}

/* Judges every subject that needs it, forwards, records the results. */
static CK_RV
judge_one_shot(const struct one_shot *shot, CK_RV (*forward)(const pg_function_list_3_0 *, const void *),
               const void *args)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct pg_regime *regime = pg_ctx_regime();
	struct pg_verdict verdicts[MAX_SUBJECTS];
	uint64_t seq[MAX_SUBJECTS];
	bool judged[MAX_SUBJECTS] = { false };
	CK_RV rv = CKR_OK;

	if (lower == NULL || regime == NULL) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
		goto out;
	}
	/* Decide every subject first: a call refused for one of them leaves
	 * one deny record, and no allow record for a change never made. */
	for (size_t i = 0; i < shot->n; i++) {
		struct pg_judge_call call = subject_call(shot, &shot->subjects[i]);

		if (!shot->subjects[i].always && !pg_judge_governed(regime, &shot->subjects[i].key))
			continue;
		pg_judge_decide(regime, &call, &verdicts[i]);
		judged[i] = true;
		if (!verdicts[i].decision.allow) {
			rv = pg_judge_record(regime, &call, &verdicts[i], NULL);
			goto out;
		}
	}
	for (size_t i = 0; i < shot->n; i++) {
		struct pg_judge_call call = subject_call(shot, &shot->subjects[i]);

		if (judged[i] && (rv = pg_judge_record(regime, &call, &verdicts[i], &seq[i])) != CKR_OK)
			goto out;      /* the log failed: nothing reached the token */
	}
	rv = forward(lower, args);
	if (shot->changes_objects)
		pg_ctx_objects_changed();
	for (size_t i = 0; i < shot->n; i++) {
		struct pg_judge_call call = subject_call(shot, &shot->subjects[i]);

		if (judged[i])
			rv = pg_judge_result(regime, &call, seq[i], rv, NULL, 0);
	}
out:
	pg_regime_unref(regime);
	return rv;
}

static CK_RV
add_object(struct one_shot *shot, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, enum pg_op op)
{
	struct subject *s = &shot->subjects[shot->n];
	CK_RV rv = pg_ctx_keyinfo(session, object, &s->key);

	if (rv != CKR_OK)
		return rv;
	s->op = op;
	s->handle = object;
	shot->n++;
	return CKR_OK;
}

static CK_RV
add_template(struct one_shot *shot, CK_SESSION_HANDLE session, const CK_ATTRIBUTE *templ, CK_ULONG count)
{
	struct subject *s = &shot->subjects[shot->n];
	CK_RV rv;

	if (templ == NULL && count > 0)
		return CKR_ARGUMENTS_BAD;
	rv = pg_keyinfo_from_template(pg_lower_2_40(pg_ctx_lower()), session, templ, count, &s->key);
	if (rv != CKR_OK)
		return rv;
	s->op = PG_OP_MANAGE;
	shot->n++;
	return CKR_OK;
}

/* The object as it will be after templ is applied (copy, set). */
static void
add_changed(struct one_shot *shot, const CK_ATTRIBUTE *templ, CK_ULONG count)
{
	struct subject *s = &shot->subjects[shot->n];

	*s = shot->subjects[shot->n - 1];
	pg_keyinfo_copy(&s->key, &shot->subjects[shot->n - 1].key);
	pg_keyinfo_apply(&s->key, templ, count);
	shot->n++;
}

/* ---- objects beside a named key ------------------------------------------------ */

static bool
has_handle(const struct one_shot *shot, CK_OBJECT_HANDLE handle)
{
	for (size_t i = 0; i < shot->n; i++) {
		if (shot->subjects[i].handle == handle)
			return true;
	}
	return false;
}

/* The keys on the token with this id or label (value): malloc'd in *out. */
static CK_RV
find_keys(const struct pg_keyinfo *object, const CK_ATTRIBUTE *value, CK_OBJECT_HANDLE **out,
          CK_ULONG *n)
{
	CK_ULONG max = 64;
	CK_RV rv;

	for (;;) {
		CK_OBJECT_HANDLE *more = realloc(*out, max * sizeof **out);

		if (more == NULL)
			return CKR_HOST_MEMORY;
		*out = more;
		rv = pg_keyinfo_find_keys(pg_lower_2_40(pg_ctx_lower()), object->slot, value->type,
		                          value->pValue, value->ulValueLen, *out, max, n);
		if (rv != CKR_BUFFER_TOO_SMALL || max >= 65536)
			return rv;
		max *= 4;
	}
}

/* Whether a key beside the object names the same policy keys as one
 * already added: then it is judged the same, and once is enough. */
static bool
same_names_added(const struct one_shot *shot, size_t from, const struct pg_regime *regime,
                 const struct pg_key_match *match)
{
	for (size_t i = from; i < shot->n; i++) {
		struct pg_key_facts facts;
		struct pg_key_match m;

		pg_keyinfo_facts(&shot->subjects[i].key, &facts);
		pg_policy_match_key(regime->policy, &facts, &m);
		if (m.n == match->n && m.pin_mismatch == match->pin_mismatch &&
		    memcmp(m.idx, match->idx, m.n * sizeof m.idx[0]) == 0)
			return true;
	}
	return false;
}

/* Adds `manage` on the keys the policy names that carry this id or label
 * (value) of a subject object: one judgement per set of policy keys such
 * objects match (a token may hold many keys with one label). */
static CK_RV
add_keys_with(struct one_shot *shot, CK_SESSION_HANDLE session, struct pg_regime *regime,
              size_t own, const struct pg_keyinfo *object, const CK_ATTRIBUTE *value)
{
	CK_OBJECT_HANDLE *found = NULL;
	CK_ULONG n = 0;
	CK_RV rv = find_keys(object, value, &found, &n);

	if (rv == CKR_BUFFER_TOO_SMALL)
		rv = pg_judge_refuse(regime, shot->function, "more keys share the object's id or "
		                     "label than p11gate can judge");
	for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
		struct pg_keyinfo key;
		struct pg_key_facts facts;
		struct pg_key_match match;

		if (has_handle(shot, found[i]))
			continue;
		rv = pg_keyinfo_read_beside(pg_lower_2_40(pg_ctx_lower()), session, found[i], object,
		                            &key);
		if (rv == CKR_OBJECT_HANDLE_INVALID) {
			rv = CKR_OK;        /* destroyed meanwhile: nothing beside it any more */
			continue;
		}
		if (rv != CKR_OK)
			break;
		pg_keyinfo_facts(&key, &facts);
		pg_policy_match_key(regime->policy, &facts, &match);
		if ((match.n == 0 && match.pin_mismatch < 0) || same_names_added(shot, own, regime, &match))
			continue;
		if (shot->n == MAX_SUBJECTS) {
			rv = pg_judge_refuse(regime, shot->function, "the keys beside the object have more "
			                     "names in the policy than p11gate can judge at once");
			break;
		}
		pg_keyinfo_copy(&shot->subjects[shot->n].key, &key);
		shot->subjects[shot->n].op = PG_OP_MANAGE;
		shot->subjects[shot->n].handle = found[i];
		shot->n++;
	}
	free(found);
	return rv;
}

/* Whether an existing object is where an EC key's public key may come
 * from: a token public key or certificate with a CKA_ID.  Unknown counts
 * as one. */
static bool
pin_source(CK_SESSION_HANDLE session, const struct subject *s)
{
	CK_BBOOL token = CK_TRUE;
	CK_ATTRIBUTE a = { CKA_TOKEN, &token, sizeof token };

	if (s->handle == CK_INVALID_HANDLE || (s->key.cls != CKO_PUBLIC_KEY && s->key.cls != CKO_CERTIFICATE) ||
	    s->key.attrs[2].ulValueLen == CK_UNAVAILABLE_INFORMATION || s->key.attrs[2].ulValueLen == 0)
		return false;
	return pg_ctx_lower()->C_GetAttributeValue(session, s->handle, &a, 1) != CKR_OK ||
	       a.ulValueLen != sizeof token || token != CK_FALSE;
}

/* Objects beside a named key are part of it.  Clients take a public key,
 * certificate or data object with a key's CKA_ID or label for the key's
 * own, and an EC key's public key is read from them; so creating,
 * changing or destroying any object that carries (before or after the
 * change) the id or label of a key the policy names is `manage` on that
 * key.  p11gate finds those keys on the token.  A session that is not
 * logged in cannot see private keys: what it makes beside one cannot be
 * judged (and cannot make the key fail its pin, see keyinfo.c), but it
 * must not change or remove a token public key or certificate that may be
 * a key's only public half, so that is refused there. */
static CK_RV
add_keys_beside(struct one_shot *shot, CK_SESSION_HANDLE session)
{
	struct pg_regime *regime = pg_ctx_regime();
	size_t own = shot->n;
	CK_SESSION_INFO info;
	bool logged_in;
	CK_RV rv;

	if (regime == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	rv = pg_ctx_lower()->C_GetSessionInfo(session, &info);
	logged_in = info.state == CKS_RO_USER_FUNCTIONS || info.state == CKS_RW_USER_FUNCTIONS;
	for (size_t i = 0; rv == CKR_OK && i < own; i++) {
		/* Copied: adding subjects must not move what is searched for. */
		struct pg_keyinfo object;

		if (shot->subjects[i].op != PG_OP_MANAGE || shot->subjects[i].always)
			continue;
		if (!logged_in && pin_source(session, &shot->subjects[i])) {
			rv = pg_judge_refuse(regime, shot->function,
			                     "the session is not logged in, so p11gate cannot see the "
			                     "token's private keys to tell whether this public key or "
			                     "certificate is a policy key's: log in first");
			break;
		}
		pg_keyinfo_copy(&object, &shot->subjects[i].key);
		for (size_t a = 2; rv == CKR_OK && a < 4; a++) {     /* CKA_ID, CKA_LABEL */
			const CK_ATTRIBUTE *value = &object.attrs[a];

			if (value->ulValueLen != CK_UNAVAILABLE_INFORMATION && value->ulValueLen > 0)
				rv = add_keys_with(shot, session, regime, own, &object, value);
		}
	}
	pg_regime_unref(regime);
	return rv;
}

/* A call that makes, changes or destroys objects: judged for its own
 * objects and for the named keys beside them. */
static CK_RV
judge_change(struct one_shot *shot, CK_SESSION_HANDLE session,
             CK_RV (*forward)(const pg_function_list_3_0 *, const void *), const void *args)
{
	CK_RV rv = add_keys_beside(shot, session);

	return rv != CKR_OK ? rv : judge_one_shot(shot, forward, args);
}

/* A key use in one call: judged when the policy names the key, whatever
 * its class, and always if the key is private (unnamed, it is refused).
 * A private key's raw transformation is judged as sign (gate.h). */
static CK_RV
add_key_use(struct one_shot *shot, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, enum pg_op op,
            const CK_MECHANISM *mechanism, const void *data, size_t data_len)
{
	struct subject *s = &shot->subjects[shot->n];
	CK_RV rv = add_object(shot, session, key, op);

	if (rv != CKR_OK)
		return rv;
	s->always = s->key.cls == CKO_PRIVATE_KEY;
	if (mechanism != NULL)
		s->op = pg_gate_private_op(op, &s->key, mechanism->mechanism);
	s->has_mechanism = mechanism != NULL;
	s->mechanism = mechanism != NULL ? mechanism->mechanism : 0;
	s->has_data = data != NULL && pg_sha256(data, data_len, s->data_sha256);
	return CKR_OK;
}

#define FORWARD(name, ...)                                                              \
	static CK_RV fwd_##name(const pg_function_list_3_0 *lower, const void *args)    \
	{                                                                               \
		const struct name##_args *a = args;                                     \
		return lower->name(__VA_ARGS__);                                        \
	}

/* ---- encryption, verification, digests of keys; private-key uses refused ------- */

/* Encrypting or wrapping with a private key is, with raw RSA, a signature
 * of any block the caller chooses; digesting one hashes its secret value.
 * The spec gives none of these to private keys and no client asks for
 * them, so a token that allows them must not be a way around the policy:
 * refused whatever the policy says, with a deny record naming the key.
 * CKR_OK: key is not a private key, go on.  A handle that names no object
 * is answered with invalid_rv, the call's own code for it. */
static CK_RV
forbid_private_use(const char *function, enum pg_op op, CK_SESSION_HANDLE session,
                   const CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key, CK_RV invalid_rv)
{
	struct pg_regime *regime = NULL;
	struct pg_keyinfo info;
	struct pg_judge_call call;
	char reason[160];
	CK_RV rv;

	rv = pg_ctx_keyinfo(session, key, &info);
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		rv = invalid_rv;
	if (rv != CKR_OK || info.cls != CKO_PRIVATE_KEY)
		goto out;
	regime = pg_ctx_regime();
	if (regime == NULL) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
		goto out;
	}
	call = (struct pg_judge_call){
		.function = function, .op = op, .key = &info,
		.has_mechanism = mechanism != NULL, .mechanism = mechanism ? mechanism->mechanism : 0,
	};
	snprintf(reason, sizeof reason, "%s with a private key is refused whatever the policy says%s",
	         function, op == PG_OP_SIGN ? " (with raw RSA it signs any block): use C_SignInit" : "");
	rv = pg_judge_forbid(regime, &call, reason);
out:
	pg_regime_unref(regime);
	return rv;
}

/* Encryption and verification: judged and recorded at the init when the
 * key is named (or private), then forwarded (gate.h: pg_gate_use_at_init).
 * A named secret key encrypts the caller's blocks (AES-ECB of a chosen
 * block is a CMAC step) and verifies MACs (with a MAC length the caller
 * chooses, a MAC can be found byte by byte): its use is the policy's. */
static CK_RV
use_init(const char *function, enum pg_op op, pg_init_fn lower_init, CK_SESSION_HANDLE session,
         CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	struct pg_mechanism_copy mech = { .heap = NULL };
	struct pg_keyinfo info;
	struct pg_judge_call call;
	CK_RV rv;

	if (pg_ctx_lower() == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (lower_init == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (mechanism == NULL)          /* a 3.0 cancel */
		return lower_init(session, mechanism, key);
	if (op == PG_OP_ENCRYPT) {
		rv = forbid_private_use(function, PG_OP_SIGN, session, mechanism, key,
		                        CKR_OBJECT_HANDLE_INVALID);
		if (rv != CKR_OK)
			return rv;
	}
	/* A handle that names no object: the token's own answer (gate.c). */
	rv = pg_mechanism_copy_init(&mech, mechanism);
	if (rv == CKR_OK)
		rv = pg_ctx_keyinfo(session, key, &info);
	if (rv != CKR_OK)
		goto out;
	call = (struct pg_judge_call){
		.function = function, .op = op, .key = &info,
		.has_mechanism = true, .mechanism = mech.m.mechanism,
	};
	rv = pg_gate_use_at_init(&call, lower_init, session, &mech.m, key);
out:
	pg_mechanism_copy_release(&mech);
	return rv;
}

CK_RV
pg_hook_C_EncryptInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();

	return use_init("C_EncryptInit", PG_OP_ENCRYPT, lower ? lower->C_EncryptInit : NULL,
	                session, mechanism, key);
}

CK_RV
pg_hook_C_MessageEncryptInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();

	return use_init("C_MessageEncryptInit", PG_OP_ENCRYPT, lower ? lower->C_MessageEncryptInit : NULL,
	                session, mechanism, key);
}

CK_RV
pg_hook_C_VerifyInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();

	return use_init("C_VerifyInit", PG_OP_VERIFY, lower ? lower->C_VerifyInit : NULL,
	                session, mechanism, key);
}

CK_RV
pg_hook_C_VerifyRecoverInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();

	if (lower != NULL && pg_lower_lacks(lower, PG_PROBE_VERIFY_RECOVER, session))
		return pg_lower_unsupported(lower, session);
	return use_init("C_VerifyRecoverInit", PG_OP_VERIFY, lower ? lower->C_VerifyRecoverInit : NULL,
	                session, mechanism, key);
}

CK_RV
pg_hook_C_MessageVerifyInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();

	return use_init("C_MessageVerifyInit", PG_OP_VERIFY, lower ? lower->C_MessageVerifyInit : NULL,
	                session, mechanism, key);
}

struct C_DigestKey_args { CK_SESSION_HANDLE s; CK_OBJECT_HANDLE k; };
FORWARD(C_DigestKey, a->s, a->k)

/* A digest of a key is a function of its secret value (of a long HMAC
 * key, the HMAC key itself): of a named key it is `manage`. */
CK_RV
pg_hook_C_DigestKey(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key)
{
	const struct C_DigestKey_args a = { session, key };
	struct one_shot shot = { .function = "C_DigestKey" };
	CK_RV rv;

	if (pg_ctx_lower() == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	rv = forbid_private_use("C_DigestKey", PG_OP_MANAGE, session, NULL, key, CKR_KEY_HANDLE_INVALID);
	if (rv == CKR_OK)
		rv = add_object(&shot, session, key, PG_OP_MANAGE);
	return rv != CKR_OK ? rv : judge_one_shot(&shot, fwd_C_DigestKey, &a);
}

/* ---- objects -------------------------------------------------------------- */

struct C_CreateObject_args { CK_SESSION_HANDLE s; CK_ATTRIBUTE_PTR t; CK_ULONG n; CK_OBJECT_HANDLE_PTR o; };
FORWARD(C_CreateObject, a->s, a->t, a->n, a->o)

CK_RV
pg_hook_C_CreateObject(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                       CK_OBJECT_HANDLE_PTR object)
{
	const struct C_CreateObject_args a = { session, templ, count, object };
	struct one_shot shot = { .function = "C_CreateObject", .changes_objects = true };
	CK_RV rv;

	if (pg_ctx_lower() == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	rv = add_template(&shot, session, templ, count);
	return rv != CKR_OK ? rv : judge_change(&shot, session, fwd_C_CreateObject, &a);
}

struct C_CopyObject_args { CK_SESSION_HANDLE s; CK_OBJECT_HANDLE o; CK_ATTRIBUTE_PTR t; CK_ULONG n; CK_OBJECT_HANDLE_PTR r; };
FORWARD(C_CopyObject, a->s, a->o, a->t, a->n, a->r)

CK_RV
pg_hook_C_CopyObject(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR templ,
                     CK_ULONG count, CK_OBJECT_HANDLE_PTR new_object)
{
	const struct C_CopyObject_args a = { session, object, templ, count, new_object };
	struct one_shot shot = { .function = "C_CopyObject", .changes_objects = true };
	CK_RV rv;

	if (pg_ctx_lower() == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (templ == NULL && count > 0)
		return CKR_ARGUMENTS_BAD;
	rv = add_object(&shot, session, object, PG_OP_MANAGE);
	if (rv != CKR_OK)
		return rv;
	add_changed(&shot, templ, count);
	return judge_change(&shot, session, fwd_C_CopyObject, &a);
}

struct C_SetAttributeValue_args { CK_SESSION_HANDLE s; CK_OBJECT_HANDLE o; CK_ATTRIBUTE_PTR t; CK_ULONG n; };
FORWARD(C_SetAttributeValue, a->s, a->o, a->t, a->n)

/* Renaming counts as a change of what the object was and of what it
 * becomes: both are judged when the policy names either. */
CK_RV
pg_hook_C_SetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                            CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	const struct C_SetAttributeValue_args a = { session, object, templ, count };
	struct one_shot shot = { .function = "C_SetAttributeValue", .changes_objects = true };
	CK_RV rv;

	if (pg_ctx_lower() == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (templ == NULL && count > 0)
		return CKR_ARGUMENTS_BAD;
	rv = add_object(&shot, session, object, PG_OP_MANAGE);
	if (rv != CKR_OK)
		return rv;
	add_changed(&shot, templ, count);
	return judge_change(&shot, session, fwd_C_SetAttributeValue, &a);
}

struct C_DestroyObject_args { CK_SESSION_HANDLE s; CK_OBJECT_HANDLE o; };
FORWARD(C_DestroyObject, a->s, a->o)

CK_RV
pg_hook_C_DestroyObject(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
	const struct C_DestroyObject_args a = { session, object };
	struct one_shot shot = { .function = "C_DestroyObject", .changes_objects = true };
	CK_RV rv;

	if (pg_ctx_lower() == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	rv = add_object(&shot, session, object, PG_OP_MANAGE);
	return rv != CKR_OK ? rv : judge_change(&shot, session, fwd_C_DestroyObject, &a);
}

/* Reading a private or secret key's value is taking the key. */
static bool
asks_secret(const CK_ATTRIBUTE *templ, CK_ULONG count)
{
	static const CK_ATTRIBUTE_TYPE secret[] = {
		CKA_VALUE, CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2,
		CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT,
	};

	for (CK_ULONG i = 0; templ != NULL && i < count; i++) {
		for (size_t j = 0; j < sizeof secret / sizeof secret[0]; j++) {
			if (templ[i].type == secret[j])
				return true;
		}
	}
	return false;
}

/* A sensitive key's secret parts are refused by the token itself
 * (CKR_ATTRIBUTE_SENSITIVE): only a key whose value can be read is
 * p11gate's to judge here (wrapping is judged in C_WrapKey).  Unknown
 * counts as readable. */
static bool
readable(const pg_function_list_3_0 *lower, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
	CK_BBOOL sensitive = CK_FALSE;
	CK_ATTRIBUTE a = { CKA_SENSITIVE, &sensitive, sizeof sensitive };

	return lower->C_GetAttributeValue(session, object, &a, 1) != CKR_OK ||
	       a.ulValueLen != sizeof sensitive || sensitive != CK_TRUE;
}

struct C_GetAttributeValue_args { CK_SESSION_HANDLE s; CK_OBJECT_HANDLE o; CK_ATTRIBUTE_PTR t; CK_ULONG n; };
FORWARD(C_GetAttributeValue, a->s, a->o, a->t, a->n)

CK_RV
pg_hook_C_GetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                            CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	const struct C_GetAttributeValue_args a = { session, object, templ, count };
	struct one_shot shot = { .function = "C_GetAttributeValue" };
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (!asks_secret(templ, count) || !readable(lower, session, object))
		return lower->C_GetAttributeValue(session, object, templ, count);
	rv = add_object(&shot, session, object, PG_OP_MANAGE);
	if (rv != CKR_OK)
		return rv;
	if (shot.subjects[0].key.cls != CKO_PRIVATE_KEY && shot.subjects[0].key.cls != CKO_SECRET_KEY)
		return lower->C_GetAttributeValue(session, object, templ, count);
	return judge_one_shot(&shot, fwd_C_GetAttributeValue, &a);
}

/* ---- keys made, wrapped, unwrapped, derived -------------------------------------- */

struct C_GenerateKey_args { CK_SESSION_HANDLE s; CK_MECHANISM_PTR m; CK_ATTRIBUTE_PTR t; CK_ULONG n; CK_OBJECT_HANDLE_PTR k; };
FORWARD(C_GenerateKey, a->s, a->m, a->t, a->n, a->k)

CK_RV
pg_hook_C_GenerateKey(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_ATTRIBUTE_PTR templ,
                      CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
	const struct C_GenerateKey_args a = { session, mechanism, templ, count, key };
	struct one_shot shot = { .function = "C_GenerateKey", .changes_objects = true };
	CK_RV rv;

	if (pg_ctx_lower() == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	rv = add_template(&shot, session, templ, count);
	return rv != CKR_OK ? rv : judge_change(&shot, session, fwd_C_GenerateKey, &a);
}

struct C_GenerateKeyPair_args {
	CK_SESSION_HANDLE s; CK_MECHANISM_PTR m; CK_ATTRIBUTE_PTR pt; CK_ULONG pn;
	CK_ATTRIBUTE_PTR st; CK_ULONG sn; CK_OBJECT_HANDLE_PTR pk; CK_OBJECT_HANDLE_PTR sk;
};
FORWARD(C_GenerateKeyPair, a->s, a->m, a->pt, a->pn, a->st, a->sn, a->pk, a->sk)

CK_RV
pg_hook_C_GenerateKeyPair(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                          CK_ATTRIBUTE_PTR pub_templ, CK_ULONG pub_count,
                          CK_ATTRIBUTE_PTR priv_templ, CK_ULONG priv_count,
                          CK_OBJECT_HANDLE_PTR pub_key, CK_OBJECT_HANDLE_PTR priv_key)
{
	const struct C_GenerateKeyPair_args a = {
		session, mechanism, pub_templ, pub_count, priv_templ, priv_count, pub_key, priv_key,
	};
	struct one_shot shot = { .function = "C_GenerateKeyPair", .changes_objects = true };
	CK_RV rv;

	if (pg_ctx_lower() == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	rv = add_template(&shot, session, pub_templ, pub_count);
	if (rv == CKR_OK)
		rv = add_template(&shot, session, priv_templ, priv_count);
	return rv != CKR_OK ? rv : judge_change(&shot, session, fwd_C_GenerateKeyPair, &a);
}

struct C_WrapKey_args {
	CK_SESSION_HANDLE s; CK_MECHANISM_PTR m; CK_OBJECT_HANDLE w; CK_OBJECT_HANDLE k;
	CK_BYTE_PTR out; CK_ULONG_PTR out_len;
};
FORWARD(C_WrapKey, a->s, a->m, a->w, a->k, a->out, a->out_len)

/* Wrapping a key the policy names exports it: `manage`.  Wrapping with a
 * named key is `wrap` (with AES-ECB or AES-CBC it encrypts a chosen key
 * value); with a private key it is refused (forbid_private_use). */
CK_RV
pg_hook_C_WrapKey(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE wrapping_key,
                  CK_OBJECT_HANDLE key, CK_BYTE_PTR wrapped, CK_ULONG_PTR wrapped_len)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct one_shot shot = { .function = "C_WrapKey" };
	struct pg_mechanism_copy mech = { .heap = NULL };
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	rv = forbid_private_use("C_WrapKey", PG_OP_SIGN, session, mechanism, wrapping_key,
	                        CKR_WRAPPING_KEY_HANDLE_INVALID);
	if (rv != CKR_OK)
		return rv;
	if (wrapped == NULL || mechanism == NULL)   /* a length query exports nothing */
		return lower->C_WrapKey(session, mechanism, wrapping_key, key, wrapped, wrapped_len);
	rv = pg_mechanism_copy_init(&mech, mechanism);
	if (rv != CKR_OK)
		return rv;
	const struct C_WrapKey_args a = { session, &mech.m, wrapping_key, key, wrapped, wrapped_len };
	rv = add_key_use(&shot, session, wrapping_key, PG_OP_WRAP, &mech.m, NULL, 0);
	if (rv == CKR_OK)
		rv = add_object(&shot, session, key, PG_OP_MANAGE);
	if (rv == CKR_OK)
		rv = judge_one_shot(&shot, fwd_C_WrapKey, &a);
	pg_mechanism_copy_release(&mech);
	return rv;
}

struct C_UnwrapKey_args {
	CK_SESSION_HANDLE s; CK_MECHANISM_PTR m; CK_OBJECT_HANDLE u; CK_BYTE_PTR w; CK_ULONG wn;
	CK_ATTRIBUTE_PTR t; CK_ULONG n; CK_OBJECT_HANDLE_PTR k;
};
FORWARD(C_UnwrapKey, a->s, a->m, a->u, a->w, a->wn, a->t, a->n, a->k)

CK_RV
pg_hook_C_UnwrapKey(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                    CK_OBJECT_HANDLE unwrapping_key, CK_BYTE_PTR wrapped, CK_ULONG wrapped_len,
                    CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
	struct one_shot shot = { .function = "C_UnwrapKey", .changes_objects = true };
	struct pg_mechanism_copy mech = { .heap = NULL };
	CK_BYTE *blob = NULL;
	CK_RV rv;

	if (pg_ctx_lower() == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (mechanism == NULL || (wrapped == NULL && wrapped_len > 0))
		return CKR_ARGUMENTS_BAD;
	/* What is judged and recorded is what the token gets (gate.h). */
	rv = pg_mechanism_copy_init(&mech, mechanism);
	if (rv == CKR_OK && wrapped_len > 0 && (blob = malloc(wrapped_len)) == NULL)
		rv = CKR_HOST_MEMORY;
	if (rv != CKR_OK)
		goto out;
	if (wrapped_len > 0)
		memcpy(blob, wrapped, wrapped_len);
	const struct C_UnwrapKey_args a = {
		session, &mech.m, unwrapping_key, blob, wrapped_len, templ, count, key,
	};
	rv = add_key_use(&shot, session, unwrapping_key, PG_OP_UNWRAP, &mech.m, blob, wrapped_len);
	if (rv == CKR_OK)
		rv = add_template(&shot, session, templ, count);
	if (rv == CKR_OK)
		rv = judge_change(&shot, session, fwd_C_UnwrapKey, &a);
out:
	free(blob);
	pg_mechanism_copy_release(&mech);
	return rv;
}

/* The standard's CK_ECMQV_DERIVE_PARAMS and CK_X9_42_MQV_DERIVE_PARAMS
 * (CK_X9_42_DH2_DERIVE_PARAMS is the same without public_key), which
 * p11-kit's header lacks. */
struct hybrid_derive_params {
	CK_ULONG kdf;
	CK_ULONG other_len;
	CK_BYTE_PTR other_info;
	CK_ULONG public_len;
	CK_BYTE_PTR public_data;
	CK_ULONG private_len;
	CK_OBJECT_HANDLE private_key;
	CK_ULONG public_len2;
	CK_BYTE_PTR public_data2;
	CK_OBJECT_HANDLE public_key;
};

/* Keys a derivation's parameter names besides the base key: they are used
 * too (their values go into the new key).  A parameter of another size
 * than the standard's is the token's to refuse. */
static size_t
param_keys(const CK_MECHANISM *m, CK_OBJECT_HANDLE keys[2])
{
	struct hybrid_derive_params h;

	if (m->pParameter == NULL)
		return 0;
	switch (m->mechanism) {
	case CKM_CONCATENATE_BASE_AND_KEY:
		if (m->ulParameterLen != sizeof keys[0])
			return 0;
		memcpy(&keys[0], m->pParameter, sizeof keys[0]);
		return 1;
	case CKM_ECMQV_DERIVE:
	case CKM_X9_42_MQV_DERIVE:
		if (m->ulParameterLen != sizeof h)
			return 0;
		memcpy(&h, m->pParameter, sizeof h);
		keys[0] = h.private_key;
		keys[1] = h.public_key;
		return 2;
	case CKM_X9_42_DH_HYBRID_DERIVE:
		if (m->ulParameterLen != offsetof(struct hybrid_derive_params, public_key))
			return 0;
		memcpy(&h, m->pParameter, offsetof(struct hybrid_derive_params, public_key));
		keys[0] = h.private_key;
		return 1;
	default:
		return 0;
	}
}

struct C_DeriveKey_args {
	CK_SESSION_HANDLE s; CK_MECHANISM_PTR m; CK_OBJECT_HANDLE b; CK_ATTRIBUTE_PTR t; CK_ULONG n;
	CK_OBJECT_HANDLE_PTR k;
};
FORWARD(C_DeriveKey, a->s, a->m, a->b, a->t, a->n, a->k)

/* Derivation from a named or private key (ECDH; a secret key's
 * *_ENCRYPT_DATA encrypts the caller's data into the new key).  For ECDH
 * the data recorded is the peer's public value, copied with the mechanism
 * (gate.h) so that it is also what the token gets. */
CK_RV
pg_hook_C_DeriveKey(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE base_key,
                    CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
	struct one_shot shot = { .function = "C_DeriveKey", .changes_objects = true };
	struct pg_mechanism_copy mech = { .heap = NULL };
	CK_BYTE *public_data = NULL;
	CK_OBJECT_HANDLE other[2];
	size_t data_len = 0, n_other;
	CK_RV rv;

	if (pg_ctx_lower() == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (mechanism == NULL)
		return CKR_ARGUMENTS_BAD;
	rv = pg_mechanism_copy_init(&mech, mechanism);
	if (rv != CKR_OK)
		goto out;
	if (mech.m.mechanism == CKM_ECDH1_DERIVE && mech.m.pParameter != NULL &&
	    mech.m.ulParameterLen == sizeof(CK_ECDH1_DERIVE_PARAMS)) {
		CK_ECDH1_DERIVE_PARAMS *p = mech.m.pParameter;

		if (p->pPublicData != NULL && p->ulPublicDataLen > 0) {
			data_len = p->ulPublicDataLen;
			public_data = malloc(data_len);
			if (public_data == NULL) {
				rv = CKR_HOST_MEMORY;
				goto out;
			}
			memcpy(public_data, p->pPublicData, data_len);
			p->pPublicData = public_data;
		}
	}
	const struct C_DeriveKey_args a = { session, &mech.m, base_key, templ, count, key };
	rv = add_key_use(&shot, session, base_key, PG_OP_DERIVE, &mech.m, public_data, data_len);
	n_other = param_keys(&mech.m, other);
	for (size_t i = 0; rv == CKR_OK && i < n_other; i++)
		rv = add_key_use(&shot, session, other[i], PG_OP_DERIVE, &mech.m, NULL, 0);
	if (rv == CKR_OK)
		rv = add_template(&shot, session, templ, count);
	if (rv == CKR_OK)
		rv = judge_change(&shot, session, fwd_C_DeriveKey, &a);
out:
	free(public_data);
	pg_mechanism_copy_release(&mech);
	return rv;
}

/* ---- sessions ------------------------------------------------------------------- */

CK_RV
pg_hook_C_CloseSession(CK_SESSION_HANDLE session)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	rv = lower->C_CloseSession(session);
	if (rv == CKR_OK || rv == CKR_SESSION_HANDLE_INVALID)
		pg_ctx_session_drop(session);
	return rv;
}

CK_RV
pg_hook_C_CloseAllSessions(CK_SLOT_ID slot)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	rv = lower->C_CloseAllSessions(slot);
	pg_ctx_sessions_prune();
	return rv;
}

/* A saved state can carry a private-key operation started in another
 * session or process, which p11gate never judged: refused. */
CK_RV
pg_hook_C_SetOperationState(CK_SESSION_HANDLE session, CK_BYTE_PTR state, CK_ULONG state_len,
                            CK_OBJECT_HANDLE encryption_key, CK_OBJECT_HANDLE authentication_key)
{
	struct pg_regime *regime = pg_ctx_regime();
	CK_RV rv;

	if (regime == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	rv = pg_judge_refuse(regime, "C_SetOperationState",
	                     "a restored operation state may carry an operation p11gate never judged");
	pg_regime_unref(regime);
	return rv;
}
