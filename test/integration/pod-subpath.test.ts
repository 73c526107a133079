/**
 * volumeMounts subPath against a hostile pod, and mount targets against a hostile image.
 *
 * - Pods (PodRuntime, the real shim and kernel): subPath of an emptyDir (missing dirs created)
 *   and of a hostPath (a file, read-only, and a directory); a component that an init container
 *   turned into a symlink to "/" is refused and nothing of the host shows inside.
 * - The race, made deterministic: TypeScript checks the subPath (checkSubPath), then the
 *   "attacker" swaps a component for a symlink to "/", then the shim starts. Through the runtime
 *   (the swap runs in the synchronous event hook of the shim's "spawn" trace, after the plan is
 *   written) and through TestSandbox (several components). The shim must refuse (ELOOP /
 *   ENOTDIR) instead of mounting the host's root.
 * - Mount targets: an image whose mountPath is an absolute symlink to /etc gets the volume on ITS
 *   /etc, not the host's; one that points through /proc magic links (/proc/1/root with a shared
 *   PID namespace, whose pid 1 has the host's root) is refused and creates nothing on the host
 *   (before openat2 RESOLVE_NO_MAGICLINKS, the shim's mkdir made /tmp/<name> on the host).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseManifests } from '../../src/spec/parse.js';
import { PodRuntime } from '../../src/runtime/api.js';
import { readLogs } from '../../src/runtime/logs.js';
import { checkSubPath, volumeBind } from '../../src/runtime/container.js';
import { serializePlan } from '../../src/runtime/shim.js';
import type { PodrunEvent } from '../../src/util/events.js';
import { pushImage } from '../../src/image/builder.js';
import { mountsUnder } from '../../src/linux/mounts.js';
import { cgroupDirs, mountsBelow, randomName, startPodEnv, type PodEnv } from '../helpers/pod.js';
import { busyboxWithSymlinks } from '../helpers/images.js';
import { isAlive, TestSandbox } from '../helpers/sandbox.js';

let e: PodEnv;
let rt: PodRuntime;
let hostDir: string;
let linkImage: string;
/** Called synchronously for every runtime event: the race test's hook. */
let onEvent: ((ev: PodrunEvent) => void) | undefined;
/** A name no one else uses: the image's symlinks point at /tmp/<escape> and /etc/<escape> of the host. */
const escape = `podrun-test-escape-${crypto.randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  e = await startPodEnv();
  rt = await PodRuntime.open({ root: e.root, runRoot: e.runRoot, logRoot: e.logRoot, network: false, cgroupParent: e.cgroupParent, events: (ev) => onEvent?.(ev) });
  hostDir = path.join(e.dir, 'host');
  fs.mkdirSync(path.join(hostDir, 'conf'), { recursive: true });
  fs.writeFileSync(path.join(hostDir, 'conf', 'app.conf'), 'level=debug\n');
  fs.mkdirSync(path.join(hostDir, 'data'));
  fs.writeFileSync(path.join(hostDir, 'data', 'from-host.txt'), 'host data\n');
  linkImage = `${e.reg.host}/podrun-test/symlinks:1`;
  await pushImage(
    linkImage,
    await busyboxWithSymlinks([
      ['data', '/etc'],
      ['magic', '/proc/1/root/tmp'],
      ['selfroot', '/proc/self/root/etc'],
    ]),
  );
}, 120_000);

afterAll(async () => {
  await e?.cleanup();
  // only a regression would have made these (unique names)
  for (const p of [`/${escape}`, `/tmp/${escape}`, `/etc/${escape}`]) fs.rmSync(p, { recursive: true, force: true });
});

type Status = { phase: string; containerStatuses: { name: string; state: Record<string, { reason?: string; message?: string; exitCode?: number }> }[] };

async function runToEnd(yaml: string): Promise<{ lines: string[]; status: Status }> {
  const set = parseManifests(yaml);
  const { key } = await rt.upPod(set.pods[0], { manifests: set });
  try {
    const status = (await rt.waitDone(key)) as unknown as Status;
    const p = set.pods[0];
    let lines: string[] = [];
    try {
      lines = readLogs(path.join(e.logRoot, `${p.namespace}_${p.name}_${p.uid}`, p.containers[0].name)).map((l) => l.text);
    } catch {
      /* the container never started */
    }
    return { lines, status };
  } finally {
    await rt.downPod(key, { gracePeriodSeconds: 0 });
  }
}

/** The one way a container ends here when its start is refused: not running, with a message. */
function refusal(status: Status): string {
  const c = status.containerStatuses[0];
  const s = c.state.terminated ?? c.state.waiting;
  expect(s, JSON.stringify(c)).toBeDefined();
  return `${s!.reason} ${s!.message}`;
}

describe('subPath in pods', () => {
  it('mounts a subPath of an emptyDir (missing dirs made with the volume mode) and of a hostPath (file read-only, dir)', async () => {
    const { lines } = await runToEnd(`apiVersion: v1
