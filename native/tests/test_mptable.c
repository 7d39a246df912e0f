/* MP table: floating pointer search, walk by length, checksums, overruns,
 * unknown entries, extended entries and cross-checks, on tables built here. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "faulty.h"
#include "fc_mptable.h"
#include "membuf.h"
#include "support.h"
#include "kbu/command.h"
#include "kbu/mem.h"
#include "kbu/mptable.h"
#include "kbu/report.h"

/* A memory source over a copy of img: [0, size) exists, the rest does not. */
static struct kbu_mem *fake_mem(const uint8_t *img, size_t size, const char *monitor)
{
	return membuf_new(img, size, monitor, 0, NULL);
}

/* ---- table builder ---- */

struct tb {
	uint8_t *img;
	size_t fp, tab, len; /* len: bytes of entries written so far after the header */
};

static void put16(uint8_t *p, uint16_t v) { put_le(p, v, 2); }
static void put32(uint8_t *p, uint32_t v) { put_le(p, v, 4); }
static void put64(uint8_t *p, uint64_t v) { put_le(p, v, 8); }

static unsigned kbu_le16_test(const uint8_t *p) { return (unsigned)(p[0] | p[1] << 8); }

static uint8_t sum(const uint8_t *p, size_t n)
{
	unsigned s = 0;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	return (uint8_t)s;
}

static void tb_init(struct tb *t, uint8_t *img, size_t fp, size_t tab)
{
	t->img = img;
	t->fp = fp;
	t->tab = tab;
	t->len = 0;
	uint8_t *f = img + fp;
	memcpy(f, "_MP_", 4);
	put32(f + 4, (uint32_t)tab);
	f[8] = 1;
	f[9] = 4;
	uint8_t *h = img + tab;
	memcpy(h, "PCMP", 4);
	h[6] = 4;
	memcpy(h + 8, "QBOOT   ", 8);
	memcpy(h + 16, "000000000000", 12);
	put32(h + 36, 0xfee00000);
}

static uint8_t *tb_entry(struct tb *t, size_t len)
{
	uint8_t *e = t->img + t->tab + KBU_MP_HEADER_SIZE + t->len;
	t->len += len;
	return e;
}

static void tb_proc(struct tb *t, uint8_t id, int bsp)
{
	uint8_t *e = tb_entry(t, 20);
	e[0] = 0;
	e[1] = id;
	e[2] = 0x14;
	e[3] = (uint8_t)(1 | (bsp ? 2 : 0));
	put32(e + 4, 0x00000f61); /* family 15, model 6, stepping 1 */
	put32(e + 8, 0x178bfbfd);
}

static void tb_bus(struct tb *t, uint8_t id, const char *type)
{
	uint8_t *e = tb_entry(t, 8);
	e[0] = 1;
	e[1] = id;
	memcpy(e + 2, type, 6);
}

static void tb_ioapic(struct tb *t, uint8_t id)
{
	uint8_t *e = tb_entry(t, 8);
	e[0] = 2;
	e[1] = id;
	e[2] = 0x20;
	e[3] = 1;
	put32(e + 4, 0xfec00000);
}

static void tb_int(struct tb *t, uint8_t type, uint8_t itype, uint16_t flags, uint8_t bus,
		   uint8_t irq, uint8_t apic, uint8_t pin)
{
	uint8_t *e = tb_entry(t, 8);
	e[0] = type;
	e[1] = itype;
	put16(e + 2, flags);
	e[4] = bus;
	e[5] = irq;
	e[6] = apic;
	e[7] = pin;
}

/* Closes the table: base length, entry count, both checksums. */
static void tb_finish(struct tb *t, uint16_t entry_count)
{
	uint8_t *h = t->img + t->tab;
	put16(h + 4, (uint16_t)(KBU_MP_HEADER_SIZE + t->len));
	put16(h + 34, entry_count);
	h[7] = 0;
	h[7] = (uint8_t)-sum(h, KBU_MP_HEADER_SIZE + t->len);
	uint8_t *f = t->img + t->fp;
	f[10] = 0;
	f[10] = (uint8_t)-sum(f, 16);
}

/* Like QEMU 7.2's qboot: 2 CPUs, ISA bus, I/O APIC id ncpus+1, 16 ISA IRQs, two
 * local ints, entry_count left at 0. */
static void build_qboot(uint8_t *img, int ncpus, struct tb *t)
{
	tb_init(t, img, 0x9fc00, 0x9fc10);
	for (int i = 0; i < ncpus; i++)
		tb_proc(t, (uint8_t)i, i == 0);
	tb_bus(t, 0, "ISA   ");
	tb_ioapic(t, (uint8_t)(ncpus + 1));
	for (uint8_t irq = 0; irq < 16; irq++)
		if (irq != 2)
			tb_int(t, 3, 0, 0, 0, irq, (uint8_t)(ncpus + 1), irq == 0 ? 2 : irq);
	tb_int(t, 4, 3, 0, 0, 0, 0, 0);
	tb_int(t, 4, 1, 0, 0, 0, 0xff, 1);
	tb_finish(t, 0);
}

#define MEMSZ (1024 * 1024)

static int has_problem(const struct kbu_mptable *t, const char *needle)
{
	for (size_t i = 0; i < t->nproblems; i++)
		if (strstr(t->problems[i].msg, needle))
			return 1;
	return 0;
}

static const struct kbu_finding_rec *find_code(const struct kbu_mptable *t, const char *code)
{
	for (size_t i = 0; i < t->nproblems; i++)
		if (t->problems[i].code && strcmp(t->problems[i].code, code) == 0)
			return &t->problems[i];
	return NULL;
}

static char *render(const struct kbu_mptable *t, int json)
{
	struct kbu_report *r = kbu_report_new("mptable");
	kbu_mptable_report(t, kbu_report_root(r));
	char *s = kbu_report_render(r, json);
	kbu_report_free(r);
	return s;
}

