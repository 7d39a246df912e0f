/* kbu verdicts: panic-triage, where and how the kernel panicked. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/triage.h"

#include "verdict_int.h"

/* ---- panic-triage ---- */

/* Known panics of microVM bring-up: text in the message, cause, next step. */
static const struct {
	const char *text, *cause, *next;
} known_panics[] = {
	{"TSC not initialized", "the TSC frequency was still 0 when the local APIC code needed it",
	 "run the tsc-not-initialized recipe: it shows why no CPUID leaf gives the frequency"},
	{"Unknown MP Config Entry",
	 "the MP configuration table the kernel walked holds an entry of an unknown type",
	 "run the mptable-walk recipe: it walks the firmware's table as the kernel does"},
	{"Unable to mount root fs",
	 "the kernel found no root file system: no disk and no initramfs were given",
	 "give it a root: an initramfs (-initrd FILE), or a disk (-drive file=IMG,if=none,id=d "
	 "-device virtio-blk-device,drive=d) with root=/dev/vda on the command line"},
	{"page fault", "the kernel touched an address no page table maps",
	 "look at the faulting address (CR2, the 'fault virtual address' line) with `kbu vtop` "
	 "and the code that made it; device MMIO outside the mapped range is the usual cause"},
};

/* Trap and exception entry frames (BSD alltraps/calltrap, Linux exc_*). */
static int is_trap_frame(const char *fn)
{
	static const char *const frames[] = {"alltraps", "calltrap", "asm_exc_page_fault",
					     "exc_page_fault", "asm_exc_general_protection",
					     "exc_general_protection"};
	for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++)
		if (strcmp(fn, frames[i]) == 0)
			return 1;
	return 0;
}

