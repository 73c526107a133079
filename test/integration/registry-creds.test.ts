/**
 * Credential helpers against the real registry: Debian's docker-registry with Basic auth
 * (htpasswd), and a real `docker-credential-<name>` program (a sh script in a temp dir put on
 * PATH) named by credsStore / credHelpers in $DOCKER_CONFIG/config.json. Both the library
 * (openRemote with its default credentials) and `podrun pull` take the credentials from it.
 * A helper runs only after a 401, once per remote and host; an anonymous pull runs none. A helper
 * answering Username "<token>" gives an identity token, exchanged at the token service of a
 * `auth: token` registry by the OAuth2 refresh_token grant.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { buffer } from 'node:stream/consumers';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { parseReference } from '../../src/image/reference.js';
import { clearAuthCache, openRemote, staticCredentials } from '../../src/image/registry/index.js';
import { PodrunError } from '../../src/util/errors.js';
import { busyboxImage, pushBusybox } from '../helpers/images.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(repo, 'bin/podrun');

let reg: TestRegistry;
let dir: string;
let helperBin: string;
let digest: string;

function distStale(): boolean {
  let built = 0;
  try {
    built = statSync(join(repo, 'dist/cli/main.js')).mtimeMs;
  } catch {
    return true;
  }
  const newer = (d: string): boolean =>
    readdirSync(d, { withFileTypes: true }).some((e) => (e.isDirectory() ? newer(join(d, e.name)) : e.name.endsWith('.ts') && statSync(join(d, e.name)).mtimeMs > built));
  return newer(join(repo, 'src'));
}

/** A helper program speaking the protocol: logs "get|<url>", answers `username` + `secret` for `host` only. */
function writeHelper(name: string, host: string, secret: string, username = 'alice'): void {
  const p = join(helperBin, `docker-credential-${name}`);
  writeFileSync(
    p,
    `#!/bin/sh
read -r url
printf '%s|%s\\n' "$1" "$url" >> "${join(dir, `${name}.log`)}"
if [ "$url" = "${host}" ]; then
  printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\\n' "$url" "${username}" "${secret}"
  exit 0
fi
echo "credentials not found in native keychain"
exit 1
`,
  );
  chmodSync(p, 0o755);
}

function dockerConfig(name: string, doc: unknown): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'config.json'), JSON.stringify(doc));
  return d;
}

const savedEnv = { PATH: process.env.PATH, DOCKER_CONFIG: process.env.DOCKER_CONFIG };
function useEnv(dockerConfigDir: string): void {
  process.env.DOCKER_CONFIG = dockerConfigDir;
  process.env.PATH = `${helperBin}:${savedEnv.PATH}`;
}

beforeAll(async () => {
  if (distStale()) spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repo, stdio: 'ignore' });
  dir = mkdtempSync(join(tmpdir(), 'podrun-test-creds-'));
  helperBin = join(dir, 'bin');
  mkdirSync(helperBin);
  reg = await startTestRegistry({ basicAuth: { alice: 'wonder-land' } });
  await pushBusybox(reg.host, 'private/busybox:1', { credentials: staticCredentials({ [reg.host]: { username: 'alice', password: 'wonder-land' } }) });
  digest = (await busyboxImage()).descriptor.digest;
  writeHelper('podrun-test-good', reg.host, 'wonder-land');
  writeHelper('podrun-test-wrong', reg.host, 'not-the-password');
}, 120_000);

afterEach(() => {
  process.env.PATH = savedEnv.PATH;
  if (savedEnv.DOCKER_CONFIG === undefined) delete process.env.DOCKER_CONFIG;
  else process.env.DOCKER_CONFIG = savedEnv.DOCKER_CONFIG;
  clearAuthCache();
});

