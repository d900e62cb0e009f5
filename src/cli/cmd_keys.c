/* SPDX-License-Identifier: Apache-2.0
 *
 * `p11gate keys`: the keys and certificates on the tokens behind a
 * configuration, and what its policy says of each (name, owner, purpose),
 * with certificate subjects and validity — and the policy keys that no
 * token object answers to.
 */
#include "p11gate-build.h"
#include "commands.h"
#include "p11gate/common.h"
#include "p11gate/keyinfo.h"
#include "p11gate/policy.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>

#define MAX_OBJECTS 256

static void
usage(FILE *out)
{
	fprintf(out,
	        "Usage: p11gate keys [--config FILE] [--login]\n"
	        "List the keys and certificates on the tokens of the configured module and what the\n"
	        "policy says of each.\n\n"
	        "  -c, --config FILE  the p11gate configuration (default: $P11GATE_CONFIG, then\n"
	        "                     " P11GATE_DEFAULT_CONFIG ")\n"
	        "  -l, --login        log in as the user to see private keys; the PIN is read from\n"
	        "                     the environment variable P11GATE_PIN (never from the command line)\n"
	        "  -h, --help         show this help\n\n"
	        "Exit status: 0 if the tokens were listed, 1 if the policy or the module does not\n"
	        "load, 2 on a usage error.\n");
}

static void
print_diag(void *ctx, enum pg_severity severity, const char *file, unsigned long line,
           unsigned long column, const char *message)
{
	char shown[2048];

	if (severity == PG_DIAG_ERROR)
		fprintf(stderr, "%s:%lu:%lu: error: %s\n", file, line, column,
		        pg_esc(message, PG_ESC_TEXT, shown, sizeof shown));
}

static const char *
class_name(CK_OBJECT_CLASS cls)
{
	switch (cls) {
	case CKO_PRIVATE_KEY: return "private-key";
	case CKO_PUBLIC_KEY: return "public-key";
	case CKO_SECRET_KEY: return "secret-key";
	case CKO_CERTIFICATE: return "certificate";
	default: return "object";
	}
}

/* Subject and validity of a certificate object, as one phrase. */
static void
describe_certificate(const CK_FUNCTION_LIST *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                     char *out, size_t len)
{
	CK_BYTE der[8192];
	CK_ATTRIBUTE a = { CKA_VALUE, der, sizeof der };
	const unsigned char *p = der;
	char subject[256] = "?";
	struct tm nb, na;
	X509 *cert = NULL;
	int after_now;

	snprintf(out, len, "unreadable certificate");
	if (m->C_GetAttributeValue(s, o, &a, 1) != CKR_OK ||
	    (cert = d2i_X509(NULL, &p, (long)a.ulValueLen)) == NULL)
		return;
	X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
	if (ASN1_TIME_to_tm(X509_get0_notBefore(cert), &nb) != 1 ||
	    ASN1_TIME_to_tm(X509_get0_notAfter(cert), &na) != 1)
		goto out;
	after_now = X509_cmp_current_time(X509_get0_notAfter(cert));
	snprintf(out, len, "%s, %04d-%02d-%02d..%04d-%02d-%02d (%s)", subject,
	         nb.tm_year + 1900, nb.tm_mon + 1, nb.tm_mday, na.tm_year + 1900, na.tm_mon + 1,
	         na.tm_mday,
	         X509_cmp_current_time(X509_get0_notBefore(cert)) > 0 ? "not yet valid"
	         : after_now < 0 ? "EXPIRED" : "valid");
out:
	X509_free(cert);
}

static void
describe_policy(const pg_policy *policy, const struct pg_keyinfo *info, bool *seen, char *out, size_t len)
{
	struct pg_key_facts facts;
	struct pg_key_match match;
	size_t used = 0;

	pg_keyinfo_facts(info, &facts);
	pg_policy_match_key(policy, &facts, &match);
	out[0] = '\0';
	if (match.n == 0 && match.pin_mismatch >= 0) {
		snprintf(out, len, "-> NOT %s: its public key does not match the pin",
		         pg_policy_key_name(policy, (unsigned)match.pin_mismatch));
		return;
	}
	if (match.n == 0) {
		snprintf(out, len, "-> not named by the policy");
		return;
	}
	for (size_t i = 0; i < match.n && used < len; i++) {
		unsigned k = match.idx[i];
		const char *owner = pg_policy_key_owner(policy, k);
		const char *purpose = pg_policy_key_purpose(policy, k);

		seen[k] = true;
		used += (size_t)snprintf(out + used, len - used, "%s%s (owner %s%s%s)", i ? ", " : "-> ",
		                         pg_policy_key_name(policy, k), owner ? owner : "none",
		                         purpose ? "; " : "", purpose ? purpose : "");
	}
}

