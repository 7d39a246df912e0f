/* kbu commands: the registry, the context, and kbu_run (help, needs, exit status). */
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/os.h"
#include "kbu/elf.h"
#include "kbu/mem.h"
#include "kbu/report.h"
#include "kbu/symbols.h"

/* The one piece of global state: filled by constructors before main runs. */
static struct kbu_command *registry;

void kbu_command_register(struct kbu_command *cmd)
{
	for (struct kbu_command *c = registry; c; c = c->next)
		if (c == cmd)
			return;
	cmd->next = registry;
	registry = cmd;
}

const struct kbu_command *kbu_command_find(const char *name)
{
	if (!name)
		return NULL;
	for (const struct kbu_command *c = registry; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static int by_name(const void *a, const void *b)
{
	const struct kbu_command *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

size_t kbu_command_list(const struct kbu_command **out, size_t max)
{
	size_t n = 0, total = 0;
	for (const struct kbu_command *c = registry; c; c = c->next) {
		if (out && n < max)
			out[n++] = c;
		total++;
	}
	if (out && n)
		qsort(out, n, sizeof *out, by_name);
	return total;
}

struct kbu_ctx *kbu_ctx_new(void)
{
	struct kbu_ctx *ctx = calloc(1, sizeof *ctx);
	if (ctx)
		strcpy(ctx->os, "auto");
	return ctx;
}

void kbu_ctx_free(struct kbu_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->mem)
		kbu_mem_close(ctx->mem);
	if (ctx->syms)
		kbu_symtab_free(ctx->syms);
	if (ctx->kernel)
		kbu_elf_close(ctx->kernel);
	free(ctx);
}

int kbu_ctx_set_mem(struct kbu_ctx *ctx, struct kbu_mem *mem)
{
	if (!ctx)
		return -1;
	if (ctx->mem && ctx->mem != mem)
		kbu_mem_close(ctx->mem);
	ctx->mem = mem;
	return 0;
}

static struct kbu_symtab *ctx_symtab(struct kbu_ctx *ctx, struct kbu_err *err)
{
	if (!ctx->syms) {
		ctx->syms = kbu_symtab_new();
		if (!ctx->syms)
			kbu_err_set(err, KBU_ENOMEM, "out of memory for the symbol table");
	}
	return ctx->syms;
}

int kbu_ctx_load_kernel(struct kbu_ctx *ctx, const char *path, struct kbu_err *err)
{
	if (!ctx || !path)
		return kbu_err_set(err, KBU_EINVAL, "no kernel path given");
	if (ctx->kernel)
		return kbu_err_set(err, KBU_EINVAL, "a kernel is already loaded (%s)",
				   kbu_elf_path(ctx->kernel));
	struct kbu_elf *e = kbu_elf_open(path, err);
	if (!e)
		return -1;
	struct kbu_symtab *st = ctx_symtab(ctx, err);
	if (!st) {
		kbu_elf_close(e);
		return -1;
	}
	if (kbu_symtab_load_elf(st, e, err) < 0 || kbu_symtab_finish(st, err) < 0) {
		kbu_elf_close(e);
		return -1;
	}
	ctx->kernel = e;
	return 0;
}

int kbu_ctx_load_symbols(struct kbu_ctx *ctx, const char *path, struct kbu_err *err)
{
	if (!ctx || !path)
		return kbu_err_set(err, KBU_EINVAL, "no symbol map path given");
	struct kbu_symtab *st = ctx_symtab(ctx, err);
	if (!st)
		return -1;
	if (kbu_symtab_load_map(st, path, err) < 0 || kbu_symtab_finish(st, err) < 0)
		return -1;
	return 0;
}

int kbu_ctx_need_mem(struct kbu_ctx *ctx, struct kbu_err *err)
{
	if (ctx && ctx->mem)
		return 0;
	return kbu_err_set(err, KBU_EINVAL,
			   "needs guest memory: give --core DUMP, --phys FILE[@BASE] or --gdb HOST:PORT");
}

int kbu_ctx_need_kernel(struct kbu_ctx *ctx, struct kbu_err *err)
{
	if (ctx && ctx->kernel)
		return 0;
	return kbu_err_set(err, KBU_EINVAL, "needs a kernel image: give --kernel ELF");
}

int kbu_ctx_need_syms(struct kbu_ctx *ctx, struct kbu_err *err)
{
	if (ctx && ctx->syms && kbu_symtab_count(ctx->syms))
		return 0;
	/* A stripped --kernel alone leaves an empty table: say why it is empty. */
	if (ctx && ctx->syms && kbu_symtab_why_empty(ctx->syms))
		return kbu_err_set(err, KBU_ENOTFOUND, "needs symbols: %s",
				   kbu_symtab_why_empty(ctx->syms));
	return kbu_err_set(err, KBU_EINVAL, "needs symbols: give --kernel ELF or --symbols MAP");
}

static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	}
	return 0;
}

int kbu_run(struct kbu_ctx *ctx, int argc, char **argv, int json, char **out, struct kbu_err *err)
{
	struct kbu_err local;
	if (!err)
		err = &local;
	kbu_err_clear(err);
	if (out)
		*out = NULL;
	if (!ctx || argc < 1 || !argv || !argv[0] || !out) {
		kbu_err_set(err, KBU_EINVAL, "no command given (kbu --help lists them)");
		return 2;
	}
	const struct kbu_command *cmd = kbu_command_find(argv[0]);
	if (!cmd) {
		kbu_err_set(err, KBU_EINVAL, "unknown command '%s' (kbu --help lists them)", argv[0]);
		return 2;
	}
	if (wants_help(argc, argv)) {
		const char *h = cmd->help ? cmd->help : cmd->summary ? cmd->summary : cmd->name;
		size_t n = strlen(h);
		*out = malloc(n + 2);
		if (!*out) {
			kbu_err_set(err, KBU_ENOMEM, "out of memory");
			return 2;
		}
		memcpy(*out, h, n);
		if (n && h[n - 1] != '\n')
			(*out)[n++] = '\n';
		(*out)[n] = '\0';
		return 0;
	}
	if (((cmd->needs & KBU_NEEDS_MEM) && kbu_ctx_need_mem(ctx, err) < 0) ||
	    ((cmd->needs & KBU_NEEDS_KERNEL) && kbu_ctx_need_kernel(ctx, err) < 0) ||
	    ((cmd->needs & KBU_NEEDS_SYMS) && kbu_ctx_need_syms(ctx, err) < 0))
		return 2;
	struct kbu_report *r = kbu_report_new(cmd->name);
	if (!r) {
		kbu_err_set(err, KBU_ENOMEM, "out of memory");
		return 2;
	}
	if (cmd->run(ctx, argc, argv, r, err) < 0) {
		if (!err->msg[0])
			kbu_err_set(err, KBU_EINVAL, "failed without saying why");
		kbu_report_free(r);
		return 2;
	}
	*out = kbu_report_render(r, json);
	int problems = kbu_report_problems(r);
	kbu_report_free(r);
	if (!*out) {
		kbu_err_set(err, KBU_ENOMEM, "out of memory rendering the report");
		return 2;
	}
	return problems && ctx->strict ? 1 : 0;
}

struct kbu_os_profile *kbu_ctx_profile(const struct kbu_ctx *ctx, const char *os,
				       const char *profile, struct kbu_err *err)
{
	struct kbu_os_evidence ev = {ctx->syms, ctx->kernel};
	return kbu_os_select(os ? os : ctx->os, profile, &ev, err);
}
