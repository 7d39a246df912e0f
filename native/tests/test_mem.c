/* Memory layer: cache, batching, transfer limits, raw images, the callback source. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "kbu/mem.h"

#define SIZE (16 * 4096)

/* A source over a buffer that records what it was asked. */
struct rec_source {
	uint8_t mem[SIZE];
	uint64_t hole; /* a page that fails to read (0: none) */
	int reads;
	size_t largest;
	int closed_flag;
};

static int rec_read(void *ctx, enum kbu_space s, uint64_t addr, void *out, size_t len,
		    struct kbu_err *err)
{
	struct rec_source *r = ctx;
	r->reads++;
	if (len > r->largest)
		r->largest = len;
	if (s != KBU_PHYS)
		return kbu_err_set(err, KBU_EUNSUPPORTED, "physical only");
	if (addr >= 0xfffffffffffff000ull && len - 1 <= UINT64_MAX - addr) {
		memset(out, 0x5a, len); /* the very top page of the address space exists */
		return 0;
	}
	if (addr >= SIZE || len > SIZE - addr)
		return kbu_err_set(err, KBU_EFAULT, "outside the buffer");
	if (r->hole && addr < r->hole + 4096 && addr + len > r->hole)
		return kbu_err_set(err, KBU_EFAULT, "hole");
	memcpy(out, r->mem + addr, len);
	return 0;
}

static void rec_close(void *ctx) { free(ctx); }

static struct kbu_mem *rec_mem(struct rec_source **out, size_t max_read, struct kbu_mem_ops *ops)
{
	struct rec_source *r = calloc(1, sizeof *r);
	for (size_t i = 0; i < SIZE; i++)
		r->mem[i] = (uint8_t)(i * 7 + (i >> 12));
	*out = r;
	memset(ops, 0, sizeof *ops);
	ops->kind = "rec";
	ops->read = rec_read;
	ops->close = rec_close;
	ops->max_read = max_read;
	return kbu_mem_new(ops, r, NULL);
}

TEST(cache_serves_repeated_reads)
{
	struct rec_source *r;
	struct kbu_mem_ops ops;
	struct kbu_mem *m = rec_mem(&r, 0, &ops);
	struct kbu_err err = {0};
	uint8_t a[8], b[8];
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x1010, a, 8, &err) == 0);
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x1ff0, b, 8, &err) == 0);
	CHECK_EQ_U64(r->reads, 1);
	CHECK(memcmp(a, r->mem + 0x1010, 8) == 0);
	CHECK(memcmp(b, r->mem + 0x1ff0, 8) == 0);
	struct kbu_mem_stats st = kbu_mem_get_stats(m);
	CHECK_EQ_U64(st.requests, 2);
	CHECK_EQ_U64(st.source_reads, 1);
	CHECK_EQ_U64(st.source_bytes, 4096);
	CHECK_EQ_U64(st.cache_hits, 1);
	kbu_mem_flush(m);
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x1010, a, 8, &err) == 0);
	CHECK_EQ_U64(r->reads, 2);
	kbu_mem_close(m);
}

TEST(reads_are_batched_and_split)
{
	struct rec_source *r;
	struct kbu_mem_ops ops;
	struct kbu_mem *m = rec_mem(&r, 0, &ops);
	struct kbu_err err = {0};
	uint8_t *buf = malloc(8 * 4096);
	/* 8 pages, unaligned: one transfer of 9 pages */
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x800, buf, 8 * 4096, &err) == 0);
	CHECK_EQ_U64(r->reads, 1);
	CHECK(memcmp(buf, r->mem + 0x800, 8 * 4096) == 0);
	kbu_mem_close(m);

	/* a source that takes at most 1000 bytes at a time */
	m = rec_mem(&r, 1000, &ops);
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x2000, buf, 4096, &err) == 0);
	CHECK_EQ_U64(r->reads, 5);
	CHECK_EQ_U64(r->largest, 1000);
	CHECK(memcmp(buf, r->mem + 0x2000, 4096) == 0);
	/* a source that takes 2 pages at a time */
	kbu_mem_close(m);
	m = rec_mem(&r, 8192, &ops);
	CHECK(kbu_mem_read(m, KBU_PHYS, 0, buf, 6 * 4096, &err) == 0);
	CHECK_EQ_U64(r->reads, 3);
	free(buf);
	kbu_mem_close(m);
}

