/**
 * A real Distribution registry (Debian's docker-registry 2.8) for tests, on a free 127.0.0.1 port
 * with its own temp storage. Options: Basic auth (htpasswd -Bbn), token auth (the registry's
 * `auth: token` mode; the token endpoint is a small node server here that signs RS256 JWTs with a
 * test key whose certificate is the registry's rootcertbundle; it also takes the OAuth2 POST
 * form with grant_type=refresh_token for known identity tokens), TLS with a test CA.
 *
 *   const reg = await startTestRegistry();            // reg.host = "127.0.0.1:PORT"
 *   ...
 *   await reg.stop();                                  // kills it by pid, removes its temp dir
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createSign, randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer, request as httpRequest, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REGISTRY_BIN = '/usr/bin/docker-registry';
const SETPRIV = '/usr/bin/setpriv';

export interface TestRegistryOptions {
  /** Basic auth with these users (htpasswd file, bcrypt). */
  basicAuth?: Record<string, string>;
  /** Token auth. `users` may log in with Basic at the token endpoint and get what they ask for;
   *  anonymous callers get pull only when `anonymousPull` is true. */
  tokenAuth?: {
    users?: Record<string, string>;
    anonymousPull?: boolean;
    expiresIn?: number;
    /** Identity (refresh) tokens → the user they stand for, accepted by the OAuth2 POST flow. */
    refreshTokens?: Record<string, string>;
  };
  /** Serve https with a certificate from a fresh test CA (handle.caFile). */
  tls?: boolean;
  /** Bind address (default 127.0.0.1). */
  address?: string;
}

export interface TokenRequest {
  service: string | null;
  scopes: string[];
  user?: string;
  granted: boolean;
  /** "POST" for the OAuth2 flow; absent for the GET token flow. */
  method?: string;
  /** OAuth2 POST only: grant_type and client_id as sent. */
  grantType?: string;
  clientId?: string;
}

export interface TestRegistry {
  /** "http://127.0.0.1:PORT" or "https://…". */
  url: string;
  /** "127.0.0.1:PORT": use as the registry part of references. */
  host: string;
  port: number;
  /** PEM of the CA that signed the TLS certificate (tls only). */
  caFile?: string;
  /** The token endpoint (tokenAuth only) and every request it answered. */
  tokenRealm?: string;
  tokenRequests: TokenRequest[];
  /** The registry's temp dir (storage under ./data, log in ./registry.log). */
  dir: string;
  pid: number;
  logTail(): string;
  stop(): Promise<void>;
}

/** A free TCP port on `address` (bound, then released). */
export async function freePort(address = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.on('error', reject);
    srv.listen(0, address, () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA and a server certificate for 127.0.0.1 / localhost, in `dir`. */
export function makeTestCa(dir: string, cn = 'podrun-test'): { caFile: string; certFile: string; keyFile: string } {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=${cn}-ca`], dir);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${cn}-server`], dir);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(
    ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext'],
    dir,
  );
  return { caFile: join(dir, 'ca.pem'), certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key') };
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

interface TokenServer {
  realm: string;
  server: Server;
  requests: TokenRequest[];
}

async function startTokenServer(
  dir: string,
  service: string,
  issuer: string,
  opts: NonNullable<TestRegistryOptions['tokenAuth']>,
): Promise<TokenServer & { certFile: string }> {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'token.key', '-out', 'token.pem', '-days', '2', '-subj', '/CN=podrun-test-token'], dir);
  const key = readFileSync(join(dir, 'token.key'), 'utf8');
  const certPem = readFileSync(join(dir, 'token.pem'), 'utf8');
  const der = Buffer.from(certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const requests: TokenRequest[] = [];
  /** A signed JWT granting `user` (or anonymous: pull only) the actions it asks for in `scopes`. */
  const issue = (user: string | undefined, scopes: string[]): { token: string; expiresIn: number; issuedAt: string } => {
    const access = scopes.flatMap((s) => {
      const [type, name, actions] = s.split(':');
      if (!type || !name || !actions) return [];
      const wanted = actions.split(',');
      return [{ type, name, actions: user ? wanted : wanted.filter((a) => a === 'pull') }];
    });
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = opts.expiresIn ?? 300;
    const header = { typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] };
    const claims = {
      iss: issuer,
      sub: user ?? '',
      aud: service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(input).sign(key);
    return { token: `${input}.${b64url(sig)}`, expiresIn, issuedAt: new Date(now * 1000).toISOString() };
  };
  /** OAuth2 (distribution's spec/auth/oauth): POST form; only grant_type=refresh_token is offered. */
  const oauth = (body: string, res: ServerResponse): void => {
    const form = new URLSearchParams(body);
    const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
    const grantType = form.get('grant_type') ?? undefined;
    const clientId = form.get('client_id') ?? undefined;
    const refreshToken = form.get('refresh_token') ?? '';
    const user = opts.refreshTokens?.[refreshToken];
    const record = { service: form.get('service'), scopes, method: 'POST', grantType, clientId };
    const refuse = (status: number, error: string) => {
      requests.push({ ...record, user, granted: false });
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error }));
    };
    if (grantType !== 'refresh_token') return refuse(400, 'unsupported_grant_type');
    if (!clientId || !form.get('service')) return refuse(400, 'invalid_request');
    if (user === undefined) return refuse(400, 'invalid_grant');
    const t = issue(user, scopes);
    requests.push({ ...record, user, granted: true });
    // OAuth2 answers access_token only (no "token"), so a client must read that field.
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: t.token, expires_in: t.expiresIn, issued_at: t.issuedAt, scope: scopes.join(' ') }));
  };
  const server = createHttpServer((req, res) => {
    if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const type = req.headers['content-type'] ?? '';
        if (!type.startsWith('application/x-www-form-urlencoded')) {
          requests.push({ service: null, scopes: [], method: 'POST', granted: false });
          res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_request"}');
          return;
        }
        oauth(Buffer.concat(chunks).toString('utf8'), res);
      });
      return;
    }
    const u = new URL(req.url ?? '/', 'http://x');
    const scopes = u.searchParams.getAll('scope');
    let user: string | undefined;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const [name, ...rest] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
      if (opts.users?.[name] !== undefined && opts.users[name] === rest.join(':')) user = name;
      else {
        requests.push({ service: u.searchParams.get('service'), scopes, user: name, granted: false });
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        return;
      }
    }
    if (!user && !opts.anonymousPull) {
      requests.push({ service: u.searchParams.get('service'), scopes, granted: false });
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"authentication required"}');
      return;
    }
    const t = issue(user, scopes);
    requests.push({ service: u.searchParams.get('service'), scopes, user, granted: true });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: t.token, access_token: t.token, expires_in: t.expiresIn, issued_at: t.issuedAt }));
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
  return { realm: `http://127.0.0.1:${port}/token`, server, requests, certFile: join(dir, 'token.pem') };
}

