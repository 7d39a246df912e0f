/*
 * disasm: call sites and string references in a small kernel image written by
 * the test (ELF64, a text and a rodata PT_LOAD, symbols from an nm map), with
 * decoys that a byte scan alone would report: opcode and address bytes inside
 * another instruction's immediate.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "support.h"
#include "kbu/command.h"
#include "kbu/disasm.h"
#include "kbu/elf.h"
#include "kbu/symbols.h"

#define TEXT 0xffffffff80200000ull
#define RODATA 0xffffffff80300000ull
#define F_A (TEXT + 0x00)
#define F_B (TEXT + 0x40)
#define F_C (TEXT + 0x80)
#define F_PANIC (TEXT + 0xc0)
#define S1 (RODATA + 0x10) /* "TSC not initialized" */
#define S2 (RODATA + 0x40) /* "Unknown MP Config Entry %d" */
#define S3 (RODATA + 0x80) /* "Statistical %s calibration failed!\n" */
#define F_D (TEXT + 0xe0)
#define VAR (RODATA + 0xc0)   /* a 4-byte variable */

static void put32(uint8_t *p, uint64_t v) { put_le(p, v, 4); }

static char elf_path[64], map_path[64];

static void build_image(int with_text)
{
	static uint8_t f[0x3000];
	memset(f, 0, sizeof(f));
	/* ELF header */
	memcpy(f, "\x7f" "ELF", 4);
	f[4] = 2; f[5] = 1; f[6] = 1; f[7] = 9; /* ELFCLASS64, LSB, FreeBSD OSABI */
	put_le(f + 16, 2, 2);          /* ET_EXEC */
	put_le(f + 18, 62, 2);         /* EM_X86_64 */
	put_le(f + 20, 1, 4);
	put_le(f + 24, F_A, 8);        /* entry */
	put_le(f + 32, 64, 8);         /* phoff */
	put_le(f + 52, 64, 2);         /* ehsize */
	put_le(f + 54, 56, 2);         /* phentsize */
	put_le(f + 56, 2, 2);          /* phnum */
	put_le(f + 58, 64, 2);         /* shentsize */
	/* PT_LOAD text R+X (or R only), PT_LOAD rodata R */
	uint8_t *ph = f + 64;
	put_le(ph + 0, 1, 4); put_le(ph + 4, with_text ? 5 : 4, 4); put_le(ph + 8, 0x1000, 8);
	put_le(ph + 16, TEXT, 8); put_le(ph + 24, 0x200000, 8); put_le(ph + 32, 0x100, 8);
	put_le(ph + 40, 0x100, 8); put_le(ph + 48, 0x1000, 8);
	ph += 56;
	put_le(ph + 0, 1, 4); put_le(ph + 4, 4, 4); put_le(ph + 8, 0x2000, 8);
	put_le(ph + 16, RODATA, 8); put_le(ph + 24, 0x300000, 8); put_le(ph + 32, 0x100, 8);
	put_le(ph + 40, 0x100, 8); put_le(ph + 48, 0x1000, 8);

	uint8_t *t = f + 0x1000;
	/* func_a: push rbp; lea rdi,[rip+S1]; call panic; pop rbp; ret */
	uint8_t *p = t;
	*p++ = 0x55;
	*p++ = 0x48; *p++ = 0x8d; *p++ = 0x3d;
	put32(p, S1 - (F_A + 1 + 7)); p += 4;
	*p++ = 0xe8;
	put32(p, F_PANIC - (F_A + 8 + 5)); p += 4;
	*p++ = 0x5d; *p++ = 0xc3;
	/* func_b: mov rdi, S2 (imm32 sign-extended); mov esi, 7; jmp panic */
	p = t + 0x40;
	*p++ = 0x48; *p++ = 0xc7; *p++ = 0xc7;
	put32(p, S2); p += 4;
	*p++ = 0xbe; put32(p, 7); p += 4;
	*p++ = 0xe9;
	put32(p, F_PANIC - (F_B + 12 + 5)); p += 4;
	/* func_c: decoys inside movabs immediates: "call panic" and a [rip] disp to S1. */
	p = t + 0x80;
	*p++ = 0x48; *p++ = 0xb8;
	*p++ = 0xe8; put32(p, F_PANIC - (F_C + 2 + 5)); p += 4; *p++ = 0; *p++ = 0; *p++ = 0;
	*p++ = 0x48; *p++ = 0xbb;
	put32(p, S1 - (F_C + 12 + 4)); p += 4; put32(p, 0); p += 4;
	*p++ = 0xc3;
	/* panic: ret */
	t[0xc0] = 0xc3;
	/* func_d: mov dword ptr [rip+VAR], 1 (disp32 then imm32); cmp byte ptr [rip+VAR], 0;
	 * mov dword ptr [rip+VAR], ebx; add dword ptr [rip+VAR], 1 */
	p = t + 0xe0;
	*p++ = 0xc7; *p++ = 0x05;
	put32(p, VAR - (F_D + 10)); p += 4; put32(p, 1); p += 4;
	*p++ = 0x80; *p++ = 0x3d;
	put32(p, VAR - (F_D + 17)); p += 4; *p++ = 0;
	*p++ = 0x89; *p++ = 0x1d;
	put32(p, VAR - (F_D + 23)); p += 4;
	*p++ = 0x83; *p++ = 0x05;
	put32(p, VAR - (F_D + 30)); p += 4; *p++ = 1;
	*p++ = 0xc3;

	uint8_t *r = f + 0x2000;
	strcpy((char *)r + 0x10, "TSC not initialized");
	strcpy((char *)r + 0x40, "Unknown MP Config Entry %d");
	strcpy((char *)r + 0x80, "Statistical %s calibration failed!\n");

	strcpy(elf_path, "/tmp/kbu-test-disasm-XXXXXX");
	int fd = mkstemp(elf_path);
	if (fd >= 0) {
		if (write(fd, f, sizeof(f)) != (ssize_t)sizeof(f))
			perror("write");
		close(fd);
	}
	strcpy(map_path, "/tmp/kbu-test-disasm-map-XXXXXX");
	fd = mkstemp(map_path);
	FILE *m = fdopen(fd, "w");
	fprintf(m, "ffffffff80200000 T func_a\nffffffff80200040 T func_b\n"
		   "ffffffff80200080 T func_c\nffffffff802000c0 T panic\n"
		   "ffffffff802000e0 T func_d\nffffffff80200100 T mi_startup\n"
		   "ffffffff803000c0 D var\n");
	fclose(m);
}

