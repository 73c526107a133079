/**
 * Fixture images for the whole project's tests, built with src/image/builder.ts and pushed to a
 * test registry (test/helpers/registry.ts):
 *   busybox    — /bin/busybox from busybox-static, one symlink per applet, /etc/passwd+group
 *                (root, nobody, app 1000:1000), /tmp 1777, /root, /home/app; Cmd ["sh"].
 *   multilayer — 3 layers: whiteouts (file and dir), an opaque dir, hardlinks, symlinks, modes
 *                (setuid, sticky, 0700), uid/gid, mtimes, a user.* xattr, a char device, a long name;
 *                the top layer is uncompressed.
 *   multiarch  — an OCI index: linux/amd64, linux/arm64, linux/arm/v7; each has /arch naming itself.
 *
 *   const reg = await startTestRegistry();
 *   const refs = await seedFixtures(reg.host);     // refs.busybox = "127.0.0.1:PORT/library/busybox:latest"
 */
import {
  BUSYBOX_GROUP,
  BUSYBOX_PASSWD,
  buildImage,
  buildIndex,
  busyboxApplets,
  busyboxImageSpec,
  pushImage,
  type BuiltImage,
  type BuiltIndex,
  type PushOptions,
} from '../../src/image/builder.js';

export const HOST_BUSYBOX = '/bin/busybox';

export const PASSWD = BUSYBOX_PASSWD;
export const GROUP = BUSYBOX_GROUP;
export { busyboxApplets };

let busyboxCache: Promise<BuiltImage> | undefined;

/** The busybox fixture image (built once per process). */
export function busyboxImage(): Promise<BuiltImage> {
  busyboxCache ??= buildImage(busyboxImageSpec(HOST_BUSYBOX));
  return busyboxCache;
}

/** Push the busybox fixture; returns the manifest digest. */
export async function pushBusybox(host: string, repo = 'library/busybox:latest', opts: PushOptions = {}): Promise<string> {
  return pushImage(`${host}/${repo}`, await busyboxImage(), opts);
}

/** mtimes used by the multilayer fixture (seconds). */
export const MTIME_A = 1_600_000_000;
export const MTIME_B = 1_650_000_000;
export const LONG_NAME = `deep/${'long-directory-name-'.repeat(4)}x/${'a-file-with-a-long-name-'.repeat(5)}end.txt`;

let multilayerCache: Promise<BuiltImage> | undefined;

/** The multilayer fixture (see the file comment); `expectedMultilayer` says what its rootfs holds. */
export function multilayerImage(): Promise<BuiltImage> {
  multilayerCache ??= buildImage({
    config: { Cmd: ['/bin/sh'], WorkingDir: '/data', User: '1000:1000', Env: ['FIXTURE=multilayer'], StopSignal: 'SIGINT' },
    layers: [
      {
        createdBy: 'layer 1: base tree',
        entries: [
          { type: 'dir', path: 'etc' },
          { type: 'file', path: 'etc/passwd', content: PASSWD },
          { type: 'file', path: 'etc/group', content: GROUP },
          { type: 'dir', path: 'data', mtime: MTIME_A },
          { type: 'dir', path: 'data/keep', mode: 0o750, uid: 1000, gid: 1000, mtime: MTIME_A },
          { type: 'file', path: 'data/keep/file', content: 'version 1\n', mode: 0o640, uid: 1000, gid: 1000, mtime: MTIME_A },
          { type: 'file', path: 'data/remove-me', content: 'gone in layer 2\n' },
          { type: 'dir', path: 'data/dir-to-remove' },
          { type: 'file', path: 'data/dir-to-remove/inner', content: 'gone in layer 3\n' },
          { type: 'file', path: 'data/exec.sh', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
          { type: 'file', path: 'data/setuid', content: 'suid\n', mode: 0o4755 },
          { type: 'dir', path: 'data/sticky', mode: 0o1777 },
          { type: 'dir', path: 'data/private', mode: 0o700, uid: 1000, gid: 1000 },
          { type: 'symlink', path: 'data/link', target: 'keep/file' },
          { type: 'symlink', path: 'data/abs-link', target: '/etc/passwd' },
          { type: 'symlink', path: 'data/dangling', target: '../nowhere' },
          { type: 'file', path: 'data/hard-a', content: 'shared inode\n', mode: 0o600, uid: 1000, gid: 1000, mtime: MTIME_B },
          { type: 'hardlink', path: 'data/hard-b', target: 'data/hard-a' },
          { type: 'dir', path: 'opq' },
          { type: 'file', path: 'opq/old-1', content: 'hidden by opaque\n' },
          { type: 'file', path: 'opq/old-2', content: 'hidden by opaque\n' },
        ],
      },
      {
        createdBy: 'layer 2: whiteout, opaque, replace, xattr, device',
        entries: [
          { type: 'whiteout', path: 'data/remove-me' },
          { type: 'dir', path: 'opq', mode: 0o755 },
          { type: 'opaque', path: 'opq' },
          { type: 'file', path: 'opq/new', content: 'only file left in opq\n' },
          // Parents are repeated with their modes, as real layers do (else the builder adds 0755 ones).
          { type: 'dir', path: 'data', mtime: MTIME_A },
          { type: 'dir', path: 'data/keep', mode: 0o750, uid: 1000, gid: 1000, mtime: MTIME_A },
          { type: 'file', path: 'data/keep/file', content: 'version 2\n', mode: 0o644, uid: 1000, gid: 1000, mtime: MTIME_B },
          { type: 'file', path: 'data/xattr-file', content: 'has a user xattr\n', xattrs: { 'user.podrun.test': 'fixture-value' } },
          { type: 'dir', path: 'dev' },
          { type: 'char', path: 'dev/podrun-null', major: 1, minor: 3, mode: 0o666 },
          { type: 'fifo', path: 'data/fifo', mode: 0o644 },
        ],
      },
      {
        createdBy: 'layer 3 (uncompressed): remove a dir, more links, long name',
        compression: 'none',
        entries: [
          { type: 'whiteout', path: 'data/dir-to-remove' },
          { type: 'file', path: 'data/hard-x', content: 'layer 3 inode\n', mode: 0o644 },
          { type: 'hardlink', path: 'data/hard-y', target: 'data/hard-x' },
          { type: 'symlink', path: 'data/keep-dir-link', target: 'keep' },
          { type: 'file', path: LONG_NAME, content: 'long path\n' },
        ],
      },
    ],
  });
  return multilayerCache;
}

/** What the flattened multilayer rootfs must contain (type, mode, uid/gid, content or target). */
export const expectedMultilayer = {
  present: {
    'data/keep/file': { type: 'file', mode: 0o644, uid: 1000, gid: 1000, content: 'version 2\n', mtime: MTIME_B },
    'data/keep': { type: 'dir', mode: 0o750, uid: 1000, gid: 1000 },
    'data/exec.sh': { type: 'file', mode: 0o755 },
    'data/setuid': { type: 'file', mode: 0o4755 },
    'data/sticky': { type: 'dir', mode: 0o1777 },
    'data/private': { type: 'dir', mode: 0o700, uid: 1000, gid: 1000 },
    'data/link': { type: 'symlink', target: 'keep/file' },
    'data/abs-link': { type: 'symlink', target: '/etc/passwd' },
    'data/dangling': { type: 'symlink', target: '../nowhere' },
    'data/keep-dir-link': { type: 'symlink', target: 'keep' },
    'data/hard-a': { type: 'file', mode: 0o600, uid: 1000, gid: 1000, content: 'shared inode\n', nlink: 2 },
    'data/xattr-file': { type: 'file', xattrs: { 'user.podrun.test': 'fixture-value' } },
    'data/fifo': { type: 'fifo' },
    'dev/podrun-null': { type: 'char', major: 1, minor: 3 },
    'opq/new': { type: 'file', content: 'only file left in opq\n' },
    [LONG_NAME]: { type: 'file', content: 'long path\n' },
  },
  absent: ['data/remove-me', 'data/dir-to-remove', 'opq/old-1', 'opq/old-2'],
  /** Each group shares one inode (links stay within one layer). */
  hardlinks: [
    ['data/hard-a', 'data/hard-b'],
    ['data/hard-x', 'data/hard-y'],
  ],
} as const;

export const MULTIARCH_PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
] as const;

