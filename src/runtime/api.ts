/**
 * PodRuntime: the TypeScript API podrun's CLI and embedding programs use.
 *
 * - Pods, high level: upPod (sandbox + the lifecycle controller driving the containers, owned by
 *   this process), downPod (graceful stop and removal, whoever owns the pod), listPods, adoptOrphans.
 * - CRI-shaped verbs (runPodSandbox, createContainer, startContainer, stopContainer, execSync, …)
 *   for programs that want to drive containers themselves, without the controller.
 *
 * A pod has one owner process at a time (recorded by pid + start time in state.json): the
 * foreground `podrun up`, the background supervisor, or a program embedding this class. Others
 * only read its state; `downPod` asks the owner (socket or SIGTERM) or, when the owner is gone,
 * takes over and removes the pod itself.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { PodrunError } from '../util/errors.js';
import { silent, type EventSink, type PodrunEvent } from '../util/events.js';
import type { Syscalls } from '../linux/syscalls.js';
import { openCgroups, type Cgroups } from '../linux/cgroups.js';
import type { ContainerPlan, ManifestSet, PodPlan, PullPolicy } from '../spec/plan.js';
import type { NetworkOptions } from './network/index.js';
import type { ImageRecord } from '../image/types.js';
import { PodController, type ControllerSnapshot } from './controller/controller.js';
import type { BackoffOptions } from './controller/backoff.js';
import type { PodStatus } from './controller/status.js';
import { PodDriver, type ImageProvider, type ProcessResolver } from './driver.js';
import { createSandbox, podContext, teardownResources, type RuntimeContext } from './sandbox.js';
import { podSummary, type PodSummary } from './summary.js';
import { podKey, podLogDir, podRunDir, supervisorSocket, type RuntimePaths } from './paths.js';
import { findPodState, isAlive, listPodKeys, readState, selfId, toJson, withPodLock, writeState, type ContainerRecord, type PodState } from './state.js';
import { askSupervisorToStop, supervisorRequest as request } from './client.js';

export { request };
import { isSameProcess } from './shim.js';
import { gcPods, type GcReport } from './gc.js';

export interface RuntimeOptions extends RuntimePaths {
  registryConfig?: string;
  events?: EventSink;
  /** First element of every pod cgroup path; default env PODRUN_CGROUP_PARENT or "podrun". */
  cgroupParent?: string;
  /** CNI options; false = loopback only. Default: env PODRUN_NETWORK=none → false, else the
   * default network (conflist dir env PODRUN_CNI_CONF_DIR or /etc/podrun/cni). */
  network?: NetworkOptions | false;
  syscalls?: Syscalls;
  cgroups?: Cgroups;
  images?: ImageProvider;
  resolveProcess?: ProcessResolver;
  /** Restart back-off (tests shorten it). Default env PODRUN_BACKOFF_BASE_MS or kubelet's 10 s. */
  backoff?: Partial<BackoffOptions>;
}

export interface UpOptions {
  /** Replace a running pod of the same name whose spec differs (else ECONFLICT). */
  replace?: boolean;
  /** Pull policy for the first start (the CLI passes 'IfNotPresent' after pulling itself). */
  firstPullPolicy?: PullPolicy;
  /** ConfigMaps and Secrets for env valueFrom / envFrom (usually from the same file). */
  manifests?: Pick<ManifestSet, 'configMaps' | 'secrets'>;
  /** Images already ensured by the caller (reference as written → record), used for the first
   * start of each container instead of asking the image service. A promise (a registry check
   * still in flight) is awaited once the sandbox exists: the two overlap. If it rejects, the
   * sandbox is removed again and upPod rejects with its error, as if nothing had been created. */
  images?: Record<string, ImageRecord | Promise<ImageRecord>>;
  /** Cgroup parent and network for this pod (the runtime's defaults otherwise). */
  settings?: PodSettings;
}

/**
 * Per-pod settings that a caller (the CLI's global options) may choose for each pod, whatever the
 * process that runs it was started with. Unset fields take the runtime's own.
 */
