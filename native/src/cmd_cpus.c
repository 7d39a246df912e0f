/* kbu cpus: per-CPU registers, CR0/CR4/EFER decoded, and the mode each CPU is in. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/gdbrsp.h"
#include "kbu/mem.h"
#include "kbu/paging.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/util.h"
#include "kbu/vcpu.h"

struct flag_name {
	int bit;
	const char *name;
};

static const struct flag_name cr0_flags[] = {
	{0, "PE"}, {1, "MP"}, {2, "EM"}, {3, "TS"}, {4, "ET"}, {5, "NE"}, {16, "WP"},
	{18, "AM"}, {29, "NW"}, {30, "CD"}, {31, "PG"}, {-1, NULL},
};
static const struct flag_name cr4_flags[] = {
	{0, "VME"}, {1, "PVI"}, {2, "TSD"}, {3, "DE"}, {4, "PSE"}, {5, "PAE"}, {6, "MCE"},
	{7, "PGE"}, {8, "PCE"}, {9, "OSFXSR"}, {10, "OSXMMEXCPT"}, {11, "UMIP"}, {12, "LA57"},
	{13, "VMXE"}, {14, "SMXE"}, {16, "FSGSBASE"}, {17, "PCIDE"}, {18, "OSXSAVE"}, {19, "KL"},
	{20, "SMEP"}, {21, "SMAP"}, {22, "PKE"}, {23, "CET"}, {24, "PKS"}, {-1, NULL},
};
static const struct flag_name efer_flags[] = {
	{0, "SCE"}, {8, "LME"}, {10, "LMA"}, {11, "NXE"}, {12, "SVME"}, {13, "LMSLE"},
	{14, "FFXSR"}, {15, "TCE"}, {-1, NULL},
};

static void flags_text(uint64_t v, const struct flag_name *f, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	for (; f->name; f++)
		if (v & (1ull << f->bit)) {
			int w = snprintf(buf + n, len - n, "%s%s", n ? " " : "", f->name);
			if (w < 0 || (size_t)w >= len - n)
				break;
			n += (size_t)w;
		}
	if (!n)
		snprintf(buf, len, "-");
}

/* The flag names set in v, as a JSON list (the text shows them after the value). */
static void flags_list(struct kbu_node *o, const char *key, uint64_t v, const struct flag_name *f)
{
	struct kbu_node *l = kbu_list(o, key, "");
	for (; f->name; f++)
		if (v & (1ull << f->bit))
			kbu_item_str(l, f->name);
}

/* The CPU's operating mode as a value: "real", "protected", "long", "unknown". */
static const char *mode_name(const struct kbu_regs *r, enum kbu_paging_mode pm)
{
	switch (pm) {
	case KBU_PG_UNKNOWN:
		return "unknown";
	case KBU_PG_OFF:
		return (r->cr0 & 1) ? "protected" : "real";
	case KBU_PG_32:
	case KBU_PG_PAE:
		return "protected";
	case KBU_PG_4LEVEL:
	case KBU_PG_5LEVEL:
		return "long";
	}
	return "unknown";
}

/* "long mode, 4-level paging", "protected mode, paging off", "real mode". */
static void mode_text(const struct kbu_regs *r, enum kbu_paging_mode pm, char *buf, size_t len)
{
	switch (pm) {
	case KBU_PG_UNKNOWN:
		snprintf(buf, len, "unknown (no control registers)");
		break;
	case KBU_PG_OFF:
		snprintf(buf, len, "%s", (r->cr0 & 1) ? "protected mode, paging off" : "real mode");
		break;
	case KBU_PG_32:
	case KBU_PG_PAE:
		snprintf(buf, len, "protected mode, %s", kbu_paging_mode_name(pm));
		break;
	case KBU_PG_4LEVEL:
	case KBU_PG_5LEVEL:
		snprintf(buf, len, "long mode, %s", kbu_paging_mode_name(pm));
		break;
	}
}

static int in_ranges(struct kbu_mem *m, uint64_t pa, int *known)
{
	uint64_t s[64], e[64];
	int n = kbu_mem_ranges(m, s, e, 64);
	*known = n > 0;
	for (int i = 0; i < n; i++)
		if (pa >= s[i] && pa < e[i])
			return 1;
	return 0;
}

