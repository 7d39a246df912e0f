/*
 * kbu: the command-line front. Global options may come before or after the
 * command name (`kbu mptable --core d.elf`); everything else goes to the
 * command. Errors are one line on stderr: "kbu: <command>: <message>".
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/gdbrsp.h"
#include "kbu/mem.h"
#include "kbu/report.h"
#include "kbu/symbols.h"
#include "kbu/util.h"

struct globals {
	const char *core, *phys, *gdb, *kernel, *symbols, *os, *timeout;
	int json, strict, help, version, stats;
};

static const char usage[] =
	"usage: kbu [GLOBAL OPTIONS] COMMAND [ARGS]   (global options may also follow COMMAND)\n"
	"\n"
	"Global options:\n"
	"  --core FILE        a QEMU dump-guest-memory ELF core (ELF64 or ELF32)\n"
	"  --phys FILE[@BASE] a raw physical memory image (pmemsave), loaded at BASE (default 0)\n"
	"  --gdb STUB         a live GDB stub: HOST:PORT (qemu -s) or a UNIX socket PATH\n"
	"                     (Firecracker's gdb socket, kbu serve --listen PATH)\n"
	"  --kernel ELF       the kernel image (segments, notes, symbols)\n"
	"  --symbols MAP      an nm-format symbol map (System.map)\n"
	"  --os NAME          auto, freebsd, netbsd or linux\n"
	"  --json             print the report as JSON\n"
	"  --strict           exit 1 when the report lists problems\n"
	"  --timeout SECONDS  time limit of the whole command over --gdb (default 60)\n"
	"  --stats            after the report, print on stderr what the memory source was asked\n"
	"                     (with --gdb: the stub round trips too)\n"
	"  --help             this text; `kbu COMMAND --help` for a command\n"
	"  --version          the version\n";

/* Options taking a value: returns the slot, or NULL if `name` is not one. */
static const char **value_slot(struct globals *g, const char *name)
{
	static const struct { const char *name; size_t off; } table[] = {
		{"core", offsetof(struct globals, core)},
		{"phys", offsetof(struct globals, phys)},
		{"gdb", offsetof(struct globals, gdb)},
		{"kernel", offsetof(struct globals, kernel)},
		{"symbols", offsetof(struct globals, symbols)},
		{"os", offsetof(struct globals, os)},
		{"timeout", offsetof(struct globals, timeout)},
	};
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (strcmp(table[i].name, name) == 0)
			return (const char **)((char *)g + table[i].off);
	return NULL;
}

static int print_commands(FILE *out)
{
	const struct kbu_command *list[128];
	size_t n = kbu_command_list(list, sizeof list / sizeof list[0]);
	if (n > sizeof list / sizeof list[0])
		n = sizeof list / sizeof list[0];
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (strlen(list[i]->name) > w)
			w = strlen(list[i]->name);
	fputs(usage, out);
	fputs("\nCommands:\n", out);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "  %-*s  %s\n", (int)w, list[i]->name, list[i]->summary ? list[i]->summary : "");
	return 0;
}

/* One line on stderr, whatever bytes the message carries (a System.map line,
 * a stub's reply): kbu_escape makes them safe for the terminal. */
static void print_error(const char *cmd, const char *msg)
{
	char shown[4 * sizeof(((struct kbu_err *)0)->msg) + 1];
	kbu_escape(msg, strlen(msg), NULL, shown, sizeof shown);
	if (cmd)
		fprintf(stderr, "kbu: %s: %s\n", cmd, shown);
	else
		fprintf(stderr, "kbu: %s\n", shown);
}

/*
 * Splits argv into globals and the command's argv (in place: cmd_argv reuses
 * argv's storage). Returns 0, or -1 with a message in err.
 */
static int split_args(int argc, char **argv, struct globals *g, int *cmd_argc, char ***cmd_argv,
		      struct kbu_err *err)
{
	char **rest = calloc((size_t)argc + 1, sizeof *rest);
	if (!rest)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory");
	int n = 0, have_cmd = 0, only_args = 0;
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (only_args || strncmp(a, "--", 2) != 0) {
			rest[n++] = a;
			have_cmd = 1;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			if (have_cmd)
				rest[n++] = a; /* the command sees it too */
			only_args = 1;
			continue;
		}
		char name[32];
		const char *eq = strchr(a + 2, '=');
		size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		if (len >= sizeof name) {
			rest[n++] = a;
			continue;
		}
		memcpy(name, a + 2, len);
		name[len] = '\0';
		const char **slot = value_slot(g, name);
		if (slot) {
			const char *v;
			if (eq)
				v = eq + 1;
			else if (i + 1 < argc)
				v = argv[++i];
			else {
				free(rest);
				return kbu_err_set(err, KBU_EINVAL, "option '--%s' needs a value", name);
			}
			if (*slot) {
				free(rest);
				return kbu_err_set(err, KBU_EINVAL, "option '--%s' given twice", name);
			}
			*slot = v;
		} else if (strcmp(name, "json") == 0 && !eq) {
			g->json = 1;
		} else if (strcmp(name, "strict") == 0 && !eq) {
			g->strict = 1;
		} else if (strcmp(name, "stats") == 0 && !eq) {
			g->stats = 1;
		} else if (strcmp(name, "version") == 0 && !eq) {
			g->version = 1;
		} else if (strcmp(name, "help") == 0 && !eq && !have_cmd) {
			g->help = 1;
		} else {
			rest[n++] = a; /* the command's own option (or its --help) */
		}
	}
	rest[n] = NULL;
	*cmd_argc = n;
	*cmd_argv = rest;
	return 0;
}

