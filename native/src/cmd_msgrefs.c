/* kbu msgrefs TEXT: the strings that contain TEXT and the instructions that reference them. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/disasm.h"
#include "kbu/elf.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/util.h"

#define MAX_STRINGS 256

static const char *kind_name(int k)
{
	switch (k) {
	case KBU_XREF_RIPREL: return "rip-relative";
	case KBU_XREF_IMM32: return "imm32";
	case KBU_XREF_CALL: return "call";
	case KBU_XREF_JMP: return "jmp";
	}
	return "?";
}

/* A store into the referenced memory: Intel syntax puts the destination first. */
static int is_write(const char *insn)
{
	static const char *const readers[] = {"cmp", "test", "bt ", "push", "call", "jmp", "nop"};
	for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++)
		if (strncmp(insn, readers[i], strlen(readers[i])) == 0)
			return 0;
	const char *sp = strchr(insn, ' ');
	if (!sp)
		return 0;
	sp++;
	if (strncmp(sp, "lock ", 5) == 0)
		sp += 5;
	static const char *const mem[] = {"byte ptr [", "word ptr [", "dword ptr [", "qword ptr ["};
	for (size_t i = 0; i < sizeof(mem) / sizeof(mem[0]); i++)
		if (strncmp(sp, mem[i], strlen(mem[i])) == 0)
			return 1;
	return 0;
}

/* --data NAME[:SIZE]: the instructions that reference a variable, reads and writes. */
static int data_refs(struct kbu_ctx *ctx, const char *spec, struct kbu_report *r,
		     struct kbu_err *err)
{
	char name[256];
	const char *colon = strchr(spec, ':');
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
	if (n == 0 || n >= sizeof(name))
		return kbu_err_set(err, KBU_EINVAL, "--data: bad symbol '%s'", spec);
	memcpy(name, spec, n);
	name[n] = 0;
	const struct kbu_sym *s = kbu_sym_by_name(ctx->syms, name);
	if (!s)
		return kbu_err_set(err, KBU_ENOTFOUND, "--data: no symbol '%s'", name);
	uint64_t size = s->size ? s->size : 8;
	if (colon && kbu_parse_u64(colon + 1, &size, err) < 0)
		return kbu_err_prefix(err, "--data: size in '%s'", spec);
	if (size == 0 || size > (1u << 20))
		return kbu_err_set(err, KBU_EINVAL, "--data: size %llu is not in 1..1 MiB",
				   (unsigned long long)size);
	uint64_t lo = s->addr, hi = s->addr + size;
	struct kbu_xrefs x;
	if (kbu_disasm_refs_to(ctx->kernel, ctx->syms, &lo, &hi, 1, &x, err) < 0)
		return -1;
	struct kbu_node *root = kbu_report_root(r);
	kbu_str(root, "symbol", "symbol", name);
	kbu_hex(root, "addr", "address", s->addr, 16);
	kbu_u64(root, "size", "size", size);
	struct kbu_node *rl = kbu_list(root, "refs", "References");
	/* Reads and writes from capstone's operand detail; by the instruction's
	 * text when the capstone installed lays detail out differently. */
	struct kbu_operands *ops = calloc(x.n ? x.n : 1, sizeof(*ops));
	uint64_t *at = calloc(x.n ? x.n : 1, sizeof(*at));
	struct kbu_err oerr = {0};
	int detail = ops && at;
	for (size_t k = 0; detail && k < x.n; k++)
		at[k] = x.v[k].addr;
	if (detail && kbu_disasm_operands(ctx->kernel, at, x.n, ops, &oerr) < 0) {
		if (oerr.code != KBU_EUNSUPPORTED) {
			free(ops);
			free(at);
			kbu_xrefs_free(&x);
			*err = oerr;
			return -1;
		}
		detail = 0;
		kbu_problem(rl, KBU_SEV_NOTE, "reads and writes told from the instructions' text: %s",
			    oerr.msg);
	}
	uint64_t writes = 0;
	for (size_t k = 0; k < x.n; k++) {
		struct kbu_node *row = kbu_row(rl);
		char sym[160];
		int w = detail ? (ops[k].mem_access & KBU_MEM_WRITE) != 0 : is_write(x.v[k].insn);
		writes += (uint64_t)w;
		kbu_hex(row, "addr", "address", x.v[k].addr, 16);
		kbu_str(row, "where", "where", kbu_sym_format(ctx->syms, x.v[k].addr, sym, sizeof(sym)));
		kbu_str(row, "insn", "instruction", x.v[k].insn);
		kbu_str(row, "access", "access", w ? "write" : "read");
		kbu_hex(row, "target", "", x.v[k].target, 16);
		kbu_u64(row, "len", "", x.v[k].len);
		/* What a plain store writes: a value, or a register read at the store. */
		if (detail) {
			char what[32] = "";
			if (ops[k].store == KBU_STORE_IMM)
				snprintf(what, sizeof(what), "%" PRIu64, ops[k].store_imm);
			else if (ops[k].store == KBU_STORE_REG)
				snprintf(what, sizeof(what), "%s", ops[k].store_reg);
			kbu_display(row, "stored_text", "stores", "%s", what[0] ? what : w ? "?" : "");
		}
		if (detail && ops[k].store == KBU_STORE_IMM) {
			struct kbu_node *st = kbu_obj(row, "stored", "");
			kbu_str(st, "kind", "", "immediate");
			kbu_u64(st, "value", "", ops[k].store_imm);
		} else if (detail && ops[k].store == KBU_STORE_REG) {
			struct kbu_node *st = kbu_obj(row, "stored", "");
			kbu_str(st, "kind", "", "register");
			kbu_str(st, "register", "", ops[k].store_reg);
		} else {
			kbu_null(row, "stored", "");
		}
	}
	free(ops);
	free(at);
	kbu_u64(root, "writes", "writes", writes);
	if (x.unverified)
		kbu_problem(rl, KBU_SEV_NOTE, "%llu candidate(s) lie outside any symbol and were not "
			    "checked", (unsigned long long)x.unverified);
	kbu_xrefs_free(&x);
	return 0;
}

