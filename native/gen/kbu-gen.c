/*
 * kbu-gen: writes kbu's man pages and the data of its bash completion from
 * the help texts themselves (libkbu's command registry, `kbu --help`, and the
 * scripts' --help), through kbu_help_options/kbu_help_args, so they list
 * exactly what the programs say.
 *
 *   kbu-gen man kbu KBU_HELP_FILE
 *   kbu-gen man NAME HELP_FILE "one-line summary"
 *   kbu-gen bash KBU_HELP_FILE [TOOL=HELP_FILE ...]
 *
 * Output on stdout; errors on stderr with exit status 2.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/util.h"

#define MAX_OPTS 64
#define MAX_ARGS 32

static const char *const kind_names[] = {"none", "file", "address", "number", "choice", "text"};

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "kbu-gen: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	size_t cap = 8192, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf) {
			fprintf(stderr, "kbu-gen: out of memory reading %s\n", path);
			exit(2);
		}
		n += fread(buf + n, 1, cap - n - 1, f);
		if (n < cap - 1)
			break;
		cap *= 2;
		char *bigger = realloc(buf, cap);
		if (!bigger)
			free(buf);
		buf = bigger;
	}
	buf[n] = '\0';
	int bad = ferror(f);
	fclose(f);
	if (bad || n == 0) {
		fprintf(stderr, "kbu-gen: %s: %s\n", path, bad ? "read error" : "empty");
		exit(2);
	}
	return buf;
}

/* ---- roff -------------------------------------------------------------------- */

/* Text for roff: backslashes and minus signs escaped, no control character at a line start. */
static void roff(FILE *out, const char *s, size_t len)
{
	int bol = 1;
	for (size_t i = 0; i < len && s[i]; i++) {
		char c = s[i];
		if (bol && (c == '.' || c == '\''))
			fputs("\\&", out);
		bol = c == '\n';
		if (c == '\\')
			fputs("\\e", out);
		else if (c == '-')
			fputs("\\-", out);
		else
			fputc(c, out);
	}
}

static void roffs(FILE *out, const char *s)
{
	roff(out, s, strlen(s));
}

/* "scripts/kbu-gdb" -> "kbu-gdb" at the start of each usage line. */
static void roff_usage_line(FILE *out, const char *line, size_t len)
{
	const char *p = line;
	size_t skip = strspn(p, " ");
	int usage = len >= skip + 6 && strncmp(p + skip, "usage:", 6) == 0;
	if (usage)
		skip += 6 + strspn(p + skip + 6, " ");
	const char *prog = p + skip;
	if (!usage && (*prog == '[' || *prog == '(' || *prog == '-' || isupper((unsigned char)*prog))) {
		/* a continuation: keep its indent, less the width of "usage: " */
		size_t keep = skip > 7 ? skip - 7 : 0;
		for (size_t i = 0; i < keep; i++)
			fputc(' ', out);
		roff(out, prog, len - skip);
		fputc('\n', out);
		return;
	}
	size_t plen = strcspn(prog, " \n");
	const char *slash = NULL;
	for (const char *q = prog; q < prog + plen; q++)
		if (*q == '/')
			slash = q;
	if (slash) {
		size_t cut = (size_t)(slash + 1 - prog);
		prog += cut;
		plen -= cut;
	}
	fputs("\\fB", out);
	roff(out, prog, plen);
	fputs("\\fR", out);
	roff(out, prog + plen, len - (size_t)(prog + plen - line));
	fputc('\n', out);
}

static const char *next_line(const char *p, size_t *len)
{
	const char *nl = strchr(p, '\n');
	*len = nl ? (size_t)(nl - p) : strlen(p);
	return nl ? nl + 1 : p + *len;
}

static int blank(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != ' ' && p[i] != '\t')
			return 0;
	return 1;
}

/* Where the usage block (from "usage:" to the first blank line) ends; help if none. */
static const char *after_usage(const char *help)
{
	const char *p = help;
	size_t len;
	const char *q = p + strspn(p, " ");
	if (strncmp(q, "usage:", 6) != 0)
		return help;
	while (*p) {
		const char *n = next_line(p, &len);
		if (blank(p, len))
			return n;
		p = n;
	}
	return p;
}

/* Usage lines as a no-fill block. */
static void roff_synopsis(FILE *out, const char *help)
{
	const char *end = after_usage(help);
	fputs(".nf\n", out);
	for (const char *p = help; p < end && *p;) {
		size_t len;
		const char *n = next_line(p, &len);
		if (!blank(p, len))
			roff_usage_line(out, p, len);
		p = n;
	}
	fputs(".fi\n", out);
}

