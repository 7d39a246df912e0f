/* QEMU dump cores: synthetic ELF64 and ELF32 cores built here, good and broken. */
#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "kbu/command.h"
#include "kbu/mem.h"
#include "kbu/report.h"

struct spec {
	int cls;              /* 32 or 64 */
	int ncpus;
	int loads;            /* emit PT_LOAD segments */
	int notes;            /* emit the PT_NOTE segment */
	int qemu_notes;       /* emit QEMU notes after the NT_PRSTATUS ones */
	uint32_t prstatus_sz; /* 0: the right size */
	uint32_t bad_namesz;  /* nonzero: first note's namesz */
	uint16_t type;        /* 0: ET_CORE */
	long truncate;        /* >0: cut the file to this many bytes */
	uint64_t load_grow;   /* added to the second PT_LOAD's filesz (past EOF) */
};

struct out {
	uint8_t *p;
	size_t len, cap;
};

static size_t put(struct out *o, const void *d, size_t n)
{
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2 + 4096;
		o->p = realloc(o->p, o->cap);
	}
	size_t at = o->len;
	if (d)
		memcpy(o->p + at, d, n);
	else
		memset(o->p + at, 0, n);
	o->len += n;
	return at;
}

static void put_note(struct out *o, const char *name, uint32_t type, const void *desc, uint32_t descsz,
		     uint32_t namesz_override)
{
	uint32_t namesz = (uint32_t)strlen(name) + 1;
	uint32_t h[3] = {namesz_override ? namesz_override : namesz, descsz, type};
	put(o, h, 12);
	char nm[8] = {0};
	memcpy(nm, name, namesz);
	put(o, nm, (namesz + 3) & ~3u);
	put(o, desc, descsz);
	put(o, NULL, ((descsz + 3) & ~3u) - descsz);
}

static void w64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void w32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* QEMUCPUState as QEMU lays it out: version, size, 18 GPRs, 10 segments, cr[5], kernel_gs_base. */
static void qemu_state(uint8_t *d, int cpu, int longmode)
{
	memset(d, 0, 440);
	w32(d, 1);
	w32(d + 4, 440);
	for (int i = 0; i < 18; i++)
		w64(d + 8 + 8 * i, 0x1000 * (uint64_t)cpu + (uint64_t)i); /* rax = cpu*0x1000 + 0 ... */
	w64(d + 8 + 8 * 16, longmode ? 0xffffffff81000000ull + (uint64_t)cpu : 0x100000u + (uint32_t)cpu);
	uint8_t *seg = d + 152;
	w32(seg + 0, 0x10);                         /* cs selector */
	w32(seg + 8, longmode ? (1u << 21) : 0);     /* cs flags: L */
	w64(seg + 24 * 4 + 16, 0xffff888000001000ull); /* gs base */
	w32(seg + 24 * 8 + 4, 0x7f);                 /* gdt limit */
	w64(seg + 24 * 8 + 16, 0xfffffe0000001000ull);
	w32(seg + 24 * 9 + 4, 0xfff);
	w64(seg + 24 * 9 + 16, 0xfffffe0000000000ull);
	uint8_t *cr = d + 392;
	w64(cr + 0, longmode ? 0x80050033 : 0x11);
	w64(cr + 16, 0xdead000);
	w64(cr + 24, longmode ? 0x1000 : 0);
	w64(cr + 32, longmode ? 0x6b0 : 0);
	w64(d + 432, 0x4242);
}

static void prstatus64(uint8_t *d, int cpu)
{
	memset(d, 0, 336);
	uint8_t *g = d + 112;
	w64(g + 8 * 10, 0xaaa0 + (uint64_t)cpu);                 /* rax */
	w64(g + 8 * 16, 0xffffffff81000000ull + (uint64_t)cpu); /* rip */
	w64(g + 8 * 17, 0x10);                                  /* cs */
	w64(g + 8 * 18, 0x246);                                 /* eflags */
	w64(g + 8 * 19, 0xffffc90000003f00ull);                 /* rsp */
	w64(g + 8 * 22, 0xffff888000001000ull);                 /* gs_base */
}

