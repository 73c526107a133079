/**
 * One run of a probe or hook handler: exec through the driver, httpGet / tcpSocket / grpc from
 * podrun inside the pod's network namespace (dial.ts), sleep on the clock. Results follow kubelet's
 * prober: HTTP 200–399 succeed, redirects are followed to the same host (up to 10), a redirect to
 * another host counts as success ("Probe terminated redirects"); gRPC uses grpc.health.v1.Health/Check.
 */
import http from 'node:http';
import http2 from 'node:http2';
import tls from 'node:tls';
import type net from 'node:net';
import type { ExecAction, GrpcAction, HttpGetAction, LifecycleHandler, ProbeHandler, TcpSocketAction } from '../../spec/plan.js';
import type { Syscalls } from '../../linux/syscalls.js';
import type { EventSink } from '../../util/events.js';
import type { ContainerDriver } from './driver.js';
import { dialTcp, resolveHost } from './dial.js';
import type { Clock } from './clock.js';

export interface ProbeResult {
  ok: boolean;
  /** Why it failed (or a warning on success), in kubelet's words. */
  message?: string;
}

export interface ProbeContext {
  driver: ContainerDriver;
  containerId: string;
  syscalls?: Syscalls;
  events?: EventSink;
  clock?: Clock;
}

/** kubelet's User-Agent for probes. */
export const PROBE_USER_AGENT = 'kube-probe/1.31';
const MAX_BODY = 10 * 1024;

function target(ctx: ProbeContext, host: string | undefined): { netnsPath?: string; host: string } {
  const net = ctx.driver.network();
  return { netnsPath: net.netnsPath, host: host ?? net.podIP ?? '127.0.0.1' };
}

async function dial(ctx: ProbeContext, netnsPath: string | undefined, host: string, port: number): Promise<net.Socket> {
  const { address } = await resolveHost(host);
  return dialTcp({ netnsPath, host: address, port, syscalls: ctx.syscalls, events: ctx.events });
}

export async function runExec(a: ExecAction, ctx: ProbeContext, timeoutMs: number): Promise<ProbeResult> {
  try {
    const r = await ctx.driver.exec(ctx.containerId, a.command, timeoutMs);
    if (r.timedOut) return { ok: false, message: `command ${JSON.stringify(a.command.join(' '))} timed out` };
    if (r.exitCode === 0) return { ok: true };
    return { ok: false, message: r.output.trim() || `command exited with code ${r.exitCode}` };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

export async function runTcp(a: TcpSocketAction, ctx: ProbeContext, timeoutMs: number): Promise<ProbeResult> {
  const t = target(ctx, a.host);
  let sock: net.Socket | undefined;
  try {
    sock = await dial(ctx, t.netnsPath, t.host, a.port);
    const s = sock;
    return await new Promise<ProbeResult>((resolve) => {
      const timer = setTimeout(() => resolve({ ok: false, message: `dial tcp ${t.host}:${a.port}: i/o timeout` }), timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve({ ok: true });
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        resolve({ ok: false, message: `dial tcp ${t.host}:${a.port}: ${(err as NodeJS.ErrnoException).code ?? err.message}` });
      });
    });
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  } finally {
    sock?.destroy();
  }
}

function hostHeader(host: string, port: number, scheme: string): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return (scheme === 'HTTPS' && port === 443) || (scheme === 'HTTP' && port === 80) ? h : `${h}:${port}`;
}

interface HttpAnswer {
  status: number;
  location?: string;
  body: string;
}

