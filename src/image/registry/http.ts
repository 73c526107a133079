/**
 * HTTP transport for registries over undici: one dispatcher per TLS setting, timeouts on connect,
 * headers and idle body, bounded retries with backoff on 5xx/429 and connection resets, and redirects
 * followed by hand, one hop at a time, dropping Authorization whenever a hop leaves the origin it
 * was meant for.
 */
import { readFileSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { Dispatcher } from 'undici';
// Only the agent and the request API: undici's index also loads fetch, WebSocket, the cache, mocks
// and HTTP/2 (0.19 CPU s and 8 MB at every start). Types: undici-parts.d.ts.
import Agent from 'undici/lib/dispatcher/agent.js';
import undiciApi from 'undici/lib/api/index.js';
import { PodrunError } from '../../util/errors.js';
import { trace, type EventSink } from '../../util/events.js';
import { hostSettings, type RegistriesConfig } from './config.js';

export interface Timeouts {
  /** TCP + TLS connect. */
  connectMs: number;
  /** From request sent to response headers. */
  headersMs: number;
  /** Longest silence while reading a body. */
  bodyIdleMs: number;
}

export interface RetryPolicy {
  /** Total tries of one request (1 = no retry). */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 10_000, headersMs: 30_000, bodyIdleMs: 30_000 };
export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 250, maxDelayMs: 4_000 };
const MAX_REDIRECTS = 5;

export type RequestBody = Buffer | { path: string; size: number };

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: URL;
  headers?: Record<string, string>;
  /** Sent only to `url`'s origin, never to a redirect target elsewhere. */
  authorization?: string;
  body?: RequestBody;
  signal?: AbortSignal;
  /** Follow redirects (GET/HEAD). Default true. */
  followRedirects?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  /** The URL that answered (after redirects). */
  url: URL;
  /** True when the answer came from the origin the request was addressed to. */
  sameOrigin: boolean;
}

const NETWORK_RETRYABLE = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_UNTRUSTED',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'EPROTO',
]);

/** The most specific error code in an error's cause chain (undici wraps socket errors). */
export function errCode(err: unknown): string | undefined {
  const codes: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 5 && e !== null && typeof e === 'object'; i++) {
    const c = (e as { code?: unknown }).code;
    if (typeof c === 'string') codes.push(c);
    e = (e as { cause?: unknown }).cause;
  }
  return codes.find((c) => c !== 'UND_ERR_SOCKET') ?? codes[0];
}

export function isRetryableNetworkError(err: unknown): boolean {
  const c = errCode(err);
  return c !== undefined && NETWORK_RETRYABLE.has(c);
}