static void prstatus32(uint8_t *d, int cpu)
{
	memset(d, 0, 144);
	uint8_t *g = d + 72;
	w32(g + 24, 0xaaa0 + (uint32_t)cpu); /* eax */
	w32(g + 48, 0x100000 + (uint32_t)cpu); /* eip */
	d[g - d + 52] = 0x08;                 /* cs */
	w32(g + 60, 0x7000);                  /* esp */
}

/* Physical memory: [0, 0x4000) with 4-level tables, [0x100000, 0x101000) with a string. */
static void fill_low(uint8_t *m)
{
	memset(m, 0, 0x4000);
	w64(m + 0x1000 + 511 * 8, 0x2000 | 3);
	w64(m + 0x2000 + 510 * 8, 0x3000 | 3);
	w64(m + 0x3000 + 8 * 8, 0x0 | 0x83); /* 2 MiB page at 0 for 0xffffffff81000000 */
	memcpy(m + 0x10, "low memory", 11);
}

static char *write_core(const struct spec *s)
{
	struct out o = {0};
	int cls = s->cls;
	size_t ehsz = cls == 64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	size_t phsz = cls == 64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	int nph = (s->notes ? 1 : 0) + (s->loads ? 2 : 0);
	put(&o, NULL, ehsz + phsz * (size_t)nph);

	struct out notes = {0};
	if (s->notes) {
		uint8_t d[512];
		for (int c = 0; c < s->ncpus; c++) {
			uint32_t sz = cls == 64 ? 336 : 144;
			if (cls == 64)
				prstatus64(d, c);
			else
				prstatus32(d, c);
			put_note(&notes, "CORE", NT_PRSTATUS, d, s->prstatus_sz ? s->prstatus_sz : sz,
				 c == 0 ? s->bad_namesz : 0);
		}
		for (int c = 0; s->qemu_notes && c < s->ncpus; c++) {
			qemu_state(d, c, cls == 64);
			put_note(&notes, "QEMU", 0, d, 440, 0);
		}
	}
	size_t note_off = put(&o, notes.p, notes.len);
	uint8_t low[0x4000], high[0x1000];
	fill_low(low);
	memset(high, 0xcc, sizeof high);
	memcpy(high, "high memory", 12);
	size_t low_off = put(&o, low, sizeof low);
	size_t high_off = put(&o, high, sizeof high);

	int ph = 0;
	if (cls == 64) {
		Elf64_Ehdr *eh = (Elf64_Ehdr *)o.p;
		memcpy(eh->e_ident, ELFMAG, SELFMAG);
		eh->e_ident[EI_CLASS] = ELFCLASS64;
		eh->e_ident[EI_DATA] = ELFDATA2LSB;
		eh->e_ident[EI_VERSION] = EV_CURRENT;
		eh->e_type = s->type ? s->type : ET_CORE;
		eh->e_machine = EM_X86_64;
		eh->e_version = EV_CURRENT;
		eh->e_phoff = ehsz;
		eh->e_ehsize = (uint16_t)ehsz;
		eh->e_phentsize = (uint16_t)phsz;
		eh->e_phnum = (uint16_t)nph;
		Elf64_Phdr *p = (Elf64_Phdr *)(o.p + ehsz);
		if (s->notes) {
			p[ph].p_type = PT_NOTE, p[ph].p_offset = note_off, p[ph].p_filesz = notes.len;
			ph++;
		}
		if (s->loads) {
			p[ph].p_type = PT_LOAD, p[ph].p_offset = low_off, p[ph].p_paddr = 0;
			p[ph].p_filesz = p[ph].p_memsz = sizeof low;
			ph++;
			p[ph].p_type = PT_LOAD, p[ph].p_offset = high_off, p[ph].p_paddr = 0x100000;
			p[ph].p_filesz = p[ph].p_memsz = sizeof high + s->load_grow;
		}
	} else {
		Elf32_Ehdr *eh = (Elf32_Ehdr *)o.p;
		memcpy(eh->e_ident, ELFMAG, SELFMAG);
		eh->e_ident[EI_CLASS] = ELFCLASS32;
		eh->e_ident[EI_DATA] = ELFDATA2LSB;
		eh->e_ident[EI_VERSION] = EV_CURRENT;
		eh->e_type = s->type ? s->type : ET_CORE;
		eh->e_machine = EM_386;
		eh->e_version = EV_CURRENT;
		eh->e_phoff = (uint32_t)ehsz;
		eh->e_ehsize = (uint16_t)ehsz;
		eh->e_phentsize = (uint16_t)phsz;
		eh->e_phnum = (uint16_t)nph;
		Elf32_Phdr *p = (Elf32_Phdr *)(o.p + ehsz);
		if (s->notes) {
			p[ph].p_type = PT_NOTE, p[ph].p_offset = (uint32_t)note_off;
			p[ph].p_filesz = (uint32_t)notes.len;
			ph++;
		}
		if (s->loads) {
			p[ph].p_type = PT_LOAD, p[ph].p_offset = (uint32_t)low_off, p[ph].p_paddr = 0;
			p[ph].p_filesz = p[ph].p_memsz = sizeof low;
			ph++;
			p[ph].p_type = PT_LOAD, p[ph].p_offset = (uint32_t)high_off, p[ph].p_paddr = 0x100000;
			p[ph].p_filesz = p[ph].p_memsz = (uint32_t)(sizeof high + s->load_grow);
		}
	}
	char *path = strdup("/tmp/kbu-test-core-XXXXXX");
	int fd = mkstemp(path);
	size_t len = s->truncate > 0 ? (size_t)s->truncate : o.len;
	if (fd < 0 || write(fd, o.p, len) != (ssize_t)len)
		fprintf(stderr, "cannot write %s\n", path);
	close(fd);
	free(o.p);
	free(notes.p);
	return path;
}

