/**
 * ROOT/store is a real OCI image layout (image-spec image-layout.md), so skopeo and umoci read
 * it: `oci-layout`, `index.json` (one manifest descriptor per image name, annotated with
 * org.opencontainers.image.ref.name = the full normalized name), `blobs/sha256/<hex>`.
 *
 * Beside it, podrun keeps what a layout has no place for:
 *   ROOT/ingest/<hex>.partial  blobs being downloaded (resumable)
 *   ROOT/locks/                lock files (see lock.ts): index.lock, blob-<hex>.lock, gc.lock, pull-*.lease
 *   ROOT/layers/<chain hex>/   unpacked layers
 *
 * Bytes become a blob only after their size and digest are checked: they are written to a temp
 * file while hashed, then renamed into place (containerd's ingest idea).
 */
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { PodrunError, nodeErrCode } from '../util/errors.js';
import type { BlobFetchOptions, ImageSource, ManifestResult } from './source.js';
import type { Descriptor, Platform } from './types.js';
import { FileLock, withLock } from './lock.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';
/** Digest of the index / manifest list the name pointed at when pulled. */
export const ANN_INDEX_DIGEST = 'io.podrun.image.index.digest';
export const ANN_PULLED = 'io.podrun.image.pulled';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** Manifests and indexes larger than this are refused. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Image configs larger than this are refused. */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

const DIGEST_RE = /^sha256:([a-f0-9]{64})$/;

/** The hex part of a sha256 digest; refuses anything else (digests become file names). */
export function digestHex(digest: string): string {
  const m = DIGEST_RE.exec(digest);
  if (!m) throw new PodrunError('EUNSUPPORTED', `Cannot use digest "${digest}": only sha256 digests are supported`);
  return m[1];
}

export function sha256Of(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Bytes a BlobWriter may hold before its producer should wait (see `room`). */
export const BLOB_WRITE_BACKLOG = 4 * 1024 * 1024;

/**
 * A blob being written: hashes while writing, verifies, renames into place. The bytes are hashed
 * at once, in order, and written on the threadpool, one write (of all that is queued) at a time,
 * so the partial file only ever holds a prefix of the blob and a resumed download stays valid.
 */
export class BlobWriter {
  private fd: number;
  private hash: Hash = createHash('sha256');
  /** Bytes already in the partial file when it was opened (a resumed download). */
  readonly resumeOffset: number;
  /** Bytes accepted (hashed) so far, including the resumed ones; the file catches up on its own. */
  written: number;
  private hashedExisting = 0;
  /** Chunks accepted and not yet written, and their size. */
  private queue: Buffer[] = [];
  backlog = 0;
  /** Where the next write lands in the file. */
  private filePos: number;
  private writing = false;
  private error: Error | undefined;
  private waiters: { bytes: number; resolve: () => void }[] = [];

  constructor(
    private readonly store: ImageStore,
    readonly desc: Descriptor,
    readonly partialPath: string,
  ) {
    let size = 0;
    try {
      size = fs.statSync(partialPath).size;
    } catch (err) {
      if (nodeErrCode(err) !== 'ENOENT') throw err;
    }
    if (size >= desc.size) size = 0; // a full-size partial never verified: start over
    this.fd = fs.openSync(partialPath, size ? 'r+' : 'w', 0o644);
    if (size === 0) fs.ftruncateSync(this.fd, 0);
    this.resumeOffset = size;
    this.written = size;
    this.filePos = size;
  }

  /** Feeds bytes that are already in the partial file (read back on resume) to the hash. */
  hashExisting(chunk: Buffer): void {
    this.hash.update(chunk);
    this.hashedExisting += chunk.length;
  }

  /** Hashes `chunk` and queues it for writing; the caller must not reuse the buffer. */
  write(chunk: Buffer): void {
    if (this.error) throw this.writeFailed();
    if (this.written + chunk.length > this.desc.size) {
      throw new PodrunError('EDIGEST', `Cannot store blob "${this.desc.digest}": the source sent more than the ${this.desc.size} bytes its descriptor says`);
    }
    this.hash.update(chunk);
    this.written += chunk.length;
    if (chunk.length === 0) return;
    this.queue.push(chunk);
    this.backlog += chunk.length;
    this.pump();
  }

  private pump(): void {
    if (this.writing || this.queue.length === 0 || this.fd < 0) return;
    const bufs = this.queue;
    this.queue = [];
    this.writing = true;
    fs.writev(this.fd, bufs, this.filePos, (err, n) => {
      this.writing = false;
      if (err) {
        this.error ??= err;
        this.queue = [];
        this.backlog = 0;
      } else {
        this.filePos += n;
        this.backlog -= n;
        let skip = n;
        const rest: Buffer[] = [];
        for (const b of bufs) {
          if (skip >= b.length) skip -= b.length;
          else {
            rest.push(skip ? b.subarray(skip) : b); // a short write: the rest goes first
            skip = 0;
          }
        }
        this.queue = rest.concat(this.queue);
      }
      this.pump();
      this.wake();
    });
  }

  private wake(): void {
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (this.backlog <= w.bytes || this.error || (!this.writing && this.queue.length === 0)) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /** The write's own error (as a synchronous write would have thrown it: ENOSPC, EIO, …). */
  private writeFailed(): Error {
    return this.error!;
  }

  /** True when the producer should wait for `room()`: too much is waiting to be written. */
  get busy(): boolean {
    return this.backlog > BLOB_WRITE_BACKLOG;
  }

  /** Resolves when at most `bytes` are waiting to be written (0: all written). Never rejects. */
  room(bytes = BLOB_WRITE_BACKLOG / 2): Promise<void> {
    if (this.backlog <= bytes && (bytes > 0 || !this.writing)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ bytes, resolve }));
  }

  /** Checks size and digest and renames the blob into the store. */
  async commit(): Promise<void> {
    if (this.hashedExisting !== this.resumeOffset) throw new PodrunError('EINTERNAL', 'Cannot commit blob: resumed bytes were not hashed');
    await this.close();
    if (this.error) throw this.writeFailed();
    if (this.written !== this.desc.size) {
      throw new PodrunError('EDIGEST', `Cannot store blob "${this.desc.digest}": got ${this.written} bytes, its descriptor says ${this.desc.size}`);
    }
    const got = `sha256:${this.hash.digest('hex')}`;
    if (got !== this.desc.digest) {
      fs.rmSync(this.partialPath, { force: true });
      throw new PodrunError('EDIGEST', `Cannot store blob "${this.desc.digest}": its bytes have digest "${got}"`);
    }
    fs.renameSync(this.partialPath, this.store.blobPath(this.desc.digest));
  }

  /** Waits for queued writes, then closes the file; keeps it for a later resume. */
  async close(): Promise<void> {
    await this.room(0);
    if (this.fd >= 0) {
      fs.closeSync(this.fd);
      this.fd = -1;
    }
  }
}

