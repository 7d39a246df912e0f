/*
 * kbu: symbol tables from ELF .symtab/.dynsym and nm-format maps, merged into
 * one address-sorted array with a name hash.
 *
 * Speed matters (a Linux map has 100k+ lines): names are never malloc'd one
 * by one. An ELF string table is copied once; a map file is mapped privately
 * and its names are NUL-terminated in place (copy-on-write pages).
 */
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kbu/elf.h"
#include "kbu/symbols.h"
#include "kbu/util.h"

Elf *kbu_elf_libelf(const struct kbu_elf *e);

/* Storage the names point into: malloc'd or mapped. */
struct sym_blob {
	void *p;
	size_t len;
	int mapped;
	struct sym_blob *next;
};

struct hslot {
	uint32_t idx1; /* index + 1; 0 = empty */
	uint32_t hash;
};

/* A map loaded but not parsed yet: mapped read-only. */
struct lazy_map {
	const char *text;
	size_t len;
	struct lazy_map *next;
	char path[];
};

/* A symbol found by a look-up in a lazy map's text, kept until the table is
 * freed (callers hold the pointer); name NULL: looked up and not there. */
struct lazy_hit {
	struct kbu_sym sym;
	size_t count;             /* symbols of that name at distinct addresses; 0: not counted */
	struct lazy_hit *next;
	char name[];
};

struct kbu_symtab {
	struct kbu_sym *syms;
	size_t n, cap;
	struct sym_blob *blobs;
	struct hslot *hash;
	size_t hmask;
	uint32_t *parent; /* parent[i] = 1 + nearest earlier sized symbol spanning syms[i].addr; 0: none */
	uint32_t *run;    /* run[i] = first index of the symbols at syms[i].addr */
	uint64_t *addrs;  /* addrs[i] = syms[i].addr: a dense array for the binary search */
	int finished;
	size_t bad_lines;
	char first_bad[256];
	char why_empty[256];
	struct lazy_map *lazy;    /* maps not parsed yet (see kbu_symtab_load_map) */
	struct lazy_hit *hits;    /* look-ups answered from them */
	int lazy_count_known;
	size_t lazy_count;
	size_t lazy_bad;          /* lines not in nm format in the lazy map, as counted */
	int lazy_sorted;          /* 1: its symbol lines are in address order (seen by a prefetch) */
	char lazy_first_bad[256];
};

struct kbu_symtab *kbu_symtab_new(void)
{
	return calloc(1, sizeof(struct kbu_symtab));
}

void kbu_symtab_free(struct kbu_symtab *st)
{
	if (!st)
		return;
	for (struct sym_blob *b = st->blobs, *nx; b; b = nx) {
		nx = b->next;
		if (b->mapped)
			munmap(b->p, b->len);
		else
			free(b->p);
		free(b);
	}
	for (struct lazy_map *l = st->lazy, *nx; l; l = nx) {
		nx = l->next;
		munmap((void *)l->text, l->len);
		free(l);
	}
	for (struct lazy_hit *h = st->hits, *nx; h; h = nx) {
		nx = h->next;
		free(h);
	}
	free(st->syms);
	free(st->hash);
	free(st->parent);
	free(st->run);
	free(st->addrs);
	free(st);
}

static int add_blob(struct kbu_symtab *st, void *p, size_t len, int mapped)
{
	struct sym_blob *b = malloc(sizeof(*b));
	if (!b)
		return -1;
	b->p = p;
	b->len = len;
	b->mapped = mapped;
	b->next = st->blobs;
	st->blobs = b;
	return 0;
}

static int reserve(struct kbu_symtab *st, size_t more)
{
	if (st->n + more <= st->cap)
		return 0;
	size_t cap = st->cap ? st->cap : 1024;
	while (cap < st->n + more)
		cap *= 2;
	struct kbu_sym *p = realloc(st->syms, cap * sizeof(*p));
	if (!p)
		return -1;
	st->syms = p;
	st->cap = cap;
	return 0;
}

/* Drops the index: more symbols are coming, finish must run again. */
static void unfinish(struct kbu_symtab *st)
{
	free(st->hash);
	free(st->parent);
	free(st->run);
	free(st->addrs);
	st->addrs = NULL;
	st->hash = NULL;
	st->parent = NULL;
	st->run = NULL;
	st->hmask = 0;
	st->finished = 0;
}

/* The nm letter for an ELF symbol, or 0 to skip it. */
static char elf_sym_letter(const GElf_Sym *s, const struct kbu_elf *e, size_t nsec)
{
	int bind = GELF_ST_BIND(s->st_info), type = GELF_ST_TYPE(s->st_info);
	if (type == STT_SECTION || type == STT_FILE || s->st_shndx == SHN_UNDEF)
		return 0;
	char c;
	if (s->st_shndx == SHN_ABS) {
		c = 'A';
	} else if (s->st_shndx == SHN_COMMON) {
		c = 'C';
	} else if (s->st_shndx < nsec) {
		const struct kbu_section *sec = kbu_elf_section(e, s->st_shndx);
		if (sec->flags & SHF_EXECINSTR)
			c = 'T';
		else if (sec->type == SHT_NOBITS)
			c = 'B';
		else if (sec->flags & SHF_WRITE)
			c = 'D';
		else
			c = 'R';
	} else {
		c = '?';
	}
	if (bind == STB_WEAK)
		return type == STT_OBJECT ? 'V' : 'W';
	if (bind == STB_LOCAL && c != '?')
		c = (char)(c - 'A' + 'a');
	return c;
}

