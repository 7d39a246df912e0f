/* Local APIC: register table, LVT/DCR decoding, QEMU `info lapic` parsing, the report. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "kbu/command.h"
#include "kbu/lapic.h"
#include "kbu/report.h"

/* QEMU 7.2 `info lapic` of a freshly reset vCPU (captured on -M microvm). */
static const char reset_text[] =
	"dumping local APIC state for CPU 0 \n\n"
	"LVT0\t 0x00010000 active-hi edge  masked                      Fixed  (vec 0)\n"
	"LVT1\t 0x00010000 active-hi edge  masked                      Fixed  (vec 0)\n"
	"LVTPC\t 0x00010000 active-hi edge  masked                      Fixed  (vec 0)\n"
	"LVTERR\t 0x00010000 active-hi edge  masked                      Fixed  (vec 0)\n"
	"LVTTHMR\t 0x00010000 active-hi edge  masked                      Fixed  (vec 0)\n"
	"LVTT\t 0x00010000 active-hi edge  masked         one-shot     Fixed  (vec 0)\n"
	"Timer\t DCR=0x0 (divide by 2) initial_count = 0 current_count = 0\n"
	"SPIV\t 0x000000ff APIC disabled, focus=off, spurious vec 255\n"
	"ICR\t 0x00000000 physical edge de-assert no-shorthand\n"
	"ICR2\t 0x00000000 cpu 0 (APIC ID)\n"
	"ESR\t 0x00000000\n"
	"ISR\t (none)\n"
	"IRR\t (none)\n\n"
	"APR 0x00 TPR 0x00 DFR 0x0f LDR 0x00 PPR 0x00\n";

/* A running kernel: periodic timer, ExtINT on LINT0, NMI on LINT1, vectors pending. */
static const char busy_text[] =
	"dumping local APIC state for CPU 1 \n\n"
	"LVT0\t 0x00000700 active-hi edge                              ExtINT (vec 0)\n"
	"LVT1\t 0x00000400 active-hi edge                              NMI\n"
	"LVTPC\t 0x00010000 active-hi edge  masked                      Fixed  (vec 0)\n"
	"LVTERR\t 0x000000fe active-hi edge                              Fixed  (vec 254)\n"
	"LVTTHMR\t 0x00010000 active-hi edge  masked                      Fixed  (vec 0)\n"
	"LVTT\t 0x000200ef active-hi edge                 periodic     Fixed  (vec 239)\n"
	"Timer\t DCR=0xb (divide by 1) initial_count = 1000000 current_count = 4242\n"
	"SPIV\t 0x000001ff APIC enabled, focus=off, spurious vec 255\n"
	"ICR\t 0x000c4500 physical edge assert all-self\n"
	"ICR2\t 0x01000000\n"
	"ESR\t 0x00000040\n"
	"ISR\t 48(level) \n"
	"IRR\t 34 239 \n\n"
	"APR 0x00 TPR 0x20 DFR 0x0f LDR 0x02 PPR 0x30\n";

TEST(register_table)
{
	size_t n;
	const struct kbu_lapic_reg *t = kbu_lapic_reg_table(&n);
	CHECK(n >= 40);
	CHECK(t != NULL);
	const struct kbu_lapic_reg *r = kbu_lapic_reg_at(0x380);
	CHECK(r != NULL);
	CHECK_STR(r->name, "Initial count");
	CHECK_EQ_U64(r->msr, 0x838); /* "380H or 38H": MMIO 0x380 is MSR 0x838 */
	CHECK_EQ_U64(kbu_lapic_msr(0x380), 0x838);
	CHECK_EQ_U64(kbu_lapic_reg_at(0x20)->msr, 0x802);
	CHECK_EQ_U64(kbu_lapic_reg_at(0x300)->msr, 0x830);
	CHECK_EQ_U64(kbu_lapic_reg_at(0x310)->msr, 0); /* folded into MSR 0x830 */
	CHECK_EQ_U64(kbu_lapic_reg_at(0x0e0)->msr, 0); /* no DFR in x2APIC mode */
	CHECK(kbu_lapic_reg_at(0x3f0) == NULL);
}

