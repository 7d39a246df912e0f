/* ACPI: the RSDP search (start info, EBDA, BIOS area), RSDP v1/v2, RSDT/XSDT,
 * the MADT with every entry type, the FADT, and malformed tables of every
 * kind, all built here. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "faulty.h"
#include "membuf.h"
#include "support.h"
#include "kbu/acpi.h"
#include "kbu/command.h"
#include "kbu/mem.h"
#include "kbu/pvh.h"
#include "kbu/report.h"

#define MEMSZ (2u * 1024 * 1024)

/* Where the standard image puts things. */
#define RSDP_AT 0xf5a00u
#define XSDT_AT 0x100000u
#define RSDT_AT 0x100080u
#define FADT_AT 0x100100u
#define MADT_AT 0x100300u
#define SSDT_AT 0x100500u
#define FACS_AT 0x100700u
#define DSDT_AT 0x100800u

static uint8_t sum(const uint8_t *p, size_t n)
{
	unsigned s = 0;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	return (uint8_t)s;
}

/* An SDT header; the checksum is set by fix(). */
static void header(uint8_t *p, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(p, sig, 4);
	put_le(p + 4, len, 4);
	p[8] = rev;
	p[9] = 0;
	memcpy(p + 10, "KBUTST", 6);
	memcpy(p + 16, "KBUTABLE", 8);
	put_le(p + 24, 1, 4);
	memcpy(p + 28, "KBU ", 4);
	put_le(p + 32, 0x20240101, 4);
}

static void fix(uint8_t *p)
{
	uint32_t len = (uint32_t)(p[4] | p[5] << 8 | p[6] << 16 | (uint32_t)p[7] << 24);
	if (len < 10 || len > 0x10000) /* a mutated length: leave the checksum as it is */
		return;
	p[9] = 0;
	p[9] = (uint8_t)-sum(p, len);
}

static void rsdp(uint8_t *img, uint32_t at, uint8_t rev, uint32_t rsdt, uint64_t xsdt)
{
	uint8_t *r = img + at;
	memset(r, 0, 36);
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, "KBUTST", 6);
	r[15] = rev;
	put_le(r + 16, rsdt, 4);
	r[8] = (uint8_t)-sum(r, 20);
	if (rev >= 2) {
		put_le(r + 20, 36, 4);
		put_le(r + 24, xsdt, 8);
		r[32] = (uint8_t)-sum(r, 36);
	}
}

static uint32_t madt_std(uint8_t *m)
{
	uint8_t *e = m + 44;
	/* 0: local APIC uid 0 id 0 enabled; uid 1 id 1 enabled */
	memcpy(e, "\x00\x08\x00\x00\x01\x00\x00\x00", 8), e += 8;
	memcpy(e, "\x00\x08\x01\x01\x01\x00\x00\x00", 8), e += 8;
	/* 9: x2APIC id 300 enabled uid 2 */
	memcpy(e, "\x09\x10\x00\x00", 4);
	put_le(e + 4, 300, 4);
	put_le(e + 8, 1, 4);
	put_le(e + 12, 2, 4);
	e += 16;
	/* 1: I/O APIC id 2 at 0xfec00000 GSI 0 */
	memcpy(e, "\x01\x0c\x02\x00", 4);
	put_le(e + 4, 0xfec00000, 4);
	put_le(e + 8, 0, 4);
	e += 12;
	/* 2: ISA IRQ 0 -> GSI 2; IRQ 9 -> GSI 9 level active-high */
	memcpy(e, "\x02\x0a\x00\x00", 4);
	put_le(e + 4, 2, 4);
	put_le(e + 8, 0, 2);
	e += 10;
	memcpy(e, "\x02\x0a\x00\x09", 4);
	put_le(e + 4, 9, 4);
	put_le(e + 8, 0x000d, 2);
	e += 10;
	/* 3: NMI source GSI 5 */
	memcpy(e, "\x03\x08", 2);
	put_le(e + 2, 0x0005, 2);
	put_le(e + 4, 5, 4);
	e += 8;
	/* 4: local APIC NMI, all processors, LINT1 */
	memcpy(e, "\x04\x06\xff\x00\x00\x01", 6), e += 6;
	/* 10: local x2APIC NMI, all processors, LINT1 */
	memcpy(e, "\x0a\x0c\x00\x00", 4);
	put_le(e + 4, 0xffffffffu, 4);
	memcpy(e + 8, "\x01\x00\x00\x00", 4);
	e += 12;
	/* 5: local APIC address override */
	memcpy(e, "\x05\x0c\x00\x00", 4);
	put_le(e + 4, 0xfee00000ull, 8);
	e += 12;
	/* 0x7f: a type kbu does not decode, 6 bytes */
	memcpy(e, "\x7f\x06\xaa\xbb\xcc\xdd", 6), e += 6;
	uint32_t len = (uint32_t)(e - m);
	header(m, "APIC", len, 5);
	put_le(m + 36, 0xfee00000, 4);
	put_le(m + 40, 1, 4);
	fix(m);
	return len;
}

