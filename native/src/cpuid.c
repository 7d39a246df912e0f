/* kbu: CPUID decoding: vendor, signature, feature flags, hypervisor leaves, TSC chain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/cpuid.h"
#include "kbu/report.h"

/* Feature bit names, indexed by bit, as the SDM / APM name them. */
static const char *const leaf1_edx[32] = {
	"FPU", "VME", "DE", "PSE", "TSC", "MSR", "PAE", "MCE", "CX8", "APIC", NULL, "SEP",
	"MTRR", "PGE", "MCA", "CMOV", "PAT", "PSE36", "PSN", "CLFSH", NULL, "DS", "ACPI", "MMX",
	"FXSR", "SSE", "SSE2", "SS", "HTT", "TM", NULL, "PBE",
};
static const char *const leaf1_ecx[32] = {
	"SSE3", "PCLMULQDQ", "DTES64", "MONITOR", "DS-CPL", "VMX", "SMX", "EST", "TM2", "SSSE3",
	"CNXT-ID", "SDBG", "FMA", "CX16", "xTPR", "PDCM", NULL, "PCID", "DCA", "SSE4.1", "SSE4.2",
	"x2APIC", "MOVBE", "POPCNT", "TSC-DEADLINE", "AESNI", "XSAVE", "OSXSAVE", "AVX", "F16C",
	"RDRAND", "HYPERVISOR",
};
static const char *const leaf7_ebx[32] = {
	"FSGSBASE", "TSC_ADJUST", "SGX", "BMI1", "HLE", "AVX2", "FDP_EXCPTN_ONLY", "SMEP", "BMI2",
	"ERMS", "INVPCID", "RTM", "PQM", "FPU_CSDS_DEPR", "MPX", "PQE", "AVX512F", "AVX512DQ",
	"RDSEED", "ADX", "SMAP", "AVX512_IFMA", "PCOMMIT", "CLFLUSHOPT", "CLWB", "INTEL_PT",
	"AVX512PF", "AVX512ER", "AVX512CD", "SHA", "AVX512BW", "AVX512VL",
};
static const char *const leaf7_ecx[32] = {
	"PREFETCHWT1", "AVX512_VBMI", "UMIP", "PKU", "OSPKE", "WAITPKG", "AVX512_VBMI2", "CET_SS",
	"GFNI", "VAES", "VPCLMULQDQ", "AVX512_VNNI", "AVX512_BITALG", "TME", "AVX512_VPOPCNTDQ",
	NULL, "LA57", NULL, NULL, NULL, NULL, NULL, "RDPID", "KL", NULL, "CLDEMOTE", NULL,
	"MOVDIRI", "MOVDIR64B", "ENQCMD", "SGX_LC", "PKS",
};
static const char *const leaf7_edx[32] = {
	NULL, NULL, "AVX512_4VNNIW", "AVX512_4FMAPS", "FSRM", "UINTR", NULL, NULL,
	"AVX512_VP2INTERSECT", NULL, "MD_CLEAR", NULL, NULL, NULL, "SERIALIZE", "HYBRID",
	"TSXLDTRK", NULL, "PCONFIG", "ARCH_LBR", "CET_IBT", NULL, "AMX_BF16", "AVX512_FP16",
	"AMX_TILE", "AMX_INT8", "IBRS_IBPB", "STIBP", "L1D_FLUSH", "ARCH_CAPABILITIES",
	"CORE_CAPABILITIES", "SSBD",
};
static const char *const ext1_edx[32] = {
	[11] = "SYSCALL", [19] = "MP", [20] = "NX", [22] = "MMXEXT", [25] = "FFXSR",
	[26] = "Page1GB", [27] = "RDTSCP", [29] = "LM", [30] = "3DNowExt", [31] = "3DNow",
};
static const char *const ext1_ecx[32] = {
	"LAHF_LM", "CMP_LEGACY", "SVM", "ExtApicSpace", "CR8_LEGACY", "ABM", "SSE4A",
	"MisAlignSse", "3DNowPrefetch", "OSVW", "IBS", "XOP", "SKINIT", "WDT", NULL, "LWP", "FMA4",
	"TCE", NULL, "NodeId", NULL, "TBM", "TopoExt", "PerfCtrCore", "PerfCtrNB", NULL, "DBX",
	"PerfTSC", "PerfCtrL2I", "MONITORX", "AddrMaskExt", NULL,
};
static const char *const leaf6_eax[32] = {
	"DTS", "TURBO", "ARAT", NULL, "PLN", "ECMD", "PTM", "HWP", "HWP_NOTIFY", "HWP_ACT_WINDOW",
	"HWP_EPP", "HWP_PLR", NULL, "HDC", "TURBO3", "HWP_CAP", "HWP_PECI", "HWP_FLEX",
	"HWP_FAST", "HW_FEEDBACK", "HWP_IGNORE_IDLE",
};
static const char *const ext7_edx[32] = {
	"TS", "FID", "VID", "TTP", "TM", "STC", "100MHZSTEPS", "HWPSTATE", "INVARIANT_TSC",
	"CPB", "EFRO",
};

