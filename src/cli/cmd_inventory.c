/* SPDX-License-Identifier: Apache-2.0
 *
 * `p11gate inventory` (and its old name `p11gate keys`): every private and
 * secret key on every token of the configured module, its certificates
 * (matched by public key), what the policy says of it, and a status — the
 * same lifecycle verdict signing enforces (src/policy/lifecycle.c), plus
 * what only a view of all tokens shows: shadow keys no policy key names,
 * policy keys with no object, one public key in two objects, weak keys.
 * A table for people, --json for dashboards, exit 0/1/2 for cron and CI.
 */
#include "p11gate-build.h"
#include "commands.h"
#include "p11gate/common.h"
#include "p11gate/keyinfo.h"
#include "p11gate/policy.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <p11-kit/p11-kit.h>

#define MAX_SLOTS 64
#define MAX_PIN 256

enum { EXIT_OK, EXIT_WARNINGS, EXIT_VIOLATIONS, EXIT_ERROR };

/* A finding about one key; its severity decides the exit status. */
enum finding {
	F_OK, F_EXPIRING, F_NO_CERTIFICATE, F_UNNAMED,         /* warnings (and ok) */
	F_EXPIRED, F_NOT_YET_VALID, F_WRONG_EKU, F_REVOKED, F_RETIRED, F_UNREADABLE,
	F_REQUIRED_CERTIFICATE, F_DUPLICATE, F_WEAK, F_MISSING, /* violations */
	F_COUNT
};

static const char *const finding_names[F_COUNT] = {
	"ok", "expiring", "no-certificate", "unnamed", "expired", "not-yet-valid", "wrong-eku",
	"revoked", "retired", "unreadable", "no-certificate", "duplicate", "weak", "missing",
};

static bool
violation(enum finding f)
{
	return f >= F_EXPIRED;
}

struct cert {
	X509 *x509;
	unsigned char spki[32];
	struct pg_cert_facts facts;
	CK_SLOT_ID slot;
};

struct key {
	struct pg_keyinfo info;
	struct pg_key_match match;
	char algorithm[32];
	unsigned long bits;
	struct pg_key_certs certs;
	size_t cert_index[PG_CERT_MAX];   /* into the inventory's certificates */
	enum finding status;
	char findings[8][400];
	enum finding finding_kind[8];
	size_t n_findings;
};

struct inventory {
	const pg_policy *policy;
	const CK_FUNCTION_LIST *m;
	time_t now;
	long warn_days;                   /* -1: each key's own */
	struct key *keys;
	size_t n_keys, cap_keys;
	struct cert *certs;
	size_t n_certs, cap_certs;
	json_t *tokens;                   /* for --json */
	bool *named;                      /* per policy key: an object matched it */
	bool logged_in;
	unsigned count[F_COUNT];
};

static void
usage(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate inventory [--config FILE] [--json] [--warn-days N] [--login --pin-file FILE]\n"
	        "List every private and secret key on the tokens of the configured module, its\n"
	        "certificates (matched by public key), what the policy says of it, and its status:\n"
	        "ok, expiring, expired, not-yet-valid, no-certificate, wrong-eku, revoked, retired,\n"
	        "unnamed, missing, duplicate, weak.  'p11gate keys' is the same command.\n\n"
	        "  -c, --config FILE    the p11gate configuration (default: $P11GATE_CONFIG, then\n"
	        "                       " P11GATE_DEFAULT_CONFIG ")\n"
	        "  -j, --json           one JSON document instead of the table\n"
	        "  -w, --warn-days N    expiring: within N days (default: each key's\n"
	        "                       certificate.warn_days, else 30)\n"
	        "  -l, --login          log in as the user, to list keys and certificates that\n"
	        "                       only a logged-in session sees\n"
	        "  -p, --pin-file FILE  the PIN for --login, the file's first line (never on the\n"
	        "                       command line; without it, the policy's login.token_pin_file,\n"
	        "                       else $P11GATE_PIN)\n"
	        "  -h, --help           show this help\n\n"
	        "Exit status: 0 every key is ok, 1 warnings (expiring, unnamed, no certificate),\n"
	        "2 violations (expired, not yet valid, wrong EKU, revoked, retired, missing,\n"
	        "duplicate, weak, a required certificate absent), 3 the inventory could not be\n"
	        "taken (usage, policy, module or login).\n");
}

