/* vCPU states: reset vector, wait-for-SIPI, halted (QEMU's HLT= or a HLT before
 * RIP), running; kernel or firmware code; QEMU `info registers -a` text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "membuf.h"
#include "support.h"
#include "kbu/command.h"
#include "kbu/report.h"
#include "kbu/vcpu.h"

/* The shape of QEMU 7.2's `info registers -a`: a CPU#N line, then its registers. */
static const char INFO_REGS[] =
	"\r\nCPU#0\r\nRAX=0000000000000010 RBX=00000000000021e0\r\n"
	"RIP=ffffffff80200102 RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\r\n"
	"CS =0008 0000000000000000 ffffffff 00af9a00 DPL=0 CS64 [-R-]\r\n"
	"\r\nCPU#1\r\nEAX=00000000 EBX=00000000\r\n"
	"EIP=0000fff0 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0\r\n"
	"\r\nCPU#10\r\nEIP=0000fff0 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=1\r\n"
	"\r\nCPU#11\r\nEIP=0000fff0 no flag here\r\n";

TEST(qemu_hlt_flag_per_cpu)
{
	CHECK_EQ_U64(kbu_qemu_cpu_halted(INFO_REGS, 0), 1);
	CHECK_EQ_U64(kbu_qemu_cpu_halted(INFO_REGS, 1), 0);
	CHECK_EQ_U64(kbu_qemu_cpu_halted(INFO_REGS, 10), 1); /* not CPU#1's */
	CHECK_EQ_U64(kbu_qemu_cpu_halted(INFO_REGS, 11), (uint64_t)-1);
	CHECK_EQ_U64(kbu_qemu_cpu_halted(INFO_REGS, 2), (uint64_t)-1);
	CHECK_EQ_U64(kbu_qemu_cpu_halted(NULL, 0), (uint64_t)-1);
	CHECK_EQ_U64(kbu_qemu_cpu_halted("CPU#0\nHLT=", 0), (uint64_t)-1);
	CHECK_EQ_U64(kbu_qemu_cpu_halted("CPU#0", 0), (uint64_t)-1);
}

static struct kbu_regs reset_regs(void)
{
	struct kbu_regs r;
	memset(&r, 0, sizeof(r));
	r.have = KBU_HAVE_GPR | KBU_HAVE_SEG | KBU_HAVE_SEGBASE | KBU_HAVE_CR;
	r.bits = 32;
	r.cs = 0xf000;
	r.cs_base = 0xffff0000;
	r.rip = 0xfff0;
	r.cr0 = 0x60000010;
	return r;
}

TEST(states_from_registers)
{
	struct kbu_vcpu v;
	struct kbu_regs r = reset_regs();
	struct kbu_vcpu_facts f = {.halted = -1, .hlt_before_rip = -1, .in_kernel_text = -1};
	kbu_vcpu_classify(&r, 0, &f, &v);
	CHECK_EQ_U64(v.state, KBU_VCPU_RESET);
	CHECK_STR(kbu_vcpu_state_name(v.state), "reset");
	kbu_vcpu_classify(&r, 2, &f, &v);
	CHECK_EQ_U64(v.state, KBU_VCPU_WAIT_SIPI);
	CHECK_STR(v.text, "waiting for SIPI (INIT state)");
	/* QEMU says HLT=1 for a CPU waiting for SIPI: still that, not "halted". */
	f.halted = 1;
	kbu_vcpu_classify(&r, 2, &f, &v);
	CHECK_EQ_U64(v.state, KBU_VCPU_WAIT_SIPI);
	/* A far jump to f000:fff0 from the BIOS is not the reset state. */
	r.cs_base = 0xf0000;
	kbu_vcpu_classify(&r, 2, &f, &v);
	CHECK_EQ_U64(v.state, KBU_VCPU_HALTED);
	CHECK_EQ_U64(v.where, KBU_VCPU_IN_FIRMWARE);

	/* SeaBIOS parks APs in 32-bit protected mode in its ROM, halted. */
	r = reset_regs();
	r.cs = 0x08;
	r.cs_base = 0;
	r.rip = 0xfd668;
	r.cr0 = 0x11;
	kbu_vcpu_classify(&r, 1, &f, &v);
	CHECK_EQ_U64(v.state, KBU_VCPU_HALTED);
	CHECK_STR(v.text, "halted in firmware (BIOS area)");
	CHECK_STR(kbu_vcpu_where_name(v.where), "firmware");

	/* A kernel in long mode: the high half is kernel code; running when QEMU says HLT=0. */
	memset(&r, 0, sizeof(r));
	r.have = KBU_HAVE_GPR | KBU_HAVE_SEG | KBU_HAVE_CR;
	r.bits = 64;
	r.rip = 0xffffffff81000000ull;
	r.cr0 = 0x80050033;
	r.cs = 0x10;
	f.halted = 0;
	kbu_vcpu_classify(&r, 0, &f, &v);
	CHECK_EQ_U64(v.state, KBU_VCPU_RUNNING);
	CHECK_STR(v.text, "running kernel code");
	/* A dump: no flag; a HLT before RIP is the only hint, and the text says so. */
	f.halted = -1;
	f.hlt_before_rip = 1;
	kbu_vcpu_classify(&r, 0, &f, &v);
	CHECK_EQ_U64(v.state, KBU_VCPU_HALTED);
	CHECK(v.halted_inferred);
	CHECK_STR(v.text, "halted in kernel code (HLT before RIP)");
	f.hlt_before_rip = 0;
	kbu_vcpu_classify(&r, 0, &f, &v);
	CHECK_EQ_U64(v.state, KBU_VCPU_STOPPED);
	CHECK_STR(v.text, "in kernel code (halted or not: unknown)");
	/* A low address with symbols that do not name it: other code. */
	r.rip = 0x200000;
	f.in_kernel_text = 0;
	kbu_vcpu_classify(&r, 0, &f, &v);
	CHECK_EQ_U64(v.where, KBU_VCPU_IN_OTHER);
	f.in_kernel_text = 1;
	kbu_vcpu_classify(&r, 0, &f, &v);
	CHECK_EQ_U64(v.where, KBU_VCPU_IN_KERNEL);
	/* No registers. */
	r.have = 0;
	kbu_vcpu_classify(&r, 0, &f, &v);
	CHECK_EQ_U64(v.state, KBU_VCPU_UNKNOWN);
	kbu_vcpu_classify(NULL, 0, NULL, &v);
	CHECK_EQ_U64(v.state, KBU_VCPU_UNKNOWN);
}

