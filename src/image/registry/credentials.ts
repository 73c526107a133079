/**
 * Registry credentials from Docker's config.json ($DOCKER_CONFIG/config.json, else ~/.docker/config.json),
 * chosen as the docker CLI does: `credHelpers["<host>"]` wins, else `credsStore`, else
 * `auths: { "<host>": { auth: base64("user:pass") } | { username, password } }`.
 * A helper is the program docker-credential-<name> on PATH (see cred-helper.ts).
 *
 * Lookups are lazy: Remote asks only when a registry answers 401, once per host, so an anonymous
 * pull neither reads the file nor runs a helper, and a helper never blocks the event loop.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PodrunError, nodeErrCode } from '../../util/errors.js';
import { runCredentialHelper, type CredHelperOptions } from './cred-helper.js';

export interface Credentials {
  username: string;
  password: string;
  /**
   * An identity (OAuth2 refresh) token: a helper's Secret when its Username is "<token>", or
   * `identitytoken` in config.json `auths`. When set, the token service is asked with
   * grant_type=refresh_token instead of Basic user:password.
   */
  identityToken?: string;
}

/**
 * Looks up credentials for a host ("127.0.0.1:5000", "docker.io"); may answer at once or with a
 * promise (a credential helper). Callers await it.
 */
export type CredentialLookup = (host: string) => Credentials | undefined | Promise<Credentials | undefined>;

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
  return join(dir, 'config.json');
}

export function keyHost(key: string): string {
  // Keys are "host", "host:port", "https://host/v1/", "http://host:port".
  let k = key.trim();
  const scheme = k.indexOf('://');
  if (scheme !== -1) k = k.slice(scheme + 3);
  const slash = k.indexOf('/');
  if (slash !== -1) k = k.slice(0, slash);
  k = k.toLowerCase();
  return k === 'index.docker.io' || k === 'registry-1.docker.io' ? 'docker.io' : k;
}

/** What podrun reads from a Docker config.json; hosts normalised ("docker.io", "host:port"). */
export interface DockerConfig {
  /** `auths`: host → credentials. */
  auths: Map<string, Credentials>;
  /** `credsStore`: the helper for every host without a credHelpers entry. */
  credsStore?: string;
  /** `credHelpers`: host → helper name. */
  credHelpers: Map<string, string>;
}

/** Parse config.json text: auths, credsStore and credHelpers. */
export function parseDockerConfigFile(text: string, source: string): DockerConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new PodrunError('ECONFIG', `Cannot parse Docker config "${source}": ${(err as Error).message}`, { cause: err });
  }
  const d = (doc && typeof doc === 'object' ? doc : {}) as { credsStore?: unknown; credHelpers?: unknown };
  let credsStore: string | undefined;
  if (d.credsStore !== undefined && d.credsStore !== '') {
    if (typeof d.credsStore !== 'string') throw new PodrunError('ECONFIG', `Cannot parse Docker config "${source}": credsStore is not a string`);
    credsStore = d.credsStore;
  }
  const credHelpers = new Map<string, string>();
  if (d.credHelpers !== undefined) {
    if (!d.credHelpers || typeof d.credHelpers !== 'object' || Array.isArray(d.credHelpers)) {
      throw new PodrunError('ECONFIG', `Cannot parse Docker config "${source}": credHelpers is not an object`);
    }
    for (const [key, value] of Object.entries(d.credHelpers as Record<string, unknown>)) {
      if (typeof value !== 'string') throw new PodrunError('ECONFIG', `Cannot parse Docker config "${source}": credHelpers."${key}" is not a string`);
      if (value !== '') credHelpers.set(keyHost(key), value);
    }
  }
  return { auths: parseAuths(doc, source), credsStore, credHelpers };
}

/** Parse config.json text into host → credentials (`auths` only). */
export function parseDockerConfig(text: string, source: string): Map<string, Credentials> {
  return parseDockerConfigFile(text, source).auths;
}

