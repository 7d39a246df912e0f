/* kbu dmesg: FreeBSD msgbuf, NetBSD kern_msgbuf and Linux printk ring buffer readers. */
#include "kbu/dmesg.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/mem.h"
#include "kbu/os.h"
#include "kbu/symbols.h"
#include "kbu/util.h"

#define MSGBUF_MAX (64u << 20)  /* no kernel keeps a bigger message buffer */
#define PRB_MAX_COUNT_BITS 24
#define PRB_MAX_SIZE_BITS 28

static void problem(struct kbu_dmesg *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct kbu_dmesg *d, const char *fmt, ...)
{
	if (d->nproblems >= KBU_DMESG_MAX_PROBLEMS)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->problems[d->nproblems++], sizeof(d->problems[0]), fmt, ap);
	va_end(ap);
}

/* A little-endian unsigned integer of n (at most 8) bytes. */
static uint64_t le(const uint8_t *b, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

/* Reads profile field `name` of layout msgbuf at base. */
static int read_field(struct kbu_mem *m, const struct kbu_elf *k, const struct kbu_os_profile *p,
		      uint64_t base, const char *name, uint64_t *out, struct kbu_err *err)
{
	struct kbu_os_field f;
	if (kbu_os_field(p, "msgbuf", name, &f, err) < 0)
		return -1;
	if (kbu_read_kva_uint(m, k, base + f.offset, f.size, out, err) < 0)
		return kbu_err_prefix(err, "%s.%s at 0x%" PRIx64, kbu_os_get(p, "layout.msgbuf", "struct")
				      ? kbu_os_get(p, "layout.msgbuf", "struct") : "msgbuf",
				      *f.cname ? f.cname : name, base + f.offset);
	return 0;
}

static int field_off(const struct kbu_os_profile *p, const char *name, uint64_t *off,
		     struct kbu_err *err)
{
	struct kbu_os_field f;
	if (kbu_os_field(p, "msgbuf", name, &f, err) < 0)
		return -1;
	*off = f.offset;
	return 0;
}

/* Growing output text. */
static int out_put(struct kbu_dmesg *d, size_t *cap, const char *s, size_t n, struct kbu_err *err)
{
	if (d->len + n + 1 > *cap) {
		size_t nc = *cap ? *cap : 4096;
		while (d->len + n + 1 > nc)
			nc *= 2;
		char *t = realloc(d->text, nc);
		if (!t)
			return kbu_err_set(err, KBU_ENOMEM, "out of memory for %zu bytes of log", nc);
		d->text = t;
		*cap = nc;
	}
	memcpy(d->text + d->len, s, n);
	d->len += n;
	d->text[d->len] = 0;
	return 0;
}

/*
 * Guest text as the log shows it: newlines and tabs kept, every other byte
 * that is not printable ASCII escaped ("\x1b"), so a log cannot drive the
 * terminal that prints it.
 */
static int out_escaped(struct kbu_dmesg *d, size_t *cap, const char *s, size_t n,
		       struct kbu_err *err)
{
	char tmp[1024];
	while (n > 0) {
		size_t take = n < sizeof(tmp) / 4 ? n : sizeof(tmp) / 4;
		size_t w = kbu_escape(s, take, "\n\t", tmp, sizeof(tmp));
		if (out_put(d, cap, tmp, w, err) < 0)
			return -1;
		s += take;
		n -= take;
	}
	return 0;
}

/*
 * BSD buffers hold raw console bytes: drop NULs (unused space), drop the
 * "<pri>" tags log(9) puts at line starts, keep everything else.
 */
static int bsd_text(struct kbu_dmesg *d, const uint8_t *a, size_t an, const uint8_t *b, size_t bn,
		    struct kbu_err *err)
{
	size_t cap = 0;
	int bol = 1;
	for (int part = 0; part < 2; part++) {
		const uint8_t *s = part ? b : a;
		size_t n = part ? bn : an;
		for (size_t i = 0; i < n; i++) {
			if (s[i] == 0)
				continue;
			if (bol && s[i] == '<') {
				size_t j = i + 1;
				while (j < n && j < i + 5 && s[j] >= '0' && s[j] <= '9')
					j++;
				if (j > i + 1 && j < n && s[j] == '>') {
					i = j;
					continue;
				}
			}
			if (out_escaped(d, &cap, (const char *)&s[i], 1, err) < 0)
				return -1;
			bol = s[i] == '\n';
			if (bol)
				d->records++;
		}
	}
	if (!d->text && out_put(d, &cap, "", 0, err) < 0)
		return -1;
	if (d->len && d->text[d->len - 1] != '\n')
		d->records++;
	return 0;
}

static uint8_t *read_block(struct kbu_mem *m, const struct kbu_elf *k, uint64_t addr, uint64_t len,
			   struct kbu_err *err)
{
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf) {
		kbu_err_set(err, KBU_ENOMEM, "out of memory for a %" PRIu64 "-byte buffer", len);
		return NULL;
	}
	if (len && kbu_read_kva(m, k, addr, buf, len, err) < 0) {
		free(buf);
		kbu_err_prefix(err, "message text at 0x%" PRIx64 " (%" PRIu64 " bytes)", addr, len);
		return NULL;
	}
	return buf;
}