static const char *const *flag_table(uint32_t leaf, uint32_t subleaf, char reg)
{
	switch (leaf) {
	case 1:
		return reg == 'c' ? leaf1_ecx : reg == 'd' ? leaf1_edx : NULL;
	case 6:
		return reg == 'a' ? leaf6_eax : NULL;
	case 7:
		if (subleaf != 0)
			return NULL;
		return reg == 'b' ? leaf7_ebx : reg == 'c' ? leaf7_ecx : reg == 'd' ? leaf7_edx : NULL;
	case 0x80000001:
		return reg == 'c' ? ext1_ecx : reg == 'd' ? ext1_edx : NULL;
	case 0x80000007:
		return reg == 'd' ? ext7_edx : NULL;
	default:
		return NULL;
	}
}

size_t kbu_cpuid_flags(uint32_t leaf, uint32_t subleaf, char reg, uint32_t value,
		       const char **names, char (*unnamed)[8], size_t max)
{
	const char *const *t = flag_table(leaf, subleaf, reg);
	size_t n = 0;
	if (!t)
		return 0;
	for (unsigned b = 0; b < 32 && n < max; b++) {
		if (!(value & (1u << b)))
			continue;
		if (t[b]) {
			names[n++] = t[b];
		} else if (unnamed) {
			snprintf(unnamed[n], sizeof unnamed[n], "bit%u", b);
			names[n] = unnamed[n];
			n++;
		}
	}
	return n;
}

int kbu_cpuid_flag_bit(uint32_t leaf, char reg, const char *name)
{
	const char *const *t = flag_table(leaf, 0, reg);
	if (!t || !name)
		return -1;
	for (int b = 0; b < 32; b++)
		if (t[b] && strcmp(t[b], name) == 0)
			return b;
	return -1;
}

