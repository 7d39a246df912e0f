/*
 * PVH entry of the kbu test kernel, shaped like FreeBSD's amd64 xen-locore.S:
 * QEMU's firmware enters xen_start32 in 32-bit protected mode with paging off
 * and EBX = physical address of struct hvm_start_info.  We run at physical
 * addresses (symbol - KERNBASE) until paging is on, then jump to the high half.
 */
#include "param.h"

/* Unwind info goes to .debug_frame: the linker script drops .eh_frame. */
	.cfi_sections .debug_frame

#define XEN_ELFNOTE_HYPERCALL_PAGE 2
#define XEN_ELFNOTE_VIRT_BASE      3
#define XEN_ELFNOTE_PADDR_OFFSET   4
#define XEN_ELFNOTE_XEN_VERSION    5
#define XEN_ELFNOTE_GUEST_OS       6
#define XEN_ELFNOTE_GUEST_VERSION  7
#define XEN_ELFNOTE_LOADER         8
#define XEN_ELFNOTE_PAE_MODE       9
#define XEN_ELFNOTE_FEATURES       10
#define XEN_ELFNOTE_BSD_SYMTAB     11
#define XEN_ELFNOTE_HV_START_LOW   12
#define XEN_ELFNOTE_L1_MFN_VALID   13
#define XEN_ELFNOTE_SUSPEND_CANCEL 14
#define XEN_ELFNOTE_PHYS32_ENTRY   18

/* One "Xen" note; 4-byte alignment because QEMU steps notes by the PT_NOTE p_align. */
.macro ELFNOTE type, dir, value:vararg
	.pushsection .note.Xen, "a", @note
	.p2align 2
	.long 2f - 1f
	.long 4f - 3f
	.long \type
1:	.asciz "Xen"
2:	.p2align 2
3:	\dir \value
4:	.p2align 2
	.popsection
.endm

/* The notes of a FreeBSD 14.2 amd64 kernel (sys/amd64/amd64/xen-locore.S), in its order. */
	ELFNOTE XEN_ELFNOTE_GUEST_OS,       .asciz, "FreeBSD"
	ELFNOTE XEN_ELFNOTE_GUEST_VERSION,  .asciz, "0x156490"
	ELFNOTE XEN_ELFNOTE_XEN_VERSION,    .asciz, "xen-3.0"
	ELFNOTE XEN_ELFNOTE_VIRT_BASE,      .quad,  KERNBASE
	ELFNOTE XEN_ELFNOTE_PADDR_OFFSET,   .quad,  0
	ELFNOTE XEN_ELFNOTE_HYPERCALL_PAGE, .quad,  hypercall_page
	ELFNOTE XEN_ELFNOTE_HV_START_LOW,   .quad,  HYPERVISOR_VIRT_START
	ELFNOTE XEN_ELFNOTE_FEATURES,       .asciz, "writable_descriptor_tables|auto_translated_physmap|supervisor_mode_kernel|hvm_callback_vector"
	ELFNOTE XEN_ELFNOTE_PAE_MODE,       .asciz, "yes"
	ELFNOTE XEN_ELFNOTE_L1_MFN_VALID,   .long,  PG_V, PG_V
	ELFNOTE XEN_ELFNOTE_LOADER,         .asciz, "generic"
	ELFNOTE XEN_ELFNOTE_SUSPEND_CANCEL, .long,  0
	ELFNOTE XEN_ELFNOTE_BSD_SYMTAB,     .asciz, "yes"
	ELFNOTE XEN_ELFNOTE_PHYS32_ENTRY,   .long,  xen_start32 - KERNBASE

#define PHYS(sym) ((sym) - KERNBASE)
#define PTE_LINK (PG_V | PG_RW)
#define BOOT_PT_PAGES 6 /* pml4, pdpt lo/hi, pd lo/apic, pt apic */

	.section .text.locore, "ax", @progbits

/* 32-bit entry: runs at its physical address, paging off, interrupts off. */
	.code32
	.globl xen_start32
	.type xen_start32, @function
