/* Timecounters with FreeBSD's field order (sys/sys/timetc.h). */
#ifndef GUEST_TIMETC_H
#define GUEST_TIMETC_H

#include "guest.h"

struct timecounter;
struct vdso_timehands;
struct vdso_timehands32;
typedef u_int timecounter_get_t(struct timecounter *);
typedef void timecounter_pps_t(struct timecounter *);
typedef uint32_t timecounter_fill_vdso_timehands_t(struct vdso_timehands *, struct timecounter *);
typedef uint32_t timecounter_fill_vdso_timehands32_t(struct vdso_timehands32 *, struct timecounter *);

struct timecounter {
	timecounter_get_t *tc_get_timecount;
	timecounter_pps_t *tc_poll_pps;
	u_int tc_counter_mask;
	uint64_t tc_frequency;
	const char *tc_name;
	int tc_quality;
	u_int tc_flags;
	void *tc_priv;
	struct timecounter *tc_next;
	timecounter_fill_vdso_timehands_t *tc_fill_vdso_timehands;
	timecounter_fill_vdso_timehands32_t *tc_fill_vdso_timehands32;
};

extern struct timecounter *volatile timecounter;

void tc_init(struct timecounter *tc);
u_int tc_delta_read(struct timecounter *tc, u_int *last);
uint64_t tc_delta_unwrapped(struct timecounter *tc, u_int *last, uint64_t cycles, uint64_t cycles_hz);
int clockcalib(uint32_t (*clk)(void), const char *clkname, uint64_t *freq);

#endif