kind: Pod
metadata: {name: ${randomName()}}
spec:
  restartPolicy: Never
  volumes:
  - {name: e, emptyDir: {}}
  - {name: h, hostPath: {path: ${hostDir}, type: Directory}}
  containers:
  - name: main
    image: ${e.busybox}
    command: [sh, -c, "echo in-sub > /sub/f; cat /all/a/b/f; stat -c '%a %F' /all/a /all/a/b; cat /etc/app.conf; (echo x >> /etc/app.conf) 2>&1 | grep -o 'Read-only file system'; cat /hdata/from-host.txt; echo from-c > /hdata/new.txt; ls /all"]
    volumeMounts:
    - {name: e, mountPath: /all}
    - {name: e, mountPath: /sub, subPath: a/b}
    - {name: h, mountPath: /etc/app.conf, subPath: conf/app.conf, readOnly: true}
    - {name: h, mountPath: /hdata, subPath: data}
`);
    expect(lines).toEqual(['in-sub', '777 directory', '777 directory', 'level=debug', 'Read-only file system', 'host data', 'a']);
    expect(fs.readFileSync(path.join(hostDir, 'data', 'new.txt'), 'utf8')).toBe('from-c\n');
    expect(fs.readFileSync(path.join(hostDir, 'conf', 'app.conf'), 'utf8')).toBe('level=debug\n');
  });

  it('refuses a subPath whose component an init container made a symlink to "/"; the host is not mounted', async () => {
    for (const sub of ['evil', 'evil/tmp']) {
      const { lines, status } = await runToEnd(`apiVersion: v1
kind: Pod
metadata: {name: ${randomName()}}
spec:
  restartPolicy: Never
  volumes: [{name: v, emptyDir: {}}]
  initContainers:
  - {name: prep, image: "${e.busybox}", command: [ln, -s, /, /v/evil], volumeMounts: [{name: v, mountPath: /v}]}
  containers:
  - name: main
    image: ${e.busybox}
    command: [sh, -c, "ls /x; touch /x/${escape}"]
    volumeMounts: [{name: v, mountPath: /x, subPath: ${sub}}]
`);
      expect(refusal(status)).toMatch(/subPath "evil(\/tmp)?" of volume "v": "evil" is a symlink that leaves the volume/);
      expect(lines).toEqual([]);
      expect(fs.existsSync(`/${escape}`) || fs.existsSync(`/tmp/${escape}`)).toBe(false);
    }
  });

  it('a component swapped for a symlink to "/" between podrun\'s check and the shim fails the start, naming volume and subPath', async () => {
    // the hook runs when the runtime spawns the shim for "main": after checkSubPath, before the mount
    const vol = path.join(hostDir, 'race');
    fs.mkdirSync(path.join(vol, 'd'), { recursive: true });
    let swapped = 0;
    onEvent = (ev) => {
      if (ev.type === 'trace' && ev.area === 'shim' && ev.step === 'spawn' && ev.detail?.includes('/containers/main/')) {
        fs.renameSync(path.join(vol, 'd'), path.join(vol, 'd.moved'));
        fs.symlinkSync('/', path.join(vol, 'd'));
        swapped++;
      }
    };
    try {
      const { lines, status } = await runToEnd(`apiVersion: v1