export function isTlsError(err: unknown): boolean {
  const c = errCode(err);
  return c !== undefined && (TLS_CODES.has(c) || c.startsWith('ERR_SSL_') || c.startsWith('ERR_TLS_'));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Turn a low-level failure into a PodrunError naming the URL and the cause. */
export function networkError(action: string, url: URL, err: unknown): PodrunError {
  if (err instanceof PodrunError) return err;
  const code = errCode(err) ?? 'unknown';
  const msg = (err as Error)?.message ?? String(err);
  if (isTlsError(err)) {
    return new PodrunError('ENETWORK', `Cannot ${action} "${url.origin}": TLS handshake failed (${code}: ${msg})`, {
      cause: err,
      hint: `Add "ca: /path/to/ca.pem" for "${url.host}" in registries.yaml, or "insecure: true" to skip verification.`,
    });
  }
  if (code.includes('TIMEOUT')) {
    return new PodrunError('ETIMEOUT', `Cannot ${action} "${url.href}": timed out (${code})`, { cause: err });
  }
  return new PodrunError('ENETWORK', `Cannot ${action} "${url.href}": ${code === 'unknown' ? msg : `${code} (${msg})`}`, { cause: err });
}

export class Transport {
  readonly config: RegistriesConfig;
  readonly events?: EventSink;
  readonly timeouts: Timeouts;
  readonly retry: RetryPolicy;
  private agents = new Map<string, Agent>();

  constructor(opts: { config: RegistriesConfig; events?: EventSink; timeouts?: Partial<Timeouts>; retry?: Partial<RetryPolicy> }) {
    this.config = opts.config;
    this.events = opts.events;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
  }

  /** Whether plain http / unverified TLS is allowed for this host:port. */
  insecure(host: string): boolean {
    return hostSettings(this.config, host).insecure;
  }

  private dispatcher(url: URL): Agent {
    const s = hostSettings(this.config, url.host);
    const tls = url.protocol === 'https:';
    const key = !tls ? 'plain' : s.insecure ? 'insecure' : `ca:${s.ca ?? ''}`;
    let agent = this.agents.get(key);
    if (!agent) {
      let ca: string[] | undefined;
      const extra = tls && !s.insecure ? extraCaCerts() : undefined;
      if (tls && s.ca && !s.insecure) {
        try {
          ca = [...rootCertificates, ...(extra ?? []), readFileSync(s.ca, 'utf8')];
        } catch (err) {
          throw new PodrunError('ECONFIG', `Cannot read CA file "${s.ca}" for registry "${url.host}": ${(err as Error).message}`, { cause: err });
        }
      } else if (extra) ca = [...rootCertificates, ...extra];
      agent = new Agent({
        connect: { timeout: this.timeouts.connectMs, ...(tls ? { rejectUnauthorized: !s.insecure, ...(ca ? { ca } : {}) } : {}) },
        headersTimeout: this.timeouts.headersMs,
        bodyTimeout: this.timeouts.bodyIdleMs,
        keepAliveTimeout: 4_000,
      });
      this.agents.set(key, agent);
    }
    return agent;
  }

  async close(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((a) => a.close().catch(() => undefined)));
  }

  /** One request, redirects followed by hand; no retries. The caller owns (and must consume) the body. */
  async once(req: HttpRequest): Promise<HttpResponse> {
    let url = req.url;
    let method = req.method;
    let body = req.body;
    const origin = req.url.origin;
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === origin;
      const headers: Record<string, string> = { 'user-agent': 'podrun/0.1', ...req.headers };
      if (req.authorization && sameOrigin) headers.authorization = req.authorization;
      if (body) headers['content-length'] = String(Buffer.isBuffer(body) ? body.length : body.size);
      const res = await undiciApi.request.call(this.dispatcher(url), {
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method,
        headers,
        body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : createReadStream(body.path),
        signal: req.signal,
      });
      const notes = [hop > 0 ? `redirect hop ${hop}` : '', hop > 0 && !sameOrigin ? 'without credentials' : '', headers.range ? `range ${headers.range}` : ''];
      trace(this.events, 'http', `${method} ${url.href} -> ${res.statusCode}`, notes.filter(Boolean).join(', ') || undefined);
      const location = res.headers.location;
      if (req.followRedirects !== false && [301, 302, 303, 307, 308].includes(res.statusCode) && typeof location === 'string') {
        await res.body.dump().catch(() => undefined);
        if (hop >= MAX_REDIRECTS) {
          throw new PodrunError('EREGISTRY', `Cannot fetch "${req.url.href}": more than ${MAX_REDIRECTS} redirects`);
        }
        const next = new URL(location, url);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          throw new PodrunError('EREGISTRY', `Cannot follow redirect from "${url.href}" to "${next.href}": unsupported scheme`);
        }
        if (url.protocol === 'https:' && next.protocol === 'http:' && !this.insecure(next.host)) {
          throw new PodrunError('EREGISTRY', `Cannot follow redirect from "${url.href}" to "${next.href}": it downgrades https to http`, {
            hint: `Mark "${next.host}" insecure in registries.yaml if this is intended.`,
          });
        }
        if (res.statusCode === 303 || ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
        }
        url = next;
        continue;
      }
      return { status: res.statusCode, headers: res.headers, body: res.body, url, sameOrigin };
    }
  }

  /**
   * A request with bounded retries on connection resets, timeouts, 5xx and 429 (exponential backoff,
   * Retry-After honoured up to maxDelayMs). `action` words error messages ("fetch manifest").
   */
  async send(req: HttpRequest, action: string): Promise<HttpResponse> {
    const { attempts, baseDelayMs, maxDelayMs } = this.retry;
    for (let attempt = 1; ; attempt++) {
      let res: HttpResponse;
      try {
        res = await this.once(req);
      } catch (err) {
        if (err instanceof PodrunError || req.signal?.aborted || attempt >= attempts || !isRetryableNetworkError(err)) {
          throw networkError(action, req.url, err);
        }
        const delay = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
        trace(this.events, 'http', `retry ${action}`, `${errCode(err)}; attempt ${attempt + 1}/${attempts} in ${delay} ms`);
        await sleep(delay, req.signal);
        continue;
      }
      if ((res.status >= 500 || res.status === 429) && attempt < attempts) {
        await res.body.dump().catch(() => undefined);
        let delay = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
        const ra = Number(res.headers['retry-after']);
        if (Number.isFinite(ra) && ra > 0) delay = Math.min(maxDelayMs, ra * 1000);
        trace(this.events, 'http', `retry ${action}`, `HTTP ${res.status}; attempt ${attempt + 1}/${attempts} in ${delay} ms`);
        await sleep(delay, req.signal);
        continue;
      }
      return res;
    }
  }
}

/** Read a whole body up to `limit` bytes; larger bodies are refused. */
export async function readBody(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    await res.body.dump().catch(() => undefined);
    throw new PodrunError('EREGISTRY', `Cannot read ${what}: it is ${declared} bytes, more than the limit of ${limit}`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res.body) {
    n += (chunk as Buffer).length;
    if (n > limit) {
      res.body.destroy();
      throw new PodrunError('EREGISTRY', `Cannot read ${what}: it is more than the limit of ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * NODE_EXTRA_CA_CERTS, read when the first TLS connection is made. bin/podrun moves the variable
 * to PODRUN_EXTRA_CA_CERTS before Node starts: Node parses that bundle at every start-up (40 ms of
 * each CLI call on a machine that sets it), and most podrun calls make no TLS connection at all.
 * As Node does, a file that cannot be read is reported and otherwise ignored.
 */
export function extraCaCerts(): string[] | undefined {
  const file = process.env.PODRUN_EXTRA_CA_CERTS || process.env.NODE_EXTRA_CA_CERTS;
  if (!file || process.env.NODE_EXTRA_CA_CERTS === file) return undefined; // Node loaded it itself
  if (extraCa?.file !== file) {
    let certs: string[] = [];
    try {
      certs = [readFileSync(file, 'utf8')];
    } catch (err) {
      process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(err as Error).message}`);
    }
    extraCa = { file, certs };
  }
  return extraCa.certs.length ? extraCa.certs : undefined;
}
let extraCa: { file: string; certs: string[] } | undefined;
