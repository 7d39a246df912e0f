/* kbu triage: the post-mortem summary of a guest from its memory alone. */
#include "kbu/triage.h"
#include "kbu/util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#include "kbu/command.h"
#include "kbu/dmesg.h"
#include "kbu/elf.h"
#include "kbu/firmware.h"
#include "kbu/json.h"
#include "kbu/mem.h"
#include "kbu/mptable.h"
#include "kbu/os.h"
#include "kbu/pvh.h"
#include "kbu/regs.h"
#include "kbu/reloc.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/verdict.h"

/* ---- kernel variables through the profile ---- */

/* A NUL-terminated string at a kernel address, byte by byte (it may end at a page end). */
static int read_kstr(struct kbu_mem *m, const struct kbu_elf *k, uint64_t addr, char *buf,
		     size_t len, struct kbu_err *err)
{
	size_t i = 0;
	for (; i + 1 < len; i++) {
		uint8_t c;
		if (kbu_read_kva(m, k, addr + i, &c, 1, err) < 0) {
			if (i == 0)
				return -1;
			break;
		}
		if (!c)
			break;
		buf[i] = (char)c;
	}
	buf[i] = '\0';
	return 0;
}

/* Looks up the first symbol of a role; fills v->symbol/addr or says why not. */
static int role_symbol(const struct kbu_symtab *st, const struct kbu_os_profile *p,
		       const char *role, int64_t slide, struct kbu_triage_var *v)
{
	memset(v, 0, sizeof *v);
	char w[64];
	if (!p || !kbu_os_role_word(p, role, 0, w, sizeof w)) {
		v->state = KBU_TRIAGE_VAR_NONE;
		snprintf(v->why, sizeof v->why, "the OS profile names no %s variable", role);
		return -1;
	}
	snprintf(v->symbol, sizeof v->symbol, "%s", w);
	const struct kbu_sym *s = st ? kbu_sym_by_name(st, w) : NULL;
	if (!s) {
		v->state = KBU_TRIAGE_VAR_MISSING;
		snprintf(v->why, sizeof v->why, "no symbol '%s' (role %s)", w, role);
		return -1;
	}
	v->addr = s->addr + (uint64_t)slide;
	return 0;
}

static int var_read(struct kbu_mem *m, const struct kbu_elf *k, struct kbu_triage_var *v,
		    uint32_t size)
{
	struct kbu_err e = {0};
	if (kbu_read_kva_uint(m, k, v->addr, size, &v->value, &e) < 0) {
		v->state = KBU_TRIAGE_VAR_UNREADABLE;
		snprintf(v->why, sizeof v->why, "%s at 0x%" PRIx64 ": %s", v->symbol, v->addr, e.msg);
		return -1;
	}
	v->state = KBU_TRIAGE_VAR_OK;
	return 0;
}

static void read_timesource(struct kbu_mem *m, const struct kbu_elf *k,
			    const struct kbu_symtab *st, const struct kbu_os_profile *p,
			    int64_t slide, struct kbu_triage_kstate *o)
{
	struct kbu_triage_var *v = &o->timesource;
	if (role_symbol(st, p, "timesource", slide, v) < 0)
		return;
	uint64_t base = v->addr;
	if (kbu_os_role_num(p, "timesource_pointer", 0) == 1) {
		if (var_read(m, k, v, 8) < 0)
			return;
		base = v->value;
		if (!base) {
			snprintf(v->why, sizeof v->why, "%s is NULL: no time source chosen yet",
				 v->symbol);
			return;
		}
	} else {
		v->state = KBU_TRIAGE_VAR_OK;
		v->value = base;
	}
	struct kbu_os_field f;
	struct kbu_err e = {0};
	if (kbu_os_field(p, "timesource", "name", &f, &e) == 0) {
		uint64_t np;
		if (kbu_read_kva_uint(m, k, base + f.offset, 8, &np, &e) < 0 ||
		    read_kstr(m, k, np, o->ts_name, sizeof o->ts_name, &e) < 0) {
			v->state = KBU_TRIAGE_VAR_UNREADABLE;
			snprintf(v->why, sizeof v->why, "the name of the time source at 0x%" PRIx64
				 ": %s", base, e.msg);
			o->ts_name[0] = '\0';
			return;
		}
	}
	if (kbu_os_field(p, "timesource", "quality", &f, &e) == 0 && f.size && f.size <= 8) {
		uint64_t q;
		if (kbu_read_kva_uint(m, k, base + f.offset, f.size, &q, &e) == 0) {
			/* sign-extend from the field's width */
			if (f.size < 8 && (q >> (8 * f.size - 1)) & 1)
				q |= ~0ull << (8 * f.size);
			o->ts_quality = (int64_t)q;
			o->ts_have_quality = 1;
			snprintf(o->ts_quality_name, sizeof o->ts_quality_name, "%s",
				 f.cname && *f.cname ? f.cname : "quality");
		}
	}
	if (kbu_os_field(p, "timesource", "frequency", &f, &e) == 0 && f.size && f.size <= 8 &&
	    kbu_read_kva_uint(m, k, base + f.offset, f.size, &o->ts_freq, &e) == 0)
		o->ts_have_freq = 1;
}

