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
#include "kbu/dmesg.h"
#include "kbu/json.h"
#include "kbu/mem.h"
#include "kbu/os.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/triage.h"

#include "verdict_int.h"

/* ---- the run: facts gathered, evidence, verdict ---- */

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
void evidence(struct run *v, const char *label, const char *fmt, ...)
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

void finding(struct run *v, const char *code, const char *fmt, ...)
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

void decide(struct run *v, int status, const char *code, const char *next,
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
void cat(char *buf, size_t len, const char *fmt, ...)
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

const struct kbu_json *live(const struct run *v, const char *path)
{
	return kbu_json_path(v->live, path);
}

const char *live_str(const struct run *v, const char *path)
{
	return kbu_json_str(live(v, path));
}

int live_u64(const struct run *v, const char *path, uint64_t *out)
{
	return kbu_json_u64(live(v, path), out);
}

const char *end_kind(const struct run *v)
{
	const char *k = live_str(v, "end.kind");
	return k ? k : "";
}

/* The kernel panicked: the end state says so, or its panicstr is set, or its log has the
 * panic line (a dump). The message goes to msg when one is known. */
int panicked(struct run *v, char *msg, size_t len)
{
	if (msg && len)
		msg[0] = '\0';
	if (strcmp(end_kind(v), "panic") == 0) {
		if (msg && live_str(v, "end.message"))
			snprintf(msg, len, "%s", live_str(v, "end.message"));
		return 1;
	}
	const struct kbu_triage_kstate *ks = kstate(v);
	if (ks->panicstr.state == KBU_TRIAGE_VAR_OK && ks->panicstr.value) {
		if (msg)
			snprintf(msg, len, "%s", ks->panicstr_text);
		return 1;
	}
	struct lines lp = log_lines(v, "^(Kernel panic - not syncing: |panic: )", 0);
	int found = lp.n > 0;
	if (found && msg) {
		const char *t = lp.l[lp.n - 1];
		t += strncmp(t, "panic: ", 7) == 0 ? 7 : strlen("Kernel panic - not syncing: ");
		snprintf(msg, len, "%s", t);
	}
	lines_free(&lp);
	return found;
}

/* JSON value -> report field (the end state is copied through as it came). */

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

void json_field(struct kbu_node *o, const char *key, const struct kbu_json *j)
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

const struct kbu_os_profile *profile(struct run *v)
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

const char *os_name(struct run *v)
{
	const struct kbu_os_profile *p = profile(v);
	return p ? kbu_os_name(p) : "unknown";
}

/* The OS as a porter names it: the profile's description up to its '/'
 * ("Linux/x86-64 6.1" -> "Linux"), else the profile's name. */
const char *os_display(struct run *v, char *buf, size_t len)
{
	const struct kbu_os_profile *p = profile(v);
	const char *d = p ? kbu_os_get(p, "profile", "description") : NULL;
	if (!d || !*d)
		return os_name(v);
	snprintf(buf, len, "%.*s", (int)strcspn(d, "/ "), d);
	return buf;
}

const struct kbu_triage_kstate *kstate(struct run *v)
{
	if (!v->ks_read) {
		v->ks_read = 1;
		memset(&v->ks, 0, sizeof v->ks);
		if (profile(v) && v->ctx->mem)
			kbu_triage_read_kstate(v->ctx->mem, v->ctx->kernel, v->syms, v->prof, 0,
					       &v->ks);
	}
	return &v->ks;
}

/* A kernel variable of a role, as an unsigned number of the role's size; 0 found. */
int role_var(struct run *v, const char *role, uint32_t size, uint64_t *out, char *sym,
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
		/* ROLE_offset: the field's offset in the structure the symbol names */
		char key[96];
		snprintf(key, sizeof key, "%s_offset", role);
		uint64_t off = kbu_os_role_num(p, key, 0);
		if (sym && off)
			snprintf(sym, symlen, "%s+%" PRIu64, w, off);
		else if (sym)
			snprintf(sym, symlen, "%s", w);
		struct kbu_err e = {0};
		return kbu_read_kva_uint(v->ctx->mem, v->ctx->kernel, s->addr + off, size,
					 out, &e);
	}
	return -1;
}

/* The kernel's log: its message buffer, else the console text handed in. */
const char *kernel_log(struct run *v)
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

void lines_free(struct lines *ls)
{
	for (size_t i = 0; i < ls->n; i++)
		free(ls->l[i]);
	free(ls->l);
	ls->l = NULL;
	ls->n = 0;
}