static void
print_diag(void *ctx, enum pg_severity severity, const char *file, unsigned long line,
           unsigned long column, const char *message)
{
	char shown[2048];

	(void)ctx;
	if (severity == PG_DIAG_ERROR)
		fprintf(stderr, "%s:%lu:%lu: error: %s\n", file, line, column,
		        pg_esc(message, PG_ESC_TEXT, shown, sizeof shown));
}

/* The PIN: the first line of a regular file (without its newline). */
static bool
read_pin(const char *path, char *pin, size_t len)
{
	FILE *f;
	bool ok;

	if (path == NULL) {
		const char *env = getenv("P11GATE_PIN");

		if (env == NULL || strlen(env) >= len) {
			fprintf(stderr, "p11gate: --login needs --pin-file FILE (or the policy's "
			        "login.token_pin_file, or P11GATE_PIN)\n");
			return false;
		}
		snprintf(pin, len, "%s", env);
		return true;
	}
	if ((f = fopen(path, "re")) == NULL) {
		fprintf(stderr, "p11gate: cannot read the PIN file %s: %s\n", path, strerror(errno));
		return false;
	}
	ok = fgets(pin, (int)len, f) != NULL;
	fclose(f);
	if (!ok) {
		fprintf(stderr, "p11gate: the PIN file %s is empty\n", path);
		return false;
	}
	pin[strcspn(pin, "\r\n")] = '\0';
	return true;
}

/* ---- what is on the tokens ---------------------------------------------------- */

static void *
grow(void *array, size_t *cap, size_t n, size_t size)
{
	void *bigger;

	if (n < *cap)
		return array;
	*cap = *cap ? *cap * 2 : 16;
	bigger = realloc(array, *cap * size);
	if (bigger == NULL) {
		fprintf(stderr, "p11gate: out of memory\n");
		exit(EXIT_ERROR);
	}
	return bigger;
}

/* Algorithm and size, as a person reads them: RSA-2048, EC-prime256v1.
 * RSA and EC sizes are the ones key_minimum judges at signing
 * (src/token/keyinfo.c reads them with the key). */
static void
describe_algorithm(const CK_FUNCTION_LIST *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, struct key *k)
{
	CK_ULONG value_len = 0;
	CK_BYTE params[128];
	CK_ATTRIBUTE a;

	switch (k->info.key_type) {
	case CKK_RSA:
		k->bits = k->info.bits;
		snprintf(k->algorithm, sizeof k->algorithm, "RSA-%lu", k->bits);
		break;
	case CKK_EC: {
		const unsigned char *p = params;
		ASN1_OBJECT *curve;
		int nid;

		k->bits = k->info.bits;
		a = (CK_ATTRIBUTE){ CKA_EC_PARAMS, params, sizeof params };
		snprintf(k->algorithm, sizeof k->algorithm, "EC");
		if (m->C_GetAttributeValue(s, o, &a, 1) != CKR_OK)
			break;
		curve = d2i_ASN1_OBJECT(NULL, &p, (long)a.ulValueLen);
		nid = curve != NULL ? OBJ_obj2nid(curve) : NID_undef;
		if (nid != NID_undef)
			snprintf(k->algorithm, sizeof k->algorithm, "EC-%s", OBJ_nid2sn(nid));
		ASN1_OBJECT_free(curve);
		break;
	}
	default:
		a = (CK_ATTRIBUTE){ CKA_VALUE_LEN, &value_len, sizeof value_len };
		if (m->C_GetAttributeValue(s, o, &a, 1) == CKR_OK)
			k->bits = value_len * 8;
		snprintf(k->algorithm, sizeof k->algorithm, "%s-%lu",
		         k->info.key_type == CKK_AES ? "AES" : k->info.key_type == CKK_GENERIC_SECRET ?
		         "GENERIC" : "SECRET", k->bits);
		break;
	}
}

