/* kbu: local APIC registers (xAPIC MMIO and x2APIC MSR), decoding, QEMU `info lapic` parsing. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/lapic.h"
#include "kbu/report.h"
#include "kbu/util.h"

static const struct kbu_lapic_reg regs[] = {
	{"ID", 0x020, 0x802, KBU_LREG_PLAIN, NULL},
	{"Version", 0x030, 0x803, KBU_LREG_PLAIN, NULL},
	{"TPR", 0x080, 0x808, KBU_LREG_PLAIN, "TPR"},
	{"APR", 0x090, 0, KBU_LREG_PLAIN, "APR"},
	{"PPR", 0x0a0, 0x80a, KBU_LREG_PLAIN, "PPR"},
	{"EOI", 0x0b0, 0x80b, KBU_LREG_PLAIN, NULL},
	{"RRD", 0x0c0, 0, KBU_LREG_PLAIN, NULL},
	{"LDR", 0x0d0, 0x80d, KBU_LREG_PLAIN, "LDR"},
	{"DFR", 0x0e0, 0, KBU_LREG_PLAIN, "DFR"},
	{"SVR", 0x0f0, 0x80f, KBU_LREG_PLAIN, "SPIV"},
	{"ISR[0]", 0x100, 0x810, KBU_LREG_BITMAP, "ISR"},
	{"ISR[1]", 0x110, 0x811, KBU_LREG_BITMAP, "ISR"},
	{"ISR[2]", 0x120, 0x812, KBU_LREG_BITMAP, "ISR"},
	{"ISR[3]", 0x130, 0x813, KBU_LREG_BITMAP, "ISR"},
	{"ISR[4]", 0x140, 0x814, KBU_LREG_BITMAP, "ISR"},
	{"ISR[5]", 0x150, 0x815, KBU_LREG_BITMAP, "ISR"},
	{"ISR[6]", 0x160, 0x816, KBU_LREG_BITMAP, "ISR"},
	{"ISR[7]", 0x170, 0x817, KBU_LREG_BITMAP, "ISR"},
	{"TMR[0]", 0x180, 0x818, KBU_LREG_BITMAP, NULL},
	{"TMR[1]", 0x190, 0x819, KBU_LREG_BITMAP, NULL},
	{"TMR[2]", 0x1a0, 0x81a, KBU_LREG_BITMAP, NULL},
	{"TMR[3]", 0x1b0, 0x81b, KBU_LREG_BITMAP, NULL},
	{"TMR[4]", 0x1c0, 0x81c, KBU_LREG_BITMAP, NULL},
	{"TMR[5]", 0x1d0, 0x81d, KBU_LREG_BITMAP, NULL},
	{"TMR[6]", 0x1e0, 0x81e, KBU_LREG_BITMAP, NULL},
	{"TMR[7]", 0x1f0, 0x81f, KBU_LREG_BITMAP, NULL},
	{"IRR[0]", 0x200, 0x820, KBU_LREG_BITMAP, "IRR"},
	{"IRR[1]", 0x210, 0x821, KBU_LREG_BITMAP, "IRR"},
	{"IRR[2]", 0x220, 0x822, KBU_LREG_BITMAP, "IRR"},
	{"IRR[3]", 0x230, 0x823, KBU_LREG_BITMAP, "IRR"},
	{"IRR[4]", 0x240, 0x824, KBU_LREG_BITMAP, "IRR"},
	{"IRR[5]", 0x250, 0x825, KBU_LREG_BITMAP, "IRR"},
	{"IRR[6]", 0x260, 0x826, KBU_LREG_BITMAP, "IRR"},
	{"IRR[7]", 0x270, 0x827, KBU_LREG_BITMAP, "IRR"},
	{"ESR", 0x280, 0x828, KBU_LREG_PLAIN, "ESR"},
	{"LVT CMCI", 0x2f0, 0x82f, KBU_LREG_LVT, NULL},
	{"ICR low", 0x300, 0x830, KBU_LREG_PLAIN, "ICR"},
	{"ICR high", 0x310, 0, KBU_LREG_PLAIN, "ICR2"},
	{"LVT timer", 0x320, 0x832, KBU_LREG_LVT_TIMER, "LVTT"},
	{"LVT thermal", 0x330, 0x833, KBU_LREG_LVT, "LVTTHMR"},
	{"LVT perf", 0x340, 0x834, KBU_LREG_LVT, "LVTPC"},
	{"LVT LINT0", 0x350, 0x835, KBU_LREG_LVT, "LVT0"},
	{"LVT LINT1", 0x360, 0x836, KBU_LREG_LVT, "LVT1"},
	{"LVT error", 0x370, 0x837, KBU_LREG_LVT, "LVTERR"},
	{"Initial count", 0x380, 0x838, KBU_LREG_PLAIN, "Timer"},
	{"Current count", 0x390, 0x839, KBU_LREG_PLAIN, "Timer"},
	{"DCR", 0x3e0, 0x83e, KBU_LREG_PLAIN, "Timer"},
};

#define NREGS (sizeof regs / sizeof regs[0])

const struct kbu_lapic_reg *kbu_lapic_reg_table(size_t *n)
{
	*n = NREGS;
	return regs;
}

const struct kbu_lapic_reg *kbu_lapic_reg_at(unsigned offset)
{
	for (size_t i = 0; i < NREGS; i++)
		if (regs[i].offset == offset)
			return &regs[i];
	return NULL;
}

uint32_t kbu_lapic_msr(unsigned offset) { return 0x800u + (offset >> 4); }

const char *kbu_lapic_source_id(enum kbu_lapic_source src)
{
	return src == KBU_LAPIC_SRC_VCPU ? "vcpu" : src == KBU_LAPIC_SRC_MONITOR ? "monitor" : "page";
}

const char *kbu_lapic_source_name(enum kbu_lapic_source src)
{
	return src == KBU_LAPIC_SRC_VCPU ? "the vCPU's own reads"
	       : src == KBU_LAPIC_SRC_MONITOR ? "QEMU info lapic" : "LAPIC page";
}

size_t kbu_lapic_readable(int have_version, uint32_t version, int x2apic, unsigned *offsets,
			  size_t max)
{
	size_t n = 0;
	if (n < max)
		offsets[n++] = 0x030;
	for (size_t i = 0; i < NREGS && n < max; i++) {
		const struct kbu_lapic_reg *r = &regs[i];
		if (r->offset == 0x030 || r->offset == 0x0b0 || r->offset == 0x0c0)
			continue; /* the version is first; EOI write-only; RRD reserved */
		if (x2apic && !r->msr)
			continue;
		if (r->offset == 0x2f0 && !(have_version && ((version >> 16) & 0xff) >= 6))
			continue;
		offsets[n++] = r->offset;
	}
	return n;
}

