/* Report model: aligned text, tables, problems in place, JSON, kbu_run exit codes. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kbu/command.h"
#include "kbu/report.h"

/* What the renderer printed for build_mixed(1000) before it was made fast. */
#define PIN_TEXT_LEN 100915
#define PIN_TEXT_HASH 0x23d2aea609c5b02eull
#define PIN_JSON_LEN 129809
#define PIN_JSON_HASH 0x43af01cd0e802311ull

TEST(text_aligns_key_values)
{
	struct kbu_report *r = kbu_report_new("demo");
	struct kbu_node *root = kbu_report_root(r);
	kbu_str(root, "os", "OS", "FreeBSD");
	kbu_hex(root, "entry", "Entry point", 0x20b440, 8);
	kbu_u64(root, "ncpus", NULL, 2);
	kbu_str(root, "hidden", "", "json only");
	char *t = kbu_report_render(r, 0);
	CHECK_STR(t, "OS:          FreeBSD\nEntry point: 0x0020b440\nncpus:       2\n");
	kbu_free(t);
	kbu_report_free(r);
}

TEST(text_sections_and_tables)
{
	struct kbu_report *r = kbu_report_new("mptable");
	struct kbu_node *root = kbu_report_root(r);
	struct kbu_node *hdr = kbu_obj(root, "header", "Header");
	kbu_u64(hdr, "entry_count", "Entry count", 0);
	kbu_problem(hdr, KBU_SEV_WARN, "entry_count is 0 but the table holds %d entries", 5);
	struct kbu_node *cpus = kbu_list(root, "processors", "Processors");
	for (int i = 0; i < 2; i++) {
		struct kbu_node *row = kbu_row(cpus);
		kbu_u64(row, "apic_id", "APIC ID", (uint64_t)i);
		kbu_str(row, "flags", "Flags", i ? "AP" : "BSP, usable");
		kbu_hex(row, "signature", "Signature", 0x663, 0);
	}
	kbu_problem(kbu_row(cpus), KBU_SEV_ERROR, "entry at 0x9fc44 has unknown type 68");
	char *t = kbu_report_render(r, 0);
	CHECK_STR(t, "Header\n"
		     "  Entry count: 0\n"
		     "  ! entry_count is 0 but the table holds 5 entries\n"
		     "\n"
		     "Processors\n"
		     "  APIC ID  Flags        Signature\n"
		     "        0  BSP, usable  0x663\n"
		     "        1  AP           0x663\n"
		     "    ! error: entry at 0x9fc44 has unknown type 68\n");
	kbu_free(t);
	CHECK_EQ_U64(kbu_report_problems(r), 2);
	kbu_report_free(r);
}

TEST(json_has_command_fields_and_problem_paths)
{
	struct kbu_report *r = kbu_report_new("cpus");
	struct kbu_node *root = kbu_report_root(r);
	struct kbu_node *l = kbu_list(root, "cpus", "CPUs");
	struct kbu_node *row = kbu_row(l);
	kbu_hex(row, "cr3", "CR3", 0x1000, 16);
	kbu_bool(row, "long_mode", NULL, 1);
	kbu_null(row, "efer", NULL);
	struct kbu_node *cr0 = kbu_obj(row, "cr0", NULL);
	kbu_problem(cr0, KBU_SEV_WARN, "paging \"off\"");
	kbu_problem(root, KBU_SEV_NOTE, "a note");
	kbu_bytes(root, "raw", NULL, "\x01\xab", 2);
	kbu_i64(root, "delta", NULL, -5);
	struct kbu_node *items = kbu_list(root, "items", NULL);
	kbu_item_str(items, "a");
	kbu_item_u64(items, 7);
	kbu_textf(root, "tab\there");
	char *j = kbu_report_render(r, 1);
	CHECK_STR(j, "{\"command\": \"cpus\", \"cpus\": [{\"cr3\": 4096, \"long_mode\": true, "
		     "\"efer\": null, \"cr0\": {}}], \"raw\": \"01ab\", \"delta\": -5, "
		     "\"items\": [\"a\", 7], \"notes\": [\"tab\\there\"], \"problems\": ["
		     "{\"severity\": \"warning\", \"path\": \"cpus[0].cr0\", \"code\": null, "
		     "\"message\": \"paging \\\"off\\\"\", \"fields\": {}}, "
		     "{\"severity\": \"note\", \"path\": \"\", \"code\": null, \"message\": \"a note\", "
		     "\"fields\": {}}]}\n");
	kbu_free(j);
	/* A note is not a problem. */
	CHECK_EQ_U64(kbu_report_problems(r), 1);
	kbu_report_free(r);
}

