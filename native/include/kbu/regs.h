/* kbu: x86 CPU register state as a memory source reports it. */
#ifndef KBU_REGS_H
#define KBU_REGS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum kbu_regs_have {
	KBU_HAVE_GPR = 1 << 0,     /* rax..r15, rip, rflags */
	KBU_HAVE_SEG = 1 << 1,     /* segment selectors */
	KBU_HAVE_SEGBASE = 1 << 2, /* segment bases (fs_base, gs_base, ...) */
	KBU_HAVE_CR = 1 << 3,      /* cr0, cr2, cr3, cr4 (cr8 if known) */
	KBU_HAVE_EFER = 1 << 4,
	KBU_HAVE_DT = 1 << 5,      /* gdt/idt base and limit */
};

struct kbu_regs {
	uint32_t have;   /* KBU_HAVE_* bits: which groups below are valid */
	int bits;        /* 32 or 64: the register width the source recorded */
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
	uint16_t cs, ss, ds, es, fs, gs;
	uint64_t cs_base, ss_base, ds_base, es_base, fs_base, gs_base, kernel_gs_base;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer;
	uint64_t gdt_base, idt_base;
	uint32_t gdt_limit, idt_limit;
};

enum kbu_paging_mode {
	KBU_PG_UNKNOWN = -1,
	KBU_PG_OFF = 0,   /* CR0.PG = 0: linear = physical */
	KBU_PG_32,        /* 2-level 32-bit paging (CR4.PAE = 0) */
	KBU_PG_PAE,       /* 3-level PAE, not in long mode */
	KBU_PG_4LEVEL,    /* IA-32e 4-level */
	KBU_PG_5LEVEL,    /* IA-32e 5-level (CR4.LA57) */
};

/* The paging mode from CR0.PG, CR4.PAE, CR4.LA57 and EFER.LMA (LME if LMA unknown). */
enum kbu_paging_mode kbu_regs_paging_mode(const struct kbu_regs *r);
const char *kbu_paging_mode_name(enum kbu_paging_mode m);

#ifdef __cplusplus
}
#endif
#endif
