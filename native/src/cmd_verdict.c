/* kbu verdict: one question answered from memory and the live facts a debugger gathered. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/json.h"
#include "kbu/report.h"
#include "kbu/util.h"
#include "kbu/verdict.h"

#define LIVE_MAX (16u << 20)

/* The whole of a file (or stdin for "-"), NUL-terminated. */
static char *slurp(const char *path, size_t *len, struct kbu_err *err)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f) {
		kbu_err_set(err, KBU_EIO, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 64 * 1024, n = 0;
	char *buf = malloc(cap + 1);
	while (buf) {
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (n < cap)
			break;
		if (cap >= LIVE_MAX) {
			free(buf);
			buf = NULL;
			kbu_err_set(err, KBU_EINVAL, "%s: larger than %u MiB", path, LIVE_MAX >> 20);
			break;
		}
		char *nb = realloc(buf, cap * 2 + 1);
		if (!nb) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = nb;
		cap *= 2;
	}
	if (buf && ferror(f)) {
		free(buf);
		buf = NULL;
		kbu_err_set(err, KBU_EIO, "reading %s failed", path);
	} else if (!buf && !err->msg[0]) {
		kbu_err_set(err, KBU_ENOMEM, "out of memory reading %s", path);
	}
	if (f != stdin)
		fclose(f);
	if (buf) {
		buf[n] = '\0';
		*len = n;
	}
	return buf;
}

static int verdict_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		       struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {{"live", 0, 1}, {"live-file", 0, 1}, {"os", 0, 1},
					      {"profile", 0, 1}, {"here", 0, 0}, {"list", 0, 0},
					      {0}};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	struct kbu_verdict_opts o = {ctx->os, NULL, 0, 0};
	const char *question = NULL, *text = NULL, *file = NULL;
	int i, list = 0;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG) {
			if (question)
				return kbu_err_set(err, KBU_EINVAL, "unexpected argument '%s'", g.arg);
			question = g.arg;
		} else if (i == 0) {
			text = g.arg;
		} else if (i == 1) {
			file = g.arg;
		} else if (i == 2) {
			o.os = g.arg;
		} else if (i == 3) {
			o.profile = g.arg;
		} else if (i == 4) {
			o.here = 1;
		} else {
			list = 1;
		}
	}
	if (list) {
		if (question)
			return kbu_err_set(err, KBU_EINVAL, "--list takes no question");
		struct kbu_node *l = kbu_list(kbu_report_root(r), "questions", "Questions");
		for (size_t k = 0; k < kbu_question_count(); k++) {
			const struct kbu_question *q = kbu_question_at(k);
			struct kbu_node *row = kbu_row(l);
			kbu_str(row, "name", "question", q->name);
			kbu_str(row, "summary", "what it answers", q->summary);
			kbu_bool(row, "live_only", "", q->live_only);
		}
		return 0;
	}
	if (!question)
		return kbu_err_set(err, KBU_EINVAL, "which question? (kbu verdict --help lists them)");
	if (!kbu_question_find(question))
		return kbu_verdict(ctx, question, NULL, &o, r, err);
	if (text && file)
		return kbu_err_set(err, KBU_EINVAL, "give --live or --live-file, not both");
	char *buf = NULL;
	size_t len = 0;
	if (file) {
		buf = slurp(file, &len, err);
		if (!buf)
			return -1;
		text = buf;
	}
	struct kbu_json *live = NULL;
	if (text) {
		live = kbu_json_parse(text, file ? len : strlen(text), err);
		if (!live || kbu_json_type(live) != KBU_JSON_OBJECT) {
			free(buf);
			if (live) {
				kbu_json_free(live);
				return kbu_err_set(err, KBU_EINVAL, "--live: the facts must be a JSON object");
			}
			return kbu_err_prefix(err, "--live%s", file ? "-file" : "");
		}
	}
	int rc = kbu_verdict(ctx, question, live, &o, r, err);
	kbu_json_free(live);
	free(buf);
	return rc < 0 ? -1 : 0;
}

static struct kbu_command cmd_verdict = {
	.name = "verdict",
	.summary = "answer one question (a recipe's) from memory and the facts a debugger saw live",
	.help = "usage: kbu verdict QUESTION [--live JSON | --live-file FILE|-] [--os OS]\n"
		"                   [--profile FILE] [--here] [--core F|--phys F|--gdb STUB]\n"
		"                   [--kernel ELF] [--symbols MAP]\n"
		"       kbu verdict --list\n"
		"\n"
		"Every rule kbu judges a guest by lives here: the recipes in GDB drive the guest\n"
		"to a stop, gather what only a debugger sees (the stop itself, watches from boot,\n"
		"CPUID run on the vCPU) and hand it over as --live JSON; kbu reads the rest from\n"
		"memory itself (the firmware's tables, the kernel's variables through its OS\n"
		"profile, its message buffer). Prints the evidence and the verdict: no problem,\n"
		"problem (with the cause and the next step) or undecided; --list names the\n"
		"questions. The live facts are described in native/include/kbu/verdict.h.\n",
	.needs = KBU_NEEDS_NOTHING,
	.run = verdict_run,
};
KBU_COMMAND(cmd_verdict)
