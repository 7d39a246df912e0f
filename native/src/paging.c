/* kbu: x86 page-table walker. Every level read is recorded in the walk. */
#include <inttypes.h>
#include <string.h>

#include "kbu/mem.h"
#include "kbu/paging.h"

#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_PS (1ull << 7)
#define PTE_NX (1ull << 63)
#define ADDR_MASK 0x000ffffffffff000ull

static int read_entry(struct kbu_mem *m, struct kbu_walk *w, const char *level, uint64_t table,
		      unsigned index, int wide, struct kbu_err *err)
{
	struct kbu_walk_step *s = &w->steps[w->nsteps];
	s->level = level;
	s->table_pa = table;
	s->index = index;
	s->entry_pa = table + (uint64_t)index * (wide ? 8 : 4);
	if (wide) {
		if (kbu_mem_read_u64(m, KBU_PHYS, s->entry_pa, &s->entry, err) < 0)
			goto fail;
	} else {
		uint32_t v;
		if (kbu_mem_read_u32(m, KBU_PHYS, s->entry_pa, &v, err) < 0)
			goto fail;
		s->entry = v;
	}
	w->nsteps++;
	return 0;
fail:
	return kbu_err_prefix(err, "walking 0x%" PRIx64 ": %s entry %u at physical 0x%" PRIx64,
			      w->va, level, index, s->entry_pa);
}

/* Accumulates permissions; returns 1 if the entry is present. */
static int take(struct kbu_walk *w, uint64_t e, int check_rw_us)
{
	if (!(e & PTE_P)) {
		w->fault_step = w->nsteps - 1;
		return 0;
	}
	if (check_rw_us) {
		w->writable &= !!(e & PTE_RW);
		w->user &= !!(e & PTE_US);
	}
	w->nx |= !!(e & PTE_NX);
	return 1;
}

static int walk_32(struct kbu_mem *m, uint64_t cr3, uint64_t va, struct kbu_walk *w,
		   struct kbu_err *err)
{
	if (va > 0xffffffffull)
		return kbu_err_set(err, KBU_EINVAL,
				   "0x%" PRIx64 " does not fit in 32 bits (the CPU uses 32-bit paging)", va);
	uint64_t pd = cr3 & 0xfffff000ull;
	if (read_entry(m, w, "PD", pd, (unsigned)(va >> 22) & 0x3ff, 0, err) < 0)
		return -1;
	uint64_t pde = w->steps[0].entry;
	if (!take(w, pde, 1))
		return 0;
	if (pde & PTE_PS) {
		/* 4 MiB page; PSE-36 puts physical bits 39:32 in PDE bits 20:13. */
		uint64_t base = (pde & 0xffc00000ull) | (((pde >> 13) & 0xff) << 32);
		w->pa = base | (va & 0x3fffff);
		w->page_size = 4ull << 20;
		w->present = 1;
		return 0;
	}
	if (read_entry(m, w, "PT", pde & 0xfffff000ull, (unsigned)(va >> 12) & 0x3ff, 0, err) < 0)
		return -1;
	uint64_t pte = w->steps[1].entry;
	if (!take(w, pte, 1))
		return 0;
	w->pa = (pte & 0xfffff000ull) | (va & 0xfff);
	w->page_size = 4096;
	w->present = 1;
	return 0;
}

/* Walks the levels from `first` down; PAE and long mode share the 8-byte format. */
static int walk_wide(struct kbu_mem *m, uint64_t table, uint64_t va, int nlevels, int pae,
		     struct kbu_walk *w, struct kbu_err *err)
{
	static const char *const names[] = {"PML5", "PML4", "PDPT", "PD", "PT"};
	static const int shifts[] = {48, 39, 30, 21, 12};
	int first = 5 - nlevels;
	for (int lvl = first; lvl < 5; lvl++) {
		unsigned index = (unsigned)(va >> shifts[lvl]) & 0x1ff;
		if (pae && lvl == 2)
			index &= 3;
		if (read_entry(m, w, names[lvl], table, index, 1, err) < 0)
			return -1;
		uint64_t e = w->steps[w->nsteps - 1].entry;
		/* PAE's PDPTEs carry no R/W or U/S bits. */
		if (!take(w, e, !(pae && lvl == 2)))
			return 0;
		int leaf = lvl == 4 || (lvl == 3 && (e & PTE_PS)) ||
			   (lvl == 2 && !pae && (e & PTE_PS)); /* PT, 2 MiB, 1 GiB */
		if (leaf) {
			uint64_t size = 1ull << shifts[lvl];
			w->pa = (e & ADDR_MASK & ~(size - 1)) | (va & (size - 1));
			w->page_size = size;
			w->present = 1;
			return 0;
		}
		table = e & ADDR_MASK;
	}
	return 0;
}

int kbu_vtop(struct kbu_mem *m, enum kbu_paging_mode mode, uint64_t cr3, uint64_t va,
	     struct kbu_walk *w, struct kbu_err *err)
{
	memset(w, 0, sizeof *w);
	w->mode = mode;
	w->va = va;
	w->fault_step = -1;
	w->writable = 1;
	w->user = 1;
	switch (mode) {
	case KBU_PG_OFF:
		if (va > 0xffffffffull)
			return kbu_err_set(err, KBU_EINVAL,
					   "0x%" PRIx64 " does not fit in 32 bits (paging is off)", va);
		w->pa = va;
		w->page_size = 4096;
		w->present = 1;
		return 0;
	case KBU_PG_32:
		return walk_32(m, cr3, va, w, err);
	case KBU_PG_PAE:
		if (va > 0xffffffffull)
			return kbu_err_set(err, KBU_EINVAL,
					   "0x%" PRIx64 " does not fit in 32 bits (the CPU uses PAE paging)", va);
		return walk_wide(m, cr3 & 0xffffffe0ull, va, 3, 1, w, err);
	case KBU_PG_4LEVEL:
	case KBU_PG_5LEVEL: {
		int bits = mode == KBU_PG_4LEVEL ? 48 : 57;
		uint64_t top = va >> (bits - 1);
		if (top != 0 && top != (UINT64_MAX >> (bits - 1)))
			return kbu_err_set(err, KBU_EINVAL, "0x%" PRIx64 " is not canonical for %s", va,
					   kbu_paging_mode_name(mode));
		return walk_wide(m, cr3 & ADDR_MASK, va, mode == KBU_PG_4LEVEL ? 4 : 5, 0, w, err);
	}
	case KBU_PG_UNKNOWN:
		break;
	}
	return kbu_err_set(err, KBU_EUNSUPPORTED,
			   "cannot translate 0x%" PRIx64 ": the paging mode is unknown (no CR0/CR4/EFER)", va);
}
