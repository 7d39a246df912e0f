/*
 * tablesbench: the MP table and the PVH start info through libkbu, from a cold
 * source each round, and how much of the source that took.
 *   tablesbench core|gdb PATH|HOST:PORT [ROUNDS] [SYSTEM.MAP]
 * Prints one line of key=value pairs for bench_tables.py to read:
 * best times in seconds (open, mptable, pvh) and the source's counters for
 * one round of each (calls into the source = round trips over a stub).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kbu/mem.h"
#include "kbu/mptable.h"
#include "kbu/pvh.h"
#include "kbu/symbols.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct kbu_mem *open_src(const char *kind, const char *where, struct kbu_err *err)
{
	return strcmp(kind, "gdb") == 0 ? kbu_mem_open_gdb(where, err)
					: kbu_mem_open_core(where, err);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: tablesbench core|gdb PATH|HOST:PORT [ROUNDS] [SYSTEM.MAP]\n");
		return 2;
	}
	int rounds = argc > 3 ? atoi(argv[3]) : 5;
	struct kbu_err err;
	struct kbu_symtab *syms = NULL;
	if (argc > 4) {
		syms = kbu_symtab_new();
		if (kbu_symtab_load_map(syms, argv[4], &err) != 0 || kbu_symtab_finish(syms, &err) != 0) {
			fprintf(stderr, "tablesbench: %s\n", err.msg);
			return 1;
		}
	}
	double best_open = 1e9, best_mp = 1e9, best_pvh = 1e9, best_pvh_sym = 1e9;
	struct kbu_mem_stats mp_st = {0}, pvh_st = {0}, pvh_sym_st = {0};
	size_t ncpus = 0;
	for (int r = 0; r < rounds; r++) {
		double t0 = now();
		struct kbu_mem *m = open_src(argv[1], argv[2], &err);
		double t1 = now();
		if (!m) {
			fprintf(stderr, "tablesbench: %s\n", err.msg);
			return 1;
		}
		struct kbu_mptable t;
		if (kbu_mptable_read(m, 0, 0, &t, &err) != 0) {
			fprintf(stderr, "tablesbench: mptable: %s\n", err.msg);
			return 1;
		}
		double t2 = now();
		ncpus = kbu_mptable_ncpus(&t);
		kbu_mptable_free(&t);
		struct kbu_mem_stats s1 = kbu_mem_get_stats(m);
		kbu_mem_flush(m);
		double t3 = now();
		struct kbu_pvh p;
		if (kbu_pvh_find(m, NULL, NULL, 0, &p, &err) != 0) {
			fprintf(stderr, "tablesbench: pvh: %s\n", err.msg);
			return 1;
		}
		double t4 = now();
		kbu_pvh_free(&p);
		struct kbu_mem_stats s2 = kbu_mem_get_stats(m);
		if (t1 - t0 < best_open)
			best_open = t1 - t0;
		if (t2 - t1 < best_mp)
			best_mp = t2 - t1;
		if (t4 - t3 < best_pvh)
			best_pvh = t4 - t3;
		mp_st = s1;
		pvh_st.source_reads = s2.source_reads - s1.source_reads;
		pvh_st.source_bytes = s2.source_bytes - s1.source_bytes;
		if (syms) {
			kbu_mem_flush(m);
			double t5 = now();
			if (kbu_pvh_find(m, syms, NULL, 0, &p, &err) != 0) {
				fprintf(stderr, "tablesbench: pvh --symbols: %s\n", err.msg);
				return 1;
			}
			double t6 = now();
			kbu_pvh_free(&p);
			struct kbu_mem_stats s3 = kbu_mem_get_stats(m);
			if (t6 - t5 < best_pvh_sym)
				best_pvh_sym = t6 - t5;
			pvh_sym_st.source_reads = s3.source_reads - s2.source_reads;
			pvh_sym_st.source_bytes = s3.source_bytes - s2.source_bytes;
		}
		kbu_mem_close(m);
	}
	printf("cpus=%zu open_s=%.6f mptable_s=%.6f pvh_s=%.6f mptable_reads=%" PRIu64
	       " mptable_bytes=%" PRIu64 " pvh_reads=%" PRIu64 " pvh_bytes=%" PRIu64,
	       ncpus, best_open, best_mp, best_pvh, mp_st.source_reads, mp_st.source_bytes,
	       pvh_st.source_reads, pvh_st.source_bytes);
	if (syms)
		printf(" pvh_sym_s=%.6f pvh_sym_reads=%" PRIu64 " pvh_sym_bytes=%" PRIu64, best_pvh_sym,
		       pvh_sym_st.source_reads, pvh_sym_st.source_bytes);
	printf("\n");
	kbu_symtab_free(syms);
	return 0;
}
