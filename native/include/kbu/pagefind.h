/*
 * kbu: the reverse of a page-table walk: which linear address maps a
 * physical page. A debugger that wants the vCPU itself to load from a device
 * page (the local APIC at 0xfee00000) needs an address the vCPU's own page
 * tables translate to it: Linux maps the APIC in its fixmap, FreeBSD in its
 * kernel map or direct map, a small kernel by identity. The tables are
 * searched from the top of the address space down, where kernels map
 * devices, within a budget of table pages read.
 */
#ifndef KBU_PAGEFIND_H
#define KBU_PAGEFIND_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"
#include "kbu/regs.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_mem;

struct kbu_pagefind {
	uint64_t va;          /* a linear address of the page (canonical), valid if found */
	uint64_t page_size;   /* size of the mapping that holds it */
	int writable, user, cache_disabled;
	size_t tables_read;   /* page-table pages read */
	size_t tables_skipped;/* tables not read because the budget ran out */
	int budget_exhausted;
};

/*
 * Searches the paging structures of (mode, cr3) for a mapping of the
 * physical page holding pa. Returns 1 when found (out->va is the address of
 * pa itself), 0 when no mapping was found (out says whether the budget ran
 * out first), -1 for bad input (paging off or unknown, a table that cannot
 * be read at the root). Unreadable lower tables are skipped and counted.
 */
int kbu_pagefind(struct kbu_mem *m, enum kbu_paging_mode mode, uint64_t cr3, uint64_t pa,
		 size_t max_tables, struct kbu_pagefind *out, struct kbu_err *err);

#ifdef __cplusplus
}
#endif
#endif
