/**
 * registries.yaml: per-registry mirrors, insecure opt-in and CA files (format: docs/registries.md).
 * Parsed once with zod into a plain RegistriesConfig; a missing file means defaults.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PodrunError, nodeErrCode } from '../../util/errors.js';

export const DEFAULT_REGISTRIES_CONFIG = '/etc/podrun/registries.yaml';

export interface RegistryHostConfig {
  /** Endpoints tried in order before the registry itself: "http://127.0.0.1:5000", "https://mirror.example/prefix". */
  mirrors: string[];
  /** Plain http or unverified TLS allowed. Undefined = the default (true for loopback hosts without a `ca`). */
  insecure?: boolean;
  /** PEM CA bundle that verifies this host's TLS certificate, in addition to the system CAs. */
  ca?: string;
}

export interface RegistriesConfig {
  /** Keyed by registry host ("docker.io", "127.0.0.1:5000"). */
  registries: Record<string, RegistryHostConfig>;
  /** Where it was read from, for messages; undefined for built-in defaults. */
  source?: string;
}

const mirrorUrl = z.string().refine(
  (s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.search === '' && u.hash === '';
    } catch {
      return false;
    }
  },
  { message: 'must be an http:// or https:// URL without credentials, query or fragment' },
);

const hostSchema = z
  .object({
    mirrors: z.array(mirrorUrl).optional(),
    insecure: z.boolean().optional(),
    ca: z.string().min(1).optional(),
  })
  .strict();

const fileSchema = z
  .object({
    registries: z.record(z.string().regex(/^[A-Za-z0-9.\-[\]:]+$/, 'must be a registry host like "docker.io" or "127.0.0.1:5000"'), hostSchema.nullable()).optional(),
  })
  .strict();

export function defaultRegistriesConfig(): RegistriesConfig {
  return { registries: {} };
}

function issuePath(path: PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(String(p))) out += (out ? '.' : '') + String(p);
    else out += `${out ? '.' : ''}"${String(p)}"`;
  }
  return out || '(top level)';
}

/** Parse registries.yaml text (`source` names it in errors). */
export function parseRegistriesConfig(text: string, source = 'registries.yaml'): RegistriesConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new PodrunError('ECONFIG', `Cannot read registry config "${source}": ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || doc === undefined) return { registries: {}, source };
  const r = fileSchema.safeParse(doc);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      const keys = i.code === 'unrecognized_keys' ? ` (${(i as { keys: string[] }).keys.map((k) => `"${k}"`).join(', ')})` : '';
      return `${issuePath(i.path)}: ${i.message}${keys}`;
    });
    throw new PodrunError('ECONFIG', `Cannot load registry config "${source}": ${lines.join('; ')}`, {
      hint: 'See docs/registries.md for the format.',
    });
  }
  const registries: Record<string, RegistryHostConfig> = {};
  for (const [host, cfg] of Object.entries(r.data.registries ?? {})) {
    const key = normalizeRegistryHost(host);
    registries[key] = {
      mirrors: (cfg?.mirrors ?? []).map((m) => m.replace(/\/+$/, '')),
      ...(cfg?.insecure !== undefined ? { insecure: cfg.insecure } : {}),
      ...(cfg?.ca !== undefined ? { ca: cfg.ca } : {}),
    };
  }
  return { registries, source };
}

/** Read a registries.yaml; a missing file gives the defaults. */
export function loadRegistriesConfig(path: string = DEFAULT_REGISTRIES_CONFIG): RegistriesConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (nodeErrCode(err) === 'ENOENT') return defaultRegistriesConfig();
    throw new PodrunError('ECONFIG', `Cannot read registry config "${path}": ${(err as Error).message}`, { cause: err });
  }
  return parseRegistriesConfig(text, path);
}

export function normalizeRegistryHost(host: string): string {
  const h = host.toLowerCase();
  return h === 'index.docker.io' || h === 'registry-1.docker.io' ? 'docker.io' : h;
}

/** The hostname part of "host:port" / "[v6]:port". */
export function hostnameOf(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(1, hostPort.indexOf(']'));
  const c = hostPort.lastIndexOf(':');
  return c === -1 ? hostPort : hostPort.slice(0, c);
}

/** localhost, 127.0.0.0/8 and ::1: allowed insecure by default, as Docker does. */
export function isLoopbackHost(hostPort: string): boolean {
  const h = hostnameOf(hostPort).toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1';
  return false;
}

/** Settings for one host (a registry or a mirror's host:port), defaults filled in. */
export function hostSettings(config: RegistriesConfig, hostPort: string): { insecure: boolean; ca?: string; mirrors: string[] } {
  const c = config.registries[normalizeRegistryHost(hostPort)];
  // A CA given for a loopback host means "verify with it"; an explicit insecure always wins.
  return { insecure: c?.insecure ?? (isLoopbackHost(hostPort) && !c?.ca), ca: c?.ca, mirrors: c?.mirrors ?? [] };
}
