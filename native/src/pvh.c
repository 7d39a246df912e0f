/* kbu: PVH start info (struct hvm_start_info v0/v1) decoder and finder. */
#include "kbu/pvh.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/mem.h"
#include "kbu/regs.h"
#include "kbu/symbols.h"
#include "kbu/util.h"

#define MIB (1024ull * 1024ull)
#define PAGE 4096ull

static void problem(struct kbu_pvh *p, int sev, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void problem(struct kbu_pvh *p, int sev, const char *fmt, ...)
{
	if (p->nproblems >= KBU_PVH_MAX_PROBLEMS) {
		p->nsuppressed++;
		return;
	}
	struct kbu_pvh_problem *np = realloc(p->problems, (p->nproblems + 1) * sizeof(*np));
	if (!np)
		return;
	p->problems = np;
	np[p->nproblems].sev = sev;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(np[p->nproblems].msg, sizeof(np[p->nproblems].msg), fmt, ap);
	va_end(ap);
	p->nproblems++;
}

static int readable(struct kbu_mem *m, uint64_t addr, size_t len)
{
	uint8_t buf[256];
	struct kbu_err e;
	while (len > 0) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);
		if (addr + n < addr || kbu_mem_read(m, KBU_PHYS, addr, buf, n, &e) != 0)
			return 0;
		addr += n;
		len -= n;
	}
	return 1;
}

/*
 * Reads a NUL-terminated string at phys addr, page by page so that a string
 * running into missing memory is reported as such and not as unreadable.
 */
static void read_cstr(struct kbu_mem *m, uint64_t addr, struct kbu_pvh_str *s)
{
	memset(s, 0, sizeof(*s));
	if (addr == 0) {
		s->state = KBU_PVH_STR_ABSENT;
		return;
	}
	char *buf = malloc(KBU_PVH_CMDLINE_MAX + 1);
	if (!buf) {
		s->state = KBU_PVH_STR_UNREADABLE;
		return;
	}
	size_t got = 0;
	int terminated = 0;
	struct kbu_err e;
	while (got < KBU_PVH_CMDLINE_MAX && !terminated) {
		uint64_t a = addr + got;
		size_t n = (size_t)(PAGE - (a & (PAGE - 1)));
		if (n > KBU_PVH_CMDLINE_MAX - got)
			n = KBU_PVH_CMDLINE_MAX - got;
		if (a < addr || kbu_mem_read(m, KBU_PHYS, a, buf + got, n, &e) != 0)
			break;
		void *nul = memchr(buf + got, 0, n);
		if (nul) {
			got = (size_t)((char *)nul - buf);
			terminated = 1;
		} else {
			got += n;
		}
	}
	buf[got] = 0;
	s->text = buf;
	s->len = got;
	if (terminated)
		s->state = KBU_PVH_STR_OK;
	else if (got == 0)
		s->state = KBU_PVH_STR_UNREADABLE;
	else
		s->state = KBU_PVH_STR_UNTERMINATED;
}

static void str_free(struct kbu_pvh_str *s)
{
	free(s->text);
	s->text = NULL;
}

void kbu_pvh_free(struct kbu_pvh *p)
{
	if (!p)
		return;
	str_free(&p->cmdline);
	for (size_t i = 0; i < p->nmodules; i++)
		str_free(&p->modules[i].cmdline);
	free(p->modules);
	free(p->memmap);
	free(p->problems);
	memset(p, 0, sizeof(*p));
}

const char *kbu_e820_type_name(uint32_t type)
{
	switch (type) {
	case 1: return "RAM";
	case 2: return "reserved";
	case 3: return "ACPI";
	case 4: return "NVS";
	case 5: return "unusable";
	case 6: return "disabled";
	case 7: return "PMEM";
	case 12: return "PRAM";
	case 0xefffffff: return "soft-reserved";
	default: return NULL;
	}
}

static void check_str(struct kbu_pvh *p, const struct kbu_pvh_str *s, const char *what,
		      uint64_t addr)
{
	if (s->state == KBU_PVH_STR_UNREADABLE)
		problem(p, KBU_SEV_ERROR, "%s 0x%" PRIx64 " points outside memory", what, addr);
	else if (s->state == KBU_PVH_STR_UNTERMINATED)
		problem(p, KBU_SEV_WARN,
			"%s at 0x%" PRIx64 " is not NUL-terminated within %zu bytes"
			" (memory or the %d-byte limit ends first)",
			what, addr, s->len, KBU_PVH_CMDLINE_MAX);
}

