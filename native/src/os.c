/* kbu OS profiles: INI parsing, built-in profiles, detection from symbols. */
#include "kbu/os.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kbu/elf.h"
#include "kbu/symbols.h"
#include "kbu/xen.h"

/*
 * The built-in profiles: the files profiles/NAME.ini, compiled in as they are written
 * (native/gen/profiles.awk makes os_profiles.h from them at build time), so
 * a user's profile file reads like these and there is one text to change.
 */
#include "os_profiles.h"

#define NBUILTIN (sizeof(builtins) / sizeof(builtins[0]))
#define OS_MAX_ENTRIES 512
#define OS_MAX_LINE 1024

struct os_entry {
	char *section;
	char *key;
	char *value;
};

struct kbu_os_profile {
	char *origin;
	const char *name;
	struct os_entry *e;
	size_t n;
};

size_t kbu_os_builtin_count(void) { return NBUILTIN; }

const char *kbu_os_builtin_name(size_t i) { return i < NBUILTIN ? builtins[i].name : NULL; }

const char *kbu_os_builtin_text(size_t i) { return i < NBUILTIN ? builtins[i].text : NULL; }

void kbu_os_free(struct kbu_os_profile *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->e[i].section);
		free(p->e[i].key);
		free(p->e[i].value);
	}
	free(p->e);
	free(p->origin);
	free(p);
}

static char *trim(char *s)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	return s;
}

static int valid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return 0;
	return 1;
}

struct kbu_os_profile *kbu_os_parse(const char *text, const char *origin, struct kbu_err *err)
{
	struct kbu_os_profile *p = calloc(1, sizeof(*p));
	char section[128] = "";
	char line[OS_MAX_LINE];
	int lineno = 0;

	if (!p || !(p->e = calloc(OS_MAX_ENTRIES, sizeof(*p->e))) ||
	    !(p->origin = strdup(origin ? origin : "profile"))) {
		kbu_os_free(p);
		kbu_err_set(err, KBU_ENOMEM, "out of memory parsing profile %s", origin);
		return NULL;
	}
	for (const char *s = text; s && *s;) {
		const char *eol = strchr(s, '\n');
		size_t len = eol ? (size_t)(eol - s) : strlen(s);
		lineno++;
		if (len >= sizeof(line)) {
			kbu_err_set(err, KBU_EFORMAT, "%s:%d: line longer than %d bytes", p->origin,
				    lineno, OS_MAX_LINE - 1);
			goto fail;
		}
		memcpy(line, s, len);
		line[len] = 0;
		s = eol ? eol + 1 : NULL;

		char *l = trim(line);
		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *close = strchr(l, ']');
			if (!close || close[1]) {
				kbu_err_set(err, KBU_EFORMAT, "%s:%d: section header without ']': %s",
					    p->origin, lineno, l);
				goto fail;
			}
			*close = 0;
			char *name = trim(l + 1);
			if (!valid_name(name) || strlen(name) >= sizeof(section)) {
				kbu_err_set(err, KBU_EFORMAT, "%s:%d: bad section name '%s'",
					    p->origin, lineno, name);
				goto fail;
			}
			strcpy(section, name);
			continue;
		}
		char *eq = strchr(l, '=');
		if (!eq) {
			kbu_err_set(err, KBU_EFORMAT, "%s:%d: expected 'key = value', got '%s'",
				    p->origin, lineno, l);
			goto fail;
		}
		*eq = 0;
		char *key = trim(l), *val = trim(eq + 1);
		if (!*section) {
			kbu_err_set(err, KBU_EFORMAT, "%s:%d: key '%s' before any [section]",
				    p->origin, lineno, key);
			goto fail;
		}
		if (!valid_name(key)) {
			kbu_err_set(err, KBU_EFORMAT, "%s:%d: bad key '%s'", p->origin, lineno, key);
			goto fail;
		}
		if (kbu_os_get(p, section, key)) {
			kbu_err_set(err, KBU_EFORMAT, "%s:%d: [%s] %s given twice", p->origin, lineno,
				    section, key);
			goto fail;
		}
		if (p->n >= OS_MAX_ENTRIES) {
			kbu_err_set(err, KBU_EFORMAT, "%s:%d: more than %d keys", p->origin, lineno,
				    OS_MAX_ENTRIES);
			goto fail;
		}
		struct os_entry *e = &p->e[p->n];
		e->section = strdup(section);
		e->key = strdup(key);
		e->value = strdup(val);
		p->n++;
		if (!e->section || !e->key || !e->value) {
			kbu_err_set(err, KBU_ENOMEM, "out of memory parsing profile %s", p->origin);
			goto fail;
		}
	}
	p->name = kbu_os_get(p, "profile", "name");
	if (!p->name || !valid_name(p->name)) {
		kbu_err_set(err, KBU_EFORMAT, "%s: [profile] name missing or invalid", p->origin);
		goto fail;
	}
	return p;
