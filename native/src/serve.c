/*
 * kbu serve: a read-only GDB remote stub over a kbu memory source (see
 * kbu/serve.h). The packet framing is rsp.c's, the register layout and its
 * target description gdb_tdesc.c's, QEMU's monitor texts gdb_qemu.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gdb_qemu.h"
#include "gdb_tdesc.h"
#include "kbu/command.h"
#include "kbu/mem.h"
#include "kbu/paging.h"
#include "kbu/report.h"
#include "kbu/serve.h"
#include "kbu/symbols.h"
#include "kbu/util.h"
#include "rsp.h"

#define SERVE_PACKET_SIZE 0x4000u /* what we offer: GDB reads up to ~8 KiB per 'm' */
#define SERVE_MAX_IN (256u * 1024)  /* a request longer than this is not GDB's */
#define TLB_SIZE 256u
#define PAGE 4096ull
#define MONITOR_ARGS 64

struct tlb_entry {
	uint64_t cr3, vpage, ppage;
	int valid;
};

struct cpu_state {
	int loaded; /* asked the source */
	int ok;     /* it answered */
	struct kbu_regs r;
};

struct session {
	struct kbu_ctx *ctx;
	struct kbu_mem *m;
	struct kbu_serve_opts o;
	struct kbu_serve_stats *st;
	int in_fd, out_fd;
	int ack;
	int ncpus;
	int gcpu;      /* the thread Hg selected: registers and virtual reads */
	int phys_mode; /* Qqemu.PhyMemMode */
	int panic_cpu; /* the vCPU whose stack shows panic(), -1 if none does */
	int done;
	struct cpu_state *cpus;
	struct tlb_entry tlb[TLB_SIZE];
	unsigned char in[16384];
	size_t in_pos, in_len;
	struct rbuf raw;   /* a request as received */
	struct rbuf req;   /* ... decoded */
	struct rbuf reply; /* the reply being built */
	struct rbuf frame; /* the last reply framed, for a '-' */
	unsigned char *data;
};

/* ---- I/O ---- */

static int in_getc(struct session *s, struct kbu_err *err)
{
	while (s->in_pos >= s->in_len) {
		ssize_t n = read(s->in_fd, s->in, sizeof s->in);
		if (n == 0)
			return -2; /* the client went away: the end of the session */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNRESET)
				return -2;
			return kbu_err_set(err, KBU_EIO, "kbu serve: reading from the client: %s",
					   strerror(errno));
		}
		s->in_pos = 0;
		s->in_len = (size_t)n;
	}
	return s->in[s->in_pos++];
}

