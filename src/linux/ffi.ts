/**
 * The only module that imports ffi-rs: libc calls behind the typed Syscalls interface.
 * Each call asks ffi-rs for errno and turns a -1 into a SyscallError naming the call and path.
 */
import { open, load, DataType } from 'ffi-rs';
import { SyscallError } from '../util/errors.js';
import type { Syscalls } from './syscalls.js';

let opened = false;
function libc(): void {
  if (!opened) {
    open({ library: 'libc', path: '' });
    opened = true;
  }
}

type Param = { type: DataType; value: unknown };

function call(funcName: string, params: Param[], retType: DataType = DataType.I32): { value: number; errno: number } {
  libc();
  const r = load({
    library: 'libc',
    funcName,
    retType,
    paramsType: params.map((p) => p.type),
    paramsValue: params.map((p) => p.value),
    errno: true,
  }) as unknown as { errnoCode: number; value: number | bigint };
  return { value: Number(r.value), errno: r.errnoCode };
}

function check(name: string, r: { value: number; errno: number }, path?: string): number {
  if (r.value < 0) throw new SyscallError(name, r.errno, path);
  return r.value;
}

const str = (v: string | null): Param => ({ type: DataType.String, value: v ?? '' });
const i32 = (v: number): Param => ({ type: DataType.I32, value: v });
const i64 = (v: number | bigint): Param => ({ type: DataType.I64, value: Number(v) });

const SYS_gettid = 186;
const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 0x1;
const IFNAMSIZ = 16;
const SYS_pidfd_open = 434;
const SYS_pidfd_send_signal = 424;
const ENODATA = 61;
const ERANGE = 34;

function makedev(major: number, minor: number): number {
  // glibc's gnu_dev_makedev, restricted to values that fit a JS number
  return ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & ~0xff) << 12) | ((major & ~0xfff) * 2 ** 32);
}

export const realSyscalls: Syscalls = {
  mount(source, target, fstype, flags, data) {
    // NULL pointers are passed as empty strings: the kernel ignores fstype/data for bind,
    // remount and propagation changes.
    check('mount', call('mount', [str(source ?? 'none'), str(target), str(fstype ?? ''), i64(flags), str(data ?? '')]), target);
  },
  umount2(target, flags) {
    check('umount2', call('umount2', [str(target), i32(flags)]), target);
  },
  unshare(flags) {
    check('unshare', call('unshare', [i32(flags)]));
  },
  setns(fd, nstype) {
    check('setns', call('setns', [i32(fd), i32(nstype)]));
  },
  sethostname(name) {
    check('sethostname', call('sethostname', [str(name), i64(Buffer.byteLength(name))]), name);
  },
  kill(pid, signal) {
    check('kill', call('kill', [i32(pid), i32(signal)]), String(pid));
  },
  pidfdOpen(pid) {
    return check('pidfd_open', call('syscall', [i64(SYS_pidfd_open), i64(pid), i64(0)], DataType.I64), String(pid));
  },
  pidfdSendSignal(pidfd, signal) {
    check('pidfd_send_signal', call('syscall', [i64(SYS_pidfd_send_signal), i64(pidfd), i64(signal), i64(0), i64(0)], DataType.I64));
  },
  prctl(option, arg2) {
    check('prctl', call('prctl', [i32(option), i64(arg2), i64(0), i64(0), i64(0)]));
  },
  statfsType(path) {
    // struct statfs starts with f_type (long); 120 bytes on x86_64
    const buf = Buffer.alloc(128);
    libc();
    const r = load({
      library: 'libc',
      funcName: 'statfs',
      retType: DataType.I32,
      paramsType: [DataType.String, DataType.U8Array],
      paramsValue: [path, buf],
      errno: true,
    }) as unknown as { errnoCode: number; value: number };
    if (r.value < 0) throw new SyscallError('statfs', r.errnoCode, path);
    return buf.readBigInt64LE(0);
  },
  gettid() {
    return check('gettid', call('syscall', [i64(SYS_gettid)], DataType.I64));
  },
  mknod(path, mode, major, minor) {
    check('mknod', call('mknod', [str(path), i32(mode), i64(makedev(major, minor))]), path);
  },
  lsetxattr(path, name, value) {
    libc();
    const r = load({
      library: 'libc',
      funcName: 'lsetxattr',
      retType: DataType.I32,
      paramsType: [DataType.String, DataType.String, DataType.U8Array, DataType.I64, DataType.I32],
      paramsValue: [path, name, value, value.length, 0],
      errno: true,
    }) as unknown as { errnoCode: number; value: number };
    if (r.value < 0) throw new SyscallError('lsetxattr', r.errnoCode, `${path}:${name}`);
  },
  lgetxattr(path, name) {
    for (let size = 256; size <= 65536; size *= 4) {
      const buf = Buffer.alloc(size);
      libc();
      const r = load({
        library: 'libc',
        funcName: 'lgetxattr',
        retType: DataType.I64,
        paramsType: [DataType.String, DataType.String, DataType.U8Array, DataType.I64],
        paramsValue: [path, name, buf, size],
        errno: true,
      }) as unknown as { errnoCode: number; value: number };
      const n = Number(r.value);
      if (n >= 0) return buf.subarray(0, n);
      if (r.errnoCode === ENODATA) return undefined;
      if (r.errnoCode !== ERANGE) throw new SyscallError('lgetxattr', r.errnoCode, `${path}:${name}`);
    }
    throw new SyscallError('lgetxattr', ERANGE, `${path}:${name}`);
  },
  llistxattr(path) {
    const buf = Buffer.alloc(65536);
    libc();
    const r = load({
      library: 'libc',
      funcName: 'llistxattr',
      retType: DataType.I64,
      paramsType: [DataType.String, DataType.U8Array, DataType.I64],
      paramsValue: [path, buf, buf.length],
      errno: true,
    }) as unknown as { errnoCode: number; value: number };
    const n = Number(r.value);
    if (n < 0) throw new SyscallError('llistxattr', r.errnoCode, path);
    return buf.subarray(0, n).toString('latin1').split('\0').filter(Boolean);
  },
  linkUp(name) {
    if (Buffer.byteLength(name) >= IFNAMSIZ) throw new SyscallError('ioctl', 22 /* EINVAL */, name);
    const fd = check('socket', call('socket', [i32(AF_INET), i32(SOCK_DGRAM | SOCK_CLOEXEC), i32(0)]), name);
    try {
      // struct ifreq: ifr_name[16], then the union whose first short is ifr_flags. Only the
      // changeable flags are taken from it (the kernel keeps LOOPBACK, RUNNING and the like),
      // and a fresh interface has none of them set: IFF_UP alone is what `ip link set up` ends with.
      const ifr = Buffer.alloc(40);
      ifr.write(name, 0, 'latin1');
      ifr.writeInt16LE(IFF_UP, IFNAMSIZ);
      libc();
      const r = load({
        library: 'libc',
        funcName: 'ioctl',
        retType: DataType.I32,
        paramsType: [DataType.I32, DataType.I64, DataType.U8Array],
        paramsValue: [fd, SIOCSIFFLAGS, ifr],
        errno: true,
      }) as unknown as { errnoCode: number; value: number };
      if (r.value < 0) throw new SyscallError('ioctl', r.errnoCode, `SIOCSIFFLAGS ${name}`);
    } finally {
      call('close', [i32(fd)]);
    }
  },
};
