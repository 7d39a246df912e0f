/* Test support (see support.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "support.h"

struct kbu_symtab *symtab_of(const char *lines)
{
	char path[] = "/tmp/kbu-test-symtab-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, "w");
	fputs(lines, f);
	fclose(f);
	struct kbu_err err = {0};
	struct kbu_symtab *st = kbu_symtab_new();
	if (kbu_symtab_load_map(st, path, &err) < 0 || kbu_symtab_finish(st, &err) < 0) {
		fprintf(stderr, "symtab: %s\n", err.msg);
		kbu_symtab_free(st);
		st = NULL;
	}
	unlink(path);
	return st;
}

void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n && i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int run_cmd(struct kbu_ctx *ctx, int json, char **out, struct kbu_err *err, int argc, ...)
{
	char *argv[8];
	if (argc < 0 || argc > 8)
		return kbu_err_set(err, KBU_EINVAL, "run_cmd: %d arguments, at most 8", argc);
	va_list ap;
	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	return kbu_run(ctx, argc, argv, json, out, err);
}
