/* Page-table walker: synthetic tables in a buffer exposed as a physical source. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "membuf.h"
#include "kbu/mem.h"
#include "kbu/paging.h"

#define MEM_SIZE (64 * 4096)

/* Zeroed physical memory [0, MEM_SIZE); CPU 0's registers once b->have_regs is set. */
static struct kbu_mem *new_mem(struct membuf **out)
{
	return membuf_new(NULL, MEM_SIZE, NULL, 1, out);
}

static void put64(struct membuf *b, uint64_t pa, uint64_t v) { memcpy(b->mem + pa, &v, 8); }
static void put32(struct membuf *b, uint64_t pa, uint32_t v) { memcpy(b->mem + pa, &v, 4); }

#define P 1ull
#define RW 2ull
#define US 4ull
#define PS 0x80ull
#define NX (1ull << 63)

/* 0xffffffff80201234: PML4 511, PDPT 510, PD 1, PT 1, offset 0x234 */
#define KVA 0xffffffff80201234ull

static void build_4level(struct membuf *b)
{
	put64(b, 0x1000 + 511 * 8, 0x2000 | P | RW);
	put64(b, 0x2000 + 510 * 8, 0x3000 | P | RW);
	put64(b, 0x3000 + 1 * 8, 0x4000 | P | RW);
	put64(b, 0x4000 + 1 * 8, 0x10000 | P | NX); /* read-only, no-exec 4K page */
	put64(b, 0x3000 + 2 * 8, 0x40000000 | P | RW | PS);      /* 2 MiB page at 1 GiB */
	put64(b, 0x2000 + 3 * 8, 0x80000000ull | P | RW | PS | US); /* 1 GiB page at 2 GiB */
	memcpy(b->mem + 0x10234, "hello", 6);
}

TEST(walk_4level_4k)
{
	struct membuf *b;
	struct kbu_mem *m = new_mem(&b);
	build_4level(b);
	struct kbu_walk w;
	struct kbu_err err = {0};
	CHECK(kbu_vtop(m, KBU_PG_4LEVEL, 0x1000, KVA, &w, &err) == 0);
	CHECK(w.present);
	CHECK_EQ_U64(w.nsteps, 4);
	CHECK_STR(w.steps[0].level, "PML4");
	CHECK_EQ_U64(w.steps[0].index, 511);
	CHECK_EQ_U64(w.steps[0].entry_pa, 0x1000 + 511 * 8);
	CHECK_STR(w.steps[1].level, "PDPT");
	CHECK_EQ_U64(w.steps[1].index, 510);
	CHECK_EQ_U64(w.steps[1].table_pa, 0x2000);
	CHECK_STR(w.steps[3].level, "PT");
	CHECK_EQ_U64(w.steps[3].entry, 0x10000 | P | NX);
	CHECK_EQ_U64(w.pa, 0x10234);
	CHECK_EQ_U64(w.page_size, 4096);
	CHECK(!w.writable);
	CHECK(w.nx);
	CHECK(!w.user);
	CHECK_EQ_U64(w.fault_step, (uint64_t)-1);
	kbu_mem_close(m);
}

TEST(walk_4level_large_pages)
{
	struct membuf *b;
	struct kbu_mem *m = new_mem(&b);
	build_4level(b);
	struct kbu_walk w;
	struct kbu_err err = {0};
	/* PD index 2 -> 2 MiB page */
	CHECK(kbu_vtop(m, KBU_PG_4LEVEL, 0x1000, 0xffffffff80400000ull + 0x12345, &w, &err) == 0);
	CHECK(w.present);
	CHECK_EQ_U64(w.nsteps, 3);
	CHECK_EQ_U64(w.page_size, 2ull << 20);
	CHECK_EQ_U64(w.pa, 0x40000000ull + 0x12345);
	CHECK(w.writable);
	/* PML4 511, PDPT 3 -> 1 GiB page: va 0xffffff80c0000000 + off */
	CHECK(kbu_vtop(m, KBU_PG_4LEVEL, 0x1000, 0xffffff80c0000000ull + 0x3456789, &w, &err) == 0);
	CHECK(w.present);
	CHECK_EQ_U64(w.nsteps, 2);
	CHECK_EQ_U64(w.page_size, 1ull << 30);
	CHECK_EQ_U64(w.pa, 0x80000000ull + 0x3456789);
	kbu_mem_close(m);
}

