/* kbu disasm: call sites and string references in kernel text (byte scan + capstone check). */
#include "kbu/disasm.h"

#include <capstone/capstone.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/elf.h"
#include "kbu/symbols.h"
#include "kbu/util.h"

#define PT_LOAD_TYPE 1
#define PF_X_FLAG 1
/* A function longer than this is not decoded from its start (a missing symbol). */
#define MAX_FUNC_DECODE (1u << 20)
#define MAX_STRING_BACK 4096

void kbu_xrefs_free(struct kbu_xrefs *x)
{
	if (!x)
		return;
	free(x->v);
	memset(x, 0, sizeof(*x));
}

static int xref_push(struct kbu_xrefs *x, const struct kbu_xref *r, struct kbu_err *err)
{
	if (x->n == x->cap) {
		size_t nc = x->cap ? x->cap * 2 : 64;
		struct kbu_xref *v = realloc(x->v, nc * sizeof(*v));
		if (!v)
			return kbu_err_set(err, KBU_ENOMEM, "out of memory for %zu references", nc);
		x->v = v;
		x->cap = nc;
	}
	x->v[x->n++] = *r;
	return 0;
}

static int32_t rd32(const uint8_t *p) { return (int32_t)kbu_le32(p); }

/* An executable segment's file bytes. */
struct text {
	const uint8_t *bytes;
	uint64_t vaddr, len;
};

static size_t text_segments(const struct kbu_elf *e, struct text *t, size_t max)
{
	size_t n = 0, flen = 0;
	const uint8_t *file = kbu_elf_bytes(e, &flen);
	for (size_t i = 0; i < kbu_elf_nsegments(e) && n < max; i++) {
		const struct kbu_segment *s = kbu_elf_segment(e, i);
		if (s->type != PT_LOAD_TYPE || !(s->flags & PF_X_FLAG) || !s->filesz ||
		    s->offset > flen || s->filesz > flen - s->offset)
			continue;
		t[n].bytes = file + s->offset;
		t[n].vaddr = s->vaddr;
		t[n].len = s->filesz;
		n++;
	}
	return n;
}

/*
 * capstone is loaded when a command first disassembles, not when kbu starts:
 * relocating its tables costs every kbu process ~6 ms, most commands never
 * decode an instruction.
 */
struct decoder {
	void *lib;
	cs_err (*open)(cs_arch, cs_mode, csh *);
	cs_err (*option)(csh, cs_opt_type, size_t);
	cs_insn *(*insn_new)(csh);
	void (*insn_free)(cs_insn *, size_t);
	cs_err (*close)(csh *);
	bool (*iter)(csh, const uint8_t **, size_t *, uint64_t *, cs_insn *);
	unsigned (*version)(int *, int *);
	const char *(*reg_name)(csh, unsigned);
	csh cs;
	cs_insn *insn;
};

static int decoder_load(struct decoder *d, struct kbu_err *err)
{
	static const char *const names[] = {"libcapstone.so.4", "libcapstone.so.5", "libcapstone.so"};
	for (size_t i = 0; i < sizeof names / sizeof names[0] && !d->lib; i++)
		d->lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!d->lib)
		return kbu_err_set(err, KBU_EUNSUPPORTED, "capstone is not installed (%s)", dlerror());
	*(void **)&d->open = dlsym(d->lib, "cs_open");
	*(void **)&d->option = dlsym(d->lib, "cs_option");
	*(void **)&d->insn_new = dlsym(d->lib, "cs_malloc");
	*(void **)&d->insn_free = dlsym(d->lib, "cs_free");
	*(void **)&d->close = dlsym(d->lib, "cs_close");
	*(void **)&d->iter = dlsym(d->lib, "cs_disasm_iter");
	*(void **)&d->version = dlsym(d->lib, "cs_version");
	*(void **)&d->reg_name = dlsym(d->lib, "cs_reg_name");
	if (!d->open || !d->option || !d->insn_new || !d->insn_free || !d->close || !d->iter) {
		dlclose(d->lib);
		return kbu_err_set(err, KBU_EUNSUPPORTED, "this capstone lacks cs_disasm_iter (3.0 or later needed)");
	}
	return 0;
}