TEST(qboot_zero_count_still_lists_cpus)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct tb t;
	build_qboot(img, 2, &t);
	struct kbu_mem *m = fake_mem(img, MEMSZ, NULL);
	struct kbu_mptable mt;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK_EQ_U64(mt.fp.addr, 0x9fc00);
	CHECK_EQ_U64(mt.fp.sum, 0);
	CHECK_EQ_U64(mt.hdr.sum, 0);
	CHECK_EQ_U64(kbu_mptable_ncpus(&mt), 2);
	CHECK_EQ_U64(mt.nbase, 2 + 1 + 1 + 15 + 2);
	CHECK(mt.walk_complete);
	CHECK(has_problem(&mt, "entry count is 0 but the table holds 21 entries"));
	CHECK(!has_problem(&mt, "checksum"));
	char *txt = render(&mt, 0);
	CHECK_CONTAINS(txt, "Processors");
	CHECK_CONTAINS(txt, "APIC ID  Version  State");
	CHECK_CONTAINS(txt, "BSP, usable");
	CHECK_CONTAINS(txt, "AP, usable");
	CHECK_CONTAINS(txt, "I/O Ints");
	CHECK_CONTAINS(txt, "Local Ints");
	CHECK_CONTAINS(txt, "ExtINT");
	CHECK_CONTAINS(txt, "OEM ID:                  QBOOT\n");
	CHECK_CONTAINS(txt, "! entry count is 0");
	CHECK_CONTAINS(txt, "not cross-checked");
	char *js = render(&mt, 1);
	CHECK_CONTAINS(js, "\"cpus\": 2");
	CHECK_CONTAINS(js, "\"entry_count\": 0");
	CHECK_CONTAINS(js, "\"cpu_apic_ids\": [0, 1]");
	kbu_free(txt);
	kbu_free(js);
	kbu_mptable_free(&mt);
	kbu_mem_close(m);
	free(img);
}

/* Text fields are guest bytes: escaped as every command escapes them, never
 * passed through (an ESC would reach the terminal) nor turned into '?'. */
TEST(guest_text_is_escaped)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct tb t;
	build_qboot(img, 1, &t);
	memcpy(img + t.tab + 8, "QB\x1b[2J\xff ", 8);   /* OEM ID */
	memcpy(img + t.tab + 16, "P\nR      ", 10);    /* product, a newline in it */
	/* the bus entry's type: find it after the processor entry */
	size_t bus = t.tab + 44 + 20;
	CHECK_EQ_U64(img[bus], 1);
	memcpy(img + bus + 2, "IS\x07   ", 6);
	img[t.tab + 7] = 0;
	img[t.tab + 7] = (uint8_t)-sum(img + t.tab, kbu_le16_test(img + t.tab + 4));
	struct kbu_mem *m = fake_mem(img, MEMSZ, NULL);
	struct kbu_mptable mt;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK_STR(mt.hdr.oem_id, "QB\\x1b[2J\\xff");
	CHECK_STR(mt.hdr.product_id, "P\\x0aR");
	int found = 0;
	for (size_t i = 0; i < mt.nbase; i++)
		if (mt.entries[i].type == KBU_MP_BUS) {
			CHECK_STR(mt.entries[i].u.bus.type, "IS\\x07");
			found = 1;
		}
	CHECK(found);
	char *txt = render(&mt, 0);
	CHECK(strchr(txt, 0x1b) == NULL);
	kbu_free(txt);
	kbu_mptable_free(&mt);
	kbu_mem_close(m);
	free(img);
}

TEST(healthy_table_in_bios_rom_has_no_problems)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct tb t;
	tb_init(&t, img, 0xf5a10, 0xf5a20);
	for (uint8_t i = 0; i < 4; i++)
		tb_proc(&t, i, i == 0);
	tb_bus(&t, 0, "ISA   ");
	tb_ioapic(&t, 4);
	tb_int(&t, 3, 3, 0, 0, 0, 4, 0);
	tb_int(&t, 3, 0, 0x0d, 0, 9, 4, 9); /* polarity 01 active-hi, trigger 11 level */
	tb_int(&t, 4, 1, 0, 0, 0, 0xff, 1);
	tb_finish(&t, 4 + 1 + 1 + 3);
	struct kbu_mem *m = fake_mem(img, MEMSZ, NULL);
	struct kbu_mptable mt;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK_EQ_U64(mt.fp.addr, 0xf5a10);
	CHECK_STR(mt.fp.where, "BIOS ROM 0xe0000-0xfffff");
	CHECK_EQ_U64(kbu_mptable_ncpus(&mt), 4);
	char *txt = render(&mt, 0);
	CHECK(strchr(txt, '!') == NULL);
	CHECK_CONTAINS(txt, "active-hi");
	CHECK_CONTAINS(txt, "level");
	CHECK_CONTAINS(txt, "ISA IRQ routing");
	struct kbu_report *r = kbu_report_new("mptable");
	kbu_mptable_report(&mt, kbu_report_root(r));
	CHECK_EQ_U64(kbu_report_problems(r), 0);
	kbu_report_free(r);
	kbu_free(txt);
	kbu_mptable_free(&mt);
	kbu_mem_close(m);
	free(img);
}