function probe(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const fn = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = fn(u, { method: 'GET', timeout: 1000, ...(u.protocol === 'https:' ? { rejectUnauthorized: false } : {}) }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Start docker-registry with the given options; resolves once /v2/ answers. */
export async function startTestRegistry(opts: TestRegistryOptions = {}): Promise<TestRegistry> {
  if (!existsSync(REGISTRY_BIN)) throw new Error(`${REGISTRY_BIN} is missing: apt-get install docker-registry`);
  const dir = await mkdtemp(join(tmpdir(), 'podrun-test-registry-'));
  let token: (TokenServer & { certFile: string }) | undefined;
  let child: ChildProcess | undefined;
  const cleanup = async () => {
    if (child?.pid && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      if (!(await waitExit(child, 5000))) {
        child.kill('SIGKILL');
        await waitExit(child, 5000);
      }
    }
    if (token) {
      const closed = new Promise<void>((r) => token!.server.close(() => r()));
      token.server.closeAllConnections();
      await closed;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const address = opts.address ?? '127.0.0.1';
    const lines = [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'health:',
      '  storagedriver:',
      '    enabled: false',
    ];
    let caFile: string | undefined;
    const tlsLines: string[] = [];
    if (opts.tls) {
      const ca = makeTestCa(dir);
      caFile = ca.caFile;
      tlsLines.push('  tls:', `    certificate: ${ca.certFile}`, `    key: ${ca.keyFile}`);
    }
    if (opts.basicAuth) {
      const entries = Object.entries(opts.basicAuth).map(([u, p]) => execFileSync('htpasswd', ['-Bbn', u, p], { encoding: 'utf8' }).trim());
      writeFileSync(join(dir, 'htpasswd'), entries.join('\n') + '\n');
      lines.push('auth:', '  htpasswd:', '    realm: podrun-test', `    path: ${join(dir, 'htpasswd')}`);
    } else if (opts.tokenAuth) {
      const service = 'podrun-test-registry';
      const issuer = 'podrun-test-issuer';
      token = await startTokenServer(dir, service, issuer, opts.tokenAuth);
      lines.push('auth:', '  token:', `    realm: ${token.realm}`, `    service: ${service}`, `    issuer: ${issuer}`, `    rootcertbundle: ${token.certFile}`);
    }
    const logFile = join(dir, 'registry.log');
    for (let tries = 0; ; tries++) {
      const port = await freePort(address);
      const config = [...lines, 'http:', `  addr: ${address}:${port}`, `  secret: ${randomBytes(16).toString('hex')}`, ...tlsLines].join('\n') + '\n';
      writeFileSync(join(dir, 'config.yml'), config);
      const fd = openSync(logFile, 'a');
      // With setpriv, the registry gets SIGKILL if the test process dies before stop() runs.
      const argv = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--', REGISTRY_BIN] : [REGISTRY_BIN];
      child = spawn(argv[0], [...argv.slice(1), 'serve', join(dir, 'config.yml')], { stdio: ['ignore', fd, fd] });
      closeSync(fd);
      const scheme = opts.tls ? 'https' : 'http';
      const url = `${scheme}://${address}:${port}`;
      const deadline = Date.now() + 15_000;
      let up = false;
      while (Date.now() < deadline && child.exitCode === null) {
        try {
          const status = await probe(`${url}/v2/`);
          if (status === 200 || status === 401) {
            up = true;
            break;
          }
        } catch {
          /* not yet */
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      const logTail = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n') : '');
      if (!up) {
        const exited = child.exitCode !== null;
        if (child.exitCode === null) {
          child.kill('SIGKILL');
          await waitExit(child, 5000);
        }
        if (exited && tries < 2 && /address already in use/.test(logTail())) continue;
        throw new Error(`docker-registry did not answer on ${url}/v2/ within 15 s:\n${logTail()}`);
      }
      const proc = child;
      return {
        url,
        host: `${address}:${port}`,
        port,
        caFile,
        tokenRealm: token?.realm,
        tokenRequests: token?.requests ?? [],
        dir,
        pid: proc.pid!,
        logTail,
        stop: cleanup,
      };
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
}
