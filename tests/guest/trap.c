/* The IDT: vectors 0-31 fatal traps whose handler reports and panics, as FreeBSD's
 * trap_fatal does; the local APIC's timer and spurious vectors; nothing else. */
#include "guest.h"

struct trapframe {
	uint64_t tf_r15, tf_r14, tf_r13, tf_r12, tf_r11, tf_r10, tf_r9, tf_r8;
	uint64_t tf_rbp, tf_rdi, tf_rsi, tf_rdx, tf_rcx, tf_rbx, tf_rax;
	uint64_t tf_trapno, tf_err;
	uint64_t tf_rip, tf_cs, tf_rflags, tf_rsp, tf_ss;
};

struct gate_descriptor {
	uint16_t gd_looffset;
	uint16_t gd_selector;
	uint8_t gd_ist;
	uint8_t gd_type;          /* P | DPL 0 | interrupt gate */
	uint16_t gd_midoffset;
	uint32_t gd_hioffset;
	uint32_t gd_reserved;
} __attribute__((packed));

#define NTRAPS 32
#define NIDT 256
#define SDT_SYSIGT_P 0x8e
#define IDT_PF 14      /* the page-fault vector */

/* FreeBSD numbers traps its own way (sys/x86/include/trap.h), not by vector: the
 * "Fatal trap N" a porter reads is that number. */
static const u_char freebsd_trapno[NTRAPS] = {
	[0] = 18 /* T_DIVIDE */, [1] = 10 /* T_TRCTRAP */, [2] = 19 /* T_NMI */,
	[3] = 3 /* T_BPTFLT */, [4] = 20 /* T_OFLOW */, [5] = 21 /* T_BOUND */,
	[6] = 1 /* T_PRIVINFLT */, [7] = 22 /* T_DNA */, [8] = 23 /* T_DOUBLEFLT */,
	[9] = 24 /* T_FPOPFLT */, [10] = 25 /* T_TSSFLT */, [11] = 26 /* T_SEGNPFLT */,
	[12] = 27 /* T_STKFLT */, [13] = 9 /* T_PROTFLT */, [14] = 12 /* T_PAGEFLT */,
	[16] = 16 /* T_ARITHTRAP */, [17] = 14 /* T_ALIGNFLT */, [18] = 28 /* T_MCHK */,
	[19] = 29 /* T_XMMFLT */,
};

extern char trap_stubs[], lapic_timer_intr[], lapic_spurious_intr[];
static struct gate_descriptor idt[NIDT];

static void setidt(int vec, const void *fn)
{
	uint64_t off = (uint64_t)(uintptr_t)fn;
	idt[vec] = (struct gate_descriptor){
		.gd_looffset = (uint16_t)off,
		.gd_selector = GSEL_KCODE,
		.gd_type = SDT_SYSIGT_P,
		.gd_midoffset = (uint16_t)(off >> 16),
		.gd_hioffset = (uint32_t)(off >> 32),
	};
}

static const char *const trap_msg[NTRAPS] = {
	[0] = "integer divide fault", [1] = "debug exception", [2] = "nonmaskable interrupt trap",
	[3] = "breakpoint instruction fault", [4] = "overflow trap", [5] = "bounds check fault",
	[6] = "privileged instruction fault", [7] = "FPU device not available",
	[8] = "double fault", [10] = "invalid TSS fault", [11] = "segment not present fault",
	[12] = "stack fault", [13] = "general protection fault", [14] = "page fault",
	[16] = "FPU floating point error", [17] = "alignment fault", [18] = "machine check trap",
	[19] = "SIMD floating point exception", [21] = "control protection fault",
};

KERNEL_FN void idt_init(void)
{
	for (int i = 0; i < NTRAPS; i++)
		setidt(i, trap_stubs + 16 * i);
	setidt(APIC_TIMER_INT, lapic_timer_intr);
	setidt(APIC_SPURIOUS_INT, lapic_spurious_intr);
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) r = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
	__asm__ volatile("lidt %0" : : "m"(r));
}

KERNEL_FN void trap(struct trapframe *tf)
{
	u_int no = (u_int)tf->tf_trapno;
	const char *msg = no < NTRAPS && trap_msg[no] ? trap_msg[no] : "unknown/reserved trap";
	uint64_t cr2;

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	u_int fno = no < NTRAPS && freebsd_trapno[no] ? freebsd_trapno[no] : no;
	printf("\n\nFatal trap %u: %s while in kernel mode\n", fno, msg);
	printf("cpuid = 0; apic id = 00\n");
	if (no == IDT_PF)
		printf("fault virtual address   = 0x%lx\nfault code              = supervisor %s, %s\n",
		    cr2, tf->tf_err & 2 ? "write data" : "read data",
		    tf->tf_err & 1 ? "protection violation" : "page not present");
	printf("instruction pointer     = 0x%lx:0x%lx\n", tf->tf_cs, tf->tf_rip);
	printf("stack pointer           = 0x%lx:0x%lx\n", tf->tf_ss, tf->tf_rsp);
	printf("frame pointer           = 0x%lx\n", tf->tf_rbp);
	printf("error code              = 0x%lx\n", tf->tf_err);
	panic("%s", msg);
}
