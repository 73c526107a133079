// mountinfo parsing and the unmount order, on text (the real kernel is in namespaces.test.ts).
import { expect, test } from 'vitest';
import { isMountpoint, mountsUnder, parseMountinfo } from '../../src/linux/mounts.js';

const text = [
  '26 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '40 26 0:40 / /run/podrun rw - tmpfs tmpfs rw',
  '41 40 0:4 net:[4026532176] /run/podrun/pods/a/ns/net rw - nsfs nsfs rw',
  '42 40 0:41 / /run/podrun/pods/a/rootfs rw - overlay overlay rw,lowerdir=/l',
  '43 42 0:42 / /run/podrun/pods/a/rootfs/proc rw - proc proc rw',
  '44 40 0:43 / /run/podrun/pods/a/with\\040space rw master:3 - tmpfs tmpfs rw',
  '45 40 0:44 / /run/podrun/pods/a/rootfs rw - tmpfs tmpfs rw',
  '46 26 0:45 / /run/podrun-other rw - tmpfs tmpfs rw',
].join('\n');

test('fields, optional propagation tags and octal escapes', () => {
  const m = parseMountinfo(text);
  expect(m).toHaveLength(8);
  expect(m[0]).toMatchObject({ id: 26, parentId: 1, mountPoint: '/', propagation: ['shared:1'], fstype: 'ext4', source: '/dev/sda1' });
  expect(m[2]).toMatchObject({ root: 'net:[4026532176]', fstype: 'nsfs' });
  expect(m[5]).toMatchObject({ mountPoint: '/run/podrun/pods/a/with space', propagation: ['master:3'] });
});

test('mounts under a path, deepest and newest first; a sibling with the same prefix is not under it', () => {
  const m = parseMountinfo(text);
  expect(mountsUnder('/run/podrun/pods/a', m).map((x) => x.id)).toEqual([43, 41, 45, 44, 42]);
  expect(mountsUnder('/run/podrun', m).map((x) => x.id)).not.toContain(46);
  expect(isMountpoint('/run/podrun/pods/a/rootfs/', m)).toBe(true);
  expect(isMountpoint('/run/podrun/pods', m)).toBe(false);
});
