/* Plan file reader: lines of percent-escaped tokens (see shim.h). */
#include "shim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode in place. */
char *unescape_token(char *t)
{
	if (t[0] == '%' && t[1] == 0) {
		t[0] = 0;
		return t;
	}
	char *o = t;
	for (char *s = t; *s; s++) {
		int h, l;
		if (*s == '%' && (h = hexval(s[1])) >= 0 && (l = hexval(s[2])) >= 0) {
			*o++ = (char)(h * 16 + l);
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
	return t;
}

static void *grow(void *arr, int n, size_t size)
{
	void *p = realloc(arr, (size_t)(n + 2) * size);
	if (!p) {
		perror("podrun-shim: realloc");
		exit(EXIT_SHIM_FAILED);
	}
	memset((char *)p + (size_t)n * size, 0, 2 * size);
	return p;
}

static uint64_t capmask(char **tok, int n)
{
	uint64_t m = 0;
	for (int i = 0; i < n; i++) {
		long c = strtol(tok[i], NULL, 10);
		if (c >= 0 && c < 64)
			m |= (uint64_t)1 << c;
	}
	return m;
}

#define MAXTOK 4096

static int apply(struct plan *p, char **t, int n)
{
	const char *k = t[0];
	char **a = t + 1;
	int na = n - 1;
#define IS(s) (strcmp(k, s) == 0)
#define NEED(x) do { if (na < (x)) return -1; } while (0)
	if (IS("version")) return 0;
	if (IS("id")) { NEED(1); p->id = a[0]; return 0; }
	if (IS("state-dir")) { NEED(1); p->state_dir = a[0]; return 0; }
	if (IS("log")) { NEED(1); p->log = a[0]; return 0; }
	if (IS("rootfs.cwd")) { NEED(1); p->rootfs_cwd = a[0]; return 0; }
	if (IS("rootfs.data")) { NEED(1); p->rootfs_data = a[0]; return 0; }
	if (IS("rootfs.target")) { NEED(1); p->rootfs_target = a[0]; return 0; }
	if (IS("rootfs.readonly")) { p->rootfs_ro = 1; return 0; }
	if (IS("ns.net")) { NEED(1); p->ns_net = a[0]; return 0; }
	if (IS("ns.ipc")) { NEED(1); p->ns_ipc = a[0]; return 0; }
	if (IS("ns.uts")) { NEED(1); p->ns_uts = a[0]; return 0; }
	if (IS("ns.pid")) { NEED(1); p->ns_pid = a[0]; return 0; }
	if (IS("cgroup.procs")) {
		NEED(1);
		p->cgroup_procs = grow(p->cgroup_procs, p->n_cgroup_procs, sizeof(char *));
		p->cgroup_procs[p->n_cgroup_procs++] = a[0];
		return 0;
	}
	if (IS("cgroupfs")) { NEED(1); p->cgroupfs = atoi(a[0]); return 0; }
	if (IS("cgroup.v1")) {
		NEED(2);
		p->v1 = grow(p->v1, p->n_v1, sizeof *p->v1);
		p->v1[p->n_v1].dir = a[0];
		p->v1[p->n_v1++].opts = a[1];
		return 0;
	}
	if (IS("hostname")) { NEED(1); p->hostname = a[0]; return 0; }
	if (IS("shm")) { NEED(1); p->shm = a[0]; return 0; }
	if (IS("sys.rw")) { p->sys_rw = 1; return 0; }
	if (IS("bind")) {
		NEED(4);
		p->binds = grow(p->binds, p->n_binds, sizeof *p->binds);
		struct bind_mount *b = &p->binds[p->n_binds++];
		b->src = a[0];
		b->dst = a[1];
		b->ro = strcmp(a[2], "ro") == 0;
		b->rec = strcmp(a[3], "rec") == 0;
		if (na >= 7) { /* SUBPATH MODE|- VOLUME */
			b->sub = a[4];
			b->sub_create = strcmp(a[5], "-") != 0;
			b->sub_mode = b->sub_create ? (mode_t)strtoul(a[5], NULL, 8) : 0;
			b->label = a[6];
		}
		return 0;
	}
	if (IS("mask")) {
		NEED(1);
		p->masks = grow(p->masks, p->n_masks, sizeof(char *));
		p->masks[p->n_masks++] = a[0];
		return 0;
	}
	if (IS("readonly")) {
		NEED(1);
		p->ros = grow(p->ros, p->n_ros, sizeof(char *));
		p->ros[p->n_ros++] = a[0];
		return 0;
	}
	if (IS("sysctl")) {
		NEED(2);
		p->sysctls = grow(p->sysctls, p->n_sysctls, sizeof *p->sysctls);
		p->sysctls[p->n_sysctls].name = a[0];
		p->sysctls[p->n_sysctls++].value = a[1];
		return 0;
	}
	if (IS("uid")) { NEED(1); p->uid = (uid_t)strtoul(a[0], NULL, 10); return 0; }
	if (IS("gid")) { NEED(1); p->gid = (gid_t)strtoul(a[0], NULL, 10); return 0; }
	if (IS("groups")) {
		p->groups = xcalloc((size_t)na + 1, sizeof(gid_t));
		for (int i = 0; i < na; i++)
			p->groups[i] = (gid_t)strtoul(a[i], NULL, 10);
		p->n_groups = na;
		return 0;
	}
	if (IS("cap.bounding")) { p->cap_bounding = capmask(a, na); return 0; }
	if (IS("cap.effective")) { p->cap_effective = capmask(a, na); return 0; }
	if (IS("cap.permitted")) { p->cap_permitted = capmask(a, na); return 0; }
	if (IS("cap.inheritable")) { p->cap_inheritable = capmask(a, na); return 0; }
	if (IS("cap.ambient")) { p->cap_ambient = capmask(a, na); return 0; }
	if (IS("nnp")) { p->nnp = 1; return 0; }
	if (IS("rlimit")) {
		NEED(3);
		p->rlimits = grow(p->rlimits, p->n_rlimits, sizeof *p->rlimits);
		p->rlimits[p->n_rlimits].resource = atoi(a[0]);
		p->rlimits[p->n_rlimits].soft = strtoll(a[1], NULL, 10);
		p->rlimits[p->n_rlimits++].hard = strtoll(a[2], NULL, 10);
		return 0;
	}
	if (IS("cwd")) { NEED(1); p->cwd = a[0]; return 0; }
	if (IS("arg")) {
		NEED(1);
		p->args = grow(p->args, p->n_args, sizeof(char *));
		p->args[p->n_args++] = a[0];
		return 0;
	}
	if (IS("env")) {
		NEED(1);
		p->env = grow(p->env, p->n_env, sizeof(char *));
		p->env[p->n_env++] = a[0];
		return 0;
	}
	if (IS("target")) {
		NEED(2);
		p->target_pid = (pid_t)atoi(a[0]);
		p->target_start = strtoull(a[1], NULL, 10);
		return 0;
	}
	if (IS("join")) {
		NEED(2);
		p->joins = grow(p->joins, p->n_joins, sizeof *p->joins);
		p->joins[p->n_joins].type = a[0];
		p->joins[p->n_joins++].path = a[1];
		return 0;
	}
	if (IS("terminal")) { p->terminal = 1; return 0; }
	errno = EINVAL;
	return -1;
#undef IS
#undef NEED
}

/* Reads the whole file; strings in *p point into one buffer that is never freed. */
int plan_read(const char *file, struct plan *p)
{
	memset(p, 0, sizeof *p);
	p->args = grow(NULL, 0, sizeof(char *));
	p->env = grow(NULL, 0, sizeof(char *));
	FILE *f = fopen(file, "re");
	if (!f)
		return -1;
	size_t cap = 0, len = 0;
	char *buf = NULL, chunk[8192];
	size_t r;
	while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (len + r + 1 > cap) {
			cap = (len + r + 1) * 2;
			buf = realloc(buf, cap);
			if (!buf) {
				fclose(f);
				errno = ENOMEM;
				return -1;
			}
		}
		memcpy(buf + len, chunk, r);
		len += r;
	}
	fclose(f);
	if (!buf)
		return errno = EINVAL, -1;
	buf[len] = 0;
	static char *tok[MAXTOK];
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (!*line)
			continue;
		int n = 0;
		for (char *s = strtok(line, " "); s && n < MAXTOK; s = strtok(NULL, " "))
			tok[n++] = unescape_token(s);
		errno = 0;
		if (n > 0 && apply(p, tok, n) < 0) {
			if (!errno)
				errno = EINVAL;
			fprintf(stderr, "podrun-shim: bad plan line \"%s\"\n", tok[0]);
			return -1;
		}
	}
	return 0;
}
