/* kbu: a vCPU's state from its registers, QEMU's HLT flag and the code at RIP. */
#include "kbu/vcpu.h"

#include <stdio.h>
#include <string.h>

int kbu_qemu_cpu_halted(const char *text, int index)
{
	if (!text || index < 0)
		return -1;
	char tag[24];
	int tl = snprintf(tag, sizeof tag, "CPU#%d", index);
	const char *p = text;
	for (;; p += tl) {
		p = strstr(p, tag);
		if (!p)
			return -1;
		/* "CPU#1" must not match "CPU#10" */
		if ((p == text || p[-1] == '\n') && (p[tl] == '\r' || p[tl] == '\n' || p[tl] == 0))
			break;
	}
	const char *end = strstr(p + tl, "CPU#");
	const char *h = strstr(p + tl, "HLT=");
	if (!h || (end && h > end))
		return -1;
	if (h[4] == '1')
		return 1;
	if (h[4] == '0')
		return 0;
	return -1;
}

const char *kbu_vcpu_state_name(int s)
{
	switch (s) {
	case KBU_VCPU_RESET: return "reset";
	case KBU_VCPU_WAIT_SIPI: return "wait-for-sipi";
	case KBU_VCPU_HALTED: return "halted";
	case KBU_VCPU_RUNNING: return "running";
	case KBU_VCPU_STOPPED: return "stopped";
	default: return "unknown";
	}
}

const char *kbu_vcpu_where_name(int w)
{
	switch (w) {
	case KBU_VCPU_IN_RESET_VECTOR: return "reset vector";
	case KBU_VCPU_IN_KERNEL: return "kernel";
	case KBU_VCPU_IN_FIRMWARE: return "firmware";
	case KBU_VCPU_IN_OTHER: return "other";
	default: return "unknown";
	}
}

static int at_reset_vector(const struct kbu_regs *r)
{
	if (!(r->have & KBU_HAVE_GPR) || !(r->have & KBU_HAVE_SEG))
		return 0;
	if (r->cs != 0xf000 || (r->rip & 0xffffffffu) != 0xfff0)
		return 0;
	if ((r->have & KBU_HAVE_CR) && (r->cr0 & 1))
		return 0;
	/* After RESET or INIT the CS base is 0xffff0000; a far jump to f000:fff0 makes it 0xf0000. */
	return !(r->have & KBU_HAVE_SEGBASE) || r->cs_base == 0xffff0000u;
}

void kbu_vcpu_classify(const struct kbu_regs *r, int cpu, const struct kbu_vcpu_facts *f,
		       struct kbu_vcpu *out)
{
	memset(out, 0, sizeof(*out));
	if (!r || !(r->have & KBU_HAVE_GPR)) {
		snprintf(out->text, sizeof(out->text), "unknown (no registers)");
		return;
	}
	int halted = f ? f->halted : -1;
	if (at_reset_vector(r)) {
		out->where = KBU_VCPU_IN_RESET_VECTOR;
		if (cpu == 0) {
			out->state = KBU_VCPU_RESET;
			snprintf(out->text, sizeof(out->text), "at the reset vector");
		} else {
			out->state = KBU_VCPU_WAIT_SIPI;
			snprintf(out->text, sizeof(out->text), "waiting for SIPI (INIT state)");
		}
		return;
	}
	/* Whose code: linear RIP (CS base added outside long mode). */
	uint64_t lin = r->rip;
	int longmode = r->bits == 64 && (!(r->have & KBU_HAVE_CR) || (r->cr0 & (1ull << 31)));
	if (!longmode && (r->have & KBU_HAVE_SEGBASE))
		lin = (r->rip + r->cs_base) & 0xffffffffu;
	int paging = (r->have & KBU_HAVE_CR) && (r->cr0 & (1ull << 31));
	if (f && f->in_kernel_text == 1)
		out->where = KBU_VCPU_IN_KERNEL;
	else if (longmode && lin >= 0xffff800000000000ull)
		out->where = KBU_VCPU_IN_KERNEL;
	else if (!paging && ((lin >= 0xe0000 && lin < 0x100000) ||
			     (lin >= 0xfff00000ull && lin < 0x100000000ull)))
		out->where = KBU_VCPU_IN_FIRMWARE;
	else
		out->where = KBU_VCPU_IN_OTHER;
	const char *in = out->where == KBU_VCPU_IN_KERNEL ? "kernel code"
		       : out->where == KBU_VCPU_IN_FIRMWARE ? "firmware (BIOS area)"
		       : "other code";
	if (halted == 1) {
		out->state = KBU_VCPU_HALTED;
		snprintf(out->text, sizeof(out->text), "halted in %s", in);
	} else if (halted == 0) {
		out->state = KBU_VCPU_RUNNING;
		snprintf(out->text, sizeof(out->text), "running %s", in);
	} else if (f && f->hlt_before_rip == 1) {
		out->state = KBU_VCPU_HALTED;
		out->halted_inferred = 1;
		snprintf(out->text, sizeof(out->text), "halted in %s (HLT before RIP)", in);
	} else {
		out->state = KBU_VCPU_STOPPED;
		snprintf(out->text, sizeof(out->text), "in %s (halted or not: unknown)", in);
	}
}
