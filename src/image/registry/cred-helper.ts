/**
 * Docker credential helpers: the program `docker-credential-<name>` on PATH, run as
 * `docker-credential-<name> get` with the server URL on stdin; it prints
 * `{"ServerURL": "...", "Username": "...", "Secret": "..."}`, or "credentials not found ..." and
 * exits 1 when it has nothing for that server. No shell; a timeout; stdin closed after the URL.
 *
 * The run is synchronous because credential lookups are (Remote looks them up when it is built);
 * the timeout bounds how long that can block.
 */
import { spawnSync } from 'node:child_process';
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

/**
 * Run `docker-credential-<name> get` for `host` ("docker.io", "127.0.0.1:5000"). Returns the
 * credentials, or undefined when the helper has none (anonymous). Throws EAUTH, naming the
 * helper, when it is missing, fails, times out, prints something that is not its protocol, or
 * returns an identity token (which podrun cannot exchange yet).
 */
export function runCredentialHelper(name: string, host: string, opts: CredHelperOptions = {}): Credentials | undefined {
  const program = helperProgram(name);
  const what = `Cannot get credentials for "${host}" from credential helper "${program}"`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new PodrunError('EAUTH', `${what}: "${name}" is not a valid helper name`, {
      hint: 'credsStore and credHelpers values in the Docker config name a program docker-credential-<name> on PATH, e.g. "pass" or "ecr-login".',
    });
  }
  const serverUrl = helperServerUrl(host);
  const timeoutMs = opts.timeoutMs ?? CRED_HELPER_TIMEOUT_MS;
  const res = spawnSync(program, ['get'], {
    input: `${serverUrl}\n`,
    env: opts.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: MAX_OUTPUT,
    shell: false,
    windowsHide: true,
  });
  if (res.error) {
    const code = (res.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new PodrunError('EAUTH', `${what}: "${program}" is not on PATH`, {
        cause: res.error,
        hint: `Install ${program}, or remove it from credsStore/credHelpers in the Docker config. Under sudo, PATH is sudo's secure_path.`,
      });
    }
    if (code === 'ETIMEDOUT') {
      throw new PodrunError('EAUTH', `${what}: no answer within ${timeoutMs} ms (killed)`, { cause: res.error });
    }
    throw new PodrunError('EAUTH', `${what}: ${res.error.message}`, { cause: res.error });
  }
  const stdout = res.stdout.toString('utf8').trim();
  const stderr = res.stderr.toString('utf8').trim();
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
    throw new PodrunError('EAUTH', `${what}: it returned an identity token (Username "${IDENTITY_TOKEN_USERNAME}"), and podrun cannot exchange identity tokens yet`, {
      hint: `Store a user name with a password or access token for "${serverUrl}" instead (e.g. "docker login -u USER ${host}" with a personal access token).`,
    });
  }
  return { username: d.Username, password: d.Secret };
}