static void decode_modules(struct kbu_mem *m, struct kbu_pvh *p)
{
	if (p->nr_modules == 0)
		return;
	if (p->modlist_paddr == 0) {
		problem(p, KBU_SEV_ERROR, "nr_modules is %" PRIu32 " but modlist_paddr is 0",
			p->nr_modules);
		return;
	}
	uint32_t n = p->nr_modules;
	if (n > KBU_PVH_MAX_MODULES) {
		problem(p, KBU_SEV_ERROR,
			"nr_modules %" PRIu32 " is absurd (more than %d): decoding the first %d",
			n, KBU_PVH_MAX_MODULES, KBU_PVH_MAX_MODULES);
		n = KBU_PVH_MAX_MODULES;
	}
	p->modules = calloc(n, sizeof(*p->modules));
	if (!p->modules)
		return;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t b[KBU_PVH_MOD_SIZE];
		uint64_t a = p->modlist_paddr + (uint64_t)i * KBU_PVH_MOD_SIZE;
		struct kbu_err e;
		if (kbu_mem_read(m, KBU_PHYS, a, b, sizeof(b), &e) != 0) {
			problem(p, KBU_SEV_ERROR,
				"module %" PRIu32 " entry at 0x%" PRIx64
				" is outside memory (modlist_paddr 0x%" PRIx64 "): %" PRIu32
				" of %" PRIu32 " modules decoded",
				i, a, p->modlist_paddr, i, p->nr_modules);
			break;
		}
		struct kbu_pvh_module *md = &p->modules[i];
		md->paddr = kbu_le64(b);
		md->size = kbu_le64(b + 8);
		md->cmdline_paddr = kbu_le64(b + 16);
		md->reserved = kbu_le64(b + 24);
		p->nmodules = i + 1;
		char what[64];
		snprintf(what, sizeof(what), "module %" PRIu32 " cmdline_paddr", i);
		read_cstr(m, md->cmdline_paddr, &md->cmdline);
		check_str(p, &md->cmdline, what, md->cmdline_paddr);
		if (md->paddr == 0)
			problem(p, KBU_SEV_WARN, "module %" PRIu32 " has paddr 0 (not present)", i);
		else if (!readable(m, md->paddr, 1) ||
			 (md->size && !readable(m, md->paddr + md->size - 1, 1)))
			problem(p, KBU_SEV_WARN,
				"module %" PRIu32 " at 0x%" PRIx64 " size 0x%" PRIx64
				" is not (wholly) in memory",
				i, md->paddr, md->size);
	}
}

static void decode_memmap(struct kbu_mem *m, struct kbu_pvh *p)
{
	if (!p->has_v1)
		return;
	if (p->memmap_entries == 0) {
		if (p->memmap_paddr != 0)
			problem(p, KBU_SEV_WARN,
				"memmap_paddr is 0x%" PRIx64 " but memmap_entries is 0",
				p->memmap_paddr);
		else
			problem(p, KBU_SEV_NOTE,
				"no memory map: the kernel must find its memory elsewhere");
		return;
	}
	if (p->memmap_entries > KBU_PVH_MAX_MEMMAP) {
		problem(p, KBU_SEV_ERROR,
			"memmap_entries %" PRIu32 " is absurd (more than %d): memory map not decoded",
			p->memmap_entries, KBU_PVH_MAX_MEMMAP);
		return;
	}
	if (p->memmap_paddr == 0) {
		problem(p, KBU_SEV_ERROR, "memmap_entries is %" PRIu32 " but memmap_paddr is 0",
			p->memmap_entries);
		return;
	}
	p->memmap = calloc(p->memmap_entries, sizeof(*p->memmap));
	if (!p->memmap)
		return;
	for (uint32_t i = 0; i < p->memmap_entries; i++) {
		uint8_t b[KBU_PVH_MEMMAP_ENTRY_SIZE];
		uint64_t a = p->memmap_paddr + (uint64_t)i * KBU_PVH_MEMMAP_ENTRY_SIZE;
		struct kbu_err e;
		if (kbu_mem_read(m, KBU_PHYS, a, b, sizeof(b), &e) != 0) {
			problem(p, KBU_SEV_ERROR,
				"memory map entry %" PRIu32 " at 0x%" PRIx64
				" is outside memory (memmap_paddr 0x%" PRIx64 "): %" PRIu32
				" of %" PRIu32 " entries decoded",
				i, a, p->memmap_paddr, i, p->memmap_entries);
			break;
		}
		struct kbu_pvh_memmap_entry *me = &p->memmap[i];
		me->addr = kbu_le64(b);
		me->size = kbu_le64(b + 8);
		me->type = kbu_le32(b + 16);
		me->reserved = kbu_le32(b + 20);
		p->nmemmap = i + 1;
		const char *tn = kbu_e820_type_name(me->type);
		if (me->size == 0)
			problem(p, KBU_SEV_NOTE,
				"memory map entry %" PRIu32 " has size 0 (type %" PRIu32 "%s%s at 0x%" PRIx64
				"): a placeholder (QEMU's qboot writes one); a kernel must skip it",
				i, me->type, tn ? " " : "", tn ? tn : "", me->addr);
		else if (me->addr + me->size < me->addr)
			problem(p, KBU_SEV_ERROR,
				"memory map entry %" PRIu32 " wraps: 0x%" PRIx64 " + 0x%" PRIx64, i,
				me->addr, me->size);
		if (!tn && me->size != 0)
			problem(p, KBU_SEV_WARN, "memory map entry %" PRIu32 " has unknown type %" PRIu32,
				i, me->type);
	}
	/* Overlaps between RAM and anything else make the kernel's allocator lie. */
	for (size_t i = 0; i < p->nmemmap; i++) {
		const struct kbu_pvh_memmap_entry *x = &p->memmap[i];
		for (size_t j = i + 1; j < p->nmemmap; j++) {
			const struct kbu_pvh_memmap_entry *y = &p->memmap[j];
			if (x->size && y->size && x->addr < y->addr + y->size &&
			    y->addr < x->addr + x->size)
				problem(p, KBU_SEV_WARN,
					"memory map entries %zu [0x%" PRIx64 "-0x%" PRIx64
					") and %zu [0x%" PRIx64 "-0x%" PRIx64 ") overlap",
					i, x->addr, x->addr + x->size, j, y->addr, y->addr + y->size);
		}
	}
}

