/*
 * kbu kernel variables: a kernel's own variables read from guest memory
 * whatever the source translates, and followed to the structures they name.
 */
#include "kbu/kvar.h"

#include <elf.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kbu/elf.h"
#include "kbu/mem.h"
#include "kbu/paging.h"
#include "kbu/util.h"

int kbu_read_kva(struct kbu_mem *m, const struct kbu_elf *kernel, uint64_t addr, void *buf,
		 size_t len, struct kbu_err *err)
{
	if (kbu_mem_read(m, KBU_VIRT, addr, buf, len, err) == 0)
		return 0;
	if (!kernel)
		return -1;
	struct kbu_err first = *err;
	for (size_t i = 0; i < kbu_elf_nsegments(kernel); i++) {
		const struct kbu_segment *s = kbu_elf_segment(kernel, i);
		if (s->type != PT_LOAD || addr < s->vaddr || addr - s->vaddr >= s->memsz ||
		    len > s->memsz - (addr - s->vaddr))
			continue;
		if (kbu_mem_read(m, KBU_PHYS, s->paddr + (addr - s->vaddr), buf, len, err) == 0)
			return 0;
		break;
	}
	*err = first;
	return -1;
}

/* A little-endian unsigned integer of n (at most 8) bytes. */
static uint64_t le(const uint8_t *b, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

int kbu_read_kva_uint(struct kbu_mem *m, const struct kbu_elf *k, uint64_t addr, uint32_t size,
		      uint64_t *out, struct kbu_err *err)
{
	uint8_t b[8] = {0};
	if (size == 0 || size > 8)
		return kbu_err_set(err, KBU_EINVAL, "field size %u at 0x%" PRIx64 " is not 1..8", size,
				   addr);
	if (kbu_read_kva(m, k, addr, b, size, err) < 0)
		return -1;
	*out = le(b, size);
	return 0;
}

#define KERNBASE_X86_64 0xffffffff80000000ull

int kbu_kva_candidates(struct kbu_mem *m, const struct kbu_elf *kernel, uint64_t va,
		       uint64_t *pa, int max)
{
	int n = 0;
	struct kbu_regs r;
	struct kbu_err e;
	memset(&r, 0, sizeof(r));
	if (n < max && kbu_mem_regs(m, 0, &r, &e) == 0 && (r.have & KBU_HAVE_CR)) {
		enum kbu_paging_mode mode = kbu_regs_paging_mode(&r);
		struct kbu_walk w;
		if (mode > KBU_PG_OFF && kbu_vtop(m, mode, r.cr3, va, &w, &e) == 0 && w.present)
			pa[n++] = w.pa;
	}
	if (kernel) {
		for (size_t i = 0; n < max && i < kbu_elf_nsegments(kernel); i++) {
			const struct kbu_segment *s = kbu_elf_segment(kernel, i);
			if (s->type == PT_LOAD && va >= s->vaddr && va - s->vaddr < s->memsz) {
				pa[n++] = s->paddr + (va - s->vaddr);
				break;
			}
		}
	}
	if (n < max && va >= KERNBASE_X86_64)
		pa[n++] = va - KERNBASE_X86_64;
	/* FreeBSD's direct map, then Linux's (without KASLR). */
	if (n < max && va >= 0xfffff80000000000ull && va < 0xfffffc0000000000ull)
		pa[n++] = va - 0xfffff80000000000ull;
	if (n < max && va >= 0xffff888000000000ull && va < 0xffffc88000000000ull)
		pa[n++] = va - 0xffff888000000000ull;
	return n;
}

/* Reads 8 bytes of a kernel variable: through the source's virtual reads, or
 * through the physical alias. */
static int read_kvar(struct kbu_mem *m, const struct kbu_elf *kernel, uint64_t va, uint8_t out[8])
{
	struct kbu_err e;
	if (kbu_mem_read(m, KBU_VIRT, va, out, 8, &e) == 0)
		return 0;
	uint64_t pa[4];
	int n = kbu_kva_candidates(m, kernel, va, pa, 4);
	for (int i = 0; i < n; i++)
		if (kbu_mem_read(m, KBU_PHYS, pa[i], out, 8, &e) == 0)
			return 0;
	return -1;
}

int kbu_kvar_follow(struct kbu_mem *m, const struct kbu_elf *kernel, uint64_t var,
		    int (*match)(struct kbu_mem *m, uint64_t pa, void *arg), void *arg,
		    struct kbu_kvar *out)
{
	memset(out, 0, sizeof(*out));
	uint8_t b[8];
	if (read_kvar(m, kernel, var, b) != 0)
		return out->kind = KBU_KVAR_UNREADABLE;
	out->value = kbu_le64(b);
	uint64_t cand[4];
	int n = kbu_kva_candidates(m, kernel, var, cand, 4);
	/* The variable is the structure itself (Linux copies the start info). */
	for (int i = 0; i < n; i++) {
		if (match(m, cand[i], arg)) {
			out->pa = cand[i];
			return out->kind = KBU_KVAR_IS_STRUCT;
		}
	}
	if (out->value == 0)
		return out->kind = KBU_KVAR_ZERO;
	if (match(m, out->value, arg)) {
		out->pa = out->value;
		return out->kind = KBU_KVAR_PHYS;
	}
	n = kbu_kva_candidates(m, kernel, out->value, cand, 4);
	for (int i = 0; i < n; i++) {
		if (match(m, cand[i], arg)) {
			out->pa = cand[i];
			return out->kind = KBU_KVAR_POINTER;
		}
	}
	return out->kind = KBU_KVAR_NOMATCH;
}

void kbu_kvar_describe(const struct kbu_kvar *v, const char *name, uint64_t var, const char *what,
		       char *buf, size_t len)
{
	switch (v->kind) {
	case KBU_KVAR_IS_STRUCT:
		snprintf(buf, len, "%s at 0x%" PRIx64 ": the variable is the structure", name, var);
		break;
	case KBU_KVAR_PHYS:
		snprintf(buf, len, "through %s at 0x%" PRIx64 ": it holds this physical address", name,
			 var);
		break;
	case KBU_KVAR_POINTER:
		snprintf(buf, len, "through %s at 0x%" PRIx64 ": it holds pointer 0x%" PRIx64, name, var,
			 v->value);
		break;
	case KBU_KVAR_UNREADABLE:
		snprintf(buf, len, "%s at 0x%" PRIx64 " is not readable (virtually or at its physical alias)",
			 name, var);
		break;
	case KBU_KVAR_ZERO:
		snprintf(buf, len, "%s at 0x%" PRIx64 " is 0 (not saved yet)", name, var);
		break;
	default:
		snprintf(buf, len, "%s at 0x%" PRIx64 " holds 0x%" PRIx64 ", where there is no %s", name,
			 var, v->value, what);
		break;
	}
}