#define DEFAULT_TIMEOUT_S 60

/* The whole command's limit in ms (--timeout SECONDS). */
static int command_limit_ms(const struct globals *g, int *ms, struct kbu_err *err)
{
	*ms = DEFAULT_TIMEOUT_S * 1000;
	if (!g->timeout)
		return 0;
	char *end;
	double s = strtod(g->timeout, &end);
	if (end == g->timeout || *end || !(s > 0) || s > 86400)
		return kbu_err_set(err, KBU_EINVAL, "--timeout '%s' is not a number of seconds in (0, 86400]",
				   g->timeout);
	*ms = s * 1000 < 1 ? 1 : (int)(s * 1000);
	return 0;
}

/* What the source noticed on connect that the user must know (to stderr). */
static void source_warnings(const char *cmd, struct kbu_gdb *conn)
{
	uint64_t first;
	size_t dups = conn ? kbu_gdb_duplicate_threads(conn, &first) : 0;
	if (dups)
		fprintf(stderr,
			"kbu: %s: warning: gdb stub %s named thread %" PRIx64 " %s in its thread list "
			"(%zu repeated id%s): each thread counted once, %d CPU%s\n",
			cmd, kbu_gdb_where(conn), first, dups == 1 ? "twice" : "more than once", dups,
			dups == 1 ? "" : "s", kbu_gdb_ncpus(conn), kbu_gdb_ncpus(conn) == 1 ? "" : "s");
}

/*
 * A stub without a physical mode: the kernel's own variable naming its direct
 * map is the first place to read physical memory through (Linux randomises
 * it with KASLR). A hint only: struct kbu_mem proves it before using it.
 */
static void hint_direct_map(struct kbu_ctx *ctx)
{
	static const struct { const char *sym, *what; } vars[] = {
		{"page_offset_base", "Linux's page_offset_base"},
		{"pmap_direct_base", "NetBSD's pmap_direct_base"},
	};
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		const struct kbu_sym *s = kbu_sym_by_name(ctx->syms, vars[i].sym);
		uint64_t v;
		struct kbu_err e;
		if (s && kbu_mem_read_u64(ctx->mem, KBU_VIRT, s->addr, &v, &e) == 0 && v)
			kbu_mem_add_phys_hint(ctx->mem, v, vars[i].what);
	}
	kbu_mem_clear_source_error(ctx->mem);
}