export interface PodSettings {
  /** First element of the pod's cgroup paths. */
  cgroupParent?: string;
  /** 'none': loopback only; 'default': the default CNI network. */
  network?: 'none' | 'default';
  /** CNI conflist directory for the default network. */
  cniConfDir?: string;
}

export interface UpResult {
  key: string;
  /** false: the same pod was already running (a no-op). */
  created: boolean;
}

/** One pod this process supervises. */
interface Managed {
  st: PodState;
  driver: PodDriver;
  controller?: PodController;
  done?: Promise<PodStatus>;
  /** Set once the controller's done() settled (the pod finished or was stopped). */
  finished?: boolean;
  /** Called after every controller change (waitRunning wakes on them instead of polling). */
  waiters: Set<() => void>;
}

export type { PodSummary };

export class PodRuntime {
  readonly ctx: RuntimeContext;
  private readonly pods = new Map<string, Managed>();
  private readonly listeners = new Set<EventSink>();
  private readonly images: ImageProvider;
  private readonly resolveProcess?: ProcessResolver;
  private readonly backoff?: Partial<BackoffOptions>;
  /** Set when this process serves a supervisor socket (recorded as the pods' owner socket). */
  socket?: string;

  private constructor(opts: RuntimeOptions, sys: Syscalls, cgroups: Cgroups, images: ImageProvider) {
    const events: EventSink = (ev) => {
      opts.events?.(ev);
      for (const l of this.listeners) l(ev);
    };
    this.ctx = {
      paths: { root: opts.root, runRoot: opts.runRoot, logRoot: opts.logRoot },
      sys,
      cgroups,
      cgroupParent: opts.cgroupParent ?? process.env.PODRUN_CGROUP_PARENT ?? 'podrun',
      network: opts.network ?? defaultNetwork(opts.runRoot),
      events,
    };
    this.images = images;
    this.resolveProcess = opts.resolveProcess;
    const base = Number(process.env.PODRUN_BACKOFF_BASE_MS);
    this.backoff = opts.backoff ?? (base > 0 ? { baseMs: base } : undefined);
  }

  /** Opens the runtime: loads the kernel interface (ffi-rs) and the image service lazily. */
  static async open(opts: RuntimeOptions): Promise<PodRuntime> {
    const sys = opts.syscalls ?? (await import('../linux/ffi.js')).realSyscalls;
    const cgroups = opts.cgroups ?? openCgroups({ sink: opts.events });
    // the image code (undici, zod) costs seconds to load on a busy machine: only when needed
    let svc: Promise<ImageProvider> | undefined;
    const images: ImageProvider = opts.images ?? {
      ensureImage: async (ref, policy) => {
        svc ??= import('../image/index.js').then(({ ImageService }) => new ImageService({ root: opts.root, registryConfigPath: opts.registryConfig, events: opts.events, syscalls: sys }));
        return (await svc).ensureImage(ref, policy);
      },
    };
    return new PodRuntime(opts, sys, cgroups, images);
  }

  /** Subscribes to the event stream (pod and container state changes, logs, traces). */
  on(listener: EventSink): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(ev: PodrunEvent): void {
    this.ctx.events(ev);
  }

  // -------------------------------------------------------------------------------------------
  // Pods
  // -------------------------------------------------------------------------------------------

