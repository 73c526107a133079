/** `podrun doctor` (the CLI): CNI checks skipped without networking; non-zero exit with hints. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/pod.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function doctor(env: Record<string, string>) {
  return spawnSync(BIN, ['--run-root', path.join(dir, 'run'), 'doctor'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
}

const haveCni = ['/usr/lib/cni', '/opt/cni/bin', '/usr/libexec/cni'].some((d) => fs.existsSync(path.join(d, 'bridge')));

describe('podrun doctor', () => {
  it('skips the CNI checks when networking is disabled', () => {
    const r = doctor({ PODRUN_NETWORK: 'none', PODRUN_CNI_CONF_DIR: path.join(dir, 'cni') });
    expect(r.stdout).toMatch(/^ok +CNI +skipped: networking is disabled/m);
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it.skipIf(!haveCni)('checks the CNI plugins with networking on', () => {
    const r = doctor({ PODRUN_NETWORK: '', PODRUN_CNI_CONF_DIR: path.join(dir, 'cni') });
    expect(r.stdout).toMatch(/^ok +CNI +plugins and iptables present/m);
  });

  it('exits 1 with a hint per problem when something essential is missing', () => {
    const r = doctor({ PODRUN_NETWORK: 'none', PODRUN_SHIM: path.join(dir, 'no-shim') });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^FAIL shim .*no-shim.*\n +hint: .+$/m);
    expect(r.stderr).toContain('1 check failed');
  });
});
