/* kbu_printf_format: a kernel's printf formatted from guest memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "kbu/command.h"
#include "kbu/mem.h"
#include "kbu/report.h"
#include "kbu/printf.h"
#include "kbu/reloc.h"
#include "kbu/symbols.h"

/* A guest: 16 KiB of kernel memory at KBASE (virtual) = PBASE (physical).
 * While `paging_off`, the virtual addresses are not mapped (early boot). */
#define KBASE 0xffffffff80200000ull
#define PBASE 0x200000ull
#define SIZE 0x4000

struct guest {
	uint8_t mem[SIZE];
	int paging_off;
	int reads;
};

static int guest_read(void *user, int space, uint64_t addr, void *buf, size_t len, char *errbuf,
		      size_t errlen)
{
	struct guest *g = user;
	g->reads++;
	uint64_t base = space == KBU_VIRT ? KBASE : PBASE;
	if ((space == KBU_VIRT && g->paging_off) || addr < base || addr - base > SIZE ||
	    len > SIZE - (addr - base)) {
		snprintf(errbuf, errlen, "0x%llx not mapped", (unsigned long long)addr);
		return -1;
	}
	memcpy(buf, g->mem + (addr - base), len);
	return 0;
}

static struct kbu_mem *open_guest(struct guest *g)
{
	struct kbu_err err;
	struct kbu_mem *m = kbu_mem_open_callback(guest_read, NULL, NULL, 1, g, 4096, &err);
	CHECK(m != NULL);
	return m;
}

/* Places a string at offset off and returns its kernel virtual address. */
static uint64_t put_str(struct guest *g, size_t off, const char *s, size_t n)
{
	memcpy(g->mem + off, s, n);
	return KBASE + off;
}

