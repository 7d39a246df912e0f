/* kbu JSON reader: a strict recursive-descent parser into a small tree. */
#include "kbu/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct kbu_json {
	int type;
	int boolean;
	int is_int;      /* the number was written as an integer that fits */
	int negative;    /* ... and was below zero */
	uint64_t u;      /* magnitude of an integer */
	double d;
	char *s;         /* string value */
	size_t slen;
	struct kbu_json **items; /* array elements or object values */
	char **keys;             /* object keys (NULL for arrays) */
	size_t n, cap;
};

struct parser {
	const char *p, *start, *end;
	struct kbu_err *err;
};

static int fail(struct parser *ps, const char *what)
{
	return kbu_err_set(ps->err, KBU_EFORMAT, "JSON: %s at offset %zu", what,
			   (size_t)(ps->p - ps->start));
}

void kbu_json_free(struct kbu_json *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n; i++) {
		kbu_json_free(j->items[i]);
		if (j->keys)
			free(j->keys[i]);
	}
	free(j->items);
	free(j->keys);
	free(j->s);
	free(j);
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static struct kbu_json *node(struct parser *ps, int type)
{
	struct kbu_json *j = calloc(1, sizeof(*j));
	if (!j)
		kbu_err_set(ps->err, KBU_ENOMEM, "JSON: out of memory");
	else
		j->type = type;
	return j;
}

static int add(struct parser *ps, struct kbu_json *parent, struct kbu_json *child, char *key)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;
		struct kbu_json **items = realloc(parent->items, cap * sizeof(*items));
		if (!items)
			goto oom;
		parent->items = items;
		if (parent->type == KBU_JSON_OBJECT) {
			char **keys = realloc(parent->keys, cap * sizeof(*keys));
			if (!keys)
				goto oom;
			parent->keys = keys;
		}
		parent->cap = cap;
	}
	parent->items[parent->n] = child;
	if (parent->keys)
		parent->keys[parent->n] = key;
	parent->n++;
	return 0;
oom:
	kbu_json_free(child);
	free(key);
	return kbu_err_set(ps->err, KBU_ENOMEM, "JSON: out of memory");
}

static int hex4(struct parser *ps, unsigned *out)
{
	if (ps->end - ps->p < 4)
		return fail(ps, "truncated \\u escape");
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = ps->p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return fail(ps, "bad hex digit in \\u escape");
	}
	ps->p += 4;
	*out = v;
	return 0;
}

static size_t utf8_put(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Length of a valid UTF-8 sequence at p (overlongs and surrogates refused), 0 if invalid. */
static size_t utf8_valid(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	size_t n;
	unsigned cp, min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A string at ps->p (the opening quote); *out is malloc'd. */
static int parse_string(struct parser *ps, char **out, size_t *outlen)
{
	ps->p++;
	/* Escapes only shrink: the raw length bounds the decoded one. */
	const char *q = ps->p;
	while (q < ps->end && *q != '"') {
		if (*q == '\\' && q + 1 < ps->end)
			q++;
		q++;
	}
	if (q >= ps->end)
		return fail(ps, "unterminated string");
	char *buf = malloc((size_t)(q - ps->p) + 1), *o = buf;
	if (!buf)
		return kbu_err_set(ps->err, KBU_ENOMEM, "JSON: out of memory");
	while (*ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p;
		if (c < 0x20) {
			free(buf);
			return fail(ps, "control character in a string");
		}
		if (c != '\\') {
			size_t n = utf8_valid((const unsigned char *)ps->p, (const unsigned char *)ps->end);
			if (!n) {
				free(buf);
				return fail(ps, "invalid UTF-8 in a string");
			}
			memcpy(o, ps->p, n);
			o += n;
			ps->p += n;
			continue;
		}
		ps->p++;
		char e = *ps->p++;
		switch (e) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			unsigned cp, lo;
			if (hex4(ps, &cp) < 0)
				goto bad;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				fail(ps, "lone low surrogate in \\u escape");
				goto bad;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u') {
					fail(ps, "high surrogate without its low half");
					goto bad;
				}
				ps->p += 2;
				if (hex4(ps, &lo) < 0)
					goto bad;
				if (lo < 0xdc00 || lo > 0xdfff) {
					fail(ps, "high surrogate without its low half");
					goto bad;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			o += utf8_put(o, cp);
			break;
		}
		default:
			ps->p--;
			fail(ps, "bad escape in a string");
			goto bad;
		}
	}
	ps->p++;
	*o = '\0';
	*out = buf;
	*outlen = (size_t)(o - buf);
	return 0;
bad:
	free(buf);
	return -1;
}

