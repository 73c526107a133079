/**
 * Pull against the real registry (Debian's docker-registry on 127.0.0.1), the real kernel
 * (mknod, xattrs, overlayfs), skopeo and umoci as the reference implementations.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { seedFixtures, expectedMultilayer, multilayerImage, pushBusybox, type SeededFixtures } from '../helpers/images.js';
import { pushImage } from '../../src/image/builder.js';
import { realSyscalls } from '../../src/linux/ffi.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const bin = path.join(repo, 'bin/podrun');
const isRoot = process.geteuid?.() === 0;

let reg: TestRegistry;
let fx: SeededFixtures;
let tmp: string;
const mounts: string[] = [];

function podrun(root: string, ...args: string[]) {
  const t0 = Date.now();
  const r = spawnSync(bin, ['--root', root, '--registry-config', path.join(tmp, 'no-registries.yaml'), ...args], { encoding: 'utf8', timeout: 60_000 });
  if (process.env.PODRUN_TEST_TIMING) console.log(args.join(" "), Date.now() - t0, "ms");
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function podrunAsync(root: string, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(bin, ['--root', root, '--registry-config', path.join(tmp, 'no-registries.yaml'), ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** type, mode, owner, size, content hash, link target, device numbers, xattrs of every path below dir. */
function describeTree(dir: string, withXattrs = true): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const abs = path.join(dir, rel);
    const st = fs.lstatSync(abs);
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'other';
    let extra = '';
    if (type === 'file') extra = `${st.size} ${createHash('sha256').update(fs.readFileSync(abs)).digest('hex').slice(0, 16)} nlink=${st.nlink} mtime=${Math.floor(st.mtimeMs / 1000)}`;
    if (type === 'symlink') extra = `-> ${fs.readlinkSync(abs)}`;
    if (type === 'char' || type === 'block') extra = `rdev=${st.rdev}`;
    if (withXattrs && type !== 'symlink') {
      const names = realSyscalls.llistxattr(abs).filter((n) => n.startsWith('user.')).sort();
      if (names.length) extra += ` xattrs=${names.map((n) => `${n}=${realSyscalls.lgetxattr(abs, n)?.toString()}`).join(',')}`;
    }
    if (rel !== '.') out.set(rel, `${type} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${extra}`);
    if (type === 'dir') for (const n of fs.readdirSync(abs)) walk(rel === '.' ? n : `${rel}/${n}`);
  };
  walk('.');
  return out;
}

function distStale(): boolean {
  let built = 0;
  try {
    built = fs.statSync(path.join(repo, 'dist/cli/main.js')).mtimeMs;
  } catch {
    return true;
  }
  const newer = (dir: string): boolean =>
    fs.readdirSync(dir, { withFileTypes: true }).some((e) => (e.isDirectory() ? newer(path.join(dir, e.name)) : e.name.endsWith('.ts') && fs.statSync(path.join(dir, e.name)).mtimeMs > built));
  return newer(path.join(repo, 'src'));
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-pull-'));
  // the CLI tests run bin/podrun → dist: rebuild when a source is newer (tsc emits even when
  // other parts have type errors); `npm test` has built already
  if (distStale()) spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repo, stdio: 'ignore' });
  reg = await startTestRegistry();
  fx = await seedFixtures(reg.host);
}, 180_000);