static void
list_token(const CK_FUNCTION_LIST *m, CK_SLOT_ID slot, const pg_policy *policy, bool login,
           bool *seen)
{
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE objects[MAX_OBJECTS];
	CK_TOKEN_INFO token;
	CK_ULONG n = 0;
	char label[33], serial[17], shown_label[160], shown_serial[80];
	const char *pin = getenv("P11GATE_PIN");

	if (m->C_GetTokenInfo(slot, &token) != CKR_OK ||
	    m->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
		return;
	pg_fixed_to_cstr(token.label, sizeof token.label, label, sizeof label);
	pg_fixed_to_cstr(token.serialNumber, sizeof token.serialNumber, serial, sizeof serial);
	/* The token's strings are shown escaped: they are the token's to choose. */
	printf("token %s (serial %s, slot %lu)\n", pg_esc(label, PG_ESC_VALUE, shown_label,
	       sizeof shown_label), pg_esc(serial, PG_ESC_VALUE, shown_serial, sizeof shown_serial),
	       slot);
	if (login && pin != NULL &&
	    m->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)) != CKR_OK)
		printf("  (login failed: private keys not shown)\n");
	if (m->C_FindObjectsInit(s, NULL, 0) == CKR_OK) {
		m->C_FindObjects(s, objects, MAX_OBJECTS, &n);
		m->C_FindObjectsFinal(s);
	}
	for (CK_ULONG i = 0; i < n; i++) {
		struct pg_keyinfo info;
		char id[2 * PG_KEYINFO_MAX_ID + 1] = "", spki[65] = "-", what[512] = "", policy_says[512];
		char shown_what[1024];

		if (pg_keyinfo_read(m, s, objects[i], &info) != CKR_OK)
			continue;
		if (info.cls != CKO_PRIVATE_KEY && info.cls != CKO_PUBLIC_KEY &&
		    info.cls != CKO_SECRET_KEY && info.cls != CKO_CERTIFICATE)
			continue;
		if (info.attrs[2].ulValueLen != CK_UNAVAILABLE_INFORMATION)
			pg_hex_encode(info.id, info.attrs[2].ulValueLen, id);
		if (info.have_spki)
			pg_hex_encode(info.spki_sha256, 32, spki);
		if (info.cls == CKO_CERTIFICATE)
			describe_certificate(m, s, objects[i], what, sizeof what);
		describe_policy(policy, &info, seen, policy_says, sizeof policy_says);
		printf("  %-11s id=%s label=", class_name(info.cls), id);
		pg_escape_fputs(stdout, (const char *)info.label, info.attrs[3].ulValueLen >
		                sizeof info.label ? 0 : info.attrs[3].ulValueLen, PG_ESC_VALUE);
		putchar('\n');
		if (what[0] != '\0')
			printf("      %s\n", pg_esc(what, PG_ESC_TEXT, shown_what, sizeof shown_what));
		printf("      public key sha256 %s\n      %s\n", spki, policy_says);
	}
	m->C_CloseSession(s);
}

int
pg_cmd_keys(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "login", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = getenv("P11GATE_CONFIG");
	CK_FUNCTION_LIST *module = NULL;
	pg_policy *policy = NULL;
	CK_SLOT_ID slots[64];
	CK_ULONG n_slots = 64;
	bool login = false, *seen = NULL;
	int opt, status = 1;

	while ((opt = getopt_long(argc, argv, "c:lh", options, NULL)) != -1) {
		switch (opt) {
		case 'c': config = optarg; break;
		case 'l': login = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (config == NULL || config[0] == '\0')
		config = P11GATE_DEFAULT_CONFIG;
	policy = pg_policy_load(config, print_diag, NULL);
	if (policy == NULL)
		goto out;
	seen = calloc(pg_policy_key_count(policy) + 1, sizeof *seen);
	module = p11_kit_module_load(pg_policy_settings(policy)->module, P11_KIT_MODULE_UNMANAGED);
	if (seen == NULL || module == NULL) {
		fprintf(stderr, "p11gate: cannot load module %s\n", pg_policy_settings(policy)->module);
		goto out;
	}
	if (p11_kit_module_initialize(module) != CKR_OK) {
		fprintf(stderr, "p11gate: module %s does not initialise\n", pg_policy_settings(policy)->module);
		goto out;
	}
	if (module->C_GetSlotList(CK_TRUE, slots, &n_slots) == CKR_OK) {
		for (CK_ULONG i = 0; i < n_slots; i++)
			list_token(module, slots[i], policy, login, seen);
	}
	for (size_t k = 0; k < pg_policy_key_count(policy); k++) {
		if (!seen[k])
			printf("policy key %s (%s) matches no object on any token\n",
			       pg_policy_key_name(policy, (unsigned)k), pg_policy_key_uri(policy, (unsigned)k));
	}
	p11_kit_module_finalize(module);
	status = 0;
out:
	if (module != NULL)
		p11_kit_module_release(module);
	free(seen);
	pg_policy_unref(policy);
	return status;
}
