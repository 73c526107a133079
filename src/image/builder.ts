/**
 * Build OCI images from a plain description and push them: layers are lists of entries (dirs,
 * files, symlinks, hardlinks, whiteouts, opaque markers, devices, raw crafted headers) or a whole
 * host directory; gzip or uncompressed; a config with Entrypoint/Cmd/Env/User/WorkingDir/StopSignal;
 * multi-platform indexes. Used by tests, fixtures and the seeding script, not by `podrun pull`.
 *
 *   const img = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'hello', content: 'hi' }] }], config: { Cmd: ['sh'] } });
 *   await pushImage('127.0.0.1:5000/demo:1', img);
 */
import { execFileSync } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, type Stats } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { PodrunError } from '../util/errors.js';
import { parseReference, type ImageRef } from './reference.js';
import { defaultRegistriesConfig } from './registry/config.js';
import { MEDIA_TYPES, openRemote, sha256, type RemoteOptions } from './registry/client.js';
import type { Descriptor, ImageConfig, Platform } from './types.js';

export interface EntryMeta {
  mode?: number; // permission bits (and setuid/setgid/sticky); default dir 0755, file 0644, symlink 0777
  uid?: number;
  gid?: number;
  /** Seconds since the epoch, or a Date; default 2020-01-01T00:00:00Z. */
  mtime?: number | Date;
  /** Extended attributes as PAX SCHILY.xattr.<name> records ("user.foo": "bar"). */
  xattrs?: Record<string, string>;
}

export type EntrySpec =
  | ({ type: 'dir'; path: string } & EntryMeta)
  | ({ type: 'file'; path: string; content?: string | Buffer } & EntryMeta)
  | ({ type: 'symlink'; path: string; target: string } & EntryMeta)
  | ({ type: 'hardlink'; path: string; target: string } & EntryMeta)
  | ({ type: 'char' | 'block'; path: string; major: number; minor: number } & EntryMeta)
  | ({ type: 'fifo'; path: string } & EntryMeta)
  /** Removes `path` from lower layers: writes "<dir>/.wh.<name>". */
  | { type: 'whiteout'; path: string }
  /** Hides everything lower layers have in directory `path`: writes "<path>/.wh..wh..opq". */
  | { type: 'opaque'; path: string }
  /** A header written as given (crafted/hostile archives); no parents are added for it. */
  | { type: 'raw'; header: TarHeader; content?: string | Buffer };

export interface LayerSpec {
  entries?: EntrySpec[];
  /** Archive this host directory (its contents, relative names) instead of / before `entries`. */
  hostDir?: string;
  /** Default gzip. */
  compression?: 'gzip' | 'none';
  gzipLevel?: number;
  /** Add missing parent directories (root:root 0755) before an entry. Default true. */
  parents?: boolean;
  /** A history line for the config. */
  createdBy?: string;
}

export interface ImageSpec {
  layers: LayerSpec[];
  config?: ImageConfig;
  platform?: Platform;
  /** RFC 3339; default 2020-01-01T00:00:00Z. */
  created?: string;
  /** OCI (default) or Docker v2 schema 2 media types. */
  format?: 'oci' | 'docker';
  annotations?: Record<string, string>;
}

/** Bytes in memory, or in a temp file (host directory layers). */
export type BlobData = Buffer | { path: string; size: number };

export interface BuiltLayer {
  descriptor: Descriptor;
  diffId: string;
  data: BlobData;
}

export interface BuiltImage {
  kind: 'image';
  platform: Platform;
  config: Buffer;
  configDescriptor: Descriptor;
  layers: BuiltLayer[];
  manifest: Buffer;
  /** Descriptor of the manifest (with platform, for use in an index). */
  descriptor: Descriptor;
  /** Temp dir holding file-backed layers; removed by disposeImage. */
  tmpDir?: string;
}

export interface BuiltIndex {
  kind: 'index';
  index: Buffer;
  descriptor: Descriptor;
  images: BuiltImage[];
}

/** A tar header as tar-stream takes it; `pax` adds PAX records. */
export type TarHeader = Partial<tar.Header> & { name: string; pax?: Record<string, string> };

const DEFAULT_MTIME = new Date('2020-01-01T00:00:00Z');

function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}

function toDate(m: number | Date | undefined): Date {
  if (m === undefined) return DEFAULT_MTIME;
  return m instanceof Date ? m : new Date(m * 1000);
}

function clean(p: string): string {
  const c = posix.normalize(p).replace(/^\/+/, '').replace(/\/+$/, '');
  if (c === '' || c === '.') throw new PodrunError('EINVAL_ARG', `Cannot build layer entry "${p}": the path names the root`);
  return c;
}

