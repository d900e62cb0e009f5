/* SPDX-License-Identifier: Apache-2.0
 *
 * What the token says about an object at the moment it is used: class,
 * label, id, token, and the SHA-256 of its public key (DER
 * SubjectPublicKeyInfo), which binds policy rules to key material rather
 * than to names a caller can change.
 */
#ifndef P11GATE_KEYINFO_H
#define P11GATE_KEYINFO_H

#include "p11gate/pkcs11.h"
#include "p11gate/policy.h"

#define PG_KEYINFO_MAX_ID 128
#define PG_KEYINFO_MAX_LABEL 256
#define PG_KEYINFO_MAX_CANDIDATES 8

struct pg_keyinfo {
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE handle;        /* the object read (pg_keyinfo_read_names) */
	CK_INFO module_info;
	CK_SLOT_INFO slot_info;
	CK_TOKEN_INFO token_info;
	bool have_token;

	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE key_type;
	CK_BYTE id[PG_KEYINFO_MAX_ID];
	CK_BYTE label[PG_KEYINFO_MAX_LABEL];
	/* Fixed slots: class, key type, id, label; ulValueLen is
	 * CK_UNAVAILABLE_INFORMATION for what the object lacks. */
	CK_ATTRIBUTE attrs[4];
	CK_ATTRIBUTE present[4];        /* the available ones: what URIs match on */
	CK_ULONG n_present;

	/* The public key: have_spki when it is known for certain (the object's
	 * own value, an RSA key's modulus, or EC public objects that agree). */
	bool have_spki;
	unsigned char spki_sha256[32];
	/* An EC private key's candidates: the distinct public keys of the
	 * public-key objects and certificates with its CKA_ID.  A pin matches
	 * if any of them is the pinned key (docs/design.md, "Key identity"):
	 * an object planted beside the key cannot make its pin fail. */
	unsigned char spki_candidates[PG_KEYINFO_MAX_CANDIDATES][32];
	size_t n_spki_candidates;

	/* The key's size (key_minimum): its family from CKA_KEY_TYPE, its
	 * bits from its modulus or curve; 0 when the token would not say. */
	enum pg_key_family family;
	unsigned long bits;

	char token_label[33];
	char token_serial[17];
	/* A key's CKA_END_DATE as YYYYMMDD (0: none; 1: one that does not
	 * parse, which counts as past). */
	long end_date;

	/* The policy keys this object matched, memoised by whoever matches it
	 * (the module's judge.c: once per operation, not at its init and again
	 * at its output) for one policy regime, match_regime (0: none).  Every
	 * function here that changes the facts above forgets it; a copy keeps it. */
	uint64_t match_regime;
	struct pg_key_match match;
};

/* Reads the object's identity through the wrapped module.  Attributes the
 * object lacks are left out (a URI naming them does not match). */
CK_RV pg_keyinfo_read(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session,
                      CK_OBJECT_HANDLE object, struct pg_keyinfo *out);

/* The two halves of pg_keyinfo_read: the object's slot and names (two
 * calls), then its token and public key (several, and certificates to
 * parse).  The module memoises both and re-reads the names when they age
 * (src/module/keymemo.c, pg_ctx_keyinfo). */
CK_RV pg_keyinfo_read_names(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session,
                            CK_OBJECT_HANDLE object, struct pg_keyinfo *out);
CK_RV pg_keyinfo_read_rest(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session,
                           CK_OBJECT_HANDLE object, struct pg_keyinfo *out);

/* The token in slot as an identity with no object (class, id, label all
 * unavailable): what C_InitToken is judged on.  A URI naming only the
 * token matches it; one naming an object does not. */
CK_RV pg_keyinfo_read_token(const CK_FUNCTION_LIST *lower, CK_SLOT_ID slot, struct pg_keyinfo *out);

/* pg_keyinfo_read of an object on the same token as neighbour, whose
 * token facts it takes instead of reading them again (they are settled
 * by repeated reads, which cost milliseconds). */
CK_RV pg_keyinfo_read_beside(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session,
                             CK_OBJECT_HANDLE object, const struct pg_keyinfo *neighbour,
                             struct pg_keyinfo *out);

/* The second half of pg_keyinfo_read_beside: out has its names. */
CK_RV pg_keyinfo_read_rest_beside(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session,
                                  CK_OBJECT_HANDLE object, const struct pg_keyinfo *neighbour,
                                  struct pg_keyinfo *out);

/* Whether the token in neighbour's slot has neighbour's names now, by one
 * C_GetTokenInfo.  A read torn by another process's login (see
 * get_token_info) differs, and answers false: the caller then reads the
 * token the settled way.  A match cannot be torn: it is the names read
 * the settled way before. */
bool pg_keyinfo_same_token(const CK_FUNCTION_LIST *lower, const struct pg_keyinfo *neighbour);

/* Copies the second half (token and public key) from a memoised identity. */
void pg_keyinfo_copy_rest(struct pg_keyinfo *dst, const struct pg_keyinfo *src);

/* Whether two identities have the same slot and names. */
bool pg_keyinfo_same_names(const struct pg_keyinfo *a, const struct pg_keyinfo *b);

/* The identity an object would have if created from this template on the
 * session's token (no public key yet: only its names). */
CK_RV pg_keyinfo_from_template(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session,
                               const CK_ATTRIBUTE *templ, CK_ULONG count,
                               struct pg_keyinfo *out);

/* The same object with some attributes replaced (C_SetAttributeValue,
 * C_CopyObject): what it will look like afterwards. */
void pg_keyinfo_apply(struct pg_keyinfo *info, const CK_ATTRIBUTE *templ, CK_ULONG count);

/* The private and secret key objects on slot's token whose attribute type
 * (CKA_ID or CKA_LABEL) is value: the keys an object with that id or
 * label sits beside.  Uses a session of its own; sees what the
 * application's login lets it see.  CKR_BUFFER_TOO_SMALL if there are
 * more than max.  value NULL: every private and secret key. */
CK_RV pg_keyinfo_find_keys(const CK_FUNCTION_LIST *lower, CK_SLOT_ID slot, CK_ATTRIBUTE_TYPE type,
                           const void *value, CK_ULONG len, CK_OBJECT_HANDLE *out, CK_ULONG max,
                           CK_ULONG *n);

/* Copies an identity (its attribute list points into itself). */
void pg_keyinfo_copy(struct pg_keyinfo *dst, const struct pg_keyinfo *src);

void pg_keyinfo_facts(const struct pg_keyinfo *info, struct pg_key_facts *out);

/* ---- certificates (certs.c) ---------------------------------------------- */

typedef struct x509_st X509;

/* The facts of every certificate object on slot's token whose public key
 * hashes to spki (DER SubjectPublicKeyInfo).  out->complete is false when
 * one could not be read or there are more than PG_CERT_MAX.  Uses a
 * session of its own. */
CK_RV pg_keyinfo_read_certs(const CK_FUNCTION_LIST *lower, CK_SLOT_ID slot, const unsigned char spki[32],
                            struct pg_key_certs *out);
/* A certificate object's value, parsed (NULL: none, or it does not parse). */
X509 *pg_cert_read(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object);
bool pg_cert_facts_from_x509(X509 *cert, struct pg_cert_facts *out);
bool pg_cert_spki_sha256(X509 *cert, unsigned char out[32]);

#endif /* P11GATE_KEYINFO_H */
