/* Test support: Firecracker's MP table (see fc_mptable.h for its source). */
#include <string.h>

#include "fc_mptable.h"
#include "support.h"

unsigned fc_mptable_entries(unsigned ncpus)
{
	return ncpus + 1 /* bus */ + 1 /* I/O APIC */ + 24 /* I/O ints */ + 2 /* local ints */;
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
	unsigned s = 0;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	return (uint8_t)s;
}

size_t fc_mptable_build(uint8_t *mem, unsigned ncpus, enum fc_count_style style)
{
	uint8_t *fp = mem + FC_MPTABLE_FP, *h = mem + FC_MPTABLE_TABLE;
	uint8_t *e = h + 44;
	uint8_t ioapic = (uint8_t)(ncpus + 1);
	for (unsigned cpu = 0; cpu < ncpus; cpu++, e += 20) {
		memset(e, 0, 20);
		e[0] = 0;                                  /* MP_PROCESSOR */
		e[1] = (uint8_t)cpu;                       /* apicid */
		e[2] = 0x14;                               /* APIC_VERSION */
		e[3] = (uint8_t)(1 | (cpu == 0 ? 2 : 0));  /* CPU_ENABLED | CPU_BOOTPROCESSOR */
		put_le(e + 4, 0x600, 4);                   /* CPU_STEPPING */
		put_le(e + 8, 0x200 | 0x001, 4);           /* CPU_FEATURE_APIC | CPU_FEATURE_FPU */
	}
	memcpy(e, "\x01\x00" "ISA   ", 8);             /* MP_BUS 0 */
	e += 8;
	e[0] = 2;                                          /* MP_IOAPIC */
	e[1] = ioapic;
	e[2] = 0x14;
	e[3] = 1;                                          /* MPC_APIC_USABLE */
	put_le(e + 4, 0xfec00000, 4);
	e += 8;
	for (unsigned irq = 0; irq < 24; irq++, e += 8) {  /* IRQ_MAX 23 */
		e[0] = 3;                                  /* MP_INTSRC */
		e[1] = 0;                                  /* mp_INT */
		put_le(e + 2, 0, 2);                       /* MP_IRQPOL_DEFAULT */
		e[4] = 0;
		e[5] = (uint8_t)irq;
		e[6] = ioapic;
		e[7] = (uint8_t)irq;
	}
	memcpy(e, "\x04\x03\x00\x00\x00\x00\x00\x00", 8); /* MP_LINTSRC mp_ExtINT -> APIC 0 LINT0 */
	e += 8;
	memcpy(e, "\x04\x01\x00\x00\x00\x00\xff\x01", 8); /* MP_LINTSRC mp_NMI -> all APICs LINT1 */
	e += 8;
	size_t len = (size_t)(e - h);

	memset(h, 0, 44);
	memcpy(h, "PCMP", 4);
	put_le(h + 4, len, 2);
	h[6] = 4;                                          /* MPC_SPEC */
	memcpy(h + 8, "FC      ", 8);
	memcpy(h + 16, "000000000000", 12);
	unsigned count = style == FC_COUNT_WITH_FP ? fc_mptable_entries(ncpus) + 1 : 0;
	put_le(h + 34, count, 2);
	put_le(h + 36, 0xfee00000, 4);
	h[7] = (uint8_t)-sum8(h, len);

	memset(fp, 0, 16);
	memcpy(fp, "_MP_", 4);
	put_le(fp + 4, FC_MPTABLE_TABLE, 4);
	fp[8] = 1;
	fp[9] = 4;
	fp[10] = (uint8_t)-sum8(fp, 16);
	return len;
}
