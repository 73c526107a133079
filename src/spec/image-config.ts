/**
 * kubelet's + containerd's semantics for building a container's first process from the plan and
 * the image config: argv (command/args vs Entrypoint/Cmd), environment ($(VAR) expansion,
 * downward API, ConfigMap/Secret references), working directory, user and groups (parsed from
 * the rootfs's /etc/passwd and /etc/group, never NSS), runAsNonRoot, capabilities, no_new_privs.
 *
 * Pure functions, except readRootfsUserFiles() which reads two files inside a rootfs without
 * following any symlink out of it.
 */
import { constants } from 'node:fs';
import { lstat, open, readlink } from 'node:fs/promises';
import { cpus, hostname, totalmem } from 'node:os';
import path from 'node:path';
import type { ImageConfig } from '../image/types.js';
import { nodeErrCode, PodrunError } from '../util/errors.js';
import { containerCapabilities } from './capabilities.js';
import { metadataFieldValue, resolveFiles } from './objects.js';
import type {
  CapabilitySets,
  ConfigMapPlan,
  ConfigMapVolume,
  ContainerPlan,
  DownwardApiVolume,
  FieldPath,
  ManifestSet,
  PodPlan,
  ProcessSpec,
  ProjectedFile,
  ResolvedFiles,
  ResourceFieldRef,
  SecretPlan,
  SecretVolume,
} from './plan.js';
import { parseQuantity } from './quantity.js';
import { isEnvName } from './names.js';

/**
 * A container cannot be created from its configuration (kubelet's CreateContainerConfigError):
 * a missing ConfigMap/Secret or key, an unknown user name, a runAsNonRoot violation, no command.
 */
export class ContainerConfigError extends PodrunError {
  readonly reason = 'CreateContainerConfigError';
  constructor(message: string, hint?: string) {
    super('EINVAL_SPEC', message, { hint });
    this.name = 'ContainerConfigError';
  }
}

/** Facts about the machine the pod runs on (the "node"). */
export interface NodeFacts {
  /** spec.nodeName in the downward API: the host's hostname. */
  nodeName: string;
  /** Node allocatable cpu (millicores) and memory (bytes): the value of a limit that is not set. */
  cpuMillis: number;
  memoryBytes: number;
  hostIP?: string;
  hostIPs?: string[];
}

/** NodeFacts of this machine from node:os (hostname, CPU count, total memory). */
export function hostNodeFacts(extra: Partial<NodeFacts> = {}): NodeFacts {
  // os.cpus() parses /proc/cpuinfo (4 ms here): once per process
  cpuCount ??= cpus().length;
  return { nodeName: hostname(), cpuMillis: cpuCount * 1000, memoryBytes: totalmem(), ...extra };
}
let cpuCount: number | undefined;

/** The text of the rootfs's /etc/passwd and /etc/group; undefined = file absent. */
export interface RootfsFiles {
  passwd?: string;
  group?: string;
}

export interface ResolveExtras {
  /** Where configMapKeyRef / secretKeyRef / envFrom are looked up (usually the parsed file). */
  manifests?: Pick<ManifestSet, 'configMaps' | 'secrets'>;
  /** status.podIP / podIPs for the downward API (the sandbox's address; "" when unknown). */
  podIP?: string;
  podIPs?: string[];
  node: NodeFacts;
  /** The runtime's own bounding set (privileged = all of these; default: every capability). */
  hostCapabilities?: readonly string[];
}

/** containerd's default PATH, used when the image sets none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// ---------------------------------------------------------------------------------------------
// $(VAR) expansion
// ---------------------------------------------------------------------------------------------

/**
 * Kubernetes' $(VAR) expansion (third_party/forked/golang/expansion): "$(NAME)" → the value when
 * `lookup` knows NAME, else left as written; "$$" → "$" (so "$$(X)" yields "$(X)"); a "$" not
 * followed by "(" or "$" stays; an unterminated "$(" stays.
 */
