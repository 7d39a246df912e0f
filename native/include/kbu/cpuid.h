/*
 * kbu: CPUID decoding. The values come from elsewhere (the GDB extension runs
 * CPUID on the paused vCPU, a user pastes them): this only decodes, so the
 * same code serves the CLI (`kbu cpuid-decode`) and GDB (`kbu cpuid`).
 */
#ifndef KBU_CPUID_H
#define KBU_CPUID_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_node;

struct kbu_cpuid_leaf {
	uint32_t leaf, subleaf;
	uint32_t eax, ebx, ecx, edx;
};

#define KBU_CPUID_MAX 160

struct kbu_cpuid_set {
	size_t n;
	struct kbu_cpuid_leaf l[KBU_CPUID_MAX];
};

/* "LEAF[.SUB]=EAX,EBX,ECX,EDX" (numbers in C syntax, hex with 0x). */
int kbu_cpuid_parse_leaf(const char *spec, struct kbu_cpuid_leaf *out, struct kbu_err *err);
/* Adds or replaces (same leaf and subleaf). */
int kbu_cpuid_set_add(struct kbu_cpuid_set *s, const struct kbu_cpuid_leaf *l, struct kbu_err *err);
const struct kbu_cpuid_leaf *kbu_cpuid_find(const struct kbu_cpuid_set *s, uint32_t leaf,
					    uint32_t subleaf);

struct kbu_cpuid_sig {
	unsigned family, model, stepping, type; /* display family/model (extended fields folded in) */
};
struct kbu_cpuid_sig kbu_cpuid_signature(uint32_t eax1);

/* The 12-character vendor string of leaf 0 (EBX, EDX, ECX) or of a hypervisor
 * leaf 0x40000000 (EBX, ECX, EDX); non-printable bytes become '.'. */
void kbu_cpuid_vendor(const struct kbu_cpuid_leaf *l, int hypervisor, char out[13]);

/* Names of the set feature bits of (leaf, subleaf, register 'a'|'b'|'c'|'d').
 * Unnamed set bits come out as "bitN". Returns the count written (<= max). */
size_t kbu_cpuid_flags(uint32_t leaf, uint32_t subleaf, char reg, uint32_t value,
		       const char **names, char (*unnamed)[8], size_t max);
/* Bit number of a named feature in (leaf 1 / 7 / 0x80000001), -1 if unknown. */
int kbu_cpuid_flag_bit(uint32_t leaf, char reg, const char *name);

/*
 * TSC frequency from CPUID alone, the order a kernel tries it (FreeBSD's
 * tsc_freq_cpuid_vm then tsc_freq_cpuid): hypervisor leaf 0x40000010, leaf
 * 0x15 (crystal ratio), leaf 0x16 (base MHz). *hz = 0 and *how = NULL when
 * no step succeeds.
 */
int kbu_cpuid_tsc_hz(const struct kbu_cpuid_set *s, uint64_t *hz, const char **how);

/* Report sections: every leaf in s decoded; the TSC derivation chain. */
void kbu_cpuid_report(struct kbu_node *root, const struct kbu_cpuid_set *s);
void kbu_cpuid_tsc_report(struct kbu_node *root, const struct kbu_cpuid_set *s);

#ifdef __cplusplus
}
#endif
#endif
