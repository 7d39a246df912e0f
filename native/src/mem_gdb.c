/*
 * kbu memory source: a GDB stub (QEMU's -s, Firecracker's UNIX socket, kbu
 * serve, any stub with the standard packets). The protocol itself is rsp.c;
 * QEMU's extensions gdb_qemu.c; register layouts gdb_tdesc.c. Here: the
 * handshake, the thread list, memory and registers as a struct kbu_mem.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdb_qemu.h"
#include "gdb_tdesc.h"
#include "kbu/gdbrsp.h"
#include "kbu/util.h"
#include "rsp.h"

#define RSP_MAX_THREADS 4096

struct kbu_gdb {
	struct kbu_mem_ops ops;
	struct rsp_conn c;
	size_t packet_size;
	size_t max_write;
	size_t per_m; /* bytes one 'm' reply carries: PacketSize / 2 */
	int resume_on_close;
	int has_xml;
	int qemu;      /* answers qqemu.Supported: PhyMemMode, a monitor */
	/* "info registers -a" while the target stays stopped: dropped by anything
	 * that may run it (raw requests, monitor commands). */
	struct rbuf cpu_text;
	int cpu_text_valid;
	int no_phys;   /* the stub answered Qqemu.PhyMemMode with "" */
	int nranges;   /* -1: not asked yet */
	uint64_t range_start[64], range_end[64];
	uint64_t *threads;
	int nthreads;
	size_t dup_threads;     /* thread ids the list named again (counted once) */
	uint64_t first_dup;
	struct gdb_tdesc tdesc;
};

/* ---- connect and handshake ---- */

void kbu_gdb_opts_default(struct kbu_gdb_opts *o)
{
	o->connect_timeout_ms = 5000;
	o->reply_timeout_ms = 10000;
	const char *t = getenv("KBU_GDB_TIMEOUT");
	if (t && *t) {
		char *end;
		double s = strtod(t, &end);
		if (*end == '\0' && s > 0 && s < 86400) {
			o->connect_timeout_ms = (int)(s * 1000);
			o->reply_timeout_ms = (int)(s * 1000);
			if (o->connect_timeout_ms < 1)
				o->connect_timeout_ms = o->reply_timeout_ms = 1;
		}
	}
}

static void parse_supported(struct kbu_gdb *g, const char *s, int *noack)
{
	*noack = 0;
	while (*s) {
		const char *e = strchr(s, ';');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n > 11 && strncmp(s, "PacketSize=", 11) == 0) {
			size_t v = 0;
			size_t i = 11;
			for (; i < n && kbu_hex_digit(s[i]) >= 0 && v < (1u << 24); i++)
				v = v * 16 + (size_t)kbu_hex_digit(s[i]);
			if (i == n && v >= 64)
				g->packet_size = v < RSP_MAX_PACKET ? v : RSP_MAX_PACKET;
		} else if (n == 16 && strncmp(s, "QStartNoAckMode+", 16) == 0) {
			*noack = 1;
		} else if (n == 20 && strncmp(s, "qXfer:features:read+", 20) == 0) {
			g->has_xml = 1;
		}
		s += n;
		if (*s == ';')
			s++;
	}
}

static void add_thread(struct kbu_gdb *g, uint64_t v)
{
	for (int i = 0; i < g->nthreads; i++)
		if (g->threads[i] == v) {
			/* One vCPU listed twice is still one vCPU: counted once, said so. */
			if (g->dup_threads++ == 0)
				g->first_dup = v;
			return;
		}
	g->threads[g->nthreads++] = v;
}

