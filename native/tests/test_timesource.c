/* Time sources through the OS profiles' layouts: FreeBSD's timecounter chain, Linux's list_head. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kbu/mem.h"
#include "kbu/os.h"
#include "kbu/timesource.h"

#define KBASE 0xffffffff80200000ull
#define SIZE 0x4000

struct guest {
	uint8_t mem[SIZE];
};

static int guest_read(void *user, int space, uint64_t addr, void *buf, size_t len, char *errbuf,
		      size_t errlen)
{
	struct guest *g = user;
	if (space != KBU_VIRT || addr < KBASE || addr - KBASE > SIZE || len > SIZE - (addr - KBASE)) {
		snprintf(errbuf, errlen, "0x%llx not mapped", (unsigned long long)addr);
		return -1;
	}
	memcpy(buf, g->mem + (addr - KBASE), len);
	return 0;
}

static void put64(struct guest *g, uint64_t va, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		g->mem[va - KBASE + (uint64_t)i] = (uint8_t)(v >> (8 * i));
}

static void put32(struct guest *g, uint64_t va, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		g->mem[va - KBASE + (uint64_t)i] = (uint8_t)(v >> (8 * i));
}

static struct kbu_mem *open_guest(struct guest *g)
{
	struct kbu_err err;
	struct kbu_mem *m = kbu_mem_open_callback(guest_read, NULL, NULL, 1, g, 4096, &err);
	CHECK(m != NULL);
	return m;
}

/* A FreeBSD struct timecounter (80 bytes): frequency 24, name 32, quality 40, next 56. */
static void timecounter(struct guest *g, uint64_t at, const char *name, uint64_t nameat,
			uint64_t freq, int32_t quality, uint64_t next)
{
	strcpy((char *)g->mem + (nameat - KBASE), name);
	put64(g, at + 24, freq);
	put64(g, at + 32, nameat);
	put32(g, at + 40, (uint32_t)quality);
	put64(g, at + 56, next);
}

TEST(freebsd_timecounters)
{
	struct guest *g = calloc(1, sizeof *g);
	const uint64_t head = KBASE + 0x100, i8254 = KBASE + 0x200, dummy = KBASE + 0x300;
	timecounter(g, i8254, "i8254", KBASE + 0x1000, 1193182, 0, dummy);
	timecounter(g, dummy, "dummy", KBASE + 0x1010, 1000000, -1000000, 0);
	put64(g, head, i8254);
	struct kbu_err err;
	struct kbu_os_profile *p = kbu_os_builtin("freebsd", &err);
	CHECK(p != NULL);
	struct kbu_timesource_layout lo;
	kbu_timesource_layout(p, &lo);
	struct kbu_mem *m = open_guest(g);
	struct kbu_timesource t;
	CHECK(kbu_timesource_read(m, NULL, &lo, dummy, &t, &err) == 0);
	CHECK_STR(t.name, "dummy");
	CHECK(t.have_quality && t.quality == -1000000);
	CHECK_STR(t.text, "'dummy' (1000000 Hz, tc_quality -1000000)");
	uint64_t list[8];
	size_t n;
	int cut;
	CHECK(kbu_timesource_list(m, NULL, &lo, head, "pointer", list, 8, &n, &cut, &err) == 0);
	CHECK_EQ_U64(n, 2);
	CHECK_EQ_U64(list[0], i8254);
	CHECK_EQ_U64(list[1], dummy);
	CHECK(!cut);
	/* A loop ends the walk and says so. */
	put64(g, dummy + 56, i8254);
	kbu_mem_flush(m);
	CHECK(kbu_timesource_list(m, NULL, &lo, head, "pointer", list, 8, &n, &cut, &err) == 0);
	CHECK_EQ_U64(n, 2);
	CHECK(cut);
	/* NULL and an unreadable structure. */
	CHECK(kbu_timesource_read(m, NULL, &lo, 0, &t, &err) == 0);
	CHECK_STR(t.text, "NULL");
	CHECK(kbu_timesource_read(m, NULL, &lo, 0xffff800000000000ull, &t, &err) == -1);
	kbu_mem_close(m);
	kbu_os_free(p);
	free(g);
}

