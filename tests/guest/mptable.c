/* MP table (mptable.c): find the floating pointer, walk the config table. */
#include "mptable.h"

#define BIOS_BASE   0xf0000
#define BIOS_COUNT  0x10000
#define MPTABLE_COPY_SIZE 4096

mpfps_t mpfps;
mpcth_t mpct;
int mp_ncpus;
int mptable_nbusses, mptable_nioapics, mptable_nints;
u_int mptable_cpu_apic_ids[64];

/* Firmware table copied to RAM for the "mpcorrupt" scenario. */
static u_char mptable_copy[MPTABLE_COPY_SIZE] __attribute__((aligned(16)));

static int entry_length(u_char type)
{
	switch (type) {
	case MPCT_ENTRY_PROCESSOR:
		return sizeof(struct PROCENTRY);
	case MPCT_ENTRY_BUS:
	case MPCT_ENTRY_IOAPIC:
	case MPCT_ENTRY_INT:
	case MPCT_ENTRY_LOCAL_INT:
		return 8;
	default:
		return 0;
	}
}

static u_char checksum(const void *p, size_t len)
{
	const u_char *b = p;
	u_char sum = 0;
	while (len--)
		sum += *b++;
	return sum;
}

/* "_MP_" on a 16-byte boundary with a good checksum, in [base, base + len). */
static mpfps_t search_for_sig(vm_paddr_t base, size_t len)
{
	for (vm_paddr_t pa = base; pa + sizeof(struct mpfps) <= base + len; pa += 16) {
		mpfps_t fp = PHYS_TO_KVA(pa);
		if (memcmp(fp->signature, "_MP_", 4) != 0)
			continue;
		if (fp->length == 0 || checksum(fp, fp->length * 16u) != 0) {
			printf("MPTable: ! floating pointer at 0x%lx has a bad checksum\n", pa);
			continue;
		}
		return fp;
	}
	return NULL;
}

/* FreeBSD's order: EBDA, top of base memory, BIOS ROM. */
KERNEL_FN void mptable_probe(void)
{
	u_short ebda_seg = *(volatile u_short *)PHYS_TO_KVA(0x40e);
	u_int basemem = *(volatile u_short *)PHYS_TO_KVA(0x413) * 1024u;
	mpfps_t fp = NULL;
	vm_paddr_t where;

	if (ebda_seg != 0)
		fp = search_for_sig((vm_paddr_t)ebda_seg << 4, 1024);
	if (fp == NULL) {
		if (basemem == 0 || basemem > 640 * 1024)
			basemem = 640 * 1024;
		fp = search_for_sig(basemem - 1024, 1024);
	}
	if (fp == NULL)
		fp = search_for_sig(BIOS_BASE, BIOS_COUNT);
	if (fp == NULL) {
		printf("MPTable: no floating pointer found\n");
		return;
	}
	where = (vm_paddr_t)((uintptr_t)fp - (uintptr_t)KERNBASE);
	if (fp->config_type != 0 || fp->pap == 0 || fp->pap >= 0x100000) {
		printf("MPTable: ! floating pointer at 0x%lx: config type %u, table at 0x%x: unsupported\n",
		    where, fp->config_type, fp->pap);
		return;
	}
	mpcth_t ct = PHYS_TO_KVA(fp->pap);
	if (memcmp(ct->signature, "PCMP", 4) != 0 || ct->base_table_length < sizeof(*ct) ||
	    fp->pap + ct->base_table_length > 0x100000) {
		printf("MPTable: ! config table at 0x%x has a bad signature or length\n", fp->pap);
		return;
	}
	mpfps = fp;
	mpct = ct;
	char oem[9], product[13];
	memcpy(oem, ct->oem_id, 8);
	oem[8] = '\0';
	memcpy(product, ct->product_id, 12);
	product[12] = '\0';
	printf("MPTable: <%s %s>\n", oem, product);
	printf("MPTable: floating pointer at 0x%lx, config table at 0x%x: length %u, entry_count %u, "
	    "checksum %s\n", where, fp->pap, ct->base_table_length, ct->entry_count,
	    checksum(ct, ct->base_table_length) == 0 ? "ok" : "BAD");
}

/* Counting handler: every enabled processor entry is a CPU. */
KERNEL_FN void mptable_count_items_handler(u_char *entry, void *arg)
{
	(void)arg;
	switch (*entry) {
	case MPCT_ENTRY_PROCESSOR: {
		proc_entry_ptr proc = (proc_entry_ptr)entry;
		if (proc->cpu_flags & PROCENTRY_FLAG_EN) {
			if ((size_t)mp_ncpus < nitems(mptable_cpu_apic_ids))
				mptable_cpu_apic_ids[mp_ncpus] = proc->apic_id;
			mp_ncpus++;
		}
		break;
	}
	case MPCT_ENTRY_BUS:
		mptable_nbusses++;
		break;
	case MPCT_ENTRY_IOAPIC:
		mptable_nioapics++;
		break;
	case MPCT_ENTRY_INT:
	case MPCT_ENTRY_LOCAL_INT:
		mptable_nints++;
		break;
	}
}

