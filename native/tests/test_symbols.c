/* Symbol tables: nm maps with bad lines, ELF symbols, merging, look-ups, and kbu sym. */

#include "check.h"
#include "support.h"
#include "elf_fixture.h"
#include "kbu/command.h"
#include "kbu/elf.h"
#include "kbu/report.h"
#include "kbu/symbols.h"

/* A System.map piece, nm -S lines, an undefined symbol, junk, and no final newline. */
static const char map_text[] =
	"ffffffff81000000 T _text\n"
	"ffffffff81000000 T startup_64\n"
	"ffffffff81000070 T secondary_startup_64\n"
	"ffffffff81000200 D some_data\n"         /* another kind: does not end startup code */
	"ffffffff81000300 t pvh_start_xen\n"
	"this line is junk\n"
	"\n"
	"ffffffff81000400 0000000000000010 T sized_by_nm\n"
	"                 U undefined_thing\n"
	"ffffffff81000500 T\n"                   /* no name */
	"ffffffff81000600 Q\tbad_type_is_fine\r\n"
	"12345678901234567 T too_long_addr\n"
	"ffffffff81000700 T last_one";           /* no newline at the end */

static struct kbu_symtab *load_map(const char *name, const char *text, struct kbu_err *err)
{
	char path[256];
	fx_write(name, text, strlen(text), path, sizeof(path));
	struct kbu_symtab *st = kbu_symtab_new();
	if (kbu_symtab_load_map(st, path, err) != 0 || kbu_symtab_finish(st, err) != 0) {
		kbu_symtab_free(st);
		return NULL;
	}
	return st;
}

/* A map is parsed on first need: a name look-up, its duplicate count and the
 * bad-line count answer from the text, and equal what the full index says. */
TEST(lazy_map_answers_as_the_index_does)
{
	static const char text[] =
		"ffffffff81000000 T startup_64\n"
		"ffffffff81000100 t dup\n"
		"ffffffff81000100 t dup\n" /* the same symbol twice: one */
		"not a line\n"
		"ffffffff81000200 t dup\n"
		"ffffffff81000300 T dup\n"
		"ffffffff81000400 T undup\n";
	struct kbu_err err = {0};
	struct kbu_symtab *st = load_map("lazy.map", text, &err);
	CHECK(st != NULL);
	if (!st)
		return;
	const char *first = NULL;
	CHECK_EQ_U64(kbu_symtab_bad_lines(st, &first), 1);
	CHECK_CONTAINS(first, "lazy.map:4: no address: 'not a line'");
	const struct kbu_sym *s = kbu_sym_by_name(st, "dup");
	CHECK(s && s->type == 'T' && s->addr == 0xffffffff81000300ull);
	CHECK_EQ_U64(kbu_sym_name_count(st, "dup"), 3);
	CHECK_EQ_U64(kbu_sym_name_count(st, "undup"), 1);
	CHECK_EQ_U64(kbu_sym_name_count(st, "nosuch"), 0);
	/* Now the index: the same answers. */
	CHECK(kbu_symtab_at(st, 0) != NULL);
	CHECK_EQ_U64(kbu_symtab_bad_lines(st, &first), 1);
	CHECK_CONTAINS(first, "lazy.map:4: no address: 'not a line'");
	CHECK_EQ_U64(kbu_sym_name_count(st, "dup"), 3);
	CHECK_EQ_U64(kbu_sym_name_count(st, "undup"), 1);
	kbu_symtab_free(st);
}

/* Many names at once from a map not parsed yet: each answer equals the one
 * asked alone, whatever the line's layout. */
