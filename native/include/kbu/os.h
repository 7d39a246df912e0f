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
 *   [profile]  name, description, detect = "A B | C" (any clause whose
 *              symbols all exist selects the profile)
 *   [roles]    x2apic, x2apic_type (int|bool), timesource, timesource_pointer,
 *              time_register, asserts, printf_entries, vprintf_entries,
 *              msgbuf, msgbuf_pointer, msgbuf_format (freebsd|netbsd|linux-prb),
 *              start_info, start_info_kind (pointer|paddr|struct), ncpus
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

/* 1 if the profile's detect rule matches the symbols. */
int kbu_os_matches(const struct kbu_os_profile *p, const struct kbu_symtab *st);
/* The built-in profile whose detect rule matches (linux, netbsd, freebsd in
 * that order); NULL with KBU_ENOTFOUND if none does. */
struct kbu_os_profile *kbu_os_detect(const struct kbu_symtab *st, struct kbu_err *err);

/*
 * The profile a command uses: a profile file if given, else the built-in named
 * by os ("freebsd"...), else detection from st ("auto", "" or NULL).
 */
struct kbu_os_profile *kbu_os_select(const char *os, const char *profile_path,
				     const struct kbu_symtab *st, struct kbu_err *err);

#ifdef __cplusplus
}
#endif
#endif
