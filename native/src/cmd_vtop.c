/* kbu vtop: translate a virtual address, showing every page-table level walked. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/mem.h"
#include "kbu/paging.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/util.h"

static void entry_flags(const struct kbu_walk *w, int step, char *buf, size_t len)
{
	uint64_t e = w->steps[step].entry;
	int last = step == w->nsteps - 1;
	int wide = w->mode != KBU_PG_32;
	int is_pdpte_pae = w->mode == KBU_PG_PAE && step == 0;
	const char *level = w->steps[step].level;
	int pt = strcmp(level, "PT") == 0;
	size_t n = 0;
	buf[0] = '\0';
#define ADD(cond, s) do { if ((cond) && n < len) { \
	int k_ = snprintf(buf + n, len - n, "%s%s", n ? " " : "", s); \
	if (k_ > 0) n += (size_t)k_; } } while (0)
	ADD(e & 1, "P");
	if (!(e & 1)) {
		snprintf(buf, len, "not present");
		return;
	}
	ADD(!is_pdpte_pae && (e & 2), "RW");
	ADD(!is_pdpte_pae && (e & 4), "US");
	ADD(e & 8, "PWT");
	ADD(e & 16, "PCD");
	ADD(!is_pdpte_pae && (e & 32), "A");
	ADD(last && (e & 64), "D");
	ADD(!pt && (e & 128), "PS");
	ADD(pt && (e & 128), "PAT");
	ADD(last && (e & 256), "G");
	ADD(wide && (e >> 63), "NX");
#undef ADD
}

static const char *size_text(uint64_t sz)
{
	switch (sz) {
	case 4096: return "4 KiB";
	case 2ull << 20: return "2 MiB";
	case 4ull << 20: return "4 MiB";
	case 1ull << 30: return "1 GiB";
	}
	return "?";
}

static int parse_mode(const char *s, enum kbu_paging_mode *m, struct kbu_err *err)
{
	static const struct { const char *name; enum kbu_paging_mode mode; } modes[] = {
		{"4level", KBU_PG_4LEVEL}, {"5level", KBU_PG_5LEVEL}, {"pae", KBU_PG_PAE},
		{"32", KBU_PG_32}, {"off", KBU_PG_OFF},
	};
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
		if (strcmp(s, modes[i].name) == 0) {
			*m = modes[i].mode;
			return 0;
		}
	return kbu_err_set(err, KBU_EINVAL, "--mode '%s': one of 4level, 5level, pae, 32, off", s);
}

static int run_vtop(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		    struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {
		{"cr3", 0, 1}, {"cpu", 'c', 1}, {"mode", 'm', 1}, {NULL, 0, 0},
	};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	const char *addr_s = NULL, *cr3_s = NULL, *mode_s = NULL;
	uint64_t cpu = 0;
	int i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG) {
			if (addr_s)
				return kbu_err_set(err, KBU_EINVAL, "one address at a time ('%s' is extra)", g.arg);
			addr_s = g.arg;
		} else if (i == 0) {
			cr3_s = g.arg;
		} else if (i == 1) {
			if (kbu_parse_u64(g.arg, &cpu, err) < 0)
				return kbu_err_prefix(err, "--cpu");
		} else {
			mode_s = g.arg;
		}
	}
	if (!addr_s)
		return kbu_err_set(err, KBU_EINVAL, "usage: kbu vtop ADDR [--cr3 X] [--cpu N] [--mode M]");
	uint64_t va;
	if (kbu_parse_addr(ctx, addr_s, &va, err) < 0)
		return -1;

	enum kbu_paging_mode mode = KBU_PG_UNKNOWN;
	uint64_t cr3 = 0;
	struct kbu_regs regs;
	struct kbu_err rerr = {0};
	int have_regs = kbu_mem_regs(ctx->mem, (int)cpu, &regs, &rerr) == 0 && (regs.have & KBU_HAVE_CR);
	if (have_regs) {
		mode = kbu_regs_paging_mode(&regs);
		cr3 = regs.cr3;
	}
	if (cr3_s && kbu_parse_u64(cr3_s, &cr3, err) < 0)
		return kbu_err_prefix(err, "--cr3");
	if (mode_s && parse_mode(mode_s, &mode, err) < 0)
		return -1;
	if (!have_regs && !cr3_s)
		return kbu_err_set(err, KBU_EINVAL, "no CR3 for CPU %" PRIu64 " (%s); give --cr3 X [--mode M]",
				   cpu, rerr.msg[0] ? rerr.msg : "the source has no control registers");
	struct kbu_node *root = kbu_report_root(r);
	int assumed = mode == KBU_PG_UNKNOWN;
	if (assumed)
		mode = KBU_PG_4LEVEL;

	struct kbu_walk w;
	if (kbu_vtop(ctx->mem, mode, cr3, va, &w, err) < 0)
		return -1;
	kbu_hex(root, "virtual", "Virtual", va, mode >= KBU_PG_4LEVEL ? 16 : 8);
	if (ctx->syms) {
		uint64_t off = 0;
		const struct kbu_sym *s = kbu_sym_by_addr(ctx->syms, va, &off);
		if (s && (!s->size || off < s->size)) {
			kbu_display(root, "symbol_text", "Symbol", off ? "%s+0x%" PRIx64 : "%s", s->name,
				    off);
			kbu_str(root, "symbol", "", s->name);
			kbu_u64(root, "symbol_offset", "", off);
		} else {
			kbu_null(root, "symbol", "");
			kbu_null(root, "symbol_offset", "");
		}
	} else {
		kbu_null(root, "symbol", "");
		kbu_null(root, "symbol_offset", "");
	}
	kbu_str(root, "mode", "Paging", kbu_paging_mode_name(mode));
	kbu_hex(root, "cr3", "CR3", cr3, 16);
	if (have_regs && !cr3_s)
		kbu_u64(root, "cpu", "CR3 of CPU", cpu);
	else
		kbu_null(root, "cpu", "");
	if (assumed)
		kbu_problem(root, KBU_SEV_NOTE, "paging mode unknown: assuming 4-level (give --mode)");
	if (mode == KBU_PG_OFF && !mode_s)
		kbu_problem(root, KBU_SEV_NOTE, "CPU %" PRIu64 " has paging off: virtual = physical", cpu);

	if (w.nsteps) {
		struct kbu_node *l = kbu_list(root, "walk", "Walk");
		for (int s = 0; s < w.nsteps; s++) {
			struct kbu_node *row = kbu_row(l);
			char flags[96];
			entry_flags(&w, s, flags, sizeof flags);
			kbu_str(row, "level", "Level", w.steps[s].level);
			kbu_hex(row, "table", "Table", w.steps[s].table_pa, 12);
			kbu_u64(row, "index", "Index", w.steps[s].index);
			kbu_hex(row, "entry_addr", "Entry at", w.steps[s].entry_pa, 12);
			kbu_hex(row, "entry", "Entry", w.steps[s].entry, mode == KBU_PG_32 ? 8 : 16);
			kbu_display(row, "flags_text", "Flags", "%s", flags);
			kbu_bool(row, "present", "", (w.steps[s].entry & 1) != 0);
			struct kbu_node *fl = kbu_list(row, "flags", "");
			if (w.steps[s].entry & 1)
				for (char *t = strtok(flags, " "); t; t = strtok(NULL, " "))
					kbu_item_str(fl, t);
		}
	}
	kbu_bool(root, "present", "", w.present);
	if (!w.present) {
		const struct kbu_walk_step *s = &w.steps[w.fault_step];
		kbu_null(root, "physical", "");
		kbu_null(root, "page_size", "");
		kbu_problem(root, KBU_SEV_WARN,
			    "0x%" PRIx64 " is not mapped: %s entry %u at physical 0x%" PRIx64 " is 0x%" PRIx64 " (not present)",
			    va, s->level, s->index, s->entry_pa, s->entry);
		return 0;
	}
	kbu_hex(root, "physical", "Physical", w.pa, 12);
	kbu_display(root, "page", "Page", "%s", size_text(w.page_size));
	kbu_u64(root, "page_size", "", w.page_size);
	if (mode != KBU_PG_OFF) {
		kbu_display(root, "access", "Access", "%s, %s, %s", w.user ? "user" : "kernel only",
			    w.writable ? "writable" : "read-only",
			    mode == KBU_PG_32 ? "executable" : w.nx ? "no-execute" : "executable");
		kbu_bool(root, "writable", "", w.writable);
		kbu_bool(root, "user", "", w.user);
		kbu_bool(root, "nx", "", w.nx);
	} else {
		/* paging off: no page-table bits say anything */
		kbu_null(root, "writable", "");
		kbu_null(root, "user", "");
		kbu_null(root, "nx", "");
	}
	uint64_t st[64], en[64];
	int n = kbu_mem_ranges(ctx->mem, st, en, 64), inside = 0;
	for (int k = 0; k < n; k++)
		inside |= w.pa >= st[k] && w.pa < en[k];
	if (n > 0 && !inside)
		kbu_problem(root, KBU_SEV_NOTE,
			    "physical 0x%" PRIx64 " is outside the memory this source holds (device memory?)", w.pa);
	return 0;
}

static struct kbu_command cmd_vtop = {
	.name = "vtop",
	.summary = "translate a virtual address through the page tables, every level shown",
	.help = "usage: kbu vtop ADDR [--cr3 X] [--cpu N] [--mode 4level|5level|pae|32|off]\n"
		"\n"
		"Walks the page tables for ADDR (a number, symbol[+off] with --kernel or\n"
		"--symbols, or $reg[+off] from CPU 0: $rip, $rsp, $cr2 ...) and prints each\n"
		"level: table address, index, entry address, entry and its flags; then the\n"
		"physical address, page size (4 KiB, 2 MiB, 4 MiB, 1 GiB) and access\n"
		"rights. A non-present entry is reported with the level where the walk\n"
		"stopped.\n"
		"\n"
		"CR3 and the paging mode come from CPU N's registers (default CPU 0);\n"
		"--cr3 and --mode override them (needed for a raw image).\n",
	.needs = KBU_NEEDS_MEM,
	.run = run_vtop,
};
KBU_COMMAND(cmd_vtop)