static void
add_certificate(struct inventory *inv, CK_SLOT_ID slot, X509 *x509)
{
	struct cert *c;

	inv->certs = grow(inv->certs, &inv->cap_certs, inv->n_certs, sizeof *inv->certs);
	c = &inv->certs[inv->n_certs];
	memset(c, 0, sizeof *c);
	c->x509 = x509;
	c->slot = slot;
	if (!pg_cert_spki_sha256(x509, c->spki) || !pg_cert_facts_from_x509(x509, &c->facts)) {
		X509_free(x509);
		return;
	}
	inv->n_certs++;
}

static void
add_key(struct inventory *inv, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, const struct pg_keyinfo *info)
{
	struct pg_key_facts facts;
	struct key *k;

	inv->keys = grow(inv->keys, &inv->cap_keys, inv->n_keys, sizeof *inv->keys);
	k = &inv->keys[inv->n_keys++];
	memset(k, 0, sizeof *k);
	pg_keyinfo_copy(&k->info, info);
	pg_keyinfo_facts(&k->info, &facts);
	pg_policy_match_key(inv->policy, &facts, &k->match);
	describe_algorithm(inv->m, s, o, k);
}

static json_t *
token_json(const struct pg_keyinfo *t, CK_SLOT_ID slot, bool logged_in)
{
	return json_pack("{s:s, s:s, s:I, s:b}", "label", t->token_label, "serial", t->token_serial,
	                 "slot", (json_int_t)slot, "logged_in", logged_in);
}

/* Every object of the slot's token, in batches (no first-batch limit). */
static int
take_token(struct inventory *inv, CK_SLOT_ID slot, const char *pin)
{
	const CK_FUNCTION_LIST *m = inv->m;
	struct pg_keyinfo token;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE batch[64];
	CK_ULONG n = 0;
	bool logged_in = false;
	CK_RV rv;

	if (pg_keyinfo_read_token(m, slot, &token) != CKR_OK ||
	    m->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
		return EXIT_OK;
	if (pin != NULL) {
		rv = m->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
		if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
			fprintf(stderr, "p11gate: cannot log in to token %s: %s\n", token.token_label,
			        pg_rv_name(rv) ? pg_rv_name(rv) : "error");
			m->C_CloseSession(s);
			return EXIT_ERROR;
		}
		logged_in = true;
	}
	json_array_append_new(inv->tokens, token_json(&token, slot, logged_in));
	if (m->C_FindObjectsInit(s, NULL, 0) != CKR_OK)
		goto out;
	ERR_set_mark();
	while (m->C_FindObjects(s, batch, 64, &n) == CKR_OK && n > 0) {
		for (CK_ULONG i = 0; i < n; i++) {
			struct pg_keyinfo info;
			X509 *cert;

			if (pg_keyinfo_read_beside(m, s, batch[i], &token, &info) != CKR_OK)
				continue;
			if (info.cls == CKO_PRIVATE_KEY || info.cls == CKO_SECRET_KEY)
				add_key(inv, s, batch[i], &info);
			else if (info.cls == CKO_CERTIFICATE && (cert = pg_cert_read(m, s, batch[i])) != NULL)
				add_certificate(inv, slot, cert);
		}
	}
	ERR_pop_to_mark();
	m->C_FindObjectsFinal(s);
out:
	if (logged_in)
		m->C_Logout(s);
	m->C_CloseSession(s);
	return EXIT_OK;
}

/* ---- judging each key ------------------------------------------------------------ */

