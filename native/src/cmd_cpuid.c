/* kbu cpuid-decode: decodes CPUID values given as LEAF[.SUB]=EAX,EBX,ECX,EDX. */
#include <string.h>

#include "kbu/command.h"
#include "kbu/cpuid.h"
#include "kbu/report.h"

static int cpuid_decode_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
			    struct kbu_err *err)
{
	struct kbu_cpuid_set set;
	int tsc = 0, only_tsc = 0;
	set.n = 0;
	for (int i = 1; i < argc; i++) {
		const char *spec = argv[i];
		if (strcmp(argv[i], "--tsc") == 0) {
			tsc = 1;
			continue;
		}
		if (strcmp(argv[i], "--tsc-only") == 0) {
			tsc = only_tsc = 1;
			continue;
		}
		if (strcmp(argv[i], "--leaf") == 0) {
			if (i + 1 >= argc)
				return kbu_err_set(err, KBU_EINVAL,
						   "--leaf needs LEAF[.SUB]=EAX,EBX,ECX,EDX");
			spec = argv[++i];
		} else if (strncmp(argv[i], "--leaf=", 7) == 0) {
			spec = argv[i] + 7;
		} else if (argv[i][0] == '-') {
			return kbu_err_set(err, KBU_EINVAL, "unknown option '%s'", argv[i]);
		}
		struct kbu_cpuid_leaf l;
		if (kbu_cpuid_parse_leaf(spec, &l, err) < 0 || kbu_cpuid_set_add(&set, &l, err) < 0)
			return -1;
	}
	if (set.n == 0)
		return kbu_err_set(err, KBU_EINVAL,
				   "no leaves given (LEAF[.SUB]=EAX,EBX,ECX,EDX ...)");
	struct kbu_node *root = kbu_report_root(r);
	if (!only_tsc)
		kbu_cpuid_report(root, &set);
	if (tsc)
		kbu_cpuid_tsc_report(root, &set);
	return 0;
}

static struct kbu_command cmd_cpuid_decode = {
	.name = "cpuid-decode",
	.summary = "decode CPUID values: vendor, signature, feature flags, hypervisor and TSC leaves",
	.help = "usage: kbu cpuid-decode [--tsc|--tsc-only] [--leaf] LEAF[.SUB]=EAX,EBX,ECX,EDX ...\n"
		"\n"
		"Decodes CPUID register values (as read on the guest, e.g. by `kbu cpuid` in\n"
		"GDB): vendor and highest leaf (0), family/model/stepping and every feature\n"
		"flag (1, 7, 0x80000001), ARAT (6), topology (0xB, 0x1F), the crystal ratio\n"
		"(0x15), base/max/bus MHz (0x16), the hypervisor signature and highest leaf\n"
		"(0x40000000) and its TSC/bus kHz (0x40000010). A leaf above the highest of\n"
		"its range is flagged. --tsc adds, step by step, how a kernel derives the TSC\n"
		"frequency from these leaves (FreeBSD's tsc_freq_cpuid_vm, tsc_freq_cpuid)\n"
		"and which step succeeds or why none does; --tsc-only shows only that.\n",
	.needs = KBU_NEEDS_NOTHING,
	.run = cpuid_decode_run,
};
KBU_COMMAND(cmd_cpuid_decode)
