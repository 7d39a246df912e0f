/* kbu: MP floating pointer search, configuration table walk and cross-checks. */
#include "kbu/mptable.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/mem.h"
#include "kbu/util.h"
#include "readmem.h"

#define PAGE 4096ull

/* Records a finding; returns it so the caller can add its values (NULL when capped). */
static struct kbu_finding_rec *problem(struct kbu_mptable *t, int sev, int section,
				       const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static struct kbu_finding_rec *problem(struct kbu_mptable *t, int sev, int section,
				       const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct kbu_finding_rec *p = kbu_finding_rec_add(&t->problems, &t->nproblems, &t->nsuppressed,
							KBU_MP_MAX_PROBLEMS, sev, section, code,
							fmt, ap);
	va_end(ap);
	return p;
}

/* Hex of bytes [from, to) of buf into out. */
static void hex_bytes(const uint8_t *buf, size_t from, size_t to, char *out, size_t outlen)
{
	size_t l = 0;
	out[0] = 0;
	for (size_t i = from; i < to && l + 4 < outlen; i++)
		l += (size_t)snprintf(out + l, outlen - l, "%s%02x", i > from ? " " : "", buf[i]);
}

/* ---- floating pointer ---- */

static void decode_fp(const uint8_t *b, uint64_t addr, const char *where, struct kbu_mp_fp *fp)
{
	memset(fp, 0, sizeof(*fp));
	fp->addr = addr;
	fp->where = where;
	fp->physptr = kbu_le32(b + 4);
	fp->length = b[8];
	fp->spec_rev = b[9];
	fp->checksum = b[10];
	memcpy(fp->feature, b + 11, 5);
}

/*
 * Searches [start, start+len) on 16-byte boundaries. Returns 1 with a valid
 * pointer, 0 without one (the first signature whose checksum or length is
 * wrong is kept in *bad), -1 when the source failed (err set). *searched
 * grows by the bytes that memory held.
 */
static int search_region(struct kbu_mem *m, uint64_t start, size_t len, const char *where,
			 struct kbu_mp_fp *fp, struct kbu_mp_fp *bad, int *have_bad,
			 size_t *searched, struct kbu_err *err)
{
	uint8_t *buf = malloc(len);
	if (!buf)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory searching %s", where);
	size_t n;
	if (kbu_read_prefix(m, start, buf, len, &n, err) == KBU_READ_FAILED) {
		free(buf);
		return kbu_err_prefix(err, "searching %s (0x%" PRIx64 "-0x%" PRIx64
				      ") for the MP floating pointer",
				      where, start, start + len - 1);
	}
	*searched += n;
	int ret = 0;
	for (size_t off = 0; off + KBU_MP_FP_SIZE <= n; off += 16) {
		if (memcmp(buf + off, "_MP_", 4) != 0)
			continue;
		struct kbu_mp_fp c;
		decode_fp(buf + off, start + off, where, &c);
		size_t flen = (size_t)c.length * 16;
		if (flen >= KBU_MP_FP_SIZE && off + flen <= n) {
			c.sum = kbu_sum8(buf + off, flen);
			if (c.sum == 0) {
				*fp = c;
				ret = 1;
				break;
			}
		} else {
			c.sum = kbu_sum8(buf + off, KBU_MP_FP_SIZE);
		}
		if (!*have_bad) {
			*bad = c;
			*have_bad = 1;
		}
	}
	free(buf);
	return ret;
}

/* A transport fault (or a source that cannot read physical memory) met while
 * searching is the answer, not "not found" (reads that failed were skipped as
 * missing memory). */
static int search_failed(struct kbu_mem *m, struct kbu_err *err)
{
	struct kbu_err e;
	if (!kbu_mem_source_error(m, &e))
		return 0;
	*err = e;
	kbu_err_prefix(err, "while searching for the MP floating pointer");
	return 1;
}

static int find_fp(struct kbu_mem *m, struct kbu_mptable *t, struct kbu_mp_fp *fp,
		   struct kbu_err *err)
{
	kbu_mem_clear_source_error(m);
	struct kbu_mp_fp bad;
	int have_bad = 0;
	uint16_t ebda_seg = 0, basemem_kb = 0;
	struct kbu_err e;
	uint8_t bda[2][2];
	int r0 = kbu_try_read(m, 0x40e, bda[0], 2, &e);
	int r1 = r0 == KBU_READ_FAILED ? r0 : kbu_try_read(m, 0x413, bda[1], 2, &e);
	if (r0 == KBU_READ_FAILED || r1 == KBU_READ_FAILED) {
		*err = e;
		return kbu_err_prefix(err, "reading the BIOS data area (0x40e, 0x413)");
	}
	int bda_ok = r0 == KBU_READ_OK && r1 == KBU_READ_OK;
	if (bda_ok) {
		ebda_seg = kbu_le16(bda[0]);
		basemem_kb = kbu_le16(bda[1]);
	} else if (t) {
		problem(t, KBU_SEV_NOTE, KBU_MP_SEC_FP, "mptable.bda_unreadable",
			"BIOS data area (0x40e, 0x413) not readable: EBDA and base-memory "
			"searches skipped");
	}
	size_t searched = 0;
	int r;
	uint64_t ebda = (uint64_t)ebda_seg << 4;
	if (ebda && (r = search_region(m, ebda, 1024, "EBDA", fp, &bad, &have_bad, &searched,
				       err)) != 0)
		return r > 0 ? 0 : -1;
	uint64_t top = (uint64_t)basemem_kb * 1024;
	if (top >= 1024 && top != 0x9fc00 + 1024 && top != ebda + 1024 &&
	    (r = search_region(m, top - 1024, 1024, "last KiB of base memory", fp, &bad, &have_bad,
			       &searched, err)) != 0)
		return r > 0 ? 0 : -1;
	if (ebda != 0x9fc00 && (r = search_region(m, 0x9fc00, 1024, "0x9fc00 (639 KiB)", fp, &bad,
						  &have_bad, &searched, err)) != 0)
		return r > 0 ? 0 : -1;
	if ((r = search_region(m, 0xe0000, 0x20000, "BIOS ROM 0xe0000-0xfffff", fp, &bad,
			       &have_bad, &searched, err)) != 0)
		return r > 0 ? 0 : -1;
	if (have_bad) {
		*fp = bad;
		return 0;
	}
	if (search_failed(m, err))
		return -1;
	if (searched == 0)
		return kbu_err_set(err, KBU_EFAULT,
				   "cannot search for the MP floating pointer: neither 0x9fc00 nor "
				   "0xe0000-0xfffff is in this %s source's memory",
				   kbu_mem_kind(m));
	return kbu_err_set(err, KBU_ENOTFOUND,
			   "no MP floating pointer (\"_MP_\") in the EBDA (segment 0x%04x), the last "
			   "KiB of base memory (%u KiB), 0x9fc00 or 0xe0000-0xfffff",
			   ebda_seg, basemem_kb);
}

int kbu_mptable_find_fp(struct kbu_mem *m, struct kbu_mp_fp *fp, struct kbu_err *err)
{
	return find_fp(m, NULL, fp, err);
}

static void check_fp(struct kbu_mptable *t)
{
	const struct kbu_mp_fp *fp = &t->fp;
	if (fp->length != 1)
		problem(t, fp->length == 0 ? KBU_SEV_ERROR : KBU_SEV_WARN, KBU_MP_SEC_FP, "mptable.fp_length_bad",
			"length is %u paragraphs (%u bytes); the MP spec says 1 (16 bytes)",
			fp->length, fp->length * 16u);
	if (fp->sum != 0)
		problem(t, KBU_SEV_ERROR, KBU_MP_SEC_FP, "mptable.fp_checksum_bad",
			"floating pointer checksum bad: byte is 0x%02x, bytes sum to 0x%02x "
			"(expected 0x00); a correct checksum byte would be 0x%02x",
			fp->checksum, fp->sum, (uint8_t)(fp->checksum - fp->sum));
	if (fp->spec_rev != 1 && fp->spec_rev != 4)
		problem(t, KBU_SEV_WARN, KBU_MP_SEC_FP, "mptable.fp_spec_rev_unknown",
			"spec revision %u is neither 1 (1.1) nor 4 (1.4)", fp->spec_rev);
	if (fp->feature[0] != 0) {
		problem(t, KBU_SEV_NOTE, KBU_MP_SEC_FP, "mptable.default_configuration",
			"MP feature byte 1 = %u: default configuration type %u, no config table",
			fp->feature[0], fp->feature[0]);
		if (fp->physptr)
			problem(t, KBU_SEV_WARN, KBU_MP_SEC_FP, "mptable.default_configuration_with_table",
				"a default configuration is declared but the config table pointer "
				"is 0x%08" PRIx32,
				fp->physptr);
	} else if (fp->physptr == 0) {
		problem(t, KBU_SEV_ERROR, KBU_MP_SEC_FP, "mptable.no_config_table",
			"no default configuration and no config table pointer (0)");
	}
}

/* ---- config table ---- */

static size_t base_entry_len(uint8_t type)
{
	switch (type) {
	case KBU_MP_PROC: return 20;
	case KBU_MP_BUS:
	case KBU_MP_IOAPIC:
	case KBU_MP_IOINT:
	case KBU_MP_LINT: return 8;
	default: return 0;
	}
}

static struct kbu_mp_entry *add_entry(struct kbu_mptable *t)
{
	struct kbu_mp_entry *n = realloc(t->entries, (t->nentries + 1) * sizeof(*n));
	if (!n)
		return NULL;
	t->entries = n;
	memset(&n[t->nentries], 0, sizeof(*n));
	return &n[t->nentries++];
}

/* A fixed-size text field of the table: up to its first NUL, trailing blanks
 * cut, other bytes than printable ASCII escaped (kbu_escape). */
static void copy_str(char *dst, size_t cap, const uint8_t *src, size_t n)
{
	size_t len = strnlen((const char *)src, n);
	while (len && src[len - 1] == ' ')
		len--;
	kbu_escape(src, len, NULL, dst, cap);
}

static void decode_entry(struct kbu_mp_entry *en, const uint8_t *b)
{
	memcpy(en->raw, b, en->len < sizeof(en->raw) ? en->len : sizeof(en->raw));
	switch (en->type) {
	case KBU_MP_PROC:
		en->u.proc.apic_id = b[1];
		en->u.proc.version = b[2];
		en->u.proc.flags = b[3];
		en->u.proc.signature = kbu_le32(b + 4);
		en->u.proc.features = kbu_le32(b + 8);
		break;
	case KBU_MP_BUS: {
		en->u.bus.id = b[1];
		copy_str(en->u.bus.type, sizeof(en->u.bus.type), b + 2, 6);
		break;
	}
	case KBU_MP_IOAPIC:
		en->u.ioapic.id = b[1];
		en->u.ioapic.version = b[2];
		en->u.ioapic.flags = b[3];
		en->u.ioapic.addr = kbu_le32(b + 4);
		break;
	case KBU_MP_IOINT:
	case KBU_MP_LINT:
		en->u.intr.itype = b[1];
		en->u.intr.flags = kbu_le16(b + 2);
		en->u.intr.src_bus = b[4];
		en->u.intr.src_irq = b[5];
		en->u.intr.dst_apic = b[6];
		en->u.intr.dst_pin = b[7];
		break;
	case KBU_MP_EXT_SASM:
		en->u.sasm.bus = b[2];
		en->u.sasm.addr_type = b[3];
		en->u.sasm.base = kbu_le64(b + 4);
		en->u.sasm.length = kbu_le64(b + 12);
		break;
	case KBU_MP_EXT_BHD:
		en->u.bhd.bus = b[2];
		en->u.bhd.info = b[3];
		en->u.bhd.parent = b[4];
		break;
	case KBU_MP_EXT_CBASM:
		en->u.cbasm.bus = b[2];
		en->u.cbasm.modifier = b[3];
		en->u.cbasm.range_list = kbu_le32(b + 4);
		break;
	default:
		break;
	}
}


/* A bus entry's type is 6 upper-case letters/digits padded with spaces ("ISA   "). */
static int looks_like_bus_type(const uint8_t *tb, size_t off, size_t avail)
{
	if (off + 8 > avail)
		return 0;
	int letters = 0;
	for (size_t i = off + 2; i < off + 8; i++) {
		uint8_t c = tb[i];
		if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
			letters++;
		else if (c != ' ')
			return 0;
	}
	return letters >= 2 && tb[off + 2] != ' ';
}

static void walk_base(struct kbu_mptable *t, const uint8_t *tb, size_t avail)
{
	const struct kbu_mp_header *h = &t->hdr;
	size_t off = KBU_MP_HEADER_SIZE;
	while (off < avail) {
		uint8_t type = tb[off];
		size_t len = base_entry_len(type);
		if (len == 0) {
			char around[128];
			size_t from = off >= 8 ? off - 8 : 0;
			size_t to = off + 16 < avail ? off + 16 : avail;
			hex_bytes(tb, from, to, around, sizeof(around));
			char hint[96] = "";
			if (looks_like_bus_type(tb, off, avail))
				snprintf(hint, sizeof(hint),
					 " (bytes 2-7 spell \"%.6s\": a bus entry with a wrong type "
					 "byte?)",
					 (const char *)tb + off + 2);
			problem(t, KBU_SEV_ERROR, KBU_MP_SEC_ENTRIES, "mptable.entry_unknown_type",
				"unknown entry type %u (0x%02x) at offset 0x%zx (phys 0x%" PRIx64
				") after %zu entries; bytes 0x%zx-0x%zx: %s%s; the walk stops here",
				type, type, off, h->addr + off, t->nbase, from, to, around, hint);
			return;
		}
		if (off + len > h->base_len) {
			problem(t, KBU_SEV_ERROR, KBU_MP_SEC_ENTRIES, "mptable.entry_crosses_end",
				"entry type %u at offset 0x%zx (%zu bytes) crosses the end of the "
				"base table (length 0x%x); the walk stops here",
				type, off, len, h->base_len);
			return;
		}
		if (off + len > avail) {
			problem(t, KBU_SEV_ERROR, KBU_MP_SEC_ENTRIES, "mptable.entry_past_memory",
				"entry type %u at offset 0x%zx (phys 0x%" PRIx64
				") runs past the end of readable memory; the walk stops here",
				type, off, h->addr + off);
			return;
		}
		struct kbu_mp_entry *en = add_entry(t);
		if (!en)
			return;
		en->offset = (uint32_t)off;
		en->type = type;
		en->len = (uint8_t)len;
		decode_entry(en, tb + off);
		t->nbase++;
		off += len;
	}
	t->walk_complete = off == h->base_len;
}

static void walk_ext(struct kbu_mptable *t, const uint8_t *eb, size_t len)
{
	size_t off = 0;
	uint32_t base = t->hdr.base_len;
	while (off < len) {
		if (off + 2 > len) {
			problem(t, KBU_SEV_ERROR, KBU_MP_SEC_ENTRIES, "mptable.ext_entry_truncated",
				"extended table ends inside an entry header at offset 0x%zx",
				base + off);
			return;
		}
		uint8_t type = eb[off], elen = eb[off + 1];
		if (elen < 2) {
			problem(t, KBU_SEV_ERROR, KBU_MP_SEC_ENTRIES, "mptable.ext_entry_length_bad",
				"extended entry type %u at offset 0x%zx has length %u: the walk "
				"stops here",
				type, base + off, elen);
			return;
		}
		if (off + elen > len) {
			problem(t, KBU_SEV_ERROR, KBU_MP_SEC_ENTRIES, "mptable.ext_entry_crosses_end",
				"extended entry type %u at offset 0x%zx (%u bytes) crosses the end "
				"of the extended table (length 0x%zx); the walk stops here",
				type, base + off, elen, len);
			return;
		}
		size_t want = type == KBU_MP_EXT_SASM ? 20
			      : (type == KBU_MP_EXT_BHD || type == KBU_MP_EXT_CBASM) ? 8 : 0;
		struct kbu_mp_entry *en = add_entry(t);
		if (!en)
			return;
		en->offset = (uint32_t)(base + off);
		en->type = type;
		en->len = elen;
		en->extended = 1;
		if (want == 0) {
			memcpy(en->raw, eb + off, elen < sizeof(en->raw) ? elen : sizeof(en->raw));
			problem(t, KBU_SEV_NOTE, KBU_MP_SEC_ENTRIES, "mptable.ext_entry_unknown",
				"unknown extended entry type %u at offset 0x%zx skipped by its "
				"length (%u bytes)",
				type, base + off, elen);
		} else if (elen != want) {
			memcpy(en->raw, eb + off, elen < sizeof(en->raw) ? elen : sizeof(en->raw));
			en->type = 0xff; /* shown raw */
			problem(t, KBU_SEV_WARN, KBU_MP_SEC_ENTRIES, "mptable.ext_entry_length_unexpected",
				"extended entry type %u at offset 0x%zx has length %u, expected %zu: "
				"not decoded",
				type, base + off, elen, want);
		} else {
			decode_entry(en, eb + off);
		}
		off += elen;
	}
}

/* ---- what a walker that trusts entry_count reads ---- */

/* "one entry", "2 entries". */
static const char *entries_words(size_t n, char *buf, size_t len)
{
	if (n == 1)
		snprintf(buf, len, "one entry");
	else
		snprintf(buf, len, "%zu entries", n);
	return buf;
}

const char *kbu_mptable_count_outcome_name(int outcome)
{
	switch (outcome) {
	case KBU_MP_COUNT_SAME: return "same";
	case KBU_MP_COUNT_SHORT: return "short";
	case KBU_MP_COUNT_PAST_END: return "past_end";
	case KBU_MP_COUNT_UNKNOWN_TYPE: return "unknown_type";
	case KBU_MP_COUNT_UNREADABLE: return "unreadable";
	default: return "none";
	}
}

/*
 * FreeBSD's mptable_walk_table: entry_count entries, each as long as its type
 * says, stopping ("Unknown MP Config Entry N") at a type it does not know.
 * Bytes past the table come from guest memory, a page at a time. Returns -1
 * (err set) only when the source failed.
 */
static int count_walk(struct kbu_mem *m, struct kbu_mptable *t, const uint8_t *tb, size_t avail,
		      struct kbu_err *err)
{
	struct kbu_mp_count_walk *w = &t->count_walk;
	const struct kbu_mp_header *h = &t->hdr;
	memset(w, 0, sizeof(*w));
	uint8_t page[4096];
	uint64_t page_at = UINT64_MAX; /* physical address of page[0] */
	size_t off = KBU_MP_HEADER_SIZE;
	for (unsigned i = 0; i < h->entry_count; i++) {
		uint8_t type;
		uint64_t a = h->addr + off;
		if (off < avail) {
			type = tb[off];
		} else {
			if (page_at == UINT64_MAX || a < page_at || a >= page_at + sizeof(page)) {
				page_at = a & ~(uint64_t)(sizeof(page) - 1);
				int rr = kbu_try_read(m, page_at, page, sizeof(page), err);
				if (rr == KBU_READ_FAILED)
					return kbu_err_prefix(err, "reading past the MP config table at "
							      "0x%" PRIx64, a);
				if (rr == KBU_READ_ABSENT) {
					w->outcome = KBU_MP_COUNT_UNREADABLE;
					w->stop_offset = (uint32_t)off;
					w->stop_addr = a;
					return 0;
				}
			}
			type = page[a - page_at];
		}
		size_t len = base_entry_len(type);
		if (len == 0) {
			w->outcome = KBU_MP_COUNT_UNKNOWN_TYPE;
			w->stop_offset = (uint32_t)off;
			w->stop_addr = a;
			w->stop_type = type;
			return 0;
		}
		w->entries_read++;
		w->entries_past_end += off >= h->base_len;
		w->cpus += type == KBU_MP_PROC;
		w->ioapics += type == KBU_MP_IOAPIC;
		off += len;
	}
	if (off > h->base_len)
		w->outcome = KBU_MP_COUNT_PAST_END;
	else if (w->entries_read < t->nbase)
		w->outcome = KBU_MP_COUNT_SHORT;
	else
		w->outcome = KBU_MP_COUNT_SAME;
	return 0;
}

/* The count walk as one finding a porter reads at a glance. */
static void report_count_walk(struct kbu_mptable *t)
{
	const struct kbu_mp_count_walk *w = &t->count_walk;
	const struct kbu_mp_header *h = &t->hdr;
	char words[32];
	size_t ncpu = kbu_mptable_ncpus(t);
	struct kbu_finding_rec *p = NULL;
	/* Entries counted beyond those the table holds (when its walk reached its end). */
	size_t extra = h->entry_count > t->nbase ? h->entry_count - t->nbase : 0;
	switch (w->outcome) {
	case KBU_MP_COUNT_SHORT:
		if (!t->walk_complete)
			p = problem(t, KBU_SEV_WARN, KBU_MP_SEC_HEADER, "mptable.entry_count_walk_stopped",
				    "entry count is %u; %zu entries were walked before the walk "
				    "stopped",
				    h->entry_count, t->nbase);
		else if (h->entry_count == 0)
			p = problem(t, KBU_SEV_WARN, KBU_MP_SEC_HEADER, "mptable.entry_count_zero",
				    "entry count is 0 but the table holds %zu entries (walked by base "
				    "table length); a walker that trusts the count reads none of them "
				    "and finds no processor (QEMU's qboot writes 0)",
				    t->nbase);
		else
			p = problem(t, KBU_SEV_WARN, KBU_MP_SEC_HEADER, "mptable.entry_count_short",
				    "entry count is %u but the table holds %zu entries (walked by base "
				    "table length); a walker that trusts the count reads only the first "
				    "%zu: %zu of the %zu processors%s",
				    h->entry_count, t->nbase, w->entries_read, w->cpus, ncpu,
				    w->ioapics ? "" : ", no I/O APIC");
		break;
	case KBU_MP_COUNT_PAST_END:
		p = problem(t, KBU_SEV_ERROR, KBU_MP_SEC_HEADER, "mptable.entry_count_past_end",
			    "entry_count %u counts %s more than the %u-byte table holds; a walker "
			    "that trusts it reads %zu entr%s past the end of the table from whatever "
			    "memory follows (%zu of them processor entries)",
			    h->entry_count, entries_words(extra, words, sizeof(words)), h->base_len,
			    w->entries_past_end, w->entries_past_end == 1 ? "y" : "ies",
			    w->cpus - (ncpu < w->cpus ? ncpu : w->cpus));
		break;
	case KBU_MP_COUNT_UNKNOWN_TYPE:
		if (w->stop_offset < h->base_len) {
			p = problem(t, KBU_SEV_WARN, KBU_MP_SEC_HEADER, "mptable.entry_count_walk_stopped",
				    "entry count is %u; %zu entries were walked before the walk "
				    "stopped; a walker that trusts the count meets the same type %u at "
				    "offset 0x%x: 'Unknown MP Config Entry %u'",
				    h->entry_count, t->nbase, w->stop_type, w->stop_offset, w->stop_type);
		} else if (w->stop_offset == h->base_len) {
			p = problem(t, KBU_SEV_ERROR, KBU_MP_SEC_HEADER, "mptable.entry_count_past_end",
				    "entry_count %u counts %s more than the %u-byte table holds; a walker "
				    "that trusts it reads byte 0x%02x (%u) after the table (phys 0x%" PRIx64
				    "): 'Unknown MP Config Entry %u'",
				    h->entry_count, entries_words(extra, words, sizeof(words)),
				    h->base_len, w->stop_type, w->stop_type, w->stop_addr, w->stop_type);
		} else {
			p = problem(t, KBU_SEV_ERROR, KBU_MP_SEC_HEADER, "mptable.entry_count_past_end",
				    "entry_count %u counts %s more than the %u-byte table holds; a walker "
				    "that trusts it reads %zu entr%s past the end, then byte 0x%02x (%u) "
				    "0x%x bytes after the table (phys 0x%" PRIx64 "): 'Unknown MP Config "
				    "Entry %u'",
				    h->entry_count, entries_words(extra, words, sizeof(words)),
				    h->base_len, w->entries_past_end, w->entries_past_end == 1 ? "y" : "ies",
				    w->stop_type, w->stop_type, w->stop_offset - h->base_len, w->stop_addr,
				    w->stop_type);
		}
		kbu_finding_rec_field(p, "byte", w->stop_type);
		kbu_finding_rec_field(p, "address", w->stop_addr);
		break;
	case KBU_MP_COUNT_UNREADABLE:
		p = problem(t, KBU_SEV_ERROR, KBU_MP_SEC_HEADER, "mptable.entry_count_past_memory",
			    "entry_count %u counts %s more than the %u-byte table holds; a walker that "
			    "trusts it runs past guest memory at 0x%" PRIx64,
			    h->entry_count, entries_words(extra, words, sizeof(words)), h->base_len,
			    w->stop_addr);
		kbu_finding_rec_field(p, "address", w->stop_addr);
		break;
	default:
		return;
	}
	kbu_finding_rec_field(p, "entry_count", h->entry_count);
	kbu_finding_rec_field(p, "entries", t->nbase);
	kbu_finding_rec_field(p, "table_length", h->base_len);
	kbu_finding_rec_field(p, "entries_read", w->entries_read);
}

/*
 * A bad checksum explained by entry_count alone: the firmware computed the
 * checksum over the count it wrote (qboot 0; Firecracker one more than its
 * entries, its floating pointer counted), and a kernel rewrote the count in
 * place afterwards (FreeBSD does, for QEMU's 0). A note naming that cause.
 */
static void check_sum_cause(struct kbu_mptable *t)
{
	const struct kbu_mp_header *h = &t->hdr;
	if (!h->sum_checked || h->sum == 0)
		return;
	uint8_t now = (uint8_t)((h->entry_count & 0xff) + (h->entry_count >> 8));
	struct { uint32_t count; const char *who; } cand[] = {
		{0, "QEMU's qboot writes 0; FreeBSD patches the count in place"},
		{(uint32_t)t->nbase + 1, "one more than the entries, as Firecracker counts its "
					 "floating pointer too; the count was corrected in place"},
	};
	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
		uint32_t c = cand[i].count;
		if (c == h->entry_count || c > 0xffff || (i == 1 && !t->walk_complete))
			continue;
		if ((uint8_t)(h->sum - now + (c & 0xff) + (c >> 8)) != 0)
			continue;
		struct kbu_finding_rec *p = problem(
			t, KBU_SEV_NOTE, KBU_MP_SEC_HEADER, "mptable.checksum_after_count_rewrite",
			"base table checksum bad only because entry_count changed: the checksum would "
			"be right with entry count %u: the count (%u) was written after the firmware "
			"made the table (%s)",
			c, h->entry_count, cand[i].who);
		kbu_finding_rec_field(p, "entry_count", h->entry_count);
		kbu_finding_rec_field(p, "firmware_entry_count", c);
		kbu_finding_rec_field(p, "checksum", h->checksum);
		return;
	}
	struct kbu_finding_rec *p = problem(
		t, KBU_SEV_ERROR, KBU_MP_SEC_HEADER, "mptable.checksum_bad",
		"base table checksum bad: byte is 0x%02x, the 0x%x bytes sum to 0x%02x (expected "
		"0x00); a correct checksum byte would be 0x%02x",
		h->checksum, h->base_len, h->sum, (uint8_t)(h->checksum - h->sum));
	kbu_finding_rec_field(p, "checksum", h->checksum);
	kbu_finding_rec_field(p, "sum", h->sum);
	kbu_finding_rec_field(p, "expected", (uint8_t)(h->checksum - h->sum));
}

