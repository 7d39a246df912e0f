/* kbu: a kernel's printf formatted from guest memory (registers, stack, va_list). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kbu/mem.h"
#include "kbu/printf.h"
#include "kbu/reloc.h"
#include "kbu/symbols.h"

#define VA_GP_MAX 48 /* 6 integer registers in the va_list's register save area */

/* ---- guest reads ----------------------------------------------------------- */

static int read_guest(const struct kbu_printf_env *env, uint64_t addr, void *buf, size_t len)
{
	struct kbu_err e;
	if (kbu_mem_read(env->mem, KBU_VIRT, addr, buf, len, &e) == 0)
		return 0;
	/* Paging off: the kernel's virtual address is not mapped yet, its physical alias is. */
	uint64_t pa;
	if (env->map && kbu_reloc_v2p(env->map, addr - env->slide, &pa) == 0 &&
	    kbu_mem_read(env->mem, KBU_PHYS, pa, buf, len, &e) == 0)
		return 0;
	return -1;
}

static int read_u64(const struct kbu_printf_env *env, uint64_t addr, uint64_t *v)
{
	uint8_t b[8];
	if (read_guest(env, addr, b, 8) < 0)
		return -1;
	*v = 0;
	for (int i = 7; i >= 0; i--)
		*v = *v << 8 | b[i];
	return 0;
}

/* Appends byte c to buf (escaped when not printable); returns the new length. */
static size_t put_escaped(char *buf, size_t n, size_t max, unsigned char c)
{
	if (c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f)) {
		if (n + 1 < max)
			buf[n++] = (char)c;
	} else if (n + 4 < max) {
		n += (size_t)snprintf(buf + n, max - n, "\\x%02x", c);
	}
	buf[n < max ? n : max - 1] = '\0';
	return n;
}

int kbu_printf_read_string(const struct kbu_printf_env *env, uint64_t addr, char *buf,
			   size_t max, struct kbu_err *err)
{
	if (!env || !buf || max == 0)
		return kbu_err_set(err, KBU_EINVAL, "kbu_printf_read_string: no buffer");
	size_t n = 0, got = 0;
	buf[0] = '\0';
	uint64_t a = addr;
	while (n + 1 < max) {
		uint8_t chunk[64];
		size_t want = sizeof chunk - (a & 63); /* never across a 64-byte line (or a page) */
		if (read_guest(env, a, chunk, want) < 0) {
			if (got == 0)
				return kbu_err_set(err, KBU_EFAULT, "cannot read the string at 0x%llx",
						   (unsigned long long)addr);
			return 0; /* what was read, up to the unreadable page */
		}
		for (size_t i = 0; i < want; i++) {
			if (!chunk[i])
				return 0;
			n = put_escaped(buf, n, max, chunk[i]);
			got++;
			if (n + 1 >= max)
				return 0;
		}
		a += want;
	}
	return 0;
}

/* ---- arguments ------------------------------------------------------------ */

struct argsrc {
	const struct kbu_printf_env *env;
	struct kbu_printf_args *a;
	size_t next_reg;
	int va_ready;
	uint32_t gp;
	uint64_t overflow, save;
	size_t used, unreadable;
};

static int next_arg(struct argsrc *s, uint64_t *v)
{
	struct kbu_printf_args *a = s->a;
	s->used++;
	*v = 0;
	if (a->kind == KBU_PRINTF_REGS) {
		if (s->next_reg < a->nregs && s->next_reg < KBU_PRINTF_MAX_REGS) {
			*v = a->regs[s->next_reg++];
			return 0;
		}
		if (!a->have_stack || read_u64(s->env, a->stack, v) < 0) {
			s->unreadable++;
			return -1;
		}
		a->stack += 8;
		return 0;
	}
	if (!s->va_ready) {
		uint8_t b[4];
		if (read_guest(s->env, a->va_list, b, 4) < 0 ||
		    read_u64(s->env, a->va_list + 8, &s->overflow) < 0 ||
		    read_u64(s->env, a->va_list + 16, &s->save) < 0) {
			s->unreadable++;
			return -1;
		}
		s->gp = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
			(uint32_t)b[3] << 24;
		s->va_ready = 1;
	}
	if (s->gp < VA_GP_MAX) {
		if (read_u64(s->env, s->save + s->gp, v) < 0) {
			s->unreadable++;
			return -1;
		}
		s->gp += 8;
		return 0;
	}
	if (read_u64(s->env, s->overflow, v) < 0) {
		s->unreadable++;
		return -1;
	}
	s->overflow += 8;
	return 0;
}

