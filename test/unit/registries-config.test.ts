import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseChallenges } from '../../src/image/registry/auth.js';
import { hostSettings, isLoopbackHost, loadRegistriesConfig } from '../../src/image/registry/config.js';
import { parseRegistriesConfig } from '../../src/image/registry/config-file.js';
import { dockerConfigCredentials, dockerConfigPath, parseDockerConfig } from '../../src/image/registry/credentials.js';
import { manifestMediaType } from '../../src/image/registry/client.js';
import { PodrunError } from '../../src/util/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'podrun-test-regcfg-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function configError(text: string): PodrunError {
  try {
    parseRegistriesConfig(text, '/etc/podrun/registries.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(PodrunError);
    expect((err as PodrunError).code).toBe('ECONFIG');
    return err as PodrunError;
  }
  throw new Error('expected an error');
}

describe('registries.yaml', () => {
  test('a missing file gives the defaults', async () => {
    expect(await loadRegistriesConfig(join(dir, 'nope.yaml'))).toEqual({ registries: {} });
  });

  test('an empty file gives the defaults', async () => {
    const p = join(dir, 'empty.yaml');
    await writeFile(p, '# nothing\n');
    expect((await loadRegistriesConfig(p)).registries).toEqual({});
  });

  test('mirrors, insecure and ca are read; hosts are normalized; trailing slashes dropped', async () => {
    const p = join(dir, 'ok.yaml');
    await writeFile(
      p,
      [
        'registries:',
        '  index.docker.io:',
        '    mirrors:',
        '      - http://127.0.0.1:5000/',
        '      - https://mirror.example/prefix',
        '  registry.lan:5443:',
        '    ca: /etc/podrun/lan-ca.pem',
        '  build.lan:',
        '    insecure: true',
        '  empty.lan:',
      ].join('\n'),
    );
    const c = await loadRegistriesConfig(p);
    expect(c.source).toBe(p);
    expect(c.registries['docker.io']).toEqual({ mirrors: ['http://127.0.0.1:5000', 'https://mirror.example/prefix'] });
    expect(c.registries['registry.lan:5443']).toEqual({ mirrors: [], ca: '/etc/podrun/lan-ca.pem' });
    expect(c.registries['build.lan']).toEqual({ mirrors: [], insecure: true });
    expect(c.registries['empty.lan']).toEqual({ mirrors: [] });
  });

  test('errors name the field path', () => {
    expect(configError('registries:\n  docker.io:\n    mirors: [http://x]\n').message).toBe(
      'Cannot load registry config "/etc/podrun/registries.yaml": registries."docker.io": Unrecognized key: "mirors" ("mirors")',
    );
    expect(configError('registries:\n  docker.io:\n    mirrors: ["ftp://x"]\n').message).toContain(
      'registries."docker.io".mirrors[0]: must be an http:// or https:// URL',
    );
    expect(configError('registries:\n  docker.io:\n    mirrors: ["http://u:p@x"]\n').message).toContain('without credentials');
    expect(configError('registries:\n  h:\n    insecure: "yes"\n').message).toMatch(/registries\.h\.insecure: .*boolean/);
    expect(configError('mirrors: []\n').message).toMatch(/\(top level\): Unrecognized key: "mirrors"/);
    expect(configError('registries:\n  "bad host/x":\n    insecure: true\n').message).toMatch(/registries\."bad host\/x"/);
    expect(configError('registries: [1\n').message).toMatch(/^Cannot read registry config/);
  });

  test('loopback hosts are insecure by default, unless a CA is given or insecure: false', () => {
    const c = parseRegistriesConfig('registries:\n  "127.0.0.1:6000":\n    ca: /x.pem\n  "127.0.0.1:7000":\n    insecure: false\n  far.example:\n    insecure: true\n');
    expect(hostSettings(c, '127.0.0.1:5000').insecure).toBe(true);
    expect(hostSettings(c, 'localhost:5000').insecure).toBe(true);
    expect(hostSettings(c, '[::1]:5000').insecure).toBe(true);
    expect(hostSettings(c, '127.0.0.1:6000')).toEqual({ insecure: false, ca: '/x.pem', mirrors: [] });
    expect(hostSettings(c, '127.0.0.1:7000').insecure).toBe(false);
    expect(hostSettings(c, 'far.example').insecure).toBe(true);
    expect(hostSettings(c, 'docker.io').insecure).toBe(false);
    expect(isLoopbackHost('127.5.6.7')).toBe(true);
    expect(isLoopbackHost('128.0.0.1:5000')).toBe(false);
    expect(isLoopbackHost('localhost.example.com')).toBe(false);
  });
});

describe('Docker config credentials', () => {
  test('auth (base64) and username/password; keys with scheme and path; docker.io aliases', () => {
    const m = parseDockerConfig(
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('hub:pa:ss').toString('base64') },
          '127.0.0.1:5000': { username: 'u', password: 'p' },
          'http://LAN.example:5443': { auth: Buffer.from('x:y').toString('base64') },
          'empty.example': {},
        },
      }),
      'config.json',
    );
    expect(m.get('docker.io')).toEqual({ username: 'hub', password: 'pa:ss' });
    expect(m.get('127.0.0.1:5000')).toEqual({ username: 'u', password: 'p' });
    expect(m.get('lan.example:5443')).toEqual({ username: 'x', password: 'y' });
    expect(m.has('empty.example')).toBe(false);
  });

  test('a broken auth field is an ECONFIG error naming the key', () => {
    expect(() => parseDockerConfig(JSON.stringify({ auths: { h: { auth: Buffer.from('nocolon').toString('base64') } } }), 'c.json')).toThrow(
      'auths."h".auth is not base64 of "user:password"',
    );
    expect(() => parseDockerConfig('{', 'c.json')).toThrow(/Cannot parse Docker config "c.json"/);
  });

  test('$DOCKER_CONFIG wins over ~/.docker; a missing file means no credentials', async () => {
    expect(dockerConfigPath({ DOCKER_CONFIG: '/x', HOME: '/home/u' })).toBe('/x/config.json');
    expect(dockerConfigPath({ HOME: '/home/u' })).toBe('/home/u/.docker/config.json');
    const p = join(dir, 'config.json');
    await writeFile(p, JSON.stringify({ auths: { 'registry-1.docker.io': { username: 'a', password: 'b' } } }));
    expect(await dockerConfigCredentials(p)('docker.io')).toEqual({ username: 'a', password: 'b' });
    expect(await dockerConfigCredentials(join(dir, 'missing.json'))('docker.io')).toBeUndefined();
  });
});