static void fadt_std(uint8_t *f, uint32_t len, uint8_t rev, uint32_t flags)
{
	memset(f, 0, len);
	header(f, "FACP", len, rev);
	put_le(f + 36, FACS_AT, 4);
	put_le(f + 40, DSDT_AT, 4);
	put_le(f + 46, 9, 2);          /* SCI_INT */
	put_le(f + 76, 0x608, 4);      /* PM_TMR_BLK */
	f[91] = 4;                     /* PM_TMR_LEN */
	if (len >= 111)
		put_le(f + 109, 0x0003, 2);  /* IAPC_BOOT_ARCH: LEGACY_DEVICES 8042 */
	if (len >= 116)
		put_le(f + 112, flags, 4);
	if (len >= 148) {
		put_le(f + 132, FACS_AT, 8);
		put_le(f + 140, DSDT_AT, 8);
	}
	if (len >= 220) {              /* X_PM_TMR_BLK: I/O 0x608, 32 bits */
		f[208] = 1;
		f[209] = 32;
		put_le(f + 212, 0x608, 8);
	}
	if (len >= 276)
		memcpy(f + 268, "KBUHVVND", 8);
	fix(f);
}

/* RSDP v2 in the BIOS area -> XSDT -> FACP, APIC, SSDT; the FADT -> DSDT, FACS. */
static uint8_t *std_image(void)
{
	uint8_t *img = calloc(1, MEMSZ);
	rsdp(img, RSDP_AT, 2, RSDT_AT, XSDT_AT);
	uint8_t *x = img + XSDT_AT;
	header(x, "XSDT", 36 + 3 * 8, 1);
	put_le(x + 36, FADT_AT, 8);
	put_le(x + 44, MADT_AT, 8);
	put_le(x + 52, SSDT_AT, 8);
	fix(x);
	uint8_t *r = img + RSDT_AT;
	header(r, "RSDT", 36 + 3 * 4, 1);
	put_le(r + 36, FADT_AT, 4);
	put_le(r + 40, MADT_AT, 4);
	put_le(r + 44, SSDT_AT, 4);
	fix(r);
	fadt_std(img + FADT_AT, 276, 6, (1u << 4) | (1u << 8));
	madt_std(img + MADT_AT);
	header(img + SSDT_AT, "SSDT", 40, 2);
	memcpy(img + SSDT_AT + 36, "\x10\x05\x5c\x00", 4);
	fix(img + SSDT_AT);
	uint8_t *facs = img + FACS_AT;
	memcpy(facs, "FACS", 4);
	put_le(facs + 4, 64, 4);
	facs[32] = 2;
	header(img + DSDT_AT, "DSDT", 48, 2);
	memcpy(img + DSDT_AT + 36, "\x10\x0a\x5f\x53\x42\x5f\x5b\x82\x04\x56\x52\x30", 12);
	fix(img + DSDT_AT);
	return img;
}

static struct kbu_mem *mem_of(const uint8_t *img, size_t size)
{
	return membuf_new(img, size, NULL, 0, NULL);
}

static const struct kbu_finding_rec *find_code(const struct kbu_acpi *a, const char *code)
{
	for (size_t i = 0; i < a->nfindings; i++)
		if (strcmp(a->findings[i].code, code) == 0)
			return &a->findings[i];
	return NULL;
}

static int nworse(const struct kbu_acpi *a, int sev)
{
	int n = 0;
	for (size_t i = 0; i < a->nfindings; i++)
		n += a->findings[i].sev >= sev;
	return n;
}

static char *render(const struct kbu_acpi *a, const char *sig, int json)
{
	struct kbu_report *r = kbu_report_new("acpi");
	struct kbu_err e;
	if (kbu_acpi_report(a, sig, kbu_report_root(r), &e) != 0) {
		kbu_report_free(r);
		return NULL;
	}
	char *s = kbu_report_render(r, json);
	kbu_report_free(r);
	return s;
}

static int read_img(const uint8_t *img, size_t size, const struct kbu_acpi_opts *o,
		    struct kbu_acpi *a, struct kbu_err *e)
{
	struct kbu_mem *m = mem_of(img, size);
	int rc = kbu_acpi_read(m, o, a, e);
	kbu_mem_close(m);
	return rc;
}

