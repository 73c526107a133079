import { describe, expect, test } from 'vitest';
import { formatReference, parseReference, withDigest } from '../../src/image/reference.js';
import { PodrunError } from '../../src/util/errors.js';

const D = 'sha256:' + 'a'.repeat(64);

describe('parseReference normalizes', () => {
  test.each([
    ['busybox', 'docker.io', 'library/busybox', 'latest', undefined, 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['busybox:1.36', 'docker.io', 'library/busybox', '1.36', undefined, 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['library/busybox', 'docker.io', 'library/busybox', 'latest', undefined, 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['docker.io/busybox', 'docker.io', 'library/busybox', 'latest', undefined, 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['index.docker.io/library/busybox', 'docker.io', 'library/busybox', 'latest', undefined, 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['team/app:v2', 'docker.io', 'team/app', 'v2', undefined, 'docker.io/team/app:v2', 'team/app:v2'],
    ['127.0.0.1:5000/x/y:1', '127.0.0.1:5000', 'x/y', '1', undefined, '127.0.0.1:5000/x/y:1', '127.0.0.1:5000/x/y:1'],
    ['localhost/app', 'localhost', 'app', 'latest', undefined, 'localhost/app:latest', 'localhost/app:latest'],
    ['localhost:5000/app', 'localhost:5000', 'app', 'latest', undefined, 'localhost:5000/app:latest', 'localhost:5000/app:latest'],
    ['quay.io/a/b/c', 'quay.io', 'a/b/c', 'latest', undefined, 'quay.io/a/b/c:latest', 'quay.io/a/b/c:latest'],
    [`busybox@${D}`, 'docker.io', 'library/busybox', undefined, D, `docker.io/library/busybox@${D}`, `busybox@${D}`],
    [`busybox:1@${D}`, 'docker.io', 'library/busybox', '1', D, `docker.io/library/busybox:1@${D}`, `busybox:1@${D}`],
    [`host:5000/r@${D}`, 'host:5000', 'r', undefined, D, `host:5000/r@${D}`, `host:5000/r@${D}`],
    ['[::1]:5000/app:x', '[::1]:5000', 'app', 'x', undefined, '[::1]:5000/app:x', '[::1]:5000/app:x'],
    ['Registry/app', 'Registry', 'app', 'latest', undefined, 'Registry/app:latest', 'Registry/app:latest'],
    ['a.b/c__d/e-f.g_h:T_a.g-1', 'a.b', 'c__d/e-f.g_h', 'T_a.g-1', undefined, 'a.b/c__d/e-f.g_h:T_a.g-1', 'a.b/c__d/e-f.g_h:T_a.g-1'],
    ['localhost:5000', 'docker.io', 'library/localhost', '5000', undefined, 'docker.io/library/localhost:5000', 'localhost:5000'],
  ])('%s', (input, registry, repository, tag, digest, name, familiar) => {
    const r = parseReference(input);
    expect(r).toEqual({ registry, repository, tag, digest, name, familiar });
    expect(formatReference(r)).toBe(name);
    expect(formatReference(r, { familiar: true })).toBe(familiar);
    // Parsing the normalized name again gives the same reference.
    expect(parseReference(name)).toEqual(r);
  });
});

describe('parseReference refuses', () => {
  test.each([
    ['', /it is empty/],
    [' busybox', /whitespace/],
    ['bu sybox', /whitespace/],
    ['Busybox', /repository name must be lowercase \("Busybox"\)/],
    ['docker.io/Library/busybox', /must be lowercase \("Library"\)/],
    ['busybox:', /tag after ":" is empty/],
    ['busybox:-x', /tag "-x" is not valid/],
    ['busybox:' + 'a'.repeat(129), /tag "a+" is not valid/],
    ['busybox@sha256:abc', /has 3 hex characters, sha256 needs 64/],
    ['busybox@sha256:' + 'A'.repeat(64), /is not lowercase hex/],
    ['busybox@md5:' + 'a'.repeat(32), /algorithm "md5" is not supported/],
    ['busybox@' + 'a'.repeat(64), /has no algorithm/],
    ['host:5000//x', /empty path component/],
    ['x/', /empty path component/],
    ['a..b/c/d__', /registry host "a..b"|path component/],
    ['host:99999/x', /port "99999" is not a number from 1 to 65535/],
    ['host:abc/x', /port "abc"/],
    ['-host.io/x', /registry host "-host.io" is not a valid host name/],
    ['x/a--_b', /path component "a--_b" is not valid/],
    ['x/.a', /path component ".a"/],
    ['http://host/x', /no URL scheme/],
    [':tag', /repository name is empty/],
    ['docker.io/' + 'a/'.repeat(130) + 'z', /characters long \(at most 255\)/],
  ])('%j', (input, message) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PodrunError);
    expect((err as PodrunError).code).toBe('EINVAL_REF');
    expect((err as PodrunError).message).toMatch(/^Cannot parse image reference ".*": /);
    expect((err as PodrunError).message).toMatch(message);
  });
});

test('the error quotes the input', () => {
  expect(() => parseReference('Foo:bar:baz')).toThrow('Cannot parse image reference "Foo:bar:baz"');
});

test('withDigest pins a tag to the digest it resolved to', () => {
  const r = withDigest(parseReference('busybox'), D);
  expect(r.name).toBe(`docker.io/library/busybox:latest@${D}`);
  expect(r.familiar).toBe(`busybox:latest@${D}`);
});