static void decode_rsdp(struct kbu_mem *m, struct kbu_pvh *p)
{
	uint8_t b[36];
	struct kbu_err e;
	if (kbu_mem_read(m, KBU_PHYS, p->rsdp_paddr, b, 20, &e) != 0) {
		problem(p, KBU_SEV_ERROR, "RSDP at 0x%" PRIx64 " is cut short by the end of memory",
			p->rsdp_paddr);
		return;
	}
	/* The OEM id is space-padded (or NUL-padded) text: trimmed, then escaped. */
	size_t ol = 6;
	while (ol > 0 && (b[9 + ol - 1] == ' ' || b[9 + ol - 1] == 0))
		ol--;
	kbu_escape(b + 9, ol, NULL, p->rsdp_oem, sizeof(p->rsdp_oem));
	p->rsdp_revision = b[15];
	p->rsdt_paddr = kbu_le32(b + 16);
	unsigned sum = 0;
	for (int i = 0; i < 20; i++)
		sum += b[i];
	p->rsdp_sum_ok = (sum & 0xff) == 0;
	if (!p->rsdp_sum_ok)
		problem(p, KBU_SEV_WARN, "RSDP checksum bad: the first 20 bytes sum to 0x%02x (expected 0)",
			sum & 0xff);
	if (p->rsdp_revision >= 2) {
		if (kbu_mem_read(m, KBU_PHYS, p->rsdp_paddr, b, 36, &e) != 0) {
			problem(p, KBU_SEV_ERROR,
				"RSDP revision %u at 0x%" PRIx64 " is cut short by the end of memory",
				p->rsdp_revision, p->rsdp_paddr);
			return;
		}
		p->xsdt_paddr = kbu_le64(b + 24);
		uint32_t len = kbu_le32(b + 20);
		if (len != 36)
			problem(p, KBU_SEV_WARN, "RSDP length is %" PRIu32 ", expected 36", len);
		sum = 0;
		for (int i = 0; i < 36; i++)
			sum += b[i];
		if ((sum & 0xff) != 0) {
			p->rsdp_sum_ok = 0;
			problem(p, KBU_SEV_WARN,
				"RSDP extended checksum bad: the 36 bytes sum to 0x%02x (expected 0)",
				sum & 0xff);
		}
	}
}

