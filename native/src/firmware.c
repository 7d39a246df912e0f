/* kbu: naming the firmware from the tables it left. */
#include "kbu/firmware.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kbu/acpi.h"
#include "kbu/mem.h"
#include "kbu/mptable.h"
#include "kbu/pvh.h"
#include "kbu/util.h"
#include "kbu/vcpu.h"
#include "readmem.h"

static void facts_from_mp(const struct kbu_mptable *t, struct kbu_fw_facts *f)
{
	f->mp = t->have_fp ? 1 : 0;
	f->mp_fp = t->fp.addr;
	if (t->have_header) {
		f->mp_table = t->hdr.addr;
		snprintf(f->mp_oem, sizeof(f->mp_oem), "%s", t->hdr.oem_id);
		snprintf(f->mp_product, sizeof(f->mp_product), "%s", t->hdr.product_id);
		f->mp_entry_count = t->hdr.entry_count;
		f->mp_cpus = (int)kbu_mptable_ncpus(t);
	}
}

/* The floating pointer and the config table's header only: no walk, no monitor. */
static int look_for_mp(struct kbu_mem *m, struct kbu_fw_facts *f, struct kbu_err *err)
{
	struct kbu_mp_fp fp;
	if (kbu_mptable_find_fp(m, &fp, err) != 0) {
		if (err->code == KBU_ENOTFOUND) {
			f->mp = 0;
			return 0;
		}
		if (err->code == KBU_EFAULT) /* nowhere to search: cannot tell */
			return 0;
		return -1;
	}
	f->mp = 1;
	f->mp_fp = fp.addr;
	if (fp.feature[0] != 0 || fp.physptr == 0)
		return 0;
	uint8_t h[KBU_MP_HEADER_SIZE];
	int rr = kbu_try_read(m, fp.physptr, h, sizeof(h), err);
	if (rr == KBU_READ_FAILED)
		return kbu_err_prefix(err, "reading the MP config table header at 0x%" PRIx32,
				      fp.physptr);
	if (rr != KBU_READ_OK || memcmp(h, "PCMP", 4) != 0)
		return 0;
	f->mp_table = fp.physptr;
	size_t n;
	for (n = 8; n > 0 && (h[8 + n - 1] == ' ' || h[8 + n - 1] == 0); n--)
		;
	for (size_t i = 0; i < n; i++)
		f->mp_oem[i] = h[8 + i] >= 0x20 && h[8 + i] < 0x7f ? (char)h[8 + i] : '?';
	for (n = 12; n > 0 && (h[16 + n - 1] == ' ' || h[16 + n - 1] == 0); n--)
		;
	for (size_t i = 0; i < n; i++)
		f->mp_product[i] = h[16 + i] >= 0x20 && h[16 + i] < 0x7f ? (char)h[16 + i] : '?';
	f->mp_entry_count = kbu_le16(h + 34);
	return 0;
}

static void facts_from_acpi(const struct kbu_acpi *a, struct kbu_fw_facts *f)
{
	f->acpi = a->found ? 1 : 0;
	if (!a->found)
		return;
	f->rsdp = a->rsdp.addr;
	snprintf(f->acpi_oem, sizeof(f->acpi_oem), "%s", a->rsdp.oem_id);
	snprintf(f->hypervisor_id, sizeof(f->hypervisor_id), "%s", a->fadt.hypervisor_id);
}

int kbu_firmware_identify(struct kbu_mem *m, const struct kbu_fw_known *known,
			  struct kbu_firmware *fw, struct kbu_err *err)
{
	struct kbu_fw_facts f;
	memset(&f, 0, sizeof(f));
	f.mp = f.acpi = -1;
	f.mp_entry_count = f.mp_cpus = -1;
	if (known && known->mp)
		facts_from_mp(known->mp, &f);
	else if (known && known->mp_absent)
		f.mp = 0;
	else if (look_for_mp(m, &f, err) != 0)
		return -1;

