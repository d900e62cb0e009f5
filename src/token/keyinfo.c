/* SPDX-License-Identifier: Apache-2.0
 *
 * Reads an object's identity from the token when it is used, and derives
 * the SHA-256 of its public key: from the private key's own RSA modulus and
 * exponent, or, for EC (whose private objects carry no point), from the
 * public key object or certificate with the same CKA_ID.  The derivation
 * is memoised in the context, keyed by what was read, so the hot path is
 * one C_GetAttributeValue.
 */
#include "p11gate/keyinfo.h"
#include "p11gate/common.h"

#include <string.h>
#include <time.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#define MAX_PUBLIC 2048   /* bytes of modulus, point or certificate read at once */

static void
set_attr(CK_ATTRIBUTE *a, CK_ATTRIBUTE_TYPE type, void *value, CK_ULONG len)
{
	a->type = type;
	a->pValue = value;
	a->ulValueLen = len;
}

/* The SubjectPublicKeyInfo is encoded directly, not through an EVP_PKEY:
 * in a process where an ENGINE is the default for every method (`openssl
 * -engine pkcs11`, and so any client of the libp11 engine), building an
 * EVP_PKEY from parameters fails.  Takes ownership of param (an
 * ASN1_OBJECT when param_type is V_ASN1_OBJECT) and key, on every path. */
static bool
spki_hash(int algorithm_nid, int param_type, void *param, unsigned char *key, int key_len,
          unsigned char out[32])
{
	X509_PUBKEY *pub = X509_PUBKEY_new();
	unsigned char *der = NULL;
	bool ok = false;
	int len;

	if (pub == NULL || !X509_PUBKEY_set0_param(pub, OBJ_nid2obj(algorithm_nid), param_type,
	                                           param, key, key_len)) {
		if (param_type == V_ASN1_OBJECT)
			ASN1_OBJECT_free(param);
		OPENSSL_free(key);
		goto out;
	}
	len = i2d_X509_PUBKEY(pub, &der);
	ok = len > 0 && pg_sha256(der, (size_t)len, out);
out:
	OPENSSL_free(der);
	X509_PUBKEY_free(pub);
	return ok;
}

/* A DER length of n at p (p may be NULL to count); returns its size. */
static size_t
der_length(unsigned char *p, size_t n)
{
	size_t bytes = 0;

	if (n < 0x80) {
		if (p != NULL)
			p[0] = (unsigned char)n;
		return 1;
	}
	for (size_t v = n; v > 0; v >>= 8)
		bytes++;
	if (p != NULL) {
		p[0] = (unsigned char)(0x80 | bytes);
		for (size_t i = 0; i < bytes; i++)
			p[1 + i] = (unsigned char)(n >> (8 * (bytes - 1 - i)));
	}
	return 1 + bytes;
}

/* A DER INTEGER of an unsigned big-endian value (leading zeros dropped, a
 * zero byte added when the top bit is set); p may be NULL to count. */
static size_t
der_uint(unsigned char *p, const CK_BYTE *v, size_t n)
{
	size_t pad, len, head;

	while (n > 1 && v[0] == 0) {
		v++;
		n--;
	}
	pad = n > 0 && (v[0] & 0x80) ? 1 : 0;
	len = n + pad;
	head = 1 + der_length(NULL, len);
	if (p != NULL) {
		p[0] = 0x02;
		der_length(p + 1, len);
		if (pad)
			p[head] = 0;
		memcpy(p + head + pad, v, n);
	}
	return head + len;
}

static bool
rsa_spki(const CK_BYTE *n, CK_ULONG n_len, const CK_BYTE *e, CK_ULONG e_len, unsigned char out[32])
{
	size_t body, total;
	unsigned char *key, *p;

	if (n_len == 0 || e_len == 0)
		return false;
	/* RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } */
	body = der_uint(NULL, n, n_len) + der_uint(NULL, e, e_len);
	total = 1 + der_length(NULL, body) + body;
	key = OPENSSL_malloc(total);
	if (key == NULL)
		return false;
	p = key;
	*p++ = 0x30;
	p += der_length(p, body);
	p += der_uint(p, n, n_len);
	der_uint(p, e, e_len);
	return spki_hash(NID_rsaEncryption, V_ASN1_NULL, NULL, key, (int)total, out);
}