int kbu_lapic_parse_values(const char *text, struct kbu_lapic_state *s, struct kbu_err *err)
{
	memset(s, 0, sizeof *s);
	s->cpu = -1;
	if (!text)
		return kbu_err_set(err, KBU_EINVAL, "no register values");
	const char *p = text;
	while (*p) {
		char *end;
		unsigned long long off = strtoull(p, &end, 0);
		if (end == p || *end != '=')
			return kbu_err_set(err, KBU_EINVAL, "\"%.40s\" is not OFFSET=VALUE", p);
		if (off > 0x3f0 || (off & 0xf) || !kbu_lapic_reg_at((unsigned)off))
			return kbu_err_set(err, KBU_EINVAL, "0x%llx is not a local APIC register offset",
					   off);
		p = end + 1;
		unsigned long long v = strtoull(p, &end, 0);
		if (end == p || v > 0xffffffffull)
			return kbu_err_set(err, KBU_EINVAL, "the value of 0x%llx is not a 32-bit number",
					   off);
		kbu_lapic_set(s, (unsigned)off, (uint32_t)v);
		p = end;
		if (*p == ',')
			p++;
		else if (*p)
			return kbu_err_set(err, KBU_EINVAL, "unexpected \"%.20s\" after 0x%llx", p, off);
	}
	if (!s->known)
		return kbu_err_set(err, KBU_EINVAL, "no register values");
	return 0;
}