export function expandVars(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const next = input[cursor + 1];
    let advance = 1;
    if (next === '$') out += '$';
    else if (next === '(') {
      const close = input.indexOf(')', cursor + 2);
      if (close < 0) out += '$(';
      else {
        const name = input.slice(cursor + 2, close);
        out += lookup(name) ?? `$(${name})`;
        advance = close - cursor;
      }
    } else out += `$${next}`;
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

function quoted(s: string): string {
  return JSON.stringify(s);
}

function findConfigMap(pod: PodPlan, name: string, extras: ResolveExtras): ConfigMapPlan | undefined {
  return extras.manifests?.configMaps.find((c) => c.name === name && c.namespace === pod.namespace);
}
function findSecret(pod: PodPlan, name: string, extras: ResolveExtras): SecretPlan | undefined {
  return extras.manifests?.secrets.find((s) => s.name === name && s.namespace === pod.namespace);
}

function configMapEntries(cm: ConfigMapPlan): Record<string, string> {
  const out: Record<string, string> = { ...cm.data };
  for (const [k, v] of Object.entries(cm.binaryData)) out[k] = Buffer.from(v).toString('utf8');
  return out;
}
function secretEntries(s: SecretPlan): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.data)) out[k] = Buffer.from(v).toString('utf8');
  return out;
}

/** A downward-API value for env (metadata.*, spec.nodeName, status.*IP*). */
export function fieldRefValue(pod: PodPlan, f: FieldPath, extras: Pick<ResolveExtras, 'node' | 'podIP' | 'podIPs'>): string {
  const md = metadataFieldValue(f, pod);
  if (md !== undefined) return md;
  switch (f.path) {
    case 'spec.nodeName':
      return extras.node.nodeName;
    case 'spec.serviceAccountName':
      return '';
    case 'status.hostIP':
      return extras.node.hostIP ?? '';
    case 'status.hostIPs':
      return (extras.node.hostIPs ?? (extras.node.hostIP ? [extras.node.hostIP] : [])).join(',');
    case 'status.podIP':
      return extras.podIP ?? '';
    case 'status.podIPs':
      return (extras.podIPs ?? (extras.podIP ? [extras.podIP] : [])).join(',');
    default:
      return '';
  }
}

/**
 * A resourceFieldRef value as kubelet computes it: ceil(value / divisor); an unset limit reads as
 * the node's allocatable amount, an unset request as 0.
 */
export function resourceFieldValue(pod: PodPlan, ref: ResourceFieldRef, node: NodeFacts): string {
  const c = [...pod.initContainers, ...pod.containers].find((x) => x.name === ref.containerName);
  if (!c) throw new ContainerConfigError(`Cannot resolve resourceFieldRef ${quoted(ref.resource)}: no container ${quoted(ref.containerName ?? '')} in pod ${quoted(pod.name)}`);
  const [kind, res] = ref.resource.split('.') as ['limits' | 'requests', 'cpu' | 'memory'];
  const d = parseQuantity(ref.divisor);
  if (res === 'cpu') {
    const millis = c.resources[kind].cpuMillis ?? (kind === 'limits' ? node.cpuMillis : 0);
    // divisor in millis: d * 1000
    const num = BigInt(millis) * d.den;
    const den = d.num * 1000n;
    return String((num + den - 1n) / den);
  }
  const bytes = c.resources[kind].memoryBytes ?? (kind === 'limits' ? node.memoryBytes : 0);
  const num = BigInt(bytes) * d.den;
  return String((num + d.num - 1n) / d.num);
}

/**
 * The container's own environment as kubelet builds it (makeEnvironmentVariables): envFrom first,
 * then env in order, each value expanded against the variables defined before it. Image Env is NOT
 * visible to $(VAR) here (kubelet never sees it). Returns name → value in first-definition order.
 */
