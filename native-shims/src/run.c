/* `run PLAN`: the per-container monitor. Detaches, forks the container init into a new (or the
 * pod's) PID namespace, relays its stdout/stderr into the CRI log file, reports "started", waits,
 * and writes STATE/exit atomically. It ignores stop signals: TypeScript signals the container. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES (16 * 1024)

struct stream {
	const char *name;
	int fd;
	int strip_cr; /* a terminal ends lines with \r\n */
	char buf[LINE_MAX_BYTES];
	size_t len;
};

static int log_fd = -1;

static void rfc3339nano(char *out, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, cap - n, ".%09ldZ", ts.tv_nsec);
}

/* One CRI log line: "<time> <stream> F|P <content>\n". */
static void log_line(struct stream *s, const char *data, size_t len, int partial)
{
	if (s->strip_cr && !partial && len > 0 && data[len - 1] == '\r')
		len--;
	char head[96];
	rfc3339nano(head, 48);
	size_t h = strlen(head);
	h += (size_t)snprintf(head + h, sizeof head - h, " %s %c ", s->name, partial ? 'P' : 'F');
	struct iovec_like { const void *p; size_t n; } parts[3] = { { head, h }, { data, len }, { "\n", 1 } };
	/* one write per line keeps lines whole for concurrent readers */
	char out[LINE_MAX_BYTES + 128];
	size_t o = 0;
	for (int i = 0; i < 3; i++) {
		memcpy(out + o, parts[i].p, parts[i].n);
		o += parts[i].n;
	}
	if (log_fd >= 0)
		write_all(log_fd, out, o);
}

/* Read what is there; emit full lines, and a partial line when the buffer is full. */
static int pump(struct stream *s)
{
	for (;;) {
		ssize_t n = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -1;
		}
		if (n == 0)
			return -1; /* EOF */
		s->len += (size_t)n;
		size_t start = 0;
		for (size_t i = 0; i < s->len; i++) {
			if (s->buf[i] == '\n') {
				log_line(s, s->buf + start, i - start, 0);
				start = i + 1;
			}
		}
		memmove(s->buf, s->buf + start, s->len - start);
		s->len -= start;
		if (s->len == sizeof s->buf) {
			log_line(s, s->buf, s->len, 1);
			s->len = 0;
		}
	}
}

static void flush_stream(struct stream *s)
{
	if (s->len > 0)
		log_line(s, s->buf, s->len, 0);
	s->len = 0;
}

static void write_state_file(const char *dir, const char *name, const char *content)
{
	char tmp[4096], dst[4096];
	snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
	snprintf(dst, sizeof dst, "%s/%s", dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "podrun-shim: cannot write %s: %s\n", tmp, strerror(errno));
		return;
	}
	/* Not fsynced, as state.json is not: the run root is volatile (a reboot ends every container
	 * and `gc` clears what is left), and rename is atomic for every reader while the host runs.
	 * The fsync cost 5 ms of each container start here, between its exec and "started". */
	write_all(fd, content, strlen(content));
	close(fd);
	if (rename(tmp, dst) < 0)
		fprintf(stderr, "podrun-shim: cannot rename %s: %s\n", tmp, strerror(errno));
}

static void write_exit(struct plan *p, pid_t pid, int status)
{
	char when[64], json[256];
	rfc3339nano(when, sizeof when);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	snprintf(json, sizeof json, "{\"pid\":%d,\"exitCode\":%d,\"signal\":%d,\"finishedAt\":\"%s\"}\n", (int)pid, code, sig, when);
	write_state_file(p->state_dir, "exit", json);
}

/* Relay the child's step lines to fd 3 until EOF (exec happened or the child failed).
 * Returns 1 when an error line came. */
static int relay_start(int sync_fd)
{
	char buf[8192];
	size_t len = 0;
	int failed = 0;
	for (;;) {
		ssize_t n = read(sync_fd, buf + len, sizeof buf - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		char *nl;
		while ((nl = memchr(buf, '\n', len)) != NULL) {
			size_t l = (size_t)(nl - buf) + 1;
			if (l >= 6 && memcmp(buf, "error ", 6) == 0)
				failed = 1;
			write_all(STATUS_FD, buf, l);
			memmove(buf, buf + l, len - l);
			len -= l;
		}
		if (len == sizeof buf - 1)
			len = 0;
	}
	return failed;
}

static void ignore_stop_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2 };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
}