function httpOnce(ctx: ProbeContext, netnsPath: string | undefined, url: URL, headers: [string, string][], timeoutMs: number): Promise<HttpAnswer> {
  return new Promise<HttpAnswer>((resolve, reject) => {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    let sock: net.Socket | undefined;
    const headerObj: Record<string, string | string[]> = {};
    for (const [k, v] of headers) {
      const cur = headerObj[k];
      headerObj[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
    }
    resolveHost(host).then(({ address }) => {
      let req: http.ClientRequest;
      try {
        req = http.request({
          method: 'GET',
          path: url.pathname + url.search,
          headers: headerObj,
          setHost: false,
          createConnection: () => {
            sock = dialTcp({ netnsPath, host: address, port, syscalls: ctx.syscalls, events: ctx.events });
            if (url.protocol === 'https:') return tls.connect({ socket: sock, rejectUnauthorized: false, servername: net_isIP(host) ? undefined : host });
            return sock;
          },
        });
      } catch (err) {
        reject(err); // e.g. setns into the pod's namespace failed
        return;
      }
      const timer = setTimeout(() => req.destroy(new Error('context deadline exceeded (Client.Timeout exceeded while awaiting headers)')), timeoutMs);
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (body.length < MAX_BODY) body += d;
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: body.slice(0, MAX_BODY) });
          req.destroy();
        });
        res.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
      req.on('error', (e) => {
        clearTimeout(timer);
        sock?.destroy();
        reject(e);
      });
      req.end();
    }, reject);
  });
}

function net_isIP(h: string): boolean {
  return /^[\d.]+$/.test(h) || h.includes(':');
}

export async function runHttpGet(a: HttpGetAction, ctx: ProbeContext, timeoutMs: number): Promise<ProbeResult> {
  const t = target(ctx, a.host);
  const scheme = a.scheme === 'HTTPS' ? 'https' : 'http';
  const hostPart = t.host.includes(':') ? `[${t.host}]` : t.host;
  const path = a.path.startsWith('/') ? a.path : `/${a.path}`;
  let url = new URL(`${scheme}://${hostPart}:${a.port}${path}`);
  const first = url.hostname;
  const userHas = (n: string) => a.httpHeaders.some((h) => h.name.toLowerCase() === n);
  const deadline = Date.now() + timeoutMs;
  for (let redirects = 0; ; redirects++) {
    const headers: [string, string][] = [];
    if (!userHas('host')) headers.push(['Host', hostHeader(url.hostname.replace(/^\[|\]$/g, ''), Number(url.port || (url.protocol === 'https:' ? 443 : 80)), url.protocol === 'https:' ? 'HTTPS' : 'HTTP')]);
    if (!userHas('user-agent')) headers.push(['User-Agent', PROBE_USER_AGENT]);
    if (!userHas('accept')) headers.push(['Accept', '*/*']);
    for (const h of a.httpHeaders) headers.push([h.name, h.value]);
    headers.push(['Connection', 'close']);
    let ans: HttpAnswer;
    try {
      ans = await httpOnce(ctx, t.netnsPath, url, headers, Math.max(1, deadline - Date.now()));
    } catch (err) {
      return { ok: false, message: `Get "${url.href}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
    if (ans.status >= 300 && ans.status < 400 && ans.location) {
      const next = new URL(ans.location, url);
      if (next.hostname !== first) return { ok: true, message: `Probe terminated redirects, Response body: ${ans.body}` };
      if (redirects + 1 >= 10) return { ok: false, message: `Get "${next.href}": stopped after 10 redirects` };
      url = next;
      continue;
    }
    if (ans.status >= 200 && ans.status < 400) return { ok: true };
    return { ok: false, message: `HTTP probe failed with statuscode: ${ans.status}` };
  }
}

/** Encodes grpc.health.v1.HealthCheckRequest{service} as one length-prefixed gRPC message. */
export function grpcHealthRequest(service: string): Buffer {
  const s = Buffer.from(service, 'utf8');
  const body = s.length ? Buffer.concat([Buffer.from([0x0a]), varint(s.length), s]) : Buffer.alloc(0);
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** Decodes HealthCheckResponse.status (field 1, varint) from a gRPC message body. */
export function grpcHealthStatus(frame: Buffer): number {
  if (frame.length < 5) return 0;
  const body = frame.subarray(5, 5 + frame.readUInt32BE(1));
  let i = 0;
  while (i < body.length) {
    const tag = body[i++];
    if (tag === 0x08) {
      let v = 0;
      let shift = 0;
      while (i < body.length) {
        const b = body[i++];
        v |= (b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) break;
      }
      return v;
    }
    return 0; // unknown field: treat as UNKNOWN
  }
  return 0; // proto3 default
}

export async function runGrpc(a: GrpcAction, ctx: ProbeContext, timeoutMs: number): Promise<ProbeResult> {
  const t = target(ctx, undefined);
  const hostPart = t.host.includes(':') ? `[${t.host}]` : t.host;
  let client: http2.ClientHttp2Session | undefined;
  try {
    const { address } = await resolveHost(t.host);
    return await new Promise<ProbeResult>((resolve) => {
      const timer = setTimeout(() => resolve({ ok: false, message: `timeout: health rpc did not complete within ${timeoutMs}ms` }), timeoutMs);
      const done = (r: ProbeResult) => {
        clearTimeout(timer);
        resolve(r);
      };
      try {
        client = http2.connect(`http://${hostPart}:${a.port}`, {
          createConnection: () => dialTcp({ netnsPath: t.netnsPath, host: address, port: a.port, syscalls: ctx.syscalls, events: ctx.events }),
        });
      } catch (err) {
        done({ ok: false, message: (err as Error).message });
        return;
      }
      client.on('error', (err) => done({ ok: false, message: `failed to connect service "${hostPart}:${a.port}" within ${timeoutMs / 1000}s: ${(err as NodeJS.ErrnoException).code ?? err.message}` }));
      const req = client.request({
        ':method': 'POST',
        ':path': '/grpc.health.v1.Health/Check',
        'content-type': 'application/grpc',
        te: 'trailers',
        'user-agent': PROBE_USER_AGENT,
      });
      const chunks: Buffer[] = [];
      let grpcStatus: string | undefined;
      let grpcMessage: string | undefined;
      req.on('response', (h) => {
        if (h['grpc-status'] !== undefined) {
          grpcStatus = String(h['grpc-status']);
          grpcMessage = h['grpc-message'] as string | undefined;
        }
      });
      req.on('trailers', (h) => {
        grpcStatus = String(h['grpc-status']);
        grpcMessage = h['grpc-message'] as string | undefined;
      });
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('error', (err) => done({ ok: false, message: `health rpc probe failed: ${err.message}` }));
      req.on('end', () => {
        if (grpcStatus !== '0') {
          done({ ok: false, message: `health rpc probe failed: rpc error: code = ${grpcStatus ?? 'unknown'} desc = ${grpcMessage ?? ''}` });
          return;
        }
        const st = grpcHealthStatus(Buffer.concat(chunks));
        if (st === 1) done({ ok: true });
        else done({ ok: false, message: `service unhealthy (responded with "${SERVING_STATUS[st] ?? st}")` });
      });
      req.end(grpcHealthRequest(a.service));
    });
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  } finally {
    client?.destroy();
  }
}