TEST(divisor_and_lvt)
{
	CHECK_EQ_U64(kbu_lapic_divisor(0x0), 2);
	CHECK_EQ_U64(kbu_lapic_divisor(0x3), 16);
	CHECK_EQ_U64(kbu_lapic_divisor(0x8), 32);
	CHECK_EQ_U64(kbu_lapic_divisor(0xa), 128);
	CHECK_EQ_U64(kbu_lapic_divisor(0xb), 1);
	struct kbu_lapic_lvt l;
	kbu_lapic_decode_lvt(0x000200ef, 1, &l);
	CHECK_EQ_U64(l.vector, 0xef);
	CHECK_STR(l.timer_mode, "periodic");
	CHECK(!l.masked);
	kbu_lapic_decode_lvt(0x00040000, 1, &l);
	CHECK_STR(l.timer_mode, "TSC-deadline");
	kbu_lapic_decode_lvt(0x0001e700, 0, &l);
	CHECK_STR(l.delivery, "ExtINT");
	CHECK(l.masked && l.level && l.remote_irr && l.active_low);
	CHECK(l.timer_mode == NULL);
}

TEST(parse_reset_state)
{
	struct kbu_lapic_state s;
	struct kbu_err err;
	CHECK(kbu_lapic_parse_qemu(reset_text, &s, &err) == 0);
	CHECK_EQ_U64(s.cpu, 0);
	CHECK(kbu_lapic_known(&s, 0x350));
	CHECK_EQ_U64(s.reg[0x350 >> 4], 0x10000);
	CHECK_EQ_U64(s.reg[0x0f0 >> 4], 0xff);
	CHECK_EQ_U64(s.reg[0x0e0 >> 4], 0xffffffff);
	CHECK(!kbu_lapic_known(&s, 0x020)); /* QEMU does not print the ID */
	CHECK(!kbu_lapic_known(&s, 0x030));
	CHECK(!kbu_lapic_known(&s, 0x2f0));
	CHECK(!kbu_lapic_known(&s, 0x180));
}

TEST(parse_busy_state)
{
	struct kbu_lapic_state s;
	struct kbu_err err;
	CHECK(kbu_lapic_parse_qemu(busy_text, &s, &err) == 0);
	CHECK_EQ_U64(s.cpu, 1);
	CHECK_EQ_U64(s.reg[0x320 >> 4], 0x200ef);
	CHECK_EQ_U64(s.reg[0x360 >> 4], 0x400);
	CHECK_EQ_U64(s.reg[0x3e0 >> 4], 0xb);
	CHECK_EQ_U64(s.reg[0x380 >> 4], 1000000);
	CHECK_EQ_U64(s.reg[0x390 >> 4], 4242);
	CHECK_EQ_U64(s.reg[0x300 >> 4], 0xc4500);
	CHECK_EQ_U64(s.reg[0x310 >> 4], 0x01000000);
	CHECK_EQ_U64(s.reg[0x280 >> 4], 0x40);
	CHECK_EQ_U64(s.reg[0x100 >> 4], 0);
	CHECK_EQ_U64(s.reg[0x110 >> 4], 1u << 16);       /* vector 48 */
	CHECK_EQ_U64(s.reg[0x190 >> 4], 1u << 16);       /* 48 is level */
	CHECK_EQ_U64(s.reg[0x210 >> 4], 1u << 2);        /* 34 */
	CHECK_EQ_U64(s.reg[0x270 >> 4], 1u << 15);       /* 239 */
	CHECK_EQ_U64(s.reg[0x080 >> 4], 0x20);
	CHECK_EQ_U64(s.reg[0x0a0 >> 4], 0x30);
	CHECK_EQ_U64(s.reg[0x0d0 >> 4], 0x02000000);
}

