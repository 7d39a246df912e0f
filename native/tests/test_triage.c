/* kbu triage: the panic line of a log, the log's tail, and the kernel's
 * variables read through an OS profile from a guest image built here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "kbu/mem.h"
#include "kbu/os.h"
#include "kbu/symbols.h"
#include "kbu/triage.h"

/* ---- the log helpers ---- */

TEST(panic_linux_record_not_trailer)
{
	const char *log =
		"[    0.000000] Linux version 6.1\n"
		"[    3.404127] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n"
		"[    3.405114] Call Trace:\n"
		"[    3.407827] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) ]---\n";
	char out[128];
	CHECK(kbu_triage_panic_in_log(log, out, sizeof out) == 1);
	CHECK_STR(out, "VFS: Unable to mount root fs on unknown-block(0,0)");
}

TEST(panic_bsd_last_line_wins)
{
	const char *log = "panic: first\nsomething\r\npanic: TSC not initialized \r\ncpuid = 0\n";
	char out[128];
	CHECK(kbu_triage_panic_in_log(log, out, sizeof out) == 1);
	CHECK_STR(out, "TSC not initialized");
}

TEST(panic_linux_beats_bsd_style_line)
{
	/* A Linux log quoting "panic: " later must not hide the real panic record. */
	const char *log = "Kernel panic - not syncing: Attempted to kill init!\npanic: quoted\n";
	char out[128];
	CHECK(kbu_triage_panic_in_log(log, out, sizeof out) == 1);
	CHECK_STR(out, "Attempted to kill init!");
}

TEST(panic_absent_and_truncated)
{
	char out[8];
	CHECK(kbu_triage_panic_in_log("all fine\nno panic here: really\n", out, sizeof out) == 0);
	CHECK(kbu_triage_panic_in_log("", out, sizeof out) == 0);
	CHECK(kbu_triage_panic_in_log(NULL, out, sizeof out) == 0);
	/* a message longer than the buffer is cut, never overrun */
	CHECK(kbu_triage_panic_in_log("panic: 0123456789abcdef", out, sizeof out) == 1);
	CHECK_STR(out, "0123456");
	/* no newline at the end, mark at the very end */
	CHECK(kbu_triage_panic_in_log("x\npanic: ", out, sizeof out) == 1);
	CHECK_STR(out, "");
}

TEST(tail_lines)
{
	const char *t = "a\nb\nc\nd\n";
	CHECK_STR(kbu_triage_tail(t, 2), "c\nd\n");
	CHECK_STR(kbu_triage_tail(t, 4), t);
	CHECK_STR(kbu_triage_tail(t, 100), t);
	CHECK_STR(kbu_triage_tail(t, 0), "");
	CHECK_STR(kbu_triage_tail("a\nb", 1), "b");
	CHECK_STR(kbu_triage_tail("", 3), "");
	CHECK_STR(kbu_triage_tail(NULL, 3), "");
}

TEST(trap_report_fields)
{
	const char *log =
		"Fatal trap 12: page fault while in kernel mode\n"
		"instruction pointer     = 0x20:0xffffffff81000000\n"
		"uart0: <16550 or compatible>\n"
		"Fatal trap 14: page fault while in kernel mode\r\n"
		"fault virtual address   = 0x40000020\n"
		"fault code              = supervisor read data, page not present\n"
		"instruction pointer     = 0x8:0xffffffff80201216\n"
		"panic: page fault\n";
	struct kbu_triage_trap t;
	CHECK(kbu_triage_trap_in_log(log, &t) == 1);
	/* the last report, with its own fields only */
	CHECK_STR(t.title, "Fatal trap 14: page fault while in kernel mode");
	CHECK(t.have_ip && t.have_fault_addr);
	CHECK_EQ_U64(t.ip, 0xffffffff80201216ull);
	CHECK_EQ_U64(t.fault_addr, 0x40000020);

	/* a report cut short keeps what it had; garbage values are not numbers */
	CHECK(kbu_triage_trap_in_log("Fatal trap 9: general protection fault\n"
				     "instruction pointer = 0x8:zz\n"
				     "fault virtual address = \n", &t) == 1);
	CHECK(!t.have_ip && !t.have_fault_addr);
	CHECK(kbu_triage_trap_in_log("panic: page fault\n", &t) == 0);
	CHECK(kbu_triage_trap_in_log(NULL, &t) == 0);
	/* a value longer than any address is refused, not cut */
	CHECK(kbu_triage_trap_in_log("Fatal trap 1: x\ninstruction pointer = 0x8:0x"
				     "123456789012345678901234567890\n", &t) == 1);
	CHECK(!t.have_ip);
}

/* ---- kernel variables from a guest image ---- */

