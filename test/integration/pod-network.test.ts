/**
 * Pod networking through the runtime (PodRuntime, the API `podrun up` uses): two busybox pods on a
 * test CNI network (podrun-test-<rand>, see test/helpers/cni-net.ts), pod → pod by pod IP, the two
 * containers of one pod on localhost, host → pod IP, hostPort on 127.0.0.1, status.podIP through the
 * downward API, /etc/hosts, resolv.conf, and nothing left on the network after `down`.
 * Only 127.0.0.1 and pod IPs of pods made here are contacted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import { createServer } from 'node:net';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushBusybox } from '../helpers/images.js';
import { createTestNetwork, havePlugins, sh, shOk, type TestNetwork } from '../helpers/cni-net.js';
import { parseManifests } from '../../src/spec/parse.js';
import { PodRuntime } from '../../src/runtime/api.js';
import { ipamDataDir, listNetworkAttachments } from '../../src/runtime/network/index.js';

const skipReason = process.getuid?.() !== 0 ? 'needs root' : !havePlugins ? 'needs containernetworking-plugins' : '';

let reg: TestRegistry | undefined;
let tn: TestNetwork | undefined;
let rt: PodRuntime | undefined;
let dir = '';
let ref = '';
const podsUp: string[] = [];
const events: { type: string; message?: string }[] = [];

async function freePort(): Promise<number> {
  for (;;) {
    const port = randomInt(30000, 60000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

function containerId(key: string, name: string): string {
  const c = rt!.listContainers({ sandboxId: key, name, state: 'running' })[0];
  if (!c) throw new Error(`container ${key}/${name} is not running`);
  return c.id;
}

async function execOut(key: string, name: string, cmd: string[]): Promise<string> {
  const r = await rt!.execSync(containerId(key, name), cmd, 15_000);
  if (r.exitCode !== 0) throw new Error(`${cmd.join(' ')} in ${key}/${name} exited ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

/** busybox wget (no -T: busybox-static 1.35's wget crashes with it), retried while httpd starts. */
async function wgetIn(key: string, name: string, url: string): Promise<string> {
  let last: unknown;
  for (let i = 0; i < 40; i++) {
    try {
      return await execOut(key, name, ['wget', '-q', '-O', '-', url]);
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw last;
}

describe.skipIf(!!skipReason)('pod networking through the runtime', () => {
  beforeAll(async () => {
    reg = await startTestRegistry();
    await pushBusybox(reg.host);
    ref = `${reg.host}/library/busybox:latest`;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-podnet-'));
    tn = await createTestNetwork();
    const runRoot = path.join(dir, 'run');
    rt = await PodRuntime.open({
      root: path.join(dir, 'root'),
      runRoot,
      logRoot: path.join(dir, 'log'),
      network: tn.options(runRoot),
      cgroupParent: `podrun-test-${randomBytes(3).toString('hex')}`,
      events: (e) => events.push(e as { type: string }),
    });
  });

  afterAll(async () => {
    for (const key of podsUp) await rt?.downPod(key).catch(() => {});
    await tn?.cleanup();
    await reg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('pod → pod by IP, containers on localhost, host → pod IP, hostPort on 127.0.0.1, status.podIP, /etc/hosts; down releases everything', async () => {
    const hostPort = await freePort();
    const { pods } = parseManifests(`apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 1
  dnsPolicy: None
  dnsConfig: {nameservers: [192.0.2.53], searches: [podrun.test], options: [{name: ndots, value: "2"}]}
  containers:
  - name: httpd
    image: ${ref}
    command: [sh, -c, 'mkdir -p /www && echo "ip=$POD_IP" > /www/index.html && exec httpd -f -p 8080 -h /www']
    env:
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    ports:
    - {containerPort: 8080, hostPort: ${hostPort}}
  - name: side
    image: ${ref}
    command: [sleep, "1000"]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: ${ref}
    command: [sleep, "1000"]
`);
    for (const p of pods) {
      podsUp.push(`${p.namespace}_${p.name}`);
      await rt!.upPod(p);
    }
    await rt!.waitRunning('default_web', 30_000);
    await rt!.waitRunning('default_client', 30_000);
    const webIP = rt!.podSandboxStatus('default_web').podIP!;
    const clientIP = rt!.podSandboxStatus('default_client').podIP!;
    const base = tn!.subnet.replace(/\d+\/28$/, '');
    expect(webIP.startsWith(base)).toBe(true);
    expect(clientIP.startsWith(base)).toBe(true);
    expect(webIP).not.toBe(clientIP);

    // the page holds status.podIP as the container saw it through the downward API
    const page = `ip=${webIP}\n`;
    expect(await wgetIn('default_web', 'side', 'http://127.0.0.1:8080/')).toBe(page); // same pod, localhost
    expect(await wgetIn('default_client', 'c', `http://${webIP}:8080/`)).toBe(page); // pod → pod
    expect(await sh('busybox', ['wget', '-q', '-O', '-', `http://${webIP}:8080/`])).toBe(page); // host → pod IP
    expect(await sh('busybox', ['wget', '-q', '-O', '-', `http://127.0.0.1:${hostPort}/`])).toBe(page); // hostPort

    // the pod sees its address on eth0 and its hostname mapped to it
    expect(await execOut('default_web', 'side', ['ip', '-o', '-4', 'addr', 'show', 'eth0'])).toContain(`inet ${webIP}/28`);
    expect(await execOut('default_web', 'side', ['cat', '/etc/hosts'])).toMatch(new RegExp(`^${webIP.replace(/\./g, '\\.')}\\s+web$`, 'm'));
    expect(await execOut('default_web', 'side', ['cat', '/etc/resolv.conf'])).toBe('search podrun.test\nnameserver 192.0.2.53\noptions ndots:2\n');

    const uids = [rt!.podSandboxStatus('default_web').uid, rt!.podSandboxStatus('default_client').uid];
    for (const key of ['default_web', 'default_client']) await rt!.downPod(key);
    podsUp.length = 0;
    expect(await tn!.bridgePorts()).toEqual([]);
    expect(await tn!.firewallMentions(uids)).toEqual([]);
    expect(await listNetworkAttachments(path.join(dir, 'run'))).toEqual([]);
    const leaseDir = path.join(ipamDataDir(path.join(dir, 'run')), tn!.name);
    expect(fs.readdirSync(leaseDir).filter((f) => /^\d/.test(f))).toEqual([]);
    expect(await shOk('busybox', ['wget', '-q', '-O', '-', `http://127.0.0.1:${hostPort}/`])).toBe(false);
  }, 120_000);

  it('hostNetwork: no CNI attachment, the host\'s network namespace, the container port is the host port', async () => {
    const port = await freePort();
    const { pods } = parseManifests(`apiVersion: v1
kind: Pod
metadata: {name: hostnet}
spec:
  terminationGracePeriodSeconds: 1
  hostNetwork: true
  containers:
  - name: httpd
    image: ${ref}
    command: [sh, -c, 'mkdir -p /www && echo hostnet > /www/index.html && exec httpd -f -p 127.0.0.1:${port} -h /www']
    ports:
    - {containerPort: ${port}, hostPort: ${port}}
`);
    podsUp.push('default_hostnet');
    await rt!.upPod(pods[0]);
    await rt!.waitRunning('default_hostnet', 30_000);
    const uid = rt!.podSandboxStatus('default_hostnet').uid;
    expect(await listNetworkAttachments(path.join(dir, 'run'))).toEqual([]);
    expect((await execOut('default_hostnet', 'httpd', ['readlink', '/proc/self/ns/net'])).trim()).toBe(fs.readlinkSync('/proc/self/ns/net'));
    let page = '';
    for (let i = 0; i < 40 && !page; i++) {
      page = await sh('busybox', ['wget', '-q', '-O', '-', `http://127.0.0.1:${port}/`]).catch(() => '');
      if (!page) await new Promise((r) => setTimeout(r, 250));
    }
    expect(page).toBe('hostnet\n');
    expect(await tn!.firewallMentions([uid])).toEqual([]);
    await rt!.downPod('default_hostnet');
    podsUp.length = 0;
  }, 60_000);
});