TEST(search_order_ebda_first)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct tb t;
	/* A decoy in the BIOS ROM and the real one in the EBDA at 0x80000. */
	build_qboot(img, 1, &t);
	memmove(img + 0x80000, img + 0x9fc00, 0x400);
	memset(img + 0x9fc00, 0, 0x400);
	put32(img + 0x80000 + 4, 0x80010);
	img[0x80000 + 10] = 0;
	img[0x80000 + 10] = (uint8_t)-sum(img + 0x80000, 16);
	put16(img + 0x40e, 0x8000);
	memcpy(img + 0xf0000, "_MP_", 4); /* no valid checksum or length: ignored */
	struct kbu_mem *m = fake_mem(img, MEMSZ, NULL);
	struct kbu_mptable mt;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK_EQ_U64(mt.fp.addr, 0x80000);
	CHECK_STR(mt.fp.where, "EBDA");
	CHECK_EQ_U64(kbu_mptable_ncpus(&mt), 1);
	kbu_mptable_free(&mt);
	/* Base memory top (0x413, KiB) is searched too. */
	memset(img + 0x40e, 0, 2);
	put16(img + 0x413, 0x200 + 1); /* 513 KiB: last KiB at 0x80000 */
	kbu_mem_close(m);
	m = fake_mem(img, MEMSZ, NULL);
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK_EQ_U64(mt.fp.addr, 0x80000);
	CHECK_STR(mt.fp.where, "last KiB of base memory");
	kbu_mptable_free(&mt);
	kbu_mem_close(m);
	free(img);
}

TEST(unknown_entry_68_stops_cleanly_with_bytes)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct tb t;
	tb_init(&t, img, 0x9fc00, 0x9fc10);
	tb_proc(&t, 0, 1);
	tb_proc(&t, 1, 0);
	uint8_t *bad = tb_entry(&t, 8);
	memcpy(bad, "D\x01\x02\x03\x04\x05\x06\x07", 8); /* 'D' = 68 */
	tb_bus(&t, 0, "ISA   ");
	tb_finish(&t, 4);
	struct kbu_mem *m = fake_mem(img, MEMSZ, NULL);
	struct kbu_mptable mt;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK_EQ_U64(kbu_mptable_ncpus(&mt), 2);
	CHECK_EQ_U64(mt.nbase, 2);
	CHECK(!mt.walk_complete);
	/* offset 44 + 40 = 0x54, phys 0x9fc64 */
	CHECK(has_problem(&mt, "unknown entry type 68 (0x44) at offset 0x54 (phys 0x9fc64)"));
	CHECK(has_problem(&mt, "44 01 02 03 04 05 06 07"));
	CHECK(!has_problem(&mt, "spell"));
	CHECK(has_problem(&mt, "entry count is 4; 2 entries were walked before the walk stopped"));
	char *txt = render(&mt, 0);
	CHECK_CONTAINS(txt, "! error: unknown entry type 68");
	kbu_free(txt);
	kbu_mptable_free(&mt);
	kbu_mem_close(m);
	free(img);
}

TEST(bad_checksums_show_expected_and_actual)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct tb t;
	build_qboot(img, 2, &t);
	uint8_t good_fp = img[0x9fc00 + 10], good_tab = img[0x9fc10 + 7];
	img[0x9fc00 + 10] ^= 0x5a;
	img[0x9fc10 + 7] += 3;
	struct kbu_mem *m = fake_mem(img, MEMSZ, NULL);
	struct kbu_mptable mt;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	/* A bad pointer is still used when it is the only one, and flagged. */
	CHECK_EQ_U64(mt.fp.addr, 0x9fc00);
	char want[128];
	snprintf(want, sizeof(want), "a correct checksum byte would be 0x%02x", good_fp);
	CHECK(has_problem(&mt, "floating pointer checksum bad"));
	CHECK(has_problem(&mt, want));
	snprintf(want, sizeof(want), "base table checksum bad: byte is 0x%02x",
		 (uint8_t)(good_tab + 3));
	CHECK(has_problem(&mt, want));
	CHECK(has_problem(&mt, "sum to 0x03"));
	snprintf(want, sizeof(want), "a correct checksum byte would be 0x%02x", good_tab);
	CHECK(has_problem(&mt, want));
	CHECK_EQ_U64(kbu_mptable_ncpus(&mt), 2);
	kbu_mptable_free(&mt);
	kbu_mem_close(m);
	free(img);
}

/* What FreeBSD leaves behind: qboot's table with entry_count patched from 0
 * to the real count and the checksum untouched. */
TEST(count_patched_in_place_is_recognised)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct tb t;
	build_qboot(img, 2, &t);
	put16(img + 0x9fc10 + 34, 21);
	struct kbu_mem *m = fake_mem(img, MEMSZ, NULL);
	struct kbu_mptable mt;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	/* A note naming the cause, not an error: nothing else is wrong with the table. */
	const struct kbu_finding_rec *p = find_code(&mt, "mptable.checksum_after_count_rewrite");
	CHECK(p != NULL);
	CHECK(p && p->sev == KBU_SEV_NOTE);
	CHECK(p && strstr(p->msg, "the checksum would be right with entry count 0: the count (21)"));
	CHECK(find_code(&mt, "mptable.checksum_bad") == NULL);
	CHECK(!has_problem(&mt, "entry count is"));
	CHECK_EQ_U64(mt.count_walk.outcome, KBU_MP_COUNT_SAME);
	struct kbu_report *r = kbu_report_new("mptable");
	kbu_mptable_report(&mt, kbu_report_root(r));
	CHECK_EQ_U64(kbu_report_problems(r), 0);
	kbu_report_free(r);
	kbu_mptable_free(&mt);
	kbu_mem_close(m);
	free(img);
}

TEST(base_length_past_end_of_memory)
{
	enum { SZ = 0xa0000 };
	uint8_t *img = calloc(1, SZ);
	struct tb t;
	build_qboot(img, 2, &t);
	put16(img + 0x9fc10 + 4, 0x2000); /* runs 0x9fc10 + 0x2000 > 0xa0000 */
	struct kbu_mem *m = fake_mem(img, SZ, NULL);
	struct kbu_mptable mt;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK(has_problem(&mt, "base table length 0x2000 runs past the end of memory: only 0x3f0"));
	CHECK(has_problem(&mt, "checksum not verified"));
	CHECK(!mt.hdr.sum_checked);
	char *txt = render(&mt, 0);
	CHECK_CONTAINS(txt, "checksum ok:             -\n");
	kbu_free(txt);
	txt = render(&mt, 1);
	CHECK_CONTAINS(txt, "\"checksum_ok\": null");
	kbu_free(txt);
	/* What is readable is still walked: the real entries, then zero bytes (type 0
	 * processors) until an entry runs into missing memory. */
	CHECK(kbu_mptable_ncpus(&mt) >= 2);
	CHECK(has_problem(&mt, "runs past the end of readable memory"));
	kbu_mptable_free(&mt);
	kbu_mem_close(m);
	free(img);
}

