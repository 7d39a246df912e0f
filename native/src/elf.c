/*
 * kbu: a kernel ELF image. The file is mapped read-only; every table the
 * headers point at is checked against the file size before libelf reads it,
 * so a truncated or lying file gives one error instead of a crash.
 */
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kbu/elf.h"
#include "kbu/util.h"

struct kbu_elf {
	char *path;
	const uint8_t *map;
	size_t len;
	Elf *elf;
	int eclass, machine, etype, osabi;
	uint64_t entry;
	struct kbu_segment *segs;
	size_t nsegs;
	struct kbu_section *secs;
	size_t nsecs;
	char *secnames;      /* copies of section names, NUL-separated */
	struct kbu_note *notes;
	size_t nnotes, notes_cap;
	char *owners;        /* copies of note owners, NUL-separated */
	size_t owners_len, owners_cap;
	char notes_problem[256];
};

static uint32_t rd32(const uint8_t *p, int big)
{
	return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
		   : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint64_t rd_word(const uint8_t *p, int is64, int big)
{
	if (!is64)
		return rd32(p, big);
	uint64_t lo = rd32(p + (big ? 4 : 0), big), hi = rd32(p + (big ? 0 : 4), big);
	return hi << 32 | lo;
}

static uint16_t rd16(const uint8_t *p, int big)
{
	return big ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

/* [off, off+size) lies inside a file of len bytes (overflow-safe). */
static int in_file(uint64_t off, uint64_t size, size_t len)
{
	return off <= len && size <= len - off;
}

/*
 * Checks the ELF header and the program/section header tables against the
 * file size with our own reads, before libelf trusts them.
 */
static int check_headers(const char *path, const uint8_t *b, size_t len, struct kbu_err *err)
{
	if (len < EI_NIDENT || memcmp(b, ELFMAG, SELFMAG) != 0) {
		char got[3 * 4 + 1] = "";
		for (size_t i = 0; i < 4 && i < len; i++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), i ? " %02x" : "%02x", b[i]);
		return kbu_err_set(err, KBU_EFORMAT,
				   "%s: not an ELF file (starts with %s; an ELF starts with 7f 45 4c 46)",
				   path, len ? got : "nothing");
	}
	int is64 = b[EI_CLASS] == ELFCLASS64;
	if (b[EI_CLASS] != ELFCLASS32 && !is64)
		return kbu_err_set(err, KBU_EFORMAT, "%s: ELF class %u is neither 32- nor 64-bit",
				   path, b[EI_CLASS]);
	if (b[EI_DATA] != ELFDATA2LSB && b[EI_DATA] != ELFDATA2MSB)
		return kbu_err_set(err, KBU_EFORMAT, "%s: ELF data encoding %u is unknown", path,
				   b[EI_DATA]);
	int big = b[EI_DATA] == ELFDATA2MSB;
	size_t ehsize = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	if (len < ehsize)
		return kbu_err_set(err, KBU_EFORMAT,
				   "%s: truncated ELF header (%zu bytes, an ELF%d header needs %zu)",
				   path, len, is64 ? 64 : 32, ehsize);
	size_t w = is64 ? 8 : 4;
	/* e_phoff follows e_entry; offsets per the ELF spec layout. */
	size_t o_phoff = 24 + w, o_shoff = 24 + 2 * w, o_rest = 24 + 3 * w + 4;
	uint64_t phoff = rd_word(b + o_phoff, is64, big);
	uint64_t shoff = rd_word(b + o_shoff, is64, big);
	uint16_t phentsize = rd16(b + o_rest + 2, big), phnum = rd16(b + o_rest + 4, big);
	uint16_t shentsize = rd16(b + o_rest + 6, big), shnum = rd16(b + o_rest + 8, big);
	size_t want_ph = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	size_t want_sh = is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
	if (phnum) {
		if (phentsize != want_ph)
			return kbu_err_set(err, KBU_EFORMAT,
					   "%s: program header entry size %u, expected %zu", path,
					   phentsize, want_ph);
		if (!in_file(phoff, (uint64_t)phnum * phentsize, len))
			return kbu_err_set(err, KBU_EFORMAT,
					   "%s: program header table at 0x%llx (%u entries of %u bytes) "
					   "runs past the end of the file (0x%zx bytes): truncated?",
					   path, (unsigned long long)phoff, phnum, phentsize, len);
	}
	if (shoff) {
		if (shentsize != want_sh)
			return kbu_err_set(err, KBU_EFORMAT,
					   "%s: section header entry size %u, expected %zu", path,
					   shentsize, want_sh);
		/* shnum 0 with shoff set: the real count is in section 0's sh_size. */
		uint64_t n = shnum ? shnum : 1;
		if (!in_file(shoff, n * shentsize, len))
			return kbu_err_set(err, KBU_EFORMAT,
					   "%s: section header table at 0x%llx (%llu entries of %u bytes) "
					   "runs past the end of the file (0x%zx bytes): truncated?",
					   path, (unsigned long long)shoff, (unsigned long long)n,
					   shentsize, len);
		if (!shnum) {
			const uint8_t *s0 = b + shoff;
			uint64_t real = rd_word(s0 + (is64 ? 32 : 20), is64, big);
			if (!in_file(shoff, real * shentsize, len) || real > len)
				return kbu_err_set(err, KBU_EFORMAT,
						   "%s: extended section count %llu at 0x%llx runs past "
						   "the end of the file (0x%zx bytes)",
						   path, (unsigned long long)real,
						   (unsigned long long)shoff, len);
		}
	}
	return 0;
}

static const char *owner_intern(struct kbu_elf *e, const char *s, size_t n, size_t *out_off)
{
	if (e->owners_len + n + 1 > e->owners_cap) {
		size_t cap = e->owners_cap ? e->owners_cap * 2 : 256;
		while (cap < e->owners_len + n + 1)
			cap *= 2;
		char *p = realloc(e->owners, cap);
		if (!p)
			return NULL;
		e->owners = p;
		e->owners_cap = cap;
	}
	memcpy(e->owners + e->owners_len, s, n);
	e->owners[e->owners_len + n] = 0;
	*out_off = e->owners_len;
	e->owners_len += n + 1;
	return e->owners;
}

/*
 * Parses the notes in file bytes [off, off+size). align is 4 or 8 (the
 * padding of name and desc). A note whose sizes run past the area stops the
 * parse and is recorded in notes_problem; the notes before it are kept.
 */
static int parse_notes(struct kbu_elf *e, uint64_t off, uint64_t size, uint64_t align,
		       const char *where, struct kbu_err *err)
{
	int big = e->map[EI_DATA] == ELFDATA2MSB;
	uint64_t pad = align == 8 ? 8 : 4;
	uint64_t pos = 0;
	while (pos < size) {
		uint64_t at = off + pos, left = size - pos;
		if (left < 12) {
			if (!e->notes_problem[0])
				snprintf(e->notes_problem, sizeof(e->notes_problem),
					 "%s: %llu stray bytes at file offset 0x%llx, too few for a "
					 "note header (12)",
					 where, (unsigned long long)left, (unsigned long long)at);
			break;
		}
		const uint8_t *h = e->map + at;
		uint32_t namesz = rd32(h, big), descsz = rd32(h + 4, big), type = rd32(h + 8, big);
		uint64_t name_span = ((uint64_t)namesz + pad - 1) & ~(pad - 1);
		uint64_t desc_span = ((uint64_t)descsz + pad - 1) & ~(pad - 1);
		if (12 + name_span > left || (uint64_t)descsz > left - 12 - name_span) {
			if (!e->notes_problem[0])
				snprintf(e->notes_problem, sizeof(e->notes_problem),
					 "%s: note at file offset 0x%llx (type %u) claims namesz %u and "
					 "descsz %u, past the end of its area (0x%llx bytes left)",
					 where, (unsigned long long)at, type, namesz, descsz,
					 (unsigned long long)(left - 12));
			break;
		}
		const char *name = (const char *)h + 12;
		size_t nlen = namesz ? strnlen(name, namesz) : 0;
		size_t owner_off;
		if (!owner_intern(e, name, nlen, &owner_off))
			return kbu_err_set(err, KBU_ENOMEM, "%s: out of memory for notes", e->path);
		if (e->nnotes == e->notes_cap) {
			size_t cap = e->notes_cap ? e->notes_cap * 2 : 16;
			struct kbu_note *p = realloc(e->notes, cap * sizeof(*p));
			if (!p)
				return kbu_err_set(err, KBU_ENOMEM, "%s: out of memory for notes",
						   e->path);
			e->notes = p;
			e->notes_cap = cap;
		}
		struct kbu_note *n = &e->notes[e->nnotes++];
		n->owner = (const char *)(uintptr_t)owner_off; /* fixed up when done */
		n->type = type;
		n->desc = h + 12 + name_span;
		n->descsz = descsz;
		n->file_offset = at;
		uint64_t step = 12 + name_span + desc_span;
		if (step > left)
			step = left; /* last note without trailing padding */
		pos += step;
	}
	return 0;
}

static int load_notes(struct kbu_elf *e, struct kbu_err *err)
{
	char where[64];
	int from_segments = 0;
	for (size_t i = 0; i < e->nsegs; i++) {
		const struct kbu_segment *s = &e->segs[i];
		if (s->type != PT_NOTE)
			continue;
		from_segments = 1;
		snprintf(where, sizeof(where), "PT_NOTE segment %zu", i);
		if (parse_notes(e, s->offset, s->filesz, s->align, where, err))
			return -1;
	}
	if (!from_segments) {
		for (size_t i = 0; i < e->nsecs; i++) {
			const struct kbu_section *s = &e->secs[i];
			if (s->type != SHT_NOTE)
				continue;
			snprintf(where, sizeof(where), "section %s", s->name);
			GElf_Shdr sh;
			Elf_Scn *scn = elf_getscn(e->elf, i);
			uint64_t align = scn && gelf_getshdr(scn, &sh) ? sh.sh_addralign : 4;
			if (parse_notes(e, s->offset, s->size, align, where, err))
				return -1;
		}
	}
	for (size_t i = 0; i < e->nnotes; i++)
		e->notes[i].owner = e->owners + (size_t)(uintptr_t)e->notes[i].owner;
	return 0;
}

static const char *ptype_name(uint32_t t)
{
	switch (t) {
	case PT_LOAD: return "PT_LOAD";
	case PT_NOTE: return "PT_NOTE";
	case PT_DYNAMIC: return "PT_DYNAMIC";
	case PT_INTERP: return "PT_INTERP";
	case PT_PHDR: return "PT_PHDR";
	case PT_TLS: return "PT_TLS";
	default: return "segment";
	}
}

static int load_segments(struct kbu_elf *e, struct kbu_err *err)
{
	size_t n;
	if (elf_getphdrnum(e->elf, &n) != 0)
		return kbu_err_set(err, KBU_EFORMAT, "%s: cannot read program headers: %s", e->path,
				   elf_errmsg(-1));
	if (!n)
		return 0;
	e->segs = calloc(n, sizeof(*e->segs));
	if (!e->segs)
		return kbu_err_set(err, KBU_ENOMEM, "%s: out of memory for %zu segments", e->path, n);
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e->elf, (int)i, &ph))
			return kbu_err_set(err, KBU_EFORMAT, "%s: program header %zu: %s", e->path,
					   i, elf_errmsg(-1));
		if (ph.p_filesz && !in_file(ph.p_offset, ph.p_filesz, e->len))
			return kbu_err_set(err, KBU_EFORMAT,
					   "%s: %s %zu (vaddr 0x%llx) file bytes 0x%llx-0x%llx run past "
					   "the end of the file (0x%zx bytes): truncated?",
					   e->path, ptype_name(ph.p_type), i,
					   (unsigned long long)ph.p_vaddr,
					   (unsigned long long)ph.p_offset,
					   (unsigned long long)(ph.p_offset + ph.p_filesz), e->len);
		struct kbu_segment *s = &e->segs[i];
		s->type = ph.p_type;
		s->flags = ph.p_flags;
		s->offset = ph.p_offset;
		s->vaddr = ph.p_vaddr;
		s->paddr = ph.p_paddr;
		s->filesz = ph.p_filesz;
		s->memsz = ph.p_memsz;
		s->align = ph.p_align;
	}
	e->nsegs = n;
	return 0;
}

