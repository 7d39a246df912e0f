/* kbu dmesg: the kernel's message buffer from guest memory, through the OS profile. */
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/dmesg.h"
#include "kbu/os.h"
#include "kbu/report.h"
#include "kbu/util.h"

static int dmesg_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		     struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {{"os", 0, 1}, {"profile", 0, 1}, {"quiet", 'q', 0}, {0}};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	const char *os = ctx->os, *profile = NULL;
	int quiet = 0, i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG)
			return kbu_err_set(err, KBU_EINVAL, "unexpected argument '%s'", g.arg);
		if (i == 0)
			os = g.arg;
		else if (i == 1)
			profile = g.arg;
		else
			quiet = 1;
	}
	struct kbu_os_profile *p = kbu_ctx_profile(ctx, os, profile, err);
	if (!p)
		return -1;
	struct kbu_dmesg d;
	if (kbu_dmesg_read(ctx->mem, ctx->kernel, ctx->syms, p, &d, err) < 0) {
		kbu_os_free(p);
		return -1;
	}
	struct kbu_node *root = kbu_report_root(r);
	kbu_str(root, "os", "", kbu_os_name(p));
	kbu_str(root, "profile", "", kbu_os_origin(p));
	kbu_str(root, "symbol", "", d.symbol);
	kbu_str(root, "format", "", d.format);
	kbu_hex(root, "header", "", d.header_addr, 0);
	if (!quiet) {
		kbu_display(root, "os_text", "os", "%s (%s profile)", kbu_os_name(p), kbu_os_origin(p));
		kbu_display(root, "buffer", "buffer", "%s -> %s at 0x%llx", d.symbol, d.format,
			    (unsigned long long)d.header_addr);
		kbu_hex(root, "data", "text at", d.data_addr, 0);
		kbu_u64(root, "size", "size", d.data_size);
		kbu_u64(root, "records", strcmp(d.format, "linux-prb") == 0 ? "records" : "lines",
			d.records);
		kbu_bool(root, "wrapped", "wrapped", d.wrapped);
		for (int k = 0; k < d.nproblems; k++)
			kbu_problem(root, KBU_SEV_WARN, "%s", d.problems[k]);
	} else {
		kbu_hex(root, "data", "", d.data_addr, 0);
		kbu_u64(root, "size", "", d.data_size);
		kbu_u64(root, "records", "", d.records);
		kbu_bool(root, "wrapped", "", d.wrapped);
	}
	kbu_str(root, "text", "", d.text);
	struct kbu_node *log = root;
	if (!quiet)
		kbu_textline(log, "%s", ""); /* the log starts after a blank line */
	/* One text line per log line: the text rendering is the log itself
	 * (JSON holds it once, in "text"). */
	for (char *s = d.text; s && *s;) {
		char *nl = strchr(s, '\n');
		if (nl)
			*nl = 0;
		kbu_textline(log, "%s", s);
		if (!nl)
			break;
		s = nl + 1;
	}
	kbu_dmesg_free(&d);
	kbu_os_free(p);
	return 0;
}

static struct kbu_command cmd_dmesg = {
	.name = "dmesg",
	.summary = "the kernel's message buffer (FreeBSD msgbuf, NetBSD kern_msgbuf, Linux printk ring)",
	.help = "usage: kbu dmesg [--os freebsd|netbsd|linux] [--profile FILE] [-q]\n"
		"                 (--core DUMP | --phys FILE | --gdb HOST:PORT) --kernel ELF [--symbols MAP]\n"
		"\n"
		"Reads the message buffer the OS profile names (FreeBSD and NetBSD msgbufp,\n"
		"Linux prb) and prints the log as the console printed it, oldest first: the\n"
		"text the kernel wrote even when the console was not working yet. Linux\n"
		"records get the console's \"[    s.uuuuuu] \" prefix. A buffer that wrapped,\n"
		"or records lost between tail and head, are flagged with '!'. The OS is\n"
		"detected from the symbols unless --os or --profile says otherwise. -q prints\n"
		"only the log. --json gives the whole log in \"text\".\n",
	.needs = KBU_NEEDS_MEM | KBU_NEEDS_SYMS,
	.run = dmesg_run,
};
KBU_COMMAND(cmd_dmesg)
