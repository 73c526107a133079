import { createHash } from 'node:crypto';
import { link, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildImage, buildIndex, buildLayer, disposeImage, type BlobData } from '../../src/image/builder.js';

interface Got {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname?: string | null;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
  content: string;
}

async function entries(data: BlobData, gzip: boolean): Promise<Got[]> {
  let bytes = Buffer.isBuffer(data) ? data : await readFile(data.path);
  if (gzip) bytes = gunzipSync(bytes);
  const ex = tar.extract();
  const out: Got[] = [];
  const done = (async () => {
    for await (const e of ex) {
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      const h = e.header;
      out.push({
        name: h.name,
        type: h.type,
        mode: h.mode,
        uid: h.uid,
        gid: h.gid,
        mtime: Math.floor(h.mtime.getTime() / 1000),
        linkname: h.linkname,
        devmajor: h.devmajor,
        devminor: h.devminor,
        pax: (h.pax as Record<string, string> | null) ?? undefined,
        content: Buffer.concat(chunks).toString('utf8'),
      });
    }
  })();
  Readable.from([bytes]).pipe(ex as unknown as NodeJS.WritableStream);
  await done;
  return out;
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('buildLayer from entries', () => {
  test('types, modes, owners, mtimes, xattrs, whiteouts, opaque markers, devices; parents added', async () => {
    const l = await buildLayer({
      entries: [
        { type: 'file', path: '/a/b/file', content: 'x', mode: 0o4750, uid: 7, gid: 8, mtime: 1_600_000_000, xattrs: { 'user.k': 'v' } },
        { type: 'symlink', path: 'a/sym', target: '../etc' },
        { type: 'hardlink', path: 'a/hard', target: '/a/b/file' },
        { type: 'whiteout', path: 'a/gone' },
        { type: 'opaque', path: 'o' },
        { type: 'char', path: 'dev/null', major: 1, minor: 3 },
        { type: 'fifo', path: 'p' },
      ],
    });
    const got = await entries(l.data, true);
    expect(got.map((e) => [e.name, e.type])).toEqual([
      ['a/', 'directory'],
      ['a/b/', 'directory'],
      ['a/b/file', 'file'],
      ['a/sym', 'symlink'],
      ['a/hard', 'link'],
      ['a/.wh.gone', 'file'],
      ['o/', 'directory'],
      ['o/.wh..wh..opq', 'file'],
      ['dev/', 'directory'],
      ['dev/null', 'character-device'],
      ['p', 'fifo'],
    ]);
    const file = got[2];
    expect(file).toMatchObject({ mode: 0o4750, uid: 7, gid: 8, mtime: 1_600_000_000, content: 'x' });
    expect(file.pax).toMatchObject({ 'SCHILY.xattr.user.k': 'v' });
    expect(got[3].linkname).toBe('../etc');
    expect(got[4].linkname).toBe('a/b/file');
    expect(got[5].content).toBe(''); // (tar-stream writes mode 0 as 0644)
    expect(got[9]).toMatchObject({ devmajor: 1, devminor: 3, mode: 0o666 });
    // digest over the blob, diffId over the tar
    const blob = l.data as Buffer;
    expect(l.descriptor.digest).toBe(sha(blob));
    expect(l.descriptor.size).toBe(blob.length);
    expect(l.diffId).toBe(sha(gunzipSync(blob)));
    expect(l.descriptor.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
  });

  test('uncompressed: digest equals diffId; raw headers are written as given', async () => {
    const l = await buildLayer({ compression: 'none', entries: [{ type: 'raw', header: { name: '../escape', type: 'file', mode: 0o644 }, content: 'evil' }] });
    expect(l.descriptor.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    expect(l.descriptor.digest).toBe(l.diffId);
    const got = await entries(l.data, false);
    expect(got.map((e) => e.name)).toEqual(['../escape']);
  });

  test('paths that name the root are refused', async () => {
    await expect(buildLayer({ entries: [{ type: 'dir', path: '/' }] })).rejects.toThrow('Cannot build layer entry "/": the path names the root');
  });
});

describe('buildLayer from a host directory', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podrun-test-builder-'));
    await mkdir(join(dir, 'src/sub'), { recursive: true });
    await writeFile(join(dir, 'src/sub/one'), 'one');
    await chmod(join(dir, 'src/sub/one'), 0o640);
    await link(join(dir, 'src/sub/one'), join(dir, 'src/two'));
    await symlink('sub/one', join(dir, 'src/link'));
    await utimes(join(dir, 'src/sub/one'), 1_500_000_000, 1_500_000_000);
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  test('relative names, sorted; hardlinks by inode; symlinks; modes and mtimes; the blob is a temp file', async () => {
    const img = await buildImage({ layers: [{ hostDir: join(dir, 'src') }] });
    try {
      const l = img.layers[0];
      expect(Buffer.isBuffer(l.data)).toBe(false);
      const got = await entries(l.data, true);
      expect(got.map((e) => [e.name, e.type, e.linkname ?? null])).toEqual([
        ['link', 'symlink', 'sub/one'],
        ['sub/', 'directory', null],
        ['sub/one', 'file', null],
        ['two', 'link', 'sub/one'],
      ]);
      expect(got[2]).toMatchObject({ mode: 0o640, mtime: 1_500_000_000, content: 'one' });
    } finally {
      await disposeImage(img);
    }
  });
});

test('buildImage and buildIndex: config, manifest and index documents reference each other', async () => {
  const a = await buildImage({
    platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
    config: { Entrypoint: ['/bin/sh'], Cmd: ['-c', 'true'], User: '1000', WorkingDir: '/w', StopSignal: 'SIGTERM', Env: ['A=1'] },
    layers: [{ entries: [{ type: 'file', path: 'f' }] }, { compression: 'none', entries: [{ type: 'file', path: 'g' }] }],
  });
  const cfg = JSON.parse(a.config.toString('utf8'));
  expect(cfg).toMatchObject({ architecture: 'arm', os: 'linux', variant: 'v7', config: { Entrypoint: ['/bin/sh'], User: '1000', StopSignal: 'SIGTERM' } });
  expect(cfg.rootfs).toEqual({ type: 'layers', diff_ids: a.layers.map((l) => l.diffId) });
  const m = JSON.parse(a.manifest.toString('utf8'));
  expect(m.config).toEqual(a.configDescriptor);
  expect(m.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar']);
  expect(a.descriptor).toEqual({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(a.manifest), size: a.manifest.length, platform: a.platform });
  const idx = buildIndex([a]);
  expect(JSON.parse(idx.index.toString('utf8')).manifests).toEqual([a.descriptor]);
  expect(idx.descriptor.digest).toBe(sha(idx.index));
  // Deterministic: the same description gives the same digests.
  const b = await buildImage({
    platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
    config: { Entrypoint: ['/bin/sh'], Cmd: ['-c', 'true'], User: '1000', WorkingDir: '/w', StopSignal: 'SIGTERM', Env: ['A=1'] },
    layers: [{ entries: [{ type: 'file', path: 'f' }] }, { compression: 'none', entries: [{ type: 'file', path: 'g' }] }],
  });
  expect(b.descriptor.digest).toBe(a.descriptor.digest);
});
