/* SPDX-License-Identifier: Apache-2.0
 *
 * A key's lifecycle: its pins (several, each with a not_after, so an old
 * and a new key overlap during a rotation), its own not_after, and its
 * certificate: block (required, eku, crl_file, warn_days), and the top
 * level's key_minimum: — compiled here, and judged here by one pure
 * function (pg_policy_lifecycle) that the module calls at signing and
 * `p11gate inventory` calls for its report.  The CRL is read when the
 * policy loads.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static const char *const pin_fields[] = { "public_key_sha256", "not_after", NULL };
static const char *const certificate_fields[] = { "required", "eku", "crl_file", "ca_file", "warn_days",
                                                  NULL };
static const char *const key_minimum_fields[] = { "rsa_bits", "ec_bits", "enforce", NULL };

#define WARN_DAYS_MAX 3650
#define RSA_BITS_MAX 16384ul
#define EC_BITS_MAX 571ul

/* ---- compiling ------------------------------------------------------------ */

static bool
compile_date(struct pg_load *load, const struct pg_ynode *node, const char *field, long *out)
{
	const char *text = pg_yget_string(load->diag, node, field);
	char why[160];

	if (text == NULL)
		return false;
	*out = pg_parse_date(text, strlen(text), why, sizeof why);
	if (*out < 0) {
		pg_diag_error_at(load->diag, node, "%s: %s; the key may be used through that day (UTC)",
		                 field, why);
		*out = 0;
		return false;
	}
	return true;
}

static bool
compile_pins(struct pg_load *load, struct pg_key *key, const struct pg_ynode *seq)
{
	struct pg_diag *diag = load->diag;

	if (!pg_yexpect(diag, seq, PG_Y_SEQ, "pins"))
		return true;
	if (seq->n == 0) {
		pg_diag_error_at(diag, seq, "key '%s': pins is empty; list each public key as "
		                 "- { public_key_sha256: HEX, not_after: YYYY-MM-DD }", key->name);
		return true;
	}
	key->pins = pg_arena_calloc(&load->policy->arena, seq->n, sizeof *key->pins);
	if (key->pins == NULL)
		return false;
	for (size_t i = 0; i < seq->n; i++) {
		const struct pg_ynode *item = seq->kids[i], *node;
		struct pg_pin *pin = &key->pins[key->n_pins];
		const char *text;

		if (!pg_yexpect(diag, item, PG_Y_MAP, "a pins entry"))
			continue;
		pg_ymap_check_keys(diag, item, pin_fields, "pins entry");
		node = pg_ymap_get(item, "public_key_sha256");
		if (node == NULL) {
			pg_diag_error_at(diag, item, "a pins entry of key '%s' has no public_key_sha256; "
			                 "add public_key_sha256: HEX (64 hex digits)", key->name);
			continue;
		}
		if ((text = pg_yget_string(diag, node, "public_key_sha256")) == NULL)
			continue;
		if (!pg_hex_decode(text, pin->sha256, sizeof pin->sha256)) {
			pg_diag_error_at(diag, node, "public_key_sha256 must be 64 hex digits, the SHA-256 "
			                 "of the key's DER SubjectPublicKeyInfo, not '%s'", text);
			continue;
		}
		for (size_t j = 0; j < key->n_pins; j++) {
			if (memcmp(key->pins[j].sha256, pin->sha256, sizeof pin->sha256) == 0)
				pg_diag_error_at(diag, node, "key '%s' lists public key %.16s... twice under "
				                 "pins; keep one entry", key->name, text);
		}
		if ((node = pg_ymap_get(item, "not_after")) != NULL)
			compile_date(load, node, "not_after", &pin->not_after);
		key->n_pins++;
	}
	return true;
}

/* The serial's bytes as the certificate and the CRL encode them. */
static bool
serial_bytes(const ASN1_INTEGER *serial, unsigned char *out, size_t *len)
{
	int n = ASN1_STRING_length(serial);

	if (n < 0 || (size_t)n > PG_CERT_SERIAL_MAX)
		return false;
	memcpy(out, ASN1_STRING_get0_data(serial), (size_t)n);
	*len = (size_t)n;
	return true;
}

