/*
 * kbu: findings a parser records before any report exists (the ACPI tables,
 * the MP table), each with its stable code, the report section it belongs
 * to and the values behind it; kbu_finding_recs_report() turns a section's
 * findings into report findings (report.h).
 */
#ifndef KBU_FINDINGS_H
#define KBU_FINDINGS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kbu_node;

#define KBU_FINDING_MAX_FIELDS 6

struct kbu_finding_rec {
	int sev;              /* enum kbu_severity */
	int section;          /* the parser's section number: where it attaches in the report */
	const char *code;     /* static, stable: "mptable.entry_count_zero" */
	char msg[320];
	int nfields;
	struct { const char *key; uint64_t value; } fields[KBU_FINDING_MAX_FIELDS];
};

/* Appends a finding to *list (*n of them); beyond cap they are only counted in
 * *suppressed (a table of garbage must not become a million lines). Returns
 * the finding, so the caller can add its values, or NULL (capped, no memory). */
struct kbu_finding_rec *kbu_finding_rec_add(struct kbu_finding_rec **list, size_t *n,
					    size_t *suppressed, size_t cap, int sev, int section,
					    const char *code, const char *fmt, va_list ap);

/* A value behind a finding (its JSON "fields"); f may be NULL. */
void kbu_finding_rec_field(struct kbu_finding_rec *f, const char *key, uint64_t value);

/* The findings of one section as report findings under o. */
void kbu_finding_recs_report(struct kbu_node *o, const struct kbu_finding_rec *list, size_t n,
			     int section);

#ifdef __cplusplus
}
#endif
#endif
