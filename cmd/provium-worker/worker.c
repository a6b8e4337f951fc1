/*
 * provium-worker: the process behind vm:spawn_worker.
 *
 * The agent is a Go program, and a Go process always runs several threads.
 * The kernel refuses some calls to a multi-threaded process (unshare or
 * setns of a user namespace, unshare of CLONE_FS) and applies others
 * (raw setuid, capset) to one thread only. A worker must behave as one
 * single-threaded process whose every syscall, command and open runs with
 * the credentials, namespaces, root and cwd its earlier syscalls set, so
 * the agent starts this small static program and asks it to do that work.
 *
 * The agent keeps the host protocol, the pipes and the buffering; this
 * process only executes. It talks to the agent on one unix stream socket
 * (inherited as fd 3) with length-prefixed messages; file descriptors
 * travel as SCM_RIGHTS with a message's header. The layout is defined in
 * internal/agent/workerproto.go, which must change in step with this file.
 *
 * The process stays single-threaded except while a syscall_async call is
 * in flight: that call runs on a thread of its own, which ends with it.
 *
 * Its signal dispositions are those of upstream's worker, a Rust program,
 * because real suites test against them (see setup_signals).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* Message types: requests from the agent, then replies and events. */
enum {
	T_SYSCALL = 1,
	T_SPAWN = 2,
	T_RESULT = 16,
	T_SPAWNED = 17,
	T_EXIT = 18,
	T_ERROR = 19,
};

/* T_SYSCALL flags. */
enum { SYS_ASYNC = 1, SYS_SENDFD = 2 };
/* T_SPAWN flags. */
enum { SPAWN_SETPGID = 1, SPAWN_LOOKUP = 2 };

struct hdr {
	uint32_t len;
	uint32_t type;
	uint64_t id;
};

#define MAX_MSG (80u << 20)
#define MAX_FDS 8
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static int sock = 3;
static pthread_mutex_t send_mu = PTHREAD_MUTEX_INITIALIZER;

/* Children started by T_SPAWN that were not reaped yet (killed when the
 * agent goes away). */
static pid_t *kids;
static size_t nkids, capkids;

static void die(const char *what)
{
	fprintf(stderr, "provium-worker: %s: %s\n", what, strerror(errno));
	_exit(1);
}

/* ---- output ---- */

/* out is a growable reply payload. */
struct out {
	uint8_t *p;
	size_t n, cap;
};

static void out_put(struct out *o, const void *p, size_t n)
{
	if (o->n + n > o->cap) {
		size_t c = o->cap ? o->cap : 256;
		while (c < o->n + n)
			c *= 2;
		o->p = realloc(o->p, c);
		if (!o->p)
			die("realloc");
		o->cap = c;
	}
	memcpy(o->p + o->n, p, n);
	o->n += n;
}

static void out_u32(struct out *o, uint32_t v) { out_put(o, &v, 4); }
static void out_i32(struct out *o, int32_t v) { out_put(o, &v, 4); }
static void out_i64(struct out *o, int64_t v) { out_put(o, &v, 8); }

/* send_msg writes one message (header, payload, fds) under send_mu, so the
 * main thread and async threads never interleave. A failure means the
 * agent is gone; the main loop notices EOF and exits. */
