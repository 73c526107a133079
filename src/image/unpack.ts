/**
 * Layer unpacking: one layer's tar stream (gzip or plain) into a directory, either in the form
 * overlayfs expects for a lowerdir ("overlay" mode: OCI whiteouts become char 0:0 devices, opaque
 * markers become the trusted.overlay.opaque xattr) or applied onto a rootfs ("flatten" mode:
 * whiteouts delete, opaque markers clear what lower layers left).
 *
 * Layers are hostile. Every entry is resolved from the layer root each time, component by
 * component with lstat, and a symlink in the middle of a path is refused (podrun never writes
 * through a symlink, not even one that stays inside the layer: the entry could only mean the same
 * thing in the merged view if the link target were in this same layer, and real layer tars never
 * need it). A symlink as the LAST component is replaced, never followed. Files are opened with
 * O_NOFOLLOW|O_EXCL, modes are set with fchmod on that fd, owners with fchown/lchown, times with
 * futimes/lutimes, so nothing is changed through a link.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { PodrunError, SyscallError, isPodrunError, nodeErrCode } from '../util/errors.js';
import type { EventSink } from '../util/events.js';
import type { Syscalls } from '../linux/syscalls.js';
import { TarParser, type TarHeader, type TarLimits } from './tar.js';
import { ASYNC_WRITE_MIN, WriteQueue, type AsyncFile } from './write-queue.js';

export interface UnpackLimits extends TarLimits {
  /** Largest decompressed layer accepted, bytes. */
  maxBytes: number;
  /** Largest decompressed/compressed ratio accepted once more than ratioFloor bytes came out. */
  maxRatio: number;
  ratioFloor: number;
}

export const DEFAULT_UNPACK_LIMITS: UnpackLimits = {
  maxMetaSize: 1 << 20,
  maxEntries: 2_000_000,
  maxPathLength: 4096,
  maxBytes: 64 * 2 ** 30,
  maxRatio: 200,
  ratioFloor: 64 * 2 ** 20,
};

export type UnpackMode = 'overlay' | 'flatten';

export interface ExtractOptions {
  mode: UnpackMode;
  syscalls: Syscalls;
  /** Apply uid/gid from the archive (default: when running as root). */
  preserveOwner?: boolean;
  limits?: Partial<UnpackLimits>;
  events?: EventSink;
  /** Files at least this large get their content written on the threadpool (default 64 KiB; 0: never). */
  asyncWriteMin?: number;
}

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
const WH_PREFIX = '.wh.';
const WH_OPAQUE = '.wh..wh..opq';
const OPAQUE_XATTR = 'trusted.overlay.opaque';

function hostile(detail: string): PodrunError {
  return new PodrunError('EHOSTILE', `Cannot unpack layer: ${detail}`, {
    hint: 'the layer archive is malformed or tries to escape its directory; podrun refuses it',
  });
}

/**
 * Normalizes an entry name to a path relative to the layer root ("" is the root itself).
 * Leading "./" and a bare "/" (umoci's root entry) are accepted; absolute names and ".."
 * components are refused.
 */
export function cleanEntryName(name: string, what = 'entry'): string {
  let n = name;
  while (n.startsWith('./')) n = n.slice(2);
  if (n === '/' || n === '.' || n === '' || n === './') return '';
  if (n.startsWith('/')) throw hostile(`${what} "${name}" is an absolute path`);
  const parts: string[] = [];
  for (const p of n.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw hostile(`${what} "${name}" contains ".."`);
    parts.push(p);
  }
  return parts.join('/');
}

interface PendingDir {
  mode: number;
  mtime: number;
}

/** Writes the entries of one tar stream below `root`. Feed it with a TarParser. */
export class Extractor {
  private readonly dirs = new Set<string>(['']); // relative paths known to be real directories
  private readonly pendingDirs = new Map<string, PendingDir>();
  private readonly written = new Set<string>(); // flatten: paths this layer wrote
  private fd = -1;
  private cur: TarHeader | undefined;
  private curRel = '';
  /** The current file when its content goes through the write queue. */
  private curAsync: AsyncFile | undefined;
  readonly writes: WriteQueue;
  private readonly preserveOwner: boolean;
  private readonly euid: number;
  private readonly egid: number;
  private readonly umask: number;
  private readonly sc: Syscalls;

