/*
 * MP table (FreeBSD's sys/x86/x86/mptable.c shape): mptable_probe finds the
 * floating pointer and, as FreeBSD's MPTABLE_LINUX_BUG_COMPAT does, rewrites a
 * zero entry_count in place (the firmware's checksum then reads bad); the
 * walker trusts entry_count and is static and inlined at every call site, so
 * no symbol names it (only DWARF does, as in a clang-built FreeBSD kernel).
 */
#include "mptable.h"

#define BIOS_BASE   0xf0000
#define BIOS_COUNT  0x10000
#define MPCT_ENTRY_UNKNOWN_68 68

static mpfps_t mpfps __attribute__((used));
static mpcth_t mpct;
int mp_ncpus;
int mptable_nbusses, mptable_nioapics, mptable_nints;
u_int mptable_cpu_apic_ids[64];
static u_int mptable_bsp_apic_id;

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
		if (memcmp(fp->signature, "_MP_", 4) == 0 && fp->length != 0 &&
		    checksum(fp, fp->length * 16u) == 0)
			return fp;
	}
	return NULL;
}

/* Entries that fit in base_table_length (what the compat code counts). */
static u_short count_entries_by_length(mpcth_t table)
{
	u_char *entry = (u_char *)(table + 1);
	u_char *end = (u_char *)table + table->base_table_length;
	u_short n = 0;

	while (entry < end) {
		int len = entry_length(*entry);
		if (len == 0)
			panic("compute_entry_count: Unknown MP Config Entry %d\n", (int)*entry);
		entry += len;
		n++;
	}
	return n;
}

/*
 * The "mpcorrupt" boot: give the firmware's table Firecracker's off-by-one
 * (seeds/000: entry_count 30 for 29 entries), with the byte after the table
 * reading 0x44 as it did there, and a checksum that holds, as a VMM's would.
 */
static void mptable_firecracker_off_by_one(mpcth_t table)
{
	u_short n = count_entries_by_length(table);
	*((u_char *)table + table->base_table_length) = MPCT_ENTRY_UNKNOWN_68;
	table->entry_count = (u_short)(n + 1);
	table->checksum = 0;
	table->checksum = (u_char)-checksum(table, table->base_table_length);
}

/* FreeBSD's order: EBDA, top of base memory, BIOS ROM, then 639 KiB (compat). */
KERNEL_FN int mptable_probe(void)
{
	u_short ebda_seg = *(volatile u_short *)PHYS_TO_KVA(0x40e);
	u_int basemem = *(volatile u_short *)PHYS_TO_KVA(0x413) * 1024u;
	mpfps_t fp = NULL;

	if (ebda_seg != 0)
		fp = search_for_sig((vm_paddr_t)ebda_seg << 4, 1024);
	else if (basemem != 0 && basemem <= 640 * 1024)
		fp = search_for_sig(basemem - 1024, 1024);
	if (fp == NULL)
		fp = search_for_sig(BIOS_BASE, BIOS_COUNT);
	if (fp == NULL)
		fp = search_for_sig(639 * 1024, 1024);
	if (fp == NULL)
		return -1;
	if (fp->config_type != 0 || fp->pap == 0 || fp->pap >= 0x100000) {
		printf("mptable_probe: Unable to map MP Configuration Table\n");
		return -1;
	}
	mpcth_t ct = PHYS_TO_KVA(fp->pap);
	if (ct->base_table_length + (uintptr_t)fp->pap >= 0x100000) {
		printf("mptable_probe: Unable to map end of MP Config Table\n");
		return -1;
	}
	if (memcmp(ct->signature, "PCMP", 4) != 0) {
		printf("mptable_probe: MP Config Table has bad signature: %c%c%c%c\n",
		    ct->signature[0], ct->signature[1], ct->signature[2], ct->signature[3]);
		return -1;
	}
	mpfps = fp;
	mpct = ct;
	if (boot_scenario == SC_MPCORRUPT)
		mptable_firecracker_off_by_one(ct);
	/* The "mptable" boot is a kernel built without the compat option. */
	if (ct->entry_count == 0 && boot_scenario != SC_MPTABLE)
		ct->entry_count = count_entries_by_length(ct);
	return 0;
}

