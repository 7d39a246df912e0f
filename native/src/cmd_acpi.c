/* kbu acpi [SIGNATURE]: the RSDP, every table behind it, the MADT and the FADT. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kbu/acpi.h"
#include "kbu/command.h"
#include "kbu/firmware.h"
#include "kbu/mem.h"
#include "kbu/os.h"
#include "kbu/pvh.h"
#include "kbu/report.h"
#include "kbu/util.h"
#include "kbu/virtio_mmio.h"

#define MIB (1024ull * 1024)

/* The start info a PVH kernel got, if one is in memory: where the kernel takes
 * its RSDP from. Not finding one is no error (non-PVH boots have none). */
static int find_start_info(struct kbu_ctx *ctx, struct kbu_pvh *p)
{
	const char *role = NULL;
	char label[64] = "";
	struct kbu_os_profile *prof = NULL;
	struct kbu_err e;
	if (ctx->syms && (prof = kbu_ctx_profile(ctx, NULL, NULL, &e)) != NULL) {
		role = kbu_os_role(prof, "start_info");
		snprintf(label, sizeof(label), "%s profile's", kbu_os_name(prof));
	}
	/* The first MiB: where qboot, SeaBIOS and Firecracker put it (or %ebx at the entry). */
	int rc = kbu_pvh_find_named(ctx->mem, ctx->syms, ctx->kernel, role, label, MIB, p, &e);
	kbu_os_free(prof);
	if (rc != 0) {
		kbu_pvh_free(p);
		return 0;
	}
	return 1;
}

static void report_devices(const struct kbu_acpi *a, const struct kbu_pvh *p, int have_pvh,
			   struct kbu_node *root)
{
	const char *cmdline = have_pvh && p->cmdline.state == KBU_PVH_STR_OK ? p->cmdline.text
		: have_pvh && p->cmdline.state == KBU_PVH_STR_ABSENT ? "" : NULL;
	const struct kbu_acpi_table *dsdt = a->found ? kbu_acpi_table(a, "DSDT", 0) : NULL;
	int have_dsdt = dsdt && dsdt->state == KBU_ACPI_T_OK && dsdt->data;
	struct kbu_vmmio_list aml;
	memset(&aml, 0, sizeof aml);
	if (have_dsdt)
		kbu_vmmio_scan_aml(dsdt->data, dsdt->length, &aml);
	struct kbu_devices_where w;
	kbu_devices_where(cmdline, have_dsdt ? 1 : a->found ? 0 : -1, (int)aml.ndevs, &w);
	struct kbu_node *o = kbu_obj(root, "devices", "Devices (virtio-mmio)");
	kbu_str(o, "described", "described", kbu_devices_source_name(w.where));
	kbu_str(o, "how", "how", w.how);
	kbu_u64(o, "cmdline_entries", "", w.ncmdline);
	kbu_u64(o, "cmdline_malformed", "", w.nbad);
	kbu_bool(o, "cmdline_known", "", w.cmdline_known);
	if (have_dsdt) {
		struct kbu_node *t = kbu_list(o, "dsdt_devices", "In the DSDT (_HID LNRO0005)");
		for (size_t i = 0; i < aml.ndevs; i++) {
			struct kbu_node *row = kbu_row(t);
			const char *k = aml.devs[i].key;
			kbu_str(row, "name", "Name", strlen(k) > 5 ? k + 5 : "?");
			kbu_hex(row, "base", "Base", aml.devs[i].base, 0);
			kbu_u64(row, "size", "Size", aml.devs[i].size);
			kbu_u64(row, "irq", "IRQ", aml.devs[i].irq);
		}
		for (size_t i = 0; i < aml.nbad; i++)
			kbu_finding(o, KBU_SEV_WARN, "acpi.dsdt_device_unreadable", "%s (LNRO0005): %s",
				    aml.bad[i].text, aml.bad[i].why);
	}
}

