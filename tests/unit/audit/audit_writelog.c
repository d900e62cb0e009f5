/* SPDX-License-Identifier: Apache-2.0
 *
 * Test helper for the CLI test: writes a small real audit log with the
 * writer.  `audit-writelog FILE N` appends N signatures (allow + result)
 * whose data_sha256 is SHA-256("artefact-I") and signature_sha256 is
 * SHA-256("signature-I"), then one denial.
 */
#include "p11gate/audit.h"
#include "p11gate/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main(int argc, char **argv)
{
	unsigned char data[PG_SHA256_LEN], sig[PG_SHA256_LEN];
	struct pg_audit_record r;
	char err[512], text[64];
	uint64_t seq;
	pg_audit *a;
	int n;

	if (argc != 3) {
		fprintf(stderr, "usage: audit-writelog FILE N\n");
		return 2;
	}
	n = atoi(argv[2]);
	a = pg_audit_open(argv[1], true, false, err, sizeof err);
	if (a == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (int i = 1; i <= n; i++) {
		memset(&r, 0, sizeof r);
		snprintf(text, sizeof text, "artefact-%d", i);
		pg_sha256(text, strlen(text), data);
		snprintf(text, sizeof text, "signature-%d", i);
		pg_sha256(text, strlen(text), sig);
		r.event = PG_AUDIT_DECISION;
		r.allow = true;
		r.rule = "ci-signs";
		r.reason = "rule ci-signs allows it";
		r.function = "C_Sign";
		r.operation = "sign";
		r.key_name = i % 2 ? "release-rsa" : "release-ec";
		r.has_mechanism = true;
		r.mechanism = i % 2 ? CKM_RSA_PKCS : CKM_ECDSA;
		r.data_sha256 = data;
		if (pg_audit_append(a, &r, &seq) != 0 || pg_audit_sync(a, seq) != 0)
			return 1;
		memset(&r, 0, sizeof r);
		r.event = PG_AUDIT_RESULT;
		r.function = "C_Sign";
		r.ref = seq;
		r.has_rv = true;
		r.rv = CKR_OK;
		r.signature_sha256 = sig;
		if (pg_audit_append(a, &r, &seq) != 0)
			return 1;
	}
	memset(&r, 0, sizeof r);
	r.event = PG_AUDIT_DECISION;
	r.allow = false;
	r.reason = "no rule allows sign with key test-key for user nobody";
	r.operation = "sign";
	r.key_name = "test-key";
	if (pg_audit_append(a, &r, &seq) != 0 || pg_audit_sync(a, seq) != 0)
		return 1;
	pg_audit_close(a);
	return 0;
}
