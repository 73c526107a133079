/* The container init in run mode, after fork: join the pod's namespaces and the cgroup, new
 * mount and cgroup namespaces, the overlay rootfs, pivot_root, the standard mounts, then
 * exec_process(). One call, one check, one message. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define NOSUID_NODEV_NOEXEC (MS_NOSUID | MS_NODEV | MS_NOEXEC)

static void join_ns(const char *path, int type, const char *step)
{
	if (!path)
		return;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail(step, path);
	if (setns(fd, type) < 0)
		fail(step, path);
	close(fd);
	report_step(step, path);
}

static void join_cgroups(struct plan *p)
{
	for (int i = 0; i < p->n_cgroup_procs; i++) {
		/* "0" = the writing process; our own pid is 1 in the new PID namespace. */
		if (write_file(p->cgroup_procs[i], "0") < 0)
			fail("cgroup-join", p->cgroup_procs[i]);
	}
	if (p->n_cgroup_procs)
		report_step("cgroup-join", p->cgroup_procs[0]);
}

static void mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *s = buf + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			fail("mkdir", buf);
		*s = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		fail("mkdir", buf);
}

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data, const char *step)
{
	if (mount(src, dst, type, flags, data) < 0)
		fail(step, dst);
}

static void mount_rootfs(struct plan *p)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		fail("make-rslave", "/");
	report_step("make-rslave", "/");
	/* With many layers the options use paths relative to rootfs.cwd (one page limit). */
	if (p->rootfs_cwd && chdir(p->rootfs_cwd) < 0)
		fail("chdir", p->rootfs_cwd);
	do_mount("overlay", p->rootfs_target, "overlay", 0, p->rootfs_data, "mount-overlay");
	report_step("mount-overlay", p->rootfs_target);
	if (chdir("/") < 0)
		fail("chdir", "/");
}

/* Bind sources are cloned (open_tree, a detached copy of the mount) before pivot_root and
 * attached with move_mount afterwards onto a target resolved inside the new root (resolve.c:
 * a symlink in the image cannot point outside, nor through /proc magic links). (A plain O_PATH fd would not do: its mount is detached with
 * the old root, and binding from a detached mount fails with EINVAL.) A subPath source is
 * cloned from the fd that open_subpath() walked to, never by path. */
static int clone_tree(int dirfd, const char *path, int recursive, const char *what)
{
	int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0) | (*path ? 0 : AT_EMPTY_PATH);
	int fd = (int)syscall(SYS_open_tree, dirfd, path, flags);
	if (fd < 0)
		fail("open_tree", what);
	return fd;
}

static int open_source(const char *path, int recursive)
{
	return clone_tree(AT_FDCWD, path, recursive, path);
}

static int open_bind_source(const struct bind_mount *b)
{
	if (!b->sub)
		return open_source(b->src, b->rec);
	int fd = open_subpath(b);
	int tree = clone_tree(fd, "", b->rec, b->src);
	close(fd);
	return tree;
}

