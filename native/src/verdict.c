/*
 * kbu verdicts: the rules. Each question reads the facts it needs (memory
 * first, the live facts a debugger handed in second), records evidence, and
 * ends in one verdict. The text layout is the recipes' own:
 *
 *   NAME: SUMMARY
 *   end state   ...
 *               call <- chain
 *
 *   Evidence
 *     label  text
 *   ! finding
 *
 *   VERDICT: problem: cause
 *   next step: ...
 *
 * and the JSON holds the same as values: recipe, summary, os, status,
 * verdict {result, cause, next, code}, end_state, facts {...}, evidence
 * [{label, text}] and the findings under "problems".
 */
#include "kbu/verdict.h"

#include <inttypes.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/acpi.h"
#include "kbu/cpuid.h"
#include "kbu/dmesg.h"
#include "kbu/firmware.h"
#include "kbu/json.h"
#include "kbu/lapic.h"
#include "kbu/mem.h"
#include "kbu/mptable.h"
#include "kbu/os.h"
#include "kbu/pvh.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/triage.h"
#include "kbu/vcpu.h"
#include "kbu/xen.h"

#define MAX_EVIDENCE 48
#define MAX_FINDINGS 16
#define LABEL_WIDTH_MAX 28

/* ---- the run: facts gathered, evidence, verdict ---- */

struct evidence {
	char label[64];
	char *text; /* malloc'd; may hold newlines */
};

struct finding {
	const char *code;
	char *msg;
};

struct run {
	struct kbu_ctx *ctx;
	const struct kbu_question *q;
	const struct kbu_json *live;
	const struct kbu_verdict_opts *opts;
	struct kbu_report *rep;
	struct kbu_node *root, *facts;

	/* memory facts, read once on demand */
	struct kbu_os_profile *prof;
	char prof_err[512];
	int prof_tried;
	const struct kbu_symtab *syms;
	int64_t slide;
	struct kbu_triage_kstate ks;
	int ks_read;
	char *log;       /* the kernel's log (message buffer, else the console), malloc'd */
	int log_read;
	char log_from[64];

	struct evidence ev[MAX_EVIDENCE];
	size_t nev;
	struct finding fi[MAX_FINDINGS];
	size_t nfi;

	int status;
	int decided;
	char cause[2048];
	char next[1024];
	const char *code;
};

