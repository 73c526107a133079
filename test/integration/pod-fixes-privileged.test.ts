/** A privileged container on this host (no CAP_SYS_RESOURCE): it starts, CapEff = the host's CapBnd. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseManifests } from '../../src/spec/parse.js';
import { PodRuntime } from '../../src/runtime/api.js';
import { readLogs } from '../../src/runtime/logs.js';
import { cgroupDirs, mountsBelow, randomName, startPodEnv, type PodEnv } from '../helpers/pod.js';

let e: PodEnv;
let rt: PodRuntime;

beforeAll(async () => {
  e = await startPodEnv();
  rt = await PodRuntime.open({ root: e.root, runRoot: e.runRoot, logRoot: e.logRoot, network: false, cgroupParent: e.cgroupParent });
}, 120_000);

afterAll(async () => {
  await e?.cleanup();
});

it('runs a privileged container with exactly the host bounding set as CapEff', async () => {
  const name = randomName();
  const set = parseManifests(`apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: ${e.busybox}
    securityContext: {privileged: true}
    command: [sh, -c, "grep -E '^Cap(Eff|Bnd):' /proc/self/status"]
`);
  const p = set.pods[0]!;
  const { key } = await rt.upPod(p, { manifests: set });
  try {
    const status = await rt.waitDone(key);
    const c = (status as unknown as { containerStatuses: { state: { terminated?: { exitCode: number; reason?: string; message?: string } } }[] }).containerStatuses[0]!;
    expect(c.state.terminated?.exitCode, JSON.stringify(c)).toBe(0);
    const lines = readLogs(path.join(e.logRoot, `${p.namespace}_${p.name}_${p.uid}`, 'main')).map((l) => l.text);
    const host = /^CapBnd:\s*(\S+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1];
    expect(lines).toContain(`CapEff:\t${host}`);
    expect(lines).toContain(`CapBnd:\t${host}`);
  } finally {
    await rt.downPod(key, { gracePeriodSeconds: 0 });
  }
  expect(mountsBelow(e.dir)).toEqual([]);
  expect(cgroupDirs(e.cgroupParent)).toEqual([]);
});
