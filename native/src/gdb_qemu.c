/*
 * kbu: QEMU's extensions to the GDB remote protocol: the physical memory
 * mode, monitor commands (qRcmd), and the monitor texts kbu reads and, as
 * `kbu serve`, writes.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdb_qemu.h"
#include "kbu/util.h"

int gdbq_check_phys_mode(struct rsp_conn *c, const struct rbuf *on, const struct rbuf *off,
			 int *no_phys, struct kbu_err *err)
{
	if (on->len == 0) {
		*no_phys = 1;
		return kbu_err_set(err, KBU_EUNSUPPORTED,
				   "gdb stub %s has no physical memory mode (Qqemu.PhyMemMode)", c->where);
	}
	if (off->len != 2 || memcmp(off->p, "OK", 2) != 0) {
		char shown[40];
		rsp_pkt_name(off->p ? off->p : "", off->len, shown, sizeof shown);
		return rsp_fail(c, err, "did not confirm switching physical memory mode back off ('%s')",
				shown);
	}
	if (on->len != 2 || memcmp(on->p, "OK", 2) != 0) {
		char shown[40];
		rsp_pkt_name(on->p, on->len, shown, sizeof shown);
		return kbu_err_set(err, KBU_EUNSUPPORTED, "gdb stub %s refused physical memory mode ('%s')",
				   c->where, shown);
	}
	return 0;
}

int gdbq_rcmd_packet(const char *cmd, char *pkt, size_t cap)
{
	size_t cl = strlen(cmd);
	if (6 + 2 * cl + 1 > cap)
		return -1;
	memcpy(pkt, "qRcmd,", 6);
	rsp_hex_encode(cmd, cl, pkt + 6);
	return 0;
}

int gdbq_monitor(struct rsp_conn *c, size_t packet_size, const char *cmd, char **out,
		 struct kbu_err *err)
{
	if (rsp_alive(c, err))
		return -1;
	size_t cl = strlen(cmd);
	if (6 + 2 * cl + 4 > packet_size)
		return kbu_err_set(err, KBU_EINVAL, "monitor command of %zu characters is too long for the stub",
				   cl);
	char *pkt = malloc(7 + 2 * cl);
	if (!pkt)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory for a monitor command");
	gdbq_rcmd_packet(cmd, pkt, 7 + 2 * cl);
	char what[48], shown[40];
	rsp_pkt_name(cmd, cl, shown, sizeof shown);
	snprintf(what, sizeof what, "monitor %s", shown);
	int rc = rsp_send_packet(c, pkt, 6 + 2 * cl, err);
	free(pkt);
	if (rc || (c->ack && rsp_wait_ack(c, what, err)))
		return -1;
	struct rbuf text = {0}, r = {0};
	int stale = 0;
	if (rbuf_reserve(&text, 0, err))
		return -1;
	for (;;) {
		if (rsp_recv(c, &r, what, NULL, 0, err))
			goto fail;
		if (rsp_is_stop_reply(&r) || strstr(r.p, "PacketSize=")) {
			c->stale_replies++; /* left over from earlier: a late stop packet */
			if (++stale > RSP_MAX_STALE) {
				rsp_fail(c, err, "sent more than %d stale replies before the output of '%s'",
					 RSP_MAX_STALE, shown);
				goto fail;
			}
			continue;
		}
		if (r.len == 2 && memcmp(r.p, "OK", 2) == 0)
			break;
		if (r.len == 0) {
			kbu_err_set(err, KBU_EUNSUPPORTED, "gdb stub %s has no monitor (qRcmd)", c->where);
			goto fail;
		}
		if (rsp_is_error_reply(&r)) {
			char *t = kbu_escape_dup(text.p, text.len < 200 ? text.len : 200, NULL);
			char *e = kbu_escape_dup(r.p, r.len < 60 ? r.len : 60, NULL);
			kbu_err_set(err, KBU_EINVAL, "monitor command '%s' failed (gdb stub error %s)%s%s",
				    shown, e ? e : "", text.len ? ": " : "", t ? t : "");
			free(t);
			free(e);
			goto fail;
		}
		/* "O<hex>" is console output; bare hex is a final answer from some stubs. */
		size_t start = r.p[0] == 'O' ? 1 : 0;
		size_t hl = r.len - start;
		if (text.len + hl / 2 > RSP_MAX_MONITOR) {
			rsp_fail(c, err, "monitor output of '%s' exceeds %u bytes", shown, RSP_MAX_MONITOR);
			goto fail;
		}
		struct kbu_err he = {0};
		if (rsp_hex_text(r.p + start, hl, &text, &he)) {
			char bad[40];
			rsp_pkt_name(r.p, r.len, bad, sizeof bad);
			rsp_fail(c, err, "answered monitor command '%s' with '%s' (%s)", shown, bad, he.msg);
			goto fail;
		}
		if (start == 0)
			break;
	}
	rbuf_free(&r);
	*out = text.p;
	return 0;
