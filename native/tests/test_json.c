/* The JSON reader: what recipes hand to the verdict rules. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kbu/json.h"

static struct kbu_json *parse(const char *s, struct kbu_err *err)
{
	return kbu_json_parse(s, strlen(s), err);
}

TEST(values_and_paths)
{
	struct kbu_err err = {0};
	struct kbu_json *j = parse(" {\"end\": {\"kind\": \"panic\", \"message\": \"TSC not initialized\","
				   " \"cpu\": 0}, \"leaves\": [[0, 0, 13, 1], [1, 0, 394161, 2048]],"
				   " \"ok\": true, \"no\": false, \"nothing\": null, \"neg\": -5,"
				   " \"big\": 18446744073709551615, \"frac\": 2.5e3, \"tc\": \"dummy\"}\n",
				   &err);
	CHECK(j);
	if (!j)
		return;
	CHECK_EQ_U64(kbu_json_type(j), KBU_JSON_OBJECT);
	CHECK_STR(kbu_json_str(kbu_json_path(j, "end.message")), "TSC not initialized");
	uint64_t u;
	CHECK(kbu_json_u64(kbu_json_path(j, "leaves[1][2]"), &u) == 0 && u == 394161);
	CHECK(kbu_json_u64(kbu_json_path(j, "big"), &u) == 0 && u == UINT64_MAX);
	int64_t i;
	CHECK(kbu_json_i64(kbu_json_get(j, "neg"), &i) == 0 && i == -5);
	CHECK(kbu_json_u64(kbu_json_get(j, "neg"), &u) < 0);   /* negative: no unsigned value */
	CHECK(kbu_json_i64(kbu_json_get(j, "big"), &i) < 0);   /* does not fit */
	CHECK(kbu_json_u64(kbu_json_get(j, "frac"), &u) < 0);  /* not an integer */
	double d;
	CHECK(kbu_json_double(kbu_json_get(j, "frac"), &d) == 0 && d == 2500.0);
	CHECK_EQ_U64(kbu_json_get_bool(j, "ok", 0), 1);
	CHECK_EQ_U64(kbu_json_get_bool(j, "no", 1), 0);
	CHECK_EQ_U64(kbu_json_type(kbu_json_get(j, "nothing")), KBU_JSON_NULL);
	CHECK(kbu_json_get(j, "absent") == NULL);
	CHECK(kbu_json_path(j, "leaves[9]") == NULL);
	CHECK(kbu_json_path(j, "end.kind.deeper") == NULL);
	CHECK_EQ_U64(kbu_json_len(kbu_json_get(j, "leaves")), 2);
	CHECK_STR(kbu_json_key(j, 0), "end");
	CHECK_STR(kbu_json_get_str(j, "tc", "?"), "dummy");
	CHECK_STR(kbu_json_get_str(j, "ok", "?"), "?");        /* mistyped: the default */
	CHECK_EQ_U64(kbu_json_get_u64(j, "tc", 7), 7);
	kbu_json_free(j);
	/* NULL in, absent out. */
	CHECK(kbu_json_get(NULL, "x") == NULL && kbu_json_str(NULL) == NULL);
	CHECK_EQ_U64(kbu_json_len(NULL), 0);
}

TEST(strings_decode_escapes_and_utf8)
{
	struct kbu_err err = {0};
	struct kbu_json *j = parse("[\"a\\\"b\\\\c\\/\\n\\t\", \"\\u00e9\\ud83d\\ude00\", \"\xc3\xa9t\xc3\xa9\","
				   " \"nul\\u0000in\"]", &err);
	CHECK(j);
	if (!j)
		return;
	CHECK_STR(kbu_json_str(kbu_json_at(j, 0)), "a\"b\\c/\n\t");
	CHECK_STR(kbu_json_str(kbu_json_at(j, 1)), "\xc3\xa9\xf0\x9f\x98\x80");
	CHECK_STR(kbu_json_str(kbu_json_at(j, 2)), "\xc3\xa9t\xc3\xa9");
	CHECK_EQ_U64(kbu_json_strlen(kbu_json_at(j, 3)), 6);
	CHECK(memcmp(kbu_json_str(kbu_json_at(j, 3)), "nul\0in", 6) == 0);
	kbu_json_free(j);
}