static int load_symsec(struct kbu_symtab *st, const struct kbu_elf *e, Elf *elf, Elf_Scn *scn,
		       const GElf_Shdr *sh, struct kbu_err *err)
{
	const char *path = kbu_elf_path(e);
	size_t nsec = kbu_elf_nsections(e);
	if (sh->sh_link == 0 || sh->sh_link >= nsec)
		return kbu_err_set(err, KBU_EFORMAT, "%s: symbol table links to string section %u of %zu",
				   path, sh->sh_link, nsec);
	const struct kbu_section *strs = kbu_elf_section(e, sh->sh_link);
	size_t flen;
	const uint8_t *file = kbu_elf_bytes(e, &flen);
	if (strs->type == SHT_NOBITS || strs->offset > flen || strs->size > flen - strs->offset)
		return kbu_err_set(err, KBU_EFORMAT,
				   "%s: symbol string table at 0x%llx (0x%llx bytes) is not in the file",
				   path, (unsigned long long)strs->offset, (unsigned long long)strs->size);
	/* One copy of the string table, NUL-terminated at its end whatever it holds. */
	size_t slen = (size_t)strs->size;
	char *names = malloc(slen + 1);
	if (!names || add_blob(st, names, slen + 1, 0)) {
		free(names);
		return kbu_err_set(err, KBU_ENOMEM, "%s: out of memory for symbol names", path);
	}
	memcpy(names, file + strs->offset, slen);
	names[slen] = 0;
	Elf_Data *d = elf_getdata(scn, NULL);
	if (!d)
		return kbu_err_set(err, KBU_EFORMAT, "%s: cannot read the symbol table: %s", path,
				   elf_errmsg(-1));
	size_t entsz = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
	size_t count = entsz ? d->d_size / entsz : 0;
	if (reserve(st, count))
		return kbu_err_set(err, KBU_ENOMEM, "%s: out of memory for %zu symbols", path, count);
	for (size_t i = 1; i < count; i++) {
		GElf_Sym s;
		if (!gelf_getsym(d, (int)i, &s))
			break;
		if (s.st_name == 0 || s.st_name >= slen)
			continue;
		char c = elf_sym_letter(&s, e, nsec);
		if (!c)
			continue;
		struct kbu_sym *o = &st->syms[st->n++];
		o->name = names + s.st_name;
		o->addr = s.st_value;
		o->size = s.st_size;
		o->type = c;
		o->source = KBU_SYMSRC_ELF;
	}
	(void)elf;
	return 0;
}

int kbu_symtab_load_elf(struct kbu_symtab *st, const struct kbu_elf *e, struct kbu_err *err)
{
	Elf *elf = kbu_elf_libelf(e);
	Elf_Scn *symtab = NULL, *dynsym = NULL;
	GElf_Shdr sh_sym, sh_dyn, sh;
	for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn; scn = elf_nextscn(elf, scn)) {
		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB && !symtab) {
			symtab = scn;
			sh_sym = sh;
		} else if (sh.sh_type == SHT_DYNSYM && !dynsym) {
			dynsym = scn;
			sh_dyn = sh;
		}
	}
	if (!symtab && !dynsym) {
		/* Not fatal here: a stripped kernel with a System.map is normal. */
		if (!st->why_empty[0])
			snprintf(st->why_empty, sizeof(st->why_empty),
				 "%s: ELF has no symbol table (stripped; give --symbols MAP)",
				 kbu_elf_path(e));
		return 0;
	}
	unfinish(st);
	if (symtab)
		return load_symsec(st, e, elf, symtab, &sh_sym, err);
	return load_symsec(st, e, elf, dynsym, &sh_dyn, err);
}

/* Parses up to 16 hex digits; returns digits used (0: none, -1: too many). */
static int parse_hex(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0, d;
	while (p + n < end && (d = kbu_hex_digit((unsigned char)p[n])) >= 0) {
		if (n == 16)
			return -1;
		v = v << 4 | (uint64_t)d;
		n++;
	}
	*out = v;
	return n;
}

static void note_bad(struct kbu_symtab *st, const char *path, size_t lineno, const char *line,
		     const char *end, const char *why)
{
	if (st->bad_lines++ == 0) {
		/* File bytes in a message: escaped, so a stray ESC cannot reach a terminal. */
		char shown[4 * 60 + 1];
		kbu_escape(line, (size_t)(end - line > 60 ? 60 : end - line), NULL, shown, sizeof(shown));
		snprintf(st->first_bad, sizeof(st->first_bad), "%s:%zu: %s: '%s'", path, lineno, why,
			 shown);
	}
}

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* One line of an nm-format map, parsed without writing to it. */
struct map_line {
	uint64_t addr, size;
	int has_size;
	char type;
	const char *name;
	size_t name_len;
};

/* A symbol name is printable ASCII without blanks: anything else in a map is
 * not a name nm wrote. */
static int name_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
			return 0;
	return 1;
}

/*
 * Parses [line, lend) (no newline, a trailing CR allowed): 1 a symbol, 0 a
 * line to skip (blank, undefined or weak-undefined), -1 a bad line (*why).
 */
static int parse_line(const char *line, const char *lend, struct map_line *o, const char **why)
{
	const char *p = line;
	if (lend > p && lend[-1] == '\r')
		lend--;
	while (p < lend && is_space(*p))
		p++;
	if (p == lend)
		return 0; /* blank */
	int nd = parse_hex(p, lend, &o->addr);
	if (nd == 0 && p > line && p + 1 < lend && is_space(p[1]))
		return 0; /* nm's undefined symbols: "                 U name" */
	if (nd <= 0 || p + nd >= lend || !is_space(p[nd])) {
		*why = nd < 0 ? "address too long" : "no address";
		return -1;
	}
	p += nd;
	while (p < lend && is_space(*p))
		p++;
	o->has_size = 0;
	o->size = 0;
	if (!(p + 1 < lend && is_space(p[1]))) {
		/* Not a one-letter type: nm -S puts the size here. */
		int ns = parse_hex(p, lend, &o->size);
		if (ns <= 0 || p + ns >= lend || !is_space(p[ns])) {
			*why = "no type letter";
			return -1;
		}
		o->has_size = 1;
		p += ns;
		while (p < lend && is_space(*p))
			p++;
	}
	char type = p < lend ? *p : 0;
	if (!(p + 1 < lend && is_space(p[1])) ||
	    !((type >= 'A' && type <= 'Z') || (type >= 'a' && type <= 'z') || type == '?' ||
	      type == '-')) {
		*why = "no type letter";
		return -1;
	}
	p += 1;
	while (p < lend && is_space(*p))
		p++;
	const char *name = p;
	while (p < lend && !is_space(*p))
		p++;
	if (p == name) {
		*why = "no name";
		return -1;
	}
	if (!name_ok(name, (size_t)(p - name))) {
		*why = "the name has a byte that is not printable ASCII";
		return -1;
	}
	if (type == 'U' || type == 'w' || type == 'v')
		return 0;
	o->type = type;
	o->name = name;
	o->name_len = (size_t)(p - name);
	return 1;
}

