/* Firmware identification: qboot, SeaBIOS and Firecracker tables built here
 * (Firecracker's after its source: fc_mptable.h), with and without ACPI and a
 * start info, and the decision from facts alone. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "faulty.h"
#include "fc_mptable.h"
#include "membuf.h"
#include "support.h"
#include "kbu/acpi.h"
#include "kbu/firmware.h"
#include "kbu/mem.h"
#include "kbu/mptable.h"
#include "kbu/pvh.h"
#include "kbu/report.h"

#define MEMSZ (1024 * 1024)

static uint8_t sum(const uint8_t *p, size_t n)
{
	unsigned s = 0;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	return (uint8_t)s;
}

/* A floating pointer at fp and a table at tab with OEM/product and ncpus processors. */
static void mp_table(uint8_t *img, uint32_t fp, uint32_t tab, const char *oem, const char *product,
		     int ncpus, uint16_t count)
{
	uint8_t *h = img + tab, *e = h + 44;
	memset(h, 0, 44);
	memcpy(h, "PCMP", 4);
	h[6] = 4;
	memset(h + 8, ' ', 20);
	memcpy(h + 8, oem, strlen(oem));
	memcpy(h + 16, product, strlen(product));
	put_le(h + 34, count, 2);
	put_le(h + 36, 0xfee00000, 4);
	for (int i = 0; i < ncpus; i++, e += 20) {
		memset(e, 0, 20);
		e[1] = (uint8_t)i;
		e[2] = 0x14;
		e[3] = (uint8_t)(1 | (i == 0 ? 2 : 0));
	}
	memcpy(e, "\x01\x00ISA   ", 8);
	e += 8;
	put_le(h + 4, (uint64_t)(e - h), 2);
	h[7] = (uint8_t)-sum(h, (size_t)(e - h));
	uint8_t *f = img + fp;
	memset(f, 0, 16);
	memcpy(f, "_MP_", 4);
	put_le(f + 4, tab, 4);
	f[8] = 1;
	f[9] = 4;
	f[10] = (uint8_t)-sum(f, 16);
}

static void rsdp_v0(uint8_t *img, uint32_t at, const char *oem)
{
	uint8_t *r = img + at;
	memset(r, 0, 20);
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, oem, strlen(oem));
	r[8] = (uint8_t)-sum(r, 20);
}

static int identify(const uint8_t *img, const struct kbu_fw_known *k, struct kbu_firmware *fw)
{
	struct kbu_mem *m = membuf_new(img, MEMSZ, NULL, 0, NULL);
	struct kbu_err e;
	int rc = kbu_firmware_identify(m, k, fw, &e);
	kbu_mem_close(m);
	return rc;
}

