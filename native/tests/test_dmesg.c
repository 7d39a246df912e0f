/*
 * dmesg: FreeBSD msgbuf, NetBSD kern_msgbuf and Linux 6.1 printk ring buffers
 * built in a fake guest memory, laid out as the built-in profiles say.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "support.h"
#include "kbu/dmesg.h"
#include "kbu/mem.h"
#include "kbu/os.h"
#include "kbu/symbols.h"

/* A guest with a few virtual regions; reads outside them fault. */
#define NREG 8
struct fake {
	struct {
		uint64_t base;
		size_t len;
		uint8_t *bytes;
	} r[NREG];
	int n;
};

static uint8_t *region(struct fake *f, uint64_t base, size_t len)
{
	f->r[f->n].base = base;
	f->r[f->n].len = len;
	f->r[f->n].bytes = calloc(1, len);
	return f->r[f->n++].bytes;
}

static int fake_read(void *ctx, enum kbu_space s, uint64_t addr, void *buf, size_t len,
		     struct kbu_err *err)
{
	struct fake *f = ctx;
	for (int i = 0; i < f->n; i++)
		if (addr >= f->r[i].base && addr - f->r[i].base + len <= f->r[i].len) {
			memcpy(buf, f->r[i].bytes + (addr - f->r[i].base), len);
			return 0;
		}
	return kbu_err_set(err, KBU_EFAULT, "fake: nothing at 0x%llx", (unsigned long long)addr);
}

static void fake_close(void *ctx)
{
	struct fake *f = ctx;
	for (int i = 0; i < f->n; i++)
		free(f->r[i].bytes);
	free(f);
}

static const struct kbu_mem_ops fake_ops = {
	.kind = "fake", .read = fake_read, .close = fake_close,
};

struct run {
	struct kbu_dmesg d;
	int rc;
	struct kbu_err err;
};

static struct run read_with(struct fake *f, const char *os, const char *map)
{
	struct run r;
	memset(&r, 0, sizeof(r));
	struct kbu_mem *m = kbu_mem_new(&fake_ops, f, &r.err);
	struct kbu_symtab *st = symtab_of(map);
	struct kbu_os_profile *p = kbu_os_builtin(os, &r.err);
	r.rc = -1;
	if (m && st && p)
		r.rc = kbu_dmesg_read(m, NULL, st, p, &r.d, &r.err);
	if (r.rc == 0) {
		/* The profile owns these strings; the test outlives it. */
		r.d.format = strcmp(r.d.format, "linux-prb") == 0 ? "linux-prb" : os;
		r.d.symbol = "";
	}
	kbu_os_free(p);
	kbu_symtab_free(st);
	kbu_mem_close(m);
	return r;
}

#define FBSD_SYM "ffffffff80a00000 B msgbufp\nffffffff80200000 T kassert_panic\n"

/* FreeBSD: msgbufp -> struct msgbuf {msg_ptr, magic, size, wseq, rseq, cksum, seqmod}. */
static struct fake *freebsd_guest(const char *text, uint32_t size, uint32_t wseq, uint32_t magic)
{
	struct fake *f = calloc(1, sizeof(*f));
	put_le(region(f, 0xffffffff80a00000, 8), 0xfffff80000100000, 8);
	uint8_t *h = region(f, 0xfffff80000100000, 64);
	put_le(h + 0, 0xfffff80000200000, 8);
	put_le(h + 8, magic, 4);
	put_le(h + 12, size, 4);
	put_le(h + 16, wseq, 4);
	put_le(h + 20, 0, 4);
	put_le(h + 28, size * 16, 4);
	uint8_t *b = region(f, 0xfffff80000200000, size ? size : 1);
	/* Write text as the kernel does: byte at seq % size. */
	size_t n = size ? strlen(text) : 0;
	for (size_t i = 0; i < n; i++)
		b[(wseq - n + i) % size] = (uint8_t)text[i];
	return f;
}

