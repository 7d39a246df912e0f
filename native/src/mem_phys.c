/* kbu memory source: a raw physical image (QEMU pmemsave), mapped read-only at BASE. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kbu/mem.h"
#include "kbu/util.h"

struct phys_source {
	const uint8_t *map;
	size_t size;
	uint64_t base;
	char path[256];
};

static int phys_read(void *ctx, enum kbu_space s, uint64_t addr, void *buf, size_t len,
		     struct kbu_err *err)
{
	struct phys_source *p = ctx;
	if (s != KBU_PHYS)
		return kbu_err_set(err, KBU_EUNSUPPORTED, "a raw image has no virtual addresses");
	if (addr < p->base || addr - p->base > p->size || len > p->size - (addr - p->base))
		return kbu_err_set(err, KBU_EFAULT, "outside the image %s (0x%" PRIx64 "-0x%" PRIx64 ")",
				   p->path, p->base, p->base + p->size);
	memcpy(buf, p->map + (addr - p->base), len);
	return 0;
}

static int phys_ranges(void *ctx, uint64_t *start, uint64_t *end, int max)
{
	struct phys_source *p = ctx;
	if (max < 1)
		return 0;
	start[0] = p->base;
	end[0] = p->base + p->size;
	return 1;
}

static void phys_close(void *ctx)
{
	struct phys_source *p = ctx;
	if (p->map)
		munmap((void *)p->map, p->size);
	free(p);
}

static const struct kbu_mem_ops phys_ops = {
	.kind = "phys",
	.read = phys_read,
	.ranges = phys_ranges,
	.close = phys_close,
};

struct kbu_mem *kbu_mem_open_phys(const char *path, uint64_t base, struct kbu_err *err)
{
	static const struct kbu_map_words words = {
		.notreg = "not a regular file", .empty = "empty image", .map = "mmap",
	};
	void *map;
	size_t size;
	if (kbu_map_file(path, 0, &words, &map, &size, err) < 0)
		return NULL;
	if ((uint64_t)size - 1 > UINT64_MAX - base) {
		munmap(map, size);
		kbu_err_set(err, KBU_EINVAL, "%s: at base 0x%" PRIx64 " the image passes the top of memory",
			    path, base);
		return NULL;
	}
	struct phys_source *p = calloc(1, sizeof *p);
	if (!p) {
		munmap(map, size);
		kbu_err_set(err, KBU_ENOMEM, "out of memory");
		return NULL;
	}
	p->map = map;
	p->size = size;
	p->base = base;
	snprintf(p->path, sizeof p->path, "%s", path);
	return kbu_mem_new(&phys_ops, p, err);
}

struct kbu_mem *kbu_mem_open_phys_spec(const char *spec, struct kbu_err *err)
{
	const char *at = strrchr(spec, '@');
	uint64_t base = 0;
	if (!at)
		return kbu_mem_open_phys(spec, 0, err);
	if (kbu_parse_u64(at + 1, &base, err) < 0) {
		kbu_err_prefix(err, "--phys %s: the base after '@'", spec);
		return NULL;
	}
	size_t n = (size_t)(at - spec);
	char *path = strndup(spec, n);
	if (!path) {
		kbu_err_set(err, KBU_ENOMEM, "out of memory");
		return NULL;
	}
	struct kbu_mem *m = kbu_mem_open_phys(path, base, err);
	free(path);
	return m;
}
