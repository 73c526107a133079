/** The runtime API: pods and CRI-shaped container verbs (see api.ts), logs, paths, state. */
export { PodRuntime, notRunningReason, isSettled, request, supervisorSocketPath, type RuntimeOptions, type UpOptions, type UpResult, type PodSummary } from './api.js';
export { PodDriver, parseSignal, type ImageProvider, type ProcessResolver } from './driver.js';
export { readLogs, followLogs, parseCriLog, formatLogLine, logRestarts, pickLogFile, type LogLine, type ReadLogsOptions } from './logs.js';
export { podKey, podLogDir, containerLogFile, type RuntimePaths } from './paths.js';
export { readState, listPodKeys, type PodState, type ContainerRecord, type Resource } from './state.js';
export { hostsFile, DEFAULT_SHM_BYTES, type RuntimeContext } from './sandbox.js';
export { gcPods, type GcReport } from './gc.js';
export type { PodStatus, ContainerStatus, PodPhase } from './controller/status.js';
