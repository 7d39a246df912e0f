/* kbu os: the OS profile in use (detected, named or from a file), with its symbols resolved. */
#include <string.h>

#include "kbu/command.h"
#include "kbu/os.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/util.h"

static const char *const roles[] = {
	"x2apic", "x2apic_type", "timesource", "timesource_pointer", "timesource_list",
	"timesource_list_kind", "time_register", "asserts",
	"printf_entries", "vprintf_entries", "msgbuf", "msgbuf_pointer", "msgbuf_format",
	"start_info", "start_info_kind", "ncpus",
};
/* Roles whose value is a list of symbol names to resolve. */
static const char *const symbol_roles[] = {"x2apic", "timesource", "timesource_list",
					   "time_register", "asserts", "msgbuf", "start_info", "ncpus"};

static void layout_report(struct kbu_node *parent, const struct kbu_os_profile *p,
			  const char *layout, const char *const *fields, size_t n)
{
	char sect[64];
	snprintf(sect, sizeof(sect), "layout.%s", layout);
	const char *sname = kbu_os_get(p, sect, "struct");
	if (!sname)
		return;
	struct kbu_node *o = kbu_obj(parent, layout, NULL);
	kbu_str(o, "struct", "struct", sname);
	struct kbu_node *l = kbu_list(o, "fields", "");
	for (size_t i = 0; i < n; i++) {
		struct kbu_os_field f;
		struct kbu_err err;
		if (kbu_os_field(p, layout, fields[i], &f, &err) < 0)
			continue;
		struct kbu_node *row = kbu_row(l);
		kbu_str(row, "key", "key", fields[i]);
		kbu_str(row, "cname", "field", f.cname);
		kbu_u64(row, "offset", "offset", f.offset);
		kbu_u64(row, "size", "size", f.size);
	}
}

static int os_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		  struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {{"os", 0, 1}, {"profile", 0, 1}, {0}};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	const char *os = ctx->os, *profile = NULL;
	int i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG)
			return kbu_err_set(err, KBU_EINVAL, "unexpected argument '%s'", g.arg);
		if (i == 0)
			os = g.arg;
		else
			profile = g.arg;
	}
	struct kbu_os_profile *p = kbu_os_select(os, profile, ctx->syms, err);
	if (!p)
		return -1;
	struct kbu_node *root = kbu_report_root(r);
	kbu_str(root, "name", "os", kbu_os_name(p));
	kbu_str(root, "origin", "profile", kbu_os_origin(p));
	const char *desc = kbu_os_get(p, "profile", "description");
	kbu_str(root, "description", "description", desc ? desc : "");
	if (ctx->syms)
		kbu_str(root, "detected", "matches symbols", kbu_os_matches(p, ctx->syms) ? "yes" : "no");
	struct kbu_node *ro = kbu_obj(root, "roles", "Roles");
	for (size_t k = 0; k < sizeof(roles) / sizeof(roles[0]); k++) {
		const char *v = kbu_os_role(p, roles[k]);
		kbu_str(ro, roles[k], NULL, v ? v : "");
	}
	struct kbu_node *sl = kbu_list(root, "symbols", "Symbols");
	char w[128];
	for (size_t k = 0; k < sizeof(symbol_roles) / sizeof(symbol_roles[0]); k++)
		for (size_t j = 0; kbu_os_role_word(p, symbol_roles[k], j, w, sizeof(w)); j++) {
			struct kbu_node *row = kbu_row(sl);
			kbu_str(row, "role", "role", symbol_roles[k]);
			kbu_str(row, "name", "symbol", w);
			const struct kbu_sym *s = ctx->syms ? kbu_sym_by_name(ctx->syms, w) : NULL;
			if (s)
				kbu_hex(row, "addr", "address", s->addr, 16);
			else
				kbu_null(row, "addr", "address");
		}
	struct kbu_node *lo = kbu_obj(root, "layouts", "Layouts");
	static const char *const ts[] = {"name", "frequency", "quality", "next", "list", "mult",
					 "shift"};
	static const char *const mb[] = {"ptr", "magic", "size", "wseq", "rseq", "seqmod", "bufx",
					 "bufr", "bufs", "bufc", "desc_count_bits", "descs",
					 "infos", "head_id", "tail_id", "data_size_bits", "data"};
	layout_report(lo, p, "timesource", ts, sizeof(ts) / sizeof(ts[0]));
	layout_report(lo, p, "msgbuf", mb, sizeof(mb) / sizeof(mb[0]));
	kbu_os_free(p);
	return 0;
}

static struct kbu_command cmd_os = {
	.name = "os",
	.summary = "the OS profile in use: which symbol plays which role, and the known layouts",
	.help = "usage: kbu os [--os freebsd|netbsd|linux] [--profile FILE] [--kernel ELF] [--symbols MAP]\n"
		"\n"
		"Shows the OS profile kbu uses: detected from the symbols (Linux: linux_banner\n"
		"or start_kernel; NetBSD: kern_assert with hvm_start_paddr or ncpu; FreeBSD:\n"
		"kassert_panic, mi_startup, or msgbufp with msgbuf_addchar), named with --os,\n"
		"or read from an INI file with --profile (same keys as profiles/*.ini: a\n"
		"profile for another kernel needs no code). Lists each role's symbols with\n"
		"their addresses and the structure layouts used when there is no DWARF.\n",
	.needs = KBU_NEEDS_NOTHING,
	.run = os_run,
};
KBU_COMMAND(cmd_os)