static int
revoked_cmp(const void *a, const void *b)
{
	const struct pg_revoked *x = a, *y = b;
	int c = memcmp(x->issuer_sha256, y->issuer_sha256, sizeof x->issuer_sha256);

	if (c != 0)
		return c;
	if (x->serial_len != y->serial_len)
		return x->serial_len < y->serial_len ? -1 : 1;
	return memcmp(x->serial, y->serial, x->serial_len);
}

static bool
name_sha256(const X509_NAME *name, unsigned char out[32])
{
	unsigned char *der = NULL;
	int n = i2d_X509_NAME(name, &der);
	bool ok = n > 0 && pg_sha256(der, (size_t)n, out);

	OPENSSL_free(der);
	return ok;
}

#define CRL_MAX_BYTES (64u << 20)

/* The bytes of path: a regular file of at most CRL_MAX_BYTES, read whole
 * (a FIFO or /dev/zero named there must not hold the policy's load).
 * false with why. */
static bool
read_bounded(const char *path, unsigned char **out, size_t *out_len, char *why, size_t why_len)
{
	unsigned char *data = NULL;
	size_t len = 0, cap = 0;
	bool not_regular, ok = false;
	int fd = pg_open_regular(path, &not_regular);
	ssize_t n;

	if (fd < 0) {
		snprintf(why, why_len, "%s", not_regular ? "not a regular file" : strerror(errno));
		return false;
	}
	for (;;) {
		if (len == cap) {
			unsigned char *more = cap < CRL_MAX_BYTES ? realloc(data, cap = cap ? 2 * cap : 65536) : NULL;

			if (more == NULL) {
				snprintf(why, why_len, cap >= CRL_MAX_BYTES ? "larger than %u bytes" : "out of memory",
				         CRL_MAX_BYTES);
				goto out;
			}
			data = more;
		}
		n = read(fd, data + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, why_len, "%s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	ok = true;
out:
	close(fd);
	if (!ok) {
		free(data);
		return false;
	}
	*out = data;
	*out_len = len;
	return true;
}

/* The CRL at path (PEM or DER), parsed from memory.  NULL with why. */
static X509_CRL *
read_crl(const char *path, char *why, size_t why_len)
{
	X509_CRL *crl = NULL;
	unsigned char *data = NULL;
	size_t len = 0;
	BIO *bio = NULL;

	if (!read_bounded(path, &data, &len, why, why_len))
		return NULL;
	snprintf(why, why_len, "it does not read as a CRL (PEM or DER)");
	if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL)
		goto out;
	crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
	if (crl == NULL) {
		const unsigned char *p = data;

		crl = d2i_X509_CRL(NULL, &p, (long)len);
	}
out:
	BIO_free(bio);
	free(data);
	return crl;
}

/* The certificates of a PEM file (at least one).  NULL with why. */
static STACK_OF(X509) *
read_cas(const char *path, char *why, size_t why_len)
{
	STACK_OF(X509) *cas = NULL;
	unsigned char *data = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	X509 *cert;

	if (!read_bounded(path, &data, &len, why, why_len))
		return NULL;
	snprintf(why, why_len, "it holds no PEM certificate");
	if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL || (cas = sk_X509_new_null()) == NULL)
		goto out;
	while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_push(cas, cert) <= 0) {
			X509_free(cert);
			break;
		}
	}
	if (sk_X509_num(cas) == 0) {
		sk_X509_free(cas);
		cas = NULL;
	}
out:
	BIO_free(bio);
	free(data);
	return cas;
}

/* Whether a certificate of cas signed crl: one named as its issuer, that
 * may sign CRLs (no keyUsage, or one with cRLSign), whose key verifies
 * the CRL's signature.  why says what failed. */
static bool
crl_signed_by(X509_CRL *crl, STACK_OF(X509) *cas, char *why, size_t why_len)
{
	char issuer[256];

	X509_NAME_oneline(X509_CRL_get_issuer(crl), issuer, sizeof issuer);
	snprintf(why, why_len, "no certificate there is its issuer %s", issuer);
	for (int i = 0; i < sk_X509_num(cas); i++) {
		X509 *ca = sk_X509_value(cas, i);
		EVP_PKEY *key = X509_get0_pubkey(ca);

		if (X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) != 0)
			continue;
		if ((X509_get_key_usage(ca) & KU_CRL_SIGN) == 0) {
			snprintf(why, why_len, "the certificate of its issuer %s does not allow signing CRLs "
			         "(its keyUsage lacks cRLSign)", issuer);
			continue;
		}
		if (key != NULL && X509_CRL_verify(crl, key) == 1)
			return true;
		snprintf(why, why_len, "its signature does not verify with the key of %s there (a CRL "
		         "made or changed by someone else)", issuer);
	}
	return false;
}