static char *vfmt(const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return NULL;
	char *s = malloc((size_t)n + 1);
	if (s)
		vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

/* Evidence: a line (or lines) a porter reads; its value goes to facts separately. */
static void evidence(struct run *v, const char *label, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void evidence(struct run *v, const char *label, const char *fmt, ...)
{
	if (v->nev >= MAX_EVIDENCE)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *t = vfmt(fmt, ap);
	va_end(ap);
	if (!t)
		return;
	struct evidence *e = &v->ev[v->nev++];
	snprintf(e->label, sizeof e->label, "%s", label);
	e->text = t;
}

static void finding(struct run *v, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void finding(struct run *v, const char *code, const char *fmt, ...)
{
	if (v->nfi >= MAX_FINDINGS)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *m = vfmt(fmt, ap);
	va_end(ap);
	if (!m)
		return;
	for (size_t i = 0; i < v->nfi; i++)
		if (strcmp(v->fi[i].msg, m) == 0) {
			free(m);
			return;
		}
	v->fi[v->nfi].code = code;
	v->fi[v->nfi++].msg = m;
}

static void decide(struct run *v, int status, const char *code, const char *next,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void decide(struct run *v, int status, const char *code, const char *next,
		   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->cause, sizeof v->cause, fmt, ap);
	va_end(ap);
	snprintf(v->next, sizeof v->next, "%s", next ? next : "");
	v->status = status;
	v->code = code;
	v->decided = 1;
}

/* Appends to a fixed buffer, truncating. */
static void cat(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cat(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strlen(buf);
	if (n + 1 >= len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

/* ---- live facts ---- */

static const struct kbu_json *live(const struct run *v, const char *path)
{
	return kbu_json_path(v->live, path);
}

static const char *live_str(const struct run *v, const char *path)
{
	return kbu_json_str(live(v, path));
}

static int live_u64(const struct run *v, const char *path, uint64_t *out)
{
	return kbu_json_u64(live(v, path), out);
}

static const char *end_kind(const struct run *v)
{
	const char *k = live_str(v, "end.kind");
	return k ? k : "";
}

/* JSON value -> report field (the end state is copied through as it came). */
static void json_field(struct kbu_node *o, const char *key, const struct kbu_json *j);

static void json_item(struct kbu_node *list, const struct kbu_json *j)
{
	switch (kbu_json_type(j)) {
	case KBU_JSON_OBJECT: {
		struct kbu_node *row = kbu_row(list);
		for (size_t i = 0; i < kbu_json_len(j); i++)
			json_field(row, kbu_json_key(j, i), kbu_json_at(j, i));
		break;
	}
	case KBU_JSON_STRING: kbu_item_str(list, kbu_json_str(j)); break;
	case KBU_JSON_NUMBER: {
		uint64_t u;
		if (kbu_json_u64(j, &u) == 0)
			kbu_item_u64(list, u);
		break;
	}
	default: break;
	}
}

static void json_field(struct kbu_node *o, const char *key, const struct kbu_json *j)
{
	uint64_t u;
	int64_t i;
	int b;
	switch (kbu_json_type(j)) {
	case KBU_JSON_NULL: kbu_null(o, key, ""); break;
	case KBU_JSON_BOOL: kbu_json_bool(j, &b); kbu_bool(o, key, "", b); break;
	case KBU_JSON_STRING: kbu_str(o, key, "", kbu_json_str(j)); break;
	case KBU_JSON_NUMBER:
		if (kbu_json_u64(j, &u) == 0)
			kbu_u64(o, key, "", u);
		else if (kbu_json_i64(j, &i) == 0)
			kbu_i64(o, key, "", i);
		break;
	case KBU_JSON_ARRAY: {
		struct kbu_node *l = kbu_list(o, key, "");
		for (size_t k = 0; k < kbu_json_len(j); k++)
			json_item(l, kbu_json_at(j, k));
		break;
	}
	case KBU_JSON_OBJECT: {
		struct kbu_node *c = kbu_obj(o, key, "");
		for (size_t k = 0; k < kbu_json_len(j); k++)
			json_field(c, kbu_json_key(j, k), kbu_json_at(j, k));
		break;
	}
	default: break;
	}
}

/* ---- memory facts ---- */

static const struct kbu_os_profile *profile(struct run *v)
{
	if (!v->prof_tried) {
		v->prof_tried = 1;
		struct kbu_err e = {0};
		v->prof = kbu_ctx_profile(v->ctx, v->opts ? v->opts->os : NULL,
					  v->opts ? v->opts->profile : NULL, &e);
		if (!v->prof)
			snprintf(v->prof_err, sizeof v->prof_err, "%s", e.msg);
	}
	return v->prof;
}

static const char *os_name(struct run *v)
{
	const struct kbu_os_profile *p = profile(v);
	return p ? kbu_os_name(p) : "unknown";
}

/* The OS as a porter names it: the profile's description up to its '/'
 * ("Linux/x86-64 6.1" -> "Linux"), else the profile's name. */
static const char *os_display(struct run *v, char *buf, size_t len)
{
	const struct kbu_os_profile *p = profile(v);
	const char *d = p ? kbu_os_get(p, "profile", "description") : NULL;
	if (!d || !*d)
		return os_name(v);
	snprintf(buf, len, "%.*s", (int)strcspn(d, "/ "), d);
	return buf;
}

static const struct kbu_triage_kstate *kstate(struct run *v)
{
	if (!v->ks_read) {
		v->ks_read = 1;
		memset(&v->ks, 0, sizeof v->ks);
		if (profile(v) && v->ctx->mem)
			kbu_triage_read_kstate(v->ctx->mem, v->ctx->kernel, v->syms, v->prof, v->slide,
					       &v->ks);
	}
	return &v->ks;
}

/* A kernel variable of a role, as an unsigned number of the role's size; 0 found. */
static int role_var(struct run *v, const char *role, uint32_t size, uint64_t *out, char *sym,
		    size_t symlen)
{
	const struct kbu_os_profile *p = profile(v);
	char w[64];
	if (!p || !v->ctx->mem)
		return -1;
	for (size_t i = 0; kbu_os_role_word(p, role, i, w, sizeof w); i++) {
		const struct kbu_sym *s = v->syms ? kbu_sym_by_name(v->syms, w) : NULL;
		if (!s)
			continue;
		if (sym)
			snprintf(sym, symlen, "%s", w);
		struct kbu_err e = {0};
		return kbu_read_kva_uint(v->ctx->mem, v->ctx->kernel, s->addr + (uint64_t)v->slide, size,
					 out, &e);
	}
	return -1;
}

/* The kernel's log: its message buffer, else the console text handed in. */
static const char *kernel_log(struct run *v)
{
	if (v->log_read)
		return v->log ? v->log : "";
	v->log_read = 1;
	const struct kbu_os_profile *p = profile(v);
	if (p && v->ctx->mem) {
		struct kbu_dmesg d;
		struct kbu_err e = {0};
		memset(&d, 0, sizeof d);
		if (kbu_dmesg_read(v->ctx->mem, v->ctx->kernel, v->syms, p, &d, &e) == 0 && d.text &&
		    d.text[0]) {
			v->log = d.text;
			d.text = NULL;
			snprintf(v->log_from, sizeof v->log_from, "message buffer");
		}
		kbu_dmesg_free(&d);
	}
	if (!v->log && live_str(v, "log")) {
		v->log = strdup(live_str(v, "log"));
		snprintf(v->log_from, sizeof v->log_from, "console");
	}
	return v->log ? v->log : "";
}

struct lines {
	char **l;
	size_t n;
};

static void lines_free(struct lines *ls)
{
	for (size_t i = 0; i < ls->n; i++)
		free(ls->l[i]);
	free(ls->l);
	ls->l = NULL;
	ls->n = 0;
}

/* Log lines matching an extended regex (case-insensitive with icase), without
 * the console timestamp, each once. */
static struct lines log_lines(struct run *v, const char *pattern, int icase)
{
	struct lines out = {0};
	regex_t rx;
	if (regcomp(&rx, pattern, REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0)) != 0)
		return out;
	const char *p = kernel_log(v);
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *line = strndup(p, len);
		p += len + (nl ? 1 : 0);
		if (!line)
			break;
		char *t = line;
		if (*t == '[') {
			char *q = t + 1;
			while (*q == ' ' || *q == '.' || (*q >= '0' && *q <= '9'))
				q++;
			if (*q == ']') {
				t = q + 1;
				while (*t == ' ')
					t++;
			}
		}
		size_t tl = strlen(t);
		while (tl && (t[tl - 1] == '\r' || t[tl - 1] == ' '))
			t[--tl] = '\0';
		int dup = 0;
		for (size_t i = 0; i < out.n && !dup; i++)
			dup = strcmp(out.l[i], t) == 0;
		if (!dup && regexec(&rx, t, 0, NULL, 0) == 0) {
			char **nl2 = realloc(out.l, (out.n + 1) * sizeof *nl2);
			if (nl2) {
				out.l = nl2;
				out.l[out.n++] = strdup(t);
			}
		}
		free(line);
	}
	regfree(&rx);
	return out;
}

/* Records log lines as a fact (list) and as evidence (the last `show` lines). */
static void log_fact(struct run *v, const struct lines *ls, size_t show)
{
	if (!ls->n)
		return;
	struct kbu_node *l = kbu_list(v->facts, "log", "");
	for (size_t i = 0; i < ls->n; i++)
		kbu_item_str(l, ls->l[i]);
	char text[4096] = "";
	size_t from = ls->n > show ? ls->n - show : 0;
	for (size_t i = from; i < ls->n; i++)
		cat(text, sizeof text, "%s%s", i > from ? "\n" : "", ls->l[i]);
	evidence(v, "kernel log", "%s", text);
}

/* "a; b; c" of quoted lines. */
static void quoted(char *buf, size_t len, const struct lines *ls, size_t from)
{
	buf[0] = '\0';
	for (size_t i = from; i < ls->n; i++)
		cat(buf, len, "%s\"%s\"", i > from ? "; " : "", ls->l[i]);
}

/* ---- the end state ---- */

static void end_text(struct run *v, char *buf, size_t len)
{
	const char *k = end_kind(v);
	uint64_t cpu;
	char on[32] = "";
	if (live_u64(v, "end.cpu", &cpu) == 0)
		snprintf(on, sizeof on, " on CPU %" PRIu64, cpu);
	const char *where = live_str(v, "end.where");
	if (strcmp(k, "panic") == 0) {
		const char *fn = live_str(v, "end.function");
		const char *msg = live_str(v, "end.message");
		snprintf(buf, len, "panic%s in %s", on, fn ? fn : where ? where : "?");
		if (msg)
			cat(buf, len, ": \"%s\"", msg);
		if (kbu_json_get_bool(kbu_json_get(v->live, "end"), "ran_on", 0))
			cat(buf, len, " (then let run on through the panic)");
	} else if (strcmp(k, "idle") == 0) {
		snprintf(buf, len, "idle loop (%s)%s", where ? where : "?", on);
	} else if (strcmp(k, "timeout") == 0) {
		double s = 0;
		kbu_json_double(live(v, "end.seconds"), &s);
		snprintf(buf, len, "still running after %g s, interrupted in %s%s", s,
			 where ? where : "?", on);
	} else if (strcmp(k, "reset") == 0) {
		snprintf(buf, len, "not started (at the reset vector)");
	} else if (strcmp(k, "here") == 0) {
		snprintf(buf, len, "stopped in %s%s (inspected where it stands)", where ? where : "?", on);
	} else if (strcmp(k, "entry") == 0) {
		snprintf(buf, len, "at the %s (first instruction of the kernel)", where ? where : "entry");
	} else if (strcmp(k, "exited") == 0) {
		snprintf(buf, len, "the guest exited");
	} else {
		snprintf(buf, len, "stopped in %s%s", where ? where : "?", on);
	}
}

/* 'f (file:line) <- g <- h' from the end state's backtrace. */
static void chain_text(struct run *v, char *buf, size_t len)
{
	const struct kbu_json *bt = live(v, "end.backtrace");
	buf[0] = '\0';
	for (size_t i = 0; i < kbu_json_len(bt); i++) {
		const struct kbu_json *f = kbu_json_at(bt, i);
		const char *fn = kbu_json_get_str(f, "function", "?");
		const char *src = kbu_json_get_str(f, "source", NULL);
		cat(buf, len, "%s%s", i ? " <- " : "", fn);
		if (src && *src)
			cat(buf, len, " (%s)", src);
	}
}

/* ---- rendering ---- */

static const char *result_word(int status)
{
	return status == KBU_VERDICT_OK ? "no problem"
	       : status == KBU_VERDICT_PROBLEM ? "problem" : "undecided";
}

static void render(struct run *v)
{
	struct kbu_node *root = v->root;
	if (v->prof)
		kbu_str(root, "os", "", kbu_os_name(v->prof));
	else
		kbu_null(root, "os", "");
	kbu_u64(root, "status", "", (uint64_t)v->status);
	struct kbu_node *vd = kbu_obj(root, "verdict", "");
	kbu_str(vd, "result", "", result_word(v->status));
	kbu_str(vd, "cause", "", v->cause);
	if (v->next[0])
		kbu_str(vd, "next", "", v->next);
	else
		kbu_null(vd, "next", "");
	if (v->code)
		kbu_str(vd, "code", "", v->code);
	else
		kbu_null(vd, "code", "");
	const struct kbu_json *end = kbu_json_get(v->live, "end");
	if (end)
		json_field(root, "end_state", end);
	else
		kbu_null(root, "end_state", "");
	struct kbu_node *el = kbu_list(root, "evidence", "");
	for (size_t i = 0; i < v->nev; i++) {
		struct kbu_node *row = kbu_row(el);
		kbu_str(row, "label", "", v->ev[i].label);
		kbu_str(row, "text", "", v->ev[i].text);
	}

	/* The text, laid out as a porter reads it. */
	struct kbu_node *t = kbu_obj(root, "text", "");
	kbu_textline(t, "%s: %s", v->q->name, v->q->summary);
	if (end) {
		char et[1024], ch[2048];
		end_text(v, et, sizeof et);
		kbu_textline(t, "end state   %s", et);
		chain_text(v, ch, sizeof ch);
		if (ch[0])
			kbu_textline(t, "            %s", ch);
	}
	if (v->nev) {
		size_t w = 0;
		for (size_t i = 0; i < v->nev; i++)
			if (strlen(v->ev[i].label) > w)
				w = strlen(v->ev[i].label);
		if (w > LABEL_WIDTH_MAX)
			w = LABEL_WIDTH_MAX;
		kbu_textline(t, "%s", "");
		kbu_textline(t, "Evidence");
		for (size_t i = 0; i < v->nev; i++) {
			const char *s = v->ev[i].text;
			const char *label = v->ev[i].label;
			do {
				const char *nl = strchr(s, '\n');
				int n = nl ? (int)(nl - s) : (int)strlen(s);
				kbu_textline(t, "  %-*s  %.*s", (int)w, label, n, s);
				label = "";
				s = nl ? nl + 1 : NULL;
			} while (s);
		}
	}
	for (size_t i = 0; i < v->nfi; i++)
		kbu_finding(t, KBU_SEV_WARN, v->fi[i].code, "%s", v->fi[i].msg);
	/* A section of its own: the renderer sets it apart by a blank line. */
	struct kbu_node *tv = kbu_obj(root, "text_verdict", "");
	kbu_textline(tv, "VERDICT: %s: %s", result_word(v->status),
		     v->cause[0] ? v->cause : "(no cause given)");
	if (v->next[0])
		kbu_textline(tv, "next step: %s", v->next);
}

/* ---- panic-triage ---- */

/* Known panics of microVM bring-up: text in the message, cause, next step. */
static const struct {
	const char *text, *cause, *next;
} known_panics[] = {
	{"TSC not initialized", "the TSC frequency was still 0 when the local APIC code needed it",
	 "run the tsc-not-initialized recipe: it shows why no CPUID leaf gives the frequency"},
	{"Unknown MP Config Entry",
	 "the MP configuration table the kernel walked holds an entry of an unknown type",
	 "run the mptable-walk recipe: it walks the firmware's table as the kernel does"},
	{"Unable to mount root fs",
	 "the kernel found no root file system: no disk and no initramfs were given",
	 "give it a root: an initramfs (-initrd FILE), or a disk (-drive file=IMG,if=none,id=d "
	 "-device virtio-blk-device,drive=d) with root=/dev/vda on the command line"},
	{"page fault", "the kernel touched an address no page table maps",
	 "look at the faulting address (CR2, the 'fault virtual address' line) with `kbu vtop` "
	 "and the code that made it; device MMIO outside the mapped range is the usual cause"},
};

/* Trap and exception entry frames (BSD alltraps/calltrap, Linux exc_*). */
static int is_trap_frame(const char *fn)
{
	static const char *const frames[] = {"alltraps", "calltrap", "asm_exc_page_fault",
					     "exc_page_fault", "asm_exc_general_protection",
					     "exc_general_protection"};
	for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++)
		if (strcmp(fn, frames[i]) == 0)
			return 1;
	return 0;
}

static void q_panic(struct run *v)
{
	const char *kind = end_kind(v);
	struct lines lp = log_lines(v, "^(Kernel panic - not syncing|panic: |Fatal trap)", 0);
	struct lines trap = {0};
	if (strcmp(kind, "panic") == 0) {
		char msgbuf[512] = "";
		const char *msg = live_str(v, "end.message");
		if (!msg && lp.n) {
			const char *s = strstr(lp.l[lp.n - 1], ": ");
			snprintf(msgbuf, sizeof msgbuf, "%s", s ? s + 2 : lp.l[lp.n - 1]);
			msg = msgbuf;
		}
		kbu_str(v->facts, "message", "", msg ? msg : "");
		evidence(v, "message", "%s", msg ? msg : "(unknown)");
		const char *entry = live_str(v, "end.entry");
		kbu_str(v->facts, "entry", "", entry ? entry : "");
		evidence(v, "stopped at", "%s", entry ? entry : "(unknown)");
		const char *fn = live_str(v, "end.function");
		if (fn)
			kbu_str(v->facts, "function", "", fn);
		else
			kbu_null(v->facts, "function", "");
		evidence(v, "raised by", "%s", fn ? fn : "(unknown)");

		/* The call chain: the unwound frames, else the kernel's own trace. */
		const char *chain[32];
		size_t nch = 0;
		const struct kbu_json *bt = live(v, "end.backtrace");
		for (size_t i = 0; i < kbu_json_len(bt) && nch < 32; i++)
			chain[nch++] = kbu_json_get_str(kbu_json_at(bt, i), "function", "?");
		const struct kbu_json *kt = live(v, "kernel_trace");
		char names[32][128];
		if (nch < 3 && kbu_json_len(kt)) {
			char tt[4096] = "";
			size_t nn = 0;
			for (size_t i = 0; i < kbu_json_len(kt); i++) {
				const char *l = kbu_json_str(kbu_json_at(kt, i));
				if (!l)
					continue;
				cat(tt, sizeof tt, "%s%s", i ? "\n" : "", l);
				if (l[0] == '?' || nn >= 32)
					continue;
				size_t n = strcspn(l, "+ ");
				snprintf(names[nn++], sizeof names[0], "%.*s", (int)n, l);
			}
			evidence(v, "kernel's call trace", "%s", tt);
			/* frames below the entry are its own printing */
			size_t from = 0;
			for (size_t i = 0; entry && i < nn; i++)
				if (strcmp(names[i], entry) == 0) {
					from = i;
					break;
				}
			const char *first = nch ? chain[0] : NULL;
			nch = 0;
			if (first)
				chain[nch++] = first;
			for (size_t i = from; i < nn && nch < 32; i++)
				if (!nch || strcmp(names[i], chain[nch - 1]) != 0)
					chain[nch++] = names[i];
		}
		struct kbu_node *cl = kbu_list(v->facts, "call_chain", "");
		char chtext[2048] = "";
		for (size_t i = 0; i < nch; i++) {
			kbu_item_str(cl, chain[i]);
			cat(chtext, sizeof chtext, "%s%s", i ? " <- " : "", chain[i]);
		}
		evidence(v, "call chain", "%s", chtext);
		trap = log_lines(v, "(Fatal trap|fault virtual address|instruction pointer)", 0);
		const char *fault = NULL;
		if (trap.n) {
			struct kbu_node *tl = kbu_list(v->facts, "trap", "");
			char tt[2048] = "";
			for (size_t i = 0; i < trap.n; i++) {
				kbu_item_str(tl, trap.l[i]);
				cat(tt, sizeof tt, "%s%s", i ? "\n" : "", trap.l[i]);
				if (strstr(trap.l[i], "fault virtual address"))
					fault = trap.l[i];
			}
			evidence(v, "trap report", "%s", tt);
		}
		char where[256];
		snprintf(where, sizeof where, "%s", fn ? fn : nch > 1 ? chain[1] : entry ? entry : "?");
		for (size_t i = nch; i-- > 0;)
			if (is_trap_frame(chain[i]) && i + 1 < nch) {
				kbu_str(v->facts, "faulting_function", "", chain[i + 1]);
				evidence(v, "trapped in", "%s", chain[i + 1]);
				cat(where, sizeof where, " (trapped in %s)", chain[i + 1]);
				break;
			}
		char head[2048];
		struct kbu_triage_trap tr;
		if (!fn && !nch) {
			/* Memory alone (a dump): the message and the trap report the log keeps. */
			snprintf(head, sizeof head, "the kernel panicked: %s", msg ? msg : "(no message)");
			if (kbu_triage_trap_in_log(kernel_log(v), &tr)) {
				char sym[160] = "an unknown place";
				if (tr.have_ip && v->syms)
					kbu_sym_format(v->syms, tr.ip - (uint64_t)v->slide, sym, sizeof sym);
				cat(head, sizeof head, " (%s in %s", tr.title, sym);
				if (tr.have_fault_addr)
					cat(head, sizeof head, ", fault address 0x%" PRIx64, tr.fault_addr);
				cat(head, sizeof head, ")");
			}
			fault = NULL;
		} else {
			snprintf(head, sizeof head, "panic \"%s\" raised in %s (", msg ? msg : "?", where);
			for (size_t i = 0; i < nch && i < 6; i++)
				cat(head, sizeof head, "%s%s", i ? " <- " : "", chain[i]);
			cat(head, sizeof head, ")");
		}
		if (fault) {
			/* squeeze the runs of blanks of the aligned trap report */
			char sq[256];
			size_t o = 0;
			for (const char *s = fault; *s && o + 1 < sizeof sq; s++)
				if (!(*s == ' ' && o && sq[o - 1] == ' '))
					sq[o++] = *s;
			sq[o] = '\0';
			cat(head, sizeof head, "; %s", sq);
		}
		for (size_t i = 0; i < sizeof known_panics / sizeof known_panics[0]; i++)
			if (msg && strstr(msg, known_panics[i].text)) {
				decide(v, KBU_VERDICT_PROBLEM, "panic.known", known_panics[i].next, "%s: %s",
				       head, known_panics[i].cause);
				goto out;
			}
		const char *src = kbu_json_get_str(kbu_json_at(bt, 1), "source", NULL);
		char next[512];
		snprintf(next, sizeof next, "read the check in %s%s%s and why its condition failed", where,
			 src && *src ? " at " : "", src && *src ? src : "");
		decide(v, KBU_VERDICT_PROBLEM, "panic", next, "%s", head);
		goto out;
	}
	if (strcmp(kind, "idle") == 0) {
		decide(v, KBU_VERDICT_OK, NULL, NULL, "no panic: the kernel reached its idle loop (%s)",
		       live_str(v, "end.where") ? live_str(v, "end.where") : "?");
		goto out;
	}
	if (lp.n) {
		struct kbu_node *l = kbu_list(v->facts, "log", "");
		char tt[2048] = "";
		for (size_t i = 0; i < lp.n; i++) {
			kbu_item_str(l, lp.l[i]);
			cat(tt, sizeof tt, "%s%s", i ? "\n" : "", lp.l[i]);
		}
		evidence(v, "panic in the log", "%s", tt);
		decide(v, KBU_VERDICT_PROBLEM, "panic.not_stopped",
		       "run it again from boot so the panic entry can be caught",
		       "the kernel log says it panicked (%s) but the guest was not stopped on the panic "
		       "entry", lp.l[lp.n - 1]);
		goto out;
	}
	if (strcmp(kind, "timeout") == 0) {
		double s = 0;
		kbu_json_double(live(v, "end.seconds"), &s);
		decide(v, KBU_VERDICT_UNDECIDED, NULL,
		       "give it longer (--timeout), or use a recipe about what it waits for "
		       "(timecounter-stuck, where-are-my-cpus)",
		       "no panic within %g s; the guest was running in %s", s,
		       live_str(v, "end.where") ? live_str(v, "end.where") : "?");
		goto out;
	}
	char et[512];
	end_text(v, et, sizeof et);
	decide(v, KBU_VERDICT_UNDECIDED, NULL,
	       "run without --here so the recipe boots it to its end state",
	       "the guest is not at a panic (%s)", et);
out:
	lines_free(&lp);
	lines_free(&trap);
}

/* ---- tsc-not-initialized ---- */

struct cpuid_chain {
	int have;              /* CPUID was run */
	uint64_t tsc_hz;       /* 0: none */
	int have_max, have_hv;
	uint32_t max_leaf, hv_max;
	char why[512];
};

/* The CPUID leaves the debugger ran, as a kbu_cpuid_set. */
static int live_cpuid(struct run *v, struct kbu_cpuid_set *set)
{
	const struct kbu_json *c = live(v, "cpuid");
	memset(set, 0, sizeof *set);
	if (kbu_json_type(c) != KBU_JSON_OBJECT)
		return -1;
	for (size_t i = 0; i < kbu_json_len(c); i++) {
		const char *key = kbu_json_key(c, i);
		const struct kbu_json *regs = kbu_json_at(c, i);
		char spec[160];
		uint64_t r[4];
		if (kbu_json_len(regs) != 4)
			continue;
		int ok = 1;
		for (size_t k = 0; k < 4; k++)
			ok &= kbu_json_u64(kbu_json_at(regs, k), &r[k]) == 0 && r[k] <= 0xffffffffu;
		if (!ok)
			continue;
		snprintf(spec, sizeof spec, "%s=0x%" PRIx64 ",0x%" PRIx64 ",0x%" PRIx64 ",0x%" PRIx64, key,
			 r[0], r[1], r[2], r[3]);
		struct kbu_cpuid_leaf leaf;
		struct kbu_err e = {0};
		if (kbu_cpuid_parse_leaf(spec, &leaf, &e) == 0)
			kbu_cpuid_set_add(set, &leaf, &e);
	}
	return 0;
}

static void cpuid_chain(struct run *v, struct cpuid_chain *ch)
{
	memset(ch, 0, sizeof *ch);
	struct kbu_cpuid_set set;
	if (live_cpuid(v, &set) < 0) {
		const char *why = live_str(v, "cpuid_error");
		kbu_null(v->facts, "cpuid", "");
		evidence(v, "CPUID", "not run: %s", why ? why : "the debugger gave no CPUID values");
		snprintf(ch->why, sizeof ch->why, "%s", why ? "CPUID could not be run"
			 : "what CPUID offers is not known here (run kbu cpuid tsc on the live vCPU)");
		return;
	}
	ch->have = 1;
	const struct kbu_cpuid_leaf *l0 = kbu_cpuid_find(&set, 0, 0);
	const struct kbu_cpuid_leaf *h0 = kbu_cpuid_find(&set, 0x40000000, 0);
	if (l0) {
		ch->have_max = 1;
		ch->max_leaf = l0->eax;
		kbu_u64(v->facts, "cpu_high", "", l0->eax);
		evidence(v, "cpu_high (leaf 0 EAX)", "0x%x  %s", l0->eax,
			 l0->eax >= 0x15 ? "(leaves 0x15/0x16 exist)" : "(below 0x15: no leaf 0x15/0x16)");
	}
	if (h0 && h0->eax >= 0x40000000) {
		ch->have_hv = 1;
		ch->hv_max = h0->eax;
		kbu_u64(v->facts, "hv_high", "", h0->eax);
		evidence(v, "hv_high (0x40000000 EAX)", "0x%x  %s", h0->eax,
			 h0->eax >= 0x40000010 ? "(leaf 0x40000010 exists)"
					       : "(stops below 0x40000010: no TSC leaf)");
		char sig[13];
		kbu_cpuid_vendor(h0, 1, sig);
		kbu_str(v->facts, "hypervisor", "", sig);
		evidence(v, "hypervisor", "%s", sig);
	} else {
		kbu_null(v->facts, "hv_high", "");
		evidence(v, "hv_high (0x40000000 EAX)", "none  (stops below 0x40000010: no TSC leaf)");
	}
	/* The chain itself, as libkbu's cpuid-decode --tsc walks it. */
	struct kbu_report *tr = kbu_report_new("cpuid");
	kbu_cpuid_tsc_report(kbu_report_root(tr), &set);
	char *js = kbu_report_render(tr, 1);
	struct kbu_err e = {0};
	struct kbu_json *j = js ? kbu_json_parse(js, strlen(js), &e) : NULL;
	const struct kbu_json *steps = kbu_json_path(j, "tsc.steps");
	char st[2048] = "";
	struct kbu_node *sl = kbu_list(v->facts, "cpuid_steps", "");
	for (size_t i = 0; i < kbu_json_len(steps); i++) {
		const struct kbu_json *s = kbu_json_at(steps, i);
		struct kbu_node *row = kbu_row(sl);
		for (size_t k = 0; k < kbu_json_len(s); k++)
			json_field(row, kbu_json_key(s, k), kbu_json_at(s, k));
		cat(st, sizeof st, "%s%" PRIu64 ". %s %s -> %s", i ? "\n" : "",
		    kbu_json_get_u64(s, "step", i + 1), kbu_json_get_str(s, "check", ""),
		    kbu_json_get_str(s, "answer", ""), kbu_json_get_str(s, "result", ""));
	}
	if (st[0])
		evidence(v, "CPUID chain", "%s", st);
	ch->tsc_hz = kbu_json_get_u64(kbu_json_get(j, "tsc"), "tsc_hz", 0);
	if (ch->tsc_hz) {
		kbu_u64(v->facts, "cpuid_tsc_hz", "", ch->tsc_hz);
		evidence(v, "CPUID TSC frequency", "%" PRIu64 " Hz", ch->tsc_hz);
	} else {
		kbu_null(v->facts, "cpuid_tsc_hz", "");
		evidence(v, "CPUID TSC frequency", "none");
	}
	kbu_json_free(j);
	free(js);
	kbu_report_free(tr);

	if (ch->tsc_hz) {
		snprintf(ch->why, sizeof ch->why, "CPUID gives %" PRIu64 " Hz", ch->tsc_hz);
		return;
	}
	if (ch->have_hv && ch->hv_max < 0x40000010)
		cat(ch->why, sizeof ch->why, "the hypervisor leaves stop at 0x%x so the 0x40000010 TSC "
		    "leaf is absent", ch->hv_max);
	else if (!ch->have_hv)
		cat(ch->why, sizeof ch->why, "there are no hypervisor leaves");
	if (ch->have_max)
		cat(ch->why, sizeof ch->why, "%s%s", ch->why[0] ? ", and " : "",
		    ch->max_leaf < 0x15 ? "" : "leaves 0x15/0x16 give no frequency");
	if (ch->have_max && ch->max_leaf < 0x15)
		cat(ch->why, sizeof ch->why, "cpu_high 0x%x is below 0x15 (no leaves 0x15/0x16)",
		    ch->max_leaf);
	cat(ch->why, sizeof ch->why, ": no CPUID path gives a frequency");
}

static const char next_cpuid[] =
	"give the VM a CPUID frequency leaf: under KVM `-cpu host,+invtsc,tsc-frequency=HZ` "
	"(QEMU then publishes leaf 0x40000010 with the TSC kHz); TCG has none, so otherwise "
	"calibrate the TSC against the i8254 before the first user of tsc_freq";

static void q_tsc(struct run *v)
{
	const struct kbu_os_profile *p = profile(v);
	uint64_t raw = 0, freq = 0;
	char sym[64] = "";
	int have_freq = 0;
	if (p) {
		uint32_t size = (uint32_t)kbu_os_role_num(p, "tsc_freq_size", 8);
		uint64_t unit = kbu_os_role_num(p, "tsc_freq_unit", 1);
		if (size >= 1 && size <= 8 && role_var(v, "tsc_freq", size, &raw, sym, sizeof sym) == 0) {
			have_freq = 1;
			freq = raw * unit;
			kbu_str(v->facts, "tsc_var", "", sym);
			kbu_u64(v->facts, "tsc_hz", "", freq);
			char lab[96];
			snprintf(lab, sizeof lab, "kernel's %s", sym);
			if (raw)
				evidence(v, lab, "%" PRIu64 " (%.3f MHz)", raw, (double)freq / 1e6);
			else
				evidence(v, lab, "0 (not set)");
		}
	}
	struct cpuid_chain ch;
	cpuid_chain(v, &ch);
	struct lines tl = log_lines(v, "^(tsc|TSC)[: ]|clocksource.*tsc|TSC not initialized", 0);
	log_fact(v, &tl, 50);
	const char *kind = end_kind(v);
	const char *msg = live_str(v, "end.message");
	int panicked = strcmp(kind, "panic") == 0;
	if (panicked) {
		kbu_str(v->facts, "panic", "", msg ? msg : "");
		evidence(v, "panic", "%s", msg ? msg : "");
	}
	int no_cpuid = ch.have && !ch.tsc_hz;
	/* A kernel that calibrates itself logs how ("tsc: Detected ... MHz"). */
	int calibrates = 0;
	for (size_t i = 0; i < tl.n; i++)
		calibrates |= strncmp(tl.l[i], "tsc:", 4) == 0;

	if ((msg && strstr(msg, "TSC not initialized")) ||
	    (have_freq && !freq && panicked && msg && strstr(msg, "TSC"))) {
		const char *fn = live_str(v, "end.function");
		decide(v, KBU_VERDICT_PROBLEM, "tsc.asserted_unset", next_cpuid,
		       "%s asserted that the TSC frequency is known (\"%s\") before anything set it: %s, "
		       "and nothing calibrated the TSC first", fn ? fn : "the kernel", msg, ch.why);
		goto out;
	}
	if (have_freq && calibrates) {
		struct lines failed = {0}, detected = {0};
		for (size_t i = 0; i < tl.n; i++) {
			const char *l = tl.l[i];
			if (strstr(l, "failed") || strstr(l, "Unable") || strstr(l, "unstable") ||
			    strstr(l, "No reference")) {
				char **nl = realloc(failed.l, (failed.n + 1) * sizeof *nl);
				if (nl) {
					failed.l = nl;
					failed.l[failed.n++] = strdup(l);
				}
			}
			if (strstr(l, "Detected") || strstr(l, "Refined TSC")) {
				char **nl = realloc(detected.l, (detected.n + 1) * sizeof *nl);
				if (nl) {
					detected.l = nl;
					detected.l[detected.n++] = strdup(l);
				}
			}
		}
		char q1[1024], disp[32];
		if (freq == 0 || (failed.n && !detected.n)) {
			quoted(q1, sizeof q1, &failed, 0);
			decide(v, KBU_VERDICT_PROBLEM, "tsc.calibration_failed",
			       "give the frequency on the command line (tsc_early_khz=KHZ), or run under "
			       "KVM with `-cpu host,+invtsc,tsc-frequency=HZ` so leaf 0x40000010 carries it",
			       "%s calibrates the TSC itself (%s) and failed: %s; %s = %" PRIu64,
			       os_display(v, disp, sizeof disp), ch.why, failed.n ? q1 : "no 'tsc: Detected' line", sym, raw);
		} else {
			quoted(q1, sizeof q1, &detected, 0);
			struct lines cmd = log_lines(v, "^Command line: .*tsc_early_khz=", 0);
			const char *unstable = NULL;
			for (size_t i = 0; i < tl.n; i++)
				if (strstr(tl.l[i], "unstable"))
					unstable = tl.l[i];
			char note[512] = "";
			if (unstable)
				snprintf(note, sizeof note, "; note: it later logged \"%s\", so the TSC is not "
					 "its clocksource", unstable);
			decide(v, KBU_VERDICT_OK, NULL, NULL, "%s has a TSC frequency, %s: %s (%.3f MHz)%s%s%s",
			       os_display(v, disp, sizeof disp), cmd.n ? "given on the command line (tsc_early_khz=)" : "calibrated",
			       detected.n ? q1 : "its TSC frequency is set", (double)freq / 1e6,
			       no_cpuid ? "; CPUID gives none (" : "", no_cpuid ? ch.why : "",
			       no_cpuid ? ")" : "");
			if (note[0])
				cat(v->cause, sizeof v->cause, "%s", note);
			lines_free(&cmd);
		}
		lines_free(&failed);
		lines_free(&detected);
		goto out;
	}
	if (freq) {
		if (!no_cpuid)
			decide(v, KBU_VERDICT_OK, NULL, NULL, "the TSC frequency is set: %.3f MHz, from CPUID",
			       (double)freq / 1e6);
		else
			decide(v, KBU_VERDICT_OK, NULL, NULL, "the TSC frequency is set: %.3f MHz, not from "
			       "CPUID (%s): the kernel calibrated it", (double)freq / 1e6, ch.why);
		goto out;
	}
	if (have_freq) {
		decide(v, KBU_VERDICT_PROBLEM, "tsc.zero", next_cpuid, "the kernel's TSC frequency is 0: %s",
		       ch.why);
		goto out;
	}
	decide(v, KBU_VERDICT_UNDECIDED, NULL, "name the kernel's TSC frequency variable (profile role "
	       "tsc_freq) and re-run",
	       "the %s profile's TSC frequency variable (%s) is not in this kernel, so its TSC "
	       "frequency cannot be read; %s", os_name(v),
	       p && kbu_os_role(p, "tsc_freq") ? kbu_os_role(p, "tsc_freq") : "none named", ch.why);
out:
	lines_free(&tl);
}

/* ---- timecounter-stuck ---- */

/* "'dummy' (1000000 Hz, ...)" -> "'dummy'" */
static void short_text(const char *text, char *buf, size_t len)
{
	const char *p = strstr(text ? text : "", " (");
	size_t n = p ? (size_t)(p - text) : strlen(text ? text : "");
	snprintf(buf, len, "%.*s", (int)n, text ? text : "");
}

static int is_placeholder(struct run *v, const char *name)
{
	const struct kbu_os_profile *p = profile(v);
	return name && p && kbu_os_role_has(p, "timesource_placeholders", name);
}

static void q_timecounter(struct run *v)
{
	const struct kbu_json *w = live(v, "watch.timesource");
	int watched = kbu_json_get_bool(w, "watched", 0);
	const struct kbu_triage_kstate *ks = kstate(v);
	const char *symbol = kbu_json_get_str(w, "symbol", ks->timesource.symbol[0]
							     ? ks->timesource.symbol : NULL);
	/* Now: memory first, the watch's last reading else. */
	const char *name = ks->ts_name[0] ? ks->ts_name : kbu_json_get_str(w, "now", NULL);
	char now_text[256];
	if (ks->ts_name[0]) {
		snprintf(now_text, sizeof now_text, "'%s'", ks->ts_name);
		if (ks->ts_have_freq)
			cat(now_text, sizeof now_text, " (%" PRIu64 " Hz%s", ks->ts_freq,
			    ks->ts_have_quality ? "" : ")");
		if (ks->ts_have_quality)
			cat(now_text, sizeof now_text, "%s quality %" PRId64 ")",
			    ks->ts_have_freq ? "," : " (", ks->ts_quality);
	} else {
		snprintf(now_text, sizeof now_text, "%s", kbu_json_get_str(w, "now_text", "(unreadable)"));
	}
	if (!symbol) {
		decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "could not read the time source: %s",
		       profile(v) ? ks->timesource.why : v->prof_err);
		return;
	}
	if (!watched)
		evidence(v, "watched", "no: the guest had already stopped; only its state now is known");
	kbu_str(v->facts, "variable", "", symbol);
	evidence(v, "variable", "%s", symbol);
	if (name)
		kbu_str(v->facts, "now", "", name);
	else
		kbu_null(v->facts, "now", "");
	char lab[96];
	snprintf(lab, sizeof lab, "%s now", symbol);
	evidence(v, lab, "%s", now_text);
	const char *start_text = kbu_json_get_str(w, "start_text", now_text);
	char start[128];
	short_text(start_text, start, sizeof start);
	const struct kbu_json *changes = kbu_json_get(w, "changes");
	if (watched) {
		kbu_str(v->facts, "at_start", "", start);
		evidence(v, "at the start", "%s", start_text);
		struct kbu_node *cl = kbu_list(v->facts, "changes", "");
		char ct[2048] = "";
		for (size_t i = 0; i < kbu_json_len(changes); i++) {
			const struct kbu_json *c = kbu_json_at(changes, i);
			struct kbu_node *row = kbu_row(cl);
			for (size_t k = 0; k < kbu_json_len(c); k++)
				json_field(row, kbu_json_key(c, k), kbu_json_at(c, k));
			cat(ct, sizeof ct, "%s%s -> %s on CPU %" PRIu64 " at %s", i ? "\n" : "",
			    kbu_json_get_str(c, "old", "?"), kbu_json_get_str(c, "new", "?"),
			    kbu_json_get_u64(c, "cpu", 0), kbu_json_get_str(c, "where", "?"));
		}
		evidence(v, "changes", "%s", ct[0] ? ct : "none");
	}
	const struct kbu_json *regs = kbu_json_get(w, "registered");
	const char *entry = kbu_json_get_str(w, "register_entry", "the registration entry");
	int have_regs = kbu_json_type(regs) == KBU_JSON_ARRAY;
	char rt[1024] = "";
	for (size_t i = 0; i < kbu_json_len(regs); i++) {
		const char *s = kbu_json_str(kbu_json_at(regs, i));
		cat(rt, sizeof rt, "%s%s", i ? ", " : "", s ? s : "?");
	}
	if (have_regs) {
		json_field(v->facts, "registered", regs);
		if (rt[0])
			evidence(v, watched ? "registered" : "registered now", "%s", rt);
		else
			evidence(v, watched ? "registered" : "registered now", "none (%s never called)", entry);
	}
	if (watched && kbu_json_get_str(w, "summary", NULL))
		kbu_str(v->facts, "summary", "", kbu_json_get_str(w, "summary", ""));
	struct lines tl = log_lines(v, "(timecounter|clocksource|calibration failed|clocks might be)", 1);
	log_fact(v, &tl, 8);
	const char *failed = NULL, *switched = NULL;
	for (size_t i = 0; i < tl.n; i++) {
		if (strstr(tl.l[i], "ailed"))
			failed = tl.l[i];
		if (strstr(tl.l[i], "Switched to clocksource"))
			switched = tl.l[i];
	}
	int stuck = !name || is_placeholder(v, name);
	if (!stuck) {
		char chain[1024] = "";
		if (watched && kbu_json_len(changes)) {
			cat(chain, sizeof chain, "; it changed %s", start);
			for (size_t i = 0; i < kbu_json_len(changes); i++) {
				char s[128];
				short_text(kbu_json_get_str(kbu_json_at(changes, i), "new", "?"), s, sizeof s);
				cat(chain, sizeof chain, " -> %s", s);
			}
		} else if (switched) {
			cat(chain, sizeof chain, " (%s)", switched);
		}
		decide(v, KBU_VERDICT_OK, NULL, NULL, "the time source is %s%s", now_text, chain);
		goto out;
	}
	if (!watched) {
		decide(v, KBU_VERDICT_PROBLEM, "timesource.placeholder",
		       "re-run from boot so kbu watch sees every change",
		       "%s is still %s (not watched from boot, so whether the registration entry was "
		       "called is not known)", symbol, name ? name : now_text);
		goto out;
	}
	char when[256] = "";
	if (strcmp(end_kind(v), "timeout") == 0) {
		double s = 0;
		kbu_json_double(live(v, "end.seconds"), &s);
		snprintf(when, sizeof when, " in %g s (then still running, in %s)", s,
			 live_str(v, "end.where") ? live_str(v, "end.where") : "?");
	}
	char nx[512];
	if (!have_regs) {
		snprintf(nx, sizeof nx, "break on %s to see whether a timer driver registers its counter",
			 entry);
		decide(v, KBU_VERDICT_PROBLEM, "timesource.placeholder", nx,
		       "%s never left %s%s; whether a time source was registered is not known (the %s "
		       "profile names no registration list)", symbol, start, when, os_name(v));
		goto out;
	}
	if (!kbu_json_len(regs)) {
		snprintf(nx, sizeof nx, "make the timer driver register its counter (call %s from its "
			 "attach/init; on microvm the i8254 is there), and break on %s to see it happen",
			 entry, entry);
		decide(v, KBU_VERDICT_PROBLEM, "timesource.never_registered", nx,
		       "%s never left %s%s: %s was never called, so no real time source was ever "
		       "registered%s%s%s", symbol, start, when, entry, failed ? "; the kernel logs: \"" : "",
		       failed ? failed : "", failed ? "\"" : "");
		goto out;
	}
	decide(v, KBU_VERDICT_PROBLEM, "timesource.none_selected",
	       "check the registered counters' quality and the selection code",
	       "%s never left %s although %s registered %s: none was selected (its quality must beat "
	       "the placeholder's)", symbol, start, entry, rt);
out:
	lines_free(&tl);
}

/* ---- x2apic-mode ---- */

static void q_x2apic(struct run *v)
{
	const struct kbu_json *w = live(v, "watch.x2apic");
	int watched = kbu_json_get_bool(w, "watched", 0);
	const struct kbu_triage_kstate *ks = kstate(v);
	if (ks->x2apic.state != KBU_TRIAGE_VAR_OK) {
		decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "the kernel's x2APIC flag cannot be read: %s",
		       profile(v) ? ks->x2apic.why : v->prof_err);
		return;
	}
	const char *symbol = ks->x2apic.symbol;
	uint64_t flag = ks->x2apic.value;
	kbu_str(v->facts, "variable", "", symbol);
	evidence(v, "variable", "%s", symbol);
	kbu_u64(v->facts, "kernel_x2apic", "", flag);
	char lab[96];
	snprintf(lab, sizeof lab, "%s now", symbol);
	evidence(v, lab, "%" PRIu64 " (%s)", flag, flag ? "x2APIC" : "xAPIC");
	const struct kbu_json *changes = kbu_json_get(w, "changes");
	char who[512] = "";
	if (watched) {
		struct kbu_node *cl = kbu_list(v->facts, "changes", "");
		char ct[2048] = "";
		for (size_t i = 0; i < kbu_json_len(changes); i++) {
			const struct kbu_json *c = kbu_json_at(changes, i);
			struct kbu_node *row = kbu_row(cl);
			for (size_t k = 0; k < kbu_json_len(c); k++)
				json_field(row, kbu_json_key(c, k), kbu_json_at(c, k));
			cat(ct, sizeof ct, "%s%s -> %s on CPU %" PRIu64 " at %s", i ? "\n" : "",
			    kbu_json_get_str(c, "old", "?"), kbu_json_get_str(c, "new", "?"),
			    kbu_json_get_u64(c, "cpu", 0), kbu_json_get_str(c, "where", "?"));
		}
		evidence(v, "changes", "%s", ct[0] ? ct : "none");
		if (kbu_json_get_str(w, "summary", NULL))
			kbu_str(v->facts, "summary", "", kbu_json_get_str(w, "summary", ""));
		size_t n = kbu_json_len(changes);
		if (n) {
			const struct kbu_json *c = kbu_json_at(changes, n - 1);
			char o[64], nw[64];
			short_text(kbu_json_get_str(c, "old", "?"), o, sizeof o);
			short_text(kbu_json_get_str(c, "new", "?"), nw, sizeof nw);
			snprintf(who, sizeof who, " (switched %s -> %s at %s on CPU %" PRIu64 ")", o, nw,
				 kbu_json_get_str(c, "where", "?"), kbu_json_get_u64(c, "cpu", 0));
		}
	}
	struct kbu_cpuid_set set;
	int have_cpuid = live_cpuid(v, &set) == 0 && kbu_cpuid_find(&set, 1, 0);
	uint32_t ecx = have_cpuid ? kbu_cpuid_find(&set, 1, 0)->ecx : 0;
	int cpu_x2 = have_cpuid && ((ecx >> 21) & 1);
	if (have_cpuid) {
		kbu_bool(v->facts, "cpuid_x2apic", "", cpu_x2);
		evidence(v, "CPUID.1:ECX.x2APIC", "%s", cpu_x2 ? "1 (the CPU offers x2APIC)"
							       : "0 (no x2APIC: xAPIC only)");
	} else {
		kbu_null(v->facts, "cpuid_x2apic", "");
		evidence(v, "CPUID.1", "not run: %s", live_str(v, "cpuid_error") ? live_str(v, "cpuid_error")
						       : "the debugger gave no CPUID values");
	}
	struct kbu_lapic_mode lm;
	kbu_lapic_mode(NULL, have_cpuid, ecx, 1, flag != 0, &lm);
	char mode[64];
	snprintf(mode, sizeof mode, "%s", lm.mode);
	char *paren = strstr(mode, " (");
	if (paren)
		*paren = '\0';
	kbu_str(v->facts, "apic_mode", "", mode);
	evidence(v, "APIC mode", "%s", lm.mode);
	if (lm.flag_without_cpu)
		finding(v, "lapic.x2apic_flag_without_cpu", "lapic: the kernel's %s says x2APIC but CPUID "
			"has no x2APIC bit: the kernel will use MSRs 0x800+ that fault", symbol);
	struct lines tl = log_lines(v, "x2apic", 1);
	log_fact(v, &tl, 6);
	lines_free(&tl);
	if (flag && have_cpuid && !cpu_x2) {
		decide(v, KBU_VERDICT_PROBLEM, "x2apic.flag_without_cpu",
		       "only switch to x2APIC when CPUID.1:ECX bit 21 is set (check before setting the "
		       "flag), or run with an x2APIC-capable CPU (KVM, -cpu host or +x2apic)",
		       "the kernel set %s = %" PRIu64 "%s but CPUID.1:ECX.x2APIC is 0: this VM has no "
		       "x2APIC (QEMU's TCG does not emulate it), so the APIC is still in xAPIC mode and "
		       "x2APIC MSR accesses (0x800+) will fault", symbol, flag, who);
		return;
	}
	if (flag && cpu_x2) {
		decide(v, KBU_VERDICT_OK, NULL, NULL, "x2APIC mode: the kernel set %s = %" PRIu64 "%s and "
		       "the CPU offers x2APIC", symbol, flag, who);
		return;
	}
	if (!flag) {
		decide(v, KBU_VERDICT_OK, NULL, NULL, "xAPIC mode: %s = 0%s%s%s", symbol,
		       watched && !kbu_json_len(changes) ? " and it never changed" : who,
		       have_cpuid ? "; the CPU " : "", have_cpuid ? (cpu_x2 ? "offers x2APIC"
									   : "does not offer x2APIC") : "");
		return;
	}
	decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "%s = %" PRIu64 " but whether the CPU offers x2APIC "
	       "is unknown (CPUID not run)", symbol, flag);
}

