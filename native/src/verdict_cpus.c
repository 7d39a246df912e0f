/* kbu verdicts: the CPUs: where-are-my-cpus and mptable-walk. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/acpi.h"
#include "kbu/firmware.h"
#include "kbu/mem.h"
#include "kbu/mptable.h"
#include "kbu/pvh.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/vcpu.h"

#include "verdict_int.h"

/* ---- what the firmware and the VM say about CPUs ---- */

struct cpu_facts {
	int vcpus;                /* vCPUs in the VM */
	int left_reset;           /* of them, vCPUs that left their reset/INIT state, -1 unknown */
	int in_kernel;            /* of them, vCPUs running or halted in kernel code */
	char states[512];         /* "CPU 0 halted in kernel code; CPU 1 waiting for SIPI (INIT state)" */
	int mp;                   /* 1 found, 0 none, -1 unreadable */
	char mp_err[512];
	struct kbu_mptable t;
	size_t mp_cpus;
	char mp_ids[256];
	struct kbu_firmware fw;
	int have_fw;
	int acpi;                 /* 1 found, 0 none, -1 unreadable */
	size_t madt_cpus;
	int have_madt;
};

static void gather_cpu_facts(struct run *v, struct cpu_facts *c)
{
	memset(c, 0, sizeof *c);
	struct kbu_mem *m = v->ctx->mem;
	uint64_t n = 0;
	if (live_u64(v, "vcpus", &n) == 0 && n)
		c->vcpus = (int)n;
	else
		c->vcpus = m ? kbu_mem_ncpus(m) : 0;
	c->left_reset = -1;
	if (m && c->vcpus > 0) {
		char *info = NULL;
		struct kbu_err me = {0};
		int have_mon = kbu_mem_monitor(m, "info registers -a", &info, &me) == 0;
		int left = 0, known = 0, kern = 0;
		for (int cpu = 0; cpu < c->vcpus && cpu < 256; cpu++) {
			struct kbu_regs r;
			struct kbu_err e = {0};
			if (kbu_mem_regs(m, cpu, &r, &e) < 0)
				continue;
			struct kbu_vcpu_facts f = {.halted = have_mon ? kbu_qemu_cpu_halted(info, cpu) : -1,
						   .hlt_before_rip = -1, .in_kernel_text = -1};
			if (v->syms && (r.have & KBU_HAVE_GPR)) {
				uint64_t off = 0;
				const struct kbu_sym *s = kbu_sym_by_addr(v->syms, r.rip,
									  &off);
				f.in_kernel_text = s && s->type && strchr("TtWw", s->type) &&
						   (!s->size || off < s->size);
			}
			struct kbu_vcpu vc;
			kbu_vcpu_classify(&r, cpu, &f, &vc);
			if (vc.state == KBU_VCPU_UNKNOWN)
				continue;
			known++;
			if (vc.state != KBU_VCPU_RESET && vc.state != KBU_VCPU_WAIT_SIPI)
				left++;
			kern += vc.where == KBU_VCPU_IN_KERNEL;
			cat(c->states, sizeof c->states, "%sCPU %d %s", c->states[0] ? "; " : "", cpu,
			    vc.text);
		}
		free(info);
		if (known == c->vcpus) {
			c->left_reset = left;
			c->in_kernel = kern;
		}
	}
	struct kbu_err e = {0};
	memset(&c->t, 0, sizeof c->t);
	if (!m) {
		c->mp = -1;
		snprintf(c->mp_err, sizeof c->mp_err, "no guest memory");
	} else if (kbu_mptable_read(m, 0, 0, &c->t, &e) == 0) {
		c->mp = 1;
		c->mp_cpus = kbu_mptable_ncpus(&c->t);
		for (size_t i = 0; i < c->t.nentries; i++) {
			const struct kbu_mp_entry *en = &c->t.entries[i];
			if (!en->extended && en->type == KBU_MP_PROC)
				cat(c->mp_ids, sizeof c->mp_ids, "%s%u%s", c->mp_ids[0] ? ", " : "",
				    en->u.proc.apic_id, (en->u.proc.flags >> 1) & 1 ? " (BSP)" : "");
		}
	} else {
		c->mp = e.code == KBU_ENOTFOUND ? 0 : -1;
		snprintf(c->mp_err, sizeof c->mp_err, "%s", e.msg);
	}
	struct kbu_acpi a;
	memset(&a, 0, sizeof a);
	if (m) {
		struct kbu_acpi_opts ao = {0};
		struct kbu_err ae = {0};
		if (kbu_acpi_read(m, &ao, &a, &ae) == 0) {
			c->acpi = a.found;
			c->have_madt = a.found && a.madt.present;
			c->madt_cpus = a.madt.ncpus_enabled;
		} else {
			c->acpi = -1;
		}
		struct kbu_fw_known known = {c->mp == 1 ? &c->t : NULL, c->mp == 0, c->acpi >= 0 ? &a : NULL,
					     NULL};
		struct kbu_err fe = {0};
		c->have_fw = kbu_firmware_identify(m, &known, &c->fw, &fe) == 0 &&
			     c->fw.kind != KBU_FW_UNKNOWN;
	}
	kbu_acpi_free(&a);
}

