/*
 * kbu: GDB target descriptions: read a stub's (client), write our own (kbu
 * serve), and the registers in between.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdb_tdesc.h"
#include "kbu/util.h"

/* ---- reading a stub's description ---- */

static int xml_attr(const char *tag, const char *end, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *p = tag; p + nl + 2 < end; p++) {
		if (!isspace((unsigned char)p[0]) || strncmp(p + 1, name, nl) != 0 || p[1 + nl] != '=')
			continue;
		char q = p[2 + nl];
		if (q != '"' && q != '\'')
			continue;
		const char *v = p + 3 + nl;
		const char *ve = memchr(v, q, (size_t)(end - v));
		if (!ve || (size_t)(ve - v) + 1 > cap)
			return -1;
		memcpy(out, v, (size_t)(ve - v));
		out[ve - v] = '\0';
		return 0;
	}
	return -1;
}

static int xfer(struct rsp_conn *c, size_t packet_size, const char *annex, struct rbuf *doc,
		struct kbu_err *err)
{
	size_t chunk = packet_size > 64 ? packet_size - 16 : 48;
	doc->len = 0;
	for (;;) {
		char pkt[160];
		snprintf(pkt, sizeof pkt, "qXfer:features:read:%s:%zx,%zx", annex, doc->len, chunk);
		struct rbuf r = {0};
		if (rsp_one(c, pkt, &r, err)) {
			rbuf_free(&r);
			return -1;
		}
		if (r.len == 0 || (r.p[0] != 'm' && r.p[0] != 'l')) {
			char shown[32];
			rsp_pkt_name(r.p ? r.p : "", r.len, shown, sizeof shown);
			kbu_err_set(err, r.len == 0 ? KBU_EUNSUPPORTED : KBU_EFORMAT,
				    "gdb stub %s: cannot read target description '%s' ('%s')", c->where,
				    annex, shown);
			rbuf_free(&r);
			return -1;
		}
		int last = r.p[0] == 'l';
		size_t got = r.len - 1;
		if (doc->len + got > GDB_MAX_XML) {
			rbuf_free(&r);
			return kbu_err_set(err, KBU_EFORMAT, "gdb stub %s: target description '%s' exceeds %u bytes",
					   c->where, annex, GDB_MAX_XML);
		}
		int rc = rbuf_put(doc, r.p + 1, got, err);
		rbuf_free(&r);
		if (rc)
			return -1;
		if (last)
			return 0;
		if (got == 0) /* "more to come" with nothing in it would never end */
			return kbu_err_set(err, KBU_EFORMAT,
					   "gdb stub %s: empty piece of target description '%s' at offset 0x%zx",
					   c->where, annex, doc->len);
	}
}