fail:
	kbu_os_free(p);
	return NULL;
}

struct kbu_os_profile *kbu_os_load_file(const char *path, struct kbu_err *err)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		kbu_err_set(err, KBU_EIO, "cannot open profile %s: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 64 * 1024, n;
	char *buf = malloc(cap + 1);
	if (!buf) {
		fclose(f);
		kbu_err_set(err, KBU_ENOMEM, "out of memory reading profile %s", path);
		return NULL;
	}
	n = fread(buf, 1, cap, f);
	int more = fgetc(f) != EOF, bad = ferror(f);
	fclose(f);
	if (bad || more) {
		free(buf);
		kbu_err_set(err, bad ? KBU_EIO : KBU_EFORMAT, "profile %s: %s", path,
			    bad ? "read error" : "larger than 64 KiB");
		return NULL;
	}
	buf[n] = 0;
	if (memchr(buf, 0, n)) {
		free(buf);
		kbu_err_set(err, KBU_EFORMAT, "profile %s: contains a NUL byte (not a text file)", path);
		return NULL;
	}
	struct kbu_os_profile *p = kbu_os_parse(buf, path, err);
	free(buf);
	return p;
}

struct kbu_os_profile *kbu_os_builtin(const char *name, struct kbu_err *err)
{
	for (size_t i = 0; i < NBUILTIN; i++)
		if (name && strcmp(name, builtins[i].name) == 0) {
			struct kbu_os_profile *p = kbu_os_parse(builtins[i].text, "built-in", err);
			if (p)
				return p;
			return NULL;
		}
	kbu_err_set(err, KBU_ENOTFOUND, "no built-in profile '%s' (known: freebsd, netbsd, linux)",
		    name ? name : "");
	return NULL;
}

const char *kbu_os_name(const struct kbu_os_profile *p) { return p->name; }

const char *kbu_os_origin(const struct kbu_os_profile *p) { return p->origin; }

const char *kbu_os_get(const struct kbu_os_profile *p, const char *section, const char *key)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->e[i].section, section) == 0 && strcmp(p->e[i].key, key) == 0)
			return p->e[i].value;
	return NULL;
}

