/** The pure parts of the CNI client: stdin derivation, port mappings, results, errors, plugin lookup. */
import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cniArgs, defaultConflist, findPlugins, masqChainName, pluginStdin, podStatusFromResult, portMappings } from '../../src/runtime/network/index.js';
import { parseConflist, pickCniVersion, pluginTypes, withLeaseDir } from '../../src/runtime/network/conflist.js';
import { formatPluginError, parsePluginError, pluginEnv } from '../../src/runtime/network/exec.js';
import { cidrRange, cidrsOverlap, overlappingRoutes } from '../../src/runtime/network/subnet.js';
import { isPodrunError, type PodrunError } from '../../src/util/errors.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'podrun-test-cniunit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const list = defaultConflist({ name: 'podrun', bridge: 'podrun0', subnet: '10.181.0.0/16' });

describe('default conflist', () => {
  it('bridge (gateway, masquerade, host-local) + portmap (portMappings, snat) + firewall', () => {
    expect(list.cniVersion).toBe('1.0.0');
    expect(list.plugins.map((p) => p.type)).toEqual(['bridge', 'portmap', 'firewall']);
    expect(list.plugins[0]).toMatchObject({ bridge: 'podrun0', isGateway: true, ipMasq: true, ipam: { type: 'host-local', ranges: [[{ subnet: '10.181.0.0/16' }]] } });
    expect(list.plugins[1]).toMatchObject({ capabilities: { portMappings: true }, snat: true });
    expect(pluginTypes(list)).toEqual(['bridge', 'host-local', 'portmap', 'firewall']);
  });
  it('host-local gets its lease dir under the run root unless the list sets one', () => {
    expect(list.plugins[0].ipam!.dataDir).toBeUndefined();
    const run = withLeaseDir(list, '/run/podrun/cni/networks');
    expect(run.plugins[0].ipam!.dataDir).toBe('/run/podrun/cni/networks');
    expect(list.plugins[0].ipam!.dataDir).toBeUndefined(); // a copy
    const own = { ...list, plugins: [{ type: 'bridge', ipam: { type: 'host-local', dataDir: '/srv/leases' } }] };
    expect(withLeaseDir(own, '/run/x').plugins[0].ipam!.dataDir).toBe('/srv/leases');
  });
  it('speaks 1.0.0 where the plugins do, else 0.4.0', () => {
    expect(pickCniVersion(['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0'])).toBe('1.0.0');
    expect(pickCniVersion(['0.3.1', '0.4.0'])).toBe('0.4.0');
    expect(pickCniVersion(['0.3.1'])).toBeUndefined();
  });
  it('parseConflist names the file and the problem', () => {
    expect(parseConflist(JSON.stringify(list), 'x').name).toBe('podrun');
    expect(() => parseConflist('{', '/etc/podrun/cni/a.conflist')).toThrow(/^Cannot parse the CNI network list "\/etc\/podrun\/cni\/a.conflist"/);
    expect(() => parseConflist('{"cniVersion":"1.0.0","name":"a","plugins":[]}', 'f')).toThrow(/"plugins" is missing or empty/);
    expect(() => parseConflist('{"cniVersion":"1.0.0","name":"a","plugins":[{}]}', 'f')).toThrow(/plugins\[0\] has no "type"/);
  });
});

describe('pluginStdin (CNI spec: deriving the execution configuration)', () => {
  const maps = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }];
  it('adds name and cniVersion; runtimeConfig only for declared capabilities; prevResult when given', () => {
    const bridge = pluginStdin(list, list.plugins[0], { portMappings: maps }, undefined);
    expect(bridge.name).toBe('podrun');
    expect(bridge.cniVersion).toBe('1.0.0');
    expect(bridge.runtimeConfig).toBeUndefined();
    expect(bridge.prevResult).toBeUndefined();
    const prev = { cniVersion: '1.0.0', ips: [] };
    const pm = pluginStdin(list, list.plugins[1], { portMappings: maps }, prev);
    expect(pm.runtimeConfig).toEqual({ portMappings: maps });
    expect(pm.prevResult).toBe(prev);
    expect(pm.type).toBe('portmap');
  });
});

describe('portMappings', () => {
  it('publishes only ports with a hostPort; lowercases the protocol; 0.0.0.0 means any address', () => {
    expect(
      portMappings([
        { containerPort: 80, hostPort: 8080, protocol: 'TCP' },
        { containerPort: 53, hostPort: 5353, hostIP: '127.0.0.1', protocol: 'UDP' },
        { containerPort: 9, hostPort: 9000, hostIP: '0.0.0.0', protocol: 'SCTP' },
        { containerPort: 443, protocol: 'TCP' },
      ]),
    ).toEqual([
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
      { hostPort: 9000, containerPort: 9, protocol: 'sctp' },
    ]);
  });
});

