/* Status lines to TypeScript, and small helpers shared by every mode. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int report_fd = STATUS_FD;

int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Escape one token into buf (3 bytes per input byte at most). */
static size_t escape_token(const char *s, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (!s || !*s) {
		if (cap > 1)
			out[o++] = '%';
		out[o] = 0;
		return o;
	}
	for (; *s && o + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c > 0x20 && c < 0x7f && c != '%') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = 0;
	return o;
}

void write_token(int fd, const char *s)
{
	char buf[3 * 1024 + 8];
	size_t n = escape_token(s, buf, sizeof buf);
	write_all(fd, buf, n);
}

/* One line of up to three tokens after the key; built in one buffer so a pipe write is atomic. */
static void report_line(const char *key, const char *a, const char *b, const char *c)
{
	char line[4096];
	size_t n = (size_t)snprintf(line, sizeof line, "%s", key);
	const char *toks[3] = { a, b, c };
	for (int i = 0; i < 3; i++) {
		if (!toks[i])
			break;
		if (n + 2 >= sizeof line)
			break;
		line[n++] = ' ';
		n += escape_token(toks[i], line + n, sizeof line - n - 1);
	}
	if (n + 1 >= sizeof line)
		n = sizeof line - 2;
	line[n++] = '\n';
	if (report_fd >= 0)
		write_all(report_fd, line, n);
}

void report_step(const char *step, const char *detail)
{
	report_line("step", step, detail ? detail : "", NULL);
}

void report_error(const char *step, int err, const char *path)
{
	char e[16];
	snprintf(e, sizeof e, "%d", err);
	report_line("error", step, e, path ? path : "");
	/* also readable by a human in the monitor's stderr file */
	fprintf(stderr, "podrun-shim: %s %s: %s\n", step, path ? path : "", strerror(err));
}

void report_started(pid_t pid, unsigned long long start)
{
	char a[32], b[32];
	snprintf(a, sizeof a, "%d", (int)pid);
	snprintf(b, sizeof b, "%llu", start);
	report_line("started", a, b, NULL);
}

void fail(const char *step, const char *path)
{
	report_error(step, errno, path);
	_exit(EXIT_SHIM_FAILED);
}

/* Field 22 of /proc/PID/stat; 0 when unreadable. */
unsigned long long proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p += 2; /* field 3 */
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

int write_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = write_all(fd, value, strlen(value));
	int saved = errno;
	close(fd);
	errno = saved;
	return r;
}

/* Default dispositions and an empty mask: the container must not inherit the monitor's. */
void reset_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Sets one signal's disposition (a handler, SIG_IGN or SIG_DFL), no flags, empty mask. */
void set_signal(int sig, void (*handler)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigaction(sig, &sa, NULL);
}

/* fork for run and exec: the child starts with default signals and reports its steps on
 * `report_to`; the parent gets the child's pid, or -1 after reporting the failed fork. */
pid_t fork_reporting(int report_to)
{
	pid_t child = fork();
	if (child < 0) {
		report_error("fork", errno, NULL);
		return -1;
	}
	if (child == 0) {
		reset_signals();
		report_fd = report_to;
	}
	return child;
}

/* calloc or exit: the shim cannot do its job without memory. */
void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (!p) {
		report_error("calloc", ENOMEM, NULL);
		_exit(EXIT_SHIM_FAILED);
	}
	return p;
}