TEST(truncated_table_entry_crosses_end)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct tb t;
	tb_init(&t, img, 0x9fc00, 0x9fc10);
	tb_proc(&t, 0, 1);
	tb_proc(&t, 1, 0);
	t.len -= 8; /* the second processor is cut: base length ends inside it */
	tb_finish(&t, 2);
	struct kbu_mem *m = fake_mem(img, MEMSZ, NULL);
	struct kbu_mptable mt;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK_EQ_U64(kbu_mptable_ncpus(&mt), 1);
	CHECK(has_problem(&mt, "entry type 0 at offset 0x40 (20 bytes) crosses the end of the base "
			       "table (length 0x4c)"));
	kbu_mptable_free(&mt);

	/* A header shorter than itself. */
	put16(img + 0x9fc10 + 4, 20);
	kbu_mem_close(m);
	m = fake_mem(img, MEMSZ, NULL);
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK(has_problem(&mt, "base table length 20 is shorter than the 44-byte header"));
	CHECK_EQ_U64(mt.nentries, 0);
	kbu_mptable_free(&mt);
	kbu_mem_close(m);
	free(img);
}

static void build_ext(uint8_t *img, int corrupt_sum, int cross)
{
	struct tb t;
	build_qboot(img, 2, &t);
	uint8_t *h = img + 0x9fc10;
	uint16_t base = (uint16_t)(h[4] | h[5] << 8);
	uint8_t *x = h + base;
	/* 128: system address space mapping, 20 bytes */
	x[0] = 128; x[1] = 20; x[2] = 0; x[3] = 1;
	put64(x + 4, 0xc0000000ull);
	put64(x + 12, 0x40000000ull);
	/* 129: bus hierarchy, 8 bytes */
	x[20] = 129; x[21] = 8; x[22] = 1; x[23] = 1; x[24] = 0;
	/* 130: compatibility bus address space modifier, 8 bytes */
	x[28] = 130; x[29] = 8; x[30] = 0; x[31] = 0; put32(x + 32, 0);
	/* 200: unknown, 6 bytes, skipped by its length */
	x[36] = 200; x[37] = 6; x[38] = 0xaa;
	uint16_t ext = 42;
	if (cross)
		x[37] = 9; /* runs past the extended table */
	put16(h + 40, ext);
	h[42] = (uint8_t)-sum(x, ext);
	if (corrupt_sum)
		h[42] ^= 1;
	/* The extended length and checksum live in the base table's header. */
	h[7] = 0;
	h[7] = (uint8_t)-sum(h, base);
}

TEST(extended_entries)
{
	uint8_t *img = calloc(1, MEMSZ);
	build_ext(img, 0, 0);
	struct kbu_mem *m = fake_mem(img, MEMSZ, NULL);
	struct kbu_mptable mt;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK_EQ_U64(mt.nentries - mt.nbase, 4);
	CHECK(mt.hdr.ext_readable);
	CHECK_EQ_U64(mt.hdr.ext_sum, 0);
	CHECK(!has_problem(&mt, "extended table checksum"));
	CHECK(has_problem(&mt, "unknown extended entry type 200 at offset"));
	int sasm = 0, bhd = 0, cbasm = 0;
	for (size_t i = 0; i < mt.nentries; i++) {
		const struct kbu_mp_entry *en = &mt.entries[i];
		if (!en->extended)
			continue;
		if (en->type == KBU_MP_EXT_SASM) {
			sasm++;
			CHECK_EQ_U64(en->u.sasm.base, 0xc0000000ull);
			CHECK_EQ_U64(en->u.sasm.length, 0x40000000ull);
			CHECK_EQ_U64(en->u.sasm.addr_type, 1);
		} else if (en->type == KBU_MP_EXT_BHD) {
			bhd++;
			CHECK_EQ_U64(en->u.bhd.bus, 1);
			CHECK_EQ_U64(en->u.bhd.info, 1);
		} else if (en->type == KBU_MP_EXT_CBASM) {
			cbasm++;
		}
	}
	CHECK(sasm == 1 && bhd == 1 && cbasm == 1);
	char *txt = render(&mt, 0);
	CHECK_CONTAINS(txt, "MP Config Extended Table Entries");
	CHECK_CONTAINS(txt, "System Address Space");
	CHECK_CONTAINS(txt, "0x00000000c0000000");
	CHECK_CONTAINS(txt, "Bus Hierarchy");
	CHECK_CONTAINS(txt, "ISA compatible I/O");
	kbu_free(txt);
	kbu_mptable_free(&mt);
	kbu_mem_close(m);

	build_ext(img, 1, 0);
	m = fake_mem(img, MEMSZ, NULL);
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK(has_problem(&mt, "extended table checksum bad"));
	kbu_mptable_free(&mt);
	kbu_mem_close(m);

	build_ext(img, 0, 1);
	m = fake_mem(img, MEMSZ, NULL);
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK(has_problem(&mt, "extended entry type 200"));
	CHECK(has_problem(&mt, "crosses the end of the extended table"));
	CHECK_EQ_U64(mt.nentries - mt.nbase, 3);
	kbu_mptable_free(&mt);
	kbu_mem_close(m);
	free(img);
}

