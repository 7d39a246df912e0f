/* PVH start info: v0/v1 decode, bad pointers, zero-size memmap entries, and
 * finding it by saved kernel pointers, %ebx and scanning, on images built here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "membuf.h"
#include "support.h"
#include "kbu/command.h"
#include "kbu/mem.h"
#include "kbu/pvh.h"
#include "kbu/report.h"
#include "kbu/symbols.h"

/* A memory source over a copy of img: [0, size) exists; CPU 0 (when have_regs)
 * is at the PVH entry: 32-bit protected mode, no paging, %ebx = rbx. */
static struct kbu_mem *fake_mem(const uint8_t *img, size_t size, int have_regs, uint64_t rbx)
{
	struct membuf *b = NULL;
	struct kbu_mem *m = membuf_new(img, size, NULL, 1, &b);
	if (m) {
		b->have_regs = have_regs;
		b->regs.have = KBU_HAVE_GPR | KBU_HAVE_CR;
		b->regs.bits = 32;
		b->regs.rbx = rbx;
		b->regs.cr0 = 0x11; /* PE, no paging: the PVH entry state */
	}
	return m;
}

static void put32(uint8_t *p, uint32_t v) { put_le(p, v, 4); }
static void put64(uint8_t *p, uint64_t v) { put_le(p, v, 8); }

#define MEMSZ (4u * 1024 * 1024)
#define SI 0xf31e0u
#define CMD 0xeff60u
#define MAP 0xefed0u

static void memmap_entry(uint8_t *img, unsigned i, uint64_t addr, uint64_t size, uint32_t type)
{
	uint8_t *e = img + MAP + 24 * i;
	put64(e, addr);
	put64(e + 8, size);
	put32(e + 16, type);
}

/* What QEMU 7.2's qboot writes for -M microvm: v1, no modules, no RSDP, six
 * memory map entries of which the last has size 0. */
static void build_qboot(uint8_t *img, uint64_t at, const char *cmdline)
{
	uint8_t *s = img + at;
	put32(s, KBU_PVH_MAGIC);
	put32(s + 4, 1);
	put64(s + 24, CMD);
	put64(s + 40, MAP);
	put32(s + 48, 6);
	strcpy((char *)img + CMD, cmdline);
	memmap_entry(img, 0, 0, 0x9fc00, 1);
	memmap_entry(img, 1, 0x9fc00, 0x400, 2);
	memmap_entry(img, 2, 0xd0000, 0x20000, 4);
	memmap_entry(img, 3, 0xf0000, 0x10000, 2);
	memmap_entry(img, 4, 0x100000, MEMSZ - 0x100000, 1);
	memmap_entry(img, 5, 0, 0, 0);
}

static int has_problem(const struct kbu_pvh *p, const char *needle)
{
	for (size_t i = 0; i < p->nproblems; i++)
		if (strstr(p->problems[i].msg, needle))
			return 1;
	return 0;
}

static char *render(const struct kbu_pvh *p, int json)
{
	struct kbu_report *r = kbu_report_new("pvh");
	kbu_pvh_report(p, kbu_report_root(r));
	char *s = kbu_report_render(r, json);
	kbu_report_free(r);
	return s;
}