/** Runs a probe handler once with the probe's timeout. */
export function runProbeHandler(h: ProbeHandler, ctx: ProbeContext, timeoutMs: number): Promise<ProbeResult> {
  switch (h.kind) {
    case 'exec':
      return runExec(h, ctx, timeoutMs);
    case 'httpGet':
      return runHttpGet(h, ctx, timeoutMs);
    case 'tcpSocket':
      return runTcp(h, ctx, timeoutMs);
    case 'grpc':
      return runGrpc(h, ctx, timeoutMs);
  }
}

/**
 * Runs a lifecycle hook (postStart / preStop) once, bounded by timeoutMs (kubelet gives a hook the
 * grace period). `sleep` waits on the given clock.
 */
export async function runHook(h: LifecycleHandler, ctx: ProbeContext, timeoutMs: number): Promise<ProbeResult> {
  if (h.kind === 'sleep') {
    const clock = ctx.clock;
    const ms = Math.min(h.seconds * 1000, timeoutMs);
    await new Promise<void>((r) => (clock ? clock.setTimer(ms, r) : setTimeout(r, ms)));
    return { ok: true };
  }
  const bounded = <T>(p: Promise<T>, fallback: T): Promise<T> =>
    new Promise<T>((resolve) => {
      const cancel = ctx.clock ? ctx.clock.setTimer(timeoutMs, () => resolve(fallback)) : ((t) => () => clearTimeout(t))(setTimeout(() => resolve(fallback), timeoutMs));
      p.then((v) => {
        cancel();
        resolve(v);
      });
    });
  const timeout: ProbeResult = { ok: false, message: `hook did not finish within ${Math.round(timeoutMs / 1000)}s` };
  if (h.kind === 'exec') return bounded(runExec(h, ctx, timeoutMs), timeout);
  return bounded(runHttpGet(h, ctx, timeoutMs), timeout);
}
