/*
 * kbu serve against kbu's own GDB client: a two-CPU guest built here (each CPU
 * with its own page tables), served from a forked child on a UNIX socket. What
 * the client reads must be what the source holds: per-CPU registers and
 * translations, physical reads in QEMU's mode, error replies for memory that is
 * not there, the monitor's kbu commands, refusals for writes and resumes; the
 * plain mode offers none of the extensions. Then bytes no client sends.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "support.h"
#include "kbu/command.h"
#include "kbu/gdbrsp.h"
#include "kbu/mem.h"
#include "kbu/serve.h"

#define MEMSZ (4u << 20)
#define KERNBASE 0xffffffff80000000ull
#define CR3_A 0x1000u /* CPU 0: KERNBASE -> physical 0 */
#define CR3_B 0x5000u /* CPU 1: KERNBASE -> physical 2 MiB */

struct guest {
	uint8_t *mem;
};

static int g_read(void *ctx, enum kbu_space s, uint64_t a, void *buf, size_t n, struct kbu_err *err)
{
	struct guest *g = ctx;
	if (s != KBU_PHYS)
		return kbu_err_set(err, KBU_EUNSUPPORTED, "no virtual reads");
	if (a >= MEMSZ || n > MEMSZ - a)
		return kbu_err_set(err, KBU_EFAULT, "0x%llx is past the guest's memory",
				   (unsigned long long)a);
	memcpy(buf, g->mem + a, n);
	return 0;
}

static int g_ncpus(void *ctx) { (void)ctx; return 2; }

static int g_regs(void *ctx, int cpu, struct kbu_regs *r, struct kbu_err *err)
{
	(void)ctx;
	if (cpu < 0 || cpu > 1)
		return kbu_err_set(err, KBU_EINVAL, "no CPU %d", cpu);
	memset(r, 0, sizeof *r);
	/* A QEMU dump: no EFER, long mode from the 64-bit state. */
	r->have = KBU_HAVE_GPR | KBU_HAVE_SEG | KBU_HAVE_SEGBASE | KBU_HAVE_CR | KBU_HAVE_DT;
	r->bits = 64;
	r->rip = KERNBASE + 0x1234 + (uint64_t)cpu;
	r->rsp = KERNBASE + 0x8000;
	r->rax = 0x1111111111111111ull * (uint64_t)(cpu + 1);
	r->r15 = 0xf15;
	r->rflags = 0x46;
	r->cs = 8;
	r->ss = r->ds = r->es = 0x10;
	r->fs_base = 0xf5000 + (uint64_t)cpu;
	r->cr0 = 0x80000011;
	r->cr3 = cpu ? CR3_B : CR3_A;
	r->cr4 = 0x20;
	r->gdt_base = KERNBASE + 0x2220;
	r->gdt_limit = 0x17;
	r->idt_base = KERNBASE + 0x4580;
	r->idt_limit = 0x1ff;
	return 0;
}

static int g_ranges(void *ctx, uint64_t *start, uint64_t *end, int max)
{
	(void)ctx;
	if (max < 1)
		return 0;
	start[0] = 0;
	end[0] = MEMSZ;
	return 1;
}

static void g_close(void *ctx)
{
	struct guest *g = ctx;
	free(g->mem);
	free(g);
}

static const struct kbu_mem_ops guest_ops = {
	.kind = "core", .read = g_read, .ncpus = g_ncpus, .regs = g_regs, .ranges = g_ranges,
	.close = g_close,
};

/* Two 4-level hierarchies mapping KERNBASE with 2 MiB pages onto base. */
static void map_kernbase(uint8_t *mem, uint64_t cr3, uint64_t base)
{
	uint64_t pdpt = cr3 + 0x1000, pd = cr3 + 0x2000;
	put_le(mem + cr3 + 511 * 8, pdpt | 3, 8);
	put_le(mem + pdpt + 510 * 8, pd | 3, 8);
	put_le(mem + pd, base | 0x83, 8);
}

static struct kbu_ctx *guest_ctx(void)
{
	struct guest *g = calloc(1, sizeof *g);
	g->mem = calloc(1, MEMSZ);
	map_kernbase(g->mem, CR3_A, 0);
	map_kernbase(g->mem, CR3_B, 0x200000);
	memcpy(g->mem + 0x100, "phys-hello", 10);
	memcpy(g->mem + 0x200100, "shifted!!!", 10);
	struct kbu_err e;
	struct kbu_ctx *ctx = kbu_ctx_new();
	kbu_ctx_set_mem(ctx, kbu_mem_new(&guest_ops, g, &e));
	return ctx;
}

struct server {
	pid_t pid;
	char path[108];
};