TEST(findings_carry_code_and_fields)
{
	struct kbu_report *r = kbu_report_new("mptable");
	struct kbu_node *root = kbu_report_root(r);
	struct kbu_node *h = kbu_obj(root, "header", "Header");
	kbu_u64(h, "entry_count", "entry_count", 0);
	struct kbu_node *f = kbu_finding(h, KBU_SEV_NOTE, "mptable.entry_count_zero",
					 "entry_count is 0; the table holds %d entries", 21);
	kbu_u64(f, "entries", "entries", 21);
	kbu_bool(f, "by_length", NULL, 1);
	kbu_finding(root, KBU_SEV_WARN, "mptable.checksum_bad", "checksum bad");
	char *t = kbu_report_render(r, 0);
	/* Text shows the message, never the finding's fields. */
	CHECK_STR(t, "Header\n  entry_count: 0\n  note: entry_count is 0; the table holds 21 entries\n"
		     "! checksum bad\n");
	kbu_free(t);
	char *j = kbu_report_render(r, 1);
	CHECK_CONTAINS(j, "{\"severity\": \"note\", \"path\": \"header\", "
			  "\"code\": \"mptable.entry_count_zero\", \"message\": \"entry_count is 0; "
			  "the table holds 21 entries\", \"fields\": {\"entries\": 21, \"by_length\": true}}");
	CHECK_CONTAINS(j, "\"code\": \"mptable.checksum_bad\"");
	/* The finding's fields stay out of the header object itself. */
	CHECK_CONTAINS(j, "\"header\": {\"entry_count\": 0}");
	kbu_free(j);
	CHECK_EQ_U64(kbu_report_problems(r), 1);
	kbu_report_free(r);
}

TEST(json_escapes_guest_bytes)
{
	struct kbu_report *r = kbu_report_new("x");
	struct kbu_node *root = kbu_report_root(r);
	kbu_str(root, "s", NULL, "a\\b\x01\xff\xc3\xa9\n");
	char *j = kbu_report_render(r, 1);
	/* Invalid UTF-8 (0xff) is escaped, valid (U+00E9) kept. */
	CHECK_CONTAINS(j, "\"s\": \"a\\\\b\\u0001\\u00ff\xc3\xa9\\n\"");
	kbu_free(j);
	kbu_report_free(r);
}

TEST(json_only_sections_leave_no_blank_lines)
{
	struct kbu_report *r = kbu_report_new("x");
	struct kbu_node *root = kbu_report_root(r);
	kbu_u64(root, "n", "N", 1);
	struct kbu_node *hidden = kbu_obj(root, "stats", "");
	kbu_u64(hidden, "reads", "", 3);
	char *t = kbu_report_render(r, 0);
	CHECK_STR(t, "N: 1\n");
	kbu_free(t);
	t = kbu_report_render(r, 1);
	CHECK_STR(t, "{\"command\": \"x\", \"n\": 1, \"stats\": {\"reads\": 3}, \"problems\": []}\n");
	kbu_free(t);
	kbu_report_free(r);
}