/* Evidence and facts for the firmware and the VM's CPUs. */
static void cpu_evidence(struct run *v, struct cpu_facts *c)
{
	if (c->mp == 1) {
		kbu_u64(v->facts, "table_cpus", "", c->mp_cpus);
		evidence(v, "MP table CPUs", "%zu: APIC ids %s", c->mp_cpus, c->mp_ids[0] ? c->mp_ids : "none");
		for (size_t i = 0; i < c->t.nentries; i++) {
			const struct kbu_mp_entry *en = &c->t.entries[i];
			if (en->extended || en->type != KBU_MP_PROC)
				continue;
			evidence(v, "  processor", "APIC id %-3u version 0x%02x  %s, %s", en->u.proc.apic_id,
				 en->u.proc.version, (en->u.proc.flags >> 1) & 1 ? "BSP" : "AP",
				 en->u.proc.flags & 1 ? "usable" : "disabled");
		}
		kbu_u64(v->facts, "table_at", "", c->t.hdr.addr);
		evidence(v, "table", "floating pointer at 0x%" PRIx64 ", config table at 0x%" PRIx64 " (%s)",
			 c->t.fp.addr, c->t.hdr.addr, c->t.hdr.oem_id);
		kbu_u64(v->facts, "entry_count", "", c->t.hdr.entry_count);
		kbu_u64(v->facts, "entries", "", c->t.nbase);
		evidence(v, "header entry_count", "%u (the table holds %zu entries in %u bytes)",
			 c->t.hdr.entry_count, c->t.nbase, c->t.hdr.base_len);
		for (size_t i = 0; i < c->t.nproblems; i++)
			if (c->t.problems[i].sev >= KBU_SEV_WARN)
				finding(v, c->t.problems[i].code ? c->t.problems[i].code : "mptable",
					"MP table: %s", c->t.problems[i].msg);
	} else {
		kbu_null(v->facts, "table_cpus", "");
		evidence(v, "MP table", "%s", c->mp == 0 ? "none" : c->mp_err);
	}
	if (c->have_madt) {
		kbu_u64(v->facts, "madt_cpus", "", c->madt_cpus);
		evidence(v, "ACPI MADT CPUs", "%zu", c->madt_cpus);
	} else {
		kbu_null(v->facts, "madt_cpus", "");
		evidence(v, "ACPI MADT", "%s", c->acpi == 0 ? "none (no ACPI)" : c->acpi < 0
			 ? "not readable" : "no MADT");
	}
	if (c->have_fw) {
		kbu_str(v->facts, "firmware", "", c->fw.name);
		evidence(v, "firmware", "%s (%s)", c->fw.name, c->fw.how);
	} else {
		kbu_null(v->facts, "firmware", "");
	}
	if (c->vcpus > 0) {
		kbu_u64(v->facts, "vcpus", "", (uint64_t)c->vcpus);
		evidence(v, "vCPUs in the VM", "%d", c->vcpus);
	}
	if (c->left_reset >= 0) {
		kbu_u64(v->facts, "vcpus_started", "", (uint64_t)c->left_reset);
		kbu_u64(v->facts, "vcpus_in_kernel", "", (uint64_t)c->in_kernel);
		evidence(v, "vCPUs that left reset", "%d of %d", c->left_reset, c->vcpus);
		evidence(v, "vCPU states", "%s", c->states);
	}
}

/* The CPU count the kernel keeps (profile role ncpus), or -1. */
static int64_t kernel_cpus(struct run *v, char *text, size_t len)
{
	const struct kbu_triage_kstate *ks = kstate(v);
	text[0] = '\0';
	if (ks->ncpus.state != KBU_TRIAGE_VAR_OK)
		return -1;
	snprintf(text, len, "%s = %" PRIu64, ks->ncpus.symbol, ks->ncpus.value);
	return (int64_t)ks->ncpus.value;
}

