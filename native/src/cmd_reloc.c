/* kbu reloc: the link / load / runtime map of a kernel and how it was decided. */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/elf.h"
#include "kbu/mem.h"
#include "kbu/regs.h"
#include "kbu/reloc.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/util.h"

#define MAX_REPORTED 32

struct reported {
	char name[128];
	uint64_t addr;
};

/* A slide in JSON as the signed number it is; the text shows it in hex, with its sign. */
static void slide_field(struct kbu_node *o, int64_t slide)
{
	if (slide < 0)
		kbu_display(o, "slide_text", "slide", "-0x%llx",
			    (unsigned long long)(0 - (uint64_t)slide));
	else
		kbu_display(o, "slide_text", "slide", "0x%llx", (unsigned long long)slide);
	kbu_i64(o, "slide", "", slide);
}

static void found_section(struct kbu_node *o, const struct kbu_reloc_found *f, int searched,
			  const char *why_not)
{
	kbu_bool(o, "searched", "", searched);
	if (!searched) {
		kbu_display(o, "status", "status", "not searched");
		kbu_bool(o, "found", "", 0);
		kbu_null(o, "slide", "");
		kbu_strf(o, "how", "", "not searched (%s)", why_not);
		return;
	}
	kbu_bool(o, "found", "found", f->found);
	if (f->found)
		slide_field(o, f->slide);
	else
		kbu_null(o, "slide", "slide");
	kbu_display(o, "windows_text", "windows matched", "%zu of %zu", f->matched, f->tried);
	kbu_u64(o, "windows_matched", "", f->matched);
	kbu_u64(o, "windows_compared", "", f->tried);
	kbu_u64(o, "candidates", "slides examined", f->candidates);
	kbu_u64(o, "unreadable", "slides unreadable", f->unreadable);
	kbu_str(o, "how", "how", f->how);
}