TEST(prefetched_names_answer_as_single_look_ups)
{
	static const char text[] =
		"81000400 T short_addr\n"                      /* 32-bit map line */
		"ffffffff81000000 T startup_64\n"
		"ffffffff81000070 t ab\n"                      /* shorter than the filter's prefix */
		"ffffffff81000100 t dup\n"
		"ffffffff81000200 T dup\n"
		"ffffffff81000300 0000000000000040 T sized\n"  /* nm -S */
		"ffffffff81000500 T  two_blanks\n"
		"ffffffff81000600 D data_one\n"
		"ffffffff81000700 T last_text\n";
	static const char *const names[] = {
		"startup_64", "ab", "dup", "sized", "short_addr", "two_blanks", "data_one",
		"last_text", "nosuch", "dup", "startup_6",
	};
	enum { N = sizeof(names) / sizeof(names[0]) };
	struct kbu_err err = {0};
	struct kbu_symtab *pre = load_map("pre.map", text, &err);
	struct kbu_symtab *one = load_map("one.map", text, &err);
	CHECK(pre && one);
	if (!pre || !one)
		return;
	kbu_sym_prefetch(pre, names, N);
	for (size_t i = 0; i < N; i++) {
		const struct kbu_sym *a = kbu_sym_by_name(pre, names[i]);
		const struct kbu_sym *b = kbu_sym_by_name(one, names[i]);
		CHECK((a == NULL) == (b == NULL));
		if (a && b) {
			CHECK_EQ_U64(a->addr, b->addr);
			CHECK_EQ_U64(a->size, b->size);
			CHECK_EQ_U64(a->type, b->type);
		}
		CHECK_EQ_U64(kbu_sym_name_count(pre, names[i]), kbu_sym_name_count(one, names[i]));
	}
	/* And what they say is right. */
	const struct kbu_sym *s = kbu_sym_by_name(pre, "ab");
	CHECK(s && s->addr == 0xffffffff81000070ull);
	s = kbu_sym_by_name(pre, "sized");
	CHECK(s && s->size == 0x40);
	s = kbu_sym_by_name(pre, "short_addr");
	CHECK(s && s->addr == 0x81000400ull);
	s = kbu_sym_by_name(pre, "two_blanks");
	CHECK(s && s->addr == 0xffffffff81000500ull);
	s = kbu_sym_by_name(pre, "dup");
	CHECK(s && s->type == 'T');
	CHECK_EQ_U64(kbu_sym_name_count(pre, "dup"), 2);
	CHECK(kbu_sym_by_name(pre, "startup_6") == NULL);
	kbu_symtab_free(pre);
	kbu_symtab_free(one);
	/* Unsorted: sizes need the index, which the first answer builds. */
	static const char unsorted[] = "ffffffff81000100 T b_fn\n"
				       "ffffffff81000000 T a_fn\n"
				       "ffffffff81000200 T c_fn\n";
	pre = load_map("unsorted.map", unsorted, &err);
	CHECK(pre != NULL);
	if (!pre)
		return;
	kbu_sym_prefetch(pre, names, N);
	static const char *const abc[] = {"a_fn", "b_fn", "c_fn"};
	kbu_sym_prefetch(pre, abc, 3);
	s = kbu_sym_by_name(pre, "a_fn");
	CHECK(s && s->addr == 0xffffffff81000000ull && s->size == 0x100);
	s = kbu_sym_by_name(pre, "b_fn");
	CHECK(s && s->size == 0x100);
	kbu_symtab_free(pre);
}

TEST(map_lines_are_parsed_and_bad_ones_counted)
{
	struct kbu_err err = {0};
	struct kbu_symtab *st = load_map("System.map", map_text, &err);
	CHECK(st != NULL);
	if (!st) {
		fprintf(stderr, "%s\n", err.msg);
		return;
	}
	CHECK_EQ_U64(kbu_symtab_count(st), 8);
	const char *first = NULL;
	CHECK_EQ_U64(kbu_symtab_bad_lines(st, &first), 3); /* junk, no name, long address */
	CHECK_CONTAINS(first, "System.map:6: no address: 'this line is junk'");
	const struct kbu_sym *s = kbu_sym_by_name(st, "startup_64");
	CHECK(s != NULL);
	if (s) {
		CHECK_EQ_U64(s->addr, 0xffffffff81000000ull);
		CHECK_EQ_U64(s->type, 'T');
		CHECK_EQ_U64(s->source, KBU_SYMSRC_MAP);
		/* Inferred up to the next code symbol. */
		CHECK_EQ_U64(s->size, 0x70);
	}
	/* Size runs to the next symbol of the same kind (t at 0x300), not to the D at 0x200. */
	s = kbu_sym_by_name(st, "secondary_startup_64");
	CHECK(s && s->size == 0x290);
	s = kbu_sym_by_name(st, "sized_by_nm");
	CHECK(s && s->size == 0x10); /* nm -S size kept */
	s = kbu_sym_by_name(st, "bad_type_is_fine");
	CHECK(s && s->type == 'Q' && s->addr == 0xffffffff81000600ull);
	s = kbu_sym_by_name(st, "last_one");
	CHECK(s && s->addr == 0xffffffff81000700ull && s->size == 0);
	CHECK(kbu_sym_by_name(st, "undefined_thing") == NULL);
	CHECK(kbu_sym_by_name(st, "too_long_addr") == NULL);
	CHECK(kbu_sym_by_name(st, "nosuch") == NULL);
	/* Address order. */
	for (size_t i = 1; i < kbu_symtab_count(st); i++)
		CHECK(kbu_symtab_at(st, i - 1)->addr <= kbu_symtab_at(st, i)->addr);
	CHECK(kbu_symtab_at(st, kbu_symtab_count(st)) == NULL);
	kbu_symtab_free(st);
}