/* Plain lines fill one paragraph; indented lines stay as written. */
static void roff_body(FILE *out, const char *p, const char *end)
{
	int in_nf = 0, in_par = 0;
	while (p < end && *p) {
		size_t len;
		const char *n = next_line(p, &len);
		if (blank(p, len)) {
			if (in_nf)
				fputs(".fi\n.RE\n", out);
			in_nf = in_par = 0;
		} else if (p[0] == ' ') {
			if (!in_nf)
				fputs(".RS 2\n.nf\n", out);
			in_nf = 1;
			size_t ind = p[1] == ' ' ? 2 : 1;
			roff(out, p + ind, len - ind);
			fputc('\n', out);
		} else {
			if (in_nf)
				fputs(".fi\n.RE\n", out);
			in_nf = 0;
			if (!in_par)
				fputs(".PP\n", out);
			in_par = 1;
			roff(out, p, len);
			fputc('\n', out);
		}
		p = n;
	}
	if (in_nf)
		fputs(".fi\n.RE\n", out);
}

static void roff_option(FILE *out, const struct kbu_option_info *o)
{
	fputs(".TP\n", out);
	if (o->short_name[0]) {
		fputs("\\fB", out);
		roffs(out, o->short_name);
		fputs("\\fR, ", out);
	}
	fputs("\\fB", out);
	roffs(out, o->name);
	fputs("\\fR", out);
	if (o->value[0]) {
		fputs(" \\fI", out);
		roffs(out, o->value);
		fputs("\\fR", out);
	}
	fputc('\n', out);
	if (o->text[0]) {
		roffs(out, o->text);
		fputc('\n', out);
	}
}

static void roff_header(FILE *out, const char *name, const char *summary)
{
	char upper[64];
	size_t i = 0;
	for (; name[i] && i + 1 < sizeof upper; i++)
		upper[i] = (char)toupper((unsigned char)name[i]);
	upper[i] = '\0';
	fputs(".\\\" Generated by kbu-gen from the programs' own --help texts: do not edit.\n", out);
	fprintf(out, ".TH %s 1 \"\" \"kbu %s\" \"User Commands\"\n", upper, KBU_VERSION);
	fputs(".SH NAME\n", out);
	roffs(out, name);
	fputs(" \\- ", out);
	roffs(out, summary);
	fputc('\n', out);
}

/* A sentence for a heading: first letter capital, a final full stop. */
static void roff_sentence(FILE *out, const char *s)
{
	if (!*s)
		return;
	char first[2] = {(char)toupper((unsigned char)s[0]), '\0'};
	roffs(out, first);
	roffs(out, s + 1);
	if (s[strlen(s) - 1] != '.')
		fputc('.', out);
	fputc('\n', out);
}

static int man_kbu(FILE *out, const char *help)
{
	roff_header(out, "kbu",
		    "kernel bring-up on microVMs: MP table, PVH start info, CPUs, symbols, "
		    "relocation and triage from a QEMU dump, a memory image or a live GDB stub");
	fputs(".SH SYNOPSIS\n", out);
	roff_synopsis(out, help);
	fputs(".SH DESCRIPTION\n"
	      "\\fBkbu\\fR reads a kernel's boot-time state from one memory source (a QEMU\n"
	      "\\fBdump\\-guest\\-memory\\fR ELF core, a raw physical image, or a live GDB\n"
	      "stub such as \\fBqemu \\-s\\fR) and the kernel image, and prints one report per\n"
	      "command as text or, with \\fB\\-\\-json\\fR, as JSON. The same commands run inside\n"
	      "GDB as \\fBkbu\\fR \\fICOMMAND\\fR once the extension is loaded (see\n"
	      "\\fBkbu\\-gdb\\fR(1)). Global options may come before or after the command.\n",
	      out);
	struct kbu_option_info g[MAX_OPTS];
	size_t ng = kbu_help_options(help, g, MAX_OPTS);
	if (ng > MAX_OPTS)
		ng = MAX_OPTS;
	fputs(".SH GLOBAL OPTIONS\n", out);
	for (size_t i = 0; i < ng; i++)
		roff_option(out, &g[i]);
	fputs(".SH COMMANDS\n", out);
	const struct kbu_command *list[128];
	size_t n = kbu_command_list(list, 128);
	if (n > 128)
		n = 128;
	for (size_t i = 0; i < n; i++) {
		const struct kbu_command *c = list[i];
		const char *h = c->help ? c->help : "";
		fputs(".SS ", out);
		roffs(out, c->name);
		fputc('\n', out);
		roff_sentence(out, c->summary ? c->summary : "");
		fputs(".PP\n", out);
		roff_synopsis(out, h);
		roff_body(out, after_usage(h), h + strlen(h));
		struct kbu_option_info o[MAX_OPTS];
		size_t no = kbu_command_options(c->name, o, MAX_OPTS);
		if (no > MAX_OPTS)
			no = MAX_OPTS;
		int own = 0;
		for (size_t k = 0; k < no; k++)
			own += !o[k].context;
		if (own) {
			fputs(".PP\nOptions of \\fBkbu ", out);
			roffs(out, c->name);
			fputs("\\fR (besides the global ones):\n", out);
			for (size_t k = 0; k < no; k++)
				if (!o[k].context)
					roff_option(out, &o[k]);
		}
	}
	fputs(".SH EXIT STATUS\n"
	      "0 when the report was made, 1 when it lists problems and \\fB\\-\\-strict\\fR\n"
	      "was given, 2 for a usage or input error (one line on standard error).\n"
	      ".SH SEE ALSO\n"
	      "\\fBkbu\\-gdb\\fR(1), \\fBkbu\\-triage\\fR(1), \\fBgdb\\fR(1),\n"
	      "\\fBqemu\\-system\\-x86_64\\fR(1)\n",
	      out);
	return 0;
}