/* detail: capstone's operand detail, which it allocates per instruction buffer. */
static int decoder_open(struct decoder *d, int detail, struct kbu_err *err)
{
	memset(d, 0, sizeof(*d));
	if (decoder_load(d, err) < 0)
		return -1;
	if (d->open(CS_ARCH_X86, CS_MODE_64, &d->cs) != CS_ERR_OK) {
		dlclose(d->lib);
		return kbu_err_set(err, KBU_EUNSUPPORTED, "capstone cannot open x86-64");
	}
	d->option(d->cs, CS_OPT_DETAIL, detail ? CS_OPT_ON : CS_OPT_OFF);
	d->insn = d->insn_new(d->cs);
	if (!d->insn) {
		d->close(&d->cs);
		dlclose(d->lib);
		return kbu_err_set(err, KBU_ENOMEM, "capstone: out of memory");
	}
	return 0;
}

static void decoder_close(struct decoder *d)
{
	d->insn_free(d->insn, 1);
	d->close(&d->cs);
	dlclose(d->lib);
}

/* One instruction's memory operand and, for a mov to memory, its source. */
static int operands_at(struct decoder *d, const struct text *t, size_t nt, uint64_t addr,
		       struct kbu_operands *o, struct kbu_err *err)
{
	memset(o, 0, sizeof(*o));
	size_t k = 0;
	while (k < nt && !(addr >= t[k].vaddr && addr - t[k].vaddr < t[k].len))
		k++;
	if (k == nt)
		return kbu_err_set(err, KBU_ENOTFOUND, "0x%" PRIx64 " is not in the kernel's code", addr);
	const uint8_t *p = t[k].bytes + (addr - t[k].vaddr);
	size_t left = (size_t)(t[k].len - (addr - t[k].vaddr));
	uint64_t at = addr;
	if (!d->iter(d->cs, &p, &left, &at, d->insn) || !d->insn->detail)
		return kbu_err_set(err, KBU_EFORMAT, "0x%" PRIx64 ": not an instruction capstone decodes",
				   addr);
	const cs_x86 *x = &d->insn->detail->x86;
	const cs_x86_op *mem = NULL, *src = NULL;
	for (uint8_t i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];
		if (op->type == X86_OP_MEM && !mem)
			mem = op;
		else if (mem && !src)
			src = op;
	}
	if (!mem)
		return 0;
	o->mem_size = mem->size;
	o->mem_access = (mem->access & CS_AC_READ ? KBU_MEM_READ : 0) |
			(mem->access & CS_AC_WRITE ? KBU_MEM_WRITE : 0);
	const char *mn = d->insn->mnemonic;
	int plain_store = (strcmp(mn, "mov") == 0 || strcmp(mn, "movabs") == 0) &&
			  o->mem_access == KBU_MEM_WRITE && src;
	if (plain_store && src->type == X86_OP_IMM) {
		uint64_t mask = mem->size >= 8 ? UINT64_MAX : (1ull << (8 * mem->size)) - 1;
		o->store = KBU_STORE_IMM;
		o->store_imm = (uint64_t)src->imm & mask;
	} else if (plain_store && src->type == X86_OP_REG) {
		const char *name = d->reg_name(d->cs, src->reg);
		if (name) {
			o->store = KBU_STORE_REG;
			snprintf(o->store_reg, sizeof(o->store_reg), "%s", name);
		}
	}
	return 0;
}

int kbu_disasm_operands(const struct kbu_elf *e, const uint64_t *addrs, size_t n,
			struct kbu_operands *o, struct kbu_err *err)
{
	struct text t[16];
	size_t nt = text_segments(e, t, 16);
	if (!n)
		return 0;
	struct decoder d;
	if (decoder_open(&d, 1, err) < 0)
		return -1;
	int major = 0, minor = 0;
	if (d.version)
		d.version(&major, &minor);
	if (major != CS_API_MAJOR || !d.reg_name) {
		decoder_close(&d);
		return kbu_err_set(err, KBU_EUNSUPPORTED, "capstone %d.%d is installed, kbu reads "
				   "operand detail as capstone %d lays it out", major, minor, CS_API_MAJOR);
	}
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = operands_at(&d, t, nt, addrs[i], &o[i], err);
	decoder_close(&d);
	return rc;
}