TEST(addresses_resolve_to_the_containing_symbol)
{
	struct kbu_err err = {0};
	struct kbu_symtab *st = load_map("System2.map", map_text, &err);
	CHECK(st != NULL);
	if (!st)
		return;
	uint64_t off = 99;
	/* _text and startup_64 share an address: the function name wins over the marker. */
	const struct kbu_sym *s = kbu_sym_by_addr(st, 0xffffffff81000010ull, &off);
	CHECK(s != NULL);
	if (s)
		CHECK_STR(s->name, "startup_64");
	CHECK_EQ_U64(off, 0x10);
	char buf[128];
	CHECK_STR(kbu_sym_format(st, 0xffffffff81000010ull, buf, sizeof(buf)), "startup_64+0x10");
	CHECK_STR(kbu_sym_format(st, 0xffffffff81000300ull, buf, sizeof(buf)), "pvh_start_xen");
	/* Past a symbol with a real size and before the next one: no symbol spans it. */
	CHECK_STR(kbu_sym_format(st, 0xffffffff81000480ull, buf, sizeof(buf)),
		  "0xffffffff81000480");
	/* Below everything. */
	CHECK(kbu_sym_by_addr(st, 0x1000, &off) == NULL);
	CHECK_STR(kbu_sym_format(st, 0x1000, buf, sizeof(buf)), "0x1000");
	/* Beyond the last (unsized) symbol: nearest below. */
	s = kbu_sym_by_addr(st, 0xffffffff81000720ull, &off);
	CHECK(s && strcmp(s->name, "last_one") == 0 && off == 0x20);
	kbu_symtab_free(st);
}

static const struct fx_sym elf_syms[] = {
	{"start_func", 0xffffffff80200000ull, 0x80, STB_GLOBAL, STT_FUNC, 1},
	{"inner_label", 0xffffffff80200010ull, 0, STB_LOCAL, STT_NOTYPE, 1},
	{"other_func", 0xffffffff80200080ull, 0x40, STB_LOCAL, STT_FUNC, 1},
	{"weak_func", 0xffffffff802000c0ull, 0x20, STB_WEAK, STT_FUNC, 1},
	{"abs_value", 0x1234, 0, STB_GLOBAL, STT_NOTYPE, SHN_ABS},
	{"undef_ref", 0, 0, STB_GLOBAL, STT_NOTYPE, 0},
	{"dup", 0xffffffff80200080ull, 0, STB_LOCAL, STT_NOTYPE, 1},
	{"dup", 0xffffffff802000c0ull, 0, STB_GLOBAL, STT_NOTYPE, 1},
};

static const char *write_elf(const char *name, int nsyms, int dynsym, char *path, size_t plen)
{
	struct fx_spec s = {.vaddr = 0xffffffff80200000ull, .paddr = 0x200000,
			    .syms = nsyms ? elf_syms : NULL, .nsyms = nsyms, .dynsym = dynsym};
	size_t len;
	uint8_t *img = fx_build(&s, &len);
	fx_write(name, img, len, path, plen);
	free(img);
	return path;
}