/* Parses "m01,02" / "mp01.01,p01.02" thread lists; returns 1 at the end ('l'). */
static int parse_threads(struct kbu_gdb *g, const struct rbuf *r, struct kbu_err *err)
{
	if (r->len == 0)
		return 1;
	if (r->p[0] == 'l')
		return 1;
	char shown[48];
	rsp_pkt_name(r->p, r->len, shown, sizeof shown);
	if (r->p[0] != 'm')
		return rsp_fail(&g->c, err, "answered the thread list with '%s'", shown);
	const char *s = r->p + 1;
	while (*s) {
		if (*s == 'p') { /* multiprocess form: keep the thread part */
			const char *dot = strchr(s, '.');
			const char *comma = strchr(s, ',');
			if (dot && (!comma || dot < comma))
				s = dot + 1;
		}
		uint64_t v = 0;
		int nd = 0;
		for (; kbu_hex_digit(*s) >= 0; s++, nd++) {
			if (nd >= 16)
				return rsp_fail(&g->c, err, "sent a thread id longer than 64 bits");
			v = v << 4 | (uint64_t)kbu_hex_digit(*s);
		}
		if (nd == 0 || (*s && *s != ','))
			return rsp_fail(&g->c, err, "sent a malformed thread list '%s'", shown);
		if (g->nthreads >= RSP_MAX_THREADS)
			return rsp_fail(&g->c, err, "reports more than %d threads", RSP_MAX_THREADS);
		add_thread(g, v);
		if (*s == ',')
			s++;
	}
	return 0;
}

/* Reads the thread list: qfThreadInfo then qsThreadInfo until 'l', speculatively batched. */
static int load_threads(struct kbu_gdb *g, struct kbu_err *err)
{
	g->threads = calloc(RSP_MAX_THREADS, sizeof *g->threads);
	if (!g->threads)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory for the thread list");
	int first = 1;
	for (int rounds = 0; rounds < RSP_MAX_THREADS / 16 + 2; rounds++) {
		struct rsp_req req[16];
		memset(req, 0, sizeof req);
		for (int i = 0; i < 16; i++)
			snprintf(req[i].pkt, sizeof req[i].pkt, "%s",
				 first && i == 0 ? "qfThreadInfo" : "qsThreadInfo");
		if (rsp_batch(&g->c, req, 16, err)) {
			rsp_reqs_free(req, 16);
			return -1;
		}
		int done = 0;
		for (int i = 0; i < 16 && !done; i++) {
			int r = parse_threads(g, &req[i].reply, err);
			if (r < 0) {
				rsp_reqs_free(req, 16);
				return -1;
			}
			done = r;
		}
		rsp_reqs_free(req, 16);
		first = 0;
		if (done)
			return 0;
	}
	return rsp_fail(&g->c, err, "never ended its thread list");
}

static const struct kbu_mem_ops gdb_ops_template;

/* qSupported; a stub that ignores us while its target runs gets 0x03 first. */
static int handshake_supported(struct kbu_gdb *g, struct rbuf *r, struct kbu_err *err)
{
	static const char supported[] = "qSupported:xmlRegisters=i386";
	struct rsp_conn *c = &g->c;
	if (rsp_send_packet(c, supported, strlen(supported), err))
		return -1;
	int probe_ms = c->reply_timeout_ms < 1000 ? c->reply_timeout_ms / 2 + 1 : 1000;
	char probe_what[64];
	snprintf(probe_what, sizeof probe_what, "the %d ms connect probe", probe_ms);
	struct rsp_deadline probe = rsp_short_deadline(c, probe_ms, probe_what);
	int rc = rsp_recv(c, r, "qSupported", &probe, 1, err);
	if (rc == RSP_TIMEOUT) {
		if (c->cmd_deadline && rsp_now_ms() >= c->cmd_deadline)
			return rsp_fail(c, err, "no reply to 'qSupported' within %s", probe.what);
		if (rsp_send_all(c, "\x03", 1, err))
			return -1;
		struct rsp_deadline dl = rsp_reply_deadline(c);
		rc = rsp_recv(c, r, "interrupt (0x03)", &dl, 1, err);
		if (rc == RSP_TIMEOUT)
			return rsp_fail(c, err, "accepted the connection but answered neither qSupported "
					"within %s nor an interrupt within %s (is another debugger attached? "
					"QEMU serves one at a time)", probe.what, dl.what);
		if (rc < 0)
			return -1;
		if (rsp_is_stop_reply(r)) {
			g->resume_on_close = 1;
			/*
			 * Ask again: a stub that ignored us while its target ran has
			 * dropped the first qSupported. One that was only slow (QEMU
			 * under load, its stop packet late) answers both: the first
			 * answer is taken here and the second is dropped as stale by
			 * the next request, whenever it comes. No waiting for it.
			 */
			rbuf_free(r);
			if (rsp_one(c, supported, r, err))
				return -1;
		}
	} else if (rc < 0) {
		if (c->dead && strstr(c->dead_err.msg, "closed the connection"))
			kbu_err_set(err, KBU_ECONN, "%s (the port hangs up on connect: not a GDB stub, "
				    "or one that is going away)", c->dead_err.msg);
		return -1;
	}
	/*
	 * QEMU stops a running VM when we connect and says so with a stop packet
	 * before anything else; a VM that was stopped already gets none. That
	 * packet is how we know to resume the VM when we leave.
	 */
	for (int k = 0; k < 4 && rsp_is_stop_reply(r); k++) {
		g->resume_on_close = 1;
		if (rsp_recv(c, r, "qSupported", NULL, 0, err))
			return -1;
	}
	return 0;
}

