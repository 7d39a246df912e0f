/*
 * kbu: link vs load vs runtime addresses of a kernel.
 *
 * Link (virtual) addresses are what the ELF's symbols say; each PT_LOAD has
 * a physical alias (p_paddr) where the loader put it and where early code,
 * running with paging off, executes. A relocated kernel (Linux KASLR, any
 * loader that moves the image) runs at link + slide virtually and at
 * p_paddr + phys_slide physically. The slides are found by matching the
 * ELF's own bytes (distinctive 64-byte windows of its executable segment)
 * against guest memory, so they need no symbols of the running kernel.
 */
#ifndef KBU_RELOC_H
#define KBU_RELOC_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_elf;
struct kbu_mem;

#define KBU_RELOC_MAXSEG 32
#define KBU_RELOC_MAXWIN 32
#define KBU_RELOC_WIN 64

struct kbu_reloc_seg {
	uint64_t vaddr, paddr, memsz, filesz;
	uint32_t flags; /* PF_X/W/R */
};

struct kbu_reloc_map {
	size_t nseg;
	struct kbu_reloc_seg seg[KBU_RELOC_MAXSEG];
};

/* The PT_LOAD segments with memsz > 0 (fails on more than KBU_RELOC_MAXSEG). */
int kbu_reloc_map(const struct kbu_elf *e, struct kbu_reloc_map *m, struct kbu_err *err);
/* Link virtual -> physical alias (-1 if no segment holds it) and back. */
int kbu_reloc_v2p(const struct kbu_reloc_map *m, uint64_t vaddr, uint64_t *paddr);
int kbu_reloc_p2v(const struct kbu_reloc_map *m, uint64_t paddr, uint64_t *vaddr);

/*
 * Picks up to n distinctive 64-byte windows from the executable segments'
 * file bytes, spread over them (at least 20 distinct byte values, no run of 8
 * equal bytes). Returns their link addresses and the count.
 */
size_t kbu_reloc_pick_windows(const struct kbu_elf *e, uint64_t *addrs, size_t n);

struct kbu_reloc_opts {
	uint64_t align;      /* slide granularity (default 2 MiB) */
	uint64_t virt_range; /* virtual slides tried: 0..virt_range (default 1 GiB) */
	uint64_t phys_limit; /* physical load addresses tried: 0..phys_limit (default 1 GiB) */
	size_t nwindows;     /* windows compared (default 16) */
	int virt, phys;      /* which searches to run */
	int only_slide;      /* 1: the virtual search tries `slide` alone (is the kernel there?) */
	int64_t slide;
};
void kbu_reloc_opts_default(struct kbu_reloc_opts *o);

struct kbu_reloc_found {
	int found;            /* 1: slide below is the answer */
	int64_t slide;
	size_t matched, tried; /* windows that matched at the answer / compared */
	uint64_t candidates;   /* slides examined */
	uint64_t unreadable;   /* candidates whose first window could not be read */
	char how[256];         /* how it decided, or why it could not */
};

struct kbu_reloc_result {
	struct kbu_reloc_found virt, phys;
	size_t nwindows;
	uint64_t windows[KBU_RELOC_MAXWIN];
};

/* Searches the slides. A search that finds nothing is not an error (found=0,
 * how says why); errors are bad input (no executable segment, no windows). */
int kbu_reloc_find(struct kbu_mem *m, const struct kbu_elf *e, const struct kbu_reloc_opts *o,
		   struct kbu_reloc_result *r, struct kbu_err *err);

/*
 * Where the boot stands, from CPU 0's registers, as far as the slides go:
 * before the firmware or the loader ran (the reset vector), paging off (a
 * PVH or multiboot entry, the early 32-bit code), or paging on. Before paging
 * the kernel's virtual addresses are its link addresses; a runtime slide
 * (KASLR) is chosen by whatever loads or relocates the image and is known
 * only once the kernel runs with its own page tables.
 */
enum kbu_reloc_phase {
	KBU_RELOC_PHASE_UNKNOWN = 0, /* no registers */
	KBU_RELOC_PHASE_RESET,       /* CPU 0 at its reset vector: nothing ran yet */
	KBU_RELOC_PHASE_NO_PAGING,   /* CR0.PG = 0 */
	KBU_RELOC_PHASE_PAGING,      /* CR0.PG = 1 */
};
struct kbu_regs;
enum kbu_reloc_phase kbu_reloc_phase(const struct kbu_regs *cpu0);
const char *kbu_reloc_phase_name(enum kbu_reloc_phase p); /* "reset", "no-paging", "paging", "unknown" */

/* 1 if `reported` is `real` cut to 32 bits (a debugger without the OS ABI
 * reporting a 64-bit kernel's symbol): real >= 4 GiB, reported == (uint32_t)real. */
int kbu_reloc_truncated(uint64_t real, uint64_t reported);

#ifdef __cplusplus
}
#endif
#endif