static void send_msg(uint32_t type, uint64_t id, const struct out *o, const int *fds, int nfds)
{
	struct hdr h = {o ? (uint32_t)o->n : 0, type, id};
	struct iovec iov[2] = {{&h, sizeof h}, {o ? o->p : NULL, o ? o->n : 0}};
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
		struct cmsghdr align;
	} cm;
	struct msghdr m = {0};
	m.msg_iov = iov;
	m.msg_iovlen = h.len ? 2 : 1;
	if (nfds > 0) {
		memset(&cm, 0, sizeof cm);
		m.msg_control = cm.buf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	pthread_mutex_lock(&send_mu);
	while (m.msg_iovlen > 0) {
		ssize_t w = sendmsg(sock, &m, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		/* The fds went with the first bytes. */
		m.msg_control = NULL;
		m.msg_controllen = 0;
		while (m.msg_iovlen > 0 && (size_t)w >= m.msg_iov[0].iov_len) {
			w -= m.msg_iov[0].iov_len;
			m.msg_iov++;
			m.msg_iovlen--;
		}
		if (m.msg_iovlen > 0) {
			m.msg_iov[0].iov_base = (char *)m.msg_iov[0].iov_base + w;
			m.msg_iov[0].iov_len -= w;
		}
	}
	pthread_mutex_unlock(&send_mu);
}

static void send_error(uint64_t id, const char *msg)
{
	struct out o = {0};
	out_put(&o, msg, strlen(msg));
	send_msg(T_ERROR, id, &o, NULL, 0);
	free(o.p);
}

/* ---- input ---- */

/* recv_exact reads n bytes; fds arriving with them are appended to fds.
 * It returns 0 on success, -1 at EOF or on error. */
static int recv_exact(void *buf, size_t n, int *fds, int *nfds)
{
	size_t got = 0;
	while (got < n) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
			struct cmsghdr align;
		} cm;
		struct iovec iov = {(char *)buf + got, n - got};
		struct msghdr m = {0};
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = cm.buf;
		m.msg_controllen = sizeof cm.buf;
		ssize_t r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int *p = (int *)CMSG_DATA(c);
			for (int i = 0; i < k; i++) {
				if (*nfds < MAX_FDS)
					fds[(*nfds)++] = p[i];
				else
					close(p[i]);
			}
		}
		got += r;
	}
	return 0;
}

/* rd walks a request payload; bad is set on any overrun. */
struct rd {
	const uint8_t *p;
	size_t n;
	int bad;
};

static const void *rd_take(struct rd *r, size_t n)
{
	if (r->bad || r->n < n) {
		r->bad = 1;
		return NULL;
	}
	const void *p = r->p;
	r->p += n;
	r->n -= n;
	return p;
}

static uint32_t rd_u32(struct rd *r)
{
	uint32_t v = 0;
	const void *p = rd_take(r, 4);
	if (p)
		memcpy(&v, p, 4);
	return v;
}

static int64_t rd_i64(struct rd *r)
{
	int64_t v = 0;
	const void *p = rd_take(r, 8);
	if (p)
		memcpy(&v, p, 8);
	return v;
}

/* rd_str returns a NUL-terminated copy of a u32-length-prefixed string. */
static char *rd_str(struct rd *r)
{
	uint32_t n = rd_u32(r);
	const char *p = rd_take(r, n);
	if (!p)
		return NULL;
	char *s = malloc(n + 1);
	if (!s)
		die("malloc");
	memcpy(s, p, n);
	s[n] = 0;
	return s;
}

/* ---- syscalls ---- */

struct sysreq {
	uint64_t id;
	uint32_t flags;
	long nr;
	uint64_t args[6];
	uint32_t nbufs;
	uint8_t **bufs;
	uint32_t *lens;
};

static void sysreq_free(struct sysreq *q)
{
	for (uint32_t i = 0; i < q->nbufs; i++)
		free(q->bufs[i]);
	free(q->bufs);
	free(q->lens);
	free(q);
}

/* parse_syscall reads flags, nr, 6 args, the buffers, then the pointer
 * slots and nested links, applying both (the agent validated them; bad
 * ones are still refused here rather than written). */