int kbu_pvh_decode(struct kbu_mem *m, uint64_t addr, struct kbu_pvh *p, struct kbu_err *err)
{
	memset(p, 0, sizeof(*p));
	uint8_t b[KBU_PVH_V1_SIZE];
	if (kbu_mem_read(m, KBU_PHYS, addr, b, KBU_PVH_V0_SIZE, err) != 0)
		return kbu_err_prefix(err, "start info at 0x%" PRIx64, addr);
	p->addr = addr;
	p->magic = kbu_le32(b);
	if (p->magic != KBU_PVH_MAGIC)
		return kbu_err_set(err, KBU_EFORMAT,
				   "no start info at 0x%" PRIx64 ": magic is 0x%08" PRIx32
				   ", expected 0x%08x",
				   addr, p->magic, KBU_PVH_MAGIC);
	p->version = kbu_le32(b + 4);
	p->flags = kbu_le32(b + 8);
	p->nr_modules = kbu_le32(b + 12);
	p->modlist_paddr = kbu_le64(b + 16);
	p->cmdline_paddr = kbu_le64(b + 24);
	p->rsdp_paddr = kbu_le64(b + 32);
	if (p->version >= 1) {
		struct kbu_err e;
		if (kbu_mem_read(m, KBU_PHYS, addr + KBU_PVH_V0_SIZE, b + KBU_PVH_V0_SIZE,
				 KBU_PVH_V1_SIZE - KBU_PVH_V0_SIZE, &e) == 0) {
			p->has_v1 = 1;
			p->memmap_paddr = kbu_le64(b + 40);
			p->memmap_entries = kbu_le32(b + 48);
			p->reserved = kbu_le32(b + 52);
		} else {
			problem(p, KBU_SEV_ERROR,
				"version %" PRIu32 " but the v1 fields at 0x%" PRIx64
				" are outside memory",
				p->version, addr + KBU_PVH_V0_SIZE);
		}
	}
	if (p->version > 1)
		problem(p, KBU_SEV_WARN,
			"version %" PRIu32 " is newer than 1: only the v1 fields are decoded",
			p->version);
	if (p->flags & ~0x1fu)
		problem(p, KBU_SEV_WARN, "flags 0x%" PRIx32 " has undefined bits 0x%" PRIx32,
			p->flags, p->flags & ~0x1fu);
	if (p->has_v1 && p->reserved)
		problem(p, KBU_SEV_NOTE, "reserved field is 0x%" PRIx32 ", not 0", p->reserved);

	read_cstr(m, p->cmdline_paddr, &p->cmdline);
	check_str(p, &p->cmdline, "cmdline_paddr", p->cmdline_paddr);

	p->rsdp_sig_ok = -1;
	if (p->rsdp_paddr) {
		char sig[8];
		struct kbu_err e;
		if (kbu_mem_read(m, KBU_PHYS, p->rsdp_paddr, sig, sizeof(sig), &e) != 0) {
			problem(p, KBU_SEV_ERROR, "rsdp_paddr 0x%" PRIx64 " points outside memory",
				p->rsdp_paddr);
		} else {
			p->rsdp_sig_ok = memcmp(sig, "RSD PTR ", 8) == 0;
			if (p->rsdp_sig_ok)
				decode_rsdp(m, p);
			else
				problem(p, KBU_SEV_WARN,
					"rsdp_paddr 0x%" PRIx64 " does not hold an RSDP (no \"RSD PTR \")",
					p->rsdp_paddr);
		}
	}
	decode_modules(m, p);
	decode_memmap(m, p);
	return 0;
}

int kbu_pvh_plausible(struct kbu_mem *m, uint64_t addr)
{
	uint8_t b[KBU_PVH_V1_SIZE];
	struct kbu_err e;
	if (kbu_mem_read(m, KBU_PHYS, addr, b, KBU_PVH_V0_SIZE, &e) != 0)
		return 0;
	if (kbu_le32(b) != KBU_PVH_MAGIC)
		return 0;
	uint32_t version = kbu_le32(b + 4), nmod = kbu_le32(b + 12);
	if (version > 1 || nmod > KBU_PVH_MAX_MODULES)
		return 0;
	if (nmod && !readable(m, kbu_le64(b + 16), (size_t)nmod * KBU_PVH_MOD_SIZE))
		return 0;
	uint64_t cmd = kbu_le64(b + 24);
	if (cmd) {
		struct kbu_pvh_str s;
		read_cstr(m, cmd, &s);
		int ok = s.state == KBU_PVH_STR_OK;
		str_free(&s);
		if (!ok)
			return 0;
	}
	uint64_t rsdp = kbu_le64(b + 32);
	if (rsdp && !readable(m, rsdp, 8))
		return 0;
	if (version == 1) {
		if (kbu_mem_read(m, KBU_PHYS, addr + KBU_PVH_V0_SIZE, b + KBU_PVH_V0_SIZE,
				 KBU_PVH_V1_SIZE - KBU_PVH_V0_SIZE, &e) != 0)
			return 0;
		uint32_t n = kbu_le32(b + 48);
		if (n > KBU_PVH_MAX_MEMMAP)
			return 0;
		if (n && !readable(m, kbu_le64(b + 40), (size_t)n * KBU_PVH_MEMMAP_ENTRY_SIZE))
			return 0;
	}
	return 1;
}

