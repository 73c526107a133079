/**
 * Running one CNI plugin the way the CNI spec (1.0.0) says: the command and its arguments in
 * CNI_* environment variables, the network configuration as JSON on stdin, the result (or a JSON
 * error object {code, msg, details}) on stdout.
 */
import { spawn } from 'node:child_process';
import { PodrunError } from '../../util/errors.js';
import { trace, type EventSink } from '../../util/events.js';

export type CniCommand = 'ADD' | 'CHECK' | 'DEL' | 'VERSION';

export interface CniCall {
  command: CniCommand;
  containerId: string;
  /** Path of the network namespace; "" when it is gone (DEL only). */
  netns: string;
  ifName: string;
  /** CNI_ARGS: "K=V;K=V". */
  args: string;
  /** CNI_PATH directories. */
  cniPath: string[];
}

/** What the plugin said when it failed (its JSON error object, or stderr). */
export interface CniPluginError {
  code?: number;
  msg: string;
  details?: string;
}

const PLUGIN_TIMEOUT_MS = 60_000;

/** The environment a plugin sees: CNI_* plus a PATH that finds iptables and friends. */
export function pluginEnv(call: CniCall): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ? `${process.env.PATH}:/usr/sbin:/sbin` : '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId,
    CNI_NETNS: call.netns,
    CNI_IFNAME: call.ifName,
    CNI_ARGS: call.args,
    CNI_PATH: call.cniPath.join(':'),
  };
}

/** Turn a failed plugin's stdout/stderr into the error it reported. */
export function parsePluginError(stdout: string, stderr: string, exit: string): CniPluginError {
  try {
    const e = JSON.parse(stdout) as { code?: unknown; msg?: unknown; details?: unknown };
    if (e && typeof e.msg === 'string') {
      return {
        code: typeof e.code === 'number' ? e.code : undefined,
        msg: e.msg,
        details: typeof e.details === 'string' && e.details !== '' ? e.details : undefined,
      };
    }
  } catch {
    // not JSON: fall through
  }
  const text = (stderr.trim() || stdout.trim()).split('\n').slice(-3).join(' / ');
  return { msg: text || exit };
}

/** "msg: details (code N)" */
export function formatPluginError(e: CniPluginError): string {
  return `${e.msg}${e.details && e.details !== e.msg ? `: ${e.details}` : ''}${e.code !== undefined ? ` (CNI error code ${e.code})` : ''}`;
}

/**
 * Execute one plugin. Resolves with the parsed stdout (undefined when empty, as for DEL),
 * rejects with PodrunError('ECNI') naming the plugin, the command and the plugin's own message.
 * `action` completes the message: "Cannot <action>: plugin "bridge" (ADD) failed: …".
 */
export function execPlugin(bin: string, type: string, call: CniCall, conf: object, action: string, events?: EventSink): Promise<unknown> {
  trace(events, 'cni', `${call.command} ${type}`, `CNI_CONTAINERID=${call.containerId} CNI_NETNS=${call.netns || '""'} CNI_IFNAME=${call.ifName}`);
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [], { env: pluginEnv(call), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, PLUGIN_TIMEOUT_MS);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {}); // a plugin may exit before reading stdin; the exit code tells
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new PodrunError('ECNI', `Cannot ${action}: cannot run plugin "${type}" at "${bin}": ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) {
        if (stdout.trim() === '') return resolve(undefined);
        try {
          return resolve(JSON.parse(stdout));
        } catch (e) {
          return reject(new PodrunError('ECNI', `Cannot ${action}: plugin "${type}" (${call.command}) printed a result that is not JSON: ${JSON.stringify(stdout.slice(0, 200))}`, { cause: e }));
        }
      }
      const exit = timedOut ? `timed out after ${PLUGIN_TIMEOUT_MS / 1000} s` : signal ? `killed by ${signal}` : `exit code ${code}`;
      const pe = parsePluginError(stdout, stderr, exit);
      const e = new PodrunError('ECNI', `Cannot ${action}: plugin "${type}" (${call.command}) failed: ${formatPluginError(pe)}`, {
        hint: pluginHint(type, pe),
      });
      Object.assign(e, { plugin: type, cniError: pe });
      reject(e);
    });
    child.stdin.end(JSON.stringify(conf));
  });
}

function pluginHint(type: string, e: CniPluginError): string | undefined {
  const m = `${e.msg} ${e.details ?? ''}`;
  if (/no IP addresses available|range set .*exhausted|requested IP address .* is not available/i.test(m)) {
    return 'The network\'s subnet is full: remove stopped pods (`podrun down`, `podrun gc`) or give the network a larger subnet.';
  }
  if (/iptables|xtables|nft/i.test(m)) return 'The plugin could not change the firewall; check that `iptables -t nat -S` works as root.';
  if (type === 'bridge' && /exists|address/i.test(m)) return 'Another interface or network uses the bridge name or subnet; configure a different one.';
  return undefined;
}