TEST(qboot_seabios_firecracker_by_their_mp_tables)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct kbu_firmware fw;
	mp_table(img, 0x9fc00, 0x9fc10, "QBOOT", "000000000000", 2, 0);
	CHECK(identify(img, NULL, &fw) == 0);
	CHECK_EQ_U64(fw.kind, KBU_FW_QBOOT);
	CHECK_STR(fw.name, "qboot");
	CHECK_STR(fw.how, "MP table OEM \"QBOOT\" at 0x9fc10");
	CHECK_EQ_U64(fw.seen.acpi, 0);
	CHECK_EQ_U64(fw.seen.mp_entry_count, 0);
	CHECK(fw.quirk && strstr(fw.quirk, "entry_count 0"));

	/* qboot with acpi=on: the same firmware, now with ACPI. */
	rsdp_v0(img, 0xf34d0, "BOCHS");
	CHECK(identify(img, NULL, &fw) == 0);
	CHECK_EQ_U64(fw.kind, KBU_FW_QBOOT);
	CHECK_EQ_U64(fw.seen.acpi, 1);
	CHECK_EQ_U64(fw.seen.rsdp, 0xf34d0);
	CHECK_STR(fw.seen.acpi_oem, "BOCHS");

	memset(img, 0, MEMSZ);
	mp_table(img, 0xf4b70, 0xf4b80, "BOCHSCPU", "0.1", 1, 2);
	rsdp_v0(img, 0xf4990, "BOCHS");
	CHECK(identify(img, NULL, &fw) == 0);
	CHECK_EQ_U64(fw.kind, KBU_FW_SEABIOS);
	CHECK_STR(fw.how, "MP table OEM \"BOCHSCPU\" product \"0.1\" at 0xf4b80 in the BIOS area");
	CHECK(fw.quirk && strstr(fw.quirk, "one processor whatever -smp says"));

	memset(img, 0, MEMSZ);
	fc_mptable_build(img, 1, FC_COUNT_WITH_FP);
	CHECK(identify(img, NULL, &fw) == 0);
	CHECK_EQ_U64(fw.kind, KBU_FW_FIRECRACKER);
	CHECK_STR(fw.how, "MP table OEM \"FC\" product \"000000000000\" at 0x9fc10");
	CHECK_EQ_U64(fw.seen.mp_entry_count, 30);
	CHECK_EQ_U64(fw.seen.acpi, 0);

	/* Given a walked table, its processor count is a fact too. */
	struct kbu_mem *m = membuf_new(img, MEMSZ, NULL, 0, NULL);
	struct kbu_mptable t;
	struct kbu_err e;
	CHECK(kbu_mptable_read(m, 0, 0, &t, &e) == 0);
	struct kbu_fw_known k = {.mp = &t};
	CHECK(kbu_firmware_identify(m, &k, &fw, &e) == 0);
	CHECK_EQ_U64(fw.seen.mp_cpus, 1);
	kbu_mptable_free(&t);
	kbu_mem_close(m);

	/* Something else: named as unknown, with what was seen. */
	memset(img, 0, MEMSZ);
	mp_table(img, 0xf5000, 0xf5010, "ACME", "BOARD", 4, 5);
	CHECK(identify(img, NULL, &fw) == 0);
	CHECK_EQ_U64(fw.kind, KBU_FW_UNKNOWN);
	CHECK_STR(fw.name, "unknown");
	CHECK_CONTAINS(fw.how, "MP table OEM \"ACME\" product \"BOARD\"");
	free(img);
}

TEST(without_an_mp_table_acpi_and_the_memory_map_decide)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct kbu_firmware fw;
	rsdp_v0(img, 0xe0000, "FIRECK");
	CHECK(identify(img, NULL, &fw) == 0);
	CHECK_EQ_U64(fw.kind, KBU_FW_FIRECRACKER);
	CHECK_CONTAINS(fw.how, "ACPI OEM \"FIRECK\"");
	rsdp_v0(img, 0xe0000, "BOCHS");
	CHECK(identify(img, NULL, &fw) == 0);
	CHECK_EQ_U64(fw.kind, KBU_FW_UNKNOWN);
	CHECK_CONTAINS(fw.how, "QEMU's tables, which qboot and SeaBIOS both pass on");

	/* qboot's memory map placeholder, given with a start info. */
	memset(img, 0, MEMSZ);
	struct kbu_pvh p;
	memset(&p, 0, sizeof(p));
	struct kbu_pvh_memmap_entry mm[3] = {{0, 0x9fc00, 1, 0}, {0x100000, 0x7f00000, 1, 0},
					     {0, 0, 0, 0}};
	p.addr = 0xf31e0;
	p.memmap = mm;
	p.nmemmap = 3;
	struct kbu_fw_known k = {.pvh = &p};
	CHECK(identify(img, &k, &fw) == 0);
	CHECK_EQ_U64(fw.kind, KBU_FW_QBOOT);
	CHECK_CONTAINS(fw.how, "zero-size entry, qboot's placeholder");
	CHECK_EQ_U64(fw.seen.e820_entries, 3);

	p.nmemmap = 2;
	CHECK(identify(img, &k, &fw) == 0);
	CHECK_EQ_U64(fw.kind, KBU_FW_UNKNOWN);
	CHECK_STR(fw.how, "neither an MP table nor an RSDP in memory");
	free(img);
}

