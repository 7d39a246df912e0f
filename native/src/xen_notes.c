/*
 * kbu: ELF notes by name and value. Xen's types are the ones a PVH porter
 * needs (PHYS32_ENTRY is where QEMU and Firecracker jump); the GNU, Linux,
 * FreeBSD and NetBSD ones are decoded where the format is simple.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/elf.h"
#include "kbu/symbols.h"
#include "kbu/util.h"
#include "kbu/xen.h"

enum vt { V_RAW, V_STR, V_NUM, V_FEAT, V_BITS, V_PAIRS, V_RELOC };

struct xen_type {
	const char *name;
	enum vt vt;
};

static const struct xen_type xen_types[] = {
	[KBU_XEN_ELFNOTE_INFO] = {"INFO", V_STR},
	[KBU_XEN_ELFNOTE_ENTRY] = {"ENTRY", V_NUM},
	[KBU_XEN_ELFNOTE_HYPERCALL_PAGE] = {"HYPERCALL_PAGE", V_NUM},
	[KBU_XEN_ELFNOTE_VIRT_BASE] = {"VIRT_BASE", V_NUM},
	[KBU_XEN_ELFNOTE_PADDR_OFFSET] = {"PADDR_OFFSET", V_NUM},
	[KBU_XEN_ELFNOTE_XEN_VERSION] = {"XEN_VERSION", V_STR},
	[KBU_XEN_ELFNOTE_GUEST_OS] = {"GUEST_OS", V_STR},
	[KBU_XEN_ELFNOTE_GUEST_VERSION] = {"GUEST_VERSION", V_STR},
	[KBU_XEN_ELFNOTE_LOADER] = {"LOADER", V_STR},
	[KBU_XEN_ELFNOTE_PAE_MODE] = {"PAE_MODE", V_STR},
	[KBU_XEN_ELFNOTE_FEATURES] = {"FEATURES", V_FEAT},
	[KBU_XEN_ELFNOTE_BSD_SYMTAB] = {"BSD_SYMTAB", V_STR},
	[KBU_XEN_ELFNOTE_HV_START_LOW] = {"HV_START_LOW", V_NUM},
	[KBU_XEN_ELFNOTE_L1_MFN_VALID] = {"L1_MFN_VALID", V_PAIRS},
	[KBU_XEN_ELFNOTE_SUSPEND_CANCEL] = {"SUSPEND_CANCEL", V_NUM},
	[KBU_XEN_ELFNOTE_INIT_P2M] = {"INIT_P2M", V_NUM},
	[KBU_XEN_ELFNOTE_MOD_START_PFN] = {"MOD_START_PFN", V_NUM},
	[KBU_XEN_ELFNOTE_SUPPORTED_FEATURES] = {"SUPPORTED_FEATURES", V_BITS},
	[KBU_XEN_ELFNOTE_PHYS32_ENTRY] = {"PHYS32_ENTRY", V_NUM},
	[KBU_XEN_ELFNOTE_PHYS32_RELOC] = {"PHYS32_RELOC", V_RELOC},
};

/* Xen's public/features.h bit numbers (XENFEAT_*). */
static const char *const xen_features[] = {
	"writable_page_tables", "writable_descriptor_tables", "auto_translated_physmap",
	"supervisor_mode_kernel", "pae_pgdir_above_4gb", "mmu_pt_update_preserve_ad",
	"highmem_assist", "gnttab_map_avail_bits", "hvm_callback_vector", "hvm_safe_pvclock",
	"hvm_pirqs", "dom0", "grant_map_identity", "memory_op_vnode_supported",
	"ARM_SMCCC_supported", "linux_rsdp_unrestricted", "not_direct_mapped", "direct_mapped",
};

