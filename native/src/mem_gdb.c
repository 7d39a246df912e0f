/*
 * kbu memory source: a GDB remote serial protocol client (QEMU's gdbstub).
 *
 * Every receive has a deadline, every length from the stub is checked, and
 * the first transport failure (timeout, close, checksum) makes the
 * connection unusable with that message: after a lost reply the stream is out
 * of step and nothing read later could be trusted.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kbu/gdbrsp.h"
#include "kbu/util.h"

#define RSP_MAX_PACKET (1u << 20)     /* raw characters in one received packet */
#define RSP_MAX_DECODED (8u << 20)    /* the same after run-length expansion */
#define RSP_MAX_GARBAGE 4096u         /* non-packet bytes tolerated before a packet */
#define RSP_MAX_BATCH 64              /* packets written before reading replies */
#define RSP_MAX_THREADS 4096
#define RSP_MAX_STALE 16              /* stale replies dropped before one request's reply */
#define RSP_MAX_MONITOR (16u << 20)   /* monitor output */
#define RSP_MAX_XML (1u << 20)        /* one target description file */
#define RSP_MAX_XML_FILES 32
#define RSP_MAX_REGS 1024
#define RSP_RETRIES 3                 /* resends after a '-' (ack mode only) */
#define RSP_DEFAULT_PACKET 400        /* GDB's assumption when PacketSize is absent */

struct rbuf {
	char *p;
	size_t len, cap;
};

struct gdb_reg {
	char name[32];
	unsigned bits;
	unsigned num;
	long goff; /* byte offset in the 'g' reply, -1 if not part of it */
};

struct kbu_gdb {
	struct kbu_mem_ops ops;
	int fd;
	char where[300];
	int reply_timeout_ms;
	int ack;
	int dead;
	struct kbu_err dead_err;
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
	int pipeline;  /* the stub takes packets back to back even in ack mode (QEMU) */
	int in_batch;  /* several packets are in flight: no retransmission possible */
	size_t acks_owed; /* acks of a pipelined batch, sent together at its end */
	uint64_t *threads;
	int nthreads;
	struct gdb_reg *regs;
	int nregs;
	int layout_loaded;
	int xml_files;
	struct kbu_gdb_stats st;
	uint64_t stale_replies, resyncs;
	unsigned char in[16384];
	size_t in_pos, in_len;
	struct rbuf out;
	struct rbuf raw;
};

struct rsp_req {
	char pkt[64];
	const char *body; /* when not NULL, sent instead of pkt */
	size_t body_len;
	int rcmd;         /* a qRcmd: console output packets first, into text */
	int kind;         /* enum reply_kind, set by rsp_batch from the packet */
	struct rbuf reply;
	struct rbuf text;
};

/* ---- small helpers ---- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char hexdig[] = "0123456789abcdef";

static int buf_reserve(struct rbuf *b, size_t extra, struct kbu_err *err)
{
	if (b->len + extra + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1) {
		if (cap > SIZE_MAX / 2)
			return kbu_err_set(err, KBU_ENOMEM, "buffer of %zu bytes is too large", b->len + extra);
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (!p)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory for a %zu-byte buffer", cap);
	b->p = p;
	b->cap = cap;
	return 0;
}

static int buf_put(struct rbuf *b, const void *d, size_t n, struct kbu_err *err)
{
	if (buf_reserve(b, n, err))
		return -1;
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static void buf_free(struct rbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* A short printable form of a packet for messages: "m 9fc00,400" style. */
static void pkt_name(const char *p, size_t n, char *out, size_t cap)
{
	size_t j = 0;
	for (size_t i = 0; i < n && j + 4 < cap; i++)
		out[j++] = isprint((unsigned char)p[i]) ? p[i] : '.';
	if (n > 0 && j + 4 >= cap && cap > 4) {
		j = cap - 4;
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
}

/* Marks the connection dead with a KBU_ECONN message naming the stub. */
static int gdb_fail(struct kbu_gdb *g, struct kbu_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int gdb_fail(struct kbu_gdb *g, struct kbu_err *err, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	kbu_err_set(&g->dead_err, KBU_ECONN, "gdb stub %s: %s", g->where, msg);
	g->dead = 1;
	if (err)
		*err = g->dead_err;
	return -1;
}

static int gdb_alive(struct kbu_gdb *g, struct kbu_err *err)
{
	if (!g->dead)
		return 0;
	kbu_err_set(err, KBU_ECONN, "%s (the connection is unusable after that error)",
		    g->dead_err.msg);
	return -1;
}

/* ---- protocol helpers (public, pure) ---- */

uint8_t kbu_rsp_checksum(const void *data, size_t len)
{
	const unsigned char *p = data;
	unsigned sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += p[i];
	return (uint8_t)sum;
}

int kbu_rsp_decode(const char *in, size_t len, char *out, size_t cap, size_t *out_len,
		   struct kbu_err *err)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '}') {
			if (i + 1 >= len)
				return kbu_err_set(err, KBU_EFORMAT,
						   "packet ends in an escape character at offset %zu", i);
			c = (unsigned char)in[++i] ^ 0x20;
		} else if (c == '*') {
			if (o == 0)
				return kbu_err_set(err, KBU_EFORMAT,
						   "run-length marker at offset %zu has nothing to repeat", i);
			if (i + 1 >= len)
				return kbu_err_set(err, KBU_EFORMAT,
						   "run-length marker at offset %zu has no count", i);
			unsigned char n = (unsigned char)in[++i];
			if (n < 29 || n > 126)
				return kbu_err_set(err, KBU_EFORMAT,
						   "run-length count 0x%02x at offset %zu is out of range", n, i);
			size_t rep = (size_t)n - 29;
			if (rep > cap - o)
				return kbu_err_set(err, KBU_EFORMAT,
						   "run-length expansion at offset %zu exceeds %zu bytes", i, cap);
			memset(out + o, out[o - 1], rep);
			o += rep;
			continue;
		}
		if (o >= cap)
			return kbu_err_set(err, KBU_EFORMAT, "decoded packet exceeds %zu bytes", cap);
		out[o++] = (char)c;
	}
	*out_len = o;
	return 0;
}

int kbu_rsp_parse_hostport(const char *spec, char *host, size_t host_cap, char *port,
			   size_t port_cap, struct kbu_err *err)
{
	if (!spec || !*spec)
		return kbu_err_set(err, KBU_EINVAL, "empty gdb stub address (expected HOST:PORT)");
	const char *s = spec;
	if (strncmp(s, "tcp:", 4) == 0)
		s += 4;
	const char *h = s, *he, *p;
	if (*s == '[') {
		h = s + 1;
		he = strchr(h, ']');
		if (!he || he[1] != ':')
			return kbu_err_set(err, KBU_EINVAL,
					   "'%s': expected [ADDRESS]:PORT for an IPv6 address", spec);
		p = he + 2;
	} else {
		he = strrchr(s, ':');
		if (!he)
			return kbu_err_set(err, KBU_EINVAL, "'%s': expected HOST:PORT (e.g. localhost:1234)",
					   spec);
		p = he + 1;
	}
	size_t hl = (size_t)(he - h);
	if (hl == 0) {
		h = "localhost";
		hl = strlen(h);
	}
	if (hl + 1 > host_cap)
		return kbu_err_set(err, KBU_EINVAL, "'%s': host name too long", spec);
	size_t pl = strlen(p);
	unsigned long pv = 0;
	for (size_t i = 0; i < pl; i++) {
		if (!isdigit((unsigned char)p[i]) || pv > 65535)
			return kbu_err_set(err, KBU_EINVAL, "'%s': port '%s' is not a number", spec, p);
		pv = pv * 10 + (unsigned long)(p[i] - '0');
	}
	if (pl == 0 || pv == 0 || pv > 65535)
		return kbu_err_set(err, KBU_EINVAL, "'%s': port must be 1-65535", spec);
	if (pl + 1 > port_cap)
		return kbu_err_set(err, KBU_EINVAL, "'%s': port too long", spec);
	memcpy(host, h, hl);
	host[hl] = '\0';
	memcpy(port, p, pl + 1);
	return 0;
}

/* An upper bound of what kbu_rsp_decode makes of a packet (it checks the rest). */
static size_t rsp_decoded_len(const char *in, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '}') {
			i++;
		} else if (in[i] == '*' && i + 1 < len) {
			unsigned char c = (unsigned char)in[++i];
			n += c >= 29 ? (size_t)c - 29 : 0;
			continue;
		}
		n++;
	}
	return n;
}

/* ---- transport ---- */

