/**
 * `podrun image unpack REF DIR`: the image's flattened rootfs, like `umoci raw unpack`.
 * Layers are applied in order onto one directory from the blobs in the store: whiteouts delete
 * what lower layers left, opaque directories drop their lower contents. The same hostile-layer
 * rules as for layer directories apply (nothing is written through a symlink).
 */
import * as fs from 'node:fs';
import { PodrunError, nodeErrCode } from '../util/errors.js';
import type { EventSink } from '../util/events.js';
import type { Syscalls } from '../linux/syscalls.js';
import type { ImageStore } from './store.js';
import type { ImageRecord } from './types.js';
import { extractLayerStream, layerCompression, type UnpackLimits } from './unpack.js';

export interface FlattenOptions {
  syscalls: Syscalls;
  events?: EventSink;
  limits?: Partial<UnpackLimits>;
  preserveOwner?: boolean;
}

/** Writes the flattened rootfs of `image` into `dir`, which must be missing or empty. */
export async function flattenImage(store: ImageStore, image: ImageRecord, dir: string, opts: FlattenOptions): Promise<void> {
  try {
    const present = fs.readdirSync(dir);
    if (present.length) throw new PodrunError('EINVAL_ARG', `Cannot unpack image into "${dir}": the directory is not empty`);
  } catch (err) {
    if (nodeErrCode(err) !== 'ENOENT') throw err;
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  }
  for (const layer of image.layers) {
    if (!store.hasBlob(layer)) {
      throw new PodrunError('ESTATE', `Cannot unpack image "${image.names[0] ?? image.digest}": layer blob "${layer.digest}" is missing from the store`, {
        hint: 'pull the image again',
      });
    }
    await extractLayerStream(fs.createReadStream(store.blobPath(layer.digest), { highWaterMark: 1 << 20 }), dir, {
      mode: 'flatten',
      compression: layerCompression(layer.mediaType),
      diffId: layer.diffId,
      syscalls: opts.syscalls,
      events: opts.events,
      limits: opts.limits,
      preserveOwner: opts.preserveOwner,
    });
  }
}