/* Reads the CRL into the key's sorted revoked list, once ca_file's CA is
 * shown to have signed it: a CRL usually travels over plain HTTP, and an
 * unsigned list could unrevoke a certificate.  A file that does not read,
 * or a CRL that does not verify, is an error: the policy does not load
 * (a reload keeps the policy in force, and its CRL). */
static bool
compile_crl(struct pg_load *load, struct pg_key *key, const struct pg_ynode *node,
            const struct pg_ynode *ca_node)
{
	struct pg_key_life *life = &key->life;
	const char *path = pg_yget_string(load->diag, node, "crl_file");
	const char *ca_path = ca_node != NULL ? pg_yget_string(load->diag, ca_node, "ca_file") : NULL;
	STACK_OF(X509_REVOKED) *list;
	STACK_OF(X509) *cas = NULL;
	unsigned char issuer[32];
	char why[400];
	X509_CRL *crl = NULL;
	struct tm tm;
	bool ok = true;

	if (path == NULL)
		return true;
	if (path[0] != '/') {
		pg_diag_error_at(load->diag, node, "crl_file '%s' must be an absolute path", path);
		return true;
	}
	if (ca_node == NULL) {
		pg_diag_error_at(load->diag, node, "crl_file needs ca_file: the CA certificate(s) (PEM) "
		                 "whose signature on the CRL p11gate checks; add ca_file: /etc/p11gate/ca.pem");
		return true;
	}
	if (ca_path == NULL)
		return true;
	if (ca_path[0] != '/') {
		pg_diag_error_at(load->diag, ca_node, "ca_file '%s' must be an absolute path", ca_path);
		return true;
	}
	ERR_set_mark();
	crl = read_crl(path, why, sizeof why);
	if (crl == NULL || !name_sha256(X509_CRL_get_issuer(crl), issuer)) {
		pg_diag_error_at(load->diag, node, "crl_file '%s' cannot be read as a CRL (%s): "
		                 "fix the path or publish the CRL there (openssl crl -in FILE -noout "
		                 "-text shows what is wrong)", path, crl == NULL ? why : "no issuer");
		goto out;
	}
	if ((cas = read_cas(ca_path, why, sizeof why)) == NULL) {
		pg_diag_error_at(load->diag, ca_node, "ca_file '%s' cannot be read as PEM certificates (%s)",
		                 ca_path, why);
		goto out;
	}
	if (!crl_signed_by(crl, cas, why, sizeof why)) {
		pg_diag_error_at(load->diag, node, "crl_file '%s' is not signed by a CA of ca_file '%s': "
		                 "%s; publish the CA's own CRL (openssl crl -in FILE -CAfile CA -noout "
		                 "verifies it)", path, ca_path, why);
		goto out;
	}
	if ((life->crl_file = pg_arena_strdup(&load->policy->arena, path)) == NULL) {
		ok = false;
		goto out;
	}
	if (X509_CRL_get0_nextUpdate(crl) != NULL &&
	    ASN1_TIME_to_tm(X509_CRL_get0_nextUpdate(crl), &tm) == 1)
		life->crl_next_update = timegm(&tm);
	list = X509_CRL_get_REVOKED(crl);
	if (sk_X509_REVOKED_num(list) <= 0)
		goto out;
	life->revoked = pg_arena_calloc(&load->policy->arena, (size_t)sk_X509_REVOKED_num(list),
	                                sizeof *life->revoked);
	if (life->revoked == NULL) {
		ok = false;
		goto out;
	}
	for (int i = 0; i < sk_X509_REVOKED_num(list); i++) {
		struct pg_revoked *r = &life->revoked[life->n_revoked];

		memcpy(r->issuer_sha256, issuer, sizeof issuer);
		if (serial_bytes(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(list, i)),
		                 r->serial, &r->serial_len))
			life->n_revoked++;
	}
	if (life->n_revoked > 0)
		qsort(life->revoked, life->n_revoked, sizeof *life->revoked, revoked_cmp);
