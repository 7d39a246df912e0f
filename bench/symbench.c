/*
 * symbench: load + index time of a symbol source through libkbu, then
 * address and name look-ups per second.
 *   symbench elf|map PATH [ROUNDS]
 * Prints one line of key=value pairs for bench_symbols.py to read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kbu/elf.h"
#include "kbu/symbols.h"

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* Look-up rates use CPU time: a busy shared machine should not halve them. */
static double cpu(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

/* One full load: open, read, sort, index; returns the table or NULL. */
static struct kbu_symtab *load(const char *kind, const char *path, struct kbu_elf **elf,
			       struct kbu_err *err)
{
	struct kbu_symtab *st = kbu_symtab_new();
	*elf = NULL;
	int rc;
	if (strcmp(kind, "elf") == 0) {
		*elf = kbu_elf_open(path, err);
		rc = *elf ? kbu_symtab_load_elf(st, *elf, err) : -1;
	} else {
		rc = kbu_symtab_load_map(st, path, err);
	}
	if (rc == 0)
		rc = kbu_symtab_finish(st, err);
	/* A symbol map is parsed on first need (a name look-up needs no index);
	 * ask for the first entry so the full parse and index are timed too. */
	if (rc == 0 && kbu_symtab_at(st, 0) == NULL) {
		kbu_err_set(err, KBU_ENOTFOUND, "%s: no symbols", path);
		rc = -1;
	}
	if (rc != 0) {
		kbu_symtab_free(st);
		kbu_elf_close(*elf);
		*elf = NULL;
		return NULL;
	}
	return st;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: symbench elf|map PATH [ROUNDS]\n");
		return 2;
	}
	int rounds = argc > 3 ? atoi(argv[3]) : 5;
	struct kbu_err err = {0};
	struct kbu_elf *elf = NULL;
	double best = 1e9;
	struct kbu_symtab *st = NULL;
	for (int r = 0; r < rounds; r++) {
		double t0 = now();
		st = load(argv[1], argv[2], &elf, &err);
		double t = now() - t0;
		if (!st) {
			fprintf(stderr, "symbench: %s\n", err.msg);
			return 1;
		}
		if (t < best)
			best = t;
		if (r + 1 < rounds) {
			kbu_symtab_free(st);
			kbu_elf_close(elf);
		}
	}
	size_t n = kbu_symtab_count(st);
	if (n == 0) {
		fprintf(stderr, "symbench: %s\n", kbu_symtab_why_empty(st));
		return 1;
	}
	/* Addresses spread over the table (inside symbols, not at their start). */
	enum { NADDR = 1 << 16 };
	uint64_t *addrs = malloc(NADDR * sizeof(*addrs));
	const char **names = malloc(NADDR * sizeof(*names));
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < NADDR; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		const struct kbu_sym *s = kbu_symtab_at(st, x % n);
		addrs[i] = s->addr + (s->size ? (x >> 32) % s->size : 0);
		names[i] = s->name;
	}
	long nlook = 0, found = 0;
	double t0 = cpu(), t;
	do {
		for (int i = 0; i < NADDR; i++)
			found += kbu_sym_by_addr(st, addrs[i], NULL) != NULL;
		nlook += NADDR;
	} while ((t = cpu() - t0) < 0.3);
	double addr_rate = nlook / t;
	long nfound_addr = found;
	nlook = 0, found = 0;
	t0 = cpu();
	do {
		for (int i = 0; i < NADDR; i++)
			found += kbu_sym_by_name(st, names[i]) != NULL;
		nlook += NADDR;
	} while ((t = cpu() - t0) < 0.3);
	double name_rate = nlook / t;
	printf("syms=%zu load_s=%.6f addr_per_s=%.0f name_per_s=%.0f addr_found=%ld name_found=%ld "
	       "lookups=%ld\n",
	       n, best, addr_rate, name_rate, nfound_addr, found, nlook);
	free(addrs);
	free(names);
	kbu_symtab_free(st);
	kbu_elf_close(elf);
	return 0;
}