static int load_sections(struct kbu_elf *e, struct kbu_err *err)
{
	size_t n, shstrndx;
	if (elf_getshdrnum(e->elf, &n) != 0)
		return kbu_err_set(err, KBU_EFORMAT, "%s: cannot read section headers: %s", e->path,
				   elf_errmsg(-1));
	if (!n)
		return 0;
	if (elf_getshdrstrndx(e->elf, &shstrndx) != 0)
		shstrndx = SHN_UNDEF;
	e->secs = calloc(n, sizeof(*e->secs));
	if (!e->secs)
		return kbu_err_set(err, KBU_ENOMEM, "%s: out of memory for %zu sections", e->path, n);
	/* Names are copied so a lying string table cannot leave a pointer dangling. */
	size_t cap = 0, used = 0;
	size_t *name_off = calloc(n, sizeof(*name_off));
	if (!name_off)
		return kbu_err_set(err, KBU_ENOMEM, "%s: out of memory", e->path);
	for (size_t i = 0; i < n; i++) {
		Elf_Scn *scn = elf_getscn(e->elf, i);
		GElf_Shdr sh;
		if (!scn || !gelf_getshdr(scn, &sh)) {
			free(name_off);
			return kbu_err_set(err, KBU_EFORMAT, "%s: section header %zu: %s", e->path,
					   i, elf_errmsg(-1));
		}
		if (sh.sh_type != SHT_NOBITS && sh.sh_size && !in_file(sh.sh_offset, sh.sh_size, e->len)) {
			free(name_off);
			return kbu_err_set(err, KBU_EFORMAT,
					   "%s: section %zu contents at 0x%llx (0x%llx bytes) run past "
					   "the end of the file (0x%zx bytes): truncated?",
					   e->path, i, (unsigned long long)sh.sh_offset,
					   (unsigned long long)sh.sh_size, e->len);
		}
		const char *nm = shstrndx != SHN_UNDEF ? elf_strptr(e->elf, shstrndx, sh.sh_name) : NULL;
		if (!nm)
			nm = "";
		size_t l = strlen(nm);
		if (used + l + 1 > cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			while (ncap < used + l + 1)
				ncap *= 2;
			char *p = realloc(e->secnames, ncap);
			if (!p) {
				free(name_off);
				return kbu_err_set(err, KBU_ENOMEM, "%s: out of memory", e->path);
			}
			e->secnames = p;
			cap = ncap;
		}
		memcpy(e->secnames + used, nm, l + 1);
		name_off[i] = used;
		used += l + 1;
		struct kbu_section *s = &e->secs[i];
		s->type = sh.sh_type;
		s->flags = sh.sh_flags;
		s->addr = sh.sh_addr;
		s->offset = sh.sh_offset;
		s->size = sh.sh_size;
	}
	for (size_t i = 0; i < n; i++)
		e->secs[i].name = e->secnames + name_off[i];
	free(name_off);
	e->nsecs = n;
	return 0;
}

