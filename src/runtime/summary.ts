/**
 * A pod as `ps` and listPodSandbox show it. A light module (no kernel interface, no runtime):
 * `podrun ps` reads the state files through it without loading the runtime.
 */
import type { PodStatus } from './controller/status.js';
import type { RuntimePaths } from './paths.js';
import { isAlive, listPodKeys, readState, type ContainerRecord, type PodState } from './state.js';

export interface PodSummary {
  key: string;
  name: string;
  namespace: string;
  uid: string;
  createdAt: string;
  sandbox: PodState['sandbox'];
  podIP?: string;
  /** The owner process is alive (the pod is supervised). */
  supervised: boolean;
  status?: PodStatus;
  containers: ContainerRecord[];
}

/** The summary of a pod's state; `live` is the status of a pod this process supervises. */
export function podSummary(st: PodState, live?: { status: PodStatus }): PodSummary {
  return {
    key: st.key,
    name: st.name,
    namespace: st.namespace,
    uid: st.uid,
    createdAt: st.createdAt,
    sandbox: st.sandbox,
    podIP: st.podIP,
    supervised: live !== undefined || isAlive(st.owner),
    status: live ? { ...live.status, podIP: st.podIP } : (st.status as PodStatus | undefined),
    containers: Object.values(st.containers),
  };
}

/** Every pod in the run root as its state file has it (unreadable ones are left out). */
export function storedPods(paths: RuntimePaths): { st: PodState; summary: PodSummary }[] {
  const out: { st: PodState; summary: PodSummary }[] = [];
  for (const key of listPodKeys(paths)) {
    let st: PodState | undefined;
    try {
      st = readState(paths, key);
    } catch {
      continue;
    }
    if (st) out.push({ st, summary: podSummary(st) });
  }
  return out;
}