static int enter_pid_ns(struct plan *p)
{
	if (p->ns_pid) {
		int fd = open(p->ns_pid, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWPID) < 0) {
			report_error("setns-pid", errno, p->ns_pid);
			return -1;
		}
		close(fd);
		report_step("setns-pid", p->ns_pid);
		return 0;
	}
	if (unshare(CLONE_NEWPID) < 0) {
		report_error("unshare", errno, "pid");
		return -1;
	}
	report_step("unshare", "pid");
	return 0;
}

static int supervise(struct plan *p, pid_t child, int out_fd, int err_fd, int tty)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	static struct stream so, se;
	so.name = "stdout";
	so.fd = out_fd;
	so.strip_cr = tty;
	se.name = "stderr";
	se.fd = err_fd;
	fcntl(out_fd, F_SETFL, O_NONBLOCK);
	if (err_fd >= 0)
		fcntl(err_fd, F_SETFL, O_NONBLOCK);
	int status = 0, exited = 0;
	while (!exited) {
		struct pollfd pf[3] = { { so.fd, POLLIN, 0 }, { se.fd, POLLIN, 0 }, { sfd, POLLIN, 0 } };
		int r = poll(pf, 3, sfd < 0 ? 200 : -1);
		if (r < 0 && errno != EINTR)
			break;
		if (so.fd >= 0 && (pf[0].revents & (POLLIN | POLLHUP)) && pump(&so) < 0) {
			close(so.fd);
			so.fd = -1;
		}
		if (se.fd >= 0 && (pf[1].revents & (POLLIN | POLLHUP)) && pump(&se) < 0) {
			close(se.fd);
			se.fd = -1;
		}
		if (sfd >= 0 && (pf[2].revents & POLLIN)) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) > 0) {
			}
		}
		pid_t w = waitpid(child, &status, WNOHANG);
		if (w == child)
			exited = 1;
	}
	/* drain what the container wrote before it ended */
	if (so.fd >= 0)
		pump(&so);
	if (se.fd >= 0)
		pump(&se);
	flush_stream(&so);
	flush_stream(&se);
	write_exit(p, child, status);
	return 0;
}

int mode_run(const char *planfile)
{
	struct plan p;
	report_fd = STATUS_FD;
	if (plan_read(planfile, &p) < 0) {
		report_error("read-plan", errno, planfile);
		return EXIT_SHIM_FAILED;
	}
	ignore_stop_signals();
	setsid(); /* fails harmlessly when spawned detached (already a session leader) */
	if (chdir("/") < 0)
		return EXIT_SHIM_FAILED;
	log_fd = open(p.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (log_fd < 0) {
		report_error("open-log", errno, p.log);
		return EXIT_SHIM_FAILED;
	}
	int out[2], err[2], sync[2], sock[2] = { -1, -1 };
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(sync, O_CLOEXEC) < 0) {
		report_error("pipe", errno, NULL);
		return EXIT_SHIM_FAILED;
	}
	if (p.terminal && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock) < 0) {
		report_error("socketpair", errno, NULL);
		return EXIT_SHIM_FAILED;
	}
	if (enter_pid_ns(&p) < 0)
		return EXIT_SHIM_FAILED;
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	pid_t child = fork_reporting(sync[1]);
	if (child < 0)
		return EXIT_SHIM_FAILED;
	if (child == 0) {
		p.run_sock = sock[1];
		if (sock[0] >= 0)
			close(sock[0]);
		close(sync[0]);
		close(out[0]);
		close(err[0]);
		close(STATUS_FD);
		if (dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
			fail("dup2", NULL);
		container_init(&p);
	}
	close(sync[1]);
	close(out[1]);
	close(err[1]);
	int master = -1;
	if (p.terminal) {
		close(sock[1]);
		master = receive_master(sock[0]);
		close(sock[0]);
	}
	int failed = relay_start(sync[0]);
	close(sync[0]);
	if (!failed && p.terminal && master < 0) {
		report_error("receive-pty-master", EPROTO, NULL);
		failed = 1;
	}
	if (failed) {
		int st;
		waitpid(child, &st, 0);
		return EXIT_SHIM_FAILED;
	}
	unsigned long long start = proc_start_time(child);
	char started[128];
	snprintf(started, sizeof started, "%d %d %llu\n", (int)getpid(), (int)child, start);
	write_state_file(p.state_dir, "started", started);
	report_started(child, start);
	close(STATUS_FD);
	report_fd = -1;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		close(devnull);
	}
	if (master >= 0) {
		close(out[0]);
		close(err[0]);
		return supervise(&p, child, master, -1, 1);
	}
	return supervise(&p, child, out[0], err[0], 0);
}
