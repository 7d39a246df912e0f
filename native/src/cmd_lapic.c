/* kbu lapic [CPU]: every local APIC register decoded, from QEMU's monitor and/or the page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/cpuid.h"
#include "kbu/lapic.h"
#include "kbu/mem.h"
#include "kbu/mptable.h"
#include "kbu/os.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/util.h"

#define LAPIC_DEFAULT_BASE 0xfee00000ull
#define QEMU_TEXT_MAX (256 * 1024)

static char *slurp(const char *path, struct kbu_err *err)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (!f) {
		kbu_err_set(err, KBU_EIO, "cannot open %s", path);
		return NULL;
	}
	char *buf = malloc(QEMU_TEXT_MAX + 1);
	if (!buf) {
		if (f != stdin)
			fclose(f);
		kbu_err_set(err, KBU_ENOMEM, "out of memory");
		return NULL;
	}
	size_t n = fread(buf, 1, QEMU_TEXT_MAX, f);
	int big = n == QEMU_TEXT_MAX && fgetc(f) != EOF;
	if (f != stdin)
		fclose(f);
	if (big) {
		free(buf);
		kbu_err_set(err, KBU_EFORMAT, "%s is larger than %d bytes: not `info lapic` text",
			    path, QEMU_TEXT_MAX);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* The kernel's own x2APIC flag, when the OS profile names it and memory has it. */
static int kernel_x2apic(struct kbu_ctx *ctx, uint64_t slide, int *val, char *name, size_t len)
{
	struct kbu_err e;
	if (!ctx->syms || !ctx->mem)
		return 0;
	struct kbu_os_profile *p = kbu_ctx_profile(ctx, NULL, NULL, &e);
	if (!p)
		return 0;
	const char *role = kbu_os_role(p, "x2apic");
	int ok = 0;
	if (role) {
		snprintf(name, len, "%s", role);
		const struct kbu_sym *s = kbu_sym_by_name(ctx->syms, name);
		uint8_t b;
		if (s && kbu_mem_read(ctx->mem, KBU_VIRT, s->addr + slide, &b, 1, &e) == 0) {
			*val = b != 0;
			ok = 1;
		}
	}
	kbu_os_free(p);
	return ok;
}

static void mode_section(struct kbu_node *root, const struct kbu_lapic_state *s, int have_cpuid,
			 uint32_t cpuid1_ecx, uint32_t cpuid1_ebx, int have_kx2, int kx2,
			 const char *kname)
{
	struct kbu_node *m = kbu_obj(root, "mode", "APIC mode");
	int svr_known = kbu_lapic_known(s, 0x0f0);
	int sw_on = svr_known && ((s->reg[0x0f0 >> 4] >> 8) & 1);
	struct kbu_lapic_mode lm;
	kbu_lapic_mode(s, have_cpuid, cpuid1_ecx, have_kx2, kx2, &lm);
	if (have_cpuid) {
		int x2 = (cpuid1_ecx >> 21) & 1;
		kbu_display(m, "cpuid_x2apic_text", "CPUID.1:ECX.x2APIC[21]", "%s",
			    x2 ? "1 (x2APIC supported)" : "0 (no x2APIC: xAPIC only)");
		kbu_bool(m, "cpuid_x2apic", "", x2);
		kbu_u64(m, "cpuid_apic_id", "CPUID.1:EBX initial APIC ID", cpuid1_ebx >> 24);
		if (lm.flag_without_cpu)
			kbu_finding(m, KBU_SEV_WARN, "lapic.x2apic_flag_without_cpu",
				    "the kernel's %s says x2APIC but CPUID has no x2APIC bit: the kernel "
				    "drives an xAPIC as x2APIC (its MSRs 0x800+ fault)", kname);
	} else {
		kbu_display(m, "cpuid_x2apic_text", "CPUID.1:ECX.x2APIC[21]", "not read");
		kbu_null(m, "cpuid_x2apic", "");
	}
	if (have_kx2) {
		kbu_display(m, "kernel_x2apic_text", "kernel", "%s = %d", kname, kx2);
		kbu_bool(m, "kernel_x2apic", "", kx2);
		kbu_str(m, "kernel_symbol", "", kname);
	} else {
		kbu_display(m, "kernel_x2apic_text", "kernel",
			    "no x2APIC flag known (no symbols or no profile)");
		kbu_null(m, "kernel_x2apic", "");
		kbu_null(m, "kernel_symbol", "");
	}
	if (svr_known) {
		kbu_display(m, "svr_enable_text", "SVR bit 8 (software enable)", "%s", sw_on ? "1" : "0");
		kbu_bool(m, "svr_enable", "", sw_on);
	} else {
		kbu_null(m, "svr_enable", "");
	}
	kbu_display(m, "mode_text", "mode", "%s", lm.mode);
	kbu_str(m, "mode", "", lm.name);
	if (lm.decided_by)
		kbu_str(m, "decided_by", "", lm.decided_by);
	else
		kbu_null(m, "decided_by", "");
	kbu_textline(m, "IA32_APIC_BASE (global enable, x2APIC enable bits) is not visible through "
			"the stub or `info lapic`");
	if (!lm.decided_by)
		kbu_finding(m, KBU_SEV_NOTE, "lapic.mode_unknown",
			    "the mode cannot be known from here: give CPUID leaf 1 (--cpuid1) or the "
			    "kernel's symbols");
}