  constructor(
    readonly root: string,
    private readonly opts: ExtractOptions,
  ) {
    this.sc = opts.syscalls;
    this.euid = process.geteuid?.() ?? 0;
    this.egid = process.getegid?.() ?? 0;
    this.preserveOwner = opts.preserveOwner ?? this.euid === 0;
    this.umask = process.umask();
    this.writes = new WriteQueue(opts.asyncWriteMin ?? ASYNC_WRITE_MIN);
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  /** Makes sure every component of `rel` is a real directory, creating missing ones (mkdir -p without following links). */
  private ensureDir(rel: string, create: boolean): boolean {
    if (this.dirs.has(rel)) return true;
    const parts = rel.split('/');
    let cur = '';
    for (const p of parts) {
      cur = cur ? `${cur}/${p}` : p;
      if (this.dirs.has(cur)) continue;
      const st = this.lstatMaybe(this.abs(cur));
      if (!st) {
        if (!create) return false;
        fs.mkdirSync(this.abs(cur), 0o755);
        if (this.opts.mode === 'flatten') this.written.add(cur);
      } else if (st.isSymbolicLink()) {
        throw hostile(`path "${rel}" goes through the symlink "${cur}"`);
      } else if (!st.isDirectory()) {
        throw hostile(`path "${rel}" goes through "${cur}", which is not a directory`);
      }
      this.dirs.add(cur);
    }
    return true;
  }

  /** Removes whatever is at `rel` (never following a link) and forgets directories below it. */
  private remove(rel: string, st?: fs.Stats): void {
    const abs = this.abs(rel);
    st ??= fs.lstatSync(abs);
    if (st.isDirectory()) {
      fs.rmSync(abs, { recursive: true, force: true });
      const prefix = `${rel}/`;
      for (const d of this.dirs) if (d === rel || d.startsWith(prefix)) this.dirs.delete(d);
      for (const d of this.pendingDirs.keys()) if (d === rel || d.startsWith(prefix)) this.pendingDirs.delete(d);
    } else {
      fs.unlinkSync(abs);
    }
  }

  /** lstat, undefined when nothing is there (without the cost of an exception per new path). */
  private lstatMaybe(abs: string): fs.Stats | undefined {
    return fs.lstatSync(abs, { throwIfNoEntry: false });
  }

  /** Runs `create`; if something is in the way, removes it and tries once more. */
  private createReplacing(rel: string, create: () => void): void {
    try {
      create();
    } catch (err) {
      if (nodeErrCode(err) !== 'EEXIST' && !(err instanceof SyscallError && err.errnoName === 'EEXIST')) throw err;
      this.remove(rel);
      create();
    }
  }

  private chown(abs: string, h: TarHeader, fd = -1): void {
    if (!this.preserveOwner) return;
    if (h.uid === this.euid && h.gid === this.egid) return; // created with these already
    if (fd >= 0) fs.fchownSync(fd, h.uid, h.gid);
    else fs.lchownSync(abs, h.uid, h.gid);
  }

  private xattrs(abs: string, rel: string, h: TarHeader): void {
    if (!h.xattrs) return;
    for (const [name, value] of h.xattrs) {
      if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.')) {
        throw hostile(`entry "${rel}" carries the overlayfs attribute "${name}"`);
      }
      try {
        this.sc.lsetxattr(abs, name, value);
      } catch (err) {
        if (err instanceof SyscallError && (err.errnoName === 'EOPNOTSUPP' || (err.errnoName === 'EPERM' && h.type === 'symlink'))) {
          this.opts.events?.({ type: 'warning', message: `Cannot set xattr "${name}" on "${rel}": ${err.errnoName}; skipped` });
          continue;
        }
        throw err;
      }
    }
  }

