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
#define T_PAGEFLT 14

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
	printf("\n\nFatal trap %u: %s while in kernel mode\n", no, msg);
	if (no == T_PAGEFLT)
		printf("fault virtual address   = 0x%lx\nfault code              = supervisor %s, %s\n",
		    cr2, tf->tf_err & 2 ? "write data" : "read data",
		    tf->tf_err & 1 ? "protection violation" : "page not present");
	printf("instruction pointer     = 0x%lx:0x%lx\n", tf->tf_cs, tf->tf_rip);
	printf("stack pointer           = 0x%lx:0x%lx\n", tf->tf_ss, tf->tf_rsp);
	printf("frame pointer           = 0x%lx\n", tf->tf_rbp);
	printf("error code              = 0x%lx\n", tf->tf_err);
	panic("%s", msg);
}