void kbu_triage_read_kstate(struct kbu_mem *m, const struct kbu_elf *kernel,
			    const struct kbu_symtab *st, const struct kbu_os_profile *p,
			    int64_t slide, struct kbu_triage_kstate *out)
{
	memset(out, 0, sizeof *out);
	if (role_symbol(st, p, "x2apic", slide, &out->x2apic) == 0) {
		const char *t = kbu_os_role(p, "x2apic_type");
		var_read(m, kernel, &out->x2apic, t && strcmp(t, "bool") == 0 ? 1 : 4);
	}
	read_timesource(m, kernel, st, p, slide, out);
	if (role_symbol(st, p, "ncpus", slide, &out->ncpus) == 0)
		var_read(m, kernel, &out->ncpus, 4);

	/* panicstr: the BSDs' (and the test kernel's) pointer to the panic text. */
	struct kbu_triage_var *ps = &out->panicstr;
	if (role_symbol(st, p, "panicstr", slide, ps) < 0)
		return;
	if (var_read(m, kernel, ps, 8) < 0 || !ps->value)
		return;
	struct kbu_err e = {0};
	if (read_kstr(m, kernel, ps->value, out->panicstr_text, sizeof out->panicstr_text, &e) < 0) {
		ps->state = KBU_TRIAGE_VAR_UNREADABLE;
		snprintf(ps->why, sizeof ps->why, "panicstr = 0x%" PRIx64 " points nowhere readable: %s",
			 ps->value, e.msg);
	}
}

/* ---- log helpers ---- */

/* Skips a console timestamp "[    1.234567] " at p. */
static const char *skip_stamp(const char *p, const char *end)
{
	if (p < end && *p == '[') {
		const char *q = p + 1;
		while (q < end && (*q == ' ' || *q == '.' || (*q >= '0' && *q <= '9')))
			q++;
		if (q < end && *q == ']') {
			q++;
			while (q < end && *q == ' ')
				q++;
			return q;
		}
	}
	return p;
}

int kbu_triage_panic_in_log(const char *log, char *out, size_t outlen)
{
	static const char linux_mark[] = "Kernel panic - not syncing: ";
	static const char bsd_mark[] = "panic: ";
	const char *best = NULL, *best_end = NULL;
	int best_linux = 0;
	if (!log || !outlen)
		return 0;
	for (const char *p = log; *p;) {
		const char *end = strchr(p, '\n');
		if (!end)
			end = p + strlen(p);
		const char *q = skip_stamp(p, end);
		/* The record that starts with the mark, not the "---[ end ..." trailer. */
		const char *lm = (size_t)(end - q) >= sizeof linux_mark - 1 &&
				 memcmp(q, linux_mark, sizeof linux_mark - 1) == 0 ? q : NULL;
		if (lm) {
			best = lm + sizeof linux_mark - 1;
			best_end = end;
			best_linux = 1;
		} else if (!best_linux && (size_t)(end - q) >= sizeof bsd_mark - 1 &&
			   memcmp(q, bsd_mark, sizeof bsd_mark - 1) == 0) {
			best = q + sizeof bsd_mark - 1;
			best_end = end;
		}
		p = *end ? end + 1 : end;
	}
	if (!best)
		return 0;
	while (best_end > best && (best_end[-1] == '\r' || best_end[-1] == ' '))
		best_end--;
	size_t n = (size_t)(best_end - best);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, best, n);
	out[n] = '\0';
	return 1;
}

/* "KEY ... = [0xSEL:]0xVALUE" on the line at p (FreeBSD's trap report). */
static int trap_field(const char *p, const char *end, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);
	if ((size_t)(end - p) < klen || memcmp(p, key, klen) != 0)
		return 0;
	const char *eq = memchr(p, '=', (size_t)(end - p));
	if (!eq)
		return 0;
	const char *v = eq + 1;
	while (v < end && *v == ' ')
		v++;
	const char *colon = memchr(v, ':', (size_t)(end - v));
	if (colon)
		v = colon + 1;
	char num[24];
	size_t n = 0;
	while (v + n < end && n + 1 < sizeof num && v[n] != ' ')
		n++;
	memcpy(num, v, n);
	num[n] = '\0';
	char *e;
	errno = 0;
	unsigned long long x = strtoull(num, &e, 16);
	if (errno || e == num || *e)
		return 0;
	*out = x;
	return 1;
}