/* A child serving sessions on a UNIX socket until killed. */
static struct server serve_start(int plain)
{
	struct server s = {-1, ""};
	snprintf(s.path, sizeof s.path, "/tmp/kbu-serve-test-%d-%d.sock", (int)getpid(), plain);
	unlink(s.path);
	int ls = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, s.path, strlen(s.path) + 1);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 4))
		return s;
	s.pid = fork();
	if (s.pid == 0) {
		struct kbu_ctx *ctx = guest_ctx();
		struct kbu_serve_opts o = {.plain = plain};
		for (;;) {
			int fd = accept(ls, NULL, NULL);
			if (fd < 0)
				_exit(1);
			struct kbu_err e;
			kbu_serve_session(ctx, &o, fd, fd, NULL, &e);
			close(fd);
		}
	}
	close(ls);
	return s;
}

static void serve_end(struct server s)
{
	if (s.pid > 0) {
		kill(s.pid, SIGKILL);
		waitpid(s.pid, NULL, 0);
	}
	unlink(s.path);
}

static char *request(struct kbu_gdb *g, const char *pkt)
{
	char *r = NULL;
	struct kbu_err e = {0};
	if (kbu_gdb_request(g, pkt, &r, NULL, &e)) {
		fprintf(stderr, "%s: %s\n", pkt, e.msg);
		return strdup("(failed)");
	}
	return r;
}

TEST(the_client_reads_what_the_source_holds)
{
	struct server s = serve_start(0);
	CHECK(s.pid > 0);
	struct kbu_err e = {0};
	struct kbu_gdb *g = NULL;
	struct kbu_mem *m = kbu_mem_open_gdb_ex(s.path, NULL, &g, &e);
	CHECK(m != NULL);
	if (!m) {
		fprintf(stderr, "%s\n", e.msg);
		serve_end(s);
		return;
	}
	CHECK(kbu_gdb_is_qemu(g));
	CHECK(kbu_gdb_no_ack(g));
	CHECK_EQ_U64(kbu_mem_ncpus(m), 2);
	for (int cpu = 0; cpu < 2; cpu++) {
		struct kbu_regs r, want;
		CHECK(kbu_mem_regs(m, cpu, &r, &e) == 0);
		g_regs(NULL, cpu, &want, &e);
		CHECK_EQ_U64(r.rip, want.rip);
		CHECK_EQ_U64(r.rax, want.rax);
		CHECK_EQ_U64(r.r15, want.r15);
		CHECK_EQ_U64(r.cr3, want.cr3);
		CHECK_EQ_U64(r.fs_base, want.fs_base);
		CHECK_EQ_U64(r.gdt_base, want.gdt_base); /* from "info registers -a" */
		CHECK_EQ_U64(r.idt_limit, want.idt_limit);
		CHECK(r.have & KBU_HAVE_CR);
		CHECK(r.have & KBU_HAVE_DT);
		CHECK(!(r.have & KBU_HAVE_EFER)); /* unknown stays unknown, never 0 */
	}
	char buf[16] = {0};
	CHECK(kbu_mem_read(m, KBU_VIRT, KERNBASE + 0x100, buf, 10, &e) == 0);
	CHECK_STR(buf, "phys-hello");
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x200100, buf, 10, &e) == 0);
	CHECK_STR(buf, "shifted!!!");
	CHECK(kbu_mem_read(m, KBU_PHYS, MEMSZ + 0x1000, buf, 10, &e) != 0); /* not zeros */
	CHECK_EQ_U64(e.code, KBU_EFAULT);
	uint64_t st[4], en[4];
	CHECK_EQ_U64(kbu_mem_ranges(m, st, en, 4), 1); /* from "info mtree -f" */
	CHECK_EQ_U64(en[0], MEMSZ);
	/* Each thread translates through its own CR3. */
	char *r = request(g, "Hg2");
	CHECK_STR(r, "OK");
	free(r);
	r = request(g, "mffffffff80000100,a");
	CHECK_STR(r, "736869667465642121"  "21");
	free(r);
	r = request(g, "mffffffff90000000,10"); /* not mapped */
	CHECK_STR(r, "E14");
	free(r);
	r = request(g, "Hg1");
	free(r);
	/* Read-only, said so. */
	CHECK(kbu_mem_write(m, KBU_PHYS, 0x100, "x", 1, &e) != 0);
	CHECK_CONTAINS(e.msg, "read-only");
	r = request(g, "c");
	CHECK_STR(r, "E.kbu serve: the target is read-only (core): resuming is refused");
	free(r);
	/* The monitor: kbu's commands on the served memory. */
	char *text = NULL;
	CHECK(kbu_mem_monitor(m, "kbu x -p 0x100 16", &text, &e) == 0);
	CHECK_CONTAINS(text, "|phys-hello......|");
	free(text);
	text = NULL;
	CHECK(kbu_mem_monitor(m, "kbu nosuch", &text, &e) != 0);
	CHECK_CONTAINS(e.msg, "kbu nosuch: unknown command");
	CHECK(kbu_mem_monitor(m, "help", &text, &e) == 0);
	CHECK_CONTAINS(text, "read-only");
	free(text);
	kbu_mem_close(m);
	serve_end(s);
}

