/* kbu commands: the registry, the context, and kbu_run (help, needs, exit status). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/os.h"
#include "kbu/elf.h"
#include "kbu/mem.h"
#include "kbu/report.h"
#include "kbu/symbols.h"

/* The one piece of global state: filled by constructors before main runs. */
static struct kbu_command *registry;

void kbu_command_register(struct kbu_command *cmd)
{
	for (struct kbu_command *c = registry; c; c = c->next)
		if (c == cmd)
			return;
	cmd->next = registry;
	registry = cmd;
}

const struct kbu_command *kbu_command_find(const char *name)
{
	if (!name)
		return NULL;
	for (const struct kbu_command *c = registry; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static int by_name(const void *a, const void *b)
{
	const struct kbu_command *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

size_t kbu_command_list(const struct kbu_command **out, size_t max)
{
	size_t n = 0, total = 0;
	for (const struct kbu_command *c = registry; c; c = c->next) {
		if (out && n < max)
			out[n++] = c;
		total++;
	}
	if (out && n)
		qsort(out, n, sizeof *out, by_name);
	return total;
}

struct kbu_ctx *kbu_ctx_new(void)
{
	struct kbu_ctx *ctx = calloc(1, sizeof *ctx);
	if (ctx)
		strcpy(ctx->os, "auto");
	return ctx;
}

void kbu_ctx_free(struct kbu_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->mem)
		kbu_mem_close(ctx->mem);
	if (ctx->syms)
		kbu_symtab_free(ctx->syms);
	if (ctx->kernel)
		kbu_elf_close(ctx->kernel);
	free(ctx);
}

int kbu_ctx_set_mem(struct kbu_ctx *ctx, struct kbu_mem *mem)
{
	if (!ctx)
		return -1;
	if (ctx->mem && ctx->mem != mem)
		kbu_mem_close(ctx->mem);
	ctx->mem = mem;
	return 0;
}

static struct kbu_symtab *ctx_symtab(struct kbu_ctx *ctx, struct kbu_err *err)
{
	if (!ctx->syms) {
		ctx->syms = kbu_symtab_new();
		if (!ctx->syms)
			kbu_err_set(err, KBU_ENOMEM, "out of memory for the symbol table");
	}
	return ctx->syms;
}

int kbu_ctx_load_kernel(struct kbu_ctx *ctx, const char *path, struct kbu_err *err)
{
	if (!ctx || !path)
		return kbu_err_set(err, KBU_EINVAL, "no kernel path given");
	if (ctx->kernel)
		return kbu_err_set(err, KBU_EINVAL, "a kernel is already loaded (%s)",
				   kbu_elf_path(ctx->kernel));
	struct kbu_elf *e = kbu_elf_open(path, err);
	if (!e)
		return -1;
	struct kbu_symtab *st = ctx_symtab(ctx, err);
	if (!st) {
		kbu_elf_close(e);
		return -1;
	}
	if (kbu_symtab_load_elf(st, e, err) < 0 || kbu_symtab_finish(st, err) < 0) {
		kbu_elf_close(e);
		return -1;
	}
	ctx->kernel = e;
	return 0;
}

int kbu_ctx_load_symbols(struct kbu_ctx *ctx, const char *path, struct kbu_err *err)
{
	if (!ctx || !path)
		return kbu_err_set(err, KBU_EINVAL, "no symbol map path given");
	struct kbu_symtab *st = ctx_symtab(ctx, err);
	if (!st)
		return -1;
	if (kbu_symtab_load_map(st, path, err) < 0 || kbu_symtab_finish(st, err) < 0)
		return -1;
	return 0;
}

int kbu_ctx_need_mem(struct kbu_ctx *ctx, struct kbu_err *err)
{
	if (ctx && ctx->mem)
		return 0;
	return kbu_err_set(err, KBU_EINVAL,
			   "needs guest memory: give --core DUMP, --phys FILE[@BASE] or --gdb STUB "
			   "(HOST:PORT or a UNIX socket path)");
}

int kbu_ctx_need_kernel(struct kbu_ctx *ctx, struct kbu_err *err)
{
	if (ctx && ctx->kernel)
		return 0;
	return kbu_err_set(err, KBU_EINVAL, "needs a kernel image: give --kernel ELF");
}

int kbu_ctx_need_syms(struct kbu_ctx *ctx, struct kbu_err *err)
{
	if (ctx && ctx->syms && kbu_symtab_count(ctx->syms))
		return 0;
	/* A stripped --kernel alone leaves an empty table: say why it is empty. */
	if (ctx && ctx->syms && kbu_symtab_why_empty(ctx->syms))
		return kbu_err_set(err, KBU_ENOTFOUND, "needs symbols: %s",
				   kbu_symtab_why_empty(ctx->syms));
	return kbu_err_set(err, KBU_EINVAL, "needs symbols: give --kernel ELF or --symbols MAP");
}

static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	}
	return 0;
}