/* ---- pvh-entry ---- */

static void size_text(uint64_t n, char *buf, size_t len)
{
	static const struct {
		const char *unit;
		uint64_t div;
	} u[] = {{"GiB", 1ull << 30}, {"MiB", 1ull << 20}, {"KiB", 1ull << 10}};
	for (size_t i = 0; i < 3; i++)
		if (n >= u[i].div) {
			if (n % u[i].div)
				snprintf(buf, len, "%.1f %s", (double)n / (double)u[i].div, u[i].unit);
			else
				snprintf(buf, len, "%" PRIu64 " %s", n / u[i].div, u[i].unit);
			return;
		}
	snprintf(buf, len, "%" PRIu64 " bytes", n);
}

static void q_pvh(struct run *v)
{
	uint64_t entry = 0;
	struct kbu_err e = {0};
	if (!v->ctx->kernel || kbu_xen_pvh_entry(v->ctx->kernel, &entry, &e) < 0) {
		if (v->ctx->kernel && e.code == KBU_ENOTFOUND)
			decide(v, KBU_VERDICT_PROBLEM, "pvh.no_entry_note",
			       "add the note (type 18) with the 32-bit physical entry address",
			       "the kernel has no XEN_ELFNOTE_PHYS32_ENTRY note: QEMU cannot boot it through PVH");
		else
			decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "cannot read the kernel's notes: %s",
			       v->ctx->kernel ? e.msg : "no kernel ELF");
		return;
	}
	kbu_u64(v->facts, "phys32_entry", "", entry);
	evidence(v, "PHYS32_ENTRY note", "0x%" PRIx64, entry);
	const char *reached = live_str(v, "entry.reached");
	if (reached && strcmp(reached, "hit") != 0) {
		decide(v, KBU_VERDICT_PROBLEM, "pvh.entry_not_reached",
		       "check that QEMU boots the ELF through PVH (-kernel with the note, -M microvm) and "
		       "not as a multiboot or Linux image",
		       "the guest never reached the PVH entry 0x%" PRIx64 " (%s)", entry, reached);
		return;
	}
	int at_entry = kbu_json_get_bool(live(v, "entry"), "at_entry", 0);
	uint64_t rip = 0, ebx = 0, cr0 = 0;
	int have_rip = live_u64(v, "entry.rip", &rip) == 0;
	int have_ebx = live_u64(v, "entry.ebx", &ebx) == 0;
	int have_cr0 = live_u64(v, "entry.cr0", &cr0) == 0;
	ebx &= 0xffffffffu;
	if (at_entry) {
		if (have_rip) {
			kbu_u64(v->facts, "rip", "", rip);
			evidence(v, "RIP", "0x%" PRIx64, rip);
		}
		if (have_ebx) {
			kbu_u64(v->facts, "ebx", "", ebx);
			evidence(v, "EBX", "0x%" PRIx64 "  (the start info, by the PVH protocol)", ebx);
		}
		if (have_cr0) {
			kbu_u64(v->facts, "cr0", "", cr0);
			evidence(v, "CR0", "0x%" PRIx64 "  (PE=%d PG=%d)", cr0, (int)(cr0 & 1),
				 (int)(cr0 >> 31 & 1));
		}
	} else {
		evidence(v, "entry", "the guest is past its entry: the start info is found through the "
			 "kernel's saved pointer or by its magic");
	}
	if (!v->ctx->mem) {
		decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "no guest memory to read the start info from");
		return;
	}
	struct kbu_pvh p;
	memset(&p, 0, sizeof p);
	int rc = at_entry && have_ebx && ebx ? kbu_pvh_decode(v->ctx->mem, ebx, &p, &e)
					     : kbu_pvh_find(v->ctx->mem, v->syms, v->ctx->kernel, 0, &p, &e);
	if (rc < 0) {
		char where[64] = "found";
		if (at_entry && have_ebx)
			snprintf(where, sizeof where, "at EBX 0x%" PRIx64, ebx);
		decide(v, at_entry ? KBU_VERDICT_PROBLEM : KBU_VERDICT_UNDECIDED,
		       at_entry ? "pvh.no_start_info" : NULL,
		       "the loader must pass the start info in EBX (magic 0x336ec578)",
		       "no valid hvm_start_info %s: %s", where, e.msg);
		kbu_pvh_free(&p);
		return;
	}
	kbu_u64(v->facts, "start_info", "", p.addr);
	evidence(v, "start info", "0x%" PRIx64 ", version %u, magic 0x%x", p.addr, p.version, p.magic);
	const char *cmd = p.cmdline.state == KBU_PVH_STR_OK || p.cmdline.state == KBU_PVH_STR_UNTERMINATED
				  ? (p.cmdline.text ? p.cmdline.text : "") : NULL;
	if (cmd) {
		kbu_str(v->facts, "cmdline", "", cmd);
		evidence(v, "command line", "\"%s\"", cmd);
	} else {
		kbu_null(v->facts, "cmdline", "");
		evidence(v, "command line", "(none)");
	}
	struct kbu_node *ml = kbu_list(v->facts, "memmap", "");
	char mt[2048] = "";
	uint64_t ram = 0;
	size_t nreal = 0;
	for (size_t i = 0; i < p.nmemmap; i++) {
		const struct kbu_pvh_memmap_entry *m = &p.memmap[i];
		if (!m->size)
			continue;
		nreal++;
		if (m->type == 1)
			ram += m->size;
		struct kbu_node *row = kbu_row(ml);
		kbu_u64(row, "addr", "", m->addr);
		kbu_u64(row, "end", "", m->addr + m->size - 1);
		kbu_u64(row, "size", "", m->size);
		kbu_u64(row, "type", "", m->type);
		kbu_str(row, "type_name", "", kbu_e820_type_name(m->type));
		char sz[32];
		size_text(m->size, sz, sizeof sz);
		cat(mt, sizeof mt, "%s0x%09" PRIx64 "-0x%09" PRIx64 "  %-9s %s", nreal > 1 ? "\n" : "",
		    m->addr, m->addr + m->size - 1, kbu_e820_type_name(m->type), sz);
	}
	evidence(v, "memory map", "%s", mt[0] ? mt : "(none)");
	char rs[32];
	size_text(ram, rs, sizeof rs);
	kbu_u64(v->facts, "ram_bytes", "", ram);
	evidence(v, "RAM", "%s", rs);
	kbu_u64(v->facts, "modules", "", p.nr_modules);
	evidence(v, "modules", "%u", p.nr_modules);
	if (p.rsdp_paddr) {
		kbu_u64(v->facts, "rsdp", "", p.rsdp_paddr);
		evidence(v, "RSDP", "0x%" PRIx64 "%s%s%s", p.rsdp_paddr, p.rsdp_sig_ok == 1 ? " (OEM '" : "",
			 p.rsdp_sig_ok == 1 ? p.rsdp_oem : "", p.rsdp_sig_ok == 1 ? "')" : "");
	} else {
		kbu_null(v->facts, "rsdp", "");
		evidence(v, "RSDP", "none (no ACPI)");
	}
	char bad[2048] = "", warn[1024] = "";
	for (size_t i = 0; i < p.nproblems; i++) {
		const struct kbu_pvh_problem *pp = &p.problems[i];
		if (pp->sev >= KBU_SEV_ERROR)
			cat(bad, sizeof bad, "%s%s", bad[0] ? "; " : "", pp->msg);
		if (pp->sev == KBU_SEV_WARN) {
			size_t n = strcspn(pp->msg, ":");
			cat(warn, sizeof warn, "%s%.*s", warn[0] ? "; " : "", (int)n, pp->msg);
		}
		if (pp->sev >= KBU_SEV_WARN)
			finding(v, "pvh.start_info", "start info: %s", pp->msg);
	}
	char wrong[2048] = "";
	if (p.magic != 0x336ec578u)
		cat(wrong, sizeof wrong, "magic 0x%x is not 0x336ec578", p.magic);
	if (at_entry && have_cr0 && (cr0 >> 31 & 1))
		cat(wrong, sizeof wrong, "%spaging is on at the entry (CR0.PG=1): this is not a PVH entry",
		    wrong[0] ? "; " : "");
	if (at_entry && have_cr0 && !(cr0 & 1))
		cat(wrong, sizeof wrong, "%sthe CPU is in real mode at the entry (CR0.PE=0)",
		    wrong[0] ? "; " : "");
	if (!nreal)
		cat(wrong, sizeof wrong, "%sthe memory map is empty", wrong[0] ? "; " : "");
	if (bad[0])
		cat(wrong, sizeof wrong, "%s%s", wrong[0] ? "; " : "", bad);
	if (wrong[0]) {
		decide(v, KBU_VERDICT_PROBLEM, "pvh.handover",
		       "compare with the PVH boot protocol (xen/arch/x86 docs: hvm_start_info)",
		       "the PVH handover is wrong: %s", wrong);
	} else {
		char where[256] = "start info ";
		if (at_entry)
			snprintf(where, sizeof where, "entered at 0x%" PRIx64 " in 32-bit protected mode with "
				 "paging off, EBX = 0x%" PRIx64 " -> ", entry, ebx);
		decide(v, KBU_VERDICT_OK, NULL, NULL, "%shvm_start_info v%u at 0x%" PRIx64 ": command line "
		       "\"%s\", %zu memory map entries (%s RAM), %u module(s)%s%s", where, p.version,
		       p.addr, cmd ? cmd : "", nreal, rs, p.nr_modules, warn[0] ? "; note: " : "", warn);
	}
	kbu_pvh_free(&p);
}