/* Returns -1 (err set) only when the source failed; a defect of the table is a problem. */
static int read_config(struct kbu_mem *m, struct kbu_mptable *t, uint64_t pa, struct kbu_err *err)
{
	uint8_t hb[KBU_MP_HEADER_SIZE];
	int rr = kbu_try_read(m, pa, hb, sizeof(hb), err);
	if (rr == KBU_READ_FAILED)
		return kbu_err_prefix(err, "reading the MP config table header at 0x%" PRIx64, pa);
	if (rr == KBU_READ_ABSENT) {
		problem(t, KBU_SEV_ERROR, KBU_MP_SEC_HEADER, "mptable.config_outside_memory",
			"config table pointer 0x%08" PRIx64 " points outside memory", pa);
		return 0;
	}
	struct kbu_mp_header *h = &t->hdr;
	h->addr = pa;
	copy_str(h->signature, sizeof(h->signature), hb, 4);
	if (memcmp(hb, "PCMP", 4) != 0) {
		char hex[64];
		hex_bytes(hb, 0, 16, hex, sizeof(hex));
		problem(t, KBU_SEV_ERROR, KBU_MP_SEC_HEADER, "mptable.config_signature_bad",
			"no \"PCMP\" signature at config table pointer 0x%08" PRIx64 ": %s", pa, hex);
		return 0;
	}
	t->have_header = 1;
	h->base_len = kbu_le16(hb + 4);
	h->spec_rev = hb[6];
	h->checksum = hb[7];
	copy_str(h->oem_id, sizeof(h->oem_id), hb + 8, 8);
	copy_str(h->product_id, sizeof(h->product_id), hb + 16, 12);
	h->oem_table = kbu_le32(hb + 28);
	h->oem_table_size = kbu_le16(hb + 32);
	h->entry_count = kbu_le16(hb + 34);
	h->lapic_addr = kbu_le32(hb + 36);
	h->ext_len = kbu_le16(hb + 40);
	h->ext_checksum = hb[42];

	if (h->spec_rev != 1 && h->spec_rev != 4)
		problem(t, KBU_SEV_WARN, KBU_MP_SEC_HEADER, "mptable.spec_rev_unknown",
			"spec revision %u is neither 1 (1.1) nor 4 (1.4)", h->spec_rev);
	if (h->lapic_addr == 0)
		problem(t, KBU_SEV_WARN, KBU_MP_SEC_HEADER, "mptable.lapic_address_zero",
			"local APIC address is 0");
	if (h->base_len < KBU_MP_HEADER_SIZE) {
		problem(t, KBU_SEV_ERROR, KBU_MP_SEC_HEADER, "mptable.base_length_short",
			"base table length %u is shorter than the %d-byte header: no entries "
			"walked",
			h->base_len, KBU_MP_HEADER_SIZE);
		return 0;
	}
	uint8_t *tb = malloc(h->base_len);
	if (!tb)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory for the MP config table");
	size_t avail;
	if (kbu_read_prefix(m, pa, tb, h->base_len, &avail, err) == KBU_READ_FAILED) {
		free(tb);
		return kbu_err_prefix(err, "reading the MP config table at 0x%" PRIx64, pa);
	}
	if (avail < h->base_len) {
		problem(t, KBU_SEV_ERROR, KBU_MP_SEC_HEADER, "mptable.base_length_past_memory",
			"base table length 0x%x runs past the end of memory: only 0x%zx bytes "
			"readable (0x%08" PRIx64 "-0x%08" PRIx64 "); checksum not verified",
			h->base_len, avail, pa, pa + avail);
	} else {
		h->sum = kbu_sum8(tb, h->base_len);
		h->sum_checked = 1;
	}
	walk_base(t, tb, avail);
	check_sum_cause(t);
	int cw = count_walk(m, t, tb, avail, err);
	free(tb);
	if (cw != 0)
		return -1;
	report_count_walk(t);

	if (h->oem_table && !h->oem_table_size)
		problem(t, KBU_SEV_WARN, KBU_MP_SEC_HEADER, "mptable.oem_table_size_zero",
			"OEM table pointer 0x%08" PRIx32 " with size 0", h->oem_table);

	if (h->ext_len) {
		uint64_t ea = pa + h->base_len;
		uint8_t *eb = malloc(h->ext_len);
		if (!eb)
			return kbu_err_set(err, KBU_ENOMEM, "out of memory for the extended table");
		size_t got;
		if (kbu_read_prefix(m, ea, eb, h->ext_len, &got, err) == KBU_READ_FAILED) {
			free(eb);
			return kbu_err_prefix(err, "reading the MP extended table at 0x%" PRIx64, ea);
		}
		if (got < h->ext_len) {
			problem(t, KBU_SEV_ERROR, KBU_MP_SEC_HEADER, "mptable.ext_length_past_memory",
				"extended table length 0x%x runs past the end of memory at 0x%08" PRIx64
				": only 0x%zx bytes readable; checksum not verified",
				h->ext_len, ea, got);
		} else {
			h->ext_readable = 1;
			h->ext_sum = (uint8_t)(kbu_sum8(eb, h->ext_len) + h->ext_checksum);
			if (h->ext_sum != 0)
				problem(t, KBU_SEV_ERROR, KBU_MP_SEC_HEADER, "mptable.ext_checksum_bad",
					"extended table checksum bad: byte is 0x%02x, the table plus "
					"it sums to 0x%02x (expected 0x00); a correct byte would be "
					"0x%02x",
					h->ext_checksum, h->ext_sum,
					(uint8_t)(h->ext_checksum - h->ext_sum));
		}
		walk_ext(t, eb, got);
		free(eb);
	}
	return 0;
}