int kbu_run(struct kbu_ctx *ctx, int argc, char **argv, int json, char **out, struct kbu_err *err)
{
	struct kbu_err local;
	if (!err)
		err = &local;
	kbu_err_clear(err);
	if (out)
		*out = NULL;
	if (!ctx || argc < 1 || !argv || !argv[0] || !out) {
		kbu_err_set(err, KBU_EINVAL, "no command given (kbu --help lists them)");
		return 2;
	}
	const struct kbu_command *cmd = kbu_command_find(argv[0]);
	if (!cmd) {
		kbu_err_set(err, KBU_EINVAL, "unknown command '%s' (kbu --help lists them)", argv[0]);
		return 2;
	}
	if (wants_help(argc, argv)) {
		const char *h = cmd->help ? cmd->help : cmd->summary ? cmd->summary : cmd->name;
		size_t n = strlen(h);
		*out = malloc(n + 2);
		if (!*out) {
			kbu_err_set(err, KBU_ENOMEM, "out of memory");
			return 2;
		}
		memcpy(*out, h, n);
		if (n && h[n - 1] != '\n')
			(*out)[n++] = '\n';
		(*out)[n] = '\0';
		return 0;
	}
	if (((cmd->needs & KBU_NEEDS_MEM) && kbu_ctx_need_mem(ctx, err) < 0) ||
	    ((cmd->needs & KBU_NEEDS_KERNEL) && kbu_ctx_need_kernel(ctx, err) < 0) ||
	    ((cmd->needs & KBU_NEEDS_SYMS) && kbu_ctx_need_syms(ctx, err) < 0))
		return 2;
	struct kbu_report *r = kbu_report_new(cmd->name);
	if (!r) {
		kbu_err_set(err, KBU_ENOMEM, "out of memory");
		return 2;
	}
	if (cmd->run(ctx, argc, argv, r, err) < 0) {
		if (!err->msg[0])
			kbu_err_set(err, KBU_EINVAL, "failed without saying why");
		kbu_report_free(r);
		return 2;
	}
	*out = kbu_report_render(r, json);
	int problems = kbu_report_problems(r);
	kbu_report_free(r);
	if (!*out) {
		kbu_err_set(err, KBU_ENOMEM, "out of memory rendering the report");
		return 2;
	}
	return problems && ctx->strict ? 1 : 0;
}

struct kbu_os_profile *kbu_ctx_profile(const struct kbu_ctx *ctx, const char *os,
				       const char *profile, struct kbu_err *err)
{
	struct kbu_os_evidence ev = {ctx->syms, ctx->kernel};
	return kbu_os_select(os ? os : ctx->os, profile, &ev, err);
}

/* ---- options and arguments, read from help text ------------------------------ */

static const char *const context_options[] = {
	"core", "phys", "gdb", "kernel", "symbols", "os", "json", "strict", "stats", "timeout", "help",
	"version",
};

int kbu_option_is_context(const char *name)
{
	if (!name)
		return 0;
	while (*name == '-')
		name++;
	for (size_t i = 0; i < sizeof context_options / sizeof context_options[0]; i++)
		if (strcmp(name, context_options[i]) == 0)
			return 1;
	return 0;
}

#define HELP_WORD 96

/* What the parser collects; out/max may be NULL/0 (then only counted). */
struct help_scan {
	struct kbu_option_info *opts;
	size_t opts_max, nopts;
	struct kbu_arg_info *args;
	size_t args_max, nargs;
	struct kbu_arg_info spare_arg; /* filled for entries past args_max, then dropped */
	char seen_opts[64][32];
	char seen_args[32][48];
};