static int parse_description(struct rsp_conn *c, size_t packet_size, struct gdb_tdesc *t,
			     const char *annex, int depth, unsigned *next, struct kbu_err *err)
{
	if (depth > 4 || ++t->files > GDB_MAX_XML_FILES)
		return kbu_err_set(err, KBU_EFORMAT, "gdb stub %s: target description includes nest too deep",
				   c->where);
	struct rbuf doc = {0};
	if (xfer(c, packet_size, annex, &doc, err)) {
		rbuf_free(&doc);
		return -1;
	}
	const char *p = doc.p ? doc.p : "", *end = p + doc.len;
	int rc = 0;
	while (rc == 0 && (p = memchr(p, '<', (size_t)(end - p))) != NULL) {
		if (end - p >= 4 && strncmp(p, "<!--", 4) == 0) {
			const char *cm = strstr(p + 4, "-->");
			if (!cm)
				break;
			p = cm + 3;
			continue;
		}
		const char *te = memchr(p, '>', (size_t)(end - p));
		if (!te)
			break;
		char v[128];
		if (strncmp(p, "<xi:include", 11) == 0 && isspace((unsigned char)p[11])) {
			if (xml_attr(p, te, "href", v, sizeof v) == 0) {
				for (char *ch = v; *ch; ch++)
					if (!isalnum((unsigned char)*ch) && *ch != '.' && *ch != '-' && *ch != '_') {
						char shown[160];
						kbu_escape(v, strlen(v), NULL, shown, sizeof shown);
						rc = kbu_err_set(err, KBU_EFORMAT,
								 "gdb stub %s: odd include name '%s' in '%s'",
								 c->where, shown, annex);
						break;
					}
				if (rc == 0)
					rc = parse_description(c, packet_size, t, v, depth + 1, next, err);
			}
		} else if (strncmp(p, "<reg", 4) == 0 && isspace((unsigned char)p[4])) {
			char name[32], bits[16];
			if (xml_attr(p, te, "name", name, sizeof name) == 0 &&
			    xml_attr(p, te, "bitsize", bits, sizeof bits) == 0) {
				char *e;
				unsigned long b = strtoul(bits, &e, 10);
				char shown[64], sbits[48];
				kbu_escape(name, strlen(name), NULL, shown, sizeof shown);
				kbu_escape(bits, strlen(bits), NULL, sbits, sizeof sbits);
				if (*e || b == 0 || b > 4096) {
					rc = kbu_err_set(err, KBU_EFORMAT, "gdb stub %s: register %s has bitsize '%s'",
							 c->where, shown, sbits);
					break;
				}
				if (xml_attr(p, te, "regnum", v, sizeof v) == 0) {
					unsigned long n = strtoul(v, &e, 10);
					if (*e || n > 65535) {
						char sv[160];
						kbu_escape(v, strlen(v), NULL, sv, sizeof sv);
						rc = kbu_err_set(err, KBU_EFORMAT,
								 "gdb stub %s: register %s has regnum '%s'",
								 c->where, shown, sv);
						break;
					}
					*next = (unsigned)n;
				}
				if (t->nregs >= GDB_MAX_REGS) {
					rc = kbu_err_set(err, KBU_EFORMAT, "gdb stub %s: more than %d registers",
							 c->where, GDB_MAX_REGS);
					break;
				}
				struct gdb_reg *r = &t->regs[t->nregs++];
				snprintf(r->name, sizeof r->name, "%s", name);
				r->bits = (unsigned)b;
				r->num = (*next)++;
				r->goff = -1;
			}
		}
		p = te + 1;
	}
	rbuf_free(&doc);
	return rc;
}

static int reg_cmp(const void *a, const void *b)
{
	const struct gdb_reg *x = a, *y = b;
	return x->num < y->num ? -1 : x->num > y->num;
}

int gdb_tdesc_load(struct rsp_conn *c, size_t packet_size, struct gdb_tdesc *t,
		   struct kbu_err *err)
{
	if (t->loaded)
		return 0;
	free(t->regs);
	t->regs = calloc(GDB_MAX_REGS, sizeof *t->regs);
	if (!t->regs)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory for the register layout");
	t->nregs = 0;
	t->files = 0;
	unsigned next = 0;
	if (parse_description(c, packet_size, t, "target.xml", 0, &next, err))
		return -1;
	if (t->nregs == 0)
		return kbu_err_set(err, KBU_EFORMAT, "gdb stub %s: target description lists no registers",
				   c->where);
	qsort(t->regs, (size_t)t->nregs, sizeof *t->regs, reg_cmp);
	/* 'g' holds registers 0, 1, 2, ... back to back until the first gap. */
	long off = 0;
	for (int i = 0; i < t->nregs && t->regs[i].num == (unsigned)i && t->regs[i].bits % 8 == 0; i++) {
		t->regs[i].goff = off;
		off += (long)t->regs[i].bits / 8;
	}
	t->loaded = 1;
	return 0;
}

void gdb_tdesc_free(struct gdb_tdesc *t)
{
	free(t->regs);
	memset(t, 0, sizeof *t);
}