/* ---- lapic-state ---- */

struct lapic_cpu {
	int cpu, read;
	struct kbu_lapic_state s;
	char why[512];
};

/* CPU n's local APIC: the registers the debugger read (live "lapic"), else QEMU's monitor. */
static void read_lapic(struct run *v, int cpu, struct lapic_cpu *out)
{
	memset(out, 0, sizeof *out);
	out->cpu = cpu;
	const struct kbu_json *l = live(v, "lapic");
	for (size_t i = 0; i < kbu_json_len(l); i++) {
		const struct kbu_json *c = kbu_json_at(l, i);
		if (kbu_json_get_u64(c, "cpu", (uint64_t)-1) != (uint64_t)cpu)
			continue;
		const struct kbu_json *regs = kbu_json_get(c, "registers");
		for (size_t k = 0; k < kbu_json_len(regs); k++) {
			uint64_t off, val;
			const char *key = kbu_json_key(regs, k);
			char *end;
			off = key ? strtoull(key, &end, 0) : 0;
			if (key && !*end && kbu_json_u64(kbu_json_at(regs, k), &val) == 0 && off < 0x400)
				kbu_lapic_set(&out->s, (unsigned)off, (uint32_t)val);
		}
		out->read = out->s.known != 0;
		if (!out->read)
			snprintf(out->why, sizeof out->why, "%s", kbu_json_get_str(c, "error", "no registers"));
		return;
	}
	char cmd[32], *text = NULL;
	struct kbu_err e = {0};
	snprintf(cmd, sizeof cmd, "info lapic %d", cpu);
	if (!v->ctx->mem || kbu_mem_monitor(v->ctx->mem, cmd, &text, &e) < 0) {
		snprintf(out->why, sizeof out->why, "%s", v->ctx->mem ? e.msg : "no memory source");
		return;
	}
	if (kbu_lapic_parse_qemu(text, &out->s, &e) == 0)
		out->read = 1;
	else
		snprintf(out->why, sizeof out->why, "%s", e.msg);
	free(text);
}