TEST(elf_symbols_have_types_sizes_and_labels_inside_functions)
{
	char path[256];
	struct kbu_err err = {0};
	struct kbu_elf *e = kbu_elf_open(write_elf("syms.elf", 8, 0, path, sizeof(path)), &err);
	CHECK(e != NULL);
	if (!e)
		return;
	struct kbu_symtab *st = kbu_symtab_new();
	CHECK(kbu_symtab_load_elf(st, e, &err) == 0);
	CHECK(kbu_symtab_finish(st, &err) == 0);
	CHECK_EQ_U64(kbu_symtab_count(st), 7); /* the undefined one is not a symbol here */
	const struct kbu_sym *s = kbu_sym_by_name(st, "start_func");
	CHECK(s && s->type == 'T' && s->size == 0x80 && s->source == KBU_SYMSRC_ELF);
	s = kbu_sym_by_name(st, "other_func");
	CHECK(s && s->type == 't');
	s = kbu_sym_by_name(st, "weak_func");
	CHECK(s && s->type == 'W');
	s = kbu_sym_by_name(st, "abs_value");
	CHECK(s && s->type == 'A' && s->addr == 0x1234);
	CHECK(kbu_sym_by_name(st, "undef_ref") == NULL);
	/* Two symbols named dup: the global one, and the count says so. */
	s = kbu_sym_by_name(st, "dup");
	CHECK(s && s->type == 'T' && s->addr == 0xffffffff802000c0ull);
	CHECK_EQ_U64(kbu_sym_name_count(st, "dup"), 2);
	/* An address past an unsized label but inside the sized function names the function. */
	uint64_t off = 0;
	s = kbu_sym_by_addr(st, 0xffffffff80200014ull, &off);
	CHECK(s && strcmp(s->name, "start_func") == 0 && off == 0x14);
	/* Aliases: the sized function over the unsized local label at the same address. */
	s = kbu_sym_by_addr(st, 0xffffffff80200080ull, &off);
	CHECK(s && strcmp(s->name, "other_func") == 0 && off == 0);
	kbu_symtab_free(st);
	kbu_elf_close(e);
}

TEST(dynsym_is_the_fallback)
{
	char path[256];
	struct kbu_err err = {0};
	struct kbu_elf *e = kbu_elf_open(write_elf("dyn.elf", 4, 1, path, sizeof(path)), &err);
	CHECK(e != NULL);
	if (!e)
		return;
	struct kbu_symtab *st = kbu_symtab_new();
	CHECK(kbu_symtab_load_elf(st, e, &err) == 0);
	CHECK(kbu_symtab_finish(st, &err) == 0);
	CHECK_EQ_U64(kbu_symtab_count(st), 4);
	CHECK(kbu_sym_by_name(st, "weak_func") != NULL);
	kbu_symtab_free(st);
	kbu_elf_close(e);
}

TEST(elf_and_map_merge_without_duplicates)
{
	char path[256];
	struct kbu_err err = {0};
	struct kbu_elf *e = kbu_elf_open(write_elf("merge.elf", 4, 0, path, sizeof(path)), &err);
	CHECK(e != NULL);
	if (!e)
		return;
	static const char map[] = "ffffffff80200000 T start_func\n"
				  "ffffffff80200080 t other_func\n"
				  "ffffffff80200100 T only_in_map\n"
				  "ffffffff80200200 T map_end\n";
	fx_write("merge.map", map, strlen(map), path, sizeof(path));
	struct kbu_symtab *st = kbu_symtab_new();
	CHECK(kbu_symtab_load_map(st, path, &err) == 0);
	CHECK(kbu_symtab_load_elf(st, e, &err) == 0);
	CHECK(kbu_symtab_finish(st, &err) == 0);
	/* 4 from the ELF (start_func, inner_label, other_func, weak_func) + 2 map-only. */
	CHECK_EQ_U64(kbu_symtab_count(st), 6);
	CHECK_EQ_U64(kbu_sym_name_count(st, "start_func"), 1);
	const struct kbu_sym *s = kbu_sym_by_name(st, "start_func");
	CHECK(s && s->source == KBU_SYMSRC_ELF && s->size == 0x80); /* ELF size wins */
	s = kbu_sym_by_name(st, "only_in_map");
	CHECK(s && s->source == KBU_SYMSRC_MAP && s->size == 0x100);
	kbu_symtab_free(st);
	kbu_elf_close(e);
}

TEST(slid_copy_moves_every_symbol_but_absolute_ones)
{
	struct kbu_err err = {0};
	static const char text[] = "ffffffff81000000 T startup_64\n"
				   "ffffffff81000300 t pvh_start_xen\n"
				   "0000000000001000 A an_absolute\n";
	struct kbu_symtab *st = load_map("slide.map", text, &err);
	CHECK(st != NULL);
	if (!st)
		return;
	struct kbu_symtab *sl = kbu_symtab_slid(st, 0x24200000, &err);
	CHECK(sl != NULL);
	if (sl) {
		CHECK_EQ_U64(kbu_symtab_count(sl), kbu_symtab_count(st));
		CHECK_EQ_U64(kbu_sym_by_name(sl, "startup_64")->addr, 0xffffffffa5200000ull);
		CHECK_EQ_U64(kbu_sym_by_name(sl, "pvh_start_xen")->addr, 0xffffffffa5200300ull);
		CHECK_EQ_U64(kbu_sym_by_name(sl, "an_absolute")->addr, 0x1000);
		uint64_t off = 0;
		const struct kbu_sym *s = kbu_sym_by_addr(sl, 0xffffffffa5200304ull, &off);
		CHECK(s && strcmp(s->name, "pvh_start_xen") == 0 && off == 4);
		/* an absolute symbol is a constant: it names no address */
		CHECK(kbu_sym_by_addr(sl, 0x1000, &off) == NULL);
		CHECK(kbu_sym_by_addr(st, 0x1004, &off) == NULL);
		/* the original is untouched */
		CHECK_EQ_U64(kbu_sym_by_name(st, "startup_64")->addr, 0xffffffff81000000ull);
	}
	kbu_symtab_free(sl);
	kbu_symtab_free(st);
}