int kbu_triage_trap_in_log(const char *log, struct kbu_triage_trap *out)
{
	static const char mark[] = "Fatal trap ";
	memset(out, 0, sizeof *out);
	if (!log)
		return 0;
	int found = 0;
	for (const char *p = log; *p;) {
		const char *end = strchr(p, '\n');
		if (!end)
			end = p + strlen(p);
		const char *q = skip_stamp(p, end);
		while (q < end && *q == ' ')
			q++;
		if ((size_t)(end - q) >= sizeof mark - 1 && memcmp(q, mark, sizeof mark - 1) == 0) {
			/* a new report: forget the previous one's fields */
			memset(out, 0, sizeof *out);
			size_t n = (size_t)(end - q);
			while (n && (q[n - 1] == '\r' || q[n - 1] == ' '))
				n--;
			if (n >= sizeof out->title)
				n = sizeof out->title - 1;
			memcpy(out->title, q, n);
			out->title[n] = '\0';
			found = 1;
		} else if (found) {
			out->have_ip |= trap_field(q, end, "instruction pointer", &out->ip);
			out->have_fault_addr |= trap_field(q, end, "fault virtual address",
							    &out->fault_addr);
		}
		p = *end ? end + 1 : end;
	}
	return found;
}

const char *kbu_triage_tail(const char *text, size_t n)
{
	if (!text)
		return "";
	size_t len = strlen(text);
	if (!n)
		return text + len;
	const char *p = text + len;
	if (p > text && p[-1] == '\n')
		p--;
	size_t seen = 0;
	while (p > text) {
		if (p[-1] == '\n' && ++seen == n)
			return p;
		p--;
	}
	return text;
}

/* ---- the report ---- */

static void mode_text(const struct kbu_regs *r, char *buf, size_t len)
{
	enum kbu_paging_mode pm = kbu_regs_paging_mode(r);
	if (pm == KBU_PG_UNKNOWN)
		snprintf(buf, len, "unknown (no control registers)");
	else if (pm == KBU_PG_OFF)
		snprintf(buf, len, "%s", (r->cr0 & 1) ? "protected mode, paging off" : "real mode");
	else
		snprintf(buf, len, "%s, %s", pm >= KBU_PG_4LEVEL ? "long mode" : "protected mode",
			 kbu_paging_mode_name(pm));
}

/* A CPU QEMU never started sits at the reset vector f000:fff0 in real mode. */
static int at_reset_vector(const struct kbu_regs *r)
{
	return (r->have & KBU_HAVE_CR) && !(r->cr0 & 1) && (r->have & KBU_HAVE_GPR) &&
	       r->rip == 0xfff0 && (r->have & KBU_HAVE_SEG) && r->cs == 0xf000;
}

struct verdict {
	struct kbu_node *node;
	int count;
};

