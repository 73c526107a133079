// pinNamespaces with a recording fake Syscalls: the order of steps, and that every error path
// goes back to the saved namespaces and removes what it made. (The real kernel: integration.)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { pinNamespaces } from '../../src/linux/namespaces.js';
import { CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWUTS, type Syscalls } from '../../src/linux/syscalls.js';
import { SyscallError } from '../../src/util/errors.js';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-unit-ns-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function recorder(failOn?: { call: string; nth?: number; errno: number }) {
  const calls: string[] = [];
  const counts = new Map<string, number>();
  const hit = (name: string, desc: string) => {
    calls.push(desc);
    const n = (counts.get(name) ?? 0) + 1;
    counts.set(name, n);
    if (failOn && failOn.call === name && (failOn.nth ?? 1) === n) throw new SyscallError(name, failOn.errno, desc);
  };
  const sys = {
    unshare: (f: number) => hit('unshare', `unshare ${f}`),
    sethostname: (h: string) => hit('sethostname', `sethostname ${h}`),
    mount: (s: string, t: string) => hit('mount', `mount ${s} ${path.basename(t)}`),
    umount2: (t: string) => hit('umount2', `umount2 ${path.basename(t)}`),
    setns: (_fd: number, t: number) => hit('setns', `setns ${t}`),
  } as unknown as Syscalls;
  return { sys, calls };
}

const back = [`setns ${CLONE_NEWNET}`, `setns ${CLONE_NEWIPC}`, `setns ${CLONE_NEWUTS}`];

test('the steps in order: unshare, sethostname, three pins, setns back to each saved namespace', () => {
  const { sys, calls } = recorder();
  const pins = pinNamespaces(sys, path.join(tmp, 'ns'), { hostname: 'web' });
  expect(calls).toEqual([
    `unshare ${CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS}`,
    'sethostname web',
    'mount /proc/thread-self/ns/net net',
    'mount /proc/thread-self/ns/ipc ipc',
    'mount /proc/thread-self/ns/uts uts',
    ...back,
  ]);
  expect(pins.net).toBe(path.join(tmp, 'ns', 'net'));
});

test('a failing sethostname still goes back, and leaves no pin file', () => {
  const { sys, calls } = recorder({ call: 'sethostname', errno: 22 });
  expect(() => pinNamespaces(sys, path.join(tmp, 'ns'), { hostname: 'x' })).toThrow(/sethostname.*EINVAL/);
  expect(calls.slice(-3)).toEqual(back);
  expect(fs.existsSync(path.join(tmp, 'ns'))).toBe(false);
});

test('a failing second pin goes back, then unmounts the first pin', () => {
  const { sys, calls } = recorder({ call: 'mount', nth: 2, errno: 1 });
  expect(() => pinNamespaces(sys, path.join(tmp, 'ns'), { hostname: 'x' })).toThrow(/Cannot mount ".*ipc": EPERM/);
  expect(calls.slice(-4)).toEqual([...back, 'umount2 net']);
});

test('a failing unshare still restores (setns to where we already are is harmless)', () => {
  const { sys, calls } = recorder({ call: 'unshare', errno: 1 });
  expect(() => pinNamespaces(sys, path.join(tmp, 'ns'), { hostname: 'x' })).toThrow(/unshare.*EPERM/);
  expect(calls).toEqual([`unshare ${CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS}`, ...back]);
});

test('a failure to go back is reported as such', () => {
  const { sys } = recorder({ call: 'setns', nth: 2, errno: 22 });
  expect(() => pinNamespaces(sys, path.join(tmp, 'ns'), { hostname: 'x' })).toThrow(/Cannot return to the original ipc namespace/);
});
