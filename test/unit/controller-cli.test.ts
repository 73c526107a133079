/** `podrun status` and `podrun wait` read the status the supervisor stores in state.json. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { PodController } from '../../src/runtime/controller/controller.js';
import { parseDuration, parseWaitFor } from '../../src/runtime/controller/stored.js';
import { FakeDriver, pod } from './controller-fakes.js';

const bin = fileURLToPath(new URL('../../bin/podrun', import.meta.url));
let runRoot = '';

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin, ['--run-root', runRoot, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function writeState(name: string, status: unknown, sandbox = 'Ready'): void {
  const dir = path.join(runRoot, 'pods', `default_${name}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ version: 1, key: `default_${name}`, name, namespace: 'default', sandbox, status }));
}

async function runningStatus(): Promise<unknown> {
  const d = new FakeDriver({});
  const c = new PodController(pod(), d, { clock: d.clock });
  c.start();
  await d.clock.advance(100);
  const st = c.status();
  await c.stop();
  return st;
}

beforeEach(() => {
  runRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-'));
});
afterEach(() => {
  fs.rmSync(runRoot, { recursive: true, force: true });
});

describe('podrun status', () => {
  it('prints the stored status as YAML and JSON', async () => {
    const st = await runningStatus();
    writeState('web', st);
    const y = await run(['status', 'web']);
    expect(y.code).toBe(0);
    expect(parse(y.stdout)).toEqual(st);
    expect(y.stdout).toContain('phase: Running');
    const j = await run(['status', '-o', 'json', 'default/web']);
    expect(JSON.parse(j.stdout)).toEqual(st);
  });

  it('names a missing pod', async () => {
    const r = await run(['status', 'nope']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Cannot show status of pod "default/nope": not found');
  });
});

describe('podrun wait', () => {
  it('returns 0 once the condition holds, 1 on timeout with kubectl\'s message', async () => {
    writeState('web', await runningStatus());
    const ok = await run(['wait', '--for=condition=Ready', '--timeout', '2s', 'web']);
    expect(ok).toMatchObject({ code: 0, stdout: 'pod/web condition met (Ready=True)\n' });
    const no = await run(['wait', '--for=condition=Ready=false', '--timeout', '300ms', 'web']);
    expect(no.code).toBe(1);
    expect(no.stderr).toContain('timed out waiting for the condition on pods/web');
  });

  it('--for=delete returns when the state is gone', async () => {
    writeState('web', await runningStatus());
    const waiting = run(['wait', '--for=delete', '--timeout', '5s', 'web']);
    setTimeout(() => fs.rmSync(path.join(runRoot, 'pods', 'default_web'), { recursive: true, force: true }), 300);
    expect((await waiting).code).toBe(0);
  });

  it('parses --for and --timeout like kubectl', () => {
    expect(parseWaitFor('condition=Ready')).toEqual({ kind: 'condition', type: 'Ready', value: 'True' });
    expect(parseWaitFor('phase=Succeeded')).toEqual({ kind: 'phase', phase: 'Succeeded' });
    expect(() => parseWaitFor('ready')).toThrow(/Cannot wait for "ready"/);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('2')).toBe(2000);
    expect(() => parseDuration('soon')).toThrow(/Cannot parse duration "soon"/);
  });
});