struct img {
	struct kbu_elf *e;
	struct kbu_symtab *st;
};

static struct img open_image(int with_text)
{
	struct img i = {0};
	struct kbu_err err = {0};
	build_image(with_text);
	i.e = kbu_elf_open(elf_path, &err);
	if (!i.e)
		fprintf(stderr, "elf: %s\n", err.msg);
	i.st = kbu_symtab_new();
	if (kbu_symtab_load_map(i.st, map_path, &err) < 0 || kbu_symtab_finish(i.st, &err) < 0)
		fprintf(stderr, "map: %s\n", err.msg);
	return i;
}

static void close_image(struct img *i)
{
	kbu_elf_close(i->e);
	kbu_symtab_free(i->st);
	unlink(elf_path);
	unlink(map_path);
}

TEST(calls_found_decoys_rejected_format_recovered)
{
	struct img i = open_image(1);
	CHECK(i.e);
	if (!i.e)
		return;
	struct kbu_err err = {0};
	struct kbu_xrefs x;
	CHECK(kbu_disasm_calls_to(i.e, i.st, F_PANIC, &x, &err) == 0);
	CHECK_EQ_U64(x.candidates, 3); /* the decoy looked like a call */
	CHECK_EQ_U64(x.n, 2);
	if (x.n == 2) {
		CHECK_EQ_U64(x.v[0].addr, F_A + 8);
		CHECK_EQ_U64(x.v[0].kind, KBU_XREF_CALL);
		CHECK_EQ_U64(x.v[0].func, F_A);
		CHECK_EQ_U64(x.v[0].arg0, S1);
		CHECK_STR(x.v[0].insn, "call 0xffffffff802000c0");
		CHECK_EQ_U64(x.v[1].addr, F_B + 12);
		CHECK_EQ_U64(x.v[1].kind, KBU_XREF_JMP);
		CHECK_EQ_U64(x.v[1].arg0, S2);
	}
	kbu_xrefs_free(&x);
	close_image(&i);
}

