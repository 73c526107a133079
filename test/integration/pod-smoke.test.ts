import { afterAll, beforeAll, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushBusybox } from '../helpers/images.js';
import { parseManifests } from '../../src/spec/parse.js';
import { PodRuntime } from '../../src/runtime/api.js';

let reg: TestRegistry; let ref: string; let dir: string;
beforeAll(async () => {
  reg = await startTestRegistry();
  await pushBusybox(reg.host); ref = `${reg.host}/library/busybox:latest`;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-'));
});
afterAll(async () => { await reg?.stop(); });

it('runs a pod', async () => {
  const events: unknown[] = [];
  const rt = await PodRuntime.open({ root: path.join(dir, 'root'), runRoot: path.join(dir, 'run'), logRoot: path.join(dir, 'log'), network: false, cgroupParent: 'podrun-test-smoke', events: (e) => events.push(e) });
  const { pods } = parseManifests(`apiVersion: v1
kind: Pod
metadata: {name: smoke}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: ${ref}
    command: [sh, -c, "echo hello; hostname; sleep 100"]
`);
  await rt.upPod(pods[0]);
  try {
  const st = await rt.waitRunning('default_smoke', 20000).catch((e) => { console.log(JSON.stringify(events.filter((x: any) => x.type !== 'trace'), null, 1)); throw e; });
  console.log(JSON.stringify(st.containerStatuses));
  await new Promise((r) => setTimeout(r, 500));
  console.log(fs.readFileSync(path.join(dir, 'log', `default_smoke_${pods[0].uid}`, 'a', '0.log'), 'utf8'));
  } finally { await rt.downPod('default_smoke'); }
  console.log(fs.readdirSync(path.join(dir, 'run', 'pods')));
});