struct kbu_elf *kbu_elf_open(const char *path, struct kbu_err *err)
{
	static const struct kbu_map_words words = {
		.open = "cannot open", .stat = "cannot stat",
		.dir = "is a directory, not an ELF file", .notreg = "not a regular file",
		.empty = "empty file (0 bytes), not an ELF file",
		.map = "cannot map", .map_says_size = 1, .enoent_notfound = 1,
	};
	void *map;
	size_t len;
	/* Private and writable: should libelf ever convert in place, the file is untouched. */
	if (kbu_map_file(path, 1, &words, &map, &len, err) < 0)
		return NULL;
	struct kbu_elf *e = calloc(1, sizeof(*e));
	if (!e || !(e->path = strdup(path))) {
		free(e);
		munmap(map, len);
		kbu_err_set(err, KBU_ENOMEM, "%s: out of memory", path);
		return NULL;
	}
	e->map = map;
	e->len = len;
	if (check_headers(path, e->map, len, err))
		goto fail;
	elf_version(EV_CURRENT);
	/* libelf only reads the image; the cast drops const for its signature. */
	e->elf = elf_memory((char *)(uintptr_t)e->map, len);
	if (!e->elf || elf_kind(e->elf) != ELF_K_ELF) {
		kbu_err_set(err, KBU_EFORMAT, "%s: libelf cannot read it: %s", path, elf_errmsg(-1));
		goto fail;
	}
	GElf_Ehdr eh;
	if (!gelf_getehdr(e->elf, &eh)) {
		kbu_err_set(err, KBU_EFORMAT, "%s: bad ELF header: %s", path, elf_errmsg(-1));
		goto fail;
	}
	e->eclass = e->map[EI_CLASS] == ELFCLASS64 ? 64 : 32;
	e->machine = eh.e_machine;
	e->etype = eh.e_type;
	e->osabi = eh.e_ident[EI_OSABI];
	e->entry = eh.e_entry;
	if (load_segments(e, err) || load_sections(e, err) || load_notes(e, err))
		goto fail;
	return e;
fail:
	kbu_elf_close(e);
	return NULL;
}

