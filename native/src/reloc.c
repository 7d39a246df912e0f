/* kbu: per-segment physical aliases and runtime slides found by matching the ELF's bytes. */
#include <elf.h>
#include <stdio.h>
#include <string.h>

#include "kbu/elf.h"
#include "kbu/mem.h"
#include "kbu/regs.h"
#include "kbu/reloc.h"

#define MIB (1024ull * 1024)

int kbu_reloc_map(const struct kbu_elf *e, struct kbu_reloc_map *m, struct kbu_err *err)
{
	m->nseg = 0;
	size_t n = kbu_elf_nsegments(e);
	for (size_t i = 0; i < n; i++) {
		const struct kbu_segment *s = kbu_elf_segment(e, i);
		if (!s || s->type != PT_LOAD || s->memsz == 0)
			continue;
		if (m->nseg >= KBU_RELOC_MAXSEG)
			return kbu_err_set(err, KBU_EUNSUPPORTED, "%s: more than %d PT_LOAD segments",
					   kbu_elf_path(e), KBU_RELOC_MAXSEG);
		if (s->vaddr + s->memsz < s->vaddr || s->paddr + s->memsz < s->paddr)
			return kbu_err_set(err, KBU_EFORMAT,
					   "%s: PT_LOAD at 0x%llx size 0x%llx wraps around",
					   kbu_elf_path(e), (unsigned long long)s->vaddr,
					   (unsigned long long)s->memsz);
		struct kbu_reloc_seg *d = &m->seg[m->nseg++];
		d->vaddr = s->vaddr;
		d->paddr = s->paddr;
		d->memsz = s->memsz;
		d->filesz = s->filesz;
		d->flags = s->flags;
	}
	if (m->nseg == 0)
		return kbu_err_set(err, KBU_EFORMAT, "%s: no PT_LOAD segment", kbu_elf_path(e));
	return 0;
}

int kbu_reloc_v2p(const struct kbu_reloc_map *m, uint64_t vaddr, uint64_t *paddr)
{
	for (size_t i = 0; i < m->nseg; i++) {
		const struct kbu_reloc_seg *s = &m->seg[i];
		if (vaddr >= s->vaddr && vaddr - s->vaddr < s->memsz) {
			*paddr = s->paddr + (vaddr - s->vaddr);
			return 0;
		}
	}
	return -1;
}

int kbu_reloc_p2v(const struct kbu_reloc_map *m, uint64_t paddr, uint64_t *vaddr)
{
	for (size_t i = 0; i < m->nseg; i++) {
		const struct kbu_reloc_seg *s = &m->seg[i];
		if (paddr >= s->paddr && paddr - s->paddr < s->memsz) {
			*vaddr = s->vaddr + (paddr - s->paddr);
			return 0;
		}
	}
	return -1;
}

enum kbu_reloc_phase kbu_reloc_phase(const struct kbu_regs *r)
{
	if (!r || !(r->have & KBU_HAVE_GPR))
		return KBU_RELOC_PHASE_UNKNOWN;
	/* The reset vector: f000:fff0 in real mode (CS base 0xffff0000 when the source knows it). */
	if ((r->have & KBU_HAVE_CR) && !(r->cr0 & 1) && r->rip == 0xfff0 &&
	    (!(r->have & KBU_HAVE_SEG) || r->cs == 0xf000) &&
	    (!(r->have & KBU_HAVE_SEGBASE) || r->cs_base == 0xffff0000u))
		return KBU_RELOC_PHASE_RESET;
	if (!(r->have & KBU_HAVE_CR))
		return KBU_RELOC_PHASE_UNKNOWN;
	return (r->cr0 & 0x80000000u) ? KBU_RELOC_PHASE_PAGING : KBU_RELOC_PHASE_NO_PAGING;
}

const char *kbu_reloc_phase_name(enum kbu_reloc_phase p)
{
	switch (p) {
	case KBU_RELOC_PHASE_RESET: return "reset";
	case KBU_RELOC_PHASE_NO_PAGING: return "no-paging";
	case KBU_RELOC_PHASE_PAGING: return "paging";
	default: return "unknown";
	}
}

int kbu_reloc_truncated(uint64_t real, uint64_t reported)
{
	return real > 0xffffffffull && reported == (real & 0xffffffffull);
}

static int distinctive(const uint8_t *p)
{
	int seen[256] = {0}, distinct = 0, run = 1;
	for (int i = 0; i < KBU_RELOC_WIN; i++) {
		if (!seen[p[i]]++)
			distinct++;
		run = (i && p[i] == p[i - 1]) ? run + 1 : 1;
		if (run >= 8)
			return 0;
	}
	return distinct >= 20;
}

/* Code segments to take windows from: read-only executable ones (writable code,
 * like Linux's init sections, is freed or changed after boot), else any executable. */