let multiarchCache: Promise<BuiltIndex> | undefined;

/** The multiarch fixture: an OCI index; each image's /arch reads "os/arch[/variant]\n". */
export function multiarchIndex(): Promise<BuiltIndex> {
  multiarchCache ??= (async () => {
    const images = [];
    for (const p of MULTIARCH_PLATFORMS) {
      const name = [p.os, p.architecture, 'variant' in p ? p.variant : undefined].filter(Boolean).join('/');
      images.push(
        await buildImage({
          platform: { ...p },
          config: { Cmd: ['/bin/cat', '/arch'], Labels: { platform: name } },
          layers: [{ entries: [{ type: 'file', path: 'arch', content: `${name}\n` }] }],
        }),
      );
    }
    return buildIndex(images);
  })();
  return multiarchCache;
}

export interface SeededFixtures {
  busybox: string;
  multilayer: string;
  multiarch: string;
  digests: { busybox: string; multilayer: string; multiarch: string };
}

/** Push all fixtures to `registryHost` ("127.0.0.1:PORT"); returns their references. */
export async function seedFixtures(registryHost: string, opts: PushOptions = {}): Promise<SeededFixtures> {
  const refs = {
    busybox: `${registryHost}/library/busybox:latest`,
    multilayer: `${registryHost}/podrun-test/multilayer:1`,
    multiarch: `${registryHost}/podrun-test/multiarch:1`,
  };
  const digests = {
    busybox: await pushImage(refs.busybox, await busyboxImage(), opts),
    multilayer: await pushImage(refs.multilayer, await multilayerImage(), opts),
    multiarch: await pushImage(refs.multiarch, await multiarchIndex(), opts),
  };
  return { ...refs, digests };
}

/**
 * busybox plus one layer of symlinks, each `[pathInImage, target]` (e.g. ['data', '/etc']):
 * an image that points its mount targets somewhere else, for mount-target confinement tests.
 */
export async function busyboxWithSymlinks(links: [string, string][]): Promise<BuiltImage> {
  const base = busyboxImageSpec(HOST_BUSYBOX);
  return buildImage({
    ...base,
    layers: [...base.layers, { createdBy: 'test: symlinks', entries: links.map(([p, target]) => ({ type: 'symlink' as const, path: p, target })) }],
  });
}

/** busybox whose image config sets StopSignal (e.g. "SIGUSR1", "USR1", "10"): for stop-signal tests. */
export async function busyboxWithStopSignal(stopSignal: string): Promise<BuiltImage> {
  const base = busyboxImageSpec(HOST_BUSYBOX);
  return buildImage({ ...base, config: { ...base.config, StopSignal: stopSignal } });
}
