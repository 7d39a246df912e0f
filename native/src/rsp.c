/*
 * kbu: the GDB remote serial protocol, client side: the connection (TCP or a
 * UNIX socket), framing, checksums and acks, run-length decoding, the shapes
 * replies may take, pipelined batches and getting back in step.
 *
 * Every receive has a deadline that names its limit, every length from the
 * stub is checked, and the first transport failure (timeout, close, checksum)
 * makes the connection unusable with that message: after a lost reply the
 * stream is out of step and nothing read later could be trusted.
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
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "kbu/util.h"
#include "rsp.h"

static const char hexdig[] = "0123456789abcdef";

int64_t rsp_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- buffers ---- */

int rbuf_reserve(struct rbuf *b, size_t extra, struct kbu_err *err)
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

int rbuf_put(struct rbuf *b, const void *d, size_t n, struct kbu_err *err)
{
	if (rbuf_reserve(b, n, err))
		return -1;
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

void rbuf_free(struct rbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void rsp_pkt_name(const char *p, size_t n, char *out, size_t cap)
{
	if (cap == 0)
		return;
	size_t need = kbu_escape(p, n, NULL, out, cap);
	if (need >= cap && cap > 4)
		memcpy(out + (strlen(out) > cap - 4 ? cap - 4 : strlen(out)), "...", 4);
}

void rsp_hex_encode(const void *p, size_t n, char *out)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdig[b[i] >> 4];
		out[2 * i + 1] = hexdig[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- the connection ---- */

void rsp_conn_init(struct rsp_conn *c, const char *where, int reply_timeout_ms)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	c->ack = 1;
	c->reply_timeout_ms = reply_timeout_ms;
	snprintf(c->reply_limit, sizeof c->reply_limit, "%d ms (KBU_GDB_TIMEOUT sets it)",
		 reply_timeout_ms);
	kbu_escape(where, strlen(where), NULL, c->where, sizeof c->where);
}

void rsp_conn_free(struct rsp_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	rbuf_free(&c->out);
	rbuf_free(&c->raw);
}

void rsp_set_command_limit(struct rsp_conn *c, int limit_ms)
{
	c->cmd_limit_ms = limit_ms;
	c->cmd_deadline = limit_ms > 0 ? rsp_now_ms() + limit_ms : 0;
}

static void command_limit_text(const struct rsp_conn *c, char *out, size_t cap)
{
	if (c->cmd_limit_ms % 1000 == 0)
		snprintf(out, cap, "the command's time limit of %d s (--timeout)", c->cmd_limit_ms / 1000);
	else
		snprintf(out, cap, "the command's time limit of %d ms (--timeout)", c->cmd_limit_ms);
}

struct rsp_deadline rsp_short_deadline(const struct rsp_conn *c, int ms, const char *what)
{
	struct rsp_deadline d;
	d.at = rsp_now_ms() + ms;
	snprintf(d.what, sizeof d.what, "%s", what);
	if (c->cmd_deadline && c->cmd_deadline < d.at) {
		d.at = c->cmd_deadline;
		command_limit_text(c, d.what, sizeof d.what);
	}
	return d;
}

struct rsp_deadline rsp_reply_deadline(const struct rsp_conn *c)
{
	return rsp_short_deadline(c, c->reply_timeout_ms, c->reply_limit);
}

int rsp_fail(struct rsp_conn *c, struct kbu_err *err, const char *fmt, ...)
{
	char msg[420];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	kbu_err_set(&c->dead_err, KBU_ECONN, "gdb stub %s: %s", c->where, msg);
	c->dead = 1;
	if (err)
		*err = c->dead_err;
	return -1;
}

int rsp_alive(struct rsp_conn *c, struct kbu_err *err)
{
	if (!c->dead)
		return 0;
	kbu_err_set(err, KBU_ECONN, "%s (the connection is unusable after that error)",
		    c->dead_err.msg);
	return -1;
}

/* Waits until fd is ready for events or the deadline passes: 1 ready, 0 timed out. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - rsp_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd pfd = {.fd = fd, .events = events};
		int r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return 1; /* let the caller's send or recv report it */
	}
}

