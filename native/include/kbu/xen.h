/*
 * kbu: ELF notes decoded by name and value: every Xen note type (the PVH
 * entry is XEN_ELFNOTE_PHYS32_ENTRY), and the simple GNU, Linux, FreeBSD and
 * NetBSD ones. Unknown notes are shown raw.
 */
#ifndef KBU_XEN_H
#define KBU_XEN_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_elf;
struct kbu_note;

/* Xen's public/elfnote.h numbers. */
enum kbu_xen_elfnote {
	KBU_XEN_ELFNOTE_INFO = 0,
	KBU_XEN_ELFNOTE_ENTRY = 1,
	KBU_XEN_ELFNOTE_HYPERCALL_PAGE = 2,
	KBU_XEN_ELFNOTE_VIRT_BASE = 3,
	KBU_XEN_ELFNOTE_PADDR_OFFSET = 4,
	KBU_XEN_ELFNOTE_XEN_VERSION = 5,
	KBU_XEN_ELFNOTE_GUEST_OS = 6,
	KBU_XEN_ELFNOTE_GUEST_VERSION = 7,
	KBU_XEN_ELFNOTE_LOADER = 8,
	KBU_XEN_ELFNOTE_PAE_MODE = 9,
	KBU_XEN_ELFNOTE_FEATURES = 10,
	KBU_XEN_ELFNOTE_BSD_SYMTAB = 11,
	KBU_XEN_ELFNOTE_HV_START_LOW = 12,
	KBU_XEN_ELFNOTE_L1_MFN_VALID = 13,
	KBU_XEN_ELFNOTE_SUSPEND_CANCEL = 14,
	KBU_XEN_ELFNOTE_INIT_P2M = 15,
	KBU_XEN_ELFNOTE_MOD_START_PFN = 16,
	KBU_XEN_ELFNOTE_SUPPORTED_FEATURES = 17,
	KBU_XEN_ELFNOTE_PHYS32_ENTRY = 18,
	KBU_XEN_ELFNOTE_PHYS32_RELOC = 19,
};

/* How a note's value was read. */
enum kbu_note_kind {
	KBU_NOTE_RAW = 0,   /* unknown type or unusable size: bytes only */
	KBU_NOTE_STRING,    /* text */
	KBU_NOTE_NUMBER,    /* 4- or 8-byte number in num */
	KBU_NOTE_FEATURES,  /* Xen '|'-separated feature string */
	KBU_NOTE_BITMAP,    /* number whose bits are named in text */
	KBU_NOTE_PAIRS,     /* mask/value pairs (L1_MFN_VALID) or several numbers */
	KBU_NOTE_HEX,       /* an identifier shown as hex (build id) */
	KBU_NOTE_VERSION,   /* an OS/ABI version (num holds the raw value) */
};

struct kbu_note_value {
	const char *type_name; /* "PHYS32_ENTRY", "GNU_BUILD_ID"; NULL if unknown */
	int kind;              /* enum kbu_note_kind */
	uint64_t num;          /* NUMBER, BITMAP, VERSION */
	char text[512];        /* the value as a porter reads it ("0x1000850", "linux", ...) */
	char problem[256];     /* "" or what is wrong with this note (wrong size, no NUL, ...) */
};

/* Name of a Xen note type without the XEN_ELFNOTE_ prefix, or NULL. */
const char *kbu_xen_note_name(uint32_t type);
/* Decodes one note (any owner). Never fails: unknown notes come back RAW. */
void kbu_note_decode(const struct kbu_note *n, struct kbu_note_value *out);
/* Reads a Xen numeric note (4 or 8 bytes, little-endian). 0, or -1 with err. */
int kbu_xen_note_number(const struct kbu_note *n, uint64_t *out, struct kbu_err *err);
/* The PVH entry (XEN_ELFNOTE_PHYS32_ENTRY) of an image: 0 found, -1 with err
 * (KBU_ENOTFOUND when the image has no such note). */
int kbu_xen_pvh_entry(const struct kbu_elf *e, uint64_t *entry, struct kbu_err *err);

/*
 * The image a command works on: the positional path if given (opened here,
 * with its own symbols when it has any), else the context's --kernel. Symbols
 * are the context's when present (they may add a System.map).
 */
struct kbu_ctx;
struct kbu_symtab;
struct kbu_image {
	struct kbu_elf *elf;
	const struct kbu_symtab *syms; /* NULL or empty: no symbols */
	struct kbu_elf *own_elf;
	struct kbu_symtab *own_syms;
};
int kbu_image_get(struct kbu_ctx *ctx, const char *path, struct kbu_image *img,
		  struct kbu_err *err);
/* For a command whose only argument is an optional ELF path: parses argv
 * (no options, at most one path) and gets the image as kbu_image_get does. */
int kbu_image_from_args(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_image *img,
			struct kbu_err *err);
void kbu_image_put(struct kbu_image *img);
/* "name+0xoff" for a link address, "" when no symbol spans or precedes it closely. */
const char *kbu_image_symbol(const struct kbu_image *img, uint64_t vaddr, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
