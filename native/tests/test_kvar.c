/*
 * Kernel variables: reading them through a source that cannot translate
 * (its physical aliases), and following one to its structure the three ways
 * kernels keep one; variables that hold 0, garbage, or are not there.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "elf_fixture.h"
#include "kbu/elf.h"
#include "kbu/kvar.h"
#include "kbu/mem.h"
#include "membuf.h"

#define MEM (4u << 20)
#define KERNBASE 0xffffffff80000000ull
#define MAGIC 0x336ec578u

static void put32(uint8_t *mem, uint64_t pa, uint32_t v) { memcpy(mem + pa, &v, 4); }
static void put64(uint8_t *mem, uint64_t pa, uint64_t v) { memcpy(mem + pa, &v, 8); }

static int magic_at(struct kbu_mem *m, uint64_t pa, void *arg)
{
	uint32_t v;
	struct kbu_err e;
	(void)arg;
	return kbu_mem_read_u32(m, KBU_PHYS, pa, &v, &e) == 0 && v == MAGIC;
}

TEST(follow_the_three_ways_and_the_failures)
{
	uint8_t *img = calloc(1, MEM);
	/* the structure, at 0x300000 */
	put32(img, 0x300000, MAGIC);
	/* KERNBASE-mapped variables at 0x200000 + n*0x10 */
	put32(img, 0x200000, MAGIC);                    /* IS the structure */
	put64(img, 0x200010, 0x300000);                 /* its physical address */
	put64(img, 0x200020, KERNBASE + 0x300000);      /* a kernel pointer to it */
	put64(img, 0x200030, 0);                        /* not saved yet */
	put64(img, 0x200040, 0x123456789abcdef0ull);    /* garbage */
	put64(img, 0x200050, 0x100000);                 /* a physical address of nothing */
	struct membuf *mb;
	struct kbu_mem *m = membuf_new(img, MEM, NULL, 0, &mb);
	free(img);
	struct kbu_kvar v;
	CHECK_EQ_U64(kbu_kvar_follow(m, NULL, KERNBASE + 0x200000, magic_at, NULL, &v),
		     KBU_KVAR_IS_STRUCT);
	CHECK_EQ_U64(v.pa, 0x200000);
	CHECK_EQ_U64(kbu_kvar_follow(m, NULL, KERNBASE + 0x200010, magic_at, NULL, &v),
		     KBU_KVAR_PHYS);
	CHECK_EQ_U64(v.pa, 0x300000);
	CHECK_EQ_U64(kbu_kvar_follow(m, NULL, KERNBASE + 0x200020, magic_at, NULL, &v),
		     KBU_KVAR_POINTER);
	CHECK_EQ_U64(v.pa, 0x300000);
	CHECK_EQ_U64(v.value, KERNBASE + 0x300000);
	CHECK_EQ_U64(kbu_kvar_follow(m, NULL, KERNBASE + 0x200030, magic_at, NULL, &v),
		     KBU_KVAR_ZERO);
	CHECK_EQ_U64(kbu_kvar_follow(m, NULL, KERNBASE + 0x200040, magic_at, NULL, &v),
		     KBU_KVAR_NOMATCH);
	CHECK_EQ_U64(v.value, 0x123456789abcdef0ull);
	CHECK_EQ_U64(kbu_kvar_follow(m, NULL, KERNBASE + 0x200050, magic_at, NULL, &v),
		     KBU_KVAR_NOMATCH);
	/* past the end of memory, and an address no alias maps */
	CHECK_EQ_U64(kbu_kvar_follow(m, NULL, KERNBASE + MEM + 0x1000, magic_at, NULL, &v),
		     KBU_KVAR_UNREADABLE);
	CHECK_EQ_U64(kbu_kvar_follow(m, NULL, 0x0000123400000000ull, magic_at, NULL, &v),
		     KBU_KVAR_UNREADABLE);
	/* the last 8 bytes of the address space do not wrap */
	CHECK_EQ_U64(kbu_kvar_follow(m, NULL, 0xfffffffffffffff8ull, magic_at, NULL, &v),
		     KBU_KVAR_UNREADABLE);

	char line[200];
	struct kbu_kvar k = {.kind = KBU_KVAR_POINTER, .value = KERNBASE + 0x300000, .pa = 0x300000};
	kbu_kvar_describe(&k, "start_info", KERNBASE + 0x200020, "start info", line, sizeof line);
	CHECK_STR(line, "through start_info at 0xffffffff80200020: it holds pointer 0xffffffff80300000");
	k.kind = KBU_KVAR_ZERO;
	kbu_kvar_describe(&k, "start_info", KERNBASE + 0x200030, "start info", line, sizeof line);
	CHECK_STR(line, "start_info at 0xffffffff80200030 is 0 (not saved yet)");
	k.kind = KBU_KVAR_NOMATCH;
	k.value = 0x42;
	kbu_kvar_describe(&k, "mpct", 0x1000, "\"PCMP\" config table", line, sizeof line);
	CHECK_STR(line, "mpct at 0x1000 holds 0x42, where there is no \"PCMP\" config table");
	kbu_kvar_describe(&k, "mpct", 0x1000, "x", line, 8); /* cut, still a string */
	CHECK_EQ_U64(strlen(line), 7);
	kbu_mem_close(m);
}

