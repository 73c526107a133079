/**
 * The TypeScript side of native-shims/podrun-shim.
 *
 * TypeScript decides, the shim carries out: a `ShimPlan` holds every path, id, flag and value,
 * fully resolved (capability names become numbers here, overlay options are built here). It is
 * written as a small line file, one `key value…` per line, each token percent-escaped:
 *   bytes outside 0x21..0x7e and "%" itself become %XX; the empty string is the token "%".
 * The shim answers on fd 3 with lines of the same escaping:
 *   step NAME DETAIL            a kernel step done (→ trace event, area 'shim')
 *   error STEP ERRNO PATH       a step failed (→ PodrunError ESHIM)
 *   started PID STARTTIME       the container process exec'd (run mode)
 *
 * Processes of `podrun-shim run` (one per container run):
 *   monitor  (forked by this process's `podrun-shim spawner`, see spawner.ts: own session; ignores
 *            SIGTERM/INT/HUP/QUIT/PIPE/USR1/USR2, so only SIGKILL ends it early; stays in the
 *            caller's cgroup and the host mount namespace)
 *     │ unshare(CLONE_NEWPID) — or setns into the pod's PID namespace (shareProcessNamespace)
 *     └ fork → container init: writes "0" into each cgroup.procs of the plan (moves ITSELF into
 *              the container cgroup), setns net/ipc/uts, unshare(mnt|cgroup), rslave /, mounts
 *              the overlay inside its own mount namespace, pivot_root, /proc /dev /dev/pts
 *              /dev/shm /dev/mqueue /sys /sys/fs/cgroup, binds, sysctls, masks, read-only paths,
 *              hostname, read-only root, rlimits, capabilities, ids, no_new_privs, cwd, execve.
 * Files in STATE (plan.stateDir): plan, shim.stderr (monitor diagnostics), started
 * ("MONITORPID PID STARTTIME\n", written atomically once the container exec'd: what a new
 * supervisor re-adopts from), exit (JSON, see readExitStatus, written atomically by the monitor
 * when the container init ends; the monitor then exits). Signals to stop the container go to PID
 * (check isSameProcess first). As pid 1 of its PID namespace, the container init only receives
 * signals it has a handler for, plus SIGKILL.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PodrunError, errnoName, nodeErrCode, strerror } from '../util/errors.js';
import { trace, type EventSink } from '../util/events.js';
import type { CgroupMountPlan } from '../linux/cgroups.js';
import { processStartTime } from '../linux/proc.js';
import { monitorSpawner } from './spawner.js';
import { DEFAULT_CAPABILITIES as CONTAINERD_DEFAULT_CAPABILITIES } from '../spec/capabilities.js';

// ---------------------------------------------------------------------------------------------
// Plan types
// ---------------------------------------------------------------------------------------------

/** Capability names WITH the "CAP_" prefix (as src/spec's CapabilitySets). */
export interface ShimCapabilities {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable: string[];
  ambient: string[];
}

export interface ShimRlimit {
  /** "RLIMIT_NOFILE" or "NOFILE". */
  type: string;
  /** -1 = unlimited. */
  soft: number;
  hard: number;
}

/** Structurally compatible with src/spec's ProcessSpec. */
export interface ShimProcess {
  /** args[0] is looked up in the PATH of `env` inside the container when it has no "/". */
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  noNewPrivileges: boolean;
  capabilities: ShimCapabilities;
  /** Never above the caller's hard limits (HOST-FACTS: EPERM without CAP_SYS_RESOURCE). */
  rlimits?: ShimRlimit[];
  /** run mode (tty: true): stdin/stdout/stderr are a pty of the container's devpts; its output
   * is logged as stdout (CRI log, "\r\n" → "\n"). exec uses ExecPlan.terminal instead. */
  terminal?: boolean;
}

export interface ShimBindMount {
  /** Host path; with `subPath`, the volume's root directory (opened by path: it is trusted). */
  source: string;
  /** Absolute path inside the container, resolved by the shim inside the container's root
   * (openat2 RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS; created when missing). */
  target: string;
  readOnly: boolean;
  /** MS_REC, default true. */
  recursive?: boolean;
  /** A volumeMount's subPath, checked by TypeScript (relative, no ".."; symlinks that stay in
   * the volume already resolved): the shim opens it from `source` one component at a time with
   * O_NOFOLLOW and binds the opened fd, so a component swapped for a symlink after the check
   * fails the start (step "subpath-symlink", ELOOP) instead of mounting what it points to. */
  subPath?: ShimSubPath;
}

