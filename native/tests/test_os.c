/*
 * OS profiles: the built-ins against the real structure layouts, the profile
 * files against the built-ins, parsing errors, detection from symbols.
 *
 * The mirror structs below restate the kernels' declarations with amd64 types
 * (u_int = unsigned int, long = 64 bits, pointers 8 bytes):
 *  - FreeBSD sys/sys/timetc.h, struct timecounter (freebsd-src main,
 *    commit 039ea811636f; tc_flags and later members follow tc_quality);
 *  - FreeBSD sys/sys/msgbuf.h, struct msgbuf (freebsd-src commit bfbf967ba6b7);
 *  - NetBSD sys/sys/timetc.h, struct timecounter (rev. 1.3.44.1 and later);
 *  - NetBSD sys/sys/msgbuf.h, struct kern_msgbuf (rev. 1.18, 2022/10/26);
 *  - Linux 6.1 kernel/printk/printk_ringbuffer.h and include/linux/clocksource.h
 *    (as in DWARF of Debian's 6.1.0-56-cloud-amd64, 6.1.192).
 */
#include <glob.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "elf_fixture.h"
#include "support.h"
#include "kbu/elf.h"
#include "kbu/os.h"
#include "kbu/symbols.h"

struct fbsd_timecounter {
	void *tc_get_timecount;
	void *tc_poll_pps;
	unsigned int tc_counter_mask;
	uint64_t tc_frequency;
	const char *tc_name;
	int tc_quality;
	unsigned int tc_flags;
	void *tc_priv;
	struct fbsd_timecounter *tc_next;
};

struct fbsd_msgbuf {
	char *msg_ptr;
	unsigned int msg_magic;
	unsigned int msg_size;
	unsigned int msg_wseq;
	unsigned int msg_rseq;
	unsigned int msg_cksum;
	unsigned int msg_seqmod;
	int msg_lastpri;
	unsigned int msg_flags;
};

struct nbsd_timecounter {
	void *tc_get_timecount;
	void *tc_poll_pps;
	unsigned int tc_counter_mask;
	uint64_t tc_frequency;
	const char *tc_name;
	int tc_quality;
	void *tc_priv;
	struct nbsd_timecounter *tc_next;
};

struct nbsd_kern_msgbuf {
	long msg_magic;
	long msg_bufx;
	long msg_bufr;
	long msg_bufs;
	char msg_bufc[1];
};

struct lx_prb_desc_ring {
	unsigned int count_bits;
	void *descs;
	void *infos;
	long head_id;
	long tail_id;
	long last_finalized_id;
};
struct lx_prb_data_ring {
	unsigned int size_bits;
	char *data;
	long head_lpos;
	long tail_lpos;
};
struct lx_printk_ringbuffer {
	struct lx_prb_desc_ring desc_ring;
	struct lx_prb_data_ring text_data_ring;
	long fail;
};
struct lx_prb_desc {
	long state_var;
	unsigned long begin, next;
};
struct lx_printk_info {
	uint64_t seq;
	uint64_t ts_nsec;
	uint16_t text_len;
	uint8_t facility;
	uint8_t flags_level;
	uint32_t caller_id;
	char subsystem[16];
	char device[48];
};
struct lx_list_head {
	void *next, *prev;
};
struct lx_clocksource {
	void *read;
	uint64_t mask;
	uint32_t mult;
	uint32_t shift;
	uint64_t max_idle_ns;
	uint32_t maxadj;
	uint32_t uncertainty_margin;
	uint64_t max_cycles;
	const char *name;
	struct lx_list_head list;
	int rating;
};

/* Checks that profile field `key` of `layout` sits at `off` with `size`. */
static void check_field(const struct kbu_os_profile *p, const char *layout, const char *key,
			size_t off, size_t size, const char *cname)
{
	struct kbu_os_field f;
	struct kbu_err err = {0};
	int rc = kbu_os_field(p, layout, key, &f, &err);
	if (rc != 0) {
		fprintf(stderr, "%s %s.%s: %s\n", kbu_os_name(p), layout, key, err.msg);
		CHECK(rc == 0);
		return;
	}
	CHECK_EQ_U64(f.offset, off);
	CHECK_EQ_U64(f.size, size);
	CHECK_STR(f.cname, cname);
}

