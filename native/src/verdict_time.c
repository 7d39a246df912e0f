/* kbu verdicts: the kernel's clocks: tsc-not-initialized and timecounter-stuck. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/cpuid.h"
#include "kbu/report.h"

#include "verdict_int.h"

/* ---- tsc-not-initialized ---- */

struct cpuid_chain {
	int have;              /* CPUID was run */
	uint64_t tsc_hz;       /* 0: none */
	int have_max, have_hv;
	uint32_t max_leaf, hv_max;
	int leaf_unread;       /* a frequency leaf exists but its value was not read (a dump) */
	char why[512];
};

/*
 * Without CPUID run live (a dump), what the kernel's own CPUID reads left in
 * memory (profile roles cpuid_max, cpuid_hv_max: FreeBSD's cpu_high, hv_high)
 * says whether a frequency leaf existed. 0 when both were read.
 */
static int kernel_cpuid(struct run *v, struct cpuid_chain *ch)
{
	uint64_t max = 0, hv = 0;
	char smax[64] = "", shv[64] = "";
	if (role_var(v, "cpuid_max", 4, &max, smax, sizeof smax) < 0 ||
	    role_var(v, "cpuid_hv_max", 4, &hv, shv, sizeof shv) < 0)
		return -1;
	ch->have = 1;
	ch->have_max = 1;
	ch->max_leaf = (uint32_t)max;
	char lab[96];
	snprintf(lab, sizeof lab, "kernel's %s", smax);
	kbu_u64(v->facts, "cpu_high", "", max);
	evidence(v, lab, "0x%" PRIx64 "  (its leaf 0 EAX) %s", max,
		 max >= 0x15 ? "(leaves 0x15/0x16 exist)" : "(below 0x15: no leaf 0x15/0x16)");
	snprintf(lab, sizeof lab, "kernel's %s", shv);
	if (hv >= 0x40000000) {
		ch->have_hv = 1;
		ch->hv_max = (uint32_t)hv;
		kbu_u64(v->facts, "hv_high", "", hv);
		evidence(v, lab, "0x%" PRIx64 "  %s", hv, hv >= 0x40000010 ? "(leaf 0x40000010 exists)"
			 : "(stops below 0x40000010: no TSC leaf)");
	} else {
		kbu_null(v->facts, "hv_high", "");
		evidence(v, lab, "0x%" PRIx64 "  (no hypervisor leaves read)", hv);
	}
	kbu_null(v->facts, "cpuid", "");
	if ((ch->have_hv && ch->hv_max >= 0x40000010) || ch->max_leaf >= 0x15) {
		/* a frequency leaf existed; its value is in the live vCPU only */
		snprintf(ch->why, sizeof ch->why, "the kernel's %s 0x%x and %s 0x%x say a frequency leaf "
			 "exists (kbu cpuid tsc on the live vCPU reads it)", smax, ch->max_leaf, shv,
			 (uint32_t)hv);
		ch->tsc_hz = 0;
		ch->leaf_unread = 1;
		return 0;
	}
	snprintf(ch->why, sizeof ch->why, "the kernel read %s 0x%x%s and %s 0x%x%s: no CPUID path "
		 "gives a frequency", smax, ch->max_leaf, " (below 0x15: no leaves 0x15/0x16)", shv,
		 (uint32_t)hv, ch->have_hv ? " (below 0x40000010: no TSC leaf)" : " (no hypervisor leaves)");
	return 0;
}