static int parse_u32(const char *s, const char *end, uint32_t *out)
{
	char buf[40];
	size_t n = (size_t)(end - s);
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	char *e;
	unsigned long long v = strtoull(buf, &e, 0);
	if (*e || v > 0xffffffffull || buf[0] == '-')
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int kbu_cpuid_parse_leaf(const char *spec, struct kbu_cpuid_leaf *out, struct kbu_err *err)
{
	if (!spec || !out)
		return kbu_err_set(err, KBU_EINVAL, "no CPUID leaf given");
	memset(out, 0, sizeof *out);
	const char *eq = strchr(spec, '=');
	if (!eq)
		return kbu_err_set(err, KBU_EINVAL,
				   "CPUID leaf \"%s\": expected LEAF[.SUB]=EAX,EBX,ECX,EDX", spec);
	const char *dot = memchr(spec, '.', (size_t)(eq - spec));
	if (parse_u32(spec, dot ? dot : eq, &out->leaf) < 0 ||
	    (dot && parse_u32(dot + 1, eq, &out->subleaf) < 0))
		return kbu_err_set(err, KBU_EINVAL, "CPUID leaf \"%s\": bad leaf number", spec);
	uint32_t *regs[4] = {&out->eax, &out->ebx, &out->ecx, &out->edx};
	const char *p = eq + 1;
	for (int i = 0; i < 4; i++) {
		const char *c = strchr(p, ',');
		const char *e = (i < 3) ? c : p + strlen(p);
		if (!e || (i == 3 && c) || parse_u32(p, e, regs[i]) < 0)
			return kbu_err_set(err, KBU_EINVAL,
					   "CPUID leaf \"%s\": expected four 32-bit values EAX,EBX,ECX,EDX",
					   spec);
		p = e + 1;
	}
	return 0;
}

int kbu_cpuid_set_add(struct kbu_cpuid_set *s, const struct kbu_cpuid_leaf *l, struct kbu_err *err)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->l[i].leaf == l->leaf && s->l[i].subleaf == l->subleaf) {
			s->l[i] = *l;
			return 0;
		}
	}
	if (s->n >= KBU_CPUID_MAX)
		return kbu_err_set(err, KBU_EINVAL, "more than %d CPUID leaves given", KBU_CPUID_MAX);
	s->l[s->n++] = *l;
	return 0;
}

const struct kbu_cpuid_leaf *kbu_cpuid_find(const struct kbu_cpuid_set *s, uint32_t leaf,
					    uint32_t subleaf)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->l[i].leaf == leaf && s->l[i].subleaf == subleaf)
			return &s->l[i];
	return NULL;
}

struct kbu_cpuid_sig kbu_cpuid_signature(uint32_t eax)
{
	struct kbu_cpuid_sig g;
	unsigned base_family = (eax >> 8) & 0xf, base_model = (eax >> 4) & 0xf;
	g.stepping = eax & 0xf;
	g.type = (eax >> 12) & 3;
	g.family = base_family == 0xf ? base_family + ((eax >> 20) & 0xff) : base_family;
	g.model = (base_family == 6 || base_family == 0xf) ? base_model | (((eax >> 16) & 0xf) << 4)
							   : base_model;
	return g;
}

static void put4(char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		unsigned char c = (unsigned char)(v >> (8 * i));
		p[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '.';
	}
}

void kbu_cpuid_vendor(const struct kbu_cpuid_leaf *l, int hypervisor, char out[13])
{
	put4(out, l->ebx);
	put4(out + 4, hypervisor ? l->ecx : l->edx);
	put4(out + 8, hypervisor ? l->edx : l->ecx);
	out[12] = '\0';
}

/* Highest leaf of a range as the CPU reported it, 0 if the range's base leaf is absent. */
static int max_leaf(const struct kbu_cpuid_set *s, uint32_t base, uint32_t *max)
{
	const struct kbu_cpuid_leaf *l = kbu_cpuid_find(s, base, 0);
	if (!l)
		return 0;
	*max = l->eax;
	return 1;
}

static void regs_row(struct kbu_node *o, const struct kbu_cpuid_leaf *l)
{
	kbu_hex(o, "eax", "EAX", l->eax, 8);
	kbu_hex(o, "ebx", "EBX", l->ebx, 8);
	kbu_hex(o, "ecx", "ECX", l->ecx, 8);
	kbu_hex(o, "edx", "EDX", l->edx, 8);
}

static void flags_field(struct kbu_node *o, const struct kbu_cpuid_leaf *l, char reg, uint32_t v)
{
	const char *names[32];
	char unnamed[32][8];
	size_t n = kbu_cpuid_flags(l->leaf, l->subleaf, reg, v, names, unnamed, 32);
	char key[16], label[32];
	snprintf(key, sizeof key, "e%cx_flags", reg);
	snprintf(label, sizeof label, "E%cX flags", reg - 32);
	struct kbu_node *list = kbu_list(o, key, label);
	for (size_t i = 0; i < n; i++)
		kbu_item_str(list, names[i]);
	if (n == 0)
		kbu_textf(o, "E%cX flags: (none)", reg - 32);
}