#define FSIZE(type, m) sizeof(((type *)0)->m)

TEST(freebsd_layouts_match_source)
{
	struct kbu_err err = {0};
	struct kbu_os_profile *p = kbu_os_builtin("freebsd", &err);
	CHECK(p);
	if (!p)
		return;
	check_field(p, "timesource", "frequency", offsetof(struct fbsd_timecounter, tc_frequency),
		    8, "tc_frequency");
	check_field(p, "timesource", "name", offsetof(struct fbsd_timecounter, tc_name), 8, "tc_name");
	check_field(p, "timesource", "quality", offsetof(struct fbsd_timecounter, tc_quality), 4,
		    "tc_quality");
	check_field(p, "timesource", "next", offsetof(struct fbsd_timecounter, tc_next), 8, "tc_next");
	CHECK_STR(kbu_os_role(p, "timesource_list"), "timecounters");
	CHECK_STR(kbu_os_role(p, "timesource_list_kind"), "pointer");
	check_field(p, "msgbuf", "ptr", offsetof(struct fbsd_msgbuf, msg_ptr), 8, "msg_ptr");
	check_field(p, "msgbuf", "magic", offsetof(struct fbsd_msgbuf, msg_magic), 4, "msg_magic");
	check_field(p, "msgbuf", "size", offsetof(struct fbsd_msgbuf, msg_size), 4, "msg_size");
	check_field(p, "msgbuf", "wseq", offsetof(struct fbsd_msgbuf, msg_wseq), 4, "msg_wseq");
	check_field(p, "msgbuf", "rseq", offsetof(struct fbsd_msgbuf, msg_rseq), 4, "msg_rseq");
	check_field(p, "msgbuf", "seqmod", offsetof(struct fbsd_msgbuf, msg_seqmod), 4, "msg_seqmod");
	uint64_t magic = 0;
	CHECK(kbu_os_layout_num(p, "msgbuf", "magic_value", &magic, &err) == 0);
	CHECK_EQ_U64(magic, 0x063062);
	CHECK_STR(kbu_os_role(p, "timesource"), "timecounter");
	CHECK_STR(kbu_os_role(p, "x2apic_type"), "int");
	CHECK_STR(kbu_os_role(p, "ncpus"), "mp_ncpus");
	CHECK_STR(kbu_os_role(p, "start_info"), "start_info");
	CHECK(kbu_os_role_has(p, "asserts", "kassert_panic"));
	CHECK(kbu_os_role_has(p, "asserts", "vpanic"));
	CHECK(kbu_os_role_has(p, "asserts", "panic"));
	CHECK(!kbu_os_role_has(p, "asserts", "kern_assert"));
	kbu_os_free(p);
}

TEST(netbsd_layouts_match_source)
{
	struct kbu_err err = {0};
	struct kbu_os_profile *p = kbu_os_builtin("netbsd", &err);
	CHECK(p);
	if (!p)
		return;
	check_field(p, "timesource", "frequency", offsetof(struct nbsd_timecounter, tc_frequency),
		    8, "tc_frequency");
	check_field(p, "timesource", "name", offsetof(struct nbsd_timecounter, tc_name), 8, "tc_name");
	check_field(p, "timesource", "quality", offsetof(struct nbsd_timecounter, tc_quality), 4,
		    "tc_quality");
	check_field(p, "timesource", "next", offsetof(struct nbsd_timecounter, tc_next), 8, "tc_next");
	CHECK_STR(kbu_os_role(p, "timesource_list"), "timecounters");
	check_field(p, "msgbuf", "magic", offsetof(struct nbsd_kern_msgbuf, msg_magic), 8,
		    "msg_magic");
	check_field(p, "msgbuf", "bufx", offsetof(struct nbsd_kern_msgbuf, msg_bufx), 8, "msg_bufx");
	check_field(p, "msgbuf", "bufr", offsetof(struct nbsd_kern_msgbuf, msg_bufr), 8, "msg_bufr");
	check_field(p, "msgbuf", "bufs", offsetof(struct nbsd_kern_msgbuf, msg_bufs), 8, "msg_bufs");
	check_field(p, "msgbuf", "bufc", offsetof(struct nbsd_kern_msgbuf, msg_bufc), 0, "msg_bufc");
	uint64_t magic = 0;
	CHECK(kbu_os_layout_num(p, "msgbuf", "magic_value", &magic, &err) == 0);
	CHECK_EQ_U64(magic, 0x063061);
	CHECK_STR(kbu_os_role(p, "x2apic_type"), "bool");
	CHECK_STR(kbu_os_role(p, "start_info"), "hvm_start_paddr");
	CHECK_STR(kbu_os_role(p, "start_info_kind"), "paddr");
	CHECK_STR(kbu_os_role(p, "ncpus"), "ncpu");
	CHECK(kbu_os_role_has(p, "asserts", "kern_assert"));
	kbu_os_free(p);
}

