/* Local APIC bring-up (local_apic.c): version register, timer, the x2APIC switch. */
#include "timetc.h"

#define LAPIC_ID       0x020
#define LAPIC_VERSION  0x030
#define LAPIC_EOI      0x0b0
#define LAPIC_SVR      0x0f0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_ICR_TIMER 0x380
#define LAPIC_CCR_TIMER 0x390
#define LAPIC_DCR_TIMER 0x3e0
#define APIC_SVR_ENABLE 0x100
#define APIC_LVT_M      0x10000
#define APIC_LVTT_TM_PERIODIC 0x20000
#define APIC_TDCR_1     0x0b
#define MSR_APICBASE    0x1b
#define APICBASE_X2APIC 0x400
#define MSR_APIC_000    0x800

int x2apic_mode;
u_int lapic_version;
u_int lapic_id;
vm_paddr_t lapic_paddr;
uint64_t lapic_timer_freq;
u_int lapic_ipi_wait_mult;
volatile uint64_t lapic_ticks;
/* The EOI register's mapping, for the timer interrupt's entry (locore.S). */
volatile uint32_t *lapic_eoi;
static volatile uint32_t *lapic_map;
/* Set only when IA32_APIC_BASE really went to x2APIC mode. */
static int x2apic_hw;

static inline uint64_t rdmsr(u_int msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(u_int msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

KERNEL_FN uint32_t lapic_read32(u_int reg)
{
	if (x2apic_hw)
		return (uint32_t)rdmsr(MSR_APIC_000 + (reg >> 4));
	return lapic_map[reg / 4];
}

KERNEL_FN void lapic_write32(u_int reg, uint32_t v)
{
	if (x2apic_hw)
		wrmsr(MSR_APIC_000 + (reg >> 4), v);
	else
		lapic_map[reg / 4] = v;
}

/*
 * Turn x2APIC mode on.  TCG does not emulate x2APIC: when CPUID says it is
 * absent we only flip the flag (what a port that forces it would do) and say so.
 */
KERNEL_FN void lapic_x2apic_enable(void)
{
	int cpuid_x2apic = (cpu_feature2 & CPUID2_X2APIC) != 0;

	if (cpuid_x2apic) {
		wrmsr(MSR_APICBASE, rdmsr(MSR_APICBASE) | APICBASE_X2APIC);
		x2apic_hw = 1;
	}
	x2apic_mode = 1;
}

uint32_t lapic_read_timer_ccr(void)
{
	return lapic_read32(LAPIC_CCR_TIMER);
}

/* The timer counts down; clockcalib wants a counter that goes up. */
static uint32_t lapic_timer_upcount(void)
{
	return ~lapic_read_timer_ccr();
}

KERNEL_FN void lapic_init(vm_paddr_t addr)
{
	KASSERT((addr & (PAGE_SIZE - 1)) == 0, ("local APIC not aligned on a page boundary"));
	/* locore maps exactly one LAPIC page, identity and uncached. */
	KASSERT(addr == LAPIC_PADDR, ("local APIC at 0x%lx, only 0x%x is mapped", addr, LAPIC_PADDR));
	lapic_paddr = addr;
	lapic_map = (volatile uint32_t *)(uintptr_t)addr;
	lapic_eoi = lapic_map + LAPIC_EOI / 4;
	if (boot_scenario == SC_X2APIC)
		lapic_x2apic_enable();

	lapic_write32(LAPIC_SVR, APIC_SVR_ENABLE | APIC_SPURIOUS_INT);
	lapic_version = lapic_read32(LAPIC_VERSION);
	lapic_id = lapic_read32(LAPIC_ID) >> (x2apic_hw ? 0 : 24);
	printf("Event timer \"LAPIC\" quality 600\n");

	/* As FreeBSD's SMP path: the IPI wait loop is calibrated with the TSC. */
	KASSERT((cpu_feature & CPUID_TSC) != 0 && tsc_freq != 0, ("TSC not initialized"));
	uint64_t t0 = rdtsc();
	for (int i = 0; i < 1000; i++)
		(void)lapic_read32(LAPIC_ID);
	uint64_t dt = rdtsc() - t0;
	lapic_ipi_wait_mult = dt ? (u_int)(tsc_freq / 1000000 * 1000 / dt) : 1;
	if (lapic_ipi_wait_mult == 0)
		lapic_ipi_wait_mult = 1;
}

/* One-shot timer, masked, free running from 0xffffffff, divide by 1. */
KERNEL_FN void lapic_calibrate_timer(void)
{
	lapic_write32(LAPIC_LVT_TIMER, APIC_LVT_M);
	lapic_write32(LAPIC_DCR_TIMER, APIC_TDCR_1);
	lapic_write32(LAPIC_ICR_TIMER, 0xffffffff);
	(void)clockcalib(lapic_timer_upcount, "lapic", &lapic_timer_freq);
}

/*
 * The event timer a booted kernel leaves running (FreeBSD's "LAPIC" event
 * timer): periodic at about 100 Hz on vector APIC_TIMER_INT, so a vCPU idling
 * in sti; hlt is woken by it as on a real kernel. 0 when there is no local
 * APIC to run it yet, or when it is in x2APIC mode (its EOI is an MSR there,
 * and the interrupt entry writes the MMIO register).
 */
KERNEL_FN int lapic_timer_start(void)
{
	if (lapic_map == NULL || x2apic_hw)
		return 0;
	lapic_write32(LAPIC_DCR_TIMER, APIC_TDCR_1);
	lapic_write32(LAPIC_LVT_TIMER, APIC_LVTT_TM_PERIODIC | APIC_TIMER_INT);
	lapic_write32(LAPIC_ICR_TIMER, 10000000);
	return 1;
}
