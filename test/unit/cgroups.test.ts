// The cgroup drivers against fake control files in a temp dir (youki style), both versions.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import {
  detectCgroupVersion,
  discoverV1,
  limitsToV1,
  limitsToV2,
  milliCpuToShares,
  openCgroups,
  parseKeyValues,
  sharesToWeight,
} from '../../src/linux/cgroups.js';
import { parseMountinfo } from '../../src/linux/mounts.js';
import type { PodrunEvent } from '../../src/util/events.js';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-unit-cg-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const read = (...p: string[]) => fs.readFileSync(path.join(tmp, ...p), 'utf8');
const write = (p: string, v: string) => {
  fs.mkdirSync(path.dirname(path.join(tmp, p)), { recursive: true });
  fs.writeFileSync(path.join(tmp, p), v);
};

describe('value mapping', () => {
  test('cpu requests become shares and weight as kubelet and runc compute them', () => {
    expect(milliCpuToShares(1000)).toBe(1024);
    expect(milliCpuToShares(1)).toBe(2);
    expect(sharesToWeight(1024)).toBe(39);
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(262144)).toBe(10000);
  });

  test('v2 values', () => {
    expect(limitsToV2({ cpuMillisLimit: 500, cpuMillisRequest: 250, memoryBytesLimit: 64 << 20, pidsMax: 100 })).toEqual([
      ['cpu.max', '50000 100000'],
      ['cpu.weight', String(sharesToWeight(256))],
      ['memory.max', String(64 << 20)],
      ['memory.swap.max', '0'],
      ['pids.max', '100'],
    ]);
    expect(limitsToV2({ cpuMillisLimit: 1 })).toEqual([['cpu.max', '1000 100000']]);
  });

  test('v1 values', () => {
    expect(limitsToV1({ cpuMillisLimit: 200, cpuMillisRequest: 1000, memoryBytesLimit: 1 << 20, pidsMax: 5 })).toEqual([
      ['cpu.cfs_period_us', '100000'],
      ['cpu.cfs_quota_us', '20000'],
      ['cpu.shares', '1024'],
      ['memory.limit_in_bytes', String(1 << 20)],
      ['memory.memsw.limit_in_bytes', String(1 << 20)],
      ['pids.max', '5'],
    ]);
  });

  test('key-value parsing ignores junk', () => {
    expect(parseKeyValues('oom_kill_disable 0\nunder_oom 0\noom_kill 3\n\nbad line here\n')).toEqual(
      new Map([
        ['oom_kill_disable', 0],
        ['under_oom', 0],
        ['oom_kill', 3],
      ]),
    );
  });
});

describe('detection', () => {
  test('cgroup2 at /sys/fs/cgroup is v2, a tmpfs with v1 hierarchies is v1', () => {
    const v2 = parseMountinfo('30 22 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n');
    expect(detectCgroupVersion(v2)).toBe(2);
    const v1 = parseMountinfo(
      [
        '30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
        '31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
        '34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
        '39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
        '40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
      ].join('\n'),
    );
    expect(detectCgroupVersion(v1)).toBe(1);
    expect(discoverV1(v1)).toEqual({
      cpu: { dir: '/sys/fs/cgroup/cpu,cpuacct', options: 'cpu,cpuacct' },
      cpuacct: { dir: '/sys/fs/cgroup/cpu,cpuacct', options: 'cpu,cpuacct' },
      memory: { dir: '/sys/fs/cgroup/memory', options: 'memory' },
    });
  });
});

