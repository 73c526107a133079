// cgroup limits on the real kernel, observed through the kernel's counters and from inside the
// container: memory (OOM kill counted), CPU (throttled), pids (forks refused), requests → weight
// or shares, cleanup. v2-only expectations run when the host is v2; with PODRUN_EXPECT_CGROUP=2
// (the VM) a v1 host fails them instead of skipping.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { detectCgroupVersion, openCgroups } from '../../src/linux/cgroups.js';
import { waitExitStatus } from '../../src/runtime/shim.js';
import { eventually, expectedCgroupVersion, isAlive, TestSandbox } from '../helpers/sandbox.js';

const version = detectCgroupVersion();
const expected = expectedCgroupVersion();

let sb: TestSandbox;
beforeAll(() => {
  sb = new TestSandbox();
});
afterAll(async () => {
  await sb.cleanup();
  expect(sb.cg.exists(sb.id)).toBe(false);
  expect(sb.pidsToKill.alive()).toEqual([]);
});

/** Skip a version-specific test on the other version, unless the environment demands it. */
function requireVersion(v: 1 | 2, skip: () => void): void {
  if (version === v) return;
  if (expected === v) throw new Error(`PODRUN_EXPECT_CGROUP=${v} but this host runs cgroup v${version}`);
  skip();
}

test('the host runs the cgroup version the environment expects', () => {
  if (expected) expect(version).toBe(expected);
  expect(sb.cg.version).toBe(version);
});

test('memory limit: visible inside, an over-allocation is OOM-killed and counted', async () => {
  const limit = 32 * 1024 * 1024;
  const inside = version === 2 ? '/sys/fs/cgroup/memory.max' : '/sys/fs/cgroup/memory/memory.limit_in_bytes';
  const c = sb.container('oom', ['sh', '-c', `cat ${inside}; exec dd if=/dev/zero of=/dev/null bs=100M count=1`], { limits: { memoryBytesLimit: limit } });
  const st = await sb.run(c);
  expect(sb.stdout(c)[0]).toBe(String(limit));
  expect(st).toMatchObject({ exitCode: 137, signal: 9 });
  expect(sb.cg.stats(c.cgroup).oomKills).toBeGreaterThan(0);
});

test('cpu limit throttles a busy loop (100m: about 10% of one CPU)', async () => {
  const c = sb.container('cpu', ['sh', '-c', 'while :; do :; done & sleep 1; kill $!'], { limits: { cpuMillisLimit: 100 } });
  const t0 = Date.now();
  await sb.run(c);
  const elapsedUsec = (Date.now() - t0) * 1000;
  const s = sb.cg.stats(c.cgroup);
  expect(s.nrThrottled).toBeGreaterThan(0);
  expect(s.throttledUsec).toBeGreaterThan(0);
  // 100m allows 10% of one CPU over the container's whole life; unthrottled the loop alone would
  // use about all of it. Relative to the elapsed time, so a slow machine (TCG) does not fail it.
  expect(s.cpuUsageUsec).toBeLessThan(0.4 * elapsedUsec);
});

