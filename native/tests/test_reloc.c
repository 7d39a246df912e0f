/* Relocation: segment aliases, slides found by content matching, truncation. */
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kbu/command.h"
#include "kbu/elf.h"
#include "kbu/mem.h"
#include "kbu/regs.h"
#include "kbu/reloc.h"
#include "kbu/report.h"

/* A fake guest: the test binary's own code segments placed at link + vslide
 * (virtual) and p_paddr + pslide (physical); virtual elsewhere is unmapped,
 * physical elsewhere below 512 MiB reads as zeros. */
struct guest {
	struct kbu_elf *e;
	uint64_t vslide, pslide;
	int patch;   /* overwrite every 4th byte of the code, as boot-time patching would */
	int foreign; /* serve inverted bytes: some other kernel */
};

static int fill(struct guest *g, uint64_t addr, uint64_t slide, int phys, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < kbu_elf_nsegments(g->e); i++) {
		const struct kbu_segment *s = kbu_elf_segment(g->e, i);
		if (s->type != PT_LOAD || !(s->flags & PF_X))
			continue;
		uint64_t base = (phys ? s->paddr : s->vaddr) + slide;
		if (addr < base || addr + len > base + s->filesz)
			continue;
		const uint8_t *p = kbu_elf_vaddr_bytes(g->e, s->vaddr + (addr - base), len);
		if (!p)
			return -1;
		memcpy(buf, p, len);
		for (size_t k = 0; k < len; k++) {
			if (g->patch && (addr + k) % 4 == 0)
				buf[k] = 0x90;
			if (g->foreign)
				buf[k] ^= 0xa5;
		}
		return 0;
	}
	return -1;
}

static int guest_read(void *user, int space, uint64_t addr, void *buf, size_t len, char *errbuf,
		      size_t errlen)
{
	struct guest *g = user;
	if (space == KBU_VIRT) {
		if (fill(g, addr, g->vslide, 0, buf, len) == 0)
			return 0;
		snprintf(errbuf, errlen, "virtual 0x%llx not mapped", (unsigned long long)addr);
		return -1;
	}
	if (fill(g, addr, g->pslide, 1, buf, len) == 0)
		return 0;
	if (addr + len <= 512ull << 20) {
		memset(buf, 0, len);
		return 0;
	}
	snprintf(errbuf, errlen, "physical 0x%llx beyond memory", (unsigned long long)addr);
	return -1;
}

static struct kbu_mem *guest_mem(struct guest *g)
{
	struct kbu_err err;
	struct kbu_mem *m = kbu_mem_open_callback(guest_read, NULL, NULL, 1, g, 4096, &err);
	CHECK(m != NULL);
	return m;
}

TEST(map_and_aliases)
{
	struct kbu_err err;
	struct kbu_elf *e = kbu_elf_open("/proc/self/exe", &err);
	CHECK(e != NULL);
	struct kbu_reloc_map m;
	CHECK(kbu_reloc_map(e, &m, &err) == 0);
	CHECK(m.nseg >= 2);
	uint64_t pa, va;
	CHECK(kbu_reloc_v2p(&m, m.seg[1].vaddr + 0x10, &pa) == 0);
	CHECK_EQ_U64(pa, m.seg[1].paddr + 0x10);
	CHECK(kbu_reloc_p2v(&m, pa, &va) == 0);
	CHECK_EQ_U64(va, m.seg[1].vaddr + 0x10);
	CHECK(kbu_reloc_v2p(&m, 0xfffffffffffff000ull, &pa) < 0);
	kbu_elf_close(e);
}

TEST(truncation)
{
	CHECK(kbu_reloc_truncated(0xffffffff8098ae40ull, 0x8098ae40ull));
	CHECK(!kbu_reloc_truncated(0xffffffff8098ae40ull, 0xffffffff8098ae40ull));
	CHECK(!kbu_reloc_truncated(0x8098ae40ull, 0x8098ae40ull)); /* a 32-bit address is fine */
	CHECK(!kbu_reloc_truncated(0xffffffff8098ae40ull, 0x8098ae41ull));
}

TEST(windows_are_distinct_code)
{
	struct kbu_err err;
	struct kbu_elf *e = kbu_elf_open("/proc/self/exe", &err);
	uint64_t w[KBU_RELOC_MAXWIN];
	size_t n = kbu_reloc_pick_windows(e, w, 16);
	CHECK(n >= 8);
	for (size_t i = 1; i < n; i++)
		CHECK(w[i] > w[i - 1]);
	CHECK_EQ_U64(kbu_reloc_pick_windows(e, w, 0), 0);
	kbu_elf_close(e);
}