static struct sysreq *parse_syscall(uint64_t id, struct rd *r, const char **err)
{
	struct sysreq *q = calloc(1, sizeof *q);
	if (!q)
		die("calloc");
	q->id = id;
	q->flags = rd_u32(r);
	q->nr = (long)rd_i64(r);
	for (int i = 0; i < 6; i++)
		q->args[i] = (uint64_t)rd_i64(r);
	uint32_t nb = rd_u32(r);
	if (r->bad || nb > r->n / 4) {
		*err = "syscall: bad request";
		free(q);
		return NULL;
	}
	q->bufs = calloc(nb ? nb : 1, sizeof *q->bufs);
	q->lens = calloc(nb ? nb : 1, sizeof *q->lens);
	if (!q->bufs || !q->lens)
		die("calloc");
	for (uint32_t i = 0; i < nb; i++) {
		uint32_t n = rd_u32(r);
		const void *p = rd_take(r, n);
		if (!p)
			break;
		/* malloc aligns to 16 bytes, as the kernel's structs expect. */
		q->bufs[i] = malloc(n ? n : 1);
		if (!q->bufs[i])
			die("malloc");
		memcpy(q->bufs[i], p, n);
		q->lens[i] = n;
		q->nbufs = i + 1;
	}
	uint32_t np = rd_u32(r);
	for (uint32_t i = 0; i < np && !r->bad; i++) {
		uint32_t slot = rd_u32(r);
		if (i >= q->nbufs || slot > 5) {
			*err = "syscall: pointer slot out of range";
			sysreq_free(q);
			return NULL;
		}
		q->args[slot] = (uint64_t)(uintptr_t)q->bufs[i];
	}
	uint32_t nn = rd_u32(r);
	for (uint32_t i = 0; i < nn && !r->bad; i++) {
		uint32_t parent = rd_u32(r), child = rd_u32(r), off = rd_u32(r);
		if (r->bad)
			break;
		if (parent >= q->nbufs || child >= q->nbufs || (uint64_t)off + 8 > q->lens[parent]) {
			*err = "syscall: nested link out of range";
			sysreq_free(q);
			return NULL;
		}
		uint64_t addr = (uint64_t)(uintptr_t)q->bufs[child];
		memcpy(q->bufs[parent] + off, &addr, 8);
	}
	if (r->bad || q->nbufs != nb) {
		*err = "syscall: bad request";
		sysreq_free(q);
		return NULL;
	}
	return q;
}

/* run_syscall executes q on the calling thread, replies and frees q. */
static void run_syscall(struct sysreq *q)
{
	errno = 0;
	long ret = syscall(q->nr, q->args[0], q->args[1], q->args[2], q->args[3], q->args[4], q->args[5]);
	int e = ret == -1 ? errno : 0;
	struct out o = {0};
	out_i64(&o, ret);
	out_i32(&o, e);
	out_u32(&o, q->nbufs);
	for (uint32_t i = 0; i < q->nbufs; i++) {
		out_u32(&o, q->lens[i]);
		out_put(&o, q->bufs[i], q->lens[i]);
	}
	int fd = (int)ret;
	int sendfd = (q->flags & SYS_SENDFD) && e == 0 && ret >= 0;
	send_msg(T_RESULT, q->id, &o, sendfd ? &fd : NULL, sendfd ? 1 : 0);
	free(o.p);
	sysreq_free(q);
}

static void *async_main(void *arg)
{
	run_syscall(arg);
	return NULL;
}

static void do_syscall(uint64_t id, struct rd *r)
{
	const char *err = NULL;
	struct sysreq *q = parse_syscall(id, r, &err);
	if (!q) {
		send_error(id, err);
		return;
	}
	if (!(q->flags & SYS_ASYNC)) {
		run_syscall(q);
		return;
	}
	pthread_attr_t a;
	pthread_t t;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 256 << 10);
	int e = pthread_create(&t, &a, async_main, q);
	pthread_attr_destroy(&a);
	if (e) {
		char msg[128];
		snprintf(msg, sizeof msg, "syscall_async: start thread: %s", strerror(e));
		send_error(id, msg);
		sysreq_free(q);
	}
}

/* ---- commands ---- */

static void kids_add(pid_t p)
{
	if (nkids == capkids) {
		capkids = capkids ? capkids * 2 : 16;
		kids = realloc(kids, capkids * sizeof *kids);
		if (!kids)
			die("realloc");
	}
	kids[nkids++] = p;
}

static void kids_remove(pid_t p)
{
	for (size_t i = 0; i < nkids; i++) {
		if (kids[i] == p) {
			kids[i] = kids[--nkids];
			return;
		}
	}
}

/* ---- signals ---- */

/* fault_handler is what Rust's runtime does for a SIGBUS or SIGSEGV that
 * is not a stack-guard hit: put the default action back and return. A
 * real fault then happens again and kills the process as before; a signal
 * sent by someone else only interrupts the syscall it arrived in (EINTR,
 * as the handler has no SA_RESTART), and the next one kills. */
