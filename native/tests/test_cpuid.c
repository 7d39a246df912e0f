/* CPUID decoding: parsing, signature, vendors, flags, the TSC chain, the command. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kbu/command.h"
#include "kbu/cpuid.h"
#include "kbu/report.h"

/* Values QEMU TCG's "max" CPU reports (seeds/001: Id=0x663, TCGTCGTCGTCG). */
static void tcg_set(struct kbu_cpuid_set *s)
{
	static const char *const specs[] = {
		"0=0xd,0x68747541,0x444d4163,0x69746e65",
		"1=0x663,0x800,0xfed8320b,0x1fc3fbfd",
		"7.0=0,0x21dc43a9,0x8041021c,0x10",
		"0x40000000=0x40000001,0x54474354,0x43544743,0x47435447",
	};
	struct kbu_err err;
	s->n = 0;
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		struct kbu_cpuid_leaf l;
		CHECK(kbu_cpuid_parse_leaf(specs[i], &l, &err) == 0);
		CHECK(kbu_cpuid_set_add(s, &l, &err) == 0);
	}
}

TEST(parse_leaf_and_subleaf)
{
	struct kbu_cpuid_leaf l;
	struct kbu_err err;
	CHECK(kbu_cpuid_parse_leaf("7.1=1,2,3,0xffffffff", &l, &err) == 0);
	CHECK_EQ_U64(l.leaf, 7);
	CHECK_EQ_U64(l.subleaf, 1);
	CHECK_EQ_U64(l.ecx, 3);
	CHECK_EQ_U64(l.edx, 0xffffffff);
	CHECK(kbu_cpuid_parse_leaf("1=1,2,3", &l, &err) < 0);
	CHECK_CONTAINS(err.msg, "four 32-bit values");
	CHECK(kbu_cpuid_parse_leaf("1=1,2,3,4,5", &l, &err) < 0);
	CHECK(kbu_cpuid_parse_leaf("1=1,2,3,0x100000000", &l, &err) < 0);
	CHECK(kbu_cpuid_parse_leaf("x=1,2,3,4", &l, &err) < 0);
	CHECK_CONTAINS(err.msg, "bad leaf");
	CHECK(kbu_cpuid_parse_leaf("1", &l, &err) < 0);
	CHECK(kbu_cpuid_parse_leaf("1=,,,", &l, &err) < 0);
}

TEST(signature_folds_extended_fields)
{
	struct kbu_cpuid_sig g = kbu_cpuid_signature(0x663);
	CHECK_EQ_U64(g.family, 6);
	CHECK_EQ_U64(g.model, 6);
	CHECK_EQ_U64(g.stepping, 3);
	g = kbu_cpuid_signature(0x000906ea); /* Coffee Lake: family 6 model 0x9e */
	CHECK_EQ_U64(g.family, 6);
	CHECK_EQ_U64(g.model, 0x9e);
	CHECK_EQ_U64(g.stepping, 0xa);
	g = kbu_cpuid_signature(0x00a20f10); /* Zen 3: family 0x19 model 0x21 */
	CHECK_EQ_U64(g.family, 0x19);
	CHECK_EQ_U64(g.model, 0x21);
	g = kbu_cpuid_signature(0x00010561); /* family 5: extended model ignored */
	CHECK_EQ_U64(g.model, 6);
}

TEST(vendors)
{
	struct kbu_cpuid_set s;
	char v[13];
	tcg_set(&s);
	kbu_cpuid_vendor(kbu_cpuid_find(&s, 0, 0), 0, v);
	CHECK_STR(v, "AuthenticAMD");
	kbu_cpuid_vendor(kbu_cpuid_find(&s, 0x40000000, 0), 1, v);
	CHECK_STR(v, "TCGTCGTCGTCG");
	struct kbu_cpuid_leaf junk = {0, 0, 0, 0x01020304, 0, 0};
	kbu_cpuid_vendor(&junk, 0, v);
	CHECK_STR(v, "............");
}