TEST(missing_symbols_are_clear_errors)
{
	char path[256];
	struct kbu_err err = {0};
	struct kbu_elf *e = kbu_elf_open(write_elf("stripped.elf", 0, 0, path, sizeof(path)), &err);
	CHECK(e != NULL);
	if (!e)
		return;
	struct kbu_symtab *st = kbu_symtab_new();
	/* Loading a stripped ELF is not an error by itself (a map may follow)... */
	CHECK(kbu_symtab_load_elf(st, e, &err) == 0);
	CHECK(kbu_symtab_finish(st, &err) == 0);
	CHECK_EQ_U64(kbu_symtab_count(st), 0);
	/* ...but it says why there are none. */
	CHECK_CONTAINS(kbu_symtab_why_empty(st), "ELF has no symbol table");
	CHECK(kbu_sym_by_addr(st, 0xffffffff80200000ull, NULL) == NULL);
	kbu_symtab_free(st);
	kbu_elf_close(e);
	/* Maps: empty, all junk, an ELF given as a map, a directory. */
	st = kbu_symtab_new();
	fx_write("empty.map", "", 0, path, sizeof(path));
	CHECK(kbu_symtab_load_map(st, path, &err) == -1);
	CHECK_CONTAINS(err.msg, "empty symbol map");
	fx_write("junk.map", "hello\nworld\n", 12, path, sizeof(path));
	CHECK(kbu_symtab_load_map(st, path, &err) == -1);
	CHECK_CONTAINS(err.msg, "no symbols in nm format (2 bad lines; first: ");
	CHECK_CONTAINS(err.msg, "junk.map:1: no address: 'hello'");
	CHECK(kbu_symtab_load_map(st, write_elf("asmap.elf", 1, 0, path, sizeof(path)), &err) == -1);
	CHECK_CONTAINS(err.msg, "is an ELF file, not an nm-format map");
	CHECK(kbu_symtab_load_map(st, fx_dir(), &err) == -1);
	CHECK_CONTAINS(err.msg, "is a directory");
	CHECK(kbu_symtab_load_map(st, "/nonexistent/System.map", &err) == -1);
	CHECK_CONTAINS(err.msg, "cannot open symbol map");
	kbu_symtab_free(st);
}

TEST(many_aliases_and_random_lookups_agree_with_a_linear_scan)
{
	/* 3000 symbols at one address (like Linux's __ksymtab markers), then sized functions. */
	size_t cap = 4000 * 48, len = 0;
	char *text = malloc(cap);
	for (int i = 0; i < 3000; i++)
		len += (size_t)snprintf(text + len, cap - len, "ffffffff81100000 r __alias_%d\n", i);
	for (int i = 0; i < 500; i++)
		len += (size_t)snprintf(text + len, cap - len, "%016llx T func_%d\n",
					0xffffffff81200000ull + (unsigned long long)i * 0x40, i);
	struct kbu_err err = {0};
	struct kbu_symtab *st = load_map("aliases.map", text, &err);
	free(text);
	CHECK(st != NULL);
	if (!st)
		return;
	CHECK_EQ_U64(kbu_symtab_count(st), 3500);
	uint64_t off;
	for (int i = 0; i < 499; i++) {
		uint64_t a = 0xffffffff81200000ull + (uint64_t)i * 0x40 + (uint64_t)(i % 0x40);
		const struct kbu_sym *s = kbu_sym_by_addr(st, a, &off);
		char want[32];
		snprintf(want, sizeof(want), "func_%d", i);
		CHECK(s && strcmp(s->name, want) == 0 && off == (uint64_t)(i % 0x40));
		CHECK(kbu_sym_by_name(st, want) == s);
	}
	const struct kbu_sym *s = kbu_sym_by_addr(st, 0xffffffff81100004ull, &off);
	CHECK(s && strncmp(s->name, "__alias_", 8) == 0 && off == 4);
	CHECK(kbu_sym_by_name(st, "__alias_2999") != NULL);
	kbu_symtab_free(st);
}

