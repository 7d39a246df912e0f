/*
 * kbu memory source: QEMU `dump-guest-memory` ELF cores.
 *
 * ELF64 (x86-64 CPU state) and ELF32 i386 (written when the first CPU is not
 * in long mode). PT_LOAD p_paddr is guest physical. Per CPU, QEMU writes one
 * NT_PRSTATUS note (all CPUs first) and then one "QEMU" note with
 * QEMUCPUState (control registers, descriptor tables, segment bases).
 * Every offset and size from the file is checked against the file size.
 */
#include <elf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kbu/mem.h"
#include "kbu/util.h"

#define MAX_CPUS 1024
#define MAX_LOADS 65536u

/* NT_PRSTATUS payloads QEMU writes (target/i386/arch_dump.c). */
#define PRSTATUS64_SIZE 336u /* pad 32, pid 4, pad 76, 27 x u64 regs, pad 8 */
#define PRSTATUS64_REGS 112u
#define PRSTATUS32_SIZE 144u /* pad 24, pid 4, pad 44, 68 bytes of regs, pad 4 */
#define PRSTATUS32_REGS 72u

/* QEMUCPUState: version, size, 18 x u64, 10 segments of 24 bytes, cr[5], kernel_gs_base. */
#define QS_GPR 8u
#define QS_SEG 152u
#define QS_SEG_SIZE 24u
#define QS_CR 392u
#define QS_BASE_SIZE 432u /* without kernel_gs_base */
#define QS_KGS 432u
#define DESC_L (1u << 21)

struct core_load {
	uint64_t paddr, offset, filesz, memsz;
};

struct core_cpu {
	struct kbu_regs regs;
	int prstatus, qemu;
};

struct core_source {
	const uint8_t *map;
	size_t size;
	char path[256];
	int elfclass;
	int machine;
	struct core_load *loads;
	size_t nloads;
	struct core_cpu *cpus;
	int ncpus;
	int nprstatus, nqemu;
};


static int core_read(void *ctx, enum kbu_space s, uint64_t addr, void *buf, size_t len,
		     struct kbu_err *err)
{
	struct core_source *c = ctx;
	if (s != KBU_PHYS)
		return kbu_err_set(err, KBU_EUNSUPPORTED, "a dump holds physical memory only");
	uint8_t *out = buf;
	while (len) {
		const struct core_load *l = NULL;
		for (size_t i = 0; i < c->nloads; i++)
			if (addr >= c->loads[i].paddr && addr - c->loads[i].paddr < c->loads[i].memsz) {
				l = &c->loads[i];
				break;
			}
		if (!l)
			return kbu_err_set(err, KBU_EFAULT, "no PT_LOAD of the dump covers it");
		uint64_t off = addr - l->paddr;
		uint64_t n = l->memsz - off;
		if (n > len)
			n = len;
		/* Bytes past p_filesz read as zeros, as ELF says. */
		if (off < l->filesz) {
			uint64_t f = l->filesz - off < n ? l->filesz - off : n;
			memcpy(out, c->map + l->offset + off, (size_t)f);
			memset(out + f, 0, (size_t)(n - f));
		} else {
			memset(out, 0, (size_t)n);
		}
		out += n;
		addr += n;
		len -= (size_t)n;
	}
	return 0;
}

static int core_ncpus(void *ctx) { return ((struct core_source *)ctx)->ncpus; }

static int core_regs(void *ctx, int cpu, struct kbu_regs *out, struct kbu_err *err)
{
	struct core_source *c = ctx;
	if (cpu < 0 || cpu >= c->ncpus)
		return kbu_err_set(err, KBU_ENOTFOUND, "the dump has no CPU %d (it holds %d)", cpu,
				   c->ncpus);
	*out = c->cpus[cpu].regs;
	return 0;
}

