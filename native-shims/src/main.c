/* podrun-shim MODE …: see shim.h and src/runtime/shim.ts. */
#include "shim.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int usage(void)
{
	fprintf(stderr, "usage: podrun-shim run PLAN | exec PLAN | pause [CGROUP_PROCS...] | lo-up NSPATH | spawner\n");
	return 2;
}

int main(int argc, char **argv)
{
	/* fd 3 is the status channel; keep the number taken even when nobody listens. */
	if (fcntl(STATUS_FD, F_GETFD) < 0) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0 && fd != STATUS_FD) {
			dup2(fd, STATUS_FD);
			close(fd);
		}
	}
	fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "run") && argc == 3)
		return mode_run(argv[2]);
	if (!strcmp(argv[1], "exec") && argc == 3)
		return mode_exec(argv[2]);
	if (!strcmp(argv[1], "pause"))
		return mode_pause(argc - 2, argv + 2);
	if (!strcmp(argv[1], "lo-up") && argc == 3)
		return mode_lo_up(argv[2]);
	if (!strcmp(argv[1], "spawner") && argc == 2)
		return mode_spawner(argv[0]);
	return usage();
}
