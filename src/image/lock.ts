/**
 * Cross-process file locks without a daemon. Node has no flock(2), so a lock is a file created
 * with O_CREAT|O_EXCL ("wx") that holds "<pid> <starttime>". A lock whose owner is gone (no such
 * pid, or the pid was reused by a process with another start time) is stale: it is renamed away
 * (rename is atomic, so only one waiter breaks it) and the waiter tries again. A lock file that is
 * still empty is the moment between create and write; it only counts as stale after 10 s.
 */
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { PodrunError, nodeErrCode } from '../util/errors.js';

export interface LockOptions {
  /** Give up after this long (ELOCKED). */
  timeoutMs?: number;
  /** Describes what is locked, for the error message. */
  what?: string;
  signal?: AbortSignal;
}

function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // field 22 (starttime) counted after the ")" that ends the command name
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

const ME = `${process.pid} ${startTime(process.pid) ?? '0'}`;

/** Whether the owner recorded in a lock file still runs. */
export function ownerAlive(content: string): boolean {
  const [pidStr, start] = content.trim().split(' ');
  const pid = Number(pidStr);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const now = startTime(pid);
  if (now === undefined) return false;
  return start === undefined || start === '0' || now === start;
}

export class FileLock {
  private released = false;
  private constructor(readonly path: string) {}

  /** Waits for the lock; throws PodrunError ELOCKED after timeoutMs. */
  static async acquire(path: string, opts: LockOptions = {}): Promise<FileLock> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000);
    let delay = 5;
    for (;;) {
      const lock = FileLock.tryAcquire(path);
      if (lock) return lock;
      if (Date.now() > deadline) {
        let owner = '';
        try {
          owner = fs.readFileSync(path, 'utf8').split(' ')[0];
        } catch {
          /* gone meanwhile */
        }
        throw new PodrunError('ELOCKED', `Cannot lock ${opts.what ?? `"${path}"`}: held by process ${owner || '(unknown)'}`, {
          hint: `another podrun process is working on it; if none runs, remove "${path}"`,
        });
      }
      opts.signal?.throwIfAborted();
      await sleep(delay);
      delay = Math.min(delay * 2, 200);
    }
  }

  /** One attempt: the lock, or undefined when a live process holds it. */
  static tryAcquire(path: string): FileLock | undefined {
    try {
      const fd = fs.openSync(path, 'wx', 0o600);
      try {
        fs.writeSync(fd, ME);
      } finally {
        fs.closeSync(fd);
      }
      return new FileLock(path);
    } catch (err) {
      if (nodeErrCode(err) !== 'EEXIST') throw err;
    }
    FileLock.breakIfStale(path);
    return undefined;
  }

  private static breakIfStale(path: string): void {
    let content: string;
    let st: fs.Stats;
    try {
      st = fs.statSync(path);
      content = fs.readFileSync(path, 'utf8');
    } catch (err) {
      if (nodeErrCode(err) === 'ENOENT') return;
      throw err;
    }
    const stale = content.trim() === '' ? Date.now() - st.mtimeMs > 10_000 : !ownerAlive(content);
    if (!stale) return;
    const aside = `${path}.stale-${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      fs.renameSync(path, aside);
    } catch (err) {
      if (nodeErrCode(err) === 'ENOENT') return; // another waiter broke it first
      throw err;
    }
    // If a live owner re-created the lock between our read and the rename, put it back.
    const moved = fs.readFileSync(aside, 'utf8');
    if (moved !== content) {
      try {
        fs.linkSync(aside, path);
      } catch {
        /* someone holds a newer lock; theirs wins, ours is dropped */
      }
    }
    fs.rmSync(aside, { force: true });
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      if (fs.readFileSync(this.path, 'utf8') === ME) fs.unlinkSync(this.path);
    } catch (err) {
      if (nodeErrCode(err) !== 'ENOENT') throw err;
    }
  }
}

/** Runs fn while holding the lock at `path`. */
export async function withLock<T>(path: string, opts: LockOptions, fn: () => Promise<T> | T): Promise<T> {
  const lock = await FileLock.acquire(path, opts);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