static void find_with(struct guest *g, struct kbu_reloc_result *r)
{
	struct kbu_err err;
	struct kbu_reloc_opts o;
	kbu_reloc_opts_default(&o);
	o.phys_limit = 256ull << 20;
	struct kbu_mem *m = guest_mem(g);
	CHECK(kbu_reloc_find(m, g->e, &o, r, &err) == 0);
	kbu_mem_close(m);
}

TEST(finds_kaslr_slides)
{
	struct kbu_err err;
	struct guest g = {kbu_elf_open("/proc/self/exe", &err), 0x6400000, 0x1000000, 0, 0};
	struct kbu_reloc_result r;
	find_with(&g, &r);
	CHECK(r.virt.found);
	CHECK_EQ_U64(r.virt.slide, 0x6400000);
	CHECK(r.virt.matched == r.nwindows);
	CHECK(r.phys.found);
	CHECK_EQ_U64(r.phys.slide, 0x1000000);
	CHECK_CONTAINS(r.virt.how, "match at link + 0x6400000");
	/* Boot-time patching of a quarter of the bytes still matches. */
	g.patch = 1;
	find_with(&g, &r);
	CHECK(r.virt.found);
	CHECK_EQ_U64(r.virt.slide, 0x6400000);
	/* At the link address. */
	g.patch = 0;
	g.vslide = 0;
	g.pslide = 0;
	find_with(&g, &r);
	CHECK(r.virt.found && r.virt.slide == 0);
	CHECK_CONTAINS(r.virt.how, "runs where it was linked");
	CHECK(r.phys.found && r.phys.slide == 0);
	kbu_elf_close(g.e);
}

TEST(says_when_it_cannot)
{
	struct kbu_err err;
	struct guest g = {kbu_elf_open("/proc/self/exe", &err), 0x6400000, 0x1000000, 0, 1};
	struct kbu_reloc_result r;
	find_with(&g, &r);
	CHECK(!r.virt.found);
	CHECK_CONTAINS(r.virt.how, "another kernel");
	CHECK(!r.phys.found);
	/* Beyond the searched range: nothing mapped anywhere it looks. */
	g.foreign = 0;
	g.vslide = 0x80000000ull;
	find_with(&g, &r);
	CHECK(!r.virt.found);
	CHECK_CONTAINS(r.virt.how, "virtual map does not exist yet");
	kbu_elf_close(g.e);
}

TEST(one_slide_is_checked_alone)
{
	struct kbu_err err;
	struct guest g = {kbu_elf_open("/proc/self/exe", &err), 0x6400000, 0, 0, 0};
	struct kbu_reloc_opts o;
	kbu_reloc_opts_default(&o);
	o.phys = 0;
	o.only_slide = 1;
	o.slide = 0x6400000;
	struct kbu_reloc_result r;
	struct kbu_mem *m = guest_mem(&g);
	CHECK(kbu_reloc_find(m, g.e, &o, &r, &err) == 0);
	CHECK(r.virt.found && r.virt.slide == 0x6400000);
	CHECK_EQ_U64(r.virt.candidates, 1);
	/* Another slide: not mapped there, said so, and nothing else is tried. */
	o.slide = 0x6600000;
	CHECK(kbu_reloc_find(m, g.e, &o, &r, &err) == 0);
	CHECK(!r.virt.found);
	CHECK_EQ_U64(r.virt.candidates, 1);
	CHECK_CONTAINS(r.virt.how, "is not mapped");
	kbu_mem_close(m);
	kbu_elf_close(g.e);
}

TEST(phase_of_the_boot)
{
	struct kbu_regs r = {0};
	CHECK(kbu_reloc_phase(NULL) == KBU_RELOC_PHASE_UNKNOWN);
	CHECK(kbu_reloc_phase(&r) == KBU_RELOC_PHASE_UNKNOWN);
	r.have = KBU_HAVE_GPR | KBU_HAVE_SEG | KBU_HAVE_CR | KBU_HAVE_SEGBASE;
	r.rip = 0xfff0;
	r.cs = 0xf000;
	r.cs_base = 0xffff0000u;
	r.cr0 = 0x60000010;
	CHECK(kbu_reloc_phase(&r) == KBU_RELOC_PHASE_RESET);
	CHECK_STR(kbu_reloc_phase_name(kbu_reloc_phase(&r)), "reset");
	/* f000:fff0 after a far jump (base 0xf0000) is not the reset state. */
	r.cs_base = 0xf0000;
	CHECK(kbu_reloc_phase(&r) == KBU_RELOC_PHASE_NO_PAGING);
	r.rip = 0x200000;
	r.cr0 = 0x11;
	CHECK(kbu_reloc_phase(&r) == KBU_RELOC_PHASE_NO_PAGING);
	r.cr0 = 0x80000011;
	CHECK(kbu_reloc_phase(&r) == KBU_RELOC_PHASE_PAGING);
	CHECK_STR(kbu_reloc_phase_name(KBU_RELOC_PHASE_PAGING), "paging");
}