TEST(v1_found_by_scanning_zero_size_entry_flagged)
{
	uint8_t *img = calloc(1, MEMSZ);
	build_qboot(img, SI, "console=ttyS0 kbu.token=xyz");
	/* A bare magic at an earlier aligned address with garbage pointers. */
	put32(img + 0x8000, KBU_PVH_MAGIC);
	put32(img + 0x8004, 1);
	put64(img + 0x8000 + 24, 0x7777777777ull);
	struct kbu_mem *m = fake_mem(img, MEMSZ, 0, 0);
	struct kbu_pvh p;
	struct kbu_err e;
	CHECK(kbu_pvh_find(m, NULL, NULL, 0, &p, &e) == 0);
	CHECK_EQ_U64(p.addr, SI);
	CHECK_STR(p.how, "found by scanning low memory");
	CHECK_EQ_U64(p.version, 1);
	CHECK_EQ_U64(p.cmdline.state, KBU_PVH_STR_OK);
	CHECK_STR(p.cmdline.text, "console=ttyS0 kbu.token=xyz");
	CHECK_EQ_U64(p.nmemmap, 6);
	CHECK_EQ_U64(p.memmap[4].addr, 0x100000);
	CHECK_EQ_U64(p.memmap[4].size, MEMSZ - 0x100000);
	CHECK(has_problem(&p, "memory map entry 5 has size 0"));
	char *txt = render(&p, 0);
	CHECK_CONTAINS(txt, "0xf31e0 (found by scanning low memory)");
	CHECK_CONTAINS(txt, "console=ttyS0 kbu.token=xyz");
	CHECK_CONTAINS(txt, "Memory map");
	CHECK_CONTAINS(txt, "RAM:            3.6 MiB in 2 entries, up to 0x400000");
	CHECK_CONTAINS(txt, "NVS");
	CHECK_CONTAINS(txt, "0x000000000009fc00  0x000000000009ffff");
	/* an explained placeholder: a note, not a '!' */
	CHECK_CONTAINS(txt, "note: memory map entry 5 has size 0");
	char *js = render(&p, 1);
	CHECK_CONTAINS(js, "\"cmdline\": \"console=ttyS0 kbu.token=xyz\"");
	CHECK_CONTAINS(js, "\"memmap_entries\": 6");
	kbu_free(txt);
	kbu_free(js);
	kbu_pvh_free(&p);
	kbu_mem_close(m);
	free(img);
}

TEST(v0_with_module_and_rsdp)
{
	uint8_t *img = calloc(1, MEMSZ);
	uint8_t *s = img + 0x5000;
	put32(s, KBU_PVH_MAGIC);
	put32(s + 4, 0);
	put32(s + 8, 1 | 4);
	put32(s + 12, 1);
	put64(s + 16, 0x6000);
	put64(s + 24, 0x7000);
	put64(s + 32, 0xe0000);
	/* a v1 field's worth of junk right after: must not be decoded for v0 */
	put32(s + 48, 99);
	put64(img + 0x6000, 0x200000);
	put64(img + 0x6008, 0x1000);
	put64(img + 0x6010, 0x7100);
	strcpy((char *)img + 0x7000, "boot_verbose");
	strcpy((char *)img + 0x7100, "initrd.img");
	/* ACPI 1.0 RSDP: signature, checksum, OEM, revision 0, RSDT */
	memcpy(img + 0xe0000, "RSD PTR ", 8);
	memcpy(img + 0xe0009, "BOCHS ", 6);
	put32(img + 0xe0010, 0x7fe0000);
	unsigned rs = 0;
	for (int i = 0; i < 20; i++)
		rs += img[0xe0000 + i];
	img[0xe0008] = (uint8_t)(0x100 - (rs & 0xff));
	struct kbu_mem *m = fake_mem(img, MEMSZ, 0, 0);
	struct kbu_pvh p;
	struct kbu_err e;
	CHECK(kbu_pvh_decode(m, 0x5000, &p, &e) == 0);
	CHECK_EQ_U64(p.version, 0);
	CHECK(!p.has_v1);
	CHECK_EQ_U64(p.nmemmap, 0);
	CHECK_EQ_U64(p.nmodules, 1);
	CHECK_EQ_U64(p.modules[0].paddr, 0x200000);
	CHECK_EQ_U64(p.modules[0].size, 0x1000);
	CHECK_STR(p.modules[0].cmdline.text, "initrd.img");
	CHECK_STR(p.cmdline.text, "boot_verbose");
	CHECK_EQ_U64(p.rsdp_sig_ok, 1);
	CHECK(p.rsdp_sum_ok);
	CHECK_EQ_U64(p.rsdt_paddr, 0x7fe0000);
	CHECK_EQ_U64(p.nproblems, 0);
	char *txt = render(&p, 0);
	CHECK_CONTAINS(txt, "PRIVILEGED,MULTIBOOT_MOD");
	CHECK_CONTAINS(txt, "Modules");
	CHECK_CONTAINS(txt, "initrd.img");
	CHECK_CONTAINS(txt, "OEM 'BOCHS', revision 0, RSDT 0x07fe0000, checksum ok");
	CHECK(strstr(txt, "Memory map") == NULL);
	CHECK(strchr(txt, '!') == NULL);
	kbu_free(txt);
	kbu_pvh_free(&p);
	kbu_mem_close(m);
	free(img);
}

