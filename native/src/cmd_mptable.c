/* kbu mptable [--at ADDR]: the MP floating pointer, config table and every entry. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/mem.h"
#include "kbu/mptable.h"
#include "kbu/report.h"

static int mptable_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		       struct kbu_err *err)
{
	uint64_t at = 0;
	int have_at = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--at") == 0) {
			if (i + 1 >= argc)
				return kbu_err_set(err, KBU_EINVAL,
						   "mptable: --at needs the physical address of "
						   "the floating pointer");
			char *end;
			errno = 0;
			at = strtoull(argv[i + 1], &end, 0);
			if (errno || end == argv[i + 1] || *end || argv[i + 1][0] == '-')
				return kbu_err_set(err, KBU_EINVAL,
						   "mptable: '%s' is not a physical address",
						   argv[i + 1]);
			have_at = 1;
			i++;
		} else {
			return kbu_err_set(err, KBU_EINVAL, "mptable: unexpected argument '%s'",
					   argv[i]);
		}
	}
	struct kbu_mptable t;
	if (kbu_mptable_read(ctx->mem, have_at, at, &t, err) != 0)
		return -1;
	kbu_mptable_report(&t, kbu_report_root(r));
	kbu_mptable_free(&t);
	return 0;
}

static struct kbu_command cmd_mptable = {
	.name = "mptable",
	.summary = "walk and check the MP table: CPUs, buses, I/O APICs, interrupt routing",
	.help = "usage: kbu mptable [--core F|--phys F|--gdb H:P] [--at ADDR]\n"
		"\n"
		"Finds the MP floating pointer where the MP specification says (first KiB of\n"
		"the EBDA, last KiB of base memory, 0x9fc00, 0xe0000-0xfffff; or at ADDR) and\n"
		"prints it, the config table header and every entry (Processors, Bus, I/O\n"
		"APICs, I/O Ints, Local Ints, extended entries), then a summary: CPUs, BSP,\n"
		"I/O APICs and ISA IRQ routing. The table is walked by its base table length,\n"
		"not by its entry count (QEMU's microvm firmware writes 0 there); checksums,\n"
		"lengths, unknown entry types, BSP count and duplicate APIC ids are checked and\n"
		"every anomaly is reported on its own line marked '!'. Over a live stub with a\n"
		"monitor, the I/O APIC's own ID register is compared with the table.\n",
	.needs = KBU_NEEDS_MEM,
	.run = mptable_run,
};
KBU_COMMAND(cmd_mptable)