/* ---- finding it ---- */

static int magic_at_phys(struct kbu_mem *m, uint64_t pa)
{
	uint32_t v;
	struct kbu_err e;
	return kbu_mem_read_u32(m, KBU_PHYS, pa, &v, &e) == 0 && v == KBU_PVH_MAGIC;
}

struct saved_ptr {
	const char *sym;
	const char *os;
};

/* Where each kernel keeps the start info after entry. */
static const struct saved_ptr saved_ptrs[] = {
	{"start_info", "FreeBSD"},
	{"hvm_start_paddr", "NetBSD"},
	{"pvh_start_info", "Linux"},
};

static int match_pvh(struct kbu_mem *m, uint64_t pa, void *arg)
{
	(void)arg;
	return magic_at_phys(m, pa);
}

/* Tries one saved-pointer symbol; returns 1 and sets *pa/how when it leads
 * to the magic, else says why not. */
static int try_symbol(struct kbu_mem *m, const struct kbu_elf *kernel, const struct kbu_sym *s,
		      const struct saved_ptr *sp, uint64_t *pa, char *how, size_t howlen,
		      char *why, size_t whylen)
{
	struct kbu_kvar v;
	char name[64];
	snprintf(name, sizeof(name), "%s %s", sp->os, sp->sym);
	int kind = kbu_kvar_follow(m, kernel, s->addr, match_pvh, NULL, &v);
	if (kind == KBU_KVAR_IS_STRUCT || kind == KBU_KVAR_PHYS || kind == KBU_KVAR_POINTER) {
		*pa = v.pa;
		kbu_kvar_describe(&v, name, s->addr, "start info", how, howlen);
		return 1;
	}
	kbu_kvar_describe(&v, sp->sym, s->addr, "start info", why, whylen);
	return 0;
}

/* Scans [start, end) on 8-byte boundaries; returns 1 with *found at the first
 * plausible structure; *first_magic gets the first bare magic (or stays). */
static int scan_range(struct kbu_mem *m, uint64_t start, uint64_t end, uint64_t *found,
		      uint64_t *first_magic, uint64_t *scanned)
{
	enum { CHUNK = 64 * 1024 };
	uint8_t *buf = malloc(CHUNK);
	if (!buf)
		return 0;
	int ret = 0;
	start = (start + 7) & ~7ull;
	for (uint64_t a = start; a < end && !ret;) {
		size_t n = end - a < CHUNK ? (size_t)(end - a) : CHUNK;
		struct kbu_err e;
		if (kbu_mem_read(m, KBU_PHYS, a, buf, n, &e) != 0) {
			/* Holes: fall back to page-sized steps. */
			n = (size_t)(PAGE - (a & (PAGE - 1)));
			if (n > end - a)
				n = (size_t)(end - a);
			if (kbu_mem_read(m, KBU_PHYS, a, buf, n, &e) != 0) {
				a += n;
				continue;
			}
		}
		*scanned += n;
		for (size_t off = 0; off + 4 <= n; off += 8) {
			if (kbu_le32(buf + off) != KBU_PVH_MAGIC)
				continue;
			if (*first_magic == UINT64_MAX)
				*first_magic = a + off;
			if (kbu_pvh_plausible(m, a + off)) {
				*found = a + off;
				ret = 1;
				break;
			}
		}
		a += n;
	}
	free(buf);
	return ret;
}

/* A transport fault (or a source that cannot read physical memory) during
 * the search is the answer, not "not found". */
static int source_failed(struct kbu_mem *m, struct kbu_err *err)
{
	struct kbu_err e;
	if (!kbu_mem_source_error(m, &e))
		return 0;
	if (err) {
		*err = e;
		kbu_err_prefix(err, "while looking for the PVH start info");
	}
	return 1;
}

int kbu_pvh_find(struct kbu_mem *m, const struct kbu_symtab *syms, const struct kbu_elf *kernel,
		 uint64_t scan_limit, struct kbu_pvh *p, struct kbu_err *err)
{
	return kbu_pvh_find_named(m, syms, kernel, NULL, NULL, scan_limit, p, err);
}