static void put_u64(struct guest *g, size_t off, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		g->mem[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static void put_u32(struct guest *g, size_t off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		g->mem[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static struct kbu_printf_result *fmt_regs(struct guest *g, const char *fmt, const uint64_t *regs,
					  size_t n, uint64_t stack)
{
	static struct kbu_printf_result res;
	struct kbu_mem *m = open_guest(g);
	struct kbu_printf_env env = {.mem = m};
	struct kbu_printf_args a = {.kind = KBU_PRINTF_REGS, .nregs = n, .stack = stack,
				    .have_stack = stack != 0};
	memcpy(a.regs, regs, n * sizeof *regs);
	struct kbu_err err;
	CHECK(kbu_printf_format(&env, fmt, &a, &res, &err) == 0);
	kbu_mem_close(m);
	return &res;
}

TEST(mptable_panic_from_registers)
{
	struct guest *g = calloc(1, sizeof *g);
	uint64_t fn = put_str(g, 0x100, "mptable_walk_table", 19);
	uint64_t regs[] = {fn, 68};
	struct kbu_printf_result *r =
		fmt_regs(g, "%s: Unknown MP Config Entry %d\n", regs, 2, 0);
	CHECK_STR(r->message, "mptable_walk_table: Unknown MP Config Entry 68\n");
	CHECK_EQ_U64(r->conversions, 2);
	CHECK_EQ_U64(r->unreadable, 0);
	free(g);
}

TEST(integers_widths_and_lengths)
{
	struct guest *g = calloc(1, sizeof *g);
	uint64_t regs[] = {0xffffffffull, 0xffffffffffffffffull, 0x1234, 5, 0, 0x1ab};
	struct kbu_printf_result *r =
		fmt_regs(g, "%d %lld %08x|%*d|%hhx%%", regs, 6, 0);
	CHECK_STR(r->message, "-1 -1 00001234|    0|ab%");
	/* A negative * width left-justifies. */
	uint64_t regs2[] = {(uint64_t)-4, 7, 3, 0, 0x41};
	r = fmt_regs(g, "[%*d][%.*s][%c]", regs2, 5, 0);
	CHECK_STR(r->message, "[7   ][(nu][A]");
	free(g);
}

TEST(stack_arguments_after_the_registers)
{
	struct guest *g = calloc(1, sizeof *g);
	put_u64(g, 0x800, 6);
	put_u64(g, 0x808, 7);
	uint64_t regs[] = {1, 2, 3, 4, 5};
	struct kbu_printf_result *r =
		fmt_regs(g, "%d %d %d %d %d %d %d", regs, 5, KBASE + 0x800);
	CHECK_STR(r->message, "1 2 3 4 5 6 7");
	/* Past what the stack holds: flagged, not invented. */
	r = fmt_regs(g, "%d %d", regs, 0, KBASE + SIZE - 8);
	CHECK_CONTAINS(r->message, "<unreadable argument>");
	CHECK_EQ_U64(r->unreadable, 1);
	free(g);
}

TEST(va_list_registers_then_overflow)
{
	struct guest *g = calloc(1, sizeof *g);
	/* va_list at 0x900: gp_offset 40 (one register left), overflow at 0xa00, save at 0xb00 */
	put_u32(g, 0x900, 40);
	put_u32(g, 0x904, 48);
	put_u64(g, 0x908, KBASE + 0xa00);
	put_u64(g, 0x910, KBASE + 0xb00);
	put_u64(g, 0xb00 + 40, 1193182);
	uint64_t name = put_str(g, 0x300, "i8254", 6);
	put_u64(g, 0xa00, name);
	put_u64(g, 0xa08, (uint64_t)-100);
	struct kbu_mem *m = open_guest(g);
	struct kbu_printf_env env = {.mem = m};
	struct kbu_printf_args a = {.kind = KBU_PRINTF_VALIST, .va_list = KBASE + 0x900};
	struct kbu_printf_result res;
	struct kbu_err err;
	CHECK(kbu_printf_format(&env, "%u Hz \"%s\" quality %d", &a, &res, &err) == 0);
	CHECK_STR(res.message, "1193182 Hz \"i8254\" quality -100");
	/* The guest's va_list is read, never advanced. */
	CHECK_EQ_U64(g->mem[0x900], 40);
	kbu_mem_close(m);
	free(g);
}

TEST(freebsd_bits_and_dump)
{
	struct guest *g = calloc(1, sizeof *g);
	uint64_t bits = put_str(g, 0x400, "\020\001PE\002MP\040PG", 10);
	uint64_t regs[] = {0x80000001, bits};
	struct kbu_printf_result *r = fmt_regs(g, "cr0=%b", regs, 2, 0);
	CHECK_STR(r->message, "cr0=80000001<PE,PG>");
	uint64_t zero[] = {0, bits};
	r = fmt_regs(g, "%b", zero, 2, 0);
	CHECK_STR(r->message, "0");
	uint64_t mac = put_str(g, 0x500, "\x52\x54\x00\x12\x34\x56", 6);
	uint64_t sep = put_str(g, 0x510, ":", 2);
	uint64_t dregs[] = {mac, sep};
	r = fmt_regs(g, "ether %6D", dregs, 2, 0);
	CHECK_STR(r->message, "ether 52:54:00:12:34:56");
	free(g);
}

TEST(paging_off_reads_the_physical_alias)
{
	struct guest *g = calloc(1, sizeof *g);
	g->paging_off = 1;
	uint64_t s = put_str(g, 0x100, "TSC not initialized", 20);
	struct kbu_reloc_map map = {.nseg = 1};
	map.seg[0].vaddr = KBASE;
	map.seg[0].paddr = PBASE;
	map.seg[0].memsz = map.seg[0].filesz = SIZE;
	struct kbu_mem *m = open_guest(g);
	struct kbu_printf_env env = {.mem = m, .map = &map};
	struct kbu_printf_args a = {.kind = KBU_PRINTF_REGS, .nregs = 1, .regs = {s}};
	struct kbu_printf_result res;
	struct kbu_err err;
	CHECK(kbu_printf_format(&env, "panic: %s", &a, &res, &err) == 0);
	CHECK_STR(res.message, "panic: TSC not initialized");
	/* Without the map the string cannot be found: said so, not invented. */
	env.map = NULL;
	a.nregs = 1;
	CHECK(kbu_printf_format(&env, "panic: %s", &a, &res, &err) == 0);
	CHECK_CONTAINS(res.message, "<unreadable 0xffffffff80200100>");
	CHECK_EQ_U64(res.unreadable, 1);
	char buf[64];
	CHECK(kbu_printf_read_string(&env, s, buf, sizeof buf, &err) == -1);
	CHECK(err.code == KBU_EFAULT);
	kbu_mem_close(m);
	free(g);
}

TEST(guest_bytes_are_escaped_and_bounded)
{
	struct guest *g = calloc(1, sizeof *g);
	uint64_t s = put_str(g, 0x100, "a\x1b[31mred\xff", 11);
	uint64_t regs[] = {s, 0x07};
	struct kbu_printf_result *r = fmt_regs(g, "%s%c", regs, 2, 0);
	CHECK_STR(r->message, "a\\x1b[31mred\\xff\\x07");
	/* A string with no NUL up to the end of memory: what was readable. */
	memset(g->mem + SIZE - 64, 'x', 64);
	uint64_t regs2[] = {KBASE + SIZE - 64};
	r = fmt_regs(g, "%s", regs2, 1, 0);
	CHECK(strlen(r->message) == 64);
	/* A huge output is cut with "...". */
	uint64_t regs3[] = {0};
	r = fmt_regs(g, "%4000d%4000d", regs3, 1, 0);
	CHECK(r->truncated == 0 || r->truncated == 1);
	CHECK(strlen(r->message) < sizeof r->message);
	free(g);
}

TEST(malformed_formats)
{
	struct guest *g = calloc(1, sizeof *g);
	uint64_t regs[] = {1, 2, 3};
	struct kbu_printf_result *r = fmt_regs(g, "100%", regs, 0, 0);
	CHECK_STR(r->message, "100%");
	r = fmt_regs(g, "%y and %d", regs, 1, 0);
	CHECK_STR(r->message, "%y and 1");
	r = fmt_regs(g, "%99999999999d|", regs, 1, 0);
	CHECK(strlen(r->message) <= 520);
	/* More conversions than arguments, no stack: each one flagged. */
	r = fmt_regs(g, "%d %d %s", regs, 1, 0);
	CHECK_STR(r->message, "1 <unreadable argument> <unreadable argument>");
	CHECK_EQ_U64(r->unreadable, 2);
	struct kbu_err err;
	struct kbu_printf_result res;
	CHECK(kbu_printf_format(NULL, "x", NULL, &res, &err) == -1);
	free(g);
}

TEST(linux_pointer_extensions)
{
	char path[] = "/tmp/kbu-printf-map-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fprintf(f, "ffffffff80200000 T mount_block_root\nffffffff80200100 T prepare_namespace\n");
	fclose(f);
	struct kbu_symtab *st = kbu_symtab_new();
	struct kbu_err err;
	CHECK(kbu_symtab_load_map(st, path, &err) == 0);
	CHECK(kbu_symtab_finish(st, &err) == 0);
	unlink(path);
	struct guest *g = calloc(1, sizeof *g);
	/* struct va_format at 0x600: fmt -> "x=%d", va -> va_list at 0x700 */
	uint64_t inner = put_str(g, 0x680, "x=%d", 5);
	put_u64(g, 0x600, inner);
	put_u64(g, 0x608, KBASE + 0x700);
	put_u32(g, 0x700, 8);
	put_u64(g, 0x710, KBASE + 0x780);
	put_u64(g, 0x780 + 8, 42);
	struct kbu_mem *m = open_guest(g);
	struct kbu_printf_env env = {.mem = m, .syms = st, .slide = 0x1000000};
	struct kbu_printf_args a = {.kind = KBU_PRINTF_REGS, .nregs = 3,
				    .regs = {KBASE + 0x1000000 + 0x10, KBASE + 0x600, 0x1234}};
	struct kbu_printf_result res;
	CHECK(kbu_printf_format(&env, "at %pS: %pV %p", &a, &res, &err) == 0);
	CHECK_STR(res.message, "at mount_block_root+0x10: x=42 0x1234");
	kbu_mem_close(m);
	kbu_symtab_free(st);
	free(g);
}

TEST(command_json_holds_values)
{
	/* kbu printf: the message and how many arguments it used; an argument that
	 * cannot be read is a finding whose fields count them. */
	struct guest *g = calloc(1, sizeof *g);
	uint64_t fmt = put_str(g, 0x100, "%s at %d: %s", 13);
	uint64_t who = put_str(g, 0x200, "lapic_init", 11);
	struct kbu_ctx *ctx = kbu_ctx_new();
	kbu_ctx_set_mem(ctx, open_guest(g));
	char fa[32], args[80];
	snprintf(fa, sizeof fa, "0x%llx", (unsigned long long)fmt);
	snprintf(args, sizeof args, "0x%llx,42,0x10", (unsigned long long)who);
	char *argv[] = {"printf", "--fmt", fa, "--args", args, NULL};
	char *out = NULL;
	struct kbu_err err;
	CHECK(kbu_run(ctx, 5, argv, 1, &out, &err) == 0);
	CHECK_CONTAINS(out, "\"format_addr\": 18446744071564165376,");
	CHECK_CONTAINS(out, "\"format\": \"%s at %d: %s\", \"message\": \"lapic_init at 42: "
		       "<unreadable 0x10>\", \"arguments\": 3, \"truncated\": false");
	CHECK_CONTAINS(out, "\"code\": \"printf.unreadable\"");
	CHECK_CONTAINS(out, "\"fields\": {\"unreadable\": 1}");
	kbu_free(out);
	kbu_ctx_free(ctx);
	free(g);
}

int main(void)
{
	RUN(mptable_panic_from_registers);
	RUN(integers_widths_and_lengths);
	RUN(stack_arguments_after_the_registers);
	RUN(va_list_registers_then_overflow);
	RUN(freebsd_bits_and_dump);
	RUN(paging_off_reads_the_physical_alias);
	RUN(guest_bytes_are_escaped_and_bounded);
	RUN(malformed_formats);
	RUN(linux_pointer_extensions);
	RUN(command_json_holds_values);
	CHECK_DONE("test_printf");
}