static void cpuid_chain(struct run *v, struct cpuid_chain *ch)
{
	memset(ch, 0, sizeof *ch);
	struct kbu_cpuid_set set;
	if (live_cpuid(v, &set) < 0 && kernel_cpuid(v, ch) == 0)
		return;
	if (live_cpuid(v, &set) < 0) {
		const char *why = live_str(v, "cpuid_error");
		kbu_null(v->facts, "cpuid", "");
		evidence(v, "CPUID", "not run: %s", why ? why : "the debugger gave no CPUID values");
		snprintf(ch->why, sizeof ch->why, "%s", why ? "CPUID could not be run"
			 : "what CPUID offers is not known here (run kbu cpuid tsc on the live vCPU)");
		return;
	}
	ch->have = 1;
	const struct kbu_cpuid_leaf *l0 = kbu_cpuid_find(&set, 0, 0);
	const struct kbu_cpuid_leaf *h0 = kbu_cpuid_find(&set, 0x40000000, 0);
	if (l0) {
		ch->have_max = 1;
		ch->max_leaf = l0->eax;
		kbu_u64(v->facts, "cpu_high", "", l0->eax);
		evidence(v, "cpu_high (leaf 0 EAX)", "0x%x  %s", l0->eax,
			 l0->eax >= 0x15 ? "(leaves 0x15/0x16 exist)" : "(below 0x15: no leaf 0x15/0x16)");
	}
	if (h0 && h0->eax >= 0x40000000) {
		ch->have_hv = 1;
		ch->hv_max = h0->eax;
		kbu_u64(v->facts, "hv_high", "", h0->eax);
		evidence(v, "hv_high (0x40000000 EAX)", "0x%x  %s", h0->eax,
			 h0->eax >= 0x40000010 ? "(leaf 0x40000010 exists)"
					       : "(stops below 0x40000010: no TSC leaf)");
		char sig[13];
		kbu_cpuid_vendor(h0, 1, sig);
		kbu_str(v->facts, "hypervisor", "", sig);
		evidence(v, "hypervisor", "%s", sig);
	} else {
		kbu_null(v->facts, "hv_high", "");
		evidence(v, "hv_high (0x40000000 EAX)", "none  (stops below 0x40000010: no TSC leaf)");
	}
	/* The chain itself, as libkbu's cpuid-decode --tsc walks it. */
	struct kbu_report *tr = kbu_report_new("cpuid");
	kbu_cpuid_tsc_report(kbu_report_root(tr), &set);
	char *js = kbu_report_render(tr, 1);
	struct kbu_err e = {0};
	struct kbu_json *j = js ? kbu_json_parse(js, strlen(js), &e) : NULL;
	const struct kbu_json *steps = kbu_json_path(j, "tsc.steps");
	char st[2048] = "";
	json_list(v->facts, "cpuid_steps", steps);
	for (size_t i = 0; i < kbu_json_len(steps); i++) {
		const struct kbu_json *s = kbu_json_at(steps, i);
		cat(st, sizeof st, "%s%" PRIu64 ". %s %s -> %s", i ? "\n" : "",
		    kbu_json_get_u64(s, "step", i + 1), kbu_json_get_str(s, "check", ""),
		    kbu_json_get_str(s, "answer", ""), kbu_json_get_str(s, "result", ""));
	}
	if (st[0])
		evidence(v, "CPUID chain", "%s", st);
	ch->tsc_hz = kbu_json_get_u64(kbu_json_get(j, "tsc"), "tsc_hz", 0);
	if (ch->tsc_hz) {
		kbu_u64(v->facts, "cpuid_tsc_hz", "", ch->tsc_hz);
		evidence(v, "CPUID TSC frequency", "%" PRIu64 " Hz", ch->tsc_hz);
	} else {
		kbu_null(v->facts, "cpuid_tsc_hz", "");
		evidence(v, "CPUID TSC frequency", "none");
	}
	kbu_json_free(j);
	free(js);
	kbu_report_free(tr);

	if (ch->tsc_hz) {
		snprintf(ch->why, sizeof ch->why, "CPUID gives %" PRIu64 " Hz", ch->tsc_hz);
		return;
	}
	if (ch->have_hv && ch->hv_max < 0x40000010)
		cat(ch->why, sizeof ch->why, "the hypervisor leaves stop at 0x%x so the 0x40000010 TSC "
		    "leaf is absent", ch->hv_max);
	else if (!ch->have_hv)
		cat(ch->why, sizeof ch->why, "there are no hypervisor leaves");
	if (ch->have_max)
		cat(ch->why, sizeof ch->why, "%s%s", ch->why[0] ? ", and " : "",
		    ch->max_leaf < 0x15 ? "" : "leaves 0x15/0x16 give no frequency");
	if (ch->have_max && ch->max_leaf < 0x15)
		cat(ch->why, sizeof ch->why, "cpu_high 0x%x is below 0x15 (no leaves 0x15/0x16)",
		    ch->max_leaf);
	cat(ch->why, sizeof ch->why, ": no CPUID path gives a frequency");
}

