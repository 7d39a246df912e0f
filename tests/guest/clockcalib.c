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

/* Clock ticks per second over 10 ms of timecounter ticks. */
static uint64_t calib_round(struct timecounter *tc, uint32_t (*clk)(void), int spin_per_poll)
{
	uint64_t want = tc->tc_frequency / 100, got = 0;
	u_int last = tc->tc_get_timecount(tc);
	uint32_t c0 = clk();

	while (got < want) {
		if (spin_per_poll)
			spin(spin_per_poll);
		got += tc_delta_read(tc, &last);
	}
	uint32_t c1 = clk();
	return (uint64_t)(uint32_t)(c1 - c0) * tc->tc_frequency / got;
}

KERNEL_FN int clockcalib(uint32_t (*clk)(void), const char *clkname, uint64_t *freq)
{
	struct timecounter *tc = timecounter;

	for (int attempt = 0; attempt < CALIB_ATTEMPTS; attempt++) {
		uint64_t est[CALIB_ROUNDS];
		for (int r = 0; r < CALIB_ROUNDS; r++)
			est[r] = calib_round(tc, clk, r == 0 ? 0 : SLOW_POLL_SPIN);
		uint64_t lo = est[0] < est[1] ? est[0] : est[1];
		uint64_t hi = est[0] < est[1] ? est[1] : est[0];
		/* Agreement within 2% between the two polling rates. */
		if (lo > 0 && (hi - lo) * 50 <= lo) {
			*freq = (est[0] + est[1]) / 2;
			return 0;
		}
		printf("%s: calibration against \"%s\" disagrees: %ju vs %ju Hz\n",
		    clkname, tc->tc_name, (uintmax_t)est[0], (uintmax_t)est[1]);
	}
	printf("Statistical %s calibration failed!  Clocks might be ticking at variable rates.\n",
	    clkname);
	return -1;
}
