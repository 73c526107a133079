/* The last steps before execve, shared by run and exec: rlimits, capabilities, ids,
 * no_new_privs, cwd, close-on-exec for every fd above 2, PATH lookup, execve. */
#include "shim.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

static void set_rlimits(struct plan *p)
{
	for (int i = 0; i < p->n_rlimits; i++) {
		struct rlimit rl;
		rl.rlim_cur = p->rlimits[i].soft < 0 ? RLIM_INFINITY : (rlim_t)p->rlimits[i].soft;
		rl.rlim_max = p->rlimits[i].hard < 0 ? RLIM_INFINITY : (rlim_t)p->rlimits[i].hard;
		if (setrlimit(p->rlimits[i].resource, &rl) < 0) {
			char what[32];
			snprintf(what, sizeof what, "resource %d", p->rlimits[i].resource);
			fail("setrlimit", what);
		}
	}
}

static void drop_bounding(uint64_t keep)
{
	for (int cap = 0; cap < 64; cap++) {
		if (keep & ((uint64_t)1 << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break; /* past the kernel's last capability */
			char what[16];
			snprintf(what, sizeof what, "%d", cap);
			fail("capbset-drop", what);
		}
	}
}

static void set_ids(struct plan *p)
{
	if (setgroups((size_t)p->n_groups, p->groups) < 0)
		fail("setgroups", NULL);
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		fail("setgid", NULL);
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		fail("setuid", NULL);
}

static void set_caps(struct plan *p)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(p->cap_effective >> (32 * i));
		data[i].permitted = (uint32_t)(p->cap_permitted >> (32 * i));
		data[i].inheritable = (uint32_t)(p->cap_inheritable >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		fail("capset", NULL);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		fail("ambient-clear", NULL);
	for (int cap = 0; cap < 64; cap++) {
		if (!(p->cap_ambient & ((uint64_t)1 << cap)))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) {
			char what[16];
			snprintf(what, sizeof what, "%d", cap);
			fail("ambient-raise", what);
		}
	}
}

/* Every fd above 2 closes at execve; the status pipe stays usable until then. */
static void cloexec_fds(void)
{
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		fail("cloexec-fds", "/proc/self/fd");
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		if (fd > 2 && fd != dirfd(d))
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	closedir(d);
}

static const char *env_path(char **env)
{
	for (; env && *env; env++)
		if (strncmp(*env, "PATH=", 5) == 0)
			return *env + 5;
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

__attribute__((noreturn)) static void do_execve(struct plan *p)
{
	const char *prog = p->args[0];
	if (strchr(prog, '/')) {
		execve(prog, p->args, p->env);
		fail("execve", prog);
	}
	const char *path = env_path(p->env);
	int saved = ENOENT;
	char full[4096];
	while (*path) {
		const char *end = strchr(path, ':');
		size_t len = end ? (size_t)(end - path) : strlen(path);
		if (len == 0) {
			snprintf(full, sizeof full, "%s", prog);
		} else {
			snprintf(full, sizeof full, "%.*s/%s", (int)len, path, prog);
		}
		execve(full, p->args, p->env);
		if (errno != ENOENT && errno != ENOTDIR)
			saved = errno;
		path += len + (end ? 1 : 0);
		if (!end)
			break;
	}
	errno = saved;
	fail("execve", prog);
}

void exec_process(struct plan *p)
{
	if (!p->args || !p->args[0]) {
		errno = EINVAL;
		fail("execve", "(no args)");
	}
	set_rlimits(p);
	drop_bounding(p->cap_bounding);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		fail("keepcaps", NULL);
	set_ids(p);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		fail("keepcaps", NULL);
	set_caps(p);
	if (p->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail("no-new-privs", NULL);
	if (chdir(p->cwd ? p->cwd : "/") < 0)
		fail("chdir", p->cwd);
	cloexec_fds();
	do_execve(p);
}