static struct kbu_gdb *gdb_open(const char *spec, const struct kbu_gdb_opts *opts, int limit_ms,
				struct kbu_err *err)
{
	struct kbu_gdb_opts o;
	if (opts)
		o = *opts;
	else
		kbu_gdb_opts_default(&o);
	if (o.connect_timeout_ms <= 0 || o.reply_timeout_ms <= 0) {
		kbu_err_set(err, KBU_EINVAL, "gdb stub timeouts must be positive");
		return NULL;
	}
	if (!spec || !*spec) {
		kbu_err_set(err, KBU_EINVAL, "empty gdb stub address (expected HOST:PORT or a socket path)");
		return NULL;
	}
	if (!strchr(spec, '/')) {
		char host[256], port[16];
		if (kbu_rsp_parse_hostport(spec, host, sizeof host, port, sizeof port, err))
			return NULL;
	}
	struct kbu_gdb *g = calloc(1, sizeof *g);
	if (!g) {
		kbu_err_set(err, KBU_ENOMEM, "out of memory for a gdb connection");
		return NULL;
	}
	rsp_conn_init(&g->c, spec, o.reply_timeout_ms);
	rsp_set_command_limit(&g->c, limit_ms);
	g->nranges = -1;
	g->packet_size = RSP_DEFAULT_PACKET;
	int connect_ms = o.connect_timeout_ms;
	if (limit_ms > 0 && limit_ms < connect_ms)
		connect_ms = limit_ms;
	if (rsp_connect(&g->c, spec, connect_ms, err)) {
		kbu_gdb_close(g);
		return NULL;
	}
	struct rbuf r = {0};
	if (handshake_supported(g, &r, err))
		goto fail;
	int noack = 0;
	parse_supported(g, r.p ? r.p : "", &noack);
	if (noack) {
		rbuf_free(&r);
		if (rsp_one(&g->c, "QStartNoAckMode", &r, err))
			goto fail;
		if (r.len == 2 && memcmp(r.p, "OK", 2) == 0)
			g->c.ack = 0;
	}
	g->max_write = (g->packet_size - 40) / 2;
	g->max_write -= g->max_write % 16;
	if (g->max_write == 0)
		g->max_write = 8;

