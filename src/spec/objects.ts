/**
 * Small zod-free helpers shared by parse.ts (at parse time) and image-config.ts (at container start):
 * ConfigMap / Secret volume files, downward-API metadata values. Kept apart so that the runtime can
 * use them without loading zod and yaml.
 */
import type { FieldPath, KeyToPath, ProjectedFile, ResolvedFiles } from './plan.js';

/**
 * The files of a configMap or secret volume, as kubelet writes them: every key (no items) or only
 * the listed items; a missing object or key is fatal unless the volume is optional.
 */
export function resolveFiles(
  kind: 'ConfigMap' | 'Secret',
  name: string,
  entries: Record<string, Uint8Array> | undefined,
  items: KeyToPath[] | undefined,
  defaultMode: number,
  optional: boolean,
): ResolvedFiles {
  if (!entries) {
    return optional ? { state: 'optional-missing', files: [] } : { state: 'missing', reason: `${kind} ${JSON.stringify(name)} is not defined` };
  }
  if (!items) {
    const files = Object.keys(entries)
      .sort()
      .map((k) => ({ path: k, mode: defaultMode, data: entries[k] }));
    return { state: 'found', files };
  }
  const files: ProjectedFile[] = [];
  for (const it of items) {
    const data = entries[it.key];
    if (data === undefined) {
      if (optional) continue;
      return { state: 'missing', reason: `${kind} ${JSON.stringify(name)} has no key ${JSON.stringify(it.key)}` };
    }
    files.push({ path: it.path, mode: it.mode ?? defaultMode, data });
  }
  return { state: 'found', files };
}

/** The pod facts a metadata field path reads (a PodPlan has them all). */
export interface PodMetadataFacts {
  name: string;
  namespace: string;
  uid: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/**
 * Text of a metadata.* field path for the downward API: a single value, or for whole
 * metadata.labels / metadata.annotations kubelet's `key="value"` lines, sorted. Other paths
 * (spec.*, status.*) need runtime facts and return undefined.
 */
export function metadataFieldValue(f: FieldPath, md: PodMetadataFacts): string | undefined {
  switch (f.path) {
    case 'metadata.name':
      return md.name;
    case 'metadata.namespace':
      return md.namespace;
    case 'metadata.uid':
      return md.uid;
    case 'metadata.labels':
    case 'metadata.annotations': {
      const rec = f.path === 'metadata.labels' ? md.labels : md.annotations;
      if ('key' in f) return rec[f.key] ?? '';
      return formatKeyValues(rec);
    }
    default:
      return undefined;
  }
}

/** kubelet's format for metadata.labels / annotations files: sorted `key="value"` lines. */
export function formatKeyValues(rec: Record<string, string>): string {
  return Object.keys(rec)
    .sort()
    .map((k) => `${k}=${JSON.stringify(rec[k])}`)
    .join('\n');
}