/* ---- output --------------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, max;
	int truncated;
};

static void out_str(struct out *o, const char *s)
{
	for (; *s; s++) {
		if (o->len + 1 >= o->max) {
			o->truncated = 1;
			return;
		}
		o->buf[o->len++] = *s;
	}
	o->buf[o->len] = '\0';
}

static void out_fmt(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_fmt(struct out *o, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	out_str(o, tmp);
}

static int64_t sign_extend(uint64_t v, int bits)
{
	if (bits >= 64)
		return (int64_t)v;
	uint64_t m = 1ull << (bits - 1);
	v &= (1ull << bits) - 1;
	return (int64_t)((v ^ m) - m);
}

static void out_unreadable(struct out *o, const char *what)
{
	out_fmt(o, "<unreadable %s>", what);
}

static int format_into(const struct kbu_printf_env *env, const char *fmt, struct argsrc *src,
		       struct out *o, int depth);

/* Linux's %p extensions a kernel message uses; anything else is the pointer in hex. */
static void pointer_ext(const struct kbu_printf_env *env, char ext, uint64_t p,
			struct argsrc *src, struct out *o, int depth)
{
	switch (ext) {
	case 'S': case 's': case 'B': case 'F': case 'f':
		if (env->syms) {
			uint64_t off;
			const struct kbu_sym *sym = kbu_sym_by_addr(env->syms, p - env->slide, &off);
			if (sym && (!sym->size || off < sym->size)) {
				if (off && ext != 's' && ext != 'f')
					out_fmt(o, "%s+0x%llx", sym->name, (unsigned long long)off);
				else
					out_str(o, sym->name);
				return;
			}
		}
		out_fmt(o, "0x%llx", (unsigned long long)p);
		return;
	case 'a': { /* phys_addr_t * */
		uint64_t v;
		if (read_u64(env, p, &v) < 0) {
			src->unreadable++;
			out_unreadable(o, "%pa");
		} else {
			out_fmt(o, "0x%016llx", (unsigned long long)v);
		}
		return;
	}
	case 'V': { /* struct va_format { const char *fmt; va_list *va; } */
		uint64_t fp, va;
		char nested[KBU_PRINTF_MAX_FORMAT];
		struct kbu_err e;
		if (depth > 1 || read_u64(env, p, &fp) < 0 || read_u64(env, p + 8, &va) < 0 ||
		    kbu_printf_read_string(env, fp, nested, sizeof nested, &e) < 0) {
			src->unreadable++;
			out_unreadable(o, "%pV");
			return;
		}
		struct kbu_printf_args inner = {.kind = KBU_PRINTF_VALIST, .va_list = va};
		struct argsrc isrc = {.env = env, .a = &inner};
		format_into(env, nested, &isrc, o, depth + 1);
		src->used += isrc.used;
		src->unreadable += isrc.unreadable;
		return;
	}
	default:
		out_fmt(o, "0x%llx", (unsigned long long)p);
	}
}

