/*
 * kbu: the Intel MultiProcessor Specification 1.4 tables — the floating
 * pointer ("_MP_") and the configuration table ("PCMP") with its base and
 * extended entries.
 *
 * The walker never trusts one field alone: it walks the base table by
 * base_table_length (not entry_count, which QEMU 7.2 microvm's firmware
 * leaves at 0), verifies both checksums, stops cleanly at an unknown entry
 * type and reports the bytes around it, and reports any length that runs past
 * the table or past memory. Everything it finds wrong is a finding with a
 * stable code in the result, never a crash or a silent partial answer.
 *
 * It also walks the table the way a kernel that trusts entry_count does
 * (FreeBSD's mptable_walk_table): how many entries that walker reads, whether
 * it stops short (qboot's 0) or runs past the end of the table (Firecracker's
 * count of 30 for 29 entries), and which byte it meets there, read from guest
 * memory.
 */
#ifndef KBU_MPTABLE_H
#define KBU_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"
#include "kbu/findings.h"
#include "kbu/report.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_mem;

#define KBU_MP_FP_SIZE 16
#define KBU_MP_HEADER_SIZE 44
#define KBU_MP_MAX_PROBLEMS 100

enum kbu_mp_entry_type {
	KBU_MP_PROC = 0,       /* 20 bytes */
	KBU_MP_BUS = 1,        /* 8 */
	KBU_MP_IOAPIC = 2,     /* 8 */
	KBU_MP_IOINT = 3,      /* 8 */
	KBU_MP_LINT = 4,       /* 8 */
	KBU_MP_EXT_SASM = 128, /* system address space mapping, 20 */
	KBU_MP_EXT_BHD = 129,  /* bus hierarchy descriptor, 8 */
	KBU_MP_EXT_CBASM = 130,/* compatibility bus address space modifier, 8 */
};

struct kbu_mp_fp {
	uint64_t addr;        /* physical address of "_MP_" */
	const char *where;    /* "EBDA", "base memory", "0x9fc00", "BIOS ROM", "given address" */
	uint32_t physptr;     /* config table address (0: default configuration) */
	uint8_t length;       /* in 16-byte units */
	uint8_t spec_rev;
	uint8_t checksum;
	uint8_t sum;          /* sum of length*16 bytes; 0 when valid */
	uint8_t feature[5];
};

struct kbu_mp_header {
	uint64_t addr;
	char signature[17];    /* 4 bytes, escaped (kbu_escape) */
	uint16_t base_len;
	uint8_t spec_rev;
	uint8_t checksum;
	uint8_t sum;          /* sum of the base_len bytes; valid if sum_checked */
	int sum_checked;      /* 0: the table was too short or not wholly readable */
	char oem_id[33];       /* 8 bytes, trailing blanks cut, escaped */
	char product_id[49];   /* 12 bytes, trailing blanks cut, escaped */
	uint32_t oem_table;
	uint16_t oem_table_size;
	uint16_t entry_count;
	uint32_t lapic_addr;
	uint16_t ext_len;
	uint8_t ext_checksum;
	uint8_t ext_sum;      /* sum of the extended table + ext_checksum; 0 when valid */
	int ext_readable;
};

struct kbu_mp_entry {
	uint32_t offset;      /* from the start of the config table */
	uint8_t type;
	uint8_t len;
	int extended;         /* 1 if from the extended table */
	union {
		struct { uint8_t apic_id, version, flags; uint32_t signature, features; } proc;
		struct { uint8_t id; char type[25]; } bus; /* 6 bytes, escaped */
		struct { uint8_t id, version, flags; uint32_t addr; } ioapic;
		/* I/O and local interrupts share one layout. */
		struct { uint8_t itype; uint16_t flags; uint8_t src_bus, src_irq, dst_apic, dst_pin; } intr;
		struct { uint8_t bus, addr_type; uint64_t base, length; } sasm;
		struct { uint8_t bus, info, parent; } bhd;
		struct { uint8_t bus, modifier; uint32_t range_list; } cbasm;
	} u;
	uint8_t raw[20];      /* the first min(len, 20) bytes */
};


/* A finding: severity, stable code ("mptable.entry_count_zero"), message and
 * the values behind it (JSON "fields"). */
/* What a walker that trusts entry_count reads (FreeBSD's mptable_walk_table:
 * entry_count entries, each as long as its type says, panicking on a type it
 * does not know). */