TEST(bad_magic_and_nothing_to_find)
{
	uint8_t *img = calloc(1, MEMSZ);
	put32(img + 0x5000, 0x336ec579);
	struct kbu_mem *m = fake_mem(img, MEMSZ, 0, 0);
	struct kbu_pvh p;
	struct kbu_err e;
	CHECK(kbu_pvh_decode(m, 0x5000, &p, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_EFORMAT);
	CHECK_CONTAINS(e.msg, "magic is 0x336ec579, expected 0x336ec578");
	CHECK(kbu_pvh_decode(m, MEMSZ - 8, &p, &e) != 0);
	CHECK_CONTAINS(e.msg, "start info at 0x3ffff8");
	memset(&p, 0xa5, sizeof(p)); /* a failed find must still leave p freeable */
	CHECK(kbu_pvh_find(m, NULL, NULL, 0, &p, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_ENOTFOUND);
	CHECK_CONTAINS(e.msg, "no PVH start info found");
	CHECK_CONTAINS(e.msg, "in the 4096 KiB of memory scanned"); /* all 4 MiB of it */
	kbu_pvh_free(&p);
	kbu_mem_close(m);
	free(img);
}

TEST(absurd_memmap_count_and_pointers_outside_memory)
{
	uint8_t *img = calloc(1, MEMSZ);
	build_qboot(img, SI, "console=ttyS0");
	put32(img + SI + 48, 100000);
	put32(img + SI + 12, 2);              /* two modules ... */
	put64(img + SI + 16, MEMSZ - 32);     /* ... but only one fits in memory */
	put64(img + SI + 32, 0x80000000ull);  /* RSDP outside memory */
	struct kbu_mem *m = fake_mem(img, MEMSZ, 0, 0);
	struct kbu_pvh p;
	struct kbu_err e;
	CHECK(kbu_pvh_decode(m, SI, &p, &e) == 0);
	CHECK(has_problem(&p, "memmap_entries 100000 is absurd"));
	CHECK_EQ_U64(p.nmemmap, 0);
	CHECK(has_problem(&p, "rsdp_paddr 0x80000000 points outside memory"));
	CHECK(has_problem(&p, "module 1 entry at 0x400000 is outside memory"));
	CHECK_EQ_U64(p.nmodules, 1);
	/* The rest is still there. */
	CHECK_STR(p.cmdline.text, "console=ttyS0");
	CHECK(!kbu_pvh_plausible(m, SI));
	kbu_pvh_free(&p);

	/* Only an implausible structure in memory: the scan still shows it, flagged. */
	CHECK(kbu_pvh_find(m, NULL, NULL, 0, &p, &e) == 0);
	CHECK_EQ_U64(p.addr, SI);
	CHECK_CONTAINS(p.how, "not plausible");
	kbu_pvh_free(&p);
	kbu_mem_close(m);
	free(img);
}

/* A thousand overlapping entries: the overlaps are capped and counted. */
TEST(overlap_flood_is_capped)
{
	uint8_t *img = calloc(1, MEMSZ);
	build_qboot(img, SI, "console=ttyS0");
	put64(img + SI + 40, 0x100000);
	put32(img + SI + 48, 1000);
	for (unsigned i = 0; i < 1000; i++) {
		put64(img + 0x100000 + 24 * i, 0x100000);
		put64(img + 0x100000 + 24 * i + 8, 0x1000);
		put32(img + 0x100000 + 24 * i + 16, 1);
	}
	struct kbu_mem *m = fake_mem(img, MEMSZ, 0, 0);
	struct kbu_pvh p;
	struct kbu_err e;
	CHECK(kbu_pvh_decode(m, SI, &p, &e) == 0);
	CHECK_EQ_U64(p.nmemmap, 1000);
	CHECK_EQ_U64(p.nproblems, KBU_PVH_MAX_PROBLEMS);
	CHECK_EQ_U64(p.nsuppressed, 1000 * 999 / 2 - KBU_PVH_MAX_PROBLEMS);
	char *txt = render(&p, 0);
	CHECK_CONTAINS(txt, "further problems not listed");
	kbu_free(txt);
	kbu_pvh_free(&p);
	kbu_mem_close(m);
	free(img);
}

TEST(cmdline_unterminated_or_outside)
{
	uint8_t *img = calloc(1, MEMSZ);
	build_qboot(img, SI, "x");
	memset(img + MEMSZ - 64, 'a', 64);
	put64(img + SI + 24, MEMSZ - 64);
	struct kbu_mem *m = fake_mem(img, MEMSZ, 0, 0);
	struct kbu_pvh p;
	struct kbu_err e;
	CHECK(kbu_pvh_decode(m, SI, &p, &e) == 0);
	CHECK_EQ_U64(p.cmdline.state, KBU_PVH_STR_UNTERMINATED);
	CHECK_EQ_U64(p.cmdline.len, 64);
	CHECK(has_problem(&p, "cmdline_paddr at 0x3fffc0 is not NUL-terminated"));
	CHECK(!kbu_pvh_plausible(m, SI));
	char *txt = render(&p, 0);
	CHECK_CONTAINS(txt, "aaaa...");
	kbu_free(txt);
	kbu_pvh_free(&p);

	put64(img + SI + 24, 0x123456789ull);
	kbu_mem_close(m);
	m = fake_mem(img, MEMSZ, 0, 0);
	CHECK(kbu_pvh_decode(m, SI, &p, &e) == 0);
	CHECK_EQ_U64(p.cmdline.state, KBU_PVH_STR_UNREADABLE);
	CHECK(has_problem(&p, "cmdline_paddr 0x123456789 points outside memory"));
	CHECK_EQ_U64(p.nmemmap, 6);
	kbu_pvh_free(&p);
	kbu_mem_close(m);
	free(img);
}

/* Firecracker's layout: start info at 0x6000, memory map at 0x7000, command
 * line at 0x20000 (its x86_64 layout constants). */
TEST(firecracker_layout_found_by_scanning)
{
	uint8_t *img = calloc(1, MEMSZ);
	uint8_t *s = img + 0x6000;
	put32(s, KBU_PVH_MAGIC);
	put32(s + 4, 1);
	put64(s + 24, 0x20000);
	put64(s + 40, 0x7000);
	put32(s + 48, 2);
	strcpy((char *)img + 0x20000, "reboot=k panic=1 pci=off");
	put64(img + 0x7000, 0);
	put64(img + 0x7008, 0x9fc00);
	put32(img + 0x7010, 1);
	put64(img + 0x7018, 0x100000);
	put64(img + 0x7020, MEMSZ - 0x100000);
	put32(img + 0x7028, 1);
	struct kbu_mem *m = fake_mem(img, MEMSZ, 0, 0);
	struct kbu_pvh p;
	struct kbu_err e;
	CHECK(kbu_pvh_find(m, NULL, NULL, 0, &p, &e) == 0);
	CHECK_EQ_U64(p.addr, 0x6000);
	CHECK_STR(p.cmdline.text, "reboot=k panic=1 pci=off");
	CHECK_EQ_U64(p.nmemmap, 2);
	CHECK_EQ_U64(p.nproblems, 0);
	struct kbu_mem_stats st = kbu_mem_get_stats(m);
	CHECK(st.source_bytes <= 128 * 1024); /* the first window, not all of low memory */
	kbu_pvh_free(&p);
	kbu_mem_close(m);
	free(img);
}

TEST(found_where_ebx_points)
{
	uint8_t *img = calloc(1, MEMSZ);
	build_qboot(img, SI, "console=ttyS0");
	build_qboot(img, 0x3000, "from ebx"); /* same cmdline buffer: rewrite below */
	strcpy((char *)img + 0x2f00, "from ebx");
	put64(img + 0x3000 + 24, 0x2f00);
	struct kbu_mem *m = fake_mem(img, MEMSZ, 1, 0xffffffff00000000ull | SI);
	struct kbu_pvh p;
	struct kbu_err e;
	CHECK(kbu_pvh_find(m, NULL, NULL, 0, &p, &e) == 0);
	CHECK_EQ_U64(p.addr, SI); /* not the earlier 0x3000 a scan would see first */
	CHECK_CONTAINS(p.how, "%ebx");
	kbu_pvh_free(&p);
	kbu_mem_close(m);
	free(img);
}

static char *write_map(const char *lines)
{
	char *path = strdup("/tmp/kbu_test_pvh_XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return path;
	ssize_t n = write(fd, lines, strlen(lines));
	(void)n;
	close(fd);
	return path;
}

static struct kbu_symtab *load_map(const char *lines)
{
	char *path = write_map(lines);
	struct kbu_symtab *st = kbu_symtab_new();
	struct kbu_err e;
	int ok = kbu_symtab_load_map(st, path, &e) == 0 && kbu_symtab_finish(st, &e) == 0;
	unlink(path);
	free(path);
	if (!ok) {
		fprintf(stderr, "load_map: %s\n", e.msg);
		kbu_symtab_free(st);
		return NULL;
	}
	return st;
}

TEST(found_through_saved_pointers)
{
	uint8_t *img = calloc(1, MEMSZ);
	build_qboot(img, SI, "console=ttyS0");
	/* Kernel copies elsewhere, each with its own command line to tell them apart. */
	build_qboot(img, 0x300000, "netbsd");
	strcpy((char *)img + 0x300100, "netbsd");
	put64(img + 0x300000 + 24, 0x300100);
	build_qboot(img, 0x310000, "freebsd");
	strcpy((char *)img + 0x310100, "freebsd");
	put64(img + 0x310000 + 24, 0x310100);
	build_qboot(img, 0x320000, "linux");
	strcpy((char *)img + 0x320100, "linux");
	put64(img + 0x320000 + 24, 0x320100);
	strcpy((char *)img + CMD, "console=ttyS0");
	/* NetBSD: hvm_start_paddr holds a physical address. */
	put64(img + 0x200000, 0x300000);
	/* FreeBSD: start_info holds a KERNBASE-mapped pointer. */
	put64(img + 0x200008, 0xffffffff80310000ull);

	struct kbu_mem *m = fake_mem(img, MEMSZ, 0, 0);
	struct kbu_pvh p;
	struct kbu_err e;

	struct kbu_symtab *st = load_map("ffffffff80200000 D hvm_start_paddr\n");
	CHECK(st != NULL);
	CHECK(kbu_pvh_find(m, st, NULL, 0, &p, &e) == 0);
	CHECK_EQ_U64(p.addr, 0x300000);
	CHECK_STR(p.cmdline.text, "netbsd");
	CHECK_CONTAINS(p.how, "NetBSD hvm_start_paddr");
	CHECK_CONTAINS(p.how, "physical address");
	kbu_pvh_free(&p);
	kbu_symtab_free(st);

	st = load_map("ffffffff80200008 B start_info\n");
	CHECK(st != NULL);
	CHECK(kbu_pvh_find(m, st, NULL, 0, &p, &e) == 0);
	CHECK_EQ_U64(p.addr, 0x310000);
	CHECK_STR(p.cmdline.text, "freebsd");
	CHECK_CONTAINS(p.how, "pointer 0xffffffff80310000");
	kbu_pvh_free(&p);
	kbu_symtab_free(st);

	/* Linux: pvh_start_info is the structure itself. */
	st = load_map("ffffffff80320000 D pvh_start_info\n");
	CHECK(st != NULL);
	CHECK(kbu_pvh_find(m, st, NULL, 0, &p, &e) == 0);
	CHECK_EQ_U64(p.addr, 0x320000);
	CHECK_STR(p.cmdline.text, "linux");
	CHECK_CONTAINS(p.how, "the variable is the structure");
	kbu_pvh_free(&p);
	kbu_symtab_free(st);

	/* A saved pointer that is still 0: fall back to scanning, and say why. */
	st = load_map("ffffffff80200010 B start_info\n");
	CHECK(st != NULL);
	CHECK(kbu_pvh_find(m, st, NULL, 0, &p, &e) == 0);
	CHECK_EQ_U64(p.addr, SI);
	CHECK_STR(p.how, "found by scanning low memory");
	CHECK(has_problem(&p, "start_info at 0xffffffff80200010 is 0 (not saved yet)"));
	kbu_pvh_free(&p);
	kbu_symtab_free(st);

	kbu_mem_close(m);
	free(img);
}

/* Deterministic mutations of a start info and its memory map: decode, the
 * plausibility check and rendering always end cleanly (ASan/UBSan watch). */
TEST(mutated_start_info_never_crashes)
{
	enum { FUZZSZ = 1024 * 1024 }; /* holds SI, CMD and MAP */
	uint8_t *img = calloc(1, MEMSZ);
	build_qboot(img, SI, "console=ttyS0");
	uint8_t *work = malloc(FUZZSZ);
	uint32_t x = 0x9e3779b9;
	int decoded = 0;
	for (int round = 0; round < 500; round++) {
		memcpy(work + MAP, img + MAP, 0x100);
		memcpy(work + SI, img + SI, 64);
		if (round == 0)
			memcpy(work, img, FUZZSZ);
		for (int k = 0; k < 1 + round % 6; k++) {
			x ^= x << 13; x ^= x >> 17; x ^= x << 5;
			size_t off = (x & 1) ? SI + 4 + (x >> 8) % 52 : MAP + (x >> 8) % 144;
			work[off] = (uint8_t)(x >> 1);
		}
		struct kbu_mem *m = fake_mem(work, FUZZSZ, 0, 0);
		struct kbu_pvh p;
		struct kbu_err e;
		(void)kbu_pvh_plausible(m, SI);
		if (kbu_pvh_decode(m, SI, &p, &e) == 0) {
			decoded++;
			char *txt = render(&p, round & 1);
			CHECK(txt != NULL);
			kbu_free(txt);
		}
		kbu_pvh_free(&p);
		kbu_mem_close(m);
	}
	CHECK_EQ_U64(decoded, 500); /* the magic is never touched */
	free(work);
	free(img);
}

TEST(command_runs_through_kbu_run)
{
	uint8_t *img = calloc(1, MEMSZ);
	build_qboot(img, SI, "console=ttyS0 kbu.token=abc");
	struct kbu_ctx *ctx = kbu_ctx_new();
	kbu_ctx_set_mem(ctx, fake_mem(img, MEMSZ, 0, 0));
	char *argv[] = {"pvh", "0xf31e0", NULL};
	char *out = NULL;
	struct kbu_err e;
	kbu_err_clear(&e);
	CHECK_EQ_U64(kbu_run(ctx, 2, argv, 1, &out, &e), 0);
	CHECK_CONTAINS(out, "kbu.token=abc");
	CHECK_CONTAINS(out, "\"how\": \"given address\"");
	kbu_free(out);
	out = NULL;
	char *bad[] = {"pvh", "0x10", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 2, bad, 0, &out, &e), 2);
	CHECK_CONTAINS(e.msg, "no start info at 0x10");
	kbu_free(out);
	kbu_ctx_free(ctx);
	free(img);
}

/* A profile file for another kernel names its own variable: it is tried first. */
TEST(profile_names_the_saved_variable)
{
	uint8_t *img = calloc(1, MEMSZ);
	build_qboot(img, SI, "console=ttyS0");
	build_qboot(img, 0x300000, "mine");
	strcpy((char *)img + 0x300100, "mine");
	put64(img + 0x300000 + 24, 0x300100);
	strcpy((char *)img + CMD, "console=ttyS0");
	put64(img + 0x200000, 0x300000);
	char *map = write_map("ffffffff80200000 D my_si\nffffffff80200100 T my_start\n");
	char *prof = write_map("[profile]\nname = mykernel\ndetect = my_start\n"
			       "[roles]\nstart_info = my_si\nstart_info_kind = paddr\n");
	struct kbu_ctx *ctx = kbu_ctx_new();
	kbu_ctx_set_mem(ctx, fake_mem(img, MEMSZ, 0, 0));
	struct kbu_err e;
	kbu_err_clear(&e);
	CHECK(kbu_ctx_load_symbols(ctx, map, &e) == 0);
	char *out = NULL;
	char *argv[] = {"pvh", "--profile", prof, NULL};
	CHECK_EQ_U64(kbu_run(ctx, 3, argv, 1, &out, &e), 0);
	CHECK_CONTAINS(out, "\"how\": \"through mykernel profile's my_si at 0xffffffff80200000: it "
			    "holds this physical address\"");
	CHECK_CONTAINS(out, "\"cmdline\": \"mine\"");
	kbu_free(out);
	out = NULL;
	/* Without the profile nothing names my_si: the scan finds qboot's. */
	char *argv2[] = {"pvh", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 1, argv2, 1, &out, &e), 0);
	CHECK_CONTAINS(out, "\"how\": \"found by scanning low memory\"");
	kbu_free(out);
	out = NULL;
	char *argv3[] = {"pvh", "--profile", "/nonexistent/profile.ini", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 3, argv3, 0, &out, &e), 2);
	CHECK_CONTAINS(e.msg, "/nonexistent/profile.ini");
	kbu_free(out);
	kbu_ctx_free(ctx);
	unlink(map);
	unlink(prof);
	free(map);
	free(prof);
	free(img);
}