  entry(h: TarHeader): void {
    const rel = cleanEntryName(h.name);
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    if (base.startsWith(WH_PREFIX)) return this.whiteout(rel, base);
    if (rel === '') {
      if (h.type !== 'dir') throw hostile(`the root entry "${h.name}" is not a directory`);
      this.chown(this.root, h);
      this.pendingDirs.set('', { mode: h.mode, mtime: h.mtime });
      return;
    }
    const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
    this.ensureDir(parent, true);
    const abs = this.abs(rel);
    if (this.opts.mode === 'flatten') this.written.add(rel);
    switch (h.type) {
      case 'dir': {
        const st = this.lstatMaybe(abs);
        if (st && !st.isDirectory()) this.remove(rel, st);
        if (!st || !st.isDirectory()) fs.mkdirSync(abs, 0o700);
        this.dirs.add(rel);
        this.chown(abs, h);
        this.xattrs(abs, rel, h);
        this.pendingDirs.set(rel, { mode: h.mode, mtime: h.mtime });
        return;
      }
      case 'file': {
        const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
        this.createReplacing(rel, () => {
          this.fd = fs.openSync(abs, flags, h.mode & 0o777);
        });
        this.cur = h;
        this.curRel = rel;
        // A large file's content is written on the threadpool (fd-based calls only). A file with
        // xattrs stays synchronous: a write drops security.capability, so xattrs follow the last write.
        if (this.writes.wants(h.size) && !h.xattrs) {
          this.curAsync = this.writes.adopt(this.fd, (fd) => this.fileAttrs(fd, h));
          this.fd = -1;
        }
        return;
      }
      case 'symlink':
        if (h.linkname === '') throw hostile(`symlink "${rel}" has an empty target`);
        this.createReplacing(rel, () => fs.symlinkSync(h.linkname, abs));
        this.chown(abs, h);
        this.xattrs(abs, rel, h);
        fs.lutimesSync(abs, h.mtime, h.mtime);
        return;
      case 'link':
        return this.hardlink(rel, abs, h);
      case 'char':
      case 'block':
      case 'fifo': {
        const kind = h.type === 'char' ? S_IFCHR : h.type === 'block' ? S_IFBLK : S_IFIFO;
        this.createReplacing(rel, () => this.sc.mknod(abs, kind | (h.mode & 0o777), h.devmajor, h.devminor));
        this.chown(abs, h);
        // mknod's mode is masked by the umask; the node was just created by us and is not a link
        fs.chmodSync(abs, h.mode);
        this.xattrs(abs, rel, h);
        fs.lutimesSync(abs, h.mtime, h.mtime);
        return;
      }
    }
  }

  private hardlink(rel: string, abs: string, h: TarHeader): void {
    const target = cleanEntryName(h.linkname, 'hardlink target');
    if (target === '') throw hostile(`hardlink "${rel}" points at the layer root`);
    if (target === rel) return;
    const tparent = target.includes('/') ? target.slice(0, target.lastIndexOf('/')) : '';
    if (!this.ensureDir(tparent, false)) throw hostile(`hardlink "${rel}" points at "${h.linkname}", which is not in the layer`);
    const tabs = this.abs(target);
    const st = this.lstatMaybe(tabs);
    if (!st) throw hostile(`hardlink "${rel}" points at "${h.linkname}", which is not in the layer`);
    if (st.isDirectory()) throw hostile(`hardlink "${rel}" points at the directory "${h.linkname}"`);
    // link(2) does not follow a symlink target: the new name becomes another link to the same symlink inode.
    this.createReplacing(rel, () => fs.linkSync(tabs, abs));
  }

  data(chunk: Buffer): void {
    if (this.curAsync) return this.writes.write(this.curAsync, chunk);
    let off = 0;
    while (off < chunk.length) off += fs.writeSync(this.fd, chunk, off, chunk.length - off);
  }

  entryEnd(): void {
    if (this.curAsync) {
      this.writes.end(this.curAsync);
      this.curAsync = undefined;
      return;
    }
    if (this.fd < 0) return;
    const h = this.cur!;
    const fd = this.fd;
    try {
      this.fileAttrs(fd, h, this.curRel);
    } finally {
      this.fd = -1;
      fs.closeSync(fd);
    }
  }

  /** Owner, mode, xattrs (sync files only, by path: `rel` is still this file) and times, on the open fd. */
  private fileAttrs(fd: number, h: TarHeader, rel?: string): void {
    this.chown('', h, fd);
    // chown clears setuid/setgid; open() masked the mode with the umask: fix both on the fd
    const perm = h.mode & 0o7777;
    if ((perm & 0o7000) !== 0 || (perm & this.umask) !== 0) fs.fchmodSync(fd, perm);
    if (h.xattrs && rel !== undefined) this.xattrs(this.abs(rel), rel, h);
    fs.futimesSync(fd, h.mtime, h.mtime);
  }