/* FreeBSD's %b: the value in the base the bit string starts with, then <names> of set bits. */
static void bits_ext(const struct kbu_printf_env *env, uint64_t v, uint64_t strp,
		     struct argsrc *src, struct out *o)
{
	char bs[256];
	struct kbu_err e;
	if (kbu_printf_read_string(env, strp, bs, sizeof bs, &e) < 0 || !bs[0]) {
		src->unreadable++;
		out_fmt(o, "0x%llx", (unsigned long long)v);
		return;
	}
	/* The string is raw bytes (bit numbers are control characters): read it again unescaped. */
	uint8_t raw[256];
	size_t n = 0;
	while (n < sizeof raw - 1) {
		if (read_guest(env, strp + n, &raw[n], 1) < 0 || !raw[n])
			break;
		n++;
	}
	raw[n] = 0;
	int base = raw[0];
	if (base == 8)
		out_fmt(o, "%llo", (unsigned long long)v);
	else if (base == 10)
		out_fmt(o, "%llu", (unsigned long long)v);
	else
		out_fmt(o, "%llx", (unsigned long long)v);
	if (!v)
		return;
	int any = 0;
	for (size_t i = 1; i < n;) {
		unsigned bit = raw[i++];
		int set = bit >= 1 && bit <= 64 && (v >> (bit - 1)) & 1;
		if (set) {
			out_str(o, any ? "," : "<");
			any = 1;
		}
		for (; i < n && raw[i] > ' '; i++) {
			if (set) {
				char c[2] = {(char)raw[i], 0};
				if (raw[i] < 0x7f)
					out_str(o, c);
			}
		}
	}
	if (any)
		out_str(o, ">");
}

/* FreeBSD's %D: width bytes of a buffer in hex, joined by a separator string. */
static void dump_ext(const struct kbu_printf_env *env, uint64_t p, uint64_t sepp, int width,
		     struct argsrc *src, struct out *o)
{
	char sep[32];
	struct kbu_err e;
	if (kbu_printf_read_string(env, sepp, sep, sizeof sep, &e) < 0)
		sep[0] = '\0';
	if (width <= 0)
		width = 16;
	if (width > 64)
		width = 64;
	for (int i = 0; i < width; i++) {
		uint8_t b;
		if (read_guest(env, p + (uint64_t)i, &b, 1) < 0) {
			src->unreadable++;
			out_unreadable(o, "bytes");
			return;
		}
		out_fmt(o, "%02x", b);
		if (i + 1 < width)
			out_str(o, sep);
	}
}