static const char next_cpuid[] =
	"give the VM a CPUID frequency leaf: under KVM `-cpu host,+invtsc,tsc-frequency=HZ` "
	"(QEMU then publishes leaf 0x40000010 with the TSC kHz); TCG has none, so otherwise "
	"calibrate the TSC against the i8254 before the first user of tsc_freq";

void q_tsc(struct run *v)
{
	const struct kbu_os_profile *p = profile(v);
	uint64_t raw = 0, freq = 0;
	char sym[64] = "";
	int have_freq = 0;
	if (p) {
		uint32_t size = (uint32_t)kbu_os_role_num(p, "tsc_freq_size", 8);
		uint64_t unit = kbu_os_role_num(p, "tsc_freq_unit", 1);
		if (size >= 1 && size <= 8 && role_var(v, "tsc_freq", size, &raw, sym, sizeof sym) == 0) {
			have_freq = 1;
			freq = raw * unit;
			kbu_str(v->facts, "tsc_var", "", sym);
			kbu_u64(v->facts, "tsc_hz", "", freq);
			char lab[96];
			snprintf(lab, sizeof lab, "kernel's %s", sym);
			if (raw)
				evidence(v, lab, "%" PRIu64 " (%.3f MHz)", raw, (double)freq / 1e6);
			else
				evidence(v, lab, "0 (not set)");
		}
	}
	struct cpuid_chain ch;
	cpuid_chain(v, &ch);
	struct lines tl = log_lines(v, "^(tsc|TSC)[: ]|clocksource.*tsc|TSC not initialized", 0);
	log_fact(v, &tl, 50);
	const char *kind = end_kind(v);
	const char *msg = live_str(v, "end.message");
	int panicked = strcmp(kind, "panic") == 0;
	if (panicked) {
		kbu_str(v->facts, "panic", "", msg ? msg : "");
		evidence(v, "panic", "%s", msg ? msg : "");
	}
	int no_cpuid = ch.have && !ch.tsc_hz && !ch.leaf_unread;
	/* A kernel that calibrates itself logs how ("tsc: Detected ... MHz"). */
	int calibrates = 0;
	for (size_t i = 0; i < tl.n; i++)
		calibrates |= strncmp(tl.l[i], "tsc:", 4) == 0;

	if ((msg && strstr(msg, "TSC not initialized")) ||
	    (have_freq && !freq && panicked && msg && strstr(msg, "TSC"))) {
		const char *fn = live_str(v, "end.function");
		decide(v, KBU_VERDICT_PROBLEM, "tsc.asserted_unset", next_cpuid,
		       "%s asserted that the TSC frequency is known (\"%s\") before anything set it: %s, "
		       "and nothing calibrated the TSC first", fn ? fn : "the kernel", msg, ch.why);
		goto out;
	}
	if (have_freq && calibrates) {
		struct lines failed = {0}, detected = {0};
		for (size_t i = 0; i < tl.n; i++) {
			const char *l = tl.l[i];
			if (strstr(l, "failed") || strstr(l, "Unable") || strstr(l, "unstable") ||
			    strstr(l, "No reference")) {
				char **nl = realloc(failed.l, (failed.n + 1) * sizeof *nl);
				if (nl) {
					failed.l = nl;
					failed.l[failed.n++] = strdup(l);
				}
			}
			if (strstr(l, "Detected") || strstr(l, "Refined TSC")) {
				char **nl = realloc(detected.l, (detected.n + 1) * sizeof *nl);
				if (nl) {
					detected.l = nl;
					detected.l[detected.n++] = strdup(l);
				}
			}
		}
		char q1[1024], disp[32];
		if (freq == 0 || (failed.n && !detected.n)) {
			quoted(q1, sizeof q1, &failed, 0);
			decide(v, KBU_VERDICT_PROBLEM, "tsc.calibration_failed",
			       "give the frequency on the command line (tsc_early_khz=KHZ), or run under "
			       "KVM with `-cpu host,+invtsc,tsc-frequency=HZ` so leaf 0x40000010 carries it",
			       "%s calibrates the TSC itself (%s) and failed: %s; %s = %" PRIu64,
			       os_display(v, disp, sizeof disp), ch.why, failed.n ? q1 : "no 'tsc: Detected' line", sym, raw);
		} else {
			quoted(q1, sizeof q1, &detected, 0);
			struct lines cmd = log_lines(v, "^Command line: .*tsc_early_khz=", 0);
			const char *unstable = NULL;
			for (size_t i = 0; i < tl.n; i++)
				if (strstr(tl.l[i], "unstable"))
					unstable = tl.l[i];
			char note[512] = "";
			if (unstable)
				snprintf(note, sizeof note, "; note: it later logged \"%s\", so the TSC is not "
					 "its clocksource", unstable);
			decide(v, KBU_VERDICT_OK, NULL, NULL, "%s has a TSC frequency, %s: %s (%.3f MHz)%s%s%s",
			       os_display(v, disp, sizeof disp), cmd.n ? "given on the command line (tsc_early_khz=)" : "calibrated",
			       detected.n ? q1 : "its TSC frequency is set", (double)freq / 1e6,
			       no_cpuid ? "; CPUID gives none (" : "", no_cpuid ? ch.why : "",
			       no_cpuid ? ")" : "");
			if (note[0])
				cat(v->cause, sizeof v->cause, "%s", note);
			lines_free(&cmd);
		}
		lines_free(&failed);
		lines_free(&detected);
		goto out;
	}
	if (freq) {
		if (ch.tsc_hz)
			decide(v, KBU_VERDICT_OK, NULL, NULL, "the TSC frequency is set: %.3f MHz; CPUID "
			       "gives %.3f MHz", (double)freq / 1e6, (double)ch.tsc_hz / 1e6);
		else if (!ch.have)
			decide(v, KBU_VERDICT_OK, NULL, "`kbu cpuid tsc` on the live vCPU shows what CPUID "
			       "offers", "the TSC frequency is set: %.3f MHz; CPUID was not run here, so "
			       "whether it came from CPUID or a calibration is not known",
			       (double)freq / 1e6);
		else
			decide(v, KBU_VERDICT_OK, NULL, NULL, "the TSC frequency is set: %.3f MHz, not from "
			       "CPUID (%s): the kernel calibrated it, or it was set by hand "
			       "(from a debugger)", (double)freq / 1e6, ch.why);
		goto out;
	}
	if (have_freq && panicked) {
		/* Another panic came first: the TSC may simply not have been reached yet. */
		decide(v, KBU_VERDICT_UNDECIDED, NULL, "see panic-triage first",
		       "the kernel's TSC frequency is 0, but the kernel panicked first (\"%s\"): it may "
		       "not have reached its TSC setup; %s", msg ? msg : "", ch.why);
		goto out;
	}
	if (have_freq) {
		decide(v, KBU_VERDICT_PROBLEM, "tsc.zero", next_cpuid, "the kernel's TSC frequency is 0: %s",
		       ch.why);
		goto out;
	}
	decide(v, KBU_VERDICT_UNDECIDED, NULL, "name the kernel's TSC frequency variable (profile role "
	       "tsc_freq) and re-run",
	       "the %s profile's TSC frequency variable (%s) is not in this kernel, so its TSC "
	       "frequency cannot be read; %s", os_name(v),
	       p && kbu_os_role(p, "tsc_freq") ? kbu_os_role(p, "tsc_freq") : "none named", ch.why);
out:
	lines_free(&tl);
}

