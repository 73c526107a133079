/**
 * Pod resources → cgroup control-file values, for cgroup v2 and the v1 fallback.
 * Pure functions; the runtime writes the files in the order given (Record insertion order).
 * The mapping is documented in docs/resources.md; it follows kubelet (pkg/kubelet/cm) and runc.
 *
 *  limits.cpu      v2 cpu.max = "<quota> 100000", quota = millis × 100 µs (min 1000); none → "max 100000"
 *                  v1 cpu.cfs_period_us = 100000, cpu.cfs_quota_us = quota; none → -1
 *  requests.cpu    v1 cpu.shares = millis × 1024 / 1000 (min 2, max 262144); none → 2
 *                  v2 cpu.weight = 1 + ((shares − 2) × 9999) / 262142 (integer division)
 *  limits.memory   v2 memory.max = bytes, memory.swap.max = 0 (no swap beyond the limit); none → "max"
 *                  v1 memory.limit_in_bytes = bytes, then memory.memsw.limit_in_bytes = bytes; none → -1
 *  pids            pids.max = DEFAULT_PIDS_MAX (4096) unless overridden, both versions
 */
import type { ContainerPlan, PodPlan, ResourcesPlan, ResourceValues } from './plan.js';

/** CFS period, µs (kubelet's default). */
export const CPU_PERIOD_US = 100_000;
/** Smallest quota the kernel accepts, µs (kubelet's MinQuotaPeriod). */
export const MIN_QUOTA_US = 1_000;
export const MIN_SHARES = 2;
export const MAX_SHARES = 262_144;
/** Default pids.max for a pod and each of its containers (podman uses 2048, CRI-O 1024; 4096 leaves room
 * for build-like workloads while still stopping a fork bomb). Overridable through `opts.pidsMax`. */
export const DEFAULT_PIDS_MAX = 4096;

export interface CgroupValues {
  /** cgroup v2 file → value, in write order. */
  v2: Record<string, string>;
  /** cgroup v1, per controller hierarchy (cpu, memory, pids), file → value, in write order. */
  v1: { cpu: Record<string, string>; memory: Record<string, string>; pids: Record<string, string> };
}

export interface CgroupOptions {
  /** pids.max; default DEFAULT_PIDS_MAX; 0 or undefined → default; "max" allowed. */
  pidsMax?: number | 'max';
}

/** kubelet MilliCPUToShares. */
export function milliCpuToShares(millis: number | undefined): number {
  if (!millis) return MIN_SHARES;
  const shares = Math.floor((millis * 1024) / 1000);
  return Math.min(MAX_SHARES, Math.max(MIN_SHARES, shares));
}

/** Kubernetes' (and runc's classic) shares → weight conversion: [2, 262144] → [1, 10000]. */
export function sharesToWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** kubelet MilliCPUToQuota: quota in µs for the 100 ms period; undefined = no limit. */
export function milliCpuToQuota(millis: number | undefined): number | undefined {
  if (!millis) return undefined;
  return Math.max(MIN_QUOTA_US, Math.floor((millis * CPU_PERIOD_US) / 1000));
}

/** Control-file values for one cgroup with these (already defaulted) resources. */
export function cgroupValues(res: ResourcesPlan, opts: CgroupOptions = {}): CgroupValues {
  const quota = milliCpuToQuota(res.limits.cpuMillis);
  const shares = milliCpuToShares(res.requests.cpuMillis);
  const mem = res.limits.memoryBytes;
  const pids = String(opts.pidsMax || DEFAULT_PIDS_MAX);
  return {
    v2: {
      'cpu.max': `${quota ?? 'max'} ${CPU_PERIOD_US}`,
      'cpu.weight': String(sharesToWeight(shares)),
      'memory.max': mem === undefined ? 'max' : String(mem),
      'memory.swap.max': '0',
      'pids.max': pids,
    },
    v1: {
      cpu: {
        'cpu.cfs_period_us': String(CPU_PERIOD_US),
        'cpu.cfs_quota_us': String(quota ?? -1),
        'cpu.shares': String(shares),
      },
      // limit_in_bytes first: the kernel requires memsw ≥ limit at every moment.
      memory: {
        'memory.limit_in_bytes': String(mem ?? -1),
        'memory.memsw.limit_in_bytes': String(mem ?? -1),
      },
      pids: { 'pids.max': pids },
    },
  };
}

/** Values for one container's cgroup. */
export function containerCgroupValues(c: ContainerPlan, opts: CgroupOptions = {}): CgroupValues {
  return cgroupValues(c.resources, opts);
}

/**
 * The pod's effective resources, as the scheduler and kubelet's pod cgroup compute them:
 * requests = max(sum over app containers and sidecars, each init container + sidecars started
 * before it); a limit is set only when EVERY app container and sidecar has one (sum), raised to
 * the largest init-container limit; otherwise unlimited.
 */
export function podResources(pod: PodPlan): ResourcesPlan {
  const longRunning = [...pod.initContainers.filter((c) => c.role === 'sidecar'), ...pod.containers];
  const sum = (cs: ContainerPlan[], pick: (c: ContainerPlan) => number | undefined): number | undefined => {
    let total = 0;
    for (const c of cs) {
      const v = pick(c);
      if (v === undefined) return undefined;
      total += v;
    }
    return total;
  };
  const reqSum = (k: keyof ResourceValues) => longRunning.reduce((t, c) => t + (c.resources.requests[k] ?? 0), 0);
  const requests: ResourceValues = {};
  const limits: ResourceValues = {};
  for (const k of ['cpuMillis', 'memoryBytes'] as const) {
    let req = reqSum(k);
    let lim = sum(longRunning, (c) => c.resources.limits[k]);
    let sidecarsSoFar = 0;
    let sidecarLimitsSoFar: number | undefined = 0;
    for (const c of pod.initContainers) {
      if (c.role === 'sidecar') {
        sidecarsSoFar += c.resources.requests[k] ?? 0;
        const l = c.resources.limits[k];
        sidecarLimitsSoFar = sidecarLimitsSoFar === undefined || l === undefined ? undefined : sidecarLimitsSoFar + l;
        continue;
      }
      req = Math.max(req, (c.resources.requests[k] ?? 0) + sidecarsSoFar);
      const l = c.resources.limits[k];
      if (lim !== undefined) lim = l === undefined || sidecarLimitsSoFar === undefined ? undefined : Math.max(lim, l + sidecarLimitsSoFar);
    }
    if (req > 0) requests[k] = req;
    if (lim !== undefined) limits[k] = lim;
  }
  return { requests, limits };
}

/** Values for the pod-level cgroup (parent of the containers'). */
export function podCgroupValues(pod: PodPlan, opts: CgroupOptions = {}): CgroupValues {
  return cgroupValues(podResources(pod), opts);
}
