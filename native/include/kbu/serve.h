/*
 * kbu serve: a read-only GDB remote stub over any kbu memory source (a QEMU
 * dump, a raw image, another stub), so that GDB itself can debug a dump:
 * `target remote | kbu serve --core dump.core`.
 *
 * What a client sees:
 *  - one thread per vCPU (thread id = CPU index + 1, as QEMU and Firecracker
 *    number them), each with its registers; with symbols, the vCPU whose
 *    stack holds a return into panic() (or vpanic()) is named "in panic" and
 *    is the thread GDB starts on; a target description with GDB's
 *    x86-64 core and SSE features, fs_base/gs_base and (unless plain) the
 *    control registers and EFER; registers kbu does not know (x87, SSE, EFER
 *    in a QEMU dump) are "unavailable", never zeros;
 *  - virtual reads translated by kbu's own page walk through the selected
 *    thread's CR3 (or the --cr3 given for a raw image); physical reads after
 *    Qqemu.PhyMemMode:1, as QEMU's stub does; memory a source does not have
 *    is an error reply, never zeros;
 *  - `monitor kbu COMMAND ARGS` runs kbu's own commands on the served source
 *    (the same report as the CLI), `monitor info registers -a` and
 *    `monitor info mtree -f` answer in QEMU's format, `monitor help`;
 *  - writes, breakpoints, resuming and stepping are refused with an error
 *    that says the target is read-only.
 * Plain mode offers only standard packets (no qRcmd, no qqemu.*, no control
 * registers in the description): the model of Firecracker's and bhyve's stubs.
 */
#ifndef KBU_SERVE_H
#define KBU_SERVE_H

#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_ctx;

struct kbu_serve_opts {
	int plain;       /* only standard packets */
	int have_cr3;    /* translate virtual addresses of CPUs without control registers */
	uint64_t cr3;    /* ... through this 4-level table (a raw image's --cr3) */
};

struct kbu_serve_stats {
	uint64_t packets;    /* requests answered */
	uint64_t bytes_read; /* guest memory sent */
	uint64_t refused;    /* writes, resumes and the like refused */
};

/*
 * Serves one session on in_fd/out_fd (a pipe pair or both the same socket)
 * until the client detaches, kills the target or goes away. ctx gives the
 * memory source, and the kernel and symbols `monitor kbu` commands use.
 * Returns 0 at the end of a session, -1 with err on an I/O failure.
 */
int kbu_serve_session(struct kbu_ctx *ctx, const struct kbu_serve_opts *opts, int in_fd,
		      int out_fd, struct kbu_serve_stats *stats, struct kbu_err *err);

#ifdef __cplusplus
}
#endif
#endif