	/* Why it is stopped; QEMU's own extensions. */
	struct rsp_req st[2];
	memset(st, 0, sizeof st);
	snprintf(st[0].pkt, sizeof st[0].pkt, "?");
	snprintf(st[1].pkt, sizeof st[1].pkt, "qqemu.Supported");
	if (rsp_batch(&g->c, st, 2, err)) {
		rsp_reqs_free(st, 2);
		goto fail;
	}
	if (st[0].reply.len > 0 && (st[0].reply.p[0] == 'W' || st[0].reply.p[0] == 'X')) {
		char shown[32];
		rsp_pkt_name(st[0].reply.p, st[0].reply.len, shown, sizeof shown);
		kbu_err_set(err, KBU_ECONN, "gdb stub %s: the target has exited ('%s')", g->c.where,
			    shown);
		rsp_reqs_free(st, 2);
		goto fail;
	}
	int qemu = st[1].reply.len > 0 && strstr(st[1].reply.p, "PhyMemMode") != NULL;
	rsp_reqs_free(st, 2);
	/* QEMU's system-mode stub never waits for our acks (it only resends on '-'). */
	g->c.pipeline = qemu;
	g->c.can_resync = qemu;
	g->qemu = qemu;
	if (load_threads(g, err))
		goto fail;
	rbuf_free(&r);
	g->ops = gdb_ops_template;
	/* One source call is one round trip: up to RSP_MAX_BATCH 'm' packets. */
	g->per_m = g->packet_size / 2 - (g->packet_size / 2) % 16;
	g->ops.max_read = g->per_m * RSP_MAX_BATCH;
	return g;

fail:
	/* Even so, a VM our connection stopped is resumed (unless the link is dead). */
	rbuf_free(&r);
	kbu_gdb_close(g);
	return NULL;
}

struct kbu_gdb *kbu_gdb_open(const char *spec, const struct kbu_gdb_opts *opts,
			     struct kbu_err *err)
{
	return gdb_open(spec, opts, 0, err);
}

void kbu_gdb_close(struct kbu_gdb *g)
{
	if (!g)
		return;
	if (g->c.fd >= 0 && g->resume_on_close) {
		/* Detach: QEMU resumes the VM and answers OK. Tried even after an
		 * error: a stub that is merely out of step still takes it. The
		 * command's limit does not stop this: the VM must not stay stopped. */
		struct rbuf r = {0};
		g->c.dead = 0;
		g->c.cmd_deadline = 0;
		if (rsp_send_packet(&g->c, "D", 1, NULL) == 0) {
			struct rsp_deadline dl = rsp_short_deadline(&g->c, 1000, "1000 ms");
			(void)rsp_recv(&g->c, &r, "D", &dl, 1, NULL);
		}
		rbuf_free(&r);
	}
	rsp_conn_free(&g->c);
	free(g->threads);
	gdb_tdesc_free(&g->tdesc);
	rbuf_free(&g->cpu_text);
	free(g);
}

const struct kbu_mem_ops *kbu_gdb_mem_ops(const struct kbu_gdb *g) { return &g->ops; }
struct kbu_gdb_stats kbu_gdb_get_stats(const struct kbu_gdb *g) { return g->c.st; }
uint64_t kbu_gdb_stale_replies(const struct kbu_gdb *g) { return g->c.stale_replies; }
uint64_t kbu_gdb_resyncs(const struct kbu_gdb *g) { return g->c.resyncs; }
size_t kbu_gdb_packet_size(const struct kbu_gdb *g) { return g->packet_size; }
int kbu_gdb_no_ack(const struct kbu_gdb *g) { return !g->c.ack; }
int kbu_gdb_resumes_on_close(const struct kbu_gdb *g) { return g->resume_on_close; }
int kbu_gdb_ncpus(const struct kbu_gdb *g) { return g->nthreads; }
int kbu_gdb_is_qemu(const struct kbu_gdb *g) { return g->qemu; }

size_t kbu_gdb_duplicate_threads(const struct kbu_gdb *g, uint64_t *first)
{
	if (first)
		*first = g->first_dup;
	return g->dup_threads;
}

const char *kbu_gdb_where(const struct kbu_gdb *g) { return g->c.where; }

void kbu_gdb_set_command_limit(struct kbu_gdb *g, int limit_ms)
{
	rsp_set_command_limit(&g->c, limit_ms);
}

