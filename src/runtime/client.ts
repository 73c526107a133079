/**
 * One JSON request over the supervisor's root-only unix socket, answered by one JSON line.
 * A light module: the CLI talks to the supervisor without loading the runtime.
 */
import net from 'node:net';
import { PodrunError } from '../util/errors.js';
import fs from 'node:fs';
import { isAlive, readState, toJson } from './state.js';
import { podRunDir, type RuntimePaths } from './paths.js';

export function supervisorRequest(socketPath: string, msg: object, timeoutMs = 60_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socketPath);
    let buf = '';
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      conn.destroy();
      settle(() => reject(new PodrunError('ETIMEOUT', `Cannot talk to the supervisor at "${socketPath}": no answer after ${timeoutMs / 1000} s`)));
    }, timeoutMs);
    conn.on('connect', () => conn.write(toJson(msg) + '\n'));
    conn.on('data', (d) => {
      buf += d.toString('utf8');
      const i = buf.indexOf('\n');
      if (i < 0) return;
      conn.end();
      settle(() => {
        try {
          const res = JSON.parse(buf.slice(0, i)) as Record<string, unknown>;
          if (!res.error) return resolve(res);
          const e = res.error as { code?: string; message?: string; hint?: string };
          reject(new PodrunError((e.code as never) ?? 'EINTERNAL', e.message ?? 'supervisor error', { hint: e.hint }));
        } catch (err) {
          reject(err);
        }
      });
    });
    conn.on('error', (err) => {
      settle(() =>
        reject(new PodrunError('ENOTFOUND', `Cannot talk to the supervisor at "${socketPath}": ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err })),
      );
    });
    // A supervisor that dies mid-request closes the socket cleanly: no 'error' event comes.
    conn.on('close', () => {
      settle(() =>
        reject(
          new PodrunError('ESTATE', `Cannot talk to the supervisor at "${socketPath}": it closed the connection without an answer (did it die?)`, {
            hint: 'run "podrun ps" to see the pods (a new supervisor re-adopts them on the next "up -d"), or "podrun gc"',
          }),
        ),
      );
    });
  });
}

/** Whether a supervisorRequest failed because nobody listens on the socket (none runs). */
export function isNoSupervisor(err: unknown): boolean {
  const code = ((err as { cause?: NodeJS.ErrnoException } | undefined)?.cause)?.code;
  return err instanceof PodrunError && err.code === 'ENOTFOUND' && (code === 'ENOENT' || code === 'ECONNREFUSED');
}

/**
 * Asks the live supervisor that owns pod `key` (if any) to stop and remove it, over its socket.
 * Returns 'removed' when the pod is gone afterwards, 'failed' when the supervisor did not do it
 * (`warn` says why; the caller stops the pod itself), 'no-supervisor' when no live supervisor owns
 * it. Light: `podrun down` of a supervised pod loads neither the runtime nor the kernel interface.
 */
export async function askSupervisorToStop(
  paths: RuntimePaths,
  key: string,
  gracePeriodSeconds: number | undefined,
  warn: (message: string) => void,
): Promise<'removed' | 'failed' | 'no-supervisor'> {
  const st = readState(paths, key);
  const owner = st?.owner;
  if (!st || !owner?.socket || owner.pid === process.pid || !isAlive(owner)) return 'no-supervisor';
  const waitMs = ((gracePeriodSeconds ?? st.plan.terminationGracePeriodSeconds) + 60) * 1000;
  try {
    await supervisorRequest(owner.socket, { op: 'down', key, gracePeriodSeconds }, waitMs);
  } catch (err) {
    warn(`The supervisor did not stop pod "${key}" (${(err as Error).message}); stopping it here`);
    return 'failed';
  }
  return fs.existsSync(podRunDir(paths, key)) ? 'failed' : 'removed';
}