void kbu_elf_close(struct kbu_elf *e)
{
	if (!e)
		return;
	if (e->elf)
		elf_end(e->elf);
	if (e->map)
		munmap((void *)(uintptr_t)e->map, e->len);
	free(e->segs);
	free(e->secs);
	free(e->secnames);
	free(e->notes);
	free(e->owners);
	free(e->path);
	free(e);
}

const char *kbu_elf_path(const struct kbu_elf *e) { return e->path; }
int kbu_elf_class(const struct kbu_elf *e) { return e->eclass; }
int kbu_elf_machine(const struct kbu_elf *e) { return e->machine; }
int kbu_elf_type(const struct kbu_elf *e) { return e->etype; }
int kbu_elf_osabi(const struct kbu_elf *e) { return e->osabi; }
uint64_t kbu_elf_entry(const struct kbu_elf *e) { return e->entry; }

const uint8_t *kbu_elf_bytes(const struct kbu_elf *e, size_t *len)
{
	if (len)
		*len = e->len;
	return e->map;
}

size_t kbu_elf_nsegments(const struct kbu_elf *e) { return e->nsegs; }

const struct kbu_segment *kbu_elf_segment(const struct kbu_elf *e, size_t i)
{
	return i < e->nsegs ? &e->segs[i] : NULL;
}

