#!/usr/bin/env node
// Network setup + teardown of podrun's default network (bridge + host-local, portmap, firewall,
// and loopback) for one pod, through the real CNI plugins. Median of 10, after one warm-up that
// creates the bridge. Uses the compiled module (dist/): run `npm run build` first.
//
// Everything is named podrun-test-<rand> (network, bridge, network namespaces), on a
// 10.255.<x>.0/28 subnet in temp dirs, and removed afterwards; net.ipv4.ip_forward (which the bridge
// plugin sets to 1) is written back, and iptables chains/nft tables this run created are removed
// when they hold nothing else. Only addresses inside namespaces made here are involved.
//
// `run()` returns { setupMs, teardownMs, totalMs, firstSetupMs } (medians) so `bench/run.mjs` or the
// pod benchmark can print the share of `podrun up` spent on the network.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

const ROUNDS = 10;
const SHARED = [
  ['nat', 'CNI-HOSTPORT-DNAT'],
  ['nat', 'CNI-HOSTPORT-SETMARK'],
  ['nat', 'CNI-HOSTPORT-MASQ'],
  ['filter', 'CNI-FORWARD'],
  ['filter', 'CNI-ADMIN'],
];
const TABLES = ['ip nat', 'ip filter', 'ip6 nat'];
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const sh = (cmd, args) => execFileSync(cmd, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const ok = (cmd, args) => {
  try {
    sh(cmd, args);
    return true;
  } catch {
    return false;
  }
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const tables = () => new Set(ok('nft', ['--version']) ? sh('nft', ['list', 'tables']).split('\n').map((l) => l.replace(/^table /, '').trim()).filter(Boolean) : []);

function pickSubnet() {
  const seen = sh('ip', ['-4', 'route', 'show', 'table', 'all']) + sh('ip', ['-4', '-o', 'addr']);
  for (;;) {
    const x = randomInt(1, 255);
    if (!seen.includes(`10.255.${x}.`)) return `10.255.${x}.0/28`;
  }
}

export async function run() {
  if (process.getuid?.() !== 0) {
    console.log('network bench: skipped (needs root)');
    return undefined;
  }
  const dist = new URL('../dist/runtime/network/index.js', import.meta.url);
  if (!existsSync(dist)) throw new Error('dist/runtime/network/index.js is missing: run `npm run build` first');
  const net = await import(dist.href);
  try {
    net.findPlugins();
  } catch (err) {
    console.log(`network bench: skipped (${err.message})`);
    return undefined;
  }

  const rand = randomBytes(6).toString('hex').slice(0, 3);
  const NET = `podrun-test-${rand}`;
  const runRoot = mkdtempSync(path.join(os.tmpdir(), 'podrun-test-bench-run-'));
  const confDir = mkdtempSync(path.join(os.tmpdir(), 'podrun-test-bench-conf-'));
  const o = { runRoot, confDir, networkName: NET, bridge: NET, subnet: pickSubnet() };
  const ipForward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
  const chainsBefore = new Set(SHARED.filter(([t, c]) => ok('iptables', ['-w', '5', '-t', t, '-S', c])).map(([t, c]) => `${t}/${c}`));
  const tablesBefore = tables();
  const netns = [];
  const setup = [];
  const teardown = [];
  let first = 0;
  try {
    for (let i = 0; i <= ROUNDS; i++) {
      const name = `${NET}-${i}`;
      sh('ip', ['netns', 'add', name]);
      netns.push(name);
      const req = { id: `${NET}-${i}`, name: `bench-${i}`, namespace: 'bench', netnsPath: `/run/netns/${name}`, ports: [{ containerPort: 80, hostPort: 40000 + i, protocol: 'TCP' }] };
      const t0 = performance.now();
      await net.setupPodNetwork(o, req);
      const t1 = performance.now();
      await net.teardownPodNetwork(o, req.id);
      const t2 = performance.now();
      sh('ip', ['netns', 'del', name]);
      netns.pop();
      if (i === 0) first = t1 - t0; // creates the bridge and the shared chains
      else {
        setup.push(t1 - t0);
        teardown.push(t2 - t1);
      }
    }
  } finally {
    for (const n of netns) ok('ip', ['netns', 'del', n]);
    if (ok('ip', ['link', 'show', NET])) ok('ip', ['link', 'del', NET]);
    cleanupShared(chainsBefore, tablesBefore);
    if (ipForward) writeFileSync('/proc/sys/net/ipv4/ip_forward', ipForward);
    rmSync(runRoot, { recursive: true, force: true });
    rmSync(confDir, { recursive: true, force: true });
  }
  const res = { setupMs: median(setup), teardownMs: median(teardown), totalMs: median(setup.map((s, i) => s + teardown[i])), firstSetupMs: first };
  const load = os.loadavg()[0].toFixed(1);
  console.log(`network setup (loopback + bridge/host-local + portmap with 1 hostPort + firewall), median of ${ROUNDS}: ${res.setupMs.toFixed(0)} ms`);
  console.log(`network teardown (DEL in reverse + masquerade check), median of ${ROUNDS}:                       ${res.teardownMs.toFixed(0)} ms`);
  console.log(`setup + teardown, median: ${res.totalMs.toFixed(0)} ms; first setup (creates the bridge): ${res.firstSetupMs.toFixed(0)} ms; load average ${load}`);
  return res;
}

/** Shared chains and nft tables this run created, if nothing but the plugins' fixed rules is in them. */
function cleanupShared(chainsBefore, tablesBefore) {
  const fixed = (r) => !/ -[sd] |name: |-j CNI-(DN|[0-9a-f]{6})/.test(r);
  for (let pass = 0; pass < 3; pass++) {
    for (const [t, c] of SHARED) {
      if (chainsBefore.has(`${t}/${c}`) || !ok('iptables', ['-w', '5', '-t', t, '-S', c])) continue;
      const rules = sh('iptables', ['-w', '5', '-t', t, '-S', c]).split('\n').filter((l) => l.startsWith('-A '));
      if (!rules.every(fixed)) continue;
      const jumps = sh('iptables', ['-w', '5', '-t', t, '-S']).split('\n').filter((l) => l.startsWith('-A ') && l.endsWith(`-j ${c}`));
      if (!jumps.every(fixed)) continue;
      for (const j of jumps) ok('iptables', ['-w', '5', '-t', t, '-D', ...splitRule(j.slice(3))]);
      ok('iptables', ['-w', '5', '-t', t, '-F', c]);
      ok('iptables', ['-w', '5', '-t', t, '-X', c]);
    }
  }
  const now = tables();
  for (const t of TABLES) {
    if (tablesBefore.has(t) || !now.has(t)) continue;
    const body = sh('nft', ['list', 'table', ...t.split(' ')]);
    const hasRules = body.split('\n').some((l) => l.trim() && !/^(table |chain |type |\}|#)/.test(l.trim()));
    if (!hasRules) ok('nft', ['delete', 'table', ...t.split(' ')]);
  }
}

function splitRule(rule) {
  const out = [];
  const re = /"((?:\\.|[^"\\])*)"|(\S+)/g;
  for (let m; (m = re.exec(rule)); ) out.push(m[1] !== undefined ? m[1].replace(/\\"/g, '"') : m[2]);
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