  /**
   * Runs a pod and supervises it from this process: creates the sandbox and starts the lifecycle
   * controller (init containers, sidecars, app containers, restarts, probes). Returns once the
   * controller runs; use waitRunning() / waitDone() to wait for containers.
   * A second call for a running pod with the same spec is a no-op; a different spec is refused
   * unless `replace`. Two concurrent calls create exactly one sandbox (per-pod lock).
   */
  async upPod(plan: PodPlan, o: UpOptions = {}): Promise<UpResult> {
    const key = podKey(plan.namespace, plan.name);
    return withPodLock(this.ctx.paths, key, async () => {
      const existing = this.pods.get(key)?.st ?? readState(this.ctx.paths, key);
      if (existing && existing.sandbox !== 'Stopped') {
        const same = existing.specHash === plan.specDigest;
        const ownerAlive = isAlive(existing.owner);
        if (same && (ownerAlive || this.pods.has(key))) return { key, created: false };
        if (same && !ownerAlive && existing.sandbox === 'Ready') {
          this.adopt(existing);
          return { key, created: false };
        }
        if (!same && !o.replace) {
          throw new PodrunError('ECONFLICT', `Cannot run pod "${plan.namespace}/${plan.name}": a pod of that name already exists with a different spec`, {
            hint: 'use "podrun up --replace" to replace it, or "podrun down" it first',
          });
        }
        await this.downLocked(key, existing);
      }
      this.checkHostPorts(plan, key);
      const st = newState(key, plan);
      st.owner = { ...selfId(), socket: this.socket };
      if (o.manifests) st.manifests = { configMaps: o.manifests.configMaps, secrets: o.manifests.secrets };
      this.applySettings(st, o.settings);
      // the first write is createSandbox's: it records every resource before making the first
      this.emit({ type: 'pod', pod: plan.name, phase: 'Pending', message: 'creating sandbox' });
      await createSandbox(this.podCtx(st), st);
      let images: Record<string, ImageRecord> | undefined;
      try {
        images = o.images && Object.fromEntries(await Promise.all(Object.entries(o.images).map(async ([ref, r]) => [ref, await r] as const)));
      } catch (err) {
        await teardownResources(this.podCtx(st), st).catch(() => {});
        throw err;
      }
      // 'Ready' reaches the state file with the first container's record, written before that
      // container is created (a pod left 'Creating' by a crash is gc's, not re-adopted)
      st.sandbox = 'Ready';
      this.startController(st, undefined, o.firstPullPolicy, images);
      return { key, created: true };
    });
  }

  /** Records the pod's cgroup parent and network (settings over the runtime's defaults). */
  private applySettings(st: PodState, settings: PodSettings = {}): void {
    const parent = settings.cgroupParent ?? this.ctx.cgroupParent;
    st.cgroup = { parent, pod: st.key };
    if (settings.network === 'none') st.network = false;
    else if (settings.network === 'default' || settings.cniConfDir !== undefined) st.network = { confDir: settings.cniConfDir };
    else st.network = this.ctx.network ? { confDir: this.ctx.network.confDir } : false;
  }

  /** The runtime context for one pod: its own cgroup parent and network, as it was made. */
  podCtx(st: PodState): RuntimeContext {
    return podContext(this.ctx, st);
  }

  /** A hostPort used by another live pod is a clash (checked before anything is created). */
  private checkHostPorts(plan: PodPlan, key: string): void {
    const mine = [...plan.initContainers, ...plan.containers].flatMap((c) => c.ports.filter((p) => p.hostPort).map((p) => `${p.protocol}/${p.hostIP}/${p.hostPort}`));
    if (!mine.length) return;
    for (const other of listPodKeys(this.ctx.paths)) {
      if (other === key) continue;
      const st = readState(this.ctx.paths, other);
      if (!st || st.sandbox === 'Stopped') continue;
      for (const c of [...st.plan.initContainers, ...st.plan.containers]) {
        for (const p of c.ports) {
          if (p.hostPort && mine.includes(`${p.protocol}/${p.hostIP}/${p.hostPort}`)) {
            throw new PodrunError('ECONFLICT', `Cannot run pod "${plan.name}": hostPort ${p.hostPort}/${p.protocol} is already used by pod "${st.namespace}/${st.name}"`);
          }
        }
      }
    }
  }

