/**
 * cgroups are files. One `Cgroups` interface, two drivers:
 *
 * - v2 (unified hierarchy, the target): `<root>/<rel>` where rel is e.g. "podrun/<pod>/<ctr>";
 *   controllers are enabled top-down (`+cpu +memory +pids` in cgroup.subtree_control of each
 *   ancestor of a leaf) and processes live only in leaves.
 * - v1 (hybrid hosts such as the development machines): the same rel path is created in each
 *   managed hierarchy (cpu, cpuacct, cpuset, memory, pids); cpuset.cpus/mems are copied from the
 *   parent on creation (a new v1 cpuset is empty and refuses tasks).
 *
 * Only paths below the given rel are ever written or removed; the root of a hierarchy is only
 * read, except the v2 root's cgroup.subtree_control, where a missing controller is enabled.
 *
 * Value mapping (limitsToV1 / limitsToV2, replaceable by src/spec/resources.ts):
 *   limits.cpu   m  → v1 cpu.cfs_period_us 100000, cpu.cfs_quota_us m*100 (min 1000)
 *                   → v2 cpu.max "m*100 100000"
 *   requests.cpu m  → shares = max(2, floor(m*1024/1000)) (kubelet's MilliCPUToShares)
 *                   → v1 cpu.shares shares; v2 cpu.weight 1 + floor((shares-2)*9999/262142)
 *                     (the runc/crun conversion, so 1 CPU = 1024 shares = weight 39)
 *   limits.memory b → v1 memory.limit_in_bytes b (+ memory.memsw.limit_in_bytes b: no swap)
 *                   → v2 memory.max b, memory.swap.max 0
 *   pidsMax n       → pids.max n
 */
import fs from 'node:fs';
import path from 'node:path';
import { PodrunError, nodeErrCode } from '../util/errors.js';
import { trace, type EventSink } from '../util/events.js';
import { readMountinfo, type MountInfo } from './mounts.js';

export type CgroupVersion = 1 | 2;

export interface CgroupLimits {
  cpuMillisLimit?: number;
  cpuMillisRequest?: number;
  memoryBytesLimit?: number;
  pidsMax?: number;
}

/** Control file name → value, written in this order. v1 names are routed by their prefix. */
export type CgroupValues = [file: string, value: string][];

export interface CgroupStats {
  /** Bytes charged now (v2 memory.current, v1 memory.usage_in_bytes). */
  memoryCurrent?: number;
  /** OOM kills in this cgroup (v2 memory.events oom_kill, v1 memory.oom_control oom_kill). */
  oomKills?: number;
  /** v1 memory.failcnt: times the limit was hit (not a kill count). */
  memoryFailcnt?: number;
  nrPeriods?: number;
  nrThrottled?: number;
  throttledUsec?: number;
  /** CPU time used (v2 cpu.stat usage_usec, v1 cpuacct.usage / 1000). */
  cpuUsageUsec?: number;
  pidsCurrent?: number;
}

/** What the shim mounts at /sys/fs/cgroup inside a container. */
export type CgroupMountPlan = { version: 2 } | { version: 1; hierarchies: { dir: string; options: string }[] };

export interface Cgroups {
  readonly version: CgroupVersion;
  /** Absolute directories of `rel` (one for v2, one per managed hierarchy for v1). */
  dirs(rel: string): string[];
  /** cgroup.procs files of `rel`: the shim writes the container's pid into each. */
  procsFiles(rel: string): string[];
  exists(rel: string): boolean;
  /** mkdir -p in every hierarchy; enables controllers top-down (v2), copies cpusets (v1). */
  create(rel: string): void;
  /** Write control files (v1: routed to the hierarchy named by the file's prefix). */
  apply(rel: string, values: CgroupValues): void;
  setLimits(rel: string, limits: CgroupLimits): void;
  addProcess(rel: string, pid: number): void;
  /** Pids in `rel` and below. */
  pids(rel: string): number[];
  stats(rel: string): CgroupStats;
  /** Kill every process in `rel` and below, until none is left (bounded wait). */
  killAll(rel: string, signal?: NodeJS.Signals | number): Promise<void>;
  /** rmdir `rel` and everything below, leaves first, retrying while busy. Missing is fine. */
  remove(rel: string): Promise<void>;
  /** What the shim mounts at /sys/fs/cgroup in a container's cgroup namespace. */
  mountPlan(): CgroupMountPlan;
}

