/*
 * kbu layout ELF: every PT_LOAD with its link (virtual) and load (physical)
 * address, and the offset between them: the map a porter needs before
 * breaking in code that runs before paging is on.
 */
#include <elf.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/elf.h"
#include "kbu/report.h"
#include "kbu/util.h"
#include "kbu/xen.h"

static const char *machine_name(int m)
{
	switch (m) {
	case EM_X86_64: return "x86-64";
	case EM_386: return "i386";
	case EM_AARCH64: return "aarch64";
	case EM_RISCV: return "riscv";
	default: return "other";
	}
}

static const char *osabi_name(int o)
{
	switch (o) {
	case ELFOSABI_SYSV: return "none (SYSV)";
	case ELFOSABI_NETBSD: return "NetBSD";
	case ELFOSABI_LINUX: return "Linux";
	case ELFOSABI_FREEBSD: return "FreeBSD";
	default: return "other";
	}
}

static const char *etype_name(int t)
{
	switch (t) {
	case ET_EXEC: return "EXEC";
	case ET_DYN: return "DYN";
	case ET_REL: return "REL";
	case ET_CORE: return "CORE";
	default: return "other";
	}
}

/* An entry point: given either as a link or a load address; show both and the symbol. */
static void entry_point(struct kbu_node *root, const struct kbu_image *img, const char *key,
			const char *title, uint64_t addr, int is_phys)
{
	struct kbu_node *o = kbu_obj(root, key, title);
	uint64_t link = 0, load = 0;
	int have_link = 0, have_load = 0;
	if (is_phys) {
		load = addr, have_load = 1;
		have_link = kbu_elf_paddr_to_vaddr(img->elf, addr, &link) == 0;
	} else if (kbu_elf_vaddr_to_paddr(img->elf, addr, &load) == 0) {
		link = addr, have_link = have_load = 1;
	} else if (kbu_elf_paddr_to_vaddr(img->elf, addr, &link) == 0) {
		/* Some kernels (Linux vmlinux) put the physical entry in e_entry. */
		load = addr, have_link = have_load = 1;
	}
	kbu_hex(o, "value", "as given", addr, 0);
	if (have_link)
		kbu_hex(o, "link", "link address", link, 16);
	else
		kbu_null(o, "link", "link address");
	if (have_load)
		kbu_hex(o, "load", "load address", load, 0);
	else
		kbu_null(o, "load", "load address");
	char sym[256] = "";
	if (have_link)
		kbu_image_symbol(img, link, sym, sizeof(sym));
	if (sym[0])
		kbu_str(o, "symbol", NULL, sym);
	else
		kbu_null(o, "symbol", img->syms ? NULL : "");
	if (!have_link && !have_load)
		kbu_problem(o, KBU_SEV_WARN, "0x%llx is inside no PT_LOAD segment, as a link or a "
					     "load address", (unsigned long long)addr);
}

