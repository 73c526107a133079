import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { extractLayerStream, unpackLayer, cleanEntryName, layerCompression, type UnpackMode } from '../../src/image/unpack.js';
import type { Syscalls } from '../../src/linux/syscalls.js';
import { SyscallError, isPodrunError } from '../../src/util/errors.js';
import { tarEntry, tarOf, tgzOf, type CraftEntry } from './tar-craft.js';

/** Records mknod/lsetxattr; mknod leaves an empty marker file so later lookups see something. */
function fakeSyscalls() {
  const calls: { fn: string; path: string; args: unknown[] }[] = [];
  const sc = {
    mknod(p: string, mode: number, major: number, minor: number) {
      calls.push({ fn: 'mknod', path: p, args: [mode, major, minor] });
      try {
        fs.writeFileSync(p, '', { flag: 'wx' });
      } catch {
        throw new SyscallError('mknod', 17, p);
      }
    },
    lsetxattr(p: string, name: string, value: Buffer) {
      calls.push({ fn: 'lsetxattr', path: p, args: [name, value.toString()] });
    },
  } as unknown as Syscalls;
  return { sc, calls };
}

let base: string;
let layer: string;
let sentinel: string;
let sentinelBefore: string;

/** Everything observable about a tree: names, types, modes, owners, sizes, contents, link targets, mtimes. */
function snapshot(dir: string): string {
  const lines: string[] = [];
  const walk = (rel: string) => {
    const abs = path.join(dir, rel);
    const st = fs.lstatSync(abs);
    let extra = '';
    if (st.isFile()) extra = createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
    else if (st.isSymbolicLink()) extra = fs.readlinkSync(abs);
    lines.push(`${rel} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${st.nlink} ${extra}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(abs).sort()) walk(path.join(rel, n));
  };
  walk('.');
  return lines.join('\n');
}

beforeEach(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-unpack-'));
  layer = path.join(base, 'layer');
  sentinel = path.join(base, 'sentinel');
  fs.mkdirSync(layer);
  fs.mkdirSync(path.join(sentinel, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(sentinel, 'file'), 'precious');
  fs.writeFileSync(path.join(sentinel, 'sub', 'x'), 'more');
  fs.chmodSync(path.join(sentinel, 'file'), 0o600);
  sentinelBefore = snapshot(sentinel);
});

afterEach(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

async function extract(entries: (CraftEntry | Buffer)[], opts: { mode?: UnpackMode; sc?: Syscalls; limits?: object; gzip?: boolean } = {}) {
  const buf = opts.gzip ? tgzOf(entries) : tarOf(entries);
  return extractLayerStream(Readable.from([buf]), layer, {
    mode: opts.mode ?? 'overlay',
    syscalls: opts.sc ?? fakeSyscalls().sc,
    compression: opts.gzip ? 'gzip' : 'none',
    limits: opts.limits,
  });
}

async function expectHostile(entries: (CraftEntry | Buffer)[], pattern: RegExp, opts: Parameters<typeof extract>[1] = {}) {
  for (const mode of ['overlay', 'flatten'] as const) {
    fs.rmSync(layer, { recursive: true, force: true });
    fs.mkdirSync(layer);
    const err = await extract(entries, { ...opts, mode }).then(
      () => undefined,
      (e) => e,
    );
    expect(err, `mode ${mode}`).toBeDefined();
    expect(isPodrunError(err, 'EHOSTILE'), `${mode}: ${err}`).toBe(true);
    expect(err.message).toMatch(pattern);
    expect(snapshot(sentinel)).toBe(sentinelBefore);
  }
}

const rel = (p: string) => path.relative(layer, p);

describe('entry names', () => {
  it('normalizes "./" prefixes and umoci\'s "/" root entry', () => {
    expect(cleanEntryName('/')).toBe('');
    expect(cleanEntryName('./')).toBe('');
    expect(cleanEntryName('./a/./b/')).toBe('a/b');
    expect(cleanEntryName('a//b')).toBe('a/b');
  });
  it('refuses absolute names and ".."', () => {
    expect(() => cleanEntryName('/etc/passwd')).toThrow(/absolute/);
    expect(() => cleanEntryName('a/../../b')).toThrow(/\.\./);
  });
});

describe('hostile layers (sentinel outside the layer stays byte-identical)', () => {
  it('refuses ".." escapes', async () => {
    await expectHostile([{ name: '../sentinel/file', content: 'owned' }], /"\.\.\/sentinel\/file" contains "\.\."/);
    await expectHostile([{ name: 'a/../../sentinel/file', content: 'owned' }], /contains "\.\."/);
  });

  it('refuses absolute names', async () => {
    await expectHostile([{ name: `${sentinel}/file`, content: 'owned' }], /is an absolute path/);
  });

  it('refuses writing through a symlink to outside (relative and absolute)', async () => {
    await expectHostile([{ name: 'esc', type: 'symlink', linkname: '../sentinel' }, { name: 'esc/file', content: 'owned' }], /goes through the symlink "esc"/);
    await expectHostile([{ name: 'esc', type: 'symlink', linkname: sentinel }, { name: 'esc/new', content: 'owned' }], /symlink/);
    await expectHostile([{ name: 'esc', type: 'symlink', linkname: sentinel }, { name: 'esc/sub', type: 'dir', mode: 0o777 }], /symlink/);
  });

  it('refuses writing through a symlink even when it stays inside the layer', async () => {
    await expectHostile([{ name: 'real', type: 'dir' }, { name: 'in', type: 'symlink', linkname: 'real' }, { name: 'in/f', content: 'x' }], /symlink "in"/);
  });

  it('replaces a symlink named by a later entry instead of following it (file, dir, device, chmod)', async () => {
    const { sc } = fakeSyscalls();
    await extract(
      [
        { name: 'f', type: 'symlink', linkname: '../sentinel/file' },
        { name: 'f', content: 'mine', mode: 0o777 },
        { name: 'd', type: 'symlink', linkname: '../sentinel' },
        { name: 'd', type: 'dir', mode: 0o777 },
        { name: 'n', type: 'symlink', linkname: '../sentinel/file' },
        { name: 'n', type: 'fifo', mode: 0o777 },
      ],
      { sc },
    );
    expect(fs.readFileSync(path.join(layer, 'f'), 'utf8')).toBe('mine');
    expect(fs.lstatSync(path.join(layer, 'd')).isDirectory()).toBe(true);
    expect(snapshot(sentinel)).toBe(sentinelBefore);
  });

  it('refuses writing through a symlink a lower layer left (flatten, across layers)', async () => {
    await extract([{ name: 'esc', type: 'symlink', linkname: '../sentinel' }, { name: 'abs', type: 'symlink', linkname: sentinel }], { mode: 'flatten' });
    for (const entries of [[{ name: 'esc/file', content: 'owned' }], [{ name: 'abs/sub/x', content: 'owned' }], [{ name: 'esc/.wh.file' }], [{ name: 'abs/.wh..wh..opq' }], [{ name: 'h', type: 'link', linkname: 'esc/file' }]]) {
      const err = await extract(entries, { mode: 'flatten' }).catch((e) => e);
      expect(isPodrunError(err, 'EHOSTILE'), String(err)).toBe(true);
      expect(snapshot(sentinel)).toBe(sentinelBefore);
    }
    // a later layer may replace the link itself
    await extract([{ name: 'esc', type: 'dir' }, { name: 'esc/file', content: 'mine' }], { mode: 'flatten' });
    expect(fs.readFileSync(path.join(layer, 'esc/file'), 'utf8')).toBe('mine');
    expect(snapshot(sentinel)).toBe(sentinelBefore);
  });

  it('refuses hardlinks to outside, to absolute paths and through symlinks', async () => {
    await expectHostile([{ name: 'h', type: 'link', linkname: '../sentinel/file' }], /contains "\.\."/);
    await expectHostile([{ name: 'h', type: 'link', linkname: `${sentinel}/file` }], /absolute/);
    await expectHostile([{ name: 'd', type: 'symlink', linkname: '../sentinel' }, { name: 'h', type: 'link', linkname: 'd/file' }], /symlink "d"/);
    await expectHostile([{ name: 'h', type: 'link', linkname: 'missing' }], /not in the layer/);
  });

  it('a hardlink to an escaping symlink links the symlink itself, and writes never follow it', async () => {
    await extract([
      { name: 's', type: 'symlink', linkname: '../sentinel/file' },
      { name: 'h', type: 'link', linkname: 's' },
      { name: 'h', content: 'replaced' },
    ]);
    expect(fs.readlinkSync(path.join(layer, 's'))).toBe('../sentinel/file');
    expect(fs.readFileSync(path.join(layer, 'h'), 'utf8')).toBe('replaced');
    expect(snapshot(sentinel)).toBe(sentinelBefore);
  });

  it('refuses whiteouts that escape', async () => {
    await expectHostile([{ name: '../sentinel/.wh.file' }], /\.\./);
    await expectHostile([{ name: 'esc', type: 'symlink', linkname: '../sentinel' }, { name: 'esc/.wh.file' }], /symlink "esc"/);
    await expectHostile([{ name: 'esc', type: 'symlink', linkname: '../sentinel' }, { name: 'esc/.wh..wh..opq' }], /symlink "esc"/);
    await expectHostile([{ name: '.wh...' }], /whiteout "\.wh\.\.\." names "\.\."/);
  });

  it('refuses unknown entry types', async () => {
    await expectHostile([{ name: 'sparse', type: 'S', content: 'x' }], /entry type "S" of "sparse" is not supported/);
    await expectHostile([{ name: 'vol', type: 'V' }], /entry type "V"/);
  });

  it('refuses malformed numeric fields', async () => {
    await expectHostile([{ name: 'f', content: 'x', raw: [[100, 'rwxr-x\0']] }], /field "mode" is not an octal number/);
    await expectHostile([{ name: 'f', content: 'x', raw: [[108, '0009\0']] }], /field "uid" is not an octal number/);
    await expectHostile([{ name: 'f', content: 'x', raw: [[124 + 11, 'x']] }], /field "size"/);
    await expectHostile([{ name: 'f', content: 'x', raw: [[108, '\xff\xff\xff\xff']] }], /field "uid" is negative/);
    await expectHostile([{ name: 'f', content: 'x', pax: { size: '12abc' } }], /PAX record "size" is not a number/);
  });

  it('refuses bad checksums and truncated archives', async () => {
    const bad = tarEntry({ name: 'f', content: 'x' });
    bad[0] = 'g'.charCodeAt(0);
    await expectHostile([bad], /bad checksum/);
    const truncated = tarEntry({ name: 'f', content: 'x'.repeat(2000) }).subarray(0, 1024);
    for (const mode of ['overlay', 'flatten'] as const) {
      const err = await extractLayerStream(Readable.from([truncated]), layer, { mode, syscalls: fakeSyscalls().sc, compression: 'none' }).catch((e) => e);
      expect(isPodrunError(err, 'EHOSTILE')).toBe(true);
      expect(err.message).toMatch(/truncated/);
    }
  });

  it('refuses oversized PAX and GNU long-name headers (bound configurable)', async () => {
    await expectHostile([{ name: 'f', content: 'x', pax: { comment: 'y'.repeat(2 << 20) } }], /pax header of \d+ bytes exceeds the limit of 1048576/);
    await expectHostile([{ name: 'f', content: 'x', pax: { comment: 'y'.repeat(5000) } }], /exceeds the limit of 4096/, { limits: { maxMetaSize: 4096 } });
    const longName = tarOf([{ name: '././@LongLink', type: 'L', content: 'a'.repeat(3000) + '\0' }], { end: false });
    await expectHostile([longName, { name: 'short' }], /longname header of 3001 bytes exceeds/, { limits: { maxMetaSize: 2048 } });
  });

  it('refuses decompression bombs (size and ratio, configurable)', async () => {
    const zeros = { name: 'zeros', content: Buffer.alloc(8 << 20) };
    await expectHostile([zeros], /decompresses more than 50 times/, { gzip: true, limits: { maxRatio: 50, ratioFloor: 1 << 20 } });
    await expectHostile([zeros], /larger than the limit of 4194304 bytes/, { gzip: true, limits: { maxBytes: 4 << 20 } });
  });

  it('refuses overlayfs attributes smuggled in PAX xattrs', async () => {
    await expectHostile([{ name: 'd', type: 'dir', pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc' } }], /overlayfs attribute "trusted.overlay.redirect"/);
  });

  it('refuses a corrupt gzip stream with EHOSTILE', async () => {
    const gz = tgzOf([{ name: 'f', content: 'hello' }]);
    gz[gz.length - 20] ^= 0xff;
    const err = await extractLayerStream(Readable.from([gz]), layer, { mode: 'overlay', syscalls: fakeSyscalls().sc, compression: 'gzip' }).catch((e) => e);
    expect(isPodrunError(err)).toBe(true);
  });
});

describe('unpackLayer', () => {
  it('renames into place only when the DiffID matches; a failed layer leaves nothing', async () => {
    const tar = tarOf([{ name: 'a', content: 'A' }]);
    const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
    const dest = path.join(base, 'layers', 'abc');
    const bad = await unpackLayer(Readable.from([gzipSync(tar)]), {
      dest,
      compression: 'gzip',
      diffId: `sha256:${'0'.repeat(64)}`,
      syscalls: fakeSyscalls().sc,
    }).catch((e) => e);
    expect(isPodrunError(bad, 'EDIGEST')).toBe(true);
    expect(fs.readdirSync(path.join(base, 'layers'))).toEqual([]);
    const hostile = await unpackLayer(Readable.from([tarOf([{ name: '../x' }])]), { dest, compression: 'none', syscalls: fakeSyscalls().sc }).catch((e) => e);
    expect(isPodrunError(hostile, 'EHOSTILE')).toBe(true);
    expect(fs.readdirSync(path.join(base, 'layers'))).toEqual([]);
    const ok = await unpackLayer(Readable.from([gzipSync(tar)]), { dest, compression: 'gzip', diffId, syscalls: fakeSyscalls().sc });
    expect(ok.diffId).toBe(diffId);
    expect(fs.readFileSync(path.join(dest, 'a'), 'utf8')).toBe('A');
    expect(fs.statSync(dest).mode & 0o7777).toBe(0o755); // the container's "/" when this layer is on top
    // a second unpack of the same layer (another process) keeps the first directory
    const again = await unpackLayer(Readable.from([gzipSync(tar)]), { dest, compression: 'gzip', diffId, syscalls: fakeSyscalls().sc });
    expect(again.reused).toBe(true);
    expect(fs.readdirSync(path.join(base, 'layers'))).toEqual(['abc']);
  });

  it('refuses zstd layers naming the media type', () => {
    expect(() => layerCompression('application/vnd.oci.image.layer.v1.tar+zstd')).toThrow(/"application\/vnd\.oci\.image\.layer\.v1\.tar\+zstd" \(zstd\) is not supported/);
    expect(layerCompression('application/vnd.docker.image.rootfs.diff.tar.gzip')).toBe('gzip');
    expect(layerCompression('application/vnd.oci.image.layer.v1.tar')).toBe('none');
  });
});

describe('faithful unpacking', () => {
  it('keeps types, modes (setuid, sticky), owners, mtimes, symlinks, hardlinks, long names, xattrs', async () => {
    const { sc, calls } = fakeSyscalls();
    const long = `deep/${'n'.repeat(150)}/file`;
    await extract(
      [
        { name: './', type: 'dir', mode: 0o755, mtime: 1_600_000_000 },
        { name: './bin/', type: 'dir', mode: 0o711, mtime: 1_500_000_000 },
        { name: './bin/su', content: 'su', mode: 0o4755, uid: 0, gid: 0 },
        { name: './tmp/', type: 'dir', mode: 0o1777 },
        { name: './home/u/', type: 'dir', mode: 0o700, uid: 1000, gid: 2000 },
        { name: './home/u/f', content: 'data', mode: 0o640, uid: 1000, gid: 2000, mtime: 1_234_567_890 },
        { name: './ln', type: 'symlink', linkname: '/bin/su', uid: 7, gid: 8, mtime: 1_111_111_111 },
        { name: './hard', type: 'link', linkname: './home/u/f' },
        { name: long, content: 'long', pax: { path: long, mtime: '1700000000.5' } },
        { name: 'x', content: 'xa', pax: { 'SCHILY.xattr.user.note': 'hi' } },
      ],
      { sc, gzip: true },
    );
    const st = (p: string) => fs.lstatSync(path.join(layer, p));
    expect(st('bin/su').mode & 0o7777).toBe(0o4755);
    expect(st('tmp').mode & 0o7777).toBe(0o1777);
    expect(st('bin').mode & 0o7777).toBe(0o711);
    expect(st('bin').mtimeMs).toBe(1_500_000_000_000);
    expect(st('.').mtimeMs).toBe(1_600_000_000_000);
    expect(st('home/u/f').mode & 0o7777).toBe(0o640);
    expect(st('home/u/f').mtimeMs).toBe(1_234_567_890_000);
    expect(fs.readlinkSync(path.join(layer, 'ln'))).toBe('/bin/su');
    expect(st('ln').mtimeMs).toBe(1_111_111_111_000);
    expect(st('hard').ino).toBe(st('home/u/f').ino);
    expect(fs.readFileSync(path.join(layer, long), 'utf8')).toBe('long');
    expect(st(long).mtimeMs).toBe(1_700_000_000_500);
    expect(calls).toContainEqual({ fn: 'lsetxattr', path: path.join(layer, 'x'), args: ['user.note', 'hi'] });
    if (process.geteuid?.() === 0) {
      expect([st('home/u/f').uid, st('home/u/f').gid]).toEqual([1000, 2000]);
      expect([st('ln').uid, st('ln').gid]).toEqual([7, 8]);
    }
  });

  it('overlay mode turns whiteouts into char 0:0 nodes and opaque markers into an xattr', async () => {
    const { sc, calls } = fakeSyscalls();
    await extract([{ name: 'etc/', type: 'dir' }, { name: 'etc/.wh.passwd' }, { name: 'opt/.wh..wh..opq' }, { name: 'opt/keep', content: 'k' }], { sc });
    expect(calls.map((c) => [c.fn, rel(c.path), ...c.args])).toEqual([
      ['mknod', 'etc/passwd', 0o020000, 0, 0],
      ['lsetxattr', 'opt', 'trusted.overlay.opaque', 'y'],
    ]);
    expect(fs.existsSync(path.join(layer, 'etc/.wh.passwd'))).toBe(false);
    expect(fs.readFileSync(path.join(layer, 'opt/keep'), 'utf8')).toBe('k');
  });

  it('flatten mode deletes what lower layers left and keeps this layer\'s own entries', async () => {
    await extract([{ name: 'a/1', content: '1' }, { name: 'a/2', content: '2' }, { name: 'b/old', content: 'o' }, { name: 'c', content: 'c' }], { mode: 'flatten' });
    await extract(
      [
        { name: 'a/new', content: 'n' },
        { name: 'a/.wh..wh..opq' },
        { name: 'b/.wh.old' },
        { name: '.wh.c' },
        { name: 'c2', content: 'c2' },
        { name: '.wh.c2' }, // same layer: stays
        { name: '.wh.nothing' },
      ],
      { mode: 'flatten' },
    );
    expect(fs.readdirSync(path.join(layer, 'a'))).toEqual(['new']);
    expect(fs.readdirSync(path.join(layer, 'b'))).toEqual([]);
    expect(fs.existsSync(path.join(layer, 'c'))).toBe(false);
    expect(fs.readFileSync(path.join(layer, 'c2'), 'utf8')).toBe('c2');
  });
});

describe.runIf(process.geteuid?.() === 0)('with the real kernel (root)', () => {
  it('creates device nodes, fifos, overlay whiteouts (char 0:0) and the opaque xattr', async () => {
    const { realSyscalls } = await import('../../src/linux/ffi.js');
    await extract(
      [
        { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
        { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0, mode: 0o660 },
        { name: 'fifo', type: 'fifo', mode: 0o600 },
        { name: 'etc/.wh.gone' },
        { name: 'opt/.wh..wh..opq' },
        { name: 'f', content: 'x', pax: { 'SCHILY.xattr.user.k': 'v' } },
      ],
      { sc: realSyscalls },
    );
    const st = (p: string) => fs.lstatSync(path.join(layer, p));
    expect(st('dev/null').isCharacterDevice()).toBe(true);
    expect(st('dev/null').rdev).toBe(0x103);
    expect(st('dev/null').mode & 0o777).toBe(0o666);
    expect(st('dev/sda').isBlockDevice()).toBe(true);
    expect(st('fifo').isFIFO()).toBe(true);
    expect(st('etc/gone').isCharacterDevice()).toBe(true);
    expect(st('etc/gone').rdev).toBe(0);
    expect(realSyscalls.lgetxattr(path.join(layer, 'opt'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    expect(realSyscalls.lgetxattr(path.join(layer, 'f'), 'user.k')?.toString()).toBe('v');
  });
});

describe('large files written on the threadpool', () => {
  const big = (n: number, seed: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
    return b;
  };
  const openFds = () => fs.readdirSync('/proc/self/fd').length;

  it('keep content, mode (setuid too), owner, mtime and hardlinks, also fed in small pieces', async () => {
    const a = big(300_000, 1);
    const b = big(2 * 1024 * 1024 + 123, 2);
    const entries: CraftEntry[] = [
      { name: 'bin', type: 'dir', mode: 0o755, mtime: 1_600_000_000 },
      { name: 'bin/a', content: a, mode: 0o4755, mtime: 1_600_000_001 },
      { name: 'bin/b', content: b, mode: 0o640, mtime: 1_600_000_002 },
      { name: 'bin/h', type: 'link', linkname: 'bin/a' },
      { name: 'bin/small', content: 'tiny', mode: 0o600, mtime: 1_600_000_003 },
      { name: 'bin/b', content: a, mode: 0o700, mtime: 1_600_000_004 }, // same name again: the later one wins
    ];
    const tgz = tgzOf(entries);
    const pieces: Buffer[] = [];
    for (let off = 0; off < tgz.length; off += 7_000) pieces.push(tgz.subarray(off, off + 7_000));
    const fds = openFds();
    const r = await extractLayerStream(Readable.from(pieces), layer, { mode: 'overlay', syscalls: fakeSyscalls().sc, compression: 'gzip' });
    expect(openFds()).toBe(fds);
    expect(r.entries).toBe(6);
    const st = (p: string) => fs.lstatSync(path.join(layer, p));
    expect(fs.readFileSync(path.join(layer, 'bin/a')).equals(a)).toBe(true);
    expect(fs.readFileSync(path.join(layer, 'bin/b')).equals(a)).toBe(true);
    expect(st('bin/a').mode & 0o7777).toBe(0o4755);
    expect(st('bin/b').mode & 0o7777).toBe(0o700);
    expect(st('bin/a').mtimeMs).toBe(1_600_000_001_000);
    expect(st('bin/b').mtimeMs).toBe(1_600_000_004_000);
    expect(st('bin/h').ino).toBe(st('bin/a').ino);
    expect(st('bin').mtimeMs).toBe(1_600_000_000_000);
    // the same archive written synchronously gives the same tree
    const syncDir = path.join(base, 'sync');
    fs.mkdirSync(syncDir);
    await extractLayerStream(Readable.from([tgz]), syncDir, { mode: 'overlay', syscalls: fakeSyscalls().sc, compression: 'gzip', asyncWriteMin: 0 });
    const below = (dir: string) => snapshot(dir).split('\n').slice(1).join('\n'); // the root itself has no entry: its mtime is now
    expect(below(layer)).toBe(below(syncDir));
  });

  it('a large file with xattrs is written synchronously, xattrs after the content', async () => {
    const { sc, calls } = fakeSyscalls();
    await extract([{ name: 'f', content: big(200_000, 3), pax: { 'SCHILY.xattr.security.capability': 'cap' } }], { sc });
    expect(calls.filter((c) => c.fn === 'lsetxattr').map((c) => rel(c.path))).toEqual(['f']);
    expect(fs.statSync(path.join(layer, 'f')).size).toBe(200_000);
  });

  it('a stream that breaks inside a large file leaves no file descriptor open', async () => {
    const tar = tarOf([{ name: 'f', content: big(500_000, 4) }, { name: 'g', content: big(500_000, 5) }]);
    const fds = openFds();
    const err = await extractLayerStream(Readable.from([tar.subarray(0, 700_000)]), layer, { mode: 'overlay', syscalls: fakeSyscalls().sc, compression: 'none' }).catch((e) => e);
    expect(isPodrunError(err, 'EHOSTILE'), String(err)).toBe(true);
    expect(err.message).toMatch(/truncated/);
    expect(openFds()).toBe(fds);
  });

  it('a layer that turns hostile after a large file refuses it and closes everything', async () => {
    const fds = openFds();
    await expectHostile([{ name: 'f', content: big(400_000, 6) }, { name: '../sentinel/file', content: 'owned' }], /contains "\.\."/);
    expect(openFds()).toBe(fds);
  });
});
