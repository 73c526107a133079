/**
 * The registry client against Debian's real docker-registry on 127.0.0.x: anonymous, Basic and
 * Bearer-token pulls, TLS with a test CA, mirrors, redirects that must not carry credentials,
 * retries and Range resume through a small fault-injecting proxy, multi-platform indexes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, lstatSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { buildImage, buildIndex, pushImage } from '../../src/image/builder.js';
import { parseReference } from '../../src/image/reference.js';
import { clearAuthCache, openRemote, staticCredentials, type RegistriesConfig, type RemoteOptions, type RemoteRepository } from '../../src/image/registry/index.js';
import type { Descriptor } from '../../src/image/types.js';
import { realSyscalls } from '../../src/linux/ffi.js';
import { PodrunError } from '../../src/util/errors.js';
import type { PodrunEvent } from '../../src/util/events.js';
import { busyboxImage, expectedMultilayer, MULTIARCH_PLATFORMS, pushBusybox, seedFixtures, type SeededFixtures } from '../helpers/images.js';
import { freePort, startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const repoDir = fileURLToPath(new URL('../..', import.meta.url));
const NO_CONFIG: RegistriesConfig = { registries: {} };
const FAST_RETRY = { attempts: 4, baseDelayMs: 10, maxDelayMs: 50 };

const opened: RemoteRepository[] = [];
function remote(ref: string, opts: Partial<RemoteOptions> = {}): RemoteRepository {
  const r = openRemote(parseReference(ref), { config: NO_CONFIG, credentials: () => undefined, retry: FAST_RETRY, ...opts });
  opened.push(r);
  return r;
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((r) => r.close()));
  clearAuthCache();
});

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
function sha(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}
async function rejection(p: Promise<unknown>): Promise<PodrunError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PodrunError);
    return err as PodrunError;
  }
  throw new Error('expected a rejection');
}

/** A tiny HTTP server on `address`; `handle` answers each request. */
async function startServer(address: string, handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; host: string; url: string; close(): Promise<void> }> {
  const server = createServer(handle);
  const port = await new Promise<number>((resolve) => server.listen(0, address, () => resolve((server.address() as AddressInfo).port)));
  return {
    server,
    host: `${address}:${port}`,
    url: `http://${address}:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * Forward a request to `target` ("http://127.0.0.1:PORT"), keeping the Host header so the registry
 * writes its Location headers for the proxy; `onResponse` may rewrite the answer.
 */
function forward(
  target: string,
  req: IncomingMessage,
  res: ServerResponse,
  opts: { headers?: Record<string, string | undefined>; onResponse?: (up: IncomingMessage, res: ServerResponse) => boolean } = {},
): void {
  const u = new URL(req.url ?? '/', target);
  const headers = { ...req.headers, ...opts.headers };
  for (const [k, v] of Object.entries(headers)) if (v === undefined) delete headers[k];
  const up = httpRequest(u, { method: req.method, headers }, (upRes) => {
    if (opts.onResponse?.(upRes, res)) return;
    res.writeHead(upRes.statusCode ?? 502, upRes.headers);
    upRes.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
}

let reg: TestRegistry;
let fx: SeededFixtures;

beforeAll(async () => {
  reg = await startTestRegistry();
  fx = await seedFixtures(reg.host);
});
afterAll(async () => {
  await reg?.stop();
});

describe('anonymous pull from a plain-http loopback registry', () => {
  test('manifest by tag and by digest; config and layer blobs', async () => {
    const r = remote(fx.busybox);
    const byTag = await r.getManifest('latest');
    expect(byTag.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(byTag.digest).toBe(fx.digests.busybox);
    expect(byTag.digest).toBe(sha(byTag.bytes));
    const byDigest = await r.getManifest(fx.digests.busybox);
    expect(byDigest.bytes.equals(byTag.bytes)).toBe(true);

    const m = JSON.parse(byTag.bytes.toString('utf8')) as { config: Descriptor; layers: Descriptor[] };
    const config = await readAll(await r.getBlob(m.config));
    expect(sha(config)).toBe(m.config.digest);
    expect(JSON.parse(config.toString('utf8')).config.Cmd).toEqual(['sh']);
    const layer = await readAll(await r.getBlob(m.layers[0]));
    expect(layer.length).toBe(m.layers[0].size);
    expect(sha(layer)).toBe(m.layers[0].digest);
  });

  test('a missing tag or blob is ENOTFOUND naming it', async () => {
    const r = remote(fx.busybox);
    const err = await rejection(r.getManifest('no-such-tag'));
    expect(err.code).toBe('ENOTFOUND');
    expect(err.message).toBe(`Cannot fetch manifest "${reg.host}/library/busybox:no-such-tag" from "${reg.host}/library/busybox": HTTP 404 MANIFEST_UNKNOWN: manifest unknown`);
    const missing = { mediaType: 'application/octet-stream', digest: sha(Buffer.from('nothing')), size: 7 };
    expect((await rejection(r.getBlob(missing))).code).toBe('ENOTFOUND');
  });

  test('a foreign layer the registry lacks is refused, its URL is not followed', async () => {
    const events: PodrunEvent[] = [];
    const r = remote(fx.busybox, { events: (e) => events.push(e) });
    const desc: Descriptor = {
      mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
      digest: sha(Buffer.from('foreign')),
      size: 7,
      urls: ['http://127.0.0.9:9/foreign.tar.gz'],
    };
    const err = await rejection(r.getBlob(desc));
    expect(err.code).toBe('EUNSUPPORTED');
    expect(err.message).toContain(`Cannot fetch foreign layer "${desc.digest}"`);
    expect(err.message).toContain('"http://127.0.0.9:9/foreign.tar.gz"');
    expect(events.filter((e) => e.type === 'trace' && e.step.includes('127.0.0.9'))).toEqual([]);
  });

  test('multi-platform OCI index: three platform manifests, each fetchable by digest', async () => {
    const r = remote(fx.multiarch);
    const idx = await r.getManifest('1');
    expect(idx.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(idx.digest).toBe(fx.digests.multiarch);
    const doc = JSON.parse(idx.bytes.toString('utf8')) as { manifests: Descriptor[] };
    expect(doc.manifests.map((d) => d.platform)).toEqual(MULTIARCH_PLATFORMS.map((p) => ({ ...p })));
    for (const d of doc.manifests) {
      const m = await r.getManifest(d.digest);
      expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      const cfgDesc = (JSON.parse(m.bytes.toString('utf8')) as { config: Descriptor }).config;
      const cfg = JSON.parse((await readAll(await r.getBlob(cfgDesc))).toString('utf8'));
      expect(cfg.architecture).toBe(d.platform!.architecture);
    }
  });

  test('Docker v2 schema 2 manifest and manifest list media types', async () => {
    const a = await buildImage({ format: 'docker', platform: { os: 'linux', architecture: 'amd64' }, layers: [{ entries: [{ type: 'file', path: 'f', content: 'docker' }] }] });
    const list = buildIndex([a], { format: 'docker' });
    const ref = `${reg.host}/podrun-test/docker-format:1`;
    await pushImage(ref, list);
    const r = remote(ref);
    const top = await r.getManifest('1');
    expect(top.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    const m = await r.getManifest(a.descriptor.digest);
    expect(m.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(JSON.parse(m.bytes.toString('utf8')).layers[0].mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
  });

  test('the fixtures are real images: skopeo copies them, umoci unpacks the multilayer tree', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'podrun-test-fixture-'));
    try {
      const inspect = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${fx.busybox}`], { encoding: 'utf8' }));
      expect(inspect.Digest).toBe(fx.digests.busybox);
      execFileSync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${fx.multilayer}`, `oci:${dir}/layout:ml`]);
      execFileSync('umoci', ['raw', 'unpack', '--image', `${dir}/layout:ml`, `${dir}/rootfs`], { stdio: 'pipe' });
      const root = `${dir}/rootfs`;
      for (const [path, want] of Object.entries(expectedMultilayer.present)) {
        const st = lstatSync(join(root, path));
        const type = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : '?';
        expect(type, path).toBe(want.type);
        if ('mode' in want) expect(st.mode & 0o7777, path).toBe(want.mode);
        if ('uid' in want) expect([st.uid, st.gid], path).toEqual([want.uid, want.gid]);
        if ('content' in want) expect(readFileSync(join(root, path), 'utf8'), path).toBe(want.content);
        if ('target' in want) expect(readlinkSync(join(root, path)), path).toBe(want.target);
        if ('mtime' in want) expect(Math.floor(st.mtimeMs / 1000), path).toBe(want.mtime);
      }
      for (const path of expectedMultilayer.absent) expect(existsSync(join(root, path)), path).toBe(false);
      for (const group of expectedMultilayer.hardlinks) {
        expect(new Set(group.map((p) => lstatSync(join(root, p)).ino)).size, group.join()).toBe(1);
      }
      expect(realSyscalls.lgetxattr(join(root, 'data/xattr-file'), 'user.podrun.test')?.toString('utf8')).toBe('fixture-value');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Basic auth (htpasswd)', () => {
  let basic: TestRegistry;
  beforeAll(async () => {
    basic = await startTestRegistry({ basicAuth: { alice: 'wonder-land' } });
    await pushBusybox(basic.host, 'private/busybox:1', { credentials: staticCredentials({ [basic.host]: { username: 'alice', password: 'wonder-land' } }) });
  });
  afterAll(async () => basic?.stop());

  test('good credentials pull', async () => {
    const r = remote(`${basic.host}/private/busybox:1`, { credentials: staticCredentials({ [basic.host]: { username: 'alice', password: 'wonder-land' } }) });
    const m = await r.getManifest('1');
    expect(m.digest).toBe((await busyboxImage()).descriptor.digest);
  });

  test('wrong password: EAUTH naming the registry', async () => {
    const r = remote(`${basic.host}/private/busybox:1`, { credentials: staticCredentials({ [basic.host]: { username: 'alice', password: 'nope' } }) });
    const err = await rejection(r.getManifest('1'));
    expect(err.code).toBe('EAUTH');
    expect(err.message).toBe(`Cannot fetch manifest "${basic.host}/private/busybox": authentication failed (HTTP 401 UNAUTHORIZED: authentication required)`);
    expect(err.hint).toContain('config.json');
  });

  test('no credentials: EAUTH saying they are needed', async () => {
    const err = await rejection(remote(`${basic.host}/private/busybox:1`).getManifest('1'));
    expect(err.code).toBe('EAUTH');
    expect(err.message).toBe(`Cannot authenticate to "${basic.host}": it requires a user name and password`);
  });

  test('credentials come from $DOCKER_CONFIG/config.json by default', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'podrun-test-dockercfg-'));
    const saved = process.env.DOCKER_CONFIG;
    try {
      await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [`http://${basic.host}`]: { auth: Buffer.from('alice:wonder-land').toString('base64') } } }));
      process.env.DOCKER_CONFIG = dir;
      const r = openRemote(parseReference(`${basic.host}/private/busybox:1`), { config: NO_CONFIG });
      opened.push(r);
      expect((await r.getManifest('1')).digest).toBe((await busyboxImage()).descriptor.digest);
    } finally {
      if (saved === undefined) delete process.env.DOCKER_CONFIG;
      else process.env.DOCKER_CONFIG = saved;
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Bearer token flow (registry auth: token)', () => {
  let tok: TestRegistry;
  const bob = staticCredentials({});
  beforeAll(async () => {
    tok = await startTestRegistry({ tokenAuth: { users: { bob: 'builder' }, anonymousPull: true } });
    await pushBusybox(tok.host, 'team/busybox:1', { credentials: staticCredentials({ [tok.host]: { username: 'bob', password: 'builder' } }) });
  });
  afterAll(async () => tok?.stop());

  test('push as a user asked for pull,push; anonymous pull asks for pull with the service; the token is cached', async () => {
    expect(tok.tokenRequests.some((t) => t.user === 'bob' && t.scopes.includes('repository:team/busybox:pull,push') && t.granted)).toBe(true);
    const before = tok.tokenRequests.length;
    const r = remote(`${tok.host}/team/busybox:1`, { credentials: bob });
    const m = await r.getManifest('1');
    expect(m.digest).toBe((await busyboxImage()).descriptor.digest);
    const layer = JSON.parse(m.bytes.toString('utf8')).layers[0] as Descriptor;
    expect(sha(await readAll(await r.getBlob(layer)))).toBe(layer.digest);
    await r.getManifest(m.digest);
    const asked = tok.tokenRequests.slice(before);
    expect(asked).toEqual([{ service: 'podrun-test-registry', scopes: ['repository:team/busybox:pull'], user: undefined, granted: true }]);
  });

  test('a wrong password is refused by the token service: EAUTH', async () => {
    const r = remote(`${tok.host}/team/busybox:1`, { credentials: staticCredentials({ [tok.host]: { username: 'bob', password: 'wrong' } }) });
    const err = await rejection(r.getManifest('1'));
    expect(err.code).toBe('EAUTH');
    expect(err.message).toMatch(new RegExp(`^Cannot log in to "${tok.host}" as "bob": the token service "${tok.tokenRealm}" refused the credentials \\(HTTP 401\\)$`));
  });

  test('an anonymous push gets a pull-only token and fails with EAUTH', async () => {
    const err = await rejection(pushBusybox(tok.host, 'team/other:1', { credentials: () => undefined }));
    expect(err.code).toBe('EAUTH');
    expect(err.message).toMatch(/^Cannot start blob upload "[^"]+\/team\/other": authentication failed \(HTTP 401 UNAUTHORIZED: /);
    expect(err.hint).toContain('needs credentials');
  });
});

