import { describe, expect, test } from 'vitest';
import {
  ALL_CAPABILITIES,
  capabilitiesFromMask,
  capabilityMask,
  capabilityNumber,
  containerCapabilities,
  DEFAULT_CAPABILITIES,
  normalizeCapability,
} from '../../src/spec/capabilities.js';
import { parseManifests } from '../../src/spec/parse.js';
import { sysctlPath } from '../../src/spec/names.js';
import { cgroupValues, DEFAULT_PIDS_MAX, milliCpuToQuota, milliCpuToShares, podCgroupValues, podResources, sharesToWeight } from '../../src/spec/resources.js';

describe('resources → cgroup values', () => {
  test('kubelet formulas', () => {
    expect(milliCpuToShares(undefined)).toBe(2);
    expect(milliCpuToShares(0)).toBe(2);
    expect(milliCpuToShares(1)).toBe(2);
    expect(milliCpuToShares(100)).toBe(102);
    expect(milliCpuToShares(1000)).toBe(1024);
    expect(milliCpuToShares(1_000_000)).toBe(262144);
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(1024)).toBe(39);
    expect(sharesToWeight(262144)).toBe(10000);
    expect(milliCpuToQuota(undefined)).toBeUndefined();
    expect(milliCpuToQuota(250)).toBe(25000);
    expect(milliCpuToQuota(5)).toBe(1000); // kernel minimum
    expect(milliCpuToQuota(2000)).toBe(200000);
  });

  test('limits and requests → v2 and v1 files', () => {
    const v = cgroupValues({ requests: { cpuMillis: 500, memoryBytes: 64 << 20 }, limits: { cpuMillis: 1500, memoryBytes: 128 << 20 } });
    expect(v.v2).toEqual({
      'cpu.max': '150000 100000',
      'cpu.weight': String(1 + Math.floor(((512 - 2) * 9999) / 262142)),
      'memory.max': String(128 << 20),
      'memory.swap.max': '0',
      'pids.max': String(DEFAULT_PIDS_MAX),
    });
    expect(v.v1.cpu).toEqual({ 'cpu.cfs_period_us': '100000', 'cpu.cfs_quota_us': '150000', 'cpu.shares': '512' });
    expect(v.v1.memory).toEqual({ 'memory.limit_in_bytes': String(128 << 20), 'memory.memsw.limit_in_bytes': String(128 << 20) });
    expect(Object.keys(v.v1.memory)[0]).toBe('memory.limit_in_bytes'); // written before memsw
    expect(v.v1.pids).toEqual({ 'pids.max': '4096' });
  });

  test('no limits → unlimited; pids.max overridable', () => {
    const v = cgroupValues({ requests: {}, limits: {} }, { pidsMax: 100 });
    expect(v.v2['cpu.max']).toBe('max 100000');
    expect(v.v2['memory.max']).toBe('max');
    expect(v.v2['cpu.weight']).toBe('1');
    expect(v.v2['pids.max']).toBe('100');
    expect(v.v1.cpu['cpu.cfs_quota_us']).toBe('-1');
    expect(v.v1.memory['memory.limit_in_bytes']).toBe('-1');
    expect(cgroupValues({ requests: {}, limits: {} }, { pidsMax: 'max' }).v2['pids.max']).toBe('max');
  });

  const pod = (yaml: string) => parseManifests(yaml).pods[0];

  test('pod-level resources: sums when every container has a limit, max with init containers', () => {
    const p = pod(`
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - {name: init, image: busybox, resources: {limits: {cpu: "3", memory: 1Gi}}}
  - {name: side, image: busybox, restartPolicy: Always, resources: {limits: {cpu: 100m, memory: 10Mi}}}
  containers:
  - {name: a, image: busybox, resources: {limits: {cpu: 500m, memory: 100Mi}}}
  - {name: b, image: busybox, resources: {requests: {cpu: 250m, memory: 50Mi}, limits: {cpu: "1", memory: 200Mi}}}
`);
    const r = podResources(p);
    // long-running: side + a + b; init "init" runs before the sidecar starts
    expect(r.requests.cpuMillis).toBe(3000);
    expect(r.limits.cpuMillis).toBe(3000);
    expect(r.requests.memoryBytes).toBe(1 << 30);
    expect(r.limits.memoryBytes).toBe(1 << 30);
    expect(podCgroupValues(p).v2['cpu.max']).toBe('300000 100000');
  });

  test('pod-level limit is unlimited when one container has none', () => {
    const p = pod(`
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - {name: a, image: busybox, resources: {limits: {cpu: 500m, memory: 100Mi}}}
  - {name: b, image: busybox, resources: {requests: {cpu: 250m}}}
`);
    const r = podResources(p);
    expect(r.limits).toEqual({});
    expect(r.requests).toEqual({ cpuMillis: 750, memoryBytes: 100 << 20 });
    expect(podCgroupValues(p).v2['memory.max']).toBe('max');
  });
});