TEST(freebsd_unwrapped)
{
	const char *t = "MPTable: <QBOOT    000000000000>\n<6>panic: TSC not initialized\n";
	struct run r = read_with(freebsd_guest(t, 256, (uint32_t)strlen(t), 0x063062), "freebsd",
				 FBSD_SYM);
	CHECK(r.rc == 0);
	if (r.rc)
		fprintf(stderr, "%s\n", r.err.msg);
	CHECK_STR(r.d.text, "MPTable: <QBOOT    000000000000>\npanic: TSC not initialized\n");
	CHECK_EQ_U64(r.d.records, 2);
	CHECK_EQ_U64(r.d.header_addr, 0xfffff80000100000);
	CHECK_EQ_U64(r.d.data_addr, 0xfffff80000200000);
	CHECK_EQ_U64(r.d.data_size, 256);
	CHECK(!r.d.wrapped);
	CHECK_EQ_U64(r.d.nproblems, 0);
	kbu_dmesg_free(&r.d);
}

TEST(freebsd_wrapped_starts_at_oldest_byte)
{
	/* 40 bytes written into a 32-byte ring: the first 8 are gone. */
	const char *t = "0123456\nabcdefghijklmnopqrstuvwxyz.\n1234";
	struct run r = read_with(freebsd_guest(t, 32, 40, 0x063062), "freebsd", FBSD_SYM);
	CHECK(r.rc == 0);
	CHECK_STR(r.d.text, "abcdefghijklmnopqrstuvwxyz.\n1234");
	CHECK(r.d.wrapped);
	CHECK(r.d.nproblems == 1);
	CHECK_CONTAINS(r.d.problems[0], "wrapped");
	kbu_dmesg_free(&r.d);
}

TEST(freebsd_bad_header_is_an_error)
{
	struct run r = read_with(freebsd_guest("x", 64, 1, 0x12345), "freebsd", FBSD_SYM);
	CHECK(r.rc < 0);
	CHECK_CONTAINS(r.err.msg, "has magic 0x12345, not 0x63062");
	r = read_with(freebsd_guest("x", 0, 1, 0x063062), "freebsd", FBSD_SYM);
	CHECK(r.rc < 0);
	CHECK_CONTAINS(r.err.msg, "msg_size 0 is not in");

	/* msgbufp still NULL (early boot). */
	struct fake *f = calloc(1, sizeof(*f));
	region(f, 0xffffffff80a00000, 8);
	r = read_with(f, "freebsd", FBSD_SYM);
	CHECK(r.rc < 0);
	CHECK_CONTAINS(r.err.msg, "msgbufp (at 0xffffffff80a00000) is NULL");

	/* msgbufp points nowhere. */
	f = calloc(1, sizeof(*f));
	put_le(region(f, 0xffffffff80a00000, 8), 0xdead0000, 8);
	r = read_with(f, "freebsd", FBSD_SYM);
	CHECK(r.rc < 0);
	CHECK_CONTAINS(r.err.msg, "0xdead0008");

	/* No msgbufp symbol at all. */
	r = read_with(freebsd_guest("x", 64, 1, 0x063062), "freebsd", "ffffffff80200000 T panic\n");
	CHECK(r.rc < 0);
	CHECK_CONTAINS(r.err.msg, "no symbol 'msgbufp'");
}

#define NBSD_SYM "ffffffff80e00000 B msgbufp\nffffffff80200000 T kern_assert\n"

TEST(netbsd_wrapped_and_unwrapped)
{
	for (int wrap = 0; wrap < 2; wrap++) {
		struct fake *f = calloc(1, sizeof(*f));
		put_le(region(f, 0xffffffff80e00000, 8), 0xffff800000a00000, 8);
		uint8_t *h = region(f, 0xffff800000a00000, 32 + 16);
		put_le(h, 0x063061, 8);
		put_le(h + 24, 16, 8);
		if (!wrap) {
			memcpy(h + 32, "boot\nok\n", 8);
			put_le(h + 8, 8, 8);
		} else {
			/* Ring of 16 after "AAAA\nboot\nok\nclock\n": bufx = 19 % 16 = 3. */
			memcpy(h + 32, "ck\nA\nboot\nok\nclo", 16);
			put_le(h + 8, 3, 8);
		}
		struct run r = read_with(f, "netbsd", NBSD_SYM);
		CHECK(r.rc == 0);
		if (r.rc)
			fprintf(stderr, "%s\n", r.err.msg);
		CHECK_STR(r.d.text, wrap ? "A\nboot\nok\nclock\n" : "boot\nok\n");
		CHECK_EQ_U64(r.d.data_addr, 0xffff800000a00020);
		CHECK(r.d.wrapped == wrap);
		kbu_dmesg_free(&r.d);
	}
	struct fake *f = calloc(1, sizeof(*f));
	put_le(region(f, 0xffffffff80e00000, 8), 0xffff800000a00000, 8);
	uint8_t *h = region(f, 0xffff800000a00000, 64);
	put_le(h, 0x063061, 8);
	put_le(h + 24, 1ull << 40, 8);
	struct run r = read_with(f, "netbsd", NBSD_SYM);
	CHECK(r.rc < 0);
	CHECK_CONTAINS(r.err.msg, "msg_bufs 1099511627776 is not in");
}