out:
	ERR_pop_to_mark();
	sk_X509_pop_free(cas, X509_free);
	X509_CRL_free(crl);
	return ok;
}

static bool
compile_certificate(struct pg_load *load, struct pg_key *key, const struct pg_ynode *map)
{
	struct pg_diag *diag = load->diag;
	struct pg_key_life *life = &key->life;
	const struct pg_ynode *node;
	const char *text;

	if (!pg_yexpect(diag, map, PG_Y_MAP, "certificate"))
		return true;
	life->certificate = true;
	/* Without a pin p11gate cannot tell a certificate for the key from
	 * its public key alone (src/module/manage.c, add_keys_certified). */
	if (key->n_pins == 0)
		pg_diag_warning_at(diag, map, "key '%s' checks certificates but has no public_key_sha256 "
		                   "or pins: a certificate made through p11gate for its public key under "
		                   "other names than the key's is not judged as manage on it, and can "
		                   "refuse it; pin the key", key->name);
	pg_ymap_check_keys(diag, map, certificate_fields, "certificate");
	if ((node = pg_ymap_get(map, "required")) != NULL)
		pg_yget_bool(diag, node, "required", &life->cert_required);
	if ((node = pg_ymap_get(map, "eku")) != NULL && (text = pg_yget_string(diag, node, "eku")) != NULL) {
		life->eku_nid = OBJ_txt2nid(text);
		life->eku_text = pg_arena_strdup(&load->policy->arena, text);
		if (life->eku_text == NULL)
			return false;
		if (life->eku_nid == NID_undef)
			pg_diag_error_at(diag, node, "eku '%s' is not an extended key usage OpenSSL knows; "
			                 "use codeSigning, timeStamping, emailProtection, clientAuth, "
			                 "serverAuth or a dotted OID", text);
	}
	if ((node = pg_ymap_get(map, "warn_days")) != NULL &&
	    (text = pg_yget_string(diag, node, "warn_days")) != NULL) {
		char *end;
		unsigned long days = strtoul(text, &end, 10);

		if (*end != '\0' || text[0] < '0' || text[0] > '9' || days > WARN_DAYS_MAX)
			pg_diag_error_at(diag, node, "warn_days must be a whole number of days, 0-%d, not "
			                 "'%s'", WARN_DAYS_MAX, text);
		else
			life->warn_days = (unsigned)days;
	}
	if ((node = pg_ymap_get(map, "crl_file")) != NULL)
		return compile_crl(load, key, node, pg_ymap_get(map, "ca_file"));
	if ((node = pg_ymap_get(map, "ca_file")) != NULL)
		pg_diag_error_at(diag, node, "ca_file is the CA whose signature on crl_file is checked, "
		                 "and there is no crl_file; add crl_file or remove ca_file");
	return true;
}

bool
pg_life_compile(struct pg_load *load, struct pg_key *key, const struct pg_ynode *body)
{
	const struct pg_ynode *node;

	key->life.warn_days = PG_WARN_DAYS_DEFAULT;
	if ((node = pg_ymap_get(body, "pins")) != NULL && pg_ymap_get(body, "public_key_sha256") == NULL &&
	    !compile_pins(load, key, node))
		return false;
	if ((node = pg_ymap_get(body, "not_after")) != NULL)
		compile_date(load, node, "not_after", &key->life.not_after);
	if ((node = pg_ymap_get(body, "certificate")) != NULL)
		return compile_certificate(load, key, node);
	return true;
}

/* One of key_minimum's sizes: whole bits, from the built-in floor (a
 * minimum below it would say less than inventory already does) to max. */
static void
compile_bits(struct pg_diag *diag, const struct pg_ynode *map, const char *field, unsigned long floor,
             unsigned long max, const char *hint, unsigned long *out)
{
	const struct pg_ynode *node = pg_ymap_get(map, field);
	const char *text;
	unsigned long bits;
	char *end;

	if (node == NULL || (text = pg_yget_string(diag, node, field)) == NULL)
		return;
	errno = 0;
	bits = strtoul(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || bits < floor || bits > max)
		pg_diag_error_at(diag, node, "key_minimum.%s must be a whole number of bits from %lu (the "
		                 "built-in floor) to %lu%s, not '%s'", field, floor, max, hint, text);
	else
		*out = bits;
}