/* 1 if any of the profile's mp_parser symbols exists, 0 if none, -1 if it names none. */
static int has_mp_parser(struct run *v)
{
	const struct kbu_os_profile *p = profile(v);
	char w[64];
	if (!p || !kbu_os_role(p, "mp_parser"))
		return -1;
	for (size_t i = 0; kbu_os_role_word(p, "mp_parser", i, w, sizeof w); i++)
		if (v->syms && kbu_sym_by_name(v->syms, w))
			return 1;
	return 0;
}

/* ---- where-are-my-cpus ---- */

/* "the MP table lists N, the MADT lists M": the firmware tables that were read. */
static void tables_text(const struct cpu_facts *c, char *buf, size_t len)
{
	buf[0] = '\0';
	if (c->mp == 1)
		cat(buf, len, "the MP table lists %zu", c->mp_cpus);
	if (c->have_madt)
		cat(buf, len, "%sthe MADT lists %zu", buf[0] ? ", " : "", c->madt_cpus);
}

void q_cpus(struct run *v)
{
	struct cpu_facts c;
	gather_cpu_facts(v, &c);
	cpu_evidence(v, &c);
	char ktext[128];
	int64_t kcpus = kernel_cpus(v, ktext, sizeof ktext);
	if (kcpus >= 0) {
		kbu_u64(v->facts, "kernel_cpus", "", (uint64_t)kcpus);
		evidence(v, "kernel's CPU count", "%s", ktext);
	} else {
		kbu_null(v->facts, "kernel_cpus", "");
	}
	/* Every layer's count side by side: where the number drops is where CPUs got lost. */
	char col[6][16];
	snprintf(col[0], sizeof col[0], c.vcpus > 0 ? "%d" : "?", c.vcpus);
	snprintf(col[1], sizeof col[1], c.mp == 1 ? "%zu" : "-", c.mp_cpus);
	snprintf(col[2], sizeof col[2], c.have_madt ? "%zu" : "-", c.madt_cpus);
	snprintf(col[3], sizeof col[3], kcpus >= 0 ? "%" PRId64 : "?", kcpus);
	snprintf(col[4], sizeof col[4], c.left_reset >= 0 ? "%d" : "?", c.left_reset);
	snprintf(col[5], sizeof col[5], c.left_reset >= 0 && v->syms ? "%d" : "?", c.in_kernel);
	evidence(v, "CPUs by layer", "vCPUs  MP table  MADT  kernel  left reset  in kernel code\n"
		 "%-5s  %-8s  %-4s  %-6s  %-10s  %s", col[0], col[1], col[2], col[3], col[4], col[5]);
	/* What kernels log about finding CPUs (Linux smpboot/smp/APIC lines, BSD MPTable lines). */
	struct lines lg = log_lines(v, "(^smpboot: |^smp: |^APIC: |SMP disabled|SMP configuration|"
				    "MP-BIOS|^MPTable|^cpu[0-9]+: |CPUs? (found|detected)|^FreeBSD/SMP|"
				    "^ACPI: .*APIC)", 0);
	log_fact(v, &lg, 50);
	int64_t brought = -1;
	for (size_t i = 0; i < lg.n; i++) {
		const char *b = strstr(lg.l[i], "Brought up ");
		const char *cp = b ? strstr(b, ", ") : NULL;
		if (cp)
			brought = strtoll(cp + 2, NULL, 10);
	}
	int64_t found = kcpus >= 0 ? kcpus : brought;
	int n = c.vcpus;
	/* A panicking kernel takes its other CPUs offline (Linux drops __num_online_cpus as
	 * panic() stops them): vCPUs seen in kernel code count as found. */
	char offline[256] = "";
	if (found >= 1 && c.left_reset >= 0 && v->syms && c.in_kernel > found && panicked(v, NULL, 0)) {
		snprintf(offline, sizeof offline, "; the kernel counts %" PRId64 " (%s) but %d vCPUs ran "
			 "its code: a panic takes the other CPUs offline", found,
			 ktext[0] ? ktext : "its log", c.in_kernel);
		evidence(v, "found", "%d (vCPUs in kernel code; the kernel's count is %" PRId64 ")",
			 c.in_kernel, found);
		found = c.in_kernel;
	}
	char head[1024] = "";
	const char *ids = c.mp_ids[0] ? c.mp_ids : "none";

	if (found < 0) {
		/* No kernel count: the tables and the vCPUs still say most of it. */
		if (c.mp != 1 && !c.have_madt) {
			decide(v, KBU_VERDICT_UNDECIDED, NULL, "give the kernel's symbols (its CPU count) or "
			       "check the VM's firmware tables",
			       "neither a firmware table nor the kernel's CPU count could be read");
			goto out;
		}
		char tables[256];
		tables_text(&c, tables, sizeof tables);
		if (n > 0 && c.left_reset >= 0 && c.left_reset < n) {
			decide(v, KBU_VERDICT_PROBLEM, "cpus.not_started",
			       "give kbu the kernel's symbols: its CPU count says whether it enumerated them "
			       "and failed to start them or never saw them",
			       "%d of %d vCPUs never left their reset state (%s); %s%s", n - c.left_reset, n,
			       c.states, tables, c.mp == 1 && c.mp_cpus < (size_t)n && c.have_fw
			       ? " — a kernel that enumerates from the MP table sees only those" : "");
		} else {
			decide(v, KBU_VERDICT_UNDECIDED, NULL, "give kbu the kernel's symbols (its CPU count)",
			       "%s for %d vCPU%s, but the kernel's CPU count is not known (no ncpus role in "
			       "the %s profile, or no symbols, and no SMP line in its log)", tables, n,
			       n == 1 ? "" : "s", os_name(v));
		}
		goto out;
	}
	if (c.mp != 1 && !c.have_madt) {
		struct lines reason = log_lines(v, "(no SMP configuration|MADT or MP tables are not detected|"
						"Allowing [0-9]+ CPUs)", 0);
		char q[1024];
		quoted(q, sizeof q, &reason, 0);
		decide(v, found <= 1 ? KBU_VERDICT_UNDECIDED : KBU_VERDICT_OK, NULL,
		       "check the VM's firmware tables (ACPI MADT with -M microvm,acpi=on)",
		       "no MP table or MADT was found; the kernel runs %" PRId64 " CPU%s%s%s%s", found,
		       found == 1 ? "" : "s", reason.n ? " (it logs: " : "", reason.n ? q : "",
		       reason.n ? ")" : "");
		lines_free(&reason);
		goto out;
	}
	size_t described = c.mp == 1 ? c.mp_cpus : 0;
	if (c.have_madt && c.madt_cpus > described)
		described = c.madt_cpus;
	size_t want = n > 0 && (size_t)n > described ? (size_t)n : described;
	if ((size_t)found >= want) {
		char more[256] = "";
		if (c.mp == 1 && c.mp_cpus < (size_t)found)
			snprintf(more, sizeof more, "; the MP table (%s) lists only %zu, a kernel that "
				 "enumerates from it would find %zu", c.have_fw ? c.fw.name : "firmware",
				 c.mp_cpus, c.mp_cpus);
		if (c.mp == 1 && c.have_madt)
			decide(v, KBU_VERDICT_OK, NULL, NULL, "the MP table lists %zu CPU%s, the MADT %zu, and "
			       "the kernel found %" PRId64 "%s", c.mp_cpus, c.mp_cpus == 1 ? "" : "s",
			       c.madt_cpus, found, more);
		else if (c.mp == 1)
			decide(v, KBU_VERDICT_OK, NULL, NULL, "the MP table lists %zu CPU%s and the kernel found "
			       "%" PRId64, c.mp_cpus, c.mp_cpus == 1 ? "" : "s", found);
		else
			decide(v, KBU_VERDICT_OK, NULL, NULL, "the MADT lists %zu CPU%s and the kernel found "
			       "%" PRId64, c.madt_cpus, c.madt_cpus == 1 ? "" : "s", found);
		cat(v->cause, sizeof v->cause, "%s", offline);
		goto out;
	}
	/* Fewer CPUs than the VM has: which layer lost them. */
	int parser = has_mp_parser(v);
	/* A count that is only final once the kernel has brought its CPUs up
	 * (profile role ncpus_final_log: the line it logs then), read after a
	 * panic that came first, says nothing about the tables. */
	const struct kbu_os_profile *prof = profile(v);
	const char *final_log = prof ? kbu_os_role(prof, "ncpus_final_log") : NULL;
	char pmsg[256];
	if (final_log && !(c.mp == 1 && parser == 0 && !c.have_madt) && panicked(v, pmsg, sizeof pmsg)) {
		struct lines done = log_lines(v, final_log, 0);
		size_t ndone = done.n;
		lines_free(&done);
		if (!ndone) {
			char tables[256];
			tables_text(&c, tables, sizeof tables);
			decide(v, KBU_VERDICT_UNDECIDED, NULL, "see panic-triage first",
			       "the kernel panicked first (\"%s\") before it brought its CPUs up (its log has "
			       "no line matching %s): its count (%s) holds only the boot CPU so far%s%s",
			       pmsg, final_log, ktext[0] ? ktext : "?", tables[0] ? "; " : "", tables);
			goto out;
		}
	}
	if (c.mp == 1 && parser != 0 && n > 0 && c.mp_cpus < (size_t)n && (size_t)found == c.mp_cpus) {
		char fw[128];
		snprintf(fw, sizeof fw, "%s", c.have_fw ? c.fw.name : "the firmware");
		if (c.have_madt && c.madt_cpus >= (size_t)n)
			decide(v, KBU_VERDICT_PROBLEM, "cpus.mptable_short",
			       "boot with acpi=off (qboot lists every CPU in its MP table) or make the kernel "
			       "enumerate CPUs from the MADT",
			       "%s%s built an MP table with %zu of %d CPUs; the MADT lists %zu; this kernel "
			       "enumerates CPUs from the MP table, so it found %" PRId64, fw,
			       c.acpi == 1 ? " (ACPI on)" : "", c.mp_cpus, n, c.madt_cpus, found);
		else
			decide(v, KBU_VERDICT_PROBLEM, "cpus.mptable_short",
			       "fix the firmware's MP table, or describe the CPUs another way (ACPI MADT)",
			       "%s built an MP table with %zu of %d CPUs (APIC ids %s) and the kernel found %"
			       PRId64 " from it", fw, c.mp_cpus, n, ids, found);
		goto out;
	}
	if (c.mp == 1)
		snprintf(head, sizeof head, "the MP table holds %zu CPU%s (APIC ids %s), the kernel found %"
			 PRId64, c.mp_cpus, c.mp_cpus == 1 ? "" : "s", ids, found);
	else
		snprintf(head, sizeof head, "the MADT lists %zu CPU%s, the kernel found %" PRId64,
			 c.madt_cpus, c.madt_cpus == 1 ? "" : "s", found);
	if (c.mp == 1 && parser == 0 && !c.have_madt) {
		const struct kbu_os_profile *p = profile(v);
		const char *opt = p ? kbu_os_role(p, "mp_parser_option") : NULL;
		kbu_bool(v->facts, "mpparse", "", 0);
		evidence(v, "MP-table parser in kernel", "no (none of %s: %s%s)", kbu_os_role(p, "mp_parser"),
			 opt ? opt : "it was built without one", opt ? " is off" : "");
		struct lines own = log_lines(v, "(no SMP configuration found|MADT or MP tables are not "
					     "detected|not listed by BIOS|SMP disabled|Allowing [0-9]+ "
					     "CPUs|Brought up)", 0);
		char q[1536], nx[512];
		quoted(q, sizeof q, &own, 0);
		snprintf(nx, sizeof nx, "boot with ACPI (-M microvm,acpi=on) so the MADT lists the CPUs, or "
			 "build the kernel with %s%s", opt ? opt : "its MP-table reader", opt ? "=y" : "");
		decide(v, KBU_VERDICT_PROBLEM, "cpus.no_mp_parser", nx,
		       "%s: this kernel has no MP-table parser%s%s%s and microvm with acpi=off gives it no "
		       "MADT, so it runs on the boot CPU only. The kernel says: %s", head,
		       opt ? " (" : "", opt ? opt : "", opt ? " is off)" : "", own.n ? q : "nothing about it");
		lines_free(&own);
		goto out;
	}
	if (parser >= 0)
		kbu_bool(v->facts, "mpparse", "", parser);
	const struct kbu_mp_count_walk *cw = &c.t.count_walk;
	if (c.mp == 1 && c.t.hdr.entry_count == 0 && found == 0) {
		decide(v, KBU_VERDICT_PROBLEM, "cpus.entry_count_zero",
		       "walk the table by base_table_length instead of entry_count (what FreeBSD's and "
		       "NetBSD's MP-table compatibility code do), or patch entry_count first",
		       "%s: the config table's entry_count is 0 (QEMU's qboot writes 0; the table holds %zu "
		       "entries by its base table length %u) and the kernel walked it by entry_count, so "
		       "it saw no entry at all", head, c.t.nbase, c.t.hdr.base_len);
		goto out;
	}
	if (c.mp == 1 && cw->outcome != KBU_MP_COUNT_NONE && cw->outcome != KBU_MP_COUNT_SAME &&
	    (int64_t)cw->cpus == found) {
		decide(v, KBU_VERDICT_PROBLEM, "cpus.count_walk",
		       "walk the table by base_table_length, as kbu does",
		       "%s: a walker that trusts entry_count %u reads %zu entries and %zu CPU%s, as the "
		       "kernel did", head, c.t.hdr.entry_count, cw->entries_read, cw->cpus,
		       cw->cpus == 1 ? "" : "s");
		goto out;
	}
	char q[1536];
	size_t from = lg.n > 3 ? lg.n - 3 : 0;
	quoted(q, sizeof q, &lg, from);
	char started[256] = "";
	if (c.left_reset >= 0 && c.left_reset < n)
		snprintf(started, sizeof started, "; %d of %d vCPUs never left their reset state",
			 n - c.left_reset, n);
	decide(v, KBU_VERDICT_PROBLEM, "cpus.fewer_than_described",
	       "see how the kernel walks the MP table (kbu recipe mptable-walk)", "%s%s%s%s", head,
	       started, lg.n ? "; the kernel log says: " : "", lg.n ? q : "");
out:
	lines_free(&lg);
	kbu_mptable_free(&c.t);
}

