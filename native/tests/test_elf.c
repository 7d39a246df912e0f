/* ELF image reader: headers, segments, sections, notes, and every way a file can be bad. */
#include <sys/stat.h>

#include "check.h"
#include "elf_fixture.h"
#include "kbu/elf.h"
#include "kbu/symbols.h"
#include "kbu/xen.h"

static const uint32_t pvh_entry = 0x200120;
static const char guest_os[] = "FreeBSD";

static uint8_t *good_image(size_t *len)
{
	static const struct fx_note notes[] = {
		{"Xen", 6, guest_os, sizeof(guest_os)},
		{"Xen", 18, &pvh_entry, 4},
	};
	struct fx_spec s = {.vaddr = 0xffffffff80200000ull, .paddr = 0x200000,
			    .entry = 0xffffffff80200010ull, .notes = notes, .nnotes = 2,
			    .osabi = ELFOSABI_FREEBSD};
	return fx_build(&s, len);
}

TEST(opens_a_kernel_and_reads_its_headers)
{
	size_t len;
	uint8_t *img = good_image(&len);
	char path[256];
	fx_write("good.elf", img, len, path, sizeof(path));
	struct kbu_err err = {0};
	struct kbu_elf *e = kbu_elf_open(path, &err);
	CHECK(e != NULL);
	if (!e) {
		fprintf(stderr, "%s\n", err.msg);
		free(img);
		return;
	}
	CHECK_STR(kbu_elf_path(e), path);
	CHECK_EQ_U64(kbu_elf_class(e), 64);
	CHECK_EQ_U64(kbu_elf_machine(e), EM_X86_64);
	CHECK_EQ_U64(kbu_elf_type(e), ET_EXEC);
	CHECK_EQ_U64(kbu_elf_osabi(e), ELFOSABI_FREEBSD);
	CHECK_EQ_U64(kbu_elf_entry(e), 0xffffffff80200010ull);
	size_t blen;
	CHECK(kbu_elf_bytes(e, &blen) != NULL);
	CHECK_EQ_U64(blen, len);
	/* PT_LOAD then PT_NOTE, as written. */
	CHECK_EQ_U64(kbu_elf_nsegments(e), 2);
	const struct kbu_segment *s = kbu_elf_segment(e, 0);
	CHECK_EQ_U64(s->type, PT_LOAD);
	CHECK_EQ_U64(s->vaddr, 0xffffffff80200000ull);
	CHECK_EQ_U64(s->paddr, 0x200000);
	CHECK_EQ_U64(s->filesz, 0x100);
	CHECK_EQ_U64(s->memsz, 0x1000);
	CHECK_EQ_U64(kbu_elf_segment(e, 1)->type, PT_NOTE);
	CHECK(kbu_elf_segment(e, 2) == NULL);
	const struct kbu_section *text = kbu_elf_section_by_name(e, ".text");
	CHECK(text != NULL);
	if (text) {
		CHECK_EQ_U64(text->addr, 0xffffffff80200000ull);
		CHECK_EQ_U64(text->size, 0x100);
		CHECK(text->flags & SHF_EXECINSTR);
	}
	CHECK(kbu_elf_section_by_name(e, ".nothere") == NULL);
	CHECK_STR(kbu_elf_section(e, 0)->name, "");
	/* Notes in file order, owner and desc as written. */
	CHECK_EQ_U64(kbu_elf_nnotes(e), 2);
	CHECK(kbu_elf_notes_problem(e) == NULL);
	const struct kbu_note *n0 = kbu_elf_note(e, 0), *n1 = kbu_elf_note(e, 1);
	CHECK_STR(n0->owner, "Xen");
	CHECK_EQ_U64(n0->type, 6);
	CHECK_EQ_U64(n0->descsz, sizeof(guest_os));
	CHECK_STR((const char *)n0->desc, "FreeBSD");
	CHECK_EQ_U64(n1->type, 18);
	CHECK_EQ_U64(n1->descsz, 4);
	CHECK_EQ_U64(n1->desc[0] | n1->desc[1] << 8 | n1->desc[2] << 16, pvh_entry);
	CHECK(kbu_elf_note(e, 2) == NULL);
	/* File bytes behind link addresses: .text holds 0, 1, 2, ... */
	const uint8_t *p = kbu_elf_vaddr_bytes(e, 0xffffffff80200010ull, 16);
	CHECK(p != NULL);
	if (p)
		CHECK_EQ_U64(p[0], 0x10);
	CHECK(kbu_elf_vaddr_bytes(e, 0xffffffff802000f0ull, 16) != NULL);
	CHECK(kbu_elf_vaddr_bytes(e, 0xffffffff802000f0ull, 17) == NULL); /* past filesz */
	CHECK(kbu_elf_vaddr_bytes(e, 0xffffffff801fffffull, 1) == NULL);
	CHECK(kbu_elf_vaddr_bytes(e, 0x200010, 1) == NULL); /* a load address is not a link one */
	uint64_t v = 0, ph = 0;
	CHECK(kbu_elf_paddr_to_vaddr(e, pvh_entry, &v) == 0);
	CHECK_EQ_U64(v, 0xffffffff80200120ull);
	CHECK(kbu_elf_vaddr_to_paddr(e, 0xffffffff80200fffull, &ph) == 0); /* bss part of memsz */
	CHECK_EQ_U64(ph, 0x200fff);
	CHECK(kbu_elf_vaddr_to_paddr(e, 0xffffffff80201000ull, &ph) == -1);
	kbu_elf_close(e);
	free(img);
}