/* FreeBSD's walker: trusts entry_count, panics on a type it does not know. */
KERNEL_FN void mptable_walk_table(mpcth_t table, mptable_entry_handler *handler, void *arg)
{
	u_char *entry = (u_char *)(table + 1);

	for (u_int i = 0; i < table->entry_count; i++) {
		switch (*entry) {
		case MPCT_ENTRY_PROCESSOR:
		case MPCT_ENTRY_IOAPIC:
		case MPCT_ENTRY_BUS:
		case MPCT_ENTRY_INT:
		case MPCT_ENTRY_LOCAL_INT:
			break;
		default:
			panic("%s: Unknown MP Config Entry %d\n", __func__, (int)*entry);
		}
		handler(entry, arg);
		entry += entry_length(*entry);
	}
}

/* The tolerant walker: bounded by base_table_length, ignores entry_count. */
KERNEL_FN void mptable_walk_table_by_length(mpcth_t table, mptable_entry_handler *handler, void *arg)
{
	u_char *entry = (u_char *)(table + 1);
	u_char *end = (u_char *)table + table->base_table_length;

	while (entry < end) {
		int len = entry_length(*entry);
		if (len == 0 || entry + len > end) {
			printf("MPTable: ! entry type %u at offset 0x%lx: %s, walk stopped\n", *entry,
			    (uintptr_t)(entry - (u_char *)table), len ? "runs past the table" : "unknown type");
			return;
		}
		handler(entry, arg);
		entry += len;
	}
}

static int count_entries_by_length(mpcth_t table, u_char **first_nonproc)
{
	u_char *entry = (u_char *)(table + 1);
	u_char *end = (u_char *)table + table->base_table_length;
	int n = 0;

	*first_nonproc = NULL;
	while (entry < end) {
		int len = entry_length(*entry);
		if (len == 0 || entry + len > end)
			break;
		if (*first_nonproc == NULL && *entry != MPCT_ENTRY_PROCESSOR)
			*first_nonproc = entry;
		n++;
		entry += len;
	}
	return n;
}

static void mptable_report(const char *how)
{
	printf("MPTable: %s: %d CPUs, %d buses, %d I/O APICs, %d interrupt entries\n", how,
	    mp_ncpus, mptable_nbusses, mptable_nioapics, mptable_nints);
	printf("mp_ncpus = %d\n", mp_ncpus);
}

/* Walk the firmware table the way FreeBSD does: a zero entry_count finds nothing. */
KERNEL_FN void mptable_count_items(void)
{
	if (mpct == NULL)
		return;
	mptable_walk_table(mpct, mptable_count_items_handler, NULL);
	mptable_report("walked trusting entry_count");
}

/* Walk by base_table_length (what a porter's compat fix does). */
KERNEL_FN void mptable_count_items_by_length(void)
{
	if (mpct == NULL)
		return;
	mptable_walk_table_by_length(mpct, mptable_count_items_handler, NULL);
	mptable_report("walked by length");
}

/*
 * Copy the firmware table, plant entry type 68 after the processors, make
 * entry_count match the copy and fix its checksum, then walk it FreeBSD's way.
 */
KERNEL_FN void mptable_corrupt_and_walk(void)
{
	if (mpct == NULL)
		panic("mptable_corrupt_and_walk: no MP table to copy");
	if (mpct->base_table_length > sizeof(mptable_copy))
		panic("mptable_corrupt_and_walk: table length %u exceeds the %zu-byte copy",
		    mpct->base_table_length, sizeof(mptable_copy));
	memcpy(mptable_copy, mpct, mpct->base_table_length);
	mpcth_t copy = (mpcth_t)mptable_copy;
	u_char *victim;
	int n = count_entries_by_length(copy, &victim);
	if (victim == NULL)
		panic("mptable_corrupt_and_walk: no non-processor entry to corrupt");
	*victim = 68;
	printf("MPTable: copy at %p: entry at offset 0x%lx set to type 68, entry_count %u -> %d\n",
	    (void *)copy, (uintptr_t)(victim - mptable_copy), copy->entry_count, n);
	copy->entry_count = (u_short)n;
	copy->checksum = 0;
	copy->checksum = (u_char)-checksum(copy, copy->base_table_length);
	mpct = copy;
	mptable_walk_table(copy, mptable_count_items_handler, NULL);
	mptable_report("walked the corrupted copy");
}

/* FreeBSD's mptable_setup_local: the LAPIC address comes from the table. */
KERNEL_FN void mptable_setup_local(void)
{
	vm_paddr_t addr = mpct != NULL ? mpct->apic_address : LAPIC_PADDR;
	lapic_init(addr);
}