int kbu_gdb_request(struct kbu_gdb *g, const char *packet, char **reply, size_t *reply_len,
		    struct kbu_err *err)
{
	size_t n = strlen(packet);
	if (n + 4 > g->packet_size)
		return kbu_err_set(err, KBU_EINVAL, "packet of %zu bytes exceeds the stub's %zu", n,
				   g->packet_size);
	struct rbuf r = {0};
	g->cpu_text_valid = 0; /* "c", "s", "G", ...: the CPUs may change */
	if (rsp_one(&g->c, packet, &r, err)) {
		rbuf_free(&r);
		return -1;
	}
	if (!r.p && rbuf_reserve(&r, 0, err))
		return -1;
	r.p[r.len] = '\0';
	*reply = r.p;
	if (reply_len)
		*reply_len = r.len;
	return 0;
}

/* ---- memory ---- */

static const char *space_name(enum kbu_space s) { return s == KBU_PHYS ? "physical" : "virtual"; }

static int no_phys(struct kbu_gdb *g, struct kbu_err *err)
{
	return kbu_err_set(err, KBU_EUNSUPPORTED,
			   "gdb stub %s has no physical memory mode (Qqemu.PhyMemMode)", g->c.where);
}

/* Checks one 'm' reply against what was asked: the bytes, or an error that says what came. */
static int take_m_reply(struct kbu_gdb *g, enum kbu_space space, const struct rbuf *r, uint64_t a,
			size_t want, unsigned char *out, size_t *got, struct kbu_err *err)
{
	if (rsp_is_error_reply(r)) {
		char shown[40];
		rsp_pkt_name(r->p, r->len, shown, sizeof shown);
		return kbu_err_set(err, KBU_EFAULT,
				   "cannot read %s memory at 0x%" PRIx64 "-0x%" PRIx64 " (gdb stub error %s)",
				   space_name(space), a, a + want - 1, shown);
	}
	if (r->len == 0)
		return kbu_err_set(err, KBU_EUNSUPPORTED, "gdb stub %s does not read memory ('m')",
				   g->c.where);
	size_t bad_at = r->len;
	for (size_t k = 0; k < r->len && bad_at == r->len; k++)
		if (kbu_hex_digit(r->p[k]) < 0)
			bad_at = k;
	char shown[40];
	rsp_pkt_name(r->p, r->len, shown, sizeof shown);
	if (bad_at < r->len)
		return rsp_fail(&g->c, err, "answered 'm%" PRIx64 ",%zx' with '%s': character %zu is not hex",
				a, want, shown, bad_at);
	if (r->len % 2)
		return rsp_fail(&g->c, err, "answered 'm%" PRIx64 ",%zx' with an odd number of hex digits "
				"(%zu)", a, want, r->len);
	if (r->len / 2 > want)
		return rsp_fail(&g->c, err, "answered 'm%" PRIx64 ",%zx' with %zu bytes, more than the "
				"%zu asked", a, want, r->len / 2, want);
	*got = r->len / 2;
	for (size_t k = 0; k < *got; k++)
		out[k] = (unsigned char)(kbu_hex_digit(r->p[2 * k]) << 4 | kbu_hex_digit(r->p[2 * k + 1]));
	return 0;
}

