/*
 * kbu OS profiles: which kernel symbol plays which role (x2APIC flag, active
 * time source, assertion/panic entries, message buffer, start info, CPU count)
 * and the known layouts of the structures behind them.
 *
 * A profile is INI text with the same keys for every OS: the built-in ones
 * (freebsd, netbsd, linux; identical to the files in profiles/) and any file a user
 * writes for another kernel. Code that uses a profile asks for roles and
 * layout fields by their generic key and never for an OS by name.
 *
 *   [profile]  name, description, and what identifies the OS: elf_osabi
 *              (EI_OSABI number), xen_guest_os (the Xen GUEST_OS note),
 *              note_owner (owner of the OS's own ELF notes), markers (names
 *              only this OS has)
 *   [roles]    x2apic, x2apic_type (int|bool), timesource, timesource_pointer,
 *              time_register, asserts, printf_entries, vprintf_entries,
 *              msgbuf, msgbuf_pointer, msgbuf_format (freebsd|netbsd|linux-prb),
 *              start_info, start_info_kind (pointer|paddr|struct), ncpus,
 *              panicstr, tsc_freq (+ _size in bytes, _unit in Hz), idle,
 *              timesource_placeholders (names), mp_parser, mp_parser_option
 *              (the build option that brings it), mp_table (the kernel's
 *              pointer to the MP config table it walks), devices_cmdline and
 *              devices_acpi (the code that finds virtio-mmio devices on the
 *              command line and in ACPI)
 *   [layout.X] field = "OFFSET SIZE [C-NAME]", struct = C struct name
 */
#ifndef KBU_OS_H
#define KBU_OS_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_symtab;
struct kbu_os_profile;

struct kbu_os_field {
	uint64_t offset;
	uint32_t size;     /* bytes; 0 for arrays and whole-struct sizes */
	const char *cname; /* the field's name in the kernel's source ("" if not given) */
};

/* Parses profile text; origin names it in error messages ("FILE:LINE: ..."). */
struct kbu_os_profile *kbu_os_parse(const char *text, const char *origin, struct kbu_err *err);
struct kbu_os_profile *kbu_os_load_file(const char *path, struct kbu_err *err);
/* A built-in profile by name ("freebsd", "netbsd", "linux"). */
struct kbu_os_profile *kbu_os_builtin(const char *name, struct kbu_err *err);
void kbu_os_free(struct kbu_os_profile *p);

size_t kbu_os_builtin_count(void);
const char *kbu_os_builtin_name(size_t i);
/* The INI text of a built-in profile (NULL if i is out of range). */
const char *kbu_os_builtin_text(size_t i);

const char *kbu_os_name(const struct kbu_os_profile *p);
const char *kbu_os_origin(const struct kbu_os_profile *p); /* "built-in" or the file path */

/* Raw value of [section] key, NULL if absent. */
const char *kbu_os_get(const struct kbu_os_profile *p, const char *section, const char *key);
/* [roles] key; NULL if absent or empty. */
const char *kbu_os_role(const struct kbu_os_profile *p, const char *role);
/* [roles] key as a number (decimal or 0x hex); def if absent. */
uint64_t kbu_os_role_num(const struct kbu_os_profile *p, const char *role, uint64_t def);
/* The i-th whitespace-separated word of a [roles] list; NULL past the end. */
const char *kbu_os_role_word(const struct kbu_os_profile *p, const char *role, size_t i,
			     char *buf, size_t len);
/* 1 if name is one of the words of a [roles] list. */
int kbu_os_role_has(const struct kbu_os_profile *p, const char *role, const char *name);
/* [layout.LAYOUT] FIELD; -1 with KBU_ENOTFOUND/KBU_EFORMAT naming the profile. */
int kbu_os_field(const struct kbu_os_profile *p, const char *layout, const char *field,
		 struct kbu_os_field *out, struct kbu_err *err);
/* [layout.LAYOUT] KEY as a number (e.g. magic_value); -1 if absent or bad. */
int kbu_os_layout_num(const struct kbu_os_profile *p, const char *layout, const char *key,
		      uint64_t *out, struct kbu_err *err);

/*
 * Identification: which built-in profile fits a kernel. One symbol never
 * decides (FreeBSD has a local text symbol start_kernel). Weighed are:
 *  - identity evidence, when the ELF is at hand: its EI_OSABI ([profile]
 *    elf_osabi), the Xen GUEST_OS note (xen_guest_os) and the owners of its
 *    other notes (note_owner);
 *  - the profile's roles: how many of its symbol roles resolve in the
 *    symbols (a role resolves when any of its words is a symbol);
 *  - markers: names only that OS has ([profile] markers), a tie-breaker.
 * A profile fits when at least 3 and at least half of its roles resolve. A
 * profile that identity evidence names wins when it fits, when none fits or
 * when there are no symbols to check; otherwise the fitting profile with the
 * most roles resolved (as a fraction) wins, markers breaking a tie. Two
 * candidates still tied: ambiguous, ask for --os.
 */
struct kbu_elf;

struct kbu_os_evidence {
	const struct kbu_symtab *syms; /* NULL: none */
	const struct kbu_elf *elf;     /* NULL: no ELF (a symbol map only) */
};

enum kbu_os_named_by {
	KBU_OS_BY_OSABI = 1,    /* the ELF's EI_OSABI */
	KBU_OS_BY_GUEST_OS = 2, /* the Xen GUEST_OS note */
	KBU_OS_BY_NOTE = 4,     /* a note owned by the OS ("Linux", "FreeBSD", "NetBSD") */
};

#define KBU_OS_MAX_CANDIDATES 8

struct kbu_os_candidate {
	char name[32];
	unsigned roles_named, roles_resolved;
	char missing[256];  /* roles that did not resolve, "start_info, ncpus" */
	unsigned markers_named, markers_found;
	unsigned named_by;  /* enum kbu_os_named_by bits */
	int fits;           /* at least 3 and half of its roles resolve */
};

struct kbu_os_ident {
	int osabi;             /* EI_OSABI, -1 without an ELF */
	char guest_os[64];     /* the Xen GUEST_OS note, "" if none */
	char note_owners[128]; /* owners of the ELF's notes other than Xen/GNU, space separated */
	int has_syms;          /* symbols were weighed (a map is not counted for it) */
	size_t ncand;
	struct kbu_os_candidate cand[KBU_OS_MAX_CANDIDATES];
	int chosen;            /* index into cand, -1 if none */
	char how[320];         /* how the choice was made, one line */
};

/* The i-th role whose words are kernel symbols (NULL past the end); *weighed
 * (if not NULL) says whether identification counts it. */
const char *kbu_os_symbol_role(size_t i, int *weighed);

/* Weighs every built-in profile. Fills id (also when it fails, for a report);
 * returns the chosen profile, or NULL with KBU_ENOTFOUND (none fits: the
 * message says what was checked) or KBU_EINVAL (two fit: give --os). */
struct kbu_os_profile *kbu_os_identify(const struct kbu_os_evidence *ev,
				       struct kbu_os_ident *id, struct kbu_err *err);
/* Scores one profile against the evidence (roles, markers, identity). */
void kbu_os_score(const struct kbu_os_profile *p, const struct kbu_os_evidence *ev,
		  struct kbu_os_candidate *c);

/*
 * The profile a command uses: a profile file if given, else the built-in named
 * by os ("freebsd"...), else identification from ev ("auto", "" or NULL).
 */
struct kbu_os_profile *kbu_os_select(const char *os, const char *profile_path,
				     const struct kbu_os_evidence *ev, struct kbu_err *err);

#ifdef __cplusplus
}
#endif
#endif