static int msgrefs_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		       struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {{"data", 0, 1}, {0}};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	const char *needle = NULL, *data = NULL;
	int i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == 0) {
			data = g.arg;
			continue;
		}
		if (needle)
			return kbu_err_set(err, KBU_EINVAL, "one TEXT only (quote it: \"%s %s\")",
					   needle, g.arg);
		needle = g.arg;
	}
	if (data) {
		if (needle)
			return kbu_err_set(err, KBU_EINVAL, "msgrefs: --data and TEXT do not go together");
		return data_refs(ctx, data, r, err);
	}
	if (!needle || !*needle)
		return kbu_err_set(err, KBU_EINVAL, "give the TEXT to look for");

	struct kbu_string *strs = calloc(MAX_STRINGS, sizeof(*strs));
	uint64_t *lo = calloc(MAX_STRINGS, sizeof(*lo)), *hi = calloc(MAX_STRINGS, sizeof(*hi));
	if (!strs || !lo || !hi) {
		free(strs), free(lo), free(hi);
		return kbu_err_set(err, KBU_ENOMEM, "out of memory");
	}
	size_t ns = 0;
	int more = kbu_find_strings(ctx->kernel, needle, strs, MAX_STRINGS, &ns, err);
	if (more < 0) {
		free(strs), free(lo), free(hi);
		return -1;
	}
	struct kbu_node *root = kbu_report_root(r);
	kbu_str(root, "text", "text", needle);
	struct kbu_node *sl = kbu_list(root, "strings", "Strings");
	char buf[200];
	for (size_t k = 0; k < ns; k++) {
		lo[k] = strs[k].addr;
		hi[k] = strs[k].addr + strs[k].len + 1; /* the NUL: an empty suffix may be shared */
		struct kbu_node *row = kbu_row(sl);
		kbu_hex(row, "addr", "address", strs[k].addr, 16);
		if (kbu_image_string(ctx->kernel, strs[k].addr, buf, sizeof(buf))) {
			kbu_str(row, "string", "string", buf);
		} else {
			kbu_display(row, "string_text", "string", "?");
			kbu_null(row, "string", "");
		}
	}
	if (more)
		kbu_problem(sl, KBU_SEV_WARN, "more than %d strings contain '%s': only the first %d "
			    "are searched for", MAX_STRINGS, needle, MAX_STRINGS);
	struct kbu_xrefs x;
	if (kbu_disasm_refs_to(ctx->kernel, ctx->syms, lo, hi, ns, &x, err) < 0) {
		free(strs), free(lo), free(hi);
		return -1;
	}
	struct kbu_node *rl = kbu_list(root, "refs", "References");
	for (size_t k = 0; k < x.n; k++) {
		struct kbu_node *row = kbu_row(rl);
		char sym[160];
		kbu_hex(row, "addr", "address", x.v[k].addr, 16);
		kbu_str(row, "where", "where", kbu_sym_format(ctx->syms, x.v[k].addr, sym, sizeof(sym)));
		kbu_str(row, "insn", "instruction", x.v[k].insn);
		kbu_str(row, "kind", "kind", kind_name(x.v[k].kind));
		kbu_hex(row, "target", "target", x.v[k].target, 16);
		const struct kbu_sym *f = kbu_sym_by_addr(ctx->syms, x.v[k].addr, NULL);
		if (f)
			kbu_str(row, "function", "", f->name);
		else
			kbu_null(row, "function", "");
	}
	if (ns == 0)
		kbu_problem(root, KBU_SEV_NOTE, "no string in %s contains '%s'", kbu_elf_path(ctx->kernel),
			    needle);
	else if (x.n == 0)
		kbu_problem(rl, KBU_SEV_NOTE, "no instruction references these strings directly "
			    "(built at run time, or reached through a table)");
	if (x.unverified)
		kbu_problem(rl, KBU_SEV_NOTE, "%llu candidate(s) lie outside any symbol and were not "
			    "checked", (unsigned long long)x.unverified);
	kbu_xrefs_free(&x);
	free(strs), free(lo), free(hi);
	return 0;
}

static struct kbu_command cmd_msgrefs = {
	.name = "msgrefs",
	.summary = "strings containing TEXT in the kernel image and the instructions that load them",
	.help = "usage: kbu msgrefs --kernel ELF [--symbols MAP] TEXT\n"
		"       kbu msgrefs --kernel ELF [--symbols MAP] --data SYMBOL[:SIZE]\n"
		"\n"
		"Finds the NUL-terminated strings of the kernel image that contain TEXT and\n"
		"every instruction that references one of them: RIP-relative lea/mov, and\n"
		"sign-extended 32-bit immediates (mov $addr, as -mcmodel=kernel code does).\n"
		"Each reference is confirmed by disassembling its function (capstone) and is\n"
		"shown with the function and offset: break there to stop right before the\n"
		"kernel prints the message (`kbu break msg TEXT` does this in GDB).\n"
		"--data lists the instructions that read or write a variable instead (SIZE\n"
		"defaults to the symbol's size); `kbu watch` uses it to count writes.\n",
	.needs = KBU_NEEDS_KERNEL | KBU_NEEDS_SYMS,
	.run = msgrefs_run,
};
KBU_COMMAND(cmd_msgrefs)
