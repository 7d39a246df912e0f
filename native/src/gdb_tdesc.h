/*
 * kbu: GDB target descriptions, both ways. The client reads a stub's
 * description (qXfer:features:read, <xi:include>s followed) into a register
 * list and maps the registers kbu knows by name onto struct kbu_regs, from a
 * 'g' reply or 'p' packets. `kbu serve` describes its own x86-64 register set
 * (GDB's core and SSE features, fs_base/gs_base, and, unless plain, the
 * control registers) and encodes struct kbu_regs as 'g' and 'p' replies,
 * unknown registers as unavailable. Not a public API.
 */
#ifndef KBU_GDB_TDESC_H
#define KBU_GDB_TDESC_H

#include <stddef.h>

#include "kbu/err.h"
#include "kbu/regs.h"
#include "rsp.h"

#define GDB_MAX_XML (1u << 20)   /* one target description file */
#define GDB_MAX_XML_FILES 32
#define GDB_MAX_REGS 1024

struct gdb_reg {
	char name[32];
	unsigned bits;
	unsigned num;
	long goff; /* byte offset in the 'g' reply, -1 if not part of it */
};

struct gdb_tdesc {
	struct gdb_reg *regs;
	int nregs;
	int loaded;
	int files;
};

/* Reads and parses the stub's description (once). */
int gdb_tdesc_load(struct rsp_conn *c, size_t packet_size, struct gdb_tdesc *t,
		   struct kbu_err *err);
void gdb_tdesc_free(struct gdb_tdesc *t);

/* The registers kbu maps onto struct kbu_regs: where the stub has each, and
 * which came back. */
#define GDB_NMAP 42
struct gdb_regmatch {
	int where[GDB_NMAP]; /* index into t->regs, -1 if the stub has no such register */
	int found[GDB_NMAP];
};

void gdb_tdesc_match(const struct gdb_tdesc *t, struct gdb_regmatch *m);
/* Takes what a 'g' reply holds; returns 1 if registers remain for 'p'. */
int gdb_tdesc_take_g(const struct gdb_tdesc *t, struct gdb_regmatch *m, const struct rbuf *g,
		     struct kbu_regs *out);
/* The registers still missing: map indexes and register numbers; returns the count. */
int gdb_tdesc_missing(const struct gdb_tdesc *t, const struct gdb_regmatch *m, int *maps,
		      unsigned *regnums, int max);
void gdb_tdesc_take_p(struct gdb_regmatch *m, int map, const struct rbuf *r, struct kbu_regs *out);
/* Sets out->have and out->bits from what came; -1 if nothing usable came. */
int gdb_tdesc_finish(const struct gdb_regmatch *m, struct kbu_regs *out, int mon_bases,
		     int mon_dt);

/* ---- kbu serve ---- */

/* The description file `annex` ("target.xml", ...) into out; KBU_ENOTFOUND
 * for a name it does not have. plain: no control registers. */
int gdb_tdesc_serve_xml(int plain, const char *annex, struct rbuf *out, struct kbu_err *err);
/* The 'g' reply for r (appended to out). */
int gdb_tdesc_serve_g(int plain, const struct kbu_regs *r, struct rbuf *out, struct kbu_err *err);
/* The 'p' reply for register regnum; KBU_ENOTFOUND if there is no such register. */
int gdb_tdesc_serve_p(int plain, unsigned regnum, const struct kbu_regs *r, struct rbuf *out,
		      struct kbu_err *err);

#endif
