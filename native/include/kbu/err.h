/* kbu: errors are values with a message, never aborts. */
#ifndef KBU_ERR_H
#define KBU_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

enum kbu_errcode {
	KBU_OK = 0,
	KBU_EINVAL,      /* bad argument or usage */
	KBU_EIO,         /* the OS refused a read/open */
	KBU_EFORMAT,     /* bytes are not what they claim to be (truncated, corrupt) */
	KBU_ENOTFOUND,   /* a symbol, table or structure is not there */
	KBU_ENOMEM,
	KBU_EUNSUPPORTED,/* the source or the format cannot do this */
	KBU_ECONN,       /* the stub went away or spoke nonsense */
	KBU_EFAULT,      /* an address has no backing memory (missing page) */
	KBU_EINTR,       /* the user interrupted it (Ctrl-C in the debugger) */
};

struct kbu_err {
	int code;
	char msg[512];
};

/* Sets code and message; always returns -1 so callers can `return kbu_err_set(...)`. */
int kbu_err_set(struct kbu_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prepends "context: " to the existing message; returns -1. */
int kbu_err_prefix(struct kbu_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void kbu_err_clear(struct kbu_err *e);
const char *kbu_errcode_name(int code);

#ifdef __cplusplus
}
#endif
#endif
