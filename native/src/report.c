/*
 * kbu report model: a tree of nodes rendered as aligned text or as JSON.
 * Allocation failures make the report remember it ran out of memory; every
 * builder call on a NULL node is a no-op, so commands need no OOM checks.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/report.h"

enum node_type {
	N_OBJ, N_LIST, N_STR, N_U64, N_I64, N_HEX, N_BOOL, N_NULL, N_BYTES, N_TEXT, N_PROBLEM,
};

struct kbu_node {
	enum node_type type;
	struct kbu_report *rep;
	struct kbu_node *parent, *first, *last, *next;
	const char *key;   /* interned: equal keys are the same pointer. NULL for rows,
			    * list items, text lines and problems */
	const char *label; /* interned; text caption; NULL: the key; "": JSON only */
	const char *title; /* objects and lists */
	const char *s;     /* string value, text line, problem message */
	const char *code;  /* interned; a finding's stable code ("mptable.entry_count_zero") */
	size_t slen;       /* strlen(s) */
	uint64_t u;
	int64_t i;
	int width;
	int sev;
	int text_only;     /* shown in text, left out of JSON (kbu_display) */
	const unsigned char *bytes;
	size_t nbytes;
	size_t index; /* position of a row or item in its list */
	size_t count; /* children (lists: rows/items) */
};

/*
 * Everything a report holds lives in its arena: nodes and strings are carved
 * from large chunks and go all at once with the report. A table of 87k rows
 * is some 600k nodes and strings; one malloc each cost more than rendering.
 */
