/*
 * kbu: QEMU's extensions to the GDB remote protocol, both ways: the physical
 * memory mode (Qqemu.PhyMemMode), monitor commands over qRcmd, and the text
 * of the two monitor commands kbu reads ("info mtree -f": which physical
 * ranges are memory; "info registers -a": segment bases, GDT and IDT) -
 * parsed for the client and written by `kbu serve`. Not a public API.
 */
#ifndef KBU_GDB_QEMU_H
#define KBU_GDB_QEMU_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"
#include "kbu/regs.h"
#include "rsp.h"

#define GDBQ_PHYS_ON "Qqemu.PhyMemMode:1"
#define GDBQ_PHYS_OFF "Qqemu.PhyMemMode:0"
/* What kbu serve answers to qqemu.Supported (QEMU 7.2 says the same). */
#define GDBQ_SUPPORTED "sstepbits;sstep;PhyMemMode"

/*
 * The replies to PhyMemMode on and off around a batch: 0, or -1 with err
 * (KBU_EUNSUPPORTED when the stub has no such mode: *no_phys is set; a
 * connection failure when it did not confirm switching back).
 */
int gdbq_check_phys_mode(struct rsp_conn *c, const struct rbuf *on, const struct rbuf *off,
			 int *no_phys, struct kbu_err *err);
/* "qRcmd,<hex of cmd>" into pkt; -1 if it does not fit cap. */
int gdbq_rcmd_packet(const char *cmd, char *pkt, size_t cap);
/* Runs a monitor command; *out is its malloc'd text. */
int gdbq_monitor(struct rsp_conn *c, size_t packet_size, const char *cmd, char **out,
		 struct kbu_err *err);

/*
 * The bytes of "xp /Nbx ADDR" output ("%016x: 0x12 0x34 ..." lines) for
 * [addr, addr+len): 0, or -1 with KBU_EFAULT naming the first byte the text
 * does not give (QEMU prints an error line instead of bytes it cannot read).
 */
int gdbq_parse_xp(const char *text, uint64_t addr, uint8_t *buf, size_t len, struct kbu_err *err);
/* "xp /LENbx 0xADDR" into cmd; -1 if it does not fit cap. */
int gdbq_xp_command(uint64_t addr, size_t len, char *cmd, size_t cap);

/* RAM and ROM ranges [start, end) from "info mtree -f"; returns the count. */
int gdbq_parse_mtree(const char *text, uint64_t *start, uint64_t *end, int max);
/*
 * The section "CPU#<index>" of "info registers -a": segment bases and
 * descriptor tables. Sets *bases when all six bases were read, *dt when both
 * tables were.
 */
void gdbq_parse_info_registers(const char *text, int index, struct kbu_regs *out, int *bases,
			       int *dt);

/* The same texts written from kbu's own facts (kbu serve's monitor). */
int gdbq_format_mtree(const uint64_t *start, const uint64_t *end, int n, struct rbuf *out,
		      struct kbu_err *err);
int gdbq_format_info_registers(int index, const struct kbu_regs *r, struct rbuf *out,
			       struct kbu_err *err);

#endif