TEST(notes_come_from_sections_when_there_is_no_pt_note)
{
	static const struct fx_note notes[] = {{"GNU", 3, "\x01\x02\x03\x04", 4}};
	struct fx_spec s = {.vaddr = 0x100000, .paddr = 0x100000, .notes = notes, .nnotes = 1,
			    .notes_as_section_only = 1};
	size_t len;
	uint8_t *img = fx_build(&s, &len);
	char path[256];
	fx_write("secnotes.elf", img, len, path, sizeof(path));
	struct kbu_err err = {0};
	struct kbu_elf *e = kbu_elf_open(path, &err);
	CHECK(e != NULL);
	if (e) {
		CHECK_EQ_U64(kbu_elf_nsegments(e), 1);
		CHECK_EQ_U64(kbu_elf_nnotes(e), 1);
		CHECK_STR(kbu_elf_note(e, 0)->owner, "GNU");
		CHECK_EQ_U64(kbu_elf_note(e, 0)->descsz, 4);
		kbu_elf_close(e);
	}
	free(img);
}

/* Opens path, expects failure with a message that contains want. */
static void expect_open_error(const char *path, const char *want)
{
	struct kbu_err err = {0};
	struct kbu_elf *e = kbu_elf_open(path, &err);
	CHECK(e == NULL);
	kbu_elf_close(e);
	CHECK(err.code != KBU_OK);
	CHECK_CONTAINS(err.msg, want);
	CHECK(strchr(err.msg, '\n') == NULL); /* one line */
}

TEST(bad_files_give_one_clear_error)
{
	char path[256], dir[256];
	expect_open_error("/nonexistent/kernel.elf", "cannot open");
	snprintf(dir, sizeof(dir), "%s/adir", fx_dir());
	mkdir(dir, 0700);
	expect_open_error(dir, "is a directory");
	expect_open_error(fx_write("empty", "", 0, path, sizeof(path)), "empty file");
	expect_open_error(fx_write("text", "ffffffff81000000 T _text\n", 25, path, sizeof(path)),
			  "not an ELF file (starts with 66 66 66 66");
	size_t len;
	uint8_t *img = good_image(&len);
	expect_open_error(fx_write("short", img, 40, path, sizeof(path)),
			  "truncated ELF header (40 bytes");
	/* Section headers sit at the end: cutting the file leaves the table hanging. */
	expect_open_error(fx_write("cut", img, len - 10, path, sizeof(path)),
			  "section header table at 0x");
	/* A program header table pointing past the end. */
	uint8_t *bad = malloc(len);
	memcpy(bad, img, len);
	((Elf64_Ehdr *)bad)->e_phoff = len - 8;
	expect_open_error(fx_write("phoff", bad, len, path, sizeof(path)),
			  "program header table at 0x");
	/* A PT_LOAD whose file bytes run past the end. */
	memcpy(bad, img, len);
	Elf64_Phdr *ph = (Elf64_Phdr *)(bad + ((Elf64_Ehdr *)bad)->e_phoff);
	ph[0].p_filesz = len;
	expect_open_error(fx_write("filesz", bad, len, path, sizeof(path)),
			  "PT_LOAD 0 (vaddr 0xffffffff80200000) file bytes");
	/* Wrong entry sizes are refused before libelf sees them. */
	memcpy(bad, img, len);
	((Elf64_Ehdr *)bad)->e_phentsize = 20;
	expect_open_error(fx_write("phentsize", bad, len, path, sizeof(path)),
			  "program header entry size 20");
	memcpy(bad, img, len);
	bad[EI_CLASS] = 7;
	expect_open_error(fx_write("class", bad, len, path, sizeof(path)), "ELF class 7");
	free(bad);
	free(img);
}