static void attach(int tree_fd, const char *dst, const char *step)
{
	if (syscall(SYS_move_mount, tree_fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		fail(step, dst);
	close(tree_fd);
}

/* Attach onto a target already resolved inside the root (an O_PATH fd): nothing re-walks the path. */
static void attach_at(int tree_fd, int target_fd, const char *dst)
{
	if (syscall(SYS_move_mount, tree_fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		fail("bind", dst);
	close(tree_fd);
}

static void pivot(const char *root)
{
	if (chdir(root) < 0)
		fail("chdir", root);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		fail("pivot_root", root);
	/* The old root is now stacked on ".": detach it (it is rslave, nothing reaches the host). */
	if (umount2(".", MNT_DETACH) < 0)
		fail("umount-old-root", root);
	if (chdir("/") < 0)
		fail("chdir", "/");
	report_step("pivot_root", root);
}

static void mknod_dev(const char *path, unsigned maj, unsigned min)
{
	if (mknod(path, S_IFCHR | 0666, makedev(maj, min)) < 0)
		fail("mknod", path);
	if (chmod(path, 0666) < 0) /* umask */
		fail("chmod", path);
}

static void do_symlink(const char *target, const char *path)
{
	if (symlink(target, path) < 0 && errno != EEXIST)
		fail("symlink", path);
}

static void mount_dev(struct plan *p, int shm_fd)
{
	mkdir_p("/dev", 0755);
	do_mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k", "mount-dev");
	mknod_dev("/dev/null", 1, 3);
	mknod_dev("/dev/zero", 1, 5);
	mknod_dev("/dev/full", 1, 7);
	mknod_dev("/dev/random", 1, 8);
	mknod_dev("/dev/urandom", 1, 9);
	mknod_dev("/dev/tty", 5, 0);
	do_symlink("pts/ptmx", "/dev/ptmx");
	do_symlink("/proc/self/fd", "/dev/fd");
	do_symlink("/proc/self/fd/0", "/dev/stdin");
	do_symlink("/proc/self/fd/1", "/dev/stdout");
	do_symlink("/proc/self/fd/2", "/dev/stderr");
	do_symlink("/proc/kcore", "/dev/core");
	mkdir_p("/dev/pts", 0755);
	do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5", "mount-devpts");
	mkdir_p("/dev/shm", 01777);
	if (shm_fd >= 0) {
		attach(shm_fd, "/dev/shm", "mount-shm");
	} else {
		do_mount("shm", "/dev/shm", "tmpfs", NOSUID_NODEV_NOEXEC, "mode=1777,size=65536k", "mount-shm");
	}
	mkdir_p("/dev/mqueue", 0755);
	do_mount("mqueue", "/dev/mqueue", "mqueue", NOSUID_NODEV_NOEXEC, NULL, "mount-mqueue");
	report_step("mount-dev", "/dev");
	(void)p;
}

static void mount_cgroupfs(struct plan *p)
{
	unsigned long ro = MS_RDONLY;
	if (p->cgroupfs == 2) {
		do_mount("cgroup2", "/sys/fs/cgroup", "cgroup2", NOSUID_NODEV_NOEXEC | ro, NULL, "mount-cgroup2");
		report_step("mount-cgroup2", "/sys/fs/cgroup");
		return;
	}
	if (p->cgroupfs != 1)
		return;
	do_mount("cgroup", "/sys/fs/cgroup", "tmpfs", NOSUID_NODEV_NOEXEC, "mode=755", "mount-cgroup-tmpfs");
	for (int i = 0; i < p->n_v1; i++) {
		char path[512];
		snprintf(path, sizeof path, "/sys/fs/cgroup/%s", p->v1[i].dir);
		mkdir_p(path, 0755);
		do_mount("cgroup", path, "cgroup", NOSUID_NODEV_NOEXEC | ro, p->v1[i].opts, "mount-cgroup-v1");
	}
	do_mount(NULL, "/sys/fs/cgroup", NULL, MS_REMOUNT | MS_RDONLY | NOSUID_NODEV_NOEXEC, "mode=755", "remount-cgroup-tmpfs-ro");
	report_step("mount-cgroup-v1", "/sys/fs/cgroup");
}

static void mount_proc_sys(struct plan *p)
{
	mkdir_p("/proc", 0555);
	do_mount("proc", "/proc", "proc", NOSUID_NODEV_NOEXEC, NULL, "mount-proc");
	report_step("mount-proc", "/proc");
	mkdir_p("/sys", 0555);
	do_mount("sysfs", "/sys", "sysfs", NOSUID_NODEV_NOEXEC | (p->sys_rw ? 0 : MS_RDONLY), NULL, "mount-sys");
	report_step("mount-sys", "/sys");
	mount_cgroupfs(p);
}

/* The target of a bind, resolved (and made when missing: a directory for a directory source,
 * else an empty file) inside the container's root; see resolve.c. */
static int bind_target(const char *dst, int src_fd)
{
	struct stat st;
	if (fstat(src_fd, &st) < 0)
		fail("stat-bind-source", dst);
	return open_target(dst, S_ISDIR(st.st_mode));
}

/* Read-only without mount_setattr (kernels before 5.12): remount the top mount, reached through
 * a fresh in-root resolution of the target. */
static void remount_ro(const char *dst)
{
	int fd = open_target(dst, 1);
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	do_mount(NULL, proc, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL, "bind-remount-ro");
	close(fd);
}

static void bind_mounts(struct plan *p, int *fds)
{
	for (int i = 0; i < p->n_binds; i++) {
		struct bind_mount *b = &p->binds[i];
		int target = bind_target(b->dst, fds[i]);
		/* read-only for the whole cloned tree (submounts too) before it becomes visible;
		 * kernels before 5.12 lack mount_setattr: remount the top mount instead */
		int ro_done = 0;
		if (b->ro) {
			struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
			if (syscall(SYS_mount_setattr, fds[i], "", AT_EMPTY_PATH | (b->rec ? AT_RECURSIVE : 0), &attr, sizeof attr) == 0)
				ro_done = 1;
			else if (errno != ENOSYS)
				fail("mount_setattr-ro", b->dst);
		}
		attach_at(fds[i], target, b->dst);
		close(target);
		if (b->ro && !ro_done)
			remount_ro(b->dst);
		report_step("bind", b->dst);
	}
}

static void write_sysctls(struct plan *p)
{
	for (int i = 0; i < p->n_sysctls; i++) {
		char path[512];
		int n = snprintf(path, sizeof path, "/proc/sys/%s", p->sysctls[i].name);
		for (int j = 10; j < n; j++)
			if (path[j] == '.')
				path[j] = '/';
		if (write_file(path, p->sysctls[i].value) < 0)
			fail("sysctl", path);
		report_step("sysctl", p->sysctls[i].name);
	}
}

static void mask_paths(struct plan *p)
{
	for (int i = 0; i < p->n_masks; i++) {
		struct stat st;
		const char *m = p->masks[i];
		if (stat(m, &st) < 0) {
			if (errno == ENOENT)
				continue;
			fail("mask", m);
		}
		if (S_ISDIR(st.st_mode))
			do_mount("tmpfs", m, "tmpfs", MS_RDONLY, NULL, "mask");
		else
			do_mount("/dev/null", m, NULL, MS_BIND, NULL, "mask");
	}
	if (p->n_masks)
		report_step("mask-paths", NULL);
}

static void readonly_paths(struct plan *p)
{
	for (int i = 0; i < p->n_ros; i++) {
		const char *r = p->ros[i];
		if (mount(r, r, NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			fail("readonly-bind", r);
		}
		do_mount(NULL, r, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "readonly-remount");
	}
	if (p->n_ros)
		report_step("readonly-paths", NULL);
}

void container_init(struct plan *p)
{
	join_cgroups(p);
	join_ns(p->ns_net, CLONE_NEWNET, "setns-net");
	join_ns(p->ns_ipc, CLONE_NEWIPC, "setns-ipc");
	join_ns(p->ns_uts, CLONE_NEWUTS, "setns-uts");
	if (unshare(CLONE_NEWNS | CLONE_NEWCGROUP) < 0)
		fail("unshare", "mnt,cgroup");
	report_step("unshare", "mnt,cgroup");

	mount_rootfs(p);
	int shm_fd = p->shm ? open_source(p->shm, 0) : -1;
	int *fds = xcalloc((size_t)p->n_binds + 1, sizeof(int));
	for (int i = 0; i < p->n_binds; i++)
		fds[i] = open_bind_source(&p->binds[i]);
	pivot(p->rootfs_target);

	mount_proc_sys(p);
	mount_dev(p, shm_fd);
	int tty = p->terminal ? container_pty(p->run_sock, p->uid) : -1;
	if (tty >= 0)
		report_step("terminal", "/dev/pts/0");
	bind_mounts(p, fds);
	write_sysctls(p);
	mask_paths(p);
	readonly_paths(p);
	if (p->hostname) {
		if (sethostname(p->hostname, strlen(p->hostname)) < 0)
			fail("sethostname", p->hostname);
		report_step("sethostname", p->hostname);
	}
	if (p->rootfs_ro) {
		do_mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL, "remount-rootfs-ro");
		report_step("remount-rootfs-ro", "/");
	}
	if (tty >= 0) {
		/* the terminal is stdin, stdout and stderr, and the controlling tty of a new session */
		if (setsid() < 0 || ioctl(tty, TIOCSCTTY, 0) < 0)
			fail("controlling-tty", NULL);
		if (dup2(tty, 0) < 0 || dup2(tty, 1) < 0 || dup2(tty, 2) < 0)
			fail("dup2", NULL);
	} else {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (null < 0 || dup2(null, 0) < 0)
			fail("stdin", "/dev/null");
		close(null);
	}
	report_step("exec", p->args[0]);
	exec_process(p);
}
