/* kbu sym: names to addresses, addresses to symbol+offset, and symbol lists. */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/util.h"

static const char *source_name(int src)
{
	return src == KBU_SYMSRC_ELF ? "elf" : src == KBU_SYMSRC_MAP ? "map" : "?";
}

/* One row per query: a name gives its address, an address its symbol+offset. */
static void sym_query(struct kbu_ctx *ctx, const struct kbu_symtab *st, struct kbu_node *list,
		      const char *q)
{
	const struct kbu_sym *s = kbu_sym_by_name(st, q);
	struct kbu_err perr;
	uint64_t addr;
	if (s) {
		struct kbu_node *row = kbu_row(list);
		kbu_str(row, "query", NULL, q);
		kbu_hex(row, "address", NULL, s->addr, 16);
		kbu_display(row, "symbol_text", "symbol", "%s", s->name);
		kbu_str(row, "symbol", "", s->name);
		kbu_u64(row, "offset", "", 0);
		kbu_hex(row, "size", NULL, s->size, 0);
		kbu_strf(row, "type", NULL, "%c", s->type);
		kbu_str(row, "source", NULL, source_name(s->source));
		size_t dup = kbu_sym_name_count(st, q);
		if (dup > 1)
			kbu_problem(row, KBU_SEV_NOTE,
				    "%zu symbols are named '%s'; this is the %s one at the lowest address",
				    dup, q, s->type >= 'A' && s->type <= 'Z' ? "global" : "local");
		return;
	}
	/* Not a name: a number, or symbol+off / symbol-off. */
	if (kbu_parse_u64(q, &addr, &perr) != 0 &&
	    (!strpbrk(q, "+-") || kbu_parse_addr(ctx, q, &addr, &perr) != 0)) {
		struct kbu_node *row = kbu_row(list);
		kbu_str(row, "query", NULL, q);
		kbu_null(row, "address", NULL);
		kbu_display(row, "symbol_text", "symbol", "-");
		kbu_null(row, "symbol", "");
		kbu_null(row, "offset", "");
		kbu_null(row, "size", "");
		kbu_null(row, "type", "");
		kbu_null(row, "source", "");
		if (strpbrk(q, "+-"))
			kbu_problem(row, KBU_SEV_WARN, "'%s': %s", q, perr.msg);
		else
			kbu_problem(row, KBU_SEV_WARN, "'%s': no such symbol, and not an address", q);
		return;
	}
	uint64_t off = 0;
	struct kbu_node *row = kbu_row(list);
	kbu_str(row, "query", NULL, q);
	kbu_hex(row, "address", NULL, addr, 16);
	s = kbu_sym_by_addr(st, addr, &off);
	if (!s) {
		kbu_display(row, "symbol_text", "symbol", "-");
		kbu_null(row, "symbol", "");
		kbu_null(row, "offset", "");
		kbu_null(row, "size", "");
		kbu_null(row, "type", "");
		kbu_null(row, "source", "");
		/* A kernel address GDB cut to 32 bits (an OS ABI it does not know) lands here. */
		uint64_t full = addr | 0xffffffff00000000ull, foff = 0;
		const struct kbu_sym *fs = addr <= 0xffffffffull ? kbu_sym_by_addr(st, full, &foff) : NULL;
		if (fs && (!fs->size || foff < fs->size)) {
			char at[160];
			if (foff)
				snprintf(at, sizeof at, "%s+0x%llx", fs->name, (unsigned long long)foff);
			else
				snprintf(at, sizeof at, "%s", fs->name);
			struct kbu_node *f = kbu_finding(
				row, KBU_SEV_WARN, "sym.truncated",
				"0x%llx is below every symbol; with its upper 32 bits set it is 0x%llx, "
				"%s: an address cut to 32 bits (GDB does that to a kernel whose OS ABI "
				"it lacks; `set osabi none` before loading it)",
				(unsigned long long)addr, (unsigned long long)full, at);
			kbu_hex(f, "full_address", NULL, full, 0);
			kbu_str(f, "symbol", NULL, fs->name);
			kbu_u64(f, "offset", NULL, foff);
		}
		else
			kbu_problem(row, KBU_SEV_WARN, "0x%llx is below every symbol",
				    (unsigned long long)addr);
		return;
	}
	if (off)
		kbu_display(row, "symbol_text", "symbol", "%s+0x%llx", s->name, (unsigned long long)off);
	else
		kbu_display(row, "symbol_text", "symbol", "%s", s->name);
	kbu_str(row, "symbol", "", s->name);
	kbu_u64(row, "offset", "", off);
	kbu_hex(row, "size", NULL, s->size, 0);
	kbu_strf(row, "type", NULL, "%c", s->type);
	kbu_str(row, "source", NULL, source_name(s->source));
	if (s->size && off >= s->size)
		kbu_problem(row, KBU_SEV_WARN,
			    "0x%llx is 0x%llx past the end of %s (0x%llx, size 0x%llx): in no symbol",
			    (unsigned long long)addr, (unsigned long long)(off - s->size), s->name,
			    (unsigned long long)s->addr, (unsigned long long)s->size);
}

