/**
 * The pods a manifest names, read without the validating parser (zod): `down` of a file only
 * needs names, and a file that no longer validates can still be taken down.
 */
import { PodrunError } from '../util/errors.js';

export interface PodName {
  namespace: string;
  name: string;
}

export async function podNamesOf(text: string, source: string): Promise<PodName[]> {
  const { parseAllDocuments } = await import('yaml');
  const out: PodName[] = [];
  const docs = parseAllDocuments(text, { version: '1.1' });
  for (const doc of Array.isArray(docs) ? docs : []) {
    if (doc.errors.length) throw new PodrunError('EINVAL_SPEC', `Cannot read manifest "${source}": ${doc.errors[0].message}`);
    const o = doc.toJS() as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
    if (!o || o.kind !== 'Pod' || typeof o.metadata?.name !== 'string') continue;
    out.push({ namespace: typeof o.metadata.namespace === 'string' && o.metadata.namespace ? o.metadata.namespace : 'default', name: o.metadata.name });
  }
  return out;
}
