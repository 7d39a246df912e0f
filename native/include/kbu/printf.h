/*
 * kbu: a kernel's printf, formatted from guest memory.
 *
 * A debugger stopped at the first instruction of panic(fmt, ...) or
 * vpanic(fmt, va_list) has the format's address and the arguments as the
 * System V x86-64 ABI passes them: the integer registers after the format
 * (rsi, rdx, rcx, r8, r9) and then the stack, or a va_list (gp_offset,
 * fp_offset, overflow_arg_area, reg_save_area). This formats the message the
 * kernel is about to print, reading strings and the va_list from guest
 * memory, with the conversions the kernels' printf knows: FreeBSD's %b (bit
 * names) and %D (hex dump), Linux's %p extensions (%pS symbol, %pV nested
 * format). Guest bytes that are not printable come out as \xNN.
 */
#ifndef KBU_PRINTF_H
#define KBU_PRINTF_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_mem;
struct kbu_symtab;
struct kbu_reloc_map;

#define KBU_PRINTF_MAX_REGS 6
#define KBU_PRINTF_MAX_FORMAT 1024 /* bytes of a format string read */
#define KBU_PRINTF_MAX_STRING 512  /* bytes of a %s argument read */

enum kbu_printf_kind {
	KBU_PRINTF_REGS = 0, /* regs[], then 8-byte slots from `stack` up */
	KBU_PRINTF_VALIST,   /* the va_list at `va_list` */
};

struct kbu_printf_args {
	int kind;                          /* enum kbu_printf_kind */
	uint64_t regs[KBU_PRINTF_MAX_REGS];
	size_t nregs;
	uint64_t stack;                    /* first stack argument (RSP + 8 at the entry) */
	int have_stack;
	uint64_t va_list;                  /* address of the va_list */
};

/* Where guest reads go: virtual reads through m, and when one fails, the
 * kernel's physical alias (map, after subtracting slide) while paging is off. */
struct kbu_printf_env {
	struct kbu_mem *mem;
	const struct kbu_reloc_map *map;   /* may be NULL */
	uint64_t slide;                    /* runtime virtual slide of the kernel */
	const struct kbu_symtab *syms;     /* for %pS; may be NULL */
};

struct kbu_printf_result {
	char message[4096];   /* the formatted text (truncated with "..." if longer) */
	size_t conversions;   /* arguments consumed */
	size_t unreadable;    /* arguments or strings that could not be read */
	int truncated;        /* the message did not fit */
};

/*
 * Formats fmt (a C string already read) with args. Never fails on guest
 * data: an unreadable argument or string is shown as <unreadable 0x...>;
 * -1 only for bad input (NULL pointers).
 */
int kbu_printf_format(const struct kbu_printf_env *env, const char *fmt,
		      struct kbu_printf_args *args, struct kbu_printf_result *out,
		      struct kbu_err *err);

/* Reads the NUL-terminated string at a kernel virtual address (the physical
 * alias when the virtual one is not mapped); at most max-1 bytes, escaped. */
int kbu_printf_read_string(const struct kbu_printf_env *env, uint64_t addr, char *buf,
			   size_t max, struct kbu_err *err);

#ifdef __cplusplus
}
#endif
#endif
