/* hammer_time() and mi_startup(): the boot sequence, one scenario at a time. */
#include "guest.h"
#include "mptable.h"
#include "msgbuf.h"
#include "pvh.h"
#include "timetc.h"

/* FreeBSD's static pointer to the start info, through the KERNBASE map (0xffffffff800f31e0). */
static struct hvm_start_info *start_info __attribute__((used));
char kern_cmdline[1024];
uint64_t realmem;                         /* bytes of E820 RAM in the start info's map */
enum scenario boot_scenario = SC_OK;
const char *boot_scenario_name = "ok";

u_int cpu_high, cpu_feature, cpu_feature2, cpu_id, hv_high;
int vm_guest;
char cpu_vendor[13], hv_vendor[13];

extern struct timecounter i8254_timecounter;

static const struct {
	const char *name;
	enum scenario sc;
} scenarios[] = {
	{ "ok", SC_OK },
	{ "tsc", SC_TSC },
	{ "timecounter", SC_TIMECOUNTER },
	{ "x2apic", SC_X2APIC },
	{ "mptable", SC_MPTABLE },
	{ "mpcorrupt", SC_MPCORRUPT },
	{ "pagefault", SC_PAGEFAULT },
};

/* The names FreeBSD's identcpu gives CPUID.1:EDX and ECX bits, for %b. */
#define CPUID_BITS                                                                  \
	"\020"                                                                     \
	"\001FPU\002VME\003DE\004PSE\005TSC\006MSR\007PAE\010MCE\011CX8\012APIC"     \
	"\013<b10>\014SEP\015MTRR\016PGE\017MCA\020CMOV\021PAT\022PSE36\023PN"        \
	"\024CLFLUSH\025<b20>\026DTS\027ACPI\030MMX\031FXSR\032SSE\033SSE2\034SS"      \
	"\035HTT\036TM\037IA64\040PBE"
#define CPUID2_BITS                                                                 \
	"\020"                                                                     \
	"\001SSE3\002PCLMULQDQ\003DTES64\004MON\005DS_CPL\006VMX\007SMX\010EST"      \
	"\011TM2\012SSSE3\013CNXT-ID\014SDBG\015FMA\016CX16\017xTPR\020PDCM"        \
	"\021<b16>\022PCID\023DCA\024SSE4.1\025SSE4.2\026x2APIC\027MOVBE\030POPCNT"  \
	"\031TSCDLT\032AESNI\033XSAVE\034OSXSAVE\035AVX\036F16C\037RDRAND\040HV"

static void cpuid_string(u_int leaf, char out[13], int order_ebx_ecx_edx)
{
	u_int r[4];
	do_cpuid(leaf, r);
	u_int words[3] = { r[1], order_ebx_ecx_edx ? r[2] : r[3], order_ebx_ecx_edx ? r[3] : r[2] };
	memcpy(out, words, 12);
	out[12] = '\0';
}

KERNEL_FN void identify_cpu(void)
{
	u_int r[4];
	char brand[49];

	do_cpuid(0, r);
	cpu_high = r[0];
	cpuid_string(0, cpu_vendor, 0);        /* vendor is EBX, EDX, ECX */
	do_cpuid(1, r);
	cpu_id = r[0];
	cpu_feature2 = r[2];
	cpu_feature = r[3];
	brand[0] = '\0';
	do_cpuid(0x80000000, r);
	if (r[0] >= 0x80000004) {
		for (u_int i = 0; i < 3; i++) {
			do_cpuid(0x80000002 + i, r);
			memcpy(brand + 16 * i, r, 16);
		}
		brand[48] = '\0';
	}
	/* FreeBSD's identcpu lines, as its console shows them. */
	printf("CPU: %s (K8-class CPU)\n", brand);
	printf("  Origin=\"%s\"  Id=0x%x  Family=0x%x  Model=0x%x  Stepping=%u\n", cpu_vendor,
	    cpu_id, ((cpu_id >> 8) & 0xf) + ((cpu_id >> 20) & 0xff),
	    ((cpu_id >> 4) & 0xf) | ((cpu_id >> 12) & 0xf0), cpu_id & 0xf);
	/* %b is FreeBSD's kernel printf's, which GCC's format check does not know. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat"
#pragma GCC diagnostic ignored "-Wformat-extra-args"
	printf("  Features=0x%b\n", cpu_feature, CPUID_BITS);
	printf("  Features2=0x%b\n", cpu_feature2, CPUID2_BITS);
#pragma GCC diagnostic pop
	if (cpu_feature2 & CPUID2_HV) {
		vm_guest = VM_GUEST_VM;
		do_cpuid(0x40000000, r);
		hv_high = r[0];
		cpuid_string(0x40000000, hv_vendor, 1);  /* hypervisor: EBX, ECX, EDX */
		if (memcmp(hv_vendor, "KVMKVMKVM", 9) == 0)
			vm_guest = VM_GUEST_KVM;
		printf("Hypervisor: Origin = \"%s\"\n", hv_vendor);
	}
}