test('an expired token is not reused: a new one is fetched', async () => {
  const short = await startTestRegistry({ tokenAuth: { anonymousPull: true, users: { bob: 'builder' }, expiresIn: 2 } });
  try {
    await pushBusybox(short.host, 'team/busybox:1', { credentials: staticCredentials({ [short.host]: { username: 'bob', password: 'builder' } }) });
    const r = remote(`${short.host}/team/busybox:1`);
    const count = () => short.tokenRequests.filter((t) => t.scopes.includes('repository:team/busybox:pull')).length;
    await r.getManifest('1');
    await r.getManifest('1');
    expect(count()).toBe(1);
    await new Promise((res) => setTimeout(res, 2_100));
    await r.getManifest('1');
    expect(count()).toBe(2);
  } finally {
    await short.stop();
  }
});

describe('TLS with a test CA', () => {
  let tls: TestRegistry;
  let ref: string;
  beforeAll(async () => {
    tls = await startTestRegistry({ tls: true });
    ref = `${tls.host}/secure/busybox:1`;
    await pushBusybox(tls.host, 'secure/busybox:1', { config: { registries: { [tls.host]: { mirrors: [], ca: tls.caFile } } } });
  });
  afterAll(async () => tls?.stop());

  test('verified with the CA from registries.yaml', async () => {
    const r = remote(ref, { config: { registries: { [tls.host]: { mirrors: [], ca: tls.caFile } } } });
    expect((await r.getManifest('1')).digest).toBe((await busyboxImage()).descriptor.digest);
  });

  test('without the CA (insecure: false): a clear TLS error with a hint', async () => {
    const r = remote(ref, { config: { registries: { [tls.host]: { mirrors: [], insecure: false } } } });
    const err = await rejection(r.getManifest('1'));
    expect(err.code).toBe('ENETWORK');
    expect(err.message).toMatch(new RegExp(`^Cannot fetch manifest "https://${tls.host}": TLS handshake failed \\(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE`));
    expect(err.hint).toContain(`"ca: /path/to/ca.pem" for "${tls.host}"`);
  });

  test('the CLI trusts NODE_EXTRA_CA_CERTS as Node does (bin/podrun defers loading it to the first TLS connection)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'podrun-test-ca-'));
    try {
      const cfg = join(dir, 'registries.yaml');
      await writeFile(cfg, `registries:\n  "${tls.host}":\n    insecure: false\n`);
      const pull = (extra: string) =>
        spawnSync(join(repoDir, 'bin', 'podrun'), ['--root', join(dir, 'root'), '--registry-config', cfg, 'pull', '-q', ref], {
          encoding: 'utf8',
          env: { ...process.env, NODE_EXTRA_CA_CERTS: extra },
          timeout: 60_000,
        });
      const without = pull('/etc/ssl/certs/ca-certificates.crt');
      expect(without.status).toBe(1);
      expect(without.stderr).toMatch(/TLS handshake failed/);
      const withCa = pull(tls.caFile!);
      expect(withCa.stderr).toBe('');
      expect(withCa.stdout).toBe(`${(await busyboxImage()).descriptor.digest}\n`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('insecure: true opts out of verification', async () => {
    const r = remote(ref, { config: { registries: { [tls.host]: { mirrors: [], insecure: true } } } });
    expect((await r.getManifest('1')).digest).toBe((await busyboxImage()).descriptor.digest);
  });
});

describe('mirrors', () => {
  test('docker.io/library/busybox is served by the mirror; a dead mirror is skipped with a warning; docker.io is never asked', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const events: PodrunEvent[] = [];
    const r = remote('busybox', { config: { registries: { 'docker.io': { mirrors: [dead, reg.url] } } }, events: (e) => events.push(e) });
    const m = await r.getManifest('latest');
    expect(m.digest).toBe(fx.digests.busybox);
    const layer = JSON.parse(m.bytes.toString('utf8')).layers[0] as Descriptor;
    expect(sha(await readAll(await r.getBlob(layer)))).toBe(layer.digest);
    const warnings = events.filter((e) => e.type === 'warning').map((e) => (e as { message: string }).message);
    expect(warnings[0]).toMatch(new RegExp(`^mirror "${dead}" failed for manifest "docker.io/library/busybox:latest", trying the next endpoint: .*ECONNREFUSED`));
    const hosts = events.filter((e) => e.type === 'trace').map((e) => (e as { step: string }).step);
    expect(hosts.some((s) => s.includes('docker.io'))).toBe(false);
  });
});

describe('redirects', () => {
  test('a blob redirect to another host:port is followed without the Authorization header', async () => {
    const basic = await startTestRegistry({ basicAuth: { alice: 'wonder-land' } });
    const seen: { front: (string | undefined)[]; target: (string | undefined)[] } = { front: [], target: [] };
    const adminAuth = `Basic ${Buffer.from('alice:wonder-land').toString('base64')}`;
    // The blob host: serves blobs it fetches from the registry itself, records what it was sent.
    const target = await startServer('127.0.0.3', (req, res) => {
      seen.target.push(req.headers.authorization);
      forward(basic.url, req, res, { headers: { authorization: adminAuth } });
    });
    // The front: the registry as the client sees it; sends blob GETs to the blob host.
    const front = await startServer('127.0.0.2', (req, res) => {
      seen.front.push(req.headers.authorization);
      if (req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '')) {
        res.writeHead(307, { location: `${target.url}${req.url}` }).end();
        return;
      }
      forward(basic.url, req, res);
    });
    try {
      const creds = staticCredentials({ [front.host]: { username: 'alice', password: 'wonder-land' } });
      await pushBusybox(front.host, 'private/busybox:1', { credentials: creds });
      const r = remote(`${front.host}/private/busybox:1`, { credentials: creds });
      const m = await r.getManifest('1');
      const layer = JSON.parse(m.bytes.toString('utf8')).layers[0] as Descriptor;
      const frontBefore = seen.front.length;
      expect(sha(await readAll(await r.getBlob(layer)))).toBe(layer.digest);
      expect(seen.front.slice(frontBefore)).toEqual([adminAuth]); // the registry's own host got credentials
      expect(seen.target.length).toBeGreaterThan(0);
      expect(seen.target.every((a) => a === undefined)).toBe(true); // the other host never did
    } finally {
      await front.close();
      await target.close();
      await basic.stop();
    }
  });
});

describe('faults: retries, timeouts, Range resume', () => {
  type Hook = (req: IncomingMessage, res: ServerResponse) => boolean;
  let proxy: Awaited<ReturnType<typeof startServer>>;
  let hook: Hook | undefined;
  const log: { method?: string; url?: string; range?: string }[] = [];
  let layer: Descriptor;
  let layerBytes: Buffer;

  beforeAll(async () => {
    proxy = await startServer('127.0.0.1', (req, res) => {
      log.push({ method: req.method, url: req.url, range: req.headers.range });
      if (hook?.(req, res)) return;
      forward(reg.url, req, res);
    });
    const img = await busyboxImage();
    layer = img.layers[0].descriptor;
    layerBytes = img.layers[0].data as Buffer;
  });
  afterAll(async () => proxy?.close());
  afterEach(() => {
    hook = undefined;
    log.length = 0;
  });
  const blobPath = () => `/v2/library/busybox/blobs/${layer.digest}`;

  test('5xx answers are retried with backoff, then succeed', async () => {
    let failures = 2;
    hook = (req, res) => {
      if (req.url?.includes('/manifests/') && failures > 0) {
        failures--;
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}');
        return true;
      }
      return false;
    };
    const m = await remote(`${proxy.host}/library/busybox:latest`).getManifest('latest');
    expect(m.digest).toBe(fx.digests.busybox);
    expect(log.filter((l) => l.url?.includes('/manifests/')).length).toBe(3);
  });

  test('retries are bounded: the last 5xx is reported', async () => {
    hook = (req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNKNOWN","message":"boom"}]}');
      return true;
    };
    const err = await rejection(remote(`${proxy.host}/library/busybox:latest`).getManifest('latest'));
    expect(err.code).toBe('EREGISTRY');
    expect(err.message).toBe(`Cannot fetch manifest "${proxy.host}/library/busybox:latest" from "${proxy.host}/library/busybox": HTTP 500 UNKNOWN: boom`);
    expect(log.filter((l) => l.url?.includes('/manifests/')).length).toBe(FAST_RETRY.attempts);
  });

  test('a connection reset before the answer is retried', async () => {
    let resets = 1;
    hook = (req, res) => {
      if (req.url?.includes('/manifests/') && resets > 0) {
        resets--;
        res.socket?.destroy();
        return true;
      }
      return false;
    };
    expect((await remote(`${proxy.host}/library/busybox:latest`).getManifest('latest')).digest).toBe(fx.digests.busybox);
  });

  test('a blob cut mid-stream resumes with Range and the reader sees every byte once', async () => {
    let cuts = 1;
    hook = (req, res) => {
      if (req.url === blobPath() && !req.headers.range && cuts > 0) {
        cuts--;
        forward(reg.url, req, res, {
          onResponse: (up, out) => {
            out.writeHead(200, up.headers);
            let sent = 0;
            up.on('data', (c: Buffer) => {
              if (sent >= 300_000) return;
              out.write(c);
              sent += c.length;
              if (sent >= 300_000) setTimeout(() => out.socket?.destroy(), 20);
            });
            return true;
          },
        });
        return true;
      }
      return false;
    };
    const events: PodrunEvent[] = [];
    const got = await readAll(await remote(`${proxy.host}/library/busybox:latest`, { events: (e) => events.push(e) }).getBlob(layer));
    expect(got.length).toBe(layer.size);
    expect(sha(got)).toBe(layer.digest);
    const ranges = log.filter((l) => l.url === blobPath()).map((l) => l.range);
    expect(ranges[0]).toBeUndefined();
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
    expect(events.some((e) => e.type === 'warning' && /broke off at byte \d+ .*resuming \(1\/5\)/.test(e.message))).toBe(true);
  });

  test('a stalled body hits the idle timeout and resumes', async () => {
    let stalls = 1;
    hook = (req, res) => {
      if (req.url === blobPath() && !req.headers.range && stalls > 0) {
        stalls--;
        res.writeHead(200, { 'content-length': String(layer.size), 'content-type': 'application/octet-stream' });
        res.write(layerBytes.subarray(0, 100_000)); // then silence
        return true;
      }
      return false;
    };
    const t0 = Date.now();
    const got = await readAll(await remote(`${proxy.host}/library/busybox:latest`, { timeouts: { bodyIdleMs: 300 } }).getBlob(layer));
    expect(sha(got)).toBe(layer.digest);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(log.filter((l) => l.url === blobPath()).map((l) => l.range)).toEqual([undefined, 'bytes=100000-']);
  });

  test('a server that sends no headers hits the headers timeout and the request is retried', async () => {
    let silent = 1;
    hook = (req) => {
      if (req.url?.includes('/manifests/') && silent > 0) {
        silent--;
        return true; // never answer
      }
      return false;
    };
    const m = await remote(`${proxy.host}/library/busybox:latest`, { timeouts: { headersMs: 300 } }).getManifest('latest');
    expect(m.digest).toBe(fx.digests.busybox);
    expect(log.filter((l) => l.url?.includes('/manifests/')).length).toBe(2);
  });

  test('getBlob with an offset starts there (206 from the registry)', async () => {
    const got = await readAll(await remote(`${proxy.host}/library/busybox:latest`).getBlob(layer, { offset: 123_456 }));
    expect(got.equals(layerBytes.subarray(123_456))).toBe(true);
    expect(log.filter((l) => l.url === blobPath()).map((l) => l.range)).toEqual(['bytes=123456-']);
  });

  test('getBlob with an offset against a server that ignores Range skips the first bytes itself', async () => {
    hook = (req, res) => {
      if (req.url === blobPath()) {
        forward(reg.url, req, res, { headers: { range: undefined } });
        return true;
      }
      return false;
    };
    const got = await readAll(await remote(`${proxy.host}/library/busybox:latest`).getBlob(layer, { offset: 1000 }));
    expect(got.equals(layerBytes.subarray(1000))).toBe(true);
  });

  test('a manifest whose bytes do not match the requested digest: EDIGEST', async () => {
    hook = (req, res) => {
      if (req.url?.includes('/manifests/sha256:')) {
        forward(reg.url, req, res, {
          onResponse: (up, out) => {
            const chunks: Buffer[] = [];
            up.on('data', (c: Buffer) => chunks.push(c));
            up.on('end', () => {
              const body = Buffer.concat([Buffer.concat(chunks), Buffer.from(' ')]);
              out.writeHead(200, { 'content-type': up.headers['content-type'], 'content-length': String(body.length) }).end(body);
            });
            return true;
          },
        });
        return true;
      }
      return false;
    };
    const err = await rejection(remote(`${proxy.host}/library/busybox:latest`).getManifest(fx.digests.busybox));
    expect(err.code).toBe('EDIGEST');
    expect(err.message).toMatch(new RegExp(`^Cannot accept manifest "${proxy.host}/library/busybox@${fx.digests.busybox}": its bytes have digest "sha256:`));
  });

  test('an oversized manifest is refused', async () => {
    hook = (req, res) => {
      if (req.url?.includes('/manifests/')) {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': String(5 * 1024 * 1024) });
        res.end(Buffer.alloc(5 * 1024 * 1024, 0x20));
        return true;
      }
      return false;
    };
    const err = await rejection(remote(`${proxy.host}/library/busybox:latest`).getManifest('latest'));
    expect(err.message).toMatch(/it is 5242880 bytes, more than the limit of 4194304/);
  });
});

test('pushing the same fixture twice skips existing blobs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'podrun-test-push-'));
  try {
    await mkdir(join(dir, 'x'));
    const before = Date.now();
    await pushBusybox(reg.host, 'library/busybox:again');
    expect(Date.now() - before).toBeLessThan(5_000);
    expect((await remote(`${reg.host}/library/busybox:again`).getManifest('again')).digest).toBe(fx.digests.busybox);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