xen_start32:
	cli
	cld
	/* EBX (the start info) stays untouched until start_kernel hands it on. */

	/* Page tables live in .bss; clear them rather than trust the loader. */
	movl	$PHYS(boot_pagetables), %edi
	movl	$(BOOT_PT_PAGES * PAGE_SIZE / 4), %ecx
	xorl	%eax, %eax
	rep stosl

	/* PML4: slot 0 = identity map, slot 511 = KERNBASE map. */
	movl	$PHYS(boot_pdpt_lo) + PTE_LINK, PHYS(boot_pml4)
	movl	$PHYS(boot_pdpt_hi) + PTE_LINK, PHYS(boot_pml4) + 511 * 8

	/* Identity: low 1 GiB through boot_pd_lo, 4th GiB (LAPIC) through boot_pd_apic. */
	movl	$PHYS(boot_pd_lo) + PTE_LINK, PHYS(boot_pdpt_lo)
	movl	$PHYS(boot_pd_apic) + PTE_LINK, PHYS(boot_pdpt_lo) + 3 * 8
	/* KERNBASE (PDPT slot 510) maps the same physical 1 GiB. */
	movl	$PHYS(boot_pd_lo) + PTE_LINK, PHYS(boot_pdpt_hi) + 510 * 8

	/* 512 x 2 MiB pages: physical 0 .. 1 GiB. */
	movl	$PHYS(boot_pd_lo), %edi
	movl	$(PG_V | PG_RW | PG_PS), %eax
	movl	$512, %ecx
1:	movl	%eax, (%edi)
	addl	$NBPDR, %eax
	addl	$8, %edi
	loop	1b

	/* The LAPIC page, 4 KiB, uncached: PD slot 503 of the 4th GiB. */
	movl	$PHYS(boot_pt_apic) + PTE_LINK, PHYS(boot_pd_apic) + ((LAPIC_PADDR >> 21) & 511) * 8
	movl	$(LAPIC_PADDR | PG_V | PG_RW | PG_NC_PWT | PG_NC_PCD), PHYS(boot_pt_apic) + ((LAPIC_PADDR >> 12) & 511) * 8

	/* PAE, CR3, EFER.LME, then paging: long mode (compatibility) until the far jump. */
	movl	%cr4, %eax
	orl	$CR4_PAE, %eax
	movl	%eax, %cr4
	movl	$PHYS(boot_pml4), %eax
	movl	%eax, %cr3
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_LME, %eax
	wrmsr
	lgdt	PHYS(gdtdesc32)
	movl	%cr0, %eax
	orl	$(CR0_PE | CR0_PG), %eax
	movl	%eax, %cr0
	ljmp	$GSEL_KCODE, $PHYS(xen_start64_lo)
	.size xen_start32, . - xen_start32

	.code64
xen_start64_lo:
	movabsq	$start_kernel, %rax
	jmp	*%rax

/*
 * 64-bit, high half: final GDT, stack, then hammer_time_xen(start info) and
 * mi_startup().  A local symbol, as FreeBSD's own start_kernel is: a name a
 * rule "start_kernel means Linux" trips over.
 */
	.type start_kernel, @function
start_kernel:
	.cfi_startproc
	.cfi_undefined rip
	lgdt	gdtdesc64(%rip)
	movl	$GSEL_KDATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	xorl	%eax, %eax
	movl	%eax, %fs
	movl	%eax, %gs
	leaq	bootstack_top(%rip), %rsp
	xorl	%ebp, %ebp
	movl	%ebx, %edi
	call	hammer_time_xen
	call	mi_startup
	call	cpu_halt_forever
	.cfi_endproc
	.size start_kernel, . - start_kernel

/* Xen's hypercall page (the HYPERCALL_PAGE note names it); unused under QEMU. */
	.p2align 12
	.globl hypercall_page
	.type hypercall_page, @object
hypercall_page:
	.fill	PAGE_SIZE, 1, 0xcc
	.size hypercall_page, PAGE_SIZE

/* Where panic ends: interrupts off, halted for good. */
	.globl cpu_halt_forever
	.type cpu_halt_forever, @function
cpu_halt_forever:
	.cfi_startproc
1:	cli
	hlt
	jmp	1b
	.cfi_endproc
	.size cpu_halt_forever, . - cpu_halt_forever

/* Where a healthy boot ends: the idle loop, interrupts on (the LAPIC timer ticks). */
	.globl cpu_idle
	.type cpu_idle, @function