static void
add_finding(struct inventory *inv, struct key *k, enum finding f, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
add_finding(struct inventory *inv, struct key *k, enum finding f, const char *fmt, ...)
{
	va_list ap;

	(void)inv;
	if (k->n_findings == sizeof k->findings / sizeof k->findings[0])
		return;
	va_start(ap, fmt);
	vsnprintf(k->findings[k->n_findings], sizeof k->findings[0], fmt, ap);
	va_end(ap);
	k->finding_kind[k->n_findings++] = f;
	/* The key's status: its gravest finding (violations over warnings). */
	if (k->status == F_OK || (violation(f) && !violation(k->status)))
		k->status = f;
}

static enum finding
life_finding(enum pg_life_status status, bool required)
{
	switch (status) {
	case PG_LIFE_OK: return F_OK;
	case PG_LIFE_EXPIRING: return F_EXPIRING;
	case PG_LIFE_NO_CERTIFICATE: return required ? F_REQUIRED_CERTIFICATE : F_NO_CERTIFICATE;
	case PG_LIFE_EXPIRED: return F_EXPIRED;
	case PG_LIFE_NOT_YET_VALID: return F_NOT_YET_VALID;
	case PG_LIFE_WRONG_EKU: return F_WRONG_EKU;
	case PG_LIFE_REVOKED: return F_REVOKED;
	case PG_LIFE_RETIRED: return F_RETIRED;
	case PG_LIFE_UNREADABLE: return F_UNREADABLE;
	case PG_LIFE_WEAK: return F_WEAK;
	}
	return F_UNREADABLE;
}

/* The public key certificates are matched by: the pin that matched, else
 * the key's own (as at signing). */
static const unsigned char *
key_spki(const struct inventory *inv, const struct key *k)
{
	struct pg_key_facts facts;
	const unsigned char *pin;

	pg_keyinfo_facts(&k->info, &facts);
	pin = k->match.n > 0 ? pg_policy_key_pin_matched(inv->policy, k->match.idx[0], &facts) : NULL;
	return pin != NULL ? pin : k->info.have_spki ? k->info.spki_sha256 : NULL;
}

static void
collect_certs(const struct inventory *inv, struct key *k)
{
	const unsigned char *spki = key_spki(inv, k);

	k->certs.complete = true;
	for (size_t i = 0; spki != NULL && i < inv->n_certs; i++) {
		if (inv->certs[i].slot != k->info.slot || memcmp(inv->certs[i].spki, spki, 32) != 0)
			continue;
		if (k->certs.n == PG_CERT_MAX) {
			k->certs.complete = false;
			break;
		}
		k->cert_index[k->certs.n] = i;
		k->certs.cert[k->certs.n++] = inv->certs[i].facts;
	}
}

static void
judge_key(struct inventory *inv, struct key *k, size_t index)
{
	const int idx = k->match.n > 0 ? (int)k->match.idx[0] : -1;
	struct pg_life_verdict v;
	struct pg_key_facts facts;
	bool has_life = idx >= 0 && pg_policy_key_needs_certs(inv->policy, (unsigned)idx);
	char why[160];

	collect_certs(inv, k);
	for (size_t i = 0; i < k->match.n; i++)
		inv->named[k->match.idx[i]] = true;
	if (idx < 0 && k->match.pin_mismatch >= 0)
		add_finding(inv, k, F_UNNAMED, "matches the URI of key %s but not its pin: a shadow "
		            "key (a new key not pinned yet, or a substituted one)",
		            pg_policy_key_name(inv->policy, (unsigned)k->match.pin_mismatch));
	else if (idx < 0)
		add_finding(inv, k, F_UNNAMED, "no policy key names it: a shadow key (every use is refused)");
	pg_keyinfo_facts(&k->info, &facts);
	facts.certs = &k->certs;
	pg_policy_lifecycle(inv->policy, idx, &facts, inv->now, inv->warn_days, &v);
	/* A weak key's finding is said below, for every key (enforced or not). */
	if (v.status != PG_LIFE_OK && v.status != PG_LIFE_WEAK)
		add_finding(inv, k, life_finding(v.status, true), "%s", v.message);
	/* Every certificate's own finding, beyond the gravest one above. */
	for (size_t i = 0; i < k->certs.n; i++) {
		enum pg_life_status s = pg_policy_cert_status(inv->policy, idx, &k->certs.cert[i],
		                                              inv->now, inv->warn_days);
		enum finding f = life_finding(s, true);

		if (s != PG_LIFE_OK && s != v.status)
			add_finding(inv, k, f, "another certificate is %s", finding_names[f]);
	}
	if (k->info.cls == CKO_PRIVATE_KEY && k->certs.n == 0 && !has_life)
		add_finding(inv, k, F_NO_CERTIFICATE, "no certificate on the token carries its public key");
	if (k->info.cls == CKO_PRIVATE_KEY && pg_policy_key_weak(inv->policy, k->info.family, k->info.bits,
	                                                         why, sizeof why))
		add_finding(inv, k, F_WEAK, "%s%s", why, pg_policy_key_minimum(inv->policy)->enforce ?
		            " (key_minimum.enforce: signing with it is refused)" : "");
	for (size_t j = 0; k->info.have_spki && j < inv->n_keys; j++) {
		const struct key *other = &inv->keys[j];

		if (j != index && other->info.have_spki &&
		    memcmp(other->info.spki_sha256, k->info.spki_sha256, 32) == 0) {
			add_finding(inv, k, F_DUPLICATE, "the same public key is in another object (token %s, "
			            "label %.64s)", other->info.token_label, (const char *)other->info.label);
			break;
		}
	}
	inv->count[k->status]++;
}

/* ---- output ---------------------------------------------------------------------- */

static void
iso_time(time_t t, char out[32])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "?");
}