static struct kbu_mem *open_spec(const struct spec *s, struct kbu_err *err)
{
	char *path = write_core(s);
	struct kbu_mem *m = kbu_mem_open_core(path, err);
	unlink(path);
	free(path);
	return m;
}

#define GOOD64 {.cls = 64, .ncpus = 2, .loads = 1, .notes = 1, .qemu_notes = 1}
#define GOOD32 {.cls = 32, .ncpus = 1, .loads = 1, .notes = 1, .qemu_notes = 1}

TEST(elf64_core_registers_and_memory)
{
	struct spec s = GOOD64;
	struct kbu_err err = {0};
	struct kbu_mem *m = open_spec(&s, &err);
	CHECK(m != NULL);
	if (!m) {
		fprintf(stderr, "%s\n", err.msg);
		return;
	}
	CHECK_STR(kbu_mem_kind(m), "core");
	CHECK_EQ_U64(kbu_mem_ncpus(m), 2);
	struct kbu_regs r;
	CHECK(kbu_mem_regs(m, 1, &r, &err) == 0);
	CHECK_EQ_U64(r.bits, 64);
	CHECK_EQ_U64(r.rip, 0xffffffff81000001ull);
	CHECK_EQ_U64(r.rax, 0x1000); /* the QEMU note wins over NT_PRSTATUS */
	CHECK_EQ_U64(r.cr0, 0x80050033);
	CHECK_EQ_U64(r.cr2, 0xdead000);
	CHECK_EQ_U64(r.cr3, 0x1000);
	CHECK_EQ_U64(r.cr4, 0x6b0);
	CHECK_EQ_U64(r.cs, 0x10);
	CHECK_EQ_U64(r.gs_base, 0xffff888000001000ull);
	CHECK_EQ_U64(r.gdt_base, 0xfffffe0000001000ull);
	CHECK_EQ_U64(r.gdt_limit, 0x7f);
	CHECK_EQ_U64(r.idt_limit, 0xfff);
	CHECK_EQ_U64(r.kernel_gs_base, 0x4242);
	CHECK(r.have & KBU_HAVE_CR);
	CHECK(!(r.have & KBU_HAVE_EFER));
	CHECK_EQ_U64(kbu_regs_paging_mode(&r), KBU_PG_4LEVEL);
	CHECK(kbu_mem_regs(m, 2, &r, &err) < 0);
	CHECK_CONTAINS(err.msg, "no CPU 2");

	char buf[16];
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x100000, buf, 12, &err) == 0);
	CHECK_STR(buf, "high memory");
	/* virtual through CPU 0's tables: 0xffffffff81000010 -> 2 MiB page at 0 */
	CHECK(kbu_mem_read_str(m, KBU_VIRT, 0xffffffff81000010ull, buf, sizeof buf, &err) == 0);
	CHECK_STR(buf, "low memory");
	/* a hole between the loads */
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x3ff8, buf, 16, &err) < 0);
	CHECK_EQ_U64(err.code, KBU_EFAULT);
	CHECK_CONTAINS(err.msg, "physical address 0x4000");
	uint64_t st[4], en[4];
	CHECK_EQ_U64(kbu_mem_ranges(m, st, en, 4), 2);
	CHECK_EQ_U64(en[1], 0x101000);
	kbu_mem_close(m);
}