/* A source that fails is an error; one that cannot be searched leaves the facts unknown. */
TEST(source_failures)
{
	uint8_t *img = calloc(1, MEMSZ);
	mp_table(img, 0x9fc00, 0x9fc10, "QBOOT", "000000000000", 2, 0);
	struct kbu_firmware fw;
	struct kbu_err e;
	struct kbu_mem *m = faulty_mem(img, MEMSZ, 0xe0000, 0xe1000, KBU_ECONN);
	CHECK(kbu_firmware_identify(m, NULL, &fw, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_ECONN);
	kbu_mem_close(m);
	m = faulty_mem(img, MEMSZ, 0, MEMSZ, KBU_EFAULT);
	CHECK(kbu_firmware_identify(m, NULL, &fw, &e) == 0);
	CHECK_EQ_U64(fw.seen.mp, -1);
	CHECK_EQ_U64(fw.seen.acpi, -1);
	CHECK_STR(fw.how, "the firmware's tables could not be searched");
	kbu_mem_close(m);
	free(img);
}

TEST(report_text_and_json)
{
	struct kbu_fw_facts f;
	memset(&f, 0, sizeof(f));
	f.mp = 1;
	f.mp_fp = 0xf4b70;
	f.mp_table = 0xf4b80;
	strcpy(f.mp_oem, "BOCHSCPU");
	strcpy(f.mp_product, "0.1");
	f.mp_entry_count = 16;
	f.mp_cpus = 1;
	f.acpi = 1;
	f.rsdp = 0xf4990;
	strcpy(f.acpi_oem, "BOCHS");
	struct kbu_firmware fw;
	kbu_firmware_decide(&f, &fw);
	struct kbu_report *r = kbu_report_new("x");
	kbu_firmware_report(&fw, kbu_report_root(r), 0);
	char *t = kbu_report_render(r, 0);
	CHECK_CONTAINS(t, "Firmware\n  name:        SeaBIOS\n");
	CHECK_CONTAINS(t, "ACPI:        yes: RSDP at 0xf4990, OEM \"BOCHS\"");
	kbu_free(t);
	t = kbu_report_render(r, 1);
	CHECK_CONTAINS(t, "\"name\": \"SeaBIOS\"");
	CHECK_CONTAINS(t, "\"acpi\": true, \"rsdp\": 1001872");
	CHECK_CONTAINS(t, "\"mp_cpus\": 1");
	kbu_free(t);
	kbu_report_free(r);
	/* JSON only: nothing in text. */
	r = kbu_report_new("x");
	kbu_firmware_report(&fw, kbu_report_root(r), 1);
	t = kbu_report_render(r, 0);
	CHECK_STR(t, "");
	kbu_free(t);
	kbu_report_free(r);
}

TEST(firmware_not_run_yet_at_reset)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct membuf *mb;
	struct kbu_mem *m = membuf_new(img, MEMSZ, NULL, 1, &mb);
	CHECK_EQ_U64(kbu_firmware_not_run_yet(m), 0); /* no registers yet */
	mb->have_regs = 1;
	mb->regs.have = KBU_HAVE_GPR | KBU_HAVE_SEG | KBU_HAVE_SEGBASE | KBU_HAVE_CR;
	mb->regs.bits = 32;
	mb->regs.cs = 0xf000;
	mb->regs.cs_base = 0xffff0000;
	mb->regs.rip = 0xfff0;
	mb->regs.cr0 = 0x60000010;
	CHECK_EQ_U64(kbu_firmware_not_run_yet(m), 1);
	mb->regs.rip = 0xfd668;
	mb->regs.cs = 0x08;
	mb->regs.cs_base = 0;
	mb->regs.cr0 = 0x11;
	CHECK_EQ_U64(kbu_firmware_not_run_yet(m), 0);
	kbu_mem_close(m);
	free(img);
}

int main(void)
{
	RUN(qboot_seabios_firecracker_by_their_mp_tables);
	RUN(without_an_mp_table_acpi_and_the_memory_map_decide);
	RUN(source_failures);
	RUN(report_text_and_json);
	RUN(firmware_not_run_yet_at_reset);
	CHECK_DONE("test_firmware");
}