/*
 * Parses a whole map held in a writable buffer: names get their NUL in
 * place of the blank or newline after them. buf[len] must exist (a name at
 * the very end of the buffer is terminated there).
 */
static int parse_map(struct kbu_symtab *st, const char *path, char *map, size_t len,
		     struct kbu_err *err)
{
	/* A map line is at least ~20 bytes: a first guess that avoids most regrowth. */
	if (reserve(st, len / 24 + 16))
		return kbu_err_set(err, KBU_ENOMEM, "%s: out of memory", path);
	size_t before = st->n, bad_before = st->bad_lines, lineno = 0;
	const char *end = map + len;
	char *line = map;
	while (line < end) {
		lineno++;
		char *nl = memchr(line, '\n', (size_t)(end - line));
		char *le = nl ? nl : (char *)end;
		struct map_line ml;
		const char *why = NULL;
		int r = parse_line(line, le, &ml, &why);
		if (r < 0)
			note_bad(st, path, lineno, line, le > line && le[-1] == '\r' ? le - 1 : le, why);
		if (r == 1) {
			char *name = (char *)ml.name;
			name[ml.name_len] = 0;
			if (st->n == st->cap && reserve(st, 1))
				return kbu_err_set(err, KBU_ENOMEM, "%s: out of memory for symbols", path);
			struct kbu_sym *o = &st->syms[st->n++];
			o->name = name;
			o->addr = ml.addr;
			o->size = ml.has_size ? ml.size : 0;
			o->type = ml.type;
			o->source = KBU_SYMSRC_MAP;
		}
		line = nl ? nl + 1 : (char *)end;
	}
	if (st->n == before) {
		size_t bad = st->bad_lines - bad_before;
		if (bad)
			return kbu_err_set(err, KBU_EFORMAT,
					   "%s: no symbols in nm format (%zu bad lines; first: %s)", path,
					   bad, st->first_bad);
		return kbu_err_set(err, KBU_EFORMAT, "%s: no symbols in it", path);
	}
	return 0;
}

/* A writable copy of a mapped map, one byte longer (see parse_map). */
static char *map_copy(struct kbu_symtab *st, const char *text, size_t len)
{
	char *copy = malloc(len + 1);
	if (!copy || add_blob(st, copy, len + 1, 0)) {
		free(copy);
		return NULL;
	}
	memcpy(copy, text, len);
	copy[len] = 0;
	return copy;
}

/*
 * Loading a map only maps it and checks that it holds a symbol: most runs ask
 * for a few names, and a name look-up needs no index (kbu_sym_by_name searches
 * the text). The first question that does (an address, a listing) parses the
 * map and builds the index then.
 */
int kbu_symtab_load_map(struct kbu_symtab *st, const char *path, struct kbu_err *err)
{
	static const struct kbu_map_words words = {
		.open = "cannot open symbol map", .dir = "is a directory, not a symbol map",
		.notreg = "not a regular file, not a symbol map", .empty = "empty symbol map",
		.map = "cannot map", .enoent_notfound = 1, .populate = 1,
	};
	void *mapped;
	size_t len;
	if (kbu_map_file(path, 0, &words, &mapped, &len, err) < 0)
		return -1;
	const char *map = mapped;
	if (len >= 4 && memcmp(map, "\x7f" "ELF", 4) == 0) {
		munmap(mapped, len);
		return kbu_err_set(err, KBU_EFORMAT,
				   "%s: is an ELF file, not an nm-format map (give it as --kernel)", path);
	}
	struct lazy_map *lm = calloc(1, sizeof(*lm) + strlen(path) + 1);
	if (!lm) {
		munmap(mapped, len);
		return kbu_err_set(err, KBU_ENOMEM, "%s: out of memory", path);
	}
	lm->text = map;
	lm->len = len;
	strcpy(lm->path, path);
	/* Is there a symbol at all? Usually the first line says. */
	const char *end = map + len, *line = map;
	int any = 0;
	while (line < end && !any) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		struct map_line ml;
		const char *why;
		any = parse_line(line, nl ? nl : end, &ml, &why) == 1;
		line = nl ? nl + 1 : end;
	}
	if (!any) {
		/* Parse it all for the message that says what the lines are. */
		char *copy = map_copy(st, map, len);
		munmap(mapped, len);
		free(lm);
		if (!copy)
			return kbu_err_set(err, KBU_ENOMEM, "%s: out of memory", path);
		size_t n0 = st->n;
		int rc = parse_map(st, path, copy, len, err);
		st->n = n0;
		return rc < 0 ? -1 : kbu_err_set(err, KBU_EFORMAT, "%s: no symbols in it", path);
	}
	unfinish(st);
	struct lazy_map **tail = &st->lazy;
	while (*tail)
		tail = &(*tail)->next;
	*tail = lm;
	st->lazy_count_known = 0;
	return 0;
}

/* Parses the maps that were only mapped so far; the index is built by finish. */
static int parse_lazy(struct kbu_symtab *st, struct kbu_err *err)
{
	while (st->lazy) {
		struct lazy_map *lm = st->lazy;
		char *copy = map_copy(st, lm->text, lm->len);
		if (!copy)
			return kbu_err_set(err, KBU_ENOMEM, "%s: out of memory", lm->path);
		if (parse_map(st, lm->path, copy, lm->len, err) < 0)
			return -1;
		st->lazy = lm->next;
		munmap((void *)lm->text, lm->len);
		free(lm);
	}
	return 0;
}

static int build_index(struct kbu_symtab *st, struct kbu_err *err);

/* The full index, for the questions a name look-up cannot answer. Called
 * through const pointers: the table is logically unchanged (it was never
 * defined const). */
