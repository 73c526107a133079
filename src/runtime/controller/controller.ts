/**
 * The pod lifecycle controller: kubelet's pod worker for one pod, as pure TypeScript over a
 * ContainerDriver. It decides what runs when (init containers in order, native sidecars gated on
 * their startupProbe, app containers), restarts with kubelet's back-off, runs probes and hooks,
 * stops the pod within its grace period and keeps the status in Kubernetes' shape.
 *
 * Every decision is taken in `sync()`, which is idempotent and called after each change (exit,
 * probe result, timer); the only state is in the container slots below, which `snapshot()`
 * serialises so a new supervisor can `restore()` and keep counting.
 */
import type { ContainerPlan, PodPlan, ProbePlan } from '../../spec/plan.js';
import type { Syscalls } from '../../linux/syscalls.js';
import { silent, type EventSink } from '../../util/events.js';
import { PodrunError } from '../../util/errors.js';
import { startFailureReason, type ContainerDriver, type ContainerExit, type ContainerKind } from './driver.js';
import { realClock, type Clock } from './clock.js';
import { Backoff, DEFAULT_BACKOFF, type BackoffEntry, type BackoffOptions } from './backoff.js';
import { runHook, runProbeHandler, type ProbeContext, type ProbeResult } from './probes.js';
import {
  computePhase,
  containersReadyCondition,
  initializedCondition,
  qosClass,
  type ConditionType,
  type ConditionValue,
  type ContainerState,
  type ContainerStatus,
  type PodCondition,
  type PodPhase,
  type PodStatus,
} from './status.js';

export interface ControllerOptions {
  clock?: Clock;
  backoff?: Partial<BackoffOptions>;
  events?: EventSink;
  /** For httpGet / tcpSocket / grpc probes and hooks inside the pod's network namespace. */
  syscalls?: Syscalls;
  /** Called after every status change (persist state.json here: status() and snapshot()). */
  onChange?: (ctrl: PodController) => void;
  /** The node's address, shown as status.hostIP. */
  hostIP?: string;
  /** Kubelet's minimum shutdown window after a preStop hook (2 s). */
  minGraceMs?: number;
}

type SlotState = 'waiting' | 'running' | 'terminated';

interface Terminated {
  exitCode: number;
  signal?: number;
  reason: string;
  message?: string;
  startedAt?: number;
  finishedAt: number;
  containerID?: string;
}

interface Slot {
  plan: ContainerPlan;
  kind: ContainerKind;
  restartCount: number;
  /** Containers created so far for this name (a StartError counts). */
  runs: number;
  id?: string;
  imageID: string;
  state: SlotState;
  waiting: { reason: string; message?: string };
  startedAt?: number;
  terminated?: Terminated;
  lastTerminated?: Terminated;
  started: boolean;
  ready: boolean;
  /** A start (create + postStart) is in flight. */
  busy: boolean;
  /** driver.start in flight (stop waits for it). */
  creating?: Promise<void>;
  /** Incremented per run; callbacks of older runs are dropped. */
  gen: number;
  backoff: Backoff;
  imageBackoff: Backoff;
  retryAt?: number;
  cancelTimers: (() => void)[];
  probes: ProbeWorker[];
  exitWaiters: (() => void)[];
  /** A kill in progress (a second caller waits for it instead of running preStop again). */
  killing?: Promise<void>;
  /** The restartCount of a driver.start in flight (kept in snapshots for re-adoption). */
  pendingStart?: number;
}

/** What snapshot() writes and restore() reads: plain JSON. */
export interface ControllerSnapshot {
  version: 1;
  startTime?: number;
  initializedOnce: boolean;
  terminal: boolean;
  stopping: boolean;
  deadlineExceeded: boolean;
  conditions: Partial<Record<ConditionType, { status: 'True' | 'False'; time: number; reason?: string; message?: string }>>;
  containers: {
    name: string;
    restartCount: number;
    runs: number;
    id?: string;
    imageID: string;
    state: SlotState;
    waiting: { reason: string; message?: string };
    startedAt?: number;
    terminated?: Terminated;
    lastTerminated?: Terminated;
    started: boolean;
    ready: boolean;
    backoff?: BackoffEntry;
    imageBackoff?: BackoffEntry;
    retryAt?: number;
    pendingStart?: number;
  }[];
}

type ProbeType = 'startup' | 'liveness' | 'readiness';