/* --plan: what the debugger should read on the vCPU itself, and how. */
static int plan_report(struct kbu_node *root, int have_cpuid, uint32_t ecx, int have_kx2,
		       int kx2, int have_version, uint32_t version)
{
	struct kbu_lapic_mode lm;
	kbu_lapic_mode(NULL, have_cpuid, ecx, have_kx2, kx2, &lm);
	/* RDMSR of an x2APIC MSR faults unless the CPU has x2APIC and the kernel turned
	 * it on: only then; otherwise loads from the xAPIC page, which never fault. */
	int x2 = have_cpuid && ((ecx >> 21) & 1) && have_kx2 && kx2;
	kbu_display(root, "mode_text", "mode", "%s", lm.mode);
	kbu_str(root, "mode", "", lm.name);
	if (lm.decided_by)
		kbu_str(root, "decided_by", "", lm.decided_by);
	else
		kbu_null(root, "decided_by", "");
	kbu_display(root, "method_text", "read with", "%s",
		    x2 ? "RDMSR of the x2APIC MSRs (0x800 + offset/16)"
		       : "32-bit loads from the xAPIC page");
	kbu_str(root, "method", "", x2 ? "rdmsr" : "load");
	kbu_bool(root, "needs_version", "", !have_version);
	unsigned offs[KBU_LAPIC_NREGS];
	size_t n = kbu_lapic_readable(have_version, version, x2, offs, KBU_LAPIC_NREGS);
	struct kbu_node *l = kbu_list(root, "registers", "registers, in read order");
	for (size_t i = 0; i < n; i++) {
		struct kbu_node *row = kbu_row(l);
		const struct kbu_lapic_reg *reg = kbu_lapic_reg_at(offs[i]);
		kbu_str(row, "name", "register", reg ? reg->name : "?");
		kbu_hex(row, "offset", "xAPIC", offs[i], 3);
		if (reg && reg->msr)
			kbu_hex(row, "msr", "x2APIC", reg->msr, 3);
		else
			kbu_null(row, "msr", "x2APIC");
	}
	if (!have_version)
		kbu_textline(root, "LVT CMCI is read only when the version register says it exists "
				   "(--apic-version V)");
	return 0;
}