/* ---- kbu's registers by name ---- */

#define RF(f) offsetof(struct kbu_regs, f), sizeof(((struct kbu_regs *)0)->f)
enum { SET64 = 1, SET32 = 2, OPT = 4 };
static const struct {
	const char *name;
	size_t off, size;
	uint32_t group;
	int set;
} reg_map[] = {
	{"rax", RF(rax), KBU_HAVE_GPR, SET64}, {"rbx", RF(rbx), KBU_HAVE_GPR, SET64},
	{"rcx", RF(rcx), KBU_HAVE_GPR, SET64}, {"rdx", RF(rdx), KBU_HAVE_GPR, SET64},
	{"rsi", RF(rsi), KBU_HAVE_GPR, SET64}, {"rdi", RF(rdi), KBU_HAVE_GPR, SET64},
	{"rbp", RF(rbp), KBU_HAVE_GPR, SET64}, {"rsp", RF(rsp), KBU_HAVE_GPR, SET64},
	{"r8", RF(r8), KBU_HAVE_GPR, SET64},   {"r9", RF(r9), KBU_HAVE_GPR, SET64},
	{"r10", RF(r10), KBU_HAVE_GPR, SET64}, {"r11", RF(r11), KBU_HAVE_GPR, SET64},
	{"r12", RF(r12), KBU_HAVE_GPR, SET64}, {"r13", RF(r13), KBU_HAVE_GPR, SET64},
	{"r14", RF(r14), KBU_HAVE_GPR, SET64}, {"r15", RF(r15), KBU_HAVE_GPR, SET64},
	{"rip", RF(rip), KBU_HAVE_GPR, SET64},
	{"eax", RF(rax), KBU_HAVE_GPR, SET32}, {"ebx", RF(rbx), KBU_HAVE_GPR, SET32},
	{"ecx", RF(rcx), KBU_HAVE_GPR, SET32}, {"edx", RF(rdx), KBU_HAVE_GPR, SET32},
	{"esi", RF(rsi), KBU_HAVE_GPR, SET32}, {"edi", RF(rdi), KBU_HAVE_GPR, SET32},
	{"ebp", RF(rbp), KBU_HAVE_GPR, SET32}, {"esp", RF(rsp), KBU_HAVE_GPR, SET32},
	{"eip", RF(rip), KBU_HAVE_GPR, SET32},
	{"eflags", RF(rflags), KBU_HAVE_GPR, SET64 | SET32},
	{"cs", RF(cs), KBU_HAVE_SEG, 0}, {"ss", RF(ss), KBU_HAVE_SEG, 0},
	{"ds", RF(ds), KBU_HAVE_SEG, 0}, {"es", RF(es), KBU_HAVE_SEG, 0},
	{"fs", RF(fs), KBU_HAVE_SEG, 0}, {"gs", RF(gs), KBU_HAVE_SEG, 0},
	{"fs_base", RF(fs_base), KBU_HAVE_SEGBASE, 0}, {"gs_base", RF(gs_base), KBU_HAVE_SEGBASE, 0},
	{"k_gs_base", RF(kernel_gs_base), KBU_HAVE_SEGBASE, OPT},
	{"cr0", RF(cr0), KBU_HAVE_CR, 0}, {"cr2", RF(cr2), KBU_HAVE_CR, 0},
	{"cr3", RF(cr3), KBU_HAVE_CR, 0}, {"cr4", RF(cr4), KBU_HAVE_CR, 0},
	{"cr8", RF(cr8), KBU_HAVE_CR, OPT},
	{"efer", RF(efer), KBU_HAVE_EFER, 0},
};
#define NMAP (sizeof reg_map / sizeof reg_map[0])
_Static_assert(NMAP == GDB_NMAP, "GDB_NMAP is the size of reg_map");