TEST(cross_checks_bsp_duplicates_ioapic_register)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct tb t;
	tb_init(&t, img, 0x9fc00, 0x9fc10);
	tb_proc(&t, 0, 1);
	tb_proc(&t, 0, 1); /* same APIC id, second BSP */
	tb_bus(&t, 0, "ISA   ");
	tb_ioapic(&t, 3);
	tb_int(&t, 3, 0, 0, 7, 4, 9, 4); /* bus 7 and I/O APIC 9 do not exist */
	tb_finish(&t, 5);
	struct kbu_mem *m = fake_mem(img, MEMSZ, "ioapic0: ver=0x20 id=0x00 sel=0x10 (redir[23])\n");
	struct kbu_mptable mt;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK(has_problem(&mt, "2 processors carry the BSP flag"));
	CHECK(has_problem(&mt, "share APIC id 0"));
	CHECK(has_problem(&mt, "source bus 7"));
	CHECK(has_problem(&mt, "targets I/O APIC id 9"));
	CHECK_EQ_U64(mt.ioapic_hw_id, 0);
	CHECK(has_problem(&mt, "the table says id 3, the I/O APIC's own ID register says 0"));
	CHECK_EQ_U64(mt.ioapic_hw_version, 0x20);
	CHECK(!has_problem(&mt, "the table says version"));
	kbu_mptable_free(&mt);
	kbu_mem_close(m);
	free(img);
}

/* Thousands of bad entries: the problems are capped and counted, not listed. */
TEST(problem_flood_is_capped)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct tb t;
	tb_init(&t, img, 0x9fc00, 0x9fc10);
	tb_proc(&t, 0, 1);
	memmove(img + 0x9fc00 - 0x10000, img + 0x9fc00, 0x400); /* room below 0xa0000 is short */
	memset(img + 0x9fc00, 0, 0x400);
	t.fp = 0x9fc00 - 0x10000;
	t.tab = t.fp + 0x10;
	put32(img + t.fp + 4, (uint32_t)t.tab);
	for (int i = 0; i < 7000; i++)
		tb_int(&t, 3, 0, 0, 7, (uint8_t)i, 9, 0); /* bus 7 and I/O APIC 9 do not exist */
	tb_finish(&t, 7001);
	struct kbu_mem *m = fake_mem(img, MEMSZ, NULL);
	struct kbu_mptable mt;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 1, t.fp, &mt, &e) == 0);
	CHECK_EQ_U64(mt.nbase, 7001);
	CHECK_EQ_U64(mt.nproblems, KBU_MP_MAX_PROBLEMS);
	CHECK(mt.nsuppressed > 13000);
	char *txt = render(&mt, 0);
	CHECK_CONTAINS(txt, "further problems not listed (only the first 100 are)");
	kbu_free(txt);
	kbu_mptable_free(&mt);
	kbu_mem_close(m);
	free(img);
}

TEST(not_found_and_bad_address)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct kbu_mem *m = fake_mem(img, MEMSZ, NULL);
	struct kbu_mptable mt;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_ENOTFOUND);
	CHECK_CONTAINS(e.msg, "no MP floating pointer");
	CHECK(kbu_mptable_read(m, 1, 0x1234, &mt, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_EFORMAT);
	CHECK_CONTAINS(e.msg, "0x1234");
	CHECK(kbu_mptable_read(m, 1, 0x7fffffff0ull, &mt, &e) != 0);
	CHECK_CONTAINS(e.msg, "0x7fffffff0");
	kbu_mem_close(m);

	/* Config table pointer outside memory. */
	struct tb t;
	build_qboot(img, 2, &t);
	put32(img + 0x9fc00 + 4, 0x40000000);
	img[0x9fc00 + 10] = 0;
	img[0x9fc00 + 10] = (uint8_t)-sum(img + 0x9fc00, 16);
	m = fake_mem(img, MEMSZ, NULL);
	CHECK(kbu_mptable_read(m, 1, 0x9fc00, &mt, &e) == 0);
	CHECK_STR(mt.fp.where, "given address");
	CHECK(has_problem(&mt, "config table pointer 0x40000000 points outside memory"));
	CHECK_EQ_U64(mt.nentries, 0);
	char *txt = render(&mt, 0);
	CHECK_CONTAINS(txt, "! error: config table pointer 0x40000000");
	CHECK(strstr(txt, "Processors") == NULL);
	kbu_free(txt);
	kbu_mptable_free(&mt);
	kbu_mem_close(m);
	free(img);
}

/* Deterministic mutations of a qboot table with extended entries: whatever the
 * bytes say, the walk ends, and the report renders (ASan/UBSan watch). */
TEST(mutated_tables_never_crash)
{
	uint8_t *img = calloc(1, MEMSZ);
	build_ext(img, 0, 0);
	uint8_t *work = malloc(MEMSZ);
	uint32_t x = 0x12345678;
	int walked = 0;
	memcpy(work, img, MEMSZ);
	for (int round = 0; round < 500; round++) {
		memcpy(work + 0x9fc00, img + 0x9fc00, 0x400);
		int nflip = 1 + round % 8;
		for (int k = 0; k < nflip; k++) {
			x ^= x << 13; x ^= x >> 17; x ^= x << 5;
			/* the pointer, the header and the first entries are where it matters */
			size_t off = 0x9fc00 + (x >> 8) % 0x140;
			work[off] = (uint8_t)(x & 0xff);
		}
		if (round % 5 == 0) /* sometimes keep checksums right so the walk goes deep */
			work[0x9fc00 + 10] = (uint8_t)(work[0x9fc00 + 10] - sum(work + 0x9fc00, 16));
		struct kbu_mem *m = fake_mem(work, MEMSZ, NULL);
		struct kbu_mptable mt;
		struct kbu_err e;
		if (kbu_mptable_read(m, round & 1, 0x9fc00, &mt, &e) == 0) {
			walked++;
			char *txt = render(&mt, round & 1);
			CHECK(txt != NULL);
			kbu_free(txt);
			kbu_mptable_free(&mt);
		} else {
			CHECK(e.msg[0] != 0);
		}
		kbu_mem_close(m);
	}
	CHECK(walked > 150);
	free(work);
	free(img);
}