TEST(missing_page_names_its_address)
{
	struct rec_source *r;
	struct kbu_mem_ops ops;
	struct kbu_mem *m = rec_mem(&r, 0, &ops);
	r->hole = 0x5000;
	struct kbu_err err = {0};
	uint8_t buf[0x3000];
	memset(buf, 0xee, sizeof buf);
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x4100, buf, sizeof buf, &err) < 0);
	CHECK_EQ_U64(err.code, KBU_EFAULT);
	CHECK_CONTAINS(err.msg, "physical address 0x5000");
	/* the pages before the hole were cached on the way; reading them alone works */
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x4100, buf, 0x100, &err) == 0);
	CHECK(memcmp(buf, r->mem + 0x4100, 0x100) == 0);
	/* past the end of the buffer, partially */
	CHECK(kbu_mem_read(m, KBU_PHYS, SIZE - 4, buf, 8, &err) < 0);
	CHECK_CONTAINS(err.msg, "0x10000");
	/* the top page: its last byte is readable, one more wraps */
	memset(buf, 0, 16);
	CHECK(kbu_mem_read(m, KBU_PHYS, UINT64_MAX - 15, buf, 16, &err) == 0);
	CHECK(buf[0] == 0x5a && buf[15] == 0x5a);
	/* wrap-around */
	CHECK(kbu_mem_read(m, KBU_PHYS, UINT64_MAX - 2, buf, 8, &err) < 0);
	CHECK_CONTAINS(err.msg, "wraps");
	/* virtual reads need a translation the source cannot give */
	CHECK(kbu_mem_read(m, KBU_VIRT, 0x1000, buf, 8, &err) < 0);
	CHECK_CONTAINS(err.msg, "CR3");
	kbu_mem_close(m);
}

TEST(raw_image_file)
{
	char path[] = "/tmp/kbu-test-phys-XXXXXX";
	int fd = mkstemp(path);
	uint8_t data[5000];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)i;
	CHECK(write(fd, data, sizeof data) == (ssize_t)sizeof data);
	close(fd);
	char spec[64];
	snprintf(spec, sizeof spec, "%s@0x100000", path);
	struct kbu_err err = {0};
	struct kbu_mem *m = kbu_mem_open_phys_spec(spec, &err);
	CHECK(m != NULL);
	if (m) {
		uint8_t b[8];
		/* the image ends inside its second page: the bytes that exist still read */
		CHECK(kbu_mem_read(m, KBU_PHYS, 0x100000 + 4990, b, 8, &err) == 0);
		CHECK(memcmp(b, data + 4990, 8) == 0);
		CHECK(kbu_mem_read(m, KBU_PHYS, 0x100000 + 4996, b, 8, &err) < 0);
		CHECK_CONTAINS(err.msg, "0x101388");
		CHECK(kbu_mem_read(m, KBU_PHYS, 0xff000, b, 8, &err) < 0);
		CHECK_CONTAINS(err.msg, "outside the image");
		uint64_t s, e;
		CHECK_EQ_U64(kbu_mem_ranges(m, &s, &e, 1), 1);
		CHECK_EQ_U64(s, 0x100000);
		CHECK_EQ_U64(e, 0x100000 + 5000);
		CHECK(kbu_mem_regs(m, 0, &(struct kbu_regs){0}, &err) < 0);
		CHECK_CONTAINS(err.msg, "no CPU registers");
		kbu_mem_close(m);
	}
	snprintf(spec, sizeof spec, "%s@zz", path);
	CHECK(kbu_mem_open_phys_spec(spec, &err) == NULL);
	CHECK_CONTAINS(err.msg, "not a number");
	unlink(path);
	CHECK(kbu_mem_open_phys(path, 0, &err) == NULL);
	CHECK_CONTAINS(err.msg, "No such file");
	CHECK(kbu_mem_open_phys("/tmp", 0, &err) == NULL);
	CHECK_CONTAINS(err.msg, "not a regular file");
}

/* The ctypes-facing source: C callbacks standing in for Python. */
struct cb_user {
	uint8_t mem[4096];
	int calls;
};

