/** Builds small OCI images straight into an ImageStore (a layout on disk) for pull tests. */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { ImageStore } from '../../src/image/store.js';
import type { Descriptor, Platform } from '../../src/image/types.js';
import { tarOf, type CraftEntry } from './tar-craft.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface FixtureImage {
  manifest: Descriptor;
  layers: Descriptor[];
  diffIds: string[];
}

export function addImage(store: ImageStore, layers: CraftEntry[][], platform: Platform = { os: 'linux', architecture: 'amd64' }, opts: { badDiffId?: boolean } = {}): FixtureImage {
  const layerDescs: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const entries of layers) {
    const tar = tarOf(entries);
    const gz = gzipSync(tar);
    diffIds.push(opts.badDiffId ? sha(Buffer.from('nope')) : sha(tar));
    store.putBlob(gz);
    layerDescs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(gz), size: gz.length });
  }
  const config = Buffer.from(JSON.stringify({ architecture: platform.architecture, os: platform.os, ...(platform.variant ? { variant: platform.variant } : {}), config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
  store.putBlob(config);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length }, layers: layerDescs }));
  store.putBlob(manifest);
  return { manifest: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length, platform }, layers: layerDescs, diffIds };
}

export function addIndex(store: ImageStore, manifests: Descriptor[]): Descriptor {
  const idx = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
  store.putBlob(idx);
  return { mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha(idx), size: idx.length };
}
