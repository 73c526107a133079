/**
 * A small synchronous push parser for tar streams (ustar, GNU long names, PAX).
 *
 * Why not tar-stream's extractor: layers are hostile, and tar-stream buffers PAX headers of any
 * size, accepts malformed numeric fields as NaN and hands out one stream per entry. This parser
 * bounds every metadata record, refuses what it does not understand with EHOSTILE, and passes file
 * bytes to the caller as slices of the incoming chunks (no copies), so the unpacker can write them
 * with one write(2) each.
 */
import { PodrunError } from '../util/errors.js';

export type TarEntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  name: string;
  linkname: string;
  type: TarEntryType;
  mode: number; // permission bits incl. setuid/setgid/sticky (07777)
  uid: number;
  gid: number;
  size: number;
  mtime: number; // seconds, may be fractional (PAX)
  devmajor: number;
  devminor: number;
  /** Extended attributes from PAX SCHILY.xattr.* records. */
  xattrs?: Map<string, Buffer>;
}

export interface TarHandler {
  entry(h: TarHeader): void;
  /** A slice of the current file's content; valid only during the call. */
  data(chunk: Buffer): void;
  entryEnd(): void;
}

export interface TarLimits {
  /** Largest PAX / GNU long-name record accepted, bytes. */
  maxMetaSize: number;
  /** Most entries accepted in one archive. */
  maxEntries: number;
  /** Longest path accepted. */
  maxPathLength: number;
}

export const DEFAULT_TAR_LIMITS: TarLimits = { maxMetaSize: 1 << 20, maxEntries: 2_000_000, maxPathLength: 4096 };

const BLOCK = 512;

function hostile(detail: string): PodrunError {
  return new PodrunError('EHOSTILE', `Cannot unpack layer: ${detail}`, {
    hint: 'the layer archive is malformed or tries to escape its directory; podrun refuses it',
  });
}

/** Reads a NUL-terminated string field. */
function str(buf: Buffer, off: number, len: number): string {
  let end = off;
  const max = off + len;
  while (end < max && buf[end] !== 0) end++;
  return buf.toString('utf8', off, end);
}

/** Parses an octal (or GNU base-256) numeric field; refuses anything else. */
export function parseNumeric(buf: Buffer, off: number, len: number, field: string): number {
  const first = buf[off];
  if (first === 0x80) {
    let v = 0;
    for (let i = off + 1; i < off + len; i++) {
      v = v * 256 + buf[i];
      if (v > Number.MAX_SAFE_INTEGER) throw hostile(`tar header field "${field}" is too large`);
    }
    return v;
  }
  if (first === 0xff) throw hostile(`tar header field "${field}" is negative`);
  let i = off;
  const end = off + len;
  while (i < end && buf[i] === 0x20) i++; // leading spaces
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = buf[i];
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw hostile(`tar header field "${field}" is not an octal number: "${buf.toString('latin1', off, end).replace(/\0/g, '\\0')}"`);
    v = v * 8 + (c - 0x30);
    digits++;
  }
  for (; i < end; i++) {
    if (buf[i] !== 0 && buf[i] !== 0x20) throw hostile(`tar header field "${field}" has trailing garbage`);
  }
  if (digits === 0) return 0;
  if (v > Number.MAX_SAFE_INTEGER) throw hostile(`tar header field "${field}" is too large`);
  return v;
}