	if (known && known->acpi) {
		facts_from_acpi(known->acpi, &f);
	} else {
		struct kbu_acpi_rsdp r;
		int found = kbu_acpi_find_rsdp(m, &r, NULL, 0, err);
		if (found < 0 && err->code != KBU_EFAULT)
			return -1;
		if (found >= 0)
			f.acpi = found;
		if (found > 0) {
			f.rsdp = r.addr;
			snprintf(f.acpi_oem, sizeof(f.acpi_oem), "%s", r.oem_id);
		}
	}
	if (known && known->pvh) {
		const struct kbu_pvh *p = known->pvh;
		f.start_info = 1;
		f.start_info_addr = p->addr;
		f.e820_entries = (int)p->nmemmap;
		for (size_t i = 0; i < p->nmemmap; i++)
			f.e820_zero_entry |= p->memmap[i].size == 0;
	}
	kbu_err_clear(err);
	kbu_firmware_decide(&f, fw);
	return 0;
}

void kbu_firmware_decide(const struct kbu_fw_facts *f, struct kbu_firmware *fw)
{
	memset(fw, 0, sizeof(*fw));
	fw->seen = *f;
	fw->kind = KBU_FW_UNKNOWN;
	fw->name = "unknown";
	const char *where = "";
	if (f->mp == 1 && f->mp_table >= 0xe0000 && f->mp_table < 0x100000)
		where = " in the BIOS area";
	if (f->mp == 1 && strcmp(f->mp_oem, "QBOOT") == 0) {
		fw->kind = KBU_FW_QBOOT;
		snprintf(fw->how, sizeof(fw->how), "MP table OEM \"QBOOT\" at 0x%" PRIx64 "%s",
			 f->mp_table, where);
		fw->quirk = "qboot leaves the MP table's entry_count 0 and gives its I/O APIC id "
			    "ncpus+1; QEMU hands it ACPI tables only with acpi=on";
	} else if (f->mp == 1 && strcmp(f->mp_oem, "BOCHSCPU") == 0) {
		fw->kind = KBU_FW_SEABIOS;
		snprintf(fw->how, sizeof(fw->how), "MP table OEM \"BOCHSCPU\" product \"%s\" at 0x%" PRIx64
			 "%s", f->mp_product, f->mp_table, where);
		fw->quirk = "SeaBIOS's MP table lists one processor whatever -smp says; its ACPI "
			    "MADT lists every vCPU";
	} else if (f->mp == 1 && strcmp(f->mp_oem, "FC") == 0) {
		fw->kind = KBU_FW_FIRECRACKER;
		snprintf(fw->how, sizeof(fw->how), "MP table OEM \"FC\" product \"%s\" at 0x%" PRIx64
			 "%s", f->mp_product, f->mp_table, where);
		fw->quirk = "Firecracker's entry_count is 0 in older releases and one more than the "
			    "table's entries in later ones (it counts its floating pointer)";
	} else if (f->acpi == 1 && (strcmp(f->acpi_oem, "FIRECK") == 0 ||
				    strcmp(f->hypervisor_id, "FIRECKVM") == 0)) {
		fw->kind = KBU_FW_FIRECRACKER;
		snprintf(fw->how, sizeof(fw->how), "ACPI OEM \"%s\"%s%s%s (no MP table names it)",
			 f->acpi_oem, f->hypervisor_id[0] ? ", FADT hypervisor vendor \"" : "",
			 f->hypervisor_id, f->hypervisor_id[0] ? "\"" : "");
	} else if (f->start_info && f->e820_zero_entry) {
		fw->kind = KBU_FW_QBOOT;
		snprintf(fw->how, sizeof(fw->how),
			 "the start info's memory map ends with a zero-size entry, qboot's placeholder "
			 "(no MP table names the firmware)");
		fw->quirk = "qboot leaves the MP table's entry_count 0 and gives its I/O APIC id "
			    "ncpus+1; QEMU hands it ACPI tables only with acpi=on";
	} else if (f->mp == 1 && f->mp_table) {
		snprintf(fw->how, sizeof(fw->how),
			 "MP table OEM \"%s\" product \"%s\" at 0x%" PRIx64 ": not a firmware kbu knows",
			 f->mp_oem, f->mp_product, f->mp_table);
	} else if (f->acpi == 1) {
		snprintf(fw->how, sizeof(fw->how),
			 "no MP table; ACPI OEM \"%s\"%s", f->acpi_oem,
			 strcmp(f->acpi_oem, "BOCHS") == 0 ? " (QEMU's tables, which qboot and SeaBIOS "
							     "both pass on)" : "");
	} else {
		snprintf(fw->how, sizeof(fw->how), "%s",
			 f->mp == 0 && f->acpi == 0 ? "neither an MP table nor an RSDP in memory"
						    : "the firmware's tables could not be searched");
	}
	if (fw->kind == KBU_FW_QBOOT)
		fw->name = "qboot";
	else if (fw->kind == KBU_FW_SEABIOS)
		fw->name = "SeaBIOS";
	else if (fw->kind == KBU_FW_FIRECRACKER)
		fw->name = "Firecracker";
	/* A supporting fact worth saying. */
	if (fw->kind == KBU_FW_QBOOT && f->mp == 1 && f->start_info && f->e820_zero_entry) {
		size_t l = strlen(fw->how);
		snprintf(fw->how + l, sizeof(fw->how) - l,
			 "; the start info's memory map ends with qboot's zero-size entry");
	}
}