static int open_sources(struct kbu_ctx *ctx, const struct globals *g, const char *cmd,
			struct kbu_err *err)
{
	int nsrc = !!g->core + !!g->phys + !!g->gdb;
	if (nsrc > 1)
		return kbu_err_set(err, KBU_EINVAL, "give one memory source: --core, --phys or --gdb");
	if (g->os) {
		static const char *const oses[] = {"auto", "freebsd", "netbsd", "linux"};
		int ok = 0;
		for (size_t i = 0; i < 4; i++)
			ok |= strcmp(g->os, oses[i]) == 0;
		if (!ok)
			return kbu_err_set(err, KBU_EINVAL,
					   "unknown --os '%s' (auto, freebsd, netbsd, linux)", g->os);
		snprintf(ctx->os, sizeof ctx->os, "%s", g->os);
	}
	ctx->strict = g->strict;
	if (g->kernel && kbu_ctx_load_kernel(ctx, g->kernel, err) < 0)
		return -1;
	if (g->symbols && kbu_ctx_load_symbols(ctx, g->symbols, err) < 0)
		return -1;
	struct kbu_mem *m = NULL;
	if (g->core)
		m = kbu_mem_open_core(g->core, err);
	else if (g->phys)
		m = kbu_mem_open_phys_spec(g->phys, err);
	else if (g->gdb) {
		int limit;
		struct kbu_gdb *conn = NULL;
		if (command_limit_ms(g, &limit, err) < 0)
			return -1;
		m = kbu_mem_open_gdb_limited(g->gdb, limit, &conn, err);
		source_warnings(cmd, m ? conn : NULL);
	}
	if (nsrc && !m)
		return -1;
	if (m) {
		kbu_ctx_set_mem(ctx, m);
		if (ctx->kernel)
			kbu_mem_learn_kernel(m, ctx->kernel); /* to prove a direct map, if needed */
		if (ctx->syms && g->gdb && !kbu_gdb_is_qemu(kbu_mem_source_ctx(m)))
			hint_direct_map(ctx);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct globals g = {0};
	struct kbu_err err = {0};
	int cargc = 0;
	char **cargv = NULL;
	if (split_args(argc, argv, &g, &cargc, &cargv, &err) < 0) {
		/* Name the command if there is one, as every other error does. */
		const char *cmd = NULL;
		for (int i = 1; i < argc && !cmd; i++)
			if (argv[i][0] != '-' && kbu_command_find(argv[i]))
				cmd = argv[i];
		if (cmd)
			print_error(cmd, err.msg);
		else
			print_error(NULL, err.msg);
		return 2;
	}
	if (g.version) {
		printf("kbu %s\n", KBU_VERSION);
		free(cargv);
		return 0;
	}
	if (g.help && cargc > 0 && kbu_command_find(cargv[0])) {
		/* `kbu --help CMD` is `kbu CMD --help` */
		cargv[cargc++] = "--help";
		cargv[cargc] = NULL;
		g.help = 0;
	}
	if (g.help) {
		print_commands(stdout);
		free(cargv);
		return 0;
	}
	if (cargc == 0) {
		print_commands(stderr);
		free(cargv);
		return 2;
	}
	const char *name = cargv[0];
	if (name[0] == '-' && name[1]) {
		/* what is left of the options before the command: none that kbu knows */
		fprintf(stderr, "kbu: unknown option '%s' (kbu --help lists the options)\n", name);
		free(cargv);
		return 2;
	}
	if (!kbu_command_find(name)) {
		fprintf(stderr, "kbu: %s: unknown command (kbu --help lists them)\n", name);
		free(cargv);
		return 2;
	}
	struct kbu_ctx *ctx = kbu_ctx_new();
	if (!ctx) {
		fprintf(stderr, "kbu: %s: out of memory\n", name);
		free(cargv);
		return 2;
	}
	int status;
	char *out = NULL;
	int help = 0;
	for (int i = 1; i < cargc && strcmp(cargv[i], "--") != 0; i++)
		help |= strcmp(cargv[i], "--help") == 0 || strcmp(cargv[i], "-h") == 0;
	/* `kbu CMD --help` works without opening anything. */
	if (!help && open_sources(ctx, &g, name, &err) < 0) {
		status = 2;
	} else {
		status = kbu_run(ctx, cargc, cargv, g.json, &out, &err);
	}
	/*
	 * A transport fault during the command (a stub that went silent, lied or
	 * hung up) is the answer, even when the command carried on around it: its
	 * report would say "not found" or hold a gap where the fault was.
	 */
	struct kbu_err fault;
	if (status != 2 && ctx->mem && kbu_mem_source_error(ctx->mem, &fault) &&
	    (fault.code == KBU_ECONN || fault.code == KBU_EIO)) {
		kbu_free(out);
		out = NULL;
		err = fault;
		status = 2;
	}
	if (out) {
		fputs(out, stdout);
		kbu_free(out);
	}
	if (status == 2)
		print_error(name, err.msg[0] ? err.msg : "failed");
	/* A stub that reads no physical memory: how it was read anyway, or why not. */
	const char *how = ctx->mem ? kbu_mem_phys_how(ctx->mem) : NULL;
	if (how && !(status == 2 && err.code == KBU_EUNSUPPORTED))
		fprintf(stderr, "kbu: %s: note: %s\n", name, how);
	if (g.stats && ctx->mem) {
		struct kbu_mem_stats st = kbu_mem_get_stats(ctx->mem);
		char trips[64] = "";
		/* a stub's cost is its round trips (the handshake included) */
		if (strcmp(kbu_mem_kind(ctx->mem), "gdb") == 0)
			snprintf(trips, sizeof trips, ", %" PRIu64 " stub round trips",
				 kbu_mem_gdb_round_trips(ctx->mem));
		fprintf(stderr,
			"kbu: stats: %" PRIu64 " reads asked, %" PRIu64 " source reads (%" PRIu64
			" bytes), %" PRIu64 " pages from cache%s\n",
			st.requests, st.source_reads, st.source_bytes, st.cache_hits, trips);
	}
	kbu_ctx_free(ctx);
	free(cargv);
	if (fflush(stdout) != 0 && status == 0)
		status = 2;
	return status;
}