export function containerEnv(pod: PodPlan, c: ContainerPlan, extras: ResolveExtras, warnings: string[] = []): Map<string, string> {
  const env = new Map<string, string>();
  const where = `container ${quoted(c.name)} of pod ${quoted(pod.name)}`;
  for (const ef of c.envFrom) {
    let entries: Record<string, string> | undefined;
    if (ef.kind === 'configMap') {
      const cm = findConfigMap(pod, ef.name, extras);
      entries = cm && configMapEntries(cm);
    } else {
      const s = findSecret(pod, ef.name, extras);
      entries = s && secretEntries(s);
    }
    if (!entries) {
      if (ef.optional) continue;
      throw new ContainerConfigError(`Cannot build the environment of ${where}: ${ef.kind === 'configMap' ? 'ConfigMap' : 'Secret'} ${quoted(ef.name)} not found (envFrom)`);
    }
    const invalid: string[] = [];
    for (const key of Object.keys(entries).sort()) {
      const name = ef.prefix + key;
      if (!isEnvName(name)) {
        invalid.push(name);
        continue;
      }
      env.set(name, entries[key]);
    }
    if (invalid.length) warnings.push(`${where}: skipped keys of ${ef.kind} ${quoted(ef.name)} that are not valid variable names: ${invalid.map(quoted).join(', ')}`);
  }
  const lookup = (name: string) => env.get(name);
  for (const e of c.env) {
    let value: string | undefined;
    switch (e.kind) {
      case 'value':
        value = expandVars(e.value, lookup);
        break;
      case 'fieldRef':
        value = fieldRefValue(pod, e.fieldRef, extras);
        break;
      case 'resourceFieldRef':
        value = resourceFieldValue(pod, { ...e.resourceFieldRef, containerName: e.resourceFieldRef.containerName ?? c.name }, extras.node);
        break;
      case 'configMapKeyRef': {
        const cm = findConfigMap(pod, e.configMapName, extras);
        const entries = cm && configMapEntries(cm);
        value = entries?.[e.key];
        if (value === undefined && !e.optional) {
          throw new ContainerConfigError(
            cm
              ? `Cannot set ${e.name} in ${where}: ConfigMap ${quoted(e.configMapName)} has no key ${quoted(e.key)}`
              : `Cannot set ${e.name} in ${where}: ConfigMap ${quoted(e.configMapName)} not found`,
          );
        }
        break;
      }
      case 'secretKeyRef': {
        const s = findSecret(pod, e.secretName, extras);
        const entries = s && secretEntries(s);
        value = entries?.[e.key];
        if (value === undefined && !e.optional) {
          throw new ContainerConfigError(
            s
              ? `Cannot set ${e.name} in ${where}: Secret ${quoted(e.secretName)} has no key ${quoted(e.key)}`
              : `Cannot set ${e.name} in ${where}: Secret ${quoted(e.secretName)} not found`,
          );
        }
        break;
      }
    }
    if (value === undefined) continue; // optional reference not found: the variable is left out
    env.set(e.name, value);
  }
  return env;
}

/** "NAME=value" list: `base` with each later list replacing by name in place or appending (containerd's WithEnv). */
export function mergeEnv(base: readonly string[], ...layers: (readonly string[])[]): string[] {
  const out = [...base];
  const index = new Map<string, number>();
  out.forEach((kv, i) => index.set(kv.split('=')[0], i));
  for (const layer of layers) {
    for (const kv of layer) {
      const name = kv.split('=')[0];
      const at = index.get(name);
      if (at !== undefined) out[at] = kv;
      else {
        index.set(name, out.length);
        out.push(kv);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// argv
// ---------------------------------------------------------------------------------------------

/**
 * argv as kubelet + containerd build it. command/args are first expanded with the container env:
 *  - command set: command + args (image Entrypoint and Cmd ignored);
 *  - args only: Entrypoint + args;
 *  - neither: Entrypoint + Cmd (an Entrypoint of [""] counts as none);
 *  - nothing at all: ContainerConfigError.
 */
export function processArgs(c: Pick<ContainerPlan, 'name' | 'command' | 'args'>, image: ImageConfig, env: Map<string, string> = new Map()): string[] {
  const lookup = (n: string) => env.get(n);
  const command = c.command?.map((s) => expandVars(s, lookup)) ?? [];
  let args = c.args?.map((s) => expandVars(s, lookup)) ?? [];
  let argv: string[];
  if (command.length > 0) argv = [...command, ...args];
  else {
    if (args.length === 0) args = [...(image.Cmd ?? [])];
    const ep = image.Entrypoint ?? [];
    const entrypoint = ep.length === 1 && ep[0] === '' ? [] : [...ep];
    argv = [...entrypoint, ...args];
  }
  if (argv.length === 0) {
    throw new ContainerConfigError(`Cannot start container ${quoted(c.name)}: no command specified`, 'Set command or args in the manifest; the image has no Entrypoint or Cmd.');
  }
  return argv;
}

// ---------------------------------------------------------------------------------------------
// Users and groups
// ---------------------------------------------------------------------------------------------

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const ID = /^\d+$/;

/** /etc/passwd text → entries (comments, blank, NIS "+"/"-" and malformed lines skipped). */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (!l || l.startsWith('#') || l.startsWith('+') || l.startsWith('-')) continue;
    const f = l.split(':');
    if (f.length < 4 || !f[0] || !ID.test(f[2]) || !ID.test(f[3])) continue;
    out.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '', shell: f[6] ?? '' });
  }
  return out;
}

