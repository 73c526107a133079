/**
 * Where a pod's files live. One function per location so every module (and `gc`) agrees.
 *
 *   --run-root (tmpfs, gone at reboot)          --root (persistent)
 *   <run>/pods/<ns>_<name>/state.json           <root>/pods/<ns>_<name>_<uid>/volumes/<vol>/
 *   <run>/pods/<ns>_<name>/state.lock           <root>/pods/<ns>_<name>_<uid>/containers/<c>/{upper,work}
 *   <run>/pods/<ns>_<name>/ns/{net,ipc,uts}     (pinned namespaces)
 *   <run>/pods/<ns>_<name>/shm                  (the pod's /dev/shm, a tmpfs)
 *   <run>/pods/<ns>_<name>/etc/{hosts,hostname,resolv.conf}
 *   <run>/pods/<ns>_<name>/files/<vol>/         (configMap / secret / downwardAPI volume contents)
 *   <run>/pods/<ns>_<name>/containers/<c>/      (shim plan, exit file, monitor state)
 *   <run>/supervisor.sock, <run>/supervisor.pid
 *   <log>/<ns>_<name>_<uid>/<c>/<restart>.log   (CRI log format)
 */
import path from 'node:path';

export interface RuntimePaths {
  root: string;
  runRoot: string;
  logRoot: string;
}

/** "<namespace>_<name>": the pod's key in the run root (unique per node, as in Kubernetes). */
export function podKey(namespace: string, name: string): string {
  return `${namespace}_${name}`;
}

export function podsDir(p: RuntimePaths): string {
  return path.join(p.runRoot, 'pods');
}
export function podRunDir(p: RuntimePaths, key: string): string {
  return path.join(p.runRoot, 'pods', key);
}
export function stateFile(p: RuntimePaths, key: string): string {
  return path.join(podRunDir(p, key), 'state.json');
}
export function lockFile(p: RuntimePaths, key: string): string {
  return path.join(podRunDir(p, key), 'state.lock');
}
/** The parent of the pod dirs is made a private mount so pins never propagate (as `ip netns` does). */
export function pinDir(p: RuntimePaths, key: string): string {
  return path.join(podRunDir(p, key), 'ns');
}
export function shmDir(p: RuntimePaths, key: string): string {
  return path.join(podRunDir(p, key), 'shm');
}
export function etcDir(p: RuntimePaths, key: string): string {
  return path.join(podRunDir(p, key), 'etc');
}
export function filesDir(p: RuntimePaths, key: string, volume: string): string {
  return path.join(podRunDir(p, key), 'files', volume);
}
export function containerRunDir(p: RuntimePaths, key: string, container: string): string {
  return path.join(podRunDir(p, key), 'containers', container);
}

/** Persistent per-pod data: emptyDir volumes and container upper dirs. */
export function podDataDir(p: RuntimePaths, key: string, uid: string): string {
  return path.join(p.root, 'pods', `${key}_${uid}`);
}
export function volumeDir(p: RuntimePaths, key: string, uid: string, volume: string): string {
  return path.join(podDataDir(p, key, uid), 'volumes', volume);
}
export function containerDataDir(p: RuntimePaths, key: string, uid: string, container: string): string {
  return path.join(podDataDir(p, key, uid), 'containers', container);
}

/** The pod's log dir: <log-root>/<namespace>_<name>_<uid>. */
export function podLogDir(p: RuntimePaths, namespace: string, name: string, uid: string): string {
  return path.join(p.logRoot, `${namespace}_${name}_${uid}`);
}
export function containerLogFile(p: RuntimePaths, namespace: string, name: string, uid: string, container: string, restart: number): string {
  return path.join(podLogDir(p, namespace, name, uid), container, `${restart}.log`);
}

export function supervisorSocket(p: RuntimePaths): string {
  return path.join(p.runRoot, 'supervisor.sock');
}
export function supervisorPidFile(p: RuntimePaths): string {
  return path.join(p.runRoot, 'supervisor.pid');
}