struct chunk {
	struct chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

#define CHUNK_SIZE (256u * 1024u)

struct kbu_report {
	const char *command;
	struct kbu_node root;
	int oom;
	struct chunk *arena;
	/* interned keys and labels: open addressing, power-of-two size */
	const char **names;
	size_t nnames, names_cap;
};

/* ---- growable string ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void sb_grow_slow(struct sbuf *b, size_t more)
{
	if (b->oom)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = 1;
		return;
	}
	b->p = p;
	b->cap = cap;
}

/* Room for `more` bytes and a NUL; returns 0 if there is none (out of memory). */
static inline int sb_grow(struct sbuf *b, size_t more)
{
	if (b->len + more + 1 > b->cap)
		sb_grow_slow(b, more);
	return !b->oom;
}

static inline void sb_putn(struct sbuf *b, const char *s, size_t n)
{
	if (!sb_grow(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static inline void sb_putc(struct sbuf *b, char c)
{
	if (!sb_grow(b, 1))
		return;
	b->p[b->len++] = c;
	b->p[b->len] = '\0';
}

static void sb_pad(struct sbuf *b, size_t n)
{
	if (!n || !sb_grow(b, n))
		return;
	memset(b->p + b->len, ' ', n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (!sb_grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Numbers without printf: the same digits as "%" PRIu64 / PRId64 / "0x%0*" PRIx64. */
static size_t fmt_u64(char *out, uint64_t v)
{
	char tmp[20];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

static size_t fmt_i64(char *out, int64_t v)
{
	if (v >= 0)
		return fmt_u64(out, (uint64_t)v);
	out[0] = '-';
	return 1 + fmt_u64(out + 1, (uint64_t)0 - (uint64_t)v);
}

static const char hexdigits[] = "0123456789abcdef";

static size_t hex_digits(uint64_t v)
{
	size_t n = 1;
	while (v >>= 4)
		n++;
	return n;
}

/* "0x" and at least `width` digits (width <= 16); out holds 18 bytes. */
static size_t fmt_hex(char *out, uint64_t v, int width)
{
	size_t d = hex_digits(v);
	if (width > 0 && (size_t)width > d)
		d = (size_t)width;
	out[0] = '0';
	out[1] = 'x';
	for (size_t i = 0; i < d; i++)
		out[2 + d - 1 - i] = hexdigits[(v >> (4 * i)) & 15];
	return d + 2;
}

/* ---- building ---- */

static void *arena_alloc(struct kbu_report *r, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct chunk *c = r->arena;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;
		c = malloc(sizeof *c + cap);
		if (!c) {
			r->oom = 1;
			return NULL;
		}
		c->cap = cap;
		c->used = 0;
		if (n > CHUNK_SIZE && r->arena) {
			/* a big one-off: keep filling the current chunk afterwards */
			c->next = r->arena->next;
			r->arena->next = c;
		} else {
			c->next = r->arena;
			r->arena = c;
		}
	}
	void *p = c->data + c->used;
	c->used += n;
	return p;
}

static char *arena_strndup(struct kbu_report *r, const char *s, size_t n)
{
	char *d = arena_alloc(r, n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static char *dup_or_oom(struct kbu_report *r, const char *s)
{
	return s ? arena_strndup(r, s, strlen(s)) : NULL;
}

static uint64_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

/* The report's one copy of a key or label, so that equal names compare equal as pointers. */
static const char *intern(struct kbu_report *r, const char *s)
{
	if (!s)
		return NULL;
	if ((r->nnames + 1) * 2 > r->names_cap) {
		size_t cap = r->names_cap ? r->names_cap * 2 : 64;
		const char **t = calloc(cap, sizeof *t);
		if (!t) {
			r->oom = 1;
			return NULL;
		}
		for (size_t i = 0; i < r->names_cap; i++) {
			if (!r->names[i])
				continue;
			size_t j = (size_t)name_hash(r->names[i]) & (cap - 1);
			while (t[j])
				j = (j + 1) & (cap - 1);
			t[j] = r->names[i];
		}
		free(r->names);
		r->names = t;
		r->names_cap = cap;
	}
	size_t j = (size_t)name_hash(s) & (r->names_cap - 1);
	while (r->names[j]) {
		if (strcmp(r->names[j], s) == 0)
			return r->names[j];
		j = (j + 1) & (r->names_cap - 1);
	}
	const char *d = dup_or_oom(r, s);
	if (!d)
		return NULL;
	r->names[j] = d;
	r->nnames++;
	return d;
}

static const char *vformat(struct kbu_report *r, size_t *len, const char *fmt, va_list ap)
{
	char small[256];
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	if (n < 0) {
		va_end(ap2);
		r->oom = 1;
		return NULL;
	}
	char *s;
	if ((size_t)n < sizeof small) {
		s = arena_strndup(r, small, (size_t)n);
	} else {
		s = arena_alloc(r, (size_t)n + 1);
		if (s)
			vsnprintf(s, (size_t)n + 1, fmt, ap2);
	}
	va_end(ap2);
	*len = s ? (size_t)n : 0;
	return s;
}

static void set_str(struct kbu_node *n, const char *val)
{
	n->slen = strlen(val);
	n->s = arena_strndup(n->rep, val, n->slen);
	if (!n->s)
		n->slen = 0;
}

static struct kbu_node *add_node(struct kbu_node *parent, enum node_type t, const char *key,
				 const char *label)
{
	if (!parent)
		return NULL;
	struct kbu_report *r = parent->rep;
	struct kbu_node *n = arena_alloc(r, sizeof *n);
	if (!n)
		return NULL;
	memset(n, 0, sizeof *n);
	n->type = t;
	n->rep = r;
	n->parent = parent;
	n->key = intern(r, key);
	n->label = intern(r, label);
	if (parent->type == N_LIST)
		n->index = parent->count;
	parent->count++;
	if (parent->last)
		parent->last->next = n;
	else
		parent->first = n;
	parent->last = n;
	return n;
}

struct kbu_report *kbu_report_new(const char *command)
{
	struct kbu_report *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->command = dup_or_oom(r, command ? command : "");
	if (!r->command) {
		free(r->arena);
		free(r);
		return NULL;
	}
	r->root.type = N_OBJ;
	r->root.rep = r;
	return r;
}

void kbu_report_free(struct kbu_report *r)
{
	if (!r)
		return;
	for (struct chunk *c = r->arena, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	free(r->names);
	free(r);
}

struct kbu_node *kbu_report_root(struct kbu_report *r) { return r ? &r->root : NULL; }

struct kbu_node *kbu_obj(struct kbu_node *parent, const char *key, const char *title)
{
	struct kbu_node *n = add_node(parent, N_OBJ, key, NULL);
	if (n)
		n->title = dup_or_oom(n->rep, title);
	return n;
}

struct kbu_node *kbu_text_obj(struct kbu_node *parent, const char *key)
{
	struct kbu_node *n = kbu_obj(parent, key, "");
	if (n)
		n->text_only = 1;
	return n;
}

struct kbu_node *kbu_list(struct kbu_node *parent, const char *key, const char *title)
{
	struct kbu_node *n = add_node(parent, N_LIST, key, NULL);
	if (n)
		n->title = dup_or_oom(n->rep, title);
	return n;
}

struct kbu_node *kbu_row(struct kbu_node *list)
{
	if (!list || list->type != N_LIST)
		return NULL;
	return add_node(list, N_OBJ, NULL, NULL);
}

void kbu_item_str(struct kbu_node *list, const char *val)
{
	if (!list || list->type != N_LIST)
		return;
	struct kbu_node *n = add_node(list, N_STR, NULL, NULL);
	if (n)
		set_str(n, val ? val : "");
}

void kbu_item_hex(struct kbu_node *list, uint64_t v, int width)
{
	if (!list || list->type != N_LIST)
		return;
	struct kbu_node *n = add_node(list, N_HEX, NULL, NULL);
	if (n) {
		n->u = v;
		n->width = width;
	}
}

void kbu_item_u64(struct kbu_node *list, uint64_t v)
{
	if (!list || list->type != N_LIST)
		return;
	struct kbu_node *n = add_node(list, N_U64, NULL, NULL);
	if (n)
		n->u = v;
}

void kbu_str(struct kbu_node *o, const char *key, const char *label, const char *val)
{
	struct kbu_node *n = add_node(o, N_STR, key, label);
	if (n)
		set_str(n, val ? val : "");
}

/* A node of type t whose text is fmt formatted; NULL when o is NULL or out of memory. */
static struct kbu_node *add_vformatted(struct kbu_node *o, enum node_type t, const char *key,
				       const char *label, const char *fmt, va_list ap)
{
	struct kbu_node *n = add_node(o, t, key, label);
	if (n)
		n->s = vformat(n->rep, &n->slen, fmt, ap);
	return n;
}

void kbu_strf(struct kbu_node *o, const char *key, const char *label, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add_vformatted(o, N_STR, key, label, fmt, ap);
	va_end(ap);
}

void kbu_display(struct kbu_node *o, const char *key, const char *label, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct kbu_node *n = add_vformatted(o, N_STR, key, label, fmt, ap);
	va_end(ap);
	if (n)
		n->text_only = 1;
}

void kbu_u64(struct kbu_node *o, const char *key, const char *label, uint64_t v)
{
	struct kbu_node *n = add_node(o, N_U64, key, label);
	if (n)
		n->u = v;
}

void kbu_i64(struct kbu_node *o, const char *key, const char *label, int64_t v)
{
	struct kbu_node *n = add_node(o, N_I64, key, label);
	if (n)
		n->i = v;
}

void kbu_hex(struct kbu_node *o, const char *key, const char *label, uint64_t v, int width)
{
	struct kbu_node *n = add_node(o, N_HEX, key, label);
	if (n) {
		n->u = v;
		n->width = width < 0 ? 0 : width > 16 ? 16 : width;
	}
}

void kbu_bool(struct kbu_node *o, const char *key, const char *label, int v)
{
	struct kbu_node *n = add_node(o, N_BOOL, key, label);
	if (n)
		n->u = v != 0;
}

void kbu_bool_or_null(struct kbu_node *o, const char *key, const char *label, int v)
{
	if (v < 0)
		kbu_null(o, key, label);
	else
		kbu_bool(o, key, label, v);
}

void kbu_null(struct kbu_node *o, const char *key, const char *label)
{
	add_node(o, N_NULL, key, label);
}

void kbu_bytes(struct kbu_node *o, const char *key, const char *label, const void *p, size_t n)
{
	struct kbu_node *nd = add_node(o, N_BYTES, key, label);
	if (!nd)
		return;
	if (n) {
		unsigned char *copy = arena_alloc(nd->rep, n);
		if (!copy)
			return;
		memcpy(copy, p, n);
		nd->bytes = copy;
	}
	nd->nbytes = n;
}

void kbu_textf(struct kbu_node *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add_vformatted(o, N_TEXT, NULL, NULL, fmt, ap);
	va_end(ap);
}

void kbu_textline(struct kbu_node *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct kbu_node *n = add_vformatted(o, N_TEXT, NULL, NULL, fmt, ap);
	va_end(ap);
	if (n)
		n->text_only = 1;
}

void kbu_problem(struct kbu_node *o, enum kbu_severity sev, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct kbu_node *n = add_vformatted(o, N_PROBLEM, NULL, NULL, fmt, ap);
	va_end(ap);
	if (n)
		n->sev = sev;
}

struct kbu_node *kbu_finding(struct kbu_node *o, enum kbu_severity sev, const char *code,
			     const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct kbu_node *n = add_vformatted(o, N_PROBLEM, NULL, NULL, fmt, ap);
	va_end(ap);
	if (n) {
		n->sev = sev;
		n->code = intern(n->rep, code);
	}
	return n;
}

static int count_problems(const struct kbu_node *n)
{
	int c = 0;
	for (const struct kbu_node *k = n->first; k; k = k->next) {
		if (k->type == N_PROBLEM && k->sev >= KBU_SEV_WARN)
			c++;
		c += count_problems(k);
	}
	return c;
}

int kbu_report_problems(const struct kbu_report *r) { return r ? count_problems(&r->root) : 0; }

/* ---- text ---- */

static int is_scalar(const struct kbu_node *n)
{
	return n->type != N_OBJ && n->type != N_LIST && n->type != N_TEXT && n->type != N_PROBLEM;
}

static const char *caption(const struct kbu_node *n)
{
	if (n->label)
		return n->label;
	return n->key ? n->key : "";
}

static int visible(const struct kbu_node *n) { return caption(n)[0] != '\0'; }

static void bytes_text(struct sbuf *b, const unsigned char *p, size_t n, int spaced)
{
	if (!n || !sb_grow(b, n * 3))
		return;
	char *o = b->p + b->len;
	for (size_t i = 0; i < n; i++) {
		if (spaced && i)
			*o++ = ' ';
		*o++ = hexdigits[p[i] >> 4];
		*o++ = hexdigits[p[i] & 15];
	}
	b->len = (size_t)(o - b->p);
	b->p[b->len] = '\0';
}

static void scalar_text(struct sbuf *b, const struct kbu_node *n)
{
	char num[24];
	switch (n->type) {
	case N_STR: sb_putn(b, n->s ? n->s : "", n->s ? n->slen : 0); break;
	case N_U64: sb_putn(b, num, fmt_u64(num, n->u)); break;
	case N_I64: sb_putn(b, num, fmt_i64(num, n->i)); break;
	case N_HEX: sb_putn(b, num, fmt_hex(num, n->u, n->width)); break;
	case N_BOOL: sb_puts(b, n->u ? "yes" : "no"); break;
	case N_NULL: sb_puts(b, "-"); break;
	case N_BYTES: bytes_text(b, n->bytes, n->nbytes, 1); break;
	default: break;
	}
}

/* The length scalar_text would print, without printing it. */
static size_t scalar_len(const struct kbu_node *n)
{
	char num[24];
	switch (n->type) {
	case N_STR: return n->s ? n->slen : 0;
	case N_U64: return fmt_u64(num, n->u);
	case N_I64: return fmt_i64(num, n->i);
	case N_HEX: {
		size_t d = hex_digits(n->u);
		return 2 + (n->width > 0 && (size_t)n->width > d ? (size_t)n->width : d);
	}
	case N_BOOL: return n->u ? 3 : 2;
	case N_NULL: return 1;
	case N_BYTES: return n->nbytes ? 3 * n->nbytes - 1 : 0;
	default: return 0;
	}
}

static void problem_text(struct sbuf *b, const struct kbu_node *n, int indent)
{
	sb_pad(b, (size_t)indent);
	if (n->sev == KBU_SEV_NOTE)
		sb_puts(b, "note: ");
	else if (n->sev >= KBU_SEV_ERROR)
		sb_puts(b, "! error: ");
	else
		sb_puts(b, "! ");
	sb_puts(b, n->s ? n->s : "");
	sb_putc(b, '\n');
}

static void text_obj(struct sbuf *b, const struct kbu_node *o, int indent);
static void text_list(struct sbuf *b, const struct kbu_node *l, int indent);

#define MAX_COLS 48

struct column {
	const char *key; /* interned */
	const char *label;
	size_t label_len;
	size_t width;
	int right;
};

static int find_col(struct column *cols, int ncols, const char *key)
{
	for (int i = 0; i < ncols; i++)
		if (cols[i].key == key)
			return i;
	return -1;
}

/* Drops trailing spaces from line, then appends it and a newline to b (if anything is left, or always). */
static void put_line(struct sbuf *b, struct sbuf *line, int always)
{
	while (line->len && line->p[line->len - 1] == ' ')
		line->p[--line->len] = '\0';
	if (line->len)
		sb_putn(b, line->p, line->len);
	if (line->len || always)
		sb_putc(b, '\n');
}

/* A list of plain values titled "": JSON only, never printed. */
static int json_only_list(const struct kbu_node *l)
{
	if (l->type != N_LIST || !l->title || l->title[0])
		return 0;
	for (const struct kbu_node *c = l->first; c; c = c->next)
		if (c->type == N_OBJ)
			return 0;
	return 1;
}

/* Whether an object prints anything in the text report (a JSON-only object,
 * no title and no labelled field, does not set its row apart). */
static int obj_has_text(const struct kbu_node *o)
{
	if (o->title && o->title[0])
		return 1;
	for (const struct kbu_node *c = o->first; c; c = c->next)
		if (visible(c) || c->type == N_PROBLEM || c->type == N_TEXT ||
		    (c->type == N_OBJ && obj_has_text(c)))
			return 1;
	return 0;
}

static void text_table(struct sbuf *b, const struct kbu_node *l, int indent)
{
	struct column cols[MAX_COLS];
	int ncols = 0;
	for (const struct kbu_node *row = l->first; row; row = row->next) {
		if (row->type != N_OBJ)
			continue;
		int next = 0; /* rows usually hold their cells in column order */
		for (const struct kbu_node *c = row->first; c; c = c->next) {
			if (!is_scalar(c) || !c->key || !visible(c))
				continue;
			int i = next < ncols && cols[next].key == c->key ? next : find_col(cols, ncols, c->key);
			if (i < 0) {
				if (ncols == MAX_COLS)
					continue;
				i = ncols++;
				cols[i].key = c->key;
				cols[i].label = caption(c);
				cols[i].label_len = strlen(cols[i].label);
				cols[i].width = cols[i].label_len;
				cols[i].right = c->type == N_U64 || c->type == N_I64;
			}
			next = i + 1;
			size_t w = scalar_len(c);
			if (w > cols[i].width)
				cols[i].width = w;
		}
	}
	struct sbuf line = {0};
	if (ncols) {
		sb_pad(&line, (size_t)indent);
		for (int i = 0; i < ncols; i++) {
			size_t pad = cols[i].width - cols[i].label_len;
			if (i)
				sb_putn(&line, "  ", 2);
			if (cols[i].right)
				sb_pad(&line, pad);
			sb_putn(&line, cols[i].label, cols[i].label_len);
			if (!cols[i].right)
				sb_pad(&line, pad);
		}
		put_line(b, &line, 1);
	}
	int nested = 0;
	for (const struct kbu_node *row = l->first; row && !nested; row = row->next)
		for (const struct kbu_node *c = row->type == N_OBJ ? row->first : NULL; c; c = c->next)
			nested |= (c->type == N_OBJ && obj_has_text(c)) ||
				  (c->type == N_LIST && !json_only_list(c));
	for (const struct kbu_node *row = l->first; row; row = row->next) {
		if (row->type != N_OBJ)
			continue;
		/* Rows carrying sections of their own are set apart, like sections. */
		if (nested && row != l->first)
			sb_putc(b, '\n');
		line.len = 0;
		sb_pad(&line, (size_t)indent);
		const struct kbu_node *cursor = row->first;
		for (int i = 0; i < ncols; i++) {
			/* The row's first cell with this key: usually the next one. Every
			 * keyed cell before the cursor went to an earlier column (keys
			 * of columns differ), so the cursor's cell, if its key fits, is
			 * the first with that key. */
			const struct kbu_node *cell = NULL;
			while (cursor && !(is_scalar(cursor) && cursor->key && visible(cursor)))
				cursor = cursor->next;
			if (cursor && cursor->key == cols[i].key) {
				cell = cursor;
				cursor = cursor->next;
			}
			/* only cells the widths were measured on: a JSON-only field of
			 * the same key is not this column's */
			if (!cell)
				for (const struct kbu_node *c = row->first; c; c = c->next)
					if (is_scalar(c) && c->key == cols[i].key && visible(c)) {
						cell = c;
						break;
					}
			if (i)
				sb_putn(&line, "  ", 2);
			size_t w = cell ? scalar_len(cell) : 0;
			size_t pad = cols[i].width - w;
			if (cols[i].right)
				sb_pad(&line, pad);
			if (cell)
				scalar_text(&line, cell);
			if (!cols[i].right)
				sb_pad(&line, pad);
		}
		put_line(b, &line, 0);
		/* Whatever does not fit a cell goes under its row. */
		for (const struct kbu_node *c = row->first; c; c = c->next) {
			if (c->type == N_PROBLEM)
				problem_text(b, c, indent + 2);
			else if (c->type == N_TEXT) {
				sb_pad(b, (size_t)indent + 2);
				sb_putn(b, c->s ? c->s : "", c->s ? c->slen : 0);
				sb_putc(b, '\n');
			} else if (c->type == N_LIST) {
				text_list(b, c, indent + 2);
			} else if (c->type == N_OBJ) {
				const char *t = c->title ? c->title : (c->key ? c->key : "");
				if (t[0]) {
					sb_pad(b, (size_t)indent + 2);
					sb_puts(b, t);
					sb_putc(b, '\n');
				}
				text_obj(b, c, t[0] ? indent + 4 : indent + 2);
			}
		}
	}
	b->oom |= line.oom;
	free(line.p);
}

static void text_list(struct sbuf *b, const struct kbu_node *l, int indent)
{
	const char *title = l->title ? l->title : (l->key ? l->key : "");
	int has_rows = 0, has_items = 0;
	for (const struct kbu_node *c = l->first; c; c = c->next) {
		if (c->type == N_OBJ)
			has_rows = 1;
		else if (is_scalar(c))
			has_items = 1;
	}
	/* A list of plain values titled "" is JSON-only, like a scalar labelled "". */
	if (json_only_list(l))
		return;
	if (!has_rows && has_items) {
		sb_pad(b, (size_t)indent);
		sb_printf(b, "%s:", title);
		for (const struct kbu_node *c = l->first; c; c = c->next)
			if (is_scalar(c)) {
				sb_putc(b, ' ');
				scalar_text(b, c);
			}
		sb_putc(b, '\n');
	} else {
		if (title[0]) {
			sb_pad(b, (size_t)indent);
			sb_puts(b, title);
			sb_putc(b, '\n');
		}
		int inner = title[0] ? indent + 2 : indent;
		if (!l->first) {
			sb_pad(b, (size_t)inner);
			sb_puts(b, "(none)\n");
		}
		text_table(b, l, inner);
	}
	for (const struct kbu_node *c = l->first; c; c = c->next) {
		if (c->type == N_PROBLEM)
			problem_text(b, c, indent + 2);
		else if (c->type == N_TEXT) {
			sb_pad(b, (size_t)indent + 2);
			sb_puts(b, c->s ? c->s : "");
			sb_putc(b, '\n');
		}
	}
}

static void text_obj(struct sbuf *b, const struct kbu_node *o, int indent)
{
	size_t w = 0;
	for (const struct kbu_node *c = o->first; c; c = c->next)
		if (is_scalar(c) && visible(c) && strlen(caption(c)) > w)
			w = strlen(caption(c));
	for (const struct kbu_node *c = o->first; c; c = c->next) {
		if (is_scalar(c)) {
			if (!visible(c))
				continue;
			sb_pad(b, (size_t)indent);
			sb_puts(b, caption(c));
			sb_putc(b, ':');
			sb_pad(b, w - strlen(caption(c)) + 1);
			scalar_text(b, c);
			sb_putc(b, '\n');
		} else if (c->type == N_TEXT) {
			sb_pad(b, (size_t)indent);
			sb_puts(b, c->s ? c->s : "");
			sb_putc(b, '\n');
		} else if (c->type == N_PROBLEM) {
			problem_text(b, c, indent);
		} else {
			struct sbuf sec = {0};
			if (c->type == N_LIST) {
				text_list(&sec, c, indent);
			} else {
				const char *title = c->title ? c->title : (c->key ? c->key : "");
				if (title[0]) {
					sb_pad(&sec, (size_t)indent);
					sb_puts(&sec, title);
					sb_putc(&sec, '\n');
					text_obj(&sec, c, indent + 2);
				} else {
					text_obj(&sec, c, indent);
				}
			}
			b->oom |= sec.oom;
			/* Sections at the top level are set apart by a blank line; a section
			 * with nothing to print in text (JSON-only fields) leaves no trace. */
			if (sec.len) {
				if (indent == 0 && b->len && !(b->len >= 2 && b->p[b->len - 2] == '\n'))
					sb_putc(b, '\n');
				sb_putn(b, sec.p, sec.len);
			}
			free(sec.p);
		}
	}
}

/* ---- JSON ---- */

static size_t utf8_seq(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static void json_str(struct sbuf *b, const char *s)
{
	sb_putc(b, '"');
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		/* the common case: a run of plain printable ASCII, copied at once */
		const unsigned char *run = p;
		while (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
			p++;
		if (p > run)
			sb_putn(b, (const char *)run, (size_t)(p - run));
		if (!*p)
			break;
		unsigned char c = *p;
		if (c == '"') {
			sb_putn(b, "\\\"", 2);
		} else if (c == '\\') {
			sb_putn(b, "\\\\", 2);
		} else if (c == '\n') {
			sb_putn(b, "\\n", 2);
		} else if (c == '\t') {
			sb_putn(b, "\\t", 2);
		} else if (c == '\r') {
			sb_putn(b, "\\r", 2);
		} else if (c < 0x20 || c == 0x7f) {
			sb_printf(b, "\\u%04x", c);
		} else {
			/* Guest bytes are not always UTF-8: keep valid sequences, map the rest. */
			size_t n = utf8_seq(p);
			if (n) {
				sb_putn(b, (const char *)p, n);
				p += n;
				continue;
			}
			sb_printf(b, "\\u%04x", c);
		}
		p++;
	}
	sb_putc(b, '"');
}

static void json_value(struct sbuf *b, const struct kbu_node *n);

static void json_scalar(struct sbuf *b, const struct kbu_node *n)
{
	char num[24];
	switch (n->type) {
	case N_STR: json_str(b, n->s); break;
	case N_U64:
	case N_HEX: sb_putn(b, num, fmt_u64(num, n->u)); break;
	case N_I64: sb_putn(b, num, fmt_i64(num, n->i)); break;
	case N_BOOL: sb_puts(b, n->u ? "true" : "false"); break;
	case N_NULL: sb_puts(b, "null"); break;
	case N_BYTES:
		sb_putc(b, '"');
		bytes_text(b, n->bytes, n->nbytes, 0);
		sb_putc(b, '"');
		break;
	default: sb_puts(b, "null"); break;
	}
}

static void json_fields(struct sbuf *b, const struct kbu_node *o, int first)
{
	for (const struct kbu_node *c = o->first; c; c = c->next) {
		if (c->type == N_TEXT || c->type == N_PROBLEM || !c->key || c->text_only)
			continue;
		if (!first)
			sb_puts(b, ", ");
		first = 0;
		json_str(b, c->key);
		sb_puts(b, ": ");
		json_value(b, c);
	}
	int notes = 0;
	for (const struct kbu_node *c = o->first; c; c = c->next) {
		if (c->type != N_TEXT || c->text_only)
			continue;
		if (!notes) {
			if (!first)
				sb_puts(b, ", ");
			sb_puts(b, "\"notes\": [");
		} else {
			sb_puts(b, ", ");
		}
		notes++;
		json_str(b, c->s);
	}
	if (notes)
		sb_putc(b, ']');
}

static void json_value(struct sbuf *b, const struct kbu_node *n)
{
	if (n->type == N_OBJ) {
		sb_putc(b, '{');
		json_fields(b, n, 1);
		sb_putc(b, '}');
	} else if (n->type == N_LIST) {
		sb_putc(b, '[');
		int first = 1;
		for (const struct kbu_node *c = n->first; c; c = c->next) {
			if (c->type == N_TEXT || c->type == N_PROBLEM)
				continue;
			if (!first)
				sb_puts(b, ", ");
			first = 0;
			json_value(b, c);
		}
		sb_putc(b, ']');
	} else {
		json_scalar(b, n);
	}
}

static void node_path(struct sbuf *b, const struct kbu_node *n)
{
	if (!n->parent)
		return;
	node_path(b, n->parent);
	if (n->text_only)
		return; /* a text-only section is no place in the JSON */
	if (n->parent->type == N_LIST) {
		sb_printf(b, "[%zu]", n->index);
	} else if (n->key) {
		if (n->parent->parent)
			sb_putc(b, '.');
		sb_puts(b, n->key);
	}
}

static void json_problems(struct sbuf *b, const struct kbu_node *n, int *first)
{
	static const char *const sev[] = {"note", "warning", "error"};
	for (const struct kbu_node *c = n->first; c; c = c->next) {
		if (c->type == N_PROBLEM) {
			if (!*first)
				sb_puts(b, ", ");
			*first = 0;
			struct sbuf path = {0};
			node_path(&path, n);
			sb_puts(b, "{\"severity\": ");
			json_str(b, sev[c->sev < 0 ? 0 : c->sev > 2 ? 2 : c->sev]);
			sb_puts(b, ", \"path\": ");
			json_str(b, path.p ? path.p : "");
			sb_puts(b, ", \"code\": ");
			if (c->code)
				json_str(b, c->code);
			else
				sb_puts(b, "null");
			sb_puts(b, ", \"message\": ");
			json_str(b, c->s);
			sb_puts(b, ", \"fields\": {");
			json_fields(b, c, 1);
			sb_puts(b, "}}");
			free(path.p);
		}
		json_problems(b, c, first);
	}
}

char *kbu_report_render(const struct kbu_report *r, int json)
{
	if (!r)
		return NULL;
	struct sbuf b = {0};
	if (json) {
		sb_puts(&b, "{\"command\": ");
		json_str(&b, r->command);
		json_fields(&b, &r->root, 0);
		sb_puts(&b, ", \"problems\": [");
		int first = 1;
		json_problems(&b, &r->root, &first);
		sb_puts(&b, "]}\n");
	} else {
		text_obj(&b, &r->root, 0);
		if (!b.p)
			sb_puts(&b, "");
	}
	if (b.oom || r->oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

int kbu_report_print(const struct kbu_report *r, FILE *out, int json)
{
	char *s = kbu_report_render(r, json);
	if (!s)
		return -1;
	int rc = fputs(s, out) < 0 ? -1 : 0;
	free(s);
	return rc;
}

void kbu_free(void *p) { free(p); }