static int rsp_send_all(struct kbu_gdb *g, const char *d, size_t n, struct kbu_err *err)
{
	int64_t deadline = now_ms() + g->reply_timeout_ms;
	while (n > 0) {
		ssize_t w = send(g->fd, d, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			d += w;
			n -= (size_t)w;
			g->st.bytes_sent += (uint64_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int64_t left = deadline - now_ms();
			struct pollfd pfd = {.fd = g->fd, .events = POLLOUT};
			if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
				return gdb_fail(g, err, "stopped taking data for %d ms", g->reply_timeout_ms);
			continue;
		}
		if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
			return gdb_fail(g, err, "closed the connection");
		return gdb_fail(g, err, "send failed: %s", strerror(errno));
	}
	return 0;
}

/* One byte, or -1 (error set, connection dead), or -2 on timeout when soft. */
static int rsp_getc(struct kbu_gdb *g, int64_t deadline, const char *what, int soft,
		    struct kbu_err *err)
{
	while (g->in_pos >= g->in_len) {
		int64_t left = deadline - now_ms();
		struct pollfd pfd = {.fd = g->fd, .events = POLLIN};
		int r = left > 0 ? poll(&pfd, 1, (int)left) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			if (soft)
				return -2;
			return gdb_fail(g, err, "no reply to '%s' within %d ms", what,
					g->reply_timeout_ms);
		}
		ssize_t n = recv(g->fd, g->in, sizeof g->in, MSG_DONTWAIT);
		/* A reset is a close that came after data of ours was in flight. */
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return gdb_fail(g, err, "closed the connection while we waited for the reply to '%s'",
					what);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return gdb_fail(g, err, "receive failed while waiting for '%s': %s", what,
					strerror(errno));
		}
		g->in_pos = 0;
		g->in_len = (size_t)n;
		g->st.bytes_received += (uint64_t)n;
	}
	return g->in[g->in_pos++];
}

/*
 * Receives one packet and decodes it into body (NUL-terminated). timeout_ms
 * < 0: the connection's reply timeout. soft: a timeout returns -2 and leaves
 * the connection usable (only for the probe on connect).
 */
static int rsp_recv(struct kbu_gdb *g, struct rbuf *body, const char *what, int timeout_ms,
		    int soft, struct kbu_err *err)
{
	int64_t deadline = now_ms() + (timeout_ms < 0 ? g->reply_timeout_ms : timeout_ms);
	for (int tries = 0;; tries++) {
		size_t garbage = 0;
		int c;
		for (;;) {
			c = rsp_getc(g, deadline, what, soft, err);
			if (c < 0)
				return c;
			if (c == '$')
				break;
			if (c == '+')
				continue;
			if (c == '-') {
				if (g->ack && g->in_batch)
					return gdb_fail(g, err, "rejected one of our packets before '%s'", what);
				continue;
			}
			if (++garbage > RSP_MAX_GARBAGE)
				return gdb_fail(g, err,
						"sent %u bytes that are not packets while we waited for '%s' "
						"(last byte 0x%02x): not a GDB stub?", RSP_MAX_GARBAGE, what, c);
		}
		g->raw.len = 0;
		for (;;) {
			c = rsp_getc(g, deadline, what, 0, err);
			if (c < 0)
				return -1;
			if (c == '#')
				break;
			if (c == '$') { /* a new packet start: the previous one was cut */
				g->raw.len = 0;
				continue;
			}
			if (g->raw.len >= RSP_MAX_PACKET)
				return gdb_fail(g, err, "reply to '%s' is longer than %u bytes", what,
						RSP_MAX_PACKET);
			char ch = (char)c;
			if (buf_put(&g->raw, &ch, 1, err))
				return -1;
		}
		int h1 = rsp_getc(g, deadline, what, 0, err);
		if (h1 < 0)
			return -1;
		int h2 = rsp_getc(g, deadline, what, 0, err);
		if (h2 < 0)
			return -1;
		if (kbu_hex_digit(h1) < 0 || kbu_hex_digit(h2) < 0)
			return gdb_fail(g, err, "reply to '%s' has checksum characters 0x%02x 0x%02x, not hex",
					what, h1, h2);
		unsigned want = (unsigned)(kbu_hex_digit(h1) << 4 | kbu_hex_digit(h2));
		unsigned got = kbu_rsp_checksum(g->raw.p ? g->raw.p : "", g->raw.len);
		if (want != got) {
			if (g->ack && !g->in_batch && tries < RSP_RETRIES) {
				if (rsp_send_all(g, "-", 1, err))
					return -1;
				continue;
			}
			return gdb_fail(g, err, "reply to '%s' has a bad checksum (0x%02x, computed 0x%02x)",
					what, want, got);
		}
		if (g->ack && g->in_batch && g->pipeline)
			g->acks_owed++; /* QEMU does not wait for them: one write per batch */
		else if (g->ack && rsp_send_all(g, "+", 1, err))
			return -1;
		g->st.packets_received++;
		body->len = 0;
		size_t cap = rsp_decoded_len(g->raw.p ? g->raw.p : "", g->raw.len);
		if (cap > RSP_MAX_DECODED)
			return gdb_fail(g, err, "reply to '%s' expands to more than %u bytes", what,
					RSP_MAX_DECODED);
		if (buf_reserve(body, cap, err))
			return -1;
		struct kbu_err e = {0};
		if (kbu_rsp_decode(g->raw.p ? g->raw.p : "", g->raw.len, body->p, cap, &body->len, &e))
			return gdb_fail(g, err, "reply to '%s': %s", what, e.msg);
		body->p[body->len] = '\0';
		return 0;
	}
}

/* Appends "$body#cc" to out, escaping what must be. */
static int rsp_frame(struct rbuf *out, const char *body, size_t n, struct kbu_err *err)
{
	if (buf_reserve(out, 2 * n + 4, err))
		return -1;
	out->p[out->len++] = '$';
	size_t start = out->len;
	for (size_t i = 0; i < n; i++) {
		char c = body[i];
		if (c == '$' || c == '#' || c == '}' || c == '*') {
			out->p[out->len++] = '}';
			c ^= 0x20;
		}
		out->p[out->len++] = c;
	}
	uint8_t sum = kbu_rsp_checksum(out->p + start, out->len - start);
	out->p[out->len++] = '#';
	out->p[out->len++] = hexdig[sum >> 4];
	out->p[out->len++] = hexdig[sum & 15];
	out->p[out->len] = '\0';
	return 0;
}

/* Ack mode: waits for '+', resending on '-'. */
static int rsp_wait_ack(struct kbu_gdb *g, const char *what, struct kbu_err *err)
{
	int64_t deadline = now_ms() + g->reply_timeout_ms;
	size_t garbage = 0;
	for (int tries = 0;;) {
		int c = rsp_getc(g, deadline, what, 0, err);
		if (c < 0)
			return -1;
		if (c == '+')
			return 0;
		if (c == '$') { /* replied without an ack: let the reply be read */
			g->in_pos--;
			return 0;
		}
		if (c == '-') {
			if (++tries > RSP_RETRIES)
				return gdb_fail(g, err, "rejected '%s' %d times", what, tries);
			if (rsp_send_all(g, g->out.p, g->out.len, err))
				return -1;
			continue;
		}
		if (++garbage > RSP_MAX_GARBAGE)
			return gdb_fail(g, err, "sent garbage instead of an acknowledgement of '%s'", what);
	}
}

static int hex_text(const char *h, size_t n, struct rbuf *out, struct kbu_err *err);

/*
 * What a request's reply may look like. Nothing in the protocol ties a reply
 * to its request: replies come back in order, and anything extra in the
 * stream (QEMU's stop packet on connect arriving late, a second answer to a
 * qSupported sent twice) puts every later reply one off. So each reply is
 * checked against the shape its request allows before it is taken.
 */
enum reply_kind {
	RK_ANY,      /* raw requests ("c", "s", "Z0,..."): whatever comes */
	RK_STOP,     /* '?': a stop reply */
	RK_FEATURES, /* qSupported: a feature list */
	RK_QEMU,     /* qqemu.Supported: a feature list, never qSupported's */
	RK_THREADS,  /* q[fs]ThreadInfo: "m..." or "l" */
	RK_HEX,      /* m, g, p: hex bytes ('x' for unavailable registers) */
	RK_OK,       /* M, Hg, D, Z/z, Q...: "OK" */
	RK_MODE,     /* qqemu.PhyMemMode: "0" or "1" */
	RK_XFER,     /* qXfer: "m..." or "l..." */
	RK_RCMD,     /* qRcmd: "O<hex>" output, then "OK" or hex */
};

static int starts(const char *p, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);
	return n >= k && memcmp(p, prefix, k) == 0;
}

static int reply_kind_of(const char *p, size_t n)
{
	if (n == 1 && p[0] == '?')
		return RK_STOP;
	if (starts(p, n, "qSupported"))
		return RK_FEATURES;
	if (n == 15 && starts(p, n, "qqemu.Supported"))
		return RK_QEMU;
	if ((n == 12 && starts(p, n, "qfThreadInfo")) || (n == 12 && starts(p, n, "qsThreadInfo")))
		return RK_THREADS;
	if (n == 16 && starts(p, n, "qqemu.PhyMemMode"))
		return RK_MODE;
	if (starts(p, n, "qXfer:"))
		return RK_XFER;
	if (starts(p, n, "qRcmd,"))
		return RK_RCMD;
	if (n >= 2 && (p[0] == 'm' || p[0] == 'p') && kbu_hex_digit(p[1]) >= 0)
		return RK_HEX;
	if (n == 1 && p[0] == 'g')
		return RK_HEX;
	if ((n >= 2 && p[0] == 'M' && kbu_hex_digit(p[1]) >= 0) || starts(p, n, "Hg") ||
	    starts(p, n, "Hc") || starts(p, n, "Qqemu.PhyMemMode:") ||
	    (n == 15 && starts(p, n, "QStartNoAckMode")) || (n == 1 && p[0] == 'D') ||
	    (n >= 2 && (p[0] == 'Z' || p[0] == 'z') && p[1] >= '0' && p[1] <= '4'))
		return RK_OK; /* (inserting or removing a breakpoint twice is harmless) */
	return RK_ANY;
}

