/*
 * kbu memory sources: one interface under every command.
 *
 * A source reads guest physical memory (and, when it can, virtual memory
 * through the guest's own translation, e.g. a GDB stub), reports CPU
 * registers, and optionally runs monitor commands. struct kbu_mem wraps a
 * source with a page cache (4 KiB pages, batched up to the source's maximum
 * transfer) and with the page-table walker for sources that cannot translate.
 * A read never returns garbage: a missing page is a KBU_EFAULT error whose
 * message names the address.
 */
#ifndef KBU_MEM_H
#define KBU_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"
#include "kbu/regs.h"

#ifdef __cplusplus
extern "C" {
#endif

enum kbu_space {
	KBU_PHYS = 0,
	KBU_VIRT = 1,
};

/* Implemented by each source. Unused optional members are NULL. */
struct kbu_mem_ops {
	const char *kind; /* "phys", "core", "gdb", "callback" */
	/*
	 * Reads exactly len bytes or fails. A source without its own virtual
	 * translation fails KBU_VIRT reads with KBU_EUNSUPPORTED; struct
	 * kbu_mem then walks the page tables through KBU_PHYS reads.
	 */
	int (*read)(void *ctx, enum kbu_space space, uint64_t addr, void *buf, size_t len,
		    struct kbu_err *err);
	/* Optional: writes (used only by commands that change guest state). */
	int (*write)(void *ctx, enum kbu_space space, uint64_t addr, const void *buf, size_t len,
		     struct kbu_err *err);
	int (*ncpus)(void *ctx);                                   /* optional: 0 if unknown */
	int (*regs)(void *ctx, int cpu, struct kbu_regs *out, struct kbu_err *err); /* optional */
	/* Optional: a QEMU monitor command; *out is malloc'd text. */
	int (*monitor)(void *ctx, const char *cmd, char **out, struct kbu_err *err);
	/* Optional: physical ranges known to exist (for scans); returns count filled. */
	int (*ranges)(void *ctx, uint64_t *start, uint64_t *end, int max);
	void (*close)(void *ctx);
	size_t max_read; /* largest single transfer the source likes; 0: unlimited */
};

struct kbu_mem;

struct kbu_mem_stats {
	uint64_t requests;      /* kbu_mem_read calls */
	uint64_t source_reads;  /* calls into the source (round trips for a stub) */
	uint64_t source_bytes;
	uint64_t cache_hits;    /* pages served from the cache */
};

/* Wraps a source. Takes ownership of ctx (ops->close is called on kbu_mem_close). */
struct kbu_mem *kbu_mem_new(const struct kbu_mem_ops *ops, void *ctx, struct kbu_err *err);
void kbu_mem_close(struct kbu_mem *m);

/* Sources. */
struct kbu_mem *kbu_mem_open_phys(const char *path, uint64_t base, struct kbu_err *err);
struct kbu_mem *kbu_mem_open_core(const char *path, struct kbu_err *err);
struct kbu_mem *kbu_mem_open_gdb(const char *hostport, struct kbu_err *err);
/* "FILE[@BASE]" for --phys. */
struct kbu_mem *kbu_mem_open_phys_spec(const char *spec, struct kbu_err *err);

/*
 * A source driven by a caller's functions (C tests, a program with its own
 * reader). Each callback returns 0 on success, or a KBU_E* code (> 0) with an
 * optional message in errbuf: KBU_EFAULT for memory that is not there,
 * KBU_EUNSUPPORTED when the space cannot be read at all, KBU_ECONN when the
 * transport failed, ... Any negative value reads as KBU_EFAULT.
 */
typedef int (*kbu_read_cb)(void *user, int space, uint64_t addr, void *buf, size_t len,
			   char *errbuf, size_t errlen);
typedef int (*kbu_regs_cb)(void *user, int cpu, struct kbu_regs *out, char *errbuf, size_t errlen);
typedef int (*kbu_monitor_cb)(void *user, const char *cmd, char *out, size_t outlen,
			      char *errbuf, size_t errlen);
struct kbu_mem *kbu_mem_open_callback(kbu_read_cb read, kbu_regs_cb regs, kbu_monitor_cb monitor,
				      int ncpus, void *user, size_t max_read, struct kbu_err *err);

/*
 * A source driven by a debugger (GDB's Python, through ctypes): the debugger
 * only moves bytes and packets; libkbu decides how physical memory is read.
 * Physical reads switch QEMU's stub to its physical mode around the reads
 * (Qqemu.PhyMemMode:1, always switched back to 0), else read the monitor's
 * "xp" text, else go through the guest's own mappings (see below); the
 * physical ranges that exist come from the monitor's "info mtree -f".
 *
 * Every callback returns 0, a KBU_E* code (> 0) with a message in errbuf, or
 * a negative number when the user interrupted it (Ctrl-C): the read then
 * fails with KBU_EINTR "interrupted", never with a half-filled buffer.
 */
struct kbu_debugger_ops {
	/* Reads len bytes the way the debugger reads memory: virtual addresses,
	 * or physical ones while the stub is in its physical mode. */
	int (*read)(void *user, uint64_t addr, void *buf, size_t len, char *errbuf, size_t errlen);
	/* Optional: sends a remote-protocol packet, its reply (NUL-terminated) in reply. */
	int (*packet)(void *user, const char *pkt, char *reply, size_t replylen, char *errbuf,
		      size_t errlen);
	/* Optional: a QEMU monitor command, its text in out. */
	int (*monitor)(void *user, const char *cmd, char *out, size_t outlen, char *errbuf,
		       size_t errlen);
	/* Optional: registers of a CPU (0-based). */
	int (*regs)(void *user, int cpu, struct kbu_regs *out, char *errbuf, size_t errlen);
	/* Optional: the number of CPUs (threads) now; 0 if unknown. */
	int (*ncpus)(void *user);
	size_t max_read; /* largest read the debugger likes (0: 64 KiB) */
};
/* The ops are copied; user is passed to every callback. */
struct kbu_mem *kbu_mem_open_debugger(const struct kbu_debugger_ops *ops, void *user,
				      struct kbu_err *err);
/* How a debugger source reads physical memory: "packet" (Qqemu.PhyMemMode),
 * "xp" (the monitor), "none" (neither), or "" while not asked yet; NULL for
 * other sources. */
const char *kbu_mem_debugger_phys_method(const struct kbu_mem *m);

const char *kbu_mem_kind(const struct kbu_mem *m);
/* The source's own context (what kbu_mem_new was given); NULL for m NULL.
 * Check kbu_mem_kind before treating it as a given source's type. */
void *kbu_mem_source_ctx(const struct kbu_mem *m);

/* Cached, batched read; all-or-nothing. */
int kbu_mem_read(struct kbu_mem *m, enum kbu_space space, uint64_t addr, void *buf, size_t len,
		 struct kbu_err *err);
int kbu_mem_write(struct kbu_mem *m, enum kbu_space space, uint64_t addr, const void *buf,
		  size_t len, struct kbu_err *err);
int kbu_mem_read_u8(struct kbu_mem *m, enum kbu_space s, uint64_t a, uint8_t *v, struct kbu_err *e);
int kbu_mem_read_u16(struct kbu_mem *m, enum kbu_space s, uint64_t a, uint16_t *v, struct kbu_err *e);
int kbu_mem_read_u32(struct kbu_mem *m, enum kbu_space s, uint64_t a, uint32_t *v, struct kbu_err *e);
int kbu_mem_read_u64(struct kbu_mem *m, enum kbu_space s, uint64_t a, uint64_t *v, struct kbu_err *e);
/* Reads a NUL-terminated string of at most max-1 bytes; fails if unreadable. */
int kbu_mem_read_str(struct kbu_mem *m, enum kbu_space s, uint64_t a, char *buf, size_t max,
		     struct kbu_err *e);

/*
 * The first read failure since open (or the last clear) that was not missing
 * memory: a transport fault (KBU_ECONN), an I/O error, no memory, an
 * interruption (KBU_EINTR), or a physical read the source cannot do
 * (KBU_EUNSUPPORTED). Returns 1 and
 * copies it into *out (may be NULL), 0 if there was none. A scan that skips
 * unreadable memory checks this before it concludes "not found": a dead stub
 * is not an empty page.
 */
int kbu_mem_source_error(const struct kbu_mem *m, struct kbu_err *out);
void kbu_mem_clear_source_error(struct kbu_mem *m);

/*
 * Physical memory from a source that reads only virtual memory (a stub
 * without Qqemu.PhyMemMode: Firecracker's, bhyve's): on the first physical
 * read it cannot do, struct kbu_mem looks for a range where the guest maps
 * all physical memory (a direct map, an identity map, KERNBASE; with paging
 * off, virtual is physical) and proves it, by walking CPU 0's page tables
 * through it or by finding the kernel's own bytes at its load addresses.
 *  - kbu_mem_learn_kernel: the kernel's segments (p_paddr and file bytes,
 *    which must outlive m) for that proof;
 *  - kbu_mem_add_phys_hint: a base to try first (Linux's page_offset_base).
 * kbu_mem_phys_how says how physical reads are done, or why they cannot be
 * (NULL while none was needed).
 */
struct kbu_elf;
void kbu_mem_learn_kernel(struct kbu_mem *m, const struct kbu_elf *kernel);
void kbu_mem_add_phys_hint(struct kbu_mem *m, uint64_t base, const char *what);
const char *kbu_mem_phys_how(const struct kbu_mem *m);

/* Drops every cached page (the guest ran or was written). */
void kbu_mem_flush(struct kbu_mem *m);
struct kbu_mem_stats kbu_mem_get_stats(const struct kbu_mem *m);

int kbu_mem_ncpus(struct kbu_mem *m);
int kbu_mem_regs(struct kbu_mem *m, int cpu, struct kbu_regs *out, struct kbu_err *err);
int kbu_mem_monitor(struct kbu_mem *m, const char *cmd, char **out, struct kbu_err *err);
/* Physical ranges the source knows exist; returns count (0 if it cannot tell). */
int kbu_mem_ranges(struct kbu_mem *m, uint64_t *start, uint64_t *end, int max);

/*
 * Translation context for KBU_VIRT reads on sources that cannot translate:
 * by default CPU 0's CR3 and paging mode. Override with this (e.g. `--cr3`).
 */
void kbu_mem_set_translation(struct kbu_mem *m, enum kbu_paging_mode mode, uint64_t cr3);

#ifdef __cplusplus
}
#endif
#endif
