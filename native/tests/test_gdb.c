/*
 * The GDB remote protocol source against a fake stub: a forked child that
 * listens on 127.0.0.1 port 0 and speaks the protocol, well or badly on
 * purpose (bad checksums, garbage, silence, a close in mid-reply).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "kbu/gdbrsp.h"
#include "kbu/mem.h"
#include "gdb_qemu.h"

enum scenario {
	SC_NORMAL,       /* QEMU-like: NoAck offered, PhyMemMode, monitor */
	SC_ACK_ONLY,     /* plain stub: acks, no QEMU extensions */
	SC_RLE,          /* run-length encodes its replies */
	SC_BADSUM_ONCE,  /* ack mode: first 'm' reply has a bad checksum, resent on '-' */
	SC_BADSUM,       /* no-ack mode: 'm' reply has a bad checksum */
	SC_GARBAGE,      /* answers 'm' with bytes that are not packets */
	SC_SILENT,       /* never answers 'm' */
	SC_CLOSE_MID,    /* closes the connection in the middle of an 'm' reply */
	SC_RUNNING,      /* ignores everything until 0x03 */
	SC_WAS_RUNNING,  /* QEMU-like: a stop packet on connect, the VM was running */
	SC_SHORT_G,      /* 'g' stops after the segment registers */
	SC_32BIT_G,      /* 32-bit mode: 4-byte registers where the layout says 8 */
	SC_SHORT_M,      /* 'm' returns at most 100 bytes */
	SC_EXITED,       /* '?' says the target has exited */
	SC_FUZZ,         /* answers 'm' and 'g' with random bytes, framing and all */
	SC_QEMU72,       /* QEMU 7.2: no NoAck mode, and it never waits for our acks */
	/* QEMU 7.2 under load, VM running: its stop packet comes after our probe
	 * gave up, and its answer to qSupported 300 ms after that */
	SC_SLOW_ATTACH,
	SC_STRAY_STOP,   /* QEMU 7.2 with a stop packet in front of the first 'm', monitor and 'Z' replies */
	SC_DUP_REPLY,    /* QEMU 7.2 answering qqemu.Supported twice */
	SC_LONG_M,       /* 'm' answers with twice the bytes asked */
	SC_ODD_M,        /* 'm' answers with an odd number of hex digits */
	SC_ESC_M,        /* 'm' answers with an error text holding terminal escapes */
	SC_DUP_THREADS,  /* the thread list names thread 1 three times: m01,01,01,02 */
	SC_MANY_THREADS, /* 3000 threads, each 'g' answered after 20 ms */
	SC_HALF_HELLO,   /* half a reply to qSupported, then silence */
};

static int qemu72_like(int sc)
{
	return sc == SC_QEMU72 || sc == SC_SLOW_ATTACH || sc == SC_STRAY_STOP || sc == SC_DUP_REPLY;
}

#define PHYS_SIZE 0x20000u
#define VBASE 0xffffffff80000000ull
#define NREG 34

struct fake {
	int fd;
	int sc;
	int ack;
	int phys_mode;
	int sel;
	int qs_calls;
	int saw_detach;
	int badsum_sent;
	int odd_done;   /* the scenario's one-off oddity was sent */
	unsigned packet_size;
	unsigned seed;
	unsigned char phys[PHYS_SIZE];
	unsigned char virt[PHYS_SIZE];
};

static const char *const fake_xml_target =
	"<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
	"<target><architecture>i386:x86-64</architecture>"
	"<!-- <reg name=\"rax\" bitsize=\"8\"/> inside a comment does not count -->"
	"<xi:include href=\"fake-core.xml\"/><xi:include href=\"fake-sys.xml\"/></target>\n";

/* Register i of the fake layout: name and size. */
static const char *const fake_names[NREG] = {
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
	"r12", "r13", "r14", "r15", "rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs",
	"st0", "fs_base", "gs_base", "k_gs_base", "cr0", "cr2", "cr3", "cr4", "cr8", "efer"};

static unsigned fake_bits(int i)
{
	if (i >= 17 && i <= 23)
		return 32;
	if (i == 24)
		return 80;
	return 64;
}

static uint64_t fake_val(int thread, int i, int sc)
{
	if (i == 33) /* efer: LMA|LME in long mode */
		return sc == SC_32BIT_G ? 0 : 0x500;
	uint64_t v = ((uint64_t)thread << 40) | ((uint64_t)(i + 1) * 0x01010101u);
	if (sc == SC_32BIT_G)
		v &= 0xffffffffu;
	return v;
}

static void fake_doc(int which, char *out, size_t cap)
{
	size_t n = 0;
	n += (size_t)snprintf(out + n, cap - n, "<?xml version=\"1.0\"?>\n<feature name=\"%s\">\n",
			      which == 0 ? "org.gnu.gdb.i386.core" : "org.qemu.gdb.i386.sys");
	for (int i = which == 0 ? 0 : 25; i < (which == 0 ? 25 : NREG); i++)
		n += (size_t)snprintf(out + n, cap - n, "  <reg name=\"%s\" bitsize=\"%u\" type=\"int\"%s/>\n",
				      fake_names[i], fake_bits(i),
				      i == 0 ? " regnum=\"0\"" : i == 25 ? " regnum=\"25\"" : "");
	snprintf(out + n, cap - n, "</feature>\n");
}

/* ---- fake stub I/O (blocking, byte at a time: it only has to be correct) ---- */

static int f_getc(struct fake *f)
{
	unsigned char c;
	ssize_t n;
	do
		n = read(f->fd, &c, 1);
	while (n < 0 && errno == EINTR);
	return n == 1 ? c : -1;
}

static void f_write(struct fake *f, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(f->fd, c, n);
		if (w <= 0)
			_exit(0x40);
		c += w;
		n -= (size_t)w;
	}
}

static void f_send_len(struct fake *f, const char *body, size_t n, int corrupt)
{
	for (;;) {
		char *frame = malloc(n + 5);
		unsigned sum = kbu_rsp_checksum(body, n);
		frame[0] = '$';
		memcpy(frame + 1, body, n);
		snprintf(frame + 1 + n, 4, "#%02x", (sum + (corrupt ? 1 : 0)) & 0xff);
		f_write(f, frame, n + 4);
		free(frame);
		if (!f->ack || qemu72_like(f->sc))
			return;
		int c = f_getc(f);
		if (c != '-')
			return;
		corrupt = 0; /* resend it right */
	}
}

static void f_send(struct fake *f, const char *body) { f_send_len(f, body, strlen(body), 0); }

/* Receives one packet into buf; returns its length, -1 at EOF, -3 for a 0x03. */
static int f_recv(struct fake *f, char *buf, size_t cap)
{
	int c;
	do {
		c = f_getc(f);
		if (c < 0)
			return -1;
		if (c == 0x03)
			return -3;
	} while (c != '$');
	size_t n = 0;
	while ((c = f_getc(f)) >= 0 && c != '#')
		if (n + 1 < cap)
			buf[n++] = (char)c;
	if (c < 0 || f_getc(f) < 0 || f_getc(f) < 0)
		return -1;
	buf[n] = '\0';
	if (f->ack)
		f_write(f, "+", 1);
	return (int)n;
}

static const char hexd[] = "0123456789abcdef";

static void hex_le(char *out, uint64_t v, unsigned bytes)
{
	for (unsigned k = 0; k < bytes; k++) {
		unsigned b = k < 8 ? (unsigned)(v >> (8 * k)) & 0xff : 0;
		out[2 * k] = hexd[b >> 4];
		out[2 * k + 1] = hexd[b & 15];
	}
	out[2 * bytes] = '\0';
}

/* Run-length encodes a reply the way a stub may: "x*<n+29>" for runs of 4+. */
static size_t rle(const char *in, char *out)
{
	size_t o = 0, n = strlen(in);
	for (size_t i = 0; i < n;) {
		size_t run = 1;
		while (i + run < n && in[i + run] == in[i] && run < 98)
			run++;
		size_t rep = run - 1;
		if (rep == 6 || rep == 7) /* counts that would be '#' or '$' */
			rep = 5;
		if (rep >= 3) {
			out[o++] = in[i];
			out[o++] = '*';
			out[o++] = (char)(rep + 29);
			i += rep + 1;
		} else {
			out[o++] = in[i++];
		}
	}
	out[o] = '\0';
	return o;
}

