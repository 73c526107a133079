/**
 * Pull: resolve a reference to one platform's manifest, fetch the config, then fetch every
 * layer, pipelined: the compressed bytes go to the ingest file (hashed) and to gunzip → tar
 * parser → the layer directory at the same time. Layers run in parallel (bounded); each is
 * unpacked once per chain ID and shared. The name is written to index.json last, so an
 * interrupted pull never leaves a name pointing at missing content.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { PodrunError } from '../util/errors.js';
import type { EventSink } from '../util/events.js';
import type { Syscalls } from '../linux/syscalls.js';
import type { ImageSource } from './source.js';
import type { Descriptor, ImageConfig, ImageLayer, ImageRecord, Platform } from './types.js';
import { ANN_INDEX_DIGEST, ANN_PULLED, ImageStore, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, REF_NAME, sha256Of } from './store.js';
import { layerCompression, unpackLayer, type UnpackLimits } from './unpack.js';

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

export interface ManifestDoc {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface IndexDoc {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}

export interface ConfigDoc {
  created?: string;
  architecture?: string;
  os?: string;
  variant?: string;
  config?: ImageConfig;
  rootfs?: { type: string; diff_ids: string[] };
}

/** "linux/amd64", "linux/arm64/v8" → Platform. */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/i.test(p))) {
    throw new PodrunError('EINVAL_ARG', `Cannot parse platform "${s}": expected os/arch[/variant], e.g. "linux/amd64"`);
  }
  const p: Platform = { os: parts[0], architecture: parts[1] };
  if (parts[2]) p.variant = parts[2];
  return p;
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** The platform this process runs on, in OCI terms. */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  const p: Platform = { os: process.platform === 'win32' ? 'windows' : process.platform, architecture: arch[process.arch] ?? process.arch };
  if (p.architecture === 'arm64') p.variant = 'v8';
  return p;
}

function variantOf(p: Platform): string | undefined {
  if (p.variant) return p.variant;
  return p.architecture === 'arm64' ? 'v8' : undefined;
}

/** Picks the manifest for `want` from an index; a wanted variant must match, none wanted prefers the first. */
export function selectPlatform(index: IndexDoc, want: Platform): Descriptor {
  const candidates = index.manifests.filter((d) => d.platform && d.platform.os === want.os && d.platform.architecture === want.architecture);
  const wantVariant = want.variant ? variantOf(want) : undefined;
  const match = wantVariant ? candidates.find((d) => variantOf(d.platform!) === wantVariant) : candidates[0];
  if (!match) {
    const have = index.manifests.filter((d) => d.platform && d.platform.os !== 'unknown').map((d) => formatPlatform(d.platform!));
    throw new PodrunError('ENOTFOUND', `Cannot find platform "${formatPlatform(want)}" in the image index: it has ${have.length ? have.map((h) => `"${h}"`).join(', ') : 'no platforms'}`, {
      hint: 'choose one with --platform os/arch[/variant]',
    });
  }
  return match;
}

/** OCI chain IDs: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    out.push(out.length === 0 ? d : `sha256:${createHash('sha256').update(`${out[out.length - 1]} ${d}`).digest('hex')}`);
  }
  return out;
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (err) {
    throw new PodrunError('EREGISTRY', `Cannot parse ${what}: ${(err as Error).message}`, { cause: err });
  }
}

function isIndex(mediaType: string, doc: { manifests?: unknown }): boolean {
  return mediaType === MT.ociIndex || mediaType === MT.dockerList || (!mediaType && Array.isArray(doc.manifests));
}

export function parseManifest(bytes: Buffer, mediaType: string, what: string): ManifestDoc {
  const doc = parseJson<ManifestDoc>(bytes, what);
  const mt = mediaType || doc.mediaType || '';
  if (mt && mt !== MT.ociManifest && mt !== MT.dockerManifest) {
    throw new PodrunError('EUNSUPPORTED', `Cannot use ${what}: media type "${mt}" is not an image manifest`);
  }
  if (!doc.config?.digest || !Array.isArray(doc.layers)) throw new PodrunError('EREGISTRY', `Cannot use ${what}: it has no config or layers`);
  return doc;
}

export interface PullContext {
  store: ImageStore;
  source: ImageSource;
  syscalls: Syscalls;
  events?: EventSink;
  /** Layers fetched at once (default 3). */
  concurrency?: number;
  limits?: Partial<UnpackLimits>;
}

