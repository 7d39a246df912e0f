/*
 * kbu memory sources driven by a caller's functions: a plain callback source
 * (C tests, a program with its own reader) and the debugger source the GDB
 * extension uses through ctypes. The debugger only moves bytes and packets;
 * how physical memory is read (QEMU's physical mode, the monitor's xp, or
 * not at all) and what the monitor's texts say is decided and parsed here.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdb_qemu.h"
#include "kbu/mem.h"

#define CB_MONITOR_MAX (256u * 1024u)
#define CB_MSG 256u

/* A callback's message, or `fallback` when it gave none. */
static const char *cb_msg(char *msg, const char *fallback)
{
	msg[CB_MSG - 1] = '\0';
	return msg[0] ? msg : fallback;
}

/* The kbu error of a callback's return value rc (not 0). */
static int cb_code(int rc, int negative)
{
	if (rc < 0)
		return negative;
	return rc > KBU_OK && rc <= KBU_EINTR ? rc : KBU_EIO;
}

/* ---- the plain callback source ---- */

struct cb_source {
	struct kbu_mem_ops ops;
	kbu_read_cb read;
	kbu_regs_cb regs;
	kbu_monitor_cb monitor;
	int ncpus;
	void *user;
};

static int cb_read(void *ctx, enum kbu_space s, uint64_t addr, void *buf, size_t len,
		   struct kbu_err *err)
{
	struct cb_source *c = ctx;
	char msg[CB_MSG] = "";
	int rc = c->read(c->user, (int)s, addr, buf, len, msg, sizeof msg);
	if (rc == 0)
		return 0;
	return kbu_err_set(err, cb_code(rc, KBU_EFAULT), "%s", cb_msg(msg, "the reader could not read it"));
}

static int cb_regs(void *ctx, int cpu, struct kbu_regs *out, struct kbu_err *err)
{
	struct cb_source *c = ctx;
	char msg[CB_MSG] = "";
	int rc = c->regs(c->user, cpu, out, msg, sizeof msg);
	if (rc == 0)
		return 0;
	return kbu_err_set(err, cb_code(rc, KBU_EIO), "registers of CPU %d: %s", cpu,
			   cb_msg(msg, "the reader could not give them"));
}

static int cb_monitor(void *ctx, const char *cmd, char **out, struct kbu_err *err)
{
	struct cb_source *c = ctx;
	char msg[CB_MSG] = "";
	char *buf = calloc(1, CB_MONITOR_MAX);
	if (!buf)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory for monitor output");
	int rc = c->monitor(c->user, cmd, buf, CB_MONITOR_MAX, msg, sizeof msg);
	if (rc != 0) {
		free(buf);
		return kbu_err_set(err, cb_code(rc, KBU_EIO), "monitor command '%s': %s", cmd,
				   cb_msg(msg, "failed"));
	}
	buf[CB_MONITOR_MAX - 1] = '\0';
	*out = buf;
	return 0;
}

static int cb_ncpus(void *ctx) { return ((struct cb_source *)ctx)->ncpus; }

static void cb_close(void *ctx) { free(ctx); }

struct kbu_mem *kbu_mem_open_callback(kbu_read_cb read, kbu_regs_cb regs, kbu_monitor_cb monitor,
				      int ncpus, void *user, size_t max_read, struct kbu_err *err)
{
	if (!read) {
		kbu_err_set(err, KBU_EINVAL, "callback source without a read function");
		return NULL;
	}
	struct cb_source *c = calloc(1, sizeof *c);
	if (!c) {
		kbu_err_set(err, KBU_ENOMEM, "out of memory for the callback source");
		return NULL;
	}
	c->read = read;
	c->regs = regs;
	c->monitor = monitor;
	c->ncpus = ncpus < 0 ? 0 : ncpus;
	c->user = user;
	c->ops.kind = "callback";
	c->ops.read = cb_read;
	c->ops.regs = regs ? cb_regs : NULL;
	c->ops.monitor = monitor ? cb_monitor : NULL;
	c->ops.ncpus = cb_ncpus;
	c->ops.close = cb_close;
	c->ops.max_read = max_read;
	return kbu_mem_new(&c->ops, c, err);
}

/* ---- the debugger source ---- */

enum phys_method { PHYS_UNKNOWN = 0, PHYS_PACKET, PHYS_XP, PHYS_NONE };

#define XP_CHUNK 4096u   /* bytes per "xp" (about 32 KiB of monitor text) */
#define DBG_REPLY 1024u  /* the physical-mode replies are a few bytes */
#define MAX_RANGES 64

struct dbg_source {
	struct kbu_mem_ops ops;
	struct kbu_debugger_ops d;
	void *user;
	enum phys_method phys;
	int ranges_known;
	int nranges;
	uint64_t range_start[MAX_RANGES], range_end[MAX_RANGES];
};