static void store_field(struct kbu_regs *out, size_t m, uint64_t v)
{
	char *f = (char *)out + reg_map[m].off;
	if (reg_map[m].size == 2) {
		uint16_t s = (uint16_t)v;
		memcpy(f, &s, 2);
	} else {
		memcpy(f, &v, 8);
	}
}

/* Little-endian hex of nbytes (at most 8) into v; 0 if every digit is hex. */
static int hex_le(const char *h, size_t nbytes, uint64_t *v)
{
	*v = 0;
	for (size_t k = 0; k < nbytes; k++) {
		int a = kbu_hex_digit(h[2 * k]), b = kbu_hex_digit(h[2 * k + 1]);
		if (a < 0 || b < 0)
			return -1; /* 'xx': the stub does not have it */
		*v |= (uint64_t)(a << 4 | b) << (8 * k);
	}
	return 0;
}

void gdb_tdesc_match(const struct gdb_tdesc *t, struct gdb_regmatch *m)
{
	for (size_t k = 0; k < NMAP; k++) {
		m->where[k] = -1;
		m->found[k] = 0;
		for (int i = 0; i < t->nregs; i++)
			if (strcmp(t->regs[i].name, reg_map[k].name) == 0)
				m->where[k] = i;
	}
}

int gdb_tdesc_take_g(const struct gdb_tdesc *t, struct gdb_regmatch *m, const struct rbuf *g,
		     struct kbu_regs *out)
{
	size_t glen = rsp_is_error_reply(g) ? 0 : g->len / 2;
	/* Trust 'g' only when it ends exactly on a register boundary of the layout. */
	int g_ok = 0;
	if (glen > 0 && g->len % 2 == 0) {
		for (int i = 0; i < t->nregs && t->regs[i].goff >= 0; i++)
			if ((size_t)t->regs[i].goff + t->regs[i].bits / 8 == glen)
				g_ok = 1;
	}
	int need_p = 0;
	for (size_t k = 0; k < NMAP; k++) {
		int i = m->where[k];
		if (i < 0)
			continue;
		const struct gdb_reg *r = &t->regs[i];
		uint64_t v;
		if (g_ok && r->goff >= 0 && (size_t)r->goff + r->bits / 8 <= glen && r->bits <= 64 &&
		    hex_le(g->p + 2 * r->goff, r->bits / 8, &v) == 0) {
			store_field(out, k, v);
			m->found[k] = 1;
		} else if (r->bits <= 64) {
			need_p = 1;
		}
	}
	return need_p;
}

int gdb_tdesc_missing(const struct gdb_tdesc *t, const struct gdb_regmatch *m, int *maps,
		      unsigned *regnums, int max)
{
	int n = 0;
	for (size_t k = 0; k < NMAP && n < max; k++) {
		if (m->where[k] < 0 || m->found[k] || t->regs[m->where[k]].bits > 64)
			continue;
		maps[n] = (int)k;
		regnums[n] = t->regs[m->where[k]].num;
		n++;
	}
	return n;
}

void gdb_tdesc_take_p(struct gdb_regmatch *m, int map, const struct rbuf *r, struct kbu_regs *out)
{
	uint64_t v;
	/* In 32-bit mode a stub may send 4 bytes where the layout says 8. */
	if (r->len >= 2 && r->len <= 16 && r->len % 2 == 0 && !rsp_is_error_reply(r) &&
	    hex_le(r->p, r->len / 2, &v) == 0) {
		store_field(out, (size_t)map, v);
		m->found[map] = 1;
	}
}

