/*
 * Small ELF64 x86-64 kernels written byte by byte for the ELF, notes and
 * symbol tests: one PT_LOAD (.text) at a chosen link/load address, an
 * optional PT_NOTE with the given notes (or raw note bytes that may lie), and
 * an optional .symtab (or .dynsym). Everything is built here, so every test
 * knows exactly what the file holds.
 */
#ifndef KBU_TEST_ELF_FIXTURE_H
#define KBU_TEST_ELF_FIXTURE_H

#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fx_note {
	const char *owner;
	uint32_t type;
	const void *desc;
	uint32_t descsz;
};

struct fx_sym {
	const char *name;
	uint64_t value, size;
	int bind;  /* STB_* */
	int type;  /* STT_* */
	int shndx; /* 1: .text, 0: undefined, SHN_ABS */
};

struct fx_spec {
	uint64_t vaddr, paddr, entry;
	const struct fx_note *notes;
	int nnotes;
	const uint8_t *raw_notes; /* used instead of notes when set */
	size_t raw_notes_len;
	int notes_as_section_only; /* SHT_NOTE section, no PT_NOTE segment */
	const struct fx_sym *syms;
	int nsyms;
	int dynsym; /* symbols in .dynsym instead of .symtab */
	uint8_t osabi;
};

struct fx_buf {
	uint8_t *p;
	size_t len, cap;
};

