export { openRemote, manifestMediaType, sha256, MEDIA_TYPES, MAX_MANIFEST_BYTES, MAX_CONFIG_BYTES } from './client.js';
export type { RemoteOptions, RemoteRepository, PushBlob } from './client.js';
export { parseRegistriesConfig } from './config-file.js';
export {
  loadRegistriesConfig,
  defaultRegistriesConfig,
  hostSettings,
  isLoopbackHost,
  DEFAULT_REGISTRIES_CONFIG,
} from './config.js';
export type { RegistriesConfig, RegistryHostConfig } from './config.js';
export {
  dockerConfigCredentials,
  staticCredentials,
  parseDockerConfig,
  parseDockerConfigFile,
  lookupDockerCredentials,
  lookupOncePerHost,
  helperFor,
  dockerConfigPath,
} from './credentials.js';
export type { Credentials, CredentialLookup, DockerConfig, DockerCredentialsOptions } from './credentials.js';
export { runCredentialHelper, CRED_HELPER_TIMEOUT_MS, IDENTITY_TOKEN_USERNAME } from './cred-helper.js';
export type { CredHelperOptions } from './cred-helper.js';
export { clearAuthCache, parseChallenges, OAUTH_CLIENT_ID } from './auth.js';
export { DEFAULT_TIMEOUTS, DEFAULT_RETRY } from './http.js';
export type { Timeouts, RetryPolicy } from './http.js';