/* Parses the hex number after "0x" at s; 0 if none. */
static uint64_t hex_after(const char *s)
{
	const char *h = strstr(s, "0x");
	return h ? strtoull(h + 2, NULL, 16) : 0;
}

/* The immediate of the last operand ("rdi, -0x7dd354c8" -> 0xffffffff822cab38);
 * capstone prints sign-extended immediates as negative numbers. 0 if none. */
static int last_imm(const char *ops, uint64_t *v)
{
	const char *c = strrchr(ops, ',');
	const char *s = c ? c + 1 : ops;
	while (*s == ' ')
		s++;
	int neg = *s == '-';
	if (neg)
		s++;
	if (strncmp(s, "0x", 2) != 0 && !(s[0] >= '0' && s[0] <= '9'))
		return 0;
	char *end;
	uint64_t x = strtoull(s, &end, 0);
	if (*end)
		return 0;
	*v = neg ? (uint64_t)0 - x : x;
	return 1;
}

/* What the instruction leaves in rdi, for the format-string recovery:
 * returns 1 and sets *v if known, 0 if rdi is clobbered to an unknown, -1 if untouched. */
static int rdi_effect(const cs_insn *in, uint64_t *v)
{
	const char *m = in->mnemonic, *o = in->op_str;
	int to_rdi = strncmp(o, "rdi,", 4) == 0 || strncmp(o, "edi,", 4) == 0;
	if (strcmp(m, "call") == 0)
		return 0;
	if (!to_rdi)
		return -1;
	if (strcmp(m, "lea") == 0 && strstr(o, "[rip + 0x")) {
		*v = in->address + in->size + hex_after(strstr(o, "[rip"));
		return 1;
	}
	if (strcmp(m, "lea") == 0 && strstr(o, "[rip - 0x")) {
		*v = in->address + in->size - hex_after(strstr(o, "[rip"));
		return 1;
	}
	if (strcmp(m, "mov") == 0 && strchr(o, '[') == NULL && last_imm(o, v))
		return 1;
	return 0;
}

/*
 * Decodes the function containing the candidate from its start. Returns 1 if
 * an instruction covers byte `at` (sets *out, the instruction and, with
 * track_rdi, the last value loaded into rdi), 0 if `at` is not inside a
 * decoded instruction, -1 if there is no function to decode from.
 */
static int decode_to(struct decoder *d, const struct text *t, const struct kbu_symtab *st,
		     uint64_t at, int track_rdi, cs_insn *out, uint64_t *func, uint64_t *rdi)
{
	uint64_t off = 0;
	const struct kbu_sym *s = st ? kbu_sym_by_addr(st, at, &off) : NULL;
	if (!s || s->addr < t->vaddr || off > MAX_FUNC_DECODE)
		return -1;
	*func = s->addr;
	const uint8_t *code = t->bytes + (s->addr - t->vaddr);
	size_t size = (size_t)(at - s->addr) + 16;
	if (size > t->len - (s->addr - t->vaddr))
		size = (size_t)(t->len - (s->addr - t->vaddr));
	uint64_t addr = s->addr;
	uint64_t rv = 0;
	while (size && d->iter(d->cs, &code, &size, &addr, d->insn)) {
		uint64_t a = d->insn->address;
		if (a > at)
			return 0;
		if (at < a + d->insn->size) {
			*out = *d->insn;
			if (rdi)
				*rdi = rv;
			return 1;
		}
		if (track_rdi) {
			uint64_t v;
			int e = rdi_effect(d->insn, &v);
			if (e == 1)
				rv = v;
			else if (e == 0)
				rv = 0;
		}
	}
	return 0;
}

static void fill_insn(struct kbu_xref *r, const cs_insn *in)
{
	r->addr = in->address;
	r->len = (uint8_t)in->size;
	snprintf(r->insn, sizeof(r->insn), "%s%s%s", in->mnemonic, in->op_str[0] ? " " : "",
		 in->op_str);
}