static struct kbu_symtab *indexed(const struct kbu_symtab *cst)
{
	struct kbu_symtab *st = (struct kbu_symtab *)cst;
	if (!st || !st->finished)
		return NULL;
	if (!st->lazy)
		return st;
	struct kbu_err e;
	if (parse_lazy(st, &e) < 0 || (st->finished = 0, build_index(st, &e) < 0)) {
		/* Out of memory: what was parsed stays, unindexed tables answer nothing. */
		return NULL;
	}
	return st;
}

/* Address, then name, then ELF before map: duplicates end up side by side. */
static int sym_cmp(const void *a, const void *b)
{
	const struct kbu_sym *x = a, *y = b;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return (int)x->source - (int)y->source;
}

static uint64_t sym_end(const struct kbu_sym *s)
{
	uint64_t e = s->addr + s->size;
	return e < s->addr ? UINT64_MAX : e;
}

static uint32_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

/* Which family of sections an nm letter names, for size inference. */
static int letter_class(char t)
{
	switch (t | 0x20) {
	case 't': case 'w': return 1; /* code (weak symbols are nearly always code in kernels) */
	case 'd': case 'v': case 'g': return 2;
	case 'b': case 's': return 3;
	case 'r': case 'n': return 4;
	default: return 0; /* absolute, unknown: no inference */
	}
}

static int is_global(char t) { return t >= 'A' && t <= 'Z'; }
static int is_absolute(const struct kbu_sym *s) { return s->type == 'A' || s->type == 'a'; }

/* Among symbols at one address, the one to name it by: sized, global, from the ELF. */
static int better_alias(const struct kbu_sym *a, const struct kbu_sym *b)
{
	if ((a->size != 0) != (b->size != 0))
		return a->size != 0;
	if (is_global(a->type) != is_global(b->type))
		return is_global(a->type);
	/* _text, _stext, __per_cpu_start: section markers name an address worse than a function. */
	int ua = a->name[0] == '_', ub = b->name[0] == '_';
	if (ua != ub)
		return ub;
	return a->source < b->source;
}

static int alias_cmp(const void *a, const void *b)
{
	const struct kbu_sym *x = a, *y = b;
	if (better_alias(x, y))
		return -1;
	if (better_alias(y, x))
		return 1;
	return strcmp(x->name, y->name);
}

struct addr_key {
	uint64_t addr;
	uint64_t idx;
};

/*
 * Address order by LSD radix sort (bytes where every key agrees are skipped),
 * then name order inside each run of one address: qsort with string compares
 * over 100k+ symbols was most of the load time.
 */
static int sort_by_address(struct kbu_symtab *st)
{
	size_t n = st->n;
	struct addr_key *a = malloc(n * sizeof(*a)), *b = malloc(n * sizeof(*b));
	struct kbu_sym *out = malloc(n * sizeof(*out));
	if (!a || !b || !out) {
		free(a);
		free(b);
		free(out);
		return -1;
	}
	uint64_t all_and = ~0ull, all_or = 0;
	for (size_t i = 0; i < n; i++) {
		a[i].addr = st->syms[i].addr;
		a[i].idx = i;
		all_and &= a[i].addr;
		all_or |= a[i].addr;
	}
	for (unsigned shift = 0; shift < 64; shift += 8) {
		if ((((all_and ^ all_or) >> shift) & 0xff) == 0)
			continue; /* every key has the same byte here */
		size_t count[256] = {0};
		for (size_t i = 0; i < n; i++)
			count[(a[i].addr >> shift) & 0xff]++;
		size_t pos = 0;
		for (int d = 0; d < 256; d++) {
			size_t c = count[d];
			count[d] = pos;
			pos += c;
		}
		for (size_t i = 0; i < n; i++)
			b[count[(a[i].addr >> shift) & 0xff]++] = a[i];
		struct addr_key *t = a;
		a = b;
		b = t;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = st->syms[a[i].idx];
	free(a);
	free(b);
	free(st->syms);
	st->syms = out;
	st->cap = n;
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && out[j].addr == out[i].addr; j++)
			;
		if (j - i > 1)
			qsort(out + i, j - i, sizeof(*out), sym_cmp);
	}
	return 0;
}

int kbu_symtab_finish(struct kbu_symtab *st, struct kbu_err *err)
{
	if (st->finished)
		return 0;
	if (st->lazy && st->n == 0) {
		/* Maps only: names are looked up in their text until an index is needed. */
		st->finished = 1;
		return 0;
	}
	if (parse_lazy(st, err) < 0)
		return -1;
	return build_index(st, err);
}