/* kbu cpus over a source with a monitor: the state comes from QEMU's HLT=;
 * without one, from the byte before RIP, and the report says which. */
TEST(cpus_command_says_where_halted_comes_from)
{
	enum { SZ = 0x100000 };
	uint8_t *img = calloc(1, SZ);
	img[0xfd667] = 0xf4; /* hlt; the CPU stopped after it */
	struct membuf *mb;
	struct kbu_ctx *ctx = kbu_ctx_new();
	kbu_ctx_set_mem(ctx, membuf_new(img, SZ, INFO_REGS, 1, &mb));
	mb->have_regs = 1;
	mb->regs.have = KBU_HAVE_GPR | KBU_HAVE_SEG | KBU_HAVE_SEGBASE | KBU_HAVE_CR;
	mb->regs.bits = 32;
	mb->regs.cs = 0x08;
	mb->regs.rip = 0xfd668;
	mb->regs.cr0 = 0x11;
	char *out = NULL;
	struct kbu_err e;
	kbu_err_clear(&e);
	CHECK_EQ_U64(run_cmd(ctx, 1, &out, &e, 1, "cpus"), 0);
	CHECK_CONTAINS(out, "\"vcpus\": {\"count_from\": \"no CPU list in this source: CPU 0 only\", "
			    "\"halted_from\": \"QEMU's monitor (HLT= in info registers -a)\"}");
	CHECK_CONTAINS(out, "\"state\": \"halted\", \"in\": \"firmware\"");
	CHECK_CONTAINS(out, "\"halted\": true, \"halted_from\": \"monitor\"");
	kbu_free(out);
	kbu_ctx_free(ctx);

	ctx = kbu_ctx_new();
	kbu_ctx_set_mem(ctx, membuf_new(img, SZ, NULL, 1, &mb));
	mb->have_regs = 1;
	mb->regs.have = KBU_HAVE_GPR | KBU_HAVE_SEG | KBU_HAVE_SEGBASE | KBU_HAVE_CR;
	mb->regs.bits = 32;
	mb->regs.cs = 0x08;
	mb->regs.rip = 0xfd668;
	mb->regs.cr0 = 0x11;
	out = NULL;
	CHECK_EQ_U64(run_cmd(ctx, 0, &out, &e, 1, "cpus"), 0);
	CHECK_CONTAINS(out, "halted from:  no QEMU monitor here: inferred only where the byte before "
			    "RIP is HLT");
	CHECK_CONTAINS(out, "halted in firmware (BIOS area) (HLT before RIP)");
	kbu_free(out);
	kbu_ctx_free(ctx);
	free(img);
}

int main(void)
{
	RUN(qemu_hlt_flag_per_cpu);
	RUN(states_from_registers);
	RUN(cpus_command_says_where_halted_comes_from);
	CHECK_DONE("test_vcpu");
}