static void fault_handler(int sig, siginfo_t *info, void *uctx)
{
	(void)info;
	(void)uctx;
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
}

/* setup_signals gives this process the dispositions a Rust program
 * starts with: SIGBUS and SIGSEGV caught on an alternate stack (SigCgt
 * shows them; suites check it) and SIGPIPE ignored, so a write to a
 * closed pipe or socket fails with EPIPE instead of killing the worker.
 * Children put SIGPIPE back to its default before exec (exec_child), as
 * Rust's Command does; the caught ones reset at exec by themselves. Async
 * threads have no alternate stack of their own: their handler runs on
 * their (ample) thread stack. */
static void setup_signals(void)
{
	static char altstack[64 << 10];
	stack_t ss;
	memset(&ss, 0, sizeof ss);
	ss.ss_sp = altstack;
	ss.ss_size = sizeof altstack;
	if (sigaltstack(&ss, NULL) < 0)
		die("sigaltstack");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = fault_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) < 0 || sigaction(SIGSEGV, &sa, NULL) < 0)
		die("sigaction");
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		die("signal(SIGPIPE)");
}

/* exec_child runs in the forked child: it never returns. Errors go to
 * errfd as an errno. */
static void exec_child(uint32_t flags, const char *path, const char *dir, char **argv, char **envp,
                       int stdio[3], int errfd)
{
	/* A command starts with no signal blocked and SIGPIPE at its default
	 * (an ignored disposition would survive the exec). */
	signal(SIGPIPE, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (flags & SPAWN_SETPGID)
		setpgid(0, 0);
	/* Move the stdio fds out of 0..2 first so no dup2 clobbers another. */
	for (int i = 0; i < 3; i++) {
		if (stdio[i] < 3) {
			int f = fcntl(stdio[i], F_DUPFD_CLOEXEC, 3);
			if (f < 0)
				goto fail;
			stdio[i] = f;
		}
	}
	for (int i = 0; i < 3; i++)
		if (dup2(stdio[i], i) < 0)
			goto fail;
	if (dir[0] && chdir(dir) < 0)
		goto fail;
	if (!(flags & SPAWN_LOOKUP)) {
		execve(path, argv, envp);
		goto fail;
	}
	/* PATH lookup with the command's own PATH, as a shell would. */
	const char *search = NULL;
	for (char **e = envp; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			search = *e + 5;
	if (!search)
		search = DEFAULT_PATH;
	int denied = 0;
	size_t nlen = strlen(path);
	char buf[4096];
	for (const char *s = search;; s++) {
		const char *end = strchrnul(s, ':');
		size_t dlen = end - s;
		if (dlen == 0) {
			s = ".";
			dlen = 1;
		}
		if (dlen + 1 + nlen < sizeof buf) {
			memcpy(buf, s, dlen);
			buf[dlen] = '/';
			memcpy(buf + dlen + 1, path, nlen + 1);
			execve(buf, argv, envp);
			switch (errno) {
			case EACCES:
				denied = 1;
				/* fall through */
			case ENOENT:
			case ENOTDIR:
			case ELOOP:
			case ENAMETOOLONG:
				break;
			default:
				goto fail;
			}
		}
		if (!*end)
			break;
		s = end;
	}
	errno = denied ? EACCES : ENOENT;
fail:;
	int e = errno;
	while (write(errfd, &e, sizeof e) < 0 && errno == EINTR)
		;
	_exit(127);
}

static void do_spawn(uint64_t id, struct rd *r, int *fds, int nfds)
{
	uint32_t flags = rd_u32(r);
	char *path = rd_str(r), *dir = rd_str(r);
	uint32_t argc = rd_u32(r);
	char **argv = NULL, **envp = NULL;
	uint32_t envc = 0;
	if (!r->bad && argc <= r->n / 4) {
		argv = calloc(argc + 1, sizeof *argv);
		for (uint32_t i = 0; i < argc && !r->bad; i++)
			argv[i] = rd_str(r);
		envc = rd_u32(r);
		if (!r->bad && envc <= r->n / 4) {
			envp = calloc(envc + 1, sizeof *envp);
			for (uint32_t i = 0; i < envc && !r->bad; i++)
				envp[i] = rd_str(r);
		} else {
			r->bad = 1;
		}
	} else {
		r->bad = 1;
	}
	int errp[2] = {-1, -1};
	if (r->bad || nfds != 3 || argc == 0) {
		send_error(id, "spawn: bad request");
		goto out;
	}
	if (pipe2(errp, O_CLOEXEC) < 0) {
		char msg[128];
		snprintf(msg, sizeof msg, "spawn: pipe: %s", strerror(errno));
		send_error(id, msg);
		goto out;
	}
	pid_t pid = fork();
	if (pid == 0)
		exec_child(flags, path, dir, argv, envp, fds, errp[1]);
	int err = pid < 0 ? errno : 0;
	close(errp[1]);
	if (pid > 0) {
		int e;
		ssize_t n;
		while ((n = read(errp[0], &e, sizeof e)) < 0 && errno == EINTR)
			;
		if (n == sizeof e) {
			err = e;
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			pid = 0;
		}
	}
	close(errp[0]);
	struct out o = {0};
	out_i32(&o, pid > 0 ? pid : 0);
	out_i32(&o, err);
	if (pid > 0) {
		kids_add(pid);
		/* A pidfd lets the agent signal this child without racing a reuse
		 * of its pid; kernels before 5.3 have none, and it then signals
		 * by pid. */
		int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
		send_msg(T_SPAWNED, id, &o, pfd >= 0 ? &pfd : NULL, pfd >= 0 ? 1 : 0);
		if (pfd >= 0)
			close(pfd);
	} else {
		send_msg(T_SPAWNED, id, &o, NULL, 0);
	}
	free(o.p);
out:
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	free(path);
	free(dir);
	if (argv)
		for (uint32_t i = 0; i < argc; i++)
			free(argv[i]);
	if (envp)
		for (uint32_t i = 0; i < envc; i++)
			free(envp[i]);
	free(argv);
	free(envp);
}

/* reap collects every exited child and reports it. */
static void reap(void)
{
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p <= 0)
			return;
		kids_remove(p);
		struct out o = {0};
		out_i32(&o, p);
		out_i32(&o, st);
		send_msg(T_EXIT, 0, &o, NULL, 0);
		free(o.p);
	}
}

