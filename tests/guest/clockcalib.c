/*
 * Statistical calibration of a clock against the active timecounter.
 * Two rounds over the same number of timecounter ticks, one polling the
 * timecounter tightly and one slowly: a timecounter that follows real time
 * gives the same rate both ways; one that counts reads ("dummy") does not.
 */
#include "timetc.h"

#define CALIB_ROUNDS   2
#define CALIB_ATTEMPTS 3
#define SLOW_POLL_SPIN 50

static void spin(int n)
{
	for (volatile int i = 0; i < n; i++)
		;
}

/*
 * Read the timecounter between two clock reads and keep the tightest of a few
 * tries, so a host that deschedules the vCPU mid-sample does not skew a round.
 */
static void calib_sample(struct timecounter *tc, uint32_t (*clk)(void), u_int *t, uint32_t *c)
{
	uint32_t best = UINT32_MAX;

	for (int i = 0; i < 5; i++) {
		uint32_t c0 = clk();
		u_int t0 = tc->tc_get_timecount(tc);
		uint32_t c1 = clk();
		if (c1 - c0 < best) {
			best = c1 - c0;
			*t = t0;
			*c = c0 + (c1 - c0) / 2;
		}
	}
}

/*
 * Clock ticks per second over `want` timecounter ticks.  With a rough clock
 * rate, wraps of a narrow timecounter (the i8254's 16 bits last 55 ms) while
 * the host had the vCPU descheduled are counted from the clock's own advance.
 */
static uint64_t calib_round(struct timecounter *tc, uint32_t (*clk)(void), uint64_t want,
    int spin_per_poll, uint64_t rough_hz)
{
	uint64_t got = 0;
	u_int last, t1;
	uint32_t c0, c1;

	calib_sample(tc, clk, &last, &c0);
	uint32_t prev = c0;
	while (got < want) {
		if (spin_per_poll)
			spin(spin_per_poll);
		uint32_t now = clk();
		got += tc_delta_unwrapped(tc, &last, (uint32_t)(now - prev), rough_hz);
		prev = now;
	}
	calib_sample(tc, clk, &t1, &c1);
	got += (t1 - last) & tc->tc_counter_mask;
	if (got == 0)
		return 0;
	return (uint64_t)(uint32_t)(c1 - c0) * tc->tc_frequency / got;
}

/* Lowest of three 1 ms rounds: a missed wrap can only inflate an estimate. */
static uint64_t calib_rough(struct timecounter *tc, uint32_t (*clk)(void))
{
	uint64_t rough = UINT64_MAX;
	for (int i = 0; i < 3; i++) {
		uint64_t r = calib_round(tc, clk, tc->tc_frequency / 1000, 0, 0);
		if (r < rough)
			rough = r;
	}
	return rough;
}

KERNEL_FN int clockcalib(uint32_t (*clk)(void), const char *clkname, uint64_t *freq)
{
	struct timecounter *tc = timecounter;

	for (int attempt = 0; attempt < CALIB_ATTEMPTS; attempt++) {
		uint64_t rough = calib_rough(tc, clk), est[CALIB_ROUNDS];
		for (int r = 0; r < CALIB_ROUNDS; r++)
			est[r] = calib_round(tc, clk, tc->tc_frequency / 100, r == 0 ? 0 : SLOW_POLL_SPIN, rough);
		uint64_t lo = est[0] < est[1] ? est[0] : est[1];
		uint64_t hi = est[0] < est[1] ? est[1] : est[0];
		/* Agreement within 2% between the two polling rates. */
		if (lo > 0 && (hi - lo) * 50 <= lo) {
			*freq = (est[0] + est[1]) / 2;
			return 0;
		}
	}
	printf("Statistical %s calibration failed!  Clocks might be ticking at variable rates.\n",
	    clkname);
	return -1;
}