/** /etc/group text → entries. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (!l || l.startsWith('#') || l.startsWith('+') || l.startsWith('-')) continue;
    const f = l.split(':');
    if (f.length < 3 || !f[0] || !ID.test(f[2])) continue;
    out.push({ name: f[0], gid: Number(f[2]), members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) });
  }
  return out;
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** The user's name when /etc/passwd knows it. */
  name?: string;
}

export interface UserInput {
  /** container runAsUser ?? pod runAsUser */
  runAsUser?: number;
  /** container runAsGroup ?? pod runAsGroup */
  runAsGroup?: number;
  /** The image config's User ("", "name", "uid", "name:group", "uid:gid"). */
  imageUser?: string;
  /** pod supplementalGroups, then fsGroup. */
  supplementalGroups?: number[];
  fsGroup?: number;
}

/**
 * uid, gid and supplementary groups as containerd resolves them:
 *  - runAsUser (container > pod) wins over the image User; else the image User, where a name must
 *    exist in /etc/passwd (a group name in /etc/group); a numeric uid need not exist;
 *  - gid: runAsGroup, else the image User's group part, else the passwd entry's gid, else 0;
 *  - additional gids: gid, the groups of /etc/group listing the user's name as a member,
 *    then supplementalGroups and fsGroup; duplicates removed, order kept.
 * (Unlike Kubernetes on containerd, which drops a numeric image User's ":gid" part, the image's
 * group is honoured, as Docker and CRI-O do.)
 */
export function resolveUser(input: UserInput, files: RootfsFiles, container = 'container'): ResolvedUser {
  const passwd = files.passwd === undefined ? [] : parsePasswd(files.passwd);
  const groups = files.group === undefined ? [] : parseGroup(files.group);
  let uid: number;
  let gid: number | undefined;
  let entry: PasswdEntry | undefined;
  if (input.runAsUser !== undefined) {
    uid = input.runAsUser;
    entry = passwd.find((p) => p.uid === uid);
  } else {
    const spec = (input.imageUser ?? '').trim();
    const [userPart, groupPart] = spec.includes(':') ? [spec.slice(0, spec.indexOf(':')), spec.slice(spec.indexOf(':') + 1)] : [spec, undefined];
    if (userPart === '') {
      uid = 0;
      entry = passwd.find((p) => p.uid === 0);
    } else if (ID.test(userPart)) {
      uid = Number(userPart);
      entry = passwd.find((p) => p.uid === uid);
    } else {
      entry = passwd.find((p) => p.name === userPart);
      if (!entry) {
        const why = files.passwd === undefined ? 'the image has no /etc/passwd' : 'no such user in the image\'s /etc/passwd';
        throw new ContainerConfigError(`Cannot resolve user ${quoted(userPart)} of ${container}: ${why}`, 'Use a numeric uid (image USER or securityContext.runAsUser).');
      }
      uid = entry.uid;
    }
    if (groupPart !== undefined && groupPart !== '') {
      if (ID.test(groupPart)) gid = Number(groupPart);
      else {
        const g = groups.find((x) => x.name === groupPart);
        if (!g) {
          const why = files.group === undefined ? 'the image has no /etc/group' : 'no such group in the image\'s /etc/group';
          throw new ContainerConfigError(`Cannot resolve group ${quoted(groupPart)} of ${container}: ${why}`, 'Use a numeric gid (image USER uid:gid or securityContext.runAsGroup).');
        }
        gid = g.gid;
      }
    }
  }
  if (input.runAsGroup !== undefined) gid = input.runAsGroup;
  if (gid === undefined) gid = entry?.gid ?? 0;
  const extra: number[] = [gid];
  if (entry) for (const g of groups) if (g.name !== entry.name && g.members.includes(entry.name)) extra.push(g.gid);
  extra.push(...(input.supplementalGroups ?? []));
  if (input.fsGroup !== undefined) extra.push(input.fsGroup);
  return { uid, gid, additionalGids: [...new Set(extra)], ...(entry ? { name: entry.name } : {}) };
}