TEST(empty_list_says_none)
{
	struct kbu_report *r = kbu_report_new("x");
	kbu_list(kbu_report_root(r), "buses", "Buses");
	char *t = kbu_report_render(r, 0);
	CHECK_STR(t, "Buses\n  (none)\n");
	kbu_free(t);
	kbu_report_free(r);
}

TEST(null_nodes_are_harmless)
{
	kbu_str(NULL, "a", NULL, "b");
	kbu_problem(NULL, KBU_SEV_WARN, "x");
	CHECK(kbu_obj(NULL, "a", NULL) == NULL);
	CHECK(kbu_row(NULL) == NULL);
	CHECK(kbu_report_render(NULL, 0) == NULL);
}

/* A command registered the way every cmd_*.c does it. */
static int run_probe(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		     struct kbu_err *err)
{
	if (argc > 1 && strcmp(argv[1], "fail") == 0)
		return kbu_err_set(err, KBU_EINVAL, "bad argument '%s'", argv[1]);
	struct kbu_node *root = kbu_report_root(r);
	kbu_str(root, "said", "Said", argc > 1 ? argv[1] : "nothing");
	if (argc > 1 && strcmp(argv[1], "warn") == 0)
		kbu_problem(root, KBU_SEV_WARN, "something odd");
	return 0;
}

static struct kbu_command probe_cmd = {
	.name = "probe",
	.summary = "test probe",
	.help = "usage: kbu probe [WORD]\nSays WORD.",
	.run = run_probe,
};
KBU_COMMAND(probe_cmd)

static struct kbu_command probe_mem_cmd = {
	.name = "probe-mem",
	.summary = "test probe needing memory",
	.help = "usage: kbu probe-mem",
	.needs = KBU_NEEDS_MEM,
	.run = run_probe,
};
KBU_COMMAND(probe_mem_cmd)

TEST(run_exit_codes)
{
	struct kbu_ctx *ctx = kbu_ctx_new();
	struct kbu_err err = {0};
	char *out = NULL;
	char *a1[] = {"probe", "hello", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 2, a1, 0, &out, &err), 0);
	CHECK_STR(out, "Said: hello\n");
	kbu_free(out);

	char *a2[] = {"probe", "warn", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 2, a2, 0, &out, &err), 0);
	CHECK_CONTAINS(out, "! something odd");
	kbu_free(out);
	ctx->strict = 1;
	CHECK_EQ_U64(kbu_run(ctx, 2, a2, 1, &out, &err), 1);
	CHECK_CONTAINS(out, "\"problems\": [{\"severity\": \"warning\"");
	kbu_free(out);

	char *a3[] = {"probe", "fail", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 2, a3, 0, &out, &err), 2);
	CHECK(out == NULL);
	CHECK_STR(err.msg, "bad argument 'fail'");

	char *a4[] = {"probe", "--help", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 2, a4, 0, &out, &err), 0);
	CHECK_STR(out, "usage: kbu probe [WORD]\nSays WORD.\n");
	kbu_free(out);

	char *a5[] = {"probe-mem", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 1, a5, 0, &out, &err), 2);
	CHECK_CONTAINS(err.msg, "--core");

	char *a6[] = {"nosuch", NULL};
	CHECK_EQ_U64(kbu_run(ctx, 1, a6, 0, &out, &err), 2);
	CHECK_CONTAINS(err.msg, "unknown command 'nosuch'");
	kbu_ctx_free(ctx);
}

TEST(command_list_is_sorted)
{
	const struct kbu_command *list[64];
	size_t n = kbu_command_list(list, 64);
	CHECK(n >= 2);
	for (size_t i = 1; i < n && i < 64; i++)
		CHECK(strcmp(list[i - 1]->name, list[i]->name) < 0);
	CHECK(kbu_command_find("probe") == &probe_cmd);
}

