/* kbu: symbol tables from ELF .symtab and nm-format maps (System.map), merged. */
#ifndef KBU_SYMBOLS_H
#define KBU_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_elf;
struct kbu_symtab;

struct kbu_sym {
	const char *name;
	uint64_t addr;
	uint64_t size;  /* 0 if unknown (maps carry no sizes; inferred from the next symbol) */
	char type;      /* nm letter: T t D d B b R r A W ... */
	uint8_t source; /* KBU_SYMSRC_* */
};

enum { KBU_SYMSRC_ELF = 1, KBU_SYMSRC_MAP = 2 };

struct kbu_symtab *kbu_symtab_new(void);
void kbu_symtab_free(struct kbu_symtab *st);
int kbu_symtab_load_elf(struct kbu_symtab *st, const struct kbu_elf *e, struct kbu_err *err);
int kbu_symtab_load_map(struct kbu_symtab *st, const char *path, struct kbu_err *err);
/* Must be called after loading and before lookups (sorts, dedups, builds the hash). */
int kbu_symtab_finish(struct kbu_symtab *st, struct kbu_err *err);

size_t kbu_symtab_count(const struct kbu_symtab *st);
/* i-th symbol in address order. */
const struct kbu_sym *kbu_symtab_at(const struct kbu_symtab *st, size_t i);
const struct kbu_sym *kbu_sym_by_name(const struct kbu_symtab *st, const char *name);
/* The symbol containing addr (or the nearest below it); *off gets addr - sym->addr. */
const struct kbu_sym *kbu_sym_by_addr(const struct kbu_symtab *st, uint64_t addr, uint64_t *off);
/* Looks up many names at once: a map not parsed yet is read once for all of
 * them, and kbu_sym_by_name then answers them without reading it again. Only
 * a speed-up: a table already indexed ignores it. */
void kbu_sym_prefetch(const struct kbu_symtab *st, const char *const *names, size_t n);
/* How many symbols carry this name (static functions repeat across files). */
size_t kbu_sym_name_count(const struct kbu_symtab *st, const char *name);
/* NULL if there are symbols; else why not ("vmlinux: ELF has no symbol table ..."). */
const char *kbu_symtab_why_empty(const struct kbu_symtab *st);
/* Lines of nm-format maps that were not symbols: the count, and the first one
 * ("path:line: why: 'text'") in *first (NULL when none). */
size_t kbu_symtab_bad_lines(const struct kbu_symtab *st, const char **first);
/* A finished copy of st with every non-absolute symbol moved by slide (KASLR,
 * a relocated load); NULL with err set on failure. */
struct kbu_symtab *kbu_symtab_slid(const struct kbu_symtab *st, int64_t slide,
				   struct kbu_err *err);
/* "name+0xoff" or "0x..." into buf. */
const char *kbu_sym_format(const struct kbu_symtab *st, uint64_t addr, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