  private startController(st: PodState, snapshot: ControllerSnapshot | undefined, firstPullPolicy?: PullPolicy, known?: Record<string, ImageRecord>): Managed {
    const save = () => {
      pendingSave = false;
      writeState(this.ctx.paths, st);
    };
    // Controller changes come in bursts (a start is several changes in one tick): their state is
    // written once per burst. The driver's own saves (a record before what it names is created)
    // stay immediate and also carry any pending change.
    let pendingSave = false;
    const saveSoon = () => {
      if (pendingSave) return;
      pendingSave = true;
      setImmediate(() => {
        if (pendingSave && fs.existsSync(podRunDir(this.ctx.paths, st.key))) save();
        pendingSave = false;
      });
    };
    const driver = new PodDriver(this.podCtx(st), st, { images: this.images, resolveProcess: this.resolveProcess, firstPullPolicy, knownImages: known, save, saveSoon });
    const m: Managed = { st, driver, waiters: new Set() };
    this.pods.set(st.key, m);
    const controller = new PodController(st.plan, driver, {
      events: this.ctx.events,
      syscalls: this.ctx.sys,
      backoff: this.backoff,
      hostIP: hostIP(),
      onChange: (c) => {
        st.status = { ...c.status(), podIP: st.podIP, ...(st.podIP ? { podIPs: [{ ip: st.podIP }] } : {}) };
        st.controller = c.snapshot();
        saveSoon();
        for (const w of m.waiters) w();
      },
    });
    m.controller = controller;
    if (snapshot) controller.restore(snapshot);
    else controller.start();
    m.done = controller.done();
    void m.done.then(
      () => (m.finished = true),
      () => (m.finished = true),
    );
    return m;
  }

  /** Takes over a pod whose owner is gone: containers keep running, their exits are learned. */
  private adopt(st: PodState): Managed {
    st.owner = { ...selfId(), socket: this.socket };
    writeState(this.ctx.paths, st);
    this.emit({ type: 'pod', pod: st.name, phase: 'Adopted', message: `re-adopted by pid ${process.pid}` });
    return this.startController(st, st.controller as ControllerSnapshot | undefined);
  }

  /** Adopts every pod in the run root whose owner died (a SIGKILLed supervisor). */
  async adoptOrphans(): Promise<string[]> {
    const out: string[] = [];
    for (const key of listPodKeys(this.ctx.paths)) {
      if (this.pods.has(key)) continue;
      await withPodLock(this.ctx.paths, key, async () => {
        const st = readState(this.ctx.paths, key);
        if (!st || st.sandbox !== 'Ready' || isAlive(st.owner)) return;
        if (isSettled(st)) return;
        this.adopt(st);
        out.push(key);
      }).catch((err) => this.emit({ type: 'warning', message: `Cannot adopt pod "${key}": ${(err as Error).message}` }));
    }
    return out;
  }

  /** Keys of the pods this process supervises and that still run containers. */
  activePods(): string[] {
    // A pod whose controller has not finished is active without asking /proc (the supervisor
    // calls this every 250 ms); a finished one, or one without a controller, is checked by pid.
    return [...this.pods.values()].filter((m) => (m.controller && !m.finished) || !isSettled(m.st)).map((m) => m.st.key);
  }

