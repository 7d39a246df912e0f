/* TSC frequency from CPUID, tried in FreeBSD's order (tsc.c). */
#include "guest.h"

uint64_t tsc_freq;

/* Hypervisor timing leaf 0x40000010 (VMware/KVM convention): EAX = TSC kHz. */
KERNEL_FN bool tsc_freq_cpuid_vm(void)
{
	u_int regs[4];

	if (vm_guest == VM_GUEST_NO)
		return false;
	if (hv_high < 0x40000010)
		return false;
	do_cpuid(0x40000010, regs);
	tsc_freq = (uint64_t)regs[0] * 1000;
	return true;
}

/* Leaf 0x15 (TSC/crystal ratio), else leaf 0x16 (base MHz). */
KERNEL_FN bool tsc_freq_cpuid(uint64_t *res)
{
	u_int regs[4];

	if (cpu_high < 0x15)
		return false;
	do_cpuid(0x15, regs);
	if (regs[0] > 0 && regs[1] > 0 && regs[2] > 0) {
		*res = (uint64_t)regs[2] * regs[1] / regs[0];
		return true;
	}
	if (cpu_high < 0x16)
		return false;
	do_cpuid(0x16, regs);
	if (regs[0] > 0) {
		*res = (uint64_t)regs[0] * 1000000;
		return true;
	}
	return false;
}

KERNEL_FN void probe_tsc_freq_early(void)
{
	/* Silent, as FreeBSD is without bootverbose: tsc_freq says what came of it. */
	if ((cpu_feature & CPUID_TSC) == 0)
		return;
	if (tsc_freq_cpuid_vm())
		return;
	(void)tsc_freq_cpuid(&tsc_freq);
}