TEST(string_refs_rip_relative_and_imm32)
{
	struct img i = open_image(1);
	CHECK(i.e);
	if (!i.e)
		return;
	struct kbu_err err = {0};
	struct kbu_string s[4];
	size_t n = 0;
	CHECK(kbu_find_strings(i.e, "not init", s, 4, &n, &err) == 0);
	CHECK_EQ_U64(n, 1);
	CHECK_EQ_U64(s[0].addr, S1);
	CHECK_EQ_U64(s[0].len, strlen("TSC not initialized"));
	uint64_t lo[2] = {S1, S2}, hi[2] = {S1 + 20, S2 + 27};
	struct kbu_xrefs x;
	CHECK(kbu_disasm_refs_to(i.e, i.st, lo, hi, 2, &x, &err) == 0);
	CHECK_EQ_U64(x.n, 2);
	if (x.n == 2) {
		CHECK_EQ_U64(x.v[0].addr, F_A + 1);
		CHECK_EQ_U64(x.v[0].kind, KBU_XREF_RIPREL);
		CHECK_EQ_U64(x.v[0].target, S1);
		CHECK_EQ_U64(x.v[1].addr, F_B);
		CHECK_EQ_U64(x.v[1].kind, KBU_XREF_IMM32);
		CHECK_EQ_U64(x.v[1].target, S2);
	}
	kbu_xrefs_free(&x);

	/* A string found by a word in its middle starts at its first byte. */
	CHECK(kbu_find_strings(i.e, "calibration", s, 4, &n, &err) == 0);
	CHECK_EQ_U64(n, 1);
	CHECK_EQ_U64(s[0].addr, S3);
	char buf[64];
	CHECK_STR(kbu_image_string(i.e, S3, buf, sizeof(buf)), "Statistical %s calibration failed!\\n");
	CHECK_STR(kbu_image_string(i.e, S3, buf, 16), "Statistical ...");
	CHECK(kbu_image_string(i.e, 0x1234, buf, sizeof(buf)) == NULL);
	CHECK(kbu_find_strings(i.e, "no such text", s, 4, &n, &err) == 0 && n == 0);
	CHECK(kbu_find_strings(i.e, "", s, 4, &n, &err) < 0);
	close_image(&i);
}

TEST(rip_relative_with_trailing_immediate)
{
	struct img i = open_image(1);
	CHECK(i.e);
	if (!i.e)
		return;
	struct kbu_err err = {0};
	uint64_t lo = VAR, hi = VAR + 4;
	struct kbu_xrefs x;
	CHECK(kbu_disasm_refs_to(i.e, i.st, &lo, &hi, 1, &x, &err) == 0);
	CHECK_EQ_U64(x.n, 4);
	if (x.n == 4) {
		CHECK_EQ_U64(x.v[0].addr, F_D);
		CHECK_STR(x.v[0].insn, "mov dword ptr [rip + 0xfffd6], 1");
		CHECK_EQ_U64(x.v[1].addr, F_D + 10);
		CHECK_EQ_U64(x.v[1].target, VAR);
		CHECK_EQ_U64(x.v[2].addr, F_D + 17);
		CHECK_EQ_U64(x.v[3].addr, F_D + 23);
	}
	kbu_xrefs_free(&x);
	close_image(&i);
}

/* Each reference's memory operand and what a store writes, from capstone's detail. */
TEST(operands_of_each_reference)
{
	struct img i = open_image(1);
	CHECK(i.e);
	if (!i.e)
		return;
	struct kbu_err err = {0};
	const uint64_t at[] = {F_D, F_D + 10, F_D + 17, F_D + 23};
	struct kbu_operands o[4];
	CHECK(kbu_disasm_operands(i.e, at, 4, o, &err) == 0);
	/* mov dword ptr [VAR], 1 */
	CHECK_EQ_U64(o[0].mem_access, KBU_MEM_WRITE);
	CHECK_EQ_U64(o[0].mem_size, 4);
	CHECK_EQ_U64(o[0].store, KBU_STORE_IMM);
	CHECK_EQ_U64(o[0].store_imm, 1);
	/* cmp byte ptr [VAR], 0: a read, nothing stored */
	CHECK_EQ_U64(o[1].mem_access, KBU_MEM_READ);
	CHECK_EQ_U64(o[1].mem_size, 1);
	CHECK_EQ_U64(o[1].store, KBU_STORE_UNKNOWN);
	/* mov dword ptr [VAR], ebx */
	CHECK_EQ_U64(o[2].mem_access, KBU_MEM_WRITE);
	CHECK_EQ_U64(o[2].store, KBU_STORE_REG);
	CHECK_STR(o[2].store_reg, "ebx");
	/* add dword ptr [VAR], 1: read and written, its value not a plain store */
	CHECK_EQ_U64(o[3].mem_access, KBU_MEM_RW);
	CHECK_EQ_U64(o[3].store, KBU_STORE_UNKNOWN);
	/* An address outside the code is a clear error. */
	const uint64_t bad = RODATA;
	CHECK(kbu_disasm_operands(i.e, &bad, 1, o, &err) < 0);
	CHECK_EQ_U64(err.code, KBU_ENOTFOUND);
	close_image(&i);
}