static void q_lapic(struct run *v)
{
	struct kbu_cpuid_set set;
	int have_cpuid = live_cpuid(v, &set) == 0 && kbu_cpuid_find(&set, 1, 0);
	uint32_t ecx = have_cpuid ? kbu_cpuid_find(&set, 1, 0)->ecx : 0;
	if (!have_cpuid)
		evidence(v, "CPUID.1", "not run: %s", live_str(v, "cpuid_error") ? live_str(v, "cpuid_error")
						       : "the debugger gave no CPUID values");
	uint64_t ncpus = 0;
	if (live_u64(v, "vcpus", &ncpus) < 0 || !ncpus)
		ncpus = v->ctx->mem && kbu_mem_ncpus(v->ctx->mem) > 0 ? (uint64_t)kbu_mem_ncpus(v->ctx->mem)
									  : 1;
	const struct kbu_triage_kstate *ks = kstate(v);
	int have_kflag = ks->x2apic.state == KBU_TRIAGE_VAR_OK;
	int ran_on = kbu_json_get_bool(live(v, "end"), "ran_on", 0);
	static const char ran_on_text[] =
		"read after the panic was let run on, and a panicking kernel disables its local APIC "
		"(run lapic-state before panic-triage, or on its own)";
	char first[1024] = "", also[1024] = "";
	size_t nalso = 0;
	struct kbu_node *cl = kbu_list(v->facts, "cpus", "");
	int nread = 0, bsp_enabled = -1, bsp_masked = -1;
	uint32_t bsp_init = 0, bsp_cur = 0;
	char bsp_mode[64] = "", bsp_timer[160] = "";
	for (uint64_t cpu = 0; cpu < ncpus && cpu < 64; cpu++) {
		struct lapic_cpu lc;
		read_lapic(v, (int)cpu, &lc);
		char lab[32];
		snprintf(lab, sizeof lab, "CPU %" PRIu64, cpu);
		if (!lc.read) {
			evidence(v, lab, "not read: %s", lc.why);
			continue;
		}
		nread++;
		const struct kbu_lapic_state *s = &lc.s;
		struct kbu_lapic_mode lm;
		kbu_lapic_mode(s, have_cpuid, ecx, have_kflag, (int)ks->x2apic.value, &lm);
		char mode[64];
		snprintf(mode, sizeof mode, "%s", lm.mode);
		char *paren = strstr(mode, " (");
		if (paren)
			*paren = '\0';
		int svr_known = kbu_lapic_known(s, 0x0f0), timer_known = kbu_lapic_known(s, 0x320);
		uint32_t svr = s->reg[0x0f0 >> 4], timer = s->reg[0x320 >> 4], esr = s->reg[0x280 >> 4];
		uint32_t init = s->reg[0x380 >> 4], cur = s->reg[0x390 >> 4], dcr = s->reg[0x3e0 >> 4];
		int enabled = svr_known ? (int)((svr >> 8) & 1) : -1;
		int masked = timer_known ? (int)((timer >> 16) & 1) : -1;
		char svr_t[160], timer_t[160], dcr_t[64], esr_t[160];
		kbu_lapic_decode_text(0x0f0, svr, svr_t, sizeof svr_t);
		kbu_lapic_decode_text(0x320, timer, timer_t, sizeof timer_t);
		kbu_lapic_decode_text(0x3e0, dcr, dcr_t, sizeof dcr_t);
		kbu_lapic_decode_text(0x280, esr, esr_t, sizeof esr_t);
		struct kbu_node *row = kbu_row(cl);
		kbu_u64(row, "cpu", "", cpu);
		kbu_str(row, "mode", "", mode);
		if (enabled >= 0)
			kbu_bool(row, "enabled", "", enabled);
		else
			kbu_null(row, "enabled", "");
		kbu_u64(row, "svr", "", svr);
		kbu_str(row, "timer", "", timer_t);
		if (masked >= 0)
			kbu_bool(row, "timer_masked", "", masked);
		else
			kbu_null(row, "timer_masked", "");
		kbu_u64(row, "initial_count", "", init);
		kbu_u64(row, "current_count", "", cur);
		kbu_str(row, "divide", "", dcr_t);
		kbu_u64(row, "esr", "", esr);
		evidence(v, lab, "%s; SVR 0x%x: %s", mode, svr, svr_t);
		evidence(v, "  timer", "%s; initial count %u, current %u, %s", timer_t, init, cur, dcr_t);
		if (esr)
			evidence(v, "  ESR", "%s", esr_t);
		if (lm.flag_without_cpu)
			finding(v, "lapic.x2apic_flag_without_cpu", "the kernel's %s says x2APIC but CPUID has "
				"no x2APIC bit: the kernel will use MSRs 0x800+ that fault", ks->x2apic.symbol);
		if (cpu == 0) {
			bsp_enabled = enabled;
			bsp_masked = masked;
			bsp_init = init;
			bsp_cur = cur;
			snprintf(bsp_mode, sizeof bsp_mode, "%s", mode);
			snprintf(bsp_timer, sizeof bsp_timer, "%s", timer_t);
			if (enabled == 0)
				snprintf(first, sizeof first, "the boot CPU's local APIC is software-disabled (SVR "
					 "0x%x, bit 8 clear): %s", svr, ran_on ? ran_on_text
					 : "the kernel has not enabled it");
			if (masked == 1 && !init && !ran_on) {
				const char *t = "the boot CPU's APIC timer is not running (LVT masked, initial "
						"count 0): the kernel has not set it up, or has shut it down";
				if (!first[0])
					snprintf(first, sizeof first, "%s", t);
				else if (nalso++ < 2)
					cat(also, sizeof also, "%s%s", also[0] ? "; " : "", t);
			}
			if (lm.flag_without_cpu) {
				char t[256];
				snprintf(t, sizeof t, "the kernel's %s says x2APIC but CPUID has no x2APIC bit: "
					 "the kernel will use MSRs 0x800+ that fault", ks->x2apic.symbol);
				if (!first[0])
					snprintf(first, sizeof first, "%s", t);
				else if (nalso++ < 2)
					cat(also, sizeof also, "%s%s", also[0] ? "; " : "", t);
			}
		} else if (enabled == 0) {
			evidence(v, "", "(CPU %" PRIu64 " is as after reset: an AP the kernel has not started)",
				 cpu);
		}
		if (esr) {
			char t[256];
			snprintf(t, sizeof t, "CPU %" PRIu64 " has APIC errors: %s", cpu, esr_t);
			if (!first[0])
				snprintf(first, sizeof first, "%s", t);
			else if (nalso++ < 2)
				cat(also, sizeof also, "%s%s", also[0] ? "; " : "", t);
		}
	}
	struct lines tl = log_lines(v, "(\\bx?apic\\b|lapic)", 1);
	log_fact(v, &tl, 8);
	lines_free(&tl);
	if (!nread) {
		decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "no local APIC could be read (needs QEMU's "
		       "monitor through the stub, or the vCPU's own reads)");
		return;
	}
	if (ran_on && bsp_enabled == 0) {
		decide(v, KBU_VERDICT_UNDECIDED, NULL,
		       "run lapic-state on its own, or before panic-triage, to read it at the panic",
		       "the boot CPU's local APIC is software-disabled, but it was read after the panic was "
		       "let run on, and a panicking kernel disables its local APIC itself%s%s",
		       also[0] ? "; also: " : "", also);
		return;
	}
	if (first[0]) {
		char where[512] = "";
		if (strcmp(end_kind(v), "panic") == 0)
			snprintf(where, sizeof where, " (the kernel stopped in a panic in %s: \"%s\")",
				 live_str(v, "end.function") ? live_str(v, "end.function")
							      : live_str(v, "end.where"),
				 live_str(v, "end.message") ? live_str(v, "end.message") : "");
		decide(v, KBU_VERDICT_PROBLEM, "lapic.state",
		       "see `kbu lapic` for every register and the kernel log lines above; kbu recipe "
		       "x2apic-mode for the mode, panic-triage for the panic",
		       "%s%s%s%s", first, where, also[0] ? "; also: " : "", also);
		return;
	}
	char timer[256];
	snprintf(timer, sizeof timer, "timer %s", bsp_masked == 1 ? "masked" : bsp_timer);
	if (bsp_masked != 1 && bsp_init)
		cat(timer, sizeof timer, ", counting (%u of %u)", bsp_cur, bsp_init);
	char others[64] = "";
	if (nread > 1)
		snprintf(others, sizeof others, "; %d other CPU(s) read", nread - 1);
	decide(v, KBU_VERDICT_OK, NULL, NULL, "the boot CPU's local APIC is software-enabled in %s mode, "
	       "%s%s", bsp_mode[0] ? bsp_mode : "an unknown", timer, others);
}

