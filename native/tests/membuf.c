/* Test support: a memory source over a buffer (see membuf.h). */
#include <stdlib.h>
#include <string.h>

#include "membuf.h"

static int membuf_read(void *ctx, enum kbu_space space, uint64_t addr, void *buf, size_t len,
		       struct kbu_err *err)
{
	struct membuf *b = ctx;
	if (space != KBU_PHYS)
		return kbu_err_set(err, KBU_EUNSUPPORTED, "membuf: no virtual reads");
	if (addr > b->size || len > b->size - addr)
		return kbu_err_set(err, KBU_EFAULT, "membuf: 0x%llx+0x%zx outside memory",
				   (unsigned long long)addr, len);
	memcpy(buf, b->mem + addr, len);
	return 0;
}

static int membuf_regs(void *ctx, int cpu, struct kbu_regs *out, struct kbu_err *err)
{
	struct membuf *b = ctx;
	if (!b->have_regs || cpu != 0)
		return kbu_err_set(err, KBU_ENOTFOUND, "membuf: no CPU %d", cpu);
	*out = b->regs;
	return 0;
}

static int membuf_monitor(void *ctx, const char *cmd, char **out, struct kbu_err *err)
{
	struct membuf *b = ctx;
	if (!(*out = strdup(b->monitor_text)))
		return kbu_err_set(err, KBU_ENOMEM, "membuf: out of memory");
	return 0;
}

static int membuf_ranges(void *ctx, uint64_t *start, uint64_t *end, int max)
{
	struct membuf *b = ctx;
	if (max < 1)
		return 0;
	start[0] = 0;
	end[0] = b->size;
	return 1;
}

static void membuf_close(void *ctx)
{
	struct membuf *b = ctx;
	free(b->mem);
	free(b);
}

/* Indexed by (with_regs << 1 | has_monitor). */
static const struct kbu_mem_ops membuf_ops[4] = {
	{.kind = "membuf", .read = membuf_read, .ranges = membuf_ranges, .close = membuf_close},
	{.kind = "membuf", .read = membuf_read, .ranges = membuf_ranges, .monitor = membuf_monitor,
	 .close = membuf_close},
	{.kind = "membuf", .read = membuf_read, .regs = membuf_regs, .ranges = membuf_ranges,
	 .close = membuf_close},
	{.kind = "membuf", .read = membuf_read, .regs = membuf_regs, .ranges = membuf_ranges,
	 .monitor = membuf_monitor, .close = membuf_close},
};

struct kbu_mem *membuf_new(const void *img, size_t size, const char *monitor, int with_regs,
			   struct membuf **out)
{
	struct membuf *b = calloc(1, sizeof *b);
	if (!b || !(b->mem = calloc(1, size ? size : 1))) {
		free(b);
		return NULL;
	}
	if (img)
		memcpy(b->mem, img, size);
	b->size = size;
	b->monitor_text = monitor;
	if (out)
		*out = b;
	struct kbu_err e;
	return kbu_mem_new(&membuf_ops[(with_regs ? 2 : 0) | (monitor ? 1 : 0)], b, &e);
}
