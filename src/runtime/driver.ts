/**
 * The runtime's ContainerDriver (src/runtime/controller/driver.ts): how the lifecycle controller's
 * decisions become processes. One PodDriver per pod; it owns that pod's state file entries for
 * container runs and writes them before and after each step.
 *
 * Exit detection: the native monitor writes <stateDir>/exit when the container ends (also when
 * this Node process was gone meanwhile); waitExit watches the directory (inotify) with a slow
 * poll as a fallback. OOMKilled comes from the container cgroup's OOM kill counter, compared
 * with its value when the run started — never guessed from exit code 137.
 */
import fs from 'node:fs';
import os from 'node:os';
import { PodrunError, isPodrunError, nodeErrCode } from '../util/errors.js';
import { trace } from '../util/events.js';
import type { ImageRecord } from '../image/types.js';
import type { ContainerPlan, ProcessSpec, PullPolicy } from '../spec/plan.js';
import type { ContainerDriver, ContainerExit, ContainerKind, ExecResult, StartedContainer } from './controller/driver.js';
import { withReason } from './controller/driver.js';
import { execInContainer, isSameProcess, processStartTime, readExitStatus, startContainerProcess } from './shim.js';
import { buildShimPlan, containerId, opaqueVia, readImageFile, runDirs } from './container.js';
import type { Syscalls } from '../linux/syscalls.js';
import { pinDir } from './paths.js';
import { containerCgroupRel, missingVolumeError, removeDir, type RuntimeContext } from './sandbox.js';
import { writeState, type ContainerRecord, type PodState } from './state.js';
import path from 'node:path';

export interface ImageProvider {
  ensureImage(ref: string, pullPolicy: PullPolicy): Promise<ImageRecord>;
}

/** Resolves the container's process from the plan, the image config and the image's files. */
export type ProcessResolver = (st: PodState, c: ContainerPlan, image: ImageRecord) => ProcessSpec | Promise<ProcessSpec>;

export interface PodDriverOptions {
  images: ImageProvider;
  resolveProcess?: ProcessResolver;
  /** Pull policy used for the first start of each container (e.g. 'IfNotPresent' when the CLI
   * already pulled the images); later restarts use the container's own policy. */
  firstPullPolicy?: PullPolicy;
  /** Records the caller already ensured (reference → record): used for each container's first start. */
  knownImages?: Record<string, ImageRecord>;
  /** Called after the state changed (default: write state.json). */
  save?: () => void;
  /** Like save, but may be coalesced with the next writes of this tick (default: save). Used
   * where the state on disk may lag: after a start (the monitor wrote STATE/started) and after an
   * exit (STATE/exit stays until the run is removed). */
  saveSoon?: () => void;
}

export class PodDriver implements ContainerDriver {
  private readonly images = new Map<string, ImageRecord>();
  private readonly pulledOnce = new Set<string>();

  constructor(
    readonly ctx: RuntimeContext,
    readonly st: PodState,
    private readonly opts: PodDriverOptions,
  ) {}

  private save(): void {
    if (this.opts.save) this.opts.save();
    else writeState(this.ctx.paths, this.st);
  }

  private container(name: string): ContainerPlan {
    const c = [...this.st.plan.initContainers, ...this.st.plan.containers].find((x) => x.name === name);
    if (!c) throw new PodrunError('ENOTFOUND', `Cannot find container "${name}" in pod "${this.st.name}"`);
    return c;
  }

  record(id: string): ContainerRecord {
    const r = this.st.containers[id];
    if (!r) throw new PodrunError('ENOTFOUND', `Cannot find container "${id}" in pod "${this.st.name}"`);
    return r;
  }

  async ensureImage(c: ContainerPlan): Promise<ImageRecord> {
    const known = this.opts.knownImages?.[c.image];
    if (known && !this.pulledOnce.has(c.name) && known.layers.every((l) => fs.existsSync(l.dir))) {
      this.pulledOnce.add(c.name);
      this.images.set(c.name, known);
      return known;
    }
    const policy = !this.pulledOnce.has(c.name) && this.opts.firstPullPolicy ? this.opts.firstPullPolicy : c.imagePullPolicy;
    const img = await this.opts.images.ensureImage(c.image, policy);
    this.pulledOnce.add(c.name);
    this.images.set(c.name, img);
    return img;
  }

