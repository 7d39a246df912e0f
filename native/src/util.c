/* kbu helpers: number and address parsing, reentrant option parsing. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kbu/command.h"
#include "kbu/mem.h"
#include "kbu/symbols.h"
#include "kbu/util.h"

int kbu_parse_u64(const char *s, uint64_t *out, struct kbu_err *err)
{
	char buf[80];
	size_t n = 0;
	if (!s || !*s)
		return kbu_err_set(err, KBU_EINVAL, "empty number");
	for (const char *p = s; *p; p++) {
		if (*p == '_' || *p == '`')
			continue;
		if (n + 1 >= sizeof buf)
			return kbu_err_set(err, KBU_EINVAL, "'%.40s...' is too long for a number", s);
		buf[n++] = *p;
	}
	buf[n] = '\0';
	unsigned base = 10;
	const char *p = buf;
	if (n > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) {
		base = 16;
		p += 2;
	} else if (n > 1 && (buf[n - 1] == 'h' || buf[n - 1] == 'H')) {
		base = 16;
		buf[--n] = '\0';
	}
	if (!*p)
		return kbu_err_set(err, KBU_EINVAL, "'%s' is not a number", s);
	uint64_t v = 0;
	for (; *p; p++) {
		int d = kbu_hex_digit((unsigned char)*p);
		if (d < 0 || (unsigned)d >= base)
			return kbu_err_set(err, KBU_EINVAL, "'%s' is not a number", s);
		if (v > (UINT64_MAX - (uint64_t)d) / base)
			return kbu_err_set(err, KBU_EINVAL, "'%s' does not fit in 64 bits", s);
		v = v * base + (uint64_t)d;
	}
	*out = v;
	return 0;
}

/* $rip, $rsp, $cr3 ...: CPU 0's register from the memory source. */
static int register_value(struct kbu_ctx *ctx, const char *name, uint64_t *out, struct kbu_err *err)
{
	if (!ctx || !ctx->mem)
		return kbu_err_set(err, KBU_EINVAL, "$%s needs a memory source with registers", name);
	struct kbu_regs r;
	if (kbu_mem_regs(ctx->mem, 0, &r, err) < 0)
		return kbu_err_prefix(err, "$%s", name);
	const struct { const char *name; uint64_t v; uint32_t have; } regs[] = {
		{"rax", r.rax, KBU_HAVE_GPR}, {"rbx", r.rbx, KBU_HAVE_GPR}, {"rcx", r.rcx, KBU_HAVE_GPR},
		{"rdx", r.rdx, KBU_HAVE_GPR}, {"rsi", r.rsi, KBU_HAVE_GPR}, {"rdi", r.rdi, KBU_HAVE_GPR},
		{"rbp", r.rbp, KBU_HAVE_GPR}, {"rsp", r.rsp, KBU_HAVE_GPR}, {"r8", r.r8, KBU_HAVE_GPR},
		{"r9", r.r9, KBU_HAVE_GPR}, {"r10", r.r10, KBU_HAVE_GPR}, {"r11", r.r11, KBU_HAVE_GPR},
		{"r12", r.r12, KBU_HAVE_GPR}, {"r13", r.r13, KBU_HAVE_GPR}, {"r14", r.r14, KBU_HAVE_GPR},
		{"r15", r.r15, KBU_HAVE_GPR}, {"rip", r.rip, KBU_HAVE_GPR}, {"pc", r.rip, KBU_HAVE_GPR},
		{"sp", r.rsp, KBU_HAVE_GPR}, {"cr2", r.cr2, KBU_HAVE_CR}, {"cr3", r.cr3, KBU_HAVE_CR},
		{"fs_base", r.fs_base, KBU_HAVE_SEGBASE}, {"gs_base", r.gs_base, KBU_HAVE_SEGBASE},
		{"gdt", r.gdt_base, KBU_HAVE_DT}, {"idt", r.idt_base, KBU_HAVE_DT},
	};
	for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++) {
		if (strcmp(regs[i].name, name) != 0)
			continue;
		if (!(r.have & regs[i].have))
			return kbu_err_set(err, KBU_EUNSUPPORTED, "the %s source does not record $%s",
					   kbu_mem_kind(ctx->mem), name);
		*out = regs[i].v;
		return 0;
	}
	return kbu_err_set(err, KBU_EINVAL, "unknown register $%s", name);
}