/* ---- cross-checks ---- */

size_t kbu_mptable_ncpus(const struct kbu_mptable *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->nentries; i++)
		n += !t->entries[i].extended && t->entries[i].type == KBU_MP_PROC;
	return n;
}

static const struct kbu_mp_entry *find_bus(const struct kbu_mptable *t, uint8_t id)
{
	for (size_t i = 0; i < t->nentries; i++)
		if (!t->entries[i].extended && t->entries[i].type == KBU_MP_BUS &&
		    t->entries[i].u.bus.id == id)
			return &t->entries[i];
	return NULL;
}

/* QEMU's `info pic` prints "ioapic0: ver=0x20 id=0x00 sel=..." for its I/O APIC. */
static void read_ioapic_id(struct kbu_mem *m, struct kbu_mptable *t)
{
	char *out = NULL;
	struct kbu_err e;
	t->ioapic_hw_id = -1;
	t->ioapic_hw_version = -1;
	if (kbu_mem_monitor(m, "info pic", &out, &e) != 0) {
		snprintf(t->ioapic_hw_note, sizeof(t->ioapic_hw_note),
			 "not cross-checked: this %s source cannot read the I/O APIC's ID register",
			 kbu_mem_kind(m));
		free(out);
		return;
	}
	const char *p = out ? strstr(out, "ioapic") : NULL;
	const char *id = p ? strstr(p, " id=0x") : NULL;
	const char *ver = p ? strstr(p, " ver=0x") : NULL;
	unsigned v;
	if (ver && sscanf(ver, " ver=0x%x", &v) == 1)
		t->ioapic_hw_version = (int)(v & 0xff);
	if (id && sscanf(id, " id=0x%x", &v) == 1) {
		t->ioapic_hw_id = (int)(v & 0xff);
		snprintf(t->ioapic_hw_note, sizeof(t->ioapic_hw_note),
			 "from the monitor's `info pic`");
	} else {
		snprintf(t->ioapic_hw_note, sizeof(t->ioapic_hw_note),
			 "not cross-checked: `info pic` shows no I/O APIC id");
	}
	free(out);
}

