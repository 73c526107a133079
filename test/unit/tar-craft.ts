/**
 * Crafts tar archives byte by byte for unpack tests, including ones no well-behaved writer would
 * produce (absolute names, "..", bad numbers, unknown types, huge PAX headers).
 */
import { gzipSync } from 'node:zlib';

export interface CraftEntry {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo' | string; // a raw one-char flag otherwise
  content?: Buffer | string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string | Buffer>;
  /** Overrides raw header fields after encoding: [offset, bytes]. */
  raw?: [number, string][];
  /** Declared size when it must differ from the content length. */
  size?: number;
}

const FLAGS: Record<string, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function octal(n: number, len: number): string {
  return n.toString(8).padStart(len - 1, '0') + '\0';
}

function header(e: CraftEntry, flag: string, size: number): Buffer {
  const b = Buffer.alloc(512);
  b.write(e.name.slice(0, 100), 0, 'utf8');
  b.write(octal(e.mode ?? (flag === '5' ? 0o755 : 0o644), 8), 100);
  b.write(octal(e.uid ?? 0, 8), 108);
  b.write(octal(e.gid ?? 0, 8), 116);
  b.write(octal(size, 12), 124);
  b.write(octal(e.mtime ?? 1_700_000_000, 12), 136);
  b.write(flag, 156, 'latin1');
  b.write((e.linkname ?? '').slice(0, 100), 157, 'utf8');
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'latin1');
  b.write(octal(e.devmajor ?? 0, 8), 329);
  b.write(octal(e.devminor ?? 0, 8), 337);
  for (const [off, s] of e.raw ?? []) b.write(s, off, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(octal(sum, 7) + ' ', 148, 'latin1');
  return b;
}

function pad(buf: Buffer): Buffer {
  const r = buf.length % 512;
  return r ? Buffer.concat([buf, Buffer.alloc(512 - r)]) : buf;
}

function paxRecords(rec: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(rec)) {
    const body = Buffer.concat([Buffer.from(` ${k}=`), Buffer.from(v), Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len++;
    parts.push(Buffer.concat([Buffer.from(String(len)), body]));
  }
  return Buffer.concat(parts);
}

export function tarEntry(e: CraftEntry): Buffer {
  const flag = FLAGS[e.type ?? 'file'] ?? e.type!;
  const content = e.content === undefined ? Buffer.alloc(0) : Buffer.from(e.content);
  const out: Buffer[] = [];
  if (e.pax) {
    const p = paxRecords(e.pax);
    out.push(header({ name: 'PaxHeader' }, 'x', p.length), pad(p));
  }
  out.push(header(e, flag, e.size ?? content.length), pad(content));
  return Buffer.concat(out);
}

export function tarOf(entries: (CraftEntry | Buffer)[], { end = true } = {}): Buffer {
  const parts = entries.map((e) => (Buffer.isBuffer(e) ? e : tarEntry(e)));
  if (end) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function tgzOf(entries: (CraftEntry | Buffer)[]): Buffer {
  return gzipSync(tarOf(entries));
}