  private whiteout(rel: string, base: string): void {
    const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
    if (base === WH_OPAQUE) {
      if (this.opts.mode === 'overlay') {
        this.ensureDir(parent, true);
        this.sc.lsetxattr(this.abs(parent), OPAQUE_XATTR, Buffer.from('y'));
      } else if (this.ensureDir(parent, false)) {
        this.clearLower(parent);
      }
      return;
    }
    if (base.startsWith('.wh..wh.')) return; // aufs metadata (.wh..wh.plnk, …): nothing to apply
    const name = base.slice(WH_PREFIX.length);
    if (name === '' || name === '.' || name === '..') throw hostile(`whiteout "${rel}" names "${name}"`);
    const target = parent ? `${parent}/${name}` : name;
    if (this.opts.mode === 'overlay') {
      this.ensureDir(parent, true);
      const abs = this.abs(target);
      const st = this.lstatMaybe(abs);
      if (st) this.remove(target, st);
      this.sc.mknod(abs, S_IFCHR, 0, 0);
      return;
    }
    // flatten: delete what lower layers left; entries of this same layer stay
    if (!this.ensureDir(parent, false)) return;
    if (this.written.has(target)) return;
    const st = this.lstatMaybe(this.abs(target));
    if (st) this.remove(target, st);
  }

  /** flatten: an opaque directory hides everything lower layers put below it. */
  private clearLower(dir: string): void {
    for (const name of fs.readdirSync(this.abs(dir))) {
      const rel = dir ? `${dir}/${name}` : name;
      const st = fs.lstatSync(this.abs(rel));
      if (!this.written.has(rel)) this.remove(rel, st);
      else if (st.isDirectory()) this.clearLower(rel);
    }
  }

  /** Applies directory modes and times, deepest first (children change a directory's mtime). */
  finish(): void {
    const dirs = [...this.pendingDirs.entries()].sort((a, b) => depth(b[0]) - depth(a[0]));
    for (const [rel, d] of dirs) {
      const abs = this.abs(rel);
      fs.chmodSync(abs, d.mode);
      fs.utimesSync(abs, d.mtime, d.mtime);
    }
  }

  /** Closes a file left open by a failed stream (a queued file once its writes are done: await writes.settled()). */
  abort(): void {
    if (this.curAsync) {
      this.writes.end(this.curAsync, true);
      this.curAsync = undefined;
    }
    if (this.fd >= 0) {
      try {
        fs.closeSync(this.fd);
      } catch {
        /* already failing */
      }
      this.fd = -1;
    }
  }
}

function depth(rel: string): number {
  if (rel === '') return 0;
  let n = 1;
  for (let i = 0; i < rel.length; i++) if (rel.charCodeAt(i) === 47) n++;
  return n;
}

export type Compression = 'gzip' | 'none';

/** Which decompressor a layer media type needs; zstd is refused (Node 20's zlib has none). */
export function layerCompression(mediaType: string): Compression {
  if (/zstd/.test(mediaType)) {
    throw new PodrunError('EUNSUPPORTED', `Cannot unpack layer: media type "${mediaType}" (zstd) is not supported`, {
      hint: 'Node 20 has no zstd decoder; push the image with gzip layers',
    });
  }
  if (/gzip$/.test(mediaType)) return 'gzip';
  if (/(^|\.)tar$/.test(mediaType) || mediaType === 'application/vnd.oci.image.layer.v1.tar') return 'none';
  throw new PodrunError('EUNSUPPORTED', `Cannot unpack layer: media type "${mediaType}" is not a layer type podrun knows`);
}

/** 1 MiB output chunks: much faster than zlib's default 16 KiB here (see HOST-FACTS). */
export const GUNZIP_CHUNK = 1 << 20;

export interface StreamUnpackOptions extends ExtractOptions {
  compression: Compression;
  /** Expected DiffID ("sha256:…") of the decompressed stream. */
  diffId?: string;
}