int gdb_tdesc_finish(const struct gdb_regmatch *m, struct kbu_regs *out, int mon_bases,
		     int mon_dt)
{
	/* A group counts only when every register it needs came back. */
	int all64 = 1, all32 = 1;
	uint32_t missing = 0;
	for (size_t k = 0; k < NMAP; k++) {
		if (reg_map[k].set & SET64)
			all64 &= m->found[k];
		if (reg_map[k].set & SET32)
			all32 &= m->found[k];
		if (!(reg_map[k].set & (SET64 | SET32 | OPT)) && !m->found[k])
			missing |= reg_map[k].group;
	}
	out->have = 0;
	if (all64 || all32)
		out->have |= KBU_HAVE_GPR;
	uint32_t groups[] = {KBU_HAVE_SEG, KBU_HAVE_SEGBASE, KBU_HAVE_CR, KBU_HAVE_EFER};
	for (size_t k = 0; k < sizeof groups / sizeof groups[0]; k++)
		if (!(missing & groups[k]))
			out->have |= groups[k];
	/* QEMU masks registers to 32 bits unless the CPU runs 64-bit code. */
	if (out->have & KBU_HAVE_EFER)
		out->bits = (out->efer & (1u << 10)) ? 64 : 32;
	else
		out->bits = all64 ? 64 : 32;
	/* The stub sends fs/gs bases only: the others are known from the monitor,
	 * or in long mode, where the CPU ignores them. */
	if (!mon_bases && out->bits != 64)
		out->have &= ~(uint32_t)KBU_HAVE_SEGBASE;
	if (mon_dt)
		out->have |= KBU_HAVE_DT;
	return out->have ? 0 : -1;
}

/* ---- kbu serve's own description ---- */

enum { F_CORE, F_SSE, F_SEGMENTS, F_SYS, F_COUNT };

static const struct {
	const char *file, *feature;
	int plain; /* offered by a plain stub too */
} features[F_COUNT] = {
	{"64bit-core.xml", "org.gnu.gdb.i386.core", 1},
	{"64bit-sse.xml", "org.gnu.gdb.i386.sse", 1},
	{"64bit-segments.xml", "org.gnu.gdb.i386.segments", 0},
	{"kbu-x86-sys.xml", "org.kbu.gdb.x86.sys", 0},
};

/* A register of kbu serve's layout: where its value is in struct kbu_regs
 * (size 0: never known to kbu, always unavailable) and the group that must
 * be present for it to be known. */
struct serve_reg {
	const char *name;
	unsigned bits;
	const char *type;
	int feature;
	size_t off, size;
	uint32_t group;
	int needs64; /* unknown when the source recorded 32-bit registers */
};