/* ---- what the firmware and the VM say about CPUs ---- */

struct cpu_facts {
	int vcpus;                /* vCPUs in the VM */
	int left_reset;           /* of them, vCPUs that left their reset/INIT state, -1 unknown */
	char states[512];         /* "0 halted in kernel code, 1 waiting for SIPI (INIT state)" */
	int mp;                   /* 1 found, 0 none, -1 unreadable */
	char mp_err[512];
	struct kbu_mptable t;
	size_t mp_cpus;
	char mp_ids[256];
	struct kbu_firmware fw;
	int have_fw;
	int acpi;                 /* 1 found, 0 none, -1 unreadable */
	size_t madt_cpus;
	int have_madt;
};

static void gather_cpu_facts(struct run *v, struct cpu_facts *c)
{
	memset(c, 0, sizeof *c);
	struct kbu_mem *m = v->ctx->mem;
	uint64_t n = 0;
	if (live_u64(v, "vcpus", &n) == 0 && n)
		c->vcpus = (int)n;
	else
		c->vcpus = m ? kbu_mem_ncpus(m) : 0;
	c->left_reset = -1;
	if (m && c->vcpus > 0) {
		char *info = NULL;
		struct kbu_err me = {0};
		int have_mon = kbu_mem_monitor(m, "info registers -a", &info, &me) == 0;
		int left = 0, known = 0;
		for (int cpu = 0; cpu < c->vcpus && cpu < 256; cpu++) {
			struct kbu_regs r;
			struct kbu_err e = {0};
			if (kbu_mem_regs(m, cpu, &r, &e) < 0)
				continue;
			struct kbu_vcpu_facts f = {.halted = have_mon ? kbu_qemu_cpu_halted(info, cpu) : -1,
						   .hlt_before_rip = -1, .in_kernel_text = -1};
			struct kbu_vcpu vc;
			kbu_vcpu_classify(&r, cpu, &f, &vc);
			if (vc.state == KBU_VCPU_UNKNOWN)
				continue;
			known++;
			if (vc.state != KBU_VCPU_RESET && vc.state != KBU_VCPU_WAIT_SIPI)
				left++;
			cat(c->states, sizeof c->states, "%s%d %s", c->states[0] ? ", " : "", cpu, vc.text);
		}
		free(info);
		if (known == c->vcpus)
			c->left_reset = left;
	}
	struct kbu_err e = {0};
	memset(&c->t, 0, sizeof c->t);
	if (!m) {
		c->mp = -1;
		snprintf(c->mp_err, sizeof c->mp_err, "no guest memory");
	} else if (kbu_mptable_read(m, 0, 0, &c->t, &e) == 0) {
		c->mp = 1;
		c->mp_cpus = kbu_mptable_ncpus(&c->t);
		for (size_t i = 0; i < c->t.nentries; i++) {
			const struct kbu_mp_entry *en = &c->t.entries[i];
			if (!en->extended && en->type == KBU_MP_PROC)
				cat(c->mp_ids, sizeof c->mp_ids, "%s%u%s", c->mp_ids[0] ? ", " : "",
				    en->u.proc.apic_id, (en->u.proc.flags >> 1) & 1 ? " (BSP)" : "");
		}
	} else {
		c->mp = e.code == KBU_ENOTFOUND ? 0 : -1;
		snprintf(c->mp_err, sizeof c->mp_err, "%s", e.msg);
	}
	struct kbu_acpi a;
	memset(&a, 0, sizeof a);
	if (m) {
		struct kbu_acpi_opts ao = {0};
		struct kbu_err ae = {0};
		if (kbu_acpi_read(m, &ao, &a, &ae) == 0) {
			c->acpi = a.found;
			c->have_madt = a.found && a.madt.present;
			c->madt_cpus = a.madt.ncpus_enabled;
		} else {
			c->acpi = -1;
		}
		struct kbu_fw_known known = {c->mp == 1 ? &c->t : NULL, c->mp == 0, c->acpi >= 0 ? &a : NULL,
					     NULL};
		struct kbu_err fe = {0};
		c->have_fw = kbu_firmware_identify(m, &known, &c->fw, &fe) == 0 &&
			     c->fw.kind != KBU_FW_UNKNOWN;
	}
	kbu_acpi_free(&a);
}

/* Evidence and facts for the firmware and the VM's CPUs. */
static void cpu_evidence(struct run *v, struct cpu_facts *c)
{
	if (c->mp == 1) {
		kbu_u64(v->facts, "table_cpus", "", c->mp_cpus);
		evidence(v, "MP table CPUs", "%zu: APIC ids %s", c->mp_cpus, c->mp_ids[0] ? c->mp_ids : "none");
		for (size_t i = 0; i < c->t.nentries; i++) {
			const struct kbu_mp_entry *en = &c->t.entries[i];
			if (en->extended || en->type != KBU_MP_PROC)
				continue;
			evidence(v, "  processor", "APIC id %-3u version 0x%02x  %s, %s", en->u.proc.apic_id,
				 en->u.proc.version, (en->u.proc.flags >> 1) & 1 ? "BSP" : "AP",
				 en->u.proc.flags & 1 ? "usable" : "disabled");
		}
		kbu_u64(v->facts, "table_at", "", c->t.hdr.addr);
		evidence(v, "table", "floating pointer at 0x%" PRIx64 ", config table at 0x%" PRIx64 " (%s)",
			 c->t.fp.addr, c->t.hdr.addr, c->t.hdr.oem_id);
		kbu_u64(v->facts, "entry_count", "", c->t.hdr.entry_count);
		kbu_u64(v->facts, "entries", "", c->t.nbase);
		evidence(v, "header entry_count", "%u (the table holds %zu entries in %u bytes)",
			 c->t.hdr.entry_count, c->t.nbase, c->t.hdr.base_len);
		for (size_t i = 0; i < c->t.nproblems; i++)
			if (c->t.problems[i].sev >= KBU_SEV_WARN)
				finding(v, c->t.problems[i].code ? c->t.problems[i].code : "mptable",
					"MP table: %s", c->t.problems[i].msg);
	} else {
		kbu_null(v->facts, "table_cpus", "");
		evidence(v, "MP table", "%s", c->mp == 0 ? "none" : c->mp_err);
	}
	if (c->have_madt) {
		kbu_u64(v->facts, "madt_cpus", "", c->madt_cpus);
		evidence(v, "ACPI MADT CPUs", "%zu", c->madt_cpus);
	} else {
		kbu_null(v->facts, "madt_cpus", "");
		evidence(v, "ACPI MADT", "%s", c->acpi == 0 ? "none (no ACPI)" : c->acpi < 0
			 ? "not readable" : "no MADT");
	}
	if (c->have_fw) {
		kbu_str(v->facts, "firmware", "", c->fw.name);
		evidence(v, "firmware", "%s (%s)", c->fw.name, c->fw.how);
	} else {
		kbu_null(v->facts, "firmware", "");
	}
	if (c->vcpus > 0) {
		kbu_u64(v->facts, "vcpus", "", (uint64_t)c->vcpus);
		evidence(v, "vCPUs in the VM", "%d", c->vcpus);
	}
	if (c->left_reset >= 0) {
		kbu_u64(v->facts, "vcpus_started", "", (uint64_t)c->left_reset);
		evidence(v, "vCPUs that left reset", "%d (%s)", c->left_reset, c->states);
	}
}