TEST(flags_match_freebsd_boot_banner)
{
	const char *names[32];
	char unnamed[32][8];
	/* Features=0x1fc3fbfd<FPU,DE,PSE,TSC,MSR,PAE,MCE,CX8,APIC,SEP,MTRR,...> */
	size_t n = kbu_cpuid_flags(1, 0, 'd', 0x1fc3fbfd, names, unnamed, 32);
	CHECK(n >= 10);
	CHECK_STR(names[0], "FPU");
	CHECK_STR(names[1], "DE");
	CHECK_STR(names[3], "TSC");
	CHECK_STR(names[8], "APIC");
	n = kbu_cpuid_flags(1, 0, 'c', 1u << 21 | 1u << 16, names, unnamed, 32);
	CHECK_EQ_U64(n, 2);
	CHECK_STR(names[0], "bit16");
	CHECK_STR(names[1], "x2APIC");
	CHECK_EQ_U64(kbu_cpuid_flag_bit(7, 'c', "LA57"), 16);
	CHECK_EQ_U64(kbu_cpuid_flag_bit(1, 'c', "HYPERVISOR"), 31);
	CHECK(kbu_cpuid_flag_bit(1, 'a', "FPU") == -1);
	CHECK_EQ_U64(kbu_cpuid_flags(2, 0, 'a', 0xffffffff, names, unnamed, 32), 0);
	CHECK_EQ_U64(kbu_cpuid_flags(1, 0, 'd', 0xffffffff, names, unnamed, 4), 4);
}

TEST(tsc_chain_fails_like_seed_001)
{
	struct kbu_cpuid_set s;
	uint64_t hz;
	const char *how;
	tcg_set(&s);
	CHECK(kbu_cpuid_tsc_hz(&s, &hz, &how) == 0);
	CHECK_EQ_U64(hz, 0);
	struct kbu_report *r = kbu_report_new("cpuid-decode");
	kbu_cpuid_tsc_report(kbu_report_root(r), &s);
	char *t = kbu_report_render(r, 0);
	CHECK_CONTAINS(t, "hv_high = 0x40000001");
	CHECK_CONTAINS(t, "cpu_high = 0xd");
	CHECK_CONTAINS(t, "! ");
	CHECK_CONTAINS(t, "no CPUID step gives the TSC frequency");
	CHECK(kbu_report_problems(r) == 1);
	kbu_free(t);
	kbu_report_free(r);
}

TEST(tsc_chain_hypervisor_leaf)
{
	struct kbu_cpuid_set s;
	struct kbu_cpuid_leaf l;
	struct kbu_err err;
	uint64_t hz;
	const char *how;
	tcg_set(&s);
	CHECK(kbu_cpuid_parse_leaf("0x40000000=0x40000010,0x4b4d564b,0x564b4d56,0x4d", &l, &err) == 0);
	kbu_cpuid_set_add(&s, &l, &err);
	CHECK(kbu_cpuid_parse_leaf("0x40000010=2494000,1000000,0,0", &l, &err) == 0);
	kbu_cpuid_set_add(&s, &l, &err);
	CHECK(kbu_cpuid_tsc_hz(&s, &hz, &how) == 1);
	CHECK_EQ_U64(hz, 2494000000ull);
	CHECK_STR(how, "hypervisor leaf 0x40000010");
	/* Without the hypervisor bit the leaf is not consulted. */
	CHECK(kbu_cpuid_parse_leaf("1=0x663,0x800,0x7ed8320b,0x1fc3fbfd", &l, &err) == 0);
	kbu_cpuid_set_add(&s, &l, &err);
	CHECK(kbu_cpuid_tsc_hz(&s, &hz, &how) == 0);
}