static int format_into(const struct kbu_printf_env *env, const char *fmt, struct argsrc *src,
		       struct out *o, int depth)
{
	const char *p = fmt;
	while (*p) {
		if (*p != '%') {
			char c[2] = {*p++, 0};
			out_str(o, c);
			continue;
		}
		const char *start = p++;
		char flags[8] = "";
		size_t nf = 0;
		while (*p && strchr("-+ #0", *p) && nf < sizeof flags - 1)
			flags[nf++] = *p++;
		flags[nf] = '\0';
		int width = -1, prec = -1;
		uint64_t v;
		if (*p == '*') {
			p++;
			width = next_arg(src, &v) == 0 ? (int)sign_extend(v, 32) : 0;
			if (width < 0) {
				width = -width;
				if (nf < sizeof flags - 1) {
					flags[nf++] = '-';
					flags[nf] = '\0';
				}
			}
		} else if (*p >= '0' && *p <= '9') {
			width = 0;
			while (*p >= '0' && *p <= '9' && width < 10000)
				width = width * 10 + (*p++ - '0');
		}
		if (*p == '.') {
			p++;
			prec = 0;
			if (*p == '*') {
				p++;
				prec = next_arg(src, &v) == 0 ? (int)sign_extend(v, 32) : 0;
				if (prec < 0)
					prec = -1;
			} else {
				while (*p >= '0' && *p <= '9' && prec < 10000)
					prec = prec * 10 + (*p++ - '0');
			}
		}
		if (width > 512)
			width = 512;
		if (prec > 4096)
			prec = 4096;
		int bits = 32;
		if (p[0] == 'h' && p[1] == 'h') {
			bits = 8;
			p += 2;
		} else if (p[0] == 'l' && p[1] == 'l') {
			bits = 64;
			p += 2;
		} else if (*p == 'h') {
			bits = 16;
			p++;
		} else if (*p && strchr("ljztqL", *p)) {
			bits = 64;
			p++;
		}
		char conv = *p;
		if (!conv) { /* a lone % at the end */
			out_str(o, start);
			break;
		}
		p++;
		char spec[48];
		char wbuf[16] = "", pbuf[16] = "";
		if (width >= 0)
			snprintf(wbuf, sizeof wbuf, "%d", width);
		if (prec >= 0)
			snprintf(pbuf, sizeof pbuf, ".%d", prec);
		switch (conv) {
		case '%':
			out_str(o, "%");
			break;
		case 'd': case 'i': case 'r':
			if (next_arg(src, &v) < 0) {
				out_unreadable(o, "argument");
				break;
			}
			snprintf(spec, sizeof spec, "%%%s%s%slld", flags, wbuf, pbuf);
			out_fmt(o, spec, (long long)sign_extend(v, bits));
			break;
		case 'u': case 'x': case 'X': case 'o':
			if (next_arg(src, &v) < 0) {
				out_unreadable(o, "argument");
				break;
			}
			if (bits < 64)
				v &= (1ull << bits) - 1;
			snprintf(spec, sizeof spec, "%%%s%s%sll%c", flags, wbuf, pbuf, conv);
			out_fmt(o, spec, (unsigned long long)v);
			break;
		case 'c':
			if (next_arg(src, &v) < 0) {
				out_unreadable(o, "argument");
				break;
			}
			{
				char tmp[8];
				size_t n = put_escaped(tmp, 0, sizeof tmp, (unsigned char)v);
				tmp[n] = '\0';
				out_str(o, tmp);
			}
			break;
		case 's': {
			if (next_arg(src, &v) < 0) {
				out_unreadable(o, "argument");
				break;
			}
			char s[KBU_PRINTF_MAX_STRING + 1];
			struct kbu_err e;
			if (!v) {
				snprintf(s, sizeof s, "(null)");
			} else if (kbu_printf_read_string(env, v, s, sizeof s, &e) < 0) {
				src->unreadable++;
				snprintf(s, sizeof s, "<unreadable 0x%llx>", (unsigned long long)v);
			}
			snprintf(spec, sizeof spec, "%%%s%s%ss", flags, wbuf, pbuf);
			out_fmt(o, spec, s);
			break;
		}
		case 'p':
			if (next_arg(src, &v) < 0) {
				out_unreadable(o, "argument");
				break;
			}
			if (*p && strchr("SsBFfVa", *p)) {
				char ext = *p++;
				while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
					p++; /* %pSR, %pBb: modifiers */
				pointer_ext(env, ext, v, src, o, depth);
			} else {
				out_fmt(o, "0x%llx", (unsigned long long)v);
			}
			break;
		case 'b': {
			uint64_t s;
			if (next_arg(src, &v) < 0 || next_arg(src, &s) < 0) {
				out_unreadable(o, "argument");
				break;
			}
			if (bits < 64)
				v &= (1ull << bits) - 1;
			bits_ext(env, v, s, src, o);
			break;
		}
		case 'D': {
			uint64_t s;
			if (next_arg(src, &v) < 0 || next_arg(src, &s) < 0) {
				out_unreadable(o, "argument");
				break;
			}
			dump_ext(env, v, s, width, src, o);
			break;
		}
		case 'n':
			next_arg(src, &v);
			break;
		default: { /* not a conversion kbu knows: as written */
			char lit[64];
			size_t n = (size_t)(p - start) < sizeof lit - 1 ? (size_t)(p - start)
								   : sizeof lit - 1;
			memcpy(lit, start, n);
			lit[n] = '\0';
			out_str(o, lit);
		}
		}
		if (o->truncated)
			break;
	}
	return 0;
}

int kbu_printf_format(const struct kbu_printf_env *env, const char *fmt,
		      struct kbu_printf_args *args, struct kbu_printf_result *res,
		      struct kbu_err *err)
{
	if (!env || !env->mem || !fmt || !args || !res)
		return kbu_err_set(err, KBU_EINVAL, "kbu_printf_format: missing argument");
	memset(res, 0, sizeof *res);
	struct argsrc src = {.env = env, .a = args};
	struct out o = {.buf = res->message, .max = sizeof res->message};
	res->message[0] = '\0';
	format_into(env, fmt, &src, &o, 0);
	if (o.truncated) {
		size_t n = strlen(res->message);
		if (n > 3)
			memcpy(res->message + n - 3, "...", 4);
		res->truncated = 1;
	}
	res->conversions = src.used;
	res->unreadable = src.unreadable;
	return 0;
}
