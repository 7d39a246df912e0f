/* kbu pvh [ADDR]: the PVH start info, found or at a given physical address. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/mem.h"
#include "kbu/os.h"
#include "kbu/pvh.h"
#include "kbu/report.h"
#include "kbu/util.h"

static int pvh_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		   struct kbu_err *err)
{
	uint64_t addr = 0, limit = 0;
	int have_addr = 0;
	const char *profile = NULL;
	static const struct kbu_opt opts[] = {{"profile", 0, 1}, {"scan-limit", 0, 1}, {NULL, 0, 0}};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	int i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == 0) {
			profile = g.arg;
		} else if (i == 1) {
			if (kbu_parse_u64(g.arg, &limit, err) != 0)
				return kbu_err_set(err, KBU_EINVAL, "--scan-limit needs a byte count ('%s')",
						   g.arg);
		} else if (have_addr) {
			return kbu_err_set(err, KBU_EINVAL, "more than one address ('%s')", g.arg);
		} else if (kbu_parse_u64(g.arg, &addr, err) != 0) {
			return kbu_err_set(err, KBU_EINVAL,
					   "'%s' is not a physical address (use 0x... or decimal)", g.arg);
		} else {
			have_addr = 1;
		}
	}
	/* The OS profile names the kernel's saved start-info variable. */
	const char *role = NULL;
	char label[64] = "";
	struct kbu_os_profile *prof = NULL;
	if (!have_addr && ctx->syms) {
		struct kbu_err e;
		prof = kbu_ctx_profile(ctx, NULL, profile, profile ? err : &e);
		if (!prof && profile)
			return -1;
		if (prof) {
			role = kbu_os_role(prof, "start_info");
			snprintf(label, sizeof(label), "%s profile's", kbu_os_name(prof));
		}
	}
	struct kbu_pvh p = {0};
	int rc = have_addr ? kbu_pvh_decode(ctx->mem, addr, &p, err)
			   : kbu_pvh_find_named(ctx->mem, ctx->syms, ctx->kernel, role, label, limit,
						&p, err);
	kbu_os_free(prof);
	if (rc != 0) {
		kbu_pvh_free(&p);
		return -1;
	}
	kbu_pvh_report(&p, kbu_report_root(r));
	kbu_pvh_free(&p);
	return 0;
}

static struct kbu_command cmd_pvh = {
	.name = "pvh",
	.summary = "decode the PVH start info (hvm_start_info): command line, modules, memory map",
	.help = "usage: kbu pvh [--core F|--phys F|--gdb H:P] [--symbols MAP] [--kernel ELF]\n"
		"               [--profile FILE] [--scan-limit BYTES] [ADDR]\n"
		"\n"
		"Decodes the hvm_start_info a PVH loader passes in %ebx (v0 and v1): flags,\n"
		"command line, modules, the RSDP and the E820 memory map. ADDR is its\n"
		"physical address. Without ADDR it is found, and the report says how:\n"
		"  1. through the kernel's saved variable when symbols are given: the OS\n"
		"     profile's start_info role (--os, --profile), then FreeBSD start_info,\n"
		"     NetBSD hvm_start_paddr, Linux pvh_start_info;\n"
		"  2. where CPU 0's %ebx points (stopped at the PVH entry);\n"
		"  3. by scanning the first MiB, then memory above it up to --scan-limit\n"
		"     (default 256 MiB; 16 MiB over a live stub), for the magic 0x336ec578\n"
		"     with a valid version and plausible pointers.\n"
		"Zero-size memory map entries, pointers outside memory and unterminated\n"
		"command lines are reported as problems; the rest is still shown.\n",
	.needs = KBU_NEEDS_MEM,
	.run = pvh_run,
};
KBU_COMMAND(cmd_pvh)