/* A transport fault while searching is reported as itself, never as "not found". */
TEST(read_errors_reach_the_user_as_themselves)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct tb t;
	build_qboot(img, 2, &t);
	struct kbu_mptable mt;
	struct kbu_err e;
	/* The stub dies while the BIOS area is searched (the table is not at 0x9fc00 here). */
	memset(img + 0x9fc00, 0, 0x400);
	struct kbu_mem *m = faulty_mem(img, MEMSZ, 0xf0000, 0xf1000, KBU_ECONN);
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_ECONN);
	CHECK_CONTAINS(e.msg, "closed the connection");
	CHECK_CONTAINS(e.msg, "searching BIOS ROM 0xe0000-0xfffff");
	CHECK(strstr(e.msg, "no MP floating pointer") == NULL);
	kbu_mem_close(m);
	/* ... or while the BIOS data area is read. */
	m = faulty_mem(img, MEMSZ, 0x400, 0x500, KBU_ECONN);
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_ECONN);
	CHECK_CONTAINS(e.msg, "BIOS data area");
	kbu_mem_close(m);
	/* ... or while the config table is read, the pointer found. */
	build_qboot(img, 2, &t);
	memcpy(img + 0x80000, img + 0x9fc10, 0x200);
	put32(img + 0x9fc00 + 4, 0x80000);
	img[0x9fc00 + 10] = 0;
	img[0x9fc00 + 10] = (uint8_t)-sum(img + 0x9fc00, 16);
	m = faulty_mem(img, MEMSZ, 0x80040, 0x80041, KBU_ECONN);
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_ECONN);
	CHECK_CONTAINS(e.msg, "MP config table header at 0x80000");
	kbu_mem_close(m);
	/* Memory that is not there at all: nothing was searched, and it says so. */
	m = faulty_mem(img, MEMSZ, 0, MEMSZ, KBU_EFAULT);
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_EFAULT);
	CHECK_CONTAINS(e.msg, "cannot search for the MP floating pointer");
	kbu_mem_close(m);
	free(img);
}

/* Firecracker's table (tests/fc_mptable.c follows its source; it cannot run
 * here): one vCPU, 288 bytes, 29 entries, entry_count 30. A walker that
 * trusts the count reads the byte after the table as an entry type. */