unsigned kbu_lapic_divisor(uint32_t dcr)
{
	unsigned v = ((dcr >> 1) & 4) | (dcr & 3);
	return v == 7 ? 1 : 2u << v;
}

void kbu_lapic_decode_lvt(uint32_t v, int is_timer, struct kbu_lapic_lvt *o)
{
	static const char *const dm[8] = {"Fixed", "reserved(1)", "SMI", "reserved(3)",
					  "NMI", "INIT", "reserved(6)", "ExtINT"};
	static const char *const tm[4] = {"one-shot", "periodic", "TSC-deadline", "reserved"};
	o->vector = v & 0xff;
	o->delivery = dm[(v >> 8) & 7];
	o->pending = (v >> 12) & 1;
	o->active_low = (v >> 13) & 1;
	o->remote_irr = (v >> 14) & 1;
	o->level = (v >> 15) & 1;
	o->masked = (v >> 16) & 1;
	o->timer_mode = is_timer ? tm[(v >> 17) & 3] : NULL;
	if (is_timer)
		o->delivery = "Fixed"; /* the timer has no delivery-mode field */
}

/* ---- QEMU `info lapic` ---------------------------------------------------------- */

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* The number (in base) after the first tag in p, if it fits in 32 bits. */
static int num_after(const char *p, const char *tag, int base, uint32_t *v)
{
	const char *q = strstr(p, tag);
	if (!q)
		return -1;
	q = skip_ws(q + strlen(tag));
	char *end;
	unsigned long long x = strtoull(q, &end, base);
	if (end == q || x > 0xffffffffull)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

static int hex_after(const char *p, const char *tag, uint32_t *v) { return num_after(p, tag, 16, v); }
static int dec_after(const char *p, const char *tag, uint32_t *v) { return num_after(p, tag, 10, v); }

/* "ISR\t 34 48(level) " or "(none)": sets the bitmap words at base and TMR marks. */
static int parse_vectors(const char *p, const char *eol, struct kbu_lapic_state *s, unsigned base,
			 uint32_t *tmr)
{
	uint32_t words[8] = {0};
	p = skip_ws(p);
	while (p < eol) {
		if (*p == '(' && strncmp(p, "(none)", 6) == 0)
			break;
		if (!isdigit((unsigned char)*p))
			return -1;
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (v > 255)
			return -1;
		words[v / 32] |= 1u << (v % 32);
		p = end;
		if (strncmp(p, "(level)", 7) == 0) {
			tmr[v / 32] |= 1u << (v % 32);
			p += 7;
		}
		p = skip_ws(p);
	}
	for (unsigned i = 0; i < 8; i++)
		kbu_lapic_set(s, base + 0x10 * i, words[i]);
	return 0;
}

int kbu_lapic_parse_qemu(const char *text, struct kbu_lapic_state *s, struct kbu_err *err)
{
	static const struct { const char *name; unsigned off; } lvts[] = {
		{"LVT0", 0x350}, {"LVT1", 0x360}, {"LVTPC", 0x340},
		{"LVTERR", 0x370}, {"LVTTHMR", 0x330}, {"LVTT", 0x320},
		{"SPIV", 0x0f0}, {"ICR2", 0x310}, {"ICR", 0x300}, {"ESR", 0x280},
	};
	uint32_t tmr[8] = {0};
	int lines = 0;
	memset(s, 0, sizeof *s);
	s->cpu = -1;
	if (!text)
		return kbu_err_set(err, KBU_EINVAL, "no `info lapic` text");
	const char *p = text;
	while (*p) {
		const char *eol = strchr(p, '\n');
		if (!eol)
			eol = p + strlen(p);
		size_t len = (size_t)(eol - p);
		char line[512];
		if (len >= sizeof line)
			len = sizeof line - 1;
		memcpy(line, p, len);
		line[len] = '\0';
		uint32_t v, v2;
		if (strncmp(line, "dumping local APIC state for CPU", 32) == 0) {
			if (dec_after(line, "CPU", &v) == 0)
				s->cpu = (int)v;
		} else if (strncmp(line, "Timer", 5) == 0 && (line[5] == '\t' || line[5] == ' ')) {
			if (hex_after(line, "DCR=", &v) == 0) {
				/* QEMU prints the 4-bit field value (bits 0,1,3) */
				kbu_lapic_set(s, 0x3e0, v & 0xb);
				lines++;
			}
			if (dec_after(line, "initial_count =", &v) == 0)
				kbu_lapic_set(s, 0x380, v);
			if (dec_after(line, "current_count =", &v) == 0)
				kbu_lapic_set(s, 0x390, v);
		} else if ((strncmp(line, "ISR", 3) == 0 || strncmp(line, "IRR", 3) == 0) &&
			   (line[3] == '\t' || line[3] == ' ')) {
			if (parse_vectors(line + 3, line + strlen(line), s,
					  line[1] == 'S' ? 0x100 : 0x200, tmr) < 0)
				return kbu_err_set(err, KBU_EFORMAT,
						   "info lapic: bad vector list in \"%s\"", line);
			lines++;
		} else if (strncmp(line, "APR ", 4) == 0) {
			if (hex_after(line, "APR", &v) == 0)
				kbu_lapic_set(s, 0x090, v);
			if (hex_after(line, "TPR", &v) == 0)
				kbu_lapic_set(s, 0x080, v);
			if (hex_after(line, "DFR", &v) == 0) /* the 4-bit model, DFR[31:28] */
				kbu_lapic_set(s, 0x0e0, (v & 0xf) << 28 | 0x0fffffffu);
			if (hex_after(line, "LDR", &v) == 0) /* the 8-bit logical ID, LDR[31:24] */
				kbu_lapic_set(s, 0x0d0, (v & 0xff) << 24);
			if (hex_after(line, "PPR", &v) == 0)
				kbu_lapic_set(s, 0x0a0, v);
			lines++;
		} else {
			for (size_t i = 0; i < sizeof lvts / sizeof lvts[0]; i++) {
				size_t n = strlen(lvts[i].name);
				if (strncmp(line, lvts[i].name, n) == 0 &&
				    (line[n] == '\t' || line[n] == ' ') &&
				    hex_after(line + n, "", &v2) == 0) {
					kbu_lapic_set(s, lvts[i].off, v2);
					lines++;
					break;
				}
			}
		}
		p = *eol ? eol + 1 : eol;
	}
	if (lines == 0) {
		if (strstr(text, "local apic state not available"))
			return kbu_err_set(err, KBU_ENOTFOUND, "QEMU says: local apic state not available");
		return kbu_err_set(err, KBU_EFORMAT,
				   "not QEMU `info lapic` output (no LVT, SPIV, Timer or APR line)");
	}
	/* TMR: QEMU only marks the vectors that are also in ISR or IRR. */
	for (unsigned i = 0; i < 8; i++)
		s->reg[(0x180 >> 4) + i] = tmr[i];
	return 0;
}

void kbu_lapic_from_page(const uint8_t page[0x400], struct kbu_lapic_state *s)
{
	memset(s, 0, sizeof *s);
	s->cpu = -1;
	for (size_t i = 0; i < NREGS; i++) {
		unsigned off = regs[i].offset;
		kbu_lapic_set(s, off, kbu_le32(page + off));
	}
}

int kbu_lapic_page_all_zero(const uint8_t page[0x400])
{
	for (size_t i = 0; i < NREGS; i++)
		for (unsigned b = 0; b < 4; b++)
			if (page[regs[i].offset + b])
				return 0;
	return 1;
}

/* ---- decoding into text ----------------------------------------------------------- */

/* The ESR bits by number (SDM vol. 3 "Error Status Register"). */
static const char *const esr_bits[8] = {"send checksum", "receive checksum", "send accept",
					 "receive accept", "redirectable IPI",
					 "send illegal vector", "received illegal vector",
					 "illegal register address"};


static void decode_reg(const struct kbu_lapic_reg *r, uint32_t v, char *buf, size_t len)
{
	struct kbu_lapic_lvt l;
	buf[0] = '\0';
	switch (r->offset) {
	case 0x020:
		snprintf(buf, len, "xAPIC ID %u", v >> 24);
		return;
	case 0x030:
		snprintf(buf, len, "& 0x00ff00ff = 0x%08x: version 0x%02x, %u LVT entries (max LVT %u)%s",
			 v & 0x00ff00ffu, v & 0xff,
			 ((v >> 16) & 0xff) + 1, (v >> 16) & 0xff,
			 (v >> 24) & 1 ? ", EOI-broadcast suppression" : "");
		return;
	case 0x080:
	case 0x090:
	case 0x0a0:
		snprintf(buf, len, "class %u sub-class %u", (v >> 4) & 0xf, v & 0xf);
		return;
	case 0x0d0:
		snprintf(buf, len, "logical ID 0x%02x", v >> 24);
		return;
	case 0x0e0:
		snprintf(buf, len, "model %s", (v >> 28) == 0xf ? "flat" : (v >> 28) == 0 ? "cluster"
										: "invalid");
		return;
	case 0x0f0:
		snprintf(buf, len, "APIC %s, spurious vector %u%s%s",
			 (v >> 8) & 1 ? "software-enabled" : "software-DISABLED", v & 0xff,
			 (v >> 9) & 1 ? ", focus checking off" : "",
			 (v >> 12) & 1 ? ", EOI-broadcast suppressed" : "");
		return;
	case 0x280: {
		size_t n = 0;
		for (unsigned b = 0; b < 8 && n < len; b++)
			if (v & (1u << b))
				n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "",
						      esr_bits[b]);
		if (!n)
			snprintf(buf, len, "no errors");
		return;
	}
	case 0x300: {
		static const char *const dm[8] = {"Fixed", "Lowest", "SMI", "reserved", "NMI", "INIT",
						  "StartUp", "reserved"};
		static const char *const sh[4] = {"no shorthand", "self", "all incl. self",
						  "all excl. self"};
		snprintf(buf, len, "vector %u, %s, %s dest, %s, %s, %s, %s", v & 0xff,
			 dm[(v >> 8) & 7], (v >> 11) & 1 ? "logical" : "physical",
			 (v >> 12) & 1 ? "send pending" : "idle", (v >> 14) & 1 ? "assert" : "de-assert",
			 (v >> 15) & 1 ? "level" : "edge", sh[(v >> 18) & 3]);
		return;
	}
	case 0x310:
		snprintf(buf, len, "destination %u (xAPIC: ICR[63:56])", v >> 24);
		return;
	case 0x380:
	case 0x390:
		snprintf(buf, len, "%u", v);
		return;
	case 0x3e0:
		snprintf(buf, len, "divide by %u", kbu_lapic_divisor(v));
		return;
	default:
		break;
	}
	if (r->kind == KBU_LREG_LVT || r->kind == KBU_LREG_LVT_TIMER) {
		kbu_lapic_decode_lvt(v, r->kind == KBU_LREG_LVT_TIMER, &l);
		int plain = r->kind == KBU_LREG_LVT;
		snprintf(buf, len, "vector %u, %s%s%s%s, %s%s%s", l.vector, l.delivery,
			 l.pending ? ", send pending" : "",
			 plain ? (l.active_low ? ", active-low" : ", active-high") : "",
			 plain ? (l.level ? ", level" : ", edge") : "",
			 l.masked ? "MASKED" : "unmasked", l.timer_mode ? ", " : "",
			 l.timer_mode ? l.timer_mode : "");
		if (l.remote_irr) {
			size_t n = strlen(buf);
			snprintf(buf + n, len - n, ", remote IRR");
		}
	}
}

