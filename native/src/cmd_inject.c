/*
 * kbu inject-site: where, and whether, a debugger can make a stopped vCPU run
 * one instruction of its own (CPUID, a load from the local APIC page): the
 * linear address of its code in the mode it is in (real mode: CS base + IP),
 * whether a single step can return (a vCPU halted with interrupts off never
 * runs again until an NMI, INIT or SMI; one waiting for SIPI runs nothing),
 * which other vCPU could answer instead, and the linear address through
 * which the vCPU's own page tables reach the local APIC page.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdb_qemu.h"
#include "kbu/command.h"
#include "kbu/mem.h"
#include "kbu/pagefind.h"
#include "kbu/regs.h"
#include "kbu/report.h"
#include "kbu/util.h"
#include "kbu/vcpu.h"

#define LAPIC_BASE 0xfee00000ull
#define PAGEFIND_BUDGET 256

enum step_when { STEP_NOW, STEP_ON_INTERRUPT, STEP_NEVER };

struct site {
	int cpu;
	struct kbu_regs r;
	int have_regs;
	int halted;          /* 1, 0, -1 unknown */
	int bases_known;     /* CS/DS bases from the monitor (or long mode: 0) */
	const char *mode;    /* "real", "protected", "long" */
	uint64_t code;       /* linear address of RIP */
	struct kbu_vcpu vc;
	int when;            /* enum step_when */
	char why[640];
};

static const char *mode_of(const struct kbu_regs *r)
{
	if (!(r->have & KBU_HAVE_CR) || !(r->cr0 & 1))
		return (r->have & KBU_HAVE_CR) ? "real" : "unknown";
	if ((r->have & KBU_HAVE_EFER) && (r->efer & 0x400))
		return "long";
	return "protected";
}

static void study(struct kbu_ctx *ctx, const char *regs_text, int cpu, struct site *s)
{
	memset(s, 0, sizeof *s);
	s->cpu = cpu;
	s->halted = -1;
	struct kbu_err e;
	if (kbu_mem_regs(ctx->mem, cpu, &s->r, &e) < 0) {
		snprintf(s->why, sizeof s->why, "no registers for vCPU %d: %s", cpu, e.msg);
		s->when = STEP_NEVER;
		s->mode = "unknown";
		return;
	}
	s->have_regs = 1;
	s->mode = mode_of(&s->r);
	if (regs_text) {
		s->halted = kbu_qemu_cpu_halted(regs_text, cpu);
		struct kbu_regs mon = s->r;
		int bases = 0, dt = 0;
		gdbq_parse_info_registers(regs_text, cpu, &mon, &bases, &dt);
		if (bases) {
			s->r.cs_base = mon.cs_base;
			s->r.ds_base = mon.ds_base;
			s->r.have |= KBU_HAVE_SEGBASE;
			s->bases_known = 1;
		}
	}
	if (strcmp(s->mode, "long") == 0) {
		s->bases_known = 1;
		s->r.cs_base = s->r.ds_base = 0;
	} else if (!s->bases_known && (s->r.have & KBU_HAVE_SEG) && strcmp(s->mode, "real") == 0) {
		/* No monitor: real-mode bases are selector * 16, except in the reset state. */
		int reset = s->r.cs == 0xf000 && (s->r.rip & 0xffff) == 0xfff0;
		s->r.cs_base = reset ? 0xffff0000ull : (uint64_t)s->r.cs << 4;
		s->r.ds_base = (uint64_t)s->r.ds << 4;
	}
	if (strcmp(s->mode, "real") == 0)
		s->code = (s->r.cs_base + (s->r.rip & 0xffff)) & 0xffffffffull;
	else if (strcmp(s->mode, "protected") == 0)
		s->code = (s->r.cs_base + s->r.rip) & 0xffffffffull;
	else
		s->code = s->r.rip;
	struct kbu_vcpu_facts f = {.halted = s->halted, .hlt_before_rip = -1, .in_kernel_text = -1};
	kbu_vcpu_classify(&s->r, cpu, &f, &s->vc);
	int intr = (s->r.rflags >> 9) & 1;
	if (s->vc.state == KBU_VCPU_WAIT_SIPI && s->halted != 0) {
		s->when = STEP_NEVER;
		snprintf(s->why, sizeof s->why,
			 "vCPU %d is waiting for SIPI (its INIT state): it executes nothing until the "
			 "kernel starts it", cpu);
	} else if (s->halted == 1 && !intr) {
		s->when = STEP_NEVER;
		snprintf(s->why, sizeof s->why,
			 "vCPU %d is halted with interrupts off (HLT with IF=0): only an NMI, INIT or "
			 "SMI would wake it, and the kernel would see each of them", cpu);
	} else if (s->halted == 1) {
		s->when = STEP_ON_INTERRUPT;
		snprintf(s->why, sizeof s->why,
			 "vCPU %d is halted with interrupts on: the step runs when the next interrupt "
			 "wakes it (held for the step, delivered when the guest goes on, as after its "
			 "HLT)", cpu);
	} else {
		s->when = STEP_NOW;
		snprintf(s->why, sizeof s->why, "vCPU %d runs: a single step returns", cpu);
	}
}