const char *kbu_os_role(const struct kbu_os_profile *p, const char *role)
{
	const char *v = kbu_os_get(p, "roles", role);
	return v && *v ? v : NULL;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

uint64_t kbu_os_role_num(const struct kbu_os_profile *p, const char *role, uint64_t def)
{
	uint64_t v;
	return parse_u64(kbu_os_role(p, role), &v) == 0 ? v : def;
}

/* The i-th word of s into buf; NULL past the end or if it does not fit. */
static const char *nth_word(const char *s, size_t i, char *buf, size_t len)
{
	if (!s || !len)
		return NULL;
	for (size_t k = 0;; k++) {
		while (*s && isspace((unsigned char)*s))
			s++;
		if (!*s)
			return NULL;
		const char *w = s;
		while (*s && !isspace((unsigned char)*s))
			s++;
		if (k == i) {
			size_t n = (size_t)(s - w);
			if (n >= len)
				return NULL;
			memcpy(buf, w, n);
			buf[n] = 0;
			return buf;
		}
	}
}

const char *kbu_os_role_word(const struct kbu_os_profile *p, const char *role, size_t i,
			     char *buf, size_t len)
{
	return nth_word(kbu_os_role(p, role), i, buf, len);
}

int kbu_os_role_has(const struct kbu_os_profile *p, const char *role, const char *name)
{
	char w[128];
	for (size_t i = 0; kbu_os_role_word(p, role, i, w, sizeof(w)); i++)
		if (strcmp(w, name) == 0)
			return 1;
	return 0;
}

int kbu_os_field(const struct kbu_os_profile *p, const char *layout, const char *field,
		 struct kbu_os_field *out, struct kbu_err *err)
{
	char section[160], off[32], size[32];
	snprintf(section, sizeof(section), "layout.%s", layout);
	const char *v = kbu_os_get(p, section, field);
	if (!v)
		return kbu_err_set(err, KBU_ENOTFOUND, "profile %s (%s) has no [%s] %s", p->name,
				   p->origin, section, field);
	uint64_t o, s;
	if (!nth_word(v, 0, off, sizeof(off)) || !nth_word(v, 1, size, sizeof(size)) ||
	    parse_u64(off, &o) || parse_u64(size, &s) || o > 0x100000 || s > 8)
		return kbu_err_set(err, KBU_EFORMAT,
				   "profile %s (%s): [%s] %s = '%s': expected 'OFFSET SIZE [NAME]' "
				   "with SIZE 0..8", p->name, p->origin, section, field, v);
	out->offset = o;
	out->size = (uint32_t)s;
	/* The C name is the rest of the line after the two numbers. */
	const char *c = v;
	for (int k = 0; k < 2; k++) {
		while (*c && isspace((unsigned char)*c))
			c++;
		while (*c && !isspace((unsigned char)*c))
			c++;
	}
	while (*c && isspace((unsigned char)*c))
		c++;
	out->cname = c;
	return 0;
}

int kbu_os_layout_num(const struct kbu_os_profile *p, const char *layout, const char *key,
		      uint64_t *out, struct kbu_err *err)
{
	char section[160];
	snprintf(section, sizeof(section), "layout.%s", layout);
	const char *v = kbu_os_get(p, section, key);
	if (!v)
		return kbu_err_set(err, KBU_ENOTFOUND, "profile %s (%s) has no [%s] %s", p->name,
				   p->origin, section, key);
	if (parse_u64(v, out))
		return kbu_err_set(err, KBU_EFORMAT, "profile %s (%s): [%s] %s = '%s' is not a number",
				   p->name, p->origin, section, key, v);
	return 0;
}

/*
 * The roles whose words are kernel symbols. The first ones are what every
 * kernel of the OS has and identification weighs; the others are looked up
 * when a rule needs them (a kernel built without its MP-table reader is
 * still that OS).
 */
static const struct {
	const char *role;
	int weighed;
} symbol_roles[] = {
	{"x2apic", 1}, {"timesource", 1}, {"timesource_list", 1}, {"time_register", 1},
	{"asserts", 1}, {"msgbuf", 1}, {"start_info", 1}, {"ncpus", 1}, {"panicstr", 1},
	{"tsc_freq", 0}, {"idle", 0}, {"mp_parser", 0}, {"mp_table", 0},
	{"devices_cmdline", 0}, {"devices_acpi", 0},
	{"cpuid_max", 0}, {"cpuid_hv_max", 0}, {"cpuid_1_ecx", 0},
};

const char *kbu_os_symbol_role(size_t i, int *weighed)
{
	if (i >= sizeof(symbol_roles) / sizeof(symbol_roles[0]))
		return NULL;
	if (weighed)
		*weighed = symbol_roles[i].weighed;
	return symbol_roles[i].role;
}

static void append(char *buf, size_t len, const char *fmt, const char *a, const char *b)
{
	size_t n = strlen(buf);
	if (n + 1 < len)
		snprintf(buf + n, len - n, fmt, a, b);
}

/* 1 if any word of the space-separated list equals s (case-insensitive when ci). */
static int list_has(const char *list, const char *s, int ci)
{
	char w[128];
	for (size_t i = 0; nth_word(list, i, w, sizeof(w)); i++)
		if (ci ? strcasecmp(w, s) == 0 : strcmp(w, s) == 0)
			return 1;
	return 0;
}

void kbu_os_score(const struct kbu_os_profile *p, const struct kbu_os_evidence *ev,
		  struct kbu_os_candidate *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", p->name);
	const struct kbu_symtab *st = ev ? ev->syms : NULL;
	char w[128];
	const char *role;
	int weighed;
	for (size_t r = 0; (role = kbu_os_symbol_role(r, &weighed)) != NULL; r++) {
		if (!weighed || !kbu_os_role(p, role))
			continue;
		c->roles_named++;
		int found = 0;
		for (size_t i = 0; !found && kbu_os_role_word(p, role, i, w, sizeof(w)); i++)
			found = st && kbu_sym_by_name(st, w) != NULL;
		if (found) {
			c->roles_resolved++;
		} else {
			append(c->missing, sizeof(c->missing), "%s%s", *c->missing ? ", " : "", role);
		}
	}
	const char *markers = kbu_os_get(p, "profile", "markers");
	for (size_t i = 0; nth_word(markers, i, w, sizeof(w)); i++) {
		c->markers_named++;
		if (st && kbu_sym_by_name(st, w))
			c->markers_found++;
	}
	const struct kbu_elf *e = ev ? ev->elf : NULL;
	if (e) {
		uint64_t abi;
		if (kbu_elf_osabi(e) != 0 &&
		    parse_u64(kbu_os_get(p, "profile", "elf_osabi"), &abi) == 0 &&
		    abi == (uint64_t)kbu_elf_osabi(e))
			c->named_by |= KBU_OS_BY_OSABI;
		const char *gos = kbu_os_get(p, "profile", "xen_guest_os");
		const char *owner = kbu_os_get(p, "profile", "note_owner");
		for (size_t i = 0; i < kbu_elf_nnotes(e); i++) {
			const struct kbu_note *n = kbu_elf_note(e, i);
			if (!n->owner)
				continue;
			if (owner && list_has(owner, n->owner, 0))
				c->named_by |= KBU_OS_BY_NOTE;
			if (gos && strcmp(n->owner, "Xen") == 0 &&
			    n->type == KBU_XEN_ELFNOTE_GUEST_OS) {
				struct kbu_note_value v;
				kbu_note_decode(n, &v);
				if (v.kind == KBU_NOTE_STRING && list_has(gos, v.text, 1))
					c->named_by |= KBU_OS_BY_GUEST_OS;
			}
		}
	}
	/* Enough to use the profile: at least 3 roles and half of them resolve. */
	c->fits = c->roles_resolved >= 3 && 2 * c->roles_resolved >= c->roles_named;
}

/* Evidence about the ELF itself, for the report. */
static void elf_evidence(const struct kbu_elf *e, struct kbu_os_ident *id)
{
	id->osabi = e ? kbu_elf_osabi(e) : -1;
	if (!e)
		return;
	for (size_t i = 0; i < kbu_elf_nnotes(e); i++) {
		const struct kbu_note *n = kbu_elf_note(e, i);
		if (!n->owner)
			continue;
		if (strcmp(n->owner, "Xen") == 0 && n->type == KBU_XEN_ELFNOTE_GUEST_OS &&
		    !*id->guest_os) {
			struct kbu_note_value v;
			kbu_note_decode(n, &v);
			if (v.kind == KBU_NOTE_STRING)
				snprintf(id->guest_os, sizeof(id->guest_os), "%.63s", v.text);
		} else if (strcmp(n->owner, "Xen") != 0 && strcmp(n->owner, "GNU") != 0 &&
			   !list_has(id->note_owners, n->owner, 0)) {
			append(id->note_owners, sizeof(id->note_owners), "%s%s",
			       *id->note_owners ? " " : "", n->owner);
		}
	}
}

static const char *named_by_text(unsigned by, char *buf, size_t len)
{
	buf[0] = 0;
	if (by & KBU_OS_BY_OSABI)
		append(buf, len, "%s%s", *buf ? ", " : "", "its ELF OS ABI");
	if (by & KBU_OS_BY_GUEST_OS)
		append(buf, len, "%s%s", *buf ? ", " : "", "its Xen GUEST_OS note");
	if (by & KBU_OS_BY_NOTE)
		append(buf, len, "%s%s", *buf ? ", " : "", "its ELF notes' owner");
	return buf;
}

/* Roles resolved as a fraction, compared without division: 1 if a beats b. */
static int better_roles(const struct kbu_os_candidate *a, const struct kbu_os_candidate *b)
{
	uint64_t x = (uint64_t)a->roles_resolved * (b->roles_named ? b->roles_named : 1);
	uint64_t y = (uint64_t)b->roles_resolved * (a->roles_named ? a->roles_named : 1);
	if (x != y)
		return x > y;
	if (a->roles_resolved != b->roles_resolved)
		return a->roles_resolved > b->roles_resolved;
	return a->markers_found > b->markers_found;
}

static int same_roles(const struct kbu_os_candidate *a, const struct kbu_os_candidate *b)
{
	return !better_roles(a, b) && !better_roles(b, a);
}

static void checked_text(const struct kbu_os_ident *id, char *buf, size_t len)
{
	buf[0] = 0;
	for (size_t i = 0; i < id->ncand; i++) {
		const struct kbu_os_candidate *c = &id->cand[i];
		size_t n = strlen(buf);
		if (n + 1 < len)
			snprintf(buf + n, len - n, "%s%s %u/%u roles", i ? ", " : "", c->name,
				 c->roles_resolved, c->roles_named);
	}
}

struct name_list {
	char **v;
	size_t n, cap;
	int failed;
};

static void name_add(struct name_list *l, const char *w)
{
	if (l->failed)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char **v = realloc(l->v, cap * sizeof(*v));
		if (!v) {
			l->failed = 1;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n] = strdup(w)))
		l->failed = 1;
	else
		l->n++;
}