TEST(walk_not_present_names_level)
{
	struct membuf *b;
	struct kbu_mem *m = new_mem(&b);
	build_4level(b);
	struct kbu_walk w;
	struct kbu_err err = {0};
	/* PD index 5 is empty */
	CHECK(kbu_vtop(m, KBU_PG_4LEVEL, 0x1000, 0xffffffff80a00000ull, &w, &err) == 0);
	CHECK(!w.present);
	CHECK_EQ_U64(w.fault_step, 2);
	CHECK_STR(w.steps[w.fault_step].level, "PD");
	CHECK_EQ_U64(w.steps[2].index, 5);
	/* lower half: PML4 index 0 empty */
	CHECK(kbu_vtop(m, KBU_PG_4LEVEL, 0x1000, 0x400000, &w, &err) == 0);
	CHECK(!w.present);
	CHECK_EQ_U64(w.fault_step, 0);
	kbu_mem_close(m);
}

TEST(walk_errors)
{
	struct membuf *b;
	struct kbu_mem *m = new_mem(&b);
	build_4level(b);
	struct kbu_walk w;
	struct kbu_err err = {0};
	CHECK(kbu_vtop(m, KBU_PG_4LEVEL, 0x1000, 0x0000800000000000ull, &w, &err) < 0);
	CHECK_CONTAINS(err.msg, "not canonical");
	/* A table outside memory: the error names the entry's address. */
	put64(b, 0x1000 + 8, 0x7000000 | P);
	CHECK(kbu_vtop(m, KBU_PG_4LEVEL, 0x1000, 0x8000000000ull, &w, &err) < 0);
	CHECK_CONTAINS(err.msg, "PDPT entry 0 at physical 0x7000000");
	CHECK(kbu_vtop(m, KBU_PG_UNKNOWN, 0, 0x1000, &w, &err) < 0);
	CHECK(kbu_vtop(m, KBU_PG_PAE, 0x1000, 0x100000000ull, &w, &err) < 0);
	CHECK_CONTAINS(err.msg, "32 bits");
	kbu_mem_close(m);
}

TEST(walk_5level)
{
	struct membuf *b;
	struct kbu_mem *m = new_mem(&b);
	build_4level(b);
	/* PML5 at 0x6000: index 511 -> the 4-level PML4 at 0x1000 */
	put64(b, 0x6000 + 511 * 8, 0x1000 | P | RW);
	struct kbu_walk w;
	struct kbu_err err = {0};
	uint64_t va = 0xffffffffff201234ull; /* PML5 511, PML4 511, PDPT 511... */
	CHECK(kbu_vtop(m, KBU_PG_5LEVEL, 0x6000, va, &w, &err) == 0);
	CHECK_STR(w.steps[0].level, "PML5");
	CHECK_EQ_U64(w.steps[0].index, 511);
	CHECK_EQ_U64(w.steps[2].index, 511);
	CHECK(!w.present); /* PDPT 511 is empty */
	CHECK_EQ_U64(w.fault_step, 2);
	/* The tables changed behind the cache: drop it. */
	put64(b, 0x2000 + 511 * 8, 0x3000 | P | RW);
	kbu_mem_flush(m);
	/* va 0xfffffffffe201234: PML5 511, PML4 511, PDPT 511, PD 0x1f1 (empty) */
	CHECK(kbu_vtop(m, KBU_PG_5LEVEL, 0x6000, 0xfffffffffe201234ull, &w, &err) == 0);
	CHECK(!w.present);
	CHECK_EQ_U64(w.nsteps, 4);
	CHECK_EQ_U64(w.fault_step, 3);
	put64(b, 0x3000 + 0x1f1 * 8, 0x4000 | P | RW);
	kbu_mem_flush(m);
	CHECK(kbu_vtop(m, KBU_PG_5LEVEL, 0x6000, 0xfffffffffe201234ull, &w, &err) == 0);
	CHECK(w.present);
	CHECK_EQ_U64(w.nsteps, 5);
	CHECK_EQ_U64(w.pa, 0x10234);
	kbu_mem_close(m);
}