TEST(image_without_text_is_a_clear_error)
{
	struct img i = open_image(0);
	CHECK(i.e);
	if (!i.e)
		return;
	struct kbu_err err = {0};
	struct kbu_xrefs x;
	CHECK(kbu_disasm_calls_to(i.e, i.st, F_PANIC, &x, &err) < 0);
	CHECK_CONTAINS(err.msg, "has no executable PT_LOAD segment");
	close_image(&i);
}

static char *run_argv_as(int argc, char **argv, int *rc, int json);

static char *run_argv(int argc, char **argv, int *rc) { return run_argv_as(argc, argv, rc, 0); }

static char *run_argv_as(int argc, char **argv, int *rc, int json)
{
	struct kbu_err err = {0};
	struct kbu_ctx *ctx = kbu_ctx_new();
	char *out = NULL;
	build_image(1);
	if (kbu_ctx_load_kernel(ctx, elf_path, &err) < 0 || kbu_ctx_load_symbols(ctx, map_path, &err) < 0)
		fprintf(stderr, "ctx: %s\n", err.msg);
	*rc = kbu_run(ctx, argc, argv, json, &out, &err);
	if (*rc == 2) {
		free(out);
		out = strdup(err.msg);
	}
	kbu_ctx_free(ctx);
	unlink(elf_path);
	unlink(map_path);
	return out;
}

TEST(asserts_and_msgrefs_commands)
{
	int rc;
	char *a[] = {"asserts", "--os", "freebsd"};
	char *out = run_argv(3, a, &rc);
	CHECK(rc == 0);
	CHECK_CONTAINS(out, "func_a");
	CHECK_CONTAINS(out, "\"TSC not initialized\"");
	CHECK_CONTAINS(out, "\"Unknown MP Config Entry %d\"");
	CHECK_CONTAINS(out, "kassert_panic");    /* listed as absent */
	CHECK_CONTAINS(out, "not in this kernel");
	free(out);

	char *b[] = {"asserts", "func_b"};         /* FreeBSD: its ELF OS ABI says so */
	out = run_argv(2, b, &rc);
	CHECK(rc == 0);
	CHECK_CONTAINS(out, "freebsd");
	CHECK(out && !strstr(out, "func_a "));
	CHECK_CONTAINS(out, "func_b");
	free(out);

	char *c[] = {"asserts", "no_such_function"};
	out = run_argv(2, c, &rc);
	CHECK(rc == 2);
	CHECK_CONTAINS(out, "no function 'no_such_function'");
	free(out);

	char *d[] = {"msgrefs", "Statistical"};
	out = run_argv(2, d, &rc);
	CHECK(rc == 0);
	CHECK_CONTAINS(out, "0xffffffff80300080");
	CHECK_CONTAINS(out, "no instruction references these strings");
	free(out);

	char *w[] = {"msgrefs", "--data", "var:4"};
	out = run_argv(3, w, &rc);
	CHECK(rc == 0);
	CHECK_CONTAINS(out, "func_d ");
	CHECK_CONTAINS(out, "write");
	CHECK_CONTAINS(out, "writes:  3");
	CHECK_CONTAINS(out, "stores");
	free(out);
	out = run_argv_as(3, w, &rc, 1);
	CHECK(rc == 0);
	CHECK_CONTAINS(out, "\"stored\": {\"kind\": \"immediate\", \"value\": 1}");
	CHECK_CONTAINS(out, "\"stored\": {\"kind\": \"register\", \"register\": \"ebx\"}");
	CHECK_CONTAINS(out, "\"access\": \"read\", \"target\"");
	free(out);

	char *e[] = {"msgrefs", "TSC not"};
	out = run_argv(2, e, &rc);
	CHECK(rc == 0);
	CHECK_CONTAINS(out, "func_a+0x1");
	CHECK_CONTAINS(out, "rip-relative");
	free(out);
}

int main(void)
{
	RUN(calls_found_decoys_rejected_format_recovered);
	RUN(string_refs_rip_relative_and_imm32);
	RUN(rip_relative_with_trailing_immediate);
	RUN(operands_of_each_reference);
	RUN(image_without_text_is_a_clear_error);
	RUN(asserts_and_msgrefs_commands);
	CHECK_DONE("test_disasm");
}
