/**
 * Pod networking through the real CNI plugins (containernetworking-plugins) on the real kernel.
 *
 * Everything this file creates is named podrun-test-<rand>: the CNI network, its bridge, the
 * network namespaces that stand in for pods; the conflist dir and run root are temp dirs.
 * The subnet is a /28 in 10.255.<x>.0/24, with <x> chosen so that no address or route of the host
 * overlaps it: its traffic never leaves our bridge, and the /28 (13 pod addresses) makes a leaked
 * IP lease visible as exhaustion within the 50-cycle leak test.
 * Only 127.0.0.1 and pod IPs inside namespaces made here are contacted.
 *
 * Host-wide state: the bridge plugin (isGateway) sets net.ipv4.ip_forward=1; the value found
 * before is written back afterwards. portmap's and firewall's shared chains (CNI-HOSTPORT-*,
 * CNI-FORWARD, CNI-ADMIN) are removed afterwards only if they did not exist before and are empty.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  setupPodNetwork,
  teardownPodNetwork,
  checkPodNetwork,
  findPlugins,
  doctorCheck,
  networkCacheFile,
  listNetworkAttachments,
  ipamDataDir,
  type NetworkOptions,
  type PodNetworkRequest,
} from '../../src/runtime/network/index.js';
import { isPodrunError, type PodrunError } from '../../src/util/errors.js';
import { createTestNetwork, havePlugins, sh, shOk, type TestNetwork } from '../helpers/cni-net.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const skipReason = !isRoot ? 'needs root' : !havePlugins ? 'needs containernetworking-plugins' : '';

let tn: TestNetwork;
let NET = '';
let subnet = '';
let runRoot = '';
let opts: NetworkOptions;
const netnsMade = new Set<string>();
/** pods set up and not yet torn down, with the options they were made with */
const podsUp = new Map<string, NetworkOptions>();
/** set when afterAll starts: the leak loop stops starting cycles */
let stopping = false;
let leakRun: Promise<unknown> | undefined;
const children: ChildProcess[] = [];
const tmpDirs: string[] = [];

async function addNetns(suffix: string): Promise<string> {
  const name = `${NET}-${suffix}`;
  await sh('ip', ['netns', 'add', name]);
  netnsMade.add(name);
  return `/run/netns/${name}`;
}
async function delNetns(p: string): Promise<void> {
  const name = path.basename(p);
  await shOk('ip', ['netns', 'del', name]);
  netnsMade.delete(name);
}

function req(id: string, netnsPath: string, ports: PodNetworkRequest['ports'] = []): PodNetworkRequest {
  return { id, name: id, namespace: 'podrun-test', netnsPath, ports };
}

async function up(id: string, netnsPath: string, ports: PodNetworkRequest['ports'] = [], o = opts) {
  podsUp.set(id, o);
  return setupPodNetwork(o, req(id, netnsPath, ports));
}
async function down(id: string, netnsPath?: string, o = opts) {
  await teardownPodNetwork(o, id, netnsPath);
  podsUp.delete(id);
}

async function freePort(): Promise<number> {
  for (;;) {
    const port = randomInt(30000, 60000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

/** busybox httpd serving `body` on :port inside the namespace; ended by pid in afterAll. */
async function httpd(netnsPath: string, port: number, body: string): Promise<ChildProcess> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'podrun-test-www-'));
  tmpDirs.push(dir);
  await writeFile(path.join(dir, 'index.html'), body);
  const child = spawn('nsenter', [`--net=${netnsPath}`, 'busybox', 'httpd', '-f', '-p', String(port), '-h', dir], { stdio: 'ignore' });
  children.push(child);
  // wait until it listens (checked from inside the namespace)
  for (let i = 0; i < 50; i++) {
    if (await shOk('nsenter', [`--net=${netnsPath}`, 'busybox', 'wget', '-q', '-O', '/dev/null', `http://127.0.0.1:${port}/`])) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`httpd in ${netnsPath} did not start`);
}

