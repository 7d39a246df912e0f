/*
 * kbu triage: a post-mortem summary of a guest from its memory alone (a QEMU
 * dump, or any memory source): CPUs and their modes, where the kernel runs,
 * the MP table and the PVH start info, the kernel's own view (x2APIC flag,
 * active time source, CPUs brought up), the panic message and the end of the
 * message buffer, then a short verdict.
 *
 * Every part reuses the module that owns it (regs, reloc, mptable, pvh,
 * dmesg, os profiles); this file only reads the few kernel variables the OS
 * profile names and draws the conclusions.
 */
#ifndef KBU_TRIAGE_H
#define KBU_TRIAGE_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_mem;
struct kbu_elf;
struct kbu_symtab;
struct kbu_os_profile;
struct kbu_report;
struct kbu_ctx;

#define KBU_TRIAGE_TEXT 512

/* One kernel variable as triage read it. */
struct kbu_triage_var {
	int state;        /* KBU_TRIAGE_VAR_* */
	char symbol[64];  /* the symbol the profile names */
	uint64_t addr;    /* where it was read (symbol + slide) */
	uint64_t value;
	char why[640];    /* for MISSING/UNREADABLE: what went wrong */
};

enum {
	KBU_TRIAGE_VAR_NONE = 0,   /* the profile names no such role */
	KBU_TRIAGE_VAR_MISSING,    /* the symbol is not in the symbol table */
	KBU_TRIAGE_VAR_UNREADABLE, /* not in the dump, or a pointer leads nowhere */
	KBU_TRIAGE_VAR_OK,
};

/* The kernel's own state, read through an OS profile. */
struct kbu_triage_kstate {
	struct kbu_triage_var x2apic;     /* value 0/1 */
	struct kbu_triage_var timesource; /* value: the pointer (or the struct's address) */
	char ts_name[64];                 /* "" when unreadable */
	int ts_have_quality, ts_have_freq;
	int64_t ts_quality;
	char ts_quality_name[32];         /* the field's name in the kernel: "tc_quality", "rating" */
	uint64_t ts_freq;
	struct kbu_triage_var ncpus;      /* CPUs the kernel counts */
	struct kbu_triage_var panicstr;   /* value: the pointer (0: no panic) */
	char panicstr_text[KBU_TRIAGE_TEXT];
};

/*
 * Reads the x2APIC flag, the active time source (name, quality, frequency),
 * the CPU count and `panicstr` (when the kernel has one). Symbols are taken at
 * link address + slide. Never fails: each part says what it found or why not.
 */
void kbu_triage_read_kstate(struct kbu_mem *m, const struct kbu_elf *kernel,
			    const struct kbu_symtab *st, const struct kbu_os_profile *p,
			    int64_t slide, struct kbu_triage_kstate *out);

/*
 * The panic message a log holds: the text after the last "Kernel panic - not
 * syncing: " (Linux), else after the last line starting with "panic: " (BSD),
 * a console timestamp "[ s.us] " allowed before it. Returns 1 and fills out,
 * or 0 when the log holds no panic.
 */
int kbu_triage_panic_in_log(const char *log, char *out, size_t outlen);

/* The last trap report of a BSD log ("Fatal trap N: ...", "fault virtual
 * address = 0x...", "instruction pointer = 0xSEL:0xADDR"). */
struct kbu_triage_trap {
	char title[160];   /* "Fatal trap 14: page fault while in kernel mode" */
	int have_ip, have_fault_addr;
	uint64_t ip, fault_addr;
};
/* Returns 1 and fills out when the log holds a "Fatal trap" line, else 0. */
int kbu_triage_trap_in_log(const char *log, struct kbu_triage_trap *out);

/* Where the last n lines of text start (a trailing newline ends the last line). */
const char *kbu_triage_tail(const char *text, size_t n);

struct kbu_triage_opts {
	const char *os;      /* "auto"/NULL, or a built-in profile name */
	const char *profile; /* profile file, or NULL */
	size_t tail;         /* message buffer lines shown */
};

/*
 * Fills r with the triage of ctx's memory source (ctx->mem and ctx->kernel
 * required; ctx->syms optional: without symbols the kernel's variables are
 * not read and the report says so). Fails only when the kernel does not match
 * the memory at all (another kernel's dump) or an argument is wrong.
 */
int kbu_triage(struct kbu_ctx *ctx, const struct kbu_triage_opts *o, struct kbu_report *r,
	       struct kbu_err *err);

#ifdef __cplusplus
}
#endif
#endif