/* The MP table's word on this CPU: its processor entry's APIC ID and version. */
static void mp_crosscheck(struct kbu_ctx *ctx, struct kbu_node *root,
			  const struct kbu_lapic_state *s, const char *source)
{
	if (!ctx->mem || !kbu_lapic_known(s, 0x020) || !kbu_lapic_known(s, 0x030))
		return;
	struct kbu_mptable t;
	struct kbu_err e;
	struct kbu_node *o = kbu_obj(root, "mptable", "the MP table's processor entry");
	if (kbu_mptable_read(ctx->mem, 0, 0, &t, &e) < 0) {
		kbu_display(o, "status", "status", "not read: %s", e.msg);
		kbu_bool(o, "read", "", 0);
		kbu_str(o, "why", "", e.msg);
		return;
	}
	kbu_bool(o, "read", "", 1);
	unsigned id = s->reg[0x020 >> 4] >> 24;
	uint32_t ver = s->reg[0x030 >> 4];
	const struct kbu_mp_entry *pe = NULL;
	size_t nproc = 0;
	for (size_t i = 0; i < t.nentries; i++) {
		if (t.entries[i].type != KBU_MP_PROC || t.entries[i].extended)
			continue;
		nproc++;
		if (t.entries[i].u.proc.apic_id == id && !pe)
			pe = &t.entries[i];
	}
	kbu_u64(o, "processors", "processor entries", nproc);
	if (!pe) {
		kbu_null(o, "apic_id", "APIC ID");
		struct kbu_node *f = kbu_finding(
			o, nproc ? KBU_SEV_WARN : KBU_SEV_NOTE, "lapic.mp_no_entry",
			"the MP table has no processor entry for APIC ID %u (%s says it is this CPU's; "
			"the table lists %zu processor%s: kbu mptable)", id, source, nproc,
			nproc == 1 ? "" : "s");
		kbu_u64(f, "apic_id", "", id);
		kbu_mptable_free(&t);
		return;
	}
	kbu_u64(o, "apic_id", "APIC ID", pe->u.proc.apic_id);
	kbu_hex(o, "version", "APIC version", pe->u.proc.version, 2);
	kbu_hex(o, "signature", "CPU signature", pe->u.proc.signature, 8);
	kbu_display(o, "flags_text", "flags", "%s", (pe->u.proc.flags & 2) ? "enabled, BSP" :
		    (pe->u.proc.flags & 1) ? "enabled" : "DISABLED");
	kbu_u64(o, "flags", "", pe->u.proc.flags);
	kbu_bool(o, "enabled", "", pe->u.proc.flags & 1);
	kbu_bool(o, "bsp", "", (pe->u.proc.flags >> 1) & 1);
	if (pe->u.proc.version != (ver & 0xff)) {
		struct kbu_node *f = kbu_finding(
			o, KBU_SEV_WARN, "lapic.mp_version_mismatch",
			"the MP table says APIC version 0x%02x for APIC ID %u, %s reads 0x%02x",
			pe->u.proc.version, id, source, ver & 0xff);
		kbu_hex(f, "mptable", "", pe->u.proc.version, 0);
		kbu_hex(f, "register", "", ver & 0xff, 0);
	} else {
		kbu_textline(o, "the MP table's APIC ID %u and version 0x%02x agree with %s", id,
			     ver & 0xff, source);
	}
	kbu_mptable_free(&t);
}

/* The version's max LVT against the LVTs QEMU's monitor shows (timer, thermal,
 * perf, LINT0, LINT1, error: 6, max LVT 5). */
static void lvt_crosscheck(struct kbu_node *root, const struct kbu_lapic_state *s,
			   const struct kbu_lapic_state *mon)
{
	if (!kbu_lapic_known(s, 0x030) || !mon)
		return;
	unsigned lvts = 0;
	for (unsigned off = 0x2f0; off <= 0x370; off += 0x10)
		if ((off == 0x2f0 || off >= 0x320) && kbu_lapic_known(mon, off))
			lvts++;
	if (!lvts)
		return;
	unsigned maxlvt = (s->reg[0x030 >> 4] >> 16) & 0xff;
	struct kbu_node *o = kbu_obj(root, "lvt_count", "");
	kbu_u64(o, "max_lvt", "", maxlvt);
	kbu_u64(o, "monitor_lvts", "", lvts);
	if (maxlvt + 1 != lvts) {
		struct kbu_node *f = kbu_finding(
			root, KBU_SEV_WARN, "lapic.lvt_count_mismatch",
			"the version register says max LVT %u (%u entries), QEMU's monitor shows %u LVTs",
			maxlvt, maxlvt + 1, lvts);
		kbu_u64(f, "max_lvt", "", maxlvt);
		kbu_u64(f, "monitor_lvts", "", lvts);
	}
}