/** Send `msg` to 127.0.0.1:port over UDP until an answer comes (the server may still be starting). */
async function udpAsk(port: number, msg: string): Promise<string> {
  const dgram = await import('node:dgram');
  for (let i = 0; i < 30; i++) {
    const sock = dgram.createSocket('udp4');
    const answer = await new Promise<string | undefined>((resolve) => {
      const t = setTimeout(() => resolve(undefined), 300);
      sock.once('message', (m) => {
        clearTimeout(t);
        resolve(m.toString());
      });
      sock.send(msg, port, '127.0.0.1');
    });
    sock.close();
    if (answer !== undefined) return answer;
  }
  throw new Error(`no UDP answer on 127.0.0.1:${port}`);
}

async function wgetFrom(netnsPath: string | undefined, url: string): Promise<string> {
  // (busybox-static 1.35's wget crashes with -T; sh() bounds the time instead)
  const args = ['busybox', 'wget', '-q', '-O', '-', url];
  return netnsPath ? sh('nsenter', [`--net=${netnsPath}`, ...args]) : sh(args[0], args.slice(1));
}

function firewallMentions(ids: string[] = []): Promise<string[]> {
  return tn.firewallMentions(ids);
}
function bridgePorts(): Promise<string[]> {
  return tn.bridgePorts();
}

async function leases(): Promise<string[]> {
  const dir = path.join(ipamDataDir(runRoot), NET);
  if (!existsSync(dir)) return [];
  return (await readdir(dir)).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'));
}

/** A crash in the middle of setup: a child node process running the compiled module SIGKILLs itself before plugin `crashAt`. */
let compiledDir = '';
async function compileModule(): Promise<void> {
  compiledDir = await mkdtemp(path.join(os.tmpdir(), 'podrun-test-netjs-'));
  tmpDirs.push(compiledDir);
  const tsc = path.resolve('node_modules/.bin/tsc');
  await run(tsc, ['--outDir', compiledDir, '--rootDir', 'src', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--skipLibCheck', '--types', 'node', 'src/runtime/network/index.ts']).catch((e) => {
    if (!existsSync(path.join(compiledDir, 'runtime/network/index.js'))) throw e;
  });
  await writeFile(path.join(compiledDir, 'package.json'), '{"type":"module"}\n');
  await writeFile(
    path.join(compiledDir, 'crash.mjs'),
    `import { setupPodNetwork } from './runtime/network/index.js';
const [o, req, crashAt] = JSON.parse(process.argv[2]);
o.events = (ev) => { if (ev.type === 'trace' && ev.step === crashAt) process.kill(process.pid, 'SIGKILL'); };
await setupPodNetwork(o, req);
`,
  );
}
async function crashDuringSetup(id: string, netnsPath: string, crashAt: string, ports: PodNetworkRequest['ports'] = []): Promise<void> {
  podsUp.set(id, opts);
  const { events: _e, ...o } = opts;
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(compiledDir, 'crash.mjs'), JSON.stringify([o, req(id, netnsPath, ports), crashAt])], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b) => (err += b));
    child.on('close', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`crash child ended with ${code ?? signal}: ${err}`))));
  });
}

