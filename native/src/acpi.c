/* kbu: the RSDP search, the XSDT/RSDT walk, MADT and FADT decoding, with every
 * checksum and length checked. */
#include "kbu/acpi.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/mem.h"
#include "kbu/pvh.h"
#include "kbu/util.h"
#include "readmem.h"

/* ---- findings ---- */

static struct kbu_finding_rec *finding(struct kbu_acpi *a, int sev, int section,
				       const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static struct kbu_finding_rec *finding(struct kbu_acpi *a, int sev, int section,
				       const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct kbu_finding_rec *f = kbu_finding_rec_add(&a->findings, &a->nfindings, &a->nsuppressed,
							KBU_ACPI_MAX_FINDINGS, sev, section, code,
							fmt, ap);
	va_end(ap);
	return f;
}

/* Fixed-width guest text: trailing spaces and NULs dropped, any other byte that
 * is not printable (an embedded NUL too) shown as '?'. */
static void copy_str(char *dst, const uint8_t *src, size_t n)
{
	size_t end = n;
	while (end > 0 && (src[end - 1] == ' ' || src[end - 1] == 0))
		end--;
	for (size_t i = 0; i < end; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '?';
	dst[end] = 0;
}

/* A table signature as ACPI writes them: 4 upper-case letters, digits or '_'. */
static int plausible_sig(const uint8_t *s)
{
	for (int i = 0; i < 4; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

static void sig_text(char out[5], const uint8_t *s)
{
	for (int i = 0; i < 4; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
	out[4] = 0;
}

/* ---- RSDP ---- */

enum { RSDP_OK = 0, RSDP_ABSENT = 1, RSDP_FAILED = -1, RSDP_NOSIG = 2 };

/* Reads and decodes the RSDP at addr: both checksums computed when its bytes are there. */
static int read_rsdp_at(struct kbu_mem *m, uint64_t addr, struct kbu_acpi_rsdp *r,
			struct kbu_err *err)
{
	uint8_t b[KBU_ACPI_RSDP_V2_SIZE];
	memset(r, 0, sizeof(*r));
	int rr = kbu_try_read(m, addr, b, KBU_ACPI_RSDP_V1_SIZE, err);
	if (rr != KBU_READ_OK)
		return rr == KBU_READ_FAILED ? RSDP_FAILED : RSDP_ABSENT;
	if (memcmp(b, "RSD PTR ", 8) != 0)
		return RSDP_NOSIG;
	r->addr = addr;
	r->checksum = b[8];
	copy_str(r->oem_id, b + 9, 6);
	r->revision = b[15];
	r->rsdt = kbu_le32(b + 16);
	r->sum = kbu_sum8(b, KBU_ACPI_RSDP_V1_SIZE);
	if (r->revision < 2)
		return RSDP_OK;
	rr = kbu_try_read(m, addr, b, KBU_ACPI_RSDP_V2_SIZE, err);
	if (rr == KBU_READ_FAILED)
		return RSDP_FAILED;
	if (rr == KBU_READ_ABSENT) {
		r->v2_missing = 1; /* reported by check_rsdp */
		return RSDP_OK;
	}
	r->length = kbu_le32(b + 20);
	r->xsdt = kbu_le64(b + 24);
	r->ext_checksum = b[32];
	if (r->length < KBU_ACPI_RSDP_V2_SIZE || r->length > 4096)
		return RSDP_OK;
	uint8_t *all = malloc(r->length);
	if (!all) {
		kbu_err_set(err, KBU_ENOMEM, "out of memory for the RSDP");
		return RSDP_FAILED;
	}
	rr = kbu_try_read(m, addr, all, r->length, err);
	if (rr == KBU_READ_OK) {
		r->ext_sum = kbu_sum8(all, r->length);
		r->ext_checked = 1;
	}
	free(all);
	return rr == KBU_READ_FAILED ? RSDP_FAILED : RSDP_OK;
}

static int rsdp_valid(const struct kbu_acpi_rsdp *r)
{
	return r->sum == 0 && (r->revision < 2 || (r->ext_checked && r->ext_sum == 0));
}

/* Searches [start, start+len) on 16-byte boundaries: 1 valid found, 0 not, -1 failed. */
static int search_rsdp(struct kbu_mem *m, uint64_t start, size_t len, const char *where,
		       struct kbu_acpi_rsdp *r, struct kbu_acpi_rsdp *bad, int *have_bad,
		       size_t *searched, struct kbu_err *err)
{
	uint8_t *buf = malloc(len);
	if (!buf)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory searching %s", where);
	size_t n;
	if (kbu_read_prefix(m, start, buf, len, &n, err) == KBU_READ_FAILED) {
		free(buf);
		return kbu_err_prefix(err, "searching %s (0x%" PRIx64 "-0x%" PRIx64 ") for the RSDP",
				      where, start, start + len - 1);
	}
	*searched += n;
	int ret = 0;
	for (size_t off = 0; off + 8 <= n && !ret; off += 16) {
		if (memcmp(buf + off, "RSD PTR ", 8) != 0)
			continue;
		struct kbu_acpi_rsdp c;
		int rr = read_rsdp_at(m, start + off, &c, err);
		if (rr == RSDP_FAILED) {
			ret = kbu_err_prefix(err, "reading the RSDP at 0x%" PRIx64, start + off);
			break;
		}
		if (rr != RSDP_OK)
			continue;
		snprintf(c.how, sizeof(c.how), "%s", where);
		if (rsdp_valid(&c)) {
			*r = c;
			ret = 1;
		} else if (!*have_bad) {
			*bad = c;
			*have_bad = 1;
		}
	}
	free(buf);
	return ret;
}

int kbu_acpi_find_rsdp(struct kbu_mem *m, struct kbu_acpi_rsdp *r, char *where_looked,
		       size_t wlen, struct kbu_err *err)
{
	struct kbu_acpi_rsdp bad;
	int have_bad = 0;
	size_t searched = 0;
	uint8_t seg[2];
	uint16_t ebda_seg = 0;
	int rr = kbu_try_read(m, 0x40e, seg, 2, err);
	if (rr == KBU_READ_FAILED)
		return kbu_err_prefix(err, "reading the EBDA segment at 0x40e");
	if (rr == KBU_READ_OK)
		ebda_seg = kbu_le16(seg);
	uint64_t ebda = (uint64_t)ebda_seg << 4;
	int found = 0;
	if (ebda >= 0x400 && ebda < 0xa0000)
		found = search_rsdp(m, ebda, 1024, "the EBDA's first KiB", r, &bad, &have_bad,
				    &searched, err);
	if (found == 0)
		found = search_rsdp(m, 0xe0000, 0x20000, "the BIOS area 0xe0000-0xfffff", r, &bad,
				    &have_bad, &searched, err);
	if (found < 0)
		return -1;
	if (found)
		return 1;
	if (have_bad) {
		*r = bad;
		return 1;
	}
	if (searched == 0)
		return kbu_err_set(err, KBU_EFAULT,
				   "cannot search for the RSDP: neither the EBDA (segment 0x%04x) nor "
				   "0xe0000-0xfffff is in this %s source's memory",
				   ebda_seg, kbu_mem_kind(m));
	if (where_looked)
		snprintf(where_looked, wlen,
			 "no RSDP (\"RSD PTR \") in %s0xe0000-0xfffff",
			 ebda >= 0x400 && ebda < 0xa0000 ? "the EBDA's first KiB or " : "");
	return 0;
}

static void check_rsdp(struct kbu_acpi *a)
{
	const struct kbu_acpi_rsdp *r = &a->rsdp;
	struct kbu_finding_rec *f;
	if (r->sum != 0) {
		f = finding(a, KBU_SEV_ERROR, KBU_ACPI_SEC_RSDP, "acpi.rsdp_checksum_bad",
			    "RSDP checksum bad: byte is 0x%02x, the first 20 bytes sum to 0x%02x "
			    "(expected 0x00); a correct checksum byte would be 0x%02x",
			    r->checksum, r->sum, (uint8_t)(r->checksum - r->sum));
		kbu_finding_rec_field(f, "checksum", r->checksum);
		kbu_finding_rec_field(f, "sum", r->sum);
	}
	if (r->revision >= 2) {
		if (r->v2_missing)
			finding(a, KBU_SEV_ERROR, KBU_ACPI_SEC_RSDP, "acpi.rsdp_truncated",
				"RSDP revision %u at 0x%" PRIx64 ": its 36-byte form runs past guest "
				"memory; XSDT address and extended checksum not read",
				r->revision, r->addr);
		else if (r->length < KBU_ACPI_RSDP_V2_SIZE || r->length > 4096) {
			f = finding(a, KBU_SEV_ERROR, KBU_ACPI_SEC_RSDP, "acpi.rsdp_length_bad",
				    "RSDP length %u is not between 36 and 4096: extended checksum "
				    "not verified",
				    r->length);
			kbu_finding_rec_field(f, "length", r->length);
		} else if (!r->ext_checked)
			finding(a, KBU_SEV_ERROR, KBU_ACPI_SEC_RSDP, "acpi.rsdp_truncated",
				"RSDP length %u runs past guest memory: extended checksum not "
				"verified",
				r->length);
		else if (r->ext_sum != 0) {
			f = finding(a, KBU_SEV_ERROR, KBU_ACPI_SEC_RSDP, "acpi.rsdp_ext_checksum_bad",
				    "RSDP extended checksum bad: byte is 0x%02x, the %u bytes sum to "
				    "0x%02x (expected 0x00); a correct byte would be 0x%02x",
				    r->ext_checksum, r->length, r->ext_sum,
				    (uint8_t)(r->ext_checksum - r->ext_sum));
			kbu_finding_rec_field(f, "checksum", r->ext_checksum);
			kbu_finding_rec_field(f, "sum", r->ext_sum);
		}
	}
	if (r->revision != 0 && r->revision != 2)
		finding(a, KBU_SEV_NOTE, KBU_ACPI_SEC_RSDP, "acpi.rsdp_revision_unusual",
			"RSDP revision %u is neither 0 (ACPI 1.0) nor 2 (ACPI 2.0+): read as %s",
			r->revision, r->revision < 2 ? "1.0 (20 bytes, RSDT only)" : "2.0+");
	if (r->rsdt == 0 && (r->revision < 2 || r->xsdt == 0))
		finding(a, KBU_SEV_ERROR, KBU_ACPI_SEC_RSDP, "acpi.rsdp_no_root",
			"the RSDP points at neither an RSDT nor an XSDT (both addresses are 0)");
}

/* ---- tables ---- */

static struct kbu_acpi_table *new_table(struct kbu_acpi *a)
{
	struct kbu_acpi_table *n = realloc(a->tables, (a->ntables + 1) * sizeof(*n));
	if (!n)
		return NULL;
	a->tables = n;
	memset(&n[a->ntables], 0, sizeof(*n));
	return &n[a->ntables++];
}

/*
 * Reads the table at addr (reached through `via`; `want` is the signature the
 * pointer promises, or NULL). Sets *idx to its index in a->tables, or -1 when
 * out of memory. Returns -1 (err set) only when the source failed.
 */
static int read_table(struct kbu_mem *m, struct kbu_acpi *a, uint64_t addr, const char *via,
		      const char *want, long *idx, struct kbu_err *err)
{
	*idx = -1;
	struct kbu_acpi_table *t = new_table(a);
	if (!t)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory for the ACPI table list");
	*idx = (long)(t - a->tables);
	t->addr = addr;
	snprintf(t->via, sizeof(t->via), "%s", via);
	uint8_t h[KBU_ACPI_HEADER_SIZE];
	int rr = kbu_try_read(m, addr, h, 8, err);
	if (rr == KBU_READ_FAILED)
		return kbu_err_prefix(err, "reading the ACPI table at 0x%" PRIx64 " (%s)", addr, via);
	if (rr == KBU_READ_ABSENT) {
		t->state = KBU_ACPI_T_UNREADABLE;
		snprintf(t->sig, sizeof(t->sig), "%s", want ? want : "?");
		struct kbu_finding_rec *f = finding(
			a, KBU_SEV_ERROR, KBU_ACPI_SEC_TABLES, "acpi.table_unreadable",
			"%s points at 0x%" PRIx64 ", which is not in guest memory%s%s", via, addr,
			want ? ": no " : "", want ? want : "");
		kbu_finding_rec_field(f, "address", addr);
		return 0;
	}
	sig_text(t->sig, h);
	t->length = kbu_le32(h + 4);
	int is_facs = memcmp(h, "FACS", 4) == 0;
	if ((want && memcmp(h, want, 4) != 0) || !plausible_sig(h)) {
		t->state = KBU_ACPI_T_BAD_LENGTH;
		struct kbu_finding_rec *f = finding(
			a, KBU_SEV_ERROR, KBU_ACPI_SEC_TABLES, "acpi.table_signature_bad",
			"%s points at 0x%" PRIx64 ", which holds no %s table: its first bytes are "
			"%02x %02x %02x %02x",
			via, addr, want ? want : "ACPI", h[0], h[1], h[2], h[3]);
		kbu_finding_rec_field(f, "address", addr);
		return 0;
	}
	t->has_checksum = !is_facs;
	uint32_t min = is_facs ? 64 : KBU_ACPI_HEADER_SIZE;
	if (t->length < min || t->length > KBU_ACPI_MAX_TABLE_LEN) {
		t->state = KBU_ACPI_T_BAD_LENGTH;
		struct kbu_finding_rec *f = finding(
			a, KBU_SEV_ERROR, KBU_ACPI_SEC_TABLES, "acpi.table_length_bad",
			t->length < min ? "%s at 0x%" PRIx64 " (%s): length %u is shorter than its "
					  "%u-byte header: not read"
					: "%s at 0x%" PRIx64 " (%s): length %u is over %u bytes: not read",
			t->sig, addr, via, t->length, t->length < min ? min : KBU_ACPI_MAX_TABLE_LEN);
		kbu_finding_rec_field(f, "length", t->length);
		return 0;
	}
	uint8_t *data = malloc(t->length);
	if (!data)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory for %s (%u bytes)", t->sig,
				   t->length);
	size_t got;
	if (kbu_read_prefix(m, addr, data, t->length, &got, err) == KBU_READ_FAILED) {
		free(data);
		return kbu_err_prefix(err, "reading %s at 0x%" PRIx64, t->sig, addr);
	}
	if (got >= KBU_ACPI_HEADER_SIZE && !is_facs) {
		t->revision = data[8];
		t->checksum = data[9];
		copy_str(t->oem_id, data + 10, 6);
		copy_str(t->oem_table_id, data + 16, 8);
		t->oem_revision = kbu_le32(data + 24);
		copy_str(t->creator_id, data + 28, 4);
		t->creator_revision = kbu_le32(data + 32);
	} else if (is_facs && got >= 33) {
		t->revision = data[32];
	}
	if (got < t->length) {
		t->state = KBU_ACPI_T_TRUNCATED;
		free(data);
		struct kbu_finding_rec *f = finding(
			a, KBU_SEV_ERROR, KBU_ACPI_SEC_TABLES, "acpi.table_truncated",
			"%s at 0x%" PRIx64 ": length 0x%x runs past guest memory: only 0x%zx bytes "
			"readable; checksum not verified, not decoded",
			t->sig, addr, t->length, got);
		kbu_finding_rec_field(f, "length", t->length);
		kbu_finding_rec_field(f, "readable", got);
		return 0;
	}
	t->data = data;
	if (t->has_checksum) {
		t->sum = kbu_sum8(data, t->length);
		t->sum_checked = 1;
		if (t->sum != 0) {
			struct kbu_finding_rec *f = finding(
				a, KBU_SEV_ERROR, KBU_ACPI_SEC_TABLES, "acpi.table_checksum_bad",
				"%s at 0x%" PRIx64 ": checksum bad: byte is 0x%02x, the 0x%x bytes sum "
				"to 0x%02x (expected 0x00); a correct checksum byte would be 0x%02x",
				t->sig, addr, t->checksum, t->length, t->sum,
				(uint8_t)(t->checksum - t->sum));
			kbu_finding_rec_field(f, "address", addr);
			kbu_finding_rec_field(f, "checksum", t->checksum);
			kbu_finding_rec_field(f, "sum", t->sum);
		}
	}
	return 0;
}

/* The XSDT's or RSDT's entries, each table read. */
static int walk_root(struct kbu_mem *m, struct kbu_acpi *a, long root, struct kbu_err *err)
{
	const struct kbu_acpi_table *rt = &a->tables[root];
	size_t esz = strcmp(rt->sig, "XSDT") == 0 ? 8 : 4;
	uint32_t body = rt->length - KBU_ACPI_HEADER_SIZE;
	if (body % esz)
		finding(a, KBU_SEV_WARN, KBU_ACPI_SEC_TABLES, "acpi.root_length_odd",
			"%s length %u leaves %u bytes after its header, not a whole number of "
			"%zu-byte entries: the last %u bytes are ignored",
			rt->sig, rt->length, body, esz, (unsigned)(body % esz));
	size_t n = body / esz;
	a->root_entries = n;
	char sig[5];
	snprintf(sig, sizeof(sig), "%s", rt->sig);
	uint8_t *copy = malloc(body ? body : 1);
	if (!copy)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory for the %s", sig);
	memcpy(copy, rt->data + KBU_ACPI_HEADER_SIZE, body); /* a->tables moves as it grows */
	int ret = 0;
	for (size_t i = 0; i < n; i++) {
		if (i == KBU_ACPI_MAX_TABLES) {
			finding(a, KBU_SEV_WARN, KBU_ACPI_SEC_TABLES, "acpi.root_entries_capped",
				"%s lists %zu tables; only the first %d are read", sig, n,
				KBU_ACPI_MAX_TABLES);
			break;
		}
		uint64_t addr = esz == 8 ? kbu_le64(copy + i * 8) : kbu_le32(copy + i * 4);
		char via[24];
		snprintf(via, sizeof(via), "%s[%zu]", sig, i);
		if (addr == 0) {
			finding(a, KBU_SEV_WARN, KBU_ACPI_SEC_TABLES, "acpi.root_entry_null",
				"%s is 0: no table", via);
			continue;
		}
		long idx;
		if (read_table(m, a, addr, via, NULL, &idx, err) != 0) {
			ret = -1;
			break;
		}
	}
	free(copy);
	return ret;
}

/* ---- FADT ---- */

static int fits(uint32_t len, uint32_t off, uint32_t size) { return off + size <= len; }

static void read_gas(const uint8_t *p, struct kbu_acpi_gas *g)
{
	g->space = p[0];
	g->bit_width = p[1];
	g->bit_offset = p[2];
	g->access_size = p[3];
	g->addr = kbu_le64(p + 4);
}

static void decode_fadt(struct kbu_acpi *a, const struct kbu_acpi_table *t)
{
	struct kbu_acpi_fadt *f = &a->fadt;
	const uint8_t *d = t->data;
	uint32_t len = t->length;
	f->present = 1;
	f->addr = t->addr;
	f->revision = t->revision;
	f->length = len;
	if (fits(len, 36, 4))
		f->firmware_ctrl = kbu_le32(d + 36);
	if (fits(len, 40, 4))
		f->dsdt = kbu_le32(d + 40);
	if (fits(len, 45, 1))
		f->pm_profile = d[45];
	if (fits(len, 46, 2))
		f->sci_int = kbu_le16(d + 46);
	if (fits(len, 48, 4))
		f->smi_cmd = kbu_le32(d + 48);
	if (fits(len, 76, 4))
		f->pm_tmr_blk = kbu_le32(d + 76);
	if (fits(len, 91, 1))
		f->pm_tmr_len = d[91];
	if ((f->has_iapc_boot_arch = fits(len, 109, 2)))
		f->iapc_boot_arch = kbu_le16(d + 109);
	if ((f->has_flags = fits(len, 112, 4)))
		f->flags = kbu_le32(d + 112);
	if ((f->has_reset_reg = fits(len, 116, 13))) {
		read_gas(d + 116, &f->reset_reg);
		f->reset_value = d[128];
	}
	if (fits(len, 131, 1))
		f->minor = d[131];
	if ((f->has_x_firmware_ctrl = fits(len, 132, 8)))
		f->x_firmware_ctrl = kbu_le64(d + 132);
	if ((f->has_x_dsdt = fits(len, 140, 8)))
		f->x_dsdt = kbu_le64(d + 140);
	if ((f->has_x_pm_tmr_blk = fits(len, 208, 12)))
		read_gas(d + 208, &f->x_pm_tmr_blk);
	if (fits(len, 268, 8))
		copy_str(f->hypervisor_id, d + 268, 8);
	f->dsdt_used = f->has_x_dsdt && f->x_dsdt ? f->x_dsdt : f->dsdt;

	/* The FADT sizes of ACPI 1.0, 2.0-4.0, 5.0 and 6.0. */
	uint32_t want = f->revision >= 6 ? 276 : f->revision == 5 ? 268 : f->revision >= 3 ? 244 : 116;
	if (len < want)
		finding(a, KBU_SEV_WARN, KBU_ACPI_SEC_FADT, "acpi.fadt_short",
			"FADT revision %u is %u bytes; a revision %u FADT has %u: the fields past "
			"its end read as absent",
			f->revision, len, f->revision, want);
	if (f->has_x_dsdt && f->x_dsdt && f->dsdt && f->x_dsdt != f->dsdt)
		finding(a, KBU_SEV_WARN, KBU_ACPI_SEC_FADT, "acpi.fadt_dsdt_mismatch",
			"DSDT (0x%08" PRIx32 ") and X_DSDT (0x%" PRIx64 ") differ; a kernel uses "
			"X_DSDT",
			f->dsdt, f->x_dsdt);
	if (f->dsdt_used == 0)
		finding(a, KBU_SEV_ERROR, KBU_ACPI_SEC_FADT, "acpi.fadt_no_dsdt",
			"the FADT points at no DSDT (DSDT%s are 0): no device is described in ACPI",
			f->has_x_dsdt ? " and X_DSDT" : "");
	int hw_reduced = f->has_flags && (f->flags & KBU_FADT_HW_REDUCED_ACPI);
	int have_tmr = f->pm_tmr_blk || (f->has_x_pm_tmr_blk && f->x_pm_tmr_blk.addr);
	if (hw_reduced)
		finding(a, KBU_SEV_NOTE, KBU_ACPI_SEC_FADT, "acpi.fadt_hw_reduced",
			"HW_REDUCED_ACPI: no fixed-feature hardware (no PM timer, no SCI, no PM1 "
			"blocks); a kernel that calibrates against the ACPI PM timer has none here");
	else if (!have_tmr)
		finding(a, KBU_SEV_WARN, KBU_ACPI_SEC_FADT, "acpi.fadt_no_pm_timer",
			"no PM timer block (PM_TMR_BLK%s is 0) although HW_REDUCED_ACPI is clear",
			f->has_x_pm_tmr_blk ? " and X_PM_TMR_BLK" : "");
	else if (f->pm_tmr_blk && f->pm_tmr_len != 4)
		finding(a, KBU_SEV_WARN, KBU_ACPI_SEC_FADT, "acpi.fadt_pm_timer_length",
			"PM_TMR_LEN is %u; the PM timer block is 4 bytes", f->pm_tmr_len);
}

/* ---- MADT ---- */

const char *kbu_madt_type_name(uint8_t type)
{
	switch (type) {
	case KBU_MADT_LAPIC: return "processor local APIC";
	case KBU_MADT_IOAPIC: return "I/O APIC";
	case KBU_MADT_ISO: return "interrupt source override";
	case KBU_MADT_NMI_SOURCE: return "NMI source";
	case KBU_MADT_LAPIC_NMI: return "local APIC NMI";
	case KBU_MADT_LAPIC_ADDR: return "local APIC address override";
	case KBU_MADT_X2APIC: return "processor local x2APIC";
	case KBU_MADT_X2APIC_NMI: return "local x2APIC NMI";
	default: return NULL;
	}
}

static unsigned madt_entry_size(uint8_t type)
{
	switch (type) {
	case KBU_MADT_LAPIC: return 8;
	case KBU_MADT_IOAPIC: return 12;
	case KBU_MADT_ISO: return 10;
	case KBU_MADT_NMI_SOURCE: return 8;
	case KBU_MADT_LAPIC_NMI: return 6;
	case KBU_MADT_LAPIC_ADDR: return 12;
	case KBU_MADT_X2APIC: return 16;
	case KBU_MADT_X2APIC_NMI: return 12;
	default: return 0;
	}
}

static void decode_madt_entry(struct kbu_madt_entry *e, const uint8_t *b)
{
	switch (e->type) {
	case KBU_MADT_LAPIC:
		e->u.lapic.uid = b[2];
		e->u.lapic.apic_id = b[3];
		e->u.lapic.flags = kbu_le32(b + 4);
		break;
	case KBU_MADT_IOAPIC:
		e->u.ioapic.id = b[2];
		e->u.ioapic.addr = kbu_le32(b + 4);
		e->u.ioapic.gsi_base = kbu_le32(b + 8);
		break;
	case KBU_MADT_ISO:
		e->u.iso.bus = b[2];
		e->u.iso.source = b[3];
		e->u.iso.gsi = kbu_le32(b + 4);
		e->u.iso.flags = kbu_le16(b + 8);
		break;
	case KBU_MADT_NMI_SOURCE:
		e->u.nmi.flags = kbu_le16(b + 2);
		e->u.nmi.gsi = kbu_le32(b + 4);
		break;
	case KBU_MADT_LAPIC_NMI:
		e->u.lapic_nmi.uid = b[2];
		e->u.lapic_nmi.flags = kbu_le16(b + 3);
		e->u.lapic_nmi.lint = b[5];
		break;
	case KBU_MADT_LAPIC_ADDR:
		e->u.lapic_addr.addr = kbu_le64(b + 4);
		break;
	case KBU_MADT_X2APIC:
		e->u.x2apic.x2apic_id = kbu_le32(b + 4);
		e->u.x2apic.flags = kbu_le32(b + 8);
		e->u.x2apic.uid = kbu_le32(b + 12);
		break;
	case KBU_MADT_X2APIC_NMI:
		e->u.x2apic_nmi.flags = kbu_le16(b + 2);
		e->u.x2apic_nmi.uid = kbu_le32(b + 4);
		e->u.x2apic_nmi.lint = b[8];
		break;
	default:
		break;
	}
}

static void decode_madt(struct kbu_acpi *a, const struct kbu_acpi_table *t, int vcpus)
{
	struct kbu_acpi_madt *md = &a->madt;
	const uint8_t *d = t->data;
	uint32_t len = t->length;
	md->present = 1;
	md->addr = t->addr;
	if (len < 44) {
		finding(a, KBU_SEV_ERROR, KBU_ACPI_SEC_MADT, "acpi.madt_too_short",
			"the MADT is %u bytes, shorter than its 44-byte header: no entries", len);
		return;
	}
	md->lapic_addr = kbu_le32(d + 36);
	md->lapic_addr_eff = md->lapic_addr;
	md->flags = kbu_le32(d + 40);
	uint32_t off = 44;
	struct kbu_finding_rec *f;
	while (off < len) {
		if (off + 2 > len) {
			f = finding(a, KBU_SEV_ERROR, KBU_ACPI_SEC_MADT, "acpi.madt_entry_truncated",
				    "an entry header at offset 0x%x crosses the end of the MADT (length "
				    "0x%x); the walk stops here",
				    off, len);
			kbu_finding_rec_field(f, "offset", off);
			return;
		}
		uint8_t type = d[off], elen = d[off + 1];
		if (elen < 2) {
			f = finding(a, KBU_SEV_ERROR, KBU_ACPI_SEC_MADT, "acpi.madt_entry_length_bad",
				    "entry type %u at offset 0x%x has length %u: a walker that trusts it "
				    "never advances; the walk stops here",
				    type, off, elen);
			kbu_finding_rec_field(f, "offset", off);
			kbu_finding_rec_field(f, "type", type);
			kbu_finding_rec_field(f, "length", elen);
			return;
		}
		if (off + elen > len) {
			f = finding(a, KBU_SEV_ERROR, KBU_ACPI_SEC_MADT, "acpi.madt_entry_truncated",
				    "entry type %u at offset 0x%x (%u bytes) crosses the end of the "
				    "MADT (length 0x%x); the walk stops here",
				    type, off, elen, len);
			kbu_finding_rec_field(f, "offset", off);
			kbu_finding_rec_field(f, "type", type);
			return;
		}
		if (md->nentries >= KBU_ACPI_MAX_MADT_ENTRIES) {
			finding(a, KBU_SEV_WARN, KBU_ACPI_SEC_MADT, "acpi.madt_entries_capped",
				"more than %d MADT entries: the rest are not listed",
				KBU_ACPI_MAX_MADT_ENTRIES);
			return;
		}
		struct kbu_madt_entry *ne = realloc(md->entries, (md->nentries + 1) * sizeof(*ne));
		if (!ne)
			return;
		md->entries = ne;
		struct kbu_madt_entry *e = &ne[md->nentries++];
		memset(e, 0, sizeof(*e));
		e->offset = off;
		e->type = type;
		e->len = elen;
		memcpy(e->raw, d + off, elen < sizeof(e->raw) ? elen : sizeof(e->raw));
		unsigned want = madt_entry_size(type);
		if (want == 0) {
			f = finding(a, KBU_SEV_NOTE, KBU_ACPI_SEC_MADT, "acpi.madt_entry_unknown",
				    "entry type %u at offset 0x%x (%u bytes) is not a type kbu decodes; "
				    "skipped by its length",
				    type, off, elen);
			kbu_finding_rec_field(f, "type", type);
			kbu_finding_rec_field(f, "length", elen);
		} else if (elen < want) {
			f = finding(a, KBU_SEV_WARN, KBU_ACPI_SEC_MADT, "acpi.madt_entry_short",
				    "%s entry at offset 0x%x has length %u, expected %u: not decoded",
				    kbu_madt_type_name(type), off, elen, want);
			kbu_finding_rec_field(f, "type", type);
			kbu_finding_rec_field(f, "length", elen);
		} else {
			decode_madt_entry(e, d + off);
			e->decoded = 1;
			if (elen > want)
				finding(a, KBU_SEV_NOTE, KBU_ACPI_SEC_MADT, "acpi.madt_entry_long",
					"%s entry at offset 0x%x has length %u, more than its %u: "
					"decoded from its first %u bytes",
					kbu_madt_type_name(type), off, elen, want, want);
		}
		off += elen;
	}
	md->walk_complete = 1;

	/* Cross-checks a kernel relies on. */
	size_t nid = 0;
	uint32_t *ids = calloc(md->nentries + 1, sizeof(*ids));
	uint32_t *ioids = calloc(md->nentries + 1, sizeof(*ioids));
	size_t nio = 0;
	for (size_t i = 0; i < md->nentries; i++) {
		const struct kbu_madt_entry *e = &md->entries[i];
		if (!e->decoded)
			continue;
		uint32_t id = 0, flags = 0;
		if (e->type == KBU_MADT_LAPIC) {
			id = e->u.lapic.apic_id;
			flags = e->u.lapic.flags;
		} else if (e->type == KBU_MADT_X2APIC) {
			id = e->u.x2apic.x2apic_id;
			flags = e->u.x2apic.flags;
		} else if (e->type == KBU_MADT_IOAPIC) {
			md->nioapics++;
			for (size_t k = 0; ioids && k < nio; k++)
				if (ioids[k] == e->u.ioapic.id) {
					f = finding(a, KBU_SEV_ERROR, KBU_ACPI_SEC_MADT,
						    "acpi.madt_duplicate_ioapic_id",
						    "two I/O APICs have id %u (the second at offset 0x%x)",
						    e->u.ioapic.id, e->offset);
					kbu_finding_rec_field(f, "id", e->u.ioapic.id);
				}
			if (ioids)
				ioids[nio++] = e->u.ioapic.id;
			continue;
		} else if (e->type == KBU_MADT_LAPIC_ADDR) {
			md->lapic_addr_eff = e->u.lapic_addr.addr;
			continue;
		} else {
			continue;
		}
		md->ncpus++;
		if (!(flags & 3)) /* neither enabled nor online capable */
			continue;
		md->ncpus_enabled++;
		for (size_t k = 0; ids && k < nid; k++)
			if (ids[k] == id) {
				f = finding(a, KBU_SEV_ERROR, KBU_ACPI_SEC_MADT,
					    "acpi.madt_duplicate_apic_id",
					    "two usable processors have APIC id %" PRIu32
					    " (the second at offset 0x%x)",
					    id, e->offset);
				kbu_finding_rec_field(f, "apic_id", id);
			}
		if (ids)
			ids[nid++] = id;
	}
	free(ids);
	free(ioids);
	if (md->ncpus_enabled == 0)
		finding(a, KBU_SEV_ERROR, KBU_ACPI_SEC_MADT, "acpi.madt_no_processor",
			"the MADT lists no usable processor (%zu processor entries, none enabled or "
			"online capable)",
			md->ncpus);
	if (md->lapic_addr_eff == 0)
		finding(a, KBU_SEV_WARN, KBU_ACPI_SEC_MADT, "acpi.madt_lapic_address_zero",
			"the local APIC address is 0");
	if (vcpus > 0 && md->ncpus_enabled != (size_t)vcpus) {
		f = finding(a, KBU_SEV_WARN, KBU_ACPI_SEC_MADT, "acpi.madt_cpus_vs_vcpus",
			    "the MADT lists %zu usable processor%s but the VM has %d vCPU%s",
			    md->ncpus_enabled, md->ncpus_enabled == 1 ? "" : "s", vcpus,
			    vcpus == 1 ? "" : "s");
		kbu_finding_rec_field(f, "madt_cpus", md->ncpus_enabled);
		kbu_finding_rec_field(f, "vcpus", (uint64_t)vcpus);
	}
}

/* ---- the whole walk ---- */

static int find_start(struct kbu_mem *m, const struct kbu_acpi_opts *o, struct kbu_acpi *a,
		      struct kbu_err *err)
{
	if (o && o->have_rsdp) {
		int rr = read_rsdp_at(m, o->rsdp_addr, &a->rsdp, err);
		if (rr == RSDP_FAILED)
			return kbu_err_prefix(err, "reading the RSDP at 0x%" PRIx64, o->rsdp_addr);
		if (rr == RSDP_ABSENT)
			return kbu_err_set(err, KBU_EFAULT, "no RSDP at 0x%" PRIx64
					   ": the address is not in guest memory", o->rsdp_addr);
		if (rr == RSDP_NOSIG)
			return kbu_err_set(err, KBU_EFORMAT, "no RSDP at 0x%" PRIx64
					   ": no \"RSD PTR \" signature there", o->rsdp_addr);
		snprintf(a->rsdp.how, sizeof(a->rsdp.how), "given address");
		a->found = 1;
		return 0;
	}
	const struct kbu_pvh *p = o ? o->pvh : NULL;
	if (p && p->rsdp_paddr) {
		int rr = read_rsdp_at(m, p->rsdp_paddr, &a->rsdp, err);
		if (rr == RSDP_FAILED)
			return kbu_err_prefix(err, "reading the RSDP at 0x%" PRIx64
					      " (the start info's rsdp_paddr)", p->rsdp_paddr);
		if (rr == RSDP_OK) {
			snprintf(a->rsdp.how, sizeof(a->rsdp.how),
				 "the PVH start info's rsdp_paddr (start info at 0x%" PRIx64 ", %s)",
				 p->addr, p->how[0] ? p->how : "given");
			a->found = 1;
			return 0;
		}
		struct kbu_finding_rec *f = finding(
			a, KBU_SEV_ERROR, KBU_ACPI_SEC_RSDP, "acpi.start_info_rsdp_bad",
			"the PVH start info's rsdp_paddr 0x%" PRIx64 " %s; searching the standard "
			"places instead",
			p->rsdp_paddr, rr == RSDP_ABSENT ? "is not in guest memory"
							 : "holds no RSDP (no \"RSD PTR \")");
		kbu_finding_rec_field(f, "rsdp_paddr", p->rsdp_paddr);
	}
	int r = kbu_acpi_find_rsdp(m, &a->rsdp, a->not_found, sizeof(a->not_found), err);
	if (r < 0)
		return -1;
	if (r == 0) {
		size_t l = strlen(a->not_found);
		if (p)
			snprintf(a->not_found + l, sizeof(a->not_found) - l,
				 ", and the PVH start info (at 0x%" PRIx64 ") has rsdp_paddr %s",
				 p->addr, p->rsdp_paddr ? "pointing at none" : "0");
		return 0;
	}
	a->found = 1;
	if (p && p->rsdp_paddr == 0) {
		struct kbu_finding_rec *f = finding(
			a, KBU_SEV_NOTE, KBU_ACPI_SEC_RSDP, "acpi.start_info_rsdp_zero",
			"the PVH start info's rsdp_paddr is 0 although an RSDP is at 0x%" PRIx64
			": a kernel that takes ACPI only from the start info finds none",
			a->rsdp.addr);
		kbu_finding_rec_field(f, "rsdp", a->rsdp.addr);
	}
	return 0;
}

int kbu_acpi_read(struct kbu_mem *m, const struct kbu_acpi_opts *o, struct kbu_acpi *a,
		  struct kbu_err *err)
{
	memset(a, 0, sizeof(*a));
	if (find_start(m, o, a, err) != 0) {
		kbu_acpi_free(a);
		return -1;
	}
	if (!a->found)
		return 0;
	check_rsdp(a);
	const struct kbu_acpi_rsdp *r = &a->rsdp;
	long xsdt = -1, rsdt = -1;
	if (r->revision >= 2 && r->xsdt && read_table(m, a, r->xsdt, "RSDP XSDT address", "XSDT",
						      &xsdt, err) != 0)
		goto fail;
	if (r->rsdt && read_table(m, a, r->rsdt, "RSDP RSDT address", "RSDT", &rsdt, err) != 0)
		goto fail;
	long root = -1;
	if (xsdt >= 0 && a->tables[xsdt].state == KBU_ACPI_T_OK) {
		root = xsdt;
	} else if (rsdt >= 0 && a->tables[rsdt].state == KBU_ACPI_T_OK) {
		root = rsdt;
		if (xsdt >= 0)
			finding(a, KBU_SEV_WARN, KBU_ACPI_SEC_TABLES, "acpi.xsdt_unusable",
				"the XSDT cannot be read (see above): the RSDT's list is used, as a "
				"kernel that falls back to it would");
	}
	if (root >= 0) {
		a->root_sig = strcmp(a->tables[root].sig, "XSDT") == 0 ? "XSDT" : "RSDT";
		a->root_addr = a->tables[root].addr;
		if (walk_root(m, a, root, err) != 0)
			goto fail;
	}

	/* The FADT's own pointers: the DSDT and the FACS. */
	const struct kbu_acpi_table *ft = kbu_acpi_table(a, "FACP", 0);
	if (ft && ft->state == KBU_ACPI_T_OK) {
		decode_fadt(a, ft);
		struct kbu_acpi_fadt *f = &a->fadt;
		long idx;
		if (f->dsdt_used &&
		    read_table(m, a, f->dsdt_used,
			       f->has_x_dsdt && f->x_dsdt ? "FADT X_DSDT" : "FADT DSDT", "DSDT", &idx,
			       err) != 0)
			goto fail;
		uint64_t facs = f->has_x_firmware_ctrl && f->x_firmware_ctrl ? f->x_firmware_ctrl
									   : f->firmware_ctrl;
		if (facs && read_table(m, a, facs,
				       f->has_x_firmware_ctrl && f->x_firmware_ctrl
					       ? "FADT X_FIRMWARE_CTRL" : "FADT FIRMWARE_CTRL",
				       "FACS", &idx, err) != 0)
			goto fail;
	} else if (root >= 0 && !ft) {
		finding(a, KBU_SEV_WARN, KBU_ACPI_SEC_TABLES, "acpi.no_fadt",
			"the %s lists no FADT (FACP): no DSDT, no fixed hardware described",
			a->root_sig);
	}
	const struct kbu_acpi_table *mt = kbu_acpi_table(a, "APIC", 0);
	if (mt && mt->state == KBU_ACPI_T_OK)
		decode_madt(a, mt, o ? o->vcpus : 0);
	else if (root >= 0 && !mt)
		finding(a, KBU_SEV_WARN, KBU_ACPI_SEC_TABLES, "acpi.no_madt",
			"the %s lists no MADT (APIC): a kernel that takes its CPUs and interrupt "
			"controllers from ACPI finds none",
			a->root_sig);
	if (kbu_acpi_table(a, "APIC", 1))
		finding(a, KBU_SEV_WARN, KBU_ACPI_SEC_TABLES, "acpi.madt_duplicate",
			"more than one MADT (APIC): kbu decodes the first");
	return 0;
fail:
	kbu_acpi_free(a);
	return -1;
}

void kbu_acpi_free(struct kbu_acpi *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->ntables; i++)
		free(a->tables[i].data);
	free(a->tables);
	free(a->madt.entries);
	free(a->findings);
	memset(a, 0, sizeof(*a));
}

const struct kbu_acpi_table *kbu_acpi_table(const struct kbu_acpi *a, const char *sig, size_t n)
{
	for (size_t i = 0; i < a->ntables; i++)
		if (strncmp(a->tables[i].sig, sig, 4) == 0 && a->tables[i].state == KBU_ACPI_T_OK &&
		    n-- == 0)
			return &a->tables[i];
	/* Tables that could not be read still exist: found by signature as a last resort. */
	for (size_t i = 0; i < a->ntables; i++)
		if (strncmp(a->tables[i].sig, sig, 4) == 0 && a->tables[i].state != KBU_ACPI_T_OK &&
		    n-- == 0)
			return &a->tables[i];
	return NULL;
}

/* ---- report ---- */

static void add_findings(const struct kbu_acpi *a, int section, struct kbu_node *o)
{
	kbu_finding_recs_report(o, a->findings, a->nfindings, section);
}

static const char *state_name(int s)
{
	switch (s) {
	case KBU_ACPI_T_OK: return "ok";
	case KBU_ACPI_T_UNREADABLE: return "unreadable";
	case KBU_ACPI_T_BAD_LENGTH: return "not read";
	case KBU_ACPI_T_TRUNCATED: return "truncated";
	default: return "?";
	}
}

static void checksum_fields(struct kbu_node *o, const struct kbu_acpi_table *t, const char *label,
			    const char *ok_label)
{
	if (t->has_checksum && t->state != KBU_ACPI_T_UNREADABLE)
		kbu_hex(o, "checksum", label, t->checksum, 2);
	else
		kbu_null(o, "checksum", label);
	if (t->sum_checked)
		kbu_bool(o, "checksum_ok", ok_label, t->sum == 0);
	else
		kbu_null(o, "checksum_ok", ok_label);
}

static void report_rsdp(const struct kbu_acpi *a, struct kbu_node *root)
{
	const struct kbu_acpi_rsdp *r = &a->rsdp;
	struct kbu_node *o = kbu_obj(root, "rsdp", "RSDP");
	kbu_hex(o, "address", "physical address", r->addr, 8);
	kbu_str(o, "found", "found through", r->how);
	kbu_str(o, "oem_id", "OEM ID", r->oem_id);
	kbu_u64(o, "revision", "revision", r->revision);
	kbu_display(o, "acpi_version", "ACPI", "%s", r->revision >= 2 ? "2.0+" : "1.0");
	kbu_hex(o, "checksum", "checksum", r->checksum, 2);
	kbu_bool(o, "checksum_ok", "checksum ok", r->sum == 0);
	kbu_hex(o, "rsdt", "RSDT address", r->rsdt, 8);
	if (r->revision >= 2) {
		kbu_u64(o, "length", "length", r->length);
		kbu_hex(o, "xsdt", "XSDT address", r->xsdt, 16);
		kbu_hex(o, "ext_checksum", "extended checksum", r->ext_checksum, 2);
		if (r->ext_checked)
			kbu_bool(o, "ext_checksum_ok", "extended checksum ok", r->ext_sum == 0);
		else
			kbu_null(o, "ext_checksum_ok", "extended checksum ok");
	} else {
		kbu_null(o, "xsdt", "");
	}
	add_findings(a, KBU_ACPI_SEC_RSDP, o);
}

static void table_row(struct kbu_node *r, const struct kbu_acpi_table *t)
{
	kbu_str(r, "signature", "Sig", t->sig);
	kbu_hex(r, "address", "Address", t->addr, 8);
	kbu_u64(r, "length", "Length", t->length);
	kbu_u64(r, "revision", "Rev", t->revision);
	checksum_fields(r, t, "Sum", "Sum OK");
	kbu_str(r, "oem_id", "OEM", t->oem_id);
	kbu_str(r, "oem_table_id", "OEM Table", t->oem_table_id);
	kbu_u64(r, "oem_revision", "", t->oem_revision);
	kbu_str(r, "creator_id", "", t->creator_id);
	kbu_u64(r, "creator_revision", "", t->creator_revision);
	kbu_str(r, "via", "Via", t->via);
	kbu_str(r, "state", "State", state_name(t->state));
}

static void report_tables(const struct kbu_acpi *a, struct kbu_node *root)
{
	struct kbu_node *o = kbu_obj(root, "tables", "Tables");
	if (a->root_sig) {
		kbu_str(o, "root", "root table", a->root_sig);
		kbu_u64(o, "root_entries", "entries it lists", a->root_entries);
	} else {
		kbu_null(o, "root", "root table");
	}
	struct kbu_node *l = kbu_list(o, "list", "");
	for (size_t i = 0; i < a->ntables; i++)
		table_row(kbu_row(l), &a->tables[i]);
	add_findings(a, KBU_ACPI_SEC_TABLES, o);
}

static const char *mps_polarity(uint16_t f)
{
	static const char *n[] = {"conforms", "active-hi", "reserved", "active-lo"};
	return n[f & 3];
}

static const char *mps_trigger(uint16_t f)
{
	static const char *n[] = {"conforms", "edge", "reserved", "level"};
	return n[(f >> 2) & 3];
}

static void report_madt(const struct kbu_acpi *a, struct kbu_node *root)
{
	const struct kbu_acpi_madt *md = &a->madt;
	struct kbu_node *o = kbu_obj(root, "madt", "MADT (APIC)");
	if (!md->present) {
		kbu_bool(o, "present", "present", 0);
		add_findings(a, KBU_ACPI_SEC_MADT, o);
		return;
	}
	kbu_bool(o, "present", "", 1);
	kbu_hex(o, "address", "physical address", md->addr, 8);
	kbu_hex(o, "lapic_address", "local APIC address", md->lapic_addr_eff, 8);
	kbu_hex(o, "flags", "flags", md->flags, 8);
	kbu_bool(o, "pcat_compat", "PCAT_COMPAT (8259s)", md->flags & 1);
	kbu_u64(o, "cpus", "processors", md->ncpus);
	kbu_u64(o, "cpus_enabled", "usable processors", md->ncpus_enabled);
	kbu_u64(o, "ioapics", "I/O APICs", md->nioapics);
	struct kbu_node *lapics = kbu_list(o, "local_apics", "Processor Local APICs");
	struct kbu_node *ioapics = kbu_list(o, "io_apics", "I/O APICs");
	struct kbu_node *x2 = NULL, *iso = NULL, *nmi = NULL, *lnmi = NULL, *x2nmi = NULL,
			*addr = NULL, *other = NULL;
	for (size_t i = 0; i < md->nentries; i++) {
		const struct kbu_madt_entry *e = &md->entries[i];
		struct kbu_node *r;
		if (!e->decoded) {
			if (!other)
				other = kbu_list(o, "other", "Other entries (not decoded)");
			r = kbu_row(other);
			kbu_u64(r, "type", "Type", e->type);
			const char *nm = kbu_madt_type_name(e->type);
			kbu_str(r, "type_name", "Name", nm ? nm : "unknown");
			kbu_u64(r, "length", "Length", e->len);
			kbu_hex(r, "offset", "Offset", e->offset, 0);
			kbu_bytes(r, "bytes", "Bytes", e->raw, e->len < sizeof(e->raw) ? e->len : sizeof(e->raw));
			continue;
		}
		switch (e->type) {
		case KBU_MADT_LAPIC:
			r = kbu_row(lapics);
			kbu_u64(r, "uid", "UID", e->u.lapic.uid);
			kbu_u64(r, "apic_id", "APIC ID", e->u.lapic.apic_id);
			kbu_bool(r, "enabled", "Enabled", e->u.lapic.flags & 1);
			kbu_bool(r, "online_capable", "Online Capable", (e->u.lapic.flags >> 1) & 1);
			kbu_hex(r, "offset", "", e->offset, 0);
			break;
		case KBU_MADT_X2APIC:
			if (!x2)
				x2 = kbu_list(o, "local_x2apics", "Processor Local x2APICs");
			r = kbu_row(x2);
			kbu_u64(r, "uid", "UID", e->u.x2apic.uid);
			kbu_u64(r, "x2apic_id", "x2APIC ID", e->u.x2apic.x2apic_id);
			kbu_bool(r, "enabled", "Enabled", e->u.x2apic.flags & 1);
			kbu_bool(r, "online_capable", "Online Capable", (e->u.x2apic.flags >> 1) & 1);
			kbu_hex(r, "offset", "", e->offset, 0);
			break;
		case KBU_MADT_IOAPIC:
			r = kbu_row(ioapics);
			kbu_u64(r, "id", "ID", e->u.ioapic.id);
			kbu_hex(r, "address", "Address", e->u.ioapic.addr, 8);
			kbu_u64(r, "gsi_base", "GSI Base", e->u.ioapic.gsi_base);
			kbu_hex(r, "offset", "", e->offset, 0);
			break;
		case KBU_MADT_ISO:
			if (!iso)
				iso = kbu_list(o, "overrides", "Interrupt Source Overrides");
			r = kbu_row(iso);
			kbu_u64(r, "bus", "Bus", e->u.iso.bus);
			kbu_u64(r, "irq", "IRQ", e->u.iso.source);
			kbu_u64(r, "gsi", "GSI", e->u.iso.gsi);
			kbu_str(r, "polarity", "Polarity", mps_polarity(e->u.iso.flags));
			kbu_str(r, "trigger", "Trigger", mps_trigger(e->u.iso.flags));
			kbu_hex(r, "offset", "", e->offset, 0);
			break;
		case KBU_MADT_NMI_SOURCE:
			if (!nmi)
				nmi = kbu_list(o, "nmi_sources", "NMI Sources");
			r = kbu_row(nmi);
			kbu_u64(r, "gsi", "GSI", e->u.nmi.gsi);
			kbu_str(r, "polarity", "Polarity", mps_polarity(e->u.nmi.flags));
			kbu_str(r, "trigger", "Trigger", mps_trigger(e->u.nmi.flags));
			kbu_hex(r, "offset", "", e->offset, 0);
			break;
		case KBU_MADT_LAPIC_NMI:
			if (!lnmi)
				lnmi = kbu_list(o, "local_apic_nmis", "Local APIC NMIs");
			r = kbu_row(lnmi);
			kbu_u64(r, "uid", "UID", e->u.lapic_nmi.uid);
			kbu_str(r, "processors", "Processors", e->u.lapic_nmi.uid == 0xff ? "all" : "one");
			kbu_u64(r, "lint", "LINT#", e->u.lapic_nmi.lint);
			kbu_str(r, "polarity", "Polarity", mps_polarity(e->u.lapic_nmi.flags));
			kbu_str(r, "trigger", "Trigger", mps_trigger(e->u.lapic_nmi.flags));
			kbu_hex(r, "offset", "", e->offset, 0);
			break;
		case KBU_MADT_X2APIC_NMI:
			if (!x2nmi)
				x2nmi = kbu_list(o, "local_x2apic_nmis", "Local x2APIC NMIs");
			r = kbu_row(x2nmi);
			kbu_u64(r, "uid", "UID", e->u.x2apic_nmi.uid);
			kbu_str(r, "processors", "Processors",
				e->u.x2apic_nmi.uid == 0xffffffffu ? "all" : "one");
			kbu_u64(r, "lint", "LINT#", e->u.x2apic_nmi.lint);
			kbu_str(r, "polarity", "Polarity", mps_polarity(e->u.x2apic_nmi.flags));
			kbu_str(r, "trigger", "Trigger", mps_trigger(e->u.x2apic_nmi.flags));
			kbu_hex(r, "offset", "", e->offset, 0);
			break;
		case KBU_MADT_LAPIC_ADDR:
			if (!addr)
				addr = kbu_list(o, "lapic_address_overrides", "Local APIC Address Overrides");
			r = kbu_row(addr);
			kbu_hex(r, "address", "Address", e->u.lapic_addr.addr, 16);
			kbu_hex(r, "offset", "", e->offset, 0);
			break;
		default:
			break;
		}
	}
	add_findings(a, KBU_ACPI_SEC_MADT, o);
}

struct bit_name {
	int bit;
	const char *name;
};

static void bits_text(uint32_t v, const struct bit_name *b, char *out, size_t len)
{
	size_t n = 0;
	out[0] = 0;
	for (; b->name; b++)
		if (v & (1u << b->bit)) {
			int w = snprintf(out + n, len - n, "%s%s", n ? " " : "", b->name);
			if (w < 0 || (size_t)w >= len - n)
				break;
			n += (size_t)w;
		}
	if (!n)
		snprintf(out, len, "-");
}

/* The names of the bits set in v, as a JSON list. */
static void bits_list(struct kbu_node *o, const char *key, uint32_t v, const struct bit_name *b)
{
	struct kbu_node *l = kbu_list(o, key, "");
	for (; b->name; b++)
		if (v & (1u << b->bit))
			kbu_item_str(l, b->name);
}

static const struct bit_name fadt_flags[] = {
	{0, "WBINVD"}, {1, "WBINVD_FLUSH"}, {2, "PROC_C1"}, {3, "P_LVL2_UP"}, {4, "PWR_BUTTON"},
	{5, "SLP_BUTTON"}, {6, "FIX_RTC"}, {7, "RTC_S4"}, {8, "TMR_VAL_EXT"}, {9, "DCK_CAP"},
	{10, "RESET_REG_SUP"}, {11, "SEALED_CASE"}, {12, "HEADLESS"}, {13, "CPU_SW_SLP"},
	{14, "PCI_EXP_WAK"}, {15, "USE_PLATFORM_CLOCK"}, {16, "S4_RTC_STS_VALID"},
	{17, "REMOTE_POWER_ON_CAPABLE"}, {18, "FORCE_APIC_CLUSTER_MODEL"},
	{19, "FORCE_APIC_PHYSICAL_DESTINATION_MODE"}, {20, "HW_REDUCED_ACPI"},
	{21, "LOW_POWER_S0_IDLE_CAPABLE"}, {-1, NULL},
};

static const struct bit_name boot_arch_flags[] = {
	{0, "LEGACY_DEVICES"}, {1, "8042"}, {2, "VGA_NOT_PRESENT"}, {3, "MSI_NOT_SUPPORTED"},
	{4, "PCIE_ASPM_CONTROLS"}, {5, "CMOS_RTC_NOT_PRESENT"}, {-1, NULL},
};

static void gas_text(const struct kbu_acpi_gas *g, char *out, size_t len)
{
	static const char *space[] = {"memory", "I/O", "PCI config", "embedded controller", "SMBus"};
	if (!g->addr) {
		snprintf(out, len, "none");
		return;
	}
	snprintf(out, len, "%s 0x%" PRIx64 " (%u bits)", g->space < 5 ? space[g->space] : "other",
		 g->addr, g->bit_width);
}

static void report_fadt(const struct kbu_acpi *a, struct kbu_node *root)
{
	const struct kbu_acpi_fadt *f = &a->fadt;
	struct kbu_node *o = kbu_obj(root, "fadt", "FADT (FACP)");
	if (!f->present) {
		kbu_bool(o, "present", "present", 0);
		add_findings(a, KBU_ACPI_SEC_FADT, o);
		return;
	}
	char buf[400];
	kbu_bool(o, "present", "", 1);
	kbu_hex(o, "address", "physical address", f->addr, 8);
	kbu_u64(o, "revision", "revision", f->revision);
	kbu_u64(o, "minor", "minor version", f->minor);
	kbu_u64(o, "length", "length", f->length);
	if (f->has_flags) {
		kbu_hex(o, "flags", "flags", f->flags, 8);
		bits_text(f->flags, fadt_flags, buf, sizeof(buf));
		kbu_display(o, "flag_names_text", "flag names", "%s", buf);
		bits_list(o, "flag_names", f->flags, fadt_flags);
	} else {
		kbu_null(o, "flags", "flags");
		kbu_null(o, "flag_names", "");
	}
	kbu_bool(o, "hw_reduced", "", f->has_flags && (f->flags & KBU_FADT_HW_REDUCED_ACPI));
	kbu_hex(o, "dsdt", "DSDT", f->dsdt, 8);
	if (f->has_x_dsdt)
		kbu_hex(o, "x_dsdt", "X_DSDT", f->x_dsdt, 16);
	else
		kbu_null(o, "x_dsdt", "X_DSDT");
	kbu_hex(o, "firmware_ctrl", "FIRMWARE_CTRL (FACS)", f->firmware_ctrl, 8);
	if (f->has_x_firmware_ctrl)
		kbu_hex(o, "x_firmware_ctrl", "X_FIRMWARE_CTRL", f->x_firmware_ctrl, 16);
	kbu_u64(o, "sci_int", "SCI_INT", f->sci_int);
	kbu_hex(o, "pm_tmr_blk", "PM_TMR_BLK", f->pm_tmr_blk, 0);
	kbu_u64(o, "pm_tmr_len", "PM_TMR_LEN", f->pm_tmr_len);
	if (f->has_x_pm_tmr_blk) {
		gas_text(&f->x_pm_tmr_blk, buf, sizeof(buf));
		kbu_display(o, "x_pm_tmr_blk_text", "X_PM_TMR_BLK", "%s", buf);
		kbu_hex(o, "x_pm_tmr_blk", "", f->x_pm_tmr_blk.addr, 0);
		kbu_u64(o, "x_pm_tmr_blk_space", "", f->x_pm_tmr_blk.space);
	}
	if (f->has_flags)
		kbu_bool(o, "tmr_val_ext", "", f->flags & KBU_FADT_TMR_VAL_EXT);
	if (f->has_iapc_boot_arch) {
		kbu_hex(o, "iapc_boot_arch", "IAPC_BOOT_ARCH", f->iapc_boot_arch, 4);
		bits_text(f->iapc_boot_arch, boot_arch_flags, buf, sizeof(buf));
		kbu_display(o, "iapc_boot_arch_text", "boot arch flags", "%s", buf);
		bits_list(o, "iapc_boot_arch_names", f->iapc_boot_arch, boot_arch_flags);
	} else {
		kbu_null(o, "iapc_boot_arch", "IAPC_BOOT_ARCH");
		kbu_null(o, "iapc_boot_arch_names", "");
	}
	if (f->has_reset_reg && (f->has_flags && (f->flags & KBU_FADT_RESET_REG_SUP))) {
		gas_text(&f->reset_reg, buf, sizeof(buf));
		kbu_display(o, "reset_reg_text", "RESET_REG", "%s, value 0x%02x", buf, f->reset_value);
		kbu_hex(o, "reset_reg", "", f->reset_reg.addr, 0);
		kbu_u64(o, "reset_value", "", f->reset_value);
	}
	if (f->hypervisor_id[0])
		kbu_str(o, "hypervisor_id", "hypervisor vendor", f->hypervisor_id);
	add_findings(a, KBU_ACPI_SEC_FADT, o);
}

static void report_summary(const struct kbu_acpi *a, struct kbu_node *root)
{
	struct kbu_node *o = kbu_obj(root, "summary", "Summary");
	struct kbu_node *l = kbu_list(o, "signatures", "tables");
	for (size_t i = 0; i < a->ntables; i++)
		kbu_item_str(l, a->tables[i].sig);
	size_t bad = 0;
	for (size_t i = 0; i < a->ntables; i++)
		bad += a->tables[i].has_checksum && (!a->tables[i].sum_checked || a->tables[i].sum);
	kbu_u64(o, "checksums_verified", "checksums verified", (uint64_t)(a->ntables - bad));
	kbu_u64(o, "checksums_not_ok", "checksums bad or unverified", bad);
	if (a->madt.present)
		kbu_u64(o, "cpus", "CPUs (MADT)", a->madt.ncpus_enabled);
	else
		kbu_null(o, "cpus", "CPUs (MADT)");
	kbu_bool(o, "dsdt", "DSDT present", kbu_acpi_table(a, "DSDT", 0) != NULL &&
					      kbu_acpi_table(a, "DSDT", 0)->state == KBU_ACPI_T_OK);
	kbu_bool(o, "hw_reduced", "HW-reduced ACPI",
		 a->fadt.has_flags && (a->fadt.flags & KBU_FADT_HW_REDUCED_ACPI));
	add_findings(a, KBU_ACPI_SEC_SUMMARY, o);
	if (a->nsuppressed)
		kbu_problem(o, KBU_SEV_WARN, "%zu further findings not listed (only the first %d are)",
			    a->nsuppressed, KBU_ACPI_MAX_FINDINGS);
}

/* One table: its header, then what kbu decodes of it, or its bytes. */
static void report_one(const struct kbu_acpi *a, const struct kbu_acpi_table *t,
		       struct kbu_node *root)
{
	struct kbu_node *o = kbu_obj(root, "table", t->sig);
	kbu_str(o, "signature", "signature", t->sig);
	kbu_hex(o, "address", "physical address", t->addr, 8);
	kbu_str(o, "via", "reached through", t->via);
	kbu_str(o, "state", "state", state_name(t->state));
	kbu_u64(o, "length", "length", t->length);
	kbu_u64(o, "revision", "revision", t->revision);
	checksum_fields(o, t, "checksum", "checksum ok");
	kbu_str(o, "oem_id", "OEM ID", t->oem_id);
	kbu_str(o, "oem_table_id", "OEM table ID", t->oem_table_id);
	kbu_hex(o, "oem_revision", "OEM revision", t->oem_revision, 8);
	kbu_str(o, "creator_id", "creator ID", t->creator_id);
	kbu_hex(o, "creator_revision", "creator revision", t->creator_revision, 8);
	if (t->data && (strcmp(t->sig, "XSDT") == 0 || strcmp(t->sig, "RSDT") == 0)) {
		size_t esz = t->sig[0] == 'X' ? 8 : 4;
		struct kbu_node *l = kbu_list(o, "entries", "Entries");
		for (size_t off = KBU_ACPI_HEADER_SIZE; off + esz <= t->length; off += esz) {
			uint64_t p = esz == 8 ? kbu_le64(t->data + off) : kbu_le32(t->data + off);
			struct kbu_node *r = kbu_row(l);
			kbu_u64(r, "index", "#", (off - KBU_ACPI_HEADER_SIZE) / esz);
			kbu_hex(r, "address", "Address", p, 8);
			const char *sig = "";
			for (size_t i = 0; i < a->ntables; i++)
				if (a->tables[i].addr == p && a->tables[i].state != KBU_ACPI_T_UNREADABLE)
					sig = a->tables[i].sig;
			kbu_str(r, "signature", "Table", sig);
		}
	} else if (t->data && strcmp(t->sig, "APIC") != 0 && strcmp(t->sig, "FACP") != 0) {
		enum { SHOW = 4096 };
		size_t n = t->length < SHOW ? t->length : SHOW;
		kbu_bytes(o, "bytes", "", t->data, n);
		kbu_u64(o, "bytes_shown", "", n);
		for (size_t off = 0; off < n; off += 16) {
			char hex[64], asc[20];
			size_t k, hl = 0;
			for (k = 0; k < 16 && off + k < n; k++) {
				uint8_t c = t->data[off + k];
				hl += (size_t)snprintf(hex + hl, sizeof(hex) - hl, "%02x ", c);
				asc[k] = c >= 0x20 && c < 0x7f ? (char)c : '.';
			}
			asc[k] = 0;
			kbu_textf(o, "%04zx  %-48s |%s|", off, hex, asc);
		}
		if (n < t->length)
			kbu_textf(o, "... (the first %zu of %u bytes)", n, t->length);
	}
}

int kbu_acpi_report(const struct kbu_acpi *a, const char *sig, struct kbu_node *node,
		    struct kbu_err *err)
{
	if (!a->found)
		return 0;
	if (!sig) {
		report_rsdp(a, node);
		report_tables(a, node);
		report_madt(a, node);
		report_fadt(a, node);
		report_summary(a, node);
		return 0;
	}
	char want[5];
	snprintf(want, sizeof(want), "%s", strcmp(sig, "MADT") == 0 ? "APIC"
					   : strcmp(sig, "FADT") == 0 ? "FACP" : sig);
	if (strcmp(want, "RSDP") == 0) {
		report_rsdp(a, node);
		return 0;
	}
	int any = 0;
	for (size_t i = 0; i < a->ntables; i++) {
		if (strcmp(a->tables[i].sig, want) != 0)
			continue;
		if (!any)
			report_one(a, &a->tables[i], node);
		any++;
	}
	if (!any) {
		char have[256] = "";
		for (size_t i = 0, l = 0; i < a->ntables && l + 6 < sizeof(have); i++)
			l += (size_t)snprintf(have + l, sizeof(have) - l, "%s%s", i ? " " : "",
					      a->tables[i].sig);
		return kbu_err_set(err, KBU_ENOTFOUND, "no %s table: the firmware left %s", want,
				   have[0] ? have : "no table behind its RSDP");
	}
	if (strcmp(want, "APIC") == 0)
		report_madt(a, node);
	else if (strcmp(want, "FACP") == 0)
		report_fadt(a, node);
	else
		add_findings(a, KBU_ACPI_SEC_TABLES, node);
	if (any > 1)
		kbu_textf(node, "%d %s tables: the first is shown", any, want);
	return 0;
}