/* Finishes a non-blocking connect(); 0 or an errno. */
static int connect_wait(int fd, const struct sockaddr *sa, socklen_t sl, int timeout_ms)
{
	if (connect(fd, sa, sl) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN)
		return errno;
	if (!wait_fd(fd, POLLOUT, rsp_now_ms() + timeout_ms))
		return ETIMEDOUT;
	int soerr = 0;
	socklen_t len = sizeof soerr;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
		return errno;
	return soerr;
}

static int unix_connect(struct rsp_conn *c, const char *path, int timeout_ms, struct kbu_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path)
		return kbu_err_set(err, KBU_EINVAL, "gdb stub socket path '%s' is longer than %zu bytes",
				   c->where, sizeof sa.sun_path - 1);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kbu_err_set(err, KBU_ECONN, "gdb stub %s: socket: %s", c->where, strerror(errno));
	int e = connect_wait(fd, (const struct sockaddr *)&sa, sizeof sa, timeout_ms);
	if (e) {
		close(fd);
		return kbu_err_set(err, KBU_ECONN,
				   "cannot connect to gdb stub socket %s: %s (is the VMM running with "
				   "its GDB socket there?)", c->where,
				   e == ETIMEDOUT ? "timed out" : strerror(e));
	}
	c->fd = fd;
	return 0;
}

static int tcp_connect(struct rsp_conn *c, const char *spec, int timeout_ms, struct kbu_err *err)
{
	char host[256], port[16];
	if (kbu_rsp_parse_hostport(spec, host, sizeof host, port, sizeof port, err))
		return -1;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		return kbu_err_set(err, KBU_ECONN, "gdb stub %s: cannot resolve '%s': %s", c->where, host,
				   gai_strerror(rc));
	char why[160] = "no address";
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		if (fd < 0) {
			snprintf(why, sizeof why, "%s", strerror(errno));
			continue;
		}
		int e = connect_wait(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms);
		if (e == 0) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			freeaddrinfo(res);
			c->fd = fd;
			return 0;
		}
		snprintf(why, sizeof why, "%s", e == ETIMEDOUT ? "timed out" : strerror(e));
		close(fd);
	}
	freeaddrinfo(res);
	return kbu_err_set(err, KBU_ECONN,
			   "cannot connect to gdb stub at %s: %s (is QEMU running with -gdb tcp::PORT?)",
			   c->where, why);
}

int rsp_connect(struct rsp_conn *c, const char *spec, int timeout_ms, struct kbu_err *err)
{
	if (spec && strncmp(spec, "unix:", 5) == 0)
		return unix_connect(c, spec + 5, timeout_ms, err);
	if (spec && strchr(spec, '/'))
		return unix_connect(c, spec, timeout_ms, err);
	return tcp_connect(c, spec, timeout_ms, err);
}

/* ---- transport ---- */

int rsp_send_all(struct rsp_conn *c, const char *d, size_t n, struct kbu_err *err)
{
	struct rsp_deadline dl = rsp_reply_deadline(c);
	while (n > 0) {
		ssize_t w = send(c->fd, d, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			d += w;
			n -= (size_t)w;
			c->st.bytes_sent += (uint64_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!wait_fd(c->fd, POLLOUT, dl.at))
				return rsp_fail(c, err, "stopped taking data within %s", dl.what);
			continue;
		}
		if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
			return rsp_fail(c, err, "closed the connection");
		return rsp_fail(c, err, "send failed: %s", strerror(errno));
	}
	return 0;
}

