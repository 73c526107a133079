// The plan file and status lines between TypeScript and podrun-shim, without running it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import {
  DEFAULT_CAPABILITIES,
  escapeToken,
  isSameProcess,
  overlayOptions,
  parseStatusLine,
  processStartTime,
  serializeExecPlan,
  serializePlan,
  shimPath,
  startContainerProcess,
  unescapeToken,
  type ShimPlan,
} from '../../src/runtime/shim.js';

const plan = (): ShimPlan => ({
  containerId: 'web',
  stateDir: '/run/podrun/p/web',
  logPath: '/var/log/pods/ns_p_uid/web/0.log',
  rootfs: { lowerDirs: ['/l/2', '/l/1'], upperDir: '/c/upper', workDir: '/c/work', mountPoint: '/run/podrun/p/web/rootfs', readOnly: true },
  namespaces: { net: '/run/podrun/p/ns/net', ipc: '/run/podrun/p/ns/ipc', uts: '/run/podrun/p/ns/uts' },
  cgroupProcs: ['/sys/fs/cgroup/podrun/p/web/cgroup.procs'],
  cgroupMount: { version: 2 },
  mounts: [{ source: '/vol/a b', target: '/data', readOnly: true }],
  maskedPaths: ['/proc/kcore'],
  readonlyPaths: ['/proc/sys'],
  sysctls: [{ name: 'net.ipv4.ip_forward', value: '1' }],
  process: {
    args: ['sh', '-c', 'echo "a b"; echo 100%', ''],
    env: ['PATH=/bin', 'EMPTY='],
    cwd: '/',
    uid: 1000,
    gid: 1000,
    additionalGids: [1000, 2000],
    noNewPrivileges: true,
    capabilities: { bounding: ['CAP_CHOWN', 'NET_ADMIN'], effective: ['CAP_CHOWN'], permitted: ['CAP_CHOWN'], inheritable: [], ambient: [] },
    rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 }],
  },
});

afterEach(() => {
  delete process.env.PODRUN_SHIM;
});

test('tokens: spaces, percent, newlines, UTF-8 and the empty string survive the round trip', () => {
  for (const s of ['plain', 'a b', '100%', 'line\nnext', 'tab\there', 'ünïcødé', '', '%', '%41']) {
    const t = escapeToken(s);
    expect(t).toMatch(/^[\x21-\x7e]+$/);
    expect(unescapeToken(t)).toBe(s);
  }
  expect(escapeToken('a b')).toBe('a%20b');
  expect(escapeToken('')).toBe('%');
});

test('the plan file: one key per line, capability names as numbers, args in order', () => {
  const text = serializePlan(plan());
  const lines = text.trimEnd().split('\n');
  expect(lines[0]).toBe('version 1');
  expect(lines).toContain('rootfs.data lowerdir=/l/2:/l/1,upperdir=/c/upper,workdir=/c/work');
  expect(lines).toContain('rootfs.readonly 1');
  expect(lines).toContain('cgroupfs 2');
  expect(lines).toContain('bind /vol/a%20b /data ro rec');
  expect(lines).toContain('cap.bounding 0 12');
  expect(lines).toContain('cap.effective 0');
  expect(lines).toContain('cap.ambient');
  expect(lines).toContain('groups 1000 2000');
  expect(lines).toContain('nnp 1');
  expect(lines).toContain('rlimit 7 1024 4096');
  expect(lines).toContain('sysctl net.ipv4.ip_forward 1');
  expect(lines.filter((l) => l.startsWith('arg '))).toEqual(['arg sh', 'arg -c', 'arg echo%20"a%20b";%20echo%20100%25', 'arg %']);
  expect(lines).toContain('env EMPTY=');
  expect(lines.some((l) => l.startsWith('ns.pid'))).toBe(false);
});

test('bad input is refused before anything runs', () => {
  const p = plan();
  p.process.capabilities.effective = ['CAP_FLY'];
  expect(() => serializePlan(p)).toThrow(/Cannot set capability "CAP_FLY" \(effective\): unknown capability name/);
  const q = plan();
  q.process.rlimits = [{ type: 'RLIMIT_WINGS', soft: 1, hard: 1 }];
  expect(() => serializePlan(q)).toThrow(/unknown resource/);
  const r = plan();
  r.rootfs.lowerDirs = [];
  expect(() => serializePlan(r)).toThrow(/without layers/);
  const s = plan();
  s.process.args = [];
  expect(() => serializePlan(s)).toThrow(/without args/);
});

