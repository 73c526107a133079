/**
 * The pod sandbox: what every container of a pod shares.
 *
 *   1. run dir, data dir and log dir of the pod
 *   2. the pod cgroup (<parent>/<ns>_<name>), with the pod-level limits
 *   3. a private mount dir holding the pinned net/ipc/uts namespaces (hostname set inside)
 *   4. loopback up in the pinned netns; the pod network (CNI) when configured and not hostNetwork
 *   5. /dev/shm for the pod: a tmpfs (64 MiB)
 *   6. /etc/hosts, /etc/hostname, /etc/resolv.conf files; emptyDir / configMap / secret /
 *      downwardAPI volume contents
 *   7. the pause process (a PID namespace init) for shareProcessNamespace
 *
 * Each step records its resource in state.json BEFORE creating it; a failure (or a later `down`
 * or `gc`) undoes the recorded resources in reverse order (`teardownResources`), each undo
 * tolerating a resource that was never made.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PodrunError, SyscallError, isPodrunError, nodeErrCode } from '../util/errors.js';
import { trace, type EventSink } from '../util/events.js';
import type { Syscalls } from '../linux/syscalls.js';
import { MS_NODEV, MS_NOEXEC, MS_NOSUID } from '../linux/syscalls.js';
import type { Cgroups } from '../linux/cgroups.js';
import { ensurePrivateMountDir, isMountpoint, umountRecursive } from '../linux/mounts.js';
import { pinNamespaces, unpin } from '../linux/namespaces.js';
import { podCgroupValues } from '../spec/resources.js';
import type { PodPlan, ProjectedFile, VolumePlan } from '../spec/plan.js';
import { startPause, isSameProcess } from './shim.js';
import type { NetworkOptions } from './network/index.js';
import {
  containerRunDir,
  etcDir,
  filesDir,
  pinDir,
  podDataDir,
  podLogDir,
  podRunDir,
  shmDir,
  volumeDir,
  type RuntimePaths,
} from './paths.js';
import { recordResource, writeState, type PodState, type Resource } from './state.js';

export const DEFAULT_SHM_BYTES = 64 * 1024 * 1024;

/** What the runtime needs from the machine: one object handed down to every module. */
export interface RuntimeContext {
  paths: RuntimePaths;
  sys: Syscalls;
  cgroups: Cgroups;
  /** First path element of every pod cgroup (default "podrun"; tests use podrun-test-<random>). */
  cgroupParent: string;
  /** CNI options, or false: pods get a loopback-only network namespace. */
  network: NetworkOptions | false;
  events: EventSink;
  /** Size of each pod's /dev/shm tmpfs. */
  shmBytes?: number;
}

/** The context for one pod: the cgroup parent and network it was made with (its state). */
export function podContext(ctx: RuntimeContext, st: PodState): RuntimeContext {
  const cgroupParent = st.cgroup?.parent ?? ctx.cgroupParent;
  let network = ctx.network;
  if (st.network === false) network = false;
  else if (st.network) network = { ...(ctx.network || { runRoot: ctx.paths.runRoot, events: ctx.events }), confDir: st.network.confDir };
  if (cgroupParent === ctx.cgroupParent && network === ctx.network) return ctx;
  return { ...ctx, cgroupParent, network };
}

export function podCgroupRel(ctx: RuntimeContext, key: string): string {
  return `${ctx.cgroupParent}/${key}`;
}
export function containerCgroupRel(ctx: RuntimeContext, key: string, container: string): string {
  return `${ctx.cgroupParent}/${key}/${container}`;
}

/** The paths a container joins: pins and, with shareProcessNamespace, the pause process's pid ns. */
export function sandboxNamespaces(ctx: RuntimeContext, st: PodState): { net?: string; ipc?: string; uts?: string; pid?: string } {
  const dir = pinDir(ctx.paths, st.key);
  const ns: { net?: string; ipc?: string; uts?: string; pid?: string } = { ipc: path.join(dir, 'ipc') };
  if (!st.plan.hostNetwork) {
    ns.net = path.join(dir, 'net');
    ns.uts = path.join(dir, 'uts');
  }
  const pause = st.resources.find((r): r is Extract<Resource, { kind: 'process' }> => r.kind === 'process' && r.role === 'pause');
  if (pause && pause.pid) ns.pid = `/proc/${pause.pid}/ns/pid`;
  return ns;
}