describe('CNI_ARGS and environment', () => {
  it("kubelet's K8S_* keys with IgnoreUnknown", () => {
    expect(cniArgs({ id: 'u1', name: 'web', namespace: 'shop' })).toBe('IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=u1;K8S_POD_UID=u1');
  });
  it('sets every CNI_* variable', () => {
    const env = pluginEnv({ command: 'DEL', containerId: 'c', netns: '', ifName: 'eth0', args: 'A=1', cniPath: ['/a', '/b'] });
    expect(env).toMatchObject({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c', CNI_NETNS: '', CNI_IFNAME: 'eth0', CNI_ARGS: 'A=1', CNI_PATH: '/a:/b' });
    expect(env.PATH).toContain('/usr/sbin');
  });
});

describe('podStatusFromResult', () => {
  const result = {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'podrun0', mac: 'aa:aa:aa:aa:aa:01' }, { name: 'veth1', mac: 'aa:aa:aa:aa:aa:02' }, { name: 'eth0', mac: 'aa:aa:aa:aa:aa:03', sandbox: '/run/netns/x' }],
    ips: [
      { interface: 2, address: 'fd00::5/64', gateway: 'fd00::1' },
      { interface: 2, address: '10.181.0.5/16', gateway: '10.181.0.1' },
    ],
  };
  it('takes the IPv4 address inside the sandbox, without prefix length', () => {
    expect(podStatusFromResult(result)).toEqual({ ip: '10.181.0.5', gateway: '10.181.0.1', mac: 'aa:aa:aa:aa:aa:03', interface: 'eth0' });
  });
  it('fails clearly on a result without addresses', () => {
    expect(() => podStatusFromResult({ cniVersion: '1.0.0' })).toThrow(/^Cannot read the pod IP: the CNI result has no IP address/);
  });
});

describe('plugin errors', () => {
  it("uses the plugin's JSON error object", () => {
    const e = parsePluginError('{"cniVersion":"1.0.0","code":11,"msg":"failed to allocate for range 0","details":"no IP addresses available in range set: 10.1.0.1-10.1.0.14"}', '', 'exit code 1');
    expect(e).toEqual({ code: 11, msg: 'failed to allocate for range 0', details: 'no IP addresses available in range set: 10.1.0.1-10.1.0.14' });
    expect(formatPluginError(e)).toBe('failed to allocate for range 0: no IP addresses available in range set: 10.1.0.1-10.1.0.14 (CNI error code 11)');
  });
  it('falls back to stderr, then to the exit status', () => {
    expect(parsePluginError('', 'panic: boom\n', 'exit code 2').msg).toBe('panic: boom');
    expect(parsePluginError('', '', 'killed by SIGKILL').msg).toBe('killed by SIGKILL');
  });
});

describe('masquerade chain naming (the bridge plugin\'s scheme)', () => {
  it('is "CNI-" + sha512(network + id), 28 characters', () => {
    expect(masqChainName('podrun-test-x1', 'abc')).toBe('CNI-00780f51232bcb828eaac1bd');
  });
});

describe('findPlugins', () => {
  const a = path.join(tmp, 'a');
  const b = path.join(tmp, 'b');
  mkdirSync(a);
  mkdirSync(b);
  for (const [dir, names] of [[a, ['bridge']], [b, ['bridge', 'host-local', 'portmap', 'firewall', 'loopback']]] as const) {
    for (const n of names) {
      writeFileSync(path.join(dir, n), '#!/bin/sh\n');
      chmodSync(path.join(dir, n), 0o755);
    }
  }
  it('picks the first directory that has every plugin; CNI_PATH lists it first', () => {
    const f = findPlugins([path.join(tmp, 'none'), a, b]);
    expect(f.dir).toBe(b);
    expect(f.cniPath).toEqual([b, a]);
    expect(f.paths.portmap).toBe(path.join(b, 'portmap'));
  });
  it('one ECNI error naming the missing plugins, with the install hint', () => {
    let err: PodrunError | undefined;
    try {
      findPlugins([a, path.join(tmp, 'none')]);
    } catch (e) {
      err = e as PodrunError;
    }
    expect(isPodrunError(err, 'ECNI')).toBe(true);
    expect(err!.message).toBe(`Cannot find the CNI plugins "bridge", "host-local", "portmap", "firewall", "loopback": "host-local", "portmap", "firewall", "loopback" missing in "${a}" (searched "${a}", "${path.join(tmp, 'none')}")`);
    expect(err!.hint).toContain('apt-get install containernetworking-plugins');
    expect(() => findPlugins([path.join(tmp, 'none')])).toThrow(/none of .* exists/);
  });
});

describe('subnet overlap (doctor)', () => {
  it('computes ranges and overlaps', () => {
    expect(cidrRange('10.181.0.0/16')).toEqual([0x0ab50000, 0x0ab5ffff]);
    expect(cidrRange('10.181.3.4/16')).toEqual([0x0ab50000, 0x0ab5ffff]);
    expect(cidrRange('bogus/16')).toBeUndefined();
    expect(cidrsOverlap('10.181.0.0/16', '10.0.0.0/8')).toBe(true);
    expect(cidrsOverlap('10.181.0.0/16', '10.182.0.0/16')).toBe(false);
    expect(cidrsOverlap('10.181.0.0/16', '10.181.7.9')).toBe(true);
  });
  it('finds routes that clash, ignoring default, local/broadcast entries and the own bridge', () => {
    const routes = [
      'default via 192.0.2.1 dev eth0',
      '10.181.0.0/16 dev podrun0 proto kernel scope link src 10.181.0.1',
      '10.0.0.0/8 via 192.0.2.254 dev tun0',
      '192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2',
      'local 10.181.0.1 dev podrun0 table local proto kernel scope host src 10.181.0.1',
      'broadcast 10.181.255.255 dev podrun0 table local proto kernel scope link src 10.181.0.1',
    ].join('\n');
    expect(overlappingRoutes('10.181.0.0/16', routes, 'podrun0')).toEqual(['10.0.0.0/8 via 192.0.2.254 dev tun0']);
    expect(overlappingRoutes('10.181.0.0/16', routes, 'other0')).toEqual(['10.181.0.0/16 dev podrun0 proto kernel scope link src 10.181.0.1', '10.0.0.0/8 via 192.0.2.254 dev tun0']);
    expect(overlappingRoutes('172.30.0.0/16', routes)).toEqual([]);
  });
});