#define LX_SYM "ffffffff82000000 D prb\nffffffff81000000 T start_kernel\n"
#define LX_RB 0xffffffff82100000ull
#define LX_DESCS 0xffffffff82200000ull
#define LX_INFOS 0xffffffff82300000ull
#define LX_DATA 0xffffffff82400000ull

struct lx {
	struct fake *f;
	uint8_t *rb, *descs, *infos, *data;
	uint64_t lpos; /* next free logical position */
};

/* A 6.1 ring: 2^cbits descriptors of 24 bytes, infos of 88, 2^sbits data bytes. */
static struct lx lx_guest(unsigned cbits, unsigned sbits)
{
	struct lx g;
	g.f = calloc(1, sizeof(*g.f));
	put_le(region(g.f, 0xffffffff82000000, 8), LX_RB, 8);
	g.rb = region(g.f, LX_RB, 88);
	g.descs = region(g.f, LX_DESCS, 24u << cbits);
	g.infos = region(g.f, LX_INFOS, 88u << cbits);
	g.data = region(g.f, LX_DATA, 1u << sbits);
	put_le(g.rb + 0, cbits, 4);
	put_le(g.rb + 8, LX_DESCS, 8);
	put_le(g.rb + 16, LX_INFOS, 8);
	put_le(g.rb + 48, sbits, 4);
	put_le(g.rb + 56, LX_DATA, 8);
	g.lpos = 0;
	return g;
}

/* Stores record id/seq with text; state 2 = finalized. Blocks that do not fit
 * before the end start over at 0 with the next wrap, as the kernel does. */
static void lx_add(struct lx *g, unsigned cbits, unsigned sbits, uint64_t id, uint64_t seq,
		   uint64_t ts, const char *text, unsigned state)
{
	uint64_t size = 1ull << sbits, len = strlen(text);
	uint64_t need = (8 + len + 7) & ~7ull;
	uint64_t begin = g->lpos, next = begin + need;
	if ((begin >> sbits) != ((next - 1) >> sbits))
		next = ((begin >> sbits) + 1) * size + need; /* wraps: data at 0 */
	uint64_t off = (begin >> sbits) == (next >> sbits) ? (begin & (size - 1)) : 0;
	if (state != 0) { /* a reserved record's data is not written yet */
		put_le(g->data + off, id, 8);
		memcpy(g->data + off + 8, text, len);
	}
	g->lpos = next;
	uint64_t idx = id & ((1ull << cbits) - 1);
	uint8_t *d = g->descs + idx * 24, *in = g->infos + idx * 88;
	put_le(d, ((uint64_t)state << 62) | id, 8);
	put_le(d + 8, begin, 8);
	put_le(d + 16, next, 8);
	put_le(in, seq, 8);
	put_le(in + 8, ts, 8);
	put_le(in + 16, len, 2);
}

TEST(linux_records_in_order_with_console_prefix)
{
	struct lx g = lx_guest(3, 7);
	lx_add(&g, 3, 7, 0, 0, 0, "Linux version 6.1.0", 2);
	lx_add(&g, 3, 7, 1, 1, 1500000, "two\nlines", 2);
	lx_add(&g, 3, 7, 2, 2, 2000001000ull, "VFS: Unable to mount root fs", 1);
	put_le(g.rb + 24, 2, 8); /* head */
	put_le(g.rb + 32, 0, 8); /* tail */
	struct run r = read_with(g.f, "linux", LX_SYM);
	CHECK(r.rc == 0);
	if (r.rc)
		fprintf(stderr, "%s\n", r.err.msg);
	CHECK_STR(r.d.text, "[    0.000000] Linux version 6.1.0\n"
			    "[    0.001500] two\n"
			    "[    0.001500] lines\n"
			    "[    2.000001] VFS: Unable to mount root fs\n");
	CHECK_EQ_U64(r.d.records, 3);
	CHECK_EQ_U64(r.d.header_addr, LX_RB);
	CHECK_EQ_U64(r.d.data_size, 128);
	CHECK(!r.d.wrapped);
	kbu_dmesg_free(&r.d);
}

