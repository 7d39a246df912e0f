/* kbu printf: the message a kernel's printf/panic is about to print, from guest memory. */
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/mem.h"
#include "kbu/printf.h"
#include "kbu/reloc.h"
#include "kbu/report.h"
#include "kbu/util.h"

/* V,V,...: numbers, symbols or registers ($rsi), as every ADDR kbu takes. */
static int parse_list(struct kbu_ctx *ctx, const char *s, uint64_t *out, size_t max, size_t *n,
		      struct kbu_err *err)
{
	char buf[512];
	if (strlen(s) >= sizeof buf)
		return kbu_err_set(err, KBU_EINVAL, "--args: list too long");
	strcpy(buf, s);
	*n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n >= max)
			return kbu_err_set(err, KBU_EINVAL, "--args: more than %zu values", max);
		if (kbu_parse_addr(ctx, tok, &out[(*n)++], err) < 0)
			return kbu_err_prefix(err, "--args");
	}
	return 0;
}

static int printf_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		      struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {
		{"fmt", 0, 1}, {"fmt-at", 0, 1}, {"args", 0, 1}, {"stack", 0, 1},
		{"va-list", 0, 1}, {"slide", 0, 1}, {NULL, 0, 0},
	};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	uint64_t fmt = 0, fmt_at = 0, slide = 0;
	int have_fmt = 0, have_fmt_at = 0, have_va = 0;
	struct kbu_printf_args a = {.kind = KBU_PRINTF_REGS};
	int i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG)
			return kbu_err_set(err, KBU_EINVAL, "unexpected argument '%s'", g.arg);
		switch (i) {
		case 0:
			if (kbu_parse_addr(ctx, g.arg, &fmt, err) < 0)
				return kbu_err_prefix(err, "--fmt");
			have_fmt = 1;
			break;
		case 1:
			if (kbu_parse_addr(ctx, g.arg, &fmt_at, err) < 0)
				return kbu_err_prefix(err, "--fmt-at");
			have_fmt_at = 1;
			break;
		case 2:
			if (parse_list(ctx, g.arg, a.regs, KBU_PRINTF_MAX_REGS, &a.nregs, err) < 0)
				return -1;
			break;
		case 3:
			if (kbu_parse_u64(g.arg, &a.stack, err) < 0)
				return kbu_err_prefix(err, "--stack");
			a.have_stack = 1;
			break;
		case 4:
			if (kbu_parse_u64(g.arg, &a.va_list, err) < 0)
				return kbu_err_prefix(err, "--va-list");
			have_va = 1;
			break;
		case 5:
			if (kbu_parse_u64(g.arg, &slide, err) < 0)
				return kbu_err_prefix(err, "--slide");
			break;
		}
	}
	if (have_fmt == have_fmt_at)
		return kbu_err_set(err, KBU_EINVAL, "give the format's address (--fmt ADDR) or where "
				   "a pointer to it is (--fmt-at ADDR)");
	if (have_va && (a.nregs || a.have_stack))
		return kbu_err_set(err, KBU_EINVAL, "--va-list goes without --args and --stack");
	if (have_va)
		a.kind = KBU_PRINTF_VALIST;

	struct kbu_reloc_map map;
	struct kbu_err me;
	int have_map = ctx->kernel && kbu_reloc_map(ctx->kernel, &map, &me) == 0;
	struct kbu_printf_env env = {.mem = ctx->mem, .map = have_map ? &map : NULL,
				     .slide = slide, .syms = ctx->syms};
	if (have_fmt_at) {
		uint8_t b[8];
		struct kbu_err re;
		int ok = kbu_mem_read(ctx->mem, KBU_VIRT, fmt_at, b, 8, &re) == 0;
		uint64_t pa;
		if (!ok && have_map && kbu_reloc_v2p(&map, fmt_at - slide, &pa) == 0)
			ok = kbu_mem_read(ctx->mem, KBU_PHYS, pa, b, 8, &re) == 0;
		if (!ok)
			return kbu_err_set(err, KBU_EFAULT, "cannot read the format pointer at 0x%llx: %s",
					   (unsigned long long)fmt_at, re.msg);
		fmt = kbu_le64(b);
	}
	char *text = malloc(KBU_PRINTF_MAX_FORMAT);
	struct kbu_printf_result *res = malloc(sizeof *res);
	if (!text || !res) {
		free(text);
		free(res);
		return kbu_err_set(err, KBU_ENOMEM, "out of memory");
	}
	int rc = -1;
	if (kbu_printf_read_string(&env, fmt, text, KBU_PRINTF_MAX_FORMAT, err) < 0) {
		kbu_err_prefix(err, "the format");
		goto out;
	}
	if (kbu_printf_format(&env, text, &a, res, err) < 0)
		goto out;
	struct kbu_node *root = kbu_report_root(r);
	kbu_hex(root, "format_addr", "format at", fmt, 16);
	/* the text shows control bytes escaped (a format's "\n" is not a blank line); JSON the bytes */
	char *ef = kbu_escape_dup(text, strlen(text), "");
	char *em = kbu_escape_dup(res->message, strlen(res->message), "");
	kbu_display(root, "format_text", "format", "%s", ef ? ef : text);
	kbu_str(root, "format", "", text);
	kbu_display(root, "message_text", "message", "%s", em ? em : res->message);
	kbu_str(root, "message", "", res->message);
	free(ef);
	free(em);
	kbu_u64(root, "arguments", "arguments used", res->conversions);
	kbu_bool(root, "truncated", "", res->truncated);
	if (res->unreadable) {
		struct kbu_node *f = kbu_finding(
			root, KBU_SEV_WARN, "printf.unreadable",
			"%zu argument%s or string%s could not be read from guest memory",
			res->unreadable, res->unreadable == 1 ? "" : "s",
			res->unreadable == 1 ? "" : "s");
		kbu_u64(f, "unreadable", "", res->unreadable);
	}
	rc = 0;
out:
	free(text);
	free(res);
	return rc;
}

static struct kbu_command cmd_printf = {
	.name = "printf",
	.summary = "the message a kernel's printf or panic is about to print, formatted from memory",
	.help = "usage: kbu printf (--fmt ADDR | --fmt-at ADDR) [--args V,V,...] [--stack ADDR]\n"
		"                  [--va-list ADDR] [--slide N]\n"
		"\n"
		"Formats a kernel printf the way the kernel is about to: the format string at\n"
		"ADDR (or the pointer to it at --fmt-at ADDR, as in Linux's struct warn_args)\n"
		"with its arguments as the x86-64 calling convention passes them to\n"
		"panic(fmt, ...): --args the registers after the format (rsi,rdx,rcx,r8,r9),\n"
		"then the stack from --stack ADDR (RSP + 8 at the function's first\n"
		"instruction); or a va_list at --va-list ADDR, as vpanic(fmt, ap) gets it.\n"
		"Strings are read from guest memory (through the kernel's physical alias\n"
		"while paging is off; --slide N for a relocated kernel). Knows FreeBSD's %b\n"
		"(bit names) and %D (hex dump) and Linux's %pS and %pV. An argument that\n"
		"cannot be read is shown as <unreadable ...> and flagged.\n",
	.needs = KBU_NEEDS_MEM,
	.run = printf_run,
};
KBU_COMMAND(cmd_printf)