describe('v2 driver', () => {
  function fakeV2() {
    write('cgroup.controllers', 'cpuset cpu io memory hugetlb pids');
    write('cgroup.subtree_control', 'cpuset');
    // the kernel creates these on mkdir; the fake pre-creates the intermediate levels' files
    write('podrun-test-x/cgroup.controllers', 'cpu memory pids');
    write('podrun-test-x/cgroup.subtree_control', '');
    write('podrun-test-x/pod/cgroup.controllers', 'cpu memory pids');
    write('podrun-test-x/pod/cgroup.subtree_control', '');
  }

  test('create enables controllers top-down in each ancestor, never in the leaf', () => {
    fakeV2();
    const events: PodrunEvent[] = [];
    const cg = openCgroups({ version: 2, root: tmp, sink: (e) => events.push(e) });
    cg.create('podrun-test-x/pod/ctr');
    expect(fs.statSync(path.join(tmp, 'podrun-test-x/pod/ctr')).isDirectory()).toBe(true);
    expect(read('cgroup.subtree_control')).toBe('+cpu +memory +pids');
    expect(read('podrun-test-x/cgroup.subtree_control')).toBe('+cpu +memory +pids');
    expect(read('podrun-test-x/pod/cgroup.subtree_control')).toBe('+cpu +memory +pids');
    expect(fs.existsSync(path.join(tmp, 'podrun-test-x/pod/ctr/cgroup.subtree_control'))).toBe(false);
    expect(events.some((e) => e.type === 'trace' && e.area === 'cgroup' && e.step === 'mkdir')).toBe(true);
    expect(cg.procsFiles('podrun-test-x/pod/ctr')).toEqual([path.join(tmp, 'podrun-test-x/pod/ctr/cgroup.procs')]);
  });

  test('limits, stats, pids', () => {
    fakeV2();
    const cg = openCgroups({ version: 2, root: tmp });
    cg.create('podrun-test-x/pod/ctr');
    write('podrun-test-x/pod/ctr/memory.swap.max', 'max');
    cg.setLimits('podrun-test-x/pod/ctr', { cpuMillisLimit: 200, cpuMillisRequest: 1000, memoryBytesLimit: 32 << 20, pidsMax: 10 });
    expect(read('podrun-test-x/pod/ctr/cpu.max')).toBe('20000 100000');
    expect(read('podrun-test-x/pod/ctr/cpu.weight')).toBe('39');
    expect(read('podrun-test-x/pod/ctr/memory.max')).toBe(String(32 << 20));
    expect(read('podrun-test-x/pod/ctr/memory.swap.max')).toBe('0');
    expect(read('podrun-test-x/pod/ctr/pids.max')).toBe('10');

    write('podrun-test-x/pod/ctr/memory.events', 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n');
    write('podrun-test-x/pod/ctr/cpu.stat', 'usage_usec 500\nuser_usec 400\nsystem_usec 100\nnr_periods 10\nnr_throttled 7\nthrottled_usec 900\n');
    write('podrun-test-x/pod/ctr/memory.current', '4096\n');
    write('podrun-test-x/pod/ctr/pids.current', '3\n');
    write('podrun-test-x/pod/ctr/cgroup.procs', '12\n34\n');
    expect(cg.stats('podrun-test-x/pod/ctr')).toEqual({
      memoryCurrent: 4096,
      oomKills: 1,
      nrPeriods: 10,
      nrThrottled: 7,
      throttledUsec: 900,
      cpuUsageUsec: 500,
      pidsCurrent: 3,
    });
    expect(cg.pids('podrun-test-x')).toEqual([12, 34]);
  });

  test('remove takes leaves first and ignores what is gone; never the root', async () => {
    fakeV2();
    const cg = openCgroups({ version: 2, root: tmp });
    cg.create('podrun-test-x/pod/a');
    cg.create('podrun-test-x/pod/b');
    // fake control files would make rmdir fail on a real dir: remove them as the kernel would not need to
    for (const f of ['cgroup.controllers', 'cgroup.subtree_control']) {
      fs.rmSync(path.join(tmp, 'podrun-test-x', f));
      fs.rmSync(path.join(tmp, 'podrun-test-x/pod', f));
    }
    await cg.remove('podrun-test-x');
    expect(fs.existsSync(path.join(tmp, 'podrun-test-x'))).toBe(false);
    await cg.remove('podrun-test-x'); // idempotent
    expect(() => cg.create('../etc')).toThrow(/must be relative/);
    await expect(cg.remove('')).rejects.toThrow(/non-empty/);
    expect(fs.existsSync(path.join(tmp, 'cgroup.controllers'))).toBe(true);
  });

  test('a failed write names the value, the file and the cause', () => {
    fakeV2();
    const cg = openCgroups({ version: 2, root: tmp });
    expect(() => cg.apply('podrun-test-x/missing', [['cpu.max', '1 2']])).toThrow(/Cannot write "1 2" to ".*podrun-test-x\/missing\/cpu.max": ENOENT/);
  });
});

describe('v1 driver', () => {
  function fakeV1() {
    const h: Record<string, { dir: string; options: string }> = {};
    for (const c of ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids']) {
      fs.mkdirSync(path.join(tmp, c));
      h[c] = { dir: path.join(tmp, c), options: c };
    }
    write('cpuset/cpuset.cpus', '0-1\n');
    write('cpuset/cpuset.mems', '0\n');
    return h;
  }

  test('create makes the path in every hierarchy and copies cpusets level by level', () => {
    const cg = openCgroups({ version: 1, v1Hierarchies: fakeV1() });
    cg.create('podrun-test-x/pod/ctr');
    for (const c of ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids']) expect(fs.existsSync(path.join(tmp, c, 'podrun-test-x/pod/ctr'))).toBe(true);
    expect(read('cpuset/podrun-test-x/cpuset.cpus')).toBe('0-1');
    expect(read('cpuset/podrun-test-x/pod/ctr/cpuset.mems')).toBe('0');
    expect(cg.procsFiles('podrun-test-x/pod/ctr')).toHaveLength(5);
    expect(cg.mountPlan()).toEqual({
      version: 1,
      hierarchies: ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids'].map((c) => ({ dir: c, options: c })),
    });
  });

  test('limits are routed to their hierarchy; memsw is skipped without swap accounting', () => {
    const cg = openCgroups({ version: 1, v1Hierarchies: fakeV1() });
    cg.create('podrun-test-x/c');
    cg.setLimits('podrun-test-x/c', { cpuMillisLimit: 1500, cpuMillisRequest: 500, memoryBytesLimit: 1 << 24, pidsMax: 7 });
    expect(read('cpu/podrun-test-x/c/cpu.cfs_quota_us')).toBe('150000');
    expect(read('cpu/podrun-test-x/c/cpu.cfs_period_us')).toBe('100000');
    expect(read('cpu/podrun-test-x/c/cpu.shares')).toBe('512');
    expect(read('memory/podrun-test-x/c/memory.limit_in_bytes')).toBe(String(1 << 24));
    expect(fs.existsSync(path.join(tmp, 'memory/podrun-test-x/c/memory.memsw.limit_in_bytes'))).toBe(false);
    expect(read('pids/podrun-test-x/c/pids.max')).toBe('7');
    write('memory/podrun-test-x/c/memory.memsw.limit_in_bytes', '9223372036854771712');
    cg.setLimits('podrun-test-x/c', { memoryBytesLimit: 1 << 25 });
    expect(read('memory/podrun-test-x/c/memory.memsw.limit_in_bytes')).toBe(String(1 << 25));
  });

  test('stats from v1 files (throttled_time is in ns)', () => {
    const cg = openCgroups({ version: 1, v1Hierarchies: fakeV1() });
    cg.create('podrun-test-x/c');
    write('memory/podrun-test-x/c/memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    write('memory/podrun-test-x/c/memory.usage_in_bytes', '8192\n');
    write('memory/podrun-test-x/c/memory.failcnt', '40\n');
    write('cpu/podrun-test-x/c/cpu.stat', 'nr_periods 20\nnr_throttled 5\nthrottled_time 3000000\n');
    write('cpuacct/podrun-test-x/c/cpuacct.usage', '7000000\n');
    write('pids/podrun-test-x/c/pids.current', '1\n');
    expect(cg.stats('podrun-test-x/c')).toEqual({
      memoryCurrent: 8192,
      oomKills: 2,
      memoryFailcnt: 40,
      nrPeriods: 20,
      nrThrottled: 5,
      throttledUsec: 3000,
      cpuUsageUsec: 7000,
      pidsCurrent: 1,
    });
  });

  test('a controller without a hierarchy is a clear error', () => {
    const h = fakeV1();
    delete h.pids;
    const cg = openCgroups({ version: 1, v1Hierarchies: h });
    cg.create('podrun-test-x/c');
    expect(() => cg.setLimits('podrun-test-x/c', { pidsMax: 3 })).toThrow(/no v1 hierarchy for controller "pids"/);
  });
});
