/**
 * Linux capabilities for container processes, with containerd's defaults and Kubernetes'
 * add/drop semantics. Names are accepted with or without "CAP_", in any case; the sets we return
 * carry "CAP_"-prefixed names sorted by number, and `capabilityNumber()` gives the shim the bits.
 */
import { PodrunError } from '../util/errors.js';

/** Every capability the kernel knows (linux/capability.h, up to CAP_LAST_CAP = 40 on 5.9+), by number. */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', // 0
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL', // 5
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE', // 10
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', // 15
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', // 20
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME', // 25
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL', // 30
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM', // 35
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE', // 40
];

/** containerd's default set for unprivileged containers (oci.DefaultCapabilities / CRI default). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const NUMBER = new Map(ALL_CAPABILITIES.map((n, i) => [n, i]));

/**
 * "net_admin", "CAP_NET_ADMIN", "Net_Admin" → "CAP_NET_ADMIN"; "ALL" (any case) → "ALL";
 * undefined when the name is not a capability.
 */
export function normalizeCapability(name: string): string | undefined {
  const up = name.trim().toUpperCase();
  if (up === 'ALL') return 'ALL';
  const full = up.startsWith('CAP_') ? up : `CAP_${up}`;
  return NUMBER.has(full) ? full : undefined;
}

/** Bit number of a capability ("CAP_NET_ADMIN" or "NET_ADMIN" → 12). Throws on an unknown name. */
export function capabilityNumber(name: string): number {
  const n = normalizeCapability(name);
  const num = n === undefined ? undefined : NUMBER.get(n);
  if (num === undefined) throw new PodrunError('EINVAL_SPEC', `Cannot use capability ${JSON.stringify(name)}: not a Linux capability`);
  return num;
}

/** 64-bit mask of a set of names (for capset(2) / the shim). */
export function capabilityMask(names: readonly string[]): bigint {
  let m = 0n;
  for (const n of names) m |= 1n << BigInt(capabilityNumber(n));
  return m;
}

/** Names in a mask, e.g. the hex "CapBnd:" value of /proc/self/status ("000001ffffffffff"). */
export function capabilitiesFromMask(mask: bigint | string): string[] {
  const m = typeof mask === 'string' ? BigInt(`0x${mask.trim()}`) : mask;
  return ALL_CAPABILITIES.filter((_, i) => (m >> BigInt(i)) & 1n);
}

function sortByNumber(set: Set<string>): string[] {
  return [...set].sort((a, b) => NUMBER.get(a)! - NUMBER.get(b)!);
}

export interface CapabilityInput {
  privileged: boolean;
  /** Names as in the manifest ("NET_ADMIN", "ALL"); validated by the parser. */
  add: readonly string[];
  drop: readonly string[];
}

/**
 * The container's capability set (bounding = permitted = effective), as containerd's CRI plugin
 * computes it:
 *  - privileged → every capability the runtime itself holds (`available`, default: all known);
 *  - else start from DEFAULT_CAPABILITIES, then: add "ALL" → all; drop "ALL" → none; then each
 *    named add; then each named drop (so a name both added and dropped ends up dropped).
 * The result is intersected with `available` (the runtime's own bounding set; on the development
 * host CAP_SYS_RESOURCE is missing), since a process cannot gain what its parent lacks.
 */
export function containerCapabilities(input: CapabilityInput, available: readonly string[] = ALL_CAPABILITIES): string[] {
  const avail = new Set(available.map((n) => normalizeCapability(n)).filter((n): n is string => !!n && n !== 'ALL'));
  let set: Set<string>;
  if (input.privileged) {
    set = new Set(avail);
  } else {
    set = new Set(DEFAULT_CAPABILITIES);
    const add = input.add.map((n) => mustNormalize(n));
    const drop = input.drop.map((n) => mustNormalize(n));
    if (add.includes('ALL')) set = new Set(ALL_CAPABILITIES);
    if (drop.includes('ALL')) set = new Set();
    for (const n of add) if (n !== 'ALL') set.add(n);
    for (const n of drop) if (n !== 'ALL') set.delete(n);
  }
  for (const n of [...set]) if (!avail.has(n)) set.delete(n);
  return sortByNumber(set);
}

function mustNormalize(name: string): string {
  const n = normalizeCapability(name);
  if (!n) throw new PodrunError('EINVAL_SPEC', `Cannot use capability ${JSON.stringify(name)}: not a Linux capability`);
  return n;
}
