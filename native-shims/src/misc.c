/* `pause [CGROUP_PROCS…]`: the init of a pod-wide PID namespace (shareProcessNamespace) that
 * reaps orphans. `lo-up NSPATH`: bring the loopback up inside a pinned network namespace. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static void on_child(int sig)
{
	(void)sig;
}

/* Reap every child (orphans of the pod's PID namespace are re-parented to us) until SIGTERM or
 * SIGINT. SIGCHLD stays blocked except inside sigsuspend, so no wake-up is lost. */
static void pause_loop(void)
{
	set_signal(SIGTERM, on_stop);
	set_signal(SIGINT, on_stop);
	set_signal(SIGCHLD, on_child);
	set_signal(SIGHUP, SIG_IGN);
	set_signal(SIGPIPE, SIG_IGN);
	sigset_t block, wait_mask;
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGCHLD);
	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGINT);
	while (!stop) {
		while (waitpid(-1, NULL, WNOHANG) > 0) {
		}
		if (!stop)
			sigsuspend(&wait_mask);
	}
	_exit(0);
}

int mode_pause(int argc, char **argv)
{
	report_fd = STATUS_FD;
	for (int i = 0; i < argc; i++) {
		if (write_file(argv[i], "0") < 0) {
			report_error("cgroup-join", errno, argv[i]);
			return EXIT_SHIM_FAILED;
		}
	}
	if (unshare(CLONE_NEWPID) < 0) {
		report_error("unshare", errno, "pid");
		return EXIT_SHIM_FAILED;
	}
	pid_t child = fork();
	if (child < 0) {
		report_error("fork", errno, NULL);
		return EXIT_SHIM_FAILED;
	}
	if (child == 0) {
		close(STATUS_FD);
		if (chdir("/") < 0)
			_exit(1);
		pause_loop();
	}
	report_started(child, proc_start_time(child));
	return 0;
}

int mode_lo_up(const char *nspath)
{
	report_fd = STATUS_FD;
	int fd = open(nspath, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		report_error("setns-net", errno, nspath);
		return EXIT_SHIM_FAILED;
	}
	close(fd);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		report_error("socket", errno, nspath);
		return EXIT_SHIM_FAILED;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		report_error("SIOCGIFFLAGS", errno, "lo");
		return EXIT_SHIM_FAILED;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
		report_error("SIOCSIFFLAGS", errno, "lo");
		return EXIT_SHIM_FAILED;
	}
	close(s);
	report_step("lo-up", nspath);
	return 0;
}
