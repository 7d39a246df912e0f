/* Test support: a memory source over a buffer, physical [0, size) only. */
#ifndef KBU_TEST_MEMBUF_H
#define KBU_TEST_MEMBUF_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/mem.h"
#include "kbu/regs.h"

struct membuf {
	uint8_t *mem;             /* size bytes, owned by the source */
	size_t size;
	const char *monitor_text; /* what every monitor command answers (not copied) */
	int have_regs;            /* CPU 0 answers with regs; until set, no CPU does */
	struct kbu_regs regs;
};

/*
 * A source over a copy of img (zeroes when img is NULL). Virtual reads are
 * unsupported; reads past size fail with KBU_EFAULT. The source has a QEMU
 * monitor only when monitor is not NULL, a regs op only when with_regs.
 * *out, when out is not NULL, lets a test change bytes and registers later;
 * it lives until the source is closed.
 */
struct kbu_mem *membuf_new(const void *img, size_t size, const char *monitor, int with_regs,
			   struct membuf **out);

#endif
