/* virtio_mmio.device= entries (Linux's SIZE@BASE:IRQ[:ID], K/M/G sizes, FreeBSD's
 * _N keys), malformed ones, and where a VM describes its devices. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kbu/virtio_mmio.h"

static int parse(const char *v, struct kbu_vmmio_dev *d, struct kbu_err *e)
{
	return kbu_vmmio_parse(v, strlen(v), d, e);
}

TEST(values_parse_like_linux)
{
	struct kbu_vmmio_dev d;
	struct kbu_err e;
	CHECK(parse("512@0xfeb00e00:12", &d, &e) == 0);
	CHECK_EQ_U64(d.size, 512);
	CHECK_EQ_U64(d.base, 0xfeb00e00);
	CHECK_EQ_U64(d.irq, 12);
	CHECK(!d.has_id);
	CHECK(parse("4K@0xd0000000:5", &d, &e) == 0);
	CHECK_EQ_U64(d.size, 4096);
	CHECK(parse("1m@4026531840:33:7", &d, &e) == 0);
	CHECK_EQ_U64(d.size, 1 << 20);
	CHECK_EQ_U64(d.base, 0xf0000000);
	CHECK(d.has_id);
	CHECK_EQ_U64(d.id, 7);
	CHECK(parse("2G@0x100000000:9", &d, &e) == 0);
	CHECK_EQ_U64(d.size, 2ull << 30);

	struct {
		const char *v, *why;
	} bad[] = {
		{"", "no size"},
		{"@0x1000:5", "no size"},
		{"0@0x1000:5", "the size is 0"},
		{"4K0x1000:5", "expected '@'"},
		{"4K@:5", "no base address"},
		{"4K@0x1000", "expected ':IRQ'"},
		{"4K@0x1000:", "no IRQ"},
		{"4K@0x1000:0", "IRQ 0"},
		{"4K@0x1000:5:", "no device id"},
		{"4K@0x1000:5x", "unexpected characters after the IRQ"},
		{"4K@0x1000:5:1:2", "unexpected characters after the device id"},
		{"99999999999999999999@0x0:5", "does not fit 64 bits"},
		{"17179869184G@0:5", "does not fit 64 bits"},
		{"8K@0xfffffffffffff000:5", "wraps past the top"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&e, 0, sizeof(e));
		CHECK(parse(bad[i].v, &d, &e) != 0);
		CHECK_EQ_U64(e.code, KBU_EFORMAT);
		CHECK_CONTAINS(e.msg, bad[i].why);
	}
	/* Length-bounded: no NUL needed, nothing read past len. */
	CHECK(kbu_vmmio_parse("4K@0x1000:5 garbage", 11, &d, &e) == 0);
	CHECK_EQ_U64(d.irq, 5);
}

TEST(command_lines_are_scanned)
{
	struct kbu_vmmio_list l;
	const char *cl = "console=ttyS0 virtio_mmio.device=512@0xfeb00e00:12 root=/dev/vda "
			 "virtio_mmio.device_1=4K@0xd0000000:5\tvirtio_mmio.device=junk "
			 "virtio_mmio.devicex=1@1:1 virtio_mmio.device_=1@1:1 xvirtio_mmio.device=1@1:1";
	kbu_vmmio_scan(cl, &l);
	CHECK_EQ_U64(l.ndevs, 2);
	CHECK_STR(l.devs[0].key, "virtio_mmio.device");
	CHECK_EQ_U64(l.devs[0].at, 14);
	CHECK_STR(l.devs[1].key, "virtio_mmio.device_1");
	CHECK_EQ_U64(l.devs[1].base, 0xd0000000);
	CHECK_EQ_U64(l.nbad, 1);
	CHECK_STR(l.bad[0].text, "virtio_mmio.device=junk");
	CHECK_CONTAINS(l.bad[0].why, "no size");
	kbu_vmmio_scan(NULL, &l);
	CHECK_EQ_U64(l.ndevs, 0);
	kbu_vmmio_scan("", &l);
	CHECK_EQ_U64(l.ndevs + l.nbad, 0);
	/* Guest bytes in a bad token are shown printable. */
	kbu_vmmio_scan("virtio_mmio.device=\x01\x7f", &l);
	CHECK_STR(l.bad[0].text, "virtio_mmio.device=??");
	/* More than fit: counted. */
	char big[64 * 100];
	size_t n = 0;
	for (int i = 0; i < 70; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "virtio_mmio.device=4K@0x%x:5 ",
				      0xd0000000 + i * 0x1000);
	kbu_vmmio_scan(big, &l);
	CHECK_EQ_U64(l.ndevs, KBU_VMMIO_MAX);
	CHECK_EQ_U64(l.nskipped, 70 - KBU_VMMIO_MAX);
}

