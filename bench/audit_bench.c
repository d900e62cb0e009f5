/* SPDX-License-Identifier: Apache-2.0
 *
 * Microbenchmark of pg_audit_append, unsynced: an allow record shaped like
 * the signing benchmark's (about 1 KB) and its result record (about 360
 * bytes), appended in turn to a log in $TMPDIR (or /tmp); prints the median
 * microseconds per append of each.  Two appends are what every signature
 * costs p11gate in the log (bench/README.md, "Where the time goes").
 * Then the same allow record with one use taken from a counter (a rule's
 * limit: pg_audit_append_counted), interleaved batch by batch with the
 * plain one so the machine's load falls on both alike.
 */
#include "p11gate/audit.h"
#include "p11gate/identity.h"
#include "median.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH 200       /* pairs of appends per timed batch */
#define BATCHES 101     /* the median of these is reported */

/* Median microseconds per allow + result pair: plain, counted, and both
 * again with another writer's record before each allow (another handle on
 * the log, as another process's: the append then reads the log's tail, and
 * a counted one the counters' header and the records since), in rotating
 * batches. */
static int
counted_vs_plain(pg_audit *audit, pg_audit *other, const struct pg_audit_record *allow,
                 struct pg_audit_record *result, double us[4])
{
	static double runs[4][BATCHES];

	for (int b = 0; b < BATCHES; b++) {
		for (int pass = 0; pass < 4; pass++) {
			int kind = (pass + b) % 4;      /* 0 plain, 1 counted, 2 and 3: after another's */
			bool count = kind == 1 || kind == 2;
			double t0;

			t0 = bench_now_us();
			for (int i = 0; i < BATCH; i++) {
				struct pg_audit_take take = {
					.counter = "limit rule=bench-signs by=caller uid=1000",
					.per = 3600, .max = PG_AUDIT_UNLIMITED,
				};
				uint64_t seq;
				int refused;

				if (kind >= 2 && pg_audit_append(other, result, NULL) != 0)
					return 1;
				if (count ? pg_audit_append_counted(audit, allow, &take, 1, NULL, NULL,
				                                    &refused, NULL, 0, &seq) != 0 :
				    pg_audit_append(audit, allow, &seq) != 0)
					return 1;
				result->ref = seq;
				if (pg_audit_append(audit, result, NULL) != 0)
					return 1;
			}
			runs[kind][b] = (bench_now_us() - t0) / BATCH;
		}
	}
	for (int k = 0; k < 4; k++)
		us[k] = bench_median(runs[k], BATCHES);
	return 0;
}

int
main(void)
{
	static double allow_us[BATCHES], result_us[BATCHES];
	const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	unsigned char hash[32];
	char path[4096], err[512];
	struct pg_caller *caller = NULL;
	pg_audit *audit = NULL;
	pg_audit *other = NULL;
	double us[4];
	uint64_t seq = 0;
	int fd, status = 1;

	snprintf(path, sizeof path, "%s/audit_bench-XXXXXX", tmp);
	fd = mkstemp(path);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	close(fd);
	audit = pg_audit_open(path, false, false, err, sizeof err);
	caller = pg_caller_process_new();
	if (audit == NULL || caller == NULL) {
		fprintf(stderr, "audit_bench: %s\n", audit == NULL ? err : "cannot read the caller");
		goto out;
	}
	pg_caller_exe_sha256(caller);
	memset(hash, 0xa5, sizeof hash);
	/* As the module does: the log's policy and caller, set once. */
	pg_audit_set_policy(audit, hash);
	pg_audit_set_caller(audit, caller);

	const struct pg_audit_use use = {
		.function = "C_Sign", .operation = "sign",
		.key_name = "bench-ec", .key_uri = "pkcs11:token=release;object=codesign-ec",
		.public_key_sha256 = hash, .token_label = "release", .token_serial = "c02bd70effb693b2",
		.has_mechanism = true, .mechanism = CKM_ECDSA, .data_sha256 = hash, .data = hash,
		.data_len = sizeof hash,
	};
	const struct pg_audit_record allow = pg_audit_record_allow(audit, &use, "bench-signs",
	                                                           "rule bench-signs allows it");
	struct pg_audit_record result = pg_audit_record_result(&use, 0, CKR_OK, hash);

	for (int b = 0; b < BATCHES; b++) {
		double in_allow = 0, t0, t1, t2;

		for (int i = 0; i < BATCH; i++) {
			t0 = bench_now_us();
			if (pg_audit_append(audit, &allow, &seq) != 0)
				goto failed;
			t1 = bench_now_us();
			result.ref = seq;
			if (pg_audit_append(audit, &result, NULL) != 0)
				goto failed;
			t2 = bench_now_us();
			in_allow += t1 - t0;
			result_us[b] += t2 - t1;
		}
		allow_us[b] = in_allow / BATCH;
		result_us[b] /= BATCH;
	}
	printf("audit append (unsynced, %s): allow record %.2f us, result record %.2f us "
	       "(median of %d batches of %d)\n", tmp, bench_median(allow_us, BATCHES),
	       bench_median(result_us, BATCHES), BATCHES, BATCH);
	other = pg_audit_open(path, false, false, err, sizeof err);
	if (other == NULL || counted_vs_plain(audit, other, &allow, &result, us) != 0)
		goto failed;
	/* The third pair has another writer's record in it: the difference
	 * to the plain pair's is what it costs, minus that append. */
	printf("audit append (unsynced), interleaved, median of %d batches of %d:\n"
	       "  allow + result %.2f us, with one counted use %.2f us (+%.2f us)\n"
	       "  after another writer's record (its append included): %.2f us, counted %.2f us "
	       "(+%.2f us)\n", BATCHES, BATCH, us[0], us[1], us[1] - us[0], us[3], us[2],
	       us[2] - us[3]);
	status = 0;
	goto out;
failed:
	fprintf(stderr, "audit_bench: appending to %s failed\n", path);
out:
	pg_audit_close(other);
	pg_audit_close(audit);
	pg_caller_free(caller);
	unlink(path);
	snprintf(path + strlen(path), sizeof path - strlen(path), ".counters");
	unlink(path);
	return status;
}
