/* kbu: virtio_mmio.device= entries of a kernel command line, and where devices are described. */
#include "kbu/virtio_mmio.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A number in C notation (0x hex, 0 octal, decimal) from [*p, end); 0 on success. */
static int number(const char **p, const char *end, uint64_t *v, int base10)
{
	const char *s = *p;
	int base = 10;
	if (!base10 && end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	} else if (!base10 && end - s > 1 && s[0] == '0' && isdigit((unsigned char)s[1])) {
		base = 8;
		s++;
	}
	const char *digits = s;
	uint64_t x = 0;
	for (; s < end; s++) {
		int d = isdigit((unsigned char)*s) ? *s - '0'
			: (*s >= 'a' && *s <= 'f') ? *s - 'a' + 10
			: (*s >= 'A' && *s <= 'F') ? *s - 'A' + 10 : 99;
		if (d >= base)
			break;
		if (x > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return -2; /* overflow */
		x = x * (uint64_t)base + (uint64_t)d;
	}
	if (s == digits)
		return -1;
	*v = x;
	*p = s;
	return 0;
}

int kbu_vmmio_parse(const char *val, size_t len, struct kbu_vmmio_dev *d, struct kbu_err *err)
{
	const char *p = val, *end = val + len;
	memset(d, 0, sizeof(*d));
	int r = number(&p, end, &d->size, 0);
	if (r)
		return kbu_err_set(err, KBU_EFORMAT, r == -2 ? "the size does not fit 64 bits"
						   : "no size before '@' (SIZE@BASE:IRQ)");
	/* memparse's suffixes */
	if (p < end && strchr("KkMmGgTtPpEe", *p)) {
		int shift = strchr("Kk", *p) ? 10 : strchr("Mm", *p) ? 20 : strchr("Gg", *p) ? 30
			    : strchr("Tt", *p) ? 40 : strchr("Pp", *p) ? 50 : 60;
		if (d->size > (UINT64_MAX >> shift))
			return kbu_err_set(err, KBU_EFORMAT, "the size %" PRIu64 "%c does not fit 64 bits",
					   d->size, *p);
		d->size <<= shift;
		p++;
	}
	if (d->size == 0)
		return kbu_err_set(err, KBU_EFORMAT, "the size is 0");
	if (p >= end || *p != '@')
		return kbu_err_set(err, KBU_EFORMAT, "expected '@' after the size, found %s",
				   p >= end ? "the end" : "another character");
	p++;
	if ((r = number(&p, end, &d->base, 0)) != 0)
		return kbu_err_set(err, KBU_EFORMAT, r == -2 ? "the base address does not fit 64 bits"
						   : "no base address after '@'");
	if (d->base + d->size - 1 < d->base)
		return kbu_err_set(err, KBU_EFORMAT,
				   "the region 0x%" PRIx64 "+0x%" PRIx64 " wraps past the top of memory",
				   d->base, d->size);
	if (p >= end || *p != ':')
		return kbu_err_set(err, KBU_EFORMAT, "expected ':IRQ' after the base address");
	p++;
	uint64_t irq;
	if (number(&p, end, &irq, 1) != 0 || irq > UINT32_MAX)
		return kbu_err_set(err, KBU_EFORMAT, "no IRQ number after ':'");
	if (irq == 0)
		return kbu_err_set(err, KBU_EFORMAT, "IRQ 0 (Linux refuses it)");
	d->irq = (uint32_t)irq;
	if (p < end && *p == ':') {
		p++;
		uint64_t id;
		if (number(&p, end, &id, 1) != 0 || id > UINT32_MAX)
			return kbu_err_set(err, KBU_EFORMAT, "no device id after the second ':'");
		d->has_id = 1;
		d->id = (uint32_t)id;
	}
	if (p < end)
		return kbu_err_set(err, KBU_EFORMAT, "unexpected characters after %s",
				   d->has_id ? "the device id" : "the IRQ");
	return 0;
}

static const char KEY[] = "virtio_mmio.device";

void kbu_vmmio_scan(const char *cmdline, struct kbu_vmmio_list *out)
{
	memset(out, 0, sizeof(*out));
	if (!cmdline)
		return;
	const char *s = cmdline;
	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			s++;
		const char *tok = s;
		while (*s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			s++;
		size_t tl = (size_t)(s - tok), kl = sizeof(KEY) - 1;
		if (tl <= kl || strncmp(tok, KEY, kl) != 0)
			continue;
		const char *k = tok + kl;
		if (*k == '_') { /* FreeBSD's virtio_mmio.device_N */
			const char *dg = ++k;
			while (k < s && isdigit((unsigned char)*k))
				k++;
			if (k == dg)
				continue;
		}
		if (k >= s || *k != '=')
			continue;
		size_t keylen = (size_t)(k - tok);
		const char *val = k + 1;
		struct kbu_vmmio_dev d;
		struct kbu_err e;
		if (kbu_vmmio_parse(val, (size_t)(s - val), &d, &e) == 0) {
			if (out->ndevs >= KBU_VMMIO_MAX) {
				out->nskipped++;
				continue;
			}
			d.at = (size_t)(tok - cmdline);
			snprintf(d.key, sizeof(d.key), "%.*s", (int)(keylen < 31 ? keylen : 31), tok);
			out->devs[out->ndevs++] = d;
		} else {
			if (out->nbad >= KBU_VMMIO_MAX) {
				out->nskipped++;
				continue;
			}
			struct kbu_vmmio_bad *b = &out->bad[out->nbad++];
			b->at = (size_t)(tok - cmdline);
			size_t n = tl < sizeof(b->text) - 1 ? tl : sizeof(b->text) - 1;
			for (size_t i = 0; i < n; i++)
				b->text[i] = tok[i] >= 0x20 && tok[i] < 0x7f ? tok[i] : '?';
			b->text[n] = 0;
			snprintf(b->why, sizeof(b->why), "%.159s", e.msg);
		}
	}
}

const char *kbu_devices_source_name(int where)
{
	switch (where) {
	case KBU_DEVICES_NONE: return "none";
	case KBU_DEVICES_CMDLINE: return "command line";
	case KBU_DEVICES_ACPI: return "ACPI";
	case KBU_DEVICES_BOTH: return "both";
	default: return "unknown";
	}
}

/* ---- the DSDT's virtio-mmio devices ---- */

static uint32_t le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static int name_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static const uint8_t *find(const uint8_t *from, const uint8_t *end, const char *pat, size_t n)
{
	for (const uint8_t *q = from; q && end - q >= (ptrdiff_t)n; q++)
		if (memcmp(q, pat, n) == 0)
			return q;
	return NULL;
}

void kbu_vmmio_scan_aml(const uint8_t *aml, size_t len, struct kbu_vmmio_list *out)
{
	static const char hid[] = "\x08_HID\x0dLNRO0005"; /* Name(_HID, "LNRO0005") */
	const size_t hidlen = sizeof hid - 1;
	memset(out, 0, sizeof(*out));
	if (!aml || len <= 36)
		return;
	const uint8_t *end = aml + len, *p = aml + 36; /* past the table header */
	const uint8_t *h;
	while ((h = find(p, end, hid, hidlen)) != NULL) {
		p = h + hidlen;
		/* The device's extent, as far as kbu needs it: up to the next device's _HID. */
		const uint8_t *next = find(p, end, "\x08_HID", 5);
		const uint8_t *stop = next ? next : end;
		if (stop - h > 512)
			stop = h + 512;
		char key[32] = "DSDT";
		if (h - aml >= 4 + 36 && name_char(h[-4]) && name_char(h[-3]) && name_char(h[-2]) &&
		    name_char(h[-1]))
			snprintf(key, sizeof key, "DSDT %c%c%c%c", h[-4], h[-3], h[-2], h[-1]);
		const uint8_t *mem = NULL, *irq = NULL;
		for (const uint8_t *q = p; q < stop; q++) {
			/* Memory32Fixed: tag 0x86, length 9, info, base, size */
			if (!mem && stop - q >= 12 && q[0] == 0x86 && q[1] == 9 && q[2] == 0)
				mem = q;
			/* Extended Interrupt: tag 0x89, length >= 6, flags, count >= 1, IRQs */
			if (!irq && stop - q >= 9 && q[0] == 0x89 && q[2] == 0 && q[1] >= 6 && q[4] >= 1)
				irq = q;
		}
		if (!mem || !irq) {
			if (out->nbad < KBU_VMMIO_MAX) {
				struct kbu_vmmio_bad *b = &out->bad[out->nbad++];
				b->at = (size_t)(h - aml);
				snprintf(b->text, sizeof b->text, "%s", key);
				snprintf(b->why, sizeof b->why, "its _CRS has no %s",
					 !mem ? "Memory32Fixed window" : "interrupt");
			}
			continue;
		}
		if (out->ndevs >= KBU_VMMIO_MAX) {
			out->nskipped++;
			continue;
		}
		struct kbu_vmmio_dev *d = &out->devs[out->ndevs++];
		memset(d, 0, sizeof(*d));
		d->base = le32(mem + 4);
		d->size = le32(mem + 8);
		d->irq = le32(irq + 5);
		d->at = (size_t)(h - aml);
		snprintf(d->key, sizeof d->key, "%s", key);
	}
}

void kbu_devices_where(const char *cmdline, int dsdt, int dsdt_devices,
		       struct kbu_devices_where *out)
{
	memset(out, 0, sizeof(*out));
	out->cmdline_known = cmdline != NULL;
	out->dsdt = dsdt;
	out->ndsdt = dsdt == 1 && dsdt_devices > 0 ? dsdt_devices : 0;
	struct kbu_vmmio_list l;
	kbu_vmmio_scan(cmdline, &l);
	out->ncmdline = l.ndevs;
	out->nbad = l.nbad;
	int on_cmdline = l.ndevs > 0, in_acpi = out->ndsdt > 0;
	char acpi[96];
	snprintf(acpi, sizeof acpi, "%s", dsdt == 1 ? "the DSDT describes none"
		 : dsdt == 0 ? "there is no DSDT" : "the ACPI tables are not known");
	if (!cmdline && !in_acpi) {
		out->where = KBU_DEVICES_UNKNOWN;
		snprintf(out->how, sizeof(out->how), "the command line is not known, and %s", acpi);
		return;
	}
	if (on_cmdline && in_acpi) {
		out->where = KBU_DEVICES_BOTH;
		snprintf(out->how, sizeof(out->how),
			 "both: %zu virtio_mmio.device entr%s on the command line and %d in the DSDT; "
			 "a kernel that reads both may attach a device twice",
			 l.ndevs, l.ndevs == 1 ? "y" : "ies", out->ndsdt);
	} else if (on_cmdline) {
		out->where = KBU_DEVICES_CMDLINE;
		snprintf(out->how, sizeof(out->how),
			 "on the command line: %zu virtio_mmio.device entr%s, and %s; a kernel that "
			 "looks for them only in ACPI finds none",
			 l.ndevs, l.ndevs == 1 ? "y" : "ies", acpi);
	} else if (in_acpi) {
		out->where = KBU_DEVICES_ACPI;
		snprintf(out->how, sizeof(out->how),
			 "in ACPI: the DSDT describes %d (LNRO0005)%s; a kernel that takes virtio-mmio "
			 "devices only from the command line (FreeBSD's FIRECRACKER configuration) "
			 "finds none", out->ndsdt,
			 cmdline ? " and the command line has no virtio_mmio.device entry"
				 : " (the command line is not known)");
	} else {
		out->where = KBU_DEVICES_NONE;
		snprintf(out->how, sizeof(out->how),
			 "nowhere: no virtio_mmio.device entry on the command line, and %s", acpi);
	}
	if (l.nbad) {
		size_t n = strlen(out->how);
		snprintf(out->how + n, sizeof(out->how) - n, "; %zu malformed entr%s (%s: %s)", l.nbad,
			 l.nbad == 1 ? "y" : "ies", l.bad[0].text, l.bad[0].why);
	}
}
