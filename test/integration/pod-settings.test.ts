/**
 * Global options of `podrun up -d` apply to its pods even when a supervisor started with other
 * options already runs: one supervisor, a pod on loopback only under one cgroup parent, another
 * pod on a per-test CNI network (podrun-test-<rand> bridge, a 10.255.x.0/28 subnet, temp conflist
 * dir) under another cgroup parent. `down` and `gc` use what each pod was made with. A caller with
 * another --root than the running supervisor's is refused and nothing is created.
 * Only 127.0.0.1 (the registry) and addresses inside the test subnet are involved.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { conflistPath, defaultConflist, DEFAULT_NETWORK, ipamDataDir } from '../../src/runtime/network/index.js';
import { createTestNetwork, havePlugins, type TestNetwork } from '../helpers/cni-net.js';
import { cgroupDirs, randomName, sleepPod, startPodEnv, supervisorPid, waitFor, type PodEnv } from '../helpers/pod.js';

const skipReason = process.getuid?.() !== 0 ? 'needs root' : !havePlugins ? 'needs containernetworking-plugins' : '';

let e: PodEnv | undefined;
let tn: TestNetwork | undefined;
const otherParent = randomName();
let netFlags: string[] = [];

function leases(): string[] {
  const d = path.join(ipamDataDir(e!.runRoot), tn!.name);
  if (!fs.existsSync(d)) return [];
  return fs.readdirSync(d).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
}

describe.skipIf(!!skipReason)('global options per up -d, whatever the running supervisor was started with', () => {
  beforeAll(async () => {
    e = await startPodEnv();
    tn = await createTestNetwork();
    const list = defaultConflist({ name: tn.name, bridge: tn.name, subnet: tn.subnet });
    fs.writeFileSync(conflistPath(tn.confDir, DEFAULT_NETWORK), JSON.stringify(list, null, 2) + '\n');
    netFlags = ['--network', 'default', '--cni-conf-dir', tn.confDir, '--cgroup-parent', otherParent];
  }, 120_000);

  afterAll(async () => {
    if (e) {
      const sup = supervisorPid(e!.runRoot);
      if (sup) {
        try {
          process.kill(sup, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      e.podrun(['gc']); // each pod's own network and cgroup parent come from its state
      e.podrun([...netFlags, 'gc']);
    }
    await e?.cleanup();
    await tn?.cleanup();
    for (const d of cgroupDirs(otherParent)) {
      try {
        fs.rmdirSync(d); // down removes an emptied parent; this only covers a failed test
      } catch {
        /* busy or gone */
      }
    }
  }, 60_000);

  it('a loopback-only pod and a CNI pod under two cgroup parents share one supervisor; down removes each', async () => {
    const a = randomName();
    const b = randomName();
    const upA = e!.podrun(['up', '-d', sleepPod(e!, a)]); // env: --network none, the env's cgroup parent
    expect(upA.status, upA.stderr).toBe(0);
    const sup = supervisorPid(e!.runRoot);
    expect(sup).toBeGreaterThan(0);

    const upB = e!.podrun([...netFlags, 'up', '-d', sleepPod(e!, b)]);
    expect(upB.status, upB.stderr).toBe(0);
    expect(supervisorPid(e!.runRoot)).toBe(sup); // the same supervisor ran it

    const inspect = (n: string) => JSON.parse(e!.podrun(['inspect', n]).stdout);
    const stA = inspect(a);
    const stB = inspect(b);
    expect(stA.podIP).toBeUndefined();
    expect(stA.cgroup.parent).toBe(e!.cgroupParent);
    expect(stB.cgroup.parent).toBe(otherParent);
    expect(stB.podIP.startsWith(tn!.subnet.replace(/\d+\/28$/, ''))).toBe(true);
    // seen from inside: B has its address on eth0, A only loopback
    const ipB = e!.podrun(['exec', b, '--', 'ip', '-o', '-4', 'addr']);
    expect(ipB.stdout).toContain(stB.podIP);
    const ipA = e!.podrun(['exec', a, '--', 'ip', '-o', 'link']);
    expect(ipA.stdout).not.toContain('eth0');
    // the kernel's cgroups: B's container under the other parent, A's under the env's
    expect(cgroupDirs(otherParent).some((d) => fs.existsSync(path.join(d, `default_${b}`, 'c')))).toBe(true);
    expect(cgroupDirs(e!.cgroupParent).some((d) => fs.existsSync(path.join(d, `default_${a}`, 'c')))).toBe(true);
    expect(leases()).toHaveLength(1);
    expect(await tn!.bridgePorts()).toHaveLength(1);

    // down without the flags: B's network and cgroup parent come from its state
    const downB = e!.podrun(['down', b]);
    expect(downB.status, downB.stderr).toBe(0);
    expect(leases()).toEqual([]);
    expect(await tn!.bridgePorts()).toEqual([]);
    expect(await tn!.firewallMentions()).toEqual([]);
    expect(cgroupDirs(otherParent).filter((d) => fs.existsSync(path.join(d, `default_${b}`)))).toEqual([]);
    const downA = e!.podrun(['down', a]);
    expect(downA.status, downA.stderr).toBe(0);
    expect(cgroupDirs(e!.cgroupParent).filter((d) => fs.existsSync(path.join(d, `default_${a}`)))).toEqual([]);
  }, 120_000);

  it('a caller with another --root than the running supervisor is refused, and nothing is made', async () => {
    const keep = randomName();
    expect(e!.podrun(['up', '-d', sleepPod(e!, keep)]).status).toBe(0); // keeps the supervisor up
    try {
      const other = path.join(e!.dir, 'other-root');
      const name = randomName();
      const r = e!.podrun(['--root', other, 'up', '-d', sleepPod(e!, name)]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('Cannot use the supervisor');
      expect(r.stderr).toContain('--root');
      expect(fs.existsSync(path.join(e!.runRoot, 'pods', `default_${name}`))).toBe(false);
      expect(fs.existsSync(other)).toBe(false);
    } finally {
      expect(e!.podrun(['down', keep]).status).toBe(0);
    }
    await waitFor('no pod dirs left', () => fs.readdirSync(path.join(e!.runRoot, 'pods')).length === 0 || undefined, 10_000);
  }, 120_000);
});
