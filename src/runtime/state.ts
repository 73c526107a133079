/**
 * The per-pod state file (<run-root>/pods/<ns>_<name>/state.json) and the per-pod lock.
 *
 * Rules:
 * - written atomically (temp file in the same dir, then rename), so a crash of any podrun process
 *   leaves the old or the new file, never half of one. Not fsynced, as runc does not fsync its
 *   state.json: the run root is volatile (/run is a tmpfs, emptied by a reboot, after which `gc`
 *   handles what is left), and an fsync per state change cost 10 ms each on a disk-backed run
 *   root, most of a pod's start time;
 * - every resource (dir, namespace pins, mount, cgroup, network attachment, process) is appended
 *   to `resources` and the file written BEFORE the resource is created; teardown walks the list in
 *   reverse and each undo tolerates a resource that does not exist (it may never have been made);
 * - the pod's owner (the foreground `up` or the background supervisor) is recorded by pid AND
 *   process start time, never by pid alone.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PodrunError, nodeErrCode } from '../util/errors.js';
import type { ManifestSet, PodPlan } from '../spec/plan.js';
import { lockFile, podRunDir, podsDir, stateFile, type RuntimePaths } from './paths.js';
import { processStartTime } from '../linux/proc.js';

/** A process identified by pid and its /proc start time (clock ticks since boot). */
export interface ProcessId {
  pid: number;
  startTime: number;
}

export type Resource =
  | { kind: 'dir'; path: string } // a directory podrun created (removed recursively)
  | { kind: 'pins'; dir: string } // pinned net/ipc/uts namespaces (bind mounts in dir)
  | { kind: 'mount'; path: string } // a mount podrun made on the host (shm tmpfs, memory emptyDir)
  | { kind: 'cgroup'; parent: string; pod: string } // the pod's cgroup (and its children)
  | { kind: 'network'; id: string; netnsPath: string } // a CNI attachment
  | { kind: 'process'; role: string; pid: number; startTime: number }; // a monitor or pause process

export interface ContainerRecord {
  /** The runtime's id of this run (see containerId()). */
  id: string;
  name: string;
  kind: 'init' | 'sidecar' | 'app';
  restartCount: number;
  image: string;
  /** "name@sha256:…" of the image actually run. */
  imageID?: string;
  state: 'created' | 'running' | 'exited';
  monitor?: ProcessId;
  /** The container's first process, as seen from the host. */
  init?: ProcessId;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  signal?: number;
  oomKilled?: boolean;
  logPath: string;
  stateDir: string;
  dataDir: string;
  cgroupRel: string;
  /** OOM kills counted in the container cgroup before this run started. */
  oomBase: number;
  /** The resolved process (exec uses its user, capabilities and env). */
  process: import('../spec/plan.js').ProcessSpec;
  stopSignal?: string;
}

export interface PodState {
  version: 1;
  key: string;
  name: string;
  namespace: string;
  uid: string;
  /** Hash of the pod's spec (the plan minus the generated uid): equal = same pod. */
  specHash: string;
  plan: PodPlan;
  /** ConfigMaps and Secrets of the same file (env valueFrom / envFrom). */
  manifests?: Pick<ManifestSet, 'configMaps' | 'secrets'>;
  createdAt: string;
  /** Ready: the sandbox exists. Stopping/Stopped: `down` in progress or done. */
  sandbox: 'Creating' | 'Ready' | 'Stopping' | 'Stopped';
  owner?: ProcessId & { socket?: string };
  podIP?: string;
  hostname: string;
  cgroup?: { parent: string; pod: string };
  /** The network the pod was made with: false = loopback only, else the CNI conflist dir
   * (undefined = the default one). Teardown uses the same. Absent in older states. */
  network?: false | { confDir?: string };
  resources: Resource[];
  /** Container runs by id (exited runs stay until removed). */
  containers: Record<string, ContainerRecord>;
  /** The lifecycle controller's snapshot (restart counts, probe state) for re-adoption. */
  controller?: unknown;
  /** The Kubernetes-shaped pod status last computed by the controller. */
  status?: unknown;
  /** Set when the pod finished (Succeeded/Failed) or was stopped. */
  finishedAt?: string;
}

/** Writes `data` to `file` atomically against process crashes: temp file beside it, rename. */
export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    if (typeof data === 'string') fs.writeSync(fd, data);
    else fs.writeSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

export function readState(p: RuntimePaths, key: string): PodState | undefined {
  let text: string;
  try {
    text = fs.readFileSync(stateFile(p, key), 'utf8');
  } catch (err) {
    if (nodeErrCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text, reviveBytes) as PodState;
  } catch (err) {
    throw new PodrunError('ESTATE', `Cannot read pod state "${stateFile(p, key)}": ${(err as Error).message}`, { cause: err });
  }
}

export function writeState(p: RuntimePaths, st: PodState): void {
  fs.mkdirSync(podRunDir(p, st.key), { recursive: true, mode: 0o700 });
  writeFileAtomic(stateFile(p, st.key), JSON.stringify(st, keepBytes, 1) + '\n');
}