void
pg_key_minimum_compile(struct pg_load *load, const struct pg_ynode *root)
{
	struct pg_key_minimum *min = &load->policy->key_minimum;
	const struct pg_ynode *map = pg_ymap_get(root, "key_minimum"), *node;

	*min = (struct pg_key_minimum){ .rsa_bits = PG_WEAK_RSA_BITS, .ec_bits = PG_WEAK_EC_BITS };
	if (map == NULL || !pg_yexpect(load->diag, map, PG_Y_MAP, "key_minimum"))
		return;
	min->configured = true;
	min->enforce = true;
	pg_ymap_check_keys(load->diag, map, key_minimum_fields, "key_minimum");
	compile_bits(load->diag, map, "rsa_bits", PG_WEAK_RSA_BITS, RSA_BITS_MAX, " (e.g. 3072)",
	             &min->rsa_bits);
	compile_bits(load->diag, map, "ec_bits", PG_WEAK_EC_BITS, EC_BITS_MAX,
	             " (the curve's order: P-256 is 256, P-384 384, P-521 521)", &min->ec_bits);
	if ((node = pg_ymap_get(map, "enforce")) != NULL)
		pg_yget_bool(load->diag, node, "key_minimum.enforce", &min->enforce);
}

/* ---- judging ---------------------------------------------------------------- */

const struct pg_key_minimum *
pg_policy_key_minimum(const pg_policy *policy)
{
	return &policy->key_minimum;
}

bool
pg_policy_key_weak(const pg_policy *policy, enum pg_key_family family, unsigned long bits, char *why,
                   size_t why_len)
{
	const struct pg_key_minimum *min = &policy->key_minimum;
	const bool rsa = family == PG_KEY_RSA;
	const unsigned long builtin = rsa ? PG_WEAK_RSA_BITS : PG_WEAK_EC_BITS;
	unsigned long floor = rsa ? min->rsa_bits : min->ec_bits;

	if (family == PG_KEY_OTHER)
		return false;
	if (floor < builtin)
		floor = builtin;
	if (bits >= floor)
		return false;
	if (bits == 0)
		snprintf(why, why_len, "the %s key's size could not be read from the token, so it is not "
		         "shown to reach %lu bits", rsa ? "RSA" : "EC", floor);
	else if (floor > builtin)
		snprintf(why, why_len, "%s-%lu is weak: below key_minimum.%s %lu", rsa ? "RSA" : "EC", bits,
		         rsa ? "rsa_bits" : "ec_bits", floor);
	else
		snprintf(why, why_len, "%s-%lu is weak: below the built-in floor of %lu bits",
		         rsa ? "RSA" : "EC", bits, floor);
	return true;
}

bool
pg_policy_key_needs_certs(const pg_policy *policy, unsigned idx)
{
	return idx < policy->n_keys && policy->keys[idx].life.certificate;
}

int
pg_policy_cert_key(const pg_policy *policy, const unsigned char spki[32])
{
	for (size_t k = 0; k < policy->n_keys; k++) {
		const struct pg_key *key = &policy->keys[k];

		for (size_t i = 0; key->life.certificate && i < key->n_pins; i++) {
			if (memcmp(key->pins[i].sha256, spki, PG_SHA256_LEN) == 0)
				return (int)k;
		}
	}
	return -1;
}

bool
pg_policy_key_has_life(const pg_policy *policy, unsigned idx)
{
	const struct pg_key *key = idx < policy->n_keys ? &policy->keys[idx] : NULL;

	if (key == NULL)
		return false;
	for (size_t i = 0; i < key->n_pins; i++) {
		if (key->pins[i].not_after != 0)
			return true;
	}
	return key->life.certificate || key->life.not_after != 0;
}

const char *
pg_life_status_name(enum pg_life_status status)
{
	switch (status) {
	case PG_LIFE_OK: return "ok";
	case PG_LIFE_EXPIRING: return "expiring";
	case PG_LIFE_NO_CERTIFICATE: return "no-certificate";
	case PG_LIFE_EXPIRED: return "expired";
	case PG_LIFE_NOT_YET_VALID: return "not-yet-valid";
	case PG_LIFE_WRONG_EKU: return "wrong-eku";
	case PG_LIFE_REVOKED: return "revoked";
	case PG_LIFE_RETIRED: return "retired";
	case PG_LIFE_UNREADABLE: return "unreadable";
	case PG_LIFE_WEAK: return "weak";
	}
	return "unknown";
}

