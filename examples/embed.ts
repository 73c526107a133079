/**
 * Embedding podrun: run a pod from a TypeScript program, exec into it, print its status, stop it.
 *
 *   import { PodRuntime, parseManifests } from 'podrun';   // in your project
 *
 * Call main() from your own code (as root), as test/integration/pod-embed.test.ts does; the pod
 * gets a loopback-only network here (network: false) so the example needs no CNI setup.
 */
import { PodRuntime, parseManifests, type PodrunEvent } from '../src/index.js';

export interface EmbedOptions {
  image: string; // e.g. "busybox" or "127.0.0.1:5000/library/busybox:latest"
  root: string;
  runRoot: string;
  logRoot: string;
  cgroupParent?: string;
  log?: (line: string) => void;
}

export async function main(o: EmbedOptions): Promise<{ phase: string; execOutput: string }> {
  const log = o.log ?? ((l: string) => console.log(l));
  const rt = await PodRuntime.open({ root: o.root, runRoot: o.runRoot, logRoot: o.logRoot, cgroupParent: o.cgroupParent, network: false });
  // the event stream: container state changes as they happen
  const off = rt.on((ev: PodrunEvent) => {
    if (ev.type === 'container') log(`event: ${ev.container} ${ev.state}${ev.reason ? ` (${ev.reason})` : ''}`);
  });

  const { pods } = parseManifests(`
apiVersion: v1
kind: Pod
metadata: {name: embedded}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: ${o.image}
    command: [sh, -c, "echo ready; while true; do sleep 1; done"]
`);
  const { key } = await rt.upPod(pods[0]);
  try {
    const status = await rt.waitRunning(key);
    log(`pod ${key} is ${status.phase}`);

    // CRI-style: find the container and run a command in it
    const [c] = rt.listContainers({ sandboxId: key, name: 'main', state: 'running' });
    const r = await rt.execSync(c.id, ['sh', '-c', 'echo "hello from $(hostname)"']);
    log(`exec exit ${r.exitCode}: ${r.stdout.trim()}`);

    const s = rt.podStatus(key)!;
    for (const cs of s.containerStatuses) log(`container ${cs.name}: ready=${cs.ready} restarts=${cs.restartCount}`);
    return { phase: status.phase, execOutput: r.stdout.trim() };
  } finally {
    await rt.downPod(key);
    off();
    log(`pod ${key} removed`);
  }
}