describe('capabilities', () => {
  test('names and numbers', () => {
    expect(ALL_CAPABILITIES).toHaveLength(41);
    expect(capabilityNumber('CAP_CHOWN')).toBe(0);
    expect(capabilityNumber('net_admin')).toBe(12);
    expect(capabilityNumber('SYS_ADMIN')).toBe(21);
    expect(capabilityNumber('CHECKPOINT_RESTORE')).toBe(40);
    expect(normalizeCapability('Net_Raw')).toBe('CAP_NET_RAW');
    expect(normalizeCapability('all')).toBe('ALL');
    expect(normalizeCapability('FLY')).toBeUndefined();
    expect(() => capabilityNumber('FLY')).toThrow('Cannot use capability "FLY": not a Linux capability');
    expect(capabilityMask(['CHOWN', 'CAP_KILL'])).toBe((1n << 0n) | (1n << 5n));
    expect(capabilitiesFromMask('000001ffffffffff')).toEqual(ALL_CAPABILITIES);
    expect(capabilitiesFromMask('000001fffeffffff')).not.toContain('CAP_SYS_RESOURCE');
  });

  const sorted = (xs: readonly string[]) => [...xs].sort((a, b) => capabilityNumber(a) - capabilityNumber(b));

  test('default set is containerd’s 14, sorted by number', () => {
    const caps = containerCapabilities({ privileged: false, add: [], drop: [] });
    expect(caps).toEqual(sorted(DEFAULT_CAPABILITIES));
    expect(caps).toHaveLength(14);
  });

  test('add and drop, with and without CAP_, ALL semantics', () => {
    const c = (add: string[], drop: string[]) => containerCapabilities({ privileged: false, add, drop });
    expect(c(['NET_ADMIN'], ['MKNOD'])).toContain('CAP_NET_ADMIN');
    expect(c(['NET_ADMIN'], ['CAP_MKNOD'])).not.toContain('CAP_MKNOD');
    expect(c([], ['ALL'])).toEqual([]);
    expect(c(['NET_BIND_SERVICE'], ['ALL'])).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(c(['ALL'], ['CHOWN'])).toEqual(ALL_CAPABILITIES.filter((n) => n !== 'CAP_CHOWN'));
    expect(c(['KILL'], ['KILL'])).not.toContain('CAP_KILL'); // drop wins
  });

  test('privileged → every capability the runtime holds', () => {
    expect(containerCapabilities({ privileged: true, add: [], drop: ['ALL'] })).toEqual(ALL_CAPABILITIES);
    const host = ALL_CAPABILITIES.filter((n) => n !== 'CAP_SYS_RESOURCE');
    expect(containerCapabilities({ privileged: true, add: [], drop: [] }, host)).toEqual(host);
    expect(containerCapabilities({ privileged: false, add: ['SYS_RESOURCE'], drop: [] }, host)).not.toContain('CAP_SYS_RESOURCE');
  });
});

test('sysctl names → /proc/sys paths', () => {
  expect(sysctlPath('net.ipv4.ip_forward')).toBe('net/ipv4/ip_forward');
  expect(sysctlPath('net/ipv4/conf/eth0.100/forwarding')).toBe('net/ipv4/conf/eth0.100/forwarding');
});