/**
 * kubelet's verifyRunAsNonRoot: with runAsNonRoot, an explicit runAsUser 0, an image user that is
 * root (or empty), or an image user that is a name (cannot be verified) is refused.
 */
export function checkRunAsNonRoot(pod: PodPlan, c: ContainerPlan, image: ImageConfig): void {
  const nonRoot = c.securityContext.runAsNonRoot ?? pod.securityContext.runAsNonRoot;
  if (!nonRoot) return;
  const where = `container ${quoted(c.name)} of pod ${quoted(pod.name)}`;
  const runAsUser = c.securityContext.runAsUser ?? pod.securityContext.runAsUser;
  if (runAsUser !== undefined) {
    if (runAsUser === 0) throw new ContainerConfigError(`Cannot start ${where}: runAsUser 0 breaks the runAsNonRoot policy`);
    return;
  }
  const user = (image.User ?? '').split(':')[0].trim();
  if (user === '' || (ID.test(user) && Number(user) === 0)) {
    throw new ContainerConfigError(`Cannot start ${where}: runAsNonRoot is set and the image will run as root`, 'Set securityContext.runAsUser to a non-zero uid.');
  }
  if (!ID.test(user)) {
    throw new ContainerConfigError(`Cannot start ${where}: runAsNonRoot is set and the image has a non-numeric user (${quoted(user)}), which cannot be verified as non-root`, 'Set securityContext.runAsUser to a non-zero uid.');
  }
}

// ---------------------------------------------------------------------------------------------
// The process
// ---------------------------------------------------------------------------------------------

/**
 * Everything the shim needs to exec `container`'s process. Throws ContainerConfigError
 * (kubelet's CreateContainerConfigError) for missing ConfigMaps/Secrets/keys, unknown user names,
 * runAsNonRoot violations and an empty command.
 *
 * env = PATH default, image Env, HOSTNAME (the pod's hostname; the node's with hostNetwork), then
 * the container's env, each replacing by name (containerd's order).
 */
export function resolveProcess(pod: PodPlan, container: ContainerPlan, image: ImageConfig, rootfsFiles: RootfsFiles, extras: ResolveExtras): ProcessSpec {
  const warnings: string[] = [];
  checkRunAsNonRoot(pod, container, image);
  const env = containerEnv(pod, container, extras, warnings);
  const args = processArgs(container, image, env);
  const envList = mergeEnv(
    [`PATH=${DEFAULT_PATH}`],
    image.Env ?? [],
    [`HOSTNAME=${pod.hostNetwork ? extras.node.nodeName : pod.hostname}`],
    [...env].map(([k, v]) => `${k}=${v}`),
  );
  const sc = container.securityContext;
  const user = resolveUser(
    {
      runAsUser: sc.runAsUser ?? pod.securityContext.runAsUser,
      runAsGroup: sc.runAsGroup ?? pod.securityContext.runAsGroup,
      imageUser: image.User,
      supplementalGroups: pod.securityContext.supplementalGroups,
      fsGroup: pod.securityContext.fsGroup,
    },
    rootfsFiles,
    `container ${quoted(container.name)} of pod ${quoted(pod.name)}`,
  );
  let cwd = container.workingDir ?? (image.WorkingDir || '/');
  if (!cwd.startsWith('/')) cwd = `/${cwd}`;
  const caps = containerCapabilities({ privileged: sc.privileged, add: sc.capabilities.add, drop: sc.capabilities.drop }, extras.hostCapabilities);
  const capabilities: CapabilitySets = { bounding: caps, effective: [...caps], permitted: [...caps], inheritable: [], ambient: [] };
  return {
    args,
    env: envList,
    cwd,
    uid: user.uid,
    gid: user.gid,
    additionalGids: user.additionalGids,
    noNewPrivileges: sc.allowPrivilegeEscalation === false,
    capabilities,
    readonlyRootfs: sc.readOnlyRootFilesystem,
    privileged: sc.privileged,
    terminal: container.tty,
    warnings,
  };
}

