/**
 * Network probes run FROM podrun INSIDE a pod's network namespace: the servers below listen on
 * 127.0.0.1 of a network namespace this test creates (busybox httpd, a node:http2 gRPC health
 * server; started with nsenter, which execs them, so their pids are ours to kill), where the host cannot reach them — so a passing probe proves the socket was made inside
 * the namespace and that the image needs no HTTP client of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { realSyscalls } from '../../src/linux/ffi.js';
import { dialTcp } from '../../src/runtime/controller/dial.js';
import { runGrpc, runHook, runHttpGet, runTcp, type ProbeContext } from '../../src/runtime/controller/probes.js';
import { PodController } from '../../src/runtime/controller/controller.js';
import { FakeDriver, container, pod } from '../unit/controller-fakes.js';

const root = process.getuid?.() === 0;
let nsPath = ''; // a network namespace pinned by a bind mount in our temp dir
let pinned = false;
const HTTP_PORT = 18000 + crypto.randomInt(1000);
const GRPC_PORT = HTTP_PORT + 1000;
let tmp = '';
const procs: ChildProcess[] = [];

const hostNetns = () => fs.readlinkSync('/proc/thread-self/ns/net');

function ctx(): ProbeContext {
  const d = new FakeDriver();
  d.podIP = undefined; // no pod IP: probes go to 127.0.0.1 inside the namespace
  d.netnsPath = nsPath;
  return { driver: d, containerId: 'x', syscalls: realSyscalls };
}

const GRPC_SERVER = `
import http2 from 'node:http2';
const status = { '': 1, 'down': 2 };
const s = http2.createServer();
s.on('stream', (stream) => {
  const chunks = [];
  stream.on('data', (c) => chunks.push(c));
  stream.on('end', () => {
    const body = Buffer.concat(chunks);
    const service = body.length > 7 ? body.subarray(7).toString() : '';
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    const msg = Buffer.from([0x08, status[service] ?? 3]);
    const head = Buffer.alloc(5); head.writeUInt32BE(msg.length, 1);
    stream.end(Buffer.concat([head, msg]));
  });
});
s.listen(Number(process.argv[2]), '127.0.0.1', () => console.log('listening'));
`;

async function waitFor(fn: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('timed out waiting for the test servers');
}

describe.skipIf(!root)('probes from podrun inside a network namespace (root)', () => {
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-'));
    fs.mkdirSync(path.join(tmp, 'www'));
    fs.writeFileSync(path.join(tmp, 'www', 'healthz'), 'ok\n');
    fs.writeFileSync(path.join(tmp, 'grpc.mjs'), GRPC_SERVER);
    nsPath = path.join(tmp, 'net');
    fs.writeFileSync(nsPath, '');
    execFileSync('unshare', [`--net=${nsPath}`, 'true']);
    pinned = true;
    execFileSync('nsenter', [`--net=${nsPath}`, 'ip', 'link', 'set', 'lo', 'up']);
    procs.push(spawn('nsenter', [`--net=${nsPath}`, 'busybox', 'httpd', '-f', '-p', `127.0.0.1:${HTTP_PORT}`, '-h', path.join(tmp, 'www')], { stdio: 'ignore' }));
    procs.push(spawn('nsenter', [`--net=${nsPath}`, process.execPath, path.join(tmp, 'grpc.mjs'), String(GRPC_PORT)], { stdio: 'ignore' }));
    await waitFor(async () => (await runTcp({ kind: 'tcpSocket', port: HTTP_PORT }, ctx(), 500)).ok);
    await waitFor(async () => (await runTcp({ kind: 'tcpSocket', port: GRPC_PORT }, ctx(), 500)).ok);
  });

  afterAll(async () => {
    for (const p of procs) {
      if (p.pid && p.exitCode === null) {
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGKILL');
        await exited;
      }
    }
    if (pinned) execFileSync('umount', [nsPath]);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('the servers are not reachable from the host namespace', async () => {
    const d = new FakeDriver();
    d.podIP = '127.0.0.1';
    const r = await runTcp({ kind: 'tcpSocket', port: HTTP_PORT }, { driver: d, containerId: 'x' }, 500);
    expect(r.ok).toBe(false);
  });

  it('httpGet succeeds inside the namespace and fails on a missing path', async () => {
    const get = (p: string) => ({ kind: 'httpGet' as const, scheme: 'HTTP' as const, path: p, port: HTTP_PORT, httpHeaders: [] });
    const before = hostNetns();
    expect(await runHttpGet(get('/healthz'), ctx(), 2000)).toEqual({ ok: true });
    expect(await runHttpGet(get('/missing'), ctx(), 2000)).toEqual({ ok: false, message: 'HTTP probe failed with statuscode: 404' });
    expect(hostNetns()).toBe(before);
  });

  it('tcpSocket succeeds on the open port and fails on a closed one', async () => {
    expect(await runTcp({ kind: 'tcpSocket', port: HTTP_PORT }, ctx(), 1000)).toEqual({ ok: true });
    expect((await runTcp({ kind: 'tcpSocket', port: HTTP_PORT + 2000 }, ctx(), 1000)).ok).toBe(false);
  });

  it('grpc health checks succeed for SERVING and fail for NOT_SERVING', async () => {
    expect(await runGrpc({ kind: 'grpc', port: GRPC_PORT, service: '' }, ctx(), 2000)).toEqual({ ok: true });
    expect(await runGrpc({ kind: 'grpc', port: GRPC_PORT, service: 'down' }, ctx(), 2000)).toEqual({ ok: false, message: 'service unhealthy (responded with "NOT_SERVING")' });
  });

  it('an httpGet hook runs inside the namespace too', async () => {
    expect(await runHook({ kind: 'httpGet', scheme: 'HTTP', path: '/healthz', port: HTTP_PORT, httpHeaders: [] }, ctx(), 2000)).toEqual({ ok: true });
  });

  it('the socket is made in the namespace and the main thread is back home right after connect()', async () => {
    const before = hostNetns();
    const sock = dialTcp({ netnsPath: nsPath, host: '127.0.0.1', port: HTTP_PORT, syscalls: realSyscalls });
    expect(hostNetns()).toBe(before); // synchronously restored
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', reject);
    });
    sock.destroy();
    // a host socket made right after is in the host namespace (nothing listens there)
    const host = net.connect({ host: '127.0.0.1', port: HTTP_PORT });
    const err = await new Promise<NodeJS.ErrnoException | undefined>((r) => {
      host.once('connect', () => r(undefined));
      host.once('error', (e) => r(e));
    });
    host.destroy();
    expect(err?.code).toBe('ECONNREFUSED');
  });

  it('setns into something that is not a netns fails cleanly and leaves the thread where it was', () => {
    const before = hostNetns();
    const notNs = path.join(tmp, 'www', 'healthz');
    expect(() => dialTcp({ netnsPath: notNs, host: '127.0.0.1', port: HTTP_PORT, syscalls: realSyscalls })).toThrow(/setns/);
    expect(hostNetns()).toBe(before);
  });

  it('a controller with an httpGet readiness probe gets Ready from a server without a client in its image', async () => {
    const d = new FakeDriver({});
    d.podIP = undefined;
    d.netnsPath = nsPath;
    const plan = pod({
      containers: [container('web', { readinessProbe: { handler: { kind: 'httpGet', scheme: 'HTTP', path: '/healthz', port: HTTP_PORT, httpHeaders: [] }, initialDelaySeconds: 0, periodSeconds: 1, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 } })],
    });
    const c = new PodController(plan, d, { syscalls: realSyscalls });
    c.start();
    await waitFor(async () => c.status().conditions.some((x) => x.type === 'Ready' && x.status === 'True'), 5000);
    await c.stop('test over', 0);
  });
});
