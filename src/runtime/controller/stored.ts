/**
 * Reading a pod's status as the supervisor stored it (state.json: `status`, written from the
 * controller's onChange), for `podrun status` and `podrun wait`, which run in other processes.
 */
import { readState, isAlive, type PodState } from '../state.js';
import { podKey, type RuntimePaths } from '../paths.js';
import { PodrunError } from '../../util/errors.js';
import type { PodStatus } from './status.js';

export interface PodRef {
  namespace: string;
  name: string;
}

/** "name" or "namespace/name". */
export function parsePodRef(arg: string, namespace = 'default'): PodRef {
  const parts = arg.split('/');
  if (parts.length === 2 && parts[0] && parts[1]) return { namespace: parts[0], name: parts[1] };
  if (parts.length === 1 && parts[0]) return { namespace, name: parts[0] };
  throw new PodrunError('EINVAL_ARG', `Cannot find pod "${arg}": expected NAME or NAMESPACE/NAME`);
}

export interface StoredPod {
  state: PodState;
  /** The stored status; a Pending placeholder when the controller has not written one yet. */
  status: PodStatus;
  /** False when the recorded owner (foreground `up` or supervisor) is gone: the status may be stale. */
  ownerAlive: boolean;
}

export function readStoredPod(paths: RuntimePaths, ref: PodRef): StoredPod | undefined {
  const state = readState(paths, podKey(ref.namespace, ref.name));
  if (!state) return undefined;
  const status = (state.status as PodStatus | undefined) ?? {
    phase: 'Pending',
    conditions: [],
    containerStatuses: [],
    qosClass: 'BestEffort',
  };
  return { state, status, ownerAlive: isAlive(state.owner) };
}

export type WaitFor = { kind: 'delete' } | { kind: 'condition'; type: string; value: string } | { kind: 'phase'; phase: string };

/** Parses kubectl's --for: "delete", "condition=Ready", "condition=Ready=false", plus "phase=Succeeded". */
export function parseWaitFor(s: string): WaitFor {
  if (s === 'delete') return { kind: 'delete' };
  const m = /^condition=([A-Za-z]+)(?:=(true|false|True|False))?$/.exec(s);
  if (m) return { kind: 'condition', type: m[1], value: (m[2] ?? 'true').toLowerCase() === 'true' ? 'True' : 'False' };
  const p = /^phase=(Pending|Running|Succeeded|Failed)$/.exec(s);
  if (p) return { kind: 'phase', phase: p[1] };
  throw new PodrunError('EINVAL_ARG', `Cannot wait for "${s}": expected delete, condition=TYPE[=true|false] or phase=PHASE`);
}

/** Go-style durations: "30s", "1m30s", "500ms", "2h"; a bare number is seconds. */
export function parseDuration(s: string): number {
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let used = 0;
  for (const m of s.matchAll(re)) {
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    used += m[0].length;
  }
  if (used !== s.length || s.length === 0) throw new PodrunError('EINVAL_ARG', `Cannot parse duration "${s}": expected e.g. 30s, 1m30s, 500ms`);
  return total;
}

export function conditionMet(st: PodStatus, w: WaitFor): boolean {
  if (w.kind === 'phase') return st.phase === w.phase;
  if (w.kind === 'condition') return st.conditions.some((c) => c.type.toLowerCase() === w.type.toLowerCase() && c.status === w.value);
  return false;
}

/**
 * Polls the stored status until `w` holds. Resolves true when met, false on timeout.
 * Throws ENOTFOUND when waiting for a condition of a pod that does not exist.
 */
export async function waitForPod(paths: RuntimePaths, ref: PodRef, w: WaitFor, timeoutMs: number, pollMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (let first = true; ; first = false) {
    const pod = readStoredPod(paths, ref);
    if (w.kind === 'delete') {
      if (!pod || pod.state.sandbox === 'Stopped') return true;
    } else {
      if (!pod) {
        if (first) throw new PodrunError('ENOTFOUND', `Cannot wait for pod "${ref.namespace}/${ref.name}": not found`);
        return false;
      }
      if (conditionMet(pod.status, w)) return true;
    }
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(1, end - Date.now()))));
  }
}