/* Whether a leaf lies beyond what its range's base leaf says exists. */
static int out_of_range(const struct kbu_cpuid_set *s, uint32_t leaf, uint32_t *maxp)
{
	uint32_t base = leaf & 0xffff0000u, max;
	if (leaf >= 0x40000000u && leaf < 0x50000000u)
		base = leaf & 0xffffff00u;
	if (leaf == base || !max_leaf(s, base, &max))
		return 0;
	*maxp = max;
	return leaf > max;
}

static void decode_leaf(struct kbu_node *sec, const struct kbu_cpuid_set *s,
			const struct kbu_cpuid_leaf *l)
{
	char v[13];
	uint32_t max;
	regs_row(sec, l);
	if (out_of_range(s, l->leaf, &max))
		kbu_problem(sec, KBU_SEV_NOTE,
			    "leaf 0x%x is above the highest leaf of its range (0x%x): the CPU "
			    "returns another leaf's data or zeros here", l->leaf, max);
	switch (l->leaf) {
	case 0:
		kbu_cpuid_vendor(l, 0, v);
		kbu_str(sec, "vendor", "vendor", v);
		kbu_hex(sec, "max_leaf", "highest basic leaf (cpu_high)", l->eax, 0);
		break;
	case 1: {
		struct kbu_cpuid_sig g = kbu_cpuid_signature(l->eax);
		kbu_hex(sec, "signature", "signature", l->eax, 8);
		kbu_display(sec, "fms", "family/model/stepping", "0x%x/0x%x/0x%x (%u/%u/%u)",
			    g.family, g.model, g.stepping, g.family, g.model, g.stepping);
		kbu_u64(sec, "family", "", g.family);
		kbu_u64(sec, "model", "", g.model);
		kbu_u64(sec, "stepping", "", g.stepping);
		kbu_u64(sec, "initial_apic_id", "initial APIC ID", l->ebx >> 24);
		kbu_u64(sec, "logical_cpus", "logical processors (EBX[23:16])", (l->ebx >> 16) & 0xff);
		kbu_u64(sec, "clflush_bytes", "CLFLUSH line (bytes)", ((l->ebx >> 8) & 0xff) * 8);
		kbu_bool(sec, "x2apic", "x2APIC supported", (l->ecx >> 21) & 1);
		kbu_bool(sec, "hypervisor", "running under a hypervisor", (l->ecx >> 31) & 1);
		flags_field(sec, l, 'd', l->edx);
		flags_field(sec, l, 'c', l->ecx);
		break;
	}
	case 6:
		kbu_bool(sec, "arat", "APIC timer always running (ARAT)", (l->eax >> 2) & 1);
		flags_field(sec, l, 'a', l->eax);
		break;
	case 7:
		if (l->subleaf == 0) {
			kbu_hex(sec, "max_subleaf", "highest subleaf", l->eax, 0);
			flags_field(sec, l, 'b', l->ebx);
			flags_field(sec, l, 'c', l->ecx);
			flags_field(sec, l, 'd', l->edx);
		}
		break;
	case 0xb:
	case 0x1f: {
		static const char *const types[] = {"invalid", "SMT", "core", "module", "tile", "die"};
		unsigned t = (l->ecx >> 8) & 0xff;
		kbu_u64(sec, "level", "level", l->ecx & 0xff);
		kbu_str(sec, "level_type", "level type", t < 6 ? types[t] : "unknown");
		kbu_u64(sec, "shift", "x2APIC ID shift to next level", l->eax & 0x1f);
		kbu_u64(sec, "x2apic_id", "x2APIC ID of this CPU", l->edx);
		break;
	}
	case 0x15:
		kbu_u64(sec, "denominator", "TSC/crystal ratio denominator (EAX)", l->eax);
		kbu_u64(sec, "numerator", "TSC/crystal ratio numerator (EBX)", l->ebx);
		kbu_u64(sec, "crystal_hz", "crystal clock Hz (ECX)", l->ecx);
		if (l->eax && l->ebx && l->ecx)
			kbu_u64(sec, "tsc_hz", "TSC Hz = ECX*EBX/EAX",
				(uint64_t)l->ecx * l->ebx / l->eax);
		break;
	case 0x16:
		kbu_u64(sec, "base_mhz", "base frequency MHz", l->eax & 0xffff);
		kbu_u64(sec, "max_mhz", "maximum frequency MHz", l->ebx & 0xffff);
		kbu_u64(sec, "bus_mhz", "bus (reference) frequency MHz", l->ecx & 0xffff);
		break;
	case 0x40000000:
	case 0x40000100:
		kbu_cpuid_vendor(l, 1, v);
		kbu_str(sec, "hv_signature", "hypervisor signature", v);
		kbu_hex(sec, "hv_max_leaf", "highest hypervisor leaf (hv_high)", l->eax, 0);
		if (strcmp(v, "TCGTCGTCGTCG") == 0)
			kbu_textf(sec, "QEMU TCG (software emulation)");
		else if (strcmp(v, "KVMKVMKVM...") == 0 || strcmp(v, "KVMKVMKVM") == 0)
			kbu_textf(sec, "KVM");
		break;
	case 0x40000010:
		kbu_u64(sec, "tsc_khz", "TSC frequency kHz (EAX)", l->eax);
		kbu_u64(sec, "bus_khz", "bus (LAPIC timer) frequency kHz (EBX)", l->ebx);
		break;
	case 0x80000000:
		kbu_hex(sec, "max_ext_leaf", "highest extended leaf", l->eax, 8);
		break;
	case 0x80000001:
		flags_field(sec, l, 'd', l->edx);
		flags_field(sec, l, 'c', l->ecx);
		break;
	case 0x80000004: {
		const struct kbu_cpuid_leaf *b2 = kbu_cpuid_find(s, 0x80000002, 0);
		const struct kbu_cpuid_leaf *b3 = kbu_cpuid_find(s, 0x80000003, 0);
		if (b2 && b3) {
			char brand[49];
			const struct kbu_cpuid_leaf *parts[3] = {b2, b3, l};
			for (int i = 0; i < 3; i++) {
				put4(brand + 16 * i, parts[i]->eax);
				put4(brand + 16 * i + 4, parts[i]->ebx);
				put4(brand + 16 * i + 8, parts[i]->ecx);
				put4(brand + 16 * i + 12, parts[i]->edx);
			}
			brand[48] = '\0';
			/* NUL padding shows as '.': cut it, and leading spaces */
			char *end = brand + 48;
			while (end > brand && (end[-1] == '.' || end[-1] == ' '))
				*--end = '\0';
			const char *p = brand;
			while (*p == ' ')
				p++;
			kbu_str(sec, "brand", "brand string (0x80000002-4)", p);
		}
		break;
	}
	case 0x80000007:
		kbu_bool(sec, "invariant_tsc", "invariant TSC", (l->edx >> 8) & 1);
		break;
	case 0x80000008:
		kbu_u64(sec, "phys_bits", "physical address bits", l->eax & 0xff);
		kbu_u64(sec, "virt_bits", "linear address bits", (l->eax >> 8) & 0xff);
		break;
	default:
		break;
	}
}