/* A label line at column 0: one or two lower-case words and a colon ("options:",
 * "exit status: 0 ...", "example:  ..."); a sentence running on is not one. */
static size_t section_label(const char *p, size_t len)
{
	size_t i = 0;
	int words = 1;
	while (i < len && (islower((unsigned char)p[i]) || p[i] == ' ')) {
		if (p[i] == ' ')
			words++;
		i++;
	}
	if (i == 0 || i >= len || p[i] != ':' || p[0] == ' ' || words > 2 || i > 20)
		return 0;
	return i;
}

static int man_script(FILE *out, const char *name, const char *help, const char *summary)
{
	roff_header(out, name, summary);
	fputs(".SH SYNOPSIS\n", out);
	roff_synopsis(out, help);
	fputs(".SH DESCRIPTION\n", out);
	const char *p = after_usage(help);
	const char *end = help + strlen(help);
	/* description: up to the first label line */
	const char *q = p;
	while (q < end) {
		size_t len;
		const char *n = next_line(q, &len);
		if (section_label(q, len))
			break;
		q = n;
	}
	roff_body(out, p, q);
	struct kbu_option_info o[MAX_OPTS];
	size_t no = kbu_help_options(help, o, MAX_OPTS);
	if (no > MAX_OPTS)
		no = MAX_OPTS;
	while (q < end) {
		size_t len;
		const char *n = next_line(q, &len);
		size_t lab = section_label(q, len);
		/* the section runs to the next label line */
		const char *s_end = n;
		while (s_end < end) {
			size_t l2;
			const char *n2 = next_line(s_end, &l2);
			if (section_label(s_end, l2))
				break;
			s_end = n2;
		}
		fputs(".SH ", out);
		for (size_t i = 0; i < lab; i++)
			fputc(toupper((unsigned char)q[i]), out);
		fputc('\n', out);
		if (lab == 7 && strncmp(q, "options", 7) == 0) {
			for (size_t k = 0; k < no; k++)
				roff_option(out, &o[k]);
		} else {
			const char *rest = q + lab + 1;
			rest += strspn(rest, " ");
			fputs(".nf\n", out);
			for (const char *r = rest; r < s_end;) {
				size_t l3;
				const char *n3 = next_line(r, &l3);
				size_t ind = r == rest ? 0 : strspn(r, " ");
				/* continuation lines line up under the first one */
				if (ind > lab + 1)
					ind = lab + 1 + strspn(q + lab + 1, " ");
				if (ind > l3)
					ind = l3;
				roff(out, r + ind, l3 - ind);
				fputc('\n', out);
				r = n3;
			}
			fputs(".fi\n", out);
		}
		q = s_end;
	}
	fputs(".SH SEE ALSO\n\\fBkbu\\fR(1), \\fBkbu\\-gdb\\fR(1), \\fBkbu\\-triage\\fR(1)\n", out);
	return 0;
}

/* ---- bash completion data ------------------------------------------------------ */

