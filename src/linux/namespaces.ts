/**
 * Pinning a pod's network, IPC and UTS namespaces from Node.
 *
 * Namespaces are per thread. Node runs several threads, so the dance happens on the main thread,
 * synchronously, with no `await` in between (no other JavaScript can run on this thread while we
 * are inside the new namespaces):
 *
 *   open /proc/thread-self/ns/{net,ipc,uts}         (save where we are)
 *   unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
 *   sethostname(hostname)                            (the new UTS namespace)
 *   mount --bind /proc/thread-self/ns/X  DIR/X       (the pin keeps the namespace alive)
 *   setns(saved fd, type) for each                   (back where we were, also on every error)
 *
 * Why DIR's parent must be a private mount (ensurePrivateMountDir): on a host whose mounts are
 * shared (systemd makes / shared), a bind mount of a namespace file below a shared mount is copied
 * into every peer and slave mount namespace (other services, other runtimes' containers created
 * meanwhile). Each copy holds a reference to the namespace; our umount2 only removes the copies
 * that are still peers, so the network namespace (with its veth and IP) could outlive the pod
 * unseen. A private mount point keeps exactly one mount per pin, which `unpin` removes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PodrunError, SyscallError } from '../util/errors.js';
import { trace, type EventSink } from '../util/events.js';
import { ensurePrivateMountDir, isMountpoint } from './mounts.js';
import { CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWUTS, MNT_DETACH, MS_BIND, type Syscalls } from './syscalls.js';

export type PinnedKind = 'net' | 'ipc' | 'uts';

const FLAG: Record<PinnedKind, number> = { net: CLONE_NEWNET, ipc: CLONE_NEWIPC, uts: CLONE_NEWUTS };
const KINDS: PinnedKind[] = ['net', 'ipc', 'uts'];

export interface PinnedNamespaces {
  dir: string;
  /** Paths of the pin files: open them and setns, or hand them to the shim plan. */
  net: string;
  ipc: string;
  uts: string;
}

export interface PinOptions {
  hostname: string;
  sink?: EventSink;
  /**
   * A directory above `dir` to make a private mount point first (bound on itself when needed,
   * see ensurePrivateMountDir), typically the run root. The runtime does this once and may omit
   * it afterwards; it then stays mounted until the caller removes it (umountRecursive).
   */
  privateRoot?: string;
  /** Bring the new network namespace's loopback up while in it (Syscalls.linkUp). */
  loopbackUp?: boolean;
}

/** The inode of a namespace of the calling thread, e.g. "net:[4026531840]". */
export function threadNamespace(kind: string): string {
  return fs.readlinkSync(`/proc/thread-self/ns/${kind}`);
}

/**
 * Create new net, IPC and UTS namespaces, name the UTS one, and pin all three by bind mounts
 * on files DIR/net, DIR/ipc, DIR/uts. The calling thread is back in its original namespaces when
 * this returns or throws; a failure also removes the pins made so far.
 */
export function pinNamespaces(sys: Syscalls, dir: string, opts: PinOptions): PinnedNamespaces {
  const sink = opts.sink;
  if (opts.privateRoot !== undefined) ensurePrivateMountDir(sys, opts.privateRoot, sink);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pins: PinnedNamespaces = { dir, net: path.join(dir, 'net'), ipc: path.join(dir, 'ipc'), uts: path.join(dir, 'uts') };
  for (const k of KINDS) fs.closeSync(fs.openSync(pins[k], 'w', 0o444));

  const saved = new Map<PinnedKind, number>();
  const mounted: string[] = [];
  let failure: unknown;
  try {
    for (const k of KINDS) saved.set(k, fs.openSync(`/proc/thread-self/ns/${k}`, 'r'));
    trace(sink, 'syscall', 'unshare', 'CLONE_NEWNET|CLONE_NEWIPC|CLONE_NEWUTS');
    sys.unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS);
    trace(sink, 'syscall', 'sethostname', opts.hostname);
    sys.sethostname(opts.hostname);
    if (opts.loopbackUp) {
      trace(sink, 'syscall', 'ioctl', 'SIOCSIFFLAGS lo up');
      sys.linkUp('lo');
    }
    for (const k of KINDS) {
      trace(sink, 'mount', 'pin-namespace', `/proc/thread-self/ns/${k} -> ${pins[k]}`);
      sys.mount(`/proc/thread-self/ns/${k}`, pins[k], null, MS_BIND, null);
      mounted.push(pins[k]);
    }
  } catch (err) {
    failure = err;
  } finally {
    // Always go back, whatever happened above. A failure to go back is fatal for the process:
    // every later thread-local call would act in the pod's namespaces.
    for (const k of KINDS) {
      const fd = saved.get(k);
      if (fd === undefined) continue;
      try {
        trace(sink, 'syscall', 'setns', `back to saved ${k} namespace`);
        sys.setns(fd, FLAG[k]);
      } catch (err) {
        failure ??= err;
        failure = new PodrunError('EINTERNAL', `Cannot return to the original ${k} namespace after pinning "${dir}"`, { cause: err });
      } finally {
        fs.closeSync(fd);
      }
    }
  }
  if (failure !== undefined) {
    for (const m of mounted.reverse()) {
      try {
        sys.umount2(m, MNT_DETACH);
      } catch {
        /* reported below through the original failure */
      }
    }
    removePinFiles(pins);
    if (failure instanceof PodrunError) throw failure;
    throw new PodrunError('ESYSCALL', `Cannot pin namespaces in "${dir}": ${(failure as Error).message}`, { cause: failure });
  }
  return pins;
}

function removePinFiles(pins: PinnedNamespaces): void {
  for (const k of KINDS) fs.rmSync(pins[k], { force: true });
  try {
    fs.rmdirSync(pins.dir);
  } catch {
    /* not empty or gone: leave it */
  }
}

/**
 * Remove the pins under `dir` (umount2 MNT_DETACH, then unlink). Idempotent: missing pins and
 * pins that are no longer mounted are skipped.
 */
export function unpin(sys: Syscalls, dir: string, sink?: EventSink): void {
  for (const k of KINDS) {
    const p = path.join(dir, k);
    if (!fs.existsSync(p)) continue;
    if (isMountpoint(p)) {
      trace(sink, 'mount', 'unpin-namespace', p);
      try {
        sys.umount2(p, MNT_DETACH);
      } catch (err) {
        if (!(err instanceof SyscallError && err.errnoName === 'EINVAL')) throw err;
      }
    }
    fs.rmSync(p, { force: true });
  }
  try {
    fs.rmdirSync(dir);
  } catch {
    /* other files live there: the caller owns them */
  }
}