// --- lifecycle -------------------------------------------------------------------------------
describe.skipIf(!!skipReason)('pod networking through CNI (real plugins, real kernel)', () => {
  beforeAll(async () => {
    tn = await createTestNetwork();
    NET = tn.name;
    subnet = tn.subnet;
    runRoot = await mkdtemp(path.join(os.tmpdir(), 'podrun-test-run-'));
    tmpDirs.push(runRoot);
    opts = tn.options(runRoot);
    await compileModule();
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL'); // a no-op for a child already reaped (its pid is not ours any more)
    stopping = true;
    await leakRun?.catch(() => {});
    for (const [id, o] of [...podsUp]) await teardownPodNetwork(o, id).catch(() => {});
    for (const ns of [...netnsMade]) await shOk('ip', ['netns', 'del', ns]);
    await tn?.cleanup();
    for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
  });

  afterEach(async () => {
    // each test tears its pods down; anything left (a failed test) goes here
    for (const [id, o] of [...podsUp]) await down(id, undefined, o).catch(() => {});
  });

  it('gives two pods an IP each; pod → pod and host → pod by pod IP', async () => {
    const a = await addNetns('a');
    const b = await addNetns('b');
    const ipA = await up(`${NET}-a`, a);
    const ipB = await up(`${NET}-b`, b);
    const base = subnet.replace(/\d+\/28$/, '');
    expect(ipA.ip.startsWith(base)).toBe(true);
    expect(ipB.ip.startsWith(base)).toBe(true);
    expect(ipA.ip).not.toBe(ipB.ip);
    expect(ipA.gateway).toBe(`${base}1`);
    expect(ipA.interface).toBe('eth0');
    expect(ipA.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    // what the pod sees: eth0 with the address, lo up
    const inside = await sh('nsenter', [`--net=${a}`, 'ip', '-o', '-4', 'addr']);
    expect(inside).toContain(`eth0    inet ${ipA.ip}/28`);
    expect(inside).toMatch(/lo\s+inet 127\.0\.0\.1/);

    await httpd(a, 8080, `hello from ${NET}-a\n`);
    expect(await wgetFrom(b, `http://${ipA.ip}:8080/`)).toBe(`hello from ${NET}-a\n`);
    expect(await wgetFrom(undefined, `http://${ipA.ip}:8080/`)).toBe(`hello from ${NET}-a\n`);

    await checkPodNetwork(opts, req(`${NET}-a`, a));
    // the conflist podrun wrote on first use, with the options given
    const conf = JSON.parse(await readFile(path.join(tn.confDir, `${NET}.conflist`), 'utf8'));
    expect(conf.name).toBe(NET);
    expect(conf.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'portmap', 'firewall']);
    expect(conf.plugins[0].ipam.ranges[0][0].subnet).toBe(subnet);

    await down(`${NET}-a`);
    await down(`${NET}-b`);
    await down(`${NET}-b`); // idempotent
    expect(await bridgePorts()).toEqual([]);
    expect(await leases()).toEqual([]);
    expect(await shOk('nsenter', [`--net=${a}`, 'ip', 'link', 'show', 'eth0'])).toBe(false);
  });

  it('publishes hostPort on 127.0.0.1 (TCP any hostIP, TCP hostIP 127.0.0.1, UDP), and removes it on teardown', async () => {
    const a = await addNetns('hp');
    const p1 = await freePort();
    const p2 = await freePort();
    const p3 = await freePort();
    const id = `${NET}-hp`;
    await up(id, a, [
      { containerPort: 8080, hostPort: p1, protocol: 'TCP' },
      { containerPort: 8080, hostPort: p2, hostIP: '127.0.0.1', protocol: 'TCP' },
      { containerPort: 5353, hostPort: p3, protocol: 'UDP' },
      { containerPort: 9090, protocol: 'TCP' }, // no hostPort: not published
    ]);
    await httpd(a, 8080, 'via hostPort\n');
    expect(await wgetFrom(undefined, `http://127.0.0.1:${p1}/`)).toBe('via hostPort\n');
    expect(await wgetFrom(undefined, `http://127.0.0.1:${p2}/`)).toBe('via hostPort\n');
    // UDP: an echo server inside the pod, asked through 127.0.0.1:<hostPort>
    const echo = spawn('nsenter', [`--net=${a}`, process.execPath, '-e', `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('pong '+m,r.port,r.address));s.bind(5353)`], { stdio: 'ignore' });
    children.push(echo);
    expect(await udpAsk(p3, 'ping')).toBe('pong ping');
    // route_localnet is set on our bridge only (what lets 127.0.0.1 be DNATed out of it)
    expect((await readFile(`/proc/sys/net/ipv4/conf/${NET}/route_localnet`, 'utf8')).trim()).toBe('1');
    expect((await firewallMentions([id])).some((l) => l.includes(String(p1)) && l.includes(String(p2)))).toBe(true);
    await down(id);
    expect((await firewallMentions()).filter((l) => l.includes(String(p1)) || l.includes(String(p2)))).toEqual([]);
    expect(await wgetFrom(undefined, `http://127.0.0.1:${p1}/`).catch(() => 'refused')).toBe('refused');
  });

  it('CHECK finds a broken attachment', async () => {
    const a = await addNetns('chk');
    const id = `${NET}-chk`;
    await up(id, a);
    await checkPodNetwork(opts, req(id, a));
    await sh('nsenter', [`--net=${a}`, 'ip', 'link', 'del', 'eth0']);
    const err = await checkPodNetwork(opts, req(id, a)).catch((e) => e);
    expect(isPodrunError(err, 'ECNI')).toBe(true);
    expect(err.message).toMatch(/^Cannot check pod "podrun-test\/.*" on network ".*": plugin "bridge" \(CHECK\) failed: /);
    await down(id);
    expect(await leases()).toEqual([]);
  });

  it('setup again for the same pod id: reuses a live attachment, replaces one whose namespace was re-pinned', async () => {
    const id = `${NET}-re`;
    const ns = await addNetns('re');
    const first = await up(id, ns);
    expect((await up(id, ns)).ip).toBe(first.ip); // same namespace: the cached attachment
    // the pin path now holds a new, empty namespace (a pod re-created after a crash)
    await sh('ip', ['netns', 'del', path.basename(ns)]);
    await sh('ip', ['netns', 'add', path.basename(ns)]);
    const second = await up(id, ns);
    expect(await sh('nsenter', [`--net=${ns}`, 'ip', '-o', '-4', 'addr', 'show', 'eth0'])).toContain(`inet ${second.ip}/28`);
    expect(await leases()).toEqual([second.ip]);
    expect((await firewallMentions([id])).filter((l) => l.includes('POSTROUTING'))).toHaveLength(1);
    await down(id);
    expect(await leases()).toEqual([]);
    expect(await firewallMentions([id])).toEqual([]);
  });

  it('missing plugins: one clear ECNI error with the install hint, nothing left behind', async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), 'podrun-test-nobin-'));
    tmpDirs.push(empty);
    let err = (() => {
      try {
        findPlugins([empty]);
      } catch (e) {
        return e as PodrunError;
      }
    })();
    expect(err?.code).toBe('ECNI');
    expect(err?.message).toContain('"bridge", "host-local", "portmap", "firewall", "loopback" missing in');
    expect(err?.hint).toContain('apt-get install containernetworking-plugins');

    const a = await addNetns('nobin');
    err = await setupPodNetwork({ ...opts, binDirs: [empty, path.join(empty, 'nope')] }, req(`${NET}-nobin`, a)).catch((e) => e);
    expect(err?.code).toBe('ECNI');
    expect(err?.hint).toContain('apt-get install containernetworking-plugins');
    expect(await listNetworkAttachments(runRoot)).toEqual([]);

    const doc = await doctorCheck({ ...opts, binDirs: [empty] });
    expect(doc.ok).toBe(false);
    expect(doc.problems[0].hint).toContain('apt-get install containernetworking-plugins');
    expect((await doctorCheck(opts)).ok).toBe(true);
  });

  it("a plugin's JSON error becomes ECNI naming the plugin, and the partial attachment is undone", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'podrun-test-cni-bad-'));
    tmpDirs.push(dir);
    // a valid bridge + host-local, then portmap with a port mapping it rejects (hostPort 0 is filtered by us, so use a bad protocol via a raw conflist key)
    const badNet = `${NET}x`; // network name only; the bridge stays ours
    const list = {
      cniVersion: '1.0.0',
      name: badNet,
      plugins: [
        { type: 'bridge', bridge: NET, isGateway: true, ipMasq: true, ipam: { type: 'host-local', ranges: [[{ subnet }]], dataDir: ipamDataDir(runRoot) } },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true, conditionsV4: ['-s', 'not-an-address!'] },
      ],
    };
    await writeFile(path.join(dir, `${badNet}.conflist`), JSON.stringify(list));
    const a = await addNetns('bad');
    const o = { ...opts, confDir: dir, networkName: badNet };
    const err = await setupPodNetwork(o, req(`${NET}-bad`, a, [{ containerPort: 80, hostPort: await freePort(), protocol: 'TCP' }])).catch((e) => e);
    expect(isPodrunError(err, 'ECNI')).toBe(true);
    expect(err.message).toMatch(new RegExp(`^Cannot attach pod "podrun-test/${NET}-bad" to network "${badNet}": plugin "portmap" \\(ADD\\) failed: `));
    // undone: no cache, no lease, no veth, no masquerade rule
    expect(await listNetworkAttachments(runRoot)).toEqual([]);
    expect((await readdir(path.join(ipamDataDir(runRoot), badNet))).filter((f) => /^\d/.test(f))).toEqual([]);
    expect(await bridgePorts()).toEqual([]);
    expect(await firewallMentions([`${NET}-bad`])).toEqual([]);
  });

  it('leak test: 50 setup/teardown cycles with crashes leave no veth, lease, rule or cache, and the /28 is not exhausted', async () => {
    const t0 = Date.now();
    const ids: string[] = [];
    // 5 lanes of 10 cycles run side by side: faster, and concurrent ADD/DEL on one network is what a busy host does
    const cycle = async (i: number) => {
      const id = `${NET}-l${i}`;
      ids.push(id);
      const ns = await addNetns(`l${i}`);
      const ports = i % 5 === 0 || i % 5 === 3 ? [{ containerPort: 80, hostPort: 40000 + i, protocol: 'TCP' as const }] : [];
      const kind = i % 5;
      if (kind === 3) {
        // podrun killed in the middle of ADD (after bridge: veth, IP lease and masquerade exist; or after portmap)
        await crashDuringSetup(id, ns, i % 2 === 0 ? 'ADD firewall' : 'ADD portmap', ports);
        expect(JSON.parse(await readFile(networkCacheFile(runRoot, id), 'utf8')).result).toBeUndefined();
      } else {
        const st = await up(id, ns, ports);
        expect(st.ip).toMatch(/^10\.255\./);
      }
      if (kind === 1 || kind === 3) {
        // the netns is gone before teardown (pod died, pin removed): DEL must still release everything
        await delNetns(ns);
        await down(id);
      } else if (kind === 2) {
        // in-memory state dropped: teardown knows only the pod id and reads the cache
        await down(id);
        await delNetns(ns);
      } else {
        await down(id, ns);
        await delNetns(ns);
      }
    };
    leakRun = Promise.all([0, 1, 2, 3, 4].map(async (lane) => {
      for (let k = 0; k < 10 && !stopping; k++) await cycle(lane * 10 + k);
    }));
    await leakRun;
    const elapsed = Date.now() - t0;
    expect(await bridgePorts()).toEqual([]);
    expect(await leases()).toEqual([]);
    expect(await listNetworkAttachments(runRoot)).toEqual([]);
    expect(await firewallMentions(ids)).toEqual([]);
    // 50 cycles through 13 addresses: had a cycle leaked its lease, the /28 would have run out by now
    console.log(`network leak test: 50 cycles in ${elapsed} ms (${Math.round(elapsed / 50)} ms per setup+teardown)`);
  }, 300_000);

  it('a full subnet gives ECNI with a hint, and the address comes back after teardown', async () => {
    // same bridge and subnet, but a network of its own whose range holds just 2 addresses
    const dir = await mkdtemp(path.join(os.tmpdir(), 'podrun-test-cni-small-'));
    tmpDirs.push(dir);
    const small = `${NET}s`;
    const base = subnet.replace(/\d+\/28$/, '');
    const list = {
      cniVersion: '1.0.0',
      name: small,
      plugins: [{ type: 'bridge', bridge: NET, isGateway: true, ipMasq: true, ipam: { type: 'host-local', ranges: [[{ subnet, rangeStart: `${base}13`, rangeEnd: `${base}14` }]], dataDir: ipamDataDir(runRoot) } }],
    };
    await writeFile(path.join(dir, `${small}.conflist`), JSON.stringify(list));
    const o = { ...opts, confDir: dir, networkName: small };
    const a = await up(`${NET}-s1`, await addNetns('s1'), [], o);
    const b = await up(`${NET}-s2`, await addNetns('s2'), [], o);
    expect([a.ip, b.ip].sort()).toEqual([`${base}13`, `${base}14`]);
    const ns3 = await addNetns('s3');
    const full = await up(`${NET}-s3`, ns3, [], o).catch((e) => e);
    podsUp.delete(`${NET}-s3`);
    expect(isPodrunError(full, 'ECNI')).toBe(true);
    expect(full.message).toMatch(/plugin "bridge" \(ADD\) failed: .*no IP addresses available/);
    expect(full.hint).toMatch(/subnet is full/);
    await down(`${NET}-s1`, undefined, o);
    expect((await up(`${NET}-s3`, ns3, [], o)).ip).toBe(a.ip);
    await down(`${NET}-s2`, undefined, o);
    await down(`${NET}-s3`, undefined, o);
    expect((await readdir(path.join(ipamDataDir(runRoot), small))).filter((f) => /^\d/.test(f))).toEqual([]);
  });
});