static void fake_monitor(struct fake *f, const char *hex)
{
	char cmd[256];
	size_t n = 0;
	for (; hex[0] && hex[1] && n + 1 < sizeof cmd; hex += 2) {
		unsigned v;
		sscanf(hex, "%2x", &v);
		cmd[n++] = (char)v;
	}
	cmd[n] = '\0';
	const char *lines[16] = {0};
	if (strcmp(cmd, "info status") == 0)
		lines[0] = "VM status: paused (prelaunch)\r\n";
	else if (strcmp(cmd, "info lapic") == 0) {
		lines[0] = "dumping local APIC state for CPU 0\n";
		lines[1] = "LVT0\t 0x00010700 active-hi edge  masked ExtINT (vec 0)\n";
	} else if (strcmp(cmd, "info registers -a") == 0 && f->sc != SC_32BIT_G) {
		lines[0] = "\r\nCPU#0\r\nRAX=0000000000000010 RBX=00000000000f31e0\r\n";
		lines[1] = "ES =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]\r\n"
			   "CS =0008 0000000000000000 ffffffff 00af9a00 DPL=0 CS64 [-R-]\r\n";
		lines[2] = "SS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]\r\n"
			   "DS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]\r\n";
		lines[3] = "FS =0000 0000000000000000 00000000 00000000\r\n"
			   "GS =0000 0000000000000000 00000000 00000000\r\n";
		lines[4] = "GDT=     ffffffff80202220 00000017\r\nIDT=     ffffffff80214580 000001ff\r\n";
		lines[5] = "CR0=80000011 CR2=0000000000000000\r\n\r\nCPU#1\r\nEAX=00000000\r\n";
		lines[6] = "ES =0000 00000000 0000ffff 00009300\r\nCS =f000 ffff0000 0000ffff 00009b00\r\n";
		lines[7] = "SS =0000 00000000 0000ffff 00009300\r\nDS =0000 00000000 0000ffff 00009300\r\n";
		lines[8] = "FS =0000 00000000 0000ffff 00009300\r\nGS =0000 00000000 0000ffff 00009300\r\n";
		lines[9] = "GDT=     00000000 0000ffff\r\nIDT=     00000000 000003ff\r\n";
	} else if (strcmp(cmd, "info mtree -f") == 0) {
		lines[0] = "FlatView #0\n AS \"I/O\", root: io\n Root memory region: io\n";
		lines[1] = "  0000000000000000-000000000000001f (prio 0, i/o): io\n\n";
		lines[2] = "FlatView #1\n AS \"memory\", root: system\n AS \"cpu-memory-0\", root: system\n";
		lines[3] = "  0000000000000000-000000000009ffff (prio 0, ram): guest.ram\n"
			   "  00000000000a0000-00000000000bffff (prio 1, i/o): vga\n"
			   "  00000000000f0000-00000000000fffff (prio 0, rom): bios\n";
		lines[4] = "  0000000000100000-0000000007ffffff (prio 0, ram): guest.ram @0000000000100000\n"
			   "  00000000fee00000-00000000feefffff (prio 4096, i/o): apic-msi\n"
			   "  00000000ffff0000-00000000ffffffff (prio 0, ram): bios\n\n";
		lines[5] = "FlatView #2\n AS \"cpu-smm-0\", root: memory\n"
			   "  0000000100000000-00000001ffffffff (prio 0, ram): not the memory view\n";
	} else {
		f_send(f, "E01");
		return;
	}
	for (int i = 0; lines[i]; i++) {
		char pkt[512];
		pkt[0] = 'O';
		size_t k = 1;
		for (const char *p = lines[i]; *p; p++) {
			pkt[k++] = hexd[(unsigned char)*p >> 4];
			pkt[k++] = hexd[(unsigned char)*p & 15];
		}
		pkt[k] = '\0';
		f_send(f, pkt);
	}
	f_send(f, "OK");
}

static void fake_read(struct fake *f, const char *args)
{
	unsigned long long a, n;
	if (sscanf(args, "%llx,%llx", &a, &n) != 2 || n > f->packet_size / 2) {
		f_send(f, "E22");
		return;
	}
	if (f->sc == SC_SHORT_M && n > 100)
		n = 100;
	const unsigned char *mem;
	unsigned long long base;
	if (f->phys_mode) {
		mem = f->phys;
		base = 0;
	} else {
		mem = f->virt;
		base = VBASE;
	}
	if (a < base || a - base >= PHYS_SIZE || n > PHYS_SIZE - (a - base)) {
		f_send(f, "E14");
		return;
	}
	char *hex = malloc(2 * n + 1), *enc = malloc(2 * n + 1);
	for (unsigned long long k = 0; k < n; k++) {
		unsigned b = mem[a - base + k] ^ (!f->phys_mode && f->sel == 2 ? 0xff : 0);
		hex[2 * k] = hexd[b >> 4];
		hex[2 * k + 1] = hexd[b & 15];
	}
	hex[2 * n] = '\0';
	if (f->sc == SC_RLE) {
		size_t el = rle(hex, enc);
		f_send_len(f, enc, el, 0);
	} else if (f->sc == SC_BADSUM_ONCE && !f->badsum_sent) {
		f->badsum_sent = 1;
		f_send_len(f, hex, 2 * n, 1);
	} else if (f->sc == SC_BADSUM) {
		f_send_len(f, hex, 2 * n, 1);
	} else {
		f_send(f, hex);
	}
	free(hex);
	free(enc);
}

static void fake_write(struct fake *f, const char *args)
{
	unsigned long long a, n;
	const char *colon = strchr(args, ':');
	if (sscanf(args, "%llx,%llx", &a, &n) != 2 || !colon || strlen(colon + 1) != 2 * n) {
		f_send(f, "E22");
		return;
	}
	unsigned char *mem = f->phys_mode ? f->phys : f->virt;
	unsigned long long base = f->phys_mode ? 0 : VBASE;
	if (a < base || a - base >= PHYS_SIZE || n > PHYS_SIZE - (a - base)) {
		f_send(f, "E14");
		return;
	}
	for (unsigned long long k = 0; k < n; k++) {
		unsigned v;
		sscanf(colon + 1 + 2 * k, "%2x", &v);
		mem[a - base + k] = (unsigned char)v;
	}
	f_send(f, "OK");
}

static void fake_regs(struct fake *f)
{
	char out[2048];
	size_t o = 0;
	int last = f->sc == SC_SHORT_G ? 23 : NREG - 1;
	for (int i = 0; i <= last; i++) {
		unsigned bytes = fake_bits(i) / 8;
		if (f->sc == SC_32BIT_G && bytes == 8 && i != 33)
			bytes = 4;
		hex_le(out + o, fake_val(f->sel, i, f->sc), bytes);
		o += 2 * bytes;
	}
	f_send(f, out);
}

static void fake_xfer(struct fake *f, const char *args)
{
	char annex[64];
	unsigned long off, len;
	if (sscanf(args, "%63[^:]:%lx,%lx", annex, &off, &len) != 3) {
		f_send(f, "E00");
		return;
	}
	char doc[4096];
	if (strcmp(annex, "target.xml") == 0)
		snprintf(doc, sizeof doc, "%s", fake_xml_target);
	else if (strcmp(annex, "fake-core.xml") == 0)
		fake_doc(0, doc, sizeof doc);
	else if (strcmp(annex, "fake-sys.xml") == 0)
		fake_doc(1, doc, sizeof doc);
	else {
		f_send(f, "E00");
		return;
	}
	size_t dl = strlen(doc);
	if (off > dl)
		off = dl;
	if (len > dl - off)
		len = dl - off;
	char out[4200];
	out[0] = off + len >= dl ? 'l' : 'm';
	memcpy(out + 1, doc + off, len);
	out[1 + len] = '\0';
	f_send(f, out);
}

