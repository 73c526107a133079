import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { PodController } from '../../src/runtime/controller/controller.js';
import { grpcHealthRequest, grpcHealthStatus, runGrpc, runHook, runHttpGet, runTcp, type ProbeContext } from '../../src/runtime/controller/probes.js';
import { FakeDriver, collect, container, pod } from './controller-fakes.js';
import { makeTestCa } from '../helpers/registry.js';

const exec = (...command: string[]) => ({ kind: 'exec' as const, command });
const probe = (over = {}) => ({ handler: exec('check'), initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3, ...over });

describe('probe state machine (exec probes, fake clock)', () => {
  it('liveness: failureThreshold consecutive failures kill the container, which restarts', async () => {
    let healthy = true;
    const d = new FakeDriver({ app: () => ({ exec: () => ({ exitCode: healthy ? 0 : 1, output: 'unhealthy' }) }) });
    const plan = pod({ containers: [container('app', { livenessProbe: probe({ terminationGracePeriodSeconds: 2 }) })] });
    const { events, sink } = collect();
    const c = new PodController(plan, d, { clock: d.clock, events: sink });
    c.start();
    await d.clock.advance(25_000); // probes at 0, 10, 20 s succeed
    healthy = false;
    await d.clock.advance(20_000); // 30, 40 fail: not yet
    expect(d.log.some((l) => l.startsWith('signal'))).toBe(false);
    await d.clock.advance(10_000); // 50: third failure → SIGTERM
    expect(d.log.filter((l) => l.startsWith('signal'))).toEqual(['signal app SIGTERM @50000']);
    expect(events).toContainEqual(expect.objectContaining({ type: 'container', container: 'app', reason: 'Unhealthy', message: 'Container app failed liveness probe, will be restarted: unhealthy' }));
    expect(d.starts.map((s) => `${s.restartCount}@${s.at}`)).toEqual(['0@0', '1@50000']);
    healthy = true;
    await c.stop();
  });

  it('liveness failure under restartPolicy Never ends the container for good', async () => {
    const d = new FakeDriver({ app: () => ({ exec: () => ({ exitCode: 1, output: '' }) }) });
    const plan = pod({ restartPolicy: 'Never', containers: [container('app', { livenessProbe: probe({ periodSeconds: 1, failureThreshold: 1 }) })] });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    const done = c.done();
    await d.clock.advance(5000);
    expect((await done).phase).toBe('Failed');
    expect(d.starts.length).toBe(1);
  });

  it('readiness drives ready, ContainersReady and Ready (successThreshold / failureThreshold)', async () => {
    let ok = false;
    const d = new FakeDriver({ app: () => ({ exec: () => ({ exitCode: ok ? 0 : 1, output: '' }) }) });
    const plan = pod({ containers: [container('app', { readinessProbe: probe({ periodSeconds: 5, successThreshold: 2, failureThreshold: 2 }) })] });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    const ready = () => c.status().conditions.find((x) => x.type === 'Ready')!;
    await d.clock.advance(1000);
    expect(ready()).toMatchObject({ status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [app]' });
    ok = true;
    await d.clock.advance(5000); // 5 s: first success
    expect(c.status().containerStatuses[0].ready).toBe(false);
    await d.clock.advance(5000); // 10 s: second success
    expect(c.status().containerStatuses[0].ready).toBe(true);
    expect(ready()).toMatchObject({ status: 'True', lastTransitionTime: '2026-01-01T12:00:10Z' });
    ok = false;
    await d.clock.advance(5000);
    expect(ready().status).toBe('True');
    await d.clock.advance(5000);
    expect(ready().status).toBe('False');
    expect(c.status().containerStatuses[0]).toMatchObject({ ready: false, started: true, state: { running: {} } });
    expect(d.starts.length).toBe(1); // readiness never restarts
    await c.stop();
  });

  it('startup gates liveness and readiness, honours initialDelaySeconds, and kills after failureThreshold', async () => {
    const d = new FakeDriver({ app: () => ({ exec: (argv) => ({ exitCode: argv[0] === 'startup' ? 1 : 0, output: '' }) }) });
    const plan = pod({
      containers: [
        container('app', {
          startupProbe: probe({ handler: exec('startup'), initialDelaySeconds: 3, periodSeconds: 2, failureThreshold: 3 }),
          livenessProbe: probe({ handler: exec('live'), periodSeconds: 1 }),
          readinessProbe: probe({ handler: exec('ready'), periodSeconds: 1 }),
        }),
      ],
    });
    const c = new PodController(plan, d, { clock: d.clock });
    c.start();
    await d.clock.advance(7500);
    const execs = d.log.filter((l) => l.startsWith('exec')).map((l) => l.replace('exec app ', ''));
    // startup ticks at 0, 2 (before the delay), 4, 6, 8 → fails at 4, 6, 8; nothing else runs meanwhile
    expect(execs).toEqual(['startup @4000', 'startup @6000']);
    expect(c.status().containerStatuses[0]).toMatchObject({ started: false, ready: false });
    await d.clock.advance(1000);
    expect(d.log.filter((l) => l.startsWith('signal'))).toEqual(['signal app SIGTERM @8000']);
    await c.stop();
  });
});

// ------------------------------------------------------------------------------ network probes

let server: http.Server;
let port: number;
let h2: http2.Http2Server;
let h2port: number;
let grpcStatus = 1;
const seenHeaders: http.IncomingHttpHeaders[] = [];

function ctx(podIP = '127.0.0.1'): ProbeContext {
  const d = new FakeDriver();
  d.podIP = podIP;
  return { driver: d, containerId: 'x' };
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seenHeaders.push(req.headers);
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/ok') res.writeHead(200).end('fine');
    else if (u.pathname === '/fail') res.writeHead(500).end('bad');
    else if (u.pathname === '/loop') res.writeHead(302, { location: '/loop' }).end();
    else if (u.pathname === '/to-ok') res.writeHead(301, { location: '/ok' }).end();
    else if (u.pathname === '/to-fail') res.writeHead(302, { location: '/fail' }).end();
    else if (u.pathname === '/elsewhere') res.writeHead(302, { location: 'http://podrun-test.invalid/x' }).end('moved');
    else if (u.pathname === '/slow') setTimeout(() => res.writeHead(200).end(), 3000);
    else if (u.pathname === '/304') res.writeHead(304).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  h2 = http2.createServer();
  h2.on('stream', (stream, headers) => {
    if (headers[':path'] !== '/grpc.health.v1.Health/Check') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      const service = body.length > 7 ? body.subarray(7).toString() : '';
      const status = service === 'unknown.Service' ? 3 : grpcStatus;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      const msg = Buffer.from([0x08, status]);
      const frame = Buffer.alloc(5);
      frame.writeUInt32BE(msg.length, 1);
      stream.end(Buffer.concat([frame, msg]));
    });
  });
  await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
  h2port = (h2.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  await new Promise((r) => h2.close(r));
});

