/**
 * readImageFile over crafted layer stacks: a hostile /etc symlink never reaches the host, symlinks
 * resolve against the image root, whiteouts and opaque dirs stop the search; and the default
 * resolver does not pick up a host passwd through such a symlink.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readImageFile } from '../../src/runtime/container.js';
import { defaultResolver, hostCapabilities } from '../../src/runtime/driver.js';
import { parseManifests } from '../../src/spec/parse.js';
import type { ImageRecord } from '../../src/image/types.js';
import type { PodState } from '../../src/runtime/state.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Layer dirs, bottom first, built from {path: content | {link} | 'dir'}. */
function layers(...specs: Record<string, string | { link: string } | { dir: true }>[]): ImageRecord {
  const stack = fs.mkdtempSync(path.join(dir, 'image-'));
  const out = specs.map((spec, i) => {
    const l = path.join(stack, `layer${i}`);
    fs.mkdirSync(l);
    for (const [rel, v] of Object.entries(spec)) {
      const p = path.join(l, rel);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      if (typeof v === 'string') fs.writeFileSync(p, v);
      else if ('link' in v) fs.symlinkSync(v.link, p);
      else fs.mkdirSync(p, { recursive: true });
    }
    return { dir: l };
  });
  return { layers: out, config: {} } as unknown as ImageRecord;
}

const isRoot = process.getuid?.() === 0;

describe('readImageFile', () => {
  it('never follows an /etc symlink out to a host dir with a fake passwd', () => {
    const host = path.join(dir, 'host-etc');
    fs.mkdirSync(host);
    fs.writeFileSync(path.join(host, 'passwd'), 'evil:x:4242:4242::/:/bin/sh\n');
    const img = layers({ 'etc': { link: host } });
    expect(readImageFile(img, '/etc/passwd')).toBeUndefined();
    // a relative escape ("../../..") stops at the image root
    const img2 = layers({ 'etc': { link: `../../../../../../..${host}` } });
    expect(readImageFile(img2, '/etc/passwd')).toBeUndefined();
    // a symlinked passwd file itself
    const img3 = layers({ 'etc/passwd': { link: path.join(host, 'passwd') } });
    expect(readImageFile(img3, '/etc/passwd')).toBeUndefined();
  });

  it('resolves symlinks against the image root, across layers', () => {
    const img = layers({ 'real/etc/passwd': 'in-image\n', 'lib/x': 'y' }, { 'etc': { link: '/real/etc' } });
    expect(readImageFile(img, '/etc/passwd')).toBe('in-image\n');
    const rel = layers({ 'real/etc/passwd': 'rel\n' }, { 'etc': { link: '../real/./etc' } });
    expect(readImageFile(rel, '/etc/passwd')).toBe('rel\n');
    const loop = layers({ 'etc': { link: '/etc' } });
    expect(readImageFile(loop, '/etc/passwd')).toBeUndefined();
  });

  it('takes the top layer first and merges directories', () => {
    const img = layers({ 'etc/passwd': 'old', 'etc/group': 'g' }, { 'etc/passwd': 'new' });
    expect(readImageFile(img, '/etc/passwd')).toBe('new');
    expect(readImageFile(img, '/etc/group')).toBe('g');
    expect(readImageFile(img, '/etc/shadow')).toBeUndefined();
    // a file over a lower directory hides what is below
    const hidden = layers({ 'etc/passwd': 'old' }, { 'etc': 'a file' });
    expect(readImageFile(hidden, '/etc/passwd')).toBeUndefined();
  });

  it('stops at an opaque directory', () => {
    const img = layers({ 'etc/passwd': 'old', 'etc/group': 'g' }, { 'etc/passwd': 'new' });
    const top = img.layers[1]!.dir;
    const opaque = (p: string) => p === path.join(top, 'etc');
    expect(readImageFile(img, '/etc/passwd', opaque)).toBe('new');
    expect(readImageFile(img, '/etc/group', opaque)).toBeUndefined();
  });

  it.skipIf(!isRoot)('stops at a whiteout (a 0:0 char device) of the file or of a parent dir', () => {
    const img = layers({ 'etc/passwd': 'old', 'etc/group': 'g' }, { 'etc/.keep': '' }, {});
    execFileSync('mknod', [path.join(img.layers[1]!.dir, 'etc/passwd'), 'c', '0', '0']);
    expect(readImageFile(img, '/etc/passwd')).toBeUndefined();
    expect(readImageFile(img, '/etc/group')).toBe('g');
    execFileSync('mknod', [path.join(img.layers[2]!.dir, 'etc'), 'c', '0', '0']);
    expect(readImageFile(img, '/etc/group')).toBeUndefined();
  });
});

describe('defaultResolver', () => {
  const state = (user: string, privileged = false): { st: PodState; img: (l: ImageRecord) => ImageRecord } => {
    const set = parseManifests(
      `apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: busybox\n${privileged ? '    securityContext: {privileged: true}\n' : ''}`,
    );
    const plan = set.pods[0]!;
    const st = { plan, uid: 'u', name: 'p', namespace: 'default', key: 'default_p' } as unknown as PodState;
    return { st, img: (l) => ({ ...l, config: { User: user, Cmd: ["/bin/sh"] } }) as ImageRecord };
  };

  it('does not resolve the image user from a host passwd behind an /etc symlink', async () => {
    const host = path.join(dir, 'host-etc');
    fs.mkdirSync(host);
    fs.writeFileSync(path.join(host, 'passwd'), 'evil:x:4242:4242::/:/bin/sh\n');
    fs.writeFileSync(path.join(host, 'group'), 'evil:x:4242:\n');
    const { st, img } = state('evil');
    const image = img(layers({ 'bin/sh': '', 'etc': { link: host } }));
    await expect(defaultResolver(st, st.plan.containers[0]!, image)).rejects.toThrow(/evil/);
  });

  it('gives a privileged container exactly the host bounding set', async () => {
    const { st, img } = state('', true);
    const p = await defaultResolver(st, st.plan.containers[0]!, img(layers({ 'etc/passwd': 'root:x:0:0::/:/bin/sh\n' })));
    const host = await hostCapabilities();
    expect(p.capabilities.bounding).toEqual(host);
    expect(p.capabilities.effective).toEqual(host);
    if (!host?.includes('CAP_SYS_RESOURCE')) expect(p.capabilities.bounding).not.toContain('CAP_SYS_RESOURCE');
  });
});
