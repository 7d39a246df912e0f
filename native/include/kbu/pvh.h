/*
 * kbu: the PVH start info (Xen's struct hvm_start_info, v0 and v1) that a
 * PVH loader (QEMU's qboot, Firecracker, Xen) hands the kernel in %ebx.
 *
 * Layout (public/arch-x86/hvm/start_info.h), little endian:
 *   0 magic (0x336ec578)  4 version  8 flags  12 nr_modules
 *  16 modlist_paddr  24 cmdline_paddr  32 rsdp_paddr            (v0: 40 bytes)
 *  40 memmap_paddr   48 memmap_entries 52 reserved              (v1: 56 bytes)
 * Module entry (32 bytes): paddr, size, cmdline_paddr, reserved.
 * Memory map entry (24 bytes): addr, size, type (E820), reserved.
 *
 * The decoder is a pure function of a memory source: it never stops at the
 * first bad pointer, it records a problem and decodes the rest.
 */
#ifndef KBU_PVH_H
#define KBU_PVH_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"
#include "kbu/kvar.h" /* kbu_kvar_follow: how the start info is found */
#include "kbu/report.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_mem;
struct kbu_symtab;
struct kbu_elf;

#define KBU_PVH_MAGIC 0x336ec578u
#define KBU_PVH_V0_SIZE 40
#define KBU_PVH_V1_SIZE 56
#define KBU_PVH_MOD_SIZE 32
#define KBU_PVH_MEMMAP_ENTRY_SIZE 24
/* More entries than this is not a memory map a loader writes: the count is garbage. */
#define KBU_PVH_MAX_MEMMAP 1024
#define KBU_PVH_MAX_MODULES 256
/* Command lines longer than this are reported as unterminated. */
#define KBU_PVH_CMDLINE_MAX 4096
#define KBU_PVH_MAX_PROBLEMS 100

enum kbu_pvh_str_state {
	KBU_PVH_STR_ABSENT = 0,    /* pointer is 0 */
	KBU_PVH_STR_OK,
	KBU_PVH_STR_UNREADABLE,    /* pointer outside memory */
	KBU_PVH_STR_UNTERMINATED,  /* no NUL within KBU_PVH_CMDLINE_MAX or before memory ends */
};

struct kbu_pvh_str {
	int state;  /* KBU_PVH_STR_* */
	char *text; /* malloc'd, NUL-terminated (what was readable, for UNTERMINATED) */
	size_t len;
};

struct kbu_pvh_module {
	uint64_t paddr, size, cmdline_paddr, reserved;
	struct kbu_pvh_str cmdline;
};

struct kbu_pvh_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

struct kbu_pvh_problem {
	int sev;        /* enum kbu_severity */
	char msg[256];
};

struct kbu_pvh {
	uint64_t addr;          /* physical address of the structure */
	char how[160];          /* how it was found, e.g. "found by scanning low memory" */
	int bare_magic;         /* found only as a magic whose pointers lead nowhere: not a start info */
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr;
	int has_v1;             /* version >= 1: the memmap fields below are valid */
	uint64_t memmap_paddr;
	uint32_t memmap_entries, reserved;

	struct kbu_pvh_str cmdline;
	int rsdp_sig_ok;        /* 1: "RSD PTR " at rsdp_paddr; 0: not; -1: unreadable/absent */
	/* The RSDP itself when rsdp_sig_ok == 1 (ACPI: 20 bytes, 36 from revision 2). */
	char rsdp_oem[25];      /* escaped (kbu_escape): 6 bytes, each at most "\\xNN" */
	uint8_t rsdp_revision;
	uint32_t rsdt_paddr;
	uint64_t xsdt_paddr;    /* revision >= 2 */
	int rsdp_sum_ok;        /* both checksums (the 20-byte one, and the extended one) */
	struct kbu_pvh_module *modules;
	size_t nmodules;        /* decoded (may be < nr_modules) */
	struct kbu_pvh_memmap_entry *memmap;
	size_t nmemmap;         /* decoded (may be < memmap_entries) */

	struct kbu_pvh_problem *problems;
	size_t nproblems;
	size_t nsuppressed;     /* problems beyond KBU_PVH_MAX_PROBLEMS, counted only */
};

/* Decodes the start info at physical address addr. Fails (KBU_EFAULT,
 * KBU_EFORMAT) only when the structure itself is unreadable or its magic is
 * wrong; everything else becomes a problem in p->problems. */
int kbu_pvh_decode(struct kbu_mem *m, uint64_t addr, struct kbu_pvh *p, struct kbu_err *err);
void kbu_pvh_free(struct kbu_pvh *p);

/*
 * Finds and decodes the start info without an address: through a saved
 * pointer in the kernel when syms is given (FreeBSD `start_info`, NetBSD
 * `hvm_start_paddr`, Linux `pvh_start_info`), then CPU 0's %ebx when the
 * source has registers, then by scanning low memory (first 1 MiB, then the
 * source's ranges up to scan_limit bytes; 0: 256 MiB). kernel (optional)
 * gives the virtual-to-physical alias of kernel symbols. p->how says which.
 */
int kbu_pvh_find(struct kbu_mem *m, const struct kbu_symtab *syms, const struct kbu_elf *kernel,
		 uint64_t scan_limit, struct kbu_pvh *p, struct kbu_err *err);

/* The same, trying first `sym` (an OS profile's start_info role; NULL: none),
 * named `label` (e.g. "freebsd profile") in p->how. */
int kbu_pvh_find_named(struct kbu_mem *m, const struct kbu_symtab *syms,
		       const struct kbu_elf *kernel, const char *sym, const char *label,
		       uint64_t scan_limit, struct kbu_pvh *p, struct kbu_err *err);

/* True if the bytes at addr look like a start info a loader wrote (magic,
 * version, and every pointer plausible). Used by the scan. */
int kbu_pvh_plausible(struct kbu_mem *m, uint64_t addr);

/* "RAM", "reserved", "ACPI", "NVS", "unusable", "disabled", "PMEM", or NULL. */
const char *kbu_e820_type_name(uint32_t type);

/* Renders a decoded start info into the report node. */
void kbu_pvh_report(const struct kbu_pvh *p, struct kbu_node *node);

#ifdef __cplusplus
}
#endif
#endif