static unsigned fuzz_next(unsigned *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* A random reply: mostly packet-like, with the protocol's special characters. */
static void fake_fuzz(struct fake *f)
{
	static const char alpha[] = "0123456789abcdefEOKlmT*}#$+-x \x03\xff";
	char body[700];
	unsigned n = fuzz_next(&f->seed) % 600;
	for (unsigned k = 0; k < n; k++)
		body[k] = alpha[fuzz_next(&f->seed) % (sizeof alpha - 1)];
	unsigned mode = fuzz_next(&f->seed) % 4;
	if (mode == 0) { /* raw bytes, no framing */
		f_write(f, body, n);
	} else { /* framed, checksum right (or off by one in mode 3) */
		f_send_len(f, body, n, mode == 3);
	}
}

/* An unsolicited "T02thread:01;" (what QEMU sends when a connection stops the VM). */
static void fake_stop(struct fake *f)
{
	static const char stop[] = "$T02thread:01;#";
	char sum[3];
	snprintf(sum, sizeof sum, "%02x", kbu_rsp_checksum(stop + 1, strlen(stop) - 2));
	f_write(f, stop, strlen(stop));
	f_write(f, sum, 2);
}

static void fake_serve(struct fake *f)
{
	char buf[8192];
	int running = f->sc == SC_RUNNING;
	if (f->sc == SC_SLOW_ATTACH) {
		struct timespec ts = {1, 200 * 1000 * 1000}; /* past the client's 1 s probe */
		nanosleep(&ts, NULL);
	}
	if (f->sc == SC_WAS_RUNNING || f->sc == SC_SLOW_ATTACH) /* QEMU sends it without waiting for an ack */
		fake_stop(f);
	for (;;) {
		int n = f_recv(f, buf, sizeof buf);
		if (n == -1)
			return;
		if (n == -3) {
			if (running) {
				running = 0;
				f_send(f, "T02thread:01;");
			}
			continue;
		}
		if (running)
			continue;
		if (f->sc == SC_STRAY_STOP && (buf[0] == 'm' || buf[0] == 'Z' || strncmp(buf, "qRcmd,", 6) == 0) &&
		    f->odd_done < 3) {
			f->odd_done++;
			fake_stop(f);
		}
		if (strncmp(buf, "qSupported", 10) == 0 && f->sc == SC_HALF_HELLO) {
			f_write(f, "$PacketSize=1000;qXf", 20);
			struct timespec ts = {5, 0};
			nanosleep(&ts, NULL);
			return;
		}
		if (strncmp(buf, "qSupported", 10) == 0) {
			char r[128];
			if (f->sc == SC_SLOW_ATTACH && !f->odd_done++) {
				struct timespec ts = {0, 300 * 1000 * 1000};
				nanosleep(&ts, NULL);
			}
			snprintf(r, sizeof r, "PacketSize=%x;qXfer:features:read+%s", f->packet_size,
				 f->sc == SC_ACK_ONLY || f->sc == SC_BADSUM_ONCE || qemu72_like(f->sc) ? "" : ";QStartNoAckMode+");
			f_send(f, r);
		} else if (strcmp(buf, "QStartNoAckMode") == 0) {
			f_send(f, "OK");
			f->ack = 0;
		} else if (strcmp(buf, "?") == 0) {
			f_send(f, f->sc == SC_EXITED ? "W00" : "T05thread:01;");
		} else if (strcmp(buf, "qqemu.Supported") == 0) {
			f_send(f, f->sc == SC_ACK_ONLY || f->sc == SC_BADSUM_ONCE ? "" : "sstepbits;sstep;PhyMemMode");
			if (f->sc == SC_DUP_REPLY && !f->odd_done++)
				f_send(f, "sstepbits;sstep;PhyMemMode");
		} else if (strcmp(buf, "qfThreadInfo") == 0) {
			f->qs_calls = 0;
			f_send(f, f->sc == SC_DUP_THREADS ? "m01,01,01,02" : "m1");
		} else if (strcmp(buf, "qsThreadInfo") == 0) {
			if (f->sc == SC_MANY_THREADS) {
				char list[1200];
				size_t o = 0;
				list[o++] = 'm';
				for (int t = 0; t < 100; t++)
					o += (size_t)snprintf(list + o, sizeof list - o, "%s%x", t ? "," : "",
							      f->qs_calls * 100 + t + 2);
				f_send(f, f->qs_calls++ < 30 ? list : "l");
				continue;
			}
			f_send(f, f->sc != SC_DUP_THREADS && f->qs_calls++ == 0 ? "m2" : "l");
		} else if (strncmp(buf, "Qqemu.PhyMemMode:", 17) == 0) {
			if (f->sc == SC_ACK_ONLY || f->sc == SC_BADSUM_ONCE) {
				f_send(f, "");
				continue;
			}
			f->phys_mode = buf[17] == '1';
			f_send(f, "OK");
		} else if (strcmp(buf, "qqemu.PhyMemMode") == 0) {
			f_send(f, f->phys_mode ? "1" : "0");
		} else if (f->sc == SC_FUZZ && (buf[0] == 'm' || buf[0] == 'g' || buf[0] == 'p')) {
			fake_fuzz(f);
		} else if (buf[0] == 'm') {
			if (f->sc == SC_SILENT)
				continue;
			if (f->sc == SC_GARBAGE) {
				char junk[8192];
				memset(junk, 'z', sizeof junk);
				f_write(f, junk, sizeof junk);
				continue;
			}
			if (f->sc == SC_CLOSE_MID) {
				f_write(f, "$0102", 5);
				return;
			}
			if (f->sc == SC_LONG_M || f->sc == SC_ODD_M || f->sc == SC_ESC_M) {
				unsigned long long a, want;
				sscanf(buf + 1, "%llx,%llx", &a, &want);
				char *hex = malloc(4 * want + 2);
				size_t k = f->sc == SC_LONG_M ? 4 * want : 2 * want - 1;
				memset(hex, 'a', k);
				hex[k] = '\0';
				f_send(f, f->sc == SC_ESC_M ? "E.\x1b]0;owned\x07\x1b[2J" : hex);
				free(hex);
				continue;
			}
			fake_read(f, buf + 1);
		} else if (buf[0] == 'M') {
			fake_write(f, buf + 1);
		} else if (strncmp(buf, "Hg", 2) == 0) {
			f->sel = (int)strtol(buf + 2, NULL, 16);
			if (f->sel == 0)
				f->sel = 1;
			f_send(f, f->sel <= 2 || f->sc == SC_MANY_THREADS ? "OK" : "E22");
		} else if (strcmp(buf, "g") == 0) {
			if (f->sc == SC_MANY_THREADS) {
				struct timespec ts = {0, 20 * 1000 * 1000};
				nanosleep(&ts, NULL);
			}
			fake_regs(f);
		} else if (buf[0] == 'p') {
			int i = (int)strtol(buf + 1, NULL, 16);
			char out[64];
			unsigned bytes = i < NREG ? fake_bits(i) / 8 : 0;
			if (f->sc == SC_32BIT_G && bytes == 8 && i != 33)
				bytes = 4;
			if (bytes == 0) {
				f_send(f, "E45");
				continue;
			}
			hex_le(out, fake_val(f->sel, i, f->sc), bytes);
			f_send(f, out);
		} else if (strncmp(buf, "qXfer:features:read:", 20) == 0) {
			fake_xfer(f, buf + 20);
		} else if (strncmp(buf, "qRcmd,", 6) == 0) {
			fake_monitor(f, buf + 6);
		} else if (buf[0] == 'Z' || buf[0] == 'z') {
			f_send(f, "OK");
		} else if (strcmp(buf, "D") == 0) {
			f->saw_detach = 1;
			f_send(f, "OK");
		} else if (strcmp(buf, "qfake.esc") == 0) {
			/* a # $ } * as escapes, then "ab" + 5 more 'b' run-length encoded */
			static const char esc[] = {'a', '}', '#' ^ 0x20, '}', '$' ^ 0x20, '}', '}' ^ 0x20,
						   '}', '*' ^ 0x20, 'b', '*', 5 + 29};
			f_send_len(f, esc, sizeof esc, 0);
		} else {
			f_send(f, "");
		}
	}
}

struct stub {
	pid_t pid;
	int port;
};

/* Starts a fake stub on ::1 (v6) or 127.0.0.1; the child exits with bit 0 =
 * saw a detach, bit 1 = PhyMemMode left on. pid -1: no such socket here. */
static struct stub stub_start_seeded(int v6, int sc, unsigned packet_size, unsigned seed)
{
	struct stub s = {-1, 0};
	int ls = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	struct sockaddr *addr = v6 ? (struct sockaddr *)&sa6 : (struct sockaddr *)&sa;
	socklen_t sl = v6 ? sizeof sa6 : sizeof sa;
	if (ls < 0 || bind(ls, addr, sl) || listen(ls, 1) || getsockname(ls, addr, &sl)) {
		if (ls >= 0)
			close(ls);
		return s;
	}
	s.port = ntohs(v6 ? sa6.sin6_port : sa.sin_port);
	fflush(NULL);
	s.pid = fork();
	if (s.pid == 0) {
		alarm(20); /* never outlive a broken test */
		int fd = accept(ls, NULL, NULL);
		close(ls);
		if (fd < 0)
			_exit(0x40);
		int one = 1; /* replies go out as written, as QEMU's do */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct fake *f = calloc(1, sizeof *f);
		f->fd = fd;
		f->sc = sc;
		f->ack = 1;
		f->sel = 1;
		f->packet_size = packet_size;
		f->seed = seed | 1;
		for (unsigned a = 0; a < PHYS_SIZE; a++) {
			f->phys[a] = (unsigned char)(a * 7 + 3);
			f->virt[a] = (unsigned char)(a * 13 + 5);
		}
		memset(f->phys + 0x10000, 0, 0x1000);
		fake_serve(f);
		int code = (f->saw_detach ? 1 : 0) | (f->phys_mode ? 2 : 0);
		close(fd);
		_exit(code);
	}
	close(ls);
	return s;
}

static struct stub stub_start_on(int v6, int sc, unsigned packet_size)
{
	return stub_start_seeded(v6, sc, packet_size, 1);
}

static struct stub stub_start(int sc, unsigned packet_size)
{
	struct stub s = stub_start_on(0, sc, packet_size);
	if (s.pid < 0)
		perror("fake stub socket");
	return s;
}

/* Waits for the child (killing it if it lingers) and returns its exit code. */
static int stub_end(struct stub s)
{
	int st = 0;
	for (int i = 0; i < 200; i++) {
		if (waitpid(s.pid, &st, WNOHANG) == s.pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	kill(s.pid, SIGKILL);
	waitpid(s.pid, &st, 0);
	return -1;
}

static struct kbu_gdb *stub_open(struct stub s, int timeout_ms, struct kbu_err *err)
{
	char spec[64];
	snprintf(spec, sizeof spec, "127.0.0.1:%d", s.port);
	struct kbu_gdb_opts o = {.connect_timeout_ms = 2000, .reply_timeout_ms = timeout_ms};
	return kbu_gdb_open(spec, &o, err);
}

static int64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int phys_ok(const unsigned char *b, uint64_t a, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		uint64_t x = a + k;
		unsigned char want = x >= 0x10000 && x < 0x11000 ? 0 : (unsigned char)(x * 7 + 3);
		if (b[k] != want)
			return 0;
	}
	return 1;
}

static int virt_ok(const unsigned char *b, uint64_t a, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (b[k] != (unsigned char)((a + k - VBASE) * 13 + 5))
			return 0;
	return 1;
}

static char *stub_query(struct kbu_gdb *g, const char *pkt)
{
	struct kbu_err e = {0};
	char *r = NULL;
	if (kbu_gdb_request(g, pkt, &r, NULL, &e))
		fprintf(stderr, "request %s: %s\n", pkt, e.msg);
	return r;
}

/* ---- pure helpers ---- */

TEST(checksum_and_decode)
{
	CHECK_EQ_U64(kbu_rsp_checksum("OK", 2), 0x9a);
	CHECK_EQ_U64(kbu_rsp_checksum("", 0), 0);
	char out[64];
	size_t n = 0;
	struct kbu_err e = {0};
	CHECK(kbu_rsp_decode("0* ", 3, out, sizeof out, &n, &e) == 0); /* ' ' = 3 more */
	CHECK_EQ_U64(n, 4);
	CHECK(memcmp(out, "0000", 4) == 0);
	const char esc[] = {'x', '}', '#' ^ 0x20, '}', '}' ^ 0x20, '}', '*' ^ 0x20};
	CHECK(kbu_rsp_decode(esc, sizeof esc, out, sizeof out, &n, &e) == 0);
	CHECK_EQ_U64(n, 4);
	CHECK(memcmp(out, "x#}*", 4) == 0);
	/* an escaped '*' then a run of it */
	const char escrun[] = {'}', '*' ^ 0x20, '*', '!'}; /* '!' = 4 more */
	CHECK(kbu_rsp_decode(escrun, sizeof escrun, out, sizeof out, &n, &e) == 0);
	CHECK_EQ_U64(n, 5);
	CHECK(memcmp(out, "*****", 5) == 0);
	CHECK(kbu_rsp_decode("*a", 2, out, sizeof out, &n, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_EFORMAT);
	CHECK_CONTAINS(e.msg, "nothing to repeat");
	CHECK(kbu_rsp_decode("ab}", 3, out, sizeof out, &n, &e) != 0);
	CHECK_CONTAINS(e.msg, "escape");
	CHECK(kbu_rsp_decode("a*\x10", 3, out, sizeof out, &n, &e) != 0);
	CHECK_CONTAINS(e.msg, "out of range");
	CHECK(kbu_rsp_decode("a*~", 3, out, 8, &n, &e) != 0); /* 97 more into 8 bytes */
	CHECK_CONTAINS(e.msg, "exceeds");
	CHECK(kbu_rsp_decode("a*", 2, out, sizeof out, &n, &e) != 0);
}

TEST(hostport_specs)
{
	char h[64], p[16];
	struct kbu_err e = {0};
	CHECK(kbu_rsp_parse_hostport("localhost:1234", h, sizeof h, p, sizeof p, &e) == 0);
	CHECK_STR(h, "localhost");
	CHECK_STR(p, "1234");
	CHECK(kbu_rsp_parse_hostport(":1234", h, sizeof h, p, sizeof p, &e) == 0);
	CHECK_STR(h, "localhost");
	CHECK(kbu_rsp_parse_hostport("tcp::1234", h, sizeof h, p, sizeof p, &e) == 0);
	CHECK_STR(h, "localhost");
	CHECK_STR(p, "1234");
	CHECK(kbu_rsp_parse_hostport("[::1]:99", h, sizeof h, p, sizeof p, &e) == 0);
	CHECK_STR(h, "::1");
	CHECK_STR(p, "99");
	CHECK(kbu_rsp_parse_hostport("10.0.0.2:65535", h, sizeof h, p, sizeof p, &e) == 0);
	CHECK_STR(h, "10.0.0.2");
	const char *bad[] = {"", "1234", "host:", "host:0", "host:65536", "host:12a", "[::1:5", "[::1]5"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		e.code = 0;
		CHECK(kbu_rsp_parse_hostport(bad[i], h, sizeof h, p, sizeof p, &e) != 0);
		CHECK_EQ_U64(e.code, KBU_EINVAL);
	}
	struct kbu_gdb *g = kbu_gdb_open("nonsense", NULL, &e);
	CHECK(g == NULL);
	CHECK_CONTAINS(e.msg, "HOST:PORT");
}

/* ---- against the fake stub ---- */

TEST(nothing_listening)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sa;
	CHECK(bind(ls, (struct sockaddr *)&sa, sizeof sa) == 0);
	CHECK(getsockname(ls, (struct sockaddr *)&sa, &sl) == 0);
	close(ls); /* the port is now free and nothing listens on it */
	struct stub s = {.pid = -1, .port = ntohs(sa.sin_port)};
	struct kbu_err e = {0};
	int64_t t0 = ms_now();
	struct kbu_gdb *g = stub_open(s, 1000, &e);
	CHECK(g == NULL);
	CHECK_EQ_U64(e.code, KBU_ECONN);
	CHECK_CONTAINS(e.msg, "cannot connect");
	CHECK_CONTAINS(e.msg, "refused");
	CHECK(ms_now() - t0 < 1000);
	/* Through the struct kbu_mem face too: one clear error, no memory source. */
	char spec[64];
	snprintf(spec, sizeof spec, "127.0.0.1:%d", s.port);
	CHECK(kbu_mem_open_gdb(spec, &e) == NULL);
	CHECK_EQ_U64(e.code, KBU_ECONN);
}

static void memory_checks(int sc)
{
	struct stub s = stub_start(sc, 0x1000);
	struct kbu_err e = {0};
	struct kbu_gdb *g = stub_open(s, 2000, &e);
	CHECK(g != NULL);
	if (!g) {
		fprintf(stderr, "open: %s\n", e.msg);
		stub_end(s);
		return;
	}
	const struct kbu_mem_ops *o = kbu_gdb_mem_ops(g);
	CHECK_STR(o->kind, "gdb");
	CHECK_EQ_U64(kbu_gdb_packet_size(g), 0x1000);
	CHECK(kbu_gdb_no_ack(g) == (sc != SC_QEMU72));
	CHECK(!kbu_gdb_resumes_on_close(g)); /* no stop packet on connect: it was stopped already */
	CHECK_EQ_U64(o->max_read, 64 * 2048);
	CHECK_EQ_U64(o->ncpus(g), 2);

	static unsigned char b[0x10000];
	uint64_t rt0 = kbu_gdb_get_stats(g).round_trips;
	CHECK(o->read(g, KBU_PHYS, 0x8000, b, sizeof b, &e) == 0);
	CHECK(phys_ok(b, 0x8000, sizeof b));
	/* 32 'm' packets plus the mode switches, all in one round trip */
	CHECK_EQ_U64(kbu_gdb_get_stats(g).round_trips - rt0, 1);
	char *r = stub_query(g, "qqemu.PhyMemMode");
	CHECK_STR(r, "0");
	free(r);

	CHECK(o->read(g, KBU_VIRT, VBASE + 0x123, b, 77, &e) == 0);
	CHECK(virt_ok(b, VBASE + 0x123, 77));

	/* A failing physical read names the range, and the mode is still switched back. */
	CHECK(o->read(g, KBU_PHYS, 0x30000, b, 16, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_EFAULT);
	CHECK_CONTAINS(e.msg, "physical memory at 0x30000-0x3000f");
	CHECK_CONTAINS(e.msg, "E14");
	r = stub_query(g, "qqemu.PhyMemMode");
	CHECK_STR(r, "0");
	free(r);
	/* ... so a virtual read right after reads virtual memory, not physical. */
	CHECK(o->read(g, KBU_VIRT, VBASE, b, 32, &e) == 0);
	CHECK(virt_ok(b, VBASE, 32));
	/* A fault in the middle of a batch: the later chunks do not hide it. */
	CHECK(o->read(g, KBU_PHYS, PHYS_SIZE - 0x1000, b, 0x2000, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_EFAULT);
	CHECK_CONTAINS(e.msg, "0x20000-0x207ff");
	r = stub_query(g, "qqemu.PhyMemMode");
	CHECK_STR(r, "0");
	free(r);

	/* Writes, physical and virtual, read back. */
	unsigned char w[5000];
	for (size_t k = 0; k < sizeof w; k++)
		w[k] = (unsigned char)(k * 31);
	CHECK(o->write(g, KBU_PHYS, 0x1000, w, sizeof w, &e) == 0);
	CHECK(o->read(g, KBU_PHYS, 0x1000, b, sizeof w, &e) == 0);
	CHECK(memcmp(b, w, sizeof w) == 0);
	CHECK(o->write(g, KBU_VIRT, VBASE + 8, "kbu", 3, &e) == 0);
	CHECK(o->read(g, KBU_VIRT, VBASE + 8, b, 3, &e) == 0);
	CHECK(memcmp(b, "kbu", 3) == 0);
	CHECK(o->write(g, KBU_VIRT, 0x10, "x", 1, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_EFAULT);
	CHECK_CONTAINS(e.msg, "0x10");

	/* Escapes and run-length encoding in a reply. */
	size_t rl = 0;
	CHECK(kbu_gdb_request(g, "qfake.esc", &r, &rl, &e) == 0);
	CHECK_EQ_U64(rl, 11);
	CHECK_STR(r, "a#$}*bbbbbb");
	free(r);
	kbu_gdb_close(g);
	CHECK_EQ_U64(stub_end(s), 0); /* not detached (it was stopped), PhyMemMode off */
}

TEST(connect_timeout)
{
	/* A listener whose accept queue is full drops new connections' SYNs:
	 * connect() would wait for seconds; ours gives up at its timeout. */
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sa;
	CHECK(bind(ls, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(ls, 0) == 0 &&
	      getsockname(ls, (struct sockaddr *)&sa, &sl) == 0);
	int fill[3];
	for (int i = 0; i < 3; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		(void)connect(fill[i], (struct sockaddr *)&sa, sizeof sa);
	}
	char spec[64];
	snprintf(spec, sizeof spec, "127.0.0.1:%d", ntohs(sa.sin_port));
	struct kbu_gdb_opts o = {.connect_timeout_ms = 300, .reply_timeout_ms = 300};
	struct kbu_err e = {0};
	int64_t t0 = ms_now();
	struct kbu_gdb *g = kbu_gdb_open(spec, &o, &e);
	int64_t dt = ms_now() - t0;
	CHECK(g == NULL);
	CHECK(dt < 1500);
	CHECK_EQ_U64(e.code, KBU_ECONN);
	CHECK_CONTAINS(e.msg, "cannot connect");
	kbu_gdb_close(g);
	for (int i = 0; i < 3; i++)
		close(fill[i]);
	close(ls);
}

TEST(handshake_and_memory) { memory_checks(SC_NORMAL); }
/* The same with acks but pipelined, as with QEMU 7.2. */
TEST(qemu72_memory) { memory_checks(SC_QEMU72); }

static void register_checks(int sc)
{
	struct stub s = stub_start(sc, 0x1000);
	struct kbu_err e = {0};
	struct kbu_gdb *g = stub_open(s, 2000, &e);
	CHECK(g != NULL);
	if (!g) {
		stub_end(s);
		return;
	}
	const struct kbu_mem_ops *o = kbu_gdb_mem_ops(g);
	struct kbu_regs r;
	CHECK(o->regs(g, 0, &r, &e) == 0);
	CHECK_EQ_U64(r.have, KBU_HAVE_GPR | KBU_HAVE_SEG | KBU_HAVE_SEGBASE | KBU_HAVE_CR | KBU_HAVE_EFER |
				     KBU_HAVE_DT);
	/* the descriptor tables come from the monitor's section for CPU#0 */
	CHECK_EQ_U64(r.gdt_base, 0xffffffff80202220);
	CHECK_EQ_U64(r.gdt_limit, 0x17);
	CHECK_EQ_U64(r.idt_base, 0xffffffff80214580);
	CHECK_EQ_U64(r.idt_limit, 0x1ff);
	CHECK_EQ_U64(r.bits, 64);
	CHECK_EQ_U64(r.rax, fake_val(1, 0, SC_NORMAL));
	CHECK_EQ_U64(r.r15, fake_val(1, 15, SC_NORMAL));
	CHECK_EQ_U64(r.rip, fake_val(1, 16, SC_NORMAL));
	CHECK_EQ_U64(r.rflags, fake_val(1, 17, SC_NORMAL) & 0xffffffff);
	CHECK_EQ_U64(r.cs, fake_val(1, 18, SC_NORMAL) & 0xffff);
	CHECK_EQ_U64(r.gs, fake_val(1, 23, SC_NORMAL) & 0xffff);
	CHECK_EQ_U64(r.fs_base, fake_val(1, 25, SC_NORMAL));
	CHECK_EQ_U64(r.kernel_gs_base, fake_val(1, 27, SC_NORMAL));
	CHECK_EQ_U64(r.cr0, fake_val(1, 28, SC_NORMAL));
	CHECK_EQ_U64(r.cr3, fake_val(1, 30, SC_NORMAL));
	CHECK_EQ_U64(r.cr8, fake_val(1, 32, SC_NORMAL));
	CHECK_EQ_U64(r.efer, 0x500);
	uint64_t rt0 = kbu_gdb_get_stats(g).round_trips;
	CHECK(o->regs(g, 1, &r, &e) == 0);
	CHECK_EQ_U64(kbu_gdb_get_stats(g).round_trips - rt0, 1); /* Hg, g, Hg back: one batch */
	CHECK_EQ_U64(r.rip, fake_val(2, 16, SC_NORMAL));
	CHECK_EQ_U64(r.cr3, fake_val(2, 30, SC_NORMAL));
	CHECK_EQ_U64(r.cs_base, 0xffff0000); /* CPU#1's section, not CPU#0's */
	CHECK_EQ_U64(r.idt_limit, 0x3ff);
	CHECK(r.have & KBU_HAVE_DT);
	/* The monitor's text is asked once per stop: Hg, g, Hg only here... */
	uint64_t sent = kbu_gdb_get_stats(g).packets_sent;
	CHECK(o->regs(g, 1, &r, &e) == 0);
	CHECK_EQ_U64(kbu_gdb_get_stats(g).packets_sent - sent, 3);
	/* ...until something may have run the target. */
	char *rr = stub_query(g, "qqemu.PhyMemMode");
	free(rr);
	sent = kbu_gdb_get_stats(g).packets_sent;
	CHECK(o->regs(g, 1, &r, &e) == 0);
	CHECK_EQ_U64(kbu_gdb_get_stats(g).packets_sent - sent, 4);
	CHECK_EQ_U64(r.cs_base, 0xffff0000);
	/* Virtual reads translate through CPU 0 again afterwards. */
	unsigned char b[16];
	CHECK(o->read(g, KBU_VIRT, VBASE, b, sizeof b, &e) == 0);
	CHECK(virt_ok(b, VBASE, sizeof b));
	CHECK(o->regs(g, 2, &r, &e) != 0);
	CHECK_EQ_U64(e.code, KBU_EINVAL);
	CHECK_CONTAINS(e.msg, "no CPU 2");
	CHECK(o->regs(g, -1, &r, &e) != 0);

	/* RAM and ROM of the "memory" view, adjacent ones merged, I/O left out. */
	uint64_t rs[8], re[8];
	uint64_t rt1 = kbu_gdb_get_stats(g).round_trips;
	CHECK_EQ_U64(o->ranges(g, rs, re, 8), 3);
	CHECK_EQ_U64(rs[0], 0);
	CHECK_EQ_U64(re[0], 0xa0000);
	CHECK_EQ_U64(rs[1], 0xf0000);
	CHECK_EQ_U64(re[1], 0x8000000);
	CHECK_EQ_U64(rs[2], 0xffff0000);
	CHECK_EQ_U64(re[2], 0x100000000);
	CHECK_EQ_U64(o->ranges(g, rs, re, 2), 2); /* asked once, kept */
	CHECK_EQ_U64(kbu_gdb_get_stats(g).round_trips - rt1, 1);

	char *txt = NULL;
	CHECK(o->monitor(g, "info lapic", &txt, &e) == 0);
	CHECK_STR(txt, "dumping local APIC state for CPU 0\n"
		       "LVT0\t 0x00010700 active-hi edge  masked ExtINT (vec 0)\n");
	free(txt);
	CHECK(o->monitor(g, "no such command", &txt, &e) != 0);
	CHECK_CONTAINS(e.msg, "no such command");
	kbu_gdb_close(g);
	CHECK_EQ_U64(stub_end(s), 0);
}

TEST(registers_by_name) { register_checks(SC_NORMAL); }
TEST(qemu72_registers) { register_checks(SC_QEMU72); }

TEST(registers_short_g_and_32bit)
{
	struct kbu_err e = {0};
	struct kbu_regs r;
	/* 'g' ends after gs: the rest comes from 'p', in one more round trip. */
	struct stub s = stub_start(SC_SHORT_G, 0x1000);
	struct kbu_gdb *g = stub_open(s, 2000, &e);
	CHECK(g != NULL);
	if (g) {
		uint64_t rt0 = kbu_gdb_get_stats(g).round_trips;
		CHECK(kbu_gdb_mem_ops(g)->regs(g, 0, &r, &e) == 0);
		CHECK_EQ_U64(r.rax, fake_val(1, 0, SC_SHORT_G));
		CHECK_EQ_U64(r.cr3, fake_val(1, 30, SC_SHORT_G));
		CHECK_EQ_U64(r.efer, 0x500);
		CHECK(r.have & KBU_HAVE_CR);
		/* layout (3 files) + g + p batch */
		CHECK_EQ_U64(kbu_gdb_get_stats(g).round_trips - rt0, 5);
		kbu_gdb_close(g);
	}
	stub_end(s);
	/* 32-bit mode: 4-byte registers where the layout says 8: 'g' is not trusted. */
	s = stub_start(SC_32BIT_G, 0x1000);
	g = stub_open(s, 2000, &e);
	CHECK(g != NULL);
	if (g) {
		CHECK(kbu_gdb_mem_ops(g)->regs(g, 0, &r, &e) == 0);
		CHECK_EQ_U64(r.bits, 32);
		CHECK_EQ_U64(r.rax, fake_val(1, 0, SC_32BIT_G));
		CHECK_EQ_U64(r.rip, fake_val(1, 16, SC_32BIT_G));
		CHECK_EQ_U64(r.cr0, fake_val(1, 28, SC_32BIT_G));
		CHECK_EQ_U64(r.cs, fake_val(1, 18, SC_32BIT_G) & 0xffff);
		CHECK_EQ_U64(r.efer, 0);
		CHECK(r.have & KBU_HAVE_GPR);
		/* 32-bit, and no monitor to ask: cs/ds/es/ss bases are unknown, so not claimed */
		CHECK(!(r.have & KBU_HAVE_SEGBASE));
		CHECK(!(r.have & KBU_HAVE_DT));
		kbu_gdb_close(g);
	}
	stub_end(s);
}

TEST(ack_mode_and_short_replies)
{
	struct kbu_err e = {0};
	static unsigned char b[0x3000];
	/* No NoAck, no QEMU: one packet at a time, still right. */
	struct stub s = stub_start(SC_ACK_ONLY, 0x200);
	struct kbu_gdb *g = stub_open(s, 2000, &e);
	CHECK(g != NULL);
	if (g) {
		CHECK(!kbu_gdb_no_ack(g));
		const struct kbu_mem_ops *o = kbu_gdb_mem_ops(g);
		CHECK_EQ_U64(o->max_read, 64 * 0x100);
		CHECK(o->read(g, KBU_VIRT, VBASE + 5, b, 0x1000, &e) == 0);
		CHECK(virt_ok(b, VBASE + 5, 0x1000));
		/* PacketSize 0x200: the description comes in several pieces */
		struct kbu_regs r;
		CHECK(o->regs(g, 1, &r, &e) == 0);
		CHECK_EQ_U64(r.rip, fake_val(2, 16, SC_NORMAL));
		CHECK(o->read(g, KBU_PHYS, 0, b, 16, &e) != 0);
		CHECK_EQ_U64(e.code, KBU_EUNSUPPORTED);
		CHECK_CONTAINS(e.msg, "PhyMemMode");
		kbu_gdb_close(g);
	}
	stub_end(s);
	/* Replies shorter than asked: the rest is asked for again. */
	s = stub_start(SC_SHORT_M, 0x1000);
	g = stub_open(s, 2000, &e);
	CHECK(g != NULL);
	if (g) {
		CHECK(kbu_gdb_mem_ops(g)->read(g, KBU_PHYS, 0x300, b, 0x3000, &e) == 0);
		CHECK(phys_ok(b, 0x300, 0x3000));
		kbu_gdb_close(g);
	}
	CHECK_EQ_U64(stub_end(s), 0);
	/* Run-length encoded replies, zeros and patterns. */
	s = stub_start(SC_RLE, 0x1000);
	g = stub_open(s, 2000, &e);
	CHECK(g != NULL);
	if (g) {
		CHECK(kbu_gdb_mem_ops(g)->read(g, KBU_PHYS, 0xf800, b, 0x2000, &e) == 0);
		CHECK(phys_ok(b, 0xf800, 0x2000));
		kbu_gdb_close(g);
	}
	stub_end(s);
}

TEST(bad_checksums)
{
	struct kbu_err e = {0};
	unsigned char b[64];
	struct stub s = stub_start(SC_BADSUM_ONCE, 0x1000);
	struct kbu_gdb *g = stub_open(s, 2000, &e);
	CHECK(g != NULL);
	if (g) { /* ack mode: we ask for it again and get it */
		CHECK(kbu_gdb_mem_ops(g)->read(g, KBU_VIRT, VBASE, b, sizeof b, &e) == 0);
		CHECK(virt_ok(b, VBASE, sizeof b));
		kbu_gdb_close(g);
	}
	stub_end(s);
	s = stub_start(SC_BADSUM, 0x1000);
	g = stub_open(s, 2000, &e);
	CHECK(g != NULL);
	if (g) { /* no-ack mode: nobody can resend, so it is an error */
		CHECK(kbu_gdb_mem_ops(g)->read(g, KBU_VIRT, VBASE, b, sizeof b, &e) != 0);
		CHECK_EQ_U64(e.code, KBU_ECONN);
		CHECK_CONTAINS(e.msg, "bad checksum");
		CHECK_CONTAINS(e.msg, "127.0.0.1:");
		kbu_gdb_close(g);
	}
	stub_end(s);
}

TEST(misbehaving_stubs)
{
	struct kbu_err e = {0};
	unsigned char b[64];
	struct kbu_regs r;
	/* Garbage instead of a reply. */
	struct stub s = stub_start(SC_GARBAGE, 0x1000);
	struct kbu_gdb *g = stub_open(s, 2000, &e);
	CHECK(g != NULL);
	if (g) {
		CHECK(kbu_gdb_mem_ops(g)->read(g, KBU_VIRT, VBASE, b, sizeof b, &e) != 0);
		CHECK_EQ_U64(e.code, KBU_ECONN);
		CHECK_CONTAINS(e.msg, "not packets");
		kbu_gdb_close(g);
	}
	stub_end(s);
	/* Silence: the reply timeout fires, and the connection stays failed. */
	s = stub_start(SC_SILENT, 0x1000);
	g = stub_open(s, 300, &e);
	CHECK(g != NULL);
	if (g) {
		int64_t t0 = ms_now();
		CHECK(kbu_gdb_mem_ops(g)->read(g, KBU_VIRT, VBASE + 0x100, b, sizeof b, &e) != 0);
		int64_t dt = ms_now() - t0;
		CHECK(dt >= 250 && dt < 2000);
		CHECK_EQ_U64(e.code, KBU_ECONN);
		CHECK_CONTAINS(e.msg, "no reply");
		CHECK(kbu_gdb_mem_ops(g)->regs(g, 0, &r, &e) != 0);
		CHECK_CONTAINS(e.msg, "unusable");
		kbu_gdb_close(g);
	}
	stub_end(s);
	/* Silent on 'm' but not on the mode switch after it: the switch's "OK"
	 * comes where the memory was due. Out of step, said so, never taken as data. */
	s = stub_start(SC_SILENT, 0x1000);
	g = stub_open(s, 300, &e);
	CHECK(g != NULL);
	if (g) {
		CHECK(kbu_gdb_mem_ops(g)->read(g, KBU_PHYS, 0x100, b, sizeof b, &e) != 0);
		CHECK_EQ_U64(e.code, KBU_ECONN);
		CHECK_CONTAINS(e.msg, "answered 'm100,40' with 'OK', which is not a reply to it");
		kbu_gdb_close(g);
	}
	stub_end(s);
	/* A close in the middle of a reply. */
	s = stub_start(SC_CLOSE_MID, 0x1000);
	g = stub_open(s, 2000, &e);
	CHECK(g != NULL);
	if (g) {
		CHECK(kbu_gdb_mem_ops(g)->read(g, KBU_VIRT, VBASE, b, sizeof b, &e) != 0);
		CHECK_EQ_U64(e.code, KBU_ECONN);
		CHECK_CONTAINS(e.msg, "closed the connection");
		char *txt = NULL;
		CHECK(kbu_gdb_mem_ops(g)->monitor(g, "info lapic", &txt, &e) != 0);
		CHECK(txt == NULL);
		kbu_gdb_close(g);
	}
	stub_end(s);
	/* A stub that accepts no one (QEMU with a debugger attached already). */
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sa;
	CHECK(bind(ls, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(ls, 1) == 0 &&
	      getsockname(ls, (struct sockaddr *)&sa, &sl) == 0);
	struct stub busy = {.pid = -1, .port = ntohs(sa.sin_port)};
	int64_t t0 = ms_now();
	g = stub_open(busy, 300, &e);
	CHECK(g == NULL);
	CHECK(ms_now() - t0 < 2000);
	CHECK_EQ_U64(e.code, KBU_ECONN);
	CHECK_CONTAINS(e.msg, "another debugger");
	close(ls);
	/* A target that has exited. */
	s = stub_start(SC_EXITED, 0x1000);
	g = stub_open(s, 2000, &e);
	CHECK(g == NULL);
	CHECK_EQ_U64(e.code, KBU_ECONN);
	CHECK_CONTAINS(e.msg, "exited");
	stub_end(s);
}

TEST(random_replies)
{
	/* Whatever comes back, a read either succeeds with the bytes asked for or
	 * fails with one error; no crash, no hang, nothing past the buffer. */
	int fails = 0, oks = 0;
	for (unsigned i = 0; i < 60; i++) {
		struct stub s = stub_start_seeded(0, SC_FUZZ, 0x1000, 0x9e3779b9u * (i + 1));
		struct kbu_err e = {0};
		struct kbu_gdb *g = stub_open(s, 100, &e);
		CHECK(g != NULL);
		if (g) {
			unsigned char *b = malloc(300);
			struct kbu_regs r;
			int rc = kbu_gdb_mem_ops(g)->read(g, KBU_VIRT, VBASE, b, 300, &e);
			if (rc == 0) {
				oks++;
			} else {
				fails++;
				CHECK(e.msg[0] != '\0');
				CHECK(e.code == KBU_ECONN || e.code == KBU_EFAULT || e.code == KBU_EUNSUPPORTED);
			}
			(void)kbu_gdb_mem_ops(g)->regs(g, 0, &r, &e);
			free(b);
			kbu_gdb_close(g);
		}
		stub_end(s);
	}
	CHECK(fails > 40);
	(void)oks;
}

TEST(address_forms)
{
	struct kbu_err e = {0};
	char spec[64];
	struct stub s = stub_start(SC_NORMAL, 0x1000);
	snprintf(spec, sizeof spec, "localhost:%d", s.port);
	struct kbu_gdb *g = kbu_gdb_open(spec, NULL, &e);
	CHECK(g != NULL);
	kbu_gdb_close(g);
	CHECK_EQ_U64(stub_end(s), 0);
	s = stub_start_on(1, SC_NORMAL, 0x1000);
	if (s.pid < 0) {
		fprintf(stderr, "note: no IPv6 loopback here, [::1] not tried\n");
		return;
	}
	snprintf(spec, sizeof spec, "[::1]:%d", s.port);
	g = kbu_gdb_open(spec, NULL, &e);
	CHECK(g != NULL);
	if (g) {
		unsigned char b[8];
		CHECK(kbu_gdb_mem_ops(g)->read(g, KBU_VIRT, VBASE, b, sizeof b, &e) == 0);
		CHECK(virt_ok(b, VBASE, sizeof b));
		kbu_gdb_close(g);
	}
	CHECK_EQ_U64(stub_end(s), 0);
}

TEST(leave_running_targets_running)
{
	struct kbu_err e = {0};
	/* A stub that only listens once interrupted: we interrupt, and resume on close. */
	struct stub s = stub_start(SC_RUNNING, 0x1000);
	struct kbu_gdb *g = stub_open(s, 400, &e);
	CHECK(g != NULL);
	if (g) {
		CHECK(kbu_gdb_resumes_on_close(g));
		unsigned char b[16];
		CHECK(kbu_gdb_mem_ops(g)->read(g, KBU_VIRT, VBASE, b, sizeof b, &e) == 0);
		CHECK(virt_ok(b, VBASE, sizeof b));
		kbu_gdb_close(g);
	}
	CHECK_EQ_U64(stub_end(s), 1); /* detached */
	/* QEMU announces that connecting stopped the VM: we detach when done. */
	s = stub_start(SC_WAS_RUNNING, 0x1000);
	g = stub_open(s, 1000, &e);
	CHECK(g != NULL);
	if (g) {
		CHECK(kbu_gdb_resumes_on_close(g));
		CHECK_EQ_U64(kbu_gdb_packet_size(g), 0x1000); /* the stop packet was not taken for qSupported's reply */
		CHECK_EQ_U64(kbu_gdb_mem_ops(g)->ncpus(g), 2);
		kbu_gdb_close(g);
	}
	CHECK_EQ_U64(stub_end(s), 1);
}

/*
 * Replies out of step. QEMU 7.2 announces with a stop packet that our
 * connection stopped a running VM; under load it comes after our 1 s probe
 * gave up (so we interrupted and asked qSupported again), and the first
 * qSupported's answer comes late too. Every reply must still go to its own
 * request: once "sstepbits;sstep;PhyMemMode" was taken as the thread list.
 */
TEST(replies_stay_in_step)
{
	struct kbu_err e = {0};
	static unsigned char b[0x2000];
	struct stub s = stub_start(SC_SLOW_ATTACH, 0x1000);
	struct kbu_gdb *g = stub_open(s, 2000, &e);
	CHECK(g != NULL);
	if (!g)
		fprintf(stderr, "slow attach: %s\n", e.msg);
	if (g) {
		CHECK(kbu_gdb_resumes_on_close(g));
		CHECK_EQ_U64(kbu_gdb_packet_size(g), 0x1000);
		const struct kbu_mem_ops *o = kbu_gdb_mem_ops(g);
		CHECK_EQ_U64(o->ncpus(g), 2);
		CHECK(o->read(g, KBU_PHYS, 0x8000, b, sizeof b, &e) == 0);
		CHECK(phys_ok(b, 0x8000, sizeof b));
		CHECK(o->read(g, KBU_VIRT, VBASE + 0x40, b, 64, &e) == 0);
		CHECK(virt_ok(b, VBASE + 0x40, 64));
		struct kbu_regs r;
		CHECK(o->regs(g, 1, &r, &e) == 0);
		CHECK_EQ_U64(r.rip, fake_val(2, 16, SC_NORMAL));
		CHECK(kbu_gdb_stale_replies(g) >= 1); /* the second qSupported answer */
		char *q = stub_query(g, "qqemu.PhyMemMode");
		CHECK_STR(q, "0");
		free(q);
		kbu_gdb_close(g);
	}
	CHECK_EQ_U64(stub_end(s), 1); /* resumed: it was running */

	/* A stop packet nobody asked for, in front of a memory reply and of
	 * monitor output: dropped, the data is the data. */
	s = stub_start(SC_STRAY_STOP, 0x1000);
	g = stub_open(s, 2000, &e);
	CHECK(g != NULL);
	if (g) {
		const struct kbu_mem_ops *o = kbu_gdb_mem_ops(g);
		CHECK(o->read(g, KBU_VIRT, VBASE, b, 256, &e) == 0);
		CHECK(virt_ok(b, VBASE, 256));
		char *txt = NULL;
		CHECK(o->monitor(g, "info status", &txt, &e) == 0);
		CHECK_STR(txt, "VM status: paused (prelaunch)\r\n");
		free(txt);
		/* a script's breakpoint packet: its "OK", not the stray stop */
		char *z = stub_query(g, "Z1,ffffffff80200000,1");
		CHECK_STR(z, "OK");
		free(z);
		CHECK_EQ_U64(kbu_gdb_stale_replies(g), 3);
		CHECK_EQ_U64(kbu_gdb_resyncs(g), 0);
		kbu_gdb_close(g);
	}
	CHECK_EQ_U64(stub_end(s), 0);

	/* An extra reply that is not recognisably stale: the thread list gets
	 * "sstepbits;..."; we notice, get back in step and ask again. */
	s = stub_start(SC_DUP_REPLY, 0x1000);
	g = stub_open(s, 2000, &e);
	CHECK(g != NULL);
	if (!g)
		fprintf(stderr, "dup reply: %s\n", e.msg);
	if (g) {
		CHECK_EQ_U64(kbu_gdb_mem_ops(g)->ncpus(g), 2);
		CHECK_EQ_U64(kbu_gdb_resyncs(g), 1);
		CHECK(kbu_gdb_mem_ops(g)->read(g, KBU_PHYS, 0x100, b, 64, &e) == 0);
		CHECK(phys_ok(b, 0x100, 64));
		kbu_gdb_close(g);
	}
	CHECK_EQ_U64(stub_end(s), 0);
}

/* Round trips counted through the struct kbu_mem face (what kbu --stats prints). */
TEST(round_trips_through_kbu_mem)
{
	struct stub s = stub_start(SC_QEMU72, 0x1000);
	char spec[64];
	snprintf(spec, sizeof spec, "127.0.0.1:%d", s.port);
	struct kbu_err e = {0};
	struct kbu_gdb *conn = NULL;
	struct kbu_mem *m = kbu_mem_open_gdb_ex(spec, NULL, &conn, &e);
	CHECK(m != NULL && conn != NULL);
	if (!m) {
		fprintf(stderr, "open: %s\n", e.msg);
		stub_end(s);
		return;
	}
	CHECK(kbu_mem_source_ctx(m) == conn);
	uint64_t rt0 = kbu_mem_gdb_round_trips(m);
	CHECK(rt0 > 0); /* the handshake took some */
	CHECK_EQ_U64(rt0, kbu_gdb_get_stats(conn).round_trips);
	static unsigned char b[0x4000];
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x4000, b, sizeof b, &e) == 0);
	CHECK(phys_ok(b, 0x4000, sizeof b));
	CHECK_EQ_U64(kbu_mem_gdb_round_trips(m) - rt0, 1); /* four pages, one batch */
	/* again: from the cache, no round trip */
	CHECK(kbu_mem_read(m, KBU_PHYS, 0x4000, b, 16, &e) == 0);
	CHECK_EQ_U64(kbu_mem_gdb_round_trips(m) - rt0, 1);
	kbu_mem_close(m);
	stub_end(s);
	/* other sources: 0, and no source context to look at */
	CHECK_EQ_U64(kbu_mem_gdb_round_trips(NULL), 0);
	CHECK(kbu_mem_source_ctx(NULL) == NULL);
}

/* No raw terminal bytes and no "(null)" in a message a user will read. */
static int clean_message(const char *m)
{
	for (const char *p = m; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			return 0;
	return strstr(m, "(null)") == NULL;
}

TEST(hostile_stubs_are_reported_as_what_they_did)
{
	struct kbu_err e = {0};
	unsigned char b[0x900];
	static const struct {
		int sc;
		const char *want;
	} cases[] = {
		{SC_LONG_M, "answered 'mffffffff80000000,800' with 4096 bytes, more than the 2048 asked"},
		{SC_ODD_M, "answered 'mffffffff80000000,800' with an odd number of hex digits (4095)"},
		{SC_ESC_M, "gdb stub error E.\\x1b]0;owned\\x07\\x1b[2J"},
		{SC_BADSUM, "bad checksum"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct stub s = stub_start(cases[i].sc, 0x1000);
		struct kbu_gdb *g = stub_open(s, 2000, &e);
		CHECK(g != NULL);
		if (g) {
			CHECK(kbu_gdb_mem_ops(g)->read(g, KBU_VIRT, VBASE, b, sizeof b, &e) != 0);
			CHECK_CONTAINS(e.msg, cases[i].want);
			CHECK(clean_message(e.msg));
			CHECK_EQ_U64(e.code, cases[i].sc == SC_ESC_M ? KBU_EFAULT : KBU_ECONN);
			kbu_gdb_close(g);
		}
		stub_end(s);
	}
	/* Thread 1 listed three times: two CPUs, and the repetition remembered. */
	struct stub s = stub_start(SC_DUP_THREADS, 0x1000);
	struct kbu_gdb *g = stub_open(s, 2000, &e);
	CHECK(g != NULL);
	if (g) {
		uint64_t first = 0;
		CHECK_EQ_U64(kbu_gdb_mem_ops(g)->ncpus(g), 2);
		CHECK_EQ_U64(kbu_gdb_duplicate_threads(g, &first), 2);
		CHECK_EQ_U64(first, 1);
		kbu_gdb_close(g);
	}
	stub_end(s);
	/* Half a hello, then nothing: the limit that ran out is the probe's. */
	s = stub_start(SC_HALF_HELLO, 0x1000);
	int64_t t0 = ms_now();
	g = stub_open(s, 10000, &e);
	CHECK(g == NULL);
	CHECK(ms_now() - t0 < 3000);
	CHECK_CONTAINS(e.msg, "no reply to 'qSupported' within the 1000 ms connect probe");
	CHECK(clean_message(e.msg));
	stub_end(s);
	/* 3000 threads, slow registers: one limit for the whole command. */
	s = stub_start(SC_MANY_THREADS, 0x1000);
	char spec[64];
	snprintf(spec, sizeof spec, "127.0.0.1:%d", s.port);
	struct kbu_gdb *conn = NULL;
	t0 = ms_now();
	struct kbu_mem *m = kbu_mem_open_gdb_limited(spec, 1500, &conn, &e);
	CHECK(m != NULL);
	if (m) {
		CHECK_EQ_U64(kbu_mem_ncpus(m), 3001);
		struct kbu_regs r;
		int failed = 0;
		for (int cpu = 0; cpu < kbu_mem_ncpus(m) && !failed; cpu++)
			failed = kbu_mem_regs(m, cpu, &r, &e) != 0;
		CHECK(failed);
		CHECK(ms_now() - t0 < 4000);
		CHECK_CONTAINS(e.msg, "within the command's time limit of 1500 ms (--timeout)");
		CHECK(clean_message(e.msg));
		kbu_mem_close(m);
	}
	stub_end(s);
}

/* QEMU's "xp /Nbx" text, and the ways it goes wrong. */
TEST(xp_text)
{
	uint8_t b[12];
	struct kbu_err err = {0};
	const char *ok = "0000000000200000: 0x7f 0x45 0x4c 0x46 0x02 0x01 0x01 0x09\r\n"
			 "0000000000200008: 0x00 0x00 0x00 0x00\r\n";
	CHECK(gdbq_parse_xp(ok, 0x200000, b, 12, &err) == 0);
	CHECK_EQ_U64(b[0], 0x7f);
	CHECK_EQ_U64(b[11], 0x00);
	CHECK(gdbq_parse_xp(ok, 0x200002, b, 2, &err) == 0); /* a part of it */
	CHECK_EQ_U64(b[0], 0x4c);
	/* one byte short, an error line instead of bytes, garbage tokens, no text */
	CHECK(gdbq_parse_xp(ok, 0x200000, b, 13, &err) < 0);
	CHECK_EQ_U64(err.code, KBU_EFAULT);
	CHECK_CONTAINS(err.msg, "0x20000c");
	CHECK(gdbq_parse_xp("Cannot access memory\n", 0x1000, b, 1, &err) < 0);
	CHECK(gdbq_parse_xp("0000000000001000: 0x123 0x45\n", 0x1000, b, 1, &err) < 0);
	CHECK(gdbq_parse_xp("0000000000001000: 0xzz\n", 0x1000, b, 1, &err) < 0);
	CHECK(gdbq_parse_xp("00000000000000001000: 0x12\n", 0x1000, b, 1, &err) < 0);
	CHECK(gdbq_parse_xp("", 0x1000, b, 1, &err) < 0);
	CHECK(gdbq_parse_xp(NULL, 0x1000, b, 1, &err) < 0);
	/* the top of the address space does not wrap to 0 */
	CHECK(gdbq_parse_xp("ffffffffffffffff: 0x01 0x02\n", 0, b, 1, &err) < 0);
	CHECK(gdbq_parse_xp("ffffffffffffffff: 0x01 0x02\n", 0xffffffffffffffffull, b, 1, &err) == 0);
	CHECK_EQ_U64(b[0], 1);
	char cmd[64];
	CHECK(gdbq_xp_command(0x9fc00, 512, cmd, sizeof cmd) == 0);
	CHECK_STR(cmd, "xp /512bx 0x9fc00");
	CHECK(gdbq_xp_command(0x9fc00, 512, cmd, 8) < 0);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(checksum_and_decode);
	RUN(hostport_specs);
	RUN(nothing_listening);
	RUN(connect_timeout);
	RUN(handshake_and_memory);
	RUN(registers_by_name);
	RUN(qemu72_memory);
	RUN(qemu72_registers);
	RUN(registers_short_g_and_32bit);
	RUN(ack_mode_and_short_replies);
	RUN(bad_checksums);
	RUN(misbehaving_stubs);
	RUN(random_replies);
	RUN(address_forms);
	RUN(leave_running_targets_running);
	RUN(round_trips_through_kbu_mem);
	RUN(replies_stay_in_step);
	RUN(hostile_stubs_are_reported_as_what_they_did);
	RUN(xp_text);
	CHECK_DONE("test_gdb");
}