TEST(err_prefix_keeps_message)
{
	struct kbu_err e = {0};
	kbu_err_set(&e, KBU_EFAULT, "address 0x%x unmapped", 0x1000);
	kbu_err_prefix(&e, "reading %s", "cr3");
	CHECK_STR(e.msg, "reading cr3: address 0x1000 unmapped");
	CHECK_EQ_U64(e.code, KBU_EFAULT);
	char big[600];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	kbu_err_prefix(&e, "%s", big);
	CHECK(strlen(e.msg) < sizeof e.msg);
}

/*
 * A report exercising every renderer path at once: sections, tables with
 * missing cells, columns first seen late, labels and JSON-only fields, bytes,
 * hex widths, signed values, guest bytes to escape, rows carrying problems,
 * text lines and sections of their own, item lists, keys reused by stack
 * buffers. Its rendering is pinned to what the renderer printed before it was
 * made fast (length and FNV-1a hash of the text and of the JSON).
 */
static void build_mixed(struct kbu_report *r, int rows)
{
	struct kbu_node *root = kbu_report_root(r);
	kbu_str(root, "os", "OS", "FreeBSD");
	kbu_hex(root, "entry", "Entry point", 0xffffffff80200000ull, 16);
	kbu_i64(root, "delta", "Delta", -4096);
	kbu_bool(root, "pvh", "PVH", 1);
	kbu_null(root, "cr3", "CR3");
	kbu_str(root, "secret", "", "json only");
	kbu_textf(root, "a free line with %d in it", 42);
	kbu_problem(root, KBU_SEV_NOTE, "a note");
	struct kbu_node *items = kbu_list(root, "ids", "APIC IDs");
	for (int i = 0; i < 5; i++)
		kbu_item_hex(items, (uint64_t)i * 2, 2);
	struct kbu_node *l = kbu_list(root, "rows", "Rows");
	char key[32], label[32], val[64];
	for (int i = 0; i < rows; i++) {
		struct kbu_node *row = kbu_row(l);
		kbu_hex(row, "address", "Address", 0xffffffff80000000ull + (uint64_t)i * 0x1234567, 16);
		if (i % 7)
			kbu_u64(row, "size", "Size", (uint64_t)i * i * 977);
		kbu_i64(row, "adj", NULL, (int64_t)(i % 5) - 2);
		snprintf(val, sizeof val, "sym_%d%s", i, i % 11 == 0 ? "_with_a_longer_name" : "");
		kbu_str(row, "name", "Name", val);
		unsigned char by[9];
		for (int k = 0; k < 9; k++)
			by[k] = (unsigned char)(i * 31 + k * 7);
		kbu_bytes(row, "bytes", "Bytes", by, (size_t)(i % 10));
		kbu_hex(row, "w0", "", (uint64_t)i, 0);
		if (i > rows / 2) { /* a column first seen late, from a reused buffer */
			snprintf(key, sizeof key, "late");
			snprintf(label, sizeof label, "Late");
			kbu_strf(row, key, label, "%c%c", 'A' + i % 26, i % 3 ? '\t' : 'z');
		}
		kbu_bool(row, "ok", "OK?", i % 3 == 0);
		if (i % 50 == 3)
			kbu_problem(row, KBU_SEV_WARN, "row %d looks odd at 0x%x", i, i * 16);
		if (i % 97 == 5)
			kbu_textf(row, "row %d says: \"%s\"", i, "quoted \\ text");
	}
	kbu_problem(l, KBU_SEV_ERROR, "the table ended early");
	struct kbu_node *sec = kbu_obj(root, "guest", "Guest strings");
	kbu_str(sec, "banner", "Banner", "FreeBSD 14.0 \xc3\xa9t\xe9 \x01\x7f \xf0\x9f\x98\x80 end");
	kbu_str(sec, "empty", "Empty", "");
	struct kbu_node *nested = kbu_list(sec, "cpus", "CPUs");
	for (int i = 0; i < 3; i++) {
		struct kbu_node *row = kbu_row(nested);
		kbu_u64(row, "cpu", "CPU", (uint64_t)i);
		struct kbu_node *regs = kbu_obj(row, "regs", "Registers");
		kbu_hex(regs, "rip", "RIP", 0xffffffff80201000ull + (uint64_t)i, 16);
		struct kbu_node *st = kbu_list(row, "stack", "Stack");
		struct kbu_node *sr = kbu_row(st);
		kbu_hex(sr, "frame", "Frame", (uint64_t)i * 8, 4);
	}
	kbu_list(sec, "nothing", "Nothing");
	struct kbu_node *hid = kbu_obj(root, "hidden", "");
	kbu_str(hid, "x", "", "only in json");
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

TEST(rendering_is_pinned)
{
	struct kbu_report *r = kbu_report_new("mixed");
	build_mixed(r, 1000);
	char *t = kbu_report_render(r, 0);
	char *j = kbu_report_render(r, 1);
	CHECK(t && j);
	if (getenv("KBU_PIN_PRINT"))
		printf("text %zu 0x%016llx json %zu 0x%016llx\n", strlen(t),
		       (unsigned long long)fnv1a(t), strlen(j), (unsigned long long)fnv1a(j));
	CHECK_CONTAINS(t, "Rows\n  Address             adj  Name");
	CHECK_CONTAINS(t, "    ! row 3 looks odd at 0x30\n");
	CHECK_CONTAINS(j, "\"banner\": \"FreeBSD 14.0 \xc3\xa9t\\u00e9 \\u0001\\u007f \xf0\x9f\x98\x80 end\"");
	CHECK_EQ_U64(strlen(t), PIN_TEXT_LEN);
	CHECK_EQ_U64(fnv1a(t), PIN_TEXT_HASH);
	CHECK_EQ_U64(strlen(j), PIN_JSON_LEN);
	CHECK_EQ_U64(fnv1a(j), PIN_JSON_HASH);
	kbu_free(t);
	kbu_free(j);
	kbu_report_free(r);
}

TEST(long_formatted_strings_and_big_bytes)
{
	/* past the formatter's small buffer and past one arena chunk */
	struct kbu_report *r = kbu_report_new("long");
	struct kbu_node *root = kbu_report_root(r);
	char big[1200];
	memset(big, 'q', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	kbu_strf(root, "s", "S", "<%s>", big);
	static unsigned char bytes[300000];
	for (size_t i = 0; i < sizeof bytes; i++)
		bytes[i] = (unsigned char)i;
	kbu_bytes(root, "b", "", bytes, sizeof bytes);
	kbu_textf(root, "after %d", 1);
	char *t = kbu_report_render(r, 0);
	CHECK(t && strlen(t) == 3 + 1199 + 2 + 8 + 1);
	CHECK_CONTAINS(t, "S: <qqqq");
	CHECK_CONTAINS(t, "qqq>\nafter 1\n");
	kbu_free(t);
	char *j = kbu_report_render(r, 1);
	CHECK(j && strlen(j) > 2 * sizeof bytes);
	CHECK_CONTAINS(j, "\"b\": \"000102");
	CHECK_CONTAINS(j, "fdfeff000102");
	kbu_free(j);
	kbu_report_free(r);
}

int main(void)
{
	RUN(text_aligns_key_values);
	RUN(text_sections_and_tables);
	RUN(json_has_command_fields_and_problem_paths);
	RUN(findings_carry_code_and_fields);
	RUN(json_escapes_guest_bytes);
	RUN(json_only_sections_leave_no_blank_lines);
	RUN(empty_list_says_none);
	RUN(null_nodes_are_harmless);
	RUN(run_exit_codes);
	RUN(command_list_is_sorted);
	RUN(err_prefix_keeps_message);
	RUN(rendering_is_pinned);
	RUN(long_formatted_strings_and_big_bytes);
	CHECK_DONE("test_report");
}