static int is_error_reply(const struct rbuf *r);

/* A stop reply of any sort: T/S (stopped), W/X (exited). */
static int is_any_stop(const char *p, size_t n)
{
	return n >= 3 && (p[0] == 'T' || p[0] == 'S' || p[0] == 'W' || p[0] == 'X') &&
	       kbu_hex_digit(p[1]) >= 0 && kbu_hex_digit(p[2]) >= 0;
}

static int all_hex(const char *p, size_t n, int allow_x)
{
	for (size_t i = 0; i < n; i++)
		if (kbu_hex_digit(p[i]) < 0 && !(allow_x && p[i] == 'x'))
			return 0;
	return 1;
}

/* 1: the reply fits its request; 0: it cannot be the reply to it. */
static int reply_fits(int kind, const struct rbuf *r)
{
	const char *p = r->p ? r->p : "";
	size_t n = r->len;
	if (kind == RK_ANY)
		return 1;
	if (kind == RK_STOP)
		return is_any_stop(p, n) || is_error_reply(r);
	if (is_any_stop(p, n)) /* never the answer to anything but '?' */
		return 0;
	if (n == 0 || is_error_reply(r))
		return 1; /* "not supported", or an error: both valid answers */
	switch (kind) {
	case RK_FEATURES:
	case RK_QEMU:
		return 1;
	case RK_THREADS:
		return p[0] == 'm' || p[0] == 'l';
	case RK_HEX:
		return all_hex(p, n, 1);
	case RK_OK:
		return n == 2 && p[0] == 'O' && p[1] == 'K';
	case RK_MODE:
		return n == 1 && (p[0] == '0' || p[0] == '1');
	case RK_XFER:
		return p[0] == 'm' || p[0] == 'l';
	case RK_RCMD:
		return (n == 2 && p[0] == 'O' && p[1] == 'K') || (p[0] == 'O' && all_hex(p + 1, n - 1, 0)) ||
		       all_hex(p, n, 0);
	}
	return 1;
}

/*
 * A reply that is recognisably left over from earlier, not a wrong answer:
 * a stop packet where none was asked for (QEMU's announcement that our
 * connection stopped the VM, when it comes late), or a qSupported answer
 * (it names PacketSize) to anything but a qSupported.
 */
static int is_stale(int kind, const struct rbuf *r)
{
	const char *p = r->p ? r->p : "";
	if (kind == RK_ANY || kind == RK_STOP)
		return kind == RK_STOP && r->len > 0 && strstr(p, "PacketSize=") != NULL;
	if (is_any_stop(p, r->len) && p[0] != 'W' && p[0] != 'X')
		return 1;
	return strstr(p, "PacketSize=") != NULL &&
	       !(kind == RK_FEATURES && r->len > 0);
}

/* Returned by rsp_recv_req when a reply does not fit its request. */
#define RSP_OUT_OF_STEP (-3)

/*
 * The reply to one request; for a qRcmd, the "O<hex>" output packets before
 * it too. Stale replies are dropped; a reply that does not fit and is not
 * recognisably stale returns RSP_OUT_OF_STEP with err saying what came.
 */
static int rsp_recv_req(struct kbu_gdb *g, struct rsp_req *r, const char *what, struct kbu_err *err)
{
	int stale = 0;
	for (;;) {
		if (rsp_recv(g, &r->reply, what, -1, 0, err))
			return -1;
		if (is_stale(r->kind, &r->reply)) {
			g->stale_replies++;
			if (++stale > RSP_MAX_STALE)
				return gdb_fail(g, err, "sent more than %d stale replies before the reply to '%s'",
						RSP_MAX_STALE, what);
			continue;
		}
		if (!reply_fits(r->kind, &r->reply)) {
			kbu_err_set(err, KBU_ECONN, "answered '%s' with '%.40s', which is not a reply to it",
				    what, r->reply.p ? r->reply.p : "");
			return RSP_OUT_OF_STEP;
		}
		if (!r->rcmd || r->reply.len < 1 || r->reply.p[0] != 'O' ||
		    (r->reply.len == 2 && r->reply.p[1] == 'K'))
			return 0;
		if (r->text.len + r->reply.len / 2 > RSP_MAX_MONITOR)
			return gdb_fail(g, err, "output of '%s' exceeds %u bytes", what, RSP_MAX_MONITOR);
		if (hex_text(r->reply.p + 1, r->reply.len - 1, &r->text, err))
			return gdb_fail(g, err, "sent console output that is not hex for '%s'", what);
	}
}

static int rsp_send_acks(struct kbu_gdb *g, struct kbu_err *err)
{
	char acks[RSP_MAX_BATCH + 2];
	while (g->acks_owed > 0) {
		size_t n = g->acks_owed < sizeof acks ? g->acks_owed : sizeof acks;
		memset(acks, '+', n);
		g->acks_owed -= n;
		if (rsp_send_all(g, acks, n, err))
			return -1;
	}
	return 0;
}

static const char *req_body(const struct rsp_req *r, size_t *n)
{
	if (r->body) {
		*n = r->body_len;
		return r->body;
	}
	*n = strlen(r->pkt);
	return r->pkt;
}

/*
 * Sends n packets and reads one reply for each, in order. Without acks, or
 * with a stub that acks without waiting for ours (QEMU's system-mode stub),
 * all packets go out in one write: one round trip. Otherwise one at a time.
 * Error replies are data here: only transport failures fail.
 */
static int rsp_batch_once(struct kbu_gdb *g, struct rsp_req *req, int n, struct kbu_err *err)
{
	char what[48];
	if (!g->ack || (g->pipeline && n > 1)) {
		g->out.len = 0;
		for (int i = 0; i < n; i++) {
			size_t bl;
			const char *b = req_body(&req[i], &bl);
			if (rsp_frame(&g->out, b, bl, err))
				return -1;
		}
		g->st.round_trips++;
		g->st.packets_sent += (uint64_t)n;
		if (rsp_send_all(g, g->out.p, g->out.len, err))
			return -1;
		g->in_batch = 1;
		for (int i = 0; i < n; i++) {
			size_t bl;
			const char *b = req_body(&req[i], &bl);
			pkt_name(b, bl, what, sizeof what);
			int rc = rsp_recv_req(g, &req[i], what, err);
			if (rc) {
				g->in_batch = 0;
				return rc;
			}
		}
		g->in_batch = 0;
		return rsp_send_acks(g, err);
	}
	for (int i = 0; i < n; i++) {
		size_t bl;
		const char *b = req_body(&req[i], &bl);
		pkt_name(b, bl, what, sizeof what);
		g->out.len = 0;
		if (rsp_frame(&g->out, b, bl, err))
			return -1;
		g->st.round_trips++;
		g->st.packets_sent++;
		if (rsp_send_all(g, g->out.p, g->out.len, err) || rsp_wait_ack(g, what, err))
			return -1;
		int rc = rsp_recv_req(g, &req[i], what, err);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Brings the stream back in step with QEMU: one qqemu.PhyMemMode, whose
 * answer ("0" or "1") nothing else we send can produce, and everything before
 * its answer dropped. Costs one round trip.
 */
static int rsp_resync(struct kbu_gdb *g, struct kbu_err *err)
{
	static const char marker[] = "qqemu.PhyMemMode";
	g->acks_owed = 0;
	g->out.len = 0;
	if (rsp_frame(&g->out, marker, sizeof marker - 1, err))
		return -1;
	g->st.round_trips++;
	g->st.packets_sent++;
	g->resyncs++;
	if (rsp_send_all(g, g->out.p, g->out.len, err))
		return -1;
	struct rbuf r = {0};
	for (int k = 0; k < 2 * RSP_MAX_BATCH + RSP_MAX_STALE; k++) {
		if (rsp_recv(g, &r, "qqemu.PhyMemMode (resync)", -1, 0, err)) {
			buf_free(&r);
			return -1;
		}
		if (r.len == 1 && (r.p[0] == '0' || r.p[0] == '1')) {
			buf_free(&r);
			return 0;
		}
		g->stale_replies++;
	}
	buf_free(&r);
	return gdb_fail(g, err, "could not get back in step: more than %d replies to drop",
			2 * RSP_MAX_BATCH + RSP_MAX_STALE);
}

static int rsp_batch(struct kbu_gdb *g, struct rsp_req *req, int n, struct kbu_err *err)
{
	if (gdb_alive(g, err))
		return -1;
	int retryable = 1;
	for (int i = 0; i < n; i++) {
		size_t bl;
		const char *b = req_body(&req[i], &bl);
		req[i].kind = reply_kind_of(b, bl);
		if (req[i].kind == RK_ANY)
			retryable = 0; /* "c", "s": sending them twice would run the guest twice */
	}
	int rc = rsp_batch_once(g, req, n, err);
	if (rc != RSP_OUT_OF_STEP)
		return rc;
	/* Out of step. With QEMU we can get back in step and ask again; with
	 * another stub, or a request that must not be repeated, we stop here. */
	struct kbu_err why = *err;
	if (!g->qemu || !retryable)
		return gdb_fail(g, err, "%s (replies out of step)", why.msg);
	if (rsp_resync(g, err))
		return -1;
	for (int i = 0; i < n; i++) {
		req[i].reply.len = 0;
		req[i].text.len = 0;
	}
	rc = rsp_batch_once(g, req, n, err);
	if (rc == RSP_OUT_OF_STEP) {
		why = *err;
		return gdb_fail(g, err, "%s (still, after getting back in step)", why.msg);
	}
	return rc;
}

static void reqs_free(struct rsp_req *req, int n)
{
	for (int i = 0; i < n; i++) {
		buf_free(&req[i].reply);
		buf_free(&req[i].text);
	}
}

/* Appends the bytes of an even-length hex string to out (NUL-terminated). */
static int hex_text(const char *h, size_t n, struct rbuf *out, struct kbu_err *err)
{
	if (n % 2)
		return kbu_err_set(err, KBU_EFORMAT, "odd-length hex");
	if (buf_reserve(out, n / 2, err))
		return -1;
	for (size_t k = 0; k < n; k += 2) {
		int a = kbu_hex_digit(h[k]), b = kbu_hex_digit(h[k + 1]);
		if (a < 0 || b < 0)
			return kbu_err_set(err, KBU_EFORMAT, "not hex");
		out->p[out->len++] = (char)(a << 4 | b);
	}
	out->p[out->len] = '\0';
	return 0;
}

static int rsp_one(struct kbu_gdb *g, const char *pkt, struct rbuf *reply, struct kbu_err *err)
{
	struct rsp_req r = {.body = pkt, .body_len = strlen(pkt)};
	int rc = rsp_batch(g, &r, 1, err);
	*reply = r.reply;
	return rc;
}

static int is_error_reply(const struct rbuf *r)
{
	return r->len >= 1 && r->p[0] == 'E' &&
	       ((r->len == 3 && kbu_hex_digit(r->p[1]) >= 0 && kbu_hex_digit(r->p[2]) >= 0) ||
		(r->len >= 2 && r->p[1] == '.'));
}

static int is_stop_reply(const struct rbuf *r)
{
	return r->len >= 3 && (r->p[0] == 'T' || r->p[0] == 'S') && kbu_hex_digit(r->p[1]) >= 0 &&
	       kbu_hex_digit(r->p[2]) >= 0;
}

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

static int tcp_connect(const char *host, const char *port, int timeout_ms, const char *spec,
		       struct kbu_err *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		return kbu_err_set(err, KBU_ECONN, "gdb stub %s: cannot resolve '%s': %s", spec, host,
				   gai_strerror(rc));
	char why[160] = "no address";
	int fd = -1;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			snprintf(why, sizeof why, "%s", strerror(errno));
			continue;
		}
		int soerr = 0;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			if (errno != EINPROGRESS) {
				soerr = errno;
			} else {
				struct pollfd pfd = {.fd = fd, .events = POLLOUT};
				int64_t deadline = now_ms() + timeout_ms;
				int pr;
				do {
					int64_t left = deadline - now_ms();
					pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
				} while (pr < 0 && errno == EINTR);
				socklen_t sl = sizeof soerr;
				if (pr == 0)
					soerr = ETIMEDOUT;
				else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
					soerr = errno;
			}
		}
		if (soerr == 0) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			freeaddrinfo(res);
			return fd;
		}
		snprintf(why, sizeof why, "%s", soerr == ETIMEDOUT ? "timed out" : strerror(soerr));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return kbu_err_set(err, KBU_ECONN,
			   "cannot connect to gdb stub at %s: %s (is QEMU running with -gdb tcp::PORT?)",
			   spec, why);
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