export interface CgroupsOptions {
  /** Default: detectCgroupVersion(). */
  version?: CgroupVersion;
  /** v2 mount point (default: detected, else /sys/fs/cgroup). */
  root?: string;
  /** v1: controller → hierarchy directory and its mount options (default: from mountinfo). */
  v1Hierarchies?: Record<string, { dir: string; options: string }>;
  sink?: EventSink;
  /** Retry budget of remove() and killAll() (default 100 × 20 ms). */
  retries?: number;
  retryDelayMs?: number;
}

export const V1_CONTROLLERS = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids'] as const;
export const V2_CONTROLLERS = ['cpu', 'memory', 'pids'] as const;

/** v2 when /sys/fs/cgroup is a cgroup2 mount (unified), else v1 (legacy or hybrid). */
export function detectCgroupVersion(mounts: MountInfo[] = readMountinfo(), root = '/sys/fs/cgroup'): CgroupVersion {
  const m = mounts.filter((x) => x.mountPoint === root).pop();
  return m?.fstype === 'cgroup2' ? 2 : 1;
}

/** kubelet's MilliCPUToShares. */
export function milliCpuToShares(m: number): number {
  return Math.max(2, Math.floor((m * 1024) / 1000));
}
/** runc/crun's shares → cpu.weight. */
export function sharesToWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}
const PERIOD = 100000;
function quota(m: number): number {
  return Math.max(1000, Math.floor((m * PERIOD) / 1000));
}

export function limitsToV2(l: CgroupLimits): CgroupValues {
  const v: CgroupValues = [];
  if (l.cpuMillisLimit !== undefined) v.push(['cpu.max', `${quota(l.cpuMillisLimit)} ${PERIOD}`]);
  if (l.cpuMillisRequest !== undefined) v.push(['cpu.weight', String(sharesToWeight(milliCpuToShares(l.cpuMillisRequest)))]);
  if (l.memoryBytesLimit !== undefined) {
    v.push(['memory.max', String(l.memoryBytesLimit)]);
    v.push(['memory.swap.max', '0']);
  }
  if (l.pidsMax !== undefined) v.push(['pids.max', String(l.pidsMax)]);
  return v;
}

export function limitsToV1(l: CgroupLimits): CgroupValues {
  const v: CgroupValues = [];
  if (l.cpuMillisLimit !== undefined) {
    v.push(['cpu.cfs_period_us', String(PERIOD)]);
    v.push(['cpu.cfs_quota_us', String(quota(l.cpuMillisLimit))]);
  }
  if (l.cpuMillisRequest !== undefined) v.push(['cpu.shares', String(milliCpuToShares(l.cpuMillisRequest))]);
  if (l.memoryBytesLimit !== undefined) {
    v.push(['memory.limit_in_bytes', String(l.memoryBytesLimit)]);
    v.push(['memory.memsw.limit_in_bytes', String(l.memoryBytesLimit)]);
  }
  if (l.pidsMax !== undefined) v.push(['pids.max', String(l.pidsMax)]);
  return v;
}

function checkRel(rel: string): string {
  const parts = rel.split('/').filter(Boolean);
  if (parts.length === 0 || parts.some((p) => p === '.' || p === '..') || rel.startsWith('/')) {
    throw new PodrunError('EINVAL_ARG', `Cannot use cgroup path "${rel}": it must be relative, non-empty and without ".."`);
  }
  return parts.join('/');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readOpt(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (nodeErrCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** "key value" lines (cpu.stat, memory.events, memory.oom_control) → map. */
export function parseKeyValues(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) out.set(k, Number(v));
  }
  return out;
}

function num(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) : undefined;
}

abstract class Base {
  constructor(protected readonly opts: CgroupsOptions) {}
  abstract dirs(rel: string): string[];
  protected get sink(): EventSink | undefined {
    return this.opts.sink;
  }

