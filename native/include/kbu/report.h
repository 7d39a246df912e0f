/*
 * kbu report model: one tree of facts, rendered as aligned text or as JSON.
 *
 * A report has a root object. An object holds ordered fields; a field is a
 * scalar (string, unsigned, signed, hex, bool, null, bytes), a nested object
 * (rendered in text as a headed section) or a list of row objects (rendered in
 * text as a table whose column headers are the rows' field labels).
 * Problems are attached to the node where they were found: in text they are
 * printed on their own line marked "!", in JSON they are also collected in the
 * root's "problems" array with the path of the node.
 *
 * label: the text-mode caption of a field. NULL means "use the key";
 * "" means "JSON only, do not print in text".
 */
#ifndef KBU_REPORT_H
#define KBU_REPORT_H

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_report;
struct kbu_node;

enum kbu_severity {
	KBU_SEV_NOTE = 0,  /* worth knowing, not a problem */
	KBU_SEV_WARN = 1,  /* an anomaly: counts as a problem for --strict */
	KBU_SEV_ERROR = 2, /* the data is wrong or unusable */
};

struct kbu_report *kbu_report_new(const char *command);
void kbu_report_free(struct kbu_report *r);
struct kbu_node *kbu_report_root(struct kbu_report *r);

/* Nested object, rendered as a section titled `title` (NULL: key). */
struct kbu_node *kbu_obj(struct kbu_node *parent, const char *key, const char *title);
/* An object shown only in the text rendering (its problems keep no path in JSON). */
struct kbu_node *kbu_text_obj(struct kbu_node *parent, const char *key);
/* List of rows, rendered as a table titled `title` ("": untitled). A list of
 * plain values (kbu_item_*) titled "" is JSON-only. */
struct kbu_node *kbu_list(struct kbu_node *parent, const char *key, const char *title);
/* Appends a row (an object) to a list. */
struct kbu_node *kbu_row(struct kbu_node *list);
/* Appends a scalar string item to a list (a list of plain values). */
void kbu_item_str(struct kbu_node *list, const char *val);
void kbu_item_hex(struct kbu_node *list, uint64_t v, int width);
void kbu_item_u64(struct kbu_node *list, uint64_t v);

void kbu_str(struct kbu_node *o, const char *key, const char *label, const char *val);
void kbu_strf(struct kbu_node *o, const char *key, const char *label, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A field shown in text only: how a porter reads values that JSON holds as
 * numbers in other fields ("9/9" for roles_resolved and roles_named). */
void kbu_display(struct kbu_node *o, const char *key, const char *label, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void kbu_u64(struct kbu_node *o, const char *key, const char *label, uint64_t v);
void kbu_i64(struct kbu_node *o, const char *key, const char *label, int64_t v);
/* Text: 0x-prefixed, zero-padded to `width` hex digits (0: no padding). JSON: integer. */
void kbu_hex(struct kbu_node *o, const char *key, const char *label, uint64_t v, int width);
void kbu_bool(struct kbu_node *o, const char *key, const char *label, int v);
/* A boolean that may be unknown: v < 0 is null. */
void kbu_bool_or_null(struct kbu_node *o, const char *key, const char *label, int v);
void kbu_null(struct kbu_node *o, const char *key, const char *label);
/* Text: hex bytes separated by spaces. JSON: lowercase hex string. */
void kbu_bytes(struct kbu_node *o, const char *key, const char *label, const void *p, size_t n);

/* A free line of text inside a section (text only; JSON gets it in "notes"). */
void kbu_textf(struct kbu_node *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line of text only (not in JSON): a report laid out by hand, whose values
 * JSON holds in fields of their own. */
void kbu_textline(struct kbu_node *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An anomaly found at this node. */
void kbu_problem(struct kbu_node *o, enum kbu_severity sev, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * A finding: what kbu concluded at this node, with a stable code that scripts
 * match on ("mptable.entry_count_zero", "timesource.placeholder") and fields
 * that hold its values. Returns the finding's field object: add its values
 * with kbu_u64/kbu_hex/kbu_str/... (JSON only: text prints the message).
 * A finding kbu can explain by a known cause is a NOTE whose message names
 * the cause. JSON: {"severity", "path", "code", "message", "fields"} in the
 * root's "problems" (kbu_problem's entries have code null).
 */
struct kbu_node *kbu_finding(struct kbu_node *o, enum kbu_severity sev, const char *code,
			     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Number of problems of severity >= KBU_SEV_WARN. */
int kbu_report_problems(const struct kbu_report *r);

/* Renders to a malloc'd NUL-terminated string (caller frees with kbu_free). */
char *kbu_report_render(const struct kbu_report *r, int json);
int kbu_report_print(const struct kbu_report *r, FILE *out, int json);
void kbu_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