TEST(elf64_prstatus_only)
{
	struct spec s = GOOD64;
	s.qemu_notes = 0;
	struct kbu_err err = {0};
	struct kbu_mem *m = open_spec(&s, &err);
	CHECK(m != NULL);
	if (!m)
		return;
	struct kbu_regs r;
	CHECK(kbu_mem_regs(m, 0, &r, &err) == 0);
	CHECK_EQ_U64(r.rax, 0xaaa0);
	CHECK_EQ_U64(r.rip, 0xffffffff81000000ull);
	CHECK_EQ_U64(r.rsp, 0xffffc90000003f00ull);
	CHECK_EQ_U64(r.gs_base, 0xffff888000001000ull);
	CHECK(!(r.have & KBU_HAVE_CR));
	CHECK_EQ_U64(kbu_regs_paging_mode(&r), (uint64_t)KBU_PG_UNKNOWN);
	kbu_mem_close(m);
}

TEST(elf32_core)
{
	struct spec s = GOOD32;
	struct kbu_err err = {0};
	struct kbu_mem *m = open_spec(&s, &err);
	CHECK(m != NULL);
	if (!m) {
		fprintf(stderr, "%s\n", err.msg);
		return;
	}
	CHECK_EQ_U64(kbu_mem_ncpus(m), 1);
	struct kbu_regs r;
	CHECK(kbu_mem_regs(m, 0, &r, &err) == 0);
	CHECK_EQ_U64(r.bits, 32);
	CHECK_EQ_U64(r.rip, 0x100000);
	CHECK_EQ_U64(r.cr0, 0x11);
	CHECK_EQ_U64(kbu_regs_paging_mode(&r), KBU_PG_OFF);
	char buf[16];
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x100000, buf, 12, &err) == 0);
	CHECK_STR(buf, "high memory");
	kbu_mem_close(m);

	s.qemu_notes = 0;
	m = open_spec(&s, &err);
	CHECK(m != NULL);
	if (!m)
		return;
	CHECK(kbu_mem_regs(m, 0, &r, &err) == 0);
	CHECK_EQ_U64(r.rax, 0xaaa0);
	CHECK_EQ_U64(r.rip, 0x100000);
	CHECK_EQ_U64(r.cs, 0x08);
	CHECK_EQ_U64(r.rsp, 0x7000);
	kbu_mem_close(m);
}

static void expect_error(struct spec s, const char *what)
{
	struct kbu_err err = {0};
	struct kbu_mem *m = open_spec(&s, &err);
	CHECK(m == NULL);
	CHECK_CONTAINS(err.msg, what);
	kbu_mem_close(m);
}

