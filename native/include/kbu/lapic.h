/*
 * kbu: the local APIC. Every register with its xAPIC MMIO offset and x2APIC
 * MSR number, decoding of each (LVTs, SVR, DCR, ICR, ISR/TMR/IRR), a parser
 * of QEMU's `info lapic` text, and the report that compares sources.
 */
#ifndef KBU_LAPIC_H
#define KBU_LAPIC_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_node;

#define KBU_LAPIC_NREGS 64 /* 32-bit registers at offsets 0x000..0x3F0, 16 bytes apart */

enum kbu_lapic_kind {
	KBU_LREG_PLAIN = 0,
	KBU_LREG_LVT,        /* local vector table entry */
	KBU_LREG_LVT_TIMER,
	KBU_LREG_BITMAP,     /* one of the 8 ISR/TMR/IRR words */
};

struct kbu_lapic_reg {
	const char *name;  /* "ID", "LVT timer", ... */
	uint16_t offset;   /* xAPIC MMIO offset from the base (0xfee00000) */
	uint16_t msr;      /* x2APIC MSR (0x800 + offset/16); 0 if none in x2APIC mode */
	uint8_t kind;      /* enum kbu_lapic_kind */
	const char *qemu;  /* name in QEMU's `info lapic`, NULL if not shown there */
};

/* The architectural registers, by offset; NULL-named entries are reserved. */
const struct kbu_lapic_reg *kbu_lapic_reg_at(unsigned offset);
const struct kbu_lapic_reg *kbu_lapic_reg_table(size_t *n);
uint32_t kbu_lapic_msr(unsigned offset); /* 0x800 + offset/16 */

/* A snapshot: value per register index (offset >> 4), with what is known. */
struct kbu_lapic_state {
	uint32_t reg[KBU_LAPIC_NREGS];
	uint64_t known;      /* bit i: reg[i] is known */
	int cpu;             /* CPU index the source named, -1 if unknown */
};

static inline void kbu_lapic_set(struct kbu_lapic_state *s, unsigned off, uint32_t v)
{
	s->reg[(off >> 4) & 63] = v;
	s->known |= 1ull << ((off >> 4) & 63);
}
static inline int kbu_lapic_known(const struct kbu_lapic_state *s, unsigned off)
{
	return (int)((s->known >> ((off >> 4) & 63)) & 1);
}

/*
 * Parses QEMU's `info lapic` output (hmp_info_local_apic, QEMU 7.2 format):
 * LVT0/LVT1/LVTPC/LVTERR/LVTTHMR/LVTT, Timer DCR/initial/current, SPIV, ICR,
 * ICR2, ESR, ISR, IRR (with TMR from the "(level)" marks), APR/TPR/DFR/LDR/PPR.
 * QEMU does not print ID, version, EOI or LVT CMCI: those stay unknown.
 * Fails (KBU_EFORMAT) if the text has none of these lines.
 */
int kbu_lapic_parse_qemu(const char *text, struct kbu_lapic_state *s, struct kbu_err *err);

/* Fills the state from a raw 1 KiB xAPIC page image (registers at 16-byte strides). */
void kbu_lapic_from_page(const uint8_t page[0x400], struct kbu_lapic_state *s);
/* Whether every readable register of a page image is zero (TCG's debug reads). */
int kbu_lapic_page_all_zero(const uint8_t page[0x400]);

/*
 * The registers a vCPU can read from its own local APIC without side effects,
 * in the order to read them (the version first: it says whether LVT CMCI
 * exists): xAPIC offsets (x2apic 0) or the x2APIC MSRs' offsets (x2apic 1:
 * no APR, DFR, ICR high; the MSR is kbu_lapic_msr(offset)). EOI is
 * write-only and reserved offsets raise ESR's illegal-register bit, so
 * neither is read; LVT CMCI only when have_version and the version's max
 * LVT is at least 6. Returns the count (at most max).
 */
size_t kbu_lapic_readable(int have_version, uint32_t version, int x2apic, unsigned *offsets,
			  size_t max);

/* Parses "OFF=VAL,OFF=VAL,..." (a vCPU's own reads) into s; KBU_EINVAL on bad text,
 * an offset that is no register, or a value wider than 32 bits. */
int kbu_lapic_parse_values(const char *text, struct kbu_lapic_state *s, struct kbu_err *err);

/* Decoders. */
struct kbu_lapic_lvt {
	unsigned vector;
	const char *delivery;  /* Fixed, SMI, NMI, INIT, ExtINT, reserved */
	int pending;           /* delivery status */
	int active_low;
	int remote_irr;
	int level;             /* trigger: 1 level, 0 edge */
	int masked;
	const char *timer_mode; /* one-shot, periodic, TSC-deadline, reserved; NULL if not the timer */
};
void kbu_lapic_decode_lvt(uint32_t v, int is_timer, struct kbu_lapic_lvt *out);
/* A register's value as the report words it ("APIC software-enabled, spurious vector
 * 255"); "" for a register with no decoding or an unknown offset. */
void kbu_lapic_decode_text(unsigned offset, uint32_t v, char *buf, size_t len);
/* DCR to the divisor: 1, 2, 4, ... 128. */
unsigned kbu_lapic_divisor(uint32_t dcr);

/* Where a snapshot of the registers came from. */
enum kbu_lapic_source {
	KBU_LAPIC_SRC_VCPU = 0, /* the vCPU's own reads (loads from its APIC page, RDMSR) */
	KBU_LAPIC_SRC_MONITOR,  /* QEMU's `info lapic` (live, or a saved copy) */
	KBU_LAPIC_SRC_PAGE,     /* the APIC page, read physically by the debugger */
};
/* "vcpu", "monitor", "page": the value JSON holds. */
const char *kbu_lapic_source_id(enum kbu_lapic_source src);
/* "the vCPU's own reads", "QEMU info lapic", "LAPIC page": how the text names it. */
const char *kbu_lapic_source_name(enum kbu_lapic_source src);

/*
 * The report: registers table (each known register's fields decoded: as words
 * in the text, as values in JSON), decoded LVTs, vectors pending; `other` (may
 * be NULL) is a second source whose known registers are compared with `s`.
 */
void kbu_lapic_report(struct kbu_node *root, const struct kbu_lapic_state *s,
		      enum kbu_lapic_source source, const struct kbu_lapic_state *other,
		      enum kbu_lapic_source other_source);

/*
 * Which mode the APIC is in, from what can be known without IA32_APIC_BASE:
 * CPUID.1:ECX[21] (x2APIC offered), the kernel's own flag, and SVR bit 8.
 * s may be NULL (no registers read). mode is "xAPIC", "xAPIC, software-disabled",
 * "x2APIC (as the kernel set it)", "xAPIC (as the kernel set it)" or "unknown"
 * (the words a report shows); name is the mode alone ("xAPIC", "x2APIC",
 * "unknown") and decided_by what decided it ("cpuid": CPUID offers no x2APIC;
 * "kernel": the kernel's flag; NULL while unknown). flag_without_cpu is set
 * when the kernel says x2APIC and CPUID has no x2APIC bit (its MSR accesses
 * 0x800+ will fault).
 */
struct kbu_lapic_mode {
	const char *mode;
	const char *name;
	const char *decided_by;
	int flag_without_cpu;
};
void kbu_lapic_mode(const struct kbu_lapic_state *s, int have_cpuid, uint32_t cpuid1_ecx,
		    int have_kflag, int kflag, struct kbu_lapic_mode *out);

#ifdef __cplusplus
}
#endif
#endif
