/* SPDX-License-Identifier: Apache-2.0
 *
 * Reading a fuzz input as a stream of small choices: bytes, flags, picks
 * from a list and byte strings.  Past the end every read answers zero, so
 * any input decodes to some sequence of calls.
 */
#ifndef P11GATE_FUZZ_INPUT_H
#define P11GATE_FUZZ_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fuzz_input {
	const uint8_t *data;
	size_t size;
	size_t pos;
};

void fuzz_input_init(struct fuzz_input *in, const uint8_t *data, size_t size);
bool fuzz_input_done(const struct fuzz_input *in);
uint8_t fuzz_input_u8(struct fuzz_input *in);
bool fuzz_input_bool(struct fuzz_input *in);
/* One of n (n > 0) choices. */
size_t fuzz_input_pick(struct fuzz_input *in, size_t n);
/* Fills out with len bytes: the input's next bytes while they last, then
 * a fixed pattern (so long data does not need a long input). */
void fuzz_input_fill(struct fuzz_input *in, uint8_t *out, size_t len);

#endif /* P11GATE_FUZZ_INPUT_H */
