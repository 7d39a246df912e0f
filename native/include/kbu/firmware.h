/*
 * kbu: which firmware (or VMM) wrote the tables a guest finds, decided from
 * what it left in memory: the MP table's OEM and product ids and where it
 * sits, the ACPI OEM, and the start info's memory map when one is known.
 *
 *   qboot (QEMU -M microvm's default)  MP table "QBOOT" at 0x9fc00, entry_count 0;
 *                                      ACPI only with acpi=on; its memory map ends
 *                                      with a zero-size placeholder entry
 *   SeaBIOS (bios-microvm.bin)         MP table "BOCHSCPU" "0.1" in the BIOS area with
 *                                      one processor whatever -smp says; ACPI "BOCHS"
 *   Firecracker                        MP table "FC" "000000000000" (at 0x9fc00 in
 *                                      the releases that place it there); ACPI "FIRECK"
 *
 * One function other commands call: kbu_firmware_identify. It reuses what the
 * caller already read and looks up the rest itself.
 */
#ifndef KBU_FIRMWARE_H
#define KBU_FIRMWARE_H

#include <stdint.h>

#include "kbu/err.h"
#include "kbu/report.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_mem;
struct kbu_mptable;
struct kbu_acpi;
struct kbu_pvh;

enum kbu_fw_kind {
	KBU_FW_UNKNOWN = 0,
	KBU_FW_QBOOT,
	KBU_FW_SEABIOS,
	KBU_FW_FIRECRACKER,
};

/* What the firmware left, as seen. -1 in a yes/no field: not looked at or not knowable. */
struct kbu_fw_facts {
	int mp;                  /* an MP table: 1 yes, 0 none, -1 unknown */
	uint64_t mp_fp, mp_table;
	char mp_oem[33], mp_product[49]; /* escaped as in struct kbu_mp_header */
	int mp_entry_count;      /* -1 unknown */
	int mp_cpus;             /* processor entries, -1 unknown (not walked) */
	int acpi;                /* an RSDP: 1 yes, 0 none, -1 unknown */
	uint64_t rsdp;
	char acpi_oem[7];
	char hypervisor_id[9];   /* the FADT's hypervisor vendor identity, when there is one */
	int start_info;          /* a PVH start info was given: 1, else 0 */
	uint64_t start_info_addr;
	int e820_entries;
	int e820_zero_entry;     /* a zero-size entry (qboot's trailing placeholder) */
};

struct kbu_firmware {
	int kind;                /* enum kbu_fw_kind */
	const char *name;        /* "qboot", "SeaBIOS", "Firecracker", "unknown" */
	char how[320];           /* the facts that decided it, one sentence */
	const char *quirk;       /* what that firmware is known to get wrong, or NULL */
	struct kbu_fw_facts seen;
};

/* What a caller already read; any member may be NULL (looked up, or left unknown). */
struct kbu_fw_known {
	const struct kbu_mptable *mp;  /* the walked MP table */
	int mp_absent;                 /* the caller found none: do not search again */
	const struct kbu_acpi *acpi;   /* read ACPI tables (found or not) */
	const struct kbu_pvh *pvh;     /* a decoded start info: its memory map is a fact */
};

/*
 * Gathers the facts (searching for the MP floating pointer and the RSDP when
 * the caller did not) and decides. Returns -1 (err set) only when the source
 * failed; a firmware kbu cannot name is KBU_FW_UNKNOWN with the facts it saw.
 */
int kbu_firmware_identify(struct kbu_mem *m, const struct kbu_fw_known *known,
			  struct kbu_firmware *fw, struct kbu_err *err);

/* The decision alone, from facts (no memory reads). */
void kbu_firmware_decide(const struct kbu_fw_facts *facts, struct kbu_firmware *fw);

/* 1 when CPU 0 still sits at its reset vector: the firmware has not run, so
 * it has written no table yet (0 otherwise, or when the source has no registers). */
int kbu_firmware_not_run_yet(struct kbu_mem *m);

/* A "firmware" section; json_only: fields for JSON, nothing in text. */
void kbu_firmware_report(const struct kbu_firmware *fw, struct kbu_node *node, int json_only);

#ifdef __cplusplus
}
#endif
#endif
