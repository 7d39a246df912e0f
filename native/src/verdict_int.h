/*
 * kbu verdicts, inside libkbu: the run a question is answered in and the
 * helpers every rule file shares (verdict.c); one file per group of rules.
 * Nothing here is exported from libkbu.
 */
#ifndef KBU_VERDICT_INT_H
#define KBU_VERDICT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/command.h"
#include "kbu/cpuid.h"
#include "kbu/json.h"
#include "kbu/os.h"
#include "kbu/report.h"
#include "kbu/triage.h"
#include "kbu/verdict.h"

#define KBU_HIDDEN __attribute__((visibility("hidden")))

#define MAX_EVIDENCE 48
#define MAX_FINDINGS 16
#define LABEL_WIDTH_MAX 28

struct evidence {
	char label[64];
	char *text; /* malloc'd; may hold newlines */
};

struct finding {
	const char *code;
	char *msg;
};

struct run {
	struct kbu_ctx *ctx;
	const struct kbu_question *q;
	const struct kbu_json *live;
	const struct kbu_verdict_opts *opts;
	struct kbu_report *rep;
	struct kbu_node *root, *facts;

	/* memory facts, read once on demand */
	struct kbu_os_profile *prof;
	char prof_err[512];
	int prof_tried;
	const struct kbu_symtab *syms; /* moved by the runtime slide when there is one */
	struct kbu_symtab *slid;       /* owned: that moved copy */
	struct kbu_triage_kstate ks;
	int ks_read;
	char *log;       /* the kernel's log (message buffer, else the console), malloc'd */
	int log_read;
	char log_from[64];

	struct evidence ev[MAX_EVIDENCE];
	size_t nev;
	struct finding fi[MAX_FINDINGS];
	size_t nfi;

	int status;
	int decided;
	char cause[2048];
	char next[1024];
	const char *code;
};

struct lines {
	char **l;
	size_t n;
};

/* Appends to a fixed buffer, truncating. */
KBU_HIDDEN void cat(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The verdict: status, code (NULL for no problem), next step, cause. */
KBU_HIDDEN void decide(struct run *v, int status, const char *code, const char *next, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
KBU_HIDDEN const char *end_kind(const struct run *v);
KBU_HIDDEN int panicked(struct run *v, char *msg, size_t len);
/* The end state in words ("panic on CPU 0 in lapic_init: ..."). */
KBU_HIDDEN void end_text(struct run *v, char *buf, size_t len);
/* Evidence: a line (or lines) a porter reads; its value goes to facts separately. */
KBU_HIDDEN void evidence(struct run *v, const char *label, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A finding (code, message) printed as a "!" line after the evidence. */
KBU_HIDDEN void finding(struct run *v, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A JSON value copied into a report field. */
KBU_HIDDEN void json_field(struct kbu_node *o, const char *key, const struct kbu_json *j);
KBU_HIDDEN void json_list(struct kbu_node *o, const char *key, const struct kbu_json *j);
/* The kernel's log: its message buffer, else the console text handed in. */
KBU_HIDDEN const char *kernel_log(struct run *v);
/* The kernel's own state (x2APIC flag, time source, CPU count, panicstr). */
KBU_HIDDEN const struct kbu_triage_kstate *kstate(struct run *v);
KBU_HIDDEN void lines_free(struct lines *ls);
/* A member of the live facts by path ("end.message"), NULL if absent. */
KBU_HIDDEN const struct kbu_json *live(const struct run *v, const char *path);
KBU_HIDDEN const char *live_str(const struct run *v, const char *path);
KBU_HIDDEN int live_u64(const struct run *v, const char *path, uint64_t *out);
/* Lines as a fact (list KEY) and as evidence under LABEL (the last `show`). */
KBU_HIDDEN void lines_fact(struct run *v, const char *key, const char *label,
			   const struct lines *ls, size_t show);
/* The kernel's log lines as the fact "log", evidence "kernel log". */
KBU_HIDDEN void log_fact(struct run *v, const struct lines *ls, size_t show);
/* Log lines matching an extended regex, without timestamps, each once. */
KBU_HIDDEN struct lines log_lines(struct run *v, const char *pattern, int icase);
/* The OS as a porter names it ("Linux"). */
KBU_HIDDEN const char *os_display(struct run *v, char *buf, size_t len);
KBU_HIDDEN const char *os_name(struct run *v);
/* The OS profile (identified once); NULL with v->prof_err when none. */
KBU_HIDDEN const struct kbu_os_profile *profile(struct run *v);
/* "\"a\"; \"b\"" of lines[from..]. */
KBU_HIDDEN void quoted(char *buf, size_t len, const struct lines *ls, size_t from);
/* A kernel variable of a role as an unsigned of `size` bytes; 0 found. */
KBU_HIDDEN int role_var(struct run *v, const char *role, uint32_t size, uint64_t *out, char *sym, size_t symlen);
/* The CPUID leaves the debugger ran, as a kbu_cpuid_set; -1 if none. */
KBU_HIDDEN int live_cpuid(struct run *v, struct kbu_cpuid_set *set);
/* "'dummy' (1000000 Hz, ...)" -> "'dummy'" */
KBU_HIDDEN void short_text(const char *text, char *buf, size_t len);

/* A watch's changes ([{cpu, old, new, where}]) as a fact and as evidence lines. */
KBU_HIDDEN void watch_changes(struct run *v, const struct kbu_json *changes);

/* The rules, one per question (verdict_*.c). */
KBU_HIDDEN void q_panic(struct run *v);
KBU_HIDDEN void q_tsc(struct run *v);
KBU_HIDDEN void q_timecounter(struct run *v);
KBU_HIDDEN void q_x2apic(struct run *v);
KBU_HIDDEN void q_pvh(struct run *v);
KBU_HIDDEN void q_lapic(struct run *v);
KBU_HIDDEN void q_cpus(struct run *v);
KBU_HIDDEN void q_mptable(struct run *v);
KBU_HIDDEN void q_devices(struct run *v);

#endif
