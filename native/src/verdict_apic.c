/* kbu verdicts: the local APIC: x2apic-mode and lapic-state. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/cpuid.h"
#include "kbu/lapic.h"
#include "kbu/mem.h"
#include "kbu/report.h"

#include "verdict_int.h"

/* ---- x2apic-mode ---- */

void q_x2apic(struct run *v)
{
	const struct kbu_json *w = live(v, "watch.x2apic");
	int watched = kbu_json_get_bool(w, "watched", 0);
	const struct kbu_triage_kstate *ks = kstate(v);
	if (ks->x2apic.state != KBU_TRIAGE_VAR_OK) {
		decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "the kernel's x2APIC flag cannot be read: %s",
		       profile(v) ? ks->x2apic.why : v->prof_err);
		return;
	}
	const char *symbol = ks->x2apic.symbol;
	uint64_t flag = ks->x2apic.value;
	kbu_str(v->facts, "variable", "", symbol);
	evidence(v, "variable", "%s", symbol);
	kbu_u64(v->facts, "kernel_x2apic", "", flag);
	char lab[96];
	snprintf(lab, sizeof lab, "%s now", symbol);
	evidence(v, lab, "%" PRIu64 " (%s)", flag, flag ? "x2APIC" : "xAPIC");
	const struct kbu_json *changes = kbu_json_get(w, "changes");
	char who[512] = "";
	if (watched) {
		watch_changes(v, changes);
		if (kbu_json_get_str(w, "summary", NULL))
			kbu_str(v->facts, "summary", "", kbu_json_get_str(w, "summary", ""));
		size_t n = kbu_json_len(changes);
		if (n) {
			const struct kbu_json *c = kbu_json_at(changes, n - 1);
			char o[64], nw[64];
			short_text(kbu_json_get_str(c, "old", "?"), o, sizeof o);
			short_text(kbu_json_get_str(c, "new", "?"), nw, sizeof nw);
			snprintf(who, sizeof who, " (switched %s -> %s at %s on CPU %" PRIu64 ")", o, nw,
				 kbu_json_get_str(c, "where", "?"), kbu_json_get_u64(c, "cpu", 0));
		} else if (flag) {
			/* Nothing the watch saw: set before it was armed, by code that ran
			 * earlier or from a debugger. kbu does not guess which. */
			snprintf(who, sizeof who, " (already %" PRIu64 " when the watch was armed: set "
				 "before, by code that ran earlier or from a debugger)", flag);
		}
	}
	struct kbu_cpuid_set set;
	int have_cpuid = live_cpuid(v, &set) == 0 && kbu_cpuid_find(&set, 1, 0);
	uint32_t ecx = have_cpuid ? kbu_cpuid_find(&set, 1, 0)->ecx : 0;
	/* No vCPU to ask (a dump): leaf 1's ECX as the kernel's own CPUID read
	 * left it in memory (profile role cpuid_1_ecx). */
	char ksym[96] = "";
	uint64_t kecx = 0;
	int from_kernel = !have_cpuid && role_var(v, "cpuid_1_ecx", 4, &kecx, ksym, sizeof ksym) == 0;
	if (from_kernel) {
		have_cpuid = 1;
		ecx = (uint32_t)kecx;
	}
	int cpu_x2 = have_cpuid && ((ecx >> 21) & 1);
	if (have_cpuid)
		kbu_u64(v->facts, "cpuid_1_ecx", "", ecx);
	else
		kbu_null(v->facts, "cpuid_1_ecx", "");
	if (from_kernel) {
		kbu_bool(v->facts, "cpuid_x2apic", "", cpu_x2);
		kbu_str(v->facts, "cpuid_from", "", ksym);
		evidence(v, "CPUID.1:ECX.x2APIC", "%s, as the kernel's %s (0x%08" PRIx32 ", its "
			 "CPUID.1:ECX) holds it", cpu_x2 ? "1 (the CPU offers x2APIC)"
			 : "0 (no x2APIC: xAPIC only)", ksym, ecx);
	} else if (have_cpuid) {
		kbu_str(v->facts, "cpuid_from", "", "vcpu");
		kbu_bool(v->facts, "cpuid_x2apic", "", cpu_x2);
		evidence(v, "CPUID.1:ECX.x2APIC", "%s", cpu_x2 ? "1 (the CPU offers x2APIC)"
							       : "0 (no x2APIC: xAPIC only)");
	} else {
		kbu_null(v->facts, "cpuid_from", "");
		kbu_null(v->facts, "cpuid_x2apic", "");
		evidence(v, "CPUID.1", "not run: %s", live_str(v, "cpuid_error") ? live_str(v, "cpuid_error")
						       : "the debugger gave no CPUID values");
	}
	struct kbu_lapic_mode lm;
	kbu_lapic_mode(NULL, have_cpuid, ecx, 1, flag != 0, &lm);
	char mode[64];
	snprintf(mode, sizeof mode, "%s", lm.mode);
	char *paren = strstr(mode, " (");
	if (paren)
		*paren = '\0';
	kbu_str(v->facts, "apic_mode", "", mode);
	evidence(v, "APIC mode", "%s", lm.mode);
	if (lm.flag_without_cpu)
		finding(v, "lapic.x2apic_flag_without_cpu", "lapic: the kernel's %s says x2APIC but CPUID "
			"has no x2APIC bit: the kernel drives an xAPIC as x2APIC (its MSRs 0x800+ fault)", symbol);
	/* What the kernel said about it, and where it faulted on its APIC. */
	struct lines tl = log_lines(v, "x2apic|RIP: .*apic|unchecked MSR access", 1);
	log_fact(v, &tl, 6);
	lines_free(&tl);
	if (flag && have_cpuid && !cpu_x2) {
		char said[160];
		if (from_kernel)
			snprintf(said, sizeof said, "the kernel's own CPUID.1:ECX (%s = 0x%08" PRIx32 ") "
				 "has no x2APIC bit", ksym, ecx);
		else
			snprintf(said, sizeof said, "CPUID.1:ECX.x2APIC is 0");
		decide(v, KBU_VERDICT_PROBLEM, "x2apic.flag_without_cpu",
		       "only switch to x2APIC when CPUID.1:ECX bit 21 is set (check before setting the "
		       "flag), or run with an x2APIC-capable CPU (KVM, -cpu host or +x2apic)",
		       "%s = %" PRIu64 "%s but %s: this VM has no x2APIC (QEMU's TCG does not emulate "
		       "it), so the APIC is still in xAPIC mode while the kernel treats it as x2APIC "
		       "(x2APIC MSRs 0x800+ fault; an xAPIC page it did not map faults when read)",
		       symbol, flag, who, said);
		return;
	}
	if (flag && cpu_x2) {
		decide(v, KBU_VERDICT_OK, NULL, NULL, "x2APIC mode: %s = %" PRIu64 "%s and "
		       "the CPU offers x2APIC", symbol, flag, who);
		return;
	}
	if (!flag) {
		decide(v, KBU_VERDICT_OK, NULL, NULL, "xAPIC mode: %s = 0%s%s%s", symbol,
		       watched && !kbu_json_len(changes) ? " and it never changed" : who,
		       have_cpuid ? "; the CPU " : "", have_cpuid ? (cpu_x2 ? "offers x2APIC"
									   : "does not offer x2APIC") : "");
		return;
	}
	decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "%s = %" PRIu64 " but whether the CPU offers x2APIC "
	       "is unknown (CPUID not run)", symbol, flag);
}