/* One byte, or -1 (error set, connection dead), or RSP_TIMEOUT when soft. */
static int rsp_getc(struct rsp_conn *c, const struct rsp_deadline *dl, const char *what, int soft,
		    struct kbu_err *err)
{
	while (c->in_pos >= c->in_len) {
		if (!wait_fd(c->fd, POLLIN, dl->at)) {
			if (soft)
				return RSP_TIMEOUT;
			return rsp_fail(c, err, "no reply to '%s' within %s", what, dl->what);
		}
		ssize_t n = recv(c->fd, c->in, sizeof c->in, MSG_DONTWAIT);
		/* A reset is a close that came after data of ours was in flight. */
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return rsp_fail(c, err, "closed the connection while we waited for the reply to '%s'",
					what);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return rsp_fail(c, err, "receive failed while waiting for '%s': %s", what,
					strerror(errno));
		}
		c->in_pos = 0;
		c->in_len = (size_t)n;
		c->st.bytes_received += (uint64_t)n;
	}
	return c->in[c->in_pos++];
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

int rsp_recv(struct rsp_conn *c, struct rbuf *body, const char *what,
	     const struct rsp_deadline *dl, int soft, struct kbu_err *err)
{
	struct rsp_deadline own;
	if (!dl) {
		own = rsp_reply_deadline(c);
		dl = &own;
	}
	for (int tries = 0;; tries++) {
		size_t garbage = 0;
		int ch;
		for (;;) {
			ch = rsp_getc(c, dl, what, soft, err);
			if (ch < 0)
				return ch;
			if (ch == '$')
				break;
			if (ch == '+')
				continue;
			if (ch == '-') {
				if (c->ack && c->in_batch)
					return rsp_fail(c, err, "rejected one of our packets before '%s'", what);
				continue;
			}
			if (++garbage > RSP_MAX_GARBAGE)
				return rsp_fail(c, err,
						"sent %u bytes that are not packets while we waited for '%s' "
						"(last byte 0x%02x): not a GDB stub?", RSP_MAX_GARBAGE, what, ch);
		}
		/* Once a packet has begun, the rest of it is due by the same deadline
		 * (a soft probe included: half a packet is not silence). */
		c->raw.len = 0;
		for (;;) {
			ch = rsp_getc(c, dl, what, 0, err);
			if (ch < 0)
				return -1;
			if (ch == '#')
				break;
			if (ch == '$') { /* a new packet start: the previous one was cut */
				c->raw.len = 0;
				continue;
			}
			if (c->raw.len >= RSP_MAX_PACKET)
				return rsp_fail(c, err, "reply to '%s' is longer than %u bytes", what,
						RSP_MAX_PACKET);
			char b = (char)ch;
			if (rbuf_put(&c->raw, &b, 1, err))
				return -1;
		}
		int h1 = rsp_getc(c, dl, what, 0, err);
		if (h1 < 0)
			return -1;
		int h2 = rsp_getc(c, dl, what, 0, err);
		if (h2 < 0)
			return -1;
		if (kbu_hex_digit(h1) < 0 || kbu_hex_digit(h2) < 0)
			return rsp_fail(c, err, "reply to '%s' has checksum characters 0x%02x 0x%02x, not hex",
					what, h1, h2);
		unsigned want = (unsigned)(kbu_hex_digit(h1) << 4 | kbu_hex_digit(h2));
		unsigned got = kbu_rsp_checksum(c->raw.p ? c->raw.p : "", c->raw.len);
		if (want != got) {
			if (c->ack && !c->in_batch && tries < RSP_RETRIES) {
				if (rsp_send_all(c, "-", 1, err))
					return -1;
				continue;
			}
			return rsp_fail(c, err, "reply to '%s' has a bad checksum (0x%02x, computed 0x%02x)",
					what, want, got);
		}
		if (c->ack && c->in_batch && c->pipeline)
			c->acks_owed++; /* QEMU does not wait for them: one write per batch */
		else if (c->ack && rsp_send_all(c, "+", 1, err))
			return -1;
		c->st.packets_received++;
		body->len = 0;
		size_t cap = rsp_decoded_len(c->raw.p ? c->raw.p : "", c->raw.len);
		if (cap > RSP_MAX_DECODED)
			return rsp_fail(c, err, "reply to '%s' expands to more than %u bytes", what,
					RSP_MAX_DECODED);
		if (rbuf_reserve(body, cap, err))
			return -1;
		struct kbu_err e = {0};
		if (kbu_rsp_decode(c->raw.p ? c->raw.p : "", c->raw.len, body->p, cap, &body->len, &e))
			return rsp_fail(c, err, "reply to '%s': %s", what, e.msg);
		body->p[body->len] = '\0';
		return 0;
	}
}

