/*
 * kbu: the ACPI tables a firmware leaves in guest memory, read the way a
 * kernel finds them: the RSDP (from the PVH start info's rsdp_paddr when
 * there is one, else the first KiB of the EBDA and 0xE0000-0xFFFFF on 16-byte
 * boundaries), the XSDT or RSDT, and every table they list, plus the DSDT and
 * FACS the FADT points at.
 *
 * Decoded: RSDP v1 and v2 (both checksums), RSDT/XSDT, the MADT with every
 * entry type a PC has (processor local APIC, local x2APIC, I/O APIC,
 * interrupt source override, NMI source, local APIC NMI, local x2APIC NMI,
 * local APIC address override; other types listed by type and length), and
 * the FADT's essentials (revision, flags such as HW_REDUCED_ACPI, DSDT and
 * X_DSDT, the PM timer block, the IA-PC boot architecture flags). Every
 * checksum and every length is verified; each defect is a finding with a
 * stable code ("acpi.table_checksum_bad"), never a crash. A read the source
 * fails (a stub that went away) is returned as that error, never as "no
 * RSDP".
 */
#ifndef KBU_ACPI_H
#define KBU_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"
#include "kbu/findings.h"
#include "kbu/report.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_mem;
struct kbu_pvh;

#define KBU_ACPI_RSDP_V1_SIZE 20
#define KBU_ACPI_RSDP_V2_SIZE 36
#define KBU_ACPI_HEADER_SIZE 36
/* A length above this is not a table a firmware wrote: not read. */
#define KBU_ACPI_MAX_TABLE_LEN (4u << 20)
/* XSDT/RSDT entries beyond this are counted, not followed. */
#define KBU_ACPI_MAX_TABLES 64
#define KBU_ACPI_MAX_MADT_ENTRIES 1024
#define KBU_ACPI_MAX_FINDINGS 100

/* Where a finding attaches in the report. */
enum { KBU_ACPI_SEC_RSDP = 0, KBU_ACPI_SEC_TABLES, KBU_ACPI_SEC_MADT, KBU_ACPI_SEC_FADT,
       KBU_ACPI_SEC_SUMMARY };

struct kbu_acpi_rsdp {
	uint64_t addr;
	char how[240];        /* how it was found: the start info, the EBDA, the BIOS area, given */
	char oem_id[7];
	uint8_t revision;     /* 0: ACPI 1.0 (20 bytes); 2: ACPI 2.0+ (length, XSDT) */
	uint8_t checksum;
	uint8_t sum;          /* of the first 20 bytes: 0 when valid */
	uint32_t rsdt;
	uint32_t length;      /* revision >= 2 */
	uint64_t xsdt;        /* revision >= 2 */
	uint8_t ext_checksum;
	uint8_t ext_sum;      /* of `length` bytes: 0 when valid */
	int ext_checked;      /* 1: the extended checksum was computed */
	int v2_missing;       /* revision >= 2 but the 36-byte form runs past guest memory */
};

enum kbu_acpi_table_state {
	KBU_ACPI_T_OK = 0,
	KBU_ACPI_T_UNREADABLE,  /* its header is not in guest memory */
	KBU_ACPI_T_BAD_LENGTH,  /* shorter than its header, or implausibly long: not read */
	KBU_ACPI_T_TRUNCATED,   /* its length runs past guest memory: checksum not verified */
};

struct kbu_acpi_table {
	char sig[5];          /* printable: other bytes shown as '?' */
	uint64_t addr;
	char via[24];         /* "RSDP", "XSDT[1]", "RSDT[0]", "FADT X_DSDT", "FADT FIRMWARE_CTRL" */
	int state;            /* enum kbu_acpi_table_state */
	uint32_t length;
	uint8_t revision, checksum, sum;
	int sum_checked;      /* 1: the checksum was computed over `length` bytes */
	int has_checksum;     /* 0 for the FACS, which has none */
	char oem_id[7], oem_table_id[9], creator_id[5];
	uint32_t oem_revision, creator_revision;
	uint8_t *data;        /* all `length` bytes when readable (state OK), else NULL */
};

enum kbu_madt_type {
	KBU_MADT_LAPIC = 0,
	KBU_MADT_IOAPIC = 1,
	KBU_MADT_ISO = 2,          /* interrupt source override */
	KBU_MADT_NMI_SOURCE = 3,
	KBU_MADT_LAPIC_NMI = 4,
	KBU_MADT_LAPIC_ADDR = 5,   /* local APIC address override */
	KBU_MADT_X2APIC = 9,
	KBU_MADT_X2APIC_NMI = 10,
};

struct kbu_madt_entry {
	uint32_t offset;      /* from the start of the MADT */
	uint8_t type, len;
	int decoded;          /* 0: unknown type, or too short for its type */
	union {
		struct { uint8_t uid, apic_id; uint32_t flags; } lapic;
		struct { uint8_t id; uint32_t addr, gsi_base; } ioapic;
		struct { uint8_t bus, source; uint32_t gsi; uint16_t flags; } iso;
		struct { uint16_t flags; uint32_t gsi; } nmi;
		struct { uint8_t uid; uint16_t flags; uint8_t lint; } lapic_nmi;
		struct { uint64_t addr; } lapic_addr;
		struct { uint32_t x2apic_id, flags, uid; } x2apic;
		struct { uint16_t flags; uint32_t uid; uint8_t lint; } x2apic_nmi;
	} u;
	uint8_t raw[16];      /* the first min(len, 16) bytes */
};