TEST(linux_layouts_match_source)
{
	struct kbu_err err = {0};
	struct kbu_os_profile *p = kbu_os_builtin("linux", &err);
	CHECK(p);
	if (!p)
		return;
	check_field(p, "timesource", "name", offsetof(struct lx_clocksource, name), 8, "name");
	check_field(p, "timesource", "quality", offsetof(struct lx_clocksource, rating), 4, "rating");
	check_field(p, "timesource", "list", offsetof(struct lx_clocksource, list), 0, "list");
	CHECK_STR(kbu_os_role(p, "timesource_list"), "clocksource_list");
	CHECK_STR(kbu_os_role(p, "timesource_list_kind"), "list_head");
	check_field(p, "msgbuf", "desc_count_bits",
		    offsetof(struct lx_printk_ringbuffer, desc_ring.count_bits), 4,
		    "desc_ring.count_bits");
	check_field(p, "msgbuf", "descs", offsetof(struct lx_printk_ringbuffer, desc_ring.descs), 8,
		    "desc_ring.descs");
	check_field(p, "msgbuf", "infos", offsetof(struct lx_printk_ringbuffer, desc_ring.infos), 8,
		    "desc_ring.infos");
	check_field(p, "msgbuf", "head_id", offsetof(struct lx_printk_ringbuffer, desc_ring.head_id),
		    8, "desc_ring.head_id");
	check_field(p, "msgbuf", "tail_id", offsetof(struct lx_printk_ringbuffer, desc_ring.tail_id),
		    8, "desc_ring.tail_id");
	check_field(p, "msgbuf", "data_size_bits",
		    offsetof(struct lx_printk_ringbuffer, text_data_ring.size_bits), 4,
		    "text_data_ring.size_bits");
	check_field(p, "msgbuf", "data", offsetof(struct lx_printk_ringbuffer, text_data_ring.data),
		    8, "text_data_ring.data");
	check_field(p, "msgbuf", "desc_size", sizeof(struct lx_prb_desc), 0, "prb_desc");
	check_field(p, "msgbuf", "desc_begin", offsetof(struct lx_prb_desc, begin), 8,
		    "text_blk_lpos.begin");
	check_field(p, "msgbuf", "desc_next", offsetof(struct lx_prb_desc, next), 8,
		    "text_blk_lpos.next");
	check_field(p, "msgbuf", "info_size", sizeof(struct lx_printk_info), 0, "printk_info");
	check_field(p, "msgbuf", "info_seq", offsetof(struct lx_printk_info, seq), 8, "seq");
	check_field(p, "msgbuf", "info_ts_nsec", offsetof(struct lx_printk_info, ts_nsec), 8,
		    "ts_nsec");
	check_field(p, "msgbuf", "info_text_len", offsetof(struct lx_printk_info, text_len), 2,
		    "text_len");
	CHECK_STR(kbu_os_role(p, "timesource"), "curr_clocksource");
	CHECK_STR(kbu_os_role(p, "msgbuf_format"), "linux-prb");
	CHECK(kbu_os_role_has(p, "asserts", "panic"));
	CHECK(kbu_os_role_has(p, "asserts", "__warn"));
	CHECK(kbu_os_role_has(p, "asserts", "report_bug"));
	CHECK(kbu_os_role(p, "vprintf_entries") == NULL); /* empty means absent */
	/* Linux's clocksource has no frequency field: asking for it is a clear error. */
	struct kbu_os_field f;
	CHECK(kbu_os_field(p, "timesource", "frequency", &f, &err) < 0);
	CHECK_CONTAINS(err.msg, "[layout.timesource] frequency");
	kbu_os_free(p);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = calloc(1, 65536);
	if (buf)
		fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

/* profiles/NAME.ini, found from the test's working directory (native/ or the top). */
static char *read_profile_file(const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "../profiles/%s.ini", name);
	char *t = read_file(path);
	if (!t) {
		snprintf(path, sizeof(path), "profiles/%s.ini", name);
		t = read_file(path);
	}
	return t;
}

