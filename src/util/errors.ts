/**
 * Every error podrun raises on purpose is a PodrunError: a stable code callers can match on,
 * a message of the form "Cannot <action>: <detail>" with values quoted, an optional cause and a
 * hint for the human. Catch only the codes you expect; let the rest travel.
 */
export type ErrorCode =
  | 'EINVAL_REF' // an image reference does not parse
  | 'EINVAL_SPEC' // a manifest (pod YAML) is invalid
  | 'EINVAL_ARG' // bad CLI / API argument
  | 'ECONFIG' // registries.yaml or another config file is invalid
  | 'EREGISTRY' // the registry answered with an error
  | 'EAUTH' // authentication failed
  | 'ENETWORK' // connection, TLS or timeout
  | 'ENOTFOUND' // image, pod, container, blob not found
  | 'EDIGEST' // size or digest mismatch
  | 'EUNSUPPORTED' // media type, platform, feature not supported
  | 'EHOSTILE' // a layer tried to escape or is malformed
  | 'ESYSCALL' // a kernel call failed (see SyscallError)
  | 'ESHIM' // the native shim reported a failed step
  | 'ECGROUP' // cgroup setup failed
  | 'ECNI' // a CNI plugin failed
  | 'ESTATE' // on-disk state is missing or inconsistent
  | 'ECONFLICT' // name clash, pod already running with another spec
  | 'ELOCKED' // another podrun process holds the lock
  | 'ETIMEOUT'
  | 'EINTERNAL';

export interface PodrunErrorOptions {
  cause?: unknown;
  hint?: string;
}

export class PodrunError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  constructor(code: ErrorCode, message: string, opts: PodrunErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PodrunError';
    this.code = code;
    this.hint = opts.hint;
  }
}

/** A failed kernel call: keeps the syscall, the errno name and the path it was about. */
export class SyscallError extends PodrunError {
  readonly syscall: string;
  readonly errno: number;
  readonly errnoName: string;
  readonly path?: string;
  constructor(syscall: string, errno: number, path?: string, hint?: string) {
    const name = errnoName(errno);
    super('ESYSCALL', `Cannot ${syscall}${path ? ` "${path}"` : ''}: ${name} (${strerror(errno)})`, { hint });
    this.name = 'SyscallError';
    this.syscall = syscall;
    this.errno = errno;
    this.errnoName = name;
    this.path = path;
  }
}

const ERRNO: Record<number, [string, string]> = {
  1: ['EPERM', 'Operation not permitted'],
  2: ['ENOENT', 'No such file or directory'],
  3: ['ESRCH', 'No such process'],
  4: ['EINTR', 'Interrupted system call'],
  5: ['EIO', 'Input/output error'],
  9: ['EBADF', 'Bad file descriptor'],
  10: ['ECHILD', 'No child processes'],
  11: ['EAGAIN', 'Resource temporarily unavailable'],
  12: ['ENOMEM', 'Cannot allocate memory'],
  13: ['EACCES', 'Permission denied'],
  16: ['EBUSY', 'Device or resource busy'],
  17: ['EEXIST', 'File exists'],
  18: ['EXDEV', 'Invalid cross-device link'],
  19: ['ENODEV', 'No such device'],
  20: ['ENOTDIR', 'Not a directory'],
  21: ['EISDIR', 'Is a directory'],
  22: ['EINVAL', 'Invalid argument'],
  24: ['EMFILE', 'Too many open files'],
  28: ['ENOSPC', 'No space left on device'],
  30: ['EROFS', 'Read-only file system'],
  36: ['ENAMETOOLONG', 'File name too long'],
  38: ['ENOSYS', 'Function not implemented'],
  39: ['ENOTEMPTY', 'Directory not empty'],
  40: ['ELOOP', 'Too many levels of symbolic links'],
  95: ['EOPNOTSUPP', 'Operation not supported'],
};

export function errnoName(errno: number): string {
  return ERRNO[errno]?.[0] ?? `errno ${errno}`;
}
export function strerror(errno: number): string {
  return ERRNO[errno]?.[1] ?? 'Unknown error';
}

/** True when `err` is a PodrunError with one of the given codes. */
export function isPodrunError(err: unknown, ...codes: ErrorCode[]): err is PodrunError {
  return err instanceof PodrunError && (codes.length === 0 || codes.includes(err.code));
}

/** The errno code of a Node fs error ("ENOENT"), or undefined. */
export function nodeErrCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}