TEST(parse_rejects_garbage)
{
	struct kbu_lapic_state s;
	struct kbu_err err;
	CHECK(kbu_lapic_parse_qemu("unknown command: 'info lapci'\n", &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "not QEMU");
	CHECK(kbu_lapic_parse_qemu("local apic state not available\n", &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "not available");
	CHECK(kbu_lapic_parse_qemu("ISR\t 300 \n", &s, &err) < 0);
	CHECK(kbu_lapic_parse_qemu("IRR\t x \n", &s, &err) < 0);
	CHECK(kbu_lapic_parse_qemu("", &s, &err) < 0);
	CHECK(kbu_lapic_parse_qemu(NULL, &s, &err) < 0);
	/* a very long line is cut, not overflowed */
	char *big = malloc(5000);
	memset(big, 'A', 4999);
	big[4999] = '\0';
	CHECK(kbu_lapic_parse_qemu(big, &s, &err) < 0);
	free(big);
}

TEST(page_zero_detection_and_compare)
{
	uint8_t page[0x400];
	memset(page, 0, sizeof page);
	CHECK(kbu_lapic_page_all_zero(page));
	page[0x80] = 0x10; /* TPR */
	page[0xf0] = 0xff;
	page[0xf1] = 0x01;
	CHECK(!kbu_lapic_page_all_zero(page));
	struct kbu_lapic_state pg, mon;
	struct kbu_err err;
	kbu_lapic_from_page(page, &pg);
	CHECK_EQ_U64(pg.reg[0x0f0 >> 4], 0x1ff);
	CHECK(kbu_lapic_parse_qemu(busy_text, &mon, &err) == 0);
	struct kbu_report *r = kbu_report_new("lapic");
	kbu_lapic_report(kbu_report_root(r), &mon, KBU_LAPIC_SRC_MONITOR, &pg, KBU_LAPIC_SRC_PAGE);
	char *t = kbu_report_render(r, 0);
	CHECK_CONTAINS(t, "Local APIC of CPU 1 (source: QEMU info lapic)");
	CHECK_CONTAINS(t, "Initial count");
	CHECK_CONTAINS(t, "0x838");
	CHECK_CONTAINS(t, "divide by 1");
	CHECK_CONTAINS(t, "periodic");
	CHECK_CONTAINS(t, "software-enabled, spurious vector 255");
	CHECK_CONTAINS(t, "received illegal vector");
	CHECK_CONTAINS(t, "! QEMU info lapic and LAPIC page disagree on");
	CHECK(kbu_report_problems(r) == 1);
	kbu_free(t);
	/* JSON: the values the text words, never the words */
	t = kbu_report_render(r, 1);
	CHECK_CONTAINS(t, "\"source\": \"monitor\"");
	CHECK_CONTAINS(t, "\"compared_with\": \"page\"");
	CHECK_CONTAINS(t, "\"errors\": [\"received illegal vector\"]");   /* ESR 0x40 */
	CHECK_CONTAINS(t, "\"divisor\": 1}");                              /* DCR 0xb */
	CHECK_CONTAINS(t, "\"software_enabled\": true, \"spurious_vector\": 255");
	CHECK_CONTAINS(t, "\"logical_id\": 2}");                            /* LDR 0x02 */
	CHECK_CONTAINS(t, "\"priority_class\": 2, \"priority_subclass\": 0"); /* TPR 0x20 */
	/* ICR 0x000c4500: INIT, assert, all excluding self; ICR high 0x01000000: APIC 1 */
	CHECK_CONTAINS(t, "\"delivery\": \"INIT\", \"destination_mode\": \"physical\", "
		       "\"pending\": false, \"assert\": true, \"trigger\": \"edge\", "
		       "\"shorthand\": \"all_excluding_self\"");
	CHECK_CONTAINS(t, "{\"name\": \"ICR high\", \"offset\": 784, \"msr\": null, "
		       "\"value\": 16777216, \"destination\": 1}");
	CHECK_CONTAINS(t, "{\"name\": \"APR\", \"offset\": 144, \"msr\": null");
	/* the periodic timer: no polarity, remote IRR or trigger; LINT0 ExtINT unmasked */
	CHECK_CONTAINS(t, "{\"name\": \"LVT timer\", \"vector\": 239, \"delivery\": \"Fixed\", "
		       "\"pending\": false, \"polarity\": null, \"remote_irr\": null, "
		       "\"trigger\": null, \"masked\": false, \"timer_mode\": \"periodic\"}");
	CHECK_CONTAINS(t, "{\"name\": \"LVT LINT0\", \"vector\": 0, \"delivery\": \"ExtINT\", "
		       "\"pending\": false, \"polarity\": \"high\", \"remote_irr\": false, "
		       "\"trigger\": \"edge\", \"masked\": false, \"timer_mode\": null}");
	CHECK_CONTAINS(t, "\"isr\": [48], \"irr\": [34, 239], \"tmr\": [48], \"tmr_complete\": false");
	CHECK(!strstr(t, "\"decoded\"") && !strstr(t, "divide by") && !strstr(t, "(in 0x830)") &&
	      !strstr(t, "\"mask\"") && !strstr(t, "\"status\"") && !strstr(t, "\"notes\""));
	kbu_free(t);
	kbu_report_free(r);
}

TEST(mode_from_cpuid_and_kernel)
{
	struct kbu_lapic_mode m;
	kbu_lapic_mode(NULL, 0, 0, 0, 0, &m);
	CHECK_STR(m.name, "unknown");
	CHECK(m.decided_by == NULL);
	/* CPUID without x2APIC decides xAPIC whatever the kernel believes (seeds/000) */
	kbu_lapic_mode(NULL, 1, 0, 1, 1, &m);
	CHECK_STR(m.name, "xAPIC");
	CHECK_STR(m.decided_by, "cpuid");
	CHECK(m.flag_without_cpu);
	kbu_lapic_mode(NULL, 1, 1u << 21, 1, 1, &m);
	CHECK_STR(m.name, "x2APIC");
	CHECK_STR(m.decided_by, "kernel");
	CHECK_STR(m.mode, "x2APIC (as the kernel set it)");
	kbu_lapic_mode(NULL, 1, 1u << 21, 0, 0, &m);
	CHECK_STR(m.name, "unknown");
	/* a software-disabled APIC: the words say so, the mode stays xAPIC */
	struct kbu_lapic_state s;
	memset(&s, 0, sizeof s);
	kbu_lapic_set(&s, 0x0f0, 0xff);
	kbu_lapic_mode(&s, 0, 0, 1, 0, &m);
	CHECK_STR(m.mode, "xAPIC, software-disabled");
	CHECK_STR(m.name, "xAPIC");
	CHECK_STR(m.decided_by, "kernel");
}

TEST(command_from_saved_text)
{
	char path[] = "/tmp/kbu_lapic_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs(reset_text, f);
	fclose(f);
	struct kbu_ctx *ctx = kbu_ctx_new();
	char *argv[] = {"lapic", "--qemu-text", path, "--cpuid1", "0x60fb1,0x20800,0x80002001,0x178bfbfd",
			NULL};
	char *out = NULL;
	struct kbu_err err;
	CHECK(kbu_run(ctx, 5, argv, 0, &out, &err) == 0);
	CHECK_CONTAINS(out, "software-DISABLED");
	CHECK_CONTAINS(out, "0 (no x2APIC: xAPIC only)");
	CHECK_CONTAINS(out, "xAPIC, software-disabled");
	CHECK_CONTAINS(out, "(not known from this source)");
	kbu_free(out);
	out = NULL;
	char *json[] = {"lapic", "--qemu-text", path, NULL};
	CHECK(kbu_run(ctx, 3, json, 1, &out, &err) == 0);
	CHECK_CONTAINS(out, "\"cpuid_x2apic\": null, \"kernel_x2apic\": null, \"kernel_symbol\": null, "
		       "\"svr_enable\": false, \"mode\": \"unknown\", \"decided_by\": null");
	CHECK_CONTAINS(out, "\"monitor\": {\"read\": true, \"file\": \"");
	CHECK_CONTAINS(out, "\"page\": {\"read\": false, \"why\": \"no memory source\"}");
	kbu_free(out);
	out = NULL;
	CHECK(kbu_run(ctx, 5, argv, 1, &out, &err) == 0);
	CHECK_CONTAINS(out, "\"cpuid_x2apic\": false, \"cpuid_apic_id\": 0,");
	CHECK_CONTAINS(out, "\"mode\": \"xAPIC\", \"decided_by\": \"cpuid\"");
	kbu_free(out);
	out = NULL;
	char *nosrc[] = {"lapic", NULL};
	CHECK(kbu_run(ctx, 1, nosrc, 0, &out, &err) == 2);
	CHECK_CONTAINS(err.msg, "no usable source");
	kbu_free(out);
	out = NULL;
	char *badcpu[] = {"lapic", "x", NULL};
	CHECK(kbu_run(ctx, 2, badcpu, 0, &out, &err) == 2);
	kbu_free(out);
	unlink(path);
	kbu_ctx_free(ctx);
}

TEST(readable_registers_and_values)
{
	unsigned offs[KBU_LAPIC_NREGS];
	size_t n = kbu_lapic_readable(0, 0, 0, offs, KBU_LAPIC_NREGS);
	CHECK(n > 40);
	CHECK_EQ_U64(offs[0], 0x030); /* the version first: it says whether CMCI exists */
	for (size_t i = 0; i < n; i++) {
		CHECK(offs[i] != 0x0b0 && offs[i] != 0x0c0); /* EOI is write-only, RRD reserved */
		CHECK(offs[i] != 0x2f0);                      /* no CMCI before the version */
	}
	/* QEMU's 0x50014: max LVT 5, no CMCI; a max LVT of 6 has one. */
	size_t n5 = kbu_lapic_readable(1, 0x50014, 0, offs, KBU_LAPIC_NREGS);
	CHECK_EQ_U64(n5, n);
	size_t n6 = kbu_lapic_readable(1, 0x60014, 0, offs, KBU_LAPIC_NREGS);
	CHECK_EQ_U64(n6, n + 1);
	/* x2APIC: no APR, DFR, ICR high (the ICR is one 64-bit MSR). */
	size_t nx = kbu_lapic_readable(1, 0x50014, 1, offs, KBU_LAPIC_NREGS);
	CHECK_EQ_U64(nx, n - 3);
	CHECK_EQ_U64(kbu_lapic_readable(0, 0, 0, offs, 2), 2);

	struct kbu_lapic_state s;
	struct kbu_err err;
	CHECK(kbu_lapic_parse_values("0x20=0x1000000,0x30=0x50014", &s, &err) == 0);
	CHECK(kbu_lapic_known(&s, 0x030) && s.reg[0x030 >> 4] == 0x50014);
	CHECK(kbu_lapic_known(&s, 0x020) && !kbu_lapic_known(&s, 0x0f0));
	CHECK(kbu_lapic_parse_values("0x25=1", &s, &err) == -1);
	CHECK(kbu_lapic_parse_values("0x400=1", &s, &err) == -1);
	CHECK(kbu_lapic_parse_values("0x20=0x100000000", &s, &err) == -1);
	CHECK(kbu_lapic_parse_values("0x20", &s, &err) == -1);
	CHECK(kbu_lapic_parse_values("0x20=1;0x30=2", &s, &err) == -1);
	CHECK(kbu_lapic_parse_values("", &s, &err) == -1);
}

TEST(vcpu_reads_compared_with_qemu)
{
	/* The vCPU's reads against a saved `info lapic`: one register differs. */
	char path[] = "/tmp/kbu-lapic-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, busy_text, sizeof busy_text - 1) == (ssize_t)(sizeof busy_text - 1));
	close(fd);
	struct kbu_err err;
	struct kbu_ctx *ctx = kbu_ctx_new();
	char *argv[] = {"lapic", "--qemu-text", path, "--vcpu",
			"0x20=0x1000000,0x30=0x50014,0xf0=0x1ff,0x320=0x200ef,0x80=0x30", "1", NULL};
	char *out = NULL;
	CHECK(kbu_run(ctx, 6, argv, 1, &out, &err) == 0);
	CHECK_CONTAINS(out, "\"source\": \"vcpu\"");
	CHECK_CONTAINS(out, "\"compared_with\": \"monitor\"");
	CHECK_CONTAINS(out, "\"code\": \"lapic.sources_disagree\"");   /* TPR 0x30 vs 0x20 */
	CHECK_CONTAINS(out, "\"max_lvt\": 5");
	kbu_free(out);
	out = NULL;
	char *plan[] = {"lapic", "--plan", "--cpuid1", "0x60fb1,0x800,0xfed8320b,0x0fcbfbfd", NULL};
	CHECK(kbu_run(ctx, 4, plan, 1, &out, &err) == 0);
	CHECK_CONTAINS(out, "\"method\": \"load\"");
	CHECK_CONTAINS(out, "\"mode\": \"xAPIC\", \"decided_by\": \"cpuid\"");
	CHECK_CONTAINS(out, "\"needs_version\": true");
	kbu_free(out);
	out = NULL;
	char *bad[] = {"lapic", "--qemu-text", path, "--vcpu", "0x20=zz", NULL};
	CHECK(kbu_run(ctx, 5, bad, 0, &out, &err) == 2);
	CHECK_CONTAINS(err.msg, "--vcpu");
	kbu_free(out);
	kbu_ctx_free(ctx);
	unlink(path);
}

int main(void)
{
	RUN(register_table);
	RUN(divisor_and_lvt);
	RUN(parse_reset_state);
	RUN(parse_busy_state);
	RUN(parse_rejects_garbage);
	RUN(page_zero_detection_and_compare);
	RUN(mode_from_cpuid_and_kernel);
	RUN(command_from_saved_text);
	RUN(readable_registers_and_values);
	RUN(vcpu_reads_compared_with_qemu);
	CHECK_DONE("test_lapic");
}
