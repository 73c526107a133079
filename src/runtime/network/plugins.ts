/**
 * Finding the CNI reference plugins on disk. Debian ships them in /usr/lib/cni
 * (containernetworking-plugins), upstream tarballs go to /opt/cni/bin, Fedora uses /usr/libexec/cni.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { PodrunError } from '../../util/errors.js';

export const DEFAULT_BIN_DIRS = ['/opt/cni/bin', '/usr/lib/cni', '/usr/libexec/cni'];

/** The plugin types podrun's default network needs (loopback is called on its own). */
export const DEFAULT_PLUGIN_TYPES = ['bridge', 'host-local', 'portmap', 'firewall', 'loopback'];

export const INSTALL_HINT =
  'Install the CNI reference plugins: `apt-get install containernetworking-plugins` (Debian/Ubuntu, into /usr/lib/cni), ' +
  '`dnf install containernetworking-plugins` (Fedora), or unpack the upstream release into /opt/cni/bin; ' +
  'a different directory can be given with binDirs (--cni-bin-dir).';

export interface FoundPlugins {
  /** The directory chosen: the first one that holds every requested plugin. */
  dir: string;
  /** CNI_PATH for the plugins: the chosen directory first, then the other existing ones. */
  cniPath: string[];
  /** type → absolute path of the executable. */
  paths: Record<string, string>;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function isDir(dir: string): boolean {
  try {
    accessSync(dir, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The first directory of `binDirs` that holds every plugin in `types`.
 * Throws one PodrunError('ECNI') naming the missing plugins and the install hint.
 */
export function findPlugins(binDirs: string[] = DEFAULT_BIN_DIRS, types: string[] = DEFAULT_PLUGIN_TYPES): FoundPlugins {
  const wanted = [...new Set(types)];
  let best: { dir: string; missing: string[] } | undefined;
  for (const dir of binDirs) {
    if (!isDir(dir)) continue;
    const missing = wanted.filter((t) => !isExecutable(path.join(dir, t)));
    if (missing.length === 0) {
      const paths: Record<string, string> = {};
      for (const t of wanted) paths[t] = path.join(dir, t);
      return { dir, cniPath: [dir, ...binDirs.filter((d) => d !== dir && isDir(d))], paths };
    }
    if (!best || missing.length < best.missing.length) best = { dir, missing };
  }
  const where = binDirs.map((d) => `"${d}"`).join(', ');
  const detail = best
    ? `${best.missing.map((m) => `"${m}"`).join(', ')} missing in "${best.dir}" (searched ${where})`
    : `none of ${where} exists`;
  throw new PodrunError('ECNI', `Cannot find the CNI plugins ${wanted.map((t) => `"${t}"`).join(', ')}: ${detail}`, {
    hint: INSTALL_HINT,
  });
}
