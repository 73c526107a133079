/**
 * A busybox root filesystem directory for tests: /bin/busybox (busybox-static) with one symlink
 * per applet, /etc/passwd and /etc/group with a few users, empty /proc /sys /dev /tmp.
 * No image needed. Remove it with `removeRootfs`.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p)) ?? '/bin/busybox';

export function makeBusyboxRootfs(parent = os.tmpdir()): string {
  const root = fs.mkdtempSync(path.join(parent, 'podrun-test-rootfs-'));
  for (const d of ['bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'home/app', 'var', 'usr/bin']) {
    fs.mkdirSync(path.join(root, d), { recursive: true });
  }
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  fs.copyFileSync(BUSYBOX, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) {
    if (a === 'busybox') continue;
    fs.symlinkSync('busybox', path.join(root, 'bin', a));
  }
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n');
  fs.chownSync(path.join(root, 'home/app'), 1000, 1000);
  return root;
}

export function removeRootfs(root: string): void {
  fs.rmSync(root, { recursive: true, force: true });
}