int kbu_firmware_not_run_yet(struct kbu_mem *m)
{
	struct kbu_regs r;
	struct kbu_err e;
	if (kbu_mem_regs(m, 0, &r, &e) != 0)
		return 0;
	struct kbu_vcpu v;
	kbu_vcpu_classify(&r, 0, NULL, &v);
	return v.state == KBU_VCPU_RESET;
}

void kbu_firmware_report(const struct kbu_firmware *fw, struct kbu_node *node, int json_only)
{
	const struct kbu_fw_facts *f = &fw->seen;
	struct kbu_node *o = kbu_obj(node, "firmware", json_only ? "" : "Firmware");
#define L(text) (json_only ? "" : (text))
	kbu_str(o, "name", L("name"), fw->name);
	kbu_str(o, "how", L("decided by"), fw->how);
	if (fw->quirk)
		kbu_str(o, "quirk", L("known quirk"), fw->quirk);
	else
		kbu_null(o, "quirk", "");
	if (f->acpi == 1) {
		kbu_display(o, "acpi_text", L("ACPI"), "yes: RSDP at 0x%" PRIx64 ", OEM \"%s\"", f->rsdp,
			    f->acpi_oem);
		kbu_bool(o, "acpi", "", 1);
		kbu_hex(o, "rsdp", "", f->rsdp, 0);
		kbu_str(o, "acpi_oem", "", f->acpi_oem);
	} else {
		kbu_display(o, "acpi_text", L("ACPI"), "%s", f->acpi == 0 ? "none" : "not known");
		if (f->acpi == 0)
			kbu_bool(o, "acpi", "", 0);
		else
			kbu_null(o, "acpi", "");
		kbu_null(o, "rsdp", "");
		kbu_null(o, "acpi_oem", "");
	}
	if (f->mp == 1) {
		kbu_bool(o, "mp_table", "", 1);
		kbu_hex(o, "mp_table_address", "", f->mp_table, 0);
		kbu_str(o, "mp_oem", "", f->mp_oem);
		kbu_str(o, "mp_product", "", f->mp_product);
		if (f->mp_entry_count >= 0)
			kbu_u64(o, "mp_entry_count", "", (uint64_t)f->mp_entry_count);
		else
			kbu_null(o, "mp_entry_count", "");
		if (f->mp_cpus >= 0)
			kbu_u64(o, "mp_cpus", "", (uint64_t)f->mp_cpus);
		else
			kbu_null(o, "mp_cpus", "");
	} else {
		if (f->mp == 0)
			kbu_bool(o, "mp_table", "", 0);
		else
			kbu_null(o, "mp_table", "");
		/* the same fields whatever was found: null when there is no table */
		kbu_null(o, "mp_table_address", "");
		kbu_null(o, "mp_oem", "");
		kbu_null(o, "mp_product", "");
		kbu_null(o, "mp_entry_count", "");
		kbu_null(o, "mp_cpus", "");
	}
	if (f->start_info) {
		kbu_hex(o, "start_info", "", f->start_info_addr, 0);
		kbu_u64(o, "e820_entries", "", (uint64_t)f->e820_entries);
		kbu_bool(o, "e820_zero_entry", "", f->e820_zero_entry);
	} else {
		kbu_null(o, "start_info", "");
		kbu_null(o, "e820_entries", "");
		kbu_null(o, "e820_zero_entry", "");
	}
#undef L
}
