import { describe, expect, test } from 'vitest';
import { formatBytes, formatMillis, parseBytes, parseMillis, parseQuantity, QuantityError } from '../../src/spec/quantity.js';

describe('Kubernetes quantities', () => {
  test.each([
    ['128974848', 128974848],
    ['129e6', 129000000],
    ['129M', 129000000],
    ['123Mi', 123 * 1024 * 1024],
    ['1.5Gi', 1610612736],
    ['0.5Ki', 512],
    ['1Ki', 1024],
    ['1k', 1000],
    ['2Ti', 2 * 2 ** 40],
    ['1Pi', 2 ** 50],
    ['1E3', 1000],
    ['1e-3', 1], // 0.001 byte rounds up to 1, as Value() does
    ['100m', 1], // 0.1 byte → 1
    ['0', 0],
    ['.5k', 500],
    ['5.', 5],
    ['+7', 7],
    [64, 64],
    [1.5, 2],
  ])('bytes %s → %d', (input, want) => {
    expect(parseBytes(input)).toBe(want);
  });

  test.each([
    ['500m', 500],
    ['0.5', 500],
    ['1', 1000],
    ['2', 2000],
    ['1.0005', 1001], // rounds up like MilliValue()
    ['100u', 1],
    ['250000u', 250],
    ['1e-3', 1],
    ['1k', 1_000_000],
    [0.25, 250],
    [2, 2000],
  ])('cpu %s → %d millis', (input, want) => {
    expect(parseMillis(input)).toBe(want);
  });

  test('exact rational arithmetic: 0.1 + no float error', () => {
    const q = parseQuantity('0.1');
    expect(q.num).toBe(1n);
    expect(q.den).toBe(10n);
    expect(parseMillis('0.3')).toBe(300);
    expect(parseBytes('1.1Gi')).toBe(Math.ceil(1.1 * 2 ** 30));
  });

  test.each([
    ['12Q', '"12Q" is not a quantity: unknown suffix "Q"'],
    ['12 Mi', '"12 Mi" is not a quantity: unknown suffix " Mi"'],
    ['1mi', '"1mi" is not a quantity: unknown suffix "mi"'],
    ['1KB', '"1KB" is not a quantity: unknown suffix "KB"'],
    ['', '"" is not a quantity: it is empty'],
    [' 1', '" 1" is not a quantity: it has surrounding spaces'],
    ['Mi', '"Mi" is not a quantity: it does not start with a number'],
    ['1e', '"1e" is not a quantity: the exponent "e" is not an integer'],
    ['1e1.5', '"1e1.5" is not a quantity: the exponent "e1.5" is not an integer'],
    ['1.2.3', '"1.2.3" is not a quantity: unknown suffix ".3"'],
  ])('rejects %j', (input, msg) => {
    expect(() => parseQuantity(input)).toThrow(QuantityError);
    expect(() => parseQuantity(input)).toThrow(msg);
  });

  test('negative values are rejected for resources', () => {
    expect(parseQuantity('-1').num).toBe(-1n);
    expect(() => parseBytes('-1Mi')).toThrow('"-1Mi" must not be negative');
    expect(() => parseMillis('-100m')).toThrow('must not be negative');
  });

  test('values beyond 2^53 are refused, not rounded', () => {
    expect(() => parseBytes('16Ei')).toThrow('"16Ei" is too large');
  });

  test('canonical formatting', () => {
    expect(formatBytes(0)).toBe('0');
    expect(formatBytes(1024)).toBe('1Ki');
    expect(formatBytes(2 ** 30)).toBe('1Gi');
    expect(formatBytes(1610612736)).toBe('1536Mi');
    expect(formatBytes(5_000_000)).toBe('5M');
    expect(formatBytes(1500)).toBe('1500');
    expect(formatBytes(1001)).toBe('1001');
    expect(formatMillis(2000)).toBe('2');
    expect(formatMillis(250)).toBe('250m');
    expect(formatMillis(1500)).toBe('1500m');
    for (const b of [1, 1024, 123 * 2 ** 20, 7_000_000_000, 2 ** 50]) expect(parseBytes(formatBytes(b))).toBe(b);
  });
});