/* ---- mptable-walk ---- */

static int is_config(struct kbu_mem *m, uint64_t pa, void *arg)
{
	(void)arg;
	return kbu_mptable_is_config(m, pa);
}

/* The config table the kernel itself points at (profile role mp_table), or 0. */
static uint64_t kernel_table(struct run *v, char *sym, size_t symlen, char *how, size_t howlen)
{
	const struct kbu_os_profile *p = profile(v);
	char w[64];
	if (!p || !v->syms || !v->ctx->mem)
		return 0;
	for (size_t i = 0; kbu_os_role_word(p, "mp_table", i, w, sizeof w); i++) {
		const struct kbu_sym *s = kbu_sym_by_name(v->syms, w);
		if (!s)
			continue;
		struct kbu_kvar kv;
		int kind = kbu_kvar_follow(v->ctx->mem, v->ctx->kernel, s->addr,
					   is_config, NULL, &kv);
		kbu_kvar_describe(&kv, w, s->addr, "\"PCMP\" config table", how, howlen);
		snprintf(sym, symlen, "%s", w);
		if (kind == KBU_KVAR_IS_STRUCT || kind == KBU_KVAR_PHYS || kind == KBU_KVAR_POINTER)
			return kv.pa;
		return 0;
	}
	return 0;
}