/* CKA_EC_PARAMS is a DER OID (named curves only); CKA_EC_POINT a DER
 * OCTET STRING around the point (some tokens give the bare point). */
static bool
ec_spki(const CK_BYTE *params_der, CK_ULONG params_len, const CK_BYTE *point_der,
        CK_ULONG point_len, unsigned char out[32])
{
	const unsigned char *p = params_der;
	ASN1_OBJECT *curve = d2i_ASN1_OBJECT(NULL, &p, (long)params_len);
	ASN1_OCTET_STRING *octets = NULL;
	const unsigned char *point = point_der;
	size_t plen = point_len;
	unsigned char *key;

	if (curve == NULL || OBJ_obj2nid(curve) == NID_undef) {
		ASN1_OBJECT_free(curve);
		return false;
	}
	p = point_der;
	octets = d2i_ASN1_OCTET_STRING(NULL, &p, (long)point_len);
	if (octets != NULL && p == point_der + point_len) {
		point = ASN1_STRING_get0_data(octets);
		plen = (size_t)ASN1_STRING_length(octets);
	}
	key = plen > 0 ? OPENSSL_memdup(point, plen) : NULL;
	ASN1_OCTET_STRING_free(octets);
	if (key == NULL) {
		ASN1_OBJECT_free(curve);
		return false;
	}
	return spki_hash(NID_X9_62_id_ecPublicKey, V_ASN1_OBJECT, curve, key, (int)plen, out);
}

/* The next DER element at *p (before end) must be a constructed
 * SEQUENCE (or, with tag 0 and class V_ASN1_CONTEXT_SPECIFIC, an explicit
 * [0]); *p moves into it, *content_end to its end. */
static bool
der_enter(const unsigned char **p, const unsigned char *end, int want_tag, int want_class,
          const unsigned char **content_end)
{
	long len;
	int tag, cls;
	int flags = ASN1_get_object(p, &len, &tag, &cls, end - *p);

	if ((flags & 0x80) || !(flags & V_ASN1_CONSTRUCTED) || flags == 0x21 || tag != want_tag ||
	    cls != want_class)
		return false;
	*content_end = *p + len;
	return true;
}

/* Steps over the next DER element at *p (before end). */
static bool
der_skip(const unsigned char **p, const unsigned char *end)
{
	long len;
	int tag, cls;
	int flags = ASN1_get_object(p, &len, &tag, &cls, end - *p);

	if ((flags & 0x80) || flags == 0x21)
		return false;
	*p += len;
	return true;
}

/* The SHA-256 of a certificate's subjectPublicKeyInfo, as its DER bytes
 * stand: found by stepping over the TBSCertificate's fields (version,
 * serialNumber, signature, issuer, validity, subject) rather than by
 * OpenSSL's whole X.509 parse, which decodes the key and caches the
 * extensions and cost a third of a key's first use after a login. */
static bool
cert_spki(const CK_BYTE *der, CK_ULONG len, unsigned char out[32])
{
	const unsigned char *p = der, *end = der + len, *cert_end, *tbs_end, *spki, *spki_end;
	const unsigned char *q, *version_end;

	if (!der_enter(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &cert_end) ||
	    !der_enter(&p, cert_end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &tbs_end))
		return false;
	q = p;          /* version [0] EXPLICIT: absent from v1 certificates */
	if (der_enter(&q, tbs_end, 0, V_ASN1_CONTEXT_SPECIFIC, &version_end))
		p = version_end;
	for (int field = 0; field < 5; field++) {
		if (!der_skip(&p, tbs_end))
			return false;
	}
	spki = p;
	if (!der_enter(&p, tbs_end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &spki_end))
		return false;
	return pg_sha256(spki, (size_t)(spki_end - spki), out);
}

/* Adds a public key to an EC key's distinct candidates; false when there
 * are more than it can hold. */