TEST(broken_cores)
{
	struct spec s = GOOD64;
	s.loads = 0;
	expect_error(s, "no PT_LOAD");
	s = (struct spec)GOOD64;
	s.notes = 0;
	expect_error(s, "no CPU notes");
	s = (struct spec)GOOD64;
	s.load_grow = 0x10000;
	expect_error(s, "past the end of the file");
	s = (struct spec)GOOD64;
	s.truncate = 0x2000; /* cut inside the first PT_LOAD */
	expect_error(s, "truncated dump");
	s = (struct spec)GOOD64;
	s.truncate = 40; /* cut inside the ELF header */
	expect_error(s, "truncated ELF header");
	s = (struct spec)GOOD32;
	s.truncate = 60; /* header complete, program headers cut */
	expect_error(s, "past the end of the file");
	s = (struct spec)GOOD64;
	s.prstatus_sz = 200;
	expect_error(s, "NT_PRSTATUS note at file offset");
	s = (struct spec)GOOD64;
	s.bad_namesz = 0x7fffffff;
	expect_error(s, "runs past its PT_NOTE segment");
	s = (struct spec)GOOD64;
	s.type = ET_EXEC;
	expect_error(s, "not a core dump");
}

TEST(not_a_core_at_all)
{
	struct kbu_err err = {0};
	CHECK(kbu_mem_open_core("/nonexistent/dump", &err) == NULL);
	CHECK_CONTAINS(err.msg, "/nonexistent/dump");
	CHECK(kbu_mem_open_core("/tmp", &err) == NULL);
	CHECK_CONTAINS(err.msg, "not a regular file");
	char path[] = "/tmp/kbu-test-notelf-XXXXXX";
	int fd = mkstemp(path);
	CHECK(kbu_mem_open_core(path, &err) == NULL);
	CHECK_CONTAINS(err.msg, "empty");
	CHECK(write(fd, "hello, this is not an ELF file at all", 37) == 37);
	close(fd);
	CHECK(kbu_mem_open_core(path, &err) == NULL);
	CHECK_CONTAINS(err.msg, "not an ELF file");
	unlink(path);
}

/* End to end: the cpus, vtop and x commands over a synthetic dump. */
TEST(commands_on_a_core)
{
	struct spec s = GOOD64;
	char *path = write_core(&s);
	struct kbu_err err = {0};
	struct kbu_ctx *ctx = kbu_ctx_new();
	kbu_ctx_set_mem(ctx, kbu_mem_open_core(path, &err));
	unlink(path);
	free(path);
	CHECK(ctx->mem != NULL);
	if (!ctx->mem) {
		kbu_ctx_free(ctx);
		return;
	}
	char *out = NULL;
	char *a1[] = {"cpus", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 1, a1, 0, &out, &err), 0);
	CHECK_CONTAINS(out, "long mode, 4-level paging");
	CHECK_CONTAINS(out, "PE MP ET NE WP AM PG");
	CHECK_CONTAINS(out, "PSE PAE PGE OSFXSR OSXMMEXCPT");
	CHECK_CONTAINS(out, "0xffffffff81000001");
	CHECK_CONTAINS(out, "note: EFER is not recorded here");
	kbu_free(out);
	char *a2[] = {"cpus", "--cpu", "1", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 3, a2, 1, &out, &err), 0);
	CHECK_CONTAINS(out, "\"cpus\": [{\"cpu\": 1, \"mode\": \"long\"");
	CHECK_CONTAINS(out, "\"paging\": \"4-level paging\"");
	kbu_free(out);
	char *a3[] = {"vtop", "0xffffffff81000010", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 2, a3, 0, &out, &err), 0);
	CHECK_CONTAINS(out, "PD     0x000000003000      8  0x000000003040  0x0000000000000083  P RW PS");
	CHECK_CONTAINS(out, "Physical:   0x000000000010");
	CHECK_CONTAINS(out, "Page:       2 MiB");
	kbu_free(out);
	char *a4[] = {"vtop", "0xffffffff80000000", NULL};
	ctx->strict = 1;
	CHECK_EQ_U64(kbu_run(ctx, 2, a4, 0, &out, &err), 1);
	CHECK_CONTAINS(out, "! 0xffffffff80000000 is not mapped: PD entry 0");
	kbu_free(out);
	char *a5[] = {"x", "-p", "0x100000", "12", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 4, a5, 1, &out, &err), 0);
	CHECK_CONTAINS(out, "\"bytes\": \"68696768206d656d6f727900\"");
	kbu_free(out);
	char *a6[] = {"x", "0xffffffff81000010", "11", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 3, a6, 0, &out, &err), 0);
	CHECK_CONTAINS(out, "0xffffffff81000010  6c 6f 77 20 6d 65 6d 6f 72 79 00  |low memory.|");
	kbu_free(out);
	/* $reg: CPU 0's RIP is 0xffffffff81000000, its page maps physical 0 */
	char *a8[] = {"x", "$rip+0x10", "10", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 3, a8, 0, &out, &err), 0);
	CHECK_CONTAINS(out, "|low memory|");
	kbu_free(out);
	char *a9[] = {"vtop", "$cr3", NULL}; /* low memory is not mapped: exit 1 under --strict */
	CHECK_EQ_U64(kbu_run(ctx, 2, a9, 1, &out, &err), 1);
	CHECK_CONTAINS(out, "\"virtual\": 4096");
	kbu_free(out);
	char *a10[] = {"x", "$xmm0", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 2, a10, 0, &out, &err), 2);
	CHECK_CONTAINS(err.msg, "unknown register $xmm0");
	char *a7[] = {"x", "-p", "0x3ff0", "32", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 4, a7, 0, &out, &err), 2);
	CHECK_CONTAINS(err.msg, "physical address 0x4000");
	kbu_ctx_free(ctx);
}