#define NOF 0, 0
static const struct serve_reg serve_regs[] = {
	{"rax", 64, "int64", F_CORE, RF(rax), KBU_HAVE_GPR, 0},
	{"rbx", 64, "int64", F_CORE, RF(rbx), KBU_HAVE_GPR, 0},
	{"rcx", 64, "int64", F_CORE, RF(rcx), KBU_HAVE_GPR, 0},
	{"rdx", 64, "int64", F_CORE, RF(rdx), KBU_HAVE_GPR, 0},
	{"rsi", 64, "int64", F_CORE, RF(rsi), KBU_HAVE_GPR, 0},
	{"rdi", 64, "int64", F_CORE, RF(rdi), KBU_HAVE_GPR, 0},
	{"rbp", 64, "data_ptr", F_CORE, RF(rbp), KBU_HAVE_GPR, 0},
	{"rsp", 64, "data_ptr", F_CORE, RF(rsp), KBU_HAVE_GPR, 0},
	{"r8", 64, "int64", F_CORE, RF(r8), KBU_HAVE_GPR, 1},
	{"r9", 64, "int64", F_CORE, RF(r9), KBU_HAVE_GPR, 1},
	{"r10", 64, "int64", F_CORE, RF(r10), KBU_HAVE_GPR, 1},
	{"r11", 64, "int64", F_CORE, RF(r11), KBU_HAVE_GPR, 1},
	{"r12", 64, "int64", F_CORE, RF(r12), KBU_HAVE_GPR, 1},
	{"r13", 64, "int64", F_CORE, RF(r13), KBU_HAVE_GPR, 1},
	{"r14", 64, "int64", F_CORE, RF(r14), KBU_HAVE_GPR, 1},
	{"r15", 64, "int64", F_CORE, RF(r15), KBU_HAVE_GPR, 1},
	{"rip", 64, "code_ptr", F_CORE, RF(rip), KBU_HAVE_GPR, 0},
	{"eflags", 32, "i386_eflags", F_CORE, RF(rflags), KBU_HAVE_GPR, 0},
	{"cs", 32, "int32", F_CORE, RF(cs), KBU_HAVE_SEG, 0},
	{"ss", 32, "int32", F_CORE, RF(ss), KBU_HAVE_SEG, 0},
	{"ds", 32, "int32", F_CORE, RF(ds), KBU_HAVE_SEG, 0},
	{"es", 32, "int32", F_CORE, RF(es), KBU_HAVE_SEG, 0},
	{"fs", 32, "int32", F_CORE, RF(fs), KBU_HAVE_SEG, 0},
	{"gs", 32, "int32", F_CORE, RF(gs), KBU_HAVE_SEG, 0},
	{"st0", 80, "i387_ext", F_CORE, NOF, 0, 0},
	{"st1", 80, "i387_ext", F_CORE, NOF, 0, 0},
	{"st2", 80, "i387_ext", F_CORE, NOF, 0, 0},
	{"st3", 80, "i387_ext", F_CORE, NOF, 0, 0},
	{"st4", 80, "i387_ext", F_CORE, NOF, 0, 0},
	{"st5", 80, "i387_ext", F_CORE, NOF, 0, 0},
	{"st6", 80, "i387_ext", F_CORE, NOF, 0, 0},
	{"st7", 80, "i387_ext", F_CORE, NOF, 0, 0},
	{"fctrl", 32, "int", F_CORE, NOF, 0, 0},
	{"fstat", 32, "int", F_CORE, NOF, 0, 0},
	{"ftag", 32, "int", F_CORE, NOF, 0, 0},
	{"fiseg", 32, "int", F_CORE, NOF, 0, 0},
	{"fioff", 32, "int", F_CORE, NOF, 0, 0},
	{"foseg", 32, "int", F_CORE, NOF, 0, 0},
	{"fooff", 32, "int", F_CORE, NOF, 0, 0},
	{"fop", 32, "int", F_CORE, NOF, 0, 0},
	{"xmm0", 128, "vec128", F_SSE, NOF, 0, 0},
	{"xmm1", 128, "vec128", F_SSE, NOF, 0, 0},
	{"xmm2", 128, "vec128", F_SSE, NOF, 0, 0},
	{"xmm3", 128, "vec128", F_SSE, NOF, 0, 0},
	{"xmm4", 128, "vec128", F_SSE, NOF, 0, 0},
	{"xmm5", 128, "vec128", F_SSE, NOF, 0, 0},
	{"xmm6", 128, "vec128", F_SSE, NOF, 0, 0},
	{"xmm7", 128, "vec128", F_SSE, NOF, 0, 0},
	{"xmm8", 128, "vec128", F_SSE, NOF, 0, 0},
	{"xmm9", 128, "vec128", F_SSE, NOF, 0, 0},
	{"xmm10", 128, "vec128", F_SSE, NOF, 0, 0},
	{"xmm11", 128, "vec128", F_SSE, NOF, 0, 0},
	{"xmm12", 128, "vec128", F_SSE, NOF, 0, 0},
	{"xmm13", 128, "vec128", F_SSE, NOF, 0, 0},
	{"xmm14", 128, "vec128", F_SSE, NOF, 0, 0},
	{"xmm15", 128, "vec128", F_SSE, NOF, 0, 0},
	{"mxcsr", 32, "i386_mxcsr", F_SSE, NOF, 0, 0},
	{"fs_base", 64, "int", F_SEGMENTS, RF(fs_base), KBU_HAVE_SEGBASE, 0},
	{"gs_base", 64, "int", F_SEGMENTS, RF(gs_base), KBU_HAVE_SEGBASE, 0},
	{"k_gs_base", 64, "int", F_SYS, RF(kernel_gs_base), KBU_HAVE_SEGBASE, 1},
	{"cr0", 64, "int", F_SYS, RF(cr0), KBU_HAVE_CR, 0},
	{"cr2", 64, "int", F_SYS, RF(cr2), KBU_HAVE_CR, 0},
	{"cr3", 64, "int", F_SYS, RF(cr3), KBU_HAVE_CR, 0},
	{"cr4", 64, "int", F_SYS, RF(cr4), KBU_HAVE_CR, 0},
	{"cr8", 64, "int", F_SYS, RF(cr8), KBU_HAVE_CR, 1},
	{"efer", 64, "int", F_SYS, RF(efer), KBU_HAVE_EFER, 0},
};
#define NSERVE (sizeof serve_regs / sizeof serve_regs[0])