TEST(where_devices_are_described)
{
	struct kbu_devices_where w;
	kbu_devices_where("console=ttyS0 virtio_mmio.device=512@0xfeb00e00:12", 0, 0, &w);
	CHECK_EQ_U64(w.where, KBU_DEVICES_CMDLINE);
	CHECK_EQ_U64(w.ncmdline, 1);
	CHECK_CONTAINS(w.how, "on the command line: 1 virtio_mmio.device entry, and there is no DSDT");
	kbu_devices_where("console=ttyS0", 1, 2, &w);
	CHECK_EQ_U64(w.where, KBU_DEVICES_ACPI);
	CHECK_EQ_U64(w.ndsdt, 2);
	CHECK_CONTAINS(w.how, "the DSDT describes 2 (LNRO0005)");
	CHECK_CONTAINS(w.how, "FreeBSD's FIRECRACKER configuration) finds none");
	/* a DSDT without a virtio-mmio device describes none: QEMU writes one per plugged device */
	kbu_devices_where("console=ttyS0", 1, 0, &w);
	CHECK_EQ_U64(w.where, KBU_DEVICES_NONE);
	CHECK_CONTAINS(w.how, "the DSDT describes none");
	kbu_devices_where("virtio_mmio.device=512@0xfeb00e00:12", 1, 1, &w);
	CHECK_EQ_U64(w.where, KBU_DEVICES_BOTH);
	kbu_devices_where("console=ttyS0 virtio_mmio.device=1@2", 0, 0, &w);
	CHECK_EQ_U64(w.where, KBU_DEVICES_NONE);
	CHECK_EQ_U64(w.nbad, 1);
	CHECK_CONTAINS(w.how, "1 malformed entry (virtio_mmio.device=1@2: expected ':IRQ'");
	kbu_devices_where(NULL, 1, 1, &w);
	CHECK_EQ_U64(w.where, KBU_DEVICES_ACPI);
	CHECK_CONTAINS(w.how, "the command line is not known");
	kbu_devices_where(NULL, -1, 0, &w);
	CHECK_EQ_U64(w.where, KBU_DEVICES_UNKNOWN);
	kbu_devices_where(NULL, 1, 0, &w);
	CHECK_EQ_U64(w.where, KBU_DEVICES_UNKNOWN);
	CHECK_STR(kbu_devices_source_name(KBU_DEVICES_CMDLINE), "command line");
	CHECK_STR(kbu_devices_source_name(KBU_DEVICES_UNKNOWN), "unknown");
}

/* A DSDT as QEMU microvm writes one (hw/i386/acpi-microvm.c): a table header,
 * then per plugged transport Device (VRnn) { _HID "LNRO0005", _UID, _CCA,
 * _CRS { Memory32Fixed (base, 512), Interrupt (irq) } }. */
static size_t put(uint8_t *b, size_t at, const void *p, size_t n)
{
	memcpy(b + at, p, n);
	return at + n;
}

static size_t put32(uint8_t *b, size_t at, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	return put(b, at, x, 4);
}

static size_t device(uint8_t *b, size_t at, const char *name, uint32_t base, uint32_t irq, int crs)
{
	static const uint8_t dev_op[] = {0x5b, 0x82, 0x40}; /* DeviceOp, PkgLength (not checked) */
	at = put(b, at, dev_op, sizeof dev_op);
	at = put(b, at, name, 4);
	at = put(b, at, "\x08_HID\x0dLNRO0005\x00", 15);
	at = put(b, at, "\x08_UID\x0a\x01\x08_CCA\x01", 13);
	if (!crs)
		return at;
	at = put(b, at, "\x08_CRS\x11\x1a\x0a\x17", 9);
	at = put(b, at, "\x86\x09\x00\x01", 4);      /* Memory32Fixed, read-write */
	at = put32(b, at, base);
	at = put32(b, at, 512);
	at = put(b, at, "\x89\x06\x00\x0d\x01", 5); /* Interrupt: consumer, level, high, 1 */
	at = put32(b, at, irq);
	return put(b, at, "\x79\x00", 2);            /* end tag */
}

TEST(dsdt_devices_are_read)
{
	uint8_t t[512];
	memset(t, 0, sizeof t);
	memcpy(t, "DSDT", 4);
	size_t n = device(t, 36 + 8, "VR00", 0xfeb00000, 16, 1);
	n = device(t, n, "VR03", 0xfeb00600, 19, 1);
	struct kbu_vmmio_list l;
	kbu_vmmio_scan_aml(t, n, &l);
	CHECK_EQ_U64(l.ndevs, 2);
	CHECK_EQ_U64(l.nbad, 0);
	CHECK_STR(l.devs[0].key, "DSDT VR00");
	CHECK_EQ_U64(l.devs[0].base, 0xfeb00000);
	CHECK_EQ_U64(l.devs[0].size, 512);
	CHECK_EQ_U64(l.devs[0].irq, 16);
	CHECK_STR(l.devs[1].key, "DSDT VR03");
	CHECK_EQ_U64(l.devs[1].base, 0xfeb00600);
	CHECK_EQ_U64(l.devs[1].irq, 19);
	/* a device without _CRS is named with the reason, the next one still read */
	memset(t + 36, 0, sizeof t - 36);
	n = device(t, 36, "VR01", 0, 0, 0);
	n = device(t, n, "VR02", 0xfeb00400, 18, 1);
	kbu_vmmio_scan_aml(t, n, &l);
	CHECK_EQ_U64(l.ndevs, 1);
	CHECK_EQ_U64(l.nbad, 1);
	CHECK_STR(l.bad[0].text, "DSDT VR01");
	CHECK_CONTAINS(l.bad[0].why, "no Memory32Fixed window");
	CHECK_EQ_U64(l.devs[0].irq, 18);
	/* every cut of the table: never past its end (ASan), never a device with a cut window */
	for (size_t cut = 0; cut <= n; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		CHECK(copy != NULL);
		memcpy(copy, t, cut);
		kbu_vmmio_scan_aml(copy, cut, &l);
		CHECK(l.ndevs <= 1);
		if (l.ndevs)
			CHECK_EQ_U64(l.devs[0].base, 0xfeb00400);
		free(copy);
	}
	/* no table, a header only, no device */
	kbu_vmmio_scan_aml(NULL, 0, &l);
	CHECK_EQ_U64(l.ndevs + l.nbad, 0);
	kbu_vmmio_scan_aml(t, 36, &l);
	CHECK_EQ_U64(l.ndevs + l.nbad, 0);
}

int main(void)
{
	RUN(values_parse_like_linux);
	RUN(command_lines_are_scanned);
	RUN(where_devices_are_described);
	RUN(dsdt_devices_are_read);
	CHECK_DONE("test_virtio_mmio");
}
