import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileLock, ownerAlive, withLock } from '../../src/image/lock.js';
import { isPodrunError } from '../../src/util/errors.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-lock-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The pid of a process that has exited. */
function deadPid(): number {
  return Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
}

describe('FileLock (O_EXCL lock file with pid + start time)', () => {
  it('is exclusive and released', async () => {
    const p = path.join(dir, 'a.lock');
    const lock = await FileLock.acquire(p);
    expect(fs.readFileSync(p, 'utf8')).toMatch(new RegExp(`^${process.pid} \\d+$`));
    expect(FileLock.tryAcquire(p)).toBeUndefined();
    const err = await FileLock.acquire(p, { timeoutMs: 100, what: 'the test thing' }).catch((e) => e);
    expect(isPodrunError(err, 'ELOCKED')).toBe(true);
    expect(err.message).toBe(`Cannot lock the test thing: held by process ${process.pid}`);
    lock.release();
    expect(fs.existsSync(p)).toBe(false);
  });

  it('breaks a lock whose owner is gone or whose pid was reused', async () => {
    const p = path.join(dir, 'b.lock');
    fs.writeFileSync(p, `${deadPid()} 12345`);
    (await FileLock.acquire(p, { timeoutMs: 1000 })).release();
    fs.writeFileSync(p, `${process.pid} 1`); // our pid, another start time: a reused pid
    expect(ownerAlive(`${process.pid} 1`)).toBe(false);
    (await FileLock.acquire(p, { timeoutMs: 1000 })).release();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('serializes work in one process', async () => {
    const p = path.join(dir, 'c.lock');
    const order: string[] = [];
    await Promise.all(
      ['x', 'y', 'z'].map((n) =>
        withLock(p, {}, async () => {
          order.push(`${n}+`);
          await new Promise((r) => setTimeout(r, 20));
          order.push(`${n}-`);
        }),
      ),
    );
    for (let i = 0; i < order.length; i += 2) expect(order[i].slice(0, 1)).toBe(order[i + 1].slice(0, 1));
  });
});