TEST(firecracker_count_reads_past_the_end)
{
	uint8_t *img = calloc(1, MEMSZ);
	size_t len = fc_mptable_build(img, 1, FC_COUNT_WITH_FP);
	CHECK_EQ_U64(len, 288);
	img[FC_MPTABLE_TABLE + len] = 0x44; /* what the devlog's guest held there */
	struct kbu_mem *m = fake_mem(img, MEMSZ, NULL);
	struct kbu_mptable mt;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK_EQ_U64(mt.fp.addr, 0x9fc00);
	CHECK_EQ_U64(mt.fp.sum, 0);
	CHECK_EQ_U64(mt.hdr.sum, 0); /* the firmware's checksum covers its count of 30 */
	CHECK_STR(mt.hdr.oem_id, "FC");
	CHECK_STR(mt.hdr.product_id, "000000000000");
	CHECK_EQ_U64(mt.hdr.entry_count, 30);
	CHECK_EQ_U64(mt.nbase, 29);
	CHECK(mt.walk_complete);
	CHECK_EQ_U64(kbu_mptable_ncpus(&mt), 1);
	CHECK_EQ_U64(mt.count_walk.outcome, KBU_MP_COUNT_UNKNOWN_TYPE);
	CHECK_EQ_U64(mt.count_walk.entries_read, 29);
	CHECK_EQ_U64(mt.count_walk.stop_offset, 288);
	CHECK_EQ_U64(mt.count_walk.stop_addr, 0x9fd30);
	CHECK_EQ_U64(mt.count_walk.stop_type, 68);
	const struct kbu_finding_rec *p = find_code(&mt, "mptable.entry_count_past_end");
	CHECK(p && p->sev == KBU_SEV_ERROR);
	CHECK_STR(p ? p->msg : NULL,
		  "entry_count 30 counts one entry more than the 288-byte table holds; a walker "
		  "that trusts it reads byte 0x44 (68) after the table (phys 0x9fd30): 'Unknown MP "
		  "Config Entry 68'");
	CHECK(find_code(&mt, "mptable.checksum_bad") == NULL);
	/* The I/O APIC id is ncpus + 1; ISA IRQ i goes to pin i. */
	int io = 0;
	for (size_t i = 0; i < mt.nentries; i++)
		if (mt.entries[i].type == KBU_MP_IOAPIC)
			io += mt.entries[i].u.ioapic.id == 2;
	CHECK_EQ_U64(io, 1);
	char *js = render(&mt, 1);
	CHECK_CONTAINS(js, "\"code\": \"mptable.entry_count_past_end\"");
	CHECK_CONTAINS(js, "\"fields\": {\"byte\": 68, \"address\": 654640, \"entry_count\": 30, "
			   "\"entries\": 29, \"table_length\": 288, \"entries_read\": 29}");
	CHECK_CONTAINS(js, "\"count_walk\": {\"outcome\": \"unknown_type\", \"entries_read\": 29");
	CHECK_CONTAINS(js, "\"stop_type\": 68");
	kbu_free(js);
	char *txt = render(&mt, 0);
	CHECK_CONTAINS(txt, "! error: entry_count 30 counts one entry more than the 288-byte table");
	kbu_free(txt);
	kbu_mptable_free(&mt);
	kbu_mem_close(m);

	/* The byte is read from memory, not assumed: a zero there is a processor
	 * entry, a phantom CPU the walker would start. */
	img[FC_MPTABLE_TABLE + len] = 0;
	m = fake_mem(img, MEMSZ, NULL);
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK_EQ_U64(mt.count_walk.outcome, KBU_MP_COUNT_PAST_END);
	CHECK_EQ_U64(mt.count_walk.entries_past_end, 1);
	CHECK_EQ_U64(mt.count_walk.cpus, 2);
	p = find_code(&mt, "mptable.entry_count_past_end");
	CHECK(p && strstr(p->msg, "reads 1 entry past the end of the table from whatever memory "
				  "follows (1 of them processor entries)"));
	kbu_mptable_free(&mt);
	kbu_mem_close(m);

	/* A count far past the table over zeroes that end with memory at 0xa0000:
	 * 36 phantom processors, then the walker runs off memory. */
	put16(img + FC_MPTABLE_TABLE + 34, 200);
	m = fake_mem(img, 0xa0000, NULL);
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK_EQ_U64(mt.count_walk.outcome, KBU_MP_COUNT_UNREADABLE);
	CHECK_EQ_U64(mt.count_walk.entries_past_end, 36);
	CHECK(has_problem(&mt, "entry_count 200 counts 171 entries more than the 288-byte table "
			       "holds; a walker that trusts it runs past guest memory at 0xa0000"));
	kbu_mptable_free(&mt);
	kbu_mem_close(m);

	/* A stub that fails while the walker reads past the table: its error, not a finding. */
	m = faulty_mem(img, MEMSZ, 0xa0000, 0xa1000, KBU_ECONN);
	CHECK(kbu_mptable_read(m, 1, 0x9fc00, &mt, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_ECONN);
	CHECK_CONTAINS(e.msg, "reading past the MP config table at 0xa0000");
	CHECK_CONTAINS(e.msg, "closed the connection");
	kbu_mem_close(m);
	free(img);
}

TEST(firecracker_older_count_zero_and_corrected_count)
{
	uint8_t *img = calloc(1, MEMSZ);
	size_t len = fc_mptable_build(img, 4, FC_COUNT_ZERO);
	CHECK_EQ_U64(len, 44 + 4 * 20 + 8 + 8 + 24 * 8 + 16);
	struct kbu_mem *m = fake_mem(img, MEMSZ, NULL);
	struct kbu_mptable mt;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK_EQ_U64(kbu_mptable_ncpus(&mt), 4);
	CHECK_EQ_U64(mt.count_walk.outcome, KBU_MP_COUNT_SHORT);
	CHECK_EQ_U64(mt.count_walk.entries_read, 0);
	const struct kbu_finding_rec *p = find_code(&mt, "mptable.entry_count_zero");
	CHECK(p && p->sev == KBU_SEV_WARN);
	CHECK(p && strstr(p->msg, "entry count is 0 but the table holds 32 entries"));
	kbu_mptable_free(&mt);
	kbu_mem_close(m);

	/* A later release's count of 33, corrected to 32 in place by a kernel: the
	 * checksum no longer adds up, and the note says why. */
	fc_mptable_build(img, 4, FC_COUNT_WITH_FP);
	put16(img + FC_MPTABLE_TABLE + 34, 32);
	m = fake_mem(img, MEMSZ, NULL);
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	CHECK_EQ_U64(mt.count_walk.outcome, KBU_MP_COUNT_SAME);
	p = find_code(&mt, "mptable.checksum_after_count_rewrite");
	CHECK(p && p->sev == KBU_SEV_NOTE);
	CHECK(p && strstr(p->msg, "would be right with entry count 33: the count (32)"));
	CHECK(p && strstr(p->msg, "Firecracker counts its floating pointer"));
	CHECK(find_code(&mt, "mptable.checksum_bad") == NULL);
	kbu_mptable_free(&mt);
	kbu_mem_close(m);

	/* A count below the entries: the walker sees the first ones only. */
	fc_mptable_build(img, 4, FC_COUNT_ZERO);
	put16(img + FC_MPTABLE_TABLE + 34, 2);
	m = fake_mem(img, MEMSZ, NULL);
	CHECK(kbu_mptable_read(m, 0, 0, &mt, &e) == 0);
	p = find_code(&mt, "mptable.entry_count_short");
	CHECK(p && strstr(p->msg, "reads only the first 2: 2 of the 4 processors, no I/O APIC"));
	/* The checksum covered 0: a note, not an error. */
	CHECK(find_code(&mt, "mptable.checksum_after_count_rewrite") != NULL);
	kbu_mptable_free(&mt);
	kbu_mem_close(m);
	free(img);
}

/* SeaBIOS's table (one processor whatever -smp says) on a VM with 4 vCPUs:
 * the command names the firmware and says why the count differs. */
TEST(command_names_the_firmware_and_compares_vcpus)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct tb t;
	tb_init(&t, img, 0xf4b70, 0xf4b80);
	memcpy(img + 0xf4b80 + 8, "BOCHSCPU", 8);
	memcpy(img + 0xf4b80 + 16, "0.1         ", 12);
	tb_proc(&t, 0, 1);
	tb_bus(&t, 0, "ISA   ");
	tb_ioapic(&t, 1);
	tb_finish(&t, 3);
	struct kbu_ctx *ctx = kbu_ctx_new();
	kbu_ctx_set_mem(ctx, faulty_mem_ncpus(img, MEMSZ, 0, 0, KBU_ECONN, 4));
	char *out = NULL;
	struct kbu_err e;
	kbu_err_clear(&e);
	CHECK_EQ_U64(run_cmd(ctx, 0, &out, &e, 1, "mptable"), 0);
	CHECK_CONTAINS(out, "Firmware\n  name:        SeaBIOS\n");
	CHECK_CONTAINS(out, "! the table lists 1 processor but the VM has 4 vCPUs: a kernel that "
			    "enumerates CPUs from the MP table starts only the boot CPU (SeaBIOS's MP "
			    "table lists one processor whatever -smp says");
	kbu_free(out);
	out = NULL;
	CHECK_EQ_U64(run_cmd(ctx, 1, &out, &e, 1, "mptable"), 0);
	CHECK_CONTAINS(out, "\"code\": \"mptable.fewer_cpus_than_vcpus\"");
	CHECK_CONTAINS(out, "\"fields\": {\"cpus\": 1, \"vcpus\": 4}");
	CHECK_CONTAINS(out, "\"firmware\": {\"name\": \"SeaBIOS\"");
	kbu_free(out);
	kbu_ctx_free(ctx);
	free(img);
}

