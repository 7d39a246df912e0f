/* Layout constants shared by locore.S, the linker script and C. */
#ifndef GUEST_PARAM_H
#define GUEST_PARAM_H

#define KERNBASE        0xffffffff80000000  /* high map of physical 0 (FreeBSD's KERNBASE) */
#define KERNLOAD        0x200000            /* physical load address of the image */
#define PAGE_SIZE       0x1000
#define NBPDR           0x200000            /* bytes mapped by one 2 MiB PD entry */
#define LAPIC_PADDR     0xfee00000
#define BOOT_STACK_SIZE 0x4000
#define HYPERVISOR_VIRT_START 0xffff800000000000  /* Xen's HV_START_LOW on amd64 */

/* Page-table entry bits. */
#define PG_V            0x001
#define PG_RW           0x002
#define PG_NC_PWT       0x008
#define PG_NC_PCD       0x010
#define PG_PS           0x080

/* Control-register and MSR bits used to enter long mode. */
#define CR0_PE          0x00000001
#define CR0_PG          0x80000000
#define CR4_PAE         0x00000020
#define MSR_EFER        0xc0000080
#define EFER_LME        0x00000100

/* GDT selectors set up by locore. */
#define GSEL_KCODE      0x08
#define GSEL_KDATA      0x10

#endif