/* "digitalSignature, keyCertSign" and "codeSigning" as OpenSSL names them. */
static void
usages(X509 *x509, char *ku, size_t ku_len, char *eku, size_t eku_len)
{
	static const struct { uint32_t bit; const char *name; } bits[] = {
		{ KU_DIGITAL_SIGNATURE, "digitalSignature" }, { KU_NON_REPUDIATION, "nonRepudiation" },
		{ KU_KEY_ENCIPHERMENT, "keyEncipherment" }, { KU_DATA_ENCIPHERMENT, "dataEncipherment" },
		{ KU_KEY_AGREEMENT, "keyAgreement" }, { KU_KEY_CERT_SIGN, "keyCertSign" },
		{ KU_CRL_SIGN, "cRLSign" },
	};
	uint32_t k = X509_get_key_usage(x509);
	EXTENDED_KEY_USAGE *list = X509_get_ext_d2i(x509, NID_ext_key_usage, NULL, NULL);
	size_t used = 0;

	ku[0] = eku[0] = '\0';
	for (size_t i = 0; k != UINT32_MAX && i < sizeof bits / sizeof bits[0]; i++) {
		if (k & bits[i].bit)
			used += (size_t)snprintf(ku + used, used < ku_len ? ku_len - used : 0, "%s%s",
			                         used ? "," : "", bits[i].name);
	}
	used = 0;
	for (int i = 0; list != NULL && i < sk_ASN1_OBJECT_num(list); i++) {
		char name[80];

		OBJ_obj2txt(name, sizeof name, sk_ASN1_OBJECT_value(list, i), 0);
		if (OBJ_obj2nid(sk_ASN1_OBJECT_value(list, i)) != NID_undef)
			snprintf(name, sizeof name, "%s", OBJ_nid2sn(OBJ_obj2nid(sk_ASN1_OBJECT_value(list, i))));
		used += (size_t)snprintf(eku + used, used < eku_len ? eku_len - used : 0, "%s%s",
		                         used ? "," : "", name);
	}
	sk_ASN1_OBJECT_pop_free(list, ASN1_OBJECT_free);
}

static json_t *
cert_json(const struct inventory *inv, const struct key *k, size_t i)
{
	const struct cert *c = &inv->certs[k->cert_index[i]];
	char fp[65], serial[2 * PG_CERT_SERIAL_MAX + 1], nb[32], na[32], ku[200], eku[400];
	char *subject = X509_NAME_oneline(X509_get_subject_name(c->x509), NULL, 0);
	char *issuer = X509_NAME_oneline(X509_get_issuer_name(c->x509), NULL, 0);
	int idx = k->match.n > 0 ? (int)k->match.idx[0] : -1;
	json_t *j;

	pg_hex_encode(c->facts.sha256, 32, fp);
	pg_hex_encode(c->facts.serial, c->facts.serial_len, serial);
	iso_time(c->facts.not_before, nb);
	iso_time(c->facts.not_after, na);
	usages(c->x509, ku, sizeof ku, eku, sizeof eku);
	j = json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s, s:s, s:s, s:s}", "sha256", fp, "serial", serial,
	              "subject", subject, "issuer", issuer, "not_before", nb, "not_after", na,
	              "key_usage", ku, "extended_key_usage", eku, "status",
	              pg_life_status_name(pg_policy_cert_status(inv->policy, idx, &c->facts, inv->now,
	                                                        inv->warn_days)));
	OPENSSL_free(subject);
	OPENSSL_free(issuer);
	return j;
}