describe('httpGet probes (real server on 127.0.0.1)', () => {
  const get = (path: string, over = {}) => ({ kind: 'httpGet' as const, scheme: 'HTTP' as const, path, port, httpHeaders: [], ...over });

  it('succeeds on 2xx/3xx and fails on 4xx/5xx with kubelet\'s message', async () => {
    expect(await runHttpGet(get('/ok'), ctx(), 1000)).toEqual({ ok: true });
    expect(await runHttpGet(get('/304'), ctx(), 1000)).toEqual({ ok: true });
    expect(await runHttpGet(get('/fail'), ctx(), 1000)).toEqual({ ok: false, message: 'HTTP probe failed with statuscode: 500' });
    expect(await runHttpGet(get('/nothing'), ctx(), 1000)).toEqual({ ok: false, message: 'HTTP probe failed with statuscode: 404' });
  });

  it('connects to the pod IP by default, sends kube-probe headers, and lets httpHeaders override Host', async () => {
    seenHeaders.length = 0;
    await runHttpGet(get('/ok', { httpHeaders: [{ name: 'X-Probe', value: '1' }, { name: 'Host', value: 'svc.local' }] }), ctx(), 1000);
    expect(seenHeaders[0]).toMatchObject({ host: 'svc.local', 'user-agent': 'kube-probe/1.31', accept: '*/*', 'x-probe': '1' });
  });

  it('follows same-host redirects (up to 10), treats a redirect elsewhere as success', async () => {
    expect(await runHttpGet(get('/to-ok'), ctx(), 1000)).toEqual({ ok: true });
    expect((await runHttpGet(get('/to-fail'), ctx(), 1000)).ok).toBe(false);
    expect(await runHttpGet(get('/loop'), ctx(), 2000)).toMatchObject({ ok: false, message: expect.stringContaining('stopped after 10 redirects') });
    expect(await runHttpGet(get('/elsewhere'), ctx(), 1000)).toMatchObject({ ok: true, message: expect.stringContaining('Probe terminated redirects') });
  });

  it('fails after timeoutSeconds and when nothing listens', async () => {
    const t0 = Date.now();
    expect((await runHttpGet(get('/slow'), ctx(), 300)).ok).toBe(false);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(await runHttpGet(get('/ok', { port: 1 }), ctx(), 1000)).toMatchObject({ ok: false, message: expect.stringContaining('ECONNREFUSED') });
  });

  it('HTTPS probes do not verify the certificate (as kubelet)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-'));
    try {
      const ca = makeTestCa(dir);
      const srv = https.createServer({ cert: fs.readFileSync(ca.certFile), key: fs.readFileSync(ca.keyFile) }, (req, res) => res.writeHead(req.url === '/ok' ? 200 : 503).end());
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      const p = (srv.address() as AddressInfo).port;
      expect(await runHttpGet(get('/ok', { scheme: 'HTTPS', port: p }), ctx(), 2000)).toEqual({ ok: true });
      expect(await runHttpGet(get('/no', { scheme: 'HTTPS', port: p }), ctx(), 2000)).toEqual({ ok: false, message: 'HTTP probe failed with statuscode: 503' });
      await new Promise((r) => srv.close(r));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a failure to enter the pod network namespace is a probe failure, not a crash', async () => {
    const c = ctx();
    (c.driver as FakeDriver).netnsPath = '/nonexistent/podrun-test/net';
    expect((await runHttpGet(get('/ok'), c, 1000)).ok).toBe(false);
    expect((await runTcp({ kind: 'tcpSocket', port }, c, 1000)).ok).toBe(false);
    expect((await runGrpc({ kind: 'grpc', port: h2port, service: '' }, c, 1000)).ok).toBe(false);
  });

  it('httpGet as a hook (postStart / preStop) uses the same client', async () => {
    expect(await runHook(get('/ok'), ctx(), 1000)).toEqual({ ok: true });
    expect((await runHook(get('/fail'), ctx(), 1000)).ok).toBe(false);
  });
});

