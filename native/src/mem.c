/*
 * kbu memory: a page cache and batching in front of every source, and
 * virtual reads through the page-table walker for sources that cannot
 * translate. Reads are all-or-nothing; a missing page names its address.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/elf.h"
#include "kbu/mem.h"
#include "kbu/paging.h"
#include "kbu/util.h"

#define PAGE 4096ull
#define PAGE_MASK (~(PAGE - 1))
#define CACHE_SLOTS 4096u /* power of two, twice CACHE_MAX */
#define CACHE_MAX 2048u   /* pages kept (8 MiB) before the cache is dropped */
#define RUN_MAX 64u       /* pages per source read when the source has no limit */
#define TLB_SIZE 64u

struct cpage {
	uint64_t key; /* page address | space */
	unsigned char *data;
};

#define MAX_WINDOWS 8
#define PHYS_LIMIT (1ull << 52)
#define MAX_KNOWN 8

/* A virtual range where the guest maps physical memory: va = base + pa. */
struct phys_window {
	uint64_t base;
	char what[48];
};

/* Bytes known to be at a physical address (a kernel segment's file bytes). */
struct known_bytes {
	uint64_t pa;
	const uint8_t *bytes;
	size_t len;
};

struct tlb_entry {
	uint64_t vpage, ppage;
	int valid;
};

struct kbu_mem {
	const struct kbu_mem_ops *ops;
	void *ctx;
	struct kbu_mem_stats st;
	struct cpage *slots;
	size_t nused;
	int virt_native; /* -1 unknown, 0 the source cannot translate, 1 it can */
	int have_tr;
	enum kbu_paging_mode mode;
	uint64_t cr3;
	struct tlb_entry tlb[TLB_SIZE];
	struct kbu_err source_err; /* first failure that was not missing memory */
	/* Physical memory through the guest's own mappings, for sources that read
	 * only virtual memory (stubs without Qqemu.PhyMemMode). */
	int phys_via;              /* 0 not needed yet, 1 windows found, -1 none */
	struct phys_window win[MAX_WINDOWS];
	int nwin;
	char phys_how[640];        /* how, or why not */
	uint64_t hint[MAX_WINDOWS];
	char hint_what[MAX_WINDOWS][48];
	int nhint;
	struct known_bytes known[MAX_KNOWN];
	int nknown;
};

static const char *space_name(enum kbu_space s) { return s == KBU_VIRT ? "virtual" : "physical"; }

struct kbu_mem *kbu_mem_new(const struct kbu_mem_ops *ops, void *ctx, struct kbu_err *err)
{
	if (!ops || !ops->read) {
		kbu_err_set(err, KBU_EINVAL, "memory source without a read function");
		if (ops && ops->close)
			ops->close(ctx);
		return NULL;
	}
	struct kbu_mem *m = calloc(1, sizeof *m);
	if (!m) {
		kbu_err_set(err, KBU_ENOMEM, "out of memory for the memory source");
		if (ops->close)
			ops->close(ctx);
		return NULL;
	}
	m->ops = ops;
	m->ctx = ctx;
	m->virt_native = -1;
	m->mode = KBU_PG_UNKNOWN;
	return m;
}

void kbu_mem_close(struct kbu_mem *m)
{
	if (!m)
		return;
	kbu_mem_flush(m);
	free(m->slots);
	if (m->ops->close)
		m->ops->close(m->ctx);
	free(m);
}

const char *kbu_mem_kind(const struct kbu_mem *m) { return m && m->ops->kind ? m->ops->kind : "?"; }

void *kbu_mem_source_ctx(const struct kbu_mem *m) { return m ? m->ctx : NULL; }

/* ---- cache ---- */

static size_t slot_of(uint64_t key)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 52) & (CACHE_SLOTS - 1);
}

static unsigned char *cache_get(struct kbu_mem *m, enum kbu_space s, uint64_t page)
{
	if (!m->slots)
		return NULL;
	uint64_t key = page | (uint64_t)s;
	for (size_t i = slot_of(key);; i = (i + 1) & (CACHE_SLOTS - 1)) {
		if (!m->slots[i].data)
			return NULL;
		if (m->slots[i].key == key)
			return m->slots[i].data;
	}
}