function pax(xattrs: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!xattrs || Object.keys(xattrs).length === 0) return undefined;
  return Object.fromEntries(Object.entries(xattrs).map(([k, v]) => [`SCHILY.xattr.${k}`, v]));
}

/** A transform that hashes and counts what passes through. */
class Tap extends Transform {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;
  _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

function writeEntry(pack: tar.Pack, header: TarHeader, content?: string | Buffer | Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (content === undefined || typeof content === 'string' || Buffer.isBuffer(content)) {
      if (content === undefined) pack.entry(header, (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, content, (err) => (err ? reject(err) : resolve()));
      return;
    }
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    (async () => {
      for await (const chunk of content) {
        if (!sink.write(chunk as Buffer)) await new Promise<void>((r) => sink.once('drain', () => r()));
      }
      sink.end(undefined as unknown as Buffer);
    })().catch((err) => {
      sink.destroy(err);
      reject(err);
    });
  });
}

async function writeSpecEntries(pack: tar.Pack, entries: EntrySpec[], parents: boolean, seen: Set<string>): Promise<void> {
  const ensureParents = async (p: string) => {
    if (!parents) return;
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (seen.has(dir)) continue;
      seen.add(dir);
      await writeEntry(pack, { name: `${dir}/`, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: DEFAULT_MTIME });
    }
  };
  for (const e of entries) {
    if (e.type === 'raw') {
      await writeEntry(pack, { mtime: DEFAULT_MTIME, ...e.header }, e.content);
      continue;
    }
    const path = clean(e.path);
    if (e.type === 'whiteout' || e.type === 'opaque') {
      const name = e.type === 'whiteout' ? posix.join(posix.dirname(path), `.wh.${posix.basename(path)}`) : `${path}/.wh..wh..opq`;
      const wh = name.startsWith('./') ? name.slice(2) : name;
      await ensureParents(wh);
      // Docker writes whiteouts with mode 0; tar-stream turns a 0 mode into 0644, which readers ignore.
      await writeEntry(pack, { name: wh, type: 'file', mode: 0, uid: 0, gid: 0, mtime: DEFAULT_MTIME }, Buffer.alloc(0));
      continue;
    }
    await ensureParents(path);
    const base = { uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: toDate(e.mtime), pax: pax(e.xattrs) };
    switch (e.type) {
      case 'dir':
        seen.add(path);
        await writeEntry(pack, { ...base, name: `${path}/`, type: 'directory', mode: e.mode ?? 0o755 });
        break;
      case 'file':
        await writeEntry(pack, { ...base, name: path, type: 'file', mode: e.mode ?? 0o644 }, Buffer.from(e.content ?? ''));
        break;
      case 'symlink':
        await writeEntry(pack, { ...base, name: path, type: 'symlink', linkname: e.target, mode: e.mode ?? 0o777 });
        break;
      case 'hardlink':
        await writeEntry(pack, { ...base, name: path, type: 'link', linkname: clean(e.target), mode: e.mode ?? 0o644 });
        break;
      case 'char':
      case 'block':
        await writeEntry(pack, {
          ...base,
          name: path,
          type: e.type === 'char' ? 'character-device' : 'block-device',
          mode: e.mode ?? 0o666,
          devmajor: e.major,
          devminor: e.minor,
        });
        break;
      case 'fifo':
        await writeEntry(pack, { ...base, name: path, type: 'fifo', mode: e.mode ?? 0o644 });
        break;
    }
  }
}

function devMajor(rdev: number): number {
  return Math.floor(rdev / 256) & 0xfff;
}
function devMinor(rdev: number): number {
  return (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00);
}

/** Archive a host directory: types, modes, owners, mtimes, hardlinks (by inode), devices. Sockets are skipped. */
async function writeHostDir(pack: tar.Pack, root: string, seen: Set<string>): Promise<void> {
  const inodes = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(rel ? join(root, rel) : root)).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const abs = join(root, r);
      const st: Stats = await lstat(abs);
      const base = { uid: st.uid, gid: st.gid, mtime: st.mtime, mode: st.mode & 0o7777 };
      if (st.isDirectory()) {
        seen.add(r);
        await writeEntry(pack, { ...base, name: `${r}/`, type: 'directory' });
        await walk(r);
      } else if (st.isSymbolicLink()) {
        await writeEntry(pack, { ...base, name: r, type: 'symlink', linkname: await readlink(abs) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? inodes.get(key) : undefined;
        if (first) {
          await writeEntry(pack, { ...base, name: r, type: 'link', linkname: first });
          continue;
        }
        if (st.nlink > 1) inodes.set(key, r);
        await writeEntry(pack, { ...base, name: r, type: 'file', size: st.size }, createReadStream(abs));
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        await writeEntry(pack, {
          ...base,
          name: r,
          type: st.isCharacterDevice() ? 'character-device' : 'block-device',
          devmajor: devMajor(st.rdev),
          devminor: devMinor(st.rdev),
        });
      } else if (st.isFIFO()) {
        await writeEntry(pack, { ...base, name: r, type: 'fifo' });
      }
    }
  };
  await walk('');
}