static void cross_check(struct kbu_mem *m, struct kbu_mptable *t)
{
	size_t ncpu = 0, nbsp = 0, nio = 0;
	size_t nproc_id[256] = {0}, nio_id[256] = {0};
	uint32_t first_proc[256] = {0}, first_io[256] = {0};
	for (size_t i = 0; i < t->nentries; i++) {
		const struct kbu_mp_entry *a = &t->entries[i];
		if (a->extended)
			continue;
		if (a->type == KBU_MP_PROC) {
			ncpu++;
			nbsp += (a->u.proc.flags & 2) != 0;
			if (nproc_id[a->u.proc.apic_id]++ == 0)
				first_proc[a->u.proc.apic_id] = a->offset;
		} else if (a->type == KBU_MP_IOAPIC) {
			nio++;
			if (nio_id[a->u.ioapic.id]++ == 0)
				first_io[a->u.ioapic.id] = a->offset;
		} else if (a->type == KBU_MP_IOINT || a->type == KBU_MP_LINT) {
			if (!find_bus(t, a->u.intr.src_bus))
				problem(t, KBU_SEV_WARN, KBU_MP_SEC_SUMMARY, "mptable.int_bus_missing",
					"interrupt entry at offset 0x%x names source bus %u, which no "
					"bus entry has",
					a->offset, a->u.intr.src_bus);
			if (a->type == KBU_MP_IOINT && a->u.intr.dst_apic != 0xff) {
				int ok = 0;
				for (size_t j = 0; j < t->nentries; j++)
					ok |= !t->entries[j].extended &&
					      t->entries[j].type == KBU_MP_IOAPIC &&
					      t->entries[j].u.ioapic.id == a->u.intr.dst_apic;
				if (!ok)
					problem(t, KBU_SEV_WARN, KBU_MP_SEC_SUMMARY, "mptable.int_ioapic_missing",
						"I/O interrupt at offset 0x%x targets I/O APIC id %u, "
						"which no I/O APIC entry has",
						a->offset, a->u.intr.dst_apic);
			}
		}
	}
	/* Each shared id once, however many entries share it. */
	for (unsigned id = 0; id < 256; id++) {
		if (nproc_id[id] > 1)
			problem(t, KBU_SEV_ERROR, KBU_MP_SEC_SUMMARY, "mptable.apic_id_shared",
				"%zu processors share APIC id %u (the first at offset 0x%x)",
				nproc_id[id], id, first_proc[id]);
		if (nio_id[id] > 1)
			problem(t, KBU_SEV_ERROR, KBU_MP_SEC_SUMMARY, "mptable.ioapic_id_shared",
				"%zu I/O APICs share id %u (the first at offset 0x%x)", nio_id[id], id,
				first_io[id]);
		if (nio_id[id] && nproc_id[id])
			problem(t, KBU_SEV_WARN, KBU_MP_SEC_SUMMARY, "mptable.ioapic_id_is_cpu_id",
				"the I/O APIC at offset 0x%x has the APIC id %u of the processor at "
				"offset 0x%x",
				first_io[id], id, first_proc[id]);
	}
	if (!t->have_header)
		return;
	const char *partial = t->walk_complete ? "" : " among the entries before the walk stopped";
	if (ncpu == 0)
		problem(t, KBU_SEV_ERROR, KBU_MP_SEC_SUMMARY, "mptable.no_processor", "no processor%s", partial);
	else if (nbsp != 1)
		problem(t, KBU_SEV_ERROR, KBU_MP_SEC_SUMMARY, "mptable.bsp_count",
			"%zu processors carry the BSP flag%s; exactly one must", nbsp, partial);
	if (nio == 0)
		problem(t, KBU_SEV_WARN, KBU_MP_SEC_SUMMARY, "mptable.no_ioapic", "no I/O APIC%s", partial);

	read_ioapic_id(m, t);
	if (t->ioapic_hw_id >= 0) {
		for (size_t i = 0; i < t->nentries; i++) {
			const struct kbu_mp_entry *a = &t->entries[i];
			if (a->extended || a->type != KBU_MP_IOAPIC)
				continue;
			/* qboot numbers its I/O APIC ncpus + 1 whatever QEMU's holds: a known
			 * quirk kernels live with (FreeBSD reprograms the ID) */
			int qboot = t->have_header && strcmp(t->hdr.oem_id, "QBOOT") == 0 &&
				    a->u.ioapic.id == ncpu + 1;
			if (a->u.ioapic.id != t->ioapic_hw_id)
				problem(t, qboot ? KBU_SEV_NOTE : KBU_SEV_WARN, KBU_MP_SEC_SUMMARY,
					"mptable.ioapic_id_mismatch",
					"I/O APIC at 0x%08" PRIx32 ": the table says id %u, the I/O "
					"APIC's own ID register says %d%s",
					a->u.ioapic.addr, a->u.ioapic.id, t->ioapic_hw_id,
					qboot ? " (qboot numbers it ncpus + 1: its known quirk)" : "");
			if (t->ioapic_hw_version >= 0 && a->u.ioapic.version != t->ioapic_hw_version)
				problem(t, KBU_SEV_NOTE, KBU_MP_SEC_SUMMARY, "mptable.ioapic_version_mismatch",
					"I/O APIC at 0x%08" PRIx32 ": the table says version 0x%02x, "
					"the I/O APIC says 0x%02x",
					a->u.ioapic.addr, a->u.ioapic.version, t->ioapic_hw_version);
			break; /* `info pic` shows the first I/O APIC only */
		}
	}
}