static int build_index(struct kbu_symtab *st, struct kbu_err *err)
{
	if (st->finished)
		return 0;
	if (st->n > UINT32_MAX - 1)
		return kbu_err_set(err, KBU_EINVAL, "too many symbols (%zu)", st->n);
	if (st->n && sort_by_address(st) != 0)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory sorting %zu symbols", st->n);
	/* Dedup same name+address; the ELF one comes first and wins, a map size fills a gap. */
	size_t w = 0;
	for (size_t i = 0; i < st->n; i++) {
		if (w && st->syms[w - 1].addr == st->syms[i].addr &&
		    strcmp(st->syms[w - 1].name, st->syms[i].name) == 0) {
			if (!st->syms[w - 1].size)
				st->syms[w - 1].size = st->syms[i].size;
			continue;
		}
		st->syms[w++] = st->syms[i];
	}
	st->n = w;
	/* Map symbols without a size: up to the next higher symbol of the same kind. */
	size_t pending[5][64];
	size_t npend[5] = {0};
	for (size_t i = 0; i < st->n; i++) {
		struct kbu_sym *s = &st->syms[i];
		int k = letter_class(s->type);
		if (!k)
			continue;
		size_t keep = 0;
		for (size_t j = 0; j < npend[k]; j++) {
			struct kbu_sym *p = &st->syms[pending[k][j]];
			if (p->addr < s->addr)
				p->size = s->addr - p->addr;
			else
				pending[k][keep++] = pending[k][j];
		}
		npend[k] = keep;
		if (s->source == KBU_SYMSRC_MAP && s->size == 0 && npend[k] < 64)
			pending[k][npend[k]++] = i;
	}
	/* Aliases (one address, several names): the best name first. */
	for (size_t i = 0, j; i < st->n; i = j) {
		for (j = i + 1; j < st->n && st->syms[j].addr == st->syms[i].addr; j++)
			;
		if (j - i > 1)
			qsort(st->syms + i, j - i, sizeof(*st->syms), alias_cmp);
	}
	size_t hcap = 16;
	while (hcap < st->n * 2)
		hcap *= 2;
	size_t cnt = st->n ? st->n : 1;
	st->hash = calloc(hcap, sizeof(*st->hash));
	st->parent = malloc(cnt * sizeof(*st->parent));
	st->run = malloc(cnt * sizeof(*st->run));
	st->addrs = malloc(cnt * sizeof(*st->addrs));
	/* Open sized symbols, innermost on top: gives each address its enclosing symbol. */
	uint32_t *stack = malloc(cnt * sizeof(*stack));
	if (!st->hash || !st->parent || !st->run || !st->addrs || !stack) {
		free(stack);
		unfinish(st);
		return kbu_err_set(err, KBU_ENOMEM, "out of memory for the index of %zu symbols", st->n);
	}
	st->hmask = hcap - 1;
	size_t depth = 0;
	for (size_t i = 0; i < st->n; i++) {
		const struct kbu_sym *s = &st->syms[i];
		st->addrs[i] = s->addr;
		uint32_t h = name_hash(s->name);
		size_t j = h & st->hmask;
		while (st->hash[j].idx1)
			j = (j + 1) & st->hmask;
		st->hash[j].idx1 = (uint32_t)i + 1;
		st->hash[j].hash = h;
		if (i && st->syms[i - 1].addr == s->addr) {
			st->run[i] = st->run[i - 1];
			st->parent[i] = st->parent[i - 1];
		} else {
			st->run[i] = (uint32_t)i;
			while (depth && sym_end(&st->syms[stack[depth - 1]]) <= s->addr)
				depth--;
			st->parent[i] = depth ? stack[depth - 1] + 1 : 0;
		}
		if (s->size)
			stack[depth++] = (uint32_t)i;
	}
	free(stack);
	st->finished = 1;
	return 0;
}

struct kbu_symtab *kbu_symtab_slid(const struct kbu_symtab *lsrc, int64_t slide,
				   struct kbu_err *err)
{
	const struct kbu_symtab *src = indexed(lsrc);
	if (!src || !src->finished)
		return kbu_err_set(err, KBU_EINVAL, "symbol table not finished"), NULL;
	struct kbu_symtab *st = kbu_symtab_new();
	size_t names = 0;
	for (size_t i = 0; i < src->n; i++)
		names += strlen(src->syms[i].name) + 1;
	char *blob = malloc(names ? names : 1);
	if (st && blob && add_blob(st, blob, names, 0) < 0) {
		free(blob);
		blob = NULL;
	}
	if (!st || !blob || reserve(st, src->n) < 0) {
		if (!st)
			free(blob);
		kbu_symtab_free(st); /* frees blob once it is registered */
		return kbu_err_set(err, KBU_ENOMEM, "out of memory copying %zu symbols", src->n),
		       NULL;
	}
	char *w = blob;
	for (size_t i = 0; i < src->n; i++) {
		struct kbu_sym s = src->syms[i];
		size_t len = strlen(s.name) + 1;
		memcpy(w, s.name, len);
		s.name = w;
		w += len;
		/* absolute symbols do not move with the kernel */
		if (s.type != 'A' && s.type != 'a')
			s.addr += (uint64_t)slide;
		st->syms[st->n++] = s;
	}
	if (kbu_symtab_finish(st, err) < 0) {
		kbu_symtab_free(st);
		return NULL;
	}
	return st;
}

/*
 * The line System.map is made of, "<16 hex digits> <letter> <name>\n",
 * checked in one pass over its bytes (no separate search for the newline):
 * 1 with *ml and *next set; 0 for any other line (parse_line decides those).
 */
/* Hex digit values, 0xff for anything else: a table, since the count pass
 * reads 16 of them for each of ~90k lines. */
struct hex_table {
	uint8_t v[256];
};

static void hex_table_init(struct hex_table *t)
{
	memset(t->v, 0xff, sizeof(t->v));
	for (int c = 0; c < 256; c++)
		if (kbu_hex_digit(c) >= 0)
			t->v[c] = (uint8_t)kbu_hex_digit(c);
}

/* Nonzero if a byte of the 8 in x is <= 0x20 or >= 0x7f (not a name byte). */
static uint64_t bad_name_bytes(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t low = (x - ones * 0x21) & ~x & highs;        /* a byte < 0x21 */
	uint64_t high = ((x + ones * (0x80 - 0x7f)) | x) & highs; /* a byte >= 0x7f */
	return low | high;
}

/* "ADDRESS16 T ": 16 hex digits, a blank, a symbol's type letter (not an
 * undefined one), a blank; the name starts at column 19. 1 with the address. */
static int canonical_head(const struct hex_table *hx, const char *p, const char *end, uint64_t *addr)
{
	if (end - p < 19 || p[16] != ' ' || p[18] != ' ')
		return 0;
	uint64_t v = 0;
	unsigned bad = 0;
	for (int i = 0; i < 16; i++) {
		uint8_t d = hx->v[(unsigned char)p[i]];
		bad |= d;
		v = v << 4 | (d & 15);
	}
	char t = p[17];
	if ((bad & 0xf0) || !((t >= 'A' && t <= 'Z') || (t >= 'a' && t <= 'z')) || t == 'U' ||
	    t == 'w' || t == 'v')
		return 0;
	*addr = v;
	return 1;
}