  protected write(file: string, value: string): void {
    trace(this.sink, 'cgroup', 'write', `${file} = ${value}`);
    try {
      fs.writeFileSync(file, value);
    } catch (err) {
      throw new PodrunError('ECGROUP', `Cannot write "${value}" to "${file}": ${nodeErrCode(err) ?? (err as Error).message}`, {
        cause: err,
        hint: nodeErrCode(err) === 'ENOENT' ? 'the controller may not be enabled for this cgroup or not available on this kernel' : undefined,
      });
    }
  }

  protected mkdir(dir: string): boolean {
    try {
      fs.mkdirSync(dir);
      trace(this.sink, 'cgroup', 'mkdir', dir);
      return true;
    } catch (err) {
      if (nodeErrCode(err) === 'EEXIST') return false;
      throw new PodrunError('ECGROUP', `Cannot create cgroup "${dir}": ${nodeErrCode(err) ?? (err as Error).message}`, { cause: err });
    }
  }

  exists(rel: string): boolean {
    return this.dirs(rel).some((d) => fs.existsSync(d));
  }

  procsFiles(rel: string): string[] {
    return this.dirs(rel).map((d) => path.join(d, 'cgroup.procs'));
  }

  addProcess(rel: string, pid: number): void {
    for (const f of this.procsFiles(rel)) this.write(f, String(pid));
  }

  pids(rel: string): number[] {
    const seen = new Set<number>();
    const walk = (dir: string) => {
      const text = readOpt(path.join(dir, 'cgroup.procs')) ?? '';
      for (const l of text.split('\n')) if (/^\d+$/.test(l.trim())) seen.add(Number(l.trim()));
      for (const e of safeReaddir(dir)) if (e.isDirectory()) walk(path.join(dir, e.name));
    };
    for (const d of this.dirs(checkRel(rel))) walk(d);
    return [...seen].sort((a, b) => a - b);
  }

  async killAll(rel: string, signal: NodeJS.Signals | number = 'SIGKILL'): Promise<void> {
    const retries = this.opts.retries ?? 100;
    for (let i = 0; i < retries; i++) {
      const pids = this.pids(rel);
      if (pids.length === 0) return;
      for (const pid of pids) {
        trace(this.sink, 'cgroup', 'kill', `${pid} ${signal}`);
        try {
          process.kill(pid, signal);
        } catch (err) {
          if (nodeErrCode(err) !== 'ESRCH') throw err;
        }
      }
      await sleep(this.opts.retryDelayMs ?? 20);
    }
    throw new PodrunError('ECGROUP', `Cannot empty cgroup "${rel}": processes ${JSON.stringify(this.pids(rel))} survive`);
  }

  async remove(rel: string): Promise<void> {
    const retries = this.opts.retries ?? 100;
    for (const top of this.dirs(checkRel(rel))) {
      for (const dir of subtreeLeavesFirst(top)) {
        for (let i = 0; ; i++) {
          try {
            fs.rmdirSync(dir);
            trace(this.sink, 'cgroup', 'rmdir', dir);
            break;
          } catch (err) {
            const code = nodeErrCode(err);
            if (code === 'ENOENT') break;
            if (code !== 'EBUSY' || i >= retries) {
              throw new PodrunError('ECGROUP', `Cannot remove cgroup "${dir}": ${code ?? (err as Error).message}`, {
                cause: err,
                hint: code === 'EBUSY' ? 'processes are still in it: kill them first (killAll)' : undefined,
              });
            }
            await sleep(this.opts.retryDelayMs ?? 20);
          }
        }
      }
    }
  }
}

function safeReaddir(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (nodeErrCode(err) === 'ENOENT') return [];
    throw err;
  }
}

/** `top` and its sub-directories, deepest first. */
function subtreeLeavesFirst(top: string): string[] {
  if (!fs.existsSync(top)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of safeReaddir(d)) if (e.isDirectory()) walk(path.join(d, e.name));
    out.push(d);
  };
  walk(top);
  return out;
}

class CgroupsV2 extends Base implements Cgroups {
  readonly version = 2 as const;
  private readonly root: string;
  constructor(opts: CgroupsOptions) {
    super(opts);
    this.root = opts.root ?? '/sys/fs/cgroup';
  }
  dirs(rel: string): string[] {
    return [path.join(this.root, checkRel(rel))];
  }

