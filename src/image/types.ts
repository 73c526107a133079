/**
 * The contract between the image side (registry, store, unpack) and the runtime.
 * The runtime only ever sees an ImageRecord: the config it needs to build a process and the
 * unpacked layer directories, bottom first, ready to be stacked as overlayfs lowerdirs.
 */

export interface Descriptor {
  mediaType: string;
  digest: string; // "sha256:<hex>"
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** The subset of the OCI image config (application/vnd.oci.image.config.v1+json) the runtime uses. */
export interface ImageConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  StopSignal?: string;
  ExposedPorts?: Record<string, object>;
  Labels?: Record<string, string>;
  Volumes?: Record<string, object>;
}

export interface ImageLayer {
  digest: string; // compressed blob digest
  diffId: string; // digest of the uncompressed tar
  chainId: string; // OCI chain ID; the layer dir is ROOT/layers/<chainId hex>
  size: number; // compressed size
  mediaType: string;
  dir: string; // absolute path of the unpacked layer directory
}

export interface ImageRecord {
  /** Every name this image is stored under, normalized ("docker.io/library/busybox:latest"). */
  names: string[];
  /** Digest of the manifest bytes actually stored (the platform manifest, not the index). */
  digest: string;
  /** Digest of the index / manifest list the name pointed at, if it was one. */
  indexDigest?: string;
  configDigest: string;
  platform: Platform;
  size: number; // sum of compressed layer sizes + config
  created?: string;
  config: ImageConfig;
  layers: ImageLayer[]; // bottom first
}

export interface PullOptions {
  platform?: Platform;
  signal?: AbortSignal;
}
