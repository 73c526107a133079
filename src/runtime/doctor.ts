/**
 * `podrun doctor`: what this machine offers podrun, each finding with a fix hint.
 * Pure checks that read /proc and /sys; the CLI prints them.
 */
import fs from 'node:fs';
import { detectCgroupVersion, discoverV1 } from '../linux/cgroups.js';
import { shimPath } from './shim.js';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  /** "warn": podrun works, with a limitation. */
  level?: 'warn';
  detail: string;
  hint?: string;
}

const read = (f: string) => {
  try {
    return fs.readFileSync(f, 'utf8');
  } catch {
    return undefined;
  }
};

export async function runDoctor(opts: { runRoot: string; cniConfDir?: string }): Promise<DoctorCheck[]> {
  const out: DoctorCheck[] = [];
  const isRoot = process.getuid?.() === 0;
  out.push({ name: 'root', ok: isRoot, detail: isRoot ? 'running as root' : `running as uid ${process.getuid?.()}`, hint: isRoot ? undefined : 'run podrun with sudo' });

  const kinds = ['mnt', 'pid', 'net', 'ipc', 'uts', 'cgroup'];
  const missing = kinds.filter((k) => !fs.existsSync(`/proc/self/ns/${k}`));
  out.push({
    name: 'namespaces',
    ok: missing.length === 0,
    detail: missing.length ? `missing: ${missing.join(', ')}` : kinds.join(', '),
    hint: missing.length ? 'use a kernel built with CONFIG_NAMESPACES (and the missing kinds)' : undefined,
  });

  const fsList = read('/proc/filesystems') ?? '';
  const overlay = /\toverlay$/m.test(fsList);
  out.push({ name: 'overlayfs', ok: overlay, detail: overlay ? 'available' : 'not in /proc/filesystems', hint: overlay ? undefined : 'modprobe overlay (kernel module "overlay")' });

  const version = detectCgroupVersion();
  if (version === 2) {
    const ctrls = (read('/sys/fs/cgroup/cgroup.controllers') ?? '').trim().split(/\s+/);
    const need = ['cpu', 'memory', 'pids'].filter((c) => !ctrls.includes(c));
    out.push({
      name: 'cgroups',
      ok: need.length === 0,
      detail: `v2 (unified) with ${ctrls.join(' ')}`,
      hint: need.length ? `enable the ${need.join(', ')} controller(s) (kernel command line or the parent's cgroup.subtree_control)` : undefined,
    });
  } else {
    const h = discoverV1();
    const need = ['cpu', 'cpuacct', 'memory', 'pids', 'cpuset'].filter((c) => !h[c]);
    out.push({
      name: 'cgroups',
      ok: need.length === 0,
      level: 'warn',
      detail: `v1 (legacy/hybrid) with ${Object.keys(h).sort().join(' ')}${need.length ? `; missing ${need.join(', ')}` : ''}`,
      hint: 'works; cgroup v2 is the target: boot with systemd.unified_cgroup_hierarchy=1 (or cgroup_no_v1=all)',
    });
    const memsw = fs.existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes');
    if (!memsw) out.push({ name: 'swap accounting', ok: true, level: 'warn', detail: 'memory.memsw.* missing: memory limits do not cover swap', hint: 'boot with swapaccount=1, or run without swap' });
  }

  try {
    const p = shimPath();
    out.push({ name: 'shim', ok: true, detail: p });
  } catch (err) {
    out.push({ name: 'shim', ok: false, detail: (err as Error).message, hint: 'npm install (or make -C native-shims; needs gcc, make)' });
  }

  try {
    const net = await import('./network/index.js');
    const r = await net.doctorCheck({ runRoot: opts.runRoot, ...(opts.cniConfDir ? { confDir: opts.cniConfDir } : {}) });
    if (r.ok) out.push({ name: 'CNI', ok: true, detail: 'plugins and iptables present' });
    for (const p of r.problems) out.push({ name: 'CNI', ok: false, detail: p.message, hint: p.hint });
  } catch (err) {
    out.push({ name: 'CNI', ok: false, detail: (err as Error).message, hint: 'apt-get install containernetworking-plugins iptables' });
  }
  return out;
}
