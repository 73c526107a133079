/**
 * A pod on a CNI network through the sandbox: the pod gets an IP (status.podIP, /etc/hosts),
 * the host reaches it by that IP, and `down` releases the veth and the firewall rules.
 * Uses the network helper's per-test network (podrun-test-<rand> bridge, a 10.255.x.0/28 subnet,
 * temp conflist dir); only that subnet and 127.0.0.1 are contacted.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { listNetworkAttachments, setupPodNetwork } from '../../src/runtime/network/index.js';
import { parseManifests } from '../../src/spec/parse.js';
import { PodRuntime } from '../../src/runtime/api.js';
import { createTestNetwork, havePlugins, type TestNetwork } from '../helpers/cni-net.js';
import { mountsBelow, randomName, startPodEnv, waitFor, type PodEnv } from '../helpers/pod.js';

let e: PodEnv;
let tn: TestNetwork;
let rt: PodRuntime;

beforeAll(async () => {
  if (!havePlugins) return;
  e = await startPodEnv();
  tn = await createTestNetwork();
  rt = await PodRuntime.open({ root: e.root, runRoot: e.runRoot, logRoot: e.logRoot, network: tn.options(e.runRoot), cgroupParent: e.cgroupParent });
}, 120_000);

afterAll(async () => {
  await tn?.cleanup();
  await e?.cleanup();
});

it.skipIf(!havePlugins)('gives the pod an IP the host reaches, in status and /etc/hosts, released by down', async () => {
  const name = randomName();
  const set = parseManifests(`apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: ${e.busybox}
    command: [sh, -c, "mkdir -p /www; echo pod-ip-ok > /www/index.html; exec httpd -f -p 8080 -h /www"]
    env: [{name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
`);
  const { key } = await rt.upPod(set.pods[0], { manifests: set });
  try {
    const status = await rt.waitRunning(key);
    const ip = status.podIP!;
    expect(ip.startsWith(tn.subnet.replace(/\d+\/28$/, ''))).toBe(true);
    const [c] = rt.listContainers({ sandboxId: key, state: 'running' });
    const hosts = await rt.execSync(c.id, ['cat', '/etc/hosts']);
    expect(hosts.stdout).toContain(`${ip}\t${name}`);
    const env = await rt.execSync(c.id, ['sh', '-c', 'echo $MY_IP']);
    expect(env.stdout.trim()).toBe(ip);
    const body = await waitFor('httpd on the pod IP', () => {
      try {
        return execFileSync('busybox', ['wget', '-q', '-O', '-', `http://${ip}:8080/`], { encoding: 'utf8', timeout: 3000 });
      } catch {
        return undefined;
      }
    });
    expect(body).toBe('pod-ip-ok\n');
  } finally {
    await rt.downPod(key);
  }
  expect(await tn.bridgePorts()).toEqual([]);
  expect(await tn.firewallMentions([set.pods[0].uid])).toEqual([]);
  expect(mountsBelow(e.dir)).toEqual([]);
});

it.skipIf(!havePlugins)('gc releases a CNI attachment no pod owns and keeps those of pods with a state file', async () => {
  const name = randomName();
  const set = parseManifests(`apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers: [{name: c, image: "${e.busybox}", command: [sleep, "60"]}]\n`);
  const { key } = await rt.upPod(set.pods[0], { manifests: set });
  // an attachment left by a pod whose state is gone: a network namespace held by a sleep
  const holder = spawn('unshare', ['--net', 'sleep', '60'], { stdio: 'ignore' });
  const orphan = randomName();
  try {
    await rt.waitRunning(key);
    await waitFor('netns of the holder', () => execFileSync('readlink', [`/proc/${holder.pid}/ns/net`], { encoding: 'utf8' }) !== execFileSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' }));
    await setupPodNetwork(tn.options(e.runRoot), { id: orphan, name: 'orphan', namespace: 'default', netnsPath: `/proc/${holder.pid}/ns/net`, ports: [] });
    expect((await tn.bridgePorts()).length).toBe(2);
    const r = await rt.gc();
    expect(r.networks).toEqual([orphan]);
    expect(r.errors).toEqual([]);
    expect(await listNetworkAttachments(e.runRoot)).toEqual([set.pods[0].uid]);
    expect((await tn.bridgePorts()).length).toBe(1);
  } finally {
    holder.kill('SIGKILL');
    await rt.downPod(key, { gracePeriodSeconds: 0 });
  }
  expect(await tn.bridgePorts()).toEqual([]);
});
