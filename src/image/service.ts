/**
 * The image API the CLI and the runtime call: pull, list, status, remove, prune, unpack, ensure.
 * Stateless between calls: everything lives in ROOT (see store.ts), guarded by file locks, so
 * several podrun processes can use one root at once without a daemon.
 *
 * Pull vs prune: a pull holds a lease file (locks/pull-<pid>-<rand>.lease) for its whole
 * duration; prune takes locks/gc.lock and waits until no live lease remains. A pull that finds
 * gc.lock held drops its lease and waits (each side writes its own file, then checks the other's).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PodrunError, nodeErrCode } from '../util/errors.js';
import type { EventSink } from '../util/events.js';
import type { Syscalls } from '../linux/syscalls.js';
import type { ImageSource } from './source.js';
import type { Descriptor, ImageRecord, Platform } from './types.js';
import { parseReference, type ImageRef } from './reference.js';
import { ANN_INDEX_DIGEST, ImageStore, MAX_MANIFEST_BYTES, REF_NAME, digestHex } from './store.js';
import { FileLock, ownerAlive } from './lock.js';
import { pullImage as pullInto, recordFrom, parseManifest, chainIds, type ConfigDoc, type IndexDoc } from './pull.js';
import { flattenImage } from './flatten.js';
import type { UnpackLimits } from './unpack.js';

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface ImageServiceOptions {
  /** podrun's root (default /var/lib/podrun); the store is ROOT/store, layers ROOT/layers. */
  root: string;
  /** registries.yaml (default /etc/podrun/registries.yaml; a missing file means defaults). */
  registryConfigPath?: string;
  events?: EventSink;
  /** Default: the real kernel (src/linux/ffi.ts), loaded on first use. */
  syscalls?: Syscalls;
  /** Where images come from; default: the registry named in the reference (openRemote). */
  openSource?: (ref: ImageRef) => ImageSource;
  /** Layers fetched at once (default 3). */
  concurrency?: number;
  limits?: Partial<UnpackLimits>;
}

export interface ImagePullOptions {
  platform?: Platform | string;
  signal?: AbortSignal;
}

export interface PruneResult {
  blobs: number;
  layers: number;
  bytes: number;
}

export interface ImageInspect {
  record: ImageRecord;
  manifest: unknown;
  config: unknown;
  index?: unknown;
}

export class ImageService {
  readonly store: ImageStore;
  private syscallsP: Promise<Syscalls> | undefined;

  constructor(private readonly opts: ImageServiceOptions) {
    this.store = new ImageStore(opts.root);
  }

  private syscalls(): Promise<Syscalls> {
    this.syscallsP ??= this.opts.syscalls ? Promise.resolve(this.opts.syscalls) : import('../linux/ffi.js').then((m) => m.realSyscalls);
    return this.syscallsP;
  }

  /** The registry client (undici, yaml, zod) is loaded only when a registry is contacted. */
  private async source(ref: ImageRef): Promise<ImageSource> {
    if (this.opts.openSource) return this.opts.openSource(ref);
    const [{ openRemote }, { loadRegistriesConfig }] = await Promise.all([import('./registry/client.js'), import('./registry/config.js')]);
    return openRemote(ref, { config: await loadRegistriesConfig(this.opts.registryConfigPath), events: this.opts.events });
  }

  /** Pulls `ref` (any Docker-style reference) and returns the stored image. */
  async pullImage(ref: string, opts: ImagePullOptions = {}): Promise<ImageRecord> {
    const parsed = parseReference(ref);
    const platform = typeof opts.platform === 'string' ? (await import('./pull.js')).parsePlatform(opts.platform) : opts.platform;
    this.store.init();
    const lease = await this.takeLease(opts.signal);
    const source = await this.source(parsed);
    try {
      return await pullInto(
        { store: this.store, source, syscalls: await this.syscalls(), events: this.opts.events, concurrency: this.opts.concurrency, limits: this.opts.limits },
        { name: parsed.name, reference: parsed.digest ?? parsed.tag ?? 'latest', digest: parsed.digest, platform, signal: opts.signal },
      );
    } finally {
      fs.rmSync(lease, { force: true });
      await (source as { close?: () => Promise<void> }).close?.();
    }
  }

