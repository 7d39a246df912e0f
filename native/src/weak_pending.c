/*
 * Placeholders for library pieces still being written: each one fails with a
 * clear "not available yet" error. The real definitions override these weak
 * ones; delete an entry here when its file lands.
 */
#include <stddef.h>

#include "kbu/elf.h"
#include "kbu/mem.h"
#include "kbu/symbols.h"

#define PENDING __attribute__((weak))

PENDING struct kbu_elf *kbu_elf_open(const char *path, struct kbu_err *err)
{
	kbu_err_set(err, KBU_EUNSUPPORTED, "%s: ELF images are not supported in this build yet", path);
	return NULL;
}
PENDING void kbu_elf_close(struct kbu_elf *e) { (void)e; }
PENDING const char *kbu_elf_path(const struct kbu_elf *e) { (void)e; return "?"; }

/* A non-NULL token so loading reports "not supported" rather than out of memory. */
static const char pending_symtab;
PENDING struct kbu_symtab *kbu_symtab_new(void) { return (struct kbu_symtab *)&pending_symtab; }
PENDING void kbu_symtab_free(struct kbu_symtab *st) { (void)st; }
PENDING int kbu_symtab_load_elf(struct kbu_symtab *st, const struct kbu_elf *e, struct kbu_err *err)
{
	return kbu_err_set(err, KBU_EUNSUPPORTED, "symbol tables are not supported in this build yet");
}
PENDING int kbu_symtab_load_map(struct kbu_symtab *st, const char *path, struct kbu_err *err)
{
	return kbu_err_set(err, KBU_EUNSUPPORTED, "%s: symbol maps are not supported in this build yet", path);
}
PENDING int kbu_symtab_finish(struct kbu_symtab *st, struct kbu_err *err) { return 0; }
PENDING const struct kbu_sym *kbu_sym_by_name(const struct kbu_symtab *st, const char *name)
{
	return NULL;
}
PENDING const struct kbu_sym *kbu_sym_by_addr(const struct kbu_symtab *st, uint64_t addr, uint64_t *off)
{
	return NULL;
}

PENDING struct kbu_mem *kbu_mem_open_gdb(const char *hostport, struct kbu_err *err)
{
	kbu_err_set(err, KBU_EUNSUPPORTED, "%s: the GDB remote client is not in this build yet", hostport);
	return NULL;
}

PENDING struct kbu_mem *kbu_mem_open_core(const char *path, struct kbu_err *err)
{
	kbu_err_set(err, KBU_EUNSUPPORTED, "%s: dumps are not supported in this build yet", path);
	return NULL;
}