static int gdb_read(void *ctx, enum kbu_space space, uint64_t addr, void *buf, size_t len,
		    struct kbu_err *err)
{
	struct kbu_gdb *g = ctx;
	unsigned char *out = buf;
	size_t chunk = g->per_m;
	int phys = space == KBU_PHYS;
	if (len > 0 && addr + (len - 1) < addr)
		return kbu_err_set(err, KBU_EINVAL, "read of %zu bytes at 0x%" PRIx64 " wraps around", len,
				   addr);
	if (phys && (g->no_phys || !g->qemu))
		return no_phys(g, err);
	while (len > 0) {
		struct rsp_req req[RSP_MAX_BATCH + 2];
		int n = 0, nm = 0;
		memset(req, 0, sizeof req);
		if (phys)
			snprintf(req[n++].pkt, sizeof req[0].pkt, GDBQ_PHYS_ON);
		size_t off = 0;
		while (off < len && nm < RSP_MAX_BATCH) {
			size_t c = len - off < chunk ? len - off : chunk;
			snprintf(req[n++].pkt, sizeof req[0].pkt, "m%" PRIx64 ",%zx", addr + off, c);
			off += c;
			nm++;
		}
		if (phys)
			snprintf(req[n++].pkt, sizeof req[0].pkt, GDBQ_PHYS_OFF);
		if (rsp_batch(&g->c, req, n, err)) {
			rsp_reqs_free(req, n);
			return -1;
		}
		if (phys && gdbq_check_phys_mode(&g->c, &req[0].reply, &req[n - 1].reply, &g->no_phys, err)) {
			rsp_reqs_free(req, n);
			return -1;
		}
		size_t done = 0;
		int rc = 0;
		for (int i = phys; i < phys + nm; i++) {
			size_t want = len - done < chunk ? len - done : chunk, got = 0;
			rc = take_m_reply(g, space, &req[i].reply, addr + done, want, out + done, &got, err);
			if (rc)
				break;
			done += got;
			if (got < want)
				break; /* a short reply: ask again from where it stopped */
		}
		rsp_reqs_free(req, n);
		if (rc)
			return -1;
		if (done == 0)
			return rsp_fail(&g->c, err, "answered 'm%" PRIx64 ",%zx' with no bytes", addr,
					len < chunk ? len : chunk);
		out += done;
		addr += done;
		len -= done;
	}
	return 0;
}

static int gdb_write(void *ctx, enum kbu_space space, uint64_t addr, const void *buf, size_t len,
		     struct kbu_err *err)
{
	struct kbu_gdb *g = ctx;
	const unsigned char *in = buf;
	int phys = space == KBU_PHYS;
	if (len > 0 && addr + (len - 1) < addr)
		return kbu_err_set(err, KBU_EINVAL, "write of %zu bytes at 0x%" PRIx64 " wraps around", len,
				   addr);
	if (phys && (g->no_phys || !g->qemu))
		return no_phys(g, err);
	while (len > 0) {
		enum { NW = 16 };
		struct rsp_req req[NW + 2];
		char *bodies[NW];
		int n = 0, nw = 0, rc = -1;
		memset(req, 0, sizeof req);
		memset(bodies, 0, sizeof bodies);
		if (phys)
			snprintf(req[n++].pkt, sizeof req[0].pkt, GDBQ_PHYS_ON);
		size_t off = 0;
		while (off < len && nw < NW) {
			size_t c = len - off < g->max_write ? len - off : g->max_write;
			char *b = malloc(40 + 2 * c + 1);
			if (!b) {
				kbu_err_set(err, KBU_ENOMEM, "out of memory for a write packet");
				goto out;
			}
			int h = snprintf(b, 40, "M%" PRIx64 ",%zx:", addr + off, c);
			rsp_hex_encode(in + off, c, b + h);
			bodies[nw] = b;
			req[n].body = b;
			req[n].body_len = (size_t)h + 2 * c;
			n++;
			nw++;
			off += c;
		}
		if (phys)
			snprintf(req[n++].pkt, sizeof req[0].pkt, GDBQ_PHYS_OFF);
		if (rsp_batch(&g->c, req, n, err))
			goto out;
		if (phys && gdbq_check_phys_mode(&g->c, &req[0].reply, &req[n - 1].reply, &g->no_phys, err))
			goto out;
		size_t done = 0;
		for (int i = phys; i < phys + nw; i++) {
			struct rbuf *r = &req[i].reply;
			size_t c = len - done < g->max_write ? len - done : g->max_write;
			if (r->len != 2 || memcmp(r->p, "OK", 2) != 0) {
				char shown[40];
				rsp_pkt_name(r->p ? r->p : "", r->len, shown, sizeof shown);
				kbu_err_set(err, rsp_is_error_reply(r) ? KBU_EFAULT : KBU_EUNSUPPORTED,
					    "cannot write %s memory at 0x%" PRIx64 "-0x%" PRIx64
					    " (gdb stub replied '%s')",
					    space_name(space), addr + done, addr + done + c - 1, shown);
				goto out;
			}
			done += c;
		}
		in += off;
		addr += off;
		len -= off;
		rc = 0;
out:
		rsp_reqs_free(req, n);
		for (int i = 0; i < NW; i++)
			free(bodies[i]);
		if (rc)
			return -1;
	}
	return 0;
}