  /** Every stored image, one record per manifest with all its names. */
  async listImages(): Promise<ImageRecord[]> {
    const byDigest = new Map<string, Descriptor[]>();
    for (const d of this.store.entries()) {
      const list = byDigest.get(d.digest) ?? [];
      list.push(d);
      byDigest.set(d.digest, list);
    }
    const out: ImageRecord[] = [];
    for (const [digest, descs] of byDigest) {
      out.push(recordFrom(this.store, descs.map((d) => d.annotations![REF_NAME]), digest, descs[0].annotations?.[ANN_INDEX_DIGEST]));
    }
    return out;
  }

  /** Index entries that `ref` names: a full or familiar reference, or a (short) manifest digest. */
  private find(ref: string): Descriptor[] {
    const entries = this.store.entries();
    const hex = /^(?:sha256:)?([a-f0-9]{12,64})$/.exec(ref);
    if (hex) {
      const hits = entries.filter((d) => digestHex(d.digest).startsWith(hex[1]));
      if (new Set(hits.map((d) => d.digest)).size > 1) throw new PodrunError('EINVAL_REF', `Cannot choose an image for "${ref}": it matches several digests`);
      if (hits.length) return hits;
    }
    const p = parseReference(ref);
    const exact = entries.filter((d) => d.annotations![REF_NAME] === p.name);
    if (exact.length || !p.digest) return exact;
    const repo = `${p.registry}/${p.repository}`;
    return entries.filter((d) => d.digest === p.digest && d.annotations![REF_NAME].startsWith(repo));
  }

  /** The stored image `ref` names, or undefined. Layer dirs are listed; check `layersPresent` for the runtime. */
  async imageStatus(ref: string): Promise<ImageRecord | undefined> {
    const hits = this.find(ref);
    if (!hits.length) return undefined;
    const digest = hits[0].digest;
    const names = this.store.entries().filter((d) => d.digest === digest).map((d) => d.annotations![REF_NAME]);
    return recordFrom(this.store, names, digest, hits[0].annotations?.[ANN_INDEX_DIGEST]);
  }

  /** Manifest, config (and index, if the name pointed at one) as stored. */
  async inspectImage(ref: string): Promise<ImageInspect> {
    const record = await this.imageStatus(ref);
    if (!record) throw notFound(ref);
    const json = (digest: string) => JSON.parse(this.store.readBlob(digest, MAX_MANIFEST_BYTES).toString('utf8')) as unknown;
    const out: ImageInspect = { record, manifest: json(record.digest), config: JSON.parse(this.store.readBlob(record.configDigest).toString('utf8')) };
    if (record.indexDigest && fs.existsSync(this.store.blobPath(record.indexDigest))) out.index = json(record.indexDigest) as IndexDoc;
    return out;
  }

  /** Removes the name(s) `ref` matches; content stays until pruneImages(). Returns the removed names. */
  async removeImage(ref: string): Promise<string[]> {
    const hits = this.find(ref);
    if (!hits.length) throw notFound(ref);
    const names = new Set(hits.map((d) => d.annotations![REF_NAME]));
    await this.store.updateIndex((idx) => {
      idx.manifests = idx.manifests.filter((d) => !names.has(d.annotations?.[REF_NAME] ?? ''));
    });
    return [...names];
  }