/* The CPU count the kernel keeps (profile role ncpus), or -1. */
static int64_t kernel_cpus(struct run *v, char *text, size_t len)
{
	const struct kbu_triage_kstate *ks = kstate(v);
	text[0] = '\0';
	if (ks->ncpus.state != KBU_TRIAGE_VAR_OK)
		return -1;
	snprintf(text, len, "%s = %" PRIu64, ks->ncpus.symbol, ks->ncpus.value);
	return (int64_t)ks->ncpus.value;
}

/* 1 if any of the profile's mp_parser symbols exists, 0 if none, -1 if it names none. */
static int has_mp_parser(struct run *v)
{
	const struct kbu_os_profile *p = profile(v);
	char w[64];
	if (!p || !kbu_os_role(p, "mp_parser"))
		return -1;
	for (size_t i = 0; kbu_os_role_word(p, "mp_parser", i, w, sizeof w); i++)
		if (v->syms && kbu_sym_by_name(v->syms, w))
			return 1;
	return 0;
}

/* ---- where-are-my-cpus ---- */

static void q_cpus(struct run *v)
{
	struct cpu_facts c;
	gather_cpu_facts(v, &c);
	cpu_evidence(v, &c);
	char ktext[128];
	int64_t kcpus = kernel_cpus(v, ktext, sizeof ktext);
	if (kcpus >= 0) {
		kbu_u64(v->facts, "kernel_cpus", "", (uint64_t)kcpus);
		evidence(v, "kernel's CPU count", "%s", ktext);
	} else {
		kbu_null(v->facts, "kernel_cpus", "");
	}
	/* What kernels log about finding CPUs (Linux smpboot/smp/APIC lines, BSD MPTable lines). */
	struct lines lg = log_lines(v, "(^smpboot: |^smp: |^APIC: |SMP disabled|SMP configuration|"
				    "MP-BIOS|^MPTable|^cpu[0-9]+: |CPUs? (found|detected)|^FreeBSD/SMP|"
				    "^ACPI: .*APIC)", 0);
	log_fact(v, &lg, 50);
	int64_t brought = -1;
	for (size_t i = 0; i < lg.n; i++) {
		const char *b = strstr(lg.l[i], "Brought up ");
		const char *cp = b ? strstr(b, ", ") : NULL;
		if (cp)
			brought = strtoll(cp + 2, NULL, 10);
	}
	int64_t found = kcpus >= 0 ? kcpus : brought;
	int n = c.vcpus;
	char head[1024] = "";
	const char *ids = c.mp_ids[0] ? c.mp_ids : "none";

	if (found < 0) {
		/* No kernel count: the tables and the vCPUs still say most of it. */
		if (c.mp != 1 && !c.have_madt) {
			decide(v, KBU_VERDICT_UNDECIDED, NULL, "give the kernel's symbols (its CPU count) or "
			       "check the VM's firmware tables",
			       "neither a firmware table nor the kernel's CPU count could be read");
			goto out;
		}
		char tables[256] = "";
		if (c.mp == 1)
			cat(tables, sizeof tables, "the MP table lists %zu", c.mp_cpus);
		if (c.have_madt)
			cat(tables, sizeof tables, "%sthe MADT lists %zu", tables[0] ? ", " : "", c.madt_cpus);
		if (n > 0 && c.left_reset >= 0 && c.left_reset < n) {
			decide(v, KBU_VERDICT_PROBLEM, "cpus.not_started",
			       "give kbu the kernel's symbols: its CPU count says whether it enumerated them "
			       "and failed to start them or never saw them",
			       "%d of %d vCPUs never left their reset state (%s); %s%s", n - c.left_reset, n,
			       c.states, tables, c.mp == 1 && c.mp_cpus < (size_t)n && c.have_fw
			       ? " — a kernel that enumerates from the MP table sees only those" : "");
		} else {
			decide(v, KBU_VERDICT_UNDECIDED, NULL, "give kbu the kernel's symbols (its CPU count)",
			       "%s for %d vCPU%s, but the kernel's CPU count is not known (no ncpus role in "
			       "the %s profile, or no symbols, and no SMP line in its log)", tables, n,
			       n == 1 ? "" : "s", os_name(v));
		}
		goto out;
	}
	if (c.mp != 1 && !c.have_madt) {
		struct lines reason = log_lines(v, "(no SMP configuration|MADT or MP tables are not detected|"
						"Allowing [0-9]+ CPUs)", 0);
		char q[1024];
		quoted(q, sizeof q, &reason, 0);
		decide(v, found <= 1 ? KBU_VERDICT_UNDECIDED : KBU_VERDICT_OK, NULL,
		       "check the VM's firmware tables (ACPI MADT with -M microvm,acpi=on)",
		       "no MP table or MADT was found; the kernel runs %" PRId64 " CPU%s%s%s%s", found,
		       found == 1 ? "" : "s", reason.n ? " (it logs: " : "", reason.n ? q : "",
		       reason.n ? ")" : "");
		lines_free(&reason);
		goto out;
	}
	size_t described = c.mp == 1 ? c.mp_cpus : 0;
	if (c.have_madt && c.madt_cpus > described)
		described = c.madt_cpus;
	size_t want = n > 0 && (size_t)n > described ? (size_t)n : described;
	if ((size_t)found >= want) {
		char more[256] = "";
		if (c.mp == 1 && c.mp_cpus < (size_t)found)
			snprintf(more, sizeof more, "; the MP table (%s) lists only %zu, a kernel that "
				 "enumerates from it would find %zu", c.have_fw ? c.fw.name : "firmware",
				 c.mp_cpus, c.mp_cpus);
		if (c.mp == 1 && c.have_madt)
			decide(v, KBU_VERDICT_OK, NULL, NULL, "the MP table lists %zu CPU%s, the MADT %zu, and "
			       "the kernel found %" PRId64 "%s", c.mp_cpus, c.mp_cpus == 1 ? "" : "s",
			       c.madt_cpus, found, more);
		else if (c.mp == 1)
			decide(v, KBU_VERDICT_OK, NULL, NULL, "the MP table lists %zu CPU%s and the kernel found "
			       "%" PRId64, c.mp_cpus, c.mp_cpus == 1 ? "" : "s", found);
		else
			decide(v, KBU_VERDICT_OK, NULL, NULL, "the MADT lists %zu CPU%s and the kernel found "
			       "%" PRId64, c.madt_cpus, c.madt_cpus == 1 ? "" : "s", found);
		goto out;
	}
	/* Fewer CPUs than the VM has: which layer lost them. */
	if (c.mp == 1 && n > 0 && c.mp_cpus < (size_t)n && (size_t)found == c.mp_cpus) {
		char fw[128];
		snprintf(fw, sizeof fw, "%s", c.have_fw ? c.fw.name : "the firmware");
		if (c.have_madt && c.madt_cpus >= (size_t)n)
			decide(v, KBU_VERDICT_PROBLEM, "cpus.mptable_short",
			       "boot with acpi=off (qboot lists every CPU in its MP table) or make the kernel "
			       "enumerate CPUs from the MADT",
			       "%s%s built an MP table with %zu of %d CPUs; the MADT lists %zu; this kernel "
			       "enumerates CPUs from the MP table, so it found %" PRId64, fw,
			       c.acpi == 1 ? " (ACPI on)" : "", c.mp_cpus, n, c.madt_cpus, found);
		else
			decide(v, KBU_VERDICT_PROBLEM, "cpus.mptable_short",
			       "fix the firmware's MP table, or describe the CPUs another way (ACPI MADT)",
			       "%s built an MP table with %zu of %d CPUs (APIC ids %s) and the kernel found %"
			       PRId64 " from it", fw, c.mp_cpus, n, ids, found);
		goto out;
	}
	if (c.mp == 1)
		snprintf(head, sizeof head, "the MP table holds %zu CPU%s (APIC ids %s), the kernel found %"
			 PRId64, c.mp_cpus, c.mp_cpus == 1 ? "" : "s", ids, found);
	else
		snprintf(head, sizeof head, "the MADT lists %zu CPU%s, the kernel found %" PRId64,
			 c.madt_cpus, c.madt_cpus == 1 ? "" : "s", found);
	int parser = has_mp_parser(v);
	if (c.mp == 1 && parser == 0 && !c.have_madt) {
		const struct kbu_os_profile *p = profile(v);
		const char *opt = p ? kbu_os_role(p, "mp_parser_option") : NULL;
		kbu_bool(v->facts, "mpparse", "", 0);
		evidence(v, "MP-table parser in kernel", "no (none of %s: %s%s)", kbu_os_role(p, "mp_parser"),
			 opt ? opt : "it was built without one", opt ? " is off" : "");
		struct lines own = log_lines(v, "(no SMP configuration found|MADT or MP tables are not "
					     "detected|not listed by BIOS|SMP disabled|Allowing [0-9]+ "
					     "CPUs|Brought up)", 0);
		char q[1536], nx[512];
		quoted(q, sizeof q, &own, 0);
		snprintf(nx, sizeof nx, "boot with ACPI (-M microvm,acpi=on) so the MADT lists the CPUs, or "
			 "build the kernel with %s%s", opt ? opt : "its MP-table reader", opt ? "=y" : "");
		decide(v, KBU_VERDICT_PROBLEM, "cpus.no_mp_parser", nx,
		       "%s: this kernel has no MP-table parser%s%s%s and microvm with acpi=off gives it no "
		       "MADT, so it runs on the boot CPU only. The kernel says: %s", head,
		       opt ? " (" : "", opt ? opt : "", opt ? " is off)" : "", own.n ? q : "nothing about it");
		lines_free(&own);
		goto out;
	}
	if (parser >= 0)
		kbu_bool(v->facts, "mpparse", "", parser);
	const struct kbu_mp_count_walk *cw = &c.t.count_walk;
	if (c.mp == 1 && c.t.hdr.entry_count == 0 && found == 0) {
		decide(v, KBU_VERDICT_PROBLEM, "cpus.entry_count_zero",
		       "walk the table by base_table_length instead of entry_count (what FreeBSD's and "
		       "NetBSD's MP-table compatibility code do), or patch entry_count first",
		       "%s: the config table's entry_count is 0 (QEMU's qboot writes 0; the table holds %zu "
		       "entries by its base table length %u) and the kernel walked it by entry_count, so "
		       "it saw no entry at all", head, c.t.nbase, c.t.hdr.base_len);
		goto out;
	}
	if (c.mp == 1 && cw->outcome != KBU_MP_COUNT_NONE && cw->outcome != KBU_MP_COUNT_SAME &&
	    (int64_t)cw->cpus == found) {
		decide(v, KBU_VERDICT_PROBLEM, "cpus.count_walk",
		       "walk the table by base_table_length, as kbu does",
		       "%s: a walker that trusts entry_count %u reads %zu entries and %zu CPU%s, as the "
		       "kernel did", head, c.t.hdr.entry_count, cw->entries_read, cw->cpus,
		       cw->cpus == 1 ? "" : "s");
		goto out;
	}
	char q[1536];
	size_t from = lg.n > 3 ? lg.n - 3 : 0;
	quoted(q, sizeof q, &lg, from);
	char started[256] = "";
	if (c.left_reset >= 0 && c.left_reset < n)
		snprintf(started, sizeof started, "; %d of %d vCPUs never left their reset state",
			 n - c.left_reset, n);
	decide(v, KBU_VERDICT_PROBLEM, "cpus.fewer_than_described",
	       "see how the kernel walks the MP table (kbu recipe mptable-walk)", "%s%s%s%s", head,
	       started, lg.n ? "; the kernel log says: " : "", lg.n ? q : "");
out:
	lines_free(&lg);
	kbu_mptable_free(&c.t);
}

/* ---- mptable-walk ---- */

static int is_config(struct kbu_mem *m, uint64_t pa, void *arg)
{
	(void)arg;
	return kbu_mptable_is_config(m, pa);
}

/* The config table the kernel itself points at (profile role mp_table), or 0. */
static uint64_t kernel_table(struct run *v, char *sym, size_t symlen, char *how, size_t howlen)
{
	const struct kbu_os_profile *p = profile(v);
	char w[64];
	if (!p || !v->syms || !v->ctx->mem)
		return 0;
	for (size_t i = 0; kbu_os_role_word(p, "mp_table", i, w, sizeof w); i++) {
		const struct kbu_sym *s = kbu_sym_by_name(v->syms, w);
		if (!s)
			continue;
		struct kbu_kvar kv;
		int kind = kbu_kvar_follow(v->ctx->mem, v->ctx->kernel, s->addr + (uint64_t)v->slide,
					   is_config, NULL, &kv);
		kbu_kvar_describe(&kv, w, s->addr, "\"PCMP\" config table", how, howlen);
		snprintf(sym, symlen, "%s", w);
		if (kind == KBU_KVAR_IS_STRUCT || kind == KBU_KVAR_PHYS || kind == KBU_KVAR_POINTER)
			return kv.pa;
		return 0;
	}
	return 0;
}