static int leaf_cmp(const void *a, const void *b)
{
	const struct kbu_cpuid_leaf *x = a, *y = b;
	if (x->leaf != y->leaf)
		return x->leaf < y->leaf ? -1 : 1;
	return x->subleaf < y->subleaf ? -1 : x->subleaf > y->subleaf;
}

void kbu_cpuid_report(struct kbu_node *root, const struct kbu_cpuid_set *s)
{
	struct kbu_cpuid_leaf sorted[KBU_CPUID_MAX];
	size_t n = s->n < KBU_CPUID_MAX ? s->n : KBU_CPUID_MAX;
	memcpy(sorted, s->l, n * sizeof sorted[0]);
	qsort(sorted, n, sizeof sorted[0], leaf_cmp);
	struct kbu_node *leaves = kbu_obj(root, "leaves", "CPUID");
	for (size_t i = 0; i < n; i++) {
		char key[32], title[48];
		snprintf(key, sizeof key, "0x%x.%u", sorted[i].leaf, sorted[i].subleaf);
		snprintf(title, sizeof title, "leaf 0x%x subleaf %u", sorted[i].leaf,
			 sorted[i].subleaf);
		struct kbu_node *sec = kbu_obj(leaves, key, title);
		kbu_hex(sec, "leaf", "", sorted[i].leaf, 0);
		kbu_u64(sec, "subleaf", "", sorted[i].subleaf);
		decode_leaf(sec, s, &sorted[i]);
	}
}