/* 1 when the byte before RIP is HLT (0xf4): the CPU halted there; 0 not; -1 not readable. */
static int hlt_before_rip(struct kbu_mem *m, const struct kbu_regs *r, enum kbu_paging_mode pm)
{
	if (pm == KBU_PG_UNKNOWN)
		return -1;
	uint64_t lin = r->rip + ((r->bits == 32 || pm < KBU_PG_4LEVEL) ? r->cs_base : 0);
	if (pm < KBU_PG_4LEVEL)
		lin &= 0xffffffffull;
	uint64_t pa = lin;
	if (pm != KBU_PG_OFF) {
		struct kbu_walk walk;
		struct kbu_err e = {0};
		if (kbu_vtop(m, pm, r->cr3, lin, &walk, &e) < 0 || !walk.present)
			return -1;
		pa = walk.pa;
	}
	uint8_t b;
	struct kbu_err e = {0};
	if (pa == 0 || kbu_mem_read(m, KBU_PHYS, pa - 1, &b, 1, &e) != 0)
		return -1;
	return b == 0xf4;
}

static void report_cpu(struct kbu_ctx *ctx, struct kbu_node *list, int cpu,
		       const struct kbu_regs *r, int halted)
{
	struct kbu_node *row = kbu_row(list);
	enum kbu_paging_mode pm = kbu_regs_paging_mode(r);
	char mode[64], buf[256];
	mode_text(r, pm, mode, sizeof mode);
	int w = r->bits == 32 ? 8 : 16;
	kbu_u64(row, "cpu", "CPU", (uint64_t)cpu);

	struct kbu_vcpu_facts facts = {.halted = halted, .hlt_before_rip = -1, .in_kernel_text = -1};
	const struct kbu_sym *rip_sym = NULL;
	uint64_t rip_off = 0;
	if ((r->have & KBU_HAVE_GPR) && ctx->syms) {
		const struct kbu_sym *s = kbu_sym_by_addr(ctx->syms, r->rip, &rip_off);
		/* RIP is code: only a text symbol names it (Linux's per-CPU data and
		 * absolute constants sit at small addresses such as the reset vector). */
		if (s && s->type && strchr("TtWw", s->type) && (!s->size || rip_off < s->size))
			rip_sym = s;
		facts.in_kernel_text = rip_sym != NULL;
	}
	if (halted < 0 && (r->have & KBU_HAVE_GPR))
		facts.hlt_before_rip = hlt_before_rip(ctx->mem, r, pm);
	struct kbu_vcpu vc;
	kbu_vcpu_classify(r, cpu, &facts, &vc);
	kbu_display(row, "mode_text", "Mode", "%s", mode);
	kbu_display(row, "state_text", "State", "%s", vc.text);
	kbu_str(row, "mode", "", mode_name(r, pm));
	kbu_str(row, "state", "", kbu_vcpu_state_name(vc.state));
	kbu_str(row, "in", "", kbu_vcpu_where_name(vc.where));
	if (vc.state == KBU_VCPU_HALTED || vc.state == KBU_VCPU_RUNNING)
		kbu_bool(row, "halted", "", vc.state == KBU_VCPU_HALTED);
	else
		kbu_null(row, "halted", "");
	kbu_str(row, "halted_from", "",
		halted >= 0 ? "monitor" : vc.halted_inferred ? "hlt_before_rip" : "none");
	kbu_str(row, "paging", "", pm == KBU_PG_UNKNOWN ? "unknown" : kbu_paging_mode_name(pm));
	kbu_u64(row, "bits", "", (uint64_t)r->bits);
	if (r->have & KBU_HAVE_GPR) {
		kbu_hex(row, "rip", "RIP", r->rip, w);
		if (rip_sym) {
			kbu_display(row, "where", "Where", rip_off ? "%s+0x%" PRIx64 : "%s", rip_sym->name,
				    rip_off);
			kbu_str(row, "rip_symbol", "", rip_sym->name);
			kbu_u64(row, "rip_offset", "", rip_off);
		}
	}
	if (r->have & KBU_HAVE_CR)
		kbu_hex(row, "cr3", "CR3", r->cr3, w);

	if (r->have & KBU_HAVE_GPR) {
		struct kbu_node *g = kbu_obj(row, "gpr", "general registers");
		if (r->bits == 32) {
			kbu_hex(g, "rax", "eax", r->rax, 8), kbu_hex(g, "rbx", "ebx", r->rbx, 8);
			kbu_hex(g, "rcx", "ecx", r->rcx, 8), kbu_hex(g, "rdx", "edx", r->rdx, 8);
			kbu_hex(g, "rsi", "esi", r->rsi, 8), kbu_hex(g, "rdi", "edi", r->rdi, 8);
			kbu_hex(g, "rbp", "ebp", r->rbp, 8), kbu_hex(g, "rsp", "esp", r->rsp, 8);
			kbu_hex(g, "rip", "eip", r->rip, 8), kbu_hex(g, "rflags", "eflags", r->rflags, 8);
		} else {
			const char *names[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
					       "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
					       "rip", "rflags"};
			const uint64_t vals[] = {r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi,
						 r->rbp, r->rsp, r->r8, r->r9, r->r10, r->r11,
						 r->r12, r->r13, r->r14, r->r15, r->rip, r->rflags};
			for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
				kbu_hex(g, names[i], NULL, vals[i], 16);
		}
	}
	if (r->have & KBU_HAVE_SEG) {
		struct kbu_node *s = kbu_list(row, "segments", "segments");
		const char *names[] = {"cs", "ss", "ds", "es", "fs", "gs"};
		const uint16_t sel[] = {r->cs, r->ss, r->ds, r->es, r->fs, r->gs};
		const uint64_t base[] = {r->cs_base, r->ss_base, r->ds_base, r->es_base, r->fs_base, r->gs_base};
		for (int i = 0; i < 6; i++) {
			struct kbu_node *sr = kbu_row(s);
			kbu_str(sr, "name", "Seg", names[i]);
			kbu_hex(sr, "selector", "Selector", sel[i], 4);
			if (r->have & KBU_HAVE_SEGBASE)
				kbu_hex(sr, "base", "Base", base[i], 16);
		}
	}
	if (r->have & (KBU_HAVE_CR | KBU_HAVE_EFER | KBU_HAVE_DT)) {
		struct kbu_node *c = kbu_obj(row, "control", "control registers");
		if (r->have & KBU_HAVE_CR) {
			flags_text(r->cr0, cr0_flags, buf, sizeof buf);
			kbu_display(c, "cr0_text", "cr0", "0x%08" PRIx64 "  %s", r->cr0, buf);
			kbu_hex(c, "cr0", "", r->cr0, 8);
			flags_list(c, "cr0_flags", r->cr0, cr0_flags);
			kbu_hex(c, "cr2", NULL, r->cr2, 16);
			kbu_hex(c, "cr3", NULL, r->cr3, 16);
			flags_text(r->cr4, cr4_flags, buf, sizeof buf);
			kbu_display(c, "cr4_text", "cr4", "0x%08" PRIx64 "  %s", r->cr4, buf);
			kbu_hex(c, "cr4", "", r->cr4, 8);
			flags_list(c, "cr4_flags", r->cr4, cr4_flags);
		}
		if (r->have & KBU_HAVE_EFER) {
			flags_text(r->efer, efer_flags, buf, sizeof buf);
			kbu_display(c, "efer_text", "efer", "0x%08" PRIx64 "  %s", r->efer, buf);
			kbu_hex(c, "efer", "", r->efer, 8);
			flags_list(c, "efer_flags", r->efer, efer_flags);
		} else {
			kbu_null(c, "efer", "");
			kbu_null(c, "efer_flags", "");
			kbu_display(c, "efer_text", "efer", "not recorded by this source");
		}
		if (r->have & KBU_HAVE_SEGBASE)
			kbu_hex(c, "kernel_gs_base", NULL, r->kernel_gs_base, 16);
		if (r->have & KBU_HAVE_DT) {
			kbu_display(c, "gdt_text", "gdt", "base 0x%016" PRIx64 " limit 0x%04" PRIx32,
				    r->gdt_base, r->gdt_limit);
			kbu_hex(c, "gdt_base", "", r->gdt_base, 16);
			kbu_hex(c, "gdt_limit", "", r->gdt_limit, 4);
			kbu_display(c, "idt_text", "idt", "base 0x%016" PRIx64 " limit 0x%04" PRIx32,
				    r->idt_base, r->idt_limit);
			kbu_hex(c, "idt_base", "", r->idt_base, 16);
			kbu_hex(c, "idt_limit", "", r->idt_limit, 4);
		}
	}

	/* Consistency checks a porter would otherwise do by hand. */
	if (vc.state == KBU_VCPU_RESET)
		kbu_finding(row, KBU_SEV_NOTE, "cpus.reset_vector",
			    "CPU 0 is at the reset vector (f000:fff0): nothing has run yet");
	else if (vc.state == KBU_VCPU_WAIT_SIPI)
		kbu_finding(row, KBU_SEV_NOTE, "cpus.wait_for_sipi",
			    "this CPU is in its INIT state (f000:fff0, waiting for SIPI): never started, "
			    "or parked with INIT by the kernel (some kernels do so when they stop the "
			    "other CPUs on panic)");
	if (!(r->have & KBU_HAVE_CR))
		return;
	if ((r->cr0 & (1ull << 31)) && !(r->cr0 & 1))
		kbu_problem(row, KBU_SEV_WARN, "CR0.PG is set without CR0.PE: not a valid CPU state");
	if ((r->have & KBU_HAVE_EFER) && (r->efer & (1 << 10)) && !(r->cr4 & (1 << 5)))
		kbu_problem(row, KBU_SEV_WARN, "EFER.LMA is set but CR4.PAE is clear: not a valid CPU state");
	if (!(r->have & KBU_HAVE_EFER) && (pm == KBU_PG_4LEVEL || pm == KBU_PG_5LEVEL || pm == KBU_PG_PAE))
		kbu_problem(row, KBU_SEV_NOTE,
			    "EFER is not recorded here; %s inferred from the %d-bit register state",
			    pm == KBU_PG_PAE ? "PAE (not long) mode" : "long mode", r->bits);
	if (pm == KBU_PG_OFF || pm == KBU_PG_UNKNOWN)
		return;
	int known;
	uint64_t root = pm == KBU_PG_32 ? r->cr3 & 0xfffff000ull :
			pm == KBU_PG_PAE ? r->cr3 & 0xffffffe0ull : r->cr3 & 0x000ffffffffff000ull;
	if (!in_ranges(ctx->mem, root, &known) && known) {
		kbu_problem(row, KBU_SEV_WARN, "CR3 0x%" PRIx64 " points outside guest memory", r->cr3);
		return;
	}
	if (r->have & KBU_HAVE_GPR) {
		struct kbu_walk walk;
		struct kbu_err e = {0};
		uint64_t rip = r->rip + ((r->bits == 32 || pm < KBU_PG_4LEVEL) ? r->cs_base : 0);
		if (pm < KBU_PG_4LEVEL)
			rip &= 0xffffffffull;
		if (kbu_vtop(ctx->mem, pm, r->cr3, rip, &walk, &e) < 0)
			kbu_problem(row, KBU_SEV_WARN, "cannot translate RIP: %s", e.msg);
		else if (!walk.present)
			kbu_problem(row, KBU_SEV_WARN,
				    "RIP 0x%" PRIx64 " is not mapped: %s entry %u at 0x%" PRIx64 " is not present",
				    rip, walk.steps[walk.fault_step].level, walk.steps[walk.fault_step].index,
				    walk.steps[walk.fault_step].entry_pa);
		else
			kbu_hex(row, "rip_phys", "", walk.pa, 0);
	}
}

