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
	"start_info", "start_info_kind", "ncpus", "ncpus_final_log", "panicstr", "tsc_freq",
	"tsc_freq_size", "tsc_freq_unit", "idle", "timesource_placeholders", "mp_parser",
	"mp_parser_option", "mp_table", "devices_cmdline", "devices_acpi", "cpuid_max",
	"cpuid_hv_max", "cpuid_1_ecx", "cpuid_1_ecx_offset",
};

static const char *osabi_name(int abi)
{
	switch (abi) {
	case 0: return "none (SYSV)";
	case 2: return "NetBSD";
	case 3: return "Linux (GNU)";
	case 9: return "FreeBSD";
	case 12: return "OpenBSD";
	default: return "other";
	}
}

static void named_by_list(struct kbu_node *row, unsigned by)
{
	struct kbu_node *l = kbu_list(row, "named_by", "");
	if (by & KBU_OS_BY_OSABI)
		kbu_item_str(l, "elf_osabi");
	if (by & KBU_OS_BY_GUEST_OS)
		kbu_item_str(l, "xen_guest_os");
	if (by & KBU_OS_BY_NOTE)
		kbu_item_str(l, "note_owner");
	if (!by) {
		kbu_display(row, "named_by_text", "named by", "-");
		return;
	}
	kbu_display(row, "named_by_text", "named by", "%s%s%s%s",
		 by & KBU_OS_BY_OSABI ? "OS ABI" : "",
		 (by & KBU_OS_BY_OSABI) && (by & (KBU_OS_BY_GUEST_OS | KBU_OS_BY_NOTE)) ? ", " : "",
		 by & KBU_OS_BY_GUEST_OS ? "GUEST_OS" : "",
		 by & KBU_OS_BY_NOTE ? ((by & KBU_OS_BY_GUEST_OS) ? ", notes" : "notes") : "");
}