afterAll(async () => {
  await reg?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

afterEach(() => {
  while (mounts.length) {
    const m = mounts.pop()!;
    try {
      realSyscalls.umount2(m, 2 /* MNT_DETACH */);
    } catch {
      /* not mounted */
    }
  }
});

const freshRoot = () => fs.mkdtempSync(path.join(tmp, 'root-'));

describe.runIf(isRoot)('podrun pull from a real registry', () => {
  it('pulls with the CLI, prints the digest, and skopeo reads the store as an OCI layout', () => {
    const root = freshRoot();
    const r = podrun(root, 'pull', fx.multilayer);
    expect(r.stderr).not.toMatch(/Error|Cannot/);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`Digest: ${fx.digests.multilayer}`);
    // not a TTY: one line per layer state, a "done" line per layer
    expect(r.stderr.match(/ done /g)?.length).toBe(3);
    const info = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${root}/store:${fx.multilayer}`], { encoding: 'utf8' }));
    expect(info.Digest).toBe(fx.digests.multilayer);
    expect(info.Layers).toHaveLength(3);
    const cfg = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `oci:${root}/store:${fx.multilayer}`], { encoding: 'utf8' }));
    expect(cfg.config.WorkingDir).toBe('/data');
    expect(execFileSync('umoci', ['ls', '--layout', `${root}/store`], { encoding: 'utf8' })).toBe(`${fx.multilayer}\n`);
    expect(execFileSync('umoci', ['stat', '--image', `${root}/store:${fx.multilayer}`], { encoding: 'utf8' })).toMatch(/layer 3 \(uncompressed\)/);
    // quiet pull of a cached image prints just the digest, and leaves index.json as it was
    const index = path.join(root, 'store', 'index.json');
    const before = { text: fs.readFileSync(index, 'utf8'), ino: fs.statSync(index).ino };
    const q = podrun(root, 'pull', '-q', fx.multilayer);
    expect(q.stdout).toBe(`${fx.digests.multilayer}\n`);
    expect({ text: fs.readFileSync(index, 'utf8'), ino: fs.statSync(index).ino }).toEqual(before);
    const table = podrun(root, 'images');
    expect(table.stdout).toMatch(new RegExp(`${reg.host}/podrun-test/multilayer\\s+1\\s+${fx.digests.multilayer.slice(7, 19)}\\s+linux/amd64`));
    const json = JSON.parse(podrun(root, 'images', '-o', 'json').stdout);
    expect(json[0].names).toEqual([fx.multilayer]);
    const inspect = JSON.parse(podrun(root, 'image', 'inspect', fx.multilayer).stdout);
    expect(inspect.manifest.layers).toHaveLength(3);
    expect(inspect.config.config.User).toBe('1000:1000');
  });

  it('unpacks the multilayer image exactly like skopeo copy + umoci raw unpack', () => {
    const root = freshRoot();
    expect(podrun(root, 'pull', fx.multilayer).status).toBe(0);
    const mine = path.join(tmp, 'podrun-rootfs');
    const u = podrun(root, 'image', 'unpack', fx.multilayer, mine);
    expect(u.stderr).toBe('');
    expect(u.status).toBe(0);
    const layout = path.join(tmp, 'skopeo-layout');
    execFileSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${fx.multilayer}`, `oci:${layout}:ml`], { stdio: 'ignore' });
    const theirs = path.join(tmp, 'umoci-rootfs');
    execFileSync('umoci', ['raw', 'unpack', '--image', `${layout}:ml`, theirs], { stdio: 'ignore' });
    const a = describeTree(mine);
    const b = describeTree(theirs);
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    for (const [k, v] of b) expect(`${k}: ${a.get(k)}`).toBe(`${k}: ${v}`);
    // and what the fixture says it holds
    for (const p of expectedMultilayer.absent) expect(a.has(p), p).toBe(false);
    for (const [x, y] of expectedMultilayer.hardlinks) expect(fs.statSync(path.join(mine, x)).ino).toBe(fs.statSync(path.join(mine, y)).ino);
    expect(a.get('data/xattr-file')).toContain('user.podrun.test=fixture-value');
  });

  it('stores layers in overlay form: a read-only overlay mount of the layer dirs equals the flattened rootfs', async () => {
    const root = freshRoot();
    expect(podrun(root, 'pull', fx.multilayer).status).toBe(0);
    const json = JSON.parse(podrun(root, 'images', '-o', 'json').stdout);
    const dirs: string[] = json[0].layers.map((l: { dir: string }) => l.dir);
    expect(dirs.every((d) => d.startsWith(path.join(root, 'layers/')))).toBe(true);
    const wh = fs.lstatSync(path.join(dirs[1], 'data/remove-me'));
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
    expect(realSyscalls.lgetxattr(path.join(dirs[1], 'opq'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    const mnt = fs.mkdtempSync(path.join(tmp, 'podrun-test-ovl-'));
    realSyscalls.mount('overlay', mnt, 'overlay', 1 /* MS_RDONLY */, `lowerdir=${[...dirs].reverse().join(':')}`);
    mounts.push(mnt);
    expect(fs.statSync(mnt).mode & 0o7777).toBe(0o755); // the container's "/"
    const flat = path.join(tmp, 'flat-for-overlay');
    expect(podrun(root, 'image', 'unpack', fx.multilayer, flat).status).toBe(0);
    const a = describeTree(mnt, false);
    const b = describeTree(flat, false);
    // directory mtimes and the hardlink counts across layers are the only things allowed to differ
    const norm = (m: Map<string, string>) => new Map([...m].map(([k, v]) => [k, v.replace(/ nlink=\d+/, '')]));
    expect(norm(a)).toEqual(norm(b));
  });

  it('a tag moved to another image is pulled again and renamed to it', async () => {
    const root = freshRoot();
    const ref = `${reg.host}/podrun-test/moving:1`;
    const first = await pushBusybox(reg.host, 'podrun-test/moving:1');
    expect(podrun(root, 'pull', '-q', ref).stdout).toBe(`${first}\n`);
    const second = await pushImage(ref, await multilayerImage());
    expect(second).not.toBe(first);
    expect(podrun(root, 'pull', '-q', ref).stdout).toBe(`${second}\n`);
    const json = JSON.parse(podrun(root, 'images', '-o', 'json').stdout) as { names: string[]; digest: string }[];
    expect(json.find((i) => i.names.includes(ref))?.digest).toBe(second);
  });

  it('two podrun pull processes of the same image at once both succeed', async () => {
    const root = freshRoot();
    const [a, b] = await Promise.all([podrunAsync(root, 'pull', '-q', fx.busybox), podrunAsync(root, 'pull', '-q', fx.busybox)]);
    expect([a.status, a.stderr]).toEqual([0, '']);
    expect([b.status, b.stderr]).toEqual([0, '']);
    expect(a.stdout).toBe(b.stdout);
    const json = JSON.parse(podrun(root, 'images', '-o', 'json').stdout);
    expect(json).toHaveLength(1);
    expect(fs.readdirSync(path.join(root, 'locks')).filter((n) => !n.startsWith('.'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'ingest'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'layers')).filter((n) => n.startsWith('.tmp'))).toEqual([]);
    const info = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${root}/store:${fx.busybox}`], { encoding: 'utf8' }));
    expect(info.Digest).toBe(fx.digests.busybox);
    expect(fs.existsSync(path.join(json[0].layers[0].dir, 'bin/busybox'))).toBe(true);
  });

  it('selects the platform from the multiarch index', () => {
    const root = freshRoot();
    const arm = podrun(root, 'pull', '--platform', 'linux/arm64', fx.multiarch);
    expect(arm.status).toBe(0);
    let json = JSON.parse(podrun(root, 'images', '-o', 'json').stdout);
    expect(json[0].platform).toMatchObject({ os: 'linux', architecture: 'arm64' });
    expect(json[0].indexDigest).toBe(fx.digests.multiarch);
    expect(fs.readFileSync(path.join(json[0].layers[0].dir, 'arch'), 'utf8')).toBe('linux/arm64\n');
    expect(podrun(root, 'pull', fx.multiarch).status).toBe(0); // the host's platform, replacing the name
    json = JSON.parse(podrun(root, 'images', '-o', 'json').stdout);
    expect(json).toHaveLength(1);
    expect(fs.readFileSync(path.join(json[0].layers[0].dir, 'arch'), 'utf8')).toBe('linux/amd64\n');
    const bad = podrun(root, 'pull', '--platform', 'linux/s390x', fx.multiarch);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/Cannot find platform "linux\/s390x" in the image index: it has "linux\/amd64", "linux\/arm64", "linux\/arm\/v7"/);
  });

  it('rmi removes the name, image prune removes the content', () => {
    const root = freshRoot();
    expect(podrun(root, 'pull', fx.busybox).status).toBe(0);
    expect(podrun(root, 'pull', fx.multilayer).status).toBe(0);
    const r = podrun(root, 'rmi', fx.multilayer);
    expect(r.stdout).toBe(`Untagged: ${fx.multilayer}\n`);
    const p = podrun(root, 'image', 'prune');
    expect(p.stdout).toMatch(/^Removed 5 blobs \(.*\) and 3 layer directories\n$/);
    expect(fs.readdirSync(path.join(root, 'layers'))).toHaveLength(1);
    expect(podrun(root, 'image', 'unpack', fx.busybox, path.join(tmp, 'bb')).status).toBe(0);
    const gone = podrun(root, 'rmi', fx.multilayer);
    expect(gone.status).toBe(1);
    expect(gone.stderr).toContain(`Cannot find image "${fx.multilayer}" in the store`);
  });
});
