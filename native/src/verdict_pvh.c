/* kbu verdicts: pvh-entry, what the kernel is handed at its PVH entry. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/pvh.h"
#include "kbu/report.h"
#include "kbu/xen.h"

#include "verdict_int.h"

/* ---- pvh-entry ---- */

static void size_text(uint64_t n, char *buf, size_t len)
{
	static const struct {
		const char *unit;
		uint64_t div;
	} u[] = {{"GiB", 1ull << 30}, {"MiB", 1ull << 20}, {"KiB", 1ull << 10}};
	for (size_t i = 0; i < 3; i++)
		if (n >= u[i].div) {
			if (n % u[i].div)
				snprintf(buf, len, "%.1f %s", (double)n / (double)u[i].div, u[i].unit);
			else
				snprintf(buf, len, "%" PRIu64 " %s", n / u[i].div, u[i].unit);
			return;
		}
	snprintf(buf, len, "%" PRIu64 " bytes", n);
}

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
		size_text(m->size, sz, sizeof sz);
		cat(mt, sizeof mt, "%s0x%09" PRIx64 "-0x%09" PRIx64 "  %-9s %s", nreal > 1 ? "\n" : "",
		    m->addr, m->addr + m->size - 1, kbu_e820_type_name(m->type), sz);
	}
	evidence(v, "memory map", "%s", mt[0] ? mt : "(none)");
	char rs[32];
	size_text(ram, rs, sizeof rs);
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
		decide(v, KBU_VERDICT_OK, NULL, NULL, "%shvm_start_info v%u at 0x%" PRIx64 ": command line "
		       "\"%s\", %zu memory map entries (%s RAM), %u module(s)%s%s", where, p.version,
		       p.addr, cmd ? cmd : "", nreal, rs, p.nr_modules, warn[0] ? "; note: " : "", warn);
	}
	kbu_pvh_free(&p);
}
