/**
 * Volumes as a container sees them: configMap / secret / downwardAPI files with their modes,
 * read-only; emptyDir medium Memory as a sized tmpfs; hostPath type checks; subPath, also one
 * that tries to leave its volume through a symlink; /etc/hosts with hostAliases; /dev/shm.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { parseManifests } from '../../src/spec/parse.js';
import { PodRuntime } from '../../src/runtime/api.js';
import { readLogs } from '../../src/runtime/logs.js';
import { cgroupDirs, mountsBelow, randomName, startPodEnv, type PodEnv } from '../helpers/pod.js';

let e: PodEnv;
let rt: PodRuntime;
let hostDir: string;

beforeAll(async () => {
  e = await startPodEnv();
  rt = await PodRuntime.open({ root: e.root, runRoot: e.runRoot, logRoot: e.logRoot, network: false, cgroupParent: e.cgroupParent });
  hostDir = path.join(e.dir, 'host');
  fs.mkdirSync(hostDir);
  fs.writeFileSync(path.join(hostDir, 'from-host.txt'), 'host data\n');
}, 120_000);

afterAll(async () => {
  await e?.cleanup();
});

async function runToEnd(yaml: string): Promise<{ lines: string[]; key: string; status: unknown }> {
  const set = parseManifests(yaml);
  const { key } = await rt.upPod(set.pods[0], { manifests: set });
  try {
    const status = await rt.waitDone(key);
    const p = set.pods[0];
    let lines: string[] = [];
    try {
      lines = readLogs(path.join(e.logRoot, `${p.namespace}_${p.name}_${p.uid}`, p.containers[0].name)).map((l) => l.text);
    } catch {
      /* the container never started */
    }
    return { lines, key, status };
  } finally {
    await rt.downPod(key, { gracePeriodSeconds: 0 });
  }
}

describe('volumes', () => {
  it('projects configMap, secret and downwardAPI files with modes, read-only', async () => {
    const name = randomName();
    const { lines } = await runToEnd(`apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {app.conf: "level=debug", other: "x"}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {token: s3cr3t}
---
apiVersion: v1
kind: Pod
metadata: {name: ${name}, labels: {app: demo}}
spec:
  restartPolicy: Never
  volumes:
  - {name: c, configMap: {name: cfg, items: [{key: app.conf, path: conf/app.conf, mode: 0600}]}}
  - {name: s, secret: {secretName: sec, defaultMode: 0400}}
  - {name: d, downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}, {path: mem, resourceFieldRef: {containerName: main, resource: limits.memory, divisor: 1Mi}}]}}
  containers:
  - name: main
    image: ${e.busybox}
    resources: {limits: {memory: 64Mi}}
    command: [sh, -c, "cat /c/conf/app.conf; echo; stat -c '%a' /c/conf/app.conf; ls /c; cat /s/token; echo; stat -c '%a' /s/token; cat /d/labels; echo; cat /d/mem; echo; touch /c/new 2>/dev/null && echo writable || echo read-only"]
    volumeMounts:
    - {name: c, mountPath: /c}
    - {name: s, mountPath: /s}
    - {name: d, mountPath: /d}
`);
    expect(lines).toEqual(['level=debug', '600', 'conf', 's3cr3t', '400', 'app="demo"', '64', 'read-only']);
  });

  it('mounts a Memory emptyDir as a tmpfs of its sizeLimit, hostPath with type checks, subPath', async () => {
    const name = randomName();
    const { lines } = await runToEnd(`apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  restartPolicy: Never
  hostAliases: [{ip: 10.1.2.3, hostnames: [alias.example]}]
  volumes:
  - {name: mem, emptyDir: {medium: Memory, sizeLimit: 8Mi}}
  - {name: h, hostPath: {path: ${hostDir}, type: Directory}}
  - {name: made, hostPath: {path: ${hostDir}/made, type: DirectoryOrCreate}}
  containers:
  - name: main
    image: ${e.busybox}
    command: [sh, -c, "df -k /mem | tail -1 | awk '{print $2}'; grep ' /mem ' /proc/mounts | cut -d' ' -f3; cat /h/from-host.txt; echo sub > /sub/file; grep alias /etc/hosts; df -k /dev/shm | tail -1 | awk '{print $2}'"]
    volumeMounts:
    - {name: mem, mountPath: /mem}
    - {name: h, mountPath: /h, readOnly: true}
    - {name: made, mountPath: /sub, subPath: deeper/dir}
`);
    expect(lines[0]).toBe('8192');
    expect(lines[1]).toBe('tmpfs');
    expect(lines[2]).toBe('host data');
    expect(fs.readFileSync(path.join(hostDir, 'made', 'deeper', 'dir', 'file'), 'utf8')).toBe('sub\n');
    expect(lines[3]).toBe('10.1.2.3\talias.example');
    expect(lines[4]).toBe('65536');
  });

  it('refuses a hostPath of the wrong type and leaves nothing', async () => {
    const name = randomName();
    const set = parseManifests(`apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  volumes: [{name: h, hostPath: {path: ${hostDir}/from-host.txt, type: Directory}}]
  containers: [{name: main, image: "${e.busybox}", volumeMounts: [{name: h, mountPath: /h}]}]
`);
    await expect(rt.upPod(set.pods[0])).rejects.toThrow(/is not an existing directory/);
    expect(fs.existsSync(path.join(e.runRoot, 'pods', `default_${name}`))).toBe(false);
    expect(mountsBelow(e.dir)).toEqual([]);
  });

  it('refuses a subPath that leaves the volume through a symlink', async () => {
    fs.mkdirSync(path.join(hostDir, 'vol'), { recursive: true });
    fs.symlinkSync('/etc', path.join(hostDir, 'vol', 'escape'));
    const name = randomName();
    const { status } = await runToEnd(`apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  restartPolicy: Never
  volumes: [{name: v, hostPath: {path: ${hostDir}/vol}}]
  containers:
  - {name: main, image: "${e.busybox}", command: ["true"], volumeMounts: [{name: v, mountPath: /x, subPath: escape}]}
`);
    const c = (status as { containerStatuses: { state: { waiting?: { message?: string }; terminated?: { message?: string } } }[] }).containerStatuses[0];
    expect(JSON.stringify(c)).toContain('leaves the volume');
  });

  it('gives a container that mounts a missing configMap CreateContainerConfigError (not a sandbox failure)', async () => {
    const name = randomName();
    const set = parseManifests(`apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  volumes: [{name: c, configMap: {name: not-there}}]
  containers:
  - {name: main, image: "${e.busybox}", command: [sleep, "30"], volumeMounts: [{name: c, mountPath: /c}]}
`);
    const { key } = await rt.upPod(set.pods[0], { manifests: set });
    try {
      type CS = { name: string; state: { waiting?: { reason?: string; message?: string }; running?: unknown } };
      let main: CS | undefined;
      for (let i = 0; i < 100; i++) {
        const st = rt.podStatus(key) as unknown as { containerStatuses?: CS[] } | undefined;
        main = st?.containerStatuses?.find((c) => c.name === 'main');
        if (main?.state.waiting?.reason === 'CreateContainerConfigError') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(main?.state.waiting?.reason).toBe('CreateContainerConfigError');
      expect(main?.state.waiting?.message).toContain('not-there');
    } finally {
      await rt.downPod(key, { gracePeriodSeconds: 0 });
    }
  });

  it('leaves no mount or cgroup', () => {
    expect(mountsBelow(e.dir)).toEqual([]);
    expect(cgroupDirs(e.cgroupParent)).toEqual([]);
  });
});