static int canonical_line(const struct hex_table *hx, const char *p, const char *end,
			  struct map_line *ml, const char **next)
{
	uint64_t v;
	if (end - p < 21 || !canonical_head(hx, p, end, &v))
		return 0;
	const char *name = p + 19;
	const char *nl = memchr(name, '\n', (size_t)(end - name));
	if (!nl || nl == name)
		return 0;
	char t = p[17];
	/* The name, 8 bytes at a time: any blank, control or non-ASCII byte sends
	 * the line to parse_line. */
	const char *q = name;
	uint64_t badbytes = 0;
	for (; nl - q >= 8; q += 8) {
		uint64_t x;
		memcpy(&x, q, 8);
		badbytes |= bad_name_bytes(x);
	}
	for (; q < nl; q++)
		badbytes |= (unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f;
	if (badbytes)
		return 0;
	ml->addr = v;
	ml->size = 0;
	ml->has_size = 0;
	ml->type = t;
	ml->name = name;
	ml->name_len = (size_t)(nl - name);
	*next = nl + 1;
	return 1;
}

/*
 * The number of symbols of a lazy map without parsing it into the table: one
 * pass over its lines, duplicates (same name at the same address) counted
 * once as the index would. Needs the map sorted by address (System.map and
 * nm -n are); otherwise, or with several maps, the index says.
 */
static int lazy_count(struct kbu_symtab *st, size_t *out)
{
	if (st->lazy_count_known) {
		*out = st->lazy_count;
		return 0;
	}
	if (!st->lazy || st->lazy->next)
		return -1;
	const char *end = st->lazy->text + st->lazy->len, *line = st->lazy->text;
	size_t n = 0, lineno = 0, bad = 0;
	enum { RUN = 64 };
	struct map_line run[RUN];
	size_t nrun = 0;
	uint64_t last = 0;
	struct hex_table hx;
	hex_table_init(&hx);
	while (line < end) {
		struct map_line ml;
		const char *next;
		lineno++;
		int r = canonical_line(&hx, line, end, &ml, &next);
		if (!r) {
			const char *nl = memchr(line, '\n', (size_t)(end - line));
			const char *le = nl ? nl : end, *why = NULL;
			r = parse_line(line, le, &ml, &why);
			if (r < 0 && bad++ == 0) {
				/* As parse_map words it, so the warning is the same either way. */
				char shown[4 * 60 + 1];
				if (le > line && le[-1] == '\r')
					le--;
				kbu_escape(line, (size_t)(le - line > 60 ? 60 : le - line), NULL, shown,
					   sizeof(shown));
				snprintf(st->lazy_first_bad, sizeof(st->lazy_first_bad), "%s:%zu: %s: '%s'",
					 st->lazy->path, lineno, why, shown);
			}
			r = r == 1;
			next = nl ? nl + 1 : end;
		}
		if (r) {
			if (n && ml.addr < last)
				return -1; /* not sorted */
			if (!n || ml.addr != last)
				nrun = 0;
			int dup = 0;
			for (size_t k = 0; k < nrun && !dup; k++)
				dup = run[k].name_len == ml.name_len &&
				      memcmp(run[k].name, ml.name, ml.name_len) == 0;
			if (nrun == RUN)
				return -1; /* a run this long: let the index count it */
			if (!dup) {
				run[nrun++] = ml;
				n++;
			}
			last = ml.addr;
		}
		line = next;
	}
	st->lazy_count = n;
	st->lazy_bad = bad;
	st->lazy_count_known = 1;
	*out = n;
	return 0;
}

size_t kbu_symtab_count(const struct kbu_symtab *cst)
{
	struct kbu_symtab *st = (struct kbu_symtab *)cst;
	if (!st)
		return 0;
	size_t n;
	if (st->finished && st->lazy && lazy_count(st, &n) == 0)
		return n;
	st = indexed(cst);
	return st ? st->n : 0;
}

const struct kbu_sym *kbu_symtab_at(const struct kbu_symtab *cst, size_t i)
{
	const struct kbu_symtab *st = indexed(cst);
	return st && i < st->n ? &st->syms[i] : NULL;
}

const char *kbu_symtab_why_empty(const struct kbu_symtab *st)
{
	if (!st || st->n || st->lazy)
		return NULL;
	return st->why_empty[0] ? st->why_empty : "no symbols loaded";
}

size_t kbu_symtab_bad_lines(const struct kbu_symtab *cst, const char **first)
{
	struct kbu_symtab *lst = (struct kbu_symtab *)cst;
	size_t n;
	if (lst && lst->finished && lst->lazy && lazy_count(lst, &n) == 0) {
		/* Counted while counting the symbols: no index needed. */
		if (first)
			*first = lst->bad_lines ? lst->first_bad
			       : lst->lazy_bad ? lst->lazy_first_bad : NULL;
		return lst->bad_lines + lst->lazy_bad;
	}
	const struct kbu_symtab *st = indexed(cst);
	if (!st)
		st = cst;
	if (first)
		*first = st && st->bad_lines ? st->first_bad : NULL;
	return st ? st->bad_lines : 0;
}

/* Which family of sections an nm letter names, for size inference. */
static int letter_class(char t);
static int is_global(char t);

/*
 * The size a map symbol gets in the index: up to the next higher symbol of
 * the same kind. In a sorted map that is a few lines further on; an address
 * that goes down first means the map is not sorted, and the size stays
 * unknown (0) rather than wrong.
 */
static int lazy_count(struct kbu_symtab *st, size_t *out);

static uint64_t lazy_size(const char *from, const char *end, const struct map_line *sym)
{
	int k = letter_class(sym->type);
	if (!k)
		return 0;
	uint64_t prev = sym->addr;
	const char *line = from;
	for (int lines = 0; line < end && lines < 4096; lines++) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		struct map_line ml;
		const char *why;
		if (parse_line(line, nl ? nl : end, &ml, &why) == 1) {
			if (ml.addr < prev)
				return 0;
			prev = ml.addr;
			if (ml.addr > sym->addr && letter_class(ml.type) == k)
				return ml.addr - sym->addr;
		}
		line = nl ? nl + 1 : end;
	}
	return 0;
}

/*
 * A name look-up in the maps' text: every place the name stands as a whole
 * word at the end of a line, checked as a symbol line. The answer is the one
 * the index would give: a global symbol before a local one, the lowest
 * address first. Kept, so the pointer stays valid and a second look-up is free.
 */