/* The header's magic field against the profile's magic_value; sname names the struct. */
static int check_magic(struct kbu_mem *m, const struct kbu_elf *k, const struct kbu_os_profile *p,
		       uint64_t hdr, const char *sname, struct kbu_err *err)
{
	uint64_t magic, want;
	if (kbu_os_layout_num(p, "msgbuf", "magic_value", &want, err) < 0 ||
	    read_field(m, k, p, hdr, "magic", &magic, err) < 0)
		return -1;
	if (magic != want)
		return kbu_err_set(err, KBU_EFORMAT,
				   "%s at 0x%" PRIx64 " has magic 0x%" PRIx64 ", not 0x%" PRIx64
				   " (not initialised yet, or not a struct %s)", sname, hdr, magic, want,
				   sname);
	return 0;
}

static int read_freebsd(struct kbu_mem *m, const struct kbu_elf *k, const struct kbu_os_profile *p,
			uint64_t hdr, struct kbu_dmesg *d, struct kbu_err *err)
{
	uint64_t ptr, size, wseq, rseq, seqmod;
	if (check_magic(m, k, p, hdr, "msgbuf", err) < 0)
		return -1;
	if (read_field(m, k, p, hdr, "ptr", &ptr, err) < 0 ||
	    read_field(m, k, p, hdr, "size", &size, err) < 0 ||
	    read_field(m, k, p, hdr, "wseq", &wseq, err) < 0 ||
	    read_field(m, k, p, hdr, "rseq", &rseq, err) < 0 ||
	    read_field(m, k, p, hdr, "seqmod", &seqmod, err) < 0)
		return -1;
	if (size == 0 || size > MSGBUF_MAX)
		return kbu_err_set(err, KBU_EFORMAT, "msgbuf at 0x%" PRIx64 ": msg_size %" PRIu64
				   " is not in 1..%u", hdr, size, MSGBUF_MAX);
	if (seqmod < size || wseq >= seqmod) {
		problem(d, "msg_seqmod %" PRIu64 " / msg_wseq %" PRIu64 " are inconsistent with "
			"msg_size %" PRIu64 ": reading the whole buffer", seqmod, wseq, size);
		wseq = size;
	}
	d->data_addr = ptr;
	d->data_size = size;
	uint8_t *buf = read_block(m, k, ptr, size, err);
	if (!buf)
		return -1;
	int rc;
	if (wseq < size) {
		rc = bsd_text(d, buf, wseq, NULL, 0, err);
	} else {
		/* Wrapped: the oldest byte sits where the next one will be written. */
		uint64_t pos = wseq % size;
		d->wrapped = 1;
		problem(d, "the buffer has wrapped: text older than the last %" PRIu64 " bytes is lost",
			size);
		rc = bsd_text(d, buf + pos, size - pos, buf, pos, err);
	}
	free(buf);
	(void)rseq;
	return rc;
}