#define BASE 0xffffffff80200000ull
#define SIZE 0x10000

struct image {
	uint8_t b[SIZE];
};

static int image_read(void *user, int space, uint64_t addr, void *buf, size_t len, char *errbuf,
		      size_t errlen)
{
	struct image *im = user;
	(void)space;
	if (addr < BASE || addr - BASE > SIZE || len > SIZE - (addr - BASE)) {
		snprintf(errbuf, errlen, "Cannot access memory at address 0x%llx",
			 (unsigned long long)addr);
		return -1;
	}
	memcpy(buf, im->b + (addr - BASE), len);
	return 0;
}

static void put64(struct image *im, uint64_t off, uint64_t v) { memcpy(im->b + off, &v, 8); }
static void put32(struct image *im, uint64_t off, uint32_t v) { memcpy(im->b + off, &v, 4); }

static struct kbu_symtab *symbols(const char *text)
{
	char path[] = "/tmp/kbu-test-triage-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	struct kbu_err err = {0};
	struct kbu_symtab *st = kbu_symtab_new();
	CHECK(kbu_symtab_load_map(st, path, &err) == 0);
	CHECK(kbu_symtab_finish(st, &err) == 0);
	unlink(path);
	return st;
}

static const char freebsd_map[] =
	"ffffffff80200100 B x2apic_mode\n"
	"ffffffff80200200 D timecounter\n"
	"ffffffff80200300 B mp_ncpus\n"
	"ffffffff80200400 B panicstr\n"
	"ffffffff80201000 d i8254_timecounter\n"
	"ffffffff80200000 T mi_startup\n";

static void fill_freebsd(struct image *im)
{
	memset(im, 0, sizeof *im);
	put32(im, 0x100, 1);                 /* x2apic_mode = 1 */
	put64(im, 0x200, BASE + 0x1000);     /* timecounter -> i8254_timecounter */
	put64(im, 0x1000 + 24, 1193182);     /* tc_frequency */
	put64(im, 0x1000 + 32, BASE + 0x2000); /* tc_name */
	put32(im, 0x1000 + 40, (uint32_t)-100); /* tc_quality */
	memcpy(im->b + 0x2000, "i8254", 6);
	put32(im, 0x300, 2);                 /* mp_ncpus */
	put64(im, 0x400, BASE + 0x3000);     /* panicstr */
	memcpy(im->b + 0x3000, "TSC not initialized", 20);
}

TEST(kstate_freebsd_profile)
{
	static struct image im;
	fill_freebsd(&im);
	struct kbu_err err = {0};
	struct kbu_mem *m = kbu_mem_open_callback(image_read, NULL, NULL, 1, &im, 4096, &err);
	struct kbu_symtab *st = symbols(freebsd_map);
	struct kbu_os_profile *p = kbu_os_builtin("freebsd", &err);
	CHECK(m && st && p);
	struct kbu_triage_kstate ks;
	kbu_triage_read_kstate(m, NULL, st, p, 0, &ks);
	CHECK_EQ_U64(ks.x2apic.state, KBU_TRIAGE_VAR_OK);
	CHECK_EQ_U64(ks.x2apic.value, 1);
	CHECK_STR(ks.x2apic.symbol, "x2apic_mode");
	CHECK_EQ_U64(ks.timesource.state, KBU_TRIAGE_VAR_OK);
	CHECK_EQ_U64(ks.timesource.value, BASE + 0x1000);
	CHECK_STR(ks.ts_name, "i8254");
	CHECK(ks.ts_have_quality && ks.ts_quality == -100);
	CHECK(ks.ts_have_freq && ks.ts_freq == 1193182);
	CHECK_EQ_U64(ks.ncpus.value, 2);
	CHECK_EQ_U64(ks.panicstr.state, KBU_TRIAGE_VAR_OK);
	CHECK_STR(ks.panicstr_text, "TSC not initialized");

	/* the same kernel relocated by 0x4000: symbols are read at link + slide */
	static struct image moved;
	memset(&moved, 0, sizeof moved);
	memcpy(moved.b + 0x4000, im.b, SIZE - 0x4000);
	put64(&moved, 0x4200, BASE + 0x5000);
	put64(&moved, 0x5000 + 32, BASE + 0x6000);
	put64(&moved, 0x4400, 0);            /* and no panic */
	struct kbu_mem *m2 = kbu_mem_open_callback(image_read, NULL, NULL, 1, &moved, 4096, &err);
	kbu_triage_read_kstate(m2, NULL, st, p, 0x4000, &ks);
	CHECK_EQ_U64(ks.x2apic.addr, BASE + 0x4100);
	CHECK_EQ_U64(ks.x2apic.value, 1);
	CHECK_STR(ks.ts_name, "i8254");
	CHECK_EQ_U64(ks.panicstr.state, KBU_TRIAGE_VAR_OK);
	CHECK_EQ_U64(ks.panicstr.value, 0);
	CHECK_STR(ks.panicstr_text, "");
	kbu_mem_close(m2);

	kbu_os_free(p);
	kbu_symtab_free(st);
	kbu_mem_close(m);
}

