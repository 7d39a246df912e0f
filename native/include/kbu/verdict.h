/*
 * kbu verdicts: every rule kbu judges a guest by, in one place.
 *
 * A question ("tsc-not-initialized", "where-are-my-cpus", ...) is answered
 * from two kinds of facts: what kbu reads in memory itself (the firmware's
 * tables, the kernel's variables through its OS profile, its message buffer,
 * the vCPUs' registers) and what a debugger saw live and only it can see
 * (the stop the guest ran to, the history of a watched variable, CPUID run on
 * the vCPU, the state at the PVH entry), handed in as JSON. A recipe in GDB
 * drives the guest, gathers the live facts and asks here; `kbu triage` asks
 * every question a dump alone can answer. What differs between kernels is a
 * profile role, never an OS name.
 *
 * The live JSON (every member optional):
 *   end       {kind: panic|idle|timeout|stopped|exited|reset|here|entry,
 *              entry, message, function, cpu, where, pc, seconds, ran_on,
 *              reused, backtrace: [{pc, symbol, function, source}]}
 *   cpuid     {"0xLEAF.SUB": [eax, ebx, ecx, edx], ...}, or cpuid_error: TEXT
 *   watch     {timesource|x2apic: {watched, symbol, start, start_text, now,
 *              now_text, changes: [{cpu, old, new, where}], registered: [..]
 *              or null, register_entry, summary}}
 *   entry     {phys32_entry, at_entry, rip, ebx, cr0, reached: hit|timeout|..}
 *   kernel_trace [lines of the kernel's own call trace]
 *   vcpus     number of vCPUs the debugger sees
 *   log       the console text, used when the message buffer cannot be read
 */
#ifndef KBU_VERDICT_H
#define KBU_VERDICT_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_ctx;
struct kbu_json;
struct kbu_report;

enum kbu_verdict_result {
	KBU_VERDICT_OK = 0,        /* no problem found */
	KBU_VERDICT_PROBLEM = 1,   /* a problem, named by the cause */
	KBU_VERDICT_UNDECIDED = 2, /* could not run or could not decide */
};

struct kbu_question {
	const char *name;    /* "tsc-not-initialized" */
	const char *summary; /* what it answers, one line */
	int live_only;       /* needs a live guest (a stop, watches): not in kbu triage */
	int reads_kernel_state; /* judges the kernel's variables (initial values before it runs) */
};

size_t kbu_question_count(void);
const struct kbu_question *kbu_question_at(size_t i);
const struct kbu_question *kbu_question_find(const char *name);

struct kbu_verdict_opts {
	const char *os;      /* profile by name, NULL/"auto": identified */
	const char *profile; /* profile file or NULL */
	int here;            /* the guest was inspected where it stood */
	int64_t slide;       /* the kernel's runtime slide (KASLR) when live gives none */
};

/* A question's conclusion without its report (kbu triage lists them). */
struct kbu_verdict_outcome {
	int status;          /* enum kbu_verdict_result */
	const char *code;    /* static, NULL for no problem */
	char cause[2048];
	char next[1024];
};

/*
 * Answers one question into r: the end state, the evidence (text and typed
 * JSON facts), findings with codes, and the verdict (result, cause, next
 * step, code). live may be NULL. Returns the result (enum kbu_verdict_result)
 * or -1 with err for bad input (an unknown question).
 */
int kbu_verdict(struct kbu_ctx *ctx, const char *question, const struct kbu_json *live,
		const struct kbu_verdict_opts *o, struct kbu_report *r, struct kbu_err *err);

/* The same rule, keeping only its conclusion. Returns the status or -1. */
int kbu_verdict_summary(struct kbu_ctx *ctx, const char *question, const struct kbu_json *live,
			const struct kbu_verdict_opts *o, struct kbu_verdict_outcome *out,
			struct kbu_err *err);

#ifdef __cplusplus
}
#endif
#endif