static int parse_number(struct parser *ps, struct kbu_json *j)
{
	const char *s = ps->p;
	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
		return fail(ps, "bad number");
	if (*ps->p == '0' && ps->p + 1 < ps->end && ps->p[1] >= '0' && ps->p[1] <= '9')
		return fail(ps, "number with a leading zero");
	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
		ps->p++;
	int integral = 1;
	if (ps->p < ps->end && *ps->p == '.') {
		integral = 0;
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return fail(ps, "bad number");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		integral = 0;
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return fail(ps, "bad number");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	char tmp[64];
	size_t n = (size_t)(ps->p - s);
	if (n >= sizeof(tmp))
		return fail(ps, "number longer than 63 characters");
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	j->d = strtod(tmp, NULL);
	if (integral) {
		const char *digits = tmp[0] == '-' ? tmp + 1 : tmp;
		errno = 0;
		unsigned long long v = strtoull(digits, NULL, 10);
		if (errno == 0 && !(tmp[0] == '-' && v > (1ull << 63))) {
			j->is_int = 1;
			j->negative = tmp[0] == '-' && v != 0;
			j->u = v;
		}
	}
	return 0;
}

static struct kbu_json *parse_value(struct parser *ps, int depth);

static struct kbu_json *parse_container(struct parser *ps, int depth, int object)
{
	if (depth >= KBU_JSON_MAX_DEPTH) {
		fail(ps, "nested deeper than 64 levels");
		return NULL;
	}
	struct kbu_json *j = node(ps, object ? KBU_JSON_OBJECT : KBU_JSON_ARRAY);
	if (!j)
		return NULL;
	char close = object ? '}' : ']';
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return j;
	}
	for (;;) {
		char *key = NULL;
		skip_ws(ps);
		if (object) {
			size_t klen;
			if (ps->p >= ps->end || *ps->p != '"') {
				fail(ps, "expected a string key");
				goto bad;
			}
			if (parse_string(ps, &key, &klen) < 0)
				goto bad;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				free(key);
				fail(ps, "expected ':' after a key");
				goto bad;
			}
			ps->p++;
		}
		struct kbu_json *v = parse_value(ps, depth + 1);
		if (!v) {
			free(key);
			goto bad;
		}
		if (add(ps, j, v, key) < 0)
			goto bad;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return j;
		}
		fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
		goto bad;
	}
bad:
	kbu_json_free(j);
	return NULL;
}

static int literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return 0;
	ps->p += n;
	return 1;
}

static struct kbu_json *parse_value(struct parser *ps, int depth)
{
	skip_ws(ps);
	if (ps->p >= ps->end) {
		fail(ps, "unexpected end of input");
		return NULL;
	}
	char c = *ps->p;
	if (c == '{' || c == '[')
		return parse_container(ps, depth, c == '{');
	struct kbu_json *j;
	if (c == '"') {
		j = node(ps, KBU_JSON_STRING);
		if (j && parse_string(ps, &j->s, &j->slen) < 0) {
			kbu_json_free(j);
			return NULL;
		}
		return j;
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		j = node(ps, KBU_JSON_NUMBER);
		if (j && parse_number(ps, j) < 0) {
			kbu_json_free(j);
			return NULL;
		}
		return j;
	}
	if (literal(ps, "true") || literal(ps, "false")) {
		j = node(ps, KBU_JSON_BOOL);
		if (j)
			j->boolean = ps->p[-1] == 'e' && ps->p[-2] == 'u';
		return j;
	}
	if (literal(ps, "null"))
		return node(ps, KBU_JSON_NULL);
	fail(ps, "unexpected character");
	return NULL;
}

