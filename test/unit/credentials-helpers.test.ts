/**
 * Docker config credentials with credential helpers: credHelpers[host] wins, else credsStore,
 * else auths (fixture config files, a recording fake helper); and the helper protocol against
 * real little helper programs in a temp dir on PATH (server URL on stdin, "credentials not
 * found", failures, timeout, identity tokens, the event loop kept running while a helper works).
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { helperServerUrl, runCredentialHelper } from '../../src/image/registry/cred-helper.js';
import {
  dockerConfigCredentials,
  helperFor,
  lookupOncePerHost,
  parseDockerConfig,
  parseDockerConfigFile,
  type Credentials,
} from '../../src/image/registry/credentials.js';
import { PodrunError } from '../../src/util/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'podrun-test-creds-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

async function configFile(name: string, doc: unknown): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, JSON.stringify(doc));
  return p;
}

/** A fake helper runner that records (helper, host) and answers from a table. */
function recorder(answers: Record<string, Credentials | undefined>) {
  const calls: string[] = [];
  const runHelper = (name: string, host: string): Credentials | undefined => {
    calls.push(`${name} ${host}`);
    return answers[`${name} ${host}`];
  };
  return { calls, runHelper };
}

describe('which source answers for a host', () => {
  const doc = {
    auths: {
      'https://index.docker.io/v1/': { auth: b64('hub-file:pw') },
      'a.example': { auth: b64('a-file:pw') },
      'b.example:5000': { username: 'b-file', password: 'pw' },
    },
    credsStore: 'store',
    credHelpers: { 'a.example': 'ahelper', 'https://index.docker.io/v1/': 'hubhelper' },
  };

  test('credHelpers[host] wins over credsStore and auths; credsStore over auths', async () => {
    const p = await configFile('all.json', doc);
    const { calls, runHelper } = recorder({
      'ahelper a.example': { username: 'a-helper', password: 's1' },
      'store b.example:5000': { username: 'b-store', password: 's2' },
      'hubhelper docker.io': { username: 'hub-helper', password: 's3' },
    });
    const look = dockerConfigCredentials(p, { runHelper });
    expect(await look('a.example')).toEqual({ username: 'a-helper', password: 's1' });
    expect(await look('b.example:5000')).toEqual({ username: 'b-store', password: 's2' });
    expect(await look('registry-1.docker.io')).toEqual({ username: 'hub-helper', password: 's3' });
    // A helper saying "not found" means anonymous; auths is not consulted (as the docker CLI does).
    expect(await look('c.example')).toBeUndefined();
    expect(calls).toEqual(['ahelper a.example', 'store b.example:5000', 'hubhelper docker.io', 'store c.example']);
  });

  test('each host asks its helper once per lookup', async () => {
    const p = await configFile('once.json', doc);
    const { calls, runHelper } = recorder({ 'ahelper a.example': { username: 'u', password: 'p' } });
    const look = dockerConfigCredentials(p, { runHelper });
    await Promise.all([look('a.example'), look('A.example'), look('a.example')]);
    expect(calls).toEqual(['ahelper a.example']);
  });

  test('the config file is read on the first lookup, not when the lookup is made', async () => {
    const p = join(dir, 'later.json');
    const { calls, runHelper } = recorder({ 'ahelper a.example': { username: 'u', password: 'p' } });
    const look = dockerConfigCredentials(p, { runHelper });
    await writeFile(p, JSON.stringify(doc));
    expect(await look('a.example')).toEqual({ username: 'u', password: 'p' });
    expect(calls).toEqual(['ahelper a.example']);
    // A malformed file fails the lookup (the first 401), not the construction of a remote.
    await writeFile(join(dir, 'bad.json'), '{nope');
    const bad = dockerConfigCredentials(join(dir, 'bad.json'), { runHelper });
    expect(() => bad('a.example')).toThrow('Cannot parse Docker config');
  });

  test('lookupOncePerHost asks once per host, concurrent callers share the answer, a failure too', async () => {
    const asked: string[] = [];
    const once = lookupOncePerHost(async (host) => {
      asked.push(host);
      await new Promise((r) => setTimeout(r, 20));
      if (host === 'bad.example') throw new Error('helper broke');
      return { username: host, password: 'p' };
    });
    const [a, b] = await Promise.all([once('a.example'), once('A.EXAMPLE')]);
    expect(a).toEqual({ username: 'a.example', password: 'p' });
    expect(b).toBe(a);
    await expect(once('bad.example')).rejects.toThrow('helper broke');
    await expect(once('bad.example')).rejects.toThrow('helper broke');
    expect(asked).toEqual(['a.example', 'bad.example']);
    // A synchronous lookup that throws becomes a rejection, not a throw at the call.
    const sync = lookupOncePerHost(() => {
      throw new Error('sync');
    });
    await expect(sync('x')).rejects.toThrow('sync');
  });

  test('without credsStore, hosts with no credHelpers entry use auths', async () => {
    const p = await configFile('nostore.json', { ...doc, credsStore: undefined });
    const { calls, runHelper } = recorder({});
    const look = dockerConfigCredentials(p, { runHelper });
    expect(await look('b.example:5000')).toEqual({ username: 'b-file', password: 'pw' });
    expect(await look('nowhere.example')).toBeUndefined();
    expect(calls).toEqual([]);
    expect(await look('a.example')).toBeUndefined();
    expect(calls).toEqual(['ahelper a.example']);
  });

  test('auths identitytoken: an identity token, with the user name from "auth" when present', () => {
    const auths = parseDockerConfig(
      JSON.stringify({ auths: { 'reg.example': { auth: b64('bob:'), identitytoken: 'rt-1' }, 'only.example': { identitytoken: 'rt-2' } } }),
      'c.json',
    );
    expect(auths.get('reg.example')).toEqual({ username: 'bob', password: '', identityToken: 'rt-1' });
    expect(auths.get('only.example')).toEqual({ username: '', password: '', identityToken: 'rt-2' });
  });

  test('helperFor normalises keys and hosts like auths keys', () => {
    const c = parseDockerConfigFile(JSON.stringify({ credHelpers: { 'https://GCR.io/': 'gcr', 'index.docker.io': 'hub' } }), 'c.json');
    expect(helperFor(c, 'gcr.io')).toBe('gcr');
    expect(helperFor(c, 'docker.io')).toBe('hub');
    expect(helperFor(c, 'quay.io')).toBeUndefined();
    expect(parseDockerConfigFile('{"credsStore":""}', 'c.json').credsStore).toBeUndefined();
  });

  test('malformed credsStore / credHelpers are ECONFIG errors naming the field', () => {
    expect(() => parseDockerConfigFile('{"credsStore":1}', 'c.json')).toThrow('Cannot parse Docker config "c.json": credsStore is not a string');
    expect(() => parseDockerConfigFile('{"credHelpers":[]}', 'c.json')).toThrow('Cannot parse Docker config "c.json": credHelpers is not an object');
    expect(() => parseDockerConfigFile('{"credHelpers":{"h":true}}', 'c.json')).toThrow('Cannot parse Docker config "c.json": credHelpers."h" is not a string');
  });
});