static void cache_put(struct kbu_mem *m, enum kbu_space s, uint64_t page, const void *data)
{
	if (!m->slots) {
		m->slots = calloc(CACHE_SLOTS, sizeof *m->slots);
		if (!m->slots)
			return; /* no cache: still correct, only slower */
	}
	if (m->nused >= CACHE_MAX)
		kbu_mem_flush(m);
	unsigned char *copy = malloc(PAGE);
	if (!copy)
		return;
	memcpy(copy, data, PAGE);
	uint64_t key = page | (uint64_t)s;
	size_t i = slot_of(key);
	while (m->slots[i].data)
		i = (i + 1) & (CACHE_SLOTS - 1);
	m->slots[i].key = key;
	m->slots[i].data = copy;
	m->nused++;
}

void kbu_mem_flush(struct kbu_mem *m)
{
	if (!m)
		return;
	if (m->slots) {
		for (size_t i = 0; i < CACHE_SLOTS; i++) {
			free(m->slots[i].data);
			m->slots[i].data = NULL;
		}
	}
	m->nused = 0;
	memset(m->tlb, 0, sizeof m->tlb);
}

struct kbu_mem_stats kbu_mem_get_stats(const struct kbu_mem *m)
{
	struct kbu_mem_stats z = {0};
	return m ? m->st : z;
}

/* ---- reads ---- */

