/* kbu verdicts: what the kernel is handed: pvh-entry (the start info at its PVH
 * entry) and where-are-my-devices (where the VM describes its devices). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/acpi.h"
#include "kbu/mem.h"
#include "kbu/pvh.h"
#include "kbu/symbols.h"
#include "kbu/util.h"
#include "kbu/virtio_mmio.h"
#include "kbu/report.h"
#include "kbu/xen.h"

#include "verdict_int.h"

/* ---- pvh-entry ---- */

void q_pvh(struct run *v)
{
	uint64_t entry = 0;
	struct kbu_err e = {0};
	if (!v->ctx->kernel || kbu_xen_pvh_entry(v->ctx->kernel, &entry, &e) < 0) {
		if (v->ctx->kernel && e.code == KBU_ENOTFOUND)
			decide(v, KBU_VERDICT_PROBLEM, "pvh.no_entry_note",
			       "add the note (type 18) with the 32-bit physical entry address",
			       "the kernel has no XEN_ELFNOTE_PHYS32_ENTRY note: QEMU cannot boot it through PVH");
		else
			decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "cannot read the kernel's notes: %s",
			       v->ctx->kernel ? e.msg : "no kernel ELF");
		return;
	}
	kbu_u64(v->facts, "phys32_entry", "", entry);
	evidence(v, "PHYS32_ENTRY note", "0x%" PRIx64, entry);
	const char *reached = live_str(v, "entry.reached");
	if (reached && strcmp(reached, "hit") != 0) {
		decide(v, KBU_VERDICT_PROBLEM, "pvh.entry_not_reached",
		       "check that QEMU boots the ELF through PVH (-kernel with the note, -M microvm) and "
		       "not as a multiboot or Linux image",
		       "the guest never reached the PVH entry 0x%" PRIx64 " (%s)", entry, reached);
		return;
	}
	int at_entry = kbu_json_get_bool(live(v, "entry"), "at_entry", 0);
	uint64_t rip = 0, ebx = 0, cr0 = 0;
	int have_rip = live_u64(v, "entry.rip", &rip) == 0;
	int have_ebx = live_u64(v, "entry.ebx", &ebx) == 0;
	int have_cr0 = live_u64(v, "entry.cr0", &cr0) == 0;
	ebx &= 0xffffffffu;
	if (at_entry) {
		if (have_rip) {
			kbu_u64(v->facts, "rip", "", rip);
			evidence(v, "RIP", "0x%" PRIx64, rip);
		}
		if (have_ebx) {
			kbu_u64(v->facts, "ebx", "", ebx);
			evidence(v, "EBX", "0x%" PRIx64 "  (the start info, by the PVH protocol)", ebx);
		}
		if (have_cr0) {
			kbu_u64(v->facts, "cr0", "", cr0);
			evidence(v, "CR0", "0x%" PRIx64 "  (PE=%d PG=%d)", cr0, (int)(cr0 & 1),
				 (int)(cr0 >> 31 & 1));
		}
	} else {
		evidence(v, "entry", "the guest is past its entry: the start info is found through the "
			 "kernel's saved pointer or by its magic");
	}
	if (!v->ctx->mem) {
		decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "no guest memory to read the start info from");
		return;
	}
	struct kbu_pvh p;
	memset(&p, 0, sizeof p);
	int rc = at_entry && have_ebx && ebx ? kbu_pvh_decode(v->ctx->mem, ebx, &p, &e)
					     : kbu_pvh_find(v->ctx->mem, v->syms, v->ctx->kernel, 0, &p, &e);
	if (rc < 0) {
		char where[64] = "found";
		if (at_entry && have_ebx)
			snprintf(where, sizeof where, "at EBX 0x%" PRIx64, ebx);
		decide(v, at_entry ? KBU_VERDICT_PROBLEM : KBU_VERDICT_UNDECIDED,
		       at_entry ? "pvh.no_start_info" : NULL,
		       "the loader must pass the start info in EBX (magic 0x336ec578)",
		       "no valid hvm_start_info %s: %s", where, e.msg);
		kbu_pvh_free(&p);
		return;
	}
	if (p.bare_magic && !at_entry) {
		evidence(v, "start info", "none: only a bare magic 0x336ec578 at 0x%" PRIx64
			 " whose pointers lead nowhere", p.addr);
		decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "no hvm_start_info in memory (the magic "
		       "at 0x%" PRIx64 " is not one: its pointers lead nowhere): the kernel was not booted "
		       "through PVH (a bzImage boots by the Linux boot protocol), or its start info was "
		       "overwritten", p.addr);
		kbu_pvh_free(&p);
		return;
	}
	kbu_u64(v->facts, "start_info", "", p.addr);
	evidence(v, "start info", "0x%" PRIx64 ", version %u, magic 0x%x", p.addr, p.version, p.magic);
	const char *cmd = p.cmdline.state == KBU_PVH_STR_OK || p.cmdline.state == KBU_PVH_STR_UNTERMINATED
				  ? (p.cmdline.text ? p.cmdline.text : "") : NULL;
	if (cmd) {
		kbu_str(v->facts, "cmdline", "", cmd);
		evidence(v, "command line", "\"%s\"", cmd);
	} else {
		kbu_null(v->facts, "cmdline", "");
		evidence(v, "command line", "(none)");
	}
	struct kbu_node *ml = kbu_list(v->facts, "memmap", "");
	char mt[2048] = "";
	uint64_t ram = 0;
	size_t nreal = 0;
	for (size_t i = 0; i < p.nmemmap; i++) {
		const struct kbu_pvh_memmap_entry *m = &p.memmap[i];
		if (!m->size)
			continue;
		nreal++;
		if (m->type == 1)
			ram += m->size;
		struct kbu_node *row = kbu_row(ml);
		kbu_u64(row, "addr", "", m->addr);
		kbu_u64(row, "end", "", m->addr + m->size - 1);
		kbu_u64(row, "size", "", m->size);
		kbu_u64(row, "type", "", m->type);
		kbu_str(row, "type_name", "", kbu_e820_type_name(m->type));
		char sz[32];
		kbu_size_text(m->size, sz, sizeof sz);
		cat(mt, sizeof mt, "%s0x%09" PRIx64 "-0x%09" PRIx64 "  %-9s %s", nreal > 1 ? "\n" : "",
		    m->addr, m->addr + m->size - 1, kbu_e820_type_name(m->type), sz);
	}
	evidence(v, "memory map", "%s", mt[0] ? mt : "(none)");
	char rs[32];
	kbu_size_text(ram, rs, sizeof rs);
	kbu_u64(v->facts, "ram_bytes", "", ram);
	evidence(v, "RAM", "%s", rs);
	kbu_u64(v->facts, "modules", "", p.nr_modules);
	evidence(v, "modules", "%u", p.nr_modules);
	if (p.rsdp_paddr) {
		kbu_u64(v->facts, "rsdp", "", p.rsdp_paddr);
		evidence(v, "RSDP", "0x%" PRIx64 "%s%s%s", p.rsdp_paddr, p.rsdp_sig_ok == 1 ? " (OEM '" : "",
			 p.rsdp_sig_ok == 1 ? p.rsdp_oem : "", p.rsdp_sig_ok == 1 ? "')" : "");
	} else {
		kbu_null(v->facts, "rsdp", "");
		evidence(v, "RSDP", "none (no ACPI)");
	}
	char bad[2048] = "", warn[1024] = "";
	for (size_t i = 0; i < p.nproblems; i++) {
		const struct kbu_pvh_problem *pp = &p.problems[i];
		if (pp->sev >= KBU_SEV_ERROR)
			cat(bad, sizeof bad, "%s%s", bad[0] ? "; " : "", pp->msg);
		if (pp->sev == KBU_SEV_WARN) {
			size_t n = strcspn(pp->msg, ":");
			cat(warn, sizeof warn, "%s%.*s", warn[0] ? "; " : "", (int)n, pp->msg);
		}
		if (pp->sev >= KBU_SEV_WARN)
			finding(v, "pvh.start_info", "start info: %s", pp->msg);
	}
	char wrong[2048] = "";
	if (p.magic != 0x336ec578u)
		cat(wrong, sizeof wrong, "magic 0x%x is not 0x336ec578", p.magic);
	if (at_entry && have_cr0 && (cr0 >> 31 & 1))
		cat(wrong, sizeof wrong, "%spaging is on at the entry (CR0.PG=1): this is not a PVH entry",
		    wrong[0] ? "; " : "");
	if (at_entry && have_cr0 && !(cr0 & 1))
		cat(wrong, sizeof wrong, "%sthe CPU is in real mode at the entry (CR0.PE=0)",
		    wrong[0] ? "; " : "");
	if (!nreal)
		cat(wrong, sizeof wrong, "%sthe memory map is empty", wrong[0] ? "; " : "");
	if (bad[0])
		cat(wrong, sizeof wrong, "%s%s", wrong[0] ? "; " : "", bad);
	if (wrong[0]) {
		decide(v, KBU_VERDICT_PROBLEM, "pvh.handover",
		       "compare with the PVH boot protocol (xen/arch/x86 docs: hvm_start_info)",
		       "the PVH handover is wrong: %s", wrong);
	} else {
		char where[256] = "start info ";
		if (at_entry)
			snprintf(where, sizeof where, "entered at 0x%" PRIx64 " in 32-bit protected mode with "
				 "paging off, EBX = 0x%" PRIx64 " -> ", entry, ebx);
		char zero[48] = "";
		if (nreal < p.nmemmap)
			snprintf(zero, sizeof zero, ", %zu of size 0", p.nmemmap - nreal);
		decide(v, KBU_VERDICT_OK, NULL, NULL, "%shvm_start_info v%u at 0x%" PRIx64 ": command line "
		       "\"%s\", %zu memory map entries (%s RAM%s), %u module%s%s%s", where, p.version,
		       p.addr, cmd ? cmd : "", p.nmemmap, rs, zero, p.nr_modules,
		       p.nr_modules == 1 ? "" : "s", warn[0] ? "; note: " : "", warn);
	}
	kbu_pvh_free(&p);
}