static int read_netbsd(struct kbu_mem *m, const struct kbu_elf *k, const struct kbu_os_profile *p,
		       uint64_t hdr, struct kbu_dmesg *d, struct kbu_err *err)
{
	uint64_t bufx, bufs, bufc;
	if (check_magic(m, k, p, hdr, "kern_msgbuf", err) < 0)
		return -1;
	if (read_field(m, k, p, hdr, "bufx", &bufx, err) < 0 ||
	    read_field(m, k, p, hdr, "bufs", &bufs, err) < 0 || field_off(p, "bufc", &bufc, err) < 0)
		return -1;
	if (bufs == 0 || bufs > MSGBUF_MAX)
		return kbu_err_set(err, KBU_EFORMAT, "kern_msgbuf at 0x%" PRIx64 ": msg_bufs %" PRIu64
				   " is not in 1..%u", hdr, bufs, MSGBUF_MAX);
	if (bufx >= bufs) {
		problem(d, "msg_bufx %" PRIu64 " is outside the %" PRIu64 "-byte buffer: reading it "
			"from the start", bufx, bufs);
		bufx = 0;
	}
	d->data_addr = hdr + bufc;
	d->data_size = bufs;
	uint8_t *buf = read_block(m, k, hdr + bufc, bufs, err);
	if (!buf)
		return -1;
	/* Oldest first: from the write pointer to the end, then the start (NULs are unused space). */
	d->wrapped = memchr(buf + bufx, 0, bufs - bufx) == NULL && bufx < bufs;
	int rc = bsd_text(d, buf + bufx, bufs - bufx, buf, bufx, err);
	free(buf);
	return rc;
}

/* Linux 6.1 printk ring buffer constants (kernel/printk/printk_ringbuffer.h). */
#define PRB_STATE_SHIFT 62
#define PRB_ID_MASK (~(3ull << PRB_STATE_SHIFT))
enum { PRB_RESERVED = 0, PRB_COMMITTED = 1, PRB_FINALIZED = 2, PRB_REUSABLE = 3 };

struct prb_layout {
	uint64_t desc_size, desc_state, desc_begin, desc_next;
	uint64_t info_size, info_seq, info_ts, info_len;
};

static int prb_layout(const struct kbu_os_profile *p, struct prb_layout *l, struct kbu_err *err)
{
	if (field_off(p, "desc_size", &l->desc_size, err) < 0 ||
	    field_off(p, "desc_state_var", &l->desc_state, err) < 0 ||
	    field_off(p, "desc_begin", &l->desc_begin, err) < 0 ||
	    field_off(p, "desc_next", &l->desc_next, err) < 0 ||
	    field_off(p, "info_size", &l->info_size, err) < 0 ||
	    field_off(p, "info_seq", &l->info_seq, err) < 0 ||
	    field_off(p, "info_ts_nsec", &l->info_ts, err) < 0 ||
	    field_off(p, "info_text_len", &l->info_len, err) < 0)
		return -1;
	if (l->desc_size < l->desc_next + 8 || l->info_size < l->info_len + 2 ||
	    l->info_size < l->info_ts + 8 || l->desc_size > 4096 || l->info_size > 4096)
		return kbu_err_set(err, KBU_EFORMAT, "profile %s: printk record sizes (desc %" PRIu64
				   ", info %" PRIu64 ") do not hold their fields", kbu_os_name(p),
				   l->desc_size, l->info_size);
	return 0;
}

/* Appends one record as the console prints it: "[    s.uuuuuu] " before each line. */
static int prb_emit(struct kbu_dmesg *d, size_t *cap, uint64_t ts, const char *t, size_t n,
		    struct kbu_err *err)
{
	char pre[48];
	int pn = snprintf(pre, sizeof(pre), "[%5" PRIu64 ".%06" PRIu64 "] ", ts / 1000000000u,
			  (ts % 1000000000u) / 1000u);
	size_t start = 0;
	do {
		size_t end = start;
		while (end < n && t[end] != '\n')
			end++;
		if (out_put(d, cap, pre, (size_t)pn, err) < 0 || out_escaped(d, cap, t + start, end - start, err) < 0 ||
		    out_put(d, cap, "\n", 1, err) < 0)
			return -1;
		start = end + 1;
	} while (start < n);
	return 0;
}