export interface ShimSubPath {
  /** Relative to the volume root, "/"-separated, no "." or ".." components, never empty. */
  path: string;
  /** Missing directories are created with this mode (kubelet: the volume root's mode); null: fail instead. */
  createMode: number | null;
  /** The volume's name, for the error a user reads. */
  volume: string;
}

export interface ShimRootfs {
  /** Layer directories, TOP-most first (overlay's lowerdir order). */
  lowerDirs: string[];
  upperDir: string;
  workDir: string;
  /** An existing empty directory where the overlay is mounted INSIDE the container's mount
   * namespace only (nothing appears on the host, nothing leaks if everything crashes). */
  mountPoint: string;
  readOnly: boolean;
}

export interface ShimPlan {
  /** For messages and traces. */
  containerId: string;
  /** Existing directory: plan, exit file ("exit"), monitor's stderr ("shim.stderr"), "started". */
  stateDir: string;
  /** CRI log file (appended). */
  logPath: string;
  rootfs: ShimRootfs;
  /** Namespace files to join (the pod's pins). `pid` given = shareProcessNamespace (the pod's
   * pause process's /proc/PID/ns/pid); absent = a new PID namespace with the container as pid 1. */
  namespaces: { net?: string; ipc?: string; uts?: string; pid?: string };
  /** cgroup.procs files the container init writes itself into before unsharing its cgroup ns. */
  cgroupProcs: string[];
  /** What to mount at /sys/fs/cgroup (null: nothing). */
  cgroupMount: CgroupMountPlan | null;
  /** Set only when the container must rename the (shared, already named) UTS namespace. */
  hostname?: string;
  /** Host directory bound at /dev/shm (the pod's shm); absent: a private tmpfs. */
  shmSource?: string;
  mounts: ShimBindMount[];
  maskedPaths: string[];
  readonlyPaths: string[];
  /** Namespaced sysctls, written to /proc/sys inside. */
  sysctls: { name: string; value: string }[];
  /** Mount /sys read-write (privileged). Default false. */
  sysReadWrite?: boolean;
  process: ShimProcess;
}

/** runc's default masked paths (config.go of runc's spec defaults + containerd). */
export const DEFAULT_MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
export const DEFAULT_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** containerd's default capability set (one list, kept in src/spec/capabilities.ts). */
export const DEFAULT_CAPABILITIES: string[] = [...CONTAINERD_DEFAULT_CAPABILITIES];

/** Capability numbers (linux/capability.h). */
export const CAPABILITIES: Record<string, number> = {
  CAP_CHOWN: 0, CAP_DAC_OVERRIDE: 1, CAP_DAC_READ_SEARCH: 2, CAP_FOWNER: 3, CAP_FSETID: 4, CAP_KILL: 5,
  CAP_SETGID: 6, CAP_SETUID: 7, CAP_SETPCAP: 8, CAP_LINUX_IMMUTABLE: 9, CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11, CAP_NET_ADMIN: 12, CAP_NET_RAW: 13, CAP_IPC_LOCK: 14, CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16, CAP_SYS_RAWIO: 17, CAP_SYS_CHROOT: 18, CAP_SYS_PTRACE: 19, CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21, CAP_SYS_BOOT: 22, CAP_SYS_NICE: 23, CAP_SYS_RESOURCE: 24, CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26, CAP_MKNOD: 27, CAP_LEASE: 28, CAP_AUDIT_WRITE: 29, CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31, CAP_MAC_OVERRIDE: 32, CAP_MAC_ADMIN: 33, CAP_SYSLOG: 34, CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36, CAP_AUDIT_READ: 37, CAP_PERFMON: 38, CAP_BPF: 39, CAP_CHECKPOINT_RESTORE: 40,
};