/* One transfer from the source, split to its maximum size. */
static int source_read(struct kbu_mem *m, enum kbu_space s, uint64_t addr, void *buf, size_t len,
		       struct kbu_err *err)
{
	size_t max = m->ops->max_read ? m->ops->max_read : len;
	unsigned char *p = buf;
	while (len) {
		size_t n = len < max ? len : max;
		m->st.source_reads++;
		kbu_err_clear(err);
		if (m->ops->read(m->ctx, s, addr, p, n, err) < 0) {
			if (err && err->code == KBU_OK)
				err->code = KBU_EFAULT;
			return -1;
		}
		m->st.source_bytes += n;
		addr += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* Copies the part of [addr, addr+len) inside npages pages at page; inclusive ends so the
 * top page of the address space does not wrap. */
static void copy_overlap(uint64_t addr, size_t len, unsigned char *buf, uint64_t page,
			 const unsigned char *data, size_t npages)
{
	uint64_t lo = addr > page ? addr : page;
	uint64_t run_last = page + (npages * PAGE - 1);
	uint64_t last = addr + (len - 1);
	uint64_t hi = last < run_last ? last : run_last;
	if (hi >= lo)
		memcpy(buf + (lo - addr), data + (lo - page), (size_t)(hi - lo + 1));
}

static int fail_at(struct kbu_err *err, enum kbu_space s, uint64_t addr)
{
	int code = err && err->code != KBU_OK ? err->code : KBU_EFAULT;
	if (err && err->msg[0]) {
		kbu_err_prefix(err, "cannot read %s address 0x%" PRIx64, space_name(s), addr);
		err->code = code;
		return -1;
	}
	return kbu_err_set(err, code, "cannot read %s address 0x%" PRIx64, space_name(s), addr);
}

/* Reads through the cache from a space the source serves directly. */
static int read_direct(struct kbu_mem *m, enum kbu_space s, uint64_t addr, void *out, size_t len,
		       struct kbu_err *err)
{
	unsigned char *buf = out;
	uint64_t last = addr + (len - 1); /* inclusive: the top page must not wrap to 0 */
	uint64_t page = addr & PAGE_MASK;
	size_t max_pages = m->ops->max_read ? m->ops->max_read / PAGE : RUN_MAX;
	if (max_pages == 0)
		max_pages = 1;
	if (max_pages > RUN_MAX)
		max_pages = RUN_MAX;
	unsigned char *tmp = NULL;
	for (;;) {
		const unsigned char *hit = cache_get(m, s, page);
		if (hit) {
			m->st.cache_hits++;
			copy_overlap(addr, len, buf, page, hit, 1);
			if (page + (PAGE - 1) >= last)
				break;
			page += PAGE;
			continue;
		}
		size_t n = 1;
		while (n < max_pages && page + n * PAGE - 1 < last && page + n * PAGE > page &&
		       !cache_get(m, s, page + n * PAGE))
			n++;
		if (!tmp) {
			tmp = malloc(RUN_MAX * PAGE);
			if (!tmp)
				return kbu_err_set(err, KBU_ENOMEM, "out of memory reading 0x%" PRIx64, addr);
		}
		if (source_read(m, s, page, tmp, n * PAGE, err) == 0) {
			for (size_t i = 0; i < n; i++)
				cache_put(m, s, page + i * PAGE, tmp + i * PAGE);
			copy_overlap(addr, len, buf, page, tmp, n);
			if (page + (n * PAGE - 1) >= last)
				break;
			page += n * PAGE;
			continue;
		}
		if (err && (err->code == KBU_EUNSUPPORTED || err->code == KBU_ECONN ||
			    err->code == KBU_EINTR)) {
			free(tmp);
			return fail_at(err, s, page > addr ? page : addr);
		}
		/* The run failed: find the page that did, and read only the bytes asked for
		 * (an image may end inside a page). */
		for (size_t i = 0; i < n; i++) {
			uint64_t pg = page + i * PAGE;
			if (n > 1 && source_read(m, s, pg, tmp, PAGE, err) == 0) {
				cache_put(m, s, pg, tmp);
				copy_overlap(addr, len, buf, pg, tmp, 1);
				continue;
			}
			uint64_t lo = addr > pg ? addr : pg;
			uint64_t hi = last < pg + (PAGE - 1) ? last : pg + (PAGE - 1);
			if (source_read(m, s, lo, buf + (lo - addr), (size_t)(hi - lo + 1), err) < 0) {
				free(tmp);
				return fail_at(err, s, lo);
			}
		}
		if (page + (n * PAGE - 1) >= last)
			break;
		page += n * PAGE;
	}
	free(tmp);
	return 0;
}

static int ensure_translation(struct kbu_mem *m, uint64_t va, struct kbu_err *err)
{
	if (m->have_tr)
		return 0;
	struct kbu_regs r;
	if (kbu_mem_regs(m, 0, &r, err) < 0)
		return kbu_err_prefix(err, "virtual address 0x%" PRIx64 " needs CPU 0's CR3 (give --cr3)", va);
	enum kbu_paging_mode mode = kbu_regs_paging_mode(&r);
	if (mode == KBU_PG_UNKNOWN)
		return kbu_err_set(err, KBU_EUNSUPPORTED,
				   "virtual address 0x%" PRIx64 ": the %s source does not give CPU 0's control registers (give --cr3)",
				   va, kbu_mem_kind(m));
	m->mode = mode;
	m->cr3 = r.cr3;
	m->have_tr = 1;
	return 0;
}

static int translate(struct kbu_mem *m, uint64_t va, uint64_t *pa, struct kbu_err *err)
{
	uint64_t vpage = va & PAGE_MASK;
	struct tlb_entry *t = &m->tlb[(vpage >> 12) & (TLB_SIZE - 1)];
	if (t->valid && t->vpage == vpage) {
		*pa = t->ppage | (va & (PAGE - 1));
		return 0;
	}
	if (ensure_translation(m, va, err) < 0)
		return -1;
	struct kbu_walk w;
	if (kbu_vtop(m, m->mode, m->cr3, va, &w, err) < 0)
		return -1;
	if (!w.present) {
		const struct kbu_walk_step *s = &w.steps[w.fault_step];
		return kbu_err_set(err, KBU_EFAULT,
				   "virtual address 0x%" PRIx64 " is not mapped (%s entry %u at physical 0x%" PRIx64
				   " is 0x%" PRIx64 ", not present)",
				   va, s->level, s->index, s->entry_pa, s->entry);
	}
	*pa = w.pa;
	t->vpage = vpage;
	t->ppage = w.pa & PAGE_MASK;
	t->valid = 1;
	return 0;
}

static int read_translated(struct kbu_mem *m, uint64_t addr, unsigned char *buf, size_t len,
			   struct kbu_err *err)
{
	while (len) {
		size_t n = (size_t)(PAGE - (addr & (PAGE - 1)));
		if (n > len)
			n = len;
		uint64_t pa;
		if (translate(m, addr, &pa, err) < 0)
			return -1;
		if (read_direct(m, KBU_PHYS, pa, buf, n, err) < 0)
			return kbu_err_prefix(err, "virtual 0x%" PRIx64, addr);
		addr += n;
		buf += n;
		len -= n;
	}
	return 0;
}

int kbu_mem_source_error(const struct kbu_mem *m, struct kbu_err *out)
{
	if (!m || m->source_err.code == KBU_OK)
		return 0;
	if (out)
		*out = m->source_err;
	return 1;
}

void kbu_mem_clear_source_error(struct kbu_mem *m)
{
	if (m)
		kbu_err_clear(&m->source_err);
}

/* Remembers a failure that is about the source, not about the address. */
static int note_failure(struct kbu_mem *m, enum kbu_space space, const struct kbu_err *e)
{
	int code = e ? e->code : KBU_OK;
	int about_source = code == KBU_ECONN || code == KBU_EIO || code == KBU_ENOMEM ||
			   code == KBU_EINTR ||
			   (code == KBU_EUNSUPPORTED && space == KBU_PHYS);
	if (about_source && m->source_err.code == KBU_OK)
		m->source_err = *e;
	return -1;
}

static int mem_read(struct kbu_mem *m, enum kbu_space space, uint64_t addr, void *buf, size_t len,
		    struct kbu_err *err);

/* ---- physical memory through the guest's own mappings ---- */

/*
 * A stub without a physical mode (Firecracker's, bhyve's, any plain one) still
 * reads virtual memory through the vCPU's paging. Physical address pa is then
 * read at base + pa in a range where the guest maps all of physical memory:
 * a direct map (FreeBSD's at 0xfffff80000000000, Linux's at
 * 0xffff888000000000 unless randomised; a caller can name the kernel's own
 * base), the identity map early kernels keep, or KERNBASE over low memory.
 * A range is used only once it is proved: with CPU 0's CR3 known, the walk
 * of base + CR3 through base must land on CR3 itself; otherwise the bytes
 * at base + a kernel segment's load address must be the kernel's own. With
 * paging off, virtual is physical.
 */

/* Walks va through cr3 reading each table at base + its physical address. */
static int walk_via(struct kbu_mem *m, uint64_t base, int levels, uint64_t cr3, uint64_t va,
		    uint64_t *pa)
{
	const uint64_t addr_mask = 0x000ffffffffff000ull;
	uint64_t table = cr3 & addr_mask;
	for (int l = 0; l < levels; l++) {
		int shift = 12 + 9 * (levels - 1 - l);
		uint64_t idx = (va >> shift) & 511, e;
		struct kbu_err er;
		if (mem_read(m, KBU_VIRT, base + table + idx * 8, &e, 8, &er) < 0 || !(e & 1))
			return -1;
		e = kbu_le64((const uint8_t *)&e);
		int left = levels - 1 - l;
		if ((e & 0x80) && (left == 1 || left == 2)) { /* a 2 MiB or 1 GiB page */
			uint64_t size = 1ull << shift;
			*pa = (e & addr_mask & ~(size - 1)) | (va & (size - 1));
			return 0;
		}
		table = e & addr_mask;
	}
	*pa = table | (va & 0xfff);
	return 0;
}

/* Bytes at base + pa against known bytes: most 64-byte windows match in 3/4
 * of their bytes (kernels patch some of their own code at boot). */
static int content_matches(struct kbu_mem *m, uint64_t base)
{
	int tried = 0, matched = 0;
	for (int k = 0; k < m->nknown; k++) {
		const struct known_bytes *kb = &m->known[k];
		for (int w = 0; w < 4; w++) {
			size_t off = kb->len / 4 * (size_t)w;
			if (off + 64 > kb->len)
				continue;
			uint8_t got[64];
			struct kbu_err er;
			tried++;
			if (mem_read(m, KBU_VIRT, base + kb->pa + off, got, 64, &er) < 0)
				continue;
			int same = 0;
			for (int i = 0; i < 64; i++)
				same += got[i] == kb->bytes[off + i];
			matched += same >= 48;
		}
	}
	return tried > 0 && matched * 2 > tried;
}

static void add_window(struct kbu_mem *m, uint64_t base, const char *what)
{
	for (int i = 0; i < m->nwin; i++)
		if (m->win[i].base == base)
			return;
	if (m->nwin < MAX_WINDOWS) {
		m->win[m->nwin].base = base;
		snprintf(m->win[m->nwin].what, sizeof m->win[0].what, "%s", what);
		m->nwin++;
	}
}

static void find_windows(struct kbu_mem *m, struct kbu_err *why)
{
	struct kbu_regs r;
	struct kbu_err er;
	memset(&r, 0, sizeof r);
	int have_regs = kbu_mem_regs(m, 0, &r, &er) == 0;
	enum kbu_paging_mode mode = have_regs ? kbu_regs_paging_mode(&r) : KBU_PG_UNKNOWN;
	m->nwin = 0;
	if (mode == KBU_PG_OFF) {
		add_window(m, 0, "paging is off: virtual is physical");
	} else {
		struct { uint64_t base; const char *what; } cand[MAX_WINDOWS * 2];
		int n = 0;
		for (int i = 0; i < m->nhint; i++) {
			cand[n].base = m->hint[i];
			cand[n++].what = m->hint_what[i];
		}
		cand[n].base = 0xfffff80000000000ull, cand[n++].what = "FreeBSD's direct map";
		cand[n].base = 0xffff888000000000ull, cand[n++].what = "Linux's direct map";
		cand[n].base = 0, cand[n++].what = "an identity map";
		cand[n].base = 0xffffffff80000000ull, cand[n++].what = "KERNBASE";
		int by_walk = mode == KBU_PG_4LEVEL || mode == KBU_PG_5LEVEL;
		for (int i = 0; i < n; i++) {
			uint64_t pa;
			int ok = by_walk ? walk_via(m, cand[i].base, mode == KBU_PG_5LEVEL ? 5 : 4, r.cr3,
						    cand[i].base + (r.cr3 & 0x000ffffffffff000ull), &pa) == 0 &&
						   pa == (r.cr3 & 0x000ffffffffff000ull)
					 : content_matches(m, cand[i].base);
			if (ok)
				add_window(m, cand[i].base, cand[i].what);
		}
	}
	if (m->nwin) {
		m->phys_via = 1;
		int l = snprintf(m->phys_how, sizeof m->phys_how,
				 "the %s source reads no physical memory: read through %s at 0x%" PRIx64,
				 kbu_mem_kind(m), m->win[0].what, m->win[0].base);
		if (mode != KBU_PG_OFF && l > 0 && (size_t)l < sizeof m->phys_how)
			snprintf(m->phys_how + l, sizeof m->phys_how - (size_t)l, " (%s)",
				 mode == KBU_PG_4LEVEL || mode == KBU_PG_5LEVEL
					 ? "checked by walking CPU 0's page tables through it"
					 : "checked against the kernel image");
		return;
	}
	m->phys_via = -1;
	snprintf(m->phys_how, sizeof m->phys_how,
		 "%.400s; no direct map of the guest could be %s",
		 why && why->msg[0] ? why->msg : "the source reads no physical memory",
		 mode == KBU_PG_4LEVEL || mode == KBU_PG_5LEVEL ? "found through CPU 0's CR3"
		 : m->nknown ? "matched with the kernel image"
			     : "checked without CPU 0's CR3 or the kernel image (give --kernel ELF)");
}

static int read_phys_via(struct kbu_mem *m, uint64_t addr, void *out, size_t len,
			 struct kbu_err *err)
{
	if (m->phys_via < 0)
		return kbu_err_set(err, KBU_EUNSUPPORTED, "%s", m->phys_how);
	/* x86-64 physical addresses have at most 52 bits: anything above is no
	 * physical address, whatever a window would make of it. */
	if (addr >= PHYS_LIMIT || len > PHYS_LIMIT - addr)
		return kbu_err_set(err, KBU_EFAULT, "0x%" PRIx64 " is not a physical address (above 2^52)",
				   addr);
	unsigned char *buf = out;
	while (len) {
		size_t n = (size_t)(PAGE - (addr & (PAGE - 1)));
		if (n > len)
			n = len;
		int ok = 0;
		for (int i = 0; i < m->nwin && !ok; i++) {
			uint64_t va = m->win[i].base + addr;
			/* Past the top of the address space, or (the identity map) out
			 * of the lower half: not where this window maps anything. */
			if (va < m->win[i].base || (m->win[i].base == 0 && va >= 0x0000800000000000ull))
				continue;
			ok = read_direct(m, KBU_VIRT, va, buf, n, err) == 0;
		}
		if (!ok) {
			if (err && (err->code == KBU_ECONN || err->code == KBU_ENOMEM ||
				    err->code == KBU_EINTR))
				return -1;
			return kbu_err_set(err, KBU_EFAULT,
					   "physical 0x%" PRIx64 " is not mapped where the guest maps "
					   "physical memory (%s at 0x%" PRIx64 "%s)", addr, m->win[0].what,
					   m->win[0].base, m->nwin > 1 ? " and others" : "");
		}
		addr += n;
		buf += n;
		len -= n;
	}
	return 0;
}

void kbu_mem_add_phys_hint(struct kbu_mem *m, uint64_t base, const char *what)
{
	if (!m || m->nhint >= MAX_WINDOWS)
		return;
	m->hint[m->nhint] = base;
	snprintf(m->hint_what[m->nhint], sizeof m->hint_what[0], "%s", what ? what : "a hint");
	m->nhint++;
	if (m->phys_via)
		m->phys_via = 0, m->nwin = 0; /* look again */
}

void kbu_mem_learn_kernel(struct kbu_mem *m, const struct kbu_elf *kernel)
{
	if (!m || !kernel)
		return;
	size_t flen;
	const uint8_t *file = kbu_elf_bytes(kernel, &flen);
	for (size_t i = 0; i < kbu_elf_nsegments(kernel) && m->nknown < MAX_KNOWN; i++) {
		const struct kbu_segment *sg = kbu_elf_segment(kernel, i);
		if (sg->type != 1 /* PT_LOAD */ || sg->filesz < 256 || sg->offset > flen ||
		    sg->filesz > flen - sg->offset)
			continue;
		m->known[m->nknown].pa = sg->paddr;
		m->known[m->nknown].bytes = file + sg->offset;
		m->known[m->nknown].len = (size_t)(sg->filesz < (1u << 20) ? sg->filesz : (1u << 20));
		m->nknown++;
	}
}

const char *kbu_mem_phys_how(const struct kbu_mem *m)
{
	return m && m->phys_via ? m->phys_how : NULL;
}

int kbu_mem_read(struct kbu_mem *m, enum kbu_space space, uint64_t addr, void *buf, size_t len,
		 struct kbu_err *err)
{
	if (!m)
		return kbu_err_set(err, KBU_EINVAL, "no memory source");
	struct kbu_err local;
	if (!err)
		err = &local;
	if (mem_read(m, space, addr, buf, len, err) == 0)
		return 0;
	return note_failure(m, space, err);
}

static int mem_read(struct kbu_mem *m, enum kbu_space space, uint64_t addr, void *buf, size_t len,
		    struct kbu_err *err)
{
	if (!m)
		return kbu_err_set(err, KBU_EINVAL, "no memory source");
	m->st.requests++;
	if (len == 0)
		return 0;
	if (len - 1 > UINT64_MAX - addr)
		return kbu_err_set(err, KBU_EFAULT, "%s range 0x%" PRIx64 "+0x%zx wraps past the top of memory",
				   space_name(space), addr, len);
	if (space == KBU_PHYS) {
		if (m->phys_via)
			return read_phys_via(m, addr, buf, len, err);
		int rc = read_direct(m, space, addr, buf, len, err);
		if (rc < 0 && err && err->code == KBU_EUNSUPPORTED && m->ops->regs != NULL) {
			/* The source reads only virtual memory: through the guest's mappings. */
			m->phys_via = -1;
			find_windows(m, err);
			return read_phys_via(m, addr, buf, len, err);
		}
		return rc;
	}
	if (m->virt_native == 1)
		return read_direct(m, space, addr, buf, len, err);
	if (m->virt_native == -1) {
		struct kbu_err probe = {0};
		if (read_direct(m, KBU_VIRT, addr, buf, len, &probe) == 0) {
			m->virt_native = 1;
			return 0;
		}
		if (probe.code != KBU_EUNSUPPORTED) {
			m->virt_native = 1;
			if (err)
				*err = probe;
			return -1;
		}
		m->virt_native = 0;
	}
	return read_translated(m, addr, buf, len, err);
}

int kbu_mem_write(struct kbu_mem *m, enum kbu_space space, uint64_t addr, const void *buf,
		  size_t len, struct kbu_err *err)
{
	if (!m)
		return kbu_err_set(err, KBU_EINVAL, "no memory source");
	if (!m->ops->write)
		return kbu_err_set(err, KBU_EUNSUPPORTED, "the %s source is read-only", kbu_mem_kind(m));
	int rc;
	if (space == KBU_VIRT && m->virt_native == 0) {
		/* Translate page by page, then write physically. */
		const unsigned char *p = buf;
		rc = 0;
		while (len && rc == 0) {
			size_t n = (size_t)(PAGE - (addr & (PAGE - 1)));
			if (n > len)
				n = len;
			uint64_t pa;
			rc = translate(m, addr, &pa, err);
			if (rc == 0)
				rc = m->ops->write(m->ctx, KBU_PHYS, pa, p, n, err);
			addr += n;
			p += n;
			len -= n;
		}
	} else {
		rc = m->ops->write(m->ctx, space, addr, buf, len, err);
	}
	kbu_mem_flush(m);
	return rc;
}

int kbu_mem_read_u8(struct kbu_mem *m, enum kbu_space s, uint64_t a, uint8_t *v, struct kbu_err *e)
{
	return kbu_mem_read(m, s, a, v, 1, e);
}

int kbu_mem_read_u16(struct kbu_mem *m, enum kbu_space s, uint64_t a, uint16_t *v, struct kbu_err *e)
{
	uint8_t b[2];
	if (kbu_mem_read(m, s, a, b, 2, e) < 0)
		return -1;
	*v = kbu_le16(b);
	return 0;
}

int kbu_mem_read_u32(struct kbu_mem *m, enum kbu_space s, uint64_t a, uint32_t *v, struct kbu_err *e)
{
	uint8_t b[4];
	if (kbu_mem_read(m, s, a, b, 4, e) < 0)
		return -1;
	*v = kbu_le32(b);
	return 0;
}

int kbu_mem_read_u64(struct kbu_mem *m, enum kbu_space s, uint64_t a, uint64_t *v, struct kbu_err *e)
{
	uint8_t b[8];
	if (kbu_mem_read(m, s, a, b, 8, e) < 0)
		return -1;
	*v = kbu_le64(b);
	return 0;
}

int kbu_mem_read_str(struct kbu_mem *m, enum kbu_space s, uint64_t a, char *buf, size_t max,
		     struct kbu_err *e)
{
	if (max == 0)
		return kbu_err_set(e, KBU_EINVAL, "no room for the string at 0x%" PRIx64, a);
	size_t got = 0;
	while (got < max - 1) {
		size_t n = (size_t)(PAGE - ((a + got) & (PAGE - 1)));
		if (n > max - 1 - got)
			n = max - 1 - got;
		if (kbu_mem_read(m, s, a + got, buf + got, n, e) < 0)
			return kbu_err_prefix(e, "string at 0x%" PRIx64, a);
		void *nul = memchr(buf + got, '\0', n);
		if (nul)
			return 0;
		got += n;
	}
	buf[max - 1] = '\0';
	return 0;
}

int kbu_mem_ncpus(struct kbu_mem *m) { return m && m->ops->ncpus ? m->ops->ncpus(m->ctx) : 0; }

int kbu_mem_regs(struct kbu_mem *m, int cpu, struct kbu_regs *out, struct kbu_err *err)
{
	if (!m)
		return kbu_err_set(err, KBU_EINVAL, "no memory source");
	if (!m->ops->regs)
		return kbu_err_set(err, KBU_EUNSUPPORTED, "the %s source has no CPU registers",
				   kbu_mem_kind(m));
	memset(out, 0, sizeof *out);
	struct kbu_err local;
	if (!err)
		err = &local;
	if (m->ops->regs(m->ctx, cpu, out, err) == 0)
		return 0;
	return note_failure(m, KBU_VIRT, err);
}

int kbu_mem_monitor(struct kbu_mem *m, const char *cmd, char **out, struct kbu_err *err)
{
	if (!m)
		return kbu_err_set(err, KBU_EINVAL, "no memory source");
	if (!m->ops->monitor)
		return kbu_err_set(err, KBU_EUNSUPPORTED, "the %s source has no QEMU monitor",
				   kbu_mem_kind(m));
	struct kbu_err local;
	if (!err)
		err = &local;
	if (m->ops->monitor(m->ctx, cmd, out, err) == 0)
		return 0;
	return note_failure(m, KBU_VIRT, err);
}

int kbu_mem_ranges(struct kbu_mem *m, uint64_t *start, uint64_t *end, int max)
{
	if (!m || !m->ops->ranges || max <= 0)
		return 0;
	return m->ops->ranges(m->ctx, start, end, max);
}

void kbu_mem_set_translation(struct kbu_mem *m, enum kbu_paging_mode mode, uint64_t cr3)
{
	if (!m)
		return;
	m->mode = mode;
	m->cr3 = cr3;
	m->have_tr = 1;
	memset(m->tlb, 0, sizeof m->tlb);
}