TEST(dwarf_offsets_override_the_profile)
{
	struct guest *g = calloc(1, sizeof *g);
	/* A kernel whose name sits at 40 (its DWARF says so), not at the profile's 32. */
	const uint64_t tc = KBASE + 0x200;
	strcpy((char *)g->mem + 0x1000, "i8254");
	put64(g, tc + 40, KBASE + 0x1000);
	struct kbu_err err;
	struct kbu_os_profile *p = kbu_os_builtin("freebsd", &err);
	struct kbu_timesource_layout lo;
	kbu_timesource_layout(p, &lo);
	CHECK(kbu_timesource_override(&lo, "name=40:8", &err) == 0);
	struct kbu_mem *m = open_guest(g);
	struct kbu_timesource t;
	CHECK(kbu_timesource_read(m, NULL, &lo, tc, &t, &err) == 0);
	CHECK_STR(t.name, "i8254");
	CHECK(kbu_timesource_override(&lo, "color=1:2", &err) == -1);
	CHECK(kbu_timesource_override(&lo, "name=40", &err) == -1);
	CHECK(kbu_timesource_override(&lo, "name=40:9", &err) == -1);
	CHECK(kbu_timesource_override(&lo, "name=:8", &err) == -1);
	kbu_mem_close(m);
	kbu_os_free(p);
	free(g);
}

TEST(linux_clocksource_list_head)
{
	struct guest *g = calloc(1, sizeof *g);
	/* struct clocksource: name 48, list 56 (list_head), rating 72 (4 bytes). */
	const uint64_t head = KBASE + 0x100, tsc = KBASE + 0x400, jiffies = KBASE + 0x600;
	strcpy((char *)g->mem + 0x1000, "tsc-early");
	strcpy((char *)g->mem + 0x1010, "jiffies");
	put64(g, tsc + 48, KBASE + 0x1000);
	put32(g, tsc + 72, 299);
	put64(g, jiffies + 48, KBASE + 0x1010);
	put32(g, jiffies + 72, 1);
	put64(g, head, tsc + 56);
	put64(g, tsc + 56, jiffies + 56);
	put64(g, jiffies + 56, head);
	struct kbu_err err;
	struct kbu_os_profile *p = kbu_os_builtin("linux", &err);
	struct kbu_timesource_layout lo;
	kbu_timesource_layout(p, &lo);
	struct kbu_mem *m = open_guest(g);
	uint64_t list[8];
	size_t n;
	int cut;
	CHECK(kbu_timesource_list(m, NULL, &lo, head, "list_head", list, 8, &n, &cut, &err) == 0);
	CHECK_EQ_U64(n, 2);
	CHECK_EQ_U64(list[0], tsc);
	struct kbu_timesource t;
	CHECK(kbu_timesource_read(m, NULL, &lo, list[1], &t, &err) == 0);
	CHECK_STR(t.text, "'jiffies' (rating 1)");
	/* A FreeBSD-style walk of a Linux list: the layout has no `next`. */
	CHECK(kbu_timesource_list(m, NULL, &lo, head, "pointer", list, 8, &n, &cut, &err) == -1);
	/* A link into unreadable memory ends the walk. */
	put64(g, jiffies + 56, 0xffff800000001000ull);
	kbu_mem_flush(m);
	CHECK(kbu_timesource_list(m, NULL, &lo, head, "list_head", list, 8, &n, &cut, &err) == 0);
	CHECK(cut);
	kbu_mem_close(m);
	kbu_os_free(p);
	free(g);
}

TEST(names_are_escaped)
{
	struct guest *g = calloc(1, sizeof *g);
	const uint64_t tc = KBASE + 0x200;
	memcpy(g->mem + 0x1000, "ev\x1b[2Jil", 9);
	put64(g, tc + 32, KBASE + 0x1000);
	struct kbu_err err;
	struct kbu_os_profile *p = kbu_os_builtin("freebsd", &err);
	struct kbu_timesource_layout lo;
	kbu_timesource_layout(p, &lo);
	struct kbu_mem *m = open_guest(g);
	struct kbu_timesource t;
	CHECK(kbu_timesource_read(m, NULL, &lo, tc, &t, &err) == 0);
	CHECK_STR(t.name, "ev\\x1b[2Jil");
	kbu_mem_close(m);
	kbu_os_free(p);
	free(g);
}

int main(void)
{
	RUN(freebsd_timecounters);
	RUN(dwarf_offsets_override_the_profile);
	RUN(linux_clocksource_list_head);
	RUN(names_are_escaped);
	CHECK_DONE("test_timesource");
}
