/* Note decoding: every Xen type by name and value, other owners, and the notes/layout commands. */

#include "check.h"
#include "support.h"
#include "elf_fixture.h"
#include "kbu/command.h"
#include "kbu/elf.h"
#include "kbu/report.h"
#include "kbu/xen.h"

static void decode(const char *owner, uint32_t type, const void *desc, size_t n,
		   struct kbu_note_value *v)
{
	struct kbu_note note = {.owner = owner, .type = type, .desc = desc, .descsz = n};
	kbu_note_decode(&note, v);
}

TEST(every_xen_type_has_its_name)
{
	static const char *const names[] = {
		"INFO", "ENTRY", "HYPERCALL_PAGE", "VIRT_BASE", "PADDR_OFFSET", "XEN_VERSION",
		"GUEST_OS", "GUEST_VERSION", "LOADER", "PAE_MODE", "FEATURES", "BSD_SYMTAB",
		"HV_START_LOW", "L1_MFN_VALID", "SUSPEND_CANCEL", "INIT_P2M", "MOD_START_PFN",
		"SUPPORTED_FEATURES", "PHYS32_ENTRY", "PHYS32_RELOC"};
	for (uint32_t t = 0; t < sizeof(names) / sizeof(names[0]); t++)
		CHECK_STR(kbu_xen_note_name(t), names[t]);
	CHECK(kbu_xen_note_name(20) == NULL);
	CHECK_STR(kbu_xen_note_name(0x1000001), "CRASH_INFO");
}

