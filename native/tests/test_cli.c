/* The kbu CLI as a user runs it (the ASan build next to this test), and the helpers it uses. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "elf_fixture.h"
#include "kbu/command.h"
#include "kbu/symbols.h"
#include "kbu/util.h"

static char kbu_path[4200];

struct result {
	int status;
	char out[65536];
	char err[8192];
};

static void slurp(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	ssize_t k;
	while (n + 1 < cap && (k = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)k;
	buf[n] = '\0';
}

/* Runs kbu with argv (NULL-terminated, without argv[0]); stdout and stderr go to temp files. */
static void run_kbu(struct result *r, const char *const *args)
{
	char outp[] = "/tmp/kbu-cli-out-XXXXXX", errp[] = "/tmp/kbu-cli-err-XXXXXX";
	int of = mkstemp(outp), ef = mkstemp(errp);
	const char *argv[32] = {kbu_path};
	int n = 1;
	for (; args[n - 1] && n < 31; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(of, 1);
		dup2(ef, 2);
		setenv("ASAN_OPTIONS", "detect_leaks=1", 1);
		execv(kbu_path, (char *const *)argv);
		_exit(127);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	lseek(of, 0, SEEK_SET);
	lseek(ef, 0, SEEK_SET);
	slurp(of, r->out, sizeof r->out);
	slurp(ef, r->err, sizeof r->err);
	close(of);
	close(ef);
	unlink(outp);
	unlink(errp);
}

#define KBU(r, ...) run_kbu(r, (const char *const[]){__VA_ARGS__, NULL})

static struct result res;

TEST(help_and_version)
{
	KBU(&res, "--help");
	CHECK_EQ_U64(res.status, 0);
	CHECK_CONTAINS(res.out, "usage: kbu [GLOBAL OPTIONS] COMMAND");
	CHECK_CONTAINS(res.out, "  cpus ");
	CHECK_CONTAINS(res.out, "  vtop ");
	CHECK_CONTAINS(res.out, "  x ");
	KBU(&res, "--version");
	CHECK_EQ_U64(res.status, 0);
	CHECK_CONTAINS(res.out, "kbu " KBU_VERSION);
	KBU(&res, "--help", "x");
	CHECK_EQ_U64(res.status, 0);
	CHECK_CONTAINS(res.out, "usage: kbu x [-p] ADDR [LEN]");
	KBU(&res, "vtop", "--help");
	CHECK_EQ_U64(res.status, 0);
	CHECK_CONTAINS(res.out, "usage: kbu vtop ADDR");
	/* --help needs no memory source, even a broken one */
	KBU(&res, "cpus", "--core", "/nonexistent", "--help");
	CHECK_EQ_U64(res.status, 0);
	CHECK_CONTAINS(res.out, "usage: kbu cpus");
}

TEST(errors_are_one_line_exit_2)
{
	run_kbu(&res, (const char *const[]){NULL});
	CHECK_EQ_U64(res.status, 2);
	CHECK_CONTAINS(res.err, "usage:");
	KBU(&res, "frobnicate");
	CHECK_EQ_U64(res.status, 2);
	CHECK_STR(res.err, "kbu: frobnicate: unknown command (kbu --help lists them)\n");
	/* an unknown global option is not an unknown command */
	KBU(&res, "--frob", "cpus");
	CHECK_EQ_U64(res.status, 2);
	CHECK_STR(res.err, "kbu: unknown option '--frob' (kbu --help lists the options)\n");
	KBU(&res, "cpus");
	CHECK_EQ_U64(res.status, 2);
	CHECK_CONTAINS(res.err, "kbu: cpus: needs guest memory");
	KBU(&res, "cpus", "--core", "/nonexistent/d.elf");
	CHECK_EQ_U64(res.status, 2);
	CHECK_STR(res.err, "kbu: cpus: /nonexistent/d.elf: No such file or directory\n");
	CHECK_STR(res.out, "");
	KBU(&res, "cpus", "--core", "/tmp");
	CHECK_EQ_U64(res.status, 2);
	CHECK_STR(res.err, "kbu: cpus: /tmp: not a regular file\n");
	KBU(&res, "x", "--phys", "/tmp/a", "--core", "/tmp/b", "0");
	CHECK_EQ_U64(res.status, 2);
	CHECK_CONTAINS(res.err, "give one memory source");
	KBU(&res, "--os", "plan9", "x", "0");
	CHECK_EQ_U64(res.status, 2);
	CHECK_CONTAINS(res.err, "unknown --os 'plan9'");
	KBU(&res, "x", "--core");
	CHECK_EQ_U64(res.status, 2);
	CHECK_STR(res.err, "kbu: x: option '--core' needs a value\n");
}

TEST(commands_on_a_raw_image)
{
	char img[] = "/tmp/kbu-cli-img-XXXXXX";
	int fd = mkstemp(img);
	uint8_t page[8192] = {0};
	memcpy(page + 0x10, "_MP_", 4);
	CHECK(write(fd, page, sizeof page) == (ssize_t)sizeof page);
	close(fd);
	char spec[64];
	snprintf(spec, sizeof spec, "%s@0x9f000", img);
	/* global options after the command, --json anywhere */
	KBU(&res, "x", "-p", "0x9f010", "4", "--phys", spec, "--json");
	CHECK_EQ_U64(res.status, 0);
	CHECK_CONTAINS(res.out, "\"address\": 651280, \"space\": \"physical\", \"length\": 4, \"bytes\": \"5f4d505f\"");
	KBU(&res, "--phys", spec, "x", "-p", "0x9f010", "4", "--stats");
	CHECK_EQ_U64(res.status, 0);
	CHECK_STR(res.err, "kbu: stats: 1 reads asked, 1 source reads (4096 bytes), 0 pages from cache\n");
	CHECK_CONTAINS(res.out, "0x0009f010  5f 4d 50 5f  |_MP_|");
	/* past the image: an error naming the address, not a short dump */
	KBU(&res, "--phys", spec, "x", "-p", "0xa0ff8", "16");
	CHECK_EQ_U64(res.status, 2);
	CHECK_CONTAINS(res.err, "kbu: x: cannot read physical address 0xa1000");
	CHECK_STR(res.out, "");
	/* a raw image has no registers: virtual needs --cr3 */
	KBU(&res, "--phys", spec, "vtop", "0xffffffff80000000");
	CHECK_EQ_U64(res.status, 2);
	CHECK_CONTAINS(res.err, "give --cr3");
	/* zero tables: not present at the top level; --strict makes that exit 1 */
	KBU(&res, "--phys", spec, "vtop", "0xffffffff80000000", "--cr3", "0x9f000", "--mode", "4level");
	CHECK_EQ_U64(res.status, 0);
	CHECK_CONTAINS(res.out, "! 0xffffffff80000000 is not mapped: PML4 entry 511 at physical 0x9fff8");
	KBU(&res, "--strict", "--phys", spec, "vtop", "0xffffffff80000000", "--cr3=0x9f000", "--mode", "4level");
	CHECK_EQ_U64(res.status, 1);
	KBU(&res, "--phys", spec, "cpus");
	CHECK_EQ_U64(res.status, 2);
	CHECK_CONTAINS(res.err, "kbu: cpus: no CPU registers: the phys source has no CPU registers");
	KBU(&res, "--phys", spec, "x", "-p", "0x9f000", "0");
	CHECK_EQ_U64(res.status, 2);
	CHECK_CONTAINS(res.err, "give 1 to");
	unlink(img);
	KBU(&res, "--phys", img, "x", "-p", "0");
	CHECK_EQ_U64(res.status, 2);
	CHECK_CONTAINS(res.err, "No such file");
}

TEST(parse_numbers)
{
	struct kbu_err err = {0};
	uint64_t v;
	CHECK(kbu_parse_u64("0xffffffff`80200000", &v, &err) == 0);
	CHECK_EQ_U64(v, 0xffffffff80200000ull);
	CHECK(kbu_parse_u64("4096", &v, &err) == 0);
	CHECK_EQ_U64(v, 4096);
	CHECK(kbu_parse_u64("9fc00h", &v, &err) == 0);
	CHECK_EQ_U64(v, 0x9fc00);
	CHECK(kbu_parse_u64("0x1_0000", &v, &err) == 0);
	CHECK_EQ_U64(v, 0x10000);
	CHECK(kbu_parse_u64("0x10000000000000000", &v, &err) < 0);
	CHECK_CONTAINS(err.msg, "64 bits");
	CHECK(kbu_parse_u64("12z", &v, &err) < 0);
	CHECK(kbu_parse_u64("0x", &v, &err) < 0);
	CHECK(kbu_parse_u64("", &v, &err) < 0);
}

TEST(parse_addresses_with_symbols)
{
	struct kbu_ctx *ctx = kbu_ctx_new();
	struct kbu_err err = {0};
	uint64_t v;
	CHECK(kbu_parse_addr(ctx, "lapic_init", &v, &err) < 0);
	CHECK_CONTAINS(err.msg, "no symbols are loaded");
	char map[] = "/tmp/kbu-cli-map-XXXXXX";
	int fd = mkstemp(map);
	const char *text = "ffffffff8098ae40 T lapic_init\nffffffff80200000 T btext\n";
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	CHECK(kbu_ctx_load_symbols(ctx, map, &err) == 0);
	unlink(map);
	CHECK(kbu_parse_addr(ctx, "lapic_init", &v, &err) == 0);
	CHECK_EQ_U64(v, 0xffffffff8098ae40ull);
	CHECK(kbu_parse_addr(ctx, "lapic_init+0x10", &v, &err) == 0);
	CHECK_EQ_U64(v, 0xffffffff8098ae50ull);
	CHECK(kbu_parse_addr(ctx, "btext-16", &v, &err) == 0);
	CHECK_EQ_U64(v, 0xffffffff801ffff0ull);
	CHECK(kbu_parse_addr(ctx, "0x1000", &v, &err) == 0);
	CHECK_EQ_U64(v, 0x1000);
	CHECK(kbu_parse_addr(ctx, "no_such_thing", &v, &err) < 0);
	CHECK_CONTAINS(err.msg, "no symbol 'no_such_thing'");
	CHECK(kbu_parse_addr(ctx, "btext+zz", &v, &err) < 0);
	CHECK(kbu_parse_addr(ctx, "$rsp", &v, &err) < 0);
	CHECK_CONTAINS(err.msg, "$rsp needs a memory source");
	kbu_ctx_free(ctx);
}

TEST(getopt_forms)
{
	static const struct kbu_opt opts[] = {{"cr3", 0, 1}, {"phys", 'p', 0}, {"cpu", 'c', 1}, {NULL, 0, 0}};
	char *argv[] = {"x", "-pc3", "--cr3=0x1000", "ADDR", "--", "-5", "-p", NULL};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	struct kbu_err err = {0};
	CHECK_EQ_U64(kbu_getopt(&g, 7, argv, opts, &err), 1);
	CHECK_EQ_U64(kbu_getopt(&g, 7, argv, opts, &err), 2);
	CHECK_STR(g.arg, "3");
	CHECK_EQ_U64(kbu_getopt(&g, 7, argv, opts, &err), 0);
	CHECK_STR(g.arg, "0x1000");
	CHECK_EQ_U64(kbu_getopt(&g, 7, argv, opts, &err), (uint64_t)KBU_OPT_ARG);
	CHECK_STR(g.arg, "ADDR");
	CHECK_EQ_U64(kbu_getopt(&g, 7, argv, opts, &err), (uint64_t)KBU_OPT_ARG);
	CHECK_STR(g.arg, "-5");
	CHECK_EQ_U64(kbu_getopt(&g, 7, argv, opts, &err), (uint64_t)KBU_OPT_ARG);
	CHECK_STR(g.arg, "-p");
	CHECK_EQ_U64(kbu_getopt(&g, 7, argv, opts, &err), (uint64_t)KBU_OPT_END);
	char *bad[] = {"x", "--cpu", NULL};
	struct kbu_getopt g2 = KBU_GETOPT_INIT;
	CHECK_EQ_U64(kbu_getopt(&g2, 2, bad, opts, &err), (uint64_t)KBU_OPT_ERR);
	CHECK_CONTAINS(err.msg, "'--cpu' needs a value");
	char *bad2[] = {"x", "--frob", NULL};
	struct kbu_getopt g3 = KBU_GETOPT_INIT;
	CHECK_EQ_U64(kbu_getopt(&g3, 2, bad2, opts, &err), (uint64_t)KBU_OPT_ERR);
	CHECK_CONTAINS(err.msg, "unknown option '--frob'");
}

TEST(stripped_kernel_without_map_has_no_symbols)
{
	/* a stripped kernel alone loads (its image is still useful), but a
	 * command that needs symbols must say why there are none */
	struct fx_spec s = {.vaddr = 0xffffffff80200000ull, .paddr = 0x200000,
			    .entry = 0xffffffff80200000ull};
	size_t len;
	uint8_t *img = fx_build(&s, &len);
	char path[256];
	fx_write("stripped.elf", img, len, path, sizeof path);
	free(img);
	struct kbu_ctx *ctx = kbu_ctx_new();
	struct kbu_err err = {0};
	CHECK(kbu_ctx_load_kernel(ctx, path, &err) == 0);
	CHECK(kbu_ctx_need_kernel(ctx, &err) == 0);
	CHECK(kbu_ctx_need_syms(ctx, &err) < 0);
	CHECK_CONTAINS(err.msg, "stripped.elf: ELF has no symbol table (stripped; give --symbols MAP)");
	/* with a map as well, the symbols are there */
	const char *text = "ffffffff80200000 T btext\n";
	char map[256];
	fx_write("stripped.map", text, strlen(text), map, sizeof map);
	CHECK(kbu_ctx_load_symbols(ctx, map, &err) == 0);
	CHECK(kbu_ctx_need_syms(ctx, &err) == 0);
	kbu_ctx_free(ctx);
	/* an empty symbol table object (nothing loaded) is refused too */
	ctx = kbu_ctx_new();
	CHECK(kbu_ctx_need_syms(ctx, &err) < 0);
	CHECK_CONTAINS(err.msg, "needs symbols");
	kbu_ctx_free(ctx);
}

TEST(escape_makes_bytes_safe_and_never_splits_an_escape)
{
	char out[64];
	CHECK_EQ_U64(kbu_escape("a\x1b[1mb\n\t\\", 9, NULL, out, sizeof out), 18);
	CHECK_STR(out, "a\\x1b[1mb\\x0a\\x09\\");
	CHECK_EQ_U64(kbu_escape("l1\nl2\t\x7f", 7, "\n\t", out, sizeof out), 10);
	CHECK_STR(out, "l1\nl2\t\\x7f");
	/* Room for "ab\x1" only: the escape is left out whole. */
	CHECK_EQ_U64(kbu_escape("ab\x01z", 4, NULL, out, 6), 7);
	CHECK_STR(out, "ab");
	CHECK_EQ_U64(kbu_escape("ab\x01z", 4, NULL, out, 7), 7);
	CHECK_STR(out, "ab\\x01");
	CHECK_EQ_U64(kbu_escape("\0x", 2, "\n", NULL, 0), 5); /* a NUL is never kept */
	char *d = kbu_escape_dup("\xff\xfe", 2, NULL);
	CHECK_STR(d, "\\xff\\xfe");
	free(d);
}

int main(void)
{
	/* this test lives in BUILD/asan/tests/; the CLI it drives in BUILD/kbu-asan */
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash)
			*slash = '\0';
		snprintf(kbu_path, sizeof kbu_path, "%s/../../kbu-asan", self);
	}
	if (access(kbu_path, X_OK) == 0) {
		RUN(help_and_version);
		RUN(errors_are_one_line_exit_2);
		RUN(commands_on_a_raw_image);
	} else {
		fprintf(stderr, "test_cli: %s missing: build it first (make unit does)\n", kbu_path);
		check_failed++;
	}
	RUN(parse_numbers);
	RUN(escape_makes_bytes_safe_and_never_splits_an_escape);
	RUN(parse_addresses_with_symbols);
	RUN(getopt_forms);
	RUN(stripped_kernel_without_map_has_no_symbols);
	fx_cleanup();
	CHECK_DONE("test_cli");
}
