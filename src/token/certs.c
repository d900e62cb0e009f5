/* SPDX-License-Identifier: Apache-2.0
 *
 * A key's certificates: every certificate object on the key's token whose
 * public key is the key's (matched by public key, not by CKA_ID, so a
 * certificate filed under another id still counts), reduced to the facts
 * lifecycle checks need (src/policy/lifecycle.c).  Shared by the module,
 * which reads them once per key and policy regime (keymemo.c), and
 * `p11gate inventory`.
 */
#include "p11gate/keyinfo.h"
#include "p11gate/common.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CERT_BUF 8192     /* one read: longer certificates are read again at their size */

static bool
name_sha256(const X509_NAME *name, unsigned char out[32])
{
	unsigned char *der = NULL;
	int n = i2d_X509_NAME(name, &der);
	bool ok = n > 0 && pg_sha256(der, (size_t)n, out);

	OPENSSL_free(der);
	return ok;
}

static bool
time_of(const ASN1_TIME *t, time_t *out)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return false;
	*out = timegm(&tm);
	return true;
}

bool
pg_cert_facts_from_x509(X509 *cert, struct pg_cert_facts *out)
{
	const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
	EXTENDED_KEY_USAGE *eku;
	unsigned char *der = NULL;
	int n, crit = 0;
	bool ok;

	memset(out, 0, sizeof *out);
	n = i2d_X509(cert, &der);
	ok = n > 0 && pg_sha256(der, (size_t)n, out->sha256) &&
	     name_sha256(X509_get_issuer_name(cert), out->issuer_sha256) &&
	     time_of(X509_get0_notBefore(cert), &out->not_before) &&
	     time_of(X509_get0_notAfter(cert), &out->not_after) &&
	     ASN1_STRING_length(serial) >= 0 && (size_t)ASN1_STRING_length(serial) <= PG_CERT_SERIAL_MAX;
	OPENSSL_free(der);
	if (!ok)
		return false;
	out->serial_len = (size_t)ASN1_STRING_length(serial);
	memcpy(out->serial, ASN1_STRING_get0_data(serial), out->serial_len);
	eku = X509_get_ext_d2i(cert, NID_ext_key_usage, &crit, NULL);
	if (eku == NULL)
		return crit == -1;        /* -1: no such extension; else it does not parse */
	out->has_eku = true;
	for (int i = 0; i < sk_ASN1_OBJECT_num(eku) && out->n_eku < PG_CERT_EKU_MAX; i++)
		out->eku[out->n_eku++] = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return true;
}

bool
pg_cert_spki_sha256(X509 *cert, unsigned char out[32])
{
	unsigned char *spki = NULL;
	int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &spki);
	bool ok = n > 0 && pg_sha256(spki, (size_t)n, out);

	OPENSSL_free(spki);
	return ok;
}

/* The certificate object's value, parsed; NULL if it has none or it does
 * not parse (*failed, when not NULL, says the token failed to give it). */
static X509 *
cert_read(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, bool *failed)
{
	unsigned char stack_buf[CERT_BUF], *der = stack_buf;
	CK_ATTRIBUTE a = { CKA_VALUE, stack_buf, sizeof stack_buf };
	const unsigned char *p;
	X509 *cert = NULL;
	CK_RV rv = lower->C_GetAttributeValue(session, object, &a, 1);

	if (rv == CKR_BUFFER_TOO_SMALL && a.ulValueLen != CK_UNAVAILABLE_INFORMATION &&
	    a.ulValueLen <= 1024 * 1024 && (der = malloc(a.ulValueLen)) != NULL) {
		a.pValue = der;
		rv = lower->C_GetAttributeValue(session, object, &a, 1);
	}
	if (failed != NULL)
		*failed = rv != CKR_OK || der == NULL;
	if (rv == CKR_OK && a.ulValueLen != CK_UNAVAILABLE_INFORMATION) {
		p = der;
		cert = d2i_X509(NULL, &p, (long)a.ulValueLen);
	}
	if (der != stack_buf)
		free(der);
	return cert;
}

X509 *
pg_cert_read(const CK_FUNCTION_LIST *lower, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
	return cert_read(lower, session, object, NULL);
}

CK_RV
pg_keyinfo_read_certs(const CK_FUNCTION_LIST *lower, CK_SLOT_ID slot, const unsigned char spki[32],
                      struct pg_key_certs *out)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE find = { CKA_CLASS, &cls, sizeof cls };
	CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE objects[16];
	CK_ULONG n = 0;
	CK_RV rv;

	memset(out, 0, sizeof *out);
	/* A session of its own: the caller's may have a search running. */
	rv = lower->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &session);
	if (rv != CKR_OK)
		return rv;
	rv = lower->C_FindObjectsInit(session, &find, 1);
	if (rv != CKR_OK)
		goto out;
	out->complete = true;
	ERR_set_mark();
	/* Every certificate on the token, however many: one that carries
	 * the key's public key must not hide behind a first batch. */
	while (out->complete && (rv = lower->C_FindObjects(session, objects, 16, &n)) == CKR_OK && n > 0) {
		for (CK_ULONG i = 0; out->complete && i < n; i++) {
			bool failed;
			X509 *cert = cert_read(lower, session, objects[i], &failed);
			unsigned char hash[32];

			/* A certificate the token would not give could be the
			 * key's: fail closed.  One that does not parse as X.509
			 * carries no public key, no client takes it for the key's,
			 * and counting it would let any such object refuse every
			 * key on the token: it is not the key's. */
			if (failed || (cert != NULL && !pg_cert_spki_sha256(cert, hash))) {
				out->complete = false;
			} else if (cert != NULL && memcmp(hash, spki, 32) == 0) {
				if (out->n == PG_CERT_MAX ||
				    !pg_cert_facts_from_x509(cert, &out->cert[out->n++]))
					out->complete = false;
			}
			X509_free(cert);
		}
	}
	ERR_pop_to_mark();
	if (rv != CKR_OK)
		out->complete = false;
	lower->C_FindObjectsFinal(session);
out:
	lower->C_CloseSession(session);
	return rv;
}