test('overlay options: absolute while they fit one page, relative to the common directory beyond', () => {
  const short = overlayOptions({ lowerDirs: ['/a:b/1', '/a,c'], upperDir: '/u', workDir: '/w', mountPoint: '/m', readOnly: false });
  expect(short).toEqual({ data: 'lowerdir=/a\\:b/1:/a\\,c,upperdir=/u,workdir=/w' });
  const hex = (i: number) => i.toString(16).padStart(64, '0');
  const lowers = Array.from({ length: 50 }, (_, i) => `/var/lib/podrun/layers/${hex(i)}`);
  const long = overlayOptions({ lowerDirs: lowers, upperDir: '/var/lib/podrun/containers/x/upper', workDir: '/var/lib/podrun/containers/x/work', mountPoint: '/m', readOnly: false });
  expect(long.cwd).toBe('/var/lib/podrun');
  expect(long.data.length).toBeLessThan(4096);
  expect(long.data).toMatch(/^lowerdir=layers\/0{64}:layers\//);
  expect(long.data).toContain(',upperdir=containers/x/upper,workdir=containers/x/work');
  const tooMany = Array.from({ length: 200 }, (_, i) => `/var/lib/podrun/layers/${hex(i)}`);
  expect(() => overlayOptions({ lowerDirs: tooMany, upperDir: '/x/u', workDir: '/x/w', mountPoint: '/m', readOnly: false })).toThrow(/Cannot mount a rootfs of 200 layers/);
});

test('exec plan joins the target\'s namespaces by /proc path', () => {
  const text = serializeExecPlan({
    pid: 42,
    startTime: 777,
    cgroupProcs: ['/sys/fs/cgroup/x/cgroup.procs'],
    terminal: true,
    process: { ...plan().process, capabilities: { bounding: DEFAULT_CAPABILITIES, effective: [], permitted: [], inheritable: [], ambient: [] } },
  });
  expect(text).toContain('target 42 777\n');
  expect(text).toContain('join mnt /proc/42/ns/mnt\n');
  expect(text).toContain('terminal 1\n');
});

test('status lines', () => {
  expect(parseStatusLine('step mount-overlay /run/x%20y')).toEqual({ kind: 'step', name: 'mount-overlay', detail: '/run/x y' });
  expect(parseStatusLine('error execve 2 /bin/nope')).toEqual({ kind: 'error', e: { step: 'execve', errno: 2, path: '/bin/nope' } });
  expect(parseStatusLine('started 123 456789')).toEqual({ kind: 'started', pid: 123, startTime: 456789 });
});

test('process identity by pid and start time', () => {
  const st = processStartTime(process.pid)!;
  expect(st).toBeGreaterThan(0);
  expect(isSameProcess(process.pid, st)).toBe(true);
  expect(isSameProcess(process.pid, st + 1)).toBe(false);
  expect(processStartTime(2 ** 22 + 1)).toBeUndefined();
});

test('a missing shim binary is an ESHIM error with a build hint', () => {
  process.env.PODRUN_SHIM = `${os.tmpdir()}/no-such-podrun-shim`;
  expect(() => shimPath()).toThrow(expect.objectContaining({ code: 'ESHIM', hint: expect.stringContaining('make -C native-shims') }));
});

test('rlimits are clamped to the caller\'s hard limits', async () => {
  const { clampRlimits, parseLimits } = await import('../../src/runtime/shim.js');
  const limits = parseLimits(
    'Limit                     Soft Limit           Hard Limit           Units\nMax processes             96364                96364                processes\nMax open files            1024                 20000                files\nMax core file size        0                    unlimited            bytes\n',
  );
  expect(limits).toEqual({ NPROC: { soft: 96364, hard: 96364 }, NOFILE: { soft: 1024, hard: 20000 }, CORE: { soft: 0, hard: -1 } });
  expect(clampRlimits([{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 }, { type: 'CORE', soft: -1, hard: -1 }, { type: 'NPROC', soft: 10, hard: 20 }], limits)).toEqual([
    { type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 },
    { type: 'CORE', soft: -1, hard: -1 },
    { type: 'NPROC', soft: 10, hard: 20 },
  ]);
  expect(clampRlimits([{ type: 'NOFILE', soft: 5, hard: 10 }]).length).toBe(1);
});

test('a monitor whose "started" line comes in the same read as its pid is recorded with that pid', async () => {
  // A stand-in spawner that answers each request in one write: pid, a started line, end of file.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-spawner-'));
  try {
    const fake = path.join(dir, 'fake-shim');
    fs.writeFileSync(fake, '#!/bin/sh\nwhile read -r cmd id rest; do printf "%s pid 31337\\n%s line started 4242 77\\n%s eof\\n" "$id" "$id" "$id"; done\n', { mode: 0o755 });
    process.env.PODRUN_SHIM = fake;
    const p = { ...plan(), stateDir: dir };
    expect(await startContainerProcess(p)).toEqual({ monitorPid: 31337, pid: 4242, startTime: 77 });
    expect(fs.readFileSync(path.join(dir, 'plan'), 'utf8')).toBe(serializePlan(p));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
