/* kbu x: hexdump guest memory, virtual (through the page tables) or physical. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/command.h"
#include "kbu/mem.h"
#include "kbu/report.h"
#include "kbu/util.h"

#define X_DEFAULT_LEN 64u
#define X_MAX_LEN (1u << 20)

static int run_x(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		 struct kbu_err *err)
{
	/* -p only: --phys is the global option that names a raw image. */
	static const struct kbu_opt opts[] = {{NULL, 'p', 0}, {"cr3", 0, 1}, {NULL, 0, 0}};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	const char *pos[2] = {NULL, NULL};
	int npos = 0, phys = 0, i;
	const char *cr3_s = NULL;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG) {
			if (npos == 2)
				return kbu_err_set(err, KBU_EINVAL, "unexpected argument '%s'", g.arg);
			pos[npos++] = g.arg;
		} else if (i == 0) {
			phys = 1;
		} else {
			cr3_s = g.arg;
		}
	}
	if (!npos)
		return kbu_err_set(err, KBU_EINVAL, "usage: kbu x [-p] ADDR [LEN]");
	uint64_t addr, len = X_DEFAULT_LEN;
	if (kbu_parse_addr(ctx, pos[0], &addr, err) < 0)
		return -1;
	if (npos == 2 && kbu_parse_u64(pos[1], &len, err) < 0)
		return kbu_err_prefix(err, "length");
	if (len == 0 || len > X_MAX_LEN)
		return kbu_err_set(err, KBU_EINVAL, "length %" PRIu64 ": give 1 to %u bytes", len, X_MAX_LEN);
	if (addr + len - 1 < addr)
		return kbu_err_set(err, KBU_EINVAL, "0x%" PRIx64 " + %" PRIu64 " wraps past the top of memory",
				   addr, len);
	if (cr3_s) {
		uint64_t cr3;
		if (kbu_parse_u64(cr3_s, &cr3, err) < 0)
			return kbu_err_prefix(err, "--cr3");
		struct kbu_regs regs;
		struct kbu_err e2 = {0};
		enum kbu_paging_mode mode = KBU_PG_4LEVEL;
		if (kbu_mem_regs(ctx->mem, 0, &regs, &e2) == 0 && kbu_regs_paging_mode(&regs) > KBU_PG_OFF)
			mode = kbu_regs_paging_mode(&regs);
		kbu_mem_set_translation(ctx->mem, mode, cr3);
	}
	uint8_t *buf = malloc((size_t)len);
	if (!buf)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory for %" PRIu64 " bytes", len);
	enum kbu_space space = phys ? KBU_PHYS : KBU_VIRT;
	if (kbu_mem_read(ctx->mem, space, addr, buf, (size_t)len, err) < 0) {
		free(buf);
		return -1;
	}
	struct kbu_node *root = kbu_report_root(r);
	int w = addr + len - 1 > 0xffffffffull ? 16 : 8;
	kbu_hex(root, "address", "", addr, w);
	kbu_str(root, "space", "", phys ? "physical" : "virtual");
	kbu_u64(root, "length", "", len);
	kbu_bytes(root, "bytes", "", buf, (size_t)len);
	struct kbu_node *lines = kbu_list(root, "lines", "");
	for (uint64_t off = 0; off < len; off += 16) {
		size_t n = len - off < 16 ? (size_t)(len - off) : 16;
		struct kbu_node *row = kbu_row(lines);
		char ascii[19];
		ascii[0] = '|';
		for (size_t k = 0; k < n; k++) {
			uint8_t c = buf[off + k];
			ascii[1 + k] = c >= 0x20 && c < 0x7f ? (char)c : '.';
		}
		ascii[1 + n] = '|';
		ascii[2 + n] = '\0';
		kbu_hex(row, "address", phys ? "Physical" : "Virtual", addr + off, w);
		kbu_bytes(row, "bytes", "Bytes", buf + off, n);
		kbu_display(row, "ascii", "ASCII", "%s", ascii);
	}
	free(buf);
	return 0;
}

static struct kbu_command cmd_x = {
	.name = "x",
	.summary = "hexdump guest memory, virtual by default, physical with -p",
	.help = "usage: kbu x [-p] ADDR [LEN] [--cr3 X]\n"
		"\n"
		"Dumps LEN bytes (default 64, at most 1 MiB) at ADDR, 16 to a line with\n"
		"ASCII, like hexdump -C. ADDR is virtual (translated with CPU 0's page\n"
		"tables, or the tables at --cr3) unless -p makes it physical; it may\n"
		"be symbol[+off] with --kernel or --symbols, or $reg[+off] from CPU 0\n"
		"(kbu x '$rsp' 128). A read that reaches an unmapped or missing page\n"
		"fails and names the address. (--phys is the global option that names a\n"
		"raw image: kbu x -p --phys FILE ADDR.)\n"
		"\n"
		"  -p        ADDR is a physical address\n"
		"  --cr3 X   translate with the page tables at physical address X\n",
	.needs = KBU_NEEDS_MEM,
	.run = run_x,
};
KBU_COMMAND(cmd_x)
