/** The public image API: what the runtime and the CLI import. */
export { ImageService, type ImageServiceOptions, type ImagePullOptions, type PullPolicy, type PruneResult, type ImageInspect } from './service.js';
export { ImageStore, REF_NAME } from './store.js';
export { parsePlatform, formatPlatform, hostPlatform, chainIds } from './pull.js';
export { parseReference, formatReference, type ImageRef } from './reference.js';
export { unpackLayer, extractLayerStream, DEFAULT_UNPACK_LIMITS, type UnpackLimits } from './unpack.js';
export { flattenImage } from './flatten.js';
export type { ImageRecord, ImageLayer, ImageConfig, Descriptor, Platform } from './types.js';
export type { ImageSource } from './source.js';
// The registry client and the image builder, for programs that talk to registries themselves
// (importing the package root loads undici; the CLI imports only what each verb needs).
export { openRemote, loadRegistriesConfig, dockerConfigCredentials, staticCredentials, type RegistriesConfig, type RemoteRepository } from './registry/index.js';
export { buildLayer, buildImage, buildIndex, pushImage, type ImageSpec, type LayerSpec, type BuiltImage } from './builder.js';
