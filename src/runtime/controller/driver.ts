/**
 * The seam between the pod lifecycle controller (pure policy: restarts, init order, sidecars,
 * probes, hooks, status) and the runtime that really creates processes (sandbox, shim, cgroups).
 *
 * The runtime implements `ContainerDriver`; the controller never touches the kernel except through
 * it (and, for network probes, through `Syscalls.setns` into `network().netnsPath`).
 * Containers are named by their name in the pod spec; the driver holds the resolved PodPlan and
 * looks the container up by name, so this interface does not depend on the plan's exact shape.
 */
import { PodrunError } from '../../util/errors.js';

export type ContainerKind = 'init' | 'sidecar' | 'app';

/** A started container. `id` is the runtime's container id (shown as containerID). */
export interface StartedContainer {
  id: string;
  pid: number;
  startedAt: Date;
  /** Resolved image digest reference, e.g. "registry/busybox@sha256:…" (status.imageID). */
  imageID?: string;
}

/** How a container ended. Exit by signal is reported as exitCode 128+signo (as CRI does). */
export interface ContainerExit {
  exitCode: number;
  /** Signal number when the process was killed by a signal. */
  signal?: number;
  /** True when the kernel's OOM counters say the container was OOM-killed. */
  oomKilled: boolean;
  finishedAt: Date;
}

export interface ExecResult {
  exitCode: number;
  output: string;
  /** True when the command did not finish within the timeout (the driver killed it). */
  timedOut?: boolean;
}

/**
 * Kubernetes waiting reasons a failed `start` maps to. Attach one with `withReason(err, reason)`;
 * otherwise the controller derives it from the PodrunError code:
 * ENOTFOUND / EREGISTRY / EAUTH / ENETWORK / EDIGEST / EINVAL_REF → ErrImagePull,
 * EINVAL_SPEC / ECONFIG → CreateContainerConfigError, ESHIM / ESYSCALL / others → StartError
 * (a StartError counts as a run that exited with code 128, like kubelet).
 */
export type StartFailureReason =
  | 'ErrImagePull'
  | 'ErrImageNeverPull'
  | 'InvalidImageName'
  | 'CreateContainerConfigError'
  | 'CreateContainerError'
  | 'StartError';

export interface ContainerDriver {
  /**
   * Create and start one container (init, sidecar or app) of the pod. `restartCount` is the
   * number of earlier runs (the log file is `<restartCount>.log`). Resolves once the process runs.
   * Throws (preferably a PodrunError, optionally carrying a `reason`, see withReason) on failure.
   */
  start(name: string, kind: ContainerKind, restartCount: number): Promise<StartedContainer>;
  /**
   * Resolves when the container's process has exited — also for containers adopted from an
   * earlier supervisor (identified by id), and immediately when it has already exited.
   */
  waitExit(id: string): Promise<ContainerExit>;
  /** Send a signal to the container's init process; a no-op when it has already exited. */
  signal(id: string, signal: NodeJS.Signals | number): Promise<void>;
  /** Run a command inside the running container (probes, hooks), killed after timeoutMs. */
  exec(id: string, argv: string[], timeoutMs: number): Promise<ExecResult>;
  /** Remove an exited container's rootfs and runtime state (logs stay). */
  remove(id: string): Promise<void>;
  /**
   * Where network probes and hooks connect from: the pinned network namespace of the pod
   * (undefined for hostNetwork pods) and the pod's IP (default probe host; 127.0.0.1 if none).
   */
  network(): { netnsPath?: string; podIP?: string };
  /** The signal that stops this container: the image's STOPSIGNAL, else SIGTERM. */
  stopSignal(name: string): NodeJS.Signals | number;
  /**
   * Optional, for re-adoption: the run `restartCount` of container `name` if it was started (it
   * may have exited since). A supervisor that died inside `start` left such a run unknown to its
   * snapshot; restore() asks for it instead of starting a second run with the same number.
   */
  find?(name: string, restartCount: number): StartedContainer | undefined;
}

/** Marks a start failure with the Kubernetes waiting reason the status should show. */
export function withReason<E extends Error>(err: E, reason: StartFailureReason): E & { reason: StartFailureReason } {
  return Object.assign(err, { reason });
}

/** The Kubernetes reason for a start failure (see StartFailureReason). */
export function startFailureReason(err: unknown): StartFailureReason {
  const r = (err as { reason?: unknown } | null)?.reason;
  if (typeof r === 'string') return r as StartFailureReason;
  if (err instanceof PodrunError) {
    switch (err.code) {
      case 'ENOTFOUND':
      case 'EREGISTRY':
      case 'EAUTH':
      case 'ENETWORK':
      case 'EDIGEST':
        return 'ErrImagePull';
      case 'EINVAL_REF':
        return 'InvalidImageName';
      case 'EINVAL_SPEC':
      case 'ECONFIG':
        return 'CreateContainerConfigError';
      default:
        return 'StartError';
    }
  }
  return 'StartError';
}