static int lapic_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		     struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {
		{"qemu-text", 0, 1}, {"base", 0, 1}, {"no-monitor", 0, 0}, {"no-page", 0, 0},
		{"cpuid1", 0, 1}, {"slide", 0, 1}, {"vcpu", 0, 1}, {"plan", 0, 0},
		{"apic-version", 0, 1}, {"vcpu-note", 0, 1}, {NULL, 0, 0},
	};
	const char *vcpu_text = NULL, *vcpu_note = NULL;
	int plan = 0, have_version = 0;
	uint64_t version = 0;
	struct kbu_getopt g = KBU_GETOPT_INIT;
	const char *qemu_file = NULL;
	uint64_t base = LAPIC_DEFAULT_BASE, cpu = 0, slide = 0;
	int have_cpu = 0, no_monitor = 0, no_page = 0, have_cpuid = 0;
	struct kbu_cpuid_leaf c1 = {0};
	int i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG) {
			if (have_cpu || kbu_parse_u64(g.arg, &cpu, err) < 0 || cpu > 4095)
				return kbu_err_set(err, KBU_EINVAL, "'%s' is not a CPU number",
						   g.arg);
			have_cpu = 1;
			continue;
		}
		switch (i) {
		case 0: qemu_file = g.arg; break;
		case 1:
			if (kbu_parse_u64(g.arg, &base, err) < 0 || (base & 0xfff))
				return kbu_err_set(err, KBU_EINVAL,
						   "--base '%s' is not a page-aligned address", g.arg);
			break;
		case 2: no_monitor = 1; break;
		case 3: no_page = 1; break;
		case 4: {
			char spec[96];
			snprintf(spec, sizeof spec, "1=%s", g.arg);
			if (kbu_cpuid_parse_leaf(spec, &c1, err) < 0)
				return kbu_err_prefix(err, "--cpuid1");
			have_cpuid = 1;
			break;
		}
		case 5:
			if (kbu_parse_u64(g.arg, &slide, err) < 0)
				return kbu_err_prefix(err, "--slide");
			break;
		case 6: vcpu_text = g.arg; break;
		case 7: plan = 1; break;
		case 8:
			if (kbu_parse_u64(g.arg, &version, err) < 0 || version > 0xffffffffull)
				return kbu_err_set(err, KBU_EINVAL, "--apic-version '%s' is not a 32-bit value",
						   g.arg);
			have_version = 1;
			break;
		case 9: vcpu_note = g.arg; break;
		}
	}
	if (plan) {
		int pkx2 = 0;
		char pname[64] = "x2apic_mode";
		int phave = kernel_x2apic(ctx, slide, &pkx2, pname, sizeof pname);
		return plan_report(kbu_report_root(r), have_cpuid, c1.ecx, phave, pkx2, have_version,
				   (uint32_t)version);
	}
	struct kbu_lapic_state vcpu;
	int have_vcpu = 0;
	if (vcpu_text) {
		if (kbu_lapic_parse_values(vcpu_text, &vcpu, err) < 0)
			return kbu_err_prefix(err, "--vcpu");
		have_vcpu = 1;
		vcpu.cpu = have_cpu ? (int)cpu : -1;
	}

	struct kbu_lapic_state mon, page;
	int have_mon = 0, have_page = 0;
	char *text = NULL;
	struct kbu_err e2;
	struct kbu_node *root = kbu_report_root(r);
	struct kbu_node *src = kbu_obj(root, "sources", "sources");

	/* Each source: a line of the text, and in JSON whether it was read and why not. */
	const char *mon_why = NULL;
	char mon_buf[sizeof e2.msg + 16];
	int cpu_differs = 0, mon_cpu = -1;
	if (qemu_file) {
		text = slurp(qemu_file, err);
		if (!text)
			return -1;
	} else if (!no_monitor && ctx->mem) {
		char cmd[48];
		snprintf(cmd, sizeof cmd, "info lapic %u", (unsigned)cpu);
		if (kbu_mem_monitor(ctx->mem, cmd, &text, &e2) < 0) {
			snprintf(mon_buf, sizeof mon_buf, "unavailable: %s", e2.msg);
			mon_why = mon_buf;
			text = NULL;
		}
	} else {
		mon_why = no_monitor ? "not asked" : "no live target";
	}
	if (text) {
		if (kbu_lapic_parse_qemu(text, &mon, &e2) == 0) {
			have_mon = 1;
			cpu_differs = have_cpu && mon.cpu >= 0 && (uint64_t)mon.cpu != cpu;
			mon_cpu = mon.cpu;
		} else {
			snprintf(mon_buf, sizeof mon_buf, "unusable: %s", e2.msg);
			mon_why = mon_buf;
		}
		free(text);
	}
	kbu_display(src, "monitor_text", "QEMU info lapic", "%s",
		    have_mon ? (qemu_file ? qemu_file : "read (trusted)") : mon_why);
	struct kbu_node *so = kbu_obj(src, "monitor", "");
	kbu_bool(so, "read", "", have_mon);
	if (qemu_file)
		kbu_str(so, "file", "", qemu_file);
	if (!have_mon)
		kbu_str(so, "why", "", mon_why);
	if (cpu_differs)
		kbu_problem(src, KBU_SEV_NOTE, "asked for APIC %u, QEMU dumped CPU %d", (unsigned)cpu,
			    mon_cpu);

	if (have_vcpu || vcpu_note) {
		if (have_vcpu)
			kbu_display(src, "vcpu_text", "the vCPU's own reads", "%s",
				    vcpu_note ? vcpu_note : "read (trusted)");
		else
			kbu_display(src, "vcpu_text", "the vCPU's own reads", "not made: %s", vcpu_note);
		so = kbu_obj(src, "vcpu", "");
		kbu_bool(so, "read", "", have_vcpu);
		if (vcpu_note)
			kbu_str(so, "note", "", vcpu_note);
		else
			kbu_null(so, "note", "");
	}
	if (!no_page && ctx->mem) {
		uint8_t buf[0x400];
		if (cpu != 0 && !qemu_file)
			kbu_textf(src, "the LAPIC page shows the CPU the stub reads with, not CPU %u",
				  (unsigned)cpu);
		if (kbu_mem_read(ctx->mem, KBU_PHYS, base, buf, sizeof buf, &e2) < 0) {
			kbu_display(src, "page_text", "LAPIC page", "unreadable at 0x%llx: %s",
				    (unsigned long long)base, e2.msg);
			so = kbu_obj(src, "page", "");
			kbu_bool(so, "read", "", 0);
			kbu_u64(so, "address", "", base);
			kbu_str(so, "why", "", e2.msg);
		} else if (kbu_lapic_page_all_zero(buf)) {
			kbu_display(src, "page_text", "LAPIC page",
				    "0x%llx reads all zeros: not the real registers (under TCG the "
				    "debugger cannot read the APIC page)", (unsigned long long)base);
			so = kbu_obj(src, "page", "");
			kbu_bool(so, "read", "", 0);
			kbu_u64(so, "address", "", base);
			kbu_bool(so, "all_zero", "", 1);
			kbu_str(so, "why", "", "it reads all zeros: not the real registers (under TCG "
				"the debugger cannot read the APIC page)");
		} else {
			kbu_lapic_from_page(buf, &page);
			have_page = 1;
			kbu_display(src, "page_text", "LAPIC page", "read at physical 0x%llx",
				    (unsigned long long)base);
			so = kbu_obj(src, "page", "");
			kbu_bool(so, "read", "", 1);
			kbu_u64(so, "address", "", base);
			kbu_bool(so, "all_zero", "", 0);
		}
	} else {
		const char *why = no_page ? "not asked" : "no memory source";
		kbu_display(src, "page_text", "LAPIC page", "%s", why);
		so = kbu_obj(src, "page", "");
		kbu_bool(so, "read", "", 0);
		kbu_str(so, "why", "", why);
	}

	int have_kx2 = 0, kx2 = 0;
	char kname[64] = "x2apic_mode";
	have_kx2 = kernel_x2apic(ctx, slide, &kx2, kname, sizeof kname);

	const char *kind = ctx->mem ? kbu_mem_kind(ctx->mem) : "";
	if (!have_vcpu && !have_mon && !have_page &&
	    (strcmp(kind, "core") == 0 || strcmp(kind, "phys") == 0))
		return kbu_err_set(err, KBU_ENOTFOUND,
				   "no usable source: a %s holds no local APIC state (QEMU keeps it "
				   "outside guest memory; the LAPIC page reads as zeros): run "
				   "kbu lapic --gdb HOST:PORT on the live VM, or give its `info lapic` "
				   "output with --qemu-text FILE",
				   strcmp(kind, "core") == 0 ? "dump" : "memory image");
	if (!have_vcpu && !have_mon && !have_page)
		return kbu_err_set(err, KBU_ENOTFOUND,
				   "no usable source: QEMU `info lapic` %s and the LAPIC page %s",
				   ctx->mem ? "failed" : "not given (--qemu-text FILE)",
				   ctx->mem ? "is unreadable or all zeros" : "needs memory");
	if (have_mon && have_cpu)
		mon.cpu = mon.cpu >= 0 ? mon.cpu : (int)cpu;
	const struct kbu_lapic_state *best;
	enum kbu_lapic_source best_src;
	if (have_vcpu) {
		if (vcpu.cpu < 0 && have_mon)
			vcpu.cpu = mon.cpu;
		best = &vcpu;
		best_src = KBU_LAPIC_SRC_VCPU;
		kbu_lapic_report(root, best, best_src, have_mon ? &mon : have_page ? &page : NULL,
				 have_mon ? KBU_LAPIC_SRC_MONITOR : KBU_LAPIC_SRC_PAGE);
	} else {
		best = have_mon ? &mon : &page;
		best_src = have_mon ? KBU_LAPIC_SRC_MONITOR : KBU_LAPIC_SRC_PAGE;
		kbu_lapic_report(root, best, best_src, have_mon && have_page ? &page : NULL,
				 KBU_LAPIC_SRC_PAGE);
	}
	lvt_crosscheck(root, best, have_mon ? &mon : NULL);
	mp_crosscheck(ctx, root, best, kbu_lapic_source_name(best_src));
	mode_section(root, best, have_cpuid, c1.ecx, c1.ebx, have_kx2, kx2, kname);
	return 0;
}