static const char *when_name(int w)
{
	return w == STEP_NOW ? "now" : w == STEP_ON_INTERRUPT ? "on_interrupt" : "never";
}

/* The linear address through which the vCPU itself reaches physical `base`. */
static void lapic_site(struct kbu_ctx *ctx, const struct site *s, uint64_t base,
		       struct kbu_node *o)
{
	kbu_hex(o, "base", "base (physical)", base, 8);
	if (strcmp(s->mode, "real") == 0) {
		kbu_null(o, "linear", "linear address");
		kbu_str(o, "how", "how", "none: in real mode 64 KiB segments cannot reach it");
		return;
	}
	if (!(s->r.have & KBU_HAVE_CR) || !(s->r.cr0 & 0x80000000u)) {
		if (!s->bases_known) {
			kbu_hex(o, "linear", "linear address", base, 8);
			kbu_str(o, "how", "how", "paging off: the physical address itself (segment bases "
				"unknown: assumed flat)");
		} else {
			kbu_hex(o, "linear", "linear address", (base - s->r.ds_base) & 0xffffffffull, 8);
			kbu_str(o, "how", "how", "paging off: the physical address itself");
		}
		return;
	}
	struct kbu_pagefind f;
	struct kbu_err e;
	enum kbu_paging_mode pm = kbu_regs_paging_mode(&s->r);
	int rc = kbu_pagefind(ctx->mem, pm, s->r.cr3, base, PAGEFIND_BUDGET, &f, &e);
	kbu_u64(o, "tables_read", "", f.tables_read);
	if (rc == 1) {
		kbu_hex(o, "linear", "linear address", f.va, 16);
		kbu_u64(o, "page_size", "", f.page_size);
		kbu_bool(o, "cache_disabled", "", f.cache_disabled);
		kbu_strf(o, "how", "how", "mapped by the vCPU's page tables (CR3 0x%" PRIx64
			 ", %s page%s)", s->r.cr3, f.page_size == 4096 ? "4 KiB"
			 : f.page_size == (2u << 20) ? "2 MiB" : f.page_size == (1u << 30) ? "1 GiB"
			 : "large", f.cache_disabled ? ", cache disabled" : "");
		return;
	}
	kbu_null(o, "linear", "linear address");
	if (rc < 0)
		kbu_strf(o, "how", "how", "none: %s", e.msg);
	else if (f.budget_exhausted)
		kbu_strf(o, "how", "how", "none found in the first %zu page tables under CR3 0x%" PRIx64,
			 f.tables_read, s->r.cr3);
	else
		kbu_strf(o, "how", "how", "none: the vCPU's page tables (CR3 0x%" PRIx64 ") do not map "
			 "it (yet)", s->r.cr3);
}

