/* kbu unit tests: a tiny harness. Each test_*.c defines tests with TEST(name)
 * and lists them in main via RUN(name); the last line is "N passed, N failed". */
#ifndef KBU_CHECK_H
#define KBU_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failed_in_test;
static int check_passed, check_failed;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
		check_failed_in_test = 1; \
	} } while (0)

#define CHECK_EQ_U64(a, b) do { \
	uint64_t check_a_ = (uint64_t)(a), check_b_ = (uint64_t)(b); \
	if (check_a_ != check_b_) { \
		fprintf(stderr, "%s:%d: %s == %s failed: 0x%" PRIx64 " != 0x%" PRIx64 "\n", \
			__FILE__, __LINE__, #a, #b, check_a_, check_b_); \
		check_failed_in_test = 1; \
	} } while (0)

#define CHECK_STR(a, b) do { \
	const char *check_a_ = (a), *check_b_ = (b); \
	if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) { \
		fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
			#a, #b, check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)"); \
		check_failed_in_test = 1; \
	} } while (0)

#define CHECK_CONTAINS(hay, needle) do { \
	const char *check_h_ = (hay), *check_n_ = (needle); \
	if (!check_h_ || !strstr(check_h_, check_n_)) { \
		fprintf(stderr, "%s:%d: \"%s\" not found in:\n%s\n", __FILE__, __LINE__, \
			check_n_, check_h_ ? check_h_ : "(null)"); \
		check_failed_in_test = 1; \
	} } while (0)

#define TEST(name) static void name(void)
#define RUN(name) do { \
	check_failed_in_test = 0; name(); \
	if (check_failed_in_test) { check_failed++; fprintf(stderr, "FAIL %s\n", #name); } \
	else check_passed++; } while (0)
#define CHECK_DONE(file) do { \
	printf("%s: %d passed, %d failed\n", file, check_passed, check_failed); \
	return check_failed ? 1 : 0; } while (0)

#endif