static int cb_read(void *user, int space, uint64_t addr, void *buf, size_t len, char *errbuf,
		   size_t errlen)
{
	struct cb_user *u = user;
	u->calls++;
	if (space == KBU_VIRT && addr >= 0xffff800000000000ull)
		addr -= 0xffff800000000000ull;
	if (addr == 0x3000) {
		snprintf(errbuf, errlen, "the link went down");
		return KBU_ECONN;
	}
	if (addr >= sizeof u->mem || len > sizeof u->mem - addr) {
		snprintf(errbuf, errlen, "Cannot access memory at address 0x%llx", (unsigned long long)addr);
		return -1;
	}
	memcpy(buf, u->mem + addr, len);
	return 0;
}

static int cb_regs(void *user, int cpu, struct kbu_regs *out, char *errbuf, size_t errlen)
{
	if (cpu != 0) {
		snprintf(errbuf, errlen, "no thread %d", cpu + 1);
		return -1;
	}
	out->have = KBU_HAVE_CR;
	out->cr3 = 0x1234000;
	return 0;
}

static int cb_monitor(void *user, const char *cmd, char *out, size_t outlen, char *errbuf,
		      size_t errlen)
{
	snprintf(out, outlen, "ran %s", cmd);
	return 0;
}

TEST(callback_source)
{
	struct cb_user u = {0};
	memcpy(u.mem + 0x100, "from gdb", 9);
	struct kbu_err err = {0};
	struct kbu_mem *m = kbu_mem_open_callback(cb_read, cb_regs, cb_monitor, 1, &u, 4096, &err);
	CHECK(m != NULL);
	char s[16];
	/* the debugger translates virtual addresses itself */
	CHECK(kbu_mem_read_str(m, KBU_VIRT, 0xffff800000000100ull, s, sizeof s, &err) == 0);
	CHECK_STR(s, "from gdb");
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x2000, s, 4, &err) < 0);
	CHECK_CONTAINS(err.msg, "Cannot access memory at address 0x2000");
	CHECK_EQ_U64(err.code, KBU_EFAULT); /* -1: the old convention, a missing page */
	/* the code the callback returns is the error's code, kept through the cache */
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x3000, s, 4, &err) < 0);
	CHECK_EQ_U64(err.code, KBU_ECONN);
	CHECK_CONTAINS(err.msg, "the link went down");
	struct kbu_err fault;
	CHECK(kbu_mem_source_error(m, &fault) == 1);
	CHECK_EQ_U64(fault.code, KBU_ECONN);
	struct kbu_regs r;
	CHECK(kbu_mem_regs(m, 0, &r, &err) == 0);
	CHECK_EQ_U64(r.cr3, 0x1234000);
	CHECK(kbu_mem_regs(m, 3, &r, &err) < 0);
	CHECK_CONTAINS(err.msg, "no thread 4");
	char *out = NULL;
	CHECK(kbu_mem_monitor(m, "info lapic", &out, &err) == 0);
	CHECK_STR(out, "ran info lapic");
	free(out);
	CHECK_EQ_U64(kbu_mem_ncpus(m), 1);
	kbu_mem_close(m);
}