  /** Prepares a run (image, process, dirs, cgroup, plan) and records it as 'created'. */
  async create(name: string, kind: ContainerKind, restartCount: number): Promise<{ rec: ContainerRecord; plan: ReturnType<typeof buildShimPlan>['plan'] }> {
    const c = this.container(name);
    const image = await this.ensureImage(c);
    const missing = missingVolumeError(this.st.plan, c);
    if (missing) throw withReason(missing, 'CreateContainerConfigError');
    let proc: ProcessSpec;
    try {
      proc = await (this.opts.resolveProcess ?? ((st, cp, img) => defaultResolver(st, cp, img, this.ctx.sys)))(this.st, c, image);
    } catch (err) {
      throw withReason(err as Error, 'CreateContainerConfigError');
    }
    const id = containerId(this.st.uid, name, restartCount);
    const dirs = runDirs(this.ctx, this.st, name, restartCount);
    const rec: ContainerRecord = {
      id,
      name,
      kind,
      restartCount,
      image: c.image,
      imageID: `${(image.names[0] ?? c.image).replace(/@.*$/, '').replace(/:[^/:]*$/, '')}@${image.digest}`,
      state: 'created',
      createdAt: new Date().toISOString(),
      logPath: dirs.logPath,
      stateDir: dirs.stateDir,
      dataDir: dirs.dataDir,
      // the container's cgroup outlives its runs: OOM kills are counted from what it had before
      cgroupRel: containerCgroupRel(this.ctx, this.st.key, name),
      oomBase: 0,
      process: proc,
      stopSignal: image.config.StopSignal,
    };
    if (this.ctx.cgroups.exists(rec.cgroupRel)) rec.oomBase = this.ctx.cgroups.stats(rec.cgroupRel).oomKills ?? 0;
    // recorded before anything is created: dirs, cgroup and monitor are found through it
    this.st.containers[id] = rec;
    this.save();
    const built = buildShimPlan({ ctx: this.ctx, st: this.st, container: c, image, process: proc, restart: restartCount });
    return { rec, plan: built.plan };
  }

  async start(name: string, kind: ContainerKind, restartCount: number): Promise<StartedContainer> {
    const { rec, plan } = await this.create(name, kind, restartCount);
    return this.startCreated(rec, plan);
  }

  async startCreated(rec: ContainerRecord, plan: ReturnType<typeof buildShimPlan>['plan']): Promise<StartedContainer> {
    let p: Awaited<ReturnType<typeof startContainerProcess>>;
    try {
      p = await startContainerProcess(plan, { sink: this.ctx.events });
    } catch (err) {
      // a shim that failed after its container init joined the cgroup may leave it behind
      if (isPodrunError(err) && err.code === 'ESHIM' && rec.cgroupRel && this.ctx.cgroups.exists(rec.cgroupRel)) {
        trace(this.ctx.events, 'cgroup', 'kill-all', `${rec.cgroupRel} after a failed start`);
        try {
          await this.ctx.cgroups.killAll(rec.cgroupRel, 'SIGKILL');
        } catch (killErr) {
          throw new PodrunError('ESHIM', `${(err as Error).message} (and killing what was left in cgroup "${rec.cgroupRel}" failed: ${(killErr as Error).message})`, { cause: err });
        }
      }
      throw err;
    }
    // 0 when the monitor already left (a very short container)
    rec.monitor = { pid: p.monitorPid, startTime: processStartTime(p.monitorPid) ?? 0 };
    rec.init = { pid: p.pid, startTime: p.startTime };
    rec.state = 'running';
    rec.startedAt = new Date().toISOString();
    // a supervisor that dies before this reaches the disk finds the run through STATE/started
    if (this.opts.saveSoon) this.opts.saveSoon();
    else this.save();
    return { id: rec.id, pid: p.pid, startedAt: new Date(rec.startedAt), imageID: rec.imageID };
  }

  /**
   * The run `restartCount` of `name` if it was started (it may have exited since): from the state
   * record, or — when the supervisor died between the shim's start and saving the record — from
   * the monitor's STATE/started file ("monitorPid pid startTime"), which is then recorded.
   */
  find(name: string, restartCount: number): StartedContainer | undefined {
    const rec = this.st.containers[containerId(this.st.uid, name, restartCount)];
    if (!rec) return undefined;
    if (rec.state === 'created' && !rec.init) {
      const started = readStartedFile(rec.stateDir);
      if (!started) return undefined;
      rec.monitor = { pid: started.monitorPid, startTime: processStartTime(started.monitorPid) ?? 0 };
      rec.init = { pid: started.pid, startTime: started.startTime };
      rec.state = 'running';
      rec.startedAt = started.at;
      this.save();
    }
    if (!rec.init) return undefined;
    return { id: rec.id, pid: rec.init.pid, startedAt: new Date(rec.startedAt ?? rec.createdAt), imageID: rec.imageID };
  }