/* ---- monitor ---- */

static int gdb_monitor(void *ctx, const char *cmd, char **out, struct kbu_err *err)
{
	struct kbu_gdb *g = ctx;
	g->cpu_text_valid = 0; /* "cont", "system_reset", ...: the CPUs may change */
	return gdbq_monitor(&g->c, g->packet_size, cmd, out, err);
}

static int gdb_ranges(void *ctx, uint64_t *start, uint64_t *end, int max)
{
	struct kbu_gdb *g = ctx;
	if (g->nranges < 0) {
		char *text = NULL;
		struct kbu_err e = {0};
		g->nranges = 0;
		/* Only a stub with QEMU's extensions has this monitor command. */
		if (g->qemu && gdbq_monitor(&g->c, g->packet_size, "info mtree -f", &text, &e) == 0)
			g->nranges = gdbq_parse_mtree(text, g->range_start, g->range_end, 64);
		free(text);
	}
	int n = g->nranges < max ? g->nranges : max;
	for (int i = 0; i < n; i++) {
		start[i] = g->range_start[i];
		end[i] = g->range_end[i];
	}
	return n;
}

static int gdb_ncpus(void *ctx)
{
	const struct kbu_gdb *g = ctx;
	return g->nthreads;
}

/* ---- registers ---- */

static int gdb_regs(void *ctx, int cpu, struct kbu_regs *out, struct kbu_err *err)
{
	struct kbu_gdb *g = ctx;
	if (rsp_alive(&g->c, err))
		return -1;
	if (cpu < 0 || (g->nthreads > 0 && cpu >= g->nthreads) || (g->nthreads == 0 && cpu != 0))
		return kbu_err_set(err, KBU_EINVAL, "no CPU %d: gdb stub %s reports %d", cpu, g->c.where,
				   g->nthreads);
	if (!g->has_xml)
		return kbu_err_set(err, KBU_EUNSUPPORTED,
				   "gdb stub %s offers no target description (qXfer:features:read)",
				   g->c.where);
	if (gdb_tdesc_load(&g->c, g->packet_size, &g->tdesc, err))
		return -1;
	int select = cpu != 0;
	struct gdb_regmatch m;
	gdb_tdesc_match(&g->tdesc, &m);
	memset(out, 0, sizeof *out);

	struct rsp_req req[GDB_NMAP + 3];
	memset(req, 0, sizeof req);
	int n = 0;
	if (select)
		snprintf(req[n++].pkt, sizeof req[0].pkt, "Hg%" PRIx64, g->threads[cpu]);
	int gi = n;
	snprintf(req[n++].pkt, sizeof req[0].pkt, "g");
	if (select)
		snprintf(req[n++].pkt, sizeof req[0].pkt, "Hg%" PRIx64, g->threads[0]);
	/* QEMU's monitor has the segment bases and GDT/IDT the stub does not send. */
	int mi = -1;
	if (g->qemu && !g->cpu_text_valid) {
		mi = n++;
		req[mi].rcmd = 1;
		gdbq_rcmd_packet("info registers -a", req[mi].pkt, sizeof req[mi].pkt);
	}
	if (rsp_batch(&g->c, req, n, err)) {
		rsp_reqs_free(req, n);
		return -1;
	}
	if (mi >= 0) { /* keep it for the other CPUs */
		struct rbuf t = g->cpu_text;
		g->cpu_text = req[mi].text;
		req[mi].text = t;
		g->cpu_text_valid = 1;
	}
	int mon_bases = 0, mon_dt = 0;
	if (g->cpu_text_valid && g->cpu_text.len > 0) {
		/* QEMU's thread ids are its CPU indexes plus one. */
		int index = g->nthreads > 0 ? (int)g->threads[cpu] - 1 : 0;
		gdbq_parse_info_registers(g->cpu_text.p, index, out, &mon_bases, &mon_dt);
	}
	if (select && (req[0].reply.len != 2 || memcmp(req[0].reply.p, "OK", 2) != 0)) {
		char shown[32];
		rsp_pkt_name(req[0].reply.p ? req[0].reply.p : "", req[0].reply.len, shown, sizeof shown);
		kbu_err_set(err, KBU_ECONN, "gdb stub %s refused to select CPU %d (thread %" PRIx64 "): '%s'",
			    g->c.where, cpu, g->threads[cpu], shown);
		rsp_reqs_free(req, n);
		return -1;
	}
	int need_p = gdb_tdesc_take_g(&g->tdesc, &m, &req[gi].reply, out);
	rsp_reqs_free(req, n);

	if (need_p) { /* 'g' was short or odd: read the rest one by one, in one batch */
		int maps[GDB_NMAP];
		unsigned nums[GDB_NMAP];
		int nmiss = gdb_tdesc_missing(&g->tdesc, &m, maps, nums, GDB_NMAP);
		n = 0;
		memset(req, 0, sizeof req);
		if (select)
			snprintf(req[n++].pkt, sizeof req[0].pkt, "Hg%" PRIx64, g->threads[cpu]);
		for (int k = 0; k < nmiss; k++)
			snprintf(req[n++].pkt, sizeof req[0].pkt, "p%x", nums[k]);
		if (select)
			snprintf(req[n++].pkt, sizeof req[0].pkt, "Hg%" PRIx64, g->threads[0]);
		if (rsp_batch(&g->c, req, n, err)) {
			rsp_reqs_free(req, n);
			return -1;
		}
		for (int k = 0; k < nmiss; k++)
			gdb_tdesc_take_p(&m, maps[k], &req[select + k].reply, out);
		rsp_reqs_free(req, n);
	}
	if (gdb_tdesc_finish(&m, out, mon_bases, mon_dt))
		return kbu_err_set(err, KBU_EFORMAT, "gdb stub %s returned no usable registers for CPU %d",
				   g->c.where, cpu);
	return 0;
}