  /** Resolves when every app container runs, or rejects with why one does not. */
  async waitRunning(key: string, timeoutMs = 120_000): Promise<PodStatus> {
    const m = this.pods.get(key);
    if (!m?.controller) throw new PodrunError('ENOTFOUND', `Cannot wait for pod "${key}": it is not supervised by this process`);
    const end = Date.now() + timeoutMs;
    for (;;) {
      const s = m.controller.status();
      const why = notRunningReason(s);
      if (why === undefined) return s;
      if (why !== 'pending') throw new PodrunError('EINTERNAL', `Cannot run pod "${m.st.name}": ${why}`);
      if (Date.now() > end) throw new PodrunError('ETIMEOUT', `Cannot run pod "${m.st.name}": containers not running after ${timeoutMs / 1000} s`);
      // woken by the next controller change; the timer only bounds a missed one
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          m.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, 250);
        m.waiters.add(wake);
      });
    }
  }

  /** Resolves when the pod finished (Succeeded/Failed) or was stopped. */
  waitDone(key: string): Promise<PodStatus> {
    const m = this.pods.get(key);
    if (!m?.done) throw new PodrunError('ENOTFOUND', `Cannot wait for pod "${key}": it is not supervised by this process`);
    return m.done;
  }

  /** The live controller status of a pod this process supervises, else the stored one. */
  podStatus(key: string): PodStatus | undefined {
    const m = this.pods.get(key);
    if (m?.controller) return m.controller.status();
    return readState(this.ctx.paths, key)?.status as PodStatus | undefined;
  }

  /** The driver of a pod this process supervises (exec, signals). */
  driverOf(key: string): PodDriver | undefined {
    return this.pods.get(key)?.driver;
  }

  /**
   * Stops a pod gracefully (preStop, stop signal, grace period, SIGKILL) and removes everything
   * it created. Works whoever owns it: this process, another live owner (asked over its socket,
   * or with SIGTERM for a foreground `up`), or nobody (taken over here).
   */
  async downPod(key: string, o: { gracePeriodSeconds?: number; /** the owning supervisor was already asked (askSupervisorToStop) */ ownerAsked?: boolean } = {}): Promise<void> {
    const st0 = readState(this.ctx.paths, key);
    if (!st0 && !fs.existsSync(podRunDir(this.ctx.paths, key))) throw new PodrunError('ENOTFOUND', `Cannot stop pod "${key}": no such pod`);
    const owner = st0?.owner;
    if (st0 && !o.ownerAsked && !this.pods.has(key) && owner && isAlive(owner) && owner.pid !== process.pid) {
      await this.askOwner(key, st0, o.gracePeriodSeconds);
      if (!fs.existsSync(podRunDir(this.ctx.paths, key))) return;
    }
    const graceMs = (o.gracePeriodSeconds ?? st0?.plan.terminationGracePeriodSeconds ?? 30) * 1000;
    await withPodLock(
      this.ctx.paths,
      key,
      async () => {
        // a pod this process runs: its state in memory (the file may lag by one write burst)
        const st = this.pods.get(key)?.st ?? readState(this.ctx.paths, key);
        if (!st && !fs.existsSync(podRunDir(this.ctx.paths, key))) return; // the owner finished meanwhile
        await this.downLocked(key, st, o.gracePeriodSeconds);
      },
      graceMs + 60_000,
    );
  }

  private async askOwner(key: string, st: PodState, grace?: number): Promise<void> {
    const owner = st.owner!;
    const waitMs = ((grace ?? st.plan.terminationGracePeriodSeconds) + 60) * 1000;
    if (owner.socket) {
      await askSupervisorToStop(this.ctx.paths, key, grace, (message) => this.emit({ type: 'warning', message }));
      return;
    }
    // a foreground `podrun up`: it stops its pods on SIGTERM
    try {
      process.kill(owner.pid, 'SIGTERM');
    } catch {
      return;
    }
    const end = Date.now() + waitMs;
    while (Date.now() < end && fs.existsSync(podRunDir(this.ctx.paths, key)) && isAlive(owner)) await sleep(100);
  }

  /** With the pod lock held: stop containers (through the controller when we supervise it), remove. */
  private async downLocked(key: string, st: PodState | undefined, grace?: number): Promise<void> {
    const m = this.pods.get(key);
    if (st) {
      st.sandbox = 'Stopping';
      writeState(this.ctx.paths, st);
    }
    this.emit({ type: 'pod', pod: st?.name ?? key, phase: 'Terminating' });
    if (m?.controller) {
      await m.controller.stop('deleted', grace);
    } else if (st) {
      // nobody supervises it: adopt the containers just long enough to stop them gracefully
      const driver = new PodDriver(this.podCtx(st), st, { images: this.images });
      const ctrl = new PodController(st.plan, driver, { events: this.ctx.events, syscalls: this.ctx.sys });
      const snap = st.controller as ControllerSnapshot | undefined;
      if (snap) {
        ctrl.restore({ ...snap, stopping: false, terminal: true });
        await ctrl.stop('deleted', grace);
      }
      for (const r of Object.values(st.containers)) if (r.state === 'running') await driver.signal(r.id, 'SIGKILL');
    }
    this.pods.delete(key);
    const target = st ?? readState(this.ctx.paths, key);
    if (target) await teardownResources(this.podCtx(target), target);
    else fs.rmSync(podRunDir(this.ctx.paths, key), { recursive: true, force: true });
    this.emit({ type: 'pod', pod: st?.name ?? key, phase: 'Deleted' });
  }

  /** Every pod in the run root, with its stored status. */
  listPods(): PodSummary[] {
    const out: PodSummary[] = [];
    for (const key of listPodKeys(this.ctx.paths)) {
      // a pod this process runs: its state in memory (the file may lag by one write burst)
      let st: PodState | undefined = this.pods.get(key)?.st;
      try {
        st ??= readState(this.ctx.paths, key);
      } catch {
        continue;
      }
      if (!st) continue;
      out.push(summary(st, this.pods.get(key)));
    }
    return out;
  }

  /** Finds a pod by "name", "namespace/name" or key. */
  findPod(ref: string): PodState {
    return findPodState(this.ctx.paths, ref);
  }

  /** Removes what crashed pods left (pods whose owner is gone, stray cgroups and networks). */
  gc(): Promise<GcReport> {
    return gcPods(this.ctx, { skip: new Set(this.pods.keys()) });
  }

  /** Stops supervising (does not stop containers): for a supervisor shutting down. */
  detachAll(): void {
    this.pods.clear();
  }

  // -------------------------------------------------------------------------------------------
  // CRI-shaped verbs
  // -------------------------------------------------------------------------------------------

  /** Creates a pod sandbox (no containers); returns its id (the pod key "<ns>_<name>"). */
  async runPodSandbox(plan: PodPlan): Promise<string> {
    const key = podKey(plan.namespace, plan.name);
    return withPodLock(this.ctx.paths, key, async () => {
      const existing = this.pods.get(key)?.st ?? readState(this.ctx.paths, key);
      if (existing) throw new PodrunError('ECONFLICT', `Cannot create sandbox "${key}": it already exists`);
      const st = newState(key, plan);
      st.owner = { ...selfId(), socket: this.socket };
      this.applySettings(st);
      writeState(this.ctx.paths, st);
      await createSandbox(this.podCtx(st), st);
      st.sandbox = 'Ready';
      writeState(this.ctx.paths, st);
      this.pods.set(key, { st, driver: new PodDriver(this.podCtx(st), st, { images: this.images, resolveProcess: this.resolveProcess }), waiters: new Set() });
      return key;
    });
  }

  /** Stops every container of the sandbox (SIGKILL after the grace period); keeps the sandbox. */
  async stopPodSandbox(id: string, gracePeriodSeconds?: number): Promise<void> {
    const m = this.managed(id);
    if (m.controller) {
      await m.controller.stop('stopped', gracePeriodSeconds);
      return;
    }
    await Promise.all(Object.values(m.st.containers).filter((r) => r.state === 'running').map((r) => this.stopContainer(r.id, gracePeriodSeconds ?? m.st.plan.terminationGracePeriodSeconds)));
    m.st.sandbox = 'Stopped';
    writeState(this.ctx.paths, m.st);
  }

  /** Removes the sandbox and everything in it (stopping what still runs). */
  async removePodSandbox(id: string): Promise<void> {
    await this.downPod(id, { gracePeriodSeconds: 0 });
  }

  podSandboxStatus(id: string): PodSummary {
    const st = readState(this.ctx.paths, id) ?? this.findPod(id);
    return summary(st, this.pods.get(st.key));
  }

  listPodSandbox(filter: { namespace?: string; name?: string } = {}): PodSummary[] {
    return this.listPods().filter((p) => (!filter.namespace || p.namespace === filter.namespace) && (!filter.name || p.name === filter.name));
  }

  /** Creates (does not start) a container of the sandbox from its plan; returns the container id. */
  async createContainer(sandboxId: string, container: string | ContainerPlan): Promise<string> {
    const m = this.managed(sandboxId);
    const name = typeof container === 'string' ? container : container.name;
    if (typeof container !== 'string' && ![...m.st.plan.initContainers, ...m.st.plan.containers].some((c) => c.name === name)) m.st.plan.containers.push(container);
    const restart = Object.values(m.st.containers).filter((r) => r.name === name).reduce((n, r) => Math.max(n, r.restartCount + 1), 0);
    const { rec, plan } = await m.driver.create(name, 'app', restart);
    this.pendingPlans.set(rec.id, plan);
    return rec.id;
  }
  private readonly pendingPlans = new Map<string, Parameters<PodDriver['startCreated']>[1]>();

  async startContainer(id: string): Promise<void> {
    const { m, rec } = this.container(id);
    const plan = this.pendingPlans.get(id);
    if (!plan || rec.state !== 'created') throw new PodrunError('ECONFLICT', `Cannot start container "${id}": it is ${rec.state}`);
    this.pendingPlans.delete(id);
    await m.driver.startCreated(rec, plan);
  }

  /** Stop signal, then SIGKILL after `timeoutSeconds`; resolves when the container has exited. */
  async stopContainer(id: string, timeoutSeconds = 30): Promise<void> {
    const { m, rec } = this.container(id);
    if (rec.state !== 'running') return;
    await m.driver.signal(id, m.driver.stopSignal(rec.name));
    const exited = m.driver.waitExit(id);
    const t = await Promise.race([exited.then(() => 'exited'), sleep(timeoutSeconds * 1000).then(() => 'timeout')]);
    if (t === 'timeout') {
      await m.driver.signal(id, 'SIGKILL');
      await exited;
    }
  }

  async removeContainer(id: string): Promise<void> {
    const { m } = this.container(id);
    await m.driver.remove(id);
  }

  listContainers(filter: { sandboxId?: string; name?: string; state?: ContainerRecord['state'] } = {}): (ContainerRecord & { sandboxId: string })[] {
    const out: (ContainerRecord & { sandboxId: string })[] = [];
    for (const p of this.listPods()) {
      if (filter.sandboxId && p.key !== filter.sandboxId) continue;
      for (const c of p.containers) if ((!filter.name || c.name === filter.name) && (!filter.state || c.state === filter.state)) out.push({ ...c, sandboxId: p.key });
    }
    return out;
  }

  containerStatus(id: string): ContainerRecord & { sandboxId: string } {
    const { m, rec } = this.container(id);
    m.driver.checkExit(id);
    return { ...rec, sandboxId: m.st.key };
  }

  /** Runs a command in a running container and returns its output and status. */
  async execSync(id: string, cmd: string[], timeoutMs = 30_000): Promise<{ exitCode: number; stdout: string; stderr: string; timedOut: boolean }> {
    const { key, driver } = this.driverFor(id);
    void key;
    const r = await driver.execCapture(id, cmd, { timeoutMs });
    return { exitCode: r.exitCode, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), timedOut: r.timedOut };
  }

  /** A container id → a driver (of a supervised pod, or a read-only one over the stored state). */
  driverFor(id: string): { key: string; driver: PodDriver; rec: ContainerRecord } {
    for (const m of this.pods.values()) if (m.st.containers[id]) return { key: m.st.key, driver: m.driver, rec: m.st.containers[id] };
    for (const key of listPodKeys(this.ctx.paths)) {
      const st = readState(this.ctx.paths, key);
      if (st?.containers[id]) {
        const driver = new PodDriver(this.podCtx(st), st, { images: this.images, save: () => {} });
        return { key, driver, rec: st.containers[id] };
      }
    }
    throw new PodrunError('ENOTFOUND', `Cannot find container "${id}"`);
  }

  private managed(id: string): Managed {
    const m = this.pods.get(id);
    if (m) return m;
    const st = readState(this.ctx.paths, id);
    if (!st) throw new PodrunError('ENOTFOUND', `Cannot find pod sandbox "${id}"`);
    if (isAlive(st.owner) && st.owner!.pid !== process.pid) {
      throw new PodrunError('ECONFLICT', `Cannot change pod sandbox "${id}": it is supervised by pid ${st.owner!.pid}`);
    }
    st.owner = { ...selfId(), socket: this.socket };
    writeState(this.ctx.paths, st);
    const nm: Managed = { st, driver: new PodDriver(this.podCtx(st), st, { images: this.images, resolveProcess: this.resolveProcess }), waiters: new Set() };
    this.pods.set(id, nm);
    return nm;
  }

  private container(id: string): { m: Managed; rec: ContainerRecord } {
    for (const m of this.pods.values()) if (m.st.containers[id]) return { m, rec: m.st.containers[id] };
    for (const key of listPodKeys(this.ctx.paths)) {
      const st = readState(this.ctx.paths, key);
      if (st?.containers[id]) {
        const m = this.managed(key);
        return { m, rec: m.st.containers[id] };
      }
    }
    throw new PodrunError('ENOTFOUND', `Cannot find container "${id}"`);
  }
}

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

