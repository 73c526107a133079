/**
 * Container logs in the CRI format, one file per container start:
 *   <log-root>/<ns>_<name>_<uid>/<container>/<restart>.log
 * each line "<RFC3339Nano> <stdout|stderr> <F|P> <text>" (P = partial line, continued by the next).
 * The native monitor writes them; this module reads, tails and follows them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PodrunError, nodeErrCode } from '../util/errors.js';

export interface LogLine {
  time: string; // RFC3339Nano as written
  stream: 'stdout' | 'stderr';
  text: string; // full line (partials joined), without the newline
}

const LINE = /^(\S+) (stdout|stderr) ([FP]) (.*)$/;

/** Parses CRI log text into whole lines, joining partial ("P") records of the same stream. */
export function parseCriLog(text: string): LogLine[] {
  const out: LogLine[] = [];
  const pending: Record<string, { time: string; parts: string[] }> = {};
  for (const raw of text.split('\n')) {
    if (!raw) continue;
    const m = LINE.exec(raw);
    if (!m) continue; // a line being written right now, or garbage: skip
    const [, time, stream, tag, body] = m;
    const p = (pending[stream] ??= { time, parts: [] });
    p.parts.push(body);
    if (tag === 'F') {
      out.push({ time: p.time, stream: stream as LogLine['stream'], text: p.parts.join('') });
      delete pending[stream];
    }
  }
  return out;
}

/** Restart numbers that have a log file in a container's log dir, ascending. */
export function logRestarts(containerLogDir: string): number[] {
  try {
    return fs
      .readdirSync(containerLogDir)
      .map((f) => /^(\d+)\.log$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  } catch (err) {
    if (nodeErrCode(err) === 'ENOENT') return [];
    throw err;
  }
}

export interface ReadLogsOptions {
  /** Only the last N lines. */
  tail?: number;
  /** The previous start's log instead of the current one. */
  previous?: boolean;
}

/** The log file of a container's current (or previous) start. */
export function pickLogFile(containerLogDir: string, previous = false): string {
  const restarts = logRestarts(containerLogDir);
  const want = previous ? restarts[restarts.length - 2] : restarts[restarts.length - 1];
  if (want === undefined) {
    throw new PodrunError('ENOTFOUND', `Cannot read logs: ${previous ? 'no previous container start' : 'no log file'} in "${containerLogDir}"`);
  }
  return path.join(containerLogDir, `${want}.log`);
}

export function readLogs(containerLogDir: string, opts: ReadLogsOptions = {}): LogLine[] {
  const file = pickLogFile(containerLogDir, opts.previous);
  const lines = parseCriLog(fs.readFileSync(file, 'utf8'));
  return opts.tail !== undefined ? lines.slice(Math.max(0, lines.length - opts.tail)) : lines;
}

/** Formats one line for a terminal: the text, with the timestamp in front when asked. */
export function formatLogLine(l: LogLine, timestamps: boolean): string {
  return timestamps ? `${l.time} ${l.text}` : l.text;
}

/**
 * Follows a container's logs: the lines already there (after `tail`), then new ones as they are
 * written, moving on to the next restart's file when one appears. Stops when `signal` aborts or
 * `until()` returns true after a quiet poll (e.g. the container exited and will not restart).
 */
export async function followLogs(
  containerLogDir: string,
  onLine: (l: LogLine) => void,
  opts: { tail?: number; signal?: AbortSignal; until?: () => boolean; pollMs?: number } = {},
): Promise<void> {
  const pollMs = opts.pollMs ?? 200;
  let restarts = logRestarts(containerLogDir);
  let current = restarts[restarts.length - 1];
  let offset = 0;
  let carry = '';
  let first = true;
  while (!opts.signal?.aborted) {
    if (current === undefined) {
      restarts = logRestarts(containerLogDir);
      current = restarts[restarts.length - 1];
    }
    let grew = false;
    if (current !== undefined) {
      const file = path.join(containerLogDir, `${current}.log`);
      const chunk = readFrom(file, offset);
      if (chunk.length) {
        grew = true;
        offset += chunk.length;
        const text = carry + chunk.toString('utf8');
        const cut = text.lastIndexOf('\n') + 1;
        carry = text.slice(cut);
        let lines = parseCriLog(text.slice(0, cut));
        if (first && opts.tail !== undefined) lines = lines.slice(Math.max(0, lines.length - opts.tail));
        for (const l of lines) onLine(l);
      }
      first = false;
      const next = logRestarts(containerLogDir).find((r) => r > current!);
      if (!grew && next !== undefined) {
        current = next;
        offset = 0;
        carry = '';
        continue;
      }
    }
    if (!grew && opts.until?.()) return;
    if (!grew) await sleep(pollMs, opts.signal);
  }
}

function readFrom(file: string, offset: number): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if (nodeErrCode(err) === 'ENOENT') return Buffer.alloc(0);
    throw err;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size <= offset) return Buffer.alloc(0);
    const buf = Buffer.alloc(size - offset);
    const n = fs.readSync(fd, buf, 0, buf.length, offset);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