static void handle_message(void)
{
	struct hdr h;
	int fds[MAX_FDS], nfds = 0;
	if (recv_exact(&h, sizeof h, fds, &nfds) < 0 || h.len > MAX_MSG) {
		/* The agent is gone: take the children with us. */
		for (size_t i = 0; i < nkids; i++) {
			kill(-kids[i], SIGKILL);
			kill(kids[i], SIGKILL);
		}
		_exit(0);
	}
	uint8_t *p = malloc(h.len ? h.len : 1);
	if (!p)
		die("malloc");
	if (h.len && recv_exact(p, h.len, fds, &nfds) < 0)
		_exit(0);
	struct rd r = {p, h.len, 0};
	switch (h.type) {
	case T_SYSCALL:
		do_syscall(h.id, &r);
		break;
	case T_SPAWN:
		do_spawn(h.id, &r, fds, nfds);
		nfds = 0;
		break;
	default:
		send_error(h.id, "unknown request");
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	free(p);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		sock = atoi(argv[1]);
	/* Keep the channel and our own fds out of the numbers the test's
	 * syscalls get, and out of reach of a casual close(3). */
	int hi = fcntl(sock, F_DUPFD_CLOEXEC, 900);
	if (hi >= 0) {
		close(sock);
		sock = hi;
	} else {
		fcntl(sock, F_SETFD, FD_CLOEXEC);
	}
	setup_signals();
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0)
		die("sigprocmask");
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		die("signalfd");
	int s2 = fcntl(sfd, F_DUPFD_CLOEXEC, 900);
	if (s2 >= 0) {
		close(sfd);
		sfd = s2;
	}
	for (;;) {
		struct pollfd pf[2] = {{sock, POLLIN, 0}, {sfd, POLLIN, 0}};
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (pf[1].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) > 0)
				;
			reap();
		}
		if (pf[0].revents)
			handle_message();
	}
}