static int reloc_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		     struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {
		{"align", 0, 1}, {"range", 0, 1}, {"phys-limit", 0, 1}, {"windows", 0, 1},
		{"no-virt", 0, 0}, {"no-phys", 0, 0}, {"reported", 0, 1}, {"slide", 0, 1},
		{NULL, 0, 0},
	};
	struct kbu_reloc_opts o;
	struct reported rep[MAX_REPORTED];
	size_t nrep = 0;
	kbu_reloc_opts_default(&o);
	struct kbu_getopt g = KBU_GETOPT_INIT;
	int i;
	uint64_t v;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG)
			return kbu_err_set(err, KBU_EINVAL, "unexpected argument '%s'", g.arg);
		switch (i) {
		case 0:
		case 1:
		case 2:
		case 3:
			if (kbu_parse_u64(g.arg, &v, err) < 0)
				return kbu_err_prefix(err, "--%s", opts[i].name);
			if (i == 0) {
				if (!v || (v & (v - 1)))
					return kbu_err_set(err, KBU_EINVAL,
							   "--align 0x%llx is not a power of two",
							   (unsigned long long)v);
				o.align = v;
			} else if (i == 1) {
				o.virt_range = v;
			} else if (i == 2) {
				o.phys_limit = v;
			} else {
				if (v == 0 || v > KBU_RELOC_MAXWIN)
					return kbu_err_set(err, KBU_EINVAL,
							   "--windows must be 1..%d", KBU_RELOC_MAXWIN);
				o.nwindows = (size_t)v;
			}
			break;
		case 4: o.virt = 0; break;
		case 5: o.phys = 0; break;
		case 7:
			if (kbu_parse_u64(g.arg, &v, err) < 0)
				return kbu_err_prefix(err, "--slide");
			o.only_slide = 1;
			o.slide = (int64_t)v;
			o.phys = 0;
			break;
		case 6: {
			const char *eq = strchr(g.arg, '=');
			if (!eq || eq == g.arg || (size_t)(eq - g.arg) >= sizeof rep[0].name)
				return kbu_err_set(err, KBU_EINVAL,
						   "--reported wants NAME=ADDR, not '%s'", g.arg);
			if (nrep >= MAX_REPORTED)
				return kbu_err_set(err, KBU_EINVAL, "more than %d --reported",
						   MAX_REPORTED);
			memcpy(rep[nrep].name, g.arg, (size_t)(eq - g.arg));
			rep[nrep].name[eq - g.arg] = '\0';
			if (kbu_parse_u64(eq + 1, &rep[nrep].addr, err) < 0)
				return kbu_err_prefix(err, "--reported %s", rep[nrep].name);
			nrep++;
			break;
		}
		}
	}

	struct kbu_reloc_map map;
	if (kbu_reloc_map(ctx->kernel, &map, err) < 0)
		return -1;
	struct kbu_node *root = kbu_report_root(r);
	kbu_str(root, "kernel", "kernel", kbu_elf_path(ctx->kernel));
	kbu_u64(root, "elf_class", "ELF class", (uint64_t)kbu_elf_class(ctx->kernel));
	struct kbu_node *segs = kbu_list(root, "segments", "PT_LOAD segments (link -> load)");
	for (size_t k = 0; k < map.nseg; k++) {
		const struct kbu_reloc_seg *s = &map.seg[k];
		struct kbu_node *row = kbu_row(segs);
		/* as kbu layout gives them: p_flags and what it permits */
		kbu_display(row, "flags_text", "flags", "%c%c%c", s->flags & PF_R ? 'r' : '-',
			    s->flags & PF_W ? 'w' : '-', s->flags & PF_X ? 'x' : '-');
		kbu_u64(row, "flags", "", s->flags);
		kbu_bool(row, "readable", "", (s->flags & PF_R) != 0);
		kbu_bool(row, "writable", "", (s->flags & PF_W) != 0);
		kbu_bool(row, "executable", "", (s->flags & PF_X) != 0);
		kbu_hex(row, "vaddr", "link (virtual)", s->vaddr, 16);
		kbu_hex(row, "paddr", "load (physical)", s->paddr, 16);
		kbu_hex(row, "memsz", "size", s->memsz, 0);
		kbu_hex(row, "delta", "virtual - physical", s->vaddr - s->paddr, 16);
	}

	/* Where the boot stands: before paging the slide cannot be known yet. */
	enum kbu_reloc_phase phase = KBU_RELOC_PHASE_UNKNOWN;
	if (ctx->mem) {
		struct kbu_regs cpu0;
		struct kbu_err re;
		if (kbu_mem_regs(ctx->mem, 0, &cpu0, &re) == 0)
			phase = kbu_reloc_phase(&cpu0);
	}
	kbu_str(root, "phase", "", kbu_reloc_phase_name(phase));

	struct kbu_reloc_result res;
	int searched = 0;
	/* Before paging there is no virtual map to search: say so instead of reading
	 * link addresses as physical ones. */
	int virt_asked = o.virt;
	int virt_early = o.virt && !o.only_slide &&
			 (phase == KBU_RELOC_PHASE_RESET || phase == KBU_RELOC_PHASE_NO_PAGING);
	if (virt_early)
		o.virt = 0;
	if (ctx->mem && (o.virt || o.phys || virt_early)) {
		if (kbu_reloc_find(ctx->mem, ctx->kernel, &o, &res, err) < 0)
			return -1;
		searched = 1;
		struct kbu_node *w = kbu_list(root, "windows", "windows compared (link addresses)");
		for (size_t k = 0; k < res.nwindows; k++)
			kbu_item_hex(w, res.windows[k], 16);
		struct kbu_node *vs = kbu_obj(root, "virtual", "runtime virtual slide (KASLR)");
		if (virt_early) {
			kbu_bool(vs, "searched", "", 0);
			kbu_bool(vs, "found", "found", 0);
			kbu_null(vs, "slide", "slide");
			kbu_str(vs, "how", "how", phase == KBU_RELOC_PHASE_RESET
				? "not searched: CPU 0 is at its reset vector"
				: "not searched: paging is off (CR0.PG=0)");
		} else {
			found_section(vs, &res.virt, o.virt, "--no-virt");
		}
		struct kbu_node *ps = kbu_obj(root, "physical", "runtime physical load");
		found_section(ps, &res.phys, o.phys, o.only_slide ? "--slide checks the virtual "
							"placement only" : "--no-phys");
		if (o.virt && res.virt.found) {
			kbu_hex(vs, "runtime_base", "first segment runs at",
				map.seg[0].vaddr + (uint64_t)res.virt.slide, 16);
		}
		if (o.phys && res.phys.found)
			kbu_hex(ps, "runtime_base", "first segment loaded at",
				map.seg[0].paddr + (uint64_t)res.phys.slide, 16);
		if (virt_asked && !res.virt.found && !o.only_slide) {
			if (phase == KBU_RELOC_PHASE_RESET)
				kbu_finding(vs, KBU_SEV_NOTE, "reloc.slide_not_yet",
					    "CPU 0 is at its reset vector: nothing has loaded or run the kernel "
					    "yet, so its virtual addresses are the ELF's link addresses; a "
					    "runtime slide (KASLR) is decided once the kernel runs");
			else if (phase == KBU_RELOC_PHASE_NO_PAGING)
				kbu_finding(vs, KBU_SEV_NOTE, "reloc.slide_not_yet",
					    "paging is off (CR0.PG=0): the kernel runs at its physical "
					    "addresses and has no virtual map yet; a runtime slide (KASLR) "
					    "is decided once it runs with its own page tables");
			else
				kbu_finding(vs, KBU_SEV_NOTE, "reloc.slide_unknown",
					    "virtual slide unknown: %s", res.virt.how);
		}
		if (o.phys && !res.phys.found && phase == KBU_RELOC_PHASE_RESET)
			kbu_finding(ps, KBU_SEV_NOTE, "reloc.not_loaded_yet",
				    "the kernel's code is not in memory yet: the firmware or a boot "
				    "loader still has to place it (the ELF says physical 0x%llx)",
				    (unsigned long long)map.seg[0].paddr);
	} else {
		kbu_textline(root, "no memory source: only the link/load map is shown "
				   "(give --gdb, --core or --phys to find the runtime slides)");
	}

	if (nrep) {
		struct kbu_node *rl = kbu_list(root, "reported", "symbol addresses a debugger reported");
		for (size_t k = 0; k < nrep; k++) {
			struct kbu_node *row = kbu_row(rl);
			const struct kbu_sym *s = ctx->syms ? kbu_sym_by_name(ctx->syms, rep[k].name) : NULL;
			kbu_str(row, "name", "symbol", rep[k].name);
			kbu_hex(row, "reported", "reported", rep[k].addr, 16);
			if (!s) {
				kbu_null(row, "elf", "in the ELF");
				kbu_display(row, "verdict", "verdict", "not in the symbol table");
				kbu_str(row, "state", "", "unknown_symbol");
				continue;
			}
			kbu_hex(row, "elf", "in the ELF", s->addr, 16);
			int64_t slide = searched && res.virt.found ? res.virt.slide : 0;
			if (kbu_reloc_truncated(s->addr, rep[k].addr)) {
				kbu_display(row, "verdict", "verdict", "TRUNCATED to 32 bits");
				kbu_str(row, "state", "", "truncated");
				struct kbu_node *f = kbu_finding(
					row, KBU_SEV_WARN, "reloc.truncated",
					"%s: reported 0x%llx is 0x%llx cut to 32 bits (the debugger lacks "
					"this kernel's OS ABI: `set osabi none` before loading it)",
					rep[k].name, (unsigned long long)rep[k].addr,
					(unsigned long long)s->addr);
				kbu_hex(f, "reported", "", rep[k].addr, 0);
				kbu_hex(f, "elf", "", s->addr, 0);
			} else if (rep[k].addr == s->addr + (uint64_t)slide) {
				kbu_display(row, "verdict", "verdict", "%s", slide ? "ok (relocated)" : "ok");
				kbu_str(row, "state", "", "ok");
			} else if (rep[k].addr == s->addr && slide) {
				kbu_display(row, "verdict", "verdict", "at link address, runs 0x%llx higher",
					 (unsigned long long)slide);
				kbu_str(row, "state", "", "link_address");
				struct kbu_node *f = kbu_finding(
					row, KBU_SEV_WARN, "reloc.link_address",
					"%s: the debugger uses the link address; the kernel runs at 0x%llx "
					"(reload the symbols with offset 0x%llx)", rep[k].name,
					(unsigned long long)(s->addr + (uint64_t)slide),
					(unsigned long long)slide);
				kbu_hex(f, "slide", "", (uint64_t)slide, 0);
			} else {
				kbu_display(row, "verdict", "verdict", "off by 0x%llx",
					 (unsigned long long)(rep[k].addr - s->addr));
				kbu_str(row, "state", "", "differs");
				struct kbu_node *f = kbu_finding(
					row, KBU_SEV_WARN, "reloc.reported_differs",
					"%s: reported 0x%llx, the ELF says 0x%llx", rep[k].name,
					(unsigned long long)rep[k].addr, (unsigned long long)s->addr);
				kbu_hex(f, "reported", "", rep[k].addr, 0);
				kbu_hex(f, "elf", "", s->addr, 0);
			}
		}
	}
	return 0;
}