static void verdict(struct verdict *v, enum kbu_severity sev, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void verdict(struct verdict *v, enum kbu_severity sev, const char *fmt, ...)
{
	char msg[640];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	kbu_problem(v->node, sev, "%s", msg);
	if (sev >= KBU_SEV_WARN)
		v->count++;
}

static int report_cpus(struct kbu_ctx *ctx, const struct kbu_symtab *syms, struct kbu_node *root,
		       int *n_started, int *n_cpus, struct kbu_err *err)
{
	int n = kbu_mem_ncpus(ctx->mem);
	if (n <= 0)
		n = 1; /* a source that cannot count still answers for CPU 0 */
	struct kbu_node *list = kbu_list(root, "cpus", "CPUs");
	*n_started = 0;
	*n_cpus = n;
	for (int cpu = 0; cpu < n; cpu++) {
		struct kbu_regs r;
		struct kbu_err e = {0};
		struct kbu_node *row = kbu_row(list);
		kbu_u64(row, "cpu", "CPU", (uint64_t)cpu);
		if (kbu_mem_regs(ctx->mem, cpu, &r, &e) < 0) {
			if (cpu == 0) {
				*err = e;
				return kbu_err_prefix(err, "CPU 0 registers");
			}
			kbu_str(row, "mode", "Mode", "registers unavailable");
			kbu_problem(row, KBU_SEV_NOTE, "CPU %d: %s", cpu, e.msg);
			continue;
		}
		char mode[64];
		mode_text(&r, mode, sizeof mode);
		enum kbu_paging_mode pm = kbu_regs_paging_mode(&r);
		int reset = at_reset_vector(&r);
		if (!reset)
			(*n_started)++;
		kbu_str(row, "mode", "Mode", mode);
		kbu_str(row, "paging", "", pm == KBU_PG_UNKNOWN ? "unknown" : kbu_paging_mode_name(pm));
		kbu_bool(row, "started", "", !reset);
		if (r.have & KBU_HAVE_GPR) {
			kbu_hex(row, "rip", "RIP", r.rip, r.bits == 32 ? 8 : 16);
			uint64_t off = 0;
			const struct kbu_sym *s = syms ? kbu_sym_by_addr(syms, r.rip, &off) : NULL;
			if (reset)
				kbu_str(row, "where", "Where", "reset vector: never started");
			else if (s && (!s->size || off < s->size))
				kbu_strf(row, "where", "Where", off ? "%s+0x%" PRIx64 : "%s", s->name, off);
			else
				kbu_str(row, "where", "Where", "-");
		}
	}
	return 0;
}

/*
 * A module's findings stay in its section as notes; only its errors reach the
 * verdict (and --strict): warnings there are usually firmware quirks every
 * microVM has (qboot's zero entry_count), and the verdict judges their effect.
 */
static void section_problem(struct kbu_node *o, int sev, const char *msg, char *first,
			    size_t firstlen, int *nerrors)
{
	kbu_problem(o, KBU_SEV_NOTE, "%s", msg);
	if (sev >= KBU_SEV_ERROR && (*nerrors)++ == 0)
		snprintf(first, firstlen, "%s", msg);
}

struct mp_facts {
	int found;
	size_t ncpus;
	int nerrors;
	char first[320];
};

static void report_mptable(struct kbu_ctx *ctx, struct kbu_node *root, struct mp_facts *mf)
{
	struct kbu_node *o = kbu_obj(root, "mptable", "MP table");
	struct kbu_mptable t;
	struct kbu_err e = {0};
	memset(mf, 0, sizeof *mf);
	if (kbu_mptable_read(ctx->mem, 0, 0, &t, &e) < 0) {
		kbu_bool(o, "found", "", 0);
		kbu_str(o, "status", "status", e.msg);
		return;
	}
	mf->found = 1;
	kbu_bool(o, "found", "", 1);
	kbu_display(o, "where", "floating pointer", "0x%" PRIx64 ", found in %s", t.fp.addr,
		    t.fp.where);
	kbu_hex(o, "address", "", t.fp.addr, 0);
	kbu_str(o, "found_in", "", t.fp.where);
	if (t.have_header) {
		kbu_display(o, "table", "config table", "0x%" PRIx64 " OEM '%s' product '%s'",
			    t.hdr.addr, t.hdr.oem_id, t.hdr.product_id);
		kbu_hex(o, "table_address", "", t.hdr.addr, 0);
		kbu_str(o, "oem_id", "", t.hdr.oem_id);
		kbu_str(o, "product_id", "", t.hdr.product_id);
		kbu_display(o, "counts", "entries", "%u in entry_count, %zu walked by length",
			    t.hdr.entry_count, t.nbase);
		kbu_u64(o, "entry_count", "", t.hdr.entry_count);
		kbu_u64(o, "entries_walked", "", t.nbase);
	}
	struct kbu_node *cl = kbu_list(o, "cpus", "processors (APIC IDs)");
	char ids[256] = "";
	size_t used = 0, nio = 0;
	for (size_t i = 0; i < t.nentries; i++) {
		const struct kbu_mp_entry *en = &t.entries[i];
		if (en->extended)
			continue;
		if (en->type == KBU_MP_IOAPIC)
			nio++;
		if (en->type != KBU_MP_PROC)
			continue;
		struct kbu_node *row = kbu_row(cl);
		kbu_u64(row, "apic_id", "APIC ID", en->u.proc.apic_id);
		kbu_bool(row, "bsp", "BSP", (en->u.proc.flags >> 1) & 1);
		kbu_bool(row, "enabled", "usable", en->u.proc.flags & 1);
		int w = snprintf(ids + used, sizeof ids - used, "%s%u", used ? " " : "",
				 en->u.proc.apic_id);
		if (w > 0 && (size_t)w < sizeof ids - used)
			used += (size_t)w;
	}
	mf->ncpus = kbu_mptable_ncpus(&t);
	kbu_u64(o, "ncpus", "CPUs listed", mf->ncpus);
	kbu_u64(o, "nioapics", "I/O APICs", nio);
	for (size_t i = 0; i < t.nproblems; i++)
		section_problem(o, t.problems[i].sev, t.problems[i].msg, mf->first, sizeof mf->first,
				&mf->nerrors);
	kbu_mptable_free(&t);
}

static void report_start_info(struct kbu_ctx *ctx, const struct kbu_symtab *syms,
			      struct kbu_node *root, char *cmdline,
			      size_t cmdlen, char *first, size_t firstlen, int *nerrors)
{
	struct kbu_node *o = kbu_obj(root, "start_info", "PVH start info");
	struct kbu_pvh p = {0};
	struct kbu_err e = {0};
	cmdline[0] = '\0';
	if (kbu_pvh_find(ctx->mem, syms, ctx->kernel, 0, &p, &e) < 0) {
		kbu_bool(o, "found", "", 0);
		kbu_str(o, "status", "status", e.msg);
		kbu_null(o, "cmdline", "");
		kbu_pvh_free(&p);
		return;
	}
	kbu_bool(o, "found", "", 1);
	kbu_display(o, "location", "address", "0x%" PRIx64 " (%s)", p.addr, p.how);
	kbu_hex(o, "address", "", p.addr, 0);
	kbu_str(o, "how", "", p.how);
	kbu_u64(o, "version", "version", p.version);
	if (p.cmdline.state == KBU_PVH_STR_OK || p.cmdline.state == KBU_PVH_STR_UNTERMINATED) {
		kbu_str(o, "cmdline", "command line", p.cmdline.text ? p.cmdline.text : "");
		snprintf(cmdline, cmdlen, "%s", p.cmdline.text ? p.cmdline.text : "");
	} else {
		kbu_null(o, "cmdline", "command line");
	}
	uint64_t ram = 0;
	for (size_t i = 0; i < p.nmemmap; i++)
		if (p.memmap[i].type == 1)
			ram += p.memmap[i].size;
	char rs[32];
	kbu_size_text(ram, rs, sizeof rs);
	kbu_display(o, "memmap", "memory map", "%zu entries, %s RAM", p.nmemmap, rs);
	kbu_u64(o, "memmap_entries", "", p.nmemmap);
	kbu_u64(o, "ram_bytes", "", ram);
	for (size_t i = 0; i < p.nproblems; i++)
		section_problem(o, p.problems[i].sev, p.problems[i].msg, first, firstlen, nerrors);
	kbu_pvh_free(&p);
}

/* A variable that could not be read: why, in the text and as KEY_error in JSON. */
static void var_text(struct kbu_node *o, const char *key, const char *label,
		     const struct kbu_triage_var *v)
{
	char k[64];
	snprintf(k, sizeof k, "%s_error", key);
	kbu_display(o, key, label, "%s", v->why[0] ? v->why : "not read");
	kbu_str(o, k, "", v->why[0] ? v->why : "not read");
}

static int triage_body(struct kbu_ctx *ctx, const struct kbu_triage_opts *o, struct kbu_report *r,
		       const struct kbu_reloc_result *res, const struct kbu_symtab *syms,
		       size_t nsyms, struct kbu_err *err);

int kbu_triage(struct kbu_ctx *ctx, const struct kbu_triage_opts *o, struct kbu_report *r,
	       struct kbu_err *err)
{
	if (kbu_ctx_need_mem(ctx, err) < 0 || kbu_ctx_need_kernel(ctx, err) < 0)
		return -1;
	struct kbu_node *root = kbu_report_root(r);

	/* Where the kernel is: without a match, nothing below means anything. */
	struct kbu_reloc_opts ro;
	struct kbu_reloc_result rr;
	kbu_reloc_opts_default(&ro);
	if (kbu_reloc_find(ctx->mem, ctx->kernel, &ro, &rr, err) < 0)
		return kbu_err_prefix(err, "%s", kbu_elf_path(ctx->kernel));
	if (!rr.virt.found && !rr.phys.found)
		return kbu_err_set(err, KBU_ENOTFOUND,
				   "%s does not match this dump: its code is nowhere in memory (%s; %s) "
				   "- wrong kernel for the dump?",
				   kbu_elf_path(ctx->kernel), rr.virt.how, rr.phys.how);
	int64_t slide = rr.virt.found ? rr.virt.slide : 0;

	struct kbu_node *src = kbu_obj(root, "source", "Post-mortem triage");
	kbu_str(src, "kind", "memory", kbu_mem_kind(ctx->mem));
	kbu_str(src, "kernel", "kernel", kbu_elf_path(ctx->kernel));
	size_t nsyms = ctx->syms ? kbu_symtab_count(ctx->syms) : 0;
	kbu_u64(src, "symbols", "symbols", nsyms);

	/* Symbols where the kernel runs: moved by the slide when it was relocated. */
	struct kbu_symtab *slid = NULL;
	const struct kbu_symtab *syms = nsyms ? ctx->syms : NULL;
	if (syms && slide) {
		slid = kbu_symtab_slid(ctx->syms, slide, err);
		if (!slid)
			return kbu_err_prefix(err, "moving the symbols by the slide 0x%" PRIx64,
					      (uint64_t)slide);
		syms = slid;
	}
	int rc = triage_body(ctx, o, r, &rr, syms, nsyms, err);
	kbu_symtab_free(slid);
	return rc;
}

static int triage_body(struct kbu_ctx *ctx, const struct kbu_triage_opts *o, struct kbu_report *r,
		       const struct kbu_reloc_result *res, const struct kbu_symtab *syms,
		       size_t nsyms, struct kbu_err *err)
{
	struct kbu_node *root = kbu_report_root(r);
	const struct kbu_reloc_result rr = *res;
	struct verdict v = {0};
	int started = 0, ncpus = 0;
	if (report_cpus(ctx, syms, root, &started, &ncpus, err) < 0)
		return -1;

	struct kbu_node *rl = kbu_obj(root, "reloc", "kernel location");
	kbu_bool(rl, "virt_found", "", rr.virt.found);
	if (rr.virt.found)
		kbu_hex(rl, "virt_slide", "virtual slide", (uint64_t)rr.virt.slide, 0);
	else
		kbu_str(rl, "virt_slide", "virtual slide", "not found");
	kbu_bool(rl, "phys_found", "", rr.phys.found);
	if (rr.phys.found)
		kbu_hex(rl, "phys_slide", "physical slide", (uint64_t)rr.phys.slide, 0);
	else
		kbu_str(rl, "phys_slide", "physical slide", "not found");
	kbu_str(rl, "how", "how", rr.virt.found ? rr.virt.how : rr.phys.how);

	struct mp_facts mf;
	report_mptable(ctx, root, &mf);
	/* Who wrote the tables (qboot, SeaBIOS, Firecracker): their quirks explain a lot. */
	struct kbu_firmware fw;
	struct kbu_fw_known known = {0};
	struct kbu_err fe = {0};
	if (kbu_firmware_identify(ctx->mem, &known, &fw, &fe) == 0)
		kbu_firmware_report(&fw, root, 0);
	else
		kbu_str(kbu_obj(root, "firmware", "Firmware"), "status", "status", fe.msg);
	char cmdline[KBU_PVH_CMDLINE_MAX + 1], pvh_first[256] = "";
	int pvh_errors = 0;
	report_start_info(ctx, syms, root, cmdline, sizeof cmdline, pvh_first, sizeof pvh_first,
			  &pvh_errors);

	/* The kernel's own view, through the OS profile. */
	struct kbu_node *ko = kbu_obj(root, "kernel", "kernel state");
	struct kbu_err pe = {0};
	struct kbu_os_profile *p = NULL;
	if (nsyms)
		p = kbu_os_select(o->os, o->profile,
				  &(struct kbu_os_evidence){syms, ctx->kernel}, &pe);
	else
		kbu_err_set(&pe, KBU_ENOTFOUND, "%s",
			    ctx->syms && kbu_symtab_why_empty(ctx->syms)
				    ? kbu_symtab_why_empty(ctx->syms)
				    : "no symbols: give --symbols MAP");
	struct kbu_triage_kstate ks;
	memset(&ks, 0, sizeof ks);
	if (p) {
		kbu_display(ko, "os_text", "OS profile", "%s (%s)", kbu_os_name(p), kbu_os_origin(p));
		kbu_str(ko, "os", "", kbu_os_name(p));
		kbu_str(ko, "profile", "", kbu_os_origin(p));
		kbu_triage_read_kstate(ctx->mem, ctx->kernel, syms, p, 0, &ks);
	} else {
		kbu_null(ko, "os", "");
		kbu_display(ko, "os_text", "OS profile", "none: %s", pe.msg);
		kbu_str(ko, "os_error", "", pe.msg);
		kbu_problem(ko, KBU_SEV_NOTE, "the kernel's variables are not read: %s", pe.msg);
	}
	if (ks.x2apic.state == KBU_TRIAGE_VAR_OK) {
		kbu_display(ko, "x2apic_text", "x2APIC", "%s = %" PRIu64 " (%s)", ks.x2apic.symbol,
			 ks.x2apic.value, ks.x2apic.value ? "x2APIC mode" : "xAPIC mode, MMIO");
		kbu_u64(ko, "x2apic", "", ks.x2apic.value);
	} else {
		kbu_null(ko, "x2apic", "");
		if (p)
			var_text(ko, "x2apic", "x2APIC", &ks.x2apic);
	}
	if (ks.timesource.state == KBU_TRIAGE_VAR_OK && ks.ts_name[0]) {
		char extra[96] = "";
		size_t n = 0;
		if (ks.ts_have_quality)
			n += (size_t)snprintf(extra + n, sizeof extra - n, ", %s %" PRId64,
					      ks.ts_quality_name, ks.ts_quality);
		if (ks.ts_have_freq && n < sizeof extra)
			snprintf(extra + n, sizeof extra - n, ", %" PRIu64 " Hz", ks.ts_freq);
		kbu_display(ko, "timesource_text", "time source", "%s -> 0x%" PRIx64 " \"%s\"%s",
			 ks.timesource.symbol, ks.timesource.value, ks.ts_name, extra);
		kbu_str(ko, "timesource", "", ks.ts_name);
		if (ks.ts_have_quality)
			kbu_i64(ko, "timesource_quality", "", ks.ts_quality);
	} else {
		kbu_null(ko, "timesource", "");
		if (p)
			var_text(ko, "timesource", "time source", &ks.timesource);
	}
	if (ks.ncpus.state == KBU_TRIAGE_VAR_OK) {
		kbu_display(ko, "ncpus_text", "CPUs counted", "%s = %" PRIu64, ks.ncpus.symbol,
			 ks.ncpus.value);
		kbu_u64(ko, "ncpus", "", ks.ncpus.value);
	} else {
		kbu_null(ko, "ncpus", "");
		if (p)
			var_text(ko, "ncpus", "CPUs counted", &ks.ncpus);
	}

	/* The message buffer and the panic. */
	struct kbu_dmesg d;
	memset(&d, 0, sizeof d);
	int have_log = 0;
	struct kbu_node *dm = kbu_obj(root, "dmesg", "message buffer");
	if (p) {
		struct kbu_err de = {0};
		if (kbu_dmesg_read(ctx->mem, ctx->kernel, syms, p, &d, &de) == 0) {
			have_log = 1;
		} else {
			kbu_str(dm, "status", "status", de.msg);
			kbu_problem(dm, KBU_SEV_NOTE, "no message buffer: %s", de.msg);
		}
	} else {
		kbu_str(dm, "status", "status", "not read (no OS profile)");
	}
	char panic_log[KBU_TRIAGE_TEXT] = "";
	int log_panic = have_log && kbu_triage_panic_in_log(d.text, panic_log, sizeof panic_log);
	if (have_log) {
		size_t total = 0;
		for (const char *s = d.text; s && *s; s++)
			total += *s == '\n';
		const char *tail = kbu_triage_tail(d.text, o->tail);
		kbu_display(dm, "summary", "buffer", "%s at 0x%" PRIx64 ", %" PRIu64 " %s, last %zu shown",
			 d.symbol, d.header_addr, d.records,
			 strcmp(d.format, "linux-prb") == 0 ? "records" : "lines",
			 o->tail < total ? o->tail : total);
		kbu_str(dm, "symbol", "", d.symbol);
		kbu_hex(dm, "address", "", d.header_addr, 0);
		kbu_str(dm, "format", "", d.format);
		kbu_u64(dm, "records", "", d.records);
		kbu_str(dm, "tail", "", tail);
		struct kbu_node *tt = kbu_text_obj(dm, "tail_text");
		for (const char *s = tail; *s;) {
			const char *nl = strchr(s, '\n');
			size_t len = nl ? (size_t)(nl - s) : strlen(s);
			char line[512];
			if (len >= sizeof line)
				len = sizeof line - 1;
			memcpy(line, s, len);
			line[len] = '\0';
			kbu_textf(tt, "| %s", line);
			if (!nl)
				break;
			s = nl + 1;
		}
		for (int k = 0; k < d.nproblems; k++)
			kbu_problem(dm, KBU_SEV_NOTE, "%s", d.problems[k]);
	}

	struct kbu_node *po = kbu_obj(root, "panic", "panic");
	const char *msg = NULL, *from = NULL;
	if (log_panic) {
		msg = panic_log;
		from = "the message buffer";
	} else if (ks.panicstr.state == KBU_TRIAGE_VAR_OK && ks.panicstr.value &&
		   ks.panicstr_text[0]) {
		msg = ks.panicstr_text;
		from = "panicstr";
	}
	if (msg) {
		kbu_str(po, "message", "message", msg);
		kbu_str(po, "from", "from", from);
	} else {
		kbu_null(po, "message", "");
		kbu_str(po, "status", "message", ks.panicstr.state == KBU_TRIAGE_VAR_OK
			? "none (panicstr is NULL and the log holds no panic line)"
			: have_log ? "none in the message buffer" : "unknown (no message buffer)");
	}
	if (ks.panicstr.state == KBU_TRIAGE_VAR_OK) {
		if (ks.panicstr.value) {
			kbu_display(po, "panicstr_text", "panicstr", "0x%" PRIx64 " \"%s\"",
				    ks.panicstr.value, ks.panicstr_text);
			kbu_hex(po, "panicstr", "", ks.panicstr.value, 0);
			kbu_str(po, "panicstr_string", "", ks.panicstr_text);
		} else {
			kbu_display(po, "panicstr_text", "panicstr", "NULL");
			kbu_null(po, "panicstr", "");
		}
	}

	struct kbu_triage_trap trap;
	char trap_text[400] = "";
	if (have_log && kbu_triage_trap_in_log(d.text, &trap)) {
		char where[160] = "an unknown place", addr[48] = "";
		if (trap.have_ip)
			kbu_sym_format(syms, trap.ip, where, sizeof where);
		if (trap.have_fault_addr)
			snprintf(addr, sizeof addr, ", fault address 0x%" PRIx64, trap.fault_addr);
		snprintf(trap_text, sizeof trap_text, "%s in %s%s", trap.title, where, addr);
		kbu_display(po, "trap_text", "trap", "%s", trap_text);
		kbu_str(po, "trap", "", trap.title);
		if (trap.have_ip) {
			kbu_hex(po, "trap_ip", "", trap.ip, 16);
			kbu_str(po, "trap_where", "", where);
		} else {
			kbu_null(po, "trap_ip", "");
			kbu_null(po, "trap_where", "");
		}
		if (trap.have_fault_addr)
			kbu_hex(po, "fault_addr", "", trap.fault_addr, 16);
		else
			kbu_null(po, "fault_addr", "");
	}

	/* Where CPU 0 stands: in the profile's idle function, the boot ended well. */
	char idle_name[64] = "";
	struct kbu_regs r0;
	struct kbu_err re = {0};
	if (p && syms && kbu_mem_regs(ctx->mem, 0, &r0, &re) == 0 && (r0.have & KBU_HAVE_GPR)) {
		uint64_t off = 0;
		const struct kbu_sym *s0 = kbu_sym_by_addr(syms, r0.rip, &off);
		if (s0 && (!s0->size || off < s0->size) && kbu_os_role_has(p, "idle", s0->name))
			snprintf(idle_name, sizeof idle_name, "%s", s0->name);
	}

	/* The verdict: the questions a dump can answer, asked of the same rules the
	 * recipes use; the facts the live debugger would add are absent here. */
	v.node = kbu_obj(root, "verdict", "verdict");
	struct kbu_node *qs = kbu_list(v.node, "questions", "");
	char live_text[1024];
	char esc[KBU_TRIAGE_TEXT * 2 + 1];
	size_t k = 0;
	for (const char *s = msg ? msg : ""; *s && k + 2 < sizeof esc; s++) {
		if (*s == '"' || *s == '\\')
			esc[k++] = '\\';
		esc[k++] = (unsigned char)*s < 0x20 ? ' ' : *s;
	}
	esc[k] = '\0';
	if (msg)
		snprintf(live_text, sizeof live_text, "{\"end\": {\"kind\": \"panic\", \"message\": \"%s\", "
			 "\"where\": \"%s\"}}", esc, from);
	else
		snprintf(live_text, sizeof live_text, "{\"end\": {\"kind\": \"%s\", \"where\": \"%s\"}}",
			 idle_name[0] ? "idle" : "stopped", idle_name[0] ? idle_name : "the dump");
	struct kbu_err je = {0};
	struct kbu_json *live = kbu_json_parse(live_text, strlen(live_text), &je);
	struct kbu_verdict_opts vo = {o->os, o->profile, 1, rr.virt.found ? rr.virt.slide : 0};
	for (size_t i = 0; i < kbu_question_count(); i++) {
		const struct kbu_question *q = kbu_question_at(i);
		if (q->live_only)
			continue;
		struct kbu_verdict_outcome out;
		struct kbu_err qe = {0};
		struct kbu_node *row = kbu_row(qs);
		kbu_str(row, "question", "", q->name);
		if (kbu_verdict_summary(ctx, q->name, live, &vo, &out, &qe) < 0) {
			kbu_str(row, "result", "", "undecided");
			kbu_str(row, "cause", "", qe.msg);
			continue;
		}
		static const char *const words[] = {"no problem", "problem", "undecided"};
		kbu_u64(row, "status", "", (uint64_t)out.status);
		kbu_str(row, "result", "", words[out.status]);
		kbu_str(row, "cause", "", out.cause);
		if (out.code)
			kbu_str(row, "code", "", out.code);
		else
			kbu_null(row, "code", "");
		/* Before the kernel's virtual map exists its variables hold their initial
		 * values: what the rules conclude from them is noted, not judged. */
		int early = !rr.virt.found && q->reads_kernel_state;
		if (out.status == 1 && !early) {
			kbu_finding(v.node, KBU_SEV_WARN, out.code ? out.code : "triage.problem", "%s: %s",
				    q->name, out.cause);
			v.count++;
		} else if (out.status == 1) {
			kbu_finding(v.node, KBU_SEV_NOTE, out.code ? out.code : "triage.problem",
				    "%s (from initial values, before the kernel's virtual map): %s", q->name,
				    out.cause);
		} else if (out.status == 2) {
			kbu_finding(v.node, KBU_SEV_NOTE, "triage.undecided", "%s: undecided: %s", q->name,
				    out.cause);
		} else {
			kbu_finding(v.node, KBU_SEV_NOTE, "triage.no_problem", "%s: no problem: %s", q->name,
				    out.cause);
		}
	}
	kbu_json_free(live);
	if (!rr.virt.found)
		verdict(&v, KBU_SEV_NOTE, "the kernel's virtual addresses are not in use (%s): "
			"an early dump, read through physical aliases", rr.virt.how);
	else if (rr.virt.slide)
		verdict(&v, KBU_SEV_NOTE, "the kernel runs 0x%" PRIx64 " above its link address "
			"(KASLR): load its symbols with that offset", (uint64_t)rr.virt.slide);
	if (started < ncpus)
		verdict(&v, KBU_SEV_NOTE, "%d of %d CPUs never left the reset vector (not started by "
			"the kernel)", ncpus - started, ncpus);
	if (!mf.found)
		verdict(&v, KBU_SEV_NOTE, "no MP table in memory");
	if (!p)
		verdict(&v, KBU_SEV_NOTE, "kernel variables not read: %s", pe.msg);
	kbu_u64(v.node, "problems", "problems", (uint64_t)v.count);
	/* What the triage cost the source (JSON only: the bench compares it with the dump size). */
	struct kbu_mem_stats ms = kbu_mem_get_stats(ctx->mem);
	struct kbu_node *io = kbu_obj(root, "reads", "");
	kbu_u64(io, "source_reads", "", ms.source_reads);
	kbu_u64(io, "source_bytes", "", ms.source_bytes);
	kbu_u64(io, "cache_hits", "", ms.cache_hits);
	if (!v.count)
		kbu_textf(v.node, "no problem found in the dump");
	(void)cmdline;
	kbu_dmesg_free(&d);
	kbu_os_free(p);
	return 0;
}