TEST(mutated_maps_never_crash)
{
	size_t len = sizeof(map_text) - 1;
	char *m = malloc(len);
	uint64_t x = 0x2545f4914f6cdd1dull;
	char path[256];
	for (int round = 0; round < 400; round++) {
		memcpy(m, map_text, len);
		for (int f = 0; f < 1 + round % 8; f++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			static const char pool[] = "\n \t0fT\0x\r";
			m[x % len] = (x >> 40) & 1 ? pool[(x >> 20) % (sizeof(pool) - 1)] : (char)(x >> 24);
		}
		size_t cut = round % 3 ? len : (size_t)(x % len) + 1; /* sometimes mid-line */
		fx_write("mutant.map", m, cut, path, sizeof(path));
		struct kbu_err err = {0};
		struct kbu_symtab *st = kbu_symtab_new();
		if (kbu_symtab_load_map(st, path, &err) == 0 && kbu_symtab_finish(st, &err) == 0) {
			CHECK(kbu_symtab_count(st) > 0);
			char buf[64];
			for (size_t i = 0; i < kbu_symtab_count(st); i++) {
				const struct kbu_sym *y = kbu_symtab_at(st, i);
				CHECK(kbu_sym_by_name(st, y->name) != NULL);
				CHECK(kbu_sym_by_addr(st, y->addr, NULL) != NULL);
				kbu_sym_format(st, y->addr + 3, buf, sizeof(buf));
			}
		} else {
			CHECK(err.msg[0] != 0);
		}
		kbu_symtab_free(st);
	}
	free(m);
}

TEST(sym_command_resolves_lists_and_flags)
{
	char path[256], mpath[256];
	struct kbu_ctx *ctx = kbu_ctx_new();
	struct kbu_err err = {0};
	char *out = NULL;
	/* No symbols at all. */
	int rc = run_cmd(ctx, 0, &out, &err, 2, "sym", "startup_64");
	CHECK_EQ_U64(rc, 2);
	CHECK_CONTAINS(err.msg, "needs symbols");
	kbu_free(out);
	fx_write("cmd.map", map_text, strlen(map_text), mpath, sizeof(mpath));
	CHECK(kbu_ctx_load_symbols(ctx, mpath, &err) == 0);
	rc = run_cmd(ctx, 0, &out, &err, 4, "sym", "startup_64", "0xffffffff81000010", "nosuch");
	CHECK_EQ_U64(rc, 0);
	CHECK_CONTAINS(out, "0xffffffff81000000");
	CHECK_CONTAINS(out, "startup_64+0x10");
	CHECK_CONTAINS(out, "'nosuch': no such symbol, and not an address");
	CHECK_CONTAINS(out, "3 map lines not in nm format were skipped");
	kbu_free(out);
	/* symbol+off and symbol-off are addresses too. */
	rc = run_cmd(ctx, 0, &out, &err, 4, "sym", "startup_64+0x10", "pvh_start_xen-1", "nosuch+4");
	CHECK_EQ_U64(rc, 0);
	CHECK_CONTAINS(out, "startup_64+0x10  0xffffffff81000010  startup_64+0x10");
	CHECK_CONTAINS(out, "0xffffffff810002ff  secondary_startup_64+0x28f");
	CHECK_CONTAINS(out, "'nosuch+4': no symbol 'nosuch'");
	kbu_free(out);
	ctx->strict = 1;
	rc = run_cmd(ctx, 0, &out, &err, 2, "sym", "nosuch");
	CHECK_EQ_U64(rc, 1);
	kbu_free(out);
	ctx->strict = 0;
	rc = run_cmd(ctx, 1, &out, &err, 2, "sym", "ffffffff81000010h");
	CHECK_EQ_U64(rc, 0);
	CHECK_CONTAINS(out, "\"symbol\": \"startup_64\", \"offset\": 16, \"size\": 112");
	kbu_free(out);
	rc = run_cmd(ctx, 0, &out, &err, 4, "sym", "--list", "--match", "*start*");
	CHECK_EQ_U64(rc, 0);
	CHECK_CONTAINS(out, "secondary_startup_64");
	CHECK_CONTAINS(out, "pvh_start_xen");
	CHECK(strstr(out, "some_data") == NULL);
	CHECK_CONTAINS(out, "matched:");
	kbu_free(out);
	rc = run_cmd(ctx, 1, &out, &err, 2, "sym", "--list");
	CHECK_CONTAINS(out, "\"name\": \"last_one\", \"source\": \"map\"");
	kbu_free(out);
	rc = run_cmd(ctx, 0, &out, &err, 1, "sym");
	CHECK_EQ_U64(rc, 2);
	CHECK_CONTAINS(err.msg, "give NAME or ADDR");
	kbu_free(out);
	kbu_ctx_free(ctx);
	/* A stripped kernel alone: the reason, not "no such symbol". */
	ctx = kbu_ctx_new();
	CHECK(kbu_ctx_load_kernel(ctx, write_elf("stripped2.elf", 0, 0, path, sizeof(path)), &err) == 0);
	rc = run_cmd(ctx, 0, &out, &err, 2, "sym", "startup_64");
	CHECK_EQ_U64(rc, 2);
	CHECK_CONTAINS(err.msg, "ELF has no symbol table");
	kbu_free(out);
	/* The map added later fills in. */
	CHECK(kbu_ctx_load_symbols(ctx, mpath, &err) == 0);
	rc = run_cmd(ctx, 0, &out, &err, 2, "sym", "startup_64");
	CHECK_EQ_U64(rc, 0);
	kbu_free(out);
	kbu_ctx_free(ctx);
}