fail:
	rbuf_free(&r);
	rbuf_free(&text);
	return -1;
}

int gdbq_xp_command(uint64_t addr, size_t len, char *cmd, size_t cap)
{
	int n = snprintf(cmd, cap, "xp /%zubx 0x%" PRIx64, len, addr);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Skips blanks (not newlines). */
static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
		p++;
	return p;
}

/* A hex number at p (no 0x): its value and the character after it; NULL if none. */
static const char *hex_number(const char *p, const char *end, uint64_t *v)
{
	const char *start = p;
	uint64_t x = 0;
	for (; p < end && kbu_hex_digit((unsigned char)*p) >= 0; p++) {
		if (p - start >= 16)
			return NULL;
		x = x << 4 | (uint64_t)kbu_hex_digit((unsigned char)*p);
	}
	if (p == start)
		return NULL;
	*v = x;
	return p;
}

int gdbq_parse_xp(const char *text, uint64_t addr, uint8_t *buf, size_t len, struct kbu_err *err)
{
	if (len == 0)
		return 0;
	uint8_t *got = calloc(len, 1);
	if (!got)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory parsing xp output");
	const char *line = text ? text : "";
	while (*line) {
		const char *eol = strchr(line, '\n');
		const char *end = eol ? eol : line + strlen(line);
		uint64_t base;
		const char *p = hex_number(skip_blanks(line, end), end, &base);
		if (p && p < end && *p == ':') {
			p++;
			/* "0x12" tokens, each one byte further */
			for (uint64_t a = base;; a++) {
				p = skip_blanks(p, end);
				if (end - p < 3 || p[0] != '0' || (p[1] != 'x' && p[1] != 'X'))
					break;
				uint64_t v;
				const char *q = hex_number(p + 2, end, &v);
				if (!q || q - (p + 2) > 2 || (q < end && *q != ' ' && *q != '\t' && *q != '\r'))
					break;
				if (a >= addr && a - addr < len) {
					buf[a - addr] = (uint8_t)v;
					got[a - addr] = 1;
				}
				p = q;
				if (a == UINT64_MAX)
					break;
			}
		}
		if (!eol)
			break;
		line = eol + 1;
	}
	for (size_t i = 0; i < len; i++)
		if (!got[i]) {
			free(got);
			return kbu_err_set(err, KBU_EFAULT, "monitor xp gave no byte for physical 0x%" PRIx64,
					   addr + i);
		}
	free(got);
	return 0;
}

/*
 * Guest RAM and ROM from QEMU's "info mtree -f": the flat view of the
 * "memory" address space, lines "  START-END (prio N, ram): name". QEMU reads
 * unbacked physical memory as zeros through the stub, so scans need this to
 * tell memory from nothing.
 */
int gdbq_parse_mtree(const char *text, uint64_t *start, uint64_t *end, int max)
{
	int n = 0, in_memory = 0;
	const char *line = text;
	while (*line && n < max) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		if (len >= 8 && strncmp(line, "FlatView", 8) == 0)
			in_memory = 0;
		else if (len >= 12 && strncmp(line, " AS \"memory\"", 12) == 0)
			in_memory = 1;
		else if (in_memory && len > 40 && line[0] == ' ' && line[1] == ' ') {
			unsigned long long a, b;
			char kind[16];
			int prio;
			if (sscanf(line, " %llx-%llx (prio %d, %15[^)])", &a, &b, &prio, kind) == 4 &&
			    b >= a && b < UINT64_MAX && (strncmp(kind, "ram", 3) == 0 || strncmp(kind, "rom", 3) == 0)) {
				if (n > 0 && end[n - 1] == a)
					end[n - 1] = b + 1;
				else {
					start[n] = a;
					end[n] = b + 1;
					n++;
				}
			}
		}
		if (!eol)
			break;
		line = eol + 1;
	}
	return n;
}

