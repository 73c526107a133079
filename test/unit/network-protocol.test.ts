/**
 * The CNI protocol as podrun speaks it, against recording fake plugins (shell scripts): which
 * plugin runs when, with which CNI_* variables and which stdin; the cache's life cycle; undo of a
 * half-done ADD; DEL when the namespace is gone. No root needed: /proc/self/ns/net is the netns.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setupPodNetwork, teardownPodNetwork, checkPodNetwork, gcPodNetworks, listNetworkAttachments, networkCacheFile, type NetworkOptions } from '../../src/runtime/network/index.js';
import { isPodrunError } from '../../src/util/errors.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'podrun-test-cniproto-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const bin = path.join(tmp, 'bin');
const log = path.join(tmp, 'calls.log');
const NETNS = '/proc/self/ns/net';

const RESULT = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'br0', mac: '02:00:00:00:00:01' }, { name: 'eth0', mac: '02:00:00:00:00:02', sandbox: NETNS }],
  ips: [{ interface: 1, address: '10.181.0.7/16', gateway: '10.181.0.1' }],
};

/** A plugin that logs "<type> <env…>" and its stdin, then prints `out` (ADD) and exits `code`. */
function plugin(type: string, out = '', code = 0): void {
  const script = `#!/bin/sh
{ printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "${type}" "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_PATH" "$CNI_ARGS"; cat; echo; } >> ${log}
if [ "$CNI_COMMAND" = ADD ]; then printf '%s' '${out}'; fi
exit ${code}
`;
  writeFileSync(path.join(bin, type), script);
  chmodSync(path.join(bin, type), 0o755);
}

interface Call {
  type: string;
  command: string;
  id: string;
  netns: string;
  ifName: string;
  cniPath: string;
  args: string;
  stdin: Record<string, unknown>;
}
function calls(): Call[] {
  if (!existsSync(log)) return [];
  const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  const out: Call[] = [];
  for (let i = 0; i < lines.length; i += 2) {
    const [type, command, id, netns, ifName, cniPath, args] = lines[i].split('\t');
    out.push({ type, command, id, netns, ifName, cniPath, args, stdin: JSON.parse(lines[i + 1]) });
  }
  return out;
}