const char *kbu_xen_note_name(uint32_t type)
{
	if (type < sizeof(xen_types) / sizeof(xen_types[0]))
		return xen_types[type].name;
	switch (type) {
	case 0x1000001: return "CRASH_INFO";
	case 0x1000002: return "CRASH_REGS";
	case 0x2000000: return "DUMPCORE_NONE";
	case 0x2000001: return "DUMPCORE_HEADER";
	case 0x2000002: return "DUMPCORE_XEN_VERSION";
	case 0x2000003: return "DUMPCORE_FORMAT_VERSION";
	default: return NULL;
	}
}

static uint64_t le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static void appendf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strnlen(buf, len);
	if (used + 1 >= len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

static void problem(struct kbu_note_value *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void problem(struct kbu_note_value *v, const char *fmt, ...)
{
	if (v->problem[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->problem, sizeof(v->problem), fmt, ap);
	va_end(ap);
}

static void as_raw(const struct kbu_note *n, struct kbu_note_value *v)
{
	v->kind = KBU_NOTE_RAW;
	v->text[0] = 0;
	size_t show = n->descsz < 48 ? n->descsz : 48;
	for (size_t i = 0; i < show; i++)
		appendf(v->text, sizeof(v->text), i ? " %02x" : "%02x", n->desc[i]);
	if (show < n->descsz)
		appendf(v->text, sizeof(v->text), " ... (%zu bytes)", n->descsz);
	if (!n->descsz)
		appendf(v->text, sizeof(v->text), "(empty)");
}

/* Text up to the first NUL, unprintable bytes escaped; flags a missing NUL. */
static void as_string(const struct kbu_note *n, struct kbu_note_value *v)
{
	v->kind = KBU_NOTE_STRING;
	v->text[0] = 0;
	/* Bounded by descsz: Linux writes FEATURES with .ascii, no NUL, and Xen accepts it. */
	size_t l = strnlen((const char *)n->desc, n->descsz);
	kbu_escape(n->desc, l, NULL, v->text, sizeof(v->text));
}

static int as_number(const struct kbu_note *n, struct kbu_note_value *v)
{
	if (n->descsz != 4 && n->descsz != 8) {
		as_raw(n, v);
		problem(v, "%zu-byte value: a number here is 4 or 8 bytes", n->descsz);
		return -1;
	}
	v->kind = KBU_NOTE_NUMBER;
	v->num = le(n->desc, n->descsz);
	snprintf(v->text, sizeof(v->text), "0x%llx", (unsigned long long)v->num);
	return 0;
}

static void as_features(const struct kbu_note *n, struct kbu_note_value *v)
{
	as_string(n, v);
	v->kind = KBU_NOTE_FEATURES;
	char copy[sizeof(v->text)];
	memcpy(copy, v->text, sizeof(copy));
	v->text[0] = 0;
	char *save = NULL;
	int first = 1;
	for (char *tok = strtok_r(copy, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
		int req = tok[0] == '!';
		appendf(v->text, sizeof(v->text), "%s%s%s", first ? "" : ", ", tok + req,
			req ? " (required)" : "");
		first = 0;
	}
}

static void as_bits(const struct kbu_note *n, struct kbu_note_value *v)
{
	if (as_number(n, v))
		return;
	v->kind = KBU_NOTE_BITMAP;
	snprintf(v->text, sizeof(v->text), "0x%08llx", (unsigned long long)v->num);
	int first = 1;
	for (unsigned b = 0; b < 64; b++) {
		if (!(v->num >> b & 1))
			continue;
		const char *nm = b < sizeof(xen_features) / sizeof(xen_features[0]) ? xen_features[b] : NULL;
		if (nm)
			appendf(v->text, sizeof(v->text), "%s%s", first ? " (" : ", ", nm);
		else
			appendf(v->text, sizeof(v->text), "%sbit%u", first ? " (" : ", ", b);
		first = 0;
	}
	if (!first)
		appendf(v->text, sizeof(v->text), ")");
}

/* L1_MFN_VALID: maddr_t (8 bytes on x86-64) mask/value pairs. */
static void as_pairs(const struct kbu_note *n, struct kbu_note_value *v)
{
	size_t w = n->descsz % 16 == 0 ? 8 : n->descsz % 8 == 0 ? 4 : 0;
	if (!w || !n->descsz) {
		as_raw(n, v);
		problem(v, "%zu bytes: expected mask/value pairs of 4- or 8-byte numbers", n->descsz);
		return;
	}
	v->kind = KBU_NOTE_PAIRS;
	v->text[0] = 0;
	for (size_t o = 0; o + 2 * w <= n->descsz; o += 2 * w)
		appendf(v->text, sizeof(v->text), "%smask 0x%llx value 0x%llx", o ? "; " : "",
			(unsigned long long)le(n->desc + o, w),
			(unsigned long long)le(n->desc + o + w, w));
}

/* PHYS32_RELOC: up to three 32-bit values: alignment, minimum, maximum. */
static void as_reloc(const struct kbu_note *n, struct kbu_note_value *v)
{
	static const char *const what[] = {"align", "min", "max"};
	if (n->descsz % 4 || n->descsz > 12) {
		as_raw(n, v);
		problem(v, "%zu bytes: expected up to three 4-byte values", n->descsz);
		return;
	}
	v->kind = KBU_NOTE_PAIRS;
	v->text[0] = 0;
	if (!n->descsz)
		appendf(v->text, sizeof(v->text), "relocatable (defaults)");
	for (size_t i = 0; i < n->descsz / 4; i++)
		appendf(v->text, sizeof(v->text), "%s%s 0x%llx", i ? ", " : "", what[i],
			(unsigned long long)le(n->desc + 4 * i, 4));
}

static void decode_xen(const struct kbu_note *n, struct kbu_note_value *v)
{
	v->type_name = kbu_xen_note_name(n->type);
	if (n->type >= sizeof(xen_types) / sizeof(xen_types[0])) {
		as_raw(n, v);
		return;
	}
	switch (xen_types[n->type].vt) {
	case V_STR: as_string(n, v); break;
	case V_NUM: as_number(n, v); break;
	case V_FEAT: as_features(n, v); break;
	case V_BITS: as_bits(n, v); break;
	case V_PAIRS: as_pairs(n, v); break;
	case V_RELOC: as_reloc(n, v); break;
	default: as_raw(n, v); break;
	}
	if (n->type == KBU_XEN_ELFNOTE_PHYS32_ENTRY && v->kind == KBU_NOTE_NUMBER &&
	    v->num > 0xffffffffull)
		problem(v, "PVH entry 0x%llx is above 4 GiB: a 32-bit entry cannot be there",
			(unsigned long long)v->num);
}

static void decode_gnu(const struct kbu_note *n, struct kbu_note_value *v)
{
	static const char *const oses[] = {"Linux", "Hurd", "Solaris", "FreeBSD", "NetBSD", "Syllable"};
	switch (n->type) {
	case 1:
		v->type_name = "GNU_ABI_TAG";
		if (n->descsz != 16) {
			as_raw(n, v);
			problem(v, "%zu bytes: an ABI tag is 16", n->descsz);
			return;
		}
		{
			uint32_t os = (uint32_t)le(n->desc, 4);
			v->kind = KBU_NOTE_VERSION;
			v->num = os;
			if (os < 6)
				snprintf(v->text, sizeof(v->text), "%s %u.%u.%u", oses[os],
					 (unsigned)le(n->desc + 4, 4), (unsigned)le(n->desc + 8, 4),
					 (unsigned)le(n->desc + 12, 4));
			else
				snprintf(v->text, sizeof(v->text), "os %u %u.%u.%u", os,
					 (unsigned)le(n->desc + 4, 4), (unsigned)le(n->desc + 8, 4),
					 (unsigned)le(n->desc + 12, 4));
		}
		return;
	case 2: v->type_name = "GNU_HWCAP"; as_raw(n, v); return;
	case 3:
		v->type_name = "GNU_BUILD_ID";
		v->kind = KBU_NOTE_HEX;
		v->text[0] = 0;
		for (size_t i = 0; i < n->descsz && i < 64; i++)
			appendf(v->text, sizeof(v->text), "%02x", n->desc[i]);
		if (!n->descsz)
			problem(v, "empty build id");
		return;
	case 4: v->type_name = "GNU_GOLD_VERSION"; as_string(n, v); return;
	case 5: v->type_name = "GNU_PROPERTY_TYPE_0"; as_raw(n, v); return;
	default: as_raw(n, v); return;
	}
}

static void decode_linux(const struct kbu_note *n, struct kbu_note_value *v)
{
	switch (n->type) {
	case 0x100: v->type_name = "LINUX_BUILD_SALT"; as_string(n, v); return;
	case 0x101: v->type_name = "LINUX_LTO_INFO"; as_number(n, v); return;
	default: as_raw(n, v); return;
	}
}

static void decode_freebsd(const struct kbu_note *n, struct kbu_note_value *v)
{
	switch (n->type) {
	case 1:
		v->type_name = "FREEBSD_ABI_TAG";
		if (as_number(n, v) == 0) {
			/* __FreeBSD_version: MMmmxxx */
			v->kind = KBU_NOTE_VERSION;
			snprintf(v->text, sizeof(v->text), "%llu (FreeBSD %llu.%llu)",
				 (unsigned long long)v->num, (unsigned long long)(v->num / 100000),
				 (unsigned long long)(v->num / 1000 % 100));
		}
		return;
	case 2: v->type_name = "FREEBSD_NOINIT_TAG"; as_raw(n, v); return;
	case 3: v->type_name = "FREEBSD_ARCH_TAG"; as_string(n, v); return;
	case 4: v->type_name = "FREEBSD_FEATURE_CTL"; as_number(n, v); return;
	default: as_raw(n, v); return;
	}
}

static void decode_netbsd(const struct kbu_note *n, struct kbu_note_value *v)
{
	switch (n->type) {
	case 1:
		v->type_name = "NETBSD_IDENT";
		if (as_number(n, v) == 0) {
			/* __NetBSD_Version__: MMmmrrpp00 */
			v->kind = KBU_NOTE_VERSION;
			snprintf(v->text, sizeof(v->text), "%llu (NetBSD %llu.%llu.%llu)",
				 (unsigned long long)v->num, (unsigned long long)(v->num / 100000000),
				 (unsigned long long)(v->num / 1000000 % 100),
				 (unsigned long long)(v->num / 100 % 10000));
		}
		return;
	case 5: v->type_name = "NETBSD_MARCH"; as_string(n, v); return;
	default: as_raw(n, v); return;
	}
}

static void decode_core(const struct kbu_note *n, struct kbu_note_value *v)
{
	switch (n->type) {
	case 1: v->type_name = "PRSTATUS"; break;
	case 2: v->type_name = "PRFPREG"; break;
	case 3: v->type_name = "PRPSINFO"; break;
	case 4: v->type_name = "TASKSTRUCT"; break;
	case 6: v->type_name = "AUXV"; break;
	default: break;
	}
	as_raw(n, v);
}

void kbu_note_decode(const struct kbu_note *n, struct kbu_note_value *v)
{
	memset(v, 0, sizeof(*v));
	const char *o = n->owner ? n->owner : "";
	if (strcmp(o, "Xen") == 0)
		decode_xen(n, v);
	else if (strcmp(o, "GNU") == 0)
		decode_gnu(n, v);
	else if (strcmp(o, "Linux") == 0)
		decode_linux(n, v);
	else if (strcmp(o, "FreeBSD") == 0)
		decode_freebsd(n, v);
	else if (strcmp(o, "NetBSD") == 0)
		decode_netbsd(n, v);
	else if (strcmp(o, "CORE") == 0)
		decode_core(n, v);
	else if (strcmp(o, "QEMU") == 0) {
		v->type_name = n->type == 0 ? "QEMU_CPUSTATE" : NULL;
		as_raw(n, v);
	} else
		as_raw(n, v);
}

int kbu_xen_note_number(const struct kbu_note *n, uint64_t *out, struct kbu_err *err)
{
	if (n->descsz != 4 && n->descsz != 8)
		return kbu_err_set(err, KBU_EFORMAT,
				   "Xen note type %u at file offset 0x%llx: %zu-byte value, a number "
				   "is 4 or 8 bytes",
				   n->type, (unsigned long long)n->file_offset, n->descsz);
	*out = le(n->desc, n->descsz);
	return 0;
}

int kbu_xen_pvh_entry(const struct kbu_elf *e, uint64_t *entry, struct kbu_err *err)
{
	for (size_t i = 0; i < kbu_elf_nnotes(e); i++) {
		const struct kbu_note *n = kbu_elf_note(e, i);
		if (strcmp(n->owner, "Xen") == 0 && n->type == KBU_XEN_ELFNOTE_PHYS32_ENTRY)
			return kbu_xen_note_number(n, entry, err);
	}
	return kbu_err_set(err, KBU_ENOTFOUND,
			   "%s: no PVH entry (no Xen PHYS32_ENTRY note): it cannot be booted "
			   "as a PVH ELF",
			   kbu_elf_path(e));
}

int kbu_image_get(struct kbu_ctx *ctx, const char *path, struct kbu_image *img,
		  struct kbu_err *err)
{
	memset(img, 0, sizeof(*img));
	if (path) {
		img->own_elf = img->elf = kbu_elf_open(path, err);
		if (!img->elf)
			return -1;
		if (ctx && ctx->syms && kbu_symtab_count(ctx->syms)) {
			img->syms = ctx->syms;
		} else {
			/* Its own symbols, if any: a stripped image is fine here. */
			struct kbu_err ignore;
			img->own_syms = kbu_symtab_new();
			if (img->own_syms && kbu_symtab_load_elf(img->own_syms, img->elf, &ignore) == 0 &&
			    kbu_symtab_finish(img->own_syms, &ignore) == 0 &&
			    kbu_symtab_count(img->own_syms))
				img->syms = img->own_syms;
		}
		return 0;
	}
	if (!ctx || !ctx->kernel)
		return kbu_err_set(err, KBU_EINVAL, "needs a kernel image: give ELF or --kernel ELF");
	img->elf = ctx->kernel;
	img->syms = ctx->syms && kbu_symtab_count(ctx->syms) ? ctx->syms : NULL;
	return 0;
}

int kbu_image_from_args(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_image *img,
			struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {{NULL, 0, 0}};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	const char *path = NULL;
	int i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (path)
			return kbu_err_set(err, KBU_EINVAL, "one ELF at a time ('%s' and '%s')",
					   path, g.arg);
		path = g.arg;
	}
	return kbu_image_get(ctx, path, img, err);
}

void kbu_image_put(struct kbu_image *img)
{
	kbu_symtab_free(img->own_syms);
	kbu_elf_close(img->own_elf);
	memset(img, 0, sizeof(*img));
}

const char *kbu_image_symbol(const struct kbu_image *img, uint64_t vaddr, char *buf, size_t len)
{
	uint64_t off = 0;
	const struct kbu_sym *s = img->syms ? kbu_sym_by_addr(img->syms, vaddr, &off) : NULL;
	if (!len)
		return buf;
	/* Only a symbol that spans it, or an unsized one close below, names it. */
	if (!s || (s->size && off >= s->size) || (!s->size && off >= 0x10000))
		buf[0] = 0;
	else if (off)
		snprintf(buf, len, "%s+0x%llx", s->name, (unsigned long long)off);
	else
		snprintf(buf, len, "%s", s->name);
	return buf;
}