static int core_ranges(void *ctx, uint64_t *start, uint64_t *end, int max)
{
	struct core_source *c = ctx;
	int n = 0;
	for (size_t i = 0; i < c->nloads && n < max; i++, n++) {
		start[n] = c->loads[i].paddr;
		end[n] = c->loads[i].paddr + c->loads[i].memsz;
	}
	return n;
}

static void core_close(void *ctx)
{
	struct core_source *c = ctx;
	if (c->map)
		munmap((void *)c->map, c->size);
	free(c->loads);
	free(c->cpus);
	free(c);
}

static const struct kbu_mem_ops core_ops = {
	.kind = "core",
	.read = core_read,
	.ncpus = core_ncpus,
	.regs = core_regs,
	.ranges = core_ranges,
	.close = core_close,
};

static struct core_cpu *cpu_slot(struct core_source *c, int idx, struct kbu_err *err)
{
	if (idx >= MAX_CPUS) {
		kbu_err_set(err, KBU_EFORMAT, "%s: more than %d CPU notes", c->path, MAX_CPUS);
		return NULL;
	}
	if (idx >= c->ncpus) {
		struct core_cpu *n = realloc(c->cpus, (size_t)(idx + 1) * sizeof *n);
		if (!n) {
			kbu_err_set(err, KBU_ENOMEM, "out of memory");
			return NULL;
		}
		memset(n + c->ncpus, 0, (size_t)(idx + 1 - c->ncpus) * sizeof *n);
		c->cpus = n;
		c->ncpus = idx + 1;
	}
	return &c->cpus[idx];
}

static void prstatus64(struct kbu_regs *r, const uint8_t *d)
{
	const uint8_t *g = d + PRSTATUS64_REGS;
	uint64_t v[27];
	for (int i = 0; i < 27; i++)
		v[i] = kbu_le64(g + 8 * i);
	r->r15 = v[0], r->r14 = v[1], r->r13 = v[2], r->r12 = v[3];
	r->rbp = v[4], r->rbx = v[5], r->r11 = v[6], r->r10 = v[7];
	r->r9 = v[8], r->r8 = v[9], r->rax = v[10], r->rcx = v[11];
	r->rdx = v[12], r->rsi = v[13], r->rdi = v[14];
	r->rip = v[16], r->cs = (uint16_t)v[17], r->rflags = v[18];
	r->rsp = v[19], r->ss = (uint16_t)v[20];
	r->fs_base = v[21], r->gs_base = v[22];
	r->ds = (uint16_t)v[23], r->es = (uint16_t)v[24], r->fs = (uint16_t)v[25], r->gs = (uint16_t)v[26];
	r->have |= KBU_HAVE_GPR | KBU_HAVE_SEG | KBU_HAVE_SEGBASE;
	r->bits = 64;
}

static void prstatus32(struct kbu_regs *r, const uint8_t *d)
{
	const uint8_t *g = d + PRSTATUS32_REGS;
	r->rbx = kbu_le32(g + 0), r->rcx = kbu_le32(g + 4), r->rdx = kbu_le32(g + 8);
	r->rsi = kbu_le32(g + 12), r->rdi = kbu_le32(g + 16), r->rbp = kbu_le32(g + 20), r->rax = kbu_le32(g + 24);
	r->ds = kbu_le16(g + 28), r->es = kbu_le16(g + 32), r->fs = kbu_le16(g + 36), r->gs = kbu_le16(g + 40);
	r->rip = kbu_le32(g + 48), r->cs = kbu_le16(g + 52), r->rflags = kbu_le32(g + 56);
	r->rsp = kbu_le32(g + 60), r->ss = kbu_le16(g + 64);
	r->have |= KBU_HAVE_GPR | KBU_HAVE_SEG;
	r->bits = 32;
}