function checksumOk(buf: Buffer, off: number): boolean {
  const want = parseNumeric(buf, off + 148, 8, 'chksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : buf[off + i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return want === unsigned || want === signed;
}

function isZeroBlock(buf: Buffer, off: number): boolean {
  for (let i = off; i < off + BLOCK; i++) if (buf[i] !== 0) return false;
  return true;
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

interface Pax {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  xattrs?: Map<string, Buffer>;
}

function paxNumber(key: string, v: Buffer, fractional = false): number {
  const s = v.toString('latin1');
  const re = fractional ? /^-?\d{1,16}(\.\d{1,9})?$/ : /^\d{1,16}$/;
  if (!re.test(s)) throw hostile(`PAX record "${key}" is not a number: "${s.slice(0, 40)}"`);
  const n = Number(s);
  if (!Number.isFinite(n) || Math.abs(n) > Number.MAX_SAFE_INTEGER) throw hostile(`PAX record "${key}" is out of range`);
  return n;
}

/** Parses "LEN key=value\n" records. */
export function parsePax(buf: Buffer, into: Pax = {}): Pax {
  let off = 0;
  while (off < buf.length) {
    if (buf[off] === 0) break; // some writers pad with NULs
    const sp = buf.indexOf(0x20, off);
    if (sp < 0 || sp - off > 10) throw hostile('PAX record has no length');
    const lenStr = buf.toString('latin1', off, sp);
    if (!/^\d+$/.test(lenStr)) throw hostile(`PAX record length "${lenStr}" is not a number`);
    const len = Number(lenStr);
    if (len <= sp - off + 1 || off + len > buf.length || buf[off + len - 1] !== 0x0a) throw hostile('PAX record length is inconsistent');
    const rec = buf.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw hostile('PAX record has no key');
    const key = rec.toString('utf8', 0, eq);
    const value = rec.subarray(eq + 1);
    off += len;
    switch (key) {
      case 'path':
        into.path = value.toString('utf8');
        break;
      case 'linkpath':
        into.linkpath = value.toString('utf8');
        break;
      case 'size':
        into.size = paxNumber(key, value);
        break;
      case 'uid':
        into.uid = paxNumber(key, value);
        break;
      case 'gid':
        into.gid = paxNumber(key, value);
        break;
      case 'mtime':
        into.mtime = paxNumber(key, value, true);
        break;
      default:
        if (key.startsWith('SCHILY.xattr.')) {
          into.xattrs ??= new Map();
          into.xattrs.set(key.slice('SCHILY.xattr.'.length), Buffer.from(value));
        } else if (key.startsWith('GNU.sparse.')) {
          throw new PodrunError('EUNSUPPORTED', `Cannot unpack layer: GNU sparse files ("${key}") are not supported`);
        }
      // atime, ctime, uname, gname, comment, charset, LIBARCHIVE.*: ignored
    }
  }
  return into;
}

const enum State {
  Header,
  Data,
  Padding,
  Meta,
  End,
}

/**
 * Feed decompressed bytes with write(); call finish() at end of stream. Handler callbacks run
 * synchronously inside write(). Throws PodrunError('EHOSTILE') on malformed input.
 */
export class TarParser {
  private state = State.Header;
  private pending: Buffer | undefined; // partial header block
  private remaining = 0; // bytes left in the current entry's data or meta record
  private padding = 0;
  private metaKind: 'pax' | 'global' | 'longname' | 'longlink' = 'pax';
  private metaBufs: Buffer[] = [];
  private pax: Pax | undefined;
  private globalPax: Pax = {};
  private longName: string | undefined;
  private longLink: string | undefined;
  private zeroBlocks = 0;
  entries = 0;
  private readonly limits: TarLimits;

  constructor(
    private readonly handler: TarHandler,
    limits: Partial<TarLimits> = {},
  ) {
    this.limits = { ...DEFAULT_TAR_LIMITS, ...limits };
  }

  get ended(): boolean {
    return this.state === State.End;
  }

  write(chunk: Buffer): void {
    let off = 0;
    const n = chunk.length;
    while (off < n) {
      switch (this.state) {
        case State.End:
          return; // trailing bytes after the end-of-archive blocks are ignored
        case State.Header: {
          let block: Buffer;
          let boff: number;
          if (this.pending) {
            const need = BLOCK - this.pending.length;
            const take = Math.min(need, n - off);
            this.pending = Buffer.concat([this.pending, chunk.subarray(off, off + take)]);
            off += take;
            if (this.pending.length < BLOCK) return;
            block = this.pending;
            boff = 0;
            this.pending = undefined;
          } else if (n - off < BLOCK) {
            this.pending = Buffer.from(chunk.subarray(off));
            return;
          } else {
            block = chunk;
            boff = off;
            off += BLOCK;
          }
          this.header(block, boff);
          break;
        }
        case State.Data: {
          const take = Math.min(this.remaining, n - off);
          if (take > 0) this.handler.data(chunk.subarray(off, off + take));
          off += take;
          this.remaining -= take;
          if (this.remaining === 0) this.endData();
          break;
        }
        case State.Meta: {
          const take = Math.min(this.remaining, n - off);
          this.metaBufs.push(Buffer.from(chunk.subarray(off, off + take)));
          off += take;
          this.remaining -= take;
          if (this.remaining === 0) this.endMeta();
          break;
        }
        case State.Padding: {
          const take = Math.min(this.padding, n - off);
          off += take;
          this.padding -= take;
          if (this.padding === 0) this.state = State.Header;
          break;
        }
      }
    }
  }

  /** Checks that the archive ended on an entry boundary. */
  finish(): void {
    if (this.state === State.End) return;
    if (this.state === State.Header && !this.pending && !this.pax && this.longName === undefined && this.longLink === undefined) {
      return; // EOF without end-of-archive blocks: accepted, as GNU tar does
    }
    throw hostile('the tar stream is truncated');
  }

  private header(buf: Buffer, off: number): void {
    if (isZeroBlock(buf, off)) {
      this.zeroBlocks++;
      if (this.zeroBlocks >= 2) this.state = State.End;
      return;
    }
    if (this.zeroBlocks) throw hostile('a tar header follows an end-of-archive block');
    if (!checksumOk(buf, off)) throw hostile('a tar header has a bad checksum');
    const flag = String.fromCharCode(buf[off + 156]);
    const size = parseNumeric(buf, off + 124, 12, 'size');
    const meta = flag === 'x' ? 'pax' : flag === 'g' ? 'global' : flag === 'L' ? 'longname' : flag === 'K' ? 'longlink' : undefined;
    if (meta) {
      if (size > this.limits.maxMetaSize) throw hostile(`a ${meta} header of ${size} bytes exceeds the limit of ${this.limits.maxMetaSize}`);
      this.metaKind = meta;
      this.metaBufs = [];
      this.remaining = size;
      this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
      if (size === 0) this.endMeta();
      else this.state = State.Meta;
      return;
    }
    const type = TYPES[flag];
    if (!type) throw hostile(`entry type "${flag.replace(/[^\x20-\x7e]/g, '?')}" of "${str(buf, off, 100)}" is not supported`);
    if (++this.entries > this.limits.maxEntries) throw hostile(`the layer has more than ${this.limits.maxEntries} entries`);

    const magic = buf.toString('latin1', off + 257, off + 263);
    let name = str(buf, off, 100);
    if (magic === 'ustar\0') {
      const prefix = str(buf, off + 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const pax = this.pax ? { ...this.globalPax, ...this.pax } : this.globalPax;
    const h: TarHeader = {
      name: pax.path ?? this.longName ?? name,
      linkname: pax.linkpath ?? this.longLink ?? str(buf, off + 157, 100),
      type,
      mode: parseNumeric(buf, off + 100, 8, 'mode') & 0o7777,
      uid: pax.uid ?? parseNumeric(buf, off + 108, 8, 'uid'),
      gid: pax.gid ?? parseNumeric(buf, off + 116, 8, 'gid'),
      size: pax.size ?? size,
      mtime: pax.mtime ?? parseNumeric(buf, off + 136, 12, 'mtime'),
      devmajor: type === 'char' || type === 'block' ? parseNumeric(buf, off + 329, 8, 'devmajor') : 0,
      devminor: type === 'char' || type === 'block' ? parseNumeric(buf, off + 337, 8, 'devminor') : 0,
      xattrs: pax.xattrs,
    };
    this.pax = undefined;
    this.longName = undefined;
    this.longLink = undefined;
    if (h.name.length > this.limits.maxPathLength || h.linkname.length > this.limits.maxPathLength) {
      throw hostile(`an entry name is longer than ${this.limits.maxPathLength} bytes`);
    }
    if (h.name.includes('\0') || h.linkname.includes('\0')) throw hostile('an entry name contains a NUL byte');
    // Only regular files carry data; like Go's archive/tar (which wrote most layers), a size on a
    // header-only type (link, symlink, device, dir, fifo) is ignored and no data is expected.
    const dataSize = type === 'file' ? h.size : 0;
    if (type !== 'file') h.size = 0;
    this.handler.entry(h);
    this.remaining = dataSize;
    this.padding = (BLOCK - (dataSize % BLOCK)) % BLOCK;
    if (dataSize === 0) this.endData();
    else this.state = State.Data;
  }

  private endData(): void {
    this.handler.entryEnd();
    this.state = this.padding ? State.Padding : State.Header;
  }

  private endMeta(): void {
    const buf = Buffer.concat(this.metaBufs);
    this.metaBufs = [];
    switch (this.metaKind) {
      case 'pax':
        this.pax = parsePax(buf, this.pax ?? {});
        break;
      case 'global':
        this.globalPax = parsePax(buf, { ...this.globalPax });
        break;
      case 'longname':
        this.longName = str(buf, 0, buf.length);
        break;
      case 'longlink':
        this.longLink = str(buf, 0, buf.length);
        break;
    }
    this.state = this.padding ? State.Padding : State.Header;
  }
}