function newState(key: string, plan: PodPlan): PodState {
  return {
    version: 1,
    key,
    name: plan.name,
    namespace: plan.namespace,
    uid: plan.uid,
    specHash: plan.specDigest,
    plan,
    createdAt: new Date().toISOString(),
    sandbox: 'Creating',
    hostname: plan.hostNetwork ? os.hostname() : plan.hostname,
    resources: [],
    containers: {},
  };
}

function defaultNetwork(runRoot: string): NetworkOptions | false {
  const mode = process.env.PODRUN_NETWORK;
  if (mode === 'none') return false;
  return { runRoot, ...(process.env.PODRUN_CNI_CONF_DIR ? { confDir: process.env.PODRUN_CNI_CONF_DIR } : {}) };
}

function hostIP(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

/** A pod whose controller finished: nothing runs and nothing will be started again. */
export function isSettled(st: PodState): boolean {
  const s = st.status as PodStatus | undefined;
  const running = Object.values(st.containers).some((c) => c.state === 'running' && c.init && isSameProcess(c.init.pid, c.init.startTime));
  if (running) return false;
  if (st.sandbox === 'Stopping' || st.sandbox === 'Stopped') return true;
  return s?.phase === 'Succeeded' || s?.phase === 'Failed';
}

function summary(st: PodState, m: Managed | undefined): PodSummary {
  const s = podSummary(st, m?.controller ? { status: m.controller.status() } : undefined);
  return m ? { ...s, supervised: true } : s;
}

const PENDING_REASONS = new Set(['ContainerCreating', 'PodInitializing']);

/** undefined = every app container runs (or the pod already Succeeded); 'pending' = still starting; else why not. */
export function notRunningReason(s: PodStatus): string | undefined {
  if (s.phase === 'Succeeded') return undefined;
  if (s.phase === 'Failed') {
    const t = s.containerStatuses.find((c) => c.state.terminated);
    return `pod ${s.phase}${s.reason ? ` (${s.reason})` : ''}${t ? `: container "${t.name}" exited with ${t.state.terminated!.exitCode} (${t.state.terminated!.reason})` : ''}`;
  }
  for (const c of [...(s.initContainerStatuses ?? []), ...s.containerStatuses]) {
    const w = c.state.waiting;
    if (w && !PENDING_REASONS.has(w.reason)) return `container "${c.name}" is waiting: ${w.reason}${w.message ? `: ${w.message}` : ''}`;
  }
  if (s.containerStatuses.every((c) => c.state.running)) return undefined;
  const t = s.containerStatuses.find((c) => c.state.terminated);
  if (t && s.containerStatuses.every((c) => !c.state.waiting)) return `container "${t.name}" exited with ${t.state.terminated!.exitCode} (${t.state.terminated!.reason})`;
  return 'pending';
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));


export function supervisorSocketPath(p: RuntimePaths): string {
  return supervisorSocket(p);
}

export { podKey, podLogDir };
