/*
 * kbu GDB remote serial protocol client: a memory source that talks to a GDB
 * stub directly, with no GDB involved: QEMU's -s / -gdb tcp::PORT over TCP,
 * Firecracker's UNIX socket, `kbu serve`, or any stub that speaks only the
 * standard packets (then physical memory is read through the guest's own
 * mappings by struct kbu_mem, and there is no monitor).
 *
 * What the source does with the target:
 *  - Connecting to QEMU's stub pauses a running VM, and QEMU then sends a stop
 *    packet before anything else. When that packet comes, the VM was running
 *    before we came, so it is resumed (detach) on close. A VM that was already
 *    stopped (-S, a breakpoint, the monitor's stop, a GDB that went away) gets
 *    no such packet and stays stopped.
 *  - A non-QEMU stub that does not answer while its target runs is interrupted
 *    with 0x03 and is likewise resumed on close.
 *  - Physical reads switch QEMU's Qqemu.PhyMemMode on and off around the reads
 *    in the same batch of packets, so the mode is always back off afterwards,
 *    even when a read fails.
 *  - Virtual reads translate through CPU 0 (the first thread); reading another
 *    CPU's registers selects it for that request only.
 *
 * Replies: the protocol does not say which request a reply answers, so each
 * reply is checked against what its request allows. A stop packet nobody asked
 * for (QEMU's, when a loaded host delays it past our connect probe) and a
 * second answer to a repeated qSupported are dropped as stale; any other reply
 * that cannot be the answer puts the connection out of step: with QEMU we get
 * back in step (a qqemu.PhyMemMode, everything before its "0"/"1" dropped) and
 * send the batch again once; otherwise, or for raw requests, it is an error.
 *
 * Batching: the packets of one source call are written at once and their
 * replies read in order, so one read of up to max_read bytes (64 'm' packets),
 * physical or virtual, costs one round trip. That needs a stub that does not
 * wait for our acks: one in QStartNoAckMode, or QEMU's system-mode stub, which
 * never waits (QEMU 7.2 does not offer QStartNoAckMode). Other stubs get one
 * packet at a time.
 */
#ifndef KBU_GDBRSP_H
#define KBU_GDBRSP_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"
#include "kbu/mem.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_gdb;

struct kbu_gdb_opts {
	int connect_timeout_ms; /* per address tried */
	int reply_timeout_ms;   /* per packet received */
};

/* Defaults: connect 5 s, reply 10 s; KBU_GDB_TIMEOUT (seconds) overrides both.
 * (Callers through ctypes know this structure's size: it does not grow.) */
void kbu_gdb_opts_default(struct kbu_gdb_opts *o);

/*
 * Connects to "HOST:PORT", "[V6ADDR]:PORT", ":PORT" (localhost), QEMU's
 * "tcp:HOST:PORT" spelling, or a UNIX socket: any spec with a '/' in it
 * ("/tmp/gdb.socket", "./fc.sock") or "unix:PATH". opts may be NULL
 * (defaults). Errors: KBU_EINVAL for a bad spec, KBU_ECONN when nothing
 * answers or the stub speaks nonsense. Every timeout message names the limit
 * that expired.
 */
struct kbu_gdb *kbu_gdb_open(const char *hostport, const struct kbu_gdb_opts *opts,
			     struct kbu_err *err);
/* Resumes the target if we stopped it (see above), closes, frees. */
void kbu_gdb_close(struct kbu_gdb *g);

/* The source's operations; their ctx is the struct kbu_gdb (ops->close frees it).
 * The table lives inside g. max_read is what one round trip carries: 64 'm'
 * packets of PacketSize / 2 bytes each (128 KiB with QEMU's 0x1000). */
const struct kbu_mem_ops *kbu_gdb_mem_ops(const struct kbu_gdb *g);

