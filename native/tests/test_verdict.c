/* kbu verdicts: the rules over a guest image built here and live facts given as
 * JSON, the way a recipe hands them over; and the command's bad input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fc_mptable.h"
#include "membuf.h"
#include "support.h"
#include "kbu/command.h"
#include "kbu/json.h"
#include "kbu/mem.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/verdict.h"

#define IMG_SIZE 0x400000u
#define X2APIC_PA 0x300000u

#define KERNBASE 0xffffffff80000000ull

/* Physical memory, and the kernel's virtual addresses through the KERNBASE map,
 * as a live debugger's source serves them. */
static int image_read(void *user, int space, uint64_t addr, void *buf, size_t len, char *errbuf,
		      size_t errlen)
{
	const uint8_t *img = user;
	uint64_t pa = space == KBU_VIRT && addr >= KERNBASE ? addr - KERNBASE : addr;
	if (pa > IMG_SIZE || len > IMG_SIZE - pa) {
		snprintf(errbuf, errlen, "Cannot access memory at address 0x%llx",
			 (unsigned long long)addr);
		return -1;
	}
	memcpy(buf, img + pa, len);
	return 0;
}

static uint8_t *images[8];
static size_t nimages;

/* A FreeBSD-named guest: x2apic_mode at KERNBASE + 0x300000, Firecracker's MP table. */
static struct kbu_ctx *guest(uint8_t x2apic, int with_fc_table)
{
	uint8_t *img = calloc(1, IMG_SIZE);
	img[X2APIC_PA] = x2apic;
	if (with_fc_table) {
		size_t len = fc_mptable_build(img, 1, FC_COUNT_WITH_FP);
		/* seeds/000: the byte after the table read 0x44 */
		if (with_fc_table == 2)
			img[FC_MPTABLE_TABLE + len] = 0x44;
	}
	if (nimages < 8)
		images[nimages++] = img;
	struct kbu_ctx *ctx = kbu_ctx_new();
	struct kbu_err err = {0};
	kbu_ctx_set_mem(ctx, kbu_mem_open_callback(image_read, NULL, NULL, 1, img, 4096, &err));
	ctx->syms = symtab_of("ffffffff80200000 T panic\n"
			      "ffffffff80200100 T vpanic\n"
			      "ffffffff80200200 T lapic_init\n"
			      "ffffffff80300000 B x2apic_mode\n");
	snprintf(ctx->os, sizeof ctx->os, "freebsd");
	return ctx;
}

static int ask_os(struct kbu_ctx *ctx, const char *os, const char *q, const char *live_text,
		  struct kbu_verdict_outcome *out)
{
	struct kbu_err err = {0};
	struct kbu_json *live = live_text ? kbu_json_parse(live_text, strlen(live_text), &err) : NULL;
	CHECK(!live_text || live);
	struct kbu_verdict_opts o = {os, NULL, 0, 0};
	int rc = kbu_verdict_summary(ctx, q, live, &o, out, &err);
	kbu_json_free(live);
	return rc;
}

static int ask(struct kbu_ctx *ctx, const char *q, const char *live_text,
	       struct kbu_verdict_outcome *out)
{
	return ask_os(ctx, "freebsd", q, live_text, out);
}