struct kbu_json *kbu_json_parse(const char *text, size_t len, struct kbu_err *err)
{
	struct parser ps = {text, text, text + len, err};
	if (!text) {
		kbu_err_set(err, KBU_EINVAL, "JSON: no text");
		return NULL;
	}
	struct kbu_json *j = parse_value(&ps, 0);
	if (!j)
		return NULL;
	skip_ws(&ps);
	if (ps.p != ps.end) {
		fail(&ps, "text after the value");
		kbu_json_free(j);
		return NULL;
	}
	return j;
}

int kbu_json_type(const struct kbu_json *j) { return j ? j->type : -1; }

const struct kbu_json *kbu_json_get(const struct kbu_json *j, const char *key)
{
	if (!j || j->type != KBU_JSON_OBJECT || !key)
		return NULL;
	/* The last of duplicate keys wins, as in most readers. */
	for (size_t i = j->n; i-- > 0;)
		if (strcmp(j->keys[i], key) == 0)
			return j->items[i];
	return NULL;
}

const struct kbu_json *kbu_json_path(const struct kbu_json *j, const char *path)
{
	char key[128];
	const char *p = path;
	while (j && p && *p) {
		if (*p == '[') {
			char *end;
			unsigned long i = strtoul(p + 1, &end, 10);
			if (*end != ']')
				return NULL;
			j = j->type == KBU_JSON_ARRAY ? kbu_json_at(j, i) : NULL;
			p = end + 1;
		} else {
			size_t n = strcspn(p, ".[");
			if (n == 0 || n >= sizeof(key))
				return NULL;
			memcpy(key, p, n);
			key[n] = '\0';
			j = kbu_json_get(j, key);
			p += n;
		}
		if (*p == '.')
			p++;
	}
	return j;
}

size_t kbu_json_len(const struct kbu_json *j)
{
	return j && (j->type == KBU_JSON_ARRAY || j->type == KBU_JSON_OBJECT) ? j->n : 0;
}

const struct kbu_json *kbu_json_at(const struct kbu_json *j, size_t i)
{
	return j && (j->type == KBU_JSON_ARRAY || j->type == KBU_JSON_OBJECT) && i < j->n
		       ? j->items[i]
		       : NULL;
}

const char *kbu_json_key(const struct kbu_json *j, size_t i)
{
	return j && j->type == KBU_JSON_OBJECT && i < j->n ? j->keys[i] : NULL;
}

const char *kbu_json_str(const struct kbu_json *j)
{
	return j && j->type == KBU_JSON_STRING ? j->s : NULL;
}

size_t kbu_json_strlen(const struct kbu_json *j)
{
	return j && j->type == KBU_JSON_STRING ? j->slen : 0;
}

int kbu_json_u64(const struct kbu_json *j, uint64_t *out)
{
	if (!j || j->type != KBU_JSON_NUMBER || !j->is_int || j->negative)
		return -1;
	*out = j->u;
	return 0;
}

int kbu_json_i64(const struct kbu_json *j, int64_t *out)
{
	if (!j || j->type != KBU_JSON_NUMBER || !j->is_int)
		return -1;
	if (j->negative) {
		*out = j->u == (1ull << 63) ? INT64_MIN : -(int64_t)j->u;
		return 0;
	}
	if (j->u > (uint64_t)INT64_MAX)
		return -1;
	*out = (int64_t)j->u;
	return 0;
}

int kbu_json_double(const struct kbu_json *j, double *out)
{
	if (!j || j->type != KBU_JSON_NUMBER)
		return -1;
	*out = j->d;
	return 0;
}

int kbu_json_bool(const struct kbu_json *j, int *out)
{
	if (!j || j->type != KBU_JSON_BOOL)
		return -1;
	*out = j->boolean;
	return 0;
}

const char *kbu_json_get_str(const struct kbu_json *obj, const char *key, const char *def)
{
	const char *s = kbu_json_str(kbu_json_get(obj, key));
	return s ? s : def;
}

uint64_t kbu_json_get_u64(const struct kbu_json *obj, const char *key, uint64_t def)
{
	uint64_t v;
	return kbu_json_u64(kbu_json_get(obj, key), &v) == 0 ? v : def;
}

int kbu_json_get_bool(const struct kbu_json *obj, const char *key, int def)
{
	int v;
	return kbu_json_bool(kbu_json_get(obj, key), &v) == 0 ? v : def;
}