afterAll(async () => {
  await reg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function manifestDigest(ref = `${reg.host}/private/busybox:1`): Promise<string> {
  const r = openRemote(parseReference(ref), { config: { registries: {} } });
  try {
    return (await r.getManifest('1')).digest;
  } finally {
    await r.close();
  }
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

describe('credential helpers (Basic auth registry)', () => {
  test('credsStore: the helper gets "get" and the bare host:port on stdin, and its credentials pull', async () => {
    useEnv(dockerConfig('store', { credsStore: 'podrun-test-good' }));
    expect(await manifestDigest()).toBe(digest);
    expect(readFileSync(join(dir, 'podrun-test-good.log'), 'utf8')).toContain(`get|${reg.host}\n`);
  });

  test('credHelpers[host] wins over credsStore and auths', async () => {
    useEnv(
      dockerConfig('helpers', {
        auths: { [reg.host]: { auth: Buffer.from('alice:stale-password').toString('base64') } },
        credsStore: 'podrun-test-wrong',
        credHelpers: { [reg.host]: 'podrun-test-good' },
      }),
    );
    expect(await manifestDigest()).toBe(digest);
  });

  test('credsStore wins over auths (wrong password from the helper fails, naming the registry)', async () => {
    useEnv(dockerConfig('store-wrong', { auths: { [reg.host]: { auth: Buffer.from('alice:wonder-land').toString('base64') } }, credsStore: 'podrun-test-wrong' }));
    const err = await rejection(manifestDigest());
    expect(err.code).toBe('EAUTH');
    expect(err.message).toContain(`"${reg.host}/private/busybox": authentication failed (HTTP 401`);
  });

  test('a helper without credentials for the host means anonymous', async () => {
    useEnv(dockerConfig('store-other', { credHelpers: { [reg.host]: 'podrun-test-good-elsewhere' } }));
    writeHelper('podrun-test-good-elsewhere', 'other.example', 'x');
    const err = await rejection(manifestDigest());
    expect(err.message).toBe(`Cannot authenticate to "${reg.host}": it requires a user name and password`);
  });

  test('a helper missing from PATH is a clear error naming it', async () => {
    useEnv(dockerConfig('store-missing', { credsStore: 'podrun-test-absent' }));
    const err = await rejection(manifestDigest());
    expect(err.code).toBe('EAUTH');
    expect(err.message).toBe(`Cannot get credentials for "${reg.host}" from credential helper "docker-credential-podrun-test-absent": "docker-credential-podrun-test-absent" is not on PATH`);
  });

  test('podrun pull takes the credentials from the helper', () => {
    const cfg = dockerConfig('cli', { credHelpers: { [reg.host]: 'podrun-test-good' } });
    const root = join(dir, 'root');
    writeFileSync(join(dir, 'registries.yaml'), 'registries: {}\n');
    const env = { ...process.env, DOCKER_CONFIG: cfg, PATH: `${helperBin}:${savedEnv.PATH}` };
    const r = spawnSync(BIN, ['--root', root, '--registry-config', join(dir, 'registries.yaml'), 'pull', `${reg.host}/private/busybox:1`], { encoding: 'utf8', env, timeout: 60_000 });
    expect(r.stderr + r.stdout).toContain(digest);
    expect(r.status).toBe(0);
    // Without the helper on PATH the same pull fails and says which helper is missing.
    const r2 = spawnSync(BIN, ['--root', join(dir, 'root2'), '--registry-config', join(dir, 'registries.yaml'), 'pull', `${reg.host}/private/busybox:1`], {
      encoding: 'utf8',
      env: { ...env, PATH: savedEnv.PATH },
      timeout: 60_000,
    });
    expect(r2.status).not.toBe(0);
    expect(r2.stderr).toContain('"docker-credential-podrun-test-good" is not on PATH');
  });
});

function helperCalls(name: string): string[] {
  try {
    return readFileSync(join(dir, `${name}.log`), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

describe('when helpers run', () => {
  test('once per remote and host, even for concurrent requests answered 401', async () => {
    writeHelper('podrun-test-count', reg.host, 'wonder-land');
    useEnv(dockerConfig('count', { credsStore: 'podrun-test-count' }));
    const r = openRemote(parseReference(`${reg.host}/private/busybox:1`), { config: { registries: {} } });
    try {
      const m = await r.getManifest('1');
      const layers = JSON.parse(m.bytes.toString('utf8')).layers as { digest: string; size: number; mediaType: string }[];
      clearAuthCache();
      // Four requests at once, each answered 401 first: one helper run between them.
      await Promise.all([r.getManifest('1'), r.getManifest(m.digest), ...layers.map(async (l) => buffer(await r.getBlob(l)))]);
    } finally {
      await r.close();
    }
    expect(helperCalls('podrun-test-count')).toEqual([`get|${reg.host}`]);
  });

  test('an origin this process saw challenge: the next remote looks up first and meets no 401', async () => {
    writeHelper('podrun-test-seen', reg.host, 'wonder-land');
    useEnv(dockerConfig('seen', { credsStore: 'podrun-test-seen' }));
    expect(await manifestDigest()).toBe(digest);
    const steps: string[] = [];
    const r = openRemote(parseReference(`${reg.host}/private/busybox:1`), {
      config: { registries: {} },
      events: (e) => {
        if (e.type === 'trace' && e.area === 'http') steps.push(e.step);
      },
    });
    try {
      expect((await r.getManifest('1')).digest).toBe(digest);
    } finally {
      await r.close();
    }
    expect(steps.filter((s) => s.includes('/manifests/'))).toEqual([`GET http://${reg.host}/v2/private/busybox/manifests/1 -> 200`]);
    expect(helperCalls('podrun-test-seen')).toEqual([`get|${reg.host}`, `get|${reg.host}`]);
  });

  test('an anonymous pull (no 401) runs no helper and reads no config', async () => {
    const open = await startTestRegistry();
    try {
      await pushBusybox(open.host, 'library/busybox:1', { credentials: () => undefined });
      writeHelper('podrun-test-anon', open.host, 'x');
      const cfg = dockerConfig('anon', { credsStore: 'podrun-test-anon' });
      useEnv(cfg);
      expect(await manifestDigest(`${open.host}/library/busybox:1`)).toBe(digest);
      expect(helperCalls('podrun-test-anon')).toEqual([]);
      // Not even read: a broken config file does not matter to an anonymous pull.
      writeFileSync(join(cfg, 'config.json'), '{broken');
      expect(await manifestDigest(`${open.host}/library/busybox:1`)).toBe(digest);
    } finally {
      await open.stop();
    }
  });
});

describe('each host its own credentials', () => {
  test('a mirror gets what the helper answers for the mirror host, asked only when the mirror challenges', async () => {
    const mirror = await startTestRegistry({ basicAuth: { mia: 'mirror-pw' } });
    try {
      await pushBusybox(mirror.host, 'private/busybox:1', { credentials: staticCredentials({ [mirror.host]: { username: 'mia', password: 'mirror-pw' } }) });
      const p = join(helperBin, 'docker-credential-podrun-test-perhost');
      writeFileSync(
        p,
        `#!/bin/sh
read -r url
echo "get|$url" >> "${join(dir, 'podrun-test-perhost.log')}"
case "$url" in
  ${mirror.host}) printf '{"ServerURL":"%s","Username":"mia","Secret":"mirror-pw"}' "$url" ;;
  ${reg.host}) printf '{"ServerURL":"%s","Username":"alice","Secret":"wonder-land"}' "$url" ;;
  *) echo "credentials not found"; exit 1 ;;
esac
`,
      );
      chmodSync(p, 0o755);
      useEnv(dockerConfig('perhost', { credsStore: 'podrun-test-perhost' }));
      const warnings: string[] = [];
      const r = openRemote(parseReference(`${reg.host}/private/busybox:1`), {
        config: { registries: { [reg.host]: { mirrors: [`http://${mirror.host}`] } } },
        events: (e) => {
          if (e.type === 'warning') warnings.push(e.message);
        },
      });
      try {
        expect((await r.getManifest('1')).digest).toBe(digest);
      } finally {
        await r.close();
      }
      // Served by the mirror with mia's credentials (alice's would be refused there and fall back).
      expect(warnings).toEqual([]);
      expect(helperCalls('podrun-test-perhost')).toEqual([`get|${mirror.host}`]);
    } finally {
      await mirror.stop();
    }
  });
});

describe('identity tokens (helper answers Username "<token>")', () => {
  let tok: TestRegistry;
  const REFRESH = `podrun-test-rt-${Math.random().toString(36).slice(2)}`;
  beforeAll(async () => {
    tok = await startTestRegistry({ tokenAuth: { users: { bob: 'builder' }, refreshTokens: { [REFRESH]: 'carol' } } });
    await pushBusybox(tok.host, 'team/busybox:1', { credentials: staticCredentials({ [tok.host]: { username: 'bob', password: 'builder' } }) });
    writeHelper('podrun-test-idtoken', tok.host, REFRESH, '<token>');
    writeHelper('podrun-test-badtoken', tok.host, 'podrun-test-rt-revoked', '<token>');
  }, 60_000);
  afterAll(async () => tok?.stop());

  test('the token is exchanged by POST grant_type=refresh_token and the pull works', async () => {
    useEnv(dockerConfig('idtoken', { credHelpers: { [tok.host]: 'podrun-test-idtoken' } }));
    const before = tok.tokenRequests.length;
    expect(await manifestDigest(`${tok.host}/team/busybox:1`)).toBe(digest);
    expect(tok.tokenRequests.slice(before)).toEqual([
      {
        method: 'POST',
        grantType: 'refresh_token',
        clientId: 'podrun',
        service: 'podrun-test-registry',
        scopes: ['repository:team/busybox:pull'],
        user: 'carol',
        granted: true,
      },
    ]);
  });

  test('identitytoken in config.json auths works the same way', async () => {
    useEnv(dockerConfig('idtoken-auths', { auths: { [tok.host]: { auth: Buffer.from('carol:').toString('base64'), identitytoken: REFRESH } } }));
    expect(await manifestDigest(`${tok.host}/team/busybox:1`)).toBe(digest);
  });

  test('a refused identity token is EAUTH naming the registry and the token service', async () => {
    useEnv(dockerConfig('badtoken', { credsStore: 'podrun-test-badtoken' }));
    const err = await rejection(manifestDigest(`${tok.host}/team/busybox:1`));
    expect(err.code).toBe('EAUTH');
    expect(err.message).toBe(`Cannot log in to "${tok.host}" with an identity token: the token service "${tok.tokenRealm}" refused it (HTTP 400 invalid_grant)`);
  });

  test('a Basic-auth registry with only an identity token: a clear error', async () => {
    writeHelper('podrun-test-idtoken-basic', reg.host, REFRESH, '<token>');
    useEnv(dockerConfig('idtoken-basic', { credsStore: 'podrun-test-idtoken-basic' }));
    const err = await rejection(manifestDigest());
    expect(err.code).toBe('EAUTH');
    expect(err.message).toBe(`Cannot authenticate to "${reg.host}": it requires a user name and password (Basic auth), and its credentials are only an identity token`);
  });

  test('podrun pull with an identity-token helper pulls the image', async () => {
    const cfg = dockerConfig('idtoken-cli', { credsStore: 'podrun-test-idtoken' });
    writeFileSync(join(dir, 'registries.yaml'), 'registries: {}\n');
    const env = { ...process.env, DOCKER_CONFIG: cfg, PATH: `${helperBin}:${savedEnv.PATH}` };
    const before = tok.tokenRequests.length;
    // Not spawnSync: the token service runs in this process and must keep answering.
    const child = spawn(BIN, ['--root', join(dir, 'root-idtoken'), '--registry-config', join(dir, 'registries.yaml'), 'pull', `${tok.host}/team/busybox:1`], { env });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(output).toContain(digest);
    expect(status).toBe(0);
    expect(tok.tokenRequests.slice(before).every((t) => t.method === 'POST' && t.user === 'carol' && t.granted)).toBe(true);
    expect(tok.tokenRequests.length).toBeGreaterThan(before);
  });
});

describe('identity tokens against token services that do not take them', () => {
  /** A stand-in registry whose /v2/ paths challenge Bearer with a realm on this server; /token answers `token`. */
  async function fakeRegistry(token: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{ host: string; posts: string[]; close: () => Promise<void> }> {
    const posts: string[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (req.url?.startsWith('/token')) {
          posts.push(`${req.method} ${req.url} ${body}`);
          return token(req, res, body);
        }
        const host = req.headers.host;
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="podrun-test-fake"`, 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    return {
      host: `127.0.0.1:${port}`,
      posts,
      close: () => {
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeAllConnections();
        return closed;
      },
    };
  }

  test('a token service without OAuth2 (404 to the POST) is a clear EAUTH', async () => {
    const fake = await fakeRegistry((_req, res) => res.writeHead(404).end());
    try {
      const r = openRemote(parseReference(`${fake.host}/team/app:1`), {
        config: { registries: {} },
        credentials: staticCredentials({ [fake.host]: { username: '', password: '', identityToken: 'podrun-test-rt-1' } }),
      });
      const err = await rejection(r.getManifest('1').finally(() => r.close()));
      expect(err.message).toBe(`Cannot log in to "${fake.host}" with an identity token: the token service "http://${fake.host}/token" does not offer OAuth2 (POST answered HTTP 404)`);
      expect(fake.posts).toHaveLength(1);
      expect(fake.posts[0]).toMatch(/^POST \/token /);
      const form = new URLSearchParams(fake.posts[0].split(' ')[2]);
      expect(Object.fromEntries(form)).toEqual({
        grant_type: 'refresh_token',
        refresh_token: 'podrun-test-rt-1',
        client_id: 'podrun',
        service: 'podrun-test-fake',
        scope: 'repository:team/app:pull',
      });
    } finally {
      await fake.close();
    }
  });

  test('the POST carrying the token is not redirected', async () => {
    const fake = await fakeRegistry((_req, res) => res.writeHead(307, { location: '/token-elsewhere' }).end());
    try {
      const r = openRemote(parseReference(`${fake.host}/team/app:1`), {
        config: { registries: {} },
        credentials: staticCredentials({ [fake.host]: { username: '', password: '', identityToken: 'podrun-test-rt-2' } }),
      });
      const err = await rejection(r.getManifest('1').finally(() => r.close()));
      expect(err.code).toBe('EAUTH');
      expect(err.message).toContain('HTTP 307');
      expect(fake.posts.map((p) => p.split(' ')[1])).toEqual(['/token']);
    } finally {
      await fake.close();
    }
  });
});