int kbu_parse_addr(struct kbu_ctx *ctx, const char *s, uint64_t *out, struct kbu_err *err)
{
	if (!s || !*s)
		return kbu_err_set(err, KBU_EINVAL, "empty address");
	if (isdigit((unsigned char)s[0]))
		return kbu_parse_u64(s, out, err);
	if (s[0] != '$' && (!ctx || !ctx->syms))
		return kbu_err_set(err, KBU_EINVAL,
				   "'%s' is not a number and no symbols are loaded (give --kernel ELF or --symbols MAP)",
				   s);
	char name[256];
	size_t len = strlen(s);
	const char *op = NULL;
	for (size_t i = len; i-- > 1;)
		if (s[i] == '+' || s[i] == '-') {
			op = s + i;
			break;
		}
	size_t nlen = op ? (size_t)(op - s) : len;
	if (nlen >= sizeof name)
		return kbu_err_set(err, KBU_EINVAL, "symbol name '%.40s...' is too long", s);
	memcpy(name, s, nlen);
	name[nlen] = '\0';
	uint64_t off = 0;
	if (op && kbu_parse_u64(op + 1, &off, err) < 0)
		return kbu_err_prefix(err, "offset in '%s'", s);
	uint64_t base = 0;
	if (name[0] == '$') {
		if (register_value(ctx, name + 1, &base, err) < 0)
			return -1;
	} else {
		const struct kbu_sym *sym = kbu_sym_by_name(ctx->syms, name);
		if (!sym)
			return kbu_err_set(err, KBU_ENOTFOUND, "no symbol '%s'", name);
		base = sym->addr;
	}
	*out = op && *op == '-' ? base - off : base + off;
	return 0;
}