static int acpi_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		    struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {{"rsdp", 0, 1}, {NULL, 0, 0}};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	struct kbu_acpi_opts o = {0};
	char sig[5] = "";
	int i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG) {
			size_t n = strlen(g.arg);
			if (sig[0])
				return kbu_err_set(err, KBU_EINVAL, "more than one signature ('%s')",
						   g.arg);
			if (n == 0 || n > 4)
				return kbu_err_set(err, KBU_EINVAL,
						   "'%s' is not a table signature (4 characters: APIC, "
						   "FACP, DSDT, XSDT, ...)",
						   g.arg);
			for (size_t k = 0; k < n; k++) {
				if (!isalnum((unsigned char)g.arg[k]) && g.arg[k] != '_')
					return kbu_err_set(err, KBU_EINVAL,
							   "'%s' is not a table signature", g.arg);
				sig[k] = (char)toupper((unsigned char)g.arg[k]);
			}
			sig[n] = 0;
			continue;
		}
		if (kbu_parse_u64(g.arg, &o.rsdp_addr, err) < 0)
			return kbu_err_prefix(err, "--rsdp");
		o.have_rsdp = 1;
	}
	struct kbu_pvh p;
	memset(&p, 0, sizeof(p));
	int have_pvh = !o.have_rsdp && find_start_info(ctx, &p);
	if (have_pvh)
		o.pvh = &p;
	o.vcpus = kbu_mem_ncpus(ctx->mem);
	struct kbu_acpi a;
	if (kbu_acpi_read(ctx->mem, &o, &a, err) != 0) {
		kbu_pvh_free(&p);
		return -1;
	}
	struct kbu_node *root = kbu_report_root(r);
	int rc = 0;
	if (!a.found) {
		if (sig[0]) {
			rc = kbu_err_set(err, KBU_ENOTFOUND, "no %s table: no ACPI (%s)", sig,
					 a.not_found);
			goto out;
		}
		struct kbu_firmware fw;
		struct kbu_fw_known known = {.acpi = &a, .pvh = have_pvh ? &p : NULL};
		if (kbu_firmware_identify(ctx->mem, &known, &fw, err) != 0) {
			rc = -1;
			goto out;
		}
		kbu_bool(root, "present", "", 0);
		int not_run = kbu_firmware_not_run_yet(ctx->mem);
		kbu_bool(root, "firmware_ran", "", !not_run);
		struct kbu_node *f = kbu_finding(root, KBU_SEV_NOTE, "acpi.absent",
						 "no ACPI: %s; %s%s (%s)", a.not_found,
						 not_run ? "CPU 0 is still at its reset vector: the "
							   "firmware has not run yet; firmware: "
							 : "firmware: ",
						 fw.name, fw.how);
		kbu_str(f, "where_looked", NULL, a.not_found);
		kbu_firmware_report(&fw, root, 1);
		goto out;
	}
	kbu_bool(root, "present", "", 1);
	if (!sig[0]) {
		struct kbu_firmware fw;
		struct kbu_fw_known known = {.acpi = &a, .pvh = have_pvh ? &p : NULL};
		if (kbu_firmware_identify(ctx->mem, &known, &fw, err) != 0) {
			rc = -1;
			goto out;
		}
		kbu_firmware_report(&fw, root, 0);
	}
	if (kbu_acpi_report(&a, sig[0] ? sig : NULL, root, err) != 0) {
		rc = -1;
		goto out;
	}
	if (!sig[0])
		report_devices(&a, &p, have_pvh, root);
out:
	kbu_acpi_free(&a);
	kbu_pvh_free(&p);
	return rc;
}

static struct kbu_command cmd_acpi = {
	.name = "acpi",
	.summary = "find the RSDP and check every ACPI table: MADT CPUs and interrupt controllers, FADT",
	.help = "usage: kbu acpi [--core F|--phys F|--gdb H:P] [--kernel ELF] [--symbols MAP]\n"
		"                [--rsdp ADDR] [SIGNATURE]\n"
		"\n"
		"Finds the RSDP where a kernel would: through the PVH start info's rsdp_paddr\n"
		"when a start info is in memory (the kernel's saved pointer with symbols,\n"
		"%ebx at the PVH entry, or the first MiB scanned), else in the EBDA's first\n"
		"KiB and 0xe0000-0xfffff on 16-byte boundaries; or at ADDR (--rsdp). Then\n"
		"reads the XSDT (or RSDT), every table it lists, and the DSDT and FACS the\n"
		"FADT points at, verifying every checksum and length. Shows which firmware\n"
		"wrote them (qboot, SeaBIOS, Firecracker), the table list, the MADT (local\n"
		"APICs and x2APICs, I/O APICs, interrupt source overrides, NMI sources and\n"
		"local NMIs, the local APIC address; other entry types by type and length),\n"
		"the FADT's essentials (flags such as HW_REDUCED_ACPI, DSDT/X_DSDT, the PM\n"
		"timer, IA-PC boot architecture flags) and where virtio-mmio devices are\n"
		"described (the command line, or the DSDT). The MADT's processors are\n"
		"compared with the VM's vCPUs when the source knows them.\n"
		"\n"
		"SIGNATURE shows one table: APIC (or MADT), FACP (or FADT), XSDT, RSDT,\n"
		"RSDP, or any other (its header and bytes).\n"
		"\n"
		"No ACPI at all (qboot with -M microvm,acpi=off) is an answer, not an error:\n"
		"one line 'note: no ACPI: ...', exit status 0, JSON \"present\": false. A\n"
		"SIGNATURE that names no table exits 2. A memory source that fails is\n"
		"reported as that error, never as 'no RSDP'.\n",
	.needs = KBU_NEEDS_MEM,
	.run = acpi_run,
};
KBU_COMMAND(cmd_acpi)