/**
 * Creates the sandbox for `st` (a fresh state with no resources yet). On failure everything
 * created so far is removed and the original error is thrown (a cleanup error is attached as
 * `cause` context in the message).
 */
export async function createSandbox(ctx: RuntimeContext, st: PodState, hostResolvConf?: string): Promise<void> {
  try {
    await createSteps(ctx, st, hostResolvConf);
  } catch (err) {
    try {
      await teardownResources(ctx, st);
    } catch (cleanupErr) {
      throw new PodrunError(isPodrunError(err) ? err.code : 'EINTERNAL', `${(err as Error).message} (and cleaning up failed: ${(cleanupErr as Error).message})`, {
        cause: err,
        hint: 'run "podrun gc" to remove what is left',
      });
    }
    throw err;
  }
}

async function createSteps(ctx: RuntimeContext, st: PodState, hostResolvConf?: string): Promise<void> {
  const { paths, sys, events } = ctx;
  const plan = st.plan;
  const key = st.key;

  // Steps 1-3 and 5 are recorded together, in one write, before the first of them is made:
  // each undo tolerates what was never created, and teardown runs in reverse record order.
  const runDir = podRunDir(paths, key);
  const dataDir = podDataDir(paths, key, st.uid);
  const logDir = podLogDir(paths, st.namespace, st.name, st.uid);
  const rel = podCgroupRel(ctx, key);
  const nsDir = pinDir(paths, key);
  const shm = shmDir(paths, key);
  st.cgroup = { parent: ctx.cgroupParent, pod: key };
  recordResource(
    paths,
    st,
    ...[runDir, dataDir, logDir].map((d): Resource => ({ kind: 'dir', path: d })),
    { kind: 'cgroup', parent: ctx.cgroupParent, pod: key },
    { kind: 'mount', path: nsDir },
    { kind: 'pins', dir: nsDir },
    { kind: 'mount', path: shm },
  );

  // 1. directories
  for (const d of [runDir, dataDir, logDir]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  fs.chmodSync(logDir, 0o755);

  // 2. the pod cgroup
  ctx.cgroups.create(rel);
  const values = podCgroupValues(plan);
  applyCgroupValues(ctx.cgroups, rel, values);

  // 3. pinned namespaces below a private mount of their own
  ensurePrivateMountDir(sys, nsDir, events);
  // loopback is brought up in the new net namespace right there (no shim spawn for it)
  const pins = pinNamespaces(sys, nsDir, { hostname: st.hostname, sink: events, loopbackUp: true });

  // 4. network
  if (!plan.hostNetwork && ctx.network) {
    const net = await import('./network/index.js');
    recordResource(paths, st, { kind: 'network', id: st.uid, netnsPath: pins.net });
    const res = await net.setupPodNetwork(ctx.network, {
      id: st.uid,
      name: st.name,
      namespace: st.namespace,
      netnsPath: pins.net,
      ports: [...plan.initContainers, ...plan.containers].flatMap((c) =>
        c.ports.map((p) => ({ containerPort: p.containerPort, hostPort: p.hostPort || undefined, hostIP: p.hostIP || undefined, protocol: p.protocol })),
      ),
    });
    st.podIP = res.ip;
    writeState(paths, st);
  }

  // 5. /dev/shm
  fs.mkdirSync(shm, { recursive: true, mode: 0o1777 });
  trace(events, 'mount', 'tmpfs', `${shm} size=${ctx.shmBytes ?? DEFAULT_SHM_BYTES}`);
  sys.mount('shm', shm, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, `mode=1777,size=${ctx.shmBytes ?? DEFAULT_SHM_BYTES}`);

  // 6. files and volumes
  await writeEtcFiles(ctx, st, hostResolvConf);
  for (const v of plan.volumes) await prepareVolume(ctx, st, v);

  // 7. the pod's PID namespace init
  if (plan.shareProcessNamespace) {
    const pauseRel = `${rel}/pause`;
    ctx.cgroups.create(pauseRel);
    const rec: Resource = { kind: 'process', role: 'pause', pid: 0, startTime: 0 };
    recordResource(paths, st, rec); // recorded first; its cgroup also catches it if we crash in between
    const p = await startPause({ sink: events, cgroupProcs: ctx.cgroups.procsFiles(pauseRel) });
    Object.assign(rec, p);
    writeState(paths, st);
  }
  fs.mkdirSync(path.join(runDir, 'containers'), { recursive: true, mode: 0o700 });
}

/** Writes spec values to a cgroup for this machine's cgroup version. */
export function applyCgroupValues(cg: Cgroups, rel: string, values: ReturnType<typeof podCgroupValues>): void {
  if (cg.version === 2) cg.apply(rel, Object.entries(values.v2));
  else cg.apply(rel, [...Object.entries(values.v1.cpu), ...Object.entries(values.v1.memory), ...Object.entries(values.v1.pids)].filter(([f]) => cgroupFileUsable(cg, rel, f)));
}

/** v1 memsw files exist only with swap accounting; skip what the kernel does not offer. */
function cgroupFileUsable(cg: Cgroups, rel: string, file: string): boolean {
  if (!file.startsWith('memory.memsw.')) return true;
  return cg.dirs(rel).some((d) => fs.existsSync(path.join(d, file)));
}

// ---------------------------------------------------------------------------------------------
// /etc files
// ---------------------------------------------------------------------------------------------

/** kubelet's managed /etc/hosts for a pod with its own network namespace. */
export function hostsFile(plan: PodPlan, podIP: string | undefined): string {
  const lines = [
    '# Kubernetes-managed hosts file (podrun).',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'fe00::0\tip6-mcastprefix',
    'fe00::1\tip6-allnodes',
    'fe00::2\tip6-allrouters',
  ];
  const fqdn = plan.subdomain ? `${plan.hostname}.${plan.subdomain}.${plan.namespace}.svc.cluster.local\t` : '';
  lines.push(`${podIP ?? '127.0.1.1'}\t${fqdn}${plan.hostname}`);
  if (plan.hostAliases.length) {
    lines.push('', '# Entries added by HostAliases.');
    for (const a of plan.hostAliases) lines.push(`${a.ip}\t${a.hostnames.join('\t')}`);
  }
  return lines.join('\n') + '\n';
}

/** /etc/hosts, /etc/hostname and /etc/resolv.conf of the pod (resolv.conf warnings become events). */
export async function writeEtcFiles(ctx: RuntimeContext, st: PodState, hostResolvConf?: string): Promise<void> {
  const dir = etcDir(ctx.paths, st.key);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const plan = st.plan;
  let hosts: string;
  if (plan.hostNetwork) {
    hosts = readOr('/etc/hosts', hostsFile(plan, undefined));
    if (plan.hostAliases.length) hosts += '\n# Entries added by HostAliases.\n' + plan.hostAliases.map((a) => `${a.ip}\t${a.hostnames.join('\t')}`).join('\n') + '\n';
  } else hosts = hostsFile(plan, st.podIP);
  fs.writeFileSync(path.join(dir, 'hosts'), hosts, { mode: 0o644 });
  fs.writeFileSync(path.join(dir, 'hostname'), `${st.hostname}\n`, { mode: 0o644 });
  // kubelet's --resolv-conf: the host's file (systemd-resolved's upstream one behind a stub)
  const net = await import('./network/index.js');
  const host = hostResolvConf ?? (await net.readHostResolvConf()).text;
  const built = net.buildResolvConf(plan.dnsPolicy, plan.dnsConfig, host, { namespace: plan.namespace, hostNetwork: plan.hostNetwork });
  for (const w of built.warnings) ctx.events({ type: 'warning', message: `Pod "${plan.namespace}/${plan.name}" /etc/resolv.conf: ${w}` });
  const resolv = built.text;
  fs.writeFileSync(path.join(dir, 'resolv.conf'), resolv, { mode: 0o644 });
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

// ---------------------------------------------------------------------------------------------
// Volumes
// ---------------------------------------------------------------------------------------------

/** The host directory (or file) a volume's mounts bind from. */
export function volumeSource(paths: RuntimePaths, st: PodState, v: VolumePlan): string {
  switch (v.kind) {
    case 'emptyDir':
      return volumeDir(paths, st.key, st.uid, v.name);
    case 'hostPath':
      return v.path;
    default:
      return filesDir(paths, st.key, v.name);
  }
}

async function prepareVolume(ctx: RuntimeContext, st: PodState, v: VolumePlan): Promise<void> {
  const { paths, sys, events } = ctx;
  const dir = volumeSource(paths, st, v);
  switch (v.kind) {
    case 'emptyDir': {
      fs.mkdirSync(dir, { recursive: true, mode: 0o777 });
      fs.chmodSync(dir, 0o777);
      if (v.medium === 'Memory') {
        recordResource(paths, st, { kind: 'mount', path: dir });
        const size = v.sizeLimitBytes ? `,size=${v.sizeLimitBytes}` : '';
        trace(events, 'mount', 'tmpfs', `${dir}${size}`);
        sys.mount('tmpfs', dir, 'tmpfs', MS_NOSUID | MS_NODEV, `mode=0777${size}`);
      }
      if (st.plan.securityContext.fsGroup !== undefined) fs.chownSync(dir, 0, st.plan.securityContext.fsGroup);
      return;
    }
    case 'hostPath':
      checkHostPath(v.name, v.path, v.type);
      return;
    case 'configMap':
    case 'secret': {
      // kubelet: a missing object fails the containers that mount it (CreateContainerConfigError,
      // see missingVolumeError), not the sandbox
      if (v.resolved.state === 'missing') return;
      writeProjected(dir, v.resolved.files, st.plan.securityContext.fsGroup);
      return;
    }
    case 'downwardAPI': {
      // resourceFieldRef items need node facts (a limit that is not set = node allocatable)
      let files = v.files;
      if (v.items.some((it) => 'resourceFieldRef' in it)) {
        const { downwardApiFiles, hostNodeFacts } = await import('../spec/image-config.js');
        files = downwardApiFiles(st.plan, v, hostNodeFacts());
      }
      writeProjected(dir, files, st.plan.securityContext.fsGroup);
      return;
    }
  }
}

/**
 * The error a container gets when it mounts a configMap / secret volume whose object is missing
 * and not optional (kubelet reports CreateContainerConfigError and keeps retrying); undefined when
 * every volume it mounts is there.
 */
export function missingVolumeError(plan: PodPlan, c: { name: string; volumeMounts: { name: string }[] }): PodrunError | undefined {
  for (const m of c.volumeMounts) {
    const v = plan.volumes.find((x) => x.name === m.name);
    if (!v || (v.kind !== 'configMap' && v.kind !== 'secret') || v.resolved.state !== 'missing') continue;
    return new PodrunError('ECONFIG', `Cannot mount volume "${v.name}" in container "${c.name}": ${v.resolved.reason}`, {
      hint: `add the ${v.kind === 'configMap' ? 'ConfigMap' : 'Secret'} to the same file, or mark the volume optional`,
    });
  }
  return undefined;
}

/** Writes the files of a configMap / secret / downwardAPI volume with their modes. */
export function writeProjected(dir: string, files: ProjectedFile[], fsGroup?: number): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const f of files) {
    if (path.isAbsolute(f.path) || f.path.split('/').includes('..')) {
      throw new PodrunError('EINVAL_SPEC', `Cannot write volume file "${f.path}": the path must be relative and stay inside the volume`);
    }
    const target = path.join(dir, f.path);
    fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o755 });
    fs.writeFileSync(target, f.data, { mode: f.mode });
    fs.chmodSync(target, f.mode);
    if (fsGroup !== undefined) fs.chownSync(target, 0, fsGroup);
  }
}