/* ---- timecounter-stuck ---- */

static int is_placeholder(struct run *v, const char *name)
{
	const struct kbu_os_profile *p = profile(v);
	return name && p && kbu_os_role_has(p, "timesource_placeholders", name);
}

void q_timecounter(struct run *v)
{
	const struct kbu_json *w = live(v, "watch.timesource");
	int watched = kbu_json_get_bool(w, "watched", 0);
	const struct kbu_triage_kstate *ks = kstate(v);
	const char *symbol = kbu_json_get_str(w, "symbol", ks->timesource.symbol[0]
							     ? ks->timesource.symbol : NULL);
	/* Now: memory first, the watch's last reading else. */
	const char *name = ks->ts_name[0] ? ks->ts_name : kbu_json_get_str(w, "now", NULL);
	char now_text[256];
	if (ks->ts_name[0]) {
		snprintf(now_text, sizeof now_text, "'%s'", ks->ts_name);
		if (ks->ts_have_freq)
			cat(now_text, sizeof now_text, " (%" PRIu64 " Hz", ks->ts_freq);
		if (ks->ts_have_quality)
			cat(now_text, sizeof now_text, "%s%s %" PRId64, ks->ts_have_freq ? ", " : " (",
			    ks->ts_quality_name, ks->ts_quality);
		if (ks->ts_have_freq || ks->ts_have_quality)
			cat(now_text, sizeof now_text, ")");
	} else {
		snprintf(now_text, sizeof now_text, "%s", kbu_json_get_str(w, "now_text", "(unreadable)"));
	}
	if (!symbol) {
		decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "could not read the time source: %s",
		       profile(v) ? ks->timesource.why : v->prof_err);
		return;
	}
	if (!watched)
		evidence(v, "watched", "no: the guest had already stopped; only its state now is known");
	kbu_str(v->facts, "variable", "", symbol);
	evidence(v, "variable", "%s", symbol);
	if (name)
		kbu_str(v->facts, "now", "", name);
	else
		kbu_null(v->facts, "now", "");
	char lab[96];
	snprintf(lab, sizeof lab, "%s now", symbol);
	evidence(v, lab, "%s", now_text);
	const char *start_text = kbu_json_get_str(w, "start_text", now_text);
	char start[128];
	short_text(start_text, start, sizeof start);
	const struct kbu_json *changes = kbu_json_get(w, "changes");
	if (watched) {
		kbu_str(v->facts, "at_start", "", start);
		evidence(v, "at the start", "%s", start_text);
		watch_changes(v, changes);
	}
	const struct kbu_json *regs = kbu_json_get(w, "registered");
	const char *entry = kbu_json_get_str(w, "register_entry", "the registration entry");
	int have_regs = kbu_json_type(regs) == KBU_JSON_ARRAY;
	char rt[1024] = "";
	for (size_t i = 0; i < kbu_json_len(regs); i++) {
		const char *s = kbu_json_str(kbu_json_at(regs, i));
		cat(rt, sizeof rt, "%s%s", i ? ", " : "", s ? s : "?");
	}
	if (have_regs) {
		json_field(v->facts, "registered", regs);
		if (rt[0])
			evidence(v, watched ? "registered" : "registered now", "%s", rt);
		else
			evidence(v, watched ? "registered" : "registered now", "none (%s never called)", entry);
	}
	if (watched && kbu_json_get_str(w, "summary", NULL))
		kbu_str(v->facts, "summary", "", kbu_json_get_str(w, "summary", ""));
	struct lines tl = log_lines(v, "(timecounter|clocksource|calibration failed|clocks might be)", 1);
	log_fact(v, &tl, 8);
	const char *failed = NULL, *switched = NULL;
	for (size_t i = 0; i < tl.n; i++) {
		if (strstr(tl.l[i], "ailed"))
			failed = tl.l[i];
		if (strstr(tl.l[i], "Switched to clocksource"))
			switched = tl.l[i];
	}
	if (!name) {
		decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "could not read the time source %s points "
		       "at: %s", symbol, ks->timesource.why[0] ? ks->timesource.why : "no reading");
		goto out;
	}
	int stuck = is_placeholder(v, name);
	char pmsg[256];
	if (stuck && !kbu_json_len(changes) && !switched && panicked(v, pmsg, sizeof pmsg)) {
		/* A kernel that panicked early never got to its timecounters: a consequence. */
		decide(v, KBU_VERDICT_UNDECIDED, NULL, "see panic-triage first",
		       "%s is still %s, but the kernel panicked first (\"%s\"): it may not have reached "
		       "its time-source setup", symbol, now_text, pmsg);
		goto out;
	}
	if (!stuck) {
		char chain[1024] = "";
		if (watched && kbu_json_len(changes)) {
			cat(chain, sizeof chain, "; it changed %s", start);
			for (size_t i = 0; i < kbu_json_len(changes); i++) {
				char s[128];
				short_text(kbu_json_get_str(kbu_json_at(changes, i), "new", "?"), s, sizeof s);
				cat(chain, sizeof chain, " -> %s", s);
			}
		} else if (switched) {
			cat(chain, sizeof chain, " (%s)", switched);
		}
		decide(v, KBU_VERDICT_OK, NULL, NULL, "the time source is %s%s", now_text, chain);
		goto out;
	}
	if (!watched) {
		decide(v, KBU_VERDICT_PROBLEM, "timesource.placeholder",
		       "re-run from boot so kbu watch sees every change",
		       "%s is still %s (not watched from boot, so whether the registration entry was "
		       "called is not known)", symbol, name ? name : now_text);
		goto out;
	}
	if (kbu_json_len(changes)) {
		/* It moved, but only between placeholders. */
		char chain[1024];
		snprintf(chain, sizeof chain, "%s", start);
		for (size_t i = 0; i < kbu_json_len(changes); i++) {
			char s2[128];
			short_text(kbu_json_get_str(kbu_json_at(changes, i), "new", "?"), s2, sizeof s2);
			cat(chain, sizeof chain, " -> %s", s2);
		}
		const struct kbu_os_profile *pp = profile(v);
		decide(v, KBU_VERDICT_PROBLEM, "timesource.placeholder",
		       "make a real time source win the selection (its quality must beat the "
		       "placeholders')",
		       "%s went %s and is still a placeholder (the %s profile's placeholders: %s)", symbol,
		       chain, os_name(v), pp && kbu_os_role(pp, "timesource_placeholders")
					      ? kbu_os_role(pp, "timesource_placeholders") : "none named");
		goto out;
	}
	char when[256] = "";
	if (strcmp(end_kind(v), "timeout") == 0) {
		double s = 0;
		kbu_json_double(live(v, "end.seconds"), &s);
		snprintf(when, sizeof when, " in %g s (then still running, in %s)", s,
			 live_str(v, "end.where") ? live_str(v, "end.where") : "?");
	}
	char nx[512];
	if (!have_regs) {
		snprintf(nx, sizeof nx, "break on %s to see whether a timer driver registers its counter",
			 entry);
		decide(v, KBU_VERDICT_PROBLEM, "timesource.placeholder", nx,
		       "%s never left %s%s; whether a time source was registered is not known (the %s "
		       "profile names no registration list)", symbol, start, when, os_name(v));
		goto out;
	}
	if (!kbu_json_len(regs)) {
		snprintf(nx, sizeof nx, "make the timer driver register its counter (call %s from its "
			 "attach/init; on microvm the i8254 is there), and break on %s to see it happen",
			 entry, entry);
		decide(v, KBU_VERDICT_PROBLEM, "timesource.never_registered", nx,
		       "%s never left %s%s: %s was never called, so no real time source was ever "
		       "registered%s%s%s", symbol, start, when, entry, failed ? "; the kernel logs: \"" : "",
		       failed ? failed : "", failed ? "\"" : "");
		goto out;
	}
	decide(v, KBU_VERDICT_PROBLEM, "timesource.none_selected",
	       "check the registered counters' quality and the selection code",
	       "%s never left %s although %s registered %s: none was selected (its quality must beat "
	       "the placeholder's)", symbol, start, entry, rt);
out:
	lines_free(&tl);
}