export class ImageStore {
  readonly storeDir: string;
  readonly blobsDir: string;
  readonly ingestDir: string;
  readonly locksDir: string;
  readonly layersDir: string;

  constructor(readonly root: string) {
    this.storeDir = path.join(root, 'store');
    this.blobsDir = path.join(this.storeDir, 'blobs', 'sha256');
    this.ingestDir = path.join(root, 'ingest');
    this.locksDir = path.join(root, 'locks');
    this.layersDir = path.join(root, 'layers');
  }

  /** Creates the layout when missing (idempotent, safe from several processes). */
  init(): this {
    for (const d of [this.blobsDir, this.ingestDir, this.locksDir, this.layersDir]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    writeIfMissing(path.join(this.storeDir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeIfMissing(path.join(this.storeDir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }));
    return this;
  }

  blobPath(digest: string): string {
    return path.join(this.blobsDir, digestHex(digest));
  }

  layerDir(chainId: string): string {
    return path.join(this.layersDir, digestHex(chainId));
  }

  hasBlob(desc: Pick<Descriptor, 'digest' | 'size'>): boolean {
    try {
      return fs.statSync(this.blobPath(desc.digest)).size === desc.size;
    } catch {
      return false;
    }
  }

  hasLayer(chainId: string): boolean {
    return fs.existsSync(this.layerDir(chainId));
  }

  /** Reads a small blob whole and checks its digest (manifests, configs). */
  readBlob(digest: string, max = MAX_CONFIG_BYTES): Buffer {
    const p = this.blobPath(digest);
    let bytes: Buffer;
    try {
      const size = fs.statSync(p).size;
      if (size > max) throw new PodrunError('EUNSUPPORTED', `Cannot read blob "${digest}": ${size} bytes is more than the limit of ${max}`);
      bytes = fs.readFileSync(p);
    } catch (err) {
      if (nodeErrCode(err) === 'ENOENT') throw new PodrunError('ESTATE', `Cannot read blob "${digest}": it is not in the store "${this.storeDir}"`, { hint: 'pull the image again' });
      throw err;
    }
    const got = sha256Of(bytes);
    if (got !== digest) throw new PodrunError('EDIGEST', `Cannot read blob "${digest}": the stored bytes have digest "${got}"`, { hint: 'the store is damaged; remove the image and pull it again' });
    return bytes;
  }

  /** Stores small bytes (manifest, index, config) after checking them against `expect`. */
  putBlob(bytes: Buffer, expect?: Pick<Descriptor, 'digest' | 'size'>): string {
    const digest = sha256Of(bytes);
    if (expect && (expect.digest !== digest || expect.size !== bytes.length)) {
      throw new PodrunError('EDIGEST', `Cannot store blob "${expect.digest}" (${expect.size} bytes): got ${bytes.length} bytes with digest "${digest}"`);
    }
    const dest = this.blobPath(digest);
    if (fs.existsSync(dest)) return digest;
    const tmp = path.join(this.ingestDir, `${digestHex(digest)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
    fs.writeFileSync(tmp, bytes, { mode: 0o644 });
    fs.renameSync(tmp, dest);
    return digest;
  }

  /** Opens (or resumes) the ingest file of a blob. Hold lockBlob() while using it. */
  openIngest(desc: Descriptor): BlobWriter {
    return new BlobWriter(this, desc, path.join(this.ingestDir, `${digestHex(desc.digest)}.partial`));
  }

  /** The per-blob lock held while downloading and unpacking it. */
  lockBlob(digest: string, signal?: AbortSignal): Promise<FileLock> {
    return FileLock.acquire(path.join(this.locksDir, `blob-${digestHex(digest)}.lock`), { what: `blob "${digest}"`, signal });
  }

  readIndex(): OciIndex {
    const p = path.join(this.storeDir, 'index.json');
    let idx: OciIndex;
    try {
      idx = JSON.parse(fs.readFileSync(p, 'utf8')) as OciIndex;
    } catch (err) {
      if (nodeErrCode(err) === 'ENOENT') return { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
      throw new PodrunError('ESTATE', `Cannot read "${p}": ${(err as Error).message}`, { cause: err });
    }
    if (!Array.isArray(idx.manifests)) throw new PodrunError('ESTATE', `Cannot read "${p}": it has no "manifests" list`);
    return idx;
  }

  /** Changes index.json under index.lock and replaces it atomically (write temp, rename). */
  async updateIndex<T>(fn: (idx: OciIndex) => T): Promise<T> {
    return withLock(path.join(this.locksDir, 'index.lock'), { what: 'the image index' }, () => {
      const idx = this.readIndex();
      const result = fn(idx);
      const p = path.join(this.storeDir, 'index.json');
      const tmp = `${p}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(idx));
      fs.renameSync(tmp, p);
      return result;
    });
  }

