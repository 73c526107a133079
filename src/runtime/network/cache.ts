/**
 * The per-pod CNI cache: written (atomically) BEFORE the first plugin runs, updated with the ADD
 * result after the last one, removed after a successful DEL. It holds everything DEL needs — the
 * exact network list used, CNI_PATH, CNI_ARGS, port mappings and the result — so teardown works
 * after a crash, after the conflist changed, and when the network namespace is already gone.
 */
import { mkdir, readFile, rename, rm, writeFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PodrunError, nodeErrCode } from '../../util/errors.js';
import type { Conflist } from './conflist.js';

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  hostIP?: string;
}

export interface CacheRecord {
  version: 1;
  id: string;
  name: string;
  namespace: string;
  netnsPath: string;
  ifName: string;
  conflist: Conflist;
  cniPath: string[];
  binDir: string;
  cniArgs: string;
  portMappings: PortMapping[];
  /** Set once the loopback ADD has been started. */
  loopback: boolean;
  /** The final ADD result (the last plugin's output); absent while ADD is in progress or after it failed. */
  result?: unknown;
  createdAt: string;
}

export function cacheDir(runRoot: string): string {
  return path.join(runRoot, 'cni', 'results');
}
export function cacheFile(runRoot: string, id: string): string {
  return path.join(cacheDir(runRoot), `${id}.json`);
}

export async function writeCache(runRoot: string, rec: CacheRecord): Promise<void> {
  const file = cacheFile(runRoot, rec.id);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, JSON.stringify(rec, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new PodrunError('ESTATE', `Cannot write the CNI cache "${file}": ${(err as Error).message}`, { cause: err });
  }
}

/** The cached record, or undefined when none exists (nothing was ever attached). */
export async function readCache(runRoot: string, id: string): Promise<CacheRecord | undefined> {
  const file = cacheFile(runRoot, id);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (nodeErrCode(err) === 'ENOENT') return undefined;
    throw new PodrunError('ESTATE', `Cannot read the CNI cache "${file}": ${(err as Error).message}`, { cause: err });
  }
  try {
    const rec = JSON.parse(text) as CacheRecord;
    if (rec.version !== 1 || rec.id !== id || !rec.conflist) throw new Error('unexpected content');
    return rec;
  } catch (err) {
    throw new PodrunError('ESTATE', `Cannot use the CNI cache "${file}": ${(err as Error).message}`, {
      cause: err,
      hint: 'The file is damaged; the pod\'s IP lease may have to be released by hand from the host-local dataDir.',
    });
  }
}

export async function removeCache(runRoot: string, id: string): Promise<void> {
  await rm(cacheFile(runRoot, id), { force: true });
}

/** Pod ids that still have a cache (attachments `gc` may have to tear down). */
export async function listCached(runRoot: string): Promise<string[]> {
  try {
    return (await readdir(cacheDir(runRoot))).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length));
  } catch (err) {
    if (nodeErrCode(err) === 'ENOENT') return [];
    throw err;
  }
}