/* Log lines matching an extended regex (case-insensitive with icase), without
 * the console timestamp, each once. */
struct lines log_lines(struct run *v, const char *pattern, int icase)
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
void lines_fact(struct run *v, const char *key, const char *label, const struct lines *ls,
		size_t show)
{
	if (!ls->n)
		return;
	struct kbu_node *l = kbu_list(v->facts, key, "");
	for (size_t i = 0; i < ls->n; i++)
		kbu_item_str(l, ls->l[i]);
	char text[4096] = "";
	size_t from = ls->n > show ? ls->n - show : 0;
	for (size_t i = from; i < ls->n; i++)
		cat(text, sizeof text, "%s%s", i > from ? "\n" : "", ls->l[i]);
	evidence(v, label, "%s", text);
}

void log_fact(struct run *v, const struct lines *ls, size_t show)
{
	lines_fact(v, "log", "kernel log", ls, show);
}

/* "a; b; c" of quoted lines. */
void quoted(char *buf, size_t len, const struct lines *ls, size_t from)
{
	buf[0] = '\0';
	for (size_t i = from; i < ls->n; i++)
		cat(buf, len, "%s\"%s\"", i > from ? "; " : "", ls->l[i]);
}

/* A JSON list as a fact list (an empty one when j is not a list). */
void json_list(struct kbu_node *o, const char *key, const struct kbu_json *j)
{
	if (kbu_json_type(j) == KBU_JSON_ARRAY)
		json_field(o, key, j);
	else
		kbu_list(o, key, "");
}

/* A watch's changes ([{cpu, old, new, where}]) as a fact and as evidence lines. */
void watch_changes(struct run *v, const struct kbu_json *changes)
{
	json_list(v->facts, "changes", changes);
	char ct[2048] = "";
	for (size_t i = 0; i < kbu_json_len(changes); i++) {
		const struct kbu_json *c = kbu_json_at(changes, i);
		cat(ct, sizeof ct, "%s%s -> %s on CPU %" PRIu64 " at %s", i ? "\n" : "",
		    kbu_json_get_str(c, "old", "?"), kbu_json_get_str(c, "new", "?"),
		    kbu_json_get_u64(c, "cpu", 0), kbu_json_get_str(c, "where", "?"));
	}
	evidence(v, "changes", "%s", ct[0] ? ct : "none");
}

/* ---- the end state ---- */

void end_text(struct run *v, char *buf, size_t len)
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
	struct kbu_node *t = kbu_text_obj(root, "text");
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
	struct kbu_node *tv = kbu_text_obj(root, "text_verdict");
	kbu_textline(tv, "VERDICT: %s: %s", result_word(v->status),
		     v->cause[0] ? v->cause : "(no cause given)");
	if (v->next[0])
		kbu_textline(tv, "next step: %s", v->next);
}

/* The CPUID leaves the debugger ran, as a kbu_cpuid_set. */
int live_cpuid(struct run *v, struct kbu_cpuid_set *set)
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

/* "'dummy' (1000000 Hz, ...)" -> "'dummy'" */
void short_text(const char *text, char *buf, size_t len)
{
	const char *p = strstr(text ? text : "", " (");
	size_t n = p ? (size_t)(p - text) : strlen(text ? text : "");
	snprintf(buf, len, "%.*s", (int)n, text ? text : "");
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
	{"where-are-my-devices", "where the VM describes its virtio-mmio devices (command line or "
	 "ACPI) and whether this kernel looks there", 0, 0},
};

static void (*const rules[])(struct run *) = {q_panic, q_tsc, q_timecounter, q_x2apic, q_pvh,
					      q_lapic, q_cpus, q_mptable, q_devices};

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
	int64_t sl = 0;
	if (live_u64(v, "slide", &slide) == 0)
		sl = (int64_t)slide;
	else if (o && o->slide)
		sl = o->slide;
	/* Every rule reads the kernel where it runs: the symbols are moved once
	 * by the runtime slide (KASLR), so no reader can forget it. */
	if (v->syms && sl) {
		v->slid = kbu_symtab_slid(v->syms, sl, err);
		if (!v->slid) {
			kbu_err_prefix(err, "moving the symbols by the slide 0x%" PRIx64, (uint64_t)sl);
			free(v);
			return NULL;
		}
		v->syms = v->slid;
	}
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
	kbu_symtab_free(v->slid);
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