/* Parses "m01,02" / "mp01.01,p01.02" thread lists; returns 1 at the end ('l'). */
static int parse_threads(struct kbu_gdb *g, const struct rbuf *r, struct kbu_err *err)
{
	if (r->len == 0)
		return 1;
	if (r->p[0] == 'l')
		return 1;
	if (r->p[0] != 'm')
		return gdb_fail(g, err, "answered the thread list with '%.40s'", r->p);
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
				return gdb_fail(g, err, "sent a thread id longer than 64 bits");
			v = v << 4 | (uint64_t)kbu_hex_digit(*s);
		}
		if (nd == 0 || (*s && *s != ','))
			return gdb_fail(g, err, "sent a malformed thread list '%.40s'", r->p);
		if (g->nthreads >= RSP_MAX_THREADS)
			return gdb_fail(g, err, "reports more than %d threads", RSP_MAX_THREADS);
		g->threads[g->nthreads++] = v;
		if (*s == ',')
			s++;
	}
	return 0;
}

static int gdb_monitor_text(struct kbu_gdb *g, const char *cmd, char **out, struct kbu_err *err);

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
		if (rsp_batch(g, req, 16, err)) {
			reqs_free(req, 16);
			return -1;
		}
		int done = 0;
		for (int i = 0; i < 16 && !done; i++) {
			int r = parse_threads(g, &req[i].reply, err);
			if (r < 0) {
				reqs_free(req, 16);
				return -1;
			}
			done = r;
		}
		reqs_free(req, 16);
		first = 0;
		if (done)
			return 0;
	}
	return gdb_fail(g, err, "never ended its thread list");
}

static const struct kbu_mem_ops gdb_ops_template;