TEST(walk_pae)
{
	struct membuf *b;
	struct kbu_mem *m = new_mem(&b);
	/* PDPT at 0x5020 (32-byte aligned), entry 3 -> PD 0x7000 */
	put64(b, 0x5020 + 3 * 8, 0x7000 | P);
	put64(b, 0x7000 + 0 * 8, 0x8000 | P | RW | US);          /* PD 0 -> PT */
	put64(b, 0x8000 + 0x10 * 8, 0x12000 | P | RW | US);  /* PT 0x10 */
	put64(b, 0x7000 + 1 * 8, 0x00600000 | P | PS);       /* PD 1 -> 2 MiB page */
	struct kbu_walk w;
	struct kbu_err err = {0};
	CHECK(kbu_vtop(m, KBU_PG_PAE, 0x5020, 0xc0010abcull, &w, &err) == 0);
	CHECK(w.present);
	CHECK_EQ_U64(w.nsteps, 3);
	CHECK_STR(w.steps[0].level, "PDPT");
	CHECK_EQ_U64(w.steps[0].index, 3);
	CHECK_EQ_U64(w.steps[0].table_pa, 0x5020);
	CHECK_EQ_U64(w.pa, 0x12abc);
	CHECK(w.user);
	CHECK(w.writable);
	CHECK(kbu_vtop(m, KBU_PG_PAE, 0x5020, 0xc0212345ull, &w, &err) == 0);
	CHECK_EQ_U64(w.page_size, 2ull << 20);
	CHECK_EQ_U64(w.pa, 0x612345);
	CHECK(!w.writable);
	kbu_mem_close(m);
}

TEST(walk_32bit)
{
	struct membuf *b;
	struct kbu_mem *m = new_mem(&b);
	put32(b, 0x9000 + 0x300 * 4, 0x00c00000 | P | RW | PS); /* 4 MiB page for 0xc0000000 */
	put32(b, 0x9000 + 0x001 * 4, 0xa000 | P | RW);           /* 0x00400000 -> PT */
	put32(b, 0xa000 + 0x002 * 4, 0x13000 | P);
	put32(b, 0x9000 + 0x301 * 4, 0x00000000 | P | PS | (0x3u << 13)); /* PSE-36: 0x3_0000_0000 */
	struct kbu_walk w;
	struct kbu_err err = {0};
	CHECK(kbu_vtop(m, KBU_PG_32, 0x9000, 0xc0123456ull, &w, &err) == 0);
	CHECK(w.present);
	CHECK_EQ_U64(w.nsteps, 1);
	CHECK_EQ_U64(w.page_size, 4ull << 20);
	CHECK_EQ_U64(w.pa, 0x00d23456);
	CHECK(kbu_vtop(m, KBU_PG_32, 0x9000, 0x00402010ull, &w, &err) == 0);
	CHECK_EQ_U64(w.nsteps, 2);
	CHECK_EQ_U64(w.steps[1].entry_pa, 0xa008);
	CHECK_EQ_U64(w.pa, 0x13010);
	CHECK(!w.writable);
	CHECK(kbu_vtop(m, KBU_PG_32, 0x9000, 0xc0400010ull, &w, &err) == 0);
	CHECK_EQ_U64(w.pa, 0x300000010ull);
	CHECK(kbu_vtop(m, KBU_PG_32, 0x9000, 0x80000000ull, &w, &err) == 0);
	CHECK(!w.present);
	CHECK_EQ_U64(w.fault_step, 0);
	kbu_mem_close(m);
}

TEST(paging_mode_from_registers)
{
	struct kbu_regs r = {0};
	CHECK_EQ_U64(kbu_regs_paging_mode(&r), (uint64_t)KBU_PG_UNKNOWN);
	r.have = KBU_HAVE_CR | KBU_HAVE_EFER;
	r.cr0 = 0x11;
	CHECK_EQ_U64(kbu_regs_paging_mode(&r), KBU_PG_OFF);
	r.cr0 = 0x80000011;
	CHECK_EQ_U64(kbu_regs_paging_mode(&r), KBU_PG_32);
	r.cr4 = 0x20;
	CHECK_EQ_U64(kbu_regs_paging_mode(&r), KBU_PG_PAE);
	r.efer = 0x500;
	CHECK_EQ_U64(kbu_regs_paging_mode(&r), KBU_PG_4LEVEL);
	r.cr4 |= 1u << 12;
	CHECK_EQ_U64(kbu_regs_paging_mode(&r), KBU_PG_5LEVEL);
	CHECK_STR(kbu_paging_mode_name(KBU_PG_4LEVEL), "4-level paging");
}

