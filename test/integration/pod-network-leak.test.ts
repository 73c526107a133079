/**
 * The pod-level network leak test of issue 4, through the real CLI: 50 `podrun up -d` / `podrun
 * down` cycles of a one-container pod on a per-test CNI network (podrun-test-<rand> bridge, a
 * 10.255.x.0/28 subnet = 13 pod addresses, temp conflist dir), with the background supervisor
 * SIGKILLed in a few cycles (once right after `up -d`, once while `up -d` is still attaching),
 * followed by `down` or `gc`. Afterwards: no port on the bridge, no IP lease, no iptables/nft line
 * mentioning the network, no mount (namespace pin) under the temp dirs, no pod cgroup — and since
 * host-local hands out addresses round-robin, 50 cycles on 13 addresses only succeed when every
 * lease comes back (a leak shows as exhaustion; every address is seen in use at least once).
 * Only addresses inside the test subnet and 127.0.0.1 (the registry) are involved.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { defaultConflist, conflistPath, DEFAULT_NETWORK, ipamDataDir } from '../../src/runtime/network/index.js';
import { createTestNetwork, havePlugins, type TestNetwork } from '../helpers/cni-net.js';
import { BIN, cgroupDirs, mountsBelow, processesMentioning, randomName, sleepPod, startPodEnv, supervisorPid, waitFor, type PodEnv } from '../helpers/pod.js';

const skipReason = process.getuid?.() !== 0 ? 'needs root' : !havePlugins ? 'needs containernetworking-plugins' : '';
const CYCLES = Number(process.env.PODRUN_LEAK_CYCLES) || 50;

let e: PodEnv | undefined;
let tn: TestNetwork | undefined;
let netFlags: string[] = [];

/** The CLI on the test network. */
function cli(args: string[], timeoutMs?: number) {
  return e!.podrun([...netFlags, ...args], { timeoutMs });
}