int kbu_pvh_find_named(struct kbu_mem *m, const struct kbu_symtab *syms,
		       const struct kbu_elf *kernel, const char *sym, const char *label,
		       uint64_t scan_limit, struct kbu_pvh *p, struct kbu_err *err)
{
	char how[160] = "", tried[512] = "";
	uint64_t pa = 0;
	int found = 0;
	memset(p, 0, sizeof(*p)); /* freeable whatever happens below */
	/* Reads below that fail are skipped as missing memory; a failure of the
	 * source itself (a transport fault) is remembered and reported instead. */
	kbu_mem_clear_source_error(m);

	if (syms && sym && sym[0]) {
		const struct kbu_sym *s = kbu_sym_by_name(syms, sym);
		struct saved_ptr sp = {sym, label ? label : "the kernel's"};
		char why[200];
		if (!s)
			snprintf(tried, sizeof(tried), "no symbol %s", sym);
		else if (!(found = try_symbol(m, kernel, s, &sp, &pa, how, sizeof(how), why,
					      sizeof(why))))
			snprintf(tried, sizeof(tried), "%s", why);
	}
	if (syms) {
		for (size_t i = 0; !found && i < sizeof(saved_ptrs) / sizeof(saved_ptrs[0]); i++) {
			if (sym && strcmp(sym, saved_ptrs[i].sym) == 0)
				continue;
			const struct kbu_sym *s = kbu_sym_by_name(syms, saved_ptrs[i].sym);
			if (!s)
				continue;
			char why[200];
			found = try_symbol(m, kernel, s, &saved_ptrs[i], &pa, how, sizeof(how), why,
					   sizeof(why));
			if (!found) {
				size_t l = strlen(tried);
				snprintf(tried + l, sizeof(tried) - l, "%s%s", l ? "; " : "", why);
			}
		}
	}
	if (!found) {
		struct kbu_regs r;
		struct kbu_err e;
		memset(&r, 0, sizeof(r));
		if (kbu_mem_regs(m, 0, &r, &e) == 0 && (r.have & KBU_HAVE_GPR) &&
		    kbu_pvh_plausible(m, r.rbx & 0xffffffffu)) {
			pa = r.rbx & 0xffffffffu;
			found = 1;
			snprintf(how, sizeof(how), "where CPU 0's %%ebx points: the PVH entry state");
		}
	}
	uint64_t first_magic = UINT64_MAX, scanned = 0;
	if (!found) {
		if (scan_limit == 0) {
			/* Over a stub every MiB costs round trips: scan less by default. */
			const char *kind = kbu_mem_kind(m);
			int slow = strcmp(kind, "gdb") == 0 || strcmp(kind, "debugger") == 0;
			scan_limit = slow ? 16 * MIB : 256 * MIB;
		}
		uint64_t low = scan_limit < MIB ? scan_limit : MIB;
		/* Where loaders put it first: Firecracker at 0x6000, qboot (QEMU
		 * microvm) in the BIOS area at 0xf31e0; then the rest. Over a stub
		 * this saves most of the round trips. */
		static const uint64_t order[][2] = {
			{0, 0x10000}, {0xe0000, 0x100000}, {0x10000, 0xe0000}};
		for (size_t i = 0; !found && i < sizeof(order) / sizeof(order[0]); i++) {
			uint64_t a = order[i][0], b = order[i][1] < low ? order[i][1] : low;
			if (a < b)
				found = scan_range(m, a, b, &pa, &first_magic, &scanned);
		}
		if (found)
			snprintf(how, sizeof(how), "found by scanning low memory");
		uint64_t st[64], en[64];
		int nr = kbu_mem_ranges(m, st, en, 64);
		uint64_t budget = scan_limit > low ? scan_limit - low : 0;
		for (int i = 0; !found && i < nr && budget > 0; i++) {
			uint64_t a = st[i] < MIB ? MIB : st[i];
			if (a >= en[i])
				continue;
			uint64_t e2 = en[i] - a > budget ? a + budget : en[i];
			budget -= e2 - a;
			found = scan_range(m, a, e2, &pa, &first_magic, &scanned);
			if (found)
				snprintf(how, sizeof(how), "found by scanning memory above 1 MiB");
		}
	}
	int bare = 0;
	if (!found && first_magic != UINT64_MAX) {
		/* Only implausible candidates: decode the first and let its problems speak. */
		pa = first_magic;
		found = bare = 1;
		snprintf(how, sizeof(how),
			 "the only magic found by scanning; its pointers are not plausible");
	}
	if (source_failed(m, err))
		return -1;
	if (!found) {
		return kbu_err_set(err, KBU_ENOTFOUND,
				   "no PVH start info found: %s%sno magic 0x%08x in the %" PRIu64
				   " KiB of memory scanned (the first MiB, then memory above it up "
				   "to --scan-limit 0x%" PRIx64 ")",
				   tried, tried[0] ? "; " : "", KBU_PVH_MAGIC, scanned >> 10,
				   scan_limit);
	}
	if (kbu_pvh_decode(m, pa, p, err) != 0)
		return -1;
	if (source_failed(m, err)) {
		kbu_pvh_free(p);
		return -1;
	}
	snprintf(p->how, sizeof(p->how), "%s", how);
	p->bare_magic = bare;
	if (tried[0])
		problem(p, KBU_SEV_NOTE, "saved pointer not usable: %s", tried);
	return 0;
}

