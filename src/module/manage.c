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
	for (size_t i = 0; i < shot->n; i++) {
		if (judged[i])
			pg_verdict_release(&verdicts[i]);
	}
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

/* Whether key's public key is spki (any of an EC key's candidates). */
static bool
has_public_key(const struct pg_keyinfo *key, const unsigned char *spki)
{
	if (key->have_spki && memcmp(key->spki_sha256, spki, 32) == 0)
		return true;
	for (size_t i = 0; i < key->n_spki_candidates; i++) {
		if (memcmp(key->spki_candidates[i], spki, 32) == 0)
			return true;
	}
	return false;
}

/* Adds `manage` on the keys the policy names that carry this id or label
 * (value) of a subject object — or, value NULL, whose public key is the
 * object's (spki): one judgement per set of policy keys such objects match
 * (a token may hold many keys with one label). */
static CK_RV
add_keys_with(struct one_shot *shot, CK_SESSION_HANDLE session, struct pg_regime *regime,
              size_t own, const struct pg_keyinfo *object, const CK_ATTRIBUTE *value,
              const unsigned char *spki)
{
	CK_OBJECT_HANDLE *found = NULL;
	CK_ULONG n = 0;
	const CK_ATTRIBUTE every_key = { CKA_CLASS, NULL, 0 };
	CK_RV rv = find_keys(object, value != NULL ? value : &every_key, &found, &n);

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
		if (spki != NULL && !has_public_key(&key, spki))
			continue;
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

/* A certificate carrying the public key of a key whose certificates are
 * checked at signing (certificate: and a pin) is one of that key's
 * certificates, whatever its id and label: making, changing or destroying
 * it is `manage` on the key, so a caller without that right cannot refuse
 * the key by planting an expired certificate for it (src/policy/lifecycle.c:
 * every certificate of the key must pass).  A session that is not logged
 * in cannot see the key to judge it: refused there. */
static CK_RV
add_keys_certified(struct one_shot *shot, CK_SESSION_HANDLE session, struct pg_regime *regime,
                   size_t own, const struct pg_keyinfo *object, bool logged_in)
{
	char why[256];
	int key;

	if (object->cls != CKO_CERTIFICATE || !object->have_spki ||
	    (key = pg_policy_cert_key(regime->policy, object->spki_sha256)) < 0)
		return CKR_OK;
	if (logged_in)
		return add_keys_with(shot, session, regime, own, object, NULL, object->spki_sha256);
	snprintf(why, sizeof why, "the certificate carries the public key of key %s, whose "
	         "certificates are checked at signing, and the session is not logged in, so p11gate "
	         "cannot see the key to judge it: log in first",
	         pg_policy_key_name(regime->policy, (unsigned)key));
	return pg_judge_refuse(regime, shot->function, why);
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
				rv = add_keys_with(shot, session, regime, own, &object, value, NULL);
		}
		if (rv == CKR_OK)
			rv = add_keys_certified(shot, session, regime, own, &object, logged_in);
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
use_init(enum pg_op op, const struct pg_init_call *init)
{
	struct pg_mechanism_copy mech = { .heap = NULL };
	struct pg_keyinfo info;
	struct pg_judge_call call;
	CK_RV rv;

	if (init->lower_init == NULL)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (init->mechanism == NULL)          /* a 3.0 cancel */
		return init->lower_init(init->session, NULL, init->key);
	if (op == PG_OP_ENCRYPT) {
		rv = forbid_private_use(init->function, PG_OP_SIGN, init->session, init->mechanism,
		                        init->key, CKR_OBJECT_HANDLE_INVALID);
		if (rv != CKR_OK)
			return rv;
	}
	/* A handle that names no object: the token's own answer (gate.c). */
	rv = pg_mechanism_copy_init(&mech, init->mechanism);
	if (rv == CKR_OK)
		rv = pg_ctx_keyinfo(init->session, init->key, &info);
	if (rv != CKR_OK)
		goto out;
	call = (struct pg_judge_call){
		.function = init->function, .op = op, .key = &info,
		.has_mechanism = true, .mechanism = mech.m.mechanism,
	};
	rv = pg_gate_use_at_init(&call, init, &mech.m);
out:
	pg_mechanism_copy_release(&mech);
	return rv;
}

CK_RV
pg_gate_C_EncryptInit(const pg_args_C_EncryptInit *a)
{
	return use_init(PG_OP_ENCRYPT, a);
}

CK_RV
pg_gate_C_MessageEncryptInit(const pg_args_C_MessageEncryptInit *a)
{
	return use_init(PG_OP_ENCRYPT, a);
}

CK_RV
pg_gate_C_VerifyInit(const pg_args_C_VerifyInit *a)
{
	return use_init(PG_OP_VERIFY, a);
}

CK_RV
pg_gate_C_VerifyRecoverInit(const pg_args_C_VerifyRecoverInit *a)
{
	CK_RV rv = pg_lower_check(PG_PROBE_VERIFY_RECOVER, a->session);

	return rv != CKR_OK ? rv : use_init(PG_OP_VERIFY, a);
}

CK_RV
pg_gate_C_MessageVerifyInit(const pg_args_C_MessageVerifyInit *a)
{
	return use_init(PG_OP_VERIFY, a);
}

/* A digest of a key is a function of its secret value (of a long HMAC
 * key, the HMAC key itself): of a named key it is `manage`. */
CK_RV
pg_gate_C_DigestKey(const pg_args_C_DigestKey *a)
{
	struct one_shot shot = { .function = a->function };
	CK_RV rv;

	rv = forbid_private_use(a->function, PG_OP_MANAGE, a->session, NULL, a->key, CKR_KEY_HANDLE_INVALID);
	if (rv == CKR_OK)
		rv = add_object(&shot, a->session, a->key, PG_OP_MANAGE);
	return rv != CKR_OK ? rv : judge_one_shot(&shot, pg_call_C_DigestKey, a);
}

/* ---- objects -------------------------------------------------------------- */


CK_RV
pg_gate_C_CreateObject(const pg_args_C_CreateObject *a)
{
	struct one_shot shot = { .function = a->function, .changes_objects = true };
	CK_RV rv = add_template(&shot, a->session, a->templ, a->count);

	return rv != CKR_OK ? rv : judge_change(&shot, a->session, pg_call_C_CreateObject, a);
}


/* A copy (templ applied to it) or a change of an object: judged as what
 * the object was and as what it becomes. */
static CK_RV
judge_changed_object(const char *function, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                     const CK_ATTRIBUTE *templ, CK_ULONG count,
                     CK_RV (*forward)(const pg_function_list_3_0 *, const void *), const void *args)
{
	struct one_shot shot = { .function = function, .changes_objects = true };
	CK_RV rv;

	if (templ == NULL && count > 0)
		return CKR_ARGUMENTS_BAD;
	rv = add_object(&shot, session, object, PG_OP_MANAGE);
	if (rv != CKR_OK)
		return rv;
	add_changed(&shot, templ, count);
	return judge_change(&shot, session, forward, args);
}

CK_RV
pg_gate_C_CopyObject(const pg_args_C_CopyObject *a)
{
	return judge_changed_object(a->function, a->session, a->object, a->templ, a->count,
	                            pg_call_C_CopyObject, a);
}


/* Renaming counts as a change of what the object was and of what it
 * becomes: both are judged when the policy names either. */
CK_RV
pg_gate_C_SetAttributeValue(const pg_args_C_SetAttributeValue *a)
{
	return judge_changed_object(a->function, a->session, a->object, a->templ, a->count,
	                            pg_call_C_SetAttributeValue, a);
}


CK_RV
pg_gate_C_DestroyObject(const pg_args_C_DestroyObject *a)
{
	struct one_shot shot = { .function = a->function, .changes_objects = true };
	CK_RV rv = add_object(&shot, a->session, a->object, PG_OP_MANAGE);

	return rv != CKR_OK ? rv : judge_change(&shot, a->session, pg_call_C_DestroyObject, a);
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


CK_RV
pg_gate_C_GetAttributeValue(const pg_args_C_GetAttributeValue *a)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	struct one_shot shot = { .function = a->function };
	CK_RV rv;

	if (lower == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (!asks_secret(a->templ, a->count) || !readable(lower, a->session, a->object))
		return pg_call_C_GetAttributeValue(lower, a);
	rv = add_object(&shot, a->session, a->object, PG_OP_MANAGE);
	if (rv != CKR_OK)
		return rv;
	if (shot.subjects[0].key.cls != CKO_PRIVATE_KEY && shot.subjects[0].key.cls != CKO_SECRET_KEY)
		return pg_call_C_GetAttributeValue(lower, a);
	return judge_one_shot(&shot, pg_call_C_GetAttributeValue, a);
}

/* ---- keys made, wrapped, unwrapped, derived -------------------------------------- */


CK_RV
pg_gate_C_GenerateKey(const pg_args_C_GenerateKey *a)
{
	struct one_shot shot = { .function = a->function, .changes_objects = true };
	CK_RV rv = add_template(&shot, a->session, a->templ, a->count);

	return rv != CKR_OK ? rv : judge_change(&shot, a->session, pg_call_C_GenerateKey, a);
}


CK_RV
pg_gate_C_GenerateKeyPair(const pg_args_C_GenerateKeyPair *a)
{
	struct one_shot shot = { .function = a->function, .changes_objects = true };
	CK_RV rv = add_template(&shot, a->session, a->pub_templ, a->pub_count);

	if (rv == CKR_OK)
		rv = add_template(&shot, a->session, a->priv_templ, a->priv_count);
	return rv != CKR_OK ? rv : judge_change(&shot, a->session, pg_call_C_GenerateKeyPair, a);
}


/* Wrapping a key the policy names exports it: `manage`.  Wrapping with a
 * named key is `wrap` (with AES-ECB or AES-CBC it encrypts a chosen key
 * value); with a private key it is refused (forbid_private_use). */
CK_RV
pg_gate_C_WrapKey(const pg_args_C_WrapKey *a)
{
	struct one_shot shot = { .function = a->function };
	struct pg_mechanism_copy mech = { .heap = NULL };
	pg_args_C_WrapKey own = *a;
	CK_RV rv;

	rv = forbid_private_use(a->function, PG_OP_SIGN, a->session, a->mechanism, a->wrapping_key,
	                        CKR_WRAPPING_KEY_HANDLE_INVALID);
	if (rv != CKR_OK)
		return rv;
	if (a->wrapped == NULL || a->mechanism == NULL)   /* a length query exports nothing */
		return pg_call_C_WrapKey(pg_ctx_lower(), a);
	rv = pg_mechanism_copy_init(&mech, a->mechanism);
	if (rv != CKR_OK)
		return rv;
	own.mechanism = &mech.m;
	rv = add_key_use(&shot, a->session, a->wrapping_key, PG_OP_WRAP, &mech.m, NULL, 0);
	if (rv == CKR_OK)
		rv = add_object(&shot, a->session, a->key, PG_OP_MANAGE);
	if (rv == CKR_OK)
		rv = judge_one_shot(&shot, pg_call_C_WrapKey, &own);
	pg_mechanism_copy_release(&mech);
	return rv;
}


CK_RV
pg_gate_C_UnwrapKey(const pg_args_C_UnwrapKey *a)
{
	struct one_shot shot = { .function = a->function, .changes_objects = true };
	struct pg_mechanism_copy mech = { .heap = NULL };
	pg_args_C_UnwrapKey own = *a;
	CK_BYTE *blob = NULL;
	CK_RV rv;

	if (a->mechanism == NULL || (a->wrapped == NULL && a->wrapped_len > 0))
		return CKR_ARGUMENTS_BAD;
	/* What is judged and recorded is what the token gets (gate.h). */
	rv = pg_mechanism_copy_init(&mech, a->mechanism);
	if (rv == CKR_OK && a->wrapped_len > 0 && (blob = malloc(a->wrapped_len)) == NULL)
		rv = CKR_HOST_MEMORY;
	if (rv != CKR_OK)
		goto out;
	if (a->wrapped_len > 0)
		memcpy(blob, a->wrapped, a->wrapped_len);
	own.mechanism = &mech.m;
	own.wrapped = blob;
	rv = add_key_use(&shot, a->session, a->unwrapping_key, PG_OP_UNWRAP, &mech.m, blob, a->wrapped_len);
	if (rv == CKR_OK)
		rv = add_template(&shot, a->session, a->templ, a->count);
	if (rv == CKR_OK)
		rv = judge_change(&shot, a->session, pg_call_C_UnwrapKey, &own);
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


/* Derivation from a named or private key (ECDH; a secret key's
 * *_ENCRYPT_DATA encrypts the caller's data into the new key).  For ECDH
 * the data recorded is the peer's public value, copied with the mechanism
 * (gate.h) so that it is also what the token gets. */
CK_RV
pg_gate_C_DeriveKey(const pg_args_C_DeriveKey *a)
{
	struct one_shot shot = { .function = a->function, .changes_objects = true };
	struct pg_mechanism_copy mech = { .heap = NULL };
	pg_args_C_DeriveKey own = *a;
	CK_BYTE *public_data = NULL;
	CK_OBJECT_HANDLE other[2];
	size_t data_len = 0, n_other;
	CK_RV rv;

	if (a->mechanism == NULL)
		return CKR_ARGUMENTS_BAD;
	rv = pg_mechanism_copy_init(&mech, a->mechanism);
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
	own.mechanism = &mech.m;
	rv = add_key_use(&shot, a->session, a->base_key, PG_OP_DERIVE, &mech.m, public_data, data_len);
	n_other = param_keys(&mech.m, other);
	for (size_t i = 0; rv == CKR_OK && i < n_other; i++)
		rv = add_key_use(&shot, a->session, other[i], PG_OP_DERIVE, &mech.m, NULL, 0);
	if (rv == CKR_OK)
		rv = add_template(&shot, a->session, a->templ, a->count);
	if (rv == CKR_OK)
		rv = judge_change(&shot, a->session, pg_call_C_DeriveKey, &own);
out:
	free(public_data);
	pg_mechanism_copy_release(&mech);
	return rv;
}

/* ---- sessions ------------------------------------------------------------------- */

/* A token logs its application out when the last session closes: the
 * identity it was logged into with is forgotten then too (login.c). */
CK_RV
pg_gate_C_CloseSession(const pg_args_C_CloseSession *a)
{
	const pg_function_list_3_0 *lower = pg_ctx_lower();
	CK_SESSION_INFO info;
	bool slot_known = lower != NULL && pg_ctx_logins_held() &&
	                  lower->C_GetSessionInfo(a->session, &info) == CKR_OK;
	CK_RV rv = pg_call_C_CloseSession(lower, a);

	if (rv == CKR_OK || rv == CKR_SESSION_HANDLE_INVALID)
		pg_ctx_session_drop(a->session);
	if (rv == CKR_OK && slot_known && pg_ctx_sessions_on(info.slotID) == 0)
		pg_ctx_login_forget(info.slotID);
	return rv;
}

CK_RV
pg_gate_C_CloseAllSessions(const pg_args_C_CloseAllSessions *a)
{
	CK_RV rv = pg_call_C_CloseAllSessions(pg_ctx_lower(), a);

	pg_ctx_sessions_prune(a->slot);
	if (rv == CKR_OK)
		pg_ctx_login_forget(a->slot);
	return rv;
}

/* A saved state can carry a private-key operation started in another
 * session or process, which p11gate never judged: refused. */
CK_RV
pg_gate_C_SetOperationState(const pg_args_C_SetOperationState *a)
{
	struct pg_regime *regime = pg_ctx_regime();
	CK_RV rv;

	if (regime == NULL)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	rv = pg_judge_refuse(regime, a->function,
	                     "a restored operation state may carry an operation p11gate never judged");
	pg_regime_unref(regime);
	return rv;
}