/* Every byte of the headers and notes overwritten in turn: the reader either refuses
 * the file with a message or gives registers and memory, never crashes (ASan watches). */
TEST(mutated_headers_never_crash)
{
	for (int cls = 32; cls <= 64; cls += 32) {
		struct spec s = {.cls = cls, .ncpus = 2, .loads = 1, .notes = 1, .qemu_notes = 1};
		char *path = write_core(&s);
		FILE *f = fopen(path, "r+b");
		uint8_t orig[2048];
		size_t n = fread(orig, 1, sizeof orig, f);
		int opened = 0, refused = 0;
		static const uint8_t vals[] = {0x00, 0xff};
		for (size_t off = 0; off < n; off++) {
			for (size_t v = 0; v < sizeof vals; v++) {
				if (orig[off] == vals[v])
					continue;
				fseek(f, (long)off, SEEK_SET);
				fputc(vals[v], f);
				fflush(f);
				struct kbu_err err = {0};
				struct kbu_mem *m = kbu_mem_open_core(path, &err);
				if (m) {
					struct kbu_regs r;
					uint8_t b[64];
					for (int c = 0; c < kbu_mem_ncpus(m); c++)
						kbu_mem_regs(m, c, &r, &err);
					kbu_mem_read(m, KBU_PHYS, 0x3fe0, b, sizeof b, &err);
					kbu_mem_read(m, KBU_VIRT, 0xffffffff81000000ull, b, sizeof b, &err);
					kbu_mem_close(m);
					opened++;
				} else {
					CHECK(err.msg[0] != '\0');
					refused++;
				}
				fseek(f, (long)off, SEEK_SET);
				fputc(orig[off], f);
				fflush(f);
			}
		}
		fclose(f);
		unlink(path);
		free(path);
		CHECK(opened > 0);
		CHECK(refused > 0);
	}
}

int main(void)
{
	RUN(elf64_core_registers_and_memory);
	RUN(elf64_prstatus_only);
	RUN(elf32_core);
	RUN(broken_cores);
	RUN(not_a_core_at_all);
	RUN(commands_on_a_core);
	RUN(mutated_headers_never_crash);
	CHECK_DONE("test_core");
}
