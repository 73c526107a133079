import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ImageConfig } from '../../src/image/types.js';
import {
  ContainerConfigError,
  containerEnv,
  downwardApiFiles,
  expandVars,
  mergeEnv,
  parseGroup,
  parsePasswd,
  processArgs,
  readRootfsUserFiles,
  resolveInRoot,
  resolveProcess,
  resolveUser,
  type NodeFacts,
} from '../../src/spec/image-config.js';
import { parseManifests } from '../../src/spec/parse.js';
import type { DownwardApiVolume, ManifestSet } from '../../src/spec/plan.js';

const node: NodeFacts = { nodeName: 'host1', cpuMillis: 2000, memoryBytes: 24 * 2 ** 30, hostIP: '10.0.0.1' };

const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment

+nisuser::::::
broken:line
nginx:x:101:101:nginx user:/nonexistent:/bin/false
app:x:1000:1000::/home/app:/bin/sh
`;
const GROUP = `root:x:0:
daemon:x:1:
nginx:x:101:
app:x:1000:
audio:x:29:app,nginx
video:x:44: app
wheel:x:10:root
`;
const files = { passwd: PASSWD, group: GROUP };

describe('$(VAR) expansion', () => {
  const vars: Record<string, string> = { A: 'a', EMPTY: '', B: '$(A)' };
  const look = (n: string) => vars[n];
  test.each([
    ['$(A)', 'a'],
    ['x$(A)y$(A)', 'xaya'],
    ['$(EMPTY)', ''],
    ['$(UNDEFINED)', '$(UNDEFINED)'],
    ['$$(A)', '$(A)'],
    ['$$$(A)', '$a'],
    ['$$', '$'],
    ['$', '$'],
    ['a$', 'a$'],
    ['$A', '$A'],
    ['$(A', '$(A'],
    ['$()', '$()'],
    ['$(B)', '$(A)'], // no recursive expansion
    ['100%$', '100%$'],
    ['$(A)$(A', 'a$(A'],
  ])('%j → %j', (input, want) => {
    expect(expandVars(input, look)).toBe(want);
  });
});

describe('passwd and group parsing', () => {
  test('valid lines only', () => {
    expect(parsePasswd(PASSWD).map((p) => `${p.name}:${p.uid}:${p.gid}`)).toEqual(['root:0:0', 'daemon:1:1', 'nginx:101:101', 'app:1000:1000']);
    expect(parseGroup(GROUP).find((g) => g.name === 'audio')?.members).toEqual(['app', 'nginx']);
    expect(parseGroup(GROUP).find((g) => g.name === 'video')?.members).toEqual(['app']);
  });
});

describe('user resolution (runAsUser > pod > image User)', () => {
  test.each([
    // [input, uid, gid, additional]
    [{}, 0, 0, [0, 10]],
    [{ imageUser: 'nginx' }, 101, 101, [101, 29]],
    [{ imageUser: '1000' }, 1000, 1000, [1000, 29, 44]],
    [{ imageUser: '1000:44' }, 1000, 44, [44, 29]],
    [{ imageUser: 'app:video' }, 1000, 44, [44, 29]],
    [{ imageUser: '4242' }, 4242, 0, [0]], // uid unknown to passwd: gid 0
    [{ imageUser: '4242:4242' }, 4242, 4242, [4242]],
    [{ imageUser: 'nginx', runAsUser: 1000 }, 1000, 1000, [1000, 29, 44]],
    [{ imageUser: 'nginx', runAsGroup: 5 }, 101, 5, [5, 29]],
    [{ runAsGroup: 7 }, 0, 7, [7, 10]],
    [{ runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000, 29], fsGroup: 2000 }, 1000, 3000, [3000, 29, 44, 4000, 2000]],
  ])('%j → uid %d gid %d groups %j', (input, uid, gid, extra) => {
    const u = resolveUser(input, files);
    expect([u.uid, u.gid, u.additionalGids]).toEqual([uid, gid, extra]);
  });

  test('a missing name is a clear CreateContainerConfigError', () => {
    expect(() => resolveUser({ imageUser: 'postgres' }, files, 'container "db"')).toThrow(ContainerConfigError);
    expect(() => resolveUser({ imageUser: 'postgres' }, files, 'container "db"')).toThrow('Cannot resolve user "postgres" of container "db": no such user in the image\'s /etc/passwd');
    expect(() => resolveUser({ imageUser: 'nginx' }, {}, 'c')).toThrow('Cannot resolve user "nginx" of c: the image has no /etc/passwd');
    expect(() => resolveUser({ imageUser: 'nginx:staff' }, files, 'c')).toThrow('Cannot resolve group "staff" of c: no such group in the image\'s /etc/group');
    try {
      resolveUser({ imageUser: 'x' }, files);
    } catch (e) {
      expect((e as ContainerConfigError).reason).toBe('CreateContainerConfigError');
      expect((e as ContainerConfigError).code).toBe('EINVAL_SPEC');
    }
  });
});

describe('command and args against Entrypoint and Cmd', () => {
  const image: ImageConfig = { Entrypoint: ['/entry'], Cmd: ['--default'] };
  test.each([
    [undefined, undefined, image, ['/entry', '--default']],
    [['/bin/cmd'], undefined, image, ['/bin/cmd']],
    [['/bin/cmd'], ['a'], image, ['/bin/cmd', 'a']],
    [undefined, ['a', 'b'], image, ['/entry', 'a', 'b']],
    [undefined, undefined, { Cmd: ['sh'] }, ['sh']],
    [undefined, ['x'], { Cmd: ['sh'] }, ['x']],
    [undefined, undefined, { Entrypoint: [''], Cmd: ['sh'] }, ['sh']],
    [undefined, undefined, { Entrypoint: null, Cmd: null }, null],
    [undefined, undefined, {}, null],
  ] as [string[] | undefined, string[] | undefined, ImageConfig, string[] | null][])('command %j args %j image %j → %j', (command, args, img, want) => {
    const c = { name: 'c', command, args };
    if (want === null) {
      expect(() => processArgs(c, img)).toThrow('Cannot start container "c": no command specified');
    } else {
      expect(processArgs(c, img)).toEqual(want);
    }
  });

  test('command and args are expanded with the container env', () => {
    const env = new Map([['GREETING', 'hi']]);
    expect(processArgs({ name: 'c', command: ['echo', '$(GREETING)', '$$(GREETING)', '$(NOPE)'] }, {}, env)).toEqual(['echo', 'hi', '$(GREETING)', '$(NOPE)']);
  });
});

const withObjects = `apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {LEVEL: debug, url: "http://$(HOST)"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: nums}
data: {"1st": "y", "2nd": "z", ok: "v"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cret}
---
`;

function parsed(spec: string, meta = 'name: web, uid: "u-1", labels: {app: web}'): ManifestSet {
  return parseManifests(`${withObjects}apiVersion: v1\nkind: Pod\nmetadata: {${meta}}\nspec:\n${spec}`);
}

describe('container environment', () => {
  test('envFrom, env order, expansion of earlier variables only, refs and downward API', () => {
    const set = parsed(`  containers:
  - name: c
    image: b
    resources: {limits: {memory: 64Mi}}
    envFrom: [{configMapRef: {name: cfg}, prefix: CFG_}, {configMapRef: {name: nums}}]
    env:
    - {name: HOST, value: example.org}
    - {name: URL, value: "https://$(HOST)/$(LATER)"}
    - {name: LATER, value: late}
    - {name: PATHX, value: "$(PATH)"}
    - {name: LEVEL, value: "$(CFG_LEVEL)!"}
    - {name: PW, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: MISSING, valueFrom: {configMapKeyRef: {name: cfg, key: nokey, optional: true}}}
    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: HOSTIP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: CPU, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}
    - {name: CPUM, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}`);
    const pod = set.pods[0];
    const warnings: string[] = [];
    const env = containerEnv(pod, pod.containers[0], { manifests: set, node, podIP: '10.88.0.5' }, warnings);
    expect([...env]).toEqual([
      ['CFG_LEVEL', 'debug'],
      ['CFG_url', 'http://$(HOST)'], // values from envFrom are not expanded
      ['ok', 'v'],
      ['HOST', 'example.org'],
      ['URL', 'https://example.org/$(LATER)'],
      ['LATER', 'late'],
      ['PATHX', '$(PATH)'], // image Env is invisible to kubelet's expansion
      ['LEVEL', 'debug!'],
      ['PW', 's3cret'],
      ['POD', 'web'],
      ['NS', 'default'],
      ['UID', 'u-1'],
      ['APP', 'web'],
      ['NODE', 'host1'],
      ['IP', '10.88.0.5'],
      ['HOSTIP', '10.0.0.1'],
      ['MEM', '64'],
      ['CPU', '2'], // no cpu limit → node allocatable (2 cores)
      ['CPUM', '0'],
    ]);
    expect(warnings).toEqual(['container "c" of pod "web": skipped keys of configMap "nums" that are not valid variable names: "1st", "2nd"']);
  });

  test('missing objects and keys → CreateContainerConfigError; optional ones are skipped', () => {
    const set = parsed(`  containers:
  - name: c
    image: b
    env: [{name: X, valueFrom: {configMapKeyRef: {name: cfg, key: nokey}}}]
  - name: d
    image: b
    env: [{name: X, valueFrom: {secretKeyRef: {name: nope, key: k}}}]
  - name: e
    image: b
    envFrom: [{configMapRef: {name: nope}}]
  - name: f
    image: b
    envFrom: [{secretRef: {name: nope, optional: true}}]
    env: [{name: X, valueFrom: {secretKeyRef: {name: nope, key: k, optional: true}}}]`);
    const pod = set.pods[0];
    const env = (i: number) => containerEnv(pod, pod.containers[i], { manifests: set, node });
    expect(() => env(0)).toThrow('Cannot set X in container "c" of pod "web": ConfigMap "cfg" has no key "nokey"');
    expect(() => env(1)).toThrow('Cannot set X in container "d" of pod "web": Secret "nope" not found');
    expect(() => env(2)).toThrow('Cannot build the environment of container "e" of pod "web": ConfigMap "nope" not found (envFrom)');
    expect(() => env(0)).toThrow(ContainerConfigError);
    expect([...env(3)]).toEqual([]);
  });

  test('mergeEnv replaces by name in place and appends new names (containerd WithEnv)', () => {
    expect(mergeEnv(['PATH=/a', 'X=1'], ['X=2', 'Y=3'], ['PATH=/b'])).toEqual(['PATH=/b', 'X=2', 'Y=3']);
  });
});

describe('resolveProcess', () => {
  const image: ImageConfig = { User: 'nginx', Env: ['PATH=/opt/bin:/usr/bin', 'LANG=C.UTF-8'], Entrypoint: ['/docker-entrypoint.sh'], Cmd: ['nginx', '-g', 'daemon off;'], WorkingDir: '/srv' };

  test('a complete process: argv, env order, cwd, user, groups, caps', () => {
    const set = parsed(`  securityContext: {supplementalGroups: [5000], fsGroup: 2000}
  containers:
  - name: c
    image: b
    args: ["-c", "$(CONF)"]
    env: [{name: CONF, value: /etc/nginx.conf}, {name: LANG, value: en_US.UTF-8}]
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}
    tty: true`);
    const pod = set.pods[0];
    const p = resolveProcess(pod, pod.containers[0], image, files, { manifests: set, node });
    expect(p).toEqual({
      args: ['/docker-entrypoint.sh', '-c', '/etc/nginx.conf'],
      env: ['PATH=/opt/bin:/usr/bin', 'LANG=en_US.UTF-8', 'HOSTNAME=web', 'CONF=/etc/nginx.conf'],
      cwd: '/srv',
      uid: 101,
      gid: 101,
      additionalGids: [101, 29, 5000, 2000],
      noNewPrivileges: true,
      capabilities: { bounding: ['CAP_NET_BIND_SERVICE'], effective: ['CAP_NET_BIND_SERVICE'], permitted: ['CAP_NET_BIND_SERVICE'], inheritable: [], ambient: [] },
      readonlyRootfs: true,
      privileged: false,
      terminal: true,
      warnings: [],
    });
  });

  test('defaults: PATH, cwd "/", root, containerd default caps, privilege escalation allowed', () => {
    const set = parsed('  containers: [{name: c, image: b, command: [sh]}]');
    const pod = set.pods[0];
    const p = resolveProcess(pod, pod.containers[0], {}, {}, { node });
    expect(p.env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=web']);
    expect(p.cwd).toBe('/');
    expect([p.uid, p.gid, p.additionalGids]).toEqual([0, 0, [0]]);
    expect(p.noNewPrivileges).toBe(false);
    expect(p.capabilities.bounding).toHaveLength(14);
    const hn = parsed('  hostNetwork: true\n  containers: [{name: c, image: b, command: [sh]}]').pods[0];
    expect(resolveProcess(hn, hn.containers[0], {}, {}, { node }).env).toContain('HOSTNAME=host1');
    const wd = parsed('  containers: [{name: c, image: b, command: [sh], workingDir: /data}]').pods[0];
    expect(resolveProcess(wd, wd.containers[0], { WorkingDir: '/srv' }, {}, { node }).cwd).toBe('/data');
  });

  test('privileged gets what the runtime holds', () => {
    const pod = parsed('  containers: [{name: c, image: b, command: [sh], securityContext: {privileged: true}}]').pods[0];
    const p = resolveProcess(pod, pod.containers[0], {}, {}, { node, hostCapabilities: ['CAP_CHOWN', 'SYS_ADMIN'] });
    expect(p.capabilities.bounding).toEqual(['CAP_CHOWN', 'CAP_SYS_ADMIN']);
    expect(p.privileged).toBe(true);
  });

  test('runAsNonRoot as kubelet checks it', () => {
    const run = (sc: string, img: ImageConfig, podSc = '') => {
      const pod = parsed(`${podSc}  containers: [{name: c, image: b, command: [sh], securityContext: {${sc}}}]`).pods[0];
      return () => resolveProcess(pod, pod.containers[0], img, files, { node });
    };
    expect(run('runAsNonRoot: true', {})).toThrow('Cannot start container "c" of pod "web": runAsNonRoot is set and the image will run as root');
    expect(run('runAsNonRoot: true', { User: '0:0' })).toThrow('the image will run as root');
    expect(run('runAsNonRoot: true', { User: 'nginx' })).toThrow('runAsNonRoot is set and the image has a non-numeric user ("nginx"), which cannot be verified as non-root');
    expect(run('runAsNonRoot: true, runAsUser: 0', { User: '1000' })).toThrow('runAsUser 0 breaks the runAsNonRoot policy');
    expect(run('', {}, '  securityContext: {runAsNonRoot: true}\n')).toThrow(ContainerConfigError);
    expect(run('runAsNonRoot: true', { User: '1000' })().uid).toBe(1000);
    expect(run('runAsNonRoot: true, runAsUser: 1000', { User: 'nginx' })().uid).toBe(1000);
    expect(run('runAsNonRoot: false', {}, '  securityContext: {runAsNonRoot: true}\n')().uid).toBe(0);
  });
});

describe('downward API volume files with resources', () => {
  test('resourceFieldRef items use the limit, else node allocatable', () => {
    const set = parsed(`  volumes:
  - name: info
    downwardAPI:
      items:
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: mem, resourceFieldRef: {containerName: c, resource: limits.memory, divisor: 1Mi}}
      - {path: cpu, resourceFieldRef: {containerName: c, resource: limits.cpu, divisor: 1m}}
      - {path: req, resourceFieldRef: {containerName: c, resource: requests.cpu}}
  containers: [{name: c, image: b, resources: {limits: {memory: 100Mi}, requests: {cpu: 1500m}}}]`);
    const pod = set.pods[0];
    const out = downwardApiFiles(pod, pod.volumes[0] as DownwardApiVolume, node).map((f) => `${f.path}=${Buffer.from(f.data).toString()}`);
    expect(out).toEqual(['name=web', 'mem=100', 'cpu=2000', 'req=2']);
  });
});

describe('reading /etc/passwd from a rootfs never leaves it', () => {
  let dir: string;
  let root: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'podrun-test-'));
    root = path.join(dir, 'rootfs');
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await mkdir(path.join(root, 'real'), { recursive: true });
    await writeFile(path.join(dir, 'outside-passwd'), 'evil:x:0:0::/:/bin/sh\n');
    await writeFile(path.join(root, 'real', 'group'), GROUP);
    // etc/passwd → an absolute link that would escape if followed on the host
    await symlink(path.join(dir, 'outside-passwd'), path.join(root, 'etc', 'passwd'));
    // etc/group → ../../../real/group: ".." stops at the rootfs root
    await symlink('../../../real/group', path.join(root, 'etc', 'group'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('absolute and ../ links are resolved inside the rootfs', async () => {
    expect(await resolveInRoot(root, 'etc/group')).toBe(path.join(root, 'real', 'group'));
    expect(await resolveInRoot(root, 'etc/passwd')).toBeUndefined(); // <root>/<dir>/outside-passwd does not exist
    const f = await readRootfsUserFiles(root);
    expect(f.passwd).toBeUndefined();
    expect(f.group).toBe(GROUP);
  });

  test('a plain rootfs reads both files; a symlink loop is refused', async () => {
    await rm(path.join(root, 'etc', 'passwd'));
    await writeFile(path.join(root, 'etc', 'passwd'), PASSWD);
    expect((await readRootfsUserFiles(root)).passwd).toBe(PASSWD);
    await symlink('loop2', path.join(root, 'loop1'));
    await symlink('loop1', path.join(root, 'loop2'));
    await expect(resolveInRoot(root, 'loop1')).rejects.toThrow('too many levels of symbolic links');
  });
});