/* A fresh table of `text`; indexed: made to build its index before anything is asked. */
static struct kbu_symtab *fresh(const char *text, size_t len, int indexed, struct kbu_err *err)
{
	char path[256];
	fx_write("fresh.map", text, len, path, sizeof(path));
	struct kbu_symtab *st = kbu_symtab_new();
	if (kbu_symtab_load_map(st, path, err) != 0 || kbu_symtab_finish(st, err) != 0) {
		kbu_symtab_free(st);
		return NULL;
	}
	if (indexed)
		(void)kbu_symtab_at(st, 0);
	return st;
}

/* Every name answered from the map's text (no index yet) as the index answers it. */
static void lazy_agrees(const char *text, size_t len, const char *const *extra, int check_count)
{
	struct kbu_err err = {0};
	struct kbu_symtab *idx = fresh(text, len, 1, &err);
	struct kbu_symtab *lazy = fresh(text, len, 0, &err);
	CHECK((idx == NULL) == (lazy == NULL));
	if (!idx || !lazy) {
		kbu_symtab_free(idx);
		kbu_symtab_free(lazy);
		return;
	}
	size_t n = kbu_symtab_count(idx);
	if (check_count) {
		struct kbu_symtab *counted = fresh(text, len, 0, &err);
		CHECK_EQ_U64(kbu_symtab_count(counted), n); /* counted from the text */
		kbu_symtab_free(counted);
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = kbu_symtab_at(idx, i)->name;
		const struct kbu_sym *a = kbu_sym_by_name(idx, name), *b = kbu_sym_by_name(lazy, name);
		CHECK(a && b);
		if (!a || !b)
			continue;
		if (a->addr != b->addr || a->type != b->type || a->size != b->size)
			fprintf(stderr, "  %s: index 0x%llx %c 0x%llx, text 0x%llx %c 0x%llx\n", name,
				(unsigned long long)a->addr, a->type, (unsigned long long)a->size,
				(unsigned long long)b->addr, b->type, (unsigned long long)b->size),
			fwrite(text, 1, len, stderr);
		CHECK_EQ_U64(a->addr, b->addr);
		CHECK_EQ_U64(a->type, b->type);
		CHECK_EQ_U64(a->size, b->size);
		CHECK_STR(a->name, b->name);
		CHECK(kbu_sym_by_name(lazy, name) == b); /* the same pointer the second time */
	}
	for (size_t i = 0; extra && extra[i]; i++)
		CHECK((kbu_sym_by_name(idx, extra[i]) == NULL) == (kbu_sym_by_name(lazy, extra[i]) == NULL));
	kbu_symtab_free(idx);
	kbu_symtab_free(lazy);
}

