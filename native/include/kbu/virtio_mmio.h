/*
 * kbu: where a microVM describes its virtio-mmio devices.
 *
 * Without ACPI (QEMU -M microvm,acpi=off, Firecracker) the VMM appends one
 * "virtio_mmio.device=SIZE@BASE:IRQ" per device to the kernel command line
 * (Linux's format: SIZE takes K/M/G suffixes, BASE is hex or decimal, IRQ is
 * decimal, an optional ":ID" follows); FreeBSD also reads
 * "virtio_mmio.device_N=". With ACPI the DSDT describes them and QEMU leaves
 * the command line alone, so a kernel that reads only one of the two finds
 * no disk: the "Where's my disks?" of seeds/001.
 */
#ifndef KBU_VIRTIO_MMIO_H
#define KBU_VIRTIO_MMIO_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KBU_VMMIO_MAX 64  /* entries beyond are counted, not decoded */

struct kbu_vmmio_dev {
	uint64_t size, base;
	uint32_t irq;
	int has_id;
	uint32_t id;            /* the optional ":ID" */
	size_t at;              /* offset of the token in the command line */
	char key[32];           /* "virtio_mmio.device" or "virtio_mmio.device_3" */
};

struct kbu_vmmio_bad {
	size_t at;
	char text[80];          /* the token, printable bytes only */
	char why[160];
};

struct kbu_vmmio_list {
	struct kbu_vmmio_dev devs[KBU_VMMIO_MAX];
	size_t ndevs;
	struct kbu_vmmio_bad bad[KBU_VMMIO_MAX];
	size_t nbad;
	size_t nskipped;        /* entries beyond KBU_VMMIO_MAX */
};

/* Parses one value "SIZE@BASE:IRQ[:ID]" (len bytes, no NUL needed).
 * Fails (KBU_EFORMAT) with a message naming what is wrong. */
int kbu_vmmio_parse(const char *val, size_t len, struct kbu_vmmio_dev *d, struct kbu_err *err);

/* Every virtio_mmio.device[_N]= token of a command line, good or bad. */
void kbu_vmmio_scan(const char *cmdline, struct kbu_vmmio_list *out);

/*
 * The virtio-mmio devices an ACPI DSDT describes: each Device whose _HID is
 * "LNRO0005" (QEMU microvm names them VR00, VR01, ... and writes one only for
 * a transport with a device plugged), its Memory32Fixed window and its
 * interrupt from _CRS. aml: the whole table (header included), len bytes. A
 * device whose _CRS cannot be read is listed in bad[] with the reason; key
 * holds "DSDT VRnn".
 */
void kbu_vmmio_scan_aml(const uint8_t *aml, size_t len, struct kbu_vmmio_list *out);

enum kbu_devices_source {
	KBU_DEVICES_UNKNOWN = -1,  /* neither the command line nor the DSDT's presence is known */
	KBU_DEVICES_NONE = 0,      /* neither describes any */
	KBU_DEVICES_CMDLINE = 1,
	KBU_DEVICES_ACPI = 2,
	KBU_DEVICES_BOTH = 3,
};

struct kbu_devices_where {
	int where;              /* enum kbu_devices_source */
	size_t ncmdline;        /* well-formed virtio_mmio.device entries on the command line */
	size_t nbad;            /* malformed ones */
	int cmdline_known, dsdt; /* dsdt: 1 present, 0 absent, -1 unknown */
	int ndsdt;              /* virtio-mmio devices the DSDT describes (0 without one) */
	char how[320];
};

/*
 * Whether the devices are described on the command line, in ACPI (the DSDT
 * has LNRO0005 devices), both or neither. cmdline NULL: not known;
 * dsdt_present: 1, 0 or -1 (unknown); dsdt_devices: what kbu_vmmio_scan_aml
 * found in it.
 */
void kbu_devices_where(const char *cmdline, int dsdt_present, int dsdt_devices,
		       struct kbu_devices_where *out);

/* "command line", "ACPI", "both", "none", "unknown". */
const char *kbu_devices_source_name(int where);

#ifdef __cplusplus
}
#endif
#endif
