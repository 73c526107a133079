/** The pod's /etc files: resolv.conf built from the host's file as kubelet does, warnings as events. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeEtcFiles, type RuntimeContext } from '../../src/runtime/sandbox.js';
import type { PodState } from '../../src/runtime/state.js';
import type { PodrunEvent } from '../../src/util/events.js';
import { parseManifests } from '../../src/spec/parse.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

async function etc(spec: string, hostResolv: string): Promise<{ resolv: string; warnings: string[] }> {
  const plan = parseManifests(`apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n${spec}  containers: [{name: c, image: busybox}]\n`).pods[0]!;
  const events: PodrunEvent[] = [];
  const ctx = { paths: { root: dir, runRoot: dir, logRoot: dir }, events: (e: PodrunEvent) => events.push(e) } as unknown as RuntimeContext;
  const st = { plan, key: 'default_p', hostname: 'p', podIP: '10.181.0.9' } as unknown as PodState;
  await writeEtcFiles(ctx, st, hostResolv);
  const resolv = fs.readFileSync(path.join(dir, 'pods', 'default_p', 'etc', 'resolv.conf'), 'utf8');
  return { resolv, warnings: events.flatMap((e) => (e.type === 'warning' ? [e.message] : [])) };
}

const HOST = 'search example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.1\n';

describe('writeEtcFiles resolv.conf', () => {
  it('drops loopback nameservers for a pod network namespace, with a warning event', async () => {
    const r = await etc('', HOST);
    expect(r.resolv).toContain('nameserver 192.0.2.1');
    expect(r.resolv).not.toContain('127.0.0.53');
    expect(r.warnings.join('\n')).toMatch(/127\.0\.0\.53/);
  });

  it('keeps them for hostNetwork pods (the host loopback is reachable), no warning', async () => {
    const r = await etc('  hostNetwork: true\n', HOST);
    expect(r.resolv).toContain('nameserver 127.0.0.53');
    expect(r.warnings).toEqual([]);
  });

  it('dnsPolicy None uses dnsConfig only', async () => {
    const r = await etc('  dnsPolicy: None\n  dnsConfig: {nameservers: [192.0.2.7], searches: [a.test]}\n', HOST);
    expect(r.resolv).toBe('search a.test\nnameserver 192.0.2.7\n');
  });
});