/* ---- report ---- */

static const char *flag_names[] = {"PRIVILEGED", "INITDOMAIN", "MULTIBOOT_MOD", "MOD_START_PFN",
				   "VIRT_P2M_4TOOLS"};

/* A guest string: escaped text (an ESC in a command line must not reach the
 * terminal) or null in JSON with its state beside it; text shows it as read. */
static void str_field(struct kbu_node *o, const char *key, const char *label,
		      const struct kbu_pvh_str *s)
{
	char state_key[64], text_key[64];
	snprintf(state_key, sizeof(state_key), "%s_state", key);
	snprintf(text_key, sizeof(text_key), "%s_text", key);
	switch (s->state) {
	case KBU_PVH_STR_ABSENT:
		kbu_null(o, key, label);
		kbu_str(o, state_key, "", "absent");
		break;
	case KBU_PVH_STR_OK:
	case KBU_PVH_STR_UNTERMINATED: {
		char *shown = kbu_escape_dup(s->text ? s->text : "", s->len, NULL);
		int ok = s->state == KBU_PVH_STR_OK;
		kbu_display(o, text_key, label, ok ? "%s" : "%s...", shown ? shown : "(out of memory)");
		kbu_str(o, key, "", shown ? shown : "");
		kbu_str(o, state_key, "", ok ? "ok" : "unterminated");
		free(shown);
		break;
	}
	default:
		kbu_display(o, text_key, label, "(unreadable)");
		kbu_null(o, key, "");
		kbu_str(o, state_key, "", "unreadable");
		break;
	}
}