TEST(name_lookups_need_no_index)
{
	static const char *const absent[] = {"start", "64", "secondary_startup", "_startup_64",
					     "undefined_thing", "junk", "last", "ast_one", "T", "",
					     "bad_type_is_fine\r", "mod_sym", NULL};
	lazy_agrees(map_text, sizeof(map_text) - 1, absent, 1);
	/* Names inside names, a global after a local of the same name, module suffixes, CRs. */
	static const char tricky[] =
		"ffffffff81000000 t foo\n"
		"ffffffff81000010 T foo_bar\n"
		"ffffffff81000020 t my_foo\n"
		"ffffffff81000030 T foo\n"
		"ffffffff81000040 d foo\n"
		"ffffffff81000050 T helper\t[mod_sym]\n"
		"ffffffff81000060 D data_a\r\n"
		"ffffffff81000080 D data_b\n"
		"ffffffff81000080 D data_b\n" /* listed twice: one symbol */
		"ffffffff81000090 T foo";
	static const char *const tabsent[] = {"fo", "oo", "foo_", "mod_sym", "[mod_sym]", NULL};
	lazy_agrees(tricky, sizeof(tricky) - 1, tabsent, 1);
	/* An unsorted map: sizes the text cannot tell stay unknown; the count comes from the index. */
	static const char unsorted[] =
		"ffffffff81000100 T b_func\n"
		"ffffffff81000000 T a_func\n"
		"ffffffff81000200 T c_func\n";
	struct kbu_err err = {0};
	struct kbu_symtab *st = fresh(unsorted, sizeof(unsorted) - 1, 0, &err);
	CHECK(st != NULL);
	if (st) {
		const struct kbu_sym *s = kbu_sym_by_name(st, "a_func");
		CHECK(s && s->addr == 0xffffffff81000000ull && s->size == 0x100); /* as the index says */
		s = kbu_sym_by_name(st, "b_func");
		CHECK(s && s->size == 0x100);
		CHECK_EQ_U64(kbu_symtab_count(st), 3);
		kbu_symtab_free(st);
	}
	/* Mutated maps: whatever parses, the text answers as the index does. */
	size_t len = sizeof(map_text) - 1;
	char *m = malloc(len);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int round = 0; round < 200; round++) {
		memcpy(m, map_text, len);
		for (int f = 0; f < 1 + round % 6; f++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			static const char pool[] = "\n \t0fT\x1bx\r";
			m[x % len] = pool[(x >> 20) % (sizeof(pool) - 1)];
		}
		lazy_agrees(m, len, absent, 0);
	}
	free(m);
}

TEST(bytes_from_the_map_are_escaped_in_messages)
{
	static const char evil[] = "ffffffff81000000 T good\n"
				   "ffffffff81000010 T bad\x1b[31mname\n"
				   "\x1b]0;title\x07 junk\n";
	struct kbu_err err = {0};
	struct kbu_symtab *st = load_map("evil.map", evil, &err);
	CHECK(st != NULL);
	if (!st)
		return;
	CHECK(kbu_sym_by_name(st, "good") != NULL);
	CHECK(kbu_sym_by_name(st, "bad\x1b[31mname") == NULL); /* not a name nm writes */
	const char *first = NULL;
	CHECK_EQ_U64(kbu_symtab_bad_lines(st, &first), 2);
	CHECK(first && !strchr(first, 0x1b));
	CHECK_CONTAINS(first, "bad\\x1b[31mname");
	CHECK_CONTAINS(first, "not printable");
	kbu_symtab_free(st);
	/* A map with no symbol at all: the error quotes its first line, escaped. */
	st = load_map("evil2.map", evil + 24, &err);
	CHECK(st == NULL);
	CHECK(!strchr(err.msg, 0x1b));
	CHECK_CONTAINS(err.msg, "\\x1b");
}

int main(void)
{
	RUN(lazy_map_answers_as_the_index_does);
	RUN(prefetched_names_answer_as_single_look_ups);
	RUN(map_lines_are_parsed_and_bad_ones_counted);
	RUN(addresses_resolve_to_the_containing_symbol);
	RUN(elf_symbols_have_types_sizes_and_labels_inside_functions);
	RUN(dynsym_is_the_fallback);
	RUN(elf_and_map_merge_without_duplicates);
	RUN(missing_symbols_are_clear_errors);
	RUN(many_aliases_and_random_lookups_agree_with_a_linear_scan);
	RUN(sym_command_resolves_lists_and_flags);
	RUN(mutated_maps_never_crash);
	RUN(slid_copy_moves_every_symbol_but_absolute_ones);
	RUN(name_lookups_need_no_index);
	RUN(bytes_from_the_map_are_escaped_in_messages);
	fx_cleanup();
	CHECK_DONE("test_symbols");
}