static struct kbu_command cmd_lapic = {
	.name = "lapic",
	.summary = "every local APIC register decoded, with its xAPIC offset and x2APIC MSR",
	.help = "usage: kbu lapic [--gdb H:P|--core F] [--qemu-text FILE|-] [--base ADDR]\n"
		"                 [--no-monitor] [--no-page] [--cpuid1 EAX,EBX,ECX,EDX] [--slide N]\n"
		"                 [--vcpu OFF=VAL,...] [--vcpu-note TEXT] [--plan [--apic-version V]] [CPU]\n"
		"\n"
		"Shows each local APIC register with its xAPIC MMIO offset and x2APIC MSR\n"
		"number, decoded: ID, version (masked 0x00ff00ff) and max LVT, TPR/APR/PPR,\n"
		"LDR/DFR, SVR enable and spurious vector, every LVT (vector, delivery mode,\n"
		"status, polarity, remote IRR, trigger, mask, timer mode), ESR, ICR, initial\n"
		"and current count, DCR as a divisor, and the ISR/IRR/TMR vectors.\n"
		"Sources: QEMU's `info lapic CPU` through the monitor (trusted under TCG) or\n"
		"a saved copy (--qemu-text), and the APIC page read physically at ADDR\n"
		"(default 0xfee00000; under TCG it reads zeros, which is detected and said).\n"
		"Where both are read, registers that differ are listed. The mode (xAPIC,\n"
		"x2APIC, disabled) is derived from CPUID leaf 1 (--cpuid1) and the kernel's\n"
		"own flag (OS profile role x2apic, read at its address + --slide for a\n"
		"relocated kernel) and said to be unknown otherwise.\n"
		"CPU is the APIC ID QEMU's `info lapic` takes (QEMU numbers them like CPUs).\n"
		"--vcpu gives the registers as the vCPU itself read them (in GDB, `kbu lapic`\n"
		"makes it load them from its APIC page, or RDMSR in x2APIC mode): every\n"
		"register including ID and version, compared with `info lapic` and with the\n"
		"MP table's processor entry (APIC ID, version); --plan lists the registers to\n"
		"read and how (given --apic-version V, LVT CMCI too when it exists).\n",
	.needs = KBU_NEEDS_NOTHING,
	.run = lapic_run,
};
KBU_COMMAND(cmd_lapic)