TEST(lying_note_sizes_stop_the_parse_with_a_problem)
{
	/* A good note, then one whose descsz runs far past the segment. */
	uint8_t raw[64];
	size_t o = 0;
	uint32_t h1[3] = {4, 4, 18};
	memcpy(raw + o, h1, 12), o += 12;
	memcpy(raw + o, "Xen", 4), o += 4;
	memcpy(raw + o, &pvh_entry, 4), o += 4;
	uint32_t h2[3] = {4, 0x7ffffff0, 6};
	memcpy(raw + o, h2, 12), o += 12;
	memcpy(raw + o, "Xen", 4), o += 4;
	memcpy(raw + o, "abcd", 4), o += 4;
	struct fx_spec s = {.vaddr = 0x100000, .paddr = 0x100000, .raw_notes = raw,
			    .raw_notes_len = o};
	size_t len;
	uint8_t *img = fx_build(&s, &len);
	char path[256];
	fx_write("lying.elf", img, len, path, sizeof(path));
	struct kbu_err err = {0};
	struct kbu_elf *e = kbu_elf_open(path, &err);
	CHECK(e != NULL);
	if (e) {
		CHECK_EQ_U64(kbu_elf_nnotes(e), 1);
		CHECK_EQ_U64(kbu_elf_note(e, 0)->type, 18);
		CHECK_CONTAINS(kbu_elf_notes_problem(e), "descsz 2147483632");
		CHECK_CONTAINS(kbu_elf_notes_problem(e), "past the end of its area");
		kbu_elf_close(e);
	}
	free(img);
	/* A namesz that is itself past the end, and stray bytes too short for a header. */
	uint32_t h3[3] = {0xffffffffu, 0, 1};
	memcpy(raw, h3, 12);
	s.raw_notes_len = 12;
	img = fx_build(&s, &len);
	fx_write("lying2.elf", img, len, path, sizeof(path));
	e = kbu_elf_open(path, &err);
	CHECK(e != NULL);
	if (e) {
		CHECK_EQ_U64(kbu_elf_nnotes(e), 0);
		CHECK_CONTAINS(kbu_elf_notes_problem(e), "namesz 4294967295");
		kbu_elf_close(e);
	}
	free(img);
	s.raw_notes_len = 7;
	img = fx_build(&s, &len);
	fx_write("lying3.elf", img, len, path, sizeof(path));
	e = kbu_elf_open(path, &err);
	CHECK(e != NULL);
	if (e) {
		CHECK_CONTAINS(kbu_elf_notes_problem(e), "7 stray bytes");
		kbu_elf_close(e);
	}
	free(img);
}

/*
 * Mutated images (seeded, so a failure reproduces): every byte of the headers,
 * tables, notes and symbols is fair game. Opening may fail, but never crash;
 * whatever opens must be walkable end to end (ASan/UBSan watch the reads).
 */
