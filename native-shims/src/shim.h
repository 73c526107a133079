/*
 * podrun-shim: carries out a plan written by TypeScript (src/runtime/shim.ts). No policy here.
 *
 * Plan file: one "key token…" per line; tokens are percent-escaped (bytes outside 0x21..0x7e
 * and '%' are %XX; a lone "%" is the empty string).
 * Status (fd 3, same escaping):  step NAME DETAIL | error STEP ERRNO PATH | started PID STARTTIME
 */
#ifndef PODRUN_SHIM_H
#define PODRUN_SHIM_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <sys/types.h>

#define STATUS_FD 3
#define EXIT_SHIM_FAILED 125

/* sub: a subPath below src (the volume's root), opened without following symlinks (resolve.c);
 * sub_create: make missing directories with sub_mode; label: the volume's name for messages. */
struct bind_mount { char *src, *dst; int ro, rec; char *sub, *label; int sub_create; mode_t sub_mode; };
struct v1_hier { char *dir, *opts; };
struct kv { char *name, *value; };
struct rlim { int resource; long long soft, hard; };
struct join { char *type, *path; };

struct plan {
	/* run */
	char *id, *state_dir, *log;
	char *rootfs_cwd, *rootfs_data, *rootfs_target;
	int rootfs_ro;
	char *ns_net, *ns_ipc, *ns_uts, *ns_pid;
	char **cgroup_procs; int n_cgroup_procs;
	int cgroupfs;
	struct v1_hier *v1; int n_v1;
	char *hostname, *shm;
	int sys_rw;
	struct bind_mount *binds; int n_binds;
	char **masks; int n_masks;
	char **ros; int n_ros;
	struct kv *sysctls; int n_sysctls;
	/* process */
	uid_t uid; gid_t gid;
	gid_t *groups; int n_groups;
	uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
	int nnp;
	struct rlim *rlimits; int n_rlimits;
	char *cwd;
	char **args; int n_args; /* NULL-terminated */
	char **env; int n_env;   /* NULL-terminated */
	/* exec */
	pid_t target_pid; unsigned long long target_start;
	struct join *joins; int n_joins;
	int terminal;
	int run_sock; /* run mode with a terminal: socket to the monitor */
};

/* report.c: status lines and failures */
extern int report_fd;
void report_step(const char *step, const char *detail);
void report_error(const char *step, int err, const char *path);
void report_started(pid_t pid, unsigned long long start);
__attribute__((noreturn)) void fail(const char *step, const char *path);
void write_token(int fd, const char *s);
int write_all(int fd, const void *buf, size_t n);
unsigned long long proc_start_time(pid_t pid);
int write_file(const char *path, const char *value);
void reset_signals(void);
void set_signal(int sig, void (*handler)(int));
pid_t fork_reporting(int report_to);
void *xcalloc(size_t n, size_t size);

/* plan.c */
int plan_read(const char *file, struct plan *p);
char *unescape_token(char *t);

/* process.c: rlimits, capabilities, ids, no_new_privs, cwd, fds, execve */
__attribute__((noreturn)) void exec_process(struct plan *p);

/* pty.c: in a child that joined the container's mount ns, a pty from its devpts; the master
 * goes to the parent over a unix socket (SCM_RIGHTS). Returns the slave. */
int container_pty(int sock, uid_t uid);
int receive_master(int sock);

/* resolve.c: a subPath source opened from its volume's root without following symlinks, and a
 * mount target opened (created if missing) inside the current root; both return O_PATH fds */
int open_subpath(const struct bind_mount *b);
int open_target(const char *path, int dir);

/* container.c: the container init in run mode (after fork) */
__attribute__((noreturn)) void container_init(struct plan *p);

/* modes */
int mode_run(const char *planfile);
int mode_exec(const char *planfile);
int mode_pause(int argc, char **argv);
int mode_lo_up(const char *nspath);
int mode_spawner(const char *argv0);

#endif
