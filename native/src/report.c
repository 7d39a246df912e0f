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
	char *key;   /* NULL for rows, list items, text lines and problems */
	char *label; /* text caption; NULL: the key; "": JSON only */
	char *title; /* objects and lists */
	char *s;     /* string value, text line, problem message */
	uint64_t u;
	int64_t i;
	int width;
	int sev;
	unsigned char *bytes;
	size_t nbytes;
	size_t index; /* position of a row or item in its list */
	size_t count; /* children (lists: rows/items) */
};

struct kbu_report {
	char *command;
	struct kbu_node root;
	int oom;
};

/* ---- growable string ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void sb_grow(struct sbuf *b, size_t more)
{
	if (b->oom)
		return;
	if (b->len + more + 1 <= b->cap)
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

static void sb_putn(struct sbuf *b, const char *s, size_t n)
{
	sb_grow(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_putc(struct sbuf *b, char c) { sb_putn(b, &c, 1); }

static void sb_pad(struct sbuf *b, size_t n)
{
	while (n--)
		sb_putc(b, ' ');
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
	sb_grow(b, (size_t)n);
	if (b->oom)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* ---- building ---- */

static char *dup_or_oom(struct kbu_report *r, const char *s)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		r->oom = 1;
	return d;
}

static char *vformat(struct kbu_report *r, const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0) {
		r->oom = 1;
		return NULL;
	}
	return s;
}

