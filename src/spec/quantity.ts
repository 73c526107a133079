/**
 * Kubernetes resource quantities ("500m", "1.5Gi", "2", "1e3", "128974848") as exact values.
 *
 * Grammar (k8s.io/apimachinery/pkg/api/resource):
 *   quantity ::= [sign] number [suffix]
 *   number   ::= digits | digits "." [digits] | "." digits
 *   suffix   ::= binarySI (Ki Mi Gi Ti Pi Ei) | decimalSI (n u m "" k M G T P E) | ("e"|"E") [sign] digits
 *
 * A quantity is kept as an exact rational (bigint numerator / denominator), so "0.1" and "1.5Gi"
 * have no floating-point error. Conversions round UP as Kubernetes' Value()/MilliValue() do:
 * "0.5" bytes → 1 byte, "0.0001" cpu → 1m.
 */

export interface Quantity {
  /** numerator / denominator, denominator > 0, reduced. */
  num: bigint;
  den: bigint;
  /** The text as written. */
  text: string;
}

const BINARY: Record<string, bigint> = {
  Ki: 1n << 10n,
  Mi: 1n << 20n,
  Gi: 1n << 30n,
  Ti: 1n << 40n,
  Pi: 1n << 50n,
  Ei: 1n << 60n,
};

/** Decimal SI suffixes as powers of ten. */
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

const SUFFIX_HELP = 'use a plain number or a suffix Ki Mi Gi Ti Pi Ei, k M G T P E, m, or an exponent like 1e3';

/** Thrown by parseQuantity; `message` is the detail after the field path ("\"12Q\" is not a quantity: …"). */
export class QuantityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QuantityError';
  }
}

function gcd(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  b = b < 0n ? -b : b;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function reduce(num: bigint, den: bigint): { num: bigint; den: bigint } {
  if (num === 0n) return { num: 0n, den: 1n };
  const g = gcd(num, den);
  return { num: num / g, den: den / g };
}

const NUMBER_RE = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(.*)$/;

/**
 * Parse a quantity written as a string or a YAML number. Throws QuantityError with a precise
 * message ("\"12Q\" is not a quantity: unknown suffix \"Q\" (…)").
 */
export function parseQuantity(input: string | number): Quantity {
  const text = typeof input === 'number' ? numberText(input) : input;
  const bad = (why: string): never => {
    throw new QuantityError(`${JSON.stringify(text)} is not a quantity: ${why}`);
  };
  if (text.length === 0) bad('it is empty');
  if (text !== text.trim()) bad('it has surrounding spaces');
  const m = NUMBER_RE.exec(text);
  if (!m) bad(`it does not start with a number (${SUFFIX_HELP})`);
  const [, sign, digits, suffix] = m!;
  const [intPart, fracPart = ''] = digits.split('.');
  let num = BigInt((intPart || '0') + fracPart);
  let den = 10n ** BigInt(fracPart.length);
  if (sign === '-') num = -num;

  if (suffix in BINARY) {
    num *= BINARY[suffix];
  } else if (suffix in DECIMAL) {
    const p = DECIMAL[suffix];
    if (p >= 0) num *= 10n ** BigInt(p);
    else den *= 10n ** BigInt(-p);
  } else if (/^[eE]/.test(suffix)) {
    const e = /^[eE]([+-]?\d+)$/.exec(suffix);
    if (!e) bad(`the exponent ${JSON.stringify(suffix)} is not an integer`);
    const p = Number(e![1]);
    if (Math.abs(p) > 30) bad(`the exponent ${p} is out of range`);
    if (p >= 0) num *= 10n ** BigInt(p);
    else den *= 10n ** BigInt(-p);
  } else {
    bad(`unknown suffix ${JSON.stringify(suffix)} (${SUFFIX_HELP}; suffixes are case-sensitive)`);
  }
  return { ...reduce(num, den), text };
}

function numberText(n: number): string {
  if (!Number.isFinite(n)) throw new QuantityError(`${String(n)} is not a quantity`);
  // YAML numbers: 1, 0.5, 1e3. Number→string can give "1e+21"; normalise the exponent sign.
  return String(n).replace('e+', 'e');
}

function ceilDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b === 0n || (a < 0n) !== (b < 0n) ? q : q + 1n;
}

function toSafe(v: bigint, what: string, q: Quantity): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new QuantityError(`${JSON.stringify(q.text)} is too large for ${what}`);
  }
  return Number(v);
}

/** Exact integer value rounded up (bytes for memory): "1.5Gi" → 1610612736, "0.5" → 1. */
export function quantityValue(q: Quantity): number {
  return toSafe(ceilDiv(q.num, q.den), 'a value in units', q);
}

/** Value × 1000 rounded up (millicores for cpu): "0.5" → 500, "250m" → 250, "1u" → 1. */
export function quantityMilli(q: Quantity): number {
  return toSafe(ceilDiv(q.num * 1000n, q.den), 'a value in thousandths', q);
}

/** True when the quantity is not a whole number of units (e.g. memory "100m" = 0.1 byte). */
export function isFractional(q: Quantity): boolean {
  return q.den !== 1n;
}

/** Parse memory (or any byte count): exact bytes, rounded up. Rejects negatives. */
export function parseBytes(input: string | number): number {
  const q = parseQuantity(input);
  if (q.num < 0n) throw new QuantityError(`${JSON.stringify(q.text)} must not be negative`);
  return quantityValue(q);
}

/** Parse cpu: exact millicores, rounded up. Rejects negatives. */
export function parseMillis(input: string | number): number {
  const q = parseQuantity(input);
  if (q.num < 0n) throw new QuantityError(`${JSON.stringify(q.text)} must not be negative`);
  return quantityMilli(q);
}

const BIN_ORDER: [string, number][] = [
  ['Ei', 60],
  ['Pi', 50],
  ['Ti', 40],
  ['Gi', 30],
  ['Mi', 20],
  ['Ki', 10],
];
const DEC_ORDER: [string, number][] = [
  ['E', 18],
  ['P', 15],
  ['T', 12],
  ['G', 9],
  ['M', 6],
  ['k', 3],
];

/**
 * Canonical text for a byte count: the largest binary suffix that divides it exactly
 * (1073741824 → "1Gi", 1572864 → "1536Ki"), else the largest decimal suffix (5000000 → "5M"),
 * else the plain number.
 */
export function formatBytes(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`formatBytes: ${bytes} is not a byte count`);
  if (bytes === 0) return '0';
  const b = BigInt(bytes);
  for (const [s, shift] of BIN_ORDER) if (b % (1n << BigInt(shift)) === 0n) return `${b >> BigInt(shift)}${s}`;
  for (const [s, p] of DEC_ORDER) if (b % 10n ** BigInt(p) === 0n) return `${b / 10n ** BigInt(p)}${s}`;
  return String(bytes);
}

/** Canonical text for millicores: whole cores as "2", otherwise "500m". */
export function formatMillis(millis: number): string {
  if (!Number.isSafeInteger(millis) || millis < 0) throw new RangeError(`formatMillis: ${millis} is not a millicore count`);
  return millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`;
}

/** Canonical text for any quantity (used for divisors): integer → formatBytes-like decimal, else milli. */
export function formatQuantity(q: Quantity): string {
  if (q.den === 1n && q.num >= 0n && q.num <= BigInt(Number.MAX_SAFE_INTEGER)) return formatBytes(Number(q.num));
  if ((q.num * 1000n) % q.den === 0n) return `${(q.num * 1000n) / q.den}m`;
  return q.text;
}
