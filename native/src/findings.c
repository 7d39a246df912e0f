/* kbu: findings recorded by a parser, and their place in a report. */
#include "kbu/findings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbu/report.h"

struct kbu_finding_rec *kbu_finding_rec_add(struct kbu_finding_rec **list, size_t *n,
					    size_t *suppressed, size_t cap, int sev, int section,
					    const char *code, const char *fmt, va_list ap)
{
	if (*n >= cap) {
		(*suppressed)++;
		return NULL;
	}
	struct kbu_finding_rec *nl = realloc(*list, (*n + 1) * sizeof(*nl));
	if (!nl)
		return NULL;
	*list = nl;
	struct kbu_finding_rec *f = &nl[(*n)++];
	memset(f, 0, sizeof(*f));
	f->sev = sev;
	f->section = section;
	f->code = code;
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	return f;
}

void kbu_finding_rec_field(struct kbu_finding_rec *f, const char *key, uint64_t value)
{
	if (!f || f->nfields >= KBU_FINDING_MAX_FIELDS)
		return;
	f->fields[f->nfields].key = key;
	f->fields[f->nfields].value = value;
	f->nfields++;
}

void kbu_finding_recs_report(struct kbu_node *o, const struct kbu_finding_rec *list, size_t n,
			     int section)
{
	for (size_t i = 0; i < n; i++) {
		const struct kbu_finding_rec *f = &list[i];
		if (f->section != section)
			continue;
		struct kbu_node *node = kbu_finding(o, (enum kbu_severity)f->sev, f->code, "%s", f->msg);
		for (int k = 0; k < f->nfields; k++)
			kbu_u64(node, f->fields[k].key, NULL, f->fields[k].value);
	}
}