struct kbu_gdb_stats {
	uint64_t round_trips;      /* times we sent packets and waited for replies */
	uint64_t packets_sent;
	uint64_t packets_received; /* console output (O) packets included */
	uint64_t bytes_sent;
	uint64_t bytes_received;
};
struct kbu_gdb_stats kbu_gdb_get_stats(const struct kbu_gdb *g);
/* Replies dropped as left over (a late stop packet, a second qSupported answer),
 * and times the replies were out of step and were put back in step. (Not in
 * struct kbu_gdb_stats: callers through ctypes know its size.) */
uint64_t kbu_gdb_stale_replies(const struct kbu_gdb *g);
uint64_t kbu_gdb_resyncs(const struct kbu_gdb *g);
/* Stub facts learnt on connect. */
size_t kbu_gdb_packet_size(const struct kbu_gdb *g); /* PacketSize, in characters */
int kbu_gdb_no_ack(const struct kbu_gdb *g);         /* 1: QStartNoAckMode is on */
int kbu_gdb_resumes_on_close(const struct kbu_gdb *g);
int kbu_gdb_ncpus(const struct kbu_gdb *g);          /* threads, each counted once */
int kbu_gdb_is_qemu(const struct kbu_gdb *g);        /* 1: QEMU's extensions (PhyMemMode, monitor) */
const char *kbu_gdb_where(const struct kbu_gdb *g);  /* the stub as named (escaped) */
/* Thread ids the stub's list named more than once (each vCPU is counted
 * once); *first (may be NULL) gets the first such id. */
size_t kbu_gdb_duplicate_threads(const struct kbu_gdb *g, uint64_t *first);

/*
 * One time limit for a whole command: every later wait ends by then, with a
 * message naming that limit ("the command's time limit of 60 s (--timeout)").
 * limit_ms 0: none (each reply still has its own timeout).
 */
void kbu_gdb_set_command_limit(struct kbu_gdb *g, int limit_ms);

/*
 * kbu_mem_open_gdb with options; *conn (may be NULL) receives the connection,
 * owned by the returned struct kbu_mem and valid until kbu_mem_close.
 */
struct kbu_mem *kbu_mem_open_gdb_ex(const char *hostport, const struct kbu_gdb_opts *opts,
				    struct kbu_gdb **conn, struct kbu_err *err);
/* The same with default options and a whole-command time limit (ms, 0: none)
 * that already bounds the connect and the handshake. */
struct kbu_mem *kbu_mem_open_gdb_limited(const char *spec, int command_limit_ms,
					 struct kbu_gdb **conn, struct kbu_err *err);
/* Round trips so far of a struct kbu_mem opened by kbu_mem_open_gdb; 0 for other sources. */
uint64_t kbu_mem_gdb_round_trips(struct kbu_mem *m);

/*
 * Sends one packet (body without framing) and returns its reply, decoded
 * (escapes and run-length expanded), NUL-terminated, malloc'd. For scripts
 * that need a packet kbu has no operation for ("Z1,200000,1", "c", "s", ...).
 * The reply timeout applies: "c" must stop within it. Not for packets whose
 * reply is several packets (qRcmd: use the monitor operation). Any request
 * drops what the source remembers about the stopped CPUs.
 */
int kbu_gdb_request(struct kbu_gdb *g, const char *packet, char **reply, size_t *reply_len,
		    struct kbu_err *err);

/* Protocol helpers (pure functions). */
uint8_t kbu_rsp_checksum(const void *data, size_t len);
/*
 * Decodes a received packet body: "}x" escapes and "c*n" run-length encoding.
 * Fails (KBU_EFORMAT) on a trailing "}", a "*" with nothing to repeat or a bad
 * count, or output longer than cap.
 */
int kbu_rsp_decode(const char *in, size_t len, char *out, size_t cap, size_t *out_len,
		   struct kbu_err *err);
/* Splits a HOST:PORT spec as kbu_gdb_open accepts it. */
int kbu_rsp_parse_hostport(const char *spec, char *host, size_t host_cap, char *port,
			   size_t port_cap, struct kbu_err *err);

#ifdef __cplusplus
}
#endif
#endif