TEST(standard_tables_are_found_and_decoded)
{
	uint8_t *img = std_image();
	struct kbu_acpi a;
	struct kbu_err e;
	struct kbu_acpi_opts o = {.vcpus = 3};
	CHECK(read_img(img, MEMSZ, &o, &a, &e) == 0);
	CHECK(a.found);
	CHECK_EQ_U64(a.rsdp.addr, RSDP_AT);
	CHECK_STR(a.rsdp.how, "the BIOS area 0xe0000-0xfffff");
	CHECK_EQ_U64(a.rsdp.revision, 2);
	CHECK(a.rsdp.ext_checked);
	CHECK_EQ_U64(a.rsdp.sum, 0);
	CHECK_EQ_U64(a.rsdp.ext_sum, 0);
	CHECK_STR(a.root_sig, "XSDT");
	CHECK_EQ_U64(a.root_entries, 3);
	/* XSDT, RSDT (verified too), FACP, APIC, SSDT, DSDT, FACS */
	CHECK_EQ_U64(a.ntables, 7);
	for (size_t i = 0; i < a.ntables; i++) {
		CHECK_EQ_U64(a.tables[i].state, KBU_ACPI_T_OK);
		CHECK(!a.tables[i].has_checksum || (a.tables[i].sum_checked && a.tables[i].sum == 0));
	}
	CHECK_STR(kbu_acpi_table(&a, "FACS", 0)->via, "FADT X_FIRMWARE_CTRL");
	CHECK_STR(kbu_acpi_table(&a, "DSDT", 0)->via, "FADT X_DSDT");
	CHECK_STR(kbu_acpi_table(&a, "SSDT", 0)->via, "XSDT[2]");
	CHECK_STR(kbu_acpi_table(&a, "APIC", 0)->oem_table_id, "KBUTABLE");
	/* Only the type kbu does not decode is mentioned, as a note. */
	CHECK_EQ_U64(nworse(&a, KBU_SEV_WARN), 0);
	CHECK(find_code(&a, "acpi.madt_entry_unknown") != NULL);

	const struct kbu_acpi_madt *md = &a.madt;
	CHECK(md->present && md->walk_complete);
	CHECK_EQ_U64(md->nentries, 11);
	CHECK_EQ_U64(md->ncpus, 3);
	CHECK_EQ_U64(md->ncpus_enabled, 3);
	CHECK_EQ_U64(md->nioapics, 1);
	CHECK_EQ_U64(md->lapic_addr_eff, 0xfee00000);
	CHECK_EQ_U64(md->entries[2].type, KBU_MADT_X2APIC);
	CHECK_EQ_U64(md->entries[2].u.x2apic.x2apic_id, 300);
	CHECK_EQ_U64(md->entries[3].u.ioapic.addr, 0xfec00000);
	CHECK_EQ_U64(md->entries[4].u.iso.gsi, 2);
	CHECK_EQ_U64(md->entries[5].u.iso.flags, 0x000d);
	CHECK_EQ_U64(md->entries[6].u.nmi.gsi, 5);
	CHECK_EQ_U64(md->entries[7].u.lapic_nmi.lint, 1);
	CHECK_EQ_U64(md->entries[8].u.x2apic_nmi.uid, 0xffffffffu);
	CHECK_EQ_U64(md->entries[9].u.lapic_addr.addr, 0xfee00000);
	CHECK(!md->entries[10].decoded);
	CHECK_EQ_U64(md->entries[10].type, 0x7f);
	CHECK_EQ_U64(md->entries[10].len, 6);

	const struct kbu_acpi_fadt *f = &a.fadt;
	CHECK(f->present);
	CHECK_EQ_U64(f->revision, 6);
	CHECK_EQ_U64(f->dsdt_used, DSDT_AT);
	CHECK_EQ_U64(f->pm_tmr_blk, 0x608);
	CHECK_EQ_U64(f->pm_tmr_len, 4);
	CHECK_EQ_U64(f->x_pm_tmr_blk.addr, 0x608);
	CHECK_EQ_U64(f->iapc_boot_arch, 3);
	CHECK_STR(f->hypervisor_id, "KBUHVVND");
	CHECK(!(f->flags & KBU_FADT_HW_REDUCED_ACPI));

	char *txt = render(&a, NULL, 0);
	CHECK_CONTAINS(txt, "RSDP\n  physical address:     0x000f5a00\n");
	CHECK_CONTAINS(txt, "XSDT  0x00100000");
	CHECK_CONTAINS(txt, "Processor Local x2APICs");
	CHECK_CONTAINS(txt, "Interrupt Source Overrides");
	CHECK_CONTAINS(txt, "active-hi  level");
	CHECK_CONTAINS(txt, "NMI Sources");
	CHECK_CONTAINS(txt, "Local x2APIC NMIs");
	CHECK_CONTAINS(txt, "Local APIC Address Overrides");
	CHECK_CONTAINS(txt, "Other entries (not decoded)");
	CHECK_CONTAINS(txt, "flag names:           PWR_BUTTON TMR_VAL_EXT");
	CHECK_CONTAINS(txt, "boot arch flags:      LEGACY_DEVICES 8042");
	CHECK_CONTAINS(txt, "X_PM_TMR_BLK:         I/O 0x608 (32 bits)");
	CHECK(strstr(txt, "! ") == NULL);
	kbu_free(txt);
	char *js = render(&a, NULL, 1);
	CHECK_CONTAINS(js, "\"checksum_ok\": true");
	CHECK_CONTAINS(js, "\"x2apic_id\": 300");
	CHECK_CONTAINS(js, "\"hw_reduced\": false");
	CHECK_CONTAINS(js, "\"signatures\": [\"XSDT\", \"RSDT\", \"FACP\", \"APIC\", \"SSDT\", "
			   "\"DSDT\", \"FACS\"]");
	kbu_free(js);
	/* One table by signature; a signature that is not there is an error. */
	txt = render(&a, "SSDT", 0);
	CHECK_CONTAINS(txt, "reached through:  XSDT[2]");
	CHECK_CONTAINS(txt, "0000  53 53 44 54 28 00 00 00");
	kbu_free(txt);
	txt = render(&a, "XSDT", 0);
	CHECK_CONTAINS(txt, "  0  0x00100100  FACP");
	kbu_free(txt);
	struct kbu_report *r = kbu_report_new("acpi");
	CHECK(kbu_acpi_report(&a, "HPET", kbu_report_root(r), &e) != 0);
	CHECK_EQ_U64(e.code, KBU_ENOTFOUND);
	CHECK_CONTAINS(e.msg, "no HPET table: the firmware left XSDT RSDT FACP APIC SSDT DSDT FACS");
	kbu_report_free(r);
	kbu_acpi_free(&a);
	free(img);
}