enum kbu_mp_count_outcome {
	KBU_MP_COUNT_NONE = 0,     /* not walked: no header, or a base length shorter than it */
	KBU_MP_COUNT_SAME,         /* it reads exactly the entries the table holds */
	KBU_MP_COUNT_SHORT,        /* it stops before the end of the table */
	KBU_MP_COUNT_PAST_END,     /* it reads entries past the end of the table */
	KBU_MP_COUNT_UNKNOWN_TYPE, /* it meets a type it does not know ("Unknown MP Config Entry N") */
	KBU_MP_COUNT_UNREADABLE,   /* it runs into memory that is not there */
};

struct kbu_mp_count_walk {
	int outcome;              /* enum kbu_mp_count_outcome */
	size_t entries_read;      /* entries it hands to its handler */
	size_t entries_past_end;  /* of them, entries that start at or past base_table_length */
	size_t cpus;              /* processor entries among them */
	size_t ioapics;           /* I/O APIC entries among them */
	uint32_t stop_offset;     /* UNKNOWN_TYPE, UNREADABLE: where it stops, from the table start */
	uint64_t stop_addr;       /* the same, physical */
	uint8_t stop_type;        /* UNKNOWN_TYPE: the byte it reads as the entry type */
};

enum { KBU_MP_SEC_FP = 0, KBU_MP_SEC_HEADER, KBU_MP_SEC_ENTRIES, KBU_MP_SEC_SUMMARY };

struct kbu_mptable {
	int have_fp;
	struct kbu_mp_fp fp;
	int have_header;
	struct kbu_mp_header hdr;
	struct kbu_mp_entry *entries;
	size_t nentries;      /* base + extended */
	size_t nbase;         /* base entries among them */
	int walk_complete;    /* the base walk reached base_len exactly */
	/* IOAPIC ID read from the device (monitor `info pic`), -1 if not readable. */
	int ioapic_hw_id;
	int ioapic_hw_version; /* the same source's version register, -1 if not read */
	char ioapic_hw_note[160];
	char config_how[200];  /* how a config table given without a pointer was found */
	struct kbu_mp_count_walk count_walk;
	struct kbu_finding_rec *problems;
	size_t nproblems;
	size_t nsuppressed;   /* problems beyond KBU_MP_MAX_PROBLEMS, counted only */
};

/*
 * Finds the floating pointer (at `at` if have_at, otherwise where the MP spec
 * says: first KiB of the EBDA, last KiB of base memory, 0x9fc00,
 * 0xE0000-0xFFFFF), then decodes the configuration table. Fails when no
 * floating pointer exists (KBU_ENOTFOUND), when none of those places is in
 * the source's memory (KBU_EFAULT), when `at` is unreadable or not "_MP_",
 * and when the source itself fails (its own error, e.g. KBU_ECONN); every
 * defect of the table is a finding in t.
 */
int kbu_mptable_read(struct kbu_mem *m, int have_at, uint64_t at, struct kbu_mptable *t,
		     struct kbu_err *err);
void kbu_mptable_free(struct kbu_mptable *t);

/* Decodes a config table ("PCMP") at addr with no floating pointer, e.g. a
 * kernel's own copy of it. Fails if addr is unreadable or not "PCMP". */
int kbu_mptable_read_config(struct kbu_mem *m, uint64_t addr, struct kbu_mptable *t,
			    struct kbu_err *err);
/* True if "PCMP" is at physical address pa (a kbu_kvar_follow matcher). */
int kbu_mptable_is_config(struct kbu_mem *m, uint64_t pa);

/* Searches for the floating pointer only. */
int kbu_mptable_find_fp(struct kbu_mem *m, struct kbu_mp_fp *fp, struct kbu_err *err);

/* Number of processor entries. */
size_t kbu_mptable_ncpus(const struct kbu_mptable *t);

/*
 * Compares the table's processors with the VM's vCPU count (when the source
 * knows it: vcpus > 0) and records a finding when they differ; `cause` (may be
 * NULL) names why, e.g. the firmware's known quirk.
 */
void kbu_mptable_check_vcpus(struct kbu_mptable *t, int vcpus, const char *cause);

/* "same", "short", "past_end", "unknown_type", "unreadable" or "none". */
const char *kbu_mptable_count_outcome_name(int outcome);

void kbu_mptable_report(const struct kbu_mptable *t, struct kbu_node *node);

#ifdef __cplusplus
}
#endif
#endif