/** Kubernetes' hostPath type checks (DirectoryOrCreate and FileOrCreate create what is missing). */
export function checkHostPath(volume: string, p: string, type: string): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(p);
  } catch (err) {
    if (nodeErrCode(err) !== 'ENOENT') throw err;
  }
  const fail = (what: string) => {
    throw new PodrunError('EINVAL_SPEC', `Cannot mount hostPath volume "${volume}": "${p}" ${what}`);
  };
  switch (type) {
    case '':
      if (!st) fail('does not exist');
      return;
    case 'DirectoryOrCreate':
      if (!st) fs.mkdirSync(p, { recursive: true, mode: 0o755 });
      else if (!st.isDirectory()) fail('is not a directory');
      return;
    case 'Directory':
      if (!st?.isDirectory()) fail('is not an existing directory');
      return;
    case 'FileOrCreate':
      if (!st) {
        fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
        fs.writeFileSync(p, '', { mode: 0o644 });
      } else if (!st.isFile()) fail('is not a file');
      return;
    case 'File':
      if (!st?.isFile()) fail('is not an existing file');
      return;
    case 'Socket':
      if (!st?.isSocket()) fail('is not a socket');
      return;
    case 'CharDevice':
      if (!st?.isCharacterDevice()) fail('is not a character device');
      return;
    case 'BlockDevice':
      if (!st?.isBlockDevice()) fail('is not a block device');
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Teardown
// ---------------------------------------------------------------------------------------------

/**
 * Removes every resource recorded in `st`, newest first: all processes in the pod cgroup are
 * killed before anything else (containers hold the volumes), then network, mounts, pins, the
 * cgroup and the directories. Each step tolerates a resource that does not exist. Errors do not
 * stop the walk; the first one is thrown at the end and the failed resources stay recorded.
 */
export async function teardownResources(ctx: RuntimeContext, st: PodState): Promise<void> {
  const { paths, events } = ctx;
  const errors: unknown[] = [];
  if (st.cgroup) {
    const rel = podCgroupRel({ ...ctx, cgroupParent: st.cgroup.parent }, st.cgroup.pod);
    try {
      if (ctx.cgroups.exists(rel)) await ctx.cgroups.killAll(rel, 'SIGKILL');
    } catch (err) {
      errors.push(err);
    }
  }
  killMonitors(ctx, st, errors);
  for (const r of [...st.resources].reverse()) {
    try {
      await undo(ctx, st, r);
      const i = st.resources.indexOf(r);
      if (i >= 0) st.resources.splice(i, 1);
    } catch (err) {
      errors.push(err);
    }
  }
  // the state file lives in the run dir: write it only while the dir is still there
  if (fs.existsSync(podRunDir(paths, st.key))) writeState(paths, st);
  trace(events, 'fs', 'teardown-done', st.key);
  if (errors.length) throw errors[0];
}

/**
 * SIGKILL each container run's native monitor that is still the recorded process (pid + start
 * time, never pid alone): monitors ignore SIGTERM, and one left behind would hold a dead pod's
 * state dir open.
 */
function killMonitors(ctx: RuntimeContext, st: PodState, errors: unknown[]): void {
  for (const rec of Object.values(st.containers ?? {})) {
    const m = rec.monitor;
    if (!m || !m.pid || !m.startTime || !isSameProcess(m.pid, m.startTime)) continue;
    trace(ctx.events, 'process', 'kill', `monitor of ${rec.name} ${m.pid}`);
    try {
      process.kill(m.pid, 'SIGKILL');
    } catch (err) {
      if (nodeErrCode(err) !== 'ESRCH') errors.push(err);
    }
  }
}

async function undo(ctx: RuntimeContext, st: PodState, r: Resource): Promise<void> {
  const { sys, events } = ctx;
  switch (r.kind) {
    case 'process':
      if (r.pid && isSameProcess(r.pid, r.startTime)) {
        trace(events, 'process', 'kill', `${r.role} ${r.pid}`);
        try {
          process.kill(r.pid, 'SIGKILL');
        } catch (err) {
          if (nodeErrCode(err) !== 'ESRCH') throw err;
        }
      }
      return;
    case 'network': {
      if (!ctx.network) {
        // a pod made with networking, torn down by a process configured without: still release it
        const net = await import('./network/index.js');
        await net.teardownPodNetwork({ runRoot: ctx.paths.runRoot, events }, r.id, r.netnsPath);
        return;
      }
      const net = await import('./network/index.js');
      await net.teardownPodNetwork(ctx.network, r.id, r.netnsPath);
      return;
    }
    case 'mount':
      umountRecursive(sys, r.path, events);
      return;
    case 'pins':
      unpin(sys, r.dir, events);
      return;
    case 'cgroup': {
      const rel = `${r.parent}/${r.pod}`;
      if (ctx.cgroups.exists(rel)) {
        await ctx.cgroups.killAll(rel, 'SIGKILL');
        await ctx.cgroups.remove(rel);
      }
      removeEmptyParent(ctx, r.parent);
      return;
    }
    case 'dir':
      removeDir(sys, r.path, events, trashFor(ctx.paths, r.path));
      return;
  }
}

/** The parent cgroup ("podrun") is removed when the last pod left it; busy or missing is fine. */
function removeEmptyParent(ctx: RuntimeContext, parent: string): void {
  for (const d of ctx.cgroups.dirs(parent)) {
    try {
      fs.rmdirSync(d);
    } catch {
      /* other pods live there, or it is gone */
    }
  }
}

/** Removals handed to the threadpool after their directory was moved into a trash dir. */
const pendingRemovals = new Set<Promise<void>>();

/** Resolves once every removal that removeDir() left running in the background has finished. */
export async function settleRemovals(): Promise<void> {
  while (pendingRemovals.size) await Promise.all([...pendingRemovals]);
}

/** Where removeDir moves what it deletes in the background: one dir per root, same filesystem. */
const TRASH: [keyof RuntimePaths, string][] = [
  ['runRoot', 'trash'],
  ['root', 'trash'],
  ['logRoot', '.podrun-trash'],
];

/** <run-root>/trash, <root>/trash, <log-root>/.podrun-trash. */
export function trashDirs(p: RuntimePaths): string[] {
  return TRASH.map(([base, name]) => path.join(p[base], name));
}

/** The trash dir for a directory below the run root, the image root or the log root. */
export function trashFor(p: RuntimePaths, dir: string): string | undefined {
  for (const [base, name] of TRASH) {
    const rel = path.relative(p[base], dir);
    if (rel && !rel.startsWith('..') && !path.isAbsolute(rel) && rel.split(path.sep)[0] !== name) return path.join(p[base], name);
  }
  return undefined;
}

/**
 * rm -rf that first unmounts anything still mounted below (never deletes through a mount).
 * With `trash` (see trashFor), the directory is renamed into it and deleted on the threadpool:
 * deleting a pod's files cost `down` 15-40 ms on this ext4 (mounted with discard); the rename is
 * one metadata change. settleRemovals() waits for those deletions (a process about to exit);
 * `gc` removes what a crash left in the trash dirs.
 */
export function removeDir(sys: Syscalls, dir: string, events?: EventSink, trash?: string): void {
  if (!fs.existsSync(dir)) return;
  umountRecursive(sys, dir, events);
  if (isMountpoint(dir)) throw new SyscallError('umount2', 16, dir);
  if (trash) {
    const dest = path.join(trash, `${path.basename(dir)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}`);
    try {
      fs.mkdirSync(trash, { recursive: true, mode: 0o700 });
      fs.renameSync(dir, dest);
    } catch {
      trash = undefined; // not the same filesystem after all: delete it here
    }
    if (trash) {
      trace(events, 'fs', 'rm -r', `${dir} (moved to ${dest}, deleted in the background)`);
      const p: Promise<void> = fs.promises
        .rm(dest, { recursive: true, force: true })
        .catch(() => {})
        .finally(() => pendingRemovals.delete(p));
      pendingRemovals.add(p);
      return;
    }
  }
  trace(events, 'fs', 'rm -r', dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