static struct kbu_command cmd_reloc = {
	.name = "reloc",
	.summary = "link / load / runtime addresses: physical aliases, KASLR slide, truncated symbols",
	.help = "usage: kbu reloc --kernel ELF [--gdb H:P|--core F|--phys F] [--align N]\n"
		"                 [--range N] [--phys-limit N] [--windows N] [--no-virt] [--no-phys]\n"
		"                 [--reported NAME=ADDR ...] [--slide N]\n"
		"\n"
		"Shows each PT_LOAD segment's link (virtual) address and physical alias, then\n"
		"finds where the kernel really is: distinctive 64-byte windows of the ELF's\n"
		"code are compared with guest memory at link + slide for slides 0, N, 2N, ...\n"
		"up to --range (virtual, KASLR; default N = 2 MiB, range 1 GiB) and at every\n"
		"N-aligned physical base up to --phys-limit (physical load). A slide is taken\n"
		"when more than half the windows match; the report says how it decided or\n"
		"why it could not (not mapped yet, another kernel). Works without symbols.\n"
		"--reported NAME=ADDR checks an address a debugger gave for a symbol: cut to\n"
		"32 bits (GDB without the kernel's OS ABI), left at the link address while\n"
		"the kernel runs relocated, or otherwise off. --slide N only checks whether\n"
		"the kernel runs at link + N (no physical search).\n"
		"Before the kernel runs (CPU 0 at its reset vector, or paging off) its virtual\n"
		"addresses are the ELF's link addresses: a runtime slide (KASLR) is decided\n"
		"once it runs with its own page tables, and the report says so.\n",
	.needs = KBU_NEEDS_KERNEL,
	.run = reloc_run,
};
KBU_COMMAND(cmd_reloc)
