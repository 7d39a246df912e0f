/* panic(9) the FreeBSD way: panic -> vpanic, the message kept in vpanic's static buffer. */
#include "guest.h"

const char *panicstr;

KERNEL_FN void vpanic(const char *fmt, va_list ap)
{
	static char buf[256];

	disable_intr();
	if (panicstr == NULL) {
		vsnprintf(buf, sizeof(buf), fmt, ap);
		panicstr = buf;
		size_t n = strnlen(buf, sizeof(buf));
		while (n > 0 && buf[n - 1] == '\n')
			buf[--n] = '\0';
		printf("panic: %s\n", buf);
		printf("cpuid = 0\n");
		printf("time = 1\n");
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