export interface PullRequest {
  /** The full normalized name stored in index.json ("127.0.0.1:5000/x/busybox:latest"). */
  name: string;
  /** What to ask the source for: a tag or "sha256:…". */
  reference: string;
  /** When the reference carries a digest, the bytes must have it. */
  digest?: string;
  platform?: Platform;
  signal?: AbortSignal;
}

interface Resolved {
  manifest: ManifestDoc;
  manifestBytes: Buffer;
  manifestDesc: Descriptor;
  indexDigest?: string;
  platform?: Platform;
}

async function resolve(ctx: PullContext, req: PullRequest): Promise<Resolved> {
  const top = await ctx.source.getManifest(req.reference, req.signal);
  if (top.bytes.length > MAX_MANIFEST_BYTES) throw new PodrunError('EREGISTRY', `Cannot use the manifest of "${req.name}": ${top.bytes.length} bytes is over the limit of ${MAX_MANIFEST_BYTES}`);
  const topDigest = sha256Of(top.bytes);
  if (req.digest && req.digest !== topDigest) {
    throw new PodrunError('EDIGEST', `Cannot pull "${req.name}": the registry sent a manifest with digest "${topDigest}"`);
  }
  const doc = parseJson<IndexDoc & ManifestDoc>(top.bytes, `the manifest of "${req.name}"`);
  const mediaType = top.mediaType && top.mediaType !== 'application/json' && top.mediaType !== 'application/octet-stream' ? top.mediaType : (doc.mediaType ?? '');
  if (!isIndex(mediaType, doc)) {
    const manifest = parseManifest(top.bytes, mediaType, `the manifest of "${req.name}"`);
    return { manifest, manifestBytes: top.bytes, manifestDesc: { mediaType: mediaType || MT.ociManifest, digest: topDigest, size: top.bytes.length } };
  }
  const want = req.platform ?? hostPlatform();
  const chosen = selectPlatform(doc, want);
  ctx.store.putBlob(top.bytes); // keep the index too: `image inspect` and prune see it
  const m = await ctx.source.getManifest(chosen.digest, req.signal);
  const digest = sha256Of(m.bytes);
  if (digest !== chosen.digest || m.bytes.length !== chosen.size) {
    throw new PodrunError('EDIGEST', `Cannot pull "${req.name}": manifest "${chosen.digest}" arrived with digest "${digest}" and ${m.bytes.length} bytes`);
  }
  const manifest = parseManifest(m.bytes, chosen.mediaType, `manifest "${chosen.digest}"`);
  return { manifest, manifestBytes: m.bytes, manifestDesc: { mediaType: chosen.mediaType, digest, size: m.bytes.length }, indexDigest: topDigest, platform: chosen.platform };
}

async function readAll(stream: Readable, max: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > max) {
      stream.destroy();
      throw new PodrunError('EREGISTRY', `Cannot read ${what}: more than ${max} bytes`);
    }
    parts.push(c);
  }
  return Buffer.concat(parts);
}

async function fetchConfig(ctx: PullContext, desc: Descriptor, signal?: AbortSignal): Promise<Buffer> {
  if (desc.size > MAX_CONFIG_BYTES) throw new PodrunError('EUNSUPPORTED', `Cannot use image config "${desc.digest}": ${desc.size} bytes is over the limit of ${MAX_CONFIG_BYTES}`);
  if (ctx.store.hasBlob(desc)) return ctx.store.readBlob(desc.digest);
  const bytes = await readAll(await ctx.source.getBlob(desc, { signal }), MAX_CONFIG_BYTES, `image config "${desc.digest}"`);
  ctx.store.putBlob(bytes, desc);
  return bytes;
}