/* A source over an image whose reads in [bad_lo, bad_hi) fail as a dead stub's do. */
struct flaky {
	const uint8_t *img;
	size_t size;
	uint64_t bad_lo, bad_hi;
	int calls_after_fault;
};

static int flaky_read(void *ctx, enum kbu_space s, uint64_t a, void *buf, size_t n,
		      struct kbu_err *err)
{
	struct flaky *f = ctx;
	if (s != KBU_PHYS)
		return kbu_err_set(err, KBU_EUNSUPPORTED, "no virtual addresses");
	if (a < f->bad_hi && a + n > f->bad_lo) {
		f->calls_after_fault++;
		return kbu_err_set(err, KBU_ECONN,
				   "gdb stub fake:1: reply to 'm%llx,%zx' has a bad checksum (0x12, computed 0x34)",
				   (unsigned long long)a, n);
	}
	if (a >= f->size || n > f->size - a)
		return kbu_err_set(err, KBU_EFAULT, "outside the image");
	memcpy(buf, f->img + a, n);
	return 0;
}

static void flaky_close(void *ctx) { free(ctx); }

TEST(transport_fault_during_the_scan_is_the_answer)
{
	static const struct kbu_mem_ops ops = {.kind = "gdb", .read = flaky_read, .close = flaky_close};
	uint8_t *img = calloc(1, MEMSZ);
	build_qboot(img, SI, "console=ttyS0");
	struct flaky *f = calloc(1, sizeof(*f));
	f->img = img;
	f->size = MEMSZ;
	f->bad_lo = 0xe0000; /* the BIOS area, where qboot puts it */
	f->bad_hi = 0x100000;
	struct kbu_err e = {0};
	struct kbu_mem *m = kbu_mem_new(&ops, f, &e);
	struct kbu_pvh p;
	CHECK(kbu_pvh_find(m, NULL, NULL, 0, &p, &e) == -1);
	CHECK_EQ_U64(e.code, KBU_ECONN);
	CHECK_CONTAINS(e.msg, "bad checksum");
	CHECK_CONTAINS(e.msg, "while looking for the PVH start info");
	CHECK(strstr(e.msg, "no PVH start info found") == NULL);
	kbu_pvh_free(&p);
	/* The same source with the fault elsewhere: found, and no stale fault reported. */
	f->bad_lo = f->bad_hi = 0;
	CHECK(kbu_pvh_find(m, NULL, NULL, 0, &p, &e) == 0);
	CHECK_EQ_U64(p.addr, SI);
	kbu_pvh_free(&p);
	kbu_mem_close(m);
	free(img);
}

