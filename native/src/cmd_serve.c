/* kbu serve: a read-only GDB stub over the memory source, on stdin/stdout or a socket. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "kbu/command.h"
#include "kbu/gdbrsp.h"
#include "kbu/mem.h"
#include "kbu/report.h"
#include "kbu/serve.h"
#include "kbu/util.h"

/* A listening socket for "HOST:PORT" or a UNIX socket path; *shown says where. */
static int listen_on(const char *spec, char *shown, size_t cap, struct kbu_err *err)
{
	if (strchr(spec, '/') || strncmp(spec, "unix:", 5) == 0) {
		const char *path = strncmp(spec, "unix:", 5) == 0 ? spec + 5 : spec;
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		if (strlen(path) >= sizeof sa.sun_path)
			return kbu_err_set(err, KBU_EINVAL, "--listen %s: a socket path is at most %zu bytes",
					   path, sizeof sa.sun_path - 1);
		struct stat st;
		if (lstat(path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode))
				return kbu_err_set(err, KBU_EINVAL, "--listen %s: exists and is not a socket",
						   path);
			unlink(path); /* left by an earlier kbu serve */
		}
		memcpy(sa.sun_path, path, strlen(path) + 1);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 4)) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			return kbu_err_set(err, KBU_EIO, "--listen %s: %s", path, strerror(e));
		}
		snprintf(shown, cap, "%s", path);
		return fd;
	}
	char host[256], port[16];
	if (strncmp(spec, ":0", 3) == 0 || (strlen(spec) > 2 && strcmp(spec + strlen(spec) - 2, ":0") == 0)) {
		/* port 0: any free port, printed below */
		const char *c = strrchr(spec, ':');
		size_t hl = (size_t)(c - spec);
		if (hl >= sizeof host)
			return kbu_err_set(err, KBU_EINVAL, "--listen %s: host name too long", spec);
		memcpy(host, spec, hl);
		host[hl] = '\0';
		if (!host[0])
			strcpy(host, "localhost");
		strcpy(port, "0");
	} else if (kbu_rsp_parse_hostport(spec, host, sizeof host, port, sizeof port, err) < 0) {
		return kbu_err_prefix(err, "--listen");
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		return kbu_err_set(err, KBU_EINVAL, "--listen %s: %s", spec, gai_strerror(rc));
	int fd = -1, e = 0;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 4)) {
			e = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return kbu_err_set(err, KBU_EIO, "--listen %s: %s", spec, strerror(e));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char nport[16] = "?";
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, nport, sizeof nport, NI_NUMERICSERV);
	snprintf(shown, cap, "%s:%s", host, nport);
	return fd;
}

static int serve_run(struct kbu_ctx *ctx, int argc, char **argv, struct kbu_report *r,
		     struct kbu_err *err)
{
	static const struct kbu_opt opts[] = {
		{"listen", 'l', 1}, {"plain", 0, 0}, {"cr3", 0, 1}, {"once", 0, 0}, {0}};
	struct kbu_getopt g = KBU_GETOPT_INIT;
	struct kbu_serve_opts o = {0};
	const char *listen_spec = NULL;
	int once = 0, i;
	while ((i = kbu_getopt(&g, argc, argv, opts, err)) != KBU_OPT_END) {
		if (i == KBU_OPT_ERR)
			return -1;
		if (i == KBU_OPT_ARG)
			return kbu_err_set(err, KBU_EINVAL, "unexpected argument '%s'", g.arg);
		if (i == 0)
			listen_spec = g.arg;
		else if (i == 1)
			o.plain = 1;
		else if (i == 2) {
			if (kbu_parse_u64(g.arg, &o.cr3, err) < 0)
				return kbu_err_prefix(err, "--cr3");
			o.have_cr3 = 1;
		} else
			once = 1;
	}
	if (strcmp(kbu_mem_kind(ctx->mem), "debugger") == 0)
		return kbu_err_set(err, KBU_EINVAL,
				   "runs outside GDB, as GDB's target: target remote | kbu serve --core DUMP "
				   "[--kernel ELF]");
	(void)r; /* the protocol is the output: the report stays empty */
	signal(SIGPIPE, SIG_IGN); /* a client that goes away ends its session, not kbu */
	struct kbu_serve_stats st = {0};
	if (!listen_spec) {
		fflush(stdout);
		return kbu_serve_session(ctx, &o, 0, 1, &st, err);
	}
	char where[300];
	int ls = listen_on(listen_spec, where, sizeof where, err);
	if (ls < 0)
		return -1;
	/* The line a script waits for before it connects. */
	fprintf(stderr, "kbu serve: listening on %s (%s%s)\n", where, kbu_mem_kind(ctx->mem),
		o.plain ? ", plain" : "");
	fflush(stderr);
	int rc = 0;
	for (;;) {
		int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			rc = kbu_err_set(err, KBU_EIO, "kbu serve: accept on %s: %s", where, strerror(errno));
			break;
		}
		rc = kbu_serve_session(ctx, &o, fd, fd, &st, err);
		close(fd);
		if (rc < 0 || once)
			break;
	}
	close(ls);
	if (strchr(where, '/'))
		unlink(where);
	return rc;
}

static struct kbu_command cmd_serve = {
	.name = "serve",
	.summary = "a read-only GDB stub over a dump, an image or another stub (target remote | kbu serve)",
	.help = "usage: kbu serve (--core DUMP | --phys FILE[@BASE] | --gdb STUB) [--kernel ELF]\n"
		"                 [--symbols MAP] [--listen HOST:PORT | --listen PATH] [--plain]\n"
		"                 [--cr3 ADDR] [--once]\n"
		"\n"
		"Serves the memory source to GDB as a remote target, read-only: one thread per\n"
		"vCPU with its registers (control registers and EFER in the target description;\n"
		"with symbols, GDB starts on the vCPU whose stack shows panic()),\n"
		"virtual reads translated by kbu's page walk through that vCPU's CR3, physical\n"
		"reads after Qqemu.PhyMemMode:1 as on QEMU's stub, and `monitor kbu COMMAND`\n"
		"running kbu's commands on the same memory (`monitor help` lists the rest).\n"
		"Registers kbu does not know are unavailable, memory the source lacks is an\n"
		"error: never zeros. Writes, breakpoints, stepping and resuming are refused.\n"
		"\n"
		"Without --listen it speaks on stdin/stdout, as GDB's `target remote | CMD`\n"
		"wants (Debian's GDB needs `set osabi none` before `file` for a FreeBSD or\n"
		"NetBSD kernel):\n"
		"  (gdb) set osabi none\n"
		"  (gdb) file kernel\n"
		"  (gdb) target remote | kbu serve --core dump.core --kernel kernel\n"
		"--listen HOST:PORT (port 0: any free one) or --listen PATH (a UNIX socket)\n"
		"serves one client after another until killed (--once: one); the address is\n"
		"printed on stderr. --plain offers only standard packets (no monitor, no\n"
		"physical mode, no control registers): a stand-in for Firecracker's and\n"
		"bhyve's stubs. --cr3 gives a raw image's page tables (4-level).\n",
	.needs = KBU_NEEDS_MEM,
	.run = serve_run,
};
KBU_COMMAND(cmd_serve)
