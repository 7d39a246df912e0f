/* kbu mptable [--at ADDR | --table ADDR|SYMBOL]: the MP floating pointer, config
 * table and every entry. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/firmware.h"
#include "kbu/mem.h"
#include "kbu/mptable.h"
#include "kbu/pvh.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/util.h"

static int match_config(struct kbu_mem *m, uint64_t pa, void *arg)
{
	(void)arg;
	return kbu_mptable_is_config(m, pa);
}

/* --table SYMBOL: the kernel's own table (an array) or its pointer to one. */
static int table_from_symbol(struct kbu_ctx *ctx, const char *name, uint64_t *pa, char *how,
			     size_t howlen, struct kbu_err *err)
{
	if (!ctx->syms)
		return kbu_err_set(err, KBU_EINVAL,
				   "'%s' is neither a physical address nor usable as a "
				   "symbol without --symbols or --kernel",
				   name);
	const struct kbu_sym *s = kbu_sym_by_name(ctx->syms, name);
	if (!s)
		return kbu_err_set(err, KBU_ENOTFOUND, "no symbol '%s'", name);
	struct kbu_kvar v;
	int kind = kbu_kvar_follow(ctx->mem, ctx->kernel, s->addr, match_config, NULL, &v);
	kbu_kvar_describe(&v, name, s->addr, "\"PCMP\" config table", how, howlen);
	if (kind != KBU_KVAR_IS_STRUCT && kind != KBU_KVAR_PHYS && kind != KBU_KVAR_POINTER)
		return kbu_err_set(err, KBU_ENOTFOUND, "%s", how);
	*pa = v.pa;
	return 0;
}

static int mptable_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		       struct kbu_err *err)
{
	uint64_t at = 0;
	int have_at = 0;
	const char *table = NULL;
	static const struct kbu_opt opts[] = {{"at", 0, 1}, {"table", 0, 1}, {NULL, 0, 0}};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	int i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG)
			return kbu_err_set(err, KBU_EINVAL, "unexpected argument '%s'", g.arg);
		if (i == 1) {
			table = g.arg;
		} else if (kbu_parse_u64(g.arg, &at, err) != 0) {
			return kbu_err_set(err, KBU_EINVAL, "'%s' is not a physical address", g.arg);
		} else {
			have_at = 1;
		}
	}
	if (table && have_at)
		return kbu_err_set(err, KBU_EINVAL, "give --at or --table, not both");
	struct kbu_mptable t;
	if (table) {
		uint64_t pa;
		char how[200] = "";
		struct kbu_err not_number;
		if (kbu_parse_u64(table, &pa, &not_number) == 0)
			snprintf(how, sizeof(how), "given address");
		else if (table_from_symbol(ctx, table, &pa, how, sizeof(how), err) != 0)
			return -1;
		if (kbu_mptable_read_config(ctx->mem, pa, &t, err) != 0)
			return -1;
		snprintf(t.config_how, sizeof(t.config_how), "%s", how);
	} else if (kbu_mptable_read(ctx->mem, have_at, at, &t, err) != 0) {
		if (!have_at && err->code == KBU_ENOTFOUND && kbu_firmware_not_run_yet(ctx->mem))
			return kbu_err_prefix(err, "CPU 0 is still at its reset vector, the firmware "
						   "has not run yet");
		return -1;
	}
	if (!table) {
		/* Whose table this is, and what that firmware is known to get wrong. */
		struct kbu_firmware fw;
		struct kbu_fw_known known = {.mp = &t};
		if (kbu_firmware_identify(ctx->mem, &known, &fw, err) != 0) {
			kbu_mptable_free(&t);
			return -1;
		}
		kbu_firmware_report(&fw, kbu_report_root(r), 0);
		kbu_mptable_check_vcpus(&t, kbu_mem_ncpus(ctx->mem),
					fw.kind == KBU_FW_SEABIOS ? fw.quirk : NULL);
	} else {
		kbu_mptable_check_vcpus(&t, kbu_mem_ncpus(ctx->mem), NULL);
	}
	kbu_mptable_report(&t, kbu_report_root(r));
	kbu_mptable_free(&t);
	return 0;
}

static struct kbu_command cmd_mptable = {
	.name = "mptable",
	.summary = "walk and check the MP table: CPUs, buses, I/O APICs, interrupt routing",
	.help = "usage: kbu mptable [--core F|--phys F|--gdb H:P] [--symbols MAP] [--kernel ELF]\n"
		"                   [--at ADDR | --table ADDR|SYMBOL]\n"
		"\n"
		"Finds the MP floating pointer where the MP specification says (first KiB of\n"
		"the EBDA, last KiB of base memory, 0x9fc00, 0xe0000-0xfffff; or at ADDR) and\n"
		"prints it, the config table header and every entry (Processors, Bus, I/O\n"
		"APICs, I/O Ints, Local Ints, extended entries), then a summary: CPUs, BSP,\n"
		"I/O APICs and ISA IRQ routing. The table is walked by its base table length,\n"
		"not by its entry count (QEMU's qboot writes 0 there); checksums, lengths,\n"
		"unknown entry types, BSP count and duplicate APIC ids are checked and every\n"
		"anomaly is a finding on its own line marked '!'. It also walks the table as\n"
		"a kernel that trusts entry_count does (FreeBSD's mptable_walk_table) and says\n"
		"what that walker reads: fewer entries than the table holds, or the bytes\n"
		"past its end, read from guest memory, and the entry type it meets there.\n"
		"The firmware that wrote the table is named (qboot, SeaBIOS, Firecracker)\n"
		"with its known quirk, and the table's processors are compared with the VM's\n"
		"vCPUs when the source knows them. Over a live stub with a monitor, the I/O\n"
		"APIC's own ID and version registers are compared with the table.\n"
		"\n"
		"--table walks a config table (\"PCMP\") with no floating pointer: at a physical\n"
		"address, or a kernel's own copy named by a symbol (an array holding the table,\n"
		"or a pointer to it, e.g. FreeBSD's mpct).\n",
	.needs = KBU_NEEDS_MEM,
	.run = mptable_run,
};
KBU_COMMAND(cmd_mptable)