/* ACPI 1.0: a 20-byte RSDP in the EBDA, an RSDT of 4-byte entries, a 116-byte FADT. */
TEST(rsdp_v1_in_the_ebda_and_rsdt)
{
	uint8_t *img = std_image();
	memset(img + RSDP_AT, 0, 36);
	put_le(img + 0x40e, 0x9fc0, 2);          /* EBDA at 0x9fc00 */
	rsdp(img, 0x9fc40, 0, RSDT_AT, 0);
	fadt_std(img + FADT_AT, 116, 1, 0);
	struct kbu_acpi a;
	struct kbu_err e;
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	CHECK(a.found);
	CHECK_EQ_U64(a.rsdp.addr, 0x9fc40);
	CHECK_STR(a.rsdp.how, "the EBDA's first KiB");
	CHECK_EQ_U64(a.rsdp.revision, 0);
	CHECK_STR(a.root_sig, "RSDT");
	CHECK_EQ_U64(a.root_entries, 3);
	CHECK(a.fadt.present);
	CHECK(!a.fadt.has_x_dsdt);
	CHECK_EQ_U64(a.fadt.dsdt_used, DSDT_AT);
	CHECK(kbu_acpi_table(&a, "FACS", 0) != NULL);
	CHECK_STR(kbu_acpi_table(&a, "FACS", 0)->via, "FADT FIRMWARE_CTRL");
	CHECK_EQ_U64(nworse(&a, KBU_SEV_WARN), 0);
	char *txt = render(&a, NULL, 1);
	CHECK_CONTAINS(txt, "\"revision\": 0");
	CHECK_CONTAINS(txt, "\"x_dsdt\": null");
	kbu_free(txt);
	kbu_acpi_free(&a);
	free(img);
}

/* The start info's rsdp_paddr comes first; a wrong one is flagged and the
 * standard places are searched; a zero one with an RSDP elsewhere is a note. */