static void qemu_state(struct kbu_regs *r, const uint8_t *d, uint32_t size)
{
	uint64_t g[18];
	for (int i = 0; i < 18; i++)
		g[i] = kbu_le64(d + QS_GPR + 8 * i);
	r->rax = g[0], r->rbx = g[1], r->rcx = g[2], r->rdx = g[3];
	r->rsi = g[4], r->rdi = g[5], r->rsp = g[6], r->rbp = g[7];
	r->r8 = g[8], r->r9 = g[9], r->r10 = g[10], r->r11 = g[11];
	r->r12 = g[12], r->r13 = g[13], r->r14 = g[14], r->r15 = g[15];
	r->rip = g[16], r->rflags = g[17];
	/* cs ds es fs gs ss ldt tr gdt idt */
	const uint8_t *s = d + QS_SEG;
	uint16_t *sel[6] = {&r->cs, &r->ds, &r->es, &r->fs, &r->gs, &r->ss};
	uint64_t *base[6] = {&r->cs_base, &r->ds_base, &r->es_base, &r->fs_base, &r->gs_base, &r->ss_base};
	for (int i = 0; i < 6; i++) {
		*sel[i] = (uint16_t)kbu_le32(s + QS_SEG_SIZE * i);
		*base[i] = kbu_le64(s + QS_SEG_SIZE * i + 16);
	}
	uint32_t cs_flags = kbu_le32(s + 8);
	r->gdt_limit = kbu_le32(s + QS_SEG_SIZE * 8 + 4);
	r->gdt_base = kbu_le64(s + QS_SEG_SIZE * 8 + 16);
	r->idt_limit = kbu_le32(s + QS_SEG_SIZE * 9 + 4);
	r->idt_base = kbu_le64(s + QS_SEG_SIZE * 9 + 16);
	r->cr0 = kbu_le64(d + QS_CR);
	r->cr2 = kbu_le64(d + QS_CR + 16);
	r->cr3 = kbu_le64(d + QS_CR + 24);
	r->cr4 = kbu_le64(d + QS_CR + 32);
	if (size >= QS_KGS + 8)
		r->kernel_gs_base = kbu_le64(d + QS_KGS);
	r->have |= KBU_HAVE_GPR | KBU_HAVE_SEG | KBU_HAVE_SEGBASE | KBU_HAVE_CR | KBU_HAVE_DT;
	/* EFER is not in the dump; a 64-bit code segment means long mode. */
	if (cs_flags & DESC_L)
		r->bits = 64;
	else if (!r->bits)
		r->bits = 32;
}

static int parse_notes(struct core_source *c, uint64_t off, uint64_t len, struct kbu_err *err)
{
	uint64_t pos = 0;
	while (len - pos >= 12) {
		const uint8_t *h = c->map + off + pos;
		uint32_t namesz = kbu_le32(h), descsz = kbu_le32(h + 4), type = kbu_le32(h + 8);
		uint64_t name_pad = ((uint64_t)namesz + 3) & ~3ull;
		uint64_t desc_pad = ((uint64_t)descsz + 3) & ~3ull;
		if (12 + name_pad > len - pos || desc_pad > len - pos - 12 - name_pad)
			return kbu_err_set(err, KBU_EFORMAT,
					   "%s: note at file offset 0x%" PRIx64 " (namesz %u, descsz %u) runs past its PT_NOTE segment (ends 0x%" PRIx64 ")",
					   c->path, off + pos, namesz, descsz, off + len);
		const char *name = (const char *)h + 12;
		const uint8_t *desc = h + 12 + name_pad;
		int is_core = namesz == 5 && memcmp(name, "CORE", 5) == 0;
		int is_qemu = namesz == 5 && memcmp(name, "QEMU", 5) == 0;
		if (is_core && type == NT_PRSTATUS) {
			struct core_cpu *cpu = cpu_slot(c, c->nprstatus, err);
			if (!cpu)
				return -1;
			if (descsz == PRSTATUS64_SIZE)
				prstatus64(&cpu->regs, desc);
			else if (descsz == PRSTATUS32_SIZE)
				prstatus32(&cpu->regs, desc);
			else
				return kbu_err_set(err, KBU_EFORMAT,
						   "%s: NT_PRSTATUS note at file offset 0x%" PRIx64 " has size %u (expected %u or %u)",
						   c->path, off + pos, descsz, PRSTATUS64_SIZE, PRSTATUS32_SIZE);
			cpu->prstatus = 1;
			c->nprstatus++;
		} else if (is_qemu) {
			if (descsz < QS_BASE_SIZE || kbu_le32(desc + 4) < QS_BASE_SIZE || kbu_le32(desc + 4) > descsz)
				return kbu_err_set(err, KBU_EFORMAT,
						   "%s: QEMU CPU note at file offset 0x%" PRIx64 " is %u bytes and says %u (at least %u needed)",
						   c->path, off + pos, descsz, descsz >= 8 ? kbu_le32(desc + 4) : 0,
						   QS_BASE_SIZE);
			struct core_cpu *cpu = cpu_slot(c, c->nqemu, err);
			if (!cpu)
				return -1;
			qemu_state(&cpu->regs, desc, kbu_le32(desc + 4));
			cpu->qemu = 1;
			c->nqemu++;
		}
		pos += 12 + name_pad + desc_pad;
	}
	return 0;
}