static int layout_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		      struct kbu_err *err)
{
	struct kbu_image img;
	if (kbu_image_from_args(ctx, argc, argv, &img, err) != 0)
		return -1;
	const struct kbu_elf *e = img.elf;
	struct kbu_node *root = kbu_report_root(r);
	kbu_str(root, "file", NULL, kbu_elf_path(e));
	kbu_display(root, "format", "format", "ELF%d %s %s, OS ABI %s", kbu_elf_class(e),
		    machine_name(kbu_elf_machine(e)), etype_name(kbu_elf_type(e)),
		    osabi_name(kbu_elf_osabi(e)));
	kbu_u64(root, "class", "", (uint64_t)kbu_elf_class(e));
	kbu_str(root, "machine", "", machine_name(kbu_elf_machine(e)));
	kbu_str(root, "type", "", etype_name(kbu_elf_type(e)));
	kbu_u64(root, "osabi", "", (uint64_t)kbu_elf_osabi(e));
	int aw = kbu_elf_class(e) == 64 ? 16 : 8; /* address digits */
	struct kbu_node *list = kbu_list(root, "segments", "PT_LOAD segments");
	size_t nload = 0, main_idx = 0;
	uint64_t main_delta = 0, main_size = 0;
	for (size_t k = 0; k < kbu_elf_nsegments(e); k++) {
		const struct kbu_segment *s = kbu_elf_segment(e, k);
		if (s->type != PT_LOAD)
			continue;
		nload++;
		struct kbu_node *row = kbu_row(list);
		kbu_u64(row, "index", "#", k);
		kbu_display(row, "flags_text", "flags", "%c%c%c", s->flags & PF_R ? 'R' : '-',
			    s->flags & PF_W ? 'W' : '-', s->flags & PF_X ? 'X' : '-');
		kbu_u64(row, "flags", "", s->flags);
		kbu_bool(row, "readable", "", (s->flags & PF_R) != 0);
		kbu_bool(row, "writable", "", (s->flags & PF_W) != 0);
		kbu_bool(row, "executable", "", (s->flags & PF_X) != 0);
		kbu_hex(row, "offset", NULL, s->offset, 8);
		kbu_hex(row, "link", "link (vaddr)", s->vaddr, aw);
		kbu_hex(row, "load", "load (paddr)", s->paddr, 8);
		kbu_hex(row, "filesz", NULL, s->filesz, 0);
		kbu_hex(row, "memsz", NULL, s->memsz, 0);
		kbu_hex(row, "delta", "vaddr-paddr", s->vaddr - s->paddr, aw);
		if (s->memsz < s->filesz)
			kbu_problem(row, KBU_SEV_ERROR, "memsz 0x%llx is smaller than filesz 0x%llx",
				    (unsigned long long)s->memsz, (unsigned long long)s->filesz);
		/* The largest segment defines the kernel's main link/load offset. */
		if (s->memsz > main_size) {
			main_size = s->memsz;
			main_delta = s->vaddr - s->paddr;
			main_idx = k;
		}
		/* Overlap with an earlier segment in physical memory: the loader would clobber it. */
		for (size_t j = 0; j < k; j++) {
			const struct kbu_segment *t = kbu_elf_segment(e, j);
			if (t->type != PT_LOAD || !t->memsz || !s->memsz)
				continue;
			if (s->paddr < t->paddr + t->memsz && t->paddr < s->paddr + s->memsz)
				kbu_problem(row, KBU_SEV_WARN,
					    "load range 0x%llx-0x%llx overlaps segment %zu (0x%llx-0x%llx)",
					    (unsigned long long)s->paddr,
					    (unsigned long long)(s->paddr + s->memsz), j,
					    (unsigned long long)t->paddr,
					    (unsigned long long)(t->paddr + t->memsz));
		}
	}
	if (!nload) {
		kbu_problem(root, KBU_SEV_ERROR, "no PT_LOAD segment: nothing a loader would place");
	} else {
		/* The base is the lowest segment that shares the main offset. */
		const struct kbu_segment *m = kbu_elf_segment(e, main_idx);
		for (size_t k = 0; k < kbu_elf_nsegments(e); k++) {
			const struct kbu_segment *s = kbu_elf_segment(e, k);
			if (s->type == PT_LOAD && s->vaddr - s->paddr == main_delta && s->vaddr < m->vaddr)
				m = s;
		}
		struct kbu_node *sum = kbu_obj(root, "map", "link/load map");
		kbu_hex(sum, "link_base", "link base", m->vaddr, 16);
		kbu_hex(sum, "load_base", "loads at", m->paddr, 0);
		kbu_hex(sum, "offset", "link - load", main_delta, 16);
		if (main_delta == 0)
			kbu_textline(sum, "link addresses are load addresses (identity: no high map)");
		else if (m->vaddr > m->paddr)
			kbu_textline(sum, "link base 0x%llx loads at 0x%llx: subtract 0x%llx from a link "
				       "address to get the physical alias",
				  (unsigned long long)m->vaddr, (unsigned long long)m->paddr,
				  (unsigned long long)main_delta);
		else
			kbu_textline(sum, "link base 0x%llx loads at 0x%llx: add 0x%llx to a link "
				       "address to get the physical alias",
				  (unsigned long long)m->vaddr, (unsigned long long)m->paddr,
				  (unsigned long long)(m->paddr - m->vaddr));
		struct kbu_node *differ = kbu_list(sum, "differing_segments", "");
		for (size_t k = 0; k < kbu_elf_nsegments(e); k++) {
			const struct kbu_segment *s = kbu_elf_segment(e, k);
			if (s->type == PT_LOAD && s->vaddr - s->paddr != main_delta) {
				kbu_textline(sum, "segment %zu differs: link 0x%llx loads at 0x%llx%s", k,
					     (unsigned long long)s->vaddr, (unsigned long long)s->paddr,
					     s->vaddr == 0 ? " (linked at 0: per-CPU data)" : "");
				kbu_item_u64(differ, k);
			}
		}
	}
	entry_point(root, &img, "entry", "ELF entry (e_entry)", kbu_elf_entry(e), 0);
	uint64_t pvh;
	struct kbu_err perr;
	if (kbu_xen_pvh_entry(e, &pvh, &perr) == 0)
		entry_point(root, &img, "pvh_entry", "PVH entry (PHYS32_ENTRY)", pvh, 1);
	else if (perr.code == KBU_ENOTFOUND) {
		kbu_textline(root, "no PVH entry (no Xen PHYS32_ENTRY note)");
		kbu_null(root, "pvh_entry", "");
	}
	else
		kbu_problem(root, KBU_SEV_ERROR, "%s", perr.msg);
	const char *why = kbu_elf_notes_problem(e);
	if (why)
		kbu_problem(root, KBU_SEV_WARN, "%s", why);
	kbu_image_put(&img);
	return 0;
}

static struct kbu_command cmd_layout = {
	.name = "layout",
	.summary = "PT_LOAD segments: link vs load address, the high/low map, entry points",
	.help = "usage: kbu layout ELF\n"
		"       kbu --kernel ELF [--symbols MAP] layout\n"
		"\n"
		"Lists every PT_LOAD: flags, file offset, link (virtual) address, load\n"
		"(physical) address, sizes and the offset vaddr-paddr, then the link/load map\n"
		"of the largest segment (\"subtract 0xffffffff80000000 to get the physical\n"
		"alias\"), segments that differ from it, the ELF entry and the PVH entry\n"
		"(PHYS32_ENTRY), each as link and load address with its symbol when known.\n"
		"Overlapping load ranges, memsz < filesz and entries outside every segment\n"
		"are problems (exit 1 with --strict).\n",
	.needs = KBU_NEEDS_NOTHING,
	.run = layout_run,
};
KBU_COMMAND(cmd_layout)