static int is_lower(int c) { return c >= 'a' && c <= 'z'; }
static int is_upper(int c) { return c >= 'A' && c <= 'Z'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alnum(int c) { return is_lower(c) || is_upper(c) || is_digit(c); }

static void copy_str(char *dst, size_t cap, const char *src, size_t len)
{
	if (!cap)
		return;
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* "-p", "--table": a dash, then a letter or digit (or a second dash and one). */
static int is_option_word(const char *w)
{
	if (w[0] != '-')
		return 0;
	if (is_alnum((unsigned char)w[1]))
		return 1;
	return w[1] == '-' && is_alnum((unsigned char)w[2]);
}

/* A value's name as usages write it: FILE, H:P, NAME=ADDR, a|b|c, or "-" (stdin). */
static int is_value_word(const char *w)
{
	if (strcmp(w, "-") == 0 || strchr(w, '|'))
		return 1;
	if (!is_upper((unsigned char)w[0]))
		return 0;
	for (const char *p = w; *p; p++)
		if (is_lower((unsigned char)*p))
			return 0;
	return 1;
}

static int word_in(const char *w, size_t len, const char *const *list)
{
	for (; *list; list++)
		if (strlen(*list) == len && strncmp(w, *list, len) == 0)
			return 1;
	return 0;
}

/* The kind of a value from its name: FILE[@BASE] is a file, ADDR|SYMBOL an address. */
static int value_kind(const char *v)
{
	static const char *const files[] = {"FILE", "F", "ELF", "MAP", "DUMP", "DIR", "PATH",
					    "CORE", "KERNEL", "PROFILE", NULL};
	static const char *const addrs[] = {"ADDR", "ADDRESS", "SYMBOL", "SYM", "NAME", "FUNCTION",
					    NULL};
	static const char *const nums[] = {"N", "X", "BYTES", "CPU", "LEN", "PORT", "SIZE", "S",
					   "COUNT", "BASE", "NUM", NULL};
	if (!v[0])
		return KBU_VALUE_NONE;
	if (strchr(v, '|')) {
		int upper = 0;
		for (const char *p = v; *p; p++)
			upper |= is_upper((unsigned char)*p);
		if (!upper)
			return KBU_VALUE_CHOICE;
	}
	size_t len = strcspn(v, "|[=,.:");
	if (v[len] == '=' || v[len] == ':')
		return KBU_VALUE_TEXT; /* NAME=ADDR, H:P: a compound value */
	if (word_in(v, len, files))
		return KBU_VALUE_FILE;
	if (word_in(v, len, addrs))
		return KBU_VALUE_ADDRESS;
	if (word_in(v, len, nums))
		return KBU_VALUE_NUMBER;
	return KBU_VALUE_TEXT;
}

/* Index of option `name` (found or added); SIZE_MAX when the table is full. */
static size_t scan_option(struct help_scan *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->nopts && i < sizeof s->seen_opts / sizeof s->seen_opts[0]; i++)
		if (strlen(s->seen_opts[i]) == len && strncmp(s->seen_opts[i], name, len) == 0)
			return i;
	if (s->nopts >= sizeof s->seen_opts / sizeof s->seen_opts[0])
		return SIZE_MAX;
	size_t i = s->nopts++;
	copy_str(s->seen_opts[i], sizeof s->seen_opts[i], name, len);
	struct kbu_option_info *o = i < s->opts_max && s->opts ? &s->opts[i] : NULL;
	if (o) {
		memset(o, 0, sizeof *o);
		copy_str(o->name, sizeof o->name, name, len);
		o->context = kbu_option_is_context(o->name);
	}
	return i;
}

static struct kbu_option_info *option_at(struct help_scan *s, size_t i)
{
	if (i == SIZE_MAX)
		return NULL;
	return s->opts && i < s->opts_max ? &s->opts[i] : NULL;
}

static void set_value(struct kbu_option_info *o, const char *v)
{
	if (!o || o->value[0])
		return;
	copy_str(o->value, sizeof o->value, v, strlen(v));
	o->kind = value_kind(o->value);
	if (o->kind == KBU_VALUE_CHOICE)
		copy_str(o->choices, sizeof o->choices, o->value, strlen(o->value));
}

static struct kbu_arg_info *scan_arg(struct help_scan *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->nargs && i < sizeof s->seen_args / sizeof s->seen_args[0]; i++)
		if (strlen(s->seen_args[i]) == len && strncmp(s->seen_args[i], name, len) == 0)
			return s->args && i < s->args_max ? &s->args[i] : &s->spare_arg;
	if (s->nargs >= sizeof s->seen_args / sizeof s->seen_args[0])
		return &s->spare_arg;
	size_t i = s->nargs++;
	copy_str(s->seen_args[i], sizeof s->seen_args[i], name, len);
	struct kbu_arg_info *a = s->args && i < s->args_max ? &s->args[i] : &s->spare_arg;
	memset(a, 0, sizeof *a);
	copy_str(a->name, sizeof a->name, name, len);
	a->kind = value_kind(a->name);
	if (a->kind == KBU_VALUE_NONE)
		a->kind = KBU_VALUE_TEXT;
	return a;
}

