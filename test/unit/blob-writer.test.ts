import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImageStore } from '../../src/image/store.js';
import { isPodrunError } from '../../src/util/errors.js';

let root: string;
let store: ImageStore;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-blobwriter-'));
  store = new ImageStore(root).init();
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

function blob(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 11)) & 0xff;
  return b;
}
const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const chunks = (b: Buffer, size: number) => Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size));

describe('BlobWriter (writes on the threadpool)', () => {
  it('stores a blob written in many chunks, waiting for room when asked', async () => {
    const data = blob(9 * 1024 * 1024 + 17);
    const desc = { mediaType: 'application/octet-stream', digest: digestOf(data), size: data.length };
    const w = store.openIngest(desc);
    for (const c of chunks(data, 100_000)) {
      w.write(c);
      if (w.backlog > 2 * 1024 * 1024) await w.room();
    }
    expect(w.written).toBe(data.length);
    await w.commit();
    expect(store.hasBlob(desc)).toBe(true);
    expect(fs.readFileSync(store.blobPath(desc.digest)).equals(data)).toBe(true);
    expect(fs.readdirSync(store.ingestDir)).toEqual([]);
  });

  it('an interrupted download leaves a prefix that the next writer resumes from', async () => {
    const data = blob(3 * 1024 * 1024);
    const desc = { mediaType: 'application/octet-stream', digest: digestOf(data), size: data.length };
    const first = store.openIngest(desc);
    for (const c of chunks(data.subarray(0, 2_000_000), 65_536)) first.write(c);
    await first.close(); // all accepted bytes are on disk, in order
    const partial = fs.readFileSync(first.partialPath);
    expect(partial.equals(data.subarray(0, 2_000_000))).toBe(true);

    const again = store.openIngest(desc);
    expect(again.resumeOffset).toBe(2_000_000);
    again.hashExisting(partial);
    for (const c of chunks(data.subarray(2_000_000), 65_536)) again.write(c);
    await again.commit();
    expect(fs.readFileSync(store.blobPath(desc.digest)).equals(data)).toBe(true);
  });

  it('refuses bytes with another digest and drops the partial file', async () => {
    const data = blob(200_000);
    const desc = { mediaType: 'application/octet-stream', digest: digestOf(Buffer.from('other')), size: data.length };
    const w = store.openIngest(desc);
    w.write(data);
    const err = await w.commit().catch((e) => e);
    expect(isPodrunError(err, 'EDIGEST'), String(err)).toBe(true);
    expect(fs.existsSync(w.partialPath)).toBe(false);
    expect(store.hasBlob(desc)).toBe(false);
  });

  it('refuses more bytes than the descriptor says before writing them', async () => {
    const data = blob(1000);
    const desc = { mediaType: 'application/octet-stream', digest: digestOf(data), size: 999 };
    const w = store.openIngest(desc);
    expect(() => w.write(data)).toThrow(/more than the 999 bytes/);
    await w.close();
    expect(fs.statSync(w.partialPath).size).toBe(0);
  });
});
