/**
 * File content written on the libuv threadpool while the main thread goes on parsing, hashing and
 * creating the next entries. Only fd-based calls run there (write at an explicit position, then the
 * caller's fchown/fchmod/futimes, then close): every path-based step (open with O_NOFOLLOW|O_EXCL,
 * mkdir, symlink, link, unlink) stays synchronous and in archive order on the main thread, so the
 * hostile-layer checks see the tree exactly as the archive built it so far.
 *
 * The queue keeps a reference to each chunk until its write is done: producers must not reuse a
 * buffer they passed on (zlib, fs and undici streams allocate a new one per chunk).
 */
import * as fs from 'node:fs';

/** Files at least this large are written through the queue (smaller ones cost more in callbacks than they save). */
export const ASYNC_WRITE_MIN = 64 * 1024;
/** Writes in flight per queue before the producer is asked to wait. */
export const MAX_WRITES_IN_FLIGHT = 4;

export interface AsyncFile {
  readonly fd: number;
  /** Next write position. */
  pos: number;
  /** Writes issued and not yet finished. */
  outstanding: number;
  /** No more data will come (entry end, or abort). */
  ended: boolean;
  /** Skip the attribute step and only close (a failed layer). */
  discard: boolean;
  /** fchown/fchmod/futimes on the fd once the content is complete; may throw. */
  readonly finish: (fd: number) => void;
}

export class WriteQueue {
  /** Writes in flight. */
  inFlight = 0;
  /** Files opened through the queue and not closed yet. */
  open = 0;
  /** The first failure of a write, an attribute step or a close. */
  error: Error | undefined;
  private waiters: { settled: boolean; resolve: () => void }[] = [];

  constructor(
    /** Files of this size or more go through the queue; 0 turns it off. */
    readonly minSize = ASYNC_WRITE_MIN,
    readonly maxInFlight = MAX_WRITES_IN_FLIGHT,
  ) {}

  wants(size: number): boolean {
    return this.minSize > 0 && size >= this.minSize;
  }

  /** Takes over `fd`: the queue closes it after the last write (and `finish`). */
  adopt(fd: number, finish: (fd: number) => void): AsyncFile {
    this.open++;
    return { fd, pos: 0, outstanding: 0, ended: false, discard: false, finish };
  }

  /** Writes `chunk` at the file's next position, on the threadpool. */
  write(f: AsyncFile, chunk: Buffer): void {
    if (chunk.length === 0) return;
    const pos = f.pos;
    f.pos += chunk.length;
    this.issue(f, chunk, pos);
  }

  private issue(f: AsyncFile, chunk: Buffer, pos: number): void {
    f.outstanding++;
    this.inFlight++;
    fs.write(f.fd, chunk, 0, chunk.length, pos, (err, written) => {
      this.inFlight--;
      f.outstanding--;
      if (err) {
        this.fail(err);
        f.discard = true;
      } else if (written < chunk.length && !f.discard) {
        this.issue(f, chunk.subarray(written), pos + written); // a short write: the rest
      }
      if (f.ended && f.outstanding === 0) this.close(f);
      this.wake();
    });
  }

  /** No more data for `f`: its attributes are applied and it is closed once its writes are done. */
  end(f: AsyncFile, discard = false): void {
    if (f.ended) return;
    f.ended = true;
    if (discard) f.discard = true;
    if (f.outstanding === 0) {
      this.close(f);
      this.wake();
    }
  }

  private close(f: AsyncFile): void {
    try {
      if (!f.discard && !this.error) f.finish(f.fd);
    } catch (err) {
      this.fail(err as Error);
    } finally {
      this.open--;
      try {
        fs.closeSync(f.fd);
      } catch (err) {
        this.fail(err as Error);
      }
    }
  }

  private fail(err: Error): void {
    this.error ??= err;
  }

  private wake(): void {
    if (!this.waiters.length) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.settled ? this.inFlight === 0 && this.open === 0 : this.inFlight <= this.roomAt) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /** True when the producer should wait (see `room`). */
  get busy(): boolean {
    return this.inFlight >= this.maxInFlight;
  }

  /** Resolves when at most half the allowed writes are in flight. */
  room(): Promise<void> {
    if (this.inFlight <= this.roomAt) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ settled: false, resolve }));
  }

  private get roomAt(): number {
    return Math.floor(this.maxInFlight / 2);
  }

  /** Resolves when every write is done and every file the queue took over is closed (ended files only). */
  settled(): Promise<void> {
    if (this.inFlight === 0 && this.open === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ settled: true, resolve }));
  }
}