/* "auto, freebsd, netbsd or linux" (after any "label:", without "(...)"): the choices. */
static int choices_from_text(const char *text, char *out, size_t cap)
{
	char buf[240];
	size_t n = 0;
	int paren = 0;
	const char *start = strrchr(text, ':');
	for (const char *p = start ? start + 1 : text; *p && n + 1 < sizeof buf; p++) {
		if (*p == '(')
			paren++;
		else if (*p == ')' && paren)
			paren--;
		else if (!paren)
			buf[n++] = *p;
	}
	buf[n] = '\0';
	char res[96] = "";
	size_t rn = 0;
	int words = 0, sep_or = 0, last_after_or = 0;
	const char *p = buf + strspn(buf, " ");
	while (*p) {
		last_after_or = sep_or;
		const char *w = p;
		while (is_lower((unsigned char)*p) || is_digit((unsigned char)*p) || *p == '-')
			p++;
		size_t len = (size_t)(p - w);
		if (!len || rn + len + 2 > sizeof res)
			return 0;
		if (rn)
			res[rn++] = '|';
		memcpy(res + rn, w, len);
		rn += len;
		res[rn] = '\0';
		words++;
		/* between two words: "," and/or "or"; nothing else */
		int comma = 0;
		sep_or = 0;
		p += strspn(p, " ");
		if (*p == ',') {
			comma = 1;
			p++;
			p += strspn(p, " ");
		}
		if (strncmp(p, "or ", 3) == 0) {
			sep_or = 1;
			p += 3;
			p += strspn(p, " ");
		}
		if (*p && !comma && !sep_or)
			return 0;
		if (!*p && (comma || sep_or))
			return 0;
	}
	if (words < 2 || !last_after_or)
		return 0;
	copy_str(out, cap, res, rn);
	return 1;
}

/* The usage block: from the line starting "usage:" to the first blank line. */
static void usage_block(const char *help, const char **line_start, const char **start,
			const char **end)
{
	*line_start = *start = *end = NULL;
	for (const char *line = help; line && *line;) {
		const char *p = line;
		while (*p == ' ')
			p++;
		if (strncmp(p, "usage:", 6) == 0 || strncmp(p, "Usage:", 6) == 0) {
			*line_start = line;
			*start = p + 6;
			const char *q = p;
			for (;;) {
				const char *nl = strchr(q, '\n');
				if (!nl) {
					*end = q + strlen(q);
					return;
				}
				const char *r = nl + 1;
				while (*r == ' ' || *r == '\t')
					r++;
				if (*r == '\n' || *r == '\0') {
					*end = nl;
					return;
				}
				q = nl + 1;
			}
		}
		const char *nl = strchr(line, '\n');
		line = nl ? nl + 1 : NULL;
	}
}

struct usage_word {
	char w[HELP_WORD];
	int group;    /* innermost bracket group, 0 = none */
	int boundary; /* a bracket or a line start lies between this word and the one before */
};

#define USAGE_WORDS 256
#define USAGE_GROUPS 64

/* Words of the usage block with their bracket groups. A '[' inside a word
 * (FILE[@BASE], LEAF[.SUB]) is part of the word, not a group. */
static size_t usage_words(const char *s, const char *end, struct usage_word *words, size_t max,
			  int *parent, int *ngroups)
{
	size_t n = 0;
	int stack[16], depth = 0, inner = 0, boundary = 1;
	char cur[HELP_WORD];
	size_t len = 0;
	*ngroups = 1;
	parent[0] = 0;
	for (const char *p = s;; p++) {
		int c = p < end ? (unsigned char)*p : '\0';
		int ends_word = c == '\0' || c == ' ' || c == '\t' || c == '\n' ||
				((c == ']' || c == ')') && !inner);
		if (!ends_word && !(len == 0 && (c == '[' || c == '('))) {
			if (c == '[' && len)
				inner++;
			else if (c == ']' && inner)
				inner--;
			if (len + 1 < sizeof cur)
				cur[len++] = (char)c;
			continue;
		}
		if (len) {
			cur[len] = '\0';
			while (len && cur[len - 1] == ',')
				cur[--len] = '\0';
			if (len && n < max) {
				copy_str(words[n].w, sizeof words[n].w, cur, len);
				words[n].group = depth ? stack[depth - 1] : 0;
				words[n].boundary = boundary;
				n++;
			}
			len = 0;
			inner = 0;
			boundary = 0;
		}
		if (c == '\0')
			break;
		if (c == '\n')
			boundary = 1;
		if (c == '[' || c == '(') {
			if (depth < 16 && *ngroups < USAGE_GROUPS) {
				parent[*ngroups] = depth ? stack[depth - 1] : 0;
				stack[depth++] = (*ngroups)++;
			}
			boundary = 1;
		} else if (c == ']' || c == ')') {
			if (depth)
				depth--;
			boundary = 1;
		}
	}
	return n;
}