int kbu_cpuid_tsc_hz(const struct kbu_cpuid_set *s, uint64_t *hz, const char **how)
{
	const struct kbu_cpuid_leaf *l1 = kbu_cpuid_find(s, 1, 0), *l;
	uint32_t hv_high, cpu_high;
	*hz = 0;
	*how = NULL;
	if (l1 && (l1->ecx >> 31) && max_leaf(s, 0x40000000, &hv_high) && hv_high >= 0x40000010 &&
	    (l = kbu_cpuid_find(s, 0x40000010, 0)) && l->eax) {
		*hz = (uint64_t)l->eax * 1000;
		*how = "hypervisor leaf 0x40000010";
		return 1;
	}
	if (max_leaf(s, 0, &cpu_high) && cpu_high >= 0x15) {
		l = kbu_cpuid_find(s, 0x15, 0);
		if (l && l->eax && l->ebx && l->ecx) {
			*hz = (uint64_t)l->ecx * l->ebx / l->eax;
			*how = "leaf 0x15 (crystal ratio)";
			return 1;
		}
		l = kbu_cpuid_find(s, 0x16, 0);
		if (cpu_high >= 0x16 && l && (l->eax & 0xffff)) {
			*hz = (uint64_t)(l->eax & 0xffff) * 1000000;
			*how = "leaf 0x16 (base frequency)";
			return 1;
		}
	}
	return 0;
}

static struct kbu_node *tsc_step(struct kbu_node *list, unsigned n, const char *question,
				 const char *answer, const char *result)
{
	struct kbu_node *row = kbu_row(list);
	kbu_u64(row, "step", "step", n);
	kbu_str(row, "check", "check", question);
	kbu_str(row, "answer", "answer", answer);
	kbu_str(row, "result", "result", result);
	return row;
}

