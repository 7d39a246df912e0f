/* kbu asserts: every call site of the profile's assertion and panic entries, by caller. */
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/disasm.h"
#include "kbu/elf.h"
#include "kbu/os.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/util.h"

struct site {
	struct kbu_xref x;
	const char *entry;
	const char *caller;
};

static int by_caller(const void *a, const void *b)
{
	const struct site *x = a, *y = b;
	int c = strcmp(x->caller, y->caller);
	if (c)
		return c;
	return x->x.addr < y->x.addr ? -1 : x->x.addr > y->x.addr;
}

static int asserts_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		       struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {
		{"os", 0, 1}, {"profile", 0, 1}, {"list", 'l', 0}, {"entry", 'e', 1}, {0}};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	const char *os = ctx->os, *profile = NULL, *only_func = NULL, *only_entry = NULL;
	int i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG) {
			if (only_func)
				return kbu_err_set(err, KBU_EINVAL, "one FUNCTION only");
			only_func = g.arg;
		} else if (i == 0) {
			os = g.arg;
		} else if (i == 1) {
			profile = g.arg;
		} else if (i == 3) {
			only_entry = g.arg;
		}
	}
	if (only_func && !kbu_sym_by_name(ctx->syms, only_func))
		return kbu_err_set(err, KBU_ENOTFOUND, "no function '%s' in the symbols",
				   only_func);
	struct kbu_os_profile *p = kbu_ctx_profile(ctx, os, profile, err);
	if (!p)
		return -1;
	struct kbu_node *root = kbu_report_root(r);
	kbu_display(root, "os_text", "os", "%s (%s profile)", kbu_os_name(p), kbu_os_origin(p));
	kbu_str(root, "os", "", kbu_os_name(p));
	kbu_str(root, "profile", "", kbu_os_origin(p));
	struct kbu_node *el = kbu_list(root, "entries", "Entries");
	struct site *sites = NULL;
	size_t n = 0, cap = 0;
	char name[128];
	int rc = 0;
	for (size_t k = 0; kbu_os_role_word(p, "asserts", k, name, sizeof(name)); k++) {
		if (only_entry && strcmp(only_entry, name) != 0)
			continue;
		const struct kbu_sym *s = kbu_sym_by_name(ctx->syms, name);
		struct kbu_node *row = kbu_row(el);
		kbu_str(row, "name", "entry", name);
		if (!s) {
			kbu_null(row, "addr", "address");
			kbu_u64(row, "sites", "call sites", 0);
			kbu_str(row, "note", "note", "not in this kernel");
			continue;
		}
		const char *entry = s->name; /* lives as long as the symbol table */
		struct kbu_xrefs x;
		if (kbu_disasm_calls_to(ctx->kernel, ctx->syms, s->addr, &x, err) < 0) {
			rc = kbu_err_prefix(err, "call sites of %s", name);
			break;
		}
		size_t kept = 0;
		for (size_t j = 0; j < x.n; j++) {
			const struct kbu_sym *f = kbu_sym_by_addr(ctx->syms, x.v[j].addr, NULL);
			const char *caller = f ? f->name : "?";
			if (only_func && strcmp(caller, only_func) != 0)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 256;
				struct site *v = realloc(sites, nc * sizeof(*v));
				if (!v) {
					kbu_xrefs_free(&x);
					rc = kbu_err_set(err, KBU_ENOMEM, "out of memory");
					goto out;
				}
				sites = v;
				cap = nc;
			}
			sites[n].x = x.v[j];
			sites[n].entry = entry;
			sites[n].caller = caller;
			n++;
			kept++;
		}
		kbu_hex(row, "addr", "address", s->addr, 16);
		kbu_u64(row, "sites", "call sites", kept);
		kbu_str(row, "note", "note", kbu_os_role_has(p, "printf_entries", name)
			? "printf-style (fmt in rdi)"
			: kbu_os_role_has(p, "vprintf_entries", name) ? "fmt in rdi, va_list in rsi" : "");
		kbu_xrefs_free(&x);
	}
	if (rc == 0) {
		if (n)
			qsort(sites, n, sizeof(*sites), by_caller);
		struct kbu_node *sl = kbu_list(root, "sites", "Call sites (by calling function)");
		char fmt[160];
		for (size_t k = 0; k < n; k++) {
			struct kbu_node *row = kbu_row(sl);
			kbu_str(row, "function", "function", sites[k].caller);
			kbu_hex(row, "addr", "address", sites[k].x.addr, 16);
			uint64_t off = 0;
			kbu_sym_by_addr(ctx->syms, sites[k].x.addr, &off);
			kbu_u64(row, "offset", "", off);
			kbu_str(row, "entry", "calls", sites[k].entry);
			kbu_str(row, "kind", "", sites[k].x.kind == KBU_XREF_JMP ? "jmp" : "call");
			const char *f = NULL;
			if (sites[k].x.arg0 && kbu_os_role_has(p, "printf_entries", sites[k].entry))
				f = kbu_image_string(ctx->kernel, sites[k].x.arg0, fmt, sizeof(fmt));
			else if (sites[k].x.arg0 && kbu_os_role_has(p, "vprintf_entries", sites[k].entry))
				f = kbu_image_string(ctx->kernel, sites[k].x.arg0, fmt, sizeof(fmt));
			if (f) {
				kbu_display(row, "format_text", "format", "\"%s\"", f);
				kbu_str(row, "format", "", f);
			} else {
				kbu_null(row, "format", "format");
			}
		}
		if (only_func && n == 0)
			kbu_problem(sl, KBU_SEV_NOTE, "%s calls none of the entries directly", only_func);
	}
out:
	free(sites);
	kbu_os_free(p);
	return rc;
}

static struct kbu_command cmd_asserts = {
	.name = "asserts",
	.summary = "call sites of the assertion and panic entries, grouped by calling function",
	.help = "usage: kbu asserts --kernel ELF [--symbols MAP] [--os OS | --profile FILE]\n"
		"                   [--entry NAME] [--list] [FUNCTION]\n"
		"\n"
		"Lists every call (and tail-call jmp) in the kernel text to the profile's\n"
		"assertion and panic entries (FreeBSD kassert_panic, vpanic, panic; NetBSD\n"
		"kern_assert, vpanic, panic; Linux panic, __warn, report_bug), found with\n"
		"capstone, grouped by the calling function, with the format string when the\n"
		"call's first argument is loaded from a constant just before it. FUNCTION keeps\n"
		"only its sites; --entry only one entry. Break on a site to stop before the\n"
		"assertion's condition has fired (`kbu break assert --list` in GDB).\n",
	.needs = KBU_NEEDS_KERNEL | KBU_NEEDS_SYMS,
	.run = asserts_run,
};
KBU_COMMAND(cmd_asserts)
