/* Timecounters (kern_tc.c): "dummy" until tc_init() installs a better one. */
#include "timetc.h"

static u_int dummy_get_timecount(struct timecounter *tc)
{
	static volatile u_int now;
	(void)tc;
	return ++now;
}

static struct timecounter dummy_timecounter = {
	.tc_get_timecount = dummy_get_timecount,
	.tc_counter_mask = ~0u,
	.tc_frequency = 1000000,
	.tc_name = "dummy",
	.tc_quality = -1000000,
};

struct timecounter *volatile timecounter = &dummy_timecounter;
static struct timecounter *timecounters = &dummy_timecounter;

/* FreeBSD picks the new counter when its quality beats the active one's. */
KERNEL_FN void tc_init(struct timecounter *tc)
{
	printf("Timecounter \"%s\" frequency %ju Hz quality %d\n",
	    tc->tc_name, (uintmax_t)tc->tc_frequency, tc->tc_quality);
	tc->tc_next = timecounters;
	timecounters = tc;
	if (tc->tc_quality < 0 || tc->tc_quality < timecounter->tc_quality)
		return;
	(void)tc->tc_get_timecount(tc);
	timecounter = tc;
}

/* Ticks since *last, masked to the counter's width; updates *last. */
u_int tc_delta_read(struct timecounter *tc, u_int *last)
{
	u_int now = tc->tc_get_timecount(tc);
	u_int d = (now - *last) & tc->tc_counter_mask;
	*last = now;
	return d;
}

/*
 * As tc_delta_read, but a counter narrower than 32 bits (the i8254's 16) may
 * wrap while the vCPU is descheduled: add the wraps implied by `cycles` of a
 * wider clock running at about cycles_hz.  No rate: the plain delta.
 */
uint64_t tc_delta_unwrapped(struct timecounter *tc, u_int *last, uint64_t cycles, uint64_t cycles_hz)
{
	uint64_t d = tc_delta_read(tc, last);
	if (cycles_hz == 0 || tc->tc_counter_mask == ~0u)
		return d;
	uint64_t span = (uint64_t)tc->tc_counter_mask + 1;
	uint64_t expect = cycles / (cycles_hz / 1000) * tc->tc_frequency / 1000;
	if (expect > d + span / 2)
		d += (expect - d + span / 2) / span * span;
	return d;
}