static int read_linux_prb(struct kbu_mem *m, const struct kbu_elf *k,
			  const struct kbu_os_profile *p, uint64_t rb, struct kbu_dmesg *d,
			  struct kbu_err *err)
{
	struct prb_layout l;
	uint64_t count_bits, descs, infos, head, tail, size_bits, data;
	if (prb_layout(p, &l, err) < 0 ||
	    read_field(m, k, p, rb, "desc_count_bits", &count_bits, err) < 0 ||
	    read_field(m, k, p, rb, "descs", &descs, err) < 0 ||
	    read_field(m, k, p, rb, "infos", &infos, err) < 0 ||
	    read_field(m, k, p, rb, "head_id", &head, err) < 0 ||
	    read_field(m, k, p, rb, "tail_id", &tail, err) < 0 ||
	    read_field(m, k, p, rb, "data_size_bits", &size_bits, err) < 0 ||
	    read_field(m, k, p, rb, "data", &data, err) < 0)
		return -1;
	if (count_bits > PRB_MAX_COUNT_BITS || size_bits < 4 || size_bits > PRB_MAX_SIZE_BITS)
		return kbu_err_set(err, KBU_EFORMAT,
				   "printk_ringbuffer at 0x%" PRIx64 ": count_bits %" PRIu64
				   ", size_bits %" PRIu64 " are out of range (not a 6.1 ring buffer?)",
				   rb, count_bits, size_bits);
	uint64_t count = 1ull << count_bits, dsize = 1ull << size_bits;
	head &= PRB_ID_MASK;
	tail &= PRB_ID_MASK;
	uint64_t span = (head - tail) & PRB_ID_MASK;
	if (span >= count)
		return kbu_err_set(err, KBU_EFORMAT,
				   "printk_ringbuffer at 0x%" PRIx64 ": head_id 0x%" PRIx64
				   " - tail_id 0x%" PRIx64 " exceeds the %" PRIu64 " descriptors", rb,
				   head, tail, count);
	d->data_addr = data;
	d->data_size = dsize;
	uint8_t *text = read_block(m, k, data, dsize, err);
	if (!text)
		return -1;
	size_t cap = 0;
	uint8_t desc[4096], info[4096];
	uint64_t first_seq = UINT64_MAX;
	for (uint64_t i = 0; i <= span; i++) {
		uint64_t id = (tail + i) & PRB_ID_MASK, idx = id & (count - 1);
		if (kbu_read_kva(m, k, descs + idx * l.desc_size, desc, l.desc_size, err) < 0 ||
		    kbu_read_kva(m, k, infos + idx * l.info_size, info, l.info_size, err) < 0) {
			free(text);
			return kbu_err_prefix(err, "printk record id %" PRIu64, id);
		}
		uint64_t sv = le(desc + l.desc_state, 8);
		unsigned state = (unsigned)(sv >> PRB_STATE_SHIFT);
		if ((sv & PRB_ID_MASK) != id || (state != PRB_COMMITTED && state != PRB_FINALIZED)) {
			d->dropped++;
			continue;
		}
		uint64_t begin = le(desc + l.desc_begin, 8), next = le(desc + l.desc_next, 8);
		uint64_t seq = le(info + l.info_seq, 8), ts = le(info + l.info_ts, 8);
		uint64_t tlen = le(info + l.info_len, 2);
		if (first_seq == UINT64_MAX)
			first_seq = seq;
		const char *t = "";
		uint64_t n = 0;
		if (!(begin & 1) && !(next & 1)) {
			/* A data block: unsigned long id, then the text; it may start over at 0. */
			uint64_t bi = begin & (dsize - 1), bw = begin >> size_bits, nw = next >> size_bits;
			uint64_t off, blen;
			if (bw == nw && next >= begin) {
				off = bi;
				blen = next - begin;
			} else if (bw + 1 == nw) {
				off = 0;
				blen = next & (dsize - 1);
			} else {
				problem(d, "record %" PRIu64 ": data positions 0x%" PRIx64 "..0x%" PRIx64
					" are not one block", seq, begin, next);
				d->dropped++;
				continue;
			}
			if (blen < 8 || off + blen > dsize) {
				problem(d, "record %" PRIu64 ": data block of %" PRIu64 " bytes at %" PRIu64
					" does not fit the %" PRIu64 "-byte ring", seq, blen, off, dsize);
				d->dropped++;
				continue;
			}
			n = tlen < blen - 8 ? tlen : blen - 8;
			t = (const char *)text + off + 8;
		}
		if (prb_emit(d, &cap, ts, t, (size_t)n, err) < 0) {
			free(text);
			return -1;
		}
		d->records++;
	}
	free(text);
	if (!d->text && out_put(d, &cap, "", 0, err) < 0)
		return -1;
	if (first_seq != UINT64_MAX && first_seq > 0) {
		d->wrapped = 1;
		problem(d, "records 0..%" PRIu64 " were overwritten (the ring wrapped)", first_seq - 1);
	}
	if (d->dropped)
		problem(d, "%" PRIu64 " descriptor(s) between tail and head were not finished records",
			d->dropped);
	return 0;
}