static int sym_list_and_query(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
			      struct kbu_err *err, const char **queries)
{
	static const struct kbu_opt opts[] = {{"list", 'l', 0}, {"match", 'm', 1}, {NULL, 0, 0}};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	int list = 0, i;
	const char *match = NULL;
	int nq = 0;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG)
			queries[nq++] = g.arg;
		else if (i == 0)
			list = 1;
		else
			match = g.arg;
	}
	if (match)
		list = 1;
	if (!list && nq == 0)
		return kbu_err_set(err, KBU_EINVAL,
				   "give NAME or ADDR arguments, or --list [--match GLOB]");
	if (!ctx->syms)
		return kbu_err_set(err, KBU_EINVAL,
				   "needs symbols: give --kernel ELF and/or --symbols MAP");
	const struct kbu_symtab *st = ctx->syms;
	if (kbu_symtab_count(st) == 0)
		return kbu_err_set(err, KBU_ENOTFOUND, "%s", kbu_symtab_why_empty(st));
	struct kbu_node *root = kbu_report_root(r);
	const char *first_bad;
	size_t bad = kbu_symtab_bad_lines(st, &first_bad);
	if (bad)
		kbu_problem(root, KBU_SEV_WARN, "%zu map line%s not in nm format %s skipped (first: %s)",
			    bad, bad == 1 ? "" : "s", bad == 1 ? "was" : "were", first_bad);
	kbu_u64(root, "symbols", "symbols loaded", kbu_symtab_count(st));
	if (list) {
		struct kbu_node *l = kbu_list(root, "list", match ? "matching symbols" : "symbols");
		size_t shown = 0;
		for (size_t k = 0; k < kbu_symtab_count(st); k++) {
			const struct kbu_sym *s = kbu_symtab_at(st, k);
			if (match && fnmatch(match, s->name, 0) != 0)
				continue;
			struct kbu_node *row = kbu_row(l);
			kbu_hex(row, "address", NULL, s->addr, 16);
			kbu_hex(row, "size", NULL, s->size, 0);
			kbu_strf(row, "type", NULL, "%c", s->type);
			kbu_str(row, "name", NULL, s->name);
			kbu_str(row, "source", "", source_name(s->source));
			shown++;
		}
		kbu_u64(root, "matched", match ? "matched" : "", shown);
		if (match && !shown)
			kbu_problem(root, KBU_SEV_WARN, "no symbol matches '%s'", match);
	}
	if (nq) {
		struct kbu_node *l = kbu_list(root, "results", "symbols");
		for (int k = 0; k < nq; k++)
			sym_query(ctx, st, l, queries[k]);
	}
	return 0;
}

static int sym_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		   struct kbu_err *err)
{
	const char **queries = calloc((size_t)argc + 1, sizeof(*queries));
	if (!queries)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory");
	int rc = sym_list_and_query(ctx, argc, argv, r, err, queries);
	free(queries);
	return rc;
}

static struct kbu_command cmd_sym = {
	.name = "sym",
	.summary = "resolve symbol names and addresses (ELF symbols, System.map), list symbols",
	.help = "usage: kbu sym [--kernel ELF] [--symbols MAP] NAME|ADDR...\n"
		"       kbu sym [--kernel ELF] [--symbols MAP] --list [--match GLOB]\n"
		"\n"
		"A NAME gives its address, size, nm type letter and where it came from (elf:\n"
		"the ELF .symtab, map: an nm-format file such as Linux's System.map). An ADDR\n"
		"(0x..., with ` or _ separators, or name+0xoff) gives the symbol containing it as\n"
		"symbol+0xoff: a sized symbol that spans it, else the nearest one below.\n"
		"Symbols from --kernel and --symbols are merged; map symbols without a size\n"
		"get one up to the next symbol of the same kind.\n"
		"--list prints every symbol in address order; --match GLOB (fnmatch, e.g.\n"
		"'*pvh*') keeps the matching ones. Unknown names and addresses outside every\n"
		"symbol are problems (exit 1 with --strict). A stripped ELF alone is an error.\n",
	.needs = KBU_NEEDS_NOTHING,
	.run = sym_run,
};
KBU_COMMAND(cmd_sym)
