/** The pod lifecycle controller: policy over a ContainerDriver (see driver.ts). */
export { PodController, fmtDuration, type ControllerOptions, type ControllerSnapshot } from './controller.js';
export { withReason, startFailureReason, type ContainerDriver, type ContainerExit, type ContainerKind, type ExecResult, type StartedContainer, type StartFailureReason } from './driver.js';
export { realClock, ManualClock, type Clock } from './clock.js';
export { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { computePhase, qosClass, readyColumn, statusColumn, restartsColumn, humanAge, type PodPhase, type PodStatus, type ContainerStatus, type PodCondition } from './status.js';
export { readStoredPod, waitForPod, parsePodRef, parseWaitFor, parseDuration, type StoredPod, type WaitFor } from './stored.js';
export { dialTcp } from './dial.js';