/** Runs fn over items with at most `limit` at once; the first error wins (others finish first). */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < items.length && failed === undefined) {
      const i = next++;
      try {
        out[i] = await fn(items[i], i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed !== undefined) throw failed;
  return out;
}

interface LayerJob {
  desc: Descriptor;
  diffId: string;
  chainId: string;
}

async function pullLayer(ctx: PullContext, name: string, job: LayerJob, signal?: AbortSignal): Promise<void> {
  const { store } = ctx;
  const { desc } = job;
  const dest = store.layerDir(job.chainId);
  const ev = (phase: 'waiting' | 'downloading' | 'unpacking' | 'done' | 'cached', bytes: number) =>
    ctx.events?.({ type: 'pull.layer', ref: name, digest: desc.digest, phase, bytes, total: desc.size });
  if (store.hasBlob(desc) && fs.existsSync(dest)) return ev('cached', desc.size);
  if (desc.urls?.length && /foreign|nondistributable/.test(desc.mediaType)) {
    throw new PodrunError('EUNSUPPORTED', `Cannot pull layer "${desc.digest}": it is a non-distributable layer served from ${desc.urls[0]}`);
  }
  const compression = layerCompression(desc.mediaType);
  const lock = await store.lockBlob(desc.digest, signal);
  try {
    const haveBlob = store.hasBlob(desc);
    const haveDir = fs.existsSync(dest);
    if (haveBlob && haveDir) return ev('cached', desc.size);
    if (haveBlob) {
      ev('unpacking', desc.size);
      await unpackLayer(fs.createReadStream(store.blobPath(desc.digest), { highWaterMark: 1 << 20 }), {
        dest,
        compression,
        diffId: job.diffId,
        syscalls: ctx.syscalls,
        limits: ctx.limits,
        events: ctx.events,
      });
      return ev('done', desc.size);
    }
    const writer = store.openIngest(desc);
    let lastEmit = 0;
    const progress = (force = false) => {
      const now = Date.now();
      if (force || now - lastEmit >= 100) {
        lastEmit = now;
        ev('downloading', writer.written);
      }
    };
    async function* bytes(): AsyncGenerator<Buffer> {
      if (writer.resumeOffset > 0) {
        const old = fs.createReadStream(writer.partialPath, { start: 0, end: writer.resumeOffset - 1, highWaterMark: 1 << 20 });
        for await (const c of old as AsyncIterable<Buffer>) {
          writer.hashExisting(c);
          yield c;
        }
      }
      const stream = await ctx.source.getBlob(desc, { offset: writer.written, signal });
      for await (const c of stream as AsyncIterable<Buffer>) {
        writer.write(c);
        progress();
        yield c;
        if (writer.busy) await writer.room();
      }
      progress(true);
      // verify before the unpacker renames its directory into place
      await writer.commit();
      ev('unpacking', desc.size);
    }
    ev('downloading', writer.resumeOffset);
    try {
      const input = Readable.from(bytes(), { objectMode: false, highWaterMark: 1 << 20 });
      if (haveDir) {
        for await (const _ of input) void _;
      } else {
        await unpackLayer(input, { dest, compression, diffId: job.diffId, syscalls: ctx.syscalls, limits: ctx.limits, events: ctx.events });
      }
    } finally {
      await writer.close();
    }
    ev('done', desc.size);
  } finally {
    lock.release();
  }
}

/** Pulls one image into the store and returns its record. */
export async function pullImage(ctx: PullContext, req: PullRequest): Promise<ImageRecord> {
  const { store } = ctx;
  store.init();
  const r = await resolve(ctx, req);
  // The name already points at this manifest and its layers are unpacked (a re-check of a cached
  // `:latest`, as for imagePullPolicy Always): nothing to fetch, and index.json is not rewritten.
  const current = store.entries().find((d) => d.annotations![REF_NAME] === req.name);
  if (current?.digest === r.manifestDesc.digest && current.annotations?.[ANN_INDEX_DIGEST] === r.indexDigest && store.hasBlob(r.manifestDesc) && store.hasBlob(r.manifest.config)) {
    const rec = recordFrom(store, [req.name], r.manifestDesc.digest, r.indexDigest);
    if (rec.layers.every((l) => fs.existsSync(l.dir))) {
      ctx.events?.({ type: 'pull.resolved', ref: req.name, digest: r.manifestDesc.digest, layers: r.manifest.layers.map((l) => ({ digest: l.digest, size: l.size })) });
      for (const l of r.manifest.layers) ctx.events?.({ type: 'pull.layer', ref: req.name, digest: l.digest, phase: 'cached', bytes: l.size, total: l.size });
      ctx.events?.({ type: 'pull.done', ref: req.name, digest: r.manifestDesc.digest });
      return rec;
    }
  }
  const configBytes = await fetchConfig(ctx, r.manifest.config, req.signal);
  const config = parseJson<ConfigDoc>(configBytes, `image config "${r.manifest.config.digest}"`);
  if (req.platform && !r.indexDigest) {
    const have: Platform = { os: config.os ?? '', architecture: config.architecture ?? '', ...(config.variant ? { variant: config.variant } : {}) };
    if (have.os !== req.platform.os || have.architecture !== req.platform.architecture || (req.platform.variant && variantOf(have) !== variantOf(req.platform))) {
      throw new PodrunError('ENOTFOUND', `Cannot find platform "${formatPlatform(req.platform)}" for "${req.name}": it is a single-platform image for "${formatPlatform(have)}"`);
    }
  }
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== r.manifest.layers.length) {
    throw new PodrunError('EREGISTRY', `Cannot pull "${req.name}": the config lists ${diffIds.length} diff IDs for ${r.manifest.layers.length} layers`);
  }
  const chains = chainIds(diffIds);
  const jobs: LayerJob[] = r.manifest.layers.map((desc, i) => ({ desc, diffId: diffIds[i], chainId: chains[i] }));
  ctx.events?.({ type: 'pull.resolved', ref: req.name, digest: r.manifestDesc.digest, layers: r.manifest.layers.map((l) => ({ digest: l.digest, size: l.size })) });
  for (const j of jobs) ctx.events?.({ type: 'pull.layer', ref: req.name, digest: j.desc.digest, phase: 'waiting', bytes: 0, total: j.desc.size });
  // largest first: the biggest layer is the longest pipeline, so it should not wait for a slot
  const bySize = [...jobs].sort((a, b) => b.desc.size - a.desc.size);
  await mapLimit(bySize, ctx.concurrency ?? 3, (job) => pullLayer(ctx, req.name, job, req.signal));
  store.putBlob(r.manifestBytes, r.manifestDesc);
  const platform = r.platform ?? (config.os && config.architecture ? { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) } : undefined);
  const extra: Record<string, string> = { [ANN_PULLED]: new Date().toISOString() };
  if (r.indexDigest) extra[ANN_INDEX_DIGEST] = r.indexDigest;
  await store.tag(req.name, r.manifestDesc, extra, platform);
  ctx.events?.({ type: 'pull.done', ref: req.name, digest: r.manifestDesc.digest });
  return recordFrom(store, [req.name], r.manifestDesc.digest, r.indexDigest);
}