int kbu_mptable_read(struct kbu_mem *m, int have_at, uint64_t at, struct kbu_mptable *t,
		     struct kbu_err *err)
{
	memset(t, 0, sizeof(*t));
	t->ioapic_hw_id = -1;
	t->ioapic_hw_version = -1;
	if (have_at) {
		uint8_t b[KBU_MP_FP_SIZE];
		if (kbu_mem_read(m, KBU_PHYS, at, b, sizeof(b), err) != 0)
			return kbu_err_prefix(err, "MP floating pointer at 0x%" PRIx64, at);
		if (memcmp(b, "_MP_", 4) != 0)
			return kbu_err_set(err, KBU_EFORMAT,
					   "no MP floating pointer at 0x%" PRIx64
					   ": signature is %02x %02x %02x %02x, expected \"_MP_\"",
					   at, b[0], b[1], b[2], b[3]);
		decode_fp(b, at, "given address", &t->fp);
		size_t flen = (size_t)t->fp.length * 16;
		if (flen < KBU_MP_FP_SIZE)
			flen = KBU_MP_FP_SIZE;
		uint8_t *fb = malloc(flen);
		if (!fb)
			return kbu_err_set(err, KBU_ENOMEM, "out of memory");
		size_t got;
		if (kbu_read_prefix(m, at, fb, flen, &got, err) == KBU_READ_FAILED) {
			free(fb);
			return kbu_err_prefix(err, "MP floating pointer at 0x%" PRIx64, at);
		}
		t->fp.sum = kbu_sum8(fb, got);
		free(fb);
		if (got < flen)
			problem(t, KBU_SEV_ERROR, KBU_MP_SEC_FP, "mptable.fp_length_past_memory",
				"floating pointer length %zu bytes runs past memory at 0x%" PRIx64,
				flen, at + got);
	} else if (find_fp(m, t, &t->fp, err) != 0) {
		kbu_mptable_free(t);
		return -1;
	}
	t->have_fp = 1;
	check_fp(t);
	if (t->fp.feature[0] == 0 && t->fp.physptr != 0 &&
	    read_config(m, t, t->fp.physptr, err) != 0) {
		kbu_mptable_free(t);
		return -1;
	}
	cross_check(m, t);
	return 0;
}

