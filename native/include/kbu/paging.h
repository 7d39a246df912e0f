/* kbu: x86 page-table walker (32-bit, PAE, 4- and 5-level; 4K/2M/4M/1G pages). */
#ifndef KBU_PAGING_H
#define KBU_PAGING_H

#include <stdint.h>

#include "kbu/err.h"
#include "kbu/regs.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_mem;

struct kbu_walk_step {
	const char *level;  /* "PML5", "PML4", "PDPT", "PD", "PT" */
	uint64_t table_pa;  /* physical address of the table */
	unsigned index;     /* index of the entry in it */
	uint64_t entry_pa;  /* physical address of the entry */
	uint64_t entry;     /* the entry's value */
};

struct kbu_walk {
	enum kbu_paging_mode mode;
	uint64_t va;
	int nsteps;
	struct kbu_walk_step steps[6];
	int present;        /* 1 if the walk reached a page */
	int fault_step;     /* index of the non-present entry, -1 if none */
	uint64_t pa;        /* translation, valid if present */
	uint64_t page_size; /* 4096, 2 MiB, 4 MiB, 1 GiB */
	int writable, user, nx;
};

/* Walks the tables with physical reads from m. A non-present entry is not an
 * error (w->present = 0, w->fault_step set); unreadable tables are. */
int kbu_vtop(struct kbu_mem *m, enum kbu_paging_mode mode, uint64_t cr3, uint64_t va,
	     struct kbu_walk *w, struct kbu_err *err);

#ifdef __cplusplus
}
#endif
#endif
