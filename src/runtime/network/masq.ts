/**
 * The bridge plugin (1.1.1) removes its IP-masquerade rule only when it still finds the pod's
 * interface (it learns the pod IP from it). When the namespace or the interface is already gone, the
 * rule would leak, so after every DEL podrun removes what is left itself: the chain and comment are the plugin's own naming scheme
 * (chain "CNI-" + sha512(network + id) cut to 28 chars, comment `name: "<net>" id: "<id>"`).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { trace, type EventSink } from '../../util/events.js';

export function masqChainName(network: string, id: string): string {
  return `CNI-${createHash('sha512').update(network + id).digest('hex')}`.slice(0, 28);
}
export function masqComment(network: string, id: string): string {
  return `name: ${JSON.stringify(network)} id: ${JSON.stringify(id)}`;
}

export function iptables(args: string[], v6 = false): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(v6 ? 'ip6tables' : 'iptables', ['-w', '5', ...args], { env: { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 127) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/**
 * Remove the nat POSTROUTING jumps to the pod's masquerade chain and the chain itself, if present.
 * Returns the rules removed (for traces and tests). Errors other than "not there" are returned as text.
 */
export async function removeMasq(network: string, id: string, families: { v4: boolean; v6: boolean }, events?: EventSink): Promise<{ removed: number; error?: string }> {
  const chain = masqChainName(network, id);
  const comment = masqComment(network, id);
  let removed = 0;
  for (const v6 of [false, true]) {
    if (v6 ? !families.v6 : !families.v4) continue;
    const list = await iptables(['-t', 'nat', '-S', 'POSTROUTING'], v6);
    if (list.code !== 0) {
      return { removed, error: list.stderr.trim() };
    }
    for (const line of list.stdout.split('\n')) {
      if (!line.endsWith(` -j ${chain}`)) continue;
      const src = / -s (\S+) /.exec(line)?.[1];
      const args = ['-t', 'nat', '-D', 'POSTROUTING', ...(src ? ['-s', src] : []), '-m', 'comment', '--comment', comment, '-j', chain];
      trace(events, 'cni', 'iptables', args.join(' '));
      const r = await iptables(args, v6);
      if (r.code === 0) removed++;
    }
    const exists = await iptables(['-t', 'nat', '-S', chain], v6);
    if (exists.code === 0) {
      trace(events, 'cni', 'iptables', `-t nat -F ${chain}; -X ${chain}`);
      await iptables(['-t', 'nat', '-F', chain], v6);
      const x = await iptables(['-t', 'nat', '-X', chain], v6);
      if (x.code !== 0) return { removed, error: x.stderr.trim() };
      removed++;
    }
  }
  return { removed };
}