static const char *
class_name(CK_OBJECT_CLASS cls)
{
	return cls == CKO_PRIVATE_KEY ? "private-key" : "secret-key";
}

static void
label_of(const struct key *k, char *out, size_t len)
{
	size_t n = k->info.attrs[3].ulValueLen;

	pg_escape((const char *)k->info.label, n == CK_UNAVAILABLE_INFORMATION || n > sizeof k->info.label
	          ? 0 : n, PG_ESC_VALUE, out, len);
}

static json_t *
key_json(const struct inventory *inv, const struct key *k)
{
	char id[2 * PG_KEYINFO_MAX_ID + 1] = "", spki[65] = "", label[600];
	size_t id_len = k->info.attrs[2].ulValueLen;
	json_t *names = json_array(), *findings = json_array(), *certs = json_array();
	int idx = k->match.n > 0 ? (int)k->match.idx[0] : -1;

	if (id_len != CK_UNAVAILABLE_INFORMATION && id_len <= PG_KEYINFO_MAX_ID)
		pg_hex_encode(k->info.id, id_len, id);
	if (k->info.have_spki)
		pg_hex_encode(k->info.spki_sha256, 32, spki);
	label_of(k, label, sizeof label);
	for (size_t i = 0; i < k->match.n; i++)
		json_array_append_new(names, json_string(pg_policy_key_name(inv->policy, k->match.idx[i])));
	for (size_t i = 0; i < k->n_findings; i++)
		json_array_append_new(findings, json_pack("{s:s, s:s}", "status",
		                      finding_names[k->finding_kind[i]], "message", k->findings[i]));
	for (size_t i = 0; i < k->certs.n; i++)
		json_array_append_new(certs, cert_json(inv, k, i));
	return json_pack("{s:{s:s, s:s}, s:s, s:s, s:s, s:s?, s:s, s:I, s:o, s:s?, s:s?, s:s, s:o, s:o}",
	                 "token", "label", k->info.token_label, "serial", k->info.token_serial,
	                 "class", class_name(k->info.cls), "label", label, "id", id,
	                 "public_key_sha256", spki[0] ? spki : NULL, "algorithm", k->algorithm,
	                 "bits", (json_int_t)k->bits, "policy_keys", names,
	                 "owner", idx >= 0 ? pg_policy_key_owner(inv->policy, (unsigned)idx) : NULL,
	                 "purpose", idx >= 0 ? pg_policy_key_purpose(inv->policy, (unsigned)idx) : NULL,
	                 "status", finding_names[k->status], "findings", findings,
	                 "certificates", certs);
}

