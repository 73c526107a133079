/**
 * The one door to the kernel from Node. Only src/linux/ffi.ts imports ffi-rs and implements
 * this interface; everything else receives a `Syscalls` and tests pass a recording fake
 * (test/helpers/fake-syscalls.ts) that can inject errno values.
 *
 * Every method throws SyscallError (syscall name, errno name, path) on failure.
 * Only calls that are safe from a multithreaded process live here; anything that must run
 * between fork and exec belongs to native-shims/.
 */
export interface Syscalls {
  mount(source: string, target: string, fstype: string | null, flags: bigint | number, data: string | null): void;
  umount2(target: string, flags: number): void;
  /** unshare(2) on the calling (main) thread. */
  unshare(flags: number): void;
  /** setns(2) with an fd opened on a namespace file. */
  setns(fd: number, nstype: number): void;
  sethostname(name: string): void;
  kill(pid: number, signal: number): void;
  pidfdOpen(pid: number): number;
  pidfdSendSignal(pidfd: number, signal: number): void;
  prctl(option: number, arg2: number): void;
  statfsType(path: string): bigint;
  /** The calling thread's id (namespaces are per-thread). */
  gettid(): number;
  /** mknod(2): device nodes and overlay whiteouts (char 0:0). */
  mknod(path: string, mode: number, major: number, minor: number): void;
  /** lsetxattr(2): does not follow a final symlink. */
  lsetxattr(path: string, name: string, value: Buffer): void;
  /** lgetxattr(2): undefined when the attribute does not exist (ENODATA). */
  lgetxattr(path: string, name: string): Buffer | undefined;
  /** llistxattr(2): attribute names on a path, not following a final symlink. */
  llistxattr(path: string): string[];
  /**
   * Sets IFF_UP on network interface `name` of the calling thread's network namespace
   * (socket(AF_INET) + ioctl SIOCSIFFLAGS; what `ip link set NAME up` does through netlink).
   */
  linkUp(name: string): void;
}

// Flags and constants used across the project.
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;

export const MNT_FORCE = 0x1;
export const MNT_DETACH = 0x2;

export const PR_SET_CHILD_SUBREAPER = 36;
