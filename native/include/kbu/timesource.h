/*
 * kbu: a kernel's time sources, read through its OS profile: the structure
 * one points at (FreeBSD/NetBSD struct timecounter, Linux struct
 * clocksource: name, frequency, quality/rating), the active one (the role
 * timesource, a pointer), and the registration list (timesource_list: a
 * pointer chain through the `next` field, or a Linux list_head through
 * `list`). Field offsets come from the profile's [layout.timesource]; a
 * debugger that has the kernel's DWARF passes the real ones instead.
 */
#ifndef KBU_TIMESOURCE_H
#define KBU_TIMESOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"
#include "kbu/os.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_mem;
struct kbu_elf;
struct kbu_symtab;

#define KBU_TIMESOURCE_MAX_LIST 64

enum { KBU_TS_NAME, KBU_TS_FREQUENCY, KBU_TS_QUALITY, KBU_TS_NEXT, KBU_TS_LIST, KBU_TS_NFIELDS };

struct kbu_timesource_layout {
	struct kbu_os_field f[KBU_TS_NFIELDS];
	int have[KBU_TS_NFIELDS];
	char cname[KBU_TS_NFIELDS][32];   /* the fields' names in the kernel ("tc_quality") */
};

/* The profile's [layout.timesource] (fields it does not name stay absent). */
void kbu_timesource_layout(const struct kbu_os_profile *p, struct kbu_timesource_layout *lo);
/* "name=32:8" (KEY=OFFSET:SIZE, KEY one of name, frequency, quality, next, list):
 * replaces one field, e.g. with the offset DWARF gives. */
int kbu_timesource_override(struct kbu_timesource_layout *lo, const char *spec,
			    struct kbu_err *err);

struct kbu_timesource {
	uint64_t addr;
	char name[64];           /* escaped; valid if have_name */
	int have_name, have_frequency, have_quality;
	uint64_t frequency;
	int64_t quality;         /* sign-extended from the field's width */
	char text[160];          /* "'i8254' (1193182 Hz, tc_quality 0)", or "NULL", or "0x..." */
};

/* Reads the structure at addr. Fails only when nothing of it can be read. */
int kbu_timesource_read(struct kbu_mem *m, const struct kbu_elf *kernel,
			const struct kbu_timesource_layout *lo, uint64_t addr,
			struct kbu_timesource *out, struct kbu_err *err);

/*
 * The registration list from its head symbol (role timesource_list) at
 * head + slide, kind "pointer" (a chain through `next`, FreeBSD's
 * timecounters, NetBSD's) or "list_head" (Linux's clocksource_list through
 * `list`). Addresses of the structures, most recently registered first, at
 * most max; a loop or an unreadable link ends the walk (*truncated set).
 */
int kbu_timesource_list(struct kbu_mem *m, const struct kbu_elf *kernel,
			const struct kbu_timesource_layout *lo, uint64_t head, const char *kind,
			uint64_t *out, size_t max, size_t *n, int *truncated, struct kbu_err *err);

#ifdef __cplusplus
}
#endif
#endif
