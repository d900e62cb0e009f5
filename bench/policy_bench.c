/* SPDX-License-Identifier: Apache-2.0
 *
 * Microbenchmark of pg_policy_decide: policies of 10, 100 and 1,000 rules
 * (ten rules per key, realistic conditions and a time window) written to a
 * temp file and loaded as the module would; prints the median ns per
 * decision for each size.  The target is under 1 us at 1,000 rules.
 * Then what a signature's key lifecycle adds to it (src/policy/lifecycle.c):
 * the verdict for a key with a certificate: block, not_after and a pinned
 * pin, over one certificate, and the copy of the key's certificates out of
 * the module's memo (keymemo.c) that comes with it.
 */
#include "p11gate/policy.h"
#include "p11gate/identity.h"
#include "median.h"

#include <openssl/obj_mac.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH 1000      /* decisions per timed batch: the clock costs ~20 ns */
#define BATCHES 301     /* the median of these is reported */

/* n rules over n/10 keys: per key nine allow rules for other users and, last
 * in the file, the allow rule our caller meets, plus a freeze deny rule
 * naming every tenth key.  Returns the path of the file written. */
static bool
write_policy(const char *path, int n_rules)
{
	int n_keys = n_rules / 10 > 0 ? n_rules / 10 : 1;
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return false;
	fprintf(f, "version: 1\nmodule: /usr/lib/softhsm/libsofthsm2.so\nkeys:\n");
	for (int k = 0; k < n_keys; k++)
		fprintf(f, "  key-%d: {uri: \"pkcs11:token=bench;object=key-%d\", owner: bench}\n", k, k);
	fprintf(f, "rules:\n");
	for (int r = 0; r < n_rules; r++) {
		int k = r % n_keys;
		bool ours = r >= n_rules - n_keys;   /* the last round: one per key */
		bool deny = !ours && r % 10 == 3;

		fprintf(f,
		        "  - name: rule-%d\n"
		        "    effect: %s\n"
		        "    keys: [key-%d]\n"
		        "    operations: [sign]\n",
		        r, deny ? "deny" : "allow", k);
		if (deny) {
			fprintf(f, "    when: {dates: [\"2026-12-20..2027-01-04\"], timezone: Europe/Berlin}\n");
			continue;
		}
		fprintf(f,
		        "    callers:\n"
		        "      users: [%d]\n"
		        "      groups: [%d, 0]\n"
		        "      programs: [/usr/bin/osslsigncode, \"/usr/lib/jvm/*/bin/java\"]\n"
		        "    mechanisms: [CKM_SHA256_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_ECDSA]\n"
		        "    when: {days: [mon-fri], hours: \"09:00-17:00\", timezone: Europe/Berlin}\n",
		        ours ? 1001 : 5000 + r, 4242);
	}
	return fclose(f) == 0;
}

static int
bench(int n_rules)
{
	char path[] = "/tmp/p11gate-policy-bench-XXXXXX";
	gid_t groups[] = { 100, 4242 };
	struct pg_caller caller;
	struct pg_key_match match = { .n = 1, .pin_mismatch = -1 };
	struct pg_request req = { .op = PG_OP_SIGN, .mechanism = CKM_ECDSA, .key = &match,
	                          .caller = &caller, .now = 1780390800 /* Tue 2026-06-02 09:00Z */ };
	struct pg_decision d;
	double samples[BATCHES], median;
	pg_policy *policy;
	int fd, n_keys = n_rules / 10 > 0 ? n_rules / 10 : 1;
	volatile unsigned allowed = 0;

	fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		return 1;
	}
	close(fd);
	if (!write_policy(path, n_rules)) {
		perror(path);
		unlink(path);
		return 1;
	}
	policy = pg_policy_load(path, NULL, NULL);
	unlink(path);
	if (policy == NULL) {
		fprintf(stderr, "the generated %d-rule policy does not load\n", n_rules);
		return 1;
	}
	memset(&caller, 0, sizeof caller);
	caller.uid_trust = caller.gid_trust = caller.groups_trust = PG_ID_ATTESTED;
	caller.exe_trust = PG_ID_ATTESTED;
	caller.uid = 1001;
	caller.gid = 100;
	caller.groups = groups;
	caller.n_groups = 2;
	caller.exe = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java";
	match.idx[0] = (unsigned)(n_keys / 2);

	pg_policy_decide(policy, &req, &d);
	if (!d.allow) {
		fprintf(stderr, "%d rules: expected allow, got: %s\n", n_rules, d.reason);
		pg_policy_unref(policy);
		return 1;
	}
	for (int b = 0; b < BATCHES; b++) {
		double start = 1e3 * bench_now_us();
		for (int i = 0; i < BATCH; i++) {
			pg_policy_decide(policy, &req, &d);
			allowed += d.allow;
		}
		samples[b] = (1e3 * bench_now_us() - start) / BATCH;
	}
	/* Every timed decision must have been the allow checked above. */
	if (allowed != (unsigned)BATCHES * BATCH) {
		fprintf(stderr, "%d rules: %u of the timed decisions allowed\n", n_rules, allowed);
		pg_policy_unref(policy);
		return 1;
	}
	median = bench_median(samples, BATCHES);       /* sorts samples */
	printf("%5d rules, %4d keys: median %7.1f ns per decision (p10 %.1f, p90 %.1f)\n",
	       n_rules, n_keys, median, samples[BATCHES / 10], samples[BATCHES * 9 / 10]);
	pg_policy_unref(policy);
	return 0;
}