TEST(command_runs_through_kbu_run)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct tb t;
	build_qboot(img, 2, &t);
	struct kbu_ctx *ctx = kbu_ctx_new();
	kbu_ctx_set_mem(ctx, fake_mem(img, MEMSZ, NULL));
	char *argv[] = {"mptable", "--at", "0x9fc00", NULL};
	char *out = NULL;
	struct kbu_err e;
	kbu_err_clear(&e);
	CHECK_EQ_U64(kbu_run(ctx, 3, argv, 0, &out, &e), 0);
	CHECK_CONTAINS(out, "given address");
	CHECK_CONTAINS(out, "BSP, usable");
	kbu_free(out);
	out = NULL;
	char *bad[] = {"mptable", "--at", "zz", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 3, bad, 0, &out, &e), 2);
	CHECK_CONTAINS(e.msg, "'zz' is not a physical address");
	kbu_free(out);
	kbu_ctx_free(ctx);
	free(img);
}

static char *write_map(const char *lines)
{
	char *path = strdup("/tmp/kbu_test_mptable_XXXXXX");
	int fd = mkstemp(path);
	if (fd >= 0) {
		ssize_t n = write(fd, lines, strlen(lines));
		(void)n;
		close(fd);
	}
	return path;
}

/* A kernel's own copy, like seeds/000: the bus entry's type byte set to 68,
 * entry_count set to the real count, checksum fixed. Reached through the
 * kernel's pointer (FreeBSD's mpct) and through the array itself. */
TEST(kernel_copy_through_table_option)
{
	enum { BIG = 4 * 1024 * 1024 };
	uint8_t *img = calloc(1, BIG);
	struct tb t;
	build_qboot(img, 2, &t);
	uint8_t *copy = img + 0x20f820;
	memcpy(copy, img + 0x9fc10, 236);
	copy[0x54] = 68;
	put16(copy + 34, 21);
	copy[7] = 0;
	copy[7] = (uint8_t)-sum(copy, 236);
	put64(img + 0x20f810, 0xffffffff8020f820ull); /* mpct = &mptable_copy (KERNBASE view) */
	char *map = write_map("ffffffff8020f810 B mpct\nffffffff8020f820 b mptable_copy\n");
	struct kbu_ctx *ctx = kbu_ctx_new();
	kbu_ctx_set_mem(ctx, fake_mem(img, BIG, NULL));
	struct kbu_err e;
	kbu_err_clear(&e);
	CHECK(kbu_ctx_load_symbols(ctx, map, &e) == 0);
	char *out = NULL;
	char *argv[] = {"mptable", "--table", "mpct", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 3, argv, 0, &out, &e), 0);
	CHECK_CONTAINS(out, "through mpct at 0xffffffff8020f810: it holds pointer 0xffffffff8020f820");
	CHECK_CONTAINS(out, "unknown entry type 68 (0x44) at offset 0x54 (phys 0x20f874)");
	CHECK_CONTAINS(out, "bytes 2-7 spell \"ISA   \"");
	CHECK_CONTAINS(out, "entry count is 21; 2 entries were walked before the walk stopped");
	CHECK(strstr(out, "MP Floating Pointer") == NULL);
	kbu_free(out);
	out = NULL;
	char *argv2[] = {"mptable", "--table", "mptable_copy", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 3, argv2, 1, &out, &e), 0);
	CHECK_CONTAINS(out, "the variable is the structure");
	CHECK_CONTAINS(out, "\"entries_walked\": 2");
	kbu_free(out);
	out = NULL;
	char *argv3[] = {"mptable", "--table", "0x20f820", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 3, argv3, 0, &out, &e), 0);
	CHECK_CONTAINS(out, "given address");
	kbu_free(out);
	out = NULL;
	char *argv4[] = {"mptable", "--table", "nosuch", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 3, argv4, 0, &out, &e), 2);
	CHECK_CONTAINS(e.msg, "no symbol 'nosuch'");
	kbu_free(out);
	out = NULL;
	char *argv5[] = {"mptable", "--table", "0x20f821", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 3, argv5, 0, &out, &e), 2);
	CHECK_CONTAINS(e.msg, "no MP config table at 0x20f821");
	kbu_free(out);
	kbu_ctx_free(ctx);
	unlink(map);
	free(map);
	free(img);
}

int main(void)
{
	RUN(qboot_zero_count_still_lists_cpus);
	RUN(guest_text_is_escaped);
	RUN(healthy_table_in_bios_rom_has_no_problems);
	RUN(search_order_ebda_first);
	RUN(unknown_entry_68_stops_cleanly_with_bytes);
	RUN(bad_checksums_show_expected_and_actual);
	RUN(count_patched_in_place_is_recognised);
	RUN(base_length_past_end_of_memory);
	RUN(truncated_table_entry_crosses_end);
	RUN(extended_entries);
	RUN(cross_checks_bsp_duplicates_ioapic_register);
	RUN(problem_flood_is_capped);
	RUN(not_found_and_bad_address);
	RUN(mutated_tables_never_crash);
	RUN(read_errors_reach_the_user_as_themselves);
	RUN(firecracker_count_reads_past_the_end);
	RUN(firecracker_older_count_zero_and_corrected_count);
	RUN(command_names_the_firmware_and_compares_vcpus);
	RUN(command_runs_through_kbu_run);
	RUN(kernel_copy_through_table_option);
	CHECK_DONE("test_mptable");
}