TEST(x2apic_flag_against_cpuid)
{
	struct kbu_ctx *ctx = guest(1, 0);
	struct kbu_verdict_outcome out;
	/* CPUID.1:ECX bit 21 clear: the kernel's flag is wrong. */
	CHECK_EQ_U64(ask(ctx, "x2apic-mode", "{\"cpuid\": {\"0x1.0\": [394161, 2048, 0, 0]}}", &out),
		     KBU_VERDICT_PROBLEM);
	CHECK_STR(out.code, "x2apic.flag_without_cpu");
	CHECK_CONTAINS(out.cause, "x2apic_mode = 1 but CPUID.1:ECX.x2APIC is 0");
	CHECK_CONTAINS(out.cause, "CPUID.1:ECX.x2APIC is 0");
	/* Bit 21 set: x2APIC mode, no problem. */
	CHECK_EQ_U64(ask(ctx, "x2apic-mode", "{\"cpuid\": {\"0x1.0\": [394161, 2048, 2097152, 0]}}",
			 &out), KBU_VERDICT_OK);
	CHECK_CONTAINS(out.cause, "x2APIC mode");
	/* No CPUID and no record of it: it cannot know, and says so. */
	CHECK_EQ_U64(ask(ctx, "x2apic-mode", NULL, &out), KBU_VERDICT_UNDECIDED);
	CHECK_CONTAINS(out.cause, "CPUID not run");
	/* No CPUID, but the kernel's own read of leaf 1 (FreeBSD's cpu_feature2): it decides. */
	uint8_t *img = images[nimages - 1];
	img[X2APIC_PA + 0x100] = 0x01;
	img[X2APIC_PA + 0x103] = 0x80; /* SSE3 and the hypervisor bit, no x2APIC */
	kbu_mem_flush(ctx->mem);       /* the guest's memory changed, as after a step */
	kbu_symtab_free(ctx->syms);
	ctx->syms = symtab_of("ffffffff80200000 T panic\n"
			      "ffffffff80200100 T vpanic\n"
			      "ffffffff80200200 T lapic_init\n"
			      "ffffffff80300000 B x2apic_mode\n"
			      "ffffffff80300100 B cpu_feature2\n");
	CHECK_EQ_U64(ask(ctx, "x2apic-mode", NULL, &out), KBU_VERDICT_PROBLEM);
	CHECK_STR(out.code, "x2apic.flag_without_cpu");
	CHECK_CONTAINS(out.cause, "the kernel's own CPUID.1:ECX (cpu_feature2 = 0x80000001) has no "
			       "x2APIC bit");
	img[X2APIC_PA + 0x102] = 0x20; /* bit 21 */
	kbu_mem_flush(ctx->mem);
	CHECK_EQ_U64(ask(ctx, "x2apic-mode", NULL, &out), KBU_VERDICT_OK);
	CHECK_CONTAINS(out.cause, "x2APIC mode");
	/* NetBSD keeps it in cpu_feature[1] (u_int cpu_feature[], leaf 1's ECX second;
	 * sys/arch/x86/x86/cpu.c tests CPUID2_XSAVE there), and its flag is a bool. */
	img[X2APIC_PA + 0x102] = 0;
	memcpy(img + X2APIC_PA + 0x104, img + X2APIC_PA + 0x100, 4);
	memset(img + X2APIC_PA + 0x100, 0xff, 4); /* cpu_feature[0]: not leaf 1's ECX */
	kbu_mem_flush(ctx->mem);
	kbu_symtab_free(ctx->syms);
	ctx->syms = symtab_of("ffffffff80200000 T panic\n"
			      "ffffffff80200100 T vpanic\n"
			      "ffffffff80300000 B x2apic_mode\n"
			      "ffffffff80300100 B cpu_feature\n");
	CHECK_EQ_U64(ask_os(ctx, "netbsd", "x2apic-mode", NULL, &out), KBU_VERDICT_PROBLEM);
	CHECK_CONTAINS(out.cause, "the kernel's own CPUID.1:ECX (cpu_feature+4 = 0x80000001) has no "
			       "x2APIC bit");
	kbu_ctx_free(ctx);
	ctx = guest(0, 0);
	CHECK_EQ_U64(ask(ctx, "x2apic-mode", NULL, &out), KBU_VERDICT_OK);
	CHECK_CONTAINS(out.cause, "xAPIC mode: x2apic_mode = 0");
	kbu_ctx_free(ctx);
}

TEST(panic_from_the_stop_a_debugger_saw)
{
	struct kbu_ctx *ctx = guest(0, 0);
	struct kbu_verdict_outcome out;
	const char *live = "{\"end\": {\"kind\": \"panic\", \"entry\": \"panic\", \"message\": "
			   "\"TSC not initialized\", \"function\": \"lapic_init\", \"cpu\": 0, "
			   "\"backtrace\": [{\"function\": \"panic\"}, {\"function\": \"lapic_init\"}, "
			   "{\"function\": \"mptable_setup_local\"}]}}";
	CHECK_EQ_U64(ask(ctx, "panic-triage", live, &out), KBU_VERDICT_PROBLEM);
	CHECK_STR(out.code, "panic.known");
	CHECK_STR(out.cause, "panic \"TSC not initialized\" raised in lapic_init (panic <- lapic_init "
			     "<- mptable_setup_local): the TSC frequency was still 0 when the local "
			     "APIC code needed it");
	CHECK_CONTAINS(out.next, "tsc-not-initialized");
	CHECK_EQ_U64(ask(ctx, "panic-triage", "{\"end\": {\"kind\": \"idle\", \"where\": \"cpu_idle\"}}",
			 &out), KBU_VERDICT_OK);
	CHECK_EQ_U64(ask(ctx, "panic-triage", "{\"end\": {\"kind\": \"timeout\", \"seconds\": 0.5, "
			 "\"where\": \"spin+0x4\"}}", &out), KBU_VERDICT_UNDECIDED);
	CHECK_STR(out.cause, "no panic within 0.5 s; the guest was running in spin+0x4");
	kbu_ctx_free(ctx);
}