/* The first instant after the last day YYYYMMDD (UTC). */
static time_t
day_end(long date)
{
	struct tm tm = { .tm_year = (int)(date / 10000) - 1900, .tm_mon = (int)(date / 100 % 100) - 1,
	                 .tm_mday = (int)(date % 100) + 1 };

	return timegm(&tm);
}

static void
date_text(time_t t, char out[32])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "%lld", (long long)t);
}

static bool
revoked(const struct pg_key *key, const struct pg_cert_facts *cert)
{
	struct pg_revoked probe;

	if (key == NULL || key->life.n_revoked == 0 || cert->serial_len > sizeof probe.serial)
		return false;
	memset(&probe, 0, sizeof probe);
	memcpy(probe.issuer_sha256, cert->issuer_sha256, sizeof probe.issuer_sha256);
	memcpy(probe.serial, cert->serial, cert->serial_len);
	probe.serial_len = cert->serial_len;
	return bsearch(&probe, key->life.revoked, key->life.n_revoked, sizeof probe, revoked_cmp) != NULL;
}

static bool
has_eku(const struct pg_cert_facts *cert, int nid)
{
	for (size_t i = 0; cert->has_eku && i < cert->n_eku; i++) {
		if (cert->eku[i] == nid)
			return true;
	}
	return false;
}

static const struct pg_key *
key_at(const pg_policy *policy, int idx)
{
	return idx >= 0 && (size_t)idx < policy->n_keys ? &policy->keys[idx] : NULL;
}

static long
warn_seconds(const struct pg_key *key, long warn_days)
{
	if (warn_days < 0)
		warn_days = key != NULL ? (long)key->life.warn_days : (long)PG_WARN_DAYS_DEFAULT;
	return warn_days * 86400;
}

enum pg_life_status
pg_policy_cert_status(const pg_policy *policy, int idx, const struct pg_cert_facts *cert, time_t now,
                      long warn_days)
{
	const struct pg_key *key = key_at(policy, idx);

	if (revoked(key, cert))
		return PG_LIFE_REVOKED;
	if (now < cert->not_before)
		return PG_LIFE_NOT_YET_VALID;
	if (now > cert->not_after)
		return PG_LIFE_EXPIRED;
	if (key != NULL && key->life.eku_nid != 0 && !has_eku(cert, key->life.eku_nid))
		return PG_LIFE_WRONG_EKU;
	if (cert->not_after - now < warn_seconds(key, warn_days))
		return PG_LIFE_EXPIRING;
	return PG_LIFE_OK;
}

/* Keeps the gravest finding: a refusal over a warning, and of two
 * warnings the nearer date. */
