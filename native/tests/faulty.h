/* Test support: a memory source over a buffer that fails inside one range,
 * either as a stub that went away (KBU_ECONN) or as memory that is not there
 * (KBU_EFAULT); optionally with a CPU count. */
#ifndef KBU_TEST_FAULTY_H
#define KBU_TEST_FAULTY_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/mem.h"

/* img (not copied; it must outlive the source) of size bytes; reads touching
 * [lo, hi) fail with code. kind is what kbu_mem_kind says ("gdb", "core"). */
struct kbu_mem *faulty_mem(uint8_t *img, size_t size, uint64_t lo, uint64_t hi, int code);
struct kbu_mem *faulty_mem_ncpus(uint8_t *img, size_t size, uint64_t lo, uint64_t hi, int code,
				 int ncpus);

#endif
