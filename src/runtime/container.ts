/**
 * One container run: from a ContainerPlan + the pulled ImageRecord + the sandbox to a fully
 * resolved ShimPlan (overlay dirs, namespaces, cgroup, mounts, process), which the native shim
 * carries out. Each run (restart) gets a fresh writable layer and its own state dir:
 *   <run>/pods/<key>/containers/<name>/<restart>/{plan,exit,started,rootfs/}
 *   <root>/pods/<key>_<uid>/containers/<name>/<restart>/{upper,work}
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PodrunError, nodeErrCode } from '../util/errors.js';
import type { ImageRecord } from '../image/types.js';
import type { ContainerPlan, ProcessSpec } from '../spec/plan.js';
import { containerCgroupValues } from '../spec/resources.js';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, clampRlimits, type ShimBindMount, type ShimPlan, type ShimProcess, type ShimRlimit } from './shim.js';
import { containerDataDir, containerLogFile, containerRunDir, etcDir } from './paths.js';
import { applyCgroupValues, containerCgroupRel, sandboxNamespaces, volumeSource, type RuntimeContext } from './sandbox.js';
import type { PodState } from './state.js';

/** The runtime's id of one container run. */
export function containerId(uid: string, name: string, restart: number): string {
  return crypto.createHash('sha256').update(`${uid}/${name}/${restart}`).digest('hex').slice(0, 16);
}

export interface RunDirs {
  stateDir: string;
  mountPoint: string;
  dataDir: string;
  upperDir: string;
  workDir: string;
  logPath: string;
}

export function runDirs(ctx: RuntimeContext, st: PodState, name: string, restart: number): RunDirs {
  const stateDir = path.join(containerRunDir(ctx.paths, st.key, name), String(restart));
  const dataDir = path.join(containerDataDir(ctx.paths, st.key, st.uid, name), String(restart));
  return {
    stateDir,
    mountPoint: path.join(stateDir, 'rootfs'),
    dataDir,
    upperDir: path.join(dataDir, 'upper'),
    workDir: path.join(dataDir, 'work'),
    logPath: containerLogFile(ctx.paths, st.namespace, st.name, st.uid, name, restart),
  };
}

/** Reads the opaque marker of a layer directory (overlay's trusted.overlay.opaque xattr). */
export type OpaqueCheck = (dir: string) => boolean;