  /** Points `name` at a manifest (replacing what it pointed at before). */
  async tag(name: string, manifest: Descriptor, extra: Record<string, string> = {}, platform?: Platform): Promise<void> {
    await this.updateIndex((idx) => {
      idx.manifests = idx.manifests.filter((d) => d.annotations?.[REF_NAME] !== name);
      const desc: Descriptor = {
        mediaType: manifest.mediaType,
        digest: manifest.digest,
        size: manifest.size,
        annotations: { [REF_NAME]: name, ...extra },
      };
      if (platform) desc.platform = platform;
      idx.manifests.push(desc);
    });
  }

  /** The index entries, one per name. */
  entries(): Descriptor[] {
    return this.readIndex().manifests.filter((d) => typeof d.annotations?.[REF_NAME] === 'string');
  }

  /** The store itself as an ImageSource: manifests by name or digest, blobs from disk. */
  asSource(): ImageSource {
    return {
      name: `oci:${this.storeDir}`,
      getManifest: async (reference: string): Promise<ManifestResult> => {
        let desc: Descriptor | undefined;
        if (DIGEST_RE.test(reference)) desc = { digest: reference, size: -1, mediaType: '' };
        else desc = this.entries().find((d) => d.annotations![REF_NAME] === reference);
        if (!desc) throw new PodrunError('ENOTFOUND', `Cannot find image "${reference}" in "${this.storeDir}"`);
        const bytes = this.readBlob(desc.digest, MAX_MANIFEST_BYTES);
        const mediaType = desc.mediaType || (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType || '';
        return { bytes, mediaType, digest: desc.digest };
      },
      getBlob: async (desc: Descriptor, opts?: BlobFetchOptions): Promise<Readable> => {
        const p = this.blobPath(desc.digest);
        if (!fs.existsSync(p)) throw new PodrunError('ENOTFOUND', `Cannot find blob "${desc.digest}" in "${this.storeDir}"`);
        return fs.createReadStream(p, { start: opts?.offset ?? 0, highWaterMark: 1 << 20, signal: opts?.signal });
      },
    };
  }
}

function writeIfMissing(p: string, content: string): void {
  if (fs.existsSync(p)) return;
  const tmp = `${p}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content);
  try {
    fs.linkSync(tmp, p); // fails with EEXIST if another process won: theirs is identical
  } catch (err) {
    if (nodeErrCode(err) !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
