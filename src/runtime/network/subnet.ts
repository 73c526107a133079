/**
 * IPv4 CIDR arithmetic for one question: does the pod subnet overlap a route the host already
 * has (a LAN, a VPN, another container network)? Then pods could not reach those addresses.
 */
function toInt(ip: string): number | undefined {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) return undefined;
  return ((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3];
}

/** [first, last] address of an IPv4 CIDR ("10.0.0.0/8"; a bare address is a /32), or undefined. */
export function cidrRange(cidr: string): [number, number] | undefined {
  const [ip, bitsText] = cidr.split('/');
  const base = toInt(ip);
  const bits = bitsText === undefined ? 32 : Number(bitsText);
  if (base === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32) return undefined;
  const size = 2 ** (32 - bits);
  const first = Math.floor(base / size) * size;
  return [first, first + size - 1];
}

export function cidrsOverlap(a: string, b: string): boolean {
  const ra = cidrRange(a);
  const rb = cidrRange(b);
  return !!ra && !!rb && ra[0] <= rb[1] && rb[0] <= ra[1];
}

/**
 * Routes in `ip -4 route show table all` output that overlap `subnet`, except the default route,
 * local/broadcast entries, and routes through `ownDevice` (the network's own bridge).
 */
export function overlappingRoutes(subnet: string, routes: string, ownDevice?: string): string[] {
  const out: string[] = [];
  for (const line of routes.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (!f[0]) continue;
    const dst = ['local', 'broadcast', 'unicast', 'multicast', 'anycast'].includes(f[0]) ? f[1] : f[0];
    if (f[0] === 'local' || f[0] === 'broadcast' || f[0] === 'multicast') continue;
    if (!dst || dst === 'default' || dst === '0.0.0.0/0') continue;
    const dev = f[f.indexOf('dev') + 1];
    if (ownDevice && f.includes('dev') && dev === ownDevice) continue;
    if (cidrsOverlap(subnet, dst)) out.push(line.trim());
  }
  return out;
}
