/* The i8254 PIT: a timecounter, and the reference the early TSC calibration uses. */
#include "timetc.h"

#define TIMER_CNTR0   0x40
#define TIMER_MODE    0x43
#define TIMER_SEL0    0x00
#define TIMER_LATCH   0x00
#define TIMER_RATEGEN 0x04
#define TIMER_16BIT   0x30
#define TIMER_FREQ    1193182

int i8254_present;

static u_int i8254_read_count(void)
{
	outb(TIMER_MODE, TIMER_SEL0 | TIMER_LATCH);
	u_int lo = inb(TIMER_CNTR0);
	u_int hi = inb(TIMER_CNTR0);
	return (hi << 8) | lo;
}

/* Counter 0 counts down from 65536 in rate-generator mode; report it counting up. */
static u_int i8254_get_timecount(struct timecounter *tc)
{
	(void)tc;
	return (0x10000 - i8254_read_count()) & 0xffff;
}

struct timecounter i8254_timecounter = {
	.tc_get_timecount = i8254_get_timecount,
	.tc_counter_mask = 0xffff,
	.tc_frequency = TIMER_FREQ,
	.tc_name = "i8254",
	.tc_quality = 0,
};

KERNEL_FN void i8254_init(void)
{
	outb(TIMER_MODE, TIMER_SEL0 | TIMER_RATEGEN | TIMER_16BIT);
	outb(TIMER_CNTR0, 0);
	outb(TIMER_CNTR0, 0);
	/* A missing PIT reads 0xffff forever; a live one moves within a few reads. */
	u_int first = i8254_read_count();
	for (int i = 0; i < 10000; i++) {
		if (i8254_read_count() != first) {
			i8254_present = 1;
			break;
		}
	}
}

/* TSC cycles per second over 10 ms of PIT ticks. */
static uint64_t tsc_rate_10ms(void)
{
	u_int last = i8254_get_timecount(&i8254_timecounter);
	uint64_t ticks = 0;
	uint64_t t0 = rdtsc();
	while (ticks < TIMER_FREQ / 100)
		ticks += tc_delta_read(&i8254_timecounter, &last);
	return (rdtsc() - t0) * TIMER_FREQ / ticks;
}

/*
 * The fix the "ok" boot applies when CPUID gives no TSC frequency: the median
 * of three 10 ms runs against the PIT (under TCG the TSC follows the host's,
 * which a busy host can stall while the PIT runs on: one bad run is outvoted).
 */
KERNEL_FN void tsc_calibrate_i8254(void)
{
	if (!i8254_present || (cpu_feature & CPUID_TSC) == 0)
		return;
	uint64_t a = tsc_rate_10ms(), b = tsc_rate_10ms(), c = tsc_rate_10ms();
	uint64_t lo = a < b ? a : b, hi = a < b ? b : a;
	tsc_freq = c < lo ? lo : c > hi ? hi : c;
	if (tsc_freq == 0)
		tsc_freq = hi;
}