/* The evidence and every candidate's score (the JSON keeps the numbers). */
static void ident_report(struct kbu_node *root, const struct kbu_os_ident *id,
			 const struct kbu_symtab *syms, const struct kbu_os_candidate *extra,
			 const char *chosen)
{
	struct kbu_node *ev = kbu_obj(root, "identification", "Identification");
	if (id->osabi >= 0) {
		kbu_u64(ev, "elf_osabi", "", (uint64_t)id->osabi);
		kbu_display(ev, "elf_osabi_text", "ELF OS ABI", "%d (%s)", id->osabi,
			 osabi_name(id->osabi));
	} else {
		kbu_null(ev, "elf_osabi", "");
		kbu_display(ev, "elf_osabi_text", "ELF OS ABI", "- (no ELF: a symbol map only)");
	}
	if (*id->guest_os)
		kbu_str(ev, "xen_guest_os", "Xen GUEST_OS", id->guest_os);
	else
		kbu_null(ev, "xen_guest_os", "Xen GUEST_OS");
	struct kbu_node *owners = kbu_list(ev, "note_owners", "");
	char w[64];
	const char *o = id->note_owners;
	while (sscanf(o, "%63s", w) == 1) {
		kbu_item_str(owners, w);
		o = strstr(o, w) + strlen(w);
	}
	kbu_display(ev, "note_owners_text", "other note owners", "%s",
		    *id->note_owners ? id->note_owners : "-");
	kbu_u64(ev, "symbols", "symbols", id->has_syms ? kbu_symtab_count(syms) : 0);
	struct kbu_node *cl = kbu_list(root, "candidates", "Candidates");
	for (size_t i = 0; i <= id->ncand; i++) {
		const struct kbu_os_candidate *c = i < id->ncand ? &id->cand[i] : extra;
		if (!c)
			continue;
		struct kbu_node *row = kbu_row(cl);
		kbu_str(row, "name", "profile", c->name);
		kbu_u64(row, "roles_resolved", "", c->roles_resolved);
		kbu_u64(row, "roles_named", "", c->roles_named);
		kbu_display(row, "roles_text", "roles", "%u/%u", c->roles_resolved, c->roles_named);
		kbu_u64(row, "markers_found", "", c->markers_found);
		kbu_u64(row, "markers_named", "", c->markers_named);
		kbu_display(row, "markers_text", "markers", "%u/%u", c->markers_found, c->markers_named);
		named_by_list(row, c->named_by);
		kbu_bool(row, "fits", "fits", c->fits);
		kbu_bool(row, "chosen", "", chosen && strcmp(chosen, c->name) == 0);
		struct kbu_node *ml = kbu_list(row, "missing", "");
		char w2[64];
		for (const char *m = c->missing; sscanf(m, " %63[^,]", w2) == 1;) {
			kbu_item_str(ml, w2);
			m = strchr(m, ',');
			if (!m)
				break;
			m++;
		}
		kbu_display(row, "missing_text", "roles missing", "%s", c->missing);
	}
}

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
	const char *forced = profile ? "--profile" : os && *os && strcmp(os, "auto") != 0 ? "--os"
									  : NULL;
	struct kbu_os_evidence ev = {ctx->syms, ctx->kernel};
	struct kbu_os_ident id;
	struct kbu_os_profile *p;
	if (forced) {
		p = kbu_os_select(os, profile, &ev, err);
		struct kbu_err ignored;
		kbu_os_free(kbu_os_identify(&ev, &id, &ignored));
	} else {
		p = kbu_os_identify(&ev, &id, err);
	}
	if (!p)
		return -1;
	struct kbu_node *root = kbu_report_root(r);
	kbu_str(root, "name", "os", kbu_os_name(p));
	kbu_str(root, "origin", "profile", kbu_os_origin(p));
	const char *desc = kbu_os_get(p, "profile", "description");
	if (desc)
		kbu_str(root, "description", "description", desc);
	else
		kbu_null(root, "description", "description");
	struct kbu_os_candidate own;
	int from_file = profile != NULL;
	if (from_file)
		kbu_os_score(p, &ev, &own);
	if (forced)
		kbu_strf(root, "decided_by", "decided by", "%s %s (given)", forced,
			 from_file ? profile : os);
	else
		kbu_str(root, "decided_by", "decided by", id.how);
	if (forced && (ctx->syms || ctx->kernel)) {
		const char *ident = id.chosen >= 0 ? id.cand[id.chosen].name : NULL;
		if (ident && strcmp(ident, kbu_os_name(p)) != 0)
			kbu_finding(root, KBU_SEV_WARN, "os.forced_differs",
				    "%s %s overrides what the kernel says: identification picks %s (%s)",
				    forced, from_file ? profile : os, ident, id.how);
	}
	if (ctx->syms || ctx->kernel) {
		ident_report(root, &id, ctx->syms, from_file ? &own : NULL, kbu_os_name(p));
	} else {
		/* nothing to identify from: the profile was named */
		kbu_null(root, "identification", "");
		kbu_null(root, "candidates", "");
	}
	struct kbu_node *ro = kbu_obj(root, "roles", "Roles");
	for (size_t k = 0; k < sizeof(roles) / sizeof(roles[0]); k++) {
		const char *v = kbu_os_role(p, roles[k]);
		if (v)
			kbu_str(ro, roles[k], NULL, v);
		else
			kbu_null(ro, roles[k], NULL);
	}
	struct kbu_node *sl = kbu_list(root, "symbols", "Symbols");
	char w[128];
	const char *role;
	for (size_t k = 0; (role = kbu_os_symbol_role(k, NULL)) != NULL; k++)
		for (size_t j = 0; kbu_os_role_word(p, role, j, w, sizeof(w)); j++) {
			struct kbu_node *row = kbu_row(sl);
			kbu_str(row, "role", "role", role);
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
	.summary = "which OS the kernel is, how kbu decided, and the profile it uses",
	.help = "usage: kbu os [--os freebsd|netbsd|linux] [--profile FILE] [--kernel ELF] [--symbols MAP]\n"
		"\n"
		"Says which OS profile kbu uses and how it decided. Identification weighs\n"
		"what the ELF says (its EI_OSABI, the Xen GUEST_OS note, the owners of its\n"
		"notes) and how many of each profile's roles resolve in the symbols (the\n"
		"x2APIC flag, the time source, its list and registration, the assertion\n"
		"entries, the message buffer, the saved start info, the CPU count, the panic\n"
		"message); names only one OS has (markers) break a tie. One symbol never\n"
		"decides: FreeBSD has a local start_kernel. A profile the ELF names wins when\n"
		"half its roles resolve; otherwise the one with the most roles resolved. Two\n"
		"that fit equally: kbu asks for --os. Works from an ELF, a symbol map (nm -n\n"
		"format, System.map) or both, and in GDB from the loaded kernel.\n"
		"\n"
		"--os NAME takes a built-in profile, --profile FILE an INI file (the keys of\n"
		"profiles/*.ini: a profile for another kernel needs no code); the candidates\n"
		"are still scored, and a choice that differs from identification is flagged.\n"
		"Lists each role's symbols with their addresses and the structure layouts\n"
		"used when there is no DWARF.\n",
	.needs = KBU_NEEDS_NOTHING,
	.run = os_run,
};
KBU_COMMAND(cmd_os)
