/* kbu: what mode the CPU is in, from CR0, CR4 and EFER. */
#include "kbu/regs.h"

#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define CR4_LA57 (1ull << 12)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

enum kbu_paging_mode kbu_regs_paging_mode(const struct kbu_regs *r)
{
	if (!r || !(r->have & KBU_HAVE_CR))
		return KBU_PG_UNKNOWN;
	if (!(r->cr0 & CR0_PG))
		return KBU_PG_OFF;
	if (!(r->cr4 & CR4_PAE))
		return KBU_PG_32;
	int long_mode;
	if (r->have & KBU_HAVE_EFER)
		/* LMA is set by the CPU once PG is on with LME; some sources report only LME. */
		long_mode = (r->efer & EFER_LMA) || (r->efer & EFER_LME);
	else
		long_mode = r->bits == 64;
	if (!long_mode)
		return KBU_PG_PAE;
	return (r->cr4 & CR4_LA57) ? KBU_PG_5LEVEL : KBU_PG_4LEVEL;
}

const char *kbu_paging_mode_name(enum kbu_paging_mode m)
{
	switch (m) {
	case KBU_PG_OFF: return "paging off";
	case KBU_PG_32: return "32-bit paging";
	case KBU_PG_PAE: return "PAE paging";
	case KBU_PG_4LEVEL: return "4-level paging";
	case KBU_PG_5LEVEL: return "5-level paging";
	case KBU_PG_UNKNOWN: break;
	}
	return "unknown paging mode";
}