/* What decode_reg words, as JSON values of the register's row (LVTs: lapic.lvt). */
static void decode_values(struct kbu_node *row, const struct kbu_lapic_reg *r, uint32_t v)
{
	static const char *const icr_dm[8] = {"Fixed", "Lowest", "SMI", "reserved", "NMI", "INIT",
					      "StartUp", "reserved"};
	static const char *const icr_sh[4] = {"none", "self", "all_including_self",
					      "all_excluding_self"};
	switch (r->offset) {
	case 0x020:
		kbu_u64(row, "apic_id", "", v >> 24);
		break;
	case 0x030:
		kbu_u64(row, "version", "", v & 0xff);
		kbu_u64(row, "max_lvt", "", (v >> 16) & 0xff);
		kbu_bool(row, "eoi_broadcast_suppression", "", (v >> 24) & 1);
		break;
	case 0x080:
	case 0x090:
	case 0x0a0:
		kbu_u64(row, "priority_class", "", (v >> 4) & 0xf);
		kbu_u64(row, "priority_subclass", "", v & 0xf);
		break;
	case 0x0d0:
		kbu_u64(row, "logical_id", "", v >> 24);
		break;
	case 0x0e0:
		kbu_str(row, "model", "", (v >> 28) == 0xf ? "flat" : (v >> 28) == 0 ? "cluster"
										: "invalid");
		break;
	case 0x0f0:
		kbu_bool(row, "software_enabled", "", (v >> 8) & 1);
		kbu_u64(row, "spurious_vector", "", v & 0xff);
		kbu_bool(row, "focus_checking_disabled", "", (v >> 9) & 1);
		kbu_bool(row, "eoi_broadcast_suppressed", "", (v >> 12) & 1);
		break;
	case 0x280: {
		struct kbu_node *l = kbu_list(row, "errors", "");
		for (unsigned b = 0; b < 8; b++)
			if (v & (1u << b))
				kbu_item_str(l, esr_bits[b]);
		break;
	}
	case 0x300:
		kbu_u64(row, "vector", "", v & 0xff);
		kbu_str(row, "delivery", "", icr_dm[(v >> 8) & 7]);
		kbu_str(row, "destination_mode", "", (v >> 11) & 1 ? "logical" : "physical");
		kbu_bool(row, "pending", "", (v >> 12) & 1);
		kbu_bool(row, "assert", "", (v >> 14) & 1);
		kbu_str(row, "trigger", "", (v >> 15) & 1 ? "level" : "edge");
		kbu_str(row, "shorthand", "", icr_sh[(v >> 18) & 3]);
		break;
	case 0x310:
		kbu_u64(row, "destination", "", v >> 24);
		break;
	case 0x3e0:
		kbu_u64(row, "divisor", "", kbu_lapic_divisor(v));
		break;
	default:
		break;
	}
}