kind: Pod
metadata: {name: ${randomName()}}
spec:
  restartPolicy: Never
  volumes: [{name: v, hostPath: {path: ${vol}}}]
  containers:
  - {name: main, image: "${e.busybox}", command: [sh, -c, "ls /x; touch /x/${escape}"], volumeMounts: [{name: v, mountPath: /x, subPath: d}]}
`);
      expect(swapped).toBe(1);
      expect(refusal(status)).toMatch(/^StartError .*shim step "subpath-symlink" on "volume v subPath d at d" failed: ELOOP/);
      expect(lines).toEqual([]);
      expect(fs.existsSync(`/${escape}`)).toBe(false);
    } finally {
      onEvent = undefined;
    }
  });

  it('mounts one key of a configMap with subPath (read-only file)', async () => {
    const { lines } = await runToEnd(`apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {app.conf: "mode=cm", other: "x"}
---
apiVersion: v1
kind: Pod
metadata: {name: ${randomName()}}
spec:
  restartPolicy: Never
  volumes: [{name: c, configMap: {name: cfg}}]
  containers:
  - name: main
    image: ${e.busybox}
    command: [sh, -c, "cat /etc/app.conf; echo; ls /etc | grep -c other; (echo x > /etc/app.conf) 2>&1 | grep -o 'Read-only file system'"]
    volumeMounts: [{name: c, mountPath: /etc/app.conf, subPath: app.conf}]
`);
    expect(lines).toEqual(['mode=cm', '0', 'Read-only file system']);
  });

  it('mounts a subPath through a symlink that stays inside the volume', async () => {
    fs.mkdirSync(path.join(hostDir, 'inner'), { recursive: true });
    fs.writeFileSync(path.join(hostDir, 'inner', 'i.txt'), 'inner\n');
    fs.symlinkSync('inner', path.join(hostDir, 'to-inner'));
    const { lines } = await runToEnd(`apiVersion: v1
kind: Pod
metadata: {name: ${randomName()}}
spec:
  restartPolicy: Never
  volumes: [{name: h, hostPath: {path: ${hostDir}}}]
  containers:
  - {name: main, image: "${e.busybox}", command: [cat, /i/i.txt], volumeMounts: [{name: h, mountPath: /i, subPath: to-inner}]}
`);
    expect(lines).toEqual(['inner']);
  });
});

describe('mount targets in a hostile image', () => {
  it('an absolute symlink at the mountPath (/data -> /etc) mounts on the container\'s /etc, not the host\'s', async () => {
    const hostEtc = fs.readdirSync('/etc').sort();
    const { lines, status } = await runToEnd(`apiVersion: v1
kind: Pod
metadata: {name: ${randomName()}}
spec:
  restartPolicy: Never
  volumes: [{name: h, hostPath: {path: ${hostDir}/data}}]
  containers:
  - name: main
    image: ${linkImage}
    command: [sh, -c, "cat /etc/from-host.txt; touch /data/${escape} && echo wrote; ls /etc | grep -c passwd"]
    volumeMounts: [{name: h, mountPath: /data}]
`);
    expect(lines, JSON.stringify(status.containerStatuses[0].state)).toEqual(['host data', 'wrote', '0']);
    // the file landed in the volume, and the host's /etc is as it was
    expect(fs.existsSync(path.join(hostDir, 'data', escape))).toBe(true);
    expect(fs.existsSync(`/etc/${escape}`)).toBe(false);
    expect(fs.readdirSync('/etc').sort()).toEqual(hostEtc);
  });

  it('a mountPath through /proc magic links is refused and creates nothing on the host', async () => {
    // shareProcessNamespace: pid 1 is the pod's pause process, whose root is the host's root
    const magic = await runToEnd(`apiVersion: v1