static const char *const phys_names[] = {"", "packet", "xp", "none"};

/* The callback's failure as a kbu error: a negative return is an interruption. */
static int dbg_fail(struct kbu_err *err, int rc, char *msg, const char *what)
{
	if (rc < 0)
		return kbu_err_set(err, KBU_EINTR, "interrupted");
	return kbu_err_set(err, cb_code(rc, KBU_EIO), "%s", cb_msg(msg, what));
}

static int dbg_packet(struct dbg_source *s, const char *pkt, char *reply, struct kbu_err *err)
{
	char msg[CB_MSG] = "";
	reply[0] = '\0';
	int rc = s->d.packet(s->user, pkt, reply, DBG_REPLY, msg, sizeof msg);
	if (rc != 0)
		return dbg_fail(err, rc, msg, "the debugger could not send the packet");
	reply[DBG_REPLY - 1] = '\0';
	return 0;
}

static int dbg_monitor_text(struct dbg_source *s, const char *cmd, char **out, struct kbu_err *err)
{
	char msg[CB_MSG] = "";
	char *buf = calloc(1, CB_MONITOR_MAX);
	if (!buf)
		return kbu_err_set(err, KBU_ENOMEM, "out of memory for monitor output");
	int rc = s->d.monitor(s->user, cmd, buf, CB_MONITOR_MAX, msg, sizeof msg);
	if (rc != 0) {
		free(buf);
		if (rc < 0)
			return kbu_err_set(err, KBU_EINTR, "interrupted");
		return kbu_err_set(err, cb_code(rc, KBU_EIO), "monitor command '%s': %s", cmd,
				   cb_msg(msg, "failed"));
	}
	buf[CB_MONITOR_MAX - 1] = '\0';
	*out = buf;
	return 0;
}

/* Reads the way the debugger does (virtual, or physical in physical mode). */
static int dbg_raw(struct dbg_source *s, uint64_t addr, void *buf, size_t len, struct kbu_err *err)
{
	char msg[CB_MSG] = "";
	int rc = s->d.read(s->user, addr, buf, len, msg, sizeof msg);
	if (rc == 0)
		return 0;
	return dbg_fail(err, rc, msg, "the debugger could not read it");
}

/*
 * How physical memory is read: QEMU's stub answers qqemu.PhyMemMode with its
 * mode ("0" or "1"); a stub without it answers "" and may still have a monitor
 * whose xp reads physical memory; Firecracker's has neither.
 */
static int dbg_probe_phys(struct dbg_source *s, struct kbu_err *err)
{
	if (s->phys != PHYS_UNKNOWN)
		return 0;
	char reply[DBG_REPLY];
	struct kbu_err e = {0};
	if (s->d.packet) {
		if (dbg_packet(s, "qqemu.PhyMemMode", reply, &e) == 0) {
			if (strcmp(reply, "0") == 0 || strcmp(reply, "1") == 0) {
				s->phys = PHYS_PACKET;
				return 0;
			}
		} else if (e.code == KBU_EINTR || e.code == KBU_ECONN) {
			*err = e;
			return -1;
		}
	}
	if (s->d.monitor) {
		char *text = NULL;
		uint8_t b;
		if (dbg_monitor_text(s, "xp /1bx 0", &text, &e) == 0) {
			int ok = gdbq_parse_xp(text, 0, &b, 1, &e) == 0;
			free(text);
			if (ok) {
				s->phys = PHYS_XP;
				return 0;
			}
		} else if (e.code == KBU_EINTR || e.code == KBU_ECONN) {
			*err = e;
			return -1;
		}
	}
	s->phys = PHYS_NONE;
	return 0;
}

/* Physical mode on, the read, and physical mode off again whatever happened. */
static int dbg_read_phys_packet(struct dbg_source *s, uint64_t addr, void *buf, size_t len,
				struct kbu_err *err)
{
	char reply[DBG_REPLY];
	if (dbg_packet(s, GDBQ_PHYS_ON, reply, err) < 0)
		return -1;
	if (strcmp(reply, "OK") != 0) {
		struct kbu_err ignored;
		dbg_packet(s, GDBQ_PHYS_OFF, reply, &ignored);
		return kbu_err_set(err, KBU_EUNSUPPORTED, "the stub refused " GDBQ_PHYS_ON);
	}
	int rc = dbg_raw(s, addr, buf, len, err);
	struct kbu_err off = {0};
	for (int tries = 0; tries < 3; tries++) {
		/* Interrupted or not, the stub must not stay in physical mode. */
		if (dbg_packet(s, GDBQ_PHYS_OFF, reply, &off) == 0 && strcmp(reply, "OK") == 0)
			return rc;
	}
	if (rc < 0)
		return -1;
	return kbu_err_set(err, KBU_ECONN, "the stub did not confirm switching physical memory mode "
			   "back off (%s)", off.msg[0] ? off.msg : reply);
}