void kbu_mptable_check_vcpus(struct kbu_mptable *t, int vcpus, const char *cause)
{
	if (vcpus <= 0 || !t->have_header)
		return;
	size_t n = kbu_mptable_ncpus(t);
	if (n == (size_t)vcpus)
		return;
	struct kbu_finding_rec *p = problem(
		t, KBU_SEV_WARN, KBU_MP_SEC_SUMMARY,
		n < (size_t)vcpus ? "mptable.fewer_cpus_than_vcpus" : "mptable.more_cpus_than_vcpus",
		"the table lists %zu processor%s but the VM has %d vCPU%s%s%s", n, n == 1 ? "" : "s",
		vcpus, vcpus == 1 ? "" : "s",
		n < (size_t)vcpus ? ": a kernel that enumerates CPUs from the MP table starts " : "",
		n < (size_t)vcpus ? (n == 1 ? "only the boot CPU" : "only those") : "");
	if (p && cause) {
		size_t l = strlen(p->msg);
		snprintf(p->msg + l, sizeof(p->msg) - l, " (%s)", cause);
	}
	kbu_finding_rec_field(p, "cpus", n);
	kbu_finding_rec_field(p, "vcpus", (uint64_t)vcpus);
}

int kbu_mptable_is_config(struct kbu_mem *m, uint64_t pa)
{
	char sig[4];
	struct kbu_err e;
	return kbu_mem_read(m, KBU_PHYS, pa, sig, 4, &e) == 0 && memcmp(sig, "PCMP", 4) == 0;
}

int kbu_mptable_read_config(struct kbu_mem *m, uint64_t addr, struct kbu_mptable *t,
			    struct kbu_err *err)
{
	memset(t, 0, sizeof(*t));
	t->ioapic_hw_id = -1;
	t->ioapic_hw_version = -1;
	uint8_t sig[4];
	if (kbu_mem_read(m, KBU_PHYS, addr, sig, 4, err) != 0)
		return kbu_err_prefix(err, "MP config table at 0x%" PRIx64, addr);
	if (memcmp(sig, "PCMP", 4) != 0)
		return kbu_err_set(err, KBU_EFORMAT,
				   "no MP config table at 0x%" PRIx64
				   ": signature is %02x %02x %02x %02x, expected \"PCMP\"",
				   addr, sig[0], sig[1], sig[2], sig[3]);
	if (read_config(m, t, addr, err) != 0) {
		kbu_mptable_free(t);
		return -1;
	}
	cross_check(m, t);
	return 0;
}

void kbu_mptable_free(struct kbu_mptable *t)
{
	if (!t)
		return;
	free(t->entries);
	free(t->problems);
	memset(t, 0, sizeof(*t));
	t->ioapic_hw_id = -1;
	t->ioapic_hw_version = -1;
}

/* ---- report ---- */

static const char *int_type_name(uint8_t t)
{
	static const char *n[] = {"INT", "NMI", "SMI", "ExtINT"};
	return t < 4 ? n[t] : "unknown";
}

static const char *polarity_name(uint16_t f)
{
	static const char *n[] = {"conforms", "active-hi", "reserved", "active-lo"};
	return n[f & 3];
}

static const char *trigger_name(uint16_t f)
{
	static const char *n[] = {"conforms", "edge", "reserved", "level"};
	return n[(f >> 2) & 3];
}

static void add_problems(const struct kbu_mptable *t, int section, struct kbu_node *o)
{
	kbu_finding_recs_report(o, t->problems, t->nproblems, section);
}

/* Where the floating pointer was found, as a value: the regions the MP
 * specification names, or the address given. */