struct kbu_gdb *kbu_gdb_open(const char *hostport, const struct kbu_gdb_opts *opts,
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
	char host[256], port[16];
	if (kbu_rsp_parse_hostport(hostport, host, sizeof host, port, sizeof port, err))
		return NULL;
	struct kbu_gdb *g = calloc(1, sizeof *g);
	if (!g) {
		kbu_err_set(err, KBU_ENOMEM, "out of memory for a gdb connection");
		return NULL;
	}
	g->fd = -1;
	g->ack = 1;
	g->nranges = -1;
	g->packet_size = RSP_DEFAULT_PACKET;
	g->reply_timeout_ms = o.reply_timeout_ms;
	snprintf(g->where, sizeof g->where, "%s", hostport);
	g->fd = tcp_connect(host, port, o.connect_timeout_ms, hostport, err);
	if (g->fd < 0) {
		g->fd = -1;
		kbu_gdb_close(g);
		return NULL;
	}

	/* qSupported; a stub that ignores us while its target runs gets 0x03 first. */
	static const char supported[] = "qSupported:xmlRegisters=i386";
	struct rbuf r = {0};
	g->out.len = 0;
	if (rsp_frame(&g->out, supported, strlen(supported), err))
		goto fail;
	g->st.round_trips++;
	g->st.packets_sent++;
	if (rsp_send_all(g, g->out.p, g->out.len, err))
		goto fail;
	int probe_ms = g->reply_timeout_ms < 1000 ? g->reply_timeout_ms / 2 + 1 : 1000;
	int rc = rsp_recv(g, &r, "qSupported", probe_ms, 1, err);
	if (rc == -2) {
		if (rsp_send_all(g, "\x03", 1, err))
			goto fail;
		rc = rsp_recv(g, &r, "interrupt (0x03)", -1, 1, err);
		if (rc == -2) {
			gdb_fail(g, err, "accepted the connection but answered neither qSupported nor an "
				 "interrupt in %d ms (is another debugger attached? QEMU serves one at a time)",
				 probe_ms + g->reply_timeout_ms);
			goto fail;
		}
		if (rc < 0)
			goto fail;
		if (is_stop_reply(&r)) {
			g->resume_on_close = 1;
			/*
			 * Ask again: a stub that ignored us while its target ran has
			 * dropped the first qSupported. One that was only slow (QEMU
			 * under load, its stop packet late) answers both: the first
			 * answer is taken here and the second is dropped as stale by
			 * the next request, whenever it comes. No waiting for it.
			 */
			buf_free(&r);
			if (rsp_one(g, supported, &r, err))
				goto fail;
		}
	} else if (rc < 0) {
		if (g->dead && strstr(g->dead_err.msg, "closed the connection"))
			kbu_err_set(err, KBU_ECONN, "%s (the port hangs up on connect: not a GDB stub, "
				    "or one that is going away)", g->dead_err.msg);
		goto fail;
	}
	/*
	 * QEMU stops a running VM when we connect and says so with a stop packet
	 * before anything else; a VM that was stopped already gets none. That
	 * packet is how we know to resume the VM when we leave.
	 */
	for (int k = 0; k < 4 && is_stop_reply(&r); k++) {
		g->resume_on_close = 1;
		if (rsp_recv(g, &r, "qSupported", -1, 0, err))
			goto fail;
	}
	int noack = 0;
	parse_supported(g, r.p ? r.p : "", &noack);
	if (noack) {
		buf_free(&r);
		if (rsp_one(g, "QStartNoAckMode", &r, err))
			goto fail;
		if (r.len == 2 && memcmp(r.p, "OK", 2) == 0)
			g->ack = 0;
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
	if (rsp_batch(g, st, 2, err)) {
		reqs_free(st, 2);
		goto fail;
	}
	if (st[0].reply.len > 0 && (st[0].reply.p[0] == 'W' || st[0].reply.p[0] == 'X')) {
		kbu_err_set(err, KBU_ECONN, "gdb stub %s: the target has exited ('%.20s')", g->where,
			    st[0].reply.p);
		reqs_free(st, 2);
		goto fail;
	}
	int qemu = st[1].reply.len > 0 && strstr(st[1].reply.p, "PhyMemMode") != NULL;
	reqs_free(st, 2);
	/* QEMU's system-mode stub never waits for our acks (it only resends on '-'). */
	g->pipeline = qemu;
	g->qemu = qemu;
	if (load_threads(g, err))
		goto fail;
	buf_free(&r);
	g->ops = gdb_ops_template;
	/* One source call is one round trip: up to RSP_MAX_BATCH 'm' packets. */
	g->per_m = g->packet_size / 2 - (g->packet_size / 2) % 16;
	g->ops.max_read = g->per_m * RSP_MAX_BATCH;
	return g;

fail:
	/* Even so, a VM our connection stopped is resumed (unless the link is dead). */
	buf_free(&r);
	kbu_gdb_close(g);
	return NULL;
}

void kbu_gdb_close(struct kbu_gdb *g)
{
	if (!g)
		return;
	if (g->fd >= 0 && g->resume_on_close) {
		/* Detach: QEMU resumes the VM and answers OK. Tried even after an
		 * error: a stub that is merely out of step still takes it. */
		struct rbuf r = {0};
		g->out.len = 0;
		g->dead = 0;
		if (rsp_frame(&g->out, "D", 1, NULL) == 0 && rsp_send_all(g, g->out.p, g->out.len, NULL) == 0)
			(void)rsp_recv(g, &r, "D", 1000, 1, NULL);
		buf_free(&r);
	}
	if (g->fd >= 0)
		close(g->fd);
	free(g->threads);
	free(g->regs);
	buf_free(&g->cpu_text);
	buf_free(&g->out);
	buf_free(&g->raw);
	free(g);
}

const struct kbu_mem_ops *kbu_gdb_mem_ops(const struct kbu_gdb *g) { return &g->ops; }
struct kbu_gdb_stats kbu_gdb_get_stats(const struct kbu_gdb *g) { return g->st; }
uint64_t kbu_gdb_stale_replies(const struct kbu_gdb *g) { return g->stale_replies; }
uint64_t kbu_gdb_resyncs(const struct kbu_gdb *g) { return g->resyncs; }
size_t kbu_gdb_packet_size(const struct kbu_gdb *g) { return g->packet_size; }
int kbu_gdb_no_ack(const struct kbu_gdb *g) { return !g->ack; }
int kbu_gdb_resumes_on_close(const struct kbu_gdb *g) { return g->resume_on_close; }

int kbu_gdb_request(struct kbu_gdb *g, const char *packet, char **reply, size_t *reply_len,
		    struct kbu_err *err)
{
	size_t n = strlen(packet);
	if (n + 4 > g->packet_size)
		return kbu_err_set(err, KBU_EINVAL, "packet of %zu bytes exceeds the stub's %zu", n,
				   g->packet_size);
	struct rbuf r = {0};
	g->cpu_text_valid = 0; /* "c", "s", "G", ...: the CPUs may change */
	if (rsp_one(g, packet, &r, err)) {
		buf_free(&r);
		return -1;
	}
	if (!r.p && buf_reserve(&r, 0, err))
		return -1;
	r.p[r.len] = '\0';
	*reply = r.p;
	if (reply_len)
		*reply_len = r.len;
	return 0;
}

/* ---- memory ---- */

static const char *space_name(enum kbu_space s) { return s == KBU_PHYS ? "physical" : "virtual"; }

/* Checks the replies to PhyMemMode on/off around a batch. */
static int check_phys_mode(struct kbu_gdb *g, const struct rbuf *on, const struct rbuf *off,
			   struct kbu_err *err)
{
	if (on->len == 0) {
		g->no_phys = 1;
		return kbu_err_set(err, KBU_EUNSUPPORTED,
				   "gdb stub %s has no physical memory mode (Qqemu.PhyMemMode): not QEMU?",
				   g->where);
	}
	if (off->len != 2 || memcmp(off->p, "OK", 2) != 0)
		return gdb_fail(g, err, "did not confirm switching physical memory mode back off ('%.20s')",
				off->len ? off->p : "");
	if (on->len != 2 || memcmp(on->p, "OK", 2) != 0)
		return kbu_err_set(err, KBU_EUNSUPPORTED,
				   "gdb stub %s refused physical memory mode ('%.20s')", g->where, on->p);
	return 0;
}

static int no_phys(struct kbu_gdb *g, struct kbu_err *err)
{
	return kbu_err_set(err, KBU_EUNSUPPORTED,
			   "gdb stub %s has no physical memory mode (Qqemu.PhyMemMode): not QEMU?", g->where);
}

static int gdb_read(void *ctx, enum kbu_space space, uint64_t addr, void *buf, size_t len,
		    struct kbu_err *err)
{
	struct kbu_gdb *g = ctx;
	unsigned char *out = buf;
	size_t chunk = g->per_m;
	int phys = space == KBU_PHYS;
	if (len > 0 && addr + (len - 1) < addr)
		return kbu_err_set(err, KBU_EINVAL, "read of %zu bytes at 0x%llx wraps around", len,
				   (unsigned long long)addr);
	if (phys && g->no_phys)
		return no_phys(g, err);
	while (len > 0) {
		struct rsp_req req[RSP_MAX_BATCH + 2];
		int n = 0, nm = 0;
		memset(req, 0, sizeof req);
		if (phys)
			snprintf(req[n++].pkt, sizeof req[0].pkt, "Qqemu.PhyMemMode:1");
		size_t off = 0;
		while (off < len && nm < RSP_MAX_BATCH) {
			size_t c = len - off < chunk ? len - off : chunk;
			snprintf(req[n++].pkt, sizeof req[0].pkt, "m%llx,%zx",
				 (unsigned long long)(addr + off), c);
			off += c;
			nm++;
		}
		if (phys)
			snprintf(req[n++].pkt, sizeof req[0].pkt, "Qqemu.PhyMemMode:0");
		if (rsp_batch(g, req, n, err)) {
			reqs_free(req, n);
			return -1;
		}
		if (phys && check_phys_mode(g, &req[0].reply, &req[n - 1].reply, err)) {
			reqs_free(req, n);
			return -1;
		}
		size_t done = 0;
		for (int i = phys; i < phys + nm; i++) {
			struct rbuf *r = &req[i].reply;
			size_t want = len - done < chunk ? len - done : chunk;
			uint64_t a = addr + done;
			if (is_error_reply(r)) {
				kbu_err_set(err, KBU_EFAULT,
					    "cannot read %s memory at 0x%llx-0x%llx (gdb stub error %s)",
					    space_name(space), (unsigned long long)a,
					    (unsigned long long)(a + want - 1), r->p);
				reqs_free(req, n);
				return -1;
			}
			if (r->len == 0) {
				kbu_err_set(err, KBU_EUNSUPPORTED, "gdb stub %s does not read memory ('m')",
					    g->where);
				reqs_free(req, n);
				return -1;
			}
			size_t got = r->len / 2;
			int bad = r->len % 2 != 0 || got > want;
			for (size_t k = 0; k < r->len && !bad; k++)
				bad = kbu_hex_digit(r->p[k]) < 0;
			if (bad) {
				reqs_free(req, n);
				return gdb_fail(g, err, "answered 'm%llx,%zx' with '%.24s' (%zu characters)",
						(unsigned long long)a, want, r->p, r->len);
			}
			for (size_t k = 0; k < got; k++)
				out[done + k] = (unsigned char)(kbu_hex_digit(r->p[2 * k]) << 4 | kbu_hex_digit(r->p[2 * k + 1]));
			done += got;
			if (got < want)
				break; /* a short reply: ask again from where it stopped */
		}
		reqs_free(req, n);
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
		return kbu_err_set(err, KBU_EINVAL, "write of %zu bytes at 0x%llx wraps around", len,
				   (unsigned long long)addr);
	if (phys && g->no_phys)
		return no_phys(g, err);
	while (len > 0) {
		enum { NW = 16 };
		struct rsp_req req[NW + 2];
		char *bodies[NW];
		int n = 0, nw = 0, rc = -1;
		memset(req, 0, sizeof req);
		memset(bodies, 0, sizeof bodies);
		if (phys)
			snprintf(req[n++].pkt, sizeof req[0].pkt, "Qqemu.PhyMemMode:1");
		size_t off = 0;
		while (off < len && nw < NW) {
			size_t c = len - off < g->max_write ? len - off : g->max_write;
			char *b = malloc(40 + 2 * c);
			if (!b) {
				kbu_err_set(err, KBU_ENOMEM, "out of memory for a write packet");
				goto out;
			}
			int h = snprintf(b, 40, "M%llx,%zx:", (unsigned long long)(addr + off), c);
			for (size_t k = 0; k < c; k++) {
				b[h + 2 * k] = hexdig[in[off + k] >> 4];
				b[h + 2 * k + 1] = hexdig[in[off + k] & 15];
			}
			bodies[nw] = b;
			req[n].body = b;
			req[n].body_len = (size_t)h + 2 * c;
			n++;
			nw++;
			off += c;
		}
		if (phys)
			snprintf(req[n++].pkt, sizeof req[0].pkt, "Qqemu.PhyMemMode:0");
		if (rsp_batch(g, req, n, err))
			goto out;
		if (phys && check_phys_mode(g, &req[0].reply, &req[n - 1].reply, err))
			goto out;
		size_t done = 0;
		for (int i = phys; i < phys + nw; i++) {
			struct rbuf *r = &req[i].reply;
			size_t c = len - done < g->max_write ? len - done : g->max_write;
			if (r->len != 2 || memcmp(r->p, "OK", 2) != 0) {
				kbu_err_set(err, is_error_reply(r) ? KBU_EFAULT : KBU_EUNSUPPORTED,
					    "cannot write %s memory at 0x%llx-0x%llx (gdb stub replied '%.20s')",
					    space_name(space), (unsigned long long)(addr + done),
					    (unsigned long long)(addr + done + c - 1), r->len ? r->p : "");
				goto out;
			}
			done += c;
		}
		in += off;
		addr += off;
		len -= off;
		rc = 0;
out:
		reqs_free(req, n);
		for (int i = 0; i < NW; i++)
			free(bodies[i]);
		if (rc)
			return -1;
	}
	return 0;
}

/* ---- monitor ---- */

static int gdb_monitor_text(struct kbu_gdb *g, const char *cmd, char **out, struct kbu_err *err)
{
	if (gdb_alive(g, err))
		return -1;
	size_t cl = strlen(cmd);
	if (6 + 2 * cl + 4 > g->packet_size)
		return kbu_err_set(err, KBU_EINVAL, "monitor command of %zu characters is too long for the stub",
				   cl);
	char *pkt = malloc(7 + 2 * cl);
	if (!pkt)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory for a monitor command");
	memcpy(pkt, "qRcmd,", 6);
	for (size_t i = 0; i < cl; i++) {
		pkt[6 + 2 * i] = hexdig[(unsigned char)cmd[i] >> 4];
		pkt[6 + 2 * i + 1] = hexdig[(unsigned char)cmd[i] & 15];
	}
	pkt[6 + 2 * cl] = '\0';
	g->out.len = 0;
	int rc = rsp_frame(&g->out, pkt, 6 + 2 * cl, err);
	free(pkt);
	if (rc)
		return -1;
	g->st.round_trips++;
	g->st.packets_sent++;
	char what[48];
	snprintf(what, sizeof what, "monitor %.30s", cmd);
	if (rsp_send_all(g, g->out.p, g->out.len, err) || (g->ack && rsp_wait_ack(g, what, err)))
		return -1;
	struct rbuf text = {0}, r = {0};
	int stale = 0;
	if (buf_reserve(&text, 0, err))
		return -1;
	for (;;) {
		if (rsp_recv(g, &r, what, -1, 0, err))
			goto fail;
		if (is_stale(RK_RCMD, &r)) {
			g->stale_replies++;
			if (++stale > RSP_MAX_STALE) {
				gdb_fail(g, err, "sent more than %d stale replies before the output of '%s'",
					 RSP_MAX_STALE, cmd);
				goto fail;
			}
			continue;
		}
		if (r.len == 2 && memcmp(r.p, "OK", 2) == 0)
			break;
		if (r.len == 0) {
			kbu_err_set(err, KBU_EUNSUPPORTED, "gdb stub %s has no monitor (qRcmd)", g->where);
			goto fail;
		}
		if (is_error_reply(&r)) {
			kbu_err_set(err, KBU_EINVAL, "monitor command '%s' failed (gdb stub error %s)%s%.200s",
				    cmd, r.p, text.len ? ": " : "", text.p);
			goto fail;
		}
		/* "O<hex>" is console output; bare hex is a final answer from some stubs. */
		size_t start = r.p[0] == 'O' ? 1 : 0;
		size_t hl = r.len - start;
		int bad = hl % 2 != 0;
		for (size_t k = start; k < r.len && !bad; k++)
			bad = kbu_hex_digit(r.p[k]) < 0;
		if (bad) {
			gdb_fail(g, err, "answered monitor command '%s' with '%.24s'", cmd, r.p);
			goto fail;
		}
		if (text.len + hl / 2 > RSP_MAX_MONITOR) {
			gdb_fail(g, err, "monitor output of '%s' exceeds %u bytes", cmd, RSP_MAX_MONITOR);
			goto fail;
		}
		if (buf_reserve(&text, hl / 2, err))
			goto fail;
		for (size_t k = 0; k < hl / 2; k++)
			text.p[text.len++] = (char)(kbu_hex_digit(r.p[start + 2 * k]) << 4 | kbu_hex_digit(r.p[start + 2 * k + 1]));
		text.p[text.len] = '\0';
		if (start == 0)
			break;
	}
	buf_free(&r);
	*out = text.p;
	return 0;
fail:
	buf_free(&r);
	buf_free(&text);
	return -1;
}

static int gdb_monitor(void *ctx, const char *cmd, char **out, struct kbu_err *err)
{
	struct kbu_gdb *g = ctx;
	g->cpu_text_valid = 0; /* "cont", "system_reset", ...: the CPUs may change */
	return gdb_monitor_text(g, cmd, out, err);
}

/*
 * Guest RAM and ROM from QEMU's "info mtree -f": the flat view of the
 * "memory" address space, lines "  START-END (prio N, ram): name". QEMU reads
 * unbacked physical memory as zeros through the stub, so scans need this to
 * tell memory from nothing.
 */
static int parse_mtree(const char *text, uint64_t *start, uint64_t *end, int max)
{
	int n = 0, in_memory = 0;
	const char *line = text;
	while (*line && n < max) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		if (len >= 8 && strncmp(line, "FlatView", 8) == 0)
			in_memory = 0;
		else if (len >= 12 && strncmp(line, " AS \"memory\"", 12) == 0)
			in_memory = 1;
		else if (in_memory && len > 40 && line[0] == ' ' && line[1] == ' ') {
			unsigned long long a, b;
			char kind[16];
			int prio;
			if (sscanf(line, " %llx-%llx (prio %d, %15[^)])", &a, &b, &prio, kind) == 4 &&
			    b >= a && b < UINT64_MAX && (strncmp(kind, "ram", 3) == 0 || strncmp(kind, "rom", 3) == 0)) {
				if (n > 0 && end[n - 1] == a)
					end[n - 1] = b + 1;
				else {
					start[n] = a;
					end[n] = b + 1;
					n++;
				}
			}
		}
		if (!eol)
			break;
		line = eol + 1;
	}
	return n;
}

static int gdb_ranges(void *ctx, uint64_t *start, uint64_t *end, int max)
{
	struct kbu_gdb *g = ctx;
	if (g->nranges < 0) {
		char *text = NULL;
		struct kbu_err e = {0};
		g->nranges = 0;
		if (gdb_monitor_text(g, "info mtree -f", &text, &e) == 0)
			g->nranges = parse_mtree(text, g->range_start, g->range_end, 64);
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

static int xml_attr(const char *tag, const char *end, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *p = tag; p + nl + 2 < end; p++) {
		if (!isspace((unsigned char)p[0]) || strncmp(p + 1, name, nl) != 0 || p[1 + nl] != '=')
			continue;
		char q = p[2 + nl];
		if (q != '"' && q != '\'')
			continue;
		const char *v = p + 3 + nl;
		const char *ve = memchr(v, q, (size_t)(end - v));
		if (!ve || (size_t)(ve - v) + 1 > cap)
			return -1;
		memcpy(out, v, (size_t)(ve - v));
		out[ve - v] = '\0';
		return 0;
	}
	return -1;
}

static int gdb_xfer(struct kbu_gdb *g, const char *annex, struct rbuf *doc, struct kbu_err *err)
{
	size_t chunk = g->packet_size > 64 ? g->packet_size - 16 : 48;
	doc->len = 0;
	for (;;) {
		char pkt[160];
		snprintf(pkt, sizeof pkt, "qXfer:features:read:%s:%zx,%zx", annex, doc->len, chunk);
		struct rbuf r = {0};
		if (rsp_one(g, pkt, &r, err)) {
			buf_free(&r);
			return -1;
		}
		if (r.len == 0 || (r.p[0] != 'm' && r.p[0] != 'l')) {
			kbu_err_set(err, r.len == 0 ? KBU_EUNSUPPORTED : KBU_EFORMAT,
				    "gdb stub %s: cannot read target description '%s' ('%.20s')", g->where,
				    annex, r.len ? r.p : "");
			buf_free(&r);
			return -1;
		}
		int last = r.p[0] == 'l';
		size_t got = r.len - 1;
		if (doc->len + got > RSP_MAX_XML) {
			buf_free(&r);
			return kbu_err_set(err, KBU_EFORMAT, "gdb stub %s: target description '%s' exceeds %u bytes",
					   g->where, annex, RSP_MAX_XML);
		}
		int rc = buf_put(doc, r.p + 1, got, err);
		buf_free(&r);
		if (rc)
			return -1;
		if (last)
			return 0;
		if (got == 0) /* "more to come" with nothing in it would never end */
			return kbu_err_set(err, KBU_EFORMAT,
					   "gdb stub %s: empty piece of target description '%s' at offset 0x%zx",
					   g->where, annex, doc->len);
	}
}

static int parse_description(struct kbu_gdb *g, const char *annex, int depth, unsigned *next,
			     struct kbu_err *err)
{
	if (depth > 4 || ++g->xml_files > RSP_MAX_XML_FILES)
		return kbu_err_set(err, KBU_EFORMAT, "gdb stub %s: target description includes nest too deep",
				   g->where);
	struct rbuf doc = {0};
	if (gdb_xfer(g, annex, &doc, err)) {
		buf_free(&doc);
		return -1;
	}
	const char *p = doc.p ? doc.p : "", *end = p + doc.len;
	int rc = 0;
	while (rc == 0 && (p = memchr(p, '<', (size_t)(end - p))) != NULL) {
		if (end - p >= 4 && strncmp(p, "<!--", 4) == 0) {
			const char *c = strstr(p + 4, "-->");
			if (!c)
				break;
			p = c + 3;
			continue;
		}
		const char *te = memchr(p, '>', (size_t)(end - p));
		if (!te)
			break;
		char v[128];
		if (strncmp(p, "<xi:include", 11) == 0 && isspace((unsigned char)p[11])) {
			if (xml_attr(p, te, "href", v, sizeof v) == 0) {
				for (char *c = v; *c; c++)
					if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != '_') {
						rc = kbu_err_set(err, KBU_EFORMAT,
								 "gdb stub %s: odd include name '%s' in '%s'",
								 g->where, v, annex);
						break;
					}
				if (rc == 0)
					rc = parse_description(g, v, depth + 1, next, err);
			}
		} else if (strncmp(p, "<reg", 4) == 0 && isspace((unsigned char)p[4])) {
			char name[32], bits[16];
			if (xml_attr(p, te, "name", name, sizeof name) == 0 &&
			    xml_attr(p, te, "bitsize", bits, sizeof bits) == 0) {
				char *e;
				unsigned long b = strtoul(bits, &e, 10);
				if (*e || b == 0 || b > 4096) {
					rc = kbu_err_set(err, KBU_EFORMAT, "gdb stub %s: register %s has bitsize '%s'",
							 g->where, name, bits);
					break;
				}
				if (xml_attr(p, te, "regnum", v, sizeof v) == 0) {
					unsigned long n = strtoul(v, &e, 10);
					if (*e || n > 65535) {
						rc = kbu_err_set(err, KBU_EFORMAT,
								 "gdb stub %s: register %s has regnum '%s'",
								 g->where, name, v);
						break;
					}
					*next = (unsigned)n;
				}
				if (g->nregs >= RSP_MAX_REGS) {
					rc = kbu_err_set(err, KBU_EFORMAT, "gdb stub %s: more than %d registers",
							 g->where, RSP_MAX_REGS);
					break;
				}
				struct gdb_reg *r = &g->regs[g->nregs++];
				snprintf(r->name, sizeof r->name, "%s", name);
				r->bits = (unsigned)b;
				r->num = (*next)++;
				r->goff = -1;
			}
		}
		p = te + 1;
	}
	buf_free(&doc);
	return rc;
}

static int reg_cmp(const void *a, const void *b)
{
	const struct gdb_reg *x = a, *y = b;
	return x->num < y->num ? -1 : x->num > y->num;
}

static int load_layout(struct kbu_gdb *g, struct kbu_err *err)
{
	if (g->layout_loaded)
		return 0;
	if (!g->has_xml)
		return kbu_err_set(err, KBU_EUNSUPPORTED,
				   "gdb stub %s offers no target description (qXfer:features:read)", g->where);
	free(g->regs);
	g->regs = calloc(RSP_MAX_REGS, sizeof *g->regs);
	if (!g->regs)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory for the register layout");
	g->nregs = 0;
	g->xml_files = 0;
	unsigned next = 0;
	if (parse_description(g, "target.xml", 0, &next, err))
		return -1;
	if (g->nregs == 0)
		return kbu_err_set(err, KBU_EFORMAT, "gdb stub %s: target description lists no registers",
				   g->where);
	qsort(g->regs, (size_t)g->nregs, sizeof *g->regs, reg_cmp);
	/* 'g' holds registers 0, 1, 2, ... back to back until the first gap. */
	long off = 0;
	for (int i = 0; i < g->nregs && g->regs[i].num == (unsigned)i && g->regs[i].bits % 8 == 0; i++) {
		g->regs[i].goff = off;
		off += (long)g->regs[i].bits / 8;
	}
	g->layout_loaded = 1;
	return 0;
}

#define RF(f) offsetof(struct kbu_regs, f), sizeof(((struct kbu_regs *)0)->f)
enum { SET64 = 1, SET32 = 2, OPT = 4 };
static const struct {
	const char *name;
	size_t off, size;
	uint32_t group;
	int set;
} reg_map[] = {
	{"rax", RF(rax), KBU_HAVE_GPR, SET64}, {"rbx", RF(rbx), KBU_HAVE_GPR, SET64},
	{"rcx", RF(rcx), KBU_HAVE_GPR, SET64}, {"rdx", RF(rdx), KBU_HAVE_GPR, SET64},
	{"rsi", RF(rsi), KBU_HAVE_GPR, SET64}, {"rdi", RF(rdi), KBU_HAVE_GPR, SET64},
	{"rbp", RF(rbp), KBU_HAVE_GPR, SET64}, {"rsp", RF(rsp), KBU_HAVE_GPR, SET64},
	{"r8", RF(r8), KBU_HAVE_GPR, SET64},   {"r9", RF(r9), KBU_HAVE_GPR, SET64},
	{"r10", RF(r10), KBU_HAVE_GPR, SET64}, {"r11", RF(r11), KBU_HAVE_GPR, SET64},
	{"r12", RF(r12), KBU_HAVE_GPR, SET64}, {"r13", RF(r13), KBU_HAVE_GPR, SET64},
	{"r14", RF(r14), KBU_HAVE_GPR, SET64}, {"r15", RF(r15), KBU_HAVE_GPR, SET64},
	{"rip", RF(rip), KBU_HAVE_GPR, SET64},
	{"eax", RF(rax), KBU_HAVE_GPR, SET32}, {"ebx", RF(rbx), KBU_HAVE_GPR, SET32},
	{"ecx", RF(rcx), KBU_HAVE_GPR, SET32}, {"edx", RF(rdx), KBU_HAVE_GPR, SET32},
	{"esi", RF(rsi), KBU_HAVE_GPR, SET32}, {"edi", RF(rdi), KBU_HAVE_GPR, SET32},
	{"ebp", RF(rbp), KBU_HAVE_GPR, SET32}, {"esp", RF(rsp), KBU_HAVE_GPR, SET32},
	{"eip", RF(rip), KBU_HAVE_GPR, SET32},
	{"eflags", RF(rflags), KBU_HAVE_GPR, SET64 | SET32},
	{"cs", RF(cs), KBU_HAVE_SEG, 0}, {"ss", RF(ss), KBU_HAVE_SEG, 0},
	{"ds", RF(ds), KBU_HAVE_SEG, 0}, {"es", RF(es), KBU_HAVE_SEG, 0},
	{"fs", RF(fs), KBU_HAVE_SEG, 0}, {"gs", RF(gs), KBU_HAVE_SEG, 0},
	{"fs_base", RF(fs_base), KBU_HAVE_SEGBASE, 0}, {"gs_base", RF(gs_base), KBU_HAVE_SEGBASE, 0},
	{"k_gs_base", RF(kernel_gs_base), KBU_HAVE_SEGBASE, OPT},
	{"cr0", RF(cr0), KBU_HAVE_CR, 0}, {"cr2", RF(cr2), KBU_HAVE_CR, 0},
	{"cr3", RF(cr3), KBU_HAVE_CR, 0}, {"cr4", RF(cr4), KBU_HAVE_CR, 0},
	{"cr8", RF(cr8), KBU_HAVE_CR, OPT},
	{"efer", RF(efer), KBU_HAVE_EFER, 0},
};
#define NMAP (sizeof reg_map / sizeof reg_map[0])

static void store_field(struct kbu_regs *out, size_t m, uint64_t v)
{
	char *f = (char *)out + reg_map[m].off;
	if (reg_map[m].size == 2) {
		uint16_t s = (uint16_t)v;
		memcpy(f, &s, 2);
	} else {
		memcpy(f, &v, 8);
	}
}

/* Little-endian hex of nbytes (at most 8) into v; 0 if every digit is hex. */
static int hex_le(const char *h, size_t nbytes, uint64_t *v)
{
	*v = 0;
	for (size_t k = 0; k < nbytes; k++) {
		int a = kbu_hex_digit(h[2 * k]), b = kbu_hex_digit(h[2 * k + 1]);
		if (a < 0 || b < 0)
			return -1; /* 'xx': the stub does not have it */
		*v |= (uint64_t)(a << 4 | b) << (8 * k);
	}
	return 0;
}

/*
 * What the stub's register set lacks, from QEMU's "info registers -a": the
 * section "CPU#<index>", its segment bases ("CS =0008 <base> <limit> <flags>")
 * and descriptor tables ("GDT=     <base> <limit>"). Sets *bases when all six
 * bases were read, *dt when both tables were.
 */
static void parse_info_registers(const char *text, int index, struct kbu_regs *out, int *bases,
				 int *dt)
{
	*bases = *dt = 0;
	char tag[24];
	int tl = snprintf(tag, sizeof tag, "CPU#%d", index);
	const char *p = text;
	for (;; p += tl) {
		p = strstr(p, tag);
		if (!p)
			return;
		if ((p == text || p[-1] == '\n') && (p[tl] == '\r' || p[tl] == '\n'))
			break;
	}
	const char *end = strstr(p + tl, "CPU#");
	if (!end)
		end = p + strlen(p);
	static const char seg_names[6][5] = {"ES =", "CS =", "SS =", "DS =", "FS =", "GS ="};
	uint64_t *seg_base[6] = {&out->es_base, &out->cs_base, &out->ss_base,
				 &out->ds_base, NULL, NULL}; /* fs/gs bases come from the stub */
	unsigned segs = 0, tables = 0;
	for (const char *line = p; line < end;) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		size_t len = eol ? (size_t)(eol - line) : (size_t)(end - line);
		unsigned sel, limit;
		unsigned long long base;
		for (int k = 0; k < 6 && len > 8; k++)
			if (memcmp(line, seg_names[k], 4) == 0 &&
			    sscanf(line + 4, "%x %llx", &sel, &base) == 2) {
				if (seg_base[k])
					*seg_base[k] = base;
				segs |= 1u << k;
			}
		if (len > 8 && (memcmp(line, "GDT=", 4) == 0 || memcmp(line, "IDT=", 4) == 0) &&
		    sscanf(line + 4, " %llx %x", &base, &limit) == 2) {
			if (line[0] == 'G') {
				out->gdt_base = base;
				out->gdt_limit = limit;
				tables |= 1;
			} else {
				out->idt_base = base;
				out->idt_limit = limit;
				tables |= 2;
			}
		}
		line = eol ? eol + 1 : end;
	}
	*bases = segs == 0x3f;
	*dt = tables == 3;
}