/**
 * Build one layer: the tar is hashed (DiffID), optionally gzipped and hashed again (blob digest).
 * Entry layers stay in memory; host-directory layers go to a file under `tmpDir`.
 */
export async function buildLayer(spec: LayerSpec, opts: { format?: 'oci' | 'docker'; tmpDir?: string } = {}): Promise<BuiltLayer> {
  const gzip = (spec.compression ?? 'gzip') === 'gzip';
  const pack = tar.pack();
  const diff = new Tap();
  const blob = new Tap();
  const chunks: Buffer[] = [];
  const toFile = spec.hostDir !== undefined && opts.tmpDir !== undefined;
  const filePath = toFile ? join(opts.tmpDir!, `layer-${Date.now()}-${Math.random().toString(36).slice(2)}`) : undefined;
  const sink = filePath
    ? createWriteStream(filePath)
    : new Writable({
        write(chunk: Buffer, _enc, cb) {
          chunks.push(chunk);
          cb();
        },
      });
  const stages: NodeJS.ReadWriteStream[] = [diff];
  if (gzip) stages.push(createGzip({ level: spec.gzipLevel ?? 6 }));
  stages.push(blob);
  const done = (pipeline as unknown as (...s: unknown[]) => Promise<void>)(pack, ...stages, sink);
  const seen = new Set<string>();
  try {
    if (spec.hostDir !== undefined) await writeHostDir(pack, spec.hostDir, seen);
    await writeSpecEntries(pack, spec.entries ?? [], spec.parents ?? true, seen);
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await done.catch(() => undefined);
    throw err;
  }
  await done;
  const format = opts.format ?? 'oci';
  const mediaType =
    format === 'docker'
      ? gzip
        ? 'application/vnd.docker.image.rootfs.diff.tar.gzip'
        : 'application/vnd.docker.image.rootfs.diff.tar'
      : gzip
        ? 'application/vnd.oci.image.layer.v1.tar+gzip'
        : 'application/vnd.oci.image.layer.v1.tar';
  const digest = `sha256:${blob.hash.digest('hex')}`;
  const data: BlobData = filePath ? { path: filePath, size: blob.bytes } : Buffer.concat(chunks);
  return { descriptor: { mediaType, digest, size: blob.bytes }, diffId: `sha256:${diff.hash.digest('hex')}`, data };
}

/** Build a single-platform image: layers, config and manifest. */
export async function buildImage(spec: ImageSpec): Promise<BuiltImage> {
  const format = spec.format ?? 'oci';
  const platform = spec.platform ?? hostPlatform();
  const needsTmp = spec.layers.some((l) => l.hostDir !== undefined);
  const tmpDir = needsTmp ? await mkdtemp(join(tmpdir(), 'podrun-build-')) : undefined;
  const layers: BuiltLayer[] = [];
  try {
    for (const l of spec.layers) layers.push(await buildLayer(l, { format, tmpDir }));
  } catch (err) {
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
    throw err;
  }
  const created = spec.created ?? DEFAULT_MTIME.toISOString();
  const configDoc = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: spec.config ?? {},
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: spec.layers.map((l) => ({ created, created_by: l.createdBy ?? 'podrun builder' })),
  };
  const config = Buffer.from(JSON.stringify(configDoc));
  const configDescriptor: Descriptor = {
    mediaType: format === 'docker' ? MEDIA_TYPES.dockerConfig : MEDIA_TYPES.ociConfig,
    digest: sha256(config),
    size: config.length,
  };
  const manifestType = format === 'docker' ? MEDIA_TYPES.dockerManifest : MEDIA_TYPES.ociManifest;
  const manifestDoc = {
    schemaVersion: 2,
    mediaType: manifestType,
    config: configDescriptor,
    layers: layers.map((l) => l.descriptor),
    ...(spec.annotations && format === 'oci' ? { annotations: spec.annotations } : {}),
  };
  const manifest = Buffer.from(JSON.stringify(manifestDoc));
  return {
    kind: 'image',
    platform,
    config,
    configDescriptor,
    layers,
    manifest,
    descriptor: { mediaType: manifestType, digest: sha256(manifest), size: manifest.length, platform },
    tmpDir,
  };
}