TEST(kstate_bad_pointers_say_where)
{
	static struct image im;
	fill_freebsd(&im);
	put64(&im, 0x200, 0x1234000);          /* timecounter points outside memory */
	put64(&im, 0x400, BASE + SIZE + 0x10); /* so does panicstr */
	struct kbu_err err = {0};
	struct kbu_mem *m = kbu_mem_open_callback(image_read, NULL, NULL, 1, &im, 4096, &err);
	struct kbu_symtab *st = symbols(freebsd_map);
	struct kbu_os_profile *p = kbu_os_builtin("freebsd", &err);
	struct kbu_triage_kstate ks;
	kbu_triage_read_kstate(m, NULL, st, p, 0, &ks);
	CHECK_EQ_U64(ks.timesource.state, KBU_TRIAGE_VAR_UNREADABLE);
	CHECK_CONTAINS(ks.timesource.why, "0x1234000");
	CHECK_STR(ks.ts_name, "");
	CHECK_EQ_U64(ks.panicstr.state, KBU_TRIAGE_VAR_UNREADABLE);
	CHECK_CONTAINS(ks.panicstr.why, "points nowhere readable");
	/* the rest is still read */
	CHECK_EQ_U64(ks.x2apic.value, 1);
	CHECK_EQ_U64(ks.ncpus.value, 2);

	/* a NULL time source is "none chosen yet", not an error */
	put64(&im, 0x200, 0);
	kbu_mem_flush(m); /* the guest "ran": drop the cached page */
	kbu_triage_read_kstate(m, NULL, st, p, 0, &ks);
	CHECK_EQ_U64(ks.timesource.state, KBU_TRIAGE_VAR_OK);
	CHECK_EQ_U64(ks.timesource.value, 0);
	CHECK_CONTAINS(ks.timesource.why, "NULL");
	kbu_os_free(p);
	kbu_symtab_free(st);
	kbu_mem_close(m);
}

TEST(kstate_netbsd_bool_and_missing_symbols)
{
	static struct image im;
	memset(&im, 0, sizeof im);
	/* NetBSD's x2apic_mode is a bool: only its one byte counts */
	im.b[0x100] = 1;
	im.b[0x101] = 0xff;
	struct kbu_err err = {0};
	struct kbu_mem *m = kbu_mem_open_callback(image_read, NULL, NULL, 1, &im, 4096, &err);
	struct kbu_symtab *st = symbols("ffffffff80200100 B x2apic_mode\n"
					"ffffffff80200000 T kern_assert\n");
	struct kbu_os_profile *p = kbu_os_builtin("netbsd", &err);
	struct kbu_triage_kstate ks;
	kbu_triage_read_kstate(m, NULL, st, p, 0, &ks);
	CHECK_EQ_U64(ks.x2apic.state, KBU_TRIAGE_VAR_OK);
	CHECK_EQ_U64(ks.x2apic.value, 1);
	CHECK_EQ_U64(ks.timesource.state, KBU_TRIAGE_VAR_MISSING);
	CHECK_CONTAINS(ks.timesource.why, "no symbol 'timecounter'");
	CHECK_EQ_U64(ks.ncpus.state, KBU_TRIAGE_VAR_MISSING);
	CHECK_EQ_U64(ks.panicstr.state, KBU_TRIAGE_VAR_MISSING);

	/* no profile, no symbols: nothing read, nothing crashes */
	kbu_triage_read_kstate(m, NULL, NULL, NULL, 0, &ks);
	CHECK_EQ_U64(ks.x2apic.state, KBU_TRIAGE_VAR_NONE);
	CHECK_EQ_U64(ks.panicstr.state, KBU_TRIAGE_VAR_NONE);
	kbu_os_free(p);
	kbu_symtab_free(st);
	kbu_mem_close(m);
}

int main(void)
{
	RUN(panic_linux_record_not_trailer);
	RUN(panic_bsd_last_line_wins);
	RUN(panic_linux_beats_bsd_style_line);
	RUN(panic_absent_and_truncated);
	RUN(tail_lines);
	RUN(trap_report_fields);
	RUN(kstate_freebsd_profile);
	RUN(kstate_bad_pointers_say_where);
	RUN(kstate_netbsd_bool_and_missing_symbols);
	CHECK_DONE("test_triage");
}