function parseAuths(doc: unknown, source: string): Map<string, Credentials> {
  const out = new Map<string, Credentials>();
  const auths = (doc as { auths?: unknown })?.auths;
  if (!auths || typeof auths !== 'object') return out;
  for (const [key, value] of Object.entries(auths as Record<string, unknown>)) {
    if (!value || typeof value !== 'object') continue;
    const v = value as { auth?: unknown; username?: unknown; password?: unknown; identitytoken?: unknown };
    let creds: Credentials | undefined;
    if (typeof v.auth === 'string' && v.auth !== '') {
      const decoded = Buffer.from(v.auth, 'base64').toString('utf8');
      const c = decoded.indexOf(':');
      if (c === -1) {
        throw new PodrunError('ECONFIG', `Cannot parse Docker config "${source}": auths."${key}".auth is not base64 of "user:password"`);
      }
      creds = { username: decoded.slice(0, c), password: decoded.slice(c + 1) };
    } else if (typeof v.username === 'string' && typeof v.password === 'string') {
      creds = { username: v.username, password: v.password };
    }
    // docker login stores an identity token beside "auth" (base64 of "user:"), or alone.
    if (typeof v.identitytoken === 'string' && v.identitytoken !== '') {
      creds = { username: creds?.username ?? '', password: creds?.password ?? '', identityToken: v.identitytoken };
    }
    if (creds) out.set(keyHost(key), creds);
  }
  return out;
}

export interface DockerCredentialsOptions extends CredHelperOptions {
  /** Runs a helper (tests); default: runCredentialHelper. */
  runHelper?: (name: string, host: string, opts: CredHelperOptions) => Promise<Credentials | undefined> | Credentials | undefined;
}

/** The helper the docker CLI would ask for `host`: credHelpers[host], else credsStore, else none. */
export function helperFor(config: DockerConfig, host: string): string | undefined {
  return config.credHelpers.get(keyHost(host)) ?? config.credsStore;
}

/**
 * Credentials for `host` from a parsed config: a configured helper decides alone (its "not found"
 * means anonymous, as in the docker CLI); without one, `auths`.
 */
export async function lookupDockerCredentials(config: DockerConfig, host: string, opts: DockerCredentialsOptions = {}): Promise<Credentials | undefined> {
  const helper = helperFor(config, host);
  if (helper === undefined) return config.auths.get(keyHost(host));
  const run = opts.runHelper ?? runCredentialHelper;
  return run(helper, keyHost(host), { timeoutMs: opts.timeoutMs, env: opts.env });
}

/**
 * Credentials from the Docker config file; a missing file means none. The file is read on the
 * first lookup, not before. A host answered from `auths` is answered at once; a host with a helper
 * gets a promise, and each host's helper runs at most once per returned lookup (its failure too is
 * remembered).
 */
export function dockerConfigCredentials(path: string = dockerConfigPath(), opts: DockerCredentialsOptions = {}): CredentialLookup {
  let config: DockerConfig | undefined;
  const asked = new Map<string, Promise<Credentials | undefined>>();
  return (host) => {
    config ??= readDockerConfig(path);
    const key = keyHost(host);
    if (helperFor(config, key) === undefined) return config.auths.get(key);
    let answer = asked.get(key);
    if (!answer) {
      answer = lookupDockerCredentials(config, key, opts);
      asked.set(key, answer);
    }
    return answer;
  };
}

function readDockerConfig(path: string): DockerConfig {
  try {
    return parseDockerConfigFile(readFileSync(path, 'utf8'), path);
  } catch (err) {
    if (nodeErrCode(err) !== 'ENOENT') throw err;
    return { auths: new Map(), credHelpers: new Map() };
  }
}

/**
 * A lookup that asks `lookup` at most once per host (keys normalised), remembering the answer or
 * the failure; what Remote uses so that many concurrent 401s for one host ask once.
 */
export function lookupOncePerHost(lookup: CredentialLookup): (host: string) => Promise<Credentials | undefined> {
  const asked = new Map<string, Promise<Credentials | undefined>>();
  return (host) => {
    const key = keyHost(host);
    let answer = asked.get(key);
    if (!answer) {
      answer = Promise.resolve().then(() => lookup(host));
      asked.set(key, answer);
    }
    return answer;
  };
}

/** Static credentials (tests, the API). */
export function staticCredentials(entries: Record<string, Credentials>): CredentialLookup {
  const map = new Map(Object.entries(entries).map(([k, v]) => [keyHost(k), v] as const));
  return (host) => map.get(keyHost(host));
}