TEST(typed_reads_are_little_endian)
{
	struct rec_source *r;
	struct kbu_mem_ops ops;
	struct kbu_mem *m = rec_mem(&r, 0, &ops);
	memcpy(r->mem + 0x100, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	struct kbu_err err = {0};
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;
	CHECK(kbu_mem_read_u16(m, KBU_PHYS, 0x100, &v16, &err) == 0);
	CHECK(kbu_mem_read_u32(m, KBU_PHYS, 0x100, &v32, &err) == 0);
	CHECK(kbu_mem_read_u64(m, KBU_PHYS, 0x100, &v64, &err) == 0);
	CHECK_EQ_U64(v16, 0x0201);
	CHECK_EQ_U64(v32, 0x04030201);
	CHECK_EQ_U64(v64, 0x0807060504030201ull);
	/* a string that never ends is cut at the buffer size (the source changed: flush) */
	memset(r->mem + 0x200, 'a', 100);
	kbu_mem_flush(m);
	char s[10];
	CHECK(kbu_mem_read_str(m, KBU_PHYS, 0x200, s, sizeof s, &err) == 0);
	CHECK_STR(s, "aaaaaaaaa");
	CHECK(kbu_mem_write(m, KBU_PHYS, 0, "x", 1, &err) < 0);
	CHECK_CONTAINS(err.msg, "read-only");
	kbu_mem_close(m);
}

/* ---- the debugger source: a fake QEMU stub behind the callbacks ---- */

struct fake_dbg {
	uint8_t phys[8192];
	uint8_t virt[8192];       /* what the debugger reads with physical mode off */
	int has_packet, has_monitor;
	int mode;                 /* Qqemu.PhyMemMode */
	int mode_on_reads;        /* reads done in physical mode */
	int interrupt_reads;      /* reads return -1 (Ctrl-C) */
	int off_fails;            /* PhyMemMode:0 is not answered OK */
	int mtree_asked;
	char last_monitor[64];
};

static int fd_read(void *user, uint64_t addr, void *buf, size_t len, char *errbuf, size_t errlen)
{
	struct fake_dbg *f = user;
	if (f->interrupt_reads)
		return -1;
	if (addr >= sizeof f->phys || len > sizeof f->phys - addr) {
		snprintf(errbuf, errlen, "Cannot access memory at address 0x%llx",
			 (unsigned long long)addr);
		return KBU_EFAULT;
	}
	memcpy(buf, (f->mode ? f->phys : f->virt) + addr, len);
	f->mode_on_reads += f->mode;
	return 0;
}

static int fd_packet(void *user, const char *pkt, char *reply, size_t replylen, char *errbuf,
		     size_t errlen)
{
	struct fake_dbg *f = user;
	if (!f->has_packet) {
		reply[0] = 0; /* a stub that does not know the packet */
		return 0;
	}
	if (strcmp(pkt, "qqemu.PhyMemMode") == 0)
		snprintf(reply, replylen, "%d", f->mode);
	else if (strcmp(pkt, "Qqemu.PhyMemMode:1") == 0)
		f->mode = 1, snprintf(reply, replylen, "OK");
	else if (strcmp(pkt, "Qqemu.PhyMemMode:0") == 0) {
		if (f->off_fails) {
			snprintf(errbuf, errlen, "Remote connection closed");
			return KBU_ECONN;
		}
		f->mode = 0, snprintf(reply, replylen, "OK");
	} else
		reply[0] = 0;
	return 0;
}

static int fd_monitor(void *user, const char *cmd, char *out, size_t outlen, char *errbuf,
		      size_t errlen)
{
	struct fake_dbg *f = user;
	snprintf(f->last_monitor, sizeof f->last_monitor, "%s", cmd);
	if (!f->has_monitor) {
		snprintf(errbuf, errlen, "Target does not support this command.");
		return KBU_EUNSUPPORTED;
	}
	unsigned n;
	unsigned long long a;
	if (sscanf(cmd, "xp /%ubx %llx", &n, &a) == 2) {
		size_t o = 0;
		for (unsigned i = 0; i < n && o + 64 < outlen; i++) {
			if (i % 8 == 0)
				o += (size_t)snprintf(out + o, outlen - o, "%s%016llx:", i ? "\n" : "", a + i);
			if (a + i < sizeof f->phys)
				o += (size_t)snprintf(out + o, outlen - o, " 0x%02x", f->phys[a + i]);
			else
				o += (size_t)snprintf(out + o, outlen - o, " Cannot access memory");
		}
		snprintf(out + o, outlen - o, "\n");
		return 0;
	}
	if (strcmp(cmd, "info mtree -f") == 0) {
		f->mtree_asked++;
		snprintf(out, outlen, "FlatView #0\n AS \"memory\", root: system\n"
			 " Root memory region: system\n"
			 "  0000000000000000-0000000000001fff (prio 0, ram): microvm.ram\n"
			 "  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic\n");
		return 0;
	}
	snprintf(out, outlen, "ran %s", cmd);
	return 0;
}

static int fd_ncpus(void *user) { return 2; }

static struct kbu_mem *fake_dbg_mem(struct fake_dbg *f)
{
	for (size_t i = 0; i < sizeof f->phys; i++) {
		f->phys[i] = (uint8_t)(i * 3 + 1);
		f->virt[i] = 0xee;
	}
	struct kbu_debugger_ops ops = {.read = fd_read, .packet = fd_packet, .monitor = fd_monitor,
				       .ncpus = fd_ncpus, .max_read = 4096};
	struct kbu_err err = {0};
	return kbu_mem_open_debugger(&ops, f, &err);
}

TEST(debugger_source_physical_mode)
{
	struct fake_dbg f = {.has_packet = 1, .has_monitor = 1};
	struct kbu_mem *m = fake_dbg_mem(&f);
	CHECK(m != NULL);
	CHECK_STR(kbu_mem_kind(m), "debugger");
	CHECK_STR(kbu_mem_debugger_phys_method(m), "");
	uint8_t b[16];
	struct kbu_err err = {0};
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x100, b, sizeof b, &err) == 0);
	CHECK_EQ_U64(b[0], (uint8_t)(0x100 * 3 + 1));
	CHECK_STR(kbu_mem_debugger_phys_method(m), "packet");
	CHECK_EQ_U64(f.mode, 0); /* switched back */
	CHECK(f.mode_on_reads > 0);
	/* virtual reads are the debugger's own */
	CHECK(kbu_mem_read(m, KBU_VIRT, 0x100, b, 4, &err) == 0);
	CHECK_EQ_U64(b[0], 0xee);
	/* ranges from "info mtree -f": RAM only, asked once */
	uint64_t st[4], en[4];
	CHECK_EQ_U64(kbu_mem_ranges(m, st, en, 4), 1);
	CHECK_EQ_U64(en[0], 0x2000);
	CHECK_EQ_U64(kbu_mem_ranges(m, st, en, 4), 1);
	CHECK_EQ_U64(f.mtree_asked, 1);
	CHECK_EQ_U64(kbu_mem_ncpus(m), 2);
	/* a stub that does not switch back is a transport fault, not a missing page */
	f.off_fails = 1;
	kbu_mem_flush(m);
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x200, b, 4, &err) < 0);
	CHECK_EQ_U64(err.code, KBU_ECONN);
	CHECK_CONTAINS(err.msg, "switching physical memory mode back off");
	kbu_mem_close(m);
}