/* ---- lapic-state ---- */

struct lapic_cpu {
	int cpu, read;
	struct kbu_lapic_state s;
	char why[1024];
	char source[384];     /* where the registers came from, when not the vCPU itself */
};

/* CPU n's local APIC: the registers the debugger read (live "lapic"), else QEMU's monitor. */
static void read_lapic(struct run *v, int cpu, struct lapic_cpu *out)
{
	memset(out, 0, sizeof *out);
	out->cpu = cpu;
	const struct kbu_json *l = live(v, "lapic");
	for (size_t i = 0; i < kbu_json_len(l); i++) {
		const struct kbu_json *c = kbu_json_at(l, i);
		if (kbu_json_get_u64(c, "cpu", (uint64_t)-1) != (uint64_t)cpu)
			continue;
		const struct kbu_json *regs = kbu_json_get(c, "registers");
		for (size_t k = 0; k < kbu_json_len(regs); k++) {
			uint64_t off, val;
			const char *key = kbu_json_key(regs, k);
			char *end;
			off = key ? strtoull(key, &end, 0) : 0;
			if (key && !*end && kbu_json_u64(kbu_json_at(regs, k), &val) == 0 && off < 0x400)
				kbu_lapic_set(&out->s, (unsigned)off, (uint32_t)val);
		}
		out->read = out->s.known != 0;
		if (out->read)
			return;
		/* the vCPU could not read itself: QEMU's view below, and why */
		memset(&out->s, 0, sizeof out->s);
		snprintf(out->source, sizeof out->source, "%s",
			 kbu_json_get_str(c, "error", "the vCPU gave no registers"));
		break;
	}
	char key[24];
	snprintf(key, sizeof key, "%d", cpu);
	const char *not_read = kbu_json_get_str(live(v, "lapic_not_read"), key, NULL);
	if (not_read && !out->source[0])
		snprintf(out->source, sizeof out->source, "%s", not_read);
	char cmd[32], *text = NULL;
	struct kbu_err e = {0};
	snprintf(cmd, sizeof cmd, "info lapic %d", cpu);
	if (!v->ctx->mem || kbu_mem_monitor(v->ctx->mem, cmd, &text, &e) < 0) {
		snprintf(out->why, sizeof out->why, "%s", v->ctx->mem ? e.msg : "no memory source");
		return;
	}
	if (kbu_lapic_parse_qemu(text, &out->s, &e) == 0) {
		out->read = 1;
		if (out->source[0]) {
			char why[300];
			snprintf(why, sizeof why, "%.299s", out->source);
			snprintf(out->source, sizeof out->source, "QEMU's info lapic (not read by the vCPU: "
				 "%s)", why);
		}
	} else {
		snprintf(out->why, sizeof out->why, "%.500s%s%.384s", e.msg,
			 out->source[0] ? "; the vCPU: " : "", out->source);
	}
	free(text);
}

