/**
 * Registry credentials from Docker's config.json ($DOCKER_CONFIG/config.json, else ~/.docker/config.json):
 * `auths: { "<host>": { auth: base64("user:pass") } | { username, password } }`.
 * Credential helpers (credsStore / credHelpers) are not run.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PodrunError, nodeErrCode } from '../../util/errors.js';

export interface Credentials {
  username: string;
  password: string;
}

/** Looks up credentials for a host ("127.0.0.1:5000", "docker.io"). */
export type CredentialLookup = (host: string) => Credentials | undefined;

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
  return join(dir, 'config.json');
}

function keyHost(key: string): string {
  // Keys are "host", "host:port", "https://host/v1/", "http://host:port".
  let k = key.trim();
  const scheme = k.indexOf('://');
  if (scheme !== -1) k = k.slice(scheme + 3);
  const slash = k.indexOf('/');
  if (slash !== -1) k = k.slice(0, slash);
  k = k.toLowerCase();
  return k === 'index.docker.io' || k === 'registry-1.docker.io' ? 'docker.io' : k;
}

/** Parse config.json text into host → credentials. */
export function parseDockerConfig(text: string, source: string): Map<string, Credentials> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new PodrunError('ECONFIG', `Cannot parse Docker config "${source}": ${(err as Error).message}`, { cause: err });
  }
  const out = new Map<string, Credentials>();
  const auths = (doc as { auths?: unknown })?.auths;
  if (!auths || typeof auths !== 'object') return out;
  for (const [key, value] of Object.entries(auths as Record<string, unknown>)) {
    if (!value || typeof value !== 'object') continue;
    const v = value as { auth?: unknown; username?: unknown; password?: unknown };
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
    if (creds) out.set(keyHost(key), creds);
  }
  return out;
}

/** Credentials from the Docker config file; a missing file means none. Read once per call. */
export function dockerConfigCredentials(path: string = dockerConfigPath()): CredentialLookup {
  let map = new Map<string, Credentials>();
  try {
    map = parseDockerConfig(readFileSync(path, 'utf8'), path);
  } catch (err) {
    if (nodeErrCode(err) !== 'ENOENT') throw err;
  }
  return (host) => map.get(keyHost(host));
}

/** Static credentials (tests, the API). */
export function staticCredentials(entries: Record<string, Credentials>): CredentialLookup {
  const map = new Map(Object.entries(entries).map(([k, v]) => [keyHost(k), v] as const));
  return (host) => map.get(keyHost(host));
}