TEST(debugger_source_xp_and_none)
{
	struct fake_dbg f = {.has_packet = 0, .has_monitor = 1};
	struct kbu_mem *m = fake_dbg_mem(&f);
	uint8_t b[5000];
	struct kbu_err err = {0};
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x10, b, sizeof b, &err) == 0);
	CHECK_STR(kbu_mem_debugger_phys_method(m), "xp");
	CHECK_EQ_U64(b[4999], (uint8_t)((0x10 + 4999) * 3 + 1));
	/* xp's error text in place of bytes: the page is missing */
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x1ff8, b, 16, &err) < 0);
	CHECK_EQ_U64(err.code, KBU_EFAULT);
	CHECK_CONTAINS(err.msg, "0x2000");
	kbu_mem_close(m);

	struct fake_dbg g = {.has_packet = 0, .has_monitor = 0};
	m = fake_dbg_mem(&g);
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x10, b, 4, &err) < 0);
	CHECK_EQ_U64(err.code, KBU_EUNSUPPORTED);
	CHECK_STR(kbu_mem_debugger_phys_method(m), "none");
	CHECK(kbu_mem_ranges(m, NULL, NULL, 0) == 0);
	kbu_mem_close(m);
}

TEST(debugger_source_interrupted)
{
	struct fake_dbg f = {.has_packet = 1, .has_monitor = 1, .interrupt_reads = 1};
	struct kbu_mem *m = fake_dbg_mem(&f);
	uint8_t b[64];
	struct kbu_err err = {0};
	memset(b, 0, sizeof b);
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x100, b, sizeof b, &err) < 0);
	CHECK_EQ_U64(err.code, KBU_EINTR);
	CHECK_CONTAINS(err.msg, "interrupted");
	CHECK_EQ_U64(f.mode, 0); /* physical mode off again after the interruption */
	struct kbu_err fault;
	CHECK(kbu_mem_source_error(m, &fault) == 1);
	CHECK_EQ_U64(fault.code, KBU_EINTR);
	CHECK(kbu_mem_read(m, KBU_VIRT, 0x100, b, sizeof b, &err) < 0);
	CHECK_EQ_U64(err.code, KBU_EINTR);
	kbu_mem_close(m);
}

int main(void)
{
	RUN(cache_serves_repeated_reads);
	RUN(reads_are_batched_and_split);
	RUN(missing_page_names_its_address);
	RUN(raw_image_file);
	RUN(callback_source);
	RUN(debugger_source_physical_mode);
	RUN(debugger_source_xp_and_none);
	RUN(debugger_source_interrupted);
	RUN(typed_reads_are_little_endian);
	CHECK_DONE("test_mem");
}