static void
note(struct pg_life_verdict *out, enum pg_life_status status, bool refuse, long days_left,
     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
note(struct pg_life_verdict *out, enum pg_life_status status, bool refuse, long days_left,
     const char *fmt, ...)
{
	va_list ap;

	if (out->refuse)
		return;
	if (!refuse && out->status == PG_LIFE_EXPIRING && out->days_left <= days_left)
		return;
	out->status = status;
	out->refuse = refuse;
	out->days_left = days_left;
	va_start(ap, fmt);
	vsnprintf(out->message, sizeof out->message, fmt, ap);
	va_end(ap);
}

/* A date the key may be used through (not_after, a pin's, CKA_END_DATE). */
static void
check_date(struct pg_life_verdict *out, long date, const char *what, time_t now, long warn)
{
	time_t end;

	if (date <= 0)
		return;
	end = day_end(date);
	if (now >= end)
		note(out, PG_LIFE_RETIRED, true, 0, "the key is past its %s %04ld-%02ld-%02ld", what,
		     date / 10000, date / 100 % 100, date % 100);
	else if (end - now <= warn)
		note(out, PG_LIFE_EXPIRING, false, (long)((end - now) / 86400),
		     "the key's %s is %04ld-%02ld-%02ld, in %ld days", what, date / 10000,
		     date / 100 % 100, date % 100, (long)((end - now) / 86400));
}

static void
check_cert(const pg_policy *policy, int idx, const struct pg_cert_facts *cert, time_t now,
           long warn_days, struct pg_life_verdict *out)
{
	const struct pg_key *key = key_at(policy, idx);
	enum pg_life_status status = pg_policy_cert_status(policy, idx, cert, now, warn_days);
	char fp[17], serial[2 * PG_CERT_SERIAL_MAX + 1], when[32];

	pg_hex_encode(cert->sha256, 8, fp);
	pg_hex_encode(cert->serial, cert->serial_len, serial);
	switch (status) {
	case PG_LIFE_REVOKED:
		note(out, status, true, 0, "certificate %s (serial %s) is revoked in %s", fp, serial,
		     key->life.crl_file);
		break;
	case PG_LIFE_NOT_YET_VALID:
		date_text(cert->not_before, when);
		note(out, status, true, 0, "certificate %s (serial %s) is not valid before %s", fp,
		     serial, when);
		break;
	case PG_LIFE_EXPIRED:
		date_text(cert->not_after, when);
		note(out, status, true, 0, "certificate %s (serial %s) expired at %s", fp, serial, when);
		break;
	case PG_LIFE_WRONG_EKU:
		note(out, status, true, 0, "certificate %s (serial %s) has no extended key usage %s",
		     fp, serial, key->life.eku_text);
		break;
	case PG_LIFE_EXPIRING:
		date_text(cert->not_after, when);
		note(out, status, false, (long)((cert->not_after - now) / 86400),
		     "certificate %s (serial %s) expires at %s, in %ld days", fp, serial, when,
		     (long)((cert->not_after - now) / 86400));
		break;
	default:
		break;
	}
}

/* Every certificate of the key counts, and each must pass: a certificate
 * that anyone could plant beside the key (the public key is public) can
 * then only refuse the key, never make it usable. */
static void
dates_and_certs(const pg_policy *policy, int idx, const struct pg_key_facts *facts, time_t now,
                long warn_days, struct pg_life_verdict *out)
{
	const struct pg_key *key = key_at(policy, idx);
	const struct pg_key_certs *certs = facts->certs;
	long warn = warn_seconds(key, warn_days);

	memset(out, 0, sizeof *out);
	if (key != NULL) {
		check_date(out, key->life.not_after, "not_after", now, warn);
		check_date(out, pg_key_pin_not_after(key, facts), "pin's not_after", now, warn);
	}
	check_date(out, facts->end_date, "CKA_END_DATE on the token", now, warn);
	if (key == NULL ? certs == NULL : !key->life.certificate)
		return;
	if (certs == NULL || !certs->complete) {
		note(out, PG_LIFE_UNREADABLE, true, 0, "the key's certificates could not all be read "
		     "from the token (at most %d are checked)", PG_CERT_MAX);
		return;
	}
	if (key != NULL && key->life.crl_file != NULL && key->life.crl_next_update != 0 &&
	    now > key->life.crl_next_update) {
		char when[32];

		date_text(key->life.crl_next_update, when);
		note(out, PG_LIFE_UNREADABLE, true, 0, "the CRL %s is out of date (its nextUpdate was "
		     "%s): publish a new one and reload the policy", key->life.crl_file, when);
		return;
	}
	if (certs->n == 0 && key != NULL && key->life.cert_required)
		note(out, PG_LIFE_NO_CERTIFICATE, true, 0, "no certificate on the token carries the "
		     "key's public key (certificate.required)");
	for (size_t i = 0; i < certs->n; i++)
		check_cert(policy, idx, &certs->cert[i], now, warn_days, out);
}

/* The key's dates and certificates, then (if nothing refused yet, so that
 * the gravest dated reason is the one shown) its size under an enforced
 * key_minimum. */
void
pg_policy_lifecycle(const pg_policy *policy, int idx, const struct pg_key_facts *facts, time_t now,
                    long warn_days, struct pg_life_verdict *out)
{
	char why[160];

	dates_and_certs(policy, idx, facts, now, warn_days, out);
	if (policy->key_minimum.configured && policy->key_minimum.enforce &&
	    pg_policy_key_weak(policy, facts->family, facts->bits, why, sizeof why))
		note(out, PG_LIFE_WEAK, true, 0, "%s (key_minimum.enforce)", why);
}