describe('WWW-Authenticate', () => {
  test('Bearer with quoted params, commas inside quotes', () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull,push' } },
    ]);
  });
  test('Basic, several challenges, tokens without quotes, escapes', () => {
    expect(parseChallenges('Basic realm="podrun-test", Bearer realm=http://x/t , service="a\\"b"')).toEqual([
      { scheme: 'basic', params: { realm: 'podrun-test' } },
      { scheme: 'bearer', params: { realm: 'http://x/t', service: 'a"b' } },
    ]);
    expect(parseChallenges(undefined)).toEqual([]);
  });
});

test('manifest media type: specific Content-Type wins, else the document says', () => {
  const oci = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }));
  expect(manifestMediaType('application/vnd.docker.distribution.manifest.v2+json; charset=utf-8', oci)).toBe('application/vnd.docker.distribution.manifest.v2+json');
  expect(manifestMediaType('application/json', oci)).toBe('application/vnd.oci.image.index.v1+json');
  expect(manifestMediaType(undefined, Buffer.from('{"schemaVersion":2,"layers":[]}'))).toBe('application/vnd.oci.image.manifest.v1+json');
  expect(manifestMediaType(undefined, Buffer.from('{"schemaVersion":2,"manifests":[]}'))).toBe('application/vnd.oci.image.index.v1+json');
});