TEST(rsdp_through_the_start_info)
{
	uint8_t *img = std_image();
	rsdp(img, 0x6100, 2, 0, XSDT_AT);        /* a second RSDP, only the start info knows */
	struct kbu_pvh p;
	memset(&p, 0, sizeof(p));
	p.addr = 0x6000;
	snprintf(p.how, sizeof(p.how), "found by scanning low memory");
	p.rsdp_paddr = 0x6100;
	struct kbu_acpi_opts o = {.pvh = &p};
	struct kbu_acpi a;
	struct kbu_err e;
	CHECK(read_img(img, MEMSZ, &o, &a, &e) == 0);
	CHECK_EQ_U64(a.rsdp.addr, 0x6100);
	CHECK_CONTAINS(a.rsdp.how, "the PVH start info's rsdp_paddr (start info at 0x6000, found by "
				   "scanning low memory)");
	CHECK_EQ_U64(nworse(&a, KBU_SEV_WARN), 0);
	kbu_acpi_free(&a);

	p.rsdp_paddr = 0x6200;                   /* no RSDP there */
	CHECK(read_img(img, MEMSZ, &o, &a, &e) == 0);
	CHECK_EQ_U64(a.rsdp.addr, RSDP_AT);
	const struct kbu_finding_rec *f = find_code(&a, "acpi.start_info_rsdp_bad");
	CHECK(f && f->sev == KBU_SEV_ERROR);
	CHECK(f && strstr(f->msg, "rsdp_paddr 0x6200 holds no RSDP"));
	kbu_acpi_free(&a);

	p.rsdp_paddr = 0x40000000;               /* outside memory */
	CHECK(read_img(img, MEMSZ, &o, &a, &e) == 0);
	f = find_code(&a, "acpi.start_info_rsdp_bad");
	CHECK(f && strstr(f->msg, "rsdp_paddr 0x40000000 is not in guest memory"));
	kbu_acpi_free(&a);

	p.rsdp_paddr = 0;
	CHECK(read_img(img, MEMSZ, &o, &a, &e) == 0);
	f = find_code(&a, "acpi.start_info_rsdp_zero");
	CHECK(f && f->sev == KBU_SEV_NOTE);
	kbu_acpi_free(&a);

	/* --rsdp: that address or an error. */
	struct kbu_acpi_opts given = {.have_rsdp = 1, .rsdp_addr = 0x6100};
	CHECK(read_img(img, MEMSZ, &given, &a, &e) == 0);
	CHECK_STR(a.rsdp.how, "given address");
	kbu_acpi_free(&a);
	given.rsdp_addr = 0x6110;
	CHECK(read_img(img, MEMSZ, &given, &a, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_EFORMAT);
	CHECK_CONTAINS(e.msg, "no RSDP at 0x6110");
	given.rsdp_addr = 0x7fff0000;
	CHECK(read_img(img, MEMSZ, &given, &a, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_EFAULT);
	free(img);
}

TEST(bad_checksums_name_the_right_byte)
{
	uint8_t *img = std_image();
	uint8_t good = img[RSDP_AT + 8];
	img[RSDP_AT + 8] ^= 0x21;                /* v1 checksum */
	img[RSDP_AT + 32] += 2;                  /* extended checksum */
	img[FADT_AT + 9] += 5;                   /* FADT checksum */
	img[MADT_AT + 50] ^= 1;                  /* a MADT byte */
	struct kbu_acpi a;
	struct kbu_err e;
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	/* The only RSDP, though bad, is used and flagged. */
	CHECK(a.found);
	const struct kbu_finding_rec *f = find_code(&a, "acpi.rsdp_checksum_bad");
	char want[64];
	snprintf(want, sizeof(want), "a correct checksum byte would be 0x%02x", good);
	CHECK(f && f->sev == KBU_SEV_ERROR && strstr(f->msg, want));
	f = find_code(&a, "acpi.rsdp_ext_checksum_bad");
	CHECK(f && strstr(f->msg, "RSDP extended checksum bad: byte is"));
	int nbad = 0;
	for (size_t i = 0; i < a.nfindings; i++)
		if (strcmp(a.findings[i].code, "acpi.table_checksum_bad") == 0) {
			nbad++;
			CHECK(strstr(a.findings[i].msg, "FACP at 0x100100") ||
			      strstr(a.findings[i].msg, "APIC at 0x100300"));
		}
	CHECK_EQ_U64(nbad, 2);
	/* The tables are still decoded: a bad checksum is a finding, not a stop. */
	CHECK(a.fadt.present && a.madt.present);
	char *js = render(&a, NULL, 1);
	CHECK_CONTAINS(js, "\"code\": \"acpi.table_checksum_bad\"");
	CHECK_CONTAINS(js, "\"checksum_ok\": false");
	kbu_free(js);
	kbu_acpi_free(&a);
	free(img);
}

TEST(lengths_past_the_end_and_tables_pointing_nowhere)
{
	uint8_t *img = std_image();
	struct kbu_acpi a;
	struct kbu_err e;
	/* The SSDT claims 64 KiB but memory ends 0x100 bytes after its start. */
	put_le(img + SSDT_AT + 4, 0x10000, 4);
	CHECK(read_img(img, SSDT_AT + 0x100, NULL, &a, &e) == 0);
	const struct kbu_finding_rec *f = find_code(&a, "acpi.table_truncated");
	CHECK(f && strstr(f->msg, "SSDT at 0x100500: length 0x10000 runs past guest memory"));
	/* the DSDT and FACS lie beyond the end too: pointing nowhere */
	CHECK(find_code(&a, "acpi.table_unreadable") != NULL);
	kbu_acpi_free(&a);
	free(img);

	/* Lengths shorter than a header, and absurd ones. */
	img = std_image();
	put_le(img + SSDT_AT + 4, 20, 4);
	put_le(img + DSDT_AT + 4, 0x7fffffff, 4);
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	int shortl = 0, longl = 0;
	for (size_t i = 0; i < a.nfindings; i++)
		if (strcmp(a.findings[i].code, "acpi.table_length_bad") == 0) {
			shortl += strstr(a.findings[i].msg, "length 20 is shorter than its 36-byte") != NULL;
			longl += strstr(a.findings[i].msg, "length 2147483647 is over") != NULL;
		}
	CHECK(shortl == 1 && longl == 1);
	kbu_acpi_free(&a);
	free(img);

	/* The XSDT points nowhere: the RSDT is used instead, and said so. */
	img = std_image();
	put_le(img + RSDP_AT + 24, 0x80000000ull, 8);
	img[RSDP_AT + 32] = 0;
	img[RSDP_AT + 32] = (uint8_t)-sum(img + RSDP_AT, 36);
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	f = find_code(&a, "acpi.table_unreadable");
	CHECK(f && strstr(f->msg, "RSDP XSDT address points at 0x80000000, which is not in guest "
				  "memory: no XSDT"));
	CHECK(find_code(&a, "acpi.xsdt_unusable") != NULL);
	CHECK_STR(a.root_sig, "RSDT");
	CHECK(a.madt.present);
	kbu_acpi_free(&a);

	/* ... and the RSDT at garbage: no root at all, nothing else read. */
	memset(img + RSDT_AT, 0x5a, 8);
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	f = find_code(&a, "acpi.table_signature_bad");
	CHECK(f && strstr(f->msg, "holds no RSDT table: its first bytes are 5a 5a 5a 5a"));
	CHECK(a.root_sig == NULL);
	CHECK(!a.madt.present);
	kbu_acpi_free(&a);
	free(img);

	/* XSDT entries: 0, into nothing, and a length that is not a whole number of them. */
	img = std_image();
	uint8_t *x = img + XSDT_AT;
	put_le(x + 4, 36 + 3 * 8 + 4, 4);
	put_le(x + 52, 0, 8);
	put_le(x + 44, 0x90000000ull, 8);
	fix(x);
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	CHECK(find_code(&a, "acpi.root_length_odd") != NULL);
	f = find_code(&a, "acpi.root_entry_null");
	CHECK(f && strstr(f->msg, "XSDT[2] is 0"));
	f = find_code(&a, "acpi.table_unreadable");
	CHECK(f && strstr(f->msg, "XSDT[1] points at 0x90000000"));
	CHECK(find_code(&a, "acpi.no_madt") != NULL);
	kbu_acpi_free(&a);
	free(img);

	/* RSDP with a bad v2 length, and an RSDP pointing at nothing at all. */
	img = std_image();
	put_le(img + RSDP_AT + 20, 8, 4);
	img[RSDP_AT + 32] = 0;
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	CHECK(find_code(&a, "acpi.rsdp_length_bad") != NULL);
	kbu_acpi_free(&a);
	rsdp(img, RSDP_AT, 2, 0, 0);
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	CHECK(find_code(&a, "acpi.rsdp_no_root") != NULL);
	CHECK(find_code(&a, "acpi.rsdp_truncated") == NULL);
	CHECK_EQ_U64(a.ntables, 0);
	kbu_acpi_free(&a);
	/* A revision 2 RSDP whose 36-byte form runs past the end of memory. */
	rsdp(img, 0xfffe0, 2, RSDT_AT, XSDT_AT);
	memset(img + RSDP_AT, 0, 36);
	CHECK(read_img(img, 0x100000, NULL, &a, &e) == 0);
	CHECK_EQ_U64(a.rsdp.addr, 0xfffe0);
	CHECK(find_code(&a, "acpi.rsdp_truncated") != NULL);
	kbu_acpi_free(&a);
	free(img);
}

/* MADT entries of length 0, truncated ones, short ones; duplicate ids; no CPU. */
TEST(malformed_madt_entries)
{
	uint8_t *img = std_image();
	uint8_t *m = img + MADT_AT;
	struct kbu_acpi a;
	struct kbu_err e;
	m[44 + 8 + 1] = 0;                       /* the second local APIC: length 0 */
	fix(m);
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	const struct kbu_finding_rec *f = find_code(&a, "acpi.madt_entry_length_bad");
	CHECK(f && strstr(f->msg, "entry type 0 at offset 0x34 has length 0"));
	CHECK_EQ_U64(a.madt.nentries, 1);
	CHECK(!a.madt.walk_complete);
	kbu_acpi_free(&a);

	madt_std(m);
	m[44 + 8 + 1] = 0xf0;                    /* runs past the table */
	fix(m);
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	f = find_code(&a, "acpi.madt_entry_truncated");
	CHECK(f && strstr(f->msg, "(240 bytes) crosses the end of the MADT"));
	kbu_acpi_free(&a);

	madt_std(m);
	m[44 + 8 + 1] = 6;                       /* a local APIC of 6 bytes: short for its type */
	fix(m);
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	f = find_code(&a, "acpi.madt_entry_short");
	CHECK(f && strstr(f->msg, "processor local APIC entry at offset 0x34 has length 6, expected 8"));
	kbu_acpi_free(&a);

	madt_std(m);
	m[44 + 8 + 3] = 0;                       /* both local APICs id 0 */
	m[44 + 16 + 8] = 0;                      /* the x2APIC disabled */
	fix(m);
	struct kbu_acpi_opts o = {.vcpus = 4};
	CHECK(read_img(img, MEMSZ, &o, &a, &e) == 0);
	CHECK(find_code(&a, "acpi.madt_duplicate_apic_id") != NULL);
	f = find_code(&a, "acpi.madt_cpus_vs_vcpus");
	CHECK(f && strstr(f->msg, "the MADT lists 2 usable processors but the VM has 4 vCPUs"));
	kbu_acpi_free(&a);

	madt_std(m);
	m[44 + 4] = m[44 + 8 + 4] = m[44 + 16 + 8] = 0; /* nothing enabled */
	put_le(m + 4, 44 + 8, 4);                /* and the table cut after one entry */
	fix(m);
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	CHECK(find_code(&a, "acpi.madt_no_processor") != NULL);
	kbu_acpi_free(&a);

	put_le(m + 4, 40, 4);                    /* shorter than the MADT's own header */
	fix(m);
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	CHECK(find_code(&a, "acpi.madt_too_short") != NULL);
	kbu_acpi_free(&a);
	free(img);
}

/* A hardware-reduced FADT (QEMU microvm's, Firecracker's): a note, not a warning. */
TEST(fadt_hw_reduced_and_its_checks)
{
	uint8_t *img = std_image();
	uint8_t *f = img + FADT_AT;
	fadt_std(f, 268, 5, KBU_FADT_HW_REDUCED_ACPI | KBU_FADT_RESET_REG_SUP);
	put_le(f + 76, 0, 4);
	f[91] = 0;
	memset(f + 208, 0, 12);
	put_le(f + 40, 0x100900, 4);             /* DSDT != X_DSDT */
	fix(f);
	struct kbu_acpi a;
	struct kbu_err e;
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	const struct kbu_finding_rec *n = find_code(&a, "acpi.fadt_hw_reduced");
	CHECK(n && n->sev == KBU_SEV_NOTE);
	CHECK(find_code(&a, "acpi.fadt_no_pm_timer") == NULL);
	n = find_code(&a, "acpi.fadt_dsdt_mismatch");
	CHECK(n && strstr(n->msg, "a kernel uses X_DSDT"));
	CHECK_EQ_U64(a.fadt.dsdt_used, DSDT_AT);
	kbu_acpi_free(&a);

	/* Not hardware-reduced and no PM timer; a revision 6 FADT of 244 bytes; no DSDT at all. */
	fadt_std(f, 244, 6, 0);
	put_le(f + 76, 0, 4);
	memset(f + 208, 0, 12);
	put_le(f + 40, 0, 4);
	put_le(f + 140, 0, 8);
	fix(f);
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	CHECK(find_code(&a, "acpi.fadt_no_pm_timer") != NULL);
	CHECK(find_code(&a, "acpi.fadt_short") != NULL);
	CHECK(find_code(&a, "acpi.fadt_no_dsdt") != NULL);
	CHECK(kbu_acpi_table(&a, "DSDT", 0) == NULL);
	kbu_acpi_free(&a);
	free(img);
}

/* No ACPI is an answer; a source that cannot be searched or that fails is an error. */
TEST(no_acpi_unsearchable_and_transport_faults)
{
	uint8_t *img = calloc(1, MEMSZ);
	struct kbu_acpi a;
	struct kbu_err e;
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	CHECK(!a.found);
	CHECK_STR(a.not_found, "no RSDP (\"RSD PTR \") in 0xe0000-0xfffff");
	char *t = render(&a, NULL, 0);
	CHECK(t != NULL && t[0] == 0); /* the command says "no ACPI"; the tables have nothing */
	kbu_free(t);
	kbu_acpi_free(&a);
	/* only the signature: not an RSDP */
	memcpy(img + 0xe0010, "RSD PTR ", 8);
	CHECK(read_img(img, MEMSZ, NULL, &a, &e) == 0);
	CHECK(a.found); /* the only candidate is used and its checksum flagged */
	CHECK(find_code(&a, "acpi.rsdp_checksum_bad") != NULL || find_code(&a, "acpi.rsdp_no_root"));
	kbu_acpi_free(&a);
	free(img);

	img = std_image();
	/* Nothing searchable: an error that says so, not "no RSDP". */
	struct kbu_mem *m = faulty_mem(img, MEMSZ, 0, MEMSZ, KBU_EFAULT);
	CHECK(kbu_acpi_read(m, NULL, &a, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_EFAULT);
	CHECK_CONTAINS(e.msg, "cannot search for the RSDP");
	kbu_mem_close(m);
	/* The stub dies during the search, during a table read, at the start info's pointer. */
	uint64_t at[][2] = {{0xf5000, 0xf6000}, {MADT_AT, MADT_AT + 1}, {0x400, 0x401}};
	const char *where[] = {"searching the BIOS area",
			       "reading the ACPI table at 0x100000 (RSDP XSDT address)",
			       "reading the EBDA segment"};
	for (int i = 0; i < 3; i++) {
		m = faulty_mem(img, MEMSZ, at[i][0], at[i][1], KBU_ECONN);
		CHECK(kbu_acpi_read(m, NULL, &a, &e) != 0);
		CHECK_EQ_U64(e.code, KBU_ECONN);
		CHECK_CONTAINS(e.msg, where[i]);
		CHECK_CONTAINS(e.msg, "closed the connection");
		CHECK(strstr(e.msg, "no RSDP") == NULL);
		kbu_mem_close(m);
	}
	struct kbu_pvh p;
	memset(&p, 0, sizeof(p));
	p.rsdp_paddr = 0x6100;
	struct kbu_acpi_opts o = {.pvh = &p};
	m = faulty_mem(img, MEMSZ, 0x6000, 0x7000, KBU_ECONN);
	CHECK(kbu_acpi_read(m, &o, &a, &e) != 0);
	CHECK_CONTAINS(e.msg, "(the start info's rsdp_paddr)");
	kbu_mem_close(m);
	free(img);
}

/* Whatever the bytes say, the walk ends and the report renders (ASan/UBSan watch). */
TEST(mutated_tables_never_crash)
{
	uint8_t *img = std_image();
	uint8_t *work = malloc(MEMSZ);
	uint32_t x = 0x2468ace1;
	int found = 0;
	for (int round = 0; round < 400; round++) {
		memcpy(work, img, MEMSZ);
		int nflip = 1 + round % 12;
		for (int k = 0; k < nflip; k++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			static const uint32_t base[] = {RSDP_AT, XSDT_AT, FADT_AT, MADT_AT, MADT_AT + 44,
							DSDT_AT};
			uint32_t b = base[(x >> 3) % 6];
			work[b + (x >> 11) % 0x90] = (uint8_t)x;
		}
		if (round % 3 == 0) { /* keep checksums right so the decoders go deep */
			fix(work + MADT_AT);
			fix(work + FADT_AT);
			fix(work + XSDT_AT);
		}
		struct kbu_acpi a;
		struct kbu_err e;
		if (read_img(work, MEMSZ, NULL, &a, &e) == 0) {
			found += a.found;
			char *t = render(&a, NULL, round & 1);
			CHECK(t != NULL || !a.found);
			kbu_free(t);
			kbu_free(render(&a, "APIC", 0));
			kbu_free(render(&a, "FACP", 1));
			kbu_acpi_free(&a);
		} else {
			CHECK(e.msg[0] != 0);
		}
	}
	CHECK(found > 200);
	free(work);
	free(img);
}

TEST(command_runs_through_kbu_run)
{
	uint8_t *img = std_image();
	struct kbu_ctx *ctx = kbu_ctx_new();
	kbu_ctx_set_mem(ctx, mem_of(img, MEMSZ));
	char *out = NULL;
	struct kbu_err e;
	kbu_err_clear(&e);
	CHECK_EQ_U64(run_cmd(ctx, 0, &out, &e, 1, "acpi"), 0);
	CHECK_CONTAINS(out, "Firmware\n  name:       unknown\n");
	CHECK_CONTAINS(out, "MADT (APIC)");
	CHECK_CONTAINS(out, "Devices (virtio-mmio)");
	kbu_free(out);
	out = NULL;
	CHECK_EQ_U64(run_cmd(ctx, 1, &out, &e, 2, "acpi", "madt"), 0);
	CHECK_CONTAINS(out, "\"present\": true");
	CHECK_CONTAINS(out, "\"local_x2apics\": [{\"uid\": 2, \"x2apic_id\": 300");
	kbu_free(out);
	out = NULL;
	CHECK_EQ_U64(run_cmd(ctx, 0, &out, &e, 2, "acpi", "HPET"), 2);
	CHECK_CONTAINS(e.msg, "no HPET table");
	kbu_free(out);
	out = NULL;
	CHECK_EQ_U64(run_cmd(ctx, 0, &out, &e, 2, "acpi", "TOOLONG"), 2);
	CHECK_CONTAINS(e.msg, "'TOOLONG' is not a table signature");
	kbu_free(out);
	out = NULL;
	CHECK_EQ_U64(run_cmd(ctx, 0, &out, &e, 3, "acpi", "--rsdp", "zz"), 2);
	CHECK_CONTAINS(e.msg, "--rsdp");
	kbu_free(out);
	out = NULL;
	CHECK_EQ_U64(run_cmd(ctx, 0, &out, &e, 3, "acpi", "APIC", "FACP"), 2);
	CHECK_CONTAINS(e.msg, "more than one signature");
	kbu_free(out);
	kbu_ctx_free(ctx);

	/* No ACPI: one line, exit 0, "present": false. */
	memset(img, 0, MEMSZ);
	ctx = kbu_ctx_new();
	kbu_ctx_set_mem(ctx, mem_of(img, MEMSZ));
	out = NULL;
	CHECK_EQ_U64(run_cmd(ctx, 0, &out, &e, 1, "acpi"), 0);
	CHECK(out && strchr(out, '\n') == out + strlen(out) - 1);
	CHECK_CONTAINS(out, "note: no ACPI: no RSDP (\"RSD PTR \") in 0xe0000-0xfffff");
	kbu_free(out);
	out = NULL;
	CHECK_EQ_U64(run_cmd(ctx, 1, &out, &e, 1, "acpi"), 0);
	CHECK_CONTAINS(out, "\"present\": false");
	CHECK_CONTAINS(out, "\"code\": \"acpi.absent\"");
	kbu_free(out);
	out = NULL;
	CHECK_EQ_U64(run_cmd(ctx, 0, &out, &e, 2, "acpi", "APIC"), 2);
	CHECK_CONTAINS(e.msg, "no APIC table: no ACPI");
	kbu_free(out);
	kbu_ctx_free(ctx);
	free(img);
}

int main(void)
{
	RUN(standard_tables_are_found_and_decoded);
	RUN(rsdp_v1_in_the_ebda_and_rsdt);
	RUN(rsdp_through_the_start_info);
	RUN(bad_checksums_name_the_right_byte);
	RUN(lengths_past_the_end_and_tables_pointing_nowhere);
	RUN(malformed_madt_entries);
	RUN(fadt_hw_reduced_and_its_checks);
	RUN(no_acpi_unsearchable_and_transport_faults);
	RUN(mutated_tables_never_crash);
	RUN(command_runs_through_kbu_run);
	CHECK_DONE("test_acpi");
}
