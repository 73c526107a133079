import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { isPodrunError } from '../../src/util/errors.js';
import { defaultPullPolicy, formatProblem, parseManifests, SpecError } from '../../src/spec/parse.js';
import type { ConfigMapVolume, DownwardApiVolume, SecretVolume } from '../../src/spec/plan.js';

/** Every problem of a failing parse as "path: message" lines. */
function problems(yaml: string): string[] {
  try {
    parseManifests(yaml, { source: 'pod.yaml' });
  } catch (e) {
    expect(e).toBeInstanceOf(SpecError);
    return (e as SpecError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error('expected a SpecError');
}

const pod = (spec: string, meta = 'name: p') => `apiVersion: v1
kind: Pod
metadata: {${meta}}
spec:
${spec}`;

const one = (yaml: string) => parseManifests(yaml).pods[0];

describe('parseManifests: the quick-start example', () => {
  test('examples/pod.yaml parses into a two-container plan', () => {
    const text = readFileSync(new URL('../../examples/pod.yaml', import.meta.url), 'utf8');
    const set = parseManifests(text, { source: 'examples/pod.yaml' });
    expect(set.warnings).toEqual([]);
    expect(set.pods).toHaveLength(1);
    const p = set.pods[0];
    expect(p.name).toBe('hello');
    expect(p.source).toBe('examples/pod.yaml');
    expect(p.volumes).toEqual([{ kind: 'emptyDir', name: 'www', medium: 'Disk' }]);
    expect(p.containers.map((c) => c.name)).toEqual(['web', 'writer']);
    const [web, writer] = p.containers;
    expect(web.image).toBe('busybox');
    expect(web.imagePullPolicy).toBe('Always');
    expect(web.command).toEqual(['httpd', '-f', '-p', '8080', '-h', '/www']);
    expect(web.resources).toEqual({ requests: { cpuMillis: 50, memoryBytes: 16 << 20 }, limits: { cpuMillis: 250, memoryBytes: 32 << 20 } });
    expect(web.volumeMounts).toEqual([{ name: 'www', mountPath: '/www', readOnly: true, subPath: '' }]);
    expect(web.readinessProbe?.handler).toEqual({ kind: 'httpGet', scheme: 'HTTP', path: '/index.html', port: 8080, portName: 'http', httpHeaders: [] });
    expect(writer.env).toEqual([{ name: 'POD_NAME', kind: 'fieldRef', fieldRef: { path: 'metadata.name' } }]);
    expect(writer.volumeMounts[0].readOnly).toBe(false);
  });
});

describe('parseManifests: defaults', () => {
  test('a minimal pod gets Kubernetes defaults', () => {
    const p = one(pod('  containers: [{name: c, image: "busybox:1.36"}]'));
    expect(p.namespace).toBe('default');
    expect(p.uid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(p.hostname).toBe('p');
    expect(p.restartPolicy).toBe('Always');
    expect(p.terminationGracePeriodSeconds).toBe(30);
    expect(p.activeDeadlineSeconds).toBeUndefined();
    expect(p.dnsPolicy).toBe('ClusterFirst');
    expect(p.shareProcessNamespace).toBe(false);
    expect(p.hostNetwork).toBe(false);
    expect(p.securityContext).toEqual({ supplementalGroups: [], sysctls: [] });
    const c = p.containers[0];
    expect(c).toMatchObject({
      role: 'app',
      imagePullPolicy: 'IfNotPresent',
      env: [],
      ports: [],
      resources: { requests: {}, limits: {} },
      stdin: false,
      tty: false,
      terminationMessagePath: '/dev/termination-log',
      terminationMessagePolicy: 'File',
      securityContext: { readOnlyRootFilesystem: false, privileged: false, capabilities: { add: [], drop: [] } },
    });
    expect(c.command).toBeUndefined();
    expect(c.args).toBeUndefined();
    expect(c.workingDir).toBeUndefined();
    expect(c.securityContext.allowPrivilegeEscalation).toBeUndefined();
  });

  test.each([
    ['busybox', 'Always'],
    ['busybox:latest', 'Always'],
    ['busybox:1.36', 'IfNotPresent'],
    ['localhost:5000/busybox', 'Always'],
    ['localhost:5000/team/busybox:1', 'IfNotPresent'],
    ['busybox@sha256:' + 'a'.repeat(64), 'IfNotPresent'],
    ['busybox:latest@sha256:' + 'a'.repeat(64), 'Always'],
  ])('imagePullPolicy default for %s is %s', (image, want) => {
    expect(defaultPullPolicy(image)).toBe(want);
    expect(one(pod(`  containers: [{name: c, image: "${image}"}]`)).containers[0].imagePullPolicy).toBe(want);
  });

  test('an explicit imagePullPolicy is kept', () => {
    expect(one(pod('  containers: [{name: c, image: busybox, imagePullPolicy: Never}]')).containers[0].imagePullPolicy).toBe('Never');
  });

  test('requests default to limits; explicit requests stay', () => {
    const c = one(pod('  containers: [{name: c, image: b, resources: {limits: {cpu: "1", memory: 1Gi}, requests: {cpu: 100m}}}]')).containers[0];
    expect(c.resources).toEqual({ requests: { cpuMillis: 100, memoryBytes: 1 << 30 }, limits: { cpuMillis: 1000, memoryBytes: 1 << 30 } });
  });

  test('probe defaults are kubelet’s', () => {
    const c = one(
      pod(`  containers:
  - name: c
    image: b
    ports: [{name: web, containerPort: 80}]
    livenessProbe: {tcpSocket: {port: web}}
    readinessProbe: {httpGet: {port: 8080, path: healthz, httpHeaders: [{name: X-A, value: b}]}, successThreshold: 2}
    startupProbe: {exec: {command: [cat, /ready]}, failureThreshold: 30, periodSeconds: 1, terminationGracePeriodSeconds: 5}
`),
    ).containers[0];
    expect(c.livenessProbe).toEqual({
      handler: { kind: 'tcpSocket', port: 80, portName: 'web' },
      initialDelaySeconds: 0,
      periodSeconds: 10,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    });
    expect(c.readinessProbe?.handler).toEqual({ kind: 'httpGet', scheme: 'HTTP', path: '/healthz', port: 8080, httpHeaders: [{ name: 'X-A', value: 'b' }] });
    expect(c.readinessProbe?.successThreshold).toBe(2);
    expect(c.startupProbe).toMatchObject({ handler: { kind: 'exec', command: ['cat', '/ready'] }, failureThreshold: 30, periodSeconds: 1, terminationGracePeriodSeconds: 5 });
  });

  test('grpc probe and lifecycle hooks', () => {
    const c = one(
      pod(`  terminationGracePeriodSeconds: 20
  containers:
  - name: c
    image: b
    livenessProbe: {grpc: {port: 9090}}
    lifecycle:
      postStart: {httpGet: {port: 80, scheme: HTTPS, host: 127.0.0.1}}
      preStop: {sleep: {seconds: 5}}
`),
    ).containers[0];
    expect(c.livenessProbe?.handler).toEqual({ kind: 'grpc', port: 9090, service: '' });
    expect(c.lifecycle.postStart).toEqual({ kind: 'httpGet', scheme: 'HTTPS', host: '127.0.0.1', path: '/', port: 80, httpHeaders: [] });
    expect(c.lifecycle.preStop).toEqual({ kind: 'sleep', seconds: 5 });
  });

  test('init containers and native sidecars', () => {
    const p = one(
      pod(`  initContainers:
  - {name: migrate, image: b, command: ["true"]}
  - {name: proxy, image: b, restartPolicy: Always, startupProbe: {tcpSocket: {port: 15000}}}
  containers: [{name: app, image: b}]`),
    );
    expect(p.initContainers.map((c) => [c.name, c.role])).toEqual([
      ['migrate', 'init'],
      ['proxy', 'sidecar'],
    ]);
    expect(p.containers[0].role).toBe('app');
  });

  test('a volume with no source is an emptyDir; Memory medium and sizeLimit', () => {
    const p = one(
      pod(`  volumes: [{name: a}, {name: b, emptyDir: {medium: Memory, sizeLimit: 64Mi}}, {name: h, hostPath: {path: /srv, type: Directory}}]
  containers: [{name: c, image: b}]`),
    );
    expect(p.volumes).toEqual([
      { kind: 'emptyDir', name: 'a', medium: 'Disk' },
      { kind: 'emptyDir', name: 'b', medium: 'Memory', sizeLimitBytes: 64 << 20 },
      { kind: 'hostPath', name: 'h', path: '/srv', type: 'Directory' },
    ]);
  });

  test('null fields count as absent (as the API server decodes them)', () => {
    const p = one(pod(`  volumes:
  containers:
  - name: c
    image: b
    env:
    resources: {}
`, 'name: p, creationTimestamp: null'));
    expect(p.volumes).toEqual([]);
    expect(p.containers[0].env).toEqual([]);
  });

  test('hostname: spec.hostname, else the pod name truncated to 63 like kubelet', () => {
    expect(one(pod('  hostname: box\n  subdomain: svc\n  containers: [{name: c, image: b}]')).hostname).toBe('box');
    const long = 'a'.repeat(62) + '-' + 'b'.repeat(10);
    const set = parseManifests(pod('  containers: [{name: c, image: b}]', `name: ${long}`));
    expect(set.pods[0].hostname).toBe('a'.repeat(62));
    expect(set.warnings.map((w) => w.message)).toEqual([`longer than 63 characters: the hostname is truncated to "${'a'.repeat(62)}"`]);
  });

  test('hostNetwork: hostPort defaults to containerPort', () => {
    const p = one(pod('  hostNetwork: true\n  containers: [{name: c, image: b, ports: [{containerPort: 8080}]}]'));
    expect(p.containers[0].ports).toEqual([{ containerPort: 8080, hostPort: 8080, hostIP: '', protocol: 'TCP' }]);
  });

  test('uid: kept when given, generated otherwise; specDigest ignores the uid only', () => {
    const a = one(pod('  containers: [{name: c, image: b}]', 'name: p, uid: "1234"'));
    expect(a.uid).toBe('1234');
    const b = parseManifests(pod('  containers: [{name: c, image: b}]'), { generateUid: () => 'fixed' }).pods[0];
    expect(b.uid).toBe('fixed');
    expect(a.specDigest).toBe(b.specDigest);
    expect(a.specDigest).toMatch(/^[0-9a-f]{64}$/);
    const c = one(pod('  containers: [{name: c, image: b2}]'));
    expect(c.specDigest).not.toBe(b.specDigest);
    // key order and formatting do not matter
    const d = one(`kind: Pod\napiVersion: v1\nspec:\n  containers:\n  - image: b\n    name: c\nmetadata:\n  name: p\n`);
    expect(d.specDigest).toBe(b.specDigest);
  });

  test('pod security context and sysctls', () => {
    const p = one(
      pod(`  securityContext: {runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000, supplementalGroups: [4000], runAsNonRoot: true, sysctls: [{name: net.ipv4.ip_unprivileged_port_start, value: "0"}, {name: kernel.shm_rmid_forced, value: "1"}]}
  containers: [{name: c, image: b, securityContext: {capabilities: {add: [net_admin, CAP_SYS_TIME], drop: [all]}, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}}]`),
    );
    expect(p.securityContext).toEqual({
      runAsUser: 1000,
      runAsGroup: 3000,
      runAsNonRoot: true,
      supplementalGroups: [4000],
      fsGroup: 2000,
      sysctls: [
        { name: 'net.ipv4.ip_unprivileged_port_start', value: '0' },
        { name: 'kernel.shm_rmid_forced', value: '1' },
      ],
    });
    expect(p.containers[0].securityContext).toEqual({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { add: ['NET_ADMIN', 'SYS_TIME'], drop: ['ALL'] },
    });
  });

  test('YAML 1.1 like kubectl: 0644 is octal, yes is true, dates and 1:20 stay strings', () => {
    const p = one(pod('  shareProcessNamespace: yes\n  volumes: [{name: s, secret: {secretName: x, optional: true, defaultMode: 0440}}]\n  containers: [{name: c, image: b}]'));
    expect(p.shareProcessNamespace).toBe(true);
    const q = one(pod('  containers: [{name: c, image: b}]', 'name: p, annotations: {date: 2024-01-01, at: 2024-01-01T10:00:00Z, time: 1:20}'));
    expect(q.annotations).toEqual({ date: '2024-01-01', at: '2024-01-01T10:00:00Z', time: '1:20' });
    expect((p.volumes[0] as SecretVolume).defaultMode).toBe(0o440);
  });

  test('multi-document files with comments and empty documents', () => {
    const text = `# leading comment\n---\n${pod('  containers: [{name: c, image: b}]', 'name: one')}\n---\n# nothing here\n---\n${pod('  containers: [{name: c, image: b}]', 'name: two')}\n---\n`;
    expect(parseManifests(text).pods.map((p) => p.name)).toEqual(['one', 'two']);
    expect(parseManifests('').pods).toEqual([]);
  });
});

describe('parseManifests: errors', () => {
  test('the field path and the quantity problem, as documented', () => {
    expect(problems(pod('  containers:\n  - {name: a, image: b}\n  - {name: c, image: b, resources: {limits: {memory: 12Q}}}'))).toEqual([
      'spec.containers[1].resources.limits.memory: "12Q" is not a quantity: unknown suffix "Q" (use a plain number or a suffix Ki Mi Gi Ti Pi Ei, k M G T P E, m, or an exponent like 1e3; suffixes are case-sensitive)',
    ]);
  });

  test('one SpecError lists every structural problem with file and line', () => {
    const text = pod(`  containers:
  - name: Web_1
    image: b
    imagePullPolicy: Sometimes
    env: [{name: 1X, value: 1}]
    ports: [{containerPort: 70000, protocol: tcp}]
    foo: bar
  hostPID: true
  ephemeralContainers: [{name: dbg}]
  restartPolicy: Never
  terminationGracePeriodSeconds: -1
`, 'name: My.Pod');
    let err: unknown;
    try {
      parseManifests(text, { source: 'pod.yaml' });
    } catch (e) {
      err = e;
    }
    expect(isPodrunError(err, 'EINVAL_SPEC')).toBe(true);
    const e = err as SpecError;
    const lines = e.problems.map((p) => `${p.line} ${p.path}: ${p.message}`);
    expect(lines).toContain('3 metadata.name: "My.Pod" is not a valid DNS-1123 subdomain: use lowercase letters, digits, \'-\' and \'.\', starting and ending with a letter or digit');
    expect(lines).toContain('6 spec.containers[0].name: "Web_1" is not a valid DNS-1123 label: use lowercase letters, digits and \'-\', starting and ending with a letter or digit');
    expect(lines).toContain('8 spec.containers[0].imagePullPolicy: "Sometimes" is not one of "Always", "IfNotPresent", "Never"');
    expect(lines).toContain('9 spec.containers[0].env[0].name: "1X" is not a valid environment variable name: use letters, digits, \'_\', \'-\' or \'.\', not starting with a digit');
    expect(lines).toContain('9 spec.containers[0].env[0].value: expected a string, got number 1 (quote it: "1")');
    expect(lines).toContain('10 spec.containers[0].ports[0].containerPort: must be at most 65535, got 70000');
    expect(lines).toContain('10 spec.containers[0].ports[0].protocol: "tcp" is not one of "TCP", "UDP", "SCTP"');
    expect(lines).toContain('11 spec.containers[0].foo: unknown field "foo"');
    expect(lines).toContain('12 spec.hostPID: true is not supported by podrun yet');
    expect(lines).toContain('13 spec.ephemeralContainers: is not supported by podrun yet');
    expect(lines).toContain('15 spec.terminationGracePeriodSeconds: must be at least 0, got -1');
    expect(lines).toHaveLength(11);
    expect(e.message).toMatch(/^Cannot load manifests from "pod.yaml": 11 problems\n/);
    expect(e.message).toContain('\n  pod.yaml:11: Pod "My.Pod": spec.containers[0].foo: unknown field "foo"');
    expect(formatProblem(e.problems[0])).toMatch(/^pod\.yaml:\d+: Pod "My\.Pod": /);
  });

  test('the same text parsed again (the YAML documents are kept) gives the same problems and lines, and fresh plans', () => {
    const bad = pod(`  containers:
  - {name: a, image: b, foo: bar}
`);
    const twice = [0, 1].map(() => {
      try {
        parseManifests(bad, { source: 'again.yaml' });
      } catch (e) {
        return (e as SpecError).problems.map((p) => `${p.line} ${p.path}: ${p.message}`);
      }
      return [];
    });
    expect(twice[0]).toEqual(['6 spec.containers[0].foo: unknown field "foo"']);
    expect(twice[1]).toEqual(twice[0]);
    const good = pod(`  containers:
  - {name: a, image: b}
`);
    const [x, y] = [parseManifests(good).pods[0], parseManifests(good).pods[0]];
    expect(x.uid).not.toBe(y.uid);
    expect(x.specDigest).toBe(y.specDigest);
    x.containers[0].env.push({ name: 'MUTATED', value: '1' } as never);
    expect(parseManifests(good).pods[0].containers[0].env).toEqual(y.containers[0].env);
  });

  test('cross-field rules: names, references, ports, probes, hooks, resources', () => {
    const got = problems(`apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  terminationGracePeriodSeconds: 10
  volumes:
  - {name: data}
  - {name: data}
  - {name: both, emptyDir: {}, hostPath: {path: /x}}
  initContainers:
  - name: app
    image: b
    livenessProbe: {exec: {command: [x]}}
  containers:
  - name: app
    image: b
    restartPolicy: Always
    ports:
    - {name: http, containerPort: 80, hostPort: 8080}
    - {name: http, containerPort: 81, hostPort: 8080}
    volumeMounts:
    - {name: nope, mountPath: /a}
    - {name: data, mountPath: /b}
    - {name: data, mountPath: /b/}
    env:
    - {name: A, value: x, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: B, valueFrom: {fieldRef: {fieldPath: spec.containers}}}
    - {name: C, valueFrom: {}}
    - {name: D, valueFrom: {resourceFieldRef: {resource: limits.gpu}}}
    - {name: E, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1k}}}
    resources:
      requests: {cpu: "2", memory: 1Gi, nvidia.com/gpu: 1}
      limits: {cpu: "1", memory: -1Gi, bananas: 1}
    livenessProbe: {httpGet: {port: metrics}, successThreshold: 2}
    readinessProbe: {exec: {command: [a]}, tcpSocket: {port: 1}}
    startupProbe: {periodSeconds: 1}
    securityContext: {privileged: true, allowPrivilegeEscalation: false, capabilities: {add: [FLY]}}
    lifecycle:
      preStop: {sleep: {seconds: 60}}
      postStart: {}
`);
    expect(got).toEqual([
      'spec.containers[0].name: "app" is used by another container of this pod',
      'spec.volumes[1].name: "data" is used by another volume of this pod',
      'spec.volumes[2]: may have only one volume type, found emptyDir, hostPath',
      'spec.initContainers[0].livenessProbe: may not be set on an init container (only on a sidecar: an init container with restartPolicy: Always)',
      'spec.containers[0].restartPolicy: is only allowed on initContainers (restartPolicy: Always makes a native sidecar)',
      'spec.containers[0].ports[1].name: "http" is used by another port of this container',
      'spec.containers[0].ports[1].hostPort: 8080/TCP is already used by spec.containers[0].ports[0]',
      'spec.containers[0].resources.limits.memory: "-1Gi" must not be negative',
      'spec.containers[0].resources.limits.bananas: "bananas" is not a resource name (use cpu, memory or ephemeral-storage)',
      'spec.containers[0].resources.requests["nvidia.com/gpu"]: resource "nvidia.com/gpu" is not supported by podrun yet',
      'spec.containers[0].resources.requests.cpu: "2" must be less than or equal to the cpu limit "1"',
      'spec.containers[0].env[0]: may not have both value and valueFrom',
      'spec.containers[0].env[1].valueFrom.fieldRef.fieldPath: "spec.containers" is not a supported field path here (use metadata.name, metadata.namespace, metadata.uid, spec.nodeName, spec.serviceAccountName, status.hostIP, status.hostIPs, status.podIP, status.podIPs, metadata.labels[\'KEY\'] or metadata.annotations[\'KEY\'])',
      'spec.containers[0].env[2].valueFrom: must have exactly one of fieldRef, resourceFieldRef, configMapKeyRef and secretKeyRef',
      'spec.containers[0].env[3].valueFrom.resourceFieldRef.resource: "limits.gpu" is not supported (use limits.cpu, limits.memory, requests.cpu or requests.memory)',
      'spec.containers[0].env[4].valueFrom.resourceFieldRef.divisor: "1k" is not a valid divisor for limits.cpu (use 1m, 1)',
      'spec.containers[0].volumeMounts[0].name: volume "nope" is not declared in spec.volumes',
      'spec.containers[0].volumeMounts[2].mountPath: "/b/" is used by another volumeMount of this container',
      'spec.containers[0].securityContext.capabilities.add[0]: "FLY" is not a Linux capability',
      'spec.containers[0].securityContext.allowPrivilegeEscalation: cannot be false when privileged is true',
      'spec.containers[0].livenessProbe.successThreshold: must be 1 for a livenessProbe, got 2',
      'spec.containers[0].livenessProbe.httpGet.port: "metrics" is not the name of a port of this container',
      'spec.containers[0].readinessProbe: may have only one handler, found exec, tcpSocket',
      'spec.containers[0].startupProbe: must have one handler: exec, httpGet, tcpSocket or grpc',
      'spec.containers[0].lifecycle.postStart: must have one handler: exec, httpGet or sleep',
      'spec.containers[0].lifecycle.preStop.sleep.seconds: must be at most terminationGracePeriodSeconds (10), got 60',
    ]);
  });

  test('other kinds, bad apiVersion, missing fields, YAML syntax, duplicates', () => {
    const got = problems(`apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
---
apiVersion: v2
kind: Pod
metadata: {name: p}
spec: {containers: [{name: c, image: b}]}
---
apiVersion: v1
kind: Pod
metadata: {}
spec: {containers: [{name: c, image: b}]}
---
apiVersion: v1
kind: Pod
metadata: {name: q}
spec: {containers: []}
---
- just
- a list
---
apiVersion: v1
metadata: {name: x}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
---
a: [1,
---
x: 1
x: 2
`);
    expect(got).toEqual([
      'kind: "Deployment" (apps/v1) is not supported: a file for podrun may hold v1 Pod, ConfigMap and Secret objects',
      'apiVersion: must be "v1", got string "v2"',
      'metadata.name: is required',
      'spec.containers: must have at least 1 item',
      ': expected a Kubernetes object (a mapping with apiVersion and kind), got a list',
      'kind: is required (podrun reads v1 Pod, ConfigMap and Secret objects)',
      'metadata.name: "cm" is defined twice (also in document 7)',
      ': YAML syntax error at column 1: Flow sequence in block collection must be sufficiently indented and end with a ]',
      ': YAML syntax error at column 1: Map keys must be unique',
    ]);
  });

  test('pod-level rules: sysctls, dnsPolicy None, hostNetwork ports, sidecar-only fields', () => {
    expect(
      problems(
        pod(`  hostNetwork: true
  dnsPolicy: None
  securityContext: {sysctls: [{name: net.core.somaxconn, value: "1"}, {name: kernel.panic, value: "1"}, {name: kernel.sem, value: "1"}, {name: kernel.sem, value: "2"}]}
  containers: [{name: c, image: b, ports: [{containerPort: 80, hostPort: 8080}]}]`),
      ),
    ).toEqual([
      'spec.containers[0].ports[0].hostPort: must equal containerPort (80) with hostNetwork: true, got 8080',
      'spec.securityContext.sysctls[0].name: "net.core.somaxconn" cannot be set with hostNetwork: true (it would change the host)',
      'spec.securityContext.sysctls[1].name: "kernel.panic" is not a namespaced sysctl: a pod may set kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.* and net.*',
      'spec.securityContext.sysctls[3].name: "kernel.sem" is set twice',
      'spec.dnsConfig.nameservers: must list at least one nameserver when dnsPolicy is "None"',
    ]);
  });

  test('hostPorts clash across containers, also between a specific and the wildcard address', () => {
    expect(
      problems(
        pod(`  containers:
  - {name: a, image: b, ports: [{containerPort: 80, hostPort: 8080, hostIP: 127.0.0.1}, {containerPort: 53, hostPort: 8080, protocol: UDP}]}
  - {name: c, image: b, ports: [{containerPort: 81, hostPort: 8080}]}`),
      ),
    ).toEqual(['spec.containers[1].ports[0].hostPort: 8080/TCP is already used by spec.containers[0].ports[0]']);
  });

  test('labels, annotations and odd keys are validated and quoted in paths', () => {
    expect(problems(pod('  containers: [{name: c, image: b}]', 'name: p, labels: {"bad key!": x, ok: "v v"}'))).toEqual([
      'metadata.labels["bad key!"]: "bad key!" is not a valid key: the name part must be 1-63 letters, digits, \'-\', \'_\' or \'.\', starting and ending with a letter or digit',
      'metadata.labels.ok: "v v" is not a valid label value: at most 63 letters, digits, \'-\', \'_\' or \'.\', starting and ending with a letter or digit',
    ]);
  });

  test('unsupported volume types and mount options say so', () => {
    expect(
      problems(
        pod(`  volumes: [{name: v, persistentVolumeClaim: {claimName: x}}]
  containers: [{name: c, image: b, volumeMounts: [{name: v, mountPath: /v, subPathExpr: $(X), mountPropagation: Bidirectional, subPath: ../etc}]}]`),
      ),
    ).toEqual([
      'spec.containers[0].volumeMounts[0].subPath: "../etc" must not contain ".."',
      'spec.containers[0].volumeMounts[0].mountPropagation: must be "None", got string "Bidirectional"',
      'spec.containers[0].volumeMounts[0].subPathExpr: is not supported by podrun yet',
      'spec.volumes[0].persistentVolumeClaim: is not supported by podrun yet',
    ]);
  });
});

describe('parseManifests: warnings for fields without meaning on one node', () => {
  test('each ignored field is named, empty ones are silent', () => {
    const set = parseManifests(
      `apiVersion: v1
kind: Pod
metadata: {name: p, creationTimestamp: null, resourceVersion: "12"}
spec:
  nodeSelector: {disk: ssd}
  serviceAccountName: builder
  tolerations: []
  affinity: {}
  enableServiceLinks: false
  securityContext: {seccompProfile: {type: RuntimeDefault}, seLinuxOptions: {level: "s0"}}
  containers:
  - name: c
    image: b
    resources: {limits: {ephemeral-storage: 1Gi, memory: 100m}}
status: {phase: Running}
`,
      { source: 'p.yaml' },
    );
    expect(set.warnings.map((w) => `${w.line} ${w.path}: ${w.message}`)).toEqual([
      '3 metadata.resourceVersion: ignored: set by the API server, not by podrun',
      '15 status: ignored: status is reported by podrun, not read from the manifest',
      '5 spec.nodeSelector: ignored: it has no meaning when podrun runs the pod on this one machine',
      '6 spec.serviceAccountName: ignored: it has no meaning when podrun runs the pod on this one machine',
      '9 spec.enableServiceLinks: ignored: it has no meaning when podrun runs the pod on this one machine',
      '10 spec.securityContext.seLinuxOptions: ignored: podrun does not apply SELinux, AppArmor or Windows options',
      '10 spec.securityContext.seccompProfile: not enforced: podrun does not apply seccomp filters yet',
      '14 spec.containers[0].resources.limits.ephemeral-storage: ignored: podrun does not limit ephemeral storage',
      '14 spec.containers[0].resources.limits.memory: "100m" is a fraction of a byte, rounded up to 1 (did you mean "100Mi"?)',
    ]);
    expect(set.warnings.every((w) => w.source === 'p.yaml' && w.object === 'Pod "p"')).toBe(true);
  });
});

describe('ConfigMaps and Secrets', () => {
  const objects = `apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data:
  app.yaml: "port: 80\\n"
  MODE: prod
binaryData:
  logo.bin: AAEC/w==
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
type: Opaque
data:
  password: c2VjcmV0
  user: YWRtaW4=
stringData:
  user: root
`;

  test('data, binaryData (base64), stringData over data', () => {
    const set = parseManifests(objects);
    expect(set.configMaps).toHaveLength(1);
    const cm = set.configMaps[0];
    expect(cm).toMatchObject({ name: 'cfg', namespace: 'default', data: { 'app.yaml': 'port: 80\n', MODE: 'prod' }, immutable: false });
    expect([...cm.binaryData['logo.bin']]).toEqual([0, 1, 2, 255]);
    const s = set.secrets[0];
    expect(s.type).toBe('Opaque');
    expect(Buffer.from(s.data.password).toString()).toBe('secret');
    expect(Buffer.from(s.data.user).toString()).toBe('root');
  });

  test('configMap and secret volumes are resolved with items, modes and optional', () => {
    const set = parseManifests(
      objects +
        '---\n' +
        pod(`  volumes:
  - {name: all, configMap: {name: cfg}}
  - {name: some, configMap: {name: cfg, items: [{key: app.yaml, path: conf/app.yaml, mode: 0600}], defaultMode: 0444}}
  - {name: sec, secret: {secretName: creds, defaultMode: 0400}}
  - {name: opt, configMap: {name: nothere, optional: true}}
  - {name: gone, secret: {secretName: nothere}}
  - {name: nokey, configMap: {name: cfg, items: [{key: missing, path: m}]}}
  containers: [{name: c, image: b}]`),
    );
    const vols = set.pods[0].volumes as (ConfigMapVolume | SecretVolume)[];
    const files = (i: number) => {
      const r = vols[i].resolved;
      return r.state === 'missing' ? r.reason : r.files.map((f) => `${f.path} ${f.mode.toString(8)} ${Buffer.from(f.data).toString('hex')}`);
    };
    expect(vols[0].defaultMode).toBe(0o644);
    expect(files(0)).toEqual(['MODE 644 70726f64', 'app.yaml 644 706f72743a2038300a', 'logo.bin 644 000102ff']);
    expect(files(1)).toEqual(['conf/app.yaml 600 706f72743a2038300a']);
    expect(files(2)).toEqual(['password 400 736563726574', 'user 400 726f6f74']);
    expect(vols[3].resolved).toEqual({ state: 'optional-missing', files: [] });
    expect(files(4)).toBe('Secret "nothere" is not defined');
    expect(files(5)).toBe('ConfigMap "cfg" has no key "missing"');
    expect(set.warnings.map((w) => `${w.path}: ${w.message}`)).toEqual([
      'spec.volumes[4].secret: Secret "nothere" is not defined: containers mounting it cannot start',
      'spec.volumes[5].configMap: ConfigMap "cfg" has no key "missing": containers mounting it cannot start',
    ]);
  });

  test('env references keep their shape; a missing object is a warning', () => {
    const set = parseManifests(
      objects +
        '---\n' +
        pod(`  containers:
  - name: c
    image: b
    envFrom: [{configMapRef: {name: cfg}, prefix: CFG_}, {secretRef: {name: other, optional: true}}]
    env:
    - {name: PW, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: X, valueFrom: {configMapKeyRef: {name: absent, key: k}}}`),
    );
    const c = set.pods[0].containers[0];
    expect(c.envFrom).toEqual([
      { kind: 'configMap', name: 'cfg', prefix: 'CFG_', optional: false },
      { kind: 'secret', name: 'other', prefix: '', optional: true },
    ]);
    expect(c.env).toEqual([
      { name: 'PW', kind: 'secretKeyRef', secretName: 'creds', key: 'password', optional: false },
      { name: 'X', kind: 'configMapKeyRef', configMapName: 'absent', key: 'k', optional: false },
    ]);
    expect(set.warnings.map((w) => w.path)).toEqual(['spec.containers[0].env[1].valueFrom.configMapKeyRef']);
  });

  test('downwardAPI volume: metadata files are rendered at parse time', () => {
    const p = one(
      pod(
        `  volumes:
  - name: info
    downwardAPI:
      items:
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: labels, fieldRef: {fieldPath: metadata.labels}, mode: 0600}
      - {path: tier, fieldRef: {fieldPath: "metadata.labels['tier']"}}
      - {path: mem, resourceFieldRef: {containerName: c, resource: limits.memory, divisor: 1Mi}}
  containers: [{name: c, image: b}]`,
        'name: p, labels: {tier: web, app: x}',
      ),
    );
    const v = p.volumes[0] as DownwardApiVolume;
    expect(v.files.map((f) => [f.path, f.mode, Buffer.from(f.data).toString()])).toEqual([
      ['name', 0o644, 'p'],
      ['labels', 0o600, 'app="x"\ntier="web"'],
      ['tier', 0o644, 'web'],
    ]);
    expect(v.items[3]).toEqual({ path: 'mem', resourceFieldRef: { containerName: 'c', resource: 'limits.memory', divisor: '1Mi' } });
  });

  test('invalid base64, overlapping keys and bad keys are errors', () => {
    expect(
      problems(`apiVersion: v1
kind: ConfigMap
metadata: {name: c}
data: {a: x, "bad/key": v}
binaryData: {a: AAAA, b: "not base64!"}
`),
    ).toEqual([
      'data["bad/key"]: "bad/key" is not a valid key: use letters, digits, \'-\', \'_\' or \'.\' (at most 253, not "." or "..")',
      'binaryData.b: is not valid base64 ("notbase64!")',
    ]);
    expect(problems('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: x}\nbinaryData: {a: AAAA}\n')).toEqual(['binaryData.a: key "a" is also in data']);
  });
});

describe('parseManifests: suggestions for mistyped fields', () => {
  test('did you mean', () => {
    expect(
      problems(`apiVersion: v1
kind: Pod
metadata: {name: p, label: {a: b}}
spec:
  restartpolicy: Never
  containers:
  - name: c
    image: b
    imagePullpolicy: Always
    volumeMount: []
    resources: {limit: {cpu: 1}}
    livenessProbe: {httpGet: {port: 80, paht: /}}
    zzzzzz: 1
`),
    ).toEqual([
      'metadata.label: unknown field "label" (did you mean "labels"?)',
      'spec.containers[0].resources.limit: unknown field "limit" (did you mean "limits"?)',
      'spec.containers[0].livenessProbe.httpGet.paht: unknown field "paht" (did you mean "path"?)',
      'spec.containers[0].imagePullpolicy: unknown field "imagePullpolicy" (did you mean "imagePullPolicy"?)',
      'spec.containers[0].volumeMount: unknown field "volumeMount" (did you mean "volumeMounts"?)',
      'spec.containers[0].zzzzzz: unknown field "zzzzzz"',
      'spec.restartpolicy: unknown field "restartpolicy" (did you mean "restartPolicy"?)',
    ]);
  });
});

describe('parseManifests: more error forms', () => {
  test('a YAML 1.1 boolean where a string belongs: the hint quotes what was written', () => {
    expect(problems(pod('  containers: [{name: c, image: b, env: [{name: DEBUG, value: yes}, {name: MODE, value: 0644}]}]'))).toEqual([
      'spec.containers[0].env[0].value: expected a string, got boolean true (quote it: "yes")',
      'spec.containers[0].env[1].value: expected a string, got number 420 (quote it: "0644")',
    ]);
  });

  test('kubectl run --dry-run=client -o yaml output parses without warnings', () => {
    const set = parseManifests(`apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    run: nginx
  name: nginx
spec:
  containers:
  - image: nginx
    name: nginx
    resources: {}
  dnsPolicy: ClusterFirst
  restartPolicy: Always
status: {}
`);
    expect(set.warnings).toEqual([]);
    expect(set.pods[0].containers[0].image).toBe('nginx');
  });

  test('volumes, items, env sources, probes and pod fields', () => {
    expect(
      problems(`apiVersion: v1
kind: Pod
metadata: {name: p, generateName: p-}
spec:
  os: {name: windows}
  securityContext: {seccompProfile: {type: Localhost, localhostProfile: x.json}}
  hostAliases: [{ip: 10.0.0.256, hostnames: [Bad_Host]}]
  volumes:
  - {name: cm, configMap: {name: c, items: [{key: a, path: ../x}, {key: b, path: /abs}], defaultMode: 0777}}
  - {name: d, downwardAPI: {items: [{path: a}, {path: b, resourceFieldRef: {resource: limits.cpu}}, {path: b, fieldRef: {fieldPath: status.podIP}}]}}
  containers:
  - name: c
    image: "bad image"
    workingDir: relative
    envFrom: [{configMapRef: {name: a}, secretRef: {name: b}}]
    readinessProbe: {tcpSocket: {port: 80}, terminationGracePeriodSeconds: 5, periodSeconds: 0}
    lifecycle: {preStop: {tcpSocket: {port: 80}}}
`),
    ).toEqual([
      'metadata.generateName: is not supported by podrun yet: set metadata.name',
      'spec.containers[0].image: "bad image" is not an image reference: it contains white space',
      'spec.containers[0].workingDir: "relative" is not an absolute path',
      'spec.containers[0].readinessProbe.periodSeconds: must be at least 1, got 0',
      'spec.containers[0].lifecycle.preStop.tcpSocket: is not supported by podrun yet',
      'spec.volumes[0].configMap.items[0].path: "../x" must not contain ".."',
      'spec.volumes[0].configMap.items[1].path: "/abs" must be a relative path',
      'spec.hostAliases[0].ip: "10.0.0.256" is not a valid IP address',
      'spec.hostAliases[0].hostnames[0]: "Bad_Host" is not a valid DNS-1123 subdomain: use lowercase letters, digits, \'-\' and \'.\', starting and ending with a letter or digit',
    ]);
    // once the structure is right, the cross-field rules speak
    expect(
      problems(`apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  os: {name: windows}
  securityContext: {seccompProfile: {type: Localhost, localhostProfile: x.json}}
  volumes:
  - {name: cm, configMap: {name: c, items: [{key: a, path: x}, {key: b, path: x}]}}
  - {name: d, downwardAPI: {items: [{path: a}, {path: b, resourceFieldRef: {resource: limits.cpu}}, {path: c, fieldRef: {fieldPath: status.podIP}}]}}
  containers:
  - name: c
    image: b
    envFrom: [{configMapRef: {name: a}, secretRef: {name: b}}]
    readinessProbe: {tcpSocket: {port: 80}, terminationGracePeriodSeconds: 5}
`),
    ).toEqual([
      'spec.securityContext.seccompProfile.type: "Localhost" is not supported by podrun yet',
      'spec.os.name: "windows": podrun runs Linux pods only',
      'spec.volumes[0].configMap.items[1].path: "x" is used by another item',
      'spec.volumes[1].downwardAPI.items[0]: must have exactly one of fieldRef and resourceFieldRef',
      'spec.volumes[1].downwardAPI.items[1].resourceFieldRef.containerName: is required in a downwardAPI volume',
      'spec.volumes[1].downwardAPI.items[2].fieldRef.fieldPath: "status.podIP" is not a supported field path here (use metadata.name, metadata.namespace, metadata.uid, metadata.labels, metadata.annotations, metadata.labels[\'KEY\'] or metadata.annotations[\'KEY\'])',
      'spec.containers[0].envFrom[0]: must have exactly one of configMapRef and secretRef',
      'spec.containers[0].readinessProbe.terminationGracePeriodSeconds: may not be set on a readinessProbe',
    ]);
  });

  test('sidecars may have probes and hooks; allowPrivilegeEscalation false with SYS_ADMIN is refused', () => {
    const p = one(
      pod(`  initContainers:
  - name: side
    image: b
    restartPolicy: Always
    readinessProbe: {exec: {command: [true]}}
    lifecycle: {preStop: {exec: {command: [sh, -c, sleep 1]}}}
  containers: [{name: c, image: b}]`).replace('[true]', '["true"]'),
    );
    expect(p.initContainers[0].readinessProbe?.handler).toEqual({ kind: 'exec', command: ['true'] });
    expect(problems(pod('  containers: [{name: c, image: b, securityContext: {allowPrivilegeEscalation: false, capabilities: {add: [CAP_SYS_ADMIN]}}}]'))).toEqual([
      'spec.containers[0].securityContext.allowPrivilegeEscalation: cannot be false when capabilities.add has SYS_ADMIN',
    ]);
  });
});