static struct core_source *parse_core(struct core_source *c, struct kbu_err *err)
{
	const uint8_t *m = c->map;
	if (c->size < EI_NIDENT || memcmp(m, ELFMAG, SELFMAG) != 0)
		return kbu_err_set(err, KBU_EFORMAT, "%s: not an ELF file", c->path), NULL;
	c->elfclass = m[EI_CLASS] == ELFCLASS64 ? 64 : m[EI_CLASS] == ELFCLASS32 ? 32 : 0;
	if (!c->elfclass || m[EI_DATA] != ELFDATA2LSB)
		return kbu_err_set(err, KBU_EFORMAT, "%s: not a little-endian ELF32/ELF64 file", c->path), NULL;
	size_t ehsize = c->elfclass == 64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	if (c->size < ehsize)
		return kbu_err_set(err, KBU_EFORMAT, "%s: truncated ELF header (%zu bytes)", c->path, c->size), NULL;
	uint16_t type = kbu_le16(m + 16);
	c->machine = kbu_le16(m + 18);
	if (type != ET_CORE)
		return kbu_err_set(err, KBU_EFORMAT,
				   "%s: not a core dump (ELF type %u); a kernel image goes with --kernel", c->path, type),
		       NULL;
	if (c->machine != EM_X86_64 && c->machine != EM_386)
		return kbu_err_set(err, KBU_EUNSUPPORTED, "%s: machine %d is not x86", c->path, c->machine), NULL;
	uint64_t phoff, shoff;
	uint32_t phentsize, phnum;
	if (c->elfclass == 64) {
		phoff = kbu_le64(m + 32);
		shoff = kbu_le64(m + 40);
		phentsize = kbu_le16(m + 54);
		phnum = kbu_le16(m + 56);
	} else {
		phoff = kbu_le32(m + 28);
		shoff = kbu_le32(m + 32);
		phentsize = kbu_le16(m + 42);
		phnum = kbu_le16(m + 44);
	}
	size_t want_ph = c->elfclass == 64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	if (phnum == PN_XNUM) {
		/* More segments than e_phnum holds: the count is in section 0's sh_info. */
		size_t shsz = c->elfclass == 64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
		if (shoff == 0 || shoff > c->size || shsz > c->size - shoff)
			return kbu_err_set(err, KBU_EFORMAT, "%s: PN_XNUM without a section header", c->path), NULL;
		phnum = kbu_le32(m + shoff + (c->elfclass == 64 ? 44 : 28));
	}
	if (phnum == 0)
		return kbu_err_set(err, KBU_EFORMAT, "%s: no program headers (no memory, no notes)", c->path), NULL;
	if (phentsize != want_ph)
		return kbu_err_set(err, KBU_EFORMAT, "%s: program header size %u (expected %zu)", c->path,
				   phentsize, want_ph), NULL;
	if (phnum > MAX_LOADS || phoff > c->size || (uint64_t)phnum * phentsize > c->size - phoff)
		return kbu_err_set(err, KBU_EFORMAT,
				   "%s: %u program headers at offset 0x%" PRIx64 " run past the end of the file (0x%zx bytes): truncated dump?",
				   c->path, phnum, phoff, c->size), NULL;
	c->loads = calloc(phnum, sizeof *c->loads);
	if (!c->loads)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory"), NULL;
	int nnotes = 0;
	for (uint32_t i = 0; i < phnum; i++) {
		const uint8_t *p = m + phoff + (uint64_t)i * phentsize;
		uint32_t ptype = kbu_le32(p);
		uint64_t off, paddr, filesz, memsz;
		if (c->elfclass == 64) {
			off = kbu_le64(p + 8), paddr = kbu_le64(p + 24), filesz = kbu_le64(p + 32), memsz = kbu_le64(p + 40);
		} else {
			off = kbu_le32(p + 4), paddr = kbu_le32(p + 12), filesz = kbu_le32(p + 16), memsz = kbu_le32(p + 20);
		}
		if (ptype != PT_LOAD && ptype != PT_NOTE)
			continue;
		if (off > c->size || filesz > c->size - off) {
			char where[48] = ""; /* notes have no address worth naming */
			if (ptype == PT_LOAD)
				snprintf(where, sizeof where, ", physical 0x%" PRIx64, paddr);
			return kbu_err_set(err, KBU_EFORMAT,
					   "%s: %s segment %u (file offset 0x%" PRIx64 ", 0x%" PRIx64 " bytes%s) ends past the end of the file (0x%zx bytes): truncated dump?",
					   c->path, ptype == PT_LOAD ? "PT_LOAD" : "PT_NOTE", i, off, filesz,
					   where, c->size), NULL;
		}
		if (ptype == PT_NOTE) {
			if (parse_notes(c, off, filesz, err) < 0)
				return NULL;
			nnotes++;
			continue;
		}
		if (memsz < filesz || paddr + memsz < paddr)
			return kbu_err_set(err, KBU_EFORMAT,
					   "%s: PT_LOAD %u at physical 0x%" PRIx64 " has bad sizes (filesz 0x%" PRIx64 ", memsz 0x%" PRIx64 ")",
					   c->path, i, paddr, filesz, memsz), NULL;
		if (memsz == 0)
			continue;
		struct core_load *l = &c->loads[c->nloads++];
		l->paddr = paddr, l->offset = off, l->filesz = filesz, l->memsz = memsz;
	}
	if (c->nloads == 0)
		return kbu_err_set(err, KBU_EFORMAT, "%s: no PT_LOAD segments: the dump holds no guest memory", c->path), NULL;
	if (!nnotes || c->ncpus == 0)
		return kbu_err_set(err, KBU_EFORMAT,
				   "%s: no CPU notes (NT_PRSTATUS or QEMU): not a QEMU dump-guest-memory core?", c->path),
		       NULL;
	return c;
}

struct kbu_mem *kbu_mem_open_core(const char *path, struct kbu_err *err)
{
	static const struct kbu_map_words words = {
		.notreg = "not a regular file", .empty = "empty file", .map = "mmap",
	};
	void *map;
	size_t size;
	if (kbu_map_file(path, 0, &words, &map, &size, err) < 0)
		return NULL;
	struct core_source *c = calloc(1, sizeof *c);
	if (!c) {
		munmap(map, size);
		kbu_err_set(err, KBU_ENOMEM, "out of memory");
		return NULL;
	}
	c->map = map;
	c->size = size;
	snprintf(c->path, sizeof c->path, "%s", path);
	if (!parse_core(c, err)) {
		core_close(c);
		return NULL;
	}
	return kbu_mem_new(&core_ops, c, err);
}