TEST(tsc_chain_leaf_15_then_16)
{
	struct kbu_cpuid_set s;
	struct kbu_cpuid_leaf l;
	struct kbu_err err;
	uint64_t hz;
	const char *how;
	s.n = 0;
	kbu_cpuid_parse_leaf("0=0x16,0x756e6547,0x6c65746e,0x49656e69", &l, &err);
	kbu_cpuid_set_add(&s, &l, &err);
	kbu_cpuid_parse_leaf("1=0x906ea,0,0,0x10", &l, &err);
	kbu_cpuid_set_add(&s, &l, &err);
	kbu_cpuid_parse_leaf("0x15=2,200,24000000,0", &l, &err);
	kbu_cpuid_set_add(&s, &l, &err);
	CHECK(kbu_cpuid_tsc_hz(&s, &hz, &how) == 1);
	CHECK_EQ_U64(hz, 2400000000ull);
	kbu_cpuid_parse_leaf("0x15=2,200,0,0", &l, &err); /* Skylake: no crystal */
	kbu_cpuid_set_add(&s, &l, &err);
	kbu_cpuid_parse_leaf("0x16=3000,3500,100,0", &l, &err);
	kbu_cpuid_set_add(&s, &l, &err);
	CHECK(kbu_cpuid_tsc_hz(&s, &hz, &how) == 1);
	CHECK_EQ_U64(hz, 3000000000ull);
	CHECK_STR(how, "leaf 0x16 (base frequency)");
}

TEST(command_reports_tcg)
{
	struct kbu_ctx *ctx = kbu_ctx_new();
	char *argv[] = {"cpuid-decode", "--tsc", "0x40000000=0x40000001,0x54474354,0x43544743,0x47435447",
			"1=0x663,0x800,0xfed8320b,0x1fc3fbfd", "0x40000010=0,0,0,0", NULL};
	char *out = NULL;
	struct kbu_err err;
	int st = kbu_run(ctx, 5, argv, 0, &out, &err);
	CHECK(st == 0);
	CHECK_CONTAINS(out, "TCGTCGTCGTCG");
	CHECK_CONTAINS(out, "0x6/0x6/0x3");
	CHECK_CONTAINS(out, "above the highest leaf");
	kbu_free(out);
	out = NULL;
	st = kbu_run(ctx, 5, argv, 1, &out, &err);
	CHECK(st == 0);
	CHECK_CONTAINS(out, "\"hv_signature\"");
	CHECK_CONTAINS(out, "\"signature\": 1635");
	/* JSON holds the values; "0x6/0x6/0x3 (6/6/3)" is the text's rendering of them */
	CHECK_CONTAINS(out, "\"family\": 6,");
	CHECK_CONTAINS(out, "\"model\": 6,");
	CHECK_CONTAINS(out, "\"stepping\": 3,");
	CHECK(!strstr(out, "\"fms\"") && !strstr(out, "0x6/0x6/0x3"));
	kbu_free(out);
	out = NULL;
	char *bad[] = {"cpuid-decode", "1=2", NULL};
	st = kbu_run(ctx, 2, bad, 0, &out, &err);
	CHECK(st == 2);
	CHECK_CONTAINS(err.msg, "CPUID leaf \"1=2\"");
	kbu_free(out);
	char *none[] = {"cpuid-decode", NULL};
	out = NULL;
	CHECK(kbu_run(ctx, 1, none, 0, &out, &err) == 2);
	CHECK_CONTAINS(err.msg, "no leaves");
	kbu_free(out);
	kbu_ctx_free(ctx);
}

TEST(brand_string)
{
	/* QEMU's "QEMU Virtual CPU version 2.5+" */
	struct kbu_ctx *ctx = kbu_ctx_new();
	char *argv[] = {"cpuid-decode", "0x80000002=0x554d4551,0x72695620,0x6c617574,0x55504320",
			"0x80000003=0x72657620,0x6e6f6973,0x352e3220,0x0000002b", "0x80000004=0,0,0,0",
			NULL};
	char *out = NULL;
	struct kbu_err err;
	CHECK(kbu_run(ctx, 4, argv, 0, &out, &err) == 0);
	CHECK_CONTAINS(out, "brand string (0x80000002-4): QEMU Virtual CPU version 2.5+\n");
	kbu_free(out);
	kbu_ctx_free(ctx);
}

int main(void)
{
	RUN(parse_leaf_and_subleaf);
	RUN(signature_folds_extended_fields);
	RUN(vendors);
	RUN(flags_match_freebsd_boot_banner);
	RUN(tsc_chain_fails_like_seed_001);
	RUN(tsc_chain_hypervisor_leaf);
	RUN(tsc_chain_leaf_15_then_16);
	RUN(command_reports_tcg);
	RUN(brand_string);
	CHECK_DONE("test_cpuid");
}