static int put(struct rbuf *b, struct kbu_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int put(struct rbuf *b, struct kbu_err *err, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp)
		return kbu_err_set(err, KBU_EINVAL, "target description line too long");
	return rbuf_put(b, tmp, (size_t)n, err);
}

/* The x86 flag layouts GDB's own features use for eflags and mxcsr. */
static const struct { const char *flags; const char *fields; } flag_types[] = {
	{"i386_eflags", "CF:0 :1 PF:2 AF:4 ZF:6 SF:7 TF:8 IF:9 DF:10 OF:11 NT:14 RF:16 VM:17 AC:18 VIF:19 VIP:20 ID:21"},
	{"i386_mxcsr", "IE:0 DE:1 ZE:2 OE:3 UE:4 PE:5 DAZ:6 IM:7 DM:8 ZM:9 OM:10 UM:11 PM:12 FZ:15"},
};

static int put_flags(struct rbuf *b, int which, struct kbu_err *err)
{
	if (put(b, err, "  <flags id=\"%s\" size=\"4\">\n", flag_types[which].flags))
		return -1;
	const char *s = flag_types[which].fields;
	while (*s) {
		const char *colon = strchr(s, ':');
		const char *sp = strchr(colon, ' ');
		int bit = atoi(colon + 1);
		if (put(b, err, "    <field name=\"%.*s\" start=\"%d\" end=\"%d\"/>\n", (int)(colon - s), s,
			bit, bit))
			return -1;
		if (!sp)
			break;
		s = sp + 1;
	}
	return put(b, err, "  </flags>\n");
}

static int put_vec128(struct rbuf *b, struct kbu_err *err)
{
	return put(b, err,
		   "  <vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>\n"
		   "  <vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>\n"
		   "  <vector id=\"v16i8\" type=\"int8\" count=\"16\"/>\n"
		   "  <vector id=\"v8i16\" type=\"int16\" count=\"8\"/>\n"
		   "  <vector id=\"v4i32\" type=\"int32\" count=\"4\"/>\n"
		   "  <vector id=\"v2i64\" type=\"int64\" count=\"2\"/>\n") ||
	       put(b, err,
		   "  <union id=\"vec128\">\n"
		   "    <field name=\"v4_float\" type=\"v4f\"/>\n"
		   "    <field name=\"v2_double\" type=\"v2d\"/>\n"
		   "    <field name=\"v16_int8\" type=\"v16i8\"/>\n"
		   "    <field name=\"v8_int16\" type=\"v8i16\"/>\n"
		   "    <field name=\"v4_int32\" type=\"v4i32\"/>\n"
		   "    <field name=\"v2_int64\" type=\"v2i64\"/>\n"
		   "    <field name=\"uint128\" type=\"uint128\"/>\n"
		   "  </union>\n");
}

