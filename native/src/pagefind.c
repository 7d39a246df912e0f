/* kbu: which linear address maps a physical page (a page-table search, top down). */
#include <stdlib.h>
#include <string.h>

#include "kbu/mem.h"
#include "kbu/pagefind.h"

#define ADDR_MASK 0x000ffffffffff000ull
#define P_PRESENT 0x1ull
#define P_RW 0x2ull
#define P_USER 0x4ull
#define P_PCD 0x10ull
#define P_PS 0x80ull

#define MAX_SEEN 1024

struct search {
	struct kbu_mem *m;
	enum kbu_paging_mode mode;
	uint64_t target;      /* the physical page, 4 KiB aligned */
	uint64_t pa;          /* the address asked for */
	size_t budget;
	struct kbu_pagefind *out;
	/* Tables already searched at a level: recursive slots (FreeBSD's PML4 self
	 * map) and shared tables are searched once. */
	uint64_t seen[MAX_SEEN];
	size_t nseen;
};

/* Level geometry: the shift of the address bits each level indexes. */
static int shift_of(enum kbu_paging_mode mode, int level)
{
	if (mode == KBU_PG_32)
		return level == 0 ? 12 : 22;
	return 12 + 9 * level;
}

static int entries_of(enum kbu_paging_mode mode, int level, int top)
{
	if (mode == KBU_PG_32)
		return 1024;
	if (mode == KBU_PG_PAE && top)
		return 4;
	return 512;
}

static int seen_before(struct search *s, uint64_t table, int level)
{
	uint64_t key = table | (uint64_t)level;
	for (size_t i = 0; i < s->nseen; i++)
		if (s->seen[i] == key)
			return 1;
	if (s->nseen < MAX_SEEN)
		s->seen[s->nseen++] = key;
	return 0;
}

static uint64_t canonical(enum kbu_paging_mode mode, uint64_t va)
{
	int bits = mode == KBU_PG_5LEVEL ? 57 : mode == KBU_PG_4LEVEL ? 48 : 0;
	if (!bits)
		return va & 0xffffffffull;
	if (va & (1ull << (bits - 1)))
		va |= ~((1ull << bits) - 1);
	return va;
}

/* Searches the table at `table` (physical) for level `level` (0 = PT) covering
 * linear addresses from `base`. Returns 1 found, 0 not found. */
static int search_table(struct search *s, uint64_t table, int level, uint64_t base, int top,
			uint64_t flags_and)
{
	if (seen_before(s, table, level))
		return 0;
	if (s->out->tables_read >= s->budget) {
		s->out->budget_exhausted = 1;
		s->out->tables_skipped++;
		return 0;
	}
	int n = entries_of(s->mode, level, top);
	int esz = s->mode == KBU_PG_32 ? 4 : 8;
	uint8_t buf[4096];
	struct kbu_err e;
	if (kbu_mem_read(s->m, KBU_PHYS, table, buf, (size_t)n * (size_t)esz, &e) < 0) {
		s->out->tables_skipped++;
		return 0;
	}
	s->out->tables_read++;
	int sh = shift_of(s->mode, level);
	for (int i = n - 1; i >= 0; i--) {
		uint64_t ent = 0;
		for (int b = esz - 1; b >= 0; b--)
			ent = ent << 8 | buf[i * esz + b];
		if (!(ent & P_PRESENT))
			continue;
		uint64_t va = base + ((uint64_t)i << sh);
		uint64_t flags = flags_and & ent;
		/* PS makes a large page only in a PD (2 MiB, 4 MiB) or a 4/5-level PDPT (1 GiB). */
		int large = (ent & P_PS) && (level == 1 || (level == 2 && (s->mode == KBU_PG_4LEVEL ||
									   s->mode == KBU_PG_5LEVEL)));
		if (level == 0 || large) {
			uint64_t size = 1ull << sh;
			uint64_t frame;
			if (s->mode == KBU_PG_32 && large)
				frame = (ent & 0xffc00000ull) | ((ent >> 13) & 0xffull) << 32;
			else
				frame = ent & ADDR_MASK & ~(size - 1);
			if (s->target >= frame && s->target < frame + size) {
				s->out->va = canonical(s->mode, va + (s->pa - frame));
				s->out->page_size = size;
				s->out->writable = (flags & P_RW) != 0;
				s->out->user = (flags & P_USER) != 0;
				s->out->cache_disabled = (ent & P_PCD) != 0;
				return 1;
			}
			continue;
		}
		uint64_t next = s->mode == KBU_PG_32 ? (ent & 0xfffff000ull) : (ent & ADDR_MASK);
		if (search_table(s, next, level - 1, va, 0, flags | P_PRESENT | P_PCD))
			return 1;
	}
	return 0;
}

int kbu_pagefind(struct kbu_mem *m, enum kbu_paging_mode mode, uint64_t cr3, uint64_t pa,
		 size_t max_tables, struct kbu_pagefind *out, struct kbu_err *err)
{
	memset(out, 0, sizeof *out);
	int levels;
	uint64_t root;
	switch (mode) {
	case KBU_PG_32: levels = 2; root = cr3 & 0xfffff000ull; break;
	case KBU_PG_PAE: levels = 3; root = cr3 & 0xffffffe0ull; break;
	case KBU_PG_4LEVEL: levels = 4; root = cr3 & ADDR_MASK; break;
	case KBU_PG_5LEVEL: levels = 5; root = cr3 & ADDR_MASK; break;
	default:
		return kbu_err_set(err, KBU_EINVAL, "paging is off or unknown: nothing to search");
	}
	struct search *s = calloc(1, sizeof *s);
	if (!s)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory");
	s->m = m;
	s->mode = mode;
	s->pa = pa;
	s->target = pa & ~0xfffull;
	s->budget = max_tables ? max_tables : 1;
	s->out = out;
	uint8_t probe[8];
	if (kbu_mem_read(m, KBU_PHYS, root, probe, sizeof probe, err) < 0) {
		free(s);
		return kbu_err_prefix(err, "the top page table at 0x%llx", (unsigned long long)root);
	}
	int found = search_table(s, root, levels - 1, 0, 1, P_RW | P_USER | P_PRESENT);
	free(s);
	return found;
}
