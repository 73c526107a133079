/**
 * TCP connections from podrun INSIDE the pod's network namespace, so httpGet / tcpSocket / grpc
 * probes and hooks need no HTTP client or nc in the image.
 *
 * Namespaces are per thread and Node's JavaScript runs on the main thread, so: setns(net) into
 * the pod's pinned netns on the main thread, create and connect the socket synchronously, setns
 * back — no await in between, restored on every path. libuv creates the socket fd inside
 * `connect()` only when the address is already resolved synchronously; an IP literal host makes
 * Node defer the connect to the next tick (in the wrong namespace), so the address is handed over
 * through a synchronous `lookup` under a placeholder host name, and the fd is checked afterwards.
 */
import fs from 'node:fs';
import net from 'node:net';
import { lookup as dnsLookup } from 'node:dns/promises';
import { CLONE_NEWNET, type Syscalls } from '../../linux/syscalls.js';
import { PodrunError } from '../../util/errors.js';
import { trace, type EventSink } from '../../util/events.js';

export interface DialOptions {
  /** The pod's pinned network namespace; absent = connect from the host's namespace. */
  netnsPath?: string;
  host: string;
  port: number;
  syscalls?: Syscalls;
  events?: EventSink;
}

/** Resolves a host name to an address (on the host, as kubelet does); IP literals pass through. */
export async function resolveHost(host: string): Promise<{ address: string; family: 4 | 6 }> {
  const fam = net.isIP(host);
  if (fam === 4 || fam === 6) return { address: host, family: fam };
  const r = await dnsLookup(host);
  return { address: r.address, family: r.family === 6 ? 6 : 4 };
}

/**
 * Starts a TCP connection to an IP address (the socket emits 'connect' or 'error' as usual).
 * With `netnsPath`, the socket is created inside that network namespace.
 */
export function dialTcp(opts: DialOptions & { host: string }): net.Socket {
  const family = net.isIP(opts.host);
  if (family === 0) throw new PodrunError('EINVAL_ARG', `Cannot connect to "${opts.host}": not an IP address (resolve it first)`);
  if (!opts.netnsPath) return net.connect({ host: opts.host, port: opts.port });
  if (!opts.syscalls) throw new PodrunError('EINTERNAL', `Cannot connect inside "${opts.netnsPath}": no Syscalls given for setns`);
  const sys = opts.syscalls;
  const target = fs.openSync(opts.netnsPath, 'r');
  let home: number | undefined;
  try {
    home = fs.openSync('/proc/thread-self/ns/net', 'r');
    trace(opts.events, 'syscall', 'setns', `net "${opts.netnsPath}" (main thread, to open a probe socket)`);
    sys.setns(target, CLONE_NEWNET);
    let sock: net.Socket;
    try {
      sock = new net.Socket();
      sock.connect({
        host: 'podrun-probe-target',
        port: opts.port,
        autoSelectFamily: false,
        lookup: (_h: string, _o: unknown, cb: (err: Error | null, address: string, family: number) => void) => cb(null, opts.host, family),
      } as net.TcpSocketConnectOpts);
    } finally {
      sys.setns(home, CLONE_NEWNET);
      trace(opts.events, 'syscall', 'setns', 'net back to the host namespace');
    }
    const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) {
      sock.destroy();
      throw new PodrunError('EINTERNAL', `Cannot connect inside "${opts.netnsPath}": Node did not create the socket synchronously`, {
        hint: 'this Node version defers connect(); network probes need another path (podIP or a helper)',
      });
    }
    return sock;
  } finally {
    fs.closeSync(target);
    if (home !== undefined) fs.closeSync(home);
  }
}
