/* Terminals from the container's own devpts instance (exec -t and run with a terminal). */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

/* In the child, inside the container's mount namespace: a pty of the container's own devpts
 * instance (so /dev/pts/N names it inside), the master sent to the parent over `sock`. */
int container_pty(int sock, uid_t uid)
{
	int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		fail("open-ptmx", "/dev/ptmx");
	if (unlockpt(master) < 0)
		fail("unlockpt", "/dev/ptmx");
	int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		fail("open-pty-slave", "/dev/ptmx");
	if (fchown(slave, uid, (gid_t)-1) < 0)
		fail("chown-pty", NULL);
	/* The size of the caller's terminal (on stdin, else on stdout, as relay_pty takes it), set
	 * before the command runs: the parent sets it again only once the command has exec'd, and a
	 * quick `stty size` saw 0x0 in between. */
	struct winsize ws;
	if ((isatty(0) && ioctl(0, TIOCGWINSZ, &ws) == 0) || (isatty(1) && ioctl(1, TIOCGWINSZ, &ws) == 0))
		ioctl(master, TIOCSWINSZ, &ws);
	char byte = 0;
	char ctrl[CMSG_SPACE(sizeof(int))];
	memset(ctrl, 0, sizeof ctrl);
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof ctrl };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &master, sizeof(int));
	if (sendmsg(sock, &msg, 0) < 0)
		fail("send-pty-master", NULL);
	close(master);
	return slave;
}

/* In the parent: the master from the child, or -1 when the child failed before sending it. */
int receive_master(int sock)
{
	char byte;
	char ctrl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof ctrl };
	ssize_t n;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