/* ---- where-are-my-devices ---- */

/* 1: one of the role's symbols is in the kernel, 0: none is, -1: no role or no symbols. */
static int kernel_has(struct run *v, const char *role, char *names, size_t len)
{
	const struct kbu_os_profile *p = profile(v);
	char w[64];
	names[0] = '\0';
	if (!p || !kbu_os_role(p, role) || !v->syms)
		return -1;
	snprintf(names, len, "%s", kbu_os_role(p, role));
	for (size_t i = 0; kbu_os_role_word(p, role, i, w, sizeof w); i++)
		if (kbu_sym_by_name(v->syms, w))
			return 1;
	return 0;
}

void q_devices(struct run *v)
{
	struct kbu_mem *m = v->ctx->mem;
	if (!m) {
		decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "no guest memory to read the start info and "
		       "the ACPI tables from");
		return;
	}
	/* The command line the VMM handed over (the PVH start info). */
	struct kbu_pvh p;
	struct kbu_err e = {0};
	memset(&p, 0, sizeof p);
	const char *cmd = NULL;
	if (kbu_pvh_find(m, v->syms, v->ctx->kernel, 0, &p, &e) == 0 &&
	    (p.cmdline.state == KBU_PVH_STR_OK || p.cmdline.state == KBU_PVH_STR_UNTERMINATED))
		cmd = p.cmdline.text ? p.cmdline.text : "";
	if (cmd) {
		kbu_str(v->facts, "cmdline", "", cmd);
		evidence(v, "command line", "\"%s\" (the start info at 0x%" PRIx64 ")", cmd, p.addr);
	} else {
		kbu_null(v->facts, "cmdline", "");
		evidence(v, "command line", "not found: %s", e.msg[0] ? e.msg : "no start info");
	}
	struct kbu_vmmio_list list;
	memset(&list, 0, sizeof list);
	if (cmd)
		kbu_vmmio_scan(cmd, &list);
	struct kbu_node *dl = kbu_list(v->facts, "cmdline_devices", "");
	for (size_t i = 0; i < list.ndevs; i++) {
		const struct kbu_vmmio_dev *d = &list.devs[i];
		struct kbu_node *row = kbu_row(dl);
		kbu_u64(row, "base", "", d->base);
		kbu_u64(row, "size", "", d->size);
		kbu_u64(row, "irq", "", d->irq);
		evidence(v, i ? "" : "virtio-mmio devices", "0x%" PRIx64 ", %" PRIu64 " bytes, IRQ %u (%s)",
			 d->base, d->size, d->irq, d->key);
	}
	for (size_t i = 0; i < list.nbad; i++)
		finding(v, "devices.cmdline_malformed", "command line: \"%s\": %s", list.bad[i].text,
			list.bad[i].why);
	/* ACPI: a DSDT describes devices (kbu does not decode its AML). */
	struct kbu_acpi a;
	struct kbu_acpi_opts ao = {0};
	memset(&a, 0, sizeof a);
	ao.pvh = cmd ? &p : NULL;
	int dsdt = -1;
	struct kbu_err ae = {0};
	struct kbu_vmmio_list aml;
	memset(&aml, 0, sizeof aml);
	if (kbu_acpi_read(m, &ao, &a, &ae) == 0) {
		const struct kbu_acpi_table *t = a.found ? kbu_acpi_table(&a, "DSDT", 0) : NULL;
		dsdt = t != NULL;
		if (t && t->data)
			kbu_vmmio_scan_aml(t->data, t->length, &aml);
	}
	kbu_bool_or_null(v->facts, "dsdt", "", dsdt);
	struct kbu_node *al = kbu_list(v->facts, "dsdt_devices", "");
	for (size_t i = 0; i < aml.ndevs; i++) {
		const struct kbu_vmmio_dev *d = &aml.devs[i];
		struct kbu_node *row = kbu_row(al);
		kbu_str(row, "name", "", strlen(d->key) > 5 ? d->key + 5 : "");
		kbu_u64(row, "base", "", d->base);
		kbu_u64(row, "size", "", d->size);
		kbu_u64(row, "irq", "", d->irq);
	}
	if (dsdt == 1 && aml.ndevs) {
		for (size_t i = 0; i < aml.ndevs; i++)
			evidence(v, i ? "" : "ACPI DSDT", "%s: 0x%" PRIx64 ", %" PRIu64 " bytes, IRQ %u",
				 aml.devs[i].key + 5, aml.devs[i].base, aml.devs[i].size, aml.devs[i].irq);
	} else {
		evidence(v, "ACPI DSDT", "%s", dsdt == 1 ? "present, describes no virtio-mmio device"
			 : dsdt == 0 ? (a.found ? "none" : "no ACPI") : ae.msg);
	}
	int acpi_found = a.found;
	kbu_acpi_free(&a);
	struct kbu_devices_where where;
	kbu_devices_where(cmd, dsdt, (int)aml.ndevs, &where);
	kbu_str(v->facts, "described_in", "", kbu_devices_source_name(where.where));
	evidence(v, "described in", "%s", kbu_devices_source_name(where.where));
	/* Where this kernel looks (profile roles devices_cmdline, devices_acpi). */
	char cn[128], an[128];
	int reads_cmd = kernel_has(v, "devices_cmdline", cn, sizeof cn);
	int reads_acpi = kernel_has(v, "devices_acpi", an, sizeof an);
	if (reads_cmd >= 0) {
		kbu_bool(v->facts, "kernel_reads_cmdline", "", reads_cmd);
		evidence(v, "kernel parses the cmdline", "%s (%s)", reads_cmd ? "yes" : "no", cn);
	} else {
		kbu_null(v->facts, "kernel_reads_cmdline", "");
	}
	if (reads_acpi >= 0) {
		kbu_bool(v->facts, "kernel_reads_acpi", "", reads_acpi);
		evidence(v, "kernel reads ACPI", "%s (%s)", reads_acpi ? "yes" : "no", an);
	} else {
		kbu_null(v->facts, "kernel_reads_acpi", "");
	}
	if (list.nbad) {
		decide(v, KBU_VERDICT_PROBLEM, "devices.cmdline_malformed",
		       "write each as virtio_mmio.device=SIZE@BASE:IRQ (SIZE with K/M/G, BASE in hex)",
		       "%zu virtio_mmio.device entr%s on the command line cannot be read: \"%s\": %s",
		       list.nbad, list.nbad == 1 ? "y" : "ies", list.bad[0].text, list.bad[0].why);
	} else if (where.where == KBU_DEVICES_UNKNOWN) {
		decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "neither the command line nor the ACPI tables "
		       "could be read: %s", where.how);
	} else if (where.where == KBU_DEVICES_NONE) {
		/* Nothing is described in the wrong place: whether the kernel needs a disk is
		 * its own business (a panic mounting root says so). */
		decide(v, KBU_VERDICT_OK, "devices.none",
		       "give the VM a device if the kernel needs one: -device virtio-blk-device,drive=ID "
		       "with -drive file=IMG,if=none,id=ID on QEMU microvm (or a drive in Firecracker's "
		       "configuration)",
		       "the VM describes no virtio-mmio device: no virtio_mmio.device= on the command line "
		       "and %s", dsdt == 1 ? "none in the ACPI DSDT" : acpi_found ? "no DSDT" : "no ACPI tables");
	} else if (where.where == KBU_DEVICES_ACPI && reads_acpi == 0) {
		decide(v, KBU_VERDICT_PROBLEM, "devices.acpi_only",
		       "boot with -M microvm,acpi=off so QEMU lists them as virtio_mmio.device= on the "
		       "command line, or build the kernel with its ACPI virtio-mmio driver",
		       "the devices are described only in the ACPI DSDT (QEMU with acpi=on puts nothing on "
		       "the command line) and this kernel has no ACPI virtio-mmio driver (none of %s)", an);
	} else if (where.where == KBU_DEVICES_CMDLINE && reads_cmd == 0) {
		decide(v, KBU_VERDICT_PROBLEM, "devices.cmdline_only",
		       "build the kernel with its virtio_mmio.device= parser, or boot with ACPI "
		       "(-M microvm,acpi=on) if it reads the DSDT",
		       "the devices are described only on the command line (%zu virtio_mmio.device "
		       "entr%s) and this kernel has no parser for them (none of %s)", list.ndevs,
		       list.ndevs == 1 ? "y" : "ies", cn);
	} else {
		int known = where.where == KBU_DEVICES_ACPI ? reads_acpi
			    : where.where == KBU_DEVICES_CMDLINE ? reads_cmd
			    : (reads_acpi == 1 || reads_cmd == 1) ? 1 : -1;
		decide(v, KBU_VERDICT_OK, NULL, NULL, "the devices are described %s%s%s",
		       where.where == KBU_DEVICES_ACPI ? "in the ACPI DSDT"
		       : where.where == KBU_DEVICES_CMDLINE ? "on the command line"
							: "on the command line and in ACPI",
		       known == 1 ? ", where this kernel looks" : "",
		       known < 0 ? " (whether this kernel looks there is not known: its driver may be a "
				   "module, or the profile names none)" : "");
	}
	kbu_pvh_free(&p);
}