static void
print_key(const struct inventory *inv, const struct key *k)
{
	char label[600], id[2 * PG_KEYINFO_MAX_ID + 1] = "-", token[160], shown[2048];
	size_t id_len = k->info.attrs[2].ulValueLen;
	int idx = k->match.n > 0 ? (int)k->match.idx[0] : -1;
	const char *owner = idx >= 0 ? pg_policy_key_owner(inv->policy, (unsigned)idx) : NULL;

	if (id_len != CK_UNAVAILABLE_INFORMATION && id_len > 0 && id_len <= PG_KEYINFO_MAX_ID)
		pg_hex_encode(k->info.id, id_len, id);
	label_of(k, label, sizeof label);
	printf("%-14s %-10s %-20s %-6s %-14s %-16s %s\n", finding_names[k->status],
	       pg_esc(k->info.token_label, PG_ESC_VALUE, token, sizeof token), label, id,
	       k->algorithm, idx >= 0 ? pg_policy_key_name(inv->policy, (unsigned)idx) : "-",
	       owner != NULL ? owner : "-");
	for (size_t i = 0; i < k->n_findings; i++)
		printf("    %s: %s\n", finding_names[k->finding_kind[i]],
		       pg_esc(k->findings[i], PG_ESC_TEXT, shown, sizeof shown));
	for (size_t i = 0; i < k->certs.n; i++) {
		const struct cert *c = &inv->certs[k->cert_index[i]];
		char fp[17], serial[2 * PG_CERT_SERIAL_MAX + 1], nb[32], na[32], ku[200], eku[400];
		char subject[256], issuer[256], escaped[4096];

		pg_hex_encode(c->facts.sha256, 8, fp);
		pg_hex_encode(c->facts.serial, c->facts.serial_len, serial);
		iso_time(c->facts.not_before, nb);
		iso_time(c->facts.not_after, na);
		usages(c->x509, ku, sizeof ku, eku, sizeof eku);
		X509_NAME_oneline(X509_get_subject_name(c->x509), subject, sizeof subject);
		X509_NAME_oneline(X509_get_issuer_name(c->x509), issuer, sizeof issuer);
		snprintf(shown, sizeof shown, "certificate %s serial %s: %s, issuer %s, %.10s..%.10s, "
		         "KU %s, EKU %s", fp, serial, subject, issuer, nb, na, ku[0] ? ku : "-",
		         eku[0] ? eku : "-");
		printf("    %s\n", pg_esc(shown, PG_ESC_TEXT, escaped, sizeof escaped));
	}
}

static int
exit_status(const struct inventory *inv)
{
	int status = EXIT_OK;

	for (int f = 0; f < F_COUNT; f++) {
		if (inv->count[f] == 0 || f == F_OK)
			continue;
		if (violation((enum finding)f))
			return EXIT_VIOLATIONS;
		status = EXIT_WARNINGS;
	}
	return status;
}