static int out_write(struct session *s, const char *p, size_t n, struct kbu_err *err)
{
	while (n > 0) {
		ssize_t w = write(s->out_fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (errno == EPIPE || errno == ECONNRESET) {
				s->done = 1; /* gone: nothing left to tell it */
				return 0;
			}
			return kbu_err_set(err, KBU_EIO, "kbu serve: writing to the client: %s",
					   strerror(errno));
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_reply(struct session *s, struct kbu_err *err);
static int reply_error(struct session *s, const char *text, struct kbu_err *err);

/*
 * The next request, decoded into s->req: 1, or 0 when the client went away,
 * -1 on an I/O error. Acks and '-' (resend the last reply) are handled here;
 * a request with a bad checksum gets a '-' in ack mode and is dropped.
 */
static int recv_request(struct session *s, struct kbu_err *err)
{
	for (;;) {
		int c;
		do {
			c = in_getc(s, err);
			if (c == -2)
				return 0;
			if (c < 0)
				return -1;
			if (c == '-' && s->ack && s->frame.len && out_write(s, s->frame.p, s->frame.len, err))
				return -1;
			/* '+' acks, 0x03 interrupts (the target never runs), noise: ignored */
		} while (c != '$');
		s->raw.len = 0;
		int overflow = 0;
		while ((c = in_getc(s, err)) != '#') {
			if (c == -2)
				return 0;
			if (c < 0)
				return -1;
			if (c == '$') { /* a new start: the previous request was cut */
				s->raw.len = 0;
				overflow = 0;
				continue;
			}
			if (s->raw.len >= SERVE_MAX_IN) {
				overflow = 1;
				continue;
			}
			char ch = (char)c;
			if (rbuf_put(&s->raw, &ch, 1, err))
				return -1;
		}
		int h1 = in_getc(s, err), h2 = h1 >= 0 ? in_getc(s, err) : h1;
		if (h1 == -2 || h2 == -2)
			return 0;
		if (h1 < 0 || h2 < 0)
			return -1;
		unsigned sum = kbu_rsp_checksum(s->raw.p ? s->raw.p : "", s->raw.len);
		int good = kbu_hex_digit(h1) >= 0 && kbu_hex_digit(h2) >= 0 &&
			   (unsigned)(kbu_hex_digit(h1) << 4 | kbu_hex_digit(h2)) == sum && !overflow;
		if (s->ack && out_write(s, good ? "+" : "-", 1, err))
			return -1;
		if (!good && overflow && !s->ack) {
			/* Without acks nothing would tell the client: answer it. */
			char msg[96];
			snprintf(msg, sizeof msg, "kbu serve: a request longer than %u bytes", SERVE_MAX_IN);
			if (reply_error(s, msg, err) || send_reply(s, err))
				return -1;
		}
		if (!good)
			continue;
		s->req.len = 0;
		if (rbuf_reserve(&s->req, s->raw.len, err))
			return -1;
		struct kbu_err de = {0};
		if (kbu_rsp_decode(s->raw.p ? s->raw.p : "", s->raw.len, s->req.p, s->raw.len + 1,
				   &s->req.len, &de))
			s->req.len = 0; /* undecodable: answered as an unknown packet */
		s->req.p[s->req.len] = '\0';
		return 1;
	}
}

static int send_reply(struct session *s, struct kbu_err *err)
{
	s->frame.len = 0;
	if (rsp_frame(&s->frame, s->reply.p ? s->reply.p : "", s->reply.len, err))
		return -1;
	s->st->packets++;
	return out_write(s, s->frame.p, s->frame.len, err);
}

static int reply_str(struct session *s, const char *text, struct kbu_err *err)
{
	s->reply.len = 0;
	return rbuf_put(&s->reply, text, strlen(text), err);
}

static int reply_hex(struct session *s, const void *p, size_t n, struct kbu_err *err)
{
	if (rbuf_reserve(&s->reply, 2 * n, err))
		return -1;
	rsp_hex_encode(p, n, s->reply.p + s->reply.len);
	s->reply.len += 2 * n;
	return 0;
}

/* "E.<text>": an error with words, as GDB's protocol allows. */
static int reply_error(struct session *s, const char *text, struct kbu_err *err)
{
	s->reply.len = 0;
	char shown[400];
	kbu_escape(text, strlen(text), NULL, shown, sizeof shown);
	return rbuf_put(&s->reply, "E.", 2, err) || rbuf_put(&s->reply, shown, strlen(shown), err);
}

/* Console output ("O<hex>") in pieces that fit a packet. */
static int send_output(struct session *s, const char *text, size_t n, struct kbu_err *err)
{
	const size_t chunk = SERVE_PACKET_SIZE / 2 - 8;
	for (size_t off = 0; off < n && !s->done; off += chunk) {
		size_t k = n - off < chunk ? n - off : chunk;
		s->reply.len = 0;
		if (rbuf_put(&s->reply, "O", 1, err) || reply_hex(s, text + off, k, err) ||
		    send_reply(s, err))
			return -1;
	}
	return 0;
}

/* ---- the target ---- */

static const struct kbu_regs *cpu_regs(struct session *s, int cpu)
{
	if (cpu < 0 || cpu >= s->ncpus)
		return NULL;
	struct cpu_state *c = &s->cpus[cpu];
	if (!c->loaded) {
		struct kbu_err e;
		c->loaded = 1;
		c->ok = kbu_mem_regs(s->m, cpu, &c->r, &e) == 0;
		if (!c->ok)
			memset(&c->r, 0, sizeof c->r);
	}
	return c->ok ? &c->r : NULL;
}

static int parse_hex_u64(const char *p, const char **end, uint64_t *v)
{
	uint64_t x = 0;
	int n = 0, d;
	while ((d = kbu_hex_digit((unsigned char)p[n])) >= 0) {
		if (n == 16)
			return -1;
		x = x << 4 | (uint64_t)d;
		n++;
	}
	if (n == 0)
		return -1;
	*v = x;
	*end = p + n;
	return 0;
}

/* A thread id as GDB sends it ("1", "p1.1", "-1", "0"): the CPU, -1 for all/any. */
static int thread_cpu(struct session *s, const char *p, int *cpu)
{
	if (*p == 'p') {
		const char *dot = strchr(p, '.');
		if (!dot)
			return -1;
		p = dot + 1;
	}
	if (strcmp(p, "-1") == 0 || strcmp(p, "0") == 0) {
		*cpu = -1;
		return 0;
	}
	uint64_t v;
	const char *end;
	if (parse_hex_u64(p, &end, &v) || *end || v == 0 || v > (uint64_t)s->ncpus)
		return -1;
	*cpu = (int)v - 1;
	return 0;
}

/* Physical address of va for a CPU: 0, or -1 when it is not mapped or the
 * CPU's translation is not known. */
static int translate(struct session *s, int cpu, uint64_t va, uint64_t *pa, struct kbu_err *err)
{
	const struct kbu_regs *r = cpu_regs(s, cpu);
	enum kbu_paging_mode mode = r ? kbu_regs_paging_mode(r) : KBU_PG_UNKNOWN;
	uint64_t cr3 = r ? r->cr3 : 0;
	if (mode == KBU_PG_UNKNOWN && s->o.have_cr3) {
		mode = KBU_PG_4LEVEL;
		cr3 = s->o.cr3;
	}
	if (mode == KBU_PG_UNKNOWN)
		return kbu_err_set(err, KBU_EUNSUPPORTED, "CPU %d: no control registers to translate with",
				   cpu);
	if (mode == KBU_PG_OFF) {
		*pa = va;
		return 0;
	}
	uint64_t vpage = va & ~(PAGE - 1);
	struct tlb_entry *t = &s->tlb[((vpage >> 12) ^ (cr3 >> 12)) & (TLB_SIZE - 1)];
	if (t->valid && t->vpage == vpage && t->cr3 == cr3) {
		*pa = t->ppage | (va & (PAGE - 1));
		return 0;
	}
	struct kbu_walk w;
	if (kbu_vtop(s->m, mode, cr3, va, &w, err) < 0)
		return -1;
	if (!w.present)
		return kbu_err_set(err, KBU_EFAULT, "0x%" PRIx64 " is not mapped", va);
	t->valid = 1;
	t->cr3 = cr3;
	t->vpage = vpage;
	t->ppage = w.pa & ~(PAGE - 1);
	*pa = w.pa;
	return 0;
}

/* As many bytes at addr as can be read, up to len (the reply may be short),
 * virtual addresses through CPU cpu's translation. */
static size_t read_cpu(struct session *s, int cpu, uint64_t addr, unsigned char *out, size_t len,
		       struct kbu_err *err)
{
	size_t done = 0;
	while (done < len) {
		uint64_t a = addr + done;
		size_t n = (size_t)(PAGE - (a & (PAGE - 1)));
		if (n > len - done)
			n = len - done;
		int rc;
		if (s->phys_mode) {
			rc = kbu_mem_read(s->m, KBU_PHYS, a, out + done, n, err);
		} else {
			uint64_t pa = 0;
			rc = translate(s, cpu, a, &pa, err);
			if (rc < 0 && err->code == KBU_EUNSUPPORTED)
				/* No registers to walk with: a source that translates itself may. */
				rc = kbu_mem_read(s->m, KBU_VIRT, a, out + done, n, err);
			else if (rc == 0)
				rc = kbu_mem_read(s->m, KBU_PHYS, pa, out + done, n, err);
		}
		if (rc < 0)
			break;
		done += n;
	}
	return done;
}

static size_t read_guest(struct session *s, uint64_t addr, unsigned char *out, size_t len,
			 struct kbu_err *err)
{
	return read_cpu(s, s->gcpu >= 0 ? s->gcpu : 0, addr, out, len, err);
}

/* An address inside panic() or vpanic() past its first byte: a return address
 * into it (or a RIP in it). */
static int in_panic(const struct kbu_symtab *st, uint64_t a)
{
	uint64_t off = 0;
	const struct kbu_sym *sym = kbu_sym_by_addr(st, a, &off);
	return sym && off > 0 && (!sym->size || off < sym->size) &&
	       (strcmp(sym->name, "panic") == 0 || strcmp(sym->name, "vpanic") == 0);
}

/*
 * The vCPU that panicked: the one with a return address into panic() (or
 * vpanic()) nearest the top of its stack, within 16 KiB of RSP, or its RIP
 * in it. -1 when no CPU shows one or there are no symbols. GDB then starts on
 * that thread, so `bt` is the panic's.
 */
static int panicking_cpu(struct session *s)
{
	const struct kbu_symtab *st = s->ctx->syms;
	if (!st)
		return -1;
	int best = -1;
	uint64_t best_dist = UINT64_MAX;
	for (int cpu = 0; cpu < s->ncpus; cpu++) {
		const struct kbu_regs *r = cpu_regs(s, cpu);
		if (!r || !(r->have & KBU_HAVE_GPR) || r->bits != 64)
			continue;
		if (in_panic(st, r->rip)) {
			if (best_dist > 0)
				best = cpu, best_dist = 0;
			continue;
		}
		for (uint64_t off = 0; off < 16384 && off < best_dist; off += PAGE) {
			struct kbu_err e = {0};
			uint64_t at = r->rsp + off;
			size_t n = read_cpu(s, cpu, at, s->data, (size_t)(PAGE - (at & (PAGE - 1))), &e);
			for (size_t k = 0; k + 8 <= n && off + k < best_dist; k += 8) {
				uint64_t w;
				memcpy(&w, s->data + k, 8);
				if (in_panic(st, w)) {
					best = cpu;
					best_dist = off + k;
					break;
				}
			}
			if (n < (size_t)(PAGE - (at & (PAGE - 1))))
				break;
		}
	}
	return best;
}

static int handle_m(struct session *s, struct kbu_err *err)
{
	uint64_t addr, len;
	const char *p;
	if (parse_hex_u64(s->req.p + 1, &p, &addr) || *p != ',' || parse_hex_u64(p + 1, &p, &len) || *p)
		return reply_str(s, "E16", err);
	const uint64_t max = (SERVE_PACKET_SIZE - 8) / 2;
	if (len > max)
		len = max; /* a short reply: the client asks again for the rest */
	if (len == 0)
		return reply_str(s, "", err) ;
	struct kbu_err re = {0};
	size_t got = read_guest(s, addr, s->data, (size_t)len, &re);
	if (got == 0)
		return reply_str(s, "E14", err);
	s->st->bytes_read += got;
	s->reply.len = 0;
	return reply_hex(s, s->data, got, err);
}

static int handle_g(struct session *s, struct kbu_err *err)
{
	static const struct kbu_regs none;
	const struct kbu_regs *r = cpu_regs(s, s->gcpu >= 0 ? s->gcpu : 0);
	s->reply.len = 0;
	return gdb_tdesc_serve_g(s->o.plain, r ? r : &none, &s->reply, err);
}

static int handle_p(struct session *s, struct kbu_err *err)
{
	static const struct kbu_regs none;
	uint64_t n;
	const char *end;
	if (parse_hex_u64(s->req.p + 1, &end, &n) || *end || n > 0xffff)
		return reply_str(s, "E16", err);
	const struct kbu_regs *r = cpu_regs(s, s->gcpu >= 0 ? s->gcpu : 0);
	s->reply.len = 0;
	struct kbu_err pe = {0};
	if (gdb_tdesc_serve_p(s->o.plain, (unsigned)n, r ? r : &none, &s->reply, &pe) < 0)
		return pe.code == KBU_ENOTFOUND ? reply_str(s, "E45", err) : -1;
	return 0;
}

/* qXfer:features:read:ANNEX:OFF,LEN */
static int handle_xfer(struct session *s, const char *args, struct kbu_err *err)
{
	char annex[64];
	const char *colon = strchr(args, ':');
	if (!colon || (size_t)(colon - args) >= sizeof annex)
		return reply_str(s, "E00", err);
	memcpy(annex, args, (size_t)(colon - args));
	annex[colon - args] = '\0';
	uint64_t off, len;
	const char *p;
	if (parse_hex_u64(colon + 1, &p, &off) || *p != ',' || parse_hex_u64(p + 1, &p, &len) || *p)
		return reply_str(s, "E00", err);
	struct rbuf doc = {0};
	struct kbu_err de = {0};
	if (gdb_tdesc_serve_xml(s->o.plain, annex, &doc, &de) < 0) {
		rbuf_free(&doc);
		return de.code == KBU_ENOTFOUND ? reply_str(s, "E00", err) : -1;
	}
	if (off > doc.len)
		off = doc.len;
	if (len > SERVE_PACKET_SIZE - 16)
		len = SERVE_PACKET_SIZE - 16;
	if (len > doc.len - off)
		len = doc.len - off;
	s->reply.len = 0;
	int rc = rbuf_put(&s->reply, off + len >= doc.len ? "l" : "m", 1, err) ||
		 rbuf_put(&s->reply, doc.p + off, (size_t)len, err);
	rbuf_free(&doc);
	return rc ? -1 : 0;
}

static int handle_thread_list(struct session *s, int first, struct kbu_err *err)
{
	s->reply.len = 0;
	if (!first)
		return reply_str(s, "l", err);
	if (rbuf_put(&s->reply, "m", 1, err))
		return -1;
	for (int i = 0; i < s->ncpus; i++) {
		char t[24];
		int n = snprintf(t, sizeof t, "%s%x", i ? "," : "", i + 1);
		if (rbuf_put(&s->reply, t, (size_t)n, err))
			return -1;
	}
	return 0;
}

static int handle_extra_info(struct session *s, const char *tid, struct kbu_err *err)
{
	int cpu;
	if (thread_cpu(s, tid, &cpu) || cpu < 0)
		return reply_str(s, "E01", err);
	char text[96];
	const struct kbu_regs *r = cpu_regs(s, cpu);
	snprintf(text, sizeof text, "CPU %d%s%s", cpu, r ? "" : ", no registers",
		 cpu == s->panic_cpu ? ", in panic" : "");
	s->reply.len = 0;
	return reply_hex(s, text, strlen(text), err);
}

/* Splits a monitor command line into words; quotes group, backslash escapes. */
static int split_words(char *line, char **argv, int max)
{
	int n = 0;
	char *w = line, *r = line;
	while (*r) {
		while (*r == ' ' || *r == '\t' || *r == '\n')
			r++;
		if (!*r)
			break;
		if (n == max)
			return -1;
		argv[n++] = w;
		char q = 0;
		while (*r && (q || (*r != ' ' && *r != '\t' && *r != '\n'))) {
			if (!q && (*r == '\'' || *r == '"')) {
				q = *r++;
			} else if (q && *r == q) {
				q = 0;
				r++;
			} else if (*r == '\\' && r[1]) {
				*w++ = r[1];
				r += 2;
			} else {
				*w++ = *r++;
			}
		}
		if (*r)
			r++;
		*w++ = '\0';
	}
	return n;
}

static const char monitor_help[] =
	"kbu serve monitor commands:\n"
	"  kbu [--json] COMMAND [ARGS]  a kbu command on the served memory (monitor kbu --help)\n"
	"  info registers -a            every CPU's registers, in QEMU's format\n"
	"  info mtree -f                the physical ranges the source has, in QEMU's format\n"
	"  help                         this text\n"
	"The target is read-only: no writes, breakpoints, stepping or resuming.\n";

static int monitor_kbu(struct session *s, char **argv, int argc, struct kbu_err *err)
{
	int json = 0;
	while (argc > 0 && strcmp(argv[0], "--json") == 0) {
		json = 1;
		argv++;
		argc--;
	}
	if (argc == 0 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "help") == 0) {
		const struct kbu_command *list[128];
		size_t n = kbu_command_list(list, 128);
		struct rbuf t = {0};
		int rc = rbuf_put(&t, "kbu commands (monitor kbu COMMAND --help for one):\n", 51, err);
		for (size_t i = 0; i < n && i < 128 && rc == 0; i++) {
			char line[256];
			int k = snprintf(line, sizeof line, "  %-12s %s\n", list[i]->name,
					 list[i]->summary ? list[i]->summary : "");
			rc = rbuf_put(&t, line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1, err);
		}
		rc = rc || send_output(s, t.p, t.len, err) || reply_str(s, "OK", err);
		rbuf_free(&t);
		return rc ? -1 : 0;
	}
	if (strcmp(argv[0], "serve") == 0) {
		const char msg[] = "kbu serve: already serving\n";
		return send_output(s, msg, sizeof msg - 1, err) || reply_str(s, "E01", err) ? -1 : 0;
	}
	char *out = NULL;
	struct kbu_err ce = {0};
	int status = kbu_run(s->ctx, argc, argv, json, &out, &ce);
	int rc = 0;
	if (out)
		rc = send_output(s, out, strlen(out), err);
	kbu_free(out);
	if (rc)
		return -1;
	if (status == 2) {
		char line[700];
		char shown[600];
		kbu_escape(ce.msg, strlen(ce.msg), NULL, shown, sizeof shown);
		int k = snprintf(line, sizeof line, "kbu %s: %s\n", argv[0], shown[0] ? shown : "failed");
		return send_output(s, line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1, err) ||
			       reply_str(s, "E01", err) ? -1 : 0;
	}
	return reply_str(s, "OK", err);
}

static int monitor_text(struct session *s, int (*fill)(struct session *, struct rbuf *, struct kbu_err *),
			struct kbu_err *err)
{
	struct rbuf t = {0};
	int rc = fill(s, &t, err) || send_output(s, t.p ? t.p : "", t.len, err) ||
		 reply_str(s, "OK", err);
	rbuf_free(&t);
	return rc ? -1 : 0;
}

static int fill_registers(struct session *s, struct rbuf *t, struct kbu_err *err)
{
	for (int cpu = 0; cpu < s->ncpus; cpu++) {
		const struct kbu_regs *r = cpu_regs(s, cpu);
		static const struct kbu_regs none;
		if (gdbq_format_info_registers(cpu, r ? r : &none, t, err) || rbuf_put(t, "\n", 1, err))
			return -1;
	}
	return 0;
}

static int fill_mtree(struct session *s, struct rbuf *t, struct kbu_err *err)
{
	uint64_t st[64], en[64];
	int n = kbu_mem_ranges(s->m, st, en, 64);
	return gdbq_format_mtree(st, en, n, t, err);
}

static int handle_rcmd(struct session *s, const char *hex, struct kbu_err *err)
{
	struct rbuf cmd = {0};
	struct kbu_err he = {0};
	if (rsp_hex_text(hex, strlen(hex), &cmd, &he) || !cmd.p) {
		rbuf_free(&cmd);
		return reply_str(s, "E16", err);
	}
	char *argv[MONITOR_ARGS + 1];
	int argc = split_words(cmd.p, argv, MONITOR_ARGS);
	int rc;
	if (argc < 0) {
		const char msg[] = "kbu serve: too many words in the monitor command\n";
		rc = send_output(s, msg, sizeof msg - 1, err) || reply_str(s, "E07", err) ? -1 : 0;
	} else if (argc == 0 || strcmp(argv[0], "help") == 0) {
		rc = send_output(s, monitor_help, sizeof monitor_help - 1, err) || reply_str(s, "OK", err)
			     ? -1 : 0;
	} else if (strcmp(argv[0], "kbu") == 0) {
		argv[argc] = NULL;
		rc = monitor_kbu(s, argv + 1, argc - 1, err);
	} else if (argc == 3 && strcmp(argv[0], "info") == 0 && strcmp(argv[1], "registers") == 0 &&
		   strcmp(argv[2], "-a") == 0) {
		rc = monitor_text(s, fill_registers, err);
	} else if (argc == 3 && strcmp(argv[0], "info") == 0 && strcmp(argv[1], "mtree") == 0 &&
		   strcmp(argv[2], "-f") == 0) {
		rc = monitor_text(s, fill_mtree, err);
	} else {
		char line[300], shown[200];
		kbu_escape(argv[0], strlen(argv[0]), NULL, shown, sizeof shown);
		int k = snprintf(line, sizeof line,
				 "kbu serve: no monitor command '%s' (monitor help lists them)\n", shown);
		rc = send_output(s, line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1, err) ||
			     reply_str(s, "E01", err) ? -1 : 0;
	}
	rbuf_free(&cmd);
	return rc;
}

static int refuse(struct session *s, const char *what, struct kbu_err *err)
{
	char msg[200];
	snprintf(msg, sizeof msg, "kbu serve: the target is read-only (%s): %s is refused",
		 kbu_mem_kind(s->m), what);
	s->st->refused++;
	return reply_error(s, msg, err);
}

static int stop_reply(struct session *s, struct kbu_err *err)
{
	char t[48];
	snprintf(t, sizeof t, "T05thread:%x;", s->gcpu + 1);
	return reply_str(s, t, err);
}

static int starts(const char *p, const char *prefix) { return strncmp(p, prefix, strlen(prefix)) == 0; }

/* One request; the reply is left in s->reply (empty: "not supported"). */
static int dispatch(struct session *s, struct kbu_err *err)
{
	const char *p = s->req.p;
	s->reply.len = 0;
	switch (p[0]) {
	case '?':
		return stop_reply(s, err);
	case 'g':
		return p[1] ? reply_str(s, "", err) : handle_g(s, err);
	case 'p':
		return handle_p(s, err);
	case 'm':
		return handle_m(s, err);
	case 'H': {
		int cpu;
		if ((p[1] != 'g' && p[1] != 'c') || thread_cpu(s, p + 2, &cpu))
			return reply_str(s, "E01", err);
		if (p[1] == 'g' && cpu >= 0) /* "Hg0", "Hg-1": any thread, the current one will do */
			s->gcpu = cpu;
		return reply_str(s, "OK", err);
	}
	case 'T': {
		int cpu;
		return reply_str(s, thread_cpu(s, p + 1, &cpu) == 0 && cpu >= 0 ? "OK" : "E01", err);
	}
	case 'D':
		s->done = 1;
		return reply_str(s, "OK", err);
	case 'k':
		s->done = 1;
		return 1; /* no reply */
	case 'M':
	case 'X':
		return refuse(s, "writing memory", err);
	case 'G':
	case 'P':
		return refuse(s, "writing registers", err);
	case 'Z':
	case 'z':
		return refuse(s, "a breakpoint", err);
	case 'c':
	case 'C':
	case 's':
	case 'S':
	case 'i':
	case 'I':
		return refuse(s, "resuming", err);
	case 'v':
		if (starts(p, "vCont?") || starts(p, "vMustReplyEmpty") || starts(p, "vFile:"))
			return reply_str(s, "", err);
		if (starts(p, "vCont;") || starts(p, "vRun") || starts(p, "vAttach"))
			return refuse(s, "resuming", err);
		if (starts(p, "vKill")) {
			s->done = 1;
			return reply_str(s, "OK", err);
		}
		return reply_str(s, "", err);
	case 'q':
		if (starts(p, "qSupported")) {
			char f[160];
			snprintf(f, sizeof f, "PacketSize=%x;qXfer:features:read+;QStartNoAckMode+",
				 SERVE_PACKET_SIZE);
			return reply_str(s, f, err);
		}
		if (strcmp(p, "qfThreadInfo") == 0 || strcmp(p, "qsThreadInfo") == 0)
			return handle_thread_list(s, p[1] == 'f', err);
		if (strcmp(p, "qC") == 0) {
			char t[32];
			snprintf(t, sizeof t, "QC%x", s->gcpu + 1);
			return reply_str(s, t, err);
		}
		if (starts(p, "qAttached"))
			return reply_str(s, "1", err);
		if (starts(p, "qSymbol"))
			return reply_str(s, "OK", err);
		if (starts(p, "qThreadExtraInfo,"))
			return handle_extra_info(s, p + 17, err);
		if (starts(p, "qXfer:features:read:"))
			return handle_xfer(s, p + 20, err);
		if (!s->o.plain && strcmp(p, "qqemu.Supported") == 0)
			return reply_str(s, GDBQ_SUPPORTED, err);
		if (!s->o.plain && strcmp(p, "qqemu.PhyMemMode") == 0)
			return reply_str(s, s->phys_mode ? "1" : "0", err);
		if (!s->o.plain && strcmp(p, "qqemu.sstepbits") == 0)
			return reply_str(s, "ENABLE=1,NOIRQ=2,NOTIMER=4", err);
		if (!s->o.plain && strcmp(p, "qqemu.sstep") == 0)
			return reply_str(s, "0x7", err);
		if (!s->o.plain && starts(p, "qRcmd,"))
			return handle_rcmd(s, p + 6, err);
		return reply_str(s, "", err);
	case 'Q':
		if (strcmp(p, "QStartNoAckMode") == 0) {
			if (reply_str(s, "OK", err) || send_reply(s, err))
				return -1;
			s->ack = 0;
			return 1;
		}
		if (!s->o.plain && (strcmp(p, "Qqemu.PhyMemMode:1") == 0 ||
				    strcmp(p, "Qqemu.PhyMemMode:0") == 0)) {
			s->phys_mode = p[17] == '1';
			return reply_str(s, "OK", err);
		}
		if (!s->o.plain && starts(p, "Qqemu.sstep="))
			return refuse(s, "single-stepping", err);
		return reply_str(s, "", err);
	default:
		return reply_str(s, "", err);
	}
}

int kbu_serve_session(struct kbu_ctx *ctx, const struct kbu_serve_opts *opts, int in_fd,
		      int out_fd, struct kbu_serve_stats *stats, struct kbu_err *err)
{
	if (!ctx || !ctx->mem)
		return kbu_err_set(err, KBU_EINVAL, "kbu serve needs guest memory: give --core DUMP, "
				   "--phys FILE[@BASE] or --gdb STUB");
	struct kbu_serve_stats local = {0};
	struct session *s = calloc(1, sizeof *s);
	if (!s)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory for a session");
	s->ctx = ctx;
	s->m = ctx->mem;
	if (opts)
		s->o = *opts;
	s->st = stats ? stats : &local;
	s->in_fd = in_fd;
	s->out_fd = out_fd;
	s->ack = 1;
	s->ncpus = kbu_mem_ncpus(s->m);
	if (s->ncpus <= 0)
		s->ncpus = 1; /* a raw image: one CPU, registers unknown */
	s->cpus = calloc((size_t)s->ncpus, sizeof *s->cpus);
	s->data = malloc(SERVE_PACKET_SIZE);
	int rc = 0;
	if (!s->cpus || !s->data)
		rc = kbu_err_set(err, KBU_ENOMEM, "out of memory for a session");
	else
		s->panic_cpu = panicking_cpu(s);
	s->gcpu = s->panic_cpu >= 0 ? s->panic_cpu : 0;
	while (rc == 0 && !s->done) {
		int r = recv_request(s, err);
		if (r <= 0) {
			rc = r;
			break;
		}
		r = dispatch(s, err);
		if (r < 0)
			rc = -1;
		else if (r == 0)
			rc = send_reply(s, err);
	}
	free(s->cpus);
	free(s->data);
	rbuf_free(&s->raw);
	rbuf_free(&s->req);
	rbuf_free(&s->reply);
	rbuf_free(&s->frame);
	free(s);
	return rc;
}
