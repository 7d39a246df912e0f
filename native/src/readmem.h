/*
 * kbu (private): reads for table walkers that must tell "this address is not
 * in guest memory" (a fact about the guest, reported as a finding) from "the
 * source failed" (a stub that went away, a debugger error: reported as itself,
 * never as "not found").
 */
#ifndef KBU_READMEM_H
#define KBU_READMEM_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/mem.h"

enum { KBU_READ_OK = 0, KBU_READ_ABSENT = 1, KBU_READ_FAILED = -1 };

/* KBU_READ_OK, KBU_READ_ABSENT (KBU_EFAULT: no memory there; *err holds the
 * source's words) or KBU_READ_FAILED (any other error, *err set). */
static inline int kbu_try_read(struct kbu_mem *m, uint64_t addr, void *buf, size_t len,
			       struct kbu_err *err)
{
	if (kbu_mem_read(m, KBU_PHYS, addr, buf, len, err) == 0)
		return KBU_READ_OK;
	return err->code == KBU_EFAULT ? KBU_READ_ABSENT : KBU_READ_FAILED;
}

/*
 * Reads as much of [addr, addr+len) as memory holds, page by page: *got is
 * the length of the readable prefix. Returns KBU_READ_FAILED (err set) when
 * the source failed rather than ran out of memory, else KBU_READ_OK (also for
 * a short or empty prefix; *err then holds the first absent page's words).
 */
static inline int kbu_read_prefix(struct kbu_mem *m, uint64_t addr, uint8_t *buf, size_t len,
				  size_t *got, struct kbu_err *err)
{
	*got = 0;
	kbu_err_clear(err);
	int r = kbu_try_read(m, addr, buf, len, err);
	if (r == KBU_READ_OK) {
		*got = len;
		return KBU_READ_OK;
	}
	if (r == KBU_READ_FAILED)
		return r;
	while (*got < len) {
		uint64_t a = addr + *got;
		size_t n = (size_t)(4096 - (a & 4095));
		if (n > len - *got)
			n = len - *got;
		r = kbu_try_read(m, a, buf + *got, n, err);
		if (r == KBU_READ_FAILED)
			return r;
		if (r == KBU_READ_ABSENT)
			break;
		*got += n;
	}
	return KBU_READ_OK;
}

#endif