let n = 0;
function setup(plugins: object[]): NetworkOptions {
  n++;
  const confDir = path.join(tmp, `conf${n}`);
  mkdirSync(confDir, { recursive: true });
  writeFileSync(path.join(confDir, 'unitnet.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'unitnet', plugins }));
  return { runRoot: path.join(tmp, `run${n}`), confDir, networkName: 'unitnet', binDirs: [path.join(tmp, 'nope'), bin] };
}
const req = (ports: { containerPort: number; hostPort?: number; protocol: 'TCP' }[] = []) => ({ id: 'uid-1', name: 'web', namespace: 'shop', netnsPath: NETNS, ports });

beforeEach(() => {
  rmSync(bin, { recursive: true, force: true });
  mkdirSync(bin, { recursive: true });
  rmSync(log, { force: true });
  plugin('loopback', JSON.stringify({ cniVersion: '1.0.0', interfaces: [{ name: 'lo', sandbox: NETNS }], ips: [] }));
  plugin('fakeipam');
  plugin('fakebr', JSON.stringify(RESULT));
  plugin('fakepm', JSON.stringify(RESULT));
});

const LIST = [{ type: 'fakebr', ipam: { type: 'fakeipam', subnet: '10.181.0.0/16' } }, { type: 'fakepm', capabilities: { portMappings: true }, snat: true }];

describe('CNI protocol (fake plugins)', () => {
  it('ADD: loopback on lo, then the list in order; env, stdin, prevResult and runtimeConfig as the spec says', async () => {
    const o = setup(LIST);
    const st = await setupPodNetwork(o, req([{ containerPort: 80, hostPort: 8080, protocol: 'TCP' }, { containerPort: 81, protocol: 'TCP' }]));
    expect(st).toEqual({ ip: '10.181.0.7', gateway: '10.181.0.1', mac: '02:00:00:00:00:02', interface: 'eth0' });
    const c = calls();
    expect(c.map((x) => `${x.type} ${x.command} ${x.ifName}`)).toEqual(['loopback ADD lo', 'fakebr ADD eth0', 'fakepm ADD eth0']);
    for (const x of c) {
      expect(x.id).toBe('uid-1');
      expect(x.netns).toBe(NETNS);
      expect(x.cniPath.split(':')[0]).toBe(bin);
      expect(x.args).toBe('IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=uid-1;K8S_POD_UID=uid-1');
    }
    expect(c[1].stdin).toEqual({ type: 'fakebr', ipam: { type: 'fakeipam', subnet: '10.181.0.0/16' }, name: 'unitnet', cniVersion: '1.0.0' });
    expect(c[2].stdin).toEqual({
      type: 'fakepm',
      capabilities: { portMappings: true },
      snat: true,
      name: 'unitnet',
      cniVersion: '1.0.0',
      runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] },
      prevResult: RESULT,
    });
    const cache = JSON.parse(readFileSync(networkCacheFile(o.runRoot, 'uid-1'), 'utf8'));
    expect(cache.result).toEqual(RESULT);
    expect(cache.conflist.plugins).toEqual(LIST);
  });

  it('CHECK in order with the cached result; DEL in reverse with it; the cache goes; a second DEL does nothing', async () => {
    const o = setup(LIST);
    await setupPodNetwork(o, req());
    rmSync(log);
    await checkPodNetwork(o, req());
    expect(calls().map((x) => `${x.type} ${x.command}`)).toEqual(['fakebr CHECK', 'fakepm CHECK']);
    expect(calls().every((x) => JSON.stringify(x.stdin.prevResult) === JSON.stringify(RESULT))).toBe(true);
    rmSync(log);
    await teardownPodNetwork(o, 'uid-1');
    expect(calls().map((x) => `${x.type} ${x.command} ${x.netns}`)).toEqual([`fakepm DEL ${NETNS}`, `fakebr DEL ${NETNS}`]);
    expect(calls()[0].stdin.prevResult).toEqual(RESULT);
    expect(existsSync(networkCacheFile(o.runRoot, 'uid-1'))).toBe(false);
    rmSync(log);
    await teardownPodNetwork(o, 'uid-1');
    expect(calls()).toEqual([]);
  });

  it('DEL after the namespace is gone: CNI_NETNS is empty', async () => {
    const o = setup(LIST);
    await setupPodNetwork(o, req());
    rmSync(log);
    await teardownPodNetwork(o, 'uid-1', path.join(tmp, 'gone-netns'));
    expect(calls().map((x) => `${x.type} ${x.command} [${x.netns}]`)).toEqual(['fakepm DEL []', 'fakebr DEL []']);
  });

  it("a failing plugin: ECNI with its JSON error, everything deleted again in reverse, no cache left", async () => {
    // ADD fails with the spec's error object on stdout and a non-zero exit; DEL succeeds
    plugin('fakefail');
    writeFileSync(
      path.join(bin, 'fakefail'),
      readFileSync(path.join(bin, 'fakefail'), 'utf8').replace(
        'exit 0',
        `if [ "$CNI_COMMAND" = ADD ]; then printf '%s' '{"cniVersion":"1.0.0","code":7,"msg":"invalid network config","details":"snat needs iptables"}'; exit 1; fi`,
      ),
    );
    const o = setup([...LIST, { type: 'fakefail' }]);
    const err = await setupPodNetwork(o, req()).catch((e) => e);
    expect(isPodrunError(err, 'ECNI')).toBe(true);
    expect(err.message).toBe('Cannot attach pod "shop/web" to network "unitnet": plugin "fakefail" (ADD) failed: invalid network config: snat needs iptables (CNI error code 7)');
    expect(calls().map((x) => `${x.type} ${x.command}`)).toEqual(['loopback ADD', 'fakebr ADD', 'fakepm ADD', 'fakefail ADD', 'fakefail DEL', 'fakepm DEL', 'fakebr DEL']);
    // the ADD never finished, so DEL has no prevResult
    expect(calls()[4].stdin.prevResult).toBeUndefined();
    expect(existsSync(networkCacheFile(o.runRoot, 'uid-1'))).toBe(false);
  });

  it('when the undo fails too, both errors are reported and the attachment stays recorded for gc', async () => {
    writeFileSync(path.join(bin, 'fakefail'), `#!/bin/sh\ncat >/dev/null\necho "broken $CNI_COMMAND" >&2\nexit 1\n`);
    chmodSync(path.join(bin, 'fakefail'), 0o755);
    const o = setup([...LIST, { type: 'fakefail' }]);
    const err = await setupPodNetwork(o, req()).catch((e) => e);
    expect(err.message).toBe(
      'Cannot attach pod "shop/web" to network "unitnet": plugin "fakefail" (ADD) failed: broken ADD; and undoing it failed: Cannot detach pod "shop/web" from network "unitnet": plugin "fakefail" (DEL) failed: broken DEL',
    );
    expect(err.hint).toMatch(/podrun gc/);
    expect(existsSync(networkCacheFile(o.runRoot, 'uid-1'))).toBe(true);
  });

  it('a failing DEL keeps the cache for a retry and names the plugin', async () => {
    const o = setup(LIST);
    await setupPodNetwork(o, req());
    writeFileSync(path.join(bin, 'fakepm'), `#!/bin/sh\ncat >/dev/null\necho 'boom: cannot reach iptables' >&2\nexit 3\n`);
    const err = await teardownPodNetwork(o, 'uid-1').catch((e) => e);
    expect(isPodrunError(err, 'ECNI')).toBe(true);
    expect(err.message).toBe('Cannot detach pod "shop/web" from network "unitnet": plugin "fakepm" (DEL) failed: boom: cannot reach iptables');
    expect(existsSync(networkCacheFile(o.runRoot, 'uid-1'))).toBe(true);
    plugin('fakepm', JSON.stringify(RESULT));
    await teardownPodNetwork(o, 'uid-1');
    expect(existsSync(networkCacheFile(o.runRoot, 'uid-1'))).toBe(false);
  });

  it('gcPodNetworks tears down every cached attachment whose pod is not kept', async () => {
    const o = setup(LIST);
    await setupPodNetwork(o, req());
    await setupPodNetwork(o, { ...req(), id: 'uid-2', name: 'db' });
    rmSync(log);
    const r = await gcPodNetworks(o, new Set(['uid-2']));
    expect(r).toEqual({ removed: ['uid-1'], failed: [] });
    expect(calls().map((x) => `${x.type} ${x.command} ${x.id}`)).toEqual(['fakepm DEL uid-1', 'fakebr DEL uid-1']);
    expect(await listNetworkAttachments(o.runRoot)).toEqual(['uid-2']);
  });

  it('a pod id that is not a CNI container id is refused before anything runs', async () => {
    const o = setup(LIST);
    const err = await setupPodNetwork(o, { ...req(), id: '../x' }).catch((e) => e);
    expect(isPodrunError(err, 'EINVAL_ARG')).toBe(true);
    expect(calls()).toEqual([]);
  });
});