void kbu_cpuid_tsc_report(struct kbu_node *root, const struct kbu_cpuid_set *s)
{
	struct kbu_node *sec = kbu_obj(root, "tsc", "TSC frequency from CPUID");
	struct kbu_node *steps = kbu_list(sec, "steps", "steps a kernel takes (FreeBSD tsc.c order)");
	const struct kbu_cpuid_leaf *l1 = kbu_cpuid_find(s, 1, 0), *l;
	uint32_t cpu_high = 0, hv_high = 0;
	int have_high = max_leaf(s, 0, &cpu_high), have_hv = max_leaf(s, 0x40000000, &hv_high);
	char ans[160];
	unsigned n = 1;
	int done = 0;

	if (!l1) {
		tsc_step(steps, n++, "leaf 1 available?", "not given", "cannot tell TSC or hypervisor");
	} else {
		tsc_step(steps, n++, "TSC present (leaf 1 EDX bit 4)?", (l1->edx >> 4) & 1 ? "yes" : "no",
			 (l1->edx >> 4) & 1 ? "continue" : "no TSC at all: stop");
		int hv = (int)(l1->ecx >> 31);
		tsc_step(steps, n++, "hypervisor bit (leaf 1 ECX bit 31)? (vm_guest)", hv ? "yes" : "no",
			 hv ? "try the hypervisor leaf" : "skip the hypervisor leaf");
		if (hv) {
			if (!have_hv) {
				tsc_step(steps, n++, "hv_high = leaf 0x40000000 EAX", "not given",
					 "cannot tell");
			} else {
				snprintf(ans, sizeof ans, "hv_high = 0x%x", hv_high);
				int ok = hv_high >= 0x40000010;
				tsc_step(steps, n++, "hv_high >= 0x40000010? (tsc_freq_cpuid_vm)", ans,
					 ok ? "read leaf 0x40000010"
					    : "no: the hypervisor does not publish the TSC frequency");
				if (ok) {
					l = kbu_cpuid_find(s, 0x40000010, 0);
					if (!l) {
						tsc_step(steps, n++, "leaf 0x40000010 EAX (kHz)", "not given",
							 "cannot tell");
					} else {
						snprintf(ans, sizeof ans, "EAX = %u kHz", l->eax);
						tsc_step(steps, n++, "leaf 0x40000010 EAX (kHz) nonzero?", ans,
							 l->eax ? "SUCCESS: tsc_freq = EAX * 1000"
								: "zero: unusable");
						done = l->eax != 0;
					}
				}
			}
		}
	}
	if (!done) {
		if (!have_high) {
			tsc_step(steps, n++, "cpu_high = leaf 0 EAX", "not given", "cannot tell");
		} else {
			snprintf(ans, sizeof ans, "cpu_high = 0x%x", cpu_high);
			int ok = cpu_high >= 0x15;
			tsc_step(steps, n++, "cpu_high >= 0x15? (tsc_freq_cpuid)", ans,
				 ok ? "read leaf 0x15" : "no: leaves 0x15 and 0x16 do not exist");
			if (ok) {
				l = kbu_cpuid_find(s, 0x15, 0);
				if (!l) {
					tsc_step(steps, n++, "leaf 0x15", "not given", "cannot tell");
				} else {
					snprintf(ans, sizeof ans, "EAX=%u EBX=%u ECX=%u", l->eax, l->ebx, l->ecx);
					done = l->eax && l->ebx && l->ecx;
					tsc_step(steps, n++, "leaf 0x15 EAX, EBX, ECX all nonzero?", ans,
						 done ? "SUCCESS: tsc_freq = ECX * EBX / EAX"
						      : "no: the crystal ratio is not enumerated");
				}
				if (!done && cpu_high >= 0x16) {
					l = kbu_cpuid_find(s, 0x16, 0);
					if (!l) {
						tsc_step(steps, n++, "leaf 0x16", "not given", "cannot tell");
					} else {
						snprintf(ans, sizeof ans, "EAX = %u MHz", l->eax & 0xffff);
						done = (l->eax & 0xffff) != 0;
						tsc_step(steps, n++, "leaf 0x16 base MHz nonzero?", ans,
							 done ? "SUCCESS: tsc_freq = EAX * 1000000"
							      : "no: base frequency not enumerated");
					}
				} else if (!done) {
					tsc_step(steps, n++, "cpu_high >= 0x16?", "no",
						 "leaf 0x16 does not exist");
				}
			}
		}
	}
	uint64_t hz;
	const char *how;
	if (kbu_cpuid_tsc_hz(s, &hz, &how)) {
		kbu_u64(sec, "tsc_hz", "TSC frequency (Hz)", hz);
		kbu_str(sec, "method", "from", how);
	} else {
		kbu_null(sec, "tsc_hz", "TSC frequency (Hz)");
		kbu_problem(sec, KBU_SEV_WARN,
			    "no CPUID step gives the TSC frequency: the kernel must calibrate the TSC "
			    "against another timer (i8254, HPET, ACPI PM timer) or it stays 0 "
			    "(FreeBSD: \"TSC not initialized\")");
	}
}