static const char *search_region_key(const char *where)
{
	static const struct { const char *prefix, *key; } keys[] = {
		{"EBDA", "ebda"}, {"last KiB of base memory", "base_memory_top"},
		{"0x9fc00", "0x9fc00"}, {"BIOS ROM", "bios_rom"}, {"given address", "given"},
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (where && strncmp(where, keys[i].prefix, strlen(keys[i].prefix)) == 0)
			return keys[i].key;
	return "unknown";
}

static void report_fp(const struct kbu_mptable *t, struct kbu_node *root)
{
	const struct kbu_mp_fp *fp = &t->fp;
	struct kbu_node *o = kbu_obj(root, "floating_pointer", "MP Floating Pointer Structure");
	kbu_hex(o, "address", "physical address", fp->addr, 8);
	kbu_display(o, "found_in_text", "found in", "%s", fp->where);
	kbu_str(o, "found_in", "", search_region_key(fp->where));
	kbu_str(o, "signature", "signature", "_MP_");
	kbu_u64(o, "length", "length (bytes)", fp->length * 16u);
	kbu_display(o, "version", "version", "1.%u", fp->spec_rev);
	kbu_u64(o, "spec_rev", "", fp->spec_rev);
	kbu_hex(o, "checksum", "checksum", fp->checksum, 2);
	kbu_bool(o, "checksum_ok", "checksum ok", fp->sum == 0);
	kbu_hex(o, "config_table", "config table", fp->physptr, 8);
	if (fp->feature[0])
		kbu_display(o, "mode_text", "mode", "default configuration type %u", fp->feature[0]);
	else
		kbu_display(o, "mode_text", "mode", "%s",
			    (fp->feature[1] & 0x80) ? "PIC (IMCR present)" : "Virtual Wire");
	kbu_str(o, "mode", "", fp->feature[0] ? "default_configuration"
			       : (fp->feature[1] & 0x80) ? "pic" : "virtual_wire");
	kbu_bool(o, "imcr_present", "", (fp->feature[1] & 0x80) != 0);
	kbu_u64(o, "default_config", "", fp->feature[0]);
	kbu_bytes(o, "features", "feature bytes", fp->feature, 5);
	add_problems(t, KBU_MP_SEC_FP, o);
}

static void report_count_walk_fields(const struct kbu_mptable *t, struct kbu_node *o)
{
	const struct kbu_mp_count_walk *w = &t->count_walk;
	struct kbu_node *c = kbu_obj(o, "count_walk", "");
	kbu_str(c, "outcome", "", kbu_mptable_count_outcome_name(w->outcome));
	kbu_u64(c, "entries_read", "", w->entries_read);
	kbu_u64(c, "entries_past_end", "", w->entries_past_end);
	kbu_u64(c, "cpus", "", w->cpus);
	kbu_u64(c, "ioapics", "", w->ioapics);
	if (w->outcome == KBU_MP_COUNT_UNKNOWN_TYPE || w->outcome == KBU_MP_COUNT_UNREADABLE) {
		kbu_u64(c, "stop_offset", "", w->stop_offset);
		kbu_u64(c, "stop_address", "", w->stop_addr);
	} else {
		kbu_null(c, "stop_offset", "");
		kbu_null(c, "stop_address", "");
	}
	if (w->outcome == KBU_MP_COUNT_UNKNOWN_TYPE)
		kbu_u64(c, "stop_type", "", w->stop_type);
	else
		kbu_null(c, "stop_type", "");
}

static void report_header(const struct kbu_mptable *t, struct kbu_node *root)
{
	const struct kbu_mp_header *h = &t->hdr;
	struct kbu_node *o = kbu_obj(root, "header", "MP Config Table Header");
	if (t->have_header) {
		kbu_hex(o, "address", "physical address", h->addr, 8);
		if (t->config_how[0])
			kbu_str(o, "found", "found", t->config_how);
		kbu_str(o, "signature", "signature", h->signature);
		kbu_u64(o, "base_table_length", "base table length", h->base_len);
		kbu_display(o, "version", "version", "1.%u", h->spec_rev);
		kbu_u64(o, "spec_rev", "", h->spec_rev);
		kbu_hex(o, "checksum", "checksum", h->checksum, 2);
		if (h->sum_checked)
			kbu_bool(o, "checksum_ok", "checksum ok", h->sum == 0);
		else
			kbu_null(o, "checksum_ok", "checksum ok");
		kbu_str(o, "oem_id", "OEM ID", h->oem_id);
		kbu_str(o, "product_id", "Product ID", h->product_id);
		kbu_hex(o, "oem_table", "OEM table pointer", h->oem_table, 8);
		kbu_u64(o, "oem_table_size", "OEM table size", h->oem_table_size);
		kbu_u64(o, "entry_count", "entry count", h->entry_count);
		kbu_u64(o, "entries_walked", "entries walked", t->nbase);
		kbu_hex(o, "lapic_address", "local APIC address", h->lapic_addr, 8);
		kbu_u64(o, "ext_table_length", "extended table length", h->ext_len);
		kbu_hex(o, "ext_table_checksum", "extended table checksum", h->ext_checksum, 2);
		if (h->ext_len && h->ext_readable)
			kbu_bool(o, "ext_checksum_ok", "", h->ext_sum == 0);
		report_count_walk_fields(t, o);
	}
	add_problems(t, KBU_MP_SEC_HEADER, o);
}

static void report_entries(const struct kbu_mptable *t, struct kbu_node *root)
{
	struct kbu_node *o = kbu_obj(root, "entries", "MP Config Base Table Entries");
	struct kbu_node *procs = kbu_list(o, "processors", "Processors");
	struct kbu_node *buses = kbu_list(o, "buses", "Bus");
	struct kbu_node *ioapics = kbu_list(o, "ioapics", "I/O APICs");
	struct kbu_node *ioints = kbu_list(o, "io_ints", "I/O Ints");
	struct kbu_node *lints = kbu_list(o, "local_ints", "Local Ints");
	for (size_t i = 0; i < t->nentries; i++) {
		const struct kbu_mp_entry *e = &t->entries[i];
		if (e->extended)
			continue;
		struct kbu_node *r;
		switch (e->type) {
		case KBU_MP_PROC: {
			r = kbu_row(procs);
			uint8_t f = e->u.proc.flags;
			kbu_u64(r, "apic_id", "APIC ID", e->u.proc.apic_id);
			kbu_hex(r, "version", "Version", e->u.proc.version, 2);
			kbu_display(r, "state", "State", "%s, %s", (f & 2) ? "BSP" : "AP",
				    (f & 1) ? "usable" : "unusable");
			kbu_bool(r, "bsp", "", (f & 2) != 0);
			kbu_bool(r, "enabled", "", (f & 1) != 0);
			kbu_u64(r, "family", "Family", (e->u.proc.signature >> 8) & 0xf);
			kbu_u64(r, "model", "Model", (e->u.proc.signature >> 4) & 0xf);
			kbu_u64(r, "stepping", "Step", e->u.proc.signature & 0xf);
			kbu_hex(r, "features", "Flags", e->u.proc.features, 8);
			kbu_hex(r, "offset", "", e->offset, 0);
			break;
		}
		case KBU_MP_BUS:
			r = kbu_row(buses);
			kbu_u64(r, "bus_id", "Bus ID", e->u.bus.id);
			kbu_str(r, "type", "Type", e->u.bus.type);
			kbu_hex(r, "offset", "", e->offset, 0);
			break;
		case KBU_MP_IOAPIC:
			r = kbu_row(ioapics);
			kbu_u64(r, "apic_id", "APIC ID", e->u.ioapic.id);
			kbu_hex(r, "version", "Version", e->u.ioapic.version, 2);
			kbu_display(r, "state", "State", "%s",
				    (e->u.ioapic.flags & 1) ? "usable" : "unusable");
			kbu_bool(r, "enabled", "", (e->u.ioapic.flags & 1) != 0);
			kbu_hex(r, "address", "Address", e->u.ioapic.addr, 8);
			kbu_hex(r, "offset", "", e->offset, 0);
			break;
		case KBU_MP_IOINT:
		case KBU_MP_LINT:
			r = kbu_row(e->type == KBU_MP_IOINT ? ioints : lints);
			kbu_str(r, "type", "Type", int_type_name(e->u.intr.itype));
			kbu_str(r, "polarity", "Polarity", polarity_name(e->u.intr.flags));
			kbu_str(r, "trigger", "Trigger", trigger_name(e->u.intr.flags));
			kbu_u64(r, "bus_id", "Bus ID", e->u.intr.src_bus);
			kbu_u64(r, "irq", "IRQ", e->u.intr.src_irq);
			kbu_u64(r, "apic_id", "APIC ID", e->u.intr.dst_apic);
			kbu_u64(r, "pin", "PIN#", e->u.intr.dst_pin);
			kbu_hex(r, "offset", "", e->offset, 0);
			break;
		default:
			break;
		}
	}
	add_problems(t, KBU_MP_SEC_ENTRIES, o);

	size_t next = t->nentries - t->nbase;
	if (next == 0)
		return;
	struct kbu_node *x = kbu_obj(root, "extended", "MP Config Extended Table Entries");
	struct kbu_node *sasm = NULL, *bhd = NULL, *cbasm = NULL, *other = NULL;
	for (size_t i = 0; i < t->nentries; i++) {
		const struct kbu_mp_entry *e = &t->entries[i];
		if (!e->extended)
			continue;
		struct kbu_node *r;
		if (e->type == KBU_MP_EXT_SASM) {
			static const char *at[] = {"I/O", "memory", "prefetch"};
			if (!sasm)
				sasm = kbu_list(x, "system_address_space", "System Address Space");
			r = kbu_row(sasm);
			kbu_u64(r, "bus_id", "Bus ID", e->u.sasm.bus);
			kbu_str(r, "address_type", "Address Type",
				e->u.sasm.addr_type < 3 ? at[e->u.sasm.addr_type] : "unknown");
			kbu_hex(r, "base", "Address Base", e->u.sasm.base, 16);
			kbu_hex(r, "length", "Address Length", e->u.sasm.length, 16);
		} else if (e->type == KBU_MP_EXT_BHD) {
			if (!bhd)
				bhd = kbu_list(x, "bus_hierarchy", "Bus Hierarchy");
			r = kbu_row(bhd);
			kbu_u64(r, "bus_id", "Bus ID", e->u.bhd.bus);
			kbu_bool(r, "subtractive", "Subtractive", e->u.bhd.info & 1);
			kbu_u64(r, "parent", "Parent Bus", e->u.bhd.parent);
		} else if (e->type == KBU_MP_EXT_CBASM) {
			if (!cbasm)
				cbasm = kbu_list(x, "compat_bus_address_space",
						 "Compatibility Bus Address Space");
			r = kbu_row(cbasm);
			kbu_u64(r, "bus_id", "Bus ID", e->u.cbasm.bus);
			kbu_str(r, "modifier", "Modifier", (e->u.cbasm.modifier & 1) ? "subtract" : "add");
			kbu_str(r, "range_list_name", "Range List",
				e->u.cbasm.range_list == 0 ? "ISA compatible I/O"
				: e->u.cbasm.range_list == 1 ? "VGA I/O" : "unknown");
			kbu_u64(r, "range_list", "", e->u.cbasm.range_list);
		} else {
			if (!other)
				other = kbu_list(x, "other", "Other (not decoded)");
			r = kbu_row(other);
			kbu_u64(r, "type", "Type", e->raw[0]);
			kbu_u64(r, "length", "Length", e->len);
			kbu_bytes(r, "bytes", "Bytes", e->raw,
				  e->len < sizeof(e->raw) ? e->len : sizeof(e->raw));
		}
		kbu_hex(r, "offset", "Offset", e->offset, 0);
	}
}

static void report_summary(const struct kbu_mptable *t, struct kbu_node *root)
{
	struct kbu_node *o = kbu_obj(root, "summary", "Summary");
	size_t ncpu = 0;
	int bsp = -1;
	for (size_t i = 0; i < t->nentries; i++) {
		const struct kbu_mp_entry *e = &t->entries[i];
		if (e->extended || e->type != KBU_MP_PROC)
			continue;
		if ((e->u.proc.flags & 2) && bsp < 0)
			bsp = e->u.proc.apic_id;
		ncpu++;
	}
	kbu_u64(o, "cpus", "CPUs", ncpu);
	struct kbu_node *cl = kbu_list(o, "cpu_apic_ids", "");
	char ids[512] = "";
	size_t used = 0;
	for (size_t i = 0; i < t->nentries; i++)
		if (!t->entries[i].extended && t->entries[i].type == KBU_MP_PROC) {
			kbu_item_u64(cl, t->entries[i].u.proc.apic_id);
			int w = snprintf(ids + used, sizeof ids - used, "%s%u", used ? " " : "",
					 t->entries[i].u.proc.apic_id);
			if (w > 0 && (size_t)w < sizeof ids - used)
				used += (size_t)w;
		}
	kbu_display(o, "cpu_apic_ids_text", "CPU APIC ids", "%s", ids[0] ? ids : "none");
	if (bsp >= 0)
		kbu_u64(o, "bsp", "BSP APIC id", (uint64_t)bsp);
	else
		kbu_null(o, "bsp", "BSP APIC id");
	struct kbu_node *io = kbu_list(o, "ioapics", "I/O APICs");
	for (size_t i = 0; i < t->nentries; i++) {
		const struct kbu_mp_entry *e = &t->entries[i];
		if (e->extended || e->type != KBU_MP_IOAPIC)
			continue;
		struct kbu_node *r = kbu_row(io);
		kbu_u64(r, "apic_id", "APIC ID", e->u.ioapic.id);
		kbu_hex(r, "address", "Address", e->u.ioapic.addr, 8);
	}
	if (t->ioapic_hw_id >= 0)
		kbu_u64(o, "ioapic_hw_id", "I/O APIC ID register", (uint64_t)t->ioapic_hw_id);
	else
		kbu_null(o, "ioapic_hw_id", t->ioapic_hw_note[0] ? "" : "I/O APIC ID register");
	if (t->ioapic_hw_note[0])
		kbu_str(o, "ioapic_hw_id_source",
			t->ioapic_hw_id >= 0 ? "ID register read" : "I/O APIC ID register",
			t->ioapic_hw_note);

	struct kbu_node *rt = kbu_list(o, "isa_irq_routing", "ISA IRQ routing");
	for (size_t i = 0; i < t->nentries; i++) {
		const struct kbu_mp_entry *e = &t->entries[i];
		if (e->extended || e->type != KBU_MP_IOINT || e->u.intr.itype != 0)
			continue;
		const struct kbu_mp_entry *bus = find_bus(t, e->u.intr.src_bus);
		if (!bus || strcmp(bus->u.bus.type, "ISA") != 0)
			continue;
		struct kbu_node *r = kbu_row(rt);
		kbu_u64(r, "irq", "ISA IRQ", e->u.intr.src_irq);
		kbu_u64(r, "ioapic", "I/O APIC", e->u.intr.dst_apic);
		kbu_u64(r, "pin", "Pin", e->u.intr.dst_pin);
		kbu_str(r, "polarity", "Polarity", polarity_name(e->u.intr.flags));
		kbu_str(r, "trigger", "Trigger", trigger_name(e->u.intr.flags));
	}
	add_problems(t, KBU_MP_SEC_SUMMARY, o);
}

void kbu_mptable_report(const struct kbu_mptable *t, struct kbu_node *node)
{
	if (!t->have_fp && !t->have_header)
		return;
	if (t->have_fp)
		report_fp(t, node);
	if (t->have_header || t->fp.physptr)
		report_header(t, node);
	if (t->have_header)
		report_entries(t, node);
	report_summary(t, node);
	if (t->nsuppressed)
		kbu_problem(node, KBU_SEV_WARN, "%zu further problems not listed (only the first %d are)",
			    t->nsuppressed, KBU_MP_MAX_PROBLEMS);
}