void q_lapic(struct run *v)
{
	struct kbu_cpuid_set set;
	int have_cpuid = live_cpuid(v, &set) == 0 && kbu_cpuid_find(&set, 1, 0);
	uint32_t ecx = have_cpuid ? kbu_cpuid_find(&set, 1, 0)->ecx : 0;
	if (!have_cpuid)
		evidence(v, "CPUID.1", "not run: %s", live_str(v, "cpuid_error") ? live_str(v, "cpuid_error")
						       : "the debugger gave no CPUID values");
	else if (live_str(v, "cpuid_note"))
		evidence(v, "CPUID.1", "%s", live_str(v, "cpuid_note"));
	uint64_t ncpus = 0;
	if (live_u64(v, "vcpus", &ncpus) < 0 || !ncpus)
		ncpus = v->ctx->mem && kbu_mem_ncpus(v->ctx->mem) > 0 ? (uint64_t)kbu_mem_ncpus(v->ctx->mem)
									  : 1;
	const struct kbu_triage_kstate *ks = kstate(v);
	int have_kflag = ks->x2apic.state == KBU_TRIAGE_VAR_OK;
	int ran_on = kbu_json_get_bool(live(v, "end"), "ran_on", 0);
	static const char ran_on_text[] =
		"read after the panic was let run on, and a panicking kernel disables its local APIC "
		"(run lapic-state before panic-triage, or on its own)";
	char first[1024] = "", also[1024] = "";
	size_t nalso = 0;
	struct kbu_node *cl = kbu_list(v->facts, "cpus", "");
	int nread = 0, bsp_enabled = -1, bsp_masked = -1;
	uint32_t bsp_init = 0, bsp_cur = 0;
	char bsp_mode[64] = "", bsp_timer[160] = "";
	for (uint64_t cpu = 0; cpu < ncpus && cpu < 64; cpu++) {
		struct lapic_cpu lc;
		read_lapic(v, (int)cpu, &lc);
		char lab[32];
		snprintf(lab, sizeof lab, "CPU %" PRIu64, cpu);
		if (!lc.read) {
			evidence(v, lab, "not read: %s", lc.why);
			continue;
		}
		nread++;
		const struct kbu_lapic_state *s = &lc.s;
		struct kbu_lapic_mode lm;
		kbu_lapic_mode(s, have_cpuid, ecx, have_kflag, (int)ks->x2apic.value, &lm);
		char mode[64];
		snprintf(mode, sizeof mode, "%s", lm.mode);
		char *paren = strstr(mode, " (");
		if (paren)
			*paren = '\0';
		int svr_known = kbu_lapic_known(s, 0x0f0), timer_known = kbu_lapic_known(s, 0x320);
		uint32_t svr = s->reg[0x0f0 >> 4], timer = s->reg[0x320 >> 4], esr = s->reg[0x280 >> 4];
		uint32_t init = s->reg[0x380 >> 4], cur = s->reg[0x390 >> 4], dcr = s->reg[0x3e0 >> 4];
		int enabled = svr_known ? (int)((svr >> 8) & 1) : -1;
		int masked = timer_known ? (int)((timer >> 16) & 1) : -1;
		char svr_t[160], timer_t[160], dcr_t[64], esr_t[160];
		kbu_lapic_decode_text(0x0f0, svr, svr_t, sizeof svr_t);
		kbu_lapic_decode_text(0x320, timer, timer_t, sizeof timer_t);
		kbu_lapic_decode_text(0x3e0, dcr, dcr_t, sizeof dcr_t);
		kbu_lapic_decode_text(0x280, esr, esr_t, sizeof esr_t);
		struct kbu_node *row = kbu_row(cl);
		kbu_u64(row, "cpu", "", cpu);
		kbu_str(row, "mode", "", mode);
		kbu_bool_or_null(row, "enabled", "", enabled);
		kbu_u64(row, "svr", "", svr);
		kbu_str(row, "timer", "", timer_t);
		kbu_bool_or_null(row, "timer_masked", "", masked);
		kbu_u64(row, "initial_count", "", init);
		kbu_u64(row, "current_count", "", cur);
		kbu_str(row, "divide", "", dcr_t);
		kbu_u64(row, "esr", "", esr);
		evidence(v, lab, "%s; SVR 0x%x: %s", mode, svr, svr_t);
		evidence(v, "  timer", "%s; initial count %u, current %u, %s", timer_t, init, cur, dcr_t);
		if (esr)
			evidence(v, "  ESR", "%s", esr_t);
		if (lc.source[0])
			evidence(v, "  read from", "%s", lc.source);
		if (lm.flag_without_cpu)
			finding(v, "lapic.x2apic_flag_without_cpu", "the kernel's %s says x2APIC but CPUID has "
				"no x2APIC bit: the kernel drives an xAPIC as x2APIC (its MSRs 0x800+ fault)", ks->x2apic.symbol);
		if (cpu == 0) {
			bsp_enabled = enabled;
			bsp_masked = masked;
			bsp_init = init;
			bsp_cur = cur;
			snprintf(bsp_mode, sizeof bsp_mode, "%s", mode);
			snprintf(bsp_timer, sizeof bsp_timer, "%s", timer_t);
			if (enabled == 0)
				snprintf(first, sizeof first, "the boot CPU's local APIC is software-disabled (SVR "
					 "0x%x, bit 8 clear): %s", svr, ran_on ? ran_on_text
					 : "the kernel has not enabled it");
			if (masked == 1 && !init && !ran_on) {
				const char *t = "the boot CPU's APIC timer is not running (LVT masked, initial "
						"count 0): the kernel has not set it up, or has shut it down";
				if (!first[0])
					snprintf(first, sizeof first, "%s", t);
				else if (nalso++ < 2)
					cat(also, sizeof also, "%s%s", also[0] ? "; " : "", t);
			}
			if (lm.flag_without_cpu) {
				char t[256];
				snprintf(t, sizeof t, "the kernel's %s says x2APIC but CPUID has no x2APIC bit: "
					 "the kernel drives an xAPIC as x2APIC (its MSRs 0x800+ fault)", ks->x2apic.symbol);
				if (!first[0])
					snprintf(first, sizeof first, "%s", t);
				else if (nalso++ < 2)
					cat(also, sizeof also, "%s%s", also[0] ? "; " : "", t);
			}
		} else if (enabled == 0) {
			evidence(v, "", "(CPU %" PRIu64 " is as after reset: an AP the kernel has not started)",
				 cpu);
		}
		if (esr) {
			char t[256];
			snprintf(t, sizeof t, "CPU %" PRIu64 " has APIC errors: %s", cpu, esr_t);
			if (!first[0])
				snprintf(first, sizeof first, "%s", t);
			else if (nalso++ < 2)
				cat(also, sizeof also, "%s%s", also[0] ? "; " : "", t);
		}
	}
	struct lines tl = log_lines(v, "(\\bx?apic\\b|lapic)", 1);
	log_fact(v, &tl, 8);
	lines_free(&tl);
	if (!nread) {
		decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "no local APIC could be read (needs QEMU's "
		       "monitor through the stub, or the vCPU's own reads)");
		return;
	}
	if (ran_on && bsp_enabled == 0) {
		decide(v, KBU_VERDICT_UNDECIDED, NULL,
		       "run lapic-state on its own, or before panic-triage, to read it at the panic",
		       "the boot CPU's local APIC is software-disabled, but it was read after the panic was "
		       "let run on, and a panicking kernel disables its local APIC itself%s%s",
		       also[0] ? "; also: " : "", also);
		return;
	}
	if (first[0]) {
		char where[512] = "";
		if (strcmp(end_kind(v), "panic") == 0)
			snprintf(where, sizeof where, " (the kernel stopped in a panic in %s: \"%s\")",
				 live_str(v, "end.function") ? live_str(v, "end.function")
							      : live_str(v, "end.where"),
				 live_str(v, "end.message") ? live_str(v, "end.message") : "");
		decide(v, KBU_VERDICT_PROBLEM, "lapic.state",
		       "see `kbu lapic` for every register and the kernel log lines above; kbu recipe "
		       "x2apic-mode for the mode, panic-triage for the panic",
		       "%s%s%s%s", first, where, also[0] ? "; also: " : "", also);
		return;
	}
	char timer[256];
	snprintf(timer, sizeof timer, "timer %s", bsp_masked == 1 ? "masked" : bsp_timer);
	if (bsp_masked != 1 && bsp_init)
		cat(timer, sizeof timer, ", counting (%u of %u)", bsp_cur, bsp_init);
	char others[64] = "";
	if (nread > 1)
		snprintf(others, sizeof others, "; %d other CPU(s) read", nread - 1);
	decide(v, KBU_VERDICT_OK, NULL, NULL, "the boot CPU's local APIC is software-enabled in %s mode, "
	       "%s%s", bsp_mode[0] ? bsp_mode : "an unknown", timer, others);
}