/** An index (OCI) or manifest list (Docker) over images built for different platforms. */
export function buildIndex(images: BuiltImage[], opts: { format?: 'oci' | 'docker'; annotations?: Record<string, string> } = {}): BuiltIndex {
  const format = opts.format ?? 'oci';
  const mediaType = format === 'docker' ? MEDIA_TYPES.dockerList : MEDIA_TYPES.ociIndex;
  const doc = {
    schemaVersion: 2,
    mediaType,
    manifests: images.map((i) => i.descriptor),
    ...(opts.annotations && format === 'oci' ? { annotations: opts.annotations } : {}),
  };
  const index = Buffer.from(JSON.stringify(doc));
  return { kind: 'index', index, descriptor: { mediaType, digest: sha256(index), size: index.length }, images };
}

export interface PushOptions extends Partial<RemoteOptions> {
  signal?: AbortSignal;
}

/**
 * Push an image or index to `target` ("127.0.0.1:5000/library/busybox:latest"): blobs, then
 * manifests by digest, then the top manifest under the tag. Returns the top manifest's digest.
 */
export async function pushImage(target: string | ImageRef, built: BuiltImage | BuiltIndex, opts: PushOptions = {}): Promise<string> {
  const ref = typeof target === 'string' ? parseReference(target) : target;
  const remote = openRemote(ref, { config: defaultRegistriesConfig(), ...opts, noMirrors: true });
  try {
    const images = built.kind === 'index' ? built.images : [built];
    for (const img of images) {
      for (const l of img.layers) await remote.pushBlob({ digest: l.descriptor.digest, size: l.descriptor.size, data: l.data }, opts.signal);
      await remote.pushBlob({ digest: img.configDescriptor.digest, size: img.config.length, data: img.config }, opts.signal);
      if (built.kind === 'index') await remote.pushManifest(img.descriptor.digest, img.manifest, img.descriptor.mediaType, opts.signal);
    }
    const top = built.kind === 'index' ? built.index : built.manifest;
    return await remote.pushManifest(ref.tag ?? ref.digest ?? built.descriptor.digest, top, built.descriptor.mediaType, opts.signal);
  } finally {
    await remote.close();
  }
}

/** Remove the temp files of file-backed layers. */
export async function disposeImage(built: BuiltImage | BuiltIndex): Promise<void> {
  const images = built.kind === 'index' ? built.images : [built];
  for (const img of images) if (img.tmpDir) await rm(img.tmpDir, { recursive: true, force: true });
}

/** Read a file into an entry (fixtures: busybox from the host). */
export async function hostFile(path: string, dest: string, meta: EntryMeta = {}): Promise<EntrySpec> {
  const st = await lstat(path);
  return { type: 'file', path: dest, content: await readFile(path), mode: meta.mode ?? st.mode & 0o7777, ...meta };
}

export const BUSYBOX_PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n';
export const BUSYBOX_GROUP = 'root:x:0:\nnobody:x:65534:\napp:x:1000:\n';

/** The applets a static busybox offers (`busybox --list`), without "busybox" itself. */
export function busyboxApplets(bin = '/bin/busybox'): string[] {
  return execFileSync(bin, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s !== 'busybox' && /^[A-Za-z0-9_.[\]-]+$/.test(s));
}

/**
 * A busybox image from a static busybox binary (Debian's busybox-static): /bin/busybox, one
 * /bin symlink per applet, /etc/passwd and /etc/group (root, nobody, app 1000:1000), /tmp 1777,
 * /root, /home/app; Cmd ["sh"]. Used by the test fixtures and `scripts/local-registry.mjs seed`.
 */
export function busyboxImageSpec(bin = '/bin/busybox'): ImageSpec {
  const entries: EntrySpec[] = [
    { type: 'dir', path: 'bin' },
    { type: 'file', path: 'bin/busybox', content: readFileSync(bin), mode: 0o755 },
    ...busyboxApplets(bin).map((a): EntrySpec => ({ type: 'symlink', path: `bin/${a}`, target: 'busybox' })),
    { type: 'dir', path: 'etc' },
    { type: 'file', path: 'etc/passwd', content: BUSYBOX_PASSWD },
    { type: 'file', path: 'etc/group', content: BUSYBOX_GROUP },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
    { type: 'dir', path: 'root', mode: 0o700 },
    { type: 'dir', path: 'home' },
    { type: 'dir', path: 'home/app', uid: 1000, gid: 1000 },
    { type: 'dir', path: 'var' },
    { type: 'dir', path: 'proc', mode: 0o555 },
    { type: 'dir', path: 'sys', mode: 0o555 },
    { type: 'dir', path: 'dev' },
  ];
  return {
    layers: [{ entries, createdBy: `podrun: busybox from ${bin}` }],
    config: { Cmd: ['sh'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
  };
}
