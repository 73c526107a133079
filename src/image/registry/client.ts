/**
 * A Distribution v2 repository as an ImageSource: `openRemote(ref, {config}).getManifest(tag)`.
 * Endpoints are the registry's mirrors (registries.yaml) in order, then the registry itself.
 * Also the push side (blobs: monolithic POST + PUT; manifests by tag or digest) for tests and seeding.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { PodrunError, isPodrunError } from '../../util/errors.js';
import { trace, type EventSink } from '../../util/events.js';
import { DOCKER_HUB, type ImageRef } from '../reference.js';
import type { BlobFetchOptions, ImageSource, ManifestResult } from '../source.js';
import type { Descriptor } from '../types.js';
import { Authenticator } from './auth.js';
import { hostSettings, type RegistriesConfig } from './config.js';
import { dockerConfigCredentials, lookupOncePerHost, type CredentialLookup } from './credentials.js';
import {
  Transport,
  errCode,
  header,
  isRetryableNetworkError,
  isTlsError,
  networkError,
  readBody,
  type HttpRequest,
  type HttpResponse,
  type RequestBody,
  type RetryPolicy,
  type Timeouts,
} from './http.js';

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

/** Manifests and indexes above this size are refused (containerd uses 4 MiB too). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Image configs above this size should be refused by whoever reads them whole. */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

const MANIFEST_ACCEPT = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerList, MEDIA_TYPES.dockerManifest].join(', ');
const FOREIGN_LAYER = /foreign|nondistributable/;
const BLOB_RESUMES = 5;

export interface RemoteOptions {
  config: RegistriesConfig;
  events?: EventSink;
  /**
   * Where credentials come from; default: the Docker config file ($DOCKER_CONFIG or ~/.docker).
   * Asked only when a registry answers 401, at most once per host for this remote.
   */
  credentials?: CredentialLookup;
  timeouts?: Partial<Timeouts>;
  retry?: Partial<RetryPolicy>;
  /** Skip the mirrors (pushing always does). */
  noMirrors?: boolean;
}

export interface PushBlob {
  digest: string;
  size: number;
  /** The bytes, or a file holding them. */
  data: RequestBody | Buffer;
}

