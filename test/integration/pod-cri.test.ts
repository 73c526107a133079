/** The CRI-shaped verbs, without the lifecycle controller: sandbox and container one step at a time. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { parseManifests } from '../../src/spec/parse.js';
import { PodRuntime } from '../../src/runtime/api.js';
import { cgroupDirs, mountsBelow, randomName, startPodEnv, type PodEnv } from '../helpers/pod.js';

let e: PodEnv;
beforeAll(async () => {
  e = await startPodEnv();
}, 120_000);
afterAll(async () => {
  await e?.cleanup();
});

it('runs a sandbox, creates, starts, execs, stops and removes a container, then the sandbox', async () => {
  const rt = await PodRuntime.open({ root: e.root, runRoot: e.runRoot, logRoot: e.logRoot, network: false, cgroupParent: e.cgroupParent });
  const name = randomName();
  const { pods } = parseManifests(`apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  containers:
  - {name: app, image: "${e.busybox}", command: [sh, -c, "trap 'echo bye; exit 0' TERM; echo hi; while true; do sleep 0.1; done"]}
`);
  const sb = await rt.runPodSandbox(pods[0]);
  expect(sb).toBe(`default_${name}`);
  expect(rt.listPodSandbox({ name }).map((p) => p.key)).toEqual([sb]);
  expect(rt.podSandboxStatus(sb).sandbox).toBe('Ready');

  const id = await rt.createContainer(sb, 'app');
  expect(rt.containerStatus(id).state).toBe('created');
  await rt.startContainer(id);
  expect(rt.containerStatus(id).state).toBe('running');
  const r = await rt.execSync(id, ['sh', '-c', 'echo $((6*7)); hostname'], 10_000);
  expect(r).toMatchObject({ exitCode: 0, stdout: `42\n${name}\n` });
  expect(rt.listContainers({ sandboxId: sb, state: 'running' }).map((c) => c.id)).toEqual([id]);

  await rt.stopContainer(id, 5);
  const st = rt.containerStatus(id);
  expect(st).toMatchObject({ state: 'exited', exitCode: 0 });
  expect(fs.readFileSync(st.logPath, 'utf8')).toMatch(/stdout F hi\n.*stdout F bye\n/s);
  await rt.removeContainer(id);
  expect(rt.listContainers({ sandboxId: sb })).toEqual([]);

  await rt.stopPodSandbox(sb);
  await rt.removePodSandbox(sb);
  expect(rt.listPodSandbox()).toEqual([]);
  expect(fs.existsSync(path.join(e.runRoot, 'pods', sb))).toBe(false);
  expect(mountsBelow(e.dir)).toEqual([]);
  expect(cgroupDirs(e.cgroupParent)).toEqual([]);
});