/** Builds the runtime's view of a stored image from its manifest and config blobs. */
export function recordFrom(store: ImageStore, names: string[], manifestDigest: string, indexDigest?: string): ImageRecord {
  const manifest = parseManifest(store.readBlob(manifestDigest, MAX_MANIFEST_BYTES), '', `manifest "${manifestDigest}"`);
  const config = JSON.parse(store.readBlob(manifest.config.digest).toString('utf8')) as ConfigDoc;
  const diffIds = config.rootfs?.diff_ids ?? [];
  const chains = chainIds(diffIds);
  const layers: ImageLayer[] = manifest.layers.map((l, i) => ({
    digest: l.digest,
    diffId: diffIds[i],
    chainId: chains[i],
    size: l.size,
    mediaType: l.mediaType,
    dir: store.layerDir(chains[i]),
  }));
  const rec: ImageRecord = {
    names,
    digest: manifestDigest,
    configDigest: manifest.config.digest,
    platform: { os: config.os ?? 'linux', architecture: config.architecture ?? 'unknown', ...(config.variant ? { variant: config.variant } : {}) },
    size: manifest.config.size + manifest.layers.reduce((a, l) => a + l.size, 0),
    config: config.config ?? {},
    layers,
  };
  if (indexDigest) rec.indexDigest = indexDigest;
  if (config.created) rec.created = config.created;
  return rec;
}