test('pids.max refuses forks beyond the limit', async () => {
  // busybox sh gives up at the first refused fork
  const c = sb.container('pids', ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait'], { limits: { pidsMax: 4 } });
  const st = await sb.run(c);
  expect(st.exitCode).not.toBe(0);
  expect(sb.log(c).filter((l) => l.stream === 'stderr').map((l) => l.text).join('\n')).toMatch(/can't fork: Resource temporarily unavailable/);
  const pidsDir = sb.cg.dirs(c.cgroup).find((d) => version === 2 || d.includes('/pids/'))!;
  expect(fs.readFileSync(path.join(pidsDir, 'pids.max'), 'utf8').trim()).toBe('4');
  expect(Number(/max (\d+)/.exec(fs.readFileSync(path.join(pidsDir, 'pids.events'), 'utf8'))![1])).toBeGreaterThan(0);
});

test('cpu requests become cpu.weight (v2) or cpu.shares (v1)', async () => {
  const c = sb.container('weight', ['true'], { limits: { cpuMillisRequest: 500 } });
  const dir = sb.cg.dirs(c.cgroup)[0];
  if (version === 2) expect(fs.readFileSync(path.join(dir, 'cpu.weight'), 'utf8').trim()).toBe('20');
  else expect(fs.readFileSync(path.join(sb.cg.dirs(c.cgroup).find((d) => d.includes('/cpu/'))!, 'cpu.shares'), 'utf8').trim()).toBe('512');
});

test('killAll and remove: a running container cgroup is emptied and removed', async () => {
  const c = sb.container('kill', ['sleep', '30']);
  const started = await sb.start(c);
  expect(sb.cg.pids(c.cgroup)).toEqual([started.pid]);
  await expect(openCgroups({ retries: 2, retryDelayMs: 10 }).remove(c.cgroup)).rejects.toMatchObject({ code: 'ECGROUP', message: expect.stringMatching(/EBUSY/) });
  await sb.cg.killAll(c.cgroup);
  expect(await waitExitStatus(c.plan.stateDir)).toMatchObject({ signal: 9 });
  await sb.cg.remove(c.cgroup);
  expect(sb.cg.exists(c.cgroup)).toBe(false);
});

test('v1: the container sees its own cgroup as the root of each hierarchy', async (ctx) => {
  requireVersion(1, () => ctx.skip());
  const c = sb.container('v1-ns', ['cat', '/proc/self/cgroup']);
  await sb.run(c);
  const lines = sb.stdout(c);
  for (const h of ['memory', 'pids', 'cpu', 'cpuacct', 'cpuset']) expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^\\d+:${h}:/$`)));
});

test('v2: controllers enabled top-down, processes only in leaves, "0::/" inside, memory.events', async (ctx) => {
  requireVersion(2, () => ctx.skip());
  const c = sb.container('v2', ['sh', '-c', 'cat /proc/self/cgroup; cat /sys/fs/cgroup/cgroup.controllers; sleep 30']);
  const started = await sb.start(c);
  const root = path.dirname(path.dirname(path.dirname(sb.cg.dirs(c.cgroup)[0])));
  for (const d of [root, path.join(root, sb.id), path.join(root, sb.id, 'pod')]) {
    const enabled = fs.readFileSync(path.join(d, 'cgroup.subtree_control'), 'utf8').trim().split(' ');
    expect(enabled).toEqual(expect.arrayContaining(['cpu', 'memory', 'pids']));
  }
  expect(fs.readFileSync(path.join(root, sb.id, 'pod', 'cgroup.procs'), 'utf8')).toBe('');
  expect(fs.readFileSync(path.join(root, sb.id, 'cgroup.procs'), 'utf8')).toBe('');
  // the leaf holds the container init (and, for a moment, the `cat` it forks)
  expect(fs.readFileSync(path.join(sb.cg.dirs(c.cgroup)[0], 'cgroup.procs'), 'utf8').trim().split('\n')).toContain(String(started.pid));
  await eventually(() => sb.stdout(c).length >= 2);
  expect(sb.stdout(c)[0]).toBe('0::/');
  expect(sb.stdout(c)[1].split(' ')).toEqual(expect.arrayContaining(['cpu', 'memory', 'pids']));
  expect(fs.readFileSync(path.join(sb.cg.dirs(c.cgroup)[0], 'memory.events'), 'utf8')).toMatch(/oom_kill \d+/);
  process.kill(started.pid, 'SIGKILL');
  await waitExitStatus(c.plan.stateDir);
});

test('hybrid host: the v2 driver and the cgroup2 mount work on the unified hierarchy beside v1', async (ctx) => {
  const unified = '/sys/fs/cgroup/unified';
  if (version !== 1 || !fs.existsSync(path.join(unified, 'cgroup.procs'))) ctx.skip();
  const v2 = openCgroups({ version: 2, root: unified });
  const rel = `${sb.id}-v2/pod/ctr`;
  try {
    v2.create(rel);
    const c = sb.container('unified', ['sh', '-c', 'grep "^0::" /proc/self/cgroup; grep -x 1 /sys/fs/cgroup/cgroup.procs; grep " /sys/fs/cgroup " /proc/self/mountinfo | sed "s/.* - //" | cut -d" " -f1'], {
      plan: { cgroupProcs: v2.procsFiles(rel), cgroupMount: { version: 2 } },
    });
    const started = await sb.start(c);
    const st = await waitExitStatus(c.plan.stateDir);
    expect(st?.exitCode).toBe(0);
    expect(sb.stdout(c)).toEqual(['0::/', '1', 'cgroup2']);
    // the process ran in the leaf, nothing in the parents
    expect(fs.readFileSync(path.join(unified, `${sb.id}-v2/pod/cgroup.procs`), 'utf8')).toBe('');
    expect(started.pid).toBeGreaterThan(0);
  } finally {
    await v2.killAll(`${sb.id}-v2`);
    await v2.remove(`${sb.id}-v2`);
  }
  expect(v2.exists(`${sb.id}-v2`)).toBe(false);
});
