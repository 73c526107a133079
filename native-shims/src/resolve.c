/* Path resolution that a hostile container cannot redirect.
 *
 * subPath sources (kubelet's doSafeOpen, CVE-2017-1002101): TypeScript checked the subPath and
 * resolved the symlinks that stay inside the volume; a container sharing the volume may still
 * swap a component for a symlink before we mount. So the source is opened from the volume's
 * root one component at a time with O_PATH|O_NOFOLLOW: a symlink is refused (ELOOP), a
 * non-directory in the middle too (ENOTDIR), a missing directory is created with mkdirat in the
 * directory already opened. The bind then clones what the fd holds (open_tree AT_EMPTY_PATH),
 * never a path.
 *
 * Mount targets (runc's CVE-2021-30465 class): after pivot_root a target is resolved with
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from the new root: an absolute symlink in the
 * image starts again at the container's root, ".." stops there, and /proc magic links
 * (/proc/PID/root, /proc/self/fd/N) are refused. Missing targets are created the same way,
 * parent first; a dangling symlink is followed inside the root and its target created.
 * Kernels without openat2 (< 5.6) fall back to open(2) after pivot_root: absolute symlinks stay
 * inside the new root there too, only the magic-link refusal is lost.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_LINKS 40

/* "volume NAME subPath SUB at COMPONENT": what the user wrote, for the error line. */
static void subpath_fail(const char *step, const char *label, const char *sub, const char *comp)
{
	char what[3 * 1024];
	snprintf(what, sizeof what, "volume %s subPath %s at %s", label ? label : "?", sub, comp);
	fail(step, what);
}

/* Open (or create) one component below dirfd without following a symlink. */
static int open_component(int dirfd, const char *comp, int create, mode_t mode, const struct bind_mount *b)
{
	int fd = openat(dirfd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		mode_t old = umask(0);
		int r = mkdirat(dirfd, comp, mode);
		umask(old);
		if (r < 0 && errno != EEXIST)
			subpath_fail("subpath-mkdir", b->label, b->sub, comp);
		if (r == 0)
			report_step("subpath-mkdir", comp);
		fd = openat(dirfd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		subpath_fail("subpath-open", b->label, b->sub, comp);
	return fd;
}

int open_subpath(const struct bind_mount *b)
{
	int fd = open(b->src, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fail("subpath-open-volume", b->src);
	char buf[4096];
	if (snprintf(buf, sizeof buf, "%s", b->sub) >= (int)sizeof buf) {
		errno = ENAMETOOLONG;
		subpath_fail("subpath-open", b->label, b->sub, "");
	}
	char *save = NULL;
	char *comp = strtok_r(buf, "/", &save);
	while (comp) {
		char *next = strtok_r(NULL, "/", &save);
		if (!strcmp(comp, ".") || !strcmp(comp, "..")) {
			errno = EINVAL; /* TypeScript never sends these */
			subpath_fail("subpath-open", b->label, b->sub, comp);
		}
		int cfd = open_component(fd, comp, b->sub_create, b->sub_mode, b);
		close(fd);
		fd = cfd;
		struct stat st;
		if (fstat(fd, &st) < 0)
			subpath_fail("subpath-stat", b->label, b->sub, comp);
		if (S_ISLNK(st.st_mode)) {
			errno = ELOOP; /* swapped for a symlink after TypeScript looked */
			subpath_fail("subpath-symlink", b->label, b->sub, comp);
		}
		if (next && !S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			subpath_fail("subpath-open", b->label, b->sub, comp);
		}
		comp = next;
	}
	report_step("subpath-open", b->sub);
	return fd;
}

/* openat2 from the container's root, or -1 with errno. */
static int in_root(const char *path)
{
	static int have_openat2 = 1;
	if (have_openat2) {
		struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
		int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
		if (fd >= 0 || errno != ENOSYS)
			return fd;
		have_openat2 = 0;
	}
	return open(path, O_PATH | O_CLOEXEC);
}

static int open_target_depth(const char *path, int dir, int depth);

/* Make the missing last component of `path` (a directory or an empty file) in its resolved
 * parent; a dangling symlink there is followed by resolving its target instead. */
static void create_target(const char *path, int dir, int depth)
{
	char parent[4096];
	snprintf(parent, sizeof parent, "%s", path);
	char *slash = strrchr(parent, '/');
	char name[4096];
	snprintf(name, sizeof name, "%s", slash ? slash + 1 : parent);
	if (slash == parent)
		snprintf(parent, sizeof parent, "/");
	else if (slash)
		*slash = 0;
	else
		snprintf(parent, sizeof parent, "."); /* TypeScript sends absolute paths */
	int pfd = open_target_depth(parent, 1, depth);
	int r;
	if (dir) {
		r = mkdirat(pfd, name, 0755);
	} else {
		r = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (r >= 0)
			close(r);
	}
	if (r < 0 && errno != EEXIST)
		fail("create-bind-target", path);
	if (r < 0) {
		char link[4096];
		ssize_t n = readlinkat(pfd, name, link, sizeof link - 1);
		if (n >= 0) {
			link[n] = 0;
			char next[8192];
			if (link[0] == '/')
				snprintf(next, sizeof next, "%s", link);
			else
				snprintf(next, sizeof next, "%s/%s", strcmp(parent, "/") ? parent : "", link);
			close(pfd);
			int fd = open_target_depth(next, dir, depth + 1);
			close(fd);
			return;
		}
		/* not a symlink: it appeared meanwhile, the caller opens it */
	}
	close(pfd);
}

static int open_target_depth(const char *path, int dir, int depth)
{
	if (depth > MAX_LINKS) {
		errno = ELOOP;
		fail("resolve-bind-target", path);
	}
	int fd = in_root(path);
	if (fd < 0 && errno == ENOENT) {
		create_target(path, dir, depth);
		fd = in_root(path);
	}
	if (fd < 0)
		fail("resolve-bind-target", path);
	return fd;
}

int open_target(const char *path, int dir)
{
	/* "//" and a trailing "/" would leave an empty name to create */
	char clean[4096];
	size_t n = 0;
	for (const char *s = path; *s && n + 1 < sizeof clean; s++)
		if (!(*s == '/' && n > 0 && clean[n - 1] == '/'))
			clean[n++] = *s;
	clean[n] = 0;
	for (; n > 1 && clean[n - 1] == '/'; n--)
		clean[n - 1] = 0;
	return open_target_depth(clean, dir, 0);
}
