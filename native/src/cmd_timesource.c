/* kbu timesource: the kernel's active time source and its registration list. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/dmesg.h"
#include "kbu/os.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/timesource.h"
#include "kbu/util.h"

#define MAX_FIELDS 8

static void source_fields(struct kbu_node *o, const struct kbu_timesource *t)
{
	kbu_hex(o, "addr", "structure at", t->addr, 16);
	if (t->have_name)
		kbu_str(o, "name", "name", t->name);
	else
		kbu_null(o, "name", "name");
	if (t->have_frequency)
		kbu_u64(o, "frequency", "frequency (Hz)", t->frequency);
	else
		kbu_null(o, "frequency", "frequency (Hz)");
	if (t->have_quality)
		kbu_i64(o, "quality", "quality", t->quality);
	else
		kbu_null(o, "quality", "quality");
}

static int ts_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		  struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {
		{"at", 0, 1}, {"list", 0, 0}, {"field", 0, 1}, {"slide", 0, 1}, {"profile", 0, 1},
		{NULL, 0, 0},
	};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	const char *fields[MAX_FIELDS];
	size_t nfields = 0;
	const char *profile = NULL;
	uint64_t at = 0, slide = 0;
	int have_at = 0, list = 0, i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG)
			return kbu_err_set(err, KBU_EINVAL, "unexpected argument '%s'", g.arg);
		switch (i) {
		case 0:
			if (kbu_parse_addr(ctx, g.arg, &at, err) < 0)
				return kbu_err_prefix(err, "--at");
			have_at = 1;
			break;
		case 1: list = 1; break;
		case 2:
			if (nfields >= MAX_FIELDS)
				return kbu_err_set(err, KBU_EINVAL, "more than %d --field", MAX_FIELDS);
			fields[nfields++] = g.arg;
			break;
		case 3:
			if (kbu_parse_u64(g.arg, &slide, err) < 0)
				return kbu_err_prefix(err, "--slide");
			break;
		case 4: profile = g.arg; break;
		}
	}
	struct kbu_os_profile *p = kbu_ctx_profile(ctx, NULL, profile, err);
	if (!p)
		return -1;
	struct kbu_timesource_layout lo;
	kbu_timesource_layout(p, &lo);
	int rc = -1;
	for (size_t k = 0; k < nfields; k++)
		if (kbu_timesource_override(&lo, fields[k], err) < 0) {
			kbu_err_prefix(err, "--field");
			goto out;
		}
	struct kbu_node *root = kbu_report_root(r);
	kbu_str(root, "os", "os", kbu_os_name(p));
	struct kbu_node *lay = kbu_obj(root, "layout", "");
	static const char *const keys[KBU_TS_NFIELDS] = {"name", "frequency", "quality", "next",
							 "list"};
	for (int k = 0; k < KBU_TS_NFIELDS; k++)
		if (lo.have[k])
			kbu_u64(lay, keys[k], "", lo.f[k].offset);
	/* what the kernel calls its quality (tc_quality, rating), to word a quality with */
	if (lo.have[KBU_TS_QUALITY])
		kbu_str(root, "quality_name", "", lo.cname[KBU_TS_QUALITY]);
	else
		kbu_null(root, "quality_name", "");
	struct kbu_timesource t;
	struct kbu_err e;
	if (have_at) {
		if (kbu_timesource_read(ctx->mem, ctx->kernel, &lo, at, &t, err) < 0)
			goto out;
		source_fields(kbu_obj(root, "at", "time source"), &t);
	} else if (!list) {
		/* The active one: the role timesource, a pointer (or the structure itself). */
		const char *role = kbu_os_role(p, "timesource");
		const struct kbu_sym *s = role && ctx->syms ? kbu_sym_by_name(ctx->syms, role) : NULL;
		if (!s) {
			kbu_err_set(err, KBU_ENOTFOUND, "no symbol for the %s profile's time source "
				    "(role timesource: %s)", kbu_os_name(p), role ? role : "none");
			goto out;
		}
		uint64_t addr = s->addr + slide;
		if (kbu_os_role_num(p, "timesource_pointer", 0) == 1 &&
		    kbu_read_kva_uint(ctx->mem, ctx->kernel, addr, 8, &addr, err) < 0) {
			kbu_err_prefix(err, "%s", role);
			goto out;
		}
		struct kbu_node *o = kbu_obj(root, "current", "active time source");
		kbu_str(o, "symbol", "variable", role);
		if (kbu_timesource_read(ctx->mem, ctx->kernel, &lo, addr, &t, &e) < 0)
			kbu_finding(o, KBU_SEV_WARN, "timesource.unreadable", "%s", e.msg);
		source_fields(o, &t);
	}
	if (list) {
		const char *head = kbu_os_role(p, "timesource_list");
		const char *kind = kbu_os_role(p, "timesource_list_kind");
		const struct kbu_sym *s = head && ctx->syms ? kbu_sym_by_name(ctx->syms, head) : NULL;
		if (s)
			kbu_str(root, "list_symbol", "list", head);
		struct kbu_node *l = kbu_list(root, "registered", "registered time sources");
		if (!s) {
			kbu_finding(root, KBU_SEV_NOTE, "timesource.no_list",
				    "the %s profile names no registration list kbu can read (role "
				    "timesource_list: %s)", kbu_os_name(p), head ? head : "none");
		} else {
			uint64_t addrs[KBU_TIMESOURCE_MAX_LIST];
			size_t n = 0;
			int cut = 0;
			if (kbu_timesource_list(ctx->mem, ctx->kernel, &lo, s->addr + slide, kind, addrs,
						KBU_TIMESOURCE_MAX_LIST, &n, &cut, err) < 0)
				goto out;
			for (size_t k = 0; k < n; k++) {
				kbu_timesource_read(ctx->mem, ctx->kernel, &lo, addrs[k], &t, &e);
				source_fields(kbu_row(l), &t);
			}
			if (cut)
				kbu_finding(root, KBU_SEV_WARN, "timesource.list_cut",
					    "the list walk stopped early (a loop, an unreadable link, or "
					    "more than %d entries)", KBU_TIMESOURCE_MAX_LIST);
		}
	}
	rc = 0;
out:
	kbu_os_free(p);
	return rc;
}

static struct kbu_command cmd_timesource = {
	.name = "timesource",
	.summary = "the kernel's active time source and the ones registered, through its OS profile",
	.help = "usage: kbu timesource [--at ADDR] [--list] [--field KEY=OFF:SIZE ...] [--slide N]\n"
		"                      [--profile FILE]\n"
		"\n"
		"Reads a time source structure (FreeBSD/NetBSD struct timecounter, Linux struct\n"
		"clocksource) with the OS profile's [layout.timesource]: its name, frequency\n"
		"and quality (tc_quality, rating). Without options: the active one, through\n"
		"the profile's timesource role (timecounter, curr_clocksource). --at ADDR: the\n"
		"structure at ADDR. --list: every one on the registration list\n"
		"(timesource_list: timecounters, clocksource_list), most recent first.\n"
		"--field KEY=OFF:SIZE replaces a field's offset (name, frequency, quality,\n"
		"next, list), e.g. with the one the kernel's DWARF gives; --slide N for a\n"
		"relocated kernel.\n",
	.needs = KBU_NEEDS_MEM | KBU_NEEDS_SYMS,
	.run = ts_run,
};
KBU_COMMAND(cmd_timesource)