struct kbu_acpi_madt {
	int present;
	uint64_t addr;
	uint32_t lapic_addr;      /* the header's */
	uint64_t lapic_addr_eff;  /* after a local APIC address override */
	uint32_t flags;           /* bit 0: PCAT_COMPAT (dual 8259s) */
	struct kbu_madt_entry *entries;
	size_t nentries;
	int walk_complete;        /* the walk reached the table's end exactly */
	size_t ncpus;             /* processor entries (local APIC and x2APIC) */
	size_t ncpus_enabled;     /* of them enabled or online-capable */
	size_t nioapics;
};

struct kbu_acpi_gas {         /* Generic Address Structure */
	uint8_t space, bit_width, bit_offset, access_size;
	uint64_t addr;
};

struct kbu_acpi_fadt {
	int present;
	uint64_t addr;
	uint8_t revision;
	uint32_t length;
	uint8_t minor;            /* FADT minor version (length >= 132) */
	uint32_t firmware_ctrl, dsdt;
	uint64_t x_firmware_ctrl, x_dsdt;
	int has_x_firmware_ctrl, has_x_dsdt;  /* the table is long enough for them */
	uint8_t pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint32_t pm_tmr_blk;
	uint8_t pm_tmr_len;
	struct kbu_acpi_gas x_pm_tmr_blk;
	int has_x_pm_tmr_blk;
	uint16_t iapc_boot_arch;  /* length >= 111 */
	int has_iapc_boot_arch;
	uint32_t flags;           /* length >= 116 */
	int has_flags;
	struct kbu_acpi_gas reset_reg;
	uint8_t reset_value;
	int has_reset_reg;
	char hypervisor_id[9];    /* length >= 276 (ACPI 6.0) */
	uint64_t dsdt_used;       /* what a kernel uses: X_DSDT when set, else DSDT */
};

/* FADT flags the report names. */
#define KBU_FADT_HW_REDUCED_ACPI (1u << 20)
#define KBU_FADT_TMR_VAL_EXT (1u << 8)
#define KBU_FADT_RESET_REG_SUP (1u << 10)

struct kbu_acpi {
	int found;                /* 0: no RSDP anywhere (no ACPI): nothing else is set */
	char not_found[320];      /* when !found: where it looked */
	struct kbu_acpi_rsdp rsdp;
	const char *root_sig;     /* "XSDT" or "RSDT": the table whose list was followed */
	uint64_t root_addr;
	size_t root_entries;      /* entries the root lists (some may not be followed) */
	struct kbu_acpi_table *tables;  /* every table reached, the root itself first */
	size_t ntables;
	struct kbu_acpi_madt madt;
	struct kbu_acpi_fadt fadt;
	struct kbu_finding_rec *findings;
	size_t nfindings;
	size_t nsuppressed;
};

struct kbu_acpi_opts {
	int have_rsdp;            /* look only at rsdp_addr */
	uint64_t rsdp_addr;
	const struct kbu_pvh *pvh;  /* a start info already decoded (NULL: none known) */
	int vcpus;                /* the VM's vCPU count when known (> 0): compared with the MADT */
};

/*
 * Finds the RSDP and reads every table. Returns 0 with a->found = 0 when no
 * RSDP exists (and a->not_found says where it looked); -1 with err set when
 * the source failed, when none of the places to search is in its memory,
 * or when opts->have_rsdp and that address holds no RSDP.
 */
int kbu_acpi_read(struct kbu_mem *m, const struct kbu_acpi_opts *opts, struct kbu_acpi *a,
		  struct kbu_err *err);
void kbu_acpi_free(struct kbu_acpi *a);

/*
 * Searches only for the RSDP the standard way (EBDA's first KiB, then
 * 0xE0000-0xFFFFF on 16-byte boundaries) and decodes it. Returns 1 found,
 * 0 not found (*where_looked says where), -1 the source failed (err set).
 * A signature with a bad checksum is used when it is the only one.
 */
int kbu_acpi_find_rsdp(struct kbu_mem *m, struct kbu_acpi_rsdp *r, char *where_looked,
		       size_t wlen, struct kbu_err *err);

/* The table with this signature (the n-th of them, from 0), or NULL. */
const struct kbu_acpi_table *kbu_acpi_table(const struct kbu_acpi *a, const char *sig, size_t n);

/* "processor local APIC", "I/O APIC", ... or NULL for a type kbu does not decode. */
const char *kbu_madt_type_name(uint8_t type);

/*
 * Report: the RSDP, the table list, the MADT and the FADT (sig NULL), or one
 * table (sig "APIC", "FACP", "DSDT", "XSDT", "RSDT", "RSDP", any other:
 * header and bytes). Returns -1 with err (KBU_ENOTFOUND) when sig names no
 * table the firmware left.
 */
int kbu_acpi_report(const struct kbu_acpi *a, const char *sig, struct kbu_node *node,
		    struct kbu_err *err);

#ifdef __cplusplus
}
#endif
#endif
