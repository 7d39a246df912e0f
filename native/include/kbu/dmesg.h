/*
 * kbu dmesg: the kernel's message buffer read from guest memory through an OS
 * profile (FreeBSD struct msgbuf, NetBSD struct kern_msgbuf, Linux printk ring
 * buffer), from a live stub or a dump alike.
 */
#ifndef KBU_DMESG_H
#define KBU_DMESG_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"
#include "kbu/kvar.h" /* kbu_read_kva: how the buffer is read */

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_mem;
struct kbu_elf;
struct kbu_symtab;
struct kbu_os_profile;

#define KBU_DMESG_MAX_PROBLEMS 8

struct kbu_dmesg {
	const char *format;    /* "freebsd", "netbsd", "linux-prb" */
	const char *symbol;    /* the profile's msgbuf symbol */
	uint64_t header_addr;  /* the msgbuf / printk_ringbuffer structure */
	uint64_t data_addr;    /* the text area */
	uint64_t data_size;    /* its size in bytes */
	uint64_t records;      /* Linux: records read; BSD: lines */
	uint64_t dropped;      /* Linux: records skipped (reserved, reused, unreadable) */
	int wrapped;           /* the buffer has wrapped: the oldest text is gone */
	char *text;            /* the log as the console prints it, NUL-terminated; bytes
				* other than printable ASCII, newline and tab are
				* escaped as "\xNN" (kbu_escape) */
	size_t len;
	int nproblems;
	char problems[KBU_DMESG_MAX_PROBLEMS][256];
};

/*
 * Reads the message buffer. Kernel virtual addresses are read as KBU_VIRT and,
 * when that fails and kernel is given, through the kernel's PT_LOAD link ->
 * load mapping (early dumps, sources that cannot translate). Anomalies that
 * still leave a log (lost records, a wrapped buffer) go into problems; a
 * buffer that cannot be read or has no valid header is an error.
 */
int kbu_dmesg_read(struct kbu_mem *m, const struct kbu_elf *kernel, const struct kbu_symtab *st,
		   const struct kbu_os_profile *p, struct kbu_dmesg *out, struct kbu_err *err);
void kbu_dmesg_free(struct kbu_dmesg *d);

#ifdef __cplusplus
}
#endif
#endif
