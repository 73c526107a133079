/**
 * The network configuration list (CNI "conflist") podrun uses: either one the operator wrote, or the
 * default one podrun writes on first use to <confDir>/<network>.conflist.
 */
import { mkdir, readFile, rename, writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PodrunError, nodeErrCode } from '../../util/errors.js';

export const CNI_VERSION = '1.0.0';
export const DEFAULT_CONF_DIR = '/etc/podrun/cni';
export const DEFAULT_NETWORK = 'podrun';
export const DEFAULT_BRIDGE = 'podrun0';
/**
 * 10.181.0.0/16: private (RFC 1918) and outside the defaults of the usual neighbours
 * (podman 10.88/16 and 10.89.x/24, docker 172.17+/16, kind/flannel 10.244/16, k3s 10.42-43/16,
 * weave 10.32/12, calico 192.168/16, libvirt 192.168.122/24).
 */
export const DEFAULT_SUBNET = '10.181.0.0/16';

export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  ipam?: { type?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface Conflist {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  plugins: PluginConf[];
  [k: string]: unknown;
}

export interface DefaultConflistOptions {
  name: string;
  bridge: string;
  subnet: string;
  /** Default 1.0.0; podrun picks 0.4.0 for older plugins that do not speak 1.0.0. */
  cniVersion?: string;
}

/**
 * podrun's default network: a bridge that is the pods' gateway, host-local addresses on the subnet,
 * masquerade for traffic leaving the subnet, portmap for hostPort (with SNAT so 127.0.0.1 works),
 * and firewall so hosts whose FORWARD policy is DROP (docker installed) still pass pod traffic.
 */
export function defaultConflist(o: DefaultConflistOptions): Conflist {
  return {
    cniVersion: o.cniVersion ?? CNI_VERSION,
    name: o.name,
    plugins: [
      {
        type: 'bridge',
        bridge: o.bridge,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: o.subnet }]],
          routes: [{ dst: '0.0.0.0/0' }],
        },
      },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'firewall' },
    ],
  };
}

/** The newest CNI version of ours (1.0.0, else 0.4.0) that a plugin's VERSION answer lists. */
export function pickCniVersion(supported: string[]): string | undefined {
  return ['1.0.0', '0.4.0'].find((v) => supported.includes(v));
}

/** Parse and check a conflist's text; `file` is only used in messages. */
export function parseConflist(text: string, file: string): Conflist {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PodrunError('ECONFIG', `Cannot parse the CNI network list "${file}": ${(err as Error).message}`, { cause: err });
  }
  const bad = (what: string): never => {
    throw new PodrunError('ECONFIG', `Cannot use the CNI network list "${file}": ${what}`, {
      hint: 'A conflist is a JSON object with "cniVersion", "name" and a non-empty "plugins" array (see https://www.cni.dev/docs/spec/).',
    });
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('not a JSON object');
  const c = raw as Record<string, unknown>;
  if (typeof c.name !== 'string' || c.name === '') bad('"name" is missing');
  if (typeof c.cniVersion !== 'string') bad('"cniVersion" is missing');
  if (!Array.isArray(c.plugins) || c.plugins.length === 0) bad('"plugins" is missing or empty');
  for (const [i, p] of (c.plugins as unknown[]).entries()) {
    if (typeof p !== 'object' || p === null || typeof (p as PluginConf).type !== 'string') bad(`plugins[${i}] has no "type"`);
  }
  return c as unknown as Conflist;
}

/** The plugin executables a conflist needs: each plugin's type and its IPAM type. */
export function pluginTypes(c: Conflist): string[] {
  const types: string[] = [];
  for (const p of c.plugins) {
    types.push(p.type);
    if (p.ipam && typeof p.ipam.type === 'string' && p.ipam.type !== '') types.push(p.ipam.type);
  }
  return [...new Set(types)];
}

export function conflistPath(confDir: string, network: string): string {
  return path.join(confDir, `${network}.conflist`);
}

/**
 * Read <confDir>/<network>.conflist, or write the default one there first (atomically: a temp file
 * renamed into place, so two concurrent `up`s agree on one file). Returns the list and whether it was written.
 */
export async function loadOrCreateConflist(confDir: string, network: string, defaults: Omit<DefaultConflistOptions, 'name'>): Promise<{ conflist: Conflist; file: string; created: boolean }> {
  const file = conflistPath(confDir, network);
  try {
    return { conflist: parseConflist(await readFile(file, 'utf8'), file), file, created: false };
  } catch (err) {
    if (nodeErrCode(err) !== 'ENOENT') throw err;
  }
  const conflist = defaultConflist({ name: network, ...defaults });
  await mkdir(confDir, { recursive: true, mode: 0o755 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, JSON.stringify(conflist, null, 2) + '\n', { mode: 0o644, flag: 'wx' });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new PodrunError('ECONFIG', `Cannot write the CNI network list "${file}": ${(err as Error).message}`, { cause: err });
  }
  return { conflist, file, created: true };
}

/**
 * The list as podrun runs it: host-local plugins without a `dataDir` keep their leases under the
 * run root (`<run-root>/cni/networks`), beside the CNI cache that releases them and, like it, gone
 * at reboot together with the pods (host-local's own default, /var/lib/cni/networks, survives
 * reboots and would keep leases of pods that no longer exist).
 */
export function withLeaseDir(c: Conflist, dataDir: string): Conflist {
  const copy = JSON.parse(JSON.stringify(c)) as Conflist;
  for (const p of copy.plugins) {
    if (p.ipam && p.ipam.type === 'host-local' && p.ipam.dataDir === undefined) p.ipam.dataDir = dataDir;
  }
  return copy;
}

/** The subnet of a host-local IPAM in the list's first plugin, if there is one (for messages and checks). */
export function conflistSubnet(c: Conflist): string | undefined {
  for (const p of c.plugins) {
    const ipam = p.ipam as { subnet?: unknown; ranges?: unknown } | undefined;
    if (!ipam) continue;
    if (typeof ipam.subnet === 'string') return ipam.subnet;
    const r = (ipam.ranges as { subnet?: unknown }[][] | undefined)?.[0]?.[0];
    if (r && typeof r.subnet === 'string') return r.subnet;
  }
  return undefined;
}
