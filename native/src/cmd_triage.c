/* kbu triage: the post-mortem summary of a dump, with a short verdict. */
#include <inttypes.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/triage.h"
#include "kbu/util.h"

#define TRIAGE_MAX_TAIL 1000

static int triage_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		      struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {{"os", 0, 1}, {"profile", 0, 1}, {"tail", 0, 1}, {0}};
	struct kbu_triage_opts o = {ctx->os, NULL, 15};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	int i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG)
			return kbu_err_set(err, KBU_EINVAL, "unexpected argument '%s'", g.arg);
		if (i == 0) {
			o.os = g.arg;
		} else if (i == 1) {
			o.profile = g.arg;
		} else {
			uint64_t v;
			if (kbu_parse_u64(g.arg, &v, err) < 0)
				return kbu_err_prefix(err, "--tail");
			if (v > TRIAGE_MAX_TAIL)
				return kbu_err_set(err, KBU_EINVAL, "--tail %" PRIu64 ": at most %d lines",
						   v, TRIAGE_MAX_TAIL);
			o.tail = (size_t)v;
		}
	}
	return kbu_triage(ctx, &o, r, err);
}

static struct kbu_command cmd_triage = {
	.name = "triage",
	.summary = "post-mortem triage of a dump: CPUs, kernel location, MP table, start info, "
		   "x2APIC, time source, panic, log tail, verdict",
	.help = "usage: kbu triage --core DUMP --kernel ELF [--symbols MAP] [--os OS]\n"
		"                  [--profile FILE] [--tail N] [--json] [--strict]\n"
		"\n"
		"Everything a porter checks first, from the dump alone (or any memory source):\n"
		"every CPU's mode and where it stopped, where the kernel runs (its code found\n"
		"in memory: KASLR slide and physical load), the MP table's processors, the PVH\n"
		"start info and command line, the kernel's own x2APIC flag, active time source\n"
		"and CPU count (through the OS profile), the panic message (the last \"Kernel\n"
		"panic - not syncing:\" or \"panic:\" line of the message buffer, else panicstr)\n"
		"and the last N lines of the message buffer (default 15). Ends with a verdict:\n"
		"the problems found, each on its own '!' line; --strict exits 1 if there is one.\n"
		"A kernel whose code is nowhere in the dump is refused: wrong kernel for the dump.\n"
		"Linux needs its System.map (--symbols) or vmlinux-dbg as --kernel.\n",
	.needs = KBU_NEEDS_MEM | KBU_NEEDS_KERNEL,
	.run = triage_run,
};
KBU_COMMAND(cmd_triage)
