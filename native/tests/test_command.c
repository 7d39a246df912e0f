/* Options and arguments read from help text: the table man pages, shell
 * completion and GDB completion are built from. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kbu/command.h"

static const struct kbu_option_info *find_opt(const struct kbu_option_info *o, size_t n,
					      const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(o[i].name, name) == 0)
			return &o[i];
	return NULL;
}

static const struct kbu_arg_info *find_arg(const struct kbu_arg_info *a, size_t n,
					   const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(a[i].name, name) == 0)
			return &a[i];
	return NULL;
}

TEST(mptable_options_come_from_its_usage)
{
	struct kbu_option_info o[32];
	size_t n = kbu_command_options("mptable", o, 32);
	CHECK(n >= 7 && n <= 32);
	const struct kbu_option_info *at = find_opt(o, n, "--at");
	const struct kbu_option_info *table = find_opt(o, n, "--table");
	const struct kbu_option_info *core = find_opt(o, n, "--core");
	CHECK(at && table && core);
	if (!at || !table || !core)
		return;
	CHECK_STR(at->value, "ADDR");
	CHECK_EQ_U64(at->kind, KBU_VALUE_ADDRESS);
	CHECK_STR(table->value, "ADDR|SYMBOL");
	CHECK_EQ_U64(table->kind, KBU_VALUE_ADDRESS);
	CHECK(!at->context && !table->context);
	CHECK(core->context);
	CHECK_EQ_U64(core->kind, KBU_VALUE_FILE);
	/* it takes no positional argument */
	CHECK_EQ_U64(kbu_command_args("mptable", NULL, 0), 0);
}

TEST(every_command_has_a_consistent_table)
{
	const struct kbu_command *list[128];
	size_t n = kbu_command_list(list, 128);
	CHECK(n >= 10 && n <= 128);
	for (size_t i = 0; i < n && i < 128; i++) {
		struct kbu_option_info o[64];
		struct kbu_arg_info a[32];
		size_t no = kbu_command_options(list[i]->name, o, 64);
		size_t na = kbu_command_args(list[i]->name, a, 32);
		if (no + na == 0) {
			fprintf(stderr, "command %s: its help names no option and no argument\n",
				list[i]->name);
			CHECK(no + na > 0);
		}
		CHECK_EQ_U64(kbu_command_options(list[i]->name, NULL, 0), no);
		for (size_t k = 0; k < no && k < 64; k++) {
			CHECK(o[k].name[0] == '-' && o[k].name[1]);
			CHECK((o[k].value[0] != 0) == (o[k].kind != KBU_VALUE_NONE));
			CHECK((o[k].choices[0] != 0) == (o[k].kind == KBU_VALUE_CHOICE));
			for (size_t j = 0; j < k; j++)
				CHECK(strcmp(o[j].name, o[k].name) != 0);
		}
		for (size_t k = 0; k < na && k < 32; k++)
			CHECK(a[k].name[0] && a[k].kind != KBU_VALUE_NONE);
	}
}

TEST(positional_arguments_and_their_kinds)
{
	struct kbu_arg_info a[8];
	size_t n = kbu_command_args("x", a, 8);
	CHECK_EQ_U64(n, 2);
	const struct kbu_arg_info *addr = find_arg(a, n, "ADDR"), *len = find_arg(a, n, "LEN");
	CHECK(addr && len);
	if (addr && len) {
		CHECK(!addr->optional && addr->kind == KBU_VALUE_ADDRESS);
		CHECK(len->optional && len->kind == KBU_VALUE_NUMBER);
	}
	n = kbu_command_args("sym", a, 8);
	CHECK_EQ_U64(n, 1);
	CHECK_STR(a[0].name, "NAME|ADDR");
	CHECK(a[0].repeats && a[0].kind == KBU_VALUE_ADDRESS);
	n = kbu_command_args("layout", a, 8);
	CHECK_EQ_U64(n, 1);
	CHECK_STR(a[0].name, "ELF");
	CHECK_EQ_U64(a[0].kind, KBU_VALUE_FILE);
	struct kbu_option_info o[16];
	n = kbu_command_options("vtop", o, 16);
	const struct kbu_option_info *mode = find_opt(o, n, "--mode");
	CHECK(mode && mode->kind == KBU_VALUE_CHOICE);
	if (mode)
		CHECK_STR(mode->choices, "4level|5level|pae|32|off");
	CHECK_EQ_U64(kbu_command_options("no-such-command", o, 16), 0);
	CHECK_EQ_U64(kbu_command_args(NULL, a, 8), 0);
}

