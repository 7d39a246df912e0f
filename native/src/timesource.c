/* kbu: time sources (timecounters, clocksources) read through the OS profile's layout. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/dmesg.h"
#include "kbu/timesource.h"
#include "kbu/util.h"

static const char *const field_keys[KBU_TS_NFIELDS] = {"name", "frequency", "quality", "next",
						       "list"};

void kbu_timesource_layout(const struct kbu_os_profile *p, struct kbu_timesource_layout *lo)
{
	memset(lo, 0, sizeof *lo);
	for (int i = 0; i < KBU_TS_NFIELDS; i++) {
		struct kbu_err e;
		if (p && kbu_os_field(p, "timesource", field_keys[i], &lo->f[i], &e) == 0) {
			lo->have[i] = 1;
			snprintf(lo->cname[i], sizeof lo->cname[i], "%s",
				 lo->f[i].cname && lo->f[i].cname[0] ? lo->f[i].cname : field_keys[i]);
			lo->f[i].cname = lo->cname[i];
		}
	}
}

int kbu_timesource_override(struct kbu_timesource_layout *lo, const char *spec,
			    struct kbu_err *err)
{
	const char *eq = strchr(spec, '=');
	const char *colon = eq ? strchr(eq, ':') : NULL;
	if (!eq || !colon)
		return kbu_err_set(err, KBU_EINVAL, "'%s' is not KEY=OFFSET:SIZE", spec);
	int k = -1;
	for (int i = 0; i < KBU_TS_NFIELDS; i++)
		if ((size_t)(eq - spec) == strlen(field_keys[i]) &&
		    strncmp(spec, field_keys[i], (size_t)(eq - spec)) == 0)
			k = i;
	if (k < 0)
		return kbu_err_set(err, KBU_EINVAL, "'%.*s' is not a time source field (name, "
				   "frequency, quality, next, list)", (int)(eq - spec), spec);
	char num[32];
	size_t nl = (size_t)(colon - eq - 1);
	if (nl == 0 || nl >= sizeof num)
		return kbu_err_set(err, KBU_EINVAL, "'%s': bad offset", spec);
	memcpy(num, eq + 1, nl);
	num[nl] = '\0';
	uint64_t off, size;
	if (kbu_parse_u64(num, &off, err) < 0 || kbu_parse_u64(colon + 1, &size, err) < 0 ||
	    off > 0x10000 || size > 8)
		return kbu_err_set(err, KBU_EINVAL, "'%s': offset or size out of range", spec);
	lo->f[k].offset = off;
	lo->f[k].size = (uint32_t)size;
	if (!lo->have[k]) {
		snprintf(lo->cname[k], sizeof lo->cname[k], "%s", field_keys[k]);
		lo->f[k].cname = lo->cname[k];
	}
	lo->have[k] = 1;
	return 0;
}

static int read_uint(struct kbu_mem *m, const struct kbu_elf *k, uint64_t addr, uint32_t size,
		     uint64_t *v)
{
	struct kbu_err e;
	if (!size || size > 8)
		return -1;
	return kbu_read_kva_uint(m, k, addr, size, v, &e);
}

static int read_name(struct kbu_mem *m, const struct kbu_elf *k, uint64_t p, char *buf,
		     size_t len)
{
	uint8_t raw[48];
	size_t n = 0;
	struct kbu_err e;
	/* Byte by byte through kbu's page cache: a name can end just before an unmapped page. */
	while (n < sizeof raw) {
		if (kbu_read_kva(m, k, p + n, &raw[n], 1, &e) < 0)
			return n ? 0 : -1;
		if (!raw[n])
			break;
		n++;
	}
	char *esc = kbu_escape_dup(raw, n, NULL);
	if (!esc)
		return -1;
	snprintf(buf, len, "%s", esc);
	free(esc);
	return 0;
}

