/** The public image API: what the runtime and the CLI import. */
export { ImageService, type ImageServiceOptions, type ImagePullOptions, type PullPolicy, type PruneResult, type ImageInspect } from './service.js';
export { ImageStore, REF_NAME } from './store.js';
export { parsePlatform, formatPlatform, hostPlatform, chainIds } from './pull.js';
export { parseReference, formatReference, type ImageRef } from './reference.js';
export { unpackLayer, extractLayerStream, DEFAULT_UNPACK_LIMITS, type UnpackLimits } from './unpack.js';
export { flattenImage } from './flatten.js';
export type { ImageRecord, ImageLayer, ImageConfig, Descriptor, Platform } from './types.js';
export type { ImageSource } from './source.js';
