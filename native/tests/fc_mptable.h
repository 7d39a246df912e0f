/*
 * Test support: the MP table Firecracker writes, built in code.
 *
 * Firecracker cannot run here (it needs KVM), so this follows its public
 * source, src/vmm/src/arch/x86_64/mptable.rs (setup_mptable): the floating
 * pointer at 0x9fc00 ("_MP_", spec 1.4, config table right after it at
 * 0x9fc10), the header (OEM "FC      ", product "000000000000", local APIC
 * 0xfee00000), per vCPU a processor entry (APIC id = index, version 0x14,
 * enabled, BSP for vCPU 0, signature 0x600, features APIC|FPU), one ISA bus,
 * an I/O APIC with id ncpus+1 at 0xfec00000, 24 I/O interrupt entries
 * (ISA IRQ i -> pin i), and two local interrupts: ExtINT to LINT0 of APIC 0,
 * NMI to LINT1 of every APIC (0xff). One vCPU: a 288-byte table of 29 entries.
 *
 * Its entry count depends on the release: older ones leave it 0; later ones
 * count the floating pointer too, one more than the table holds (30 for one
 * vCPU: the count seen in seeds/000's "Unknown MP Config Entry 68").
 */
#ifndef KBU_TEST_FC_MPTABLE_H
#define KBU_TEST_FC_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

#define FC_MPTABLE_FP 0x9fc00u
#define FC_MPTABLE_TABLE 0x9fc10u

enum fc_count_style {
	FC_COUNT_ZERO = 0,      /* older releases: entry_count left 0 */
	FC_COUNT_WITH_FP = 1,   /* later releases: entries + 1 (the floating pointer counted) */
};

/* Writes the floating pointer and the table into mem (at least 0xa0000 bytes)
 * for ncpus vCPUs with both checksums right; returns the table's length. */
size_t fc_mptable_build(uint8_t *mem, unsigned ncpus, enum fc_count_style style);

/* Entries the table holds for ncpus vCPUs. */
unsigned fc_mptable_entries(unsigned ncpus);

#endif