export interface RemoteRepository extends ImageSource {
  readonly ref: ImageRef;
  /** Whether the registry itself (not a mirror) has this blob. */
  hasBlob(digest: string, signal?: AbortSignal): Promise<boolean>;
  /** Upload a blob unless the registry has it (HEAD, then POST + PUT ?digest=). */
  pushBlob(blob: PushBlob, signal?: AbortSignal): Promise<void>;
  /** PUT a manifest or index under a tag or its digest; returns the digest of `bytes`. */
  pushManifest(reference: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<string>;
  /** Close idle connections. */
  close(): Promise<void>;
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** One place a repository can be read from: a mirror or the registry itself. */
interface Endpoint {
  /** "http://127.0.0.1:5000", "https://registry-1.docker.io"; no trailing slash. Undefined scheme = still to probe. */
  base: string;
  host: string;
  mirror: boolean;
  /** For hosts allowed insecure without an explicit scheme: try https, then http. */
  probe: boolean;
  auth: Authenticator;
}

/**
 * Which scheme each insecure-allowed host answered on (https tried first, then plain http), kept
 * per process for a while: a long-lived supervisor that checks `:latest` images at every start
 * would otherwise repeat the TLS attempt and the /v2/ probe each time.
 */
const probedSchemes = new Map<string, { scheme: 'https' | 'http'; at: number }>();
const SCHEME_TTL_MS = 10 * 60_000;

class Remote implements RemoteRepository {
  readonly ref: ImageRef;
  readonly name: string;
  private readonly transport: Transport;
  private readonly events?: EventSink;
  private readonly endpoints: Endpoint[];
  private readonly upstream: Endpoint;

  constructor(ref: ImageRef, opts: RemoteOptions) {
    this.ref = ref;
    this.name = `${ref.registry}/${ref.repository}`;
    this.events = opts.events;
    this.transport = new Transport({ config: opts.config, events: opts.events, timeouts: opts.timeouts, retry: opts.retry });
    // Nothing is looked up (no file read, no helper run) until a host answers 401.
    const creds = lookupOncePerHost(opts.credentials ?? dockerConfigCredentials());
    const settings = hostSettings(opts.config, ref.registry);
    const mirrors: Endpoint[] = opts.noMirrors
      ? []
      : settings.mirrors.map((m) => {
          const u = new URL(m);
          return { base: m.replace(/\/+$/, ''), host: u.host, mirror: true, probe: false, auth: new Authenticator(this.transport, u.host, () => creds(u.host)) };
        });
    const upstreamHost = ref.registry === DOCKER_HUB ? 'registry-1.docker.io' : ref.registry;
    this.upstream = {
      base: `https://${upstreamHost}`,
      host: upstreamHost,
      mirror: false,
      probe: settings.insecure,
      auth: new Authenticator(this.transport, ref.registry, () => creds(ref.registry)),
    };
    this.endpoints = [...mirrors, this.upstream];
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  /** The endpoint's base URL, probing https then http once for insecure hosts. */
  private async baseOf(ep: Endpoint, signal?: AbortSignal): Promise<string> {
    if (!ep.probe) return ep.base;
    const known = probedSchemes.get(ep.host);
    if (known && Date.now() - known.at < SCHEME_TTL_MS) return `${known.scheme}://${ep.host}`;
    for (const scheme of ['https', 'http'] as const) {
      const url = new URL(`${scheme}://${ep.host}/v2/`);
      try {
        const res = await this.transport.once({ method: 'GET', url, signal });
        await res.body.dump().catch(() => undefined);
        probedSchemes.set(ep.host, { scheme, at: Date.now() });
        trace(this.events, 'http', `registry ${ep.host} speaks ${scheme}`);
        return `${scheme}://${ep.host}`;
      } catch (err) {
        if (scheme === 'http' || !(isTlsError(err) || errCode(err) === 'ECONNRESET' || errCode(err) === 'UND_ERR_SOCKET')) {
          throw networkError('connect to registry', url, err);
        }
      }
    }
    throw new Error('unreachable');
  }

  /**
   * A request to an endpoint with auth: send the cached Authorization; on 401 from the endpoint
   * itself, answer the challenge once and resend.
   */
  private async call(ep: Endpoint, path: string, init: Omit<HttpRequest, 'url'>, scope: string, action: string): Promise<HttpResponse> {
    const base = await this.baseOf(ep, init.signal);
    const url = new URL(base + path);
    const origin = url.origin;
    let authorization = await ep.auth.authorization(origin, scope);
    for (let round = 0; ; round++) {
      const res = await this.transport.send({ ...init, url, authorization }, action);
      if (res.status !== 401 || !res.sameOrigin || round >= 1) {
        if (res.status === 401 && res.sameOrigin) {
          const detail = await errorDetail(res);
          ep.auth.invalidate(origin, scope);
          throw new PodrunError('EAUTH', `Cannot ${action} "${this.describe(ep)}": authentication failed (HTTP 401${detail})`, {
            hint: ep.auth.hasCredentials
              ? `Check the credentials for "${ep.host}" in the Docker config file ($DOCKER_CONFIG/config.json or ~/.docker/config.json) and that they may ${scope.endsWith('push') ? 'push to' : 'pull from'} this repository.`
              : `The repository may not exist, or it needs credentials: add them for "${ep.host}" to the Docker config file ($DOCKER_CONFIG/config.json or ~/.docker/config.json).`,
          });
        }
        return res;
      }
      const challenge = header(res, 'www-authenticate');
      await res.body.dump().catch(() => undefined);
      authorization = await ep.auth.respond(origin, challenge, scope, init.signal);
    }
  }

  private describe(ep: Endpoint): string {
    return ep.mirror ? `${this.name}" via mirror "${ep.base}` : this.name;
  }

  private scope(push = false): string {
    return `repository:${this.ref.repository}:${push ? 'pull,push' : 'pull'}`;
  }

  /** An error for a non-success answer, with the registry's own error code when it sent one. */
  private async statusError(ep: Endpoint, res: HttpResponse, action: string, object: string): Promise<PodrunError> {
    const detail = await errorDetail(res);
    const where = ep.mirror ? ` via mirror "${ep.base}"` : '';
    const msg = `Cannot ${action} "${object}" from "${this.name}"${where}: HTTP ${res.status}${detail}`;
    if (res.status === 404) return new PodrunError('ENOTFOUND', msg);
    if (res.status === 401 || res.status === 403) return new PodrunError('EAUTH', msg);
    return new PodrunError('EREGISTRY', msg);
  }

  /** Try each endpoint in order; a mirror's failure is a warning, the last failure is thrown. */
  private async firstEndpoint<T>(what: string, fn: (ep: Endpoint) => Promise<T>, signal?: AbortSignal): Promise<T> {
    let lastErr: unknown;
    for (const ep of this.endpoints) {
      try {
        return await fn(ep);
      } catch (err) {
        if (signal?.aborted) throw err;
        lastErr = err;
        if (ep.mirror) {
          const msg = err instanceof Error ? err.message : String(err);
          this.events?.({ type: 'warning', message: `mirror "${ep.base}" failed for ${what}, trying the next endpoint: ${msg}` });
        }
      }
    }
    throw lastErr;
  }

  async getManifest(reference: string, signal?: AbortSignal): Promise<ManifestResult> {
    const object = reference.includes(':') ? `${this.name}@${reference}` : `${this.name}:${reference}`;
    return this.firstEndpoint(
      `manifest "${object}"`,
      async (ep) => {
        const res = await this.call(
          ep,
          `/v2/${this.ref.repository}/manifests/${reference}`,
          { method: 'GET', headers: { accept: MANIFEST_ACCEPT }, signal },
          this.scope(),
          'fetch manifest',
        );
        if (res.status !== 200) throw await this.statusError(ep, res, 'fetch manifest', object);
        const bytes = await readBody(res, MAX_MANIFEST_BYTES, `manifest "${object}"`).catch((err) => {
          throw networkError('read manifest from', res.url, err);
        });
        const digest = sha256(bytes);
        if (reference.includes(':') && reference !== digest) {
          throw new PodrunError('EDIGEST', `Cannot accept manifest "${object}": its bytes have digest "${digest}"`);
        }
        return { bytes, digest, mediaType: manifestMediaType(header(res, 'content-type'), bytes) };
      },
      signal,
    );
  }

  async getBlob(desc: Descriptor, opts: BlobFetchOptions = {}): Promise<Readable> {
    const offset = opts.offset ?? 0;
    const signal = opts.signal;
    try {
      return await this.firstEndpoint(`blob "${desc.digest}"`, (ep) => this.blobFrom(ep, desc, offset, signal), signal);
    } catch (err) {
      if (isPodrunError(err, 'ENOTFOUND') && desc.urls?.length && FOREIGN_LAYER.test(desc.mediaType)) {
        throw new PodrunError(
          'EUNSUPPORTED',
          `Cannot fetch foreign layer "${desc.digest}" of "${this.name}": the registry does not have it and podrun does not follow its URLs (${desc.urls.map((u) => `"${u}"`).join(', ')})`,
          { cause: err, hint: 'Non-distributable layers (mostly Windows base layers) cannot be pulled.' },
        );
      }
      throw err;
    }
  }

  /** One blob response starting at `offset`: 206 from a Range request, or 200 whose first bytes we skip. */
  private async openBlob(ep: Endpoint, desc: Descriptor, offset: number, signal?: AbortSignal): Promise<{ res: HttpResponse; skip: number }> {
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const res = await this.call(ep, `/v2/${this.ref.repository}/blobs/${desc.digest}`, { method: 'GET', headers, signal }, this.scope(), 'fetch blob');
    if (res.status === 206) {
      const cr = header(res, 'content-range');
      const m = cr ? /^bytes (\d+)-/.exec(cr) : null;
      if (!m || Number(m[1]) !== offset) {
        await res.body.dump().catch(() => undefined);
        throw new PodrunError('EREGISTRY', `Cannot resume blob "${desc.digest}" of "${this.name}" at byte ${offset}: the server answered range "${cr ?? '(none)'}"`);
      }
      return { res, skip: 0 };
    }
    if (res.status === 200) return { res, skip: offset };
    if (res.status === 416 && offset > 0 && offset >= desc.size) {
      await res.body.dump().catch(() => undefined);
      return { res: { ...res, body: Readable.from([]) as unknown as HttpResponse['body'] }, skip: 0 };
    }
    throw await this.statusError(ep, res, 'fetch blob', desc.digest);
  }

  /**
   * The blob as a stream from `offset`. When the connection breaks mid-body, it re-requests the rest
   * with Range (up to BLOB_RESUMES times), so the reader sees one continuous stream.
   */
  private async blobFrom(ep: Endpoint, desc: Descriptor, offset: number, signal?: AbortSignal): Promise<Readable> {
    const first = await this.openBlob(ep, desc, offset, signal);
    trace(this.events, 'http', `blob ${desc.digest}`, `from ${first.res.url.host}${offset ? `, resuming at byte ${offset}` : ''}`);
    const self = this;
    let current = first;
    async function* chunks(): AsyncGenerator<Buffer> {
      let pos = offset;
      let resumes = 0;
      for (;;) {
        try {
          for await (const c of current.res.body) {
            let chunk = c as Buffer;
            if (current.skip > 0) {
              if (chunk.length <= current.skip) {
                current.skip -= chunk.length;
                continue;
              }
              chunk = chunk.subarray(current.skip);
              current.skip = 0;
            }
            pos += chunk.length;
            yield chunk;
          }
          return;
        } catch (err) {
          current.res.body.destroy();
          if (signal?.aborted || resumes >= BLOB_RESUMES || !isRetryableNetworkError(err)) {
            throw networkError(`read blob "${desc.digest}" from`, current.res.url, err);
          }
          resumes++;
          self.events?.({ type: 'warning', message: `blob "${desc.digest}" broke off at byte ${pos} (${errCode(err)}); resuming (${resumes}/${BLOB_RESUMES})` });
          current = await self.openBlob(ep, desc, pos, signal);
        }
      }
    }
    // Chunks pass through one by one: a byte-mode Readable read by `for await` would copy its
    // buffered chunks into one new buffer on every read.
    const stream = Readable.from(chunks(), { objectMode: true, highWaterMark: 16 });
    // A reader that stops early (or never starts) releases the connection.
    stream.on('close', () => {
      if (!current.res.body.destroyed) current.res.body.destroy();
    });
    return stream;
  }

  async hasBlob(digest: string, signal?: AbortSignal): Promise<boolean> {
    const res = await this.call(this.upstream, `/v2/${this.ref.repository}/blobs/${digest}`, { method: 'HEAD', signal }, this.scope(true), 'check blob');
    await res.body.dump().catch(() => undefined);
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw await this.statusError(this.upstream, res, 'check blob', digest);
  }

  async pushBlob(blob: PushBlob, signal?: AbortSignal): Promise<void> {
    if (await this.hasBlob(blob.digest, signal)) return;
    const ep = this.upstream;
    const start = await this.call(ep, `/v2/${this.ref.repository}/blobs/uploads/`, { method: 'POST', signal, followRedirects: false }, this.scope(true), 'start blob upload');
    if (start.status !== 202) throw await this.statusError(ep, start, 'start blob upload', blob.digest);
    await start.body.dump().catch(() => undefined);
    const location = header(start, 'location');
    if (!location) throw new PodrunError('EREGISTRY', `Cannot upload blob "${blob.digest}" to "${this.name}": no upload Location`);
    const target = new URL(location, start.url);
    target.searchParams.set('digest', blob.digest);
    const path = target.pathname + target.search;
    if (target.origin !== start.url.origin) {
      throw new PodrunError('EREGISTRY', `Cannot upload blob "${blob.digest}" to "${this.name}": upload location "${target.origin}" is on another host`);
    }
    const put = await this.call(
      ep,
      path,
      { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: blob.data, signal, followRedirects: false },
      this.scope(true),
      'upload blob',
    );
    if (put.status !== 201) throw await this.statusError(ep, put, 'upload blob', blob.digest);
    await put.body.dump().catch(() => undefined);
  }

  async pushManifest(reference: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<string> {
    const ep = this.upstream;
    const digest = sha256(bytes);
    const res = await this.call(
      ep,
      `/v2/${this.ref.repository}/manifests/${reference}`,
      { method: 'PUT', headers: { 'content-type': mediaType }, body: bytes, signal, followRedirects: false },
      this.scope(true),
      'push manifest',
    );
    if (res.status !== 201) throw await this.statusError(ep, res, 'push manifest', reference);
    await res.body.dump().catch(() => undefined);
    return digest;
  }
}

/** " CODE: message" from a Distribution error body ({"errors":[{code,message}]}), or "". */
async function errorDetail(res: HttpResponse): Promise<string> {
  try {
    const body = await readBody(res, 64 * 1024, 'error body');
    const doc = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const e = doc.errors?.[0];
    if (e) return ` ${e.code ?? ''}${e.message ? `: ${e.message}` : ''}`;
  } catch {
    /* not JSON */
  }
  return '';
}

/** The media type of a manifest: Content-Type when specific, else the document's own. */
export function manifestMediaType(contentType: string | undefined, bytes: Buffer): string {
  const ct = contentType?.split(';')[0].trim().toLowerCase();
  if (ct && ct !== 'application/json' && ct !== 'text/plain' && ct !== 'application/octet-stream') return ct;
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown; manifests?: unknown; layers?: unknown };
    if (typeof doc.mediaType === 'string') return doc.mediaType;
    if (Array.isArray(doc.manifests)) return MEDIA_TYPES.ociIndex;
    if (Array.isArray(doc.layers)) return MEDIA_TYPES.ociManifest;
  } catch {
    /* fall through */
  }
  return ct ?? 'application/octet-stream';
}

/** Open a repository on its registry (through its mirrors) as an ImageSource. */
export function openRemote(ref: ImageRef, opts: RemoteOptions): RemoteRepository {
  return new Remote(ref, opts);
}
