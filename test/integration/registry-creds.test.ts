/**
 * Credential helpers against the real registry: Debian's docker-registry with Basic auth
 * (htpasswd), and a real `docker-credential-<name>` program (a sh script in a temp dir put on
 * PATH) named by credsStore / credHelpers in $DOCKER_CONFIG/config.json. Both the library
 * (openRemote with its default credentials) and `podrun pull` take the credentials from it.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

/** A helper program speaking the protocol: logs "get|<url>", answers alice's password for the test registry only. */
function writeHelper(name: string, host: string, password: string): void {
  const p = join(helperBin, `docker-credential-${name}`);
  writeFileSync(
    p,
    `#!/bin/sh
read -r url
printf '%s|%s\\n' "$1" "$url" >> "${join(dir, `${name}.log`)}"
if [ "$url" = "${host}" ]; then
  printf '{"ServerURL":"%s","Username":"alice","Secret":"%s"}\\n' "$url" "${password}"
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

async function manifestDigest(): Promise<string> {
  const r = openRemote(parseReference(`${reg.host}/private/busybox:1`), { config: { registries: {} } });
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