void q_mptable(struct run *v)
{
	struct kbu_mptable t;
	struct kbu_err e = {0};
	memset(&t, 0, sizeof t);
	if (!v->ctx->mem || kbu_mptable_read(v->ctx->mem, 0, 0, &t, &e) < 0) {
		decide(v, KBU_VERDICT_UNDECIDED, NULL, "check the firmware: qboot puts it at 0x9fc00 on -M "
		       "microvm,acpi=off", "no MP table found: %s", v->ctx->mem ? e.msg : "no guest memory");
		kbu_mptable_free(&t);
		return;
	}
	size_t cpus = kbu_mptable_ncpus(&t), nio = 0;
	for (size_t i = 0; i < t.nentries; i++)
		nio += !t.entries[i].extended && t.entries[i].type == KBU_MP_IOAPIC;
	kbu_u64(v->facts, "firmware_table", "", t.hdr.addr);
	kbu_u64(v->facts, "entry_count", "", t.hdr.entry_count);
	kbu_u64(v->facts, "entries", "", t.nbase);
	kbu_u64(v->facts, "base_table_length", "", t.hdr.base_len);
	int sum_ok = t.hdr.sum_checked && t.hdr.sum == 0;
	evidence(v, "firmware table", "config table at 0x%" PRIx64 ": %zu entries in %u bytes, "
		 "entry_count %u, checksum %s", t.hdr.addr, t.nbase, t.hdr.base_len, t.hdr.entry_count,
		 !t.hdr.sum_checked ? "not verified" : sum_ok ? "ok" : "bad");
	kbu_u64(v->facts, "firmware_cpus", "", cpus);
	kbu_u64(v->facts, "firmware_ioapics", "", nio);
	evidence(v, "firmware CPUs", "%zu", cpus);
	evidence(v, "firmware I/O APICs", "%zu", nio);
	const struct kbu_mp_count_walk *cw = &t.count_walk;
	struct kbu_node *cwn = kbu_obj(v->facts, "count_walk", "");
	kbu_str(cwn, "outcome", "", kbu_mptable_count_outcome_name(cw->outcome));
	kbu_u64(cwn, "entries_read", "", cw->entries_read);
	kbu_u64(cwn, "entries_past_end", "", cw->entries_past_end);
	kbu_u64(cwn, "cpus", "", cw->cpus);
	if (cw->outcome == KBU_MP_COUNT_UNKNOWN_TYPE) {
		kbu_u64(cwn, "stop_type", "", cw->stop_type);
		kbu_u64(cwn, "stop_offset", "", cw->stop_offset);
		kbu_u64(cwn, "stop_addr", "", cw->stop_addr);
	}
	static const char *const outcome_text[] = {
		[KBU_MP_COUNT_NONE] = "not walked", [KBU_MP_COUNT_SAME] = "reads the table's entries",
		[KBU_MP_COUNT_SHORT] = "stops before the table ends",
		[KBU_MP_COUNT_PAST_END] = "runs past the table's end",
		[KBU_MP_COUNT_UNKNOWN_TYPE] = "meets an entry type it does not know",
		[KBU_MP_COUNT_UNREADABLE] = "runs into memory that is not there"};
	char stop[96] = "";
	if (cw->outcome == KBU_MP_COUNT_UNKNOWN_TYPE)
		snprintf(stop, sizeof stop, " (type %u at 0x%" PRIx64 ")", cw->stop_type, cw->stop_addr);
	evidence(v, "walk by entry_count", "%s%s: %zu entr%s read (%zu past the end), %zu CPU%s",
		 cw->outcome >= 0 && cw->outcome <= KBU_MP_COUNT_UNREADABLE ? outcome_text[cw->outcome]
		 : kbu_mptable_count_outcome_name(cw->outcome), stop, cw->entries_read,
		 cw->entries_read == 1 ? "y" : "ies", cw->entries_past_end, cw->cpus,
		 cw->cpus == 1 ? "" : "s");
	const char *count_msg = NULL, *first_error = NULL;
	for (size_t i = 0; i < t.nproblems; i++) {
		const struct kbu_finding_rec *pp = &t.problems[i];
		if (pp->sev >= KBU_SEV_WARN)
			finding(v, pp->code ? pp->code : "mptable", "firmware table: %s", pp->msg);
		if (pp->code && (strcmp(pp->code, "mptable.entry_count_past_end") == 0 ||
				 strcmp(pp->code, "mptable.count_walk_unknown_type") == 0) && !count_msg)
			count_msg = pp->msg;
		if (pp->sev >= KBU_SEV_ERROR && !first_error)
			first_error = pp->msg;
	}
	/* The table the kernel walks, when its pointer is known. */
	char sym[64] = "", how[256] = "";
	uint64_t ktab = kernel_table(v, sym, sizeof sym, how, sizeof how);
	if (ktab) {
		kbu_u64(v->facts, "kernel_table", "", ktab);
		evidence(v, "kernel's table", "%s (%s)", ktab == t.hdr.addr ? "the firmware's table itself"
			 : "a copy", how);
	}
	char ktext[128];
	int64_t kcpus = kernel_cpus(v, ktext, sizeof ktext);
	if (kcpus >= 0) {
		kbu_u64(v->facts, "kernel_cpus", "", (uint64_t)kcpus);
		evidence(v, "kernel's CPU count", "%s", ktext);
	}
	const char *msg = strcmp(end_kind(v), "panic") == 0 ? live_str(v, "end.message") : NULL;
	if (msg) {
		kbu_str(v->facts, "panic", "", msg);
		evidence(v, "panic", "\"%s\" in %s", msg, live_str(v, "end.function")
			 ? live_str(v, "end.function") : "?");
	}
	if (ktab && ktab != t.hdr.addr) {
		/* A copy of its own: walk it too; what differs from the firmware's is the kernel's doing. */
		struct kbu_mptable k;
		struct kbu_err ke = {0};
		memset(&k, 0, sizeof k);
		if (kbu_mptable_read_config(v->ctx->mem, ktab, &k, &ke) == 0) {
			for (size_t i = 0; i < k.nproblems; i++)
				if (k.problems[i].sev >= KBU_SEV_ERROR) {
					decide(v, KBU_VERDICT_PROBLEM, "mptable.copy_changed",
					       "find the writer: watch the entry from boot, or break where the "
					       "kernel copies the table",
					       "the kernel's copy of the MP table (%s at 0x%" PRIx64 ") holds %s, "
					       "where the firmware's table at 0x%" PRIx64 " is %s%s%s%s", sym,
					       ktab, k.problems[i].msg, t.hdr.addr, first_error ? "broken too"
					       : "intact: the copy was changed after it was made",
					       msg ? "; the kernel panicked on it: \"" : "", msg ? msg : "",
					       msg ? "\"" : "");
					kbu_mptable_free(&k);
					goto out;
				}
		}
		kbu_mptable_free(&k);
	}
	if (cw->outcome == KBU_MP_COUNT_UNKNOWN_TYPE || cw->outcome == KBU_MP_COUNT_PAST_END) {
		decide(v, KBU_VERDICT_PROBLEM, cw->outcome == KBU_MP_COUNT_UNKNOWN_TYPE
		       ? "mptable.count_walk_unknown_type" : "mptable.entry_count_past_end",
		       "make the table's entry_count match its entries (the VMM that wrote it counts one "
		       "too many: Firecracker's off-by-one), or walk the table by base_table_length as "
		       "FreeBSD's MPTABLE_LINUX_BUG_COMPAT does for a zero count",
		       "%s%s%s%s", count_msg ? count_msg : "entry_count runs past the table",
		       msg ? "; the kernel panicked on it: \"" : "", msg ? msg : "", msg ? "\"" : "");
		goto out;
	}
	if (first_error) {
		decide(v, KBU_VERDICT_PROBLEM, "mptable.broken",
		       "fix the firmware table (or work around it in the kernel's walker)",
		       "the firmware's MP table is broken: %s", first_error);
		goto out;
	}
	if (has_mp_parser(v) == 0) {
		const struct kbu_os_profile *p = profile(v);
		const char *opt = p ? kbu_os_role(p, "mp_parser_option") : NULL;
		kbu_bool(v->facts, "mpparse", "", 0);
		decide(v, KBU_VERDICT_OK, NULL, "kbu recipe where-are-my-cpus says where this kernel "
		       "finds its CPUs", "the firmware's MP table is %s (%zu CPU%s); this kernel has no "
		       "MP-table reader%s%s%s, so it does not walk it", first_error ? "broken" : "sound",
		       cpus, cpus == 1 ? "" : "s", opt ? " (" : "", opt ? opt : "", opt ? " is off)" : "");
		goto out;
	}
	if (kcpus >= 0 && (size_t)kcpus < cpus) {
		char cause[1024];
		snprintf(cause, sizeof cause, "the table holds %zu CPUs but the kernel found %" PRId64, cpus,
			 kcpus);
		if (t.hdr.entry_count == 0)
			cat(cause, sizeof cause, ": the header's entry_count is 0 (QEMU's qboot) and the "
			    "kernel walked the table by entry_count instead of its base table length (%u "
			    "bytes, %zu entries)", t.hdr.base_len, t.nbase);
		decide(v, KBU_VERDICT_PROBLEM, "mptable.kernel_found_fewer",
		       "walk the table by base_table_length, as kbu does", "%s", cause);
		goto out;
	}
	if (msg && (strstr(msg, "MP ") || strstr(msg, "mptable") || strstr(msg, "MP Config"))) {
		decide(v, KBU_VERDICT_PROBLEM, "mptable.panic",
		       "compare the kernel's walker with the entries listed by `kbu mptable`",
		       "the tables look sound but the kernel panicked about them: \"%s\"", msg);
		goto out;
	}
	/* The table's quirks (qboot's) are findings above; the verdict is about the walk. */
	decide(v, KBU_VERDICT_OK, NULL, NULL, "the firmware's MP table is sound (%zu CPU%s%s%s)", cpus,
	       cpus == 1 ? "" : "s", kcpus >= 0 ? ", the kernel found " : "",
	       kcpus >= 0 ? ktext + strcspn(ktext, "=") + 2 : "");
out:
	kbu_mptable_free(&t);
}