/* The generation (native/gen/profiles.awk): every profiles/NAME.ini is the
 * built-in NAME byte for byte, no built-in comes from anywhere else, and each
 * one parses and calls itself by its file's name. */
TEST(builtins_are_generated_from_the_profile_files)
{
	glob_t g;
	int rc = glob("../profiles/*.ini", 0, NULL, &g);
	if (rc != 0)
		rc = glob("profiles/*.ini", 0, NULL, &g);
	CHECK(rc == 0);
	if (rc != 0)
		return;
	CHECK_EQ_U64(kbu_os_builtin_count(), g.gl_pathc);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const char *base = strrchr(g.gl_pathv[i], '/') + 1;
		char name[64];
		snprintf(name, sizeof(name), "%.*s", (int)(strlen(base) - 4), base);
		size_t k = 0;
		while (k < kbu_os_builtin_count() && strcmp(kbu_os_builtin_name(k), name) != 0)
			k++;
		CHECK(k < kbu_os_builtin_count());
		if (k == kbu_os_builtin_count())
			continue;
		char *file = read_profile_file(name);
		CHECK(file != NULL);
		if (file)
			CHECK_STR(file, kbu_os_builtin_text(k));
		free(file);
		struct kbu_err err = {0};
		struct kbu_os_profile *p = kbu_os_builtin(name, &err);
		CHECK(p != NULL);
		if (p)
			CHECK_STR(kbu_os_name(p), name);
		kbu_os_free(p);
	}
	CHECK(kbu_os_builtin_name(kbu_os_builtin_count()) == NULL);
	CHECK(kbu_os_builtin_text(kbu_os_builtin_count()) == NULL);
	globfree(&g);
}