/* The verdict of one signature's key lifecycle, and the memo copy a
 * signature makes twice (at its init and at its output). */
static int
bench_lifecycle(void)
{
	static const char yaml[] =
		"version: 1\nmodule: /usr/lib/softhsm/libsofthsm2.so\nkeys:\n"
		"  k:\n    uri: \"pkcs11:token=bench;object=k\"\n    owner: bench\n"
		"    pins:\n      - { public_key_sha256: \"" "1111111111111111111111111111111111111111111111111111111111111111"
		"\", not_after: 2027-06-30 }\n"
		"    not_after: 2028-01-01\n"
		"    certificate: { required: true, eku: codeSigning, warn_days: 30 }\n"
		"rules:\n  - {name: r, effect: deny, keys: [k]}\n";
	static struct pg_key_certs certs, copy;
	unsigned char pin[32];
	struct pg_key_facts facts = { .public_key_sha256 = pin, .certs = &certs };
	struct pg_life_verdict v;
	double samples[BATCHES], verdict_ns, copy_ns;
	pg_policy *policy = pg_policy_load_buffer("lifecycle.yaml", yaml, sizeof yaml - 1, NULL, NULL);
	volatile unsigned refused = 0;

	if (policy == NULL) {
		fprintf(stderr, "the lifecycle policy does not load\n");
		return 1;
	}
	memset(pin, 0x11, sizeof pin);
	certs.complete = true;
	certs.n = 1;
	certs.cert[0].not_before = 1767225600;     /* 2026-01-01 */
	certs.cert[0].not_after = 1830297600;      /* 2028-01-01 */
	certs.cert[0].has_eku = true;
	certs.cert[0].eku[0] = NID_code_sign;
	certs.cert[0].n_eku = 1;
	certs.cert[0].serial_len = 2;
	for (int b = 0; b < BATCHES; b++) {
		double start = 1e3 * bench_now_us();
		for (int i = 0; i < BATCH; i++) {
			pg_policy_lifecycle(policy, 0, &facts, 1780390800, -1, &v);
			refused += v.refuse;
		}
		samples[b] = (1e3 * bench_now_us() - start) / BATCH;
	}
	verdict_ns = bench_median(samples, BATCHES);
	for (int b = 0; b < BATCHES; b++) {
		double start = 1e3 * bench_now_us();
		for (int i = 0; i < BATCH; i++) {
			memcpy(&copy, &certs, sizeof copy);
			__asm__ __volatile__("" : : "r"(&copy) : "memory");
		}
		samples[b] = (1e3 * bench_now_us() - start) / BATCH;
	}
	copy_ns = bench_median(samples, BATCHES);
	pg_policy_unref(policy);
	if (refused != 0) {
		fprintf(stderr, "lifecycle: %u of the timed verdicts refused\n", refused);
		return 1;
	}
	printf("key lifecycle: median %.1f ns per verdict (one certificate, not_after, a pin's not_after); "
	       "%.1f ns per copy of the memoised certificates (%zu bytes); a signature makes two of each\n",
	       verdict_ns, copy_ns, sizeof copy);
	return 0;
}

int
main(void)
{
	static const int sizes[] = { 10, 100, 1000 };
	int rc = 0;

	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		rc |= bench(sizes[i]);
	return rc | bench_lifecycle();
}
