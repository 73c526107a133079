/**
 * Pod status in Kubernetes' own shape (core/v1 PodStatus), so `podrun status -o yaml` reads like
 * `kubectl get pod -o yaml`'s status. The phase and the conditions follow kubelet's rules
 * (pkg/kubelet/kubelet_pods.go getPhase, pkg/kubelet/status/generate.go), restated here.
 */
import type { PodPlan } from '../../spec/plan.js';

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export interface ContainerStateWaiting {
  reason: string;
  message?: string;
}
export interface ContainerStateRunning {
  startedAt: string;
}
export interface ContainerStateTerminated {
  exitCode: number;
  signal?: number;
  reason: string;
  message?: string;
  startedAt?: string;
  finishedAt: string;
  containerID?: string;
}
export interface ContainerState {
  waiting?: ContainerStateWaiting;
  running?: ContainerStateRunning;
  terminated?: ContainerStateTerminated;
}

export interface ContainerStatus {
  name: string;
  state: ContainerState;
  lastState: ContainerState;
  ready: boolean;
  restartCount: number;
  image: string;
  imageID: string;
  containerID?: string;
  started: boolean;
}

export type ConditionType = 'PodReadyToStartContainers' | 'Initialized' | 'Ready' | 'ContainersReady' | 'PodScheduled';

export interface PodCondition {
  type: ConditionType;
  status: 'True' | 'False';
  lastProbeTime: null;
  lastTransitionTime: string;
  reason?: string;
  message?: string;
}

export interface PodStatus {
  phase: PodPhase;
  conditions: PodCondition[];
  message?: string;
  reason?: string;
  hostIP?: string;
  hostIPs?: { ip: string }[];
  podIP?: string;
  podIPs?: { ip: string }[];
  startTime?: string;
  initContainerStatuses?: ContainerStatus[];
  containerStatuses: ContainerStatus[];
  qosClass: 'Guaranteed' | 'Burstable' | 'BestEffort';
}

const isRunning = (s: ContainerStatus) => s.state.running !== undefined;
const hasLastTermination = (s: ContainerStatus) => s.lastState.terminated !== undefined;

/**
 * kubelet's getPhase over the container statuses. `podIsTerminal`: the pod will not run any
 * container again (all done under Never/OnFailure, stopped, or past its deadline).
 * `initializedOnce`: the app containers have been started at least once.
 */
export function computePhase(plan: PodPlan, init: ContainerStatus[], apps: ContainerStatus[], podIsTerminal: boolean, initializedOnce: boolean): PodPhase {
  const byName = new Map(init.map((s) => [s.name, s]));
  let pendingRegularInit = 0;
  let failedInit = 0;
  let pendingSidecars = 0;
  let unknown = 0;
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const c of plan.initContainers) {
    const s = byName.get(c.name);
    if (c.role === 'sidecar') {
      if (!s) {
        unknown++;
        continue;
      }
      if (s.state.running) {
        if (!s.started) pendingSidecars++;
        running++;
      } else if (s.state.waiting && !hasLastTermination(s)) pendingSidecars++;
      continue;
    }
    if (!s || isRunning(s)) pendingRegularInit++;
    else if (s.state.terminated) {
      if (s.state.terminated.exitCode !== 0) failedInit++;
    } else if (s.state.waiting) {
      if (s.lastState.terminated) {
        if (s.lastState.terminated.exitCode !== 0) failedInit++;
      } else pendingRegularInit++;
    } else pendingRegularInit++;
  }
  for (const s of apps) {
    if (s.state.running) running++;
    else if (s.state.terminated) {
      stopped++;
      if (s.state.terminated.exitCode === 0) succeeded++;
    } else if (s.state.waiting) {
      if (hasLastTermination(s)) stopped++;
      else waiting++;
    } else unknown++;
  }
  if (failedInit > 0 && plan.restartPolicy === 'Never') return 'Failed';
  if (pendingRegularInit > 0 || (pendingSidecars > 0 && !initializedOnce)) return 'Pending';
  if (waiting > 0) return 'Pending';
  if (running > 0 && unknown === 0) return 'Running';
  if (running === 0 && stopped > 0 && unknown === 0) {
    if (podIsTerminal) return stopped === succeeded ? 'Succeeded' : 'Failed';
    if (plan.restartPolicy === 'Always') return 'Running';
    if (stopped === succeeded) return 'Succeeded';
    if (plan.restartPolicy === 'Never') return 'Failed';
    return 'Running';
  }
  return 'Pending';
}

/** Go's fmt of a []string: "[a b]". */
const goList = (names: string[]) => `[${names.join(' ')}]`;

export interface ConditionValue {
  status: 'True' | 'False';
  reason?: string;
  message?: string;
}

/** Initialized: every regular init container succeeded and every sidecar started (latched). */
export function initializedCondition(plan: PodPlan, init: ContainerStatus[], initializedOnce: boolean, phase: PodPhase): ConditionValue {
  if (plan.initContainers.length === 0 || initializedOnce) return { status: 'True' };
  const incomplete = plan.initContainers
    .filter((c) => {
      const s = init.find((x) => x.name === c.name);
      if (!s) return true;
      if (c.role === 'sidecar') return !(s.state.running && s.started);
      return !(s.state.terminated && s.state.terminated.exitCode === 0);
    })
    .map((c) => c.name);
  if (incomplete.length === 0) return { status: 'True' };
  if (phase === 'Succeeded') return { status: 'False', reason: 'PodCompleted' };
  return { status: 'False', reason: 'ContainersNotInitialized', message: `containers with incomplete status: ${goList(incomplete)}` };
}

