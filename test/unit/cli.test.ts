import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/podrun', import.meta.url));

describe('podrun CLI', () => {
  it('lists its commands in --help', () => {
    const out = execFileSync(bin, ['--help'], { encoding: 'utf8' });
    expect(out).toMatch(/Usage: podrun/);
    expect(out).toMatch(/--root DIR/);
  });

  it('refuses an unknown command with exit 2', () => {
    const r = spawnSync(bin, ['frobnicate'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });
});