static void q_mptable(struct run *v)
{
	struct kbu_mptable t;
	struct kbu_err e = {0};
	memset(&t, 0, sizeof t);
	if (!v->ctx->mem || kbu_mptable_read(v->ctx->mem, 0, 0, &t, &e) < 0) {
		decide(v, KBU_VERDICT_UNDECIDED, NULL, "check the firmware: qboot puts it at 0x9fc00 on -M "
		       "microvm,acpi=off", "no MP table found: %s", v->ctx->mem ? e.msg : "no guest memory");
		kbu_mptable_free(&t);
		return;
	}
	size_t cpus = kbu_mptable_ncpus(&t), nio = 0;
	for (size_t i = 0; i < t.nentries; i++)
		nio += !t.entries[i].extended && t.entries[i].type == KBU_MP_IOAPIC;
	kbu_u64(v->facts, "firmware_table", "", t.hdr.addr);
	kbu_u64(v->facts, "entry_count", "", t.hdr.entry_count);
	kbu_u64(v->facts, "entries", "", t.nbase);
	kbu_u64(v->facts, "base_table_length", "", t.hdr.base_len);
	int sum_ok = t.hdr.sum_checked && t.hdr.sum == 0;
	evidence(v, "firmware table", "config table at 0x%" PRIx64 ": %zu entries in %u bytes, "
		 "entry_count %u, checksum %s", t.hdr.addr, t.nbase, t.hdr.base_len, t.hdr.entry_count,
		 !t.hdr.sum_checked ? "not verified" : sum_ok ? "ok" : "bad");
	kbu_u64(v->facts, "firmware_cpus", "", cpus);
	kbu_u64(v->facts, "firmware_ioapics", "", nio);
	evidence(v, "firmware CPUs", "%zu", cpus);
	evidence(v, "firmware I/O APICs", "%zu", nio);
	const struct kbu_mp_count_walk *cw = &t.count_walk;
	struct kbu_node *cwn = kbu_obj(v->facts, "count_walk", "");
	kbu_str(cwn, "outcome", "", kbu_mptable_count_outcome_name(cw->outcome));
	kbu_u64(cwn, "entries_read", "", cw->entries_read);
	kbu_u64(cwn, "entries_past_end", "", cw->entries_past_end);
	kbu_u64(cwn, "cpus", "", cw->cpus);
	if (cw->outcome == KBU_MP_COUNT_UNKNOWN_TYPE) {
		kbu_u64(cwn, "stop_type", "", cw->stop_type);
		kbu_u64(cwn, "stop_offset", "", cw->stop_offset);
		kbu_u64(cwn, "stop_addr", "", cw->stop_addr);
	}
	evidence(v, "walk by entry_count", "%s: %zu entries read (%zu past the end), %zu CPUs",
		 kbu_mptable_count_outcome_name(cw->outcome), cw->entries_read, cw->entries_past_end,
		 cw->cpus);
	const char *count_msg = NULL, *first_error = NULL;
	for (size_t i = 0; i < t.nproblems; i++) {
		const struct kbu_mp_problem *pp = &t.problems[i];
		if (pp->sev >= KBU_SEV_WARN)
			finding(v, pp->code ? pp->code : "mptable", "firmware table: %s", pp->msg);
		if (pp->code && (strcmp(pp->code, "mptable.entry_count_past_end") == 0 ||
				 strcmp(pp->code, "mptable.count_walk_unknown_type") == 0) && !count_msg)
			count_msg = pp->msg;
		if (pp->sev >= KBU_SEV_ERROR && !first_error)
			first_error = pp->msg;
	}
	/* The table the kernel walks, when its pointer is known. */
	char sym[64] = "", how[256] = "";
	uint64_t ktab = kernel_table(v, sym, sizeof sym, how, sizeof how);
	if (ktab) {
		kbu_u64(v->facts, "kernel_table", "", ktab);
		evidence(v, "kernel's table", "%s (%s)", ktab == t.hdr.addr ? "the firmware's table itself"
			 : "a copy", how);
	}
	char ktext[128];
	int64_t kcpus = kernel_cpus(v, ktext, sizeof ktext);
	if (kcpus >= 0) {
		kbu_u64(v->facts, "kernel_cpus", "", (uint64_t)kcpus);
		evidence(v, "kernel's CPU count", "%s", ktext);
	}
	const char *msg = strcmp(end_kind(v), "panic") == 0 ? live_str(v, "end.message") : NULL;
	if (msg) {
		kbu_str(v->facts, "panic", "", msg);
		evidence(v, "panic", "\"%s\" in %s", msg, live_str(v, "end.function")
			 ? live_str(v, "end.function") : "?");
	}
	if (ktab && ktab != t.hdr.addr) {
		/* A copy of its own: walk it too; what differs from the firmware's is the kernel's doing. */
		struct kbu_mptable k;
		struct kbu_err ke = {0};
		memset(&k, 0, sizeof k);
		if (kbu_mptable_read_config(v->ctx->mem, ktab, &k, &ke) == 0) {
			for (size_t i = 0; i < k.nproblems; i++)
				if (k.problems[i].sev >= KBU_SEV_ERROR) {
					decide(v, KBU_VERDICT_PROBLEM, "mptable.copy_changed",
					       "find the writer: watch the entry from boot, or break where the "
					       "kernel copies the table",
					       "the kernel's copy of the MP table (%s at 0x%" PRIx64 ") holds %s, "
					       "where the firmware's table at 0x%" PRIx64 " is %s%s%s%s", sym,
					       ktab, k.problems[i].msg, t.hdr.addr, first_error ? "broken too"
					       : "intact: the copy was changed after it was made",
					       msg ? "; the kernel panicked on it: \"" : "", msg ? msg : "",
					       msg ? "\"" : "");
					kbu_mptable_free(&k);
					goto out;
				}
		}
		kbu_mptable_free(&k);
	}
	if (cw->outcome == KBU_MP_COUNT_UNKNOWN_TYPE || cw->outcome == KBU_MP_COUNT_PAST_END) {
		decide(v, KBU_VERDICT_PROBLEM, cw->outcome == KBU_MP_COUNT_UNKNOWN_TYPE
		       ? "mptable.count_walk_unknown_type" : "mptable.entry_count_past_end",
		       "make the table's entry_count match its entries (the VMM that wrote it counts one "
		       "too many: Firecracker's off-by-one), or walk the table by base_table_length as "
		       "FreeBSD's MPTABLE_LINUX_BUG_COMPAT does for a zero count",
		       "%s%s%s%s", count_msg ? count_msg : "entry_count runs past the table",
		       msg ? "; the kernel panicked on it: \"" : "", msg ? msg : "", msg ? "\"" : "");
		goto out;
	}
	if (first_error) {
		decide(v, KBU_VERDICT_PROBLEM, "mptable.broken",
		       "fix the firmware table (or work around it in the kernel's walker)",
		       "the firmware's MP table is broken: %s", first_error);
		goto out;
	}
	if (kcpus >= 0 && (size_t)kcpus < cpus) {
		char cause[1024];
		snprintf(cause, sizeof cause, "the table holds %zu CPUs but the kernel found %" PRId64, cpus,
			 kcpus);
		if (t.hdr.entry_count == 0)
			cat(cause, sizeof cause, ": the header's entry_count is 0 (QEMU's qboot) and the "
			    "kernel walked the table by entry_count instead of its base table length (%u "
			    "bytes, %zu entries)", t.hdr.base_len, t.nbase);
		decide(v, KBU_VERDICT_PROBLEM, "mptable.kernel_found_fewer",
		       "walk the table by base_table_length, as kbu does", "%s", cause);
		goto out;
	}
	if (msg && (strstr(msg, "MP ") || strstr(msg, "mptable") || strstr(msg, "MP Config"))) {
		decide(v, KBU_VERDICT_PROBLEM, "mptable.panic",
		       "compare the kernel's walker with the entries listed by `kbu mptable`",
		       "the tables look sound but the kernel panicked about them: \"%s\"", msg);
		goto out;
	}
	/* The table's quirks (qboot's) are findings above; the verdict is about the walk. */
	decide(v, KBU_VERDICT_OK, NULL, NULL, "the firmware's MP table is sound (%zu CPUs%s%s)", cpus,
	       kcpus >= 0 ? ", the kernel found " : "", kcpus >= 0 ? ktext + strcspn(ktext, "=") + 2 : "");
out:
	kbu_mptable_free(&t);
}

/* ---- the table of questions ---- */

static const struct kbu_question questions[] = {
	{"panic-triage", "the panic message, the function that raised it and its call chain; what "
	 "to look at next", 0, 0},
	{"tsc-not-initialized", "why the TSC frequency is 0: the CPUID leaves a kernel reads, "
	 "calibration, the assertion", 0, 1},
	{"timecounter-stuck", "the active time source from boot to the end: stuck on a dummy, "
	 "never registered, or fine", 0, 1},
	{"x2apic-mode", "who switched the kernel's x2APIC flag, and whether the CPU offers x2APIC "
	 "at all", 0, 1},
	{"pvh-entry", "the start info and command line the kernel gets at its PVH entry point", 0, 0},
	{"lapic-state", "each local APIC at the end state: enabled?, mode, timer (mode, vector, "
	 "mask, count), errors", 1, 1},
	{"where-are-my-cpus", "the VM's vCPUs, the MP table's and the MADT's processors and the CPUs "
	 "the kernel found: which layer lost them", 0, 1},
	{"mptable-walk", "walk the firmware's MP table as the kernel does: bad entries, entry_count, "
	 "what the kernel saw", 0, 1},
};

static void (*const rules[])(struct run *) = {q_panic, q_tsc, q_timecounter, q_x2apic, q_pvh,
					      q_lapic, q_cpus, q_mptable};

size_t kbu_question_count(void) { return sizeof questions / sizeof questions[0]; }

const struct kbu_question *kbu_question_at(size_t i)
{
	return i < kbu_question_count() ? &questions[i] : NULL;
}

const struct kbu_question *kbu_question_find(const char *name)
{
	for (size_t i = 0; name && i < kbu_question_count(); i++)
		if (strcmp(questions[i].name, name) == 0)
			return &questions[i];
	return NULL;
}

static int unknown_question(const char *question, struct kbu_err *err)
{
	char known[512] = "";
	for (size_t i = 0; i < kbu_question_count(); i++)
		cat(known, sizeof known, "%s%s", i ? ", " : "", questions[i].name);
	return kbu_err_set(err, KBU_EINVAL, "unknown question '%s' (known: %s)",
			   question ? question : "", known);
}

/* Runs a question's rule; the run is freed by finish(). */
static struct run *ask(struct kbu_ctx *ctx, const struct kbu_question *q, const struct kbu_json *lv,
		       const struct kbu_verdict_opts *o, struct kbu_report *r, struct kbu_err *err)
{
	struct run *v = calloc(1, sizeof *v);
	if (!v) {
		kbu_err_set(err, KBU_ENOMEM, "out of memory");
		return NULL;
	}
	v->ctx = ctx;
	v->q = q;
	v->live = lv;
	v->opts = o;
	v->rep = r;
	v->root = kbu_report_root(r);
	v->syms = ctx->syms && kbu_symtab_count(ctx->syms) ? ctx->syms : NULL;
	uint64_t slide;
	if (live_u64(v, "slide", &slide) == 0)
		v->slide = (int64_t)slide;
	else if (o && o->slide)
		v->slide = o->slide;
	v->status = KBU_VERDICT_UNDECIDED;
	kbu_str(v->root, "recipe", "", q->name);
	kbu_str(v->root, "summary", "", q->summary);
	/* filled by the rule; the verdict follows */
	v->facts = kbu_obj(v->root, "facts", "");
	rules[q - questions](v);
	if (!v->decided)
		decide(v, KBU_VERDICT_UNDECIDED, NULL, NULL, "the rules reached no verdict");
	return v;
}

static void finish(struct run *v)
{
	for (size_t i = 0; i < v->nev; i++)
		free(v->ev[i].text);
	for (size_t i = 0; i < v->nfi; i++)
		free(v->fi[i].msg);
	free(v->log);
	kbu_os_free(v->prof);
	free(v);
}

int kbu_verdict(struct kbu_ctx *ctx, const char *question, const struct kbu_json *lv,
		const struct kbu_verdict_opts *o, struct kbu_report *r, struct kbu_err *err)
{
	const struct kbu_question *q = kbu_question_find(question);
	if (!q)
		return unknown_question(question, err);
	struct run *v = ask(ctx, q, lv, o, r, err);
	if (!v)
		return -1;
	render(v);
	int status = v->status;
	finish(v);
	return status;
}

int kbu_verdict_summary(struct kbu_ctx *ctx, const char *question, const struct kbu_json *lv,
			const struct kbu_verdict_opts *o, struct kbu_verdict_outcome *out,
			struct kbu_err *err)
{
	const struct kbu_question *q = kbu_question_find(question);
	if (!q)
		return unknown_question(question, err);
	/* The rule fills a scratch report; only its conclusion is kept. */
	struct kbu_report *scratch = kbu_report_new("verdict");
	if (!scratch)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory");
	struct run *v = ask(ctx, q, lv, o, scratch, err);
	if (!v) {
		kbu_report_free(scratch);
		return -1;
	}
	memset(out, 0, sizeof *out);
	out->status = v->status;
	out->code = v->code;
	snprintf(out->cause, sizeof out->cause, "%s", v->cause);
	snprintf(out->next, sizeof out->next, "%s", v->next);
	finish(v);
	kbu_report_free(scratch);
	return out->status;
}