describe('the helper protocol, with real helper programs on PATH', () => {
  let bin: string;
  let env: NodeJS.ProcessEnv;
  const log = () => join(dir, 'helper-stdin.log');

  async function helper(name: string, script: string): Promise<void> {
    const p = join(bin, `docker-credential-${name}`);
    await writeFile(p, `#!/bin/sh\n${script}\n`);
    await chmod(p, 0o755);
  }

  beforeAll(async () => {
    bin = join(dir, 'bin');
    await (await import('node:fs/promises')).mkdir(bin);
    env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, HELPER_LOG: log() };
    // Records its arguments and stdin, answers for one server only.
    await helper(
      'good',
      `read -r url; printf '%s|%s\\n' "$*" "$url" >> "$HELPER_LOG"
case "$url" in
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"hubuser","Secret":"hubpass"}' "$url" ;;
  reg.example:5000) printf '{"ServerURL":"%s","Username":"alice","Secret":"wonder:land"}' "$url" ;;
  empty.example) printf '{"ServerURL":"%s","Username":"","Secret":""}' "$url" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac`,
    );
    await helper('broken', 'echo "keychain is locked" >&2; exit 3');
    await helper('notjson', 'echo hello');
    await helper('slow', 'exec sleep 5');
    await helper('token', `read -r url; printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh-xyz"}' "$url"`);
    await helper('eatall', 'cat > /dev/null; echo "credentials not found"; exit 1');
    await helper('emptytoken', `printf '{"ServerURL":"x","Username":"<token>","Secret":""}'`);
    await helper('sleepy', `read -r url; sleep 0.5; printf '{"ServerURL":"%s","Username":"late","Secret":"answer"}' "$url"`);
    // Leaves a grandchild holding stdout open; records its pid so the test can end it.
    await helper('forker', `sleep 30 & echo $! > "${join(dir, 'forker.pid')}"; wait`);
  });

  test('server URL on stdin: Docker Hub index URL, else host[:port]; argument "get"', async () => {
    expect(helperServerUrl('docker.io')).toBe('https://index.docker.io/v1/');
    expect(await runCredentialHelper('good', 'docker.io', { env })).toEqual({ username: 'hubuser', password: 'hubpass' });
    expect(await runCredentialHelper('good', 'reg.example:5000', { env })).toEqual({ username: 'alice', password: 'wonder:land' });
    expect((await readFile(log(), 'utf8')).trim().split('\n')).toEqual(['get|https://index.docker.io/v1/', 'get|reg.example:5000']);
  });

  test('"credentials not found" and empty answers mean anonymous', async () => {
    expect(await runCredentialHelper('good', 'other.example', { env })).toBeUndefined();
    expect(await runCredentialHelper('good', 'empty.example', { env })).toBeUndefined();
  });

  test('stdin is closed after the URL (a helper reading to EOF returns)', async () => {
    const t0 = Date.now();
    expect(await runCredentialHelper('eatall', 'x.example', { env, timeoutMs: 5000 })).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  async function failure(p: Promise<unknown>): Promise<PodrunError> {
    try {
      await p;
    } catch (err) {
      expect(err).toBeInstanceOf(PodrunError);
      return err as PodrunError;
    }
    throw new Error('expected an error');
  }

  test('failures are EAUTH errors naming the helper and the host', async () => {
    let e = await failure(runCredentialHelper('broken', 'reg.example', { env }));
    expect(e.code).toBe('EAUTH');
    expect(e.message).toBe('Cannot get credentials for "reg.example" from credential helper "docker-credential-broken": exit status 3: "keychain is locked"');
    e = await failure(runCredentialHelper('missing', 'reg.example', { env }));
    expect(e.message).toBe('Cannot get credentials for "reg.example" from credential helper "docker-credential-missing": "docker-credential-missing" is not on PATH');
    expect(e.hint).toContain('credsStore/credHelpers');
    e = await failure(runCredentialHelper('notjson', 'reg.example', { env }));
    expect(e.message).toBe('Cannot get credentials for "reg.example" from credential helper "docker-credential-notjson": its output is not JSON ("hello")');
    e = await failure(runCredentialHelper('../evil', 'reg.example', { env }));
    expect(e.message).toContain('"../evil" is not a valid helper name');
  });

  test('a helper that hangs is killed at the timeout', async () => {
    const t0 = Date.now();
    const e = await failure(runCredentialHelper('slow', 'reg.example', { env, timeoutMs: 300 }));
    expect(e.message).toBe('Cannot get credentials for "reg.example" from credential helper "docker-credential-slow": no answer within 300 ms (killed)');
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  test('a helper that forks a child holding its output open still ends at the timeout', async () => {
    const t0 = Date.now();
    try {
      const e = await failure(runCredentialHelper('forker', 'reg.example', { env, timeoutMs: 300 }));
      expect(e.message).toContain('no answer within 300 ms (killed)');
      expect(Date.now() - t0).toBeLessThan(1500);
    } finally {
      // The grandchild (sleep) is ours to end: it wrote its pid.
      const pid = Number((await readFile(join(dir, 'forker.pid'), 'utf8').catch(() => '')).trim());
      if (pid > 0) process.kill(pid, 'SIGKILL');
    }
  });

  test('the event loop keeps running while a helper works', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 20);
    try {
      const t0 = Date.now();
      expect(await runCredentialHelper('sleepy', 'reg.example:5000', { env })).toEqual({ username: 'late', password: 'answer' });
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(400);
      // A blocking spawnSync would let no timer fire; here they fire all along.
      expect(ticks).toBeGreaterThanOrEqual(Math.floor(took / 20 / 2));
    } finally {
      clearInterval(timer);
    }
  });

  test('an identity token (Username "<token>") comes back as identityToken', async () => {
    expect(await runCredentialHelper('token', 'docker.io', { env })).toEqual({ username: '', password: '', identityToken: 'refresh-xyz' });
    const e = await failure(runCredentialHelper('emptytoken', 'docker.io', { env }));
    expect(e.message).toContain('it returned an identity token (Username "<token>") with an empty Secret');
  });

  test('through the config file: credsStore runs the real program', async () => {
    const p = await configFile('real.json', { credsStore: 'good', auths: { 'reg.example:5000': { auth: b64('file:pw') } } });
    const look = dockerConfigCredentials(p, { env });
    expect(await look('reg.example:5000')).toEqual({ username: 'alice', password: 'wonder:land' });
    expect(await look('index.docker.io')).toEqual({ username: 'hubuser', password: 'hubpass' });
    expect(await look('unknown.example')).toBeUndefined();
  });
});