int gdb_tdesc_serve_xml(int plain, const char *annex, struct rbuf *out, struct kbu_err *err)
{
	static const char head[] = "<?xml version=\"1.0\"?>\n";
	if (strcmp(annex, "target.xml") == 0) {
		if (put(out, err, "%s<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target version=\"1.0\">\n"
			"  <architecture>i386:x86-64</architecture>\n", head))
			return -1;
		for (int f = 0; f < F_COUNT; f++)
			if ((features[f].plain || !plain) &&
			    put(out, err, "  <xi:include href=\"%s\"/>\n", features[f].file))
				return -1;
		return put(out, err, "</target>\n");
	}
	int f = 0;
	while (f < F_COUNT && strcmp(annex, features[f].file) != 0)
		f++;
	if (f == F_COUNT || (plain && !features[f].plain))
		return kbu_err_set(err, KBU_ENOTFOUND, "no target description file '%s'", annex);
	if (put(out, err, "%s<!DOCTYPE feature SYSTEM \"gdb-target.dtd\">\n<feature name=\"%s\">\n",
		head, features[f].feature))
		return -1;
	if ((f == F_CORE && put_flags(out, 0, err)) ||
	    (f == F_SSE && (put_vec128(out, err) || put_flags(out, 1, err))))
		return -1;
	int first = 1;
	for (size_t i = 0; i < NSERVE; i++) {
		if (serve_regs[i].feature != f)
			continue;
		/* The first register of each feature carries its number: GDB numbers
		 * them in order from there. */
		char num[32] = "";
		if (first)
			snprintf(num, sizeof num, " regnum=\"%zu\"", i);
		first = 0;
		const char *group = f == F_CORE && i >= 32 ? " group=\"float\"" : "";
		if (put(out, err, "  <reg name=\"%s\" bitsize=\"%u\" type=\"%s\"%s%s/>\n", serve_regs[i].name,
			serve_regs[i].bits, serve_regs[i].type, num, group))
			return -1;
	}
	return put(out, err, "</feature>\n");
}

/* The hex of one register: its value, or "xx.." when kbu does not know it. */
static int serve_one(const struct serve_reg *sr, const struct kbu_regs *r, struct rbuf *out,
		     struct kbu_err *err)
{
	size_t nbytes = sr->bits / 8;
	if (rbuf_reserve(out, 2 * nbytes, err))
		return -1;
	int known = sr->size && (r->have & sr->group) && !(sr->needs64 && r->bits != 64);
	uint64_t v = 0;
	if (known) {
		const char *f = (const char *)r + sr->off;
		if (sr->size == 2) {
			uint16_t s;
			memcpy(&s, f, 2);
			v = s;
		} else {
			memcpy(&v, f, 8);
		}
	}
	char *p = out->p + out->len;
	for (size_t k = 0; k < nbytes; k++) {
		if (!known) {
			p[2 * k] = p[2 * k + 1] = 'x';
			continue;
		}
		unsigned byte = k < 8 ? (unsigned)(v >> (8 * k)) & 0xff : 0;
		static const char hx[] = "0123456789abcdef";
		p[2 * k] = hx[byte >> 4];
		p[2 * k + 1] = hx[byte & 15];
	}
	out->len += 2 * nbytes;
	out->p[out->len] = '\0';
	return 0;
}

int gdb_tdesc_serve_g(int plain, const struct kbu_regs *r, struct rbuf *out, struct kbu_err *err)
{
	for (size_t i = 0; i < NSERVE; i++)
		if ((features[serve_regs[i].feature].plain || !plain) &&
		    serve_one(&serve_regs[i], r, out, err))
			return -1;
	return 0;
}

int gdb_tdesc_serve_p(int plain, unsigned regnum, const struct kbu_regs *r, struct rbuf *out,
		      struct kbu_err *err)
{
	if (regnum >= NSERVE || (plain && !features[serve_regs[regnum].feature].plain))
		return kbu_err_set(err, KBU_ENOTFOUND, "no register %u", regnum);
	return serve_one(&serve_regs[regnum], r, out, err);
}