  /** Drops blobs and layer directories no stored name references (and leftovers of failed pulls). */
  async pruneImages(opts: { timeoutMs?: number } = {}): Promise<PruneResult> {
    this.store.init();
    const gc = await FileLock.acquire(path.join(this.store.locksDir, 'gc.lock'), { what: 'the image store for pruning', timeoutMs: opts.timeoutMs });
    try {
      await this.waitForLeases(opts.timeoutMs ?? 10 * 60_000);
      const keepBlobs = new Set<string>();
      const keepLayers = new Set<string>();
      for (const d of this.store.entries()) {
        keepBlobs.add(digestHex(d.digest));
        const idx = d.annotations?.[ANN_INDEX_DIGEST];
        if (idx) keepBlobs.add(digestHex(idx));
        try {
          const m = parseManifest(this.store.readBlob(d.digest, MAX_MANIFEST_BYTES), '', `manifest "${d.digest}"`);
          keepBlobs.add(digestHex(m.config.digest));
          for (const l of m.layers) keepBlobs.add(digestHex(l.digest));
          const cfg = JSON.parse(this.store.readBlob(m.config.digest).toString('utf8')) as ConfigDoc;
          for (const c of chainIds(cfg.rootfs?.diff_ids ?? [])) keepLayers.add(digestHex(c));
        } catch (err) {
          this.opts.events?.({ type: 'warning', message: `Cannot read image "${d.annotations![REF_NAME]}" while pruning: ${(err as Error).message}` });
        }
      }
      const res: PruneResult = { blobs: 0, layers: 0, bytes: 0 };
      for (const name of fs.readdirSync(this.store.blobsDir)) {
        if (keepBlobs.has(name)) continue;
        const p = path.join(this.store.blobsDir, name);
        res.bytes += fs.statSync(p).size;
        fs.rmSync(p, { force: true });
        res.blobs++;
      }
      for (const name of fs.readdirSync(this.store.layersDir)) {
        if (keepLayers.has(name)) continue;
        fs.rmSync(path.join(this.store.layersDir, name), { recursive: true, force: true });
        if (!name.startsWith('.tmp-')) res.layers++;
      }
      for (const name of fs.readdirSync(this.store.ingestDir)) fs.rmSync(path.join(this.store.ingestDir, name), { force: true });
      return res;
    } finally {
      gc.release();
    }
  }

  /** Writes the flattened rootfs of `ref` into `dir` (missing or empty). */
  async unpackImage(ref: string, dir: string): Promise<ImageRecord> {
    const record = await this.imageStatus(ref);
    if (!record) throw notFound(ref);
    await flattenImage(this.store, record, dir, { syscalls: await this.syscalls(), events: this.opts.events, limits: this.opts.limits });
    return record;
  }

  /** What the runtime calls before creating a container: the image per the pod's imagePullPolicy. */
  async ensureImage(ref: string, pullPolicy: PullPolicy, opts: ImagePullOptions = {}): Promise<ImageRecord> {
    if (pullPolicy === 'Always') return this.pullImage(ref, opts);
    const have = await this.imageStatus(ref);
    if (have && have.layers.every((l) => fs.existsSync(l.dir))) return have;
    if (pullPolicy === 'Never') {
      throw new PodrunError('ENOTFOUND', `Cannot use image "${ref}": it is not in the store and imagePullPolicy is "Never"`, { hint: `run "podrun pull ${ref}" first` });
    }
    return this.pullImage(ref, opts);
  }

  private async takeLease(signal?: AbortSignal): Promise<string> {
    const gcLock = path.join(this.store.locksDir, 'gc.lock');
    for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
      const lease = path.join(this.store.locksDir, `pull-${process.pid}-${Math.random().toString(36).slice(2)}.lease`);
      fs.writeFileSync(lease, `${process.pid} ${readStart()}`);
      let gcHeld = false;
      try {
        gcHeld = ownerAlive(fs.readFileSync(gcLock, 'utf8'));
      } catch (err) {
        if (nodeErrCode(err) !== 'ENOENT') throw err;
      }
      if (!gcHeld) return lease;
      fs.rmSync(lease, { force: true });
      signal?.throwIfAborted();
      await sleep(delay);
    }
  }

  private async waitForLeases(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let live = 0;
      for (const name of fs.readdirSync(this.store.locksDir)) {
        if (!name.endsWith('.lease')) continue;
        const p = path.join(this.store.locksDir, name);
        let content = '';
        try {
          content = fs.readFileSync(p, 'utf8');
        } catch {
          continue;
        }
        if (ownerAlive(content)) live++;
        else fs.rmSync(p, { force: true });
      }
      if (!live) return;
      if (Date.now() > deadline) throw new PodrunError('ELOCKED', `Cannot prune images: ${live} pull(s) still running`, { hint: 'try again when they finish' });
      await sleep(100);
    }
  }
}

function readStart(): string {
  try {
    const stat = fs.readFileSync(`/proc/${process.pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return '0';
  }
}

function notFound(ref: string): PodrunError {
  return new PodrunError('ENOTFOUND', `Cannot find image "${ref}" in the store`, { hint: `"podrun images" lists what is stored; "podrun pull ${ref}" fetches it` });
}