static struct kbu_node *add_node(struct kbu_node *parent, enum node_type t, const char *key,
				 const char *label)
{
	if (!parent)
		return NULL;
	struct kbu_report *r = parent->rep;
	struct kbu_node *n = calloc(1, sizeof *n);
	if (!n) {
		r->oom = 1;
		return NULL;
	}
	n->type = t;
	n->rep = r;
	n->parent = parent;
	n->key = dup_or_oom(r, key);
	n->label = dup_or_oom(r, label);
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

static void free_children(struct kbu_node *n)
{
	struct kbu_node *c = n->first;
	while (c) {
		struct kbu_node *next = c->next;
		free_children(c);
		free(c->key);
		free(c->label);
		free(c->title);
		free(c->s);
		free(c->bytes);
		free(c);
		c = next;
	}
	n->first = n->last = NULL;
}

struct kbu_report *kbu_report_new(const char *command)
{
	struct kbu_report *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->command = strdup(command ? command : "");
	if (!r->command) {
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
	free_children(&r->root);
	free(r->command);
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
		n->s = dup_or_oom(n->rep, val ? val : "");
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
		n->s = dup_or_oom(n->rep, val ? val : "");
}

void kbu_strf(struct kbu_node *o, const char *key, const char *label, const char *fmt, ...)
{
	struct kbu_node *n = add_node(o, N_STR, key, label);
	if (!n)
		return;
	va_list ap;
	va_start(ap, fmt);
	n->s = vformat(n->rep, fmt, ap);
	va_end(ap);
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
		nd->bytes = malloc(n);
		if (!nd->bytes) {
			nd->rep->oom = 1;
			return;
		}
		memcpy(nd->bytes, p, n);
	}
	nd->nbytes = n;
}

void kbu_textf(struct kbu_node *o, const char *fmt, ...)
{
	struct kbu_node *n = add_node(o, N_TEXT, NULL, NULL);
	if (!n)
		return;
	va_list ap;
	va_start(ap, fmt);
	n->s = vformat(n->rep, fmt, ap);
	va_end(ap);
}

void kbu_problem(struct kbu_node *o, enum kbu_severity sev, const char *fmt, ...)
{
	struct kbu_node *n = add_node(o, N_PROBLEM, NULL, NULL);
	if (!n)
		return;
	n->sev = sev;
	va_list ap;
	va_start(ap, fmt);
	n->s = vformat(n->rep, fmt, ap);
	va_end(ap);
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

static void scalar_text(struct sbuf *b, const struct kbu_node *n)
{
	switch (n->type) {
	case N_STR: sb_puts(b, n->s ? n->s : ""); break;
	case N_U64: sb_printf(b, "%" PRIu64, n->u); break;
	case N_I64: sb_printf(b, "%" PRId64, n->i); break;
	case N_HEX: sb_printf(b, "0x%0*" PRIx64, n->width, n->u); break;
	case N_BOOL: sb_puts(b, n->u ? "yes" : "no"); break;
	case N_NULL: sb_puts(b, "-"); break;
	case N_BYTES:
		for (size_t i = 0; i < n->nbytes; i++)
			sb_printf(b, i ? " %02x" : "%02x", n->bytes[i]);
		break;
	default: break;
	}
}

static size_t scalar_len(const struct kbu_node *n)
{
	struct sbuf b = {0};
	scalar_text(&b, n);
	size_t len = b.len;
	free(b.p);
	return len;
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
	const char *key;
	const char *label;
	size_t width;
	int right;
};

static int find_col(struct column *cols, int ncols, const char *key)
{
	for (int i = 0; i < ncols; i++)
		if (strcmp(cols[i].key, key) == 0)
			return i;
	return -1;
}

static void text_table(struct sbuf *b, const struct kbu_node *l, int indent)
{
	struct column cols[MAX_COLS];
	int ncols = 0;
	for (const struct kbu_node *row = l->first; row; row = row->next) {
		if (row->type != N_OBJ)
			continue;
		for (const struct kbu_node *c = row->first; c; c = c->next) {
			if (!is_scalar(c) || !c->key || !visible(c))
				continue;
			int i = find_col(cols, ncols, c->key);
			if (i < 0) {
				if (ncols == MAX_COLS)
					continue;
				i = ncols++;
				cols[i].key = c->key;
				cols[i].label = caption(c);
				cols[i].width = strlen(cols[i].label);
				cols[i].right = c->type == N_U64 || c->type == N_I64;
			}
			size_t w = scalar_len(c);
			if (w > cols[i].width)
				cols[i].width = w;
		}
	}
	if (ncols) {
		struct sbuf line = {0};
		sb_pad(&line, (size_t)indent);
		for (int i = 0; i < ncols; i++) {
			size_t pad = cols[i].width - strlen(cols[i].label);
			if (i)
				sb_puts(&line, "  ");
			if (cols[i].right)
				sb_pad(&line, pad);
			sb_puts(&line, cols[i].label);
			if (!cols[i].right)
				sb_pad(&line, pad);
		}
		while (line.len && line.p[line.len - 1] == ' ')
			line.p[--line.len] = '\0';
		sb_puts(b, line.p ? line.p : "");
		sb_putc(b, '\n');
		free(line.p);
	}
	int nested = 0;
	for (const struct kbu_node *row = l->first; row && !nested; row = row->next)
		for (const struct kbu_node *c = row->type == N_OBJ ? row->first : NULL; c; c = c->next)
			nested |= c->type == N_OBJ || c->type == N_LIST;
	for (const struct kbu_node *row = l->first; row; row = row->next) {
		if (row->type != N_OBJ)
			continue;
		/* Rows carrying sections of their own are set apart, like sections. */
		if (nested && row != l->first)
			sb_putc(b, '\n');
		struct sbuf line = {0};
		sb_pad(&line, (size_t)indent);
		for (int i = 0; i < ncols; i++) {
			const struct kbu_node *cell = NULL;
			for (const struct kbu_node *c = row->first; c; c = c->next)
				if (is_scalar(c) && c->key && strcmp(c->key, cols[i].key) == 0) {
					cell = c;
					break;
				}
			struct sbuf v = {0};
			if (cell)
				scalar_text(&v, cell);
			size_t pad = cols[i].width - v.len;
			if (i)
				sb_puts(&line, "  ");
			if (cols[i].right)
				sb_pad(&line, pad);
			sb_puts(&line, v.p ? v.p : "");
			if (!cols[i].right)
				sb_pad(&line, pad);
			free(v.p);
		}
		while (line.len && line.p[line.len - 1] == ' ')
			line.p[--line.len] = '\0';
		if (line.len) {
			sb_puts(b, line.p);
			sb_putc(b, '\n');
		}
		free(line.p);
		/* Whatever does not fit a cell goes under its row. */
		for (const struct kbu_node *c = row->first; c; c = c->next) {
			if (c->type == N_PROBLEM)
				problem_text(b, c, indent + 2);
			else if (c->type == N_TEXT) {
				sb_pad(b, (size_t)indent + 2);
				sb_puts(b, c->s ? c->s : "");
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
		unsigned char c = *p;
		if (c == '"') {
			sb_puts(b, "\\\"");
		} else if (c == '\\') {
			sb_puts(b, "\\\\");
		} else if (c == '\n') {
			sb_puts(b, "\\n");
		} else if (c == '\t') {
			sb_puts(b, "\\t");
		} else if (c == '\r') {
			sb_puts(b, "\\r");
		} else if (c < 0x20 || c == 0x7f) {
			sb_printf(b, "\\u%04x", c);
		} else if (c >= 0x80) {
			/* Guest bytes are not always UTF-8: keep valid sequences, map the rest. */
			size_t n = utf8_seq(p);
			if (n) {
				sb_putn(b, (const char *)p, n);
				p += n;
				continue;
			}
			sb_printf(b, "\\u%04x", c);
		} else {
			sb_putc(b, (char)c);
		}
		p++;
	}
	sb_putc(b, '"');
}

static void json_value(struct sbuf *b, const struct kbu_node *n);

static void json_scalar(struct sbuf *b, const struct kbu_node *n)
{
	switch (n->type) {
	case N_STR: json_str(b, n->s); break;
	case N_U64:
	case N_HEX: sb_printf(b, "%" PRIu64, n->u); break;
	case N_I64: sb_printf(b, "%" PRId64, n->i); break;
	case N_BOOL: sb_puts(b, n->u ? "true" : "false"); break;
	case N_NULL: sb_puts(b, "null"); break;
	case N_BYTES:
		sb_putc(b, '"');
		for (size_t i = 0; i < n->nbytes; i++)
			sb_printf(b, "%02x", n->bytes[i]);
		sb_putc(b, '"');
		break;
	default: sb_puts(b, "null"); break;
	}
}

static void json_fields(struct sbuf *b, const struct kbu_node *o, int first)
{
	for (const struct kbu_node *c = o->first; c; c = c->next) {
		if (c->type == N_TEXT || c->type == N_PROBLEM || !c->key)
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
		if (c->type != N_TEXT)
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
			sb_puts(b, ", \"message\": ");
			json_str(b, c->s);
			sb_putc(b, '}');
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