TEST(guest_bytes_in_the_command_line_are_escaped)
{
	uint8_t *img = calloc(1, MEMSZ);
	build_qboot(img, SI, "console=ttyS0 \x1b]0;owned\x07 \x1b[2J\xc3\xa9 kbu.token=t");
	struct kbu_mem *m = fake_mem(img, MEMSZ, 0, 0);
	struct kbu_pvh p;
	struct kbu_err e;
	CHECK(kbu_pvh_find(m, NULL, NULL, 0, &p, &e) == 0);
	for (int json = 0; json < 2; json++) {
		char *out = render(&p, json);
		CHECK(out && !strchr(out, 0x1b) && !strchr(out, 0x07));
		CHECK_CONTAINS(out, json ? "\\\\x1b]0;owned\\\\x07 \\\\x1b[2J\\\\xc3\\\\xa9 kbu.token=t"
					 : "\\x1b]0;owned\\x07 \\x1b[2J\\xc3\\xa9 kbu.token=t");
		kbu_free(out);
	}
	kbu_pvh_free(&p);
	kbu_mem_close(m);
	free(img);
}

int main(void)
{
	RUN(v1_found_by_scanning_zero_size_entry_flagged);
	RUN(v0_with_module_and_rsdp);
	RUN(bad_magic_and_nothing_to_find);
	RUN(absurd_memmap_count_and_pointers_outside_memory);
	RUN(overlap_flood_is_capped);
	RUN(cmdline_unterminated_or_outside);
	RUN(firecracker_layout_found_by_scanning);
	RUN(found_where_ebx_points);
	RUN(found_through_saved_pointers);
	RUN(mutated_start_info_never_crashes);
	RUN(command_runs_through_kbu_run);
	RUN(profile_names_the_saved_variable);
	RUN(transport_fault_during_the_scan_is_the_answer);
	RUN(guest_bytes_in_the_command_line_are_escaped);
	CHECK_DONE("test_pvh");
}