TEST(linux_wrapped_ring_and_unfinished_records)
{
	/* 4 descriptors, 64 data bytes: ids 5..7 live, id 6's block wraps to 0,
	 * id 7 is still being written (reserved). */
	struct lx g = lx_guest(2, 6);
	g.lpos = 5 * 64 + 32;
	lx_add(&g, 2, 6, 5, 5, 5000, "fifth record", 2);       /* 32..56 */
	lx_add(&g, 2, 6, 6, 6, 6000, "sixth record!!!!!", 2);  /* needs 32: wraps to 0 */
	lx_add(&g, 2, 6, 7, 7, 7000, "partial", 0);
	put_le(g.rb + 24, 7, 8);
	put_le(g.rb + 32, 5, 8);
	struct run r = read_with(g.f, "linux", LX_SYM);
	CHECK(r.rc == 0);
	if (r.rc)
		fprintf(stderr, "%s\n", r.err.msg);
	CHECK_STR(r.d.text, "[    0.000005] fifth record\n[    0.000006] sixth record!!!!!\n");
	CHECK(r.d.wrapped);
	CHECK_EQ_U64(r.d.dropped, 1);
	CHECK(r.d.nproblems == 2);
	CHECK_CONTAINS(r.d.problems[0], "records 0..4 were overwritten");
	CHECK_CONTAINS(r.d.problems[1], "1 descriptor(s)");
	kbu_dmesg_free(&r.d);
}

TEST(linux_corrupt_ring_is_refused)
{
	struct lx g = lx_guest(2, 6);
	put_le(g.rb + 24, 100, 8);
	put_le(g.rb + 32, 1, 8);
	struct run r = read_with(g.f, "linux", LX_SYM);
	CHECK(r.rc < 0);
	CHECK_CONTAINS(r.err.msg, "exceeds the 4 descriptors");

	g = lx_guest(2, 6);
	put_le(g.rb + 0, 40, 4);
	r = read_with(g.f, "linux", LX_SYM);
	CHECK(r.rc < 0);
	CHECK_CONTAINS(r.err.msg, "count_bits 40");

	/* A descriptor whose block claims more than the ring holds is skipped, not read. */
	g = lx_guest(2, 6);
	lx_add(&g, 2, 6, 0, 0, 0, "ok", 2);
	put_le(g.descs + 16, 5000, 8); /* next: 5000 is many wraps past begin 0 */
	put_le(g.rb + 24, 0, 8);
	put_le(g.rb + 32, 0, 8);
	r = read_with(g.f, "linux", LX_SYM);
	CHECK(r.rc == 0);
	CHECK_STR(r.d.text, "");
	CHECK_EQ_U64(r.d.dropped, 1);
	CHECK_CONTAINS(r.d.problems[0], "are not one block");
	kbu_dmesg_free(&r.d);
}

TEST(log_bytes_are_escaped_newlines_and_tabs_kept)
{
	const char *t = "ok\tline\n\x1b[2J\x1b]0;x\x07 evil \xff\n";
	struct run r = read_with(freebsd_guest(t, 256, (uint32_t)strlen(t), 0x063062), "freebsd",
				 FBSD_SYM);
	CHECK(r.rc == 0);
	CHECK_STR(r.d.text, "ok\tline\n\\x1b[2J\\x1b]0;x\\x07 evil \\xff\n");
	CHECK_EQ_U64(r.d.records, 2);
	kbu_dmesg_free(&r.d);
}

int main(void)
{
	RUN(freebsd_unwrapped);
	RUN(freebsd_wrapped_starts_at_oldest_byte);
	RUN(freebsd_bad_header_is_an_error);
	RUN(netbsd_wrapped_and_unwrapped);
	RUN(linux_records_in_order_with_console_prefix);
	RUN(linux_wrapped_ring_and_unfinished_records);
	RUN(linux_corrupt_ring_is_refused);
	RUN(log_bytes_are_escaped_newlines_and_tabs_kept);
	CHECK_DONE("test_dmesg");
}
