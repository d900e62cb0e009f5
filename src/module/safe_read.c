/* SPDX-License-Identifier: Apache-2.0
 *
 * Reading memory the caller points at without trusting that it is there:
 * C_Initialize's arguments, where test suites pass (void *)1 on purpose.
 * The kernel copies the bytes and answers EFAULT for an address that is
 * not readable, where a plain load would kill the process.
 */
#include "module.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* Through a pipe, for a process whose seccomp filter forbids
 * process_vm_readv: write() answers EFAULT just the same.  len is at most
 * a page, far below a pipe's capacity, so neither end blocks. */
static int
copy_through_pipe(void *dst, const void *src, size_t len)
{
	int fds[2], err = 0;
	ssize_t n;

	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
		return errno;
	n = write(fds[1], src, len);
	if (n < 0)
		err = errno;
	else if ((size_t)n != len || read(fds[0], dst, len) != n)
		err = EIO;
	close(fds[0]);
	close(fds[1]);
	return err;
}

/* len bytes at src, all on one page (so either all or none are readable). */
static int
copy_page_part(void *dst, const void *src, size_t len)
{
	struct iovec local = { dst, len }, remote = { (void *)src, len };
	ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);

	if (n == (ssize_t)len)
		return 0;
	if (n < 0 && errno == EFAULT)
		return EFAULT;
	return copy_through_pipe(dst, src, len);
}

static size_t
to_page_end(const void *p)
{
	long n = sysconf(_SC_PAGESIZE);   /* from the aux vector: no system call */
	size_t size = n > 0 ? (size_t)n : 4096;

	return size - (uintptr_t)p % size;
}

int
pg_safe_copy(void *dst, const void *src, size_t len)
{
	unsigned char *out = dst;
	const unsigned char *in = src;

	while (len > 0) {
		size_t n = to_page_end(in);
		int err;

		if (n > len)
			n = len;
		err = copy_page_part(out, in, n);
		if (err != 0)
			return err;
		out += n;
		in += n;
		len -= n;
	}
	return 0;
}

int
pg_safe_copy_string(char *dst, size_t cap, const char *src, const char *prefix)
{
	size_t used = 0, prefix_len = prefix != NULL ? strlen(prefix) : 0;

	if (cap == 0)
		return ENAMETOOLONG;
	while (used < cap) {
		size_t n = to_page_end(src + used);
		const char *nul;
		int err;

		if (n > cap - used)
			n = cap - used;
		/* Never past the prefix until it is confirmed: a string that
		 * is not ours is read no further than needed to tell. */
		if (used < prefix_len && n > prefix_len - used)
			n = prefix_len - used;
		err = copy_page_part(dst + used, src + used, n);
		if (err != 0)
			return err;
		nul = memchr(dst + used, '\0', n);
		used += n;
		if (used >= prefix_len && prefix_len > 0 && memcmp(dst, prefix, prefix_len) != 0)
			return EINVAL;
		if (nul != NULL)
			return nul - dst < (ptrdiff_t)prefix_len ? EINVAL : 0;
	}
	return ENAMETOOLONG;
}
