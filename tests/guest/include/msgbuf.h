/* Kernel message buffer with FreeBSD's amd64 layout (sys/sys/msgbuf.h). */
#ifndef GUEST_MSGBUF_H
#define GUEST_MSGBUF_H

#include "guest.h"

#define MSG_MAGIC     0x063062
#define MSGBUF_NEEDNL 0x01

/* Same size and shape as FreeBSD's struct mtx on amd64 (lock_object + mtx_lock). */
struct mtx {
	const char *lo_name;
	u_int lo_flags;
	u_int lo_data;
	void *lo_witness;
	volatile uintptr_t mtx_lock;
};

struct msgbuf {
	char *msg_ptr;       /* pointer to buffer */
	u_int msg_magic;
	u_int msg_size;      /* size of buffer area */
	u_int msg_wseq;      /* write sequence number */
	u_int msg_rseq;      /* read sequence number */
	u_int msg_cksum;     /* checksum of contents */
	u_int msg_seqmod;    /* range for sequence numbers */
	int msg_lastpri;     /* saved priority value */
	u_int msg_flags;
	struct mtx msg_lock;
};

#define MSGBUF_SEQNORM(mbp, seq) (((seq) + (mbp)->msg_seqmod) % (mbp)->msg_seqmod)
#define MSGBUF_SEQ_TO_POS(mbp, seq) ((seq) % (mbp)->msg_size)

extern struct msgbuf *msgbufp;

#endif
