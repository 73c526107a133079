/**
 * /etc/resolv.conf for a pod, by kubelet's rules (pkg/kubelet/network/dns), on a node without a
 * cluster DNS service unless `clusterDNS` is given:
 *
 * - "Default": the host's nameservers, search list and options;
 * - "None": only the pod's dnsConfig;
 * - "ClusterFirst" (Kubernetes' default) and "ClusterFirstWithHostNet": with cluster DNS servers,
 *   those servers, the search list <ns>.svc.<domain> svc.<domain> <domain> + the host's, and
 *   ndots:5; without cluster DNS (the podrun default) kubelet falls back to "Default". ClusterFirst on
 *   a hostNetwork pod is always "Default".
 * - then dnsConfig is merged in: nameservers and searches appended without duplicates, options
 *   replaced by name; at most 3 nameservers and 32 search domains (2048 characters) are kept.
 *
 * One podrun addition: a pod with its own network namespace cannot reach the host's loopback
 * resolvers (127.0.0.53 of systemd-resolved, a local dnsmasq), so loopback nameservers taken from the
 * host file are dropped there, with a warning (kubelet leaves that to --resolv-conf).
 */
import { PodrunError } from '../../util/errors.js';

export interface DnsConfig {
  nameservers?: string[];
  searches?: string[];
  options?: { name: string; value?: string }[];
}

export interface ResolvConfOptions {
  /** Cluster domain for ClusterFirst search paths (default "cluster.local"). */
  clusterDomain?: string;
  /** The pod's namespace (default "default"). */
  namespace?: string;
  /** Cluster DNS servers; none by default, so ClusterFirst falls back to Default. */
  clusterDNS?: string[];
  /** The pod uses the host's network namespace (loopback nameservers then stay usable). */
  hostNetwork?: boolean;
}

export const MAX_NAMESERVERS = 3;
export const MAX_SEARCHES = 32;
export const MAX_SEARCH_CHARS = 2048;

export interface ParsedResolvConf {
  nameservers: string[];
  searches: string[];
  options: string[];
}

/** Parse a resolv.conf the way glibc reads it: the last search/domain line wins, options accumulate. */
export function parseResolvConf(text: string): ParsedResolvConf {
  const out: ParsedResolvConf = { nameservers: [], searches: [], options: [] };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    if (!line) continue;
    const [key, ...fields] = line.split(/\s+/);
    if (key === 'nameserver' && fields[0]) out.nameservers.push(fields[0]);
    else if (key === 'search') out.searches = fields;
    else if (key === 'domain' && fields[0]) out.searches = [fields[0]];
    else if (key === 'options') out.options.push(...fields);
  }
  return out;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

function optionName(o: string): string {
  const i = o.indexOf(':');
  return i < 0 ? o : o.slice(0, i);
}

/** kubelet's mergeDNSOptions: later options replace earlier ones of the same name. */
function mergeOptions(base: string[], extra: { name: string; value?: string }[]): string[] {
  const byName = new Map<string, string>();
  for (const o of base) byName.set(optionName(o), o);
  for (const o of extra) byName.set(o.name, o.value !== undefined && o.value !== '' ? `${o.name}:${o.value}` : o.name);
  return [...byName.values()];
}

function isLoopback(ns: string): boolean {
  return /^127\./.test(ns) || ns === '::1' || ns === '0:0:0:0:0:0:0:1';
}

/** Which of kubelet's three modes a policy resolves to. */
export function dnsMode(dnsPolicy: string, opts: ResolvConfOptions = {}): 'host' | 'cluster' | 'none' {
  const hasCluster = (opts.clusterDNS?.length ?? 0) > 0;
  switch (dnsPolicy || 'ClusterFirst') {
    case 'None':
      return 'none';
    case 'Default':
      return 'host';
    case 'ClusterFirstWithHostNet':
      return hasCluster ? 'cluster' : 'host';
    case 'ClusterFirst':
      return hasCluster && !opts.hostNetwork ? 'cluster' : 'host';
    default:
      throw new PodrunError('EINVAL_SPEC', `Cannot build resolv.conf: dnsPolicy ${JSON.stringify(dnsPolicy)} is not one of "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"`);
  }
}

