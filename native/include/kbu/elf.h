/* kbu: a kernel ELF image (libelf): segments, sections, notes, file bytes. */
#ifndef KBU_ELF_H
#define KBU_ELF_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_elf;

struct kbu_segment {
	uint32_t type;    /* p_type */
	uint32_t flags;   /* p_flags (PF_R/W/X) */
	uint64_t offset;  /* p_offset */
	uint64_t vaddr;   /* link address */
	uint64_t paddr;   /* load address */
	uint64_t filesz, memsz, align;
};

struct kbu_section {
	const char *name;
	uint32_t type;
	uint64_t flags, addr, offset, size;
};

struct kbu_note {
	const char *owner;   /* e.g. "Xen", "GNU", "CORE", "QEMU" */
	uint32_t type;
	const uint8_t *desc; /* points into the mapped file */
	size_t descsz;
	uint64_t file_offset; /* offset of the note header in the file */
};

struct kbu_elf *kbu_elf_open(const char *path, struct kbu_err *err);
void kbu_elf_close(struct kbu_elf *e);
const char *kbu_elf_path(const struct kbu_elf *e);
int kbu_elf_class(const struct kbu_elf *e);     /* 32 or 64 */
int kbu_elf_machine(const struct kbu_elf *e);   /* e_machine */
int kbu_elf_type(const struct kbu_elf *e);      /* e_type (ET_EXEC, ET_CORE, ...) */
int kbu_elf_osabi(const struct kbu_elf *e);
uint64_t kbu_elf_entry(const struct kbu_elf *e);
/* The whole file, mapped read-only. */
const uint8_t *kbu_elf_bytes(const struct kbu_elf *e, size_t *len);

size_t kbu_elf_nsegments(const struct kbu_elf *e);
const struct kbu_segment *kbu_elf_segment(const struct kbu_elf *e, size_t i);
size_t kbu_elf_nsections(const struct kbu_elf *e);
const struct kbu_section *kbu_elf_section(const struct kbu_elf *e, size_t i);
const struct kbu_section *kbu_elf_section_by_name(const struct kbu_elf *e, const char *name);

/* Every note from PT_NOTE segments (or SHT_NOTE sections if there are none). */
size_t kbu_elf_nnotes(const struct kbu_elf *e);
const struct kbu_note *kbu_elf_note(const struct kbu_elf *e, size_t i);
/* NULL, or why the note area could not be read to its end (a note whose sizes
 * run past it): the notes before that point are still listed. */
const char *kbu_elf_notes_problem(const struct kbu_elf *e);

/* Link (virtual) <-> load (physical) address through the PT_LOAD that holds
 * it (within memsz): 0, or -1 when no segment does. */
int kbu_elf_paddr_to_vaddr(const struct kbu_elf *e, uint64_t paddr, uint64_t *vaddr);
int kbu_elf_vaddr_to_paddr(const struct kbu_elf *e, uint64_t vaddr, uint64_t *paddr);

/* File bytes backing a link (virtual) address range; NULL if not file-backed. */
const uint8_t *kbu_elf_vaddr_bytes(const struct kbu_elf *e, uint64_t vaddr, size_t len);

#ifdef __cplusplus
}
#endif
#endif