describe('tcpSocket probes', () => {
  it('succeed when the port accepts, fail when refused', async () => {
    expect(await runTcp({ kind: 'tcpSocket', port }, ctx(), 1000)).toEqual({ ok: true });
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const p = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    expect(await runTcp({ kind: 'tcpSocket', port: p }, ctx(), 1000)).toEqual({ ok: false, message: `dial tcp 127.0.0.1:${p}: ECONNREFUSED` });
  });
});

describe('grpc probes (grpc.health.v1 over node:http2)', () => {
  it('encodes the request and decodes the response', () => {
    expect([...grpcHealthRequest('')]).toEqual([0, 0, 0, 0, 0]);
    expect([...grpcHealthRequest('a')]).toEqual([0, 0, 0, 0, 3, 0x0a, 1, 0x61]);
    expect(grpcHealthStatus(Buffer.from([0, 0, 0, 0, 2, 0x08, 1]))).toBe(1);
    expect(grpcHealthStatus(Buffer.from([0, 0, 0, 0, 0]))).toBe(0);
  });

  it('SERVING succeeds, NOT_SERVING and unknown services fail, a dead port fails', async () => {
    grpcStatus = 1;
    expect(await runGrpc({ kind: 'grpc', port: h2port, service: '' }, ctx(), 1000)).toEqual({ ok: true });
    grpcStatus = 2;
    expect(await runGrpc({ kind: 'grpc', port: h2port, service: '' }, ctx(), 1000)).toEqual({ ok: false, message: 'service unhealthy (responded with "NOT_SERVING")' });
    grpcStatus = 1;
    expect(await runGrpc({ kind: 'grpc', port: h2port, service: 'unknown.Service' }, ctx(), 1000)).toMatchObject({ ok: false, message: expect.stringContaining('SERVICE_UNKNOWN') });
    expect((await runGrpc({ kind: 'grpc', port: 1, service: '' }, ctx(), 1000)).ok).toBe(false);
  });

  it('drives readiness in a controller with the real clock', async () => {
    grpcStatus = 1;
    const d = new FakeDriver({});
    d.podIP = '127.0.0.1';
    const plan = pod({ containers: [container('app', { readinessProbe: { handler: { kind: 'grpc', port: h2port, service: '' }, initialDelaySeconds: 0, periodSeconds: 1, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 1 } })] });
    const c = new PodController(plan, d); // real clock
    c.start();
    for (let i = 0; i < 50 && !c.status().containerStatuses[0]?.ready; i++) await new Promise((r) => setTimeout(r, 20));
    expect(c.status().containerStatuses[0].ready).toBe(true);
    await c.stop('test over', 0);
  });
});