static void check_bad(const char *text, const char *why)
{
	struct kbu_err err = {0};
	struct kbu_json *j = parse(text, &err);
	CHECK(j == NULL);
	CHECK_EQ_U64(err.code, KBU_EFORMAT);
	CHECK_CONTAINS(err.msg, why);
	kbu_json_free(j);
}

TEST(malformed_input_says_what_and_where)
{
	check_bad("", "unexpected end of input at offset 0");
	check_bad("{\"a\": 1,}", "expected a string key at offset 8");
	check_bad("[1, 2", "expected ',' or ']' at offset 5");
	check_bad("[1 2]", "expected ',' or ']' at offset 3");
	check_bad("{\"a\" 1}", "expected ':' after a key");
	check_bad("01", "leading zero");
	check_bad("-", "bad number");
	check_bad("1.", "bad number");
	check_bad("1e", "bad number");
	check_bad("tru", "unexpected character");
	check_bad("\"abc", "unterminated string");
	check_bad("\"a\tb\"", "control character");
	check_bad("\"\\x\"", "bad escape");
	check_bad("\"\\u12g4\"", "bad hex digit");
	check_bad("\"\\ud800\"", "high surrogate without its low half");
	check_bad("\"\\udc00\"", "lone low surrogate");
	check_bad("\"\xff\"", "invalid UTF-8");
	check_bad("\"\xc0\xaf\"", "invalid UTF-8");            /* overlong '/' */
	check_bad("\"\xed\xa0\x80\"", "invalid UTF-8");        /* an encoded surrogate */
	check_bad("1 2", "text after the value");
	check_bad("{} x", "text after the value");
	check_bad("// c\n1", "unexpected character");
	/* Nesting is bounded. */
	char deep[200];
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	check_bad(deep, "nested deeper than 64 levels");
	check_bad("12345678901234567890123456789012345678901234567890123456789012345", "longer than 63");
}

TEST(every_cut_and_every_byte_change_is_safe)
{
	/* Under ASan: no prefix of a valid document and no single-byte change reads
	 * out of bounds, leaks, or yields a value with a partial tree. */
	const char *doc = "{\"end\": {\"kind\": \"panic\", \"msg\": \"a\\u00e9\\\"\", \"n\": [1, -2.5e1, true,"
			  " null, {}]}, \"w\": [{\"cpu\": 0, \"old\": \"dummy\"}]}";
	size_t len = strlen(doc);
	char *buf = malloc(len);
	int parsed = 0;
	for (size_t cut = 0; cut <= len; cut++) {
		memcpy(buf, doc, cut);
		struct kbu_err err = {0};
		struct kbu_json *j = kbu_json_parse(buf, cut, &err);
		if (cut == len)
			CHECK(j != NULL);
		else
			CHECK(j == NULL && err.code == KBU_EFORMAT);
		kbu_json_free(j);
	}
	static const char repl[] = "\"\\{}[],:0-.eu\x80\xff ";
	for (size_t pos = 0; pos < len; pos++)
		for (size_t r = 0; r < sizeof(repl) - 1; r++) {
			memcpy(buf, doc, len);
			buf[pos] = repl[r];
			struct kbu_err err = {0};
			struct kbu_json *j = kbu_json_parse(buf, len, &err);
			parsed += j != NULL;
			CHECK(j != NULL || err.code == KBU_EFORMAT);
			kbu_json_free(j);
		}
	CHECK(parsed > 0);
	free(buf);
}

int main(void)
{
	RUN(values_and_paths);
	RUN(strings_decode_escapes_and_utf8);
	RUN(malformed_input_says_what_and_where);
	RUN(every_cut_and_every_byte_change_is_safe);
	CHECK_DONE("test_json");
}
