/* SPDX-License-Identifier: Apache-2.0
 *
 * What the microbenchmarks share: a monotonic clock in microseconds, and
 * the median of a sample of timed batches (one slow batch, the machine
 * doing something else, does not move it).
 */
#ifndef P11GATE_BENCH_MEDIAN_H
#define P11GATE_BENCH_MEDIAN_H

#include <stddef.h>
#include <stdlib.h>
#include <time.h>

static inline double
bench_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static inline int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts sample in place. */
static inline double
bench_median(double *sample, size_t n)
{
	qsort(sample, n, sizeof *sample, bench_cmp_double);
	return sample[n / 2];
}

#endif /* P11GATE_BENCH_MEDIAN_H */