cpu_idle:
	.cfi_startproc
	/* FreeBSD's cpu_idle_hlt: interrupts on, so the event timer wakes it */
1:	sti
	hlt
	jmp	1b
	.cfi_endproc
	.size cpu_idle, . - cpu_idle

/*
 * Exception entry: one stub per vector 0-31 pushes a zero error code when the
 * CPU does not, then the vector, and joins alltraps, which builds a
 * struct trapframe (trap.c) and calls trap().  Nothing returns: trap() panics.
 */
	.p2align 4
	.globl trap_stubs
trap_stubs:
	.set vec, 0
	.rept 32
	.p2align 4
	.if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq	$0
	.endif
	pushq	$vec
	jmp	alltraps
	.set vec, vec + 1
	.endr

/*
 * The local APIC's timer interrupt: count the tick, send the EOI through the
 * register's mapping (lapic_eoi), return to what was interrupted. CFI
 * describes the interrupt frame, so GDB unwinds from here into the idle loop.
 */
	.p2align 4
	.globl lapic_timer_intr
	.type lapic_timer_intr, @function
lapic_timer_intr:
	.cfi_startproc simple
	.cfi_signal_frame
	/* CFA = the interrupted rsp (rsp + 24); rip saved at rsp + 0 */
	.cfi_escape 0x0f, 3, 0x77, 0x18, 0x06
	.cfi_escape 0x10, 16, 2, 0x77, 0x00
	pushq	%rax
	.cfi_escape 0x0f, 3, 0x77, 0x20, 0x06
	.cfi_escape 0x10, 16, 2, 0x77, 0x08
	.cfi_offset rax, -8
	incq	lapic_ticks(%rip)
	movq	lapic_eoi(%rip), %rax
	movl	$0, (%rax)
	popq	%rax
	.cfi_escape 0x0f, 3, 0x77, 0x18, 0x06
	.cfi_escape 0x10, 16, 2, 0x77, 0x00
	iretq
	.cfi_endproc
	.size lapic_timer_intr, . - lapic_timer_intr

	.p2align 4
	.globl lapic_spurious_intr
	.type lapic_spurious_intr, @function
lapic_spurious_intr:
	iretq
	.size lapic_spurious_intr, . - lapic_spurious_intr

/* CFI describes the interrupted frame from the trapframe, so GDB unwinds through a trap. */
alltraps:
	.cfi_startproc simple
	.cfi_signal_frame
	.cfi_def_cfa rsp, 0
	pushq	%rax
	pushq	%rbx
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%rbp
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, %rdi
	movq	%rsp, %rbx
	/* CFA = interrupted rsp (tf_rsp, rbx+160); rip = tf_rip (rbx+136); rbp = tf_rbp (rbx+64). */
	.cfi_escape 0x0f, 4, 0x73, 0xa0, 0x01, 0x06
	.cfi_escape 0x10, 16, 3, 0x73, 0x88, 0x01
	.cfi_escape 0x10, 6, 3, 0x73, 0xc0, 0x00
	andq	$-16, %rsp
	call	trap
	call	cpu_halt_forever
	.cfi_endproc

	.section .rodata
	.p2align 3
gdt:
	.quad	0
	.quad	0x00af9a000000ffff	/* GSEL_KCODE: 64-bit code, DPL 0 */
	.quad	0x00cf92000000ffff	/* GSEL_KDATA: flat data */
gdt_end:
gdtdesc32:
	.word	gdt_end - gdt - 1
	.long	PHYS(gdt)
	.p2align 3
gdtdesc64:
	.word	gdt_end - gdt - 1
	.quad	gdt

	.bss
	.p2align 12
	.globl boot_pagetables, boot_pml4
boot_pagetables:
boot_pml4:	.skip PAGE_SIZE
boot_pdpt_lo:	.skip PAGE_SIZE
boot_pdpt_hi:	.skip PAGE_SIZE
boot_pd_lo:	.skip PAGE_SIZE
boot_pd_apic:	.skip PAGE_SIZE
boot_pt_apic:	.skip PAGE_SIZE
	.p2align 4
	.globl bootstack
bootstack:	.skip BOOT_STACK_SIZE
bootstack_top:
