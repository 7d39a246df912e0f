/* panic(9) the FreeBSD way: KASSERT -> kassert_panic -> panic -> vpanic -> halt. */
#include "guest.h"

const char *panicstr;
static char panic_buf[256];
static char kassert_buf[256];

KERNEL_FN void vpanic(const char *fmt, va_list ap)
{
	disable_intr();
	if (panicstr == NULL) {
		vsnprintf(panic_buf, sizeof(panic_buf), fmt, ap);
		panicstr = panic_buf;
		/* One final line for whoever reads the console: "panic: <msg>". */
		size_t n = strnlen(panic_buf, sizeof(panic_buf));
		while (n > 0 && panic_buf[n - 1] == '\n')
			panic_buf[--n] = '\0';
		printf("panic: %s\n", panic_buf);
	} else {
		printf("panic: nested panic\n");
	}
	cpu_halt_forever();
}

KERNEL_FN void panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vpanic(fmt, ap);
}

KERNEL_FN void kassert_panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(kassert_buf, sizeof(kassert_buf), fmt, ap);
	va_end(ap);
	panic("%s", kassert_buf);
}