static void gdb_close_op(void *ctx) { kbu_gdb_close(ctx); }

static const struct kbu_mem_ops gdb_ops_template = {
	.kind = "gdb",
	.read = gdb_read,
	.write = gdb_write,
	.ncpus = gdb_ncpus,
	.regs = gdb_regs,
	.monitor = gdb_monitor,
	.ranges = gdb_ranges,
	.close = gdb_close_op,
	.max_read = 0,
};

/* ---- the struct kbu_mem face ---- */

static struct kbu_mem *open_mem(const char *spec, const struct kbu_gdb_opts *opts, int limit_ms,
				struct kbu_gdb **conn, struct kbu_err *err)
{
	struct kbu_gdb *g = gdb_open(spec, opts, limit_ms, err);
	if (conn)
		*conn = g;
	if (!g)
		return NULL;
	/* kbu_mem_new closes the source itself when it fails. */
	struct kbu_mem *m = kbu_mem_new(&g->ops, g, err);
	if (!m && conn)
		*conn = NULL;
	return m;
}

struct kbu_mem *kbu_mem_open_gdb_ex(const char *spec, const struct kbu_gdb_opts *opts,
				    struct kbu_gdb **conn, struct kbu_err *err)
{
	return open_mem(spec, opts, 0, conn, err);
}

struct kbu_mem *kbu_mem_open_gdb_limited(const char *spec, int command_limit_ms,
					 struct kbu_gdb **conn, struct kbu_err *err)
{
	return open_mem(spec, NULL, command_limit_ms, conn, err);
}

struct kbu_mem *kbu_mem_open_gdb(const char *spec, struct kbu_err *err)
{
	return open_mem(spec, NULL, 0, NULL, err);
}

uint64_t kbu_mem_gdb_round_trips(struct kbu_mem *m)
{
	if (!m || strcmp(kbu_mem_kind(m), "gdb") != 0)
		return 0;
	const struct kbu_gdb *g = kbu_mem_source_ctx(m);
	return g ? g->c.st.round_trips : 0;
}