// Volume file contents in the plan are Uint8Arrays: stored as {"$bytes": base64}.
/** JSON with Uint8Arrays kept (state files, supervisor requests). */
export function toJson(v: unknown): string {
  return JSON.stringify(v, keepBytes);
}
export function fromJson<T>(text: string): T {
  return JSON.parse(text, reviveBytes) as T;
}
function keepBytes(this: unknown, k: string, v: unknown): unknown {
  const orig = (this as Record<string, unknown>)[k]; // before Buffer.toJSON
  return orig instanceof Uint8Array ? { $bytes: Buffer.from(orig).toString('base64') } : v;
}
function reviveBytes(_k: string, v: unknown): unknown {
  if (v && typeof v === 'object' && '$bytes' in v && Object.keys(v).length === 1) return new Uint8Array(Buffer.from(String((v as { $bytes: string }).$bytes), 'base64'));
  return v;
}

/** Records resources in the state file (one write) BEFORE any of them is created. */
export function recordResource(p: RuntimePaths, st: PodState, ...rs: Resource[]): void {
  st.resources.push(...rs);
  writeState(p, st);
}

/** Drops a resource from the state file AFTER it was removed. */
export function forgetResource(p: RuntimePaths, st: PodState, r: Resource): void {
  const i = st.resources.indexOf(r);
  if (i >= 0) st.resources.splice(i, 1);
  writeState(p, st);
}

/** Every pod key that has a directory in the run root. */
export function listPodKeys(p: RuntimePaths): string[] {
  try {
    return fs
      .readdirSync(podsDir(p), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
  } catch (err) {
    if (nodeErrCode(err) === 'ENOENT') return [];
    throw err;
  }
}

/**
 * Finds a pod by "name", "namespace/name" or key and reads its state. A light function (no
 * kernel interface, no runtime): `down`, `logs` and `inspect` find pods without loading ffi.
 */
export function findPodState(p: RuntimePaths, ref: string): PodState {
  const keys = listPodKeys(p);
  const want = ref.includes('/') ? ref.replace('/', '_') : ref;
  const key = keys.find((k) => k === want) ?? keys.find((k) => k === `default_${ref}`) ?? keys.filter((k) => k.split('_').slice(1).join('_') === ref)[0];
  const st = key ? readState(p, key) : undefined;
  if (!st) throw new PodrunError('ENOTFOUND', `Cannot find pod "${ref}"`, { hint: 'see "podrun ps -a" for the pods on this machine' });
  return st;
}

// ---- processes by pid + start time ----

export { processStartTime as procStartTime };

/** True when `id` still names the same live (non-zombie) process. */
export function isAlive(id: ProcessId | undefined): boolean {
  if (!id || !id.pid) return false;
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${id.pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  if (rest[0] === 'Z' || rest[0] === 'X') return false;
  return Number(rest[19]) === id.startTime;
}

export function selfId(): ProcessId {
  ownStart ??= processStartTime(process.pid);
  return { pid: process.pid, startTime: ownStart ?? 0 };
}
/** This process's start time: read once (it never changes). */
let ownStart: number | undefined;

// ---- the per-pod lock ----

/**
 * An exclusive lock on one pod: a file created with O_EXCL holding "pid starttime". A lock whose
 * holder is gone (checked by pid + start time) is stale and broken. Node has no flock(2), and a
 * lock file also works for processes that do not share an open file.
 */
export async function withPodLock<T>(p: RuntimePaths, key: string, fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const release = await acquireLock(lockFile(p, key), timeoutMs);
  try {
    return await fn();
  } finally {
    release();
    try {
      fs.rmdirSync(podRunDir(p, key)); // a pod dir that only held the lock (a refused up)
    } catch {
      /* not empty, or gone */
    }
  }
}

export async function acquireLock(file: string, timeoutMs: number): Promise<() => void> {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const me = selfId();
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    try {
      const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      fs.writeSync(fd, `${me.pid} ${me.startTime}\n`);
      fs.closeSync(fd);
      return () => {
        const holder = readLock(file);
        if (holder && holder !== 'partial' && holder.pid === me.pid && holder.startTime === me.startTime) fs.rmSync(file, { force: true });
      };
    } catch (err) {
      if (nodeErrCode(err) !== 'EEXIST') throw err;
    }
    const holder = readLock(file);
    if (holder === 'partial') {
      // being written right now, or left half-written by a crash: give it a moment, then break it
      if (Date.now() > deadline - timeoutMs / 2) fs.rmSync(file, { force: true });
    } else if (!holder || !isAlive(holder)) {
      breakStaleLock(file, holder);
      continue;
    }
    if (Date.now() > deadline) {
      const who = holder && holder !== 'partial' ? ` (held by pid ${holder.pid})` : '';
      throw new PodrunError('ELOCKED', `Cannot lock "${file}": another podrun process holds it${who}`, {
        hint: 'wait for the other podrun command to finish',
      });
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** The live process holding a lock file (a pid file such as supervisor.pid), checked by pid and
 * start time: undefined when the file is missing, partial or names a process that is gone. */
export function lockHolder(file: string): number | undefined {
  const id = readLock(file);
  return id && id !== 'partial' && isAlive(id) ? id.pid : undefined;
}

function readLock(file: string): ProcessId | 'partial' | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^(\d+) (\d+)\n$/.exec(text);
  return m ? { pid: Number(m[1]), startTime: Number(m[2]) } : 'partial';
}

function breakStaleLock(file: string, seen: ProcessId | undefined): void {
  // only remove the lock if it still is the stale one we looked at
  const now = readLock(file);
  if (now === undefined) return;
  if (seen && now !== 'partial' && (now.pid !== seen.pid || now.startTime !== seen.startTime)) return;
  fs.rmSync(file, { force: true });
}