TEST(mutated_images_never_crash)
{
	static const uint32_t entry = 0x200040;
	static const struct fx_note notes[] = {
		{"Xen", 6, "FreeBSD", 8}, {"Xen", 18, &entry, 4}, {"Xen", 13, "\1\0\0\0\0\0\0\0\1\0\0\0\0\0\0", 16},
		{"GNU", 3, "\x3b\x43\xfa\xd5", 4}, {"Xen", 10, "!a|b", 4}};
	static const struct fx_sym syms[] = {
		{"btext", 0xffffffff80200000ull, 0x40, STB_GLOBAL, STT_FUNC, 1},
		{"xen_start32", 0xffffffff80200040ull, 0x30, STB_GLOBAL, STT_FUNC, 1},
		{"label", 0xffffffff80200044ull, 0, STB_LOCAL, STT_NOTYPE, 1},
		{"absval", 0x10, 0, STB_GLOBAL, STT_NOTYPE, SHN_ABS}};
	struct fx_spec s = {.vaddr = 0xffffffff80200000ull, .paddr = 0x200000, .entry = 0xffffffff80200000ull,
			    .notes = notes, .nnotes = 5, .syms = syms, .nsyms = 4};
	size_t len;
	uint8_t *img = fx_build(&s, &len);
	uint8_t *m = malloc(len);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	int opened = 0;
	char path[256], shm[64];
	snprintf(shm, sizeof(shm), "/dev/shm/kbu-test-elf-%d.elf", (int)getpid());
	for (int round = 0; round < 1500; round++) {
		memcpy(m, img, len);
		int flips = 1 + round % 4;
		for (int f = 0; f < flips; f++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			size_t at = (size_t)(x % len);
			/* Half the time aim at the ELF header and the program headers. */
			if (x >> 63)
				at = (size_t)((x >> 8) % 0xb0);
			m[at] = (uint8_t)(x >> 24);
		}
		/* Memory-backed when possible: 1500 rewrites of one file on disk wait on I/O. */
		FILE *f = fopen(shm, "wb");
		if (f) {
			fwrite(m, 1, len, f);
			fclose(f);
			snprintf(path, sizeof(path), "%s", shm);
		} else {
			fx_write("mutant.elf", m, len, path, sizeof(path));
		}
		struct kbu_err err = {0};
		struct kbu_elf *e = kbu_elf_open(path, &err);
		if (!e) {
			CHECK(err.msg[0] != 0);
			continue;
		}
		opened++;
		for (size_t i = 0; i < kbu_elf_nsegments(e); i++)
			(void)kbu_elf_segment(e, i)->vaddr;
		for (size_t i = 0; i < kbu_elf_nsections(e); i++)
			(void)strlen(kbu_elf_section(e, i)->name);
		for (size_t i = 0; i < kbu_elf_nnotes(e); i++) {
			struct kbu_note_value v;
			kbu_note_decode(kbu_elf_note(e, i), &v);
			CHECK(strlen(v.text) < sizeof(v.text));
		}
		uint64_t pvh;
		(void)kbu_xen_pvh_entry(e, &pvh, &err);
		(void)kbu_elf_vaddr_bytes(e, 0xffffffff80200000ull, 16);
		struct kbu_symtab *st = kbu_symtab_new();
		if (kbu_symtab_load_elf(st, e, &err) == 0 && kbu_symtab_finish(st, &err) == 0) {
			char buf[64];
			for (size_t i = 0; i < kbu_symtab_count(st); i++) {
				const struct kbu_sym *y = kbu_symtab_at(st, i);
				CHECK(kbu_sym_by_name(st, y->name) != NULL);
				kbu_sym_format(st, y->addr + 1, buf, sizeof(buf));
			}
		}
		kbu_symtab_free(st);
		kbu_elf_close(e);
	}
	unlink(shm);
	CHECK(opened > 100); /* the mutations must not all be rejected at the door */
	free(m);
	free(img);
}

int main(void)
{
	RUN(mutated_images_never_crash);
	RUN(opens_a_kernel_and_reads_its_headers);
	RUN(notes_come_from_sections_when_there_is_no_pt_note);
	RUN(bad_files_give_one_clear_error);
	RUN(lying_note_sizes_stop_the_parse_with_a_problem);
	fx_cleanup();
	CHECK_DONE("test_elf");
}
