/* Intel MultiProcessor Specification 1.4 structures (FreeBSD's mptable.h names). */
#ifndef GUEST_MPTABLE_H
#define GUEST_MPTABLE_H

#include "guest.h"

typedef struct mpfps {
	char signature[4];          /* "_MP_" */
	uint32_t pap;               /* physical address of the config table */
	u_char length;              /* in 16-byte units */
	u_char spec_rev;
	u_char checksum;
	u_char config_type;
	u_char mpfb2;
	u_char mpfb3;
	u_char mpfb4;
	u_char mpfb5;
} __attribute__((packed)) *mpfps_t;

typedef struct mpct {
	char signature[4];          /* "PCMP" */
	u_short base_table_length;
	u_char spec_rev;
	u_char checksum;
	char oem_id[8];
	char product_id[12];
	uint32_t oem_table_pointer;
	u_short oem_table_size;
	u_short entry_count;
	uint32_t apic_address;
	u_short extended_table_length;
	u_char extended_table_checksum;
	u_char reserved;
} __attribute__((packed)) *mpcth_t;

#define MPCT_ENTRY_PROCESSOR 0
#define MPCT_ENTRY_BUS       1
#define MPCT_ENTRY_IOAPIC    2
#define MPCT_ENTRY_INT       3
#define MPCT_ENTRY_LOCAL_INT 4

typedef struct PROCENTRY {
	u_char type;
	u_char apic_id;
	u_char apic_version;
	u_char cpu_flags;
	uint32_t cpu_signature;
	uint32_t feature_flags;
	uint32_t reserved1;
	uint32_t reserved2;
} __attribute__((packed)) *proc_entry_ptr;

#define PROCENTRY_FLAG_EN 0x01
#define PROCENTRY_FLAG_BP 0x02

typedef struct BUSENTRY {
	u_char type;
	u_char bus_id;
	char bus_type[6];
} __attribute__((packed)) *bus_entry_ptr;

typedef struct IOAPICENTRY {
	u_char type;
	u_char apic_id;
	u_char apic_version;
	u_char apic_flags;
	uint32_t apic_address;
} __attribute__((packed)) *io_apic_entry_ptr;

typedef struct INTENTRY {
	u_char type;
	u_char int_type;
	u_short int_flags;
	u_char src_bus_id;
	u_char src_bus_irq;
	u_char dst_apic_id;
	u_char dst_apic_int;
} __attribute__((packed)) *int_entry_ptr;

#define IOAPICENTRY_FLAG_EN 0x01

typedef void mptable_entry_handler(u_char *entry, void *arg);

extern int mptable_nbusses, mptable_nioapics, mptable_nints;

int mptable_probe(void);
int mptable_probe_cpus(void);
int mptable_setup_local(void);
int mptable_setup_io(void);
void apic_init(void);
void apic_setup_local(void);
void apic_setup_io(void);

#endif
