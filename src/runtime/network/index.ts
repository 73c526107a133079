/**
 * Pod networking through CNI. The runtime pins a network namespace per pod and calls:
 *
 *   setupPodNetwork(o, req)        → { ip, gateway, mac, interface }   (loopback up, then the network's ADD)
 *   checkPodNetwork(o, req)        → CNI CHECK of the cached attachment
 *   teardownPodNetwork(o, id, ns?) → DEL in reverse order, from the cache; idempotent
 *
 * hostNetwork pods are never passed here. See docs/networking.md.
 */
import { access, statfs } from 'node:fs/promises';
import path from 'node:path';
import { PodrunError, isPodrunError } from '../../util/errors.js';
import { trace, type EventSink } from '../../util/events.js';
import { CNI_VERSION, DEFAULT_BRIDGE, DEFAULT_CONF_DIR, DEFAULT_NETWORK, DEFAULT_SUBNET, conflistPath, conflistSubnet, loadOrCreateConflist, pickCniVersion, withLeaseDir, parseConflist, pluginTypes, type Conflist, type PluginConf } from './conflist.js';
import { cacheFile, readCache, removeCache, writeCache, listCached, type CacheRecord, type PortMapping } from './cache.js';
import { execPlugin, type CniCall } from './exec.js';
import { DEFAULT_BIN_DIRS, findPlugins } from './plugins.js';
import { removeMasq } from './masq.js';
import { readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { overlappingRoutes } from './subnet.js';

export { findPlugins, DEFAULT_BIN_DIRS, INSTALL_HINT, type FoundPlugins } from './plugins.js';
export { resolvConf, buildResolvConf, parseResolvConf, readHostResolvConf, dnsMode, type DnsConfig, type ResolvConfOptions } from './resolv.js';
export { defaultConflist, conflistPath, DEFAULT_SUBNET, DEFAULT_NETWORK, DEFAULT_BRIDGE, DEFAULT_CONF_DIR, CNI_VERSION, type Conflist } from './conflist.js';
export { listCached as listNetworkAttachments, cacheFile as networkCacheFile } from './cache.js';
export { masqChainName } from './masq.js';

export interface NetworkOptions {
  /** The CNI result cache lives under <runRoot>/cni (per pod) and survives crashes of podrun. */
  runRoot: string;
  /** Default /etc/podrun/cni; podrun writes <confDir>/<network>.conflist on first use. */
  confDir?: string;
  /** Default: /opt/cni/bin, /usr/lib/cni, /usr/libexec/cni (the first that has every plugin). */
  binDirs?: string[];
  /** Default "podrun". */
  networkName?: string;
  /** Used when podrun writes the conflist; default 10.181.0.0/16. */
  subnet?: string;
  /** Bridge name used when podrun writes the conflist; default "podrun0". */
  bridge?: string;
  events?: EventSink;
}

export interface PodPort {
  containerPort: number;
  hostPort?: number;
  hostIP?: string;
  protocol: 'TCP' | 'UDP' | 'SCTP';
}

export interface PodNetworkRequest {
  /** The pod's uid: the CNI container id. */
  id: string;
  name: string;
  namespace: string;
  /** A pinned network namespace (bind mount of /proc/<pid>/ns/net) or /proc/<pid>/ns/net. */
  netnsPath: string;
  ports: PodPort[];
}

export interface PodNetworkStatus {
  /** The pod IP, without prefix length. */
  ip: string;
  gateway?: string;
  mac?: string;
  /** The interface name inside the pod ("eth0"). */
  interface: string;
}

export const POD_IFNAME = 'eth0';
const LOOPBACK_NETWORK = 'podrun-loopback';
const NSFS_MAGIC = 0x6e736673;
const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function confDirOf(o: NetworkOptions): string {
  return o.confDir ?? DEFAULT_CONF_DIR;
}
function networkOf(o: NetworkOptions): string {
  return o.networkName ?? DEFAULT_NETWORK;
}
/** host-local's lease directory when the list sets none: under the run root, like the CNI cache. */
export function ipamDataDir(runRoot: string): string {
  return path.join(runRoot, 'cni', 'networks');
}

/** True when `p` is a network namespace file (a pin or /proc/<pid>/ns/net). */
export async function isNetns(p: string): Promise<boolean> {
  if (!p) return false;
  try {
    return Number((await statfs(p)).type) === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/** kubelet's CNI_ARGS (libcni's K8S_* keys); IgnoreUnknown lets plugins that do not know them pass. */
export function cniArgs(req: { id: string; name: string; namespace: string }): string {
  return `IgnoreUnknown=1;K8S_POD_NAMESPACE=${req.namespace};K8S_POD_NAME=${req.name};K8S_POD_INFRA_CONTAINER_ID=${req.id};K8S_POD_UID=${req.id}`;
}

/** hostPort mappings for portmap's runtimeConfig (ports without hostPort are not published). */
export function portMappings(ports: PodPort[]): PortMapping[] {
  const out: PortMapping[] = [];
  for (const p of ports) {
    if (!p.hostPort) continue;
    const m: PortMapping = { hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol.toLowerCase() as PortMapping['protocol'] };
    if (p.hostIP && p.hostIP !== '0.0.0.0' && p.hostIP !== '::') m.hostIP = p.hostIP;
    out.push(m);
  }
  return out;
}

/**
 * The stdin of one plugin, derived from the list as the CNI spec says: the plugin's own keys plus
 * the list's name and cniVersion, runtimeConfig only for capabilities the plugin declares, and
 * prevResult from the previous plugin (ADD) or the cache (CHECK, DEL).
 */
export function pluginStdin(list: Conflist, plugin: PluginConf, capabilityArgs: Record<string, unknown>, prevResult: unknown): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  const rc: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
    if (on && capabilityArgs[cap] !== undefined) rc[cap] = capabilityArgs[cap];
  }
  if (Object.keys(rc).length) conf.runtimeConfig = rc;
  else delete conf.runtimeConfig;
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return conf;
}

interface CniResult {
  interfaces?: { name?: string; mac?: string; sandbox?: string }[];
  ips?: { address?: string; gateway?: string; interface?: number; version?: string }[];
}

/** The pod's address from a CNI result: the first IPv4 (else IPv6) on an interface inside the sandbox. */
export function podStatusFromResult(result: unknown, ifName = POD_IFNAME): PodNetworkStatus {
  const r = (result ?? {}) as CniResult;
  const ifaces = r.interfaces ?? [];
  const ips = (r.ips ?? []).filter((a) => typeof a.address === 'string');
  const inSandbox = ips.filter((a) => a.interface === undefined || ifaces[a.interface]?.sandbox !== undefined);
  const pick = [...inSandbox, ...ips].sort((a, b) => Number(a.address!.includes(':')) - Number(b.address!.includes(':')))[0];
  if (!pick) throw new PodrunError('ECNI', `Cannot read the pod IP: the CNI result has no IP address: ${JSON.stringify(result).slice(0, 300)}`);
  const iface = pick.interface !== undefined ? ifaces[pick.interface] : undefined;
  return {
    ip: pick.address!.split('/')[0],
    gateway: pick.gateway,
    mac: iface?.mac,
    interface: iface?.name ?? ifName,
  };
}

function action(verb: string, req: { namespace: string; name: string }, network: string): string {
  return `${verb} pod "${req.namespace}/${req.name}" ${verb === 'attach' ? 'to' : verb === 'detach' ? 'from' : 'on'} network "${network}"`;
}

/** Ask the bridge plugin (VERSION) which spec versions it speaks: 1.0.0 when it can, else 0.4.0 (plugins before 1.0). */
async function defaultCniVersion(o: NetworkOptions): Promise<string> {
  const found = findPlugins(o.binDirs ?? DEFAULT_BIN_DIRS);
  const call: CniCall = { command: 'VERSION', containerId: '', netns: '', ifName: '', args: '', cniPath: found.cniPath };
  const answer = (await execPlugin(found.paths.bridge, 'bridge', call, { cniVersion: CNI_VERSION }, 'ask the bridge plugin for its CNI versions', o.events)) as { supportedVersions?: string[] } | undefined;
  const picked = pickCniVersion(answer?.supportedVersions ?? []);
  if (!picked) {
    throw new PodrunError('ECNI', `Cannot write the default network: the bridge plugin in "${found.dir}" speaks CNI ${JSON.stringify(answer?.supportedVersions ?? [])}, not 1.0.0 or 0.4.0`, {
      hint: 'Install containernetworking-plugins 0.8 or newer.',
    });
  }
  return picked;
}

/** The conflist for `o`: the operator's file, or the default one written now. */
export async function networkConfig(o: NetworkOptions): Promise<{ conflist: Conflist; file: string; created: boolean }> {
  const network = networkOf(o);
  const file = conflistPath(confDirOf(o), network);
  const cniVersion = (await access(file).then(() => true, () => false)) ? undefined : await defaultCniVersion(o);
  const got = await loadOrCreateConflist(confDirOf(o), network, {
    bridge: o.bridge ?? DEFAULT_BRIDGE,
    subnet: o.subnet ?? DEFAULT_SUBNET,
    cniVersion,
  });
  if (got.created) trace(o.events, 'cni', 'write conflist', got.file);
  if (!got.created && o.subnet && conflistSubnet(got.conflist) && conflistSubnet(got.conflist) !== o.subnet) {
    o.events?.({ type: 'warning', message: `The network list "${got.file}" uses subnet "${conflistSubnet(got.conflist)}", not the requested "${o.subnet}"; the file wins (delete it to have podrun write a new one)` });
  }
  return { ...got, conflist: withLeaseDir(got.conflist, ipamDataDir(o.runRoot)) };
}

/**
 * Attach the pod's network namespace: loopback up, then ADD through every plugin of the network.
 * The cache is written before the first plugin runs, so a crash at any point can be torn down.
 * On failure everything already added is deleted again (in reverse) before the error is thrown.
 */
export async function setupPodNetwork(o: NetworkOptions, req: PodNetworkRequest): Promise<PodNetworkStatus> {
  if (!CONTAINER_ID.test(req.id)) {
    throw new PodrunError('EINVAL_ARG', `Cannot attach pod "${req.namespace}/${req.name}": id ${JSON.stringify(req.id)} is not a valid CNI container id (letters, digits, "_", ".", "-")`);
  }
  const existing = await readCache(o.runRoot, req.id);
  if (existing) {
    // the same pin path may hold a newer namespace (a pod re-created after a crash): reuse only what CHECK confirms
    if (existing.result !== undefined && existing.netnsPath === req.netnsPath && (await isNetns(req.netnsPath))) {
      const confirmed = await runCheck(o, existing, req).catch(() => false);
      if (confirmed) {
        trace(o.events, 'cni', 'reuse cached attachment', req.id);
        return podStatusFromResult(existing.result, existing.ifName);
      }
    }
    trace(o.events, 'cni', 'tear down stale attachment', req.id);
    await teardownPodNetwork(o, req.id);
  }
  if (!(await isNetns(req.netnsPath))) {
    throw new PodrunError('ECNI', `Cannot attach pod "${req.namespace}/${req.name}": "${req.netnsPath}" is not a network namespace`);
  }
  const { conflist } = await networkConfig(o);
  const found = findPlugins(o.binDirs ?? DEFAULT_BIN_DIRS, [...pluginTypes(conflist), 'loopback']);
  const rec: CacheRecord = {
    version: 1,
    id: req.id,
    name: req.name,
    namespace: req.namespace,
    netnsPath: req.netnsPath,
    ifName: POD_IFNAME,
    conflist,
    cniPath: found.cniPath,
    binDir: found.dir,
    cniArgs: cniArgs(req),
    portMappings: portMappings(req.ports),
    loopback: true,
    createdAt: new Date().toISOString(),
  };
  await writeCache(o.runRoot, rec);
  const what = action('attach', req, conflist.name);
  try {
    const lo: CniCall = { command: 'ADD', containerId: req.id, netns: req.netnsPath, ifName: 'lo', args: rec.cniArgs, cniPath: rec.cniPath };
    await execPlugin(found.paths.loopback, 'loopback', lo, { cniVersion: CNI_VERSION, name: LOOPBACK_NETWORK, type: 'loopback' }, what, o.events);
    let prev: unknown;
    const call: CniCall = { command: 'ADD', containerId: req.id, netns: req.netnsPath, ifName: rec.ifName, args: rec.cniArgs, cniPath: rec.cniPath };
    for (const plugin of conflist.plugins) {
      const stdin = pluginStdin(conflist, plugin, { portMappings: rec.portMappings }, prev);
      prev = await execPlugin(found.paths[plugin.type], plugin.type, call, stdin, what, o.events);
    }
    rec.result = prev;
    await writeCache(o.runRoot, rec);
    const status = podStatusFromResult(prev, rec.ifName);
    trace(o.events, 'cni', 'attached', `${req.namespace}/${req.name} ip=${status.ip} network=${conflist.name}`);
    return status;
  } catch (err) {
    try {
      await teardownPodNetwork(o, req.id);
    } catch (undoErr) {
      throw new PodrunError('ECNI', `${(err as Error).message}; and undoing it failed: ${(undoErr as Error).message}`, {
        cause: err,
        hint: `Run \`podrun gc\` to retry the cleanup (the attachment stays recorded in ${o.runRoot}/cni).`,
      });
    }
    throw err;
  }
}

/** CNI CHECK of the cached attachment with the request's port mappings; throws ECNI when a plugin finds a problem. */
export async function checkPodNetwork(o: NetworkOptions, req: PodNetworkRequest): Promise<void> {
  const rec = await readCache(o.runRoot, req.id);
  const what = action('check', req, rec?.conflist.name ?? networkOf(o));
  if (!rec || rec.result === undefined) throw new PodrunError('ESTATE', `Cannot ${what}: no completed CNI attachment is recorded for pod id "${req.id}"`);
  if (!(await isNetns(req.netnsPath))) throw new PodrunError('ECNI', `Cannot ${what}: "${req.netnsPath}" is not a network namespace`);
  if (!(await runCheck(o, rec, req))) {
    trace(o.events, 'cni', 'CHECK skipped', rec.conflist.disableCheck ? 'disableCheck' : `cniVersion ${rec.conflist.cniVersion}`);
  }
}

/** CHECK through every plugin; false when the list does not support CHECK (disableCheck, cniVersion < 0.4.0). */
async function runCheck(o: NetworkOptions, rec: CacheRecord, req: PodNetworkRequest): Promise<boolean> {
  const list = rec.conflist;
  if (list.disableCheck || /^0\.[0-3]\./.test(list.cniVersion)) return false;
  const what = action('check', req, list.name);
  const found = findPlugins(cachedBinDirs(o, rec), pluginTypes(list));
  const call: CniCall = { command: 'CHECK', containerId: req.id, netns: req.netnsPath, ifName: rec.ifName, args: rec.cniArgs, cniPath: rec.cniPath };
  for (const plugin of list.plugins) {
    await execPlugin(found.paths[plugin.type], plugin.type, call, pluginStdin(list, plugin, { portMappings: portMappings(req.ports) }, rec.result), what, o.events);
  }
  return true;
}

/**
 * Detach a pod: DEL through the cached network list in reverse order with the cached result as
 * prevResult. Idempotent (no cache → nothing to do); works when the network namespace is gone
 * (plugins get CNI_NETNS="" and podrun removes the bridge plugin's masquerade rule itself).
 * The cache is removed only when every plugin succeeded, so `gc` can retry.
 */
export async function teardownPodNetwork(o: NetworkOptions, id: string, netnsPath?: string): Promise<void> {
  const rec = await readCache(o.runRoot, id);
  if (!rec) return;
  const list = rec.conflist;
  const netns = netnsPath ?? rec.netnsPath;
  const alive = await isNetns(netns);
  const what = action('detach', rec, list.name);
  if (!alive) trace(o.events, 'cni', 'netns gone', `${netns}: DEL without CNI_NETNS`);
  const call: CniCall = { command: 'DEL', containerId: id, netns: alive ? netns : '', ifName: rec.ifName, args: rec.cniArgs, cniPath: rec.cniPath };
  const errors: Error[] = [];
  let paths: Record<string, string> = {};
  try {
    paths = findPlugins(cachedBinDirs(o, rec), pluginTypes(list)).paths;
  } catch (err) {
    throw new PodrunError('ECNI', `Cannot ${what}: ${(err as Error).message}`, { cause: err, hint: (err as PodrunError).hint });
  }
  for (const plugin of [...list.plugins].reverse()) {
    try {
      await execPlugin(paths[plugin.type], plugin.type, call, pluginStdin(list, plugin, { portMappings: rec.portMappings }, rec.result), what, o.events);
    } catch (err) {
      if (!isPodrunError(err, 'ECNI')) throw err;
      errors.push(err);
    }
  }
  // the bridge plugin leaves its masquerade rule behind when the netns or eth0 is already gone
  for (const plugin of list.plugins) {
    if (plugin.type !== 'bridge' || !plugin.ipMasq) continue;
    const r = await removeMasq(list.name, id, ipFamilies(rec.result, list), o.events);
    if (r.error) errors.push(new PodrunError('ECNI', `Cannot ${what}: cannot remove the masquerade rule: ${r.error}`));
  }
  if (errors.length) {
    throw new PodrunError('ECNI', errors.length === 1 ? errors[0].message : `Cannot ${what}: ${errors.length} plugins failed: ${errors.map((e) => e.message).join('; ')}`, {
      cause: errors[0],
      hint: (errors[0] as PodrunError).hint ?? `The attachment stays recorded in "${cacheFile(o.runRoot, id)}"; \`podrun gc\` retries the cleanup.`,
    });
  }
  await removeCache(o.runRoot, id);
  trace(o.events, 'cni', 'detached', `${rec.namespace}/${rec.name} network=${list.name}`);
}

/** Where the plugins of a cached attachment are: where they were at ADD, then the configured places. */
function cachedBinDirs(o: NetworkOptions, rec: CacheRecord): string[] {
  return [...new Set([...rec.cniPath, ...(o.binDirs ?? DEFAULT_BIN_DIRS)])];
}

/** Which IP families an attachment used: from the cached result, else from the list's subnets. */
function ipFamilies(result: unknown, list: Conflist): { v4: boolean; v6: boolean } {
  const addrs = ((result as CniResult | undefined)?.ips ?? []).map((a) => a.address ?? '');
  const text = addrs.length ? addrs.join(' ') : JSON.stringify(list.plugins.map((p) => p.ipam ?? {}));
  return { v4: /\d+\.\d+\.\d+\.\d+/.test(text), v6: /[0-9a-f]*:[0-9a-f]*:/i.test(text) };
}

/** Tear down every cached attachment whose pod id is not in `keep` (for `podrun gc`). Returns the ids removed. */
export async function gcPodNetworks(o: NetworkOptions, keep: Set<string>): Promise<{ removed: string[]; failed: { id: string; error: Error }[] }> {
  const removed: string[] = [];
  const failed: { id: string; error: Error }[] = [];
  for (const id of await listCached(o.runRoot)) {
    if (keep.has(id)) continue;
    try {
      await teardownPodNetwork(o, id);
      removed.push(id);
    } catch (err) {
      failed.push({ id, error: err as Error });
    }
  }
  return { removed, failed };
}

/** `podrun doctor`: plugins present, conflist readable, iptables usable. */
export async function doctorCheck(o: NetworkOptions): Promise<{ ok: boolean; problems: { message: string; hint: string }[] }> {
  const problems: { message: string; hint: string }[] = [];
  const file = conflistPath(confDirOf(o), networkOf(o));
  let types = [...new Set(['bridge', 'host-local', 'portmap', 'firewall', 'loopback'])];
  let listSubnet: string | undefined;
  let listBridge: string | undefined;
  try {
    const list = parseConflist(await readFile(file, 'utf8'), file);
    types = [...pluginTypes(list), 'loopback'];
    listSubnet = conflistSubnet(list);
    const br = list.plugins.find((p) => p.type === 'bridge')?.bridge;
    listBridge = typeof br === 'string' ? br : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      problems.push({ message: (err as Error).message, hint: (err as PodrunError).hint ?? `Fix or delete "${file}" (podrun then writes its default network).` });
    }
  }
  try {
    findPlugins(o.binDirs ?? DEFAULT_BIN_DIRS, types);
  } catch (err) {
    problems.push({ message: (err as Error).message, hint: (err as PodrunError).hint ?? '' });
  }
  const subnet = listSubnet ?? o.subnet ?? DEFAULT_SUBNET;
  const routes = await new Promise<string>((resolve) => execFile('ip', ['-4', 'route', 'show', 'table', 'all'], (err, out) => resolve(err ? '' : String(out))));
  const clash = overlappingRoutes(subnet, routes, listBridge ?? o.bridge ?? DEFAULT_BRIDGE);
  if (clash.length) {
    problems.push({
      message: `The pod subnet "${subnet}" overlaps host route${clash.length > 1 ? 's' : ''} ${clash.map((r) => `"${r}"`).join(', ')}`,
      hint: `Pods could not reach those addresses. Choose another subnet: delete "${file}" (with no pod running) and set the subnet option, or edit its "ranges".`,
    });
  }
  const { iptables } = await import('./masq.js');
  const ipt = await iptables(['-t', 'nat', '-S', 'POSTROUTING']);
  if (ipt.code !== 0) {
    problems.push({
      message: `Cannot list the nat table with iptables: ${ipt.stderr.trim() || `exit code ${ipt.code}`}`,
      hint: 'Install iptables (`apt-get install iptables`); the bridge and portmap plugins call it for masquerade and hostPort.',
    });
  }
  return { ok: problems.length === 0, problems };
}