  /** The exit of a run, if it has ended (from the monitor's exit file). */
  checkExit(id: string): ContainerExit | undefined {
    const rec = this.record(id);
    if (rec.state === 'exited') return exitOf(rec);
    if (rec.state === 'created') return undefined;
    const ex = readExitStatus(rec.stateDir);
    if (ex) {
      const oom = (this.ctx.cgroups.exists(rec.cgroupRel) ? (this.ctx.cgroups.stats(rec.cgroupRel).oomKills ?? 0) : 0) > rec.oomBase;
      rec.state = 'exited';
      rec.exitCode = ex.exitCode;
      rec.signal = ex.signal;
      rec.oomKilled = oom && (ex.signal === 9 || ex.exitCode === 137);
      rec.finishedAt = ex.finishedAt;
      // the exit file stays where it is: a supervisor that dies before this write reads it again
      if (this.opts.saveSoon) this.opts.saveSoon();
      else this.save();
      trace(this.ctx.events, 'process', 'exited', `${rec.name} ${ex.exitCode}${rec.oomKilled ? ' (OOMKilled)' : ''}`);
      return exitOf(rec);
    }
    // the monitor and the container are gone without an exit file (killed by hand, or by gc)
    if (rec.monitor && !isSameProcess(rec.monitor.pid, rec.monitor.startTime) && rec.init && !isSameProcess(rec.init.pid, rec.init.startTime)) {
      if (readExitStatus(rec.stateDir)) return this.checkExit(id);
      rec.state = 'exited';
      rec.exitCode = 137;
      rec.signal = 9;
      rec.oomKilled = false;
      rec.finishedAt = new Date().toISOString();
      this.save();
      return exitOf(rec);
    }
    return undefined;
  }

  waitExit(id: string): Promise<ContainerExit> {
    const first = this.checkExit(id);
    if (first) return Promise.resolve(first);
    const rec = this.record(id);
    return new Promise((resolve, reject) => {
      let watcher: fs.FSWatcher | undefined;
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        try {
          const ex = this.checkExit(id);
          if (!ex) return;
          watcher?.close();
          if (timer) clearInterval(timer);
          resolve(ex);
        } catch (err) {
          watcher?.close();
          if (timer) clearInterval(timer);
          reject(err);
        }
      };
      try {
        watcher = fs.watch(rec.stateDir, () => check());
        watcher.on('error', () => {});
      } catch {
        /* no inotify: the poll below does it */
      }
      timer = setInterval(check, 1000);
      check();
    });
  }

  async signal(id: string, signal: NodeJS.Signals | number): Promise<void> {
    const rec = this.record(id);
    if (rec.state !== 'running' || !rec.init) return;
    if (!isSameProcess(rec.init.pid, rec.init.startTime)) return;
    trace(this.ctx.events, 'process', 'kill', `${rec.name} pid ${rec.init.pid} ${signal}`);
    try {
      process.kill(rec.init.pid, signal);
    } catch (err) {
      if (nodeErrCode(err) !== 'ESRCH') throw err;
    }
  }

  async exec(id: string, argv: string[], timeoutMs: number): Promise<ExecResult> {
    const r = await this.execCapture(id, argv, { timeoutMs });
    return { exitCode: r.exitCode, output: r.stdout.toString('utf8') + r.stderr.toString('utf8'), timedOut: r.timedOut };
  }

  /** Runs a command in a running container, capturing stdout and stderr. */
  async execCapture(id: string, argv: string[], o: { timeoutMs?: number; input?: string | Buffer } = {}) {
    const rec = this.record(id);
    if (rec.state !== 'running' || !rec.init) throw new PodrunError('ENOTFOUND', `Cannot exec in container "${rec.name}": it is not running`);
    return execInContainer(
      { pid: rec.init.pid, startTime: rec.init.startTime, cgroupProcs: this.ctx.cgroups.procsFiles(rec.cgroupRel), process: { ...rec.process, args: argv } },
      { stdio: 'capture', timeoutMs: o.timeoutMs, input: o.input, sink: this.ctx.events },
    );
  }

  async remove(id: string): Promise<void> {
    const rec = this.st.containers[id];
    if (!rec) return;
    if (rec.state === 'running') {
      await this.signal(id, 'SIGKILL');
      await this.waitExit(id);
    }
    removeDir(this.ctx.sys, rec.stateDir, this.ctx.events);
    removeDir(this.ctx.sys, rec.dataDir, this.ctx.events);
    delete this.st.containers[id];
    this.save();
  }

  network(): { netnsPath?: string; podIP?: string } {
    if (this.st.plan.hostNetwork) return { podIP: this.st.podIP };
    return { netnsPath: path.join(pinDir(this.ctx.paths, this.st.key), 'net'), podIP: this.st.podIP };
  }

  stopSignal(name: string): NodeJS.Signals | number {
    const img = this.images.get(name);
    const recs = Object.values(this.st.containers).filter((r) => r.name === name);
    const s = img?.config.StopSignal ?? recs[recs.length - 1]?.stopSignal;
    return parseSignal(s) ?? 'SIGTERM';
  }
}