  create(rel: string): void {
    const parts = checkRel(rel).split('/');
    let dir = this.root;
    for (let i = 0; i < parts.length; i++) {
      this.enableControllers(dir);
      dir = path.join(dir, parts[i]);
      this.mkdir(dir);
    }
  }

  /** Enable our controllers in `dir`'s subtree_control where available and not yet enabled. */
  private enableControllers(dir: string): void {
    const available = (readOpt(path.join(dir, 'cgroup.controllers')) ?? '').trim().split(/\s+/);
    const enabled = (readOpt(path.join(dir, 'cgroup.subtree_control')) ?? '').trim().split(/\s+/);
    const missing = V2_CONTROLLERS.filter((c) => available.includes(c) && !enabled.includes(c));
    if (missing.length === 0) return;
    this.write(path.join(dir, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
  }

  apply(rel: string, values: CgroupValues): void {
    const dir = this.dirs(rel)[0];
    for (const [file, value] of values) {
      if (file === 'memory.swap.max' && !fs.existsSync(path.join(dir, file))) continue; // no swap accounting
      this.write(path.join(dir, file), value);
    }
  }

  setLimits(rel: string, limits: CgroupLimits): void {
    this.apply(rel, limitsToV2(limits));
  }

  stats(rel: string): CgroupStats {
    const dir = this.dirs(rel)[0];
    const events = parseKeyValues(readOpt(path.join(dir, 'memory.events')));
    const cpu = parseKeyValues(readOpt(path.join(dir, 'cpu.stat')));
    return {
      memoryCurrent: num(readOpt(path.join(dir, 'memory.current'))),
      oomKills: events.get('oom_kill'),
      nrPeriods: cpu.get('nr_periods'),
      nrThrottled: cpu.get('nr_throttled'),
      throttledUsec: cpu.get('throttled_usec'),
      cpuUsageUsec: cpu.get('usage_usec'),
      pidsCurrent: num(readOpt(path.join(dir, 'pids.current'))),
    };
  }

  override async killAll(rel: string, signal: NodeJS.Signals | number = 'SIGKILL'): Promise<void> {
    const killFile = path.join(this.dirs(rel)[0], 'cgroup.kill');
    if ((signal === 'SIGKILL' || signal === 9) && fs.existsSync(killFile)) this.write(killFile, '1');
    await super.killAll(rel, signal);
  }

  mountPlan(): CgroupMountPlan {
    return { version: 2 };
  }
}

class CgroupsV1 extends Base implements Cgroups {
  readonly version = 1 as const;
  private readonly hier: Record<string, { dir: string; options: string }>;
  constructor(opts: CgroupsOptions) {
    super(opts);
    this.hier = opts.v1Hierarchies ?? discoverV1();
  }

  /** Distinct hierarchy directories (cpu and cpuacct may share one). */
  private roots(): { controller: string; dir: string }[] {
    const seen = new Set<string>();
    const out: { controller: string; dir: string }[] = [];
    for (const c of V1_CONTROLLERS) {
      const h = this.hier[c];
      if (!h || seen.has(h.dir)) continue;
      seen.add(h.dir);
      out.push({ controller: c, dir: h.dir });
    }
    return out;
  }

  dirs(rel: string): string[] {
    const r = checkRel(rel);
    return this.roots().map((h) => path.join(h.dir, r));
  }

  private dirFor(controller: string, rel: string): string | undefined {
    const h = this.hier[controller];
    return h ? path.join(h.dir, checkRel(rel)) : undefined;
  }

  create(rel: string): void {
    const parts = checkRel(rel).split('/');
    for (const h of this.roots()) {
      let dir = h.dir;
      for (const p of parts) {
        const parent = dir;
        dir = path.join(dir, p);
        const made = this.mkdir(dir);
        if (made && this.hier.cpuset?.dir === h.dir) {
          for (const f of ['cpuset.cpus', 'cpuset.mems']) {
            const v = (readOpt(path.join(parent, f)) ?? '').trim();
            if (v) this.write(path.join(dir, f), v);
          }
        }
      }
    }
  }

  apply(rel: string, values: CgroupValues): void {
    for (let i = 0; i < values.length; i++) {
      const [file, value] = values[i];
      const controller = file.split('.')[0];
      const dir = this.dirFor(controller, rel);
      if (!dir) throw new PodrunError('ECGROUP', `Cannot write "${file}": no v1 hierarchy for controller "${controller}" is mounted`);
      const target = path.join(dir, file);
      if (file === 'memory.memsw.limit_in_bytes' && !fs.existsSync(target)) continue; // no swap accounting
      if (file === 'memory.limit_in_bytes') {
        // memsw must stay >= limit: when lowering both, a limit above the old memsw fails with
        // EINVAL; then write the memsw value first.
        const next = values[i + 1];
        try {
          this.write(target, value);
        } catch (err) {
          const memsw = path.join(dir, 'memory.memsw.limit_in_bytes');
          if (!next || next[0] !== 'memory.memsw.limit_in_bytes' || !fs.existsSync(memsw)) throw err;
          this.write(memsw, next[1]);
          this.write(target, value);
          i++;
        }
        continue;
      }
      this.write(target, value);
    }
  }

  setLimits(rel: string, limits: CgroupLimits): void {
    this.apply(rel, limitsToV1(limits));
  }

  stats(rel: string): CgroupStats {
    const mem = this.dirFor('memory', rel);
    const cpu = this.dirFor('cpu', rel);
    const acct = this.dirFor('cpuacct', rel);
    const pids = this.dirFor('pids', rel);
    const oom = parseKeyValues(mem ? readOpt(path.join(mem, 'memory.oom_control')) : undefined);
    const cs = parseKeyValues(cpu ? readOpt(path.join(cpu, 'cpu.stat')) : undefined);
    const usageNs = acct ? num(readOpt(path.join(acct, 'cpuacct.usage'))) : undefined;
    const throttledNs = cs.get('throttled_time');
    return {
      memoryCurrent: mem ? num(readOpt(path.join(mem, 'memory.usage_in_bytes'))) : undefined,
      oomKills: oom.get('oom_kill'),
      memoryFailcnt: mem ? num(readOpt(path.join(mem, 'memory.failcnt'))) : undefined,
      nrPeriods: cs.get('nr_periods'),
      nrThrottled: cs.get('nr_throttled'),
      throttledUsec: throttledNs === undefined ? undefined : Math.floor(throttledNs / 1000),
      cpuUsageUsec: usageNs === undefined ? undefined : Math.floor(usageNs / 1000),
      pidsCurrent: pids ? num(readOpt(path.join(pids, 'pids.current'))) : undefined,
    };
  }

  mountPlan(): CgroupMountPlan {
    const seen = new Set<string>();
    const hierarchies: { dir: string; options: string }[] = [];
    for (const c of V1_CONTROLLERS) {
      const h = this.hier[c];
      if (!h || seen.has(h.dir)) continue;
      seen.add(h.dir);
      hierarchies.push({ dir: path.basename(h.dir), options: h.options });
    }
    return { version: 1, hierarchies };
  }
}

/** v1 hierarchies from mountinfo: controller → { dir, options (its controllers, e.g. "cpu,cpuacct") }. */
export function discoverV1(mounts: MountInfo[] = readMountinfo()): Record<string, { dir: string; options: string }> {
  const out: Record<string, { dir: string; options: string }> = {};
  for (const m of mounts) {
    if (m.fstype !== 'cgroup') continue;
    const opts = m.superOptions.split(',').filter((o) => o !== 'rw' && o !== 'ro' && !o.startsWith('release_agent') && o !== 'clone_children' && o !== 'noprefix' && o !== 'xattr');
    for (const o of opts) if (!o.startsWith('name=')) out[o] ??= { dir: m.mountPoint, options: opts.join(',') };
  }
  return out;
}

/** Detect the hierarchy (unless told) and return its driver. */
export function openCgroups(opts: CgroupsOptions = {}): Cgroups {
  const version = opts.version ?? detectCgroupVersion();
  return version === 2 ? new CgroupsV2(opts) : new CgroupsV1(opts);
}
