/**
 * Small mount helpers shared by the sandbox code and the tests: bind, propagation changes,
 * "is this a mount point", and a recursive unmount of everything below a path, all read from
 * /proc/self/mountinfo. The kernel is reached only through the Syscalls interface.
 */
import fs from 'node:fs';
import path from 'node:path';
import { trace, type EventSink } from '../util/events.js';
import { MNT_DETACH, MS_BIND, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, type Syscalls } from './syscalls.js';

export interface MountInfo {
  id: number;
  parentId: number;
  /** "major:minor" */
  device: string;
  /** Path inside the filesystem that is mounted (for binds). */
  root: string;
  mountPoint: string;
  options: string;
  /** Optional fields such as "shared:12" or "master:3". */
  propagation: string[];
  fstype: string;
  source: string;
  superOptions: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parse the text of a /proc/PID/mountinfo file. */
export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 6) continue;
    out.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      device: fields[2],
      root: unescapeMountinfo(fields[3]),
      mountPoint: unescapeMountinfo(fields[4]),
      options: fields[5],
      propagation: fields.slice(6, dash),
      fstype: fields[dash + 1],
      source: unescapeMountinfo(fields[dash + 2] ?? ''),
      superOptions: fields[dash + 3] ?? '',
    });
  }
  return out;
}

/** The calling process's mount table. */
export function readMountinfo(file = '/proc/self/mountinfo'): MountInfo[] {
  return parseMountinfo(fs.readFileSync(file, 'utf8'));
}

/** True when `p` (made absolute, not resolved through symlinks) is a mount point. */
export function isMountpoint(p: string, mounts: MountInfo[] = readMountinfo()): boolean {
  const abs = path.resolve(p);
  return mounts.some((m) => m.mountPoint === abs);
}

/** Mount points at or below `p`, deepest (and most recent) first: the order to unmount them. */
export function mountsUnder(p: string, mounts: MountInfo[] = readMountinfo()): MountInfo[] {
  const abs = path.resolve(p);
  const prefix = abs === '/' ? '/' : abs + '/';
  const hits = mounts.filter((m) => m.mountPoint === abs || m.mountPoint.startsWith(prefix));
  // mountinfo lists mounts in creation order; stacked mounts on one point unmount newest first.
  return hits
    .map((m, i) => ({ m, i }))
    .sort((a, b) => b.m.mountPoint.split('/').length - a.m.mountPoint.split('/').length || b.i - a.i)
    .map((x) => x.m);
}

export interface BindOptions {
  readOnly?: boolean;
  /** MS_REC: also bind the mounts below `source` (default true). */
  recursive?: boolean;
  sink?: EventSink;
}

/** Bind-mount `source` on `target`; read-only needs a second remount step (the kernel ignores
 * MS_RDONLY on the first bind call). */
export function bind(sys: Syscalls, source: string, target: string, opts: BindOptions = {}): void {
  const rec = opts.recursive === false ? 0 : MS_REC;
  trace(opts.sink, 'mount', 'bind', `${source} -> ${target}`);
  sys.mount(source, target, null, MS_BIND | rec, null);
  if (opts.readOnly) {
    trace(opts.sink, 'mount', 'remount-ro', target);
    sys.mount('none', target, null, MS_BIND | MS_REMOUNT | MS_RDONLY, null);
  }
}

/** Make the mount at `target` (and below) private: nothing mounted there propagates in or out. */
export function makePrivate(sys: Syscalls, target: string, sink?: EventSink): void {
  trace(sink, 'mount', 'make-rprivate', target);
  sys.mount('none', target, null, MS_PRIVATE | MS_REC, null);
}

/**
 * Make `dir` a private mount point of its own (bind it on itself when it is not one yet, then
 * make it private), as `ip netns` does for /run/netns. Namespace pins and rootfs mounts created
 * below it then exist exactly once and disappear with one umount.
 */
export function ensurePrivateMountDir(sys: Syscalls, dir: string, sink?: EventSink): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const abs = path.resolve(dir);
  const me = readMountinfo().filter((m) => m.mountPoint === abs).pop();
  if (!me) bind(sys, abs, abs, { recursive: false, sink });
  else if (!me.propagation.some((p) => p.startsWith('shared:') || p.startsWith('master:'))) return;
  makePrivate(sys, abs, sink);
}

/**
 * Unmount everything at or below `p`, deepest first, with MNT_DETACH. Mounts that vanished in
 * the meantime (EINVAL/ENOENT) are skipped. Returns the mount points it unmounted.
 */
export function umountRecursive(sys: Syscalls, p: string, sink?: EventSink): string[] {
  const done: string[] = [];
  for (let round = 0; round < 8; round++) {
    const list = mountsUnder(p);
    if (list.length === 0) break;
    for (const m of list) {
      try {
        trace(sink, 'mount', 'umount', m.mountPoint);
        sys.umount2(m.mountPoint, MNT_DETACH);
        done.push(m.mountPoint);
      } catch (err) {
        const e = err as { errnoName?: string };
        if (e.errnoName !== 'EINVAL' && e.errnoName !== 'ENOENT') throw err;
      }
    }
  }
  return done;
}