void kbu_pvh_report(const struct kbu_pvh *p, struct kbu_node *node)
{
	struct kbu_node *o = kbu_obj(node, "start_info", "PVH start info");
	kbu_display(o, "location", "location", "0x%" PRIx64 " (%s)", p->addr,
		    p->how[0] ? p->how : "given address");
	kbu_hex(o, "address", "", p->addr, 0);
	kbu_str(o, "how", "", p->how[0] ? p->how : "given address");
	kbu_hex(o, "magic", "magic", p->magic, 8);
	kbu_u64(o, "version", "version", p->version);
	char fl[160] = "";
	struct kbu_node *names = kbu_list(o, "flag_names", "");
	for (unsigned i = 0; i < 5; i++)
		if (p->flags & (1u << i)) {
			size_t l = strlen(fl);
			snprintf(fl + l, sizeof(fl) - l, "%s%s", l ? "," : "", flag_names[i]);
			kbu_item_str(names, flag_names[i]);
		}
	kbu_hex(o, "flags", "flags", p->flags, 0);
	kbu_display(o, "flag_names_text", "flag names", "%s", fl[0] ? fl : "none");
	kbu_u64(o, "nr_modules", "nr_modules", p->nr_modules);
	kbu_hex(o, "modlist_paddr", "modlist_paddr", p->modlist_paddr, 0);
	kbu_hex(o, "cmdline_paddr", "cmdline_paddr", p->cmdline_paddr, 0);
	kbu_hex(o, "rsdp_paddr", "rsdp_paddr", p->rsdp_paddr, 0);
	if (p->has_v1) {
		kbu_hex(o, "memmap_paddr", "memmap_paddr", p->memmap_paddr, 0);
		kbu_u64(o, "memmap_entries", "memmap_entries", p->memmap_entries);
	}
	str_field(o, "cmdline", "command line", &p->cmdline);
	struct kbu_node *rs = kbu_obj(o, "rsdp", "");
	if (p->rsdp_paddr && p->rsdp_sig_ok == 1) {
		const char *oem = p->rsdp_oem; /* escaped when read */
		if (p->rsdp_revision >= 2)
			kbu_display(o, "rsdp_text", "RSDP",
				    "OEM '%s', revision %u, RSDT 0x%08" PRIx32 ", XSDT 0x%" PRIx64
				    ", checksum %s",
				    oem, p->rsdp_revision, p->rsdt_paddr, p->xsdt_paddr,
				    p->rsdp_sum_ok ? "ok" : "BAD");
		else
			kbu_display(o, "rsdp_text", "RSDP", "OEM '%s', revision %u, RSDT 0x%08" PRIx32
				    ", checksum %s",
				    oem, p->rsdp_revision, p->rsdt_paddr, p->rsdp_sum_ok ? "ok" : "BAD");
		kbu_str(rs, "state", "", "ok");
		kbu_str(rs, "oem_id", "", oem);
		kbu_u64(rs, "revision", "", p->rsdp_revision);
		kbu_bool(rs, "checksum_ok", "", p->rsdp_sum_ok);
		kbu_hex(rs, "rsdt_paddr", "", p->rsdt_paddr, 0);
		if (p->rsdp_revision >= 2)
			kbu_hex(rs, "xsdt_paddr", "", p->xsdt_paddr, 0);
		else
			kbu_null(rs, "xsdt_paddr", "");
	} else if (p->rsdp_paddr) {
		kbu_display(o, "rsdp_text", "RSDP", "%s",
			    p->rsdp_sig_ok == 0 ? "no RSDP signature there" : "unreadable");
		kbu_str(rs, "state", "", p->rsdp_sig_ok == 0 ? "no_signature" : "unreadable");
	} else {
		kbu_display(o, "rsdp_text", "RSDP", "none (no ACPI)");
		kbu_str(rs, "state", "", "none");
	}
	if (!(p->rsdp_paddr && p->rsdp_sig_ok == 1)) {
		/* the same fields whatever was found: null without an RSDP */
		static const char *const rsdp_keys[] = {"oem_id", "revision", "checksum_ok",
							"rsdt_paddr", "xsdt_paddr"};
		for (size_t i = 0; i < sizeof(rsdp_keys) / sizeof(rsdp_keys[0]); i++)
			kbu_null(rs, rsdp_keys[i], "");
	}

	if (p->nr_modules) {
		struct kbu_node *ml = kbu_list(o, "modules", "Modules");
		for (size_t i = 0; i < p->nmodules; i++) {
			const struct kbu_pvh_module *md = &p->modules[i];
			struct kbu_node *r = kbu_row(ml);
			kbu_u64(r, "index", "#", i);
			kbu_hex(r, "paddr", "Address", md->paddr, 8);
			kbu_hex(r, "size", "Size", md->size, 0);
			kbu_hex(r, "cmdline_paddr", "Cmdline at", md->cmdline_paddr, 0);
			str_field(r, "cmdline", "Cmdline", &md->cmdline);
		}
	}
	if (p->has_v1 && p->nmemmap) {
		uint64_t ram = 0, top = 0;
		size_t nram = 0;
		for (size_t i = 0; i < p->nmemmap; i++) {
			const struct kbu_pvh_memmap_entry *me = &p->memmap[i];
			if (me->type != 1 || me->size == 0 || me->addr + me->size < me->addr)
				continue;
			ram += me->size;
			nram++;
			if (me->addr + me->size > top)
				top = me->addr + me->size;
		}
		kbu_display(o, "ram", "RAM", "%.1f MiB in %zu entries, up to 0x%" PRIx64,
			    (double)ram / (1024.0 * 1024.0), nram, top);
		kbu_u64(o, "ram_bytes", "", ram);
		kbu_u64(o, "ram_entries", "", nram);
		kbu_hex(o, "ram_top", "", top, 0);
	}
	if (p->has_v1) {
		struct kbu_node *mm = kbu_list(o, "memmap", "Memory map");
		for (size_t i = 0; i < p->nmemmap; i++) {
			const struct kbu_pvh_memmap_entry *me = &p->memmap[i];
			struct kbu_node *r = kbu_row(mm);
			const char *tn = kbu_e820_type_name(me->type);
			kbu_hex(r, "addr", "Start", me->addr, 16);
			kbu_hex(r, "end", "End", me->size ? me->addr + me->size - 1 : me->addr, 16);
			kbu_hex(r, "size", "Size", me->size, 0);
			kbu_u64(r, "type", "Type", me->type);
			kbu_display(r, "type_text", "Name", "%s", tn ? tn : "unknown");
			if (tn)
				kbu_str(r, "type_name", "", tn);
			else
				kbu_null(r, "type_name", "");
		}
	}
	for (size_t i = 0; i < p->nproblems; i++)
		kbu_problem(o, (enum kbu_severity)p->problems[i].sev, "%s", p->problems[i].msg);
	if (p->nsuppressed)
		kbu_problem(o, KBU_SEV_WARN, "%zu further problems not listed (only the first %d are)",
			    p->nsuppressed, KBU_PVH_MAX_PROBLEMS);
}
