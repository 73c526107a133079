/**
 * Docker credential helpers: the program `docker-credential-<name>` on PATH, run as
 * `docker-credential-<name> get` with the server URL on stdin; it prints
 * `{"ServerURL": "...", "Username": "...", "Secret": "..."}`, or "credentials not found ..." and
 * exits 1 when it has nothing for that server. No shell; a timeout; stdin closed after the URL.
 * The helper runs as an async child process, so the event loop (and every pod a supervisor
 * watches) keeps going while it works; Remote asks only after a registry answered 401.
 */
import { spawn } from 'node:child_process';
import { PodrunError } from '../../util/errors.js';
import type { Credentials } from './credentials.js';

/** Default time a helper may take before it is killed. */
export const CRED_HELPER_TIMEOUT_MS = 10_000;
/** Helper output above this is refused. */
const MAX_OUTPUT = 1024 * 1024;
/** The Username a helper returns when Secret is an identity (refresh) token, as the docker CLI reads it. */
export const IDENTITY_TOKEN_USERNAME = '<token>';

export interface CredHelperOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** The server URL the docker CLI hands a helper: Docker Hub's index URL, else the bare host[:port]. */
export function helperServerUrl(host: string): string {
  return host === 'docker.io' ? 'https://index.docker.io/v1/' : host;
}

export function helperProgram(name: string): string {
  return `docker-credential-${name}`;
}

/** True when a helper's output says it has no credentials for the server (docker's own test is this text). */
export function isCredentialsNotFound(output: string): boolean {
  return /credentials not found/i.test(output);
}

/** What a finished helper left: its output, exit status or signal, or the spawn error. */
interface HelperRun {
  stdout: string;
  stderr: string;
  status: number | null;
  signal: NodeJS.Signals | null;
  error?: NodeJS.ErrnoException;
  timedOut: boolean;
  tooLong: boolean;
}

/**
 * Spawn `program get` (no shell), write `input` to its stdin and collect its output. At the
 * timeout, or past MAX_OUTPUT bytes, the helper gets SIGKILL and the run ends at once (a grandchild
 * holding the pipes open does not keep us waiting). The helper stays in our session, as under the
 * docker CLI, so one that asks for a passphrase on the terminal (pass + gpg) still can.
 */
function runHelperProcess(program: string, input: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<HelperRun> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let done = false;
    const child = spawn(program, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'], shell: false, windowsHide: true });
    const finish = (r: Partial<HelperRun>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(out).toString('utf8').trim(),
        stderr: Buffer.concat(err).toString('utf8').trim(),
        status: null,
        signal: null,
        timedOut: false,
        tooLong: false,
        ...r,
      });
    };
    const kill = () => {
      child.kill('SIGKILL');
      child.stdout.destroy();
      child.stderr.destroy();
    };
    const timer = setTimeout(() => {
      kill();
      finish({ timedOut: true });
    }, timeoutMs);
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_OUTPUT) {
        kill();
        finish({ tooLong: true });
        return;
      }
      into.push(chunk);
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    // A helper that exits without reading its stdin makes the write fail with EPIPE: not our error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    child.on('error', (e) => finish({ error: e as NodeJS.ErrnoException }));
    child.on('close', (status, signal) => finish({ status, signal }));
  });
}

/**
 * Run `docker-credential-<name> get` for `host` ("docker.io", "127.0.0.1:5000"). Resolves to the
 * credentials (an identity token as `identityToken` when the helper answers Username "<token>"),
 * or undefined when the helper has none (anonymous). Rejects with EAUTH, naming the helper, when
 * it is missing, fails, times out, or prints something that is not its protocol.
 */
export async function runCredentialHelper(name: string, host: string, opts: CredHelperOptions = {}): Promise<Credentials | undefined> {
  const program = helperProgram(name);
  const what = `Cannot get credentials for "${host}" from credential helper "${program}"`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new PodrunError('EAUTH', `${what}: "${name}" is not a valid helper name`, {
      hint: 'credsStore and credHelpers values in the Docker config name a program docker-credential-<name> on PATH, e.g. "pass" or "ecr-login".',
    });
  }
  const serverUrl = helperServerUrl(host);
  const timeoutMs = opts.timeoutMs ?? CRED_HELPER_TIMEOUT_MS;
  const res = await runHelperProcess(program, `${serverUrl}\n`, opts.env ?? userEnv(), timeoutMs);
  if (res.error) {
    if (res.error.code === 'ENOENT') {
      throw new PodrunError('EAUTH', `${what}: "${program}" is not on PATH`, {
        cause: res.error,
        hint: `Install ${program}, or remove it from credsStore/credHelpers in the Docker config. Under sudo, PATH is sudo's secure_path.`,
      });
    }
    throw new PodrunError('EAUTH', `${what}: ${res.error.message}`, { cause: res.error });
  }
  if (res.timedOut) throw new PodrunError('EAUTH', `${what}: no answer within ${timeoutMs} ms (killed)`);
  if (res.tooLong) throw new PodrunError('EAUTH', `${what}: it printed more than ${MAX_OUTPUT} bytes (killed)`);
  const { stdout, stderr } = res;
  if (res.status !== 0) {
    if (res.status === 1 && isCredentialsNotFound(stdout || stderr)) return undefined;
    const how = res.signal ? `killed by ${res.signal}` : `exit status ${res.status}`;
    const said = (stdout || stderr).slice(0, 300);
    throw new PodrunError('EAUTH', `${what}: ${how}${said ? `: ${JSON.stringify(said)}` : ''}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw new PodrunError('EAUTH', `${what}: its output is not JSON (${JSON.stringify(stdout.slice(0, 80))})`);
  }
  const d = doc as { Username?: unknown; Secret?: unknown } | null;
  if (!d || typeof d !== 'object' || typeof d.Username !== 'string' || typeof d.Secret !== 'string') {
    throw new PodrunError('EAUTH', `${what}: its output lacks the string fields "Username" and "Secret"`);
  }
  if (d.Username === '' && d.Secret === '') return undefined;
  if (d.Username === IDENTITY_TOKEN_USERNAME) {
    if (d.Secret === '') throw new PodrunError('EAUTH', `${what}: it returned an identity token (Username "${IDENTITY_TOKEN_USERNAME}") with an empty Secret`);
    return { username: '', password: '', identityToken: d.Secret };
  }
  return { username: d.Username, password: d.Secret };
}

/** Our environment as the user set it: bin/podrun moved NODE_EXTRA_CA_CERTS aside (see http.ts). */
function userEnv(): NodeJS.ProcessEnv {
  const extra = process.env.PODRUN_EXTRA_CA_CERTS;
  if (!extra) return process.env;
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: extra };
  delete env.PODRUN_EXTRA_CA_CERTS;
  return env;
}
