/**
 * A throw-away CNI network for tests: network name = bridge name = podrun-test-<rand> (15
 * characters, the kernel's limit), a temp conflist dir, and a /28 inside 10.255.<x>.0/24 with <x>
 * chosen so that no address or route of the host overlaps it — the subnet's traffic never leaves
 * the test's bridge, and 13 pod addresses make a leaked IP lease visible as exhaustion.
 *
 * `cleanup()` removes the bridge and the temp dir, writes net.ipv4.ip_forward back (the bridge
 * plugin sets it to 1), and removes portmap's/firewall's shared chains and iptables-nft's tables only
 * when they did not exist before and hold nothing but the plugins' fixed rules.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes, randomInt } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { NetworkOptions } from '../../src/runtime/network/index.js';

const run = promisify(execFile);

export const havePlugins = ['/usr/lib/cni', '/opt/cni/bin', '/usr/libexec/cni'].some((d) => existsSync(path.join(d, 'bridge')));

export async function sh(cmd: string, args: string[], timeout = 10_000): Promise<string> {
  const { stdout } = await run(cmd, args, { timeout, env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  return stdout;
}
export async function shOk(cmd: string, args: string[]): Promise<boolean> {
  try {
    await sh(cmd, args);
    return true;
  } catch {
    return false;
  }
}

const SHARED_CHAINS: [string, string][] = [
  ['nat', 'CNI-HOSTPORT-DNAT'],
  ['nat', 'CNI-HOSTPORT-SETMARK'],
  ['nat', 'CNI-HOSTPORT-MASQ'],
  ['filter', 'CNI-FORWARD'],
  ['filter', 'CNI-ADMIN'],
];
const NFT_TABLES = ['ip nat', 'ip filter', 'ip6 nat', 'ip6 filter'];

export interface TestNetwork {
  /** network name = bridge name */
  name: string;
  subnet: string;
  confDir: string;
  /** Options for the network module; runRoot is the caller's. */
  options(runRoot: string): NetworkOptions;
  /** Every iptables/nft line that mentions the network (or one of `ids`). */
  firewallMentions(ids?: string[]): Promise<string[]>;
  /** Interfaces enslaved to the bridge. */
  bridgePorts(): Promise<string[]>;
  cleanup(): Promise<void>;
}

async function chainExists(table: string, chain: string): Promise<boolean> {
  return shOk('iptables', ['-w', '5', '-t', table, '-S', chain]);
}
async function nftTables(): Promise<Set<string>> {
  const out = await sh('nft', ['list', 'tables']).catch(() => '');
  return new Set(out.split('\n').map((l) => l.replace(/^table /, '').trim()).filter(Boolean));
}

/** 10.255.<x>.0/28 with no host address or route inside 10.255.<x>.0/24. */
async function pickSubnet(): Promise<string> {
  const seen = (await sh('ip', ['-4', 'route', 'show', 'table', 'all'])) + (await sh('ip', ['-4', '-o', 'addr']));
  if (/(^|\s)10\.0\.0\.0\/8|10\.255\.0\.0\/16/.test(seen)) throw new Error('the host routes 10.255.0.0/16 or 10/8 somewhere: no safe test subnet');
  for (let i = 0; i < 100; i++) {
    const prefix = `10.255.${randomInt(1, 255)}.`; // 1..254: 10.255.255.x stays clear (this host's resolver is 10.255.255.53)
    if (!seen.includes(prefix)) return `${prefix}0/28`;
  }
  throw new Error('no free 10.255.x.0/28 found');
}

export async function createTestNetwork(): Promise<TestNetwork> {
  let name = '';
  for (let i = 0; i < 20 && !name; i++) {
    const n = `podrun-test-${randomBytes(4).toString('hex').slice(0, 3)}`;
    if (!(await shOk('ip', ['link', 'show', n]))) name = n;
  }
  const subnet = await pickSubnet();
  const confDir = await mkdtemp(path.join(os.tmpdir(), 'podrun-test-cni-conf-'));
  const ipForwardBefore = (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim();
  const chainsBefore = new Set<string>();
  for (const [t, c] of SHARED_CHAINS) if (await chainExists(t, c)) chainsBefore.add(`${t}/${c}`);
  const tablesBefore = await nftTables();

  const net: TestNetwork = {
    name,
    subnet,
    confDir,
    options: (runRoot) => ({ runRoot, confDir, networkName: name, bridge: name, subnet }),
    async firewallMentions(ids = []) {
      const text = (await sh('iptables-save', [])) + (await sh('nft', ['list', 'ruleset']).catch(() => ''));
      return text.split('\n').filter((l) => l.includes(name) || ids.some((id) => l.includes(id)));
    },
    async bridgePorts() {
      if (!(await shOk('ip', ['link', 'show', name]))) return [];
      return (await sh('ip', ['-o', 'link', 'show', 'master', name])).split('\n').filter(Boolean);
    },
    async cleanup() {
      if (await shOk('ip', ['link', 'show', name])) await shOk('ip', ['link', 'del', name]);
      await removeSharedChains(chainsBefore);
      const now = await nftTables();
      for (const t of NFT_TABLES) {
        if (tablesBefore.has(t) || !now.has(t)) continue;
        const body = await sh('nft', ['list', 'table', ...t.split(' ')]).catch(() => '');
        const hasRules = body.split('\n').some((l) => l.trim() !== '' && !/^(table |chain |type |\}|#)/.test(l.trim()));
        if (!hasRules) await shOk('nft', ['delete', 'table', ...t.split(' ')]);
      }
      if (ipForwardBefore) await writeFile('/proc/sys/net/ipv4/ip_forward', ipForwardBefore);
      await rm(confDir, { recursive: true, force: true });
    },
  };
  return net;
}

/** portmap's and firewall's shared chains, when this run created them and only fixed rules remain. */
async function removeSharedChains(chainsBefore: Set<string>): Promise<void> {
  const fixed = (rule: string) => !/ -[sd] |name: |-j CNI-(DN|[0-9a-f]{6})/.test(rule);
  for (let pass = 0; pass < 3; pass++) {
    for (const [table, chain] of SHARED_CHAINS) {
      if (chainsBefore.has(`${table}/${chain}`) || !(await chainExists(table, chain))) continue;
      const rules = (await sh('iptables', ['-w', '5', '-t', table, '-S', chain])).split('\n').filter((l) => l.startsWith('-A '));
      if (!rules.every(fixed)) continue;
      const jumps = (await sh('iptables', ['-w', '5', '-t', table, '-S'])).split('\n').filter((l) => l.startsWith('-A ') && l.endsWith(`-j ${chain}`));
      if (!jumps.every(fixed)) continue;
      for (const j of jumps) await shOk('iptables', ['-w', '5', '-t', table, '-D', ...splitRule(j.slice(3))]);
      await shOk('iptables', ['-w', '5', '-t', table, '-F', chain]);
      await shOk('iptables', ['-w', '5', '-t', table, '-X', chain]);
    }
  }
}

/** Split an `iptables -S` rule into argv (handles the quoted comments). */
export function splitRule(rule: string): string[] {
  const out: string[] = [];
  const re = /"((?:\\.|[^"\\])*)"|(\S+)/g;
  for (let m; (m = re.exec(rule)); ) out.push(m[1] !== undefined ? m[1].replace(/\\"/g, '"') : m[2]);
  return out;
}