int kbu_dmesg_read(struct kbu_mem *m, const struct kbu_elf *kernel, const struct kbu_symtab *st,
		   const struct kbu_os_profile *p, struct kbu_dmesg *out, struct kbu_err *err)
{
	memset(out, 0, sizeof(*out));
	const char *symname = kbu_os_role(p, "msgbuf");
	const char *format = kbu_os_role(p, "msgbuf_format");
	if (!symname || !format)
		return kbu_err_set(err, KBU_ENOTFOUND, "profile %s (%s) names no message buffer "
				   "([roles] msgbuf and msgbuf_format)", kbu_os_name(p), kbu_os_origin(p));
	out->symbol = symname;
	out->format = format;
	if (!st)
		return kbu_err_set(err, KBU_EINVAL, "needs symbols to find %s: give --kernel or --symbols",
				   symname);
	const struct kbu_sym *s = kbu_sym_by_name(st, symname);
	if (!s)
		return kbu_err_set(err, KBU_ENOTFOUND, "no symbol '%s' (the %s message buffer)", symname,
				   kbu_os_name(p));
	uint64_t hdr = s->addr;
	if (kbu_os_role_num(p, "msgbuf_pointer", 0)) {
		if (kbu_read_kva_uint(m, kernel, s->addr, 8, &hdr, err) < 0)
			return kbu_err_prefix(err, "%s at 0x%" PRIx64, symname, s->addr);
		if (hdr == 0)
			return kbu_err_set(err, KBU_ENOTFOUND, "%s (at 0x%" PRIx64 ") is NULL: the message "
					   "buffer is not set up yet", symname, s->addr);
	}
	out->header_addr = hdr;
	int rc;
	if (strcmp(format, "freebsd") == 0)
		rc = read_freebsd(m, kernel, p, hdr, out, err);
	else if (strcmp(format, "netbsd") == 0)
		rc = read_netbsd(m, kernel, p, hdr, out, err);
	else if (strcmp(format, "linux-prb") == 0)
		rc = read_linux_prb(m, kernel, p, hdr, out, err);
	else
		rc = kbu_err_set(err, KBU_EUNSUPPORTED, "profile %s: unknown msgbuf_format '%s' "
				 "(known: freebsd, netbsd, linux-prb)", kbu_os_name(p), format);
	if (rc < 0) {
		kbu_dmesg_free(out);
		return -1;
	}
	return 0;
}

void kbu_dmesg_free(struct kbu_dmesg *d)
{
	if (!d)
		return;
	free(d->text);
	d->text = NULL;
	d->len = 0;
}