/** ContainersReady (and Ready, which adds readiness gates — podrun has none). */
export function containersReadyCondition(plan: PodPlan, init: ContainerStatus[], apps: ContainerStatus[], phase: PodPhase): ConditionValue {
  if (phase === 'Succeeded') return { status: 'False', reason: 'PodCompleted' };
  if (phase === 'Failed') return { status: 'False', reason: 'PodFailed' };
  const unready: string[] = [];
  for (const c of plan.initContainers) {
    if (c.role !== 'sidecar') continue;
    const s = init.find((x) => x.name === c.name);
    if (!s?.ready) unready.push(c.name);
  }
  for (const s of apps) if (!s.ready) unready.push(s.name);
  if (unready.length) return { status: 'False', reason: 'ContainersNotReady', message: `containers with unready status: ${goList(unready)}` };
  return { status: 'True' };
}

/** The pod's QoS class from its containers' requests and limits (as the API server computes it). */
export function qosClass(plan: PodPlan): PodStatus['qosClass'] {
  const all = [...plan.initContainers, ...plan.containers];
  let anySet = false;
  let guaranteed = true;
  for (const c of all) {
    const { requests, limits } = c.resources;
    if (requests.cpuMillis !== undefined || requests.memoryBytes !== undefined || limits.cpuMillis !== undefined || limits.memoryBytes !== undefined) anySet = true;
    for (const k of ['cpuMillis', 'memoryBytes'] as const) {
      if (limits[k] === undefined || (requests[k] !== undefined && requests[k] !== limits[k])) guaranteed = false;
    }
  }
  if (!anySet) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

/** The READY column of `podrun ps`: "n/m" over app containers and sidecars, like kubectl. */
export function readyColumn(status: PodStatus, plan: PodPlan): string {
  const sidecars = plan.initContainers.filter((c) => c.role === 'sidecar').map((c) => c.name);
  const side = (status.initContainerStatuses ?? []).filter((s) => sidecars.includes(s.name));
  const total = status.containerStatuses.length + sidecars.length;
  const ready = status.containerStatuses.filter((s) => s.ready).length + side.filter((s) => s.ready).length;
  return `${ready}/${total}`;
}

/**
 * The STATUS column of `podrun ps`, as kubectl prints it: "Init:1/2", "Init:CrashLoopBackOff",
 * "PodInitializing", "CrashLoopBackOff", "Completed", "Error", "Running", the phase otherwise.
 */
export function statusColumn(status: PodStatus, plan: PodPlan): string {
  let reason: string = status.reason ?? status.phase;
  let initializing = false;
  const inits = status.initContainerStatuses ?? [];
  for (let i = 0; i < inits.length; i++) {
    const s = inits[i];
    const c = plan.initContainers.find((x) => x.name === s.name);
    if (s.state.terminated && s.state.terminated.exitCode === 0) continue;
    if (c?.role === 'sidecar' && s.started) continue;
    if (s.state.terminated) {
      reason = s.state.terminated.reason ? `Init:${s.state.terminated.reason}` : `Init:ExitCode:${s.state.terminated.exitCode}`;
    } else if (s.state.waiting && s.state.waiting.reason && s.state.waiting.reason !== 'PodInitializing') {
      reason = `Init:${s.state.waiting.reason}`;
    } else {
      reason = `Init:${i}/${plan.initContainers.length}`;
    }
    initializing = true;
    break;
  }
  const initializedTrue = status.conditions.some((c) => c.type === 'Initialized' && c.status === 'True');
  if (!initializing || initializedTrue) {
    let hasRunning = false;
    for (const s of [...status.containerStatuses].reverse()) {
      if (s.state.waiting?.reason) reason = s.state.waiting.reason;
      else if (s.state.terminated?.reason) reason = s.state.terminated.reason;
      else if (s.state.terminated) reason = s.state.terminated.signal ? `Signal:${s.state.terminated.signal}` : `ExitCode:${s.state.terminated.exitCode}`;
      else if (s.state.running && s.ready) hasRunning = true;
    }
    if (reason === 'Completed' && hasRunning) reason = status.conditions.some((c) => c.type === 'Ready' && c.status === 'True') ? 'Running' : 'NotReady';
  }
  return reason;
}

/**
 * The RESTARTS column as kubectl prints it: "0", or "3 (12s ago)" with the time since the last
 * restart. While initializing it counts init containers; afterwards sidecars and app containers.
 */
export function restartsColumn(status: PodStatus, plan: PodPlan, now = Date.now()): string {
  const sidecars = new Set(plan.initContainers.filter((c) => c.role === 'sidecar').map((c) => c.name));
  const initializedTrue = status.conditions.some((c) => c.type === 'Initialized' && c.status === 'True');
  const finished = (s: ContainerStatus) => (s.lastState.terminated ? Date.parse(s.lastState.terminated.finishedAt) : 0);
  const inits = status.initContainerStatuses ?? [];
  let list = inits;
  if (initializedTrue || inits.every((s) => (s.state.terminated && s.state.terminated.exitCode === 0) || (sidecars.has(s.name) && s.started))) {
    list = [...inits.filter((s) => sidecars.has(s.name)), ...status.containerStatuses];
  }
  const restarts = list.reduce((n, s) => n + s.restartCount, 0);
  const last = Math.max(0, ...list.map(finished));
  if (restarts === 0 || last === 0) return String(restarts);
  return `${restarts} (${humanAge(now - last)} ago)`;
}

/** kubectl's short durations: "45s", "5m12s", "3h4m", "2d5h". */
export function humanAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  return d < 8 && h % 24 ? `${d}d${h % 24}h` : `${d}d`;
}