/** One probe of one container run, ticking like kubelet's probe worker. */
class ProbeWorker {
  private cancel?: () => void;
  private stopped = false;
  private last?: 'success' | 'failure';
  private run = 0;
  private firstTick: number;
  constructor(
    private ctrl: PodController,
    private slot: Slot,
    private gen: number,
    readonly type: ProbeType,
    private probe: ProbePlan,
  ) {
    this.firstTick = ctrl.clock.now();
  }
  start(): void {
    this.tick();
  }
  stop(): void {
    this.stopped = true;
    this.cancel?.();
  }
  private scheduleNext(): void {
    if (this.stopped) return;
    const period = this.probe.periodSeconds * 1000;
    const now = this.ctrl.clock.now();
    const next = this.firstTick + Math.floor((now - this.firstTick) / period + 1) * period;
    this.cancel = this.ctrl.clock.setTimer(next - now, () => this.tick());
  }
  private async tick(): Promise<void> {
    if (this.stopped || this.slot.gen !== this.gen || this.slot.state !== 'running') return;
    const since = this.ctrl.clock.now() - (this.slot.startedAt ?? 0);
    const skip = since < this.probe.initialDelaySeconds * 1000 || (this.type !== 'startup' && !this.slot.started);
    if (!skip) {
      const r = await this.ctrl.probeOnce(this.slot, this.probe);
      if (this.stopped || this.slot.gen !== this.gen) return;
      this.record(r);
    }
    this.scheduleNext();
  }
  private record(r: ProbeResult): void {
    const res = r.ok ? 'success' : 'failure';
    if (res === 'failure') this.ctrl.emitProbe(this.slot, this.type, 'failure', r.message);
    if (this.last === res) this.run++;
    else {
      this.last = res;
      this.run = 1;
    }
    if ((res === 'failure' && this.run < this.probe.failureThreshold) || (res === 'success' && this.run < this.probe.successThreshold)) return;
    if (this.type !== 'readiness' && res === 'failure') this.stop(); // on hold until the next container
    if (this.type === 'startup' && res === 'success') this.stop();
    this.ctrl.onProbeResult(this.slot, this.type, res, r.message, this.probe);
  }
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export class PodController {
  readonly clock: Clock;
  private readonly backoffOpts: BackoffOptions;
  private readonly events: EventSink;
  private readonly slots: Slot[];
  private startTime?: number;
  private initializedOnce = false;
  /** No container will be started again (finished, failed, stopping, past the deadline). */
  private terminal = false;
  private stopping = false;
  private deadlineExceeded = false;
  private cancelDeadline?: () => void;
  private conditions = new Map<ConditionType, { status: 'True' | 'False'; time: number; reason?: string; message?: string }>();
  private lastPhase?: PodPhase;
  private doneWaiters: ((s: PodStatus) => void)[] = [];
  private finishing?: Promise<void>;
  private cached?: PodStatus;

  constructor(
    readonly plan: PodPlan,
    readonly driver: ContainerDriver,
    private readonly opts: ControllerOptions = {},
  ) {
    this.clock = opts.clock ?? realClock;
    this.backoffOpts = { ...DEFAULT_BACKOFF, ...(opts.backoff ?? {}) };
    this.events = opts.events ?? silent;
    const waitingReason = plan.initContainers.length ? 'PodInitializing' : 'ContainerCreating';
    const mk = (c: ContainerPlan, kind: ContainerKind): Slot => ({
      plan: c,
      kind,
      restartCount: 0,
      runs: 0,
      imageID: '',
      state: 'waiting',
      waiting: { reason: waitingReason },
      started: false,
      ready: false,
      busy: false,
      gen: 0,
      backoff: new Backoff(this.backoffOpts),
      imageBackoff: new Backoff(this.backoffOpts),
      cancelTimers: [],
      probes: [],
      exitWaiters: [],
    });
    this.slots = [
      ...plan.initContainers.map((c) => mk(c, c.role === 'sidecar' ? 'sidecar' : 'init')),
      ...plan.containers.map((c) => mk(c, 'app')),
    ];
  }

  // ------------------------------------------------------------------ public API

  /** Starts the pod: init containers, sidecars, then the app containers. Returns at once. */
  start(): void {
    if (this.startTime !== undefined) throw new PodrunError('ECONFLICT', `Cannot start pod "${this.plan.name}": already started`);
    this.startTime = this.clock.now();
    this.setCondition('PodScheduled', { status: 'True' });
    this.setCondition('PodReadyToStartContainers', { status: 'True' });
    this.armDeadline();
    this.changed();
    this.sync();
  }

  /**
   * Continues from a snapshot taken by an earlier supervisor: running containers are re-adopted
   * (driver.waitExit by id), restart counts, back-off and probe state carry on.
   */
  restore(snap: ControllerSnapshot): void {
    if (snap.version !== 1) throw new PodrunError('ESTATE', `Cannot restore pod "${this.plan.name}": snapshot version ${JSON.stringify(snap.version)} is unknown`);
    this.startTime = snap.startTime ?? this.clock.now();
    this.initializedOnce = snap.initializedOnce;
    this.terminal = snap.terminal;
    this.stopping = snap.stopping;
    this.deadlineExceeded = snap.deadlineExceeded;
    for (const [k, v] of Object.entries(snap.conditions)) if (v) this.conditions.set(k as ConditionType, { ...v });
    for (const c of snap.containers) {
      const slot = this.slots.find((s) => s.plan.name === c.name);
      if (!slot) continue;
      Object.assign(slot, {
        restartCount: c.restartCount,
        runs: c.runs,
        id: c.id,
        imageID: c.imageID,
        state: c.state,
        waiting: c.waiting,
        startedAt: c.startedAt,
        terminated: c.terminated,
        lastTerminated: c.lastTerminated,
        started: c.started,
        ready: c.ready,
        retryAt: c.retryAt,
      });
      slot.backoff.entry = c.backoff;
      slot.imageBackoff.entry = c.imageBackoff;
      if (c.pendingStart !== undefined) this.adoptPendingStart(slot, c.pendingStart);
      if (slot.state === 'running' && slot.id) {
        const gen = ++slot.gen;
        this.watchExit(slot, slot.id, gen);
        if (!this.terminal) this.startProbes(slot, gen);
      }
    }
    if (!this.terminal) this.armDeadline();
    this.changed();
    if (this.stopping) void this.stop('restored while stopping');
    else if (this.terminal) void this.finish(); // stop what a finished pod still runs (sidecars)
    else this.sync();
  }

  /** A run the old supervisor was starting when it died: adopt it if the driver knows it. */
  private adoptPendingStart(slot: Slot, restartCount: number): void {
    const run = this.driver.find?.(slot.plan.name, restartCount);
    if (!run) return; // never started: sync() starts it again
    if (slot.terminated) slot.lastTerminated = slot.terminated;
    slot.terminated = undefined;
    slot.runs++;
    slot.restartCount = restartCount;
    slot.id = run.id;
    slot.imageID = run.imageID ?? slot.imageID;
    slot.state = 'running';
    slot.startedAt = run.startedAt.getTime();
    slot.started = !slot.plan.startupProbe;
    slot.ready = slot.started && !slot.plan.readinessProbe;
  }

  snapshot(): ControllerSnapshot {
    return {
      version: 1,
      startTime: this.startTime,
      initializedOnce: this.initializedOnce,
      terminal: this.terminal,
      stopping: this.stopping,
      deadlineExceeded: this.deadlineExceeded,
      conditions: Object.fromEntries(this.conditions),
      containers: this.slots.map((s) => ({
        name: s.plan.name,
        restartCount: s.restartCount,
        runs: s.runs,
        id: s.id,
        imageID: s.imageID,
        state: s.state,
        waiting: s.waiting,
        startedAt: s.startedAt,
        terminated: s.terminated,
        lastTerminated: s.lastTerminated,
        started: s.started,
        ready: s.ready,
        backoff: s.backoff.entry,
        imageBackoff: s.imageBackoff.entry,
        retryAt: s.retryAt,
        ...(s.pendingStart !== undefined ? { pendingStart: s.pendingStart } : {}),
      })),
    };
  }

  /** The pod's status in Kubernetes' shape. */
  status(): PodStatus {
    return this.cached ?? this.computeStatus();
  }

  /** Resolves once the pod is terminal and no container runs any more (Succeeded / Failed, or stopped). */
  done(): Promise<PodStatus> {
    if (this.isSettled()) return Promise.resolve(this.status());
    return new Promise((resolve) => this.doneWaiters.push(resolve));
  }

  /**
   * Stops the pod as kubelet does on deletion: preStop hooks (in parallel), then the stop signal,
   * SIGKILL at the grace deadline; app containers first, then sidecars in reverse order.
   */
  async stop(reason = 'stopped', gracePeriodSeconds = this.plan.terminationGracePeriodSeconds): Promise<PodStatus> {
    this.stopping = true;
    this.terminal = true;
    this.cancelDeadline?.();
    this.emit({ type: 'pod', pod: this.plan.name, phase: 'Terminating', message: reason });
    for (const s of this.slots) {
      for (const c of s.cancelTimers.splice(0)) c();
      for (const p of s.probes.splice(0)) p.stop();
    }
    await this.killAll(gracePeriodSeconds);
    this.changed();
    return this.status();
  }

  // ------------------------------------------------------------------ decisions

  private sync(): void {
    if (this.terminal) return;
    if (!this.initializedOnce) {
      for (const slot of this.slots.filter((s) => s.kind !== 'app')) {
        if (slot.kind === 'init') {
          if (slot.state === 'terminated' && slot.terminated?.exitCode === 0) continue;
          if (slot.busy || slot.state === 'running') return;
          if (this.ranBefore(slot) && this.plan.restartPolicy === 'Never') {
            void this.finish();
            return;
          }
          this.tryStart(slot);
          return;
        }
        if (slot.state === 'running' && slot.started && !slot.busy) continue;
        if (slot.busy || slot.state === 'running') return;
        this.tryStart(slot);
        return;
      }
      this.initializedOnce = true;
      for (const s of this.slots) {
        if (s.kind === 'app' && s.state === 'waiting' && s.waiting.reason === 'PodInitializing') s.waiting = { reason: 'ContainerCreating' };
      }
      this.changed();
    }
    for (const slot of this.slots) {
      if (slot.kind === 'init') continue;
      // kubelet starts containers one after another, and a postStart hook holds the ones after it
      // until it has finished: that hold is kept (sidecar proxies rely on it). Containers without
      // a hook before them are started at the same time; nothing in the API orders them otherwise.
      if (slot.busy && slot.plan.lifecycle.postStart) return;
      if (slot.busy) continue;
      if (slot.state === 'running') continue;
      if (slot.kind === 'sidecar' || this.shouldRun(slot)) {
        if (this.tryStart(slot) && slot.plan.lifecycle.postStart) return;
      }
    }
    if (this.plan.restartPolicy !== 'Always' && this.slots.every((s) => s.kind !== 'app' || (s.state === 'terminated' && !this.shouldRun(s)))) {
      void this.finish();
    }
  }

  private ranBefore(slot: Slot): boolean {
    return slot.terminated !== undefined || (slot.state === 'waiting' && slot.lastTerminated !== undefined);
  }

  /** Whether an app container that is not running should (re)start under the pod's restartPolicy. */
  private shouldRun(slot: Slot): boolean {
    const last = slot.state === 'terminated' ? slot.terminated : slot.state === 'waiting' ? slot.lastTerminated : undefined;
    if (!last) return true; // never ran
    if (this.plan.restartPolicy === 'Always') return true;
    if (this.plan.restartPolicy === 'OnFailure') return last.exitCode !== 0;
    return false;
  }

  /** Starts the slot now, or arms a timer for when its back-off ends. Returns true if it started. */
  private tryStart(slot: Slot): boolean {
    const now = this.clock.now();
    if (slot.retryAt !== undefined && now < slot.retryAt) {
      if (slot.cancelTimers.length === 0) this.armRetry(slot, slot.retryAt - now);
      return false;
    }
    slot.retryAt = undefined;
    const last = slot.terminated ?? (slot.state === 'waiting' ? slot.lastTerminated : undefined);
    if (last) {
      const until = slot.backoff.blockedUntil(last.finishedAt, now);
      if (until !== undefined) {
        const delay = slot.backoff.entry!.delayMs;
        if (slot.state === 'terminated') {
          slot.lastTerminated = slot.terminated;
          slot.terminated = undefined;
          slot.state = 'waiting';
        }
        slot.waiting = {
          reason: 'CrashLoopBackOff',
          message: `back-off ${fmtDuration(delay)} restarting failed container=${slot.plan.name} pod=${this.plan.name}_${this.plan.namespace}(${this.plan.uid})`,
        };
        slot.retryAt = until;
        this.armRetry(slot, until - now);
        this.emitContainer(slot, 'waiting', 'CrashLoopBackOff', slot.waiting.message);
        this.changed();
        return false;
      }
      slot.backoff.next(last.finishedAt, now);
    }
    void this.runContainer(slot);
    return true;
  }

  private armRetry(slot: Slot, ms: number): void {
    for (const c of slot.cancelTimers.splice(0)) c();
    slot.cancelTimers.push(
      this.clock.setTimer(ms, () => {
        slot.cancelTimers = [];
        this.sync();
      }),
    );
  }

  private async runContainer(slot: Slot): Promise<void> {
    slot.busy = true;
    const gen = ++slot.gen;
    const restartCount = slot.runs > 0 ? slot.restartCount + 1 : slot.restartCount;
    const previousId = slot.id;
    let resolveCreating!: () => void;
    slot.creating = new Promise<void>((r) => (resolveCreating = r));
    try {
      if (previousId) await this.driver.remove(previousId).catch((err) => this.warn(`Cannot remove container "${previousId}": ${(err as Error).message}`));
      let started;
      slot.pendingStart = restartCount;
      this.changed(); // persisted before the run exists, so a new supervisor can find it
      try {
        started = await this.driver.start(slot.plan.name, slot.kind, restartCount);
      } catch (err) {
        slot.pendingStart = undefined;
        this.startFailed(slot, err, restartCount);
        return;
      }
      slot.pendingStart = undefined;
      if (slot.terminated) slot.lastTerminated = slot.terminated;
      slot.terminated = undefined;
      slot.runs++;
      slot.restartCount = restartCount;
      slot.id = started.id;
      slot.imageID = started.imageID ?? slot.imageID;
      slot.state = 'running';
      slot.startedAt = started.startedAt.getTime();
      slot.started = !slot.plan.startupProbe;
      slot.ready = false;
      slot.imageBackoff.entry = undefined;
      this.watchExit(slot, started.id, gen);
      this.emitContainer(slot, 'running');
      this.changed();
    } finally {
      resolveCreating();
      slot.creating = undefined;
    }
    if (this.terminal) {
      slot.busy = false;
      await this.killContainer(slot, this.clock.now() + this.plan.terminationGracePeriodSeconds * 1000, this.plan.terminationGracePeriodSeconds === 0);
      this.settleIfDone();
      return;
    }
    const postStart = slot.plan.lifecycle.postStart;
    if (postStart) {
      // kubelet gives postStart no timeout; it ends with the container at the latest
      const exited = new Promise<undefined>((r) => slot.exitWaiters.push(() => r(undefined)));
      const r = await Promise.race([runHook(postStart, this.probeContext(slot), 24 * 3600_000), exited]);
      if (!r || slot.gen !== gen || slot.state !== 'running') {
        slot.busy = false;
        this.settleIfDone();
        if (!this.terminal) this.sync();
        return;
      }
      this.emit({ type: 'hook', pod: this.plan.name, container: slot.plan.name, hook: 'postStart', ok: r.ok, reason: r.ok ? undefined : 'FailedPostStartHook', message: r.message });
      if (!r.ok) {
        slot.busy = false;
        await this.killContainer(slot, this.clock.now() + this.plan.terminationGracePeriodSeconds * 1000, this.plan.terminationGracePeriodSeconds === 0);
        this.settleIfDone();
        return;
      }
    }
    slot.busy = false;
    if (this.terminal) {
      this.settleIfDone();
      return;
    }
    if (!slot.plan.readinessProbe && slot.started) slot.ready = true;
    this.startProbes(slot, gen);
    this.changed();
    this.sync();
  }

  private startFailed(slot: Slot, err: unknown, restartCount: number): void {
    const reason = startFailureReason(err);
    const message = (err as Error)?.message ?? String(err);
    const now = this.clock.now();
    slot.busy = false;
    if (this.terminal) {
      slot.state = 'waiting';
      slot.waiting = { reason, message };
      this.changed();
      return;
    }
    if (reason === 'StartError') {
      if (slot.terminated) slot.lastTerminated = slot.terminated;
      slot.runs++;
      slot.restartCount = restartCount;
      slot.state = 'terminated';
      slot.started = false;
      slot.ready = false;
      slot.terminated = { exitCode: 128, reason: 'StartError', message, finishedAt: now };
      this.emitContainer(slot, 'terminated', 'StartError', message, 128);
      this.changed();
      this.sync();
      return;
    }
    // Nothing was created: keep the previous state as lastState, wait in back-off, retry.
    slot.imageBackoff.next(now, now);
    const delay = slot.imageBackoff.entry!.delayMs;
    if (slot.terminated) {
      slot.lastTerminated = slot.terminated;
      slot.terminated = undefined;
    }
    slot.state = 'waiting';
    slot.waiting = { reason, message };
    slot.retryAt = now + delay;
    this.armRetry(slot, delay);
    if (reason === 'ErrImagePull') {
      slot.cancelTimers.push(
        this.clock.setTimer(Math.min(1000, delay), () => {
          if (slot.state === 'waiting' && slot.waiting.reason === 'ErrImagePull') {
            slot.waiting = { reason: 'ImagePullBackOff', message: `Back-off pulling image "${slot.plan.image}"` };
            this.emitContainer(slot, 'waiting', 'ImagePullBackOff', slot.waiting.message);
            this.changed();
          }
        }),
      );
    }
    this.emitContainer(slot, 'waiting', reason, message);
    this.changed();
    // The failing container waits in back-off; the others must not wait for it (kubelet starts them).
    this.sync();
  }

  private watchExit(slot: Slot, id: string, gen: number): void {
    this.driver.waitExit(id).then(
      (exit) => this.onExit(slot, gen, exit),
      (err) => {
        this.warn(`Cannot learn the exit of container "${slot.plan.name}" (${id}): ${(err as Error).message}`);
        this.onExit(slot, gen, { exitCode: 255, oomKilled: false, finishedAt: new Date(this.clock.now()) }, 'Unknown');
      },
    );
  }

  private onExit(slot: Slot, gen: number, exit: ContainerExit, forcedReason?: string): void {
    if (slot.gen !== gen || slot.state !== 'running') return;
    for (const p of slot.probes.splice(0)) p.stop();
    const reason = forcedReason ?? (exit.oomKilled ? 'OOMKilled' : exit.exitCode === 0 ? 'Completed' : 'Error');
    slot.state = 'terminated';
    slot.started = false;
    slot.ready = false;
    slot.terminated = {
      exitCode: exit.exitCode,
      signal: exit.signal,
      reason,
      startedAt: slot.startedAt,
      finishedAt: exit.finishedAt.getTime(),
      containerID: slot.id,
    };
    this.emitContainer(slot, 'terminated', reason, undefined, exit.exitCode);
    for (const w of slot.exitWaiters.splice(0)) w();
    this.changed();
    if (this.finishing || this.stopping) this.settleIfDone();
    else this.sync();
  }

  /** A Job-like pod is done (or an init container failed under Never): stop sidecars, go terminal. */
  private finish(): Promise<void> {
    if (this.finishing) return this.finishing;
    this.terminal = true;
    this.cancelDeadline?.();
    this.finishing = (async () => {
      for (const s of this.slots) for (const c of s.cancelTimers.splice(0)) c();
      await this.killAll(this.plan.terminationGracePeriodSeconds);
      this.changed();
      this.settleIfDone();
    })();
    return this.finishing;
  }

  /** Stops every running container: app (and init) containers in parallel, then sidecars in reverse. */
  private async killAll(graceSeconds: number): Promise<void> {
    await Promise.all(this.slots.map((s) => s.creating));
    const deadline = this.clock.now() + graceSeconds * 1000;
    const now = graceSeconds === 0;
    await Promise.all(this.slots.filter((s) => s.kind !== 'sidecar').map((s) => this.killContainer(s, deadline, now)));
    for (const s of this.slots.filter((x) => x.kind === 'sidecar').reverse()) await this.killContainer(s, deadline, now);
    this.settleIfDone();
  }

  /**
   * kubelet's killContainer: preStop (bounded by the time left), then the stop signal, SIGKILL when
   * the deadline passes (at least minGraceMs after the hook, unless the grace period is 0).
   */
  private killContainer(slot: Slot, deadline: number, immediate: boolean): Promise<void> {
    if (slot.state !== 'running' || !slot.id) return Promise.resolve();
    if (slot.killing) return slot.killing;
    const p = this.killContainerOnce(slot, deadline, immediate).finally(() => {
      if (slot.killing === p) slot.killing = undefined;
    });
    slot.killing = p;
    return p;
  }

  private async killContainerOnce(slot: Slot, deadline: number, immediate: boolean): Promise<void> {
    if (slot.state !== 'running' || !slot.id) return;
    const id = slot.id;
    const gen = slot.gen;
    for (const p of slot.probes.splice(0)) p.stop();
    const exited = new Promise<void>((r) => slot.exitWaiters.push(r));
    const isGone = () => slot.gen !== gen || slot.state !== 'running';
    const preStop = slot.plan.lifecycle.preStop;
    if (!immediate && preStop && deadline > this.clock.now()) {
      const r = await Promise.race([runHook(preStop, this.probeContext(slot), deadline - this.clock.now()), exited.then(() => undefined)]);
      if (r) this.emit({ type: 'hook', pod: this.plan.name, container: slot.plan.name, hook: 'preStop', ok: r.ok, reason: r.ok ? undefined : 'FailedPreStopHook', message: r.message });
    }
    if (isGone()) return;
    if (immediate) {
      await this.driver.signal(id, 'SIGKILL').catch((err) => this.warn(`Cannot kill container "${slot.plan.name}": ${(err as Error).message}`));
      await exited;
      return;
    }
    const sig = this.driver.stopSignal(slot.plan.name);
    this.emitContainer(slot, 'stopping', 'Killing', `Stopping container ${slot.plan.name} with ${String(sig)}`);
    await this.driver.signal(id, sig).catch((err) => this.warn(`Cannot signal container "${slot.plan.name}": ${(err as Error).message}`));
    const window = Math.max(deadline - this.clock.now(), this.opts.minGraceMs ?? 2000);
    let cancel: (() => void) | undefined;
    const timedOut = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => (cancel = this.clock.setTimer(window, () => r(true))))]);
    cancel?.();
    if (timedOut && !isGone()) {
      await this.driver.signal(id, 'SIGKILL').catch((err) => this.warn(`Cannot kill container "${slot.plan.name}": ${(err as Error).message}`));
      await exited;
    }
  }

  private armDeadline(): void {
    const ads = this.plan.activeDeadlineSeconds;
    if (ads === undefined || this.startTime === undefined) return;
    const ms = this.startTime + ads * 1000 - this.clock.now();
    this.cancelDeadline = this.clock.setTimer(Math.max(0, ms), () => {
      if (this.terminal && !this.finishing) return;
      this.deadlineExceeded = true;
      this.terminal = true;
      this.emit({ type: 'pod', pod: this.plan.name, phase: 'Failed', message: 'Pod was active on the node longer than the specified deadline' });
      for (const s of this.slots) {
        for (const c of s.cancelTimers.splice(0)) c();
      }
      this.changed();
      this.finishing = this.killAll(this.plan.terminationGracePeriodSeconds).then(() => {
        this.changed();
        this.settleIfDone();
      });
    });
  }

  private settleIfDone(): void {
    if (!this.isSettled()) return;
    this.changed();
    const st = this.status();
    for (const w of this.doneWaiters.splice(0)) w(st);
  }

  private isSettled(): boolean {
    return this.terminal && this.slots.every((s) => s.state !== 'running' && !s.busy && !s.creating);
  }

  // ------------------------------------------------------------------ probes

  private probeContext(slot: Slot): ProbeContext {
    return { driver: this.driver, containerId: slot.id ?? '', syscalls: this.opts.syscalls, events: this.events, clock: this.clock };
  }

  /** @internal Runs one probe now (kubelet's timeoutSeconds bounds it); used by ProbeWorker. */
  probeOnce(slot: Slot, probe: ProbePlan): Promise<ProbeResult> {
    return runProbeHandler(probe.handler, this.probeContext(slot), probe.timeoutSeconds * 1000);
  }

  private startProbes(slot: Slot, gen: number): void {
    const list: [ProbeType, ProbePlan | undefined][] = [
      ['startup', slot.plan.startupProbe],
      ['liveness', slot.plan.livenessProbe],
      ['readiness', slot.plan.readinessProbe],
    ];
    for (const [type, probe] of list) {
      if (!probe) continue;
      if (type === 'startup' && slot.started) continue;
      const w = new ProbeWorker(this, slot, gen, type, probe);
      slot.probes.push(w);
      w.start();
    }
  }

  /** @internal used by ProbeWorker */
  emitProbe(slot: Slot, probe: ProbeType, result: 'success' | 'failure', message?: string): void {
    this.emit({ type: 'probe', pod: this.plan.name, container: slot.plan.name, probe, result, message });
  }

  /** @internal A probe's reported result changed (after its thresholds); used by ProbeWorker. */
  onProbeResult(slot: Slot, type: ProbeType, res: 'success' | 'failure', message: string | undefined, probe: ProbePlan): void {
    if (slot.state !== 'running' || this.terminal) return;
    if (type === 'readiness') {
      const ready = res === 'success' && slot.started;
      if (ready !== slot.ready) {
        slot.ready = ready;
        if (ready) this.emitProbe(slot, type, 'success');
        this.changed();
      }
      return;
    }
    if (res === 'success') {
      if (type === 'startup') {
        slot.started = true;
        if (!slot.plan.readinessProbe) slot.ready = true;
        this.emitProbe(slot, type, 'success');
        this.changed();
        this.sync();
      }
      return;
    }
    // liveness or startup failed: kill; the exit handler restarts per restartPolicy
    const what = type === 'startup' ? 'startup' : 'liveness';
    this.emitContainer(slot, 'stopping', 'Unhealthy', `Container ${slot.plan.name} failed ${what} probe, will be restarted${message ? `: ${message}` : ''}`);
    const grace = probe.terminationGracePeriodSeconds ?? this.plan.terminationGracePeriodSeconds;
    void this.killContainer(slot, this.clock.now() + grace * 1000, grace === 0);
  }

  // ------------------------------------------------------------------ status

  private containerStatus(s: Slot): ContainerStatus {
    const term = (t: Terminated): ContainerState['terminated'] => ({
      exitCode: t.exitCode,
      ...(t.signal !== undefined ? { signal: t.signal } : {}),
      reason: t.reason,
      ...(t.message !== undefined ? { message: t.message } : {}),
      startedAt: iso(t.startedAt ?? 0),
      finishedAt: iso(t.finishedAt),
      ...(t.containerID ? { containerID: `podrun://${t.containerID}` } : {}),
    });
    const state: ContainerState =
      s.state === 'running'
        ? { running: { startedAt: iso(s.startedAt ?? 0) } }
        : s.state === 'terminated' && s.terminated
          ? { terminated: term(s.terminated) }
          : { waiting: { reason: s.waiting.reason, ...(s.waiting.message ? { message: s.waiting.message } : {}) } };
    const ready = s.kind === 'init' ? s.state === 'terminated' && s.terminated?.exitCode === 0 : s.state === 'running' && s.ready;
    return {
      name: s.plan.name,
      state,
      lastState: s.lastTerminated ? { terminated: term(s.lastTerminated) } : {},
      ready,
      restartCount: s.restartCount,
      image: s.plan.image,
      imageID: s.imageID,
      ...(s.id ? { containerID: `podrun://${s.id}` } : {}),
      started: s.state === 'running' && s.started,
    };
  }

  private computeStatus(): PodStatus {
    const init = this.slots.filter((s) => s.kind !== 'app').map((s) => this.containerStatus(s));
    const apps = this.slots.filter((s) => s.kind === 'app').map((s) => this.containerStatus(s));
    const settled = this.isSettled();
    let phase = computePhase(this.plan, init, apps, this.terminal && settled, this.initializedOnce);
    if (this.deadlineExceeded) phase = 'Failed';
    this.setCondition('Initialized', initializedCondition(this.plan, init, this.initializedOnce, phase));
    const cr = containersReadyCondition(this.plan, init, apps, phase);
    this.setCondition('ContainersReady', cr);
    this.setCondition('Ready', cr);
    const order: ConditionType[] = ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'];
    const conditions: PodCondition[] = [];
    for (const type of order) {
      const c = this.conditions.get(type);
      if (!c) continue;
      conditions.push({ type, status: c.status, lastProbeTime: null, lastTransitionTime: iso(c.time), ...(c.reason ? { reason: c.reason } : {}), ...(c.message ? { message: c.message } : {}) });
    }
    const net = this.driver.network();
    const st: PodStatus = {
      phase,
      conditions,
      ...(this.deadlineExceeded ? { message: 'Pod was active on the node longer than the specified deadline', reason: 'DeadlineExceeded' } : {}),
      ...(this.opts.hostIP ? { hostIP: this.opts.hostIP, hostIPs: [{ ip: this.opts.hostIP }] } : {}),
      ...(net.podIP ? { podIP: net.podIP, podIPs: [{ ip: net.podIP }] } : {}),
      ...(this.startTime !== undefined ? { startTime: iso(this.startTime) } : {}),
      ...(init.length ? { initContainerStatuses: init } : {}),
      containerStatuses: apps,
      qosClass: qosClass(this.plan),
    };
    return st;
  }

  private setCondition(type: ConditionType, v: ConditionValue): void {
    const cur = this.conditions.get(type);
    if (cur && cur.status === v.status && cur.reason === v.reason && cur.message === v.message) return;
    const time = cur && cur.status === v.status ? cur.time : this.clock.now();
    this.conditions.set(type, { status: v.status, time, reason: v.reason, message: v.message });
  }

  private changed(): void {
    this.cached = undefined;
    const st = this.computeStatus();
    this.cached = st;
    if (st.phase !== this.lastPhase) {
      this.lastPhase = st.phase;
      this.emit({ type: 'pod', pod: this.plan.name, phase: st.phase, message: st.message });
    }
    try {
      this.opts.onChange?.(this);
    } catch (err) {
      this.warn(`Cannot save the status of pod "${this.plan.name}": ${(err as Error).message}`);
    }
  }

  // ------------------------------------------------------------------ events

  private emit(ev: Parameters<EventSink>[0]): void {
    this.events(ev);
  }

  private warn(message: string): void {
    this.emit({ type: 'warning', message });
  }

  private emitContainer(slot: Slot, state: string, reason?: string, message?: string, exitCode?: number): void {
    this.emit({ type: 'container', pod: this.plan.name, container: slot.plan.name, state, reason, exitCode, restartCount: slot.restartCount, message });
  }
}

/** Go's time.Duration formatting, as kubelet's messages show it: "200ms", "1.5s", "10s", "5m0s", "1m20s". */
export function fmtDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(3)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${+((ms % 60_000) / 1000).toFixed(3)}s`;
}