static int gdb_regs(void *ctx, int cpu, struct kbu_regs *out, struct kbu_err *err)
{
	struct kbu_gdb *g = ctx;
	if (gdb_alive(g, err))
		return -1;
	if (cpu < 0 || (g->nthreads > 0 && cpu >= g->nthreads) || (g->nthreads == 0 && cpu != 0))
		return kbu_err_set(err, KBU_EINVAL, "no CPU %d: gdb stub %s reports %d", cpu, g->where,
				   g->nthreads);
	if (load_layout(g, err))
		return -1;
	int select = cpu != 0;
	int found[NMAP] = {0};
	int where[NMAP]; /* index into g->regs, -1 if the stub has no such register */
	for (size_t m = 0; m < NMAP; m++) {
		where[m] = -1;
		for (int i = 0; i < g->nregs; i++)
			if (strcmp(g->regs[i].name, reg_map[m].name) == 0)
				where[m] = i;
	}
	memset(out, 0, sizeof *out);

	struct rsp_req req[NMAP + 2];
	memset(req, 0, sizeof req);
	int n = 0;
	if (select)
		snprintf(req[n++].pkt, sizeof req[0].pkt, "Hg%llx", (unsigned long long)g->threads[cpu]);
	int gi = n;
	snprintf(req[n++].pkt, sizeof req[0].pkt, "g");
	if (select)
		snprintf(req[n++].pkt, sizeof req[0].pkt, "Hg%llx", (unsigned long long)g->threads[0]);
	/* QEMU's monitor has the segment bases and GDT/IDT the stub does not send. */
	static const char info_regs[] = "info registers -a";
	int mi = -1;
	if (g->qemu && !g->cpu_text_valid) {
		mi = n++;
		req[mi].rcmd = 1;
		memcpy(req[mi].pkt, "qRcmd,", 6);
		for (size_t k = 0; k < sizeof info_regs - 1; k++) {
			req[mi].pkt[6 + 2 * k] = hexdig[(unsigned char)info_regs[k] >> 4];
			req[mi].pkt[7 + 2 * k] = hexdig[(unsigned char)info_regs[k] & 15];
		}
	}
	if (rsp_batch(g, req, n, err)) {
		reqs_free(req, n);
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
		parse_info_registers(g->cpu_text.p, index, out, &mon_bases, &mon_dt);
	}
	if (select && (req[0].reply.len != 2 || memcmp(req[0].reply.p, "OK", 2) != 0)) {
		kbu_err_set(err, KBU_ECONN, "gdb stub %s refused to select CPU %d (thread %llx): '%.20s'",
			    g->where, cpu, (unsigned long long)g->threads[cpu], req[0].reply.p);
		reqs_free(req, n);
		return -1;
	}
	struct rbuf *gr = &req[gi].reply;
	size_t glen = is_error_reply(gr) ? 0 : gr->len / 2;
	/* Trust 'g' only when it ends exactly on a register boundary of the layout. */
	int g_ok = 0;
	if (glen > 0 && gr->len % 2 == 0) {
		for (int i = 0; i < g->nregs && g->regs[i].goff >= 0; i++)
			if ((size_t)g->regs[i].goff + g->regs[i].bits / 8 == glen)
				g_ok = 1;
	}
	int need_p = 0;
	for (size_t m = 0; m < NMAP; m++) {
		int i = where[m];
		if (i < 0)
			continue;
		const struct gdb_reg *r = &g->regs[i];
		uint64_t v;
		if (g_ok && r->goff >= 0 && (size_t)r->goff + r->bits / 8 <= glen && r->bits <= 64 &&
		    hex_le(gr->p + 2 * r->goff, r->bits / 8, &v) == 0) {
			store_field(out, m, v);
			found[m] = 1;
		} else if (r->bits <= 64) {
			need_p = 1;
		}
	}
	reqs_free(req, n);

	if (need_p) { /* 'g' was short or odd: read the rest one by one, in one batch */
		int map_of[NMAP + 2];
		n = 0;
		memset(req, 0, sizeof req);
		if (select)
			snprintf(req[n++].pkt, sizeof req[0].pkt, "Hg%llx", (unsigned long long)g->threads[cpu]);
		for (size_t m = 0; m < NMAP; m++) {
			if (where[m] < 0 || found[m] || g->regs[where[m]].bits > 64)
				continue;
			map_of[n] = (int)m;
			snprintf(req[n++].pkt, sizeof req[0].pkt, "p%x", g->regs[where[m]].num);
		}
		int last = n;
		if (select)
			snprintf(req[n++].pkt, sizeof req[0].pkt, "Hg%llx", (unsigned long long)g->threads[0]);
		if (rsp_batch(g, req, n, err)) {
			reqs_free(req, n);
			return -1;
		}
		for (int k = select; k < last; k++) {
			struct rbuf *r = &req[k].reply;
			uint64_t v;
			/* In 32-bit mode a stub may send 4 bytes where the layout says 8. */
			if (r->len >= 2 && r->len <= 16 && r->len % 2 == 0 && !is_error_reply(r) &&
			    hex_le(r->p, r->len / 2, &v) == 0) {
				store_field(out, (size_t)map_of[k], v);
				found[map_of[k]] = 1;
			}
		}
		reqs_free(req, n);
	}

	/* A group counts only when every register it needs came back. */
	int all64 = 1, all32 = 1;
	uint32_t missing = 0;
	for (size_t m = 0; m < NMAP; m++) {
		if (reg_map[m].set & SET64)
			all64 &= found[m];
		if (reg_map[m].set & SET32)
			all32 &= found[m];
		if (!(reg_map[m].set & (SET64 | SET32 | OPT)) && !found[m])
			missing |= reg_map[m].group;
	}
	out->have = 0;
	if (all64 || all32)
		out->have |= KBU_HAVE_GPR;
	uint32_t groups[] = {KBU_HAVE_SEG, KBU_HAVE_SEGBASE, KBU_HAVE_CR, KBU_HAVE_EFER};
	for (size_t k = 0; k < sizeof groups / sizeof groups[0]; k++)
		if (!(missing & groups[k]))
			out->have |= groups[k];
	/* QEMU masks registers to 32 bits unless the CPU runs 64-bit code. */
	if (out->have & KBU_HAVE_EFER)
		out->bits = (out->efer & (1u << 10)) ? 64 : 32;
	else
		out->bits = all64 ? 64 : 32;
	/* The stub sends fs/gs bases only: the others are known from the monitor,
	 * or in long mode, where the CPU ignores them. */
	if (!mon_bases && out->bits != 64)
		out->have &= ~(uint32_t)KBU_HAVE_SEGBASE;
	if (mon_dt)
		out->have |= KBU_HAVE_DT;
	if (!out->have)
		return kbu_err_set(err, KBU_EFORMAT, "gdb stub %s returned no usable registers for CPU %d",
				   g->where, cpu);
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

struct kbu_mem *kbu_mem_open_gdb_ex(const char *hostport, const struct kbu_gdb_opts *opts,
				    struct kbu_gdb **conn, struct kbu_err *err)
{
	struct kbu_gdb *g = kbu_gdb_open(hostport, opts, err);
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

struct kbu_mem *kbu_mem_open_gdb(const char *hostport, struct kbu_err *err)
{
	return kbu_mem_open_gdb_ex(hostport, NULL, NULL, err);
}

uint64_t kbu_mem_gdb_round_trips(struct kbu_mem *m)
{
	if (!m || strcmp(kbu_mem_kind(m), "gdb") != 0)
		return 0;
	const struct kbu_gdb *g = kbu_mem_source_ctx(m);
	return g ? g->st.round_trips : 0;
}
