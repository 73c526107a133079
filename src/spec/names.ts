/**
 * Kubernetes name and value rules (k8s.io/apimachinery/pkg/util/validation), as small predicates
 * that return undefined when valid or the reason why not (the caller adds the field path).
 */
import { isIP } from 'node:net';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const SYSCTL_NAME = /^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$/;

const q = (s: string) => JSON.stringify(s);

/** DNS-1123 label: container, volume, namespace, hostname. */
export function checkDnsLabel(s: string): string | undefined {
  if (s.length > 63) return `${q(s)} is not a valid DNS-1123 label: longer than 63 characters`;
  if (!DNS1123_LABEL.test(s)) {
    return `${q(s)} is not a valid DNS-1123 label: use lowercase letters, digits and '-', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** DNS-1123 subdomain: pod, ConfigMap, Secret names. */
export function checkDnsSubdomain(s: string): string | undefined {
  if (s.length > 253) return `${q(s)} is not a valid DNS-1123 subdomain: longer than 253 characters`;
  if (!DNS1123_SUBDOMAIN.test(s)) {
    return `${q(s)} is not a valid DNS-1123 subdomain: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Label / annotation key: [prefix/]name, prefix a DNS subdomain, name ≤ 63. */
export function checkQualifiedName(s: string): string | undefined {
  const parts = s.split('/');
  if (parts.length > 2) return `${q(s)} is not a valid key: at most one '/'`;
  const name = parts[parts.length - 1];
  if (parts.length === 2) {
    if (parts[0].length === 0) return `${q(s)} is not a valid key: empty prefix before '/'`;
    const p = checkDnsSubdomain(parts[0]);
    if (p) return `${q(s)} is not a valid key: the prefix ${p}`;
  }
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    return `${q(s)} is not a valid key: the name part must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

export function checkLabelValue(s: string): string | undefined {
  if (s.length > 63 || !LABEL_VALUE.test(s)) {
    return `${q(s)} is not a valid label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Environment variable name (Kubernetes' classic rule, as used for env[].name). */
export function checkEnvName(s: string): string | undefined {
  if (!ENV_NAME.test(s)) {
    return `${q(s)} is not a valid environment variable name: use letters, digits, '_', '-' or '.', not starting with a digit`;
  }
  return undefined;
}

export function isEnvName(s: string): boolean {
  return ENV_NAME.test(s);
}

/** ConfigMap / Secret data key. */
export function checkConfigKey(s: string): string | undefined {
  if (s.length > 253 || !CONFIG_KEY.test(s) || s === '.' || s === '..') {
    return `${q(s)} is not a valid key: use letters, digits, '-', '_' or '.' (at most 253, not "." or "..")`;
  }
  return undefined;
}

/** Port name (IANA_SVC_NAME): ≤ 15, lowercase alphanumerics and '-', a letter, no "--". */
export function checkPortName(s: string): string | undefined {
  if (s.length > 15 || !IANA_SVC_NAME.test(s) || s.includes('--') || !/[a-z]/.test(s)) {
    return `${q(s)} is not a valid port name: at most 15 lowercase letters, digits and '-', with at least one letter, no "--"`;
  }
  return undefined;
}

/** Absolute path without NUL. */
export function checkAbsolutePath(s: string): string | undefined {
  if (!s.startsWith('/')) return `${q(s)} is not an absolute path`;
  if (s.includes('\0')) return `${q(s)} contains a NUL byte`;
  return undefined;
}

/** Relative path that stays inside its base: no leading '/', no ".." element. */
export function checkRelativePath(s: string): string | undefined {
  if (s.startsWith('/')) return `${q(s)} must be a relative path`;
  if (s.split('/').includes('..')) return `${q(s)} must not contain ".."`;
  if (s.includes('\0')) return `${q(s)} contains a NUL byte`;
  return undefined;
}

/** IPv4 or IPv6 literal (node:net's parser; no network involved). */
export function checkIp(s: string): string | undefined {
  return isIP(s) === 0 ? `${q(s)} is not a valid IP address` : undefined;
}

/**
 * Namespaced sysctls that a pod may set (kubelet's namespaced list; net.* only without hostNetwork).
 * Returns the reason when not allowed.
 */
export function checkSysctl(name: string, hostNetwork: boolean): string | undefined {
  if (name.length > 253 || !SYSCTL_NAME.test(name)) return `${q(name)} is not a valid sysctl name`;
  const n = name.replaceAll('/', '.');
  const ipc = n === 'kernel.sem' || n.startsWith('kernel.shm') || n.startsWith('kernel.msg') || n.startsWith('fs.mqueue.');
  if (ipc) return undefined;
  if (n.startsWith('net.')) {
    return hostNetwork ? `${q(name)} cannot be set with hostNetwork: true (it would change the host)` : undefined;
  }
  return `${q(name)} is not a namespaced sysctl: a pod may set kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.* and net.*`;
}

/**
 * The /proc/sys path of a sysctl name: "net.ipv4.ip_forward" → "net/ipv4/ip_forward"; a name
 * written with '/' separators ("net/ipv4/conf/eth0.100/forwarding") is already a path, and its
 * dots are part of the components.
 */
export function sysctlPath(name: string): string {
  return name.includes('/') ? name : name.replaceAll('.', '/');
}
