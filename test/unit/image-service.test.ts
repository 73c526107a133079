import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImageService } from '../../src/image/service.js';
import { ImageStore, REF_NAME } from '../../src/image/store.js';
import { chainIds, selectPlatform } from '../../src/image/pull.js';
import type { Syscalls } from '../../src/linux/syscalls.js';
import type { PodrunEvent } from '../../src/util/events.js';
import { isPodrunError } from '../../src/util/errors.js';
import { addImage, addIndex } from './layout-fixture.js';

/** Whiteouts become marker files, xattrs are recorded: enough to test pull logic without root. */
const fakeSc = {
  mknod(p: string) {
    fs.writeFileSync(p, '', { flag: 'wx' });
  },
  lsetxattr() {},
} as unknown as Syscalls;

let base: string;
let remote: ImageStore;
let events: PodrunEvent[];
let svc: ImageService;
const REG = '127.0.0.1:5999/test';

const L1 = [{ name: 'bin/', type: 'dir' }, { name: 'bin/sh', content: '#!sh', mode: 0o755 }, { name: 'etc/old', content: 'old' }, { name: 'opt/a', content: 'a' }];
const L2 = [{ name: 'etc/.wh.old' }, { name: 'opt/.wh..wh..opq' }, { name: 'opt/b', content: 'b' }, { name: 'bin/ln', type: 'symlink', linkname: 'sh' }];

beforeEach(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-svc-'));
  remote = new ImageStore(path.join(base, 'remote')).init();
  events = [];
  svc = new ImageService({ root: path.join(base, 'root'), syscalls: fakeSc, events: (e) => events.push(e), openSource: () => remote.asSource() });
});