static void vector_list(struct kbu_node *o, const char *key, const char *label,
			const struct kbu_lapic_state *s, unsigned base)
{
	struct kbu_node *l = kbu_list(o, key, label);
	for (unsigned v = 0; v < 256; v++)
		if (s->reg[(base >> 4) + v / 32] & (1u << (v % 32)))
			kbu_item_u64(l, v);
}

void kbu_lapic_report(struct kbu_node *root, const struct kbu_lapic_state *s,
		      enum kbu_lapic_source src, const struct kbu_lapic_state *other,
		      enum kbu_lapic_source other_src)
{
	char title[96], dec[200];
	const char *source = kbu_lapic_source_name(src);
	if (s->cpu >= 0)
		snprintf(title, sizeof title, "Local APIC of CPU %d (source: %s)", s->cpu, source);
	else
		snprintf(title, sizeof title, "Local APIC (source: %s)", source);
	struct kbu_node *sec = kbu_obj(root, "lapic", title);
	kbu_str(sec, "source", "", kbu_lapic_source_id(src));
	if (s->cpu >= 0)
		kbu_u64(sec, "cpu", "", (uint64_t)s->cpu);
	struct kbu_node *tab = kbu_list(sec, "registers", "registers");
	for (size_t i = 0; i < NREGS; i++) {
		const struct kbu_lapic_reg *r = &regs[i];
		if (r->kind == KBU_LREG_BITMAP)
			continue; /* shown as vector lists below */
		struct kbu_node *row = kbu_row(tab);
		kbu_str(row, "name", "register", r->name);
		kbu_hex(row, "offset", "xAPIC", r->offset, 3);
		/* ICR high has no MSR of its own: x2APIC folds it into the 64-bit 0x830 */
		if (r->offset == 0x310)
			kbu_display(row, "msr_text", "x2APIC", "(in 0x%03x)", kbu_lapic_msr(0x300));
		else if (r->msr)
			kbu_display(row, "msr_text", "x2APIC", "0x%03x", r->msr);
		else
			kbu_display(row, "msr_text", "x2APIC", "-");
		if (r->msr)
			kbu_u64(row, "msr", "", r->msr);
		else
			kbu_null(row, "msr", "");
		if (kbu_lapic_known(s, r->offset)) {
			uint32_t v = s->reg[r->offset >> 4];
			kbu_hex(row, "value", "value", v, 8);
			decode_reg(r, v, dec, sizeof dec);
			kbu_display(row, "decoded", "decoded", "%s", dec);
			decode_values(row, r, v);
		} else {
			kbu_null(row, "value", "value");
			kbu_display(row, "decoded", "decoded", "%s",
				    r->offset == 0x0b0 ? "(write-only)" : "(not known from this source)");
		}
	}
	struct kbu_node *lvt = kbu_list(sec, "lvt", "local vector table");
	for (size_t i = 0; i < NREGS; i++) {
		const struct kbu_lapic_reg *r = &regs[i];
		if ((r->kind != KBU_LREG_LVT && r->kind != KBU_LREG_LVT_TIMER) ||
		    !kbu_lapic_known(s, r->offset))
			continue;
		struct kbu_lapic_lvt l;
		kbu_lapic_decode_lvt(s->reg[r->offset >> 4], r->kind == KBU_LREG_LVT_TIMER, &l);
		/* the timer has no polarity, remote IRR or trigger: null, "-" in the text */
		int plain = r->kind == KBU_LREG_LVT;
		struct kbu_node *row = kbu_row(lvt);
		kbu_str(row, "name", "entry", r->name);
		kbu_u64(row, "vector", "vector", l.vector);
		kbu_str(row, "delivery", "delivery", l.delivery);
		kbu_display(row, "status", "status", "%s", l.pending ? "pending" : "idle");
		kbu_bool(row, "pending", "", l.pending);
		if (plain)
			kbu_str(row, "polarity", "polarity", l.active_low ? "low" : "high");
		else
			kbu_null(row, "polarity", "polarity");
		kbu_display(row, "remote_irr_text", "remote IRR", "%s",
			    plain ? (l.remote_irr ? "1" : "0") : "-");
		if (plain)
			kbu_bool(row, "remote_irr", "", l.remote_irr);
		else
			kbu_null(row, "remote_irr", "");
		if (plain)
			kbu_str(row, "trigger", "trigger", l.level ? "level" : "edge");
		else
			kbu_null(row, "trigger", "trigger");
		kbu_display(row, "mask", "mask", "%s", l.masked ? "masked" : "unmasked");
		kbu_bool(row, "masked", "", l.masked);
		if (l.timer_mode)
			kbu_str(row, "timer_mode", "timer mode", l.timer_mode);
		else
			kbu_null(row, "timer_mode", "timer mode");
	}
	int partial = !kbu_lapic_known(s, 0x180);
	if (kbu_lapic_known(s, 0x100))
		vector_list(sec, "isr", "in service (ISR)", s, 0x100);
	if (kbu_lapic_known(s, 0x200))
		vector_list(sec, "irr", "requested (IRR)", s, 0x200);
	vector_list(sec, "tmr", partial ? "level-triggered (TMR, only ISR/IRR vectors shown)" :
		    "level-triggered (TMR)", s, 0x180);
	kbu_bool(sec, "tmr_complete", "", !partial);
	if (kbu_lapic_known(s, 0x0f0) && !((s->reg[0x0f0 >> 4] >> 8) & 1))
		kbu_finding(sec, KBU_SEV_NOTE, "lapic.software_disabled",
			    "the APIC is software-disabled (SVR bit 8 = 0): no interrupts, LVTs masked");
	if (kbu_lapic_known(s, 0x320) && kbu_lapic_known(s, 0x380)) {
		uint32_t t = s->reg[0x320 >> 4];
		if (!((t >> 16) & 1) && ((t >> 17) & 3) != 2 && s->reg[0x380 >> 4] == 0)
			kbu_finding(sec, KBU_SEV_NOTE, "lapic.timer_stopped",
				    "the LAPIC timer is unmasked but its initial count is 0: it is stopped");
	}
	if (!other)
		return;
	/* Where two sources disagree, show both values. */
	const char *other_source = kbu_lapic_source_name(other_src);
	char ctitle[128];
	snprintf(ctitle, sizeof ctitle, "registers %s shows otherwise", other_source);
	kbu_str(sec, "compared_with", "", kbu_lapic_source_id(other_src));
	struct kbu_node *cmp = kbu_list(sec, "disagreements", ctitle);
	int n = 0;
	for (size_t i = 0; i < NREGS; i++) {
		unsigned off = regs[i].offset;
		if (off == 0x390 || !kbu_lapic_known(s, off) || !kbu_lapic_known(other, off))
			continue; /* the current count moves between reads */
		uint32_t a = s->reg[off >> 4], b = other->reg[off >> 4];
		if (a == b)
			continue;
		struct kbu_node *row = kbu_row(cmp);
		kbu_str(row, "name", "register", regs[i].name);
		kbu_hex(row, "offset", "xAPIC", off, 3);
		kbu_hex(row, "this", source, a, 8);
		kbu_hex(row, "other", other_source, b, 8);
		n++;
	}
	if (n) {
		struct kbu_node *f = kbu_finding(sec, KBU_SEV_WARN, "lapic.sources_disagree",
						 "%s and %s disagree on %d register%s", source,
						 other_source, n, n == 1 ? "" : "s");
		kbu_u64(f, "registers", "", (uint64_t)n);
	}
	else
		kbu_textline(sec, "%s agrees with %s on every register both show", other_source,
			     source);
}

