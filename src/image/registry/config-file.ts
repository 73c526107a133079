/**
 * The registries.yaml format (docs/registries.md), validated with zod: loaded only when a file
 * exists (see loadRegistriesConfig).
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PodrunError } from '../../util/errors.js';
import { normalizeRegistryHost, type RegistriesConfig, type RegistryHostConfig } from './config.js';

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

