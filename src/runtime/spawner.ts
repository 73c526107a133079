/**
 * Container monitors (`podrun-shim run PLAN`) are forked by a small helper process, `podrun-shim
 * spawner`, started once per Node process (see native-shims/src/spawner.c for the protocol).
 *
 * fork(2) copies the caller's page tables: from a supervisor of 70-100 MB, Node's spawn() took
 * 7-11 ms of the main thread per container on this machine, a good part of a warm `up -d`. The
 * spawner forks from a few hundred kilobytes. It lives as long as this process: it reads end of
 * file on its stdin when we exit or die, and exits too. Monitors run in their own sessions, as
 * before; nothing in the runtime treats them as children (they are found by pid and start time).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { PodrunError } from '../util/errors.js';

export interface SpawnedMonitor {
  pid: number;
  /** Resolves when the monitor closed its status channel (started, failed, or died). */
  closed: Promise<void>;
}

interface Pending {
  onLine: (line: string) => void;
  pid?: (pid: number) => void;
  fail: (err: Error) => void;
  closed?: () => void;
}

class Spawner {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buf = '';

  constructor(private readonly bin: string) {}

  private ensure(): ChildProcess {
    if (this.child) return this.child;
    // own session: a Ctrl-C at a foreground `podrun up` must not end it while the pod stops
    const child = spawn(this.bin, ['spawner'], { detached: true, stdio: ['pipe', 'pipe', 'inherit'] });
    this.child = child;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => this.onData(d));
    const gone = (why: string) => {
      if (this.child !== child) return;
      this.child = undefined;
      const err = new PodrunError('ESHIM', `Cannot start a container monitor: the shim's spawner ${why}`, {
        hint: 'rebuild the shim (`npm install` or `make -C native-shims`) if it predates the spawner',
      });
      for (const p of this.pending.values()) p.fail(err);
      this.pending.clear();
    };
    child.on('error', (err) => gone(`could not be started (${err.message})`));
    child.on('close', (code, signal) => gone(`exited (${signal ?? `code ${code}`})`));
    child.stdin!.on('error', () => {});
    this.idle();
    return child;
  }

  /** Nothing pending: the spawner must not keep this process alive. */
  private idle(): void {
    const c = this.child;
    if (!c) return;
    c.unref();
    (c.stdout as unknown as { unref?: () => void }).unref?.();
    (c.stdin as unknown as { unref?: () => void }).unref?.();
  }

  private busy(): void {
    const c = this.child;
    if (!c) return;
    c.ref();
    (c.stdout as unknown as { ref?: () => void }).ref?.();
  }

  private onData(d: string): void {
    this.buf += d;
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      const a = line.indexOf(' ');
      const b = line.indexOf(' ', a + 1);
      const id = Number(line.slice(0, a));
      const kind = b < 0 ? line.slice(a + 1) : line.slice(a + 1, b);
      const rest = b < 0 ? '' : line.slice(b + 1);
      const p = this.pending.get(id);
      if (!p) continue;
      if (kind === 'pid') p.pid?.(Number(rest));
      else if (kind === 'line') p.onLine(rest);
      else if (kind === 'eof' || kind === 'error') {
        this.pending.delete(id);
        if (kind === 'eof') p.closed?.();
        else {
          const [step, errno] = rest.split(' ');
          p.fail(new PodrunError('ESHIM', `Cannot start a container monitor: the spawner's step "${step}" failed (errno ${errno})`));
        }
        if (this.pending.size === 0) this.idle();
      }
    }
  }

  /**
   * Forks `podrun-shim run PLAN` with stderr appended to STDERR; its status lines go to onLine.
   * Both paths come percent-escaped as plan tokens (shim.ts escapeToken).
   */
  run(planToken: string, stderrToken: string, onLine: (line: string) => void): Promise<SpawnedMonitor> {
    const child = this.ensure();
    const id = this.nextId++;
    return new Promise<SpawnedMonitor>((resolvePid, rejectPid) => {
      let closedResolve!: () => void;
      let closedReject!: (e: Error) => void;
      const closed = new Promise<void>((res, rej) => {
        closedResolve = res;
        closedReject = rej;
      });
      closed.catch(() => {});
      let havePid = false;
      this.pending.set(id, {
        onLine,
        pid: (pid) => {
          havePid = true;
          resolvePid({ pid, closed });
        },
        closed: () => closedResolve(),
        fail: (err) => (havePid ? closedReject(err) : rejectPid(err)),
      });
      this.busy();
      child.stdin!.write(`run ${id} ${planToken} ${stderrToken}\n`);
    });
  }
}

const spawners = new Map<string, Spawner>();

/** The spawner of this process for the shim at `bin` (started on first use). */
export function monitorSpawner(bin: string): Spawner {
  let s = spawners.get(bin);
  if (!s) spawners.set(bin, (s = new Spawner(bin)));
  return s;
}
