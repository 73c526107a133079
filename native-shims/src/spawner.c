/* `spawner`: forks and execs `podrun-shim run PLAN` monitors for the Node process that started it.
 *
 * Why: fork(2) copies the page tables of the caller. From the supervisor (a Node process of
 * 70-100 MB) one spawn costs 7-11 ms of its main thread here, twice per two-container pod; from
 * this small process a fork costs well under a millisecond. The spawner is started once per
 * Node process and lives as long as its stdin: when the Node process exits (or is killed), the
 * spawner reads end of file and exits too. Its monitors are in their own sessions and are
 * re-parented like any orphan; the runtime finds them by pid and start time, never as children.
 *
 * Requests on stdin, one per line, tokens percent-escaped as in the plan file:
 *     run ID PLAN STDERR
 * Answers on stdout, one per line:
 *     ID pid PID           the monitor was forked (its status lines follow)
 *     ID line STATUSLINE   a line the monitor wrote on its status channel (fd 3), as written
 *     ID eof               the monitor closed its status channel (started, failed, or died)
 *     ID error STEP ERRNO  nothing was forked (no eof follows)
 * The monitor gets /dev/null as stdin and stdout, STDERR (appended, created 0600) as stderr, the
 * write end of a fresh pipe as fd 3, default signal dispositions, an empty signal mask and a new
 * session: what `spawn(…, {detached: true})` gave it from Node. This process reaps its children.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_SLOTS 512
#define BUF_SIZE 65536

struct slot {
	int fd;
	unsigned long id;
	size_t len;
	char buf[BUF_SIZE];
};

static struct slot *slots[MAX_SLOTS];
static int n_slots;
static const char *self;

/* One answer line on stdout; a reader that went away ends this process (its monitors live on). */
static void answer(const char *fmt, ...)
{
	char line[BUF_SIZE + 64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = sizeof line - 1;
	if (write_all(1, line, (size_t)n) < 0)
		_exit(0);
}

static void on_child(int sig)
{
	(void)sig;
}

static void spawn_run(unsigned long id, const char *plan, const char *errpath)
{
	if (n_slots >= MAX_SLOTS) {
		answer("%lu error slots %d\n", id, EMFILE);
		return;
	}
	int st[2];
	if (pipe2(st, O_CLOEXEC) < 0) {
		answer("%lu error pipe %d\n", id, errno);
		return;
	}
	int errfd = open(errpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (errfd < 0) {
		answer("%lu error open-stderr %d\n", id, errno);
		close(st[0]);
		close(st[1]);
		return;
	}
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul < 0) {
		answer("%lu error open-devnull %d\n", id, errno);
		close(st[0]);
		close(st[1]);
		close(errfd);
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		answer("%lu error fork %d\n", id, errno);
		close(st[0]);
		close(st[1]);
		close(errfd);
		close(nul);
		return;
	}
	if (pid == 0) {
		reset_signals();
		setsid();
		/* all four sources are >= 4 (0-3 are taken in this process), and dup2 clears CLOEXEC */
		if (dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(errfd, 2) < 0 || dup2(st[1], STATUS_FD) < 0)
			_exit(EXIT_SHIM_FAILED);
		char *argv[] = { (char *)self, "run", (char *)plan, NULL };
		execve(self, argv, environ);
		report_fd = STATUS_FD;
		report_error("execve-shim", errno, self);
		_exit(EXIT_SHIM_FAILED);
	}
	close(st[1]);
	close(errfd);
	close(nul);
	fcntl(st[0], F_SETFL, O_NONBLOCK);
	struct slot *s = calloc(1, sizeof *s);
	if (!s) {
		/* the monitor runs; without a buffer its status cannot be relayed */
		close(st[0]);
		answer("%lu pid %d\n%lu eof\n", id, (int)pid, id);
		return;
	}
	s->fd = st[0];
	s->id = id;
	slots[n_slots++] = s;
	answer("%lu pid %d\n", id, (int)pid);
}

/* "run ID PLAN STDERR"; anything else is answered with an error when it has an id. */
static void request(char *line)
{
	char *tok[5];
	int n = 0;
	for (char *t = strtok(line, " "); t && n < 5; t = strtok(NULL, " "))
		tok[n++] = unescape_token(t);
	if (n == 0)
		return;
	unsigned long id = n > 1 ? strtoul(tok[1], NULL, 10) : 0;
	if (n == 4 && !strcmp(tok[0], "run"))
		spawn_run(id, tok[2], tok[3]);
	else
		answer("%lu error request %d\n", id, EINVAL);
}

/* Relays complete lines (a line longer than the buffer goes out in pieces); true at end of file. */
static int relay(struct slot *s)
{
	for (;;) {
		ssize_t r = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 0;
		int eof = r <= 0;
		if (r > 0)
			s->len += (size_t)r;
		size_t start = 0;
		for (size_t i = 0; i < s->len; i++) {
			if (s->buf[i] != '\n')
				continue;
			answer("%lu line %.*s\n", s->id, (int)(i - start), s->buf + start);
			start = i + 1;
		}
		memmove(s->buf, s->buf + start, s->len - start);
		s->len -= start;
		if (s->len == sizeof s->buf || (eof && s->len)) {
			answer("%lu line %.*s\n", s->id, (int)s->len, s->buf);
			s->len = 0;
		}
		if (eof)
			return 1;
	}
}

int mode_spawner(const char *argv0)
{
	self = argv0;
	set_signal(SIGCHLD, on_child);
	set_signal(SIGPIPE, SIG_IGN);
	set_signal(SIGHUP, SIG_IGN);
	sigset_t block, wait_mask;
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGCHLD);
	if (chdir("/") < 0)
		return EXIT_SHIM_FAILED;

	static char in[BUF_SIZE];
	size_t in_len = 0;
	struct pollfd pfd[MAX_SLOTS + 1];
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0) {
		}
		pfd[0] = (struct pollfd){ .fd = 0, .events = POLLIN };
		for (int i = 0; i < n_slots; i++)
			pfd[i + 1] = (struct pollfd){ .fd = slots[i]->fd, .events = POLLIN };
		int n = n_slots;
		if (ppoll(pfd, (nfds_t)n + 1, NULL, &wait_mask) < 0) {
			if (errno == EINTR)
				continue;
			return EXIT_SHIM_FAILED;
		}
		for (int i = n - 1; i >= 0; i--) {
			if (!pfd[i + 1].revents)
				continue;
			if (relay(slots[i])) {
				answer("%lu eof\n", slots[i]->id);
				close(slots[i]->fd);
				free(slots[i]);
				slots[i] = slots[--n_slots];
			}
		}
		if (!pfd[0].revents)
			continue;
		ssize_t r = read(0, in + in_len, sizeof in - in_len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0; /* the Node process is gone: so are we */
		in_len += (size_t)r;
		size_t start = 0;
		for (size_t i = 0; i < in_len; i++) {
			if (in[i] != '\n')
				continue;
			in[i] = 0;
			request(in + start);
			start = i + 1;
		}
		if (start == 0 && in_len == sizeof in)
			in_len = 0; /* a request longer than the buffer: dropped */
		memmove(in, in + start, in_len - start);
		in_len -= start;
	}
}