size_t kbu_elf_nsections(const struct kbu_elf *e) { return e->nsecs; }

const struct kbu_section *kbu_elf_section(const struct kbu_elf *e, size_t i)
{
	return i < e->nsecs ? &e->secs[i] : NULL;
}

const struct kbu_section *kbu_elf_section_by_name(const struct kbu_elf *e, const char *name)
{
	for (size_t i = 0; i < e->nsecs; i++)
		if (strcmp(e->secs[i].name, name) == 0)
			return &e->secs[i];
	return NULL;
}

size_t kbu_elf_nnotes(const struct kbu_elf *e) { return e->nnotes; }

const struct kbu_note *kbu_elf_note(const struct kbu_elf *e, size_t i)
{
	return i < e->nnotes ? &e->notes[i] : NULL;
}

const char *kbu_elf_notes_problem(const struct kbu_elf *e)
{
	return e->notes_problem[0] ? e->notes_problem : NULL;
}

const uint8_t *kbu_elf_vaddr_bytes(const struct kbu_elf *e, uint64_t vaddr, size_t len)
{
	for (size_t i = 0; i < e->nsegs; i++) {
		const struct kbu_segment *s = &e->segs[i];
		if (s->type != PT_LOAD || vaddr < s->vaddr)
			continue;
		uint64_t rel = vaddr - s->vaddr;
		if (rel >= s->filesz || len > s->filesz - rel)
			continue;
		return e->map + s->offset + rel;
	}
	return NULL;
}

int kbu_elf_paddr_to_vaddr(const struct kbu_elf *e, uint64_t paddr, uint64_t *vaddr)
{
	for (size_t i = 0; i < e->nsegs; i++) {
		const struct kbu_segment *s = &e->segs[i];
		if (s->type == PT_LOAD && paddr >= s->paddr && paddr - s->paddr < s->memsz) {
			*vaddr = s->vaddr + (paddr - s->paddr);
			return 0;
		}
	}
	return -1;
}

int kbu_elf_vaddr_to_paddr(const struct kbu_elf *e, uint64_t vaddr, uint64_t *paddr)
{
	for (size_t i = 0; i < e->nsegs; i++) {
		const struct kbu_segment *s = &e->segs[i];
		if (s->type == PT_LOAD && vaddr >= s->vaddr && vaddr - s->vaddr < s->memsz) {
			*paddr = s->paddr + (vaddr - s->vaddr);
			return 0;
		}
	}
	return -1;
}

/* The libelf handle, for the symbol loader in this library. */
Elf *kbu_elf_libelf(const struct kbu_elf *e);
Elf *kbu_elf_libelf(const struct kbu_elf *e) { return e->elf; }