/** STATE/started of a run ("monitorPid pid startTime"), with the file's mtime as start time. */
function readStartedFile(stateDir: string): { monitorPid: number; pid: number; startTime: number; at: string } | undefined {
  const f = path.join(stateDir, 'started');
  try {
    const [m, p, t] = fs.readFileSync(f, 'utf8').trim().split(/\s+/).map(Number);
    if (!m || !p || t === undefined || Number.isNaN(t)) return undefined;
    return { monitorPid: m, pid: p, startTime: t, at: fs.statSync(f).mtime.toISOString() };
  } catch (err) {
    if (nodeErrCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** "SIGQUIT", "QUIT" or "3" → a signal; undefined when empty or unknown. */
export function parseSignal(s: string | undefined): NodeJS.Signals | number | undefined {
  if (!s) return undefined;
  if (/^\d+$/.test(s)) return Number(s);
  const name = (s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`) as NodeJS.Signals;
  if (name in os.constants.signals) return name;
  // real-time signals as Docker writes them: SIGRTMIN+3, SIGRTMAX-1 (glibc: RTMIN 34, RTMAX 64)
  const rt = /^SIGRT(MIN|MAX)(?:([+-])(\d+))?$/.exec(name);
  if (!rt) return undefined;
  const n = (rt[1] === 'MIN' ? 34 : 64) + (rt[3] ? (rt[2] === '-' ? -1 : 1) * Number(rt[3]) : 0);
  return n >= 34 && n <= 64 ? n : undefined;
}

function exitOf(rec: ContainerRecord): ContainerExit {
  return {
    exitCode: rec.exitCode ?? 255,
    ...(rec.signal ? { signal: rec.signal } : {}),
    oomKilled: rec.oomKilled ?? false,
    finishedAt: new Date(rec.finishedAt ?? Date.now()),
  };
}

/** The capability bounding set of this process (/proc/self/status CapBnd), as names. */
export async function hostCapabilities(status?: string): Promise<string[] | undefined> {
  if (status === undefined) return (ownCapabilities ??= hostCapabilities(fs.readFileSync('/proc/self/status', 'utf8')));
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status);
  if (!m) return undefined;
  const { capabilitiesFromMask } = await import('../spec/capabilities.js');
  return capabilitiesFromMask(m[1]!);
}
/** This process's own bounding set: it never grows, and podrun never drops from it. */
let ownCapabilities: Promise<string[] | undefined> | undefined;

/**
 * /etc/passwd and /etc/group of an image, looked up over its layers once per image and file:
 * layers are immutable once unpacked (a re-pulled name is another digest). A few images' worth.
 */
const imageFiles = new Map<string, string | undefined>();
function imageFile(image: ImageRecord, file: string, opaque?: ReturnType<typeof opaqueVia>): string | undefined {
  const key = `${image.digest} ${image.layers.map((l) => l.dir).join(':')} ${file}`;
  if (imageFiles.has(key)) return imageFiles.get(key);
  const text = readImageFile(image, file, opaque);
  if (imageFiles.size >= 64) imageFiles.delete(imageFiles.keys().next().value!);
  imageFiles.set(key, text);
  return text;
}

/**
 * kubelet's semantics from src/spec/image-config.ts, with the image's /etc/passwd and /etc/group
 * (looked up over the layers, never outside them) and the host's bounding set, so that a
 * privileged container asks only for capabilities this host has (HOST-FACTS: no CAP_SYS_RESOURCE).
 */
export async function defaultResolver(st: PodState, c: ContainerPlan, image: ImageRecord, sys?: Pick<Syscalls, 'lgetxattr'>): Promise<ProcessSpec> {
  const { hostNodeFacts, resolveProcess } = await import('../spec/image-config.js');
  const opaque = sys ? opaqueVia(sys) : undefined;
  const caps = await hostCapabilities();
  return resolveProcess(
    st.plan,
    c,
    image.config,
    { passwd: imageFile(image, '/etc/passwd', opaque), group: imageFile(image, '/etc/group', opaque) },
    {
      manifests: st.manifests ?? { configMaps: [], secrets: [] },
      podIP: st.podIP ?? '',
      podIPs: st.podIP ? [st.podIP] : [],
      node: hostNodeFacts(),
      ...(caps ? { hostCapabilities: caps } : {}),
    },
  );
}
