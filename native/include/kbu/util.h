/* kbu: small helpers every command uses: numbers, addresses, option parsing. */
#ifndef KBU_UTIL_H
#define KBU_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_ctx;

#define KBU_VERSION "0.1.0"

/* A number: 0x hex, plain decimal, or hex with a trailing 'h'; '_' and '`'
 * separators are allowed (0xffffffff`80200000). Whole string or an error. */
int kbu_parse_u64(const char *s, uint64_t *out, struct kbu_err *err);

/* Little-endian unsigned integers from bytes (guest and file structures). */
static inline uint16_t kbu_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t kbu_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t kbu_le64(const uint8_t *p)
{
	return (uint64_t)kbu_le32(p) | (uint64_t)kbu_le32(p + 4) << 32;
}

/* The value of one hex digit (either case), or -1 for any other character. */
static inline int kbu_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Guest and file bytes made safe for a terminal and for one-line messages:
 * printable ASCII stays, every other byte becomes "\xNN" (an ESC, a CR, a
 * NUL, a UTF-8 byte), except the bytes listed in keep (e.g. "\n\t" for a
 * log). This is the one escape every command uses. Writes at most cap-1
 * characters and a NUL, never half an escape; returns the length the whole
 * escaped text needs, without the NUL (as snprintf does).
 */
size_t kbu_escape(const void *bytes, size_t n, const char *keep, char *out, size_t cap);
/* The same into a malloc'd string (NULL when out of memory). */
char *kbu_escape_dup(const void *bytes, size_t n, const char *keep);

/* The 8-bit sum of n bytes (ACPI and MP-spec checksums: a table is good when it is 0). */
uint8_t kbu_sum8(const uint8_t *p, size_t n);

/* A byte count as a porter reads it: "639 KiB", "127.6 MiB", "2 GiB", "512 bytes". */
void kbu_size_text(uint64_t n, char *buf, size_t len);

/* An address: a number, symbol[+off|-off] when ctx->syms is set, or $reg[+off|-off]
 * (rip, rsp, rbp, rax..r15, cr2, cr3, fs_base, gs_base, gdt, idt) from CPU 0. */
int kbu_parse_addr(struct kbu_ctx *ctx, const char *s, uint64_t *out, struct kbu_err *err);

/*
 * Reentrant option parsing for commands (no global getopt state).
 *   static const struct kbu_opt opts[] = {{"cr3", 0, 1}, {"phys", 'p', 0}, {0}};
 *   struct kbu_getopt g = KBU_GETOPT_INIT;
 *   int i;
 *   while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
 *       if (i == KBU_OPT_ERR) return -1;
 *       if (i == KBU_OPT_ARG) { positional g.arg; continue; }
 *       opts[i] matched; g.arg holds its value when has_arg
 *   }
 * Accepts --name VALUE, --name=VALUE, -x VALUE, -xVALUE, -xy (flags), and "--".
 */
struct kbu_opt {
	const char *name; /* long name without "--", or NULL */
	char letter;      /* short letter, or 0 */
	int has_arg;
};

struct kbu_getopt {
	int ind;         /* next argv index */
	int only_args;   /* after "--" */
	const char *cluster; /* rest of a -xyz cluster */
	const char *arg;
};

#define KBU_GETOPT_INIT {1, 0, NULL, NULL}
enum { KBU_OPT_END = -1, KBU_OPT_ERR = -2, KBU_OPT_ARG = -3 };

int kbu_getopt(struct kbu_getopt *g, int argc, char **argv, const struct kbu_opt *opts,
	       struct kbu_err *err);

/*
 * Maps a whole regular file (private; writable when `writable`, never written back).
 * The words say how each failure reads for this kind of file, after "PATH: ":
 *   open   "cannot open"   -> "PATH: cannot open: <strerror>"   (NULL: "PATH: <strerror>")
 *   stat   "cannot stat"   -> "PATH: cannot stat: <strerror>"   (NULL: as notreg)
 *   dir    message for a directory (NULL: as notreg)
 *   notreg message for anything else that is not a regular file
 *   empty  message for a 0-byte file
 *   map    "mmap"          -> "PATH: mmap: <strerror>", or with map_says_size
 *                             "PATH: cannot map N bytes: <strerror>"
 * A missing file is KBU_ENOTFOUND when enoent_notfound, else KBU_EIO.
 * On success *map and *len hold the mapping (munmap(*map, *len) to release it).
 */
struct kbu_map_words {
	const char *open, *stat, *dir, *notreg, *empty, *map;
	int map_says_size;
	int enoent_notfound;
	int populate; /* read it all in now (a file scanned whole: faults one by one cost more) */
};

int kbu_map_file(const char *path, int writable, const struct kbu_map_words *w, void **map,
		 size_t *len, struct kbu_err *err);

#ifdef __cplusplus
}
#endif
#endif