const RLIMITS: Record<string, number> = {
  CPU: 0, FSIZE: 1, DATA: 2, STACK: 3, CORE: 4, RSS: 5, NPROC: 6, NOFILE: 7, MEMLOCK: 8, AS: 9,
  LOCKS: 10, SIGPENDING: 11, MSGQUEUE: 12, NICE: 13, RTPRIO: 14, RTTIME: 15,
};

const LIMITS_NAMES: Record<string, string> = {
  'Max cpu time': 'CPU', 'Max file size': 'FSIZE', 'Max data size': 'DATA', 'Max stack size': 'STACK',
  'Max core file size': 'CORE', 'Max resident set': 'RSS', 'Max processes': 'NPROC', 'Max open files': 'NOFILE',
  'Max locked memory': 'MEMLOCK', 'Max address space': 'AS', 'Max file locks': 'LOCKS', 'Max pending signals': 'SIGPENDING',
  'Max msgqueue size': 'MSGQUEUE', 'Max nice priority': 'NICE', 'Max realtime priority': 'RTPRIO', 'Max realtime timeout': 'RTTIME',
};

/** Parse /proc/PID/limits: resource ("NOFILE") → { soft, hard } with -1 for unlimited. */
export function parseLimits(text: string): Record<string, { soft: number; hard: number }> {
  const out: Record<string, { soft: number; hard: number }> = {};
  for (const l of text.split('\n').slice(1)) {
    const name = Object.keys(LIMITS_NAMES).find((n) => l.startsWith(n));
    if (!name) continue;
    const [soft, hard] = l.slice(name.length).trim().split(/\s+/);
    const v = (x: string) => (x === 'unlimited' ? -1 : Number(x));
    out[LIMITS_NAMES[name]] = { soft: v(soft), hard: v(hard) };
  }
  return out;
}

/**
 * Lower each requested rlimit to this process's hard limit (without CAP_SYS_RESOURCE a raise
 * fails with EPERM: HOST-FACTS), keeping soft <= hard. `callerLimits` defaults to /proc/self/limits.
 */
export function clampRlimits(requested: ShimRlimit[], callerLimits = parseLimits(fs.readFileSync('/proc/self/limits', 'utf8'))): ShimRlimit[] {
  const min = (a: number, b: number) => (a === -1 ? b : b === -1 ? a : Math.min(a, b));
  return requested.map((r) => {
    const mine = callerLimits[r.type.replace(/^RLIMIT_/, '')];
    if (!mine) return r;
    const hard = min(r.hard, mine.hard);
    return { ...r, hard, soft: min(r.soft, hard) };
  });
}

// ---------------------------------------------------------------------------------------------
// Serialization
// ---------------------------------------------------------------------------------------------

/** Percent-escape one token (see the file comment). */
export function escapeToken(s: string): string {
  if (s === '') return '%';
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out += b > 0x20 && b < 0x7f && b !== 0x25 ? String.fromCharCode(b) : '%' + b.toString(16).padStart(2, '0');
  }
  return out;
}

