/* kbu: error values. Messages are formatted once, truncated safely. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kbu/err.h"

int kbu_err_set(struct kbu_err *e, int code, const char *fmt, ...)
{
	if (!e)
		return -1;
	va_list ap;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

int kbu_err_prefix(struct kbu_err *e, const char *fmt, ...)
{
	if (!e)
		return -1;
	char pre[sizeof e->msg];
	char old[sizeof e->msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof old);
	old[sizeof old - 1] = '\0';
	/* Truncation is fine here: the message stays NUL-terminated. */
	size_t n = strlen(pre);
	if (n > sizeof e->msg - 3)
		n = sizeof e->msg - 3;
	memcpy(e->msg, pre, n);
	memcpy(e->msg + n, ": ", 3);
	size_t room = sizeof e->msg - n - 3;
	size_t olen = strnlen(old, room);
	memcpy(e->msg + n + 2, old, olen);
	e->msg[n + 2 + olen] = '\0';
	if (e->code == KBU_OK)
		e->code = KBU_EINVAL;
	return -1;
}

void kbu_err_clear(struct kbu_err *e)
{
	if (!e)
		return;
	e->code = KBU_OK;
	e->msg[0] = '\0';
}

const char *kbu_errcode_name(int code)
{
	switch (code) {
	case KBU_OK: return "ok";
	case KBU_EINVAL: return "invalid";
	case KBU_EIO: return "io";
	case KBU_EFORMAT: return "format";
	case KBU_ENOTFOUND: return "not-found";
	case KBU_ENOMEM: return "no-memory";
	case KBU_EUNSUPPORTED: return "unsupported";
	case KBU_ECONN: return "connection";
	case KBU_EFAULT: return "fault";
	case KBU_EINTR: return "interrupted";
	}
	return "unknown";
}
