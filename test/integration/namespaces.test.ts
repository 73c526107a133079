// Pinning net/ipc/uts on the real kernel from Node's main thread: the thread is back in its own
// namespaces afterwards, also after an injected failure; pins keep the namespaces; unpin removes
// them; lo-up brings the loopback up in a pin.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { realSyscalls as sys } from '../../src/linux/ffi.js';
import { isMountpoint, mountsUnder, umountRecursive } from '../../src/linux/mounts.js';
import { pinNamespaces, threadNamespace, unpin } from '../../src/linux/namespaces.js';
import { loopbackUp } from '../../src/runtime/shim.js';
import type { Syscalls } from '../../src/linux/syscalls.js';

let base: string;
const kinds = ['net', 'ipc', 'uts', 'mnt', 'pid', 'cgroup'];
const snapshot = () => Object.fromEntries(kinds.map((k) => [k, threadNamespace(k)]));

beforeEach(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-ns-'));
});
afterEach(() => {
  umountRecursive(sys, base);
  fs.rmSync(base, { recursive: true, force: true });
});

const nsInode = (link: string) => Number(/\[(\d+)\]/.exec(link)![1]);

test('pins new namespaces, names the UTS one, and leaves the thread where it was', () => {
  const before = snapshot();
  const hostBefore = os.hostname();
  const name = `podrun-test-${crypto.randomBytes(3).toString('hex')}`;
  const pins = pinNamespaces(sys, path.join(base, 'run', 'ns'), { hostname: name, privateRoot: path.join(base, 'run') });
  expect(snapshot()).toEqual(before);
  expect(os.hostname()).toBe(hostBefore);
  for (const k of ['net', 'ipc', 'uts'] as const) {
    expect(isMountpoint(pins[k])).toBe(true);
    // the pin is a different namespace than ours
    expect(fs.statSync(pins[k]).ino).not.toBe(nsInode(before[k]));
  }
  expect(execFileSync('nsenter', [`--uts=${pins.uts}`, 'hostname'], { encoding: 'utf8' }).trim()).toBe(name);
  expect(execFileSync('nsenter', [`--net=${pins.net}`, 'ip', '-o', 'link'], { encoding: 'utf8' })).toMatch(/lo:.*state DOWN/);
  // the private root: pins are not propagated anywhere (no shared: tag)
  const runMount = mountsUnder(path.join(base, 'run')).find((m) => m.mountPoint === path.join(base, 'run'));
  expect(runMount?.propagation.filter((p) => p.startsWith('shared:'))).toEqual([]);

  unpin(sys, pins.dir);
  for (const k of ['net', 'ipc', 'uts'] as const) expect(fs.existsSync(pins[k])).toBe(false);
  expect(mountsUnder(path.join(base, 'run')).map((m) => m.mountPoint)).toEqual([path.join(base, 'run')]);
  unpin(sys, pins.dir); // idempotent
});

test('an injected failure in the middle leaves the thread in its namespaces and nothing mounted', () => {
  const before = snapshot();
  let mounts = 0;
  const failing: Syscalls = {
    ...sys,
    mount(source, target, fstype, flags, data) {
      if (++mounts === 3) throw Object.assign(new Error('injected'), { errnoName: 'EIO' });
      sys.mount(source, target, fstype, flags, data);
    },
  };
  expect(() => pinNamespaces(failing, path.join(base, 'ns'), { hostname: 'podrun-test-fail' })).toThrow(/injected/);
  expect(snapshot()).toEqual(before);
  expect(mountsUnder(base)).toEqual([]);
  expect(fs.existsSync(path.join(base, 'ns'))).toBe(false);
});

test('lo-up brings the loopback up inside the pinned network namespace', async () => {
  const pins = pinNamespaces(sys, path.join(base, 'ns'), { hostname: 'podrun-test-lo' });
  try {
    await loopbackUp(pins.net);
    const out = execFileSync('nsenter', [`--net=${pins.net}`, 'ip', '-o', 'link', 'show', 'lo'], { encoding: 'utf8' });
    expect(out).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
    const addr = execFileSync('nsenter', [`--net=${pins.net}`, 'ip', '-o', 'addr', 'show', 'lo'], { encoding: 'utf8' });
    expect(addr).toContain('127.0.0.1/8');
  } finally {
    unpin(sys, pins.dir);
  }
});

test('pinNamespaces with loopbackUp: lo is up in the new namespace, and the host keeps its own', () => {
  const hostLo = execFileSync('ip', ['-o', 'link', 'show', 'lo'], { encoding: 'utf8' });
  const pins = pinNamespaces(sys, path.join(base, 'ns'), { hostname: 'podrun-test-lo2', loopbackUp: true });
  try {
    const out = execFileSync('nsenter', [`--net=${pins.net}`, 'ip', '-o', 'link', 'show', 'lo'], { encoding: 'utf8' });
    expect(out).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
    const addr = execFileSync('nsenter', [`--net=${pins.net}`, 'ip', '-o', 'addr', 'show', 'lo'], { encoding: 'utf8' });
    expect(addr).toContain('127.0.0.1/8');
    // the calling thread is back in the host's namespace, whose lo is untouched
    expect(execFileSync('ip', ['-o', 'link', 'show', 'lo'], { encoding: 'utf8' })).toBe(hostLo);
  } finally {
    unpin(sys, pins.dir);
  }
});

test('a missing namespace file is an ESHIM error naming the step and path', async () => {
  await expect(loopbackUp(path.join(base, 'nope'))).rejects.toMatchObject({ code: 'ESHIM', step: 'setns-net', errnoName: 'ENOENT' });
});