static int dbg_read_phys_xp(struct dbg_source *s, uint64_t addr, void *buf, size_t len,
			    struct kbu_err *err)
{
	uint8_t *p = buf;
	while (len) {
		size_t n = len < XP_CHUNK ? len : XP_CHUNK;
		char cmd[64];
		char *text = NULL;
		gdbq_xp_command(addr, n, cmd, sizeof cmd);
		if (dbg_monitor_text(s, cmd, &text, err) < 0)
			return -1;
		int rc = gdbq_parse_xp(text, addr, p, n, err);
		free(text);
		if (rc < 0)
			return -1;
		addr += n;
		p += n;
		len -= n;
	}
	return 0;
}

static int dbg_read(void *ctx, enum kbu_space space, uint64_t addr, void *buf, size_t len,
		    struct kbu_err *err)
{
	struct dbg_source *s = ctx;
	if (space == KBU_VIRT)
		return dbg_raw(s, addr, buf, len, err);
	if (dbg_probe_phys(s, err) < 0)
		return -1;
	switch (s->phys) {
	case PHYS_PACKET:
		return dbg_read_phys_packet(s, addr, buf, len, err);
	case PHYS_XP:
		return dbg_read_phys_xp(s, addr, buf, len, err);
	default:
		/* struct kbu_mem then reads through the guest's own mappings. */
		return kbu_err_set(err, KBU_EUNSUPPORTED,
				   "this stub has neither a physical memory mode (Qqemu.PhyMemMode) "
				   "nor a monitor (xp)");
	}
}

static int dbg_regs(void *ctx, int cpu, struct kbu_regs *out, struct kbu_err *err)
{
	struct dbg_source *s = ctx;
	char msg[CB_MSG] = "";
	int rc = s->d.regs(s->user, cpu, out, msg, sizeof msg);
	if (rc == 0)
		return 0;
	if (rc < 0)
		return kbu_err_set(err, KBU_EINTR, "interrupted");
	return kbu_err_set(err, cb_code(rc, KBU_EIO), "registers of CPU %d: %s", cpu,
			   cb_msg(msg, "the debugger could not give them"));
}

static int dbg_monitor(void *ctx, const char *cmd, char **out, struct kbu_err *err)
{
	return dbg_monitor_text(ctx, cmd, out, err);
}

static int dbg_ncpus(void *ctx)
{
	struct dbg_source *s = ctx;
	int n = s->d.ncpus ? s->d.ncpus(s->user) : 0;
	return n < 0 ? 0 : n;
}

/* QEMU reads unbacked physical memory as zeros: the monitor's flat view
 * says which ranges are RAM or ROM. */
static int dbg_ranges(void *ctx, uint64_t *start, uint64_t *end, int max)
{
	struct dbg_source *s = ctx;
	if (!s->ranges_known) {
		s->ranges_known = 1;
		char *text = NULL;
		struct kbu_err e;
		if (s->d.monitor && dbg_monitor_text(s, "info mtree -f", &text, &e) == 0) {
			s->nranges = gdbq_parse_mtree(text, s->range_start, s->range_end, MAX_RANGES);
			free(text);
		}
	}
	int n = s->nranges < max ? s->nranges : max;
	for (int i = 0; i < n; i++) {
		start[i] = s->range_start[i];
		end[i] = s->range_end[i];
	}
	return n;
}

static void dbg_close(void *ctx) { free(ctx); }

struct kbu_mem *kbu_mem_open_debugger(const struct kbu_debugger_ops *ops, void *user,
				      struct kbu_err *err)
{
	if (!ops || !ops->read) {
		kbu_err_set(err, KBU_EINVAL, "debugger source without a read function");
		return NULL;
	}
	struct dbg_source *s = calloc(1, sizeof *s);
	if (!s) {
		kbu_err_set(err, KBU_ENOMEM, "out of memory for the debugger source");
		return NULL;
	}
	s->d = *ops;
	s->user = user;
	s->ops.kind = "debugger";
	s->ops.read = dbg_read;
	s->ops.regs = ops->regs ? dbg_regs : NULL;
	s->ops.monitor = ops->monitor ? dbg_monitor : NULL;
	s->ops.ncpus = dbg_ncpus;
	s->ops.ranges = ops->monitor ? dbg_ranges : NULL;
	s->ops.close = dbg_close;
	s->ops.max_read = ops->max_read ? ops->max_read : 64u * 1024u;
	return kbu_mem_new(&s->ops, s, err);
}

const char *kbu_mem_debugger_phys_method(const struct kbu_mem *m)
{
	if (!m || strcmp(kbu_mem_kind(m), "debugger") != 0)
		return NULL;
	const struct dbg_source *s = kbu_mem_source_ctx(m);
	return phys_names[s->phys];
}