export interface StreamUnpackResult {
  diffId: string;
  size: number; // decompressed bytes
  entries: number;
}

/**
 * Decompresses `input` (the layer blob's bytes) and extracts it below `dir` (which must exist),
 * hashing the whole decompressed stream. Bounds the decompressed size and ratio.
 */
export async function extractLayerStream(input: Readable, dir: string, opts: StreamUnpackOptions): Promise<StreamUnpackResult> {
  const limits = { ...DEFAULT_UNPACK_LIMITS, ...(opts.limits ?? {}) };
  const extractor = new Extractor(dir, opts);
  const parser = new TarParser(extractor, limits);
  const writes = extractor.writes;
  const hash = createHash('sha256');
  let compressed = 0;
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      compressed += chunk.length;
      cb(null, chunk);
    },
  });
  const sink = new Writable({
    highWaterMark: GUNZIP_CHUNK,
    write(chunk: Buffer, _enc, cb) {
      try {
        size += chunk.length;
        if (size > limits.maxBytes) throw hostile(`the decompressed layer is larger than the limit of ${limits.maxBytes} bytes`);
        if (opts.compression === 'gzip' && size > limits.ratioFloor && size > limits.maxRatio * compressed) {
          throw hostile(`the layer decompresses more than ${limits.maxRatio} times (a decompression bomb?)`);
        }
        hash.update(chunk);
        parser.write(chunk);
        if (writes.error) throw writes.error;
        if (!writes.busy) return cb();
        writes.room().then(() => cb(writes.error), cb);
      } catch (err) {
        cb(err as Error);
      }
    },
    final(cb) {
      try {
        parser.finish();
      } catch (err) {
        return cb(err as Error);
      }
      writes.settled().then(() => {
        try {
          if (writes.error) throw writes.error;
          extractor.finish();
          cb();
        } catch (err) {
          cb(err as Error);
        }
      }, cb);
    },
  });
  try {
    if (opts.compression === 'gzip') {
      await pipeline(input, counter, zlib.createGunzip({ chunkSize: GUNZIP_CHUNK }), sink);
    } else {
      await pipeline(input, counter, sink);
    }
  } catch (err) {
    extractor.abort();
    await writes.settled(); // no fd may stay open (or be written) after we return
    if (isPodrunError(err)) throw err;
    const code = nodeErrCode(err);
    if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') {
      throw new PodrunError('EHOSTILE', `Cannot unpack layer: the gzip stream is corrupt (${(err as Error).message})`, { cause: err });
    }
    throw err;
  }
  const diffId = `sha256:${hash.digest('hex')}`;
  if (opts.diffId && opts.diffId !== diffId) {
    throw new PodrunError('EDIGEST', `Cannot unpack layer: its uncompressed content has digest "${diffId}", the image config says "${opts.diffId}"`);
  }
  return { diffId, size, entries: parser.entries };
}

export interface UnpackLayerOptions extends Omit<StreamUnpackOptions, 'mode'> {
  /** Final directory (ROOT/layers/<chainID hex>); must not exist yet. */
  dest: string;
}

/**
 * Unpacks one layer into `dest` in overlay form: extracts into a temp directory beside it and
 * renames it into place only when the stream, the tar and the DiffID are all good. When another
 * process finished the same layer first, its directory is kept and ours is dropped.
 */
export async function unpackLayer(input: Readable, opts: UnpackLayerOptions): Promise<StreamUnpackResult & { reused: boolean }> {
  const parent = path.dirname(opts.dest);
  fs.mkdirSync(parent, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(parent, `.tmp-${path.basename(opts.dest).slice(0, 12)}-`));
  try {
    // mkdtemp makes 0700; overlayfs shows the top layer's root dir as the container's "/", so it
    // must be 0755 unless the layer's own root entry ("./" or "/") says otherwise
    fs.chmodSync(tmp, 0o755);
    const r = await extractLayerStream(input, tmp, { ...opts, mode: 'overlay' });
    try {
      fs.renameSync(tmp, opts.dest);
    } catch (err) {
      const code = nodeErrCode(err);
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      fs.rmSync(tmp, { recursive: true, force: true });
      return { ...r, reused: true };
    }
    return { ...r, reused: false };
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
