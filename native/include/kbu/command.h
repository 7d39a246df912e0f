/*
 * kbu commands: every report-producing command lives in libkbu so the CLI and
 * the GDB extension run the same code and print the same thing.
 *
 * A command gets a context (memory source, kernel image, symbols, all
 * optional), its own argv (argv[0] is the command name), and fills a report.
 * It returns 0 when it produced a report, -1 with err set when it could not
 * (usage and input errors). Problems found in the data go into the report.
 */
#ifndef KBU_COMMAND_H
#define KBU_COMMAND_H

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_report;
struct kbu_mem;
struct kbu_elf;
struct kbu_symtab;

struct kbu_ctx {
	struct kbu_mem *mem;        /* NULL: no memory source given */
	struct kbu_elf *kernel;     /* NULL: no --kernel */
	struct kbu_symtab *syms;    /* NULL: no symbols (from --kernel and/or --symbols) */
	char os[32];                /* "auto", "freebsd", "netbsd", "linux" */
	int strict;
};

struct kbu_ctx *kbu_ctx_new(void);
/* Frees the context and everything it owns (mem, kernel, syms). */
void kbu_ctx_free(struct kbu_ctx *ctx);
int kbu_ctx_set_mem(struct kbu_ctx *ctx, struct kbu_mem *mem); /* takes ownership */
int kbu_ctx_load_kernel(struct kbu_ctx *ctx, const char *path, struct kbu_err *err);
int kbu_ctx_load_symbols(struct kbu_ctx *ctx, const char *path, struct kbu_err *err);
/* Convenience for commands: a clear error if a piece is missing. */
int kbu_ctx_need_mem(struct kbu_ctx *ctx, struct kbu_err *err);
int kbu_ctx_need_kernel(struct kbu_ctx *ctx, struct kbu_err *err);
int kbu_ctx_need_syms(struct kbu_ctx *ctx, struct kbu_err *err);
/* The OS profile a command uses: the file `profile` if given, else the
 * built-in `os` names (NULL: ctx->os), else the one identified from the
 * context's kernel ELF and symbols (kbu_os_identify). */
struct kbu_os_profile *kbu_ctx_profile(const struct kbu_ctx *ctx, const char *os,
				       const char *profile, struct kbu_err *err);

enum kbu_cmd_needs {
	KBU_NEEDS_NOTHING = 0,
	KBU_NEEDS_MEM = 1,
	KBU_NEEDS_KERNEL = 2,
	KBU_NEEDS_SYMS = 4,
};

struct kbu_command {
	const char *name;
	const char *summary; /* one line for `kbu --help` */
	const char *help;    /* full text for `kbu CMD --help`: usage line first */
	int needs;           /* KBU_NEEDS_* checked before run */
	int (*run)(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		   struct kbu_err *err);
	struct kbu_command *next; /* filled by registration */
};

void kbu_command_register(struct kbu_command *cmd);
/* Registers a command at load time; put one per cmd_*.c file. */
#define KBU_COMMAND(var) \
	static void __attribute__((constructor)) var##_register(void) { kbu_command_register(&var); }

const struct kbu_command *kbu_command_find(const char *name);
/* Commands sorted by name; NULL-terminated iteration via ->next is unsorted. */
size_t kbu_command_list(const struct kbu_command **out, size_t max);

/*
 * A command's options and arguments, read from its own help text: the usage
 * lines (up to the first blank line) and the "  --name VALUE  text" lines
 * after them. Man pages, shell completion and GDB completion all list what
 * `kbu CMD --help` says, and a command adds an option by documenting it.
 */
enum kbu_value_kind {
	KBU_VALUE_NONE = 0, /* a flag: no value */
	KBU_VALUE_FILE,     /* FILE, ELF, MAP, DUMP, F, DIR, KERNEL ...: a path */
	KBU_VALUE_ADDRESS,  /* ADDR, SYMBOL, NAME, FUNCTION: a symbol completes it */
	KBU_VALUE_NUMBER,   /* N, X, BYTES, CPU, LEN, PORT, SIZE, S ... */
	KBU_VALUE_CHOICE,   /* one of `choices` (a|b|c in the usage, or "a, b or c" as its text) */
	KBU_VALUE_TEXT,     /* anything else (HOST:PORT, TEXT, GLOB, NAME=ADDR ...) */
};

struct kbu_option_info {
	char name[32];      /* "--table" or "-p" */
	char short_name[8]; /* "-p" when the help gives both ("-p, --port PORT"), else "" */
	char value[48];     /* the value as the help names it ("ADDR|SYMBOL"), "" for a flag */
	int kind;           /* enum kbu_value_kind of the value */
	char choices[96];   /* CHOICE: the choices separated by '|' */
	int context;        /* an option the caller consumes (kbu_option_is_context) */
	char text[240];     /* its one-line description when the help has one, else "" */
};

struct kbu_arg_info {
	char name[48];      /* as the usage writes it ("NAME|ADDR...", "ELF", "[CPU]" -> "CPU") */
	int kind;           /* enum kbu_value_kind */
	int optional;       /* written inside [...] */
	int repeats;        /* followed by "..." */
};

/*
 * Options / positional arguments named in a help text (any: a command's, the
 * CLI's, a script's), in order of first appearance, each once. Fills at most
 * max entries of out (out may be NULL) and returns how many there are (the
 * scan keeps at most 64 options and 32 arguments).
 */
size_t kbu_help_options(const char *help, struct kbu_option_info *out, size_t max);
size_t kbu_help_args(const char *help, struct kbu_arg_info *out, size_t max);
/* The same for a registered command by name (0 for an unknown name). */
size_t kbu_command_options(const char *name, struct kbu_option_info *out, size_t max);
size_t kbu_command_args(const char *name, struct kbu_arg_info *out, size_t max);
/* 1 for the options a caller consumes before kbu_run (memory source, kernel,
 * symbols, --os, --json, --strict, --stats, --help, --version), else 0. */
int kbu_option_is_context(const char *name);

/*
 * Runs a command by argv (argv[0] = command name; global options already
 * consumed). Renders its report (text or JSON) into *out (malloc'd, free with
 * kbu_free). Returns the exit status: 0 fine, 1 problems found and ctx->strict,
 * 2 usage or input error (err set, *out may hold help text for --help: then 0).
 */
int kbu_run(struct kbu_ctx *ctx, int argc, char **argv, int json, char **out, struct kbu_err *err);

#ifdef __cplusplus
}
#endif
#endif
