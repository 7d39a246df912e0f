/* kbu inject-site: the code address in each mode, whether a step returns, the APIC page. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kbu/command.h"
#include "kbu/mem.h"
#include "kbu/report.h"
#include "membuf.h"

#define MEM (64 * 1024)

/* QEMU's `info registers -a` for one vCPU, with its HLT flag and segment bases. */
static char *monitor_text(int hlt, const char *cs_base, const char *ds_base)
{
	static char buf[1024];
	snprintf(buf, sizeof buf,
		 "CPU#0\n"
		 "RIP=000000000000fff0 RFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=%d\n"
		 "ES =0000 00000000 0000ffff 00009300\n"
		 "CS =f000 %s 0000ffff 00009b00\n"
		 "SS =0000 00000000 0000ffff 00009300\n"
		 "DS =0000 %s 0000ffff 00009300\n"
		 "FS =0000 00000000 0000ffff 00009300\n"
		 "GS =0000 00000000 0000ffff 00009300\n",
		 hlt, cs_base, ds_base);
	return buf;
}

static char *run(uint8_t *img, const char *mon, const struct kbu_regs *r, int json,
		 const char *extra)
{
	struct membuf *mb;
	struct kbu_mem *m = membuf_new(img, MEM, mon, 1, &mb);
	mb->regs = *r;
	mb->have_regs = 1;
	struct kbu_ctx *ctx = kbu_ctx_new();
	kbu_ctx_set_mem(ctx, m);
	char *argv[] = {"inject-site", (char *)extra, NULL};
	char *out = NULL;
	struct kbu_err err;
	int rc = kbu_run(ctx, extra ? 2 : 1, argv, json, &out, &err);
	CHECK(rc == 0);
	if (rc != 0)
		fprintf(stderr, "%s\n", err.msg);
	kbu_ctx_free(ctx);
	return out;
}

static struct kbu_regs reset_regs(void)
{
	struct kbu_regs r = {0};
	r.have = KBU_HAVE_GPR | KBU_HAVE_SEG | KBU_HAVE_CR | KBU_HAVE_EFER;
	r.bits = 64;
	r.rip = 0xfff0;
	r.rflags = 0x2;
	r.cs = 0xf000;
	r.cr0 = 0x60000010;
	return r;
}

TEST(reset_vector_is_real_mode_at_the_top_of_4g)
{
	uint8_t *img = calloc(1, MEM);
	struct kbu_regs r = reset_regs();
	char *out = run(img, monitor_text(0, "ffff0000", "00000000"), &r, 1, NULL);
	CHECK_CONTAINS(out, "\"mode\": \"real\"");
	CHECK_CONTAINS(out, "\"code\": 4294967280");   /* 0xfffffff0 */
	CHECK_CONTAINS(out, "\"can_step\": true");
	CHECK_CONTAINS(out, "\"state\": \"reset\"");
	kbu_free(out);
	/* Without a monitor the reset state's base is inferred, and that is said. */
	out = run(img, NULL, &r, 1, NULL);
	CHECK_CONTAINS(out, "\"code\": 4294967280");
	CHECK_CONTAINS(out, "inject.no_monitor");
	kbu_free(out);
	free(img);
}

TEST(halted_with_and_without_interrupts)
{
	uint8_t *img = calloc(1, MEM);
	struct kbu_regs r = reset_regs();
	r.cr0 = 0x80000011;
	r.efer = 0x500;
	r.rip = 0xffffffff80202006ull;
	r.cs = 0x8;
	r.rflags = 0x46;                      /* IF = 0: cli; hlt */
	char *out = run(img, monitor_text(1, "00000000", "00000000"), &r, 1, NULL);
	CHECK_CONTAINS(out, "\"mode\": \"long\"");
	CHECK_CONTAINS(out, "\"step\": \"never\"");
	CHECK_CONTAINS(out, "halted with interrupts off");
	CHECK_CONTAINS(out, "\"code\": \"inject.cannot_step\"");
	kbu_free(out);
	r.rflags = 0x246;                     /* IF = 1: sti; hlt */
	out = run(img, monitor_text(1, "00000000", "00000000"), &r, 1, NULL);
	CHECK_CONTAINS(out, "\"step\": \"on_interrupt\"");
	CHECK_CONTAINS(out, "\"can_step\": true");
	kbu_free(out);
	free(img);
}

TEST(apic_page_through_the_vcpus_tables)
{
	uint8_t *img = calloc(1, MEM);
	/* 4-level tables at 0x1000: 0xfee00000 identity-mapped with a 4 KiB page. */
	const uint64_t e[][3] = {{0x1000, 0, 0x2003}, {0x2000, 3, 0x3003}, {0x3000, 503, 0x4003},
				 {0x4000, 0, 0xfee00013}};
	for (size_t i = 0; i < 4; i++)
		for (int b = 0; b < 8; b++)
			img[e[i][0] + e[i][1] * 8 + (uint64_t)b] = (uint8_t)(e[i][2] >> (8 * b));
	struct kbu_regs r = reset_regs();
	r.cr0 = 0x80000011;
	r.cr4 = 0x20;
	r.efer = 0x500;
	r.cr3 = 0x1000;
	r.rip = 0xffffffff80202a5aull;
	r.rflags = 0x46;
	char *out = run(img, monitor_text(0, "00000000", "00000000"), &r, 1, "--lapic");
	CHECK_CONTAINS(out, "\"linear\": 4276092928");   /* 0xfee00000 */
	/* the mapping as values; "4 KiB page, cache disabled" is how `how` words it */
	CHECK_CONTAINS(out, "\"page_size\": 4096, \"cache_disabled\": true");
	kbu_free(out);
	/* Paging off (a PVH entry): the physical address itself. */
	r.cr0 = 0x11;
	r.efer = 0;
	r.rip = 0x200000;
	out = run(img, monitor_text(0, "00000000", "00000000"), &r, 1, "--lapic");
	CHECK_CONTAINS(out, "\"mode\": \"protected\"");
	CHECK_CONTAINS(out, "\"linear\": 4276092928");
	kbu_free(out);
	/* Real mode cannot reach it. */
	r = reset_regs();
	out = run(img, monitor_text(0, "ffff0000", "00000000"), &r, 0, "--lapic");
	CHECK_CONTAINS(out, "64 KiB segments cannot reach it");
	kbu_free(out);
	free(img);
}

int main(void)
{
	RUN(reset_vector_is_real_mode_at_the_top_of_4g);
	RUN(halted_with_and_without_interrupts);
	RUN(apic_page_through_the_vcpus_tables);
	CHECK_DONE("test_inject");
}