static int run_cpus(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		    struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {{"cpu", 'c', 1}, {NULL, 0, 0}};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	int only = -1, i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG)
			return kbu_err_set(err, KBU_EINVAL, "unexpected argument '%s'", g.arg);
		uint64_t v;
		if (kbu_parse_u64(g.arg, &v, err) < 0)
			return kbu_err_prefix(err, "--cpu");
		if (v > 4096)
			return kbu_err_set(err, KBU_EINVAL, "--cpu %" PRIu64 " is not a CPU number", v);
		only = (int)v;
	}
	int n = kbu_mem_ncpus(ctx->mem);
	struct kbu_node *root = kbu_report_root(r);
	const char *kind = kbu_mem_kind(ctx->mem);
	kbu_str(root, "source", "Source", kind);
	const char *count_from = n <= 0 ? "no CPU list in this source: CPU 0 only"
		: strcmp(kind, "core") == 0 ? "the dump's CPU notes (one NT_PRSTATUS per vCPU)"
		: strcmp(kind, "gdb") == 0 ? "the stub's thread list (one thread per vCPU)"
		: strcmp(kind, "debugger") == 0 ? "GDB's thread list (one thread per vCPU)"
						: "the source's CPU list";
	if (n <= 0) {
		/* Sources that cannot count CPUs still answer for CPU 0. */
		struct kbu_regs probe;
		if (kbu_mem_regs(ctx->mem, 0, &probe, err) < 0)
			return kbu_err_prefix(err, "no CPU registers");
		n = 1;
	}
	kbu_u64(root, "ncpus", "CPUs", (uint64_t)n);
	uint64_t first_dup = 0;
	size_t dups = strcmp(kind, "gdb") == 0
			      ? kbu_gdb_duplicate_threads(kbu_mem_source_ctx(ctx->mem), &first_dup)
			      : 0;
	if (dups) {
		/* A stub that names a thread twice would count a vCPU twice: kbu counts it once. */
		struct kbu_node *f = kbu_finding(
			root, KBU_SEV_WARN, "cpus.duplicate_thread_ids",
			"the stub named thread %" PRIx64 " %s in its thread list (%zu repeated id%s): "
			"each thread counted once, %d CPU%s", first_dup,
			dups == 1 ? "twice" : "more than once", dups, dups == 1 ? "" : "s", n,
			n == 1 ? "" : "s");
		kbu_hex(f, "first_thread", NULL, first_dup, 0);
		kbu_u64(f, "repeated_ids", NULL, dups);
		kbu_u64(f, "cpus", NULL, (uint64_t)n);
	}
	/* Where the count and the halted flags come from: apart, so "CPUs:" keeps its column. */
	struct kbu_node *about = kbu_obj(root, "vcpus", "");
	kbu_str(about, "count_from", "counted from", count_from);
	/* Halted or running: QEMU's monitor knows (HLT= in `info registers -a`); a dump does not. */
	char *regs_text = NULL;
	struct kbu_err me = {0};
	int have_monitor = kbu_mem_monitor(ctx->mem, "info registers -a", &regs_text, &me) == 0;
	if (have_monitor)
		kbu_str(about, "halted_from", "halted from",
			"QEMU's monitor (HLT= in info registers -a)");
	else if (me.code == KBU_EUNSUPPORTED)
		kbu_str(about, "halted_from", "halted from",
			strcmp(kind, "core") == 0
				? "not recorded in a dump: inferred only where the byte before RIP is HLT"
				: "no QEMU monitor here: inferred only where the byte before RIP is HLT");
	else
		kbu_strf(about, "halted_from", "halted from",
			 "the monitor failed (%s): inferred only where the byte before RIP is HLT",
			 me.msg);
	if (only >= n)
		return kbu_err_set(err, KBU_EINVAL, "--cpu %d: the source has %d CPU%s", only, n,
				   n == 1 ? "" : "s");
	struct kbu_node *list = kbu_list(root, "cpus", "");
	for (int cpu = 0; cpu < n; cpu++) {
		if (only >= 0 && cpu != only)
			continue;
		struct kbu_regs regs;
		struct kbu_err e = {0};
		if (kbu_mem_regs(ctx->mem, cpu, &regs, &e) < 0) {
			/* Without CPU 0 there is nothing to show; a later CPU is flagged, not fatal. */
			if (cpu == 0 || only >= 0) {
				*err = e;
				return kbu_err_prefix(err, "CPU %d", cpu);
			}
			struct kbu_node *row = kbu_row(list);
			kbu_u64(row, "cpu", "CPU", (uint64_t)cpu);
			kbu_str(row, "mode", "Mode", "registers unavailable");
			kbu_problem(row, KBU_SEV_ERROR, "CPU %d: %s", cpu, e.msg);
			continue;
		}
		report_cpu(ctx, list, cpu, &regs,
			   have_monitor ? kbu_qemu_cpu_halted(regs_text, cpu) : -1);
	}
	free(regs_text);
	struct kbu_mem_stats st = kbu_mem_get_stats(ctx->mem);
	struct kbu_node *io = kbu_obj(root, "reads", "");
	kbu_u64(io, "source_reads", "", st.source_reads);
	kbu_u64(io, "source_bytes", "", st.source_bytes);
	return 0;
}