int rsp_frame(struct rbuf *out, const char *body, size_t n, struct kbu_err *err)
{
	if (rbuf_reserve(out, 2 * n + 4, err))
		return -1;
	out->p[out->len++] = '$';
	size_t start = out->len;
	for (size_t i = 0; i < n; i++) {
		char ch = body[i];
		if (ch == '$' || ch == '#' || ch == '}' || ch == '*') {
			out->p[out->len++] = '}';
			ch ^= 0x20;
		}
		out->p[out->len++] = ch;
	}
	uint8_t sum = kbu_rsp_checksum(out->p + start, out->len - start);
	out->p[out->len++] = '#';
	out->p[out->len++] = hexdig[sum >> 4];
	out->p[out->len++] = hexdig[sum & 15];
	out->p[out->len] = '\0';
	return 0;
}

int rsp_send_packet(struct rsp_conn *c, const char *body, size_t n, struct kbu_err *err)
{
	c->out.len = 0;
	if (rsp_frame(&c->out, body, n, err))
		return -1;
	c->st.round_trips++;
	c->st.packets_sent++;
	return rsp_send_all(c, c->out.p, c->out.len, err);
}

int rsp_wait_ack(struct rsp_conn *c, const char *what, struct kbu_err *err)
{
	struct rsp_deadline dl = rsp_reply_deadline(c);
	size_t garbage = 0;
	for (int tries = 0;;) {
		int ch = rsp_getc(c, &dl, what, 0, err);
		if (ch < 0)
			return -1;
		if (ch == '+')
			return 0;
		if (ch == '$') { /* replied without an ack: let the reply be read */
			c->in_pos--;
			return 0;
		}
		if (ch == '-') {
			if (++tries > RSP_RETRIES)
				return rsp_fail(c, err, "rejected '%s' %d times", what, tries);
			if (rsp_send_all(c, c->out.p, c->out.len, err))
				return -1;
			continue;
		}
		if (++garbage > RSP_MAX_GARBAGE)
			return rsp_fail(c, err, "sent garbage instead of an acknowledgement of '%s'", what);
	}
}

/* ---- replies and their requests ---- */

/*
 * What a request's reply may look like. Nothing in the protocol ties a reply
 * to its request: replies come back in order, and anything extra in the
 * stream (QEMU's stop packet on connect arriving late, a second answer to a
 * qSupported sent twice) puts every later reply one off. So each reply is
 * checked against the shape its request allows before it is taken.
 */