static void
report(struct inventory *inv, bool as_json)
{
	size_t n_policy = pg_policy_key_count(inv->policy);
	json_t *doc = NULL, *keys = NULL, *missing = NULL, *summary = NULL;

	if (as_json) {
		keys = json_array();
		missing = json_array();
		summary = json_object();
	} else {
		printf("%-14s %-10s %-20s %-6s %-14s %-16s %s\n", "STATUS", "TOKEN", "LABEL", "ID",
		       "ALGORITHM", "POLICY KEY", "OWNER");
	}
	for (size_t i = 0; i < inv->n_keys; i++) {
		if (as_json)
			json_array_append_new(keys, key_json(inv, &inv->keys[i]));
		else
			print_key(inv, &inv->keys[i]);
	}
	for (size_t k = 0; k < n_policy; k++) {
		const char *name = pg_policy_key_name(inv->policy, (unsigned)k);
		const char *uri = pg_policy_key_uri(inv->policy, (unsigned)k);

		if (inv->named[k])
			continue;
		inv->count[F_MISSING]++;
		if (as_json)
			json_array_append_new(missing, json_pack("{s:s, s:s, s:s}", "key", name, "uri", uri,
			                                         "status", "missing"));
		else
			printf("%-14s %-10s %-20s %-6s %-14s %-16s %s\n    missing: no object on any token "
			       "matches %s%s\n", "missing", "-", "-", "-", "-", name,
			       pg_policy_key_owner(inv->policy, (unsigned)k) ?
			       pg_policy_key_owner(inv->policy, (unsigned)k) : "-", uri,
			       pg_policy_key_pin(inv->policy, (unsigned)k) ? " and its pin" : "");
	}
	for (int f = 0; f < F_COUNT; f++) {
		if (inv->count[f] == 0)
			continue;
		if (as_json)
			json_object_set_new(summary, finding_names[f], json_integer(inv->count[f] +
			                    (json_integer_value(json_object_get(summary, finding_names[f])))));
	}
	if (as_json) {
		doc = json_pack("{s:o, s:o, s:o, s:o, s:i}", "tokens", json_incref(inv->tokens), "keys", keys,
		                "missing", missing, "summary", summary, "exit", exit_status(inv));
		json_dumpf(doc, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(doc);
		return;
	}
	printf("\n%zu key(s) on %zu token(s)%s:", inv->n_keys, json_array_size(inv->tokens),
	       inv->logged_in ? "" : " (not logged in: keys only a login shows are not listed; --login)");
	for (int f = 0; f < F_COUNT; f++) {
		if (inv->count[f] > 0)
			printf(" %u %s%s", inv->count[f], finding_names[f], violation((enum finding)f) ? "!" : "");
	}
	printf("\n");
}

static const char *
config_path(const char *given)
{
	const char *env = getenv("P11GATE_CONFIG");

	if (given != NULL)
		return given;
	return env != NULL && env[0] != '\0' ? env : P11GATE_DEFAULT_CONFIG;
}

int
pg_cmd_inventory(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "warn-days", required_argument, NULL, 'w' },
		{ "login", no_argument, NULL, 'l' },
		{ "pin-file", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct inventory inv = { .warn_days = -1, .now = time(NULL) };
	const char *config = NULL, *pin_file = NULL;
	CK_FUNCTION_LIST *module = NULL;
	pg_policy *policy = NULL;
	CK_SLOT_ID slots[MAX_SLOTS];
	CK_ULONG n_slots = MAX_SLOTS;
	char pin[MAX_PIN];
	bool login = false, as_json = false;
	int opt, status = EXIT_ERROR;
	char *end;

	while ((opt = getopt_long(argc, argv, "c:jw:lp:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c': config = optarg; break;
		case 'j': as_json = true; break;
		case 'w':
			inv.warn_days = strtol(optarg, &end, 10);
			if (*end != '\0' || optarg[0] < '0' || optarg[0] > '9' || inv.warn_days > 3650) {
				fprintf(stderr, "p11gate: --warn-days takes a whole number of days, 0-3650\n");
				return EXIT_ERROR;
			}
			break;
		case 'l': login = true; break;
		case 'p': pin_file = optarg; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_ERROR;
		}
	}
	if (optind != argc || (pin_file != NULL && !login)) {
		if (pin_file != NULL && !login)
			fprintf(stderr, "p11gate: --pin-file is for --login\n");
		usage(stderr);
		return EXIT_ERROR;
	}
	policy = pg_policy_load(config_path(config), print_diag, NULL);
	if (policy == NULL)
		goto out;
	/* Without --pin-file: the real token's PIN file of the policy's
	 * login: block (token_pin_file), if it has one, else $P11GATE_PIN. */
	if (login && pin_file == NULL)
		pin_file = pg_policy_login(policy)->token_pin_file;
	if (login && !read_pin(pin_file, pin, sizeof pin))
		goto out;
	inv.logged_in = login;
	inv.policy = policy;
	inv.tokens = json_array();
	inv.named = calloc(pg_policy_key_count(policy) + 1, sizeof *inv.named);
	module = p11_kit_module_load(pg_policy_settings(policy)->module, P11_KIT_MODULE_UNMANAGED);
	if (inv.named == NULL || inv.tokens == NULL || module == NULL) {
		fprintf(stderr, "p11gate: cannot load module %s\n", pg_policy_settings(policy)->module);
		goto out;
	}
	inv.m = module;
	if (p11_kit_module_initialize(module) != CKR_OK) {
		fprintf(stderr, "p11gate: module %s does not initialise\n", pg_policy_settings(policy)->module);
		goto out;
	}
	status = EXIT_OK;
	if (module->C_GetSlotList(CK_TRUE, slots, &n_slots) == CKR_OK) {
		for (CK_ULONG i = 0; status == EXIT_OK && i < n_slots; i++)
			status = take_token(&inv, slots[i], login ? pin : NULL);
	}
	p11_kit_module_finalize(module);
	if (status != EXIT_OK)
		goto out;
	for (size_t i = 0; i < inv.n_keys; i++)
		judge_key(&inv, &inv.keys[i], i);
	report(&inv, as_json);
	status = exit_status(&inv);
out:
	OPENSSL_cleanse(pin, sizeof pin);
	if (module != NULL)
		p11_kit_module_release(module);
	for (size_t i = 0; i < inv.n_certs; i++)
		X509_free(inv.certs[i].x509);
	free(inv.certs);
	free(inv.keys);
	free(inv.named);
	json_decref(inv.tokens);
	pg_policy_unref(policy);
	return status;
}
