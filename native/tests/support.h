/* Test support shared by the unit tests: symbol tables from text, running a command. */
#ifndef KBU_TEST_SUPPORT_H
#define KBU_TEST_SUPPORT_H

#include <stdint.h>

#include "kbu/command.h"
#include "kbu/err.h"
#include "kbu/symbols.h"

/* A finished symbol table from nm-format lines, through a temporary map file;
 * NULL (after saying why on stderr) if it does not load. */
struct kbu_symtab *symtab_of(const char *lines);

/* Writes the low n (at most 8) bytes of v at p, little-endian. */
void put_le(uint8_t *p, uint64_t v, int n);

/* kbu_run() on argc (at most 8) strings given as the remaining arguments. */
int run_cmd(struct kbu_ctx *ctx, int json, char **out, struct kbu_err *err, int argc, ...);

#endif
