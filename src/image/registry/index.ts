export { openRemote, manifestMediaType, sha256, MEDIA_TYPES, MAX_MANIFEST_BYTES, MAX_CONFIG_BYTES } from './client.js';
export type { RemoteOptions, RemoteRepository, PushBlob } from './client.js';
export {
  loadRegistriesConfig,
  parseRegistriesConfig,
  defaultRegistriesConfig,
  hostSettings,
  isLoopbackHost,
  DEFAULT_REGISTRIES_CONFIG,
} from './config.js';
export type { RegistriesConfig, RegistryHostConfig } from './config.js';
export { dockerConfigCredentials, staticCredentials, parseDockerConfig, dockerConfigPath } from './credentials.js';
export type { Credentials, CredentialLookup } from './credentials.js';
export { clearAuthCache, parseChallenges } from './auth.js';
export { DEFAULT_TIMEOUTS, DEFAULT_RETRY } from './http.js';
export type { Timeouts, RetryPolicy } from './http.js';