afterEach(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

describe('ImageService over an OCI layout source', () => {
  it('pulls into an OCI layout store with one unpacked dir per chain ID, emitting progress events', async () => {
    const img = addImage(remote, [L1, L2]);
    await remote.tag('v1', img.manifest);
    const rec = await svc.pullImage(`${REG}/img:v1`);
    expect(rec.names).toEqual([`${REG}/img:v1`]);
    expect(rec.digest).toBe(img.manifest.digest);
    expect(rec.layers.map((l) => l.chainId)).toEqual(chainIds(img.diffIds));
    expect(fs.readFileSync(path.join(rec.layers[0].dir, 'bin/sh'), 'utf8')).toBe('#!sh');
    expect(fs.existsSync(path.join(rec.layers[1].dir, 'etc/old'))).toBe(true); // the whiteout marker
    const idx = JSON.parse(fs.readFileSync(path.join(base, 'root/store/index.json'), 'utf8'));
    expect(idx.manifests.map((d: { annotations: Record<string, string> }) => d.annotations[REF_NAME])).toEqual([`${REG}/img:v1`]);
    expect(fs.readFileSync(path.join(base, 'root/store/oci-layout'), 'utf8')).toContain('1.0.0');
    expect(events.filter((e) => e.type === 'pull.layer' && e.phase === 'done')).toHaveLength(2);
    expect(events.at(-1)).toEqual({ type: 'pull.done', ref: `${REG}/img:v1`, digest: img.manifest.digest });
    // second pull: everything cached
    events = [];
    await svc.pullImage(`${REG}/img:v1`);
    expect(events.filter((e) => e.type === 'pull.layer' && e.phase === 'cached')).toHaveLength(2);
  });

  it('lists, finds by short digest, flattens, removes and prunes', async () => {
    const img = addImage(remote, [L1, L2]);
    await remote.tag('v1', img.manifest);
    await svc.pullImage(`${REG}/img:v1`);
    await svc.pullImage(`${REG}/img@${img.manifest.digest}`);
    const list = await svc.listImages();
    expect(list).toHaveLength(1);
    expect(list[0].names.sort()).toEqual([`${REG}/img:v1`, `${REG}/img@${img.manifest.digest}`].sort());
    expect((await svc.imageStatus(img.manifest.digest.slice(7, 19)))?.digest).toBe(img.manifest.digest);
    expect(await svc.imageStatus(`${REG}/other:v1`)).toBeUndefined();

    const out = path.join(base, 'rootfs');
    await svc.unpackImage(`${REG}/img:v1`, out);
    expect(fs.readdirSync(path.join(out, 'etc'))).toEqual([]);
    expect(fs.readdirSync(path.join(out, 'opt'))).toEqual(['b']);
    expect(fs.readlinkSync(path.join(out, 'bin/ln'))).toBe('sh');

    expect(await svc.removeImage(`${REG}/img:v1`)).toEqual([`${REG}/img:v1`]);
    let pruned = await svc.pruneImages();
    expect(pruned.blobs).toBe(0); // still named by digest
    await svc.removeImage(`${REG}/img@${img.manifest.digest}`);
    pruned = await svc.pruneImages();
    expect(pruned).toMatchObject({ blobs: 4, layers: 2 });
    expect(fs.readdirSync(path.join(base, 'root/store/blobs/sha256'))).toEqual([]);
    expect(fs.readdirSync(path.join(base, 'root/layers'))).toEqual([]);
    const err = await svc.removeImage(`${REG}/img:v1`).catch((e) => e);
    expect(isPodrunError(err, 'ENOTFOUND')).toBe(true);
  });

  it('selects the platform from an index (default linux/amd64, --platform, variants)', async () => {
    const amd = addImage(remote, [[{ name: 'arch', content: 'amd64' }]]);
    const arm = addImage(remote, [[{ name: 'arch', content: 'arm64' }]], { os: 'linux', architecture: 'arm64', variant: 'v8' });
    const armv7 = addImage(remote, [[{ name: 'arch', content: 'armv7' }]], { os: 'linux', architecture: 'arm', variant: 'v7' });
    const index = addIndex(remote, [amd.manifest, arm.manifest, armv7.manifest]);
    await remote.tag('multi', index);
    const a = await svc.pullImage(`${REG}/m:multi`);
    expect(a.digest).toBe(amd.manifest.digest);
    expect(a.indexDigest).toBe(index.digest);
    const b = await svc.pullImage(`${REG}/m:multi`, { platform: 'linux/arm64' });
    expect(b.digest).toBe(arm.manifest.digest);
    expect(fs.readFileSync(path.join(b.layers[0].dir, 'arch'), 'utf8')).toBe('arm64');
    const c = await svc.pullImage(`${REG}/m:multi`, { platform: 'linux/arm/v7' });
    expect(c.platform).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    const err = await svc.pullImage(`${REG}/m:multi`, { platform: 'linux/s390x' }).catch((e) => e);
    expect(err.message).toMatch(/Cannot find platform "linux\/s390x" in the image index: it has "linux\/amd64", "linux\/arm64\/v8", "linux\/arm\/v7"/);
    const single = addImage(remote, [[{ name: 'arch', content: 'amd64' }]]);
    await remote.tag('single', single.manifest);
    const err2 = await svc.pullImage(`${REG}/m:single`, { platform: 'linux/arm64' }).catch((e) => e);
    expect(err2.message).toMatch(/it is a single-platform image for "linux\/amd64"/);
    expect((await svc.pullImage(`${REG}/m:single`, { platform: 'linux/amd64' })).digest).toBe(single.manifest.digest);
    expect(() => selectPlatform({ schemaVersion: 2, manifests: [arm.manifest] }, { os: 'linux', architecture: 'arm64', variant: 'v8' })).not.toThrow();
  });

  it('a layer whose DiffID does not match leaves no name and no layer dir', async () => {
    const img = addImage(remote, [L1], undefined, { badDiffId: true });
    await remote.tag('bad', img.manifest);
    const err = await svc.pullImage(`${REG}/img:bad`).catch((e) => e);
    expect(isPodrunError(err, 'EDIGEST')).toBe(true);
    expect(await svc.listImages()).toEqual([]);
    expect(fs.readdirSync(path.join(base, 'root/layers'))).toEqual([]);
  });

  it('resumes an interrupted blob from its ingest file', async () => {
    const img = addImage(remote, [L1, L2]);
    await remote.tag('v1', img.manifest);
    const layer = img.layers[0];
    const full = fs.readFileSync(remote.blobPath(layer.digest));
    const store = new ImageStore(path.join(base, 'root')).init();
    fs.writeFileSync(path.join(store.ingestDir, `${layer.digest.slice(7)}.partial`), full.subarray(0, 40));
    const offsets: number[] = [];
    const src = remote.asSource();
    svc = new ImageService({
      root: path.join(base, 'root'),
      syscalls: fakeSc,
      openSource: () => ({ ...src, getBlob: (d, o) => (offsets.push(o?.offset ?? 0), src.getBlob(d, o)) }),
    });
    const rec = await svc.pullImage(`${REG}/img:v1`);
    expect(offsets).toContain(40);
    expect(fs.readFileSync(store.blobPath(layer.digest))).toEqual(full);
    expect(fs.readFileSync(path.join(rec.layers[0].dir, 'bin/sh'), 'utf8')).toBe('#!sh');
  });

  it('two pulls of the same image at once both succeed and share the layers', async () => {
    const img = addImage(remote, [L1, L2]);
    await remote.tag('v1', img.manifest);
    const other = new ImageService({ root: path.join(base, 'root'), syscalls: fakeSc, openSource: () => remote.asSource() });
    const [a, b] = await Promise.all([svc.pullImage(`${REG}/img:v1`), other.pullImage(`${REG}/img:v1`)]);
    expect(a.digest).toBe(b.digest);
    expect(fs.readdirSync(path.join(base, 'root/layers')).sort()).toEqual(a.layers.map((l) => l.chainId.slice(7)).sort());
  });

  it('ensureImage follows the pull policy', async () => {
    const img = addImage(remote, [L1]);
    await remote.tag('v1', img.manifest);
    const never = await svc.ensureImage(`${REG}/img:v1`, 'Never').catch((e) => e);
    expect(isPodrunError(never, 'ENOTFOUND')).toBe(true);
    expect(never.message).toMatch(/imagePullPolicy is "Never"/);
    const rec = await svc.ensureImage(`${REG}/img:v1`, 'IfNotPresent');
    events = [];
    expect((await svc.ensureImage(`${REG}/img:v1`, 'IfNotPresent')).digest).toBe(rec.digest);
    expect(events).toEqual([]);
    expect((await svc.ensureImage(`${REG}/img:v1`, 'Never')).digest).toBe(rec.digest);
  });
});