static void scan_usage(struct help_scan *s, const char *help)
{
	const char *line_start, *start, *end;
	usage_block(help, &line_start, &start, &end);
	if (!start)
		return;
	struct usage_word words[USAGE_WORDS];
	int parent[USAGE_GROUPS], ngroups;
	int prose[USAGE_GROUPS] = {0};
	size_t n = usage_words(start, end, words, USAGE_WORDS, parent, &ngroups);
	/* A bracket group holding plain words ("[options]", "(with --core or --gdb)")
	 * is prose: its upper-case words are not arguments. */
	for (size_t i = 0; i < n; i++) {
		const char *w = words[i].w;
		if (words[i].group && !is_option_word(w) && !is_value_word(w) && strcmp(w, "--") &&
		    strcmp(w, "...") && strcmp(w, "kbu"))
			prose[words[i].group] = 1;
	}
	size_t pending = SIZE_MAX;
	int pending_group = -1;
	struct kbu_arg_info *last_arg = NULL;
	for (size_t i = 0; i < n; i++) {
		if (words[i].boundary)
			pending = SIZE_MAX;
		char parts[8][HELP_WORD];
		size_t nparts = 0;
		const char *w = words[i].w;
		if (strspn(w, "|") == strlen(w)) { /* "--at ADDR | --table ...": a separator */
			pending = SIZE_MAX;
			continue;
		}
		/* "F|--phys": a value, then an option; "ADDR|SYMBOL": one value. */
		int split = 0;
		if (strchr(w, '|')) {
			for (const char *p = w; *p;) {
				size_t len = strcspn(p, "|");
				char part[HELP_WORD];
				copy_str(part, sizeof part, p, len);
				split |= is_option_word(part);
				p += len + (p[len] == '|');
			}
		}
		if (split) {
			for (const char *p = w; *p && nparts < 8;) {
				size_t len = strcspn(p, "|");
				copy_str(parts[nparts++], HELP_WORD, p, len);
				p += len + (p[len] == '|');
			}
		} else {
			copy_str(parts[nparts++], HELP_WORD, w, strlen(w));
		}
		for (size_t k = 0; k < nparts; k++) {
			char *t = parts[k];
			int group = words[i].group;
			if (strcmp(t, "...") == 0) {
				if (last_arg)
					last_arg->repeats = 1;
				continue;
			}
			if (is_option_word(t)) {
				char *eq = strchr(t, '=');
				size_t len = eq ? (size_t)(eq - t) : strlen(t);
				pending = scan_option(s, t, len);
				pending_group = group;
				if (eq) {
					set_value(option_at(s, pending), eq + 1);
					pending = SIZE_MAX;
				}
				last_arg = NULL;
				continue;
			}
			if (!is_value_word(t) || strcmp(t, "-") == 0) {
				pending = SIZE_MAX;
				continue;
			}
			if (pending != SIZE_MAX && pending_group == group) {
				set_value(option_at(s, pending), t);
				pending = SIZE_MAX;
				continue;
			}
			pending = SIZE_MAX;
			int in_prose = 0;
			for (int g = group, hops = 0; g && hops < 16; g = parent[g], hops++)
				in_prose |= prose[g];
			if (in_prose)
				continue;
			size_t len = strlen(t);
			int repeats = len > 3 && strcmp(t + len - 3, "...") == 0;
			if (repeats)
				len -= 3;
			struct kbu_arg_info *a = scan_arg(s, t, len);
			a->optional = group != 0;
			a->repeats |= repeats;
			last_arg = a;
		}
	}
}