TEST(virtual_reads_walk_the_tables)
{
	struct membuf *b;
	struct kbu_mem *m = new_mem(&b);
	build_4level(b);
	b->regs.have = KBU_HAVE_CR | KBU_HAVE_EFER;
	b->regs.cr0 = 0x80000011;
	b->regs.cr4 = 0x20;
	b->regs.efer = 0x500;
	b->regs.cr3 = 0x1000;
	b->have_regs = 1;
	char s[16];
	struct kbu_err err = {0};
	CHECK(kbu_mem_read_str(m, KBU_VIRT, KVA, s, sizeof s, &err) == 0);
	CHECK_STR(s, "hello");
	/* A read crossing from the mapped page into the next (PT index 2, empty) fails
	 * and names the unmapped address. */
	uint8_t buf[0x20];
	CHECK(kbu_mem_read(m, KBU_VIRT, 0xffffffff80201ff0ull, buf, sizeof buf, &err) < 0);
	CHECK_EQ_U64(err.code, KBU_EFAULT);
	CHECK_CONTAINS(err.msg, "0xffffffff80202000");
	CHECK_CONTAINS(err.msg, "PT entry 2");
	/* An explicit translation context replaces CPU 0's. */
	kbu_mem_set_translation(m, KBU_PG_OFF, 0);
	CHECK(kbu_mem_read_str(m, KBU_VIRT, 0x10234, s, sizeof s, &err) == 0);
	CHECK_STR(s, "hello");
	kbu_mem_close(m);
}

/* Random tables, random addresses, every mode: the walk either explains itself or fails
 * with the entry address, and its record is consistent. */
TEST(random_walks_are_consistent)
{
	struct membuf *b;
	struct kbu_mem *m = new_mem(&b);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < MEM_SIZE; i += 8) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		/* mostly entries pointing inside the buffer, some anywhere */
		uint64_t e = (x & 7) ? ((x >> 8) % MEM_SIZE & ~0xfffull) | (x & 0x1ff) | ((x >> 20) & 1) << 63 : x;
		memcpy(b->mem + i, &e, 8);
	}
	static const enum kbu_paging_mode modes[] = {KBU_PG_32, KBU_PG_PAE, KBU_PG_4LEVEL, KBU_PG_5LEVEL};
	static const int levels[] = {2, 3, 4, 5};
	int present = 0, absent = 0, failed = 0;
	for (int n = 0; n < 4000; n++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		int k = (int)(x % 4);
		uint64_t cr3 = (x >> 3) % MEM_SIZE & ~0x1full;
		uint64_t va = x * 0x2545f4914f6cdd1dull;
		if (k < 2)
			va &= 0xffffffffull;
		else if (k == 2)
			va = (uint64_t)((int64_t)(va << 16) >> 16);
		else
			va = (uint64_t)((int64_t)(va << 7) >> 7);
		struct kbu_walk w;
		struct kbu_err err = {0};
		if (kbu_vtop(m, modes[k], cr3, va, &w, &err) < 0) {
			CHECK_CONTAINS(err.msg, "at physical 0x");
			failed++;
			continue;
		}
		CHECK(w.nsteps >= 1 && w.nsteps <= levels[k]);
		if (w.present) {
			CHECK_EQ_U64(w.fault_step, (uint64_t)-1);
			CHECK(w.page_size >= 4096);
			CHECK_EQ_U64(w.pa & (w.page_size - 1), va & (w.page_size - 1));
			present++;
		} else {
			CHECK(w.fault_step == w.nsteps - 1);
			CHECK_EQ_U64(w.steps[w.fault_step].entry & 1, 0);
			absent++;
		}
	}
	CHECK(present > 0 && absent > 0 && failed > 0);
	kbu_mem_close(m);
}

int main(void)
{
	RUN(walk_4level_4k);
	RUN(walk_4level_large_pages);
	RUN(walk_not_present_names_level);
	RUN(walk_errors);
	RUN(walk_5level);
	RUN(walk_pae);
	RUN(walk_32bit);
	RUN(paging_mode_from_registers);
	RUN(virtual_reads_walk_the_tables);
	RUN(random_walks_are_consistent);
	CHECK_DONE("test_paging");
}
