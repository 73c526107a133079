/**
 * The library is silent: it emits typed events and only the CLI renders them.
 * `trace` events are the kernel-level steps (syscall, mount, cgroup write, CNI call, shim step)
 * that `--trace` prints in order for students and operators.
 */
export type PodrunEvent =
  | { type: 'trace'; area: 'syscall' | 'mount' | 'cgroup' | 'cni' | 'shim' | 'fs' | 'process' | 'http'; step: string; detail?: string }
  | { type: 'warning'; message: string }
  | { type: 'pull.resolved'; ref: string; digest: string; layers: { digest: string; size: number }[] }
  | { type: 'pull.layer'; ref: string; digest: string; phase: 'waiting' | 'downloading' | 'unpacking' | 'done' | 'cached'; bytes: number; total: number }
  | { type: 'pull.done'; ref: string; digest: string }
  | { type: 'pod'; pod: string; phase: string; message?: string }
  | { type: 'container'; pod: string; container: string; state: string; reason?: string; exitCode?: number; restartCount?: number; message?: string }
  | { type: 'log'; pod: string; container: string; stream: 'stdout' | 'stderr'; line: string; time: string }
  /** A probe result that changed the container's state, or a failed probe (kubelet's "Unhealthy"). */
  | { type: 'probe'; pod: string; container: string; probe: 'startup' | 'liveness' | 'readiness'; result: 'success' | 'failure'; message?: string }
  /** A lifecycle hook ran (postStart / preStop); failures carry kubelet's reason (FailedPostStartHook, FailedPreStopHook). */
  | { type: 'hook'; pod: string; container: string; hook: 'postStart' | 'preStop'; ok: boolean; reason?: string; message?: string };

export type EventSink = (ev: PodrunEvent) => void;

/** The default sink drops everything. */
export const silent: EventSink = () => {};

/** Emit a trace step; cheap when nobody listens. */
export function trace(sink: EventSink | undefined, area: Extract<PodrunEvent, { type: 'trace' }>['area'], step: string, detail?: string): void {
  if (sink && sink !== silent) sink({ type: 'trace', area, step, detail });
}
