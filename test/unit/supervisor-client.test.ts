import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { supervisorRequest } from '../../src/runtime/client.js';

describe('supervisorRequest', () => {
  let dir: string | undefined;
  let server: net.Server | undefined;
  afterEach(() => {
    server?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    server = dir = undefined;
  });

  async function serve(onData: (c: net.Socket, line: string) => void): Promise<string> {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podrun-test-sock-'));
    const sock = path.join(dir, 'supervisor.sock');
    server = net.createServer((c) => c.on('data', (d) => onData(c, d.toString())));
    await new Promise<void>((r) => server!.listen(sock, r));
    return sock;
  }

  it('resolves with the JSON answer', async () => {
    const sock = await serve((c, line) => c.end(JSON.stringify({ echo: JSON.parse(line).op }) + '\n'));
    await expect(supervisorRequest(sock, { op: 'ping' })).resolves.toEqual({ echo: 'ping' });
  });

  it('turns an {error} answer into the PodrunError it was', async () => {
    const sock = await serve((c) => c.end(JSON.stringify({ error: { code: 'ENOTFOUND', message: 'Cannot find pod "x"' } }) + '\n'));
    await expect(supervisorRequest(sock, { op: 'down' })).rejects.toMatchObject({ code: 'ENOTFOUND', message: 'Cannot find pod "x"' });
  });

  it('fails at once when the supervisor dies mid-request (the socket closes without an answer)', async () => {
    const sock = await serve((c) => c.destroy());
    const t0 = Date.now();
    await expect(supervisorRequest(sock, { op: 'up-text' }, 30_000)).rejects.toThrow(/closed the connection without an answer/);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('names the socket when nobody listens', async () => {
    await expect(supervisorRequest('/nonexistent/podrun-test.sock', { op: 'ping' })).rejects.toMatchObject({ code: 'ENOTFOUND', message: expect.stringContaining('ENOENT') });
  });
});
