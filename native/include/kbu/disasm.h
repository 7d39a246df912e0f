/*
 * kbu disasm: code references in a kernel image's text, found with capstone.
 *
 * Candidates come from a byte scan of the executable PT_LOAD segments (call
 * and jmp rel32 opcodes, 32-bit displacements and immediates that land on the
 * target); each is confirmed by disassembling its containing function from the
 * function's start, so only real instruction boundaries are reported.
 */
#ifndef KBU_DISASM_H
#define KBU_DISASM_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_elf;
struct kbu_symtab;

enum kbu_xref_kind {
	KBU_XREF_CALL = 1,   /* call rel32 */
	KBU_XREF_JMP = 2,    /* jmp rel32 (tail call) */
	KBU_XREF_RIPREL = 3, /* [rip + disp32] operand (lea, mov) */
	KBU_XREF_IMM32 = 4,  /* sign-extended imm32 absolute address (-mcmodel=kernel) */
};

struct kbu_xref {
	uint64_t addr;        /* the instruction */
	uint64_t target;      /* what it calls or references */
	uint64_t func;        /* start of the containing function (0 if no symbol) */
	uint64_t arg0;        /* calls: the address last loaded into rdi before, 0 if unknown */
	int kind;             /* KBU_XREF_* */
	uint8_t len;
	char insn[208];       /* "call 0xffffffff80b2c4e0" as capstone prints it */
};

struct kbu_xrefs {
	struct kbu_xref *v;
	size_t n, cap;
	uint64_t candidates;  /* byte-scan candidates examined (for the curious and the bench) */
	uint64_t unverified;  /* candidates with no containing function: not reported */
};

void kbu_xrefs_free(struct kbu_xrefs *x);

/* How one instruction uses its memory operand, from capstone's operand detail. */
enum kbu_mem_access {
	KBU_MEM_NONE = 0,   /* no memory operand */
	KBU_MEM_READ = 1,
	KBU_MEM_WRITE = 2,
	KBU_MEM_RW = 3,     /* read, then written (add, or, xchg, ...) */
};

enum kbu_store_kind {
	KBU_STORE_UNKNOWN = 0, /* not a plain store, or a source kbu cannot name */
	KBU_STORE_IMM = 1,     /* mov [mem], imm */
	KBU_STORE_REG = 2,     /* mov [mem], reg */
};

struct kbu_operands {
	int mem_access;       /* enum kbu_mem_access */
	unsigned mem_size;    /* bytes the memory operand covers */
	int store;            /* enum kbu_store_kind: what a mov stores */
	uint64_t store_imm;   /* KBU_STORE_IMM: the value, truncated to mem_size */
	char store_reg[16];   /* KBU_STORE_REG: capstone's name ("eax", "r8d") */
};

/* Decodes the instruction at each link address addrs[i] (in an executable
 * segment) with operand detail into o[i]. KBU_EUNSUPPORTED when the capstone
 * installed is not the one kbu was built against (its detail layout differs). */
int kbu_disasm_operands(const struct kbu_elf *e, const uint64_t *addrs, size_t n,
			struct kbu_operands *o, struct kbu_err *err);

/* Every call/jmp rel32 to target, in address order. */
int kbu_disasm_calls_to(const struct kbu_elf *e, const struct kbu_symtab *st, uint64_t target,
			struct kbu_xrefs *out, struct kbu_err *err);

/* Every RIP-relative or imm32 reference into one of the ranges [start[i], end[i]). */
int kbu_disasm_refs_to(const struct kbu_elf *e, const struct kbu_symtab *st,
		       const uint64_t *start, const uint64_t *end, size_t nranges,
		       struct kbu_xrefs *out, struct kbu_err *err);

struct kbu_string {
	uint64_t addr;        /* link address of the string's first byte */
	size_t len;           /* without the NUL */
	const char *text;     /* points into the mapped image (not NUL-terminated past len) */
};

/* The NUL-terminated strings in the image's PT_LOAD file bytes that contain
 * needle; at most max, *n set. Returns 1 if more were found than max. */
int kbu_find_strings(const struct kbu_elf *e, const char *needle, struct kbu_string *out,
		     size_t max, size_t *n, struct kbu_err *err);

/* A printable, escaped copy of the NUL-terminated string at addr in the image
 * (at most len-1 bytes; "..." if cut). Returns NULL if addr is not file-backed. */
const char *kbu_image_string(const struct kbu_elf *e, uint64_t addr, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
