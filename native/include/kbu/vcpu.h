/*
 * kbu: what each vCPU is doing, from its registers and what else the source
 * can tell: still at its reset vector or waiting for a SIPI (CS base
 * 0xffff0000, RIP 0xfff0, real mode), halted (QEMU's monitor shows HLT=1 in
 * `info registers -a`; a dump records no such flag), or running, and in
 * whose code (the kernel's, the firmware's in the BIOS area).
 */
#ifndef KBU_VCPU_H
#define KBU_VCPU_H

#include <stdint.h>

#include "kbu/regs.h"

#ifdef __cplusplus
extern "C" {
#endif

enum kbu_vcpu_state {
	KBU_VCPU_UNKNOWN = 0,   /* no registers */
	KBU_VCPU_RESET,         /* CPU 0 at the reset vector: nothing ran yet */
	KBU_VCPU_WAIT_SIPI,     /* an AP in its INIT state: never started, or parked */
	KBU_VCPU_HALTED,        /* HLT: waiting for an interrupt */
	KBU_VCPU_RUNNING,       /* not halted (the source says so) */
	KBU_VCPU_STOPPED,       /* registers known, halted or running not known */
};

enum kbu_vcpu_where {
	KBU_VCPU_IN_UNKNOWN = 0,
	KBU_VCPU_IN_RESET_VECTOR,
	KBU_VCPU_IN_KERNEL,     /* a kernel text symbol, or the high half in long mode */
	KBU_VCPU_IN_FIRMWARE,   /* 0xe0000-0xfffff or the top 1 MiB below 4 GiB */
	KBU_VCPU_IN_OTHER,
};

struct kbu_vcpu_facts {
	int halted;             /* 1 / 0 from the source (QEMU's HLT=), -1 not known */
	int hlt_before_rip;     /* 1: the byte before RIP is HLT (0xf4), 0: not, -1: not read */
	int in_kernel_text;     /* 1: RIP is in a kernel text symbol, 0: not, -1: no symbols */
};

struct kbu_vcpu {
	int state;              /* enum kbu_vcpu_state */
	int where;              /* enum kbu_vcpu_where */
	int halted_inferred;    /* HALTED decided from the HLT before RIP, not from the source */
	char text[160];         /* "halted in kernel code", "waiting for SIPI (INIT state)", ... */
};

/* CPU#index's HLT= in QEMU's `info registers -a` text: 1, 0, or -1 when absent. */
int kbu_qemu_cpu_halted(const char *info_registers, int index);

/* Classifies CPU `cpu` (0 is the boot CPU) from its registers and the facts. */
void kbu_vcpu_classify(const struct kbu_regs *r, int cpu, const struct kbu_vcpu_facts *f,
		       struct kbu_vcpu *out);

/* "reset", "wait-for-sipi", "halted", "running", "stopped", "unknown". */
const char *kbu_vcpu_state_name(int state);
/* "kernel", "firmware", "reset vector", "other", "unknown". */
const char *kbu_vcpu_where_name(int where);

#ifdef __cplusplus
}
#endif
#endif