/* Every symbol the profiles name (their roles' and markers), asked at once: a
 * symbol map is then read once for identification and the commands after it,
 * not once per name. */
static void prefetch_names(const struct kbu_symtab *st, struct kbu_os_profile *const *p, size_t n)
{
	struct name_list l = {0};
	char w[128];
	const char *role;
	for (size_t k = 0; k < n; k++) {
		for (size_t r = 0; (role = kbu_os_symbol_role(r, NULL)) != NULL; r++)
			for (size_t i = 0; kbu_os_role_word(p[k], role, i, w, sizeof(w)); i++)
				name_add(&l, w);
		const char *markers = kbu_os_get(p[k], "profile", "markers");
		for (size_t i = 0; nth_word(markers, i, w, sizeof(w)); i++)
			name_add(&l, w);
	}
	if (!l.failed)
		kbu_sym_prefetch(st, (const char *const *)l.v, l.n);
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
}

struct kbu_os_profile *kbu_os_identify(const struct kbu_os_evidence *ev,
				       struct kbu_os_ident *id, struct kbu_err *err)
{
	memset(id, 0, sizeof(*id));
	id->chosen = -1;
	const struct kbu_symtab *st = ev ? ev->syms : NULL;
	id->has_syms = st && kbu_symtab_why_empty(st) == NULL;
	elf_evidence(ev ? ev->elf : NULL, id);
	struct kbu_os_profile *cand[KBU_OS_MAX_CANDIDATES] = {0};
	size_t ncand = 0;
	for (size_t i = 0; i < NBUILTIN && i < KBU_OS_MAX_CANDIDATES; i++) {
		cand[ncand] = kbu_os_parse(builtins[i].text, "built-in", err);
		if (!cand[ncand]) {
			while (ncand)
				kbu_os_free(cand[--ncand]);
			return NULL;
		}
		ncand++;
	}
	if (st)
		prefetch_names(st, cand, ncand);
	for (size_t i = 0; i < ncand; i++) {
		kbu_os_score(cand[i], ev, &id->cand[id->ncand++]);
		kbu_os_free(cand[i]);
	}
	/* Identity evidence first: the profiles it names, if they agree. */
	int named = -1, conflict = 0;
	for (size_t i = 0; i < id->ncand; i++) {
		if (!id->cand[i].named_by)
			continue;
		if (named >= 0)
			conflict = 1;
		else
			named = (int)i;
	}
	char by[128], checked[256];
	if (named >= 0 && !conflict) {
		const struct kbu_os_candidate *c = &id->cand[named];
		int any_fits = 0;
		for (size_t i = 0; i < id->ncand; i++)
			any_fits |= id->cand[i].fits;
		if (!id->has_syms || c->fits || !any_fits) {
			id->chosen = named;
			if (id->has_syms)
				snprintf(id->how, sizeof(id->how), "%s; %u of its %u roles resolve",
					 named_by_text(c->named_by, by, sizeof(by)), c->roles_resolved,
					 c->roles_named);
			else
				snprintf(id->how, sizeof(id->how), "%s (no symbols: roles not checked)",
					 named_by_text(c->named_by, by, sizeof(by)));
		}
	}
	if (id->chosen < 0) {
		if (!id->has_syms) {
			const char *why = st ? kbu_symtab_why_empty(st) : NULL;
			kbu_err_set(err, KBU_ENOTFOUND,
				    "cannot tell the OS without symbols%s%s%s%s: give --kernel/--symbols "
				    "or --os",
				    why ? " (" : "", why ? why : "", why ? ")" : "",
				    ev && ev->elf ? " and the ELF names no OS (OS ABI, Xen GUEST_OS)"
						  : "");
			return NULL;
		}
		int best = -1;
		for (size_t i = 0; i < id->ncand; i++)
			if (id->cand[i].fits && (best < 0 || better_roles(&id->cand[i], &id->cand[best])))
				best = (int)i;
		checked_text(id, checked, sizeof(checked));
		if (best < 0) {
			kbu_err_set(err, KBU_ENOTFOUND,
				    "the kernel fits no known OS profile (roles resolved: %s; a profile "
				    "fits when at least half of its roles resolve): give --os or --profile",
				    checked);
			return NULL;
		}
		for (size_t i = 0; i < id->ncand; i++)
			if ((int)i != best && id->cand[i].fits && same_roles(&id->cand[i], &id->cand[best])) {
				kbu_err_set(err, KBU_EINVAL,
					    "the kernel fits both the %s and the %s profile equally (%s) "
					    "and nothing else tells them apart: give --os",
					    id->cand[best].name, id->cand[i].name, checked);
				return NULL;
			}
		id->chosen = best;
		const struct kbu_os_candidate *c = &id->cand[best];
		snprintf(id->how, sizeof(id->how), "%u of its %u roles resolve%s%s", c->roles_resolved,
			 c->roles_named, conflict ? " (the ELF's OS evidence disagrees with itself: "
			 "ignored)" : "", named >= 0 && !conflict ? " (the OS the ELF names fits too "
			 "few roles)" : "");
	}
	return kbu_os_builtin(id->cand[id->chosen].name, err);
}

struct kbu_os_profile *kbu_os_select(const char *os, const char *profile_path,
				     const struct kbu_os_evidence *ev, struct kbu_err *err)
{
	if (profile_path && *profile_path)
		return kbu_os_load_file(profile_path, err);
	if (os && *os && strcmp(os, "auto") != 0)
		return kbu_os_builtin(os, err);
	struct kbu_os_ident id;
	return kbu_os_identify(ev, &id, err);
}
