import type { Readable } from 'node:stream';
import type { Descriptor } from './types.js';

/**
 * Where image bytes come from. A remote registry (src/image/registry/), an OCI layout on disk
 * and a test fixture all implement this, so pull code does not care which it reads
 * (go-containerregistry's idea). A source does not verify digests: the store does, while writing.
 */
export interface ManifestResult {
  bytes: Buffer;
  mediaType: string; // from Content-Type, or the document's own mediaType
  /** Digest of `bytes` (computed, never taken from a header). */
  digest: string;
}

export interface BlobFetchOptions {
  /** Resume from this byte offset (HTTP Range); the stream then starts at `offset`. */
  offset?: number;
  signal?: AbortSignal;
}

export interface ImageSource {
  /** "registry/repository" for messages. */
  readonly name: string;
  /** A manifest or index by tag or by digest ("sha256:…"). */
  getManifest(reference: string, signal?: AbortSignal): Promise<ManifestResult>;
  /** The blob's bytes, starting at opts.offset when given. */
  getBlob(desc: Descriptor, opts?: BlobFetchOptions): Promise<Readable>;
}