/* A script's help: "-p, --port PORT", continuation lines, prose groups, choices in text. */
static const char script_help[] =
	"usage: tool [options] KERNEL [-- extra GDB arguments]\n"
	"       tool RECIPE[,RECIPE...] --list\n"
	"\n"
	"Says what it does; --not-an-option in prose is not read.\n"
	"\n"
	"options:\n"
	"  -p, --port PORT     stub port (default 1234)\n"
	"  --append STR        kernel command line (a QEMU\n"
	"                      -append after KERNEL is taken the same way)\n"
	"  --os NAME           the OS profile: auto (default), freebsd, netbsd or linux\n"
	"  --memory SIZE       guest memory (default 256M)\n"
	"  --phys FILE[@BASE] a raw image at BASE\n"
	"  --mode=4level|5level  paging mode\n"
	"  -h, --help          this text\n"
	"example:  tool --port 1 kernel\n";

TEST(script_help_with_short_names_and_continuations)
{
	struct kbu_option_info o[16];
	size_t n = kbu_help_options(script_help, o, 16);
	CHECK_EQ_U64(n, 8);
	const struct kbu_option_info *port = find_opt(o, n, "--port");
	CHECK(port != NULL);
	if (port) {
		CHECK_STR(port->short_name, "-p");
		CHECK_STR(port->value, "PORT");
		CHECK_EQ_U64(port->kind, KBU_VALUE_NUMBER);
		CHECK_STR(port->text, "stub port (default 1234)");
	}
	const struct kbu_option_info *app = find_opt(o, n, "--append");
	CHECK(app && strstr(app->text, "a QEMU -append after KERNEL is taken the same way)"));
	CHECK(find_opt(o, n, "-append") == NULL);
	CHECK(find_opt(o, n, "--not-an-option") == NULL);
	const struct kbu_option_info *os = find_opt(o, n, "--os");
	CHECK(os && os->kind == KBU_VALUE_CHOICE);
	if (os)
		CHECK_STR(os->choices, "auto|freebsd|netbsd|linux");
	const struct kbu_option_info *mem = find_opt(o, n, "--memory");
	CHECK(mem && mem->kind == KBU_VALUE_NUMBER && !mem->choices[0]); /* "guest memory" is no list */
	const struct kbu_option_info *phys = find_opt(o, n, "--phys");
	CHECK(phys && phys->kind == KBU_VALUE_FILE);
	if (phys) {
		CHECK_STR(phys->value, "FILE[@BASE]");
		CHECK_STR(phys->text, "a raw image at BASE");
	}
	const struct kbu_option_info *mode = find_opt(o, n, "--mode");
	CHECK(mode && mode->kind == KBU_VALUE_CHOICE);
	const struct kbu_option_info *help = find_opt(o, n, "--help");
	CHECK(help && help->context && !strcmp(help->short_name, "-h"));

	struct kbu_arg_info a[8];
	size_t na = kbu_help_args(script_help, a, 8);
	/* KERNEL and RECIPE...; nothing from "[options]" or "[-- extra GDB arguments]" */
	CHECK_EQ_U64(na, 2);
	CHECK(find_arg(a, na, "KERNEL") && find_arg(a, na, "KERNEL")->kind == KBU_VALUE_FILE);
	CHECK(find_arg(a, na, "GDB") == NULL);
}

TEST(truncated_tables_count_everything)
{
	struct kbu_option_info o[2];
	memset(o, 0x55, sizeof o);
	size_t n = kbu_help_options(script_help, o, 1);
	CHECK_EQ_U64(n, 8);
	CHECK_STR(o[0].name, "--list"); /* the usage lines come first */
	CHECK((unsigned char)o[1].name[0] == 0x55); /* nothing written past max */
	CHECK_EQ_U64(kbu_help_options(script_help, NULL, 5), 8);
}