/* kbu.scenario=NAME anywhere among the words of the command line. */
static void parse_cmdline(const char *cmd)
{
	static const char key[] = "kbu.scenario=";
	const char *p = cmd;

	while (*p) {
		while (*p == ' ')
			p++;
		const char *w = p;
		while (*p && *p != ' ')
			p++;
		size_t wlen = (size_t)(p - w);
		if (wlen < sizeof(key) - 1 || strncmp(w, key, sizeof(key) - 1) != 0)
			continue;
		const char *v = w + sizeof(key) - 1;
		size_t vlen = wlen - (sizeof(key) - 1);
		for (size_t i = 0; i < nitems(scenarios); i++) {
			if (strnlen(scenarios[i].name, 32) == vlen && strncmp(v, scenarios[i].name, vlen) == 0) {
				boot_scenario = scenarios[i].sc;
				boot_scenario_name = scenarios[i].name;
				goto next;
			}
		}
		char bad[32];
		size_t blen = vlen < sizeof(bad) - 1 ? vlen : sizeof(bad) - 1;
		memcpy(bad, v, blen);
		bad[blen] = '\0';
		harness_printf("kbu-guest: scenario %s\n", bad);
		panic("kbu-guest: unknown scenario \"%s\" (known: ok tsc timecounter x2apic mptable mpcorrupt pagefault)", bad);
next:;
	}
}

#define MEMMAP_MAX_ENTRIES 128
#define E820_TYPE_RAM 1

/* Version 1 start info carries an E820-style map: sum its RAM like FreeBSD's "real memory". */
static void read_memmap(const struct hvm_start_info *si)
{
	if (si->version < 1 || si->memmap_paddr == 0 || si->memmap_entries == 0)
		return;
	uint64_t n = si->memmap_entries;
	if (n > MEMMAP_MAX_ENTRIES ||
	    si->memmap_paddr + n * sizeof(struct hvm_memmap_table_entry) > KERNBASE_MAP_SIZE)
		panic("hvm_start_info: memory map at 0x%lx with %lu entries is outside the mapped 1 GiB",
		    si->memmap_paddr, n);
	const struct hvm_memmap_table_entry *e = PHYS_TO_KVA(si->memmap_paddr);
	for (uint64_t i = 0; i < n; i++)
		if (e[i].type == E820_TYPE_RAM)
			realmem += e[i].size;
	printf("real memory  = %lu (%lu MB)\n", realmem, realmem >> 20);
	printf("avail memory = %lu (%lu MB)\n", realmem - KERNLOAD, (realmem - KERNLOAD) >> 20);
}

/* The start info and everything it points to must sit in the KERNBASE map. */
static void read_start_info(uint64_t paddr)
{
	if (paddr == 0 || paddr + sizeof(struct hvm_start_info) > KERNBASE_MAP_SIZE)
		panic("hvm_start_info at 0x%lx is outside the mapped 1 GiB", paddr);
	start_info = PHYS_TO_KVA(paddr);
	if (start_info->magic != XEN_HVM_START_MAGIC_VALUE)
		panic("hvm_start_info at 0x%lx: magic 0x%x, expected 0x%x", paddr,
		    start_info->magic, XEN_HVM_START_MAGIC_VALUE);
	read_memmap(start_info);
	uint64_t cp = start_info->cmdline_paddr;
	if (cp == 0)
		return;
	if (cp + sizeof(kern_cmdline) > KERNBASE_MAP_SIZE)
		panic("hvm_start_info: cmdline at 0x%lx is outside the mapped 1 GiB", cp);
	const char *src = PHYS_TO_KVA(cp);
	size_t n = strnlen(src, sizeof(kern_cmdline) - 1);
	memcpy(kern_cmdline, src, n);
	kern_cmdline[n] = '\0';
}

/* Machine-dependent start: console, traps, message buffer, start info, CPU identification. */
KERNEL_FN void hammer_time(vm_paddr_t start_info_paddr)
{
	cninit();
	idt_init();
	msgbuf_init();
	printf("---<<BOOT>>---\n");
	harness_printf("kbu-guest: a test kernel in FreeBSD 14.2's shape (amd64, PVH)\n");
	read_start_info(start_info_paddr);
	parse_cmdline(kern_cmdline);
	harness_printf("kbu-guest: scenario %s\n", boot_scenario_name);
	identify_cpu();
}

/* Called by start_kernel with the start info's physical address (EBX at the PVH entry). */
KERNEL_FN void hammer_time_xen(vm_paddr_t start_info_paddr)
{
	hammer_time(start_info_paddr);
}

/*
 * A driver attach that follows a pointer into unmapped memory, like the
 * uart0 fault of seeds/001: nothing is mapped between 1 GiB and the LAPIC's GiB.
 */
KERNEL_FN void uart_bus_attach(void)
{
	struct uart_softc { uint64_t pad[4]; uint32_t sc_rxbuf; } *sc = (void *)0x40000000;
	printf("uart0: <16550 or compatible> at port 0x3f8 irq 4 flags 0x10 on isa0\n");
	(void)*(volatile uint32_t *)&sc->sc_rxbuf;
}

static void __dead2 boot_idle(void)
{
	(void)lapic_timer_start();
	harness_printf("kbu-guest: idle\n");
	cpu_idle();
}

/*
 * The SYSINIT order that matters here: CPU and TSC probing, the APIC
 * enumerator (MP table), the BSP's local APIC, the I/O APICs, timecounters.
 */
KERNEL_FN void mi_startup(void)
{
	probe_tsc_freq_early();
	i8254_init();
	apic_init();
	if (boot_scenario == SC_MPTABLE)
		boot_idle();

	/* The "tsc" boot keeps FreeBSD's order: lapic_init before any TSC calibration. */
	if (boot_scenario != SC_TSC && tsc_freq == 0)
		tsc_calibrate_i8254();
	apic_setup_local();
	apic_setup_io();

	if (boot_scenario != SC_TIMECOUNTER)
		tc_init(&i8254_timecounter);
	lapic_calibrate_timer();
	if (boot_scenario == SC_PAGEFAULT)
		uart_bus_attach();
	boot_idle();
}
