/*
 * kbu kernel variables: reading a kernel's own variables from guest memory
 * whatever the source can translate, and following one to the structure it
 * names. Every area that reads a kernel variable (the start-info pointer,
 * the message buffer, the time source, the MP table copy) goes through here.
 *
 * A kernel virtual address is read through the source (KBU_VIRT: a stub
 * translates it, struct kbu_mem walks CPU 0's page tables for a dump), else
 * through a physical alias: the kernel's PT_LOAD link -> load map (early
 * dumps, paging not on yet), KERNBASE 0xffffffff80000000, FreeBSD's and
 * Linux's direct maps.
 */
#ifndef KBU_KVAR_H
#define KBU_KVAR_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_mem;
struct kbu_elf;

/* len bytes at a kernel address: KBU_VIRT, else through the kernel's PT_LOAD
 * segments (kernel may be NULL: KBU_VIRT only). On failure *err holds the
 * virtual read's error. */
int kbu_read_kva(struct kbu_mem *m, const struct kbu_elf *kernel, uint64_t addr, void *buf,
		 size_t len, struct kbu_err *err);
/* A little-endian unsigned field of size 1..8 bytes at a kernel address. */
int kbu_read_kva_uint(struct kbu_mem *m, const struct kbu_elf *kernel, uint64_t addr,
		      uint32_t size, uint64_t *out, struct kbu_err *err);

/*
 * Physical addresses a kernel virtual address may have, best first: CPU 0's
 * page tables, the kernel's PT_LOAD map, KERNBASE, FreeBSD's then Linux's
 * direct map (without KASLR). Fills at most max; returns the count.
 */
int kbu_kva_candidates(struct kbu_mem *m, const struct kbu_elf *kernel, uint64_t va,
		       uint64_t *pa, int max);

/*
 * Following a kernel variable to a structure, the three ways kernels keep
 * one: the variable IS the structure (Linux's pvh_start_info copy), holds its
 * physical address (NetBSD's hvm_start_paddr), or holds a kernel pointer
 * (FreeBSD's start_info, KERNBASE-mapped). `match` says whether a physical
 * address holds the wanted structure.
 */
enum kbu_kvar_kind {
	KBU_KVAR_NOMATCH = 0,  /* readable, but leads to no matching structure */
	KBU_KVAR_IS_STRUCT,
	KBU_KVAR_PHYS,
	KBU_KVAR_POINTER,
	KBU_KVAR_ZERO,         /* holds 0: not saved yet */
	KBU_KVAR_UNREADABLE,
};
struct kbu_kvar {
	int kind;       /* enum kbu_kvar_kind */
	uint64_t value; /* the variable's first 8 bytes */
	uint64_t pa;    /* the structure's physical address (IS_STRUCT, PHYS, POINTER) */
};
/* Returns out->kind. */
int kbu_kvar_follow(struct kbu_mem *m, const struct kbu_elf *kernel, uint64_t var,
		    int (*match)(struct kbu_mem *m, uint64_t pa, void *arg), void *arg,
		    struct kbu_kvar *out);
/* One line saying how (or why not) for a report: `what` names the structure. */
void kbu_kvar_describe(const struct kbu_kvar *v, const char *name, uint64_t var, const char *what,
		       char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