TEST(malformed_help_texts)
{
	struct kbu_option_info o[8];
	struct kbu_arg_info a[8];
	CHECK_EQ_U64(kbu_help_options(NULL, o, 8), 0);
	CHECK_EQ_U64(kbu_help_args(NULL, a, 8), 0);
	CHECK_EQ_U64(kbu_help_options("", o, 8), 0);
	CHECK_EQ_U64(kbu_help_options("no usage line at all\n", o, 8), 0);
	/* unbalanced brackets, stray closers, separators alone */
	CHECK_EQ_U64(kbu_help_options("usage: t [[[[[--a X\n", o, 8), 1);
	CHECK_STR(o[0].value, "X");
	CHECK_EQ_U64(kbu_help_options("usage: t ]]]) --b ))) | || [--c]\n", o, 8), 2);
	CHECK_EQ_U64(kbu_help_args("usage: t ]]]) --b ))) | || [--c]\n", a, 8), 0);
	/* words and option names longer than every field: cut, never overrun */
	char big[4096];
	size_t k = (size_t)snprintf(big, sizeof big, "usage: t --");
	while (k < 1000)
		big[k++] = 'x';
	memcpy(big + k, " VALUE", 6);
	k += 6;
	while (k < 2000)
		big[k++] = 'Y';
	memcpy(big + k, "\n\n  --", 5);
	k += 5;
	while (k < 3000)
		big[k++] = 'z';
	big[k] = '\0';
	CHECK_EQ_U64(kbu_help_options(big, o, 8), 2);
	CHECK(strlen(o[0].name) == sizeof o[0].name - 1);
	CHECK(strlen(o[0].value) < sizeof o[0].value);
	CHECK(strlen(o[1].name) == sizeof o[1].name - 1);
	/* more distinct options than the scanner keeps: counted up to its limit */
	char many[8192] = "usage: t";
	for (int i = 0; i < 100; i++) {
		char one[32];
		snprintf(one, sizeof one, " [--opt%d]", i);
		strcat(many, one);
	}
	size_t n = kbu_help_options(many, o, 8);
	CHECK(n >= 8 && n <= 100);
	CHECK_STR(o[7].name, "--opt7");
	CHECK_EQ_U64(kbu_option_is_context(NULL), 0);
	CHECK_EQ_U64(kbu_option_is_context("--kernel"), 1);
	CHECK_EQ_U64(kbu_option_is_context("--kernelx"), 0);
}

/* Scrambled help texts from a fixed generator: the sanitizers catch any overrun. */
TEST(scrambled_help_texts)
{
	static const char alphabet[] = "usage: -[]()|.,:=\n  AZaz09-..-";
	uint32_t x = 12345;
	char text[700];
	struct kbu_option_info o[4];
	struct kbu_arg_info a[4];
	for (int round = 0; round < 3000; round++) {
		size_t len = (size_t)(round % (int)(sizeof text - 8));
		memcpy(text, "usage: ", 7);
		for (size_t i = 7; i < len + 7; i++) {
			x = x * 1103515245u + 12345u;
			text[i] = alphabet[(x >> 16) % (sizeof alphabet - 1)];
		}
		text[len + 7] = '\0';
		size_t n = kbu_help_options(text, o, 4);
		for (size_t i = 0; i < n && i < 4; i++)
			CHECK(strlen(o[i].name) < sizeof o[i].name && o[i].name[0] == '-');
		n = kbu_help_args(text, a, 4);
		for (size_t i = 0; i < n && i < 4; i++)
			CHECK(strlen(a[i].name) < sizeof a[i].name);
	}
}

int main(void)
{
	RUN(mptable_options_come_from_its_usage);
	RUN(every_command_has_a_consistent_table);
	RUN(positional_arguments_and_their_kinds);
	RUN(script_help_with_short_names_and_continuations);
	RUN(truncated_tables_count_everything);
	RUN(malformed_help_texts);
	RUN(scrambled_help_texts);
	CHECK_DONE("test_command");
}