const alive = (pid: number) => {
  try {
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** host-local's lease files (named by address) of the test network. */
function leases(): string[] {
  const d = path.join(ipamDataDir(e!.runRoot), tn!.name);
  if (!fs.existsSync(d)) return [];
  return fs.readdirSync(d).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).sort();
}

async function killSupervisor(): Promise<void> {
  const sup = await waitFor('the supervisor pid', () => supervisorPid(e!.runRoot), 10_000, 20);
  process.kill(sup, 'SIGKILL');
  await waitFor('the supervisor to die', () => !alive(sup), 10_000, 20);
}

function ok(r: { status: number | null; stderr: string; stdout: string }, what: string): void {
  expect(r.status, `${what}: ${r.stderr}${r.stdout}`).toBe(0);
}

describe.skipIf(!!skipReason)('pod network leaks through the CLI', () => {
  beforeAll(async () => {
    e = await startPodEnv();
    tn = await createTestNetwork();
    // the runtime reads <conf dir>/podrun.conflist; ours names the test network and bridge
    const list = defaultConflist({ name: tn.name, bridge: tn.name, subnet: tn.subnet });
    fs.writeFileSync(conflistPath(tn.confDir, DEFAULT_NETWORK), JSON.stringify(list, null, 2) + '\n');
    netFlags = ['--network', 'default', '--cni-conf-dir', tn.confDir];
  }, 120_000);

  afterAll(async () => {
    if (e) {
      const sup = supervisorPid(e!.runRoot);
      if (sup) process.kill(sup, 'SIGKILL');
      if (tn) cli(['gc']); // releases CNI attachments (the harness's own gc runs with --network none)
    }
    await e?.cleanup();
    await tn?.cleanup();
  }, 60_000);

  it(`${CYCLES} up -d / down cycles with supervisor SIGKILLs leave no veth, lease, rule, pin or cgroup`, async () => {
    const seen = new Set<string>();
    const started = Date.now();
    // cycle → how it ends: supervisor killed after up then down/gc, or killed while up attaches
    const plan: Record<number, 'kill-down' | 'kill-gc' | 'kill-during-up-down' | 'kill-during-up-gc'> = {
      5: 'kill-down',
      14: 'kill-gc',
      23: 'kill-during-up-down',
      31: 'kill-down',
      38: 'kill-during-up-gc',
      45: 'kill-gc',
    };
    for (let i = 0; i < CYCLES; i++) {
      const t0 = Date.now();
      const name = randomName();
      const file = sleepPod(e!, name);
      const how = plan[i];
      if (how?.startsWith('kill-during-up')) {
        // SIGKILL the supervisor while it attaches the pod: as soon as the lease exists
        const global = ['--root', e!.root, '--run-root', e!.runRoot, '--log-root', e!.logRoot, '--registry-config', path.join(e!.dir, 'registries.yaml')];
        const client = spawn(BIN, [...global, ...netFlags, 'up', '-d', file], { env: e!.env, stdio: 'ignore' });
        const exited = new Promise<void>((r) => client.on('close', () => r()));
        try {
          await waitFor(`a lease for ${name}`, () => leases().length > 0, 30_000, 5);
          await killSupervisor();
          // KNOWN BUG (reported): the `up -d` client does not notice that the supervisor closed the
          // socket without an answer and waits for its 300 s request timeout; end it by pid.
          await Promise.race([exited, new Promise((r) => setTimeout(r, 2_000))]);
        } finally {
          if (client.exitCode === null && client.signalCode === null) client.kill('SIGKILL');
          await exited;
        }
      } else {
        ok(cli(['up', '-d', file]), `cycle ${i}: up -d ${name}`);
        const mine = leases();
        expect(mine, `cycle ${i}: one lease while ${name} runs`).toHaveLength(1);
        seen.add(mine[0]);
        if (how) await killSupervisor();
      }
      if (how?.endsWith('gc')) ok(cli(['gc']), `cycle ${i}: gc after killing the supervisor`);
      else {
        const r = cli(['down', name]);
        // after a kill during up the pod may never have been recorded: down may then not find it
        if (!how?.startsWith('kill-during-up')) ok(r, `cycle ${i}: down ${name}`);
        else if (r.status !== 0) ok(cli(['gc']), `cycle ${i}: gc after a failed down`);
      }
      if ((i + 1) % 10 === 0 || how) {
        expect(leases(), `cycle ${i}: leases after ${how ?? 'down'}`).toEqual([]);
        expect(await tn!.bridgePorts(), `cycle ${i}: bridge ports`).toEqual([]);
      }
      if (process.env.PODRUN_LEAK_VERBOSE) process.stderr.write(`cycle ${i} ${how ?? ''} ${Date.now() - t0} ms\n`);
    }
    const elapsed = Date.now() - started;
    console.log(`${CYCLES} cycles in ${(elapsed / 1000).toFixed(1)} s (${(elapsed / CYCLES).toFixed(0)} ms each); ${seen.size} distinct pod IPs`);

    // the leak conditions
    expect(leases()).toEqual([]);
    expect(await tn!.bridgePorts()).toEqual([]);
    expect(await tn!.firewallMentions()).toEqual([]);
    expect(mountsBelow(e!.dir)).toEqual([]);
    expect(fs.readdirSync(path.join(e!.runRoot, 'pods'))).toEqual([]);
    expect(cgroupDirs(e!.cgroupParent).flatMap((d) => fs.readdirSync(d, { withFileTypes: true }).filter((x) => x.isDirectory()).map((x) => path.join(d, x.name)))).toEqual([]);
    // round-robin over 13 addresses: 44+ successful ups wrap around several times, so every
    // address was handed out (and came back) — a leaked lease would have exhausted the /28
    if (CYCLES >= 30) expect(seen.size).toBe(13);
    // the subnet still has room: a last pod gets an address
    const last = randomName();
    ok(cli(['up', '-d', sleepPod(e!, last)]), 'a last up -d');
    expect(leases()).toHaveLength(1);
    ok(cli(['down', last]), 'down of the last pod');
    expect(leases()).toEqual([]);
    expect(await tn!.bridgePorts()).toEqual([]);
    const sup = supervisorPid(e!.runRoot);
    if (sup) process.kill(sup, 'SIGKILL');
    await waitFor('no podrun process left', () => processesMentioning(e!.dir).filter((p) => p !== sup).length === 0, 10_000);
  }, 240_000);
});
