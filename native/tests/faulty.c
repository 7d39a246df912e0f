/* Test support: a failing memory source (see faulty.h). */
#include <stdlib.h>
#include <string.h>

#include "faulty.h"

struct faulty {
	uint8_t *img;
	size_t size;
	uint64_t lo, hi;
	int code;
	int ncpus;
};

static int faulty_read(void *ctx, enum kbu_space s, uint64_t addr, void *buf, size_t len,
		       struct kbu_err *err)
{
	struct faulty *f = ctx;
	if (s != KBU_PHYS)
		return kbu_err_set(err, KBU_EUNSUPPORTED, "faulty: no virtual reads");
	if (addr < f->hi && addr + len > f->lo)
		return kbu_err_set(err, f->code, "%s", f->code == KBU_ECONN ?
				   "gdb stub 127.0.0.1:1234 closed the connection" : "no memory there");
	if (addr > f->size || len > f->size - addr)
		return kbu_err_set(err, KBU_EFAULT, "outside memory");
	memcpy(buf, f->img + addr, len);
	return 0;
}

static int faulty_ncpus(void *ctx)
{
	return ((struct faulty *)ctx)->ncpus;
}

static void faulty_close(void *ctx) { free(ctx); }

static const struct kbu_mem_ops faulty_ops = {
	.kind = "gdb", .read = faulty_read, .ncpus = faulty_ncpus, .close = faulty_close,
};

struct kbu_mem *faulty_mem_ncpus(uint8_t *img, size_t size, uint64_t lo, uint64_t hi, int code,
				 int ncpus)
{
	struct faulty *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	*f = (struct faulty){img, size, lo, hi, code, ncpus};
	struct kbu_err e;
	return kbu_mem_new(&faulty_ops, f, &e);
}

struct kbu_mem *faulty_mem(uint8_t *img, size_t size, uint64_t lo, uint64_t hi, int code)
{
	return faulty_mem_ncpus(img, size, lo, hi, code, 0);
}
