/* kbu notes ELF: every ELF note by owner, type name and decoded value. */
#include <string.h>

#include "kbu/command.h"
#include "kbu/elf.h"
#include "kbu/report.h"
#include "kbu/util.h"
#include "kbu/xen.h"

static const char *note_kind_name(int kind)
{
	static const char *const names[] = {"raw", "string", "number", "features", "bitmap",
					    "pairs", "hex", "version"};
	return kind >= 0 && (size_t)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "raw";
}

static void pvh_callout(struct kbu_node *root, const struct kbu_image *img)
{
	uint64_t entry;
	struct kbu_err err;
	if (kbu_xen_pvh_entry(img->elf, &entry, &err) != 0) {
		if (err.code == KBU_ENOTFOUND)
			kbu_textline(root, "no PVH entry (no Xen PHYS32_ENTRY note): not bootable as a "
					   "PVH ELF (qemu -kernel, Firecracker)");
		else
			kbu_problem(root, KBU_SEV_ERROR, "%s", err.msg);
		kbu_null(root, "pvh_entry", "");
		kbu_null(root, "pvh_entry_link", "");
		kbu_null(root, "pvh_entry_symbol", "");
		return;
	}
	kbu_hex(root, "pvh_entry", "PVH entry (PHYS32_ENTRY)", entry, 0);
	uint64_t link;
	char sym[256] = "";
	if (kbu_elf_paddr_to_vaddr(img->elf, entry, &link) == 0) {
		kbu_hex(root, "pvh_entry_link", "PVH entry link address", link, 16);
		kbu_image_symbol(img, link, sym, sizeof(sym));
	} else {
		kbu_null(root, "pvh_entry_link", "");
		kbu_problem(root, KBU_SEV_WARN,
			    "PVH entry 0x%llx is in no PT_LOAD's load (physical) range",
			    (unsigned long long)entry);
		kbu_image_symbol(img, entry, sym, sizeof(sym));
	}
	if (sym[0])
		kbu_str(root, "pvh_entry_symbol", "PVH entry symbol", sym);
	else
		kbu_null(root, "pvh_entry_symbol", "");
}

static int notes_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		     struct kbu_err *err)
{
	struct kbu_image img;
	if (kbu_image_from_args(ctx, argc, argv, &img, err) != 0)
		return -1;
	struct kbu_node *root = kbu_report_root(r);
	kbu_str(root, "file", NULL, kbu_elf_path(img.elf));
	struct kbu_node *list = kbu_list(root, "notes", "notes");
	size_t n = kbu_elf_nnotes(img.elf);
	for (size_t k = 0; k < n; k++) {
		const struct kbu_note *note = kbu_elf_note(img.elf, k);
		struct kbu_note_value v;
		kbu_note_decode(note, &v);
		struct kbu_node *row = kbu_row(list);
		kbu_str(row, "owner", NULL, note->owner);
		kbu_hex(row, "type", NULL, note->type, 0);
		kbu_display(row, "name_text", "name", "%s", v.type_name ? v.type_name : "?");
		if (v.type_name)
			kbu_str(row, "name", "", v.type_name);
		else
			kbu_null(row, "name", "");
		kbu_u64(row, "size", NULL, note->descsz);
		kbu_str(row, "kind", "", note_kind_name(v.kind));
		/* text is the value itself for text notes; for a number it is how it reads */
		kbu_display(row, "value_text", "value", "%s", v.text);
		if (v.kind == KBU_NOTE_NUMBER || v.kind == KBU_NOTE_RAW)
			kbu_null(row, "value", "");
		else
			kbu_str(row, "value", "", v.text);
		if (v.kind == KBU_NOTE_NUMBER || v.kind == KBU_NOTE_BITMAP || v.kind == KBU_NOTE_VERSION)
			kbu_u64(row, "number", "", v.num);
		else
			kbu_null(row, "number", "");
		kbu_bytes(row, "bytes", "", note->desc, note->descsz);
		kbu_hex(row, "file_offset", "", note->file_offset, 0);
		if (v.problem[0])
			kbu_problem(row, KBU_SEV_WARN, "%s note %s (type %u) at file offset 0x%llx: %s",
				    note->owner, v.type_name ? v.type_name : "?", note->type,
				    (unsigned long long)note->file_offset, v.problem);
	}
	const char *why = kbu_elf_notes_problem(img.elf);
	if (why)
		kbu_problem(root, KBU_SEV_ERROR, "%s (the notes before it are listed)", why);
	if (!n && !why)
		kbu_textline(root, "no ELF notes (no PT_NOTE segment or SHT_NOTE section)");
	pvh_callout(root, &img);
	kbu_image_put(&img);
	return 0;
}

static struct kbu_command cmd_notes = {
	.name = "notes",
	.summary = "list every ELF note, Xen notes by name and value (PVH entry called out)",
	.help = "usage: kbu notes ELF\n"
		"       kbu --kernel ELF notes\n"
		"\n"
		"Lists the notes of the PT_NOTE segments (or SHT_NOTE sections): owner, type\n"
		"number and name, size, and the value decoded by type. Every Xen note type\n"
		"(INFO ... PHYS32_ENTRY, PHYS32_RELOC) is named and decoded as a string, a 4- or\n"
		"8-byte number, a feature string, a feature bitmap with XENFEAT_ names or\n"
		"mask/value pairs; GNU build-id and ABI tags, Linux build salt, FreeBSD and\n"
		"NetBSD version tags likewise; anything else is shown raw.\n"
		"The PVH entry (PHYS32_ENTRY, where QEMU -kernel and Firecracker jump in\n"
		"32-bit mode with paging off) is called out with its link address and symbol.\n"
		"A note whose sizes run past its segment, or a value of the wrong size, is a\n"
		"problem (exit 1 with --strict).\n",
	.needs = KBU_NEEDS_NOTHING,
	.run = notes_run,
};
KBU_COMMAND(cmd_notes)