static struct kbu_command cmd_cpus = {
	.name = "cpus",
	.summary = "per-CPU registers, CR0/CR4/EFER decoded, and the mode and paging level each CPU is in",
	.help = "usage: kbu cpus [--cpu N]   (with --core, --phys or --gdb)\n"
		"\n"
		"Shows every vCPU of the VM (counted from a dump's CPU notes or the stub's\n"
		"thread list) and its state: at the reset vector, waiting for SIPI (INIT\n"
		"state: CS base 0xffff0000, RIP 0xfff0), halted (QEMU's monitor shows HLT=1\n"
		"in `info registers -a`; a dump records no halted flag, so there a HLT just\n"
		"before RIP is the only hint, and said so) or running, in kernel or firmware\n"
		"code. Then its registers: the mode it\n"
		"is in (real, protected, long) and its paging level, derived from CR0.PE/PG,\n"
		"CR4.PAE/LA57 and EFER.LMA; CR0, CR4 and EFER decoded into flag names;\n"
		"segments, GDT and IDT. With symbols, RIP is shown as symbol+offset.\n"
		"Flags an invalid combination, a CR3 outside guest memory, and a RIP the\n"
		"CPU's own page tables do not map.\n"
		"\n"
		"  --cpu N   only CPU N\n",
	.needs = KBU_NEEDS_MEM,
	.run = run_cpus,
};
KBU_COMMAND(cmd_cpus)
