/* SPDX-License-Identifier: Apache-2.0
 *
 * What loading a PKCS#11 module costs its caller: C_Initialize + C_Finalize
 * of SoftHSM2 directly and through p11gate, interleaved in one process
 * (each module is finalised before the other initialises, so they share
 * the one SoftHSM2 instance without meeting).  bench/run-init-bench runs it
 * as a 100 MB program, the size of node, whose hashing p11gate once did at
 * every C_Initialize.
 *
 * Usage: init_bench DIRECT_MODULE P11GATE_MODULE [ROUNDS [PER_ROUND]]
 * (P11GATE_CONFIG and SOFTHSM2_CONF from the environment.)
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "p11gate/pkcs11.h"
#include "median.h"

struct module {
	const char *path;
	CK_FUNCTION_LIST_PTR f;
	double *batch_us;             /* per round: the mean of its cycles */
};

static int
module_load(struct module *m, size_t rounds)
{
	CK_C_GetFunctionList get_list;
	void *dl = dlopen(m->path, RTLD_NOW | RTLD_LOCAL);

	if (dl == NULL) {
		fprintf(stderr, "init_bench: %s\n", dlerror());
		return -1;
	}
	get_list = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	if (get_list == NULL || get_list(&m->f) != CKR_OK) {
		fprintf(stderr, "init_bench: %s has no usable C_GetFunctionList\n", m->path);
		return -1;
	}
	m->batch_us = calloc(rounds, sizeof *m->batch_us);
	return m->batch_us != NULL ? 0 : -1;
}

/* per_round initialise + finalise cycles; the mean cycle in microseconds,
 * or a negative value if a call failed. */
static double
cycles(const struct module *m, unsigned per_round)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	double start = bench_now_us();

	for (unsigned i = 0; i < per_round; i++) {
		CK_RV rv = m->f->C_Initialize(&args);

		if (rv != CKR_OK) {
			fprintf(stderr, "init_bench: %s: C_Initialize returned 0x%lx\n", m->path,
			        (unsigned long)rv);
			return -1;
		}
		rv = m->f->C_Finalize(NULL);
		if (rv != CKR_OK) {
			fprintf(stderr, "init_bench: %s: C_Finalize returned 0x%lx\n", m->path,
			        (unsigned long)rv);
			return -1;
		}
	}
	return (bench_now_us() - start) / per_round;
}

int
main(int argc, char **argv)
{
	struct module mods[2] = { { .path = NULL }, { .path = NULL } };
	size_t rounds = argc > 3 ? strtoul(argv[3], NULL, 10) : 20;
	unsigned per_round = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 10;
	double direct, gate;

	if (argc < 3 || rounds == 0 || per_round == 0) {
		fprintf(stderr, "usage: init_bench DIRECT_MODULE P11GATE_MODULE [ROUNDS [PER_ROUND]]\n");
		return 2;
	}
	mods[0].path = argv[1];
	mods[1].path = argv[2];
	for (int k = 0; k < 2; k++)
		if (module_load(&mods[k], rounds) != 0)
			return 1;
	/* One unmeasured cycle each: the first maps files and warms caches. */
	for (int k = 0; k < 2; k++)
		if (cycles(&mods[k], 1) < 0)
			return 1;
	for (size_t r = 0; r < rounds; r++) {
		/* ABBA: slow drifts in the machine fall on both alike. */
		for (int i = 0; i < 2; i++) {
			int k = (int)(r % 2 == 0 ? i : 1 - i);
			double us = cycles(&mods[k], per_round);

			if (us < 0)
				return 1;
			mods[k].batch_us[r] = us;
		}
	}
	direct = bench_median(mods[0].batch_us, rounds);
	gate = bench_median(mods[1].batch_us, rounds);
	printf("C_Initialize + C_Finalize, median of %zu rounds of %u:\n", rounds, per_round);
	printf("  direct   %10.1f us\n", direct);
	printf("  p11gate  %10.1f us\n", gate);
	printf("  added    %10.1f us  (target: at most 1000 us) %s\n", gate - direct,
	       gate - direct <= 1000 ? "ok" : "MISS");
	return 0;
}
