/*
 * kbu JSON reader: the facts a debugger gathered (a recipe's stops, watches,
 * CPUID values) reach the verdict rules as JSON. Strict RFC 8259: one value,
 * no trailing commas or comments, strings must be valid UTF-8, \u escapes
 * (surrogate pairs included) become UTF-8; nesting is bounded. A parse error
 * says what was wrong at which byte offset.
 */
#ifndef KBU_JSON_H
#define KBU_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "kbu/err.h"

#ifdef __cplusplus
extern "C" {
#endif

enum kbu_json_type {
	KBU_JSON_NULL,
	KBU_JSON_BOOL,
	KBU_JSON_NUMBER,
	KBU_JSON_STRING,
	KBU_JSON_ARRAY,
	KBU_JSON_OBJECT,
};

struct kbu_json;

#define KBU_JSON_MAX_DEPTH 64

/* Parses text[0..len); NULL with KBU_EFORMAT naming the offset on bad input. */
struct kbu_json *kbu_json_parse(const char *text, size_t len, struct kbu_err *err);
void kbu_json_free(struct kbu_json *j);

/* Every accessor takes NULL and answers "absent" (NULL, 0, -1). */
int kbu_json_type(const struct kbu_json *j); /* -1 for NULL */
/* Member of an object by key, NULL if absent or j is not an object. */
const struct kbu_json *kbu_json_get(const struct kbu_json *j, const char *key);
/* Follows "a.b[2].c"; NULL if any step is absent. */
const struct kbu_json *kbu_json_path(const struct kbu_json *j, const char *path);
/* Elements of an array or members of an object. */
size_t kbu_json_len(const struct kbu_json *j);
const struct kbu_json *kbu_json_at(const struct kbu_json *j, size_t i);
/* The i-th member's key of an object, NULL otherwise. */
const char *kbu_json_key(const struct kbu_json *j, size_t i);

/* A string's bytes (NUL-terminated; may hold NULs from \u0000: see len). */
const char *kbu_json_str(const struct kbu_json *j);
size_t kbu_json_strlen(const struct kbu_json *j);
/* 0 and the value if j is a number that fits exactly; -1 otherwise. */
int kbu_json_u64(const struct kbu_json *j, uint64_t *out);
int kbu_json_i64(const struct kbu_json *j, int64_t *out);
int kbu_json_double(const struct kbu_json *j, double *out);
/* 0 and the value if j is true/false; -1 otherwise. */
int kbu_json_bool(const struct kbu_json *j, int *out);

/* Conveniences for rules: the member's value or a default when absent or mistyped. */
const char *kbu_json_get_str(const struct kbu_json *obj, const char *key, const char *def);
uint64_t kbu_json_get_u64(const struct kbu_json *obj, const char *key, uint64_t def);
int kbu_json_get_bool(const struct kbu_json *obj, const char *key, int def);

#ifdef __cplusplus
}
#endif
#endif