static int window_segment(const struct kbu_segment *s, int allow_writable)
{
	return s && s->type == PT_LOAD && (s->flags & PF_X) && s->filesz >= KBU_RELOC_WIN &&
	       (allow_writable || !(s->flags & PF_W));
}

size_t kbu_reloc_pick_windows(const struct kbu_elf *e, uint64_t *addrs, size_t n)
{
	size_t nseg = kbu_elf_nsegments(e), got = 0;
	uint64_t total = 0;
	int allow_w = 0;
	if (n > KBU_RELOC_MAXWIN)
		n = KBU_RELOC_MAXWIN;
	for (int pass = 0; pass < 2 && total == 0; pass++) {
		allow_w = pass;
		for (size_t i = 0; i < nseg; i++)
			if (window_segment(kbu_elf_segment(e, i), allow_w))
				total += kbu_elf_segment(e, i)->filesz;
	}
	if (total == 0 || n == 0)
		return 0;
	/* Window k starts near (2k+1)/(2n) of the code bytes; look up to 4 KiB on, never
	 * inside the window before it (a small kernel would otherwise repeat one). */
	uint64_t taken_end = 0;
	for (size_t k = 0; k < n; k++) {
		uint64_t want = total * (2 * k + 1) / (2 * n), base = 0;
		for (size_t i = 0; i < nseg; i++) {
			const struct kbu_segment *s = kbu_elf_segment(e, i);
			if (!window_segment(s, allow_w))
				continue;
			if (want >= base + s->filesz) {
				base += s->filesz;
				continue;
			}
			uint64_t off = (want - base) & ~15ull;
			if (taken_end > s->vaddr + off && taken_end - s->vaddr < s->filesz)
				off = (taken_end - s->vaddr + 15) & ~15ull;
			for (uint64_t o = off; o + KBU_RELOC_WIN <= s->filesz && o < off + 4096; o += 16) {
				const uint8_t *p = kbu_elf_vaddr_bytes(e, s->vaddr + o, KBU_RELOC_WIN);
				if (p && distinctive(p)) {
					addrs[got++] = s->vaddr + o;
					taken_end = s->vaddr + o + KBU_RELOC_WIN;
					break;
				}
			}
			break;
		}
	}
	return got;
}

void kbu_reloc_opts_default(struct kbu_reloc_opts *o)
{
	o->align = 2 * MIB;
	o->virt_range = 1024 * MIB;
	o->phys_limit = 1024 * MIB;
	o->nwindows = 16;
	o->virt = o->phys = 1;
	o->only_slide = 0;
	o->slide = 0;
}

/* A window matches when at least 3/4 of its bytes are equal: the kernel patches
 * some of its code at boot (ftrace call sites to NOPs, alternatives, relocations). */
#define WIN_MATCH_BYTES (KBU_RELOC_WIN * 3 / 4)

static int window_matches(const uint8_t *a, const uint8_t *b)
{
	int same = 0;
	for (int i = 0; i < KBU_RELOC_WIN; i++)
		same += a[i] == b[i];
	return same >= WIN_MATCH_BYTES;
}

/* How many windows match at this slide; -1 if the first cannot be read. */
static int match_at(struct kbu_mem *m, enum kbu_space sp, const struct kbu_elf *e,
		    const uint64_t *win, const uint64_t *where, size_t n, int64_t slide)
{
	int matched = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t buf[KBU_RELOC_WIN];
		struct kbu_err e2;
		const uint8_t *want = kbu_elf_vaddr_bytes(e, win[i], KBU_RELOC_WIN);
		if (!want)
			continue;
		if (kbu_mem_read(m, sp, where[i] + (uint64_t)slide, buf, sizeof buf, &e2) < 0) {
			if (i == 0)
				return -1; /* nothing mapped here: skip the other windows */
			continue;
		}
		if (window_matches(buf, want))
			matched++;
	}
	return matched;
}

static void search(struct kbu_mem *m, enum kbu_space sp, const struct kbu_elf *e,
		   const uint64_t *win, const uint64_t *where, size_t n, const int64_t *cands,
		   uint64_t ncand, int64_t first, uint64_t step, uint64_t count,
		   struct kbu_reloc_found *f)
{
	size_t need = n / 2 + 1;
	int best = 0;
	int64_t best_slide = 0;
	f->found = 0;
	f->tried = n;
	for (uint64_t k = 0; k < ncand + count; k++) {
		int64_t slide = k < ncand ? cands[k] : first + (int64_t)((k - ncand) * step);
		if (k >= ncand && slide == cands[0])
			continue;
		f->candidates++;
		int got = match_at(m, sp, e, win, where, n, slide);
		if (got < 0) {
			f->unreadable++;
			continue;
		}
		if (got > best) {
			best = got;
			best_slide = slide;
		}
		if ((size_t)got >= need) {
			f->found = 1;
			f->slide = slide;
			f->matched = (size_t)got;
			return;
		}
	}
	f->matched = (size_t)best;
	f->slide = best_slide;
}