void kbu_lapic_mode(const struct kbu_lapic_state *s, int have_cpuid, uint32_t cpuid1_ecx,
		    int have_kflag, int kflag, struct kbu_lapic_mode *out)
{
	int svr_known = s && kbu_lapic_known(s, 0x0f0);
	int sw_on = svr_known && ((s->reg[0x0f0 >> 4] >> 8) & 1);
	int x2 = have_cpuid && ((cpuid1_ecx >> 21) & 1);
	out->mode = "unknown";
	out->name = "unknown";
	out->decided_by = NULL;
	out->flag_without_cpu = have_cpuid && have_kflag && kflag && !x2;
	if (have_cpuid && !x2) {
		out->mode = svr_known && !sw_on ? "xAPIC, software-disabled" : "xAPIC";
		out->name = "xAPIC";
		out->decided_by = "cpuid";
	}
	if (have_kflag) {
		if (kflag && (!have_cpuid || x2)) {
			out->mode = "x2APIC (as the kernel set it)";
			out->name = "x2APIC";
			out->decided_by = "kernel";
		} else if (!kflag && !out->decided_by) {
			out->mode = svr_known && !sw_on ? "xAPIC, software-disabled"
							: "xAPIC (as the kernel set it)";
			out->name = "xAPIC";
			out->decided_by = "kernel";
		}
	}
}

void kbu_lapic_decode_text(unsigned offset, uint32_t v, char *buf, size_t len)
{
	const struct kbu_lapic_reg *r = kbu_lapic_reg_at(offset);
	if (!len)
		return;
	buf[0] = '\0';
	if (r)
		decode_reg(r, v, buf, len);
}