const MAX_SYMLINKS = 40;
const MAX_IMAGE_FILE = 4 * 1024 * 1024;

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    if (nodeErrCode(err) === 'ENOENT' || nodeErrCode(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

const isWhiteout = (st: fs.Stats) => st.isCharacterDevice() && st.rdev === 0;

/**
 * A file of the image's root filesystem, looked up over the layer dirs as overlayfs merges them,
 * and never outside them: each path component is lstat'ed in every layer that contributes to its
 * parent directory (top layer first); a whiteout (a 0:0 char device) ends the lookup, an opaque
 * directory hides the layers below it, a symlink is resolved against the IMAGE root (an absolute
 * target restarts at the image root, ".." stops at it), never against the host.
 * Used for /etc/passwd and /etc/group: user names are never resolved through NSS.
 */
export function readImageFile(image: ImageRecord, file: string, isOpaque: OpaqueCheck = () => false): string | undefined {
  const top = [...image.layers].reverse().map((l) => l.dir);
  let todo = file.split('/').filter((x) => x && x !== '.');
  let cur: string[] = [];
  let dirs = top; // the layers whose copy of `cur` is a directory that shows in the merge
  let links = 0;
  while (todo.length) {
    const part = todo.shift()!;
    if (part === '..') {
      // re-resolve the parent from the image root: its layer set is recomputed on the way
      todo = [...cur.slice(0, -1), ...todo];
      cur = [];
      dirs = top;
      continue;
    }
    const next = [...cur, part];
    let found: { layer: string; st: fs.Stats } | undefined;
    const below: string[] = [];
    for (const layer of dirs) {
      const st = lstatOrUndefined(path.join(layer, ...next));
      if (!st) continue;
      if (!found) {
        if (isWhiteout(st)) return undefined;
        found = { layer, st };
        if (!st.isDirectory()) break;
        below.push(layer);
        if (isOpaque(path.join(layer, ...next))) break;
        continue;
      }
      // lower copies of a directory merge in only while they are directories themselves
      if (!st.isDirectory()) break;
      below.push(layer);
      if (isOpaque(path.join(layer, ...next))) break;
    }
    if (!found) return undefined;
    const host = path.join(found.layer, ...next);
    if (found.st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) return undefined;
      const target = fs.readlinkSync(host);
      const parts = target.split('/').filter((x) => x && x !== '.');
      if (path.posix.isAbsolute(target)) cur = [];
      todo = [...cur, ...parts, ...todo];
      cur = [];
      dirs = top;
      continue;
    }
    if (found.st.isDirectory()) {
      cur = next;
      dirs = below;
      continue;
    }
    if (todo.length || !found.st.isFile()) return undefined;
    if (found.st.size > MAX_IMAGE_FILE) {
      throw new PodrunError('EHOSTILE', `Cannot read "${file}" of the image: ${found.st.size} bytes is larger than ${MAX_IMAGE_FILE}`);
    }
    const fd = fs.openSync(host, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      return fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  }
  return undefined;
}

/** An OpaqueCheck through the Syscalls door (trusted.* xattrs need lgetxattr as root). */
export function opaqueVia(sys: { lgetxattr(path: string, name: string): Buffer | undefined }): OpaqueCheck {
  return (dir) => {
    try {
      return sys.lgetxattr(dir, 'trusted.overlay.opaque')?.toString() === 'y';
    } catch {
      return false;
    }
  };
}

/** A subPath as TypeScript checked it: what the shim opens without following symlinks. */
export interface SubPathCheck {
  /** The volume's root, symlinks of its own path resolved (a trusted host directory). */
  root: string;
  /** Relative to `root`, no "." / ".." / empty components, symlinks inside the volume already
   * resolved; "" when the subPath is the root itself. Components that do not exist yet are
   * created by the shim (mkdirat in the directory it opened, never through a path). */
  path: string;
  /** Mode of the directories the shim creates: the volume root's mode, as kubelet does. */
  createMode: number;
}

/**
 * Checks `sub` against the volume directory `root` as kubelet does before it mounts a subPath:
 * relative without ".."; each existing component lstat'ed; a symlink is accepted only when its
 * target stays inside the volume (and is replaced by that target); a missing component ends the
 * walk (the shim creates the rest). Creates nothing. The check alone is racy (a container sharing
 * the volume can swap a directory for a symlink afterwards): the shim re-walks `path` from the
 * root with O_NOFOLLOW and refuses any symlink it meets (native-shims/src/resolve.c).
 */
export function checkSubPath(volume: string, root: string, sub: string): SubPathCheck {
  const refuse = (code: 'EINVAL_SPEC' | 'EHOSTILE', why: string) => new PodrunError(code, `Cannot use subPath "${sub}" of volume "${volume}": ${why}`);
  if (path.isAbsolute(sub) || sub.split('/').includes('..')) throw refuse('EINVAL_SPEC', 'it must be relative without ".."');
  let base: string;
  try {
    base = fs.realpathSync(root);
  } catch (err) {
    throw new PodrunError('EINVAL_SPEC', `Cannot use subPath "${sub}" of volume "${volume}": the volume "${root}" cannot be opened (${nodeErrCode(err) ?? String(err)})`, { cause: err });
  }
  const rootStat = fs.statSync(base);
  if (!rootStat.isDirectory()) throw refuse('EINVAL_SPEC', `the volume "${base}" is not a directory`);
  const inside = (p: string) => p === base || p.startsWith(base + path.sep);
  const parts = sub.split('/').filter((x) => x && x !== '.');
  let cur = base;
  let missing: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const next = path.join(cur, parts[i]);
    const st = lstatOrUndefined(next);
    if (!st) {
      missing = parts.slice(i);
      break;
    }
    if (st.isSymbolicLink()) {
      let target: string;
      try {
        target = fs.realpathSync(next);
      } catch (err) {
        throw refuse('EHOSTILE', `"${parts[i]}" is a symlink that does not resolve (${nodeErrCode(err) ?? String(err)})`);
      }
      if (!inside(target)) throw refuse('EHOSTILE', `"${parts[i]}" is a symlink that leaves the volume`);
      cur = target;
    } else cur = next;
    if (i < parts.length - 1 && !fs.statSync(cur).isDirectory()) throw refuse('EINVAL_SPEC', `"${parts[i]}" is not a directory`);
  }
  const rel = [path.relative(base, cur), ...missing].filter(Boolean).join('/');
  return { root: base, path: rel, createMode: rootStat.mode & 0o7777 };
}

/** The bind mount of a volume, with its subPath checked for the shim (see checkSubPath). */
export function volumeBind(volume: string, root: string, sub: string, target: string, readOnly: boolean): ShimBindMount {
  if (!sub) return { source: root, target, readOnly, recursive: true };
  const c = checkSubPath(volume, root, sub);
  if (!c.path) return { source: c.root, target, readOnly, recursive: true };
  return { source: c.root, target, readOnly, recursive: true, subPath: { path: c.path, createMode: c.createMode, volume } };
}

/** The bind mounts of a container: /etc files of the pod, then its volumeMounts in order. */
export function containerMounts(ctx: RuntimeContext, st: PodState, c: ContainerPlan): ShimBindMount[] {
  const etc = etcDir(ctx.paths, st.key);
  const mounts: ShimBindMount[] = [
    { source: path.join(etc, 'hosts'), target: '/etc/hosts', readOnly: false, recursive: false },
    { source: path.join(etc, 'hostname'), target: '/etc/hostname', readOnly: false, recursive: false },
    { source: path.join(etc, 'resolv.conf'), target: '/etc/resolv.conf', readOnly: false, recursive: false },
  ];
  for (const m of c.volumeMounts) {
    const v = st.plan.volumes.find((x) => x.name === m.name);
    if (!v) {
      throw new PodrunError('EINVAL_SPEC', `Cannot mount volume "${m.name}" in container "${c.name}": the pod has no volume of that name`);
    }
    const root = volumeSource(ctx.paths, st, v);
    const projected = v.kind === 'configMap' || v.kind === 'secret' || v.kind === 'downwardAPI';
    mounts.push(volumeBind(m.name, root, m.subPath, m.mountPath, m.readOnly || projected));
  }
  return mounts;
}

/**
 * The process with ShimProcess's shape (ProcessSpec is structurally a superset). Requested
 * rlimits are lowered to this process's hard limits (clampRlimits): without CAP_SYS_RESOURCE a
 * raise fails with EPERM in the shim (HOST-FACTS).
 */
export function shimProcess(p: ProcessSpec & { rlimits?: ShimRlimit[] }, callerLimits?: Parameters<typeof clampRlimits>[1]): ShimProcess {
  return {
    ...(p.rlimits?.length ? { rlimits: clampRlimits(p.rlimits, callerLimits) } : {}),
    args: p.args,
    env: p.env,
    cwd: p.cwd,
    uid: p.uid,
    gid: p.gid,
    additionalGids: p.additionalGids,
    noNewPrivileges: p.noNewPrivileges,
    capabilities: p.capabilities,
  };
}

export interface BuildPlanInput {
  ctx: RuntimeContext;
  st: PodState;
  container: ContainerPlan;
  image: ImageRecord;
  process: ProcessSpec;
  restart: number;
}

/** Creates the run's dirs and cgroup and returns the ShimPlan (nothing is started). */
export function buildShimPlan(i: BuildPlanInput): { plan: ShimPlan; dirs: RunDirs; cgroupRel: string } {
  const { ctx, st, container: c, image, process: proc } = i;
  const dirs = runDirs(ctx, st, c.name, i.restart);
  for (const d of [dirs.stateDir, dirs.mountPoint, dirs.upperDir, dirs.workDir, path.dirname(dirs.logPath)]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  fs.chmodSync(path.dirname(dirs.logPath), 0o755);
  const rel = containerCgroupRel(ctx, st.key, c.name);
  ctx.cgroups.create(rel);
  applyCgroupValues(ctx.cgroups, rel, containerCgroupValues(c));
  const privileged = proc.privileged;
  const plan: ShimPlan = {
    containerId: `${st.name}/${c.name}`,
    stateDir: dirs.stateDir,
    logPath: dirs.logPath,
    rootfs: {
      lowerDirs: image.layers.map((l) => l.dir).reverse(),
      upperDir: dirs.upperDir,
      workDir: dirs.workDir,
      mountPoint: dirs.mountPoint,
      readOnly: proc.readonlyRootfs,
    },
    namespaces: sandboxNamespaces(ctx, st),
    cgroupProcs: ctx.cgroups.procsFiles(rel),
    cgroupMount: ctx.cgroups.mountPlan(),
    shmSource: path.join(ctx.paths.runRoot, 'pods', st.key, 'shm'),
    mounts: containerMounts(ctx, st, c),
    maskedPaths: privileged ? [] : DEFAULT_MASKED_PATHS,
    readonlyPaths: privileged ? [] : DEFAULT_READONLY_PATHS,
    sysctls: st.plan.securityContext.sysctls,
    sysReadWrite: privileged,
    process: shimProcess(proc),
  };
  return { plan, dirs, cgroupRel: rel };
}
