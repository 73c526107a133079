/** Test doubles for the pod lifecycle controller: a scripted ContainerDriver on a ManualClock, plan builders. */
import type { ContainerPlan, PodPlan } from '../../src/spec/plan.js';
import type { ContainerDriver, ContainerExit, ContainerKind, ExecResult, StartedContainer } from '../../src/runtime/controller/driver.js';
import { ManualClock } from '../../src/runtime/controller/clock.js';
import type { PodrunEvent } from '../../src/util/events.js';

export function container(name: string, over: Partial<ContainerPlan> = {}): ContainerPlan {
  return {
    name,
    role: 'app',
    image: 'registry.test/busybox:1.36',
    imagePullPolicy: 'IfNotPresent',
    env: [],
    envFrom: [],
    ports: [],
    resources: { requests: {}, limits: {} },
    volumeMounts: [],
    securityContext: { readOnlyRootFilesystem: false, privileged: false, capabilities: { add: [], drop: [] } },
    stdin: false,
    stdinOnce: false,
    tty: false,
    lifecycle: {},
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    ...over,
  };
}

export function pod(over: Partial<PodPlan> = {}): PodPlan {
  return {
    name: 'web',
    namespace: 'default',
    uid: '0b9c1b6e-0000-4000-8000-000000000001',
    labels: {},
    annotations: {},
    hostname: 'web',
    restartPolicy: 'Always',
    terminationGracePeriodSeconds: 30,
    shareProcessNamespace: false,
    hostNetwork: false,
    hostPID: false,
    hostIPC: false,
    dnsPolicy: 'ClusterFirst',
    dnsConfig: { nameservers: [], searches: [], options: [] },
    hostAliases: [],
    securityContext: { supplementalGroups: [], sysctls: [] },
    volumes: [],
    initContainers: [],
    containers: [container('app')],
    specDigest: 'x',
    ...over,
  };
}

/** What one run of a container does. */
export interface RunScript {
  /** Exit on its own after this many ms (never when absent). */
  exitAfterMs?: number;
  exitCode?: number;
  oomKilled?: boolean;
  /** Make driver.start throw this. */
  startError?: Error;
  /** driver.start takes this long (the clock's time) before the container runs. */
  startDelayMs?: number;
  /** Exit code on the stop signal; 'ignore' = only SIGKILL ends it. */
  onStop?: number | 'ignore';
  /** Result of exec probes/hooks (default exit 0). */
  exec?: (argv: string[]) => ExecResult | Promise<ExecResult>;
}

interface Live {
  name: string;
  id: string;
  script: RunScript;
  exited?: ContainerExit;
  waiters: ((e: ContainerExit) => void)[];
  cancel?: () => void;
}

export class FakeDriver implements ContainerDriver {
  readonly clock: ManualClock;
  /** Human-readable record of calls: "start app#0 @0", "signal app SIGTERM @5000", "exec app probe @…". */
  readonly log: string[] = [];
  readonly starts: { name: string; kind: ContainerKind; restartCount: number; at: number }[] = [];
  private live = new Map<string, Live>();
  private runsOf = new Map<string, number>();
  podIP?: string = '10.88.0.7';
  netnsPath?: string;
  stopSignals: Record<string, NodeJS.Signals | number> = {};

  constructor(
    /** Script per container name and run index (0-based). */
    public scripts: Record<string, (run: number) => RunScript> = {},
    clock = new ManualClock(),
  ) {
    this.clock = clock;
    this.t0 = clock.now();
  }

  /** The clock at construction: log times are ms since then. */
  readonly t0: number;
  private t(): number {
    return this.clock.now() - this.t0;
  }

  async start(name: string, kind: ContainerKind, restartCount: number): Promise<StartedContainer> {
    const run = this.runsOf.get(name) ?? 0;
    this.runsOf.set(name, run + 1);
    const script = this.scripts[name]?.(run) ?? {};
    this.log.push(`start ${name}#${restartCount} @${this.t()}`);
    if (script.startDelayMs) await new Promise<void>((r) => this.clock.setTimer(script.startDelayMs!, r));
    if (script.startError) throw script.startError;
    this.starts.push({ name, kind, restartCount, at: this.t() });
    const id = `${name}-${run}`;
    const live: Live = { name, id, script, waiters: [] };
    this.live.set(id, live);
    if (script.exitAfterMs !== undefined) {
      live.cancel = this.clock.setTimer(script.exitAfterMs, () => this.finish(live, script.exitCode ?? 0, script.oomKilled));
    }
    return { id, pid: 1000 + this.starts.length, startedAt: new Date(this.clock.now()), imageID: 'registry.test/busybox@sha256:' + 'a'.repeat(64) };
  }

  private finish(live: Live, exitCode: number, oomKilled = false, signal?: number): void {
    if (live.exited) return;
    live.cancel?.();
    live.exited = { exitCode, oomKilled, finishedAt: new Date(this.clock.now()), ...(signal ? { signal } : {}) };
    this.log.push(`exit ${live.name} ${exitCode} @${this.t()}`);
    for (const w of live.waiters.splice(0)) w(live.exited);
  }

  /** Ends a running container from the test. */
  exit(name: string, exitCode: number): void {
    const live = [...this.live.values()].filter((l) => l.name === name && !l.exited).pop();
    if (!live) throw new Error(`no running container ${name}`);
    this.finish(live, exitCode);
  }

  isRunning(name: string): boolean {
    return [...this.live.values()].some((l) => l.name === name && !l.exited);
  }

  waitExit(id: string): Promise<ContainerExit> {
    const live = this.live.get(id);
    if (!live) return Promise.reject(new Error(`no container ${id}`));
    if (live.exited) return Promise.resolve(live.exited);
    return new Promise((r) => live.waiters.push(r));
  }

  async signal(id: string, signal: NodeJS.Signals | number): Promise<void> {
    const live = this.live.get(id);
    if (!live || live.exited) return;
    this.log.push(`signal ${live.name} ${signal} @${this.t()}`);
    if (signal === 'SIGKILL' || signal === 9) {
      this.finish(live, 137, false);
      return;
    }
    const onStop = live.script.onStop ?? 143;
    if (onStop !== 'ignore') this.finish(live, onStop);
  }

  async exec(id: string, argv: string[], _timeoutMs: number): Promise<ExecResult> {
    const live = this.live.get(id);
    this.log.push(`exec ${live?.name ?? id} ${argv.join(' ')} @${this.t()}`);
    if (!live || live.exited) return { exitCode: 126, output: 'container not running' };
    return (await live.script.exec?.(argv)) ?? { exitCode: 0, output: '' };
  }

  async remove(id: string): Promise<void> {
    this.log.push(`remove ${id}`);
  }

  network(): { netnsPath?: string; podIP?: string } {
    return { netnsPath: this.netnsPath, podIP: this.podIP };
  }

  stopSignal(name: string): NodeJS.Signals | number {
    return this.stopSignals[name] ?? 'SIGTERM';
  }
}

export function collect(): { events: PodrunEvent[]; sink: (e: PodrunEvent) => void } {
  const events: PodrunEvent[] = [];
  return { events, sink: (e) => events.push(e) };
}