/** The resolv.conf content plus warnings (dropped loopback servers, trimmed lists). */
export function buildResolvConf(dnsPolicy: string, dnsConfig: DnsConfig | undefined, hostResolvConf: string, opts: ResolvConfOptions = {}): { text: string; warnings: string[] } {
  const warnings: string[] = [];
  const mode = dnsMode(dnsPolicy, opts);
  const host = parseResolvConf(hostResolvConf);
  let nameservers: string[] = [];
  let searches: string[] = [];
  let options: string[] = [];
  if (mode === 'host') {
    nameservers = host.nameservers;
    if (!opts.hostNetwork) {
      const dropped = nameservers.filter(isLoopback);
      if (dropped.length) {
        warnings.push(`Dropped the host's loopback nameserver${dropped.length > 1 ? 's' : ''} ${dropped.map((d) => `"${d}"`).join(', ')}: not reachable from the pod's network namespace`);
        nameservers = nameservers.filter((n) => !isLoopback(n));
      }
    }
    searches = host.searches;
    options = host.options;
  } else if (mode === 'cluster') {
    const domain = opts.clusterDomain ?? 'cluster.local';
    const ns = opts.namespace ?? 'default';
    nameservers = [...(opts.clusterDNS ?? [])];
    searches = [`${ns}.svc.${domain}`, `svc.${domain}`, domain, ...host.searches];
    options = ['ndots:5'];
  } else if (!dnsConfig) {
    throw new PodrunError('EINVAL_SPEC', 'Cannot build resolv.conf: dnsPolicy "None" needs spec.dnsConfig');
  }
  if (dnsConfig) {
    nameservers = unique([...nameservers, ...(dnsConfig.nameservers ?? [])]);
    searches = unique([...searches, ...(dnsConfig.searches ?? [])]);
    options = mergeOptions(options, dnsConfig.options ?? []);
  } else {
    nameservers = unique(nameservers);
    searches = unique(searches);
  }
  if (nameservers.length > MAX_NAMESERVERS) {
    warnings.push(`Kept the first ${MAX_NAMESERVERS} of ${nameservers.length} nameservers: ${nameservers.slice(MAX_NAMESERVERS).map((n) => `"${n}"`).join(', ')} omitted`);
    nameservers = nameservers.slice(0, MAX_NAMESERVERS);
  }
  const kept: string[] = [];
  let chars = 0;
  for (const s of searches) {
    if (kept.length >= MAX_SEARCHES || chars + s.length + (kept.length ? 1 : 0) > MAX_SEARCH_CHARS) break;
    chars += s.length + (kept.length ? 1 : 0);
    kept.push(s);
  }
  if (kept.length < searches.length) warnings.push(`Kept ${kept.length} of ${searches.length} search domains (limit ${MAX_SEARCHES} domains, ${MAX_SEARCH_CHARS} characters)`);
  const lines: string[] = [];
  if (kept.length) lines.push(`search ${kept.join(' ')}`);
  for (const n of nameservers) lines.push(`nameserver ${n}`);
  if (options.length) lines.push(`options ${options.join(' ')}`);
  return { text: lines.length ? lines.join('\n') + '\n' : '', warnings };
}

/** The pod's /etc/resolv.conf text (see buildResolvConf for the warnings). */
export function resolvConf(dnsPolicy: string, dnsConfig: DnsConfig | undefined, hostResolvConf: string, opts: ResolvConfOptions = {}): string {
  return buildResolvConf(dnsPolicy, dnsConfig, hostResolvConf, opts).text;
}

/**
 * The host's resolver file for pods, as kubelet's --resolv-conf is usually set: /etc/resolv.conf,
 * unless it only names systemd-resolved's stub (127.0.0.53), in which case the upstream servers in
 * /run/systemd/resolve/resolv.conf are what a pod in its own network namespace can use.
 */
export async function readHostResolvConf(candidates: { etc?: string; resolved?: string } = {}): Promise<{ path: string; text: string }> {
  const { readFile } = await import('node:fs/promises');
  const etc = candidates.etc ?? '/etc/resolv.conf';
  const resolved = candidates.resolved ?? '/run/systemd/resolve/resolv.conf';
  const text = await readFile(etc, 'utf8').catch(() => '');
  const ns = parseResolvConf(text).nameservers;
  if (ns.length > 0 && ns.every(isLoopback)) {
    const upstream = await readFile(resolved, 'utf8').catch(() => undefined);
    if (upstream !== undefined && parseResolvConf(upstream).nameservers.some((n) => !isLoopback(n))) return { path: resolved, text: upstream };
  }
  return { path: etc, text };
}