TEST(parse_errors_say_where)
{
	struct kbu_err err = {0};
	CHECK(kbu_os_parse("[profile]\nname = x\nbroken line\n", "t.ini", &err) == NULL);
	CHECK_CONTAINS(err.msg, "t.ini:3: expected 'key = value'");
	CHECK(kbu_os_parse("name = x\n", "t.ini", &err) == NULL);
	CHECK_CONTAINS(err.msg, "t.ini:1: key 'name' before any [section]");
	CHECK(kbu_os_parse("[profile\nname = x\n", "t.ini", &err) == NULL);
	CHECK_CONTAINS(err.msg, "t.ini:1: section header without ']'");
	CHECK(kbu_os_parse("[profile]\nname = x\nname = y\n", "t.ini", &err) == NULL);
	CHECK_CONTAINS(err.msg, "t.ini:3: [profile] name given twice");
	CHECK(kbu_os_parse("[roles]\nx2apic = a\n", "t.ini", &err) == NULL);
	CHECK_CONTAINS(err.msg, "[profile] name missing");
	char big[2000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	CHECK(kbu_os_parse(big, "t.ini", &err) == NULL);
	CHECK_CONTAINS(err.msg, "t.ini:1: line longer than");

	struct kbu_os_profile *p = kbu_os_parse("[profile]\nname = x\n[layout.t]\n"
						"a = 8\nb = 8 16\nc = -1 4\nd = 0x10 4 d_name\n",
						"t.ini", &err);
	CHECK(p);
	if (!p)
		return;
	struct kbu_os_field f;
	CHECK(kbu_os_field(p, "t", "a", &f, &err) < 0);
	CHECK_CONTAINS(err.msg, "[layout.t] a = '8': expected 'OFFSET SIZE [NAME]'");
	CHECK(kbu_os_field(p, "t", "b", &f, &err) < 0);
	CHECK(kbu_os_field(p, "t", "c", &f, &err) < 0);
	CHECK(kbu_os_field(p, "t", "d", &f, &err) == 0);
	CHECK_EQ_U64(f.offset, 0x10);
	CHECK_STR(f.cname, "d_name");
	CHECK(kbu_os_field(p, "nope", "d", &f, &err) < 0);
	CHECK_CONTAINS(err.msg, "profile x (t.ini) has no [layout.nope] d");
	kbu_os_free(p);

	CHECK(kbu_os_load_file("/nonexistent/p.ini", &err) == NULL);
	CHECK_CONTAINS(err.msg, "cannot open profile /nonexistent/p.ini");
	CHECK(kbu_os_builtin("plan9", &err) == NULL);
	CHECK_CONTAINS(err.msg, "no built-in profile 'plan9'");
}

TEST(role_words)
{
	struct kbu_err err = {0};
	struct kbu_os_profile *p = kbu_os_parse("[profile]\nname = t\n[roles]\n"
						"asserts =  a   bb\tccc \nempty =\n", "t", &err);
	CHECK(p);
	if (!p)
		return;
	char w[8];
	CHECK_STR(kbu_os_role_word(p, "asserts", 0, w, sizeof(w)), "a");
	CHECK_STR(kbu_os_role_word(p, "asserts", 1, w, sizeof(w)), "bb");
	CHECK_STR(kbu_os_role_word(p, "asserts", 2, w, sizeof(w)), "ccc");
	CHECK(kbu_os_role_word(p, "asserts", 3, w, sizeof(w)) == NULL);
	CHECK(kbu_os_role_word(p, "asserts", 2, w, 3) == NULL); /* does not fit: no truncation */
	CHECK(kbu_os_role(p, "empty") == NULL);
	CHECK(kbu_os_role(p, "missing") == NULL);
	CHECK_EQ_U64(kbu_os_role_num(p, "missing", 7), 7);
	kbu_os_free(p);
}

/* Symbol sets as nm -n prints them. */

/* FreeBSD 14.2 FIRECRACKER (names and types from its kernel.syms): no
 * kassert_panic, a LOCAL start_kernel in the PVH entry code, static
 * start_info and timecounters. */
static const char freebsd_syms[] =
	"ffffffff80539410 T mi_startup\n"
	"ffffffff805b5260 T panic\n"
	"ffffffff805b5360 T vpanic\n"
	"ffffffff805c95d0 T tc_init\n"
	"ffffffff806078f0 T msgbuf_addchar\n"
	"ffffffff809000ac t start_kernel\n"
	"ffffffff80900c30 T hammer_time\n"
	"ffffffff80e48d90 D timecounter\n"
	"ffffffff80e49068 d timecounters\n"
	"ffffffff80f4d9f0 B panicstr\n"
	"ffffffff80f6bfd8 B msgbufp\n"
	"ffffffff80f7c188 B mp_ncpus\n"
	"ffffffff81077bd8 B x2apic_mode\n"
	"ffffffff81078500 b start_info\n";

/* NetBSD/amd64, names from NetBSD's sources: kern_assert
 * (sys/lib/libkern/kern_assert.c), panic/vpanic/panicstr (sys/kern/subr_prf.c),
 * msgbufp (sys/kern/subr_log.c), timecounter/timecounters/tc_init
 * (sys/kern/kern_tc.c), x2apic_mode (sys/arch/x86/x86/lapic.c),
 * hvm_start_paddr (sys/arch/xen/xen/hypervisor.c), ncpu (sys/kern/subr_cpu.c),
 * idle_loop (sys/kern/kern_idle.c), uvm_init (sys/uvm/uvm_init.c),
 * start_pvh (sys/arch/amd64/amd64/locore.S). */
static const char netbsd_syms[] =
	"ffffffff8020b440 T start_pvh\n"
	"ffffffff80210000 T kern_assert\n"
	"ffffffff80220000 T panic\n"
	"ffffffff80220100 T vpanic\n"
	"ffffffff80230000 T tc_init\n"
	"ffffffff80240000 T idle_loop\n"
	"ffffffff80250000 T uvm_init\n"
	"ffffffff80a00000 B timecounter\n"
	"ffffffff80a00008 b timecounters\n"
	"ffffffff80a00010 B msgbufp\n"
	"ffffffff80a00018 B panicstr\n"
	"ffffffff80a00020 B ncpu\n"
	"ffffffff80a00028 B x2apic_mode\n"
	"ffffffff80a00030 B hvm_start_paddr\n";

/* Linux 6.1 (Debian's System.map): the names the linux profile plays roles with. */
static const char linux_syms[] =
	"ffffffff81000000 T startup_64\n"
	"ffffffff81001000 T do_one_initcall\n"
	"ffffffff81002000 T panic\n"
	"ffffffff81003000 T __warn\n"
	"ffffffff81004000 T __clocksource_register_scale\n"
	"ffffffff82000000 D linux_banner\n"
	"ffffffff82001000 D init_task\n"
	"ffffffff82002000 d clocksource_list\n"
	"ffffffff82003000 b curr_clocksource\n"
	"ffffffff82004000 d prb\n"
	"ffffffff82005000 D pvh_start_info\n"
	"ffffffff82006000 D __num_online_cpus\n"
	"ffffffff82007000 B x2apic_mode\n"
	"ffffffff83000000 T start_kernel\n";

static struct kbu_os_profile *identify(const char *map, const struct kbu_elf *elf,
				       struct kbu_os_ident *id, struct kbu_err *err)
{
	struct kbu_symtab *st = map ? symtab_of(map) : NULL;
	struct kbu_os_evidence ev = {st, elf};
	struct kbu_os_profile *p = kbu_os_identify(&ev, id, err);
	kbu_symtab_free(st);
	return p;
}

static const struct kbu_os_candidate *cand(const struct kbu_os_ident *id, const char *name)
{
	for (size_t i = 0; i < id->ncand; i++)
		if (strcmp(id->cand[i].name, name) == 0)
			return &id->cand[i];
	return NULL;
}

static void check_identify(const char *map, const char *want)
{
	struct kbu_err err = {0};
	struct kbu_os_ident id;
	struct kbu_os_profile *p = identify(map, NULL, &id, &err);
	CHECK(p);
	if (p)
		CHECK_STR(kbu_os_name(p), want);
	kbu_os_free(p);
}

TEST(identifies_os_from_roles_not_one_symbol)
{
	/* FreeBSD's local start_kernel does not make it Linux. */
	check_identify(freebsd_syms, "freebsd");
	check_identify(netbsd_syms, "netbsd");
	check_identify(linux_syms, "linux");

	struct kbu_err err = {0};
	struct kbu_os_ident id;
	struct kbu_os_profile *p = identify(freebsd_syms, NULL, &id, &err);
	const struct kbu_os_candidate *f = cand(&id, "freebsd"), *n = cand(&id, "netbsd"),
				      *l = cand(&id, "linux");
	CHECK(f && n && l);
	if (f && n && l) {
		CHECK_EQ_U64(f->roles_resolved, f->roles_named);
		CHECK_EQ_U64(f->markers_found, 3);
		/* NetBSD shares most names; its start info and CPU count are missing. */
		CHECK(n->roles_resolved < n->roles_named);
		CHECK_CONTAINS(n->missing, "start_info");
		CHECK_CONTAINS(n->missing, "ncpus");
		/* Linux: start_kernel is no role, only x2apic_mode and panic resolve. */
		CHECK_EQ_U64(l->roles_resolved, 2);
		CHECK(!l->fits);
		CHECK_STR(id.cand[id.chosen].name, "freebsd");
		CHECK_CONTAINS(id.how, "9 of its 9 roles resolve");
		CHECK_EQ_U64(id.osabi, (uint64_t)-1); /* a symbol map has no ELF */
	}
	kbu_os_free(p);
}

TEST(identify_says_what_it_checked)
{
	struct kbu_err err = {0};
	struct kbu_os_ident id;
	/* Fits none: the error lists every profile's score. */
	CHECK(identify("ffffffff80200000 T main\nffffffff80200100 T panic\n", NULL, &id, &err) ==
	      NULL);
	CHECK_EQ_U64(err.code, KBU_ENOTFOUND);
	CHECK_CONTAINS(err.msg, "fits no known OS profile");
	CHECK_CONTAINS(err.msg, "freebsd 1/9 roles");
	CHECK_CONTAINS(err.msg, "linux 1/8 roles");
	/* Two fit equally and nothing tells them apart: ask for --os. */
	kbu_err_clear(&err);
	CHECK(identify("ffffffff80200000 T panic\nffffffff80200100 T vpanic\n"
		       "ffffffff80200200 T tc_init\nffffffff80300000 B timecounter\n"
		       "ffffffff80300008 B timecounters\nffffffff80300010 B msgbufp\n"
		       "ffffffff80300018 B x2apic_mode\nffffffff80300020 B panicstr\n",
		       NULL, &id, &err) == NULL);
	CHECK_EQ_U64(err.code, KBU_EINVAL);
	CHECK_CONTAINS(err.msg, "give --os");
	CHECK_CONTAINS(err.msg, "netbsd");
	CHECK_CONTAINS(err.msg, "freebsd");
	/* No symbols and no ELF. */
	kbu_err_clear(&err);
	CHECK(identify(NULL, NULL, &id, &err) == NULL);
	CHECK_CONTAINS(err.msg, "without symbols");
	/* An empty table (a stripped kernel, no map) says so, not "no known OS". */
	struct kbu_symtab *empty = kbu_symtab_new();
	kbu_symtab_finish(empty, &err);
	kbu_err_clear(&err);
	struct kbu_os_evidence ev = {empty, NULL};
	CHECK(kbu_os_identify(&ev, &id, &err) == NULL);
	CHECK_CONTAINS(err.msg, "without symbols");
	kbu_symtab_free(empty);
}

/* A small kernel ELF with the given OS ABI, notes and symbols. */
static struct kbu_elf *elf_with(uint8_t osabi, const struct fx_note *notes, int nnotes,
				const struct fx_sym *syms, int nsyms, const char *name)
{
	static const uint8_t code[16];
	struct fx_spec s = {.vaddr = 0xffffffff80200000ull, .paddr = 0x200000,
			    .entry = 0xffffffff80200000ull, .notes = notes, .nnotes = nnotes,
			    .syms = syms, .nsyms = nsyms, .osabi = osabi};
	(void)code;
	size_t len;
	uint8_t *img = fx_build(&s, &len);
	char path[256];
	fx_write(name, img, len, path, sizeof(path));
	free(img);
	struct kbu_err err = {0};
	struct kbu_elf *e = kbu_elf_open(path, &err);
	CHECK(e);
	return e;
}

TEST(identity_from_the_elf)
{
	struct kbu_err err = {0};
	struct kbu_os_ident id;
	/* FreeBSD's OS ABI and GUEST_OS note decide, even with roles Linux also has. */
	static const struct fx_note fbsd_notes[] = {{"Xen", 6, "FreeBSD", 8}};
	struct kbu_elf *e = elf_with(ELFOSABI_FREEBSD, fbsd_notes, 1, NULL, 0, "os-fbsd.elf");
	struct kbu_os_profile *p = identify(freebsd_syms, e, &id, &err);
	CHECK(p && strcmp(kbu_os_name(p), "freebsd") == 0);
	CHECK_EQ_U64(id.osabi, ELFOSABI_FREEBSD);
	CHECK_STR(id.guest_os, "FreeBSD");
	const struct kbu_os_candidate *f = cand(&id, "freebsd");
	CHECK(f && f->named_by == (KBU_OS_BY_OSABI | KBU_OS_BY_GUEST_OS));
	CHECK_CONTAINS(id.how, "its ELF OS ABI, its Xen GUEST_OS note; 9 of its 9 roles resolve");
	kbu_os_free(p);
	/* A stripped ELF: identity alone, and it says the roles were not checked. */
	p = identify(NULL, e, &id, &err);
	CHECK(p && strcmp(kbu_os_name(p), "freebsd") == 0);
	CHECK_CONTAINS(id.how, "roles not checked");
	kbu_os_free(p);
	kbu_elf_close(e);

	/* Linux: SYSV OS ABI, GUEST_OS "linux" and a "Linux" note owner. */
	static const struct fx_note linux_notes[] = {{"Xen", 6, "linux", 6},
						     {"Linux", 0x100, "6.1.0\0\0", 8}};
	e = elf_with(0, linux_notes, 2, NULL, 0, "os-linux.elf");
	p = identify(linux_syms, e, &id, &err);
	CHECK(p && strcmp(kbu_os_name(p), "linux") == 0);
	CHECK_STR(id.note_owners, "Linux");
	f = cand(&id, "linux");
	CHECK(f && f->named_by == (KBU_OS_BY_GUEST_OS | KBU_OS_BY_NOTE));
	kbu_os_free(p);
	/* The ELF names an OS whose roles mostly do not resolve: roles decide. */
	kbu_err_clear(&err);
	p = identify(freebsd_syms, e, &id, &err);
	CHECK(p && strcmp(kbu_os_name(p), "freebsd") == 0);
	CHECK_CONTAINS(id.how, "the OS the ELF names fits too few roles");
	kbu_os_free(p);
	kbu_elf_close(e);

	/* Equal roles, but the GUEST_OS note tells NetBSD from FreeBSD. */
	static const struct fx_note nb_notes[] = {{"Xen", 6, "NetBSD", 7}};
	e = elf_with(0, nb_notes, 1, NULL, 0, "os-netbsd.elf");
	p = identify("ffffffff80200000 T panic\nffffffff80200100 T vpanic\n"
		     "ffffffff80200200 T tc_init\nffffffff80300000 B timecounter\n"
		     "ffffffff80300008 B timecounters\nffffffff80300010 B msgbufp\n"
		     "ffffffff80300018 B x2apic_mode\nffffffff80300020 B panicstr\n", e, &id, &err);
	CHECK(p && strcmp(kbu_os_name(p), "netbsd") == 0);
	kbu_os_free(p);
	kbu_elf_close(e);
	fx_cleanup();
}

TEST(select_prefers_file_then_name_then_identification)
{
	struct kbu_err err = {0};
	char path[] = "/tmp/kbu-test-prof-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	const char *text = "[profile]\nname = myos\nmarkers = my_start\n[roles]\n"
			   "x2apic = my_x2apic\n[layout.timesource]\nname = 16 8 clk_name\n";
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	struct kbu_os_profile *p = kbu_os_select("linux", path, NULL, &err);
	CHECK(p);
	if (p) {
		CHECK_STR(kbu_os_name(p), "myos");
		CHECK_STR(kbu_os_origin(p), path);
		CHECK_STR(kbu_os_role(p, "x2apic"), "my_x2apic");
		check_field(p, "timesource", "name", 16, 8, "clk_name");
		struct kbu_symtab *st = symtab_of("ffffffff80200000 T my_start\n"
						  "ffffffff80300000 B my_x2apic\n");
		struct kbu_os_evidence ev = {st, NULL};
		struct kbu_os_candidate c;
		kbu_os_score(p, &ev, &c);
		CHECK_EQ_U64(c.roles_resolved, 1);
		CHECK_EQ_U64(c.roles_named, 1);
		CHECK_EQ_U64(c.markers_found, 1);
		kbu_symtab_free(st);
	}
	kbu_os_free(p);
	unlink(path);

	p = kbu_os_select("netbsd", NULL, NULL, &err);
	CHECK(p && strcmp(kbu_os_name(p), "netbsd") == 0);
	kbu_os_free(p);
	struct kbu_symtab *st = symtab_of(linux_syms);
	struct kbu_os_evidence ev = {st, NULL};
	p = kbu_os_select("auto", NULL, &ev, &err);
	CHECK(p && strcmp(kbu_os_name(p), "linux") == 0);
	kbu_os_free(p);
	kbu_symtab_free(st);
}

int main(void)
{
	RUN(freebsd_layouts_match_source);
	RUN(netbsd_layouts_match_source);
	RUN(linux_layouts_match_source);
	RUN(builtins_are_generated_from_the_profile_files);
	RUN(parse_errors_say_where);
	RUN(role_words);
	RUN(identifies_os_from_roles_not_one_symbol);
	RUN(identify_says_what_it_checked);
	RUN(identity_from_the_elf);
	RUN(select_prefers_file_then_name_then_identification);
	CHECK_DONE("test_os");
}