void gdbq_parse_info_registers(const char *text, int index, struct kbu_regs *out, int *bases,
			       int *dt)
{
	*bases = *dt = 0;
	char tag[24];
	int tl = snprintf(tag, sizeof tag, "CPU#%d", index);
	const char *p = text;
	for (;; p += tl) {
		p = strstr(p, tag);
		if (!p)
			return;
		if ((p == text || p[-1] == '\n') && (p[tl] == '\r' || p[tl] == '\n'))
			break;
	}
	const char *end = strstr(p + tl, "CPU#");
	if (!end)
		end = p + strlen(p);
	static const char seg_names[6][5] = {"ES =", "CS =", "SS =", "DS =", "FS =", "GS ="};
	uint64_t *seg_base[6] = {&out->es_base, &out->cs_base, &out->ss_base,
				 &out->ds_base, NULL, NULL}; /* fs/gs bases come from the stub */
	unsigned segs = 0, tables = 0;
	for (const char *line = p; line < end;) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		size_t len = eol ? (size_t)(eol - line) : (size_t)(end - line);
		unsigned sel, limit;
		unsigned long long base;
		for (int k = 0; k < 6 && len > 8; k++)
			if (memcmp(line, seg_names[k], 4) == 0 &&
			    sscanf(line + 4, "%x %llx", &sel, &base) == 2) {
				if (seg_base[k])
					*seg_base[k] = base;
				segs |= 1u << k;
			}
		if (len > 8 && (memcmp(line, "GDT=", 4) == 0 || memcmp(line, "IDT=", 4) == 0) &&
		    sscanf(line + 4, " %llx %x", &base, &limit) == 2) {
			if (line[0] == 'G') {
				out->gdt_base = base;
				out->gdt_limit = limit;
				tables |= 1;
			} else {
				out->idt_base = base;
				out->idt_limit = limit;
				tables |= 2;
			}
		}
		line = eol ? eol + 1 : end;
	}
	*bases = segs == 0x3f;
	*dt = tables == 3;
}

static int appendf(struct rbuf *b, struct kbu_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int appendf(struct rbuf *b, struct kbu_err *err, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return kbu_err_set(err, KBU_EINVAL, "cannot format monitor text");
	return rbuf_put(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1, err);
}

int gdbq_format_mtree(const uint64_t *start, const uint64_t *end, int n, struct rbuf *out,
		      struct kbu_err *err)
{
	if (appendf(out, err, "FlatView #0\n AS \"memory\", root: system\n Root memory region: system\n"))
		return -1;
	for (int i = 0; i < n; i++)
		if (end[i] > start[i] &&
		    appendf(out, err, "  %016" PRIx64 "-%016" PRIx64 " (prio 0, ram): guest memory\n",
			    start[i], end[i] - 1))
			return -1;
	return 0;
}

int gdbq_format_info_registers(int index, const struct kbu_regs *r, struct rbuf *out,
			       struct kbu_err *err)
{
	if (appendf(out, err, "CPU#%d\n", index))
		return -1;
	if ((r->have & KBU_HAVE_GPR) &&
	    (appendf(out, err, "RAX=%016" PRIx64 " RBX=%016" PRIx64 " RCX=%016" PRIx64 " RDX=%016" PRIx64 "\n",
		     r->rax, r->rbx, r->rcx, r->rdx) ||
	     appendf(out, err, "RSI=%016" PRIx64 " RDI=%016" PRIx64 " RBP=%016" PRIx64 " RSP=%016" PRIx64 "\n",
		     r->rsi, r->rdi, r->rbp, r->rsp) ||
	     appendf(out, err, "RIP=%016" PRIx64 " RFL=%08" PRIx64 "\n", r->rip, r->rflags)))
		return -1;
	if (r->have & KBU_HAVE_SEG) {
		const struct { const char *name; uint16_t sel; uint64_t base; } segs[6] = {
			{"ES", r->es, r->es_base}, {"CS", r->cs, r->cs_base}, {"SS", r->ss, r->ss_base},
			{"DS", r->ds, r->ds_base}, {"FS", r->fs, r->fs_base}, {"GS", r->gs, r->gs_base}};
		/* Bases only when known: the parser then says they were not given. */
		for (int k = 0; k < 6; k++) {
			int rc = (r->have & KBU_HAVE_SEGBASE)
					 ? appendf(out, err, "%s =%04x %016" PRIx64 "\n", segs[k].name,
						   segs[k].sel, segs[k].base)
					 : appendf(out, err, "%s =%04x\n", segs[k].name, segs[k].sel);
			if (rc)
				return -1;
		}
	}
	if ((r->have & KBU_HAVE_DT) &&
	    (appendf(out, err, "GDT=     %016" PRIx64 " %08" PRIx32 "\n", r->gdt_base, r->gdt_limit) ||
	     appendf(out, err, "IDT=     %016" PRIx64 " %08" PRIx32 "\n", r->idt_base, r->idt_limit)))
		return -1;
	if ((r->have & KBU_HAVE_CR) &&
	    appendf(out, err, "CR0=%08" PRIx64 " CR2=%016" PRIx64 " CR3=%016" PRIx64 " CR4=%08" PRIx64 "\n",
		    r->cr0, r->cr2, r->cr3, r->cr4))
		return -1;
	if ((r->have & KBU_HAVE_EFER) && appendf(out, err, "EFER=%016" PRIx64 "\n", r->efer))
		return -1;
	return 0;
}