static void bash_options(FILE *out, const char *tool, const char *cmd,
			 const struct kbu_option_info *o, size_t n)
{
	fprintf(out, "\t%s/%s) echo '", tool, cmd);
	for (size_t i = 0; i < n; i++) {
		for (int pass = 0; pass < 2; pass++) {
			const char *nm = pass ? o[i].short_name : o[i].name;
			if (!nm[0])
				continue;
			fprintf(out, "%s%s:%s:%s", i || pass ? " " : "", nm, kind_names[o[i].kind],
				o[i].choices);
		}
	}
	fputs("' ;;\n", out);
}

static void bash_args(FILE *out, const char *tool, const char *cmd, const struct kbu_arg_info *a,
		      size_t n)
{
	fprintf(out, "\t%s/%s) echo '", tool, cmd);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s%s", i ? " " : "", kind_names[a[i].kind], a[i].repeats ? "+" : "");
	fputs("' ;;\n", out);
}

static int bash(FILE *out, const char *kbu_help, int ntools, char **tools)
{
	const struct kbu_command *list[128];
	size_t n = kbu_command_list(list, 128);
	if (n > 128)
		n = 128;
	struct kbu_option_info o[MAX_OPTS];
	struct kbu_arg_info a[MAX_ARGS];
	fputs("# kbu bash completion, data part: generated by kbu-gen from the --help texts.\n", out);
	fputs("_kbu_commands='", out);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? " " : "", list[i]->name);
	fputs("'\n", out);
	/* _kbu_options TOOL CMD: "name:kind:choices" for each option */
	fputs("_kbu_options() {\n\tcase \"$1/$2\" in\n", out);
	size_t ng = kbu_help_options(kbu_help, o, MAX_OPTS);
	bash_options(out, "kbu", "", o, ng < MAX_OPTS ? ng : MAX_OPTS);
	for (size_t i = 0; i < n; i++) {
		size_t no = kbu_command_options(list[i]->name, o, MAX_OPTS);
		bash_options(out, "kbu", list[i]->name, o, no < MAX_OPTS ? no : MAX_OPTS);
	}
	char *helps[16] = {0};
	for (int t = 0; t < ntools && t < 16; t++) {
		char *eq = strchr(tools[t], '=');
		if (!eq) {
			fprintf(stderr, "kbu-gen: bash: '%s' is not TOOL=HELP_FILE\n", tools[t]);
			return 2;
		}
		*eq = '\0';
		helps[t] = slurp(eq + 1);
		size_t no = kbu_help_options(helps[t], o, MAX_OPTS);
		bash_options(out, tools[t], "", o, no < MAX_OPTS ? no : MAX_OPTS);
	}
	fputs("\tesac\n}\n", out);
	/* _kbu_args TOOL CMD: the kinds of the positional arguments in order ('+': repeats) */
	fputs("_kbu_args() {\n\tcase \"$1/$2\" in\n", out);
	for (size_t i = 0; i < n; i++) {
		size_t na = kbu_command_args(list[i]->name, a, MAX_ARGS);
		bash_args(out, "kbu", list[i]->name, a, na < MAX_ARGS ? na : MAX_ARGS);
	}
	for (int t = 0; t < ntools && t < 16; t++) {
		size_t na = kbu_help_args(helps[t], a, MAX_ARGS);
		bash_args(out, tools[t], "", a, na < MAX_ARGS ? na : MAX_ARGS);
		free(helps[t]);
	}
	fputs("\tesac\n}\n", out);
	return 0;
}

static int usage(void)
{
	fputs("usage: kbu-gen man kbu KBU_HELP_FILE\n"
	      "       kbu-gen man NAME HELP_FILE SUMMARY\n"
	      "       kbu-gen bash KBU_HELP_FILE [TOOL=HELP_FILE ...]\n",
	      stderr);
	return 2;
}

int main(int argc, char **argv)
{
	int rc;
	if (argc >= 4 && strcmp(argv[1], "man") == 0 && strcmp(argv[2], "kbu") == 0) {
		char *help = slurp(argv[3]);
		rc = man_kbu(stdout, help);
		free(help);
	} else if (argc == 5 && strcmp(argv[1], "man") == 0) {
		char *help = slurp(argv[3]);
		rc = man_script(stdout, argv[2], help, argv[4]);
		free(help);
	} else if (argc >= 3 && strcmp(argv[1], "bash") == 0) {
		char *help = slurp(argv[2]);
		rc = bash(stdout, help, argc - 3, argv + 3);
		free(help);
	} else {
		return usage();
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "kbu-gen: write error: %s\n", strerror(errno));
		return 2;
	}
	return rc;
}