// ---------------------------------------------------------------------------------------------
// Volumes whose contents come from objects
// ---------------------------------------------------------------------------------------------

/** Re-resolve a configMap / secret volume against another set (e.g. objects from a second file). */
export function resolveConfigVolume(pod: PodPlan, v: ConfigMapVolume | SecretVolume, manifests: Pick<ManifestSet, 'configMaps' | 'secrets'>): ResolvedFiles {
  if (v.kind === 'configMap') {
    const cm = manifests.configMaps.find((c) => c.name === v.configMapName && c.namespace === pod.namespace);
    const entries = cm ? { ...Object.fromEntries(Object.entries(cm.data).map(([k, s]) => [k, new Uint8Array(Buffer.from(s, 'utf8'))])), ...cm.binaryData } : undefined;
    return resolveFiles('ConfigMap', v.configMapName, entries, v.items, v.defaultMode, v.optional);
  }
  const s = manifests.secrets.find((x) => x.name === v.secretName && x.namespace === pod.namespace);
  return resolveFiles('Secret', v.secretName, s?.data, v.items, v.defaultMode, v.optional);
}

/** Every file of a downwardAPI volume, in item order (fieldRef and resourceFieldRef items). */
export function downwardApiFiles(pod: PodPlan, v: DownwardApiVolume, node: NodeFacts): ProjectedFile[] {
  return v.items.map((it) => {
    const text = 'fieldRef' in it ? (metadataFieldValue(it.fieldRef, pod) ?? '') : resourceFieldValue(pod, it.resourceFieldRef, node);
    return { path: it.path, mode: it.mode ?? v.defaultMode, data: new Uint8Array(Buffer.from(text, 'utf8')) };
  });
}

// ---------------------------------------------------------------------------------------------
// Reading /etc/passwd and /etc/group from a rootfs
// ---------------------------------------------------------------------------------------------

const MAX_SYMLINKS = 40;
const MAX_FILE = 4 << 20;

/**
 * Resolve `rel` inside `root` as the container would see it: every symlink is resolved relative to
 * `root` (an absolute target restarts at root, ".." stops at root), so nothing outside is reached.
 * Returns the host path, or undefined when a component does not exist.
 */
export async function resolveInRoot(root: string, rel: string): Promise<string | undefined> {
  const rest = rel.split('/').filter((p) => p && p !== '.');
  const done: string[] = [];
  let links = 0;
  while (rest.length > 0) {
    const part = rest.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = path.join(root, ...done, part);
    let st;
    try {
      st = await lstat(host);
    } catch (e) {
      if (nodeErrCode(e) === 'ENOENT' || nodeErrCode(e) === 'ENOTDIR') return undefined;
      throw e;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw new PodrunError('EHOSTILE', `Cannot resolve ${quoted(rel)} in ${quoted(root)}: too many levels of symbolic links`);
      const target = await readlink(host);
      if (target.startsWith('/')) done.length = 0;
      rest.unshift(...target.split('/').filter((p) => p && p !== '.'));
      continue;
    }
    done.push(part);
  }
  return path.join(root, ...done);
}

async function readSmallFile(root: string, rel: string): Promise<string | undefined> {
  const host = await resolveInRoot(root, rel);
  if (!host) return undefined;
  const st = await lstat(host);
  if (!st.isFile()) return undefined;
  if (st.size > MAX_FILE) throw new PodrunError('EHOSTILE', `Cannot read ${quoted(rel)} in ${quoted(root)}: ${st.size} bytes is larger than ${MAX_FILE}`);
  const fh = await open(host, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return await fh.readFile({ encoding: 'utf8' });
  } finally {
    await fh.close();
  }
}

/** /etc/passwd and /etc/group of a rootfs (a mounted overlay or a layer dir), never leaving it. */
export async function readRootfsUserFiles(rootfs: string): Promise<RootfsFiles> {
  const [passwd, group] = await Promise.all([readSmallFile(rootfs, 'etc/passwd'), readSmallFile(rootfs, 'etc/group')]);
  return { ...(passwd !== undefined ? { passwd } : {}), ...(group !== undefined ? { group } : {}) };
}