int kbu_timesource_read(struct kbu_mem *m, const struct kbu_elf *kernel,
			const struct kbu_timesource_layout *lo, uint64_t addr,
			struct kbu_timesource *out, struct kbu_err *err)
{
	memset(out, 0, sizeof *out);
	out->addr = addr;
	if (!addr) {
		snprintf(out->text, sizeof out->text, "NULL");
		return 0;
	}
	uint64_t v;
	if (lo->have[KBU_TS_NAME] && read_uint(m, kernel, addr + lo->f[KBU_TS_NAME].offset, 8, &v) == 0 &&
	    v && read_name(m, kernel, v, out->name, sizeof out->name) == 0)
		out->have_name = 1;
	if (lo->have[KBU_TS_FREQUENCY] &&
	    read_uint(m, kernel, addr + lo->f[KBU_TS_FREQUENCY].offset, lo->f[KBU_TS_FREQUENCY].size,
		      &v) == 0) {
		out->frequency = v;
		out->have_frequency = 1;
	}
	if (lo->have[KBU_TS_QUALITY] &&
	    read_uint(m, kernel, addr + lo->f[KBU_TS_QUALITY].offset, lo->f[KBU_TS_QUALITY].size,
		      &v) == 0) {
		uint32_t sz = lo->f[KBU_TS_QUALITY].size;
		if (sz < 8 && (v >> (8 * sz - 1)) & 1)
			v |= ~0ull << (8 * sz);
		out->quality = (int64_t)v;
		out->have_quality = 1;
	}
	if (!out->have_name && !out->have_frequency && !out->have_quality) {
		snprintf(out->text, sizeof out->text, "0x%" PRIx64 " (unreadable)", addr);
		return kbu_err_set(err, KBU_EFAULT, "the time source at 0x%" PRIx64 " cannot be read",
				   addr);
	}
	char extra[96] = "";
	size_t n = 0;
	if (out->have_frequency)
		n += (size_t)snprintf(extra + n, sizeof extra - n, "%" PRIu64 " Hz", out->frequency);
	if (out->have_quality && n < sizeof extra)
		snprintf(extra + n, sizeof extra - n, "%s%s %" PRId64, n ? ", " : "",
			 lo->f[KBU_TS_QUALITY].cname, out->quality);
	if (out->have_name)
		snprintf(out->text, sizeof out->text, "'%s'%s%s%s", out->name, extra[0] ? " (" : "",
			 extra, extra[0] ? ")" : "");
	else
		snprintf(out->text, sizeof out->text, "'0x%" PRIx64 "'%s%s%s", addr,
			 extra[0] ? " (" : "", extra, extra[0] ? ")" : "");
	return 0;
}

int kbu_timesource_list(struct kbu_mem *m, const struct kbu_elf *kernel,
			const struct kbu_timesource_layout *lo, uint64_t head, const char *kind,
			uint64_t *out, size_t max, size_t *n, int *truncated, struct kbu_err *err)
{
	*n = 0;
	*truncated = 0;
	int list_head = kind && strcmp(kind, "list_head") == 0;
	int k = list_head ? KBU_TS_LIST : KBU_TS_NEXT;
	if (!lo->have[k])
		return kbu_err_set(err, KBU_ENOTFOUND, "the profile's timesource layout has no '%s' "
				   "field to walk the list by", list_head ? "list" : "next");
	uint64_t p;
	if (read_uint(m, kernel, head, 8, &p) < 0)
		return kbu_err_set(err, KBU_EFAULT, "cannot read the list head at 0x%" PRIx64, head);
	while (p && (!list_head || p != head)) {
		uint64_t obj = list_head ? p - lo->f[k].offset : p;
		for (size_t i = 0; i < *n; i++)
			if (out[i] == obj) {
				*truncated = 1; /* a loop */
				return 0;
			}
		if (*n >= max) {
			*truncated = 1;
			return 0;
		}
		out[(*n)++] = obj;
		uint64_t next;
		if (read_uint(m, kernel, list_head ? p : obj + lo->f[k].offset, 8, &next) < 0) {
			*truncated = 1;
			return 0;
		}
		p = next;
	}
	return 0;
}