int kbu_reloc_find(struct kbu_mem *m, const struct kbu_elf *e, const struct kbu_reloc_opts *o,
		   struct kbu_reloc_result *r, struct kbu_err *err)
{
	struct kbu_reloc_map map;
	memset(r, 0, sizeof *r);
	if (kbu_reloc_map(e, &map, err) < 0)
		return -1;
	if (!o->align || (o->align & (o->align - 1)))
		return kbu_err_set(err, KBU_EINVAL, "slide alignment 0x%llx is not a power of two",
				   (unsigned long long)o->align);
	size_t want = o->nwindows ? o->nwindows : 16;
	r->nwindows = kbu_reloc_pick_windows(e, r->windows, want);
	if (r->nwindows == 0)
		return kbu_err_set(err, KBU_ENOTFOUND,
				   "%s: no executable segment with distinctive bytes to match",
				   kbu_elf_path(e));
	size_t n = r->nwindows;
	int64_t zero = 0;

	if (o->virt && o->only_slide) {
		struct kbu_reloc_found *f = &r->virt;
		search(m, KBU_VIRT, e, r->windows, r->windows, n, &o->slide, 1, 0, 0, 0, f);
		if (f->found)
			snprintf(f->how, sizeof f->how,
				 "%zu of %zu windows of the ELF's code match at link + 0x%llx", f->matched,
				 n, (unsigned long long)o->slide);
		else if (f->unreadable)
			snprintf(f->how, sizeof f->how, "link + 0x%llx is not mapped",
				 (unsigned long long)o->slide);
		else
			snprintf(f->how, sizeof f->how,
				 "link + 0x%llx holds other bytes (%zu of %zu windows match)",
				 (unsigned long long)o->slide, f->matched, n);
	} else if (o->virt) {
		struct kbu_reloc_found *f = &r->virt;
		search(m, KBU_VIRT, e, r->windows, r->windows, n, &zero, 1, (int64_t)o->align,
		       o->align, o->virt_range / o->align, f);
		if (f->found && f->slide == 0)
			snprintf(f->how, sizeof f->how,
				 "%zu of %zu windows of the ELF's code match at their link addresses: "
				 "the kernel runs where it was linked", f->matched, n);
		else if (f->found)
			snprintf(f->how, sizeof f->how,
				 "%zu of %zu windows of the ELF's code match at link + 0x%llx (tried %llu "
				 "slides in 0x%llx steps)", f->matched, n, (unsigned long long)f->slide,
				 (unsigned long long)f->candidates, (unsigned long long)o->align);
		else if (f->unreadable == f->candidates)
			snprintf(f->how, sizeof f->how,
				 "no slide up to 0x%llx is mapped: the kernel's virtual map does not "
				 "exist yet (paging off or early page tables)",
				 (unsigned long long)o->virt_range);
		else
			snprintf(f->how, sizeof f->how,
				 "no slide up to 0x%llx matches (best: %zu of %zu windows): the memory "
				 "holds another kernel, or this one is not in memory", 
				 (unsigned long long)o->virt_range, f->matched, n);
	}
	if (o->phys) {
		/* Window addresses as physical (link) aliases; slides relative to those. */
		uint64_t where[KBU_RELOC_MAXWIN];
		size_t np = 0;
		uint64_t win2[KBU_RELOC_MAXWIN];
		for (size_t i = 0; i < n; i++) {
			uint64_t pa;
			if (kbu_reloc_v2p(&map, r->windows[i], &pa) == 0) {
				win2[np] = r->windows[i];
				where[np++] = pa;
			}
		}
		struct kbu_reloc_found *f = &r->phys;
		if (np == 0) {
			snprintf(f->how, sizeof f->how, "no window has a physical alias");
		} else {
			/* Candidates: the link load address, then every aligned base up to the limit. */
			uint64_t base = where[0] & ~(o->align - 1);
			search(m, KBU_PHYS, e, win2, where, np, &zero, 1, -(int64_t)base, o->align,
			       o->phys_limit / o->align, f);
			if (f->found && f->slide == 0)
				snprintf(f->how, sizeof f->how,
					 "%zu of %zu windows match at their physical (p_paddr) aliases: "
					 "loaded where the ELF says", f->matched, np);
			else if (f->found)
				snprintf(f->how, sizeof f->how,
					 "%zu of %zu windows match at p_paddr + 0x%llx: loaded at another "
					 "physical address", f->matched, np, (unsigned long long)f->slide);
			else
				snprintf(f->how, sizeof f->how,
					 "no physical load address up to 0x%llx matches (best: %zu of %zu "
					 "windows)", (unsigned long long)o->phys_limit, f->matched, np);
		}
	}
	return 0;
}