static int inject_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		      struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {
		{"cpu", 0, 1}, {"lapic", 0, 0}, {"apic-base", 0, 1}, {NULL, 0, 0},
	};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	uint64_t cpu = 0, base = LAPIC_BASE;
	int want_lapic = 0, i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG)
			return kbu_err_set(err, KBU_EINVAL, "unexpected argument '%s'", g.arg);
		if (i == 0 && (kbu_parse_u64(g.arg, &cpu, err) < 0 || cpu > 4095))
			return kbu_err_set(err, KBU_EINVAL, "--cpu '%s' is not a CPU number", g.arg);
		if (i == 1)
			want_lapic = 1;
		if (i == 2) {
			if (kbu_parse_u64(g.arg, &base, err) < 0 || (base & 0xfff))
				return kbu_err_set(err, KBU_EINVAL,
						   "--apic-base '%s' is not a page-aligned address", g.arg);
			want_lapic = 1;
		}
	}
	int n = kbu_mem_ncpus(ctx->mem);
	if (n <= 0)
		n = 1;
	if ((int)cpu >= n)
		return kbu_err_set(err, KBU_EINVAL, "--cpu %d: the VM has %d vCPU%s", (int)cpu, n,
				   n == 1 ? "" : "s");
	char *text = NULL;
	struct kbu_err me = {0};
	int have_monitor = kbu_mem_monitor(ctx->mem, "info registers -a", &text, &me) == 0;
	struct site *all = calloc((size_t)n, sizeof *all);
	if (!all) {
		free(text);
		return kbu_err_set(err, KBU_ENOMEM, "out of memory");
	}
	for (int c = 0; c < n; c++)
		study(ctx, have_monitor ? text : NULL, c, &all[c]);
	const struct site *s = &all[cpu];
	struct kbu_node *root = kbu_report_root(r);
	kbu_u64(root, "cpu", "vCPU", cpu);
	kbu_str(root, "state", "state", kbu_vcpu_state_name(s->vc.state));
	kbu_str(root, "mode", "mode", s->mode);
	if (s->have_regs) {
		kbu_hex(root, "rip", "RIP", s->r.rip, 16);
		kbu_hex(root, "cs_base", "CS base", s->r.cs_base, 8);
		kbu_hex(root, "code", "code at (linear)", s->code, 16);
		kbu_bool(root, "interrupts", "interrupts on (IF)", (int)((s->r.rflags >> 9) & 1));
	}
	kbu_bool_or_null(root, "halted", "halted (HLT)", s->halted);
	kbu_str(root, "halted_from", "", have_monitor ? "monitor" : "unknown");
	kbu_bool(root, "bases_known", "", s->bases_known);
	kbu_bool(root, "can_step", "can step", s->when != STEP_NEVER);
	kbu_str(root, "step", "", when_name(s->when));
	kbu_str(root, "why", "why", s->why);
	if (!have_monitor)
		kbu_finding(root, KBU_SEV_NOTE, "inject.no_monitor",
			    "no QEMU monitor here (%s): whether the vCPU is halted is not known, and "
			    "outside long mode the segment bases are inferred", me.msg);
	struct kbu_node *others = kbu_list(root, "vcpus", "vCPUs");
	struct kbu_node *answer = kbu_list(root, "answer_from", "");
	char who[256] = "";
	size_t wl = 0;
	for (int c = 0; c < n; c++) {
		struct kbu_node *row = kbu_row(others);
		kbu_u64(row, "cpu", "vCPU", (uint64_t)c);
		kbu_str(row, "state", "state", kbu_vcpu_state_name(all[c].vc.state));
		kbu_str(row, "mode", "mode", all[c].mode);
		kbu_str(row, "step", "can step", when_name(all[c].when));
		if (c != (int)cpu && all[c].when == STEP_NOW) {
			kbu_item_u64(answer, (uint64_t)c);
			if (wl < sizeof who - 16)
				wl += (size_t)snprintf(who + wl, sizeof who - wl, "%s%d", wl ? ", " : "", c);
		}
	}
	if (s->when == STEP_NEVER)
		kbu_finding(root, KBU_SEV_NOTE, "inject.cannot_step", "%s; %s%s", s->why,
			    who[0] ? "vCPUs that can run it now: " : "no other vCPU runs either",
			    who);
	if (who[0])
		kbu_display(root, "others_text", "vCPUs that can run it now", "%s", who);
	if (want_lapic) {
		struct kbu_node *lo = kbu_obj(root, "lapic", "local APIC page, as the vCPU reaches it");
		lapic_site(ctx, s, base, lo);
	}
	free(all);
	free(text);
	return 0;
}

static struct kbu_command cmd_inject = {
	.name = "inject-site",
	.summary = "where and whether a stopped vCPU can run one instruction of kbu's (CPUID, APIC loads)",
	.help = "usage: kbu inject-site [--cpu N] [--lapic] [--apic-base ADDR]   (live: --gdb or in GDB)\n"
		"\n"
		"What kbu cpuid and kbu lapic need before they make a stopped vCPU execute an\n"
		"instruction of their own: the mode the vCPU is in and the linear address of\n"
		"its code (real mode: CS base + IP, the reset vector is 0xfffffff0), whether a\n"
		"single step can return (running: yes; halted in HLT with interrupts on: when\n"
		"the next interrupt comes; halted with interrupts off, or waiting for SIPI:\n"
		"never, and why), and which other vCPU could run it now. --lapic also finds\n"
		"the linear address through which the vCPU's own page tables reach the local\n"
		"APIC page (default 0xfee00000): the physical address while paging is off,\n"
		"else a search of its page tables. Halted flags and segment bases come from\n"
		"QEMU's monitor (`info registers -a`).\n",
	.needs = KBU_NEEDS_MEM,
	.run = inject_run,
};
KBU_COMMAND(cmd_inject)