TEST(plain_mode_offers_only_standard_packets)
{
	struct server s = serve_start(1);
	struct kbu_err e = {0};
	struct kbu_gdb *g = NULL;
	struct kbu_mem *m = kbu_mem_open_gdb_ex(s.path, NULL, &g, &e);
	CHECK(m != NULL);
	if (!m) {
		serve_end(s);
		return;
	}
	CHECK(!kbu_gdb_is_qemu(g));
	struct kbu_regs r;
	CHECK(kbu_mem_regs(m, 1, &r, &e) == 0);
	CHECK_EQ_U64(r.rip, KERNBASE + 0x1235);
	CHECK(!(r.have & KBU_HAVE_CR)); /* no control registers in a plain description */
	char buf[16] = {0};
	CHECK(kbu_mem_read(m, KBU_VIRT, KERNBASE + 0x100, buf, 10, &e) == 0);
	CHECK_STR(buf, "phys-hello");
	/* No physical mode, no kernel to prove a direct map with: it says so. */
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x100, buf, 10, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_EUNSUPPORTED);
	CHECK_CONTAINS(e.msg, "give --kernel ELF");
	char *text = NULL;
	CHECK(kbu_mem_monitor(m, "kbu os", &text, &e) != 0);
	CHECK_CONTAINS(e.msg, "has no monitor");
	char *x = request(g, "qXfer:features:read:target.xml:0,1000");
	CHECK(x && strstr(x, "64bit-core.xml") && !strstr(x, "kbu-x86-sys.xml"));
	free(x);
	kbu_mem_close(m);
	serve_end(s);
}

/* Writes raw bytes to a session and returns what came back (NUL-terminated). */
static char *raw_session(const char *bytes, size_t n)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return NULL;
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		struct kbu_ctx *ctx = guest_ctx();
		struct kbu_serve_opts o = {0};
		struct kbu_err e;
		int rc = kbu_serve_session(ctx, &o, sv[1], sv[1], NULL, &e);
		kbu_ctx_free(ctx);
		_exit(rc == 0 ? 0 : 3);
	}
	close(sv[1]);
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(sv[0], bytes + off, n - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	shutdown(sv[0], SHUT_WR);
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap + 1);
	ssize_t k;
	while (len < cap && (k = read(sv[0], out + len, cap - len)) > 0)
		len += (size_t)k;
	out[len] = '\0';
	close(sv[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0); /* ASan reports exit otherwise */
	return out;
}

TEST(bytes_no_client_sends_are_survived)
{
	/* A bad checksum gets '-'; the packet sent again is answered. */
	static const char nak[] = "$?#00$?#3f";
	char *out = raw_session(nak, sizeof nak - 1);
	CHECK(out && strncmp(out, "-+$T05thread:1;#", 16) == 0);
	free(out);
	/* Odd hex, huge lengths, truncated packets, escapes at the end, a request
	 * longer than the limit: every one answered or dropped, none crashes. */
	static const char *const odd[] = {
		"$m12#", "$mffffffffffffffff,ffffffffffffffff#", "$p123456789#", "$Hgzz#",
		"$qXfer:features:read:../../etc/passwd:0,10#", "$qRcmd,6b6#", "$qRcmd,6b627520#",
		"$}#", "$T0#", "$qThreadExtraInfo,99#", "$g extra#"};
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		char pkt[128];
		const char *hash = strchr(odd[i], '#');
		unsigned sum = kbu_rsp_checksum(odd[i] + 1, (size_t)(hash - odd[i] - 1));
		int n = snprintf(pkt, sizeof pkt, "%.*s%02x", (int)(hash - odd[i] + 1), odd[i], sum);
		out = raw_session(pkt, (size_t)n);
		CHECK(out && out[0] == '+');
		free(out);
	}
	size_t big = 300 * 1024;
	char *huge = malloc(big + 8);
	huge[0] = '$';
	memset(huge + 1, 'm', big);
	memcpy(huge + 1 + big, "#00", 3);
	out = raw_session(huge, big + 4);
	CHECK(out && out[0] == '-');
	free(out);
	free(huge);
	uint64_t x = 0x2545f4914f6cdd1dull;
	char junk[512];
	for (int round = 0; round < 50; round++) {
		for (size_t i = 0; i < sizeof junk; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			static const char pool[] = "$#}*mgpqHTcsMZ0123456789abcdef,:-+";
			junk[i] = (x >> 40) & 1 ? pool[(x >> 20) % (sizeof pool - 1)] : (char)(x >> 24);
		}
		free(raw_session(junk, sizeof junk));
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(the_client_reads_what_the_source_holds);
	RUN(plain_mode_offers_only_standard_packets);
	RUN(bytes_no_client_sends_are_survived);
	CHECK_DONE("test_serve");
}