int kbu_disasm_calls_to(const struct kbu_elf *e, const struct kbu_symtab *st, uint64_t target,
			struct kbu_xrefs *out, struct kbu_err *err)
{
	struct text t[16];
	size_t nt = text_segments(e, t, 16);
	memset(out, 0, sizeof(*out));
	if (!nt)
		return kbu_err_set(err, KBU_ENOTFOUND, "%s has no executable PT_LOAD segment with file bytes",
				   kbu_elf_path(e));
	struct decoder d;
	if (decoder_open(&d, 0, err) < 0)
		return -1;
	for (size_t k = 0; k < nt; k++) {
		const uint8_t *b = t[k].bytes;
		for (uint64_t i = 0; i + 5 <= t[k].len; i++) {
			if (b[i] != 0xe8 && b[i] != 0xe9)
				continue;
			if (t[k].vaddr + i + 5 + (uint64_t)(int64_t)rd32(b + i + 1) != target)
				continue;
			out->candidates++;
			cs_insn in;
			struct kbu_xref r;
			memset(&r, 0, sizeof(r));
			int rc = decode_to(&d, &t[k], st, t[k].vaddr + i, 1, &in, &r.func, &r.arg0);
			if (rc < 0) {
				out->unverified++;
				continue;
			}
			if (rc == 0 || in.address != t[k].vaddr + i)
				continue;
			fill_insn(&r, &in);
			r.target = target;
			r.kind = b[i] == 0xe8 ? KBU_XREF_CALL : KBU_XREF_JMP;
			if (xref_push(out, &r, err) < 0) {
				decoder_close(&d);
				kbu_xrefs_free(out);
				return -1;
			}
		}
	}
	decoder_close(&d);
	return 0;
}

static int in_ranges(uint64_t v, const uint64_t *start, const uint64_t *end, size_t n)
{
	/* Ranges are few (the strings that contain a text): a linear check is enough. */
	for (size_t i = 0; i < n; i++)
		if (v >= start[i] && v < end[i])
			return 1;
	return 0;
}

int kbu_disasm_refs_to(const struct kbu_elf *e, const struct kbu_symtab *st,
		       const uint64_t *start, const uint64_t *end, size_t nranges,
		       struct kbu_xrefs *out, struct kbu_err *err)
{
	struct text t[16];
	size_t nt = text_segments(e, t, 16);
	memset(out, 0, sizeof(*out));
	if (!nt)
		return kbu_err_set(err, KBU_ENOTFOUND, "%s has no executable PT_LOAD segment with file bytes",
				   kbu_elf_path(e));
	if (!nranges)
		return 0;
	uint64_t lo = UINT64_MAX, hi = 0;
	for (size_t i = 0; i < nranges; i++) {
		if (start[i] < lo)
			lo = start[i];
		if (end[i] > hi)
			hi = end[i];
	}
	uint64_t span = hi - lo;
	struct decoder d;
	if (decoder_open(&d, 0, err) < 0)
		return -1;
	uint64_t last = 0;
	for (size_t k = 0; k < nt; k++) {
		const uint8_t *b = t[k].bytes;
		for (uint64_t i = 0; i + 4 <= t[k].len; i++) {
			int32_t v = rd32(b + i);
			uint64_t abs = (uint64_t)(int64_t)v; /* imm32 sign-extended */
			uint64_t near = t[k].vaddr + i + 4 + abs; /* disp32 ending the instruction */
			/* One unsigned compare each rejects almost every position: RIP may lie
			 * 0..4 bytes past the disp32 (an immediate follows), abs must be in span. */
			if (near - lo + 4 > span + 4 && abs - lo >= span)
				continue;
			/* A disp32 is followed by 0, 1, 2 or 4 immediate bytes; RIP is the end. */
			static const unsigned imm_len[] = {0, 1, 2, 4};
			uint64_t rip = 0;
			int is_rip = 0;
			for (size_t q = 0; q < 4 && !is_rip; q++) {
				rip = near + imm_len[q];
				is_rip = rip >= lo && rip < hi && in_ranges(rip, start, end, nranges);
			}
			int is_abs = abs >= lo && abs < hi && in_ranges(abs, start, end, nranges);
			if (!is_rip && !is_abs)
				continue;
			out->candidates++;
			cs_insn in;
			struct kbu_xref r;
			memset(&r, 0, sizeof(r));
			uint64_t imm = 0;
			int rc = decode_to(&d, &t[k], st, t[k].vaddr + i, 0, &in, &r.func, NULL);
			if (rc < 0) {
				out->unverified++;
				continue;
			}
			if (rc == 0 || in.address == last)
				continue;
			uint64_t end_of = in.address + in.size;
			if (is_rip && strstr(in.op_str, "[rip") && end_of > t[k].vaddr + i + 4 - 1 &&
			    end_of + (uint64_t)(int64_t)v == rip) {
				r.kind = KBU_XREF_RIPREL;
				r.target = rip;
			} else if (is_abs && !strstr(in.op_str, "[rip") && last_imm(in.op_str, &imm) &&
				   imm == abs) {
				r.kind = KBU_XREF_IMM32;
				r.target = abs;
			} else {
				continue;
			}
			fill_insn(&r, &in);
			last = in.address;
			if (xref_push(out, &r, err) < 0) {
				decoder_close(&d);
				kbu_xrefs_free(out);
				return -1;
			}
		}
	}
	decoder_close(&d);
	return 0;
}