void q_panic(struct run *v)
{
	const char *kind = end_kind(v);
	struct lines lp = log_lines(v, "^(Kernel panic - not syncing|panic: |Fatal trap)", 0);
	struct lines trap = {0};
	if (strcmp(kind, "panic") == 0) {
		char msgbuf[512] = "";
		const char *msg = live_str(v, "end.message");
		if (!msg && lp.n) {
			const char *s = strstr(lp.l[lp.n - 1], ": ");
			snprintf(msgbuf, sizeof msgbuf, "%s", s ? s + 2 : lp.l[lp.n - 1]);
			msg = msgbuf;
		}
		kbu_str(v->facts, "message", "", msg ? msg : "");
		evidence(v, "message", "%s", msg ? msg : "(unknown)");
		const char *entry = live_str(v, "end.entry");
		kbu_str(v->facts, "entry", "", entry ? entry : "");
		evidence(v, "stopped at", "%s", entry ? entry : "(unknown)");
		const char *fn = live_str(v, "end.function");
		if (fn)
			kbu_str(v->facts, "function", "", fn);
		else
			kbu_null(v->facts, "function", "");
		evidence(v, "raised by", "%s", fn ? fn : "(unknown)");

		/* The call chain: the unwound frames, else the kernel's own trace. */
		const char *chain[32];
		size_t nch = 0;
		const struct kbu_json *bt = live(v, "end.backtrace");
		for (size_t i = 0; i < kbu_json_len(bt) && nch < 32; i++)
			chain[nch++] = kbu_json_get_str(kbu_json_at(bt, i), "function", "?");
		const struct kbu_json *kt = live(v, "kernel_trace");
		char names[32][128];
		if (nch < 3 && kbu_json_len(kt)) {
			char tt[4096] = "";
			size_t nn = 0;
			for (size_t i = 0; i < kbu_json_len(kt); i++) {
				const char *l = kbu_json_str(kbu_json_at(kt, i));
				if (!l)
					continue;
				cat(tt, sizeof tt, "%s%s", i ? "\n" : "", l);
				if (l[0] == '?' || nn >= 32)
					continue;
				size_t n = strcspn(l, "+ ");
				snprintf(names[nn++], sizeof names[0], "%.*s", (int)n, l);
			}
			evidence(v, "kernel's call trace", "%s", tt);
			/* frames below the entry are its own printing */
			size_t from = 0;
			for (size_t i = 0; entry && i < nn; i++)
				if (strcmp(names[i], entry) == 0) {
					from = i;
					break;
				}
			const char *first = nch ? chain[0] : NULL;
			nch = 0;
			if (first)
				chain[nch++] = first;
			for (size_t i = from; i < nn && nch < 32; i++)
				if (!nch || strcmp(names[i], chain[nch - 1]) != 0)
					chain[nch++] = names[i];
		}
		struct kbu_node *cl = kbu_list(v->facts, "call_chain", "");
		char chtext[2048] = "";
		for (size_t i = 0; i < nch; i++) {
			kbu_item_str(cl, chain[i]);
			cat(chtext, sizeof chtext, "%s%s", i ? " <- " : "", chain[i]);
		}
		if (nch)
			evidence(v, "call chain", "%s", chtext);
		trap = log_lines(v, "(Fatal trap|fault virtual address|instruction pointer)", 0);
		const char *fault = NULL;
		lines_fact(v, "trap", "trap report", &trap, trap.n);
		for (size_t i = 0; i < trap.n; i++)
			if (strstr(trap.l[i], "fault virtual address"))
				fault = trap.l[i];
		char where[256];
		snprintf(where, sizeof where, "%s", fn ? fn : nch > 1 ? chain[1] : entry ? entry : "?");
		for (size_t i = nch; i-- > 0;)
			if (is_trap_frame(chain[i]) && i + 1 < nch) {
				kbu_str(v->facts, "faulting_function", "", chain[i + 1]);
				evidence(v, "trapped in", "%s", chain[i + 1]);
				cat(where, sizeof where, " (trapped in %s)", chain[i + 1]);
				break;
			}
		char head[2048];
		struct kbu_triage_trap tr;
		if (!fn && !nch) {
			/* Memory alone (a dump): the message and the trap report the log keeps. */
			snprintf(head, sizeof head, "the kernel panicked: %s", msg ? msg : "(no message)");
			if (kbu_triage_trap_in_log(kernel_log(v), &tr)) {
				char sym[160] = "an unknown place";
				if (tr.have_ip && v->syms)
					kbu_sym_format(v->syms, tr.ip, sym, sizeof sym);
				cat(head, sizeof head, " (%s in %s", tr.title, sym);
				if (tr.have_fault_addr)
					cat(head, sizeof head, ", fault address 0x%" PRIx64, tr.fault_addr);
				cat(head, sizeof head, ")");
			}
			fault = NULL;
		} else {
			snprintf(head, sizeof head, "panic \"%s\" raised in %s", msg ? msg : "?", where);
			for (size_t i = 0; i < nch && i < 6; i++)
				cat(head, sizeof head, "%s%s", i ? " <- " : " (", chain[i]);
			if (nch)
				cat(head, sizeof head, ")");
		}
		if (fault) {
			/* squeeze the runs of blanks of the aligned trap report */
			char sq[256];
			size_t o = 0;
			for (const char *s = fault; *s && o + 1 < sizeof sq; s++)
				if (!(*s == ' ' && o && sq[o - 1] == ' '))
					sq[o++] = *s;
			sq[o] = '\0';
			cat(head, sizeof head, "; %s", sq);
		}
		for (size_t i = 0; i < sizeof known_panics / sizeof known_panics[0]; i++)
			if (msg && strstr(msg, known_panics[i].text)) {
				decide(v, KBU_VERDICT_PROBLEM, "panic.known", known_panics[i].next, "%s: %s",
				       head, known_panics[i].cause);
				goto out;
			}
		const char *src = kbu_json_get_str(kbu_json_at(bt, 1), "source", NULL);
		char next[512];
		snprintf(next, sizeof next, "read the check in %s%s%s and why its condition failed", where,
			 src && *src ? " at " : "", src && *src ? src : "");
		decide(v, KBU_VERDICT_PROBLEM, "panic", next, "%s", head);
		goto out;
	}
	if (strcmp(kind, "idle") == 0) {
		decide(v, KBU_VERDICT_OK, NULL, NULL, "no panic: the kernel reached its idle loop (%s)",
		       live_str(v, "end.where") ? live_str(v, "end.where") : "?");
		goto out;
	}
	if (lp.n) {
		lines_fact(v, "log", "panic in the log", &lp, lp.n);
		decide(v, KBU_VERDICT_PROBLEM, "panic.not_stopped",
		       "run it again from boot so the panic entry can be caught",
		       "the kernel log says it panicked (%s) but the guest was not stopped on the panic "
		       "entry", lp.l[lp.n - 1]);
		goto out;
	}
	if (strcmp(kind, "timeout") == 0) {
		double s = 0;
		kbu_json_double(live(v, "end.seconds"), &s);
		decide(v, KBU_VERDICT_UNDECIDED, NULL,
		       "give it longer (--timeout), or use a recipe about what it waits for "
		       "(timecounter-stuck, where-are-my-cpus)",
		       "no panic within %g s; the guest was running in %s", s,
		       live_str(v, "end.where") ? live_str(v, "end.where") : "?");
		goto out;
	}
	char et[512];
	end_text(v, et, sizeof et);
	decide(v, KBU_VERDICT_UNDECIDED, NULL,
	       "run without --here so the recipe boots it to its end state",
	       "the guest is not at a panic (%s)", et);
out:
	lines_free(&lp);
	lines_free(&trap);
}
