/* SPDX-License-Identifier: Apache-2.0
 *
 * The fuzz input as a stream of choices (see fuzz_input.h).
 */
#include "fuzz_input.h"

void
fuzz_input_init(struct fuzz_input *in, const uint8_t *data, size_t size)
{
	in->data = data;
	in->size = size;
	in->pos = 0;
}

bool
fuzz_input_done(const struct fuzz_input *in)
{
	return in->pos >= in->size;
}

uint8_t
fuzz_input_u8(struct fuzz_input *in)
{
	return in->pos < in->size ? in->data[in->pos++] : 0;
}

bool
fuzz_input_bool(struct fuzz_input *in)
{
	return fuzz_input_u8(in) & 1;
}

size_t
fuzz_input_pick(struct fuzz_input *in, size_t n)
{
	return fuzz_input_u8(in) % n;
}

void
fuzz_input_fill(struct fuzz_input *in, uint8_t *out, size_t len)
{
	/* At most 32 bytes come from the input: enough to steer contents,
	 * few enough that the next choices stay reachable. */
	for (size_t i = 0; i < len; i++)
		out[i] = i < 32 && in->pos < in->size ? in->data[in->pos++] : (uint8_t)(0x5a ^ i);
}