TEST(read_through_the_kernel_segments)
{
	/* A kernel linked at 0xffffffff81000000 and loaded at 0x100000: not the
	 * KERNBASE alias (that would be 0x1000000), so only the ELF tells. */
	struct fx_spec s = {.vaddr = 0xffffffff81000000ull, .paddr = 0x100000,
			    .entry = 0xffffffff81000000ull};
	size_t len;
	uint8_t *elfimg = fx_build(&s, &len);
	char path[256];
	fx_write("kvar.elf", elfimg, len, path, sizeof path);
	free(elfimg);
	struct kbu_err err = {0};
	struct kbu_elf *kernel = kbu_elf_open(path, &err);
	CHECK(kernel != NULL);
	uint8_t *img = calloc(1, MEM);
	put64(img, 0x100080, 0x1122334455667788ull);
	struct kbu_mem *m = membuf_new(img, MEM, NULL, 0, NULL);
	free(img);
	uint64_t v = 0;
	CHECK(kbu_read_kva_uint(m, kernel, 0xffffffff81000080ull, 8, &v, &err) == 0);
	CHECK_EQ_U64(v, 0x1122334455667788ull);
	CHECK(kbu_read_kva_uint(m, kernel, 0xffffffff81000080ull, 2, &v, &err) == 0);
	CHECK_EQ_U64(v, 0x7788);
	/* without the ELF, a source that cannot translate cannot read it */
	CHECK(kbu_read_kva_uint(m, NULL, 0xffffffff81000080ull, 8, &v, &err) < 0);
	/* a read running past the segment's end (memsz 0x1000) is not split */
	uint8_t b[16];
	CHECK(kbu_read_kva(m, kernel, 0xffffffff81000ff8ull, b, 16, &err) < 0);
	/* sizes a field cannot have */
	CHECK(kbu_read_kva_uint(m, kernel, 0xffffffff81000080ull, 0, &v, &err) < 0);
	CHECK_EQ_U64(err.code, KBU_EINVAL);
	CHECK(kbu_read_kva_uint(m, kernel, 0xffffffff81000080ull, 9, &v, &err) < 0);
	CHECK_EQ_U64(err.code, KBU_EINVAL);
	/* the candidates: the ELF's alias first, then KERNBASE's */
	uint64_t pa[4];
	int n = kbu_kva_candidates(m, kernel, 0xffffffff81000080ull, pa, 4);
	CHECK_EQ_U64(n, 2);
	CHECK_EQ_U64(pa[0], 0x100080);
	CHECK_EQ_U64(pa[1], 0x1000080);
	CHECK_EQ_U64(kbu_kva_candidates(m, kernel, 0xffffffff81000080ull, pa, 1), 1);
	CHECK_EQ_U64(kbu_kva_candidates(m, NULL, 0xfffff80000001000ull, pa, 4), 1);
	CHECK_EQ_U64(pa[0], 0x1000); /* FreeBSD's direct map */
	CHECK_EQ_U64(kbu_kva_candidates(m, NULL, 0x1000, pa, 4), 0);
	kbu_mem_close(m);
	kbu_elf_close(kernel);
}

int main(void)
{
	RUN(follow_the_three_ways_and_the_failures);
	RUN(read_through_the_kernel_segments);
	fx_cleanup();
	CHECK_DONE("test_kvar");
}