/* What a lazy look-up gathers: the symbol it will answer and how many share
 * the name (at distinct addresses, as the index keeps them). */
struct lazy_find {
	struct map_line best;
	const char *best_next, *best_end;
	int have, counted;
	size_t nseen;
	uint64_t seen[32];
};

/* One line that parsed as the symbol sought: the global one wins, then the
 * lowest address. */
static void lazy_consider(struct lazy_find *f, const struct map_line *ml, const char *next,
			  const char *end)
{
	size_t k = 0;
	while (k < f->nseen && f->seen[k] != ml->addr)
		k++;
	if (k == f->nseen && f->nseen < sizeof(f->seen) / sizeof(f->seen[0]))
		f->seen[f->nseen++] = ml->addr;
	else if (k == f->nseen)
		f->counted = 0;
	if (!f->have || (is_global(ml->type) && !is_global(f->best.type)) ||
	    (is_global(ml->type) == is_global(f->best.type) && ml->addr < f->best.addr)) {
		f->best = *ml;
		f->best_next = next;
		f->best_end = end;
		f->have = 1;
	}
}

static uint32_t name_hash_n(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

/* The lines of one map that name the symbol. */
static void lazy_find_in(struct lazy_map *lm, const char *name, size_t nlen, struct lazy_find *f)
{
	const char *text = lm->text, *end = text + lm->len;
	for (const char *p = text; (p = memmem(p, (size_t)(end - p), name, nlen)) != NULL;) {
		const char *after = p + nlen;
		int word = p > text && is_space(p[-1]) &&
			   (after == end || *after == '\n' || *after == '\r' || is_space(*after));
		if (!word) {
			p++;
			continue;
		}
		const char *ls = p;
		while (ls > text && ls[-1] != '\n')
			ls--;
		const char *nl = memchr(after, '\n', (size_t)(end - after)), *why;
		const char *le = nl ? nl : end;
		struct map_line ml;
		if (parse_line(ls, le, &ml, &why) == 1 && ml.name == p)
			lazy_consider(f, &ml, nl ? nl + 1 : end, end);
		p = le;
	}
}

static const struct kbu_sym *lazy_answer(struct kbu_symtab *st, const char *name, size_t nlen,
					 const struct lazy_find *f);

static const struct lazy_hit *lazy_known(const struct kbu_symtab *st, const char *name)
{
	for (const struct lazy_hit *h = st->hits; h; h = h->next)
		if (strcmp(h->name, name) == 0)
			return h;
	return NULL;
}

static const struct kbu_sym *lazy_by_name(struct kbu_symtab *st, const char *name)
{
	size_t nlen = strlen(name);
	const struct lazy_hit *known = lazy_known(st, name);
	if (known)
		return known->sym.name ? &known->sym : NULL;
	if (nlen == 0 || !name_ok(name, nlen))
		return NULL;
	struct lazy_find f = {.counted = 1};
	for (struct lazy_map *lm = st->lazy; lm; lm = lm->next)
		lazy_find_in(lm, name, nlen, &f);
	return lazy_answer(st, name, nlen, &f);
}

/* Keeps what a look-up found (or that nothing was) for the next asker. */
static const struct kbu_sym *lazy_answer(struct kbu_symtab *st, const char *name, size_t nlen,
					 const struct lazy_find *fp)
{
	if (!st->lazy) /* indexed since (an earlier answer needed it) */
		return kbu_sym_by_name(st, name);
	const struct lazy_find f = *fp;
	size_t count;
	/* A size of 0 from nm -S is no size: the index infers one too. */
	int sized = f.best.has_size && f.best.size != 0;
	if (f.have && !sized && st->lazy_sorted != 1 && lazy_count(st, &count) < 0) {
		/* The size comes from the next symbol up; only a sorted map shows it
		 * without the index. */
		const struct kbu_symtab *ix = indexed(st);
		return ix ? kbu_sym_by_name(ix, name) : NULL;
	}
	struct lazy_hit *h = calloc(1, sizeof(*h) + nlen + 1);
	if (!h)
		return NULL;
	memcpy(h->name, name, nlen + 1);
	if (f.have) {
		h->sym.name = h->name;
		h->sym.addr = f.best.addr;
		h->sym.size = sized ? f.best.size : lazy_size(f.best_next, f.best_end, &f.best);
		h->sym.type = f.best.type;
		h->sym.source = KBU_SYMSRC_MAP;
		h->count = f.counted && !st->lazy->next ? f.nseen : 0;
	}
	h->next = st->hits;
	st->hits = h;
	return f.have ? &h->sym : NULL;
}

/* The bit a line's first three name bytes select in a prefetch filter. */
static unsigned prefix_bit(const char *p)
{
	return ((unsigned char)p[0] * 961u + (unsigned char)p[1] * 31u + (unsigned char)p[2]) & 0xffff;
}

void kbu_sym_prefetch(const struct kbu_symtab *cst, const char *const *names, size_t n)
{
	struct kbu_symtab *st = (struct kbu_symtab *)cst;
	if (!st || !st->finished || !st->lazy || n < 2)
		return;
	struct want {
		const char *name;
		size_t len;
		struct lazy_find f;
	} *want = calloc(n, sizeof(*want));
	size_t cap = 16;
	while (cap < n * 4)
		cap <<= 1;
	uint32_t *set = calloc(cap, sizeof(*set)); /* index into want + 1 */
	uint8_t *filter = calloc(0x10000 / 8, 1);
	if (!want || !set || !filter)
		goto out;
	size_t nw = 0;
	int every_line = 0;
	for (size_t i = 0; i < n; i++) {
		const char *name = names[i];
		size_t len = name ? strlen(name) : 0;
		if (!len || !name_ok(name, len) || lazy_known(st, name))
			continue;
		size_t j = name_hash_n(name, len) & (cap - 1);
		int dup = 0;
		for (; set[j]; j = (j + 1) & (cap - 1))
			dup |= want[set[j] - 1].len == len && memcmp(want[set[j] - 1].name, name, len) == 0;
		if (dup)
			continue;
		want[nw] = (struct want){.name = name, .len = len, .f = {.counted = 1}};
		set[j] = (uint32_t)++nw;
		if (len < 3)
			every_line = 1;
		else
			filter[prefix_bit(name) >> 3] |= (uint8_t)(1u << (prefix_bit(name) & 7));
	}
	struct hex_table hx;
	hex_table_init(&hx);
	/* On the way, whether the map is in address order: what a size inferred
	 * from the next line needs. A line counted here that a full parse would
	 * skip can only make it "not sorted": the safe side. */
	int sorted = nw && !st->lazy->next;
	uint64_t last = 0;
	for (struct lazy_map *lm = st->lazy; nw && lm; lm = lm->next) {
		const char *line = lm->text, *end = lm->text + lm->len;
		while (line < end) {
			const char *nl = memchr(line, '\n', (size_t)(end - line));
			const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
			int sym = 0;
			/* "ADDRESS16 T name": the name starts at column 19, and only a
			 * line whose first name bytes pass the filter is parsed. */
			uint64_t v;
			if (le - line >= 22 && !is_space(line[19]) && canonical_head(&hx, line, le, &v)) {
				sym = 1;
				sorted &= v >= last;
				last = v;
				unsigned b = prefix_bit(line + 19);
				if (!every_line && !(filter[b >> 3] & (1u << (b & 7)))) {
					line = next;
					continue;
				}
			}
			struct map_line ml;
			const char *why;
			int r = parse_line(line, le, &ml, &why);
			if (r == 1 && !sym) {
				sorted &= ml.addr >= last;
				last = ml.addr;
			}
			if (r == 1) {
				size_t j = name_hash_n(ml.name, ml.name_len) & (cap - 1);
				for (; set[j]; j = (j + 1) & (cap - 1)) {
					struct want *w = &want[set[j] - 1];
					if (w->len == ml.name_len && memcmp(w->name, ml.name, w->len) == 0) {
						lazy_consider(&w->f, &ml, next, end);
						break;
					}
				}
			}
			line = next;
		}
	}
	if (sorted)
		st->lazy_sorted = 1;
	for (size_t i = 0; i < nw && st->lazy; i++)
		lazy_answer(st, want[i].name, want[i].len, &want[i].f);
out:
	free(want);
	free(set);
	free(filter);
}

const struct kbu_sym *kbu_sym_by_name(const struct kbu_symtab *st, const char *name)
{
	if (!st || !st->finished || !name)
		return NULL;
	if (st->lazy)
		return lazy_by_name((struct kbu_symtab *)st, name);
	uint32_t h = name_hash(name);
	const struct kbu_sym *best = NULL;
	for (size_t j = h & st->hmask; st->hash[j].idx1; j = (j + 1) & st->hmask) {
		if (st->hash[j].hash != h)
			continue;
		const struct kbu_sym *s = &st->syms[st->hash[j].idx1 - 1];
		if (strcmp(s->name, name) != 0)
			continue;
		/* Inserted in address order: the first is the lowest; a global one wins. */
		if (!best || (is_global(s->type) && !is_global(best->type)))
			best = s;
		if (is_global(best->type))
			break;
	}
	return best;
}

size_t kbu_sym_name_count(const struct kbu_symtab *cst, const char *name)
{
	struct kbu_symtab *lst = (struct kbu_symtab *)cst;
	if (lst && lst->finished && lst->lazy && lst->n == 0 && name) {
		/* One map not parsed yet: the name look-up counted them on its way. */
		if (!lazy_by_name(lst, name))
			return 0;
		const struct lazy_hit *h = lazy_known(lst, name);
		if (h && h->count)
			return h->count;
	}
	const struct kbu_symtab *st = indexed(cst);
	if (!st || !name)
		return 0;
	uint32_t h = name_hash(name);
	size_t n = 0;
	for (size_t j = h & st->hmask; st->hash[j].idx1; j = (j + 1) & st->hmask)
		if (st->hash[j].hash == h && strcmp(st->syms[st->hash[j].idx1 - 1].name, name) == 0)
			n++;
	return n;
}

const struct kbu_sym *kbu_sym_by_addr(const struct kbu_symtab *cst, uint64_t addr, uint64_t *off)
{
	const struct kbu_symtab *st = indexed(cst);
	if (!st || !st->n || addr < st->syms[0].addr)
		return NULL;
	/* Last symbol with sym.addr <= addr. */
	size_t lo = 0, hi = st->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (st->addrs[mid] <= addr)
			lo = mid;
		else
			hi = mid;
	}
	/* The nearest sized symbol containing addr: among the aliases at lo (best
	 * first, sized ones before unsized), else up the chain of enclosing ones.
	 * Absolute symbols are constants, not places: they never name an address. */
	const struct kbu_sym *best = NULL;
	size_t first = st->run[lo];
	for (int steps = 0; steps < 64 && !best; steps++) {
		for (size_t i = first; i < st->n && st->syms[i].addr == st->syms[first].addr &&
				       st->syms[i].size; i++)
			if (addr - st->syms[i].addr < st->syms[i].size && !is_absolute(&st->syms[i])) {
				best = &st->syms[i];
				break;
			}
		if (!st->parent[first])
			break;
		first = st->run[st->parent[first] - 1];
	}
	for (size_t i = lo + 1; !best && i-- > 0;)
		if (!is_absolute(&st->syms[st->run[i]]))
			best = &st->syms[st->run[i]];
	if (!best)
		return NULL;
	if (off)
		*off = addr - best->addr;
	return best;
}

const char *kbu_sym_format(const struct kbu_symtab *st, uint64_t addr, char *buf, size_t len)
{
	uint64_t off = 0;
	const struct kbu_sym *s = kbu_sym_by_addr(st, addr, &off);
	if (!len)
		return buf;
	if (!s || (s->size && off >= s->size))
		snprintf(buf, len, "0x%llx", (unsigned long long)addr);
	else if (off)
		snprintf(buf, len, "%s+0x%llx", s->name, (unsigned long long)off);
	else
		snprintf(buf, len, "%s", s->name);
	return buf;
}