kind: Pod
metadata: {name: ${randomName()}}
spec:
  restartPolicy: Never
  shareProcessNamespace: true
  volumes: [{name: e, emptyDir: {}}]
  containers:
  - {name: main, image: "${linkImage}", command: ["true"], volumeMounts: [{name: e, mountPath: /magic/${escape}}]}
`);
    expect(fs.existsSync(`/tmp/${escape}`)).toBe(false);
    expect(refusal(magic.status)).toMatch(new RegExp(`shim step "resolve-bind-target" on "/magic/${escape}" failed: ELOOP`));
    const self = await runToEnd(`apiVersion: v1
kind: Pod
metadata: {name: ${randomName()}}
spec:
  restartPolicy: Never
  volumes: [{name: e, emptyDir: {}}]
  containers:
  - {name: main, image: "${linkImage}", command: ["true"], volumeMounts: [{name: e, mountPath: /selfroot}]}
`);
    expect(refusal(self.status)).toMatch(/shim step "resolve-bind-target" on "\/selfroot" failed: ELOOP/);
  });

  it('leaves no mount or cgroup', () => {
    expect(mountsBelow(e.dir)).toEqual([]);
    expect(cgroupDirs(e.cgroupParent)).toEqual([]);
  });
});

describe('the check-then-mount race, made deterministic', () => {
  let sb: TestSandbox;
  beforeAll(() => {
    sb = new TestSandbox();
  });
  afterAll(async () => {
    const base = sb.base;
      await sb.cleanup();
    expect(mountsUnder(base)).toEqual([]);
    expect(sb.cg.exists(sb.id)).toBe(false);
    expect(sb.pidsToKill.alive()).toEqual([]);
  });

  /** A volume with d/inner/f; `swap` runs between TypeScript's check and the shim's start. */
  async function attempt(name: string, sub: string, swap: (vol: string) => void) {
    const vol = fs.mkdtempSync(path.join(sb.base, 'vol-'));
    fs.mkdirSync(path.join(vol, 'd', 'inner'), { recursive: true });
    fs.writeFileSync(path.join(vol, 'd', 'inner', 'f'), 'in the volume\n');
    const bind = volumeBind('v', vol, sub, '/x', false);
    swap(vol);
    const c = sb.container(name, ['sh', '-c', `ls /x; touch /x/${escape}`], { plan: { mounts: [bind] } });
    return { c, vol, run: () => sb.run(c) };
  }

  it('without a swap, the checked subPath mounts (and a missing tail is created by the shim)', async () => {
    expect(checkSubPath('v', sb.base, 'not/there/yet')).toMatchObject({ path: 'not/there/yet' });
    const { c, vol, run } = await attempt('race-none', 'd/new/deeper', () => {});
    expect(fs.existsSync(path.join(vol, 'd', 'new'))).toBe(false); // TypeScript made nothing
    expect((await run()).exitCode).toBe(0);
    expect(fs.statSync(path.join(vol, 'd', 'new', 'deeper')).isDirectory()).toBe(true);
    expect(fs.existsSync(path.join(vol, 'd', 'new', 'deeper', escape))).toBe(true);
    expect(sb.stdout(c)).toEqual([]);
  });

  const swaps: [string, string, (vol: string) => void][] = [
    ['the last component', 'd', (vol) => swapForLink(path.join(vol, 'd'), '/')],
    ['a middle component', 'd/inner', (vol) => swapForLink(path.join(vol, 'd'), '/')],
    ['a component checked as missing', 'd/new', (vol) => fs.symlinkSync('/', path.join(vol, 'd', 'new'))],
    ['a relative symlink climbing out', 'd/inner', (vol) => swapForLink(path.join(vol, 'd'), '../../../../../../../..')],
  ];
  for (const [what, sub, swap] of swaps) {
    it(`a component swapped for a symlink after the check is refused by the shim: ${what}`, async () => {
      const { c, run } = await attempt(`race-${sub.replace(/\W/g, '-')}-${crypto.randomBytes(2).toString('hex')}`, sub, swap);
      await expect(run()).rejects.toMatchObject({ code: 'ESHIM', step: 'subpath-symlink', errnoName: 'ELOOP', path: expect.stringContaining(`volume v subPath ${sub} at `) });
      expect(sb.stdout(c)).toEqual([]); // the container never ran
      expect(fs.existsSync(`/${escape}`) || fs.existsSync(`/tmp/${escape}`)).toBe(false);
    });
  }

  it('a file in the middle of the subPath: refused by the check, and by the shim when it appears after', async () => {
    const vol = fs.mkdtempSync(path.join(sb.base, 'vol-'));
    fs.writeFileSync(path.join(vol, 'f'), 'x');
    expect(() => volumeBind('v', vol, 'f/x', '/x', false)).toThrow(/subPath "f\/x" of volume "v": "f" is not a directory/);
    const { run } = await attempt('race-notdir', 'd/g/x', (v) => fs.writeFileSync(path.join(v, 'd', 'g'), 'x'));
    await expect(run()).rejects.toMatchObject({ code: 'ESHIM', step: 'subpath-open', errnoName: 'ENOTDIR', path: 'volume v subPath d/g/x at g' });
  });
});

function swapForLink(dir: string, target: string): void {
  fs.renameSync(dir, `${dir}.moved`);
  fs.symlinkSync(target, dir);
}

describe('what TypeScript decides (checkSubPath, the plan line)', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(e.dir, 'check-'));
    fs.mkdirSync(path.join(dir, 'vol/inner'), { recursive: true });
    fs.chmodSync(path.join(dir, 'vol'), 0o750);
    fs.symlinkSync('inner', path.join(dir, 'vol/link'));
    fs.symlinkSync('/etc', path.join(dir, 'vol/out'));
    fs.symlinkSync('nowhere', path.join(dir, 'vol/dangling'));
  });

  it('resolves symlinks that stay inside, creates nothing, refuses the rest', () => {
    const vol = path.join(dir, 'vol');
    expect(checkSubPath('v', vol, 'link/a/b')).toEqual({ root: vol, path: 'inner/a/b', createMode: 0o750 });
    expect(fs.existsSync(path.join(vol, 'inner/a'))).toBe(false);
    expect(checkSubPath('v', vol, './link/.')).toMatchObject({ path: 'inner' });
    expect(() => checkSubPath('v', vol, 'out/x')).toThrow(/"out" is a symlink that leaves the volume/);
    expect(() => checkSubPath('v', vol, 'dangling')).toThrow(/"dangling" is a symlink that does not resolve/);
    expect(() => checkSubPath('v', vol, 'inner/../../x')).toThrow(/relative without "\.\."/);
    expect(() => checkSubPath('v', path.join(e.dir, 'nope'), 'x')).toThrow(/the volume ".*nope" cannot be opened \(ENOENT\)/);
  });

  it('a subPath that is the volume root binds the root; others carry path, mode and volume to the shim', () => {
    const vol = path.join(dir, 'vol');
    fs.symlinkSync('.', path.join(vol, 'self'));
    expect(volumeBind('v', vol, 'self', '/x', true)).toEqual({ source: vol, target: '/x', readOnly: true, recursive: true });
    const b = volumeBind('my vol', vol, 'link/new dir', '/x', false);
    expect(b.subPath).toEqual({ path: 'inner/new dir', createMode: 0o750, volume: 'my vol' });
    const plan = serializePlan({
      containerId: 'c',
      stateDir: '/s',
      logPath: '/l',
      rootfs: { lowerDirs: ['/a'], upperDir: '/u', workDir: '/w', mountPoint: '/m', readOnly: false },
      namespaces: {},
      cgroupProcs: [],
      cgroupMount: null,
      mounts: [b],
      maskedPaths: [],
      readonlyPaths: [],
      sysctls: [],
      process: { args: ['true'], env: [], cwd: '/', uid: 0, gid: 0, additionalGids: [], noNewPrivileges: false, capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] } },
    });
    expect(plan.split('\n').filter((l) => l.startsWith('bind '))).toEqual([`bind ${vol} /x rw rec inner/new%20dir 750 my%20vol`]);
  });
});