export function unescapeToken(t: string): string {
  if (t === '%') return '';
  const bytes: number[] = [];
  for (let i = 0; i < t.length; i++) {
    if (t[i] === '%' && i + 2 < t.length + 0 && /^[0-9a-fA-F]{2}$/.test(t.slice(i + 1, i + 3))) {
      bytes.push(parseInt(t.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(t.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

function line(key: string, ...values: (string | number)[]): string {
  return [key, ...values.map((v) => escapeToken(String(v)))].join(' ') + '\n';
}

function capNumbers(names: string[], set: string): number[] {
  return names.map((n) => {
    const key = n.startsWith('CAP_') ? n : `CAP_${n}`;
    const v = CAPABILITIES[key];
    if (v === undefined) throw new PodrunError('EINVAL_ARG', `Cannot set capability "${n}" (${set}): unknown capability name`);
    return v;
  });
}

function rlimitNumber(type: string): number {
  const v = RLIMITS[type.replace(/^RLIMIT_/, '')];
  if (v === undefined) throw new PodrunError('EINVAL_ARG', `Cannot set rlimit "${type}": unknown resource`);
  return v;
}

/** Overlay's option escaping: "\" , ":" and "," in a path are backslash-escaped. */
function overlayPath(p: string): string {
  return p.replace(/([\\:,])/g, '\\$1');
}

const OVERLAY_DATA_MAX = 4095; // mount(2) copies one page of options

function commonDir(paths: string[]): string {
  const split = paths.map((p) => path.resolve(p).split('/'));
  const first = split[0];
  let n = 0;
  while (n < first.length - 1 && split.every((s) => s.length > n + 1 && s[n] === first[n])) n++;
  return first.slice(0, n).join('/') || '/';
}

/**
 * The overlay option string. mount(2) takes at most one page of options; with many layers the
 * absolute paths do not fit, so (as containerd does) the shim chdir()s into the longest common
 * directory of all layer, upper and work dirs and the options use paths relative to it.
 * Returns { data, cwd } where cwd is undefined when absolute paths fit.
 */
export function overlayOptions(r: ShimRootfs): { data: string; cwd?: string } {
  if (r.lowerDirs.length === 0) throw new PodrunError('EINVAL_ARG', 'Cannot mount a rootfs without layers: lowerDirs is empty');
  const build = (f: (p: string) => string) =>
    `lowerdir=${r.lowerDirs.map((d) => overlayPath(f(d))).join(':')},upperdir=${overlayPath(f(r.upperDir))},workdir=${overlayPath(f(r.workDir))}`;
  const abs = build((p) => path.resolve(p));
  if (abs.length <= OVERLAY_DATA_MAX) return { data: abs };
  const cwd = commonDir([...r.lowerDirs, r.upperDir, r.workDir]);
  const rel = build((p) => path.relative(cwd, path.resolve(p)) || '.');
  if (rel.length > OVERLAY_DATA_MAX) {
    throw new PodrunError('EUNSUPPORTED', `Cannot mount a rootfs of ${r.lowerDirs.length} layers: overlay options need ${rel.length} bytes even with paths relative to "${cwd}" (limit ${OVERLAY_DATA_MAX})`, {
      hint: 'use shorter layer directory names or flatten the image',
    });
  }
  return { data: rel, cwd };
}

function processLines(p: ShimProcess): string {
  let s = '';
  s += line('uid', p.uid) + line('gid', p.gid);
  s += line('groups', ...p.additionalGids);
  const c = p.capabilities;
  s += line('cap.bounding', ...capNumbers(c.bounding, 'bounding'));
  s += line('cap.effective', ...capNumbers(c.effective, 'effective'));
  s += line('cap.permitted', ...capNumbers(c.permitted, 'permitted'));
  s += line('cap.inheritable', ...capNumbers(c.inheritable, 'inheritable'));
  s += line('cap.ambient', ...capNumbers(c.ambient, 'ambient'));
  if (p.noNewPrivileges) s += line('nnp', 1);
  for (const r of p.rlimits ?? []) s += line('rlimit', rlimitNumber(r.type), r.soft, r.hard);
  s += line('cwd', p.cwd);
  if (p.args.length === 0) throw new PodrunError('EINVAL_ARG', 'Cannot start a process without args');
  for (const a of p.args) s += line('arg', a);
  for (const e of p.env) s += line('env', e);
  return s;
}

/** The plan file of `podrun-shim run`. */
export function serializePlan(plan: ShimPlan): string {
  let s = line('version', 1);
  s += line('id', plan.containerId);
  s += line('state-dir', plan.stateDir);
  s += line('log', plan.logPath);
  const ov = overlayOptions(plan.rootfs);
  if (ov.cwd) s += line('rootfs.cwd', ov.cwd);
  s += line('rootfs.data', ov.data);
  s += line('rootfs.target', path.resolve(plan.rootfs.mountPoint));
  if (plan.rootfs.readOnly) s += line('rootfs.readonly', 1);
  for (const k of ['net', 'ipc', 'uts', 'pid'] as const) {
    const p = plan.namespaces[k];
    if (p) s += line(`ns.${k}`, p);
  }
  for (const f of plan.cgroupProcs) s += line('cgroup.procs', f);
  if (plan.cgroupMount?.version === 2) s += line('cgroupfs', 2);
  else if (plan.cgroupMount?.version === 1) {
    s += line('cgroupfs', 1);
    for (const h of plan.cgroupMount.hierarchies) s += line('cgroup.v1', h.dir, h.options);
  }
  if (plan.hostname !== undefined) s += line('hostname', plan.hostname);
  if (plan.shmSource) s += line('shm', plan.shmSource);
  if (plan.sysReadWrite) s += line('sys.rw', 1);
  for (const m of plan.mounts) {
    const sub = m.subPath ? [m.subPath.path, m.subPath.createMode === null ? '-' : m.subPath.createMode.toString(8), m.subPath.volume] : [];
    s += line('bind', m.source, m.target, m.readOnly ? 'ro' : 'rw', m.recursive === false ? 'norec' : 'rec', ...sub);
  }
  for (const p of plan.maskedPaths) s += line('mask', p);
  for (const p of plan.readonlyPaths) s += line('readonly', p);
  for (const x of plan.sysctls) s += line('sysctl', x.name, x.value);
  if (plan.process.terminal) s += line('terminal', 1);
  s += processLines(plan.process);
  return s;
}

// ---------------------------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------------------------

/** Path of the built shim (env PODRUN_SHIM overrides); throws with a hint when missing. */
export function shimPath(): string {
  const env = process.env.PODRUN_SHIM;
  const p = env ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../native-shims/build/podrun-shim');
  try {
    fs.accessSync(p, fs.constants.X_OK);
  } catch {
    throw new PodrunError('ESHIM', `Cannot find the native shim: "${p}" is missing or not executable`, {
      hint: 'build it with `npm install` or `make -C native-shims` (needs gcc and make)',
    });
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Status channel
// ---------------------------------------------------------------------------------------------

export interface ShimStepError {
  step: string;
  errno: number;
  path: string;
}

/** A failed step reported by the shim: code ESHIM, with step, errno and path. */
export class ShimError extends PodrunError {
  readonly step: string;
  readonly errno: number;
  readonly errnoName: string;
  readonly path: string;
  constructor(containerId: string, e: ShimStepError) {
    const name = errnoName(e.errno);
    super('ESHIM', `Cannot start container "${containerId}": shim step "${e.step}"${e.path ? ` on "${e.path}"` : ''} failed: ${name} (${strerror(e.errno)})`, {
      hint: hintFor(e),
    });
    this.name = 'ShimError';
    this.step = e.step;
    this.errno = e.errno;
    this.errnoName = name;
    this.path = e.path;
  }
}

function hintFor(e: ShimStepError): string | undefined {
  if (e.step === 'execve' && e.errno === 2) return 'the command does not exist in the image (check command/args and PATH)';
  if (e.step === 'setrlimit' && e.errno === 1) return 'an rlimit above the caller\'s hard limit needs CAP_SYS_RESOURCE; lower it';
  if (e.step === 'chdir') return 'the working directory does not exist in the image';
  if (e.step === 'subpath-symlink' || e.step === 'subpath-open') {
    return 'a subPath component became a symlink or a file after podrun checked it: something in the pod is changing the volume';
  }
  if (e.step === 'resolve-bind-target' && e.errno === 40) return "the image's mountPath goes through a /proc magic link";
  return undefined;
}

type StatusLine = { kind: 'step'; name: string; detail: string } | { kind: 'error'; e: ShimStepError } | { kind: 'started'; pid: number; startTime: number } | { kind: 'other'; text: string };

export function parseStatusLine(l: string): StatusLine {
  const t = l.split(' ').map(unescapeToken);
  if (t[0] === 'step') return { kind: 'step', name: t[1] ?? '', detail: t.slice(2).join(' ') };
  if (t[0] === 'error') return { kind: 'error', e: { step: t[1] ?? '?', errno: Number(t[2] ?? 0), path: t[3] ?? '' } };
  if (t[0] === 'started') return { kind: 'started', pid: Number(t[1]), startTime: Number(t[2]) };
  return { kind: 'other', text: l };
}

/** Split a readable stream into lines, calling `onLine` for each; resolves at EOF. */
function readLines(stream: NodeJS.ReadableStream, onLine: (l: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    stream.on('end', () => {
      if (buf) onLine(buf);
      resolve();
    });
    stream.on('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------
// run
// ---------------------------------------------------------------------------------------------

export interface StartOptions {
  sink?: EventSink;
  /** Give up waiting for "started" after this long (default 30 s); the monitor is killed. */
  timeoutMs?: number;
}

export interface StartedProcess {
  /** The detached monitor (holds the log pipes, writes the exit file). */
  monitorPid: number;
  /** The container's init in the host PID namespace. */
  pid: number;
  /** Its /proc/PID/stat start time (clock ticks since boot): identity with `pid`. */
  startTime: number;
}

/**
 * Start a container: write the plan to STATE/plan, have this process's spawner fork `podrun-shim
 * run` (own session, survives this Node process; see spawner.ts), and wait until the container
 * process has exec'd.
 * The monitor writes STATE/started ("monitorPid pid startTime") and, when the container ends,
 * STATE/exit (see readExitStatus). A failed step rejects with ShimError (code ESHIM).
 */
export async function startContainerProcess(plan: ShimPlan, opts: StartOptions = {}): Promise<StartedProcess> {
  const bin = shimPath();
  const planFile = path.join(plan.stateDir, 'plan');
  fs.writeFileSync(planFile, serializePlan(plan), { mode: 0o600 });
  fs.rmSync(path.join(plan.stateDir, 'exit'), { force: true });
  trace(opts.sink, 'shim', 'spawn', `${bin} run ${planFile}`);
  let started: StartedProcess | undefined;
  let failed: ShimStepError | undefined;
  const others: string[] = [];
  // the status lines can arrive before run() has resolved with the monitor's pid: the "started"
  // line is kept and made into a StartedProcess once both are known
  let startedLine: { pid: number; startTime: number } | undefined;
  const onLine = (l: string) => {
    const s = parseStatusLine(l);
    if (s.kind === 'step') trace(opts.sink, 'shim', s.name, s.detail || undefined);
    else if (s.kind === 'error') failed ??= s.e;
    else if (s.kind === 'started') startedLine = { pid: s.pid, startTime: s.startTime };
    else others.push(s.text);
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    const monitor = await monitorSpawner(bin).run(escapeToken(planFile), escapeToken(path.join(plan.stateDir, 'shim.stderr')), onLine);
    timer = setTimeout(() => {
      try {
        process.kill(monitor.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, opts.timeoutMs ?? 30_000);
    await monitor.closed;
    if (startedLine) started = { monitorPid: monitor.pid, ...startedLine };
  } catch (err) {
    if (err instanceof PodrunError) throw err;
    throw new PodrunError('ESHIM', `Cannot start container "${plan.containerId}": spawning "${bin}" failed`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  if (failed) throw new ShimError(plan.containerId, failed);
  if (!started) {
    let stderr = '';
    try {
      stderr = fs.readFileSync(path.join(plan.stateDir, 'shim.stderr'), 'utf8').trim().split('\n').slice(-3).join('; ');
    } catch {
      /* none */
    }
    throw new PodrunError('ESHIM', `Cannot start container "${plan.containerId}": the shim ended without reporting a start${stderr ? ` (${stderr})` : ''}${others.length ? ` (${others.join('; ')})` : ''}`);
  }
  return started;
}

export interface ExitStatus {
  /** Exit code, or 128 + signal when killed by a signal. */
  exitCode: number;
  /** Signal number when killed by one. */
  signal?: number;
  /** RFC 3339 with nanoseconds, UTC. */
  finishedAt: string;
  pid: number;
}

/** The exit file the monitor writes (atomically) when the container ends; undefined while running. */
export function readExitStatus(stateDir: string): ExitStatus | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(stateDir, 'exit'), 'utf8');
  } catch (err) {
    if (nodeErrCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  const j = JSON.parse(text) as { pid: number; exitCode: number; signal: number; finishedAt: string };
  return { pid: j.pid, exitCode: j.exitCode, finishedAt: j.finishedAt, ...(j.signal ? { signal: j.signal } : {}) };
}

/** Poll for the exit file (interval 20 ms); undefined after `timeoutMs`. */
export async function waitExitStatus(stateDir: string, timeoutMs = 30_000): Promise<ExitStatus | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const st = readExitStatus(stateDir);
    if (st || Date.now() > end) return st;
    await new Promise((r) => setTimeout(r, 20));
  }
}

export { processStartTime };

/** True when `pid` is alive and is the process that had `startTime` (not a reused pid).
 * A zombie counts as gone. */
export function isSameProcess(pid: number, startTime: number): boolean {
  const st = processStartTime(pid);
  if (st !== startTime) return false;
  try {
    const state = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return state.slice(state.lastIndexOf(')') + 2, state.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// exec
// ---------------------------------------------------------------------------------------------

export interface ExecPlan {
  /** The container's init (host pid) and its start time (checked before joining). */
  pid: number;
  startTime: number;
  /** Namespaces joined, default all of ipc uts net pid cgroup mnt. */
  namespaces?: ('ipc' | 'uts' | 'net' | 'pid' | 'cgroup' | 'mnt')[];
  /** cgroup.procs files of the container's cgroup(s). */
  cgroupProcs: string[];
  process: ShimProcess;
  /** Allocate a pty and relay (interactive mode only). */
  terminal?: boolean;
}

export interface ExecOptions {
  /** 'capture' (probes, execSync): stdout/stderr collected; 'inherit' (CLI): this process's stdio. */
  stdio: 'capture' | 'inherit';
  /** Inherit mode: 'inherit' passes this process's stdin (exec -i); 'null' gives the command
   *  /dev/null (with a terminal: a terminal whose input is at end of file), so the caller's stdin
   *  is never read. Default 'inherit'. */
  stdin?: 'inherit' | 'null';
  /** Bytes written to the command's stdin (capture mode). */
  input?: string | Buffer;
  /** Kill the exec after this long (capture mode); the result has timedOut = true. */
  timeoutMs?: number;
  sink?: EventSink;
}

export interface ExecResult {
  /** The command's status (128 + signal when killed). */
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
}

export function serializeExecPlan(p: ExecPlan): string {
  let s = line('version', 1);
  s += line('target', p.pid, p.startTime);
  for (const ns of p.namespaces ?? ['ipc', 'uts', 'net', 'pid', 'cgroup', 'mnt']) s += line('join', ns, `/proc/${p.pid}/ns/${ns}`);
  for (const f of p.cgroupProcs) s += line('cgroup.procs', f);
  if (p.terminal) s += line('terminal', 1);
  s += processLines(p.process);
  return s;
}

/**
 * Run a command inside a running container (`podrun-shim exec`): joins the init's namespaces
 * and cgroup, sets user, groups, capabilities, no_new_privs, env and cwd, and execs. Resolves
 * with the command's status; a failed shim step rejects with ShimError.
 *
 * Without a terminal the shim runs in a session of its own, and a terminal among this process's
 * stdio is relayed through a pipe rather than handed over: a command in the container never
 * holds the caller's terminal (no /dev/tty, no TIOCSTI into the caller's shell). In inherit mode
 * SIGINT, SIGTERM, SIGHUP and SIGQUIT received meanwhile are passed on to the shim, which passes
 * them to the command. With a terminal the shim stays in the caller's session: it puts the
 * caller's terminal in raw mode, copies its window size, follows SIGWINCH, and gives the command
 * a pty of the container's own /dev/pts.
 */
export async function execInContainer(plan: ExecPlan, opts: ExecOptions): Promise<ExecResult> {
  if (!isSameProcess(plan.pid, plan.startTime)) {
    throw new PodrunError('ENOTFOUND', `Cannot exec in process ${plan.pid}: it is not running (or its pid was reused)`);
  }
  const bin = shimPath();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-exec-'));
  const planFile = path.join(dir, 'plan');
  fs.writeFileSync(planFile, serializeExecPlan(plan), { mode: 0o600 });
  const forwarded: [NodeJS.Signals, () => void][] = [];
  let relayIn = false;
  try {
    trace(opts.sink, 'shim', 'spawn', `${bin} exec ${planFile}`);
    const capture = opts.stdio === 'capture';
    const passIn = opts.stdin !== 'null';
    let stdio: ('pipe' | 'inherit' | 'ignore')[];
    if (capture) stdio = ['pipe', 'pipe', 'pipe', 'pipe'];
    else if (plan.terminal) stdio = [passIn ? 'inherit' : 'ignore', 'inherit', 'inherit', 'pipe'];
    else {
      relayIn = passIn && process.stdin.isTTY === true;
      stdio = [
        !passIn ? 'ignore' : relayIn ? 'pipe' : 'inherit',
        process.stdout.isTTY ? 'pipe' : 'inherit',
        process.stderr.isTTY ? 'pipe' : 'inherit',
        'pipe',
      ];
    }
    const child = spawn(bin, ['exec', planFile], { stdio, detached: !plan.terminal });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    if (capture) {
      child.stdout!.on('data', (b: Buffer) => out.push(b));
      child.stderr!.on('data', (b: Buffer) => err.push(b));
      child.stdin!.on('error', () => {});
      child.stdin!.end(opts.input ?? '');
    } else if (!plan.terminal) {
      child.stdout?.pipe(process.stdout, { end: false });
      child.stderr?.pipe(process.stderr, { end: false });
      if (relayIn) {
        child.stdin!.on('error', () => {});
        process.stdin.pipe(child.stdin!);
      }
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) {
        const fwd = () => {
          try {
            child.kill(sig);
          } catch {
            /* already gone */
          }
        };
        process.on(sig, fwd);
        forwarded.push([sig, fwd]);
      }
    }
    let failed: ShimStepError | undefined;
    const statusDone = readLines(child.stdio[3] as NodeJS.ReadableStream, (l) => {
      const s = parseStatusLine(l);
      if (s.kind === 'step') trace(opts.sink, 'shim', s.name, s.detail || undefined);
      else if (s.kind === 'error') failed ??= s.e;
    });
    let timedOut = false;
    const timer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, opts.timeoutMs)
        : undefined;
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, s) => resolve([c, s]));
    });
    if (timer) clearTimeout(timer);
    await statusDone.catch(() => {});
    if (failed) throw new ShimError(`pid ${plan.pid}`, failed);
    const exitCode = code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0);
    return { exitCode, stdout: Buffer.concat(out), stderr: Buffer.concat(err), timedOut };
  } finally {
    for (const [sig, fwd] of forwarded) process.off(sig, fwd);
    if (relayIn) {
      process.stdin.unpipe();
      process.stdin.pause();
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// pause and lo-up
// ---------------------------------------------------------------------------------------------

/**
 * Start the pod's PID-namespace init for shareProcessNamespace: a detached `podrun-shim pause`
 * that becomes pid 1 of a new PID namespace and reaps orphans. Containers join it with
 * namespaces.pid = `/proc/<pid>/ns/pid`. SIGTERM or SIGKILL ends it.
 */
export async function startPause(opts: { sink?: EventSink; cgroupProcs?: string[] } = {}): Promise<{ pid: number; startTime: number }> {
  const bin = shimPath();
  trace(opts.sink, 'shim', 'spawn', `${bin} pause`);
  const child = spawn(bin, ['pause', ...(opts.cgroupProcs ?? [])], { detached: true, stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  child.unref();
  let res: { pid: number; startTime: number } | undefined;
  let failed: ShimStepError | undefined;
  await readLines(child.stdio[3] as NodeJS.ReadableStream, (l) => {
    const s = parseStatusLine(l);
    if (s.kind === 'started') res = { pid: s.pid, startTime: s.startTime };
    else if (s.kind === 'error') failed ??= s.e;
  });
  if (failed) throw new ShimError('pause', failed);
  if (!res) throw new PodrunError('ESHIM', 'Cannot start the pod\'s pause process: the shim reported nothing');
  return res;
}

/** Bring the loopback interface up inside the network namespace pinned at `nsPath`. */
export async function loopbackUp(nsPath: string, sink?: EventSink): Promise<void> {
  const bin = shimPath();
  trace(sink, 'shim', 'lo-up', nsPath);
  const child = spawn(bin, ['lo-up', nsPath], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  let failed: ShimStepError | undefined;
  const done = readLines(child.stdio[3] as NodeJS.ReadableStream, (l) => {
    const s = parseStatusLine(l);
    if (s.kind === 'error') failed ??= s.e;
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  await done;
  if (failed) throw new ShimError('lo-up', failed);
  if (code !== 0) throw new PodrunError('ESHIM', `Cannot bring up loopback in "${nsPath}": the shim exited with ${code}`);
}
