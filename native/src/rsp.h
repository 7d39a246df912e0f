/*
 * kbu's GDB remote serial protocol, inside libkbu: what the client source
 * (mem_gdb.c), QEMU's extensions (gdb_qemu.c), the target description
 * (gdb_tdesc.c) and the stub server (serve.c) share. Not a public API.
 *
 * rsp.c owns the protocol: the connection (TCP or a UNIX socket), framing,
 * checksums, acks, run-length decoding, reply-shape checks, pipelined batches
 * and getting back in step. It knows nothing of memory or registers.
 */
#ifndef KBU_RSP_H
#define KBU_RSP_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"
#include "kbu/gdbrsp.h"

#define RSP_MAX_PACKET (1u << 20)     /* raw characters in one received packet */
#define RSP_MAX_DECODED (8u << 20)    /* the same after run-length expansion */
#define RSP_MAX_GARBAGE 4096u         /* non-packet bytes tolerated before a packet */
#define RSP_MAX_BATCH 64              /* packets written before reading replies */
#define RSP_MAX_STALE 16              /* stale replies dropped before one request's reply */
#define RSP_MAX_MONITOR (16u << 20)   /* monitor output */
#define RSP_RETRIES 3                 /* resends after a '-' (ack mode only) */
#define RSP_DEFAULT_PACKET 400        /* GDB's assumption when PacketSize is absent */

/* A growing NUL-terminated byte buffer. */
struct rbuf {
	char *p;
	size_t len, cap;
};

int rbuf_reserve(struct rbuf *b, size_t extra, struct kbu_err *err);
int rbuf_put(struct rbuf *b, const void *d, size_t n, struct kbu_err *err);
void rbuf_free(struct rbuf *b);

/*
 * A point in time some wait must not pass, and the limit it comes from, so
 * that a timeout message names the limit that expired ("the 1000 ms connect
 * probe", "10000 ms (KBU_GDB_TIMEOUT)", "the command's 60 s limit").
 */
struct rsp_deadline {
	int64_t at;        /* CLOCK_MONOTONIC milliseconds */
	char what[96];     /* the limit, for messages */
};

struct rsp_conn {
	int fd;
	char where[300];       /* the stub as the user named it */
	int reply_timeout_ms;  /* per reply */
	char reply_limit[64];  /* how that limit reads in messages */
	int64_t cmd_deadline;  /* the whole command's limit (0: none) */
	int cmd_limit_ms;
	int ack;               /* acks on (no QStartNoAckMode) */
	int dead;
	struct kbu_err dead_err;
	int pipeline;  /* the stub takes packets back to back even in ack mode (QEMU) */
	int can_resync; /* the stub has a packet whose answer nothing else produces (QEMU) */
	int in_batch;  /* several packets are in flight: no retransmission possible */
	size_t acks_owed; /* acks of a pipelined batch, sent together at its end */
	struct kbu_gdb_stats st;
	uint64_t stale_replies, resyncs;
	unsigned char in[16384];
	size_t in_pos, in_len;
	struct rbuf out;
	struct rbuf raw;
};

/* One request of a batch and its reply. */
struct rsp_req {
	char pkt[64];
	const char *body; /* when not NULL, sent instead of pkt */
	size_t body_len;
	int rcmd;         /* a qRcmd: console output packets first, into text */
	int kind;         /* enum rsp_reply_kind, set by rsp_batch from the packet */
	struct rbuf reply;
	struct rbuf text;
};

/* Returned by rsp_recv when a soft wait ran out (only for probes). */
#define RSP_TIMEOUT (-2)

int64_t rsp_now_ms(void);
void rsp_conn_init(struct rsp_conn *c, const char *where, int reply_timeout_ms);
void rsp_conn_free(struct rsp_conn *c);
/* Connects to a UNIX socket path (anything with a '/') or HOST:PORT. */
int rsp_connect(struct rsp_conn *c, const char *spec, int timeout_ms, struct kbu_err *err);
/* Sets the whole command's limit: every later wait ends by then. */
void rsp_set_command_limit(struct rsp_conn *c, int limit_ms);
/* The deadline of one reply: now + the reply timeout, or the command's end if sooner. */
struct rsp_deadline rsp_reply_deadline(const struct rsp_conn *c);
/* The same with a shorter wait of ms milliseconds named `what`. */
struct rsp_deadline rsp_short_deadline(const struct rsp_conn *c, int ms, const char *what);

/* Marks the connection dead with a KBU_ECONN message naming the stub. */
int rsp_fail(struct rsp_conn *c, struct kbu_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int rsp_alive(struct rsp_conn *c, struct kbu_err *err);

int rsp_send_all(struct rsp_conn *c, const char *d, size_t n, struct kbu_err *err);
/* Appends "$body#cc" to out, escaping what must be. */
int rsp_frame(struct rbuf *out, const char *body, size_t n, struct kbu_err *err);
/* Frames and sends one packet without waiting for anything. */
int rsp_send_packet(struct rsp_conn *c, const char *body, size_t n, struct kbu_err *err);
/*
 * Receives one packet and decodes it into body (NUL-terminated). soft: a
 * timeout returns RSP_TIMEOUT and leaves the connection usable (probes only).
 */
int rsp_recv(struct rsp_conn *c, struct rbuf *body, const char *what,
	     const struct rsp_deadline *dl, int soft, struct kbu_err *err);
/* Ack mode: waits for '+', resending on '-'. */
int rsp_wait_ack(struct rsp_conn *c, const char *what, struct kbu_err *err);

/*
 * Sends n packets and reads one reply for each, in order (one round trip when
 * the stub allows it). Error replies are data here: only transport failures
 * fail. Replies that cannot answer their request are dropped when stale or,
 * with a stub that can be put back in step, the batch is sent again once.
 */
int rsp_batch(struct rsp_conn *c, struct rsp_req *req, int n, struct kbu_err *err);
int rsp_one(struct rsp_conn *c, const char *pkt, struct rbuf *reply, struct kbu_err *err);
void rsp_reqs_free(struct rsp_req *req, int n);

int rsp_is_error_reply(const struct rbuf *r);
int rsp_is_stop_reply(const struct rbuf *r); /* T or S */
/* Appends the bytes of an even-length hex string to out (NUL-terminated). */
int rsp_hex_text(const char *h, size_t n, struct rbuf *out, struct kbu_err *err);
/* Hex-encodes n bytes into out (2n characters and a NUL). */
void rsp_hex_encode(const void *p, size_t n, char *out);
/* A short printable form of a packet for messages (guest bytes escaped). */
void rsp_pkt_name(const char *p, size_t n, char *out, size_t cap);

#endif