enum rsp_reply_kind {
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

int rsp_is_error_reply(const struct rbuf *r)
{
	return r->len >= 1 && r->p[0] == 'E' &&
	       ((r->len == 3 && kbu_hex_digit(r->p[1]) >= 0 && kbu_hex_digit(r->p[2]) >= 0) ||
		(r->len >= 2 && r->p[1] == '.'));
}

int rsp_is_stop_reply(const struct rbuf *r)
{
	return r->len >= 3 && (r->p[0] == 'T' || r->p[0] == 'S') && kbu_hex_digit(r->p[1]) >= 0 &&
	       kbu_hex_digit(r->p[2]) >= 0;
}

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
		return is_any_stop(p, n) || rsp_is_error_reply(r);
	if (is_any_stop(p, n)) /* never the answer to anything but '?' */
		return 0;
	if (n == 0 || rsp_is_error_reply(r))
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

/* Returned by recv_req when a reply does not fit its request. */
#define RSP_OUT_OF_STEP (-3)

/*
 * The reply to one request; for a qRcmd, the "O<hex>" output packets before
 * it too. Stale replies are dropped; a reply that does not fit and is not
 * recognisably stale returns RSP_OUT_OF_STEP with err saying what came.
 */
static int recv_req(struct rsp_conn *c, struct rsp_req *r, const char *what, struct kbu_err *err)
{
	int stale = 0;
	for (;;) {
		if (rsp_recv(c, &r->reply, what, NULL, 0, err))
			return -1;
		if (is_stale(r->kind, &r->reply)) {
			c->stale_replies++;
			if (++stale > RSP_MAX_STALE)
				return rsp_fail(c, err, "sent more than %d stale replies before the reply to '%s'",
						RSP_MAX_STALE, what);
			continue;
		}
		if (!reply_fits(r->kind, &r->reply)) {
			char shown[64];
			rsp_pkt_name(r->reply.p ? r->reply.p : "", r->reply.len, shown, 44);
			kbu_err_set(err, KBU_ECONN, "answered '%s' with '%s', which is not a reply to it",
				    what, shown);
			return RSP_OUT_OF_STEP;
		}
		if (!r->rcmd || r->reply.len < 1 || r->reply.p[0] != 'O' ||
		    (r->reply.len == 2 && r->reply.p[1] == 'K'))
			return 0;
		if (r->text.len + r->reply.len / 2 > RSP_MAX_MONITOR)
			return rsp_fail(c, err, "output of '%s' exceeds %u bytes", what, RSP_MAX_MONITOR);
		if (rsp_hex_text(r->reply.p + 1, r->reply.len - 1, &r->text, err))
			return rsp_fail(c, err, "sent console output that is not hex for '%s'", what);
	}
}

static int send_acks(struct rsp_conn *c, struct kbu_err *err)
{
	char acks[RSP_MAX_BATCH + 2];
	while (c->acks_owed > 0) {
		size_t n = c->acks_owed < sizeof acks ? c->acks_owed : sizeof acks;
		memset(acks, '+', n);
		c->acks_owed -= n;
		if (rsp_send_all(c, acks, n, err))
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
 * Without acks, or with a stub that acks without waiting for ours (QEMU's
 * system-mode stub), all packets go out in one write: one round trip.
 * Otherwise one at a time.
 */
static int batch_once(struct rsp_conn *c, struct rsp_req *req, int n, struct kbu_err *err)
{
	char what[48];
	if (!c->ack || (c->pipeline && n > 1)) {
		c->out.len = 0;
		for (int i = 0; i < n; i++) {
			size_t bl;
			const char *b = req_body(&req[i], &bl);
			if (rsp_frame(&c->out, b, bl, err))
				return -1;
		}
		c->st.round_trips++;
		c->st.packets_sent += (uint64_t)n;
		if (rsp_send_all(c, c->out.p, c->out.len, err))
			return -1;
		c->in_batch = 1;
		for (int i = 0; i < n; i++) {
			size_t bl;
			const char *b = req_body(&req[i], &bl);
			rsp_pkt_name(b, bl, what, sizeof what);
			int rc = recv_req(c, &req[i], what, err);
			if (rc) {
				c->in_batch = 0;
				return rc;
			}
		}
		c->in_batch = 0;
		return send_acks(c, err);
	}
	for (int i = 0; i < n; i++) {
		size_t bl;
		const char *b = req_body(&req[i], &bl);
		rsp_pkt_name(b, bl, what, sizeof what);
		if (rsp_send_packet(c, b, bl, err) || (c->ack && rsp_wait_ack(c, what, err)))
			return -1;
		int rc = recv_req(c, &req[i], what, err);
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
static int resync(struct rsp_conn *c, struct kbu_err *err)
{
	static const char marker[] = "qqemu.PhyMemMode";
	c->acks_owed = 0;
	c->resyncs++;
	if (rsp_send_packet(c, marker, sizeof marker - 1, err))
		return -1;
	struct rbuf r = {0};
	for (int k = 0; k < 2 * RSP_MAX_BATCH + RSP_MAX_STALE; k++) {
		if (rsp_recv(c, &r, "qqemu.PhyMemMode (resync)", NULL, 0, err)) {
			rbuf_free(&r);
			return -1;
		}
		if (r.len == 1 && (r.p[0] == '0' || r.p[0] == '1')) {
			rbuf_free(&r);
			return 0;
		}
		c->stale_replies++;
	}
	rbuf_free(&r);
	return rsp_fail(c, err, "could not get back in step: more than %d replies to drop",
			2 * RSP_MAX_BATCH + RSP_MAX_STALE);
}

int rsp_batch(struct rsp_conn *c, struct rsp_req *req, int n, struct kbu_err *err)
{
	if (rsp_alive(c, err))
		return -1;
	int retryable = 1;
	for (int i = 0; i < n; i++) {
		size_t bl;
		const char *b = req_body(&req[i], &bl);
		req[i].kind = reply_kind_of(b, bl);
		if (req[i].kind == RK_ANY)
			retryable = 0; /* "c", "s": sending them twice would run the guest twice */
	}
	int rc = batch_once(c, req, n, err);
	if (rc != RSP_OUT_OF_STEP)
		return rc;
	/* Out of step. With QEMU we can get back in step and ask again; with
	 * another stub, or a request that must not be repeated, we stop here. */
	struct kbu_err why = *err;
	if (!c->can_resync || !retryable)
		return rsp_fail(c, err, "%s (replies out of step)", why.msg);
	if (resync(c, err))
		return -1;
	for (int i = 0; i < n; i++) {
		req[i].reply.len = 0;
		req[i].text.len = 0;
	}
	rc = batch_once(c, req, n, err);
	if (rc == RSP_OUT_OF_STEP) {
		why = *err;
		return rsp_fail(c, err, "%s (still, after getting back in step)", why.msg);
	}
	return rc;
}

void rsp_reqs_free(struct rsp_req *req, int n)
{
	for (int i = 0; i < n; i++) {
		rbuf_free(&req[i].reply);
		rbuf_free(&req[i].text);
	}
}

int rsp_hex_text(const char *h, size_t n, struct rbuf *out, struct kbu_err *err)
{
	if (n % 2)
		return kbu_err_set(err, KBU_EFORMAT, "odd-length hex");
	if (rbuf_reserve(out, n / 2, err))
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

int rsp_one(struct rsp_conn *c, const char *pkt, struct rbuf *reply, struct kbu_err *err)
{
	struct rsp_req r = {.body = pkt, .body_len = strlen(pkt)};
	int rc = rsp_batch(c, &r, 1, err);
	*reply = r.reply;
	rbuf_free(&r.text);
	return rc;
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
		unsigned char ch = (unsigned char)in[i];
		if (ch == '}') {
			if (i + 1 >= len)
				return kbu_err_set(err, KBU_EFORMAT,
						   "packet ends in an escape character at offset %zu", i);
			ch = (unsigned char)in[++i] ^ 0x20;
		} else if (ch == '*') {
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
		out[o++] = (char)ch;
	}
	*out_len = o;
	return 0;
}

int kbu_rsp_parse_hostport(const char *spec, char *host, size_t host_cap, char *port,
			   size_t port_cap, struct kbu_err *err)
{
	if (!spec || !*spec)
		return kbu_err_set(err, KBU_EINVAL,
				   "empty gdb stub address (expected HOST:PORT or a socket path)");
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
			return kbu_err_set(err, KBU_EINVAL,
					   "'%s': expected HOST:PORT (e.g. localhost:1234) or a socket path "
					   "(e.g. /tmp/gdb.socket)", spec);
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
