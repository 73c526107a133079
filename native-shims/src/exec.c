/* `exec PLAN`: run a command in a running container: join its cgroup and namespaces, set the
 * process up, exec. With "terminal", allocate a pty and relay; else stdio passes through.
 * Exits with the command's status (128 + signal when killed). */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int ns_type(const char *t)
{
	if (!strcmp(t, "ipc")) return CLONE_NEWIPC;
	if (!strcmp(t, "uts")) return CLONE_NEWUTS;
	if (!strcmp(t, "net")) return CLONE_NEWNET;
	if (!strcmp(t, "pid")) return CLONE_NEWPID;
	if (!strcmp(t, "cgroup")) return CLONE_NEWCGROUP;
	if (!strcmp(t, "mnt")) return CLONE_NEWNS;
	return -1;
}

static pid_t child_pid = -1;

static void forward(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

static int exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int relay_errors(int sync_fd)
{
	char buf[4096];
	int failed = 0;
	ssize_t n;
	while ((n = read(sync_fd, buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (memmem(buf, (size_t)n, "error ", 6))
			failed = 1;
		write_all(STATUS_FD, buf, (size_t)n);
	}
	return failed;
}

static int relay_pty(int master, pid_t child)
{
	struct termios saved, raw;
	int tty = isatty(0) && tcgetattr(0, &saved) == 0;
	/* the window size comes from the terminal on stdin, else from one on stdout (exec -t without -i) */
	int wsfd = tty ? 0 : (isatty(1) ? 1 : -1);
	if (tty) {
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
	}
	if (wsfd >= 0) {
		struct winsize ws;
		if (ioctl(wsfd, TIOCGWINSZ, &ws) == 0)
			ioctl(master, TIOCSWINSZ, &ws);
	}
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGWINCH);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	int in_open = 1, status = 0;
	char buf[8192];
	for (;;) {
		struct pollfd pf[3] = { { in_open ? 0 : -1, POLLIN, 0 }, { master, POLLIN, 0 }, { sfd, POLLIN, 0 } };
		if (poll(pf, 3, -1) < 0 && errno != EINTR)
			break;
		if (pf[0].revents & (POLLIN | POLLHUP)) {
			ssize_t n = read(0, buf, sizeof buf);
			if (n <= 0) {
				in_open = 0;
				char eot = 4; /* ^D: end of input for the program on the terminal */
				write_all(master, &eot, 1);
			} else {
				write_all(master, buf, (size_t)n);
			}
		}
		if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(master, buf, sizeof buf);
			if (n > 0)
				write_all(1, buf, (size_t)n);
			else
				break; /* EIO: the slave side is closed */
		}
		if (pf[2].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) > 0) {
				struct winsize ws;
				if (si.ssi_signo == SIGWINCH && wsfd >= 0 && ioctl(wsfd, TIOCGWINSZ, &ws) == 0)
					ioctl(master, TIOCSWINSZ, &ws);
			}
		}
	}
	waitpid(child, &status, 0);
	if (tty)
		tcsetattr(0, TCSANOW, &saved);
	return exit_code(status);
}

int mode_exec(const char *planfile)
{
	struct plan p;
	report_fd = STATUS_FD;
	if (plan_read(planfile, &p) < 0) {
		report_error("read-plan", errno, planfile);
		return EXIT_SHIM_FAILED;
	}
	char target[32];
	snprintf(target, sizeof target, "%d", (int)p.target_pid);
	if (proc_start_time(p.target_pid) != p.target_start) {
		report_error("find-target", ESRCH, target);
		return EXIT_SHIM_FAILED;
	}
	/* Open everything while the host's /proc and /sys/fs/cgroup are still visible. */
	int *nsfd = xcalloc((size_t)p.n_joins + 1, sizeof(int));
	for (int i = 0; i < p.n_joins; i++) {
		nsfd[i] = open(p.joins[i].path, O_RDONLY | O_CLOEXEC);
		if (nsfd[i] < 0) {
			report_error("open-ns", errno, p.joins[i].path);
			return EXIT_SHIM_FAILED;
		}
	}
	int *cgfd = xcalloc((size_t)p.n_cgroup_procs + 1, sizeof(int));
	for (int i = 0; i < p.n_cgroup_procs; i++) {
		cgfd[i] = open(p.cgroup_procs[i], O_WRONLY | O_CLOEXEC);
		if (cgfd[i] < 0) {
			report_error("open-cgroup", errno, p.cgroup_procs[i]);
			return EXIT_SHIM_FAILED;
		}
	}
	int sock[2] = { -1, -1 }, master = -1;
	if (p.terminal && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock) < 0) {
		report_error("socketpair", errno, NULL);
		return EXIT_SHIM_FAILED;
	}
	/* A PID namespace applies to children: join it here, before fork. */
	for (int i = 0; i < p.n_joins; i++) {
		if (ns_type(p.joins[i].type) == CLONE_NEWPID && setns(nsfd[i], CLONE_NEWPID) < 0) {
			report_error("setns-pid", errno, p.joins[i].path);
			return EXIT_SHIM_FAILED;
		}
	}
	int sync[2];
	if (pipe2(sync, O_CLOEXEC) < 0) {
		report_error("pipe", errno, NULL);
		return EXIT_SHIM_FAILED;
	}
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGWINCH);
	if (p.terminal)
		sigprocmask(SIG_BLOCK, &mask, NULL);
	pid_t child = fork_reporting(sync[1]);
	if (child < 0)
		return EXIT_SHIM_FAILED;
	if (child == 0) {
		close(sync[0]);
		for (int i = 0; i < p.n_cgroup_procs; i++) {
			if (write(cgfd[i], "0", 1) < 0)
				fail("cgroup-join", p.cgroup_procs[i]);
		}
		for (int i = 0; i < p.n_joins; i++) {
			int t = ns_type(p.joins[i].type);
			if (t == CLONE_NEWPID)
				continue;
			if (t < 0 || setns(nsfd[i], t) < 0)
				fail("setns", p.joins[i].path);
		}
		if (p.terminal) {
			close(sock[0]);
			int slave = container_pty(sock[1], p.uid);
			close(sock[1]);
			if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
				fail("controlling-tty", NULL);
			if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
				fail("dup2", NULL);
		}
		if (close(STATUS_FD) < 0 && errno != EBADF)
			fail("close", "3");
		exec_process(&p);
	}
	child_pid = child;
	close(sync[1]);
	if (p.terminal) {
		close(sock[1]);
		master = receive_master(sock[0]);
		close(sock[0]);
	}
	if (!p.terminal) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = forward;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		sigaction(SIGQUIT, &sa, NULL);
	}
	int failed = relay_errors(sync[0]);
	close(sync[0]);
	close(STATUS_FD);
	if (failed) {
		int st;
		waitpid(child, &st, 0);
		return EXIT_SHIM_FAILED;
	}
	if (p.terminal) {
		if (master < 0) {
			report_error("receive-pty-master", EPROTO, NULL);
			return EXIT_SHIM_FAILED;
		}
		return relay_pty(master, child);
	}
	int status;
	while (waitpid(child, &status, 0) < 0) {
		if (errno != EINTR)
			return EXIT_SHIM_FAILED;
	}
	return exit_code(status);
}