static bool
add_candidate(struct pg_keyinfo *key, const unsigned char hash[32])
{
	for (size_t i = 0; i < key->n_spki_candidates; i++) {
		if (memcmp(key->spki_candidates[i], hash, 32) == 0)
			return true;
	}
	if (key->n_spki_candidates == PG_KEYINFO_MAX_CANDIDATES)
		return false;
	memcpy(key->spki_candidates[key->n_spki_candidates++], hash, 32);
	return true;
}

/* The public half of an EC key: the public key objects and certificates
 * with the key's CKA_ID.  Each distinct public key they carry is a
 * candidate; the key's public key is known for certain only when they all
 * agree.  A pin is matched against every candidate (src/policy/keys.c), so
 * an object planted with a foreign point cannot make the genuine key fail
 * its pin: planting one is `manage` on the key (src/module/manage.c), and
 * so is giving another private key the names that would let it pass as
 * this one.  Uses a session of its own: the caller's may have a find
 * operation active. */
static void
ec_spki_by_id(const CK_FUNCTION_LIST *lower, struct pg_keyinfo *key,
              const CK_BYTE *ec_params, CK_ULONG ec_params_len)
{
	static const CK_OBJECT_CLASS classes[] = { CKO_PUBLIC_KEY, CKO_CERTIFICATE };
	CK_ULONG id_len = key->attrs[2].ulValueLen;   /* known available: see read_spki */
	CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
	bool complete = true;

	key->n_spki_candidates = 0;
	if (lower->C_OpenSession(key->slot, CKF_SERIAL_SESSION, NULL, NULL, &session) != CKR_OK)
		return;
	for (size_t c = 0; complete && c < sizeof classes / sizeof classes[0]; c++) {
		CK_OBJECT_CLASS cls = classes[c];
		CK_ATTRIBUTE find[2];
		CK_OBJECT_HANDLE objects[8];
		CK_ULONG n = 0;

		set_attr(&find[0], CKA_CLASS, &cls, sizeof cls);
		set_attr(&find[1], CKA_ID, (void *)key->id, id_len);
		if (lower->C_FindObjectsInit(session, find, 2) != CKR_OK) {
			complete = false;
			break;
		}
		/* Every one of them, however many: the genuine object must not
		 * be crowded out of a first batch. */
		while (complete && lower->C_FindObjects(session, objects, 8, &n) == CKR_OK && n > 0) {
			for (CK_ULONG i = 0; complete && i < n; i++) {
				CK_BYTE value[MAX_PUBLIC];
				unsigned char candidate[32];
				CK_ATTRIBUTE a;
				bool got;

				set_attr(&a, cls == CKO_PUBLIC_KEY ? CKA_EC_POINT : CKA_VALUE, value,
				         sizeof value);
				if (lower->C_GetAttributeValue(session, objects[i], &a, 1) != CKR_OK ||
				    a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
					continue;
				got = cls == CKO_PUBLIC_KEY
				      ? ec_spki(ec_params, ec_params_len, value, a.ulValueLen, candidate)
				      : cert_spki(value, a.ulValueLen, candidate);
				if (got)
					complete = add_candidate(key, candidate);
			}
		}
		lower->C_FindObjectsFinal(session);
	}
	lower->C_CloseSession(session);
	if (!complete) {
		key->n_spki_candidates = 0;      /* more than can be checked: fail closed */
		return;
	}
	if (key->n_spki_candidates == 1) {
		memcpy(key->spki_sha256, key->spki_candidates[0], 32);
		key->have_spki = true;
	}
}

/* The modulus's size in bits (leading zero bytes and bits not counted). */
static unsigned long
modulus_bits(const CK_BYTE *n, CK_ULONG len)
{
	CK_ULONG i = 0;
	unsigned long bits;

	while (i < len && n[i] == 0)
		i++;
	if (i == len)
		return 0;
	bits = (len - i) * 8;
	for (CK_BYTE top = n[i]; !(top & 0x80); top <<= 1)
		bits--;
	return bits;
}

/* A named curve's size: the bits of its order (P-256: 256); 0 if unknown. */
static unsigned long
curve_bits(const CK_BYTE *params_der, CK_ULONG len)
{
	const unsigned char *p = params_der;
	ASN1_OBJECT *curve = d2i_ASN1_OBJECT(NULL, &p, (long)len);
	EC_GROUP *group = curve != NULL ? EC_GROUP_new_by_curve_name(OBJ_obj2nid(curve)) : NULL;
	unsigned long bits = group != NULL ? (unsigned long)EC_GROUP_order_bits(group) : 0;

	EC_GROUP_free(group);
	ASN1_OBJECT_free(curve);
	return bits;
}

/* Derives the SPKI hash from what the object itself exposes, or (EC
 * private keys) from its public counterparts; and the key's size from
 * the same attributes (its modulus, its curve). */
static void
read_spki(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session,
          CK_OBJECT_HANDLE object, struct pg_keyinfo *out)
{
	CK_BYTE a_val[MAX_PUBLIC], b_val[MAX_PUBLIC];
	CK_ATTRIBUTE a[2];
	/* key_type is 0 (CKK_RSA) when the object has none. */
	const bool have_type = out->attrs[1].ulValueLen != CK_UNAVAILABLE_INFORMATION;

	out->have_spki = false;
	out->n_spki_candidates = 0;
	out->family = PG_KEY_OTHER;
	out->bits = 0;
	if (out->cls == CKO_CERTIFICATE) {
		set_attr(&a[0], CKA_VALUE, a_val, sizeof a_val);
		if (lower->C_GetAttributeValue(session, object, a, 1) == CKR_OK)
			out->have_spki = cert_spki(a_val, a[0].ulValueLen, out->spki_sha256);
		return;
	}
	if (out->key_type == CKK_RSA) {
		out->family = have_type ? PG_KEY_RSA : PG_KEY_OTHER;
		set_attr(&a[0], CKA_MODULUS, a_val, sizeof a_val);
		set_attr(&a[1], CKA_PUBLIC_EXPONENT, b_val, sizeof b_val);
		if (lower->C_GetAttributeValue(session, object, a, 2) == CKR_OK) {
			out->have_spki = rsa_spki(a_val, a[0].ulValueLen, b_val, a[1].ulValueLen,
			                          out->spki_sha256);
			out->bits = modulus_bits(a_val, a[0].ulValueLen);
		}
		return;
	}
	if (out->key_type == CKK_EC) {
		CK_RV rv;

		out->family = have_type ? PG_KEY_EC : PG_KEY_OTHER;
		set_attr(&a[0], CKA_EC_PARAMS, a_val, sizeof a_val);
		set_attr(&a[1], CKA_EC_POINT, b_val, sizeof b_val);
		rv = lower->C_GetAttributeValue(session, object, a, 2);
		if (a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION)
			return;
		if (a[0].ulValueLen <= sizeof a_val)
			out->bits = curve_bits(a_val, a[0].ulValueLen);
		if (rv == CKR_OK)
			out->have_spki = ec_spki(a_val, a[0].ulValueLen, b_val, a[1].ulValueLen,
			                         out->spki_sha256);
		else if (out->cls == CKO_PRIVATE_KEY && out->attrs[2].ulValueLen > 0 &&
		         out->attrs[2].ulValueLen != CK_UNAVAILABLE_INFORMATION)
			ec_spki_by_id(lower, out, a_val, a[0].ulValueLen);
	}
}

/* A key's CKA_END_DATE (CK_DATE: "YYYYMMDD"); SoftHSM2 keeps it empty
 * unless set.  One that does not parse counts as past (fail closed). */
static void
read_end_date(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
              struct pg_keyinfo *out)
{
	CK_DATE date;
	CK_ATTRIBUTE a = { CKA_END_DATE, &date, sizeof date };
	long value = 0;

	out->end_date = 0;
	if ((out->cls != CKO_PRIVATE_KEY && out->cls != CKO_SECRET_KEY) ||
	    lower->C_GetAttributeValue(session, object, &a, 1) != CKR_OK || a.ulValueLen == 0 ||
	    a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return;
	/* All blank or all zero is how some tokens say "none". */
	if (a.ulValueLen == sizeof date &&
	    (memcmp(&date, "        ", 8) == 0 || memcmp(&date, "00000000", 8) == 0))
		return;
	for (size_t i = 0; a.ulValueLen == sizeof date && i < 8; i++) {
		const CK_CHAR c = i < 4 ? date.year[i] : i < 6 ? date.month[i - 4] : date.day[i - 6];

		if (c < '0' || c > '9') {
			value = 1;
			break;
		}
		value = value * 10 + (c - '0');
	}
	out->end_date = a.ulValueLen != sizeof date || value < 10000101 ? 1 : value;
}

static bool
same_token(const CK_TOKEN_INFO *a, const CK_TOKEN_INFO *b)
{
	return memcmp(a->label, b->label, sizeof a->label) == 0 &&
	       memcmp(a->manufacturerID, b->manufacturerID, sizeof a->manufacturerID) == 0 &&
	       memcmp(a->model, b->model, sizeof a->model) == 0 &&
	       memcmp(a->serialNumber, b->serialNumber, sizeof a->serialNumber) == 0;
}

/* The token's names, as successive reads agree on them: two reads a
 * millisecond apart, or three 2 ms apart once a read failed or disagreed.
 * SoftHSM2 2.6.1 rewrites its token file at every C_Login, and another
 * process reading it meanwhile gets CKR_GENERAL_ERROR or, worse, CKR_OK
 * with a blank label (during 12,627 logins, 167 and 69 of 200,000 reads):
 * another job's login must neither fail this process's signature nor make
 * its key look like another token's (the result is memoised with the key).
 * Read only when a key's identity is not memoised, so the pauses are paid
 * once per key. */
static CK_RV
get_token_info(const CK_FUNCTION_LIST *lower, CK_SLOT_ID slot, CK_TOKEN_INFO *out)
{
	const struct timespec calm = { 0, 1000000 }, contended = { 0, 2000000 };
	CK_TOKEN_INFO before;
	int agreeing = 0, needed = 2;
	CK_RV rv;

	for (int attempt = 0; attempt < 40; attempt++) {
		if (attempt > 0)
			nanosleep(needed > 2 ? &contended : &calm, NULL);
		rv = lower->C_GetTokenInfo(slot, out);
		if (rv == CKR_GENERAL_ERROR) {
			needed = 3;
			agreeing = 0;
			continue;
		}
		if (rv != CKR_OK)
			return rv;
		if (agreeing > 0 && same_token(&before, out)) {
			agreeing++;
		} else {
			if (agreeing > 0)
				needed = 3;
			before = *out;
			agreeing = 1;
		}
		if (agreeing >= needed)
			return CKR_OK;
	}
	return CKR_GENERAL_ERROR;      /* never settled: fail closed */
}

static CK_RV
read_token(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session, struct pg_keyinfo *out)
{
	CK_RV rv;

	rv = lower->C_GetInfo(&out->module_info);
	if (rv == CKR_OK)
		rv = lower->C_GetSlotInfo(out->slot, &out->slot_info);
	if (rv == CKR_OK)
		rv = get_token_info(lower, out->slot, &out->token_info);
	if (rv != CKR_OK)
		return rv;
	out->have_token = true;
	pg_fixed_to_cstr(out->token_info.label, sizeof out->token_info.label,
	                 out->token_label, sizeof out->token_label);
	pg_fixed_to_cstr(out->token_info.serialNumber, sizeof out->token_info.serialNumber,
	                 out->token_serial, sizeof out->token_serial);
	return CKR_OK;
}

/* Keeps the available attributes, in slot order, for URI matching. */
static void
compact_attrs(struct pg_keyinfo *out)
{
	out->n_present = 0;
	for (CK_ULONG i = 0; i < 4; i++) {
		if (out->attrs[i].ulValueLen != CK_UNAVAILABLE_INFORMATION)
			out->present[out->n_present++] = out->attrs[i];
	}
}

static void
init_attrs(struct pg_keyinfo *out)
{
	set_attr(&out->attrs[0], CKA_CLASS, &out->cls, sizeof out->cls);
	set_attr(&out->attrs[1], CKA_KEY_TYPE, &out->key_type, sizeof out->key_type);
	set_attr(&out->attrs[2], CKA_ID, out->id, sizeof out->id);
	set_attr(&out->attrs[3], CKA_LABEL, out->label, sizeof out->label);
}

CK_RV
pg_keyinfo_read_names(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session,
                      CK_OBJECT_HANDLE object, struct pg_keyinfo *out)
{
	CK_SESSION_INFO session_info;
	CK_RV rv;

	memset(out, 0, sizeof *out);
	rv = lower->C_GetSessionInfo(session, &session_info);
	if (rv != CKR_OK)
		return rv;
	out->slot = session_info.slotID;
	out->handle = object;
	init_attrs(out);
	/* CKR_ATTRIBUTE_TYPE_INVALID just means some are missing (a
	 * certificate has no CKA_KEY_TYPE): those come back unavailable. */
	rv = lower->C_GetAttributeValue(session, object, out->attrs, 4);
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE &&
	    rv != CKR_BUFFER_TOO_SMALL)
		return rv;
	if (out->attrs[0].ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return CKR_OBJECT_HANDLE_INVALID;
	compact_attrs(out);
	return CKR_OK;
}

CK_RV
pg_keyinfo_read_token(const CK_FUNCTION_LIST *lower, CK_SLOT_ID slot, struct pg_keyinfo *out)
{
	memset(out, 0, sizeof *out);
	out->slot = slot;
	init_attrs(out);
	for (size_t i = 0; i < 4; i++)
		out->attrs[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
	compact_attrs(out);
	return read_token(lower, CK_INVALID_HANDLE, out);
}

CK_RV
pg_keyinfo_read_rest(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session,
                     CK_OBJECT_HANDLE object, struct pg_keyinfo *out)
{
	CK_RV rv = read_token(lower, session, out);

	out->match_regime = 0;
	/* OpenSSL's errors here are p11gate's business, not the caller's:
	 * leave the application's error queue as it was. */
	if (rv == CKR_OK) {
		ERR_set_mark();
		read_spki(lower, session, object, out);
		ERR_pop_to_mark();
		read_end_date(lower, session, object, out);
	}
	return rv;
}

bool
pg_keyinfo_same_token(const CK_FUNCTION_LIST *lower, const struct pg_keyinfo *neighbour)
{
	CK_TOKEN_INFO now;

	return neighbour->have_token && lower->C_GetTokenInfo(neighbour->slot, &now) == CKR_OK &&
	       same_token(&neighbour->token_info, &now);
}

CK_RV
pg_keyinfo_read_rest_beside(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session,
                            CK_OBJECT_HANDLE object, const struct pg_keyinfo *neighbour,
                            struct pg_keyinfo *out)
{
	if (!neighbour->have_token || neighbour->slot != out->slot)
		return pg_keyinfo_read_rest(lower, session, object, out);
	out->match_regime = 0;
	out->module_info = neighbour->module_info;
	out->slot_info = neighbour->slot_info;
	out->token_info = neighbour->token_info;
	out->have_token = true;
	memcpy(out->token_label, neighbour->token_label, sizeof out->token_label);
	memcpy(out->token_serial, neighbour->token_serial, sizeof out->token_serial);
	ERR_set_mark();
	read_spki(lower, session, object, out);
	ERR_pop_to_mark();
	read_end_date(lower, session, object, out);
	return CKR_OK;
}

CK_RV
pg_keyinfo_read_beside(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session,
                       CK_OBJECT_HANDLE object, const struct pg_keyinfo *neighbour,
                       struct pg_keyinfo *out)
{
	CK_RV rv = pg_keyinfo_read_names(lower, session, object, out);

	return rv == CKR_OK ? pg_keyinfo_read_rest_beside(lower, session, object, neighbour, out) : rv;
}

CK_RV
pg_keyinfo_read(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session,
                CK_OBJECT_HANDLE object, struct pg_keyinfo *out)
{
	CK_RV rv = pg_keyinfo_read_names(lower, session, object, out);

	return rv == CKR_OK ? pg_keyinfo_read_rest(lower, session, object, out) : rv;
}

void
pg_keyinfo_copy_rest(struct pg_keyinfo *dst, const struct pg_keyinfo *src)
{
	dst->match_regime = 0;
	dst->module_info = src->module_info;
	dst->slot_info = src->slot_info;
	dst->token_info = src->token_info;
	dst->have_token = src->have_token;
	memcpy(dst->token_label, src->token_label, sizeof dst->token_label);
	memcpy(dst->token_serial, src->token_serial, sizeof dst->token_serial);
	dst->end_date = src->end_date;
	dst->family = src->family;
	dst->bits = src->bits;
	dst->have_spki = src->have_spki;
	memcpy(dst->spki_sha256, src->spki_sha256, sizeof dst->spki_sha256);
	dst->n_spki_candidates = src->n_spki_candidates;
	memcpy(dst->spki_candidates, src->spki_candidates, sizeof dst->spki_candidates);
}

bool
pg_keyinfo_same_names(const struct pg_keyinfo *a, const struct pg_keyinfo *b)
{
	if (a->slot != b->slot)
		return false;
	for (CK_ULONG i = 0; i < 4; i++) {
		CK_ULONG len = a->attrs[i].ulValueLen;

		if (len != b->attrs[i].ulValueLen)
			return false;
		if (len != CK_UNAVAILABLE_INFORMATION && memcmp(a->attrs[i].pValue, b->attrs[i].pValue, len) != 0)
			return false;
	}
	return true;
}

void
pg_keyinfo_apply(struct pg_keyinfo *info, const CK_ATTRIBUTE *templ, CK_ULONG count)
{
	info->match_regime = 0;
	for (CK_ULONG i = 0; i < count; i++) {
		for (CK_ULONG j = 0; j < 4; j++) {
			CK_ATTRIBUTE *a = &info->attrs[j];
			CK_ULONG room = j == 2 ? sizeof info->id : j == 3 ? sizeof info->label
			                : sizeof(CK_ULONG);

			if (a->type != templ[i].type)
				continue;
			/* A value p11gate cannot hold cannot be matched: treat it as
			 * unknown, which never matches a URI naming it. */
			if (templ[i].pValue == NULL || templ[i].ulValueLen > room) {
				a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
				continue;
			}
			memcpy(a->pValue, templ[i].pValue, templ[i].ulValueLen);
			a->ulValueLen = templ[i].ulValueLen;
		}
	}
	compact_attrs(info);
}

static const CK_ATTRIBUTE *
find_attr(const CK_ATTRIBUTE *templ, CK_ULONG count, CK_ATTRIBUTE_TYPE type)
{
	for (CK_ULONG i = 0; i < count; i++) {
		if (templ[i].type == type && templ[i].pValue != NULL)
			return &templ[i];
	}
	return NULL;
}

/* The public key a template carries, if any: a certificate's value, an RSA
 * modulus and exponent, or an EC point. */
static void
template_spki(const CK_ATTRIBUTE *templ, CK_ULONG count, struct pg_keyinfo *out)
{
	const CK_ATTRIBUTE *value = find_attr(templ, count, CKA_VALUE);
	const CK_ATTRIBUTE *n = find_attr(templ, count, CKA_MODULUS);
	const CK_ATTRIBUTE *e = find_attr(templ, count, CKA_PUBLIC_EXPONENT);
	const CK_ATTRIBUTE *params = find_attr(templ, count, CKA_EC_PARAMS);
	const CK_ATTRIBUTE *point = find_attr(templ, count, CKA_EC_POINT);

	if (out->attrs[0].ulValueLen != CK_UNAVAILABLE_INFORMATION && out->cls == CKO_CERTIFICATE && value)
		out->have_spki = cert_spki(value->pValue, value->ulValueLen, out->spki_sha256);
	else if (n != NULL && e != NULL)
		out->have_spki = rsa_spki(n->pValue, n->ulValueLen, e->pValue, e->ulValueLen, out->spki_sha256);
	else if (params != NULL && point != NULL)
		out->have_spki = ec_spki(params->pValue, params->ulValueLen, point->pValue,
		                         point->ulValueLen, out->spki_sha256);
}

CK_RV
pg_keyinfo_from_template(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session,
                         const CK_ATTRIBUTE *templ, CK_ULONG count, struct pg_keyinfo *out)
{
	CK_RV rv;

	CK_SESSION_INFO session_info;

	memset(out, 0, sizeof *out);
	rv = lower->C_GetSessionInfo(session, &session_info);
	if (rv != CKR_OK)
		return rv;
	out->slot = session_info.slotID;
	rv = read_token(lower, session, out);
	if (rv != CKR_OK)
		return rv;
	init_attrs(out);
	for (CK_ULONG i = 0; i < 4; i++)
		out->attrs[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
	pg_keyinfo_apply(out, templ, count);
	if (templ != NULL) {
		ERR_set_mark();
		template_spki(templ, count, out);
		ERR_pop_to_mark();
	}
	return CKR_OK;
}

void
pg_keyinfo_copy(struct pg_keyinfo *dst, const struct pg_keyinfo *src)
{
	if (dst == src)
		return;
	memcpy(dst, src, sizeof *dst);
	init_attrs(dst);
	for (CK_ULONG i = 0; i < 4; i++)
		dst->attrs[i].ulValueLen = src->attrs[i].ulValueLen;
	compact_attrs(dst);
}

void
pg_keyinfo_facts(const struct pg_keyinfo *info, struct pg_key_facts *out)
{
	memset(out, 0, sizeof *out);
	if (info->have_token) {
		out->module_info = &info->module_info;
		out->slot_info = &info->slot_info;
		out->token_info = &info->token_info;
	}
	out->attrs = (CK_ATTRIBUTE *)info->present;
	out->n_attrs = info->n_present;
	out->public_key_sha256 = info->have_spki ? info->spki_sha256 : NULL;
	out->public_key_candidates = (const unsigned char (*)[32])info->spki_candidates;
	out->n_public_key_candidates = info->n_spki_candidates;
	out->end_date = info->end_date;
	out->family = info->family;
	out->bits = info->bits;
}

CK_RV
pg_keyinfo_find_keys(const CK_FUNCTION_LIST *lower, CK_SLOT_ID slot, CK_ATTRIBUTE_TYPE type,
                     const void *value, CK_ULONG len, CK_OBJECT_HANDLE *out, CK_ULONG max,
                     CK_ULONG *n)
{
	static const CK_OBJECT_CLASS classes[] = { CKO_PRIVATE_KEY, CKO_SECRET_KEY };
	CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
	CK_RV rv;

	*n = 0;
	rv = lower->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &session);
	if (rv != CKR_OK)
		return rv;
	for (size_t c = 0; rv == CKR_OK && c < sizeof classes / sizeof classes[0]; c++) {
		CK_OBJECT_CLASS cls = classes[c];
		CK_ATTRIBUTE find[2];
		CK_ULONG got = 0;

		set_attr(&find[0], CKA_CLASS, &cls, sizeof cls);
		set_attr(&find[1], type, (void *)value, len);
		rv = lower->C_FindObjectsInit(session, find, value != NULL ? 2 : 1);
		if (rv != CKR_OK)
			break;
		/* One past the room left: finding it means there are too many. */
		do {
			CK_OBJECT_HANDLE extra;

			rv = *n < max ? lower->C_FindObjects(session, out + *n, max - *n, &got)
			              : lower->C_FindObjects(session, &extra, 1, &got);
			if (rv == CKR_OK && *n == max && got > 0)
				rv = CKR_BUFFER_TOO_SMALL;
			else if (rv == CKR_OK)
				*n += got;
		} while (rv == CKR_OK && got > 0);
		lower->C_FindObjectsFinal(session);
	}
	lower->C_CloseSession(session);
	return rv;
}
