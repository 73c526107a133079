/** shareProcessNamespace: one PID namespace for the pod, with podrun's pause process as pid 1. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseManifests } from '../../src/spec/parse.js';
import { PodRuntime } from '../../src/runtime/api.js';
import { cgroupDirs, mountsBelow, processesMentioning, randomName, startPodEnv, type PodEnv } from '../helpers/pod.js';

let e: PodEnv;
beforeAll(async () => {
  e = await startPodEnv();
}, 120_000);
afterAll(async () => {
  await e?.cleanup();
});

it('lets containers see each other\'s processes, reaps under a pause init, and removes it on down', async () => {
  const rt = await PodRuntime.open({ root: e.root, runRoot: e.runRoot, logRoot: e.logRoot, network: false, cgroupParent: e.cgroupParent });
  const name = randomName();
  const set = parseManifests(`apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  shareProcessNamespace: true
  terminationGracePeriodSeconds: 1
  containers:
  - {name: a, image: "${e.busybox}", command: [sh, -c, "exec sleep 1001"]}
  - {name: b, image: "${e.busybox}", command: [sh, -c, "while true; do sleep 1; done"]}
`);
  const { key } = await rt.upPod(set.pods[0]);
  try {
    await rt.waitRunning(key);
    const b = rt.listContainers({ sandboxId: key, name: 'b', state: 'running' })[0];
    let ps = '';
    for (let i = 0; i < 50 && !ps.includes('sleep 1001'); i++) {
      ps = (await rt.execSync(b.id, ['ps', '-o', 'pid,args'])).stdout;
      if (!ps.includes('sleep 1001')) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ps).toContain('sleep 1001');
    const one = await rt.execSync(b.id, ['cat', '/proc/1/cmdline']);
    expect(one.stdout).not.toContain('sleep');
    expect(rt.podSandboxStatus(key).containers).toHaveLength(2);
  } finally {
    await rt.downPod(key);
  }
  expect(mountsBelow(e.dir)).toEqual([]);
  expect(cgroupDirs(e.cgroupParent)).toEqual([]);
  expect(processesMentioning(e.dir)).toEqual([]);
});
