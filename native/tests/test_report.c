/* Report model: aligned text, tables, problems in place, JSON, kbu_run exit codes. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kbu/command.h"
#include "kbu/report.h"

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
		     "{\"severity\": \"warning\", \"path\": \"cpus[0].cr0\", \"message\": \"paging \\\"off\\\"\"}, "
		     "{\"severity\": \"note\", \"path\": \"\", \"message\": \"a note\"}]}\n");
	kbu_free(j);
	/* A note is not a problem. */
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

int main(void)
{
	RUN(text_aligns_key_values);
	RUN(text_sections_and_tables);
	RUN(json_has_command_fields_and_problem_paths);
	RUN(json_escapes_guest_bytes);
	RUN(json_only_sections_leave_no_blank_lines);
	RUN(empty_list_says_none);
	RUN(null_nodes_are_harmless);
	RUN(run_exit_codes);
	RUN(command_list_is_sorted);
	RUN(err_prefix_keeps_message);
	CHECK_DONE("test_report");
}
