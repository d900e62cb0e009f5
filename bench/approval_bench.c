/* SPDX-License-Identifier: Apache-2.0
 *
 * Microbenchmark of an approval: rule's decision: the same policy with and
 * without approval: { from: [alice, bob], count: 2 }, decided in
 * interleaved batches against a grants directory holding the caller's
 * grant (approved by two keys ssh-keygen made, ed25519 and ECDSA) and
 * OTHERS other grants.  Prints the median ns per decision of each and the
 * difference: what the cache leaves of verifying a grant (the directory's
 * and the grant's identity; the signatures are not verified again).
 * A signature is decided twice: at its init, provisionally (from the cache,
 * no file looked at), and at its output, exactly.
 * Usage: approval_bench [OTHERS]   (default 10)
 */
#include "p11gate/policy.h"
#include "p11gate/identity.h"
#include "median.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH 200
#define BATCHES 301

static char dir[] = "/tmp/p11gate-approval-bench-XXXXXX";

static bool
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static bool
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	return system(cmd) == 0;
}

static bool
write_policy(const char *path, bool approval)
{
	char alice[1024] = "", bob[1024] = "", name[300];
	FILE *f;

	snprintf(name, sizeof name, "%s/alice.pub", dir);
	if ((f = fopen(name, "r")) == NULL || fgets(alice, sizeof alice, f) == NULL)
		return false;
	fclose(f);
	snprintf(name, sizeof name, "%s/bob.pub", dir);
	if ((f = fopen(name, "r")) == NULL || fgets(bob, sizeof bob, f) == NULL)
		return false;
	fclose(f);
	alice[strcspn(alice, "\n")] = bob[strcspn(bob, "\n")] = '\0';
	if ((f = fopen(path, "w")) == NULL)
		return false;
	fprintf(f, "version: 1\nmodule: /usr/lib/softhsm/libsofthsm2.so\n"
	        "keys:\n  release: {uri: \"pkcs11:token=bench;object=release\", owner: bench}\n"
	        "approvers:\n  alice: {ssh_key: \"%s\"}\n  bob: {ssh_key: \"%s\"}\n"
	        "grants: {dir: %s/grants}\n"
	        "rules:\n  - name: release\n    effect: allow\n    keys: [release]\n"
	        "    callers: {users: [1001]}\n%s", alice, bob, dir,
	        approval ? "    approval: {from: [alice, bob], count: 2}\n" : "");
	return fclose(f) == 0;
}

static pg_policy *
load(bool approval)
{
	char path[300];

	snprintf(path, sizeof path, "%s/%s.yaml", dir, approval ? "approval" : "plain");
	if (!write_policy(path, approval))
		return NULL;
	return pg_policy_load(path, NULL, NULL);
}

static double
batch_ns(const pg_policy *policy, const struct pg_request *req, bool want_allow)
{
	struct pg_decision d;
	double t0 = bench_now_us();

	for (int i = 0; i < BATCH; i++) {
		pg_policy_decide(policy, req, &d);
		if (d.allow != want_allow) {
			fprintf(stderr, "approval_bench: unexpected decision: %s\n", d.reason);
			exit(1);
		}
	}
	return (bench_now_us() - t0) * 1000.0 / BATCH;
}

int
main(int argc, char **argv)
{
	int others = argc > 1 ? atoi(argv[1]) : 10;
	struct pg_caller caller = { .uid = 1001, .user = "ci", .uid_trust = PG_ID_ATTESTED };
	struct pg_key_match match = { .n = 1, .idx = { 0 }, .pin_mismatch = -1 };
	struct pg_request req = { .op = PG_OP_SIGN, .mechanism = CKM_ECDSA, .key = &match,
	                          .caller = &caller, .now = time(NULL) };
	static double plain[BATCHES], approved[BATCHES], provisional[BATCHES];
	pg_policy *p = NULL, *a = NULL;
	char nb[32], na[32];
	time_t t = req.now - 60;
	int status = 1;

	if (mkdtemp(dir) == NULL)
		return 1;
	strftime(nb, sizeof nb, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	t = req.now + 86400;
	strftime(na, sizeof na, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	if (!sh("cd %s && mkdir grants && ssh-keygen -q -N '' -t ed25519 -f alice && "
	        "ssh-keygen -q -N '' -t ecdsa -b 256 -f bob", dir))
		goto out;
	for (int i = 0; i <= others; i++) {
		if (!sh("cd %s/grants && printf 'grant: 1\\nid: g%d\\nkey: release\\nrequester: %s\\n"
		        "not_before: %s\\nnot_after: %s\\nreason: bench\\n' > g%d.yaml && "
		        "ssh-keygen -q -Y sign -n p11gate-grant -f ../alice g%d.yaml && mv g%d.yaml.sig g%d.yaml.alice.sig && "
		        "ssh-keygen -q -Y sign -n p11gate-grant -f ../bob g%d.yaml && mv g%d.yaml.sig g%d.yaml.bob.sig",
		        dir, i, i == others ? "ci" : "someone-else", nb, na, i, i, i, i, i, i, i))
			goto out;
	}
	/* Files settle (a memo is trusted only once its file is older than
	 * the settle time): what a release pipeline meets, minutes after the
	 * approvals. */
	sleep(3);
	if ((p = load(false)) == NULL || (a = load(true)) == NULL) {
		fprintf(stderr, "approval_bench: a policy does not load\n");
		goto out;
	}
	for (int i = 0; i < 50; i++) {   /* warm the cache: the first decision verifies */
		batch_ns(p, &req, true);
		batch_ns(a, &req, true);
	}
	for (int b = 0; b < BATCHES; b++) {
		plain[b] = batch_ns(p, &req, true);
		req.provisional = false;
		approved[b] = batch_ns(a, &req, true);
		req.provisional = true;
		provisional[b] = batch_ns(a, &req, true);
		req.provisional = false;
	}
	{
		double mp = bench_median(plain, BATCHES), ma = bench_median(approved, BATCHES);
		double mq = bench_median(provisional, BATCHES);

		printf("decision, %d other grants: plain rule %.0f ns; approval rule %.0f ns exact "
		       "(output), %.0f ns provisional (init): +%.1f us per signature\n",
		       others, mp, ma, mq, (ma + mq - 2 * mp) / 1000);
	}
	status = 0;
out:
	pg_policy_unref(p);
	pg_policy_unref(a);
	sh("rm -rf %s", dir);
	return status;
}