static inline void fx_put(struct fx_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 256;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static inline void fx_align(struct fx_buf *b, size_t a)
{
	static const uint8_t z[16];
	while (b->len % a)
		fx_put(b, z, 1);
}

static inline void fx_notes(struct fx_buf *b, const struct fx_note *notes, int n)
{
	for (int i = 0; i < n; i++) {
		uint32_t h[3] = {(uint32_t)strlen(notes[i].owner) + 1, notes[i].descsz, notes[i].type};
		fx_put(b, h, sizeof(h));
		fx_put(b, notes[i].owner, h[0]);
		fx_align(b, 4);
		fx_put(b, notes[i].desc, notes[i].descsz);
		fx_align(b, 4);
	}
}

/* Builds the image into a malloc'd buffer; *len gets its size. */
static inline uint8_t *fx_build(const struct fx_spec *s, size_t *len)
{
	struct fx_buf b = {0};
	Elf64_Ehdr eh;
	memset(&eh, 0, sizeof(eh));
	fx_put(&b, &eh, sizeof(eh));
	int has_notes = s->nnotes || s->raw_notes;
	int nph = 1 + (has_notes && !s->notes_as_section_only);
	size_t phoff = b.len;
	Elf64_Phdr ph[2];
	memset(ph, 0, sizeof(ph));
	fx_put(&b, ph, sizeof(ph[0]) * (size_t)nph);
	fx_align(&b, 0x100);
	size_t text_off = b.len;
	uint8_t code[0x100];
	for (size_t i = 0; i < sizeof(code); i++)
		code[i] = (uint8_t)i;
	fx_put(&b, code, sizeof(code));
	size_t note_off = b.len, note_len = 0;
	if (s->raw_notes)
		fx_put(&b, s->raw_notes, s->raw_notes_len);
	else
		fx_notes(&b, s->notes, s->nnotes);
	note_len = b.len - note_off;
	fx_align(&b, 8);
	/* Symbols and their strings. */
	size_t sym_off = b.len, str_off, str_len = 0;
	struct fx_buf strs = {0};
	fx_put(&strs, "", 1);
	if (s->nsyms) {
		Elf64_Sym z;
		memset(&z, 0, sizeof(z));
		fx_put(&b, &z, sizeof(z));
		for (int i = 0; i < s->nsyms; i++) {
			Elf64_Sym y;
			memset(&y, 0, sizeof(y));
			y.st_name = (uint32_t)strs.len;
			fx_put(&strs, s->syms[i].name, strlen(s->syms[i].name) + 1);
			y.st_info = (unsigned char)ELF64_ST_INFO(s->syms[i].bind, s->syms[i].type);
			y.st_shndx = (uint16_t)s->syms[i].shndx;
			y.st_value = s->syms[i].value;
			y.st_size = s->syms[i].size;
			fx_put(&b, &y, sizeof(y));
		}
	}
	size_t sym_len = b.len - sym_off;
	str_off = b.len;
	fx_put(&b, strs.p, strs.len);
	str_len = strs.len;
	free(strs.p);
	static const char shstr[] = "\0.text\0.note\0.symtab\0.strtab\0.shstrtab\0.dynsym\0.dynstr";
	size_t shstr_off = b.len;
	fx_put(&b, shstr, sizeof(shstr));
	fx_align(&b, 8);
	size_t shoff = b.len;
	Elf64_Shdr sh[6];
	memset(sh, 0, sizeof(sh));
	int nsh = 1;
	sh[nsh].sh_name = 1; /* .text */
	sh[nsh].sh_type = SHT_PROGBITS;
	sh[nsh].sh_flags = SHF_ALLOC | SHF_EXECINSTR;
	sh[nsh].sh_addr = s->vaddr;
	sh[nsh].sh_offset = text_off;
	sh[nsh].sh_size = 0x100;
	nsh++;
	if (has_notes) {
		sh[nsh].sh_name = 7; /* .note */
		sh[nsh].sh_type = SHT_NOTE;
		sh[nsh].sh_flags = SHF_ALLOC;
		sh[nsh].sh_offset = note_off;
		sh[nsh].sh_size = note_len;
		sh[nsh].sh_addralign = 4;
		nsh++;
	}
	int strndx = s->nsyms ? nsh + 1 : 0;
	if (s->nsyms) {
		sh[nsh].sh_name = s->dynsym ? 39 : 13; /* .dynsym / .symtab */
		sh[nsh].sh_type = s->dynsym ? SHT_DYNSYM : SHT_SYMTAB;
		sh[nsh].sh_offset = sym_off;
		sh[nsh].sh_size = sym_len;
		sh[nsh].sh_link = (uint32_t)strndx;
		sh[nsh].sh_entsize = sizeof(Elf64_Sym);
		sh[nsh].sh_addralign = 8;
		nsh++;
		sh[nsh].sh_name = s->dynsym ? 47 : 21; /* .dynstr / .strtab */
		sh[nsh].sh_type = SHT_STRTAB;
		sh[nsh].sh_offset = str_off;
		sh[nsh].sh_size = str_len;
		nsh++;
	}
	int shstrndx = nsh;
	sh[nsh].sh_name = 29; /* .shstrtab */
	sh[nsh].sh_type = SHT_STRTAB;
	sh[nsh].sh_offset = shstr_off;
	sh[nsh].sh_size = sizeof(shstr);
	nsh++;
	fx_put(&b, sh, sizeof(sh[0]) * (size_t)nsh);

	Elf64_Ehdr *e = (Elf64_Ehdr *)b.p;
	memcpy(e->e_ident, ELFMAG, SELFMAG);
	e->e_ident[EI_CLASS] = ELFCLASS64;
	e->e_ident[EI_DATA] = ELFDATA2LSB;
	e->e_ident[EI_VERSION] = EV_CURRENT;
	e->e_ident[EI_OSABI] = s->osabi;
	e->e_type = ET_EXEC;
	e->e_machine = EM_X86_64;
	e->e_version = EV_CURRENT;
	e->e_entry = s->entry;
	e->e_phoff = phoff;
	e->e_shoff = shoff;
	e->e_ehsize = sizeof(Elf64_Ehdr);
	e->e_phentsize = sizeof(Elf64_Phdr);
	e->e_phnum = (uint16_t)nph;
	e->e_shentsize = sizeof(Elf64_Shdr);
	e->e_shnum = (uint16_t)nsh;
	e->e_shstrndx = (uint16_t)shstrndx;
	Elf64_Phdr *p = (Elf64_Phdr *)(b.p + phoff);
	p[0].p_type = PT_LOAD;
	p[0].p_flags = PF_R | PF_X;
	p[0].p_offset = text_off;
	p[0].p_vaddr = s->vaddr;
	p[0].p_paddr = s->paddr;
	p[0].p_filesz = 0x100;
	p[0].p_memsz = 0x1000;
	p[0].p_align = 0x100;
	if (nph > 1) {
		p[1].p_type = PT_NOTE;
		p[1].p_flags = PF_R;
		p[1].p_offset = note_off;
		p[1].p_filesz = note_len;
		p[1].p_memsz = note_len;
		p[1].p_align = 4;
	}
	*len = b.len;
	return b.p;
}

/* A fresh directory for one test binary's files. */
static inline const char *fx_dir(void)
{
	static char dir[64];
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/kbu-test-XXXXXX");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			exit(2);
		}
	}
	return dir;
}

/* Writes bytes to a file in the test directory; returns its path (static buffer per name). */
static inline const char *fx_write(const char *name, const void *p, size_t n, char *path, size_t plen)
{
	snprintf(path, plen, "%s/%s", fx_dir(), name);
	FILE *f = fopen(path, "wb");
	if (!f || (n && fwrite(p, 1, n, f) != n)) {
		perror(path);
		exit(2);
	}
	fclose(f);
	return path;
}

static inline void fx_cleanup(void)
{
	char cmd[128];
	if (fx_dir()[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx_dir());
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", fx_dir());
	}
}

#endif