int kbu_find_strings(const struct kbu_elf *e, const char *needle, struct kbu_string *out,
		     size_t max, size_t *n, struct kbu_err *err)
{
	size_t flen = 0, nl = needle ? strlen(needle) : 0;
	const uint8_t *file = kbu_elf_bytes(e, &flen);
	*n = 0;
	if (!nl)
		return kbu_err_set(err, KBU_EINVAL, "empty text to search for");
	int more = 0;
	for (size_t i = 0; i < kbu_elf_nsegments(e); i++) {
		const struct kbu_segment *s = kbu_elf_segment(e, i);
		if (s->type != PT_LOAD_TYPE || !s->filesz || s->offset > flen ||
		    s->filesz > flen - s->offset)
			continue;
		const uint8_t *seg = file + s->offset, *p = seg, *endp = seg + s->filesz;
		while ((p = memmem(p, (size_t)(endp - p), needle, nl)) != NULL) {
			const uint8_t *a = p, *z = p + nl;
			while (a > seg && a[-1] != 0 && p - a < MAX_STRING_BACK)
				a--;
			while (z < endp && *z != 0 && z - p < MAX_STRING_BACK)
				z++;
			if (*n < max) {
				out[*n].addr = s->vaddr + (uint64_t)(a - seg);
				out[*n].len = (size_t)(z - a);
				out[*n].text = (const char *)a;
				(*n)++;
			} else {
				more = 1;
				break;
			}
			p = z; /* the next string */
		}
	}
	return more;
}

const char *kbu_image_string(const struct kbu_elf *e, uint64_t addr, char *buf, size_t len)
{
	if (!len)
		return NULL;
	const uint8_t *p = kbu_elf_vaddr_bytes(e, addr, 1);
	if (!p)
		return NULL;
	size_t o = 0;
	for (size_t i = 0;; i++) {
		const uint8_t *c = kbu_elf_vaddr_bytes(e, addr + i, 1);
		if (!c || *c == 0)
			break;
		char tmp[8];
		int tn;
		if (*c == '\n')
			tn = snprintf(tmp, sizeof(tmp), "\\n");
		else if (*c == '\t')
			tn = snprintf(tmp, sizeof(tmp), "\\t");
		else if (*c == '"' || *c == '\\')
			tn = snprintf(tmp, sizeof(tmp), "\\%c", *c);
		else if (*c < 0x20 || *c >= 0x7f)
			tn = snprintf(tmp, sizeof(tmp), "\\x%02x", *c);
		else
			tn = snprintf(tmp, sizeof(tmp), "%c", *c);
		if (o + (size_t)tn + 4 > len) {
			if (o + 4 <= len)
				memcpy(buf + o, "...", 3), o += 3;
			break;
		}
		memcpy(buf + o, tmp, (size_t)tn);
		o += (size_t)tn;
	}
	buf[o < len ? o : len - 1] = 0;
	return buf;
}
