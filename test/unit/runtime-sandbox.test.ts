import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkHostPath, hostsFile } from '../../src/runtime/sandbox.js';
import { checkSubPath, readImageFile } from '../../src/runtime/container.js';
import { parseSignal } from '../../src/runtime/driver.js';
import { notRunningReason } from '../../src/runtime/api.js';
import { fromJson, toJson } from '../../src/runtime/state.js';
import type { PodPlan } from '../../src/spec/plan.js';
import type { PodStatus } from '../../src/runtime/controller/status.js';
import type { ImageRecord } from '../../src/image/types.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const plan = (p: Partial<PodPlan>) => ({ name: 'web', namespace: 'default', hostname: 'web', hostAliases: [], ...p }) as PodPlan;

describe('/etc/hosts', () => {
  it('maps the hostname to the pod IP, or 127.0.1.1 without one, and adds hostAliases', () => {
    const t = hostsFile(plan({ hostAliases: [{ ip: '10.0.0.9', hostnames: ['a.example', 'b'] }] }), '10.181.0.5');
    expect(t).toContain('127.0.0.1\tlocalhost\n');
    expect(t).toContain('10.181.0.5\tweb\n');
    expect(t).toContain('# Entries added by HostAliases.\n10.0.0.9\ta.example\tb\n');
    expect(hostsFile(plan({}), undefined)).toContain('127.0.1.1\tweb\n');
    expect(hostsFile(plan({ subdomain: 'svc1' }), '10.1.1.1')).toContain('10.1.1.1\tweb.svc1.default.svc.cluster.local\tweb\n');
  });
});

describe('hostPath types', () => {
  it('checks and creates as Kubernetes does', () => {
    const f = path.join(dir, 'f');
    fs.writeFileSync(f, '');
    expect(() => checkHostPath('v', f, 'File')).not.toThrow();
    expect(() => checkHostPath('v', f, 'Directory')).toThrow(/Cannot mount hostPath volume "v": ".*" is not an existing directory/);
    expect(() => checkHostPath('v', path.join(dir, 'none'), '')).toThrow(/does not exist/);
    checkHostPath('v', path.join(dir, 'new/dir'), 'DirectoryOrCreate');
    expect(fs.statSync(path.join(dir, 'new/dir')).isDirectory()).toBe(true);
    checkHostPath('v', path.join(dir, 'x/file'), 'FileOrCreate');
    expect(fs.statSync(path.join(dir, 'x/file')).isFile()).toBe(true);
    expect(() => checkHostPath('v', dir, 'Socket')).toThrow(/is not a socket/);
  });
});

describe('subPath', () => {
  it('is checked without creating anything: relative, inner symlinks resolved, outer ones refused', () => {
    fs.mkdirSync(path.join(dir, 'vol/inner'), { recursive: true, mode: 0o750 });
    fs.chmodSync(path.join(dir, 'vol'), 0o750);
    fs.symlinkSync('inner', path.join(dir, 'vol/link'));
    fs.symlinkSync('/etc', path.join(dir, 'vol/out'));
    fs.symlinkSync('../..', path.join(dir, 'vol/inner/up'));
    const root = fs.realpathSync(path.join(dir, 'vol'));
    // a missing part is left for the shim to create (mkdirat in the dir it opened)
    expect(checkSubPath('v', root, 'a/b')).toEqual({ root, path: 'a/b', createMode: 0o750 });
    expect(fs.existsSync(path.join(root, 'a'))).toBe(false);
    expect(checkSubPath('v', root, 'link/x').path).toBe('inner/x');
    expect(checkSubPath('v', root, './inner').path).toBe('inner');
    expect(() => checkSubPath('v', root, 'out')).toThrow(/leaves the volume/);
    expect(() => checkSubPath('v', root, 'inner/up')).toThrow(/leaves the volume/);
    expect(() => checkSubPath('v', root, '../x')).toThrow(/without ".."/);
    expect(() => checkSubPath('v', root, '/abs')).toThrow(/without ".."/);
    expect(checkSubPath('v', root, '').path).toBe('');
  });
});

describe('image files', () => {
  it('reads the topmost layer, honouring overlay whiteouts', () => {
    const l1 = path.join(dir, 'l1');
    const l2 = path.join(dir, 'l2');
    fs.mkdirSync(path.join(l1, 'etc'), { recursive: true });
    fs.mkdirSync(path.join(l2, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(l1, 'etc/passwd'), 'old');
    fs.writeFileSync(path.join(l1, 'etc/group'), 'g');
    fs.writeFileSync(path.join(l2, 'etc/passwd'), 'new');
    const img = { layers: [{ dir: l1 }, { dir: l2 }] } as unknown as ImageRecord;
    expect(readImageFile(img, '/etc/passwd')).toBe('new');
    expect(readImageFile(img, '/etc/group')).toBe('g');
    expect(readImageFile(img, '/etc/shadow')).toBeUndefined();
  });
});

describe('small helpers', () => {
  it('parses stop signals', () => {
    expect(parseSignal('SIGQUIT')).toBe('SIGQUIT');
    expect(parseSignal('term')).toBe('SIGTERM');
    expect(parseSignal('9')).toBe(9);
    expect(parseSignal('NOPE')).toBeUndefined();
    expect(parseSignal(undefined)).toBeUndefined();
  });

  it('keeps bytes through JSON', () => {
    const v = { a: new Uint8Array([0, 255, 7]), b: Buffer.from('hi') };
    const back = fromJson<{ a: Uint8Array; b: Uint8Array }>(toJson(v));
    expect([...back.a]).toEqual([0, 255, 7]);
    expect(Buffer.from(back.b).toString()).toBe('hi');
  });

  it('says why a pod is not running', () => {
    const cs = (name: string, state: object) => ({ name, state, lastState: {}, ready: false, restartCount: 0, image: '', imageID: '', started: false });
    const st = (c: object[], phase = 'Pending') => ({ phase, conditions: [], containerStatuses: c, qosClass: 'BestEffort' }) as unknown as PodStatus;
    expect(notRunningReason(st([cs('a', { running: { startedAt: '' } })], 'Running'))).toBeUndefined();
    expect(notRunningReason(st([cs('a', { terminated: { exitCode: 0, reason: 'Completed' } })], 'Succeeded'))).toBeUndefined();
    expect(notRunningReason(st([cs('a', { waiting: { reason: 'ContainerCreating' } })]))).toBe('pending');
    expect(notRunningReason(st([cs('a', { waiting: { reason: 'ErrImagePull', message: 'no such image' } })]))).toBe('container "a" is waiting: ErrImagePull: no such image');
    expect(notRunningReason(st([cs('a', { terminated: { exitCode: 2, reason: 'Error' } })], 'Failed'))).toBe('pod Failed: container "a" exited with 2 (Error)');
  });
});