/* FreeBSD's walker: trusts entry_count, panics on a type it does not know. */
static inline __attribute__((always_inline)) void
mptable_walk_table(mptable_entry_handler *handler, void *arg)
{
	u_char *entry = (u_char *)(mpct + 1);

	for (u_int i = 0; i < mpct->entry_count; i++) {
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

static void mptable_probe_cpus_handler(u_char *entry, void *arg)
{
	(void)arg;
	if (*entry != MPCT_ENTRY_PROCESSOR)
		return;
	proc_entry_ptr proc = (proc_entry_ptr)entry;
	if (proc->cpu_flags & PROCENTRY_FLAG_EN) {
		if ((size_t)mp_ncpus < nitems(mptable_cpu_apic_ids))
			mptable_cpu_apic_ids[mp_ncpus] = proc->apic_id;
		mp_ncpus++;
	}
}

/* Run through the table enumerating CPUs. */
KERNEL_FN int mptable_probe_cpus(void)
{
	mptable_walk_table(mptable_probe_cpus_handler, NULL);
	return 0;
}

static void mptable_setup_cpus_handler(u_char *entry, void *arg)
{
	(void)arg;
	if (*entry != MPCT_ENTRY_PROCESSOR)
		return;
	proc_entry_ptr proc = (proc_entry_ptr)entry;
	if ((proc->cpu_flags & PROCENTRY_FLAG_EN) && (proc->cpu_flags & PROCENTRY_FLAG_BP))
		mptable_bsp_apic_id = proc->apic_id;
}

/* The BSP's local APIC: its address comes from the table. */
KERNEL_FN int mptable_setup_local(void)
{
	mptable_walk_table(mptable_setup_cpus_handler, NULL);
	char oem[sizeof(mpct->oem_id) + 1], product[sizeof(mpct->product_id) + 1];
	memcpy(oem, mpct->oem_id, sizeof(mpct->oem_id));
	oem[sizeof(oem) - 1] = '\0';
	memcpy(product, mpct->product_id, sizeof(mpct->product_id));
	product[sizeof(product) - 1] = '\0';
	printf("MPTable: <%s %s>\n", oem, product);
	lapic_init(mpct->apic_address);
	return 0;
}

static void mptable_count_items_handler(u_char *entry, void *arg)
{
	(void)arg;
	switch (*entry) {
	case MPCT_ENTRY_BUS:
		mptable_nbusses++;
		break;
	case MPCT_ENTRY_IOAPIC:
		if (((io_apic_entry_ptr)entry)->apic_flags & IOAPICENTRY_FLAG_EN)
			mptable_nioapics++;
		break;
	}
}

static void mptable_count_items(void)
{
	mptable_walk_table(mptable_count_items_handler, NULL);
}

static void mptable_parse_apics_and_busses_handler(u_char *entry, void *arg)
{
	(void)entry;
	(void)arg;
}

static void mptable_parse_apics_and_busses(void)
{
	mptable_walk_table(mptable_parse_apics_and_busses_handler, NULL);
}

static void mptable_parse_ints_handler(u_char *entry, void *arg)
{
	(void)arg;
	if (*entry == MPCT_ENTRY_INT || *entry == MPCT_ENTRY_LOCAL_INT)
		mptable_nints++;
}

static void mptable_parse_ints(void)
{
	mptable_walk_table(mptable_parse_ints_handler, NULL);
}

/* I/O APICs, buses and interrupt entries, each a walk of its own. */
KERNEL_FN int mptable_setup_io(void)
{
	mptable_count_items();
	mptable_parse_apics_and_busses();
	mptable_parse_ints();
	return 0;
}

/* The APIC enumerator's steps (FreeBSD's apic_init/apic_setup_local/apic_setup_io). */
KERNEL_FN void apic_init(void)
{
	if (mptable_probe() != 0)
		panic("running without device atpic requires a local APIC");
	mptable_probe_cpus();
}

KERNEL_FN void apic_setup_local(void)
{
	mptable_setup_local();
}

KERNEL_FN void apic_setup_io(void)
{
	mptable_setup_io();
}
