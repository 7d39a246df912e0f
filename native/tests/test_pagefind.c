/* kbu_pagefind: the linear address that maps a physical page, from page tables built here. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kbu/mem.h"
#include "kbu/pagefind.h"
#include "membuf.h"

#define APIC 0xfee00000ull
#define MEM (64 * 1024)

static void set64(uint8_t *img, uint64_t table, unsigned idx, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		img[table + idx * 8 + (unsigned)i] = (uint8_t)(v >> (8 * i));
}

static void set32(uint8_t *img, uint64_t table, unsigned idx, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		img[table + idx * 4 + (unsigned)i] = (uint8_t)(v >> (8 * i));
}

static int find(const uint8_t *img, enum kbu_paging_mode mode, uint64_t cr3, uint64_t pa,
		size_t budget, struct kbu_pagefind *out)
{
	struct kbu_mem *m = membuf_new(img, MEM, NULL, 0, NULL);
	struct kbu_err err;
	int rc = kbu_pagefind(m, mode, cr3, pa, budget, out, &err);
	kbu_mem_close(m);
	return rc;
}

/* Linux's shape: the APIC in the fixmap (PML4[511] PDPT[511] PD[506] PT[508]),
 * a 1 GiB direct map of RAM that does not reach it, a recursive slot. */
static uint8_t *linux_like(void)
{
	uint8_t *img = calloc(1, MEM);
	const uint64_t pml4 = 0x1000, pdpt_hi = 0x2000, pd_fix = 0x3000, pt_fix = 0x4000,
		       pdpt_dm = 0x5000;
	set64(img, pml4, 511, pdpt_hi | 0x3);
	set64(img, pdpt_hi, 511, pd_fix | 0x3);
	set64(img, pd_fix, 506, pt_fix | 0x3);
	set64(img, pt_fix, 508, APIC | 0x13);          /* present, RW, PCD */
	set64(img, pml4, 273, pdpt_dm | 0x3);          /* direct map at 0xffff888000000000 */
	set64(img, pdpt_dm, 0, 0x0 | 0x83);             /* 1 GiB page: physical 0-1 GiB */
	set64(img, pml4, 256, pml4 | 0x3);             /* a self map */
	return img;
}

TEST(linux_fixmap_apic)
{
	uint8_t *img = linux_like();
	struct kbu_pagefind f;
	CHECK(find(img, KBU_PG_4LEVEL, 0x1000, APIC + 0x30, 64, &f) == 1);
	CHECK_EQ_U64(f.va, 0xffffffffff5fc030ull);
	CHECK_EQ_U64(f.page_size, 4096);
	CHECK(f.cache_disabled && f.writable && !f.user);
	/* RAM in the direct map's 1 GiB page. */
	CHECK(find(img, KBU_PG_4LEVEL, 0x1000, 0x123456, 64, &f) == 1);
	CHECK_EQ_U64(f.va, 0xffff888000123456ull);
	CHECK_EQ_U64(f.page_size, 1ull << 30);
	free(img);
}

TEST(identity_map_of_the_apic_page)
{
	uint8_t *img = calloc(1, MEM);
	/* The test kernel's: PML4[0] -> PDPT[3] -> PD[503] -> PT[0] = 0xfee00000 (4 KiB, PCD). */
	set64(img, 0x1000, 0, 0x2000 | 0x3);
	set64(img, 0x2000, 3, 0x3000 | 0x3);
	set64(img, 0x3000, 503, 0x4000 | 0x3);
	set64(img, 0x4000, 0, APIC | 0x1b);
	struct kbu_pagefind f;
	CHECK(find(img, KBU_PG_4LEVEL, 0x1000, APIC, 64, &f) == 1);
	CHECK_EQ_U64(f.va, APIC);
	/* 5-level: the same tables under a PML5. */
	set64(img, 0x6000, 0, 0x1000 | 0x3);
	CHECK(find(img, KBU_PG_5LEVEL, 0x6000, APIC, 64, &f) == 1);
	CHECK_EQ_U64(f.va, APIC);
	free(img);
}

TEST(not_mapped_and_the_budget)
{
	uint8_t *img = linux_like();
	struct kbu_pagefind f;
	CHECK(find(img, KBU_PG_4LEVEL, 0x1000, 0x80000000ull, 64, &f) == 0);
	CHECK(!f.budget_exhausted);
	CHECK(f.tables_read >= 4);
	/* A budget of one table: only the PML4 is read, and that is said. */
	CHECK(find(img, KBU_PG_4LEVEL, 0x1000, APIC, 1, &f) == 0);
	CHECK(f.budget_exhausted);
	CHECK_EQ_U64(f.tables_read, 1);
	free(img);
}

TEST(tables_outside_memory_are_skipped)
{
	uint8_t *img = linux_like();
	/* PD[507], searched before the APIC's PD[506], points beyond memory: skipped. */
	set64(img, 0x3000, 507, 0x7fff000ull | 0x3);
	struct kbu_pagefind f;
	CHECK(find(img, KBU_PG_4LEVEL, 0x1000, APIC, 64, &f) == 1);
	CHECK(f.tables_skipped >= 1);
	/* A root outside memory is an error. */
	struct kbu_mem *m = membuf_new(img, MEM, NULL, 0, NULL);
	struct kbu_err err;
	CHECK(kbu_pagefind(m, KBU_PG_4LEVEL, 0x7fff000ull, APIC, 64, &f, &err) == -1);
	CHECK(kbu_pagefind(m, KBU_PG_OFF, 0x1000, APIC, 64, &f, &err) == -1);
	kbu_mem_close(m);
	free(img);
}

TEST(pae_and_32bit)
{
	uint8_t *img = calloc(1, MEM);
	/* PAE: PDPT (4 entries) at 0x1020 -> PD at 0x2000, PD[503] 2 MiB page at 0xfee00000 */
	set64(img, 0x1020, 3, 0x2000 | 0x1);
	set64(img, 0x2000, 503, APIC | 0x83);
	struct kbu_pagefind f;
	CHECK(find(img, KBU_PG_PAE, 0x1020, APIC + 4, 8, &f) == 1);
	CHECK_EQ_U64(f.va, APIC + 4);
	CHECK_EQ_U64(f.page_size, 2u << 20);
	/* 32-bit: PD at 0x3000, PD[1019] a 4 MiB page 0xfec00000 -> mapped at 0xfec00000 */
	set32(img, 0x3000, 1019, 0xfec00000u | 0x83);
	CHECK(find(img, KBU_PG_32, 0x3000, APIC, 8, &f) == 1);
	CHECK_EQ_U64(f.va, APIC);
	CHECK_EQ_U64(f.page_size, 4u << 20);
	free(img);
}

int main(void)
{
	RUN(linux_fixmap_apic);
	RUN(identity_map_of_the_apic_page);
	RUN(not_mapped_and_the_budget);
	RUN(tables_outside_memory_are_skipped);
	RUN(pae_and_32bit);
	CHECK_DONE("test_pagefind");
}