static int opt_by_long(const struct kbu_opt *opts, const char *name, size_t len)
{
	for (int i = 0; opts[i].name || opts[i].letter; i++)
		if (opts[i].name && strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
			return i;
	return -1;
}

static int opt_by_letter(const struct kbu_opt *opts, char c)
{
	for (int i = 0; opts[i].name || opts[i].letter; i++)
		if (opts[i].letter == c)
			return i;
	return -1;
}

int kbu_getopt(struct kbu_getopt *g, int argc, char **argv, const struct kbu_opt *opts,
	       struct kbu_err *err)
{
	g->arg = NULL;
	if (g->cluster && *g->cluster) {
		char c = *g->cluster++;
		int i = opt_by_letter(opts, c);
		if (i < 0)
			return kbu_err_set(err, KBU_EINVAL, "unknown option '-%c'", c), KBU_OPT_ERR;
		if (opts[i].has_arg) {
			if (*g->cluster) {
				g->arg = g->cluster;
			} else if (g->ind < argc) {
				g->arg = argv[g->ind++];
			} else {
				return kbu_err_set(err, KBU_EINVAL, "option '-%c' needs a value", c),
				       KBU_OPT_ERR;
			}
			g->cluster = NULL;
		}
		return i;
	}
	g->cluster = NULL;
	if (g->ind >= argc)
		return KBU_OPT_END;
	char *a = argv[g->ind++];
	if (g->only_args || a[0] != '-' || a[1] == '\0' ||
	    (a[1] >= '0' && a[1] <= '9' && opt_by_letter(opts, a[1]) < 0)) {
		g->arg = a;
		return KBU_OPT_ARG;
	}
	if (strcmp(a, "--") == 0) {
		g->only_args = 1;
		return kbu_getopt(g, argc, argv, opts, err);
	}
	if (a[1] == '-') {
		const char *name = a + 2;
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		int i = opt_by_long(opts, name, len);
		if (i < 0)
			return kbu_err_set(err, KBU_EINVAL, "unknown option '--%.*s'", (int)len, name),
			       KBU_OPT_ERR;
		if (opts[i].has_arg) {
			if (eq)
				g->arg = eq + 1;
			else if (g->ind < argc)
				g->arg = argv[g->ind++];
			else
				return kbu_err_set(err, KBU_EINVAL, "option '--%s' needs a value", opts[i].name),
				       KBU_OPT_ERR;
		} else if (eq) {
			return kbu_err_set(err, KBU_EINVAL, "option '--%s' takes no value", opts[i].name),
			       KBU_OPT_ERR;
		}
		return i;
	}
	g->cluster = a + 1;
	return kbu_getopt(g, argc, argv, opts, err);
}

int kbu_map_file(const char *path, int writable, const struct kbu_map_words *w, void **map,
		 size_t *len, struct kbu_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int code = w->enoent_notfound && errno == ENOENT ? KBU_ENOTFOUND : KBU_EIO;
		if (w->open)
			return kbu_err_set(err, code, "%s: %s: %s", path, w->open, strerror(errno));
		return kbu_err_set(err, code, "%s: %s", path, strerror(errno));
	}
	struct stat st;
	int rc = -1;
	if (fstat(fd, &st) != 0) {
		if (w->stat)
			kbu_err_set(err, KBU_EIO, "%s: %s: %s", path, w->stat, strerror(errno));
		else
			kbu_err_set(err, KBU_EINVAL, "%s: %s", path, w->notreg);
	} else if (S_ISDIR(st.st_mode)) {
		kbu_err_set(err, KBU_EINVAL, "%s: %s", path, w->dir ? w->dir : w->notreg);
	} else if (!S_ISREG(st.st_mode)) {
		kbu_err_set(err, KBU_EINVAL, "%s: %s", path, w->notreg);
	} else if (st.st_size == 0) {
		kbu_err_set(err, KBU_EFORMAT, "%s: %s", path, w->empty);
	} else {
		size_t n = (size_t)st.st_size;
		int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
		void *p = mmap(NULL, n, prot, MAP_PRIVATE | (w->populate ? MAP_POPULATE : 0), fd, 0);
		if (p == MAP_FAILED && w->map_says_size)
			kbu_err_set(err, KBU_EIO, "%s: %s %zu bytes: %s", path, w->map, n, strerror(errno));
		else if (p == MAP_FAILED)
			kbu_err_set(err, KBU_EIO, "%s: %s: %s", path, w->map, strerror(errno));
		else {
			*map = p;
			*len = n;
			rc = 0;
		}
	}
	close(fd);
	return rc;
}

static int escape_keeps(unsigned char c, const char *keep)
{
	if (c >= 0x20 && c < 0x7f)
		return 1;
	return c != 0 && keep && strchr(keep, c) != NULL;
}

size_t kbu_escape(const void *bytes, size_t n, const char *keep, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = bytes;
	size_t need = 0, o = 0;
	int full = cap == 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		size_t w = escape_keeps(c, keep) ? 1 : 4;
		need += w;
		if (full || o + w >= cap) {
			full = 1; /* nothing more, so no half escape and no gap */
			continue;
		}
		if (w == 1) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (cap)
		out[o] = '\0';
	return need;
}

char *kbu_escape_dup(const void *bytes, size_t n, const char *keep)
{
	size_t need = kbu_escape(bytes, n, keep, NULL, 0);
	char *s = malloc(need + 1);
	if (s)
		kbu_escape(bytes, n, keep, s, need + 1);
	return s;
}

void kbu_size_text(uint64_t n, char *buf, size_t len)
{
	static const struct {
		const char *unit;
		uint64_t div;
	} u[] = {{"GiB", 1ull << 30}, {"MiB", 1ull << 20}, {"KiB", 1ull << 10}};
	for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
		if (n >= u[i].div) {
			if (n % u[i].div)
				snprintf(buf, len, "%.1f %s", (double)n / (double)u[i].div, u[i].unit);
			else
				snprintf(buf, len, "%" PRIu64 " %s", n / u[i].div, u[i].unit);
			return;
		}
	snprintf(buf, len, "%" PRIu64 " bytes", n);
}

uint8_t kbu_sum8(const uint8_t *p, size_t n)
{
	unsigned s = 0;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	return (uint8_t)s;
}
