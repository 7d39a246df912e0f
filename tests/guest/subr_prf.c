/* printf to COM1 and to the FreeBSD-layout message buffer, plus the few libc bits we need. */
#include "guest.h"
#include "msgbuf.h"

#define COM1      0x3f8
#define COM_LSR   5
#define LSR_THRE  0x20
#define MSGBUF_SIZE 0x4000

static char msgbuf_area[MSGBUF_SIZE];
static struct msgbuf msgbuf_hdr;
struct msgbuf *msgbufp;

void cninit(void)
{
	outb(COM1 + 1, 0x00);   /* no interrupts */
	outb(COM1 + 3, 0x80);   /* DLAB */
	outb(COM1 + 0, 0x01);   /* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03);   /* 8N1 */
	outb(COM1 + 2, 0xc7);   /* FIFO on */
}

static void uart_putc(int c)
{
	/* Bounded wait: a missing UART must not hang the kernel. */
	for (int i = 0; i < 100000 && !(inb(COM1 + COM_LSR) & LSR_THRE); i++)
		cpu_pause();
	outb(COM1, (u_char)c);
}

/* FreeBSD's msgbuf_init: clear the area, seqmod = 16 * size. */
void msgbuf_init(void)
{
	struct msgbuf *mbp = &msgbuf_hdr;

	memset(msgbuf_area, 0, sizeof(msgbuf_area));
	mbp->msg_ptr = msgbuf_area;
	mbp->msg_size = MSGBUF_SIZE;
	mbp->msg_seqmod = MSGBUF_SIZE * 16;
	mbp->msg_wseq = 0;
	mbp->msg_rseq = 0;
	mbp->msg_cksum = 0;
	mbp->msg_lastpri = -1;
	mbp->msg_flags = 0;
	mbp->msg_lock.lo_name = "msgbuf";
	mbp->msg_magic = MSG_MAGIC;
	msgbufp = mbp;
}

/* FreeBSD's msgbuf_do_addchar: the checksum is the byte sum of the area. */
KERNEL_FN void msgbuf_addchar(struct msgbuf *mbp, int c)
{
	u_int pos = MSGBUF_SEQ_TO_POS(mbp, mbp->msg_wseq);

	mbp->msg_cksum += (u_int)(u_char)c - (u_int)(u_char)mbp->msg_ptr[pos];
	mbp->msg_ptr[pos] = (char)c;
	mbp->msg_wseq = MSGBUF_SEQNORM(mbp, mbp->msg_wseq + 1);
	if (c == '\n')
		mbp->msg_flags &= ~MSGBUF_NEEDNL;
	else
		mbp->msg_flags |= MSGBUF_NEEDNL;
}

void cnputc(int c)
{
	if (c == '\n')
		uart_putc('\r');
	uart_putc(c);
	if (msgbufp != NULL && msgbufp->msg_magic == MSG_MAGIC)
		msgbuf_addchar(msgbufp, c);
}

void *memcpy(void *dst, const void *src, size_t n)
{
	u_char *d = dst;
	const u_char *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	u_char *d = dst;
	while (n--)
		*d++ = (u_char)c;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const u_char *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;
	while (n < max && s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (u_char)*a - (u_char)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

/* Output sink: a bounded buffer, or the console when buf is NULL. */
struct sink {
	char *buf;
	size_t size;
	size_t len;
};

static void sink_put(struct sink *s, char c)
{
	if (s->buf == NULL)
		cnputc(c);
	else if (s->len + 1 < s->size)
		s->buf[s->len] = c;
	s->len++;
}

static void put_number(struct sink *s, uint64_t v, int base, bool neg, int width, char pad, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = digits[v % (uint64_t)base];
		v /= (uint64_t)base;
	} while (v != 0);
	if (neg)
		width--;
	if (neg && pad == '0')
		sink_put(s, '-');
	for (int i = n; i < width; i++)
		sink_put(s, pad);
	if (neg && pad != '0')
		sink_put(s, '-');
	while (n > 0)
		sink_put(s, tmp[--n]);
}

/*
 * %[-0][width][l|ll|j|z](d|i|u|x|X|p|s|c|%), and FreeBSD's %b: an int, then
 * a bit description (its first byte the base to print the value in, then for
 * each bit its number from 1 and its name), printed as VALUE<NAME,NAME,...>.
 */
static void kvprintf(struct sink *s, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			sink_put(s, *fmt);
			continue;
		}
		fmt++;
		bool left = false;
		char pad = ' ';
		int width = 0, lng = 0;
		for (; *fmt == '-' || *fmt == '0'; fmt++) {
			if (*fmt == '-')
				left = true;
			else
				pad = '0';
		}
		for (; *fmt >= '0' && *fmt <= '9'; fmt++)
			width = width * 10 + (*fmt - '0');
		for (; *fmt == 'l' || *fmt == 'j' || *fmt == 'z'; fmt++)
			lng = 1;
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			put_number(s, v < 0 ? (uint64_t)-v : (uint64_t)v, 10, v < 0, width, pad, false);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, u_int);
			put_number(s, v, *fmt == 'u' ? 10 : 16, false, width, pad, *fmt == 'X');
			break;
		}
		case 'p':
			sink_put(s, '0');
			sink_put(s, 'x');
			put_number(s, (uintptr_t)va_arg(ap, void *), 16, false, width, pad, false);
			break;
		case 's': {
			const char *str = va_arg(ap, const char *);
			if (str == NULL)
				str = "(null)";
			int n = (int)strnlen(str, 4096);
			if (!left)
				for (int i = n; i < width; i++)
					sink_put(s, ' ');
			for (int i = 0; i < n; i++)
				sink_put(s, str[i]);
			if (left)
				for (int i = n; i < width; i++)
					sink_put(s, ' ');
			break;
		}
		case 'c':
			sink_put(s, (char)va_arg(ap, int));
			break;
		case 'b': {
			u_int v = va_arg(ap, u_int);
			const char *d = va_arg(ap, const char *);
			put_number(s, v, *d++, false, width, pad, false);
			bool any = false;
			while (*d) {
				int bit = *d++;
				bool on = bit >= 1 && bit <= 32 && (v & (1u << (bit - 1)));
				if (on)
					sink_put(s, any ? ',' : '<');
				for (; (unsigned char)*d > ' '; d++)
					if (on)
						sink_put(s, *d);
				any |= on;
			}
			if (any)
				sink_put(s, '>');
			break;
		}
		case '%':
			sink_put(s, '%');
			break;
		case '\0':
			return;
		default:
			sink_put(s, '%');
			sink_put(s, *fmt);
			break;
		}
	}
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink s = { buf, size, 0 };
	kvprintf(&s, fmt, ap);
	if (size > 0)
		buf[s.len < size ? s.len : size - 1] = '\0';
	return (int)s.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

int vprintf(const char *fmt, va_list ap)
{
	struct sink s = { NULL, 0, 0 };
	kvprintf(&s, fmt, ap);
	return (int)s.len;
}

/*
 * The test harness's own lines ("kbu-guest: scenario X", "kbu-guest: idle")
 * go to the serial console only: they are this kernel talking to its test
 * runner, not a kernel's log, so the message buffer (what kbu reads as the
 * kernel's log) holds only lines a FreeBSD kernel prints.
 */
int harness_printf(const char *fmt, ...)
{
	char buf[192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (const char *p = buf; *p; p++) {
		if (*p == '\n')
			uart_putc('\r');
		uart_putc(*p);
	}
	return n;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}