/* "  -p, --port PORT   text" lines (indented at most 6), with their deeper continuations. */
static void scan_option_lines(struct help_scan *s, const char *help)
{
	const char *uline, *ustart, *uend;
	usage_block(help, &uline, &ustart, &uend);
	struct kbu_option_info *cont = NULL;
	for (const char *line = help; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t linelen = nl ? (size_t)(nl - line) : strlen(line);
		const char *next = nl ? nl + 1 : NULL;
		if (uline && line >= uline && line < uend) {
			cont = NULL;
			line = next;
			continue;
		}
		char buf[512];
		copy_str(buf, sizeof buf, line, linelen);
		size_t indent = strspn(buf, " ");
		char *p = buf + indent;
		if (indent > 6 && *p && cont) {
			size_t tl = strlen(cont->text);
			if (tl && tl + 1 < sizeof cont->text)
				cont->text[tl++] = ' ';
			copy_str(cont->text + tl, sizeof cont->text - tl, p, strlen(p));
			line = next;
			continue;
		}
		cont = NULL;
		if (indent < 1 || indent > 6 || !is_option_word(p)) {
			line = next;
			continue;
		}
		char first[HELP_WORD], second[HELP_WORD] = "";
		size_t len = strcspn(p, " ");
		copy_str(first, sizeof first, p, len);
		p += len;
		size_t flen = strlen(first);
		if (flen && first[flen - 1] == ',') {
			first[flen - 1] = '\0';
			p += strspn(p, " ");
			size_t l2 = strcspn(p, " ");
			copy_str(second, sizeof second, p, l2);
			if (is_option_word(second))
				p += l2;
			else
				second[0] = '\0';
		}
		const char *longname = second[0] ? second : first;
		char *eq = strchr(longname, '=');
		size_t idx = scan_option(s, longname, eq ? (size_t)(eq - longname) : strlen(longname));
		struct kbu_option_info *o = option_at(s, idx);
		if (o && second[0] && !o->short_name[0])
			copy_str(o->short_name, sizeof o->short_name, first, strlen(first));
		if (eq)
			set_value(o, eq + 1);
		/* A value follows after one space; the text after two or more. */
		if (p[0] == ' ' && p[1] != ' ' && p[1]) {
			size_t vl = strcspn(p + 1, " ");
			char v[HELP_WORD];
			copy_str(v, sizeof v, p + 1, vl);
			if (is_value_word(v) && strcmp(v, "-")) {
				set_value(o, v);
				p += 1 + vl;
			}
		}
		p += strspn(p, " ");
		if (o && !o->text[0])
			copy_str(o->text, sizeof o->text, p, strlen(p));
		cont = o;
		line = next;
	}
	/* Choices named only in the description: "--os NAME  auto, freebsd, netbsd or linux". */
	for (size_t i = 0; s->opts && i < s->nopts && i < s->opts_max; i++) {
		struct kbu_option_info *o = &s->opts[i];
		if (o->value[0] && o->kind != KBU_VALUE_CHOICE &&
		    choices_from_text(o->text, o->choices, sizeof o->choices))
			o->kind = KBU_VALUE_CHOICE;
	}
}

static void help_scan_run(struct help_scan *s, const char *help)
{
	if (!help)
		return;
	scan_usage(s, help);
	scan_option_lines(s, help);
}

size_t kbu_help_options(const char *help, struct kbu_option_info *out, size_t max)
{
	struct help_scan *s = calloc(1, sizeof *s);
	if (!s)
		return 0;
	s->opts = out;
	s->opts_max = out ? max : 0;
	help_scan_run(s, help);
	size_t n = s->nopts;
	free(s);
	return n;
}

size_t kbu_help_args(const char *help, struct kbu_arg_info *out, size_t max)
{
	struct help_scan *s = calloc(1, sizeof *s);
	if (!s)
		return 0;
	s->args = out;
	s->args_max = out ? max : 0;
	help_scan_run(s, help);
	size_t n = s->nargs;
	free(s);
	return n;
}

static const char *command_help(const char *name)
{
	const struct kbu_command *c = kbu_command_find(name);
	if (!c)
		return NULL;
	return c->help ? c->help : "";
}

size_t kbu_command_options(const char *name, struct kbu_option_info *out, size_t max)
{
	const char *h = command_help(name);
	return h ? kbu_help_options(h, out, max) : 0;
}

size_t kbu_command_args(const char *name, struct kbu_arg_info *out, size_t max)
{
	const char *h = command_help(name);
	return h ? kbu_help_args(h, out, max) : 0;
}