TEST(firecracker_count_explains_entry_68)
{
	struct kbu_ctx *ctx = guest(0, 2);
	struct kbu_verdict_outcome out;
	CHECK_EQ_U64(ask(ctx, "mptable-walk", NULL, &out), KBU_VERDICT_PROBLEM);
	CHECK_STR(out.code, "mptable.count_walk_unknown_type");
	CHECK_STR(out.cause, "entry_count 30 counts one entry more than the 288-byte table holds; a "
			     "walker that trusts it reads byte 0x44 (68) after the table (phys 0x9fd30): "
			     "'Unknown MP Config Entry 68'");
	CHECK_CONTAINS(out.next, "off-by-one");
	kbu_ctx_free(ctx);
	/* Zeros after the table: the walker reads a bogus processor entry instead. */
	ctx = guest(0, 1);
	CHECK_EQ_U64(ask(ctx, "mptable-walk", NULL, &out), KBU_VERDICT_PROBLEM);
	CHECK_STR(out.code, "mptable.entry_count_past_end");
	CHECK_CONTAINS(out.cause, "reads 1 entry past the end of the table");
	kbu_ctx_free(ctx);
}

TEST(rendered_report_and_command)
{
	struct kbu_ctx *ctx = guest(1, 0);
	char *a[] = {"verdict", "x2apic-mode", "--live",
		     "{\"cpuid\": {\"0x1.0\": [394161, 2048, 0, 0]}}"};
	char *out = NULL;
	struct kbu_err err = {0};
	CHECK_EQ_U64(kbu_run(ctx, 4, a, 0, &out, &err), 0);
	CHECK_CONTAINS(out, "x2apic-mode: who switched");
	CHECK_CONTAINS(out, "\n! lapic: the kernel's x2apic_mode says x2APIC but CPUID has no x2APIC");
	CHECK_CONTAINS(out, "\nVERDICT: problem: x2apic_mode = 1 but");
	free(out);
	out = NULL;
	CHECK_EQ_U64(kbu_run(ctx, 4, a, 1, &out, &err), 0);
	CHECK_CONTAINS(out, "\"status\": 1");
	CHECK_CONTAINS(out, "\"code\": \"x2apic.flag_without_cpu\"");
	CHECK_CONTAINS(out, "\"kernel_x2apic\": 1, \"cpuid_1_ecx\": 0, \"cpuid_from\": \"vcpu\", "
			    "\"cpuid_x2apic\": false");
	free(out);
	/* Bad input: one error each, exit 2. */
	char *b[] = {"verdict", "no-such"};
	out = NULL;
	CHECK_EQ_U64(kbu_run(ctx, 2, b, 0, &out, &err), 2);
	CHECK_CONTAINS(err.msg, "unknown question 'no-such' (known: panic-triage");
	char *c[] = {"verdict", "panic-triage", "--live", "{\"end\":"};
	CHECK_EQ_U64(kbu_run(ctx, 4, c, 0, &out, &err), 2);
	CHECK_CONTAINS(err.msg, "--live: JSON: unexpected end of input at offset 7");
	char *d[] = {"verdict", "panic-triage", "--live", "[1]"};
	CHECK_EQ_U64(kbu_run(ctx, 4, d, 0, &out, &err), 2);
	CHECK_CONTAINS(err.msg, "must be a JSON object");
	char *e[] = {"verdict"};
	CHECK_EQ_U64(kbu_run(ctx, 1, e, 0, &out, &err), 2);
	CHECK_CONTAINS(err.msg, "which question?");
	kbu_ctx_free(ctx);
}

TEST(every_question_answers_an_empty_guest)
{
	/* Nothing in memory, no live facts: every rule ends in a verdict, never a crash. */
	struct kbu_ctx *ctx = kbu_ctx_new();
	kbu_ctx_set_mem(ctx, membuf_new(NULL, 0x100000, NULL, 0, NULL));
	for (size_t i = 0; i < kbu_question_count(); i++) {
		struct kbu_verdict_outcome out;
		struct kbu_err err = {0};
		struct kbu_verdict_opts o = {NULL, NULL, 0, 0};
		int rc = kbu_verdict_summary(ctx, kbu_question_at(i)->name, NULL, &o, &out, &err);
		CHECK(rc >= 0 && rc <= 2);
		CHECK(out.cause[0] != '\0');
	}
	kbu_ctx_free(ctx);
}

int main(void)
{
	RUN(x2apic_flag_against_cpuid);
	RUN(panic_from_the_stop_a_debugger_saw);
	RUN(firecracker_count_explains_entry_68);
	RUN(rendered_report_and_command);
	RUN(every_question_answers_an_empty_guest);
	for (size_t i = 0; i < nimages; i++)
		free(images[i]);
	CHECK_DONE("test_verdict");
}