TEST(xen_values_are_decoded_by_type)
{
	struct kbu_note_value v;
	decode("Xen", 6, "FreeBSD", 8, &v);
	CHECK_STR(v.type_name, "GUEST_OS");
	CHECK_EQ_U64(v.kind, KBU_NOTE_STRING);
	CHECK_STR(v.text, "FreeBSD");
	CHECK_STR(v.problem, "");
	/* Strings are bounded by descsz (Linux writes FEATURES without a NUL). */
	decode("Xen", 10, "!writable_page_tables|pae_pgdir_above_4gb", 41, &v);
	CHECK_EQ_U64(v.kind, KBU_NOTE_FEATURES);
	CHECK_STR(v.text, "writable_page_tables (required), pae_pgdir_above_4gb");
	const uint8_t ctl[] = {'a', 0x01, 'b', 0};
	decode("Xen", 8, ctl, sizeof(ctl), &v);
	CHECK_STR(v.text, "a\\x01b");
	/* Numbers of 4 and 8 bytes. */
	const uint8_t e4[] = {0x20, 0x01, 0x20, 0x00};
	decode("Xen", 18, e4, 4, &v);
	CHECK_STR(v.type_name, "PHYS32_ENTRY");
	CHECK_EQ_U64(v.kind, KBU_NOTE_NUMBER);
	CHECK_EQ_U64(v.num, 0x200120);
	CHECK_STR(v.text, "0x200120");
	const uint8_t e8[] = {0x00, 0x00, 0x00, 0x80, 0xff, 0xff, 0xff, 0xff};
	decode("Xen", 3, e8, 8, &v);
	CHECK_STR(v.type_name, "VIRT_BASE");
	CHECK_EQ_U64(v.num, 0xffffffff80000000ull);
	/* A number of the wrong size is shown raw and flagged. */
	decode("Xen", 18, e4, 3, &v);
	CHECK_EQ_U64(v.kind, KBU_NOTE_RAW);
	CHECK_STR(v.text, "20 01 20");
	CHECK_CONTAINS(v.problem, "3-byte value");
	/* A PVH entry above 4 GiB cannot be a 32-bit entry. */
	const uint8_t hi[] = {0, 0, 0, 0, 1, 0, 0, 0};
	decode("Xen", 18, hi, 8, &v);
	CHECK_CONTAINS(v.problem, "above 4 GiB");
	/* SUPPORTED_FEATURES: a bitmap with XENFEAT_ names (Linux's 0x8801). */
	const uint8_t bits[] = {0x01, 0x88, 0x00, 0x00};
	decode("Xen", 17, bits, 4, &v);
	CHECK_EQ_U64(v.kind, KBU_NOTE_BITMAP);
	CHECK_STR(v.text, "0x00008801 (writable_page_tables, dom0, linux_rsdp_unrestricted)");
	const uint8_t unnamed[] = {0, 0, 0, 0x80};
	decode("Xen", 17, unnamed, 4, &v);
	CHECK_STR(v.text, "0x80000000 (bit31)");
	/* L1_MFN_VALID: 8-byte mask/value pairs, 4-byte ones on 32-bit guests. */
	const uint8_t mv[] = {1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
	decode("Xen", 13, mv, 16, &v);
	CHECK_EQ_U64(v.kind, KBU_NOTE_PAIRS);
	CHECK_STR(v.text, "mask 0x1 value 0x1");
	const uint8_t mv4[] = {3, 0, 0, 0, 1, 0, 0, 0};
	decode("Xen", 13, mv4, 8, &v);
	CHECK_STR(v.text, "mask 0x3 value 0x1");
	decode("Xen", 13, mv4, 5, &v);
	CHECK_EQ_U64(v.kind, KBU_NOTE_RAW);
	CHECK_CONTAINS(v.problem, "mask/value pairs");
	/* PHYS32_RELOC: alignment, min, max. */
	const uint32_t reloc[] = {0x200000, 0x1000000, 0x7fffffff};
	decode("Xen", 19, reloc, 12, &v);
	CHECK_STR(v.text, "align 0x200000, min 0x1000000, max 0x7fffffff");
	/* Unknown type: raw bytes. */
	const uint8_t raw[] = {0xde, 0xad};
	decode("Xen", 99, raw, 2, &v);
	CHECK(v.type_name == NULL);
	CHECK_EQ_U64(v.kind, KBU_NOTE_RAW);
	CHECK_STR(v.text, "de ad");
}

TEST(other_owners_are_decoded_where_simple)
{
	struct kbu_note_value v;
	const uint8_t id[] = {0x3b, 0x43, 0xfa, 0xd5};
	decode("GNU", 3, id, 4, &v);
	CHECK_STR(v.type_name, "GNU_BUILD_ID");
	CHECK_STR(v.text, "3b43fad5");
	const uint32_t abi[] = {0, 3, 2, 0};
	decode("GNU", 1, abi, 16, &v);
	CHECK_STR(v.text, "Linux 3.2.0");
	decode("GNU", 1, abi, 12, &v);
	CHECK_CONTAINS(v.problem, "an ABI tag is 16");
	const uint32_t fbsd = 1501000;
	decode("FreeBSD", 1, &fbsd, 4, &v);
	CHECK_STR(v.type_name, "FREEBSD_ABI_TAG");
	CHECK_STR(v.text, "1501000 (FreeBSD 15.1)");
	const uint32_t nbsd = 1099001200;
	decode("NetBSD", 1, &nbsd, 4, &v);
	CHECK_STR(v.text, "1099001200 (NetBSD 10.99.12)");
	decode("Linux", 0x100, "6.1.0-56-cloud-amd64", 21, &v);
	CHECK_STR(v.type_name, "LINUX_BUILD_SALT");
	CHECK_STR(v.text, "6.1.0-56-cloud-amd64");
	decode("Someone", 7, "", 0, &v);
	CHECK_STR(v.text, "(empty)");
}

/* A FreeBSD-like kernel: KERNBASE high map, GUEST_OS, PVH entry at xen_start32's alias. */
static const char *freebsd_like(char *path, size_t plen, int with_syms)
{
	static const uint32_t entry = 0x200040;
	static const struct fx_note notes[] = {
		{"Xen", 6, "FreeBSD", 8},
		{"Xen", 18, &entry, 4},
		{"FreeBSD", 1, "\x48\xe7\x16\x00", 4},
	};
	static const struct fx_sym syms[] = {
		{"btext", 0xffffffff80200000ull, 0x40, STB_GLOBAL, STT_FUNC, 1},
		{"xen_start32", 0xffffffff80200040ull, 0x30, STB_GLOBAL, STT_FUNC, 1},
	};
	struct fx_spec s = {.vaddr = 0xffffffff80200000ull, .paddr = 0x200000,
			    .entry = 0xffffffff80200000ull, .notes = notes, .nnotes = 3,
			    .syms = with_syms ? syms : NULL, .nsyms = with_syms ? 2 : 0,
			    .osabi = ELFOSABI_FREEBSD};
	size_t len;
	uint8_t *img = fx_build(&s, &len);
	fx_write(with_syms ? "fbsd.elf" : "fbsd-stripped.elf", img, len, path, plen);
	free(img);
	return path;
}

TEST(pvh_entry_is_found_or_clearly_missing)
{
	char path[256];
	struct kbu_err err = {0};
	struct kbu_elf *e = kbu_elf_open(freebsd_like(path, sizeof(path), 0), &err);
	CHECK(e != NULL);
	uint64_t entry = 0;
	if (e) {
		CHECK(kbu_xen_pvh_entry(e, &entry, &err) == 0);
		CHECK_EQ_U64(entry, 0x200040);
		kbu_elf_close(e);
	}
	struct fx_spec s = {.vaddr = 0x100000, .paddr = 0x100000};
	size_t len;
	uint8_t *img = fx_build(&s, &len);
	fx_write("nonotes.elf", img, len, path, sizeof(path));
	free(img);
	e = kbu_elf_open(path, &err);
	CHECK(e != NULL);
	if (e) {
		CHECK(kbu_xen_pvh_entry(e, &entry, &err) == -1);
		CHECK_EQ_U64(err.code, KBU_ENOTFOUND);
		CHECK_CONTAINS(err.msg, "no PVH entry");
		kbu_elf_close(e);
	}
}

TEST(notes_command_lists_every_note_and_calls_out_the_pvh_entry)
{
	char path[256];
	freebsd_like(path, sizeof(path), 1);
	struct kbu_ctx *ctx = kbu_ctx_new();
	struct kbu_err err = {0};
	char *out = NULL;
	int rc = run_cmd(ctx, 0, &out, &err, 2, "notes", path);
	CHECK_EQ_U64(rc, 0);
	CHECK_CONTAINS(out, "GUEST_OS");
	CHECK_CONTAINS(out, "FreeBSD");
	CHECK_CONTAINS(out, "PHYS32_ENTRY");
	CHECK_CONTAINS(out, "1501000 (FreeBSD 15.1)");
	CHECK_CONTAINS(out, "PVH entry (PHYS32_ENTRY): 0x200040");
	CHECK_CONTAINS(out, "xen_start32");
	kbu_free(out);
	rc = run_cmd(ctx, 1, &out, &err, 2, "notes", path);
	CHECK_EQ_U64(rc, 0);
	CHECK_CONTAINS(out, "\"pvh_entry\": 2097216");
	CHECK_CONTAINS(out, "\"pvh_entry_symbol\": \"xen_start32\"");
	CHECK_CONTAINS(out, "\"name\": \"GUEST_OS\"");
	kbu_free(out);
	/* No such file: an input error, exit 2, one line. */
	rc = run_cmd(ctx, 0, &out, &err, 2, "notes", "/nonexistent.elf");
	CHECK_EQ_U64(rc, 2);
	CHECK_CONTAINS(err.msg, "/nonexistent.elf: cannot open");
	kbu_free(out);
	/* No ELF at all. */
	rc = run_cmd(ctx, 0, &out, &err, 1, "notes");
	CHECK_EQ_U64(rc, 2);
	CHECK_CONTAINS(err.msg, "needs a kernel image");
	kbu_free(out);
	kbu_ctx_free(ctx);
}

TEST(lying_notes_are_problems_with_strict)
{
	uint8_t raw[32];
	uint32_t h[3] = {4, 0x1000, 18};
	memcpy(raw, h, 12);
	memcpy(raw + 12, "Xen", 4);
	memcpy(raw + 16, "\x40\x00\x20\x00", 4);
	struct fx_spec s = {.vaddr = 0x100000, .paddr = 0x100000, .raw_notes = raw,
			    .raw_notes_len = 20};
	size_t len;
	uint8_t *img = fx_build(&s, &len);
	char path[256];
	fx_write("lying.elf", img, len, path, sizeof(path));
	free(img);
	struct kbu_ctx *ctx = kbu_ctx_new();
	struct kbu_err err = {0};
	char *out = NULL;
	int rc = run_cmd(ctx, 0, &out, &err, 2, "notes", path);
	CHECK_EQ_U64(rc, 0);
	CHECK_CONTAINS(out, "! error: PT_NOTE segment 1: note at file offset 0x200 (type 18)");
	CHECK_CONTAINS(out, "descsz 4096");
	kbu_free(out);
	ctx->strict = 1;
	rc = run_cmd(ctx, 0, &out, &err, 2, "notes", path);
	CHECK_EQ_U64(rc, 1);
	kbu_free(out);
	kbu_ctx_free(ctx);
}

TEST(layout_shows_link_and_load_and_the_high_map)
{
	char path[256];
	freebsd_like(path, sizeof(path), 1);
	struct kbu_ctx *ctx = kbu_ctx_new();
	struct kbu_err err = {0};
	char *out = NULL;
	int rc = run_cmd(ctx, 0, &out, &err, 2, "layout", path);
	CHECK_EQ_U64(rc, 0);
	CHECK_CONTAINS(out, "ELF64 x86-64 EXEC, OS ABI FreeBSD");
	CHECK_CONTAINS(out, "0xffffffff80200000");
	CHECK_CONTAINS(out, "0x00200000");
	CHECK_CONTAINS(out, "link base 0xffffffff80200000 loads at 0x200000: subtract "
			    "0xffffffff80000000 from a link address to get the physical alias");
	CHECK_CONTAINS(out, "symbol:       btext");
	CHECK_CONTAINS(out, "symbol:       xen_start32");
	kbu_free(out);
	rc = run_cmd(ctx, 1, &out, &err, 2, "layout", path);
	CHECK_CONTAINS(out, "\"offset\": 18446744071562067968"); /* 0xffffffff80000000 */
	CHECK_CONTAINS(out, "\"link\": 18446744071564165184");  /* 0xffffffff80200040 */
	kbu_free(out);
	/* The same through --kernel instead of the positional ELF. */
	CHECK(kbu_ctx_load_kernel(ctx, path, &err) == 0);
	rc = run_cmd(ctx, 0, &out, &err, 1, "layout");
	CHECK_EQ_U64(rc, 0);
	CHECK_CONTAINS(out, "symbol:       xen_start32");
	kbu_free(out);
	kbu_ctx_free(ctx);
}

TEST(a_kernel_with_every_xen_note_lists_them_all)
{
	static const uint64_t n8 = 0xffffffff80000000ull;
	static const uint32_t n4 = 1;
	static const uint8_t pairs[16] = {1, 0, 0, 0, 0, 0, 0, 0, 1};
	struct fx_note notes[20];
	for (uint32_t t = 0; t < 20; t++) {
		notes[t].owner = "Xen";
		notes[t].type = t;
		switch (t) {
		case 0: case 5: case 6: case 7: case 8: case 9: case 10: case 11:
			notes[t].desc = "generic";
			notes[t].descsz = 8;
			break;
		case 13:
			notes[t].desc = pairs;
			notes[t].descsz = 16;
			break;
		case 14: case 16: case 17: case 18: case 19:
			notes[t].desc = &n4;
			notes[t].descsz = 4;
			break;
		default:
			notes[t].desc = &n8;
			notes[t].descsz = 8;
		}
	}
	struct fx_spec s = {.vaddr = 0, .paddr = 0, .notes = notes, .nnotes = 20};
	size_t len;
	uint8_t *img = fx_build(&s, &len);
	char path[256];
	fx_write("allxen.elf", img, len, path, sizeof(path));
	free(img);
	struct kbu_ctx *ctx = kbu_ctx_new();
	struct kbu_err err = {0};
	char *out = NULL;
	ctx->strict = 1;
	int rc = run_cmd(ctx, 0, &out, &err, 2, "notes", path);
	CHECK_EQ_U64(rc, 0); /* every note well-formed: no problem */
	CHECK_CONTAINS(out, "0xffffffff80000000");
	CHECK_CONTAINS(out, "mask 0x1 value 0x1");
	CHECK_CONTAINS(out, "0x00000001 (writable_page_tables)");
	CHECK_CONTAINS(out, "PVH entry (PHYS32_ENTRY): 0x1\n");
	kbu_free(out);
	rc = run_cmd(ctx, 1, &out, &err, 2, "notes", path);
	CHECK_EQ_U64(rc, 0);
	for (uint32_t t = 0; t < 20; t++) {
		char want[96];
		snprintf(want, sizeof(want), "{\"owner\": \"Xen\", \"type\": %u, \"name\": \"%s\"", t,
			 kbu_xen_note_name(t));
		CHECK_CONTAINS(out, want);
	}
	kbu_free(out);
	kbu_ctx_free(ctx);
}

int main(void)
{
	RUN(a_kernel_with_every_xen_note_lists_them_all);
	RUN(every_xen_type_has_its_name);
	RUN(xen_values_are_decoded_by_type);
	RUN(other_owners_are_decoded_where_simple);
	RUN(pvh_entry_is_found_or_clearly_missing);
	RUN(notes_command_lists_every_note_and_calls_out_the_pvh_entry);
	RUN(lying_notes_are_problems_with_strict);
	RUN(layout_shows_link_and_load_and_the_high_map);
	fx_cleanup();
	CHECK_DONE("test_notes");
}