TEST(command_report)
{
	struct kbu_err err;
	struct kbu_ctx *ctx = kbu_ctx_new();
	CHECK(kbu_ctx_load_kernel(ctx, "/proc/self/exe", &err) == 0);
	struct guest g = {kbu_elf_open("/proc/self/exe", &err), 0x200000, 0, 0, 0};
	kbu_ctx_set_mem(ctx, guest_mem(&g));
	char *argv[] = {"reloc", "--phys-limit", "0x4000000", "--reported", "main=0x12", NULL};
	char *out = NULL;
	CHECK(kbu_run(ctx, 5, argv, 0, &out, &err) == 0);
	CHECK_CONTAINS(out, "PT_LOAD segments (link -> load)");
	CHECK_CONTAINS(out, "slide:");
	CHECK_CONTAINS(out, "0x200000");
	CHECK_CONTAINS(out, "main");
	kbu_free(out);
	out = NULL;
	char *json[] = {"reloc", "--no-phys", NULL};
	CHECK(kbu_run(ctx, 2, json, 1, &out, &err) == 0);
	CHECK_CONTAINS(out, "\"slide\": 2097152");
	/* values, not their renderings: "12 of 12", "r-x" and "0x..." are text only */
	CHECK_CONTAINS(out, "\"windows_matched\": ");
	CHECK_CONTAINS(out, "\"windows_compared\": ");
	CHECK_CONTAINS(out, "\"executable\": true");
	CHECK_CONTAINS(out, "\"searched\": false");
	CHECK(!strstr(out, "\"windows\": \"") && !strstr(out, "r-x") && !strstr(out, "\"0x"));
	kbu_free(out);
	out = NULL;
	char *bad[] = {"reloc", "--align", "3", NULL};
	CHECK(kbu_run(ctx, 3, bad, 0, &out, &err) == 2);
	CHECK_CONTAINS(err.msg, "power of two");
	kbu_free(out);
	out = NULL;
	/* Reported addresses: a state per row and a finding with a code. */
	char *rep[] = {"reloc", "--no-phys", "--no-virt", "--reported", "main=0x12", NULL};
	out = NULL;
	CHECK(kbu_run(ctx, 5, rep, 1, &out, &err) == 0);
	CHECK_CONTAINS(out, "\"state\": \"differs\"");
	CHECK_CONTAINS(out, "\"code\": \"reloc.reported_differs\"");
	CHECK(!strstr(out, "\"verdict\"") && !strstr(out, "off by"));
	kbu_free(out);
	out = NULL;
	CHECK(kbu_run(ctx, 5, rep, 0, &out, &err) == 0);
	CHECK_CONTAINS(out, "off by 0x");
	kbu_free(out);
	out = NULL;
	char *bad2[] = {"reloc", "--reported", "noequals", NULL};
	CHECK(kbu_run(ctx, 3, bad2, 0, &out, &err) == 2);
	kbu_free(out);
	kbu_ctx_free(ctx);
	kbu_elf_close(g.e);
}

TEST(command_report_signed_slide)
{
	/* A kernel running below its link address: the slide is negative in JSON,
	 * "-0x1000" in the text. */
	struct kbu_err err;
	struct kbu_ctx *ctx = kbu_ctx_new();
	CHECK(kbu_ctx_load_kernel(ctx, "/proc/self/exe", &err) == 0);
	struct guest g = {kbu_elf_open("/proc/self/exe", &err), (uint64_t)0 - 0x1000, 0, 0, 0};
	kbu_ctx_set_mem(ctx, guest_mem(&g));
	char *argv[] = {"reloc", "--slide", "0xfffffffffffff000", NULL};
	char *out = NULL;
	CHECK(kbu_run(ctx, 3, argv, 1, &out, &err) == 0);
	CHECK_CONTAINS(out, "\"slide\": -4096");
	kbu_free(out);
	out = NULL;
	CHECK(kbu_run(ctx, 3, argv, 0, &out, &err) == 0);
	CHECK_CONTAINS(out, "slide:                 -0x1000\n");
	kbu_free(out);
	kbu_ctx_free(ctx);
	kbu_elf_close(g.e);
}

int main(void)
{
	RUN(map_and_aliases);
	RUN(truncation);
	RUN(windows_are_distinct_code);
	RUN(finds_kaslr_slides);
	RUN(says_when_it_cannot);
	RUN(one_slide_is_checked_alone);
	RUN(phase_of_the_boot);
	RUN(command_report);
	RUN(command_report_signed_slide);
	CHECK_DONE("test_reloc");
}
